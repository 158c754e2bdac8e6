//! The controller's REST API: JSON under `/v1`, described by an OpenAPI 3
//! document generated from this code ([`openapi`]), protected by bearer
//! tokens with roles ([`auth`]), optionally over TLS ([`tls`]), measured
//! into Prometheus ([`crate::metrics`]).
//!
//! Handlers read the [`StateStore`] and never block on the runtime; intents
//! are the one resource they write. Nodes, jobs and placements go to the
//! attached [`Orchestrator`], or answer 503 when none is.
//!
//! When changing the API: add the handler to [`routes`] and to
//! [`openapi::ApiDoc`], give it a role in [`required_role`], then
//! regenerate the committed document with
//! `solyx api openapi > docs/openapi.json` (a test compares them).

pub mod auth;
pub mod demo;
pub mod error;
pub mod extract;
pub mod intents;
pub mod network;
pub mod openapi;
pub mod tls;
pub mod workloads;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::metrics::Metrics;
use crate::orchestrator::Orchestrator;
use crate::state::StateStore;
use crate::workloads::advice::Advisor;
use auth::{Auth, Principal, Role};
use error::{ApiError, ErrorBody};

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    /// The controller's state.
    pub store: Arc<StateStore>,
    /// Who may call.
    pub auth: Arc<Auth>,
    /// Where request metrics go.
    pub metrics: Arc<Metrics>,
    /// The orchestrator, when one is attached.
    pub orchestrator: Option<Arc<dyn Orchestrator>>,
    /// Migration advice, when an orchestrator that gives it is attached.
    pub advisor: Option<Arc<dyn Advisor>>,
}

impl ApiState {
    /// State without an orchestrator.
    #[must_use]
    pub fn new(store: Arc<StateStore>, auth: Arc<Auth>, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            auth,
            metrics,
            orchestrator: None,
            advisor: None,
        }
    }

    /// Attaches an orchestrator.
    #[must_use]
    pub fn with_orchestrator(mut self, o: Arc<dyn Orchestrator>) -> Self {
        self.orchestrator = Some(o);
        self
    }

    /// Attaches migration advice (`GET /v1/advice`).
    #[must_use]
    pub fn with_advisor(mut self, a: Arc<dyn Advisor>) -> Self {
        self.advisor = Some(a);
        self
    }
}

/// The role a request needs, by method and route template; `None` for the
/// public routes (the OpenAPI document and `/metrics`).
///
/// | routes                         | GET    | POST, PUT, PATCH, DELETE |
/// |--------------------------------|--------|--------------------------|
/// | `/v1/openapi.json`, `/metrics` | public | -                        |
/// | `/v1/admin/...`                | admin  | admin                    |
/// | every other `/v1/...`          | viewer | operator                 |
///
/// TODO-security: `/metrics` is public on the API listener (its labels name
/// devices and links); deployments that must hide the topology serve it on
/// `--metrics-listen` behind a firewall until it can require a token.
#[must_use]
pub fn required_role(method: &Method, route: &str) -> Option<Role> {
    if route == "/v1/openapi.json" || route == "/metrics" {
        return None;
    }
    if route.starts_with("/v1/admin/") {
        return Some(Role::Admin);
    }
    if method == Method::GET || method == Method::HEAD {
        Some(Role::Viewer)
    } else {
        Some(Role::Operator)
    }
}

async fn authorize(State(s): State<ApiState>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_string(), |m| m.as_str().to_string());
    let Some(needed) = required_role(req.method(), &route) else {
        return next.run(req).await;
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let principal = match presented {
        _ if s.auth.disabled() => s.auth.verify(b""),
        None => {
            return ApiError::unauthenticated(
                "missing credentials: send `Authorization: Bearer <token>`",
            )
            .into_response()
        }
        Some(value) => match value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        {
            Some((_, token)) => s.auth.verify(token.trim().as_bytes()),
            None => {
                return ApiError::unauthenticated(
                    "the Authorization header must read `Bearer <token>`",
                )
                .into_response()
            }
        },
    };
    let Some(principal) = principal else {
        return ApiError::unauthenticated("unknown token").into_response();
    };
    if principal.role < needed {
        tracing::info!(who = %principal.name, role = %principal.role, method = %req.method(), route, "request refused: role too low");
        return ApiError::forbidden(format!(
            "{} {route} needs the {needed} role; token {:?} has {}",
            req.method(),
            principal.name,
            principal.role
        ))
        .detail("required_role", needed.to_string())
        .into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

async fn measure(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    // The route template keeps the label set bounded; paths no route
    // matched share one label.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = req.method().as_str().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [method.as_str(), route.as_str(), status.as_str()];
    s.metrics.api_requests.with_label_values(&labels).inc();
    s.metrics
        .api_latency
        .with_label_values(&labels)
        .observe(start.elapsed().as_secs_f64());
    response
}

async fn metrics_text(State(s): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn openapi_json() -> impl IntoResponse {
    Json(openapi::document())
}

/// The answer to a token reload.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadReport {
    /// Tokens now in force.
    pub tokens: usize,
}

/// Reads the token file again (admin only). The old tokens stay in force
/// when the file is unusable.
#[utoipa::path(post, path = "/v1/admin/tokens/reload", tag = "admin",
    responses((status = 200, body = ReloadReport), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn tokens_reload(
    State(s): State<ApiState>,
    axum::Extension(who): axum::Extension<Principal>,
) -> Result<Json<ReloadReport>, ApiError> {
    let auth = s.auth.clone();
    match tokio::task::spawn_blocking(move || auth.reload()).await? {
        Ok(tokens) => {
            tracing::info!(who = %who.name, tokens, "API tokens reloaded");
            Ok(Json(ReloadReport { tokens }))
        }
        Err(e) => Err(ApiError::invalid(crate::state::InvalidField::new(
            "tokens",
            format!("{e}; the previous tokens stay in force"),
        ))),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such resource; the API is described at /v1/openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new_status(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this resource does not accept that method",
    )
}

/// One route: the method, the path template and its handler.
struct Route {
    method: Method,
    path: &'static str,
    handler: MethodRouter<ApiState>,
}

fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, ApiState>,
    T: 'static,
{
    // The table below uses the five methods MethodFilter knows.
    let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
    Route {
        method,
        path,
        handler: on(filter, handler),
    }
}

/// Every route of the API; [`router`] serves exactly these.
fn table() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/v1/devices", network::device_list),
        route(M::GET, "/v1/devices/{name}", network::device_get),
        route(M::GET, "/v1/ports", network::port_list),
        route(M::GET, "/v1/links", network::link_list),
        route(M::GET, "/v1/hosts", network::host_list),
        route(M::GET, "/v1/paths", network::path_show),
        route(M::GET, "/v1/routes", network::route_list),
        route(M::GET, "/v1/telemetry", network::telemetry_show),
        route(M::GET, "/v1/intents", intents::intent_list),
        route(M::POST, "/v1/intents", intents::intent_create),
        route(M::GET, "/v1/intents/{name}", intents::intent_get),
        route(M::DELETE, "/v1/intents/{name}", intents::intent_delete),
        route(M::GET, "/v1/nodes", workloads::node_list),
        route(M::GET, "/v1/jobs", workloads::job_list),
        route(M::POST, "/v1/jobs", workloads::job_submit),
        route(M::GET, "/v1/jobs/{id}", workloads::job_get),
        route(M::GET, "/v1/jobs/{id}/advice", workloads::job_advice),
        route(M::GET, "/v1/advice", workloads::advice_list),
        route(M::GET, "/v1/placements", workloads::placement_list),
        route(M::POST, "/v1/admin/tokens/reload", tokens_reload),
        route(M::GET, "/v1/openapi.json", openapi_json),
        route(M::GET, "/metrics", metrics_text),
    ]
}

/// The method and path template of every route [`router`] serves (`GET`
/// routes also answer `HEAD`).
#[must_use]
pub fn routes() -> Vec<(Method, &'static str)> {
    table().into_iter().map(|r| (r.method, r.path)).collect()
}

/// The API's routes with authentication and request metrics.
pub fn router(state: ApiState) -> Router {
    let mut by_path: Vec<(&'static str, MethodRouter<ApiState>)> = Vec::new();
    for r in table() {
        match by_path.iter_mut().find(|(p, _)| *p == r.path) {
            Some((_, m)) => *m = std::mem::take(m).merge(r.handler),
            None => by_path.push((r.path, r.handler)),
        }
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| {
            router.route(path, handler)
        })
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), measure))
        .with_state(state)
}

/// A running API server; [`ApiServer::stop`] ends it gracefully.
#[derive(Debug)]
pub struct ApiServer {
    local_addr: SocketAddr,
    handle: axum_server::Handle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ApiServer {
    /// Where it listens.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets requests in flight finish (up to 5 s), waits.
    ///
    /// # Errors
    /// The server's I/O error, if it failed.
    pub async fn stop(self) -> std::io::Result<()> {
        self.handle
            .graceful_shutdown(Some(std::time::Duration::from_secs(5)));
        self.task.await.map_err(std::io::Error::other)?
    }

    /// Waits until the server ends (it ends on I/O failure or `stop`).
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }

    /// Stops the server when `signal` completes, and waits for it.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.handle.clone();
        tokio::select! {
            r = self.wait() => r,
            () = signal => {
                handle.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
                Ok(())
            }
        }
    }
}

/// Binds `addr` (port 0 picks one) and serves `app` in the background,
/// over TLS when `tls` is given.
///
/// # Errors
/// When the address cannot be bound.
pub fn spawn(
    addr: SocketAddr,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<ApiServer> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let task = match tls {
        Some(config) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_config(config);
            let server = axum_server::from_tcp_rustls(listener, config).handle(handle.clone());
            tokio::spawn(async move { server.serve(service).await })
        }
        None => {
            let server = axum_server::from_tcp(listener).handle(handle.clone());
            tokio::spawn(async move { server.serve(service).await })
        }
    };
    Ok(ApiServer {
        local_addr,
        handle,
        task,
    })
}
