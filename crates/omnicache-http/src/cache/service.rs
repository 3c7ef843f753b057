//! The tower side: `CacheLayer` and `CacheService`, and how one request runs (lookup, freshness,
//! validation, the origin, storing).

use super::*;

/// A tower [`Layer`] that puts an [`HttpCache`] in front of a service.
#[derive(Debug, Clone)]
pub struct CacheLayer {
    pub(super) cache: HttpCache,
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
    pub(super) inner: Arc<Mutex<S>>,
    pub(super) cache: HttpCache,
}

pub(super) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

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
pub(super) struct Run<S, B, RB> {
    pub(super) shared: Arc<Shared>,
    pub(super) svc: Arc<Mutex<S>>,
    pub(super) _types: PhantomData<fn(B) -> RB>,
}

/// What a request asked, kept after its body went upstream.
pub(super) struct Asked {
    pub(super) method: Method,
    pub(super) uri: Uri,
    pub(super) version: http::Version,
    pub(super) headers: HeaderMap,
    /// The request's extensions, handed to the first origin request made for it.
    pub(super) extensions: http::Extensions,
    pub(super) directives: RequestDirectives,
    pub(super) primary: Vec<u8>,
}

impl Asked {
    pub(super) fn head(&self) -> bool {
        self.method == Method::HEAD
    }

    /// A request to the origin like this one, without the client's validators.
    pub(super) fn upstream<B>(&self, shared: &Shared, method: Method, body: B) -> Request<B> {
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

pub(super) fn strip_validators(h: &mut HeaderMap) {
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
pub(super) struct Found {
    pub(super) key: Vec<u8>,
    pub(super) stored: StoredResponse,
    /// The stored entry's tags, kept when a 304 freshens it without naming any.
    pub(super) tags: Vec<String>,
}

/// What a lookup found.
// Built once per request and taken apart at once: boxing the hit would cost an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Lookup {
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
    pub(super) fn svc(&self) -> S {
        self.svc.lock().clone()
    }

    pub(super) async fn handle(self, req: Request<B>) -> Result<Response<CacheBody>, S::Error> {
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
    pub(super) async fn other_method(
        self,
        req: Request<B>,
    ) -> Result<Response<CacheBody>, S::Error> {
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
    pub(super) async fn miss(
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
    pub(super) async fn validate(
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
    pub(super) fn refresh_in_background(&self, asked: &Asked, found: &Found) {
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

/// Builds the conditional request validating `stored`: its `ETag` and `Last-Modified` as
/// `If-None-Match` and `If-Modified-Since`.
pub(super) fn conditional<B: Default>(
    asked: &Asked,
    shared: &Shared,
    stored: &StoredResponse,
) -> Request<B> {
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
pub(super) fn same_representation(stored: &HeaderMap, head: &HeaderMap) -> bool {
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

pub(super) fn is_error(s: StatusCode) -> bool {
    matches!(s.as_u16(), 500 | 502 | 503 | 504)
}

pub(super) async fn call<S, R>(svc: &mut S, req: R) -> Result<S::Response, S::Error>
where
    S: Service<R>,
{
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
    svc.call(req).await
}

pub(super) fn gateway_timeout(shared: &Shared) -> Response<CacheBody> {
    let mut r = Response::new(CacheBody::empty());
    *r.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    set_status(r.headers_mut(), &shared.name, "fwd=miss; detail=only-if-cached");
    r
}

pub(super) fn set_status(headers: &mut HeaderMap, name: &str, what: &str) {
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
pub(super) fn same_origin_target(target: &str, base: &str, host: &[u8]) -> Option<String> {
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
