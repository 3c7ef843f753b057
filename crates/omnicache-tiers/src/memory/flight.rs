//! Single flight: one loader run per key, however many callers wait for it.

use super::engine::Engine;
use std::any::Any;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

/// What waiters learn when the leader finishes.
pub(crate) enum Outcome<V> {
    Value(V),
    /// The loader's error, type-erased so one map serves every error type.
    Error(Arc<dyn Any + Send + Sync>),
    /// The leader panicked or was cancelled: waiters try again, one of them leading.
    Abandoned,
}

impl<V: Clone> Clone for Outcome<V> {
    fn clone(&self) -> Self {
        match self {
            Outcome::Value(v) => Outcome::Value(v.clone()),
            Outcome::Error(e) => Outcome::Error(e.clone()),
            Outcome::Abandoned => Outcome::Abandoned,
        }
    }
}

impl<V> Outcome<V> {
    /// What a woken waiter returns: the value or its loader's error, or `None` to try again
    /// (the leader gave up, or failed with an error of another type).
    pub(crate) fn settle<E: Send + Sync + 'static>(self) -> Option<Result<V, Arc<E>>> {
        match self {
            Outcome::Value(v) => Some(Ok(v)),
            Outcome::Error(e) => e.downcast::<E>().ok().map(Err),
            Outcome::Abandoned => None,
        }
    }
}

/// How waiters block: a condition variable for threads, a watch channel for tasks.
pub(crate) trait Waiter<V>: Default + Send + Sync + 'static {
    fn complete(&self, outcome: Outcome<V>);
}

/// The loads in progress, by key.
pub(crate) struct Flights<K, W, S> {
    map: parking_lot::Mutex<hashbrown::HashMap<K, Arc<W>, S>>,
}

impl<K, W, S> Flights<K, W, S> {
    pub(crate) fn new(hasher: S) -> Self {
        Flights { map: parking_lot::Mutex::new(hashbrown::HashMap::with_hasher(hasher)) }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.map.lock().len()
    }
}

impl<K, W, S> Flights<K, W, S>
where
    K: Hash + Eq + Clone,
    S: BuildHasher,
{
    /// The waiter for `key`, and whether the caller leads the load.
    pub(crate) fn join_or_lead(&self, key: &K) -> (Arc<W>, bool)
    where
        W: Default,
    {
        let mut map = self.map.lock();
        if let Some(w) = map.get(key) {
            return (w.clone(), false);
        }
        let w = Arc::new(W::default());
        map.insert(key.clone(), w.clone());
        (w, true)
    }

    fn finish(&self, key: &K, w: &Arc<W>) {
        let mut map = self.map.lock();
        if map.get(key).is_some_and(|x| Arc::ptr_eq(x, w)) {
            map.remove(key);
        }
    }
}

/// Held by the leader. Completing it wakes the waiters; dropping it uncompleted (the loader
/// panicked, or its future was dropped) releases them with [`Outcome::Abandoned`].
pub(crate) struct Lead<'a, K, V, W, S>
where
    K: Hash + Eq + Clone,
    S: BuildHasher,
    W: Waiter<V>,
{
    flights: &'a Flights<K, W, S>,
    key: &'a K,
    waiter: Arc<W>,
    done: bool,
    _v: std::marker::PhantomData<fn() -> V>,
}

impl<'a, K, V, W, S> Lead<'a, K, V, W, S>
where
    K: Hash + Eq + Clone,
    S: BuildHasher,
    W: Waiter<V>,
{
    pub(crate) fn new(flights: &'a Flights<K, W, S>, key: &'a K, waiter: Arc<W>) -> Self {
        Lead { flights, key, waiter, done: false, _v: std::marker::PhantomData }
    }

    pub(crate) fn complete(mut self, outcome: Outcome<V>) {
        self.done = true;
        self.flights.finish(self.key, &self.waiter);
        self.waiter.complete(outcome);
    }

    /// Finishes a load that took `nanos`: records it, caches a value, wakes the waiters with
    /// the value or the shared error, and returns the same to the leader.
    pub(crate) fn finish<E, KS>(
        self,
        engine: &Engine<K, V, KS>,
        result: Result<V, E>,
        nanos: u64,
    ) -> Result<V, Arc<E>>
    where
        K: Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        KS: BuildHasher + Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
    {
        if let Some(s) = engine.stats() {
            s.record_load(result.is_ok(), nanos);
        }
        match result {
            Ok(v) => {
                engine.insert(self.key.clone(), v.clone(), None);
                Ok(self.succeed(v))
            }
            // Stale-on-error: an expired value still within the grace is served instead.
            Err(e) => match engine.peek_stale(self.key) {
                Some(stale) => {
                    engine.read_through.add(super::STALE_SERVED);
                    Ok(self.succeed(stale))
                }
                None => Err(self.fail(e)),
            },
        }
    }

    /// Finishes a background reload started at `started`: its value replaces the old one
    /// unless the key was written since; a failure keeps the old value and is counted.
    pub(crate) fn finish_refresh<E, KS>(
        self,
        engine: &Engine<K, V, KS>,
        result: Result<V, E>,
        started: u64,
    ) where
        K: Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        KS: BuildHasher + Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
    {
        let nanos = engine.now().saturating_sub(started);
        if let Some(s) = engine.stats() {
            s.record_load(result.is_ok(), nanos);
        }
        match result {
            Ok(v) if engine.written_at(self.key).is_none_or(|w| w <= started) => {
                engine.insert(self.key.clone(), v.clone(), None);
                self.succeed(v);
            }
            // Written (or removed and written) while the reload ran: the reload is older.
            Ok(_) => self.complete(Outcome::Abandoned),
            Err(e) => {
                engine.read_through.add(super::REFRESH_FAILURES);
                self.fail(e);
            }
        }
    }

    /// Wakes the waiters with `value`, and returns it to the leader.
    pub(crate) fn succeed(self, value: V) -> V
    where
        V: Clone,
    {
        self.complete(Outcome::Value(value.clone()));
        value
    }

    /// Wakes the waiters with the loader's error, shared, and returns it to the leader.
    pub(crate) fn fail<E: Send + Sync + 'static>(self, error: E) -> Arc<E> {
        let e = Arc::new(error);
        self.complete(Outcome::Error(e.clone()));
        e
    }
}

impl<K, V, W, S> Drop for Lead<'_, K, V, W, S>
where
    K: Hash + Eq + Clone,
    S: BuildHasher,
    W: Waiter<V>,
{
    fn drop(&mut self) {
        if !self.done {
            self.flights.finish(self.key, &self.waiter);
            self.waiter.complete(Outcome::Abandoned);
        }
    }
}

/// A waiter for threads.
pub(crate) struct BlockingWaiter<V> {
    state: std::sync::Mutex<Option<Outcome<V>>>,
    cond: std::sync::Condvar,
}

impl<V> Default for BlockingWaiter<V> {
    fn default() -> Self {
        BlockingWaiter { state: std::sync::Mutex::new(None), cond: std::sync::Condvar::new() }
    }
}

impl<V: Clone + Send + Sync + 'static> Waiter<V> for BlockingWaiter<V> {
    fn complete(&self, outcome: Outcome<V>) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        self.cond.notify_all();
    }
}

impl<V: Clone> BlockingWaiter<V> {
    pub(crate) fn wait(&self) -> Outcome<V> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(o) = &*state {
                return o.clone();
            }
            state = self.cond.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A waiter for async tasks.
pub(crate) struct AsyncWaiter<V> {
    tx: tokio::sync::watch::Sender<Option<Outcome<V>>>,
}

impl<V> Default for AsyncWaiter<V> {
    fn default() -> Self {
        AsyncWaiter { tx: tokio::sync::watch::Sender::new(None) }
    }
}

impl<V: Clone + Send + Sync + 'static> Waiter<V> for AsyncWaiter<V> {
    fn complete(&self, outcome: Outcome<V>) {
        self.tx.send_replace(Some(outcome));
    }
}

impl<V: Clone> AsyncWaiter<V> {
    pub(crate) async fn wait(&self) -> Outcome<V> {
        let mut rx = self.tx.subscribe();
        loop {
            if let Some(o) = &*rx.borrow_and_update() {
                return o.clone();
            }
            if rx.changed().await.is_err() {
                return Outcome::Abandoned;
            }
        }
    }
}
