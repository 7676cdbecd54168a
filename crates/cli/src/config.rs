//! `kizuna.toml`: everything the flags set, in one file. Flags win over the file; the file wins
//! over the defaults. Unknown keys are errors, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kizuna_stix::Tlp;
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Data directory.
    pub data: PathBuf,
    /// The HTTPS listener.
    pub server: ServerSection,
    /// TAXII service settings.
    pub taxii: TaxiiSection,
    /// Federation schedule.
    pub sync: SyncSection,
    /// Partner hubs (`[[partner]]` tables), see docs/federation.md.
    #[serde(rename = "partner")]
    pub partners: Vec<kizuna_sync::PartnerConfig>,
    /// Sensors feeding the hub: where sightings go, watched directories (docs/detection.md).
    pub detect: DetectSection,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data: PathBuf::from("kizuna-data"),
            server: ServerSection::default(),
            taxii: TaxiiSection::default(),
            sync: SyncSection::default(),
            partners: Vec::new(),
            detect: DetectSection::default(),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// PEM certificate chain; a self-signed one is generated in the data directory when unset.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle that client certificates (mTLS) must chain to.
    pub client_ca: Option<PathBuf>,
    /// Serve plain HTTP. Credentials and intelligence then cross the network in clear.
    pub danger_plaintext_http: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9443)),
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            danger_plaintext_http: false,
        }
    }
}

/// `[sync]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSection {
    /// Seconds between two sync rounds with every partner while `kizuna serve` runs.
    pub interval_seconds: f64,
}

impl Default for SyncSection {
    fn default() -> Self {
        Self {
            interval_seconds: 60.0,
        }
    }
}

/// `[detect]`: what `kizuna scan --hub` and the watched directories of `kizuna serve` do with
/// their sightings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectSection {
    /// The collection (id or alias) sightings are written to; default the hub's `shared` one.
    pub sightings_collection: Option<String>,
    /// This organisation's STIX identity (`identity--UUID`), named in `where_sighted_refs`.
    pub identity: Option<String>,
    /// The TLP marking of every object written (a sighting reveals what the organisation saw).
    pub tlp: Tlp,
    /// Replace email addresses in shared observed-data by salted hashes.
    pub hash_emails: bool,
    /// Salt of those hashes; empty: a random secret kept in the store, stable for the hub.
    pub email_hash_salt: String,
    /// Seconds between two scans of the watched directories.
    pub interval_seconds: f64,
    /// Directories `kizuna serve` watches (`[[detect.watch]]` tables).
    pub watch: Vec<WatchConfig>,
}

impl Default for DetectSection {
    fn default() -> Self {
        Self {
            sightings_collection: None,
            identity: None,
            tlp: Tlp::Amber,
            hash_emails: false,
            email_hash_salt: String::new(),
            interval_seconds: 10.0,
            watch: Vec::new(),
        }
    }
}

/// What a watched directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchKind {
    /// A Maildir: new messages in `new/` and `cur/`.
    Maildir,
    /// Zeek JSON logs (one record per line).
    Zeek,
    /// Suricata EVE JSON.
    Suricata,
    /// STIX bundles or observed-data, one per line.
    Stix,
}

/// `[[detect.watch]]`: one directory `kizuna serve` scans on every round.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// What the directory holds.
    pub kind: WatchKind,
    /// The directory (a Maildir, or a directory of log files, read as they grow).
    pub path: PathBuf,
    /// Where its sightings go; default `[detect] sightings_collection`.
    pub collection: Option<String>,
}

/// `[taxii]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaxiiSection {
    /// Title of the discovery resource.
    pub title: String,
    /// Contact of the discovery resource.
    pub contact: Option<String>,
    /// Page size when a client gives no `limit`.
    pub default_page_size: usize,
    /// Largest page a client may ask for.
    pub max_page_size: usize,
    /// Requests per second per account.
    pub rate_per_second: f64,
    /// Burst of requests per account.
    pub rate_burst: f64,
    /// Deepest JSON nesting accepted.
    pub max_json_depth: usize,
    /// Longest JSON string accepted, in bytes.
    pub max_json_string: usize,
    /// The TLP level unmarked objects are treated as.
    pub unmarked_as: Tlp,
    /// Record every object version served in the audit log.
    pub audit_reads: bool,
}

impl Default for TaxiiSection {
    fn default() -> Self {
        let d = kizuna_taxii::ServiceConfig::default();
        Self {
            title: d.title,
            contact: d.contact,
            default_page_size: d.default_page_size,
            max_page_size: d.max_page_size,
            rate_per_second: d.rate_per_second,
            rate_burst: d.rate_burst,
            max_json_depth: d.max_json_depth,
            max_json_string: d.max_json_string,
            unmarked_as: d.unmarked_as,
            audit_reads: d.audit_reads,
        }
    }
}

impl Config {
    /// Loads `path`, or `./kizuna.toml` when it exists, or the defaults; then applies `--data`.
    pub fn load(path: Option<&Path>, data: Option<PathBuf>) -> anyhow::Result<Self> {
        let default_path = Path::new("kizuna.toml");
        let path = match path {
            Some(p) => Some(p),
            None if default_path.exists() => Some(default_path),
            None => None,
        };
        let mut config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                toml::from_str::<Config>(&text)
                    .with_context(|| format!("invalid config file {}", p.display()))?
            }
            None => Config::default(),
        };
        if let Some(d) = data {
            config.data = d;
        }
        Ok(config)
    }

    /// The TAXII service settings this configuration describes.
    pub fn service(&self) -> kizuna_taxii::ServiceConfig {
        let t = &self.taxii;
        kizuna_taxii::ServiceConfig {
            title: t.title.clone(),
            contact: t.contact.clone(),
            default_page_size: t.default_page_size,
            max_page_size: t.max_page_size,
            rate_per_second: t.rate_per_second,
            rate_burst: t.rate_burst,
            max_json_depth: t.max_json_depth,
            max_json_string: t.max_json_string,
            unmarked_as: t.unmarked_as,
            audit_reads: t.audit_reads,
            ..kizuna_taxii::ServiceConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file_and_rejects_typos() {
        let c: Config = toml::from_str(
            r#"
            data = "/var/lib/kizuna"
            [server]
            listen = "0.0.0.0:8443"
            [taxii]
            max_page_size = 500
            unmarked_as = "green"
            "#,
        )
        .unwrap();
        assert_eq!(c.data, PathBuf::from("/var/lib/kizuna"));
        assert_eq!(c.taxii.max_page_size, 500);
        assert_eq!(c.taxii.unmarked_as, Tlp::Green);
        let err = toml::from_str::<Config>("[server]\nlisten_addr = \"x\"").unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
        let c: Config = toml::from_str(
            "[detect]\ntlp = \"green\"\n[[detect.watch]]\nkind = \"maildir\"\npath = \"/m\"",
        )
        .unwrap();
        assert_eq!(c.detect.tlp, Tlp::Green);
        assert_eq!(c.detect.watch[0].kind, WatchKind::Maildir);
        assert_eq!(Config::default().detect.tlp, Tlp::Amber);
        let err = toml::from_str::<Config>(
            "[[detect.watch]]\nkind = \"maildir\"\npath = \"/m\"\ncolection = \"x\"",
        )
        .unwrap_err();
        assert!(err.to_string().contains("colection"), "{err}");
    }
}
