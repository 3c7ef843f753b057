//! Bytes per entry at 1,000,000 `u64 -> u64` entries, counted by a global allocator, for
//! omnicache, quick_cache, moka, lru and a plain `HashMap`, each in a fresh process phase.
//!
//! `cargo run --release -p omnicache-bench --bin memory [-- --policy NAME]`: with a policy, only
//! omnicache runs, on that policy instead of its default.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts bytes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: u64 = 1_000_000;

/// Builds a cache of capacity N, inserts `inserted` distinct keys, and prints the bytes held per
/// entry the cache holds at the end (sharded caches may hold slightly fewer than N).
fn measure<T>(
    name: &str,
    inserted: u64,
    build: impl FnOnce() -> T,
    fill: impl Fn(&T, u64),
    len: impl Fn(&T) -> u64,
) {
    let before = LIVE.load(Ordering::SeqCst);
    let c = build();
    for i in 0..inserted {
        fill(&c, omnicache_bench::scramble(i));
    }
    let after = LIVE.load(Ordering::SeqCst);
    let held = len(&c).max(1);
    println!("{name},{inserted},{held},{:.1}", (after - before) as f64 / held as f64);
    drop(c);
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let policy = match (args.next().as_deref(), args.next()) {
        (None, _) => None,
        (Some("--policy"), Some(name)) => Some(omnicache_bench::policy_by_name(&name)?),
        _ => anyhow::bail!("usage: memory [--policy NAME]"),
    };
    println!("cache,inserted,held,bytes_per_entry");
    let name =
        policy.as_ref().map_or("omnicache".to_owned(), |p| format!("omnicache ({})", p.name()));
    // N distinct keys into a cache of N (filling), then 3N (steady state with evictions, where
    // ghost queues and other eviction bookkeeping are allocated).
    for inserted in [N, 3 * N] {
        measure(
            &name,
            inserted,
            || {
                let builder = omnicache::sync::Cache::<u64, u64>::builder().max_capacity(N);
                match &policy {
                    Some(p) => builder.policy_arc(p.clone()).build(),
                    None => builder.build(),
                }
            },
            |c, k| c.insert(k, k),
            |c| c.entry_count(),
        );
        if policy.is_some() {
            continue;
        }
        measure(
            "omnicache (ttl)",
            inserted,
            || {
                omnicache::sync::Cache::<u64, u64>::builder()
                    .max_capacity(N)
                    .time_to_live(std::time::Duration::from_secs(3600))
                    .build()
            },
            |c, k| c.insert(k, k),
            |c| c.entry_count(),
        );
        measure(
            "quick_cache",
            inserted,
            || quick_cache::sync::Cache::<u64, u64>::new(N as usize),
            |c, k| c.insert(k, k),
            |c| c.len() as u64,
        );
        measure(
            "moka",
            inserted,
            || moka::sync::Cache::<u64, u64>::new(N),
            |c, k| c.insert(k, k),
            |c| {
                c.run_pending_tasks();
                c.entry_count()
            },
        );
        measure(
            "lru",
            inserted,
            || {
                std::cell::RefCell::new(lru::LruCache::<u64, u64>::new(
                    std::num::NonZeroUsize::new(N as usize).expect("N > 0"),
                ))
            },
            |c, k| {
                c.borrow_mut().put(k, k);
            },
            |c| c.borrow().len() as u64,
        );
        measure(
            "HashMap",
            inserted.min(N),
            || std::cell::RefCell::new(std::collections::HashMap::<u64, u64>::new()),
            |c, k| {
                c.borrow_mut().insert(k, k);
            },
            |c| c.borrow().len() as u64,
        );
    }
    Ok(())
}
