//! # omnicache
//!
//! The cache Rust services reach for first: a concurrent in-memory cache as fast as the fastest,
//! with TTL, time-to-idle, per-entry expiry, listeners, statistics, single-flight loaders and
//! switchable eviction policies; and, as the other crates land, tiers below it (disk, Redis,
//! S3), encryption, invalidation events, analytics and HTTP caching.
//!
//! This crate is the facade: it re-exports the other OmniCache crates behind one feature each.
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `memory` | yes | [`sync::Cache`] and [`future::Cache`], the memory cache |
//! | `tiers` | with `memory` | [`tiers`]: `omnicache-tiers` |
//! | `strategies` | no | [`strategies`]: S3-FIFO, LRU, LFU, TTL-ordered, GDSF, ARC, SIEVE, W-TinyLFU, and the trace simulator |
//! | `disk` | no | `tiers::disk`: the SQLite disk tier |
//! | `redis` | no | `tiers::redis`: the Redis tier |
//! | `s3` | no | `tiers::s3`: the S3 tier |
//! | `tiered` | no | `tiers::tiered`: L1 over lower tiers with promotion, write policies, breakers |
//! | `macros` | no | [`cached`]: the `#[cached]` attribute, memoizing sync and async functions with single flight |
//! | `http` | no | [`http`]: RFC 9111 HTTP response caching as a tower layer, and the proxy's upstream client |
//! | `security` | no | [`security`]: AES-256-GCM encryption at rest over a rotating key ring, PII detection, erasure by data subject |
//! | `analytics` | no | [`analytics`]: Prometheus/OpenMetrics metrics of caches and tiers |
//! | `full` | no | everything |
//!
//! The core vocabulary (errors, clock, policies, tiers, envelope) is always there as [`core`],
//! with its most used names at the crate root.
//!
//! ## Example
//!
//! ```
//! use omnicache::sync::Cache;
//! use std::time::Duration;
//!
//! let cache: Cache<String, String> = Cache::builder()
//!     .max_capacity(10_000)
//!     .time_to_live(Duration::from_secs(300))
//!     .build();
//! cache.insert("user:1".into(), "Ada".into());
//! assert_eq!(cache.get("user:1").as_deref(), Some("Ada"));
//! ```

pub use omnicache_core as core;
pub use omnicache_core::{
    Clock, EntryMeta, Error, ErrorKind, EvictionPolicy, MockClock, PolicyFactory, RemovalCause,
    Result, StatsSnapshot,
};

#[cfg(feature = "analytics")]
pub use omnicache_analytics as analytics;
#[cfg(feature = "http")]
pub use omnicache_http as http;
#[cfg(feature = "macros")]
pub use omnicache_macros::cached;
#[cfg(feature = "security")]
pub use omnicache_security as security;
#[cfg(feature = "strategies")]
pub use omnicache_strategies as strategies;
#[cfg(feature = "tiers")]
pub use omnicache_tiers as tiers;

/// The memory cache for threads: loaders are closures.
#[cfg(feature = "memory")]
pub mod sync {
    pub use omnicache_tiers::memory::sync::Cache;
    pub use omnicache_tiers::memory::CacheBuilder;
}

/// The memory cache for async code: loaders are futures.
#[cfg(feature = "memory")]
pub mod future {
    pub use omnicache_tiers::memory::future::Cache;
    pub use omnicache_tiers::memory::CacheBuilder;
}

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "full"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
