//! Deletes win over older writes: random interleavings of put, remove, invalidate, clear,
//! flush, restart and crash against a model, with write-behind, write-through and demotion over
//! slow tiers and a queue small enough to overflow into inline writes.

use omnicache_core::testkit::MemoryTier;
use omnicache_core::{Invalidation, MockClock, ScanPage, Tier, TierEntry};
use omnicache_tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The reference tier, yielding to the runtime a pseudo-random number of times before each call,
/// so queued writes, inline writes and the caller's next operation interleave.
#[derive(Debug)]
struct Slow {
    inner: MemoryTier,
    rng: AtomicU64,
}

impl Slow {
    fn new(seed: u64, clock: &MockClock) -> Self {
        Slow { inner: MemoryTier::new(clock.clone().into()), rng: AtomicU64::new(seed | 1) }
    }

    async fn stall(&self) {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        for _ in 0..x % 4 {
            tokio::task::yield_now().await;
        }
    }

    /// The value stored for `key`, read around the stall.
    async fn peek(&self, key: &[u8]) -> Option<Vec<u8>> {
        Tier::get(&self.inner, key).await.unwrap().map(|e| e.value)
    }
}

impl Tier for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    async fn get(&self, key: &[u8]) -> omnicache_core::Result<Option<TierEntry>> {
        self.stall().await;
        Tier::get(&self.inner, key).await
    }
    async fn put(&self, key: &[u8], entry: TierEntry) -> omnicache_core::Result<()> {
        self.stall().await;
        Tier::put(&self.inner, key, entry).await
    }
    async fn remove(&self, key: &[u8]) -> omnicache_core::Result<bool> {
        self.stall().await;
        Tier::remove(&self.inner, key).await
    }
    async fn invalidate(&self, what: &Invalidation) -> omnicache_core::Result<u64> {
        self.stall().await;
        Tier::invalidate(&self.inner, what).await
    }
    async fn scan(
        &self,
        prefix: &[u8],
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> omnicache_core::Result<ScanPage> {
        Tier::scan(&self.inner, prefix, cursor, limit).await
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: u8,
        tag: u8,
    },
    PutMany {
        keys: Vec<u8>,
        tag: u8,
    },
    Remove(u8),
    Get(u8),
    InvalidateTag(u8),
    InvalidatePrefix(u8),
    Clear,
    Flush,
    /// Graceful: the queue is flushed, then a new cache opens over the same tiers.
    Restart,
    /// The process dies: queued writes are lost, then a new cache opens over the same tiers.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..6u8, 0..2u8).prop_map(|(key, tag)| Op::Put { key, tag }),
        1 => (proptest::collection::vec(0..6u8, 1..4), 0..2u8)
            .prop_map(|(keys, tag)| Op::PutMany { keys, tag }),
        3 => (0..6u8).prop_map(Op::Remove),
        4 => (0..6u8).prop_map(Op::Get),
        1 => (0..2u8).prop_map(Op::InvalidateTag),
        1 => (0..3u8).prop_map(Op::InvalidatePrefix),
        1 => Just(Op::Clear),
        1 => Just(Op::Flush),
        1 => Just(Op::Restart),
        1 => Just(Op::Crash),
    ]
}

/// Keys `a0`..`a2`, `b0`..`b2`: prefixes `a` and `b` each cover three; prefix 2 covers none.
fn key(k: u8) -> Vec<u8> {
    format!("{}{}", if k < 3 { 'a' } else { 'b' }, k % 3).into_bytes()
}

fn prefix(p: u8) -> Vec<u8> {
    match p {
        0 => b"a".to_vec(),
        1 => b"b".to_vec(),
        _ => b"c".to_vec(),
    }
}

fn tag(t: u8) -> String {
    format!("t{t}")
}

/// What each key holds, and which values may legally be served: the current one, plus, after a
/// crash lost queued writes, older values written since the key's last delete that no later
/// invalidation covered. A value written before a delete is never legal again.
#[derive(Debug, Default)]
struct Model {
    current: BTreeMap<u8, (Vec<u8>, u8)>,
    /// Legal values of each key, with their tags.
    legal: BTreeMap<u8, BTreeMap<Vec<u8>, u8>>,
    /// Values written to each key since its last delete (what a write-behind tier may hold).
    history: BTreeMap<u8, BTreeMap<Vec<u8>, u8>>,
    /// Keys whose write-behind copy may lag (or be missing) since a crash.
    lagging: BTreeSet<u8>,
}

impl Model {
    fn put(&mut self, k: u8, value: Vec<u8>, t: u8) {
        self.current.insert(k, (value.clone(), t));
        self.legal.insert(k, BTreeMap::from([(value.clone(), t)]));
        self.history.entry(k).or_default().insert(value, t);
        self.lagging.remove(&k);
    }
    fn delete(&mut self, k: u8) {
        self.delete_if(|key, _| key == k);
    }
    /// Deletes every value (current, legal, in history) that `covered(key, tag)` selects.
    fn delete_if(&mut self, covered: impl Fn(u8, u8) -> bool) {
        self.current.retain(|k, (_, t)| !covered(*k, *t));
        for map in [&mut self.legal, &mut self.history] {
            for (k, values) in map.iter_mut() {
                values.retain(|_, t| !covered(*k, *t));
            }
            map.retain(|_, values| !values.is_empty());
        }
        let lagging = &mut self.lagging;
        lagging.retain(|k| self.history.contains_key(k));
    }
    /// A crash: each key's value in a write-behind tier may lag, back to its last delete.
    fn crash(&mut self) {
        for (k, values) in &self.history {
            self.legal.entry(*k).or_default().extend(values.iter().map(|(v, t)| (v.clone(), *t)));
            self.lagging.insert(*k);
        }
    }
    /// Whether `got` may be served for `k`.
    fn check(&self, k: u8, got: Option<&Vec<u8>>) -> Result<(), String> {
        let legal = self.legal.get(&k);
        match got {
            None if self.current.contains_key(&k) => Err(format!("{k}: a miss, legal {legal:?}")),
            None => Ok(()),
            Some(v) if legal.is_some_and(|l| l.contains_key(v)) => Ok(()),
            Some(v) => {
                Err(format!("{k}: served {:?}, legal {legal:?}", String::from_utf8_lossy(v)))
            }
        }
    }
}

struct World {
    clock: MockClock,
    behind: Arc<Slow>,
    demote: Arc<Slow>,
    through: Arc<Slow>,
}

impl World {
    fn open(&self) -> TieredCache {
        TieredCache::builder()
            .clock(self.clock.clone())
            .l1_capacity(3)
            .queue_capacity(2)
            .sweep_interval(None)
            .tier(self.behind.clone(), WritePolicy::Behind)
            .tier(self.demote.clone(), WritePolicy::OnEvict)
            .tier(self.through.clone(), WritePolicy::Through)
            .build()
            .unwrap()
    }
}

async fn run(seed: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let clock = MockClock::default();
    let w = World {
        behind: Arc::new(Slow::new(seed, &clock)),
        demote: Arc::new(Slow::new(seed.rotate_left(21), &clock)),
        through: Arc::new(Slow::new(seed.rotate_left(42), &clock)),
        clock,
    };
    let mut cache = w.open();
    let mut model = Model::default();
    let mut next = 0u32;
    let mut fresh = || {
        next += 1;
        format!("v{next}").into_bytes()
    };
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Put { key: k, tag: t } => {
                let v = fresh();
                let opts = PutOptions { tags: vec![tag(t)], ..PutOptions::default() };
                cache.put(&key(k), v.clone(), opts).await.unwrap();
                model.put(k, v, t);
            }
            Op::PutMany { keys, tag: t } => {
                let mut items = Vec::new();
                for k in keys {
                    let v = fresh();
                    let opts = PutOptions { tags: vec![tag(t)], ..PutOptions::default() };
                    items.push((key(k), v.clone(), opts));
                    model.put(k, v, t);
                }
                cache.put_many(items).await.unwrap();
            }
            Op::Remove(k) => {
                cache.remove(&key(k)).await;
                model.delete(k);
            }
            Op::Get(k) => {
                let got = cache.get(&key(k)).await.map(|e| e.value.clone());
                if let Err(e) = model.check(k, got.as_ref()) {
                    prop_assert!(false, "step {step}: get {e}");
                }
            }
            Op::InvalidateTag(t) => {
                cache.invalidate(&Invalidation::Tag(tag(t))).await;
                model.delete_if(|_, et| et == t);
            }
            Op::InvalidatePrefix(p) => {
                cache.invalidate(&Invalidation::Prefix(prefix(p))).await;
                model.delete_if(|k, _| key(k).starts_with(&prefix(p)));
            }
            Op::Clear => {
                cache.invalidate(&Invalidation::All).await;
                model.delete_if(|_, _| true);
            }
            Op::Flush => cache.flush().await,
            Op::Restart => {
                cache.shutdown().await;
                // The wall clock moves on across a restart; versions are seeded from it.
                w.clock.advance(Duration::from_secs(1));
                cache = w.open();
            }
            Op::Crash => {
                drop(cache);
                // Let the writer notice and stop (a job already running may finish).
                for _ in 0..16 {
                    tokio::task::yield_now().await;
                }
                model.crash();
                w.clock.advance(Duration::from_secs(1));
                cache = w.open();
            }
        }
    }
    cache.flush().await;
    for k in 0..6u8 {
        let legal = model.legal.get(&k);
        let want = model.current.get(&k).map(|(v, _)| v.clone());
        let through = w.through.peek(&key(k)).await;
        prop_assert_eq!(&through, &want, "write-through tier holds exactly the model for {}", k);
        let behind = w.behind.peek(&key(k)).await;
        if !model.lagging.contains(&k) {
            prop_assert_eq!(
                &behind,
                &want,
                "write-behind tier, flushed, holds the model for {}",
                k
            );
        } else if let Some(v) = &behind {
            prop_assert!(legal.is_some_and(|l| l.contains_key(v)), "write-behind tier: {k} stale");
        }
        if let Some(v) = w.demote.peek(&key(k)).await {
            prop_assert!(
                legal.is_some_and(|l| l.contains_key(&v)),
                "demotion tier holds {:?} for {k}, legal {legal:?}",
                String::from_utf8_lossy(&v)
            );
        }
        let got = cache.get(&key(k)).await.map(|e| e.value.clone());
        if let Err(e) = model.check(k, got.as_ref()) {
            prop_assert!(false, "final get {e}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn nothing_deleted_is_ever_served_and_every_tier_matches_the_model(
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(run(seed, ops))?;
    }
}

#[test]
fn a_delete_a_tier_missed_while_down_is_not_served_once_it_is_back() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let clock = MockClock::default();
        let remote = Arc::new(MemoryTier::new(clock.clone().into()));
        let cache = TieredCache::builder()
            .clock(clock)
            .sweep_interval(None)
            .tier(remote.clone(), WritePolicy::Through)
            .build()
            .unwrap();
        cache.put(b"session", b"alice".to_vec(), PutOptions::default()).await.unwrap();
        remote.set_down(true);
        cache.remove(b"session").await;
        remote.set_down(false);
        assert_eq!(remote.len(), 1, "the tier kept its copy: the delete never reached it");
        assert!(cache.get(b"session").await.is_none(), "the deleted copy is not served");
        cache.put(b"session", b"bob".to_vec(), PutOptions::default()).await.unwrap();
        cache.evict_from_l1(b"session");
        assert_eq!(cache.get(b"session").await.unwrap().value, b"bob", "a newer write is");
    });
}
