//! Security routes: where the audit log's chain stands, erasure and export by data subject,
//! and the PII scan.

use super::*;

/// The audit log's head: its last record's sequence number and hash. Save it: a log later cut
/// back to an earlier record still verifies, but its head no longer matches.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AuditHeadInfo {
    /// The last record's sequence number (0 for an empty log).
    pub(super) seq: u64,
    /// The last record's HMAC, hex.
    pub(super) hash: String,
}

/// The audit log's head. Needs admin.
#[utoipa::path(get, path = "/security/audit/head", tag = "security",
    responses((status = 200, body = AuditHeadInfo), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub(super) async fn audit_head(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
) -> ApiResult<Json<AuditHeadInfo>> {
    need_global(&grant, Scope::Admin)?;
    let head = state.audit.head();
    Ok(Json(AuditHeadInfo { seq: head.seq, hash: head.hash }))
}

/// What an erasure removed from one cache.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CacheErased {
    /// The cache.
    pub(super) cache: String,
    /// Entries removed from memory.
    pub(super) memory: u64,
    /// Per tier, in order: entries removed, or null when the tier could not be reached (the
    /// erasure is then kept in the data directory, nothing of the subject is served from that
    /// tier, and it is applied when the tier is back).
    pub(super) tiers: Vec<Option<u64>>,
}

/// What `POST /subjects/{id}/erase` did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Erased {
    /// The data subject.
    pub(super) subject: String,
    /// Each cache's counts.
    pub(super) caches: Vec<CacheErased>,
    /// Whether every tier of every cache was reached (false: the rest is applied when the
    /// tiers are back).
    pub(super) complete: bool,
    /// Whether the subject's own data key was destroyed (caches with `subject_keys`): what it
    /// encrypted is unreadable everywhere, backups included.
    pub(super) key_destroyed: bool,
}

/// Erases every entry of a data subject from every cache, in memory and in every tier, through
/// each tier's subject index; audited. Needs admin.
#[utoipa::path(post, path = "/subjects/{id}/erase", tag = "security",
    params(("id" = String, Path, description = "The data subject")),
    responses((status = 200, body = Erased), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub(super) async fn erase_subject(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Erased>> {
    let result = async {
        need_global(&grant, Scope::Admin)?;
        let caches: Vec<(String, TieredCache)> =
            state.read().iter().map(|(n, c)| (n.clone(), c.cache.clone())).collect();
        let mut out = Vec::with_capacity(caches.len());
        for (name, cache) in caches {
            let report = cache.erase(&id).await;
            let tiers = report.tiers.into_iter().map(|(_, n)| n).collect();
            out.push(CacheErased { cache: name, memory: report.l1, tiers });
        }
        let complete = out.iter().all(|c| c.tiers.iter().all(Option::is_some));
        // Last, the key: once it is gone, nothing it sealed can be read, wherever it is.
        let store = state.config.data_dir.join("subject-keys.json");
        let key_destroyed = if state.subject_keys.get().is_some() || store.exists() {
            state.subject_keys()?.destroy(&id)?
        } else {
            false
        };
        Ok(Json(Erased { subject: id.clone(), caches: out, complete, key_destroyed }))
    }
    .await;
    state.audit(&grant.name, "subject.erase", None, Some(&id), &result);
    result
}

/// Every entry of a data subject in every cache, as JSON Lines: the export format of
/// `GET /caches/{name}/export` with the cache's name in each record (`cache`). Streamed; every
/// key of every cache is read to find them. Audited. Needs admin.
#[utoipa::path(get, path = "/subjects/{id}/export", tag = "security",
    params(("id" = String, Path, description = "The data subject")),
    responses((status = 200, description = "JSON Lines, one record per entry",
            content_type = "application/x-ndjson"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn export_subject(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let allowed = need_global(&grant, Scope::Admin);
    state.audit(&grant.name, "subject.export", None, Some(&id), &allowed);
    allowed?;
    let caches: Vec<(String, TieredCache)> =
        state.read().iter().map(|(n, c)| (n.clone(), c.cache.clone())).collect();
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    tokio::spawn(async move {
        for (name, cache) in caches {
            let mut walk = omnicache_tiers::warm::Export::new(&cache, b"", Some(&unpack_owned))
                .only_subject(&id);
            loop {
                let mut batch = Vec::new();
                let sent = match walk.next_records(256, &mut batch).await {
                    Ok(0) => break,
                    Ok(_) => tx.send(Ok(with_cache(&batch, &name))).await,
                    Err(e) => tx.send(Err(std::io::Error::other(e.to_string()))).await,
                };
                if sent.is_err() {
                    return; // the client went away
                }
            }
        }
    });
    let mut resp = Response::new(Body::new(crate::value::ChannelBody(rx)));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(resp)
}

/// The JSON Lines of `batch` with `"cache": name` in each record.
fn with_cache(batch: &[u8], name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.len() + 64);
    for line in batch.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(serde_json::Value::Object(mut rec)) = serde_json::from_slice(line) else { continue };
        rec.insert("cache".into(), name.into());
        if serde_json::to_writer(&mut out, &rec).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

/// A text to scan (the shape `omnicache security scan` reads).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ScanRecord {
    /// Any id, echoed in each finding.
    id: String,
    /// The text.
    text: String,
}

/// A finding (the shape `omnicache security scan` prints).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ScanFinding {
    /// The record's id.
    id: String,
    /// `email`, `phone`, `credit_card`, `iban`, `us_ssn`, `ip_address`, `jwt` or `secret`.
    kind: String,
    /// Byte offset of the finding's first byte in the text.
    start: u64,
    /// Byte offset just past its last byte.
    end: u64,
    /// From 0 to 1.
    confidence: f64,
}

/// Options of `POST /security/scan`.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct ScanQuery {
    /// Report only findings at least this sure, from 0 to 1. Default 0.5.
    min_confidence: Option<f32>,
}

/// Finds personal data and secrets in text, as `omnicache security scan` does: JSON Lines of
/// `{"id": "...", "text": "..."}` in (or a JSON array of them), one
/// `{"id", "kind", "start", "end", "confidence"}` per finding out (a JSON array when the request
/// was one), byte offsets into each text. Kinds: `email`, `phone`, `credit_card`, `iban`,
/// `us_ssn`, `ip_address`, `jwt`, `secret`. Lines that are not UTF-8 are skipped and counted in
/// `X-Skipped-Lines`. Needs the read scope; stores and logs nothing of the text.
#[utoipa::path(post, path = "/security/scan", tag = "security", params(ScanQuery),
    request_body(content = Vec<ScanRecord>, content_type = "application/json",
        description = "A JSON array of records; JSON Lines of the same records are accepted too \
            (any other content type), and answered as JSON Lines"),
    responses((status = 200,
            description = "Every finding: a JSON array for an array, one JSON line each for JSON Lines",
            content((Vec<ScanFinding> = "application/json"), (String = "application/x-ndjson"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub(super) async fn scan_text(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Query(query): Query<ScanQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    use omnicache_security::pii::jsonl::{scan_line, LineResult};
    need(&grant, Scope::Read, None)?;
    let mut detector = state.detector.clone();
    if let Some(c) = query.min_confidence {
        if !(0.0..=1.0).contains(&c) {
            return Err(ApiError::bad(
                "bad_min_confidence",
                "min_confidence must be between 0 and 1",
            ));
        }
        detector = detector.min_confidence(c);
    }
    let array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    // The scan is CPU work: off the runtime's threads.
    let scanned = tokio::task::spawn_blocking(move || -> ApiResult<(Vec<u8>, u64)> {
        let lines: Vec<Vec<u8>> = if array {
            let items: Vec<serde_json::Value> = serde_json::from_slice(&body).map_err(|e| {
                ApiError::bad(
                    "bad_record",
                    format!(
                        "not a JSON array of records: line {}, column {}",
                        e.line(),
                        e.column()
                    ),
                )
            })?;
            items.iter().map(|v| serde_json::to_vec(v).unwrap_or_default()).collect()
        } else {
            body.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
        };
        let (mut out, mut all, mut skipped) = (Vec::new(), Vec::new(), 0u64);
        for (n, line) in lines.iter().enumerate() {
            match scan_line(&detector, line) {
                LineResult::Scanned(found) if array => all.extend(found),
                LineResult::Scanned(found) => {
                    for f in found {
                        serde_json::to_writer(&mut out, &f)
                            .map_err(|e| ApiError::bad("bad_record", e.to_string()))?;
                        out.push(b'\n');
                    }
                }
                LineResult::Blank => {}
                LineResult::NotUtf8 => skipped += 1,
                LineResult::Malformed(why) => {
                    let at = if array { "item" } else { "line" };
                    return Err(ApiError::bad("bad_record", format!("{at} {}: {why}", n + 1)));
                }
            }
        }
        if array {
            out = serde_json::to_vec(&all).unwrap_or_default();
        }
        Ok((out, skipped))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    let (out, skipped) = scanned;
    let mut resp = Response::new(Body::from(out));
    let content_type = if array { "application/json" } else { "application/x-ndjson" };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut().insert("x-skipped-lines", HeaderValue::from(skipped));
    Ok(resp)
}

/// Options of `POST /security/keys/{id}/retire`.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct RetireQuery {
    /// Retire even if stored entries still use the key: they become unreadable (counted misses,
    /// deleted when read). Default: false.
    #[serde(default)]
    force: bool,
}

/// What `POST /security/keys/{id}/retire` did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Retired {
    /// The key retired.
    pub(super) id: u32,
    /// Stored entries that still used it after the re-encryption pass.
    pub(super) left: u64,
    /// Whether it was retired with entries still using it.
    pub(super) forced: bool,
}

/// Retires an encryption key: first a re-encryption pass over every encrypting cache rewrites
/// what the key still encrypts under the current key, then the key is retired (it decrypts
/// nothing from then on) and the key file is updated. Refused with 409 while entries still
/// use it (they could not be read back), unless `force`. Audited. Needs admin.
#[utoipa::path(post, path = "/security/keys/{id}/retire", tag = "security",
    params(("id" = u32, Path, description = "The key id"), RetireQuery),
    responses((status = 200, body = Retired), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn retire_key(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(id): Path<u32>,
    Query(query): Query<RetireQuery>,
) -> ApiResult<Json<Retired>> {
    let result = async {
        need_global(&grant, Scope::Admin)?;
        let ring = state.ring.get().cloned().ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "no_key_ring", "no cache encrypts: no key ring is loaded")
        })?;
        if ring.get(id).is_none() {
            return Err(ApiError::new(StatusCode::NOT_FOUND, "key_not_found", format!("no key {id} in the ring")));
        }
        if ring.primary().is_some_and(|k| k.id() == id) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "key_is_primary",
                format!("key {id} encrypts new writes; rotate first"),
            ));
        }
        let caches: Vec<TieredCache> = state
            .read()
            .values()
            .filter(|n| n.spec.encrypt == Some(true) || n.spec.pii.is_some())
            .map(|n| n.cache.clone())
            .collect();
        let mut left = 0;
        for cache in caches {
            let report = cache.retransform(1_000, None).await?;
            left += report.left_under.get(&id).copied().unwrap_or(0);
        }
        if left > 0 && !query.force {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "key_in_use",
                format!("key {id} still encrypts {left} stored entries that could not be rewritten; force to retire it anyway"),
            ));
        }
        ring.retire(id, left, query.force)?;
        Ok(Json(Retired { id, left, forced: left > 0 }))
    }
    .await;
    state.audit(&grant.name, "key.retire", None, Some(&id.to_string()), &result);
    result
}
