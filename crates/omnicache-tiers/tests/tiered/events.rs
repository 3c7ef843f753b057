//! What the tiered cache tells its event listeners.

use super::rt;
use omnicache_core::event::EventLog;
use omnicache_core::testkit::MemoryTier;
use omnicache_core::{
    CacheEvent, Error, ErrorKind, Invalidation, MockClock, Origin, RemovalCause, StatsRecorder,
    StatsSnapshot, Tier, TierEntry, TierHealth,
};
use omnicache_tiers::tiered::{PutOptions, TieredCache, TieredCacheBuilder, WritePolicy};
use std::sync::Arc;
use std::time::Duration;

fn listened(builder: TieredCacheBuilder) -> (TieredCache, Arc<EventLog>) {
    let log = Arc::new(EventLog::default());
    (builder.event_listener(log.clone()).build().unwrap(), log)
}

fn removed(key: &str, cause: RemovalCause) -> CacheEvent {
    CacheEvent::Removed { key: key.as_bytes().to_vec(), cause }
}

fn inserted(key: &str, weight: u32) -> CacheEvent {
    CacheEvent::Inserted { key: key.as_bytes().to_vec(), weight }
}

/// The events about entries other than writes, in order (no tier health, no sampled lookups).
fn all_but_writes(log: &EventLog) -> Vec<CacheEvent> {
    let about_entries = |e: &CacheEvent| {
        !matches!(
            e,
            CacheEvent::Inserted { .. }
                | CacheEvent::TierHealthChanged { .. }
                | CacheEvent::Accessed { .. }
        )
    };
    log.events().into_iter().filter(about_entries).collect()
}

async fn put(cache: &TieredCache, key: &str, value: &str) {
    cache.put(key.as_bytes(), value.as_bytes().to_vec(), PutOptions::default()).await.unwrap();
}

#[test]
fn writes_removals_and_complaints_are_reported_once_each() {
    rt().block_on(async {
        let remote = Arc::new(MemoryTier::default());
        let (cache, log) = listened(
            TieredCache::builder().failure_threshold(2).tier(remote, WritePolicy::Through),
        );
        put(&cache, "a", "one").await;
        put(&cache, "b", "three").await;
        assert!(cache.remove(b"a").await);
        assert!(!cache.remove(b"a").await, "already gone: nothing to report");
        assert!(!cache.report_failure(b"b").await);
        assert!(cache.report_failure(b"b").await);
        cache.put_many(vec![(b"c".to_vec(), b"12".to_vec(), PutOptions::default())]).await.unwrap();
        assert_eq!(
            log.events(),
            vec![
                inserted("a", 3),
                inserted("b", 5),
                removed("a", RemovalCause::Explicit),
                removed("b", RemovalCause::Health),
                inserted("c", 2),
            ]
        );
    });
}

#[test]
fn a_hit_below_is_reported_as_a_promotion_from_that_tier() {
    rt().block_on(async {
        let remote = Arc::new(MemoryTier::default());
        let (cache, log) =
            listened(TieredCache::builder().tier(remote.clone(), WritePolicy::Through));
        let e = TierEntry::new(b"v".to_vec(), omnicache_core::EntryMeta::new(1));
        Tier::put(&*remote, b"k", e).await.unwrap();
        cache.get(b"k").await.unwrap();
        cache.get(b"k").await.unwrap();
        assert!(cache.get(b"nowhere").await.is_none());
        assert_eq!(
            log.events(),
            vec![CacheEvent::Promoted { key: b"k".to_vec(), from: "memory-reference".into() }],
            "one promotion; the L1 hit and the miss are not events"
        );
    });
}

#[test]
fn an_l1_eviction_is_a_removal_only_when_no_tier_below_keeps_the_entry() {
    rt().block_on(async {
        // L1 alone: an eviction loses the entry.
        let (alone, log) = listened(TieredCache::builder().l1_capacity(2));
        for k in ["a", "b", "c"] {
            put(&alone, k, "v").await;
        }
        let gone: Vec<_> = log
            .events()
            .into_iter()
            .filter(|e| matches!(e, CacheEvent::Removed { cause: RemovalCause::Capacity, .. }))
            .collect();
        assert_eq!(gone.len(), 1, "one of three left a two-entry cache: {gone:?}");

        // Written through to a tier: the entry stays in the cache.
        let remote = Arc::new(MemoryTier::default());
        let (through, log) =
            listened(TieredCache::builder().l1_capacity(2).tier(remote, WritePolicy::Through));
        for k in ["a", "b", "c"] {
            put(&through, k, "v").await;
        }
        assert!(
            log.events().iter().all(|e| matches!(e, CacheEvent::Inserted { .. })),
            "{:?}",
            log.events()
        );

        // Too large for the only tier: evicting it from L1 loses it.
        let remote = Arc::new(MemoryTier::default());
        let (small, log) = listened(TieredCache::builder().l1_capacity(2).tier_with(
            remote,
            WritePolicy::Through,
            |s| omnicache_tiers::tiered::TierSettings { max_value_bytes: Some(1), ..s },
        ));
        for k in ["a", "b", "c"] {
            put(&small, k, "vv").await;
        }
        assert_eq!(
            log.events()
                .iter()
                .filter(|e| matches!(e, CacheEvent::Removed { cause: RemovalCause::Capacity, .. }))
                .count(),
            1
        );
    });
}

#[test]
fn a_demotion_is_reported_once_written_and_a_failed_one_as_a_removal() {
    rt().block_on(async {
        let remote = Arc::new(MemoryTier::default());
        let (cache, log) = listened(
            TieredCache::builder().l1_capacity(1).tier(remote.clone(), WritePolicy::OnEvict),
        );
        put(&cache, "a", "v").await;
        put(&cache, "b", "v").await;
        cache.flush().await;
        let demoted = all_but_writes(&log);
        assert_eq!(demoted.len(), 1, "{demoted:?}");
        let CacheEvent::Demoted { key, to } = &demoted[0] else { panic!("{demoted:?}") };
        assert_eq!(to, "memory-reference");
        assert_eq!(remote.len(), 1, "the demoted entry is in the tier");
        assert!(cache.get(key).await.is_some());

        // The tier is down: the demotion fails and the entry is lost.
        let remote = Arc::new(MemoryTier::default());
        remote.set_down(true);
        let (cache, log) =
            listened(TieredCache::builder().l1_capacity(1).tier(remote, WritePolicy::OnEvict));
        put(&cache, "a", "v").await;
        put(&cache, "b", "v").await;
        cache.flush().await;
        let lost = all_but_writes(&log);
        assert_eq!(lost.len(), 1, "{lost:?}");
        let CacheEvent::Removed { key, cause: RemovalCause::Capacity } = &lost[0] else {
            panic!("{lost:?}")
        };
        assert!(cache.get(key).await.is_none(), "reported lost, and it is");
    });
}

#[test]
fn expiry_invalidation_and_corruption_are_removals_with_their_cause() {
    rt().block_on(async {
        let clock = MockClock::default();
        let (cache, log) =
            listened(TieredCache::builder().clock(clock.clone()).sweep_interval(None));
        let short = PutOptions { ttl: Some(Duration::from_secs(1)), ..PutOptions::default() };
        cache.put(b"ttl", b"v".to_vec(), short).await.unwrap();
        let tagged = PutOptions { tags: vec!["t".into()], ..PutOptions::default() };
        cache.put(b"x", b"v".to_vec(), tagged.clone()).await.unwrap();
        cache.put(b"y", b"v".to_vec(), tagged).await.unwrap();
        put(&cache, "z", "v").await;
        clock.advance(Duration::from_secs(2));
        cache.sweep().await;
        cache.invalidate(&Invalidation::Tag("t".into())).await;
        let (mut removals, rest): (Vec<_>, Vec<_>) =
            all_but_writes(&log).into_iter().partition(|e| matches!(e, CacheEvent::Removed { .. }));
        let what = Invalidation::Tag("t".into());
        assert_eq!(rest, vec![CacheEvent::Invalidated { what, removed: 2, origin: Origin::Local }]);
        removals.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(
            removals,
            vec![
                removed("ttl", RemovalCause::Expired),
                removed("x", RemovalCause::Invalidated),
                removed("y", RemovalCause::Invalidated),
            ]
        );

        let (cache, log) =
            listened(TieredCache::builder().tier(Arc::new(Corrupting), WritePolicy::Through));
        assert!(cache.get(b"k").await.is_none());
        assert_eq!(log.events(), vec![removed("k", RemovalCause::Corrupt)]);
    });
}

/// A tier whose every entry fails its checksum.
#[derive(Debug)]
struct Corrupting;

impl Tier for Corrupting {
    fn name(&self) -> &str {
        "corrupting"
    }
    async fn get(&self, _: &[u8]) -> omnicache_core::Result<Option<TierEntry>> {
        Err(Error::new(ErrorKind::Corrupt, "checksum mismatch"))
    }
    async fn put(&self, _: &[u8], _: TierEntry) -> omnicache_core::Result<()> {
        Ok(())
    }
    async fn remove(&self, _: &[u8]) -> omnicache_core::Result<bool> {
        Ok(true)
    }
    async fn invalidate(&self, _: &Invalidation) -> omnicache_core::Result<u64> {
        Ok(0)
    }
    async fn scan(
        &self,
        _: &[u8],
        _: Option<&[u8]>,
        _: usize,
    ) -> omnicache_core::Result<omnicache_core::ScanPage> {
        Ok(omnicache_core::ScanPage { keys: Vec::new(), next: None })
    }
}

#[test]
fn invalidations_say_what_they_covered_and_where_they_came_from() {
    rt().block_on(async {
        let remote = Arc::new(MemoryTier::default());
        let (cache, log) = listened(TieredCache::builder().tier(remote, WritePolicy::Through));
        put(&cache, "user:1", "a").await;
        put(&cache, "user:2", "b").await;
        put(&cache, "order:1", "c").await;
        let users = Invalidation::Prefix(b"user:".to_vec());
        assert_eq!(cache.invalidate(&users).await, 2);
        let from = Origin::Remote("instance-b".into());
        let order = Invalidation::Keys(vec![b"order:1".to_vec()]);
        assert_eq!(cache.invalidate_from(&order, from.clone()).await, 1);
        let summaries: Vec<_> = log
            .events()
            .into_iter()
            .filter(|e| matches!(e, CacheEvent::Invalidated { .. }))
            .collect();
        assert_eq!(
            summaries,
            vec![
                CacheEvent::Invalidated { what: users, removed: 2, origin: Origin::Local },
                CacheEvent::Invalidated { what: order, removed: 1, origin: from },
            ]
        );
    });
}

#[test]
fn a_tier_going_down_and_coming_back_is_reported_once_each_way() {
    rt().block_on(async {
        let remote = Arc::new(MemoryTier::default());
        let (cache, log) =
            listened(TieredCache::builder().tier_with(remote.clone(), WritePolicy::Through, |s| {
                omnicache_tiers::tiered::TierSettings { breaker_threshold: 2, ..s }
            }));
        remote.set_down(true);
        for _ in 0..3 {
            assert!(cache.get(b"k").await.is_none());
        }
        remote.set_down(false);
        // The breaker is open: the cache goes around the tier until its cooldown passes.
        cache.probe().await;
        let health: Vec<_> = log
            .events()
            .into_iter()
            .filter_map(|e| match e {
                CacheEvent::TierHealthChanged { tier, health, reason } => {
                    Some((tier, health, reason.is_some()))
                }
                _ => None,
            })
            .collect();
        let name = remote.name().to_string();
        assert_eq!(
            health,
            vec![
                (name.clone(), TierHealth::Degraded, true),
                (name.clone(), TierHealth::Unavailable, true),
            ],
            "failing, then the breaker opened; nothing for calls it skipped"
        );
    });
}

#[test]
fn a_tier_that_answers_again_is_reported_healthy() {
    rt().block_on(async {
        let remote = Arc::new(MemoryTier::default());
        let (cache, log) =
            listened(TieredCache::builder().tier(remote.clone(), WritePolicy::Through));
        remote.set_down(true);
        assert!(cache.get(b"k").await.is_none());
        remote.set_down(false);
        assert!(cache.get(b"k").await.is_none());
        assert!(cache.get(b"k").await.is_none());
        let health: Vec<_> = log
            .events()
            .into_iter()
            .filter_map(|e| match e {
                CacheEvent::TierHealthChanged { health, .. } => Some(health),
                _ => None,
            })
            .collect();
        assert_eq!(health, vec![TierHealth::Degraded, TierHealth::Healthy]);
    });
}

#[test]
fn sampled_lookups_are_access_events_and_none_without_sampling() {
    rt().block_on(async {
        let clock = MockClock::default();
        let remote = Arc::new(MemoryTier::new(clock.clone().into()));
        let (cache, log) = listened(
            TieredCache::builder()
                .clock(clock.clone())
                .access_sampling(1)
                .tier(remote.clone(), WritePolicy::Through),
        );
        put(&cache, "a", "1").await;
        assert!(cache.get(b"a").await.is_some());
        cache.evict_from_l1(b"a");
        assert!(cache.get(b"a").await.is_some());
        assert!(cache.get(b"b").await.is_none());
        let at = omnicache_core::Clock::now(&clock);
        let accessed = |k: &str, hit| CacheEvent::Accessed { key: k.as_bytes().to_vec(), hit, at };
        let seen: Vec<_> =
            log.events().into_iter().filter(|e| matches!(e, CacheEvent::Accessed { .. })).collect();
        assert_eq!(seen, vec![accessed("a", true), accessed("a", true), accessed("b", false)]);

        // One key in 16 by hash: over many keys about that share, each key always or never.
        let (cache, log) =
            listened(TieredCache::builder().access_sampling(16).tier(remote, WritePolicy::Through));
        for round in 0..2 {
            for i in 0..4_000 {
                let _ = cache.get(format!("key{i}").as_bytes()).await;
            }
            if round == 0 {
                let n = log.events().len();
                assert!((150..350).contains(&n), "about 4,000 / 16 keys sampled: {n}");
            }
        }
        let keys: Vec<Vec<u8>> = log
            .events()
            .into_iter()
            .filter_map(|e| match e {
                CacheEvent::Accessed { key, .. } => Some(key),
                _ => None,
            })
            .collect();
        let (first, second) = keys.split_at(keys.len() / 2);
        assert!(first == second, "the same keys are sampled on every lookup");

        let (cache, log) = listened(TieredCache::builder());
        let _ = cache.get(b"a").await;
        assert!(log.events().is_empty(), "no sampling unless asked for");
    });
}

/// Counts what a caller's recorder hears, tier latency included.
#[derive(Debug, Default)]
struct Heard {
    stats: omnicache_core::AtomicStats,
    tier_calls: std::sync::Mutex<Vec<String>>,
}

impl StatsRecorder for Heard {
    fn record_hits(&self, n: u64) {
        self.stats.record_hits(n);
    }
    fn record_misses(&self, n: u64) {
        self.stats.record_misses(n);
    }
    fn record_load(&self, ok: bool, nanos: u64) {
        self.stats.record_load(ok, nanos);
    }
    fn record_removal(&self, cause: RemovalCause, weight: u64) {
        self.stats.record_removal(cause, weight);
    }
    fn record_promotion(&self) {
        self.stats.record_promotion();
    }
    fn record_demotion(&self) {
        self.stats.record_demotion();
    }
    fn record_tier_latency(&self, tier: &str, _nanos: u64) {
        self.tier_calls.lock().unwrap().push(tier.to_string());
    }
    fn snapshot(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }
}

#[test]
fn a_callers_recorder_hears_every_layer() {
    rt().block_on(async {
        let fast = Arc::new(MemoryTier::default());
        let slow = Arc::new(MemoryTier::default());
        let heard = Arc::new(Heard::default());
        let cache = TieredCache::builder()
            .l1_capacity(1)
            .stats_recorder(heard.clone())
            .tier(fast.clone(), WritePolicy::Through)
            .tier(slow.clone(), WritePolicy::OnEvict)
            .build()
            .unwrap();
        put(&cache, "a", "1").await; // one call to the fast tier
        assert!(cache.get(b"a").await.is_some()); // L1 hit
        cache.evict_from_l1(b"a");
        assert!(cache.get(b"a").await.is_some()); // fast tier hit: a promotion
        assert!(cache.get(b"zz").await.is_none()); // a miss everywhere
        put(&cache, "b", "2").await; // evicts "a" from L1 into the slow tier
        cache.flush().await;
        let s = heard.snapshot();
        assert_eq!((s.hits, s.misses, s.promotions), (2, 1, 1), "{s:?}");
        assert_eq!(s.demotions, 1, "{s:?}");
        assert_eq!(s.removals(RemovalCause::Capacity), 1, "L1's eviction of a");
        assert_eq!(cache.stats().hits, 2, "the cache keeps its own counts");
        let calls = heard.tier_calls.lock().unwrap().clone();
        assert!(calls.len() >= 5, "every tier call is timed: {calls:?}");
        assert!(calls.iter().any(|t| t == slow.name()), "the demotion's write too: {calls:?}");
    });
}
