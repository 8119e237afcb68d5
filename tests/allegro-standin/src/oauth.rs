//! OAuth2 as Allegro runs it (research notes §2): the device flow (`POST /auth/oauth/device`,
//! polling `POST /auth/oauth/token`), the refresh grant with rotation and a grace for the old
//! refresh token, client_credentials, and bearer checks on the API with Allegro's 401 bodies.
//!
//! Tokens look like JWTs (`header.payload.signature`, the payload carries `user_name`, `exp`,
//! `jti`, `client_id`, `scope`), but the stand-in only trusts its own table of issued tokens.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::state::{Shared, State as Market};
use crate::util::{OAUTH_JSON, Params, auth_error, random_code, random_digits, typed_json, uuid};

/// The grant type of the device flow.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Scopes a token gets when none were asked for: what the connector needs.
pub const DEFAULT_SCOPES: [&str; 4] = [
    "allegro:api:orders:read",
    "allegro:api:orders:write",
    "allegro:api:sale:offers:read",
    "allegro:api:sale:offers:write",
];

/// An issued access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessToken {
    pub token: String,
    pub client_id: String,
    /// None for an application (client_credentials) token.
    pub seller_id: Option<String>,
    pub scopes: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Killed by a later refresh of the same session.
    pub revoked: bool,
    /// The device authorisation this token descends from.
    pub session: u64,
}

/// An issued refresh token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshToken {
    pub token: String,
    pub client_id: String,
    pub seller_id: String,
    pub scopes: Vec<String>,
    pub session: u64,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// First time it was used for a refresh (the grace counts from here).
    pub used_at: Option<DateTime<Utc>>,
}

/// Where a device code stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", content = "seller_id", rename_all = "snake_case")]
pub enum DeviceState {
    Pending,
    Approved(String),
    Denied,
    Exchanged,
}

/// A device authorisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Device {
    pub device_code: String,
    pub user_code: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub interval_secs: u64,
    pub last_poll: Option<DateTime<Utc>>,
    pub state: DeviceState,
}

/// A token pair as the token endpoint returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: u64,
    pub scope: String,
}

/// All OAuth state.
#[derive(Debug, Default)]
pub struct OAuthState {
    pub access: HashMap<String, AccessToken>,
    pub refresh: HashMap<String, RefreshToken>,
    pub devices: HashMap<String, Device>,
    pub next_session: u64,
}

/// Who is calling the API.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    /// None for an application token.
    pub seller_id: Option<String>,
    pub scopes: Vec<String>,
}

fn jwt(seller: Option<&str>, client_id: &str, scopes: &[String], exp: DateTime<Utc>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let mut payload = json!({
        "scope": scopes,
        "allegro_api": true,
        "iss": "https://allegro.pl.allegrosandbox.pl",
        "exp": exp.timestamp(),
        "jti": uuid(),
        "client_id": client_id,
    });
    if let Some(s) = seller {
        payload["user_name"] = json!(s);
        payload["authorities"] = json!(["ROLE_USER"]);
    }
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let sig = URL_SAFE_NO_PAD.encode(
        [
            uuid::Uuid::new_v4().as_bytes().as_slice(),
            uuid::Uuid::new_v4().as_bytes().as_slice(),
        ]
        .concat(),
    );
    format!("{header}.{payload}.{sig}")
}

/// Mints a token pair for a seller in `session` (a new session when None).
pub fn issue_pair(
    m: &mut Market,
    client_id: &str,
    seller: &str,
    scopes: &[String],
    session: Option<u64>,
) -> TokenPair {
    let now = m.now();
    let session = session.unwrap_or_else(|| {
        m.oauth.next_session += 1;
        m.oauth.next_session
    });
    let access_exp = now + Duration::seconds(m.cfg.access_ttl_secs as i64);
    let access = jwt(Some(seller), client_id, scopes, access_exp);
    let refresh_exp = now + Duration::seconds(m.cfg.refresh_ttl_secs as i64);
    let refresh = jwt(Some(seller), client_id, scopes, refresh_exp);
    m.oauth.access.insert(
        access.clone(),
        AccessToken {
            token: access.clone(),
            client_id: client_id.to_string(),
            seller_id: Some(seller.to_string()),
            scopes: scopes.to_vec(),
            issued_at: now,
            expires_at: access_exp,
            revoked: false,
            session,
        },
    );
    m.oauth.refresh.insert(
        refresh.clone(),
        RefreshToken {
            token: refresh.clone(),
            client_id: client_id.to_string(),
            seller_id: seller.to_string(),
            scopes: scopes.to_vec(),
            session,
            issued_at: now,
            expires_at: refresh_exp,
            used_at: None,
        },
    );
    m.counters.tokens_minted += 1;
    TokenPair {
        access_token: access,
        refresh_token: Some(refresh),
        expires_in: m.cfg.access_ttl_secs,
        scope: scopes.join(" "),
    }
}

fn token_body(p: &TokenPair) -> Value {
    let jti = p
        .access_token
        .split('.')
        .nth(1)
        .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("jti").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(uuid);
    let mut v = json!({
        "access_token": p.access_token,
        "token_type": "bearer",
        "expires_in": p.expires_in,
        "scope": p.scope,
        "allegro_api": true,
        "iss": "https://allegro.pl.allegrosandbox.pl",
        "jti": jti,
    });
    if let Some(r) = &p.refresh_token {
        v["refresh_token"] = json!(r);
    }
    v
}

/// `client_id:client_secret` from `Authorization: Basic`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = raw.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

fn bad_client(m: &Market) -> Response {
    typed_json(m.cfg.bad_client_status, &m.cfg.bad_client_body, OAUTH_JSON)
}

/// Query-string and form-body parameters together (Allegro's samples use both).
fn params(uri: &Uri, body: &Bytes) -> Params {
    let mut p = Params::from_query(uri.query());
    p.0.extend(Params::parse(&String::from_utf8_lossy(body)).0);
    p
}

fn scopes_of(p: &Params) -> Vec<String> {
    let asked: Vec<String> = p
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    if asked.is_empty() {
        DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect()
    } else {
        asked
    }
}

fn client_ok(shared: &Shared, headers: &HeaderMap) -> bool {
    matches!(basic_credentials(headers), Some((id, secret)) if id == shared.client_id && secret == shared.client_secret)
}

/// `POST /auth/oauth/device`
pub async fn device_handler(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(&uri, &body);
    let mut m = shared.st();
    if !client_ok(&shared, &headers) {
        return bad_client(&m);
    }
    match p.get("client_id") {
        None => {
            return auth_error(400, "invalid_request", Some("Missing client_id parameter"));
        }
        Some(id) if id != shared.client_id => return bad_client(&m),
        Some(_) => {}
    }
    if let Some(bad) = scopes_of(&p).iter().find(|s| !s.starts_with("allegro:api")) {
        return auth_error(400, "invalid_scope", Some(&format!("Invalid scope: {bad}")));
    }
    let now = m.now();
    let user_code = random_code(9);
    let device_code = random_digits(10);
    let dev = Device {
        device_code: device_code.clone(),
        user_code: user_code.clone(),
        client_id: shared.client_id.clone(),
        scopes: scopes_of(&p),
        created_at: now,
        expires_at: now + Duration::seconds(m.cfg.device_ttl_secs as i64),
        interval_secs: m.cfg.device_interval_secs,
        last_poll: None,
        state: DeviceState::Pending,
    };
    m.oauth.devices.insert(device_code.clone(), dev);
    m.counters.device_codes += 1;
    let (expires_in, interval) = if m.cfg.device_numbers_as_strings {
        (
            json!(m.cfg.device_ttl_secs.to_string()),
            json!(m.cfg.device_interval_secs.to_string()),
        )
    } else {
        (
            json!(m.cfg.device_ttl_secs),
            json!(m.cfg.device_interval_secs),
        )
    };
    let verification = format!("{}/skojarz-aplikacje", shared.auth_base);
    typed_json(
        200,
        &json!({
            "user_code": user_code,
            "device_code": device_code,
            "expires_in": expires_in,
            "interval": interval,
            "verification_uri": verification,
            "verification_uri_complete": format!("{verification}?code={user_code}"),
        }),
        OAUTH_JSON,
    )
}

/// `POST /auth/oauth/token` (device, refresh_token and client_credentials grants).
pub async fn token_handler(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(&uri, &body);
    let mut m = shared.st();
    if !client_ok(&shared, &headers) {
        return bad_client(&m);
    }
    match p.get("grant_type") {
        Some(DEVICE_GRANT) => device_grant(&shared, &mut m, &p),
        Some("refresh_token") => refresh_grant(&shared, &mut m, &p),
        Some("client_credentials") => {
            let now = m.now();
            if !mint_allowed(&mut m, &format!("app:{}", shared.client_id), now) {
                return too_many_mints();
            }
            let exp = now + Duration::seconds(m.cfg.access_ttl_secs as i64);
            let scopes: Vec<String> = vec!["allegro:api".into()];
            let token = jwt(None, &shared.client_id, &scopes, exp);
            m.oauth.access.insert(
                token.clone(),
                AccessToken {
                    token: token.clone(),
                    client_id: shared.client_id.clone(),
                    seller_id: None,
                    scopes: scopes.clone(),
                    issued_at: now,
                    expires_at: exp,
                    revoked: false,
                    session: 0,
                },
            );
            m.counters.client_credentials += 1;
            m.counters.tokens_minted += 1;
            let pair = TokenPair {
                access_token: token,
                refresh_token: None,
                expires_in: m.cfg.access_ttl_secs,
                scope: "allegro:api".into(),
            };
            typed_json(200, &token_body(&pair), OAUTH_JSON)
        }
        Some(other) => auth_error(
            400,
            "unsupported_grant_type",
            Some(&format!("Unsupported grant type: {other}")),
        ),
        None => auth_error(400, "invalid_request", Some("Missing grant type")),
    }
}

fn too_many_mints() -> Response {
    // The body is not documented (research notes §2.5).
    auth_error(
        429,
        "too_many_requests",
        Some("Too many access tokens issued for this user; try again later"),
    )
}

fn mint_allowed(m: &mut Market, key: &str, now: DateTime<Utc>) -> bool {
    let Some(limit) = m.cfg.token_mint_limit else {
        return true;
    };
    let span = Duration::seconds(m.cfg.token_mint_window_secs as i64);
    m.limits.seller_try("mint", key, now, span, limit as u64, 1)
}

fn device_grant(shared: &Shared, m: &mut Market, p: &Params) -> Response {
    m.counters.device_polls += 1;
    let invalid = || auth_error(400, "Invalid device code", None);
    let now = m.now();
    let Some(code) = p.get("device_code") else {
        return invalid();
    };
    let Some(dev) = m.oauth.devices.get_mut(code) else {
        return invalid();
    };
    if dev.client_id != shared.client_id || now >= dev.expires_at {
        return invalid();
    }
    match dev.state.clone() {
        DeviceState::Exchanged => invalid(),
        DeviceState::Denied => auth_error(400, "access_denied", None),
        state => {
            let too_fast = dev
                .last_poll
                .is_some_and(|t| now - t < Duration::seconds(dev.interval_secs as i64));
            dev.last_poll = Some(now);
            if too_fast {
                return auth_error(400, "slow_down", None);
            }
            match state {
                DeviceState::Approved(seller) => {
                    let scopes = dev.scopes.clone();
                    if !mint_allowed(m, &seller, now) {
                        return too_many_mints();
                    }
                    if let Some(d) = m.oauth.devices.get_mut(code) {
                        d.state = DeviceState::Exchanged;
                    }
                    m.counters.device_exchanges += 1;
                    let pair = issue_pair(m, &shared.client_id, &seller, &scopes, None);
                    typed_json(200, &token_body(&pair), OAUTH_JSON)
                }
                _ => auth_error(400, "authorization_pending", None),
            }
        }
    }
}

fn refresh_grant(shared: &Shared, m: &mut Market, p: &Params) -> Response {
    let now = m.now();
    let given = p.get("refresh_token").unwrap_or("").to_string();
    let refuse = |m: &mut Market| {
        m.counters.refresh_failures += 1;
        auth_error(
            400,
            "invalid_grant",
            Some(&format!("Invalid refresh token: {given}")),
        )
    };
    let Some(rt) = m.oauth.refresh.get(&given).cloned() else {
        return refuse(m);
    };
    let grace = Duration::seconds(m.cfg.refresh_grace_secs as i64);
    if rt.client_id != shared.client_id
        || now >= rt.expires_at
        || rt.used_at.is_some_and(|u| now - u >= grace)
    {
        return refuse(m);
    }
    if !mint_allowed(m, &rt.seller_id, now) {
        return too_many_mints();
    }
    if rt.used_at.is_some() {
        m.counters.refresh_reuses += 1;
    } else if let Some(r) = m.oauth.refresh.get_mut(&given) {
        r.used_at = Some(now);
    }
    if m.cfg.refresh_kills_old_access {
        for a in m.oauth.access.values_mut() {
            if a.session == rt.session && a.seller_id.is_some() {
                a.revoked = true;
            }
        }
    }
    m.counters.refreshes += 1;
    let pair = issue_pair(
        m,
        &rt.client_id,
        &rt.seller_id,
        &rt.scopes,
        Some(rt.session),
    );
    typed_json(200, &token_body(&pair), OAUTH_JSON)
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// Not a token this stand-in issued (or not a Bearer header).
    Garbled,
    /// Past its lifetime or killed by a refresh.
    Expired,
}

/// Checks `Authorization: Bearer …` against the issued tokens.
pub fn authenticate(m: &Market, headers: &HeaderMap) -> Result<Caller, (Refusal, String)> {
    let Some(raw) = headers.get(header::AUTHORIZATION) else {
        return Err((Refusal::Missing, String::new()));
    };
    let raw = raw.to_str().unwrap_or("").trim();
    let token = match raw.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => return Err((Refusal::Garbled, String::new())),
    };
    let Some(a) = m.oauth.access.get(token) else {
        return Err((Refusal::Garbled, token.to_string()));
    };
    if a.revoked || m.now() >= a.expires_at {
        return Err((Refusal::Expired, token.to_string()));
    }
    Ok(Caller {
        client_id: a.client_id.clone(),
        seller_id: a.seller_id.clone(),
        scopes: a.scopes.clone(),
    })
}

/// Allegro's 401 for a refusal.
pub fn refusal_response(r: Refusal, token: &str, status: u16) -> Response {
    match r {
        Refusal::Missing => auth_error(
            status,
            "unauthorized",
            Some("Full authentication is required to access this resource"),
        ),
        Refusal::Garbled => auth_error(
            status,
            "invalid_token",
            Some("Cannot convert access token to JSON"),
        ),
        Refusal::Expired => auth_error(
            status,
            "invalid_token",
            Some(&format!("Access token expired: {token}")),
        ),
    }
}

/// Approves a device code (by user code or device code) for `seller`.
pub fn approve(m: &mut Market, code: &str, seller: &str) -> bool {
    set_device(m, code, DeviceState::Approved(seller.to_string()))
}

/// Denies a device code.
pub fn deny(m: &mut Market, code: &str) -> bool {
    set_device(m, code, DeviceState::Denied)
}

fn set_device(m: &mut Market, code: &str, state: DeviceState) -> bool {
    let code = code.replace(' ', "");
    match m
        .oauth
        .devices
        .values_mut()
        .find(|d| d.user_code == code || d.device_code == code)
    {
        Some(d) if d.state == DeviceState::Pending => {
            d.state = state;
            true
        }
        _ => false,
    }
}

/// Makes access tokens expire now: one token, or every token when `token` is None.
/// Returns how many were expired.
pub fn expire_access(m: &mut Market, token: Option<&str>) -> usize {
    let past = m.now() - Duration::seconds(1);
    let mut n = 0;
    for a in m.oauth.access.values_mut() {
        if token.is_none_or(|t| t == a.token) && a.expires_at > past {
            a.expires_at = past;
            n += 1;
        }
    }
    n
}

/// Makes refresh tokens expire now (one or all).
pub fn expire_refresh(m: &mut Market, token: Option<&str>) -> usize {
    let past = m.now() - Duration::seconds(1);
    let mut n = 0;
    for r in m.oauth.refresh.values_mut() {
        if token.is_none_or(|t| t == r.token) && r.expires_at > past {
            r.expires_at = past;
            n += 1;
        }
    }
    n
}
