//! Helpers: query/form parsing, Shoper's wire formats (numbers and ids as strings, `"0"/"1"`
//! flags, naive shop-local timestamps), the shop's time zone, reading request values.

use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, Utc, Weekday};
use rust_decimal::Decimal;
use serde_json::Value;

/// Query-string / form pairs, in order, percent-decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(s: &str) -> Params {
        Params(
            s.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(kv), String::new()),
                })
                .collect(),
        )
    }

    pub fn from_query(q: Option<&str>) -> Params {
        Params::parse(q.unwrap_or(""))
    }

    /// First value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Bulk `params`: a JSON object whose values are scalars or (for `filters`, `order`)
    /// objects/arrays. Scalars become their text; objects are JSON-encoded, arrays repeat the key
    /// with `[]` like PHP's `http_build_query` would not, but the server reads both.
    pub fn from_json(v: &Value) -> Result<Params, String> {
        let Value::Object(m) = v else {
            return Err("params must be an object".into());
        };
        let mut out = Vec::new();
        for (k, v) in m {
            match v {
                Value::Null => {}
                Value::String(s) => out.push((k.clone(), s.clone())),
                Value::Number(n) => out.push((k.clone(), n.to_string())),
                Value::Bool(b) => out.push((k.clone(), if *b { "1" } else { "0" }.into())),
                Value::Object(_) => out.push((k.clone(), v.to_string())),
                Value::Array(items) => {
                    for item in items {
                        let text = match item {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        out.push((format!("{k}[]"), text));
                    }
                }
            }
        }
        Ok(Params(out))
    }
}

/// Percent-decoding with `+` as space; malformed escapes are kept as they are.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Money as Shoper writes it: `"1484.28"` (two decimals).
pub fn money(d: Decimal) -> String {
    let mut d = d.round_dp(2);
    d.rescale(2);
    d.to_string()
}

/// A quantity as Shoper writes stock: `"77"`, `"1.5"` (no trailing zeros).
pub fn qty(d: Decimal) -> String {
    d.normalize().to_string()
}

/// `"0"` / `"1"`.
pub fn flag(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

/// A number read from a request body: a JSON number or a numeric string.
pub fn decimal_of(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => {
            let s = n.to_string();
            Decimal::from_str(&s)
                .ok()
                .or_else(|| Decimal::from_scientific(&s).ok())
        }
        Value::String(s) => Decimal::from_str(s.trim()).ok(),
        _ => None,
    }
}

/// A non-negative integer read from a request body (number or numeric string).
pub fn u64_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A flag read from a request body: `true/false`, `1/0`, `"1"/"0"`.
pub fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim() {
            "0" | "false" => Some(false),
            "1" | "true" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// A string read from a request body (numbers are accepted as their text).
pub fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// RFC 3339 UTC with milliseconds (the control API and the request log).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Time zones the stand-in knows: UTC, and the European zones on EU summer-time rules with
/// their standard offset in hours. Enough for `locale_timezone` (Polish shops: `Europe/Warsaw`).
const CET: &[&str] = &[
    "Europe/Warsaw",
    "Europe/Berlin",
    "Europe/Prague",
    "Europe/Bratislava",
    "Europe/Vienna",
    "Europe/Budapest",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Amsterdam",
    "Europe/Brussels",
    "Europe/Copenhagen",
    "Europe/Stockholm",
    "Europe/Oslo",
    "Europe/Zurich",
    "Europe/Ljubljana",
    "Europe/Zagreb",
];
const WET: &[&str] = &["Europe/London", "Europe/Dublin", "Europe/Lisbon"];
const EET: &[&str] = &[
    "Europe/Helsinki",
    "Europe/Kyiv",
    "Europe/Kiev",
    "Europe/Vilnius",
    "Europe/Riga",
    "Europe/Tallinn",
    "Europe/Sofia",
    "Europe/Athens",
    "Europe/Bucharest",
];

/// Whether `zone` is one the stand-in can convert to.
pub fn known_zone(zone: &str) -> bool {
    zone_rule(zone).is_some()
}

/// (standard offset in hours, observes EU summer time)
fn zone_rule(zone: &str) -> Option<(i64, bool)> {
    if matches!(zone, "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT") {
        Some((0, false))
    } else if CET.contains(&zone) {
        Some((1, true))
    } else if WET.contains(&zone) {
        Some((0, true))
    } else if EET.contains(&zone) {
        Some((2, true))
    } else {
        None
    }
}

fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    let first_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let mut d = first_next.pred_opt()?;
    while d.weekday() != Weekday::Sun {
        d = d.pred_opt()?;
    }
    Some(d)
}

/// EU summer time: from the last Sunday of March 01:00 UTC to the last Sunday of October
/// 01:00 UTC.
fn eu_summer(t: DateTime<Utc>) -> bool {
    let y = t.year();
    let start = last_sunday(y, 3).and_then(|d| d.and_hms_opt(1, 0, 0));
    let end = last_sunday(y, 10).and_then(|d| d.and_hms_opt(1, 0, 0));
    match (start, end) {
        (Some(s), Some(e)) => {
            let n = t.naive_utc();
            n >= s && n < e
        }
        _ => false,
    }
}

/// The offset of `zone` at `t` (UTC for unknown zones).
pub fn zone_offset(zone: &str, t: DateTime<Utc>) -> Duration {
    let (std, dst) = zone_rule(zone).unwrap_or((0, false));
    let extra = if dst && eu_summer(t) { 1 } else { 0 };
    Duration::hours(std + extra)
}

/// `YYYY-MM-DD HH:MM:SS` in the shop's zone (naive, as Shoper answers).
pub fn naive(t: DateTime<Utc>, zone: &str) -> String {
    (t + zone_offset(zone, t))
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// 40 lowercase hex characters (tokens and the licence key look like this).
pub fn hex40() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{a}{}", &b[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn warsaw_offsets_follow_summer_time() {
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).single();
        let summer = Utc.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).single();
        let (Some(w), Some(s)) = (winter, summer) else {
            panic!("dates")
        };
        assert_eq!(naive(w, "Europe/Warsaw"), "2026-01-15 13:00:00");
        assert_eq!(naive(s, "Europe/Warsaw"), "2026-07-15 14:00:00");
        assert_eq!(naive(s, "UTC"), "2026-07-15 12:00:00");
    }

    #[test]
    fn decode_and_money() {
        assert_eq!(decode("filters%5Border_id%5D=1+2"), "filters[order_id]=1 2");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(money(Decimal::new(5, 1)), "0.50");
        assert_eq!(qty(Decimal::new(7700, 2)), "77");
    }
}
