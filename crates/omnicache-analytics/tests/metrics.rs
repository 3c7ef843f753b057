//! The exposition of known samples, parsed back: every family named by the conventions, every
//! value exact, no key among the labels.

use omnicache_analytics::metrics::{
    registry, render, BreakerState, CacheSample, HttpSample, TierSample,
};
use omnicache_core::RemovalCause;
use std::collections::BTreeMap;

fn sample() -> Vec<CacheSample> {
    vec![
        CacheSample {
            cache: "users".into(),
            hits: 90,
            misses: 10,
            loads_ok: 7,
            loads_failed: 1,
            load_seconds: 0.25,
            removals: vec![
                (RemovalCause::Capacity, 5),
                (RemovalCause::Expired, 2),
                (RemovalCause::Explicit, 3),
            ],
            entries: 1_000,
            weight: 65_536,
            promotions: 4,
            demotions: 6,
            queued_writes: 2,
            missed_invalidations: 1,
            tiers: vec![TierSample {
                tier: "disk".into(),
                hits: 8,
                misses: 2,
                errors: 1,
                timeouts: 0,
                skipped: 3,
                corrupt: 1,
                writes: 100,
                dropped: 0,
                removals: vec![(RemovalCause::Erased, 4)],
                calls: 120,
                call_seconds: 0.5,
                breaker: BreakerState::Open,
                up: false,
            }],
            http: Some(HttpSample {
                hits: 10,
                stale: 3,
                misses: 5,
                stored: 4,
                ..Default::default()
            }),
        },
        CacheSample { cache: "sessions".into(), hits: 1, ..Default::default() },
    ]
}

/// `name{labels} value` lines as a map, comments left out.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn every_value_reads_back_exactly() {
    let text = render(&registry(sample));
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
    let m = parse(&text);
    let v = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in\n{text}"));
    assert_eq!(v(r#"omnicache_cache_gets_total{cache="users",result="hit"}"#), 90.0);
    assert_eq!(v(r#"omnicache_cache_gets_total{cache="users",result="miss"}"#), 10.0);
    assert_eq!(v(r#"omnicache_cache_gets_total{cache="sessions",result="hit"}"#), 1.0);
    assert_eq!(v(r#"omnicache_cache_evictions_total{cache="users",cause="capacity"}"#), 5.0);
    assert_eq!(v(r#"omnicache_cache_evictions_total{cache="users",cause="expired"}"#), 2.0);
    assert!(
        !m.contains_key(r#"omnicache_cache_evictions_total{cache="users",cause="explicit"}"#),
        "an explicit removal is no eviction"
    );
    assert_eq!(v(r#"omnicache_cache_removals_total{cache="users",cause="explicit"}"#), 3.0);
    assert_eq!(v(r#"omnicache_cache_entries{cache="users"}"#), 1000.0);
    assert_eq!(v(r#"omnicache_cache_weight{cache="users"}"#), 65536.0);
    assert_eq!(v(r#"omnicache_cache_loads_total{cache="users",result="failure"}"#), 1.0);
    assert_eq!(v(r#"omnicache_cache_load_duration_seconds_total{cache="users"}"#), 0.25);
    assert_eq!(v(r#"omnicache_cache_promotions_total{cache="users"}"#), 4.0);
    assert_eq!(v(r#"omnicache_cache_write_queue_depth{cache="users"}"#), 2.0);
    assert_eq!(
        v(r#"omnicache_tier_requests_total{cache="users",tier="disk",result="skipped"}"#),
        3.0
    );
    assert_eq!(v(r#"omnicache_tier_corrupt_entries_total{cache="users",tier="disk"}"#), 1.0);
    assert_eq!(
        v(r#"omnicache_tier_removals_total{cache="users",tier="disk",cause="erased"}"#),
        4.0
    );
    assert_eq!(
        v(r#"omnicache_tier_operation_duration_seconds_total{cache="users",tier="disk"}"#),
        0.5
    );
    assert_eq!(v(r#"omnicache_tier_breaker_state{cache="users",tier="disk",state="open"}"#), 1.0);
    assert_eq!(v(r#"omnicache_tier_breaker_state{cache="users",tier="disk",state="closed"}"#), 0.0);
    assert_eq!(v(r#"omnicache_tier_up{cache="users",tier="disk"}"#), 0.0);
    assert_eq!(
        v(r#"omnicache_http_requests_total{cache="users",result="hit"}"#),
        7.0,
        "stale hits are their own result"
    );
    assert_eq!(v(r#"omnicache_http_requests_total{cache="users",result="stale"}"#), 3.0);
    assert_eq!(v(r#"omnicache_http_stored_total{cache="users"}"#), 4.0);
    // Names: prefix, counters end in _total, units in the name.
    for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
        let mut parts = line.split_whitespace().skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(name.starts_with("omnicache_"), "{line}");
        if kind == "counter" {
            assert!(m.keys().any(|k| k.starts_with(&format!("{name}_total"))), "{line}");
        }
    }
    assert!(!text.contains("key="), "a key is never a label");
}

#[test]
fn a_hundred_caches_render() {
    let many: Vec<CacheSample> = (0..100)
        .map(|i| CacheSample {
            cache: format!("cache-{i}"),
            tiers: sample()[0].tiers.clone(),
            ..sample()[0].clone()
        })
        .collect();
    let text = render(&registry(move || many.clone()));
    assert_eq!(text.matches("omnicache_cache_entries{").count(), 100);
}
