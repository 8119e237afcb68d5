//! The `/webhooks` resource: `GET/POST /webhooks`, `GET/PUT/DELETE /webhooks/{id}`. A webhook is
//! `active`, `paused` or `disabled`; it subscribes to `resource.event` topics (`order.created`,
//! `order.updated`, `order.deleted`, `order.restored`, `product.*`, `coupon.*`, `customer.*`, or
//! `action.<hook>` which the stand-in accepts but never fires). As `WC_REST_Webhooks_V1_Controller`
//! (which v3 inherits): a created webhook is always `active` (a `status` in the POST body is not
//! used), the ping is sent before the response, and later saves ping again while the first ping
//! has not succeeded or when the delivery URL changes. The secret is write-only.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::delivery;
use crate::error::ApiError;
use crate::json::{JsonText, with_links};
use crate::pagination::{Page, paged_response};
use crate::params::{Fields, Query, body_params};
use crate::shared::Shared;
use crate::state::ShopState;

pub const WEBHOOK_STATUSES: &[&str] = &["active", "paused", "disabled"];
const RESOURCES: &[&str] = &["order", "product", "coupon", "customer"];
const EVENTS: &[&str] = &["created", "updated", "deleted", "restored"];

/// A webhook in WooCommerce's REST shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: u64,
    pub name: String,
    pub status: String,
    pub topic: String,
    pub resource: String,
    pub event: String,
    pub hooks: Vec<String>,
    pub delivery_url: String,
    pub date_created: String,
    pub date_created_gmt: String,
    pub date_modified: String,
    pub date_modified_gmt: String,
}

/// A webhook with what WooCommerce keeps but does not return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub webhook: Webhook,
    pub secret: String,
    /// Consecutive failed deliveries; more than 5 disables the webhook.
    pub failure_count: u32,
    /// Not yet pinged.
    pub pending_delivery: bool,
}

/// A webhook to add through the library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewWebhook {
    pub name: String,
    pub topic: String,
    pub delivery_url: String,
    pub secret: String,
    pub status: String,
}

impl Default for NewWebhook {
    fn default() -> Self {
        NewWebhook {
            name: String::new(),
            topic: "order.created".into(),
            delivery_url: String::new(),
            secret: String::new(),
            status: "active".into(),
        }
    }
}

fn hooks_for(topic: &str) -> Vec<String> {
    let v: &[&str] = match topic {
        "order.created" => &["woocommerce_new_order"],
        "order.updated" => &["woocommerce_update_order", "woocommerce_order_refunded"],
        "order.deleted" => &["wp_trash_post"],
        "order.restored" => &["untrashed_post"],
        "product.created" => &[
            "woocommerce_process_product_meta",
            "woocommerce_new_product",
            "woocommerce_new_product_variation",
        ],
        "product.updated" => &[
            "woocommerce_process_product_meta",
            "woocommerce_update_product",
            "woocommerce_update_product_variation",
        ],
        "product.deleted" => &["wp_trash_post"],
        "product.restored" => &["untrashed_post"],
        _ => &[],
    };
    let mut out: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    if let Some(action) = topic.strip_prefix("action.") {
        out.push(action.to_string());
    }
    out
}

/// `wc_is_webhook_valid_topic`: `resource.event` from the lists, or `action.woocommerce_*` /
/// `action.wc_*`.
fn valid_topic(topic: &str) -> bool {
    if topic.starts_with("action.") {
        return (topic.starts_with("action.woocommerce_") || topic.starts_with("action.wc_"))
            && topic != "action.woocommerce_login_credentials"
            && topic != "action.woocommerce_product_csv_importer_check_import_file_path"
            && topic != "action.woocommerce_webhook_should_deliver";
    }
    match topic.split_once('.') {
        Some((r, e)) => RESOURCES.contains(&r) && EVENTS.contains(&e),
        None => false,
    }
}

fn valid_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://")) && reqwest::Url::parse(url).is_ok()
}

fn topic_error(creating: bool) -> ApiError {
    let message = if creating {
        "Webhook topic is required and must be valid."
    } else {
        "Webhook topic must be valid."
    };
    ApiError::new(400, "woocommerce_rest_shop_webhook_invalid_topic", message)
}

fn url_error() -> ApiError {
    ApiError::new(
        400,
        "woocommerce_rest_shop_webhook_invalid_delivery_url",
        "Webhook delivery URL must be a valid URL starting with http:// or https://.",
    )
}

/// `GET`/`DELETE` of an unknown id: 404 "Invalid ID."; `PUT` (and, through
/// `prepare_item_for_response`, `GET` of an id that does not exist) 400 "ID is invalid.".
fn invalid_id(status: u16) -> ApiError {
    if status == 400 {
        ApiError::new(
            400,
            "woocommerce_rest_shop_webhook_invalid_id",
            "ID is invalid.",
        )
    } else {
        ApiError::invalid_id("shop_webhook", status)
    }
}

/// Random 50-character secret (WooCommerce: `wp_generate_password(50, true, true)`).
pub fn generate_secret() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(50)
        .map(char::from)
        .collect()
}

/// `POST /webhooks` logic; returns the record and whether to ping.
pub fn create(
    shared: &Shared,
    shop: &mut ShopState,
    body: &Map<String, Value>,
) -> Result<(WebhookRecord, bool), ApiError> {
    let missing: Vec<&str> = ["topic", "delivery_url"]
        .into_iter()
        .filter(|k| !body.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::missing_params(&missing));
    }
    let mut f = Fields::new(body);
    let name = f.string("name");
    let status = f.enum_str("status", WEBHOOK_STATUSES);
    let topic = f.string("topic");
    let url = f.string("delivery_url");
    let secret = f.string("secret");
    f.finish()?;
    let topic = topic.unwrap_or_default();
    if !valid_topic(&topic) {
        return Err(topic_error(true));
    }
    let url = url.unwrap_or_default();
    if !valid_url(&url) {
        return Err(url_error());
    }
    let id = shop.next_webhook_id;
    shop.next_webhook_id += 1;
    let (local, gmt) = shared.clock.now_pair();
    let (resource, event) = topic.split_once('.').unwrap_or(("action", ""));
    // WC_REST_Webhooks_V1_Controller::create_item always saves the webhook as active (the
    // post status is "publish"); a `status` in the request is validated but not used.
    let _ = status;
    let status = "active".to_string();
    let rec = WebhookRecord {
        webhook: Webhook {
            id,
            name: name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("Webhook created on {local}")),
            status: status.clone(),
            topic: topic.clone(),
            resource: resource.to_string(),
            event: event.to_string(),
            hooks: hooks_for(&topic),
            delivery_url: url,
            date_created: local.clone(),
            date_created_gmt: gmt.clone(),
            date_modified: local,
            date_modified_gmt: gmt,
        },
        secret: secret
            .filter(|s| !s.is_empty())
            .unwrap_or_else(generate_secret),
        failure_count: 0,
        pending_delivery: true,
    };
    shop.webhooks.insert(id, rec.clone());
    // create_item sends the ping after saving, whatever happens to it.
    Ok((rec, true))
}

/// `PUT /webhooks/{id}` logic; returns the record and whether to ping.
pub fn update(
    shared: &Shared,
    shop: &mut ShopState,
    id: u64,
    body: &Map<String, Value>,
) -> Result<(WebhookRecord, bool), ApiError> {
    let Some(mut rec) = shop.webhooks.get(&id).cloned() else {
        return Err(invalid_id(400));
    };
    let mut f = Fields::new(body);
    let name = f.string("name");
    let status = f.enum_str("status", WEBHOOK_STATUSES);
    let topic = f.string("topic");
    let url = f.string("delivery_url");
    let secret = f.string("secret");
    f.finish()?;
    if let Some(t) = topic {
        if !valid_topic(&t) {
            return Err(topic_error(false));
        }
        let (resource, event) = t.split_once('.').unwrap_or(("action", ""));
        rec.webhook.resource = resource.to_string();
        rec.webhook.event = event.to_string();
        rec.webhook.hooks = hooks_for(&t);
        rec.webhook.topic = t;
    }
    let mut url_changed = false;
    if let Some(u) = url.filter(|u| !u.is_empty()) {
        if !valid_url(&u) {
            return Err(url_error());
        }
        url_changed = u != rec.webhook.delivery_url;
        rec.webhook.delivery_url = u;
    }
    if let Some(n) = name {
        rec.webhook.name = n;
    }
    if let Some(s) = secret.filter(|s| !s.is_empty()) {
        rec.secret = s;
    }
    // set_status does not reset failure_count: a re-enabled webhook that had been disabled
    // is disabled again by its next failure.
    if let Some(s) = status {
        rec.webhook.status = s;
    }
    // WC_Webhook_Data_Store::update pings when the webhook is active and either the delivery
    // URL changed or the first ping never succeeded.
    let ping = rec.webhook.status == "active" && (url_changed || rec.pending_delivery);
    let (local, gmt) = shared.clock.now_pair();
    rec.webhook.date_modified = local;
    rec.webhook.date_modified_gmt = gmt;
    shop.webhooks.insert(id, rec.clone());
    Ok((rec, ping))
}

fn webhook_json(w: &Webhook, root: &str) -> JsonText {
    let links = json!({"self": [{"href": format!("{root}/webhooks/{}", w.id)}],
                       "collection": [{"href": format!("{root}/webhooks")}]});
    with_links(w, &links)
}

pub async fn list_handler(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let mut errs = Vec::new();
    let page = Page::from_query(&q, &mut errs);
    let status = q.enum_str(
        "status",
        "all",
        &["all", "active", "paused", "disabled"],
        &mut errs,
    );
    if !errs.is_empty() {
        return ApiError::invalid_params(&errs).into_response();
    }
    let root = shared.api_root();
    let (items, page) = {
        let shop = shared.shop();
        let mut all: Vec<&WebhookRecord> = shop
            .webhooks
            .values()
            .filter(|w| status == "all" || w.webhook.status == status)
            .collect();
        all.reverse();
        let total = all.len();
        let items: Vec<JsonText> = page
            .slice(&all)
            .iter()
            .map(|w| webhook_json(&w.webhook, &root))
            .collect();
        (items, page.with_total(total))
    };
    paged_response(&format!("{root}/webhooks"), &q, &page, items)
}

pub async fn get_handler(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::no_route().into_response();
    };
    let shop = shared.shop();
    match shop.webhooks.get(&id) {
        Some(w) => webhook_json(&w.webhook, &shared.api_root()).into_response(),
        None if id == 0 => invalid_id(404).into_response(),
        None => invalid_id(400).into_response(),
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
        Ok((rec, ping)) => {
            shared.after_write(Vec::new());
            if ping {
                delivery::ping(&shared, rec.webhook.id).await;
            }
            (
                StatusCode::CREATED,
                webhook_json(&rec.webhook, &shared.api_root()),
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn update_handler(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::no_route().into_response();
    };
    let q = Query::parse(raw.as_deref());
    let params = match body_params(&headers, &body, &q) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let result = {
        let mut shop = shared.shop();
        update(&shared, &mut shop, id, &params)
    };
    match result {
        Ok((rec, ping)) => {
            shared.after_write(Vec::new());
            if ping {
                delivery::ping(&shared, rec.webhook.id).await;
            }
            webhook_json(&rec.webhook, &shared.api_root()).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn delete_handler(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::no_route().into_response();
    };
    let q = Query::parse(raw.as_deref());
    let mut errs = Vec::new();
    if !q.boolean("force", &mut errs).unwrap_or(false) {
        return ApiError::new(
            501,
            "woocommerce_rest_trash_not_supported",
            "Webhooks do not support trashing.",
        )
        .into_response();
    }
    let removed = shared.shop().webhooks.remove(&id);
    match removed {
        Some(rec) => {
            shared.after_write(Vec::new());
            webhook_json(&rec.webhook, &shared.api_root()).into_response()
        }
        None => invalid_id(404).into_response(),
    }
}
