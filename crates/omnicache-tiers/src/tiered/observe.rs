//! What the tiered cache tells the outside: its listeners, a caller's [`StatsRecorder`] fed from
//! every layer, sampled access events, and tier health changes.

use omnicache_core::{AtomicStats, CacheEvent, EventListener, RemovalCause, StatsRecorder};
use omnicache_core::{StatsSnapshot, Timestamp};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

/// The listeners of a tiered cache, shared with L1's eviction listener.
#[derive(Clone, Default)]
pub(super) struct Listeners(pub(super) Arc<[Arc<dyn EventListener>]>);

impl Listeners {
    pub(super) fn any(&self) -> bool {
        !self.0.is_empty()
    }

    /// Sends the event `make` builds to every listener; builds nothing when there are none.
    pub(super) fn emit(&self, make: impl FnOnce() -> CacheEvent) {
        if self.0.is_empty() {
            return;
        }
        let event = make();
        for l in self.0.iter() {
            l.on_event(&event);
        }
    }
}

/// L1's statistics: its own counters, read by [`TieredCache::stats`](super::TieredCache::stats),
/// and the caller's recorder, which hears what L1 sees except its misses (an L1 miss may still
/// be a hit below; the tiered cache records the outcome itself).
pub(super) struct L1Stats {
    pub(super) own: AtomicStats,
    pub(super) caller: Arc<dyn StatsRecorder>,
}

impl fmt::Debug for L1Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("L1Stats").field("own", &self.own).finish_non_exhaustive()
    }
}

impl StatsRecorder for L1Stats {
    #[inline]
    fn record_hits(&self, n: u64) {
        self.own.record_hits(n);
        self.caller.record_hits(n);
    }
    #[inline]
    fn record_misses(&self, n: u64) {
        self.own.record_misses(n);
    }
    fn record_load(&self, ok: bool, nanos: u64) {
        self.own.record_load(ok, nanos);
        self.caller.record_load(ok, nanos);
    }
    fn record_removal(&self, cause: RemovalCause, weight: u64) {
        self.own.record_removal(cause, weight);
        self.caller.record_removal(cause, weight);
    }
    fn snapshot(&self) -> StatsSnapshot {
        self.own.snapshot()
    }
}

/// Which keys' lookups become [`CacheEvent::Accessed`]: one key in `every` by hash, so a sampled
/// key is seen on each of its lookups (what heavy-hitter and successor models need).
#[derive(Debug, Clone, Copy)]
pub(super) struct Sampling {
    every: u64,
}

impl Sampling {
    pub(super) fn new(every: u32) -> Option<Self> {
        (every > 0).then_some(Sampling { every: u64::from(every) })
    }

    #[inline]
    pub(super) fn picks(&self, key: &[u8]) -> bool {
        // A fixed seed: the same keys are sampled in every process, so instances agree.
        let h = foldhash::fast::FixedState::with_seed(0x6163_6365_7373).hash_one(key);
        h.is_multiple_of(self.every)
    }
}

/// Emits a sampled access event for `key`, if sampling is on, picks it, and someone listens.
#[inline]
pub(super) fn accessed(
    sampling: Option<Sampling>,
    events: &Listeners,
    key: &[u8],
    hit: bool,
    at: impl FnOnce() -> Timestamp,
) {
    if let Some(s) = sampling {
        if events.any() && s.picks(key) {
            let at = at();
            events.emit(|| CacheEvent::Accessed { key: key.to_vec(), hit, at });
        }
    }
}
