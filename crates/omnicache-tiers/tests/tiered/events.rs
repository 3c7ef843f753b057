//! What the tiered cache tells its event listeners.

use super::rt;
use omnicache_core::event::EventLog;
use omnicache_core::testkit::MemoryTier;
use omnicache_core::{
    CacheEvent, Error, ErrorKind, Invalidation, MockClock, RemovalCause, Tier, TierEntry,
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

/// The events other than writes, in order.
fn all_but_writes(log: &EventLog) -> Vec<CacheEvent> {
    log.events().into_iter().filter(|e| !matches!(e, CacheEvent::Inserted { .. })).collect()
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
        let mut removals = all_but_writes(&log);
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
