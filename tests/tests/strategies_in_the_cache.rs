//! Every strategy from `omnicache-strategies`, driven through the facade's cache: bounds hold,
//! values are right, and switching policies at run time keeps every entry.

use omnicache::strategies::{by_name, NAMES};
use omnicache::sync::Cache;
use omnicache::{MockClock, RemovalCause};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn each_strategy_bounds_the_cache_and_serves_right_values() {
    for name in NAMES {
        let clock = MockClock::default();
        let removed = Arc::new(Mutex::new(0u64));
        let r = removed.clone();
        let cache: Cache<u64, u64> = Cache::builder()
            .max_capacity(64)
            .policy_arc(by_name(name).unwrap())
            .clock(clock.clone())
            .eviction_listener(move |k, v, c| {
                assert_eq!(v, k + 1);
                assert!(matches!(
                    c,
                    RemovalCause::Capacity | RemovalCause::Replaced | RemovalCause::Expired
                ));
                *r.lock().unwrap() += 1;
            })
            .build();
        let mut x = 1u64;
        for i in 0..5_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let k = (x >> 33) % 200;
            if cache.get(&k).is_none() {
                if i % 7 == 0 {
                    cache.insert_with_ttl(k, k + 1, Duration::from_secs(i % 13));
                } else {
                    cache.insert(k, k + 1);
                }
            }
            if i % 100 == 0 {
                clock.advance(Duration::from_secs(1));
            }
        }
        cache.check_invariants().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(cache.entry_count() <= 64, "{name}");
        assert_eq!(cache.policy_name(), by_name(name).unwrap().name());
    }
}

#[test]
fn switching_through_every_strategy_keeps_every_entry() {
    let cache: Cache<u64, String> = Cache::builder().max_capacity(1_000).build();
    for i in 0..800 {
        cache.insert(i, format!("v{i}"));
    }
    for name in NAMES.iter().chain(["lru"].iter()) {
        cache.set_policy_arc(by_name(name).unwrap());
        assert_eq!(cache.entry_count(), 800, "after switching to {name}");
        assert!((0..800).all(|i| cache.get(&i).as_deref() == Some(format!("v{i}").as_str())));
        cache.check_invariants().unwrap();
    }
    // The last policy (LRU) now decides: the 300 least recently used leave first.
    for i in 300..800 {
        cache.get(&i);
    }
    cache.run_pending_tasks();
    for i in 1_000..1_300 {
        cache.insert(i, format!("v{i}"));
    }
    assert_eq!(cache.entry_count(), 1_000);
    let kept_recent = (300..800).filter(|i| cache.contains_key(i)).count();
    assert!(kept_recent >= 450, "LRU kept the recently read entries: {kept_recent}/500");
}
