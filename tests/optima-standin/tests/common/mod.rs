//! Shared by the integration tests: the ERP under test and INSERTs that
//! give every column real Optima requires.
#![allow(dead_code)] // each test file uses a part

use optima_standin::erp::{self, Erp};
use optima_standin::schema;
use optima_standin::seed::SeedOptions;
use optima_standin::types::SqlType;
use tiberius::error::Error as TdsError;

/// `MSSQL_URL` when set (seeded with `optima-standin tsql --products 300
/// --seed 11`), else a fresh stand-in.
pub async fn erp() -> Erp {
    erp::erp_for_tests(SeedOptions {
        products: 300,
        seed: 11,
    })
    .await
    .expect("stand-in")
}

pub fn server_error(e: TdsError) -> (u32, String) {
    match e {
        TdsError::Server(t) => (t.code(), t.message().to_string()),
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// A unique suffix, so a real server's database can take the test again.
pub fn unique(prefix: &str) -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &u[..10]).to_uppercase()
}

/// `INSERT INTO CDN.<table> (...) [OUTPUT ...] VALUES (...)` with `given`
/// (column, T-SQL expression) and, as a client writing real Optima must,
/// every NOT NULL column without a default: '' for text, GETDATE() for dates
/// (numbers have their defaults).
pub fn full_insert(table: &str, given: &[(&str, &str)], output: &str) -> String {
    let t = schema::find_table("CDN", table).expect("table");
    let mut cols: Vec<String> = given.iter().map(|(c, _)| c.to_string()).collect();
    let mut vals: Vec<String> = given.iter().map(|(_, v)| v.to_string()).collect();
    for c in t.writable_columns() {
        if c.identity || c.nullable || c.default.is_some() {
            continue;
        }
        if given.iter().any(|(g, _)| g.eq_ignore_ascii_case(c.name)) {
            continue;
        }
        let v = match c.ty {
            SqlType::VarChar(_) => "''",
            SqlType::NVarChar(_) => "N''",
            SqlType::DateTime | SqlType::DateTime2(_) | SqlType::Date => "GETDATE()",
            _ => continue,
        };
        cols.push(c.name.to_string());
        vals.push(v.to_string());
    }
    format!(
        "INSERT INTO CDN.{table} ({}) {output} VALUES ({})",
        cols.join(", "),
        vals.join(", ")
    )
}
