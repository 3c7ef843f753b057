//! Hit latency of `get`, single thread: percentiles over 2,000,000 timed hits on a Zipf
//! workload (s=1.0, 1,000,000 keys, capacity 100,000, TTL on), omnicache beside quick_cache.
//! Each get is timed with the CPU's time-stamp counter (quanta), whose own cost (a few ns) is
//! included and printed as `timer` for reference.
//!
//! `cargo run --release -p omnicache-bench --bin latency`

use omnicache_bench::{contenders, zipf_keys};

fn main() {
    let clock = quanta::Clock::new();
    let keys = zipf_keys(1 << 21, 1_000_000, 1.0, 7);
    println!("cache,p50_ns,p90_ns,p99_ns,p999_ns");
    let mut timer = Vec::with_capacity(keys.len());
    for _ in 0..keys.len() {
        let a = clock.raw();
        let b = clock.raw();
        timer.push(clock.delta_as_nanos(a, b));
    }
    print_row("timer", &mut timer);
    for c in contenders(100_000, None) {
        if c.name() == "moka" || c.name() == "lru+mutex" {
            continue;
        }
        for &k in &keys {
            if !c.get(k) {
                c.insert(k, k);
            }
        }
        let mut samples = Vec::with_capacity(keys.len());
        for &k in &keys {
            let a = clock.raw();
            let hit = c.get(k);
            let b = clock.raw();
            if hit {
                samples.push(clock.delta_as_nanos(a, b));
            }
        }
        print_row(c.name(), &mut samples);
    }
}

fn print_row(name: &str, s: &mut [u64]) {
    s.sort_unstable();
    let p = |q: f64| s[((s.len() as f64 * q) as usize).min(s.len() - 1)];
    println!("{name},{},{},{},{}", p(0.5), p(0.9), p(0.99), p(0.999));
}
