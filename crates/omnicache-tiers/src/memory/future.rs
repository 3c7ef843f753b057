//! The memory cache for async code: loaders are futures. Reads and writes are the same
//! synchronous, non-blocking calls as in [`sync`](super::sync); only loading awaits.

use super::builder::CacheBuilder;
use super::engine::Engine;
use super::flight::{AsyncWaiter, Flights, Lead, Outcome};
use super::DefaultHashBuilder;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

/// A concurrent, bounded, expiring in-memory cache with async loaders.
///
/// ```
/// use omnicache_tiers::memory::future::Cache;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let cache: Cache<u32, String> = Cache::builder().max_capacity(100).build();
/// let v = cache.get_with(1, async { "one".to_string() }).await;
/// assert_eq!(v, "one");
/// assert_eq!(cache.get(&1).as_deref(), Some("one"));
/// # });
/// ```
pub struct Cache<K, V, S = DefaultHashBuilder> {
    pub(crate) engine: Arc<Engine<K, V, S>>,
    flights: Arc<Flights<K, AsyncWaiter<V>, S>>,
}

impl<K, V, S> Clone for Cache<K, V, S> {
    fn clone(&self) -> Self {
        Cache { engine: self.engine.clone(), flights: self.flights.clone() }
    }
}

impl<K, V, S> fmt::Debug for Cache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("future::Cache").field(&self.engine).finish()
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

    /// The value for `key`, awaiting `init` to produce and cache it on a miss. Concurrent
    /// callers for the same key await a single run. If the leading future panics or is dropped,
    /// the waiters are released to try again themselves.
    pub async fn get_with(&self, key: K, init: impl Future<Output = V>) -> V
    where
        K: Clone,
    {
        match self.try_get_with(key, async { Ok::<V, Infallible>(init.await) }).await {
            Ok(v) => v,
            Err(e) => match *e {},
        }
    }

    /// Like [`get_with`](Self::get_with) for fallible loaders. An error is not cached; it is
    /// returned, shared as `Arc<E>`, to the caller and to every waiter of that run. With
    /// [`stale_if_error`](super::CacheBuilder::stale_if_error), a value that expired less than
    /// the grace ago is returned instead of the error.
    pub async fn try_get_with<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V, Arc<E>>
    where
        K: Clone,
        E: Send + Sync + 'static,
    {
        self.load(key, init, false).await
    }

    /// [`try_get_with`](Self::try_get_with) with refresh-ahead: with
    /// [`refresh_after_write`](super::CacheBuilder::refresh_after_write), a hit on a value
    /// written longer ago than that returns it at once and reloads it once by awaiting `init`
    /// on a task of the current Tokio runtime (hence `Send + 'static`; outside a runtime no
    /// reload starts); the reload replaces the value unless the key was written meanwhile, and
    /// a failed reload keeps the old value ([`read_through_stats`](Self::read_through_stats)).
    pub async fn try_get_with_refresh<E, F>(&self, key: K, init: F) -> Result<V, Arc<E>>
    where
        K: Clone,
        F: Future<Output = Result<V, E>> + Send + 'static,
        E: Send + Sync + 'static,
    {
        if !self.engine.refreshes() {
            return self.load(key, init, false).await;
        }
        let Some(v) = self.engine.get(&key) else { return self.load(key, init, true).await };
        if self.engine.refresh_due(&key) {
            let (waiter, leader) = self.flights.join_or_lead(&key);
            if leader {
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => {
                        self.engine.read_through.add(super::REFRESHES);
                        let cache = self.clone();
                        // Writes after this instant are newer than the reload.
                        let started = self.engine.now();
                        rt.spawn(async move {
                            let lead = Lead::new(&cache.flights, &key, waiter);
                            let result = init.await;
                            lead.finish_refresh(&cache.engine, result, started);
                        });
                    }
                    Err(_) => Lead::new(&self.flights, &key, waiter).complete(Outcome::Abandoned),
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
    async fn load<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
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
                match waiter.wait().await.settle::<E>() {
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
                lead.complete(Outcome::Abandoned);
                continue;
            };
            let started = self.engine.now();
            let result = init.await;
            let nanos = self.engine.now().saturating_sub(started);
            return lead.finish(&self.engine, result, nanos);
        }
    }

    /// Loads in progress (for tests and metrics).
    pub fn loads_in_flight(&self) -> usize {
        self.flights.in_flight()
    }
}
