//! The real SQL Server path: the stand-in's schema and seed as one T-SQL
//! script, so a SQL Server gets the identical database. The data is seeded
//! into a temporary SQLite file and dumped as INSERTs, so both hold the same
//! rows.

use std::io::Write;
use std::sync::Arc;

use crate::db;
use crate::error::Result;
use crate::schema::{self, DATABASE_NAME};
use crate::seed::{SeedOptions, seed_database};

/// Writes the DDL (`schema_only`) or the DDL and the seed data.
pub fn write_script<W: Write>(out: &mut W, opts: &SeedOptions, schema_only: bool) -> Result<()> {
    writeln!(
        out,
        "-- optima-standin: Comarch ERP Optima company database for tests."
    )?;
    writeln!(
        out,
        "-- Run in an empty database, e.g. CREATE DATABASE [{DATABASE_NAME}] COLLATE Polish_CI_AS; USE [{DATABASE_NAME}];"
    )?;
    writeln!(out, "SET NOCOUNT ON;\nGO")?;
    out.write_all(schema::tsql_ddl().as_bytes())?;
    if schema_only {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("seed.sqlite");
    seed_database(&path, opts)?;
    let conn = db::open(&path, Arc::new(Default::default()))?;
    writeln!(
        out,
        "\n-- Seed: {} products, seed {}.",
        opts.products, opts.seed
    )?;
    for t in schema::cdn_tables() {
        // Computed columns are not written (SQL Server refuses: 271).
        let written: Vec<&crate::schema::Column> = t.writable_columns().collect();
        let cols: Vec<&str> = written.iter().map(|c| c.name).collect();
        let list = cols
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut st = conn.prepare(&format!("SELECT {list} FROM CDN.\"{}\" ORDER BY 1", t.name))?;
        let mut rows = st.query([])?;
        let identity = t.identity().is_some();
        if identity {
            writeln!(out, "SET IDENTITY_INSERT CDN.[{}] ON;", t.name)?;
        }
        let header = format!(
            "INSERT INTO CDN.[{}] ({}) VALUES\n",
            t.name,
            cols.iter()
                .map(|c| format!("[{c}]"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut batch: Vec<String> = Vec::new();
        let flush = |out: &mut W, batch: &mut Vec<String>| -> Result<()> {
            if !batch.is_empty() {
                out.write_all(header.as_bytes())?;
                out.write_all(batch.join(",\n").as_bytes())?;
                out.write_all(b";\n")?;
                batch.clear();
            }
            Ok(())
        };
        while let Some(r) = rows.next()? {
            let mut vals = Vec::with_capacity(cols.len());
            for (i, c) in written.iter().enumerate() {
                let v = c.ty.convert(r.get_ref(i)?)?;
                vals.push(v.tsql_literal());
            }
            batch.push(format!("({})", vals.join(", ")));
            if batch.len() == 500 {
                flush(out, &mut batch)?;
            }
        }
        flush(out, &mut batch)?;
        if identity {
            writeln!(out, "SET IDENTITY_INSERT CDN.[{}] OFF;", t.name)?;
        }
        writeln!(out, "GO")?;
    }
    Ok(())
}
