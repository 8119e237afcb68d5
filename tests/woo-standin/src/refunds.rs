//! Order refunds: `GET/POST /orders/{id}/refunds`, `GET /orders/{id}/refunds/{refund_id}`.
//! As `WC_REST_Order_Refunds_V2_Controller` + `wc_create_refund`: `amount` must be above zero
//! (400 `woocommerce_rest_invalid_order_refund`) and at most what is left (500
//! `woocommerce_rest_cannot_create_order_refund` "Invalid refund amount."); `api_refund`
//! defaults to true and asks the payment gateway to pay back, which the stand-in's gateways
//! (like `bacs`/`cod`) cannot: 500 "The payment gateway for this order does not support automatic
//! refunds." — send `api_refund: false` for a manual refund. A refund appears in the order's
//! `refunds` and fires `order.updated`; the last one that empties the order sets `refunded`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::json::{JsonText, array, with_links};
use crate::orders::{self, Order};
use crate::params::{Fields, Query, body_params, wc_format_decimal};
use crate::products::{MetaData, apply_meta};
use crate::shared::Shared;
use crate::state::{Event, ShopState};

/// A refund in WooCommerce's REST shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub id: u64,
    pub date_created: String,
    pub date_created_gmt: String,
    pub amount: String,
    pub reason: String,
    pub refunded_by: u64,
    pub refunded_payment: bool,
    pub meta_data: Vec<MetaData>,
    pub line_items: Vec<Value>,
}

/// What has been refunded so far (from the order's `refunds`).
pub fn refunded_total(order: &Order) -> Decimal {
    order
        .refunds
        .iter()
        .filter_map(|r| r.get("total").and_then(Value::as_str))
        .filter_map(|t| t.parse::<Decimal>().ok())
        .map(|t| -t)
        .sum()
}

/// Records a refund on the order (its `refunds` entry and the refund object).
pub fn record(
    shared: &Shared,
    shop: &mut ShopState,
    order_id: u64,
    amount: Decimal,
    reason: &str,
    payment: bool,
) -> Refund {
    let id = shop.alloc_post_id();
    let (local, gmt) = shared.clock.now_pair();
    let refund = Refund {
        id,
        date_created: local.clone(),
        date_created_gmt: gmt.clone(),
        amount: shared.precision().money(amount),
        reason: reason.to_string(),
        refunded_by: 1,
        refunded_payment: payment,
        meta_data: Vec::new(),
        line_items: Vec::new(),
    };
    if let Some(o) = shop.orders.get_mut(&order_id) {
        o.refunds
            .push(json!({"id": id, "reason": reason, "total": shared.precision().money(-amount)}));
        o.date_modified = local;
        o.date_modified_gmt = gmt;
    }
    shop.refunds
        .entry(order_id)
        .or_default()
        .push(refund.clone());
    refund
}

fn order_error() -> ApiError {
    ApiError::new(
        404,
        "woocommerce_rest_order_invalid_id",
        "Invalid order ID.",
    )
}

fn cannot(message: &str) -> ApiError {
    ApiError::new(500, "woocommerce_rest_cannot_create_order_refund", message)
}

fn refund_json(r: &Refund, shared: &Shared, order_id: u64) -> JsonText {
    let root = shared.api_root();
    let links = json!({
        "self": [{"href": format!("{root}/orders/{order_id}/refunds/{}", r.id)}],
        "collection": [{"href": format!("{root}/orders/{order_id}/refunds")}],
        "up": [{"href": format!("{root}/orders/{order_id}")}],
    });
    with_links(r, &links)
}

fn parse_id(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>().map_err(|_| ApiError::no_route())
}

/// `POST /orders/{id}/refunds` logic.
fn create(
    shared: &Shared,
    shop: &mut ShopState,
    order_id: u64,
    params: &serde_json::Map<String, Value>,
) -> Result<(Refund, Vec<Event>), ApiError> {
    let mut f = Fields::new(params);
    let amount = f.string("amount");
    let reason = f.string("reason").unwrap_or_default();
    let api_refund = f.boolean("api_refund").unwrap_or(true);
    let line_items = f.array("line_items").cloned().unwrap_or_default();
    let meta = f.array("meta_data").cloned().unwrap_or_default();
    f.finish()?;
    let Some(order) = shop.orders.get(&order_id).cloned() else {
        return Err(order_error());
    };
    let amount: Decimal = amount
        .map(|a| wc_format_decimal(&a))
        .and_then(|a| a.parse().ok())
        .unwrap_or_default();
    if amount <= Decimal::ZERO {
        return Err(ApiError::new(
            400,
            "woocommerce_rest_invalid_order_refund",
            "Refund amount must be greater than zero.",
        ));
    }
    let left = order.total_decimal() - refunded_total(&order);
    if amount > left {
        return Err(cannot("Invalid refund amount."));
    }
    if api_refund {
        return Err(cannot(
            "The payment gateway for this order does not support automatic refunds.",
        ));
    }
    let mut refund = record(shared, shop, order_id, amount, &reason, false);
    refund.line_items = line_items;
    apply_meta(&mut refund.meta_data, &meta, refund.id * 100);
    if let Some(list) = shop.refunds.get_mut(&order_id)
        && let Some(last) = list.last_mut()
    {
        *last = refund.clone();
    }
    let mut events = vec![Event::new("order", "updated", order_id)];
    if amount == left {
        events.extend(orders::change_status(shared, shop, order_id, "refunded")?);
    }
    events.dedup();
    Ok((refund, events))
}

pub async fn create_handler(
    State(shared): State<Arc<Shared>>,
    Path(order_id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let order_id = match parse_id(&order_id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let q = Query::parse(raw.as_deref());
    let params = match body_params(&headers, &body, &q) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let result = {
        let mut shop = shared.shop();
        create(&shared, &mut shop, order_id, &params)
    };
    match result {
        Ok((r, events)) => {
            shared.after_write(events);
            (StatusCode::CREATED, refund_json(&r, &shared, order_id)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn list_handler(
    State(shared): State<Arc<Shared>>,
    Path(order_id): Path<String>,
) -> Response {
    let order_id = match parse_id(&order_id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let shop = shared.shop();
    if !shop.orders.contains_key(&order_id) {
        return order_error().into_response();
    }
    let list: Vec<JsonText> = shop
        .refunds
        .get(&order_id)
        .map(|rs| {
            rs.iter()
                .rev()
                .map(|r| refund_json(r, &shared, order_id))
                .collect()
        })
        .unwrap_or_default();
    array(list).into_response()
}

pub async fn get_handler(
    State(shared): State<Arc<Shared>>,
    Path((order_id, rid)): Path<(String, String)>,
) -> Response {
    let (Ok(order_id), Ok(rid)) = (parse_id(&order_id), parse_id(&rid)) else {
        return ApiError::no_route().into_response();
    };
    let shop = shared.shop();
    if !shop.orders.contains_key(&order_id) {
        return order_error().into_response();
    }
    match shop
        .refunds
        .get(&order_id)
        .and_then(|rs| rs.iter().find(|r| r.id == rid))
    {
        Some(r) => refund_json(r, &shared, order_id).into_response(),
        None => ApiError::invalid_id("shop_order_refund", 404).into_response(),
    }
}
