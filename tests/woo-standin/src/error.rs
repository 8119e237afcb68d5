//! Errors: [`StandinError`] for the library API, [`ApiError`] for WooCommerce's JSON error shape
//! `{"code": "...", "message": "...", "data": {"status": N, ...}}`.

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Errors of the library handle.
#[derive(Debug, thiserror::Error)]
pub enum StandinError {
    /// The listen address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The state file could not be read or written.
    #[error("state file {path}: {message}")]
    StateFile { path: PathBuf, message: String },
    /// The seed file could not be read.
    #[error("seed file {path}: {message}")]
    SeedFile { path: PathBuf, message: String },
    /// A library call was rejected the way the REST API would reject it.
    #[error("{0}")]
    Api(#[from] ApiError),
}

/// Result of library calls.
pub type Result<T> = std::result::Result<T, StandinError>;

/// A WooCommerce / WP REST error.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("HTTP {status} {code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// Extra members of `data` besides `status`.
    #[serde(default)]
    pub data: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            data: Map::new(),
        }
    }

    /// Adds a member to `data`.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.data.insert(key.to_string(), value);
        self
    }

    /// `woocommerce_rest_{kind}_invalid_id` / "Invalid ID.".
    pub fn invalid_id(kind: &str, status: u16) -> Self {
        ApiError::new(
            status,
            format!("woocommerce_rest_{kind}_invalid_id"),
            "Invalid ID.",
        )
    }

    /// WP's `rest_invalid_param`: `(param, message, detail code)` triples.
    pub fn invalid_params(errors: &[(String, String, String)]) -> Self {
        let names: Vec<&str> = errors.iter().map(|e| e.0.as_str()).collect();
        let mut params = Map::new();
        let mut details = Map::new();
        for (p, m, c) in errors {
            params.insert(p.clone(), Value::String(m.clone()));
            details.insert(
                p.clone(),
                json!({"code": c, "message": m, "data": Value::Null}),
            );
        }
        ApiError::new(
            400,
            "rest_invalid_param",
            format!("Invalid parameter(s): {}", names.join(", ")),
        )
        .with("params", Value::Object(params))
        .with("details", Value::Object(details))
    }

    /// One invalid parameter.
    pub fn invalid_param(param: &str, message: impl Into<String>, code: &str) -> Self {
        Self::invalid_params(&[(param.to_string(), message.into(), code.to_string())])
    }

    /// WP's `rest_missing_callback_param`.
    pub fn missing_params(params: &[&str]) -> Self {
        ApiError::new(
            400,
            "rest_missing_callback_param",
            format!("Missing parameter(s): {}", params.join(", ")),
        )
        .with("params", json!(params))
    }

    /// WP's `rest_no_route`.
    pub fn no_route() -> Self {
        ApiError::new(
            404,
            "rest_no_route",
            "No route was found matching the URL and request method.",
        )
    }

    /// The JSON body as text, members in WordPress's order (`code`, `message`, `data` with
    /// `status` first).
    pub fn to_json_text(&self) -> String {
        let mut data =
            serde_json::to_string(&json!({"status": self.status})).unwrap_or_else(|_| "{}".into());
        for (k, v) in &self.data {
            let v = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
            data = crate::json::append_member(&data, k, &v);
        }
        crate::json::object(&[
            ("code", crate::json::text(&self.code)),
            ("message", crate::json::text(&self.message)),
            ("data", data),
        ])
        .0
    }

    /// The JSON body WooCommerce sends.
    pub fn to_json(&self) -> Value {
        let mut data = Map::new();
        data.insert("status".into(), json!(self.status));
        for (k, v) in &self.data {
            data.insert(k.clone(), v.clone());
        }
        json!({"code": self.code, "message": self.message, "data": data})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, crate::json::JsonText(self.to_json_text())).into_response()
    }
}
