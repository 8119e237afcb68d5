//! What the stand-in reports about its database, and which tables a login
//! may not read, kept in the database file so every process serving it sees
//! them (settings rows beside the company's tables, invisible to T-SQL).
//! Read when a connection opens: a change applies to the next connection.
//!
//! - the compatibility level (`sys.databases.compatibility_level`, default
//!   150) and the database collation (`sys.databases.collation_name`,
//!   `DATABASEPROPERTYEX(…, 'Collation')`, default `Polish_CI_AS`). Only the
//!   reported values change: columns keep Polish_CI_AS, and the server
//!   collation (`SERVERPROPERTY`) stays Polish_CI_AS;
//! - `DENY SELECT ON CDN.<table> TO <login>`: a statement reading the table
//!   fails with SQL Server's error 229 (see [`permission_denied`]).
//!
//! From Rust: `settings::set_compatibility_level(&db::open(path, ..)?, 90)`;
//! from the shell: `optima-standin configure --db … --compatibility-level 90`.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result, SqlError};
use crate::schema::{self, DATABASE_NAME};
use crate::types;

/// The compatibility level reported by default (SQL Server 2019).
pub const DEFAULT_COMPATIBILITY_LEVEL: u8 = schema::COMPATIBILITY_LEVEL as u8;

/// What the company database reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSettings {
    pub compatibility_level: u8,
    pub collation: String,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            compatibility_level: DEFAULT_COMPATIBILITY_LEVEL,
            collation: types::COLLATION_NAME.to_owned(),
        }
    }
}

const SETTINGS: &str = "standin_settings";
const DENIED: &str = "standin_denied_select";

fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM CDN.sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

fn create_tables(conn: &Connection) -> Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS CDN.{SETTINGS} (name TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS CDN.{DENIED} (login TEXT NOT NULL COLLATE NOCASE, table_name TEXT NOT NULL COLLATE NOCASE, PRIMARY KEY (login, table_name));"
    ))?;
    Ok(())
}

fn set(conn: &Connection, name: &str, value: &str) -> Result<()> {
    create_tables(conn)?;
    conn.execute(
        &format!("INSERT OR REPLACE INTO CDN.{SETTINGS} (name, value) VALUES (?1, ?2)"),
        [name, value],
    )?;
    Ok(())
}

/// The settings of the database `conn` has open (see [`crate::db::open`]);
/// the defaults when none were set.
pub fn load(conn: &Connection) -> Result<DatabaseSettings> {
    let mut settings = DatabaseSettings::default();
    if !has_table(conn, SETTINGS)? {
        return Ok(settings);
    }
    let get = |name: &str| -> Result<Option<String>> {
        Ok(conn
            .query_row(
                &format!("SELECT value FROM CDN.{SETTINGS} WHERE name = ?1"),
                [name],
                |r| r.get(0),
            )
            .optional()?)
    };
    if let Some(level) = get("compatibility_level")? {
        settings.compatibility_level = level.parse().map_err(|_| {
            Error::Other(format!(
                "stand-in setting compatibility_level = {level:?}: not 0-255"
            ))
        })?;
    }
    if let Some(collation) = get("collation")? {
        settings.collation = collation;
    }
    Ok(settings)
}

/// The compatibility level the database reports (SQL Server's are 80 for
/// 2000 … 160 for 2022).
pub fn set_compatibility_level(conn: &Connection, level: u8) -> Result<()> {
    set(conn, "compatibility_level", &level.to_string())
}

/// The database collation it reports, e.g. `SQL_Latin1_General_CP1_CI_AS`.
pub fn set_collation(conn: &Connection, collation: &str) -> Result<()> {
    if collation.is_empty()
        || !collation
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::Other(format!("not a collation name: {collation:?}")));
    }
    set(conn, "collation", collation)
}

/// `DENY SELECT ON CDN.<table> TO <login>` (`table` with or without `CDN.`;
/// logins compare case-insensitively, like SQL Server's).
pub fn deny_select(conn: &Connection, login: &str, table: &str) -> Result<()> {
    let bare = table
        .strip_prefix("CDN.")
        .or_else(|| table.strip_prefix("cdn."))
        .unwrap_or(table);
    let t = schema::find_table("CDN", bare)
        .filter(|t| !t.system)
        .ok_or_else(|| Error::Other(format!("no table CDN.{bare} in the schema")))?;
    create_tables(conn)?;
    conn.execute(
        &format!("INSERT OR IGNORE INTO CDN.{DENIED} (login, table_name) VALUES (?1, ?2)"),
        [login, t.name],
    )?;
    Ok(())
}

/// The tables (lower case) `login` may not read.
pub fn denied_select(conn: &Connection, login: &str) -> Result<HashSet<String>> {
    if !has_table(conn, DENIED)? {
        return Ok(HashSet::new());
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT table_name FROM CDN.{DENIED} WHERE login = ?1"
    ))?;
    let rows = stmt.query_map([login], |r| r.get::<_, String>(0))?;
    let mut out = HashSet::new();
    for r in rows {
        out.insert(r?.to_ascii_lowercase());
    }
    Ok(out)
}

/// Back to the defaults: level 150, Polish_CI_AS, every table readable.
pub fn reset(conn: &Connection) -> Result<()> {
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS CDN.{SETTINGS}; DROP TABLE IF EXISTS CDN.{DENIED};"
    ))?;
    Ok(())
}

/// SQL Server's error 229 for reading `table` without SELECT permission.
pub fn permission_denied(table: &str) -> SqlError {
    let mut e = SqlError::new(
        229,
        14,
        format!(
            "The SELECT permission was denied on the object '{table}', database '{DATABASE_NAME}', schema 'CDN'."
        ),
    );
    e.state = 5;
    e
}
