//! Site time: WooCommerce reports every date twice, in the site's time zone (`date_x`) and in UTC
//! (`date_x_gmt`), both as `YYYY-MM-DDTHH:MM:SS` without an offset. The stand-in uses a fixed
//! offset (default +01:00, i.e. Warsaw winter time; no DST).
//!
//! A test can pin the clock ([`SiteClock::pin`], `WooStandin::set_clock`, `PUT
//! /__standin/clock`): every date the shop writes from then on (orders, refunds, notes,
//! products) is that instant, until it is pinned elsewhere or let go. Two refunds in the same
//! second, or a page boundary at a known time, are then a matter of course rather than luck.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};

/// WooCommerce's date format (no offset).
pub const WC_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// `pinned` when the clock runs with the wall clock.
const RUNNING: i64 = i64::MIN;

/// The site clock (fixed UTC offset in minutes).
#[derive(Debug)]
pub struct SiteClock {
    pub offset_minutes: i32,
    /// The pinned instant in microseconds since the epoch, or [`RUNNING`].
    pinned: AtomicI64,
}

impl SiteClock {
    /// A clock running with the wall clock.
    pub fn new(offset_minutes: i32) -> SiteClock {
        SiteClock {
            offset_minutes,
            pinned: AtomicI64::new(RUNNING),
        }
    }

    /// Pins "now" at `at`; `None` lets the clock run with the wall clock again.
    pub fn pin(&self, at: Option<DateTime<Utc>>) {
        let micros = at.map_or(RUNNING, |t| t.timestamp_micros());
        self.pinned.store(micros, Ordering::SeqCst);
    }

    /// The pinned instant, if any.
    pub fn pinned(&self) -> Option<DateTime<Utc>> {
        match self.pinned.load(Ordering::SeqCst) {
            RUNNING => None,
            micros => DateTime::from_timestamp_micros(micros),
        }
    }

    /// The shop's "now": the pinned instant or the wall clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.pinned().unwrap_or_else(Utc::now)
    }

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
        self.pair(self.now())
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
