//! A tour of the memory cache: bounds, TTL, single-flight loading, listeners, statistics and
//! switching the eviction policy on a live cache.
//!
//! `cargo run -p omnicache --example quickstart --features full`

use omnicache::strategies::by_name;
use omnicache::sync::Cache;
use omnicache::RemovalCause;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let evicted = Arc::new(AtomicU64::new(0));
    let e = evicted.clone();
    let cache: Cache<u64, String> = Cache::builder()
        .max_capacity(10_000)
        .time_to_live(Duration::from_secs(60))
        .eviction_listener(move |_k, _v, cause| {
            if cause == RemovalCause::Capacity {
                e.fetch_add(1, Ordering::Relaxed);
            }
        })
        .stats(true)
        .build();

    // Cache-aside: 80% of requests go to 5,000 hot keys, 20% to a million cold ones.
    let loads = AtomicU64::new(0);
    let mut x = 1u64;
    for _ in 0..200_000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let r = x >> 33;
        let key = if r % 10 < 8 { r % 5_000 } else { r % 1_000_000 };
        let value = cache.get_with(key, || {
            loads.fetch_add(1, Ordering::Relaxed);
            format!("value of {key}")
        });
        assert_eq!(value, format!("value of {key}"));
    }
    let s = cache.stats().expect("statistics are on");
    println!("policy:        {}", cache.policy_name());
    println!("entries:       {} of {}", cache.entry_count(), cache.max_weight());
    println!("hit ratio:     {:.1}%", 100.0 * s.hit_ratio());
    println!("loader runs:   {}", loads.load(Ordering::Relaxed));
    println!("evictions:     {}", evicted.load(Ordering::Relaxed));

    // Switch to LRU without losing anything.
    let before = cache.entry_count();
    cache.set_policy_arc(by_name("lru").expect("lru is built in"));
    println!(
        "switched to {}: {} entries kept of {before}",
        cache.policy_name(),
        cache.entry_count()
    );
}
