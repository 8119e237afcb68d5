//! The control API under `/__standin` (no auth, no bucket, not logged). Plain JSON; errors are
//! `{"error": "..."}` (API refusals add `"code"`, Shoper's `error`).
//!
//! | method | path | what |
//! |---|---|---|
//! | GET/PUT | `/__standin/config` | [`crate::Config`]; PUT merges the given fields |
//! | GET/PUT | `/__standin/faults` | [`crate::FaultConfig`]; PUT merges; `POST /__standin/faults/reset` |
//! | GET | `/__standin/clock` | `{"now", "frozen"}`; `POST /__standin/clock/advance` `{"seconds": N}`, `POST /__standin/clock/freeze`, `POST /__standin/clock/unfreeze` |
//! | POST | `/__standin/buckets/reset` | empty every request bucket |
//! | GET/POST | `/__standin/users` | WebAPI users / add a [`crate::User`] `{"login","password","webapi_access"?,"ip_allowed"?,"scopes"?}` |
//! | GET/POST | `/__standin/tokens` | tokens / mint one `{"kind"?: "panel"\|"auth", "scopes"?: [..]}` |
//! | POST | `/__standin/tokens/expire`, `/__standin/tokens/revoke` | `{"access_token"?}` (none: all) → `{"count": N}` |
//! | GET/POST | `/__standin/products` | products / seed a [`crate::NewProduct`] `{"code","name","price","stock"}` |
//! | GET | `/__standin/products/{id}` | a product with its stocks |
//! | POST | `/__standin/products/{id}/variants` | seed a [`crate::NewVariant`] `{"code","option_name","price"?,"stock"}` |
//! | GET | `/__standin/stocks` | stocks (`?code=SKU` filters) |
//! | GET/PATCH | `/__standin/stocks/{id}` | a stock / panel edit `{"stock"?,"price"?,"active"?,"code"?,"ean"?}` |
//! | GET/POST | `/__standin/orders` | orders / place a [`crate::NewOrder`] as a buyer `{"email","lines":[{"code","quantity"}],...}` |
//! | GET | `/__standin/orders/{id}` | an order as the webhook body shows it, plus `parcels` |
//! | POST | `/__standin/orders/{id}/status` | `{"status_id": N}` (panel) |
//! | POST | `/__standin/orders/{id}/paid` | record full payment |
//! | GET | `/__standin/statuses` | statuses |
//! | GET/POST | `/__standin/webhooks` | webhooks / add a [`crate::NewWebhook`] `{"url","secret","events"?,"format"?}` |
//! | GET/DELETE | `/__standin/deliveries` | webhook delivery attempts / clear them |
//! | GET/DELETE | `/__standin/requests` | request log (`?limit=N`: last N) / clear it |
//! | GET | `/__standin/counters` | [`crate::Counters`] |

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::auth::{self, TokenKind, User};
use crate::catalog::{self, NewProduct, NewVariant};
use crate::config::Config;
use crate::error::ApiError;
use crate::faults::FaultConfig;
use crate::orders::{self, NewOrder};
use crate::server::{control_error, control_json};
use crate::state::{Shared, lock};
use crate::util::{Params, bool_of, decimal_of, known_zone, rfc3339, string_of};
use crate::webhooks::{self, NewWebhook};

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(index))
        .route("/config", get(config_get).put(config_put))
        .route("/faults", get(faults_get).put(faults_put))
        .route("/faults/reset", post(faults_reset))
        .route("/clock", get(clock_get))
        .route("/clock/{action}", post(clock_action))
        .route("/buckets/reset", post(buckets_reset))
        .route("/users", get(users_all).post(user_add))
        .route("/tokens", get(tokens_all).post(token_issue))
        .route("/tokens/{action}", post(tokens_action))
        .route("/products", get(products_all).post(product_add))
        .route("/products/{id}", get(product_one))
        .route("/products/{id}/variants", post(variant_add))
        .route("/stocks", get(stocks_all))
        .route("/stocks/{id}", get(stock_one).patch(stock_edit))
        .route("/orders", get(orders_all).post(order_place))
        .route("/orders/{id}", get(order_one))
        .route("/orders/{id}/{action}", post(order_action))
        .route("/statuses", get(statuses))
        .route("/webhooks", get(webhooks_all).post(webhook_add))
        .route("/deliveries", get(deliveries).delete(deliveries_clear))
        .route("/requests", get(requests).delete(requests_clear))
        .route("/counters", get(counters))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| control_error(400, e))
}

fn object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match parse::<Value>(body)? {
        Value::Object(m) => Ok(m),
        _ => Err(control_error(400, "expected a JSON object")),
    }
}

fn api_err(e: ApiError) -> Response {
    control_json(
        e.status,
        &json!({"error": e.description.clone().unwrap_or_else(|| e.error.clone()), "code": e.error}),
    )
}

fn ok<T: serde::Serialize>(status: u16, v: &T) -> Response {
    control_json(status, &serde_json::to_value(v).unwrap_or(Value::Null))
}

fn id_of(s: &str) -> Result<u64, Response> {
    s.parse()
        .map_err(|_| control_error(404, format!("no such id {s}")))
}

/// Merges `patch` into `current` (serialised) and reads it back.
fn merge<T: serde::Serialize + DeserializeOwned>(
    current: &T,
    patch: Map<String, Value>,
) -> Result<T, String> {
    let mut cur = match serde_json::to_value(current) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (k, v) in patch {
        if !cur.contains_key(&k) {
            return Err(format!("unknown field {k}"));
        }
        cur.insert(k, v);
    }
    serde_json::from_value(Value::Object(cur)).map_err(|e| e.to_string())
}

pub async fn index(State(shared): State<Arc<Shared>>) -> Response {
    format!(
        "shoper-standin: a local stand-in of the Shoper REST API\n\n\
         API root:    {base}/webapi/rest (POST /auth with Basic {login}:<password>)\n\
         shop domain: {domain}\n\
         control API: {base}/__standin/ (config, faults, clock, buckets, users, tokens, products, stocks, orders, statuses, webhooks, deliveries, requests, counters)\n",
        base = shared.base_url,
        login = shared.login,
        domain = shared.shop_domain,
    )
    .into_response()
}

async fn config_get(State(shared): State<Arc<Shared>>) -> Response {
    ok(200, &shared.st().cfg)
}

async fn config_put(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let patch = match object(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut m = shared.st();
    match merge::<Config>(&m.cfg, patch) {
        Ok(cfg) if !known_zone(&cfg.locale_timezone) => {
            control_error(400, format!("unknown time zone {}", cfg.locale_timezone))
        }
        Ok(cfg) => {
            m.cfg = cfg;
            ok(200, &m.cfg)
        }
        Err(e) => control_error(400, e),
    }
}

async fn faults_get(State(shared): State<Arc<Shared>>) -> Response {
    ok(200, &lock(&shared.faults).cfg)
}

async fn faults_put(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let patch = match object(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut f = lock(&shared.faults);
    match merge::<FaultConfig>(&f.cfg, patch) {
        Ok(cfg) => {
            f.cfg = cfg;
            ok(200, &f.cfg)
        }
        Err(e) => control_error(400, e),
    }
}

async fn faults_reset(State(shared): State<Arc<Shared>>) -> Response {
    let mut f = lock(&shared.faults);
    f.cfg = FaultConfig::default();
    ok(200, &f.cfg)
}

async fn clock_get(State(shared): State<Arc<Shared>>) -> Response {
    let m = shared.st();
    control_json(
        200,
        &json!({
            "now": rfc3339(m.now_precise()),
            "local": m.local(m.now()),
            "frozen": m.frozen_at.is_some(),
            "offset_ms": m.clock_offset.num_milliseconds(),
        }),
    )
}

async fn clock_action(
    State(shared): State<Arc<Shared>>,
    Path(action): Path<String>,
    body: Bytes,
) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut m = shared.st();
    match action.as_str() {
        "advance" => {
            let Some(secs) = v
                .get("seconds")
                .and_then(Value::as_f64)
                .filter(|s| *s >= 0.0)
            else {
                return control_error(400, "seconds (a number ≥ 0) required");
            };
            m.clock_offset += chrono::Duration::milliseconds((secs * 1000.0) as i64);
        }
        "freeze" => {
            if m.frozen_at.is_none() {
                m.frozen_at = Some(chrono::Utc::now());
            }
        }
        "unfreeze" => {
            if let Some(at) = m.frozen_at.take() {
                m.clock_offset -= chrono::Utc::now() - at;
            }
        }
        other => return control_error(404, format!("unknown clock action {other}")),
    }
    control_json(
        200,
        &json!({"now": rfc3339(m.now_precise()), "frozen": m.frozen_at.is_some()}),
    )
}

async fn buckets_reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.st().buckets.clear();
    control_json(200, &json!({"reset": true}))
}

async fn users_all(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<User> = shared.st().users.values().cloned().collect();
    ok(200, &list)
}

async fn user_add(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let u: User = match parse(&body) {
        Ok(u) => u,
        Err(r) => return r,
    };
    shared.st().users.insert(u.login.clone(), u.clone());
    ok(201, &u)
}

async fn tokens_all(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<_> = shared.st().tokens.values().cloned().collect();
    ok(200, &list)
}

async fn token_issue(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let kind = match v.get("kind").and_then(Value::as_str).unwrap_or("panel") {
        "panel" => TokenKind::Panel,
        "auth" => TokenKind::Auth,
        other => return control_error(400, format!("kind {other:?}: panel or auth")),
    };
    let scopes: Option<Vec<String>> = match v.get("scopes") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.iter().filter_map(string_of).collect()),
        Some(_) => return control_error(400, "scopes: a list of strings"),
    };
    let login = v
        .get("login")
        .and_then(Value::as_str)
        .unwrap_or(&shared.login)
        .to_string();
    let t = shared.with(|m| {
        let ttl = match kind {
            TokenKind::Panel => m.cfg.panel_token_ttl_secs,
            TokenKind::Auth => Some(m.cfg.token_ttl_secs),
        };
        auth::mint(m, &login, kind, ttl, scopes)
    });
    ok(201, &t)
}

async fn tokens_action(
    State(shared): State<Arc<Shared>>,
    Path(action): Path<String>,
    body: Bytes,
) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let token = v.get("access_token").and_then(Value::as_str);
    let mut m = shared.st();
    let n = match action.as_str() {
        "expire" => auth::expire(&mut m, token),
        "revoke" => auth::revoke(&mut m, token),
        other => return control_error(404, format!("unknown token action {other}")),
    };
    control_json(200, &json!({"count": n}))
}

async fn products_all(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<_> = shared.st().products.values().cloned().collect();
    ok(200, &list)
}

async fn product_add(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let n: NewProduct = match parse(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    match shared.with(|m| {
        catalog::add_product(m, &n).map(|p| {
            let stock = m.stocks.get(&p.base_stock_id).cloned();
            json!({"product": p, "stock": stock})
        })
    }) {
        Ok(v) => control_json(201, &v),
        Err(e) => api_err(e),
    }
}

async fn product_one(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let m = shared.st();
    match m.products.get(&id) {
        Some(p) => {
            let stocks: Vec<_> = m.stocks.values().filter(|s| s.product_id == id).collect();
            control_json(200, &json!({"product": p, "stocks": stocks}))
        }
        None => control_error(404, format!("no product {id}")),
    }
}

async fn variant_add(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let n: NewVariant = match parse(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    match shared.with(|m| catalog::add_variant(m, id, &n)) {
        Ok(s) => ok(201, &s),
        Err(e) => api_err(e),
    }
}

async fn stocks_all(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let p = Params::from_query(q.as_deref());
    let code = p.get("code");
    let list: Vec<_> = shared
        .st()
        .stocks
        .values()
        .filter(|s| code.is_none_or(|c| s.code == c))
        .cloned()
        .collect();
    ok(200, &list)
}

async fn stock_one(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    match shared.st().stocks.get(&id) {
        Some(s) => ok(200, s),
        None => control_error(404, format!("no stock {id}")),
    }
}

async fn stock_edit(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let r = shared.with(|m| {
        let Some(cur) = m.stocks.get(&id).cloned() else {
            return Err(control_error(404, format!("no stock {id}")));
        };
        let mut s = cur;
        for (k, val) in &v {
            match k.as_str() {
                "stock" => match decimal_of(val) {
                    Some(d) => s.stock = d,
                    None => return Err(control_error(400, "stock: a number")),
                },
                "price" => match decimal_of(val) {
                    Some(d) if d > rust_decimal::Decimal::ZERO => {
                        s.price = d;
                        s.price_type = 1;
                    }
                    _ => return Err(control_error(400, "price: a number > 0")),
                },
                "active" => match bool_of(val) {
                    Some(b) => s.active = b,
                    None => return Err(control_error(400, "active: true or false")),
                },
                "code" => match string_of(val) {
                    Some(c) => s.code = c,
                    None => return Err(control_error(400, "code: a string")),
                },
                "ean" => match string_of(val) {
                    Some(c) => s.ean = c,
                    None => return Err(control_error(400, "ean: a string")),
                },
                other => return Err(control_error(400, format!("unknown field {other}"))),
            }
        }
        let pid = s.product_id;
        m.stocks.insert(id, s.clone());
        let now = m.now();
        if let Some(p) = m.products.get_mut(&pid) {
            p.edit_date = now;
        }
        if let Some(p) = m.products.get(&pid) {
            let body = catalog::product_json(m, p);
            m.emit("product.edit", body);
        }
        Ok(s)
    });
    match r {
        Ok(s) => ok(200, &s),
        Err(resp) => resp,
    }
}

async fn orders_all(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<_> = shared.st().orders.values().cloned().collect();
    ok(200, &list)
}

async fn order_place(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let n: NewOrder = match parse(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    match shared.with(|m| orders::place(m, &n).map(|o| orders::order_json(m, &o, true))) {
        Ok(v) => control_json(201, &v),
        Err(e) => api_err(e),
    }
}

async fn order_one(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let m = shared.st();
    match m.orders.get(&id) {
        Some(o) => {
            let mut v = orders::order_json(&m, o, true);
            let parcels: Vec<_> = m.parcels.values().filter(|p| p.order_id == id).collect();
            if let Value::Object(map) = &mut v {
                map.insert("parcels".into(), json!(parcels));
            }
            control_json(200, &v)
        }
        None => control_error(404, format!("no order {id}")),
    }
}

async fn order_action(
    State(shared): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let r = match action.as_str() {
        "status" => {
            let Some(status) = v.get("status_id").and_then(crate::util::u64_of) else {
                return control_error(400, "status_id required");
            };
            shared.with(|m| orders::set_status(m, id, status))
        }
        "paid" => shared.with(|m| orders::mark_paid(m, id)),
        other => return control_error(404, format!("unknown action {other}")),
    };
    match r {
        Ok(o) => ok(200, &o),
        Err(e) => api_err(e),
    }
}

async fn statuses(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<_> = shared.st().statuses.values().cloned().collect();
    ok(200, &list)
}

async fn webhooks_all(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<_> = shared.st().webhooks.values().cloned().collect();
    ok(200, &list)
}

async fn webhook_add(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let n: NewWebhook = match parse(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    match shared.with(|m| webhooks::add(m, &n)) {
        Ok(w) => ok(201, &w),
        Err(e) => api_err(e),
    }
}

async fn deliveries(State(shared): State<Arc<Shared>>) -> Response {
    ok(200, &lock(&shared.deliveries).items)
}

async fn deliveries_clear(State(shared): State<Arc<Shared>>) -> Response {
    lock(&shared.deliveries).items.clear();
    control_json(200, &json!({"cleared": true}))
}

async fn requests(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let all = lock(&shared.requests).all();
    let p = Params::from_query(q.as_deref());
    let limit = p
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(all.len());
    let skip = all.len().saturating_sub(limit);
    ok(200, &all[skip..].to_vec())
}

async fn requests_clear(State(shared): State<Arc<Shared>>) -> Response {
    lock(&shared.requests).clear();
    control_json(200, &json!({"cleared": true}))
}

async fn counters(State(shared): State<Arc<Shared>>) -> Response {
    ok(200, &shared.st().counters)
}
