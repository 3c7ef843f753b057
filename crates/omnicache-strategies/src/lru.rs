//! Least recently used.

use crate::list::SlotList;
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, PolicyFactory, SlotId};

/// Evicts the entry read or written least recently. Reads are replayed in order from the
/// cache's read buffer ([`ReadTracking::Events`](omnicache_core::ReadTracking::Events)).
pub struct Lru {
    list: SlotList,
}

impl std::fmt::Debug for Lru {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lru").field("len", &self.list.len()).finish()
    }
}

impl Lru {
    /// An empty LRU.
    pub fn new() -> Self {
        Lru { list: SlotList::new() }
    }
}

impl Default for Lru {
    fn default() -> Self {
        Self::new()
    }
}

impl EvictionPolicy for Lru {
    fn name(&self) -> &'static str {
        "lru"
    }
    fn on_insert(&mut self, slot: SlotId, _info: EntryInfo) {
        self.list.push_front(slot);
    }
    fn on_access(&mut self, slot: SlotId) {
        self.list.move_to_front(slot);
    }
    fn on_update(&mut self, slot: SlotId, _info: EntryInfo) {
        self.list.move_to_front(slot);
    }
    fn on_remove(&mut self, slot: SlotId) {
        self.list.unlink(slot);
    }
    fn evict(&mut self, _accesses: &mut dyn AccessView) -> Option<SlotId> {
        self.list.pop_back()
    }
    fn len(&self) -> usize {
        self.list.len()
    }
}

/// Makes [`Lru`] policies.
#[derive(Debug, Default, Clone, Copy)]
pub struct LruFactory;

impl PolicyFactory for LruFactory {
    fn name(&self) -> &str {
        "lru"
    }
    fn build(&self, _max_weight: u64) -> Box<dyn EvictionPolicy> {
        Box::new(Lru::new())
    }
}
