//! Orders: the REST shape of `/wc/v3/orders`, creation with totals computed by [`crate::totals`],
//! status changes with their side effects (date_paid, date_completed, stock reduction/restore,
//! a system note), the list filters (`modified_after` + `dates_are_gmt`, `status`, `orderby`...).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value, json};

use crate::coupons::NewCoupon;
use crate::error::ApiError;
use crate::json::{JsonText, with_links};
use crate::notes;
use crate::pagination::{CRUD_ORDERBY, Collection, Listed, Page, paged_response};
use crate::params::{Fields, Query, body_params, not_one_of};
use crate::products::{MetaData, apply_meta};
use crate::shared::Shared;
use crate::state::{Event, ShopState};
use crate::tax::{self, TaxRate};
use crate::totals::{self, ChargeIn, CouponIn, LineIn};

pub const ORDER_STATUSES: &[&str] = &[
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "checkout-draft",
    "trash",
];

/// Billing or shipping address (`email` only on billing).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Address {
    pub first_name: String,
    pub last_name: String,
    pub company: String,
    pub address_1: String,
    pub address_2: String,
    pub city: String,
    pub state: String,
    pub postcode: String,
    pub country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub phone: String,
}

/// One entry of `taxes[]` on a line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineTax {
    pub id: u64,
    pub total: String,
    pub subtotal: String,
}

/// `line_items[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    pub id: u64,
    pub name: String,
    pub product_id: u64,
    pub variation_id: u64,
    pub quantity: i64,
    pub tax_class: String,
    pub subtotal: String,
    pub subtotal_tax: String,
    pub total: String,
    pub total_tax: String,
    pub taxes: Vec<LineTax>,
    pub meta_data: Vec<MetaData>,
    pub sku: String,
    /// Net unit price after discounts as a JSON **number** (WooCommerce quirk, #30424).
    pub price: Number,
    pub image: Value,
    pub parent_name: Option<String>,
}

/// `tax_lines[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaxLine {
    pub id: u64,
    pub rate_code: String,
    pub rate_id: u64,
    pub label: String,
    pub compound: bool,
    pub tax_total: String,
    pub shipping_tax_total: String,
    pub rate_percent: Number,
    pub meta_data: Vec<MetaData>,
}

/// `shipping_lines[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShippingLine {
    pub id: u64,
    pub method_title: String,
    pub method_id: String,
    pub instance_id: String,
    pub total: String,
    pub total_tax: String,
    pub taxes: Vec<LineTax>,
    pub meta_data: Vec<MetaData>,
}

/// `fee_lines[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeeLine {
    pub id: u64,
    pub name: String,
    pub tax_class: String,
    pub tax_status: String,
    pub amount: String,
    pub total: String,
    pub total_tax: String,
    pub taxes: Vec<LineTax>,
    pub meta_data: Vec<MetaData>,
}

/// `coupon_lines[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CouponLine {
    pub id: u64,
    pub code: String,
    pub discount: String,
    pub discount_tax: String,
    pub meta_data: Vec<MetaData>,
}

/// An order in WooCommerce's REST shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub parent_id: u64,
    pub status: String,
    pub currency: String,
    pub version: String,
    pub prices_include_tax: bool,
    pub date_created: String,
    pub date_created_gmt: String,
    pub date_modified: String,
    pub date_modified_gmt: String,
    pub discount_total: String,
    pub discount_tax: String,
    pub shipping_total: String,
    pub shipping_tax: String,
    pub cart_tax: String,
    pub total: String,
    pub total_tax: String,
    pub customer_id: u64,
    pub order_key: String,
    pub billing: Address,
    pub shipping: Address,
    pub payment_method: String,
    pub payment_method_title: String,
    pub transaction_id: String,
    pub customer_ip_address: String,
    pub customer_user_agent: String,
    pub created_via: String,
    pub customer_note: String,
    pub date_completed: Option<String>,
    pub date_completed_gmt: Option<String>,
    pub date_paid: Option<String>,
    pub date_paid_gmt: Option<String>,
    pub cart_hash: String,
    pub number: String,
    pub meta_data: Vec<MetaData>,
    pub line_items: Vec<LineItem>,
    pub tax_lines: Vec<TaxLine>,
    pub shipping_lines: Vec<ShippingLine>,
    pub fee_lines: Vec<FeeLine>,
    pub coupon_lines: Vec<CouponLine>,
    pub refunds: Vec<Value>,
    pub payment_url: String,
    pub is_editable: bool,
    pub needs_payment: bool,
    pub needs_processing: bool,
    pub currency_symbol: String,
}

impl Order {
    /// `total` as a decimal.
    pub fn total_decimal(&self) -> Decimal {
        self.total.parse().unwrap_or_default()
    }
}

/// An order placed through the library (`WooStandin::place_order`), as a customer would at the
/// checkout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewOrder {
    /// `(sku, quantity)`.
    pub line_items: Vec<(String, i64)>,
    pub billing: Address,
    pub shipping: Address,
    pub payment_method: String,
    pub payment_method_title: String,
    /// Default `processing` (paid online).
    pub status: String,
    /// Net shipping cost (WooCommerce takes shipping excluding tax); `None` = no shipping line.
    pub shipping_total: Option<Decimal>,
    pub shipping_method_id: String,
    pub shipping_method_title: String,
    /// A coupon to apply (created if its code does not exist yet).
    pub coupon: Option<NewCoupon>,
    /// Fees the checkout adds (a cash-on-delivery surcharge, a payment fee), net like shipping.
    pub fee_lines: Vec<NewFee>,
    pub customer_id: u64,
    pub customer_note: String,
    pub meta_data: Vec<(String, Value)>,
}

/// A fee of a [`NewOrder`] (`fee_lines[]` of `POST /orders`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewFee {
    pub name: String,
    /// Net, as WooCommerce takes fees.
    pub total: Decimal,
    /// `""` = standard rate.
    pub tax_class: String,
    /// `taxable` or `none`.
    pub tax_status: String,
}

impl Default for NewFee {
    fn default() -> Self {
        NewFee {
            name: "Fee".into(),
            total: Decimal::ZERO,
            tax_class: String::new(),
            tax_status: "taxable".into(),
        }
    }
}

impl Default for NewOrder {
    fn default() -> Self {
        NewOrder {
            line_items: Vec::new(),
            billing: Address::default(),
            shipping: Address::default(),
            payment_method: "bacs".into(),
            payment_method_title: "Przelew bankowy".into(),
            status: "processing".into(),
            shipping_total: None,
            shipping_method_id: "flat_rate".into(),
            shipping_method_title: "Kurier".into(),
            coupon: None,
            fee_lines: Vec::new(),
            customer_id: 0,
            customer_note: String::new(),
            meta_data: Vec::new(),
        }
    }
}

impl NewOrder {
    /// The equivalent `POST /orders` body.
    pub fn to_body(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("status".into(), json!(self.status));
        m.insert("payment_method".into(), json!(self.payment_method));
        m.insert(
            "payment_method_title".into(),
            json!(self.payment_method_title),
        );
        m.insert(
            "billing".into(),
            serde_json::to_value(&self.billing).unwrap_or(Value::Null),
        );
        m.insert(
            "shipping".into(),
            serde_json::to_value(&self.shipping).unwrap_or(Value::Null),
        );
        m.insert("customer_id".into(), json!(self.customer_id));
        m.insert("customer_note".into(), json!(self.customer_note));
        let lines: Vec<Value> = self
            .line_items
            .iter()
            .map(|(sku, qty)| json!({"sku": sku, "quantity": qty}))
            .collect();
        m.insert("line_items".into(), Value::Array(lines));
        if let Some(s) = self.shipping_total {
            m.insert(
                "shipping_lines".into(),
                json!([{"method_id": self.shipping_method_id, "method_title": self.shipping_method_title, "total": s.to_string()}]),
            );
        }
        if let Some(c) = &self.coupon {
            m.insert("coupon_lines".into(), json!([{"code": c.code}]));
        }
        if !self.fee_lines.is_empty() {
            let fees: Vec<Value> = self
                .fee_lines
                .iter()
                .map(|f| json!({"name": f.name, "total": f.total.to_string(), "tax_class": f.tax_class, "tax_status": f.tax_status}))
                .collect();
            m.insert("fee_lines".into(), Value::Array(fees));
        }
        let meta: Vec<Value> = self
            .meta_data
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        m.insert("meta_data".into(), Value::Array(meta));
        m
    }
}

/// Statuses `payment_complete` moves to processing (`woocommerce_valid_order_statuses_for_payment_complete`).
const PAYABLE: &[&str] = &["on-hold", "pending", "failed", "cancelled"];

/// Largest line quantity the stand-in accepts (keeps decimal arithmetic far from overflow).
const MAX_QTY: i64 = 1_000_000;

/// Amounts above 10^12 are refused (*stand-in* guard; PHP would go to floats).
fn check_amount(d: Decimal, param: &str) -> Result<(), ApiError> {
    if d.abs() > Decimal::from(1_000_000_000_000i64) {
        return Err(ApiError::invalid_param(
            param,
            format!("{param}: amount {d} is too large for woo-standin"),
            "rest_out_of_bounds",
        ));
    }
    Ok(())
}

fn status_label(s: &str) -> &str {
    match s {
        "pending" => "Pending payment",
        "processing" => "Processing",
        "on-hold" => "On hold",
        "completed" => "Completed",
        "cancelled" => "Cancelled",
        "refunded" => "Refunded",
        "failed" => "Failed",
        "checkout-draft" => "Draft",
        "trash" => "Trash",
        other => other,
    }
}

/// A decimal as a JSON number (WooCommerce's float `price`).
pub fn dec_number(d: Decimal) -> Number {
    d.to_f64()
        .and_then(Number::from_f64)
        .unwrap_or_else(|| Number::from(0))
}

fn order_key(id: u64) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!(
        "order-{id}-{}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    ));
    format!("wc_order_{}", &hex::encode(h)[..13])
}

fn read_address(f: &mut Fields<'_>, key: &str, billing: bool) -> Option<Address> {
    let obj = f.object(key)?;
    let mut a = Fields::nested(obj, key);
    let mut s = |k: &str| a.string(k).unwrap_or_default();
    let addr = Address {
        first_name: s("first_name"),
        last_name: s("last_name"),
        company: s("company"),
        address_1: s("address_1"),
        address_2: s("address_2"),
        city: s("city"),
        state: s("state"),
        postcode: s("postcode"),
        country: s("country"),
        email: None,
        phone: s("phone"),
    };
    let email = a.string("email");
    f.absorb(a);
    let mut addr = addr;
    if billing {
        addr.email = Some(email.unwrap_or_default());
    }
    Some(addr)
}

/// Merges an address update into an existing address (only present keys change).
fn merge_address(old: &Address, new_obj: &Map<String, Value>, billing: bool) -> Address {
    let mut out = old.clone();
    let get = |k: &str| new_obj.get(k).and_then(Value::as_str).map(str::to_string);
    macro_rules! set {
        ($field:ident) => {
            if let Some(v) = get(stringify!($field)) {
                out.$field = v;
            }
        };
    }
    set!(first_name);
    set!(last_name);
    set!(company);
    set!(address_1);
    set!(address_2);
    set!(city);
    set!(state);
    set!(postcode);
    set!(country);
    set!(phone);
    if billing && let Some(v) = get("email") {
        out.email = Some(v);
    }
    out
}

/// `POST /orders` logic (also `place_order`).
pub fn create(
    shared: &Shared,
    shop: &mut ShopState,
    body: &Map<String, Value>,
    created_via: &str,
) -> Result<(Order, Vec<Event>), ApiError> {
    let mut f = Fields::new(body);
    let status = f.enum_str("status", ORDER_STATUSES);
    let currency = f.string("currency");
    let customer_id = f.id("customer_id");
    let customer_note = f.string("customer_note");
    let payment_method = f.string("payment_method");
    let payment_method_title = f.string("payment_method_title");
    let transaction_id = f.string("transaction_id");
    let set_paid = f.boolean("set_paid").unwrap_or(false);
    let billing = read_address(&mut f, "billing", true);
    let shipping = read_address(&mut f, "shipping", false);
    let line_items = f.array("line_items").cloned().unwrap_or_default();
    let shipping_lines = f.array("shipping_lines").cloned().unwrap_or_default();
    let fee_lines = f.array("fee_lines").cloned().unwrap_or_default();
    let coupon_lines = f.array("coupon_lines").cloned().unwrap_or_default();
    let meta = f.array("meta_data").cloned().unwrap_or_default();
    f.finish()?;

    // Resolve line items.
    struct Resolved {
        product_id: u64,
        variation_id: u64,
        name: String,
        sku: String,
        qty: i64,
        tax_class: String,
        taxable: bool,
        unit: Decimal,
        parent_name: Option<String>,
    }
    let mut resolved = Vec::new();
    for (i, item) in line_items.iter().enumerate() {
        let empty = Map::new();
        let obj = item.as_object().unwrap_or(&empty);
        let mut lf = Fields::nested(obj, &format!("line_items[{i}]"));
        let pid = lf.id("product_id").unwrap_or(0);
        let vid = lf.id("variation_id").unwrap_or(0);
        let sku = lf.string("sku").filter(|s| !s.is_empty());
        let qty = lf.integer("quantity").unwrap_or(1);
        let name = lf.string("name").unwrap_or_default();
        lf.finish()?;
        // WC_REST_Orders_V2_Controller::get_product_id: SKU first, then product_id (without a
        // variation), then variation_id; nothing at all is an error.
        let id = if let Some(sku) = &sku {
            shop.id_by_sku(sku).unwrap_or(0)
        } else if pid != 0 && vid == 0 {
            pid
        } else if vid != 0 {
            vid
        } else {
            return Err(ApiError::new(
                400,
                "woocommerce_rest_required_product_reference",
                "Product ID or SKU is required.",
            ));
        };
        if !(1..=MAX_QTY).contains(&qty) {
            return Err(ApiError::invalid_param(
                &format!("line_items[{i}][quantity]"),
                format!(
                    "line_items[{i}][quantity] must be between 1 (inclusive) and {MAX_QTY} (inclusive)"
                ),
                "rest_out_of_bounds",
            ));
        }
        // An id or SKU that matches no product is NOT an error in WooCommerce: the line is
        // created without a product, priced 0 (a real trap for connectors).
        let Some(p) = shop.products.get(&id).filter(|p| p.status != "trash") else {
            resolved.push(Resolved {
                product_id: 0,
                variation_id: 0,
                name,
                sku: String::new(),
                qty,
                tax_class: String::new(),
                taxable: true,
                unit: Decimal::ZERO,
                parent_name: None,
            });
            continue;
        };
        let (product_id, variation_id, parent_name) = if p.kind == "variation" {
            let parent = shop.products.get(&p.parent_id).map(|x| x.name.clone());
            (p.parent_id, p.id, parent)
        } else {
            (p.id, 0, None)
        };
        resolved.push(Resolved {
            product_id,
            variation_id,
            name: p.name.clone(),
            sku: p.sku.clone(),
            qty,
            tax_class: p.tax_class.clone(),
            taxable: p.tax_status == "taxable",
            unit: p.price_decimal().unwrap_or_default(),
            parent_name,
        });
    }

    // Coupons.
    let mut coupons = Vec::new();
    for (i, c) in coupon_lines.iter().enumerate() {
        let Some(code) = c.get("code").and_then(Value::as_str) else {
            return Err(ApiError::invalid_param(
                &format!("coupon_lines[{i}][code]"),
                format!("coupon_lines[{i}][code] is not of type string."),
                "rest_invalid_type",
            ));
        };
        let code = code.trim().to_lowercase();
        let Some(coupon) = shop.coupons.values().find(|x| x.code == code) else {
            return Err(ApiError::new(
                400,
                "woocommerce_rest_invalid_coupon",
                format!("Coupon \"{code}\" does not exist!"),
            ));
        };
        coupons.push(coupon.clone());
    }

    let ship_rate = tax::rate_for(
        &shared.settings.tax_rates,
        &shared.settings.shipping_tax_class,
    );
    let mut ship_in = Vec::new();
    let mut ship_meta = Vec::new();
    for s in &shipping_lines {
        let total = s
            .get("total")
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_f64().map(|f| f.to_string()))
            })
            .and_then(|t| t.parse::<Decimal>().ok())
            .unwrap_or_default();
        check_amount(total, "shipping_lines")?;
        ship_in.push(ChargeIn {
            total,
            rate: ship_rate.clone(),
            taxable: true,
        });
        ship_meta.push((
            s.get("method_id")
                .and_then(Value::as_str)
                .unwrap_or("flat_rate")
                .to_string(),
            s.get("method_title")
                .and_then(Value::as_str)
                .unwrap_or("Flat rate")
                .to_string(),
        ));
    }
    let mut fee_in = Vec::new();
    let mut fee_meta = Vec::new();
    for fee in &fee_lines {
        let total = fee
            .get("total")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Decimal>().ok())
            .unwrap_or_default();
        check_amount(total, "fee_lines")?;
        let class = fee
            .get("tax_class")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let tax_status = fee
            .get("tax_status")
            .and_then(Value::as_str)
            .unwrap_or("taxable")
            .to_string();
        fee_in.push(ChargeIn {
            total,
            rate: tax::rate_for(&shared.settings.tax_rates, &class),
            taxable: tax_status == "taxable",
        });
        fee_meta.push((
            fee.get("name")
                .and_then(Value::as_str)
                .unwrap_or("Fee")
                .to_string(),
            class,
            tax_status,
        ));
    }

    for r in &resolved {
        check_amount(r.unit * Decimal::from(r.qty), "line_items")?;
    }
    for c in &coupons {
        check_amount(c.amount_decimal(), "coupon_lines")?;
    }
    let lines_in: Vec<LineIn> = resolved
        .iter()
        .map(|r| LineIn {
            unit_price: r.unit,
            qty: r.qty,
            rate: tax::rate_for(&shared.settings.tax_rates, &r.tax_class),
            taxable: r.taxable,
        })
        .collect();
    let coupons_in: Vec<CouponIn> = coupons
        .iter()
        .map(|c| CouponIn {
            kind: c.discount_type.clone(),
            amount: c.amount_decimal(),
        })
        .collect();
    let pit = shared.settings.prices_include_tax;
    let dp = shared.precision();
    let t = totals::compute(&lines_in, &coupons_in, &ship_in, &fee_in, pit, dp);
    let money = |d: Decimal| dp.money(d);

    let id = shop.alloc_post_id();
    let (local, gmt) = shared.clock.now_pair();
    let line_tax = |rate: &TaxRate, total: Decimal, subtotal: Decimal, taxable: bool| {
        if taxable {
            vec![LineTax {
                id: rate.id,
                total: money(total),
                subtotal: money(subtotal),
            }]
        } else {
            Vec::new()
        }
    };
    let mut items = Vec::new();
    for (r, o) in resolved.iter().zip(&t.lines) {
        let rate = tax::rate_for(&shared.settings.tax_rates, &r.tax_class);
        items.push(LineItem {
            id: shop.alloc_item_id(),
            name: r.name.clone(),
            product_id: r.product_id,
            variation_id: r.variation_id,
            quantity: r.qty,
            tax_class: r.tax_class.clone(),
            subtotal: money(o.subtotal),
            subtotal_tax: money(o.subtotal_tax),
            total: money(o.total),
            total_tax: money(o.total_tax),
            taxes: line_tax(&rate, o.total_tax, o.subtotal_tax, r.taxable),
            meta_data: Vec::new(),
            sku: r.sku.clone(),
            price: dec_number(o.total / Decimal::from(r.qty.max(1))),
            image: json!({"id": "", "src": ""}),
            parent_name: r.parent_name.clone(),
        });
    }
    let mut shipping_out = Vec::new();
    for ((mid, mtitle), o) in ship_meta.iter().zip(&t.shipping) {
        shipping_out.push(ShippingLine {
            id: shop.alloc_item_id(),
            method_title: mtitle.clone(),
            method_id: mid.clone(),
            instance_id: "1".into(),
            total: money(o.total),
            total_tax: money(o.tax),
            taxes: line_tax(&ship_rate, o.tax, o.tax, true),
            meta_data: Vec::new(),
        });
    }
    let mut fees_out = Vec::new();
    for (((name, class, st), o), fi) in fee_meta.iter().zip(&t.fees).zip(&fee_in) {
        fees_out.push(FeeLine {
            id: shop.alloc_item_id(),
            name: name.clone(),
            tax_class: class.clone(),
            tax_status: st.clone(),
            amount: money(o.total),
            total: money(o.total),
            total_tax: money(o.tax),
            taxes: line_tax(&fi.rate, o.tax, o.tax, fi.taxable),
            meta_data: Vec::new(),
        });
    }
    let mut coupon_out = Vec::new();
    for (c, (d, dt)) in coupons.iter().zip(&t.coupons) {
        coupon_out.push(CouponLine {
            id: shop.alloc_item_id(),
            code: c.code.clone(),
            discount: money(*d),
            discount_tax: money(*dt),
            meta_data: Vec::new(),
        });
        if let Some(stored) = shop.coupons.get_mut(&c.id) {
            stored.usage_count += 1;
        }
    }
    let mut tax_lines = Vec::new();
    for tl in &t.tax_lines {
        tax_lines.push(TaxLine {
            id: shop.alloc_item_id(),
            rate_code: tl.rate.rate_code(),
            rate_id: tl.rate.id,
            label: tl.rate.label.clone(),
            compound: false,
            tax_total: money(tl.tax_total),
            shipping_tax_total: money(tl.shipping_tax_total),
            rate_percent: dec_number(tl.rate.percent),
            meta_data: Vec::new(),
        });
    }
    let mut meta_data = Vec::new();
    apply_meta(&mut meta_data, &meta, id * 100);

    let mut order = Order {
        id,
        parent_id: 0,
        status: "pending".into(),
        currency: currency.unwrap_or_else(|| shared.settings.currency.clone()),
        version: "9.4.2".into(),
        prices_include_tax: pit,
        date_created: local.clone(),
        date_created_gmt: gmt.clone(),
        date_modified: local,
        date_modified_gmt: gmt,
        discount_total: money(t.discount_total),
        discount_tax: money(t.discount_tax),
        shipping_total: money(t.shipping_total),
        shipping_tax: money(t.shipping_tax),
        cart_tax: money(t.cart_tax),
        total: money(t.total),
        total_tax: money(t.total_tax),
        customer_id: customer_id.unwrap_or(0),
        order_key: order_key(id),
        billing: billing.unwrap_or_else(|| Address {
            email: Some(String::new()),
            ..Address::default()
        }),
        shipping: shipping.unwrap_or_default(),
        payment_method: payment_method.unwrap_or_default(),
        payment_method_title: payment_method_title.unwrap_or_default(),
        transaction_id: transaction_id.unwrap_or_default(),
        customer_ip_address: "127.0.0.1".into(),
        customer_user_agent: String::new(),
        created_via: created_via.to_string(),
        customer_note: customer_note.unwrap_or_default(),
        date_completed: None,
        date_completed_gmt: None,
        date_paid: None,
        date_paid_gmt: None,
        cart_hash: String::new(),
        number: id.to_string(),
        meta_data,
        line_items: items,
        tax_lines,
        shipping_lines: shipping_out,
        fee_lines: fees_out,
        coupon_lines: coupon_out,
        refunds: Vec::new(),
        payment_url: format!("{}/checkout/order-pay/{id}/", shared.base_url),
        is_editable: true,
        needs_payment: false,
        needs_processing: true,
        currency_symbol: shared.settings.currency_symbol.clone(),
    };
    order.payment_url = format!(
        "{}?pay_for_order=true&key={}",
        order.payment_url, order.order_key
    );
    shop.orders.insert(id, order.clone());
    let mut events = vec![Event::new("order", "created", id)];
    let requested = status.unwrap_or_else(|| "pending".into());
    let target = if set_paid && PAYABLE.contains(&requested.as_str()) {
        "processing".to_string()
    } else {
        requested
    };
    if target != "pending" {
        // The status transition (or `payment_complete` for `set_paid`) saves the order a second
        // time, so WooCommerce fires `order.updated` right after `order.created`.
        events.extend(change_status(shared, shop, id, &target)?);
    } else {
        refresh_flags(shop, id);
    }
    let order = shop.orders.get(&id).cloned().unwrap_or(order);
    Ok((order, events))
}

fn refresh_flags(shop: &mut ShopState, id: u64) {
    if let Some(o) = shop.orders.get_mut(&id) {
        o.is_editable = matches!(o.status.as_str(), "pending" | "on-hold" | "checkout-draft");
        o.needs_payment =
            matches!(o.status.as_str(), "pending" | "failed") && o.total_decimal() > Decimal::ZERO;
    }
}

/// Changes an order's status with WooCommerce's side effects. Returns the events.
pub fn change_status(
    shared: &Shared,
    shop: &mut ShopState,
    id: u64,
    new_status: &str,
) -> Result<Vec<Event>, ApiError> {
    if !ORDER_STATUSES.contains(&new_status) {
        return Err(ApiError::invalid_param(
            "status",
            not_one_of("status", ORDER_STATUSES),
            "rest_not_in_enum",
        ));
    }
    let Some(order) = shop.orders.get(&id).cloned() else {
        return Err(ApiError::invalid_id("shop_order", 400));
    };
    let old = order.status.clone();
    let mut events = Vec::new();
    if old == new_status {
        return Ok(events);
    }
    let (local, gmt) = shared.clock.now_pair();
    if let Some(o) = shop.orders.get_mut(&id) {
        o.status = new_status.to_string();
        o.date_modified = local.clone();
        o.date_modified_gmt = gmt.clone();
        if matches!(new_status, "processing" | "completed") && o.date_paid.is_none() {
            o.date_paid = Some(local.clone());
            o.date_paid_gmt = Some(gmt.clone());
        }
        if new_status == "completed" {
            o.date_completed = Some(local.clone());
            o.date_completed_gmt = Some(gmt.clone());
        }
    }
    // `woocommerce_order_status_refunded` → `wc_order_fully_refunded`: a refund for what is
    // left of the total appears in `refunds`.
    if new_status == "refunded" {
        let left = order.total_decimal() - crate::refunds::refunded_total(&order);
        if left > Decimal::ZERO {
            crate::refunds::record(
                shared,
                shop,
                id,
                left,
                "Order fully refunded.",
                false,
                crate::refunds::RefundLines::default(),
            );
        }
    }
    refresh_flags(shop, id);
    let note = format!(
        "Order status changed from {} to {}.",
        status_label(&old),
        status_label(new_status)
    );
    notes::add(shop, &shared.clock, id, &note, false, "system");
    events.push(Event::new("order", "updated", id));

    // Stock.
    let reduce = matches!(new_status, "processing" | "completed" | "on-hold");
    let restore = matches!(new_status, "cancelled" | "pending");
    let reduced = shop.stock_reduced.contains(&id);
    if (reduce && !reduced) || (restore && reduced) {
        let sign: i64 = if reduce { -1 } else { 1 };
        let mut changes = Vec::new();
        for li in &order.line_items {
            let pid = if li.variation_id != 0 {
                li.variation_id
            } else {
                li.product_id
            };
            if let Some(p) = shop.products.get_mut(&pid)
                && p.manage_stock
            {
                let before = p.stock_quantity.unwrap_or(0);
                let after = before.saturating_add(sign.saturating_mul(li.quantity));
                p.stock_quantity = Some(after);
                if reduce {
                    p.total_sales += li.quantity;
                }
                p.touch(&shared.clock);
                p.refresh_derived(&shared.settings.currency_symbol);
                changes.push(format!("{} ({}) {}&rarr;{}", p.name, p.sku, before, after));
                events.push(Event::new("product", "updated", pid));
            }
        }
        if reduce {
            shop.stock_reduced.insert(id);
        } else {
            shop.stock_reduced.remove(&id);
        }
        if !changes.is_empty() {
            let what = if reduce { "reduced" } else { "increased" };
            let note = format!("Stock levels {what}: {}", changes.join(", "));
            notes::add(shop, &shared.clock, id, &note, false, "system");
        }
    }
    Ok(events)
}

/// `PUT /orders/{id}` logic.
pub fn update(
    shared: &Shared,
    shop: &mut ShopState,
    id: u64,
    body: &Map<String, Value>,
) -> Result<(Order, Vec<Event>), ApiError> {
    if !shop.orders.contains_key(&id) {
        return Err(ApiError::invalid_id("shop_order", 400));
    }
    for key in ["line_items", "shipping_lines", "fee_lines", "coupon_lines"] {
        if body
            .get(key)
            .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        {
            return Err(ApiError::new(
                501,
                "standin_not_implemented",
                format!("woo-standin does not implement changing {key} of an existing order."),
            ));
        }
    }
    let mut f = Fields::new(body);
    let status = f.enum_str("status", ORDER_STATUSES);
    let customer_note = f.string("customer_note");
    let payment_method = f.string("payment_method");
    let payment_method_title = f.string("payment_method_title");
    let transaction_id = f.string("transaction_id");
    let set_paid = f.boolean("set_paid").unwrap_or(false);
    let customer_id = f.id("customer_id");
    let billing = f.object("billing").cloned();
    let shipping = f.object("shipping").cloned();
    let meta = f.array("meta_data").cloned();
    f.finish()?;

    let (local, gmt) = shared.clock.now_pair();
    if let Some(o) = shop.orders.get_mut(&id) {
        if let Some(v) = customer_note {
            o.customer_note = v;
        }
        if let Some(v) = payment_method {
            o.payment_method = v;
        }
        if let Some(v) = payment_method_title {
            o.payment_method_title = v;
        }
        if let Some(v) = transaction_id {
            o.transaction_id = v;
        }
        if let Some(v) = customer_id {
            o.customer_id = v;
        }
        if let Some(b) = &billing {
            o.billing = merge_address(&o.billing, b, true);
        }
        if let Some(s) = &shipping {
            o.shipping = merge_address(&o.shipping, s, false);
        }
        if let Some(m) = &meta {
            apply_meta(&mut o.meta_data, m, id * 100);
        }
        o.date_modified = local;
        o.date_modified_gmt = gmt;
    }
    let mut events = vec![Event::new("order", "updated", id)];
    // `payment_complete` only moves orders that still await payment.
    let after_status = status
        .clone()
        .or_else(|| shop.orders.get(&id).map(|o| o.status.clone()))
        .unwrap_or_default();
    let target = if set_paid && PAYABLE.contains(&after_status.as_str()) {
        Some("processing".to_string())
    } else {
        status
    };
    if let Some(s) = target {
        events.extend(change_status(shared, shop, id, &s)?);
    }
    // WooCommerce de-duplicates a webhook per resource within one request.
    let mut seen = Vec::new();
    events.retain(|e| {
        let key = (e.resource, e.event, e.id);
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    let order = shop
        .orders
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::invalid_id("shop_order", 400))?;
    Ok((order, events))
}

/// `DELETE /orders/{id}` logic.
pub fn delete(
    shared: &Shared,
    shop: &mut ShopState,
    id: u64,
    force: bool,
) -> Result<(Order, Vec<Event>), ApiError> {
    let Some(order) = shop.orders.get(&id).cloned() else {
        return Err(ApiError::invalid_id("shop_order", 404));
    };
    if force {
        shop.orders.remove(&id);
        shop.order_notes.remove(&id);
        shop.stock_reduced.remove(&id);
        return Ok((order, vec![Event::new("order", "deleted", id)]));
    }
    if order.status == "trash" {
        return Err(ApiError::new(
            410,
            "woocommerce_rest_already_trashed",
            format!("The order with ID {id} has already been deleted."),
        ));
    }
    let (local, gmt) = shared.clock.now_pair();
    if let Some(o) = shop.orders.get_mut(&id) {
        o.status = "trash".into();
        o.date_modified = local;
        o.date_modified_gmt = gmt;
    }
    let order = shop.orders.get(&id).cloned().unwrap_or(order);
    Ok((order, vec![Event::new("order", "deleted", id)]))
}

/// The order with `_links`, as the API (and webhooks) return it.
pub fn order_json(o: &Order, api_root: &str) -> JsonText {
    let mut links = json!({
        "self": [{"href": format!("{api_root}/orders/{}", o.id)}],
        "collection": [{"href": format!("{api_root}/orders")}],
    });
    if o.customer_id != 0
        && let Value::Object(l) = &mut links
    {
        l.insert(
            "customer".into(),
            json!([{"href": format!("{api_root}/customers/{}", o.customer_id)}]),
        );
    }
    with_links(o, &links)
}

impl Listed for Order {
    fn id(&self) -> u64 {
        self.id
    }
    fn parent_id(&self) -> u64 {
        self.parent_id
    }
    fn created_gmt(&self) -> &str {
        &self.date_created_gmt
    }
    fn modified_gmt(&self) -> &str {
        &self.date_modified_gmt
    }
}

fn list(shared: &Shared, shop: &ShopState, q: &Query) -> Result<(Vec<JsonText>, Page), ApiError> {
    let mut errs = Vec::new();
    let statuses: Vec<String> = q
        .get("status")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_else(|| vec!["any".to_string()]);
    for s in &statuses {
        if s != "any" && !ORDER_STATUSES.contains(&s.as_str()) {
            errs.push((
                "status[0]".into(),
                not_one_of("status[0]", &[&["any"], ORDER_STATUSES].concat()),
                "rest_not_in_enum".into(),
            ));
        }
    }
    let collection = Collection::from_query(q, &shared.clock, CRUD_ORDERBY, &mut errs);
    let customer = q.get("customer").and_then(|c| c.parse::<u64>().ok());
    let product = q.get("product").and_then(|c| c.parse::<u64>().ok());
    if !errs.is_empty() {
        return Err(ApiError::invalid_params(&errs));
    }
    let search = q.get("search").map(str::to_lowercase);
    let candidates = shop
        .orders
        .values()
        .filter(|o| {
            statuses.iter().any(|s| {
                if s == "any" {
                    o.status != "trash" && o.status != "checkout-draft"
                } else {
                    &o.status == s
                }
            })
        })
        .filter(|o| customer.is_none_or(|c| o.customer_id == c))
        .filter(|o| {
            product.is_none_or(|p| {
                o.line_items
                    .iter()
                    .any(|l| l.product_id == p || l.variation_id == p)
            })
        })
        .filter(|o| {
            search.as_ref().is_none_or(|s| {
                let hay = format!(
                    "{} {} {} {}",
                    o.billing.first_name,
                    o.billing.last_name,
                    o.billing.email.clone().unwrap_or_default(),
                    o.id
                )
                .to_lowercase();
                hay.contains(s)
            })
        });
    let (found, page) = collection.apply(candidates);
    let root = shared.api_root();
    let slice: Vec<JsonText> = found.iter().map(|o| order_json(o, &root)).collect();
    Ok((slice, page))
}

// ---- handlers -------------------------------------------------------------------------------

pub async fn list_handler(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let result = {
        let shop = shared.shop();
        list(&shared, &shop, &q)
    };
    match result {
        Ok((items, page)) => {
            paged_response(&format!("{}/orders", shared.api_root()), &q, &page, items)
        }
        Err(e) => e.into_response(),
    }
}

pub async fn get_handler(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::no_route().into_response();
    };
    let shop = shared.shop();
    match shop.orders.get(&id) {
        Some(o) => order_json(o, &shared.api_root()).into_response(),
        None => ApiError::invalid_id("shop_order", 404).into_response(),
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
        create(&shared, &mut shop, &params, "rest-api")
    };
    match result {
        Ok((o, events)) => {
            shared.after_write(events);
            let location = format!("/wp-json/wc/v3/orders/{}", o.id);
            (
                StatusCode::CREATED,
                [(axum::http::header::LOCATION, location)],
                order_json(&o, &shared.api_root()),
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
        Ok((o, events)) => {
            shared.after_write(events);
            order_json(&o, &shared.api_root()).into_response()
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
    let force = q.boolean("force", &mut errs).unwrap_or(false);
    let result = {
        let mut shop = shared.shop();
        delete(&shared, &mut shop, id, force)
    };
    match result {
        Ok((o, events)) => {
            shared.after_write(events);
            order_json(&o, &shared.api_root()).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn batch_handler(
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
    let root = shared.api_root();
    let result = crate::batch::run(
        &shared,
        &params,
        |shop, item| {
            create(&shared, shop, item, "rest-api").map(|(o, e)| (order_json(&o, &root), e))
        },
        |shop, id, item| update(&shared, shop, id, item).map(|(o, e)| (order_json(&o, &root), e)),
        |shop, id| delete(&shared, shop, id, true).map(|(o, e)| (order_json(&o, &root), e)),
    );
    match result {
        Ok((json, events)) => {
            shared.after_write(events);
            json.into_response()
        }
        Err(e) => e.into_response(),
    }
}
