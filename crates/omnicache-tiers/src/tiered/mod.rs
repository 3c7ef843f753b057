//! The tiered cache: the memory cache (L1) over any stack of lower tiers.
//!
//! - **Reads** try L1, then each tier in order, each behind a timeout and a circuit breaker. A
//!   hit below is promoted into L1 and into the tiers above it, and returned. A tier that fails,
//!   times out or returns a corrupt entry counts as a miss: callers never see its error.
//! - **Writes** go to L1 and then to each tier by its [`WritePolicy`]: awaited
//!   ([`WritePolicy::Through`]), queued to a background task ([`WritePolicy::Behind`], a bounded
//!   queue flushed by [`TieredCache::flush`] and [`TieredCache::shutdown`]), or written only
//!   when L1 evicts the entry ([`WritePolicy::OnEvict`], demotion). A tier's TTL cap shortens
//!   what it stores.
//! - **Failures**: a tier failing `threshold` times in a row is skipped (breaker open) until its
//!   cooldown passes, then tried once (half-open). [`TieredCache::report_failure`] counts a
//!   caller's complaint about an entry; after `failure_threshold` complaints it is invalidated
//!   everywhere.
//! - **Events**: listeners given to [`TieredCacheBuilder::event_listener`] hear what happens to
//!   the cache's entries as its callers see them ([`CacheEvent`]): writes, removals with their
//!   cause, promotions and demotions.
//!
//! ```
//! use omnicache_core::testkit::MemoryTier;
//! use omnicache_tiers::tiered::{PutOptions, TieredCache, WritePolicy};
//! use std::sync::Arc;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let remote = Arc::new(MemoryTier::default());
//! let cache = TieredCache::builder()
//!     .l1_capacity(1_000)
//!     .tier(remote.clone(), WritePolicy::Through)
//!     .build()?;
//! cache.put(b"user:1", b"Ada".to_vec(), PutOptions::default()).await?;
//! assert_eq!(remote.len(), 1, "written through to the tier");
//! assert_eq!(cache.get(b"user:1").await.unwrap().value, b"Ada");
//! # Ok::<(), omnicache_core::Error>(())
//! # }).unwrap();
//! ```

mod as_tier;
mod builder;
mod complaints;
mod cost;
mod io;
mod load;
mod missed;
mod observe;
mod order;
mod place;
mod prefetch;
mod report;
mod retransform;
mod stats;
mod transform;
mod typed;

use crate::breaker::Breaker;
use crate::memory::sync::Cache;
pub use crate::memory::ReadThroughStats;
pub use builder::TieredCacheBuilder;
pub use complaints::Complaint;
use complaints::Complaints;
pub use cost::{CostModel, CostReport, TierCost, TierSettings};
use observe::{accessed, Listeners, Sampling};
use omnicache_core::{
    CacheEvent, DynTier, Error, ErrorKind, Invalidation, Origin, PolicyFactory, RemovalCause,
    Result, ScanPage, SharedClock, StatsRecorder, StatsSnapshot, TierEntry, TierHealth, Timestamp,
};
use order::{Order, Ticket, Verdict};
use parking_lot::Mutex;
use place::Place;
pub use prefetch::{PrefetchLimits, PrefetchStats};
pub use retransform::RetransformReport;
use stats::*;
pub use stats::{TierStats, TierStatus};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use transform::Transforms;
pub use typed::{LoadError, TypedCache};

/// The key a probe reads; never written.
const PROBE_KEY: &[u8] = b"\0omnicache:probe";

/// How writes reach a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePolicy {
    /// `put` awaits the tier's write.
    Through,
    /// `put` queues the write; a background task performs it.
    Behind,
    /// Only entries evicted from L1 are written (demotion).
    OnEvict,
}

/// A value with its metadata, as the tiered cache returns it: core's [`TierEntry`], its value
/// as written (the cache's transforms undone, so its [`Encoding`](omnicache_core::Encoding) is
/// raw unless a caller writing into the cache as a tier gave its own).
pub type Entry = TierEntry;

/// What [`TieredCache::erase`] removed: L1's count and each tier's, by name (`None`: the tier
/// could not be reached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraseReport {
    /// Entries removed from L1.
    pub l1: u64,
    /// Each tier's name and how many it removed.
    pub tiers: Vec<(String, Option<u64>)>,
}

/// Options of one `put`.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Time to live; the cache's default when `None`.
    pub ttl: Option<Duration>,
    /// Tags for group invalidation.
    pub tags: Vec<String>,
    /// The data subject the value belongs to.
    pub subject: Option<String>,
    /// A cold entry: stored only in the tier with the cheapest storage, not in L1.
    pub cold: bool,
}

struct Slot {
    tier: Arc<dyn DynTier>,
    write: WritePolicy,
    max_value_bytes: Option<usize>,
    cost: CostModel,
    ttl_cap: Option<u64>,
    timeout: Duration,
    breaker: Breaker,
    stats: AtomicTierStats,
    /// Whether the last call that reached the tier succeeded, and the last failure's reason.
    reach: Mutex<Reach>,
}

/// What the calls that reached a tier last said.
#[derive(Debug)]
struct Reach {
    failing: bool,
    last_error: Option<String>,
    /// The health last reported to listeners.
    reported: TierHealth,
}

impl Default for Reach {
    fn default() -> Self {
        Reach { failing: false, last_error: None, reported: TierHealth::Healthy }
    }
}

/// Tier work for the background writer. Each holds a unit of its ticket's work, and runs only
/// if the ticket is still the newest for its key ([`Order::run`]).
enum Job {
    /// A write to `tier` of an entry in the tiers' form (transformed).
    Put {
        tier: usize,
        ticket: Ticket,
        entry: TierEntry,
    },
    /// A write to `tier` of an entry L1 evicted, served from `pending` until the write is done;
    /// transformed by the writer, off the evicting thread.
    Demote {
        tier: usize,
        ticket: Ticket,
        entry: Arc<Entry>,
    },
    /// A delete from `tier` of a copy the ticket's write made stale (the value does not go
    /// there: too large, a demotion tier, a cold entry elsewhere).
    Purge {
        tier: usize,
        ticket: Ticket,
    },
    Flush(tokio::sync::oneshot::Sender<()>),
}

struct Inner {
    l1: Cache<Vec<u8>, Arc<Entry>>,
    slots: Vec<Slot>,
    clock: SharedClock,
    default_ttl: Option<Duration>,
    complaints: Complaints,
    queue: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
    /// Entries evicted from L1 whose demotion has not been written yet: still served.
    pending: Arc<Mutex<HashMap<Vec<u8>, Arc<Entry>>>>,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    sweeper: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The order of tier work per key: deletes win over older writes.
    order: Arc<Order>,
    l1_max_value_bytes: Option<usize>,
    started: Timestamp,
    /// Lookups that no tier answered.
    misses: AtomicU64,
    events: Listeners,
    /// The largest value each tier written eagerly (through or behind) takes; shared with L1's
    /// eviction listener, which is built before `Inner`.
    eager: Arc<[Option<usize>]>,
    /// Applied to values on their way to the tiers, undone on the way back.
    transforms: Transforms,
    /// Looks at values before they are stored, when given.
    guard: Option<Arc<dyn omnicache_core::WriteGuard>>,
    /// Invalidations a tier missed while down.
    missed: missed::Missed,
    /// The longest an entry with a data subject lives.
    subject_retention: Option<Duration>,
    /// Values that stayed out of the tiers because a transform failed on them.
    transform_errors: AtomicU64,
    /// The caller's recorder, if any: hits and misses of the whole cache, promotions,
    /// demotions, tier latency (L1's own counts reach it through [`observe::L1Stats`]).
    recorder: Option<Arc<dyn StatsRecorder>>,
    /// Which lookups become [`CacheEvent::Accessed`]; `None` for none.
    sampling: Option<Sampling>,
    /// Fetching ahead, when an advisor was given.
    prefetch: Option<Arc<prefetch::Prefetch>>,
    /// Loads in progress (`get_with`), one per key.
    flights: load::Flights,
    /// Loader runs, for [`TieredCache::stats`].
    loads: omnicache_core::AtomicStats,
    /// `refresh_after_write`, in nanoseconds.
    refresh_after: Option<u64>,
    /// `stale_if_error`, in nanoseconds; 0 for none. Expired entries stay in L1 this long.
    stale_grace: u64,
    read_through: crate::memory::ReadThroughCounts,
}

/// Whether a tier written eagerly takes a value of `len` bytes (`eager`: each such tier's
/// largest value), so an L1 eviction of it leaves a copy below.
fn held_below(eager: &[Option<usize>], len: usize) -> bool {
    eager.iter().any(|max| max.is_none_or(|m| len <= m))
}

/// See the [module docs](self).
#[derive(Clone)]
pub struct TieredCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for TieredCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredCache")
            .field("l1_entries", &self.inner.l1.entry_count())
            .field(
                "tiers",
                &self.inner.slots.iter().map(|s| s.tier.name().to_string()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TieredCache {
    /// A builder.
    pub fn builder() -> TieredCacheBuilder {
        TieredCacheBuilder {
            l1_capacity: 10_000,
            l1_max_bytes: None,
            default_ttl: None,
            clock: SharedClock::System,
            tiers: Vec::new(),
            failure_threshold: 3,
            failure_window: Duration::from_secs(60),
            max_complaint_keys: 10_000,
            queue_capacity: 10_000,
            l1_max_value_bytes: None,
            sweep_interval: Some(Duration::from_secs(60)),
            l1_policy: None,
            listeners: Vec::new(),
            transforms: Vec::new(),
            on_demand: None,
            journal: None,
            subject_retention: None,
            guard: None,
            recorder: None,
            sample_every: 0,
            prefetch: None,
            l1_admission: None,
            refresh_after: None,
            stale_if_error: None,
        }
    }

    /// The entry for `key`, from the fastest tier that has it; `None` on a miss anywhere, or
    /// when every tier that might have it is failing. With a
    /// [`prefetch`](TieredCacheBuilder::prefetch) advisor, the keys it suggests after this
    /// lookup are fetched into L1 in the background.
    pub async fn get(&self, key: &[u8]) -> Option<Arc<Entry>> {
        let found = self.lookup(key, true, true).await;
        if let Some(prefetch) = &self.inner.prefetch {
            self.after_lookup(prefetch, key, found.is_some());
        }
        found
    }

    /// A caller's lookup of the tiers only (L1 was just checked), counted as a hit or miss.
    pub(super) async fn lookup_below(&self, key: &[u8]) -> Option<Arc<Entry>> {
        self.lookup(key, false, true).await
    }

    /// A lookup, in L1 first when `l1`: a caller's (`caller`: counted as a hit or miss of the
    /// cache, sampled), or a prefetch's (only the tiers' own counters).
    async fn lookup(&self, key: &[u8], l1: bool, caller: bool) -> Option<Arc<Entry>> {
        let inner = &self.inner;
        let now = || inner.clock.now();
        if l1 {
            // The clock is read only with a stale grace: without one L1 never returns an
            // expired entry.
            let fresh = |e: &Arc<Entry>| inner.stale_grace == 0 || !e.meta.is_expired(now());
            if let Some(e) = inner.l1.get(key).filter(fresh) {
                accessed(inner.sampling, &inner.events, key, true, now);
                return Some(e);
            }
        }
        let pending = inner.pending.lock().get(key).cloned();
        if let Some(e) = pending.filter(|e| !e.meta.is_expired(inner.clock.now())) {
            if let Some(r) = inner.recorder.as_ref().filter(|_| caller) {
                r.record_hits(1);
            }
            if caller {
                accessed(inner.sampling, &inner.events, key, true, now);
            }
            return Some(e);
        }
        for i in 0..inner.slots.len() {
            let tier = inner.slots[i].tier.clone();
            match inner.call(i, tier.get(key)).await {
                Some(Ok(Some(found))) => {
                    let now = inner.clock.now();
                    inner.order.observe(found.meta.version);
                    if found.meta.is_expired(now)
                        || inner.order.superseded(key, &found.meta)
                        || inner.missed_by(i, key, &found.meta)
                    {
                        // Expired, or older than a write or delete of this process whose tier
                        // work has not reached this tier yet (or could not), or covered by an
                        // invalidation or erasure the tier missed while down: not served.
                        inner.slots[i].stats.add(MISSES, 1);
                        continue;
                    }
                    // The tiers above take the entry as stored; L1 and the caller as written.
                    let (up, found) = match i {
                        0 => (inner.transforms.up(key, found), None),
                        _ => (inner.transforms.up(key, found.clone()), Some(found)),
                    };
                    let entry = match up {
                        Ok(entry) => Arc::new(entry),
                        Err(e) => {
                            self.unreadable(i, key, &e).await;
                            continue;
                        }
                    };
                    inner.slots[i].stats.add(HITS, 1);
                    inner.slots[i].stats.add(PROMOTIONS, 1);
                    if let Some(r) = inner.recorder.as_ref().filter(|_| caller) {
                        r.record_hits(1);
                        r.record_promotion();
                    }
                    if caller {
                        accessed(inner.sampling, &inner.events, key, true, || now);
                    }
                    self.promote(key, i, &entry, found, now).await;
                    inner.events.emit(|| CacheEvent::Promoted {
                        key: key.to_vec(),
                        from: tier.name().to_string(),
                    });
                    return Some(entry);
                }
                Some(Ok(None)) => inner.slots[i].stats.add(MISSES, 1),
                Some(Err(e)) if e.kind() == ErrorKind::Corrupt => self.unreadable(i, key, &e).await,
                _ => {}
            }
        }
        if !caller {
            return None;
        }
        inner.misses.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = &inner.recorder {
            r.record_misses(1);
        }
        accessed(inner.sampling, &inner.events, key, false, now);
        None
    }

    /// Tier `i` answered `key` with an entry that cannot be read: corrupt bytes, or a transform
    /// that cannot undo what it finds. Deleted from the tier, unless the transform's trouble is
    /// passing (a key service down): then it is only a miss.
    async fn unreadable(&self, i: usize, key: &[u8], error: &Error) {
        let inner = &self.inner;
        if matches!(error.kind(), ErrorKind::Unavailable | ErrorKind::Timeout) {
            inner.slots[i].stats.add(MISSES, 1);
            return;
        }
        inner.slots[i].stats.add(CORRUPT, 1);
        inner.slots[i].stats.removed(RemovalCause::Corrupt, 1);
        // The tier normally deletes what it finds corrupt; make sure.
        let tier = inner.slots[i].tier.clone();
        let _ = inner.call(i, tier.remove(key)).await;
        let cause = RemovalCause::Corrupt;
        inner.events.emit(|| CacheEvent::Removed { key: key.to_vec(), cause });
    }

    /// Copies an entry found in tier `from` into L1 and into the tiers above it that write
    /// eagerly, where the value fits, unless something newer happened to the key. `stored` is
    /// the entry as the tier returned it (transformed), for the tiers above; `None` from the
    /// first tier, which has none above.
    async fn promote(
        &self,
        key: &[u8],
        from: usize,
        entry: &Arc<Entry>,
        stored: Option<TierEntry>,
        now: Timestamp,
    ) {
        let inner = &self.inner;
        let Some(ticket) = inner.order.begin_existing(key, &entry.meta) else { return };
        if inner.fits_l1(entry.value.len()) {
            inner.insert_l1(&ticket, entry.clone(), now);
        }
        for j in (0..from).filter(|&j| inner.slots[j].write != WritePolicy::OnEvict) {
            if let Some(stored) = stored.as_ref().filter(|_| inner.fits(j, entry.value.len())) {
                inner.put_gated(j, &ticket, stored.clone()).await;
            }
        }
        inner.order.end(&ticket);
    }

    /// Stores `value` under `key` in L1 and in every tier by its write policy. Tier failures are
    /// counted, not returned; the only errors are for input no tier could store (an empty key).
    ///
    /// Placement: a value larger than a tier's `max_value_bytes` skips that tier, and one larger
    /// than `l1_max_value_bytes` skips L1; a [`PutOptions::cold`] entry goes only to the tier
    /// with the cheapest storage (by its [`CostModel`]), not to L1. A tier the value skips (and
    /// the demotion tier) loses any older copy of the key, so it can never serve one.
    ///
    /// Order: each write takes a new version
    /// ([`EntryMeta::version`](omnicache_core::EntryMeta::version)); a later `put`, `remove` or
    /// `invalidate` of the key wins over this one in every tier, even when this one's
    /// write-behind runs later.
    pub async fn put(&self, key: &[u8], value: Vec<u8>, options: PutOptions) -> Result<()> {
        self.put_encoded(key, value, omnicache_core::Encoding::RAW, options).await
    }

    /// Places an entry (metadata set but for its version) in L1 and the tiers, as
    /// [`TieredCache::put`] does.
    async fn store(&self, key: &[u8], entry: TierEntry, cold: bool, now: Timestamp) -> Arc<Entry> {
        let inner = &self.inner;
        let place::Accepted { ticket, len, stored, entry } = self.accept(key, entry, cold, now);
        let cheapest = inner.cheapest_tier(len);
        for i in 0..inner.slots.len() {
            let (job, now) = match (inner.place(i, len, cold, cheapest), &stored) {
                (Place::Write { now }, Some(stored)) => {
                    (Job::Put { tier: i, ticket: ticket.clone(), entry: stored.clone() }, now)
                }
                (Place::Write { now } | Place::Purge { now }, _) => {
                    (Job::Purge { tier: i, ticket: ticket.clone() }, now)
                }
            };
            // Cold entries and write-through tiers are written before `put` returns; the rest
            // (write-behind, purges) queue, and run inline only when the queue is full.
            let job = if now { Err(Box::new(job)) } else { inner.enqueue(job) };
            if let Err(job) = job {
                inner.run_inline(job).await;
            }
        }
        inner.order.end(&ticket);
        entry
    }

    /// Stores several entries: L1 each, and each tier in one batch (one transaction for the
    /// disk tier), whatever its write policy. Used by warming and import. Each entry is placed
    /// as [`TieredCache::put`] places it, and ordered with other writes in the same way.
    pub async fn put_many(&self, items: Vec<(Vec<u8>, Vec<u8>, PutOptions)>) -> Result<()> {
        if items.iter().any(|(k, _, _)| k.is_empty()) {
            return Err(Error::invalid_input("a cache key must not be empty"));
        }
        let items = self.guard_all(items)?;
        let inner = &self.inner;
        let now = inner.clock.now();
        let mut batch = Vec::with_capacity(items.len());
        for (key, value, options) in items {
            let ttl = inner.ttl_for(&options);
            let meta = Inner::meta(now, ttl, value.len(), options.tags, options.subject);
            let entry = TierEntry::new(value, meta);
            if options.cold {
                // Cold entries take the single-entry path: one tier, written now.
                self.store(&key, entry, true, now).await;
                continue;
            }
            batch.push(self.accept(&key, entry, false, now));
        }
        for i in 0..inner.slots.len() {
            let (fit, rest): (Vec<_>, Vec<_>) = batch.iter().partition(|a| {
                matches!(inner.place(i, a.len, false, None), Place::Write { .. })
                    && a.stored.is_some()
            });
            if !rest.is_empty() {
                // Older copies of the batch's keys leave the tiers the values skip, in one call.
                let tickets: Vec<_> = rest.iter().map(|a| (a.ticket.clone(), None)).collect();
                let tier = inner.slots[i].tier.clone();
                inner
                    .order
                    .run_many(&tickets, |verdicts| async move {
                        let keys: Vec<Vec<u8>> = verdicts
                            .into_iter()
                            .zip(&rest)
                            .filter(|(v, _)| *v != Verdict::Newer)
                            .map(|(_, a)| a.ticket.key.clone())
                            .collect();
                        if !keys.is_empty() {
                            inner.call(i, tier.invalidate(&Invalidation::Keys(keys))).await;
                        }
                    })
                    .await;
            }
            if fit.is_empty() {
                continue;
            }
            let fit: Vec<_> =
                fit.iter().filter_map(|a| Some((&a.ticket, a.stored.as_ref()?))).collect();
            let tickets: Vec<_> = fit.iter().map(|(t, e)| ((*t).clone(), Some(&e.meta))).collect();
            let tier = inner.slots[i].tier.clone();
            inner
                .order
                .run_many(&tickets, |verdicts| async move {
                    let mut capped = Vec::new();
                    for (j, verdict) in verdicts.into_iter().enumerate() {
                        let (t, e) = fit[j];
                        match verdict {
                            Verdict::Current => {
                                let e = (*e).clone();
                                capped.push((t.key.clone(), inner.tier_entry(i, e, now)));
                            }
                            Verdict::Swept => {
                                inner.remove_from(i, &t.key).await;
                            }
                            Verdict::Newer => {}
                        }
                    }
                    let n = capped.len() as u64;
                    if n > 0 {
                        if let Some(Ok(())) = inner.call(i, tier.put_many(capped)).await {
                            inner.slots[i].stats.add(WRITES, n);
                        }
                    }
                })
                .await;
        }
        for a in &batch {
            inner.order.end(&a.ticket);
        }
        Ok(())
    }

    /// Removes `key` from L1 and every tier; true if any had it. Any write of the key made
    /// before (queued behind, or being demoted) no longer reaches a tier.
    pub async fn remove(&self, key: &[u8]) -> bool {
        self.remove_for(key, RemovalCause::Explicit).await
    }

    async fn remove_for(&self, key: &[u8], cause: RemovalCause) -> bool {
        let inner = &self.inner;
        let ticket = inner.order.begin(key);
        let v = ticket.version;
        let mut found = inner.l1.remove_if(key, cause, |e| e.meta.version < v).is_some();
        found |= {
            let mut pending = inner.pending.lock();
            let older = pending.get(key).is_some_and(|e| e.meta.version < v);
            older && pending.remove(key).is_some()
        };
        inner.complaints.forget(key);
        for i in 0..inner.slots.len() {
            if inner.purge(i, &ticket).await == Some(true) {
                inner.slots[i].stats.removed(cause, 1);
                found = true;
            }
        }
        inner.order.end(&ticket);
        if found {
            inner.events.emit(|| CacheEvent::Removed { key: key.to_vec(), cause });
        }
        found
    }

    /// Removes every entry `what` covers from L1 and every tier; returns how many the tiers
    /// reported (L1's copies included in none of them are not counted twice). Writes made
    /// before it and still queued no longer reach a tier if `what` covers them; writes made
    /// after it are kept. Listeners hear [`CacheEvent::Invalidated`] from [`Origin::Local`].
    pub async fn invalidate(&self, what: &Invalidation) -> u64 {
        self.invalidate_from(what, Origin::Local).await
    }

    /// [`invalidate`](Self::invalidate) on behalf of `origin`, which listeners hear in
    /// [`CacheEvent::Invalidated`]: an invalidation applied from another instance says so,
    /// and is not forwarded again.
    pub async fn invalidate_from(&self, what: &Invalidation, origin: Origin) -> u64 {
        let (l1, tiers) = self.sweep_out(what, origin, RemovalCause::Invalidated).await;
        tiers.into_iter().flatten().fold(l1, u64::max)
    }

    /// Erases every entry of data subject `subject` from L1 and every tier (through each
    /// tier's subject index, not a scan), as removals with cause `Erased`; returns what each
    /// layer removed (`None` for a tier that could not be reached: run it again when it is
    /// back). Writes of the subject made before it and still queued no longer reach a tier.
    pub async fn erase(&self, subject: &str) -> EraseReport {
        let what = Invalidation::Subject(subject.to_string());
        let (l1, removed) = self.sweep_out(&what, Origin::Local, RemovalCause::Erased).await;
        let tiers = self.inner.slots.iter().map(|s| s.tier.name().to_string()).zip(removed);
        EraseReport { l1, tiers: tiers.collect() }
    }

    /// Removes what `what` covers from L1 and every tier for `cause`; returns L1's count and
    /// each tier's (`None` when its call failed or was skipped).
    async fn sweep_out(
        &self,
        what: &Invalidation,
        origin: Origin,
        cause: RemovalCause,
    ) -> (u64, Vec<Option<u64>>) {
        let inner = &self.inner;
        let (v, gate) = inner.order.begin_sweep(what).await;
        let before = inner.l1.entry_count();
        let listening = inner.events.any();
        let keys = Mutex::new(Vec::new());
        inner.l1.invalidate_if(|k, e| {
            let hit = e.meta.version < v && what.matches(k, &e.meta);
            if hit && listening {
                keys.lock().push(k.clone());
            }
            hit
        });
        inner.pending.lock().retain(|k, e| {
            let hit = e.meta.version < v && what.matches(k, &e.meta);
            if hit && listening {
                keys.lock().push(k.clone());
            }
            !hit
        });
        // Complaints about keys the invalidation covers by key no longer count.
        inner.complaints.forget_covered(what);
        let l1_removed = before.saturating_sub(inner.l1.entry_count());
        let mut tiers = Vec::with_capacity(inner.slots.len());
        for i in 0..inner.slots.len() {
            let tier = inner.slots[i].tier.clone();
            let n = match inner.call(i, tier.invalidate(what)).await {
                Some(Ok(n)) => Some(n),
                _ => None,
            };
            match n {
                Some(n) => inner.slots[i].stats.removed(cause, n),
                None => inner.missed.record(missed::tier_id(i, tier.name()), what, v),
            }
            tiers.push(n);
        }
        drop(gate);
        inner.order.end_sweep(v);
        for key in keys.into_inner() {
            inner.events.emit(|| CacheEvent::Removed { key, cause });
        }
        let removed = tiers.iter().flatten().copied().fold(l1_removed, u64::max);
        inner.events.emit(|| CacheEvent::Invalidated { what: what.clone(), removed, origin });
        (l1_removed, tiers)
    }

    /// Applies again the invalidations and erasures tiers missed while down (see
    /// [`TieredCacheBuilder::journal`]); returns how many they took now. The sweeper and
    /// [`probe_failing`](Self::probe_failing) call it.
    pub async fn retry_missed(&self) -> u64 {
        let inner = &self.inner;
        if inner.missed.len() == 0 {
            return 0;
        }
        let mut done = 0;
        for miss in inner.missed.snapshot() {
            let Some(i) = (0..inner.slots.len())
                .find(|&i| missed::tier_id(i, inner.slots[i].tier.name()) == miss.tier)
            else {
                // A tier no longer configured: nothing left to apply it to.
                inner.missed.applied(&miss);
                continue;
            };
            let tier = inner.slots[i].tier.clone();
            if let Some(Ok(n)) = inner.call(i, tier.invalidate(&miss.what)).await {
                let cause = match miss.what {
                    Invalidation::Subject(_) => RemovalCause::Erased,
                    _ => RemovalCause::Explicit,
                };
                inner.slots[i].stats.removed(cause, n);
                inner.missed.applied(&miss);
                done += 1;
            }
        }
        done
    }

    /// Invalidations and erasures a tier missed and has not taken yet.
    pub fn missed_invalidations(&self) -> usize {
        self.inner.missed.len()
    }

    /// Counts a complaint about `key` (a caller found its value bad); returns whether the entry
    /// was invalidated. See [`TieredCache::complain`].
    pub async fn report_failure(&self, key: &[u8]) -> bool {
        self.complain(key).await.invalidated
    }

    /// Counts a complaint about `key` (a caller found its value bad). Complaints count within
    /// a window ([`TieredCacheBuilder::failure_window`]) and a write of the key forgets them;
    /// the one that reaches the threshold ([`TieredCacheBuilder::failure_threshold`])
    /// invalidates the entry everywhere (a removal with cause `Health`). At most
    /// [`TieredCacheBuilder::max_complaint_keys`] keys are tracked at once.
    pub async fn complain(&self, key: &[u8]) -> Complaint {
        let outcome = self.inner.complaints.add(key, self.inner.clock.now());
        if outcome.invalidated {
            self.remove_for(key, RemovalCause::Health).await;
        }
        outcome
    }

    /// Waits until every write queued so far (write-behind, demotion) has been attempted.
    pub async fn flush(&self) {
        let sender = self.inner.queue.lock().clone();
        if let Some(tx) = sender {
            let (done, wait) = tokio::sync::oneshot::channel();
            if tx.send(Job::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
    }

    /// Flushes the queue and stops the background writer; later writes go straight to the
    /// tiers.
    pub async fn shutdown(&self) {
        if let Some(s) = self.inner.sweeper.lock().take() {
            s.abort();
        }
        self.flush().await;
        let tx = self.inner.queue.lock().take();
        drop(tx);
        let worker = self.inner.worker.lock().take();
        if let Some(w) = worker {
            let _ = w.await;
        }
    }

    /// Deletes expired entries from L1 and every tier now; returns how many the tiers deleted.
    pub async fn sweep(&self) -> u64 {
        let inner = &self.inner;
        self.retry_missed().await;
        inner.l1.run_pending_tasks();
        let mut n = 0;
        for i in 0..inner.slots.len() {
            let tier = inner.slots[i].tier.clone();
            if let Some(Ok(k)) = inner.call(i, tier.sweep_expired()).await {
                inner.slots[i].stats.removed(RemovalCause::Expired, k);
                n += k;
            }
        }
        n
    }
}
