//! Server discovery (§4.1) and API root information (§4.2).

use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use serde::Serialize;

use super::{Caller, blocking, json_response};
use crate::error::ApiError;
use crate::media::TAXII_JSON;
use crate::state::AppState;

/// The discovery resource (§4.1.1).
#[derive(Debug, Serialize)]
pub struct Discovery {
    /// Server title.
    pub title: String,
    /// Server description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Contact information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// The default API root (an item of `api_roots`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Relative URLs of the API roots (`/name/`); omitted when there are none (§2: no empty
    /// lists).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_roots: Vec<String>,
}

/// The API root resource (§4.2.1).
#[derive(Debug, Serialize)]
pub struct ApiRootResource {
    /// Title.
    pub title: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Supported TAXII versions, as media types with their version parameter.
    pub versions: Vec<&'static str>,
    /// Largest request body accepted, in bytes.
    pub max_content_length: u64,
}

/// `GET /taxii2/`: the server's title and its API roots, as relative URLs. Every API root is
/// listed to every authenticated caller: an API root reveals a title and a size limit, and what
/// it holds is guarded per collection.
pub async fn discovery(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let roots = blocking(move || Ok(store.api_roots()?)).await?;
    let api_roots: Vec<String> = roots.iter().map(|r| format!("/{}/", r.name)).collect();
    let config = &state.config;
    let default = config
        .default_api_root
        .as_deref()
        .map(|name| format!("/{}/", name.trim_matches('/')))
        .filter(|url| api_roots.contains(url));
    Ok(json_response(
        StatusCode::OK,
        &Discovery {
            title: config.title.clone(),
            description: config.description.clone(),
            contact: config.contact.clone(),
            default,
            api_roots,
        },
    ))
}

/// `GET /{api-root}/`: 404 when the API root does not exist.
pub async fn api_root(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let root = blocking(move || Ok(store.api_root(&name)?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such API root"))?;
    Ok(json_response(
        StatusCode::OK,
        &ApiRootResource {
            title: root.title.clone(),
            description: root.description.clone(),
            versions: vec![TAXII_JSON],
            max_content_length: state.config.max_content_length(&root),
        },
    ))
}
