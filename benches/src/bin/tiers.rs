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
            let e = TierEntry::new(vec![(i % 251) as u8; 100], EntryMeta::new(i));
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
    resident_memory(&rt, dir.path())?;
    redis_race(&rt)?;
    Ok(())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Resident memory of the whole process after storing 10,000 entries of 1 KiB in L1 + disk.
fn resident_memory(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> anyhow::Result<()> {
    let before = rss_kib();
    rt.block_on(async {
        let disk = Arc::new(DiskTier::open(dir.join("rss.db"))?);
        let cache = TieredCache::builder().l1_capacity(10_000).tier(disk, WritePolicy::Through).build()?;
        for i in 0..10_000u32 {
            cache.put(format!("rss:{i}").as_bytes(), vec![(i % 251) as u8; 1024], Default::default()).await?;
        }
        for i in 0..10_000u32 {
            assert!(cache.get(format!("rss:{i}").as_bytes()).await.is_some());
        }
        println!(
            "resident memory: {:.1} MB for the process after 10,000 entries of 1 KiB in L1 + disk ({:.1} MB more than before)",
            rss_kib() as f64 / 1024.0,
            (rss_kib().saturating_sub(before)) as f64 / 1024.0
        );
        Ok::<(), omnicache::Error>(())
    })?;
    Ok(())
}

/// Per-get cost of the Redis tier against a bare `redis` crate GET loop on the same server, in
/// the same run, interleaved over several rounds (best round each).
fn redis_race(rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    use omnicache::tiers::redis::RedisTier;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut server = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("redis-server: {e} (apt-get install redis-server)"))?;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let url = format!("redis://127.0.0.1:{port}/");
    let result = rt.block_on(async {
        let tier = RedisTier::builder(url.clone()).connect().await?;
        let client = redis::Client::open(url.as_str())?;
        let mut bare = redis::aio::ConnectionManager::new(client).await?;
        let n = 1_000u64;
        for i in 0..n {
            let e = TierEntry::new(vec![1u8; 100], EntryMeta::new(i));
            tier.put(format!("k{i}").as_bytes(), e).await?;
            let _: () =
                redis::AsyncCommands::set(&mut bare, format!("bare:{i}"), vec![1u8; 100]).await?;
        }
        let gets = 20_000u64;
        let (mut best_tier, mut best_bare) = (f64::MAX, f64::MAX);
        for _ in 0..5 {
            let t = Instant::now();
            for i in 0..gets {
                let got = tier.get(format!("k{}", i % n).as_bytes()).await?;
                assert!(got.is_some());
            }
            best_tier = best_tier.min(t.elapsed().as_secs_f64() / gets as f64);
            let t = Instant::now();
            for i in 0..gets {
                let got: Option<Vec<u8>> =
                    redis::AsyncCommands::get(&mut bare, format!("bare:{}", i % n)).await?;
                assert!(got.is_some());
            }
            best_bare = best_bare.min(t.elapsed().as_secs_f64() / gets as f64);
        }
        println!(
            "redis get: tier {:.1} µs, bare redis crate GET {:.1} µs, ratio {:.2}x",
            best_tier * 1e6,
            best_bare * 1e6,
            best_tier / best_bare
        );
        Ok::<(), anyhow::Error>(())
    });
    let _ = server.kill();
    let _ = server.wait();
    result
}
