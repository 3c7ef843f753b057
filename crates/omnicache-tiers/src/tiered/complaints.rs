//! Callers' complaints about entries ([`TieredCache::complain`](super::TieredCache::complain)):
//! counted per key within a time window, bounded in the keys they track, and forgotten when the
//! key is written again or removed.

use omnicache_core::{Invalidation, Timestamp};
use parking_lot::Mutex;
use std::collections::HashMap;

/// What one complaint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Complaint {
    /// Complaints about the key within the window, this one included.
    pub count: u32,
    /// Whether this one reached the threshold, so the entry was invalidated everywhere.
    pub invalidated: bool,
}

#[derive(Debug)]
pub(super) struct Complaints {
    threshold: u32,
    window: u64,
    max_keys: usize,
    /// Per key: the count, and when the window of that count began.
    map: Mutex<HashMap<Vec<u8>, (u32, Timestamp)>>,
}

impl Complaints {
    pub(super) fn new(threshold: u32, window: u64, max_keys: usize) -> Self {
        Complaints {
            threshold: threshold.max(1),
            window,
            max_keys: max_keys.max(1),
            map: Mutex::default(),
        }
    }

    /// Counts a complaint about `key` at `now`. Reaching the threshold forgets the key (the
    /// caller invalidates the entry).
    pub(super) fn add(&self, key: &[u8], now: Timestamp) -> Complaint {
        let mut map = self.map.lock();
        if !map.contains_key(key) && map.len() >= self.max_keys {
            // Full: complaints whose window passed go first, then the oldest.
            map.retain(|_, (_, since)| now.saturating_sub(*since) < self.window);
            if map.len() >= self.max_keys {
                if let Some(oldest) =
                    map.iter().min_by_key(|(_, (_, since))| *since).map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        let (count, since) = map.entry(key.to_vec()).or_insert((0, now));
        if now.saturating_sub(*since) >= self.window {
            *count = 0;
            *since = now;
        }
        *count += 1;
        let count = *count;
        let invalidated = count >= self.threshold;
        if invalidated {
            map.remove(key);
        }
        Complaint { count, invalidated }
    }

    /// Forgets the complaints about `key` (written again, or removed).
    pub(super) fn forget(&self, key: &[u8]) {
        let mut map = self.map.lock();
        if !map.is_empty() {
            map.remove(key);
        }
    }

    /// Forgets the complaints about keys `what` covers by key (key, keys, prefix, all).
    pub(super) fn forget_covered(&self, what: &Invalidation) {
        let meta = omnicache_core::EntryMeta::default();
        self.map.lock().retain(|k, _| !what.matches(k, &meta));
    }

    /// Keys with complaints now.
    #[cfg(test)]
    pub(super) fn tracked(&self) -> usize {
        self.map.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn complaints_count_within_the_window_and_reset_after_it() {
        let c = Complaints::new(3, 60 * S, 100);
        assert_eq!(c.add(b"k", 0).count, 1);
        assert_eq!(c.add(b"k", 10 * S).count, 2);
        // The window of the first complaint passed: counting starts over.
        assert_eq!(c.add(b"k", 61 * S), Complaint { count: 1, invalidated: false });
        c.add(b"k", 62 * S);
        assert_eq!(c.add(b"k", 63 * S), Complaint { count: 3, invalidated: true });
        assert_eq!(c.tracked(), 0, "reaching the threshold forgets the key");
    }

    #[test]
    fn the_keys_tracked_are_bounded_and_a_write_forgets() {
        let c = Complaints::new(3, 60 * S, 2);
        c.add(b"a", 0);
        c.add(b"b", S);
        c.add(b"c", 2 * S);
        assert_eq!(c.tracked(), 2, "bounded");
        assert_eq!(c.add(b"a", 3 * S).count, 1, "the oldest, a, was dropped");
        c.forget(b"a");
        assert_eq!(c.add(b"a", 4 * S).count, 1, "forgotten on write");
    }
}
