//! Status resources (§4.3): what became of each object of an Add Objects request.
//!
//! Kizuna processes an envelope completely before it answers, so every status is `complete`
//! and `pending_count` is 0. Statuses are kept for at least 24 hours (§4.3 SHOULD) and then
//! expired lazily: at most once a minute per process, a request that touches statuses deletes
//! those older than 24 hours. A status id is a random version 4 UUID; any authenticated account
//! that knows it may read the status (as with medallion), which reveals only the ids and versions
//! its submitter sent.

use std::sync::atomic::{AtomicI64, Ordering};

use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use kizuna_stix::Timestamp;
use kizuna_store::{Status, StatusDetail, StatusState, Store};
use serde::Serialize;

use super::{Caller, blocking, json_response, taxii_timestamp};
use crate::error::ApiError;
use crate::state::AppState;

/// How long statuses are kept, in microseconds: 24 hours.
const RETENTION_MICROS: i64 = 24 * 3600 * 1_000_000;
/// How often expiry runs at most, in microseconds.
const EXPIRY_INTERVAL_MICROS: i64 = 60 * 1_000_000;

static LAST_EXPIRY: AtomicI64 = AtomicI64::new(i64::MIN);

/// Deletes statuses older than the retention period, unless that was done less than a minute
/// ago by this process. Blocking.
pub(crate) fn expire_if_due(store: &dyn Store) -> Result<(), ApiError> {
    let now = Timestamp::now().unix_micros();
    let last = LAST_EXPIRY.load(Ordering::Relaxed);
    if now.saturating_sub(last) < EXPIRY_INTERVAL_MICROS
        || LAST_EXPIRY
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return Ok(());
    }
    store.expire_statuses(Timestamp::from_unix_micros(now - RETENTION_MICROS))?;
    Ok(())
}

/// The status resource (§4.3.1) as sent to clients.
#[derive(Debug, Serialize)]
pub struct StatusResource<'a> {
    /// Status id.
    pub id: &'a str,
    /// `complete` or `pending`.
    pub status: StatusState,
    /// When the request was received.
    pub request_timestamp: String,
    /// Objects in the request.
    pub total_count: u64,
    /// Objects stored or already present.
    pub success_count: u64,
    /// Details of each success; omitted when empty (§2: no empty lists).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub successes: &'a [StatusDetail],
    /// Objects rejected.
    pub failure_count: u64,
    /// Details of each failure, with the reason.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub failures: &'a [StatusDetail],
    /// Objects still pending (always 0 here).
    pub pending_count: u64,
    /// Details of each pending object.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub pendings: &'a [StatusDetail],
}

impl<'a> StatusResource<'a> {
    /// The resource of a stored status.
    pub fn new(status: &'a Status) -> Self {
        Self {
            id: &status.id,
            status: status.status,
            request_timestamp: taxii_timestamp(status.request_timestamp),
            total_count: status.total_count,
            success_count: status.successes.len() as u64,
            successes: &status.successes,
            failure_count: status.failures.len() as u64,
            failures: &status.failures,
            pending_count: status.pendings.len() as u64,
            pendings: &status.pendings,
        }
    }
}

/// `GET /{api-root}/status/{status-id}/`: 404 when unknown or expired.
pub async fn get_status(
    State(state): State<AppState>,
    _caller: Caller,
    Path((api_root, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let status = blocking(move || {
        expire_if_due(store.as_ref())?;
        Ok(store.status(&api_root, &id)?)
    })
    .await?
    .ok_or_else(|| {
        ApiError::not_found("no such status in this API root (statuses are kept 24 hours)")
    })?;
    Ok(json_response(StatusCode::OK, &StatusResource::new(&status)))
}
