//! Entries: values by key, key listing, complaints, batches.

use super::*;

/// `GET /caches/{name}/keys` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct KeysQuery {
    /// Only keys starting with this.
    #[serde(default)]
    pub(super) prefix: String,
    /// The `next` of the previous page.
    pub(super) cursor: Option<String>,
    /// Keys per page, 1 to 1,000. Default: 100.
    #[param(minimum = 1, maximum = 1000)]
    pub(super) limit: Option<usize>,
}

/// A page of keys.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct KeyPage {
    /// In byte order.
    pub(super) keys: Vec<String>,
    /// The cursor of the next page; absent on the last.
    pub(super) next: Option<String>,
}

/// Keys by prefix, from memory and every tier, a page at a time.
#[utoipa::path(get, path = "/caches/{name}/keys", tag = "entries",
    params(("name" = String, Path), KeysQuery),
    responses((status = 200, body = KeyPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(super) async fn list_keys(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    Query(q): Query<KeysQuery>,
) -> ApiResult<Json<KeyPage>> {
    need(&grant, Scope::Read, Some(&name))?;
    let cache = cache_named(&state, &name)?;
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

pub(super) fn check_key(state: &AppState, key: &str) -> ApiResult<()> {
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

pub(super) fn parse_ttl(ttl: Option<f64>) -> ApiResult<Option<Duration>> {
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
    pub(super) ttl: Option<f64>,
    /// Comma-separated tags for invalidation.
    pub(super) tags: Option<String>,
    /// A cold entry: stored only in the tier with the cheapest storage (by its cost model), not
    /// in memory. Default: false.
    pub(super) cold: Option<bool>,
    /// The data subject the value belongs to (also `X-Data-Subject`), for erasure by subject
    /// (`POST /subjects/{id}/erase`).
    pub(super) subject: Option<String>,
}

/// Stores the body under the key with its `Content-Type`. Needs write.
#[utoipa::path(put, path = "/caches/{name}/entries/{key}", tag = "entries",
    params(("name" = String, Path), ("key" = String, Path), PutQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The value; any content type is kept"),
    responses((status = 204, description = "Stored"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 414, body = ErrorBody)))]
pub(super) async fn put_entry(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path((name, key)): Path<(String, String)>,
    Query(q): Query<PutQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    need(&grant, Scope::Write, Some(&name))?;
    check_key(&state, &key)?;
    let cache = cache_named(&state, &name)?;
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
    let subject = q
        .subject
        .or_else(|| headers.get("x-data-subject").and_then(|v| v.to_str().ok()).map(String::from))
        .filter(|s| !s.is_empty());
    if subject.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(ApiError::bad("invalid_subject", "a data subject is at most 1,024 bytes"));
    }
    let cold = q.cold.unwrap_or(false);
    let options = PutOptions { ttl, tags, cold, subject };
    cache.put(key.as_bytes(), pack_value(ct, &body), options).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn entry_not_found(name: &str, key: &str) -> ApiError {
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
pub(super) async fn get_entry(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    read_entry(&state, &grant, &name, &key).await
}

/// `GET /caches/{name}/entries/{key}` past routing: the router's handler and [`ApiService`]'s
/// fast path both answer with this.
pub(super) async fn read_entry(
    state: &AppState,
    grant: &Grant,
    name: &str,
    key: &str,
) -> ApiResult<Response> {
    need(grant, Scope::Read, Some(name))?;
    check_key(state, key)?;
    let cache = cache_named(state, name)?;
    let found = cache.get(key.as_bytes()).await;
    state.count_read(name, key);
    let Some(entry) = found else {
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
pub(super) async fn delete_entry(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    need(&grant, Scope::Write, Some(&name))?;
    check_key(&state, &key)?;
    let cache = cache_named(&state, &name)?;
    if cache.remove(key.as_bytes()).await {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(entry_not_found(&name, &key))
    }
}

/// What a complaint did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ComplaintResult {
    /// Complaints about the key within the cache's window, this one included.
    pub(super) complaints: u32,
    /// Whether this one reached the threshold, so the entry was invalidated everywhere.
    pub(super) invalidated: bool,
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
pub(super) async fn complain_entry(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult<Json<ComplaintResult>> {
    need(&grant, Scope::Write, Some(&name))?;
    check_key(&state, &key)?;
    let cache = cache_named(&state, &name)?;
    let c = cache.complain(key.as_bytes()).await;
    Ok(Json(ComplaintResult { complaints: c.count, invalidated: c.invalidated }))
}

/// `POST /caches/{name}/batch/get`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchGet {
    /// Up to 1,000 keys.
    #[schema(schema_with = key_list)]
    pub(super) keys: Vec<String>,
}

pub(super) fn key_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(1024))
        .build()
}

pub(super) fn key_list() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new().items(key_schema()).max_items(Some(MAX_BATCH)).build()
}

/// One value in a batch: `value` when it is UTF-8 text, else `value_base64`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct BatchEntry {
    /// The key.
    #[schema(min_length = 1, max_length = 1024)]
    pub(super) key: String,
    /// The value, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) value: Option<String>,
    /// The value in standard base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) value_base64: Option<String>,
    /// Its content type. Default (on set): application/octet-stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) content_type: Option<String>,
    /// On set: time to live in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(exclusive_minimum = 0)]
    pub(super) ttl_secs: Option<f64>,
    /// On set: tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) tags: Vec<String>,
}

/// What a batch get found.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct BatchFound {
    /// The entries found, in request order.
    pub(super) found: Vec<BatchEntry>,
    /// The keys not found.
    pub(super) missing: Vec<String>,
}

pub(super) fn batch_size(n: usize) -> ApiResult<()> {
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
pub(super) async fn batch_get(
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
    let cache = cache_named(&state, &name)?;
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
    pub(super) entries: Vec<BatchEntry>,
}

/// How many entries were stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Stored {
    /// Entries stored.
    pub(super) stored: u64,
}

/// Stores up to 1,000 entries at once (one transaction per tier). Needs write. All or none:
/// one invalid entry rejects the batch, naming it.
#[utoipa::path(post, path = "/caches/{name}/batch/set", tag = "entries",
    params(("name" = String, Path)), request_body = BatchSet,
    responses((status = 200, body = Stored), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 414, body = ErrorBody)))]
pub(super) async fn batch_set(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    body: std::result::Result<Json<BatchSet>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Stored>> {
    need(&grant, Scope::Write, Some(&name))?;
    let BatchSet { entries } = json_body(body, r#"{"entries":[{"key":"a","value":"1"}]}"#)?;
    batch_size(entries.len())?;
    let cache = cache_named(&state, &name)?;
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
