//! Top keys by Space-Saving on a Zipf(1.0) trace of 10,000,000 requests over 1,000,000 keys:
//! recall of the true top 20 (exact counts kept alongside), the sketch's memory, and its cost
//! per request.
//!
//! `cargo run --release -p omnicache-bench --bin topkeys -- [--requests N] [--keys K] [--capacity C]`

use omnicache::analytics::top::TopKeys;
use std::collections::HashMap;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let (mut requests, mut keys, mut capacity) = (10_000_000usize, 1_000_000u64, 512usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--requests" => requests = args.next().unwrap_or_default().parse()?,
            "--keys" => keys = args.next().unwrap_or_default().parse()?,
            "--capacity" => capacity = args.next().unwrap_or_default().parse()?,
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    let trace = omnicache_bench::zipf_keys(requests, keys, 1.0, 42);
    let names: Vec<Vec<u8>> = trace.iter().map(|k| format!("user:{k}").into_bytes()).collect();
    let mut sketch = TopKeys::new(capacity);
    let started = Instant::now();
    for k in &names {
        sketch.offer(k);
    }
    let ns = started.elapsed().as_secs_f64() * 1e9 / requests as f64;
    let mut exact: HashMap<&[u8], u64> = HashMap::new();
    for k in &names {
        *exact.entry(k.as_slice()).or_default() += 1;
    }
    let mut truth: Vec<(&[u8], u64)> = exact.into_iter().collect();
    truth.sort_by_key(|t| std::cmp::Reverse(t.1));
    let true_top: Vec<&[u8]> = truth.iter().take(20).map(|(k, _)| *k).collect();
    let found = sketch.top(20);
    let hits = found.iter().filter(|t| true_top.contains(&t.key.as_slice())).count();
    println!(
        "Zipf(1.0), {requests} requests over {keys} keys, {capacity} counters: top-20 recall {:.2}, sketch {:.1} KiB, {ns:.0} ns per request",
        hits as f64 / 20.0,
        sketch.memory_bytes() as f64 / 1024.0
    );
    for (i, t) in found.iter().take(5).enumerate() {
        println!(
            "  {i}: {} counted {} (error {}), true {}",
            String::from_utf8_lossy(&t.key),
            t.count,
            t.error,
            truth[i].1
        );
    }
    Ok(())
}
