//! Soonest expiry first.

use crate::ordered::Ranked;
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, PolicyFactory, ReadTracking, SlotId};

/// Evicts the entry that would expire soonest; entries without an expiry go last, oldest
/// first. Reads do not matter to it, so it asks for the free access-bit tracking.
pub struct TtlOrdered {
    ranked: Ranked,
    tick: u64,
}

impl std::fmt::Debug for TtlOrdered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlOrdered").field("len", &self.ranked.len()).finish()
    }
}

impl TtlOrdered {
    /// An empty policy.
    pub fn new() -> Self {
        TtlOrdered { ranked: Ranked::default(), tick: 0 }
    }
}

impl Default for TtlOrdered {
    fn default() -> Self {
        Self::new()
    }
}

impl EvictionPolicy for TtlOrdered {
    fn name(&self) -> &'static str {
        "ttl"
    }
    fn read_tracking(&self) -> ReadTracking {
        ReadTracking::AccessBits
    }
    fn on_insert(&mut self, slot: SlotId, info: EntryInfo) {
        self.tick += 1;
        self.ranked.set(slot, info.expires.unwrap_or(u64::MAX), self.tick);
    }
    fn on_access(&mut self, _slot: SlotId) {}
    fn on_update(&mut self, slot: SlotId, info: EntryInfo) {
        if self.ranked.get(slot).is_some() {
            self.on_insert(slot, info);
        }
    }
    fn on_remove(&mut self, slot: SlotId) {
        self.ranked.remove(slot);
    }
    fn evict(&mut self, _accesses: &mut dyn AccessView) -> Option<SlotId> {
        self.ranked.pop_min().map(|(_, _, slot)| slot)
    }
    fn len(&self) -> usize {
        self.ranked.len()
    }
}

/// Makes [`TtlOrdered`] policies.
#[derive(Debug, Default, Clone, Copy)]
pub struct TtlFactory;

impl PolicyFactory for TtlFactory {
    fn name(&self) -> &str {
        "ttl"
    }
    fn build(&self, _max_weight: u64) -> Box<dyn EvictionPolicy> {
        Box::new(TtlOrdered::new())
    }
}
