//! The paid "Shipment Tracking" extension's API, off by default (core WooCommerce has no
//! tracking field: without the extension these routes are `rest_no_route`):
//! `GET/POST /wp-json/wc-shipment-tracking/v3/orders/{id}/shipment-trackings` and
//! `GET/DELETE …/shipment-trackings/{tracking_id}`. Body `{tracking_provider |
//! custom_tracking_provider + custom_tracking_link, tracking_number (required), date_shipped}`.
//! Items are also kept in the order's `_wc_shipment_tracking_items` meta, as the extension does;
//! adding one does not save the order, so no `order.updated` webhook.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::json::{JsonText, array, with_links};
use crate::params::{Fields, Query, body_params};
use crate::products::apply_meta;
use crate::shared::Shared;
use crate::state::ShopState;

/// The meta key the extension stores items under.
pub const META_KEY: &str = "_wc_shipment_tracking_items";

/// One tracking item as the extension's API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracking {
    pub tracking_id: String,
    pub tracking_provider: String,
    pub tracking_link: String,
    pub tracking_number: String,
    /// `YYYY-MM-DD`.
    pub date_shipped: String,
}

fn order_error() -> ApiError {
    ApiError::new(
        404,
        "woocommerce_rest_order_invalid_id",
        "Invalid order ID.",
    )
}

fn tracking_link(provider: &str, number: &str) -> String {
    match provider.to_ascii_lowercase().as_str() {
        "dhl" => format!("https://www.dhl.com/pl-pl/home/tracking.html?tracking-id={number}"),
        "dpd" => format!("https://tracktrace.dpd.com.pl/parcelDetails?typ=1&p1={number}"),
        "inpost" => format!("https://inpost.pl/sledzenie-przesylek?number={number}"),
        "poczta polska" => {
            format!("https://emonitoring.poczta-polska.pl/?numer={number}")
        }
        "ups" => format!("https://www.ups.com/track?tracknum={number}"),
        "fedex" => format!("https://www.fedex.com/apps/fedextrack/?tracknumbers={number}"),
        _ => String::new(),
    }
}

fn item_json(t: &Tracking, root: &str, order_id: u64) -> JsonText {
    let links = json!({
        "self": [{"href": format!("{root}/orders/{order_id}/shipment-trackings/{}", t.tracking_id)}],
        "collection": [{"href": format!("{root}/orders/{order_id}/shipment-trackings")}],
        "up": [{"href": format!("{}/orders/{order_id}", root.replace("wc-shipment-tracking/v3", "wc/v3"))}],
    });
    with_links(t, &links)
}

fn root(shared: &Shared) -> String {
    format!("{}/wp-json/wc-shipment-tracking/v3", shared.base_url)
}

/// Items of an order (from its meta).
pub fn items(shop: &ShopState, order_id: u64) -> Option<Vec<Tracking>> {
    let order = shop.orders.get(&order_id)?;
    let meta = order.meta_data.iter().find(|m| m.key == META_KEY);
    Some(
        meta.and_then(|m| serde_json::from_value::<Vec<Tracking>>(m.value.clone()).ok())
            .unwrap_or_default(),
    )
}

fn store(shop: &mut ShopState, order_id: u64, list: &[Tracking]) {
    if let Some(o) = shop.orders.get_mut(&order_id) {
        let value = serde_json::to_value(list).unwrap_or(Value::Null);
        apply_meta(
            &mut o.meta_data,
            &[json!({"key": META_KEY, "value": value})],
            order_id * 100,
        );
    }
}

fn parse_id(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>().map_err(|_| ApiError::no_route())
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
    match items(&shop, order_id) {
        Some(list) => {
            let r = root(&shared);
            array(list.iter().map(|t| item_json(t, &r, order_id)).collect()).into_response()
        }
        None => order_error().into_response(),
    }
}

pub async fn get_handler(
    State(shared): State<Arc<Shared>>,
    Path((order_id, tid)): Path<(String, String)>,
) -> Response {
    let order_id = match parse_id(&order_id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let shop = shared.shop();
    match items(&shop, order_id) {
        Some(list) => match list.iter().find(|t| t.tracking_id == tid) {
            Some(t) => item_json(t, &root(&shared), order_id).into_response(),
            None => ApiError::new(
                404,
                "woocommerce_rest_invalid_tracking_id",
                "Invalid tracking ID.",
            )
            .into_response(),
        },
        None => order_error().into_response(),
    }
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
    let mut f = Fields::new(&params);
    let provider = f.string("tracking_provider").unwrap_or_default();
    let custom_provider = f.string("custom_tracking_provider").unwrap_or_default();
    let custom_link = f.string("custom_tracking_link").unwrap_or_default();
    let number = f.string("tracking_number");
    let date = f.string("date_shipped");
    if let Err(e) = f.finish() {
        return e.into_response();
    }
    let Some(number) = number.filter(|n| !n.trim().is_empty()) else {
        return ApiError::missing_params(&["tracking_number"]).into_response();
    };
    // The extension takes a date (or a timestamp) and shows it as a site-local date.
    let date_shipped = date
        .and_then(|d| {
            let d = d.trim().to_string();
            chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                .ok()
                .map(|n| n.format("%Y-%m-%d").to_string())
                .or_else(|| {
                    d.parse::<i64>()
                        .ok()
                        .and_then(|ts| chrono::DateTime::from_timestamp(ts, 0))
                        .map(|t| shared.clock.pair(t).0[..10].to_string())
                })
        })
        .unwrap_or_else(|| shared.clock.now_pair().0[..10].to_string());
    let (provider, link) = if custom_provider.is_empty() {
        let link = tracking_link(&provider, &number);
        (provider, link)
    } else {
        (custom_provider, custom_link)
    };
    let tracking_id = hex::encode(
        &Sha256::digest(format!(
            "{order_id}{number}{provider}{}",
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
        ))[..16],
    );
    let t = Tracking {
        tracking_id,
        tracking_provider: provider,
        tracking_link: link,
        tracking_number: number,
        date_shipped,
    };
    {
        let mut shop = shared.shop();
        let Some(mut list) = items(&shop, order_id) else {
            return order_error().into_response();
        };
        list.push(t.clone());
        store(&mut shop, order_id, &list);
    }
    shared.after_write(Vec::new());
    (StatusCode::CREATED, item_json(&t, &root(&shared), order_id)).into_response()
}

pub async fn delete_handler(
    State(shared): State<Arc<Shared>>,
    Path((order_id, tid)): Path<(String, String)>,
) -> Response {
    let order_id = match parse_id(&order_id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let removed = {
        let mut shop = shared.shop();
        let Some(mut list) = items(&shop, order_id) else {
            return order_error().into_response();
        };
        let pos = list.iter().position(|t| t.tracking_id == tid);
        pos.map(|i| {
            let t = list.remove(i);
            store(&mut shop, order_id, &list);
            t
        })
    };
    match removed {
        Some(t) => {
            shared.after_write(Vec::new());
            item_json(&t, &root(&shared), order_id).into_response()
        }
        None => ApiError::new(
            404,
            "woocommerce_rest_invalid_tracking_id",
            "Invalid tracking ID.",
        )
        .into_response(),
    }
}
