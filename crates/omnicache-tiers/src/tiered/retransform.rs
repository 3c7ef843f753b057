//! Rewriting what the tiers hold under an older transform stack: after a key rotation (entries
//! under a key that no longer encrypts) or after a transform was added (entries stored
//! without it), page by page, at a bounded rate, while the cache serves.

use super::order::Verdict;
use super::stats::WRITES;
use super::TieredCache;
use omnicache_core::Result;
use std::time::Duration;

/// What a [`TieredCache::retransform`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetransformReport {
    /// Entries read from the tiers.
    pub scanned: u64,
    /// Entries rewritten under the current stack.
    pub rewritten: u64,
    /// Entries that could not be read back (their key is gone, or they are corrupt); left for
    /// reads to find, count and delete.
    pub unreadable: u64,
    /// Entries skipped because a newer write or delete of the key came first.
    pub superseded: u64,
    /// Entries still stored under a key id other than the current one after the pass (they
    /// could not be read back, or their rewrite failed), by key id: a key with none here may
    /// be retired.
    pub left_under: std::collections::BTreeMap<u32, u64>,
}

impl TieredCache {
    /// Rewrites every entry of every tier that the current transforms would store differently
    /// (an older key id, a missing transform), a page of `page` keys at a time, sleeping
    /// between pages to stay under `per_second` entries a second when given. Reads are served
    /// throughout: an entry is rewritten only if no newer write or delete of its key happened
    /// meanwhile, and its readers see either version, both readable. Without transforms it
    /// only counts. Errors only for a tier call that failed (the pass stops there; run it again).
    pub async fn retransform(
        &self,
        page: usize,
        per_second: Option<u32>,
    ) -> Result<RetransformReport> {
        let inner = &self.inner;
        let mut report = RetransformReport::default();
        let started = inner.clock.now();
        for i in 0..inner.slots.len() {
            let tier = inner.slots[i].tier.clone();
            let mut cursor: Option<Vec<u8>> = None;
            loop {
                let scan = tier.scan(b"", cursor.as_deref(), page.max(1));
                let listed = self.tier_result(i, scan).await?;
                let keys: Vec<&[u8]> = listed.keys.iter().map(Vec::as_slice).collect();
                let found = self.tier_result(i, tier.get_many(&keys)).await?;
                // The page's stale entries, restored, and each with its place in its key's order.
                let mut todo = Vec::new();
                for (key, entry) in listed.keys.iter().zip(found) {
                    let Some(entry) = entry else { continue };
                    report.scanned += 1;
                    if !inner.transforms.is_stale(&entry.encoding) {
                        continue;
                    }
                    let key_id = entry.encoding.key_id;
                    let Ok(plain) = inner.transforms.up(key, entry) else {
                        report.unreadable += 1;
                        *report.left_under.entry(key_id).or_default() += 1;
                        continue;
                    };
                    match inner.order.begin_existing(key, &plain.meta) {
                        Some(ticket) => todo.push((ticket, plain, key_id)),
                        None => report.superseded += 1,
                    }
                }
                // One batch write per page, each entry only if still the newest for its key.
                let tickets: Vec<_> =
                    todo.iter().map(|(t, e, _)| (t.clone(), Some(&e.meta))).collect();
                let now = inner.clock.now();
                let (todo, tier) = (&todo, &tier);
                let (written, skipped, failed) = inner
                    .order
                    .run_many(&tickets, |verdicts| async move {
                        let mut batch = Vec::new();
                        let mut ids = Vec::new();
                        let mut skipped = 0u64;
                        for (verdict, (t, plain, key_id)) in verdicts.into_iter().zip(todo) {
                            let stored = match verdict {
                                Verdict::Current => inner.transforms.down(&t.key, plain).ok(),
                                Verdict::Newer | Verdict::Swept => None,
                            };
                            match stored {
                                Some(e) => {
                                    batch.push((t.key.clone(), inner.tier_entry(i, e, now)));
                                    ids.push(*key_id);
                                }
                                None => skipped += 1,
                            }
                        }
                        let n = batch.len() as u64;
                        let ok = n > 0
                            && matches!(inner.call(i, tier.put_many(batch)).await, Some(Ok(())));
                        if ok {
                            inner.slots[i].stats.add(WRITES, n);
                        }
                        let failed = if ok { Vec::new() } else { ids };
                        (if ok { n } else { 0 }, skipped, failed)
                    })
                    .await;
                for (t, _) in &tickets {
                    inner.order.end(t);
                }
                report.rewritten += written;
                report.superseded += skipped;
                for id in failed {
                    *report.left_under.entry(id).or_default() += 1;
                }
                if let Some(rate) = per_second.filter(|r| *r > 0) {
                    // Pace by the cache's clock: sleep until the work so far fits the rate.
                    let due = started + report.scanned * 1_000_000_000 / u64::from(rate);
                    let now = inner.clock.now();
                    if due > now {
                        tokio::time::sleep(Duration::from_nanos(due - now)).await;
                    }
                }
                match listed.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(report)
    }

    /// A tier call behind its breaker and timeout, its failure an error.
    async fn tier_result<T>(
        &self,
        i: usize,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match self.inner.call(i, call).await {
            Some(r) => r,
            None => Err(omnicache_core::Error::new(
                omnicache_core::ErrorKind::Unavailable,
                format!("tier {} is skipped (breaker open)", self.inner.slots[i].tier.name()),
            )),
        }
    }
}
