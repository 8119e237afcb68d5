//! Rows as Optima's application writes them, for the seed and the simulator
//! (never for what arrives over TDS: a client gets SQL Server's refusals).
//! [`insert`] fills every NOT NULL column the caller did not name the way
//! the application does: `''` for text, the document's date (or now) for
//! dates, now for the `*_TS_*` stamps, a fresh GUID for `*_ImportRowId`
//! (a unique index in Optima, which holds one NULL at most), and leaves the
//! numeric columns to their defaults.

use chrono::NaiveDateTime;
use rusqlite::types::Value as SV;
use rusqlite::{Connection, ToSql};

use crate::error::{Error, Result};
use crate::schema::{self, Column};
use crate::types::{SqlType, format_datetime};

fn now() -> NaiveDateTime {
    chrono::Local::now().naive_local()
}

/// Inserts one row into `table` (`CDN.TraNag` or `TraNag`) with `values`,
/// filling the rest (dates: now); returns the new row's id (rowid).
pub fn insert(conn: &Connection, table: &str, values: &[(&str, &dyn ToSql)]) -> Result<i64> {
    insert_at(conn, table, values, now())
}

/// [`insert`] with `date` for the unnamed NOT NULL dates other than the
/// `*_TS_*` stamps (a document's `TrN_DataWys`, `TrN_Termin`, ...).
pub fn insert_at(
    conn: &Connection,
    table: &str,
    values: &[(&str, &dyn ToSql)],
    date: NaiveDateTime,
) -> Result<i64> {
    let bare = table.strip_prefix("CDN.").unwrap_or(table);
    let t = schema::find_table("CDN", bare)
        .ok_or_else(|| Error::Other(format!("no table CDN.{bare}")))?;
    for (name, _) in values {
        if t.column(name).is_none() {
            return Err(Error::Other(format!("no column {name} in CDN.{bare}")));
        }
    }
    let stamp = format_datetime(&now());
    let dated = format_datetime(&date);
    let mut names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
    let mut filled: Vec<SV> = Vec::new();
    let mut filled_names: Vec<&str> = Vec::new();
    for c in t.writable_columns() {
        if c.identity || names.iter().any(|n| n.eq_ignore_ascii_case(c.name)) {
            continue;
        }
        if let Some(v) = fill(c, &stamp, &dated) {
            filled_names.push(c.name);
            filled.push(v);
        }
    }
    names.extend(filled_names);
    let mut params: Vec<&dyn ToSql> = values.iter().map(|(_, v)| *v).collect();
    params.extend(filled.iter().map(|v| v as &dyn ToSql));
    let cols = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let marks = (1..=names.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("INSERT INTO CDN.\"{}\" ({cols}) VALUES ({marks})", t.name);
    conn.prepare_cached(&sql)?.execute(params.as_slice())?;
    Ok(conn.last_insert_rowid())
}

/// What the application writes into a column the caller did not name.
fn fill(c: &Column, stamp: &str, dated: &str) -> Option<SV> {
    let lower = c.name.to_ascii_lowercase();
    if lower.ends_with("_importrowid") || lower.ends_with("_importrowid2") {
        return Some(SV::Text(uuid::Uuid::new_v4().to_string().to_uppercase()));
    }
    if c.nullable || c.default.is_some() {
        return None;
    }
    Some(match c.ty {
        SqlType::VarChar(_) | SqlType::NVarChar(_) | SqlType::Variant => SV::Text(String::new()),
        SqlType::DateTime | SqlType::DateTime2(_) | SqlType::Date => {
            if lower.contains("_ts_") {
                SV::Text(stamp.to_string())
            } else {
                SV::Text(dated.to_string())
            }
        }
        SqlType::VarBinary(_) => SV::Blob(Vec::new()),
        SqlType::UniqueIdentifier => SV::Text(uuid::Uuid::new_v4().to_string().to_uppercase()),
        // Numbers have their defaults (0 where the schema lists none).
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fills_what_the_caller_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("o.sqlite"), Arc::default()).unwrap();
        let id = insert(
            &conn,
            "CDN.Kontrahenci",
            &[("Knt_Kod", &"K1"), ("Knt_Nazwa1", &"Firma")],
        )
        .unwrap();
        let (nip, guid, podmiot, ts): (String, String, i64, String) = conn
            .query_row(
                "SELECT Knt_Nip, Knt_ImportRowId, Knt_PodmiotTyp, Knt_TS_Mod FROM CDN.Kontrahenci WHERE Knt_KntId = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(nip, "");
        assert_eq!(guid.len(), 36);
        assert_eq!(podmiot, 1);
        assert!(crate::types::parse_datetime(&ts).is_some());
        assert!(insert(&conn, "CDN.Kontrahenci", &[("Knt_Nope", &1)]).is_err());
    }
}
