//! How the cache reaches its tiers: each call behind its breaker and timeout, writes and
//! purges gated by the key's order, the queue to the background writer, and L1 inserts that
//! never go back in time.

use super::order::{Ticket, Verdict};
use super::stats::{CALLS, DEMOTIONS, DROPPED, ERRORS, LATENCY, SKIPPED, TIMEOUTS, WRITES};
use super::{held_below, Entry, Inner, Job};
use crate::breaker::BreakerState;
use omnicache_core::clock::duration_nanos;
use omnicache_core::{
    CacheEvent, EntryMeta, Error, ErrorKind, RemovalCause, Result, TierEntry, TierHealth, Timestamp,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

impl Inner {
    /// Whether an invalidation tier `i` missed while down covers this entry it returned.
    pub(super) fn missed_by(&self, i: usize, key: &[u8], meta: &omnicache_core::EntryMeta) -> bool {
        self.missed.len() > 0
            && self.missed.covers(&super::missed::tier_id(i, self.slots[i].tier.name()), key, meta)
    }

    /// The metadata of a value written now.
    pub(super) fn meta(
        now: Timestamp,
        ttl: Option<Duration>,
        len: usize,
        tags: Vec<String>,
        subject: Option<String>,
    ) -> EntryMeta {
        EntryMeta {
            created: now,
            expires: ttl.map(|t| now.saturating_add(duration_nanos(t))),
            tags,
            subject,
            version: 0,
            weight: u32::try_from(len).unwrap_or(u32::MAX),
        }
    }

    /// The TTL a write gets: its own, else the cache's default; for an entry with a data
    /// subject, at most the subject retention cap.
    pub(super) fn ttl_for(&self, options: &super::PutOptions) -> Option<Duration> {
        let ttl = options.ttl.or(self.default_ttl);
        match (self.subject_retention, &options.subject) {
            (Some(cap), Some(_)) => Some(ttl.map_or(cap, |t| t.min(cap))),
            _ => ttl,
        }
    }

    pub(super) fn fits_l1(&self, len: usize) -> bool {
        self.l1_max_value_bytes.is_none_or(|m| len <= m)
    }

    pub(super) fn fits(&self, i: usize, len: usize) -> bool {
        self.slots[i].max_value_bytes.is_none_or(|m| len <= m)
    }

    /// The tier with the cheapest storage that accepts a value of `len` bytes.
    pub(super) fn cheapest_tier(&self, len: usize) -> Option<usize> {
        (0..self.slots.len()).filter(|&i| self.fits(i, len)).min_by(|&a, &b| {
            self.slots[a].cost.usd_per_gb_month.total_cmp(&self.slots[b].cost.usd_per_gb_month)
        })
    }

    pub(super) fn remaining(&self, meta: &EntryMeta, now: Timestamp) -> Option<Duration> {
        meta.remaining(now).map(Duration::from_nanos)
    }

    /// Runs `call` on tier `i` behind its breaker and timeout; `None` when skipped or failed.
    pub(super) async fn call<T, F>(&self, i: usize, call: F) -> Option<Result<T>>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let slot = &self.slots[i];
        if !slot.breaker.allow() {
            slot.stats.add(SKIPPED, 1);
            return None;
        }
        let started = self.clock.now();
        let result = match tokio::time::timeout(slot.timeout, call).await {
            Ok(r) => r,
            Err(_) => {
                slot.stats.add(TIMEOUTS, 1);
                Err(Error::new(ErrorKind::Timeout, format!("tier {} timed out", slot.tier.name())))
            }
        };
        let took = self.clock.now().saturating_sub(started);
        slot.stats.add(LATENCY, took);
        slot.stats.add(CALLS, 1);
        if let Some(r) = &self.recorder {
            r.record_tier_latency(slot.tier.name(), took);
        }
        // Corruption is the entry's fault, not the tier's.
        let failure = match &result {
            Err(e) if e.kind() != ErrorKind::Corrupt => Some(e.to_string()),
            _ => None,
        };
        let changed = {
            let mut reach = slot.reach.lock();
            match failure {
                None => {
                    slot.breaker.success();
                    reach.failing = false;
                }
                Some(reason) => {
                    slot.stats.add(ERRORS, 1);
                    slot.breaker.failure();
                    reach.failing = true;
                    reach.last_error = Some(reason);
                }
            }
            let health = match (reach.failing, slot.breaker.state()) {
                (false, _) => TierHealth::Healthy,
                (true, BreakerState::Open) => TierHealth::Unavailable,
                (true, _) => TierHealth::Degraded,
            };
            let changed = health != reach.reported;
            reach.reported = health;
            let reason = reach.failing.then(|| reach.last_error.clone()).flatten();
            changed.then_some((health, reason))
        };
        if let Some((health, reason)) = changed {
            let tier = slot.tier.name().to_string();
            self.events.emit(|| CacheEvent::TierHealthChanged { tier, health, reason });
        }
        Some(result)
    }

    pub(super) fn tier_entry(&self, i: usize, entry: TierEntry, now: Timestamp) -> TierEntry {
        let mut entry = entry;
        if let Some(cap) = self.slots[i].ttl_cap {
            let capped = now.saturating_add(cap);
            entry.meta.expires = Some(entry.meta.expires.map_or(capped, |e| e.min(capped)));
        }
        entry
    }

    /// Writes to tier `i`; true on success.
    pub(super) async fn put_to(&self, i: usize, key: &[u8], entry: TierEntry) -> bool {
        let entry = self.tier_entry(i, entry, self.clock.now());
        let tier = self.slots[i].tier.clone();
        match self.call(i, tier.put(key, entry)).await {
            Some(Ok(())) => {
                self.slots[i].stats.add(WRITES, 1);
                true
            }
            _ => false,
        }
    }

    /// Writes `ticket`'s entry to tier `i` if the ticket is still the newest for its key:
    /// `None` when skipped, else whether the write succeeded. When a newer invalidation covers
    /// the entry, the key is deleted from the tier instead (it may hold an older copy).
    pub(super) async fn put_gated(
        &self,
        i: usize,
        ticket: &Ticket,
        entry: TierEntry,
    ) -> Option<bool> {
        let meta = entry.meta.clone();
        self.order
            .run(ticket, Some(&meta), |verdict| async move {
                match verdict {
                    Verdict::Current => Some(self.put_to(i, &ticket.key, entry).await),
                    Verdict::Swept => {
                        self.remove_from(i, &ticket.key).await;
                        None
                    }
                    Verdict::Newer => None,
                }
            })
            .await
    }

    /// Writes an entry L1 evicted to the demotion tier `i` (transformed here, off the evicting
    /// thread), unless something newer happened to the key; then stops serving it from
    /// `pending`, and counts and reports what became of it.
    pub(super) async fn demote(&self, i: usize, ticket: &Ticket, demoted: Arc<Entry>) {
        let key = ticket.key.clone();
        let done = match self.transforms.down(&key, &demoted) {
            Ok(entry) => self.put_gated(i, ticket, entry).await,
            Err(_) => {
                self.transform_errors.fetch_add(1, Ordering::Relaxed);
                Some(false)
            }
        };
        let still_pending = {
            let mut pending = self.pending.lock();
            let mine = pending.get(&key).is_some_and(|p| Arc::ptr_eq(p, &demoted));
            if mine {
                pending.remove(&key);
            }
            mine
        };
        if done == Some(true) {
            self.slots[i].stats.add(DEMOTIONS, 1);
            if let Some(r) = &self.recorder {
                r.record_demotion();
            }
            let to = self.slots[i].tier.name().to_string();
            self.events.emit(|| CacheEvent::Demoted { key, to });
        } else if done == Some(false) {
            self.slots[i].stats.add(DROPPED, 1);
            // Lost, unless it was written or removed again meanwhile.
            if still_pending && !held_below(&self.eager, demoted.value.len()) {
                let cause = RemovalCause::Capacity;
                self.events.emit(|| CacheEvent::Removed { key, cause });
            }
        }
    }

    /// Deletes `ticket`'s key from tier `i` if the ticket is still the newest for its key;
    /// `None` when skipped, else whether the tier had it.
    pub(super) async fn purge(&self, i: usize, ticket: &Ticket) -> Option<bool> {
        self.order
            .run(ticket, None, |verdict| async move {
                match verdict {
                    Verdict::Newer => None,
                    Verdict::Current | Verdict::Swept => {
                        Some(self.remove_from(i, &ticket.key).await)
                    }
                }
            })
            .await
    }

    /// Deletes `key` from tier `i`; whether it was there.
    pub(super) async fn remove_from(&self, i: usize, key: &[u8]) -> bool {
        let tier = self.slots[i].tier.clone();
        matches!(self.call(i, tier.remove(key)).await, Some(Ok(true)))
    }

    /// Queues `job` for the background writer (its ticket enlisted); hands it back when the
    /// queue is full or stopped, so the caller runs it inline.
    pub(super) fn enqueue(&self, job: Job) -> std::result::Result<(), Box<Job>> {
        let Some(tx) = self.queue.lock().clone() else { return Err(Box::new(job)) };
        let ticket = match &job {
            Job::Put { ticket, .. } | Job::Demote { ticket, .. } | Job::Purge { ticket, .. } => {
                ticket.clone()
            }
            Job::Flush(_) => return tx.try_send(job).map_err(|e| Box::new(e.into_inner())),
        };
        self.order.enlist(&ticket);
        tx.try_send(job).map_err(|e| {
            self.order.end(&ticket);
            Box::new(e.into_inner())
        })
    }

    /// Runs a job that could not be queued, now, with the same checks the writer makes.
    pub(super) async fn run_inline(&self, job: Box<Job>) {
        match *job {
            Job::Put { tier, ticket, entry } => {
                self.put_gated(tier, &ticket, entry).await;
            }
            Job::Demote { tier, ticket, entry } => self.demote(tier, &ticket, entry).await,
            Job::Purge { tier, ticket } => {
                self.purge(tier, &ticket).await;
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }

    /// Puts `entry` in L1 for `ticket` unless L1 holds something newer, and takes it out again
    /// if something newer happened to the key meanwhile (a delete or invalidation that ran its
    /// L1 step before this insert).
    pub(super) fn insert_l1(&self, ticket: &Ticket, entry: Arc<Entry>, now: Timestamp) {
        let v = ticket.version;
        // With a stale grace, an expired entry stays in L1 that much longer (served only when
        // a loader fails; every other read treats it as gone).
        let ttl =
            self.remaining(&entry.meta, now).map(|t| t + Duration::from_nanos(self.stale_grace));
        let meta = entry.meta.clone();
        self.l1.insert_unless(ticket.key.clone(), entry, ttl, |old| old.meta.version > v);
        if !self.order.is_current(ticket, Some(&meta)) {
            self.l1.remove_if(&ticket.key, RemovalCause::Explicit, |cur| cur.meta.version == v);
        }
    }
}
