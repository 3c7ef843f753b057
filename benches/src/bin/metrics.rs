//! A scrape of 100 caches, two tiers each, rendered as OpenMetrics and as classic text: the
//! time `GET /metrics` spends building its answer (best of 50); and what recording a request's
//! duration costs the request path.
//!
//! `cargo run --release -p omnicache-bench --bin metrics`

use omnicache::analytics::metrics::{
    registry, render, render_classic, BreakerState, CacheSample, TierSample,
};
use omnicache::analytics::server::ServerMetrics;
use omnicache::RemovalCause;
use std::time::Instant;

fn main() {
    let tier = |name: &str| TierSample {
        tier: name.into(),
        hits: 123_456,
        misses: 7_890,
        writes: 99_999,
        removals: RemovalCause::ALL.iter().map(|c| (*c, 42)).collect(),
        calls: 250_000,
        call_seconds: 12.5,
        breaker: BreakerState::Closed,
        up: true,
        ..Default::default()
    };
    let caches: Vec<CacheSample> = (0..100)
        .map(|i| CacheSample {
            cache: format!("cache-{i:03}"),
            hits: 1_000_000 + i,
            misses: 50_000,
            removals: RemovalCause::ALL.iter().map(|c| (*c, 1_000)).collect(),
            entries: 10_000,
            weight: 10_000,
            tiers: vec![tier("disk"), tier("redis")],
            ..Default::default()
        })
        .collect();
    for (what, classic) in [("OpenMetrics", false), ("classic text", true)] {
        let mut best = f64::INFINITY;
        let mut bytes = 0;
        for _ in 0..50 {
            let samples = caches.clone();
            let started = Instant::now();
            let reg = registry(move || samples.clone());
            let text = if classic { render_classic(&reg) } else { render(&reg) };
            best = best.min(started.elapsed().as_secs_f64());
            bytes = text.len();
        }
        println!("{what}: 100 caches x 2 tiers, {bytes} bytes, best of 50: {:.2} ms", best * 1e3);
    }
    // What the request path pays: one labeled histogram observation per request.
    let server = ServerMetrics::default();
    let n = 2_000_000u32;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let started = Instant::now();
        for i in 0..n {
            let status = if i % 10 == 0 { 404 } else { 200 };
            server.observe("/caches/{name}/entries/{key}".into(), "GET", status, 0.000_03);
        }
        best = best.min(started.elapsed().as_secs_f64() * 1e9 / f64::from(n));
    }
    println!(
        "request metrics: {best:.0} ns per request (one labeled histogram observation), best of 5"
    );
}
