//! API roots and collections.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::conflict;
use crate::error::{Result, StoreError};
use crate::model::{ApiRoot, Collection, CollectionRef, RESERVED_API_ROOT_NAMES};

/// Whether `name` is a non-empty run of URL-unreserved characters (`[A-Za-z0-9._~-]+`).
fn is_url_segment(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

pub(super) fn create_api_root(tx: &Transaction<'_>, root: &ApiRoot) -> Result<()> {
    if !is_url_segment(&root.name) {
        return Err(StoreError::Invalid(format!(
            "API root name {:?} must match [A-Za-z0-9._~-]+",
            root.name
        )));
    }
    if matches!(root.name.as_str(), "." | "..") {
        return Err(StoreError::Invalid(format!(
            "API root name {:?} is reserved: it is a URL dot segment",
            root.name
        )));
    }
    if let Some(word) = RESERVED_API_ROOT_NAMES
        .iter()
        .find(|w| w.eq_ignore_ascii_case(&root.name))
    {
        return Err(StoreError::Invalid(format!(
            "API root name {:?} is reserved: the server answers /{word} itself, which would \
             shadow the API root",
            root.name
        )));
    }
    let max = i64::try_from(root.max_content_length).map_err(|_| {
        StoreError::Invalid(format!("max_content_length {}", root.max_content_length))
    })?;
    tx.prepare_cached(
        "INSERT INTO api_roots (name, title, description, max_content_length) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![root.name, root.title, root.description, max])
    .map_err(|e| conflict(e, || format!("API root {} exists", root.name)))?;
    Ok(())
}

fn api_root_row(row: &Row<'_>) -> rusqlite::Result<ApiRoot> {
    Ok(ApiRoot {
        name: row.get(0)?,
        title: row.get(1)?,
        description: row.get(2)?,
        max_content_length: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
    })
}

pub(super) fn api_roots(tx: &Connection) -> Result<Vec<ApiRoot>> {
    let mut stmt = tx.prepare_cached(
        "SELECT name, title, description, max_content_length FROM api_roots ORDER BY seq",
    )?;
    let roots = stmt
        .query_map([], api_root_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(roots)
}

pub(super) fn api_root(tx: &Connection, name: &str) -> Result<Option<ApiRoot>> {
    Ok(tx
        .prepare_cached(
            "SELECT name, title, description, max_content_length FROM api_roots WHERE name = ?1",
        )?
        .query_row([name], api_root_row)
        .optional()?)
}

pub(super) fn create_collection(tx: &Transaction<'_>, c: &Collection) -> Result<()> {
    if uuid::Uuid::parse_str(&c.id).is_err() {
        return Err(StoreError::Invalid(format!(
            "collection id {:?} is not a UUID",
            c.id
        )));
    }
    if let Some(alias) = &c.alias
        && !is_url_segment(alias)
    {
        return Err(StoreError::Invalid(format!(
            "collection alias {alias:?} must match [A-Za-z0-9._~-]+"
        )));
    }
    if api_root(tx, &c.api_root)?.is_none() {
        return Err(StoreError::NotFound(format!("API root {}", c.api_root)));
    }
    // Ids and aliases share one namespace in URLs: neither may shadow the other.
    let mut names = vec![c.id.as_str()];
    names.extend(c.alias.as_deref());
    for name in names {
        let taken: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM collections WHERE api_root = ?1 AND (id = ?2 OR alias = ?2))",
            )?
            .query_row(params![c.api_root, name], |row| row.get(0))?;
        if taken {
            return Err(StoreError::Conflict(format!(
                "collection id or alias {name} is taken in API root {}",
                c.api_root
            )));
        }
    }
    let media_types = serde_json::to_string(&c.media_types)
        .map_err(|e| StoreError::Invalid(format!("media types: {e}")))?;
    tx.prepare_cached(
        "INSERT INTO collections (api_root, id, title, description, alias, media_types)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        c.api_root,
        c.id,
        c.title,
        c.description,
        c.alias,
        media_types
    ])
    .map_err(|e| conflict(e, || format!("collection {} exists", c.id)))?;
    Ok(())
}

/// The columns [`collection_row`] reads, as a macro so that statements can be `concat!`ed
/// constants.
macro_rules! collection_columns {
    () => {
        "api_root, id, title, description, alias, media_types"
    };
}
const COLLECTION_COLUMNS: &str = collection_columns!();

/// A collection by id or alias (`?1` API root, `?2` id or alias). A constant: every page read
/// runs it, and `format!` built it again on each one just to find the cached statement.
const COLLECTION_BY_ID_OR_ALIAS: &str = concat!(
    "SELECT ",
    collection_columns!(),
    " FROM collections WHERE api_root = ?1 AND id = ?2
     UNION ALL
     SELECT ",
    collection_columns!(),
    " FROM collections WHERE api_root = ?1 AND alias = ?2
     LIMIT 1"
);

fn collection_row(row: &Row<'_>) -> rusqlite::Result<(Collection, String)> {
    Ok((
        Collection {
            api_root: row.get(0)?,
            id: row.get(1)?,
            title: row.get(2)?,
            description: row.get(3)?,
            alias: row.get(4)?,
            media_types: Vec::new(),
        },
        row.get(5)?,
    ))
}

fn finish_collection((mut c, media_types): (Collection, String)) -> Result<Collection> {
    c.media_types = serde_json::from_str(&media_types)
        .map_err(|e| StoreError::Corrupt(format!("media types of collection {}: {e}", c.id)))?;
    Ok(c)
}

pub(super) fn collections(tx: &Connection, api_root: &str) -> Result<Vec<Collection>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLLECTION_COLUMNS} FROM collections WHERE api_root = ?1 ORDER BY key"
    ))?;
    let rows = stmt
        .query_map([api_root], collection_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(finish_collection).collect()
}

pub(super) fn collection(
    tx: &Connection,
    api_root: &str,
    id_or_alias: &str,
) -> Result<Option<Collection>> {
    let row = tx
        .prepare_cached(COLLECTION_BY_ID_OR_ALIAS)?
        .query_row(params![api_root, id_or_alias], collection_row)
        .optional()?;
    row.map(finish_collection).transpose()
}

/// The internal key of a collection, or [`StoreError::NotFound`].
pub(super) fn collection_key(tx: &Connection, c: &CollectionRef) -> Result<i64> {
    tx.prepare_cached("SELECT key FROM collections WHERE api_root = ?1 AND id = ?2")?
        .query_row(params![c.api_root, c.id], |row| row.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("collection {}/{}", c.api_root, c.id)))
}
