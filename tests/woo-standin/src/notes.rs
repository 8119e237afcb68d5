//! Order notes: `GET/POST /orders/{id}/notes`, `GET/DELETE /orders/{id}/notes/{note_id}`.
//! `note` is required; `customer_note` marks a note for the customer. Notes WooCommerce adds
//! itself (status changes, stock) have author `system`. Listed newest first.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clock::SiteClock;
use crate::error::ApiError;
use crate::json::{JsonText, array, with_links};
use crate::params::{Fields, Query, body_params};
use crate::shared::Shared;
use crate::state::ShopState;

/// An order note in WooCommerce's REST shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderNote {
    pub id: u64,
    pub author: String,
    pub date_created: String,
    pub date_created_gmt: String,
    pub note: String,
    pub customer_note: bool,
}

/// Adds a note to an order (the order must exist).
pub fn add(
    shop: &mut ShopState,
    clock: &SiteClock,
    order_id: u64,
    note: &str,
    customer_note: bool,
    author: &str,
) -> OrderNote {
    let id = shop.alloc_comment_id();
    let (local, gmt) = clock.now_pair();
    let n = OrderNote {
        id,
        author: author.to_string(),
        date_created: local,
        date_created_gmt: gmt,
        note: note.to_string(),
        customer_note,
    };
    shop.order_notes
        .entry(order_id)
        .or_default()
        .push(n.clone());
    n
}

fn note_json(n: &OrderNote, root: &str, order_id: u64) -> JsonText {
    let links = json!({
        "self": [{"href": format!("{root}/orders/{order_id}/notes/{}", n.id)}],
        "collection": [{"href": format!("{root}/orders/{order_id}/notes")}],
        "up": [{"href": format!("{root}/orders/{order_id}")}],
    });
    with_links(n, &links)
}

fn order_error() -> ApiError {
    ApiError::new(
        404,
        "woocommerce_rest_order_invalid_id",
        "Invalid order ID.",
    )
}

fn note_error() -> ApiError {
    ApiError::new(404, "woocommerce_rest_invalid_id", "Invalid resource ID.")
}

pub async fn list_handler(
    State(shared): State<Arc<Shared>>,
    Path(order_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Ok(order_id) = order_id.parse::<u64>() else {
        return ApiError::no_route().into_response();
    };
    let q = Query::parse(raw.as_deref());
    let mut errs = Vec::new();
    let kind = q.enum_str("type", "any", &["any", "customer", "internal"], &mut errs);
    if !errs.is_empty() {
        return ApiError::invalid_params(&errs).into_response();
    }
    let shop = shared.shop();
    if !shop.orders.contains_key(&order_id) {
        return order_error().into_response();
    }
    let root = shared.api_root();
    let notes: Vec<JsonText> = shop
        .order_notes
        .get(&order_id)
        .map(|ns| {
            ns.iter()
                .rev()
                .filter(|n| match kind.as_str() {
                    "customer" => n.customer_note,
                    "internal" => !n.customer_note,
                    _ => true,
                })
                .map(|n| note_json(n, &root, order_id))
                .collect()
        })
        .unwrap_or_default();
    array(notes).into_response()
}

pub async fn get_handler(
    State(shared): State<Arc<Shared>>,
    Path((order_id, note_id)): Path<(String, String)>,
) -> Response {
    let (Ok(order_id), Ok(note_id)) = (order_id.parse::<u64>(), note_id.parse::<u64>()) else {
        return ApiError::no_route().into_response();
    };
    let shop = shared.shop();
    if !shop.orders.contains_key(&order_id) {
        return order_error().into_response();
    }
    match shop
        .order_notes
        .get(&order_id)
        .and_then(|ns| ns.iter().find(|n| n.id == note_id))
    {
        Some(n) => note_json(n, &shared.api_root(), order_id).into_response(),
        None => note_error().into_response(),
    }
}

pub async fn create_handler(
    State(shared): State<Arc<Shared>>,
    Path(order_id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(order_id) = order_id.parse::<u64>() else {
        return ApiError::no_route().into_response();
    };
    let q = Query::parse(raw.as_deref());
    let params = match body_params(&headers, &body, &q) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let mut f = Fields::new(&params);
    let note = f.string("note");
    let customer_note = f.boolean("customer_note").unwrap_or(false);
    let added_by_user = f.boolean("added_by_user").unwrap_or(false);
    if let Err(e) = f.finish() {
        return e.into_response();
    }
    let Some(note) = note else {
        return ApiError::missing_params(&["note"]).into_response();
    };
    let result = {
        let mut shop = shared.shop();
        if !shop.orders.contains_key(&order_id) {
            Err(order_error())
        } else if note.trim().is_empty() {
            Err(ApiError::new(
                500,
                "woocommerce_api_cannot_create_order_note",
                "Cannot create order note, please try again.",
            ))
        } else {
            let author = if added_by_user { "admin" } else { "system" };
            Ok(add(
                &mut shop,
                &shared.clock,
                order_id,
                &note,
                customer_note,
                author,
            ))
        }
    };
    match result {
        Ok(n) => {
            shared.after_write(Vec::new());
            (
                StatusCode::CREATED,
                note_json(&n, &shared.api_root(), order_id),
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn delete_handler(
    State(shared): State<Arc<Shared>>,
    Path((order_id, note_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (Ok(order_id), Ok(note_id)) = (order_id.parse::<u64>(), note_id.parse::<u64>()) else {
        return ApiError::no_route().into_response();
    };
    let q = Query::parse(raw.as_deref());
    let mut errs = Vec::new();
    let force = q.boolean("force", &mut errs).unwrap_or(false);
    if !force {
        return ApiError::new(
            501,
            "woocommerce_rest_trash_not_supported",
            "Resource does not support trashing.",
        )
        .into_response();
    }
    let result = {
        let mut shop = shared.shop();
        if !shop.orders.contains_key(&order_id) {
            Err(order_error())
        } else {
            let notes = shop.order_notes.entry(order_id).or_default();
            match notes.iter().position(|n| n.id == note_id) {
                Some(i) => Ok(notes.remove(i)),
                None => Err(note_error()),
            }
        }
    };
    match result {
        Ok(n) => {
            shared.after_write(Vec::new());
            note_json(&n, &shared.api_root(), order_id).into_response()
        }
        Err(e) => e.into_response(),
    }
}
