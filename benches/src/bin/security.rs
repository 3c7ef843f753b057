//! Encryption at rest, measured side by side in one run: the AES-256-GCM transform alone
//! (encrypt + decrypt pairs per second on one core at 1 KiB), and a tiered cache over the disk
//! tier with and without it (writes, and L1-miss reads from disk, 1 KiB values).
//!
//! `cargo run --release -p omnicache-bench --bin security -- [--entries N] [--only plain|encrypted]`

use omnicache::core::{Transform, TransformContext};
use omnicache::security::{Encrypt, KeyRing};
use omnicache::tiers::disk::DiskTier;
use omnicache::tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use std::sync::Arc;
use std::time::Instant;

fn transform_pairs_per_sec(enc: &Encrypt, n: usize) -> f64 {
    let value = vec![0x42u8; 1024];
    let ctx = TransformContext::new(b"bench:key", enc.key_id());
    let started = Instant::now();
    for _ in 0..n {
        let sealed = enc.forward(&value, &ctx).expect("encrypt");
        let back = enc.inverse(&sealed, &ctx).expect("decrypt");
        assert_eq!(back.len(), 1024);
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Microseconds per write and per L1-miss read of `n` 1 KiB entries.
async fn tiered(dir: &std::path::Path, encrypted: bool, n: u32) -> anyhow::Result<(f64, f64)> {
    let disk = Arc::new(DiskTier::open(dir.join(format!("bench-{encrypted}.db")))?);
    let mut b = TieredCache::builder().l1_capacity(16).tier(disk, WritePolicy::Through);
    if encrypted {
        let ring = Arc::new(KeyRing::generate()?);
        b = b.transform(Arc::new(Encrypt::new(ring, "bench")));
    }
    let cache = b.build()?;
    let value = vec![0x42u8; 1024];
    let started = Instant::now();
    for i in 0..n {
        cache.put(format!("k{i}").as_bytes(), value.clone(), PutOptions::default()).await?;
    }
    let write = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    if std::env::var_os("BENCH_WRITES_ONLY").is_some() {
        cache.shutdown().await;
        return Ok((write, 0.0));
    }
    let started = Instant::now();
    for i in 0..n {
        let k = format!("k{}", (u64::from(i) * 7919) % u64::from(n));
        cache.evict_from_l1(k.as_bytes());
        assert!(cache.get(k.as_bytes()).await.is_some());
    }
    let read = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    cache.shutdown().await;
    Ok((write, read))
}

fn main() -> anyhow::Result<()> {
    let mut n = 20_000u32;
    let mut only: Option<bool> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--entries" => n = args.next().unwrap_or_default().parse()?,
            // One tiered run and nothing else, for counting instructions under callgrind:
            // `valgrind --tool=callgrind target/release/security --only encrypted --entries 2000`
            "--only" => only = Some(args.next().unwrap_or_default() == "encrypted"),
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    if let Some(encrypted) = only {
        let rt =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let dir = tempfile::tempdir()?;
        let (w, r) = rt.block_on(tiered(dir.path(), encrypted, n))?;
        println!("encrypted={encrypted}: write {w:.2} us, L1-miss read {r:.2} us");
        return Ok(());
    }
    let ring = Arc::new(KeyRing::generate()?);
    let enc = Encrypt::new(ring, "bench");
    let best = (0..3).map(|_| transform_pairs_per_sec(&enc, 200_000)).fold(0.0, f64::max);
    println!("transform: {best:.0} encrypt+decrypt pairs/s at 1 KiB, one core");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let dir = tempfile::tempdir()?;
    rt.block_on(async {
        let (mut plain, mut sealed) = (Vec::new(), Vec::new());
        for round in 0..4 {
            let sub = dir.path().join(format!("round{round}"));
            std::fs::create_dir(&sub)?;
            // Alternate which goes first, so neither always meets a colder disk.
            if round % 2 == 0 {
                plain.push(tiered(&sub, false, n).await?);
                sealed.push(tiered(&sub, true, n).await?);
            } else {
                sealed.push(tiered(&sub, true, n).await?);
                plain.push(tiered(&sub, false, n).await?);
            }
        }
        let best = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| {
            v.iter().map(f).fold(f64::INFINITY, f64::min)
        };
        let (pw, pr) = (best(&plain, |x| x.0), best(&plain, |x| x.1));
        let (ew, er) = (best(&sealed, |x| x.0), best(&sealed, |x| x.1));
        println!("tiered over disk, {n} entries of 1 KiB, best of 4 rounds (us per operation):");
        println!("  write        plain {pw:8.2}   encrypted {ew:8.2}   ratio {:.3}", ew / pw);
        println!("  L1-miss read plain {pr:8.2}   encrypted {er:8.2}   ratio {:.3}", er / pr);

        // Rotation: re-encrypt 100,000 entries of 1 KiB on the disk tier.
        let ring = Arc::new(KeyRing::generate()?);
        let disk = Arc::new(DiskTier::open(dir.path().join("rotation.db"))?);
        let cache = TieredCache::builder()
            .l1_capacity(1_000)
            .transform(Arc::new(Encrypt::new(ring.clone(), "bench")))
            .tier(disk, WritePolicy::Through)
            .build()?;
        let n = 100_000u32;
        for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
            let items = chunk
                .iter()
                .map(|i| (format!("r{i}").into_bytes(), vec![0x42u8; 1024], PutOptions::default()))
                .collect();
            cache.put_many(items).await?;
        }
        ring.rotate()?;
        let started = Instant::now();
        let report = cache.retransform(1_000, None).await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "rotation: {} of {} entries of 1 KiB re-encrypted on the disk tier in {secs:.2} s",
            report.rewritten, report.scanned
        );
        cache.shutdown().await;

        // The audit log: verify 1,000,000 records.
        let path = dir.path().join("audit.log");
        let key = [7u8; 32];
        {
            let log = omnicache::security::audit::AuditLog::open(&path, &key)?.without_sync();
            for i in 0..1_000_000u64 {
                let entry = omnicache::security::audit::AuditEntry {
                    actor: "admin".into(),
                    action: "cache.clear".into(),
                    cache: Some(format!("cache-{}", i % 100)),
                    target: None,
                    outcome: "ok".into(),
                };
                log.append(entry, 1_700_000_000_000 + i)?;
            }
        }
        let started = Instant::now();
        let head = omnicache::security::audit::verify(&path, &key)?
            .map_err(|b| anyhow::anyhow!("the fresh log does not verify: {b}"))?;
        println!(
            "audit: {} records verified in {:.2} s",
            head.seq,
            started.elapsed().as_secs_f64()
        );
        anyhow::Ok(())
    })
}
