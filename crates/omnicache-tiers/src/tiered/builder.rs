//! Building a tiered cache: its settings, L1 with the demotion listener, and the background
//! writer that runs write-behind, purge and demotion jobs in the order they were queued.

use super::observe::{L1Stats, Sampling};
use super::order::Order;
use super::prefetch::{Prefetch, PrefetchLimits};
use super::stats::AtomicTierStats;
use super::transform::Transforms;
use super::{
    held_below, Complaints, Entry, Inner, Job, Listeners, Slot, TierSettings, TieredCache,
    WritePolicy,
};
use crate::breaker::Breaker;
use crate::memory::sync::Cache;
use omnicache_core::clock::duration_nanos;
use omnicache_core::{
    AdmissionPolicy, AtomicStats, CacheEvent, DynTier, Error, EventListener, PolicyFactory,
    PrefetchAdvisor, RemovalCause, Result, SharedClock, StatsRecorder, Transform, WriteGuard,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// One tier as configured in a [`TieredCacheBuilder`].
#[derive(Clone)]
pub(super) struct TierSpec {
    tier: Arc<dyn DynTier>,
    write: WritePolicy,
    settings: TierSettings,
}

/// Builds a [`TieredCache`].
#[must_use]
pub struct TieredCacheBuilder {
    pub(super) l1_capacity: u64,
    pub(super) l1_max_bytes: Option<u64>,
    pub(super) default_ttl: Option<Duration>,
    pub(super) clock: SharedClock,
    pub(super) tiers: Vec<TierSpec>,
    pub(super) failure_threshold: u32,
    pub(super) failure_window: Duration,
    pub(super) max_complaint_keys: usize,
    pub(super) queue_capacity: usize,
    pub(super) l1_max_value_bytes: Option<usize>,
    pub(super) sweep_interval: Option<Duration>,
    pub(super) l1_policy: Option<Arc<dyn PolicyFactory>>,
    pub(super) listeners: Vec<Arc<dyn EventListener>>,
    pub(super) transforms: Vec<Arc<dyn Transform>>,
    pub(super) on_demand: Option<Arc<dyn Transform>>,
    pub(super) journal: Option<std::path::PathBuf>,
    pub(super) subject_retention: Option<Duration>,
    pub(super) guard: Option<Arc<dyn WriteGuard>>,
    pub(super) recorder: Option<Arc<dyn StatsRecorder>>,
    pub(super) sample_every: u32,
    pub(super) prefetch: Option<(Arc<dyn PrefetchAdvisor>, PrefetchLimits)>,
    pub(super) l1_admission: Option<Arc<dyn AdmissionPolicy>>,
    pub(super) refresh_after: Option<Duration>,
    pub(super) stale_if_error: Option<Duration>,
}

impl fmt::Debug for TieredCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredCacheBuilder")
            .field("l1_capacity", &self.l1_capacity)
            .field("tiers", &self.tiers.len())
            .field("listeners", &self.listeners.len())
            .field("transforms", &self.transforms)
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

    /// How long complaints about a key keep counting: a complaint after the window of the
    /// first one starts the count over. Default: 60 s.
    pub fn failure_window(mut self, window: Duration) -> Self {
        self.failure_window = window;
        self
    }

    /// The most keys whose complaints are tracked at once; beyond it, complaints whose window
    /// passed go first, then the oldest. Default: 10,000.
    pub fn max_complaint_keys(mut self, n: usize) -> Self {
        self.max_complaint_keys = n.max(1);
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

    /// Refresh-ahead for [`get_with`](TieredCache::get_with) and
    /// [`try_get_with`](TieredCache::try_get_with), as Caffeine's `refreshAfterWrite`: the
    /// first such read of an entry written more than `age` ago returns it at once and reloads
    /// it once in the background with that read's loader; a failed reload keeps the old value
    /// (counted in [`TieredCache::read_through_stats`]). Plain `get` never reloads. Default:
    /// off.
    pub fn refresh_after_write(mut self, age: Duration) -> Self {
        self.refresh_after = Some(age);
        self
    }

    /// Stale-on-error for `get_with` and `try_get_with`: an entry that expired less than
    /// `grace` ago is served when the loader fails (and only then; every other read treats it
    /// as expired). Expired entries are kept that much longer in L1 for it; the tiers drop
    /// them at expiry. Default: off.
    pub fn stale_if_error(mut self, grace: Duration) -> Self {
        self.stale_if_error = Some(grace);
        self
    }

    /// L1's admission policy: each new key arriving in a full L1 is weighed against the entries
    /// L1 would evict for it (see the memory cache's `admission`). A refused entry is treated
    /// like an L1 eviction: demoted, or held by the tiers it was written to. Default: none.
    pub fn l1_admission(mut self, admission: Arc<dyn AdmissionPolicy>) -> Self {
        self.l1_admission = Some(admission);
        self
    }

    /// Adds a listener for what happens to the cache's entries. It is called synchronously on
    /// the thread that caused the event (a caller, or the background writer for demotions),
    /// outside every lock, so keep it quick: hand slow work to a channel. Events describe the
    /// cache as a whole:
    /// - [`CacheEvent::Inserted`] for every key written by `put`, `put_many` or as a [`Tier`](omnicache_core::Tier);
    /// - [`CacheEvent::Removed`] when an entry leaves the cache: `Explicit` (`remove`), `Health`
    ///   (complaints reached the threshold), `Invalidated` (for each key L1 held; the tiers
    ///   report counts, not keys), `Expired` (L1 found it expired), `Corrupt` (a tier returned
    ///   it corrupt), and `Capacity` when L1 evicts an entry that no lower tier was given (none
    ///   written eagerly takes its size, and its demotion failed, was dropped or there is no
    ///   demotion tier);
    /// - [`CacheEvent::Promoted`] when a tier's hit is copied into L1, naming the tier;
    /// - [`CacheEvent::Demoted`] when an L1 eviction was written to the demotion tier;
    /// - [`CacheEvent::Invalidated`] once per invalidation, with what it covered, how many
    ///   entries went, and its [`Origin`](omnicache_core::Origin);
    /// - [`CacheEvent::TierHealthChanged`] when a tier starts failing, its breaker opens, or it
    ///   answers again;
    /// - [`CacheEvent::Accessed`] for lookups of sampled keys, when
    ///   [`access_sampling`](Self::access_sampling) is on.
    ///
    /// Default: none; without listeners no event is built.
    pub fn event_listener(mut self, listener: Arc<dyn EventListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Records the whole cache's statistics into `recorder` as well (for example a Prometheus
    /// exporter): a lookup is one hit (in L1 or a tier, a tier's hit also a promotion) or one
    /// miss (no layer had it); removals and loads are L1's; demotions and each tier call's
    /// latency come from the tiers. [`TieredCache::stats`] keeps its own counts either way.
    /// Default: none.
    pub fn stats_recorder(mut self, recorder: Arc<dyn StatsRecorder>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Samples lookups for listeners: the lookups of one key in `every` (by a hash of the key,
    /// the same in every process) become [`CacheEvent::Accessed`] events; 0 turns sampling off.
    /// Collectors of access patterns (heavy hitters, prefetch models) see the whole history of
    /// the keys they see, at a 1/`every` share of the cost. Default: off.
    pub fn access_sampling(mut self, every: u32) -> Self {
        self.sample_every = every;
        self
    }

    /// Fetches ahead: after each lookup, `advisor` names keys likely to be asked for next, and
    /// those a lower tier holds are copied into L1 in the background (never through a loader),
    /// within `limits`. The advisor hears whether each fetched entry was read before it left
    /// L1 ([`PrefetchAdvisor::outcome`]); [`TieredCache::prefetch_stats`] counts the same.
    /// Default: no advisor, and no cost.
    pub fn prefetch(mut self, advisor: Arc<dyn PrefetchAdvisor>, limits: PrefetchLimits) -> Self {
        self.prefetch = Some((advisor, limits));
        self
    }

    /// Adds a transform (compression, encryption) on top of the previous ones. Values are
    /// transformed on their way to the tiers, in the order the transforms were added, and
    /// restored in reverse order when read back; L1 holds them as written. Each entry records
    /// the transforms applied to it ([`Encoding`](omnicache_core::Encoding)'s flags and key id),
    /// so entries written before a transform was added stay readable, and an entry needing a
    /// transform the cache no longer has is treated as corrupt (a miss, deleted from its tier).
    /// A transform that fails on a write keeps the value out of the tiers (L1 still holds it;
    /// counted by [`TieredCache::transform_errors`]). Each transform must set its own one of the
    /// envelope's flag bits, or [`build`](Self::build) fails. Default: none.
    pub fn transform(mut self, transform: Arc<dyn Transform>) -> Self {
        self.transforms.push(transform);
        self
    }

    /// A transform applied, on top of the others, only to entries tagged
    /// [`ENCRYPT_TAG`](omnicache_core::ENCRYPT_TAG) (which a [`write_guard`](Self::write_guard)
    /// adds when its policy says a value must be encrypted), so a cache that does not encrypt
    /// by default still never stores those in the clear below memory. Not applied when a
    /// transform of the stack already sets its flag. Default: none.
    pub fn encrypt_on_demand(mut self, transform: Arc<dyn Transform>) -> Self {
        self.on_demand = Some(transform);
        self
    }

    /// Looks at every value before it is stored ([`WriteGuard`]): refused values fail the
    /// `put` with [`ErrorKind::Rejected`](omnicache_core::ErrorKind::Rejected) and are stored
    /// nowhere; a guard may replace a value (redaction), add tags, or ask for encryption below
    /// memory ([`encrypt_on_demand`](Self::encrypt_on_demand)). Loaded values pass the guard
    /// too; a refused one is returned to its caller but not cached. Default: none.
    pub fn write_guard(mut self, guard: Arc<dyn WriteGuard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// The longest an entry written with a data subject ([`PutOptions::subject`](super::PutOptions::subject)) lives, in
    /// memory and every tier, whatever TTL its writer asked for: personal data is kept no
    /// longer than its purpose needs (GDPR's storage limitation). Default: no cap.
    pub fn subject_retention(mut self, cap: Duration) -> Self {
        self.subject_retention = Some(cap);
        self
    }

    /// A file where the cache keeps the invalidations and erasures a tier missed while it was
    /// down, so that after a restart it still serves nothing they cover from that tier and
    /// applies them once the tier is back. Without one they are kept in memory only. The file
    /// is written owner-only (an erasure names its data subject) and shrinks as tiers take
    /// them. Default: none.
    pub fn journal(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    /// Builds the cache and starts its background writer on the current Tokio runtime.
    pub fn build(self) -> Result<TieredCache> {
        let missed = super::missed::Missed::open(self.journal)?;
        let transforms = Transforms::new(self.transforms, self.on_demand)?;
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
        let prefetch = self.prefetch.map(|(a, limits)| Arc::new(Prefetch::new(a, limits)));
        let l1_prefetch = prefetch.clone();
        let order = Arc::new(Order::new(&self.clock));
        let l1_order = order.clone();
        let mut l1 = Cache::builder()
            .max_capacity(self.l1_max_bytes.unwrap_or(self.l1_capacity))
            .clock(self.clock.clone())
            .eviction_listener(move |key: Vec<u8>, e: Arc<Entry>, cause| {
                if let Some(p) = &l1_prefetch {
                    p.left(&key);
                }
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
                // A demotion writes the evicted version only if nothing newer happened to the
                // key meanwhile (a write, a delete, an invalidation).
                let ticket =
                    demote_to.and_then(|t| Some((t, l1_order.begin_existing(&key, &e.meta)?)));
                if let Some((tier, ticket)) = ticket {
                    if let Some(tx) = demote_queue.lock().as_ref() {
                        demote_pending.lock().insert(key.clone(), e.clone());
                        let job = Job::Demote { tier, ticket: ticket.clone(), entry: e };
                        queued = match tx.try_send(job) {
                            Ok(()) => true,
                            Err(_) => {
                                // Queue full: the entry is dropped like a plain eviction.
                                demote_pending.lock().remove(&key);
                                l1_order.end(&ticket);
                                false
                            }
                        };
                    } else {
                        l1_order.end(&ticket);
                    }
                }
                if !queued && !held_below {
                    l1_events.emit(|| CacheEvent::Removed { key, cause });
                }
            });
        l1 = match &self.recorder {
            None => l1.stats(true),
            Some(caller) => {
                let own = AtomicStats::default();
                l1.stats_recorder(Arc::new(L1Stats { own, caller: caller.clone() }))
            }
        };
        if let Some(admission) = self.l1_admission {
            l1 = l1.admission(admission);
        }
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
                reach: Mutex::default(),
            })
            .collect();
        let inner = Arc::new(Inner {
            l1: l1.build(),
            slots,
            clock,
            default_ttl: self.default_ttl,
            complaints: Complaints::new(
                self.failure_threshold,
                duration_nanos(self.failure_window),
                self.max_complaint_keys,
            ),
            queue,
            pending,
            worker: Mutex::new(None),
            sweeper: Mutex::new(None),
            order,
            l1_max_value_bytes: self.l1_max_value_bytes,
            started: self.clock.now(),
            misses: AtomicU64::new(0),
            events,
            eager,
            transforms,
            guard: self.guard,
            missed,
            subject_retention: self.subject_retention,
            transform_errors: AtomicU64::new(0),
            recorder: self.recorder,
            sampling: Sampling::new(self.sample_every),
            prefetch,
            flights: super::load::Flights::new(Default::default()),
            loads: AtomicStats::default(),
            refresh_after: self.refresh_after.map(duration_nanos),
            stale_grace: self.stale_if_error.map_or(0, duration_nanos),
            read_through: Default::default(),
        });
        let weak = Arc::downgrade(&inner);
        let worker = handle.spawn(async move {
            let mut rx = rx;
            while let Some(job) = rx.recv().await {
                match job {
                    Job::Flush(done) => {
                        let _ = done.send(());
                    }
                    Job::Purge { tier, ticket } => {
                        let Some(inner) = weak.upgrade() else { break };
                        inner.purge(tier, &ticket).await;
                        inner.order.end(&ticket);
                    }
                    Job::Put { tier, ticket, entry } => {
                        let Some(inner) = weak.upgrade() else { break };
                        inner.put_gated(tier, &ticket, entry).await;
                        inner.order.end(&ticket);
                    }
                    Job::Demote { tier, ticket, entry } => {
                        let Some(inner) = weak.upgrade() else { break };
                        inner.demote(tier, &ticket, entry).await;
                        inner.order.end(&ticket);
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
