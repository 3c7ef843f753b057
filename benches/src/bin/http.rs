//! The cost of a cache hit through `omnicache-http`'s layer, against a bare axum handler
//! returning the same bytes, measured in the same run with `wrk` at 50 keep-alive connections.
//!
//! `cargo run --release -p omnicache-bench --bin http -- --secs 5 --rounds 6`
//!
//! Both servers run in this process on the same runtime (2 worker threads); `wrk` (2 threads)
//! drives one at a time, alternating, so both see the same machine. The layered server keeps its
//! responses in a `TieredCache` (memory only), as `omnicache proxy` does with its memory tier.
//! Prints each run and the ratio of bare to layered throughput (≤ 1.25 is the target).

use axum::routing::get;
use axum::Router;
use omnicache::http::HttpCache;
use omnicache::tiers::tiered::TieredCache;
use std::process::Command;
use std::sync::Arc;

const BODY: &[u8; 100] = &[b'x'; 100];

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wrk(port: u16, secs: u64) -> (f64, String) {
    let out = Command::new("wrk")
        .args(["-t", "2", "-c", "50", "-d", &format!("{secs}s"), "--latency"])
        .arg(format!("http://127.0.0.1:{port}/item"))
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("wrk printed Requests/sec");
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    assert!(!text.contains("Non-2xx"), "every response must be a 200:\n{text}");
    (rps, p99)
}

fn main() {
    let secs = arg("--secs", 5);
    let rounds = arg("--rounds", 6).max(1);
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (bare_port, cached_port, cache) = rt.block_on(async {
        let handler = || async { ([("cache-control", "max-age=3600")], &BODY[..]) };
        let bare = Router::new().route("/item", get(handler));
        let store = TieredCache::builder().l1_capacity(10_000).build().unwrap();
        let cache = HttpCache::builder(Arc::new(store)).build();
        let cached = Router::new().route("/item", get(handler)).layer(cache.layer());
        let a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ports = (a.local_addr().unwrap().port(), b.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(a, bare).await });
        tokio::spawn(async move { axum::serve(b, cached).await });
        (ports.0, ports.1, cache)
    });
    // Fill the cache once; every measured request is a hit.
    let warm = Command::new("curl")
        .args(["-s", "-o", "/dev/null"])
        .arg(format!("http://127.0.0.1:{cached_port}/item"))
        .status();
    assert!(warm.is_ok_and(|s| s.success()), "curl (apt-get install curl)");
    println!("server,round,requests_per_sec,p99");
    let (mut bare_sum, mut cached_sum) = (0.0, 0.0);
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let (b, b99) = wrk(bare_port, secs);
        let (c, c99) = wrk(cached_port, secs);
        println!("bare axum,{round},{b:.0},{b99}");
        println!("cache hit,{round},{c:.0},{c99}");
        bare_sum += b;
        cached_sum += c;
        ratios.push(b / c);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let stats = cache.stats();
    assert_eq!(stats.misses, 1, "all but the first request were hits: {stats:?}");
    println!(
        "# cost of a hit = bare / layered throughput: {:.3} over all rounds, median round {median:.3} (target <= 1.25); hits {}",
        bare_sum / cached_sum,
        stats.hits
    );
}
