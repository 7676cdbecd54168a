//! Partners as configured in `kizuna.toml` (`[[partner]]` tables), and the edits
//! `kizuna partner add | remove` make to that file.
//!
//! Secrets never appear in the file: credentials are named by environment variable or by file
//! (`password_env`, `password_file`, `token_env`, `token_file`, `client_key`). A `password` or
//! `token` key is an unknown key, hence an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{Auth, ClientCert, ClientConfig, Secret, Trust, tls::parse_fingerprint};
use crate::error::{Error, Result};
use crate::policy::EgressPolicy;

/// One partner hub (or any TAXII 2.1 server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// Unique name, used in commands, the ledger and the sync state.
    pub name: String,
    /// The partner organisation's STIX identity id (`identity--...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The local account this partner reads our TAXII server with: its reads are subject to this
    /// partner's egress policy too ([`policy_for_account`]), not only what we push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// TAXII discovery URL (`.../taxii2/`) or API root URL.
    pub url: String,
    /// When `url` is a discovery URL: the API root to use (URL); default: the discovery's
    /// `default`, else its only API root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_root: Option<String>,
    /// HTTP authentication.
    #[serde(default, skip_serializing_if = "AuthConfig::is_none")]
    pub auth: AuthConfig,
    /// PEM CA bundle the partner's certificate must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<PathBuf>,
    /// SHA-256 fingerprint of the partner's certificate (hex, colons allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_sha256: Option<String>,
    /// PEM client certificate chain for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// Allow an `http://` URL.
    #[serde(default, skip_serializing_if = "is_false")]
    pub danger_plaintext_http: bool,
    /// Seconds allowed per request.
    #[serde(
        default = "default_timeout",
        skip_serializing_if = "is_default_timeout"
    )]
    pub timeout_secs: u64,
    /// Largest response body accepted, in bytes.
    #[serde(
        default = "default_max_response",
        skip_serializing_if = "is_default_max_response"
    )]
    pub max_response_bytes: u64,
    /// Objects asked per page when pulling.
    #[serde(
        default = "default_page_size",
        skip_serializing_if = "is_default_page_size"
    )]
    pub page_size: usize,
    /// Confirmed rejections of one version (the partner's status says it failed and its versions
    /// endpoint says it does not hold it), counted across runs, after which push sets the version
    /// aside in the outbound quarantine and moves on.
    #[serde(
        default = "default_set_aside_after",
        skip_serializing_if = "is_default_set_aside_after"
    )]
    pub set_aside_after: u32,
    /// Remote collections pulled into local ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull: Vec<PullMapping>,
    /// Local collections pushed to remote ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub push: Vec<PushMapping>,
    /// What may go to this partner.
    #[serde(default)]
    pub policy: EgressPolicy,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn default_timeout() -> u64 {
    60
}
fn is_default_timeout(v: &u64) -> bool {
    *v == default_timeout()
}
fn default_max_response() -> u64 {
    64 * 1024 * 1024
}
fn is_default_max_response(v: &u64) -> bool {
    *v == default_max_response()
}
fn default_page_size() -> usize {
    100
}
fn is_default_page_size(v: &usize) -> bool {
    *v == default_page_size()
}
fn default_set_aside_after() -> u32 {
    3
}
fn is_default_set_aside_after(v: &u32) -> bool {
    *v == default_set_aside_after()
}

/// HTTP credentials, by reference: the secret is read from the environment or a file when used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// User name for HTTP Basic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Environment variable holding the Basic password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// File holding the Basic password (trailing newline ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding a bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// File holding a bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

impl AuthConfig {
    fn is_none(&self) -> bool {
        *self == AuthConfig::default()
    }

    /// Reads the secret and builds the client's [`Auth`].
    pub fn resolve(&self) -> Result<Auth> {
        let password = secret(
            self.password_env.as_deref(),
            self.password_file.as_deref(),
            "password",
        )?;
        let token = secret(
            self.token_env.as_deref(),
            self.token_file.as_deref(),
            "token",
        )?;
        match (&self.username, password, token) {
            (None, None, None) => Ok(Auth::None),
            (Some(u), Some(p), None) => Ok(Auth::Basic {
                username: u.clone(),
                password: p,
            }),
            (None, None, Some(t)) => Ok(Auth::Bearer(t)),
            (Some(_), None, _) => Err(Error::Config(
                "auth.username needs password_env or password_file".into(),
            )),
            (None, Some(_), _) => Err(Error::Config("a password needs auth.username".into())),
            (Some(_), Some(_), Some(_)) => Err(Error::Config(
                "choose Basic (username + password) or a bearer token, not both".into(),
            )),
        }
    }
}

fn secret(env: Option<&str>, file: Option<&Path>, what: &str) -> Result<Option<Secret>> {
    match (env, file) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(Error::Config(format!(
            "{what}_env and {what}_file are exclusive"
        ))),
        (Some(var), None) => std::env::var(var)
            .map(|v| Some(Secret::new(v)))
            .map_err(|_| Error::Config(format!("environment variable {var} ({what}) is not set"))),
        (None, Some(path)) => {
            let text = read(path)?;
            let text = String::from_utf8(text)
                .map_err(|_| Error::Config(format!("{} is not UTF-8", path.display())))?;
            Ok(Some(Secret::new(text.trim_end_matches(['\r', '\n']))))
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// A remote collection pulled into a local one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullMapping {
    /// Remote collection id.
    pub remote: String,
    /// Local collection id or alias.
    pub local: String,
    /// Local API root (default: the only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_api_root: Option<String>,
    /// After each pull, delete local versions received from this partner that its collection no
    /// longer holds (reads the partner's whole manifest: costs one paged read per run).
    #[serde(default, skip_serializing_if = "is_false")]
    pub mirror_deletions: bool,
}

/// A local collection pushed to a remote one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushMapping {
    /// Local collection id or alias.
    pub local: String,
    /// Remote collection id.
    pub remote: String,
    /// Local API root (default: the only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_api_root: Option<String>,
}

impl PartnerConfig {
    /// A partner with defaults for everything but name and URL.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            identity: None,
            account: None,
            url: url.into(),
            api_root: None,
            auth: AuthConfig::default(),
            ca_bundle: None,
            pinned_sha256: None,
            client_cert: None,
            client_key: None,
            danger_plaintext_http: false,
            timeout_secs: default_timeout(),
            max_response_bytes: default_max_response(),
            page_size: default_page_size(),
            set_aside_after: default_set_aside_after(),
            pull: Vec::new(),
            push: Vec::new(),
            policy: EgressPolicy::default(),
        }
    }

    /// Checks what can be checked without reading secrets or the network.
    pub fn check(&self) -> Result<()> {
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid_name {
            return Err(Error::Config(format!(
                "partner name {:?}: use 1-64 letters, digits, '-', '_' or '.'",
                self.name
            )));
        }
        if let Some(id) = &self.identity {
            let parsed = kizuna_stix::StixId::parse(id)
                .map_err(|e| Error::Config(format!("partner {}: identity: {e}", self.name)))?;
            if parsed.object_type() != "identity" {
                return Err(Error::Config(format!(
                    "partner {}: identity must be an identity--UUID id",
                    self.name
                )));
            }
        }
        let url = crate::client::base_url(&self.url)?;
        match url.scheme() {
            "https" => {
                if self.ca_bundle.is_none() && self.pinned_sha256.is_none() {
                    return Err(Error::Config(format!(
                        "partner {}: an https URL needs ca_bundle or pinned_sha256",
                        self.name
                    )));
                }
            }
            "http" if self.danger_plaintext_http => {}
            "http" => {
                return Err(Error::Config(format!(
                    "partner {}: {} is plain HTTP; use https or set danger_plaintext_http",
                    self.name, self.url
                )));
            }
            s => {
                return Err(Error::Config(format!(
                    "partner {}: unsupported scheme {s}",
                    self.name
                )));
            }
        }
        if self.ca_bundle.is_some() && self.pinned_sha256.is_some() {
            return Err(Error::Config(format!(
                "partner {}: ca_bundle and pinned_sha256 are exclusive",
                self.name
            )));
        }
        if let Some(p) = &self.pinned_sha256 {
            parse_fingerprint(p)?;
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(Error::Config(format!(
                "partner {}: client_cert and client_key go together",
                self.name
            )));
        }
        if self.set_aside_after == 0 {
            return Err(Error::Config(format!(
                "partner {}: set_aside_after must be at least 1",
                self.name
            )));
        }
        if self.page_size == 0 || self.page_size > 10_000 {
            return Err(Error::Config(format!(
                "partner {}: page_size must be 1..=10000",
                self.name
            )));
        }
        Ok(())
    }

    /// The client configuration: reads the secrets, the CA bundle and the client certificate.
    pub fn client_config(&self) -> Result<ClientConfig> {
        self.check()?;
        let trust = match (&self.ca_bundle, &self.pinned_sha256) {
            (Some(path), _) => Some(Trust::CaBundle(read(path)?)),
            (None, Some(pin)) => Some(Trust::PinnedSha256(parse_fingerprint(pin)?)),
            (None, None) => None,
        };
        let client_cert = match (&self.client_cert, &self.client_key) {
            (Some(c), Some(k)) => Some(ClientCert {
                chain_pem: read(c)?,
                key_pem: read(k)?,
            }),
            _ => None,
        };
        Ok(ClientConfig {
            auth: self.auth.resolve()?,
            trust,
            client_cert,
            danger_plaintext_http: self.danger_plaintext_http,
            connect_timeout: Duration::from_secs(self.timeout_secs.clamp(1, 60)),
            request_timeout: Duration::from_secs(self.timeout_secs.max(1)),
            max_response_bytes: self.max_response_bytes,
        })
    }
}

/// The egress policy that applies to reads by a local account, when that account is a partner's
/// (`account = "..."` in its `[[partner]]` table). This is the seam through which the TAXII server
/// applies the same policy to what partners read as the engine applies to what it pushes.
pub fn policy_for_account<'a>(
    partners: &'a [PartnerConfig],
    account: &str,
) -> Option<&'a EgressPolicy> {
    partners
        .iter()
        .find(|p| p.account.as_deref() == Some(account))
        .map(|p| &p.policy)
}

/// The `[[partner]]` tables of a configuration file (none when the file does not exist).
pub fn load_partners(path: &Path) -> Result<Vec<PartnerConfig>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    partners_from_str(&text).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// The `[[partner]]` tables of a configuration text.
pub fn partners_from_str(text: &str) -> Result<Vec<PartnerConfig>> {
    #[derive(Deserialize)]
    struct Partners {
        #[serde(default)]
        partner: Vec<PartnerConfig>,
    }
    // Deserialised from the text itself (other top-level tables are skipped), so that an error
    // inside a `[[partner]]` table says its line and column.
    let parsed: Partners = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
    let mut names = std::collections::HashSet::new();
    let mut accounts = std::collections::HashSet::new();
    for p in &parsed.partner {
        p.check()?;
        if !names.insert(p.name.as_str()) {
            return Err(Error::Config(format!(
                "partner {} is configured twice",
                p.name
            )));
        }
        if let Some(a) = &p.account
            && !accounts.insert(a.as_str())
        {
            return Err(Error::Config(format!(
                "account {a} is given to two partners"
            )));
        }
    }
    Ok(parsed.partner)
}

/// Appends a partner to the configuration file (created if absent), keeping the rest of the file,
/// comments included, as it was.
pub fn add_partner(path: &Path, partner: &PartnerConfig) -> Result<()> {
    partner.check()?;
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    if partners_from_str(&existing)?
        .iter()
        .any(|p| p.name == partner.name)
    {
        return Err(Error::Config(format!(
            "partner {} already exists",
            partner.name
        )));
    }
    #[derive(Serialize)]
    struct One<'a> {
        partner: [&'a PartnerConfig; 1],
    }
    let block = toml::to_string(&One { partner: [partner] })
        .map_err(|e| Error::Config(format!("cannot write partner: {e}")))?;
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&block);
    let after = partners_from_str(&text)?;
    if after.last() != Some(partner) {
        return Err(Error::Config(
            "the partner would not read back identically".into(),
        ));
    }
    write_atomically(path, &text)
}

/// Removes a partner's `[[partner]]` table (and its sub-tables) from the configuration file,
/// keeping everything else byte for byte. Returns false when no such partner is configured.
pub fn remove_partner(path: &Path, name: &str) -> Result<bool> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let partners = partners_from_str(&text)?;
    let Some(index) = partners.iter().position(|p| p.name == name) else {
        return Ok(false);
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let headers: Vec<(usize, String)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| header_name(l).map(|h| (i, h)))
        .collect();
    let starts: Vec<usize> = headers
        .iter()
        .filter(|(_, h)| h == "[[partner]]")
        .map(|(i, _)| *i)
        .collect();
    if starts.len() != partners.len() {
        return Err(Error::Config(
            "partners are not all written as [[partner]] tables; edit the file by hand".into(),
        ));
    }
    let start = starts[index];
    let end = headers
        .iter()
        .find(|(i, h)| *i > start && !(h.starts_with("[partner.") || h.starts_with("[[partner.")))
        .map_or(lines.len(), |(i, _)| *i);
    let mut out = String::with_capacity(text.len());
    for (i, l) in lines.iter().enumerate() {
        if i < start || i >= end {
            out.push_str(l);
        }
    }
    let remaining = partners_from_str(&out)?;
    let mut expected = partners;
    expected.remove(index);
    if remaining != expected {
        return Err(Error::Config(
            "could not remove the partner cleanly; edit the file by hand".into(),
        ));
    }
    write_atomically(path, &out)?;
    Ok(true)
}

/// `[a.b]` / `[[a.b]]` headers, whitespace removed, comments ignored; `None` for other lines.
fn header_name(line: &str) -> Option<String> {
    let code = line.split('#').next().unwrap_or("").trim();
    let inner_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '"'))
    };
    if let Some(inner) = code.strip_prefix("[[").and_then(|s| s.strip_suffix("]]")) {
        return inner_ok(inner).then(|| format!("[[{}]]", inner.replace(' ', "")));
    }
    if let Some(inner) = code.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        return inner_ok(inner).then(|| format!("[{}]", inner.replace(' ', "")));
    }
    None
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
# The hub's own settings.
data = "kizuna-data"

[[partner]]
name = "dod"
identity = "identity--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061"
account = "dod-reader"
url = "https://dod.example:9443/taxii2/"
pinned_sha256 = "ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab"
auth = { username = "mod", password_env = "DOD_PASSWORD" }

[[partner.pull]]
remote = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
local = "from-dod"

[[partner.push]]
local = "shared"
remote = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"

[partner.policy]
amber_client = true
deny_types = ["note"]

[server]
listen = "127.0.0.1:9443"

[[partner]]
name = "feed"
url = "http://127.0.0.1:5000/api1/"
danger_plaintext_http = true
"#;

    #[test]
    fn parses_partners_and_ignores_the_rest() {
        let ps = partners_from_str(SAMPLE).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].pull[0].local, "from-dod");
        assert!(ps[0].policy.amber_client);
        assert_eq!(ps[0].page_size, 100);
        assert_eq!(ps[1].name, "feed");
        assert!(policy_for_account(&ps, "dod-reader").unwrap().amber_client);
        assert!(policy_for_account(&ps, "admin").is_none());
        let dup = format!(
            "{SAMPLE}\n[[partner]]\nname = \"x\"\naccount = \"dod-reader\"\nurl = \"http://h/\"\ndanger_plaintext_http = true\n"
        );
        assert!(
            partners_from_str(&dup)
                .unwrap_err()
                .to_string()
                .contains("two partners")
        );
    }

    /// `kizuna serve` logs a bad `[[partner]]` table with its line when it re-reads the file.
    #[test]
    fn errors_inside_a_partner_table_say_the_line() {
        let t = "[server]\nlisten = \"127.0.0.1:1\"\n\n[[partner]]\nname = \"x\"\nurl = \"http://h/\"\ndanger_plaintext_http = true\n[partner.policy]\ndeny_typos = [\"note\"]\n";
        let e = partners_from_str(t).unwrap_err().to_string();
        assert!(e.contains("line 9") && e.contains("deny_typos"), "{e}");
    }

    #[test]
    fn secrets_in_clear_are_refused() {
        let t = "[[partner]]\nname = \"x\"\nurl = \"http://h/\"\ndanger_plaintext_http = true\nauth = { username = \"u\", password = \"p\" }\n";
        let e = partners_from_str(t).unwrap_err().to_string();
        assert!(e.contains("password"), "{e}");
    }

    #[test]
    fn checks_catch_unsafe_or_incomplete_partners() {
        for bad in [
            "name = \"a\"\nurl = \"http://h/\"",
            "name = \"a\"\nurl = \"https://h/\"",
            "name = \"a b\"\nurl = \"http://h/\"\ndanger_plaintext_http = true",
            "name = \"a\"\nurl = \"http://h/\"\ndanger_plaintext_http = true\nidentity = \"indicator--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061\"",
            "name = \"a\"\nurl = \"https://h/\"\npinned_sha256 = \"abcd\"",
            "name = \"a\"\nurl = \"https://h/\"\npinned_sha256 = \"\"\nca_bundle = \"x\"",
            "name = \"a\"\nurl = \"http://h/\"\ndanger_plaintext_http = true\nclient_cert = \"c.pem\"",
        ] {
            let t = format!("[[partner]]\n{bad}\n");
            assert!(partners_from_str(&t).is_err(), "accepted: {bad}");
        }
        let twice = "[[partner]]\nname=\"a\"\nurl=\"http://h/\"\ndanger_plaintext_http=true\n[[partner]]\nname=\"a\"\nurl=\"http://h/\"\ndanger_plaintext_http=true\n";
        assert!(partners_from_str(twice).is_err());
    }

    #[test]
    fn credentials_resolve_from_env_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        let a = AuthConfig {
            username: Some("u".into()),
            password_file: Some(f.clone()),
            ..Default::default()
        };
        assert_eq!(
            a.resolve().unwrap(),
            Auth::Basic {
                username: "u".into(),
                password: Secret::new("s3cret")
            }
        );
        let t = AuthConfig {
            token_file: Some(f),
            ..Default::default()
        };
        assert_eq!(t.resolve().unwrap(), Auth::Bearer(Secret::new("s3cret")));
        let missing = AuthConfig {
            token_env: Some("KIZUNA_SYNC_TEST_SURELY_UNSET".into()),
            ..Default::default()
        };
        assert!(missing.resolve().is_err());
        let half = AuthConfig {
            username: Some("u".into()),
            ..Default::default()
        };
        assert!(half.resolve().is_err());
        assert_eq!(AuthConfig::default().resolve().unwrap(), Auth::None);
    }

    #[test]
    fn add_and_remove_keep_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kizuna.toml");
        std::fs::write(&path, SAMPLE).unwrap();
        let mut p = PartnerConfig::new("third", "http://127.0.0.1:1/api/");
        p.danger_plaintext_http = true;
        p.pull.push(PullMapping {
            remote: "r".into(),
            local: "l".into(),
            local_api_root: None,
            mirror_deletions: true,
        });
        p.policy.deny_labels.push("internal".into());
        add_partner(&path, &p).unwrap();
        assert!(add_partner(&path, &p).is_err(), "duplicate name");
        let ps = load_partners(&path).unwrap();
        assert_eq!(ps.len(), 3);
        assert_eq!(ps[2], p);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(SAMPLE), "existing text kept verbatim");

        assert!(remove_partner(&path, "dod").unwrap());
        assert!(!remove_partner(&path, "dod").unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# The hub's own settings."));
        assert!(
            text.contains("[server]"),
            "a foreign table after the partner is kept"
        );
        assert!(!text.contains("from-dod"));
        let names: Vec<String> = load_partners(&path)
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["feed", "third"]);
        assert!(remove_partner(&path, "third").unwrap());
        assert!(remove_partner(&path, "feed").unwrap());
        assert!(load_partners(&path).unwrap().is_empty());
        assert!(std::fs::read_to_string(&path).unwrap().contains("listen"));
        assert!(
            load_partners(&dir.path().join("absent.toml"))
                .unwrap()
                .is_empty()
        );
    }
}
