//! Size-aware eviction: GreedyDual-Size-Frequency (Cherkasova, 1998).

use crate::ordered::Ranked;
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, PolicyFactory, SlotId};

/// Fixed point: 32 fractional bits.
const ONE: u64 = 1 << 32;

/// Evicts the entry with the least value per byte. Each entry's priority is
/// `L + frequency / weight`, where `L` (the inflation value) rises to the priority of each
/// victim, so entries that stop being used age out even when small.
pub struct Gdsf {
    ranked: Ranked,
    /// (frequency, weight) by slot.
    meta: Vec<(u64, u64)>,
    inflation: u64,
    tick: u64,
}

impl std::fmt::Debug for Gdsf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gdsf")
            .field("len", &self.ranked.len())
            .field("inflation", &self.inflation)
            .finish()
    }
}

impl Gdsf {
    /// An empty policy.
    pub fn new() -> Self {
        Gdsf { ranked: Ranked::default(), meta: Vec::new(), inflation: 0, tick: 0 }
    }

    /// The priority of an entry used `freq` times weighing `weight`.
    pub fn priority(inflation: u64, freq: u64, weight: u64) -> u64 {
        inflation.saturating_add(freq.saturating_mul(ONE) / weight.max(1))
    }

    fn rank(&mut self, slot: SlotId) {
        let (freq, weight) = self.meta[slot as usize];
        self.tick += 1;
        self.ranked.set(slot, Self::priority(self.inflation, freq, weight), self.tick);
    }
}

impl Default for Gdsf {
    fn default() -> Self {
        Self::new()
    }
}

impl EvictionPolicy for Gdsf {
    fn name(&self) -> &'static str {
        "gdsf"
    }
    fn on_insert(&mut self, slot: SlotId, info: EntryInfo) {
        let i = slot as usize;
        if i >= self.meta.len() {
            self.meta.resize(i + 1, (0, 1));
        }
        self.meta[i] = (1, info.weight.max(1));
        self.rank(slot);
    }
    fn on_access(&mut self, slot: SlotId) {
        if self.ranked.get(slot).is_some() {
            self.meta[slot as usize].0 += 1;
            self.rank(slot);
        }
    }
    fn on_update(&mut self, slot: SlotId, info: EntryInfo) {
        if self.ranked.get(slot).is_some() {
            let m = &mut self.meta[slot as usize];
            m.0 += 1;
            m.1 = info.weight.max(1);
            self.rank(slot);
        }
    }
    fn on_remove(&mut self, slot: SlotId) {
        self.ranked.remove(slot);
    }
    fn evict(&mut self, _accesses: &mut dyn AccessView) -> Option<SlotId> {
        let (priority, _, slot) = self.ranked.pop_min()?;
        self.inflation = self.inflation.max(priority);
        Some(slot)
    }
    fn len(&self) -> usize {
        self.ranked.len()
    }
}

/// Makes [`Gdsf`] policies.
#[derive(Debug, Default, Clone, Copy)]
pub struct GdsfFactory;

impl PolicyFactory for GdsfFactory {
    fn name(&self) -> &str {
        "gdsf"
    }
    fn build(&self, _max_weight: u64) -> Box<dyn EvictionPolicy> {
        Box::new(Gdsf::new())
    }
}
