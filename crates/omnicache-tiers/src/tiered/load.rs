//! Read-through: `get_with` and `try_get_with` run a loader on a miss of every layer, once per
//! key however many callers wait (the memory cache's single flight, shared).

use super::{Entry, Inner, PutOptions, TieredCache};
use crate::memory::flight::{AsyncWaiter, Lead, Outcome};
use omnicache_core::{Encoding, StatsRecorder, TierEntry};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

/// The loads in progress, by key.
pub(super) type Flights =
    crate::memory::flight::Flights<Vec<u8>, AsyncWaiter<Arc<Entry>>, foldhash::fast::RandomState>;

impl TieredCache {
    /// The entry for `key`; on a miss in L1 and every tier, `load`'s value, stored with
    /// `options` and returned. Concurrent callers for one key share one lookup of the tiers and
    /// one run of `load`. If the leading caller's future is dropped or its loader panics, the
    /// waiters try again, one of them leading.
    pub async fn get_with<F, Fut>(&self, key: &[u8], options: PutOptions, load: F) -> Arc<Entry>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Vec<u8>>,
    {
        let load = || async { Ok::<_, Infallible>(load().await) };
        match self.try_get_with(key, options, load).await {
            Ok(e) => e,
            Err(e) => match *e {},
        }
    }

    /// Like [`get_with`](Self::get_with) for a loader that can fail. An error is not cached:
    /// it goes, shared as `Arc<E>`, to the caller and to every caller waiting on that run.
    /// Loads are counted in [`stats`](Self::stats) (and the caller's recorder) with their time.
    /// An empty key is loaded but not stored.
    pub async fn try_get_with<E, F, Fut>(
        &self,
        key: &[u8],
        options: PutOptions,
        load: F,
    ) -> Result<Arc<Entry>, Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
        E: Send + Sync + 'static,
    {
        self.try_get_with_encoding(key, options, Encoding::RAW, load).await
    }

    /// [`try_get_with`](Self::try_get_with) for a loader whose bytes are `encoding`'s (a typed
    /// cache's codec).
    pub(super) async fn try_get_with_encoding<E, F, Fut>(
        &self,
        key: &[u8],
        options: PutOptions,
        encoding: Encoding,
        load: F,
    ) -> Result<Arc<Entry>, Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
        E: Send + Sync + 'static,
    {
        let inner = &self.inner;
        let mut load = Some(load);
        let owned = key.to_vec();
        loop {
            if let Some(e) = inner.l1.get(key) {
                return Ok(e);
            }
            let (waiter, leader) = inner.flights.join_or_lead(&owned);
            if !leader {
                match waiter.wait().await.settle::<E>() {
                    Some(done) => return done,
                    None => continue, // the leader gave up: try again, maybe leading
                }
            }
            let lead = Lead::new(&inner.flights, &owned, waiter);
            // L1 was checked above; the tiers come before the loader.
            if let Some(found) = self.lookup_below(key).await {
                lead.complete(Outcome::Value(found.clone()));
                return Ok(found);
            }
            let Some(load) = load.take() else {
                // Only reachable if this caller led before, which returns or unwinds.
                lead.complete(Outcome::Abandoned);
                continue;
            };
            let started = inner.clock.now();
            let result = load().await;
            inner.record_load(result.is_ok(), inner.clock.now().saturating_sub(started));
            return match result {
                Ok(value) => {
                    let entry = self.store_value(key, value, encoding, options).await;
                    lead.complete(Outcome::Value(entry.clone()));
                    Ok(entry)
                }
                Err(e) => {
                    let e = Arc::new(e);
                    lead.complete(Outcome::Error(e.clone()));
                    Err(e)
                }
            };
        }
    }

    /// Stores a value as `put` would, and returns it as stored.
    pub(super) async fn store_value(
        &self,
        key: &[u8],
        value: Vec<u8>,
        encoding: Encoding,
        options: PutOptions,
    ) -> Arc<Entry> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let ttl = options.ttl.or(inner.default_ttl);
        let meta = Inner::meta(now, ttl, value.len(), options.tags, options.subject);
        let entry = TierEntry { value, meta, encoding };
        if key.is_empty() {
            return Arc::new(entry);
        }
        self.store(key, entry, options.cold, now).await
    }

    /// [`put`](Self::put) of bytes made with `encoding` (a typed cache's codec).
    pub(super) async fn put_encoded(
        &self,
        key: &[u8],
        value: Vec<u8>,
        encoding: Encoding,
        options: PutOptions,
    ) -> omnicache_core::Result<()> {
        if key.is_empty() {
            return Err(omnicache_core::Error::invalid_input("a cache key must not be empty"));
        }
        self.store_value(key, value, encoding, options).await;
        Ok(())
    }
}

impl Inner {
    fn record_load(&self, ok: bool, nanos: u64) {
        self.loads.record_load(ok, nanos);
        if let Some(r) = &self.recorder {
            r.record_load(ok, nanos);
        }
    }
}
