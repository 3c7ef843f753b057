//! Caches: list, create, inspect, tune, drop; their statistics, clearing, invalidation and cost.

use super::*;

/// A cache in a listing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CacheSummary {
    /// Its name.
    pub(super) name: String,
    /// Entries in memory.
    pub(super) l1_entries: u64,
    /// The memory layer's eviction policy.
    pub(super) policy: String,
}

/// The caches a key may use.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CacheList {
    /// By name.
    pub(super) caches: Vec<CacheSummary>,
}

/// Lists the caches this key may use.
#[utoipa::path(get, path = "/caches", tag = "caches",
    responses((status = 200, body = CacheList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn list_caches(
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
    pub(super) name: String,
    /// The eviction policy. Default: s3fifo.
    #[serde(default)]
    pub(super) policy: Option<PolicyName>,
    /// Entries kept in memory. Default: the server's `l1_capacity`.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub(super) l1_capacity: Option<u64>,
    /// Bound memory by value bytes instead of entries.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub(super) l1_max_bytes: Option<u64>,
    /// The TTL of entries stored without one, in seconds.
    #[serde(default)]
    #[schema(exclusive_minimum = 0, exclusive_maximum = 1e12)]
    pub(super) default_ttl_secs: Option<f64>,
    /// The tiers below memory, fastest first. Default: one disk tier in the data directory.
    /// Disk tiers live in the data directory (`path` is for the config file only).
    #[serde(default)]
    pub(super) tiers: Option<Vec<TierSpec>>,
    /// Encrypt values stored below memory (AES-256-GCM with the server's keys). Default: false.
    #[serde(default)]
    pub(super) encrypt: Option<bool>,
    /// Compress values stored below memory (LZ4, before encryption). Default: false.
    #[serde(default)]
    pub(super) compress: Option<bool>,
    /// Scan values for personal data and secrets on every write, with an action per kind.
    /// Default: no scanning.
    #[serde(default)]
    pub(super) pii: Option<crate::config::PiiSpec>,
    /// With `encrypt`: a key per data subject, destroyed by its erasure (crypto-shredding).
    /// Default: false.
    #[serde(default)]
    pub(super) subject_keys: Option<bool>,
    /// The longest an entry with a data subject lives, in seconds. Default: no cap.
    #[serde(default)]
    #[schema(exclusive_minimum = 0, exclusive_maximum = 1e12)]
    pub(super) subject_retention_secs: Option<f64>,
}

impl CreateCache {
    pub(super) fn into_spec(self) -> (String, CacheSpec) {
        let policy = self.policy.map(PolicyName::name);
        let spec = CacheSpec {
            policy,
            l1_capacity: self.l1_capacity,
            l1_max_bytes: self.l1_max_bytes,
            default_ttl_secs: self.default_ttl_secs,
            tiers: self.tiers,
            encrypt: self.encrypt,
            compress: self.compress,
            pii: self.pii,
            subject_keys: self.subject_keys,
            subject_retention_secs: self.subject_retention_secs,
        };
        (self.name, spec)
    }
}

/// A created cache.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Created {
    /// Its name.
    pub(super) name: String,
}

pub(super) fn json_body<T>(
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
pub(super) async fn create_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    body: std::result::Result<Json<CreateCache>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let mut created = None;
    let result = async {
        need_global(&grant, Scope::Admin)?;
        let (name, spec) =
            json_body(body, r#"{"name":"users","policy":"lru","l1_capacity":10000}"#)?.into_spec();
        created = Some(name.clone());
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
    .await;
    state.audit(&grant.name, "cache.create", created.as_deref(), None, &result);
    result
}

/// A cache's configuration and state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CacheInfo {
    /// Its name.
    pub(super) name: String,
    /// The memory layer's eviction policy now.
    pub(super) policy: String,
    /// Entries in memory.
    pub(super) l1_entries: u64,
    /// How it was configured.
    pub(super) spec: CacheSpec,
    /// Declared in the config file (changes over the API last until restart).
    pub(super) from_config: bool,
    /// Its tiers.
    pub(super) tiers: Vec<TierState>,
}

pub(super) fn info_of(name: &str, n: &Named) -> CacheInfo {
    CacheInfo {
        name: name.to_string(),
        policy: n.cache.l1_policy_name(),
        l1_entries: n.cache.l1_entry_count(),
        spec: n.spec.redacted(),
        from_config: n.from_config,
        tiers: tier_states(n),
    }
}

pub(super) fn not_found(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "cache_not_found", format!("no cache named {name:?}"))
}

/// The cache `name`, or the API's 404 for it.
pub(super) fn cache_named(state: &AppState, name: &str) -> ApiResult<TieredCache> {
    state.cache(name).map_err(|_| not_found(name))
}

/// A cache's policy, configuration and tiers.
#[utoipa::path(get, path = "/caches/{name}", tag = "caches", params(("name" = String, Path)),
    responses((status = 200, body = CacheInfo), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn cache_info(
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
    pub(super) policy: PolicyName,
}

/// Switches a cache's eviction policy live, keeping every entry. Needs admin.
#[utoipa::path(patch, path = "/caches/{name}", tag = "caches", params(("name" = String, Path)),
    request_body = UpdateCache,
    responses((status = 200, body = CacheInfo), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(super) async fn update_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    body: std::result::Result<Json<UpdateCache>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<CacheInfo>> {
    let result = async {
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
    .await;
    state.audit(&grant.name, "cache.set_policy", Some(&name), None, &result);
    result
}

/// Drops a cache made over the API, and its data (not `default`, not one declared in the
/// config file: 409). Needs admin.
#[utoipa::path(delete, path = "/caches/{name}", tag = "caches", params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub(super) async fn delete_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let result = async {
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
        state.pii_guards.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&name);
        state.top_keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&name);
        n.cache.invalidate(&Invalidation::All).await;
        n.cache.shutdown().await;
        drop(n);
        state.save_specs()?;
        // Its SQLite file (and journal) in the data directory goes too: nothing stays readable.
        let _ = std::fs::remove_file(state.config.data_dir.join(format!("missed-{name}.json")));
        let db = cache_db_path(&state.config.data_dir, &name);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        Ok(StatusCode::NO_CONTENT)
    }
    .await;
    state.audit(&grant.name, "cache.delete", Some(&name), None, &result);
    result
}

/// A tier's counters.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TierCounters {
    /// Its name.
    pub(super) tier: String,
    /// healthy, degraded or unavailable.
    pub(super) health: String,
    /// closed, open or half_open.
    pub(super) breaker: String,
    /// Reads that found the entry.
    pub(super) hits: u64,
    /// Reads that did not.
    pub(super) misses: u64,
    /// Calls that failed or timed out.
    pub(super) errors: u64,
    /// Of those, calls that timed out.
    pub(super) timeouts: u64,
    /// The reason of its last failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_error: Option<String>,
    /// Writes that succeeded.
    pub(super) writes: u64,
    /// Entries promoted from it.
    pub(super) promotions: u64,
    /// Entries demoted to it.
    pub(super) demotions: u64,
    /// Entries found corrupt.
    pub(super) corrupt: u64,
    /// Mean call latency in microseconds.
    pub(super) mean_latency_us: f64,
}

/// A cache's counters since start.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CacheStats {
    /// Its name.
    pub(super) name: String,
    /// The memory layer's policy.
    pub(super) policy: String,
    /// Entries in memory.
    pub(super) l1_entries: u64,
    /// Memory's weighted size: entries, or bytes when bounded by bytes.
    pub(super) l1_weighted_size: u64,
    /// Lookups served (from memory or a tier).
    pub(super) hits: u64,
    /// Lookups no tier could serve.
    pub(super) misses: u64,
    /// hits / (hits + misses), 0 before any lookup.
    pub(super) hit_ratio: f64,
    /// Lower-tier hits copied into memory.
    pub(super) promotions: u64,
    /// Memory evictions written to a lower tier.
    pub(super) demotions: u64,
    /// Removals from memory by cause.
    pub(super) removals: BTreeMap<String, u64>,
    /// Each tier's counters.
    pub(super) tiers: Vec<TierCounters>,
    /// The HTTP response cache's counters, when this cache stores the responses of
    /// `omnicache proxy`; null otherwise.
    pub(super) http: Option<HttpCounters>,
    /// What the cache's PII policy did, when it has one; null otherwise.
    pub(super) pii: Option<PiiCounters>,
}

/// What a cache's PII policy has done since start.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct PiiCounters {
    /// Values scanned as text.
    pub(super) scanned: u64,
    /// Values that were not UTF-8, stored unscanned.
    pub(super) skipped_binary: u64,
    /// Writes refused (422).
    pub(super) rejected: u64,
    /// Values stored with findings masked.
    pub(super) redacted: u64,
    /// Values encrypted below memory by the policy.
    pub(super) encrypted: u64,
    /// Values holding each kind (kinds never seen are left out).
    pub(super) kinds: BTreeMap<String, u64>,
}

/// What the HTTP response cache in front of an origin has done since start.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct HttpCounters {
    /// Requests answered from the cache without contacting the origin.
    pub(super) hits: u64,
    /// Of those, answered with a stale response (max-stale, stale-while-revalidate,
    /// stale-if-error).
    pub(super) stale: u64,
    /// Requests forwarded to the origin (misses, validations, uncacheable methods).
    pub(super) misses: u64,
    /// hits / (hits + misses), 0 before any request.
    pub(super) hit_ratio: f64,
    /// Responses stored.
    pub(super) stored: u64,
    /// Stored responses freshened by a 304 Not Modified.
    pub(super) revalidated: u64,
    /// Requests that waited for another request to the same resource.
    pub(super) coalesced: u64,
    /// Invalidations after unsafe methods and purges.
    pub(super) invalidated: u64,
    /// Origin errors hidden by serving a stale response.
    pub(super) errors_hidden: u64,
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
pub(super) async fn cache_stats(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
) -> ApiResult<Json<CacheStats>> {
    need(&grant, Scope::Read, Some(&name))?;
    let cache = cache_named(&state, &name)?;
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
    let pii = state
        .pii_guards
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&name)
        .cloned();
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
        pii: pii.map(|g| {
            let p = g.stats();
            PiiCounters {
                scanned: p.scanned,
                skipped_binary: p.skipped_binary,
                rejected: p.rejected,
                redacted: p.redacted,
                encrypted: p.encrypted,
                kinds: p.kinds.into_iter().map(|(k, n)| (k.to_string(), n)).collect(),
            }
        }),
    }))
}

/// How many entries went.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Removed {
    /// Entries removed (as the tiers report them).
    pub(super) removed: u64,
}

/// Removes every entry from memory and every tier. Needs write.
#[utoipa::path(post, path = "/caches/{name}/clear", tag = "caches", params(("name" = String, Path)),
    responses((status = 200, body = Removed), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn clear_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Removed>> {
    let result = async {
        need(&grant, Scope::Write, Some(&name))?;
        let cache = cache_named(&state, &name)?;
        Ok(Json(Removed { removed: cache.invalidate(&Invalidation::All).await }))
    }
    .await;
    state.audit(&grant.name, "cache.clear", Some(&name), None, &result);
    result
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
pub(super) async fn invalidate(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    body: std::result::Result<Json<InvalidateRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Removed>> {
    need(&grant, Scope::Write, Some(&name))?;
    let cache = cache_named(&state, &name)?;
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

/// One tier's estimated monthly cost.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TierCostInfo {
    /// Its name.
    pub(super) tier: String,
    /// Entries it holds, when it can tell.
    pub(super) entries: Option<u64>,
    /// Bytes it holds, when it can tell.
    pub(super) bytes: Option<u64>,
    /// Storage of the current contents for a month, in US dollars.
    pub(super) storage_usd_month: f64,
    /// Requests for a month at the rate seen since start, in US dollars.
    pub(super) requests_usd_month: f64,
    /// Its cost model: storage.
    pub(super) usd_per_gb_month: f64,
    /// Its cost model: requests.
    pub(super) usd_per_million_requests: f64,
    /// Its cost model: a typical request's latency in milliseconds.
    pub(super) latency_ms: f64,
}

/// A cache's estimated monthly cost.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CostInfo {
    /// Per tier, fastest first.
    pub(super) tiers: Vec<TierCostInfo>,
    /// The sum, in US dollars a month.
    pub(super) total_usd_month: f64,
}

/// The estimated monthly cost of what every tier holds now, and of its requests if the rate
/// seen since the cache started lasts a month, by each tier's cost model (config `cost`).
#[utoipa::path(get, path = "/caches/{name}/cost", tag = "caches",
    params(("name" = String, Path)),
    responses((status = 200, body = CostInfo), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn cache_cost(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
) -> ApiResult<Json<CostInfo>> {
    need(&grant, Scope::Read, Some(&name))?;
    let report = cache_named(&state, &name)?.cost_report().await;
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
