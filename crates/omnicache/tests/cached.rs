//! `#[cached]`: memoization of sync and async functions, single flight per key, `Result`
//! handling, TTL with a mock clock; and the misuses it rejects at compile time (trybuild).

use omnicache::cached;
use omnicache::sync::Cache;
use omnicache::MockClock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, LazyLock};
use std::time::Duration;

static SQUARES: AtomicUsize = AtomicUsize::new(0);

#[cached(capacity = 100)]
fn square(n: u64) -> u64 {
    SQUARES.fetch_add(1, Ordering::SeqCst);
    n * n
}

#[test]
fn results_are_memoized_per_key_and_the_cache_is_reachable_by_name() {
    assert_eq!(square(3), 9);
    assert_eq!(square(3), 9);
    assert_eq!(square(4), 16);
    assert_eq!(SQUARES.load(Ordering::SeqCst), 2, "one run per key");
    assert_eq!(SQUARE_CACHE.get(&3), Some(9));
    SQUARE_CACHE.invalidate(&3);
    square(3);
    assert_eq!(SQUARES.load(Ordering::SeqCst), 3, "invalidating the named cache recomputes");
}

static SLOW_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(name = SLOW)]
fn slow(key: String, salt: u8) -> String {
    SLOW_RUNS.fetch_add(1, Ordering::SeqCst);
    // Held open so the other callers pile up behind this run (not a TTL wait).
    std::thread::sleep(Duration::from_millis(50));
    format!("{key}:{salt}")
}

#[test]
fn concurrent_callers_of_one_key_share_a_single_run() {
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                slow("k".into(), 1)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), "k:1");
    }
    assert_eq!(SLOW_RUNS.load(Ordering::SeqCst), 1, "single flight");
    assert_eq!(SLOW.entry_count(), 1, "the multi-argument key is one tuple");
}

static FALLIBLE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, PartialEq)]
struct Flaky(u32);

#[cached]
fn fallible(n: u32) -> Result<u32, Flaky> {
    let run = FALLIBLE_RUNS.fetch_add(1, Ordering::SeqCst);
    if run == 0 {
        return Err(Flaky(n));
    }
    let doubled = n.checked_mul(2).ok_or(Flaky(0))?;
    Ok(doubled)
}

#[test]
fn only_ok_results_are_cached() {
    assert_eq!(fallible(5), Err(Flaky(5)), "the error reaches the caller");
    assert_eq!(fallible(5), Ok(10), "and was not cached");
    assert_eq!(fallible(5), Ok(10));
    assert_eq!(FALLIBLE_RUNS.load(Ordering::SeqCst), 2, "Ok is cached");
}

static ERR_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache_errors)]
fn remembered(n: u32) -> Result<u32, String> {
    ERR_RUNS.fetch_add(1, Ordering::SeqCst);
    Err(format!("no {n}"))
}

#[test]
fn cache_errors_caches_the_whole_result() {
    assert!(remembered(1).is_err());
    assert!(remembered(1).is_err());
    assert_eq!(ERR_RUNS.load(Ordering::SeqCst), 1);
}

// TTL through a cache you build yourself, on a mock clock: nothing sleeps.
static CLOCK: LazyLock<MockClock> = LazyLock::new(MockClock::default);
static PRICES: LazyLock<Cache<String, u64>> = LazyLock::new(|| {
    Cache::builder()
        .max_capacity(10)
        .time_to_live(Duration::from_secs(60))
        .clock(CLOCK.clone())
        .build()
});
static PRICE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = PRICES, key = item.to_owned())]
fn price(item: &str) -> u64 {
    PRICE_RUNS.fetch_add(1, Ordering::SeqCst) as u64 + item.len() as u64
}

#[test]
fn ttl_expires_with_the_mock_clock() {
    let first = price("tea");
    CLOCK.advance(Duration::from_secs(59));
    assert_eq!(price("tea"), first, "fresh for 59 s");
    CLOCK.advance(Duration::from_secs(1));
    assert_ne!(price("tea"), first, "recomputed once the TTL ran out");
    assert_eq!(PRICE_RUNS.load(Ordering::SeqCst), 2);
}

static ASYNC_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = 30)]
async fn fetch_user(id: u64) -> Result<String, Arc<str>> {
    ASYNC_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::task::yield_now().await;
    if id == 0 {
        return Err("no user 0".into());
    }
    Ok(format!("user-{id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_functions_are_cached_with_single_flight() {
    let calls: Vec<_> = (0..50).map(|_| tokio::spawn(fetch_user(7))).collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap(), "user-7");
    }
    assert_eq!(ASYNC_RUNS.load(Ordering::SeqCst), 1, "one run for 50 concurrent callers");
    assert!(fetch_user(0).await.is_err());
    assert!(fetch_user(0).await.is_err());
    assert_eq!(ASYNC_RUNS.load(Ordering::SeqCst), 3, "errors are not cached");
    assert_eq!(FETCH_USER_CACHE.get(&7).as_deref(), Some("user-7"));
    assert_eq!(FETCH_USER_CACHE.get(&0), None);
}

// Compiling the cases builds the facade again in trybuild's own target directory, with every
// feature the test runs with; `cargo xtask ci` runs it with `--features macros` alone.
#[test]
#[ignore = "trybuild: run by `cargo xtask ci` with the macros feature only"]
fn misuse_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
