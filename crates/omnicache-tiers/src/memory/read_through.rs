//! Counts of refresh-ahead and stale-on-error, shared by the memory caches and the tiered cache.

use std::sync::atomic::{AtomicU64, Ordering};

/// What refresh-ahead and stale-on-error did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadThroughStats {
    /// Background reloads started by reads of entries older than `refresh_after_write`.
    pub refreshes: u64,
    /// Of those, reloads that failed (the old value was kept).
    pub refresh_failures: u64,
    /// Expired entries served within the `stale_if_error` grace because the loader failed.
    pub stale_served: u64,
}

pub(crate) const REFRESHES: usize = 0;
pub(crate) const REFRESH_FAILURES: usize = 1;
pub(crate) const STALE_SERVED: usize = 2;

/// The counters behind [`ReadThroughStats`].
#[derive(Debug, Default)]
pub(crate) struct ReadThroughCounts([AtomicU64; 3]);

impl ReadThroughCounts {
    pub(crate) fn add(&self, i: usize) {
        self.0[i].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ReadThroughStats {
        let g = |i: usize| self.0[i].load(Ordering::Relaxed);
        ReadThroughStats {
            refreshes: g(REFRESHES),
            refresh_failures: g(REFRESH_FAILURES),
            stale_served: g(STALE_SERVED),
        }
    }
}
