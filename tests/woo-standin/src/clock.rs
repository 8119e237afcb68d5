//! Site time: WooCommerce reports every date twice, in the site's time zone (`date_x`) and in UTC
//! (`date_x_gmt`), both as `YYYY-MM-DDTHH:MM:SS` without an offset. The stand-in uses a fixed
//! offset (default +01:00, i.e. Warsaw winter time; no DST).

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};

/// WooCommerce's date format (no offset).
pub const WC_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// The site clock (fixed UTC offset in minutes).
#[derive(Debug, Clone, Copy)]
pub struct SiteClock {
    pub offset_minutes: i32,
}

impl SiteClock {
    fn offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.offset_minutes * 60)
            .or_else(|| FixedOffset::east_opt(0))
            .unwrap_or(Utc.fix())
    }

    /// `(local, gmt)` strings for an instant.
    pub fn pair(&self, t: DateTime<Utc>) -> (String, String) {
        let local = t
            .with_timezone(&self.offset())
            .format(WC_FORMAT)
            .to_string();
        (local, t.format(WC_FORMAT).to_string())
    }

    /// `(local, gmt)` for now.
    pub fn now_pair(&self) -> (String, String) {
        self.pair(Utc::now())
    }

    /// Parses a date parameter the way `rest_parse_date` accepts it: RFC 3339 with an offset, or
    /// without one. Without an offset the value is taken as GMT when `as_gmt`, else as site-local.
    /// Returns the instant in UTC.
    pub fn parse_param(&self, s: &str, as_gmt: bool) -> Option<DateTime<Utc>> {
        let s = s.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(t.with_timezone(&Utc));
        }
        let naive = NaiveDateTime::parse_from_str(s, WC_FORMAT)
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
            .ok()?;
        if as_gmt {
            Some(Utc.from_utc_datetime(&naive))
        } else {
            self.offset()
                .from_local_datetime(&naive)
                .single()
                .map(|t| t.with_timezone(&Utc))
        }
    }

    /// Parses a stored `_gmt` string back to an instant.
    pub fn parse_gmt(s: &str) -> Option<DateTime<Utc>> {
        NaiveDateTime::parse_from_str(s, WC_FORMAT)
            .ok()
            .map(|n| Utc.from_utc_datetime(&n))
    }
}
