//! Liveness and readiness.

use super::*;

pub(super) fn health_name(h: TierHealth) -> &'static str {
    match h {
        TierHealth::Healthy => "healthy",
        TierHealth::Degraded => "degraded",
        TierHealth::Unavailable => "unavailable",
    }
}

pub(super) fn breaker_name(b: BreakerState) -> &'static str {
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
    pub(super) status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "ops", security(()),
    responses((status = 200, description = "Alive", body = Health)))]
pub(super) async fn health() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// A tier's state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TierState {
    /// Its name (`disk`, `redis`, `s3`).
    pub(super) tier: String,
    /// healthy, degraded or unavailable.
    pub(super) health: String,
    /// closed, open or half_open.
    pub(super) breaker: String,
    /// Whether `/ready` needs it (tiers are required unless declared `optional`).
    pub(super) required: bool,
    /// Whether the last call that reached it failed.
    pub(super) failing: bool,
    /// The reason of its last failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_error: Option<String>,
}

/// Readiness of every cache.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Ready {
    /// `ready`; `degraded` when an optional tier is down; `not_ready` when a required one is
    /// (memory still serves).
    pub(super) status: String,
    /// Each cache's tiers; only for a request with an API key, and only the caches it may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) caches: Option<BTreeMap<String, Vec<TierState>>>,
}

pub(super) fn tier_states(n: &Named) -> Vec<TierState> {
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
    pub(super) fn down(&self) -> bool {
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
pub(super) async fn ready(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> (StatusCode, Json<Ready>) {
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
