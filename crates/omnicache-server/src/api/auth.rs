//! API keys on requests: who is asking, and whether the grant covers the scope and the cache.

use super::*;

/// Checks that `grant` has `scope` and, when a cache is named, covers it.
pub(super) fn need(grant: &Grant, scope: Scope, cache: Option<&str>) -> ApiResult<()> {
    if !grant.has(scope) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the key {:?} lacks the {} scope", grant.name, scope.as_str()),
        ));
    }
    match cache {
        Some(c) if !grant.covers(c) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the key {:?} may not use cache {c:?}", grant.name),
        )),
        _ => Ok(()),
    }
}

/// Checks that `grant` has `scope` for every cache (creating caches, managing keys).
pub(super) fn need_global(grant: &Grant, scope: Scope) -> ApiResult<()> {
    need(grant, scope, None)?;
    if grant.covers_all() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the key {:?} is limited to some caches; this needs a key for all", grant.name),
        ))
    }
}

/// The API key a request presents: `Authorization: Bearer KEY` or `X-Api-Key: KEY`.
pub(super) fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // Authentication schemes are case-insensitive (RFC 9110 §11.1).
            let (scheme, key) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim_start())
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
}

pub(super) async fn authenticate(
    State(state): State<Shared>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(key) = presented_key(req.headers()) else {
        state.audit_auth_failure("auth.missing_key");
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "an API key is required (Authorization: Bearer KEY)",
        )
        .into_response();
    };
    match state.keys.authorize(key.trim()) {
        None => {
            state.audit_auth_failure("auth.invalid_key");
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the API key is not valid")
                .into_response()
        }
        Some(grant) => {
            req.extensions_mut().insert(grant);
            next.run(req).await
        }
    }
}
