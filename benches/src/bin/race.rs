//! The throughput race: omnicache, moka, quick_cache and lru+Mutex in one process, interleaved.
//!
//! `cargo run --release -p omnicache-bench --bin race -- --secs 2 --format csv`
//!
//! Zipf s=1.0 over 1,000,000 keys, capacity 100,000, 8-byte values. Mixes: `read` (pre-filled,
//! 100% get), `rw` (90% get, 10% insert), `aside` (get, insert on miss). 1 and 2 threads.
//! Each (mix, threads) cell runs every contender in turn for `--secs`, repeated `--rounds`
//! times, and reports the best round, so that background noise hurts every contender alike.
//! `--policy NAME` runs omnicache on another eviction policy than its default.

use omnicache_bench::{contenders, zipf_keys, Contender};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const UNIVERSE: u64 = 1_000_000;
const CAPACITY: u64 = 100_000;
const KEYS: usize = 1 << 22;

#[derive(Clone, Copy, PartialEq)]
enum Mix {
    Read,
    Rw,
    Aside,
}

impl Mix {
    fn name(self) -> &'static str {
        match self {
            Mix::Read => "read",
            Mix::Rw => "rw",
            Mix::Aside => "aside",
        }
    }
}

/// Runs one contender; returns (operations per second, hit ratio of its gets).
fn run(
    c: &Arc<dyn Contender>,
    mix: Mix,
    threads: usize,
    secs: f64,
    keys: &Arc<Vec<u64>>,
) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let misses = Arc::new(AtomicU64::new(0));
    let gets = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (c, stop, ops, barrier, keys) =
                (c.clone(), stop.clone(), ops.clone(), barrier.clone(), keys.clone());
            let (misses, gets) = (misses.clone(), gets.clone());
            std::thread::spawn(move || {
                let mut i = t * (KEYS / threads.max(1)) + t * 7919;
                let mut n = 0u64;
                let (mut m, mut g) = (0u64, 0u64);
                barrier.wait();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..1024 {
                        let k = keys[i & (KEYS - 1)];
                        i = i.wrapping_add(1);
                        match mix {
                            Mix::Read => {
                                g += 1;
                                m += u64::from(!c.get(k));
                            }
                            Mix::Rw => {
                                if i.is_multiple_of(10) {
                                    c.insert(k, k);
                                } else {
                                    g += 1;
                                    m += u64::from(!c.get(k));
                                }
                            }
                            Mix::Aside => {
                                g += 1;
                                if !c.get(k) {
                                    m += 1;
                                    c.insert(k, k);
                                }
                            }
                        }
                    }
                    n += 1024;
                }
                ops.fetch_add(n, Ordering::Relaxed);
                misses.fetch_add(m, Ordering::Relaxed);
                gets.fetch_add(g, Ordering::Relaxed);
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("worker panicked");
    }
    let rate = ops.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    let g = gets.load(Ordering::Relaxed).max(1) as f64;
    (rate, 1.0 - misses.load(Ordering::Relaxed) as f64 / g)
}

fn main() -> anyhow::Result<()> {
    let mut secs = 2.0f64;
    let mut csv = false;
    let mut rounds = 3usize;
    let mut threads_list = vec![1usize, 2];
    let mut only: Option<String> = None;
    let mut cache_filter: Option<String> = None;
    let mut policy = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => {
                secs =
                    args.next().ok_or_else(|| anyhow::anyhow!("--secs needs a value"))?.parse()?
            }
            "--rounds" => {
                rounds =
                    args.next().ok_or_else(|| anyhow::anyhow!("--rounds needs a value"))?.parse()?
            }
            "--threads" => {
                threads_list = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--threads needs a value"))?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--mix" => only = args.next(),
            "--cache" => cache_filter = args.next(),
            "--policy" => {
                let name = args.next().ok_or_else(|| anyhow::anyhow!("--policy needs a name"))?;
                policy = Some(omnicache_bench::policy_by_name(&name)?);
            }
            "--format" => csv = args.next().as_deref() == Some("csv"),
            "-h" | "--help" => {
                println!("race [--secs S] [--rounds N] [--threads 1,2] [--mix read|rw|aside] [--cache NAME] [--policy NAME] [--format csv|table]");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other:?}; see --help"),
        }
    }
    let keys = Arc::new(zipf_keys(KEYS, UNIVERSE, 1.0, 42));
    if csv {
        println!("cache,mix,threads,value_bytes,ops_per_sec");
    }
    for mix in [Mix::Read, Mix::Rw, Mix::Aside] {
        if only.as_deref().is_some_and(|m| m != mix.name()) {
            continue;
        }
        for &threads in &threads_list {
            let mut caches = contenders(CAPACITY, policy.clone());
            if let Some(name) = &cache_filter {
                // quick_cache stays as the yardstick of the ratio column.
                caches.retain(|c| c.name() == name || c.name() == "quick_cache");
                caches.sort_by_key(|c| c.name() != "quick_cache");
            }
            // Pre-fill: every cache sees the same keys in the same order.
            for c in &caches {
                for &k in keys.iter().take(KEYS / 2) {
                    if !c.get(k) {
                        c.insert(k, k);
                    }
                }
            }
            let mut best = vec![0f64; caches.len()];
            let mut hit = vec![0f64; caches.len()];
            for _ in 0..rounds {
                for (i, c) in caches.iter().enumerate() {
                    let (ops, h) = run(c, mix, threads, secs / rounds as f64, &keys);
                    best[i] = best[i].max(ops);
                    hit[i] = h;
                }
            }
            let quick = caches.iter().position(|c| c.name() == "quick_cache").unwrap_or(0);
            for ((c, ops), h) in caches.iter().zip(&best).zip(&hit) {
                if csv {
                    println!("{},{},{},8,{:.0}", c.name(), mix.name(), threads, ops);
                } else {
                    println!(
                        "{:<12} {:<6} {} threads  {:>14.0} ops/s  ({:.2}x quick_cache)  hit ratio {:.3}",
                        c.name(),
                        mix.name(),
                        threads,
                        ops,
                        ops / best[quick],
                        h
                    );
                }
            }
        }
    }
    Ok(())
}
