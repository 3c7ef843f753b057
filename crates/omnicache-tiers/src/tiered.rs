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

use crate::breaker::{Breaker, BreakerState};
use crate::memory::sync::Cache;
use omnicache_core::clock::duration_nanos;
use omnicache_core::{
    CacheEvent, DynTier, EntryMeta, Error, ErrorKind, EventListener, Invalidation, PolicyFactory,
    RemovalCause, Result, ScanPage, SharedClock, StatsSnapshot, Tier, TierEntry, TierHealth,
    Timestamp,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

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

/// A value with its metadata, as the tiered cache returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value bytes.
    pub value: Vec<u8>,
    /// Its metadata.
    pub meta: EntryMeta,
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

/// Counters of one tier, as seen by the tiered cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierStats {
    /// Reads that found the entry.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
    /// Calls that failed or timed out.
    pub errors: u64,
    /// Calls skipped because the breaker was open.
    pub skipped: u64,
    /// Entries found corrupt.
    pub corrupt: u64,
    /// Entries promoted from this tier.
    pub promotions: u64,
    /// Entries written to this tier by demotion from L1.
    pub demotions: u64,
    /// Writes that succeeded.
    pub writes: u64,
    /// Demotions that could not be written (queue full or tier failing).
    pub dropped: u64,
    /// Total time in calls to the tier, in nanoseconds, and their number.
    pub latency_nanos: u64,
    /// Calls timed.
    pub calls: u64,
    /// Entries this cache removed from the tier, by cause ([`RemovalCause::index`]): explicit
    /// removals, invalidations, complaints (`Health`), corruption and sweeps (`Expired`).
    /// Evictions a tier makes by itself (a byte budget, Redis's own expiry) are its own
    /// statistics, such as `DiskTier::stats`.
    pub removals: [u64; RemovalCause::ALL.len()],
}

#[derive(Debug, Default)]
struct AtomicTierStats([AtomicU64; 11], [AtomicU64; RemovalCause::ALL.len()]);

impl AtomicTierStats {
    fn add(&self, i: usize, n: u64) {
        self.0[i].fetch_add(n, Ordering::Relaxed);
    }
    fn removed(&self, cause: RemovalCause, n: u64) {
        self.1[cause.index()].fetch_add(n, Ordering::Relaxed);
    }
    fn snapshot(&self) -> TierStats {
        let g = |i: usize| self.0[i].load(Ordering::Relaxed);
        TierStats {
            hits: g(HITS),
            misses: g(MISSES),
            errors: g(ERRORS),
            skipped: g(SKIPPED),
            corrupt: g(CORRUPT),
            promotions: g(PROMOTIONS),
            demotions: g(DEMOTIONS),
            writes: g(WRITES),
            dropped: g(DROPPED),
            latency_nanos: g(LATENCY),
            calls: g(CALLS),
            removals: std::array::from_fn(|i| self.1[i].load(Ordering::Relaxed)),
        }
    }
}

const HITS: usize = 0;
const MISSES: usize = 1;
const ERRORS: usize = 2;
const SKIPPED: usize = 3;
const CORRUPT: usize = 4;
const PROMOTIONS: usize = 5;
const DEMOTIONS: usize = 6;
const WRITES: usize = 7;
const DROPPED: usize = 8;
const LATENCY: usize = 9;
const CALLS: usize = 10;

/// The state of one tier, for health and readiness reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierStatus {
    /// The tier's name.
    pub name: String,
    /// What the tier says of itself.
    pub health: TierHealth,
    /// The breaker in front of it.
    pub breaker: BreakerState,
    /// Its counters.
    pub stats: TierStats,
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
}

enum Job {
    /// A write to `tier`; for a demotion, the evicted L1 entry, served from `pending` until the
    /// write is done.
    Put {
        tier: usize,
        key: Vec<u8>,
        entry: TierEntry,
        demotion: Option<Arc<Entry>>,
    },
    Flush(tokio::sync::oneshot::Sender<()>),
}

struct Inner {
    l1: Cache<Vec<u8>, Arc<Entry>>,
    slots: Vec<Slot>,
    clock: SharedClock,
    default_ttl: Option<Duration>,
    failures: Mutex<HashMap<Vec<u8>, u32>>,
    failure_threshold: u32,
    queue: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
    /// Entries evicted from L1 whose demotion has not been written yet: still served.
    pending: Arc<Mutex<HashMap<Vec<u8>, Arc<Entry>>>>,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    sweeper: Mutex<Option<tokio::task::JoinHandle<()>>>,
    version: AtomicU64,
    l1_max_value_bytes: Option<usize>,
    started: Timestamp,
    /// Lookups that no tier answered.
    misses: AtomicU64,
    events: Listeners,
    /// The largest value each tier written eagerly (through or behind) takes; shared with L1's
    /// eviction listener, which is built before `Inner`.
    eager: Arc<[Option<usize>]>,
}

/// Whether a tier written eagerly takes a value of `len` bytes (`eager`: each such tier's
/// largest value), so an L1 eviction of it leaves a copy below.
fn held_below(eager: &[Option<usize>], len: usize) -> bool {
    eager.iter().any(|max| max.is_none_or(|m| len <= m))
}

/// The listeners of a tiered cache, shared with L1's eviction listener.
#[derive(Clone, Default)]
struct Listeners(Arc<[Arc<dyn EventListener>]>);

impl Listeners {
    /// Sends the event `make` builds to every listener; builds nothing when there are none.
    fn emit(&self, make: impl FnOnce() -> CacheEvent) {
        if self.0.is_empty() {
            return;
        }
        let event = make();
        for l in self.0.iter() {
            l.on_event(&event);
        }
    }
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

/// One tier as configured in a [`TieredCacheBuilder`].
#[derive(Clone)]
struct TierSpec {
    tier: Arc<dyn DynTier>,
    write: WritePolicy,
    settings: TierSettings,
}

/// Builds a [`TieredCache`].
#[must_use]
pub struct TieredCacheBuilder {
    l1_capacity: u64,
    l1_max_bytes: Option<u64>,
    default_ttl: Option<Duration>,
    clock: SharedClock,
    tiers: Vec<TierSpec>,
    failure_threshold: u32,
    queue_capacity: usize,
    l1_max_value_bytes: Option<usize>,
    sweep_interval: Option<Duration>,
    l1_policy: Option<Arc<dyn PolicyFactory>>,
    listeners: Vec<Arc<dyn EventListener>>,
}

impl fmt::Debug for TieredCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredCacheBuilder")
            .field("l1_capacity", &self.l1_capacity)
            .field("tiers", &self.tiers.len())
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl TieredCacheBuilder {
    /// Entries L1 holds. Default: 10,000.
    pub fn l1_capacity(mut self, entries: u64) -> Self {
        self.l1_capacity = entries;
        self
    }

    /// Bounds L1 by value bytes instead of entries. Default: by entries.
    pub fn l1_max_bytes(mut self, bytes: u64) -> Self {
        self.l1_max_bytes = Some(bytes);
        self
    }

    /// The TTL of entries put without one. Default: none.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// The clock for expiry and breakers. Default: the system clock.
    pub fn clock(mut self, clock: impl Into<SharedClock>) -> Self {
        self.clock = clock.into();
        self
    }

    /// Adds a tier below the previous ones, with a 1 s timeout and a breaker that opens after 5
    /// consecutive failures for 60 s.
    pub fn tier(self, tier: Arc<dyn DynTier>, write: WritePolicy) -> Self {
        self.tier_with(tier, write, |t| t)
    }

    /// Adds a tier and adjusts its settings.
    pub fn tier_with(
        mut self,
        tier: Arc<dyn DynTier>,
        write: WritePolicy,
        configure: impl FnOnce(TierSettings) -> TierSettings,
    ) -> Self {
        let settings = configure(TierSettings::default());
        self.tiers.push(TierSpec { tier, write, settings });
        self
    }

    /// Complaints ([`TieredCache::report_failure`]) that invalidate an entry. Default: 3.
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.failure_threshold = n.max(1);
        self
    }

    /// Values larger than this skip L1 and are served from the tiers. Default: no limit.
    pub fn l1_max_value_bytes(mut self, bytes: usize) -> Self {
        self.l1_max_value_bytes = Some(bytes);
        self
    }

    /// How often a background task deletes expired entries from L1 and every tier; `None` to
    /// sweep only on [`TieredCache::sweep`]. Default: every 60 s.
    pub fn sweep_interval(mut self, every: Option<Duration>) -> Self {
        self.sweep_interval = every;
        self
    }

    /// Capacity of the write-behind and demotion queue. Default: 10,000 jobs.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(1);
        self
    }

    /// L1's eviction policy (see [`TieredCache::set_l1_policy`] to change it later). Default:
    /// the memory cache's default, S3-FIFO.
    pub fn l1_policy(mut self, factory: Arc<dyn PolicyFactory>) -> Self {
        self.l1_policy = Some(factory);
        self
    }

    /// Adds a listener for what happens to the cache's entries. It is called synchronously on
    /// the thread that caused the event (a caller, or the background writer for demotions),
    /// outside every lock, so keep it quick: hand slow work to a channel. Events describe the
    /// cache as a whole:
    /// - [`CacheEvent::Inserted`] for every key written by `put`, `put_many` or as a [`Tier`];
    /// - [`CacheEvent::Removed`] when an entry leaves the cache: `Explicit` (`remove`), `Health`
    ///   (complaints reached the threshold), `Invalidated` (for each key L1 held; the tiers
    ///   report counts, not keys), `Expired` (L1 found it expired), `Corrupt` (a tier returned
    ///   it corrupt), and `Capacity` when L1 evicts an entry that no lower tier was given (none
    ///   written eagerly takes its size, and its demotion failed, was dropped or there is no
    ///   demotion tier);
    /// - [`CacheEvent::Promoted`] when a tier's hit is copied into L1, naming the tier;
    /// - [`CacheEvent::Demoted`] when an L1 eviction was written to the demotion tier.
    ///
    /// Default: none; without listeners no event is built.
    pub fn event_listener(mut self, listener: Arc<dyn EventListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Builds the cache and starts its background writer on the current Tokio runtime.
    pub fn build(self) -> Result<TieredCache> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::invalid_input("TieredCache::build must be called inside a Tokio runtime")
        })?;
        let (tx, rx) = mpsc::channel::<Job>(self.queue_capacity);
        let demote_to: Option<usize> =
            self.tiers.iter().position(|t| t.write == WritePolicy::OnEvict);
        let queue = Arc::new(Mutex::new(Some(tx)));
        let demote_queue = queue.clone();
        let pending: Arc<Mutex<HashMap<Vec<u8>, Arc<Entry>>>> = Arc::default();
        let demote_pending = pending.clone();
        let clock = self.clock.clone();
        let events = Listeners(self.listeners.into());
        let l1_events = events.clone();
        let eager: Arc<[Option<usize>]> = self
            .tiers
            .iter()
            .filter(|t| t.write != WritePolicy::OnEvict)
            .map(|t| t.settings.max_value_bytes)
            .collect();
        let l1_eager = eager.clone();
        let mut l1 = Cache::builder()
            .max_capacity(self.l1_max_bytes.unwrap_or(self.l1_capacity))
            .clock(self.clock.clone())
            .stats(true)
            .eviction_listener(move |key: Vec<u8>, e: Arc<Entry>, cause| {
                match cause {
                    RemovalCause::Expired => {
                        l1_events.emit(|| CacheEvent::Removed { key, cause });
                        return;
                    }
                    RemovalCause::Capacity => {}
                    // Removals the cache asked for are reported where it asks for them.
                    _ => return,
                }
                let held_below = held_below(&l1_eager, e.value.len());
                let mut queued = false;
                if let Some(tier) = demote_to {
                    let entry = TierEntry { value: e.value.clone(), meta: e.meta.clone() };
                    if let Some(tx) = demote_queue.lock().as_ref() {
                        demote_pending.lock().insert(key.clone(), e.clone());
                        let job = Job::Put { tier, key: key.clone(), entry, demotion: Some(e) };
                        queued = match tx.try_send(job) {
                            Ok(()) => true,
                            Err(_) => {
                                // Queue full: the entry is dropped like a plain eviction.
                                demote_pending.lock().remove(&key);
                                false
                            }
                        };
                    }
                }
                if !queued && !held_below {
                    l1_events.emit(|| CacheEvent::Removed { key, cause });
                }
            });
        if let Some(policy) = self.l1_policy {
            l1 = l1.policy_arc(policy);
        }
        if self.l1_max_bytes.is_some() {
            l1 = l1.weigher(|k: &Vec<u8>, v: &Arc<Entry>| {
                u32::try_from(k.len() + v.value.len()).unwrap_or(u32::MAX)
            });
        }
        let slots = self
            .tiers
            .into_iter()
            .map(|t| Slot {
                tier: t.tier,
                write: t.write,
                max_value_bytes: t.settings.max_value_bytes,
                cost: t.settings.cost,
                ttl_cap: t.settings.ttl_cap.map(duration_nanos),
                timeout: t.settings.timeout,
                breaker: Breaker::new(
                    t.settings.breaker_threshold,
                    t.settings.breaker_cooldown,
                    clock.clone(),
                ),
                stats: AtomicTierStats::default(),
            })
            .collect();
        let inner = Arc::new(Inner {
            l1: l1.build(),
            slots,
            clock,
            default_ttl: self.default_ttl,
            failures: Mutex::default(),
            failure_threshold: self.failure_threshold,
            queue,
            pending,
            worker: Mutex::new(None),
            sweeper: Mutex::new(None),
            version: AtomicU64::new(0),
            l1_max_value_bytes: self.l1_max_value_bytes,
            started: self.clock.now(),
            misses: AtomicU64::new(0),
            events,
            eager,
        });
        let weak = Arc::downgrade(&inner);
        let worker = handle.spawn(async move {
            let mut rx = rx;
            while let Some(job) = rx.recv().await {
                match job {
                    Job::Flush(done) => {
                        let _ = done.send(());
                    }
                    Job::Put { tier, key, entry, demotion } => {
                        let Some(inner) = weak.upgrade() else { break };
                        let ok = inner.put_to(tier, &key, entry).await;
                        if let Some(demoted) = demotion {
                            let still_pending = {
                                let mut pending = inner.pending.lock();
                                let mine =
                                    pending.get(&key).is_some_and(|p| Arc::ptr_eq(p, &demoted));
                                if mine {
                                    pending.remove(&key);
                                }
                                mine
                            };
                            if ok {
                                inner.slots[tier].stats.add(DEMOTIONS, 1);
                                let to = inner.slots[tier].tier.name().to_string();
                                inner.events.emit(|| CacheEvent::Demoted { key, to });
                            } else {
                                inner.slots[tier].stats.add(DROPPED, 1);
                                // Lost, unless it was written or removed again meanwhile.
                                if still_pending && !held_below(&inner.eager, demoted.value.len()) {
                                    let cause = RemovalCause::Capacity;
                                    inner.events.emit(|| CacheEvent::Removed { key, cause });
                                }
                            }
                        }
                    }
                }
            }
        });
        *inner.worker.lock() = Some(worker);
        if let Some(every) = self.sweep_interval.filter(|d| !d.is_zero()) {
            let weak = Arc::downgrade(&inner);
            let sweeper = handle.spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(inner) = weak.upgrade() else { break };
                    TieredCache { inner }.sweep().await;
                }
            });
            *inner.sweeper.lock() = Some(sweeper);
        }
        Ok(TieredCache { inner })
    }
}

/// What storing in and reading from a tier costs, for placement and the monthly estimate.
/// The presets are list prices at the time of writing, to be overridden with your own.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CostModel {
    /// Storage, in US dollars per GB-month.
    pub usd_per_gb_month: f64,
    /// Requests, in US dollars per million.
    pub usd_per_million_requests: f64,
    /// A typical request's latency.
    pub typical_latency: Duration,
}

impl CostModel {
    /// A local SSD: about $0.08 per GB-month, requests free, ~50 µs.
    pub fn local_disk() -> Self {
        CostModel {
            usd_per_gb_month: 0.08,
            usd_per_million_requests: 0.0,
            typical_latency: Duration::from_micros(50),
        }
    }
    /// Managed Redis memory: about $10 per GB-month, requests free, ~0.5 ms.
    pub fn redis() -> Self {
        CostModel {
            usd_per_gb_month: 10.0,
            usd_per_million_requests: 0.0,
            typical_latency: Duration::from_micros(500),
        }
    }
    /// S3 Standard: $0.023 per GB-month, $0.40 per million GETs, ~20 ms.
    pub fn s3_standard() -> Self {
        CostModel {
            usd_per_gb_month: 0.023,
            usd_per_million_requests: 0.4,
            typical_latency: Duration::from_millis(20),
        }
    }
}

/// The estimated monthly cost of one tier's current contents and request rate.
#[derive(Debug, Clone, PartialEq)]
pub struct TierCost {
    /// The tier's name.
    pub name: String,
    /// What it holds, if it could tell.
    pub usage: Option<omnicache_core::TierUsage>,
    /// Storage cost of the current contents for a month.
    pub storage_usd_month: f64,
    /// Request cost if the request rate seen so far lasts a month.
    pub requests_usd_month: f64,
    /// The cost model used.
    pub model: CostModel,
}

/// The estimated monthly cost of a tiered cache; see [`TieredCache::cost_report`].
#[derive(Debug, Clone, PartialEq)]
pub struct CostReport {
    /// Per tier, in order.
    pub tiers: Vec<TierCost>,
    /// The sum.
    pub total_usd_month: f64,
}

/// Settings of one tier; see [`TieredCacheBuilder::tier_with`].
#[derive(Debug, Clone, Copy)]
pub struct TierSettings {
    /// The longest this tier keeps an entry. Default: as long as the entry's TTL.
    pub ttl_cap: Option<Duration>,
    /// Each call's time limit. Default: 1 s.
    pub timeout: Duration,
    /// Consecutive failures that open the breaker. Default: 5.
    pub breaker_threshold: u32,
    /// How long the breaker stays open before a trial call. Default: 60 s.
    pub breaker_cooldown: Duration,
    /// Values larger than this skip the tier. Default: no limit.
    pub max_value_bytes: Option<usize>,
    /// The tier's cost model. Default: free.
    pub cost: CostModel,
}

impl Default for TierSettings {
    fn default() -> Self {
        TierSettings {
            ttl_cap: None,
            timeout: Duration::from_secs(1),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(60),
            max_value_bytes: None,
            cost: CostModel::default(),
        }
    }
}

impl Inner {
    /// The metadata of a value written now.
    fn meta(
        &self,
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
            version: self.version.fetch_add(1, Ordering::Relaxed) + 1,
            weight: u32::try_from(len).unwrap_or(u32::MAX),
        }
    }

    fn fits_l1(&self, len: usize) -> bool {
        self.l1_max_value_bytes.is_none_or(|m| len <= m)
    }

    fn fits(&self, i: usize, len: usize) -> bool {
        self.slots[i].max_value_bytes.is_none_or(|m| len <= m)
    }

    /// The tier with the cheapest storage that accepts a value of `len` bytes.
    fn cheapest_tier(&self, len: usize) -> Option<usize> {
        (0..self.slots.len()).filter(|&i| self.fits(i, len)).min_by(|&a, &b| {
            self.slots[a].cost.usd_per_gb_month.total_cmp(&self.slots[b].cost.usd_per_gb_month)
        })
    }

    fn remaining(&self, meta: &EntryMeta, now: Timestamp) -> Option<Duration> {
        meta.remaining(now).map(Duration::from_nanos)
    }

    /// Runs `call` on tier `i` behind its breaker and timeout; `None` when skipped or failed.
    async fn call<T, F>(&self, i: usize, call: F) -> Option<Result<T>>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let slot = &self.slots[i];
        if !slot.breaker.allow() {
            slot.stats.add(SKIPPED, 1);
            return None;
        }
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(slot.timeout, call).await {
            Ok(r) => r,
            Err(_) => {
                Err(Error::new(ErrorKind::Timeout, format!("tier {} timed out", slot.tier.name())))
            }
        };
        slot.stats.add(LATENCY, u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        slot.stats.add(CALLS, 1);
        match &result {
            Ok(_) => slot.breaker.success(),
            // Corruption is the entry's fault, not the tier's.
            Err(e) if e.kind() == ErrorKind::Corrupt => slot.breaker.success(),
            Err(_) => {
                slot.stats.add(ERRORS, 1);
                slot.breaker.failure();
            }
        }
        Some(result)
    }

    fn tier_entry(&self, i: usize, entry: TierEntry, now: Timestamp) -> TierEntry {
        let mut entry = entry;
        if let Some(cap) = self.slots[i].ttl_cap {
            let capped = now.saturating_add(cap);
            entry.meta.expires = Some(entry.meta.expires.map_or(capped, |e| e.min(capped)));
        }
        entry
    }

    /// Writes to tier `i`; true on success.
    async fn put_to(&self, i: usize, key: &[u8], entry: TierEntry) -> bool {
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
            queue_capacity: 10_000,
            l1_max_value_bytes: None,
            sweep_interval: Some(Duration::from_secs(60)),
            l1_policy: None,
            listeners: Vec::new(),
        }
    }

    /// The entry for `key`, from the fastest tier that has it; `None` on a miss anywhere, or
    /// when every tier that might have it is failing.
    pub async fn get(&self, key: &[u8]) -> Option<Arc<Entry>> {
        let inner = &self.inner;
        if let Some(e) = inner.l1.get(key) {
            return Some(e);
        }
        let pending = inner.pending.lock().get(key).cloned();
        if let Some(e) = pending.filter(|e| !e.meta.is_expired(inner.clock.now())) {
            return Some(e);
        }
        for i in 0..inner.slots.len() {
            let tier = inner.slots[i].tier.clone();
            match inner.call(i, tier.get(key)).await {
                Some(Ok(Some(found))) => {
                    let now = inner.clock.now();
                    if found.meta.is_expired(now) {
                        inner.slots[i].stats.add(MISSES, 1);
                        continue;
                    }
                    inner.slots[i].stats.add(HITS, 1);
                    inner.slots[i].stats.add(PROMOTIONS, 1);
                    let entry =
                        Arc::new(Entry { value: found.value.clone(), meta: found.meta.clone() });
                    // Promote: into L1, and into the tiers above that write eagerly, where the
                    // value fits.
                    if inner.fits_l1(entry.value.len()) {
                        match inner.remaining(&entry.meta, now) {
                            Some(left) => {
                                inner.l1.insert_with_ttl(key.to_vec(), entry.clone(), left)
                            }
                            None => inner.l1.insert(key.to_vec(), entry.clone()),
                        }
                    }
                    for j in 0..i {
                        if inner.slots[j].write != WritePolicy::OnEvict
                            && inner.fits(j, entry.value.len())
                        {
                            inner.put_to(j, key, found.clone()).await;
                        }
                    }
                    inner.events.emit(|| CacheEvent::Promoted {
                        key: key.to_vec(),
                        from: tier.name().to_string(),
                    });
                    return Some(entry);
                }
                Some(Ok(None)) => inner.slots[i].stats.add(MISSES, 1),
                Some(Err(e)) if e.kind() == ErrorKind::Corrupt => {
                    inner.slots[i].stats.add(CORRUPT, 1);
                    inner.slots[i].stats.removed(RemovalCause::Corrupt, 1);
                    // The tier normally deletes what it finds corrupt; make sure.
                    let _ = inner.call(i, tier.remove(key)).await;
                    let cause = RemovalCause::Corrupt;
                    inner.events.emit(|| CacheEvent::Removed { key: key.to_vec(), cause });
                }
                _ => {}
            }
        }
        inner.misses.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Stores `value` under `key` in L1 and in every tier by its write policy. Tier failures are
    /// counted, not returned; the only errors are for input no tier could store (an empty key).
    ///
    /// Placement: a value larger than a tier's `max_value_bytes` skips that tier, and one larger
    /// than `l1_max_value_bytes` skips L1; a [`PutOptions::cold`] entry goes only to the tier
    /// with the cheapest storage (by its [`CostModel`]), not to L1.
    pub async fn put(&self, key: &[u8], value: Vec<u8>, options: PutOptions) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid_input("a cache key must not be empty"));
        }
        let inner = &self.inner;
        let now = inner.clock.now();
        let ttl = options.ttl.or(inner.default_ttl);
        let meta = inner.meta(now, ttl, value.len(), options.tags, options.subject);
        self.store(key, Arc::new(Entry { value, meta }), options.cold, now).await;
        Ok(())
    }

    /// Places `entry` (metadata already set) in L1 and the tiers, as [`TieredCache::put`] does.
    async fn store(&self, key: &[u8], entry: Arc<Entry>, cold: bool, now: Timestamp) {
        let inner = &self.inner;
        inner.pending.lock().remove(key);
        let weight = entry.meta.weight;
        inner.events.emit(|| CacheEvent::Inserted { key: key.to_vec(), weight });
        if inner.fits_l1(entry.value.len()) && !cold {
            match inner.remaining(&entry.meta, now) {
                Some(t) => inner.l1.insert_with_ttl(key.to_vec(), entry.clone(), t),
                None => inner.l1.insert(key.to_vec(), entry.clone()),
            }
        } else {
            inner.l1.invalidate(key);
        }
        let cheapest = inner.cheapest_tier(entry.value.len());
        let tier_entry = TierEntry { value: entry.value.clone(), meta: entry.meta.clone() };
        for i in 0..inner.slots.len() {
            if !inner.fits(i, entry.value.len()) || (cold && Some(i) != cheapest) {
                continue;
            }
            let policy = if cold { WritePolicy::Through } else { inner.slots[i].write };
            match policy {
                WritePolicy::Through => {
                    inner.put_to(i, key, tier_entry.clone()).await;
                }
                WritePolicy::Behind => {
                    let job = Job::Put {
                        tier: i,
                        key: key.to_vec(),
                        entry: tier_entry.clone(),
                        demotion: None,
                    };
                    let sender = inner.queue.lock().clone();
                    match sender {
                        Some(tx) => {
                            if let Err(mpsc::error::TrySendError::Full(Job::Put {
                                key,
                                entry,
                                ..
                            })) = tx.try_send(job)
                            {
                                // Queue full: write inline rather than lose the write.
                                inner.put_to(i, &key, entry).await;
                            }
                        }
                        None => {
                            inner.put_to(i, key, tier_entry.clone()).await;
                        }
                    }
                }
                WritePolicy::OnEvict => {}
            }
        }
    }

    /// Stores several entries: L1 each, and each tier in one batch by its write policy (one
    /// transaction for the disk tier). Used by warming and import.
    pub async fn put_many(&self, items: Vec<(Vec<u8>, Vec<u8>, PutOptions)>) -> Result<()> {
        if items.iter().any(|(k, _, _)| k.is_empty()) {
            return Err(Error::invalid_input("a cache key must not be empty"));
        }
        let inner = &self.inner;
        let now = inner.clock.now();
        let mut batch = Vec::with_capacity(items.len());
        for (key, value, options) in items {
            let ttl = options.ttl.or(inner.default_ttl);
            let meta = inner.meta(now, ttl, value.len(), options.tags, options.subject);
            inner.pending.lock().remove(&key);
            let entry = Arc::new(Entry { value, meta });
            let weight = entry.meta.weight;
            inner.events.emit(|| CacheEvent::Inserted { key: key.clone(), weight });
            match ttl {
                Some(t) => inner.l1.insert_with_ttl(key.clone(), entry.clone(), t),
                None => inner.l1.insert(key.clone(), entry.clone()),
            }
            batch.push((key, TierEntry { value: entry.value.clone(), meta: entry.meta.clone() }));
        }
        for i in 0..inner.slots.len() {
            match inner.slots[i].write {
                WritePolicy::Through | WritePolicy::Behind => {
                    let capped: Vec<_> = batch
                        .iter()
                        .map(|(k, e)| (k.clone(), inner.tier_entry(i, e.clone(), now)))
                        .collect();
                    let n = capped.len() as u64;
                    let tier = inner.slots[i].tier.clone();
                    if let Some(Ok(())) = inner.call(i, tier.put_many(capped)).await {
                        inner.slots[i].stats.add(WRITES, n);
                    }
                }
                WritePolicy::OnEvict => {}
            }
        }
        Ok(())
    }

    /// Removes `key` from L1 and every tier; true if any had it.
    pub async fn remove(&self, key: &[u8]) -> bool {
        self.remove_for(key, RemovalCause::Explicit).await
    }

    async fn remove_for(&self, key: &[u8], cause: RemovalCause) -> bool {
        let inner = &self.inner;
        let mut found = inner.l1.remove(key).is_some();
        found |= inner.pending.lock().remove(key).is_some();
        for i in 0..inner.slots.len() {
            let tier = inner.slots[i].tier.clone();
            if let Some(Ok(true)) = inner.call(i, tier.remove(key)).await {
                inner.slots[i].stats.removed(cause, 1);
                found = true;
            }
        }
        if found {
            inner.events.emit(|| CacheEvent::Removed { key: key.to_vec(), cause });
        }
        found
    }

    /// Removes every entry `what` covers from L1 and every tier; returns how many the tiers
    /// reported (L1's copies included in none of them are not counted twice).
    pub async fn invalidate(&self, what: &Invalidation) -> u64 {
        let inner = &self.inner;
        let before = inner.l1.entry_count();
        let listening = !inner.events.0.is_empty();
        let keys = Mutex::new(Vec::new());
        inner.l1.invalidate_if(|k, v| {
            let hit = what.matches(k, &v.meta);
            if hit && listening {
                keys.lock().push(k.clone());
            }
            hit
        });
        inner.pending.lock().retain(|k, v| {
            let hit = what.matches(k, &v.meta);
            if hit && listening {
                keys.lock().push(k.clone());
            }
            !hit
        });
        for key in keys.into_inner() {
            let cause = RemovalCause::Invalidated;
            inner.events.emit(|| CacheEvent::Removed { key, cause });
        }
        let l1_removed = before.saturating_sub(inner.l1.entry_count());
        let mut most = l1_removed;
        for i in 0..inner.slots.len() {
            let tier = inner.slots[i].tier.clone();
            if let Some(Ok(n)) = inner.call(i, tier.invalidate(what)).await {
                inner.slots[i].stats.removed(RemovalCause::Invalidated, n);
                most = most.max(n);
            }
        }
        most
    }

    /// Counts a complaint about `key` (a caller found its value bad). After the configured
    /// number of complaints the entry is invalidated everywhere; returns whether it was.
    pub async fn report_failure(&self, key: &[u8]) -> bool {
        let reached = {
            let mut f = self.inner.failures.lock();
            let n = f.entry(key.to_vec()).or_insert(0);
            *n += 1;
            if *n >= self.inner.failure_threshold {
                f.remove(key);
                true
            } else {
                false
            }
        };
        if reached {
            self.remove_for(key, RemovalCause::Health).await;
        }
        reached
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

    /// The estimated monthly cost of what every tier holds now, and of its requests if the rate
    /// seen since the cache started lasts a month.
    pub async fn cost_report(&self) -> CostReport {
        const MONTH_NANOS: f64 = 30.0 * 24.0 * 3600.0 * 1e9;
        let inner = &self.inner;
        let elapsed = inner.clock.now().saturating_sub(inner.started).max(1_000_000_000) as f64;
        let mut tiers = Vec::new();
        for i in 0..inner.slots.len() {
            let slot = &inner.slots[i];
            let tier = slot.tier.clone();
            let usage = match inner.call(i, tier.usage()).await {
                Some(Ok(u)) => u,
                _ => None,
            };
            let storage = usage.map_or(0.0, |u| u.bytes as f64 / 1e9 * slot.cost.usd_per_gb_month);
            let calls = slot.stats.snapshot().calls as f64;
            let requests =
                calls * (MONTH_NANOS / elapsed) / 1e6 * slot.cost.usd_per_million_requests;
            tiers.push(TierCost {
                name: tier.name().to_string(),
                usage,
                storage_usd_month: storage,
                requests_usd_month: requests,
                model: slot.cost,
            });
        }
        let total_usd_month =
            tiers.iter().map(|t| t.storage_usd_month + t.requests_usd_month).sum();
        CostReport { tiers, total_usd_month }
    }

    /// The state of every tier, in order.
    pub fn tiers(&self) -> Vec<TierStatus> {
        self.inner
            .slots
            .iter()
            .map(|s| TierStatus {
                name: s.tier.name().to_string(),
                health: s.tier.health(),
                breaker: s.breaker.state(),
                stats: s.stats.snapshot(),
            })
            .collect()
    }

    /// Lookups, hits and removals across the whole cache: L1's counters, with `misses` counting
    /// lookups that no tier answered (an L1 miss served by a tier is a promotion, not a miss).
    pub fn stats(&self) -> StatsSnapshot {
        let inner = &self.inner;
        let mut s = inner.l1.stats().unwrap_or_default();
        let l1_misses = s.misses;
        s.misses = inner.misses.load(Ordering::Relaxed).min(l1_misses);
        s.promotions = l1_misses - s.misses;
        s.hits += s.promotions;
        s.demotions = inner.slots.iter().map(|t| t.stats.snapshot().demotions).sum();
        s
    }

    /// The name of L1's eviction policy.
    pub fn l1_policy_name(&self) -> String {
        self.inner.l1.policy_name()
    }

    /// Switches L1's eviction policy on the live cache; every entry is kept.
    pub fn set_l1_policy(&self, factory: Arc<dyn PolicyFactory>) {
        self.inner.l1.set_policy_arc(factory);
    }

    /// L1's weighted size: entries, or value bytes when bounded by
    /// [`TieredCacheBuilder::l1_max_bytes`].
    pub fn l1_weighted_size(&self) -> u64 {
        self.inner.l1.weighted_size()
    }

    /// Entries in L1.
    pub fn l1_entry_count(&self) -> u64 {
        self.inner.l1.entry_count()
    }

    /// Keys in L1 under `prefix`.
    pub fn l1_keys(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        self.inner.l1.iter().map(|(k, _)| k).filter(|k| k.starts_with(prefix)).collect()
    }

    /// Keys under `prefix` in every tier that answers (failing tiers are skipped).
    pub async fn tier_keys(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        let inner = &self.inner;
        let mut keys = Vec::new();
        for i in 0..inner.slots.len() {
            let tier = inner.slots[i].tier.clone();
            let mut cursor: Option<Vec<u8>> = None;
            loop {
                let page = match inner.call(i, tier.scan(prefix, cursor.as_deref(), 1_000)).await {
                    Some(Ok(p)) => p,
                    _ => break,
                };
                keys.extend(page.keys);
                match page.next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        keys
    }

    /// Now, by the cache's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Drops `key` from L1 only (for tests and for memory pressure), leaving the tiers.
    pub fn evict_from_l1(&self, key: &[u8]) {
        self.inner.l1.invalidate(key);
    }
}

/// A tiered cache is itself a [`Tier`], so anything written against core's traits (the HTTP
/// response cache, a cache stacked under another) can store in it. Writes keep the caller's
/// metadata (creation time, expiry, tags, subject, version); reads never fail, as with
/// [`TieredCache::get`].
impl Tier for TieredCache {
    fn name(&self) -> &str {
        "tiered"
    }

    async fn get(&self, key: &[u8]) -> Result<Option<TierEntry>> {
        Ok(TieredCache::get(self, key)
            .await
            .map(|e| TierEntry { value: e.value.clone(), meta: e.meta.clone() }))
    }

    async fn put(&self, key: &[u8], entry: TierEntry) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid_input("a cache key must not be empty"));
        }
        let now = self.inner.clock.now();
        let TierEntry { value, meta } = entry;
        self.store(key, Arc::new(Entry { value, meta }), false, now).await;
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
