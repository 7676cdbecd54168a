//! The one place where failures become HTTP responses: a status code and a TAXII 2.1 error
//! message (§3.6.1), always as `application/taxii+json;version=2.1`.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::media::TAXII_JSON;

/// A TAXII error message body (§3.6.1).
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    /// Short human-readable summary.
    pub title: String,
    /// Longer explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Server-specific error identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
    /// Server-specific error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The HTTP status, repeated as a string as §3.6.1 shows.
    pub http_status: String,
    /// Structured, server-specific details (§3.6.1 `details`): for a rejected envelope, the
    /// status resource with every per-object failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Summary.
    pub title: &'static str,
    /// Details that help the client fix its request (never secrets or internal paths).
    pub description: Option<String>,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// Structured details for the body's `details` property (boxed: errors travel in every
    /// `Result`, and a JSON value is large).
    pub details: Option<Box<serde_json::Value>>,
}

impl ApiError {
    /// An error with a status and title.
    pub fn new(status: StatusCode, title: &'static str) -> Self {
        Self {
            status,
            title,
            description: None,
            headers: Vec::new(),
            details: None,
        }
    }

    /// Adds a description.
    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 400 Bad Request.
    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request").describe(description)
    }

    /// 404 Not Found. Also what a client gets for a collection it may not read (see SECURITY.md).
    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found").describe(description)
    }

    /// 403 Forbidden.
    pub fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden").describe(description)
    }

    /// Adds structured details (§3.6.1 `details`).
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// 406 Not Acceptable: the `Accept` header names no TAXII 2.1 media range.
    pub fn not_acceptable(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, "Not acceptable").describe(description)
    }

    /// 415 Unsupported Media Type: a request body that is not `application/taxii+json`.
    pub fn unsupported_media_type(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
            .describe(description)
    }

    /// 413 Content Too Large: the body exceeds the API root's `max_content_length`.
    pub fn payload_too_large(max_content_length: u64) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large").describe(format!(
            "the request body exceeds this API root's max_content_length of {max_content_length} bytes"
        ))
    }

    /// 422 Unprocessable Content: a well-formed request whose content cannot be processed.
    pub fn unprocessable(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable content").describe(description)
    }

    /// 500, with the cause logged but not disclosed.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}

impl From<kizuna_store::StoreError> for ApiError {
    fn from(e: kizuna_store::StoreError) -> Self {
        use kizuna_store::StoreError as E;
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::Conflict(what) => ApiError::new(StatusCode::CONFLICT, "Conflict").describe(what),
            E::Invalid(what) => ApiError::bad_request(what),
            other => ApiError::internal(&other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            title: self.title.to_owned(),
            description: self.description,
            error_id: None,
            error_code: None,
            http_status: self.status.as_u16().to_string(),
            details: self.details.map(|d| *d),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = (self.status, bytes).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(TAXII_JSON));
        for (name, value) in self.headers {
            resp.headers_mut().append(name, value);
        }
        resp
    }
}
