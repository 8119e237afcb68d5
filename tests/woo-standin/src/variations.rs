//! Variations: `/products/{parent}/variations[/{id}]` and `/products/{parent}/variations/batch`.
//! Stored as products with `type: "variation"` and `parent_id`; rendered in the variation shape.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::json::{self, JsonText};

use crate::error::ApiError;
use crate::pagination::{Page, paged_response};
use crate::params::{Query, body_params};
use crate::products::{Product, apply_input};
use crate::shared::Shared;
use crate::state::{Event, ShopState};

const FIELDS: &[&str] = &[
    "id",
    "name",
    "type",
    "parent_id",
    "date_created",
    "date_created_gmt",
    "date_modified",
    "date_modified_gmt",
    "description",
    "permalink",
    "sku",
    "price",
    "regular_price",
    "sale_price",
    "on_sale",
    "status",
    "purchasable",
    "virtual",
    "downloadable",
    "tax_status",
    "tax_class",
    "manage_stock",
    "stock_quantity",
    "stock_status",
    "backorders",
    "backorders_allowed",
    "backordered",
    "low_stock_amount",
    "weight",
    "dimensions",
    "shipping_class",
    "shipping_class_id",
    "attributes",
    "menu_order",
    "meta_data",
];

/// A variation as `/products/{parent}/variations/{id}` returns it (its own field set and order).
pub fn variation_json(p: &Product, api_root: &str) -> JsonText {
    let full = serde_json::to_value(p).unwrap_or(Value::Null);
    let mut members: Vec<(&str, String)> = Vec::new();
    for key in FIELDS {
        if let Some(v) = full.get(*key) {
            members.push((key, json::text(v)));
        }
    }
    members.push(("image", "null".into()));
    let links = json!({
        "self": [{"href": format!("{api_root}/products/{}/variations/{}", p.parent_id, p.id)}],
        "collection": [{"href": format!("{api_root}/products/{}/variations", p.parent_id)}],
        "up": [{"href": format!("{api_root}/products/{}", p.parent_id)}],
    });
    members.push(("_links", json::text(&links)));
    json::object(&members)
}

fn parent_ok(shop: &ShopState, parent: u64) -> Result<(), ApiError> {
    match shop.products.get(&parent) {
        Some(p) if p.kind != "variation" => Ok(()),
        _ => Err(ApiError::invalid_id("product", 404)),
    }
}

fn get_variation(shop: &ShopState, parent: u64, id: u64, status: u16) -> Result<Product, ApiError> {
    match shop.products.get(&id) {
        Some(v) if v.kind == "variation" && v.parent_id == parent => Ok(v.clone()),
        _ => Err(ApiError::invalid_id("product_variation", status)),
    }
}

/// Creates a variation under `parent`.
pub fn create(
    shared: &Shared,
    shop: &mut ShopState,
    parent: u64,
    body: &Map<String, Value>,
) -> Result<(Product, Vec<Event>), ApiError> {
    parent_ok(shop, parent)?;
    let id = shop.next_post_id;
    let mut v = Product::blank(id, &shared.clock);
    v.kind = "variation".into();
    v.parent_id = parent;
    v.categories.clear();
    let mut body = body.clone();
    body.remove("type");
    body.remove("parent_id");
    apply_input(
        shop,
        &mut v,
        &body,
        &shared.base_url,
        &shared.settings.tax_rates,
    )?;
    if v.name.is_empty() {
        v.name = shop
            .products
            .get(&parent)
            .map(|p| p.name.clone())
            .unwrap_or_default();
    }
    shop.alloc_post_id();
    v.refresh_derived(&shared.settings.currency_symbol);
    shop.products.insert(id, v.clone());
    if let Some(p) = shop.products.get_mut(&parent) {
        p.variations.push(id);
        p.touch(&shared.clock);
    }
    Ok((v, vec![Event::new("product", "created", id)]))
}

/// Updates a variation.
pub fn update(
    shared: &Shared,
    shop: &mut ShopState,
    parent: u64,
    id: u64,
    body: &Map<String, Value>,
) -> Result<(Product, Vec<Event>), ApiError> {
    parent_ok(shop, parent)?;
    let mut v = get_variation(shop, parent, id, 400)?;
    let mut body = body.clone();
    body.remove("type");
    body.remove("parent_id");
    apply_input(
        shop,
        &mut v,
        &body,
        &shared.base_url,
        &shared.settings.tax_rates,
    )?;
    v.touch(&shared.clock);
    v.refresh_derived(&shared.settings.currency_symbol);
    shop.products.insert(id, v.clone());
    Ok((v, vec![Event::new("product", "updated", id)]))
}

/// Deletes a variation (always permanently: variations do not support trashing).
pub fn delete(
    shop: &mut ShopState,
    parent: u64,
    id: u64,
) -> Result<(Product, Vec<Event>), ApiError> {
    parent_ok(shop, parent)?;
    let v = get_variation(shop, parent, id, 404)?;
    shop.products.remove(&id);
    if let Some(p) = shop.products.get_mut(&parent) {
        p.variations.retain(|x| *x != id);
    }
    Ok((v, vec![Event::new("product", "deleted", id)]))
}

fn parse_id(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>().map_err(|_| ApiError::no_route())
}

pub async fn list_handler(
    State(shared): State<Arc<Shared>>,
    Path(parent): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let parent = match parse_id(&parent) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let mut errs = Vec::new();
    let page = Page::from_query(&q, &mut errs);
    if !errs.is_empty() {
        return ApiError::invalid_params(&errs).into_response();
    }
    let skus: Option<Vec<String>> = q
        .get("sku")
        .map(|s| s.trim().split(',').map(str::to_string).collect());
    let root = shared.api_root();
    let (items, page) = {
        let shop = shared.shop();
        if let Err(e) = parent_ok(&shop, parent) {
            return e.into_response();
        }
        let all: Vec<&Product> = shop
            .products
            .values()
            .filter(|v| v.kind == "variation" && v.parent_id == parent)
            .filter(|v| skus.as_ref().is_none_or(|s| s.contains(&v.sku)))
            .collect();
        let total = all.len();
        let items: Vec<JsonText> = page
            .slice(&all)
            .iter()
            .map(|v| variation_json(v, &root))
            .collect();
        (items, page.with_total(total))
    };
    paged_response(
        &format!("{root}/products/{parent}/variations"),
        &q,
        &page,
        items,
    )
}

pub async fn get_handler(
    State(shared): State<Arc<Shared>>,
    Path((parent, id)): Path<(String, String)>,
) -> Response {
    let (parent, id) = match (parse_id(&parent), parse_id(&id)) {
        (Ok(p), Ok(i)) => (p, i),
        _ => return ApiError::no_route().into_response(),
    };
    let shop = shared.shop();
    match parent_ok(&shop, parent).and_then(|_| get_variation(&shop, parent, id, 404)) {
        Ok(v) => variation_json(&v, &shared.api_root()).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn create_handler(
    State(shared): State<Arc<Shared>>,
    Path(parent): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(parent) = parse_id(&parent) else {
        return ApiError::no_route().into_response();
    };
    let q = Query::parse(raw.as_deref());
    let params = match body_params(&headers, &body, &q) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let result = {
        let mut shop = shared.shop();
        create(&shared, &mut shop, parent, &params)
    };
    match result {
        Ok((v, events)) => {
            shared.after_write(events);
            (StatusCode::CREATED, variation_json(&v, &shared.api_root())).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn update_handler(
    State(shared): State<Arc<Shared>>,
    Path((parent, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (parent, id) = match (parse_id(&parent), parse_id(&id)) {
        (Ok(p), Ok(i)) => (p, i),
        _ => return ApiError::no_route().into_response(),
    };
    let q = Query::parse(raw.as_deref());
    let params = match body_params(&headers, &body, &q) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let result = {
        let mut shop = shared.shop();
        update(&shared, &mut shop, parent, id, &params)
    };
    match result {
        Ok((v, events)) => {
            shared.after_write(events);
            variation_json(&v, &shared.api_root()).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn delete_handler(
    State(shared): State<Arc<Shared>>,
    Path((parent, id)): Path<(String, String)>,
) -> Response {
    let (parent, id) = match (parse_id(&parent), parse_id(&id)) {
        (Ok(p), Ok(i)) => (p, i),
        _ => return ApiError::no_route().into_response(),
    };
    let result = {
        let mut shop = shared.shop();
        delete(&mut shop, parent, id)
    };
    match result {
        Ok((v, events)) => {
            shared.after_write(events);
            variation_json(&v, &shared.api_root()).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn batch_handler(
    State(shared): State<Arc<Shared>>,
    Path(parent): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(parent) = parse_id(&parent) else {
        return ApiError::no_route().into_response();
    };
    let q = Query::parse(raw.as_deref());
    let params = match body_params(&headers, &body, &q) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    {
        let shop = shared.shop();
        if let Err(e) = parent_ok(&shop, parent) {
            return e.into_response();
        }
    }
    let root = shared.api_root();
    let result = crate::batch::run(
        &shared,
        &params,
        |shop, item| {
            create(&shared, shop, parent, item).map(|(v, e)| (variation_json(&v, &root), e))
        },
        |shop, id, item| {
            update(&shared, shop, parent, id, item).map(|(v, e)| (variation_json(&v, &root), e))
        },
        |shop, id| delete(shop, parent, id).map(|(v, e)| (variation_json(&v, &root), e)),
    );
    match result {
        Ok((json, events)) => {
            shared.after_write(events);
            json.into_response()
        }
        Err(e) => e.into_response(),
    }
}
