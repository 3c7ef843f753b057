//! # omnicache-analytics
//!
//! What operators see of OmniCache. This first part is [`metrics`]: Prometheus/OpenMetrics
//! families of every cache and tier, read from the caches' own counters at scrape time (no
//! cost on the hot path), registered into a `prometheus-client` registry of your own or
//! rendered by [`metrics::render`] (the server's `GET /metrics`).
//!
//! ```
//! use omnicache_analytics::metrics::{registry, render, CacheSample};
//!
//! let source = || vec![CacheSample { cache: "users".into(), hits: 9, misses: 1, ..Default::default() }];
//! let text = render(&registry(source));
//! assert!(text.contains(r#"omnicache_cache_gets_total{cache="users",result="hit"} 9"#));
//! ```

pub mod metrics;
pub mod server;
pub mod top;
