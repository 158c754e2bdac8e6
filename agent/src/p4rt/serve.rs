//! Serving an [`AgentService`] over TCP or a Unix socket, with graceful
//! shutdown, and [`RunningServer`] for serving in the background (tests,
//! other crates' tests).
//!
//! On shutdown the open StreamChannels are closed first (gRPC's graceful
//! shutdown would otherwise wait for them forever), then in-flight calls
//! finish.
//!
//! Over TCP the server may require TLS and a client certificate signed by
//! a given CA ([`ServerTls`]): then only controllers holding such a
//! certificate can open a stream, become primary and program the node.
//! Without it, whoever reaches the port can; the default address is
//! loopback and the Unix socket is mode 0660.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tracing::info;

use super::service::AgentService;

/// Mode of the listening Unix socket: owner and group may connect.
pub const UNIX_SOCKET_MODE: u32 = 0o660;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The TCP address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The Unix socket could not be created.
    #[error("cannot listen on unix socket {}: {reason}", path.display())]
    Unix {
        /// The socket path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The gRPC server failed while serving.
    #[error("gRPC server on {at} failed: {source}")]
    Serve {
        /// Where it listened.
        at: String,
        /// The transport error.
        source: tonic::transport::Error,
    },
    /// A TLS file could not be read.
    #[error("TLS {what} {}: {source}", path.display())]
    TlsFile {
        /// Which file (certificate, key, client CA).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The TLS configuration was refused.
    #[error("TLS configuration: {0}")]
    Tls(tonic::transport::Error),
    /// The background task of a [`RunningServer`] ended abnormally.
    #[error("server task failed: {0}")]
    Task(String),
}

/// Binds a TCP listener on `addr` (port 0 picks a free port).
///
/// # Errors
/// [`ServeError::Bind`] naming the address (in use, not local, ...).
pub async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Creates the Unix socket at `path`, mode [`UNIX_SOCKET_MODE`]. A stale
/// socket file (nobody listening) is removed first; a live socket or a
/// file that is not a socket is left alone and refused.
///
/// # Errors
/// [`ServeError::Unix`] naming the path and the reason.
pub fn bind_unix(path: &Path) -> Result<UnixListener, ServeError> {
    let fail = |reason: String| ServeError::Unix {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(fail("another server is listening on it".into()));
            }
            std::fs::remove_file(path)
                .map_err(|e| fail(format!("cannot remove the stale socket: {e}")))?;
        }
        Ok(_) => return Err(fail("the path exists and is not a socket".into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    let listener = UnixListener::bind(path).map_err(|e| fail(e.to_string()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(UNIX_SOCKET_MODE))
        .map_err(|e| fail(format!("cannot set mode {UNIX_SOCKET_MODE:o}: {e}")))?;
    Ok(listener)
}

fn closing(
    service: &AgentService,
    shutdown: impl Future<Output = ()> + Send,
) -> impl Future<Output = ()> + Send {
    let service = service.clone();
    async move {
        shutdown.await;
        service.close_streams();
    }
}

/// TLS for the TCP listener: the server's certificate and key and,
/// for mutual TLS, the CA that must have signed every client's
/// certificate (clients without one are refused during the handshake).
#[derive(Clone)]
pub struct ServerTls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("mutual", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// From PEM contents.
    #[must_use]
    pub fn from_pem(cert_pem: Vec<u8>, key_pem: Vec<u8>, client_ca_pem: Option<Vec<u8>>) -> Self {
        Self {
            cert_pem,
            key_pem,
            client_ca_pem,
        }
    }

    /// Reads the PEM files.
    ///
    /// # Errors
    /// [`ServeError::TlsFile`] naming the file.
    pub fn from_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<Self, ServeError> {
        let read = |what: &'static str, path: &Path| {
            std::fs::read(path).map_err(|source| ServeError::TlsFile {
                what,
                path: path.to_path_buf(),
                source,
            })
        };
        Ok(Self {
            cert_pem: read("certificate", cert)?,
            key_pem: read("key", key)?,
            client_ca_pem: client_ca.map(|p| read("client CA", p)).transpose()?,
        })
    }

    fn config(&self) -> ServerTlsConfig {
        let mut c =
            ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_pem, &self.key_pem));
        if let Some(ca) = &self.client_ca_pem {
            c = c.client_ca_root(Certificate::from_pem(ca));
        }
        c
    }
}

/// Serves `service` on a bound TCP listener until `shutdown` completes.
///
/// # Errors
/// [`ServeError::Serve`] when the transport fails.
pub async fn serve_tcp_listener(
    service: AgentService,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_tcp_listener_with(service, Routes::default(), listener, None, shutdown).await
}

/// Like [`serve_tcp_listener`], over TLS when `tls` is given.
///
/// # Errors
/// [`ServeError::Tls`] for an unusable certificate or key,
/// [`ServeError::Serve`] when the transport fails.
pub async fn serve_tcp_listener_tls(
    service: AgentService,
    listener: TcpListener,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_tcp_listener_with(service, Routes::default(), listener, tls, shutdown).await
}

/// [`serve_tcp_listener_tls`], with other gRPC services (`extra`, such as
/// the node resources service) on the same listener. `shutdown` must end
/// the open streams of those services itself before it completes.
///
/// # Errors
/// [`ServeError::Tls`] for an unusable certificate or key,
/// [`ServeError::Serve`] when the transport fails.
pub async fn serve_tcp_listener_with(
    service: AgentService,
    extra: Routes,
    listener: TcpListener,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let at = listener
        .local_addr()
        .map_or_else(|_| "tcp".to_string(), |a| a.to_string());
    let mode = match &tls {
        None => "plain",
        Some(t) if t.client_ca_pem.is_some() => "mutual TLS",
        Some(_) => "TLS",
    };
    info!(listen = %at, dataplane = service.dataplane_name(), transport = mode, "serving P4Runtime over TCP");
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let signal = closing(&service, shutdown);
    let mut builder = Server::builder();
    if let Some(tls) = &tls {
        builder = builder.tls_config(tls.config()).map_err(ServeError::Tls)?;
    }
    builder
        .http2_max_header_list_size(MAX_HEADER_LIST_SIZE)
        .add_routes(extra.add_service(service.into_grpc()))
        .serve_with_incoming_shutdown(incoming, signal)
        .await
        .map_err(|source| ServeError::Serve { at, source })
}

/// Largest header list (and so trailer list) accepted, in bytes: per-update
/// error details of a large failed batch travel in the trailers.
pub const MAX_HEADER_LIST_SIZE: u32 = 4 << 20;

/// Binds `addr` and serves `service` on it until `shutdown` completes.
///
/// # Errors
/// [`ServeError::Bind`] or [`ServeError::Serve`].
pub async fn serve_tcp(
    service: AgentService,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let listener = bind_tcp(addr).await?;
    serve_tcp_listener(service, listener, shutdown).await
}

/// Serves `service` on a bound Unix listener until `shutdown` completes,
/// then removes the socket file.
///
/// # Errors
/// [`ServeError::Serve`] when the transport fails.
pub async fn serve_unix_listener(
    service: AgentService,
    listener: UnixListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_unix_listener_with(service, Routes::default(), listener, shutdown).await
}

/// [`serve_unix_listener`], with other gRPC services on the same socket
/// (see [`serve_tcp_listener_with`]).
///
/// # Errors
/// [`ServeError::Serve`] when the transport fails.
pub async fn serve_unix_listener_with(
    service: AgentService,
    extra: Routes,
    listener: UnixListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf));
    let at = path.as_ref().map_or_else(
        || "unix socket".to_string(),
        |p| format!("unix:{}", p.display()),
    );
    info!(listen = %at, dataplane = service.dataplane_name(), "serving P4Runtime over a Unix socket");
    let signal = closing(&service, shutdown);
    let r = Server::builder()
        .http2_max_header_list_size(MAX_HEADER_LIST_SIZE)
        .add_routes(extra.add_service(service.into_grpc()))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), signal)
        .await
        .map_err(|source| ServeError::Serve { at, source });
    if let Some(p) = path {
        let _ = std::fs::remove_file(p);
    }
    r
}

/// Creates the Unix socket at `path` (see [`bind_unix`]) and serves
/// `service` on it until `shutdown` completes.
///
/// # Errors
/// [`ServeError::Unix`] or [`ServeError::Serve`].
pub async fn serve_unix(
    service: AgentService,
    path: &Path,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let listener = bind_unix(path)?;
    serve_unix_listener(service, listener, shutdown).await
}

/// A server running in a background task; [`RunningServer::stop`] shuts
/// it down gracefully (dropping it does too, without waiting).
#[derive(Debug)]
pub struct RunningServer {
    endpoint: String,
    local_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl RunningServer {
    fn spawn<F>(
        endpoint: String,
        local_addr: Option<SocketAddr>,
        serve: impl FnOnce(oneshot::Receiver<()>) -> F,
    ) -> Self
    where
        F: Future<Output = Result<(), ServeError>> + Send + 'static,
    {
        let (stop, rx) = oneshot::channel();
        let task = tokio::spawn(serve(rx));
        Self {
            endpoint,
            local_addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Where clients connect: `127.0.0.1:port` or `unix:/path`.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The TCP address, for a TCP server.
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Shuts down gracefully: closes the streams, lets calls finish, waits
    /// for the server task.
    ///
    /// # Errors
    /// The server's own error, if it failed.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(|e| ServeError::Task(e.to_string()))?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and serves `service` in a
/// background task. Must be called inside a Tokio runtime.
///
/// # Errors
/// [`ServeError::Bind`].
pub async fn spawn_tcp(
    service: AgentService,
    addr: SocketAddr,
) -> Result<RunningServer, ServeError> {
    let listener = bind_tcp(addr).await?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    Ok(RunningServer::spawn(
        local.to_string(),
        Some(local),
        move |rx| {
            serve_tcp_listener(service, listener, async move {
                let _ = rx.await;
            })
        },
    ))
}

/// Like [`spawn_tcp`], over TLS (mutual when `tls` names a client CA).
///
/// # Errors
/// [`ServeError::Bind`].
pub async fn spawn_tcp_tls(
    service: AgentService,
    addr: SocketAddr,
    tls: ServerTls,
) -> Result<RunningServer, ServeError> {
    let listener = bind_tcp(addr).await?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    Ok(RunningServer::spawn(
        local.to_string(),
        Some(local),
        move |rx| {
            serve_tcp_listener_tls(service, listener, Some(tls), async move {
                let _ = rx.await;
            })
        },
    ))
}

/// Creates the Unix socket at `path` and serves `service` in a background
/// task. Must be called inside a Tokio runtime.
///
/// # Errors
/// [`ServeError::Unix`].
pub fn spawn_unix(service: AgentService, path: &Path) -> Result<RunningServer, ServeError> {
    let listener = bind_unix(path)?;
    let endpoint = format!("unix:{}", path.display());
    Ok(RunningServer::spawn(endpoint, None, move |rx| {
        serve_unix_listener(service, listener, async move {
            let _ = rx.await;
        })
    }))
}
