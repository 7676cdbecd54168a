//! Add Objects (§5.5): `POST /{api-root}/collections/{id}/objects/`.
//!
//! Before this handler runs, the body-limit middleware ([`crate::server`]) has refused a body
//! over the API root's `max_content_length`, by its `Content-Length` or by what was actually read,
//! which is never more than that (413), and a JSON body nested too deeply (400) or with too long a
//! string (413), before any parser saw it. Then: the collection must be visible (else 404) and
//! writable (else 403); the body must be `application/taxii+json` (415); it must be JSON (400) and
//! an envelope, `{"objects": [...]}` (422).
//!
//! Each object is then judged on its own: full STIX 2.1 validation ([`validate_object_with`]), the
//! indexing properties ([`ObjectMeta::from_value`]) and, for indicators with
//! `pattern_type: "stix"`, the pattern grammar ([`kizuna_pattern::check_indicator_pattern`], the
//! rule `kizuna import` and `kizuna validate` apply too). Invalid objects become failures in the status
//! resource, with a message naming every problem; the valid ones are stored together in one
//! store transaction, exactly as received. Exact duplicates of stored objects count as
//! successes (§5.5 MUST). Every object version added is written to the audit log in the same
//! store transaction, before the 202: one entry per envelope listing the versions it added,
//! expanded per version when the log is read. The status resource is written in that
//! transaction too ([`kizuna_store::Store::add_objects_audited_with_status`]), so a POST is one
//! write transaction, and its status is readable as soon as the 202 is sent.
//!
//! **202 or 422.** §5.5 lists 422 for content that "could not be processed", and a status resource
//! only with 202. Kizuna answers 202 with the status (state `complete`) whenever at least one
//! object of the envelope was stored or already present — the client must read the failures —
//! and 422 when the envelope held objects and none could be stored. The 422 error message
//! carries the whole status resource, per-object failures included, in its `details` (§3.6.1),
//! and the status is also kept, so `GET .../status/{id}/` answers for it as for any other. An
//! empty envelope is accepted (202, `total_count` 0).

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use kizuna_stix::{ObjectMeta, Problem, Timestamp, validate_object_with};
use kizuna_store::{
    AddOutcome, AddReport, Collection, NewObject, Status, StatusDetail, StatusDraft,
};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::status::{StatusResource, expire_if_due};
use super::{Caller, Need, blocking, json_response};
use crate::error::ApiError;
use crate::media;
use crate::state::AppState;

/// The envelope of a POST, borrowing each object's raw JSON from the request body.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    objects: Option<Vec<&'a RawValue>>,
}

/// Longest failure message kept in a status resource.
const MAX_MESSAGE: usize = 2000;

/// `POST /{api-root}/collections/{id}/objects/`.
pub async fn add_objects(
    State(state): State<AppState>,
    caller: Caller,
    Path((api_root, collection)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // The body-limit middleware has already read the body within the API root's limit and
    // checked its JSON depth and string lengths, so reading it before the collection is checked
    // reads nothing the client had not sent already; the global cap only keeps this read bounded
    // should the routes ever be mounted without it. Then one hop to the blocking pool checks the
    // collection and ingests (two hops per POST before), reporting errors in the same order as
    // ever: collection (404/403), media type (415), body (413/400), envelope.
    let cap = state.config.max_body_bytes;
    let bytes = axum::body::to_bytes(body, usize::try_from(cap).unwrap_or(usize::MAX))
        .await
        .map_err(|e| {
            if is_length_limit(&e) {
                ApiError::payload_too_large(cap)
            } else {
                ApiError::bad_request("the request body could not be read")
            }
        });
    let request_timestamp = Timestamp::now();
    let status = blocking(move || {
        let collection = super::collection(&state, &caller, &api_root, &collection, Need::Write)?;
        media::check_content_type(&headers)?;
        let bytes = bytes?;
        ingest(&state, &caller, &collection, &bytes, request_timestamp)
    })
    .await?;
    let resource = StatusResource::new(&status);
    if status.total_count > 0 && status.successes.is_empty() {
        let details = serde_json::to_value(&resource).map_err(|e| ApiError::internal(&e))?;
        return Err(ApiError::unprocessable(format!(
            "none of the {} objects could be stored; see details.failures (status {})",
            status.total_count, status.id
        ))
        .with_details(details));
    }
    Ok(json_response(StatusCode::ACCEPTED, &resource))
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = err.source();
    }
    false
}

/// A random version 4 UUID (RFC 4122 §4.4), for status ids.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Joins problems into one status message, bounded in length.
fn problems_message(problems: &[Problem]) -> String {
    let mut message = String::new();
    for (i, p) in problems.iter().enumerate() {
        if message.len() > MAX_MESSAGE {
            message.push_str(&format!("; and {} more", problems.len() - i));
            break;
        }
        if i > 0 {
            message.push_str("; ");
        }
        message.push_str(&p.to_string());
    }
    message
}

/// What becomes of one object of an envelope.
enum Verdict {
    /// Valid: to be stored.
    Accept {
        object: NewObject,
        id: String,
        version: Option<String>,
    },
    /// Invalid: a failure of the status resource.
    Reject(StatusDetail),
}

/// Judges one object: STIX validation, indexing properties, pattern grammar.
fn judge(index: usize, raw: &RawValue, fallback_version: &str) -> Verdict {
    let value: Value = match serde_json::from_str(raw.get()) {
        Ok(v) => v,
        Err(e) => {
            return Verdict::Reject(StatusDetail {
                id: format!("objects[{index}]"),
                version: fallback_version.to_owned(),
                message: Some(format!("not a JSON value: {e}")),
            });
        }
    };
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .map_or_else(|| format!("objects[{index}]"), str::to_owned);
    let version = value
        .get("modified")
        .or_else(|| value.get("created"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    // The same rules as every other ingest path: STIX 2.1 and, for indicators, the pattern.
    let problems = validate_object_with(&value, &kizuna_pattern::check_indicator_pattern);
    let meta = if problems.is_empty() {
        ObjectMeta::from_value(&value).map_err(|p| p.to_string())
    } else {
        Err(problems_message(&problems))
    };
    match meta {
        Ok(meta) => Verdict::Accept {
            object: NewObject {
                meta,
                json: raw.get().to_owned(),
            },
            id,
            version,
        },
        Err(message) => Verdict::Reject(StatusDetail {
            id,
            version: version.unwrap_or_else(|| fallback_version.to_owned()),
            message: Some(message),
        }),
    }
}

/// Envelopes with at least this many objects are judged on several threads.
const PARALLEL_FROM: usize = 256;

/// Threads to judge a large envelope on: the available cores, at most 8. Asked once: on Linux
/// `available_parallelism` reads the cgroup's CPU quota from files, which was a few system calls
/// on every POST.
fn validation_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
}

/// Judges every object, in input order. Validation (pattern parsing above all) is CPU-bound and
/// independent per object, so large envelopes are split across the available cores.
fn judge_all(raws: &[&RawValue], fallback_version: &str) -> Result<Vec<Verdict>, ApiError> {
    if raws.len() < PARALLEL_FROM || validation_threads() < 2 {
        return Ok(raws
            .iter()
            .enumerate()
            .map(|(i, raw)| judge(i, raw, fallback_version))
            .collect());
    }
    let chunk = raws.len().div_ceil(validation_threads());
    std::thread::scope(|scope| {
        let workers: Vec<_> = raws
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, raw)| judge(c * chunk + i, raw, fallback_version))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut verdicts = Vec::with_capacity(raws.len());
        for worker in workers {
            let part = worker
                .join()
                .map_err(|_| ApiError::internal(&"an object validation thread panicked"))?;
            verdicts.extend(part);
        }
        Ok(verdicts)
    })
}

/// Validates the envelope's objects, stores the valid ones in one call, audits, and keeps the
/// status resource. Blocking.
fn ingest(
    state: &AppState,
    caller: &Caller,
    collection: &Collection,
    body: &[u8],
    request_timestamp: Timestamp,
) -> Result<Status, ApiError> {
    let envelope: Envelope<'_> = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::unprocessable(format!(
                "the body must be a TAXII envelope, {{\"objects\": [...]}}: {e}"
            ))
        } else {
            ApiError::bad_request(format!("the body is not valid JSON: {e}"))
        }
    })?;
    let raws = envelope.objects.unwrap_or_default();
    let fallback_version = super::taxii_timestamp(request_timestamp);
    let mut failures = Vec::new();
    let mut accepted: Vec<(String, Option<String>)> = Vec::with_capacity(raws.len());
    let mut new_objects = Vec::with_capacity(raws.len());
    for verdict in judge_all(&raws, &fallback_version)? {
        match verdict {
            Verdict::Accept {
                object,
                id,
                version,
            } => {
                new_objects.push(object);
                accepted.push((id, version));
            }
            Verdict::Reject(detail) => failures.push(detail),
        }
    }
    let draft = StatusDraft {
        api_root: collection.api_root.clone(),
        id: uuid_v4(),
        request_timestamp,
        total_count: raws.len() as u64,
        failures,
        submitted: accepted,
    };
    let status = if new_objects.is_empty() {
        let status = draft.complete(&AddReport {
            date_added: request_timestamp,
            outcomes: Vec::new(),
        });
        state.store.put_status(&status)?;
        status
    } else {
        // The objects, their write audit events and the status resource commit together: one
        // write transaction per POST.
        let (report, status) = state.store.add_objects_audited_with_status(
            &collection.as_ref(),
            new_objects,
            caller.name(),
            draft,
        )?;
        let added = report
            .outcomes
            .iter()
            .filter(|o| matches!(o, AddOutcome::Added))
            .count();
        state.metrics.objects_stored(added as u64);
        status
    };
    expire_if_due(state.store.as_ref())?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v4_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }
}
