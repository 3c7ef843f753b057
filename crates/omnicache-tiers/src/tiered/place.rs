//! Where a write goes: the one placement rule that `put`, `put_many` and the cache's `Tier`
//! impl share, and the first half of every write (its version, L1, its event, its tiers' form).

use super::order::Ticket;
use super::{Entry, Inner, TieredCache, WritePolicy};
use omnicache_core::{CacheEvent, EntryMeta, RemovalCause, TierEntry, Timestamp};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What a write does in one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// The value is written there; before the write returns when `now`, else queued.
    Write { now: bool },
    /// The value does not go there; any older copy of the key is deleted (before the write
    /// returns when `now`, else queued), so the tier can never serve it.
    Purge { now: bool },
}

impl Inner {
    /// Where a value of `len` bytes goes in tier `i`. A value larger than the tier's
    /// `max_value_bytes` skips it; a demotion tier takes values only from L1's evictions; a
    /// cold value goes only to `cheapest` (the tier with the cheapest storage that takes it),
    /// whatever that tier's write policy, and is written before the write returns.
    pub(super) fn place(&self, i: usize, len: usize, cold: bool, cheapest: Option<usize>) -> Place {
        let write = self.slots[i].write;
        let goes = self.fits(i, len) && (!cold || Some(i) == cheapest);
        if !goes || (write == WritePolicy::OnEvict && !cold) {
            Place::Purge { now: cold }
        } else {
            Place::Write { now: cold || write == WritePolicy::Through }
        }
    }

    /// Whether a value of `len` bytes goes to L1: it fits L1's largest value and is not cold.
    pub(super) fn place_l1(&self, len: usize, cold: bool) -> bool {
        !cold && self.fits_l1(len)
    }
}

/// A write accepted by [`TieredCache::accept`]: what its tiers still have to do.
pub(super) struct Accepted {
    /// The write's place in its key's order; the caller ends it.
    pub(super) ticket: Ticket,
    /// The value's length as written, which placement goes by.
    pub(super) len: usize,
    /// The entry as the tiers store it (transformed); `None` when a transform failed on it, so
    /// the tiers only lose older copies.
    pub(super) stored: Option<TierEntry>,
    /// The entry as written, with its version.
    pub(super) entry: Arc<Entry>,
}

impl TieredCache {
    /// The first half of every write: a new version for `key`, older pending demotions and
    /// complaints forgotten, the event, L1 (or an older L1 copy dropped), and the entry in the
    /// tiers' form.
    pub(super) fn accept(
        &self,
        key: &[u8],
        entry: TierEntry,
        cold: bool,
        now: Timestamp,
    ) -> Accepted {
        let inner = &self.inner;
        let ticket = inner.order.begin(key);
        let v = ticket.version;
        let entry: Arc<Entry> =
            Arc::new(TierEntry { meta: EntryMeta { version: v, ..entry.meta }, ..entry });
        inner.pending.lock().remove(key);
        inner.complaints.forget(key);
        let weight = entry.meta.weight;
        inner.events.emit(|| CacheEvent::Inserted { key: key.to_vec(), weight });
        let len = entry.value.len();
        if inner.place_l1(len, cold) {
            inner.insert_l1(&ticket, entry.clone(), now);
        } else {
            inner.l1.remove_if(key, RemovalCause::Replaced, |old| old.meta.version < v);
        }
        let stored = match inner.transforms.down(key, &entry) {
            Ok(stored) => Some(stored),
            Err(_) => {
                inner.transform_errors.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        Accepted { ticket, len, stored, entry }
    }
}
