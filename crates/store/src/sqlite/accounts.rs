//! Accounts, their credentials (API keys, client certificates) and permissions.

use kizuna_stix::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{conflict, tlp_from_int, tlp_to_int};
use crate::error::{Result, StoreError};
use crate::model::{Account, NewAccount, Permission};

/// The two kinds of credential looked up by SHA-256.
#[derive(Debug, Clone, Copy)]
pub(super) enum Credential {
    ApiKey,
    ClientCert,
}

impl Credential {
    fn table(self) -> &'static str {
        match self {
            Credential::ApiKey => "api_keys",
            Credential::ClientCert => "client_certs",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Credential::ApiKey => "API key",
            Credential::ClientCert => "client certificate",
        }
    }
}

const ACCOUNT_COLUMNS: &str = "name, password_hash, tlp_clearance, admin, revoked, created";

struct AccountRow {
    name: String,
    password_hash: Option<String>,
    tlp: i64,
    admin: bool,
    revoked: bool,
    created: i64,
}

fn account_row(row: &Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        name: row.get(0)?,
        password_hash: row.get(1)?,
        tlp: row.get(2)?,
        admin: row.get(3)?,
        revoked: row.get(4)?,
        created: row.get(5)?,
    })
}

/// Completes an account row with its permissions and credential counts.
fn finish(tx: &Connection, row: AccountRow) -> Result<Account> {
    let permissions = tx
        .prepare_cached(
            "SELECT api_root, collection, read, write FROM permissions WHERE account = ?1
             ORDER BY api_root, collection",
        )?
        .query_map([&row.name], |r| {
            Ok(Permission {
                api_root: r.get(0)?,
                collection: r.get(1)?,
                read: r.get(2)?,
                write: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let (api_keys, client_certs): (i64, i64) = tx
        .prepare_cached(
            "SELECT (SELECT count(*) FROM api_keys WHERE account = ?1),
                    (SELECT count(*) FROM client_certs WHERE account = ?1)",
        )?
        .query_row([&row.name], |r| Ok((r.get(0)?, r.get(1)?)))?;
    row.into_account(permissions, api_keys, client_certs)
}

impl AccountRow {
    /// The account of this row, with its permissions and credential counts.
    fn into_account(
        self,
        permissions: Vec<Permission>,
        api_keys: i64,
        client_certs: i64,
    ) -> Result<Account> {
        Ok(Account {
            tlp_clearance: tlp_from_int(self.tlp)?,
            name: self.name,
            password_hash: self.password_hash,
            admin: self.admin,
            revoked: self.revoked,
            created: Timestamp::from_unix_micros(self.created),
            permissions,
            api_keys: u32::try_from(api_keys).unwrap_or(u32::MAX),
            client_certs: u32::try_from(client_certs).unwrap_or(u32::MAX),
        })
    }
}

fn require(tx: &Transaction<'_>, name: &str) -> Result<()> {
    let exists: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM accounts WHERE name = ?1)")?
        .query_row([name], |row| row.get(0))?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("account {name}")))
    }
}

pub(super) fn create(tx: &Transaction<'_>, account: &NewAccount) -> Result<Account> {
    if account.name.is_empty() || account.name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "account name {:?} is empty or has control characters",
            account.name
        )));
    }
    let created = Timestamp::now();
    tx.prepare_cached(
        "INSERT INTO accounts (name, password_hash, tlp_clearance, admin, revoked, created)
         VALUES (?1, ?2, ?3, ?4, 0, ?5)",
    )?
    .execute(params![
        account.name,
        account.password_hash,
        tlp_to_int(account.tlp_clearance),
        account.admin,
        created.unix_micros()
    ])
    .map_err(|e| conflict(e, || format!("account {} exists", account.name)))?;
    Ok(Account {
        name: account.name.clone(),
        password_hash: account.password_hash.clone(),
        tlp_clearance: account.tlp_clearance,
        admin: account.admin,
        revoked: false,
        created,
        permissions: Vec::new(),
        api_keys: 0,
        client_certs: 0,
    })
}

pub(super) fn all(tx: &Connection) -> Result<Vec<Account>> {
    let rows = tx
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY name"
        ))?
        .query_map([], account_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(|row| finish(tx, row)).collect()
}

pub(super) fn by_name(tx: &Connection, name: &str) -> Result<Option<Account>> {
    let row = tx
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = ?1"
        ))?
        .query_row([name], account_row)
        .optional()?;
    row.map(|row| finish(tx, row)).transpose()
}

pub(super) fn revoke(tx: &Transaction<'_>, name: &str) -> Result<bool> {
    let changed = tx
        .prepare_cached("UPDATE accounts SET revoked = 1 WHERE name = ?1")?
        .execute([name])?;
    Ok(changed > 0)
}

pub(super) fn set_password_hash(tx: &Transaction<'_>, name: &str, phc: &str) -> Result<()> {
    let changed = tx
        .prepare_cached("UPDATE accounts SET password_hash = ?2 WHERE name = ?1")?
        .execute(params![name, phc])?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("account {name}")));
    }
    Ok(())
}

pub(super) fn add_credential(
    tx: &Transaction<'_>,
    kind: Credential,
    name: &str,
    sha256: &[u8; 32],
) -> Result<()> {
    require(tx, name)?;
    tx.prepare_cached(&format!(
        "INSERT INTO {} (sha256, account, created) VALUES (?1, ?2, ?3)",
        kind.table()
    ))?
    .execute(params![&sha256[..], name, Timestamp::now().unix_micros()])
    .map_err(|e| conflict(e, || format!("this {} is already registered", kind.what())))?;
    Ok(())
}

/// The account of a credential (`?1`, its SHA-256 in the credential's table, `k`) with its
/// credential counts, one row per permission (in `api_root`, `collection` order, which is the
/// permissions' key order, so no sort), or a single row with NULL permission columns for an
/// account without any. Every bearer-key or client-certificate request runs it, so it is one
/// statement: the account, its permissions and its counts were three, 8% of the server's CPU per
/// page served. The counts are correlated subqueries, evaluated once per permission row: each is
/// a seek in the credential's account index, cheaper than a fourth statement for the few
/// permissions an account has.
macro_rules! by_credential_sql {
    ($table:literal) => {
        concat!(
            "SELECT a.name, a.password_hash, a.tlp_clearance, a.admin, a.revoked, a.created,
                    (SELECT count(*) FROM api_keys WHERE account = a.name),
                    (SELECT count(*) FROM client_certs WHERE account = a.name),
                    p.api_root, p.collection, p.read, p.write
             FROM ",
            $table,
            " AS k CROSS JOIN accounts AS a ON a.name = k.account
                  LEFT JOIN permissions AS p ON p.account = a.name
             WHERE k.sha256 = ?1 AND a.revoked = 0
             ORDER BY p.api_root, p.collection"
        )
    };
}

impl Credential {
    /// [`by_credential_sql!`] for this kind: constants, not built per request.
    fn lookup_sql(self) -> &'static str {
        match self {
            Credential::ApiKey => by_credential_sql!("api_keys"),
            Credential::ClientCert => by_credential_sql!("client_certs"),
        }
    }
}

pub(super) fn by_credential(
    tx: &Connection,
    kind: Credential,
    sha256: &[u8; 32],
) -> Result<Option<Account>> {
    let mut stmt = tx.prepare_cached(kind.lookup_sql())?;
    let mut rows = stmt.query([&sha256[..]])?;
    let Some(first) = rows.next()? else {
        return Ok(None);
    };
    let row = account_row(first)?;
    let (api_keys, client_certs): (i64, i64) = (first.get(6)?, first.get(7)?);
    let permission = |r: &Row<'_>| -> rusqlite::Result<Option<Permission>> {
        let Some(api_root) = r.get::<_, Option<String>>(8)? else {
            return Ok(None);
        };
        Ok(Some(Permission {
            api_root,
            collection: r.get(9)?,
            read: r.get(10)?,
            write: r.get(11)?,
        }))
    };
    let mut permissions: Vec<Permission> = permission(first)?.into_iter().collect();
    while let Some(r) = rows.next()? {
        permissions.extend(permission(r)?);
    }
    row.into_account(permissions, api_keys, client_certs)
        .map(Some)
}

pub(super) fn set_permission(tx: &Transaction<'_>, name: &str, p: &Permission) -> Result<()> {
    require(tx, name)?;
    if !p.read && !p.write {
        tx.prepare_cached(
            "DELETE FROM permissions WHERE account = ?1 AND api_root = ?2 AND collection = ?3",
        )?
        .execute(params![name, p.api_root, p.collection])?;
        return Ok(());
    }
    let exists: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM collections WHERE api_root = ?1 AND id = ?2)",
        )?
        .query_row(params![p.api_root, p.collection], |row| row.get(0))?;
    if !exists {
        return Err(StoreError::NotFound(format!(
            "collection {}/{}",
            p.api_root, p.collection
        )));
    }
    tx.prepare_cached(
        "INSERT INTO permissions (account, api_root, collection, read, write)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (account, api_root, collection)
         DO UPDATE SET read = excluded.read, write = excluded.write",
    )?
    .execute(params![name, p.api_root, p.collection, p.read, p.write])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    /// The credential lookup is seeks only: the credential by its key, the account by its name,
    /// its permissions in key order (no sort) and its credential counts by their account index.
    #[test]
    fn credential_lookup_seeks() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        for kind in [Credential::ApiKey, Credential::ClientCert] {
            let sql = format!("EXPLAIN QUERY PLAN {}", kind.lookup_sql());
            let plan: Vec<String> = conn
                .prepare(&sql)
                .unwrap()
                .query_map([&[0u8; 32][..]], |row| row.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(
                plan.iter()
                    .all(|step| !step.starts_with("SCAN") && !step.contains("TEMP B-TREE")),
                "{plan:?}"
            );
            assert!(
                plan.iter().any(|step| step.starts_with("SEARCH p ")),
                "{plan:?}"
            );
        }
    }
}
