use crate::clock::SharedClock;
use crate::error::{Error, ErrorKind, Result};
use crate::invalidation::Invalidation;
use crate::tier::{ScanPage, Tier, TierEntry, TierHealth};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A reference [`Tier`]: a `BTreeMap` under a mutex, with a switch to simulate an outage.
/// It is the model the tier conformance suite is checked against, and a stand-in tier in tests.
#[derive(Debug, Default)]
pub struct MemoryTier {
    map: Mutex<BTreeMap<Vec<u8>, TierEntry>>,
    clock: SharedClock,
    down: AtomicBool,
}

impl MemoryTier {
    /// An empty tier reading time from `clock`.
    pub fn new(clock: SharedClock) -> Self {
        MemoryTier { map: Mutex::default(), clock, down: AtomicBool::new(false) }
    }

    /// Makes every call fail with [`ErrorKind::Unavailable`] (`true`) or work again (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The number of stored entries, expired or not.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, TierEntry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::new(ErrorKind::Unavailable, "memory tier is switched off"))
        } else {
            Ok(())
        }
    }
}

impl Tier for MemoryTier {
    fn name(&self) -> &str {
        "memory-reference"
    }

    async fn get(&self, key: &[u8]) -> Result<Option<TierEntry>> {
        self.check()?;
        let now = self.clock.now();
        let mut map = self.lock();
        match map.get(key) {
            Some(e) if e.meta.is_expired(now) => {
                map.remove(key);
                Ok(None)
            }
            other => Ok(other.cloned()),
        }
    }

    async fn put(&self, key: &[u8], entry: TierEntry) -> Result<()> {
        self.check()?;
        self.lock().insert(key.to_vec(), entry);
        Ok(())
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        self.check()?;
        Ok(self.lock().remove(key).is_some())
    }

    async fn invalidate(&self, what: &Invalidation) -> Result<u64> {
        self.check()?;
        let mut map = self.lock();
        let before = map.len();
        map.retain(|k, e| !what.matches(k, &e.meta));
        Ok((before - map.len()) as u64)
    }

    async fn scan(&self, prefix: &[u8], cursor: Option<&[u8]>, limit: usize) -> Result<ScanPage> {
        self.check()?;
        let now = self.clock.now();
        let map = self.lock();
        let mut keys = Vec::new();
        let start = cursor.unwrap_or(prefix);
        for (k, e) in map.range(start.to_vec()..) {
            if cursor == Some(k.as_slice()) || e.meta.is_expired(now) {
                continue;
            }
            if !k.starts_with(prefix) {
                break;
            }
            if keys.len() == limit {
                let next = keys.last().cloned();
                return Ok(ScanPage { keys, next });
            }
            keys.push(k.clone());
        }
        Ok(ScanPage { keys, next: None })
    }

    async fn sweep_expired(&self) -> Result<u64> {
        self.check()?;
        let now = self.clock.now();
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, e| !e.meta.is_expired(now));
        Ok((before - map.len()) as u64)
    }

    async fn usage(&self) -> Result<Option<crate::tier::TierUsage>> {
        self.check()?;
        let map = self.lock();
        let bytes = map.iter().map(|(k, e)| (k.len() + e.value.len()) as u64).sum();
        Ok(Some(crate::tier::TierUsage { entries: map.len() as u64, bytes }))
    }

    fn health(&self) -> TierHealth {
        if self.down.load(Ordering::SeqCst) {
            TierHealth::Unavailable
        } else {
            TierHealth::Healthy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_tier_passes_the_tier_suite() {
        pollster::block_on(crate::testkit::check_tier(MemoryTier::new));
    }

    #[test]
    fn switched_off_tier_fails_with_unavailable() {
        let t = MemoryTier::default();
        t.set_down(true);
        let err = pollster::block_on(Tier::get(&t, b"k")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(Tier::health(&t), TierHealth::Unavailable);
    }
}
