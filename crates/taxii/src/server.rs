//! The HTTP(S) server: router assembly with the security middleware, and an accept loop of our
//! own (TCP → rustls → hyper HTTP/1.1 or HTTP/2) with deadlines and connection bounds.
//!
//! # Request pipeline (outermost first)
//!
//! 1. **observe**: a `tracing` span per request (method, route template, account, status),
//!    metrics (count and latency by route template), and the whole-request deadline.
//! 2. **authenticate** ([`crate::auth::require_auth`]): 401 before any body byte is read.
//! 3. **rate limit**: a token bucket per account; 429 with `Retry-After`.
//! 4. **body limit**: the API root's `max_content_length`, capped by
//!    [`ServiceConfig::max_body_bytes`](crate::ServiceConfig::max_body_bytes); 413 on
//!    `Content-Length` alone or as soon as the streamed body crosses it. The body is reserved in
//!    a global memory budget ([`ServiceConfig::max_buffered_bytes`](crate::ServiceConfig::max_buffered_bytes))
//!    before it is read. JSON bodies are then checked for nesting depth and string length
//!    ([`crate::limits::check_json_limits`]) before any handler parses them.
//! 5. the TAXII handlers (`api::routes()`), and `/metrics`.
//!
//! `/healthz` sits outside authentication (it answers `ok` and reveals nothing). `/metrics` needs
//! an administrator account: per-route counters and authentication failures describe partners'
//! activity, which partners must not see of each other; Prometheus scrapes with `basic_auth` or
//! `authorization` credentials.
//!
//! # Connection handling
//!
//! At most [`ServerConfig::max_connections`] connections are open at once, and at most
//! [`ServerConfig::max_connections_per_ip`] from one address; past the first the loop stops
//! accepting (the kernel backlog queues), past the second the connection is closed at once. The
//! TLS handshake has [`ServerConfig::handshake_timeout`], HTTP/1 request headers
//! [`ServerConfig::header_read_timeout`] (also the idle keep-alive limit), each request
//! [`ServerConfig::request_timeout`], body upload included, and a connection without a request in
//! flight is closed after [`ServerConfig::idle_timeout`] (HTTP/2 too), so slow or silent clients
//! cannot hold slots.
//! HTTP/2 is chosen by ALPN (never guessed on TLS); on plain HTTP the client preface is sniffed
//! under the handshake deadline.
//!
//! An HTTP/1 connection closed after a request whose body was not read (a 413 on
//! `Content-Length`, a 401 before the body, `Expect: 100-continue` answered with an error) closes
//! with a lingering close, as nginx does (`linger.rs`): our side is half-closed, the
//! client's remaining bytes are read and discarded for at most [`ServerConfig::lingering_time`],
//! [`ServerConfig::lingering_timeout`] of silence and [`ServerConfig::lingering_bytes`], then the
//! socket is closed. Without it the kernel answers the unread bytes with a reset that can destroy
//! the answer before the client reads it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Extension, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;
use tracing::Instrument as _;

use crate::audit::AuditWriter;
use crate::error::ApiError;
use crate::limits::{check_json_limits, too_many_requests};
use crate::linger::{LingerLimits, LingerSwitch, Lingering};
use crate::state::{AppState, ConnectionInfo, Principal};
use crate::tls::{self, Fingerprint, ServerTls, TlsError};

/// How the server secures its connections.
#[derive(Debug, Clone)]
pub enum TlsMode {
    /// A certificate chain and key from PEM files, optionally verifying client certificates
    /// against a CA bundle.
    Tls {
        /// Certificate chain (leaf first), PEM.
        cert: PathBuf,
        /// Private key, PEM.
        key: PathBuf,
        /// CA bundle for client certificates (mTLS), PEM.
        client_ca: Option<PathBuf>,
    },
    /// The self-signed certificate of a data directory (`DIR/tls/cert.pem`, made on first start
    /// for localhost, 127.0.0.1 and ::1, reused afterwards).
    SelfSigned {
        /// The data directory.
        dir: PathBuf,
        /// CA bundle for client certificates (mTLS), PEM.
        client_ca: Option<PathBuf>,
    },
    /// Plain HTTP: credentials and intelligence cross the network readable by anyone on the path.
    /// Only for tests and for running behind a TLS-terminating proxy on the same host.
    DangerPlaintextHttp,
}

/// Transport settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port (see [`RunningServer::local_addr`]).
    pub listen: SocketAddr,
    /// TLS settings.
    pub tls: TlsMode,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one client address.
    pub max_connections_per_ip: usize,
    /// Deadline for the TLS handshake (and, on plain HTTP, for the first bytes).
    pub handshake_timeout: Duration,
    /// Deadline for receiving an HTTP/1 request's headers, also how long an idle keep-alive
    /// connection is kept.
    pub header_read_timeout: Duration,
    /// Deadline for a whole request, body upload included.
    pub request_timeout: Duration,
    /// A connection with no request in flight for this long is closed (gracefully). This is
    /// what bounds an HTTP/2 connection that never sends a request: its keep-alive pings alone
    /// would keep it open forever.
    pub idle_timeout: Duration,
    /// How long [`RunningServer::shutdown`] lets requests in flight finish.
    pub shutdown_grace: Duration,
    /// Most concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Lingering close of an HTTP/1 connection whose last request body was left unread (a 413,
    /// a 401 before the body): the longest the server keeps reading and discarding what the
    /// client still sends, so that the client reads the answer instead of a connection reset
    /// (nginx's `lingering_time`).
    pub lingering_time: Duration,
    /// Lingering close: the longest the client may stay silent before the socket is closed
    /// (nginx's `lingering_timeout`).
    pub lingering_timeout: Duration,
    /// Lingering close: the most bytes read and discarded.
    pub lingering_bytes: u64,
}

impl ServerConfig {
    /// Settings with safe defaults for the given address and TLS mode.
    pub fn new(listen: SocketAddr, tls: TlsMode) -> Self {
        Self {
            listen,
            tls,
            max_connections: 1024,
            max_connections_per_ip: 256,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            max_concurrent_streams: 64,
            lingering_time: Duration::from_secs(30),
            lingering_timeout: Duration::from_secs(5),
            lingering_bytes: 256 << 20,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A started server. Dropping it does not stop it; call [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    tls: Option<ServerTls>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    audit: Arc<AuditWriter>,
    grace: Duration,
}

impl RunningServer {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// SHA-256 fingerprint of the server certificate (None on plain HTTP).
    pub fn certificate_fingerprint(&self) -> Option<Fingerprint> {
        self.tls.as_ref().map(|t| t.fingerprint)
    }

    /// Where the server certificate was read from (None on plain HTTP).
    pub fn certificate_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.cert_path.as_path())
    }

    /// The base URL clients use (`https://ADDR` or `http://ADDR`).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Stops accepting, lets requests in flight finish within the grace period, then waits (at
    /// most the grace period again) until the audit events of every read answered are committed.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        let audit = self.audit;
        let grace = self.grace;
        let flushed = tokio::task::spawn_blocking(move || audit.flush_timeout(grace)).await;
        if !matches!(flushed, Ok(true)) {
            tracing::error!(
                "read audit events still unwritten at shutdown (the store is refusing them)"
            );
        }
    }

    /// Resolves if the accept loop ends on its own, which only a panic in it can cause: a caller
    /// that waits for a signal can `select!` on this too, to notice a dead server.
    pub async fn stopped(&mut self) {
        let _ = (&mut self.task).await;
    }
}

/// The full router: TAXII endpoints, `/healthz`, `/metrics`, and the middleware described in the
/// module documentation. Usable without [`start`] (e.g. with `tower::ServiceExt::oneshot` in
/// tests); requests then carry no [`ConnectionInfo`], so there are no client certificates and no
/// per-address failed-login limit.
pub fn router(state: AppState) -> Router {
    let cap = usize::try_from(state.config.max_body_bytes).unwrap_or(usize::MAX);
    let protected = crate::api::routes()
        .route("/metrics", get(metrics_handler))
        .layer(middleware::from_fn_with_state(state.clone(), body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_auth,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(protected)
        .layer(DefaultBodyLimit::max(cap))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Request deadline, as a request extension set by the accept loop (absent: no deadline).
#[derive(Debug, Clone, Copy)]
struct RequestTimeout(Duration);

async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().clone();
    let timeout = request.extensions().get::<RequestTimeout>().copied();
    let remote = request
        .extensions()
        .get::<ConnectionInfo>()
        .map(|c| c.remote.to_string());
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        remote = remote.as_deref().unwrap_or("-"),
        account = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    let response = async move {
        let response = match timeout {
            Some(RequestTimeout(limit)) => {
                match tokio::time::timeout(limit, next.run(request)).await {
                    Ok(r) => r,
                    Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Request timed out")
                        .describe(format!(
                            "the request did not complete within {} seconds",
                            limit.as_secs()
                        ))
                        .into_response(),
                }
            }
            None => next.run(request).await,
        };
        let status = response.status().as_u16();
        tracing::Span::current().record("status", status);
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(elapsed_ms, "request failed");
        } else {
            tracing::debug!(elapsed_ms, "request finished");
        }
        response
    }
    .instrument(span)
    .await;
    state.metrics.request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(principal) = request.extensions().get::<Principal>()
        && let Err(wait) = state.rate.check(&principal.account.name)
    {
        state.metrics.rate_limited("account");
        return too_many_requests(wait).into_response();
    }
    next.run(request).await
}

/// The first path segment names the API root, except for the fixed top-level paths (which no
/// API root may take: [`kizuna_store::RESERVED_API_ROOT_NAMES`]).
fn api_root_of(path: &str) -> Option<&str> {
    let first = path.trim_start_matches('/').split('/').next()?;
    if first.is_empty() || kizuna_store::RESERVED_API_ROOT_NAMES.contains(&first) {
        return None;
    }
    Some(first)
}

async fn body_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let empty =
        declared == Some(0) || axum::body::HttpBody::size_hint(request.body()).upper() == Some(0);
    if empty {
        return next.run(request).await;
    }
    let mut limit = state.config.max_body_bytes;
    if let Some(name) = api_root_of(request.uri().path()) {
        let name = name.to_owned();
        let store = Arc::clone(&state.store);
        match tokio::task::spawn_blocking(move || store.api_root(&name)).await {
            Ok(Ok(Some(root))) => limit = state.config.max_content_length(&root),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => return ApiError::from(e).into_response(),
            Err(e) => return ApiError::internal(&e).into_response(),
        }
    }
    let http1 = request.version() < http::Version::HTTP_2;
    if declared.is_some_and(|n| n > limit) {
        return too_large(limit, http1);
    }
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    // Reserve room in the global body budget for as long as the bytes live (through the handler).
    let want_kib = declared.unwrap_or(limit).min(limit).div_ceil(1024).max(1);
    // A body larger than the whole budget takes all of it (it then runs alone) instead of
    // waiting forever.
    let total =
        u32::try_from(state.config.max_buffered_bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let want = u32::try_from(want_kib).unwrap_or(u32::MAX).min(total);
    let Ok(_budget) = state.body_budget.acquire_many(want).await else {
        return ApiError::internal(&"request body budget closed").into_response();
    };
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    let bytes = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return too_large(limit, http1);
        }
        Err(e) => {
            return ApiError::bad_request(format!("could not read the request body: {e}"))
                .into_response();
        }
    };
    if is_json
        && let Err(e) = check_json_limits(
            &bytes,
            state.config.max_json_depth,
            state.config.max_json_string,
        )
    {
        return e.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// 413 for a body over `limit`. On HTTP/1 the rest of the body is not read, so the connection
/// cannot be reused: say so (`Connection: close`); the accept loop then closes it with a
/// lingering close so that the client can read this answer.
fn too_large(limit: u64, http1: bool) -> Response {
    let mut response = ApiError::payload_too_large(limit).into_response();
    if http1 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn metrics_handler(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Response {
    if !principal.account.admin {
        return ApiError::forbidden("metrics are available to administrator accounts only")
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Binds `config.listen` and starts serving `state` in the background. Installs the *ring*
/// crypto provider if none is. With [`TlsMode::SelfSigned`] the certificate is made on first
/// start, and its path and fingerprint are logged.
pub async fn start(config: ServerConfig, state: AppState) -> Result<RunningServer, ServerError> {
    tls::install_crypto_provider();
    let tls = match &config.tls {
        TlsMode::Tls {
            cert,
            key,
            client_ca,
        } => Some(tls::server_tls(cert, key, client_ca.as_deref())?),
        TlsMode::SelfSigned { dir, client_ca } => {
            let (cert, key, generated) = tls::load_or_generate_self_signed(dir)?;
            let loaded = tls::server_tls(&cert, &key, client_ca.as_deref())?;
            tracing::info!(
                path = %cert.display(),
                sha256 = %loaded.fingerprint,
                generated,
                "using self-signed certificate"
            );
            Some(loaded)
        }
        TlsMode::DangerPlaintextHttp => {
            tracing::warn!(
                "serving plain HTTP (DangerPlaintextHttp): credentials and objects are not encrypted"
            );
            None
        }
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let (shutdown, signal) = watch::channel(false);
    let acceptor = tls
        .as_ref()
        .map(|t| tokio_rustls::TlsAcceptor::from(Arc::clone(&t.config)));
    let audit = Arc::clone(&state.audit);
    let grace = config.shutdown_grace;
    let accept = AcceptLoop {
        listener,
        acceptor,
        router: router(state.clone()),
        state,
        config: Arc::new(config),
        signal,
        per_ip: Arc::new(Mutex::new(HashMap::new())),
    };
    let task = tokio::spawn(accept.run());
    tracing::info!(%local_addr, tls = tls.is_some(), "TAXII server listening");
    Ok(RunningServer {
        local_addr,
        tls,
        shutdown,
        task,
        audit,
        grace,
    })
}

struct AcceptLoop {
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    state: AppState,
    config: Arc<ServerConfig>,
    signal: watch::Receiver<bool>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Releases a connection's per-address slot and its gauge when the connection task ends.
struct Slot {
    ip: IpAddr,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    state: AppState,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
        self.state.metrics.connection_closed();
    }
}

impl AcceptLoop {
    async fn run(mut self) {
        let max = self.config.max_connections.max(1);
        let slots = Arc::new(Semaphore::new(max));
        loop {
            let permit = tokio::select! {
                _ = self.signal.changed() => break,
                p = Arc::clone(&slots).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (tcp, remote) = tokio::select! {
                _ = self.signal.changed() => break,
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors or a connection reset before accept: back off
                        // briefly instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let ip = remote.ip();
            {
                let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
                let n = map.entry(ip).or_insert(0);
                if *n >= self.config.max_connections_per_ip {
                    self.state.metrics.connection_dropped("per_ip_limit");
                    continue;
                }
                *n += 1;
            }
            self.state.metrics.connection_opened();
            let slot = Slot {
                ip,
                per_ip: Arc::clone(&self.per_ip),
                state: self.state.clone(),
            };
            let _ = tcp.set_nodelay(true);
            let conn = Connection {
                acceptor: self.acceptor.clone(),
                router: self.router.clone(),
                state: self.state.clone(),
                config: Arc::clone(&self.config),
                signal: self.signal.clone(),
            };
            tokio::spawn(async move {
                conn.serve(tcp, remote).await;
                drop(slot);
                drop(permit);
            });
        }
        // Stop accepting at once; then give connections the grace period (each ends itself by
        // then) and a little more to unwind.
        drop(self.listener);
        let wait = self.config.shutdown_grace + Duration::from_secs(1);
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(wait, slots.acquire_many(all)).await;
    }
}

struct Connection {
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    state: AppState,
    config: Arc<ServerConfig>,
    signal: watch::Receiver<bool>,
}

/// Which HTTP version to speak on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
    Sniff,
}

impl Connection {
    async fn serve(self, tcp: TcpStream, remote: SocketAddr) {
        let deadline = self.config.handshake_timeout;
        let linger = LingerSwitch::default();
        let limits = LingerLimits {
            total: self.config.lingering_time,
            idle: self.config.lingering_timeout,
            bytes: self.config.lingering_bytes,
        };
        match self.acceptor.clone() {
            Some(acceptor) => {
                let tcp = Lingering::new(tcp, linger.clone(), limits);
                let tls = match tokio::time::timeout(deadline, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%remote, error = %e, "TLS handshake failed");
                        self.state.metrics.connection_dropped("tls_handshake");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%remote, "TLS handshake timed out");
                        self.state.metrics.connection_dropped("handshake_timeout");
                        return;
                    }
                };
                let (_, session) = tls.get_ref();
                let client_cert_sha256 = session
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|der| Fingerprint::of(der).0);
                let protocol = if session.alpn_protocol() == Some(b"h2") {
                    Protocol::Http2
                } else {
                    Protocol::Http1
                };
                let info = ConnectionInfo {
                    remote,
                    client_cert_sha256,
                    tls: true,
                };
                self.serve_http(tls, info, protocol, linger).await;
            }
            None => {
                // Wait for the client's first bytes under the handshake deadline, so that the
                // HTTP version sniffing below cannot be held open by a silent client.
                match tokio::time::timeout(deadline, preface_ready(&tcp)).await {
                    Ok(Ok(())) => {}
                    _ => {
                        self.state.metrics.connection_dropped("handshake_timeout");
                        return;
                    }
                }
                let info = ConnectionInfo {
                    remote,
                    client_cert_sha256: None,
                    tls: false,
                };
                let tcp = Lingering::new(tcp, linger.clone(), limits);
                self.serve_http(tcp, info, Protocol::Sniff, linger).await;
            }
        }
    }

    async fn serve_http<I>(
        mut self,
        io: I,
        info: ConnectionInfo,
        protocol: Protocol,
        linger: LingerSwitch,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.config.header_read_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.config.max_concurrent_streams)
            .keep_alive_interval(Some(self.config.header_read_timeout))
            .keep_alive_timeout(Duration::from_secs(20));
        let builder = match protocol {
            Protocol::Http1 => builder.http1_only(),
            Protocol::Http2 => builder.http2_only(),
            Protocol::Sniff => builder,
        };
        let router = self.router.clone();
        let timeout = RequestTimeout(self.config.request_timeout);
        let activity = Arc::new(Activity::new());
        let tracker = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(info.clone());
            request.extensions_mut().insert(timeout);
            let router = router.clone();
            let in_flight = InFlight::enter(Arc::clone(&tracker));
            // HTTP/2 resets the stream of an unread body; only HTTP/1 closes the connection.
            let linger = (request.version() < http::Version::HTTP_2).then(|| linger.clone());
            let (request, read) = TrackedBody::wrap(request);
            async move {
                let response: Result<Response, Infallible> =
                    router.oneshot(request.map(Body::new)).await;
                let Ok(mut response) = response;
                if let Some(linger) = linger {
                    let unread = !read.load(Ordering::Relaxed);
                    linger.set(unread);
                    // An HTTP/1 connection whose request body was left unread (a 401 or 403
                    // before the body, say) is closed after this answer, unless hyper happens to
                    // find the whole body already received: say so, so that the client does not
                    // send its next request on a connection about to close (Python `requests`
                    // then failed it with "Remote end closed connection without response").
                    if unread {
                        response
                            .headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    }
                }
                drop(in_flight);
                Ok::<_, Infallible>(response)
            }
        });
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let stopping = *self.signal.borrow();
        if !stopping {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = self.signal.changed() => {}
                _ = activity.idle(self.config.idle_timeout) => {
                    tracing::debug!("closing idle connection");
                }
            }
        }
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(self.config.shutdown_grace, conn).await;
    }
}

/// Requests in flight on a connection, and when the last one ended.
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Resolves once no request has been in flight for `limit`.
    async fn idle(&self, limit: Duration) {
        let tick = (limit / 4).max(Duration::from_millis(10));
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        loop {
            tokio::time::sleep(tick).await;
            let quiet = self
                .now_ms()
                .saturating_sub(self.last_ms.load(Ordering::Relaxed));
            if self.in_flight.load(Ordering::Relaxed) == 0 && quiet >= limit_ms {
                return;
            }
        }
    }
}

/// One request in flight; leaving (also when the request is cancelled) marks the activity.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_ms.store(self.0.now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request body that records whether it was read to its end.
struct TrackedBody {
    inner: Incoming,
    read: Arc<AtomicBool>,
}

impl TrackedBody {
    fn wrap(request: Request<Incoming>) -> (Request<TrackedBody>, Arc<AtomicBool>) {
        let read = Arc::new(AtomicBool::new(hyper::body::Body::is_end_stream(
            request.body(),
        )));
        let flag = Arc::clone(&read);
        (request.map(|inner| TrackedBody { inner, read }), flag)
    }
}

impl hyper::body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let frame = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(None) = frame {
            self.read.store(true, Ordering::Relaxed);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Resolves once the client has sent enough to tell HTTP/2's preface from HTTP/1 (or closed).
async fn preface_ready(tcp: &TcpStream) -> std::io::Result<()> {
    const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut buf = [0u8; 24];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 || n >= H2_PREFACE.len() || buf[..n] != H2_PREFACE[..n] {
            return Ok(());
        }
        // A partial preface: wait for more.
        tcp.readable().await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_root_segment() {
        assert_eq!(api_root_of("/taxii2/"), None);
        assert_eq!(api_root_of("/healthz"), None);
        assert_eq!(api_root_of("/"), None);
        assert_eq!(api_root_of("/api1/collections/x/objects/"), Some("api1"));
        assert_eq!(api_root_of("/api1"), Some("api1"));
    }

    /// Every top-level path the server answers itself is a name no API root may take.
    #[test]
    fn own_top_level_paths_are_reserved_api_root_names() {
        for path in ["/taxii2/", "/healthz", "/metrics"] {
            let name = path.trim_matches('/');
            assert!(
                kizuna_store::RESERVED_API_ROOT_NAMES.contains(&name),
                "{name}"
            );
            assert_eq!(api_root_of(path), None);
        }
    }
}
