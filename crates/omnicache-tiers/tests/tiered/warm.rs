//! Warming from JSON, JSONL and CSV, and export/import round trips.

use omnicache_core::testkit::MemoryTier;
use omnicache_core::MockClock;
use omnicache_tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use omnicache_tiers::warm::{export, import, warm, WarmFormat, WarmOptions};
use std::sync::Arc;
use std::time::Duration;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn cache(clock: &MockClock) -> (TieredCache, Arc<MemoryTier>) {
    let tier = Arc::new(MemoryTier::new(clock.clone().into()));
    let c = TieredCache::builder()
        .clock(clock.clone())
        .tier(tier.clone(), WritePolicy::Through)
        .build()
        .unwrap();
    (c, tier)
}

#[test]
fn jsonl_skips_bad_rows_with_line_numbers_and_reports_progress() {
    rt().block_on(async {
        let clock = MockClock::default();
        let (c, _) = cache(&clock);
        let input = r#"{"key":"a","value":"1"}
{"key":"b","value":{"nested":true},"ttl_secs":30,"tags":["t"]}
not json at all

{"key":"","value":"x"}
{"key":"c"}
{"key":"d","value":"4","ttl_secs":-1}
{"key":"e","value_hex":"00ff"}
"#;
        let mut seen = Vec::new();
        let mut progress = |n: u64| seen.push(n);
        let report = warm(
            &c,
            input.as_bytes(),
            WarmFormat::Jsonl,
            WarmOptions { progress_every: 2, progress: Some(&mut progress), ..Default::default() },
        )
        .await
        .unwrap();
        assert_eq!(report.rows, 7, "blank lines are not rows");
        assert_eq!(report.loaded, 3);
        let lines: Vec<u64> = report.skipped.iter().map(|s| s.0).collect();
        assert_eq!(lines, vec![3, 5, 6, 7], "{:?}", report.skipped);
        assert!(report.skipped[1].1.contains("empty key"));
        assert!(report.skipped[2].1.contains("no value"));
        assert_eq!(seen, vec![2, 4, 6]);
        assert_eq!(c.get(b"b").await.unwrap().value, br#"{"nested":true}"#);
        assert_eq!(c.get(b"e").await.unwrap().value, vec![0, 255]);
        clock.advance(Duration::from_secs(31));
        assert!(c.get(b"b").await.is_none(), "ttl_secs applied");
        assert!(c.get(b"a").await.is_some());
    });
}

#[test]
fn json_arrays_objects_and_csv() {
    rt().block_on(async {
        let clock = MockClock::default();
        let (c, _) = cache(&clock);
        let r = warm(
            &c,
            r#"[{"key":"x","value":"1"},{"nope":1}]"#.as_bytes(),
            WarmFormat::Json,
            WarmOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!((r.loaded, r.skipped.len(), r.skipped[0].0), (1, 1, 2));
        let r = warm(&c, r#"{"y":"2","z":3}"#.as_bytes(), WarmFormat::Json, WarmOptions::default())
            .await
            .unwrap();
        assert_eq!(r.loaded, 2);
        assert_eq!(c.get(b"z").await.unwrap().value, b"3");
        let bad =
            warm(&c, "[1,".as_bytes(), WarmFormat::Json, WarmOptions::default()).await.unwrap_err();
        assert!(bad.message().contains("line 1"), "{bad}");
        let csv = "key,value,ttl_secs,tags\nk1,v1,,a|b\nk2,v2,5\nbroken\nk3,v3,later\n";
        let r = warm(
            &c,
            csv.as_bytes(),
            WarmFormat::Csv,
            WarmOptions { ttl_override: Some(Duration::from_secs(100)), ..Default::default() },
        )
        .await
        .unwrap();
        assert_eq!(r.loaded, 2);
        assert_eq!(r.skipped.iter().map(|s| s.0).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(c.get(b"k1").await.unwrap().meta.tags, vec!["a", "b"]);
        clock.advance(Duration::from_secs(50));
        assert!(c.get(b"k2").await.is_some(), "the override (100 s) replaced the row's 5 s");
    });
}

#[test]
fn export_then_import_round_trips_exactly() {
    rt().block_on(async {
        let clock = MockClock::default();
        let (a, _) = cache(&clock);
        a.put(
            b"user:1",
            b"Ada".to_vec(),
            PutOptions {
                ttl: Some(Duration::from_secs(60)),
                tags: vec!["users".into()],
                subject: Some("ada".into()),
                cold: false,
            },
        )
        .await
        .unwrap();
        a.put(b"user:2", vec![0, 159, 146, 150], PutOptions::default()).await.unwrap();
        a.put(b"order:1", b"o".to_vec(), PutOptions::default()).await.unwrap();
        a.evict_from_l1(b"user:2"); // only in the tier: export must still find it
        let mut buf = Vec::new();
        assert_eq!(export(&a, b"user:", &mut buf).await.unwrap(), 2);
        clock.advance(Duration::from_secs(10));
        let (b, tier_b) = cache(&clock);
        let r = import(&b, buf.as_slice(), WarmOptions::default()).await.unwrap();
        assert_eq!((r.loaded, r.skipped.len()), (2, 0));
        assert_eq!(tier_b.len(), 2);
        let u1 = b.get(b"user:1").await.unwrap();
        assert_eq!(u1.value, b"Ada");
        assert_eq!(u1.meta.tags, vec!["users"]);
        assert_eq!(u1.meta.subject.as_deref(), Some("ada"));
        assert_eq!(
            u1.meta.remaining(b.now()),
            Some(60_000_000_000),
            "the remaining TTL at export time"
        );
        assert_eq!(
            b.get(b"user:2").await.unwrap().value,
            vec![0, 159, 146, 150],
            "binary values survive"
        );
        assert!(b.get(b"order:1").await.is_none(), "outside the prefix");
    });
}

/// Keys that are not UTF-8 survive an export and import (as `key_base64`), and an export walks
/// keys in order across L1 and a tier of several pages, each once.
#[test]
fn binary_keys_round_trip_and_an_export_merges_l1_and_tier_pages_in_order() {
    rt().block_on(async {
        let clock = MockClock::default();
        let (a, _) = cache(&clock);
        let binary = vec![b'k', 0xff, 0xfe, 0];
        a.put(&binary, b"bin".to_vec(), PutOptions::default()).await.unwrap();
        // 2,500 keys: more than two tier pages; some also in L1, some only in the tier.
        let items: Vec<_> = (0..2_500u32)
            .map(|i| (format!("k{i:05}").into_bytes(), vec![b'v'], PutOptions::default()))
            .collect();
        a.put_many(items).await.unwrap();
        for i in (0..2_500u32).step_by(3) {
            a.evict_from_l1(format!("k{i:05}").as_bytes());
        }
        let mut buf = Vec::new();
        assert_eq!(export(&a, b"k", &mut buf).await.unwrap(), 2_501, "each key once");
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.contains(r#""key_base64":"a//+AA==""#), "the binary key, marked");
        let keys: Vec<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["key"].as_str().map(str::to_string))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "in key order");
        let (b, _) = cache(&clock);
        let r = import(&b, buf.as_slice(), WarmOptions::default()).await.unwrap();
        assert_eq!((r.loaded, r.skipped.len()), (2_501, 0));
        assert_eq!(b.get(&binary).await.unwrap().value, b"bin", "the exact key came back");
        let bad = br#"{"key":"x","key_base64":"eA==","value":"v"}
{"key_base64":"not base64!","value":"v"}
"#;
        let r = import(&b, bad.as_slice(), WarmOptions::default()).await.unwrap();
        assert_eq!(r.skipped.len(), 2, "{:?}", r.skipped);
    });
}
