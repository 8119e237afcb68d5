//! WebAPI users, `/auth` tokens, panel integration tokens, and the Bearer check (docs §3).
//!
//! - `POST /webapi/rest/auth` with `Authorization: Basic base64(login:password)` or
//!   `client_id=<login>&client_secret=<password>` (query or form body) → 200
//!   `{"access_token","expires_in","token_type":"bearer"}`; no refresh token.
//! - Failures (401): `auth_failure` (unknown login or wrong password), `auth_webapi_access_denied`
//!   (the user lacks the WebAPI right), `auth_ip_not_allowed`. The codes are the client
//!   library's; the descriptions are *unverified* (the stand-in's own wording).
//! - Panel integration tokens are used as Bearer directly, optionally with per-area scopes
//!   (403 `insufficient_scope` when a right is missing).
//! - A missing, unknown, revoked or expired Bearer → 401 `unauthorized_client`
//!   `Provided access token is invalid` (the expired text is [`crate::Config::expired_token_description`]).
//!
//! Scopes are `<area>_<right>`: areas `products` (products, product-stocks), `orders` (orders,
//! order-products, parcels, statuses, object-mtime), `webhooks`; rights `read` (GET/HEAD),
//! `create` (POST), `edit` (PUT), `delete` (DELETE). A token without a scope list may do
//! everything. (The real panel has more areas; the stand-in groups its resources this way.)

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, INVALID_TOKEN};
use crate::state::State;
use crate::util::{Params, hex40};

/// Every scope a token can carry.
pub const SCOPES: [&str; 12] = [
    "products_read",
    "products_create",
    "products_edit",
    "products_delete",
    "orders_read",
    "orders_create",
    "orders_edit",
    "orders_delete",
    "webhooks_read",
    "webhooks_create",
    "webhooks_edit",
    "webhooks_delete",
];

/// A WebAPI user (panel administrator with the WebAPI right).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub login: String,
    pub password: String,
    /// Has the WebAPI right (else `/auth` answers `auth_webapi_access_denied`).
    #[serde(default = "yes")]
    pub webapi_access: bool,
    /// The caller's IP is allowed (else `/auth` answers `auth_ip_not_allowed`).
    #[serde(default = "yes")]
    pub ip_allowed: bool,
    /// Rights of the tokens this user gets; None = all.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

impl User {
    /// A user with every right.
    pub fn new(login: &str, password: &str) -> Self {
        User {
            login: login.into(),
            password: password.into(),
            webapi_access: true,
            ip_allowed: true,
            scopes: None,
        }
    }
}

/// How a token was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// From `POST /auth`.
    Auth,
    /// A panel integration token ("Token API").
    Panel,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Auth => "auth",
            TokenKind::Panel => "panel",
        }
    }
}

/// An access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub access_token: String,
    pub kind: TokenKind,
    pub login: String,
    pub issued_at: DateTime<Utc>,
    /// None: never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Rights; None = all.
    pub scopes: Option<Vec<String>>,
    pub revoked: bool,
}

impl Token {
    /// Seconds of life granted (`expires_in`), 0 for tokens without expiry.
    pub fn expires_in(&self) -> i64 {
        self.expires_at
            .map(|e| (e - self.issued_at).num_seconds())
            .unwrap_or(0)
    }
}

/// Who is calling (set by the Bearer check).
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub token: String,
    pub login: String,
    pub kind: TokenKind,
    pub scopes: Option<Vec<String>>,
}

impl Caller {
    /// Whether the token may do `right` (`read`/`create`/`edit`/`delete`) in `area`.
    pub fn may(&self, area: &str, right: &str) -> bool {
        match &self.scopes {
            None => true,
            Some(list) => {
                let want = format!("{area}_{right}");
                list.contains(&want)
            }
        }
    }
}

/// Mints a token.
pub fn mint(
    m: &mut State,
    login: &str,
    kind: TokenKind,
    ttl_secs: Option<u64>,
    scopes: Option<Vec<String>>,
) -> Token {
    let now = m.now();
    let t = Token {
        access_token: hex40(),
        kind,
        login: login.into(),
        issued_at: now,
        expires_at: ttl_secs.map(|s| now + Duration::seconds(s.min(i64::MAX as u64 / 2000) as i64)),
        scopes,
        revoked: false,
    };
    m.tokens.insert(t.access_token.clone(), t.clone());
    m.counters.tokens_issued += 1;
    t
}

/// `/auth` credentials: Basic header first, else `client_id`/`client_secret` from the query or
/// a form body.
pub fn credentials(headers: &HeaderMap, query: &Params, form: &Params) -> Option<(String, String)> {
    if let Some(raw) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some((scheme, rest)) = raw.trim().split_once(' ')
        && scheme.eq_ignore_ascii_case("basic")
        && let Ok(bytes) = STANDARD.decode(rest.trim())
        && let Ok(text) = String::from_utf8(bytes)
        && let Some((l, p)) = text.split_once(':')
    {
        return Some((l.to_string(), p.to_string()));
    }
    for p in [query, form] {
        if let (Some(l), Some(s)) = (p.get("client_id"), p.get("client_secret")) {
            return Some((l.to_string(), s.to_string()));
        }
    }
    None
}

/// `POST /auth`: checks the credentials and mints an `/auth` token.
pub fn login(m: &mut State, creds: Option<(String, String)>) -> Result<Token, ApiError> {
    let Some((login, password)) = creds else {
        m.counters.auth_failures += 1;
        return Err(ApiError::new(401, "auth_failure", "Brak danych logowania"));
    };
    let user = match m.users.get(&login) {
        Some(u) if u.password == password => u.clone(),
        _ => {
            m.counters.auth_failures += 1;
            return Err(ApiError::new(
                401,
                "auth_failure",
                "Niepoprawny login lub hasło",
            ));
        }
    };
    if !user.webapi_access {
        m.counters.auth_failures += 1;
        return Err(ApiError::new(
            401,
            "auth_webapi_access_denied",
            "Użytkownik nie ma dostępu do WebAPI",
        ));
    }
    if !user.ip_allowed {
        m.counters.auth_failures += 1;
        return Err(ApiError::new(
            401,
            "auth_ip_not_allowed",
            "Dostęp z tego adresu IP jest zablokowany",
        ));
    }
    let ttl = m.cfg.token_ttl_secs;
    Ok(mint(m, &login, TokenKind::Auth, Some(ttl), user.scopes))
}

/// The Bearer check.
pub fn authenticate(m: &State, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = match raw.trim().split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => return Err(ApiError::invalid_token(INVALID_TOKEN)),
    };
    let Some(t) = m.tokens.get(token) else {
        return Err(ApiError::invalid_token(INVALID_TOKEN));
    };
    if t.revoked {
        return Err(ApiError::invalid_token(INVALID_TOKEN));
    }
    if t.expires_at.is_some_and(|e| m.now() >= e) {
        return Err(ApiError::invalid_token(&m.cfg.expired_token_description));
    }
    Ok(Caller {
        token: t.access_token.clone(),
        login: t.login.clone(),
        kind: t.kind,
        scopes: t.scopes.clone(),
    })
}

/// Expires one token (or all when `token` is None) by moving its expiry to now; returns how
/// many.
pub fn expire(m: &mut State, token: Option<&str>) -> usize {
    let now = m.now();
    let mut n = 0;
    for t in m.tokens.values_mut() {
        if token.is_none_or(|x| x == t.access_token) && t.expires_at.is_none_or(|e| e > now) {
            t.expires_at = Some(now);
            n += 1;
        }
    }
    n
}

/// Revokes one token (or all); a revoked token answers 401 like an unknown one.
pub fn revoke(m: &mut State, token: Option<&str>) -> usize {
    let mut n = 0;
    for t in m.tokens.values_mut() {
        if token.is_none_or(|x| x == t.access_token) && !t.revoked {
            t.revoked = true;
            n += 1;
        }
    }
    n
}
