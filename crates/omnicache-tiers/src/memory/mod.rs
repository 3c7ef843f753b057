//! The concurrent memory cache: OmniCache's L1.
//!
//! [`sync::Cache`] and [`future::Cache`] share one engine and the same method names; the future
//! flavour's loaders are `async`.
//!
//! ## Design
//!
//! The cache is split into shards (a power of two, eight per core by default, fewer for small
//! caches), each a hash table of slot indices plus a slab of entries behind a reader-writer lock.
//! - **Reads take the shard's lock shared** and touch nothing but the entry: a relaxed load of its
//!   deadline (the clock is read only when the entry has one), a relaxed store to its access
//!   counter (skipped once saturated, so hot entries stop writing), and a clone of the value.
//!   Policies that need ordered reads (LRU, LFU) get them through a small lossy per-shard buffer
//!   replayed under the write lock, as Caffeine does; the default policy needs only the counters.
//! - **Writes take the shard's lock exclusively**, update the table and the policy, evict until
//!   the shard's budget holds, and reclaim a few expired entries (amortized maintenance). The
//!   eviction listener and statistics run after the lock is released.
//! - **Expiry** is checked on every read, so an expired entry is never returned. Expired entries
//!   are reclaimed by that amortized sweep on the caller threads, or at once by
//!   [`sync::Cache::run_pending_tasks`]; there is no background thread.
//!
//! ## Edge cases, all without panicking
//!
//! | input | behaviour |
//! |---|---|
//! | capacity or weight 0 | nothing is stored; each insert is reported to the listener as `Capacity` |
//! | weigher returns 0 | the entry weighs 1, so the bound on weight also bounds entries |
//! | weigher returns `u32::MAX`, or more than a shard's share of `max_weight` | not stored; reported as `Capacity` |
//! | TTL (or TTI) of zero | nothing is stored; the value is reported as `Expired` |
//! | TTL of `Duration::MAX` | saturates: the entry never expires |
//! | no capacity set | unbounded |
//!
//! An entry must fit within one shard's share of the budget (`max_weight / shards`). The builder
//! uses fewer shards for small budgets (at least 4,096 units a shard, so a cache of up to 8,191 entries has one shard and fills to its exact capacity); [`CacheBuilder::shards`]
//! sets the count for caches of few, large entries.

mod builder;
mod clock;
mod engine;
pub(crate) mod flight;
pub mod future;
mod prims;
mod read_through;
pub mod sync;

pub use builder::CacheBuilder;
pub use read_through::ReadThroughStats;
pub(crate) use read_through::{ReadThroughCounts, REFRESHES, REFRESH_FAILURES, STALE_SERVED};

use omnicache_core::RemovalCause;
use std::sync::Arc;

/// The default hasher: foldhash, seeded per cache.
pub type DefaultHashBuilder = foldhash::fast::RandomState;

/// Computes an entry's weight (bytes, or any unit) for weight-bounded caches.
pub type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u32 + Send + Sync + 'static>;

/// Called once for every entry that leaves the cache, with the reason, outside any lock.
pub type EvictionListener<K, V> = Arc<dyn Fn(K, V, RemovalCause) + Send + Sync + 'static>;

/// The methods both flavours share, with identical names and behaviour.
macro_rules! shared_methods {
    () => {
        /// The value for `key`, if present and not expired. Never blocks on I/O; takes the
        /// key's shard lock shared.
        #[inline]
        pub fn get<Q>(&self, key: &Q) -> Option<V>
        where
            K: std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        {
            self.engine.get(key)
        }

        /// Inserts or replaces, with the cache's expiry rules.
        #[inline]
        pub fn insert(&self, key: K, value: V) {
            self.engine.insert(key, value, None)
        }

        /// Inserts or replaces with its own time to live, overriding the cache's rules for this
        /// entry. A zero TTL stores nothing; `Duration::MAX` never expires.
        pub fn insert_with_ttl(&self, key: K, value: V, ttl: std::time::Duration) {
            self.engine.insert(key, value, Some(ttl))
        }

        /// Removes `key` and returns its value if it was live.
        pub fn remove<Q>(&self, key: &Q) -> Option<V>
        where
            K: std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        {
            self.engine.remove(key, omnicache_core::RemovalCause::Explicit)
        }

        /// Removes `key` without returning it.
        pub fn invalidate<Q>(&self, key: &Q)
        where
            K: std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        {
            self.engine.remove(key, omnicache_core::RemovalCause::Explicit);
        }

        /// Removes every entry, reporting each to the listener.
        pub fn invalidate_all(&self) {
            self.engine.remove_where(None, omnicache_core::RemovalCause::Explicit)
        }

        /// Removes every entry for which `predicate` returns true, now.
        pub fn invalidate_if(&self, predicate: impl Fn(&K, &V) -> bool) {
            self.engine.remove_where(Some(&predicate), omnicache_core::RemovalCause::Explicit)
        }

        /// Whether `key` is present and not expired. Does not count as an access.
        pub fn contains_key<Q>(&self, key: &Q) -> bool
        where
            K: std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        {
            self.engine.contains_key(key)
        }

        /// Entries held, including expired ones not reclaimed yet (call
        /// [`run_pending_tasks`](Self::run_pending_tasks) first for an exact count).
        pub fn entry_count(&self) -> u64 {
            self.engine.entry_count()
        }

        /// Total weight held.
        pub fn weighted_size(&self) -> u64 {
            self.engine.weighted_size()
        }

        /// The configured bound on weight (`u64::MAX` when unbounded).
        pub fn max_weight(&self) -> u64 {
            self.engine.max_weight()
        }

        /// Live entries, shard by shard. Each shard is copied under its read lock, so the
        /// iterator holds no lock while you use it and sees each shard at one moment.
        pub fn iter(&self) -> $crate::memory::Iter<K, V>
        where
            K: Clone,
        {
            let engine = self.engine.clone();
            let shards = engine.shard_count();
            $crate::memory::Iter {
                next_shard: 0,
                shards,
                current: Vec::new().into_iter(),
                fetch: Box::new(move |i| engine.snapshot_shard(i)),
            }
        }

        /// Reclaims expired entries and replays buffered reads now, instead of amortized.
        pub fn run_pending_tasks(&self) {
            self.engine.run_pending_tasks()
        }

        /// Switches the eviction policy of the live cache. Every entry stays; the new policy
        /// adopts them all.
        pub fn set_policy(&self, factory: impl omnicache_core::PolicyFactory) {
            self.engine.set_policy(std::sync::Arc::new(factory))
        }

        /// Switches the eviction policy, given as a shared factory.
        pub fn set_policy_arc(&self, factory: std::sync::Arc<dyn omnicache_core::PolicyFactory>) {
            self.engine.set_policy(factory)
        }

        /// The name of the current eviction policy.
        pub fn policy_name(&self) -> String {
            self.engine.policy_name()
        }

        /// The factory of the current eviction policy.
        pub fn policy(&self) -> std::sync::Arc<dyn omnicache_core::PolicyFactory> {
            self.engine.policy_factory()
        }

        /// Counters so far, if statistics are on.
        pub fn stats(&self) -> Option<omnicache_core::StatsSnapshot> {
            self.engine.stats().map(|s| s.snapshot())
        }

        #[doc(hidden)]
        /// Checks internal consistency (for tests): sizes, table, policy and budget agree.
        pub fn check_invariants(&self) -> Result<(), String> {
            self.engine.check_invariants()
        }
    };
}
pub(crate) use shared_methods;

/// An iterator over a snapshot of live entries; see `Cache::iter`.
pub struct Iter<K, V> {
    next_shard: usize,
    shards: usize,
    current: std::vec::IntoIter<(K, V)>,
    fetch: Box<dyn Fn(usize) -> Vec<(K, V)> + Send + Sync>,
}

impl<K, V> std::fmt::Debug for Iter<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").field("shard", &self.next_shard).field("of", &self.shards).finish()
    }
}

impl<K, V> Iterator for Iter<K, V> {
    type Item = (K, V);
    fn next(&mut self) -> Option<(K, V)> {
        loop {
            if let Some(x) = self.current.next() {
                return Some(x);
            }
            if self.next_shard >= self.shards {
                return None;
            }
            self.current = (self.fetch)(self.next_shard).into_iter();
            self.next_shard += 1;
        }
    }
}
