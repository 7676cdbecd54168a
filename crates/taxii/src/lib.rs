//! Kizuna's TAXII 2.1 server: the HTTPS endpoint partners talk to.
//!
//! # What this crate owns
//!
//! - **Transport** ([`server`], [`tls`]): one accept loop of its own — TCP, then rustls (TLS 1.2
//!   and 1.3, 1.3 preferred, ALPN `h2` and `http/1.1`), then hyper serving HTTP/1.1 or HTTP/2 —
//!   so that every connection carries what the TLS handshake proved (the client certificate) and
//!   every phase has a deadline (handshake, request headers, whole request) and a bound (open
//!   connections, per address too). A client that connects and says nothing holds a slot for
//!   seconds, not forever.
//! - **Security layer** ([`auth`], [`limits`]): who the caller is (HTTP Basic with argon2
//!   passwords, bearer API keys stored as SHA-256, or a client certificate mapped to an account),
//!   how fast it may go (a token bucket per account, another per address for failed logins), and
//!   how much it may send (body size per API root under a global hard cap, JSON nesting depth and
//!   string length checked on raw bytes before any parser sees them).
//! - **The audit of reads** ([`audit`]): every object version served is an audit event,
//!   committed in batches by one writer thread off the request path; the queue is bounded (a full
//!   queue makes reads wait, never drops events) and flushed on graceful shutdown.
//! - **Observability** ([`metrics`]): Prometheus counters and histograms with names defined in one
//!   place, and a `tracing` span per request.
//! - **The TAXII protocol** (the `api` module, [`media`], [`token`], [`error`]): every endpoint
//!   of TAXII 2.1, content negotiation, sealed `next` tokens, and error bodies as in §3.6.1.
//!
//! # What it must never do
//!
//! - **Serve an object above the caller's TLP clearance**, through any endpoint. Clearance is
//!   passed down into every store query, so such an object is never even read for the caller.
//! - **Serve a partner's reading account what its egress policy withholds**, or the properties it
//!   redacts ([`ServiceConfig::egress`], the `kizuna-policy` engine push obeys too), through
//!   objects, object, versions or manifest.
//! - **Serve such an account an object that is not in the egress ledger.** Objects and object
//!   append what they are about to serve to [`ServiceConfig::ledger`] first, and answer 503
//!   instead when that fails ([`egress`]).
//! - **Listen without TLS by accident.** Without a certificate the server makes a self-signed one;
//!   plain HTTP needs [`server::TlsMode::DangerPlaintextHttp`], named so it is seen in review.
//! - **Run the slow password hash on every request.** A verified password is remembered for a
//!   short time under an HMAC of name and password (never the password itself), bounded in size;
//!   revocation and password changes still take effect on the very next request because the
//!   account is re-read from the store each time (one indexed lookup).
//! - **Tell a stranger which accounts exist.** An unknown name costs one argon2 verification, like
//!   a wrong password, and gets the same answer.
//! - **Read a request body before authenticating it**, or read more of it than the API root
//!   allows.
//! - **Panic on what a client or a file sends**, or grow memory with the number of clients:
//!   every cache and every limiter table is bounded.
//!
//! # Starting a server
//!
//! ```no_run
//! # async fn run(store: std::sync::Arc<dyn kizuna_store::Store>) -> Result<(), Box<dyn std::error::Error>> {
//! use kizuna_taxii::{AppState, ServiceConfig, server::{self, ServerConfig, TlsMode}};
//!
//! kizuna_taxii::tls::install_crypto_provider();
//! let state = AppState::new(store, ServiceConfig::default())?;
//! let config = ServerConfig::new(
//!     "127.0.0.1:6443".parse()?,
//!     TlsMode::SelfSigned { dir: "kizuna-data".into(), client_ca: None },
//! );
//! let running = server::start(config, state).await?;
//! println!("listening on https://{}/taxii2/", running.local_addr());
//! running.shutdown().await;
//! # Ok(()) }
//! ```

pub mod api;
pub mod audit;
pub mod auth;
pub mod egress;
pub mod error;
pub mod limits;
mod linger;
pub mod media;
pub mod metrics;
mod query;
pub mod server;
pub mod state;
pub mod tls;
pub mod token;

pub use egress::{EgressMap, PartnerEgress};
pub use error::ApiError;
pub use server::{RunningServer, ServerConfig, ServerError, TlsMode, router, start};
pub use state::{
    AppState, AuthMethod, ConnectionInfo, Principal, ServiceConfig, SharedState, StateError,
};
