//! The CLI's REST client: one place that turns API answers, including the
//! error shape, into results with messages a person can act on.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use solyx::api::error::ErrorBody;

/// Connection settings shared by every API command.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// Controller API address.
    #[arg(
        long,
        global = true,
        env = "SOLYX_API",
        default_value = "http://127.0.0.1:8080"
    )]
    pub api: String,
    /// Bearer token.
    #[arg(long, global = true, env = "SOLYX_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) to trust for an https:// API.
    #[arg(long, global = true, env = "SOLYX_CA")]
    pub ca: Option<std::path::PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A connected API client.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

fn ca_certificate(path: &Path) -> Result<reqwest::Certificate> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    reqwest::Certificate::from_pem(&pem)
        .with_context(|| format!("{}: not a PEM certificate", path.display()))
}

impl Client {
    /// A client for `remote`.
    pub fn new(remote: &Remote) -> Result<Self> {
        let base = remote.api.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--api {base:?}: write http://host:port or https://host:port");
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30));
        if let Some(ca) = &remote.ca {
            builder = builder.add_root_certificate(ca_certificate(ca)?);
        } else if base.starts_with("https://") {
            bail!("--api {base} uses TLS: give the CA that signed its certificate with --ca FILE (or SOLYX_CA)");
        }
        let http = builder.build().context("building the HTTP client")?;
        Ok(Self {
            base,
            token: remote.token.clone(),
            http,
        })
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.map_err(|e| {
            let mut msg = format!("cannot reach the Solyx API at {}", self.base);
            if e.is_connect() {
                msg.push_str(" (is the controller running? set --api or SOLYX_API)");
            }
            anyhow::Error::new(e).context(msg)
        })?;
        let status = resp.status();
        let body = resp.bytes().await.context("reading the API's answer")?;
        if status.is_success() {
            return serde_json::from_slice(&body).with_context(|| {
                format!("{what}: the API answered JSON this CLI does not understand")
            });
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => {
                let mut msg = format!("{what}: {} ({})", e.message, status.as_u16());
                if status.as_u16() == 401 && self.token.is_none() {
                    msg.push_str("; give a token with --token or SOLYX_TOKEN");
                }
                bail!(msg)
            }
            Err(_) => bail!("{what}: the API answered {status}"),
        }
    }

    /// GET a resource.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T> {
        let req = self.http.get(format!("{}{path}", self.base)).query(query);
        self.send(req, &format!("GET {path}")).await
    }

    /// POST a JSON body.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let req = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(req, &format!("POST {path}")).await
    }

    /// DELETE a resource.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let req = self.http.delete(format!("{}{path}", self.base));
        self.send(req, &format!("DELETE {path}")).await
    }
}

/// Percent-encodes one path segment.
pub fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
