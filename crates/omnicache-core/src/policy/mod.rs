//! The policies the memory cache drives: which entry leaves ([`EvictionPolicy`]), whether a new
//! one may come in ([`AdmissionPolicy`]), and when entries expire ([`ExpiryPolicy`]).
//!
//! An eviction policy never sees keys or values. The cache gives every resident entry a
//! [`SlotId`], a small dense integer that is reused after the entry leaves, together with the
//! key's 64-bit hash and its weight. A policy can therefore keep its bookkeeping in plain vectors
//! indexed by slot, and its ghost lists (memory of recently evicted keys) by hash.
//!
//! Reads are the hot path and run under a shared lock, so they cannot call `&mut self` methods.
//! A policy chooses how it wants to hear about them ([`ReadTracking`]):
//! - [`ReadTracking::AccessBits`]: the cache bumps a saturating per-slot counter (0..=3) on every
//!   read at the cost of one relaxed store, and the policy reads and clears it through
//!   [`AccessView::take_accesses`] when it looks for a victim. CLOCK, SIEVE and S3-FIFO need
//!   nothing more. This is the fast path.
//! - [`ReadTracking::Events`]: reads are also recorded in a lossy per-shard buffer and replayed
//!   to [`EvictionPolicy::on_access`] in order under the shard's lock, as Caffeine does. LRU and
//!   LFU need the order. Under heavy load some reads may be dropped; a policy must tolerate that,
//!   and must ignore `on_access` for a slot it does not track.

use crate::clock::Timestamp;
use std::fmt;
use std::time::Duration;

/// The cache's handle for a resident entry: dense, small, reused after the entry leaves.
pub type SlotId = u32;

/// What a policy learns about an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo {
    /// The key's 64-bit hash (stable for the cache's lifetime).
    pub hash: u64,
    /// The entry's weight (1 per entry for entry-count caches).
    pub weight: u64,
    /// When it expires, if ever.
    pub expires: Option<Timestamp>,
}

/// How a policy hears about reads; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadTracking {
    /// Per-slot saturating access counters, read through [`AccessView`].
    AccessBits,
    /// Ordered (lossy) [`EvictionPolicy::on_access`] calls.
    Events,
}

/// The cache's side of eviction: what a policy may ask about resident slots while it looks for
/// a victim.
pub trait AccessView {
    /// The number of reads of `slot` since the last call for it (saturating at 3), and resets it.
    fn take_accesses(&mut self, slot: SlotId) -> u8;
    /// The key hash of the entry in `slot` (the same as [`EntryInfo::hash`] at insertion), so a
    /// policy need not store hashes just to remember evicted keys.
    fn hash(&mut self, slot: SlotId) -> u64;
}

/// An [`AccessView`] that reports no reads and a hash of 0: for policies driven only by events,
/// and for examples.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReads;

impl AccessView for NoReads {
    fn take_accesses(&mut self, _slot: SlotId) -> u8 {
        0
    }
    fn hash(&mut self, _slot: SlotId) -> u64 {
        0
    }
}

/// Chooses which resident entry leaves when the cache is over budget.
///
/// Contract (checked by the conformance suite in `testkit`):
/// - `on_insert` is called once per new slot; `on_update` when a resident entry is overwritten;
///   `on_remove` when the cache removes an entry for any reason other than this policy's
///   [`evict`](Self::evict) (explicit removal, expiry, replacement).
/// - `evict` returns a slot that is currently tracked and stops tracking it (the cache then drops
///   the entry without calling `on_remove`); it returns `None` only when nothing is tracked.
/// - `on_access` and `on_remove` for an untracked slot are ignored, never a panic.
pub trait EvictionPolicy: Send + Sync + fmt::Debug + 'static {
    /// A short lowercase name (`"lru"`, `"s3fifo"`).
    fn name(&self) -> &'static str;

    /// How the policy wants reads reported. Defaults to [`ReadTracking::Events`].
    fn read_tracking(&self) -> ReadTracking {
        ReadTracking::Events
    }

    /// A new entry is resident in `slot`.
    fn on_insert(&mut self, slot: SlotId, info: EntryInfo);

    /// `slot` was read (only for [`ReadTracking::Events`]).
    fn on_access(&mut self, slot: SlotId);

    /// The entry in `slot` was overwritten (new weight or expiry). Counts as an access.
    fn on_update(&mut self, slot: SlotId, info: EntryInfo);

    /// The entry in `slot` left for a reason the policy did not choose.
    fn on_remove(&mut self, slot: SlotId);

    /// Picks a victim and forgets it; `None` when empty.
    fn evict(&mut self, accesses: &mut dyn AccessView) -> Option<SlotId>;

    /// The number of tracked slots.
    fn len(&self) -> usize;

    /// True when no slot is tracked.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes eviction policies: one per shard of a cache, and a fresh one when the strategy is
/// switched at run time.
pub trait PolicyFactory: Send + Sync + fmt::Debug + 'static {
    /// The name of the policies it makes.
    fn name(&self) -> &str;
    /// A policy for a cache (or shard) holding at most `max_weight`.
    fn build(&self, max_weight: u64) -> Box<dyn EvictionPolicy>;
}

/// Decides whether a new entry may displace resident ones (TinyLFU's admission filter, a
/// learned reuse predictor).
///
/// The memory cache asks it only when a new key arrives in a full shard: the eviction policy
/// names the victims that would make room, and the admission policy weighs the candidate
/// against them. Admitted, the victims leave as usual; refused, the candidate leaves instead
/// ([`RemovalCause::Capacity`](crate::RemovalCause::Capacity)) and the victims stay, handed
/// back to the eviction policy as if just inserted. Without an admission policy the cache pays
/// nothing for this step.
///
/// Shared by all shards of a cache and called concurrently, so it takes `&self`.
pub trait AdmissionPolicy: Send + Sync + fmt::Debug + 'static {
    /// A key with this hash was looked up or written.
    fn record(&self, hash: u64);
    /// Whether `candidate` should come in at the cost of `victims` (hashes and weights).
    fn admit(&self, candidate: &EntryInfo, victims: &[EntryInfo]) -> bool;
}

/// Admits everything: what the cache does without an admission policy.
#[derive(Debug, Default, Clone, Copy)]
pub struct AdmitAll;

impl AdmissionPolicy for AdmitAll {
    fn record(&self, _hash: u64) {}
    fn admit(&self, _candidate: &EntryInfo, _victims: &[EntryInfo]) -> bool {
        true
    }
}

/// Computes per-entry lifetimes, as moka's `Expiry` does. Each method returns the time the entry
/// may live from `now`; `None` means it does not expire.
pub trait ExpiryPolicy<K, V>: Send + Sync + 'static {
    /// A new entry was inserted. Default: no expiry.
    fn expire_after_create(&self, key: &K, value: &V, now: Timestamp) -> Option<Duration> {
        let _ = (key, value, now);
        None
    }

    /// An entry was overwritten; `current` is what it had left. Default: the create rule.
    fn expire_after_update(
        &self,
        key: &K,
        value: &V,
        now: Timestamp,
        current: Option<Duration>,
    ) -> Option<Duration> {
        let _ = current;
        self.expire_after_create(key, value, now)
    }

    /// An entry was read; `current` is what it has left. Default: unchanged.
    ///
    /// The memory cache calls this on every hit only when the policy says it wants to, through
    /// [`ExpiryPolicy::refreshes_on_read`], to keep the read path cheap.
    fn expire_after_read(
        &self,
        key: &K,
        value: &V,
        now: Timestamp,
        current: Option<Duration>,
    ) -> Option<Duration> {
        let _ = (key, value, now);
        current
    }

    /// Whether [`expire_after_read`](Self::expire_after_read) is overridden. Default: false.
    fn refreshes_on_read(&self) -> bool {
        false
    }
}

mod s3fifo;
pub use s3fifo::{S3Fifo, S3FifoFactory};

/// The policy a memory cache uses when none is given. See `docs/adr/0002-default-policy.md`.
pub type DefaultPolicy = S3Fifo;

/// Makes [`DefaultPolicy`]s.
pub fn default_policy() -> std::sync::Arc<dyn PolicyFactory> {
    std::sync::Arc::new(S3FifoFactory::default())
}
