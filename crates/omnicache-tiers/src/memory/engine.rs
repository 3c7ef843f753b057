//! The sharded engine behind both cache flavours.

mod admission;
mod refresh;
mod removal;

use super::clock::EngineClock;
use super::prims::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, RwLock};
use super::{EvictionListener, Weigher};
use crossbeam_utils::CachePadded;
use hashbrown::HashTable;
use omnicache_core::clock::duration_nanos;
use omnicache_core::{
    AccessView, AdmissionPolicy, CacheEvent, EntryInfo, EventListener, EvictionPolicy,
    ExpiryPolicy, PolicyFactory, ReadTracking, RemovalCause, SharedClock, SlotId, StatsRecorder,
    Timestamp,
};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::num::NonZeroU32;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;
use std::time::Duration;

/// A caller's filter for bulk removal.
type Predicate<'a, K, V> = &'a dyn Fn(&K, &V) -> bool;

pub(crate) const NEVER: Timestamp = u64::MAX;
const READ_BUFFER: usize = 32;
const EMPTY_READ: u32 = u32::MAX;
/// Slots examined for expiry per write.
const SWEEP_PER_WRITE: usize = 4;
/// Slots examined for expiry when reads trigger maintenance.
const SWEEP_PER_READ_TASK: usize = 32;

pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    deadline: AtomicU64,
    weight: NonZeroU32,
    accesses: AtomicU8,
}

impl<K, V> Entry<K, V> {
    #[inline]
    fn deadline(&self) -> Timestamp {
        self.deadline.load(Relaxed)
    }

    #[inline]
    fn touch(&self) {
        let a = self.accesses.load(Relaxed);
        if a < 3 {
            self.accesses.store(a + 1, Relaxed);
        }
    }
}

pub(crate) struct ShardData<K, V> {
    table: HashTable<u32>,
    slots: Vec<Option<Entry<K, V>>>,
    free: Vec<u32>,
    /// Hard deadlines (TTL caps) per slot, kept only when time-to-idle is on.
    hard: Vec<Timestamp>,
    /// When each slot's value was written, kept only with `refresh_after_write`.
    written: Vec<Timestamp>,
    policy: Box<dyn EvictionPolicy>,
    weight: u64,
    max_weight: u64,
    len: usize,
    hand: usize,
}

impl<K, V> ShardData<K, V> {
    /// The slot holding `key`, whose hash is `hash`.
    #[inline]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.table
            .find(hash, |&i| match &self.slots[i as usize] {
                Some(e) => e.key.borrow() == key,
                None => false,
            })
            .copied()
    }
}

struct ReadBuffer {
    slots: [AtomicU32; READ_BUFFER],
    head: AtomicUsize,
}

impl ReadBuffer {
    fn new() -> Self {
        ReadBuffer {
            slots: std::array::from_fn(|_| AtomicU32::new(EMPTY_READ)),
            head: AtomicUsize::new(0),
        }
    }

    /// Records a read; true when the buffer just filled and should be drained.
    #[inline]
    fn record(&self, slot: SlotId) -> bool {
        let i = self.head.fetch_add(1, Relaxed);
        self.slots[i % READ_BUFFER].store(slot, Relaxed);
        i % READ_BUFFER == READ_BUFFER - 1
    }

    fn drain(&self, policy: &mut dyn EvictionPolicy) {
        for s in &self.slots {
            let slot = s.swap(EMPTY_READ, Relaxed);
            if slot != EMPTY_READ {
                policy.on_access(slot);
            }
        }
    }
}

struct Shard<K, V> {
    data: RwLock<ShardData<K, V>>,
    reads: ReadBuffer,
}

/// Entries removed under a lock, reported after it is released. Inline for the common case of
/// at most one, so a write that evicts one entry allocates nothing.
pub(crate) enum Removed<K, V> {
    None,
    One(K, V, RemovalCause, u64),
    Many(Vec<(K, V, RemovalCause, u64)>),
}

impl<K, V> Removed<K, V> {
    fn push(&mut self, k: K, v: V, cause: RemovalCause, weight: u64) {
        match std::mem::replace(self, Removed::None) {
            Removed::None => *self = Removed::One(k, v, cause, weight),
            Removed::One(a, b, c, d) => {
                *self = Removed::Many(vec![(a, b, c, d), (k, v, cause, weight)])
            }
            Removed::Many(mut all) => {
                all.push((k, v, cause, weight));
                *self = Removed::Many(all);
            }
        }
    }
}

/// What the engine was built with.
pub(crate) struct Config<K, V, S> {
    pub(crate) max_weight: u64,
    pub(crate) shards: usize,
    pub(crate) hasher: S,
    pub(crate) clock: SharedClock,
    pub(crate) ttl: Option<Duration>,
    pub(crate) tti: Option<Duration>,
    pub(crate) expiry: Option<Arc<dyn ExpiryPolicy<K, V>>>,
    pub(crate) weigher: Option<Weigher<K, V>>,
    pub(crate) listener: Option<EvictionListener<K, V>>,
    pub(crate) stats: Option<Arc<dyn StatsRecorder>>,
    pub(crate) policy: Arc<dyn PolicyFactory>,
    pub(crate) admission: Option<Arc<dyn AdmissionPolicy>>,
    pub(crate) events: Option<Events<K>>,
    pub(crate) refresh_after: Option<Duration>,
    pub(crate) stale_if_error: Option<Duration>,
}

/// How an event names a key: its bytes.
pub(crate) type KeyBytes<K> = Arc<dyn Fn(&K) -> Vec<u8> + Send + Sync>;

/// A listener of the memory cache's events, and how its keys become bytes.
pub(crate) struct Events<K> {
    pub(crate) listener: Arc<dyn EventListener>,
    pub(crate) key: KeyBytes<K>,
}

pub(crate) struct Engine<K, V, S> {
    shards: Box<[CachePadded<Shard<K, V>>]>,
    mask: u64,
    hasher: S,
    clock: EngineClock,
    ttl: u64,
    tti: u64,
    expiry: Option<Arc<dyn ExpiryPolicy<K, V>>>,
    expiry_on_read: bool,
    weigher: Option<Weigher<K, V>>,
    listener: Option<EvictionListener<K, V>>,
    stats: Option<Arc<dyn StatsRecorder>>,
    policy: parking_lot::Mutex<Arc<dyn PolicyFactory>>,
    /// Weighs new keys against the victims that would make room; `None` admits all, at no cost.
    admission: Option<Arc<dyn AdmissionPolicy>>,
    /// `refresh_after_write`, in nanoseconds; `NEVER` when off.
    refresh_after: Timestamp,
    /// `stale_if_error`: how long past its expiry an entry is kept, for a failing loader.
    grace: u64,
    /// What refresh-ahead and stale-on-error did.
    pub(crate) read_through: super::ReadThroughCounts,
    /// Hears writes and removals as [`CacheEvent`]s, with keys as bytes; `None`, no event built.
    events: Option<Events<K>>,
    ordered_reads: AtomicBool,
    /// Set once any entry has had a deadline; until then writes skip the expiry sweep.
    has_deadlines: AtomicBool,
    max_weight: u64,
}

impl<K, V, S> fmt::Debug for Engine<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("shards", &self.shards.len())
            .field("max_weight", &self.max_weight)
            .field("policy", &self.policy.lock().name())
            .finish_non_exhaustive()
    }
}

/// The engine's [`AccessView`] over one shard's slots.
struct View<'a, K, V, S> {
    slots: &'a [Option<Entry<K, V>>],
    hasher: &'a S,
}

impl<K: Hash, V, S: BuildHasher> AccessView for View<'_, K, V, S> {
    fn take_accesses(&mut self, slot: SlotId) -> u8 {
        match self.slots.get(slot as usize) {
            // Under the write lock; a plain load and store avoids a locked instruction, and a
            // read racing with it may be lost, which access counting tolerates.
            Some(Some(e)) => {
                let a = e.accesses.load(Relaxed);
                if a != 0 {
                    e.accesses.store(0, Relaxed);
                }
                a
            }
            _ => 0,
        }
    }
    fn hash(&mut self, slot: SlotId) -> u64 {
        match self.slots.get(slot as usize) {
            Some(Some(e)) => self.hasher.hash_one(&e.key),
            _ => 0,
        }
    }
}

fn add_nanos(now: Timestamp, d: Duration) -> Timestamp {
    now.saturating_add(duration_nanos(d))
}

impl<K, V, S> Engine<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Now, by the cache's clock (loads are timed with it too).
    #[inline]
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn new(cfg: Config<K, V, S>) -> Self {
        let n = cfg.shards.max(1).next_power_of_two();
        let base = cfg.max_weight / n as u64;
        let extra = cfg.max_weight % n as u64;
        let shards: Vec<_> = (0..n as u64)
            .map(|i| {
                let max_weight = base + u64::from(i < extra);
                CachePadded::new(Shard {
                    data: RwLock::new(ShardData {
                        table: HashTable::new(),
                        slots: Vec::new(),
                        free: Vec::new(),
                        hard: Vec::new(),
                        written: Vec::new(),
                        policy: cfg.policy.build(max_weight),
                        weight: 0,
                        max_weight,
                        len: 0,
                        hand: 0,
                    }),
                    reads: ReadBuffer::new(),
                })
            })
            .collect();
        let ordered = cfg.policy.build(1).read_tracking() == ReadTracking::Events;
        let expiry_on_read = cfg.expiry.as_ref().is_some_and(|e| e.refreshes_on_read());
        Engine {
            shards: shards.into_boxed_slice(),
            mask: n as u64 - 1,
            hasher: cfg.hasher,
            clock: EngineClock::new(cfg.clock),
            ttl: cfg.ttl.map_or(NEVER, duration_nanos),
            tti: cfg.tti.map_or(NEVER, duration_nanos),
            expiry: cfg.expiry,
            expiry_on_read,
            weigher: cfg.weigher,
            listener: cfg.listener,
            stats: cfg.stats,
            policy: parking_lot::Mutex::new(cfg.policy),
            admission: cfg.admission,
            refresh_after: cfg.refresh_after.map_or(NEVER, duration_nanos),
            grace: cfg.stale_if_error.map_or(0, duration_nanos),
            read_through: Default::default(),
            events: cfg.events,
            ordered_reads: AtomicBool::new(ordered),
            has_deadlines: AtomicBool::new(false),
            max_weight: cfg.max_weight,
        }
    }

    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K, V> {
        &self.shards[((hash >> 40) & self.mask) as usize]
    }

    pub(crate) fn max_weight(&self) -> u64 {
        self.max_weight
    }

    // ---- reads ----

    #[inline]
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key, true)
    }

    /// A second look after a miss that was already counted (a loader about to run checks that
    /// no other finished meanwhile): a hit counts, another miss does not.
    pub(crate) fn get_again<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key, false)
    }

    #[inline]
    fn lookup<Q>(&self, key: &Q, count_miss: bool) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.record_access(hash);
        let shard = self.shard(hash);
        let data = shard.data.read();
        let Some(idx) = data.find(hash, key) else {
            drop(data);
            if count_miss {
                self.record_miss();
            }
            return None;
        };
        let Some(e) = &data.slots[idx as usize] else {
            drop(data);
            if count_miss {
                self.record_miss();
            }
            return None;
        };
        let deadline = e.deadline();
        if deadline != NEVER {
            let now = self.clock.now();
            if now >= deadline {
                drop(data);
                if count_miss {
                    self.record_miss();
                }
                return None;
            }
            if self.tti != NEVER {
                let cap = data.hard.get(idx as usize).copied().unwrap_or(NEVER);
                e.deadline.store(now.saturating_add(self.tti).min(cap), Relaxed);
            }
            if self.expiry_on_read {
                self.refresh_on_read(e, now, deadline);
            }
        }
        e.touch();
        let value = e.value.clone();
        drop(data);
        if self.ordered_reads.load(Relaxed) && shard.reads.record(idx) {
            self.drain_if_free(shard);
        }
        if let Some(s) = &self.stats {
            s.record_hits(1);
        }
        self.read_maintenance(shard);
        Some(value)
    }

    fn refresh_on_read(&self, e: &Entry<K, V>, now: Timestamp, deadline: Timestamp) {
        if let Some(x) = &self.expiry {
            let current = Some(Duration::from_nanos(deadline - now));
            let next = x.expire_after_read(&e.key, &e.value, now, current);
            e.deadline.store(next.map_or(NEVER, |d| add_nanos(now, d)), Relaxed);
        }
    }

    #[inline]
    fn record_miss(&self) {
        if let Some(s) = &self.stats {
            s.record_misses(1);
        }
    }

    pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let data = self.shard(hash).data.read();
        match data.find(hash, key).and_then(|i| data.slots[i as usize].as_ref()) {
            Some(e) => {
                let d = e.deadline();
                d == NEVER || self.clock.now() < d
            }
            None => false,
        }
    }

    /// Every few hundred reads per thread, try to drain the read buffer and sweep a few slots.
    #[inline]
    fn read_maintenance(&self, shard: &Shard<K, V>) {
        #[cfg(not(loom))]
        {
            thread_local! {
                static READS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
            }
            let due = READS.with(|c| {
                let n = c.get().wrapping_add(1);
                c.set(n);
                n % 512 == 0
            });
            if due && (self.has_deadlines.load(Relaxed) || self.ordered_reads.load(Relaxed)) {
                if let Some(mut data) = shard.data.try_write() {
                    let mut removed = Removed::None;
                    shard.reads.drain(&mut *data.policy);
                    self.sweep(&mut data, SWEEP_PER_READ_TASK, &mut removed);
                    drop(data);
                    self.notify(removed);
                }
            }
        }
        #[cfg(loom)]
        let _ = shard;
    }

    fn drain_if_free(&self, shard: &Shard<K, V>) {
        if let Some(mut data) = shard.data.try_write() {
            shard.reads.drain(&mut *data.policy);
        }
    }

    // ---- writes ----

    /// Inserts or replaces. `ttl` overrides the cache's expiry rules for this entry.
    #[inline]
    pub(crate) fn insert(&self, key: K, value: V, ttl: Option<Duration>) {
        self.insert_unless(key, value, ttl, |_| false);
    }

    /// Inserts or replaces, unless a live value is present for which `keep` is true; returns
    /// whether `value` went in. The check and the write are one step under the shard's lock.
    pub(crate) fn insert_unless(
        &self,
        key: K,
        value: V,
        ttl: Option<Duration>,
        keep: impl FnOnce(&V) -> bool,
    ) -> bool {
        let hash = self.hash(&key);
        self.record_access(hash);
        let weight = self.weigher.as_ref().map_or(1, |w| w(&key, &value)).max(1);
        let event_key = self.events.as_ref().map(|e| (e.key)(&key));
        let weight = NonZeroU32::new(weight).unwrap_or(NonZeroU32::MIN);
        let timed = ttl.is_some()
            || self.refresh_after != NEVER
            || self.ttl != NEVER
            || self.tti != NEVER
            || self.expiry.is_some()
            || self.has_deadlines.load(Relaxed);
        let now = if timed { self.clock.now() } else { 0 };
        let shard = self.shard(hash);
        let mut removed = Removed::None;
        {
            let mut guard = shard.data.write();
            let data = &mut *guard;
            if self.ordered_reads.load(Relaxed) {
                shard.reads.drain(&mut *data.policy);
            }
            let (added, slot) = match data.find(hash, &key) {
                Some(idx) => {
                    if let Some(e) = data.slots[idx as usize].as_ref() {
                        let d = e.deadline();
                        if (d == NEVER || now < d) && keep(&e.value) {
                            return false;
                        }
                    }
                    self.replace(data, idx, key, value, weight, now, ttl, &mut removed);
                    (false, None)
                }
                None => (true, self.add(data, hash, key, value, weight, now, ttl, &mut removed)),
            };
            // `now` was read before the lock whenever any entry may have a deadline.
            match (&self.admission, slot) {
                (Some(a), Some(candidate)) if data.weight > data.max_weight => {
                    self.admit_or_evict(&**a, data, candidate, now, &mut removed);
                }
                _ => self.evict_to_budget(data, now, &mut removed),
            }
            // Writes that add an entry pay for reclaiming expired ones; replacements, which do
            // not grow the shard, keep the write lock short.
            if added && self.has_deadlines.load(Relaxed) {
                let now = if timed { now } else { self.clock.now() };
                self.sweep_at(data, SWEEP_PER_WRITE, now, &mut removed);
            }
        }
        if let (Some(e), Some(key)) = (&self.events, event_key) {
            e.listener.on_event(&CacheEvent::Inserted { key, weight: weight.get() });
        }
        self.notify(removed);
        true
    }

    /// The (soft, hard) deadlines of a new or updated entry.
    fn deadlines(
        &self,
        key: &K,
        value: &V,
        now: Timestamp,
        ttl: Option<Duration>,
        previous: Option<Timestamp>,
    ) -> (Timestamp, Timestamp) {
        let hard = if let Some(d) = ttl {
            add_nanos(now, d)
        } else if let Some(x) = &self.expiry {
            let life = match previous {
                None => x.expire_after_create(key, value, now),
                Some(p) => {
                    let current = (p != NEVER).then(|| Duration::from_nanos(p.saturating_sub(now)));
                    x.expire_after_update(key, value, now, current)
                }
            };
            life.map_or(NEVER, |d| add_nanos(now, d))
        } else {
            now.saturating_add(self.ttl)
        };
        let soft = if self.tti != NEVER { hard.min(now.saturating_add(self.tti)) } else { hard };
        (soft, hard)
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &self,
        data: &mut ShardData<K, V>,
        hash: u64,
        key: K,
        value: V,
        weight: NonZeroU32,
        now: Timestamp,
        ttl: Option<Duration>,
        removed: &mut Removed<K, V>,
    ) -> Option<u32> {
        let (soft, hard) = self.deadlines(&key, &value, now, ttl, None);
        let w = u64::from(weight.get());
        if soft != NEVER && soft <= now {
            removed.push(key, value, RemovalCause::Expired, w);
            return None;
        }
        if w > data.max_weight {
            removed.push(key, value, RemovalCause::Capacity, w);
            return None;
        }
        if soft != NEVER {
            self.has_deadlines.store(true, Relaxed);
        }
        let entry = Entry {
            key,
            value,
            deadline: AtomicU64::new(soft),
            weight,
            accesses: AtomicU8::new(0),
        };
        let idx = match data.free.pop() {
            Some(i) => {
                data.slots[i as usize] = Some(entry);
                i
            }
            None => {
                // Grow by doubling, but never past the most slots the budget allows (every entry
                // weighs at least 1, plus one in flight), so a full cache wastes no capacity.
                if data.slots.len() == data.slots.capacity() {
                    let bound =
                        usize::try_from(data.max_weight.saturating_add(1)).unwrap_or(usize::MAX);
                    let want = (data.slots.len() * 2).clamp(16, bound.max(16));
                    data.slots.reserve_exact(want.saturating_sub(data.slots.len()).max(1));
                }
                data.slots.push(Some(entry));
                (data.slots.len() - 1) as u32
            }
        };
        if self.tti != NEVER {
            if data.hard.len() <= idx as usize {
                data.hard.resize(idx as usize + 1, NEVER);
            }
            data.hard[idx as usize] = hard;
        }
        self.mark_written(data, idx, now);
        let slots = &data.slots;
        let hasher = &self.hasher;
        data.table.insert_unique(hash, idx, |&i| match &slots[i as usize] {
            Some(e) => hasher.hash_one(&e.key),
            None => 0,
        });
        data.len += 1;
        data.weight += w;
        data.policy.on_insert(
            idx,
            EntryInfo { hash, weight: w, expires: (soft != NEVER).then_some(soft) },
        );
        Some(idx)
    }

    #[allow(clippy::too_many_arguments)]
    fn replace(
        &self,
        data: &mut ShardData<K, V>,
        idx: u32,
        key: K,
        value: V,
        weight: NonZeroU32,
        now: Timestamp,
        ttl: Option<Duration>,
        removed: &mut Removed<K, V>,
    ) {
        let Some(e) = data.slots[idx as usize].as_ref() else { return };
        let previous = e.deadline();
        let was_expired = previous != NEVER && now >= previous;
        let (soft, hard) =
            self.deadlines(&key, &value, now, ttl, (!was_expired).then_some(previous));
        let new_w = u64::from(weight.get());
        let old_cause = if was_expired { RemovalCause::Expired } else { RemovalCause::Replaced };
        if (soft != NEVER && soft <= now) || new_w > data.max_weight {
            // The new value cannot stay: the old one leaves, the new one is reported too.
            let (k, v, w) = self.remove_slot(data, idx);
            data.policy.on_remove(idx);
            removed.push(k, v, old_cause, w);
            let cause = if new_w > data.max_weight {
                RemovalCause::Capacity
            } else {
                RemovalCause::Expired
            };
            removed.push(key, value, cause, new_w);
            return;
        }
        if soft != NEVER {
            self.has_deadlines.store(true, Relaxed);
        }
        let Some(e) = data.slots[idx as usize].as_mut() else { return };
        let old_key = std::mem::replace(&mut e.key, key);
        let old_value = std::mem::replace(&mut e.value, value);
        let old_w = u64::from(e.weight.get());
        e.weight = weight;
        e.deadline.store(soft, Relaxed);
        if self.tti != NEVER {
            data.hard[idx as usize] = hard;
        }
        self.mark_written(data, idx, now);
        data.weight = data.weight - old_w + new_w;
        let hash = self.hasher.hash_one(&old_key);
        data.policy.on_update(
            idx,
            EntryInfo { hash, weight: new_w, expires: (soft != NEVER).then_some(soft) },
        );
        removed.push(old_key, old_value, old_cause, old_w);
    }

    /// Replaces the eviction policy of every shard; the new one adopts every resident entry.
    pub(crate) fn set_policy(&self, factory: Arc<dyn PolicyFactory>) {
        let mut current = self.policy.lock();
        self.ordered_reads.store(factory.build(1).read_tracking() == ReadTracking::Events, Release);
        for shard in self.shards.iter() {
            let mut guard = shard.data.write();
            let data = &mut *guard;
            shard.reads.drain(&mut *data.policy);
            let mut policy = factory.build(data.max_weight);
            for (idx, slot) in data.slots.iter().enumerate() {
                if let Some(e) = slot {
                    let d = e.deadline();
                    policy.on_insert(
                        idx as u32,
                        EntryInfo {
                            hash: self.hasher.hash_one(&e.key),
                            weight: u64::from(e.weight.get()),
                            expires: (d != NEVER).then_some(d),
                        },
                    );
                }
            }
            data.policy = policy;
        }
        *current = factory;
    }

    pub(crate) fn policy_name(&self) -> String {
        self.policy.lock().name().to_string()
    }

    pub(crate) fn policy_factory(&self) -> Arc<dyn PolicyFactory> {
        self.policy.lock().clone()
    }

    pub(crate) fn stats(&self) -> Option<&Arc<dyn StatsRecorder>> {
        self.stats.as_ref()
    }

    /// Entries held, including expired ones not yet reclaimed.
    pub(crate) fn entry_count(&self) -> u64 {
        self.shards.iter().map(|s| s.data.read().len as u64).sum()
    }

    pub(crate) fn weighted_size(&self) -> u64 {
        self.shards.iter().map(|s| s.data.read().weight).sum()
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Live entries of shard `i`, cloned under its read lock.
    pub(crate) fn snapshot_shard(&self, i: usize) -> Vec<(K, V)>
    where
        K: Clone,
    {
        let data = self.shards[i].data.read();
        let now = if self.has_deadlines.load(Acquire) { self.clock.now() } else { 0 };
        data.slots
            .iter()
            .flatten()
            .filter(|e| {
                let d = e.deadline();
                d == NEVER || now < d
            })
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    }

    /// Checks internal consistency; for tests. Returns a description of the first problem.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        for (i, shard) in self.shards.iter().enumerate() {
            let data = shard.data.read();
            let live = data.slots.iter().flatten().count();
            if live != data.len {
                return Err(format!("shard {i}: len {} but {live} live slots", data.len));
            }
            if data.table.len() != live {
                return Err(format!("shard {i}: table {} but {live} live slots", data.table.len()));
            }
            if data.policy.len() != live {
                return Err(format!("shard {i}: policy tracks {} of {live}", data.policy.len()));
            }
            let w: u64 = data.slots.iter().flatten().map(|e| u64::from(e.weight.get())).sum();
            if w != data.weight {
                return Err(format!("shard {i}: weight {} but entries weigh {w}", data.weight));
            }
            if data.weight > data.max_weight {
                return Err(format!(
                    "shard {i}: weight {} over budget {}",
                    data.weight, data.max_weight
                ));
            }
        }
        Ok(())
    }
}
