//! The order event journal (research notes §3.1, §3.2): `GET /order/events` and
//! `GET /order/event-stats`.
//!
//! Ids are 16-digit numeric strings (microseconds on the stand-in's clock, bumped to stay
//! strictly increasing), so they sort the same as text and as numbers. `from` is exclusive,
//! `limit` 1–1000, `type` repeatable, events older than `event_retention_days` are not served.
//! Test hooks append a duplicate READY_FOR_PROCESSING, an event whose `occurredAt` is earlier
//! than the previous event's, or a late event with any `occurredAt`: each gets a new, higher id.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::oauth::Caller;
use crate::offers::seller_of;
use crate::orders::{Order, line_item_json};
use crate::state::{Shared, State as Market};
use crate::util::{ApiError, Params, ts, vnd_json};

/// Event types (`OrderEventType`).
pub const EVENT_TYPES: [&str; 7] = [
    "BOUGHT",
    "FILLED_IN",
    "READY_FOR_PROCESSING",
    "BUYER_CANCELLED",
    "FULFILLMENT_STATUS_CHANGED",
    "AUTO_CANCELLED",
    "BUYER_MODIFIED",
];

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// 16-digit numeric string.
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    /// When it entered the journal (retention counts from here).
    pub recorded_at: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    pub order_id: String,
    pub seller_id: String,
    /// The checkout form's revision at the time of the event.
    pub revision: String,
}

/// Appends an event with a fresh id. `occurred_at` defaults to now.
pub fn push(
    m: &mut Market,
    order: &Order,
    kind: &str,
    occurred_at: Option<DateTime<Utc>>,
) -> Event {
    let now = m.now();
    let micros = now.timestamp_micros().max(0) as u64;
    let id = micros.max(m.last_event_id + 1);
    m.last_event_id = id;
    let e = Event {
        id: format!("{id:016}"),
        occurred_at: occurred_at.unwrap_or(now),
        recorded_at: now,
        kind: kind.to_string(),
        order_id: order.id.clone(),
        seller_id: order.seller_id.clone(),
        revision: order.revision.clone(),
    };
    m.events.push(e.clone());
    e
}

fn event_json(m: &Market, e: &Event) -> Value {
    let order = m.orders.get(&e.order_id);
    let buyer = order
        .map(|o| {
            json!({
                "id": o.buyer.get("id").cloned().unwrap_or(Value::Null),
                "email": o.buyer.get("email").cloned().unwrap_or(Value::Null),
                "login": o.buyer.get("login").cloned().unwrap_or(Value::Null),
                "guest": o.buyer.get("guest").cloned().unwrap_or(json!(false)),
            })
        })
        .unwrap_or(Value::Null);
    let lines: Vec<Value> = order
        .map(|o| {
            o.line_items
                .iter()
                .map(|l| line_item_json(l, &o.currency))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": e.id,
        "occurredAt": ts(e.occurred_at),
        "type": e.kind,
        "order": {
            "seller": {"id": e.seller_id},
            "buyer": buyer,
            "checkoutForm": {"id": e.order_id, "revision": e.revision},
            "marketplace": {"id": order.map(|o| o.marketplace.clone()).unwrap_or_else(|| "allegro-pl".into())},
            "lineItems": lines,
        }
    })
}

fn retained<'a>(m: &'a Market, seller: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
    let cutoff = m.now() - Duration::days(m.cfg.event_retention_days);
    m.events
        .iter()
        .filter(move |e| e.seller_id == seller && e.recorded_at >= cutoff)
}

/// `GET /order/events?from&type&limit`
pub async fn list_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
) -> Response {
    let p = Params::from_query(uri.query());
    let r = (|| {
        let seller = seller_of(&caller)?;
        let limit = p.int("limit", 100, 1, 1000, 422)?;
        let from: Option<u64> = match p.get("from") {
            None | Some("") => None,
            Some(raw) => Some(raw.trim().parse().map_err(|_| {
                ApiError::validation(format!("Parameter 'from' '{raw}' is not an event id"))
                    .with_path("from")
            })?),
        };
        let types = p.all("type");
        if let Some(bad) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
            return Err(
                ApiError::validation(format!("Invalid value '{bad}' of parameter 'type'"))
                    .with_path("type"),
            );
        }
        let m = shared.st();
        let events: Vec<Value> = retained(&m, seller)
            .filter(|e| from.is_none_or(|f| e.id.parse::<u64>().is_ok_and(|id| id > f)))
            .filter(|e| types.is_empty() || types.contains(&e.kind))
            .take(limit as usize)
            .map(|e| event_json(&m, e))
            .collect();
        Ok::<Value, ApiError>(json!({ "events": events }))
    })();
    match r {
        Ok(v) => vnd_json(200, &v),
        Err(e) => e.into_response(),
    }
}

/// `GET /order/event-stats`
pub async fn stats_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let seller = match seller_of(&caller) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let m = shared.st();
    let latest = retained(&m, seller)
        .last()
        .map(|e| json!({"id": e.id, "occurredAt": ts(e.occurred_at)}));
    vnd_json(200, &json!({ "latestEvent": latest }))
}
