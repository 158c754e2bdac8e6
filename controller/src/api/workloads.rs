//! Nodes, jobs and placements, passed through to the attached
//! [`Orchestrator`](crate::orchestrator::Orchestrator); migration advice,
//! from the attached [`Advisor`].

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
use crate::state::InvalidField;
use crate::workloads::advice::{Advisor, MoveAdvice};

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

/// How long the advised jobs still run.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdviceQuery {
    /// Only this job's advice (`GET /v1/advice` only).
    pub job: Option<String>,
    /// Run time the jobs have left, in seconds: savings are counted over
    /// it. Default: the controller's advice horizon (one hour).
    pub remaining_s: Option<f64>,
}

fn advisor(s: &ApiState) -> Result<Arc<dyn Advisor>, ApiError> {
    s.advisor.clone().ok_or_else(|| {
        ApiError::unavailable(
            "no orchestrator that gives migration advice is attached to this controller",
        )
    })
}

async fn advise(
    s: &ApiState,
    job: Option<String>,
    remaining_s: Option<f64>,
) -> Result<Vec<MoveAdvice>, ApiError> {
    let a = advisor(s)?;
    if let Some(r) = remaining_s {
        if !r.is_finite() || r < 0.0 {
            return Err(InvalidField::new(
                "remaining_s",
                format!("{r} is not a number of seconds of at least 0"),
            )
            .into());
        }
    }
    Ok(tokio::task::spawn_blocking(move || a.advice(job.as_deref(), remaining_s)).await??)
}

/// Migration advice for every running job: the moves that would pay off
/// under the energy prices, carbon and network of now, with the expected
/// saving and the reasons; an empty list when none would.
#[utoipa::path(get, path = "/v1/advice", tag = "workloads", params(AdviceQuery),
    responses((status = 200, body = [MoveAdvice]), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn advice_list(
    State(s): State<ApiState>,
    ApiQuery(q): ApiQuery<AdviceQuery>,
) -> Result<Json<Vec<MoveAdvice>>, ApiError> {
    advise(&s, q.job, q.remaining_s).await.map(Json)
}

/// Migration advice for one job (an empty list when no move pays off).
#[utoipa::path(get, path = "/v1/jobs/{id}/advice", tag = "workloads",
    params(("id" = String, Path, description = "Job ID"), AdviceQuery),
    responses((status = 200, body = [MoveAdvice]), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn job_advice(
    State(s): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<AdviceQuery>,
) -> Result<Json<Vec<MoveAdvice>>, ApiError> {
    if q.job.as_ref().is_some_and(|j| *j != id) {
        return Err(InvalidField::new(
            "job",
            format!("the path names job {id:?}; leave out `job` or use GET /v1/advice"),
        )
        .into());
    }
    advise(&s, Some(id), q.remaining_s).await.map(Json)
}
