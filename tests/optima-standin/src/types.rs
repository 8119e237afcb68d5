//! SQL Server data types ([`SqlType`]) and values ([`Value`]), and the
//! conversions between them and SQLite's storage classes.
//!
//! Storage conventions in SQLite: integers as INTEGER, decimals in columns
//! of NUMERIC affinity (exact for the 15 significant digits Optima uses, and
//! always rounded to the column's scale on the way out), strings as TEXT,
//! datetimes as ISO text `YYYY-MM-DD HH:MM:SS.fff` (sortable), GUIDs as
//! upper-case text.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use rusqlite::types::ValueRef;
use rust_decimal::Decimal;
use std::fmt;
use std::str::FromStr;

use crate::error::SqlError;

/// The collation every string column carries: Polish_CI_AS (LCID 0x0415,
/// case-insensitive, kana- and width-insensitive, code page 1250).
pub const COLLATION: [u8; 5] = [0x15, 0x04, 0xD0, 0x00, 0x00];
/// Its name, as `SERVERPROPERTY('Collation')` reports it.
pub const COLLATION_NAME: &str = "Polish_CI_AS";

/// A SQL Server column type. `None` as a length means `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlType {
    Int,
    BigInt,
    SmallInt,
    TinyInt,
    Bit,
    Decimal(u8, u8),
    Float,
    VarChar(Option<u16>),
    NVarChar(Option<u16>),
    DateTime,
    DateTime2(u8),
    Date,
    UniqueIdentifier,
    VarBinary(Option<u16>),
    /// sql_variant (what SERVERPROPERTY returns); holds strings here.
    Variant,
}

impl SqlType {
    /// Parses a declared type as written in DDL (`decimal(15, 2)`,
    /// `NVARCHAR(MAX)`, `INTEGER`...), as SQLite's `decltype` returns it.
    pub fn parse(decl: &str) -> Option<SqlType> {
        let d = decl.trim().to_ascii_lowercase();
        let (base, args) = match d.find('(') {
            Some(i) => (
                d[..i].trim().to_string(),
                d[i + 1..].trim_end_matches(')').trim().to_string(),
            ),
            None => (d.clone(), String::new()),
        };
        let nums: Vec<&str> = args
            .split(',')
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        let len = |default: u16| -> Option<Option<u16>> {
            match nums.first() {
                None => Some(Some(default)),
                Some(&"max") | Some(&"-1") => Some(None),
                Some(n) => n.parse::<u16>().ok().map(Some),
            }
        };
        Some(match base.as_str() {
            "int" | "integer" => SqlType::Int,
            "bigint" => SqlType::BigInt,
            "smallint" => SqlType::SmallInt,
            "tinyint" => SqlType::TinyInt,
            "bit" => SqlType::Bit,
            "decimal" | "numeric" => {
                let p = nums.first().and_then(|n| n.parse().ok()).unwrap_or(18);
                let s = nums.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                if p == 0 || p > 38 || s > p {
                    return None;
                }
                SqlType::Decimal(p, s)
            }
            "money" => SqlType::Decimal(19, 4),
            "float" | "real" => SqlType::Float,
            "varchar" | "char" => SqlType::VarChar(len(1)?),
            "nvarchar" | "nchar" | "sysname" => {
                if base == "sysname" {
                    SqlType::NVarChar(Some(128))
                } else {
                    SqlType::NVarChar(len(1)?)
                }
            }
            "datetime" | "smalldatetime" => SqlType::DateTime,
            "datetime2" => {
                SqlType::DateTime2(nums.first().and_then(|n| n.parse().ok()).unwrap_or(7))
            }
            "date" => SqlType::Date,
            "uniqueidentifier" => SqlType::UniqueIdentifier,
            "varbinary" | "binary" => SqlType::VarBinary(len(1)?),
            "sql_variant" => SqlType::Variant,
            _ => return None,
        })
    }

    /// The type as T-SQL writes it.
    pub fn sql_name(&self) -> String {
        let l = |n: &Option<u16>| match n {
            Some(n) => n.to_string(),
            None => "max".into(),
        };
        match self {
            SqlType::Int => "int".into(),
            SqlType::BigInt => "bigint".into(),
            SqlType::SmallInt => "smallint".into(),
            SqlType::TinyInt => "tinyint".into(),
            SqlType::Bit => "bit".into(),
            SqlType::Decimal(p, s) => format!("decimal({p},{s})"),
            SqlType::Float => "float".into(),
            SqlType::VarChar(n) => format!("varchar({})", l(n)),
            SqlType::NVarChar(n) => format!("nvarchar({})", l(n)),
            SqlType::DateTime => "datetime".into(),
            SqlType::DateTime2(s) => format!("datetime2({s})"),
            SqlType::Date => "date".into(),
            SqlType::UniqueIdentifier => "uniqueidentifier".into(),
            SqlType::VarBinary(n) => format!("varbinary({})", l(n)),
            SqlType::Variant => "sql_variant".into(),
        }
    }

    /// The type as declared in SQLite DDL (SQLite takes no `max`: `-1`).
    pub fn sqlite_decl(&self) -> String {
        self.sql_name().replace("(max)", "(-1)").to_uppercase()
    }

    pub fn is_string(&self) -> bool {
        matches!(self, SqlType::VarChar(_) | SqlType::NVarChar(_))
    }

    /// Maximum length in characters for strings (None: max or not a string).
    pub fn max_chars(&self) -> Option<u16> {
        match self {
            SqlType::VarChar(n) | SqlType::NVarChar(n) => *n,
            _ => None,
        }
    }

    /// The integer range of an integer type.
    pub fn int_range(&self) -> Option<(i64, i64)> {
        match self {
            SqlType::Int => Some((i32::MIN as i64, i32::MAX as i64)),
            SqlType::BigInt => Some((i64::MIN, i64::MAX)),
            SqlType::SmallInt => Some((i16::MIN as i64, i16::MAX as i64)),
            SqlType::TinyInt => Some((0, 255)),
            SqlType::Bit => Some((0, 1)),
            _ => None,
        }
    }

    /// Converts a SQLite value into a value of this type, as SQL Server would
    /// convert it on output (rounding decimals to the scale).
    pub fn convert(&self, v: ValueRef<'_>) -> Result<Value, SqlError> {
        if let ValueRef::Null = v {
            return Ok(Value::Null);
        }
        let text = |v: ValueRef<'_>| -> String {
            match v {
                ValueRef::Integer(i) => i.to_string(),
                ValueRef::Real(f) => f.to_string(),
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                ValueRef::Blob(b) => String::from_utf8_lossy(b).into_owned(),
                ValueRef::Null => String::new(),
            }
        };
        match self {
            SqlType::Int | SqlType::BigInt | SqlType::SmallInt | SqlType::TinyInt => {
                let i = match v {
                    ValueRef::Integer(i) => i,
                    ValueRef::Real(f) => f.trunc() as i64,
                    other => {
                        let t = text(other);
                        t.trim()
                            .parse::<i64>()
                            .map_err(|_| SqlError::conversion(&t, &self.sql_name()))?
                    }
                };
                let (lo, hi) = self.int_range().unwrap_or((i64::MIN, i64::MAX));
                if i < lo || i > hi {
                    return Err(SqlError::new(
                        8115,
                        16,
                        format!(
                            "Arithmetic overflow error converting expression to data type {}.",
                            self.sql_name()
                        ),
                    ));
                }
                Ok(Value::Int(i))
            }
            SqlType::Bit => Ok(Value::Bit(match v {
                ValueRef::Integer(i) => i != 0,
                ValueRef::Real(f) => f != 0.0,
                other => {
                    let t = text(other);
                    match t.trim().to_ascii_lowercase().as_str() {
                        "1" | "true" => true,
                        "0" | "false" => false,
                        _ => return Err(SqlError::conversion(&t, "bit")),
                    }
                }
            })),
            SqlType::Decimal(p, s) => {
                let d = match v {
                    ValueRef::Integer(i) => Decimal::from(i),
                    other => {
                        let t = text(other);
                        parse_decimal(&t)
                            .ok_or_else(|| SqlError::conversion(&t, &self.sql_name()))?
                    }
                };
                Ok(Value::Decimal(fit_decimal(d, *p, *s)?))
            }
            SqlType::Float => Ok(Value::Float(match v {
                ValueRef::Integer(i) => i as f64,
                ValueRef::Real(f) => f,
                other => {
                    let t = text(other);
                    t.trim()
                        .parse()
                        .map_err(|_| SqlError::conversion(&t, "float"))?
                }
            })),
            SqlType::VarChar(_) | SqlType::NVarChar(_) | SqlType::Variant => {
                Ok(Value::Str(text(v)))
            }
            SqlType::DateTime | SqlType::DateTime2(_) | SqlType::Date => {
                let t = text(v);
                let dt = parse_datetime(&t).ok_or_else(|| {
                    SqlError::new(
                        241,
                        16,
                        "Conversion failed when converting date and/or time from character string.",
                    )
                })?;
                Ok(match self {
                    SqlType::Date => Value::Date(dt.date()),
                    _ => Value::DateTime(dt),
                })
            }
            SqlType::UniqueIdentifier => {
                let t = text(v);
                let g = uuid::Uuid::parse_str(t.trim()).map_err(|_| {
                    SqlError::new(
                        8169,
                        16,
                        "Conversion failed when converting from a character string to uniqueidentifier.",
                    )
                })?;
                Ok(Value::Guid(g))
            }
            SqlType::VarBinary(_) => Ok(Value::Bytes(match v {
                ValueRef::Blob(b) => b.to_vec(),
                other => text(other).into_bytes(),
            })),
        }
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql_name())
    }
}

/// Parses decimal text, including the exponent form SQLite may print.
pub fn parse_decimal(t: &str) -> Option<Decimal> {
    let t = t.trim();
    Decimal::from_str(t)
        .ok()
        .or_else(|| Decimal::from_scientific(t).ok())
        .or_else(|| {
            t.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(|f| Decimal::from_str(&format!("{f}")).ok())
        })
}

/// Rounds to the scale and checks the precision, as SQL Server does when a
/// value is stored in or converted to decimal(p,s).
pub fn fit_decimal(d: Decimal, p: u8, s: u8) -> Result<Decimal, SqlError> {
    let mut r = d.round_dp_with_strategy(
        s as u32,
        rust_decimal::RoundingStrategy::MidpointAwayFromZero,
    );
    r.rescale(s as u32);
    let int_digits = p.saturating_sub(s) as u32;
    let limit = Decimal::from_i128_with_scale(10i128.pow(int_digits.min(28)), 0);
    if int_digits < 29 && r.abs().trunc() >= limit {
        return Err(SqlError::overflow(&format!("numeric({p},{s})")));
    }
    Ok(r)
}

/// Parses the datetime text forms the stand-in stores or accepts.
pub fn parse_datetime(t: &str) -> Option<NaiveDateTime> {
    let t = t.trim();
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y%m%d %H:%M:%S%.f",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Some(d);
        }
    }
    for f in ["%Y-%m-%d", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return Some(d.and_time(NaiveTime::MIN));
        }
    }
    None
}

/// The storage form of a datetime: `YYYY-MM-DD HH:MM:SS.fff`.
pub fn format_datetime(d: &NaiveDateTime) -> String {
    d.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// Rounds to SQL Server datetime's 1/300 s ticks.
pub fn round_to_datetime(d: &NaiveDateTime) -> NaiveDateTime {
    let nanos = d.time().nanosecond() as i64;
    let ticks = (nanos * 300 + 500_000_000) / 1_000_000_000;
    let base = d.with_nanosecond(0).unwrap_or(*d);
    base + chrono::Duration::nanoseconds(ticks * 1_000_000_000 / 300)
}

/// A value, as decoded from an RPC parameter or converted for output.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Bit(bool),
    Decimal(Decimal),
    Float(f64),
    Str(String),
    DateTime(NaiveDateTime),
    Date(NaiveDate),
    Guid(uuid::Uuid),
    Bytes(Vec<u8>),
}

impl Value {
    /// The value as SQLite binds it.
    pub fn to_sqlite(&self) -> rusqlite::types::Value {
        use rusqlite::types::Value as V;
        match self {
            Value::Null => V::Null,
            Value::Int(i) => V::Integer(*i),
            Value::Bit(b) => V::Integer(*b as i64),
            Value::Decimal(d) => {
                if d.fract().is_zero()
                    && let Ok(i) = i64::try_from(d.trunc())
                {
                    return V::Integer(i);
                }
                V::Real(d.to_string().parse::<f64>().unwrap_or(0.0))
            }
            Value::Float(f) => V::Real(*f),
            Value::Str(s) => V::Text(s.clone()),
            Value::DateTime(d) => V::Text(format_datetime(d)),
            Value::Date(d) => V::Text(d.format("%Y-%m-%d").to_string()),
            Value::Guid(g) => V::Text(g.to_string().to_uppercase()),
            Value::Bytes(b) => V::Blob(b.clone()),
        }
    }

    /// T-SQL literal text, for generated scripts.
    pub fn tsql_literal(&self) -> String {
        match self {
            Value::Null => "NULL".into(),
            Value::Int(i) => i.to_string(),
            Value::Bit(b) => (*b as u8).to_string(),
            Value::Decimal(d) => d.to_string(),
            Value::Float(f) => format!("{f:?}"),
            Value::Str(s) => format!("N'{}'", s.replace('\'', "''")),
            Value::DateTime(d) => format!("'{}'", d.format("%Y-%m-%dT%H:%M:%S%.3f")),
            Value::Date(d) => format!("'{}'", d.format("%Y-%m-%d")),
            Value::Guid(g) => format!("'{}'", g.to_string().to_uppercase()),
            Value::Bytes(b) => {
                let mut s = String::from("0x");
                for x in b {
                    s.push_str(&format!("{x:02X}"));
                }
                s
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_declared_types() {
        assert_eq!(
            SqlType::parse("DECIMAL(15, 2)"),
            Some(SqlType::Decimal(15, 2))
        );
        assert_eq!(
            SqlType::parse("nvarchar(max)"),
            Some(SqlType::NVarChar(None))
        );
        assert_eq!(SqlType::parse("INTEGER"), Some(SqlType::Int));
        assert_eq!(SqlType::parse("geography"), None);
    }

    #[test]
    fn decimal_rounds_and_overflows() {
        let d = Decimal::from_str("12.345").unwrap();
        assert_eq!(fit_decimal(d, 15, 2).unwrap().to_string(), "12.35");
        let big = Decimal::from_str("1000").unwrap();
        assert_eq!(fit_decimal(big, 5, 2).unwrap_err().number, 8115);
        assert_eq!(
            SqlType::Decimal(17, 4)
                .convert(ValueRef::Real(0.1 + 0.2))
                .unwrap(),
            Value::Decimal(Decimal::from_str("0.3000").unwrap())
        );
    }
}
