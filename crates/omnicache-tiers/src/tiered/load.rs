//! Read-through: `get_with` and `try_get_with` run a loader on a miss of every layer, once per
//! key however many callers wait (the memory cache's single flight, shared).

use super::{Entry, Inner, PutOptions, TieredCache};
use crate::memory::flight::{AsyncWaiter, Lead, Outcome};
use crate::memory::{ReadThroughStats, REFRESHES, REFRESH_FAILURES, STALE_SERVED};
use omnicache_core::{Encoding, StatsRecorder, TierEntry, Timestamp};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

/// The loads in progress, by key.
pub(super) type Flights =
    crate::memory::flight::Flights<Vec<u8>, AsyncWaiter<Arc<Entry>>, foldhash::fast::RandomState>;

/// One item of a batch write: key, value, options.
pub(super) type Item = (Vec<u8>, Vec<u8>, PutOptions);

impl TieredCache {
    /// The entry for `key`; on a miss in L1 and every tier, `load`'s value, stored with
    /// `options` and returned. Concurrent callers for one key share one lookup of the tiers and
    /// one run of `load`. If the leading caller's future is dropped or its loader panics, the
    /// waiters try again, one of them leading.
    pub async fn get_with<F, Fut>(&self, key: &[u8], options: PutOptions, load: F) -> Arc<Entry>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Vec<u8>> + Send + 'static,
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
    ///
    /// With [`refresh_after_write`](super::TieredCacheBuilder::refresh_after_write), the first read of
    /// an entry older than that returns it at once and reloads it once in the background (the
    /// loader runs on a spawned task, hence `'static`); a failed reload keeps the old value and
    /// is counted. With [`stale_if_error`](super::TieredCacheBuilder::stale_if_error), an entry that
    /// expired less than the grace ago is served when the loader fails.
    pub async fn try_get_with<E, F, Fut>(
        &self,
        key: &[u8],
        options: PutOptions,
        load: F,
    ) -> Result<Arc<Entry>, Arc<E>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<u8>, E>> + Send + 'static,
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
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<u8>, E>> + Send + 'static,
        E: Send + Sync + 'static,
    {
        let inner = &self.inner;
        let mut load = Some(load);
        let owned = key.to_vec();
        loop {
            let mut stale = None;
            if let Some(e) = inner.l1.get(key) {
                let now = inner.clock.now();
                if !inner.is_stale(&e, now) {
                    if let Some(load) = load.take() {
                        self.refresh_if_due(key, &e, now, encoding, &options, load);
                    }
                    return Ok(e);
                }
                stale = Some(e);
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
                return Ok(lead.succeed(found));
            }
            let Some(load) = load.take() else {
                // Only reachable if this caller led before, which returns or unwinds.
                lead.complete(Outcome::Abandoned);
                continue;
            };
            let started = inner.clock.now();
            let result = load().await;
            let now = inner.clock.now();
            inner.record_load(result.is_ok(), now.saturating_sub(started));
            return match result {
                Ok(value) => {
                    Ok(lead.succeed(self.store_value(key, value, encoding, options).await))
                }
                Err(_) if stale.as_ref().is_some_and(|s| inner.within_grace(s, now)) => {
                    let stale = stale.unwrap_or_else(|| unreachable!("checked just above"));
                    inner.read_through.add(STALE_SERVED);
                    Ok(lead.succeed(stale))
                }
                Err(e) => Err(lead.fail(e)),
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
        if self.inner.guard.is_none() {
            return self.store_checked(key, value, encoding, options, true).await;
        }
        match self.guarded(key, value.clone(), options.clone()) {
            Ok((value, options)) => self.store_checked(key, value, encoding, options, true).await,
            // A value the guard refuses goes back to its caller, cached nowhere.
            Err(_) => self.store_checked(key, value, encoding, options, false).await,
        }
    }

    /// Stores a value the guard passed (`store` false: only builds the entry).
    async fn store_checked(
        &self,
        key: &[u8],
        value: Vec<u8>,
        encoding: Encoding,
        options: PutOptions,
        store: bool,
    ) -> Arc<Entry> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let ttl = inner.ttl_for(&options);
        let meta = Inner::meta(now, ttl, value.len(), options.tags, options.subject);
        let entry = TierEntry { value, meta, encoding };
        if key.is_empty() || !store {
            return Arc::new(entry);
        }
        self.store(key, entry, options.cold, now).await
    }

    /// `value` and `options` as the write guard lets them be stored (redacted, tagged), or its
    /// refusal.
    pub(super) fn guarded(
        &self,
        key: &[u8],
        value: Vec<u8>,
        mut options: PutOptions,
    ) -> omnicache_core::Result<(Vec<u8>, PutOptions)> {
        let Some(guard) = &self.inner.guard else { return Ok((value, options)) };
        let inspection = guard.inspect(key, &value)?;
        let mut add = inspection.tags;
        if inspection.encrypt {
            add.push(omnicache_core::ENCRYPT_TAG.to_string());
        }
        for tag in add {
            if !options.tags.contains(&tag) {
                options.tags.push(tag);
            }
        }
        Ok((inspection.replace.unwrap_or(value), options))
    }

    /// [`guarded`](Self::guarded) for a batch: all of it, or the first refusal (naming the
    /// item), before anything is stored.
    pub(super) fn guard_all(&self, items: Vec<Item>) -> omnicache_core::Result<Vec<Item>> {
        if self.inner.guard.is_none() {
            return Ok(items);
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, (key, value, options))| {
                let (value, options) = self
                    .guarded(&key, value, options)
                    .map_err(|e| e.context(format!("item {i}")))?;
                Ok((key, value, options))
            })
            .collect()
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
        let (value, options) = self.guarded(key, value, options)?;
        self.store_checked(key, value, encoding, options, true).await;
        Ok(())
    }
}

impl TieredCache {
    /// Starts a background reload of `entry` if it is older than `refresh_after_write` and no
    /// load of the key is running; the reload replaces it only if nothing newer happened to the
    /// key meanwhile.
    fn refresh_if_due<E, F, Fut>(
        &self,
        key: &[u8],
        entry: &Arc<Entry>,
        now: Timestamp,
        encoding: Encoding,
        options: &PutOptions,
        load: F,
    ) where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<u8>, E>> + Send + 'static,
        E: Send + Sync + 'static,
    {
        let Some(after) = self.inner.refresh_after else { return };
        if now.saturating_sub(entry.meta.created) < after {
            return;
        }
        let owned = key.to_vec();
        let (waiter, leader) = self.inner.flights.join_or_lead(&owned);
        if !leader {
            return; // a load or a refresh of the key is running
        }
        self.inner.read_through.add(REFRESHES);
        let (cache, old, options) = (self.clone(), entry.meta.clone(), options.clone());
        tokio::spawn(async move {
            let inner = &cache.inner;
            let lead = Lead::new(&inner.flights, &owned, waiter);
            let started = inner.clock.now();
            let result = load().await;
            inner.record_load(result.is_ok(), inner.clock.now().saturating_sub(started));
            match result {
                Ok(value) if !inner.order.superseded(&owned, &old) => {
                    lead.succeed(cache.store_value(&owned, value, encoding, options).await);
                }
                // Written or removed meanwhile: the reload is stale, dropped.
                Ok(_) => lead.complete(Outcome::Abandoned),
                Err(e) => {
                    inner.read_through.add(REFRESH_FAILURES);
                    lead.fail(e);
                }
            }
        });
    }

    /// What refreshing and serving stale did so far.
    pub fn read_through_stats(&self) -> ReadThroughStats {
        self.inner.read_through.snapshot()
    }
}

impl Inner {
    /// Whether an entry L1 returned has passed its expiry (possible only with a stale grace,
    /// which keeps expired entries in L1 that long).
    pub(super) fn is_stale(&self, entry: &Entry, now: Timestamp) -> bool {
        self.stale_grace > 0 && entry.meta.is_expired(now)
    }

    /// Whether an expired entry is still within the stale grace.
    fn within_grace(&self, entry: &Entry, now: Timestamp) -> bool {
        entry.meta.expires.is_none_or(|e| now < e.saturating_add(self.stale_grace))
    }

    fn record_load(&self, ok: bool, nanos: u64) {
        self.loads.record_load(ok, nanos);
        if let Some(r) = &self.recorder {
            r.record_load(ok, nanos);
        }
    }
}
