//! The HTTP server: routes under `/wp-json/wc/v3`, the request pipeline and `/__standin`.
//!
//! Pipeline for every `/wp-json` request: count it (stats, 1-second window) → rate limiter (429 +
//! `Retry-After`) → injected 5xx → hang-before (if so configured) → auth (route layer) → handler →
//! hang-after → request log.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::error::ApiError;
use crate::requests::{RequestRecord, redact_query};
use crate::shared::{Shared, lock};
use crate::stats::endpoint_key;
use crate::{
    auth, categories, control, coupons, index, notes, orders, products, refunds, tracking,
    variations, webhooks,
};

/// Builds the whole application.
pub fn router(shared: Arc<Shared>) -> Router {
    let shipment_tracking = shared.shipment_tracking;
    let api = Router::new()
        .route(
            "/products",
            get(products::list_handler).post(products::create_handler),
        )
        .route("/products/batch", post(products::batch_handler))
        .route(
            "/products/categories",
            get(categories::list_handler).post(categories::create_handler),
        )
        .route("/products/categories/{id}", get(categories::get_handler))
        .route(
            "/products/{id}",
            get(products::get_handler)
                .put(products::update_handler)
                .patch(products::update_handler)
                .post(products::update_handler)
                .delete(products::delete_handler),
        )
        .route(
            "/products/{id}/variations",
            get(variations::list_handler).post(variations::create_handler),
        )
        .route(
            "/products/{id}/variations/batch",
            post(variations::batch_handler),
        )
        .route(
            "/products/{id}/variations/{vid}",
            get(variations::get_handler)
                .put(variations::update_handler)
                .patch(variations::update_handler)
                .post(variations::update_handler)
                .delete(variations::delete_handler),
        )
        .route(
            "/orders",
            get(orders::list_handler).post(orders::create_handler),
        )
        .route("/orders/batch", post(orders::batch_handler))
        .route(
            "/orders/{id}",
            get(orders::get_handler)
                .put(orders::update_handler)
                .patch(orders::update_handler)
                .post(orders::update_handler)
                .delete(orders::delete_handler),
        )
        .route(
            "/orders/{id}/refunds",
            get(refunds::list_handler).post(refunds::create_handler),
        )
        .route(
            "/orders/{id}/refunds/{refund_id}",
            get(refunds::get_handler),
        )
        .route("/refunds", get(refunds::all_handler))
        .route(
            "/orders/{id}/notes",
            get(notes::list_handler).post(notes::create_handler),
        )
        .route(
            "/orders/{id}/notes/{note_id}",
            get(notes::get_handler).delete(notes::delete_handler),
        )
        .route(
            "/coupons",
            get(coupons::list_handler).post(coupons::create_handler),
        )
        .route("/coupons/{id}", get(coupons::get_handler))
        .route(
            "/webhooks",
            get(webhooks::list_handler).post(webhooks::create_handler),
        )
        .route(
            "/webhooks/{id}",
            get(webhooks::get_handler)
                .put(webhooks::update_handler)
                .patch(webhooks::update_handler)
                .post(webhooks::update_handler)
                .delete(webhooks::delete_handler),
        )
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            auth::require_auth,
        ))
        .fallback(no_route)
        .method_not_allowed_fallback(no_route);

    let mut app = Router::new()
        .route("/wp-json", get(index::site_index))
        .route("/wp-json/", get(index::site_index))
        .route("/wp-json/wc/v3", get(index::namespace_index))
        .nest("/wp-json/wc/v3", api);
    if shipment_tracking {
        let st = Router::new()
            .route(
                "/orders/{id}/shipment-trackings",
                get(tracking::list_handler).post(tracking::create_handler),
            )
            .route(
                "/orders/{id}/shipment-trackings/{tid}",
                get(tracking::get_handler).delete(tracking::delete_handler),
            )
            .route_layer(middleware::from_fn_with_state(
                Arc::clone(&shared),
                auth::require_auth,
            ))
            .fallback(no_route)
            .method_not_allowed_fallback(no_route);
        app = app.nest("/wp-json/wc-shipment-tracking/v3", st);
    }
    app.fallback(outer_fallback)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            pipeline,
        ))
        .nest("/__standin", control::router())
        .route("/__standin/", get(control::index))
        .route("/", get(control::index))
        .with_state(shared)
}

async fn outer_fallback(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if req.uri().path().starts_with("/wp-json") {
        auth::invalid_credentials(&shared, &req)
            .unwrap_or_else(|| ApiError::no_route().into_response())
    } else {
        (
            StatusCode::NOT_FOUND,
            "not found; see / for the stand-in's endpoints\n",
        )
            .into_response()
    }
}

async fn no_route(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    auth::invalid_credentials(&shared, &req).unwrap_or_else(|| ApiError::no_route().into_response())
}

fn injected_error(status: u16, retry_after: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let body = format!(
        "<html><head><title>{status} {}</title></head><body><h1>{status} {}</h1></body></html>",
        code.canonical_reason().unwrap_or(""),
        code.canonical_reason().unwrap_or("")
    );
    let mut resp = (code, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Stats, rate limit, faults and the request log around every `/wp-json` request.
async fn pipeline(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if !path.starts_with("/wp-json") {
        return next.run(req).await;
    }
    let start = Instant::now();
    let at = chrono::Utc::now().to_rfc3339();
    let method = req.method().to_string();
    let query = req.uri().query().map(redact_query).unwrap_or_default();
    let endpoint = endpoint_key(&method, &path);
    lock(&shared.stats).on_arrival(&endpoint, start);

    let mut fault_name: Option<String> = None;
    let limited = lock(&shared.limiter).check(start);
    let resp = match limited {
        Err(retry_after) => {
            lock(&shared.stats).snapshot.rate_limited += 1;
            fault_name = Some("rate_limited".into());
            let mut resp = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({
                    "code": "rate_limit_exceeded",
                    "message": format!("Too many requests. Please wait {retry_after} seconds before trying again."),
                    "data": {"status": 429}
                })),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Ok(()) => {
            lock(&shared.stats).on_admitted(start);
            let (fault, latency, max_concurrent, fail_status, retry_after) = {
                let mut f = lock(&shared.faults);
                let fault = f.request_fault(&path);
                (
                    fault,
                    f.cfg.latency_ms,
                    f.cfg.max_concurrent,
                    f.cfg.fail_status,
                    f.cfg.fail_retry_after,
                )
            };
            let guard = InFlight::enter(&shared);
            let now_in_flight = guard.count;
            if max_concurrent.is_some_and(|m| now_in_flight > m as usize) {
                lock(&shared.stats).snapshot.rejected_concurrency += 1;
                fault_name = Some("too_many_concurrent".into());
                injected_error(fail_status, retry_after)
            } else if let Some(status) = fault.error {
                lock(&shared.stats).snapshot.injected_errors += 1;
                fault_name = Some("injected_error".into());
                injected_error(status, retry_after)
            } else {
                if latency > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
                }
                if let Some(h) = fault.hang {
                    lock(&shared.stats).snapshot.injected_timeouts += 1;
                    fault_name = Some("hang".into());
                    if fault.hang_before {
                        tokio::time::sleep(h).await;
                    }
                }
                let resp = next.run(req).await;
                if let Some(h) = fault.hang
                    && !fault.hang_before
                {
                    tokio::time::sleep(h).await;
                }
                resp
            }
        }
    };
    let status = resp.status().as_u16();
    tracing::debug!(%method, %path, status, ms = start.elapsed().as_millis() as u64, fault = ?fault_name, "api request");
    lock(&shared.stats).on_status(status);
    lock(&shared.requests).push(RequestRecord {
        seq: 0,
        at,
        method,
        path,
        query,
        endpoint,
        status,
        duration_ms: start.elapsed().as_millis() as u64,
        fault: fault_name,
    });
    resp
}

/// Counts a request as in flight for its lifetime (also when the client disconnects).
struct InFlight<'a> {
    shared: &'a Shared,
    count: usize,
}

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let count = shared
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        {
            let mut st = lock(&shared.stats);
            st.snapshot.max_in_flight = st.snapshot.max_in_flight.max(count);
        }
        InFlight { shared, count }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.shared
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
