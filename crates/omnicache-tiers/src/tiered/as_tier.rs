//! The tiered cache as a [`Tier`], so it can stand under anything written against core.

use super::TieredCache;
use omnicache_core::{Error, Invalidation, Result, ScanPage, Tier, TierEntry, TierHealth};

/// A tiered cache is itself a [`Tier`], so anything written against core's traits (the HTTP
/// response cache, a cache stacked under another) can store in it. Writes keep the caller's
/// metadata (creation time, expiry, tags, subject; the version becomes the cache's own, newer
/// than the caller's) and its encoding (an entry another cache transformed is stored as it is,
/// and refused if this cache has transforms of its own); reads never fail, as with
/// [`TieredCache::get`].
impl Tier for TieredCache {
    fn name(&self) -> &str {
        "tiered"
    }

    async fn get(&self, key: &[u8]) -> Result<Option<TierEntry>> {
        Ok(TieredCache::get(self, key).await.map(|e| TierEntry::clone(&e)))
    }

    async fn put(&self, key: &[u8], entry: TierEntry) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid_input("a cache key must not be empty"));
        }
        let now = self.inner.clock.now();
        if entry.encoding.flags != 0 && !self.inner.transforms.is_empty() {
            return Err(Error::invalid_input(
                "the entry is already transformed, and this cache transforms what it stores",
            ));
        }
        // The cache orders writes by its own versions, newer than the caller's.
        self.inner.order.observe(entry.meta.version);
        self.store(key, entry, false, now).await;
        Ok(())
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        Ok(TieredCache::remove(self, key).await)
    }

    async fn invalidate(&self, what: &Invalidation) -> Result<u64> {
        Ok(TieredCache::invalidate(self, what).await)
    }

    async fn scan(&self, prefix: &[u8], cursor: Option<&[u8]>, limit: usize) -> Result<ScanPage> {
        let mut keys = self.l1_keys(prefix);
        keys.extend(self.tier_keys(prefix).await);
        keys.sort_unstable();
        keys.dedup();
        let start = cursor.map_or(0, |c| keys.partition_point(|k| k.as_slice() <= c));
        let end = keys.len().min(start.saturating_add(limit.max(1)));
        let next = (end < keys.len()).then(|| keys[end - 1].clone());
        Ok(ScanPage { keys: keys.drain(start..end).collect(), next })
    }

    async fn sweep_expired(&self) -> Result<u64> {
        Ok(self.sweep().await)
    }

    fn health(&self) -> TierHealth {
        let tiers = self.tiers();
        if tiers.iter().all(|t| t.health == TierHealth::Healthy) {
            TierHealth::Healthy
        } else {
            TierHealth::Degraded
        }
    }
}
