//! The control API under `/__standin` (no auth, not limited, not logged). Plain
//! `application/json`; errors are `{"error": "..."}`.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET/PUT | `/__standin/config` | [`crate::Config`]; PUT merges the given fields |
//! | GET/PUT | `/__standin/faults` | [`crate::FaultConfig`]; PUT merges; `POST /__standin/faults/reset` |
//! | GET | `/__standin/clock` | `{"now": ...}`; `POST /__standin/clock/advance` `{"seconds": N}` |
//! | POST | `/__standin/limits/reset` | forget limit windows and client blocks |
//! | GET | `/__standin/devices` | device codes and their state |
//! | POST | `/__standin/devices/approve` | `{"code": "user or device code", "seller_id"?: "..."}` |
//! | POST | `/__standin/devices/deny` | `{"code": "..."}` |
//! | POST | `/__standin/tokens` | `{"seller_id"?, "scopes"?: [..]}` → a token pair without the device flow |
//! | POST | `/__standin/tokens/expire` | `{"access_token"?}` (none: all) → `{"expired": N}` |
//! | POST | `/__standin/tokens/expire-refresh` | `{"refresh_token"?}` (none: all) |
//! | GET | `/__standin/counters` | [`crate::Counters`] |
//! | GET/POST | `/__standin/offers` | all offers / seed a [`crate::NewOffer`] |
//! | GET/PATCH | `/__standin/offers/{id}` | one offer / `{"available","price","status","archived","name","external_id"}` |
//! | GET | `/__standin/commands` | commands with their tasks |
//! | POST | `/__standin/commands/fail-next-task` | `{"offer_id","code","message"}` |
//! | POST | `/__standin/commands/omit-next-task` | `{"offer_id"}`: the next command's report has no task for it |
//! | GET/POST | `/__standin/orders` | all orders (seller view) / place a [`crate::NewOrder`] |
//! | GET | `/__standin/orders/{id}` | one order: fulfillment status and history, shipments, invoices |
//! | POST | `/__standin/orders/{id}/advance`, `/cancel`, `/auto-cancel`, `/buyer-modify` | buyer/Allegro actions (`buyer-modify`: `{"message"}`) |
//! | POST | `/__standin/orders/{id}/events` | `{"kind": "duplicate-ready" \| "out-of-order" \| "late", "type"?, "occurredAt"?}` |
//! | GET | `/__standin/events` | the whole journal |
//! | POST | `/__standin/returns` | `{"order_id", "status"?}` → a customer return |
//! | GET/DELETE | `/__standin/requests` | request log (`?limit=N`: last N) / clear it |

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::events::{self, EVENT_TYPES};
use crate::faults::FaultConfig;
use crate::oauth::{self, DEFAULT_SCOPES};
use crate::offers::{self, NewOffer, PUBLICATION_STATUSES};
use crate::orders::{self, NewOrder};
use crate::server::{control_error, control_json};
use crate::state::{Shared, lock};
use crate::util::{ApiError, Params, parse_price, ts};

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(index))
        .route("/config", get(config_get).put(config_put))
        .route("/faults", get(faults_get).put(faults_put))
        .route("/faults/reset", post(faults_reset))
        .route("/clock", get(clock_get))
        .route("/clock/advance", post(clock_advance))
        .route("/limits/reset", post(limits_reset))
        .route("/devices", get(devices))
        .route("/devices/approve", post(device_approve))
        .route("/devices/deny", post(device_deny))
        .route("/tokens", post(tokens_issue))
        .route("/tokens/expire", post(tokens_expire))
        .route("/tokens/expire-refresh", post(tokens_expire_refresh))
        .route("/counters", get(counters))
        .route("/offers", get(offers_all).post(offer_add))
        .route("/offers/{id}", get(offer_one).patch(offer_edit))
        .route("/commands", get(commands_all))
        .route("/commands/fail-next-task", post(fail_next_task))
        .route("/commands/omit-next-task", post(omit_next_task))
        .route("/orders", get(orders_all).post(order_place))
        .route("/orders/{id}", get(order_one))
        .route("/orders/{id}/{action}", post(order_action))
        .route("/events", get(events_all))
        .route("/returns", post(return_add))
        .route("/requests", get(requests).delete(requests_clear))
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
    control_json(e.status, &json!({"error": e.message, "code": e.code}))
}

fn ok<T: serde::Serialize>(status: u16, v: &T) -> Response {
    control_json(status, &serde_json::to_value(v).unwrap_or(Value::Null))
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
        "allegro-standin: a local stand-in of Allegro's REST API\n\n\
         API root:    {api}\n\
         OAuth root:  {auth} (/auth/oauth/device, /auth/oauth/token)\n\
         client_id:   {client}\n\
         seller:      {seller} ({login})\n\
         control API: {api}/__standin/ (config, faults, clock, limits, devices, tokens, counters, offers, commands, orders, events, returns, requests)\n",
        api = shared.api_base,
        auth = shared.auth_base,
        client = shared.client_id,
        seller = shared.seller_id,
        login = shared.seller_login,
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
        &json!({"now": ts(m.now()), "offset_ms": m.clock_offset.num_milliseconds()}),
    )
}

async fn clock_advance(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(secs) = v
        .get("seconds")
        .and_then(Value::as_f64)
        .filter(|s| *s >= 0.0)
    else {
        return control_error(400, "seconds (a number ≥ 0) required");
    };
    let mut m = lock(&shared.state);
    m.clock_offset += chrono::Duration::milliseconds((secs * 1000.0) as i64);
    m.settle();
    control_json(200, &json!({"now": ts(m.now())}))
}

async fn limits_reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.st().limits.clear();
    control_json(200, &json!({"reset": true}))
}

async fn devices(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<_> = shared.st().oauth.devices.values().cloned().collect();
    ok(200, &list)
}

async fn device_approve(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(code) = v.get("code").and_then(Value::as_str) else {
        return control_error(400, "code required");
    };
    let seller = v
        .get("seller_id")
        .and_then(Value::as_str)
        .unwrap_or(&shared.seller_id)
        .to_string();
    if oauth::approve(&mut shared.st(), code, &seller) {
        control_json(200, &json!({"approved": code, "seller_id": seller}))
    } else {
        control_error(404, format!("no pending device code {code}"))
    }
}

async fn device_deny(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(code) = v.get("code").and_then(Value::as_str) else {
        return control_error(400, "code required");
    };
    if oauth::deny(&mut shared.st(), code) {
        control_json(200, &json!({"denied": code}))
    } else {
        control_error(404, format!("no pending device code {code}"))
    }
}

async fn tokens_issue(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let seller = v
        .get("seller_id")
        .and_then(Value::as_str)
        .unwrap_or(&shared.seller_id)
        .to_string();
    let scopes: Vec<String> = match v.get("scopes").and_then(Value::as_array) {
        Some(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        None => DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
    };
    let pair = oauth::issue_pair(&mut shared.st(), &shared.client_id, &seller, &scopes, None);
    ok(201, &pair)
}

async fn tokens_expire(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let token = v.get("access_token").and_then(Value::as_str);
    let n = oauth::expire_access(&mut shared.st(), token);
    control_json(200, &json!({"expired": n}))
}

async fn tokens_expire_refresh(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let token = v.get("refresh_token").and_then(Value::as_str);
    let n = oauth::expire_refresh(&mut shared.st(), token);
    control_json(200, &json!({"expired": n}))
}

async fn counters(State(shared): State<Arc<Shared>>) -> Response {
    ok(200, &shared.st().counters)
}

async fn offers_all(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<_> = shared.st().offers.values().cloned().collect();
    ok(200, &list)
}

async fn offer_add(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let n: NewOffer = match parse(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    match offers::add(&mut shared.st(), &shared.seller_id, &n) {
        Ok(o) => ok(201, &o),
        Err(e) => api_err(e),
    }
}

async fn offer_one(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.st().offers.get(&id) {
        Some(o) => ok(200, o),
        None => control_error(404, format!("no offer {id}")),
    }
}

async fn offer_edit(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut m = shared.st();
    let Some(o) = m.offers.get_mut(&id) else {
        return control_error(404, format!("no offer {id}"));
    };
    let mut next = o.clone();
    for (k, val) in &v {
        match k.as_str() {
            "available" => match val.as_i64() {
                Some(q) if q >= 0 => next.available = q,
                _ => return control_error(400, "available: a whole number ≥ 0"),
            },
            "price" => match parse_price(&json!({"amount": val, "currency": next.currency})) {
                Ok((p, _)) => next.price = p,
                Err(e) => return control_error(400, e),
            },
            "status" => match val.as_str() {
                Some(s) if PUBLICATION_STATUSES.contains(&s) => next.status = s.into(),
                _ => return control_error(400, "status: INACTIVE, ACTIVE, ACTIVATING or ENDED"),
            },
            "archived" => match val.as_bool() {
                Some(b) => next.archived = b,
                None => return control_error(400, "archived: true or false"),
            },
            "name" => match val.as_str() {
                Some(s) => next.name = s.into(),
                None => return control_error(400, "name: a string"),
            },
            "external_id" => next.external_id = val.as_str().map(str::to_string),
            other => return control_error(400, format!("unknown field {other}")),
        }
    }
    *o = next;
    ok(200, o)
}

async fn commands_all(State(shared): State<Arc<Shared>>) -> Response {
    let m = shared.st();
    let list: Vec<_> = m
        .command_order
        .iter()
        .filter_map(|k| m.commands.get(k).cloned())
        .collect();
    ok(200, &list)
}

async fn fail_next_task(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(offer), Some(code)) = (s("offer_id"), s("code")) else {
        return control_error(400, "offer_id and code required");
    };
    let message = s("message").unwrap_or_else(|| code.clone());
    shared
        .st()
        .task_failures
        .insert(offer.clone(), (code, message));
    control_json(200, &json!({"offer_id": offer}))
}

async fn omit_next_task(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(offer) = v.get("offer_id").and_then(Value::as_str) else {
        return control_error(400, "offer_id required");
    };
    shared.st().task_omissions.insert(offer.to_owned());
    control_json(200, &json!({"offer_id": offer}))
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
    match orders::place(&mut shared.st(), &shared.seller_id, &n) {
        Ok(o) => ok(201, &o),
        Err(e) => api_err(e),
    }
}

async fn order_one(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.st().orders.get(&id) {
        Some(o) => ok(200, o),
        None => control_error(404, format!("no order {id}")),
    }
}

async fn order_action(
    State(shared): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut m = shared.st();
    let r = match action.as_str() {
        "advance" => orders::advance(&mut m, &id).map(|o| json!(o)),
        "cancel" => orders::cancel(&mut m, &id, false).map(|o| json!(o)),
        "auto-cancel" => orders::cancel(&mut m, &id, true).map(|o| json!(o)),
        "buyer-modify" => {
            let msg = v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("changed by the buyer");
            orders::buyer_modify(&mut m, &id, msg).map(|o| json!(o))
        }
        "events" => {
            let Some(order) = m.orders.get(&id).cloned() else {
                return control_error(404, format!("no order {id}"));
            };
            let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
            let ty = v
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("READY_FOR_PROCESSING");
            if !EVENT_TYPES.contains(&ty) {
                return control_error(400, format!("unknown event type {ty}"));
            }
            let at: Option<DateTime<Utc>> = match v.get("occurredAt").and_then(Value::as_str) {
                Some(s) => match DateTime::parse_from_rfc3339(s) {
                    Ok(t) => Some(t.with_timezone(&Utc)),
                    Err(e) => return control_error(400, format!("occurredAt: {e}")),
                },
                None => None,
            };
            let e = match kind {
                "duplicate-ready" => events::push(&mut m, &order, "READY_FOR_PROCESSING", None),
                "out-of-order" => {
                    let earlier = m
                        .events
                        .last()
                        .map(|e| e.occurred_at)
                        .unwrap_or_else(|| m.now())
                        - chrono::Duration::seconds(1);
                    events::push(&mut m, &order, ty, Some(earlier))
                }
                "late" => {
                    let when = at.unwrap_or_else(|| m.now() - chrono::Duration::hours(1));
                    events::push(&mut m, &order, ty, Some(when))
                }
                other => {
                    return control_error(
                        400,
                        format!("kind {other:?}: duplicate-ready, out-of-order or late"),
                    );
                }
            };
            Ok(json!(e))
        }
        other => return control_error(404, format!("unknown action {other}")),
    };
    match r {
        Ok(v) => control_json(200, &v),
        Err(e) => api_err(e),
    }
}

async fn events_all(State(shared): State<Arc<Shared>>) -> Response {
    ok(200, &shared.st().events)
}

async fn return_add(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let v = match object(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(order) = v.get("order_id").and_then(Value::as_str) else {
        return control_error(400, "order_id required");
    };
    let status = v.get("status").and_then(Value::as_str).unwrap_or("CREATED");
    match orders::add_return(&mut shared.st(), order, status) {
        Ok(r) => ok(201, &r),
        Err(e) => api_err(e),
    }
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
