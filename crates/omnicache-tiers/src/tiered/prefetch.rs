//! Fetching ahead: after each lookup the cache asks its [`PrefetchAdvisor`] which keys are
//! likely next, and copies those a lower tier holds into L1 in the background, a bounded number
//! at a time. It remembers which fetched keys were not read yet, so the advisor hears whether
//! each fetch paid off.

use super::TieredCache;
use omnicache_core::{Access, PrefetchAdvisor, PrefetchOutcome};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// How a tiered cache fetches ahead; see [`TieredCacheBuilder::prefetch`](super::TieredCacheBuilder::prefetch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefetchLimits {
    /// Keys asked of the advisor per lookup. Default: 4.
    pub per_lookup: usize,
    /// Fetches running at once; suggestions beyond it are dropped (counted). Default: 32.
    pub in_flight: usize,
    /// Fetched keys remembered until read or evicted, to tell the advisor what paid off;
    /// beyond it, fetches are not remembered (and not reported). Default: 10,000.
    pub tracked: usize,
}

impl Default for PrefetchLimits {
    fn default() -> Self {
        PrefetchLimits { per_lookup: 4, in_flight: 32, tracked: 10_000 }
    }
}

/// What fetching ahead did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefetchStats {
    /// Keys the advisor suggested.
    pub suggested: u64,
    /// Fetches started (suggested keys not already in L1, within the in-flight bound).
    pub fetched: u64,
    /// Fetches that found the key in a tier and put it in L1.
    pub loaded: u64,
    /// Suggestions dropped because the in-flight bound was reached.
    pub dropped: u64,
    /// Fetched entries read before they left L1.
    pub used: u64,
    /// Fetched entries that left L1 unread.
    pub wasted: u64,
    /// Fetches running now.
    pub in_flight: u64,
}

/// A tiered cache's prefetching state; shared with L1's eviction listener.
pub(super) struct Prefetch {
    advisor: Arc<dyn PrefetchAdvisor>,
    limits: PrefetchLimits,
    running: AtomicUsize,
    /// Fetched keys not read yet.
    unread: Mutex<HashSet<Vec<u8>>>,
    counts: [AtomicU64; 6],
}

const SUGGESTED: usize = 0;
const FETCHED: usize = 1;
const LOADED: usize = 2;
const DROPPED: usize = 3;
const USED: usize = 4;
const WASTED: usize = 5;

impl fmt::Debug for Prefetch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prefetch")
            .field("advisor", &self.advisor)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Prefetch {
    pub(super) fn new(advisor: Arc<dyn PrefetchAdvisor>, limits: PrefetchLimits) -> Self {
        Prefetch {
            advisor,
            limits,
            running: AtomicUsize::new(0),
            unread: Mutex::default(),
            counts: Default::default(),
        }
    }

    fn add(&self, i: usize) {
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    /// A fetched key was read: the fetch paid off.
    fn read(&self, key: &[u8]) {
        if self.unread.lock().remove(key) {
            self.add(USED);
            self.advisor.outcome(key, PrefetchOutcome::Used);
        }
    }

    /// A key left L1: if it was fetched and never read, the fetch was wasted.
    pub(super) fn left(&self, key: &[u8]) {
        if self.unread.lock().remove(key) {
            self.add(WASTED);
            self.advisor.outcome(key, PrefetchOutcome::Wasted);
        }
    }

    pub(super) fn stats(&self) -> PrefetchStats {
        let g = |i: usize| self.counts[i].load(Ordering::Relaxed);
        PrefetchStats {
            suggested: g(SUGGESTED),
            fetched: g(FETCHED),
            loaded: g(LOADED),
            dropped: g(DROPPED),
            used: g(USED),
            wasted: g(WASTED),
            in_flight: self.running.load(Ordering::Relaxed) as u64,
        }
    }
}

impl TieredCache {
    /// After a caller's lookup of `key`: tells the advisor, and starts fetches of what it
    /// suggests.
    pub(super) fn after_lookup(&self, prefetch: &Arc<Prefetch>, key: &[u8], hit: bool) {
        if hit {
            prefetch.read(key);
        }
        let access = Access { key, hit, at: self.inner.clock.now() };
        let mut suggested = Vec::new();
        prefetch.advisor.advise(&access, prefetch.limits.per_lookup, &mut suggested);
        suggested.truncate(prefetch.limits.per_lookup);
        for next in suggested {
            prefetch.add(SUGGESTED);
            if next.is_empty() || next == key || self.inner.l1.contains_key(&next) {
                continue;
            }
            let admitted = prefetch
                .running
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < prefetch.limits.in_flight).then_some(n + 1)
                })
                .is_ok();
            if !admitted {
                prefetch.add(DROPPED);
                continue;
            }
            prefetch.add(FETCHED);
            let cache = self.clone();
            let prefetch = prefetch.clone();
            tokio::spawn(async move {
                if cache.inner.l1.contains_key(&next) {
                    // Read or written meanwhile.
                } else if cache.lookup(&next, false, false).await.is_some()
                    && cache.inner.l1.contains_key(&next)
                {
                    prefetch.add(LOADED);
                    let mut unread = prefetch.unread.lock();
                    if unread.len() < prefetch.limits.tracked {
                        unread.insert(next);
                    }
                }
                prefetch.running.fetch_sub(1, Ordering::AcqRel);
            });
        }
    }
}
