//! The REST API.

use crate::keys::ApiKeys;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::routing::post;
use axum::{Json, Router};
use omnicache_core::Invalidation;
use omnicache_core::{Error, Result, TierHealth};
use omnicache_tiers::disk::DiskTier;
use omnicache_tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use omnicache_tiers::BreakerState;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The SQLite file of cache `name` under `data_dir`.
pub fn cache_db_path(data_dir: &std::path::Path, name: &str) -> PathBuf {
    if name == "default" {
        data_dir.join("default.db")
    } else {
        data_dir.join("caches").join(format!("{name}.db"))
    }
}

/// What the server runs with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen. Default: `127.0.0.1:7070`.
    pub listen: SocketAddr,
    /// Where caches and keys live. Default: `./omnicache-data`.
    pub data_dir: PathBuf,
    /// Entries each cache keeps in memory. Default: 100,000.
    pub l1_capacity: u64,
    /// The longest key, in bytes (414 beyond). Default: 1,024.
    pub max_key_bytes: usize,
    /// The largest request body, in bytes (413 beyond). Default: 16 MiB.
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            data_dir: PathBuf::from("omnicache-data"),
            l1_capacity: 100_000,
            max_key_bytes: 1024,
            max_body_bytes: 16 << 20,
        }
    }
}

/// How a named cache was created; kept in `caches.json` so caches come back after a restart.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct CacheSpec {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l1_capacity: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_ttl_secs: Option<f64>,
}

/// The server's state: its caches and keys.
#[derive(Debug)]
pub struct AppState {
    caches: RwLock<BTreeMap<String, (CacheSpec, TieredCache)>>,
    keys: ApiKeys,
    config: ServerConfig,
}

impl AppState {
    /// Opens the `default` cache (memory over a disk tier in the data directory) and every
    /// cache created before, from `caches.json`.
    pub fn open(config: ServerConfig, keys: ApiKeys) -> Result<AppState> {
        let state = AppState { caches: RwLock::default(), keys, config };
        let mut specs =
            vec![CacheSpec { name: "default".into(), l1_capacity: None, default_ttl_secs: None }];
        let file = state.specs_file();
        if file.exists() {
            let text = std::fs::read_to_string(&file)?;
            let saved: Vec<CacheSpec> = serde_json::from_str(&text).map_err(|e| {
                Error::invalid_input(format!("{}: not a list of caches: {e}", file.display()))
            })?;
            specs.extend(saved.into_iter().filter(|s| s.name != "default"));
        }
        for spec in specs {
            let cache = state.build_cache(&spec)?;
            state.write().insert(spec.name.clone(), (spec, cache));
        }
        Ok(state)
    }

    fn specs_file(&self) -> PathBuf {
        self.config.data_dir.join("caches.json")
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, (CacheSpec, TieredCache)>> {
        self.caches.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, (CacheSpec, TieredCache)>> {
        self.caches.write().unwrap_or_else(|e| e.into_inner())
    }

    fn build_cache(&self, spec: &CacheSpec) -> Result<TieredCache> {
        let disk = Arc::new(DiskTier::open(cache_db_path(&self.config.data_dir, &spec.name))?);
        let mut b = TieredCache::builder()
            .l1_capacity(spec.l1_capacity.unwrap_or(self.config.l1_capacity))
            .tier(disk, WritePolicy::Through);
        if let Some(t) = spec.default_ttl_secs {
            b = b.default_ttl(Duration::from_secs_f64(t));
        }
        b.build()
    }

    fn save_specs(&self) -> Result<()> {
        let specs: Vec<CacheSpec> =
            self.read().values().map(|(s, _)| s.clone()).filter(|s| s.name != "default").collect();
        let tmp = self.specs_file().with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&specs).unwrap_or_default())?;
        std::fs::rename(&tmp, self.specs_file())?;
        Ok(())
    }

    fn cache(&self, name: &str) -> std::result::Result<TieredCache, ApiError> {
        self.read().get(name).map(|(_, c)| c.clone()).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "cache_not_found",
                format!("no cache named {name:?}"),
            )
        })
    }

    /// Flushes and stops every cache's background work.
    pub async fn shutdown(&self) {
        let caches: Vec<TieredCache> = self.read().values().map(|(_, c)| c.clone()).collect();
        for c in caches {
            c.shutdown().await;
        }
    }
}

/// An API error: a status, a stable code and a message, sent as JSON.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": { "code": self.code, "message": self.message } })))
            .into_response()
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

/// The router: open routes, then key-protected ones.
pub(crate) fn router(state: Shared) -> Router {
    let protected = Router::new()
        .route("/caches", get(list_caches).post(create_cache))
        .route("/caches/{name}", get(cache_info).delete(delete_cache))
        .route("/caches/{name}/invalidate", post(invalidate))
        .route("/caches/{name}/keys", get(list_keys))
        .route("/caches/{name}/entries/{key}", get(get_entry).put(put_entry).delete(delete_entry))
        .layer(middleware::from_fn_with_state(state.clone(), require_key));
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/ready", get(ready))
        .merge(protected)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}

async fn require_key(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    match key {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "an API key is required (Authorization: Bearer KEY)",
        )
        .into_response(),
        Some(k) if !state.keys.accepts(k.trim()) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the API key is not valid")
                .into_response()
        }
        Some(_) => next.run(req).await,
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

async fn ready(State(state): State<Shared>) -> Response {
    let mut all_up = true;
    let caches: serde_json::Map<String, serde_json::Value> = state
        .read()
        .iter()
        .map(|(name, (_, c))| {
            let tiers: Vec<_> = c
                .tiers()
                .into_iter()
                .map(|t| {
                    all_up &= t.health != TierHealth::Unavailable && t.breaker != BreakerState::Open;
                    json!({ "tier": t.name, "health": health_name(t.health), "breaker": breaker_name(t.breaker) })
                })
                .collect();
            (name.clone(), json!({ "tiers": tiers }))
        })
        .collect();
    // A tier that is down degrades the cache but does not make it unready: memory still serves.
    let body = json!({ "status": if all_up { "ready" } else { "degraded" }, "caches": caches });
    (StatusCode::OK, Json(body)).into_response()
}

async fn list_caches(State(state): State<Shared>) -> Response {
    let list: Vec<_> = state
        .read()
        .iter()
        .map(|(name, (_, c))| json!({ "name": name, "l1_entries": c.l1_entry_count() }))
        .collect();
    Json(json!({ "caches": list })).into_response()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

async fn create_cache(
    State(state): State<Shared>,
    body: std::result::Result<Json<CacheSpec>, axum::extract::rejection::JsonRejection>,
) -> std::result::Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Json(spec) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.body_text()))?;
    if !valid_name(&spec.name) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "a cache name is 1 to 64 characters of a-z, 0-9, '-' and '_'",
        ));
    }
    if spec.l1_capacity == Some(0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_capacity",
            "l1_capacity must be at least 1",
        ));
    }
    if spec.default_ttl_secs.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_ttl",
            "default_ttl_secs must be a positive number",
        ));
    }
    if state.read().contains_key(&spec.name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "cache_exists",
            format!("a cache named {:?} exists", spec.name),
        ));
    }
    let cache = state.build_cache(&spec)?;
    state.write().insert(spec.name.clone(), (spec.clone(), cache));
    state.save_specs()?;
    Ok((StatusCode::CREATED, Json(json!({ "name": spec.name }))))
}

async fn cache_info(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> std::result::Result<Json<serde_json::Value>, ApiError> {
    let cache = state.cache(&name)?;
    let tiers: Vec<_> = cache
        .tiers()
        .into_iter()
        .map(|t| {
            json!({
                "tier": t.name, "health": health_name(t.health), "breaker": breaker_name(t.breaker),
                "hits": t.stats.hits, "misses": t.stats.misses, "errors": t.stats.errors, "writes": t.stats.writes,
            })
        })
        .collect();
    Ok(Json(json!({ "name": name, "l1_entries": cache.l1_entry_count(), "tiers": tiers })))
}

async fn delete_cache(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> std::result::Result<StatusCode, ApiError> {
    if name == "default" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "cannot_delete_default",
            "the default cache cannot be deleted; invalidate everything in it instead",
        ));
    }
    let removed = state.write().remove(&name);
    let Some((_, cache)) = removed else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "cache_not_found",
            format!("no cache named {name:?}"),
        ));
    };
    cache.invalidate(&Invalidation::All).await;
    cache.shutdown().await;
    state.save_specs()?;
    Ok(StatusCode::NO_CONTENT)
}

async fn invalidate(
    State(state): State<Shared>,
    Path(name): Path<String>,
    body: std::result::Result<Json<Invalidation>, axum::extract::rejection::JsonRejection>,
) -> std::result::Result<Json<serde_json::Value>, ApiError> {
    let cache = state.cache(&name)?;
    let Json(what) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!(
                "{}; expected for example {{\"by\":\"tag\",\"value\":\"users\"}}",
                e.body_text()
            ),
        )
    })?;
    let removed = cache.invalidate(&what).await;
    Ok(Json(json!({ "removed": removed })))
}

#[derive(Debug, Deserialize)]
struct KeysQuery {
    #[serde(default)]
    prefix: String,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn list_keys(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<KeysQuery>,
) -> std::result::Result<Json<serde_json::Value>, ApiError> {
    let cache = state.cache(&name)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1_000);
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
    Ok(Json(json!({ "keys": page, "next": next })))
}

fn check_key(state: &AppState, key: &str) -> std::result::Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_key", "the key is empty"));
    }
    if key.len() > state.config.max_key_bytes {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "key_too_long",
            format!("the key is {} bytes; the limit is {}", key.len(), state.config.max_key_bytes),
        ));
    }
    Ok(())
}

/// Stored values carry their content type in front: one length byte, the type, the body.
fn pack(content_type: &str, body: &[u8]) -> Vec<u8> {
    let ct = &content_type.as_bytes()[..content_type.len().min(255)];
    let mut v = Vec::with_capacity(1 + ct.len() + body.len());
    v.push(ct.len() as u8);
    v.extend_from_slice(ct);
    v.extend_from_slice(body);
    v
}

fn unpack(stored: &[u8]) -> (&str, &[u8]) {
    let n = stored.first().copied().unwrap_or(0) as usize;
    match (stored.get(1..1 + n), stored.get(1 + n..)) {
        (Some(ct), Some(body)) => {
            (std::str::from_utf8(ct).unwrap_or("application/octet-stream"), body)
        }
        _ => ("application/octet-stream", stored),
    }
}

#[derive(Debug, Deserialize)]
struct PutQuery {
    ttl: Option<f64>,
    tags: Option<String>,
}

async fn put_entry(
    State(state): State<Shared>,
    Path((name, key)): Path<(String, String)>,
    Query(q): Query<PutQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> std::result::Result<StatusCode, ApiError> {
    check_key(&state, &key)?;
    let cache = state.cache(&name)?;
    let ttl = match q.ttl {
        None => None,
        Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t.min(1e12))),
        Some(t) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_ttl",
                format!("ttl must be a positive number of seconds, got {t}"),
            ))
        }
    };
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
        .put(key.as_bytes(), pack(ct, &body), PutOptions { ttl, tags, ..Default::default() })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_entry(
    State(state): State<Shared>,
    Path((name, key)): Path<(String, String)>,
) -> std::result::Result<Response, ApiError> {
    check_key(&state, &key)?;
    let cache = state.cache(&name)?;
    let Some(entry) = cache.get(key.as_bytes()).await else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "entry_not_found",
            format!("no entry {key:?} in cache {name:?}"),
        ));
    };
    let (ct, body) = unpack(&entry.value);
    let mut resp = Bytes::copy_from_slice(body).into_response();
    if let Ok(v) = HeaderValue::from_str(ct) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Ok(resp)
}

async fn delete_entry(
    State(state): State<Shared>,
    Path((name, key)): Path<(String, String)>,
) -> std::result::Result<StatusCode, ApiError> {
    check_key(&state, &key)?;
    let cache = state.cache(&name)?;
    if cache.remove(key.as_bytes()).await {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "entry_not_found",
            format!("no entry {key:?} in cache {name:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_pack_and_unpack() {
        let v = pack("text/plain", b"hi");
        assert_eq!(unpack(&v), ("text/plain", &b"hi"[..]));
        assert_eq!(unpack(&[]).1, b"");
        assert_eq!(
            unpack(&[9, b'x']).0,
            "application/octet-stream",
            "a truncated header is not a panic"
        );
    }
}
