//! Nodes, jobs and placements, passed through to the attached
//! [`Orchestrator`](crate::orchestrator::Orchestrator).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::ApiState;
use crate::orchestrator::{Job, JobSpec, Node, Orchestrator, Placement};

fn orchestrator(s: &ApiState) -> Result<Arc<dyn Orchestrator>, ApiError> {
    s.orchestrator.clone().ok_or_else(|| {
        ApiError::unavailable(
            "no orchestrator is attached to this controller: nodes, jobs and placements \
             are unavailable",
        )
    })
}

/// Runs an orchestrator call on the blocking pool.
async fn call<T: Send + 'static>(
    s: &ApiState,
    f: impl FnOnce(&dyn Orchestrator) -> Result<T, crate::orchestrator::OrchestratorError>
        + Send
        + 'static,
) -> Result<T, ApiError> {
    let o = orchestrator(s)?;
    Ok(tokio::task::spawn_blocking(move || f(o.as_ref())).await??)
}

/// The inventory of nodes.
#[utoipa::path(get, path = "/v1/nodes", tag = "workloads",
    responses((status = 200, body = [Node]), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn node_list(State(s): State<ApiState>) -> Result<Json<Vec<Node>>, ApiError> {
    call(&s, |o| o.nodes()).await.map(Json)
}

/// Every job.
#[utoipa::path(get, path = "/v1/jobs", tag = "workloads",
    responses((status = 200, body = [Job]), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn job_list(State(s): State<ApiState>) -> Result<Json<Vec<Job>>, ApiError> {
    call(&s, |o| o.jobs()).await.map(Json)
}

/// One job.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "workloads",
    params(("id" = String, Path, description = "Job ID")),
    responses((status = 200, body = Job), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn job_get(
    State(s): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Job>, ApiError> {
    call(&s, move |o| o.job(&id)).await.map(Json)
}

/// Submits a job for placement.
#[utoipa::path(post, path = "/v1/jobs", tag = "workloads", request_body = JobSpec,
    responses((status = 201, body = Job), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn job_submit(
    State(s): State<ApiState>,
    ApiJson(spec): ApiJson<JobSpec>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    // Answer 503 before judging the body: without an orchestrator nothing
    // can be submitted however well-formed.
    orchestrator(&s)?;
    spec.validate()?;
    let job = call(&s, move |o| o.submit(spec)).await?;
    tracing::info!(job = %job.id, name = %job.spec.name, "job submitted");
    Ok((StatusCode::CREATED, Json(job)))
}

/// Filter by job.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    /// Only this job's placements.
    pub job: Option<String>,
}

/// Placements: the node chosen for each task, with cost and explanation.
#[utoipa::path(get, path = "/v1/placements", tag = "workloads", params(JobFilter),
    responses((status = 200, body = [Placement]), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn placement_list(
    State(s): State<ApiState>,
    ApiQuery(q): ApiQuery<JobFilter>,
) -> Result<Json<Vec<Placement>>, ApiError> {
    call(&s, move |o| o.placements(q.job.as_deref()))
        .await
        .map(Json)
}
