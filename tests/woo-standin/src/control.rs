//! The control API under `/__standin` (no auth, not rate limited, not counted): read the shop's
//! state, counters and logs, set faults and the rate limit, act in the shop.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/__standin/state` | the whole shop (products, orders, notes, coupons, webhooks with secrets) |
//! | GET | `/__standin/stats` | counters ([`crate::Stats`]); `POST /__standin/stats/reset` |
//! | GET/PUT | `/__standin/faults` | [`crate::FaultConfig`] (PUT merges the given fields); `POST /__standin/faults/reset` |
//! | GET/PUT | `/__standin/rate-limit` | `{"per_sec": N \| null}` |
//! | GET/PUT | `/__standin/settings` | `{"price_decimals": N}` (WooCommerce's `woocommerce_price_num_decimals`, 0–6) |
//! | GET/PUT | `/__standin/clock` | `{"now": "2025-03-01T12:00:00Z"}` pins the shop's clock (every date it writes), `{"now": null}` lets it run |
//! | GET/POST | `/__standin/products` | all products / add a [`crate::NewProduct`] |
//! | GET | `/__standin/products/{sku}` | product or variation by SKU (404 if none) |
//! | PUT | `/__standin/products/{sku}/stock` | `{"stock_quantity": N}` |
//! | GET/POST | `/__standin/orders` | all orders / place a [`crate::NewOrder`] |
//! | GET | `/__standin/orders/{id}` | one order with its notes |
//! | PUT | `/__standin/orders/{id}/status` | `{"status": "completed"}` |
//! | GET/DELETE | `/__standin/requests` | request log (`?limit=N`: last N) |
//! | GET/DELETE | `/__standin/webhook-deliveries` | delivery log |
//! | POST | `/__standin/reset` | empty shop, logs, counters |
//! | POST | `/__standin/save` | write the state file now |

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use crate::actions;
use crate::faults::FaultConfig;
use crate::orders::NewOrder;
use crate::params::Query;
use crate::products::NewProduct;
use crate::shared::{Shared, lock};

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(index))
        .route("/state", get(state))
        .route("/stats", get(stats))
        .route("/stats/reset", post(stats_reset))
        .route("/faults", get(faults_get).put(faults_put))
        .route("/faults/reset", post(faults_reset))
        .route("/rate-limit", get(rate_get).put(rate_put))
        .route("/settings", get(settings_get).put(settings_put))
        .route("/clock", get(clock_get).put(clock_put))
        .route("/products", get(products_all).post(product_add))
        .route("/products/{sku}", get(product_by_sku))
        .route("/products/{sku}/stock", put(product_stock))
        .route("/orders", get(orders_all).post(order_place))
        .route("/orders/{id}", get(order_one))
        .route("/orders/{id}/status", put(order_status))
        .route("/requests", get(requests).delete(requests_clear))
        .route(
            "/webhook-deliveries",
            get(deliveries).delete(deliveries_clear),
        )
        .route("/reset", post(reset))
        .route("/save", post(save))
}

fn bad_request(msg: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": msg.to_string()})),
    )
        .into_response()
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

pub async fn index(State(shared): State<Arc<Shared>>) -> Response {
    let text = format!(
        "woo-standin: a WooCommerce REST API v3 stand-in\n\n\
         API root:      {root}\n\
         consumer key:  {key}\n\
         control API:   {base}/__standin/ (state, stats, faults, rate-limit, settings, clock, products, orders, requests, webhook-deliveries, reset, save)\n",
        root = shared.api_root(),
        key = shared.consumer_key,
        base = shared.base_url,
    );
    text.into_response()
}

async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let shop = shared.shop().clone();
    Json(serde_json::to_value(&shop).unwrap_or(Value::Null)).into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(lock(&shared.stats).snapshot()).into_response()
}

async fn stats_reset(State(shared): State<Arc<Shared>>) -> Response {
    lock(&shared.stats).reset();
    StatusCode::NO_CONTENT.into_response()
}

async fn faults_get(State(shared): State<Arc<Shared>>) -> Response {
    Json(lock(&shared.faults).cfg.clone()).into_response()
}

/// Merges the given fields into the current configuration (fields not given keep their value).
async fn faults_put(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let patch = match parse::<Value>(&body) {
        Ok(Value::Object(p)) => p,
        Ok(_) => return bad_request("expected a JSON object"),
        Err(e) => return bad_request(e),
    };
    let mut f = lock(&shared.faults);
    let mut current = match serde_json::to_value(&f.cfg) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for (k, v) in patch {
        current.insert(k, v);
    }
    match serde_json::from_value::<FaultConfig>(Value::Object(current)) {
        Ok(cfg) => {
            f.cfg = cfg.clone();
            Json(cfg).into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn faults_reset(State(shared): State<Arc<Shared>>) -> Response {
    let mut f = lock(&shared.faults);
    let keep_delay = f.cfg.webhook_delay_ms;
    f.cfg = FaultConfig {
        webhook_delay_ms: keep_delay,
        ..FaultConfig::default()
    };
    Json(f.cfg.clone()).into_response()
}

async fn settings_get(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({"price_decimals": shared.precision().0})).into_response()
}

async fn settings_put(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let patch = match parse::<Value>(&body) {
        Ok(Value::Object(p)) => p,
        Ok(_) => return bad_request("expected a JSON object"),
        Err(e) => return bad_request(e),
    };
    for (key, value) in patch {
        match (key.as_str(), value.as_u64()) {
            ("price_decimals", Some(n)) if n <= 6 => shared
                .price_decimals
                .store(n as u32, std::sync::atomic::Ordering::SeqCst),
            ("price_decimals", _) => return bad_request("price_decimals: a whole number 0–6"),
            (other, _) => return bad_request(format!("unknown setting {other}")),
        }
    }
    settings_get(State(shared)).await
}

async fn clock_get(State(shared): State<Arc<Shared>>) -> Response {
    let now = shared.clock.now().to_rfc3339();
    Json(json!({"now": now, "pinned": shared.clock.pinned().is_some()})).into_response()
}

/// `{"now": RFC 3339}` pins the clock there; `{"now": null}` lets it run with the wall clock.
async fn clock_put(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let at = match parse::<Value>(&body) {
        Ok(v) => match v.get("now") {
            Some(Value::Null) => None,
            Some(Value::String(t)) => match chrono::DateTime::parse_from_rfc3339(t) {
                Ok(t) => Some(t.with_timezone(&chrono::Utc)),
                Err(e) => return bad_request(format!("now: {e}")),
            },
            _ => return bad_request("expected {\"now\": RFC 3339 time or null}"),
        },
        Err(e) => return bad_request(e),
    };
    shared.clock.pin(at);
    clock_get(State(shared)).await
}

async fn rate_get(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({"per_sec": lock(&shared.limiter).limit()})).into_response()
}

async fn rate_put(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<Value>(&body) {
        Ok(v) => {
            let per_sec = v
                .get("per_sec")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok());
            lock(&shared.limiter).set_limit(per_sec);
            Json(json!({"per_sec": per_sec})).into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn products_all(State(shared): State<Arc<Shared>>) -> Response {
    let all: Vec<_> = shared.shop().products.values().cloned().collect();
    Json(all).into_response()
}

async fn product_add(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let np = match parse::<NewProduct>(&body) {
        Ok(np) => np,
        Err(e) => return bad_request(e),
    };
    match actions::add_product(&shared, &np) {
        Ok(p) => (StatusCode::CREATED, Json(p)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn product_by_sku(State(shared): State<Arc<Shared>>, Path(sku): Path<String>) -> Response {
    let shop = shared.shop();
    match shop.id_by_sku(&sku).and_then(|id| shop.products.get(&id)) {
        Some(p) => Json(p.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no product with SKU {sku}")})),
        )
            .into_response(),
    }
}

async fn product_stock(
    State(shared): State<Arc<Shared>>,
    Path(sku): Path<String>,
    body: Bytes,
) -> Response {
    let v = match parse::<Value>(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(e),
    };
    let Some(qty) = v.get("stock_quantity").and_then(Value::as_i64) else {
        return bad_request("stock_quantity (integer) required");
    };
    match actions::set_stock(&shared, &sku, qty) {
        Ok(p) => Json(p).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn orders_all(State(shared): State<Arc<Shared>>) -> Response {
    let all: Vec<_> = shared.shop().orders.values().cloned().collect();
    Json(all).into_response()
}

async fn order_place(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let no = match parse::<NewOrder>(&body) {
        Ok(no) => no,
        Err(e) => return bad_request(e),
    };
    match actions::place_order(&shared, &no) {
        Ok(o) => (StatusCode::CREATED, Json(o)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn order_one(State(shared): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    let shop = shared.shop();
    match shop.orders.get(&id) {
        Some(o) => Json(json!({
            "order": o,
            "notes": shop.order_notes.get(&id).cloned().unwrap_or_default(),
            "stock_reduced": shop.stock_reduced.contains(&id),
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such order"})),
        )
            .into_response(),
    }
}

async fn order_status(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let v = match parse::<Value>(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(e),
    };
    let Some(status) = v.get("status").and_then(Value::as_str) else {
        return bad_request("status (string) required");
    };
    match actions::set_order_status(&shared, id, status) {
        Ok(o) => Json(o).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn requests(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let all = lock(&shared.requests).all();
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(all.len());
    let skip = all.len().saturating_sub(limit);
    Json(&all[skip..]).into_response()
}

async fn requests_clear(State(shared): State<Arc<Shared>>) -> Response {
    lock(&shared.requests).clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn deliveries(State(shared): State<Arc<Shared>>) -> Response {
    Json(lock(&shared.deliveries).clone()).into_response()
}

async fn deliveries_clear(State(shared): State<Arc<Shared>>) -> Response {
    lock(&shared.deliveries).clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    actions::reset(&shared);
    StatusCode::NO_CONTENT.into_response()
}

async fn save(State(shared): State<Arc<Shared>>) -> Response {
    match crate::persist::save(&shared) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}
