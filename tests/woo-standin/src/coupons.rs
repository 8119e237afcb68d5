//! Coupons (minimal): `GET/POST /coupons`, `GET /coupons/{id}`; orders reference them through
//! `coupon_lines: [{"code": ...}]`. Codes are lower-cased like `wc_format_coupon_code`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::json::{JsonText, with_links};
use crate::pagination::{Page, paged_response};
use crate::params::{Fields, Query, body_params, wc_format_decimal};
use crate::shared::Shared;
use crate::state::ShopState;

pub const DISCOUNT_TYPES: &[&str] = &["percent", "fixed_cart", "fixed_product"];

/// A coupon in WooCommerce's REST shape (the fields the stand-in uses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coupon {
    pub id: u64,
    pub code: String,
    pub amount: String,
    pub discount_type: String,
    pub description: String,
    pub date_created: String,
    pub date_created_gmt: String,
    pub date_modified: String,
    pub date_modified_gmt: String,
    pub usage_count: u64,
    pub individual_use: bool,
    pub free_shipping: bool,
}

impl Coupon {
    pub fn amount_decimal(&self) -> Decimal {
        self.amount.parse().unwrap_or_default()
    }
}

/// A coupon to add through the library or an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewCoupon {
    pub code: String,
    /// `percent`, `fixed_cart`, `fixed_product`.
    pub discount_type: String,
    pub amount: Decimal,
}

/// `POST /coupons` logic.
pub fn create(
    shared: &Shared,
    shop: &mut ShopState,
    body: &Map<String, Value>,
) -> Result<Coupon, ApiError> {
    let mut f = Fields::new(body);
    let code = f.string("code");
    let amount = f.string("amount");
    let kind = f.enum_str("discount_type", DISCOUNT_TYPES);
    let description = f.string("description");
    let individual_use = f.boolean("individual_use");
    let free_shipping = f.boolean("free_shipping");
    f.finish()?;
    let Some(code) = code
        .map(|c| c.trim().to_lowercase())
        .filter(|c| !c.is_empty())
    else {
        return Err(ApiError::missing_params(&["code"]));
    };
    if shop.coupons.values().any(|c| c.code == code) {
        return Err(ApiError::new(
            400,
            "woocommerce_rest_coupon_code_already_exists",
            "The coupon code already exists",
        ));
    }
    let id = shop.alloc_post_id();
    let (local, gmt) = shared.clock.now_pair();
    let amount = amount
        .map(|a| wc_format_decimal(&a))
        .unwrap_or_else(|| "0".into());
    let c = Coupon {
        id,
        code,
        amount: format!("{:.2}", amount.parse::<Decimal>().unwrap_or_default()),
        discount_type: kind.unwrap_or_else(|| "fixed_cart".into()),
        description: description.unwrap_or_default(),
        date_created: local.clone(),
        date_created_gmt: gmt.clone(),
        date_modified: local,
        date_modified_gmt: gmt,
        usage_count: 0,
        individual_use: individual_use.unwrap_or(false),
        free_shipping: free_shipping.unwrap_or(false),
    };
    shop.coupons.insert(id, c.clone());
    Ok(c)
}

/// The library's way: create unless a coupon with that code exists.
pub fn ensure(shared: &Shared, shop: &mut ShopState, c: &NewCoupon) -> Result<Coupon, ApiError> {
    let code = c.code.trim().to_lowercase();
    if let Some(existing) = shop.coupons.values().find(|x| x.code == code) {
        return Ok(existing.clone());
    }
    let body =
        json!({"code": code, "discount_type": c.discount_type, "amount": c.amount.to_string()});
    let map = body.as_object().cloned().unwrap_or_default();
    create(shared, shop, &map)
}

fn coupon_json(c: &Coupon, root: &str) -> JsonText {
    let links = json!({"self": [{"href": format!("{root}/coupons/{}", c.id)}],
                       "collection": [{"href": format!("{root}/coupons")}]});
    with_links(c, &links)
}

pub async fn list_handler(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let mut errs = Vec::new();
    let page = Page::from_query(&q, &mut errs);
    if !errs.is_empty() {
        return ApiError::invalid_params(&errs).into_response();
    }
    let code = q.get("code").map(str::to_lowercase);
    let root = shared.api_root();
    let (items, page) = {
        let shop = shared.shop();
        let mut all: Vec<&Coupon> = shop
            .coupons
            .values()
            .filter(|c| code.as_ref().is_none_or(|x| &c.code == x))
            .collect();
        all.reverse();
        let total = all.len();
        let items: Vec<JsonText> = page
            .slice(&all)
            .iter()
            .map(|c| coupon_json(c, &root))
            .collect();
        (items, page.with_total(total))
    };
    paged_response(&format!("{root}/coupons"), &q, &page, items)
}

pub async fn get_handler(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::no_route().into_response();
    };
    let shop = shared.shop();
    match shop.coupons.get(&id) {
        Some(c) => coupon_json(c, &shared.api_root()).into_response(),
        None => ApiError::invalid_id("shop_coupon", 404).into_response(),
    }
}

pub async fn create_handler(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let params = match body_params(&headers, &body, &q) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let result = {
        let mut shop = shared.shop();
        create(&shared, &mut shop, &params)
    };
    match result {
        Ok(c) => {
            shared.after_write(Vec::new());
            (StatusCode::CREATED, coupon_json(&c, &shared.api_root())).into_response()
        }
        Err(e) => e.into_response(),
    }
}
