//! Refresh-ahead and stale-on-error on the memory caches, with the mock clock: an old value is
//! served at once and reloaded once in the background, a failed reload keeps it, a reload never
//! overwrites a newer write, and an expired value is served within the grace only when the
//! loader fails.

use omnicache_core::MockClock;
use omnicache_tiers::memory::{future, sync::Cache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Waits (for the refresh thread, not for a clock) until no load is in flight.
fn reloads_done(cache: &Cache<&'static str, u32>) {
    for _ in 0..10_000_000 {
        if cache.loads_in_flight() == 0 {
            return;
        }
        std::thread::yield_now();
    }
    panic!("the reload never finished");
}

#[test]
fn an_old_value_is_served_at_once_and_reloaded_once_on_a_thread() {
    let clock = MockClock::default();
    let cache: Cache<&str, u32> = Cache::builder()
        .max_capacity(10)
        .clock(clock.clone())
        .refresh_after_write(Duration::from_secs(60))
        .build();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    assert_eq!(
        *cache
            .try_get_with_refresh("k", move || {
                r.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(1)
            })
            .as_ref()
            .unwrap(),
        1
    );
    clock.advance(Duration::from_secs(30));
    let never = || -> Result<u32, String> { panic!("not due") };
    assert_eq!(cache.try_get_with_refresh("k", never).unwrap(), 1);

    clock.advance(Duration::from_secs(31));
    let (release, gate) = mpsc::channel::<()>();
    let r = runs.clone();
    let reload = move || {
        r.fetch_add(1, Ordering::SeqCst);
        gate.recv().unwrap();
        Ok::<_, String>(2)
    };
    assert_eq!(cache.try_get_with_refresh("k", reload).unwrap(), 1, "served at once");
    for _ in 0..3 {
        let other = || -> Result<u32, String> { panic!("one reload at a time") };
        assert_eq!(cache.try_get_with_refresh("k", other).unwrap(), 1);
    }
    release.send(()).unwrap();
    reloads_done(&cache);
    assert_eq!(cache.get(&"k"), Some(2), "the reload replaced it");
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    // A failed reload keeps the old value and is counted.
    clock.advance(Duration::from_secs(61));
    assert_eq!(cache.try_get_with_refresh("k", || Err::<u32, _>("down".to_string())).unwrap(), 2);
    reloads_done(&cache);
    assert_eq!(cache.get(&"k"), Some(2));
    let s = cache.read_through_stats();
    assert_eq!((s.refreshes, s.refresh_failures), (2, 1));

    // A reload that finishes after a newer write is dropped.
    clock.advance(Duration::from_secs(61));
    let (release, gate) = mpsc::channel::<()>();
    let slow = move || {
        gate.recv().unwrap();
        Ok::<_, String>(3)
    };
    assert_eq!(cache.try_get_with_refresh("k", slow).unwrap(), 2);
    clock.advance(Duration::from_millis(1));
    cache.insert("k", 4);
    release.send(()).unwrap();
    reloads_done(&cache);
    assert_eq!(cache.get(&"k"), Some(4), "the newer write stays");
}

#[test]
fn an_expired_value_is_served_within_the_grace_only_when_the_loader_fails() {
    let clock = MockClock::default();
    let cache: Cache<&str, u32> = Cache::builder()
        .max_capacity(10)
        .clock(clock.clone())
        .time_to_live(Duration::from_secs(10))
        .stale_if_error(Duration::from_secs(60))
        .build();
    cache.insert("k", 1);
    clock.advance(Duration::from_secs(20));
    cache.run_pending_tasks();
    assert_eq!(cache.get(&"k"), None, "expired for every plain read");
    assert!(!cache.contains_key(&"k"));
    assert_eq!(cache.try_get_with("k", || Err::<u32, _>("down")).unwrap(), 1, "stale");
    assert_eq!(cache.read_through_stats().stale_served, 1);
    assert_eq!(cache.try_get_with("k", || Ok::<_, &str>(2)).unwrap(), 2, "a working loader wins");
    clock.advance(Duration::from_secs(10 + 61));
    cache.run_pending_tasks();
    assert_eq!(*cache.try_get_with("k", || Err::<u32, _>("down")).unwrap_err(), "down");
    assert_eq!(cache.entry_count(), 0, "reclaimed once the grace passed");
}

#[test]
fn the_async_cache_refreshes_on_a_task_and_serves_stale_on_error() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let clock = MockClock::default();
        let cache: future::Cache<u32, u32> = future::Cache::builder()
            .max_capacity(10)
            .clock(clock.clone())
            .time_to_live(Duration::from_secs(100))
            .refresh_after_write(Duration::from_secs(10))
            .stale_if_error(Duration::from_secs(60))
            .build();
        assert_eq!(cache.try_get_with_refresh(1, async { Ok::<_, String>(1) }).await.unwrap(), 1);
        clock.advance(Duration::from_secs(11));
        assert_eq!(cache.try_get_with_refresh(1, async { Ok::<_, String>(2) }).await.unwrap(), 1);
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert_eq!(cache.get(&1), Some(2), "reloaded on a task");
        assert_eq!(cache.read_through_stats().refreshes, 1);

        clock.advance(Duration::from_secs(120));
        let stale = cache.try_get_with(1, async { Err::<u32, _>("down") }).await.unwrap();
        assert_eq!(stale, 2);
        assert_eq!(cache.read_through_stats().stale_served, 1);
    });
}
