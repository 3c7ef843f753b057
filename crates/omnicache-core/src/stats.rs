//! Statistics: what every part records, and a snapshot to read them.

use crate::meta::RemovalCause;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Receives counts from a cache or tier. Implementations must be cheap and never block:
/// the memory cache calls them on its hot path when statistics are on.
pub trait StatsRecorder: Send + Sync + fmt::Debug + 'static {
    /// `n` lookups found their entry.
    fn record_hits(&self, n: u64);
    /// `n` lookups did not.
    fn record_misses(&self, n: u64);
    /// A loader ran and produced a value (`ok`) or an error, taking `nanos`.
    fn record_load(&self, ok: bool, nanos: u64);
    /// An entry of `weight` left for `cause`.
    fn record_removal(&self, cause: RemovalCause, weight: u64);
    /// An entry moved up from a lower tier.
    fn record_promotion(&self) {}
    /// An entry moved down to a lower tier.
    fn record_demotion(&self) {}
    /// A tier call took `nanos`.
    fn record_tier_latency(&self, _tier: &str, _nanos: u64) {}
    /// The counters so far.
    fn snapshot(&self) -> StatsSnapshot;
}

/// Counters at one moment. All fields only grow, so two snapshots can be subtracted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Lookups that found their entry.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Loader runs that produced a value.
    pub loads_ok: u64,
    /// Loader runs that failed (error or panic).
    pub loads_failed: u64,
    /// Total time spent in loaders, in nanoseconds.
    pub load_nanos: u64,
    /// Removals by cause, indexed by [`RemovalCause::index`].
    pub removals: [u64; RemovalCause::ALL.len()],
    /// Total weight removed for capacity.
    pub evicted_weight: u64,
    /// Promotions from lower tiers.
    pub promotions: u64,
    /// Demotions to lower tiers.
    pub demotions: u64,
}

impl StatsSnapshot {
    /// Lookups in all.
    pub fn requests(&self) -> u64 {
        self.hits + self.misses
    }

    /// Hits over lookups; 1.0 when there were none (nothing was missed).
    pub fn hit_ratio(&self) -> f64 {
        match self.requests() {
            0 => 1.0,
            n => self.hits as f64 / n as f64,
        }
    }

    /// Removals for `cause`.
    pub fn removals(&self, cause: RemovalCause) -> u64 {
        self.removals[cause.index()]
    }

    /// Entries evicted by the cache (capacity and expiry).
    pub fn evictions(&self) -> u64 {
        self.removals(RemovalCause::Capacity) + self.removals(RemovalCause::Expired)
    }
}

const STRIPES: usize = 16;

#[repr(align(128))]
#[derive(Default)]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A lock-free [`StatsRecorder`] whose hit and miss counters are striped per thread, so two cores
/// counting hits do not fight over one cache line.
pub struct AtomicStats {
    stripes: [Stripe; STRIPES],
    loads_ok: AtomicU64,
    loads_failed: AtomicU64,
    load_nanos: AtomicU64,
    removals: [AtomicU64; RemovalCause::ALL.len()],
    evicted_weight: AtomicU64,
    promotions: AtomicU64,
    demotions: AtomicU64,
}

impl Default for AtomicStats {
    fn default() -> Self {
        AtomicStats {
            stripes: Default::default(),
            loads_ok: AtomicU64::new(0),
            loads_failed: AtomicU64::new(0),
            load_nanos: AtomicU64::new(0),
            removals: Default::default(),
            evicted_weight: AtomicU64::new(0),
            promotions: AtomicU64::new(0),
            demotions: AtomicU64::new(0),
        }
    }
}

fn stripe_index() -> usize {
    thread_local! {
        static INDEX: usize = {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            (NEXT.fetch_add(1, Ordering::Relaxed) as usize) % STRIPES
        };
    }
    INDEX.with(|i| *i)
}

impl AtomicStats {
    fn stripe(&self) -> &Stripe {
        &self.stripes[stripe_index()]
    }
}

impl fmt::Debug for AtomicStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AtomicStats").field(&self.snapshot()).finish()
    }
}

impl StatsRecorder for AtomicStats {
    #[inline]
    fn record_hits(&self, n: u64) {
        self.stripe().hits.fetch_add(n, Ordering::Relaxed);
    }
    #[inline]
    fn record_misses(&self, n: u64) {
        self.stripe().misses.fetch_add(n, Ordering::Relaxed);
    }
    fn record_load(&self, ok: bool, nanos: u64) {
        if ok { &self.loads_ok } else { &self.loads_failed }.fetch_add(1, Ordering::Relaxed);
        self.load_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
    fn record_removal(&self, cause: RemovalCause, weight: u64) {
        self.removals[cause.index()].fetch_add(1, Ordering::Relaxed);
        if cause == RemovalCause::Capacity {
            self.evicted_weight.fetch_add(weight, Ordering::Relaxed);
        }
    }
    fn record_promotion(&self) {
        self.promotions.fetch_add(1, Ordering::Relaxed);
    }
    fn record_demotion(&self) {
        self.demotions.fetch_add(1, Ordering::Relaxed);
    }
    fn snapshot(&self) -> StatsSnapshot {
        let mut s = StatsSnapshot::default();
        for stripe in &self.stripes {
            s.hits += stripe.hits.load(Ordering::Relaxed);
            s.misses += stripe.misses.load(Ordering::Relaxed);
        }
        s.loads_ok = self.loads_ok.load(Ordering::Relaxed);
        s.loads_failed = self.loads_failed.load(Ordering::Relaxed);
        s.load_nanos = self.load_nanos.load(Ordering::Relaxed);
        for (i, r) in self.removals.iter().enumerate() {
            s.removals[i] = r.load(Ordering::Relaxed);
        }
        s.evicted_weight = self.evicted_weight.load(Ordering::Relaxed);
        s.promotions = self.promotions.load(Ordering::Relaxed);
        s.demotions = self.demotions.load(Ordering::Relaxed);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_across_threads() {
        let stats = std::sync::Arc::new(AtomicStats::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let s = stats.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        s.record_hits(1);
                        s.record_misses(2);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        stats.record_removal(RemovalCause::Capacity, 7);
        stats.record_removal(RemovalCause::Expired, 1);
        stats.record_load(true, 10);
        stats.record_load(false, 5);
        let s = stats.snapshot();
        assert_eq!((s.hits, s.misses), (4000, 8000));
        assert_eq!(s.evictions(), 2);
        assert_eq!(s.evicted_weight, 7);
        assert_eq!((s.loads_ok, s.loads_failed, s.load_nanos), (1, 1, 15));
        assert!((s.hit_ratio() - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn empty_snapshot_has_ratio_one() {
        assert_eq!(StatsSnapshot::default().hit_ratio(), 1.0);
    }
}
