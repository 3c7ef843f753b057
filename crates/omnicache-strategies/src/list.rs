//! An intrusive doubly linked list over slot ids, stored in a vector: O(1) push, unlink and
//! move, no allocation per entry.

use omnicache_core::SlotId;

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
    linked: bool,
}

const UNLINKED: Link = Link { prev: NIL, next: NIL, linked: false };

/// Slots in order from head (most recent) to tail (least recent).
#[derive(Default)]
pub(crate) struct SlotList {
    links: Vec<Link>,
    head: u32,
    tail: u32,
    len: usize,
}

impl SlotList {
    pub(crate) fn new() -> Self {
        SlotList { links: Vec::new(), head: NIL, tail: NIL, len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push_front(&mut self, slot: SlotId) {
        let i = slot as usize;
        if i >= self.links.len() {
            self.links.resize(i + 1, UNLINKED);
        }
        if self.links[i].linked {
            self.unlink(slot);
        }
        self.links[i] = Link { prev: NIL, next: self.head, linked: true };
        if self.head != NIL {
            self.links[self.head as usize].prev = slot;
        }
        self.head = slot;
        if self.tail == NIL {
            self.tail = slot;
        }
        self.len += 1;
    }

    /// Unlinks `slot`; false if it was not in the list.
    pub(crate) fn unlink(&mut self, slot: SlotId) -> bool {
        let Some(&Link { prev, next, linked: true }) = self.links.get(slot as usize) else {
            return false;
        };
        if prev != NIL {
            self.links[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.links[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
        self.links[slot as usize] = UNLINKED;
        self.len -= 1;
        true
    }

    pub(crate) fn contains(&self, slot: SlotId) -> bool {
        self.links.get(slot as usize).is_some_and(|l| l.linked)
    }

    /// The least recent slot.
    pub(crate) fn back(&self) -> Option<SlotId> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// The next more recent slot than `slot` (towards the front).
    pub(crate) fn newer(&self, slot: SlotId) -> Option<SlotId> {
        let p = self.links.get(slot as usize)?.prev;
        (p != NIL).then_some(p)
    }

    pub(crate) fn move_to_front(&mut self, slot: SlotId) {
        if self.unlink(slot) {
            self.push_front(slot);
        }
    }

    pub(crate) fn pop_back(&mut self) -> Option<SlotId> {
        let t = self.tail;
        (t != NIL).then(|| {
            self.unlink(t);
            t
        })
    }
}
