//! Collections (§5.1) and one collection (§5.2), with `can_read`/`can_write` computed for the
//! caller.

use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use kizuna_store::{Account, Collection};
use serde::Serialize;

use super::{Caller, Need, blocking, json_response};
use crate::error::ApiError;
use crate::state::AppState;

/// The collection resource (§5.2.1) as one caller sees it.
#[derive(Debug, Serialize)]
pub struct CollectionResource {
    /// Collection id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Alias usable in URLs instead of the id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Whether the caller may read objects.
    pub can_read: bool,
    /// Whether the caller may add objects.
    pub can_write: bool,
    /// Media types of the objects held; omitted when empty (§2: no empty lists).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub media_types: Vec<String>,
}

impl CollectionResource {
    /// The resource of `collection` for `account`.
    pub fn new(collection: Collection, account: &Account) -> Self {
        Self {
            can_read: account.can_read(&collection.api_root, &collection.id),
            can_write: account.can_write(&collection.api_root, &collection.id),
            id: collection.id,
            title: collection.title,
            description: collection.description,
            alias: collection.alias,
            media_types: collection.media_types,
        }
    }
}

/// The collections resource (§5.1.1).
#[derive(Debug, Serialize)]
pub struct CollectionsResource {
    /// The collections visible to the caller; omitted when there are none (§5.1.1 MUST).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<CollectionResource>,
}

/// `GET /{api-root}/collections/`: the collections the caller may read or write, in the store's
/// (creation) order, which is stable across requests (§3.3). Invisible collections are left out.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(api_root): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let account = caller.0.account.clone();
    let resource = blocking(move || {
        if store.api_root(&api_root)?.is_none() {
            return Err(ApiError::not_found("no such API root"));
        }
        let collections = store
            .collections(&api_root)?
            .into_iter()
            .map(|c| CollectionResource::new(c, &account))
            .filter(|c| c.can_read || c.can_write)
            .collect();
        Ok(CollectionsResource { collections })
    })
    .await?;
    Ok(json_response(StatusCode::OK, &resource))
}

/// `GET /{api-root}/collections/{id}/`, by id or alias: 404 when missing or invisible.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((api_root, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let account = caller.0.account.clone();
    let collection =
        blocking(move || super::collection(&state, &caller, &api_root, &id, Need::See)).await?;
    Ok(json_response(
        StatusCode::OK,
        &CollectionResource::new(collection, &account),
    ))
}
