//! Errors as every endpoint sends them: `{"error": {"code", "message"}}`, axum's own rejections
//! rewritten the same way.

use super::*;

/// An error as every endpoint sends it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ErrorBody {
    pub(super) error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable code, such as `cache_not_found`.
    pub(super) code: String,
    /// For people.
    pub(super) message: String,
}

/// An API error: a status, a stable code and a message, sent as JSON.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl ApiError {
    /// The stable code, such as `cache_not_found`.
    pub(super) fn code(&self) -> &str {
        self.code
    }

    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    pub(super) fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

pub(super) fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody { error: ErrorDetail { code: code.to_string(), message } };
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status, self.code, self.message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match e.kind() {
            omnicache_core::ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            omnicache_core::ErrorKind::NotFound => StatusCode::NOT_FOUND,
            // A cache's PII policy refused the value; the message names the kinds only.
            omnicache_core::ErrorKind::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
            omnicache_core::ErrorKind::Unavailable | omnicache_core::ErrorKind::Timeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.kind().as_str(), e.to_string())
    }
}

/// Rewrites axum's own rejections (plain text) as JSON errors; bodies that fail to parse are
/// 400 whatever axum says (415, 422).
pub(super) async fn errors_as_json(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_string();
    let (status, code) = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::UNPROCESSABLE_ENTITY => {
            (StatusCode::BAD_REQUEST, "invalid_body")
        }
        StatusCode::PAYLOAD_TOO_LARGE => (status, "body_too_large"),
        StatusCode::METHOD_NOT_ALLOWED => (status, "method_not_allowed"),
        StatusCode::NOT_FOUND => (status, "not_found"),
        s if s.is_server_error() => (s, "internal"),
        s => (s, "bad_request"),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message
    };
    let mut out = error_response(status, code, message);
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}
