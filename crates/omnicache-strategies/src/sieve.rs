//! SIEVE (Zhang et al., NSDI'24).

use crate::list::SlotList;
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, PolicyFactory, ReadTracking, SlotId};

/// One FIFO queue and a hand. New entries go to the head; reads set a visited bit (the cache's
/// access counter, so reads take no lock). To evict, the hand walks from where it stopped
/// towards the head (wrapping to the tail), clearing visited bits, and evicts the first entry
/// not visited; it stays where it stopped for the next eviction. Entries that survive are not
/// moved, which is what sets SIEVE apart from CLOCK's reinsertion.
pub struct Sieve {
    list: SlotList,
    visited: Vec<bool>,
    hand: Option<SlotId>,
    /// The entry inserted last. The cache inserts before it evicts, where SIEVE evicts before
    /// it inserts, so the hand passes over the newcomer as if it were not there yet.
    newest: Option<SlotId>,
}

impl std::fmt::Debug for Sieve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sieve").field("len", &self.list.len()).field("hand", &self.hand).finish()
    }
}

impl Sieve {
    /// An empty SIEVE.
    pub fn new() -> Self {
        Sieve { list: SlotList::new(), visited: Vec::new(), hand: None, newest: None }
    }

    /// Where the hand stands (the next entry to examine), if it has started.
    pub fn hand(&self) -> Option<SlotId> {
        self.hand
    }
}

impl Default for Sieve {
    fn default() -> Self {
        Self::new()
    }
}

impl EvictionPolicy for Sieve {
    fn name(&self) -> &'static str {
        "sieve"
    }
    fn read_tracking(&self) -> ReadTracking {
        ReadTracking::AccessBits
    }
    fn on_insert(&mut self, slot: SlotId, _info: EntryInfo) {
        let i = slot as usize;
        if i >= self.visited.len() {
            self.visited.resize(i + 1, false);
        }
        if self.list.contains(slot) {
            self.on_remove(slot);
        }
        self.visited[i] = false;
        self.list.push_front(slot);
        self.newest = Some(slot);
    }
    fn on_access(&mut self, slot: SlotId) {
        if self.list.contains(slot) {
            self.visited[slot as usize] = true;
        }
    }
    fn on_update(&mut self, slot: SlotId, _info: EntryInfo) {
        self.on_access(slot);
    }
    fn on_remove(&mut self, slot: SlotId) {
        if !self.list.contains(slot) {
            return;
        }
        if self.hand == Some(slot) {
            self.hand = self.list.newer(slot);
        }
        if self.newest == Some(slot) {
            self.newest = None;
        }
        self.list.unlink(slot);
    }
    fn evict(&mut self, accesses: &mut dyn AccessView) -> Option<SlotId> {
        let mut h = self.hand.or_else(|| self.list.back())?;
        loop {
            if self.newest == Some(h) && self.list.len() > 1 {
                h = self.list.newer(h).or_else(|| self.list.back())?;
                continue;
            }
            let read = accesses.take_accesses(h) > 0;
            if self.visited[h as usize] || read {
                self.visited[h as usize] = false;
                h = self.list.newer(h).or_else(|| self.list.back())?;
            } else {
                // Past the newcomer there is nothing in SIEVE's order: wrap to the tail.
                self.hand = self.list.newer(h).filter(|&n| Some(n) != self.newest);
                if self.newest == Some(h) {
                    self.newest = None;
                }
                self.list.unlink(h);
                return Some(h);
            }
        }
    }
    fn len(&self) -> usize {
        self.list.len()
    }
}

/// Makes [`Sieve`] policies.
#[derive(Debug, Default, Clone, Copy)]
pub struct SieveFactory;

impl PolicyFactory for SieveFactory {
    fn name(&self) -> &str {
        "sieve"
    }
    fn build(&self, _max_weight: u64) -> Box<dyn EvictionPolicy> {
        Box::new(Sieve::new())
    }
}
