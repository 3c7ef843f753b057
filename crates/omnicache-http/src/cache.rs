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

/// A tower [`Layer`] that puts an [`HttpCache`] in front of a service.
#[derive(Debug, Clone)]
pub struct CacheLayer {
    cache: HttpCache,
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> CacheService<S> {
        CacheService { inner: Arc::new(Mutex::new(inner)), cache: self.cache.clone() }
    }
}

/// The service [`CacheLayer`] makes: answers from the cache where RFC 9111 allows, and forwards
/// to the inner service otherwise.
#[derive(Debug, Clone)]
pub struct CacheService<S> {
    /// Cloned only when a request must reach it: a hit costs no service clone (for boxed
    /// services such as axum's routes, a clone is an allocation).
    inner: Arc<Mutex<S>>,
    cache: HttpCache,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, RB> Service<Request<B>> for CacheService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Default + Send + 'static,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    type Response = Response<CacheBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<CacheBody>, S::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Hits never reach the inner service; its readiness is awaited only before calling it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let run =
            Run { shared: self.cache.shared.clone(), svc: self.inner.clone(), _types: PhantomData };
        Box::pin(run.handle(req))
    }
}

/// One request's trip through the cache.
struct Run<S, B, RB> {
    shared: Arc<Shared>,
    svc: Arc<Mutex<S>>,
    _types: PhantomData<fn(B) -> RB>,
}

/// What a request asked, kept after its body went upstream.
struct Asked {
    method: Method,
    uri: Uri,
    version: http::Version,
    headers: HeaderMap,
    /// The request's extensions, handed to the first origin request made for it.
    extensions: http::Extensions,
    directives: RequestDirectives,
    primary: Vec<u8>,
}

impl Asked {
    fn head(&self) -> bool {
        self.method == Method::HEAD
    }

    /// A request to the origin like this one, without the client's validators.
    fn upstream<B>(&self, shared: &Shared, method: Method, body: B) -> Request<B> {
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        let mut headers = self.headers.clone();
        strip_validators(&mut headers);
        if let Some(c) = &shared.capability {
            headers.append(SURROGATE_CAPABILITY, c.clone());
        }
        *req.headers_mut() = headers;
        req
    }
}

fn strip_validators(h: &mut HeaderMap) {
    for n in [
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_MATCH,
        header::IF_UNMODIFIED_SINCE,
        header::IF_RANGE,
    ] {
        h.remove(n);
    }
}

/// A stored response found for a request, and where.
struct Found {
    key: Vec<u8>,
    stored: StoredResponse,
    /// The stored entry's tags, kept when a 304 freshens it without naming any.
    tags: Vec<String>,
}

/// What a lookup found.
// Built once per request and taken apart at once: boxing the hit would cost an allocation.
#[allow(clippy::large_enum_variant)]
enum Lookup {
    Hit(Found),
    /// The resource varies and this request's variant is not stored.
    VaryMiss,
    Miss,
}

impl<S, B, RB> Run<S, B, RB>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Default + Send + 'static,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    /// A clone of the inner service, to call it.
    fn svc(&self) -> S {
        self.svc.lock().clone()
    }

    async fn handle(self, req: Request<B>) -> Result<Response<CacheBody>, S::Error> {
        let method = req.method().clone();
        if method != Method::GET && method != Method::HEAD {
            return Box::pin(self.other_method(req)).await;
        }
        let shared = self.shared.clone();
        let (parts, body) = req.into_parts();
        let asked = Asked {
            primary: shared.key.primary(&parts.uri, &parts.headers),
            directives: RequestDirectives::parse(&parts.headers),
            method,
            uri: parts.uri,
            version: parts.version,
            headers: parts.headers,
            extensions: parts.extensions,
        };
        let has_auth = asked.headers.contains_key(header::AUTHORIZATION);
        let found = match shared.lookup(&asked).await {
            Lookup::Hit(f) if !has_auth || f.stored.freshness.has(F_AUTH_OK) => Some(f),
            // The slow paths are boxed, so the future of a hit stays small.
            Lookup::VaryMiss => return Box::pin(self.miss(body, asked, "fwd=vary-miss")).await,
            _ => None,
        };
        let Some(found) = found else {
            return Box::pin(self.miss(body, asked, "fwd=uri-miss")).await;
        };
        let now = shared.clock.now();
        match usable(&found.stored.freshness, &asked.directives, now) {
            Usable::Fresh => {
                shared.count(HITS);
                Ok(shared.serve_owned(found.stored, &asked, now, "hit"))
            }
            Usable::StaleAccepted => {
                shared.count(HITS);
                shared.count(STALE);
                Ok(shared.serve(&found.stored, &asked, now, "hit; detail=max-stale"))
            }
            Usable::StaleWhileRevalidate => {
                shared.count(HITS);
                shared.count(STALE);
                self.refresh_in_background(&asked, &found);
                Ok(shared.serve(&found.stored, &asked, now, "hit; detail=stale-while-revalidate"))
            }
            Usable::Validate if asked.directives.only_if_cached => Ok(gateway_timeout(&shared)),
            Usable::Validate => {
                let fwd = if asked.directives.no_cache || asked.directives.max_age.is_some() {
                    "fwd=request"
                } else {
                    "fwd=stale"
                };
                Box::pin(self.validate(&asked, found, fwd)).await
            }
        }
    }

    /// Methods other than GET and HEAD go through; unsafe ones invalidate what they touch
    /// (§4.4).
    async fn other_method(self, req: Request<B>) -> Result<Response<CacheBody>, S::Error> {
        let shared = self.shared.clone();
        let safe = matches!(*req.method(), Method::OPTIONS | Method::TRACE);
        let host = shared.key.request_host(req.uri(), req.headers());
        let uri = req.uri().clone();
        shared.count(MISSES);
        let resp = call(&mut self.svc(), req).await?;
        let s = resp.status();
        if !safe && (s.is_success() || s.is_redirection()) {
            let base = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
            let mut targets = vec![base.clone()];
            for h in [header::LOCATION, header::CONTENT_LOCATION] {
                if let Some(t) = resp.headers().get(h).and_then(|v| v.to_str().ok()) {
                    if let Some(pq) = same_origin_target(t, &base, &host) {
                        targets.push(pq);
                    }
                }
            }
            for t in targets {
                let prefix = shared.key.uri_prefix(&host, &t);
                shared.invalidate(Invalidation::Prefix(prefix)).await;
            }
        }
        Ok(shared.pass(resp, "fwd=method"))
    }

    /// Nothing usable stored: ask the origin, coalescing with identical requests in flight.
    async fn miss(
        self,
        body: B,
        mut asked: Asked,
        fwd: &'static str,
    ) -> Result<Response<CacheBody>, S::Error> {
        let shared = self.shared.clone();
        if asked.directives.only_if_cached {
            return Ok(gateway_timeout(&shared));
        }
        let mut req = Request::new(body);
        *req.method_mut() = asked.method.clone();
        *req.uri_mut() = asked.uri.clone();
        *req.version_mut() = asked.version;
        *req.headers_mut() = asked.headers.clone();
        *req.extensions_mut() = std::mem::take(&mut asked.extensions);
        if asked.head() {
            // A HEAD does not fill the cache; it goes through as it came.
            shared.count(MISSES);
            let resp = call(&mut self.svc(), req).await?;
            return Ok(shared.pass(resp, fwd));
        }
        let coalesce = !asked.directives.no_cache
            && !asked.headers.contains_key(header::AUTHORIZATION)
            && !asked.headers.contains_key(header::RANGE);
        let mut _leader = None;
        if coalesce {
            match shared.join_or_lead(&asked.primary) {
                Flight::Lead(guard) => _leader = Some(guard),
                Flight::Follow(mut rx) => {
                    let _ = rx.wait_for(|done| *done).await;
                    if let Lookup::Hit(f) = shared.lookup(&asked).await {
                        let now = shared.clock.now();
                        let auth_ok = !asked.headers.contains_key(header::AUTHORIZATION)
                            || f.stored.freshness.has(F_AUTH_OK);
                        if auth_ok
                            && usable(&f.stored.freshness, &asked.directives, now) == Usable::Fresh
                        {
                            shared.count(HITS);
                            shared.count(COALESCED);
                            return Ok(shared.serve(&f.stored, &asked, now, "hit; collapsed"));
                        }
                    }
                }
            }
        }
        shared.count(MISSES);
        let (mut parts, body) = req.into_parts();
        strip_validators(&mut parts.headers);
        if let Some(c) = &shared.capability {
            parts.headers.append(SURROGATE_CAPABILITY, c.clone());
        }
        let request_time = shared.clock.now();
        let resp = call(&mut self.svc(), Request::from_parts(parts, body)).await?;
        let response_time = shared.clock.now();
        Ok(shared.admit(&asked, resp, request_time, response_time, fwd).await)
    }

    /// Asks the origin whether a stored response is still good (§4.3.1), and answers from what
    /// it says. A `HEAD` is forwarded as a `HEAD` and freshens the stored `GET` (§4.3.5).
    async fn validate(
        self,
        asked: &Asked,
        found: Found,
        fwd: &'static str,
    ) -> Result<Response<CacheBody>, S::Error> {
        let shared = self.shared.clone();
        shared.count(MISSES);
        let req = if asked.head() {
            asked.upstream(&shared, Method::HEAD, B::default())
        } else {
            conditional(asked, &shared, &found.stored)
        };
        let request_time = shared.clock.now();
        let resp = match call(&mut self.svc(), req).await {
            Ok(r) => r,
            Err(e) => {
                let now = shared.clock.now();
                return match shared.stale_on_error(&found, asked, now, "error", true) {
                    Some(r) => Ok(r),
                    None => Err(e),
                };
            }
        };
        let response_time = shared.clock.now();
        let status = resp.status();
        let now = shared.clock.now();
        if resp.extensions().get::<OriginUnreachable>().is_some() {
            if let Some(r) = shared.stale_on_error(&found, asked, now, status.as_str(), true) {
                return Ok(r);
            }
        }
        if asked.head() {
            if status == StatusCode::OK
                && same_representation(&found.stored.headers, resp.headers())
            {
                shared.freshen(asked, &found, resp.headers(), request_time, response_time).await;
            }
            return Ok(shared.pass(resp, fwd));
        }
        if status == StatusCode::NOT_MODIFIED {
            let updated =
                shared.freshen(asked, &found, resp.headers(), request_time, response_time).await;
            return Ok(shared.serve(&updated, asked, now, &format!("{fwd}; fwd-status=304")));
        }
        if is_error(status) {
            if let Some(r) = shared.stale_on_error(&found, asked, now, status.as_str(), false) {
                return Ok(r);
            }
        }
        Ok(shared.admit(asked, resp, request_time, response_time, fwd).await)
    }

    /// Serves stale now and revalidates once in the background (RFC 5861 §3).
    fn refresh_in_background(&self, asked: &Asked, found: &Found) {
        let shared = self.shared.clone();
        if !shared.refreshing.lock().insert(found.key.clone()) {
            return;
        }
        shared.background.fetch_add(1, Ordering::SeqCst);
        let req: Request<B> = conditional(asked, &shared, &found.stored);
        let mut svc = self.svc();
        let asked = Asked {
            method: Method::GET,
            uri: asked.uri.clone(),
            version: asked.version,
            headers: asked.headers.clone(),
            extensions: http::Extensions::new(),
            directives: RequestDirectives::default(),
            primary: asked.primary.clone(),
        };
        let found = Found {
            key: found.key.clone(),
            stored: found.stored.clone(),
            tags: found.tags.clone(),
        };
        tokio::spawn(async move {
            let _done = Background { shared: shared.clone(), key: found.key.clone() };
            shared.count(MISSES);
            let request_time = shared.clock.now();
            let Ok(resp) = call(&mut svc, req).await else { return };
            let response_time = shared.clock.now();
            if resp.status() == StatusCode::NOT_MODIFIED {
                shared.freshen(&asked, &found, resp.headers(), request_time, response_time).await;
            } else if !is_error(resp.status()) {
                shared.admit(&asked, resp, request_time, response_time, "fwd=stale").await;
            }
        });
    }
}

/// Decrements the background count and ends the refresh of `key` when dropped.
struct Background {
    shared: Arc<Shared>,
    key: Vec<u8>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.shared.refreshing.lock().remove(&self.key);
        self.shared.background.fetch_sub(1, Ordering::SeqCst);
        self.shared.idle.notify_waiters();
    }
}

/// Leading a flight, or following one.
enum Flight {
    Lead(FlightGuard),
    Follow(watch::Receiver<bool>),
}

/// Ends a flight (releasing its followers) when the leader is done or gone.
struct FlightGuard {
    shared: Arc<Shared>,
    key: Vec<u8>,
    tx: Arc<watch::Sender<bool>>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let mut flights = self.shared.flights.lock();
        if flights.get(&self.key).is_some_and(|t| Arc::ptr_eq(t, &self.tx)) {
            flights.remove(&self.key);
        }
        drop(flights);
        let _ = self.tx.send(true);
    }
}

/// Builds the conditional request validating `stored`: its `ETag` and `Last-Modified` as
/// `If-None-Match` and `If-Modified-Since`.
fn conditional<B: Default>(asked: &Asked, shared: &Shared, stored: &StoredResponse) -> Request<B> {
    let mut req = asked.upstream(shared, Method::GET, B::default());
    if let Some(etag) = stored.headers.get(header::ETAG) {
        req.headers_mut().insert(header::IF_NONE_MATCH, etag.clone());
    }
    if let Some(lm) = stored.headers.get(header::LAST_MODIFIED) {
        req.headers_mut().insert(header::IF_MODIFIED_SINCE, lm.clone());
    }
    req
}

/// Whether a `HEAD` response describes the stored representation (§4.3.5): validators and
/// length, where both have them, agree.
fn same_representation(stored: &HeaderMap, head: &HeaderMap) -> bool {
    [header::ETAG, header::LAST_MODIFIED, header::CONTENT_LENGTH].iter().all(|n| {
        match (stored.get(n), head.get(n)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    })
}

/// Put in a response's extensions by an inner service that could not reach the origin at all
/// (connection refused or reset, timeout), as [`proxy::Upstream`](crate::proxy) does with its
/// `502`/`504`. The cache then treats the origin as disconnected and may serve a stale response
/// (RFC 9111 §4.2.4) unless the response forbids it (`must-revalidate`, `proxy-revalidate`,
/// `s-maxage`, `no-cache`). An `Err` from the inner service is read the same way.
#[derive(Debug, Clone, Copy, Default)]
pub struct OriginUnreachable;

fn is_error(s: StatusCode) -> bool {
    matches!(s.as_u16(), 500 | 502 | 503 | 504)
}

async fn call<S, R>(svc: &mut S, req: R) -> Result<S::Response, S::Error>
where
    S: Service<R>,
{
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
    svc.call(req).await
}

fn gateway_timeout(shared: &Shared) -> Response<CacheBody> {
    let mut r = Response::new(CacheBody::empty());
    *r.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    set_status(r.headers_mut(), &shared.name, "fwd=miss; detail=only-if-cached");
    r
}

fn set_status(headers: &mut HeaderMap, name: &str, what: &str) {
    let ours = format!("{name}; {what}");
    let value = match headers.get(&CACHE_STATUS).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.is_empty() => format!("{prev}, {ours}"),
        _ => ours,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(CACHE_STATUS, v);
    }
}

/// Resolves a `Location`/`Content-Location` value against the request path; `None` when it
/// names another origin.
fn same_origin_target(target: &str, base: &str, host: &[u8]) -> Option<String> {
    let target = target.trim();
    if let Ok(u) = target.parse::<Uri>() {
        if let Some(a) = u.authority() {
            if !a.as_str().as_bytes().eq_ignore_ascii_case(host) {
                return None;
            }
            return Some(u.path_and_query().map_or("/", |p| p.as_str()).to_string());
        }
    }
    if target.starts_with('/') {
        return Some(target.to_string());
    }
    if target.is_empty() || target.contains("://") {
        return None;
    }
    let path = base.split('?').next().unwrap_or("/");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Some(format!("{dir}{target}"))
}

impl Shared {
    fn count(&self, i: usize) {
        self.counters[i].fetch_add(1, Ordering::Relaxed);
    }

    /// A stale response in place of an origin failure: within `stale-if-error` (RFC 5861 §4),
    /// or at any staleness when the origin is unreachable (`disconnected`, §4.2.4), unless the
    /// stored response forbids serving it stale.
    fn stale_on_error(
        &self,
        found: &Found,
        asked: &Asked,
        now: Timestamp,
        status: &str,
        disconnected: bool,
    ) -> Option<Response<CacheBody>> {
        let f = &found.stored.freshness;
        let detail = if stale_if_error(f, &asked.directives, now) {
            "stale-if-error"
        } else if disconnected && self.grace.is_some() && may_serve_stale(f) {
            "origin-unreachable"
        } else {
            return None;
        };
        self.count(ERRORS_HIDDEN);
        self.count(STALE);
        let what = format!("fwd=stale; fwd-status={status}; detail={detail}");
        Some(self.serve(&found.stored, asked, now, &what))
    }

    async fn invalidate(&self, what: Invalidation) -> u64 {
        self.count(INVALIDATED);
        self.store.invalidate(&what).await.unwrap_or(0)
    }

    /// The record under `key` and its tags.
    async fn read(&self, key: &[u8]) -> Option<(Record, Vec<String>)> {
        let entry = self.store.get(key).await.ok()??;
        match Record::decode(entry.value) {
            Some(r) => Some((r, entry.meta.tags)),
            None => {
                // Not ours or damaged: drop it and miss.
                let _ = self.store.remove(key).await;
                None
            }
        }
    }

    async fn lookup(&self, asked: &Asked) -> Lookup {
        match self.read(&asked.primary).await {
            None => Lookup::Miss,
            Some((Record::Response(stored), tags)) => {
                Lookup::Hit(Found { key: asked.primary.clone(), stored, tags })
            }
            Some((Record::Vary(names), _)) => {
                let key = variant(&asked.primary, &names, &asked.headers);
                match self.read(&key).await {
                    Some((Record::Response(stored), tags)) => {
                        Lookup::Hit(Found { key, stored, tags })
                    }
                    _ => Lookup::VaryMiss,
                }
            }
        }
    }

    fn join_or_lead(self: &Arc<Self>, key: &[u8]) -> Flight {
        let mut flights = self.flights.lock();
        if let Some(tx) = flights.get(key) {
            return Flight::Follow(tx.subscribe());
        }
        let tx = Arc::new(watch::channel(false).0);
        flights.insert(key.to_vec(), tx.clone());
        Flight::Lead(FlightGuard { shared: self.clone(), key: key.to_vec(), tx })
    }

    /// A response built from a stored one (§4): its headers with a current `Age` and
    /// `Cache-Status`, `304` when the request's own validators match, no body for `HEAD`.
    fn serve(
        &self,
        stored: &StoredResponse,
        asked: &Asked,
        now: Timestamp,
        what: &str,
    ) -> Response<CacheBody> {
        self.serve_owned(stored.clone(), asked, now, what)
    }

    /// [`Shared::serve`] taking the stored response, so its headers move instead of copying.
    fn serve_owned(
        &self,
        stored: StoredResponse,
        asked: &Asked,
        now: Timestamp,
        what: &str,
    ) -> Response<CacheBody> {
        let f = &stored.freshness;
        let mut headers = stored.headers;
        headers.insert(header::AGE, HeaderValue::from(f.age_secs(now)));
        let ttl = f.remaining(now) / 1_000_000_000;
        if headers.contains_key(&CACHE_STATUS) {
            set_status(&mut headers, &self.name, &format!("{what}; ttl={ttl}"));
        } else {
            // The hit path: one allocation for the whole value.
            use std::io::Write;
            let mut v = Vec::with_capacity(self.name.len() + what.len() + 24);
            let _ = write!(v, "{}; {what}; ttl={ttl}", self.name);
            if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(v)) {
                headers.insert(CACHE_STATUS, v);
            }
        }
        let conditional_ok = stored.status.is_success()
            && (asked.headers.contains_key(header::IF_NONE_MATCH)
                || asked.headers.contains_key(header::IF_MODIFIED_SINCE));
        if conditional_ok && not_modified(&asked.headers, &headers) {
            let mut r = Response::new(CacheBody::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            *r.headers_mut() = not_modified_headers(&headers);
            return r;
        }
        let body =
            if asked.head() { CacheBody::empty() } else { CacheBody::full(stored.body.clone()) };
        let mut r = Response::new(body);
        *r.status_mut() = stored.status;
        *r.headers_mut() = headers;
        r
    }

    /// A response passed through uncached.
    fn pass<RB>(&self, resp: Response<RB>, what: &str) -> Response<CacheBody>
    where
        RB: Body<Data = Bytes> + Send + 'static,
        RB::Error: Into<BoxError>,
    {
        let (mut parts, body) = resp.into_parts();
        self.clean(&mut parts.headers);
        set_status(&mut parts.headers, &self.name, what);
        Response::from_parts(parts, CacheBody::stream(body))
    }

    /// Removes what must not travel on: hop-by-hop headers, and headers meant for this cache.
    fn clean(&self, headers: &mut HeaderMap) {
        strip_hop_by_hop(headers);
        if self.rules.surrogate.is_some() {
            headers.remove(SURROGATE_CONTROL);
        }
        if let Some(t) = &self.tag_header {
            headers.remove(t);
        }
    }

    /// Takes a response from the origin: stores it if allowed, and answers the client with it.
    async fn admit<RB>(
        &self,
        asked: &Asked,
        resp: Response<RB>,
        request_time: Timestamp,
        response_time: Timestamp,
        fwd: &str,
    ) -> Response<CacheBody>
    where
        RB: Body<Data = Bytes> + Send + 'static,
        RB::Error: Into<BoxError>,
    {
        let has_auth = asked.headers.contains_key(header::AUTHORIZATION);
        let analysis = if asked.method == Method::GET {
            analyze(
                resp.status(),
                resp.headers(),
                has_auth,
                asked.directives.no_store,
                request_time,
                response_time,
                &self.rules,
            )
        } else {
            Err("method")
        };
        let freshness = match analysis {
            Ok(f) => f,
            Err(why) => {
                if why == "vary-star" {
                    // The newest response varies on everything: older variants must not answer.
                    self.store.remove(&asked.primary).await.ok();
                }
                return self.answer_uncached(asked, resp, &format!("{fwd}; detail={why}"));
            }
        };
        let (mut parts, body) = resp.into_parts();
        let tags = self.tags(&parts.headers);
        let withheld = withheld_fields(&parts.headers);
        self.clean(&mut parts.headers);
        parts.headers.remove(CACHE_STATUS);
        let body = match collect(body, self.max_body).await {
            Collected::Full(b) => b,
            Collected::TooLarge(body) => {
                set_status(&mut parts.headers, &self.name, &format!("{fwd}; detail=too-large"));
                return Response::from_parts(parts, body);
            }
            Collected::Failed => {
                let mut r = Response::new(CacheBody::empty());
                *r.status_mut() = StatusCode::BAD_GATEWAY;
                set_status(r.headers_mut(), &self.name, &format!("{fwd}; detail=body-failed"));
                return r;
            }
        };
        let mut stored =
            StoredResponse { status: parts.status, headers: parts.headers, body, freshness };
        let now = self.clock.now();
        let what = format!("{fwd}; stored");
        if withheld.is_empty() {
            self.write(asked, &stored, tags).await;
            return self.serve(&stored, asked, now, &what);
        }
        // This client may see every field; the stored copy keeps none of the withheld ones.
        let answer = self.serve(&stored, asked, now, &what);
        for f in &withheld {
            stored.headers.remove(f.as_str());
        }
        self.write(asked, &stored, tags).await;
        answer
    }

    /// An origin response that is not stored, answered to the client (with `304` when the
    /// client's validators match what the origin sent).
    fn answer_uncached<RB>(
        &self,
        asked: &Asked,
        resp: Response<RB>,
        what: &str,
    ) -> Response<CacheBody>
    where
        RB: Body<Data = Bytes> + Send + 'static,
        RB::Error: Into<BoxError>,
    {
        if resp.status() == StatusCode::OK
            && (asked.headers.contains_key(header::IF_NONE_MATCH)
                || asked.headers.contains_key(header::IF_MODIFIED_SINCE))
            && not_modified(&asked.headers, resp.headers())
        {
            let (mut parts, _) = resp.into_parts();
            self.clean(&mut parts.headers);
            parts.headers = not_modified_headers(&parts.headers);
            parts.status = StatusCode::NOT_MODIFIED;
            set_status(&mut parts.headers, &self.name, what);
            return Response::from_parts(parts, CacheBody::empty());
        }
        self.pass(resp, what)
    }

    fn tags(&self, headers: &HeaderMap) -> Vec<String> {
        let Some(name) = &self.tag_header else { return Vec::new() };
        let mut tags: Vec<String> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(|c: char| c.is_whitespace() || c == ','))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        tags.sort_unstable();
        tags.dedup();
        tags
    }

    /// Writes a response under the request's primary key, or under its variant key with a Vary
    /// index at the primary key.
    async fn write(&self, asked: &Asked, stored: &StoredResponse, tags: Vec<String>) {
        let names = vary_names(&stored.headers).unwrap_or_default();
        if names.is_empty() {
            self.write_at(&asked.primary, stored, tags).await;
        } else {
            let key = variant(&asked.primary, &names, &asked.headers);
            let meta = self.meta(stored, Vec::new());
            let index = TierEntry::new(Record::Vary(names).encode(), meta);
            let _ = self.store.put(&asked.primary, index).await;
            self.write_at(&key, stored, tags).await;
        }
        self.count(STORED);
    }

    /// The store metadata of a response: kept while fresh, plus its stale windows, plus the
    /// keep time when it can be revalidated.
    fn meta(&self, stored: &StoredResponse, tags: Vec<String>) -> EntryMeta {
        let now = self.clock.now();
        let validator = stored.headers.contains_key(header::ETAG)
            || stored.headers.contains_key(header::LAST_MODIFIED);
        let keep = if validator { self.keep } else { self.grace.unwrap_or_default() };
        let keep = stored.freshness.retention(now, keep);
        EntryMeta {
            created: now,
            expires: Some(now.saturating_add(keep.max(1))),
            tags,
            subject: None,
            version: 0,
            weight: u32::try_from(stored.body.len()).unwrap_or(u32::MAX),
        }
    }

    /// Applies a `304` to a stored response and stores the result (§4.3.4).
    async fn freshen(
        &self,
        asked: &Asked,
        found: &Found,
        not_modified_headers: &HeaderMap,
        request_time: Timestamp,
        response_time: Timestamp,
    ) -> StoredResponse {
        self.count(REVALIDATED);
        let mut updated = found.stored.clone();
        let mut h304 = not_modified_headers.clone();
        self.clean(&mut h304);
        h304.remove(CACHE_STATUS);
        // The old Age described the old response.
        updated.headers.remove(header::AGE);
        freshen(&mut updated.headers, &h304);
        let has_auth = asked.headers.contains_key(header::AUTHORIZATION);
        match analyze(
            updated.status,
            &updated.headers,
            has_auth,
            false,
            request_time,
            response_time,
            &self.rules,
        ) {
            Ok(f) => {
                updated.freshness = f;
                let tags = self.tags(not_modified_headers);
                let tags = if tags.is_empty() { found.tags.clone() } else { tags };
                self.write_at(&found.key, &updated, tags).await;
            }
            Err(_) => {
                // The origin no longer allows storing it: answer this once, then forget it.
                let _ = self.store.remove(&found.key).await;
                updated.freshness = Freshness { response_time, ..updated.freshness };
            }
        }
        updated
    }

    async fn write_at(&self, key: &[u8], stored: &StoredResponse, tags: Vec<String>) {
        let meta = self.meta(stored, tags);
        let entry = TierEntry::new(Record::Response(stored.clone()).encode(), meta);
        let _ = self.store.put(key, entry).await;
    }
}
