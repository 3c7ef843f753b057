//! What refresh-ahead and stale-on-error need from the engine: when each value was written,
//! and an expired value kept through the stale grace.

use super::{Engine, ShardData, NEVER};
use omnicache_core::Timestamp;
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

impl<K, V, S> Engine<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Records that `idx` was written at `now`, when refresh-ahead is on.
    pub(super) fn mark_written(&self, data: &mut ShardData<K, V>, idx: u32, now: Timestamp) {
        if self.refresh_after != NEVER {
            if data.written.len() <= idx as usize {
                data.written.resize(idx as usize + 1, now);
            }
            data.written[idx as usize] = now;
        }
    }

    /// Whether refresh-ahead is on.
    pub(crate) fn refreshes(&self) -> bool {
        self.refresh_after != NEVER
    }

    /// Whether the live value of `key` was written at least `refresh_after_write` ago.
    pub(crate) fn refresh_due<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.refresh_after == NEVER {
            return false;
        }
        let hash = self.hash(key);
        let data = self.shard(hash).data.read();
        let Some(idx) = data.find(hash, key) else { return false };
        let written = data.written.get(idx as usize).copied().unwrap_or(NEVER);
        written != NEVER && self.clock.now().saturating_sub(written) >= self.refresh_after
    }

    /// When the value of `key` was written, with refresh-ahead on.
    pub(crate) fn written_at<Q>(&self, key: &Q) -> Option<Timestamp>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let data = self.shard(hash).data.read();
        let idx = data.find(hash, key)?;
        data.written.get(idx as usize).copied()
    }

    /// The value of `key` if it has expired less than the stale grace ago: for a loader that
    /// failed, never for a plain read. Counts nothing.
    pub(crate) fn peek_stale<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.grace == 0 {
            return None;
        }
        let hash = self.hash(key);
        let data = self.shard(hash).data.read();
        let e = data.slots[data.find(hash, key)? as usize].as_ref()?;
        let d = e.deadline();
        let now = self.clock.now();
        (d != NEVER && now >= d && now < d.saturating_add(self.grace)).then(|| e.value.clone())
    }
}
