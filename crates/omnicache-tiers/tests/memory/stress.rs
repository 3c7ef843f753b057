//! 100,000 mixed operations on 2 threads, then the invariants.

use omnicache_core::RemovalCause;
use omnicache_tiers::memory::sync::Cache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn two_threads_hundred_thousand_mixed_operations() {
    let removed = Arc::new(AtomicU64::new(0));
    let r = removed.clone();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(1_000)
        .time_to_live(Duration::from_secs(3600))
        .stats(true)
        .eviction_listener(move |k, v, _c: RemovalCause| {
            assert_eq!(v, k * 3, "a value never belongs to another key");
            r.fetch_add(1, Ordering::Relaxed);
        })
        .build();
    let inserts = Arc::new(AtomicU64::new(0));
    let gets = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..2u64)
        .map(|t| {
            let (cache, inserts, gets) = (cache.clone(), inserts.clone(), gets.clone());
            std::thread::spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                for i in 0..50_000u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = x % 5_000;
                    match i % 10 {
                        0..=5 => {
                            gets.fetch_add(1, Ordering::Relaxed);
                            if let Some(v) = cache.get(&k) {
                                assert_eq!(v, k * 3);
                            }
                        }
                        6..=8 => {
                            inserts.fetch_add(1, Ordering::Relaxed);
                            cache.insert(k, k * 3);
                        }
                        _ => {
                            cache.invalidate(&k);
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    cache.check_invariants().unwrap();
    assert!(cache.entry_count() <= 1_000);
    let s = cache.stats().unwrap();
    assert_eq!(s.hits + s.misses, gets.load(Ordering::Relaxed), "every get counted once");
    cache.invalidate_all();
    assert_eq!(
        removed.load(Ordering::Relaxed),
        inserts.load(Ordering::Relaxed),
        "every insert leaves exactly once (replaced, removed, evicted or invalidated)"
    );
}
