//! The router and the request pipeline.
//!
//! Every request to `/webapi/rest/*`: arrival → injected faults (latency, error, hang) →
//! `/auth` (credentials) or the Bearer check (401) → the token's bucket (429, nothing added) →
//! the handler (via [`crate::api::dispatch`]) → `X-Shop-Api-Limit/-Bandwidth/-Calls` on the
//! answer (also on 429 and, by default, on 401 with `Calls: 0`) and `X-Shop-Result-*` on
//! collections → the request log. HEAD answers GET's headers without a body. Anything outside
//! `/webapi/rest/` and `/__standin/` is a bare `404 Not Found` page, not Shoper's envelope (like a
//! proxy or a wrong host would answer).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};

use crate::api::{self, Answer, Verb};
use crate::auth::{self, TokenKind};
use crate::control;
use crate::error::{ApiError, json_response};
use crate::limits::{Admission, BucketReport};
use crate::requests::{RequestRecord, redact_query};
use crate::state::{Shared, State as Shop, lock};
use crate::util::{Params, rfc3339};

const BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/webapi/rest", any(api_handler))
        .route("/webapi/rest/", any(api_handler))
        .route("/webapi/rest/{*path}", any(api_handler))
        .nest("/__standin", control::router())
        .route("/__standin/", get(control::index))
        .route("/", get(control::index))
        .fallback(bare_404)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn bare_404() -> Response {
    let mut resp = (
        StatusCode::NOT_FOUND,
        "<html><body><h1>404 Not Found</h1></body></html>",
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    resp
}

fn set(resp: &mut Response, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        resp.headers_mut().insert(name, v);
    }
}

fn bucket_headers(resp: &mut Response, r: BucketReport) {
    set(resp, "x-shop-api-limit", r.limit);
    set(resp, "x-shop-api-bandwidth", r.bandwidth);
    set(resp, "x-shop-api-calls", r.calls);
}

fn idle_report(m: &Shop) -> BucketReport {
    BucketReport {
        limit: m.cfg.bucket_limit,
        bandwidth: m.cfg.bucket_bandwidth,
        calls: 0,
    }
}

/// Shoper's envelope for an injected status; `retry_after` None on a 429 sends Shoper's `1`
/// unless `no_retry_after`.
fn injected(
    status: u16,
    retry_after: Option<u64>,
    no_retry_after: bool,
    report: BucketReport,
) -> Response {
    let e = match status {
        402 => ApiError::new(402, "access_denied", "Payment required"),
        409 => ApiError::new(409, "server_error", "Object is locked"),
        429 => ApiError::new(429, "temporarily_unavailable", "Calls limit exceeded"),
        503 => ApiError::new(
            503,
            "temporarily_unavailable",
            "Service temporarily unavailable",
        ),
        500 => ApiError::new(500, "server_error", "Internal server error"),
        s => ApiError::new(s, "server_error", format!("Injected fault: HTTP {s}")),
    };
    let mut resp = e.into_response();
    bucket_headers(&mut resp, report);
    let retry = if no_retry_after {
        None
    } else {
        retry_after.or(if status == 429 { Some(1) } else { None })
    };
    if let Some(secs) = retry {
        set(&mut resp, "retry-after", secs);
    }
    resp
}

/// What the pipeline learnt, for the log.
#[derive(Default)]
struct Outcome {
    login: Option<String>,
    kind: Option<TokenKind>,
    bucket_calls: Option<u32>,
    bulk_operations: Option<usize>,
    refused: Option<&'static str>,
}

fn answer_response(a: Answer, head: bool) -> Response {
    let mut resp = if head {
        let code = StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK);
        let mut r = (code, Body::empty()).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    } else {
        json_response(a.status, &a.body)
    };
    if let Some((count, page, pages)) = a.result {
        set(&mut resp, "x-shop-result-count", count);
        set(&mut resp, "x-shop-result-page", page);
        set(&mut resp, "x-shop-result-pages", pages);
    }
    resp
}

fn auth_call(
    shared: &Shared,
    method: &Method,
    query: &Params,
    headers: &HeaderMap,
    body: &[u8],
    out: &mut Outcome,
) -> Response {
    let report = idle_report(&shared.st());
    let mut resp = if *method != Method::POST {
        ApiError::method_not_allowed().into_response()
    } else {
        let form = Params::parse(&String::from_utf8_lossy(body));
        let creds = auth::credentials(headers, query, &form);
        out.login = creds.as_ref().map(|(l, _)| l.clone());
        match shared.with(|m| auth::login(m, creds).map(|t| (t, m.cfg.token_type.clone()))) {
            Ok((t, token_type)) => {
                out.kind = Some(TokenKind::Auth);
                json_response(
                    200,
                    &json!({
                        "access_token": t.access_token,
                        "expires_in": t.expires_in(),
                        "token_type": token_type,
                    }),
                )
            }
            Err(e) => {
                out.refused = Some("auth_failure");
                e.into_response()
            }
        }
    };
    bucket_headers(&mut resp, report);
    resp
}

fn api_call(
    shared: &Shared,
    verb: Verb,
    rel: &str,
    query: &Params,
    headers: &HeaderMap,
    body: &[u8],
    out: &mut Outcome,
) -> Response {
    let parsed: Result<Option<Value>, ApiError> = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(None)
    } else {
        serde_json::from_slice(body)
            .map(Some)
            .map_err(|_| ApiError::invalid("Niepoprawny format danych JSON"))
    };
    if rel.split('/').find(|s| !s.is_empty()) == Some("bulk")
        && let Ok(Some(Value::Array(ops))) = &parsed
    {
        out.bulk_operations = Some(ops.len());
    }
    shared.with(|m| {
        let caller = match auth::authenticate(m, headers) {
            Ok(c) => c,
            Err(e) => {
                m.counters.unauthorized += 1;
                out.refused = Some("unauthorized");
                let mut resp = e.into_response();
                if m.cfg.bucket_headers_on_unauthorized {
                    bucket_headers(&mut resp, idle_report(m));
                }
                return resp;
            }
        };
        out.login = Some(caller.login.clone());
        out.kind = Some(caller.kind);
        let cost = api::cost(m, rel, parsed.as_ref().ok().and_then(Option::as_ref));
        let now = m.now_precise();
        let (limit, bandwidth) = (m.cfg.bucket_limit, m.cfg.bucket_bandwidth);
        let report = match m.buckets.take(&caller.token, now, limit, bandwidth, cost) {
            Admission::Admitted(r) => r,
            Admission::Refused(r, retry) => {
                m.counters.rate_limited += 1;
                out.refused = Some("rate_limited");
                out.bucket_calls = Some(r.calls);
                let mut resp = ApiError::new(
                    429,
                    "temporarily_unavailable",
                    m.cfg.rate_limit_description.clone(),
                )
                .into_response();
                bucket_headers(&mut resp, r);
                set(&mut resp, "retry-after", retry);
                return resp;
            }
        };
        out.bucket_calls = Some(report.calls);
        let result = match &parsed {
            Err(e) => Err(e.clone()),
            Ok(b) => api::dispatch(m, &caller, verb, rel, query, b.as_ref()),
        };
        let mut resp = match result {
            Ok(a) => answer_response(a, verb == Verb::Head),
            Err(e) => e.into_response(),
        };
        bucket_headers(&mut resp, report);
        resp
    })
}

async fn api_handler(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let start = Instant::now();
    let at = rfc3339(chrono::Utc::now());
    let clock_at = rfc3339(shared.st().now_precise());
    let rel = uri
        .path()
        .strip_prefix("/webapi/rest")
        .unwrap_or("")
        .trim_matches('/')
        .to_string();
    let raw_query = uri.query().unwrap_or("");
    let query = Params::parse(raw_query);
    let (fault, retry_after, no_retry_after) = {
        let mut f = lock(&shared.faults);
        (
            f.request_fault(method.as_str(), &rel),
            f.cfg.fail_retry_after,
            f.cfg.fail_without_retry_after,
        )
    };
    if !fault.latency.is_zero() {
        tokio::time::sleep(fault.latency).await;
    }
    let mut out = Outcome::default();
    let mut resp = if let Some(status) = fault.error {
        out.refused = Some("injected_error");
        let report = {
            let m = shared.st();
            BucketReport {
                calls: if status == 429 { m.cfg.bucket_limit } else { 0 },
                ..idle_report(&m)
            }
        };
        injected(status, retry_after, no_retry_after, report)
    } else if rel == "auth" {
        auth_call(&shared, &method, &query, &headers, &body, &mut out)
    } else {
        match Verb::parse(method.as_str()) {
            Some(verb) => api_call(&shared, verb, &rel, &query, &headers, &body, &mut out),
            None => ApiError::method_not_allowed().into_response(),
        }
    };
    if let Some(h) = fault.hang {
        out.refused.get_or_insert("hang");
        tokio::time::sleep(h).await;
    }
    let status = resp.status().as_u16();
    if method == Method::HEAD {
        *resp.body_mut() = Body::empty();
    }
    tracing::debug!(%method, path = %rel, status, "shoper-standin request");
    lock(&shared.requests).push(RequestRecord {
        seq: 0,
        at,
        clock_at,
        method: method.to_string(),
        path: rel,
        query: redact_query(raw_query),
        status,
        duration_ms: start.elapsed().as_millis() as u64,
        login: out.login,
        token_kind: out.kind.map(|k| k.as_str().to_string()),
        bucket_calls: out.bucket_calls,
        bulk_operations: out.bulk_operations,
        refused: out.refused.map(str::to_string),
    });
    resp
}

/// A JSON answer for the control API.
pub fn control_json(status: u16, v: &Value) -> Response {
    json_response(status, v)
}

/// `{"error": msg}` for the control API.
pub fn control_error(status: u16, msg: impl std::fmt::Display) -> Response {
    control_json(status, &json!({"error": msg.to_string()}))
}
