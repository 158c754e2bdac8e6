//! The REST API over real HTTP on 127.0.0.1: access control on every route,
//! the error shape, validation, durable intents, the OpenAPI document,
//! request metrics and TLS.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup is a failed test

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use solyx::api::auth::{Auth, TokenSource};
use solyx::api::{self, ApiServer, ApiState};
use solyx::metrics::Metrics;
use solyx::orchestrator::{
    Job, JobSpec, JobState, Node, Orchestrator, OrchestratorError, Placement,
};
use solyx::state::StateStore;

const ADMIN: &str = "admin-token-0123456789";
const OPERATOR: &str = "operator-token-0123456789";
const VIEWER: &str = "viewer-token-0123456789";

fn tokens() -> String {
    format!("admin alice {ADMIN}\noperator ci {OPERATOR}\nviewer grafana {VIEWER}\n")
}

/// An orchestrator double: the orchestrator crate is built separately; this
/// one accepts every job and places each task copy on node `n1`.
#[derive(Default)]
struct OrchestratorDouble {
    jobs: Mutex<Vec<Job>>,
}

impl Orchestrator for OrchestratorDouble {
    fn nodes(&self) -> Result<Vec<Node>, OrchestratorError> {
        Ok(vec![Node {
            name: "n1".into(),
            site: Some("site-a".into()),
            cpus: 16,
            cpus_free: 12,
            memory_mib: 65536,
            memory_free_mib: 32768,
            accelerators: vec![],
            allocations: vec![],
            ready: true,
        }])
    }

    fn submit(&self, spec: JobSpec) -> Result<Job, OrchestratorError> {
        let mut jobs = self.jobs.lock().unwrap();
        if jobs.iter().any(|j| j.spec.name == spec.name) {
            return Err(OrchestratorError::Exists(spec.name));
        }
        let job = Job {
            id: format!("job-{}", jobs.len() + 1),
            spec,
            state: JobState::Running,
            reason: None,
        };
        jobs.push(job.clone());
        Ok(job)
    }

    fn jobs(&self) -> Result<Vec<Job>, OrchestratorError> {
        Ok(self.jobs.lock().unwrap().clone())
    }

    fn job(&self, id: &str) -> Result<Job, OrchestratorError> {
        self.jobs
            .lock()
            .unwrap()
            .iter()
            .find(|j| j.id == id)
            .cloned()
            .ok_or_else(|| OrchestratorError::NotFound(id.into()))
    }

    fn placements(&self, job: Option<&str>) -> Result<Vec<Placement>, OrchestratorError> {
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .iter()
            .filter(|j| job.is_none_or(|id| j.id == id))
            .flat_map(|j| {
                j.spec.tasks.iter().map(|t| Placement {
                    job: j.id.clone(),
                    task: t.name.clone(),
                    replica: 0,
                    node: "n1".into(),
                    cost: 1.0,
                    cost_breakdown: BTreeMap::new(),
                    explanation: "only node".into(),
                })
            })
            .collect())
    }
}

struct Api {
    server: ApiServer,
    base: String,
    http: reqwest::Client,
    store: Arc<StateStore>,
    metrics: Arc<Metrics>,
}

/// Serves `store` filled with the demo network (through the metrics-aware
/// store, as the runtime would).
fn start_with(store: StateStore, orchestrator: bool) -> Api {
    let metrics = Arc::new(Metrics::new());
    let store = Arc::new(store.with_metrics(metrics.clone()));
    api::demo::fill(&store).unwrap();
    let auth = Arc::new(Auth::load(TokenSource::Inline(tokens())).unwrap());
    let mut state = ApiState::new(store.clone(), auth, metrics.clone());
    if orchestrator {
        state = state.with_orchestrator(Arc::new(OrchestratorDouble::default()));
    }
    let server = api::spawn("127.0.0.1:0".parse().unwrap(), api::router(state), None).unwrap();
    Api {
        base: format!("http://{}", server.local_addr()),
        server,
        http: reqwest::Client::new(),
        store,
        metrics,
    }
}

fn start(orchestrator: bool) -> Api {
    start_with(StateStore::ephemeral().unwrap(), orchestrator)
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }
}

fn intent(name: &str) -> Value {
    json!({"name": name, "src": "h1", "dst": "h4", "objective": "latency", "max_latency_us": 800})
}

fn job(name: &str) -> Value {
    json!({"name": name, "tasks": [{"name": "worker", "replicas": 2, "cpus": 4, "gpus": 1}]})
}

fn assert_error_shape(v: &Value, code: &str) {
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(v["details"].is_object(), "{v}");
}

#[tokio::test]
async fn every_role_is_tried_on_every_mutating_route() {
    let api = start(true);
    // (method, path, body, least role allowed)
    type Case = (
        Method,
        &'static str,
        Option<fn(&str) -> Value>,
        &'static str,
    );
    let cases: [Case; 4] = [
        (Method::POST, "/v1/intents", Some(intent), "operator"),
        (Method::DELETE, "/v1/intents/{n}", None, "operator"),
        (Method::POST, "/v1/jobs", Some(job), "operator"),
        (Method::POST, "/v1/admin/tokens/reload", None, "admin"),
    ];
    for (i, (method, template, body, least)) in cases.into_iter().enumerate() {
        for (who, token) in [
            ("none", None),
            ("viewer", Some(VIEWER)),
            ("operator", Some(OPERATOR)),
            ("admin", Some(ADMIN)),
        ] {
            let name = format!("r{i}-{who}");
            // Something to delete for every caller.
            if template.contains("{n}") {
                let (s, _) = api
                    .call(
                        Method::POST,
                        "/v1/intents",
                        Some(ADMIN),
                        Some(intent(&name)),
                    )
                    .await;
                assert_eq!(s, StatusCode::CREATED);
            }
            let path = template.replace("{n}", &name);
            let (status, v) = api
                .call(method.clone(), &path, token, body.map(|b| b(&name)))
                .await;
            let allowed = matches!((who, least), ("admin", _) | ("operator", "operator"));
            let expected = match who {
                "none" => StatusCode::UNAUTHORIZED,
                _ if !allowed => StatusCode::FORBIDDEN,
                _ if method == Method::POST && template != "/v1/admin/tokens/reload" => {
                    StatusCode::CREATED
                }
                _ => StatusCode::OK,
            };
            assert_eq!(status, expected, "{who} {method} {path}: {v}");
            match status {
                StatusCode::UNAUTHORIZED => assert_error_shape(&v, "unauthenticated"),
                StatusCode::FORBIDDEN => {
                    assert_error_shape(&v, "forbidden");
                    assert_eq!(v["details"]["required_role"], least, "{v}");
                }
                _ => {}
            }
        }
    }
    // What the refused callers tried left no trace.
    let (_, list) = api
        .call(Method::GET, "/v1/intents", Some(VIEWER), None)
        .await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["spec"]["name"].as_str().unwrap())
        .collect();
    // Created by operator and admin; deleted by operator and admin only.
    assert_eq!(names, ["r0-admin", "r0-operator", "r1-none", "r1-viewer"]);
    let (_, jobs) = api.call(Method::GET, "/v1/jobs", Some(VIEWER), None).await;
    assert_eq!(jobs.as_array().unwrap().len(), 2, "{jobs}");
    api.server.stop().await.unwrap();
}

#[tokio::test]
async fn every_read_route_needs_a_token_and_a_viewer_may_read() {
    let api = start(true);
    for path in [
        "/v1/devices",
        "/v1/devices/spine1",
        "/v1/ports",
        "/v1/ports?device=leaf1",
        "/v1/links",
        "/v1/hosts",
        "/v1/paths?src=h1&dst=h3",
        "/v1/routes",
        "/v1/telemetry",
        "/v1/intents",
        "/v1/nodes",
        "/v1/jobs",
        "/v1/placements",
    ] {
        let (s, v) = api.call(Method::GET, path, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        assert_error_shape(&v, "unauthenticated");
        let (s, v) = api
            .call(Method::GET, path, Some("not-a-known-token!"), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}: {v}");
        let (s, v) = api.call(Method::GET, path, Some(VIEWER), None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
    }
    // The description is public.
    let (s, _) = api.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    api.server.stop().await.unwrap();
}

#[tokio::test]
async fn errors_share_one_shape_and_name_the_field() {
    let api = start(false);
    // (method, path, body, status, code, field named)
    type Case<'a> = (
        Method,
        &'a str,
        Option<Value>,
        StatusCode,
        &'a str,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            Method::GET,
            "/v1/devices/nope",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            Method::GET,
            "/v1/nowhere",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            Method::GET,
            "/v1/paths?src=h1",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
            Some("dst"),
        ),
        (
            Method::GET,
            "/v1/paths?src=h1&dst=h9",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            Some("dst"),
        ),
        (
            Method::GET,
            "/v1/ports?device=zz",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            Some("device"),
        ),
        (
            Method::PUT,
            "/v1/intents",
            Some(json!({})),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            None,
        ),
        (
            Method::POST,
            "/v1/intents",
            Some(json!({"name": "x", "src": "h1", "dst": "h1"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            Some("dst"),
        ),
        (
            Method::POST,
            "/v1/intents",
            Some(json!({"name": "x", "src": "h1", "dst": "h9"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            Some("dst"),
        ),
        (
            Method::POST,
            "/v1/intents",
            Some(json!({"name": "x", "dst": "h2"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            Some("src"),
        ),
        (
            Method::POST,
            "/v1/intents",
            Some(json!({"name": "x", "src": "h1", "dst": "h2", "avoid": ["spine9"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            Some("avoid[0]"),
        ),
        (
            Method::POST,
            "/v1/intents",
            Some(json!({"name": "x", "src": "h1", "dst": "h2", "max_latency_us": -5})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            Some("max_latency_us"),
        ),
        (
            Method::GET,
            "/v1/nodes",
            None,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            None,
        ),
        (
            Method::POST,
            "/v1/jobs",
            Some(job("j")),
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            None,
        ),
    ];
    for (method, path, body, status, code, field) in cases {
        let (s, v) = api.call(method.clone(), path, Some(ADMIN), body).await;
        assert_eq!(s, status, "{method} {path}: {v}");
        assert_error_shape(&v, code);
        if let Some(f) = field {
            assert_eq!(v["details"]["field"], f, "{method} {path}: {v}");
            assert!(v["message"].as_str().unwrap().contains(f), "{v}");
        }
    }
    // Not JSON at all, and JSON sent as something else.
    let resp = api
        .http
        .post(format!("{}/v1/intents", api.base))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_error_shape(&resp.json().await.unwrap(), "bad_request");
    let resp = api
        .http
        .post(format!("{}/v1/intents", api.base))
        .bearer_auth(ADMIN)
        .header("content-type", "text/plain")
        .body(intent("x").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // No refused intent was stored.
    assert!(api.store.intents().list().is_empty());
    assert!(!api.store.intents().is_stored("x").unwrap());
    api.server.stop().await.unwrap();
}

#[tokio::test]
async fn jobs_pass_through_to_the_orchestrator() {
    let api = start(true);
    let (s, v) = api
        .call(Method::POST, "/v1/jobs", Some(OPERATOR), Some(job("train")))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = api
        .call(Method::GET, &format!("/v1/jobs/{id}"), Some(VIEWER), None)
        .await;
    assert_eq!(
        (s, v["spec"]["name"].as_str()),
        (StatusCode::OK, Some("train"))
    );
    let (_, v) = api
        .call(
            Method::GET,
            &format!("/v1/placements?job={id}"),
            Some(VIEWER),
            None,
        )
        .await;
    assert_eq!(v[0]["node"], "n1", "{v}");
    let (s, v) = api
        .call(Method::POST, "/v1/jobs", Some(OPERATOR), Some(job("train")))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let bad = json!({"name": "j2", "tasks": [{"name": "w", "replicas": 0, "cpus": 1}]});
    let (s, v) = api
        .call(Method::POST, "/v1/jobs", Some(OPERATOR), Some(bad))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["details"]["field"], "tasks[0].replicas", "{v}");
    let (s, _) = api
        .call(Method::GET, "/v1/jobs/job-99", Some(VIEWER), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    api.server.stop().await.unwrap();
}

#[tokio::test]
async fn intents_survive_a_restart_of_the_api_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let api = start_with(StateStore::open(&db).unwrap(), false);
    for name in ["keep", "gone"] {
        let (s, v) = api
            .call(
                Method::POST,
                "/v1/intents",
                Some(OPERATOR),
                Some(intent(name)),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, _) = api
        .call(Method::DELETE, "/v1/intents/gone", Some(OPERATOR), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, before) = api
        .call(Method::GET, "/v1/intents/keep", Some(VIEWER), None)
        .await;
    api.server.stop().await.unwrap();
    drop(api.store);

    let api = start_with(StateStore::open(&db).unwrap(), false);
    let (s, after) = api
        .call(Method::GET, "/v1/intents/keep", Some(VIEWER), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(before, after);
    let (s, _) = api
        .call(Method::GET, "/v1/intents/gone", Some(VIEWER), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    api.server.stop().await.unwrap();
}

#[tokio::test]
async fn the_committed_openapi_document_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .unwrap_or_default();
    let generated = api::openapi::document_text();
    assert!(
        committed == generated,
        "docs/openapi.json differs from the API in the code; regenerate it with\n    \
         cargo run -p solyx -- api openapi > docs/openapi.json"
    );
    let api = start(false);
    let (s, served) = api.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(served, serde_json::from_str::<Value>(&generated).unwrap());
    // Every route the router serves is documented, and the reverse: the
    // router is built from the list `api::routes()` returns; only the
    // document itself and /metrics stay out of it.
    let mut served_routes: Vec<String> = api::routes()
        .into_iter()
        .filter(|(_, p)| !matches!(*p, "/v1/openapi.json" | "/metrics"))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    let mut documented: Vec<String> = served["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {p}", m.to_uppercase()))
        })
        .collect();
    served_routes.sort();
    documented.sort();
    assert_eq!(served_routes, documented);
    // And the router does answer each of them (no 404 from the fallback,
    // no 405): path parameters filled with a name that does not exist.
    for r in &served_routes {
        let (m, p) = r.split_once(' ').unwrap();
        let path = p.replace("{name}", "nope").replace("{id}", "nope");
        let (s, body) = api
            .call(
                Method::from_bytes(m.as_bytes()).unwrap(),
                &path,
                Some(ADMIN),
                None,
            )
            .await;
        assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{r}: {body}");
        assert!(
            !body["message"]
                .as_str()
                .is_some_and(|t| t.starts_with("no such resource; the API")),
            "{r} reached the router's fallback: {body}"
        );
    }
    api.server.stop().await.unwrap();
}

#[tokio::test]
async fn request_metrics_are_labelled_by_route_template() {
    let api = start(false);
    for d in ["spine1", "leaf1", "nope"] {
        api.call(Method::GET, &format!("/v1/devices/{d}"), Some(VIEWER), None)
            .await;
    }
    api.call(Method::GET, "/v1/devices", None, None).await;
    let text = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"solyx_api_requests_total{method="GET",route="/v1/devices/{name}",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/v1/devices/{name}",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/v1/devices",status="401"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("solyx_api_request_duration_seconds_bucket"),
        "{text}"
    );
    for line in text.lines().filter(|l| l.starts_with("solyx_api_")) {
        assert!(
            !line.contains("spine1") && !line.contains("nope"),
            "raw path in {line}"
        );
    }
    // Link gauges follow the state store.
    assert!(
        text.contains(r#"solyx_link_utilisation_ratio{link="leaf1:1->spine1:1"} 0.2"#),
        "{text}"
    );
    assert!(api
        .metrics
        .render()
        .contains("# TYPE solyx_reroute_events_total counter"));
    api.server.stop().await.unwrap();
}

#[tokio::test]
async fn the_api_serves_tls_with_a_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.path().join("api.crt");
    let key = dir.path().join("api.key");
    std::fs::write(&cert, ca.cert.pem()).unwrap();
    std::fs::write(&key, ca.signing_key.serialize_pem()).unwrap();
    let tls = api::tls::server_config(&cert, &key).unwrap();

    let store = Arc::new(StateStore::ephemeral().unwrap());
    api::demo::fill(&store).unwrap();
    let auth = Arc::new(Auth::load(TokenSource::Inline(tokens())).unwrap());
    let state = ApiState::new(store, auth, Arc::new(Metrics::new()));
    let server = api::spawn(
        "127.0.0.1:0".parse().unwrap(),
        api::router(state),
        Some(tls),
    )
    .unwrap();
    let port = server.local_addr().port();

    let trusted = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let resp = trusted
        .get(format!("https://localhost:{port}/v1/hosts"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // A client that does not trust the certificate gets no answer.
    let untrusted = reqwest::Client::new();
    assert!(untrusted
        .get(format!("https://localhost:{port}/v1/hosts"))
        .send()
        .await
        .is_err());
    // Plain HTTP to the TLS port gets no answer either.
    let plain = untrusted
        .get(format!("http://127.0.0.1:{port}/v1/hosts"))
        .send()
        .await;
    assert!(!plain.is_ok_and(|r| r.status().is_success()));
    server.stop().await.unwrap();
}

#[test]
fn a_broken_certificate_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("api.crt");
    let key = dir.path().join("api.key");
    std::fs::write(&cert, "not a certificate").unwrap();
    std::fs::write(&key, "").unwrap();
    let e = api::tls::server_config(&cert, &key).unwrap_err();
    assert!(e.to_string().contains("api.crt"), "{e}");
}

/// An orchestrator double whose every call fails inside, as a broken
/// backend would.
struct BrokenOrchestratorDouble;

impl Orchestrator for BrokenOrchestratorDouble {
    fn nodes(&self) -> Result<Vec<Node>, OrchestratorError> {
        Err(OrchestratorError::Internal(
            "inventory database at /var/lib/secret is corrupt".into(),
        ))
    }
    fn submit(&self, _: JobSpec) -> Result<Job, OrchestratorError> {
        self.nodes().map(|_| unreachable!())
    }
    fn jobs(&self) -> Result<Vec<Job>, OrchestratorError> {
        self.nodes().map(|_| Vec::new())
    }
    fn job(&self, _: &str) -> Result<Job, OrchestratorError> {
        self.nodes().map(|_| unreachable!())
    }
    fn placements(&self, _: Option<&str>) -> Result<Vec<Placement>, OrchestratorError> {
        self.nodes().map(|_| Vec::new())
    }
}

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn internal_faults_are_logged_once_and_answered_generically() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter("solyx=debug")
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread test runtime: the server's tasks log on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = Arc::new(StateStore::ephemeral().unwrap());
    api::demo::fill(&store).unwrap();
    let auth = Arc::new(Auth::load(TokenSource::Inline(tokens())).unwrap());
    let state = ApiState::new(store, auth, Arc::new(Metrics::new()))
        .with_orchestrator(Arc::new(BrokenOrchestratorDouble));
    let server = api::spawn("127.0.0.1:0".parse().unwrap(), api::router(state), None).unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.local_addr());

    let resp = http
        .get(format!("{base}/v1/nodes"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = resp.json().await.unwrap();
    assert_error_shape(&body, "internal");
    assert!(!body.to_string().contains("secret"), "cause leaked: {body}");

    // A client mistake, for contrast.
    let resp = http
        .post(format!("{base}/v1/intents"))
        .bearer_auth(OPERATOR)
        .json(&json!({"name": "x", "src": "h1", "dst": "h1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    server.stop().await.unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert_eq!(errors.len(), 1, "one error line for the one fault:\n{text}");
    assert!(
        errors[0].to_string().contains("/var/lib/secret is corrupt"),
        "the log keeps the cause: {}",
        errors[0]
    );
    let refused = lines
        .iter()
        .find(|l| l.to_string().contains("must differ from src"))
        .expect("the refused intent is logged");
    assert_eq!(refused["level"], "DEBUG", "{refused}");
}
