//! A loom model of the memory cache's concurrent insert, get and evict paths.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p omnicache-tiers --test loom --release`
//! (`cargo xtask ci` does). Without `--cfg loom` this file is empty.
#![cfg(loom)]

use loom::thread;
use omnicache_tiers::memory::sync::Cache;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn cache(cap: u64, removed: Arc<AtomicUsize>) -> Cache<u64, u64> {
    Cache::builder()
        .max_capacity(cap)
        .shards(1)
        .eviction_listener(move |k, v, _| {
            assert_eq!(k * 10, v, "a value never belongs to another key");
            removed.fetch_add(1, Ordering::SeqCst);
        })
        .build()
}

#[test]
fn concurrent_inserts_with_eviction_keep_the_invariants() {
    loom::model(|| {
        let removed = Arc::new(AtomicUsize::new(0));
        let c = cache(1, removed.clone());
        let c2 = c.clone();
        let t = thread::spawn(move || {
            c2.insert(1, 10);
        });
        c.insert(2, 20);
        t.join().unwrap();
        c.check_invariants().unwrap();
        assert_eq!(c.entry_count(), 1, "capacity 1 holds one of the two");
        assert_eq!(removed.load(Ordering::SeqCst), 1, "the other was reported once");
        let held = [1u64, 2].iter().filter(|k| c.get(k).is_some()).count();
        assert_eq!(held, 1);
    });
}

#[test]
fn get_during_insert_sees_nothing_or_the_whole_value() {
    loom::model(|| {
        let removed = Arc::new(AtomicUsize::new(0));
        let c = cache(2, removed);
        c.insert(1, 10);
        let c2 = c.clone();
        let t = thread::spawn(move || {
            c2.insert(1, 10); // replace
            c2.insert(3, 30); // evicts one of the two
        });
        let seen = c.get(&1);
        assert!(seen.is_none() || seen == Some(10));
        let seen = c.get(&3);
        assert!(seen.is_none() || seen == Some(30));
        t.join().unwrap();
        c.check_invariants().unwrap();
        assert!(c.entry_count() <= 2);
    });
}

#[test]
fn concurrent_remove_and_insert_of_one_key() {
    loom::model(|| {
        let removed = Arc::new(AtomicUsize::new(0));
        let c = cache(4, removed.clone());
        c.insert(5, 50);
        let c2 = c.clone();
        let t = thread::spawn(move || c2.remove(&5));
        c.insert(5, 50);
        let r = t.join().unwrap();
        c.check_invariants().unwrap();
        // Either the remove came first (the insert then stands) or last (nothing stands).
        match r {
            Some(v) => assert_eq!(v, 50),
            None => unreachable!("5 was present before both operations"),
        }
        let left = c.entry_count();
        assert!(left <= 1);
        // One value replaced or removed, plus the remove's own: 1 or 2 reports in all.
        let n = removed.load(Ordering::SeqCst);
        assert_eq!(n as u64 + left, 2, "every value inserted is held or reported once");
    });
}
