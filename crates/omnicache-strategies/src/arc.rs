//! ARC, the Adaptive Replacement Cache (Megiddo & Modha, FAST'03), weighted.

use crate::ghost::GhostList;
use crate::list::SlotList;
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, PolicyFactory, SlotId};

const NONE: u8 = 0;
const T1: u8 = 1;
const T2: u8 = 2;

/// Two LRU lists of resident entries, T1 (seen once recently) and T2 (seen at least twice), and
/// two ghost lists of evicted hashes, B1 and B2. A hit in B1 means T1 was too small, so the
/// target size `p` of T1 grows; a hit in B2 shrinks it. Victims come from T1 while it is above
/// `p`, otherwise from T2. Sizes are in weight units (entries, for entry-count caches), with
/// `c` the cache's budget.
///
/// The cache, not the policy, decides when to evict, so the ghost-list bookkeeping of the
/// paper's case IV runs on insertion and its REPLACE runs in [`EvictionPolicy::evict`], with the
/// "request was in B2" condition remembered from the last insertion.
pub struct ArcPolicy {
    t1: SlotList,
    t2: SlotList,
    b1: GhostList,
    b2: GhostList,
    /// Per slot: which list, and weight.
    meta: Vec<(u8, u64)>,
    t1_weight: u64,
    t2_weight: u64,
    p: f64,
    c: u64,
    last_in_b2: bool,
}

impl std::fmt::Debug for ArcPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArcPolicy")
            .field("t1", &(self.t1.len(), self.t1_weight))
            .field("t2", &(self.t2.len(), self.t2_weight))
            .field("b1", &self.b1.len())
            .field("b2", &self.b2.len())
            .field("p", &self.p)
            .field("c", &self.c)
            .finish()
    }
}

impl ArcPolicy {
    /// An ARC for a cache of `max_weight`.
    pub fn new(max_weight: u64) -> Self {
        ArcPolicy {
            t1: SlotList::new(),
            t2: SlotList::new(),
            b1: GhostList::new(),
            b2: GhostList::new(),
            meta: Vec::new(),
            t1_weight: 0,
            t2_weight: 0,
            p: 0.0,
            c: max_weight.max(1),
            last_in_b2: false,
        }
    }

    /// The adaptive target size of T1.
    pub fn target(&self) -> f64 {
        self.p
    }

    /// (T1, T2, B1, B2) sizes in entries, for tests and debugging.
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        (self.t1.len(), self.t2.len(), self.b1.len(), self.b2.len())
    }

    fn unlink(&mut self, slot: SlotId) -> Option<(u8, u64)> {
        let (list, w) = *self.meta.get(slot as usize)?;
        match list {
            T1 => {
                self.t1.unlink(slot);
                self.t1_weight -= w;
            }
            T2 => {
                self.t2.unlink(slot);
                self.t2_weight -= w;
            }
            _ => return None,
        }
        self.meta[slot as usize].0 = NONE;
        Some((list, w))
    }

    fn push(&mut self, slot: SlotId, list: u8, w: u64) {
        let i = slot as usize;
        if i >= self.meta.len() {
            self.meta.resize(i + 1, (NONE, 0));
        }
        self.meta[i] = (list, w);
        if list == T1 {
            self.t1.push_front(slot);
            self.t1_weight += w;
        } else {
            self.t2.push_front(slot);
            self.t2_weight += w;
        }
    }

    /// Keeps |T1| + |B1| <= c and |T1| + |T2| + |B1| + |B2| <= 2c by forgetting ghosts.
    fn trim_ghosts(&mut self) {
        while self.t1_weight + self.b1.weight() > self.c && self.b1.pop_back().is_some() {}
        let total = |s: &Self| s.t1_weight + s.t2_weight + s.b1.weight() + s.b2.weight();
        while total(self) > 2 * self.c {
            if self.b2.pop_back().is_none() && self.b1.pop_back().is_none() {
                break;
            }
        }
    }
}

impl EvictionPolicy for ArcPolicy {
    fn name(&self) -> &'static str {
        "arc"
    }
    fn on_insert(&mut self, slot: SlotId, info: EntryInfo) {
        self.unlink(slot);
        let w = info.weight.max(1);
        let c = self.c as f64;
        if self.b1.contains(info.hash) {
            let (b1, b2) = (self.b1.weight().max(1) as f64, self.b2.weight() as f64);
            let delta = (b2 / b1).max(1.0) * w as f64;
            self.p = (self.p + delta).min(c);
            self.b1.remove(info.hash);
            self.last_in_b2 = false;
            self.push(slot, T2, w);
        } else if self.b2.contains(info.hash) {
            let (b1, b2) = (self.b1.weight() as f64, self.b2.weight().max(1) as f64);
            let delta = (b1 / b2).max(1.0) * w as f64;
            self.p = (self.p - delta).max(0.0);
            self.b2.remove(info.hash);
            self.last_in_b2 = true;
            self.push(slot, T2, w);
        } else {
            self.last_in_b2 = false;
            self.push(slot, T1, w);
        }
        self.trim_ghosts();
    }
    fn on_access(&mut self, slot: SlotId) {
        if let Some((_, w)) = self.unlink(slot) {
            self.push(slot, T2, w);
        }
    }
    fn on_update(&mut self, slot: SlotId, info: EntryInfo) {
        if self.unlink(slot).is_some() {
            self.push(slot, T2, info.weight.max(1));
        }
    }
    fn on_remove(&mut self, slot: SlotId) {
        self.unlink(slot);
    }
    fn evict(&mut self, accesses: &mut dyn AccessView) -> Option<SlotId> {
        let t1_w = self.t1_weight as f64;
        let from_t1 = self.t1.len() > 0
            && (t1_w > self.p || (self.last_in_b2 && t1_w >= self.p) || self.t2.len() == 0);
        let (victim, ghost_t1) =
            if from_t1 { (self.t1.back()?, true) } else { (self.t2.back()?, false) };
        let (_, w) = self.unlink(victim)?;
        let hash = accesses.hash(victim);
        if ghost_t1 {
            self.b1.push_front(hash, w);
        } else {
            self.b2.push_front(hash, w);
        }
        self.trim_ghosts();
        Some(victim)
    }
    fn len(&self) -> usize {
        self.t1.len() + self.t2.len()
    }
}

/// Makes [`ArcPolicy`] policies.
#[derive(Debug, Default, Clone, Copy)]
pub struct ArcFactory;

impl PolicyFactory for ArcFactory {
    fn name(&self) -> &str {
        "arc"
    }
    fn build(&self, max_weight: u64) -> Box<dyn EvictionPolicy> {
        Box::new(ArcPolicy::new(max_weight))
    }
}
