//! The shared HTTP cache, its tower layer and service.

use crate::body::{collect, BoxError, CacheBody, Collected};
use crate::directives::SURROGATE_CONTROL;
use crate::key::{variant, CacheKey};
use crate::policy::{
    analyze, freshen, may_serve_stale, not_modified, not_modified_headers, stale_if_error,
    strip_hop_by_hop, usable, vary_names, withheld_fields, Freshness, RequestDirectives, Rules,
    Usable, F_AUTH_OK,
};
use crate::record::{Record, StoredResponse};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::Body;
use omnicache_core::{DynTier, EntryMeta, Invalidation, SharedClock, TierEntry, Timestamp};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tower_layer::Layer;
use tower_service::Service;

mod flight;
mod service;
mod store;

// Each part's items are visible to the others (`use super::*` in each module).
use flight::*;
use service::*;

pub use service::{CacheLayer, CacheService, OriginUnreachable};

/// The `Cache-Status` header (RFC 9211).
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
const SURROGATE_CAPABILITY: HeaderName = HeaderName::from_static("surrogate-capability");

/// A shared HTTP cache (RFC 9111) over any OmniCache store. Cheap to clone; clones share the
/// store, the in-flight requests and the counters. Wrap services with [`HttpCache::layer`];
/// purge with [`HttpCache::purge`], [`HttpCache::purge_tag`] and [`HttpCache::purge_all`].
///
/// ```
/// use omnicache_core::testkit::MemoryTier;
/// use omnicache_http::HttpCache;
/// use std::sync::Arc;
///
/// let cache = HttpCache::builder(Arc::new(MemoryTier::default())).build();
/// let layer = cache.layer(); // wrap any tower/axum service with it
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct HttpCache {
    shared: Arc<Shared>,
}

impl fmt::Debug for HttpCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCache")
            .field("store", &self.shared.store.name())
            .field("key", &self.shared.key)
            .field("stats", &self.stats())
            .finish()
    }
}

struct Shared {
    store: Arc<dyn DynTier>,
    key: CacheKey,
    rules: Rules,
    clock: SharedClock,
    max_body: usize,
    keep: Duration,
    grace: Option<Duration>,
    tag_header: Option<HeaderName>,
    name: String,
    capability: Option<HeaderValue>,
    flights: Mutex<HashMap<Vec<u8>, Arc<watch::Sender<bool>>>>,
    refreshing: Mutex<HashSet<Vec<u8>>>,
    background: AtomicUsize,
    idle: Notify,
    counters: [AtomicU64; 8],
}

const HITS: usize = 0;
const STALE: usize = 1;
const MISSES: usize = 2;
const STORED: usize = 3;
const REVALIDATED: usize = 4;
const COALESCED: usize = 5;
const INVALIDATED: usize = 6;
const ERRORS_HIDDEN: usize = 7;

/// What the cache has done since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Requests answered from the cache without contacting the origin (fresh, or stale where
    /// allowed).
    pub hits: u64,
    /// Of those, answered with a stale response (`max-stale`, `stale-while-revalidate`,
    /// `stale-if-error`).
    pub stale: u64,
    /// Requests forwarded to the origin (misses, validations, uncacheable methods).
    pub misses: u64,
    /// Responses stored.
    pub stored: u64,
    /// Stored responses freshened by a `304 Not Modified`.
    pub revalidated: u64,
    /// Requests that waited for another request to the same resource instead of going to the
    /// origin themselves.
    pub coalesced: u64,
    /// Invalidations after unsafe methods and purges.
    pub invalidated: u64,
    /// Origin errors hidden by serving a stale response (`stale-if-error`).
    pub errors_hidden: u64,
}

/// Builds an [`HttpCache`].
#[derive(Debug)]
pub struct HttpCacheBuilder {
    store: Arc<dyn DynTier>,
    key: CacheKey,
    clock: SharedClock,
    max_body: usize,
    keep: Duration,
    grace: Option<Duration>,
    heuristic_fraction: f64,
    heuristic_max: Duration,
    tag_header: Option<HeaderName>,
    name: String,
    surrogate: Option<String>,
}

impl HttpCache {
    /// A builder over `store`: a `TieredCache` (memory, disk, Redis, S3), a single tier, or
    /// anything else implementing core's [`DynTier`].
    pub fn builder(store: Arc<dyn DynTier>) -> HttpCacheBuilder {
        HttpCacheBuilder {
            store,
            key: CacheKey::default(),
            clock: SharedClock::System,
            max_body: 8 << 20,
            keep: Duration::from_secs(3600),
            grace: None,
            heuristic_fraction: 0.1,
            heuristic_max: Duration::from_secs(86_400),
            tag_header: Some(HeaderName::from_static("surrogate-key")),
            name: "omnicache".into(),
            surrogate: Some("omnicache".into()),
        }
    }

    /// A tower layer caching the responses of the service it wraps.
    pub fn layer(&self) -> CacheLayer {
        CacheLayer { cache: self.clone() }
    }

    /// Counters since the cache was built.
    pub fn stats(&self) -> HttpStats {
        let c = |i: usize| self.shared.counters[i].load(Ordering::Relaxed);
        HttpStats {
            hits: c(HITS),
            stale: c(STALE),
            misses: c(MISSES),
            stored: c(STORED),
            revalidated: c(REVALIDATED),
            coalesced: c(COALESCED),
            invalidated: c(INVALIDATED),
            errors_hidden: c(ERRORS_HIDDEN),
        }
    }

    /// Drops every stored response for `uri` (all its variants). A relative URI (`/path?q`)
    /// needs `host` unless the key ignores hosts. Returns how many entries the store removed.
    pub async fn purge(&self, host: &str, uri: &str) -> u64 {
        let (host, pq) = match uri.parse::<Uri>() {
            Ok(u) if u.authority().is_some() => (
                u.authority().map_or_else(String::new, |a| a.as_str().to_string()),
                u.path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
            ),
            _ => (host.to_string(), uri.to_string()),
        };
        let prefix = self.shared.key.uri_prefix(host.as_bytes(), &pq);
        self.shared.invalidate(Invalidation::Prefix(prefix)).await
    }

    /// Drops every stored response whose path starts with `path_prefix` (`/products/`), on any
    /// host. Returns how many entries the store removed. The store's keys are read a page at a
    /// time to find them (unless the key ignores hosts, when one prefix covers them all).
    pub async fn purge_path_prefix(&self, path_prefix: &str) -> u64 {
        let key = &self.shared.key;
        if !key.host_in_key() {
            let mut prefix = key.key_prefix().to_vec();
            prefix.extend_from_slice(path_prefix.as_bytes());
            return self.shared.invalidate(Invalidation::Prefix(prefix)).await;
        }
        let under = key.key_prefix().to_vec();
        let mut matched = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let Ok(page) = self.shared.store.scan(&under, cursor.as_deref(), 1_000).await else {
                break;
            };
            // Keys are prefix, host, path: the path starts at the first '/' after the host.
            matched.extend(page.keys.into_iter().filter(|k| {
                let rest = &k[under.len()..];
                rest.iter()
                    .position(|&b| b == b'/')
                    .is_some_and(|at| rest[at..].starts_with(path_prefix.as_bytes()))
            }));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if matched.is_empty() {
            return 0;
        }
        self.shared.invalidate(Invalidation::Keys(matched)).await
    }

    /// Drops every stored response tagged `tag` (by the tag header, `Surrogate-Key` unless
    /// configured otherwise).
    pub async fn purge_tag(&self, tag: &str) -> u64 {
        self.shared.invalidate(Invalidation::Tag(tag.to_string())).await
    }

    /// Drops every stored response (everything under the key prefix).
    pub async fn purge_all(&self) -> u64 {
        let prefix = self.shared.key.key_prefix().to_vec();
        self.shared.invalidate(Invalidation::Prefix(prefix)).await
    }

    /// Waits until no background revalidation is running (for tests and graceful shutdown).
    pub async fn idle(&self) {
        loop {
            let notified = self.shared.idle.notified();
            if self.shared.background.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl HttpCacheBuilder {
    /// How the cache key is built. Default: host, path and query under the prefix `http:`.
    pub fn key(mut self, key: CacheKey) -> Self {
        self.key = key;
        self
    }

    /// The clock for ages and expiry (a `MockClock` in tests). Default the system clock.
    pub fn clock(mut self, clock: impl Into<SharedClock>) -> Self {
        self.clock = clock.into();
        self
    }

    /// The largest body stored; larger responses stream through uncached. Default 8 MiB.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// How long a stale response with a validator (`ETag`, `Last-Modified`) is kept after it
    /// stops being fresh, to be revalidated with a conditional request instead of refetched.
    /// Default one hour.
    pub fn keep_stale(mut self, d: Duration) -> Self {
        self.keep = d;
        self
    }

    /// Serve stale responses while the origin is unreachable (connection refused or reset,
    /// timeout: see [`OriginUnreachable`]), as RFC 9111 §4.2.4 allows a disconnected cache to,
    /// keeping stale responses without a validator for `grace` for that purpose (those with one
    /// are kept for [`keep_stale`](Self::keep_stale) anyway). A response that forbids stale use
    /// (`must-revalidate`, `proxy-revalidate`, `s-maxage`, `no-cache`) is never served so.
    /// Default off: only `stale-if-error` serves stale on errors.
    pub fn serve_stale_when_unreachable(mut self, grace: Option<Duration>) -> Self {
        self.grace = grace;
        self
    }

    /// Heuristic freshness (RFC 9111 §4.2.2) for responses without explicit freshness but with
    /// `Last-Modified`: this share of the time since the last modification, capped at `max`.
    /// Default 10%, at most one day. A fraction of 0 turns heuristics off.
    pub fn heuristic(mut self, fraction: f64, max: Duration) -> Self {
        self.heuristic_fraction = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
        self.heuristic_max = max;
        self
    }

    /// The response header carrying tags for [`HttpCache::purge_tag`] (space- or
    /// comma-separated); it is removed from responses sent on. `None` disables tags. Default
    /// `Surrogate-Key`.
    pub fn tag_header(mut self, name: Option<HeaderName>) -> Self {
        self.tag_header = name;
        self
    }

    /// The cache's name in `Cache-Status` and its `Surrogate-Control` device token. Default
    /// `omnicache`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if self.surrogate.is_some() {
            self.surrogate = Some(name.clone());
        }
        self.name = name;
        self
    }

    /// Whether to act as a surrogate: obey `Surrogate-Control` aimed at this cache (over
    /// `Cache-Control`), strip it from responses, and announce `Surrogate-Capability` to the
    /// origin. Default on.
    pub fn surrogate(mut self, yes: bool) -> Self {
        self.surrogate = yes.then(|| self.name.clone());
        self
    }

    /// Builds the cache.
    pub fn build(self) -> HttpCache {
        let capability = self
            .surrogate
            .as_ref()
            .and_then(|t| HeaderValue::from_str(&format!("{t}=\"Surrogate/1.0\"")).ok());
        HttpCache {
            shared: Arc::new(Shared {
                store: self.store,
                key: self.key,
                rules: Rules {
                    heuristic_fraction: self.heuristic_fraction,
                    heuristic_max: self.heuristic_max.as_secs(),
                    surrogate: self.surrogate,
                },
                clock: self.clock,
                max_body: self.max_body,
                keep: self.keep,
                grace: self.grace,
                tag_header: self.tag_header,
                name: self.name,
                capability,
                flights: Mutex::default(),
                refreshing: Mutex::default(),
                background: AtomicUsize::new(0),
                idle: Notify::new(),
                counters: Default::default(),
            }),
        }
    }
}
