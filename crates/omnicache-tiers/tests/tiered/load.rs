//! Read-through with `get_with` / `try_get_with`: the tiers before the loader, one loader run
//! per key however many callers wait, errors shared and not cached, an abandoned lead released.

use omnicache_core::testkit::MemoryTier;
use omnicache_core::Tier;
use omnicache_tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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
