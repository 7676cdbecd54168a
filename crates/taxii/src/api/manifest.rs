//! Get Object Manifests (§5.3): one manifest record per object version, filtered and paged
//! exactly like Get Objects. A reading partner's egress policy leaves out the versions it withholds
//! here too (see [`super::objects`]), so the manifest never lists what the objects would not serve.
//!
//! Like medallion, the manifest carries a `next` token beside `more` (§5.3.1 names only `more`)
//! so that clients page it without the skips that paging by `added_after` causes when several
//! objects share one `date_added`.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde::Serialize;

use super::objects::{PageRequest, load_page, page_response};
use super::{Who, blocking, read_as, taxii_timestamp};
use crate::error::ApiError;
use crate::query::Endpoint;
use crate::state::AppState;

/// One manifest record (§5.3.1 `manifest-record`).
#[derive(Debug, Serialize)]
struct ManifestRecord {
    id: String,
    date_added: String,
    version: String,
    media_type: String,
}

/// The manifest resource (§5.3.1).
#[derive(Debug, Serialize)]
struct ManifestResource {
    more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    objects: Vec<ManifestRecord>,
}

/// `GET /{api-root}/collections/{id}/manifest/`.
pub async fn get_manifest(
    State(state): State<AppState>,
    who: Who,
    Path((api_root, collection)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let request = PageRequest::new(
        Endpoint::Manifest,
        api_root,
        collection,
        None,
        raw.as_deref(),
    )?;
    let (_, page) = blocking(move || {
        read_as(&state, &who, |snapshot, caller| {
            load_page(&state, snapshot, caller, &request)
        })
    })
    .await?;
    let resource = ManifestResource {
        more: page.more,
        next: page.next.clone(),
        objects: page
            .records
            .iter()
            .map(|r| ManifestRecord {
                id: r.id.clone(),
                date_added: taxii_timestamp(r.date_added),
                version: r.version.to_string(),
                media_type: format!("application/stix+json;version={}", r.spec_version),
            })
            .collect(),
    };
    Ok(page_response(&resource, &page))
}
