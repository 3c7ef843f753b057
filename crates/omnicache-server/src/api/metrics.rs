//! `GET /metrics`: every cache's and tier's counters as OpenMetrics text, read at scrape time.

use super::*;
use omnicache_analytics::metrics::{self as m, CacheSample, HttpSample, TierSample};

/// The samples of every cache of the server, now.
fn samples(state: &AppState) -> Vec<CacheSample> {
    let caches: Vec<(String, TieredCache, Option<omnicache_http::HttpStats>)> = state
        .read()
        .iter()
        .map(|(n, c)| (n.clone(), c.cache.clone(), c.http.as_ref().map(|h| h.stats())))
        .collect();
    caches
        .into_iter()
        .map(|(name, cache, http)| {
            let s = cache.stats();
            let causes = |removals: &[u64]| -> Vec<(RemovalCause, u64)> {
                RemovalCause::ALL.iter().map(|c| (*c, removals[c.index()])).collect()
            };
            let tiers = cache
                .tiers()
                .into_iter()
                .map(|t| TierSample {
                    tier: t.name,
                    hits: t.stats.hits,
                    misses: t.stats.misses,
                    errors: t.stats.errors,
                    timeouts: t.stats.timeouts,
                    skipped: t.stats.skipped,
                    corrupt: t.stats.corrupt,
                    writes: t.stats.writes,
                    dropped: t.stats.dropped,
                    removals: causes(&t.stats.removals),
                    calls: t.stats.calls,
                    call_seconds: t.stats.latency_nanos as f64 / 1e9,
                    breaker: match t.breaker {
                        BreakerState::Closed => m::BreakerState::Closed,
                        BreakerState::Open => m::BreakerState::Open,
                        BreakerState::HalfOpen => m::BreakerState::HalfOpen,
                    },
                    up: !t.failing,
                })
                .collect();
            CacheSample {
                cache: name,
                hits: s.hits,
                misses: s.misses,
                loads_ok: s.loads_ok,
                loads_failed: s.loads_failed,
                load_seconds: s.load_nanos as f64 / 1e9,
                removals: causes(&s.removals),
                entries: cache.l1_entry_count(),
                weight: cache.l1_weighted_size(),
                promotions: s.promotions,
                demotions: s.demotions,
                queued_writes: cache.queued_writes() as u64,
                missed_invalidations: cache.missed_invalidations() as u64,
                tiers,
                http: http.map(|h| HttpSample {
                    hits: h.hits,
                    stale: h.stale,
                    misses: h.misses,
                    stored: h.stored,
                    revalidated: h.revalidated,
                    coalesced: h.coalesced,
                    invalidated: h.invalidated,
                    errors_hidden: h.errors_hidden,
                }),
            }
        })
        .collect()
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every cache's and tier's metrics (documented in docs/metrics.md): OpenMetrics text when the
/// scraper asks for it (`Accept: application/openmetrics-text`, as Prometheus does), else
/// Prometheus's classic text format. Needs the read scope: give Prometheus a key with
/// `authorization: {credentials_file: ...}`.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "The metrics",
            content((String = "application/openmetrics-text"), (String = "text/plain"))),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn metrics(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    need(&grant, Scope::Read, None)?;
    let samples = samples(&state);
    let mut registry = m::registry(move || samples.clone());
    state.server_metrics.register(&mut registry);
    let open = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let (text, content_type) = if open {
        (m::render(&registry), OPENMETRICS)
    } else {
        (m::render_classic(&registry), CLASSIC)
    };
    let mut resp = Response::new(Body::from(text));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}

/// Options of `GET /caches/{name}/top`.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct TopQuery {
    /// How many keys, 1 to 256. Default 20.
    n: Option<usize>,
}

/// One of the most requested keys.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TopKeyInfo {
    /// The key (its first 48 bytes).
    pub(super) key: String,
    /// Reads counted for it since start (an upper bound).
    pub(super) count: u64,
    /// How much `count` may be over the truth.
    pub(super) error: u64,
}

/// A cache's most requested keys.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TopKeysInfo {
    /// The cache.
    pub(super) cache: String,
    /// Reads counted since start.
    pub(super) total: u64,
    /// The keys, most requested first.
    pub(super) keys: Vec<TopKeyInfo>,
}

/// The keys read most often through the API since start (a Space-Saving sketch of 256
/// counters per cache: exact or nearly so for the top of skewed traffic). Every read counts
/// while the server has served 4,096; past that one read in 8, chosen at random, counts for 8,
/// so counts become estimates (`error` says by how much they may be over). Needs read on the
/// cache.
#[utoipa::path(get, path = "/caches/{name}/top", tag = "caches",
    params(("name" = String, Path), TopQuery),
    responses((status = 200, body = TopKeysInfo), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(super) async fn top_keys(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    Query(query): Query<TopQuery>,
) -> ApiResult<Json<TopKeysInfo>> {
    need(&grant, Scope::Read, Some(&name))?;
    cache_named(&state, &name)?;
    let n = query.n.unwrap_or(20);
    if !(1..=TOP_KEYS_TRACKED).contains(&n) {
        return Err(ApiError::bad("bad_n", format!("n must be between 1 and {TOP_KEYS_TRACKED}")));
    }
    let top = state.top_keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (total, keys) = match top.get(&name) {
        Some(t) => (
            t.total(),
            t.top(n)
                .into_iter()
                .map(|k| TopKeyInfo {
                    key: String::from_utf8_lossy(&k.key).into_owned(),
                    count: k.count,
                    error: k.error,
                })
                .collect(),
        ),
        None => (0, Vec::new()),
    };
    Ok(Json(TopKeysInfo { cache: name, total, keys }))
}
