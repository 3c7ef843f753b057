//! # omnicache-strategies
//!
//! Eviction policies for OmniCache's memory cache, each an
//! [`EvictionPolicy`](omnicache_core::EvictionPolicy) made by a
//! [`PolicyFactory`], each passing the core conformance suite.
//!
//! | name | type | evicts | reads |
//! |---|---|---|---|
//! | `s3fifo` (`default`) | [`S3Fifo`] (from core) | one-hit wonders first, then by reinsertion | access bits |
//! | `s3fifo-eager` | [`S3Fifo`] | the same, promoting after one read in small (quick_cache's rule) | access bits |
//! | `lru` | [`Lru`] | least recently used | ordered events |
//! | `lfu` | [`Lfu`] | least frequently used, counts halving periodically | ordered events |
//! | `ttl` | [`TtlOrdered`] | soonest expiry | ignored |
//! | `gdsf` (`size`) | [`Gdsf`] | least value per byte (GreedyDual-Size-Frequency) | ordered events |
//! | `arc` | [`ArcPolicy`] | ARC: recency vs frequency, adaptive target, ghost lists | ordered events |
//! | `lirs` | [`Lirs`] | LIRS: HIR entries first; reuse distance decides who is protected | ordered events |
//! | `lrb` | [`Lrb`] | learned (LRB): the sampled entry a boosted-tree model predicts returns last, behind a probationary FIFO | ordered events |
//! | `lrb-compact` | [`CompactLrb`] | the same on seven bytes of history per key; evicted keys' histories in a bounded table | ordered events |
//! | `selector` | [`Selector`] | by a vote of LRB, LIRS and LRU (run as shadow caches) weighted by their recent hits | ordered events |
//! | `sieve` | [`Sieve`] | SIEVE: FIFO with a hand that skips visited entries | access bits |
//! | `wtinylfu` | [`WTinyLfu`] | W-TinyLFU: window + SLRU, sketch admission, adaptive window | ordered events |
//! | `wtinylfu-fixed` | [`WTinyLfu`] | the same with the window fixed at 1% | ordered events |
//!
//! Policies can be switched on a live cache; the new one adopts every entry.
//!
//! ## Features
//!
//! None yet; every policy is always built.
//!
//! ## Example
//!
//! ```
//! use omnicache_strategies::by_name;
//! use omnicache_core::{EntryInfo, NoReads};
//!
//! let factory = by_name("lru").expect("a known policy");
//! let mut lru = factory.build(2);
//! lru.on_insert(0, EntryInfo { hash: 10, weight: 1, expires: None });
//! lru.on_insert(1, EntryInfo { hash: 11, weight: 1, expires: None });
//! lru.on_access(0);
//! assert_eq!(lru.evict(&mut NoReads), Some(1));
//! assert!(by_name("nope").is_none());
//! ```

mod arc;
mod gbm;
mod gdsf;
mod ghost;
mod lfu;
mod lirs;
mod list;
mod lrb;
mod lrb_compact;
mod lru;
mod ordered;
mod rng;
mod selector;
mod sieve;
#[cfg(feature = "sim")]
pub mod sim;
mod sketch;
mod tinylfu;
mod ttl;

pub use arc::{ArcFactory, ArcPolicy};
pub use gbm::Training;
pub use gdsf::{Gdsf, GdsfFactory};
pub use lfu::{Lfu, LfuFactory};
pub use lirs::{Lirs, LirsFactory};
pub use lrb::{Lrb, LrbFactory};
pub use lrb_compact::{CompactLrb, CompactLrbFactory};
pub use lru::{Lru, LruFactory};
pub use omnicache_core::{S3Fifo, S3FifoFactory};
pub use selector::{Selector, SelectorFactory};
pub use sieve::{Sieve, SieveFactory};
pub use tinylfu::{WTinyLfu, WTinyLfuFactory};
pub use ttl::{TtlFactory, TtlOrdered};

use omnicache_core::PolicyFactory;
use std::sync::Arc;

/// Every policy name [`by_name`] knows, canonical names first.
pub const NAMES: &[&str] = &[
    "s3fifo",
    "lru",
    "lfu",
    "ttl",
    "gdsf",
    "arc",
    "lirs",
    "lrb",
    "lrb-compact",
    "selector",
    "sieve",
    "wtinylfu",
    "wtinylfu-fixed",
    "default",
    "size",
];

/// The factory for a policy name (case-insensitive), or `None` if unknown. The learned
/// policies (`lrb`, `lrb-compact`, `selector`) train on a background thread, as a served cache
/// needs; replays use [`by_name_for_replay`].
pub fn by_name(name: &str) -> Option<Arc<dyn PolicyFactory>> {
    resolve(name, Training::Background)
}

/// [`by_name`], with the learned policies training inline: slower, but a replay of the same
/// trace gives the same hits every run. What the trace simulator uses.
pub fn by_name_for_replay(name: &str) -> Option<Arc<dyn PolicyFactory>> {
    resolve(name, Training::Inline)
}

fn resolve(name: &str, training: Training) -> Option<Arc<dyn PolicyFactory>> {
    let f: Arc<dyn PolicyFactory> = match name.to_ascii_lowercase().as_str() {
        "s3fifo" | "s3-fifo" | "default" => Arc::new(S3FifoFactory::default()),
        "s3fifo-eager" => Arc::new(S3FifoFactory::eager()),
        "lru" => Arc::new(LruFactory),
        "lfu" => Arc::new(LfuFactory::default()),
        "ttl" => Arc::new(TtlFactory),
        "gdsf" | "size" => Arc::new(GdsfFactory),
        "arc" => Arc::new(ArcFactory),
        "lirs" => Arc::new(LirsFactory::default()),
        "lrb" => Arc::new(LrbFactory { training, ..Default::default() }),
        "lrb-compact" => Arc::new(CompactLrbFactory { training, ..Default::default() }),
        "selector" => Arc::new(SelectorFactory { training }),
        "sieve" => Arc::new(SieveFactory),
        "wtinylfu" | "w-tinylfu" | "tinylfu" => Arc::new(WTinyLfuFactory::default()),
        "wtinylfu-fixed" => Arc::new(WTinyLfuFactory { adaptive: false, ..Default::default() }),
        _ => return None,
    };
    Some(f)
}
