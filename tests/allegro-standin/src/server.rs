//! Routers and the request pipeline.
//!
//! Pipeline for every API and OAuth request: arrival time and `Trace-Id` → injected faults
//! (latency, error, hang) → for the API: bearer auth (401 with Allegro's bodies) → the
//! client_id's sliding minute (429, client blocked for a minute) → `Accept` (406) → application
//! token on a seller endpoint / missing scope (403) → `Content-Type` of bodies (415) → handler;
//! for OAuth: the client_id's minute (429) → handler. Every answer gets a `Trace-Id` and goes
//! into the request log.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::oauth::{self, Caller, Refusal};
use crate::requests::{RequestRecord, redact_query};
use crate::state::{Shared, lock};
use crate::util::{ApiError, BETA, VND, ts, typed_json, uuid, vnd_json};
use crate::{commands, control, events, offers, orders};

/// Largest body accepted at all (invoice files are checked against the configured limit).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

fn api_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sale/offers", get(offers::list_handler))
        .route(
            "/sale/product-offers/{id}",
            get(offers::get_handler).patch(offers::patch_handler),
        )
        .route(
            "/sale/product-offers/{id}/operations/{op}",
            get(offers::operation_handler),
        )
        .route(
            "/sale/offer-quantity-change-commands/{id}",
            put(commands::put_handler).get(commands::get_handler),
        )
        .route(
            "/sale/offer-quantity-change-commands/{id}/tasks",
            get(commands::tasks_handler),
        )
        .route(
            "/sale/offer-price-change-commands/{id}",
            put(commands::put_handler).get(commands::get_handler),
        )
        .route(
            "/sale/offer-price-change-commands/{id}/tasks",
            get(commands::tasks_handler),
        )
        .route("/order/events", get(events::list_handler))
        .route("/order/event-stats", get(events::stats_handler))
        .route("/order/checkout-forms", get(orders::list_handler))
        .route("/order/checkout-forms/{id}", get(orders::get_handler))
        .route(
            "/order/checkout-forms/{id}/fulfillment",
            put(orders::fulfillment_handler),
        )
        .route(
            "/order/checkout-forms/{id}/shipments",
            post(orders::shipment_create_handler).get(orders::shipment_list_handler),
        )
        .route(
            "/order/checkout-forms/{id}/invoices",
            post(orders::invoice_create_handler).get(orders::invoice_list_handler),
        )
        .route(
            "/order/checkout-forms/{id}/invoices/{invoice_id}/file",
            put(orders::invoice_file_handler),
        )
        .route("/order/carriers", get(orders::carriers_handler))
        .route("/order/customer-returns", get(orders::returns_handler))
}

fn auth_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/auth/oauth/device", post(oauth::device_handler))
        .route("/auth/oauth/token", post(oauth::token_handler))
}

/// The main listener: the API, the OAuth endpoints unless they have their own listener, and
/// the control API.
pub fn router(shared: Arc<Shared>, with_auth: bool) -> Router {
    let mut app = api_routes();
    if with_auth {
        app = app.merge(auth_routes());
    }
    app.fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            pipeline,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .nest("/__standin", control::router())
        .route("/", get(control::index))
        .with_state(shared)
}

/// The separate OAuth listener (like `allegro.pl` next to `api.allegro.pl`).
pub fn auth_router(shared: Arc<Shared>) -> Router {
    auth_routes()
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            pipeline,
        ))
        .with_state(shared)
}

async fn no_route() -> Response {
    ApiError::new(404, "NotFoundException", "Resource not found").into_response()
}

async fn no_method() -> Response {
    ApiError::new(
        405,
        "MethodNotAllowedException",
        "Request method not supported",
    )
    .into_response()
}

fn expected_media_type(path: &str) -> &'static str {
    if path.starts_with("/order/customer-returns") {
        BETA
    } else {
        VND
    }
}

fn accepts(headers: &HeaderMap, wanted: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            part.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(wanted))
        })
}

/// The scope an endpoint needs; None for `/order/carriers` (any token).
fn required_scope(method: &Method, path: &str) -> Option<&'static str> {
    let read = *method == Method::GET;
    if path.starts_with("/order/carriers") {
        None
    } else if path.starts_with("/order/") {
        Some(if read {
            "allegro:api:orders:read"
        } else {
            "allegro:api:orders:write"
        })
    } else if path.starts_with("/sale/") {
        // Command status reads need the write scope (research notes §2.3).
        Some(if read && !path.contains("-commands/") {
            "allegro:api:sale:offers:read"
        } else {
            "allegro:api:sale:offers:write"
        })
    } else {
        None
    }
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

fn basic_client(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = raw.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let text = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
    Some(text.split_once(':')?.0.to_string())
}

fn rate_limited(shared: &Shared) -> Response {
    let (body, retry) = {
        let m = lock(&shared.state);
        (m.cfg.rate_limit_body.clone(), m.cfg.rate_limit_retry_after)
    };
    let mut resp = vnd_json(429, &body);
    if let Some(secs) = retry {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Outcome of the API gate.
enum Gate {
    Pass(Caller),
    Refuse(Response, &'static str, Option<Caller>),
}

fn api_gate(shared: &Shared, method: &Method, path: &str, headers: &HeaderMap) -> Gate {
    let mut m = shared.st();
    let caller = match oauth::authenticate(&m, headers) {
        Ok(c) => c,
        Err((refusal, token)) => {
            m.counters.unauthorized += 1;
            let status = if refusal == Refusal::Garbled && path == "/sale/offers" {
                m.cfg.sale_offers_invalid_token_status
            } else {
                401
            };
            return Gate::Refuse(
                oauth::refusal_response(refusal, &token, status),
                "unauthorized",
                None,
            );
        }
    };
    let now = m.now();
    let (per_minute, block) = (m.cfg.client_per_minute, m.cfg.client_block_secs);
    if m.limits
        .client_request(&caller.client_id, now, per_minute, block)
        .is_err()
    {
        m.counters.rate_limited += 1;
        drop(m);
        return Gate::Refuse(rate_limited(shared), "rate_limited", Some(caller));
    }
    if !accepts(headers, expected_media_type(path)) {
        m.counters.not_acceptable += 1;
        return Gate::Refuse(
            ApiError::new(
                406,
                "NotAcceptableException",
                "Not acceptable representation requested. Please check 'Accept' request header",
            )
            .into_response(),
            "not_acceptable",
            Some(caller),
        );
    }
    let scope = required_scope(method, path);
    if caller.seller_id.is_none() && scope.is_some() {
        m.counters.forbidden += 1;
        return Gate::Refuse(
            ApiError::new(m.cfg.app_token_status, "AccessDenied", "Access is denied")
                .into_response(),
            "forbidden",
            Some(caller),
        );
    }
    if let Some(s) = scope
        && !caller.scopes.iter().any(|c| c == s || c == "allegro:api")
    {
        m.counters.forbidden += 1;
        return Gate::Refuse(
            ApiError::new(
                403,
                "AccessDenied",
                format!("Access is denied: the token lacks scope {s}"),
            )
            .into_response(),
            "forbidden",
            Some(caller),
        );
    }
    let writes = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if writes && m.cfg.enforce_content_type && !path.ends_with("/file") && has_body(headers) {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ok = ct
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(VND));
        if !ok {
            return Gate::Refuse(
                ApiError::new(
                    415,
                    "UnsupportedMediaTypeException",
                    format!("Content type '{ct}' not supported; send {VND}"),
                )
                .into_response(),
                "unsupported_media_type",
                Some(caller),
            );
        }
    }
    Gate::Pass(caller)
}

fn injected(status: u16, retry_after: Option<u64>) -> Response {
    let code = match status {
        500 => "InternalServerErrorException",
        502 => "BadGatewayException",
        503 => "ServiceUnavailableException",
        504 => "GatewayTimeoutException",
        429 => "TooManyRequestsException",
        _ => "InjectedFault",
    };
    let mut resp = vnd_json(
        status,
        &ApiError::new(status, code, format!("Injected fault: HTTP {status}")).body(),
    );
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Faults, auth, limits, header checks, `Trace-Id` and the request log.
async fn pipeline(State(shared): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let at = ts(chrono::Utc::now());
    let clock_at = ts(lock(&shared.state).now());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(redact_query).unwrap_or_default();
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let trace_id = uuid();
    let is_auth = path.starts_with("/auth/");
    let (fault, retry_after) = {
        let mut f = lock(&shared.faults);
        (f.request_fault(&path), f.cfg.fail_retry_after)
    };
    if !fault.latency.is_zero() {
        tokio::time::sleep(fault.latency).await;
    }
    let mut refused: Option<String> = None;
    let mut client_id = None;
    let mut seller_id = None;
    let mut resp = if let Some(status) = fault.error {
        refused = Some("injected_error".into());
        injected(status, retry_after)
    } else if is_auth {
        client_id = basic_client(req.headers());
        let blocked = client_id.as_ref().is_some_and(|c| {
            let mut m = shared.st();
            let now = m.now();
            let (per_minute, block) = (m.cfg.client_per_minute, m.cfg.client_block_secs);
            let limited = m.limits.client_request(c, now, per_minute, block).is_err();
            if limited {
                m.counters.rate_limited += 1;
            }
            limited
        });
        if blocked {
            refused = Some("rate_limited".into());
            rate_limited(&shared)
        } else {
            next.run(req).await
        }
    } else if path.starts_with("/sale/") || path.starts_with("/order/") {
        match api_gate(&shared, &method, &path, req.headers()) {
            Gate::Pass(caller) => {
                client_id = Some(caller.client_id.clone());
                seller_id = caller.seller_id.clone();
                req.extensions_mut().insert(caller);
                next.run(req).await
            }
            Gate::Refuse(resp, why, caller) => {
                client_id = caller.as_ref().map(|c| c.client_id.clone());
                seller_id = caller.and_then(|c| c.seller_id);
                refused = Some(why.into());
                resp
            }
        }
    } else {
        next.run(req).await
    };
    if let Some(h) = fault.hang {
        refused.get_or_insert_with(|| "hang".into());
        tokio::time::sleep(h).await;
    }
    if let Ok(v) = HeaderValue::from_str(&trace_id) {
        resp.headers_mut().insert("trace-id", v);
    }
    let status = resp.status().as_u16();
    tracing::debug!(%method, %path, status, "allegro-standin request");
    lock(&shared.requests).push(RequestRecord {
        seq: 0,
        at,
        clock_at,
        method: method.to_string(),
        path,
        query,
        status,
        duration_ms: start.elapsed().as_millis() as u64,
        client_id,
        seller_id,
        trace_id,
        accept,
        refused,
    });
    resp
}

/// A JSON answer for the control API.
pub fn control_json(status: u16, v: &serde_json::Value) -> Response {
    typed_json(status, v, "application/json")
}

/// `{"error": msg}` with 400 for the control API.
pub fn control_error(status: u16, msg: impl std::fmt::Display) -> Response {
    control_json(status, &json!({"error": msg.to_string()}))
}
