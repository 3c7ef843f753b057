//! Warming, importing and exporting, streamed.

use super::*;

/// Warm parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WarmQuery {
    /// json, jsonl or csv. Default: by the `Content-Type` (application/json, text/csv), else
    /// jsonl.
    pub(super) format: Option<WarmFormatName>,
    /// A TTL in seconds for every entry, replacing the file's.
    #[param(exclusive_minimum = 0)]
    pub(super) ttl: Option<f64>,
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
    pub(super) line: u64,
    /// Why.
    pub(super) reason: String,
}

/// What a warm or import did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct LoadReport {
    /// Rows read.
    pub(super) rows: u64,
    /// Entries stored.
    pub(super) loaded: u64,
    /// Rows skipped, by line.
    pub(super) skipped: Vec<SkippedRow>,
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

pub(super) async fn load(
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
pub(super) async fn warm_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    Query(q): Query<WarmQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<LoadReport>> {
    need(&grant, Scope::Write, Some(&name))?;
    let cache = cache_named(&state, &name)?;
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
pub(super) async fn import_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<LoadReport>> {
    need(&grant, Scope::Write, Some(&name))?;
    let cache = cache_named(&state, &name)?;
    Ok(Json(load(&cache, &body, WarmFormat::Jsonl, None).await?))
}

/// Export parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// Only keys starting with this.
    #[serde(default)]
    pub(super) prefix: String,
}

/// Every live entry as JSONL (key, value or value_hex, remaining TTL, tags, content type),
/// for /import or `omnicache import`.
#[utoipa::path(get, path = "/caches/{name}/export", tag = "bulk",
    params(("name" = String, Path), ExportQuery),
    responses((status = 200, description = "One JSON record per line", content_type = "application/x-ndjson", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(super) async fn export_cache(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(name): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    need(&grant, Scope::Read, Some(&name))?;
    let cache = cache_named(&state, &name)?;
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

pub(super) fn unpack_owned(stored: &[u8]) -> (Option<String>, Vec<u8>) {
    let (ct, body) = unpack_value(stored);
    (ct.map(str::to_string), body.to_vec())
}
