//! Storage below the memory cache: the async [`Tier`] trait and its object-safe twin [`DynTier`].
//!
//! A tier stores bytes with [`EntryMeta`] under byte keys. It never serves an expired entry; it
//! reports corruption as [`ErrorKind::Corrupt`](crate::ErrorKind::Corrupt) and an outage as
//! [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable), and the tiered cache above it turns
//! both into a miss for the caller.

use crate::envelope::Encoding;
use crate::error::Result;
use crate::invalidation::Invalidation;
use crate::meta::EntryMeta;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A value as a tier stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierEntry {
    /// The value bytes (already encoded and transformed).
    pub value: Vec<u8>,
    /// Its metadata.
    pub meta: EntryMeta,
    /// How `value` was made (codec, transforms, key id); a tier stores it with the value and
    /// gives it back unchanged.
    pub encoding: Encoding,
}

impl TierEntry {
    /// Raw, untransformed bytes with `meta`.
    pub fn new(value: Vec<u8>, meta: EntryMeta) -> Self {
        TierEntry { value, meta, encoding: Encoding::RAW }
    }
}

/// One page of a key scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    /// Keys in ascending byte order.
    pub keys: Vec<Vec<u8>>,
    /// Pass this back to get the next page; `None` when done.
    pub next: Option<Vec<u8>>,
}

/// What a tier holds, for cost reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TierUsage {
    /// Entries stored (expired ones not yet deleted included).
    pub entries: u64,
    /// Bytes stored.
    pub bytes: u64,
}

/// How a tier is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierHealth {
    /// Serving normally.
    Healthy,
    /// Serving, but with failures (slow, some errors, breaker half-open).
    Degraded,
    /// Not serving (down, breaker open, disk full); the cache goes around it.
    Unavailable,
}

/// A storage tier. Implementations must be safe to call concurrently.
pub trait Tier: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and metrics (`"disk"`, `"redis"`).
    fn name(&self) -> &str;

    /// The live entry for `key`, or `None` if absent or expired.
    fn get(&self, key: &[u8]) -> impl Future<Output = Result<Option<TierEntry>>> + Send;

    /// Stores an entry, replacing any previous one.
    fn put(&self, key: &[u8], entry: TierEntry) -> impl Future<Output = Result<()>> + Send;

    /// Removes `key`; true if something was there.
    fn remove(&self, key: &[u8]) -> impl Future<Output = Result<bool>> + Send;

    /// Removes every entry that `what` covers; returns how many.
    fn invalidate(&self, what: &Invalidation) -> impl Future<Output = Result<u64>> + Send;

    /// Up to `limit` keys starting with `prefix`, after `cursor` (exclusive) when given.
    fn scan(
        &self,
        prefix: &[u8],
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> impl Future<Output = Result<ScanPage>> + Send;

    /// Several gets; tiers with batch reads (MGET) override it.
    fn get_many(
        &self,
        keys: &[&[u8]],
    ) -> impl Future<Output = Result<Vec<Option<TierEntry>>>> + Send {
        async move {
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                out.push(self.get(k).await?);
            }
            Ok(out)
        }
    }

    /// Several puts; tiers that can batch (one transaction, one pipeline) override it.
    fn put_many(
        &self,
        entries: Vec<(Vec<u8>, TierEntry)>,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            for (k, e) in entries {
                self.put(&k, e).await?;
            }
            Ok(())
        }
    }

    /// Deletes expired entries now; returns how many. Tiers whose store expires entries by
    /// itself (Redis) keep the default, which does nothing.
    fn sweep_expired(&self) -> impl Future<Output = Result<u64>> + Send {
        async { Ok(0) }
    }

    /// What the tier holds, if it can tell cheaply enough; `None` when it cannot.
    fn usage(&self) -> impl Future<Output = Result<Option<TierUsage>>> + Send {
        async { Ok(None) }
    }

    /// Current health; cheap, no I/O.
    fn health(&self) -> TierHealth {
        TierHealth::Healthy
    }
}

/// A boxed future, for [`DynTier`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe twin of [`Tier`], for choosing tiers at run time (`Vec<Arc<dyn DynTier>>`).
/// Every `Tier` is a `DynTier`.
pub trait DynTier: Send + Sync + fmt::Debug + 'static {
    /// See [`Tier::name`].
    fn name(&self) -> &str;
    /// See [`Tier::get`].
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<TierEntry>>>;
    /// See [`Tier::put`].
    fn put<'a>(&'a self, key: &'a [u8], entry: TierEntry) -> BoxFuture<'a, Result<()>>;
    /// See [`Tier::remove`].
    fn remove<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<bool>>;
    /// See [`Tier::invalidate`].
    fn invalidate<'a>(&'a self, what: &'a Invalidation) -> BoxFuture<'a, Result<u64>>;
    /// See [`Tier::scan`].
    fn scan<'a>(
        &'a self,
        prefix: &'a [u8],
        cursor: Option<&'a [u8]>,
        limit: usize,
    ) -> BoxFuture<'a, Result<ScanPage>>;
    /// See [`Tier::get_many`].
    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a [u8]],
    ) -> BoxFuture<'a, Result<Vec<Option<TierEntry>>>>;
    /// See [`Tier::put_many`].
    fn put_many<'a>(&'a self, entries: Vec<(Vec<u8>, TierEntry)>) -> BoxFuture<'a, Result<()>>;
    /// See [`Tier::sweep_expired`].
    fn sweep_expired(&self) -> BoxFuture<'_, Result<u64>>;
    /// See [`Tier::usage`].
    fn usage(&self) -> BoxFuture<'_, Result<Option<TierUsage>>>;
    /// See [`Tier::health`].
    fn health(&self) -> TierHealth;
}

impl<T: Tier> DynTier for T {
    fn name(&self) -> &str {
        Tier::name(self)
    }
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<TierEntry>>> {
        Box::pin(Tier::get(self, key))
    }
    fn put<'a>(&'a self, key: &'a [u8], entry: TierEntry) -> BoxFuture<'a, Result<()>> {
        Box::pin(Tier::put(self, key, entry))
    }
    fn remove<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(Tier::remove(self, key))
    }
    fn invalidate<'a>(&'a self, what: &'a Invalidation) -> BoxFuture<'a, Result<u64>> {
        Box::pin(Tier::invalidate(self, what))
    }
    fn scan<'a>(
        &'a self,
        prefix: &'a [u8],
        cursor: Option<&'a [u8]>,
        limit: usize,
    ) -> BoxFuture<'a, Result<ScanPage>> {
        Box::pin(Tier::scan(self, prefix, cursor, limit))
    }
    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a [u8]],
    ) -> BoxFuture<'a, Result<Vec<Option<TierEntry>>>> {
        Box::pin(Tier::get_many(self, keys))
    }
    fn put_many<'a>(&'a self, entries: Vec<(Vec<u8>, TierEntry)>) -> BoxFuture<'a, Result<()>> {
        Box::pin(Tier::put_many(self, entries))
    }
    fn sweep_expired(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(Tier::sweep_expired(self))
    }
    fn usage(&self) -> BoxFuture<'_, Result<Option<TierUsage>>> {
        Box::pin(Tier::usage(self))
    }
    fn health(&self) -> TierHealth {
        Tier::health(self)
    }
}
