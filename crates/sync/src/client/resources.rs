//! The TAXII 2.1 resources the client reads (§4–§5), deserialised leniently: unknown properties
//! are ignored, and objects are kept as raw JSON text so that they are stored byte for byte.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Discovery resource (§4.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// Human-readable title.
    pub title: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Contact information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// The default API root's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// URLs of the API roots.
    #[serde(default)]
    pub api_roots: Vec<String>,
}

/// API root resource (§4.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRootInfo {
    /// Human-readable title.
    pub title: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Supported TAXII versions (media types).
    #[serde(default)]
    pub versions: Vec<String>,
    /// Largest request body the API root accepts, in bytes.
    pub max_content_length: u64,
}

/// Collection resource (§5.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionInfo {
    /// Collection id.
    pub id: String,
    /// Human-readable title.
    pub title: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Whether our account may read it.
    pub can_read: bool,
    /// Whether our account may write to it.
    pub can_write: bool,
    /// Media types of its objects.
    #[serde(default)]
    pub media_types: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CollectionsBody {
    #[serde(default)]
    pub collections: Vec<CollectionInfo>,
}

/// One object as received: its exact JSON text.
pub type RawObject = Box<RawValue>;

#[derive(Debug, Deserialize)]
pub(crate) struct EnvelopeBody {
    #[serde(default)]
    pub more: bool,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub objects: Vec<RawObject>,
}

/// A page of objects (envelope, §3.7) with the paging headers.
#[derive(Debug)]
pub struct ObjectsPage {
    /// The objects, each as its exact JSON text, in the server's (date-added) order.
    pub objects: Vec<RawObject>,
    /// Whether more objects match.
    pub more: bool,
    /// The token for the next page, if the server gave one.
    pub next: Option<String>,
    /// `X-TAXII-Date-Added-First`, verbatim.
    pub date_added_first: Option<String>,
    /// `X-TAXII-Date-Added-Last`, verbatim: the checkpoint for the next incremental pull.
    pub date_added_last: Option<String>,
}

/// One manifest record (§5.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    /// Object id.
    pub id: String,
    /// When this version was added to the collection.
    pub date_added: String,
    /// The version.
    pub version: String,
    /// Media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ManifestBody {
    #[serde(default)]
    pub more: bool,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub objects: Vec<ManifestRecord>,
}

/// A page of a manifest with the paging headers.
#[derive(Debug, Clone)]
pub struct ManifestPage {
    /// The records.
    pub records: Vec<ManifestRecord>,
    /// Whether more records match.
    pub more: bool,
    /// The token for the next page.
    pub next: Option<String>,
    /// `X-TAXII-Date-Added-First`, verbatim.
    pub date_added_first: Option<String>,
    /// `X-TAXII-Date-Added-Last`, verbatim.
    pub date_added_last: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct VersionsBody {
    #[serde(default)]
    pub more: bool,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub versions: Vec<String>,
}

/// A page of an object's versions (§5.8.1) with the paging headers.
#[derive(Debug, Clone)]
pub struct VersionsPage {
    /// The versions, oldest first.
    pub versions: Vec<String>,
    /// Whether more versions exist.
    pub more: bool,
    /// The token for the next page.
    pub next: Option<String>,
    /// `X-TAXII-Date-Added-First`, verbatim.
    pub date_added_first: Option<String>,
    /// `X-TAXII-Date-Added-Last`, verbatim.
    pub date_added_last: Option<String>,
}

/// Per-object detail of a status resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetail {
    /// Object id.
    pub id: String,
    /// Object version.
    pub version: String,
    /// Why it failed, for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Status resource (§4.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResource {
    /// Status id.
    pub id: String,
    /// `pending` or `complete`.
    pub status: String,
    /// When the request was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timestamp: Option<String>,
    /// Objects in the request.
    #[serde(default)]
    pub total_count: u64,
    /// Objects stored.
    #[serde(default)]
    pub success_count: u64,
    /// Objects stored, with details.
    #[serde(default)]
    pub successes: Vec<StatusDetail>,
    /// Objects rejected.
    #[serde(default)]
    pub failure_count: u64,
    /// Objects rejected, with details.
    #[serde(default)]
    pub failures: Vec<StatusDetail>,
    /// Objects still pending.
    #[serde(default)]
    pub pending_count: u64,
    /// Objects still pending, with details.
    #[serde(default)]
    pub pendings: Vec<StatusDetail>,
}

impl StatusResource {
    /// Whether the server has finished processing the request.
    pub fn is_complete(&self) -> bool {
        self.status == "complete"
    }
}

/// A TAXII error whose `details` is a status resource (a 422 answer to an envelope of which
/// nothing could be stored).
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorWithStatus {
    pub details: StatusResource,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}
