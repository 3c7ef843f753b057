//! The REST API: handlers, their OpenAPI description, authentication and errors.

use crate::config::{
    valid_cache_name, CacheSpec, PolicyName, ServerConfig, TierKind, TierSpec, WriteMode,
};
use crate::keys::{ApiKeys, Grant, KeyInfo, RevokeError, Scope};
use crate::value::{pack_value, unpack_value};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use base64::Engine as _;
use omnicache_core::{DynTier, Error, Invalidation, RemovalCause, Result, TierHealth};
use omnicache_tiers::disk::DiskTier;
use omnicache_tiers::tiered::{CostModel, PutOptions, TierSettings, TieredCache, WritePolicy};
use omnicache_tiers::warm::{WarmFormat, WarmOptions, WarmReport};
use omnicache_tiers::BreakerState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The SQLite file of cache `name` under `data_dir`.
pub fn cache_db_path(data_dir: &std::path::Path, name: &str) -> PathBuf {
    if name == "default" {
        data_dir.join("default.db")
    } else {
        data_dir.join("caches").join(format!("{name}.db"))
    }
}

/// Most keys one batch may name.
const MAX_BATCH: usize = 1_000;

struct Named {
    spec: CacheSpec,
    cache: TieredCache,
    /// Declared in the config file rather than created over the API.
    from_config: bool,
    /// The HTTP response cache storing in it, when it serves `omnicache proxy`.
    http: Option<omnicache_http::HttpCache>,
}

/// The server's state: its caches and keys.
pub struct AppState {
    caches: RwLock<BTreeMap<String, Named>>,
    keys: ApiKeys,
    config: ServerConfig,
    /// Held for as long as the state lives: no second server on this data directory.
    _lock: crate::datadir::DataDirLock,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("caches", &self.read().keys().collect::<Vec<_>>())
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Opens the caches of the config (`default` always, memory over a disk tier unless the
    /// config says otherwise) and every cache created over the API before, from `caches.json`.
    pub async fn open(
        config: ServerConfig,
        keys: ApiKeys,
        lock: crate::datadir::DataDirLock,
    ) -> Result<AppState> {
        let state = AppState { caches: RwLock::default(), keys, config, _lock: lock };
        let mut specs: Vec<(String, CacheSpec, bool)> = Vec::new();
        if !state.config.caches.contains_key("default") {
            specs.push(("default".into(), CacheSpec::default(), true));
        }
        for (name, spec) in &state.config.caches {
            specs.push((name.clone(), spec.clone(), true));
        }
        let file = state.specs_file();
        if file.exists() {
            let text = std::fs::read_to_string(&file)?;
            let saved: BTreeMap<String, CacheSpec> = serde_json::from_str(&text).map_err(|e| {
                Error::invalid_input(format!("{}: not a map of caches: {e}", file.display()))
            })?;
            for (name, spec) in saved {
                if !specs.iter().any(|(n, _, _)| *n == name) {
                    specs.push((name, spec, false));
                }
            }
        }
        for (name, spec, from_config) in specs {
            let cache = state
                .build_cache(&name, &spec)
                .await
                .map_err(|e| e.context(format!("opening cache {name:?}")))?;
            // A tier down at start degrades the cache (and `/ready`) instead of failing it.
            for (i, failure) in cache.probe().await.into_iter().enumerate() {
                if let Some(reason) = failure {
                    eprintln!("warning: cache {name:?}: tiers[{i}] is down: {reason}");
                }
            }
            state.write().insert(name, Named { spec, cache, from_config, http: None });
        }
        Ok(state)
    }

    fn specs_file(&self) -> PathBuf {
        self.config.data_dir.join("caches.json")
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Named>> {
        self.caches.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Named>> {
        self.caches.write().unwrap_or_else(|e| e.into_inner())
    }

    async fn open_tier(&self, cache: &str, t: &TierSpec) -> Result<Arc<dyn DynTier>> {
        match t.kind {
            TierKind::Disk => {
                let path = t.path.clone().unwrap_or_else(|| cache_db_path(&self.config.data_dir, cache));
                let mut b = DiskTier::builder(path);
                if let Some(max) = t.max_bytes {
                    b = b.max_bytes(max);
                }
                Ok(Arc::new(b.open()?))
            }
            #[cfg(feature = "redis")]
            TierKind::Redis => {
                let mut b = omnicache_tiers::redis::RedisTier::builder(
                    t.url.clone().unwrap_or_default(),
                )
                .namespace(t.namespace.clone().unwrap_or_else(|| format!("omnicache:{cache}")));
                // Redis down at start degrades the cache instead of failing the start.
                b = b.lazy(true);
                if let Some(nodes) = &t.cluster {
                    b = b.cluster(nodes.clone());
                }
                if let Some(ms) = t.timeout_ms {
                    b = b.timeout(Duration::from_millis(ms));
                }
                Ok(Arc::new(b.connect().await?))
            }
            #[cfg(feature = "s3")]
            TierKind::S3 => {
                let mut b = omnicache_tiers::s3::S3Tier::builder(
                    t.url.clone().unwrap_or_default(),
                    t.bucket.clone().unwrap_or_default(),
                )
                .prefix(t.prefix.clone().unwrap_or_else(|| format!("omnicache/{cache}/")));
                if let Some(r) = &t.region {
                    b = b.region(r.clone());
                }
                if let Some(ms) = t.timeout_ms {
                    b = b.timeout(Duration::from_millis(ms));
                }
                Ok(Arc::new(b.build()?))
            }
            #[allow(unreachable_patterns)]
            other => Err(Error::invalid_input(format!(
                "this omnicache was built without {other:?} tiers; rebuild omnicache-cli with --features {}",
                if other == TierKind::Redis { "redis" } else { "s3" }
            ))),
        }
    }

    async fn build_cache(&self, name: &str, spec: &CacheSpec) -> Result<TieredCache> {
        let mut b =
            TieredCache::builder().l1_capacity(spec.l1_capacity.unwrap_or(self.config.l1_capacity));
        if let Some(bytes) = spec.l1_max_bytes {
            b = b.l1_max_bytes(bytes);
        }
        if let Some(p) = &spec.policy {
            let factory = omnicache_strategies::by_name(p)
                .ok_or_else(|| Error::invalid_input(format!("unknown policy {p:?}")))?;
            b = b.l1_policy(factory);
        }
        if let Some(t) = spec.default_ttl_secs {
            b = b.default_ttl(Duration::from_secs_f64(t));
        }
        let default_tiers = [TierSpec::disk()];
        for t in spec.tiers.as_deref().unwrap_or(&default_tiers) {
            let tier = self.open_tier(name, t).await?;
            let write = match t.write {
                WriteMode::Through => WritePolicy::Through,
                WriteMode::Behind => WritePolicy::Behind,
                WriteMode::OnEvict => WritePolicy::OnEvict,
            };
            let (ttl_cap, timeout, max_value) = (t.ttl_cap_secs, t.timeout_ms, t.max_value_bytes);
            let cost = t.cost_model();
            b = b.tier_with(tier, write, move |s| TierSettings {
                ttl_cap: ttl_cap.map(Duration::from_secs_f64),
                timeout: timeout.map_or(s.timeout, Duration::from_millis),
                max_value_bytes: max_value,
                cost,
                ..s
            });
        }
        b.build()
    }

    fn save_specs(&self) -> Result<()> {
        let specs: BTreeMap<String, CacheSpec> = self
            .read()
            .iter()
            .filter(|(_, n)| !n.from_config)
            .map(|(name, n)| (name.clone(), n.spec.clone()))
            .collect();
        crate::keys::replace_private(
            &self.specs_file(),
            &serde_json::to_vec_pretty(&specs).unwrap_or_default(),
        )
    }

    /// Records that `http` stores its responses in the cache `name`, so the cache's stats
    /// include the HTTP cache's counters.
    pub(crate) fn serve_http(&self, name: &str, http: omnicache_http::HttpCache) {
        if let Some(n) = self.write().get_mut(name) {
            n.http = Some(http);
        }
    }

    fn cache(&self, name: &str) -> std::result::Result<TieredCache, ApiError> {
        self.read().get(name).map(|n| n.cache.clone()).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "cache_not_found",
                format!("no cache named {name:?}"),
            )
        })
    }

    /// The cache `name`, opened with the default spec (memory over a disk tier) when neither
    /// the config nor the API declared it. Such a cache belongs to the process that asked for it
    /// (the proxy), like one from the config: it cannot be deleted over the API.
    pub async fn cache_or_default(&self, name: &str) -> Result<TieredCache> {
        if let Some(n) = self.read().get(name) {
            return Ok(n.cache.clone());
        }
        let spec = CacheSpec::default();
        let cache = self.build_cache(name, &spec).await?;
        self.write().insert(
            name.to_string(),
            Named { spec, cache: cache.clone(), from_config: true, http: None },
        );
        Ok(cache)
    }

    /// Flushes and stops every cache's background work.
    pub async fn shutdown(&self) {
        let caches: Vec<TieredCache> = self.read().values().map(|n| n.cache.clone()).collect();
        for c in caches {
            c.shutdown().await;
        }
    }
}

impl TierSpec {
    fn disk() -> TierSpec {
        TierSpec {
            kind: TierKind::Disk,
            write: WriteMode::Through,
            ttl_cap_secs: None,
            max_value_bytes: None,
            timeout_ms: None,
            path: None,
            max_bytes: None,
            url: None,
            cluster: None,
            namespace: None,
            bucket: None,
            prefix: None,
            region: None,
            optional: false,
            cost: None,
        }
    }

    /// The cost model: the spec's figures over the kind's list prices.
    fn cost_model(&self) -> CostModel {
        let base = match self.kind {
            TierKind::Disk => CostModel::local_disk(),
            TierKind::Redis => CostModel::redis(),
            TierKind::S3 => CostModel::s3_standard(),
        };
        let c = self.cost.unwrap_or_default();
        CostModel {
            usd_per_gb_month: c.usd_per_gb_month.unwrap_or(base.usd_per_gb_month),
            usd_per_million_requests: c
                .usd_per_million_requests
                .unwrap_or(base.usd_per_million_requests),
            typical_latency: c
                .latency_ms
                .map_or(base.typical_latency, |ms| Duration::from_secs_f64(ms / 1e3)),
        }
    }
}

/// An error as every endpoint sends it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable code, such as `cache_not_found`.
    code: String,
    /// For people.
    message: String,
}

/// An API error: a status, a stable code and a message, sent as JSON.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody { error: ErrorDetail { code: code.to_string(), message } };
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status, self.code, self.message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match e.kind() {
            omnicache_core::ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            omnicache_core::ErrorKind::NotFound => StatusCode::NOT_FOUND,
            omnicache_core::ErrorKind::Unavailable | omnicache_core::ErrorKind::Timeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.kind().as_str(), e.to_string())
    }
}

type Shared = Arc<AppState>;
type ApiResult<T> = std::result::Result<T, ApiError>;

/// Checks that `grant` has `scope` and, when a cache is named, covers it.
fn need(grant: &Grant, scope: Scope, cache: Option<&str>) -> ApiResult<()> {
    if !grant.has(scope) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the key {:?} lacks the {} scope", grant.name, scope.as_str()),
        ));
    }
    match cache {
        Some(c) if !grant.covers(c) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the key {:?} may not use cache {c:?}", grant.name),
        )),
        _ => Ok(()),
    }
}

/// Checks that `grant` has `scope` for every cache (creating caches, managing keys).
fn need_global(grant: &Grant, scope: Scope) -> ApiResult<()> {
    need(grant, scope, None)?;
    if grant.covers_all() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the key {:?} is limited to some caches; this needs a key for all", grant.name),
        ))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "OmniCache",
        description = "Named caches over REST. Send `Authorization: Bearer KEY` (or `X-Api-Key`); keys have the scopes read, write and admin, optionally per cache. Errors are `{\"error\": {\"code\", \"message\"}}`."
    ),
    modifiers(&SecurityAddon),
    security(("api_key" = [])),
    tags(
        (name = "caches", description = "Create, inspect, tune and drop caches"),
        (name = "entries", description = "Values by key, batches, keys and invalidation"),
        (name = "bulk", description = "Warm, import and export"),
        (name = "keys", description = "API keys"),
        (name = "ops", description = "Liveness, readiness and this document")
    )
)]
struct ApiDoc;

struct SecurityAddon;

/// Bodies that may be empty: an empty value, an empty warm or import file.
const OPTIONAL_BODIES: &[(&str, &str)] = &[
    ("/caches/{name}/entries/{key}", "put"),
    ("/caches/{name}/warm", "post"),
    ("/caches/{name}/import", "post"),
];

/// Marks [`OPTIONAL_BODIES`] as not required (utoipa marks every body required).
fn optional_bodies(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::Required;
    for (path, method) in OPTIONAL_BODIES {
        let Some(item) = openapi.paths.paths.get_mut(*path) else { continue };
        let op = match *method {
            "put" => item.put.as_mut(),
            _ => item.post.as_mut(),
        };
        if let Some(body) = op.and_then(|o| o.request_body.as_mut()) {
            body.required = Some(Required::False);
        }
    }
}

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of this API, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routers().2
}

/// The open routes, the key-protected routes and the document of both.
fn routers() -> (axum::Router<Shared>, axum::Router<Shared>, utoipa::openapi::OpenApi) {
    let (open, open_spec) =
        OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready)).split_for_parts();
    let (protected, mut spec) = api_router().split_for_parts();
    spec.merge(open_spec);
    optional_bodies(&mut spec);
    (open, protected, spec)
}

fn api_router() -> OpenApiRouter<Shared> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_caches, create_cache))
        .routes(routes!(cache_info, update_cache, delete_cache))
        .routes(routes!(cache_stats))
        .routes(routes!(cache_cost))
        .routes(routes!(clear_cache))
        .routes(routes!(invalidate))
        .routes(routes!(list_keys))
        .routes(routes!(batch_get))
        .routes(routes!(batch_set))
        .routes(routes!(get_entry, put_entry, delete_entry))
        .routes(routes!(complain_entry))
        .routes(routes!(warm_cache))
        .routes(routes!(import_cache))
        .routes(routes!(export_cache))
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(revoke_api_key))
}

/// The router: open routes, then key-protected ones; every error as JSON.
pub(crate) fn router(state: Shared) -> Router {
    let (open, protected, spec) = routers();
    let spec = Arc::new(spec);
    let protected = protected
        .layer(middleware::from_fn(reject_bad_key_encoding))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .merge(open)
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let spec = spec.clone();
                async move { Json(spec.as_ref().clone()) }
            }),
        )
        .merge(protected)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(middleware::map_response(errors_as_json))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}

/// The API as one service: the router, and before it a fast path for the hottest request,
/// `GET /caches/{name}/entries/{key}` with a valid key, which answers it without routing,
/// middleware and extractors (a third of the server's user-space work per request). The
/// answer is the router's own: the same handler body ([`read_entry`]) and, for anything the
/// fast path does not recognise or a key it does not accept, the router itself.
#[derive(Clone)]
pub(crate) struct ApiService {
    state: Shared,
    router: Router,
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

type BoxedResponse = std::pin::Pin<
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
                let mut resp = match read_entry(&state, &grant, &name, &key).await {
                    Ok(resp) => resp,
                    Err(e) => e.into_response(),
                };
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
fn bad_key_encoding(path: &str) -> Option<ApiError> {
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

async fn reject_bad_key_encoding(req: Request, next: Next) -> Response {
    match bad_key_encoding(req.uri().path()) {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    }
}

/// The grant, cache name and key of a `GET /caches/{name}/entries/{key}` whose API key is
/// valid, with the path's segments percent-decoded as axum's `Path` does; `None` for anything
/// else, which goes to the router.
fn fast_entry_get(state: &AppState, req: &Request) -> Option<(Arc<Grant>, String, String)> {
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

/// Rewrites axum's own rejections (plain text) as JSON errors; bodies that fail to parse are
/// 400 whatever axum says (415, 422).
async fn errors_as_json(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_string();
    let (status, code) = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::UNPROCESSABLE_ENTITY => {
            (StatusCode::BAD_REQUEST, "invalid_body")
        }
        StatusCode::PAYLOAD_TOO_LARGE => (status, "body_too_large"),
        StatusCode::METHOD_NOT_ALLOWED => (status, "method_not_allowed"),
        StatusCode::NOT_FOUND => (status, "not_found"),
        s if s.is_server_error() => (s, "internal"),
        s => (s, "bad_request"),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message
    };
    let mut out = error_response(status, code, message);
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

/// The API key a request presents: `Authorization: Bearer KEY` or `X-Api-Key: KEY`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // Authentication schemes are case-insensitive (RFC 9110 §11.1).
            let (scheme, key) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim_start())
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
}

async fn authenticate(State(state): State<Shared>, mut req: Request, next: Next) -> Response {
    let Some(key) = presented_key(req.headers()) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "an API key is required (Authorization: Bearer KEY)",
        )
        .into_response();
    };
    match state.keys.authorize(key.trim()) {
        None => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the API key is not valid")
            .into_response(),
        Some(grant) => {
            req.extensions_mut().insert(grant);
            next.run(req).await
        }
    }
}

fn health_name(h: TierHealth) -> &'static str {
    match h {
        TierHealth::Healthy => "healthy",
        TierHealth::Degraded => "degraded",
        TierHealth::Unavailable => "unavailable",
    }
}

fn breaker_name(b: BreakerState) -> &'static str {
    match b {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
    }
}

/// Liveness.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "ops", security(()),
    responses((status = 200, description = "Alive", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// A tier's state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TierState {
    /// Its name (`disk`, `redis`, `s3`).
    tier: String,
    /// healthy, degraded or unavailable.
    health: String,
    /// closed, open or half_open.
    breaker: String,
    /// Whether `/ready` needs it (tiers are required unless declared `optional`).
    required: bool,
    /// Whether the last call that reached it failed.
    failing: bool,
    /// The reason of its last failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
}

/// Readiness of every cache.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Ready {
    /// `ready`; `degraded` when an optional tier is down; `not_ready` when a required one is
    /// (memory still serves).
    status: String,
    /// Each cache's tiers; only for a request with an API key, and only the caches it may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caches: Option<BTreeMap<String, Vec<TierState>>>,
}

fn tier_states(n: &Named) -> Vec<TierState> {
    n.cache
        .tiers()
        .into_iter()
        .enumerate()
        .map(|(i, t)| TierState {
            tier: t.name,
            health: health_name(t.health).into(),
            breaker: breaker_name(t.breaker).into(),
            required: !n.spec.tier_optional(i),
            failing: t.failing,
            last_error: t.last_error,
        })
        .collect()
}

impl TierState {
    /// Down: unavailable by its own account, its breaker open, or its last call failed.
    fn down(&self) -> bool {
        self.health == "unavailable" || self.breaker == "open" || self.failing
    }
}

/// Readiness: `ready` (200) when every tier answers; `degraded` (200) when only optional tiers
/// are down; `not_ready` (503) when a required tier is down (memory still serves, but what the
/// cache promises, such as sharing entries through Redis, does not hold). Tiers whose last
/// call failed are probed again first. Without an API key only the status is shown; with one,
/// the tiers of the caches it may use, each with its last error.
#[utoipa::path(get, path = "/ready", tag = "ops", security(()),
    responses((status = 200, description = "Ready or degraded", body = Ready),
        (status = 503, description = "A required tier is down", body = Ready)))]
async fn ready(State(state): State<Shared>, headers: HeaderMap) -> (StatusCode, Json<Ready>) {
    let caches: Vec<(String, TieredCache)> =
        state.read().iter().map(|(name, n)| (name.clone(), n.cache.clone())).collect();
    for (_, cache) in &caches {
        cache.probe_failing().await;
    }
    let all: BTreeMap<String, Vec<TierState>> =
        state.read().iter().map(|(name, n)| (name.clone(), tier_states(n))).collect();
    let tiers = || all.values().flatten();
    let (code, status) = if tiers().any(|t| t.required && t.down()) {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    } else if tiers().any(TierState::down) {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "ready")
    };
    let grant = presented_key(&headers).and_then(|k| state.keys.authorize(k));
    let caches = grant.map(|g| all.into_iter().filter(|(name, _)| g.covers(name)).collect());
    (code, Json(Ready { status: status.into(), caches }))
}

/// A cache in a listing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CacheSummary {
    /// Its name.
    name: String,
    /// Entries in memory.
    l1_entries: u64,
    /// The memory layer's eviction policy.
    policy: String,
}

/// The caches a key may use.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CacheList {
    /// By name.
    caches: Vec<CacheSummary>,
}

/// Lists the caches this key may use.
#[utoipa::path(get, path = "/caches", tag = "caches",
    responses((status = 200, body = CacheList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_caches(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
) -> ApiResult<Json<CacheList>> {
    need(&grant, Scope::Read, None)?;
    let caches = state
        .read()
        .iter()
        .filter(|(name, _)| grant.covers(name))
        .map(|(name, n)| CacheSummary {
            name: name.clone(),
            l1_entries: n.cache.l1_entry_count(),
            policy: n.cache.l1_policy_name(),
        })
        .collect();
    Ok(Json(CacheList { caches }))
}

/// `POST /caches`: a name and the cache's spec (the fields of a config file's cache).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateCache {
    /// 1 to 64 characters of a-z, 0-9, `-`, `_`.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    name: String,
    /// The eviction policy. Default: s3fifo.
    #[serde(default)]
    policy: Option<PolicyName>,
    /// Entries kept in memory. Default: the server's `l1_capacity`.
    #[serde(default)]
    #[schema(minimum = 1)]
    l1_capacity: Option<u64>,
    /// Bound memory by value bytes instead of entries.
    #[serde(default)]
    #[schema(minimum = 1)]
    l1_max_bytes: Option<u64>,
    /// The TTL of entries stored without one, in seconds.
    #[serde(default)]
    #[schema(exclusive_minimum = 0, exclusive_maximum = 1e12)]
    default_ttl_secs: Option<f64>,
    /// The tiers below memory, fastest first. Default: one disk tier in the data directory.
    /// Disk tiers live in the data directory (`path` is for the config file only).
    #[serde(default)]
    tiers: Option<Vec<TierSpec>>,
}

impl CreateCache {
    fn into_spec(self) -> (String, CacheSpec) {
        let policy = self.policy.map(PolicyName::name);
        let spec = CacheSpec {
            policy,
            l1_capacity: self.l1_capacity,
            l1_max_bytes: self.l1_max_bytes,
            default_ttl_secs: self.default_ttl_secs,
            tiers: self.tiers,
        };
        (self.name, spec)
    }
}

/// A created cache.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Created {
    /// Its name.
    name: String,
}

fn json_body<T>(
    body: std::result::Result<Json<T>, axum::extract::rejection::JsonRejection>,
    example: &str,
) -> ApiResult<T> {
    body.map(|Json(v)| v).map_err(|e| {
        ApiError::bad("invalid_json", format!("{}; expected for example {example}", e.body_text()))
    })
}

/// Creates a cache (kept across restarts). Needs admin. Each tier is called once first; one
/// that cannot be reached (wrong password, nobody listening) fails the creation with 422 and
/// its reason, unless it is declared `optional`.
#[utoipa::path(post, path = "/caches", tag = "caches", request_body = CreateCache,
    responses((status = 201, body = Created), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    body: std::result::Result<Json<CreateCache>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    need_global(&grant, Scope::Admin)?;
    let (name, spec) =
        json_body(body, r#"{"name":"users","policy":"lru","l1_capacity":10000}"#)?.into_spec();
    if !valid_cache_name(&name) {
        return Err(ApiError::bad(
            "invalid_name",
            "a cache name is 1 to 64 characters of a-z, 0-9, '-' and '_'",
        ));
    }
    spec.validate("body").map_err(|m| ApiError::bad("invalid_spec", m))?;
    if spec.tiers.iter().flatten().any(|t| t.path.is_some()) {
        return Err(ApiError::bad(
            "invalid_spec",
            "body.tiers: a disk tier's path can be set only in the config file; over the API it lives in the data directory",
        ));
    }
    if state.read().contains_key(&name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "cache_exists",
            format!("a cache named {name:?} exists"),
        ));
    }
    let cache = state.build_cache(&name, &spec).await.map_err(|e| {
        ApiError::bad("invalid_spec", format!("cannot open the cache as specified: {e}"))
    })?;
    // A tier that cannot work (a wrong password, nobody on the port) fails the creation with
    // its reason, unless it is declared optional.
    let failures = cache.probe().await;
    let failed: Vec<String> = failures
        .iter()
        .enumerate()
        .filter_map(|(i, f)| Some((i, f.as_ref()?)))
        .filter(|(i, _)| !spec.tier_optional(*i))
        .map(|(i, reason)| format!("tiers[{i}] ({}): {reason}", cache.tiers()[i].name))
        .collect();
    if !failed.is_empty() {
        cache.shutdown().await;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "tier_unavailable",
            format!(
                "cannot reach {}; fix the spec, or declare the tier \"optional\": true to create the cache degraded",
                failed.join("; ")
            ),
        ));
    }
    state.write().insert(name.clone(), Named { spec, cache, from_config: false, http: None });
    state.save_specs()?;
    Ok((StatusCode::CREATED, Json(Created { name })))
}

/// A cache's configuration and state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CacheInfo {
    /// Its name.
    name: String,
    /// The memory layer's eviction policy now.
    policy: String,
    /// Entries in memory.
    l1_entries: u64,
    /// How it was configured.
    spec: CacheSpec,
    /// Declared in the config file (changes over the API last until restart).
    from_config: bool,
    /// Its tiers.
    tiers: Vec<TierState>,
}

fn info_of(name: &str, n: &Named) -> CacheInfo {
    CacheInfo {
        name: name.to_string(),
        policy: n.cache.l1_policy_name(),
        l1_entries: n.cache.l1_entry_count(),
        spec: n.spec.redacted(),
        from_config: n.from_config,
        tiers: tier_states(n),
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "cache_not_found", format!("no cache named {name:?}"))
}

/// A cache's policy, configuration and tiers.
#[utoipa::path(get, path = "/caches/{name}", tag = "caches", params(("name" = String, Path)),
    responses((status = 200, body = CacheInfo), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn cache_info(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
) -> ApiResult<Json<CacheInfo>> {
    need(&grant, Scope::Read, Some(&name))?;
    let caches = state.read();
    let n = caches.get(&name).ok_or_else(|| not_found(&name))?;
    Ok(Json(info_of(&name, n)))
}

/// `PATCH /caches/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateCache {
    /// The new eviction policy; every entry is kept.
    policy: PolicyName,
}

/// Switches a cache's eviction policy live, keeping every entry. Needs admin.
#[utoipa::path(patch, path = "/caches/{name}", tag = "caches", params(("name" = String, Path)),
    request_body = UpdateCache,
    responses((status = 200, body = CacheInfo), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn update_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    body: std::result::Result<Json<UpdateCache>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<CacheInfo>> {
    need(&grant, Scope::Admin, Some(&name))?;
    let UpdateCache { policy } = json_body(body, r#"{"policy":"lru"}"#)?;
    let policy = policy.name();
    let factory = omnicache_strategies::by_name(&policy).ok_or_else(|| {
        ApiError::bad(
            "invalid_policy",
            format!(
                "unknown policy {policy:?}; expected one of {}",
                omnicache_strategies::NAMES.join(", ")
            ),
        )
    })?;
    let info = {
        let mut caches = state.write();
        let n = caches.get_mut(&name).ok_or_else(|| not_found(&name))?;
        n.cache.set_l1_policy(factory);
        n.spec.policy = Some(policy);
        info_of(&name, n)
    };
    state.save_specs()?;
    Ok(Json(info))
}

/// Drops a cache made over the API, and its data (not `default`, not one declared in the
/// config file: 409). Needs admin.
#[utoipa::path(delete, path = "/caches/{name}", tag = "caches", params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    need(&grant, Scope::Admin, Some(&name))?;
    if name == "default" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "cannot_delete_default",
            "the default cache cannot be deleted; clear it instead",
        ));
    }
    let removed = {
        let mut caches = state.write();
        match caches.get(&name) {
            None => return Err(not_found(&name)),
            Some(n) if n.from_config => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "cache_in_config",
                    format!("cache {name:?} is declared in the config file; remove it there"),
                ))
            }
            Some(_) => caches.remove(&name),
        }
    };
    let Some(n) = removed else { return Err(not_found(&name)) };
    n.cache.invalidate(&Invalidation::All).await;
    n.cache.shutdown().await;
    drop(n);
    state.save_specs()?;
    // Its SQLite file (and journal) in the data directory goes too: nothing stays readable.
    let db = cache_db_path(&state.config.data_dir, &name);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A tier's counters.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TierCounters {
    /// Its name.
    tier: String,
    /// healthy, degraded or unavailable.
    health: String,
    /// closed, open or half_open.
    breaker: String,
    /// Reads that found the entry.
    hits: u64,
    /// Reads that did not.
    misses: u64,
    /// Calls that failed or timed out.
    errors: u64,
    /// Of those, calls that timed out.
    timeouts: u64,
    /// The reason of its last failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    /// Writes that succeeded.
    writes: u64,
    /// Entries promoted from it.
    promotions: u64,
    /// Entries demoted to it.
    demotions: u64,
    /// Entries found corrupt.
    corrupt: u64,
    /// Mean call latency in microseconds.
    mean_latency_us: f64,
}

/// A cache's counters since start.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CacheStats {
    /// Its name.
    name: String,
    /// The memory layer's policy.
    policy: String,
    /// Entries in memory.
    l1_entries: u64,
    /// Memory's weighted size: entries, or bytes when bounded by bytes.
    l1_weighted_size: u64,
    /// Lookups served (from memory or a tier).
    hits: u64,
    /// Lookups no tier could serve.
    misses: u64,
    /// hits / (hits + misses), 0 before any lookup.
    hit_ratio: f64,
    /// Lower-tier hits copied into memory.
    promotions: u64,
    /// Memory evictions written to a lower tier.
    demotions: u64,
    /// Removals from memory by cause.
    removals: BTreeMap<String, u64>,
    /// Each tier's counters.
    tiers: Vec<TierCounters>,
    /// The HTTP response cache's counters, when this cache stores the responses of
    /// `omnicache proxy`; null otherwise.
    http: Option<HttpCounters>,
}

/// What the HTTP response cache in front of an origin has done since start.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct HttpCounters {
    /// Requests answered from the cache without contacting the origin.
    hits: u64,
    /// Of those, answered with a stale response (max-stale, stale-while-revalidate,
    /// stale-if-error).
    stale: u64,
    /// Requests forwarded to the origin (misses, validations, uncacheable methods).
    misses: u64,
    /// hits / (hits + misses), 0 before any request.
    hit_ratio: f64,
    /// Responses stored.
    stored: u64,
    /// Stored responses freshened by a 304 Not Modified.
    revalidated: u64,
    /// Requests that waited for another request to the same resource.
    coalesced: u64,
    /// Invalidations after unsafe methods and purges.
    invalidated: u64,
    /// Origin errors hidden by serving a stale response.
    errors_hidden: u64,
}

impl From<omnicache_http::HttpStats> for HttpCounters {
    fn from(h: omnicache_http::HttpStats) -> Self {
        let requests = h.hits + h.misses;
        HttpCounters {
            hits: h.hits,
            stale: h.stale,
            misses: h.misses,
            hit_ratio: if requests == 0 { 0.0 } else { h.hits as f64 / requests as f64 },
            stored: h.stored,
            revalidated: h.revalidated,
            coalesced: h.coalesced,
            invalidated: h.invalidated,
            errors_hidden: h.errors_hidden,
        }
    }
}

/// A cache's hit ratio, removals by cause and per-tier counters.
#[utoipa::path(get, path = "/caches/{name}/stats", tag = "caches", params(("name" = String, Path)),
    responses((status = 200, body = CacheStats), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn cache_stats(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
) -> ApiResult<Json<CacheStats>> {
    need(&grant, Scope::Read, Some(&name))?;
    let cache = state.cache(&name)?;
    let http = state.read().get(&name).and_then(|n| n.http.as_ref().map(|h| h.stats().into()));
    let s = cache.stats();
    let removals = RemovalCause::ALL
        .iter()
        .map(|c| (format!("{c:?}").to_ascii_lowercase(), s.removals[c.index()]))
        .collect();
    let tiers = cache
        .tiers()
        .into_iter()
        .map(|t| TierCounters {
            tier: t.name,
            health: health_name(t.health).into(),
            breaker: breaker_name(t.breaker).into(),
            hits: t.stats.hits,
            misses: t.stats.misses,
            errors: t.stats.errors,
            timeouts: t.stats.timeouts,
            last_error: t.last_error,
            writes: t.stats.writes,
            promotions: t.stats.promotions,
            demotions: t.stats.demotions,
            corrupt: t.stats.corrupt,
            mean_latency_us: if t.stats.calls == 0 {
                0.0
            } else {
                t.stats.latency_nanos as f64 / t.stats.calls as f64 / 1e3
            },
        })
        .collect();
    let lookups = s.hits + s.misses;
    Ok(Json(CacheStats {
        name,
        policy: cache.l1_policy_name(),
        l1_entries: cache.l1_entry_count(),
        l1_weighted_size: cache.l1_weighted_size(),
        hits: s.hits,
        misses: s.misses,
        hit_ratio: if lookups == 0 { 0.0 } else { s.hits as f64 / lookups as f64 },
        promotions: s.promotions,
        demotions: s.demotions,
        removals,
        tiers,
        http,
    }))
}

/// How many entries went.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Removed {
    /// Entries removed (as the tiers report them).
    removed: u64,
}

/// Removes every entry from memory and every tier. Needs write.
#[utoipa::path(post, path = "/caches/{name}/clear", tag = "caches", params(("name" = String, Path)),
    responses((status = 200, body = Removed), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn clear_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Removed>> {
    need(&grant, Scope::Write, Some(&name))?;
    let cache = state.cache(&name)?;
    Ok(Json(Removed { removed: cache.invalidate(&Invalidation::All).await }))
}

/// What to invalidate: `{"by": "key"|"keys"|"tag"|"prefix"|"subject"|"all", "value": ...}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "by", content = "value")]
pub(crate) enum InvalidateRequest {
    /// One key.
    Key(String),
    /// Several keys.
    Keys(Vec<String>),
    /// Every entry with this tag.
    Tag(String),
    /// Every key starting with this; on the cache of `omnicache proxy`, a path (`/products/`)
    /// drops the responses whose path starts with it, on every host.
    Prefix(String),
    /// Every entry of this data subject.
    Subject(String),
    /// Everything.
    All,
}

/// Invalidates by key, keys, tag, prefix, subject or everything. Needs write.
#[utoipa::path(post, path = "/caches/{name}/invalidate", tag = "entries",
    params(("name" = String, Path)), request_body = InvalidateRequest,
    responses((status = 200, body = Removed), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn invalidate(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    body: std::result::Result<Json<InvalidateRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Removed>> {
    need(&grant, Scope::Write, Some(&name))?;
    let cache = state.cache(&name)?;
    let request = json_body(body, r#"{"by":"tag","value":"users"}"#)?;
    // The HTTP response cache of `omnicache proxy`: a prefix that is a path purges by path,
    // on every host, instead of by its internal key format.
    if let InvalidateRequest::Prefix(p) = &request {
        let http = state.read().get(&name).and_then(|n| n.http.clone());
        if let (Some(http), true) = (http, p.starts_with('/')) {
            return Ok(Json(Removed { removed: http.purge_path_prefix(p).await }));
        }
    }
    let what = match request {
        InvalidateRequest::Key(k) => Invalidation::Key(k.into_bytes()),
        InvalidateRequest::Keys(ks) => {
            Invalidation::Keys(ks.into_iter().map(String::into_bytes).collect())
        }
        InvalidateRequest::Tag(t) => Invalidation::Tag(t),
        InvalidateRequest::Prefix(p) => Invalidation::Prefix(p.into_bytes()),
        InvalidateRequest::Subject(s) => Invalidation::Subject(s),
        InvalidateRequest::All => Invalidation::All,
    };
    Ok(Json(Removed { removed: cache.invalidate(&what).await }))
}

/// `GET /caches/{name}/keys` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct KeysQuery {
    /// Only keys starting with this.
    #[serde(default)]
    prefix: String,
    /// The `next` of the previous page.
    cursor: Option<String>,
    /// Keys per page, 1 to 1,000. Default: 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// A page of keys.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct KeyPage {
    /// In byte order.
    keys: Vec<String>,
    /// The cursor of the next page; absent on the last.
    next: Option<String>,
}

/// Keys by prefix, from memory and every tier, a page at a time.
#[utoipa::path(get, path = "/caches/{name}/keys", tag = "entries",
    params(("name" = String, Path), KeysQuery),
    responses((status = 200, body = KeyPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn list_keys(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    Query(q): Query<KeysQuery>,
) -> ApiResult<Json<KeyPage>> {
    need(&grant, Scope::Read, Some(&name))?;
    let cache = state.cache(&name)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::bad("invalid_limit", format!("limit is 1 to 1000, got {limit}")));
    }
    let mut keys: Vec<Vec<u8>> = cache.l1_keys(q.prefix.as_bytes());
    keys.extend(cache.tier_keys(q.prefix.as_bytes()).await);
    keys.sort_unstable();
    keys.dedup();
    let start = match &q.cursor {
        Some(c) => keys.partition_point(|k| k.as_slice() <= c.as_bytes()),
        None => 0,
    };
    let page: Vec<String> =
        keys[start..].iter().take(limit).map(|k| String::from_utf8_lossy(k).into_owned()).collect();
    let next = if keys.len() > start + limit { page.last().cloned() } else { None };
    Ok(Json(KeyPage { keys: page, next }))
}

fn check_key(state: &AppState, key: &str) -> ApiResult<()> {
    if key.is_empty() {
        return Err(ApiError::bad("invalid_key", "the key is empty"));
    }
    let len = key.chars().count();
    if len > state.config.max_key_len {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "key_too_long",
            format!("the key is {len} characters; the limit is {}", state.config.max_key_len),
        ));
    }
    Ok(())
}

fn parse_ttl(ttl: Option<f64>) -> ApiResult<Option<Duration>> {
    match ttl {
        None => Ok(None),
        // The same bound as the config's `default_ttl_secs` (about 31,700 years).
        Some(t) if t.is_finite() && t > 0.0 && t < 1e12 => Ok(Some(Duration::from_secs_f64(t))),
        Some(t) => Err(ApiError::bad(
            "invalid_ttl",
            format!("ttl must be a positive number of seconds below 1e12, got {t}"),
        )),
    }
}

/// `PUT` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PutQuery {
    /// Time to live in seconds. Default: the cache's default TTL, or none.
    #[param(exclusive_minimum = 0)]
    ttl: Option<f64>,
    /// Comma-separated tags for invalidation.
    tags: Option<String>,
    /// A cold entry: stored only in the tier with the cheapest storage (by its cost model), not
    /// in memory. Default: false.
    cold: Option<bool>,
}

/// Stores the body under the key with its `Content-Type`. Needs write.
#[utoipa::path(put, path = "/caches/{name}/entries/{key}", tag = "entries",
    params(("name" = String, Path), ("key" = String, Path), PutQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The value; any content type is kept"),
    responses((status = 204, description = "Stored"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 414, body = ErrorBody)))]
async fn put_entry(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path((name, key)): Path<(String, String)>,
    Query(q): Query<PutQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    need(&grant, Scope::Write, Some(&name))?;
    check_key(&state, &key)?;
    let cache = state.cache(&name)?;
    let ttl = parse_ttl(q.ttl)?;
    let tags = q
        .tags
        .map(|t| {
            t.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
        })
        .unwrap_or_default();
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    cache
        .put(
            key.as_bytes(),
            pack_value(ct, &body),
            PutOptions { ttl, tags, cold: q.cold.unwrap_or(false), ..Default::default() },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn entry_not_found(name: &str, key: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "entry_not_found",
        format!("no entry {key:?} in cache {name:?}"),
    )
}

/// The value as stored, with its content type.
#[utoipa::path(get, path = "/caches/{name}/entries/{key}", tag = "entries",
    params(("name" = String, Path), ("key" = String, Path)),
    responses((status = 200, description = "The value", content_type = "*/*", body = Vec<u8>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 414, body = ErrorBody)))]
async fn get_entry(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    read_entry(&state, &grant, &name, &key).await
}

/// `GET /caches/{name}/entries/{key}` past routing: the router's handler and [`ApiService`]'s
/// fast path both answer with this.
async fn read_entry(state: &AppState, grant: &Grant, name: &str, key: &str) -> ApiResult<Response> {
    need(grant, Scope::Read, Some(name))?;
    check_key(state, key)?;
    let cache = state.cache(name)?;
    let Some(entry) = cache.get(key.as_bytes()).await else {
        return Err(entry_not_found(name, key));
    };
    let (ct, body) = unpack_value(&entry.value);
    let mut resp = Response::new(Body::from(Bytes::copy_from_slice(body)));
    let ct = HeaderValue::from_str(ct.unwrap_or("application/octet-stream"))
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    Ok(resp)
}

/// Removes the entry from memory and every tier. Needs write.
#[utoipa::path(delete, path = "/caches/{name}/entries/{key}", tag = "entries",
    params(("name" = String, Path), ("key" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 414, body = ErrorBody)))]
async fn delete_entry(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    need(&grant, Scope::Write, Some(&name))?;
    check_key(&state, &key)?;
    let cache = state.cache(&name)?;
    if cache.remove(key.as_bytes()).await {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(entry_not_found(&name, &key))
    }
}

/// One tier's estimated monthly cost.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TierCostInfo {
    /// Its name.
    tier: String,
    /// Entries it holds, when it can tell.
    entries: Option<u64>,
    /// Bytes it holds, when it can tell.
    bytes: Option<u64>,
    /// Storage of the current contents for a month, in US dollars.
    storage_usd_month: f64,
    /// Requests for a month at the rate seen since start, in US dollars.
    requests_usd_month: f64,
    /// Its cost model: storage.
    usd_per_gb_month: f64,
    /// Its cost model: requests.
    usd_per_million_requests: f64,
    /// Its cost model: a typical request's latency in milliseconds.
    latency_ms: f64,
}

/// A cache's estimated monthly cost.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CostInfo {
    /// Per tier, fastest first.
    tiers: Vec<TierCostInfo>,
    /// The sum, in US dollars a month.
    total_usd_month: f64,
}

/// The estimated monthly cost of what every tier holds now, and of its requests if the rate
/// seen since the cache started lasts a month, by each tier's cost model (config `cost`).
#[utoipa::path(get, path = "/caches/{name}/cost", tag = "caches",
    params(("name" = String, Path)),
    responses((status = 200, body = CostInfo), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn cache_cost(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
) -> ApiResult<Json<CostInfo>> {
    need(&grant, Scope::Read, Some(&name))?;
    let report = state.cache(&name)?.cost_report().await;
    let tiers = report
        .tiers
        .into_iter()
        .map(|t| TierCostInfo {
            tier: t.name,
            entries: t.usage.map(|u| u.entries),
            bytes: t.usage.map(|u| u.bytes),
            storage_usd_month: t.storage_usd_month,
            requests_usd_month: t.requests_usd_month,
            usd_per_gb_month: t.model.usd_per_gb_month,
            usd_per_million_requests: t.model.usd_per_million_requests,
            latency_ms: t.model.typical_latency.as_secs_f64() * 1e3,
        })
        .collect();
    Ok(Json(CostInfo { tiers, total_usd_month: report.total_usd_month }))
}

/// What a complaint did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ComplaintResult {
    /// Complaints about the key within the cache's window, this one included.
    complaints: u32,
    /// Whether this one reached the threshold, so the entry was invalidated everywhere.
    invalidated: bool,
}

/// Reports that the entry's value was bad (it failed to parse, an origin rejected it). After
/// the cache's threshold of complaints within its window (3 in 60 s by default) the entry is
/// invalidated in memory and every tier; a write of the key forgets its complaints. Needs
/// write.
#[utoipa::path(post, path = "/caches/{name}/entries/{key}/complaints", tag = "entries",
    params(("name" = String, Path), ("key" = String, Path)),
    responses((status = 200, body = ComplaintResult), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 414, body = ErrorBody)))]
async fn complain_entry(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult<Json<ComplaintResult>> {
    need(&grant, Scope::Write, Some(&name))?;
    check_key(&state, &key)?;
    let cache = state.cache(&name)?;
    let c = cache.complain(key.as_bytes()).await;
    Ok(Json(ComplaintResult { complaints: c.count, invalidated: c.invalidated }))
}

/// `POST /caches/{name}/batch/get`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchGet {
    /// Up to 1,000 keys.
    #[schema(schema_with = key_list)]
    keys: Vec<String>,
}

fn key_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(1024))
        .build()
}

fn key_list() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new().items(key_schema()).max_items(Some(MAX_BATCH)).build()
}

/// One value in a batch: `value` when it is UTF-8 text, else `value_base64`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct BatchEntry {
    /// The key.
    #[schema(min_length = 1, max_length = 1024)]
    key: String,
    /// The value, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    /// The value in standard base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
    /// Its content type. Default (on set): application/octet-stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    /// On set: time to live in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(exclusive_minimum = 0)]
    ttl_secs: Option<f64>,
    /// On set: tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
}

/// What a batch get found.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct BatchFound {
    /// The entries found, in request order.
    found: Vec<BatchEntry>,
    /// The keys not found.
    missing: Vec<String>,
}

fn batch_size(n: usize) -> ApiResult<()> {
    if n > MAX_BATCH {
        return Err(ApiError::bad(
            "batch_too_large",
            format!("{n} items; a batch holds at most {MAX_BATCH}"),
        ));
    }
    Ok(())
}

/// Gets up to 1,000 keys at once.
#[utoipa::path(post, path = "/caches/{name}/batch/get", tag = "entries",
    params(("name" = String, Path)), request_body = BatchGet,
    responses((status = 200, body = BatchFound), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 414, body = ErrorBody)))]
async fn batch_get(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    body: std::result::Result<Json<BatchGet>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<BatchFound>> {
    need(&grant, Scope::Read, Some(&name))?;
    let BatchGet { keys } = json_body(body, r#"{"keys":["a","b"]}"#)?;
    batch_size(keys.len())?;
    for (i, k) in keys.iter().enumerate() {
        check_key(&state, k)
            .map_err(|e| ApiError::bad(e.code, format!("keys[{i}]: {}", e.message)))?;
    }
    let cache = state.cache(&name)?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for key in keys {
        match cache.get(key.as_bytes()).await {
            Some(e) => {
                let (ct, body) = unpack_value(&e.value);
                let (value, value_base64) = match std::str::from_utf8(body) {
                    Ok(s) => (Some(s.to_string()), None),
                    Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(body))),
                };
                found.push(BatchEntry {
                    key,
                    value,
                    value_base64,
                    content_type: Some(ct.unwrap_or("application/octet-stream").to_string()),
                    ttl_secs: e.meta.remaining(cache.now()).map(|ns| ns as f64 / 1e9),
                    tags: e.meta.tags.clone(),
                });
            }
            None => missing.push(key),
        }
    }
    Ok(Json(BatchFound { found, missing }))
}

/// `POST /caches/{name}/batch/set`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchSet {
    /// Up to 1,000 entries, each with `value` or `value_base64`.
    #[schema(max_items = 1000)]
    entries: Vec<BatchEntry>,
}

/// How many entries were stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Stored {
    /// Entries stored.
    stored: u64,
}

/// Stores up to 1,000 entries at once (one transaction per tier). Needs write. All or none:
/// one invalid entry rejects the batch, naming it.
#[utoipa::path(post, path = "/caches/{name}/batch/set", tag = "entries",
    params(("name" = String, Path)), request_body = BatchSet,
    responses((status = 200, body = Stored), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 414, body = ErrorBody)))]
async fn batch_set(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    body: std::result::Result<Json<BatchSet>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Stored>> {
    need(&grant, Scope::Write, Some(&name))?;
    let BatchSet { entries } = json_body(body, r#"{"entries":[{"key":"a","value":"1"}]}"#)?;
    batch_size(entries.len())?;
    let cache = state.cache(&name)?;
    let mut items = Vec::with_capacity(entries.len());
    for (i, e) in entries.into_iter().enumerate() {
        check_key(&state, &e.key)
            .map_err(|err| ApiError::bad(err.code, format!("entries[{i}]: {}", err.message)))?;
        let body = match (e.value, e.value_base64) {
            (Some(v), None) => v.into_bytes(),
            (None, Some(b)) => {
                base64::engine::general_purpose::STANDARD.decode(b).map_err(|err| {
                    ApiError::bad("invalid_entry", format!("entries[{i}].value_base64: {err}"))
                })?
            }
            _ => {
                return Err(ApiError::bad(
                    "invalid_entry",
                    format!("entries[{i}]: give exactly one of value and value_base64"),
                ))
            }
        };
        let ttl = parse_ttl(e.ttl_secs).map_err(|err| {
            ApiError::bad("invalid_entry", format!("entries[{i}]: {}", err.message))
        })?;
        let ct = e.content_type.as_deref().unwrap_or("application/octet-stream");
        items.push((
            e.key.into_bytes(),
            pack_value(ct, &body),
            PutOptions { ttl, tags: e.tags, ..Default::default() },
        ));
    }
    let n = items.len() as u64;
    cache.put_many(items).await?;
    Ok(Json(Stored { stored: n }))
}

/// Warm parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WarmQuery {
    /// json, jsonl or csv. Default: by the `Content-Type` (application/json, text/csv), else
    /// jsonl.
    format: Option<WarmFormatName>,
    /// A TTL in seconds for every entry, replacing the file's.
    #[param(exclusive_minimum = 0)]
    ttl: Option<f64>,
}

/// The formats of a warm file.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WarmFormatName {
    /// A JSON array of records, or an object of key to value.
    Json,
    /// One JSON record per line.
    Jsonl,
    /// JSONL by its other name.
    Ndjson,
    /// Rows of key,value[,ttl_secs[,tags]].
    Csv,
}

/// A row that was skipped.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SkippedRow {
    /// 1-based line (or element, for JSON arrays).
    line: u64,
    /// Why.
    reason: String,
}

/// What a warm or import did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct LoadReport {
    /// Rows read.
    rows: u64,
    /// Entries stored.
    loaded: u64,
    /// Rows skipped, by line.
    skipped: Vec<SkippedRow>,
}

impl From<WarmReport> for LoadReport {
    fn from(r: WarmReport) -> Self {
        LoadReport {
            rows: r.rows,
            loaded: r.loaded,
            skipped: r
                .skipped
                .into_iter()
                .map(|(line, reason)| SkippedRow { line, reason })
                .collect(),
        }
    }
}

async fn load(
    cache: &TieredCache,
    body: &[u8],
    format: WarmFormat,
    ttl: Option<Duration>,
) -> ApiResult<LoadReport> {
    let pack = |ct: &str, v: Vec<u8>| pack_value(ct, &v);
    let report = omnicache_tiers::warm::warm(
        cache,
        body,
        format,
        WarmOptions { ttl_override: ttl, pack: Some(&pack), ..Default::default() },
    )
    .await?;
    Ok(report.into())
}

/// Loads a JSON, JSONL or CSV file of entries. Needs write. Bad rows are skipped and reported
/// by line; the rest are stored.
#[utoipa::path(post, path = "/caches/{name}/warm", tag = "bulk",
    params(("name" = String, Path), WarmQuery),
    request_body(content = String, content_type = "text/plain", description = "Records: {\"key\", \"value\" | \"value_hex\", \"ttl_secs\", \"tags\", \"content_type\"}; CSV rows key,value[,ttl_secs[,tags]]"),
    responses((status = 200, body = LoadReport), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn warm_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    Query(q): Query<WarmQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<LoadReport>> {
    need(&grant, Scope::Write, Some(&name))?;
    let cache = state.cache(&name)?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let format = match q.format {
        Some(WarmFormatName::Json) => WarmFormat::Json,
        Some(WarmFormatName::Jsonl | WarmFormatName::Ndjson) => WarmFormat::Jsonl,
        Some(WarmFormatName::Csv) => WarmFormat::Csv,
        None if ct.starts_with("application/json") => WarmFormat::Json,
        None if ct.starts_with("text/csv") => WarmFormat::Csv,
        None => WarmFormat::Jsonl,
    };
    let ttl = parse_ttl(q.ttl)?;
    Ok(Json(load(&cache, &body, format, ttl).await?))
}

/// Loads an export (JSONL). Needs write.
#[utoipa::path(post, path = "/caches/{name}/import", tag = "bulk",
    params(("name" = String, Path)),
    request_body(content = String, content_type = "text/plain", description = "What /export wrote (JSONL)"),
    responses((status = 200, body = LoadReport), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn import_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<LoadReport>> {
    need(&grant, Scope::Write, Some(&name))?;
    let cache = state.cache(&name)?;
    Ok(Json(load(&cache, &body, WarmFormat::Jsonl, None).await?))
}

/// Export parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// Only keys starting with this.
    #[serde(default)]
    prefix: String,
}

/// Every live entry as JSONL (key, value or value_hex, remaining TTL, tags, content type),
/// for /import or `omnicache import`.
#[utoipa::path(get, path = "/caches/{name}/export", tag = "bulk",
    params(("name" = String, Path), ExportQuery),
    responses((status = 200, description = "One JSON record per line", content_type = "application/x-ndjson", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn export_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    need(&grant, Scope::Read, Some(&name))?;
    let cache = state.cache(&name)?;
    // Streamed: a task walks the keys a page at a time and sends batches of records, so the
    // server holds a few batches, not the whole export.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    tokio::spawn(async move {
        let mut walk =
            omnicache_tiers::warm::Export::new(&cache, q.prefix.as_bytes(), Some(&unpack_owned));
        loop {
            let mut batch = Vec::new();
            let sent = match walk.next_records(256, &mut batch).await {
                Ok(0) => break,
                Ok(_) => tx.send(Ok(batch)).await,
                Err(e) => tx.send(Err(std::io::Error::other(e.to_string()))).await,
            };
            if sent.is_err() {
                break; // the client went away
            }
        }
    });
    let mut resp = Response::new(Body::new(crate::value::ChannelBody(rx)));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(resp)
}

fn unpack_owned(stored: &[u8]) -> (Option<String>, Vec<u8>) {
    let (ct, body) = unpack_value(stored);
    (ct.map(str::to_string), body.to_vec())
}

/// The keys.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct KeyList {
    /// Without the keys themselves.
    keys: Vec<KeyInfo>,
}

/// Lists the API keys (names, scopes, caches; never the keys). Needs admin.
#[utoipa::path(get, path = "/keys", tag = "keys",
    responses((status = 200, body = KeyList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list_api_keys(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
) -> ApiResult<Json<KeyList>> {
    need_global(&grant, Scope::Admin)?;
    Ok(Json(KeyList { keys: state.keys.list() }))
}

/// `POST /keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    /// A unique name.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    /// Any of read, write, admin.
    #[schema(min_items = 1)]
    scopes: Vec<Scope>,
    /// Limit the key to these caches. Default: all.
    #[serde(default)]
    caches: Option<Vec<String>>,
}

/// A new key, shown once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct NewKey {
    /// Its name.
    name: String,
    /// The key: keep it, the server stores only its hash.
    key: String,
}

/// Makes a key with scopes, optionally for some caches; the key is shown once. Needs admin.
#[utoipa::path(post, path = "/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, body = NewKey), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn create_api_key(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    body: std::result::Result<Json<CreateKey>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<NewKey>)> {
    need_global(&grant, Scope::Admin)?;
    let CreateKey { name, scopes, caches } =
        json_body(body, r#"{"name":"reader","scopes":["read"],"caches":["users"]}"#)?;
    let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_string()).collect();
    if state.keys.list().iter().any(|k| k.name == name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "key_exists",
            format!("a key named {name:?} exists; revoke it first"),
        ));
    }
    let key = state
        .keys
        .create(&name, &scopes, caches)
        .map_err(|m| ApiError::bad("invalid_key_spec", m))?;
    Ok((StatusCode::CREATED, Json(NewKey { name, key })))
}

/// Revokes a key made over the API. Needs admin.
#[utoipa::path(delete, path = "/keys/{key_name}", tag = "keys", params(("key_name" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn revoke_api_key(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(key_name): Path<String>,
) -> ApiResult<StatusCode> {
    need_global(&grant, Scope::Admin)?;
    match state.keys.revoke(&key_name) {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "key_not_found",
            format!("no key named {key_name:?}"),
        )),
        Err(RevokeError::InConfig(m)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "key_in_config", m))
        }
        Err(RevokeError::LastAdmin(m)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "last_admin_key", m))
        }
        Err(RevokeError::Storage(m)) => {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn send(
        svc: &mut (impl tower_service::Service<
            Request,
            Response = Response,
            Error = std::convert::Infallible,
        > + Send),
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: &'static [u8],
    ) -> (StatusCode, Vec<(String, String)>, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
        }
        let req = req.body(Body::from(body)).unwrap();
        let resp = svc.call(req).await.unwrap();
        let status = resp.status();
        let mut headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        headers.sort();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec();
        (status, headers, body)
    }

    /// The fast path answers every entry read exactly as the router does: hits, misses, limits,
    /// scopes, other caches, encodings, and what it passes on (no key, a bad key, HEAD, odd
    /// paths).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_fast_path_answers_entry_reads_as_the_router_does() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            data_dir: dir.path().to_path_buf(),
            max_key_len: 16,
            ..ServerConfig::default()
        };
        let lock = crate::datadir::open(dir.path()).unwrap();
        let (keys, admin) = ApiKeys::load_or_create(dir.path(), &[]).unwrap();
        let admin = admin.unwrap();
        let state = Arc::new(AppState::open(config, keys, lock).await.unwrap());
        let reader = state.keys.create("reader", &["read".into()], None).unwrap();
        let writer = state.keys.create("writer", &["write".into()], None).unwrap();
        let other =
            state.keys.create("other", &["read".into()], Some(vec!["other".into()])).unwrap();
        let mut fast = service(state.clone());
        let mut slow = router(state.clone());
        for (uri, body) in [
            ("/caches/default/entries/k1", &b"one"[..]),
            ("/caches/default/entries/a%20b", b"spaced"),
            ("/caches/default/entries/a%2Fb", b"slashed"),
            ("/caches/default/entries/%C3%A9t%C3%A9", b"summer"),
        ] {
            let (status, _, _) = send(&mut slow, "PUT", uri, Some(&admin), body).await;
            assert!(status.is_success(), "{uri}: {status}");
        }
        let uris = [
            "/caches/default/entries/k1",
            "/caches/default/entries/k1?x=1",
            "/caches/default/entries/missing",
            "/caches/default/entries/a%20b",
            "/caches/default/entries/a%2Fb",
            "/caches/default/entries/%C3%A9t%C3%A9",
            "/caches/default/entries/%FF",
            "/caches/default/entries/%",
            "/caches/default/entries/k1/",
            "/caches/default/entries/a/b",
            "/caches/default/entries/",
            "/caches//entries/k1",
            "/caches/nope/entries/k1",
            "/caches/default/entries/0123456789abcdefg",
            "/caches/default/entrie/k1",
            "/caches/default",
        ];
        let keys = [
            None,
            Some(admin.as_str()),
            Some(&reader),
            Some(&writer),
            Some(&other),
            Some("oc_wrong"),
        ];
        let mut answered = 0;
        for uri in uris {
            for key in keys {
                for method in ["GET", "HEAD"] {
                    let want = send(&mut slow, method, uri, key, b"").await;
                    let got = send(&mut fast, method, uri, key, b"").await;
                    assert_eq!(got, want, "{method} {uri} with {key:?}");
                    answered += usize::from(want.0 == StatusCode::OK);
                }
            }
        }
        assert!(answered >= 12, "hits were among the cases: {answered}");
        // And what it served was the value.
        let (status, headers, body) =
            send(&mut fast, "GET", "/caches/default/entries/a%2Fb", Some(&reader), b"").await;
        assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"slashed"[..]));
        assert!(headers.iter().any(|(n, _)| n == "content-type"));
    }
}
