//! The tiered cache over the reference tier and the real disk tier: promotion, write policies,
//! demotion, breakers, timeouts, corruption, complaints, TTL caps.

mod events;
mod load;
mod order;
mod placement;
mod prefetch;
#[path = "../common/transform.rs"]
mod transform;
mod typed;
mod warm;

use omnicache_core::testkit::MemoryTier;
use omnicache_core::{DynTier, Invalidation, MockClock, Tier, TierEntry};
use omnicache_tiers::disk::DiskTier;
use omnicache_tiers::tiered::{PutOptions, TierSettings, TieredCache, WritePolicy};
use omnicache_tiers::BreakerState;
use std::sync::Arc;
use std::time::Duration;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn a_lower_hit_is_promoted_to_l1_and_to_the_tiers_above() {
    rt().block_on(async {
        let upper = Arc::new(MemoryTier::default());
        let lower = Arc::new(MemoryTier::default());
        let cache = TieredCache::builder()
            .tier(upper.clone(), WritePolicy::Through)
            .tier(lower.clone(), WritePolicy::Through)
            .build()
            .unwrap();
        // Only the lower tier has it (written there by another instance).
        let e = TierEntry::new(b"v".to_vec(), omnicache_core::EntryMeta::new(1));
        Tier::put(&*lower, b"k", e).await.unwrap();
        let got = cache.get(b"k").await.expect("found below");
        assert_eq!(got.value, b"v");
        assert_eq!(cache.l1_entry_count(), 1, "promoted to L1");
        assert_eq!(upper.len(), 1, "and to the tier above");
        let t = cache.tiers();
        assert_eq!((t[0].stats.misses, t[1].stats.hits, t[1].stats.promotions), (1, 1, 1));
        // Now served from L1 without touching the tiers.
        cache.get(b"k").await.unwrap();
        assert_eq!(cache.tiers()[1].stats.hits, 1);
    });
}

#[test]
fn write_behind_is_flushed_and_shutdown_loses_nothing() {
    rt().block_on(async {
        let remote = Arc::new(MemoryTier::default());
        let cache =
            TieredCache::builder().tier(remote.clone(), WritePolicy::Behind).build().unwrap();
        for i in 0..500u32 {
            cache
                .put(format!("k{i}").as_bytes(), vec![1; 10], PutOptions::default())
                .await
                .unwrap();
        }
        cache.shutdown().await;
        assert_eq!(remote.len(), 500, "every queued write reached the tier");
        cache.put(b"after", vec![2], PutOptions::default()).await.unwrap();
        assert_eq!(remote.len(), 501, "after shutdown writes go straight through");
    });
}

#[test]
fn l1_evictions_are_demoted_to_the_next_tier() {
    rt().block_on(async {
        let disk_dir = tempfile::tempdir().unwrap();
        let disk = Arc::new(DiskTier::open(disk_dir.path().join("d.db")).unwrap());
        let cache = TieredCache::builder()
            .l1_capacity(10)
            .tier(disk.clone(), WritePolicy::OnEvict)
            .build()
            .unwrap();
        for i in 0..100u32 {
            cache
                .put(
                    format!("k{i}").as_bytes(),
                    format!("v{i}").into_bytes(),
                    PutOptions::default(),
                )
                .await
                .unwrap();
        }
        cache.flush().await;
        assert!(cache.l1_entry_count() <= 10);
        let demoted = cache.tiers()[0].stats.demotions;
        assert_eq!(demoted + cache.l1_entry_count(), 100, "every entry is in L1 or was demoted");
        for i in 0..100u32 {
            let got = cache.get(format!("k{i}").as_bytes()).await.expect("nothing is lost");
            assert_eq!(got.value, format!("v{i}").into_bytes());
        }
    });
}

#[test]
fn a_failing_tier_opens_its_breaker_and_callers_see_no_error() {
    rt().block_on(async {
        let clock = MockClock::default();
        let remote = Arc::new(MemoryTier::new(clock.clone().into()));
        let cache = TieredCache::builder()
            .clock(clock.clone())
            .l1_capacity(1)
            .tier(remote.clone(), WritePolicy::Through)
            .build()
            .unwrap();
        cache.put(b"a", b"1".to_vec(), PutOptions::default()).await.unwrap();
        remote.set_down(true);
        for i in 0..20u32 {
            // Misses in L1 go to the tier, which fails: a miss, never an error.
            assert!(cache.get(format!("x{i}").as_bytes()).await.is_none());
            cache
                .put(format!("y{i}").as_bytes(), b"2".to_vec(), PutOptions::default())
                .await
                .unwrap();
        }
        let t = &cache.tiers()[0];
        assert_eq!(t.breaker, BreakerState::Open);
        assert_eq!(t.stats.errors, 5, "five failures opened it; the rest were skipped");
        assert!(t.stats.skipped >= 30);
        remote.set_down(false);
        clock.advance(Duration::from_secs(60));
        assert!(cache.get(b"a").await.is_some(), "half-open trial succeeds: served from the tier");
        assert_eq!(cache.tiers()[0].breaker, BreakerState::Closed);
    });
}

/// A tier that never answers.
#[derive(Debug)]
struct Hung;

impl Tier for Hung {
    fn name(&self) -> &str {
        "hung"
    }
    async fn get(&self, _: &[u8]) -> omnicache_core::Result<Option<TierEntry>> {
        std::future::pending().await
    }
    async fn put(&self, _: &[u8], _: TierEntry) -> omnicache_core::Result<()> {
        std::future::pending().await
    }
    async fn remove(&self, _: &[u8]) -> omnicache_core::Result<bool> {
        std::future::pending().await
    }
    async fn invalidate(&self, _: &Invalidation) -> omnicache_core::Result<u64> {
        std::future::pending().await
    }
    async fn scan(
        &self,
        _: &[u8],
        _: Option<&[u8]>,
        _: usize,
    ) -> omnicache_core::Result<omnicache_core::ScanPage> {
        std::future::pending().await
    }
}

#[test]
fn a_hung_tier_times_out_into_a_miss() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let cache = TieredCache::builder()
            .tier_with(Arc::new(Hung) as Arc<dyn DynTier>, WritePolicy::Through, |s| {
                omnicache_tiers::tiered::TierSettings { timeout: Duration::from_millis(50), ..s }
            })
            .build()
            .unwrap();
        assert!(cache.get(b"k").await.is_none());
        cache.put(b"k", b"v".to_vec(), PutOptions::default()).await.unwrap();
        assert_eq!(cache.get(b"k").await.unwrap().value, b"v", "L1 still serves");
        assert_eq!(cache.tiers()[0].stats.errors, 2, "both tier calls timed out");
    });
}

#[test]
fn corrupt_entries_below_are_misses_and_counted() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let disk = Arc::new(DiskTier::open(&path).unwrap());
        let cache =
            TieredCache::builder().tier(disk.clone(), WritePolicy::Through).build().unwrap();
        cache.put(b"k", b"value".to_vec(), PutOptions::default()).await.unwrap();
        cache.evict_from_l1(b"k");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute(
            "UPDATE entries SET envelope = substr(envelope, 1, length(envelope) - 2) || x'0000'",
            [],
        )
        .unwrap();
        assert!(cache.get(b"k").await.is_none(), "a corrupt entry is a miss");
        assert_eq!(cache.tiers()[0].stats.corrupt, 1);
        assert_eq!(
            cache.tiers()[0].stats.removals[omnicache_core::RemovalCause::Corrupt.index()],
            1
        );
        assert_eq!(disk.stats().corrupt, 1);
        assert_eq!(
            cache.tiers()[0].breaker,
            BreakerState::Closed,
            "corruption does not trip the breaker"
        );
    });
}

#[test]
fn three_complaints_invalidate_everywhere() {
    rt().block_on(async {
        let remote = Arc::new(MemoryTier::default());
        let cache =
            TieredCache::builder().tier(remote.clone(), WritePolicy::Through).build().unwrap();
        cache.put(b"k", b"bad".to_vec(), PutOptions::default()).await.unwrap();
        assert!(!cache.report_failure(b"k").await);
        assert!(!cache.report_failure(b"k").await);
        assert!(cache.report_failure(b"k").await);
        assert!(cache.get(b"k").await.is_none());
        assert!(remote.is_empty());
        let removals = cache.tiers()[0].stats.removals;
        assert_eq!(
            removals[omnicache_core::RemovalCause::Health.index()],
            1,
            "counted as a health removal"
        );
    });
}

#[test]
fn tier_ttl_caps_and_invalidation_by_tag() {
    rt().block_on(async {
        let clock = MockClock::default();
        let remote = Arc::new(MemoryTier::new(clock.clone().into()));
        let cache = TieredCache::builder()
            .clock(clock.clone())
            .tier_with(remote.clone(), WritePolicy::Through, |s| {
                omnicache_tiers::tiered::TierSettings {
                    ttl_cap: Some(Duration::from_secs(10)),
                    ..s
                }
            })
            .build()
            .unwrap();
        let opts = PutOptions {
            ttl: Some(Duration::from_secs(100)),
            tags: vec!["users".into()],
            subject: None,
            cold: false,
        };
        cache.put(b"u1", b"a".to_vec(), opts.clone()).await.unwrap();
        cache.put(b"u2", b"b".to_vec(), opts).await.unwrap();
        cache.put(b"o1", b"c".to_vec(), PutOptions::default()).await.unwrap();
        clock.advance(Duration::from_secs(11));
        cache.evict_from_l1(b"u1");
        assert!(cache.get(b"u1").await.is_none(), "the tier kept it only 10 s");
        assert!(cache.get(b"u2").await.is_some(), "L1 keeps its own 100 s");
        assert!(cache.invalidate(&Invalidation::Tag("users".into())).await >= 1);
        let removals = cache.tiers()[0].stats.removals;
        assert!(removals[omnicache_core::RemovalCause::Invalidated.index()] >= 1, "{removals:?}");
        assert!(cache.get(b"u2").await.is_none());
        assert!(cache.get(b"o1").await.is_some());
        assert!(
            cache.put(b"", vec![], PutOptions::default()).await.is_err(),
            "empty keys are refused"
        );
    });
}

#[test]
fn stats_count_whole_cache_hits_and_misses_and_the_l1_policy_switches_live() {
    rt().block_on(async {
        let lower = Arc::new(MemoryTier::default());
        let cache =
            TieredCache::builder().tier(lower.clone(), WritePolicy::Through).build().unwrap();
        assert_eq!(cache.l1_policy_name(), "s3fifo");
        cache.put(b"a", b"1".to_vec(), PutOptions::default()).await.unwrap();
        let e = TierEntry::new(b"v".to_vec(), omnicache_core::EntryMeta::new(1));
        Tier::put(&*lower, b"b", e).await.unwrap();
        assert!(cache.get(b"a").await.is_some(), "an L1 hit");
        assert!(cache.get(b"b").await.is_some(), "a tier hit, promoted");
        assert!(cache.get(b"c").await.is_none(), "a miss everywhere");
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.promotions), (2, 1, 1));
        cache.set_l1_policy(Arc::new(omnicache_core::S3FifoFactory::eager()));
        assert_eq!(cache.l1_policy_name(), "s3fifo-eager");
        assert_eq!(cache.l1_entry_count(), 2, "the new policy adopts every entry");
        assert!(cache.get(b"b").await.is_some());
        assert_eq!(cache.stats().hits, 3);
    });
}

#[test]
fn a_tiered_cache_is_a_tier_that_passes_the_conformance_suite() {
    let rt = rt();
    let _guard = rt.enter();
    // Memory only, and memory over a write-through tier: both keep the tier contract, metadata
    // included (the version becomes the cache's own, never older than the caller's).
    rt.block_on(omnicache_core::testkit::check_ordering_tier(|clock| {
        TieredCache::builder().clock(clock).sweep_interval(None).build().unwrap()
    }));
    rt.block_on(omnicache_core::testkit::check_ordering_tier(|clock| {
        TieredCache::builder()
            .clock(clock.clone())
            .sweep_interval(None)
            .tier(Arc::new(MemoryTier::new(clock)), WritePolicy::Through)
            .build()
            .unwrap()
    }));
}

/// The disk tier's SQLite runs off the runtime: with the database's write lock held by another
/// process, a single-threaded runtime keeps answering, the tier's timeout fires (a disk call
/// blocking the runtime in SQLite's 5 s busy wait would end in a busy error instead, after the
/// timeout's deadline, which a blocked runtime cannot enforce) and the breaker opens.
#[test]
fn a_locked_disk_times_out_and_opens_the_breaker_while_gets_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.db");
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build();
    rt.unwrap().block_on(async {
        let clock = MockClock::default();
        let disk = Arc::new(DiskTier::builder(&path).clock(clock.clone()).open().unwrap());
        let timeout = Duration::from_millis(200);
        let cache = TieredCache::builder()
            .clock(clock.clone())
            .sweep_interval(None)
            .tier_with(disk, WritePolicy::Through, |s| TierSettings {
                timeout,
                breaker_threshold: 2,
                ..s
            })
            .build()
            .unwrap();
        cache.put(b"hot", b"in L1".to_vec(), PutOptions::default()).await.unwrap();
        cache.put(b"cold", b"on disk".to_vec(), PutOptions::default()).await.unwrap();
        cache.evict_from_l1(b"cold");
        // Another process takes the database's write lock and keeps it.
        let locker = rusqlite::Connection::open(&path).unwrap();
        locker.execute_batch("BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS held (x);").unwrap();
        assert_eq!(cache.get(b"cold").await.unwrap().value, b"on disk", "readers do not wait");
        for i in 0..2 {
            // The runtime serves L1 while the put waits on the disk.
            let key = format!("new{i}");
            let put = cache.put(key.as_bytes(), b"v".to_vec(), PutOptions::default());
            let (put, hot) = tokio::join!(put, cache.get(b"hot"));
            put.unwrap();
            assert_eq!(hot.unwrap().value, b"in L1");
        }
        let t = &cache.tiers()[0];
        assert_eq!(t.stats.timeouts, 2, "the tier's timeout fired on each write");
        assert_eq!(t.breaker, BreakerState::Open, "two timeouts opened it");
        cache.evict_from_l1(b"cold");
        assert!(cache.get(b"cold").await.is_none(), "the open breaker skips the disk: a miss");
        assert_eq!(cache.tiers()[0].stats.skipped, 1);
        // The lock goes; after the cooldown the trial call finds the entry.
        drop(locker);
        clock.advance(Duration::from_secs(60));
        assert_eq!(cache.get(b"cold").await.unwrap().value, b"on disk");
        assert_eq!(cache.tiers()[0].breaker, BreakerState::Closed);
    });
}

#[test]
fn entries_with_a_data_subject_live_no_longer_than_the_retention_cap() {
    rt().block_on(async {
        let clock = MockClock::default();
        let remote = Arc::new(MemoryTier::new(clock.clone().into()));
        let cache = TieredCache::builder()
            .clock(clock.clone())
            .sweep_interval(None)
            .default_ttl(Duration::from_secs(7_200))
            .subject_retention(Duration::from_secs(600))
            .tier(remote.clone(), WritePolicy::Through)
            .build()
            .unwrap();
        let subject = |ttl: Option<u64>| PutOptions {
            subject: Some("alice".into()),
            ttl: ttl.map(Duration::from_secs),
            ..Default::default()
        };
        cache.put(b"asked-a-day", b"1".to_vec(), subject(Some(86_400))).await.unwrap();
        cache.put(b"default-ttl", b"2".to_vec(), subject(None)).await.unwrap();
        cache.put(b"shorter", b"3".to_vec(), subject(Some(60))).await.unwrap();
        cache.put(b"no-subject", b"4".to_vec(), PutOptions::default()).await.unwrap();
        let created = cache.get(b"asked-a-day").await.unwrap().meta.created;
        assert_eq!(
            cache.get(b"asked-a-day").await.unwrap().meta.expires,
            Some(created + 600_000_000_000)
        );
        assert_eq!(
            cache.get(b"shorter").await.unwrap().meta.expires,
            Some(created + 60_000_000_000),
            "a shorter TTL stays"
        );
        clock.advance(Duration::from_secs(601));
        for k in [&b"asked-a-day"[..], b"default-ttl", b"shorter"] {
            assert!(cache.get(k).await.is_none(), "{}", String::from_utf8_lossy(k));
            cache.evict_from_l1(k);
            assert!(cache.get(k).await.is_none(), "not from the tier either");
        }
        assert!(cache.get(b"no-subject").await.is_some(), "only subject entries are capped");
    });
}
