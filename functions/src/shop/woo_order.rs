//! WooCommerce orders on the wire: the webhook signature, the creation
//! ping, and the order JSON (`GET /orders/{id}`, the same shape a webhook
//! delivers) normalised into [`contract::Order`].
//!
//! Pure functions, no I/O: the `webhook` and `poller` functions and the
//! fuzz test call them directly.
//!
//! - Signature: `X-WC-Webhook-Signature` is base64(HMAC-SHA256(raw body,
//!   webhook secret)); it is checked on the raw bytes, in constant time
//!   (`Mac::verify_slice`).
//! - Ping: on creation WooCommerce posts the form body `webhook_id=<id>`
//!   without any `X-WC-*` header or signature.
//! - Normalisation keeps only what the ERP document needs (data
//!   minimisation): no IP, user agent, order key, customer id or
//!   free-form meta data, except the buyer's NIP read from the configured
//!   meta keys. Money is read from WooCommerce's decimal strings into
//!   `rust_decimal`, never through a float: a money field sent as a JSON
//!   float is refused.
//! - A missing or empty address is kept as it is (empty fields): private
//!   buyers often give only a name and an e-mail, and the ERP side decides
//!   (collective customer, or park the order).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use contract::{Address, Buyer, Order, OrderLine, OrderState, Shipping, VatRate};

use super::{Delivery, RawOrder, Rejection, Secret, WebhookVerifier};
use hmac::{Hmac, Mac};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use sha2::Sha256;

/// The most lines an order may have, products and fees together.
pub const MAX_LINES: usize = 1000;
/// The largest quantity on one line: anything above is a broken or hostile payload.
pub const MAX_QUANTITY: u32 = 100_000;
/// The largest absolute amount of any money field (PLN 10 billion).
const MAX_AMOUNT: i64 = 10_000_000_000;
/// The longest text field kept (names, notes); longer text is cut here.
const MAX_TEXT_CHARS: usize = 2000;

pub use super::OrderParseError;

fn field_error(field: impl Into<String>, problem: impl Into<String>) -> OrderParseError {
    OrderParseError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Whether `signature` (the header's base64 text) is the HMAC of `body` under `secret`.
pub fn verify_signature(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The header value WooCommerce would send for `body` (tests and the stand-in's peers).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// WooCommerce's webhooks: `X-WC-Webhook-Signature` over the raw body,
/// the unsigned creation ping, and the order topics
/// (`order.created`, `order.updated`, `order.restored`; a missing topic
/// header is taken as `order.updated`). Other topics, `order.deleted`
/// among them, are acknowledged and ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct WooWebhooks;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-WC-Webhook-Signature";

impl WebhookVerifier for WooWebhooks {
    fn verify(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        secret: Option<&Secret>,
        _now: DateTime<Utc>,
    ) -> Result<Delivery, Rejection> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let Some(signature) = header("x-wc-webhook-signature") else {
            // The creation ping is the one unsigned delivery WooCommerce sends.
            if let Some(id) = ping_webhook_id(body) {
                return Ok(Delivery::Ping { id: id.to_string() });
            }
            return Err(Rejection::MissingSignature(SIGNATURE_HEADER));
        };
        let secret = secret.ok_or(Rejection::NoSecret)?;
        if !verify_signature(secret.expose().as_bytes(), body, signature) {
            return Err(Rejection::BadSignature(SIGNATURE_HEADER));
        }
        let topic = header("x-wc-webhook-topic")
            .unwrap_or("order.updated")
            .trim()
            .to_owned();
        if !matches!(
            topic.as_str(),
            "order.created" | "order.updated" | "order.restored"
        ) {
            return Ok(Delivery::Ignored { topic });
        }
        Ok(Delivery::Order(RawOrder {
            id: order_id_of(body),
            body: body.to_vec(),
            position: None,
        }))
    }

    fn delivery_id_header(&self) -> Option<&'static str> {
        Some("x-wc-webhook-delivery-id")
    }
}

/// The `id` of an order body, for logs ("-" when it has none).
pub fn order_id_of(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct IdOnly {
        id: serde_json::Value,
    }
    match serde_json::from_slice::<IdOnly>(body) {
        Ok(IdOnly { id }) => match id {
            serde_json::Value::String(text) => text.chars().take(40).collect(),
            other => other.to_string().chars().take(40).collect(),
        },
        Err(_) => "-".into(),
    }
}

/// The webhook id of a creation ping (`webhook_id=<digits>`), if `body` is one.
pub fn ping_webhook_id(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let digits = text.strip_prefix("webhook_id=")?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// How a shop's orders are read, from its configuration.
#[derive(Debug, Clone, Default)]
pub struct NormaliseOptions {
    /// Meta data keys that may hold the buyer's NIP, tried in order.
    pub nip_meta_keys: Vec<String>,
    /// Statuses that close an order ([`OrderState::Cancelled`]); the
    /// defaults when empty.
    pub closed_statuses: Vec<String>,
}

/// WooCommerce's statuses of an order that will not be fulfilled.
pub const DEFAULT_CLOSED_STATUSES: [&str; 4] = ["cancelled", "refunded", "failed", "trash"];

/// A WooCommerce status in the neutral lifecycle. `processing` is "payment
/// received, or cash on delivery: fulfil it" in WooCommerce's own words;
/// `checkout-draft` and plugins' statuses are not named.
pub fn state_of(status: &str, closed_statuses: &[String]) -> OrderState {
    let closed = if closed_statuses.is_empty() {
        DEFAULT_CLOSED_STATUSES.contains(&status)
    } else {
        closed_statuses.iter().any(|s| s == status)
    };
    if closed {
        return OrderState::Cancelled;
    }
    match status {
        "pending" | "on-hold" => OrderState::AwaitingPayment,
        "processing" => OrderState::Paid,
        "completed" => OrderState::Completed,
        _ => OrderState::Other,
    }
}

/// Parses a webhook body or one listed order and normalises it.
pub fn parse_order(
    shop: &str,
    body: &[u8],
    options: &NormaliseOptions,
) -> Result<Order, OrderParseError> {
    let text = std::str::from_utf8(body).map_err(|_| OrderParseError::NotUtf8)?;
    let raw: WooOrder = serde_json::from_str(text).map_err(|e| OrderParseError::Json {
        platform: "WooCommerce",
        problem: e.to_string(),
    })?;
    normalise(shop, raw, options)
}

/// Normalises an order already parsed as JSON (the poller's listed orders).
pub fn order_from_value(
    shop: &str,
    value: serde_json::Value,
    options: &NormaliseOptions,
) -> Result<Order, OrderParseError> {
    let raw: WooOrder = serde_json::from_value(value).map_err(|e| OrderParseError::Json {
        platform: "WooCommerce",
        problem: e.to_string(),
    })?;
    normalise(shop, raw, options)
}

/// A money amount from a decimal string (or an integer); floats are refused.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Money(pub Decimal);

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;
        impl Visitor<'_> for MoneyVisitor {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal amount as a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
                let v = v.trim();
                if v.is_empty() {
                    return Ok(Money(Decimal::ZERO));
                }
                let value = Decimal::from_str(v)
                    .or_else(|_| Decimal::from_scientific(v))
                    .map_err(|_| E::custom(format!("`{}` is not a decimal amount", cut(v, 40))))?;
                if value.abs() > Decimal::from(MAX_AMOUNT) {
                    return Err(E::custom(format!("amount {value} is out of range")));
                }
                Ok(Money(value))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Money, E> {
                Err(E::custom(
                    "a money amount must be a decimal string, not a JSON float",
                ))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Money, E> {
                Ok(Money(Decimal::ZERO))
            }
        }
        d.deserialize_any(MoneyVisitor)
    }
}

/// A JSON number or numeric string read as a decimal without a float in between.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Num(Option<Decimal>);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // serde_json keeps the number's text only as f64 here; rates and
        // quantities are small, and `{}` of an f64 is its shortest exact
        // decimal text, so no float arithmetic happens.
        let value = serde_json::Value::deserialize(d)?;
        let text = match &value {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.trim().to_owned(),
            serde_json::Value::Null => return Ok(Num(None)),
            _ => return Err(de::Error::custom("expected a number")),
        };
        Decimal::from_str(&text)
            .or_else(|_| Decimal::from_scientific(&text))
            .map(|d| Num(Some(d)))
            .map_err(|_| de::Error::custom(format!("`{}` is not a number", cut(&text, 40))))
    }
}

/// An id that WooCommerce sends as a number (some plugins: a string).
#[derive(Debug, Clone, Default, PartialEq)]
struct Id(String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let text = match value {
            serde_json::Value::Number(n) if n.is_u64() => n.to_string(),
            serde_json::Value::String(s) => s.trim().to_owned(),
            _ => return Err(de::Error::custom("expected a positive whole number")),
        };
        Ok(Id(text))
    }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    // null, numbers and strings all read as text; longer text is cut.
    let value = serde_json::Value::deserialize(d)?;
    Ok(match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => cut(&s, MAX_TEXT_CHARS),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
        _ => return Err(de::Error::custom("expected text")),
    })
}

fn cut(s: &str, chars: usize) -> String {
    s.chars().take(chars).collect()
}

#[derive(Debug, Deserialize)]
struct WooOrder {
    id: Id,
    #[serde(default, deserialize_with = "text")]
    number: String,
    #[serde(deserialize_with = "text")]
    status: String,
    #[serde(default, deserialize_with = "text")]
    currency: String,
    #[serde(default, deserialize_with = "text")]
    date_created_gmt: String,
    #[serde(deserialize_with = "text")]
    date_modified_gmt: String,
    #[serde(default, deserialize_with = "text")]
    date_paid_gmt: String,
    #[serde(default)]
    discount_total: Money,
    #[serde(default)]
    discount_tax: Money,
    total: Money,
    #[serde(default)]
    total_tax: Money,
    #[serde(default)]
    billing: Option<WooAddress>,
    #[serde(default)]
    shipping: Option<WooAddress>,
    #[serde(default, deserialize_with = "text")]
    payment_method: String,
    #[serde(default, deserialize_with = "text")]
    customer_note: String,
    #[serde(default)]
    meta_data: Vec<WooMeta>,
    line_items: Vec<WooLine>,
    #[serde(default)]
    tax_lines: Vec<WooTaxLine>,
    #[serde(default)]
    shipping_lines: Vec<WooShippingLine>,
    #[serde(default)]
    fee_lines: Vec<WooFeeLine>,
}

#[derive(Debug, Default, Deserialize)]
struct WooAddress {
    #[serde(default, deserialize_with = "text")]
    first_name: String,
    #[serde(default, deserialize_with = "text")]
    last_name: String,
    #[serde(default, deserialize_with = "text")]
    company: String,
    #[serde(default, deserialize_with = "text")]
    address_1: String,
    #[serde(default, deserialize_with = "text")]
    address_2: String,
    #[serde(default, deserialize_with = "text")]
    city: String,
    #[serde(default, deserialize_with = "text")]
    postcode: String,
    #[serde(default, deserialize_with = "text")]
    country: String,
    #[serde(default, deserialize_with = "text")]
    email: String,
    #[serde(default, deserialize_with = "text")]
    phone: String,
}

#[derive(Debug, Deserialize)]
struct WooMeta {
    #[serde(default, deserialize_with = "text")]
    key: String,
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct WooTax {
    id: Num,
}

#[derive(Debug, Deserialize)]
struct WooLine {
    #[serde(default, deserialize_with = "text")]
    name: String,
    #[serde(default, deserialize_with = "text")]
    sku: String,
    quantity: Num,
    #[serde(default)]
    subtotal: Money,
    #[serde(default)]
    subtotal_tax: Money,
    total: Money,
    #[serde(default)]
    total_tax: Money,
    #[serde(default)]
    taxes: Vec<WooTax>,
}

#[derive(Debug, Deserialize)]
struct WooTaxLine {
    rate_id: Num,
    #[serde(default)]
    rate_percent: Num,
}

#[derive(Debug, Deserialize)]
struct WooShippingLine {
    #[serde(default, deserialize_with = "text")]
    method_id: String,
    #[serde(default, deserialize_with = "text")]
    method_title: String,
    total: Money,
    #[serde(default)]
    total_tax: Money,
    #[serde(default)]
    taxes: Vec<WooTax>,
}

#[derive(Debug, Deserialize)]
struct WooFeeLine {
    #[serde(default, deserialize_with = "text")]
    name: String,
    total: Money,
    #[serde(default)]
    total_tax: Money,
    #[serde(default)]
    taxes: Vec<WooTax>,
}

/// A WooCommerce GMT date (`2026-03-01T10:15:00`, no offset), or RFC 3339.
fn gmt(field: &str, value: &str) -> Result<DateTime<Utc>, OrderParseError> {
    let value = value.trim();
    if let Ok(at) = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S") {
        return Ok(at.and_utc());
    }
    DateTime::parse_from_rfc3339(value)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| field_error(field, format!("`{}` is not a date", cut(value, 40))))
}

/// The Polish rates WooCommerce's rounded per-line taxes are snapped to.
const POLISH_RATES: [i64; 4] = [23, 8, 5, 0];

/// A line's VAT rate: from its tax entries and the order's tax lines when
/// present, else from its tax/net ratio, snapped to the Polish rate that
/// gives the line's tax to a grosz (WooCommerce rounds each line's tax; a
/// price entered gross and taxed backwards stays within 0.7 grosz). A
/// ratio no Polish rate gives is refused: it is not a rate Optima can
/// book, and snapping it would book another tax than the shop charged.
fn line_vat(
    field: &str,
    taxes: &[WooTax],
    rates: &HashMap<Decimal, Decimal>,
    net: Decimal,
    tax: Decimal,
) -> Result<VatRate, OrderParseError> {
    let from_lines = taxes
        .iter()
        .filter_map(|t| t.id.0)
        .find_map(|id| rates.get(&id).copied());
    if let Some(percent) = from_lines {
        return Ok(VatRate::Percent(percent.normalize()));
    }
    if net.is_zero() {
        return Ok(if tax.is_zero() {
            VatRate::Percent(Decimal::from(23))
        } else {
            VatRate::Percent(Decimal::ZERO)
        });
    }
    // Checked: rust_decimal's `/` and `*` panic on overflow (a tax against a
    // net of 1e-28). A ratio past the decimal range is above every rate.
    let ratio = tax
        .checked_div(net)
        .and_then(|r| r.checked_mul(Decimal::ONE_HUNDRED))
        .unwrap_or(Decimal::MAX);
    let nearest = POLISH_RATES
        .iter()
        .copied()
        .min_by_key(|r| (ratio - Decimal::from(*r)).abs())
        .unwrap_or(23);
    let gives = net
        .checked_mul(Decimal::from(nearest))
        .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED));
    match gives {
        Some(gives) if (gives - tax).abs() <= Decimal::new(1, 2) => {
            Ok(VatRate::Percent(Decimal::from(nearest)))
        }
        _ => Err(field_error(
            field,
            format!(
                "a tax of {tax} on {net} is {} %, not a Polish VAT rate (23, 8, 5, 0)",
                ratio.round_dp(2)
            ),
        )),
    }
}

/// A name as WooCommerce gives it (HTML entities, `&ndash;`, `&amp;`), as
/// text.
fn plain(text: &str) -> String {
    html_escape::decode_html_entities(text.trim()).into_owned()
}

fn round2(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn address(a: &WooAddress) -> Address {
    let name = format!("{} {}", a.first_name.trim(), a.last_name.trim())
        .trim()
        .to_owned();
    let street = format!("{} {}", a.address_1.trim(), a.address_2.trim())
        .trim()
        .to_owned();
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    Address {
        name,
        company: opt(&a.company),
        street,
        city: a.city.trim().to_owned(),
        postcode: a.postcode.trim().to_owned(),
        country: a.country.trim().to_uppercase(),
        phone: opt(&a.phone),
    }
}

fn is_blank(a: &Address) -> bool {
    a.name.is_empty()
        && a.company.is_none()
        && a.street.is_empty()
        && a.city.is_empty()
        && a.postcode.is_empty()
}

fn nip(meta: &[WooMeta], keys: &[String]) -> Option<String> {
    keys.iter().find_map(|key| {
        meta.iter()
            .find(|m| m.key == *key)
            .and_then(|m| m.value.as_str())
            .map(|v| {
                v.chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect::<String>()
            })
            .filter(|v| !v.is_empty() && v.len() <= 20)
    })
}

fn normalise(
    shop: &str,
    raw: WooOrder,
    options: &NormaliseOptions,
) -> Result<Order, OrderParseError> {
    let order_id = raw.id.0;
    if order_id.is_empty()
        || order_id.len() > 20
        || !order_id.bytes().all(|b| b.is_ascii_digit())
        || order_id.bytes().all(|b| b == b'0')
    {
        return Err(field_error("id", "must be a positive whole number"));
    }
    let status = raw.status.trim().to_owned();
    if status.is_empty()
        || status.len() > 40
        || !status
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(field_error("status", "must be a status slug"));
    }
    let revision = gmt("date_modified_gmt", &raw.date_modified_gmt)?;
    let placed_at = if raw.date_created_gmt.trim().is_empty() {
        revision
    } else {
        gmt("date_created_gmt", &raw.date_created_gmt)?
    };
    let date_paid = if raw.date_paid_gmt.trim().is_empty() {
        None
    } else {
        Some(gmt("date_paid_gmt", &raw.date_paid_gmt)?)
    };
    let paid = date_paid.is_some() || matches!(status.as_str(), "processing" | "completed");
    if raw.line_items.is_empty() {
        return Err(field_error(
            "line_items",
            "an order needs at least one line",
        ));
    }
    // Fees become lines of the document too.
    if raw.line_items.len() + raw.fee_lines.len() > MAX_LINES {
        return Err(field_error(
            "line_items",
            format!("more than {MAX_LINES} lines (products and fees)"),
        ));
    }
    let rates: HashMap<Decimal, Decimal> = raw
        .tax_lines
        .iter()
        .filter_map(|t| Some((t.rate_id.0?, t.rate_percent.0?)))
        .filter(|(_, p)| *p >= Decimal::ZERO && *p <= Decimal::ONE_HUNDRED)
        .collect();
    let mut lines = Vec::with_capacity(raw.line_items.len() + raw.fee_lines.len());
    for (i, line) in raw.line_items.iter().enumerate() {
        let field = |name: &str| format!("line_items[{i}].{name}");
        let quantity = line
            .quantity
            .0
            .ok_or_else(|| field_error(field("quantity"), "is missing"))?;
        if quantity <= Decimal::ZERO || quantity > Decimal::from(MAX_QUANTITY) {
            return Err(field_error(
                field("quantity"),
                format!("{quantity} is outside 1..={MAX_QUANTITY}"),
            ));
        }
        let (net, tax) = (line.total.0, line.total_tax.0);
        if net.is_sign_negative() || tax.is_sign_negative() {
            return Err(field_error(
                field("total"),
                "a line total cannot be negative",
            ));
        }
        let gross = net + tax;
        // Checked: a quantity of 1e-28 would overflow the division.
        let unit_price_gross = gross.checked_div(quantity).map(round2).ok_or_else(|| {
            field_error(
                field("quantity"),
                format!("{quantity} gives a unit price out of range"),
            )
        })?;
        let before_discount = line.subtotal.0 + line.subtotal_tax.0;
        let discount = if before_discount > gross {
            before_discount - gross
        } else {
            Decimal::ZERO
        };
        lines.push(OrderLine {
            sku: line.sku.trim().to_owned(),
            name: plain(&line.name),
            quantity: quantity.normalize(),
            vat: line_vat(&field("total_tax"), &line.taxes, &rates, net, tax)?,
            unit_price_gross,
            total_net: net,
            total_vat: tax,
            total_gross: gross,
            discount_gross: discount,
        });
    }
    // Fees (payment surcharges, …) are lines too, so the document's totals
    // match the shop's; `fee:` marks them for the ERP side's mapping.
    for fee in &raw.fee_lines {
        let (net, tax) = (fee.total.0, fee.total_tax.0);
        lines.push(OrderLine {
            sku: format!("fee:{}", cut(&plain(&fee.name), 40)),
            name: plain(&fee.name),
            quantity: Decimal::ONE,
            vat: line_vat("fee_lines.total_tax", &fee.taxes, &rates, net, tax)?,
            unit_price_gross: net + tax,
            total_net: net,
            total_vat: tax,
            total_gross: net + tax,
            discount_gross: Decimal::ZERO,
        });
    }
    let shipping = match raw.shipping_lines.first() {
        None => None,
        Some(first) => {
            let net: Decimal = raw.shipping_lines.iter().map(|s| s.total.0).sum();
            let tax: Decimal = raw.shipping_lines.iter().map(|s| s.total_tax.0).sum();
            Some(Shipping {
                method: first.method_id.trim().to_owned(),
                title: plain(&first.method_title),
                service_sku: None,
                vat: line_vat("shipping_lines.total_tax", &first.taxes, &rates, net, tax)?,
                total_net: net,
                total_vat: tax,
                total_gross: net + tax,
            })
        }
    };
    let billing_raw = raw.billing.unwrap_or_default();
    let billing = address(&billing_raw);
    let shipping_address = raw.shipping.as_ref().map(address).filter(|a| !is_blank(a));
    let email = billing_raw.email.trim();
    let total_gross = raw.total.0;
    let total_vat = raw.total_tax.0;
    let currency = raw.currency.trim().to_uppercase();
    if currency.len() > 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(field_error("currency", "must be an ISO 4217 code"));
    }
    Ok(Order {
        shop: shop.to_owned(),
        number: if raw.number.trim().is_empty() {
            order_id.clone()
        } else {
            cut(raw.number.trim(), 40)
        },
        order_id,
        revision,
        placed_at,
        state: state_of(&status, &options.closed_statuses),
        status,
        paid,
        currency: if currency.is_empty() {
            "PLN".into()
        } else {
            currency
        },
        payment_method: cut(raw.payment_method.trim(), 100),
        payment_form: None,
        buyer: Buyer {
            email: (!email.is_empty()).then(|| email.to_owned()),
            nip: nip(&raw.meta_data, &options.nip_meta_keys),
            billing,
            shipping: shipping_address,
        },
        lines,
        shipping,
        discount_gross: raw.discount_total.0 + raw.discount_tax.0,
        total_net: total_gross - total_vat,
        total_vat,
        total_gross,
        customer_note: (!raw.customer_note.trim().is_empty())
            .then(|| raw.customer_note.trim().to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"{"id":727,"parent_id":0,"status":"processing","currency":"PLN","prices_include_tax":true,
"date_created_gmt":"2026-03-01T09:00:00","date_modified_gmt":"2026-03-01T09:00:05","date_paid_gmt":"2026-03-01T09:00:05",
"discount_total":"23.00","discount_tax":"4.84","shipping_total":"15.00","total":"269.01","total_tax":"47.01",
"customer_id":0,"order_key":"wc_order_x","customer_ip_address":"10.0.0.1",
"billing":{"first_name":"Ala","last_name":"Kowalska","company":"","address_1":"ul. D\u0142uga 1","address_2":"","city":"\u0141\u00f3d\u017a","state":"","postcode":"90-001","country":"PL","email":"ala@example.pl","phone":"600100200"},
"shipping":{"first_name":"","last_name":"","company":"","address_1":"","address_2":"","city":"","state":"","postcode":"","country":"","phone":""},
"payment_method":"bacs","customer_note":"","number":"727",
"meta_data":[{"id":1,"key":"_billing_nip","value":"PL 123-456-32-18"}],
"line_items":[{"id":1,"name":"Kawa","product_id":10,"variation_id":0,"quantity":2,"tax_class":"","subtotal":"200.00","subtotal_tax":"46.00","total":"180.00","total_tax":"41.40","taxes":[{"id":1,"total":"41.40","subtotal":"46.00"}],"sku":"KAWA-1","price":90},
{"id":2,"name":"Herbata","product_id":11,"variation_id":0,"quantity":3,"tax_class":"reduced-rate","subtotal":"30.00","subtotal_tax":"2.40","total":"27.00","total_tax":"2.16","taxes":[{"id":2,"total":"2.16","subtotal":"2.40"}],"sku":"HERB-1","price":9}],
"tax_lines":[{"id":5,"rate_code":"PL-VAT 23%-1","rate_id":1,"label":"VAT","compound":false,"tax_total":"41.40","shipping_tax_total":"3.45","rate_percent":23},
{"id":6,"rate_code":"PL-VAT 8%-1","rate_id":2,"label":"VAT","compound":false,"tax_total":"2.16","shipping_tax_total":"0.00","rate_percent":8}],
"shipping_lines":[{"id":7,"method_title":"Kurier","method_id":"flat_rate","total":"15.00","total_tax":"3.45","taxes":[{"id":1,"total":"3.45","subtotal":""}]}],
"fee_lines":[],"coupon_lines":[]}"#;

    fn options() -> NormaliseOptions {
        NormaliseOptions {
            nip_meta_keys: vec!["_billing_nip".into()],
            ..NormaliseOptions::default()
        }
    }

    #[test]
    fn a_woocommerce_order_becomes_the_contract_order() {
        let order = parse_order("sklep", SAMPLE.as_bytes(), &options()).unwrap();
        assert_eq!(order.key(), "sklep:727");
        assert_eq!(order.status, "processing");
        assert!(order.paid);
        assert_eq!(order.buyer.billing.city, "Łódź");
        assert_eq!(order.buyer.nip.as_deref(), Some("PL1234563218"));
        assert_eq!(order.buyer.shipping, None, "a blank address is no address");
        assert_eq!(order.lines.len(), 2);
        assert_eq!(order.lines[0].vat, VatRate::Percent(Decimal::from(23)));
        assert_eq!(order.lines[1].vat, VatRate::Percent(Decimal::from(8)));
        assert_eq!(order.lines[0].total_gross, "221.40".parse().unwrap());
        assert_eq!(order.lines[0].discount_gross, "24.60".parse().unwrap());
        let shipping = order.shipping.as_ref().unwrap();
        assert_eq!(shipping.total_gross, "18.45".parse().unwrap());
        // Lines + shipping = the shop's total, to the grosz.
        let sum: Decimal =
            order.lines.iter().map(|l| l.total_gross).sum::<Decimal>() + shipping.total_gross;
        assert_eq!(sum, order.total_gross);
        assert_eq!(order.total_net, "222.00".parse().unwrap());
    }

    #[test]
    fn bad_payloads_are_refused_with_a_reason() {
        let cases: Vec<(String, &str)> = vec![
            (
                SAMPLE[..SAMPLE.len() / 2].to_owned(),
                "not a WooCommerce order",
            ),
            (
                SAMPLE.replace("\"quantity\":2", "\"quantity\":1000000000"),
                "quantity",
            ),
            (
                SAMPLE.replace("\"quantity\":2", "\"quantity\":-1"),
                "quantity",
            ),
            (
                SAMPLE.replace("\"total\":\"180.00\"", "\"total\":180.5"),
                "JSON float",
            ),
            (
                SAMPLE.replace("\"date_modified_gmt\":\"2026-03-01T09:00:05\",", ""),
                "date_modified_gmt",
            ),
            (SAMPLE.replace("\"id\":727", "\"id\":-5"), "whole number"),
        ];
        for (body, expected) in cases {
            let err = parse_order("sklep", body.as_bytes(), &options()).unwrap_err();
            assert!(
                err.to_string().contains(expected),
                "{err} should mention {expected}"
            );
        }
        assert_eq!(
            parse_order("sklep", b"{\"id\":\xff}", &options()).unwrap_err(),
            OrderParseError::NotUtf8
        );
    }

    /// An order of `items` product lines and `fees` fee lines.
    fn order_with_lines(items: usize, fees: usize) -> String {
        let item = r#"{"name":"X","sku":"X-1","quantity":1,"total":"1.00","total_tax":"0.23"}"#;
        let fee = r#"{"name":"Pobranie","total":"1.00","total_tax":"0.23"}"#;
        format!(
            r#"{{"id":8,"status":"processing","date_modified_gmt":"2026-01-02T03:04:05","total":"1.23","line_items":[{}],"fee_lines":[{}]}}"#,
            vec![item; items].join(","),
            vec![fee; fees].join(",")
        )
    }

    /// Found by the fuzz (`tests/fuzz`): fee lines became order lines past
    /// `MAX_LINES`, so a signed body with one item and thousands of fees
    /// (small once compressed) reached the ERP as one huge document.
    #[test]
    fn fee_lines_count_towards_the_line_bound() {
        let at_bound = order_with_lines(MAX_LINES - 1, 1);
        let order = parse_order("sklep", at_bound.as_bytes(), &options()).unwrap();
        assert_eq!(order.lines.len(), MAX_LINES);
        for (items, fees) in [(1, MAX_LINES), (MAX_LINES, 1), (MAX_LINES + 1, 0)] {
            let body = order_with_lines(items, fees);
            let err = parse_order("sklep", body.as_bytes(), &options()).unwrap_err();
            assert!(
                err.to_string().contains("more than 1000 lines"),
                "{items} items + {fees} fees: {err}"
            );
        }
    }

    /// Found by the fuzz (`tests/fuzz`): a net amount or a quantity at the
    /// smallest decimal (1e-28) made a division overflow, and rust_decimal's
    /// `/` panics on overflow.
    #[test]
    fn amounts_at_the_decimal_limits_are_read_or_refused_without_a_panic() {
        let tiny_net = SAMPLE.replace(
            r#""total":"180.00","total_tax":"41.40","taxes":[{"id":1,"#,
            r#""total":"0.0000000000000000000000000001","total_tax":"41.40","taxes":[{"id":9,"#,
        );
        assert_ne!(tiny_net, SAMPLE);
        // A tax that large against its net is no rate at all: refused.
        let err = parse_order("sklep", tiny_net.as_bytes(), &options()).unwrap_err();
        assert!(err.to_string().contains("not a Polish VAT rate"), "{err}");
        for quantity in ["1e-28", "\"0.0000000000000000000000000001\""] {
            let tiny_quantity =
                SAMPLE.replace("\"quantity\":2", &format!("\"quantity\":{quantity}"));
            assert_ne!(tiny_quantity, SAMPLE);
            let err = parse_order("sklep", tiny_quantity.as_bytes(), &options()).unwrap_err();
            assert!(err.to_string().contains("unit price"), "{quantity}: {err}");
        }
    }

    /// WooCommerce's own documentation example (order 727) charges a US
    /// state tax of 7.5 %: snapped to 8 % it would book another tax than
    /// the shop charged.
    #[test]
    fn a_tax_no_polish_rate_gives_is_refused_and_rounding_is_not() {
        // No rate_percent in the tax lines: the rate comes from the amounts.
        let inferred = |net: &str, tax: &str| {
            let body = SAMPLE
                .replace(r#""rate_percent":23"#, r#""x_rate_percent":23"#)
                .replace(
                    r#""total":"180.00","total_tax":"41.40""#,
                    &format!(r#""total":"{net}","total_tax":"{tax}""#),
                );
            parse_order("sklep", body.as_bytes(), &options())
        };
        let err = inferred("6.00", "0.45").unwrap_err();
        assert!(
            err.to_string()
                .contains("line_items[0].total_tax`: a tax of 0.45 on 6.00 is 7.50 %"),
            "{err}"
        );
        // 8.12 net with 1.87 tax (9.99 gross taxed backwards at 23 %) is 23 %.
        let order = inferred("8.12", "1.87").unwrap();
        assert_eq!(order.lines[0].vat, VatRate::Percent(Decimal::from(23)));
        // A grosz either way is rounding; two are not.
        assert!(inferred("10.00", "2.31").is_ok());
        assert!(inferred("10.00", "2.32").is_err());
    }

    #[test]
    fn names_lose_the_html_entities_woocommerce_gives_them() {
        let body = SAMPLE.replacen(
            r#""name":"#,
            r#""name":"Ship Your Idea &ndash; Black &amp; Decker &#8222;PL&#8221;","x_name":"#,
            1,
        );
        let order = parse_order("sklep", body.as_bytes(), &options()).unwrap();
        assert_eq!(order.lines[0].name, "Ship Your Idea – Black & Decker „PL”");
    }

    fn parsed(body: &str) -> Result<Order, OrderParseError> {
        parse_order("sklep", body.as_bytes(), &options())
    }

    #[test]
    fn a_ping_is_webhook_id_and_at_most_twenty_digits_and_nothing_else() {
        assert_eq!(ping_webhook_id(b" webhook_id=7 "), Some(7));
        assert_eq!(ping_webhook_id(b"webhook_id=00000000000000000007"), Some(7));
        for body in [
            "webhook_id=",
            "webhook_id=000000000000000000007",
            "webhook_id=12a",
            // u64's parser takes a sign; WooCommerce never sends one.
            "webhook_id=+7",
            "webhook=7",
        ] {
            assert_eq!(ping_webhook_id(body.as_bytes()), None, "{body}");
        }
    }

    #[test]
    fn ids_are_positive_whole_numbers_of_at_most_twenty_digits() {
        let with_id = |id: &str| SAMPLE.replacen(r#""id":727"#, &format!(r#""id":{id}"#), 1);
        assert_eq!(parsed(&with_id(r#""728""#)).unwrap().order_id, "728");
        assert_eq!(
            parsed(&with_id("18446744073709551615")).unwrap().order_id,
            "18446744073709551615"
        );
        assert_eq!(
            parsed(&with_id(r#""00000000000000000010""#))
                .unwrap()
                .order_id,
            "00000000000000000010"
        );
        for id in [r#""000000000000000000010""#, r#""0""#, r#""""#, r#""7a""#] {
            let err = parsed(&with_id(id)).unwrap_err();
            assert!(
                err.to_string().contains("positive whole number"),
                "{id}: {err}"
            );
        }
        // Not a whole number at all: refused as the JSON it is.
        for id in ["1.5", "-5", "true"] {
            let err = parsed(&with_id(id)).unwrap_err();
            assert!(matches!(err, OrderParseError::Json { .. }), "{id}: {err}");
        }
    }

    #[test]
    fn statuses_are_slugs_of_at_most_forty_characters() {
        let with_status = |status: &str| {
            SAMPLE.replacen(
                r#""status":"processing""#,
                &format!(r#""status":"{status}""#),
                1,
            )
        };
        let forty = "a".repeat(40);
        for status in ["on-hold", "wc_awaiting", "Processing2", forty.as_str()] {
            assert_eq!(parsed(&with_status(status)).unwrap().status, status);
        }
        let forty_one = "a".repeat(41);
        for status in ["", "on hold", "on.hold", forty_one.as_str()] {
            let err = parsed(&with_status(status)).unwrap_err();
            assert!(err.to_string().contains("status slug"), "{status}: {err}");
        }
    }

    #[test]
    fn paid_is_a_payment_date_or_a_status_that_means_paid() {
        let unpaid = SAMPLE.replace(
            r#""date_paid_gmt":"2026-03-01T09:00:05""#,
            r#""date_paid_gmt":null"#,
        );
        assert!(
            parsed(&unpaid).unwrap().paid,
            "processing without a payment date"
        );
        let on_hold = unpaid.replacen(r#""status":"processing""#, r#""status":"on-hold""#, 1);
        assert!(!parsed(&on_hold).unwrap().paid);
        let paid_on_hold = on_hold.replace(
            r#""date_paid_gmt":null"#,
            r#""date_paid_gmt":"2026-03-01T09:00:05""#,
        );
        assert!(parsed(&paid_on_hold).unwrap().paid);
    }

    #[test]
    fn money_is_a_decimal_string_or_a_whole_number_up_to_ten_billion() {
        let with_total =
            |total: &str| SAMPLE.replacen(r#""total":"269.01""#, &format!(r#""total":{total}"#), 1);
        assert_eq!(
            parsed(&with_total("269")).unwrap().total_gross,
            Decimal::from(269)
        );
        assert_eq!(
            parsed(&with_total("-5")).unwrap().total_gross,
            Decimal::from(-5)
        );
        assert_eq!(
            parsed(&with_total(r#""10000000000""#)).unwrap().total_gross,
            Decimal::from(10_000_000_000_i64)
        );
        assert_eq!(
            parsed(&with_total("null")).unwrap().total_gross,
            Decimal::ZERO
        );
        let err = parsed(&with_total(r#""10000000000.01""#)).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        let err = parsed(&with_total("true")).unwrap_err();
        assert!(
            err.to_string().contains("a decimal amount as a string"),
            "{err}"
        );
    }

    #[test]
    fn text_fields_take_null_numbers_and_booleans() {
        let sku =
            |value: &str| SAMPLE.replacen(r#""sku":"KAWA-1""#, &format!(r#""sku":{value}"#), 1);
        assert_eq!(parsed(&sku("12345")).unwrap().lines[0].sku, "12345");
        assert_eq!(parsed(&sku("true")).unwrap().lines[0].sku, "true");
        assert_eq!(parsed(&sku("null")).unwrap().lines[0].sku, "");
        // A missing quantity says so, not that null is not a number.
        let body = SAMPLE.replacen(r#""quantity":2"#, r#""quantity":null"#, 1);
        let err = parsed(&body).unwrap_err();
        assert!(err.to_string().contains("quantity`: is missing"), "{err}");
    }

    #[test]
    fn a_line_keeps_its_unit_price_rounded_to_the_grosz() {
        // 180.00 + 41.40 for 2: 110.70; 27.00 + 2.16 for 3: 9.72.
        let order = parsed(SAMPLE).unwrap();
        assert_eq!(order.lines[0].unit_price_gross, Decimal::new(11070, 2));
        assert_eq!(order.lines[1].unit_price_gross, Decimal::new(972, 2));
        // 10.01 + 2.30 for 3 is 4.1033…: 4.10.
        let body = SAMPLE.replacen(
            r#""quantity":2,"tax_class":"","subtotal":"200.00","subtotal_tax":"46.00","total":"180.00","total_tax":"41.40""#,
            r#""quantity":3,"tax_class":"","subtotal":"10.01","subtotal_tax":"2.30","total":"10.01","total_tax":"2.30""#,
            1,
        );
        assert_ne!(body, SAMPLE);
        assert_eq!(
            parsed(&body).unwrap().lines[0].unit_price_gross,
            Decimal::new(410, 2)
        );
    }

    #[test]
    fn a_fee_is_a_line_at_its_gross() {
        let body = SAMPLE.replace(
            r#""fee_lines":[]"#,
            r#""fee_lines":[{"id":9,"name":"Pobranie","total":"5.00","total_tax":"1.15","taxes":[{"id":1,"total":"1.15"}]}]"#,
        );
        let order = parsed(&body).unwrap();
        let fee = order.lines.last().unwrap();
        assert_eq!(fee.sku, "fee:Pobranie");
        assert_eq!(fee.unit_price_gross, Decimal::new(615, 2));
        assert_eq!(fee.total_gross, Decimal::new(615, 2));
        assert_eq!(fee.vat, VatRate::Percent(Decimal::from(23)));
        // Delivery is billed at its gross too: 15.00 + 3.45.
        let shipping = order.shipping.expect("a shipping line");
        assert_eq!(shipping.total_gross, Decimal::new(1845, 2));
        assert_eq!(shipping.title, "Kurier");
    }

    #[test]
    fn the_shops_recorded_rate_wins_over_the_amounts() {
        // 23.05 on 100.00 is no rate by the amounts, but the order's tax
        // line records 23 % for it: WooCommerce's own figure counts.
        let body = SAMPLE.replacen(
            r#""total":"180.00","total_tax":"41.40""#,
            r#""total":"100.00","total_tax":"23.05""#,
            1,
        );
        assert_eq!(
            parsed(&body).unwrap().lines[0].vat,
            VatRate::Percent(Decimal::from(23))
        );
    }

    #[test]
    fn any_one_field_makes_a_shipping_address_and_none_is_none() {
        let shipping = |field: &str| {
            SAMPLE.replace(
                r#""shipping":{"first_name":"","last_name":"","company":"","address_1":"","address_2":"","city":"","state":"","postcode":"","country":"","phone":""}"#,
                &format!(r#""shipping":{{"{field}":"X","country":"PL"}}"#),
            )
        };
        for field in ["first_name", "company", "address_1", "city", "postcode"] {
            let order = parsed(&shipping(field)).unwrap();
            assert!(order.buyer.shipping.is_some(), "{field} alone");
        }
        // A country alone is WooCommerce's default, not an address.
        assert!(parsed(&shipping("state")).unwrap().buyer.shipping.is_none());
        assert!(parsed(SAMPLE).unwrap().buyer.shipping.is_none());
    }

    #[test]
    fn a_nip_with_nothing_left_after_cleaning_tries_the_next_key() {
        let body = SAMPLE.replace(
            r#""meta_data":[{"id":1,"key":"_billing_nip","value":"PL 123-456-32-18"}]"#,
            r#""meta_data":[{"id":1,"key":"_billing_nip","value":" - "},{"id":2,"key":"billing_nip","value":"1234563218"}]"#,
        );
        let options = NormaliseOptions {
            nip_meta_keys: vec!["_billing_nip".into(), "billing_nip".into()],
            ..NormaliseOptions::default()
        };
        let order = parse_order("sklep", body.as_bytes(), &options).unwrap();
        assert_eq!(order.buyer.nip.as_deref(), Some("1234563218"));
    }

    #[test]
    fn a_missing_address_is_kept_empty_for_the_erp_side_to_decide() {
        let body = SAMPLE.replace("\"billing\":{", "\"x_billing\":{");
        let order = parse_order("sklep", body.as_bytes(), &options()).unwrap();
        assert_eq!(order.buyer.billing, Address::default());
        assert_eq!(order.buyer.email, None);
    }

    #[test]
    fn signatures_verify_only_with_the_right_secret_and_body() {
        let signature = sign(b"s3cret", SAMPLE.as_bytes());
        assert!(verify_signature(b"s3cret", SAMPLE.as_bytes(), &signature));
        assert!(!verify_signature(b"other", SAMPLE.as_bytes(), &signature));
        assert!(!verify_signature(b"s3cret", b"{}", &signature));
        assert!(!verify_signature(
            b"s3cret",
            SAMPLE.as_bytes(),
            "not base64!"
        ));
        assert!(!verify_signature(b"s3cret", SAMPLE.as_bytes(), ""));
    }

    /// A known answer computed outside this code, as WooCommerce computes
    /// it (`base64_encode(hash_hmac('sha256', $payload, $secret, true))`):
    ///
    /// ```text
    /// $ printf '%s' '{"id":727,"status":"processing","total":"269.01"}' \
    ///     | openssl dgst -sha256 -hmac 'whsec_3f9Kx' -binary | base64
    /// tI+pGEQnxcEAal3OpTLBL5ImXGqoyCiA08WMN6myihM=
    /// $ python3 -c "import hmac,hashlib,base64; print(base64.b64encode(hmac.new(b'whsec_3f9Kx', b'{\"id\":727,\"status\":\"processing\",\"total\":\"269.01\"}', hashlib.sha256).digest()).decode())"
    /// tI+pGEQnxcEAal3OpTLBL5ImXGqoyCiA08WMN6myihM=
    /// ```
    #[test]
    fn the_signature_matches_a_known_answer_computed_elsewhere() {
        let body = br#"{"id":727,"status":"processing","total":"269.01"}"#;
        let known = "tI+pGEQnxcEAal3OpTLBL5ImXGqoyCiA08WMN6myihM=";
        assert_eq!(sign(b"whsec_3f9Kx", body), known);
        assert!(verify_signature(b"whsec_3f9Kx", body, known));
        // A change of one byte of the body, the secret or the signature fails.
        assert!(!verify_signature(b"whsec_3f9Kx", &body[1..], known));
        assert!(!verify_signature(b"whsec_3f9KX", body, known));
        assert!(!verify_signature(
            b"whsec_3f9Kx",
            body,
            "uI+pGEQnxcEAal3OpTLBL5ImXGqoyCiA08WMN6myihM="
        ));
        // The empty body (python3, same secret, b'').
        assert_eq!(
            sign(b"whsec_3f9Kx", b""),
            "96P9WQp19Mn2kTjykC75uYQvnDUTJZ+JhWWuJJp9iOQ="
        );
    }

    #[test]
    fn pings_are_recognised() {
        assert_eq!(ping_webhook_id(b"webhook_id=12"), Some(12));
        assert_eq!(ping_webhook_id(b"webhook_id="), None);
        assert_eq!(ping_webhook_id(b"webhook_id=1&x=2"), None);
        assert_eq!(ping_webhook_id(SAMPLE.as_bytes()), None);
    }
}
