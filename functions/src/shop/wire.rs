//! What every platform's HTTP client reads the same way: transport
//! failures, error bodies cut for logs, `Retry-After`.

use std::time::Duration;

use chrono::Utc;
use rust_decimal::Decimal;

use super::ShopError;

/// A request that got no answer: a timeout or a dropped connection is
/// worth retrying; a request that could not be built is not.
pub fn transport_error(err: reqwest::Error) -> ShopError {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_builder() {
        return ShopError::Permanent(format!("request could not be built: {}", err.without_url()));
    } else {
        "transport error"
    };
    // Without the URL: with query_auth it carries the secret.
    let err = err.without_url();
    ShopError::Transient(format!("{what}: {}", crate::aws::describe_error(&err)))
}

/// The start of an answer's body, for an error message.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `Retry-After` as seconds ("2", "2.5") or an HTTP date; `None` when unreadable.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<Decimal>() {
        if seconds.is_sign_negative() {
            return Some(Duration::ZERO);
        }
        let millis = (seconds.checked_mul(Decimal::ONE_THOUSAND)?).ceil();
        return u64::try_from(millis).ok().map(Duration::from_millis);
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&Utc) - Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}
