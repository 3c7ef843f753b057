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
