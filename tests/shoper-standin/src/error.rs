//! Shoper's error envelope: `{"error":"<code>","error_description":"<text>"}` (the description
//! is optional), and the errors the stand-in answers (docs/platforms/shoper.md §2).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// `Provided access token is invalid` (401 `unauthorized_client`, live).
pub const INVALID_TOKEN: &str = "Provided access token is invalid";
/// `The request requires higher privileges than provided by the access token` (403, live).
pub const INSUFFICIENT_SCOPE: &str =
    "The request requires higher privileges than provided by the access token";
/// `Resource not found` (404 `invalid_request`, live).
pub const NOT_FOUND: &str = "Resource not found";

/// One refusal in Shoper's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status} {error}: {}", description.as_deref().unwrap_or(""))]
pub struct ApiError {
    pub status: u16,
    /// The `error` code (`invalid_request`, `unauthorized_client`, ...).
    pub error: String,
    /// `error_description`; None leaves the key out.
    pub description: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, error: &str, description: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.to_string(),
            description: Some(description.into()),
        }
    }

    /// An error without `error_description`.
    pub fn bare(status: u16, error: &str) -> Self {
        ApiError {
            status,
            error: error.to_string(),
            description: None,
        }
    }

    /// 400 `invalid_request` with a description.
    pub fn invalid(description: impl Into<String>) -> Self {
        ApiError::new(400, "invalid_request", description)
    }

    /// 404 `invalid_request` `Resource not found` (live; the DOCS table's `server_error` lost).
    pub fn not_found() -> Self {
        ApiError::new(404, "invalid_request", NOT_FOUND)
    }

    /// 405 `invalid_request` (DOCS table; the description is the stand-in's).
    pub fn method_not_allowed() -> Self {
        ApiError::new(405, "invalid_request", "Method not allowed")
    }

    /// 401 `unauthorized_client` `Provided access token is invalid` (live).
    pub fn invalid_token(description: &str) -> Self {
        ApiError::new(401, "unauthorized_client", description)
    }

    /// 403 `insufficient_scope` (live text).
    pub fn insufficient_scope() -> Self {
        ApiError::new(403, "insufficient_scope", INSUFFICIENT_SCOPE)
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("error".into(), json!(self.error));
        if let Some(d) = &self.description {
            m.insert("error_description".into(), json!(d));
        }
        Value::Object(m)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body())
    }
}

/// A JSON answer (`application/json`) with any status.
pub fn json_response(status: u16, v: &Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (code, v.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Validation clauses, answered as Shoper does: 400 `invalid_request` with one Polish clause per
/// field joined by `; ` (`Wartość pola 'email' jest niepoprawna: Pole wymagane; ...`).
#[derive(Debug, Default)]
pub struct Invalid(Vec<String>);

impl Invalid {
    pub fn new() -> Self {
        Invalid(Vec::new())
    }

    /// `Wartość pola '<field>' jest niepoprawna: <reason>`.
    pub fn field(&mut self, field: &str, reason: impl std::fmt::Display) {
        self.0
            .push(format!("Wartość pola '{field}' jest niepoprawna: {reason}"));
    }

    /// `Pole wymagane` for a missing field.
    pub fn required(&mut self, field: &str) {
        self.field(field, "Pole wymagane");
    }

    /// `Nie znaleziono wartości '<v>'` for a reference to a missing object.
    pub fn missing_ref(&mut self, field: &str, value: impl std::fmt::Display) {
        self.field(field, format!("Nie znaleziono wartości '{value}'"));
    }

    /// A free clause (e.g. `Wartość 'x@y' już istnieje`).
    pub fn clause(&mut self, text: impl Into<String>) {
        self.0.push(text.into());
    }

    /// `Ok(())` when nothing was wrong, else the 400.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(self.0.join("; ")))
        }
    }
}
