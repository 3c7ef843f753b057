//! # omnicache-tiers
//!
//! Where OmniCache keeps entries: the concurrent memory cache, OmniCache's L1, which the facade
//! exposes as `omnicache::sync::Cache` and `omnicache::future::Cache`; the disk, Redis and S3
//! tiers; and the tiered cache that stacks them, each behind its own feature.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `memory` | yes | [`memory`]: the concurrent in-memory cache |
//! | `disk` | no | `disk`: the SQLite disk tier (bundled SQLite, WAL) |
//! | `redis` | no | `redis`: the Redis tier (namespaced keys, native TTLs, MGET, timeouts) |
//! | `s3` | no | `s3`: the S3 tier (any S3-compatible endpoint, path-style) |
//! | `tiered` | no | `tiered`: L1 over lower tiers, with promotion, write policies, breakers |
//!
//! ## Example
//!
//! ```
//! use omnicache_tiers::memory::sync::Cache;
//! use std::time::Duration;
//!
//! let cache: Cache<String, u64> = Cache::builder()
//!     .max_capacity(10_000)
//!     .time_to_live(Duration::from_secs(60))
//!     .build();
//! cache.insert("answer".to_string(), 42);
//! assert_eq!(cache.get("answer"), Some(42));
//! let v = cache.get_with("lazy".to_string(), || 7);
//! assert_eq!(v, 7);
//! ```

#[cfg(feature = "tiered")]
mod breaker;
#[cfg(feature = "disk")]
pub mod disk;
#[cfg(feature = "memory")]
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "tiered")]
pub mod tiered;
#[cfg(feature = "tiered")]
pub use breaker::BreakerState;
#[cfg(feature = "tiered")]
pub mod warm;
