//! Shoper orders on the wire (docs/platforms/shoper.md §1, §6, §7): the
//! webhook signature, the shop's naive timestamps, and an order (a `GET
//! /orders` row with its `/order-products` rows as `products[]`, the shape
//! a webhook delivers) normalised into [`contract::Order`].
//!
//! Pure functions, no I/O: the connector ([`super::shoper`]), the `webhook`
//! function and the tests call them directly.
//!
//! - Signature: `X-Webhook-SHA1` is the lowercase hex SHA-1 (not an HMAC)
//!   of `<X-Webhook-Id>:<secret>:<raw body>` (LEARN, BUNDLE, and public
//!   verifiers in the doc's §7); compared in constant time. `X-Webhook-Id`
//!   is the webhook's configuration id, not a delivery id: Shoper sends
//!   none, so duplicates are expected (the stored revision decides).
//! - Topics: `order.create`, `order.edit`, `order.paid` and `order.status`
//!   carry the order; anything else (`order.delete`, products, parcels) is
//!   acknowledged and ignored. A delivery without `X-Webhook-Name` is read
//!   as `order.edit`.
//! - Numbers and ids come as strings on GET (`"stock":"77"`), as numbers in
//!   some bodies; both are read, money through its decimal text (never a
//!   float computation). Flags are `"0"`/`"1"` or real booleans
//!   (`is_paid`, `is_cash_on_delivery`).
//! - Timestamps are naive `YYYY-MM-DD HH:MM:SS` in the shop's zone
//!   (`application-config` `locale_timezone`, a shop setting here): read
//!   with [`Zone`] (the tz database, `chrono-tz`). A wall-clock time that
//!   happens twice (autumn) is read as the first; one that does not exist
//!   (spring) as the hour after.
//! - Ids: the order id is also the number the buyer sees. `status` is the
//!   shop's `status_id` as text (so a trigger `status:7` names it); the
//!   neutral state comes from the row's `status.type` (1 new, 2 in
//!   progress, 3 closed/shipped, 4 not completed): 4 cancelled, 3
//!   completed, 1 and 2 paid when `is_paid` or cash on delivery, else
//!   awaiting payment. An order without `status.type` (the documented
//!   example has none) is [`OrderState::Other`]: no trigger fires on a
//!   guess.
//! - Revision: Shoper rows have no modification time. The revision is the
//!   later of `date` and `status_date` (the last status change), plus one
//!   millisecond once the order is fully paid: a payment recorded without a
//!   status change (`order.paid`) would otherwise carry the revision of
//!   the delivery before it and be dropped as a repeat. Edits that change
//!   neither status nor payment keep their revision.
//! - Lines: `code` is the SKU (a line without one cannot be booked and
//!   refuses the order); the name gets the variant's `option`. `price` is
//!   the gross unit price before the line's `discount_perc` (as the
//!   stand-in reads it; a discounted line is not in the doc's live
//!   transcripts). VAT per line: `tax` names the rate (`23%`, `zw.`,
//!   `np.`), `tax_value` is the rate in percent; net and VAT are split out
//!   of the gross line total, rounded to the grosz half away from zero.
//! - Delivery: `shipping_cost` (gross) at `shipping_tax_value` /
//!   `shipping_tax_name`; the method is `shipping_id`, its title the
//!   webhook body's `shipping.name` when present.
//! - Totals: `sum` must be the lines and the delivery to the grosz (an
//!   order-level discount would break that and the order is refused with
//!   both numbers, for a person to look at).
//! - Currency: `currency_id` through the shop's table (settings; `1` is
//!   PLN by default); an id without a code refuses the order.
//! - Buyer: e-mail; billing and delivery addresses (a pickup point's code
//!   joins the delivery company); the NIP from the billing address's
//!   `tax_identification_number`, separators and a `PL` prefix dropped (a
//!   foreign VAT number is kept with its country prefix).
//! - Data minimisation: no IP address, PESEL, private notes or user id.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use contract::{Address, Buyer, Order, OrderLine, OrderState, Shipping, VatRate};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::{Delivery, OrderParseError, RawOrder, Rejection, Secret, WebhookVerifier};

/// The most lines an order may have.
pub const MAX_LINES: usize = 1000;
/// The largest quantity on one line.
pub const MAX_QUANTITY: u32 = 100_000;
/// The largest absolute amount of any money field (PLN 10 billion).
const MAX_AMOUNT: i64 = 10_000_000_000;
/// The longest text field kept; longer text is cut here.
const MAX_TEXT_CHARS: usize = 2000;
/// Shoper's naive timestamp format.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Webhook-SHA1";
/// The webhook configuration's id, signed with the body.
pub const ID_HEADER: &str = "X-Webhook-Id";
/// The event (`order.create`, ...).
pub const NAME_HEADER: &str = "X-Webhook-Name";
/// The events whose body is an order the ERP needs.
pub const ORDER_EVENTS: [&str; 4] = ["order.create", "order.edit", "order.paid", "order.status"];

fn field_error(field: impl Into<String>, problem: impl Into<String>) -> OrderParseError {
    OrderParseError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

fn cut(s: &str, chars: usize) -> String {
    s.trim().chars().take(chars).collect()
}

// ---------------------------------------------------------------- time zones

/// A shop's time zone (`locale_timezone`, an IANA name), from the tz
/// database (`chrono-tz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(chrono_tz::Tz);

impl Zone {
    pub const UTC: Zone = Zone(chrono_tz::Tz::UTC);
    /// Polish shops' zone.
    pub const WARSAW: Zone = Zone(chrono_tz::Tz::Europe__Warsaw);

    /// The zone of an IANA name.
    pub fn named(name: &str) -> Option<Zone> {
        name.trim().parse::<chrono_tz::Tz>().ok().map(Zone)
    }

    /// The shop's wall-clock time of an instant.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.0).naive_local()
    }

    /// The instant of a shop wall-clock time: in the hour the clocks go
    /// back, the first of the two; in the hour they skip, an hour later
    /// (the time the shop's clock showed then).
    pub fn utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        use chrono::TimeZone;
        match self.0.from_local_datetime(&local) {
            chrono::LocalResult::Single(at) | chrono::LocalResult::Ambiguous(at, _) => {
                at.with_timezone(&Utc)
            }
            chrono::LocalResult::None => {
                let later = local + Duration::hours(1);
                self.0
                    .from_local_datetime(&later)
                    .earliest()
                    .map_or_else(|| later.and_utc(), |at| at.with_timezone(&Utc))
            }
        }
    }

    /// An instant as Shoper writes it (`2026-09-27 13:12:16`).
    pub fn format(&self, at: DateTime<Utc>) -> String {
        self.local(at).format(TIME_FORMAT).to_string()
    }

    /// A Shoper timestamp as an instant; `None` when it is not one
    /// (empty, `0000-00-00 00:00:00`, another format).
    pub fn parse(&self, text: &str) -> Option<DateTime<Utc>> {
        NaiveDateTime::parse_from_str(text.trim(), TIME_FORMAT)
            .ok()
            .map(|local| self.utc(local))
    }
}

// ---------------------------------------------------------------- reading values

/// Text of a string or number; anything else is empty.
fn text_of(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => cut(s, MAX_TEXT_CHARS),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn optional(value: Option<&Value>) -> Option<String> {
    Some(text_of(value)).filter(|s| !s.is_empty())
}

/// A whole number sent as a string or a number.
pub fn id_of(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        }
        _ => None,
    }
}

/// A flag: a JSON boolean, `"1"`/`"0"`, `1`/`0`, `"true"`/`"false"`.
pub fn flag_of(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_u64().map(|n| n != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" => Some(true),
            "0" | "false" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A decimal sent as a string or a JSON number (read through its text,
/// never computed as a float); `None` when absent, null or empty.
fn decimal_of(field: &str, value: Option<&Value>) -> Result<Option<Decimal>, OrderParseError> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(field_error(field, "is not a number")),
    };
    if text.is_empty() {
        return Ok(None);
    }
    let value = Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| field_error(field, format!("`{}` is not a number", cut(&text, 40))))?;
    if value.abs() > Decimal::from(MAX_AMOUNT) {
        return Err(field_error(field, format!("{value} is out of range")));
    }
    Ok(Some(value))
}

fn required_decimal(field: &str, value: Option<&Value>) -> Result<Decimal, OrderParseError> {
    decimal_of(field, value)?.ok_or_else(|| field_error(field, "is missing"))
}

fn round2(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn object(value: Option<&Value>) -> Option<&Map<String, Value>> {
    value.and_then(Value::as_object)
}

// ---------------------------------------------------------------- VAT, NIP, addresses

/// The VAT rate of a line or the delivery: the tax name for the kinds
/// without a percentage (`zw.`, `np.`, `oo`), else the rate in percent
/// (`tax_value`, or the name `23%` when the value is absent).
fn vat_rate(field: &str, name: &str, value: Option<Decimal>) -> Result<VatRate, OrderParseError> {
    let key = name.trim().trim_end_matches('.').to_ascii_lowercase();
    match key.as_str() {
        "zw" => return Ok(VatRate::Exempt),
        "np" => return Ok(VatRate::NotSubject),
        "oo" => return Ok(VatRate::ReverseCharge),
        _ => {}
    }
    let percent = match value {
        Some(value) => value,
        None => Decimal::from_str(name.trim().trim_end_matches('%').trim()).map_err(|_| {
            field_error(
                field,
                format!("no VAT rate (tax `{}`, no value)", cut(name, 20)),
            )
        })?,
    };
    if percent.is_sign_negative() || percent > Decimal::ONE_HUNDRED {
        return Err(field_error(
            field,
            format!("{percent} is not a VAT rate in percent"),
        ));
    }
    Ok(VatRate::Percent(percent.normalize()))
}

/// Net and VAT of a gross amount at `rate`, the VAT rounded to the grosz.
fn split_gross(gross: Decimal, rate: &VatRate) -> (Decimal, Decimal) {
    let percent = rate.percent();
    let net = gross
        .checked_mul(Decimal::ONE_HUNDRED)
        .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED + percent))
        .map(round2)
        .unwrap_or(gross);
    (net, gross - net)
}

/// A buyer's tax id: a Polish NIP as its ten digits (separators and a
/// `PL` prefix dropped), a foreign VAT number as letters and digits with
/// its country prefix; `None` for anything else.
pub fn nip(raw: &str) -> Option<String> {
    let compact: String = raw
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_uppercase();
    let digits = compact.strip_prefix("PL").unwrap_or(&compact);
    if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(digits.to_owned());
    }
    if compact.starts_with("PL") {
        return None;
    }
    // An EU VAT number: a country code and 2 to 13 characters, mostly digits.
    let rest: String = compact.chars().skip(2).collect();
    let prefixed = compact.chars().take(2).all(|c| c.is_ascii_alphabetic());
    let digits = rest.chars().filter(char::is_ascii_digit).count();
    (prefixed && (2..=13).contains(&rest.len()) && digits * 2 >= rest.len()).then_some(compact)
}

fn address(a: &Map<String, Value>) -> Address {
    let join = |first: &str, second: &str| {
        format!("{} {}", text_of(a.get(first)), text_of(a.get(second)))
            .trim()
            .to_owned()
    };
    let country = text_of(a.get("country_code")).to_ascii_uppercase();
    Address {
        name: join("firstname", "lastname"),
        company: optional(a.get("company")),
        street: join("street1", "street2"),
        city: text_of(a.get("city")),
        postcode: text_of(a.get("postcode")),
        country: if country.len() == 2 && country.chars().all(|c| c.is_ascii_alphabetic()) {
            country
        } else {
            String::new()
        },
        phone: optional(a.get("phone")),
    }
}

fn is_blank(a: &Address) -> bool {
    a.name.is_empty()
        && a.company.is_none()
        && a.street.is_empty()
        && a.city.is_empty()
        && a.postcode.is_empty()
}

// ---------------------------------------------------------------- normalisation

/// How a shop's orders are read, from its settings.
#[derive(Debug, Clone)]
pub struct NormaliseOptions {
    /// The zone of the shop's timestamps.
    pub zone: Zone,
    /// `currency_id` → ISO 4217 code.
    pub currencies: BTreeMap<String, String>,
}

impl Default for NormaliseOptions {
    fn default() -> Self {
        NormaliseOptions {
            zone: Zone::WARSAW,
            currencies: BTreeMap::from([("1".to_owned(), "PLN".to_owned())]),
        }
    }
}

/// The neutral state of a Shoper status type and the order's payment.
pub fn state_of(status_type: Option<u64>, paid: bool, cash_on_delivery: bool) -> OrderState {
    match status_type {
        Some(4) => OrderState::Cancelled,
        Some(3) => OrderState::Completed,
        Some(1 | 2) if paid || cash_on_delivery => OrderState::Paid,
        Some(1 | 2) => OrderState::AwaitingPayment,
        _ => OrderState::Other,
    }
}

/// Parses a webhook body or a listed order (with `products[]`) and
/// normalises it.
pub fn parse_order(
    shop: &str,
    body: &[u8],
    options: &NormaliseOptions,
) -> Result<Order, OrderParseError> {
    let text = std::str::from_utf8(body).map_err(|_| OrderParseError::NotUtf8)?;
    let value: Value = serde_json::from_str(text).map_err(|e| OrderParseError::Json {
        platform: "Shoper",
        problem: e.to_string(),
    })?;
    let Value::Object(order) = value else {
        return Err(OrderParseError::Json {
            platform: "Shoper",
            problem: "the body is not a JSON object".into(),
        });
    };
    normalise(shop, &order, options)
}

/// The `order_id` of a body, for logs ("-" when it has none).
pub fn order_id_of(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| id_of(v.get("order_id")))
        .map_or_else(|| "-".to_owned(), |id| id.to_string())
}

fn line(i: usize, raw: &Value, currency_lines: &mut Vec<OrderLine>) -> Result<(), OrderParseError> {
    let field = |name: &str| format!("products[{i}].{name}");
    let Some(l) = raw.as_object() else {
        return Err(field_error(format!("products[{i}]"), "is not an object"));
    };
    let sku = text_of(l.get("code"));
    if sku.is_empty() {
        return Err(field_error(
            field("code"),
            format!(
                "line `{}` has no code: no SKU to book it by",
                cut(&text_of(l.get("name")), 60)
            ),
        ));
    }
    let quantity = required_decimal(&field("quantity"), l.get("quantity"))?;
    if quantity <= Decimal::ZERO || quantity > Decimal::from(MAX_QUANTITY) {
        return Err(field_error(
            field("quantity"),
            format!("{quantity} is outside 1..={MAX_QUANTITY}"),
        ));
    }
    let price = required_decimal(&field("price"), l.get("price"))?;
    if price.is_sign_negative() {
        return Err(field_error(field("price"), "a price cannot be negative"));
    }
    let discount =
        decimal_of(&field("discount_perc"), l.get("discount_perc"))?.unwrap_or(Decimal::ZERO);
    if discount.is_sign_negative() || discount > Decimal::ONE_HUNDRED {
        return Err(field_error(
            field("discount_perc"),
            format!("{discount} is not a percentage"),
        ));
    }
    let out_of_range = || field_error(field("price"), "the line total is out of range");
    let before = price.checked_mul(quantity).ok_or_else(out_of_range)?;
    let total_gross = before
        .checked_mul(Decimal::ONE_HUNDRED - discount)
        .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
        .map(round2)
        .ok_or_else(out_of_range)?;
    let vat = vat_rate(
        &field("tax_value"),
        &text_of(l.get("tax")),
        decimal_of(&field("tax_value"), l.get("tax_value"))?,
    )?;
    let (total_net, total_vat) = split_gross(total_gross, &vat);
    let name = text_of(l.get("name"));
    let name = match optional(l.get("option")) {
        Some(option) => format!("{name} ({option})"),
        None => name,
    };
    currency_lines.push(OrderLine {
        sku: cut(&sku, 100),
        name,
        quantity: quantity.normalize(),
        vat,
        unit_price_gross: total_gross
            .checked_div(quantity)
            .map(round2)
            .ok_or_else(out_of_range)?,
        total_net,
        total_vat,
        total_gross,
        discount_gross: (round2(before) - total_gross).max(Decimal::ZERO),
    });
    Ok(())
}

fn normalise(
    shop: &str,
    order: &Map<String, Value>,
    options: &NormaliseOptions,
) -> Result<Order, OrderParseError> {
    let order_id = id_of(order.get("order_id"))
        .filter(|id| *id > 0)
        .ok_or_else(|| field_error("order_id", "must be a positive whole number"))?
        .to_string();
    let zone = options.zone;
    let placed_at = zone
        .parse(&text_of(order.get("date")))
        .ok_or_else(|| field_error("date", "must be a `YYYY-MM-DD HH:MM:SS` time"))?;
    let status_date = zone.parse(&text_of(order.get("status_date")));
    let status_id = id_of(order.get("status_id"))
        .ok_or_else(|| field_error("status_id", "must be a status id"))?;
    let status_type = id_of(object(order.get("status")).and_then(|s| s.get("type")));

    let currency_id = text_of(order.get("currency_id"));
    let currency = options
        .currencies
        .get(&currency_id)
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| c.len() == 3 && c.chars().all(|x| x.is_ascii_alphabetic()))
        .ok_or_else(|| {
            field_error(
                "currency_id",
                format!(
                    "currency `{}` has no ISO code in the shop's settings (currencies)",
                    cut(&currency_id, 20)
                ),
            )
        })?;

    let products = order
        .get("products")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if products.is_empty() {
        return Err(field_error("products", "an order needs at least one line"));
    }
    if products.len() > MAX_LINES {
        return Err(field_error(
            "products",
            format!("more than {MAX_LINES} lines"),
        ));
    }
    let mut lines = Vec::with_capacity(products.len());
    for (i, raw) in products.iter().enumerate() {
        line(i, raw, &mut lines)?;
    }

    let shipping_cost =
        decimal_of("shipping_cost", order.get("shipping_cost"))?.unwrap_or(Decimal::ZERO);
    if shipping_cost.is_sign_negative() {
        return Err(field_error("shipping_cost", "cannot be negative"));
    }
    let shipping_cost = round2(shipping_cost);
    let shipping_id = text_of(order.get("shipping_id"));
    let shipping = if shipping_cost.is_zero() && matches!(shipping_id.as_str(), "" | "0") {
        None
    } else {
        let tax_name = text_of(order.get("shipping_tax_name"));
        let tax_value = decimal_of("shipping_tax_value", order.get("shipping_tax_value"))?;
        let vat = if tax_name.is_empty() && tax_value.is_none() && shipping_cost.is_zero() {
            // Free delivery names no rate; the rate of nothing is moot.
            VatRate::Percent(Decimal::from(23))
        } else {
            vat_rate("shipping_tax_value", &tax_name, tax_value)?
        };
        let (total_net, total_vat) = split_gross(shipping_cost, &vat);
        Some(Shipping {
            method: cut(&shipping_id, 100),
            title: text_of(object(order.get("shipping")).and_then(|s| s.get("name"))),
            service_sku: None,
            vat,
            total_net,
            total_vat,
            total_gross: shipping_cost,
        })
    };

    let sum = round2(required_decimal("sum", order.get("sum"))?);
    let parts: Decimal = lines.iter().map(|l| l.total_gross).sum::<Decimal>() + shipping_cost;
    if parts != sum {
        return Err(field_error(
            "sum",
            format!("{sum} is not the lines and the delivery ({parts})"),
        ));
    }

    let paid_amount = decimal_of("paid", order.get("paid"))?.unwrap_or(Decimal::ZERO);
    let paid = flag_of(order.get("is_paid")).unwrap_or(sum > Decimal::ZERO && paid_amount >= sum);
    let cash_on_delivery = flag_of(order.get("is_cash_on_delivery")).unwrap_or(false);

    let changed = status_date.map_or(placed_at, |at| at.max(placed_at));
    let revision = if paid {
        changed + Duration::milliseconds(1)
    } else {
        changed
    };

    let billing = object(order.get("billing_address"))
        .map(address)
        .unwrap_or_default();
    let buyer_nip = object(order.get("billing_address"))
        .map(|a| text_of(a.get("tax_identification_number")))
        .and_then(|raw| nip(&raw));
    let pickup_point = text_of(order.get("pickup_point"));
    let shipping_address = object(order.get("delivery_address"))
        .map(address)
        .filter(|a| !is_blank(a))
        .map(|mut a| {
            if !pickup_point.is_empty() {
                a.company = Some(match a.company.take() {
                    Some(company) => format!("{company}, {pickup_point}"),
                    None => pickup_point.clone(),
                });
            }
            a
        });
    let email = optional(order.get("email")).or_else(|| optional(order.get("delivery_email")));
    let total_gross = sum;
    let total_vat: Decimal = lines.iter().map(|l| l.total_vat).sum::<Decimal>()
        + shipping.as_ref().map_or(Decimal::ZERO, |s| s.total_vat);
    let discount_gross = lines.iter().map(|l| l.discount_gross).sum();
    Ok(Order {
        shop: shop.to_owned(),
        number: order_id.clone(),
        order_id,
        revision,
        placed_at,
        state: state_of(status_type, paid, cash_on_delivery),
        status: status_id.to_string(),
        paid,
        currency,
        payment_method: cut(&text_of(order.get("payment_id")), 100),
        payment_form: None,
        buyer: Buyer {
            email,
            nip: buyer_nip,
            billing,
            shipping: shipping_address,
        },
        lines,
        shipping,
        discount_gross,
        total_net: total_gross - total_vat,
        total_vat,
        total_gross,
        customer_note: optional(order.get("notes")),
    })
}

// ---------------------------------------------------------------- webhooks

/// The `X-Webhook-SHA1` Shoper sends for `body`: lowercase hex
/// SHA-1 of `webhook_id:secret:body`.
pub fn sign(webhook_id: &str, secret: &str, body: &[u8]) -> String {
    let mut hash = Sha1::new();
    hash.update(webhook_id.as_bytes());
    hash.update(b":");
    hash.update(secret.as_bytes());
    hash.update(b":");
    hash.update(body);
    hex::encode(hash.finalize())
}

/// Whether `signature` (the header's hex text) signs `body`, in constant time.
pub fn verify_signature(webhook_id: &str, secret: &str, body: &[u8], signature: &str) -> bool {
    let expected = sign(webhook_id, secret, body);
    let given = signature.trim().to_ascii_lowercase();
    bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// Shoper's webhooks: `X-Webhook-SHA1` over the configuration id, the
/// shop's secret and the raw body; the order events carry the order.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShoperWebhooks;

impl WebhookVerifier for ShoperWebhooks {
    fn verify(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        secret: Option<&Secret>,
        _now: DateTime<Utc>,
    ) -> Result<Delivery, Rejection> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let Some(signature) = header(SIGNATURE_HEADER) else {
            return Err(Rejection::MissingSignature(SIGNATURE_HEADER));
        };
        let secret = secret.ok_or(Rejection::NoSecret)?;
        let Some(webhook_id) = header(ID_HEADER) else {
            return Err(Rejection::MissingSignature(ID_HEADER));
        };
        if !verify_signature(webhook_id.trim(), secret.expose(), body, signature) {
            return Err(Rejection::BadSignature(SIGNATURE_HEADER));
        }
        let topic = header(NAME_HEADER)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or("order.edit")
            .to_owned();
        if !ORDER_EVENTS.contains(&topic.as_str()) {
            return Ok(Delivery::Ignored { topic });
        }
        Ok(Delivery::Order(RawOrder {
            id: order_id_of(body),
            body: body.to_vec(),
            position: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The doc's order (OpenLinker's fixture of a live trial shop's order 2),
    /// the same file the contract suite reads.
    const EXAMPLE: &str =
        include_str!("../../../tests/connector-contract/examples/shoper/order-2-openlinker.json");

    fn parsed(body: &str) -> Result<Order, OrderParseError> {
        parse_order("shoper-1", body.as_bytes(), &NormaliseOptions::default())
    }

    fn edited(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut order: Value = serde_json::from_str(EXAMPLE).expect("the example is JSON");
        if let Some(map) = order.as_object_mut() {
            edit(map);
        }
        order.to_string()
    }

    fn first_line(order: &mut Map<String, Value>) -> &mut Map<String, Value> {
        order
            .get_mut("products")
            .and_then(Value::as_array_mut)
            .and_then(|lines| lines.first_mut())
            .and_then(Value::as_object_mut)
            .expect("the example has lines")
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).expect("a decimal")
    }

    #[test]
    fn the_documented_order_becomes_the_contract_order() {
        let order = parsed(EXAMPLE).expect("the example normalises");
        assert_eq!(order.key(), "shoper-1:2");
        assert_eq!(order.number, "2");
        assert_eq!(order.status, "7");
        // The fixture carries no `status{type}`: no state is guessed.
        assert_eq!(order.state, OrderState::Other);
        assert!(order.paid);
        assert_eq!(order.currency, "PLN");
        assert_eq!(order.payment_method, "1");
        // 2026-09-27 13:12:16 in Warsaw is summer time (UTC+2).
        assert_eq!(
            order.placed_at,
            Utc.with_ymd_and_hms(2026, 9, 27, 11, 12, 16).unwrap()
        );
        assert_eq!(
            order.revision,
            Utc.with_ymd_and_hms(2026, 9, 28, 4, 12, 16).unwrap() + Duration::milliseconds(1)
        );
        assert_eq!(order.buyer.email.as_deref(), Some("email@example.com"));
        assert_eq!(order.buyer.nip.as_deref(), Some("5252556107"));
        assert_eq!(
            order.buyer.billing.company.as_deref(),
            Some("Kowalska Sp. z o.o.")
        );
        assert_eq!(order.buyer.billing.street, "Warszawska 543/123");
        assert_eq!(order.buyer.billing.city, "Kraków");
        assert_eq!(order.buyer.billing.country, "PL");
        let delivery = order.buyer.shipping.as_ref().expect("a delivery address");
        assert_eq!(delivery.name, "Anna Kowalska");
        assert_eq!(order.lines.len(), 2);
        let line = &order.lines[0];
        assert_eq!(line.sku, "1E72-8147C_20250917132509");
        assert_eq!(line.name, "Żebrowana miska Miętowy Rozkwit");
        assert_eq!(line.vat, VatRate::Percent(Decimal::from(23)));
        assert_eq!(line.total_gross, dec("59.48"));
        assert_eq!(line.total_net, dec("48.36"));
        assert_eq!(line.total_vat, dec("11.12"));
        assert_eq!(order.lines[1].total_gross, dec("74.36"));
        let shipping = order.shipping.as_ref().expect("a delivery method");
        assert_eq!(shipping.method, "8");
        assert_eq!(shipping.total_gross, Decimal::ZERO);
        assert_eq!(order.total_gross, dec("133.84"));
        assert_eq!(
            order.total_vat,
            order.lines[0].total_vat + order.lines[1].total_vat
        );
        assert_eq!(order.total_net + order.total_vat, order.total_gross);
    }

    #[test]
    fn the_status_type_and_the_payment_give_the_state() {
        for (kind, paid, cod, state) in [
            ("1", false, false, OrderState::AwaitingPayment),
            ("1", false, true, OrderState::Paid),
            ("2", true, false, OrderState::Paid),
            ("3", true, false, OrderState::Completed),
            ("4", true, false, OrderState::Cancelled),
            ("9", true, false, OrderState::Other),
        ] {
            let body = edited(|o| {
                o.insert(
                    "status".into(),
                    serde_json::json!({"status_id": "7", "type": kind}),
                );
                o.insert("is_paid".into(), Value::Bool(paid));
                o.insert("is_cash_on_delivery".into(), Value::Bool(cod));
            });
            assert_eq!(parsed(&body).unwrap().state, state, "type {kind}");
        }
        // Flags as strings, and no is_paid at all: the amounts decide.
        let body = edited(|o| {
            o.insert("status".into(), serde_json::json!({"type": "2"}));
            o.remove("is_paid");
            o.insert("paid".into(), "0.00".into());
        });
        let order = parsed(&body).unwrap();
        assert!(!order.paid);
        assert_eq!(order.state, OrderState::AwaitingPayment);
        assert_eq!(
            order.revision,
            Utc.with_ymd_and_hms(2026, 9, 28, 4, 12, 16).unwrap(),
            "an unpaid order's revision is its last status change"
        );
    }

    #[test]
    fn discounts_rates_and_numbers_sent_as_numbers() {
        let body = edited(|o| {
            let line = first_line(o);
            line.insert("quantity".into(), serde_json::json!(3));
            line.insert("price".into(), serde_json::json!(10.5));
            line.insert("discount_perc".into(), "10".into());
            line.insert("tax".into(), "8%".into());
            line.insert("tax_value".into(), serde_json::json!(8));
            line.insert("option".into(), "Rozmiar: XL".into());
            o.insert("shipping_cost".into(), "12.30".into());
            o.insert("shipping_tax_name".into(), "23%".into());
            o.insert("sum".into(), serde_json::json!(115.01));
        });
        let order = parsed(&body).unwrap();
        let line = &order.lines[0];
        assert_eq!(line.name, "Żebrowana miska Miętowy Rozkwit (Rozmiar: XL)");
        assert_eq!(line.quantity, Decimal::from(3));
        assert_eq!(line.total_gross, dec("28.35"));
        assert_eq!(line.discount_gross, dec("3.15"));
        assert_eq!(line.unit_price_gross, dec("9.45"));
        assert_eq!(line.vat, VatRate::Percent(Decimal::from(8)));
        assert_eq!(line.total_net, dec("26.25"));
        let shipping = order.shipping.as_ref().unwrap();
        assert_eq!(shipping.total_net, dec("10.00"));
        assert_eq!(shipping.total_vat, dec("2.30"));
        assert_eq!(order.discount_gross, dec("3.15"));
        assert_eq!(order.total_gross, dec("115.01"));

        let exempt = edited(|o| {
            let line = first_line(o);
            line.insert("tax".into(), "zw.".into());
            line.insert("tax_value".into(), "0".into());
        });
        let order = parsed(&exempt).unwrap();
        assert_eq!(order.lines[0].vat, VatRate::Exempt);
        assert_eq!(order.lines[0].total_vat, Decimal::ZERO);
    }

    #[test]
    fn bad_payloads_are_refused_with_a_reason() {
        let cases: Vec<(String, &str)> = vec![
            (
                EXAMPLE[..EXAMPLE.len() / 2].to_owned(),
                "not a Shoper order",
            ),
            ("[1,2]".to_owned(), "not a JSON object"),
            (
                edited(|o| drop(o.insert("order_id".into(), "0".into()))),
                "order_id",
            ),
            (
                edited(|o| drop(o.insert("order_id".into(), "-4".into()))),
                "order_id",
            ),
            (
                edited(|o| drop(o.insert("date".into(), "0000-00-00 00:00:00".into()))),
                "date",
            ),
            (edited(|o| drop(o.remove("status_id"))), "status_id"),
            (
                edited(|o| drop(o.insert("currency_id".into(), "3".into()))),
                "no ISO code",
            ),
            (
                edited(|o| drop(o.insert("products".into(), Value::Array(vec![])))),
                "at least one line",
            ),
            (
                edited(|o| drop(o.insert("sum".into(), "133.85".into()))),
                "133.85 is not the lines and the delivery (133.84)",
            ),
            (
                edited(|o| drop(o.insert("sum".into(), serde_json::json!([1])))),
                "not a number",
            ),
            (
                edited(|o| drop(first_line(o).insert("code".into(), "".into()))),
                "no SKU",
            ),
            (
                edited(|o| drop(first_line(o).insert("quantity".into(), "0".into()))),
                "outside 1..=",
            ),
            (
                edited(|o| drop(first_line(o).insert("quantity".into(), "1e9".into()))),
                "outside 1..=",
            ),
            (
                edited(|o| drop(first_line(o).insert("price".into(), "-1".into()))),
                "negative",
            ),
            (
                edited(|o| drop(first_line(o).insert("price".into(), "1e300".into()))),
                "not a number",
            ),
            (
                edited(|o| drop(first_line(o).insert("price".into(), "99999999999".into()))),
                "out of range",
            ),
            (
                edited(|o| drop(first_line(o).insert("tax_value".into(), "123".into()))),
                "not a VAT rate",
            ),
            (
                edited(|o| {
                    let line = first_line(o);
                    line.remove("tax_value");
                    line.insert("tax".into(), "VAT".into());
                }),
                "no VAT rate",
            ),
            (
                edited(|o| drop(first_line(o).insert("discount_perc".into(), "150".into()))),
                "percentage",
            ),
            (
                edited(|o| drop(o.insert("products".into(), serde_json::json!(["x"])))),
                "not an object",
            ),
            (
                edited(|o| {
                    o.insert("shipping_cost".into(), "10.00".into());
                    o.remove("shipping_tax_value");
                }),
                "no VAT rate",
            ),
        ];
        for (body, expected) in cases {
            let err = parsed(&body).expect_err(expected).to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        assert_eq!(
            parse_order("s", &[0xff, 0xfe], &NormaliseOptions::default()).unwrap_err(),
            OrderParseError::NotUtf8
        );
    }

    #[test]
    fn a_pickup_point_joins_the_delivery_company_and_a_blank_address_is_none() {
        let order = parsed(&edited(|o| {
            o.insert("pickup_point".into(), "POP-WAW579".into());
        }))
        .unwrap();
        assert_eq!(
            order.buyer.shipping.unwrap().company.as_deref(),
            Some("POP-WAW579")
        );
        let order = parsed(&edited(|o| {
            o.insert(
                "delivery_address".into(),
                serde_json::json!({"firstname": ""}),
            );
            o.insert("notes".into(), "  Proszę dzwonić  ".into());
        }))
        .unwrap();
        assert_eq!(order.buyer.shipping, None);
        assert_eq!(order.customer_note.as_deref(), Some("Proszę dzwonić"));
    }

    #[test]
    fn nips_lose_separators_and_the_polish_prefix() {
        assert_eq!(nip("PL 525-255-61-07").as_deref(), Some("5252556107"));
        assert_eq!(nip("525 255 61 07").as_deref(), Some("5252556107"));
        assert_eq!(nip("DE 123456789").as_deref(), Some("DE123456789"));
        assert_eq!(nip("12345"), None);
        assert_eq!(nip(""), None);
        assert_eq!(nip("brak"), None);
        assert_eq!(nip("PL 123"), None);
    }

    #[test]
    fn warsaw_time_follows_eu_summer_time_both_ways() {
        let zone = Zone::named("Europe/Warsaw").unwrap();
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).unwrap();
        assert_eq!(zone.format(winter), "2026-01-15 13:00:00");
        assert_eq!(zone.format(summer), "2026-07-15 14:00:00");
        assert_eq!(zone.parse("2026-01-15 13:00:00"), Some(winter));
        assert_eq!(zone.parse("2026-07-15 14:00:00"), Some(summer));
        // 2026: summer time from 29 March to 25 October, 01:00 UTC.
        let before = Utc.with_ymd_and_hms(2026, 3, 29, 0, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap();
        assert_eq!(zone.format(before), "2026-03-29 01:59:59");
        assert_eq!(zone.format(after), "2026-03-29 03:00:00");
        // 02:30 on 25 October happens twice: the first is taken.
        assert_eq!(
            zone.parse("2026-10-25 02:30:00"),
            Some(Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap())
        );
        assert_eq!(
            zone.parse("2026-10-25 03:30:00"),
            Some(Utc.with_ymd_and_hms(2026, 10, 25, 2, 30, 0).unwrap())
        );
        for at in [before, after, winter, summer] {
            assert_eq!(zone.parse(&zone.format(at)), Some(at), "{at}");
        }
        assert_eq!(
            Zone::named("UTC").unwrap().format(summer),
            "2026-07-15 12:00:00"
        );
        assert_eq!(Zone::named("Mars/Olympus"), None);
        assert_eq!(zone.parse("0000-00-00 00:00:00"), None);
        assert_eq!(zone.parse(""), None);
    }

    #[test]
    fn the_signature_is_sha1_of_id_secret_and_body() {
        // Computed independently: printf '5:s3cr3t:{}' | sha1sum
        assert_eq!(
            sign("5", "s3cr3t", b"{}"),
            "d9fd6d3b74f15fe9a84e85a19f4027f99de71290"
        );
        let body = br#"{"order_id":"8"}"#;
        let good = sign("5", "s3cr3t", body);
        assert_eq!(good.len(), 40);
        let mut headers = http::HeaderMap::new();
        headers.insert("x-webhook-id", "5".parse().unwrap());
        headers.insert("x-webhook-name", "order.status".parse().unwrap());
        headers.insert("x-webhook-sha1", good.to_uppercase().parse().unwrap());
        let secret = Secret::new("s3cr3t");
        let now = Utc::now();
        match ShoperWebhooks.verify(&headers, body, Some(&secret), now) {
            Ok(Delivery::Order(raw)) => assert_eq!(raw.id, "8"),
            other => panic!("{other:?}"),
        }
        headers.insert("x-webhook-name", "product.edit".parse().unwrap());
        assert_eq!(
            ShoperWebhooks.verify(&headers, body, Some(&secret), now),
            Ok(Delivery::Ignored {
                topic: "product.edit".into()
            })
        );
        headers.insert("x-webhook-id", "6".parse().unwrap());
        assert_eq!(
            ShoperWebhooks.verify(&headers, body, Some(&secret), now),
            Err(Rejection::BadSignature(SIGNATURE_HEADER))
        );
        headers.remove("x-webhook-id");
        assert_eq!(
            ShoperWebhooks.verify(&headers, body, Some(&secret), now),
            Err(Rejection::MissingSignature(ID_HEADER))
        );
        assert!(!verify_signature("5", "s3cr3t", body, &good[..39]));
    }
}
