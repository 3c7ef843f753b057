//! HTTP response caching for tower and axum, by RFC 9111 (with RFC 5861's stale extensions and
//! RFC 9211's `Cache-Status`), over any OmniCache store.
//!
//! [`HttpCache`] is a shared cache: put its [`CacheLayer`] in front of any tower service (an
//! axum router, a hyper client, a tonic channel) and responses are stored, served, validated and
//! invalidated as a reverse proxy such as Varnish would, but by the standard:
//!
//! - **Storing** (§3): `GET` responses with a status that allows it, no `no-store` or `private`,
//!   requests with `Authorization` only when the response says `public`, `s-maxage` or
//!   `must-revalidate`; `Vary: *` never; bodies up to a limit; hop-by-hop headers dropped.
//! - **Freshness** (§4.2): `Surrogate-Control` aimed at this cache, then `s-maxage`, `max-age`,
//!   `Expires - Date`, then a heuristic from `Last-Modified`; `Age` computed from `Age`, `Date`
//!   and the time in flight, sent on every stored response. Malformed values count as stale.
//! - **Requests** (§5.2.1): `no-cache` (and `Pragma: no-cache`), `max-age`, `max-stale`,
//!   `min-fresh`, `only-if-cached` (a `504` when nothing fits), `no-store`, `stale-if-error`.
//! - **Variants** (§4.1): `Vary` selects among stored responses by request headers.
//! - **Validation** (§4.3): stale or `no-cache` responses are revalidated with
//!   `If-None-Match`/`If-Modified-Since`; a `304` freshens the stored headers. The cache answers
//!   clients' own conditional requests with `304` itself.
//! - **Stale** (RFC 5861): `stale-while-revalidate` serves stale while exactly one background
//!   refresh runs; `stale-if-error` serves stale when the origin answers 500/502/503/504 or
//!   fails; `must-revalidate`, `proxy-revalidate`, `s-maxage` and `no-cache` forbid both.
//! - **Coalescing**: concurrent misses for one resource make one origin request; the others wait
//!   and are answered from what it stored.
//! - **Invalidation** (§4.4): a successful unsafe request (`POST`, `PUT`, `DELETE`, unknown
//!   methods) drops the target URI and its same-origin `Location`/`Content-Location`; responses
//!   tagged by `Surrogate-Key` are purged by tag ([`HttpCache::purge_tag`]).
//! - **`HEAD`** is answered from a stored `GET`.
//!
//! ```
//! use axum::{routing::get, Router};
//! use omnicache_core::testkit::MemoryTier;
//! use omnicache_http::HttpCache;
//! use std::sync::Arc;
//!
//! let cache = HttpCache::builder(Arc::new(MemoryTier::default())).build();
//! let app: Router = Router::new()
//!     .route("/", get(|| async { ([("cache-control", "max-age=60")], "hello") }))
//!     .layer(cache.layer());
//! # let _ = app;
//! ```
//!
//! The store is any [`DynTier`](omnicache_core::DynTier): in production a `TieredCache` from
//! `omnicache-tiers` (memory over disk, Redis or S3), which is itself a tier.

mod body;
mod cache;
mod directives;
mod key;
mod policy;
#[cfg(feature = "proxy")]
pub mod proxy;
mod record;

pub use body::{BoxError, CacheBody};
pub use cache::{
    CacheLayer, CacheService, HttpCache, HttpCacheBuilder, HttpStats, OriginUnreachable,
    CACHE_STATUS,
};
pub use key::CacheKey;
