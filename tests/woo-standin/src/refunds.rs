//! Refunds: `GET/POST /orders/{id}/refunds`, `GET /orders/{id}/refunds/{refund_id}`, and the
//! read-only `GET /refunds` of every order (WooCommerce 9.0+).
//!
//! Sources (woocommerce/woocommerce, `plugins/woocommerce/`): `includes/rest-api/Controllers/
//! Version2/class-wc-rest-order-refunds-v2-controller.php` (shape, links, list query),
//! `Version3/class-wc-rest-order-refunds-controller.php` (create), `Version3/
//! class-wc-rest-refunds-controller.php` (`/refunds`), `src/Internal/RestApiUtil.php`
//! (`adjust_create_refund_request_parameters`), `includes/wc-order-functions.php`
//! (`wc_create_refund`), `Version3/class-wc-rest-crud-controller.php` (collection parameters);
//! the REST docs' refund examples (`developer.woocommerce.com/docs/apis/rest-api/v3/refunds/`).
//!
//! **Creating** (`POST /orders/{id}/refunds`):
//! - `amount` must be above zero (400 `woocommerce_rest_invalid_order_refund`) and at most what
//!   is left (500 `woocommerce_rest_cannot_create_order_refund` "Invalid refund amount.").
//!   Without `amount` it is the sum of every line's `refund_total` and `refund_tax`, when each
//!   of them is a number (`calculate_refund_amount_from_line_items`).
//! - `api_refund` defaults to true and asks the payment gateway to pay back, which the
//!   stand-in's gateways (like `bacs`/`cod`) cannot: 500 "The payment gateway for this order does
//!   not support automatic refunds." Send `api_refund: false` for a manual refund.
//! - `line_items: [{id, quantity, refund_total, refund_tax: [{id, refund_total}]}]` names lines
//!   of the order (products, fees or shipping) by their item id. Each named line becomes a new
//!   item of the refund: a copy of the order's line (`name`, `product_id`, `variation_id`, `sku`,
//!   `tax_class`, `image`, …) with a new `id`, `quantity` = −quantity, `total` and `subtotal` =
//!   −refund_total, `taxes` = −refund_tax per rate, `price` = total / quantity (positive; 0
//!   without a quantity) and `{"key": "_refunded_item_id", "value": "<order line id>"}` (a
//!   string, as read back from the database) added to its `meta_data`. Refunded fees go to
//!   `fee_lines`, refunded shipping to `shipping_lines`, and `tax_lines` sums the refunded taxes
//!   per rate (`update_taxes`).
//! - An id that is no line of the order is skipped without a word, and the refund is still made
//!   for its `amount`: `wc_create_refund` walks the order's items and looks each one up among the
//!   requested ids, so a foreign id is never looked at. A line with no quantity, no total and no
//!   tax is skipped too, and quantities are not checked against what was bought or already
//!   refunded (the admin screen checks; the API does not). When any requested line lacks an
//!   `id`, the list stays keyed by position (0, 1, …) as `adjust_line_items_for_create_refund_request`
//!   leaves it, and positions are matched against item ids.
//! - `line_items` is `readonly` in the refund schema, so WordPress checks nothing in it: a
//!   quantity or amount that is not a number makes PHP 8 throw a `TypeError` in
//!   `wc_format_refund_total`, which WordPress answers with a 500 `internal_server_error`
//!   ("There has been a critical error on this website.").
//! - A refund appears in the order's `refunds` and fires `order.updated`; the last one that
//!   empties the order sets `refunded`.
//! - *Stand-in*: `api_restock` (default true) is checked as a boolean, but nothing is restocked:
//!   stock stays as it was (WooCommerce puts refunded quantities of stock-managed products back).
//!
//! **Listing** (`GET /orders/{id}/refunds`, `GET /refunds`): the orders' collection parameters
//! ([`Collection`]): `page`, `per_page` (1–100, default 10), `offset`, `order` (default `desc`),
//! `orderby` (`date` — ties by id —, `id`, `include`, `title`, `slug`, `modified`), `include`,
//! `exclude`, `after`/`before` (the creation date, exclusive, to the second; `dates_are_gmt`),
//! `parent_exclude`, `status` (checked, no effect: refunds are listed in every status);
//! `X-WP-Total`/`X-WP-TotalPages` and `Link`; an invalid value is a 400 `rest_invalid_param`.
//! `GET /refunds` adds `parent_id` (the order, second member) and a `refunded_by` link. Its
//! `parent` is checked but has no effect, as in WooCommerce: `WC_REST_Refunds_Controller::
//! prepare_objects_query` unsets `post_parent__in` (one order's refunds: `/orders/{id}/refunds`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Number, Value, json};

use crate::error::ApiError;
use crate::json::{self, JsonText, with_links};
use crate::orders::{
    self, FeeLine, LineItem, LineTax, ORDER_STATUSES, Order, ShippingLine, TaxLine, dec_number,
};
use crate::pagination::{CRUD_ORDERBY, Collection, Listed, Page, paged_response};
use crate::params::{Fields, Query, body_params, wc_format_decimal};
use crate::products::{MetaData, apply_meta};
use crate::shared::Shared;
use crate::state::{Event, ShopState};

/// A refund in WooCommerce's REST shape (`/orders/{id}/refunds`; `/refunds` adds `parent_id`).
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
    #[serde(default, deserialize_with = "readable_lines")]
    pub line_items: Vec<LineItem>,
    #[serde(default)]
    pub shipping_lines: Vec<ShippingLine>,
    #[serde(default)]
    pub tax_lines: Vec<TaxLine>,
    #[serde(default)]
    pub fee_lines: Vec<FeeLine>,
}

/// A state file's refund lines; older stand-ins kept the request's lines as sent, which are
/// dropped rather than failing the whole file.
fn readable_lines<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<LineItem>, D::Error> {
    let raw = Vec::<Value>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

/// What a refund gives back line by line (empty for an amount-only refund).
#[derive(Debug, Clone, Default)]
pub struct RefundLines {
    pub line_items: Vec<LineItem>,
    pub shipping_lines: Vec<ShippingLine>,
    pub fee_lines: Vec<FeeLine>,
    pub tax_lines: Vec<TaxLine>,
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
    lines: RefundLines,
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
        line_items: lines.line_items,
        shipping_lines: lines.shipping_lines,
        tax_lines: lines.tax_lines,
        fee_lines: lines.fee_lines,
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

/// WordPress's answer to an uncaught PHP error during a REST request.
fn critical_error() -> ApiError {
    ApiError::new(
        500,
        "internal_server_error",
        "<p>There has been a critical error on this website.</p>",
    )
}

fn links(shared: &Shared, order_id: u64, refund_id: u64) -> Value {
    let root = shared.api_root();
    json!({
        "self": [{"href": format!("{root}/orders/{order_id}/refunds/{refund_id}")}],
        "collection": [{"href": format!("{root}/orders/{order_id}/refunds")}],
        "up": [{"href": format!("{root}/orders/{order_id}")}],
    })
}

/// As `/orders/{id}/refunds` shows a refund.
fn refund_json(r: &Refund, shared: &Shared, order_id: u64) -> JsonText {
    with_links(r, &links(shared, order_id, r.id))
}

/// As `/refunds` shows it: `parent_id` second, and a `refunded_by` link.
fn listed_json(r: &Refund, shared: &Shared, order_id: u64) -> JsonText {
    let mut links = links(shared, order_id, r.id);
    if let Value::Object(l) = &mut links {
        l.insert(
            "refunded_by".into(),
            json!([{"href": format!("{}/wp-json/wp/v2/users/{}", shared.base_url, r.refunded_by), "embeddable": true}]),
        );
    }
    // `{"id":N,…`: the id is a number, so the first comma ends it.
    let body = json::text(r);
    let body = match body.find(',') {
        Some(i) => format!("{},\"parent_id\":{order_id}{}", &body[..i], &body[i..]),
        None => body,
    };
    JsonText(json::append_member(&body, "_links", &json::text(&links)))
}

fn parse_id(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>().map_err(|_| ApiError::no_route())
}

// ---- the request's lines, the way PHP reads them --------------------------------------------

/// PHP's `empty()`.
fn php_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => !b,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => s.is_empty() || s == "0",
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
    }
}

/// PHP's `is_numeric` for a JSON value: a number, or a string that is one (surrounding
/// whitespace allowed, exponents too).
fn numeric(v: &Value) -> Option<Decimal> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    text.parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(&text).ok())
}

/// A value in PHP arithmetic (`$x * -1`): absent, null and false are 0, true is 1, numbers
/// are themselves; anything else makes PHP 8 throw a `TypeError`.
fn operand(v: Option<&Value>) -> Result<Decimal, ApiError> {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(Decimal::ZERO),
        Some(Value::Bool(true)) => Ok(Decimal::ONE),
        Some(other) => numeric(other).ok_or_else(critical_error),
    }
}

/// An array key the way PHP makes one from a value: integers (and integer strings) stay
/// integers; anything else is a key no item id equals.
fn item_key(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// One requested line after `adjust_line_items_for_create_refund_request`.
#[derive(Debug, Clone)]
struct Asked {
    qty: Option<Value>,
    refund_total: Option<Value>,
    /// `(rate id, amount)` after `adjust_taxes_for_create_refund_request_line_item`.
    refund_tax: Option<Vec<(Option<u64>, Value)>>,
}

/// What one requested line refunds, once matched to a line of the order.
#[derive(Debug, Clone)]
struct Amounts {
    qty: i64,
    total: Decimal,
    taxes: Vec<(u64, Decimal)>,
}

impl Asked {
    fn read(item: &Value) -> Asked {
        let field = |k: &str| item.get(k).cloned();
        let refund_tax = item.get("refund_tax").map(|t| match t {
            Value::Array(list) => {
                let by_id = list
                    .iter()
                    .all(|x| x.get("id").is_some() && x.get("refund_total").is_some());
                list.iter()
                    .enumerate()
                    .map(|(i, x)| match by_id {
                        true => (
                            x.get("id").and_then(item_key),
                            x.get("refund_total").cloned().unwrap_or(Value::Null),
                        ),
                        false => (u64::try_from(i).ok(), x.clone()),
                    })
                    .collect()
            }
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k.parse().ok(), v.clone()))
                .collect(),
            // `(array) $scalar` is `[0 => $scalar]`.
            scalar => vec![(Some(0), scalar.clone())],
        });
        Asked {
            // `quantity` becomes `qty` unless `qty` is there already.
            qty: field("qty").or_else(|| field("quantity")),
            refund_total: field("refund_total"),
            refund_tax,
        }
    }

    /// `None`: nothing asked for this line (`wc_create_refund` skips it).
    fn amounts(&self) -> Result<Option<Amounts>, ApiError> {
        let raw_taxes = self.refund_tax.as_deref().unwrap_or_default();
        if php_empty(self.qty.as_ref())
            && php_empty(self.refund_total.as_ref())
            && raw_taxes.is_empty()
        {
            return Ok(None);
        }
        let total = operand(self.refund_total.as_ref())?;
        let mut taxes = Vec::new();
        // `array_filter`: empty amounts are dropped. *Stand-in*: a key that is not an integer
        // (no rate can have it) is dropped too; WooCommerce would keep it as the tax's id.
        for (rate, amount) in raw_taxes.iter().filter(|(_, a)| !php_empty(Some(a))) {
            let amount = operand(Some(amount))?;
            if let Some(rate) = rate {
                taxes.push((*rate, amount));
            }
        }
        let qty = operand(self.qty.as_ref())?
            .trunc()
            .to_i64()
            .unwrap_or(0)
            .clamp(-1_000_000, 1_000_000);
        Ok(Some(Amounts { qty, total, taxes }))
    }
}

/// The request's `line_items` keyed as `wc_create_refund` sees them: by `id` when every line
/// has one, else by position; a later duplicate replaces an earlier one.
fn asked_lines(line_items: &[Value]) -> Vec<(Option<u64>, Asked)> {
    let by_id = line_items.iter().all(|l| l.get("id").is_some());
    let mut out: Vec<(Option<u64>, Asked)> = Vec::new();
    for (i, item) in line_items.iter().enumerate() {
        let key = match by_id {
            true => item.get("id").and_then(item_key),
            false => u64::try_from(i).ok(),
        };
        let asked = Asked::read(item);
        match out.iter_mut().find(|(k, _)| key.is_some() && *k == key) {
            Some(slot) => slot.1 = asked,
            None => out.push((key, asked)),
        }
    }
    out
}

/// `calculate_refund_amount_from_line_items`: the sum of every `refund_total` and
/// `refund_tax`, or `None` when any of them is not a number.
fn amount_of(asked: &[(Option<u64>, Asked)]) -> Option<Decimal> {
    if asked.is_empty() {
        return None;
    }
    let mut sum = Decimal::ZERO;
    for (_, a) in asked {
        sum += numeric(a.refund_total.as_ref()?)?;
        for (_, tax) in a.refund_tax.as_deref().unwrap_or_default() {
            sum += numeric(tax)?;
        }
    }
    Some(sum)
}

/// `_refunded_item_id` added to a copy of the order line's meta (new meta ids).
fn refunded_meta(original: &[MetaData], order_line: u64, new_line: u64) -> Vec<MetaData> {
    let mut meta: Vec<MetaData> = original
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, m)| MetaData {
            id: new_line * 100 + i as u64 + 1,
            ..m
        })
        .collect();
    meta.push(MetaData {
        id: new_line * 100 + meta.len() as u64 + 1,
        key: "_refunded_item_id".into(),
        value: Value::String(order_line.to_string()),
    });
    meta
}

/// Adds `taxes` (already negative) to per-rate sums, keeping the rates' first-seen order.
fn add_taxes(sums: &mut Vec<(u64, Decimal)>, taxes: &[(u64, Decimal)]) {
    for (rate, amount) in taxes {
        match sums.iter_mut().find(|(r, _)| r == rate) {
            Some(slot) => slot.1 += *amount,
            None => sums.push((*rate, *amount)),
        }
    }
}

/// The refund's own lines for the order lines the request names (`wc_create_refund`'s
/// "negative line items" and `update_taxes`).
fn refund_lines(
    shared: &Shared,
    shop: &mut ShopState,
    order: &Order,
    asked: &[(Option<u64>, Asked)],
) -> Result<RefundLines, ApiError> {
    let dp = shared.precision();
    let money = |d: Decimal| dp.money(d);
    let find = |id: u64| asked.iter().find(|(k, _)| *k == Some(id)).map(|(_, a)| a);
    let negative_taxes = |a: &Amounts| -> Vec<(u64, Decimal)> {
        a.taxes.iter().map(|(rate, t)| (*rate, -*t)).collect()
    };
    let line_taxes = |taxes: &[(u64, Decimal)]| -> Vec<LineTax> {
        taxes
            .iter()
            .map(|(rate, t)| LineTax {
                id: *rate,
                total: money(*t),
                subtotal: money(*t),
            })
            .collect()
    };
    let tax_sum = |taxes: &[(u64, Decimal)]| taxes.iter().map(|(_, t)| *t).sum::<Decimal>();
    let mut out = RefundLines::default();
    let mut cart_taxes: Vec<(u64, Decimal)> = Vec::new();
    let mut shipping_taxes: Vec<(u64, Decimal)> = Vec::new();

    for item in &order.line_items {
        let Some(a) = find(item.id).map(Asked::amounts).transpose()?.flatten() else {
            continue;
        };
        let id = shop.alloc_item_id();
        let taxes = negative_taxes(&a);
        add_taxes(&mut cart_taxes, &taxes);
        let quantity = -a.qty;
        let total = -a.total;
        out.line_items.push(LineItem {
            id,
            quantity,
            subtotal: money(total),
            subtotal_tax: money(tax_sum(&taxes)),
            total: money(total),
            total_tax: money(tax_sum(&taxes)),
            taxes: line_taxes(&taxes),
            meta_data: refunded_meta(&item.meta_data, item.id, id),
            price: match quantity {
                0 => Number::from(0),
                q => dec_number(total / Decimal::from(q)),
            },
            ..item.clone()
        });
    }
    for fee in &order.fee_lines {
        let Some(a) = find(fee.id).map(Asked::amounts).transpose()?.flatten() else {
            continue;
        };
        let id = shop.alloc_item_id();
        let taxes = negative_taxes(&a);
        add_taxes(&mut cart_taxes, &taxes);
        out.fee_lines.push(FeeLine {
            id,
            total: money(-a.total),
            total_tax: money(tax_sum(&taxes)),
            taxes: line_taxes(&taxes),
            meta_data: refunded_meta(&fee.meta_data, fee.id, id),
            ..fee.clone()
        });
    }
    for ship in &order.shipping_lines {
        let Some(a) = find(ship.id).map(Asked::amounts).transpose()?.flatten() else {
            continue;
        };
        let id = shop.alloc_item_id();
        let taxes = negative_taxes(&a);
        add_taxes(&mut shipping_taxes, &taxes);
        out.shipping_lines.push(ShippingLine {
            id,
            total: money(-a.total),
            total_tax: money(tax_sum(&taxes)),
            taxes: line_taxes(&taxes),
            meta_data: refunded_meta(&ship.meta_data, ship.id, id),
            ..ship.clone()
        });
    }
    // `update_taxes`: one tax line per rate, cart rates first.
    let mut rates: Vec<u64> = cart_taxes.iter().map(|(r, _)| *r).collect();
    rates.extend(
        shipping_taxes
            .iter()
            .map(|(r, _)| *r)
            .filter(|r| !cart_taxes.iter().any(|(c, _)| c == r)),
    );
    for rate_id in rates {
        let sum = |sums: &[(u64, Decimal)]| {
            sums.iter()
                .filter(|(r, _)| *r == rate_id)
                .map(|(_, t)| *t)
                .sum::<Decimal>()
        };
        let rate = shared.settings.tax_rates.iter().find(|r| r.id == rate_id);
        out.tax_lines.push(TaxLine {
            id: shop.alloc_item_id(),
            rate_code: rate.map(|r| r.rate_code()).unwrap_or_default(),
            rate_id,
            label: rate.map_or_else(|| "VAT".to_string(), |r| r.label.clone()),
            compound: false,
            tax_total: money(sum(&cart_taxes)),
            shipping_tax_total: money(sum(&shipping_taxes)),
            rate_percent: rate.map_or_else(|| Number::from(0), |r| dec_number(r.percent)),
            meta_data: Vec::new(),
        });
    }
    Ok(out)
}

// ---- create ---------------------------------------------------------------------------------

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
    // Checked like WordPress checks it; *stand-in*: nothing is restocked.
    let _api_restock = f.boolean("api_restock").unwrap_or(true);
    let line_items = f.array("line_items").cloned().unwrap_or_default();
    let meta = f.array("meta_data").cloned().unwrap_or_default();
    f.finish()?;
    let asked = asked_lines(&line_items);
    let Some(order) = shop.orders.get(&order_id).cloned() else {
        return Err(order_error());
    };
    let amount: Decimal = match amount {
        Some(a) => wc_format_decimal(&a).parse().unwrap_or_default(),
        None => amount_of(&asked).unwrap_or_default(),
    };
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
    let lines = refund_lines(shared, shop, &order, &asked)?;
    if api_refund {
        return Err(cannot(
            "The payment gateway for this order does not support automatic refunds.",
        ));
    }
    let mut refund = record(shared, shop, order_id, amount, &reason, false, lines);
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

// ---- lists ----------------------------------------------------------------------------------

/// A refund with its order, as the lists filter and sort it.
struct Listing<'a> {
    order_id: u64,
    refund: &'a Refund,
}

impl Listed for Listing<'_> {
    fn id(&self) -> u64 {
        self.refund.id
    }
    fn parent_id(&self) -> u64 {
        self.order_id
    }
    fn created_gmt(&self) -> &str {
        &self.refund.date_created_gmt
    }
    /// A refund is not edited after it is made.
    fn modified_gmt(&self) -> &str {
        &self.refund.date_created_gmt
    }
}

/// One page of refunds: of one order (`/orders/{id}/refunds`) or of all (`/refunds`).
fn list(
    shared: &Shared,
    shop: &ShopState,
    q: &Query,
    order: Option<u64>,
) -> Result<(Vec<JsonText>, Page), ApiError> {
    let mut errs = Vec::new();
    let mut collection = Collection::from_query(q, &shared.clock, CRUD_ORDERBY, &mut errs);
    let statuses = [&["any"], ORDER_STATUSES].concat();
    q.enum_str("status", "any", &statuses, &mut errs);
    if !errs.is_empty() {
        return Err(ApiError::invalid_params(&errs));
    }
    // One order's route fixes the parent; `/refunds` drops it (`post_parent__in` unset).
    collection.parent = order.into_iter().collect();
    let listings: Vec<Listing<'_>> = shop
        .refunds
        .iter()
        .filter(|(id, _)| order.is_none_or(|o| **id == o))
        .flat_map(|(id, refunds)| {
            refunds.iter().map(|refund| Listing {
                order_id: *id,
                refund,
            })
        })
        .collect();
    let (found, page) = collection.apply(listings.iter());
    let items = found
        .iter()
        .map(|l| match order {
            Some(_) => refund_json(l.refund, shared, l.order_id),
            None => listed_json(l.refund, shared, l.order_id),
        })
        .collect();
    Ok((items, page))
}

pub async fn list_handler(
    State(shared): State<Arc<Shared>>,
    Path(order_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let order_id = match parse_id(&order_id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let q = Query::parse(raw.as_deref());
    let result = {
        let shop = shared.shop();
        if !shop.orders.contains_key(&order_id) {
            return order_error().into_response();
        }
        list(&shared, &shop, &q, Some(order_id))
    };
    match result {
        Ok((items, page)) => paged_response(
            &format!("{}/orders/{order_id}/refunds", shared.api_root()),
            &q,
            &page,
            items,
        ),
        Err(e) => e.into_response(),
    }
}

/// `GET /refunds`: every order's refunds.
pub async fn all_handler(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let result = {
        let shop = shared.shop();
        list(&shared, &shop, &q, None)
    };
    match result {
        Ok((items, page)) => {
            paged_response(&format!("{}/refunds", shared.api_root()), &q, &page, items)
        }
        Err(e) => e.into_response(),
    }
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
