//! Opening the company database: an in-memory main database with the file
//! attached as `CDN` (so `CDN.Towary` is a valid name), WAL mode and a busy
//! timeout for concurrent connections, the schema created when missing, the
//! catalog views (`sys`, `INFORMATION_SCHEMA`) in memory, and the SQL Server
//! functions the translator maps to (`ss_*`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{Datelike, Months, NaiveDateTime, Timelike};
use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value as SV, ValueRef};

use crate::error::{Result, SqlError};
use crate::schema::{self, DATABASE_NAME};
use crate::types::{self, SqlType, fit_decimal, format_datetime, parse_datetime};

/// The SQL Server version text `@@VERSION` returns.
pub const VERSION_TEXT: &str = "Microsoft SQL Server 2019 (RTM) - 15.0.4000.0 (X64) \n\toptima-standin (a SQL Server look-alike for tests; storage: SQLite)\n";

/// The SQLite collation of string columns: case-insensitive over all of
/// Unicode (Ł = ł), accent-sensitive (a ≠ ą), like Polish_CI_AS. Tools that
/// open the file directly must register a collation of this name.
pub const COLLATION: &str = "POLISH_CI_AS";

/// Per-session values the SQL functions read (`@@SPID`, `@@TRANCOUNT`...).
#[derive(Debug, Default)]
pub struct SessionVars {
    pub spid: i64,
    pub user: String,
    pub trancount: AtomicI64,
    pub lock_timeout: AtomicI64,
    /// `SCOPE_IDENTITY()`: the identity of the session's last INSERT into a
    /// table with one (0 = none; identities start at 1).
    pub scope_identity: AtomicI64,
}

/// Default busy timeout (SQL Server's default lock timeout is infinite; a
/// stand-in waits 30 s).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the database file for a session (TDS connection, seeder, simulator).
pub fn open(path: &Path, vars: Arc<SessionVars>) -> Result<Connection> {
    let conn = Connection::open_in_memory()?;
    conn.create_collation(COLLATION, |a, b| {
        a.chars()
            .flat_map(char::to_lowercase)
            .cmp(b.chars().flat_map(char::to_lowercase))
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let p = path.to_string_lossy().to_string();
    conn.execute("ATTACH DATABASE ?1 AS CDN", [p])?;
    let _: String = conn.query_row("PRAGMA CDN.journal_mode=WAL", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA CDN.synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
    ensure_schema(&conn)?;
    let settings = crate::settings::load(&conn)?;
    create_catalog(&conn, &settings)?;
    register_functions(&conn, vars, settings.collation)?;
    Ok(conn)
}

/// Creates the CDN tables when the file has none.
pub fn ensure_schema(conn: &Connection) -> Result<()> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM CDN.sqlite_master WHERE type='table' AND name='TraElem'",
        [],
        |r| r.get(0),
    )?;
    if n > 0 {
        // A file from before the real schema (no TrN_NumerString) cannot be
        // served: its tables are the old guesses.
        let real: i64 = conn.query_row(
            "SELECT count(*) FROM pragma_table_info('TraNag', 'CDN') WHERE name = 'TrN_NumerString'",
            [],
            |r| r.get(0),
        )?;
        if real == 0 {
            return Err(crate::error::Error::Other(
                "the database file holds an older stand-in schema; seed it again".into(),
            ));
        }
        return Ok(());
    }
    let mut ddl = String::from("BEGIN IMMEDIATE;\n");
    for t in schema::cdn_tables() {
        for s in schema::sqlite_ddl(t, "CDN") {
            ddl.push_str(&s);
            ddl.push_str(";\n");
        }
    }
    ddl.push_str("COMMIT;");
    conn.execute_batch(&ddl)?;
    Ok(())
}

fn create_catalog(conn: &Connection, settings: &crate::settings::DatabaseSettings) -> Result<()> {
    conn.execute_batch("ATTACH ':memory:' AS sys; ATTACH ':memory:' AS INFORMATION_SCHEMA;")?;
    for t in schema::tables().iter().filter(|t| t.system) {
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("\"{}\" {}", c.name, c.ty.sql_name().to_uppercase()))
            .collect();
        conn.execute_batch(&format!(
            "CREATE TABLE {}.\"{}\" ({})",
            t.schema,
            t.name,
            cols.join(", ")
        ))?;
    }
    conn.execute(
        "INSERT INTO sys.databases VALUES (?1, 5, ?2, ?3, 'ONLINE'), ('master', 1, ?4, ?5, 'ONLINE')",
        rusqlite::params![
            DATABASE_NAME,
            settings.compatibility_level,
            settings.collation,
            schema::COMPATIBILITY_LEVEL,
            types::COLLATION_NAME
        ],
    )?;
    conn.execute_batch(
        "INSERT INTO sys.schemas VALUES ('dbo', 1), ('CDN', 5), ('sys', 4), ('INFORMATION_SCHEMA', 3);",
    )?;
    for t in schema::cdn_tables() {
        conn.execute(
            "INSERT INTO sys.tables VALUES (?1, ?2, 5, 'U', 'USER_TABLE')",
            rusqlite::params![t.name, t.object_id],
        )?;
        conn.execute(
            "INSERT INTO sys.objects VALUES (?1, ?2, 5, 'U', 'USER_TABLE')",
            rusqlite::params![t.name, t.object_id],
        )?;
        conn.execute(
            "INSERT INTO INFORMATION_SCHEMA.TABLES VALUES (?1, 'CDN', ?2, 'BASE TABLE')",
            rusqlite::params![DATABASE_NAME, t.name],
        )?;
        // Optima's triggers, enabled (names only: the bodies are not public).
        for (i, trg) in t.triggers.iter().enumerate() {
            conn.execute(
                "INSERT INTO sys.triggers VALUES (?1, ?2, 1, ?3, 'TR', 'SQL_TRIGGER', 0, 0)",
                rusqlite::params![trg, t.object_id + 1 + i as i64, t.object_id],
            )?;
            conn.execute(
                "INSERT INTO sys.objects VALUES (?1, ?2, 5, 'TR', 'SQL_TRIGGER')",
                rusqlite::params![trg, t.object_id + 1 + i as i64],
            )?;
        }
        for (i, c) in t.columns.iter().enumerate() {
            let (max_len, prec, scale) = match c.ty {
                SqlType::Decimal(p, s) => (
                    match p {
                        0..=9 => 5,
                        10..=19 => 9,
                        20..=28 => 13,
                        _ => 17,
                    },
                    p as i64,
                    s as i64,
                ),
                SqlType::VarChar(n) => (n.map(|n| n as i64).unwrap_or(-1), 0, 0),
                SqlType::NVarChar(n) => (n.map(|n| 2 * n as i64).unwrap_or(-1), 0, 0),
                SqlType::Int => (4, 10, 0),
                SqlType::BigInt => (8, 19, 0),
                SqlType::SmallInt => (2, 5, 0),
                SqlType::TinyInt => (1, 3, 0),
                SqlType::DateTime => (8, 23, 3),
                _ => (8, 0, 0),
            };
            conn.execute(
                "INSERT INTO sys.columns VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                rusqlite::params![
                    t.object_id,
                    c.name,
                    i as i64 + 1,
                    max_len,
                    prec,
                    scale,
                    c.nullable,
                    c.identity
                ],
            )?;
            let base = c.ty.sql_name();
            let base = base.split('(').next().unwrap_or("").to_string();
            conn.execute(
                "INSERT INTO INFORMATION_SCHEMA.COLUMNS VALUES (?1, 'CDN', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                rusqlite::params![
                    DATABASE_NAME,
                    t.name,
                    c.name,
                    i as i64 + 1,
                    if c.nullable { "YES" } else { "NO" },
                    base,
                    c.ty.max_chars().map(|n| n as i64).or(if c.ty.is_string() { Some(-1) } else { None }),
                    if let SqlType::Decimal(p, _) = c.ty { Some(p as i64) } else { None },
                    if let SqlType::Decimal(_, s) = c.ty { Some(s as i64) } else { None },
                    c.default.as_ref().map(|d| d.definition()),
                ],
            )?;
        }
    }
    Ok(())
}

/// Wraps a [`SqlError`] so it survives SQLite's error path; see
/// [`sql_error_from_message`].
fn user_err(e: SqlError) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(Box::new(TaggedSqlError(e)))
}

#[derive(Debug)]
struct TaggedSqlError(SqlError);
impl std::fmt::Display for TaggedSqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SSERR:{}:{}:{}",
            self.0.number, self.0.class, self.0.message
        )
    }
}
impl std::error::Error for TaggedSqlError {}

/// Recovers a SQL Server error raised inside an `ss_*` function.
pub fn sql_error_from_message(msg: &str) -> Option<SqlError> {
    let rest = msg.split("SSERR:").nth(1)?;
    let mut it = rest.splitn(3, ':');
    let number = it.next()?.parse().ok()?;
    let class = it.next()?.parse().ok()?;
    Some(SqlError::new(number, class, it.next()?.to_string()))
}

fn text_arg(ctx: &Context<'_>, i: usize) -> Option<String> {
    if i >= ctx.len() {
        return None;
    }
    match ctx.get_raw(i) {
        ValueRef::Null => None,
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

fn date_arg(ctx: &Context<'_>, i: usize) -> rusqlite::Result<Option<NaiveDateTime>> {
    if i < ctx.len()
        && let ValueRef::Real(_) | ValueRef::Integer(_) = ctx.get_raw(i)
    {
        return Err(user_err(SqlError::new(
            206,
            16,
            "Operand type clash: numeric is incompatible with datetime",
        )));
    }
    match text_arg(ctx, i) {
        None => Ok(None),
        Some(t) => parse_datetime(&t).map(Some).ok_or_else(|| {
            user_err(SqlError::new(
                241,
                16,
                "Conversion failed when converting date and/or time from character string.",
            ))
        }),
    }
}

fn now_local() -> NaiveDateTime {
    chrono::Local::now().naive_local() + crate::faults::FAULTS.clock_offset()
}

fn add(unit: &str, n: i64, d: NaiveDateTime) -> Option<NaiveDateTime> {
    Some(match unit {
        "year" => add_months(d, n.checked_mul(12)?)?,
        "quarter" => add_months(d, n.checked_mul(3)?)?,
        "month" => add_months(d, n)?,
        "week" => d + chrono::Duration::try_days(n.checked_mul(7)?)?,
        "day" => d + chrono::Duration::try_days(n)?,
        "hour" => d + chrono::Duration::try_hours(n)?,
        "minute" => d + chrono::Duration::try_minutes(n)?,
        "second" => d + chrono::Duration::try_seconds(n)?,
        "millisecond" => d + chrono::Duration::try_milliseconds(n)?,
        _ => return None,
    })
}

fn add_months(d: NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
    if n >= 0 {
        d.checked_add_months(Months::new(u32::try_from(n).ok()?))
    } else {
        d.checked_sub_months(Months::new(u32::try_from(-n).ok()?))
    }
}

fn diff(unit: &str, a: NaiveDateTime, b: NaiveDateTime) -> Option<i64> {
    let months = |d: NaiveDateTime| d.year() as i64 * 12 + d.month0() as i64;
    let secs = |d: NaiveDateTime| d.and_utc().timestamp();
    Some(match unit {
        "year" => (b.year() - a.year()) as i64,
        "quarter" => (months(b) / 3) - (months(a) / 3),
        "month" => months(b) - months(a),
        "week" => (b.date() - a.date()).num_days().div_euclid(7),
        "day" => (b.date() - a.date()).num_days(),
        "hour" => secs(b).div_euclid(3600) - secs(a).div_euclid(3600),
        "minute" => secs(b).div_euclid(60) - secs(a).div_euclid(60),
        "second" => secs(b) - secs(a),
        "millisecond" => (b - a).num_milliseconds(),
        _ => return None,
    })
}

/// SUM with exact decimal arithmetic (SQLite's own SUM adds binary floats).
struct DecimalSum;

#[derive(Default)]
struct SumAcc {
    int: Option<i128>,
    dec: Option<rust_decimal::Decimal>,
}

impl rusqlite::functions::Aggregate<SumAcc, SV> for DecimalSum {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<SumAcc> {
        Ok(SumAcc::default())
    }
    fn step(&self, ctx: &mut Context<'_>, acc: &mut SumAcc) -> rusqlite::Result<()> {
        match ctx.get_raw(0) {
            ValueRef::Null => {}
            ValueRef::Integer(i) => acc.int = Some(acc.int.unwrap_or(0) + i as i128),
            other => {
                let t = match other {
                    ValueRef::Real(f) => f.to_string(),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    _ => String::new(),
                };
                let d = types::parse_decimal(&t)
                    .ok_or_else(|| user_err(SqlError::conversion(&t, "numeric")))?;
                acc.dec = Some(acc.dec.unwrap_or_default() + d);
            }
        }
        Ok(())
    }
    fn finalize(&self, _: &mut Context<'_>, acc: Option<SumAcc>) -> rusqlite::Result<SV> {
        let Some(acc) = acc else {
            return Ok(SV::Null);
        };
        Ok(match (acc.int, acc.dec) {
            (None, None) => SV::Null,
            (Some(i), None) => match i64::try_from(i) {
                Ok(i) => SV::Integer(i),
                Err(_) => {
                    return Err(user_err(SqlError::new(
                        8115,
                        16,
                        "Arithmetic overflow error converting expression to data type bigint.",
                    )));
                }
            },
            (i, Some(d)) => {
                let total = d + rust_decimal::Decimal::from_i128_with_scale(i.unwrap_or(0), 0);
                SV::Real(total.to_string().parse::<f64>().unwrap_or(0.0))
            }
        })
    }
}

fn register_functions(
    conn: &Connection,
    vars: Arc<SessionVars>,
    database_collation: String,
) -> Result<()> {
    // T-SQL LIKE (SQLite calls like(pattern, value[, escape]) for X LIKE Y).
    for n in [2, 3] {
        conn.create_scalar_function(
            "like",
            n,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                let (Some(p), Some(v)) = (text_arg(ctx, 0), text_arg(ctx, 1)) else {
                    return Ok(None);
                };
                let esc = text_arg(ctx, 2).and_then(|e| e.chars().next());
                Ok(Some(crate::sql::like::like(&p, &v, esc)))
            },
        )?;
    }
    conn.create_aggregate_function(
        "ss_sum",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        DecimalSum,
    )?;
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    let nondet = FunctionFlags::SQLITE_UTF8;
    conn.create_scalar_function("ss_now", 0, nondet, |_| Ok(format_datetime(&now_local())))?;
    conn.create_scalar_function("ss_utcnow", 0, nondet, |_| {
        Ok(format_datetime(
            &(chrono::Utc::now().naive_utc() + crate::faults::FAULTS.clock_offset()),
        ))
    })?;
    conn.create_scalar_function("ss_newid", 0, nondet, |_| {
        Ok(uuid::Uuid::new_v4().to_string().to_uppercase())
    })?;
    conn.create_scalar_function("ss_int", 2, det, |ctx| {
        let ty = SqlType::parse(&text_arg(ctx, 1).unwrap_or_default()).unwrap_or(SqlType::BigInt);
        match ty.convert(ctx.get_raw(0)) {
            Ok(types::Value::Int(i)) => Ok(SV::Integer(i)),
            Ok(types::Value::Bit(b)) => Ok(SV::Integer(b as i64)),
            Ok(_) => Ok(SV::Null),
            Err(e) => Err(user_err(e)),
        }
    })?;
    conn.create_scalar_function("ss_decimal", 3, det, |ctx| {
        let p: i64 = ctx.get(1)?;
        let s: i64 = ctx.get(2)?;
        let ty = SqlType::Decimal(p as u8, s as u8);
        match ty.convert(ctx.get_raw(0)) {
            Ok(types::Value::Decimal(d)) => {
                let d = fit_decimal(d, p as u8, s as u8).map_err(user_err)?;
                if s == 0
                    && let Ok(i) = d.to_string().parse::<i64>()
                {
                    return Ok(SV::Integer(i));
                }
                Ok(SV::Real(d.to_string().parse::<f64>().unwrap_or(0.0)))
            }
            Ok(_) => Ok(SV::Null),
            Err(e) => Err(user_err(e)),
        }
    })?;
    conn.create_scalar_function("ss_datetime", 1, det, |ctx| {
        Ok(date_arg(ctx, 0)?.map(|d| format_datetime(&d)))
    })?;
    conn.create_scalar_function("ss_date", 1, det, |ctx| {
        Ok(date_arg(ctx, 0)?.map(|d| d.format("%Y-%m-%d").to_string()))
    })?;
    conn.create_scalar_function("ss_guid", 1, det, |ctx| match text_arg(ctx, 0) {
        None => Ok(None),
        Some(t) => uuid::Uuid::parse_str(t.trim())
            .map(|g| Some(g.to_string().to_uppercase()))
            .map_err(|_| {
                user_err(SqlError::new(
                    8169,
                    16,
                    "Conversion failed when converting from a character string to uniqueidentifier.",
                ))
            }),
    })?;
    conn.create_scalar_function("ss_len", 1, det, |ctx| {
        Ok(text_arg(ctx, 0).map(|s| s.trim_end_matches(' ').chars().count() as i64))
    })?;
    conn.create_scalar_function("ss_right", 2, det, |ctx| {
        let n: Option<i64> = ctx.get(1)?;
        Ok(match (text_arg(ctx, 0), n) {
            (Some(s), Some(n)) => {
                let chars: Vec<char> = s.chars().collect();
                let n = (n.max(0) as usize).min(chars.len());
                Some(chars[chars.len() - n..].iter().collect::<String>())
            }
            _ => None,
        })
    })?;
    conn.create_scalar_function("ss_concat", -1, det, |ctx| {
        let mut s = String::new();
        for i in 0..ctx.len() {
            if let Some(t) = text_arg(ctx, i) {
                s.push_str(&t);
            }
        }
        Ok(s)
    })?;
    conn.create_scalar_function("ss_floor", 1, det, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Integer(i) => SV::Integer(i),
            ValueRef::Real(f) => SV::Real(f.floor()),
            _ => SV::Null,
        })
    })?;
    conn.create_scalar_function("ss_ceiling", 1, det, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Integer(i) => SV::Integer(i),
            ValueRef::Real(f) => SV::Real(f.ceil()),
            _ => SV::Null,
        })
    })?;
    conn.create_scalar_function("ss_dateadd", 3, det, |ctx| {
        let unit = text_arg(ctx, 0).unwrap_or_default();
        let n: Option<f64> = match ctx.get_raw(1) {
            ValueRef::Integer(i) => Some(i as f64),
            ValueRef::Real(f) => Some(f),
            ValueRef::Null => None,
            other => {
                let t = String::from_utf8_lossy(other.as_bytes().unwrap_or_default()).into_owned();
                Some(
                    t.trim()
                        .parse()
                        .map_err(|_| user_err(SqlError::conversion(&t, "int")))?,
                )
            }
        };
        let (Some(n), Some(d)) = (n, date_arg(ctx, 2)?) else {
            return Ok(None);
        };
        add(&unit, n.trunc() as i64, d)
            .map(|d| Some(format_datetime(&d)))
            .ok_or_else(|| {
                user_err(SqlError::new(
                    517,
                    16,
                    "Adding a value to a 'datetime' column caused an overflow.",
                ))
            })
    })?;
    conn.create_scalar_function("ss_datediff", 3, det, |ctx| {
        let unit = text_arg(ctx, 0).unwrap_or_default();
        let (Some(a), Some(b)) = (date_arg(ctx, 1)?, date_arg(ctx, 2)?) else {
            return Ok(None);
        };
        Ok(diff(&unit, a, b))
    })?;
    conn.create_scalar_function("ss_datepart", 2, det, |ctx| {
        let unit = text_arg(ctx, 0).unwrap_or_default();
        let Some(d) = date_arg(ctx, 1)? else {
            return Ok(None);
        };
        Ok(Some(match unit.as_str() {
            "year" => d.year() as i64,
            "quarter" => d.month0() as i64 / 3 + 1,
            "month" => d.month() as i64,
            "day" => d.day() as i64,
            "week" => d.iso_week().week() as i64,
            "hour" => d.hour() as i64,
            "minute" => d.minute() as i64,
            "second" => d.second() as i64,
            "millisecond" => (d.nanosecond() / 1_000_000) as i64,
            _ => return Ok(None),
        }))
    })?;
    let v = vars.clone();
    conn.create_scalar_function("ss_scope_identity", 0, nondet, move |_| {
        Ok(Some(v.scope_identity.load(Ordering::SeqCst)).filter(|i| *i != 0))
    })?;
    conn.create_scalar_function("ss_db_name", 0, det, |_| Ok(DATABASE_NAME))?;
    conn.create_scalar_function("ss_db_id", -1, det, |ctx| {
        Ok(match text_arg(ctx, 0) {
            None => Some(5),
            Some(n) if n.eq_ignore_ascii_case(DATABASE_NAME) => Some(5),
            Some(n) if n.eq_ignore_ascii_case("master") => Some(1),
            _ => None,
        })
    })?;
    conn.create_scalar_function("ss_serverproperty", 1, det, |ctx| {
        let p = text_arg(ctx, 0).unwrap_or_default().to_ascii_lowercase();
        Ok(match p.as_str() {
            "collation" => Some(types::COLLATION_NAME.to_string()),
            "productversion" => Some("15.0.4000.0".into()),
            "productlevel" => Some("RTM".into()),
            "edition" => Some("Developer Edition (64-bit)".into()),
            "engineedition" => Some("3".into()),
            "servername" | "machinename" => Some(crate::tds::tokens::SERVER_NAME.into()),
            "ishadrenabled" | "isclustered" | "isintegratedsecurityonly" => Some("0".into()),
            _ => None,
        })
    })?;
    conn.create_scalar_function("ss_databasepropertyex", 2, det, move |ctx| {
        let db = text_arg(ctx, 0).unwrap_or_default();
        let p = text_arg(ctx, 1).unwrap_or_default().to_ascii_lowercase();
        Ok(match p.as_str() {
            "collation" if db.eq_ignore_ascii_case(DATABASE_NAME) => {
                Some(database_collation.clone())
            }
            "collation" => Some(types::COLLATION_NAME.to_string()),
            "status" => Some("ONLINE".into()),
            "updateability" => Some("READ_WRITE".into()),
            "recovery" => Some("FULL".into()),
            _ => None,
        })
    })?;
    conn.create_scalar_function("ss_object_id", -1, det, |ctx| {
        let Some(name) = text_arg(ctx, 0) else {
            return Ok(None);
        };
        let parts: Vec<String> = name
            .split('.')
            .map(|p| {
                p.trim_matches(|c| c == '[' || c == ']' || c == '"')
                    .to_string()
            })
            .collect();
        let t = match parts.as_slice() {
            [t] => schema::find_table("dbo", t),
            [s, t] => schema::find_table(s, t),
            [db, s, t] if db.eq_ignore_ascii_case(DATABASE_NAME) => schema::find_table(s, t),
            _ => None,
        };
        let kind = text_arg(ctx, 1).map(|k| k.trim().to_ascii_uppercase());
        Ok(t.filter(|t| !t.system)
            .filter(|_| kind.as_deref().map(|k| k == "U").unwrap_or(true))
            .map(|t| t.object_id))
    })?;
    conn.create_scalar_function("ss_schema_id", -1, det, |ctx| {
        Ok(
            match text_arg(ctx, 0).map(|s| s.to_ascii_lowercase()).as_deref() {
                None | Some("dbo") => Some(1),
                Some("cdn") => Some(5),
                Some("sys") => Some(4),
                _ => None,
            },
        )
    })?;
    conn.create_scalar_function("ss_schema_name", -1, det, |ctx| {
        let id: Option<i64> = if ctx.is_empty() { Some(1) } else { ctx.get(0)? };
        Ok(match id {
            Some(1) => Some("dbo"),
            Some(5) => Some("CDN"),
            Some(4) => Some("sys"),
            _ => None,
        })
    })?;
    let v = vars.clone();
    conn.create_scalar_function("ss_user_name", 0, nondet, move |_| Ok(v.user.clone()))?;
    conn.create_scalar_function("ss_global", 1, nondet, move |ctx| {
        let name = text_arg(ctx, 0).unwrap_or_default();
        Ok(match name.as_str() {
            "@@VERSION" => SV::Text(VERSION_TEXT.into()),
            "@@SERVERNAME" => SV::Text(crate::tds::tokens::SERVER_NAME.into()),
            "@@SERVICENAME" => SV::Text("MSSQLSERVER".into()),
            "@@LANGUAGE" => SV::Text("us_english".into()),
            "@@SPID" => SV::Integer(vars.spid),
            "@@TRANCOUNT" => SV::Integer(vars.trancount.load(Ordering::SeqCst)),
            "@@LOCK_TIMEOUT" => SV::Integer(vars.lock_timeout.load(Ordering::SeqCst)),
            "@@MAX_PRECISION" => SV::Integer(38),
            "@@ERROR" => SV::Integer(0),
            "@@OPTIONS" => SV::Integer(5176),
            _ => SV::Null,
        })
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_add_and_diff_like_sql_server() {
        let d = parse_datetime("2026-01-31 10:00:00.000").unwrap();
        assert_eq!(
            format_datetime(&add("month", 1, d).unwrap()),
            "2026-02-28 10:00:00.000"
        );
        let e = parse_datetime("2026-02-01 00:00:00").unwrap();
        assert_eq!(diff("day", d, e), Some(1));
        assert_eq!(diff("month", d, e), Some(1));
    }
}
