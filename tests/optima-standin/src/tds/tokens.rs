//! Encoders of the server's TDS tokens: LOGINACK, ENVCHANGE, INFO, ERROR,
//! COLMETADATA, ROW, DONE/DONEINPROC/DONEPROC, RETURNSTATUS, and the value
//! encodings of each SQL Server type.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use crate::error::SqlError;
use crate::types::{COLLATION, SqlType, Value, round_to_datetime};

pub const TOKEN_COLMETADATA: u8 = 0x81;
pub const TOKEN_ERROR: u8 = 0xAA;
pub const TOKEN_INFO: u8 = 0xAB;
pub const TOKEN_LOGINACK: u8 = 0xAD;
pub const TOKEN_ROW: u8 = 0xD1;
pub const TOKEN_ENVCHANGE: u8 = 0xE3;
pub const TOKEN_DONE: u8 = 0xFD;
pub const TOKEN_DONEPROC: u8 = 0xFE;
pub const TOKEN_DONEINPROC: u8 = 0xFF;
pub const TOKEN_RETURNSTATUS: u8 = 0x79;

pub const DONE_FINAL: u16 = 0x00;
pub const DONE_MORE: u16 = 0x01;
pub const DONE_ERROR: u16 = 0x02;
pub const DONE_INXACT: u16 = 0x04;
pub const DONE_COUNT: u16 = 0x10;
pub const DONE_ATTN: u16 = 0x20;

/// The name the server gives itself in ERROR/INFO tokens and @@SERVERNAME.
pub const SERVER_NAME: &str = "OPTIMA-STANDIN";
/// The version the stand-in reports (SQL Server 2019, 15.0.4000).
pub const SERVER_VERSION: [u8; 4] = [15, 0, 0x0F, 0xA0];

/// A column of a result set.
#[derive(Debug, Clone)]
pub struct ColMeta {
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
}

/// Appends tokens to a buffer.
#[derive(Debug, Default)]
pub struct Tokens {
    pub buf: Vec<u8>,
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn decimal_len(p: u8) -> u8 {
    match p {
        0..=9 => 5,
        10..=19 => 9,
        20..=28 => 13,
        _ => 17,
    }
}

fn datetime2_time_len(scale: u8) -> u8 {
    match scale {
        0..=2 => 3,
        3..=4 => 4,
        _ => 5,
    }
}

fn days_since(d: NaiveDate, base: NaiveDate) -> i64 {
    (d - base).num_days()
}

impl Tokens {
    pub fn new() -> Self {
        Tokens { buf: Vec::new() }
    }
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn b_varchar(&mut self, s: &str) {
        let units: Vec<u16> = s.encode_utf16().take(255).collect();
        self.u8(units.len() as u8);
        for u in units {
            self.u16(u);
        }
    }
    fn us_varchar(&mut self, s: &str) {
        let units: Vec<u16> = s.encode_utf16().take(65535).collect();
        self.u16(units.len() as u16);
        for u in units {
            self.u16(u);
        }
    }

    /// LOGINACK: TDS 7.4, the program name and version.
    pub fn login_ack(&mut self) {
        let name = "Microsoft SQL Server";
        let len = 1 + 4 + 1 + 2 * name.encode_utf16().count() + 4;
        self.u8(TOKEN_LOGINACK);
        self.u16(len as u16);
        self.u8(1); // SQL_TSQL
        self.buf.extend_from_slice(&0x7400_0004u32.to_be_bytes());
        self.b_varchar(name);
        self.buf.extend_from_slice(&SERVER_VERSION);
    }

    fn env_strings(&mut self, ty: u8, new: &str, old: &str) {
        let len = 1 + 1 + 2 * new.encode_utf16().count() + 1 + 2 * old.encode_utf16().count();
        self.u8(TOKEN_ENVCHANGE);
        self.u16(len as u16);
        self.u8(ty);
        self.b_varchar(new);
        self.b_varchar(old);
    }
    pub fn env_database(&mut self, new: &str, old: &str) {
        self.env_strings(1, new, old);
    }
    pub fn env_language(&mut self, new: &str) {
        self.env_strings(2, new, "");
    }
    pub fn env_packet_size(&mut self, new: u32, old: u32) {
        self.env_strings(4, &new.to_string(), &old.to_string());
    }
    pub fn env_collation(&mut self) {
        self.u8(TOKEN_ENVCHANGE);
        self.u16(1 + 1 + 5 + 1);
        self.u8(7);
        self.u8(5);
        self.buf.extend_from_slice(&COLLATION);
        self.u8(0);
    }
    pub fn env_begin_tran(&mut self, desc: u64) {
        self.u8(TOKEN_ENVCHANGE);
        self.u16(1 + 1 + 8 + 1);
        self.u8(8);
        self.u8(8);
        self.buf.extend_from_slice(&desc.to_le_bytes());
        self.u8(0);
    }
    /// ty 9 = commit, 10 = rollback.
    pub fn env_end_tran(&mut self, ty: u8, desc: u64) {
        self.u8(TOKEN_ENVCHANGE);
        self.u16(1 + 1 + 1 + 8);
        self.u8(ty);
        self.u8(0);
        self.u8(8);
        self.buf.extend_from_slice(&desc.to_le_bytes());
    }

    fn message(&mut self, token: u8, number: u32, state: u8, class: u8, text: &str) {
        let len = 4
            + 1
            + 1
            + 2
            + 2 * text.encode_utf16().count().min(65535)
            + 1
            + 2 * SERVER_NAME.len()
            + 1
            + 4;
        self.u8(token);
        self.u16(len as u16);
        self.u32(number);
        self.u8(state);
        self.u8(class);
        self.us_varchar(text);
        self.b_varchar(SERVER_NAME);
        self.b_varchar("");
        self.u32(1);
    }
    pub fn error(&mut self, e: &SqlError) {
        self.message(TOKEN_ERROR, e.number, e.state, e.class, &e.message);
    }
    pub fn info(&mut self, number: u32, text: &str) {
        self.message(TOKEN_INFO, number, 1, 0, text);
    }

    pub fn done(&mut self, token: u8, status: u16, cur_cmd: u16, rows: u64) {
        self.u8(token);
        self.u16(status);
        self.u16(cur_cmd);
        self.buf.extend_from_slice(&rows.to_le_bytes());
    }
    pub fn return_status(&mut self, v: i32) {
        self.u8(TOKEN_RETURNSTATUS);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// COLMETADATA with each column's TYPE_INFO.
    pub fn col_metadata(&mut self, cols: &[ColMeta]) {
        self.u8(TOKEN_COLMETADATA);
        self.u16(cols.len() as u16);
        for c in cols {
            self.u32(0); // user type
            let mut flags: u16 = if c.nullable { 0x01 } else { 0 };
            flags |= 0x08; // updateable: unknown
            self.u16(flags);
            self.type_info(c.ty);
            self.b_varchar(&c.name);
        }
    }

    fn type_info(&mut self, ty: SqlType) {
        match ty {
            SqlType::Int => {
                self.u8(0x26);
                self.u8(4)
            }
            SqlType::BigInt => {
                self.u8(0x26);
                self.u8(8)
            }
            SqlType::SmallInt => {
                self.u8(0x26);
                self.u8(2)
            }
            SqlType::TinyInt => {
                self.u8(0x26);
                self.u8(1)
            }
            SqlType::Bit => {
                self.u8(0x68);
                self.u8(1)
            }
            SqlType::Decimal(p, s) => {
                self.u8(0x6A);
                self.u8(decimal_len(p));
                self.u8(p);
                self.u8(s);
            }
            SqlType::Float => {
                self.u8(0x6D);
                self.u8(8)
            }
            SqlType::VarChar(n) => {
                self.u8(0xA7);
                self.u16(n.unwrap_or(0xFFFF));
                self.buf.extend_from_slice(&COLLATION);
            }
            SqlType::NVarChar(n) => {
                self.u8(0xE7);
                self.u16(n.map(|n| n.saturating_mul(2)).unwrap_or(0xFFFF));
                self.buf.extend_from_slice(&COLLATION);
            }
            SqlType::DateTime => {
                self.u8(0x6F);
                self.u8(8)
            }
            SqlType::DateTime2(s) => {
                self.u8(0x2A);
                self.u8(s)
            }
            SqlType::Date => self.u8(0x28),
            SqlType::UniqueIdentifier => {
                self.u8(0x24);
                self.u8(16)
            }
            SqlType::VarBinary(n) => {
                self.u8(0xA5);
                self.u16(n.unwrap_or(0xFFFF));
            }
            SqlType::Variant => {
                self.u8(0x62);
                self.u32(8016);
            }
        }
    }

    /// One ROW token. Values must already be converted to the column types.
    pub fn row(&mut self, cols: &[ColMeta], values: &[Value]) -> Result<(), SqlError> {
        self.u8(TOKEN_ROW);
        for (c, v) in cols.iter().zip(values) {
            self.value(c.ty, v)?;
        }
        Ok(())
    }

    fn plp(&mut self, data: Option<&[u8]>) {
        match data {
            None => self.buf.extend_from_slice(&u64::MAX.to_le_bytes()),
            Some(d) => {
                self.buf.extend_from_slice(&(d.len() as u64).to_le_bytes());
                if !d.is_empty() {
                    self.u32(d.len() as u32);
                    self.buf.extend_from_slice(d);
                }
                self.u32(0);
            }
        }
    }

    fn var_bytes(&mut self, max: Option<u16>, data: Option<&[u8]>) -> Result<(), SqlError> {
        match max {
            None => self.plp(data),
            Some(_) => match data {
                None => self.u16(0xFFFF),
                Some(d) => {
                    if d.len() > 8000 {
                        return Err(SqlError::internal("value longer than its column"));
                    }
                    self.u16(d.len() as u16);
                    self.buf.extend_from_slice(d);
                }
            },
        }
        Ok(())
    }

    fn value(&mut self, ty: SqlType, v: &Value) -> Result<(), SqlError> {
        let null = matches!(v, Value::Null);
        match ty {
            SqlType::Int | SqlType::BigInt | SqlType::SmallInt | SqlType::TinyInt => {
                let n = match ty {
                    SqlType::Int => 4,
                    SqlType::BigInt => 8,
                    SqlType::SmallInt => 2,
                    _ => 1,
                };
                match v {
                    Value::Int(i) => {
                        self.u8(n);
                        self.buf.extend_from_slice(&i.to_le_bytes()[..n as usize]);
                    }
                    _ if null => self.u8(0),
                    other => return Err(mismatch(ty, other)),
                }
            }
            SqlType::Bit => match v {
                Value::Bit(b) => {
                    self.u8(1);
                    self.u8(*b as u8)
                }
                Value::Int(i) => {
                    self.u8(1);
                    self.u8((*i != 0) as u8)
                }
                _ if null => self.u8(0),
                other => return Err(mismatch(ty, other)),
            },
            SqlType::Decimal(p, s) => match v {
                Value::Decimal(d) => {
                    let mut d = *d;
                    d.rescale(s as u32);
                    let m = d.mantissa();
                    let len = decimal_len(p);
                    self.u8(len);
                    self.u8(if m < 0 { 0 } else { 1 });
                    let bytes = m.unsigned_abs().to_le_bytes();
                    self.buf.extend_from_slice(&bytes[..(len - 1) as usize]);
                }
                _ if null => self.u8(0),
                other => return Err(mismatch(ty, other)),
            },
            SqlType::Float => match v {
                Value::Float(f) => {
                    self.u8(8);
                    self.buf.extend_from_slice(&f.to_le_bytes())
                }
                _ if null => self.u8(0),
                other => return Err(mismatch(ty, other)),
            },
            SqlType::VarChar(max) => match v {
                Value::Str(s) => {
                    let (bytes, _, _) = encoding_rs::WINDOWS_1250.encode(s);
                    self.var_bytes(max, Some(&bytes))?
                }
                _ if null => self.var_bytes(max, None)?,
                other => return Err(mismatch(ty, other)),
            },
            SqlType::NVarChar(max) => match v {
                Value::Str(s) => {
                    self.var_bytes(max.map(|m| m.saturating_mul(2)), Some(&utf16(s)))?
                }
                _ if null => self.var_bytes(max, None)?,
                other => return Err(mismatch(ty, other)),
            },
            SqlType::VarBinary(max) => match v {
                Value::Bytes(b) => self.var_bytes(max, Some(b))?,
                _ if null => self.var_bytes(max, None)?,
                other => return Err(mismatch(ty, other)),
            },
            SqlType::DateTime => match v {
                Value::DateTime(d) => self.datetime(d),
                Value::Date(d) => self.datetime(&d.and_time(chrono::NaiveTime::MIN)),
                _ if null => self.u8(0),
                other => return Err(mismatch(ty, other)),
            },
            SqlType::DateTime2(scale) => match v {
                Value::DateTime(d) => self.datetime2(d, scale),
                Value::Date(d) => self.datetime2(&d.and_time(chrono::NaiveTime::MIN), scale),
                _ if null => self.u8(0),
                other => return Err(mismatch(ty, other)),
            },
            SqlType::Date => match v {
                Value::Date(d) => self.date(d),
                Value::DateTime(d) => self.date(&d.date()),
                _ if null => self.u8(0),
                other => return Err(mismatch(ty, other)),
            },
            SqlType::Variant => match v {
                Value::Str(s) => {
                    let data = utf16(s);
                    let data = &data[..data.len().min(8000)];
                    self.u32((2 + 7 + data.len()) as u32);
                    self.u8(0xE7);
                    self.u8(7);
                    self.buf.extend_from_slice(&COLLATION);
                    self.u16(data.len() as u16);
                    self.buf.extend_from_slice(data);
                }
                _ if null => self.u32(0),
                other => return Err(mismatch(ty, other)),
            },
            SqlType::UniqueIdentifier => match v {
                Value::Guid(g) => {
                    self.u8(16);
                    let b = g.as_bytes();
                    self.buf
                        .extend_from_slice(&[b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]]);
                    self.buf.extend_from_slice(&b[8..]);
                }
                _ if null => self.u8(0),
                other => return Err(mismatch(ty, other)),
            },
        }
        Ok(())
    }

    fn datetime(&mut self, d: &NaiveDateTime) {
        let d = round_to_datetime(d);
        let base = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default();
        let days = days_since(d.date(), base) as i32;
        let t = d.time();
        let nanos_of_day =
            t.num_seconds_from_midnight() as u64 * 1_000_000_000 + t.nanosecond() as u64;
        let ticks = ((nanos_of_day * 300 + 500_000_000) / 1_000_000_000) as u32;
        self.u8(8);
        self.buf.extend_from_slice(&days.to_le_bytes());
        self.u32(ticks);
    }

    fn date_bytes(&mut self, d: &NaiveDate) {
        let base = NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default();
        let days = days_since(*d, base) as u32;
        self.buf.extend_from_slice(&days.to_le_bytes()[..3]);
    }

    fn date(&mut self, d: &NaiveDate) {
        self.u8(3);
        self.date_bytes(d);
    }

    fn datetime2(&mut self, d: &NaiveDateTime, scale: u8) {
        let tlen = datetime2_time_len(scale);
        let t = d.time();
        let nanos = t.num_seconds_from_midnight() as u64 * 1_000_000_000 + t.nanosecond() as u64;
        let units = nanos / 10u64.pow(9 - scale.min(7) as u32);
        self.u8(tlen + 3);
        self.buf
            .extend_from_slice(&units.to_le_bytes()[..tlen as usize]);
        let _ = d.year();
        self.date_bytes(&d.date());
    }
}

fn mismatch(ty: SqlType, v: &Value) -> SqlError {
    SqlError::internal(format!("cannot encode {v:?} as {ty}"))
}

impl Tokens {
    /// RETURNVALUE of an int output parameter (sp_prepare's handle).
    pub fn return_value_int(&mut self, ordinal: u16, name: &str, v: i32) {
        self.u8(0xAC);
        self.u16(ordinal);
        self.b_varchar(name);
        self.u8(0x01);
        self.u32(0);
        self.u16(0);
        self.u8(0x26);
        self.u8(4);
        self.u8(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
}
