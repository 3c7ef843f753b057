//! The memory cache through its public API: behaviour, edge cases, single flight, listeners,
//! statistics, policy switching, and property tests against a reference model.

mod model;
mod read_through;
mod seams;
mod stress;

use omnicache_core::{MockClock, RemovalCause, S3FifoFactory};
use omnicache_tiers::memory::{future, sync::Cache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

type Events = Arc<Mutex<Vec<(u64, u64, RemovalCause)>>>;

fn recording(builder_cap: u64, clock: &MockClock) -> (Cache<u64, u64>, Events) {
    let events: Events = Arc::default();
    let e = events.clone();
    let cache = Cache::builder()
        .max_capacity(builder_cap)
        .clock(clock.clone())
        .eviction_listener(move |k, v, c| e.lock().unwrap().push((k, v, c)))
        .stats(true)
        .build();
    (cache, events)
}

#[test]
fn basic_operations() {
    let cache: Cache<String, u32> = Cache::new(100);
    assert_eq!(cache.get("a"), None);
    cache.insert("a".into(), 1);
    cache.insert("b".into(), 2);
    assert_eq!(cache.get("a"), Some(1));
    assert!(cache.contains_key("b"));
    assert_eq!(cache.entry_count(), 2);
    cache.insert("a".into(), 10);
    assert_eq!(cache.get("a"), Some(10), "insert replaces");
    assert_eq!(cache.entry_count(), 2);
    assert_eq!(cache.remove("a"), Some(10));
    assert_eq!(cache.remove("a"), None);
    cache.invalidate("b");
    assert!(!cache.contains_key("b"));
    assert_eq!(cache.entry_count(), 0);
    cache.check_invariants().unwrap();
}

#[test]
fn capacity_is_respected_and_evictions_are_reported() {
    let clock = MockClock::default();
    let (cache, events) = recording(100, &clock);
    for i in 0..1_000 {
        cache.insert(i, i);
        cache.check_invariants().unwrap();
    }
    assert!(cache.entry_count() <= 100);
    let ev = events.lock().unwrap();
    assert_eq!(ev.len() as u64 + cache.entry_count(), 1_000, "every entry is held or reported");
    assert!(ev.iter().all(|e| e.2 == RemovalCause::Capacity));
    let s = cache.stats().unwrap();
    assert_eq!(s.removals(RemovalCause::Capacity), ev.len() as u64);
}

#[test]
fn frequently_read_entries_survive_a_scan() {
    let cache: Cache<u64, u64> = Cache::builder().max_capacity(1_000).shards(1).build();
    for i in 0..500 {
        cache.insert(i, i);
    }
    for _ in 0..3 {
        for i in 0..500 {
            assert_eq!(cache.get(&i), Some(i));
        }
    }
    for i in 10_000..20_000 {
        cache.insert(i, i); // a one-time scan ten times the cache
    }
    let kept = (0..500).filter(|i| cache.contains_key(i)).count();
    assert!(kept >= 450, "S3-FIFO keeps the hot set through a scan, kept {kept}/500");
}

#[test]
fn ttl_never_returns_an_expired_entry() {
    let clock = MockClock::default();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(100)
        .time_to_live(Duration::from_secs(10))
        .clock(clock.clone())
        .build();
    cache.insert(1, 1);
    clock.advance(Duration::from_secs(9));
    assert_eq!(cache.get(&1), Some(1));
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get(&1), None, "expired at exactly the TTL");
    assert!(!cache.contains_key(&1));
    assert_eq!(cache.iter().count(), 0, "iter skips expired entries");
    cache.run_pending_tasks();
    assert_eq!(cache.entry_count(), 0, "reclaimed by maintenance");
}

#[test]
fn expired_entries_are_reclaimed_by_amortized_maintenance() {
    let clock = MockClock::default();
    let (cache, events) = {
        let events: Events = Arc::default();
        let e = events.clone();
        let c: Cache<u64, u64> = Cache::builder()
            .max_capacity(10_000)
            .time_to_live(Duration::from_secs(1))
            .clock(clock.clone())
            .shards(1)
            .eviction_listener(move |k, v, c| e.lock().unwrap().push((k, v, c)))
            .build();
        (c, events)
    };
    for i in 0..100 {
        cache.insert(i, i);
    }
    clock.advance(Duration::from_secs(2));
    // Writes of other keys sweep a few slots each: 100 stale entries are gone after 25+ writes.
    for i in 1_000..1_030 {
        cache.insert_with_ttl(i, i, Duration::MAX);
    }
    assert_eq!(cache.entry_count(), 30);
    let expired = events.lock().unwrap().iter().filter(|e| e.2 == RemovalCause::Expired).count();
    assert_eq!(expired, 100);
}

#[test]
fn time_to_idle_is_refreshed_by_reads_and_capped_by_ttl() {
    let clock = MockClock::default();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(100)
        .time_to_idle(Duration::from_secs(10))
        .time_to_live(Duration::from_secs(25))
        .clock(clock.clone())
        .build();
    cache.insert(1, 1);
    for _ in 0..2 {
        clock.advance(Duration::from_secs(8));
        assert_eq!(cache.get(&1), Some(1), "read within the idle window");
    }
    clock.advance(Duration::from_secs(8)); // t = 24: idle 8 s, under TTL
    assert_eq!(cache.get(&1), Some(1));
    clock.advance(Duration::from_secs(1)); // t = 25: TTL reached despite reads
    assert_eq!(cache.get(&1), None);
    cache.insert(2, 2);
    clock.advance(Duration::from_secs(10));
    assert_eq!(cache.get(&2), None, "idle for the whole TTI");
}

#[test]
fn per_entry_ttl_and_expiry_policy() {
    struct ByValue;
    impl omnicache_core::ExpiryPolicy<u64, u64> for ByValue {
        fn expire_after_create(&self, _k: &u64, v: &u64, _now: u64) -> Option<Duration> {
            (*v > 0).then(|| Duration::from_secs(*v))
        }
    }
    let clock = MockClock::default();
    let cache: Cache<u64, u64> =
        Cache::builder().max_capacity(100).expire_after(ByValue).clock(clock.clone()).build();
    cache.insert(1, 5);
    cache.insert(2, 0); // never
    cache.insert_with_ttl(3, 100, Duration::from_secs(1));
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get(&3), None, "insert_with_ttl overrides the policy");
    assert_eq!(cache.get(&1), Some(5));
    clock.advance(Duration::from_secs(4));
    assert_eq!(cache.get(&1), None);
    clock.advance(Duration::from_secs(1_000_000));
    assert_eq!(cache.get(&2), Some(0));
}

#[test]
fn zero_and_max_ttl() {
    let clock = MockClock::default();
    let (cache, events) = recording(10, &clock);
    cache.insert_with_ttl(1, 1, Duration::ZERO);
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.entry_count(), 0, "a zero TTL stores nothing");
    assert_eq!(events.lock().unwrap().as_slice(), &[(1, 1, RemovalCause::Expired)]);
    cache.insert_with_ttl(2, 2, Duration::MAX);
    clock.advance(Duration::from_secs(100 * 365 * 24 * 3600));
    assert_eq!(cache.get(&2), Some(2), "Duration::MAX never expires");
    let zero: Cache<u64, u64> = Cache::builder().time_to_live(Duration::ZERO).build();
    zero.insert(1, 1);
    assert_eq!(zero.get(&1), None);
}

#[test]
fn capacity_zero_stores_nothing() {
    let clock = MockClock::default();
    let (cache, events) = recording(0, &clock);
    cache.insert(1, 1);
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.entry_count(), 0);
    assert_eq!(events.lock().unwrap().as_slice(), &[(1, 1, RemovalCause::Capacity)]);
}

#[test]
fn weigher_edge_cases() {
    let causes: Arc<Mutex<Vec<(u64, u32, RemovalCause)>>> = Arc::default();
    let r = causes.clone();
    let cache: Cache<u64, u32> = Cache::builder()
        .max_weight(1_000)
        .weigher(|_k, v: &u32| *v)
        .shards(1)
        .eviction_listener(move |k, v, c| r.lock().unwrap().push((k, v, c)))
        .build();
    cache.insert(1, 0);
    assert_eq!(cache.weighted_size(), 1, "weight 0 counts as 1");
    cache.insert(2, u32::MAX);
    assert_eq!(cache.get(&2), None, "heavier than the cache: not stored");
    cache.insert(3, 1_001);
    assert_eq!(cache.get(&3), None);
    assert_eq!(
        causes.lock().unwrap().as_slice(),
        &[(2, u32::MAX, RemovalCause::Capacity), (3, 1_001, RemovalCause::Capacity)]
    );
    cache.insert(4, 1_000);
    assert_eq!(cache.weighted_size(), 1_000, "exactly the budget fits, evicting the rest");
    cache.check_invariants().unwrap();
    // Replacing a light value with one too heavy removes the key.
    cache.insert(4, 5_000);
    assert_eq!(cache.get(&4), None);
    cache.check_invariants().unwrap();
    let causes = causes.lock().unwrap();
    assert_eq!(
        &causes[causes.len() - 2..],
        &[(4, 1_000, RemovalCause::Replaced), (4, 5_000, RemovalCause::Capacity)]
    );
}

#[test]
fn invalidate_if_and_all_report_explicit() {
    let clock = MockClock::default();
    let (cache, events) = recording(100, &clock);
    for i in 0..10 {
        cache.insert(i, i);
    }
    cache.invalidate_if(|k, _| k % 2 == 0);
    assert_eq!(cache.entry_count(), 5);
    assert!(cache.contains_key(&1) && !cache.contains_key(&2));
    cache.invalidate_all();
    assert_eq!(cache.entry_count(), 0);
    let ev = events.lock().unwrap();
    assert_eq!(ev.len(), 10);
    assert!(ev.iter().all(|e| e.2 == RemovalCause::Explicit));
}

#[test]
fn iter_sees_every_live_entry_once() {
    let cache: Cache<u64, u64> = Cache::new(1_000);
    for i in 0..500 {
        cache.insert(i, i * 2);
    }
    let mut all: Vec<_> = cache.iter().collect();
    all.sort();
    assert_eq!(all, (0..500).map(|i| (i, i * 2)).collect::<Vec<_>>());
}

#[test]
fn stats_add_up() {
    let clock = MockClock::default();
    let (cache, _events) = recording(10, &clock);
    for i in 0..20 {
        cache.insert(i, i);
    }
    let mut hits = 0;
    for i in 0..20 {
        hits += u64::from(cache.get(&i).is_some());
    }
    let _ = cache.get_with(100, || 1);
    let _ = cache.try_get_with(101, || Err::<u64, _>("no"));
    let s = cache.stats().unwrap();
    assert_eq!(s.hits, hits);
    assert_eq!(s.misses, 20 - hits + 2, "one miss per get, one per loader call");
    assert_eq!((s.loads_ok, s.loads_failed), (1, 1));
    assert_eq!(s.removals(RemovalCause::Capacity), 11, "20 + 1 loaded - 10 held");
}

#[test]
fn strategy_switching_keeps_every_entry() {
    #[derive(Debug)]
    struct Fifo;
    #[derive(Debug, Default)]
    struct FifoPolicy(std::collections::VecDeque<u32>);
    impl omnicache_core::EvictionPolicy for FifoPolicy {
        fn name(&self) -> &'static str {
            "fifo"
        }
        fn on_insert(&mut self, slot: u32, _: omnicache_core::EntryInfo) {
            self.0.push_back(slot);
        }
        fn on_access(&mut self, _: u32) {}
        fn on_update(&mut self, _: u32, _: omnicache_core::EntryInfo) {}
        fn on_remove(&mut self, slot: u32) {
            self.0.retain(|&s| s != slot);
        }
        fn evict(&mut self, _: &mut dyn omnicache_core::AccessView) -> Option<u32> {
            self.0.pop_front()
        }
        fn len(&self) -> usize {
            self.0.len()
        }
    }
    impl omnicache_core::PolicyFactory for Fifo {
        fn name(&self) -> &str {
            "fifo"
        }
        fn build(&self, _: u64) -> Box<dyn omnicache_core::EvictionPolicy> {
            Box::<FifoPolicy>::default()
        }
    }
    let cache: Cache<u64, u64> = Cache::builder().max_capacity(200).build();
    for i in 0..150 {
        cache.insert(i, i);
    }
    cache.set_policy(Fifo);
    assert_eq!(cache.policy_name(), "fifo");
    assert_eq!(cache.entry_count(), 150);
    assert!((0..150).all(|i| cache.get(&i) == Some(i)), "every entry kept");
    cache.check_invariants().unwrap();
    for i in 150..1_000 {
        cache.insert(i, i);
        cache.check_invariants().unwrap();
    }
    cache.set_policy(S3FifoFactory::default());
    assert_eq!(cache.policy_name(), "s3fifo");
    cache.check_invariants().unwrap();
}

#[test]
fn get_with_runs_one_loader_for_many_threads() {
    let cache: Cache<u64, u64> = Cache::new(100);
    let runs = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (cache, runs, barrier) = (cache.clone(), runs.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                cache.get_with(7, || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50)); // keep the flight open
                    42
                })
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 42);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(cache.loads_in_flight(), 0);
}

#[test]
fn a_load_that_finishes_between_a_miss_and_the_next_lead_is_not_run_again() {
    // Instant loaders on the same keys in the same order: callers often miss just before
    // another caller's load completes and removes its flight. Each key still loads once.
    let keys = 5_000u64;
    let cache: Cache<u64, u64> = Cache::new(keys);
    let runs = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (cache, runs, barrier) = (cache.clone(), runs.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for k in 0..keys {
                    let v = cache.get_with(k, || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        k * 2
                    });
                    assert_eq!(v, k * 2);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(runs.load(Ordering::SeqCst), keys as usize, "one load per key");
}

#[test]
fn try_get_with_shares_the_error_and_caches_nothing() {
    let cache: Cache<u64, u64> = Cache::new(100);
    let runs = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (cache, runs, barrier) = (cache.clone(), runs.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                cache.try_get_with(1, || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    Err::<u64, String>("boom".into())
                })
            })
        })
        .collect();
    let errs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap().unwrap_err()).collect();
    assert!(errs.iter().all(|e| e.as_str() == "boom"));
    let runs = runs.load(Ordering::SeqCst);
    assert!((1..8).contains(&runs), "waiters share a run's error ({runs} runs for 8 callers)");
    assert!(!cache.contains_key(&1));
}

#[test]
fn a_panicking_loader_releases_the_waiters() {
    let cache: Cache<u64, u64> = Cache::new(100);
    let started = Arc::new(Barrier::new(2));
    let leader = {
        let (cache, started) = (cache.clone(), started.clone());
        std::thread::spawn(move || {
            cache.get_with(5, || {
                started.wait();
                std::thread::sleep(Duration::from_millis(50));
                panic!("loader failed");
            })
        })
    };
    started.wait();
    // This caller joins the flight, is released when the leader panics, and loads itself.
    let v = cache.get_with(5, || 9);
    assert_eq!(v, 9);
    assert!(leader.join().is_err(), "the panic reaches the leader's caller");
    assert_eq!(cache.get(&5), Some(9));
    assert_eq!(cache.loads_in_flight(), 0);
}

#[test]
fn future_cache_single_flight_and_cancellation() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let cache: future::Cache<u64, u64> = future::Cache::new(100);
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (cache, runs) = (cache.clone(), runs.clone());
                tokio::spawn(async move {
                    cache
                        .get_with(1, async {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            11
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 11);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);

        // A leader whose future is dropped releases its waiter, which then loads.
        let c2 = cache.clone();
        let leader = tokio::spawn(async move {
            c2.get_with(2, async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                0
            })
            .await
        });
        while cache.loads_in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        let c3 = cache.clone();
        let waiter = tokio::spawn(async move { c3.get_with(2, async { 22 }).await });
        tokio::task::yield_now().await;
        leader.abort();
        assert_eq!(waiter.await.unwrap(), 22);
        let e = cache.try_get_with(3, async { Err::<u64, _>(5u8) }).await.unwrap_err();
        assert_eq!(*e, 5);
    });
}
