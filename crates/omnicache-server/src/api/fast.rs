//! The API as one service: a fast path for `GET /caches/{name}/entries/{key}` before the router,
//! and the percent-encoding check of entry keys.

use super::*;

/// The API as one service: the router, and before it a fast path for the hottest request,
/// `GET /caches/{name}/entries/{key}` with a valid key, which answers it without routing,
/// middleware and extractors (a third of the server's user-space work per request). The
/// answer is the router's own: the same handler body ([`read_entry`]) and, for anything the
/// fast path does not recognise or a key it does not accept, the router itself.
#[derive(Clone)]
pub(crate) struct ApiService {
    pub(super) state: Shared,
    pub(super) router: Router,
}

impl std::fmt::Debug for ApiService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiService").field("state", &self.state).finish_non_exhaustive()
    }
}

/// The API's service, fast path included.
pub(crate) fn service(state: Shared) -> ApiService {
    ApiService { router: router(state.clone()), state }
}

pub(super) type BoxedResponse = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
>;

impl tower_service::Service<Request> for ApiService {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = BoxedResponse;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower_service::Service::<Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, req: Request) -> BoxedResponse {
        if let Some((grant, name, key)) = fast_entry_get(&self.state, &req) {
            let state = self.state.clone();
            return Box::pin(async move {
                let started = now_nanos();
                let mut resp = match read_entry(&state, &grant, &name, &key).await {
                    Ok(resp) => resp,
                    Err(e) => e.into_response(),
                };
                state.server_metrics.observe_entry_get(
                    resp.status().as_u16(),
                    now_nanos().saturating_sub(started) as f64 / 1e9,
                );
                // As the router does for a body of known length.
                if let Some(n) = axum::body::HttpBody::size_hint(resp.body()).exact() {
                    resp.headers_mut()
                        .entry(header::CONTENT_LENGTH)
                        .or_insert(HeaderValue::from(n));
                }
                Ok(resp)
            });
        }
        Box::pin(tower_service::Service::<Request>::call(&mut self.router, req))
    }
}

/// An error for an entry path whose key is not valid percent-encoding (`%zz`, a `%` at the
/// end, bytes that are not UTF-8): such a key would otherwise be stored literally, as a
/// different key than the client meant.
/// Now, in nanoseconds, by core's system clock.
fn now_nanos() -> u64 {
    omnicache_core::Clock::now(&omnicache_core::SystemClock)
}

/// Counts each routed request by its route template (never its path), method and status, with
/// its duration. The fast path for entry reads counts its own.
pub(super) async fn record_request(
    State(state): State<Shared>,
    req: Request,
    next: Next,
) -> Response {
    let started = now_nanos();
    let method = req.method().as_str().to_string();
    let route: std::borrow::Cow<'static, str> = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or(std::borrow::Cow::Borrowed("unmatched"), |p| p.as_str().to_string().into());
    let resp = next.run(req).await;
    let seconds = now_nanos().saturating_sub(started) as f64 / 1e9;
    state.server_metrics.observe(route, &method, resp.status().as_u16(), seconds);
    resp
}

pub(super) fn bad_key_encoding(path: &str) -> Option<ApiError> {
    let (_, key) = path.strip_prefix("/caches/")?.split_once("/entries/")?;
    let key = key.strip_suffix("/complaints").unwrap_or(key);
    let bytes = key.as_bytes();
    let bad = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    let bad = bad || percent_encoding::percent_decode_str(key).decode_utf8().is_err();
    bad.then(|| {
        ApiError::bad(
            "invalid_key",
            "the key is not valid percent-encoding: write % as %25, and encode UTF-8 only",
        )
    })
}

pub(super) async fn reject_bad_key_encoding(req: Request, next: Next) -> Response {
    match bad_key_encoding(req.uri().path()) {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    }
}

/// The grant, cache name and key of a `GET /caches/{name}/entries/{key}` whose API key is
/// valid, with the path's segments percent-decoded as axum's `Path` does; `None` for anything
/// else, which goes to the router.
pub(super) fn fast_entry_get(
    state: &AppState,
    req: &Request,
) -> Option<(Arc<Grant>, String, String)> {
    if req.method() != axum::http::Method::GET {
        return None;
    }
    if bad_key_encoding(req.uri().path()).is_some() {
        return None; // the router rejects it, after authentication
    }
    let rest = req.uri().path().strip_prefix("/caches/")?;
    let (name, rest) = rest.split_once('/')?;
    let key = rest.strip_prefix("entries/")?;
    if name.is_empty() || key.is_empty() || key.contains('/') {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
    };
    let (name, key) = (decode(name)?, decode(key)?);
    let grant = state.keys.authorize(presented_key(req.headers())?.trim())?;
    Some((grant, name, key))
}
