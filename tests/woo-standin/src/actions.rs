//! Shop actions outside the REST API — what a test, a benchmark or a person at the local run
//! does "in the shop": add a product, set stock, place an order as a customer (fires
//! `order.created` like the checkout), change an order's status (fires `order.updated`), add a
//! webhook, reset. Used by the library handle and by `/__standin`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::coupons;
use crate::error::ApiError;
use crate::orders::{self, NewOrder, Order};
use crate::products::{self, NewProduct, Product};
use crate::shared::{Shared, lock};
use crate::state::ShopState;
use crate::webhooks::{self, NewWebhook, WebhookRecord};

/// Adds a product (validated like `POST /products`).
pub fn add_product(shared: &Arc<Shared>, np: &NewProduct) -> Result<Product, ApiError> {
    let body = np.to_body();
    let (p, events) = {
        let mut shop = shared.shop();
        products::create(shared, &mut shop, &body)?
    };
    shared.after_write(events);
    Ok(p)
}

/// Sets the stock of the product or variation with this SKU (turns `manage_stock` on).
pub fn set_stock(shared: &Arc<Shared>, sku: &str, qty: i64) -> Result<Product, ApiError> {
    let (p, events) = {
        let mut shop = shared.shop();
        let id = shop
            .id_by_sku(sku)
            .ok_or_else(|| ApiError::invalid_id("product", 404))?;
        let body = json!({"manage_stock": true, "stock_quantity": qty});
        let map = body.as_object().cloned().unwrap_or_default();
        let parent = shop
            .products
            .get(&id)
            .map(|p| (p.kind.clone(), p.parent_id));
        match parent {
            Some((kind, parent)) if kind == "variation" => {
                crate::variations::update(shared, &mut shop, parent, id, &map)?
            }
            _ => products::update(shared, &mut shop, id, &map)?,
        }
    };
    shared.after_write(events);
    Ok(p)
}

/// Places an order as the checkout would.
pub fn place_order(shared: &Arc<Shared>, no: &NewOrder) -> Result<Order, ApiError> {
    let body = no.to_body();
    let (o, events) = {
        let mut shop = shared.shop();
        // A customer can only order what exists (the REST API would silently accept it).
        if let Some((sku, _)) = no
            .line_items
            .iter()
            .find(|(sku, _)| shop.id_by_sku(sku).is_none())
        {
            return Err(ApiError::new(
                400,
                "standin_unknown_sku",
                format!("place_order: no product with SKU {sku}"),
            ));
        }
        if let Some(c) = &no.coupon {
            coupons::ensure(shared, &mut shop, c)?;
        }
        orders::create(shared, &mut shop, &body, "checkout")?
    };
    shared.after_write(events);
    Ok(o)
}

/// Changes an order's status as the shop admin would.
pub fn set_order_status(shared: &Arc<Shared>, id: u64, status: &str) -> Result<Order, ApiError> {
    let (o, events) = {
        let mut shop = shared.shop();
        let events = orders::change_status(shared, &mut shop, id, status)?;
        let o = shop
            .orders
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::invalid_id("shop_order", 404))?;
        (o, events)
    };
    shared.after_write(events);
    Ok(o)
}

/// Adds a webhook (pinging it when active) like `POST /webhooks`.
pub async fn add_webhook(shared: &Arc<Shared>, nw: &NewWebhook) -> Result<WebhookRecord, ApiError> {
    let body = serde_json::to_value(nw).unwrap_or(Value::Null);
    let map = body.as_object().cloned().unwrap_or_default();
    let (rec, ping) = {
        let mut shop = shared.shop();
        webhooks::create(shared, &mut shop, &map)?
    };
    shared.after_write(Vec::new());
    if ping {
        crate::delivery::ping(shared, rec.webhook.id).await;
    }
    // Created webhooks are always active; another status is a follow-up edit.
    if !nw.status.is_empty() && nw.status != "active" {
        let body = json!({"status": nw.status});
        let map = body.as_object().cloned().unwrap_or_default();
        let mut shop = shared.shop();
        webhooks::update(shared, &mut shop, rec.webhook.id, &map)?;
    }
    let latest = shared.shop().webhooks.get(&rec.webhook.id).cloned();
    Ok(latest.unwrap_or(rec))
}

/// Empties the shop, the logs and the counters (fault settings stay).
pub fn reset(shared: &Arc<Shared>) {
    *shared.shop() = ShopState::default();
    lock(&shared.requests).clear();
    lock(&shared.deliveries).clear();
    lock(&shared.stats).reset();
    shared.dirty.store(true, Ordering::SeqCst);
}
