//! Intents: create, list, get, delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use super::ApiState;
use crate::state::{Intent, IntentError, IntentSpec};

/// Every intent, by name.
#[utoipa::path(get, path = "/v1/intents", tag = "intents",
    responses((status = 200, body = [Intent]), (status = 401, body = ErrorBody)))]
pub async fn intent_list(State(s): State<ApiState>) -> Json<Vec<Intent>> {
    Json(s.store.intents().list())
}

/// One intent.
#[utoipa::path(get, path = "/v1/intents/{name}", tag = "intents",
    params(("name" = String, Path, description = "Intent name")),
    responses((status = 200, body = Intent), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn intent_get(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Intent>, ApiError> {
    s.store
        .intents()
        .get(&name)
        .map(Json)
        .ok_or_else(|| IntentError::NotFound(name).into())
}

/// Creates an intent. It is stored durably before the answer; an invalid
/// one is refused with the field named and nothing is stored.
#[utoipa::path(post, path = "/v1/intents", tag = "intents", request_body = IntentSpec,
    responses((status = 201, body = Intent), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn intent_create(
    State(s): State<ApiState>,
    ApiJson(spec): ApiJson<IntentSpec>,
) -> Result<(StatusCode, Json<Intent>), ApiError> {
    let store = s.store.clone();
    let intent = tokio::task::spawn_blocking(move || store.create_intent(spec)).await??;
    tracing::info!(intent = %intent.spec.name, src = %intent.spec.src, dst = %intent.spec.dst, "intent created");
    Ok((StatusCode::CREATED, Json(intent)))
}

/// Deletes an intent and answers it as it was.
#[utoipa::path(delete, path = "/v1/intents/{name}", tag = "intents",
    params(("name" = String, Path, description = "Intent name")),
    responses((status = 200, body = Intent), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn intent_delete(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Intent>, ApiError> {
    let store = s.store.clone();
    let intent = tokio::task::spawn_blocking(move || store.delete_intent(&name)).await??;
    tracing::info!(intent = %intent.spec.name, "intent deleted");
    Ok(Json(intent))
}
