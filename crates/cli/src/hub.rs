//! Opening the data directory, and what a fresh one gets on first use.

use std::sync::Arc;

use anyhow::{Context, bail};
use kizuna_stix::{Timestamp, Tlp};
use kizuna_store::{ApiRoot, Collection, NewAccount, SqliteStore, Store};

use crate::config::Config;

/// Name of the API root a fresh hub gets.
pub const DEFAULT_API_ROOT: &str = "hub";
/// Alias of the collection a fresh hub gets.
pub const DEFAULT_COLLECTION_ALIAS: &str = "shared";
/// Largest request body of the default API root (TAXII `max_content_length`).
pub const DEFAULT_MAX_CONTENT_LENGTH: u64 = 100 * 1024 * 1024;

/// Opens (creating if needed) the store in the configured data directory.
pub fn open(config: &Config) -> anyhow::Result<Arc<SqliteStore>> {
    let store = SqliteStore::open(&config.data)
        .with_context(|| format!("cannot open the data directory {}", config.data.display()))?;
    Ok(Arc::new(store))
}

/// Opens the store and, on a fresh one, creates the defaults ([`ensure_defaults`]) and says so on
/// stderr, the generated admin password included (the only time it is ever shown).
pub fn open_initialised(config: &Config) -> anyhow::Result<Arc<SqliteStore>> {
    let store = open(config)?;
    if let Some(first) = ensure_defaults(store.as_ref())? {
        eprintln!(
            "initialised a new hub: API root {DEFAULT_API_ROOT:?}, collection alias \
             {DEFAULT_COLLECTION_ALIAS:?}, account \"admin\""
        );
        if let Some(p) = first.generated_password {
            eprintln!("admin password (shown once; set KIZUNA_ADMIN_PASSWORD to choose it): {p}");
        }
    }
    Ok(store)
}

/// What [`ensure_defaults`] created.
pub struct FirstRun {
    /// The admin password, when it was generated (it is shown once and never stored in clear).
    pub generated_password: Option<String>,
}

/// On a store without any API root: creates the default API root, a read-write collection and the
/// `admin` account (password from `KIZUNA_ADMIN_PASSWORD`, else generated). Returns `None` when
/// the store was already initialised.
pub fn ensure_defaults(store: &dyn Store) -> anyhow::Result<Option<FirstRun>> {
    if !store.api_roots()?.is_empty() {
        return Ok(None);
    }
    store.create_api_root(&ApiRoot {
        name: DEFAULT_API_ROOT.to_owned(),
        title: "Kizuna hub".to_owned(),
        description: Some("Threat intelligence shared between partners".to_owned()),
        max_content_length: DEFAULT_MAX_CONTENT_LENGTH,
    })?;
    store.create_collection(&Collection {
        api_root: DEFAULT_API_ROOT.to_owned(),
        id: new_uuid(),
        title: "Shared intelligence".to_owned(),
        description: Some("Read-write collection created on first run".to_owned()),
        alias: Some(DEFAULT_COLLECTION_ALIAS.to_owned()),
        media_types: vec!["application/stix+json;version=2.1".to_owned()],
    })?;
    let (password, generated) = match std::env::var("KIZUNA_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (generate_secret(), true),
    };
    if store.account("admin")?.is_none() {
        store.create_account(&NewAccount {
            name: "admin".to_owned(),
            password_hash: Some(kizuna_store::hash_password(&password)?),
            tlp_clearance: Tlp::Red,
            admin: true,
        })?;
    }
    Ok(Some(FirstRun {
        generated_password: generated.then_some(password),
    }))
}

/// Finds a collection by id or alias, in `api_root` or else in the only API root there is.
pub fn find_collection(
    store: &dyn Store,
    api_root: Option<&str>,
    id_or_alias: &str,
) -> anyhow::Result<Collection> {
    let roots: Vec<String> = match api_root {
        Some(r) => vec![r.to_owned()],
        None => store.api_roots()?.into_iter().map(|r| r.name).collect(),
    };
    let mut found = Vec::new();
    for root in &roots {
        if let Some(c) = store.collection(root, id_or_alias)? {
            found.push(c);
        }
    }
    match found.len() {
        0 => bail!(
            "no collection {id_or_alias:?} in {} (see `kizuna collection list`)",
            api_root.map_or("any API root".to_owned(), |r| format!("API root {r:?}"))
        ),
        1 => Ok(found.remove(0)),
        _ => bail!("collection {id_or_alias:?} exists in several API roots: pass --api-root"),
    }
}

/// A random UUID v4, as TAXII collection ids are.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A random secret for passwords and API keys: 32 bytes from the OS generator, base64url.
pub fn generate_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Parses `--added-after`-style timestamps with a clear error.
pub fn parse_time(text: &str) -> anyhow::Result<Timestamp> {
    Timestamp::parse(text).map_err(|e| anyhow::anyhow!("{e}"))
}
