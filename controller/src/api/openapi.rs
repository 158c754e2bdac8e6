//! The OpenAPI 3 document, generated from the handlers' annotations and the
//! types' schemas. `solyx api openapi` prints it; `docs/openapi.json` is
//! the committed copy that a test keeps in step.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;
use super::{intents, network, workloads, ReloadReport};
use crate::orchestrator::{
    Accelerators, Job, JobSpec, JobState, Node, Placement, TaskSpec, Traffic, TrafficPattern,
};
use crate::state::{
    ConnectionState, Device, DeviceRole, Endpoint, Host, Intent, IntentSpec, IntentState,
    IntentStatus, Link, LinkState, LinkTelemetry, NextHop, Objective, PathSet, Port, PortCounters,
    Route, RouteMatch, TelemetrySummary,
};
use crate::workloads::advice::{AdviceSaving, AdviceTrigger, MoveAdvice};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Solyx controller API",
        description = "The network view (devices, ports, links, hosts, paths, routes, telemetry), \
intents, and the orchestrator's nodes, jobs, placements and migration advice. Every request but the OpenAPI document \
needs `Authorization: Bearer <token>`; errors share one JSON shape (ErrorBody).",
        license(name = "Apache-2.0"),
    ),
    paths(
        network::device_list, network::device_get, network::port_list, network::link_list,
        network::host_list, network::path_show, network::route_list, network::telemetry_show,
        intents::intent_list, intents::intent_get, intents::intent_create, intents::intent_delete,
        workloads::node_list, workloads::job_list, workloads::job_get, workloads::job_submit,
        workloads::placement_list, workloads::advice_list, workloads::job_advice,
        super::tokens_reload,
    ),
    components(schemas(
        ErrorBody, Device, DeviceRole, ConnectionState, Port, PortCounters, Endpoint, Link,
        LinkState, LinkTelemetry, Host, crate::state::Path, PathSet, Route, RouteMatch, NextHop,
        TelemetrySummary, Intent, IntentSpec, IntentStatus, IntentState, Objective, Node,
        Accelerators, Job, JobSpec, JobState, TaskSpec, Traffic, TrafficPattern, Placement,
        MoveAdvice, AdviceSaving, AdviceTrigger, ReloadReport,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "network", description = "What the controller sees of the network (read only)"),
        (name = "intents", description = "What operators ask of the network"),
        (name = "workloads", description = "Nodes, jobs, placements and migration advice, from the orchestrator"),
        (name = "admin", description = "Controller administration"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty JSON with a final newline, exactly as committed
/// in `docs/openapi.json`.
#[must_use]
pub fn document() -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    serde_json::to_value(&doc).unwrap_or_default()
}

/// [`document`] as the committed text.
#[must_use]
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}
