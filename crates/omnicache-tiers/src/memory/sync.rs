//! The memory cache for threads: loaders are closures.

use super::builder::CacheBuilder;
use super::engine::Engine;
use super::flight::{BlockingWaiter, Flights, Lead, Outcome};
use super::DefaultHashBuilder;
use std::convert::Infallible;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

/// A concurrent, bounded, expiring in-memory cache. Cloning is cheap and shares the cache.
///
/// ```
/// use omnicache_tiers::memory::sync::Cache;
///
/// let cache: Cache<u32, String> = Cache::builder().max_capacity(100).build();
/// cache.insert(1, "one".to_string());
/// assert_eq!(cache.get(&1).as_deref(), Some("one"));
///
/// // One loader run per key, however many threads ask at once.
/// let v = cache.get_with(2, || "two".to_string());
/// assert_eq!(v, "two");
/// let err = cache.try_get_with(3, || Err::<String, _>("backend down")).unwrap_err();
/// assert_eq!(*err, "backend down");
/// assert!(!cache.contains_key(&3), "errors are not cached");
/// ```
pub struct Cache<K, V, S = DefaultHashBuilder> {
    pub(crate) engine: Arc<Engine<K, V, S>>,
    flights: Arc<Flights<K, BlockingWaiter<V>, S>>,
}

impl<K, V, S> Clone for Cache<K, V, S> {
    fn clone(&self) -> Self {
        Cache { engine: self.engine.clone(), flights: self.flights.clone() }
    }
}

impl<K, V, S> fmt::Debug for Cache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("sync::Cache").field(&self.engine).finish()
    }
}

impl<K, V> Cache<K, V, DefaultHashBuilder>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache bounded to `max_capacity` entries, with the default policy.
    pub fn new(max_capacity: u64) -> Self {
        Self::builder().max_capacity(max_capacity).build()
    }

    /// A builder; see [`CacheBuilder`].
    pub fn builder() -> CacheBuilder<K, V, Self> {
        CacheBuilder::default()
    }
}

impl<K, V> CacheBuilder<K, V, Cache<K, V, DefaultHashBuilder>>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Builds the cache.
    pub fn build(self) -> Cache<K, V, DefaultHashBuilder> {
        self.build_with_hasher(Self::default_hasher())
    }

    /// Builds the cache with a hasher of your choice.
    pub fn build_with_hasher<S>(self, hasher: S) -> Cache<K, V, S>
    where
        S: BuildHasher + Clone + Send + Sync + 'static,
    {
        Cache {
            flights: Arc::new(Flights::new(hasher.clone())),
            engine: Arc::new(self.engine(hasher)),
        }
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    super::shared_methods!();

    /// Inserts unless a live value is present for which `keep` is true (checked and written
    /// under the key's shard lock); `ttl` as in `insert_with_ttl`. Returns whether it went in.
    #[cfg(feature = "tiered")]
    pub(crate) fn insert_unless(
        &self,
        key: K,
        value: V,
        ttl: Option<std::time::Duration>,
        keep: impl FnOnce(&V) -> bool,
    ) -> bool {
        self.engine.insert_unless(key, value, ttl, keep)
    }

    /// Removes `key` for `cause` if its value satisfies `pred` (checked under the key's shard
    /// lock).
    #[cfg(feature = "tiered")]
    pub(crate) fn remove_if<Q>(
        &self,
        key: &Q,
        cause: omnicache_core::RemovalCause,
        pred: impl FnOnce(&V) -> bool,
    ) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.engine.remove_if(key, cause, pred)
    }

    /// The value for `key`, running `init` to produce and cache it on a miss. Concurrent callers
    /// for the same key wait for a single run. If `init` panics, the panic reaches this caller
    /// and the waiters are released to try again themselves.
    pub fn get_with(&self, key: K, init: impl FnOnce() -> V) -> V
    where
        K: Clone,
    {
        match self.try_get_with(key, || Ok::<V, Infallible>(init())) {
            Ok(v) => v,
            Err(e) => match *e {},
        }
    }

    /// Like [`get_with`](Self::get_with) for fallible loaders. An error is not cached; it is
    /// returned, shared as `Arc<E>`, to the caller and to every waiter of that run. With
    /// [`stale_if_error`](super::CacheBuilder::stale_if_error), a value that expired less than
    /// the grace ago is returned instead of the error.
    pub fn try_get_with<E>(&self, key: K, init: impl FnOnce() -> Result<V, E>) -> Result<V, Arc<E>>
    where
        K: Clone,
        E: Send + Sync + 'static,
    {
        self.load(key, init, false)
    }

    /// [`try_get_with`](Self::try_get_with) with refresh-ahead: with
    /// [`refresh_after_write`](super::CacheBuilder::refresh_after_write), a hit on a value
    /// written longer ago than that returns it at once and reloads it once with `init` on a
    /// thread of its own (hence `Send + 'static`); the reload replaces the value unless the key
    /// was written meanwhile, and a failed reload keeps the old value
    /// ([`read_through_stats`](Self::read_through_stats) counts both).
    pub fn try_get_with_refresh<E, F>(&self, key: K, init: F) -> Result<V, Arc<E>>
    where
        K: Clone,
        F: FnOnce() -> Result<V, E> + Send + 'static,
        E: Send + Sync + 'static,
    {
        if !self.engine.refreshes() {
            return self.load(key, init, false);
        }
        let Some(v) = self.engine.get(&key) else { return self.load(key, init, true) };
        if self.engine.refresh_due(&key) {
            let (waiter, leader) = self.flights.join_or_lead(&key);
            if leader {
                self.engine.read_through.add(super::REFRESHES);
                let cache = self.clone();
                let (k, w) = (key.clone(), waiter.clone());
                // Writes after this instant are newer than the reload.
                let started = self.engine.now();
                let spawned =
                    std::thread::Builder::new().name("omnicache-refresh".into()).spawn(move || {
                        let lead = Lead::new(&cache.flights, &k, w);
                        let result = init();
                        lead.finish_refresh(&cache.engine, result, started);
                    });
                if spawned.is_err() {
                    // No thread to reload on: the value stays, and a later read tries again.
                    Lead::new(&self.flights, &key, waiter).complete(Outcome::Abandoned);
                }
            }
        }
        Ok(v)
    }

    /// What refresh-ahead and stale-on-error did so far.
    pub fn read_through_stats(&self) -> super::ReadThroughStats {
        self.engine.read_through.snapshot()
    }

    /// The loader's run, after a miss (already counted when `looked`).
    fn load<E>(
        &self,
        key: K,
        init: impl FnOnce() -> Result<V, E>,
        looked: bool,
    ) -> Result<V, Arc<E>>
    where
        K: Clone,
        E: Send + Sync + 'static,
    {
        let mut init = Some(init);
        let mut looked = looked;
        loop {
            if !std::mem::take(&mut looked) {
                if let Some(v) = self.engine.get(&key) {
                    return Ok(v);
                }
            }
            let (waiter, leader) = self.flights.join_or_lead(&key);
            if !leader {
                match waiter.wait().settle::<E>() {
                    Some(done) => return done,
                    None => continue, // the leader gave up: try again, maybe leading
                }
            }
            let lead = Lead::new(&self.flights, &key, waiter);
            // A leader that finished between our miss and our lead has cached the value.
            if let Some(v) = self.engine.get_again(&key) {
                return Ok(lead.succeed(v));
            }
            let Some(init) = init.take() else {
                // Only reachable if this caller led before, which returns or unwinds.
                lead.complete(Outcome::Abandoned);
                continue;
            };
            let started = self.engine.now();
            let result = init();
            let nanos = self.engine.now().saturating_sub(started);
            return lead.finish(&self.engine, result, nanos);
        }
    }

    /// Loads in progress (for tests and metrics).
    pub fn loads_in_flight(&self) -> usize {
        self.flights.in_flight()
    }
}
