//! Read-through with `get_with` / `try_get_with`: the tiers before the loader, one loader run
//! per key however many callers wait, errors shared and not cached, an abandoned lead released.

use omnicache_core::testkit::MemoryTier;
use omnicache_core::{MockClock, Tier};
use omnicache_tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// One thread: spawned callers run until they wait, so the test knows who waits for what.
fn rt1() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn cache_over(tier: &Arc<MemoryTier>) -> TieredCache {
    TieredCache::builder().tier(tier.clone(), WritePolicy::Through).build().unwrap()
}

#[test]
fn many_callers_share_one_loader_run_and_the_value_is_stored_everywhere() {
    rt1().block_on(async {
        let tier = Arc::new(MemoryTier::default());
        let cache = cache_over(&tier);
        let runs = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let (cache, runs, release) = (cache.clone(), runs.clone(), release.clone());
                tokio::spawn(async move {
                    cache
                        .get_with(b"user:1", PutOptions::default(), || async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            release.notified().await;
                            b"Ada".to_vec()
                        })
                        .await
                })
            })
            .collect();
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one caller leads, seven wait");
        release.notify_waiters();
        for c in callers {
            assert_eq!(c.await.unwrap().value, b"Ada");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(tier.get(b"user:1").await.unwrap().unwrap().value, b"Ada", "written through");
        let s = cache.stats();
        assert_eq!((s.loads_ok, s.loads_failed), (1, 0));
        // Now a plain hit: the loader is not called.
        let again = cache.get_with(b"user:1", PutOptions::default(), || async { panic!() }).await;
        assert_eq!(again.value, b"Ada");
    });
}

#[test]
fn the_tiers_answer_before_the_loader() {
    rt1().block_on(async {
        let tier = Arc::new(MemoryTier::default());
        cache_over(&tier)
            .put(b"k", b"from the tier".to_vec(), PutOptions::default())
            .await
            .unwrap();
        let cache = cache_over(&tier);
        let e =
            cache.get_with(b"k", PutOptions::default(), || async { panic!("not loaded") }).await;
        assert_eq!(e.value, b"from the tier");
        assert_eq!(cache.stats().loads_ok, 0);
        assert_eq!(cache.l1_keys(b""), vec![b"k".to_vec()], "promoted");
    });
}

#[test]
fn an_error_reaches_every_waiter_and_is_not_cached() {
    rt1().block_on(async {
        let cache = TieredCache::builder().build().unwrap();
        let release = Arc::new(Notify::new());
        let callers: Vec<_> = (0..3)
            .map(|_| {
                let (cache, release) = (cache.clone(), release.clone());
                tokio::spawn(async move {
                    cache
                        .try_get_with(b"k", PutOptions::default(), || async move {
                            release.notified().await;
                            Err::<Vec<u8>, _>("origin down".to_string())
                        })
                        .await
                })
            })
            .collect();
        settle().await;
        release.notify_waiters();
        for c in callers {
            assert_eq!(*c.await.unwrap().unwrap_err(), "origin down");
        }
        assert_eq!(cache.stats().loads_failed, 1, "one run, shared");
        let ok = cache
            .try_get_with(b"k", PutOptions::default(), || async { Ok::<_, String>(b"v".to_vec()) })
            .await
            .unwrap();
        assert_eq!(ok.value, b"v", "the error was not cached");
    });
}

#[test]
fn a_dropped_leader_releases_its_waiters_and_one_of_them_loads() {
    rt1().block_on(async {
        let cache = TieredCache::builder().build().unwrap();
        let never = Arc::new(Notify::new());
        let leader = {
            let (cache, never) = (cache.clone(), never.clone());
            tokio::spawn(async move {
                cache
                    .get_with(b"k", PutOptions::default(), || async move {
                        never.notified().await;
                        b"never".to_vec()
                    })
                    .await
            })
        };
        settle().await;
        let waiter = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache.get_with(b"k", PutOptions::default(), || async { b"mine".to_vec() }).await
            })
        };
        settle().await;
        leader.abort();
        assert_eq!(waiter.await.unwrap().value, b"mine");
    });
}

async fn loads_done(cache: &TieredCache) {
    // A refresh runs on a spawned task; on one thread it finishes once the test yields.
    settle().await;
    let _ = cache;
}

#[test]
fn an_old_entry_is_served_at_once_and_reloaded_once_in_the_background() {
    rt1().block_on(async {
        let clock = MockClock::default();
        let cache = TieredCache::builder()
            .clock(clock.clone())
            .refresh_after_write(Duration::from_secs(60))
            .build()
            .unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let loader = |value: &'static str| {
            let runs = runs.clone();
            move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(value.as_bytes().to_vec())
            }
        };
        let opts = PutOptions::default;
        assert_eq!(cache.try_get_with(b"k", opts(), loader("v1")).await.unwrap().value, b"v1");
        clock.advance(Duration::from_secs(30));
        assert_eq!(cache.try_get_with(b"k", opts(), loader("v2")).await.unwrap().value, b"v1");
        loads_done(&cache).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "not old enough to refresh");

        clock.advance(Duration::from_secs(31));
        // Three reads while the reload is pending: each gets the old value, one reload runs.
        for _ in 0..3 {
            let e = cache.try_get_with(b"k", opts(), loader("v2")).await.unwrap();
            assert_eq!(e.value, b"v1", "served at once");
        }
        loads_done(&cache).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2, "one reload for three reads");
        assert_eq!(cache.get(b"k").await.unwrap().value, b"v2", "the reload replaced it");
        assert_eq!(cache.read_through_stats().refreshes, 1);

        // A failed reload keeps the old value and is counted.
        clock.advance(Duration::from_secs(61));
        let failing = || async { Err::<Vec<u8>, _>("origin down".to_string()) };
        assert_eq!(cache.try_get_with(b"k", opts(), failing).await.unwrap().value, b"v2");
        loads_done(&cache).await;
        assert_eq!(cache.get(b"k").await.unwrap().value, b"v2");
        let s = cache.read_through_stats();
        assert_eq!((s.refreshes, s.refresh_failures), (2, 1));
    });
}

#[test]
fn a_reload_does_not_overwrite_a_newer_write() {
    rt1().block_on(async {
        let clock = MockClock::default();
        let cache = TieredCache::builder()
            .clock(clock.clone())
            .refresh_after_write(Duration::from_secs(1))
            .build()
            .unwrap();
        cache.put(b"k", b"old".to_vec(), PutOptions::default()).await.unwrap();
        clock.advance(Duration::from_secs(2));
        let release = Arc::new(Notify::new());
        let gate = release.clone();
        let reload = move || async move {
            gate.notified().await;
            Ok::<_, String>(b"reloaded".to_vec())
        };
        assert_eq!(
            cache.try_get_with(b"k", PutOptions::default(), reload).await.unwrap().value,
            b"old"
        );
        settle().await;
        cache.put(b"k", b"newer".to_vec(), PutOptions::default()).await.unwrap();
        release.notify_waiters();
        settle().await;
        assert_eq!(cache.get(b"k").await.unwrap().value, b"newer");
    });
}

#[test]
fn an_expired_entry_is_served_within_the_grace_only_when_the_loader_fails() {
    rt1().block_on(async {
        let clock = MockClock::default();
        let cache = TieredCache::builder()
            .clock(clock.clone())
            .stale_if_error(Duration::from_secs(60))
            .build()
            .unwrap();
        let ttl = PutOptions { ttl: Some(Duration::from_secs(10)), ..PutOptions::default() };
        cache.put(b"k", b"v1".to_vec(), ttl.clone()).await.unwrap();
        clock.advance(Duration::from_secs(20));
        assert!(cache.get(b"k").await.is_none(), "expired for every plain read");
        let failing = || async { Err::<Vec<u8>, _>("origin down".to_string()) };
        let served = cache.try_get_with(b"k", ttl.clone(), failing).await.unwrap();
        assert_eq!(served.value, b"v1", "stale, within the grace");
        assert_eq!(cache.read_through_stats().stale_served, 1);
        // A loader that works replaces it.
        let ok = || async { Ok::<_, String>(b"v2".to_vec()) };
        assert_eq!(cache.try_get_with(b"k", ttl.clone(), ok).await.unwrap().value, b"v2");
        // Past the grace, the error comes through.
        clock.advance(Duration::from_secs(10 + 61));
        let err = cache.try_get_with(b"k", ttl, failing).await.unwrap_err();
        assert_eq!(*err, "origin down");
    });
}
