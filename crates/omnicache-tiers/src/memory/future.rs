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
    /// returned, shared as `Arc<E>`, to the caller and to every waiter of that run.
    pub async fn try_get_with<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V, Arc<E>>
    where
        K: Clone,
        E: Send + Sync + 'static,
    {
        let mut init = Some(init);
        loop {
            if let Some(v) = self.engine.get(&key) {
                return Ok(v);
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
