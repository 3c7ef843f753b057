//! The builder both cache flavours share.

use super::engine::{Config, Engine, Events};
use super::{DefaultHashBuilder, EvictionListener, Weigher};
use omnicache_core::{
    AdmissionPolicy, AtomicStats, EventListener, ExpiryPolicy, PolicyFactory, RemovalCause,
    SharedClock, StatsRecorder,
};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// Each shard holds at least this much budget, so small caches use few shards.
const MIN_WEIGHT_PER_SHARD: u64 = 4096;

/// Shards per core by default. Writes take their shard's lock exclusively, so with skewed keys
/// the readers of a hot shard wait behind its writers; 8 per core (rather than 4) halved that
/// in the `rw` race at 2 threads (docs/BENCHMARKS.md).
const SHARDS_PER_CPU: usize = 8;

/// Builds a [`sync::Cache`](super::sync::Cache) or a [`future::Cache`](super::future::Cache).
///
/// ```
/// use omnicache_tiers::memory::sync::Cache;
/// use std::time::Duration;
///
/// let cache: Cache<u64, String> = Cache::builder()
///     .max_weight(1 << 20)
///     .weigher(|_k, v: &String| v.len() as u32)
///     .time_to_idle(Duration::from_secs(300))
///     .stats(true)
///     .build();
/// cache.insert(1, "one".into());
/// assert_eq!(cache.weighted_size(), 3);
/// ```
#[must_use]
pub struct CacheBuilder<K, V, C> {
    max_weight: Option<u64>,
    weigher: Option<Weigher<K, V>>,
    ttl: Option<Duration>,
    tti: Option<Duration>,
    expiry: Option<Arc<dyn ExpiryPolicy<K, V>>>,
    policy: Option<Arc<dyn PolicyFactory>>,
    listener: Option<EvictionListener<K, V>>,
    stats: Option<Arc<dyn StatsRecorder>>,
    admission: Option<Arc<dyn AdmissionPolicy>>,
    events: Option<Events<K>>,
    refresh_after: Option<Duration>,
    stale_if_error: Option<Duration>,
    clock: SharedClock,
    shards: Option<usize>,
    _cache: PhantomData<fn() -> C>,
}

impl<K, V, C> fmt::Debug for CacheBuilder<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("max_weight", &self.max_weight)
            .field("weigher", &self.weigher.is_some())
            .field("time_to_live", &self.ttl)
            .field("time_to_idle", &self.tti)
            .field("expiry", &self.expiry.is_some())
            .field("policy", &self.policy.as_ref().map(|p| p.name().to_string()))
            .field("listener", &self.listener.is_some())
            .field("stats", &self.stats.is_some())
            .field("admission", &self.admission)
            .field("events", &self.events.as_ref().map(|e| &e.listener))
            .field("clock", &self.clock)
            .field("shards", &self.shards)
            .finish()
    }
}

impl<K, V, C> Default for CacheBuilder<K, V, C> {
    fn default() -> Self {
        CacheBuilder {
            max_weight: None,
            weigher: None,
            ttl: None,
            tti: None,
            expiry: None,
            policy: None,
            listener: None,
            stats: None,
            admission: None,
            events: None,
            refresh_after: None,
            stale_if_error: None,
            clock: SharedClock::System,
            shards: None,
            _cache: PhantomData,
        }
    }
}

impl<K, V, C> CacheBuilder<K, V, C>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Bounds the number of entries (each weighs 1 unless a [`weigher`](Self::weigher) is set).
    /// Default: unbounded.
    pub fn max_capacity(mut self, entries: u64) -> Self {
        self.max_weight = Some(entries);
        self
    }

    /// Bounds the total weight given by the [`weigher`](Self::weigher). The same setting as
    /// [`max_capacity`](Self::max_capacity), named for weighted caches. Default: unbounded.
    pub fn max_weight(mut self, weight: u64) -> Self {
        self.max_weight = Some(weight);
        self
    }

    /// How much each entry weighs. A weight of 0 counts as 1. Default: 1 per entry.
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// Entries expire this long after they were written. Default: never.
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Entries expire this long after they were last read or written (capped by the TTL).
    /// Default: never.
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.tti = Some(tti);
        self
    }

    /// Per-entry lifetimes from an [`ExpiryPolicy`]; replaces [`time_to_live`](Self::time_to_live)
    /// for the entries it decides. Default: none.
    pub fn expire_after(mut self, expiry: impl ExpiryPolicy<K, V>) -> Self {
        self.expiry = Some(Arc::new(expiry));
        self
    }

    /// The eviction policy. Default: [`omnicache_core::DefaultPolicy`] (S3-FIFO).
    pub fn policy(mut self, factory: impl PolicyFactory) -> Self {
        self.policy = Some(Arc::new(factory));
        self
    }

    /// The eviction policy, shared. Default: as [`policy`](Self::policy).
    pub fn policy_arc(mut self, factory: Arc<dyn PolicyFactory>) -> Self {
        self.policy = Some(factory);
        self
    }

    /// Weighs each new key arriving in a full cache against the entries the eviction policy
    /// would evict for it ([`AdmissionPolicy`]): refused, the new entry leaves instead (cause
    /// `Capacity`) and the others stay. The policy also hears every lookup and write. Default:
    /// none, and the cache pays nothing for the step.
    pub fn admission(mut self, admission: Arc<dyn AdmissionPolicy>) -> Self {
        self.admission = Some(admission);
        self
    }

    /// Sends [`CacheEvent`](omnicache_core::CacheEvent)s to `listener`: `Inserted` for every
    /// write that stored a value (with its weight), and `Removed` with its cause for every
    /// entry that leaves, after the cache's lock is released, on the thread that caused it.
    /// Events carry keys as bytes, made by `key` (for example `|k: &String| k.clone().into_bytes()`).
    /// Default: none, and no event is built.
    pub fn event_listener(
        mut self,
        listener: Arc<dyn EventListener>,
        key: impl Fn(&K) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        self.events = Some(Events { listener, key: Arc::new(key) });
        self
    }

    /// Refresh-ahead, as Caffeine's `refreshAfterWrite`: the first `try_get_with_refresh` of a
    /// value written more than `age` ago returns it at once and reloads it once in the
    /// background with that call's loader (on a thread of its own for the sync cache, on a task
    /// of the current Tokio runtime for the async one; hence a `Send + 'static` loader there,
    /// while `get_with` keeps borrowing loaders and never reloads). A failed reload keeps the
    /// old value; a reload never replaces a newer write. Both are counted
    /// (`read_through_stats`). Default: off.
    pub fn refresh_after_write(mut self, age: Duration) -> Self {
        self.refresh_after = Some(age);
        self
    }

    /// Stale-on-error: a value that expired less than `grace` ago is returned by `get_with` and
    /// `try_get_with` when their loader fails (and only then: every other read treats it as
    /// expired). Expired values stay that much longer before they are reclaimed. Default: off.
    pub fn stale_if_error(mut self, grace: Duration) -> Self {
        self.stale_if_error = Some(grace);
        self
    }

    /// Called with every entry that leaves, and why, after the cache's lock is released.
    /// Default: none.
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(K, V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Records hits, misses, loads and removals in lock-free striped counters, read with
    /// `stats()`. Default: off.
    pub fn stats(mut self, on: bool) -> Self {
        self.stats = on.then(|| Arc::new(AtomicStats::default()) as Arc<dyn StatsRecorder>);
        self
    }

    /// Records statistics into `recorder` (for example a Prometheus-backed one). Default: none.
    pub fn stats_recorder(mut self, recorder: Arc<dyn StatsRecorder>) -> Self {
        self.stats = Some(recorder);
        self
    }

    /// The clock for expiry; tests pass a [`MockClock`](omnicache_core::MockClock).
    /// Default: the system clock.
    pub fn clock(mut self, clock: impl Into<SharedClock>) -> Self {
        self.clock = clock.into();
        self
    }

    /// The number of shards, rounded up to a power of two. Each entry must fit in one shard's
    /// share of the budget. Default: eight per core, fewer for small budgets.
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n.max(1));
        self
    }

    pub(crate) fn engine<S>(self, hasher: S) -> Engine<K, V, S>
    where
        S: BuildHasher + Clone + Send + Sync + 'static,
    {
        let max_weight = self.max_weight.unwrap_or(u64::MAX);
        let shards = self.shards.unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
            let by_cpu = (cpus * SHARDS_PER_CPU).next_power_of_two() as u64;
            let by_size = (max_weight / MIN_WEIGHT_PER_SHARD).max(1);
            // Largest power of two not above `by_size`.
            let by_size = 1u64 << (63 - by_size.leading_zeros());
            by_cpu.min(by_size) as usize
        });
        Engine::new(Config {
            max_weight,
            shards,
            hasher,
            clock: self.clock,
            ttl: self.ttl,
            tti: self.tti,
            expiry: self.expiry,
            weigher: self.weigher,
            listener: self.listener,
            stats: self.stats,
            policy: self.policy.unwrap_or_else(omnicache_core::default_policy),
            admission: self.admission,
            events: self.events,
            refresh_after: self.refresh_after,
            stale_if_error: self.stale_if_error,
        })
    }

    pub(crate) fn default_hasher() -> DefaultHashBuilder {
        DefaultHashBuilder::default()
    }
}
