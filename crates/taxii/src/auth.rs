//! Who is calling: HTTP Basic with argon2 passwords, bearer API keys, or a client certificate
//! verified in the TLS handshake, each mapped to a store [`Account`].
//!
//! # Cost
//!
//! An argon2 verification costs tens of milliseconds of CPU and ~19 MiB of memory on purpose. A
//! server that ran one per request would serve a few dozen requests per second (a peer measured
//! 18/s). So a successful verification is remembered for [`AuthConfig::cache_ttl`], keyed by an
//! HMAC (a random per-process key) of the name and password: the cache holds neither passwords
//! nor anything that verifies them offline. A cache hit still re-reads the account (one indexed
//! lookup) and requires it unrevoked and with the same password hash, so revocation and password
//! changes take effect on the very next request. At most [`AuthConfig::max_concurrent_hashes`]
//! verifications run at once, so a flood of logins cannot exhaust memory.
//!
//! # One blocking call per read
//!
//! Looking an account up is a store read, so on the blocking pool; a read endpoint then made a
//! second blocking call for its page, and the two hand-offs between threads (futex wake-ups and
//! context switches) cost about a quarter of the server's CPU when serving pages. For the read
//! endpoints (GET objects, object, versions, manifest: [`require_auth`] knows them by their route)
//! a bearer API key or a client certificate is therefore not looked up in the middleware: it is
//! inserted as a [`Claim`] (the SHA-256 of the key or certificate and the client address), and
//! the handler resolves it ([`Authenticator::resolve`]) as the first read of the read transaction
//! that serves the page. Revocation loses nothing: the account is read on every request as
//! before, in the same snapshot as the collection, its permissions and the page, so the request
//! is authorised and answered as of one instant. A claim that fails is answered, counted, rate
//! limited per address and audited exactly like a failure in the middleware
//! ([`Authenticator::claim_failed`]), and the per-account rate limit is applied right after the
//! lookup. Two things differ for those requests only: a claimed request that also fails content
//! negotiation gets 406 before its credential is checked, and a revoked key is noticed after the
//! URL's query string has been parsed (a malformed one answers 400). Neither tells anything about
//! an account. HTTP Basic is not deferred: its cached verification is keyed by the password, which
//! a claim would have to carry; a Basic request still costs two blocking calls.
//!
//! # Failures
//!
//! Every failure answers the same 401 with `WWW-Authenticate` offering Basic and Bearer. An unknown
//! name is verified against a decoy hash, so it costs what a wrong password costs. Failed logins
//! (wrong password, unknown key or certificate, revoked account) are audited with the name tried
//! and the remote address, and counted per client address: past [`AuthConfig::failure_burst`] an
//! address gets 429 before any hash is computed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use kizuna_stix::Timestamp;
use kizuna_store::{Account, AuditAction, AuditEvent, Snapshot, Store, StoreError};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::limits::{RateLimiter, too_many_requests};
use crate::metrics::Metrics;
use crate::state::{AppState, AuthMethod, ConnectionInfo, Principal};

/// Settings of the authenticator.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// How long a verified password is remembered.
    pub cache_ttl: Duration,
    /// How many verified passwords are remembered at most.
    pub cache_size: usize,
    /// How many argon2 verifications may run at once (0: one per CPU).
    pub max_concurrent_hashes: usize,
    /// Failed logins one client address may make at once before getting 429 …
    pub failure_burst: f64,
    /// … and then per second. Not a positive number: no limit.
    pub failure_rate: f64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(300),
            cache_size: 10_000,
            max_concurrent_hashes: 0,
            failure_burst: 20.0,
            failure_rate: 0.2,
        }
    }
}

/// Why an [`Authenticator`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The decoy password hash could not be computed.
    #[error("computing the decoy password hash: {0}")]
    Hash(#[source] StoreError),
}

/// Credentials found in a request's `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header.
    None,
    /// `Basic` with a name and a password.
    Basic {
        /// The account name.
        name: String,
        /// The password.
        password: String,
    },
    /// `Bearer` with an API key.
    Bearer(String),
    /// An `Authorization` header that could not be understood; says why.
    Malformed(&'static str),
}

impl Credentials {
    /// Reads the `Authorization` header.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Credentials::None;
        };
        let Ok(value) = value.to_str() else {
            return Credentials::Malformed("Authorization header is not ASCII");
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                return Credentials::Malformed("Basic credentials are not base64");
            };
            let Ok(text) = String::from_utf8(decoded) else {
                return Credentials::Malformed("Basic credentials are not UTF-8");
            };
            match text.split_once(':') {
                Some((name, password)) if !name.is_empty() => Credentials::Basic {
                    name: name.to_owned(),
                    password: password.to_owned(),
                },
                _ => Credentials::Malformed("Basic credentials are not name:password"),
            }
        } else if scheme.eq_ignore_ascii_case("bearer") {
            if rest.is_empty() {
                Credentials::Malformed("Bearer token is empty")
            } else {
                Credentials::Bearer(rest.to_owned())
            }
        } else {
            Credentials::Malformed("unsupported authentication scheme (use Basic or Bearer)")
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// No credentials at all.
    #[error("authentication required")]
    Missing,
    /// An `Authorization` header that could not be understood.
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    /// Unknown name or wrong password (deliberately not distinguished).
    #[error("wrong name or password")]
    BadPassword,
    /// No account has this API key.
    #[error("unknown API key")]
    UnknownKey,
    /// No account has the client certificate presented.
    #[error("client certificate not mapped to an account")]
    UnknownCertificate,
    /// The credentials are right but the account is revoked.
    #[error("account revoked")]
    Revoked,
    /// Too many failed logins from this address.
    #[error("too many failed logins")]
    TooManyFailures(Duration),
    /// The store or a worker thread failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthFailure {
    /// The metric label of this failure.
    pub fn label(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed(_) => "malformed",
            AuthFailure::BadPassword => "bad_password",
            AuthFailure::UnknownKey => "unknown_key",
            AuthFailure::UnknownCertificate => "unknown_certificate",
            AuthFailure::Revoked => "revoked",
            AuthFailure::TooManyFailures(_) => "too_many_failures",
            AuthFailure::Internal(_) => "internal",
        }
    }

    /// Whether this is a failed login attempt (audited, counted against the address).
    fn is_attempt(&self) -> bool {
        matches!(
            self,
            AuthFailure::Malformed(_)
                | AuthFailure::BadPassword
                | AuthFailure::UnknownKey
                | AuthFailure::UnknownCertificate
                | AuthFailure::Revoked
        )
    }

    /// The answer: 401 with `WWW-Authenticate` (the same for every kind of wrong credential, so
    /// it tells nothing about which accounts exist), 429 for too many failures, 500 on internal
    /// errors.
    pub fn into_api_error(self) -> ApiError {
        match self {
            AuthFailure::TooManyFailures(wait) => too_many_requests(wait),
            AuthFailure::Internal(cause) => ApiError::internal(&cause),
            other => {
                let description = match other {
                    AuthFailure::Missing => {
                        "authenticate with HTTP Basic, a bearer API key or a client certificate"
                    }
                    AuthFailure::Malformed(why) => why,
                    _ => "the credentials were not accepted",
                };
                ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized")
                    .describe(description)
                    .header(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(r#"Basic realm="kizuna", charset="UTF-8""#),
                    )
                    .header(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(r#"Bearer realm="kizuna""#),
                    )
            }
        }
    }
}

struct Verified {
    account: String,
    phc: String,
    expires: Instant,
}

/// Verifies credentials against the store; see the module documentation.
pub struct Authenticator {
    store: Arc<dyn Store>,
    config: AuthConfig,
    metrics: Arc<Metrics>,
    cache_key: [u8; 32],
    cache: Mutex<HashMap<[u8; 32], Verified>>,
    decoy_phc: String,
    hashing: tokio::sync::Semaphore,
    failures: RateLimiter<IpAddr>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

type HmacSha256 = Hmac<Sha256>;

/// How many client addresses the failed-login limiter tracks at once.
const FAILURE_TABLE_SIZE: usize = 100_000;

impl Authenticator {
    /// An authenticator on `store`. Computes one argon2 hash (the decoy for unknown names), so it
    /// blocks for a moment.
    pub fn new(
        store: Arc<dyn Store>,
        config: AuthConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, AuthError> {
        let mut cache_key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut cache_key);
        let mut decoy = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut decoy);
        let decoy_phc =
            kizuna_store::hash_password(&hex::encode(decoy)).map_err(AuthError::Hash)?;
        let permits = match config.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Ok(Self {
            failures: RateLimiter::new(
                config.failure_rate,
                config.failure_burst,
                FAILURE_TABLE_SIZE,
            ),
            store,
            metrics,
            cache_key,
            cache: Mutex::new(HashMap::new()),
            decoy_phc,
            hashing: tokio::sync::Semaphore::new(permits),
            config,
        })
    }

    /// Forgets every remembered password verification of `name` (e.g. after revoking it or
    /// changing its password; not required for correctness, as cache hits re-check the store).
    pub fn forget(&self, name: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, v| v.account != name);
    }

    /// Number of remembered verifications (for tests and diagnostics).
    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Authenticates a request from its headers and connection. An `Authorization` header takes
    /// precedence over a client certificate.
    pub async fn authenticate(
        self: &Arc<Self>,
        headers: &HeaderMap,
        conn: Option<&ConnectionInfo>,
    ) -> Result<Principal, AuthFailure> {
        match self.authenticate_or_claim(headers, conn, false).await? {
            Authenticated::Principal(principal) => Ok(principal),
            Authenticated::Claim(_) => Err(AuthFailure::Internal(
                "a credential was left unresolved".to_owned(),
            )),
        }
    }

    /// [`Authenticator::authenticate`], except that with `defer` a bearer API key or a client
    /// certificate comes back as a [`Claim`], whose account the caller looks up with
    /// [`Authenticator::resolve`] in the read transaction of its own work: one blocking call per
    /// request instead of two (see the module documentation). HTTP Basic is always resolved here
    /// (its cached verification is keyed by the password, which a claim would have to carry).
    pub async fn authenticate_or_claim(
        self: &Arc<Self>,
        headers: &HeaderMap,
        conn: Option<&ConnectionInfo>,
        defer: bool,
    ) -> Result<Authenticated, AuthFailure> {
        let address = conn.map(|c| address_key(c.remote.ip()));
        if let Some(ip) = address
            && !self.failures.would_allow(&ip)
        {
            self.metrics.rate_limited("failed_logins");
            return Err(AuthFailure::TooManyFailures(Duration::from_secs_f64(
                1.0 / self.config.failure_rate.max(f64::MIN_POSITIVE),
            )));
        }
        let credentials = Credentials::from_headers(headers);
        let tried_name = match &credentials {
            Credentials::Basic { name, .. } => Some(name.clone()),
            _ => None,
        };
        let remote = conn.map(|c| c.remote);
        let result = match credentials {
            Credentials::Basic { name, password } => self
                .basic(name, password)
                .await
                .map(Authenticated::Principal),
            Credentials::Bearer(key) => {
                let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
                self.claim(Claimed::ApiKey(digest), remote, defer).await
            }
            Credentials::Malformed(why) => Err(AuthFailure::Malformed(why)),
            Credentials::None => match conn.and_then(|c| c.client_cert_sha256) {
                Some(digest) => self.claim(Claimed::ClientCert(digest), remote, defer).await,
                None => Err(AuthFailure::Missing),
            },
        };
        if let Err(failure) = &result {
            self.metrics.auth_failure(failure.label());
            if failure.is_attempt() {
                if let Some(ip) = address {
                    let _ = self.failures.check(&ip);
                }
                let event = failure_event(failure, tried_name, remote);
                let store = Arc::clone(&self.store);
                match tokio::task::spawn_blocking(move || store.audit(&[event])).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "could not audit a failed login"),
                    Err(e) => tracing::warn!(error = %e, "could not audit a failed login"),
                }
            }
        }
        result
    }

    /// A claim to `credential`'s account: returned as it is with `defer`, else resolved here (one
    /// blocking call; a failure is left to the caller to count and audit).
    async fn claim(
        self: &Arc<Self>,
        credential: Claimed,
        remote: Option<SocketAddr>,
        defer: bool,
    ) -> Result<Authenticated, AuthFailure> {
        let claim = Claim { credential, remote };
        if defer {
            return Ok(Authenticated::Claim(claim));
        }
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            kizuna_store::in_snapshot(this.store.as_ref(), |s| Ok(this.resolve(&claim, s)))
                .unwrap_or_else(|e| Err(AuthFailure::Internal(e.to_string())))
                .map(Authenticated::Principal)
        })
        .await
        .map_err(|e| AuthFailure::Internal(e.to_string()))?
    }

    /// The account `claim` names, looked up in `snapshot`: unknown or revoked fails. Blocking, and
    /// without side effects: on failure, call [`Authenticator::claim_failed`] once the snapshot is
    /// over.
    pub fn resolve(
        &self,
        claim: &Claim,
        snapshot: &dyn Snapshot,
    ) -> Result<Principal, AuthFailure> {
        let internal = |e: StoreError| AuthFailure::Internal(e.to_string());
        match claim.credential {
            Claimed::ApiKey(digest) => active(
                snapshot.account_by_api_key(&digest).map_err(internal)?,
                AuthFailure::UnknownKey,
                AuthMethod::ApiKey,
            ),
            Claimed::ClientCert(digest) => active(
                snapshot.account_by_client_cert(&digest).map_err(internal)?,
                AuthFailure::UnknownCertificate,
                AuthMethod::ClientCertificate,
            ),
        }
    }

    /// Records that `claim` failed to resolve, as a failure in the middleware is: counted in the
    /// metrics and against the client address, and audited (written before returning).
    /// Blocking.
    pub fn claim_failed(&self, claim: &Claim, failure: &AuthFailure) {
        self.metrics.auth_failure(failure.label());
        if failure.is_attempt() {
            if let Some(remote) = claim.remote {
                let _ = self.failures.check(&address_key(remote.ip()));
            }
            let event = failure_event(failure, None, claim.remote);
            if let Err(e) = self.store.audit(&[event]) {
                tracing::warn!(error = %e, "could not audit a failed login");
            }
        }
    }

    async fn basic(
        self: &Arc<Self>,
        name: String,
        password: String,
    ) -> Result<Principal, AuthFailure> {
        let mac = self.cache_mac(&name, &password);
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&mac)
                .filter(|v| v.expires > Instant::now() && v.account == name)
                .map(|v| v.phc.clone())
        };
        if let Some(phc) = cached {
            let lookup_name = name.clone();
            let account = self.lookup(move |s| s.account(&lookup_name)).await?;
            match account {
                Some(a) if !a.revoked && a.password_hash.as_deref() == Some(phc.as_str()) => {
                    return Ok(Principal {
                        account: Arc::new(a),
                        method: AuthMethod::Basic,
                    });
                }
                _ => {
                    self.cache
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&mac);
                }
            }
        }

        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| AuthFailure::Internal(e.to_string()))?;
        let this = Arc::clone(self);
        let lookup_name = name.clone();
        let (account, ok) = tokio::task::spawn_blocking(move || {
            let account = this
                .store
                .account(&lookup_name)
                .map_err(|e| AuthFailure::Internal(e.to_string()))?;
            this.metrics.password_verification();
            let ok = match account.as_ref().and_then(|a| a.password_hash.as_deref()) {
                Some(phc) => kizuna_store::verify_password(phc, &password),
                None => {
                    // Same cost as a wrong password, same answer.
                    let _ = kizuna_store::verify_password(&this.decoy_phc, &password);
                    false
                }
            };
            Ok::<_, AuthFailure>((account, ok))
        })
        .await
        .map_err(|e| AuthFailure::Internal(e.to_string()))??;
        match account {
            Some(a) if ok && a.revoked => Err(AuthFailure::Revoked),
            Some(a) if ok => {
                if let Some(phc) = &a.password_hash {
                    self.remember(mac, &a.name, phc);
                }
                Ok(Principal {
                    account: Arc::new(a),
                    method: AuthMethod::Basic,
                })
            }
            _ => Err(AuthFailure::BadPassword),
        }
    }

    fn cache_mac(&self, name: &str, password: &str) -> [u8; 32] {
        // A key of 32 bytes is always accepted by HMAC; the fallback is never taken.
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.cache_key) else {
            return [0; 32];
        };
        mac.update(&(name.len() as u64).to_be_bytes());
        mac.update(name.as_bytes());
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn remember(&self, mac: [u8; 32], name: &str, phc: &str) {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if !cache.contains_key(&mac) && cache.len() >= self.config.cache_size.max(1) {
            cache.retain(|_, v| v.expires > now);
            if cache.len() >= self.config.cache_size.max(1) {
                let oldest = cache.iter().min_by_key(|(_, v)| v.expires).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    cache.remove(&k);
                }
            }
        }
        cache.insert(
            mac,
            Verified {
                account: name.to_owned(),
                phc: phc.to_owned(),
                expires: now + self.config.cache_ttl,
            },
        );
    }

    async fn lookup<F>(&self, f: F) -> Result<Option<Account>, AuthFailure>
    where
        F: FnOnce(&dyn Store) -> Result<Option<Account>, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| AuthFailure::Internal(e.to_string()))?
            .map_err(|e| AuthFailure::Internal(e.to_string()))
    }
}

/// The audit event of a failed login by `name` (when one was given) from `remote`.
fn failure_event(
    failure: &AuthFailure,
    name: Option<String>,
    remote: Option<SocketAddr>,
) -> AuditEvent {
    let detail = match remote {
        Some(remote) => format!("{failure} from {remote}"),
        None => failure.to_string(),
    };
    AuditEvent {
        time: Timestamp::now(),
        account: name,
        action: AuditAction::LoginFailed,
        collection: None,
        object_id: None,
        version: None,
        detail: Some(detail),
    }
}

/// What the middleware found: an account, or a claim to one that the handler resolves.
#[derive(Debug, Clone)]
pub enum Authenticated {
    /// The account is known (HTTP Basic, or nothing was deferred).
    Principal(Principal),
    /// A credential still to be looked up ([`Authenticator::resolve`]).
    Claim(Claim),
}

/// A credential that needs only its account looked up: a bearer API key or a client
/// certificate verified by the TLS handshake. Inserted as a request extension by the middleware
/// for the read endpoints, which look the account up in the read transaction that serves the
/// request, so that a revoked account fails on its very next request and the account and what it
/// reads are of one snapshot.
#[derive(Debug, Clone)]
pub struct Claim {
    credential: Claimed,
    remote: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy)]
enum Claimed {
    /// SHA-256 of the API key.
    ApiKey([u8; 32]),
    /// SHA-256 of the certificate's DER.
    ClientCert([u8; 32]),
}

fn active(
    account: Option<Account>,
    unknown: AuthFailure,
    method: AuthMethod,
) -> Result<Principal, AuthFailure> {
    match account {
        None => Err(unknown),
        Some(a) if a.revoked => Err(AuthFailure::Revoked),
        Some(a) => Ok(Principal {
            account: Arc::new(a),
            method,
        }),
    }
}

/// The key failed logins are counted under: the IPv4 address, or the /64 of an IPv6 address
/// (one host usually owns a whole /64, so counting single addresses would not limit it).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(s.into())
            }
        },
    }
}

/// Middleware: authenticates the request, records the account on the request span, and inserts
/// [`Principal`] as a request extension; answers 401 (or 429) otherwise, before the body is read.
/// For the read endpoints that look the account up themselves (GET objects, object, versions,
/// manifest) a bearer API key or client certificate is inserted as a [`Claim`] instead, resolved
/// by the handler in the read transaction that serves the request (one blocking call instead of
/// two); the handler then does what this middleware and the rate limiter would have done on
/// failure.
pub async fn require_auth(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let conn = request.extensions().get::<ConnectionInfo>().cloned();
    let defer = crate::api::resolves_own_caller(
        request.method(),
        request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    match state
        .auth
        .authenticate_or_claim(request.headers(), conn.as_ref(), defer)
        .await
    {
        Ok(Authenticated::Principal(principal)) => {
            tracing::Span::current().record("account", principal.account.name.as_str());
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Ok(Authenticated::Claim(claim)) => {
            request.extensions_mut().insert(claim);
            next.run(request).await
        }
        Err(failure) => {
            tracing::debug!(reason = failure.label(), "authentication failed");
            failure.into_api_error().into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn parses_credentials() {
        assert_eq!(
            Credentials::from_headers(&HeaderMap::new()),
            Credentials::None
        );
        // "alice:pa:ss" — the password may contain colons.
        assert_eq!(
            Credentials::from_headers(&headers("Basic YWxpY2U6cGE6c3M=")),
            Credentials::Basic {
                name: "alice".into(),
                password: "pa:ss".into()
            }
        );
        assert_eq!(
            Credentials::from_headers(&headers("bearer  k3y ")),
            Credentials::Bearer("k3y".into())
        );
        assert!(matches!(
            Credentials::from_headers(&headers("Basic !!!")),
            Credentials::Malformed(_)
        ));
        // ":pw" has no name.
        assert!(matches!(
            Credentials::from_headers(&headers("Basic OnB3")),
            Credentials::Malformed(_)
        ));
        assert!(matches!(
            Credentials::from_headers(&headers("Digest x")),
            Credentials::Malformed(_)
        ));
        assert!(matches!(
            Credentials::from_headers(&headers("Bearer")),
            Credentials::Malformed(_)
        ));
    }

    #[test]
    fn unauthorized_offers_both_schemes() {
        let e = AuthFailure::BadPassword.into_api_error();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        let offered: Vec<_> = e
            .headers
            .iter()
            .filter(|(n, _)| n == header::WWW_AUTHENTICATE)
            .map(|(_, v)| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            offered,
            [
                r#"Basic realm="kizuna", charset="UTF-8""#,
                r#"Bearer realm="kizuna""#
            ]
        );
    }

    #[test]
    fn ipv6_counted_per_64() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let m: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(address_key(m), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
