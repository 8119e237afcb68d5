//! Authentication as `WC_REST_Authentication` does it over HTTPS: HTTP Basic with the consumer
//! key/secret, or `consumer_key`/`consumer_secret` query parameters. A wrong key or secret gives
//! 401 `woocommerce_rest_authentication_error` ("Consumer key is invalid." / "Consumer secret is
//! invalid."); no credentials at all leave the request anonymous, and the route's permission check
//! answers 401 `woocommerce_rest_cannot_view` / `_cannot_create` / `_cannot_edit` /
//! `_cannot_delete` / `_cannot_batch`. 401s carry `WWW-Authenticate`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::error::ApiError;
use crate::params::Query;
use crate::shared::{KeyPermissions, Shared};

const REALM: &str = "Basic realm=\"WooCommerce API. Use a consumer key in the username field and a consumer secret in the password field\"";

/// Credentials from the request: Basic header first, then the query string.
pub fn credentials(req: &Request) -> Option<(String, String)> {
    if let Some(v) = req.headers().get(header::AUTHORIZATION)
        && let Ok(s) = v.to_str()
        && let Some(b64) = s
            .strip_prefix("Basic ")
            .or_else(|| s.strip_prefix("basic "))
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim())
        && let Ok(text) = String::from_utf8(raw)
        && let Some((k, sec)) = text.split_once(':')
        && !k.is_empty()
    {
        return Some((k.to_string(), sec.to_string()));
    }
    let q = Query::parse(req.uri().query());
    match (q.get("consumer_key"), q.get("consumer_secret")) {
        (Some(k), Some(s)) if !k.is_empty() && !s.is_empty() => {
            Some((k.to_string(), s.to_string()))
        }
        _ => None,
    }
}

/// The permission error a route answers an anonymous request with.
pub fn permission_error(method: &Method, path: &str) -> ApiError {
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let is_item = !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit());
    let (code, message) = if *method == Method::GET || *method == Method::HEAD {
        if is_item {
            (
                "woocommerce_rest_cannot_view",
                "Sorry, you cannot view this resource.",
            )
        } else {
            (
                "woocommerce_rest_cannot_view",
                "Sorry, you cannot list resources.",
            )
        }
    } else if *method == Method::DELETE {
        (
            "woocommerce_rest_cannot_delete",
            "Sorry, you are not allowed to delete this resource.",
        )
    } else if last == "batch" {
        (
            "woocommerce_rest_cannot_batch",
            "Sorry, you are not allowed to batch manipulate this resource.",
        )
    } else if is_item {
        (
            "woocommerce_rest_cannot_edit",
            "Sorry, you are not allowed to edit this resource.",
        )
    } else {
        (
            "woocommerce_rest_cannot_create",
            "Sorry, you are not allowed to create resources.",
        )
    };
    ApiError::new(401, code, message)
}

fn unauthorized(e: ApiError) -> Response {
    let mut resp = e.into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
    resp
}

fn auth_error(message: &str) -> ApiError {
    ApiError::new(401, "woocommerce_rest_authentication_error", message)
}

/// WordPress checks authentication before routing: a request with a wrong key or secret gets
/// the 401 even on a route that does not exist. `None` when there is nothing to object to.
pub fn invalid_credentials(shared: &Shared, req: &Request) -> Option<Response> {
    let (key, secret) = credentials(req)?;
    if key != shared.consumer_key {
        return Some(unauthorized(auth_error("Consumer key is invalid.")));
    }
    if secret != shared.consumer_secret {
        return Some(unauthorized(auth_error("Consumer secret is invalid.")));
    }
    None
}

/// Route layer: checks credentials and key permissions.
pub async fn require_auth(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let Some((key, secret)) = credentials(&req) else {
        return unauthorized(permission_error(req.method(), req.uri().path()));
    };
    if key != shared.consumer_key {
        return unauthorized(auth_error("Consumer key is invalid."));
    }
    if secret != shared.consumer_secret {
        return unauthorized(auth_error("Consumer secret is invalid."));
    }
    let reading = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    match (reading, shared.key_permissions) {
        (true, KeyPermissions::Write) => {
            return unauthorized(auth_error(
                "The API key provided does not have read permissions.",
            ));
        }
        (false, KeyPermissions::Read) => {
            return unauthorized(auth_error(
                "The API key provided does not have write permissions.",
            ));
        }
        _ => {}
    }
    next.run(req).await
}
