//! A priority index shared by the policies that evict the entry with the smallest score
//! (LFU, TTL-ordered, GDSF): a `BTreeSet` of (score, tie-break, slot) plus each slot's key.

use omnicache_core::SlotId;
use std::collections::BTreeSet;

/// The order key: score first, then the insertion/access tick (older first), then the slot.
pub(crate) type Rank = (u64, u64, SlotId);

#[derive(Default)]
pub(crate) struct Ranked {
    set: BTreeSet<Rank>,
    by_slot: Vec<Option<(u64, u64)>>,
}

impl Ranked {
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }

    pub(crate) fn get(&self, slot: SlotId) -> Option<(u64, u64)> {
        self.by_slot.get(slot as usize).copied().flatten()
    }

    pub(crate) fn set(&mut self, slot: SlotId, score: u64, tick: u64) {
        self.remove(slot);
        let i = slot as usize;
        if i >= self.by_slot.len() {
            self.by_slot.resize(i + 1, None);
        }
        self.by_slot[i] = Some((score, tick));
        self.set.insert((score, tick, slot));
    }

    pub(crate) fn remove(&mut self, slot: SlotId) -> bool {
        match self.by_slot.get_mut(slot as usize).and_then(Option::take) {
            Some((score, tick)) => {
                self.set.remove(&(score, tick, slot));
                true
            }
            None => false,
        }
    }

    pub(crate) fn pop_min(&mut self) -> Option<Rank> {
        let first = self.set.pop_first()?;
        self.by_slot[first.2 as usize] = None;
        Some(first)
    }

    /// Rewrites every score with `f` (for aging).
    pub(crate) fn rescore(&mut self, f: impl Fn(u64) -> u64) {
        let old = std::mem::take(&mut self.set);
        for (score, tick, slot) in old {
            let s = f(score);
            self.by_slot[slot as usize] = Some((s, tick));
            self.set.insert((s, tick, slot));
        }
    }
}
