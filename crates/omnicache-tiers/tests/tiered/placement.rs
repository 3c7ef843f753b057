//! Cost-aware placement, the monthly cost report, sweeping, and restarting over a disk tier.

use super::transform;
use omnicache_core::testkit::MemoryTier;
use omnicache_core::MockClock;
use omnicache_tiers::disk::DiskTier;
use omnicache_tiers::tiered::{CostModel, PutOptions, TierSettings, TieredCache, WritePolicy};
use std::sync::Arc;
use std::time::Duration;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn large_values_skip_small_tiers_and_cold_entries_go_only_to_the_cheapest() {
    rt().block_on(async {
        let redis_like = Arc::new(MemoryTier::default());
        let s3_like = Arc::new(MemoryTier::default());
        let cache = TieredCache::builder()
            .l1_max_value_bytes(1_000)
            .tier_with(redis_like.clone(), WritePolicy::Through, |s| TierSettings {
                max_value_bytes: Some(10_000),
                cost: CostModel::redis(),
                ..s
            })
            .tier_with(s3_like.clone(), WritePolicy::Through, |s| TierSettings {
                cost: CostModel::s3_standard(),
                ..s
            })
            .build()
            .unwrap();
        cache.put(b"small", vec![1; 100], PutOptions::default()).await.unwrap();
        cache.put(b"medium", vec![1; 5_000], PutOptions::default()).await.unwrap();
        cache.put(b"large", vec![1; 50_000], PutOptions::default()).await.unwrap();
        cache
            .put(b"cold", vec![1; 100], PutOptions { cold: true, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(cache.l1_entry_count(), 1, "only the small value is in L1");
        assert_eq!(redis_like.len(), 2, "small and medium fit the Redis-like tier");
        assert_eq!(s3_like.len(), 4, "everything, cold included, is in the cheapest tier");
        for k in [&b"small"[..], b"medium", b"large", b"cold"] {
            assert!(cache.get(k).await.is_some(), "{:?} is served", String::from_utf8_lossy(k));
        }
        assert_eq!(
            cache.l1_entry_count(),
            2,
            "cold was promoted once read; medium and large are too big for L1"
        );
    });
}

#[test]
fn the_cost_report_prices_contents_and_request_rate() {
    rt().block_on(async {
        let clock = MockClock::default();
        let tier = Arc::new(MemoryTier::new(clock.clone().into()));
        let model = CostModel {
            usd_per_gb_month: 100.0,
            usd_per_million_requests: 1.0,
            typical_latency: Duration::ZERO,
        };
        let cache = TieredCache::builder()
            .clock(clock.clone())
            .tier_with(tier, WritePolicy::Through, |s| TierSettings { cost: model, ..s })
            .build()
            .unwrap();
        for i in 0..10u32 {
            cache
                .put(format!("k{i}").as_bytes(), vec![0; 99_998], PutOptions::default())
                .await
                .unwrap();
        }
        clock.advance(Duration::from_secs(30 * 24 * 3600)); // a month of that traffic
        let report = cache.cost_report().await;
        let t = &report.tiers[0];
        let usage = t.usage.expect("the reference tier reports its usage");
        assert_eq!(
            (usage.entries, usage.bytes),
            (10, 1_000_000),
            "keys of 2 bytes, values of 99,998"
        );
        assert!(
            (t.storage_usd_month - 0.1).abs() < 1e-9,
            "1 MB at $100/GB-month: {}",
            t.storage_usd_month
        );
        // 10 puts plus the usage call, over exactly a month, at $1 per million.
        assert!((t.requests_usd_month - 11e-6).abs() < 1e-9, "{}", t.requests_usd_month);
        assert!(
            (report.total_usd_month - (t.storage_usd_month + t.requests_usd_month)).abs() < 1e-12
        );
    });
}

#[test]
fn sweep_deletes_expired_entries_below_and_restarts_bring_entries_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restart.db");
    let clock = MockClock::default();
    rt().block_on(async {
        let disk = Arc::new(DiskTier::builder(&path).clock(clock.clone()).open().unwrap());
        let cache = TieredCache::builder()
            .clock(clock.clone())
            .tier(disk.clone(), WritePolicy::Behind)
            .build()
            .unwrap();
        let ttl = |s| PutOptions { ttl: Some(Duration::from_secs(s)), ..Default::default() };
        cache.put(b"short", b"s".to_vec(), ttl(10)).await.unwrap();
        cache.put(b"long", b"l".to_vec(), ttl(1_000)).await.unwrap();
        cache.put(b"forever", b"f".to_vec(), PutOptions::default()).await.unwrap();
        cache.shutdown().await;
        clock.advance(Duration::from_secs(20));
        assert_eq!(cache.sweep().await, 1, "the expired entry is deleted from disk");
        assert_eq!(
            cache.tiers()[0].stats.removals[omnicache_core::RemovalCause::Expired.index()],
            1
        );
        assert_eq!(disk.stats().expired, 1);
    });
    // A new process: a fresh cache over the same file.
    rt().block_on(async {
        let disk = Arc::new(DiskTier::builder(&path).clock(clock.clone()).open().unwrap());
        let cache = TieredCache::builder()
            .clock(clock.clone())
            .tier(disk, WritePolicy::Through)
            .build()
            .unwrap();
        assert!(cache.get(b"short").await.is_none());
        let long = cache.get(b"long").await.expect("back after the restart");
        assert_eq!(
            long.meta.remaining(cache.now()),
            Some(980_000_000_000),
            "with its remaining TTL"
        );
        assert!(cache.get(b"forever").await.is_some());
        clock.advance(Duration::from_secs(981));
        assert!(cache.get(b"long").await.is_none(), "and it still expires on time");
    });
}

/// A cold entry goes to the cheapest tier even when that tier is written only on eviction
/// (the usual memory, Redis, then S3 on_evict), and to no other.
#[test]
fn a_cold_entry_goes_to_a_cheapest_tier_written_on_eviction() {
    rt().block_on(async {
        let redis_like = Arc::new(MemoryTier::default());
        let s3_like = Arc::new(MemoryTier::default());
        let cache = TieredCache::builder()
            .tier_with(redis_like.clone(), WritePolicy::Through, |s| TierSettings {
                cost: CostModel::redis(),
                ..s
            })
            .tier_with(s3_like.clone(), WritePolicy::OnEvict, |s| TierSettings {
                cost: CostModel::s3_standard(),
                ..s
            })
            .build()
            .unwrap();
        let cold = PutOptions { cold: true, ..Default::default() };
        cache.put(b"archive", vec![7; 100], cold).await.unwrap();
        cache.flush().await;
        assert_eq!((cache.l1_entry_count(), redis_like.len(), s3_like.len()), (0, 0, 1));
        assert_eq!(cache.get(b"archive").await.unwrap().value, vec![7; 100]);
    });
}

#[test]
fn transforms_apply_over_the_disk_tier() {
    let dir = tempfile::tempdir().unwrap();
    let disk = DiskTier::builder(dir.path().join("t.db")).open().unwrap();
    rt().block_on(transform::check_transforms_over(Arc::new(disk)));
}

#[test]
fn batch_and_single_writes_place_identically() {
    rt().block_on(async {
        // A small fast tier written behind, a demotion tier, and a cheap tier written through;
        // L1 takes values up to 1,000 bytes.
        let build = || {
            let tiers: Vec<Arc<MemoryTier>> =
                (0..3).map(|_| Arc::new(MemoryTier::default())).collect();
            let cache = TieredCache::builder()
                .l1_max_value_bytes(1_000)
                .tier_with(tiers[0].clone(), WritePolicy::Behind, |s| TierSettings {
                    max_value_bytes: Some(10_000),
                    cost: CostModel::redis(),
                    ..s
                })
                .tier_with(tiers[1].clone(), WritePolicy::OnEvict, |s| TierSettings {
                    cost: CostModel::local_disk(),
                    ..s
                })
                .tier_with(tiers[2].clone(), WritePolicy::Through, |s| TierSettings {
                    cost: CostModel::s3_standard(),
                    ..s
                })
                .build()
                .unwrap();
            (cache, tiers)
        };
        let items: Vec<(Vec<u8>, Vec<u8>, PutOptions)> =
            [(100, false), (5_000, false), (50_000, false), (100, true), (20_000, true)]
                .iter()
                .enumerate()
                .map(|(i, &(len, cold))| {
                    (
                        format!("k{i}").into_bytes(),
                        vec![i as u8; len],
                        PutOptions { cold, ..Default::default() },
                    )
                })
                .collect();
        let (single, single_tiers) = build();
        for (k, v, o) in items.clone() {
            single.put(&k, v, o).await.unwrap();
        }
        let (batch, batch_tiers) = build();
        batch.put_many(items.clone()).await.unwrap();
        single.flush().await;
        batch.flush().await;
        let keys = |c: &TieredCache| {
            let mut k = c.l1_keys(b"");
            k.sort();
            k
        };
        assert_eq!(keys(&single), keys(&batch), "L1 holds the same keys");
        assert_eq!(keys(&single), vec![b"k0".to_vec()], "only the small, warm value is in L1");
        for (i, (s, b)) in single_tiers.iter().zip(&batch_tiers).enumerate() {
            let (s, b) = (
                omnicache_core::Tier::scan(&**s, b"", None, 100).await.unwrap().keys,
                omnicache_core::Tier::scan(&**b, b"", None, 100).await.unwrap().keys,
            );
            assert_eq!(s, b, "tier {i} holds the same keys");
        }
        let held = |t: &Arc<MemoryTier>| t.len();
        assert_eq!(
            batch_tiers.iter().map(held).collect::<Vec<_>>(),
            vec![2, 0, 5],
            "small and medium in the fast tier, none demoted yet, all in the cheapest"
        );
    });
}

#[test]
fn an_entry_l1_refuses_is_still_served_from_the_tier() {
    #[derive(Debug)]
    struct Refuse;
    impl omnicache_core::AdmissionPolicy for Refuse {
        fn record(&self, _hash: u64) {}
        fn admit(&self, _c: &omnicache_core::EntryInfo, _v: &[omnicache_core::EntryInfo]) -> bool {
            false
        }
    }
    rt().block_on(async {
        let tier = Arc::new(MemoryTier::default());
        let cache = TieredCache::builder()
            .l1_capacity(1)
            .l1_admission(Arc::new(Refuse))
            .tier(tier.clone(), WritePolicy::Through)
            .build()
            .unwrap();
        cache.put(b"a", b"1".to_vec(), PutOptions::default()).await.unwrap();
        cache.put(b"b", b"2".to_vec(), PutOptions::default()).await.unwrap();
        assert_eq!(cache.l1_keys(b""), vec![b"a".to_vec()], "L1 refused b and kept a");
        assert_eq!(cache.get(b"b").await.unwrap().value, b"2", "served from the tier");
    });
}
