//! Read-only resources of the network view: devices, ports, links, hosts,
//! paths, routes and the telemetry summary.
//!
//! TODO-completeness: lists come whole, without pagination; a fabric of
//! thousands of ports answers megabytes per `GET /v1/ports`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery};
use super::ApiState;
use crate::state::{Device, Host, Link, PathSet, Port, Route, StateError, TelemetrySummary};

/// Devices, by name.
#[utoipa::path(get, path = "/v1/devices", tag = "network",
    responses((status = 200, body = [Device]), (status = 401, body = ErrorBody)))]
pub async fn device_list(State(s): State<ApiState>) -> Json<Vec<Device>> {
    Json(s.store.devices())
}

/// One device.
#[utoipa::path(get, path = "/v1/devices/{name}", tag = "network",
    params(("name" = String, Path, description = "Device name")),
    responses((status = 200, body = Device), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn device_get(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Device>, ApiError> {
    s.store
        .device(&name)
        .map(Json)
        .ok_or_else(|| StateError::UnknownDevice(name).into())
}

/// Filter by device.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviceFilter {
    /// Only this device.
    pub device: Option<String>,
}

fn known_device(s: &ApiState, device: Option<&str>) -> Result<(), ApiError> {
    match device {
        Some(d) if !s.store.has_device(d) => {
            Err(ApiError::not_found(format!("no device named {d:?}")).detail("field", "device"))
        }
        _ => Ok(()),
    }
}

/// Ports with their counters.
#[utoipa::path(get, path = "/v1/ports", tag = "network", params(DeviceFilter),
    responses((status = 200, body = [Port]), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn port_list(
    State(s): State<ApiState>,
    ApiQuery(q): ApiQuery<DeviceFilter>,
) -> Result<Json<Vec<Port>>, ApiError> {
    known_device(&s, q.device.as_deref())?;
    Ok(Json(s.store.ports(q.device.as_deref())))
}

/// Links with their live measurements.
#[utoipa::path(get, path = "/v1/links", tag = "network",
    responses((status = 200, body = [Link]), (status = 401, body = ErrorBody)))]
pub async fn link_list(State(s): State<ApiState>) -> Json<Vec<Link>> {
    Json(s.store.links())
}

/// Hosts.
#[utoipa::path(get, path = "/v1/hosts", tag = "network",
    responses((status = 200, body = [Host]), (status = 401, body = ErrorBody)))]
pub async fn host_list(State(s): State<ApiState>) -> Json<Vec<Host>> {
    Json(s.store.hosts())
}

/// The two ends of a path query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathQuery {
    /// Source host.
    #[param(required = true, value_type = String)]
    pub src: Option<String>,
    /// Destination host.
    #[param(required = true, value_type = String)]
    pub dst: Option<String>,
}

/// The paths the routing engine keeps between two hosts, with their weights
/// and labels.
#[utoipa::path(get, path = "/v1/paths", tag = "network", params(PathQuery),
    responses((status = 200, body = PathSet), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn path_show(
    State(s): State<ApiState>,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> Result<Json<PathSet>, ApiError> {
    let src = q
        .src
        .ok_or_else(|| ApiError::bad_parameter("src", "required: the source host"))?;
    let dst = q
        .dst
        .ok_or_else(|| ApiError::bad_parameter("dst", "required: the destination host"))?;
    s.store.paths(&src, &dst).map(Json).map_err(|e| {
        let field = if s.store.has_host(&src) { "dst" } else { "src" };
        ApiError::not_found(format!("{field}: {e}")).detail("field", field)
    })
}

/// Installed routes.
#[utoipa::path(get, path = "/v1/routes", tag = "network", params(DeviceFilter),
    responses((status = 200, body = [Route]), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn route_list(
    State(s): State<ApiState>,
    ApiQuery(q): ApiQuery<DeviceFilter>,
) -> Result<Json<Vec<Route>>, ApiError> {
    known_device(&s, q.device.as_deref())?;
    Ok(Json(s.store.routes(q.device.as_deref())))
}

/// The INT telemetry collector's summary.
#[utoipa::path(get, path = "/v1/telemetry", tag = "network",
    responses((status = 200, body = TelemetrySummary), (status = 401, body = ErrorBody)))]
pub async fn telemetry_show(State(s): State<ApiState>) -> Json<TelemetrySummary> {
    Json(s.store.telemetry())
}
