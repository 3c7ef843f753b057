//! S3-FIFO (Yang et al., SOSP'23): a small FIFO for new entries, a main FIFO with reinsertion,
//! and a ghost FIFO of recently evicted hashes. Weighted: queue budgets are in weight units.
//!
//! - New entries enter the small queue, unless their hash is in the ghost queue (seen and
//!   evicted recently), in which case they enter main.
//! - Evicting from small: an entry read since it came in moves to main; otherwise it leaves and
//!   its hash goes to the ghost queue.
//! - Evicting from main: an entry with a non-zero frequency goes back to the head with its
//!   frequency decremented; otherwise it leaves.
//! - Small is evicted from while it holds at least its share (10%) of the budget.
//!
//! Reads are counted by the cache's access bits ([`ReadTracking::AccessBits`]), so the read path
//! takes no lock.

use super::{AccessView, EntryInfo, EvictionPolicy, PolicyFactory, ReadTracking, SlotId};

const NIL: u32 = u32::MAX;
const NONE: u8 = 0;
const SMALL: u8 = 1;
const MAIN: u8 = 2;
const MAX_FREQ: u8 = 3;

#[derive(Clone, Copy)]
struct Node {
    prev: u32,
    next: u32,
    queue: u8,
    freq: u8,
}

const EMPTY: Node = Node { prev: NIL, next: NIL, queue: NONE, freq: 0 };

#[derive(Default, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    weight: u64,
    len: usize,
}

impl List {
    const fn new() -> Self {
        List { head: NIL, tail: NIL, weight: 0, len: 0 }
    }
}

/// The ghost queue: the hashes of the last `bound` entries evicted from the small queue, with
/// O(1) membership, no per-entry allocation and at most 8 bytes per entry of the bound. A 4-way set-associative table of
/// (32-bit tag, 32-bit eviction sequence number); an entry is a ghost while fewer than `bound`
/// evictions have happened since it was recorded. A full set overwrites its oldest entry, which
/// only makes the ghost forget a little early.
#[derive(Default)]
struct Ghost {
    slots: Vec<u64>,
    seq: u32,
}

const WAYS: usize = 4;

impl Ghost {
    fn tag(hash: u64) -> u32 {
        ((hash >> 32) as u32) | 1
    }

    fn set(&self, hash: u64) -> usize {
        (hash as usize & (self.slots.len() - 1)) & !(WAYS - 1)
    }

    fn push(&mut self, hash: u64, bound: usize) {
        let want = bound.next_power_of_two().clamp(16, 1 << 30);
        if self.slots.len() < want {
            // Grows only while the cache is still filling; forgetting the few ghosts is fine.
            self.slots = vec![0; want];
        }
        self.seq = self.seq.wrapping_add(1);
        let base = self.set(hash);
        let mut victim = base;
        let mut oldest = 0u32;
        for i in base..base + WAYS {
            let e = self.slots[i];
            if e == 0 {
                victim = i;
                break;
            }
            let age = self.seq.wrapping_sub(e as u32);
            if age > oldest {
                oldest = age;
                victim = i;
            }
        }
        self.slots[victim] = (u64::from(Self::tag(hash)) << 32) | u64::from(self.seq);
    }

    fn contains(&self, hash: u64, bound: usize) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let tag = Self::tag(hash);
        let base = self.set(hash);
        self.slots[base..base + WAYS].iter().any(|&e| {
            (e >> 32) as u32 == tag && (self.seq.wrapping_sub(e as u32) as usize) < bound.max(1)
        })
    }

    fn len(&self) -> usize {
        self.slots.iter().filter(|&&e| e != 0).count()
    }
}

/// The S3-FIFO eviction policy (Yang et al., SOSP'23): new entries enter a small FIFO; those
/// read while there move to the main FIFO, the rest leave and are remembered in a ghost FIFO;
/// the main FIFO reinserts entries with a non-zero frequency. Weighted: budgets are in weight
/// units, 10% for the small queue by default.
pub struct S3Fifo {
    nodes: Vec<Node>,
    small: List,
    main: List,
    ghost: Ghost,
    /// Weights by slot, allocated only once an entry weighs other than 1, so entry-count caches
    /// spend 12 bytes a node instead of 16.
    weights: Vec<u32>,
    max_weight: u64,
    small_target: u64,
    peak_len: usize,
    promote_after: u8,
}

impl std::fmt::Debug for S3Fifo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Fifo")
            .field("max_weight", &self.max_weight)
            .field("small", &(self.small.len, self.small.weight))
            .field("main", &(self.main.len, self.main.weight))
            .field("ghost", &self.ghost.len())
            .finish()
    }
}

impl S3Fifo {
    /// A policy for a cache of `max_weight`, with `small_ratio` of it for the small queue.
    pub fn new(max_weight: u64, small_ratio: f64) -> Self {
        let ratio = if small_ratio.is_finite() { small_ratio.clamp(0.0, 1.0) } else { 0.1 };
        let small_target = ((max_weight as f64) * ratio).ceil() as u64;
        S3Fifo {
            nodes: Vec::new(),
            small: List::new(),
            main: List::new(),
            ghost: Ghost::default(),
            weights: Vec::new(),
            max_weight,
            small_target: small_target.max(1),
            peak_len: 0,
            promote_after: 2,
        }
    }

    /// Reads an entry needs while in the small queue to move to main: 2 (the default, the
    /// paper's `freq > 1`) or 1 (as quick_cache does).
    #[must_use]
    pub fn promote_after(mut self, reads: u8) -> Self {
        self.promote_after = reads.clamp(1, MAX_FREQ);
        self
    }

    fn list(&mut self, q: u8) -> &mut List {
        if q == SMALL {
            &mut self.small
        } else {
            &mut self.main
        }
    }

    fn push_head(&mut self, slot: SlotId, q: u8) {
        let w = self.weight(slot);
        let old_head = self.list(q).head;
        {
            let n = &mut self.nodes[slot as usize];
            n.prev = NIL;
            n.next = old_head;
            n.queue = q;
        }
        if old_head != NIL {
            self.nodes[old_head as usize].prev = slot;
        }
        let l = self.list(q);
        l.head = slot;
        if l.tail == NIL {
            l.tail = slot;
        }
        l.weight += w;
        l.len += 1;
    }

    fn unlink(&mut self, slot: SlotId) {
        let Node { prev, next, queue, .. } = self.nodes[slot as usize];
        let weight = self.weight(slot);
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
        let l = self.list(queue);
        if l.head == slot {
            l.head = next;
        }
        if l.tail == slot {
            l.tail = prev;
        }
        l.weight -= weight;
        l.len -= 1;
        let n = &mut self.nodes[slot as usize];
        n.prev = NIL;
        n.next = NIL;
        n.queue = NONE;
    }

    fn weight(&self, slot: SlotId) -> u64 {
        self.weights.get(slot as usize).map_or(1, |&w| u64::from(w))
    }

    fn set_weight(&mut self, slot: SlotId, weight: u64) {
        let w = clamp_weight(weight);
        if self.weights.is_empty() {
            if w == 1 {
                return;
            }
            self.weights = vec![1; self.nodes.len()];
        }
        let i = slot as usize;
        if i >= self.weights.len() {
            self.weights.resize(self.nodes.len().max(i + 1), 1);
        }
        self.weights[i] = w;
    }

    fn tracked(&self, slot: SlotId) -> bool {
        self.nodes.get(slot as usize).is_some_and(|n| n.queue != NONE)
    }

    fn freq(&mut self, slot: SlotId, acc: &mut dyn AccessView) -> u8 {
        let n = &mut self.nodes[slot as usize];
        n.freq = (n.freq + acc.take_accesses(slot)).min(MAX_FREQ);
        n.freq
    }

    fn forget(&mut self, slot: SlotId, hash_for_ghost: Option<u64>) -> SlotId {
        self.unlink(slot);
        self.nodes[slot as usize] = EMPTY;
        if let Some(h) = hash_for_ghost {
            // As many ghosts as the cache holds entries at its fullest.
            self.ghost.push(h, self.peak_len);
        }
        slot
    }
}

impl S3Fifo {
    fn evict_inner(&mut self, acc: &mut dyn AccessView) -> Option<SlotId> {
        loop {
            if self.small.len == 0 && self.main.len == 0 {
                return None;
            }
            if self.small.len > 0 && (self.small.weight >= self.small_target || self.main.len == 0)
            {
                let t = self.small.tail;
                if self.freq(t, acc) >= self.promote_after {
                    self.unlink(t);
                    self.nodes[t as usize].freq = 0;
                    self.push_head(t, MAIN);
                    continue;
                }
                let h = acc.hash(t);
                return Some(self.forget(t, Some(h)));
            }
            let t = self.main.tail;
            let f = self.freq(t, acc);
            if f > 0 {
                self.unlink(t);
                self.nodes[t as usize].freq = f - 1;
                self.push_head(t, MAIN);
                continue;
            }
            return Some(self.forget(t, None));
        }
    }
}

impl EvictionPolicy for S3Fifo {
    fn name(&self) -> &'static str {
        "s3fifo"
    }
    fn read_tracking(&self) -> ReadTracking {
        ReadTracking::AccessBits
    }
    fn on_insert(&mut self, slot: SlotId, info: EntryInfo) {
        let i = slot as usize;
        if i >= self.nodes.len() {
            // Slots never outnumber the budget (weights are at least 1) plus one in flight, so
            // grow by doubling only up to that.
            let bound = usize::try_from(self.max_weight.saturating_add(1)).unwrap_or(usize::MAX);
            let want = (self.nodes.len() * 2).clamp(16, bound.max(16)).max(i + 1);
            self.nodes.reserve_exact(want - self.nodes.len());
            self.nodes.resize(i + 1, EMPTY);
        }
        if self.tracked(slot) {
            self.unlink(slot);
        }
        self.nodes[i] = EMPTY;
        self.set_weight(slot, info.weight);
        let q = if self.ghost.contains(info.hash, self.peak_len) { MAIN } else { SMALL };
        self.push_head(slot, q);
        self.peak_len = self.peak_len.max(self.small.len + self.main.len);
    }
    fn on_access(&mut self, slot: SlotId) {
        if let Some(n) = self.nodes.get_mut(slot as usize) {
            if n.queue != NONE {
                n.freq = (n.freq + 1).min(MAX_FREQ);
            }
        }
    }
    fn on_update(&mut self, slot: SlotId, info: EntryInfo) {
        if !self.tracked(slot) {
            return;
        }
        let q = self.nodes[slot as usize].queue;
        let old = self.weight(slot);
        self.set_weight(slot, info.weight);
        let new = self.weight(slot);
        let l = self.list(q);
        l.weight = l.weight - old + new;
        let n = &mut self.nodes[slot as usize];
        n.freq = (n.freq + 1).min(MAX_FREQ);
        let _ = info.hash;
    }
    fn on_remove(&mut self, slot: SlotId) {
        if self.tracked(slot) {
            self.forget(slot, None);
        }
    }
    fn evict(&mut self, accesses: &mut dyn AccessView) -> Option<SlotId> {
        self.evict_inner(accesses)
    }
    fn len(&self) -> usize {
        self.small.len + self.main.len
    }
}

fn clamp_weight(w: u64) -> u32 {
    u32::try_from(w).unwrap_or(u32::MAX)
}

/// Makes [`S3Fifo`] policies with a 10% small queue.
#[derive(Debug, Clone, Copy)]
pub struct S3FifoFactory {
    /// The small queue's share of the budget. Default 0.1.
    pub small_ratio: f64,
    /// Reads in the small queue that move an entry to main. Default 2, the paper's rule.
    pub promote_after: u8,
}

impl Default for S3FifoFactory {
    fn default() -> Self {
        S3FifoFactory { small_ratio: 0.1, promote_after: 2 }
    }
}

impl S3FifoFactory {
    /// S3-FIFO exactly as published (an entry moves to main after two reads in small): the
    /// default.
    pub fn paper() -> Self {
        S3FifoFactory::default()
    }

    /// The variant that promotes after one read, as quick_cache does.
    pub fn eager() -> Self {
        S3FifoFactory { promote_after: 1, ..Default::default() }
    }
}

impl PolicyFactory for S3FifoFactory {
    fn name(&self) -> &str {
        if self.promote_after >= 2 {
            "s3fifo"
        } else {
            "s3fifo-eager"
        }
    }
    fn build(&self, max_weight: u64) -> Box<dyn EvictionPolicy> {
        Box::new(S3Fifo::new(max_weight, self.small_ratio).promote_after(self.promote_after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct View {
        bits: Vec<u8>,
    }
    impl AccessView for View {
        fn take_accesses(&mut self, slot: SlotId) -> u8 {
            std::mem::take(&mut self.bits[slot as usize])
        }
        fn hash(&mut self, slot: SlotId) -> u64 {
            1000 + u64::from(slot)
        }
    }
    fn info(slot: SlotId) -> EntryInfo {
        EntryInfo { hash: 1000 + u64::from(slot), weight: 1, expires: None }
    }

    #[test]
    fn one_hit_wonders_leave_from_small_and_read_entries_are_promoted() {
        // Budget 10: small target 1. The paper's rule: two reads in small move an entry to main.
        let mut p = S3Fifo::new(10, 0.1);
        let mut v = View { bits: vec![0; 16] };
        for s in 0..4 {
            p.on_insert(s, info(s));
        }
        v.bits[0] = 2; // slot 0 was read twice while in small
                       // Small holds 4 >= target 1: the oldest (0) was read, so it moves to main; 1 leaves.
        assert_eq!(p.evict(&mut v), Some(1));
        assert_eq!(p.main.len, 1);
        assert_eq!(p.nodes[0].queue, MAIN);
        // 1 is now a ghost: re-inserting its hash goes straight to main.
        p.on_insert(1, info(1));
        assert_eq!(p.nodes[1].queue, MAIN);

        // One read is not enough by default, and is with `promote_after(1)`.
        let mut strict = S3Fifo::new(10, 0.1);
        let mut eager = S3Fifo::new(10, 0.1).promote_after(1);
        for p in [&mut strict, &mut eager] {
            for s in 0..3 {
                p.on_insert(s, info(s));
            }
        }
        assert_eq!(
            strict.evict(&mut View { bits: vec![1, 0, 0, 0] }),
            Some(0),
            "one read: still a one-hit wonder"
        );
        assert_eq!(
            eager.evict(&mut View { bits: vec![1, 0, 0, 0] }),
            Some(1),
            "eager: promoted after one read"
        );
    }

    #[test]
    fn main_reinserts_entries_with_frequency() {
        let mut p = S3Fifo::new(2, 0.5);
        let mut v = View { bits: vec![0; 16] };
        p.on_insert(0, info(0));
        p.on_insert(1, info(1));
        assert_eq!(p.evict(&mut v), Some(0), "unread, oldest, out of small");
        assert_eq!(p.evict(&mut v), Some(1));
        // Both are ghosts now, so they come back into main: head 1, tail 0.
        p.on_insert(0, info(0));
        p.on_insert(1, info(1));
        assert_eq!((p.small.len, p.main.len), (0, 2));
        p.on_access(0);
        assert_eq!(p.evict(&mut v), Some(1), "0 had a frequency, went round again");
        assert_eq!(p.evict(&mut v), Some(0));
        assert_eq!(p.evict(&mut v), None);
    }

    #[test]
    fn passes_the_policy_conformance_suite() {
        crate::testkit::check_policy(&S3FifoFactory::default());
    }
}
