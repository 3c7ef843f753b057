//! The REST API.

use crate::keys::ApiKeys;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use omnicache_core::{Error, Result, TierHealth};
use omnicache_tiers::disk::DiskTier;
use omnicache_tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use omnicache_tiers::BreakerState;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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

/// The server's state: its caches and keys.
#[derive(Debug)]
pub struct AppState {
    caches: BTreeMap<String, TieredCache>,
    keys: ApiKeys,
    config: ServerConfig,
}

impl AppState {
    /// Opens the `default` cache: memory over a disk tier in the data directory.
    pub fn open(config: ServerConfig, keys: ApiKeys) -> Result<AppState> {
        let disk = Arc::new(DiskTier::open(config.data_dir.join("default.db"))?);
        let cache = TieredCache::builder()
            .l1_capacity(config.l1_capacity)
            .tier(disk, WritePolicy::Through)
            .build()?;
        let mut caches = BTreeMap::new();
        caches.insert("default".to_string(), cache);
        Ok(AppState { caches, keys, config })
    }

    /// Flushes and stops every cache's background work.
    pub async fn shutdown(&self) {
        for c in self.caches.values() {
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
        .route("/caches", get(list_caches))
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
        .caches
        .iter()
        .map(|(name, c)| {
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
        .caches
        .iter()
        .map(|(name, c)| json!({ "name": name, "l1_entries": c.l1_entry_count() }))
        .collect();
    Json(json!({ "caches": list })).into_response()
}

fn cache<'a>(state: &'a AppState, name: &str) -> std::result::Result<&'a TieredCache, ApiError> {
    state.caches.get(name).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "cache_not_found", format!("no cache named {name:?}"))
    })
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
    let cache = cache(&state, &name)?;
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
    let cache = cache(&state, &name)?;
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
    let cache = cache(&state, &name)?;
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
