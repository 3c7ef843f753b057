//! Security routes: where the audit log's chain stands.

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
    /// Per tier, in order: entries removed, or null when the tier could not be reached (erase
    /// again once it is back).
    pub(super) tiers: Vec<Option<u64>>,
}

/// What `POST /subjects/{id}/erase` did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Erased {
    /// The data subject.
    pub(super) subject: String,
    /// Each cache's counts.
    pub(super) caches: Vec<CacheErased>,
    /// Whether every tier of every cache was reached.
    pub(super) complete: bool,
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
        Ok(Json(Erased { subject: id.clone(), caches: out, complete }))
    }
    .await;
    state.audit(&grant.name, "subject.erase", None, Some(&id), &result);
    result
}
