//! Least frequently used, with aging.

use crate::ordered::Ranked;
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, PolicyFactory, SlotId};

/// Evicts the entry with the fewest uses (ties: the one used least recently). Every
/// `age_period` uses, all counts are halved, so popularity that is not renewed decays and a key
/// that was hot yesterday does not squat forever.
pub struct Lfu {
    ranked: Ranked,
    tick: u64,
    since_aging: u64,
    age_period: u64,
}

impl std::fmt::Debug for Lfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lfu")
            .field("len", &self.ranked.len())
            .field("age_period", &self.age_period)
            .finish()
    }
}

impl Lfu {
    /// An LFU that halves counts every `age_period` uses (at least 1).
    pub fn new(age_period: u64) -> Self {
        Lfu { ranked: Ranked::default(), tick: 0, since_aging: 0, age_period: age_period.max(1) }
    }

    fn bump(&mut self, slot: SlotId) {
        let Some((count, _)) = self.ranked.get(slot) else { return };
        self.tick += 1;
        self.ranked.set(slot, count.saturating_add(1), self.tick);
        self.since_aging += 1;
        if self.since_aging >= self.age_period {
            self.since_aging = 0;
            self.ranked.rescore(|c| c / 2);
        }
    }
}

impl EvictionPolicy for Lfu {
    fn name(&self) -> &'static str {
        "lfu"
    }
    fn on_insert(&mut self, slot: SlotId, _info: EntryInfo) {
        self.tick += 1;
        self.ranked.set(slot, 1, self.tick);
    }
    fn on_access(&mut self, slot: SlotId) {
        self.bump(slot);
    }
    fn on_update(&mut self, slot: SlotId, _info: EntryInfo) {
        self.bump(slot);
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

/// Makes [`Lfu`] policies; counts halve every `10 × capacity` uses unless set.
#[derive(Debug, Default, Clone, Copy)]
pub struct LfuFactory {
    /// Uses between halvings; `None` for ten times the capacity (in entries or weight units).
    pub age_period: Option<u64>,
}

impl PolicyFactory for LfuFactory {
    fn name(&self) -> &str {
        "lfu"
    }
    fn build(&self, max_weight: u64) -> Box<dyn EvictionPolicy> {
        let period =
            self.age_period.unwrap_or_else(|| max_weight.saturating_mul(10).clamp(16, 1 << 40));
        Box::new(Lfu::new(period))
    }
}
