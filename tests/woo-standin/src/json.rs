//! JSON text as WordPress sends it. `serde_json::Value` sorts object keys, so resources are
//! serialized straight from their structs (field order = WooCommerce's order, `id` first) and
//! `_links` is appended, the way `WP_REST_Response` renders them. Output then goes through
//! [`php_escape`]: `wp_json_encode` with default flags escapes `/` as `\/` and every non-ASCII
//! character as `\uXXXX`, both in REST responses and in webhook bodies (so "Łódź" travels as
//! `\u0141\u00f3d\u017a` and a receiver that re-serializes before checking the signature fails).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// A JSON document as text.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonText(pub String);

impl IntoResponse for JsonText {
    fn into_response(self) -> Response {
        let mut resp = php_escape(&self.0).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        resp
    }
}

/// Serializes `v` (an object) and appends `"_links": links`.
pub fn with_links<T: Serialize>(v: &T, links: &Value) -> JsonText {
    let body = serde_json::to_string(v).unwrap_or_else(|_| "{}".into());
    let links = serde_json::to_string(links).unwrap_or_else(|_| "{}".into());
    JsonText(append_member(&body, "_links", &links))
}

/// `{"a":1}` + (`k`, `v`) → `{"a":1,"k":v}`.
pub fn append_member(object: &str, key: &str, value_json: &str) -> String {
    let trimmed = object.trim_end();
    let Some(inner) = trimmed.strip_suffix('}') else {
        return object.to_string();
    };
    let sep = if inner.trim_end().ends_with('{') {
        ""
    } else {
        ","
    };
    format!("{inner}{sep}\"{key}\":{value_json}}}")
}

/// An object from ordered members whose values are already JSON text.
pub fn object(members: &[(&str, String)]) -> JsonText {
    let parts: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::String((*k).to_string())))
        .collect();
    JsonText(format!("{{{}}}", parts.join(",")))
}

/// A JSON array of documents.
pub fn array(items: Vec<JsonText>) -> JsonText {
    let parts: Vec<String> = items.into_iter().map(|j| j.0).collect();
    JsonText(format!("[{}]", parts.join(",")))
}

/// Any serializable value as text.
pub fn text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// PHP `json_encode` default escaping applied to JSON text: `/` → `\/`, non-ASCII →
/// `\uXXXX` (UTF-16, surrogate pairs above the BMP). Valid JSON only has these characters inside
/// strings, so a character-level pass is exact.
pub fn php_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 8);
    let mut buf = [0u16; 2];
    for c in json.chars() {
        if c == '/' {
            out.push_str("\\/");
        } else if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}
