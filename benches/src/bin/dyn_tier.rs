//! What the boxed `DynTier` twin costs per call against `Tier`'s native `impl Future` (ADR
//! 0009): an in-process tier (where the box is most of the call) and the disk tier (where it is
//! not), each called both ways in alternating rounds.
//!
//! `cargo run --release -p omnicache-bench --bin dyn_tier`

use omnicache::core::{DynTier, EntryMeta, Invalidation, Result, ScanPage, Tier, TierEntry};
use omnicache::tiers::disk::DiskTier;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A tier as cheap as a tier can be: a map under a lock.
#[derive(Debug, Default)]
struct MapTier(Mutex<HashMap<Vec<u8>, TierEntry>>);

impl Tier for MapTier {
    fn name(&self) -> &str {
        "map"
    }
    async fn get(&self, key: &[u8]) -> Result<Option<TierEntry>> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    async fn put(&self, key: &[u8], entry: TierEntry) -> Result<()> {
        self.0.lock().unwrap().insert(key.to_vec(), entry);
        Ok(())
    }
    async fn remove(&self, key: &[u8]) -> Result<bool> {
        Ok(self.0.lock().unwrap().remove(key).is_some())
    }
    async fn invalidate(&self, _what: &Invalidation) -> Result<u64> {
        Ok(0)
    }
    async fn scan(&self, _p: &[u8], _c: Option<&[u8]>, _l: usize) -> Result<ScanPage> {
        Ok(ScanPage::default())
    }
}

/// Nanoseconds per get over `n` gets of `keys`, through the concrete type or the trait object.
async fn per_get<T: Tier>(tier: &Arc<T>, keys: &[Vec<u8>], n: usize, boxed: bool) -> f64 {
    let as_dyn: Arc<dyn DynTier> = tier.clone();
    let started = Instant::now();
    let mut found = 0usize;
    for i in 0..n {
        let k = &keys[i % keys.len()];
        let hit = if boxed { DynTier::get(&*as_dyn, k).await } else { Tier::get(&**tier, k).await };
        found += usize::from(matches!(hit, Ok(Some(_))));
    }
    assert_eq!(found, n, "every key is there");
    started.elapsed().as_nanos() as f64 / n as f64
}

async fn race<T: Tier>(name: &str, tier: Arc<T>, entries: usize, n: usize) -> Result<()> {
    let keys: Vec<Vec<u8>> = (0..entries).map(|i| format!("key:{i}").into_bytes()).collect();
    for k in &keys {
        tier.put(k, TierEntry::new(vec![7; 100], EntryMeta::new(1))).await?;
    }
    let (mut native, mut boxed) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        native.push(per_get(&tier, &keys, n, false).await);
        boxed.push(per_get(&tier, &keys, n, true).await);
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (a, b) = (best(&native), best(&boxed));
    println!(
        "{name:<6} native {a:>9.1} ns/get   DynTier {b:>9.1} ns/get   boxed/native {:.3}",
        b / a
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        race("map", Arc::new(MapTier::default()), 10_000, 2_000_000).await?;
        let dir = tempfile::tempdir()?;
        let disk = Arc::new(DiskTier::open(dir.path().join("dyn.db"))?);
        race("disk", disk, 10_000, 100_000).await?;
        Ok(())
    })
}
