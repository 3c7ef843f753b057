//! API keys over the API: list, create (shown once), revoke.

use super::*;

/// The keys.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct KeyList {
    /// Without the keys themselves.
    pub(super) keys: Vec<KeyInfo>,
}

/// Lists the API keys (names, scopes, caches; never the keys). Needs admin.
#[utoipa::path(get, path = "/keys", tag = "keys",
    responses((status = 200, body = KeyList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub(super) async fn list_api_keys(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
) -> ApiResult<Json<KeyList>> {
    need_global(&grant, Scope::Admin)?;
    Ok(Json(KeyList { keys: state.keys.list() }))
}

/// `POST /keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    /// A unique name.
    #[schema(min_length = 1, max_length = 64)]
    pub(super) name: String,
    /// Any of read, write, admin.
    #[schema(min_items = 1)]
    pub(super) scopes: Vec<Scope>,
    /// Limit the key to these caches. Default: all.
    #[serde(default)]
    pub(super) caches: Option<Vec<String>>,
}

/// A new key, shown once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct NewKey {
    /// Its name.
    pub(super) name: String,
    /// The key: keep it, the server stores only its hash.
    pub(super) key: String,
}

/// Makes a key with scopes, optionally for some caches; the key is shown once. Needs admin.
#[utoipa::path(post, path = "/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, body = NewKey), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(super) async fn create_api_key(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    body: std::result::Result<Json<CreateKey>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<NewKey>)> {
    let mut target = None;
    let result = async {
        need_global(&grant, Scope::Admin)?;
        let CreateKey { name, scopes, caches } =
            json_body(body, r#"{"name":"reader","scopes":["read"],"caches":["users"]}"#)?;
        target = Some(name.clone());
        let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_string()).collect();
        if state.keys.list().iter().any(|k| k.name == name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "key_exists",
                format!("a key named {name:?} exists; revoke it first"),
            ));
        }
        let key = state
            .keys
            .create(&name, &scopes, caches)
            .map_err(|m| ApiError::bad("invalid_key_spec", m))?;
        Ok((StatusCode::CREATED, Json(NewKey { name, key })))
    }
    .await;
    state.audit(&grant.name, "key.create", None, target.as_deref(), &result);
    result
}

/// Revokes a key made over the API. Needs admin.
#[utoipa::path(delete, path = "/keys/{key_name}", tag = "keys", params(("key_name" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub(super) async fn revoke_api_key(
    State(state): State<Shared>,
    Extension(grant): Extension<Arc<Grant>>,
    Path(key_name): Path<String>,
) -> ApiResult<StatusCode> {
    let result = revoke(&state, &grant, &key_name);
    state.audit(&grant.name, "key.revoke", None, Some(&key_name), &result);
    result
}

fn revoke(state: &AppState, grant: &Grant, key_name: &str) -> ApiResult<StatusCode> {
    need_global(grant, Scope::Admin)?;
    match state.keys.revoke(key_name) {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "key_not_found",
            format!("no key named {key_name:?}"),
        )),
        Err(RevokeError::InConfig(m)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "key_in_config", m))
        }
        Err(RevokeError::LastAdmin(m)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "last_admin_key", m))
        }
        Err(RevokeError::Storage(m)) => {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", m))
        }
    }
}
