//! Opening a gRPC channel to a device over TCP (`host:port`,
//! `http://host:port`), TCP with TLS ([`ClientTls`]; mutual TLS when it
//! carries a client certificate) or a Unix socket (`unix:/path/to/socket`).

use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

use super::ClientError;

/// Largest header (and trailer) list accepted: the per-update errors of a
/// large failed write arrive in the trailers.
const MAX_HEADER_LIST_SIZE: u32 = 4 << 20;

/// TLS towards a device: the CA that signed the device's certificate and,
/// for mutual TLS, this controller's certificate and key.
#[derive(Clone)]
pub struct ClientTls {
    ca_pem: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    domain: Option<String>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("mutual", &self.identity.is_some())
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trusts the CA in `ca_pem` for the device's certificate.
    #[must_use]
    pub fn new(ca_pem: Vec<u8>) -> Self {
        Self {
            ca_pem,
            identity: None,
            domain: None,
        }
    }

    /// Presents this certificate and key to the device (mutual TLS).
    #[must_use]
    pub fn identity(mut self, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Self {
        self.identity = Some((cert_pem, key_pem));
        self
    }

    /// Checks the device's certificate against this name instead of the
    /// host in the address.
    #[must_use]
    pub fn domain(mut self, name: impl Into<String>) -> Self {
        self.domain = Some(name.into());
        self
    }

    /// Reads the CA and, when both are given, the client certificate and key.
    ///
    /// # Errors
    /// [`ClientError::Address`] naming the file that cannot be read.
    pub fn from_files(
        ca: &std::path::Path,
        identity: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Result<Self, ClientError> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| ClientError::Address {
                addr: p.display().to_string(),
                reason: format!("cannot read TLS file: {e}"),
            })
        };
        let mut tls = Self::new(read(ca)?);
        if let Some((cert, key)) = identity {
            tls = tls.identity(read(cert)?, read(key)?);
        }
        Ok(tls)
    }

    fn config(&self) -> ClientTlsConfig {
        let mut c = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if let Some((cert, key)) = &self.identity {
            c = c.identity(Identity::from_pem(cert, key));
        }
        if let Some(d) = &self.domain {
            c = c.domain_name(d.clone());
        }
        c
    }
}

/// Connects to `addr`, failing after `timeout`.
pub(crate) async fn connect(
    addr: &str,
    timeout: Duration,
    tls: Option<&ClientTls>,
) -> Result<Channel, String> {
    if let Some(path) = addr.strip_prefix("unix:") {
        if tls.is_some() {
            return Err(
                "TLS is for TCP addresses; a Unix socket is guarded by its file mode".into(),
            );
        }
        let path = path.to_string();
        // tonic wants a URI even here; the connector ignores it.
        let endpoint = Endpoint::from_static("http://[::]:50051")
            .connect_timeout(timeout)
            .http2_max_header_list_size(MAX_HEADER_LIST_SIZE);
        return endpoint
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|e| format!("{e}: {}", source_chain(&e)));
    }
    let mut endpoint = endpoint(addr, tls.is_some())?;
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.config())
            .map_err(|e| format!("TLS configuration: {e}: {}", source_chain(&e)))?;
    }
    endpoint
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        .http2_max_header_list_size(MAX_HEADER_LIST_SIZE)
        .http2_adaptive_window(true)
        .connect()
        .await
        .map_err(|e| format!("{e}: {}", source_chain(&e)))
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push(s.to_string());
        cur = s.source();
    }
    out.join(": ")
}

fn endpoint(addr: &str, tls: bool) -> Result<Endpoint, String> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else if tls {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    };
    Endpoint::from_shared(uri).map_err(|e| e.to_string())
}

/// Checks that `addr` is usable before any connection is tried.
pub(crate) fn check_address(addr: &str) -> Result<(), ClientError> {
    if let Some(path) = addr.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(ClientError::Address {
                addr: addr.into(),
                reason: "empty socket path".into(),
            });
        }
        return Ok(());
    }
    let bad = |reason: String| ClientError::Address {
        addr: addr.into(),
        reason,
    };
    let e = endpoint(addr, false).map_err(|r| {
        if addr.matches(':').count() > 1 && !addr.contains('[') {
            bad(format!("{r} (write IPv6 addresses as [::1]:9559)"))
        } else {
            bad(r)
        }
    })?;
    if e.uri().port_u16().is_none() {
        return Err(bad(
            "no port: write host:port (P4Runtime's usual port is 9559)".into(),
        ));
    }
    Ok(())
}
