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

mod api_keys;
mod auth;
mod bulk;
mod caches;
mod entries;
mod error;
mod fast;
mod health;
mod metrics;
mod registry;
mod security;

// Each concern's items are visible to every other (`use super::*` in each module), and the
// handlers to `routes!` here.
use api_keys::*;
use auth::*;
use bulk::*;
use caches::*;
use entries::*;
use error::*;
use fast::*;
use health::*;
use metrics::*;
use registry::*;
use security::*;

pub(crate) use fast::{service, ApiService};
pub use registry::{cache_db_path, AppState};

/// Most keys one batch may name.
const MAX_BATCH: usize = 1_000;

type Shared = Arc<AppState>;
type ApiResult<T> = std::result::Result<T, ApiError>;

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
        (name = "security", description = "The audit log, erasure and export by data subject, the PII scan"),
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
        .routes(routes!(audit_head))
        .routes(routes!(erase_subject))
        .routes(routes!(export_subject))
        .routes(routes!(scan_text))
        .routes(routes!(retire_key))
        .routes(routes!(metrics))
        .routes(routes!(top_keys))
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
        .layer(middleware::from_fn_with_state(state.clone(), record_request))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
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
