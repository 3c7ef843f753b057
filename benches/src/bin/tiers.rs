//! Disk tier and tiered cache figures: get latency on the disk tier, and warming from JSONL.
//!
//! `cargo run --release -p omnicache-bench --bin tiers -- [--entries N]`

use omnicache::core::{EntryMeta, Tier, TierEntry};
use omnicache::tiers::disk::DiskTier;
use omnicache::tiers::tiered::{TieredCache, WritePolicy};
use omnicache::tiers::warm::{warm, WarmFormat, WarmOptions};
use std::sync::Arc;
use std::time::Instant;

fn percentile(v: &mut [u64], q: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    let mut warm_sizes = vec![10_000usize, 1_000_000];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--entries" => {
                warm_sizes = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let dir = tempfile::tempdir()?;

    // Disk tier get latency: 100,000 entries of 100 bytes, 200,000 random gets.
    let tier = DiskTier::open(dir.path().join("latency.db"))?;
    let n = 100_000u64;
    rt.block_on(async {
        let started = Instant::now();
        for i in 0..n {
            let e = TierEntry { value: vec![(i % 251) as u8; 100], meta: EntryMeta::new(i) };
            tier.put(format!("key:{i}").as_bytes(), e).await?;
        }
        println!(
            "disk put (one transaction each): {:.1} µs/op",
            started.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        let mut lat = Vec::with_capacity(200_000);
        let mut x = 88172645463325252u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = format!("key:{}", x % n);
            let t = Instant::now();
            let got = tier.get(k.as_bytes()).await?;
            lat.push(t.elapsed().as_nanos() as u64);
            assert!(got.is_some());
        }
        println!(
            "disk get: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
            percentile(&mut lat, 0.5) as f64 / 1e3,
            percentile(&mut lat, 0.99) as f64 / 1e3,
            percentile(&mut lat, 0.999) as f64 / 1e3
        );
        Ok::<(), omnicache::Error>(())
    })?;

    // Warming from JSONL into L1 + disk (write-through).
    for &size in &warm_sizes {
        let mut jsonl = String::with_capacity(size * 160);
        for i in 0..size {
            jsonl.push_str(&format!(
                "{{\"key\":\"warm:{i}\",\"value\":\"{}\",\"ttl_secs\":3600}}\n",
                "v".repeat(100)
            ));
        }
        let disk = Arc::new(DiskTier::open(dir.path().join(format!("warm-{size}.db")))?);
        let report = rt.block_on(async {
            let cache = TieredCache::builder()
                .l1_capacity(100_000)
                .tier(disk.clone(), WritePolicy::Through)
                .build()?;
            let started = Instant::now();
            let r =
                warm(&cache, jsonl.as_bytes(), WarmFormat::Jsonl, WarmOptions::default()).await?;
            Ok::<_, omnicache::Error>((r, started.elapsed()))
        })?;
        println!(
            "warm {size} entries from JSONL (L1 + disk, write-through): {:.3} s ({} loaded, {} skipped)",
            report.1.as_secs_f64(),
            report.0.loaded,
            report.0.skipped.len()
        );
    }
    Ok(())
}
