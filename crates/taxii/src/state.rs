//! State shared by every request handler, and the identity a request was authenticated as.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use kizuna_policy::ledger::LedgerStorage;
use kizuna_stix::Tlp;
use kizuna_store::{Account, ApiRoot, Store, StoreError};

use crate::audit::AuditWriter;
use crate::auth::{AuthConfig, Authenticator};
use crate::egress::EgressMap;
use crate::limits::RateLimiter;
use crate::metrics::Metrics;
use crate::token::TokenSealer;

/// Settings of the TAXII service that do not concern the transport.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `title` of the discovery resource.
    pub title: String,
    /// `description` of the discovery resource.
    pub description: Option<String>,
    /// `contact` of the discovery resource.
    pub contact: Option<String>,
    /// The API root advertised as `default`, if any.
    pub default_api_root: Option<String>,
    /// Page size when the client gives no `limit`.
    pub default_page_size: usize,
    /// Largest page size a client may ask for.
    pub max_page_size: usize,
    /// Requests per second each account may make (token bucket), and the burst.
    pub rate_per_second: f64,
    /// Burst size of the rate limiter.
    pub rate_burst: f64,
    /// Deepest JSON nesting accepted in a request body.
    pub max_json_depth: usize,
    /// Longest JSON string accepted in a request body, in bytes.
    pub max_json_string: usize,
    /// TLP level at which unmarked objects are treated for clearance checks.
    pub unmarked_as: Tlp,
    /// Whether every object version served is written to the audit log (one event per response
    /// listing them, through the [`AuditWriter`], off the request
    /// path).
    pub audit_reads: bool,
    /// Most object versions served whose audit events may be queued for the audit writer; a read
    /// that finds the queue full waits for room before it answers.
    pub audit_queue: usize,
    /// Hard upper bound on any request body, in bytes, whatever an API root's
    /// `max_content_length` says: the effective limit is the smaller of the two (see
    /// [`ServiceConfig::max_content_length`]), and that is also what an API root advertises.
    pub max_body_bytes: u64,
    /// Most bytes of request bodies held in memory at once, across all requests: a request
    /// reserves its body's size (or its limit, when chunked) before reading it, and waits for room
    /// (within the request deadline) when the budget is spent. Bounds memory against many
    /// concurrent large uploads, which per-request limits alone do not.
    pub max_buffered_bytes: u64,
    /// Password verification cache, failed-login limits.
    pub auth: AuthConfig,
    /// The partner and egress policy of each account a partner reads with, by account name: what
    /// such an account reads through Get Objects, Get an Object, Get Object Versions and Get
    /// Manifest is what the policy lets through, redacted as it says (the same `EgressPolicy` push
    /// obeys). Accounts without an entry read everything their clearance and permissions allow.
    /// Live: replacing its entries (through any clone) changes what the next request is served.
    pub egress: EgressMap,
    /// The egress ledger: every object version Get Objects and Get an Object serve to an account
    /// of [`ServiceConfig::egress`] is appended here before the response is sent, and such reads
    /// fail (503) when it is missing or failing (see [`crate::egress`]).
    pub ledger: Option<Arc<dyn LedgerStorage>>,
}

impl ServiceConfig {
    /// The body size limit in force for an API root: its `max_content_length`, capped by
    /// [`ServiceConfig::max_body_bytes`]. The body-limit middleware enforces exactly this, and the
    /// API root resource should advertise exactly this.
    pub fn max_content_length(&self, root: &ApiRoot) -> u64 {
        root.max_content_length.min(self.max_body_bytes)
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            title: "Kizuna TAXII 2.1 hub".to_owned(),
            description: None,
            contact: None,
            default_api_root: None,
            default_page_size: 100,
            max_page_size: 1000,
            rate_per_second: 200.0,
            rate_burst: 400.0,
            max_json_depth: 64,
            max_json_string: 1 << 20,
            unmarked_as: Tlp::Amber,
            audit_reads: true,
            audit_queue: 65_536,
            max_body_bytes: 32 << 20,
            max_buffered_bytes: 256 << 20,
            auth: AuthConfig::default(),
            egress: EgressMap::default(),
            ledger: None,
        }
    }
}

/// Everything a handler needs; cloned per request (by axum's `State`, each middleware layer, and
/// the blocking read), so it is one shared allocation: a clone is one reference count. With a
/// reference count per field (eight), taking and dropping those clones, on counters every core
/// touches, was 2.5% of the server's CPU serving pages. Its fields are read through [`Deref`].
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What an [`AppState`] shares.
pub struct SharedState {
    /// The object store.
    pub store: Arc<dyn Store>,
    /// Service settings.
    pub config: Arc<ServiceConfig>,
    /// Verifies credentials.
    pub auth: Arc<Authenticator>,
    /// Seals and opens `next` tokens.
    pub tokens: Arc<TokenSealer>,
    /// Per-account request rate limiter.
    pub rate: Arc<RateLimiter>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The request body memory budget, in KiB permits (see [`ServiceConfig::max_buffered_bytes`]).
    pub body_budget: Arc<tokio::sync::Semaphore>,
    /// Writes the audit events of reads in batches, off the request path.
    pub audit: Arc<AuditWriter>,
}

/// Name of the store secret that keys sealed `next` tokens; every process on one store shares it.
pub const NEXT_TOKEN_SECRET: &str = "taxii.next-token";

/// Why an [`AppState`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The store failed (reading the token secret).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The authenticator could not be set up.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The audit writer thread could not be started.
    #[error("cannot start the audit writer thread: {0}")]
    AuditThread(#[source] std::io::Error),
}

impl AppState {
    /// Builds the state of a server on `store`: the `next`-token key (a store secret, so tokens
    /// survive restarts and work across processes), the authenticator, the rate limiter, fresh
    /// metrics, and the audit writer's thread (which stops when the last clone of the state is
    /// dropped, after writing what is queued).
    ///
    /// Blocking (reads the store and computes one argon2 hash for the decoy used against unknown
    /// account names): call it before starting the server or from a blocking thread.
    pub fn new(store: Arc<dyn Store>, config: ServiceConfig) -> Result<Self, StateError> {
        let key = store.secret(NEXT_TOKEN_SECRET)?;
        let metrics = Arc::new(Metrics::new());
        let auth = Authenticator::new(store.clone(), config.auth.clone(), metrics.clone())?;
        let rate = RateLimiter::new(config.rate_per_second, config.rate_burst, RATE_TABLE_SIZE);
        let budget_kib = usize::try_from(config.max_buffered_bytes.div_ceil(1024))
            .unwrap_or(usize::MAX)
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        let audit = AuditWriter::start(store.clone(), config.audit_queue, metrics.clone())
            .map_err(StateError::AuditThread)?;
        Ok(Self(Arc::new(SharedState {
            store,
            audit: Arc::new(audit),
            config: Arc::new(config),
            auth: Arc::new(auth),
            tokens: Arc::new(TokenSealer::new(key)),
            rate: Arc::new(rate),
            metrics,
            body_budget: Arc::new(tokio::sync::Semaphore::new(budget_kib)),
        })))
    }
}

/// How many accounts the request rate limiter tracks at once (see [`RateLimiter::new`]).
const RATE_TABLE_SIZE: usize = 100_000;

/// What the transport knows about the connection a request arrived on, inserted as a request
/// extension by the accept loop before routing.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The client's address.
    pub remote: SocketAddr,
    /// SHA-256 of the DER of the client certificate the TLS handshake verified, if any.
    pub client_cert_sha256: Option<[u8; 32]>,
    /// Whether the connection is TLS (false only with `DangerPlaintextHttp`).
    pub tls: bool,
}

/// The authenticated account of a request, inserted as a request extension by the
/// authentication middleware before any TAXII handler runs.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The account, as loaded at authentication time.
    pub account: Arc<Account>,
    /// How it authenticated.
    pub method: AuthMethod,
}

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with a password.
    Basic,
    /// `Authorization: Bearer <api key>`.
    ApiKey,
    /// A client certificate presented in the TLS handshake.
    ClientCertificate,
}
