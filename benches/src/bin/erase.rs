//! Erasing one data subject among 1,000,000 entries held in L1, on the disk tier and in Redis
//! (a real `redis-server` started here): the time `TieredCache::erase` takes, then proof from
//! the raw stores (every Redis key and value; the SQLite files) that nothing of the subject is
//! left.
//!
//! `cargo run --release -p omnicache-bench --bin erase -- [--entries N] [--per-subject K] [--l1-only]`

use omnicache::tiers::disk::DiskTier;
use omnicache::tiers::redis::RedisTier;
use omnicache::tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn has(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn main() -> anyhow::Result<()> {
    let (mut n, mut per_subject, mut l1_only) = (1_000_000u32, 10u32, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--entries" => n = args.next().unwrap_or_default().parse()?,
            "--per-subject" => per_subject = args.next().unwrap_or_default().parse()?,
            // L1 alone: how much of the erase is memory's walk over its entries.
            "--l1-only" => l1_only = true,
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let _redis = Killed(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("redis-server ({e}): apt-get install redis-server"))?,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "redis-server did not listen");
        std::thread::sleep(Duration::from_millis(10));
    }
    let url = format!("redis://127.0.0.1:{port}/");
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let redis = Arc::new(
            RedisTier::builder(url.clone()).timeout(Duration::from_secs(10)).connect().await?,
        );
        let disk = Arc::new(DiskTier::open(dir.path().join("erase.db"))?);
        let mut b = TieredCache::builder().l1_capacity(u64::from(n) + 1_000).sweep_interval(None);
        if !l1_only {
            b = b.tier(redis, WritePolicy::Through).tier(disk, WritePolicy::Through);
        }
        let cache = b.build()?;
        // Subjects own `per_subject` entries each; the one erased is subject 4242's.
        let subjects = (n / per_subject).max(1);
        let target = format!("subject-{}", 4242 % subjects);
        let started = Instant::now();
        let batch = 10_000u32;
        for from in (0..n).step_by(batch as usize) {
            let items = (from..(from + batch).min(n))
                .map(|i| {
                    let subject = format!("subject-{}", i % subjects);
                    let value = format!("{subject}:record-{i:07}:{}", "x".repeat(64)).into_bytes();
                    let opts = PutOptions { subject: Some(subject), ..Default::default() };
                    (format!("k{i:07}").into_bytes(), value, opts)
                })
                .collect();
            cache.put_many(items).await?;
        }
        println!(
            "loaded {n} entries ({subjects} subjects) into L1, disk and Redis in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        println!("L1 holds {}", cache.l1_entry_count());
        let mut times = Vec::new();
        let report = {
            let t = Instant::now();
            let r = cache.erase(&target).await;
            times.push(t.elapsed());
            r
        };
        println!(
            "erase {target:?}: {:.1} ms (L1 {}, tiers {:?})",
            times[0].as_secs_f64() * 1e3,
            report.l1,
            report.tiers
        );
        // A second subject, to see the spread.
        let other = format!("subject-{}", 777 % subjects);
        let t = Instant::now();
        let r2 = cache.erase(&other).await;
        println!(
            "erase {other:?}: {:.1} ms (L1 {}, tiers {:?})",
            t.elapsed().as_secs_f64() * 1e3,
            r2.l1,
            r2.tiers
        );
        cache.shutdown().await;

        // The raw stores: no value of the erased subjects.
        let mut conn =
            redis::Client::open(url.as_str())?.get_multiplexed_async_connection().await?;
        let mut cursor = 0u64;
        let (mut keys, mut found) = (0u64, 0u64);
        let needles = [format!("{target}:record"), format!("{other}:record")];
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut conn)
                .await?;
            for k in &batch {
                keys += 1;
                let kind: String = redis::cmd("TYPE").arg(k).query_async(&mut conn).await?;
                if kind == "string" {
                    let v: Vec<u8> = redis::cmd("GET").arg(k).query_async(&mut conn).await?;
                    if needles.iter().any(|n| has(&v, n.as_bytes())) {
                        found += 1;
                    }
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        println!("Redis: {keys} keys read raw, {found} values of an erased subject");
        let mut on_disk = 0;
        for e in std::fs::read_dir(dir.path())? {
            let bytes = std::fs::read(e?.path())?;
            on_disk += needles.iter().filter(|n| has(&bytes, n.as_bytes())).count();
        }
        println!("SQLite files: {on_disk} occurrences of an erased subject's values");
        anyhow::ensure!(found == 0 && on_disk == 0, "something of an erased subject is left");
        Ok::<(), anyhow::Error>(())
    })
}
