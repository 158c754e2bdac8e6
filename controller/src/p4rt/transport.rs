//! Opening a gRPC channel to a device over TCP (`host:port`,
//! `http://host:port`) or a Unix socket (`unix:/path/to/socket`).

use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use super::ClientError;

/// Largest header (and trailer) list accepted: the per-update errors of a
/// large failed write arrive in the trailers.
const MAX_HEADER_LIST_SIZE: u32 = 4 << 20;

/// Connects to `addr`, failing after `timeout`.
pub(crate) async fn connect(addr: &str, timeout: Duration) -> Result<Channel, String> {
    if let Some(path) = addr.strip_prefix("unix:") {
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
    endpoint(addr)?
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

fn endpoint(addr: &str) -> Result<Endpoint, String> {
    let uri = if addr.contains("://") {
        addr.to_string()
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
    let e = endpoint(addr).map_err(|r| {
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
