//! Client requests after login: SQL batches, RPC calls (`sp_executesql` and
//! friends) with typed parameters, and transaction manager requests.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::Decimal;

use super::packet::Rd;
use crate::error::{Error, Result};
use crate::types::{SqlType, Value};

/// One RPC parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub ty: SqlType,
    pub value: Value,
    pub output: bool,
}

#[derive(Debug, Clone)]
pub struct RpcCall {
    /// The procedure: by id (10 = sp_executesql) or by name.
    pub proc_id: Option<u16>,
    pub proc_name: Option<String>,
    pub params: Vec<Param>,
}

impl RpcCall {
    /// The procedure's name, whichever way it was given.
    pub fn name(&self) -> String {
        match (self.proc_id, &self.proc_name) {
            (Some(10), _) => "sp_executesql".into(),
            (Some(11), _) => "sp_prepare".into(),
            (Some(12), _) => "sp_execute".into(),
            (Some(13), _) => "sp_prepexec".into(),
            (Some(15), _) => "sp_unprepare".into(),
            (Some(n), _) => format!("procedure id {n}"),
            (None, Some(n)) => n.to_ascii_lowercase(),
            (None, None) => "?".into(),
        }
    }
}

/// A SQL batch: ALL_HEADERS, then UTF-16 text.
pub fn parse_batch(data: &[u8]) -> Result<String> {
    let mut r = Rd::new(data);
    if data.len() >= 4 {
        let total = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        // ALL_HEADERS is present from TDS 7.2 on; its length is plausible.
        if total >= 4 && total <= data.len() && total < 4096 {
            r.skip_all_headers()?;
        }
    }
    let rest = r.remaining();
    r.utf16(rest / 2)
}

pub fn parse_rpc(data: &[u8]) -> Result<Vec<RpcCall>> {
    let mut r = Rd::new(data);
    r.skip_all_headers()?;
    let mut calls = Vec::new();
    while r.remaining() > 0 {
        let name_len = r.u16()?;
        let (proc_id, proc_name) = if name_len == 0xFFFF {
            (Some(r.u16()?), None)
        } else {
            (None, Some(r.utf16(name_len as usize)?))
        };
        let _flags = r.u16()?;
        let mut params = Vec::new();
        while r.remaining() > 0 {
            let b = r.buf[r.pos];
            if b == 0x80 || b == 0xFF || b == 0xFE {
                r.u8()?;
                break;
            }
            let name = r.b_varchar()?;
            let status = r.u8()?;
            let (ty, value) = read_typed_value(&mut r)?;
            params.push(Param {
                name,
                ty,
                value,
                output: status & 0x01 != 0,
            });
        }
        calls.push(RpcCall {
            proc_id,
            proc_name,
            params,
        });
    }
    Ok(calls)
}

fn read_plp(r: &mut Rd<'_>) -> Result<Option<Vec<u8>>> {
    let total = r.u64()?;
    if total == u64::MAX {
        return Ok(None);
    }
    let mut out = Vec::new();
    loop {
        let n = r.u32()? as usize;
        if n == 0 {
            break;
        }
        out.extend_from_slice(r.bytes(n)?);
    }
    Ok(Some(out))
}

fn le_int(b: &[u8]) -> i64 {
    let b = &b[..b.len().min(8)];
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    let v = i64::from_le_bytes(a);
    // sign-extend
    let bits = b.len() * 8;
    if bits < 64 {
        (v << (64 - bits)) >> (64 - bits)
    } else {
        v
    }
}

fn datetime_from(days: i64, ticks_300: u64) -> NaiveDateTime {
    let base = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default();
    let d = base + chrono::Duration::days(days);
    let nanos = (ticks_300 as i64) * 1_000_000_000 / 300;
    d.and_time(NaiveTime::MIN) + chrono::Duration::nanoseconds(nanos)
}

fn date3(b: &[u8]) -> NaiveDate {
    let days = b[0] as i64 | (b[1] as i64) << 8 | (b[2] as i64) << 16;
    NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default() + chrono::Duration::days(days)
}

fn time_n(b: &[u8], scale: u8) -> NaiveTime {
    let b = &b[..b.len().min(5)];
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    let units = u64::from_le_bytes(a);
    let nanos = units * 10u64.pow(9 - scale.min(7) as u32);
    NaiveTime::MIN + chrono::Duration::nanoseconds(nanos as i64)
}

/// Reads TYPE_INFO and then the value of one parameter.
pub fn read_typed_value(r: &mut Rd<'_>) -> Result<(SqlType, Value)> {
    let t = r.u8()?;
    let unsupported = |t: u8| Error::Protocol(format!("unsupported parameter type 0x{t:02X}"));
    match t {
        0x1F => Ok((SqlType::Int, Value::Null)),
        0x30 => Ok((SqlType::TinyInt, Value::Int(r.u8()? as i64))),
        0x32 => Ok((SqlType::Bit, Value::Bit(r.u8()? != 0))),
        0x34 => Ok((SqlType::SmallInt, Value::Int(le_int(r.bytes(2)?)))),
        0x38 => Ok((SqlType::Int, Value::Int(le_int(r.bytes(4)?)))),
        0x7F => Ok((SqlType::BigInt, Value::Int(le_int(r.bytes(8)?)))),
        0x3E => {
            let b = r.bytes(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok((SqlType::Float, Value::Float(f64::from_le_bytes(a))))
        }
        0x3B => {
            let b = r.bytes(4)?;
            Ok((
                SqlType::Float,
                Value::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
            ))
        }
        0x3D => {
            let days = le_int(r.bytes(4)?);
            let ticks = r.u32()? as u64;
            Ok((
                SqlType::DateTime,
                Value::DateTime(datetime_from(days, ticks)),
            ))
        }
        0x26 => {
            let max = r.u8()?;
            let ty = match max {
                1 => SqlType::TinyInt,
                2 => SqlType::SmallInt,
                4 => SqlType::Int,
                _ => SqlType::BigInt,
            };
            let n = r.u8()? as usize;
            if n == 0 {
                return Ok((ty, Value::Null));
            }
            if !matches!(n, 1 | 2 | 4 | 8) {
                return Err(Error::Protocol(format!("bad integer length {n}")));
            }
            let b = r.bytes(n)?;
            let v = if n == 1 { b[0] as i64 } else { le_int(b) };
            Ok((ty, Value::Int(v)))
        }
        0x68 => {
            r.u8()?;
            let n = r.u8()?;
            if n == 0 {
                return Ok((SqlType::Bit, Value::Null));
            }
            Ok((SqlType::Bit, Value::Bit(r.bytes(n as usize)?[0] != 0)))
        }
        0x6D => {
            r.u8()?;
            let n = r.u8()? as usize;
            let v = match n {
                0 => Value::Null,
                4 => {
                    let b = r.bytes(4)?;
                    Value::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
                }
                8 => {
                    let b = r.bytes(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    Value::Float(f64::from_le_bytes(a))
                }
                _ => return Err(Error::Protocol("bad float length".into())),
            };
            Ok((SqlType::Float, v))
        }
        0x6E => {
            r.u8()?;
            let n = r.u8()? as usize;
            let v = match n {
                0 => Value::Null,
                4 => Value::Decimal(Decimal::new(le_int(r.bytes(4)?), 4)),
                8 => {
                    let hi = le_int(r.bytes(4)?);
                    let lo = r.u32()? as i64;
                    Value::Decimal(Decimal::new((hi << 32) | lo, 4))
                }
                _ => return Err(Error::Protocol("bad money length".into())),
            };
            Ok((SqlType::Decimal(19, 4), v))
        }
        0x6A | 0x6C | 0x37 | 0x3F => {
            let _len = r.u8()?;
            let p = r.u8()?;
            let s = r.u8()?;
            let ty = SqlType::Decimal(p.clamp(1, 38), s.min(p.max(1)));
            let n = r.u8()? as usize;
            if n == 0 {
                return Ok((ty, Value::Null));
            }
            let b = r.bytes(n)?;
            let sign = b[0];
            let mut a = [0u8; 16];
            let mag = &b[1..];
            if mag.len() > 16 {
                return Err(Error::Protocol("bad decimal length".into()));
            }
            a[..mag.len()].copy_from_slice(mag);
            let m = u128::from_le_bytes(a);
            if m > (1u128 << 96) - 1 || s > 28 {
                return Err(Error::Protocol(
                    "decimal out of range (max 28 digits)".into(),
                ));
            }
            let mut d = Decimal::from_i128_with_scale(m as i128, s as u32);
            if sign == 0 {
                d.set_sign_negative(true);
            }
            Ok((ty, Value::Decimal(d)))
        }
        0x6F => {
            r.u8()?;
            let n = r.u8()? as usize;
            let v = match n {
                0 => Value::Null,
                4 => {
                    let days = r.u16()? as i64;
                    let mins = r.u16()? as u64;
                    Value::DateTime(datetime_from(days, mins * 60 * 300))
                }
                8 => {
                    let days = le_int(r.bytes(4)?);
                    let ticks = r.u32()? as u64;
                    Value::DateTime(datetime_from(days, ticks))
                }
                _ => return Err(Error::Protocol("bad datetime length".into())),
            };
            Ok((SqlType::DateTime, v))
        }
        0x28 => {
            let n = r.u8()? as usize;
            if n == 0 {
                return Ok((SqlType::Date, Value::Null));
            }
            Ok((SqlType::Date, Value::Date(date3(r.bytes(3)?))))
        }
        0x29 => {
            let scale = r.u8()?;
            let n = r.u8()? as usize;
            if n == 0 {
                return Ok((SqlType::DateTime2(scale), Value::Null));
            }
            let t = time_n(r.bytes(n)?, scale);
            let d = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default();
            Ok((SqlType::DateTime2(scale), Value::DateTime(d.and_time(t))))
        }
        0x2A | 0x2B => {
            let scale = r.u8()?;
            let n = r.u8()? as usize;
            if n == 0 {
                return Ok((SqlType::DateTime2(scale), Value::Null));
            }
            let b = r.bytes(n)?;
            let tlen = match scale {
                0..=2 => 3,
                3..=4 => 4,
                _ => 5,
            };
            if b.len() < tlen + 3 {
                return Err(Error::Protocol("bad datetime2 length".into()));
            }
            let time = time_n(&b[..tlen], scale);
            let date = date3(&b[tlen..tlen + 3]);
            let mut dt = date.and_time(time);
            if t == 0x2B && b.len() >= tlen + 5 {
                // datetimeoffset is sent in UTC; shift to its local offset.
                let off = i16::from_le_bytes([b[tlen + 3], b[tlen + 4]]) as i64;
                dt += chrono::Duration::minutes(off);
            }
            Ok((SqlType::DateTime2(scale), Value::DateTime(dt)))
        }
        0x24 => {
            r.u8()?;
            let n = r.u8()? as usize;
            if n == 0 {
                return Ok((SqlType::UniqueIdentifier, Value::Null));
            }
            let b = r.bytes(16)?;
            let mut g = [0u8; 16];
            g[..4].copy_from_slice(&[b[3], b[2], b[1], b[0]]);
            g[4..6].copy_from_slice(&[b[5], b[4]]);
            g[6..8].copy_from_slice(&[b[7], b[6]]);
            g[8..].copy_from_slice(&b[8..16]);
            Ok((
                SqlType::UniqueIdentifier,
                Value::Guid(uuid::Uuid::from_bytes(g)),
            ))
        }
        0xE7 | 0xEF | 0xA7 | 0xAF | 0xA5 | 0xAD => {
            let max = r.u16()?;
            let collation = if matches!(t, 0xE7 | 0xEF | 0xA7 | 0xAF) {
                Some(r.bytes(5)?.to_vec())
            } else {
                None
            };
            let data = if max == 0xFFFF {
                read_plp(r)?
            } else {
                let n = r.u16()?;
                if n == 0xFFFF {
                    None
                } else {
                    Some(r.bytes(n as usize)?.to_vec())
                }
            };
            let len = if max == 0xFFFF { None } else { Some(max) };
            match t {
                0xE7 | 0xEF => {
                    let ty = SqlType::NVarChar(len.map(|l| (l / 2).max(1)));
                    match data {
                        None => Ok((ty, Value::Null)),
                        Some(d) => Ok((ty, Value::Str(super::packet::utf16_to_string(&d)?))),
                    }
                }
                0xA7 | 0xAF => {
                    let ty = SqlType::VarChar(len);
                    let enc = collation
                        .as_deref()
                        .map(|c| {
                            let lcid = u16::from_le_bytes([c[0], c[1]]);
                            if c.get(3).map(|f| f & 0x04 != 0).unwrap_or(false) {
                                encoding_rs::UTF_8
                            } else {
                                match lcid {
                                    0x0415 | 0x0405 | 0x040E | 0x041B | 0x0424 | 0x0418
                                    | 0x041A | 0x041C => encoding_rs::WINDOWS_1250,
                                    _ => encoding_rs::WINDOWS_1252,
                                }
                            }
                        })
                        .unwrap_or(encoding_rs::WINDOWS_1250);
                    match data {
                        None => Ok((ty, Value::Null)),
                        Some(d) => Ok((ty, Value::Str(enc.decode(&d).0.into_owned()))),
                    }
                }
                _ => {
                    let ty = SqlType::VarBinary(len);
                    match data {
                        None => Ok((ty, Value::Null)),
                        Some(d) => Ok((ty, Value::Bytes(d))),
                    }
                }
            }
        }
        other => Err(unsupported(other)),
    }
}

/// A transaction manager request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TmRequest {
    Begin,
    Commit,
    Rollback,
    Other(u16),
}

pub fn parse_tm(data: &[u8]) -> Result<TmRequest> {
    let mut r = Rd::new(data);
    r.skip_all_headers()?;
    Ok(match r.u16()? {
        5 => TmRequest::Begin,
        7 => TmRequest::Commit,
        8 => TmRequest::Rollback,
        n => TmRequest::Other(n),
    })
}
