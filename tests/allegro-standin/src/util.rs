//! Shared helpers: Allegro's error bodies (`ErrorsHolder`, `AuthError`), JSON answers with
//! Allegro's media types, query/form parsing, ids, money and time formatting.

use std::str::FromStr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// `application/vnd.allegro.public.v1+json`
pub const VND: &str = "application/vnd.allegro.public.v1+json";
/// `application/vnd.allegro.beta.v1+json` (customer returns)
pub const BETA: &str = "application/vnd.allegro.beta.v1+json";
/// Content type of the OAuth endpoints' answers.
pub const OAUTH_JSON: &str = "application/json;charset=UTF-8";

/// One business error, answered as `{"errors":[{code,message,details,path,userMessage,metadata}]}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("HTTP {status} {code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    pub path: Option<String>,
    pub user_message: Option<String>,
}

impl ApiError {
    /// An error whose `userMessage` repeats `message`; `details` and `path` null.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError {
            status,
            code: code.to_string(),
            user_message: Some(message.clone()),
            message,
            details: None,
            path: None,
        }
    }

    /// 422 `VALIDATION_ERROR`.
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::new(422, "VALIDATION_ERROR", message)
    }

    /// 400 `VALIDATION_ERROR` (bad query parameters on some resources).
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "VALIDATION_ERROR", message)
    }

    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(404, code, message)
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn with_user_message(mut self, m: Option<String>) -> Self {
        self.user_message = m;
        self
    }

    pub fn with_details(mut self, d: impl Into<String>) -> Self {
        self.details = Some(d.into());
        self
    }

    /// The error object (one element of `errors`).
    pub fn item(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "path": self.path,
            "userMessage": self.user_message,
            "metadata": {},
        })
    }

    /// The whole `ErrorsHolder` body.
    pub fn body(&self) -> Value {
        json!({ "errors": [self.item()] })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        vnd_json(self.status, &self.body())
    }
}

/// JSON answer with `Content-Type: application/vnd.allegro.public.v1+json`.
pub fn vnd_json(status: u16, v: &Value) -> Response {
    typed_json(status, v, VND)
}

/// JSON answer with the given content type.
pub fn typed_json(status: u16, v: &Value, content_type: &'static str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (code, v.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// `{"error": e, "error_description": d}` (the OAuth / `AuthError` shape).
pub fn auth_error(status: u16, error: &str, description: Option<&str>) -> Response {
    let body = match description {
        Some(d) => json!({"error": error, "error_description": d}),
        None => json!({"error": error}),
    };
    typed_json(status, &body, OAUTH_JSON)
}

/// `application/x-www-form-urlencoded` / query string pairs, in order, percent-decoded.
#[derive(Debug, Clone, Default)]
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

    /// Every value of `name` (repeatable parameters; comma-separated values are split too).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// An integer parameter within `min..=max`; `Ok(default)` when absent.
    pub fn int(
        &self,
        name: &str,
        default: u64,
        min: u64,
        max: u64,
        status: u16,
    ) -> Result<u64, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let msg = || format!("Parameter '{name}' must be an integer between {min} and {max}");
        let n: i64 = raw
            .trim()
            .parse()
            .map_err(|_| ApiError::new(status, "VALIDATION_ERROR", msg()))?;
        if n < min as i64 || n > max as i64 {
            return Err(ApiError::new(status, "VALIDATION_ERROR", msg()));
        }
        Ok(n as u64)
    }

    /// A date-time parameter (RFC 3339).
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => DateTime::parse_from_rfc3339(raw)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| {
                    ApiError::new(
                        400,
                        "VALIDATION_ERROR",
                        format!("Parameter '{name}' must be an ISO 8601 date-time"),
                    )
                }),
        }
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

/// RFC 3339 UTC with milliseconds and `Z` (`2018-10-12T10:12:32.321Z`).
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Money as Allegro writes it: `{"amount":"123.45","currency":"PLN"}`.
pub fn money(amount: Decimal, currency: &str) -> Value {
    json!({"amount": amount_str(amount), "currency": currency})
}

/// `123.45` (always two decimals).
pub fn amount_str(d: Decimal) -> String {
    let mut d = d.round_dp(2);
    d.rescale(2);
    d.to_string()
}

/// Parses a `Price` object (`amount` a string with at most two decimals, > 0; `currency` three
/// letters). `Err` names what is wrong.
pub fn parse_price(v: &Value) -> Result<(Decimal, String), String> {
    let amount = v
        .get("amount")
        .and_then(Value::as_str)
        .ok_or("price.amount must be a string such as \"12.34\"")?;
    let d = Decimal::from_str(amount.trim())
        .map_err(|_| format!("price.amount '{amount}' is not a number"))?;
    if d.scale() > 2 {
        return Err(format!(
            "price.amount '{amount}' has more than 2 decimal places"
        ));
    }
    if d <= Decimal::ZERO {
        return Err(format!("price.amount '{amount}' must be greater than 0"));
    }
    let currency = v
        .get("currency")
        .and_then(Value::as_str)
        .unwrap_or("PLN")
        .to_string();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "price.currency '{currency}' is not a currency code"
        ));
    }
    Ok((d, currency))
}

/// A random UUID (v4) as text.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `s` is a UUID in the hyphenated form.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// Random lowercase letters and digits.
pub fn random_code(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() < len {
                out.push(ALPHABET[(*b as usize) % ALPHABET.len()] as char);
            }
        }
    }
    out
}

/// Random decimal digits (first one non-zero).
pub fn random_digits(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() < len {
                let d = if out.is_empty() { 1 + b % 9 } else { b % 10 };
                out.push((b'0' + d) as char);
            }
        }
    }
    out
}

/// Eight hex characters (a checkout-form `revision`).
pub fn revision() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}
