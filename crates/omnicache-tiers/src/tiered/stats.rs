//! Each tier's counters as the tiered cache sees them.

use crate::breaker::BreakerState;
use omnicache_core::{RemovalCause, TierHealth};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one tier, as seen by the tiered cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierStats {
    /// Reads that found the entry.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
    /// Calls that failed or timed out.
    pub errors: u64,
    /// Of those, calls that timed out.
    pub timeouts: u64,
    /// Calls skipped because the breaker was open.
    pub skipped: u64,
    /// Entries found corrupt.
    pub corrupt: u64,
    /// Entries promoted from this tier.
    pub promotions: u64,
    /// Entries written to this tier by demotion from L1.
    pub demotions: u64,
    /// Writes that succeeded.
    pub writes: u64,
    /// Demotions that could not be written (queue full or tier failing).
    pub dropped: u64,
    /// Total time in calls to the tier, in nanoseconds, and their number.
    pub latency_nanos: u64,
    /// Calls timed.
    pub calls: u64,
    /// Entries this cache removed from the tier, by cause ([`RemovalCause::index`]): explicit
    /// removals, invalidations, complaints (`Health`), corruption and sweeps (`Expired`).
    /// Evictions a tier makes by itself (a byte budget, Redis's own expiry) are its own
    /// statistics, such as `DiskTier::stats`.
    pub removals: [u64; RemovalCause::ALL.len()],
}

#[derive(Debug, Default)]
pub(super) struct AtomicTierStats([AtomicU64; 12], [AtomicU64; RemovalCause::ALL.len()]);

impl AtomicTierStats {
    pub(super) fn add(&self, i: usize, n: u64) {
        self.0[i].fetch_add(n, Ordering::Relaxed);
    }
    pub(super) fn removed(&self, cause: RemovalCause, n: u64) {
        self.1[cause.index()].fetch_add(n, Ordering::Relaxed);
    }
    pub(super) fn snapshot(&self) -> TierStats {
        let g = |i: usize| self.0[i].load(Ordering::Relaxed);
        TierStats {
            hits: g(HITS),
            misses: g(MISSES),
            errors: g(ERRORS),
            timeouts: g(TIMEOUTS),
            skipped: g(SKIPPED),
            corrupt: g(CORRUPT),
            promotions: g(PROMOTIONS),
            demotions: g(DEMOTIONS),
            writes: g(WRITES),
            dropped: g(DROPPED),
            latency_nanos: g(LATENCY),
            calls: g(CALLS),
            removals: std::array::from_fn(|i| self.1[i].load(Ordering::Relaxed)),
        }
    }
}

pub(super) const HITS: usize = 0;
pub(super) const MISSES: usize = 1;
pub(super) const ERRORS: usize = 2;
pub(super) const SKIPPED: usize = 3;
pub(super) const CORRUPT: usize = 4;
pub(super) const PROMOTIONS: usize = 5;
pub(super) const DEMOTIONS: usize = 6;
pub(super) const WRITES: usize = 7;
pub(super) const DROPPED: usize = 8;
pub(super) const LATENCY: usize = 9;
pub(super) const CALLS: usize = 10;
pub(super) const TIMEOUTS: usize = 11;

/// The state of one tier, for health and readiness reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierStatus {
    /// The tier's name.
    pub name: String,
    /// What the tier says of itself.
    pub health: TierHealth,
    /// The breaker in front of it.
    pub breaker: BreakerState,
    /// Its counters.
    pub stats: TierStats,
    /// Whether the last call that reached it failed.
    pub failing: bool,
    /// The reason of its last failure, if any (secrets redacted by the tier).
    pub last_error: Option<String>,
}
