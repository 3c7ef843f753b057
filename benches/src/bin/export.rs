//! Peak memory of an export: a tiered cache (L1 of 10,000 over a disk tier) holding 1,000,000
//! entries of 100 bytes, exported to a sink; the peak resident memory during the export,
//! against the resident memory before it, and the same for collecting every key first (what
//! export did before it streamed).
//!
//! `cargo run --release -p omnicache-bench --bin export -- [--entries N]`

use omnicache::tiers::disk::DiskTier;
use omnicache::tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use omnicache::tiers::warm::export;
use std::sync::Arc;
use std::time::Instant;

/// A line of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Resets the peak resident memory (VmHWM) to the current one (Linux 4.0+).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() -> anyhow::Result<()> {
    let mut entries = 1_000_000u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--entries" => entries = args.next().unwrap_or_default().parse()?,
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let dir = tempfile::tempdir()?;
    rt.block_on(async {
        let disk = Arc::new(DiskTier::builder(dir.path().join("export.db")).max_bytes(u64::MAX).open()?);
        let cache = TieredCache::builder()
            .l1_capacity(10_000)
            .sweep_interval(None)
            .tier(disk, WritePolicy::Through)
            .build()?;
        let started = Instant::now();
        for chunk in (0..entries).collect::<Vec<_>>().chunks(1_000) {
            let items = chunk
                .iter()
                .map(|i| (format!("key:{i:08}").into_bytes(), vec![b'x'; 100], PutOptions::default()))
                .collect();
            cache.put_many(items).await?;
        }
        println!("stored {entries} entries in {:.1?}", started.elapsed());

        let before = status_kib("VmRSS:");
        reset_peak();
        let started = Instant::now();
        let n = export(&cache, b"", std::io::sink()).await?;
        let peak = status_kib("VmHWM:");
        println!(
            "export (streamed): {n} records in {:.1?}; RSS before {} MiB, peak during {} MiB (+{} MiB)",
            started.elapsed(),
            before / 1024,
            peak / 1024,
            peak.saturating_sub(before) / 1024
        );

        let before = status_kib("VmRSS:");
        reset_peak();
        let keys = cache.tier_keys(b"").await;
        let peak = status_kib("VmHWM:");
        println!(
            "collecting every key first (the old export's first step): {} keys; peak +{} MiB",
            keys.len(),
            peak.saturating_sub(before) / 1024
        );
        anyhow::Ok(())
    })
}
