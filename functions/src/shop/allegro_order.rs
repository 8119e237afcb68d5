//! Allegro's checkout forms (`GET /order/checkout-forms/{id}`) normalised
//! into [`contract::Order`]. Pure: the connector and the tests call it.
//!
//! - The order id and number are the form's UUID (Allegro shows buyers no
//!   other number). The revision is `updatedAt`, which moves on the
//!   buyer's changes (payment, address, cancellation), not on the seller's
//!   fulfilment; placed is the earliest line's `boughtAt`.
//! - State: `BOUGHT` is not yet an order (the buyer has not filled in the
//!   form), `FILLED_IN` awaits payment, `READY_FOR_PROCESSING` is paid or
//!   cash on delivery, `CANCELLED` (or a fulfilment `CANCELLED`) is
//!   cancelled, a fulfilment `SENT` or `PICKED_UP` is completed.
//! - Paid: the payment finished with an amount above zero.
//! - Buyer: e-mail; the NIP from the invoice company's `PL_NIP` id (or its
//!   deprecated `taxId`); billing is the invoice address when the buyer
//!   wants an invoice, else the buyer's address; shipping is the delivery
//!   address, or the pickup point's.
//! - Lines: the offer's external id (its "signature") is the SKU; an offer
//!   without one cannot be booked and refuses the order. Prices are gross
//!   and Allegro states no VAT rate: every line and the delivery come out
//!   at a zero rate with net = gross, and the source says
//!   [`super::VatStated::NotStated`], so the caller takes each rate from
//!   the ERP's product record ([`crate::orders::complete_vat`]).
//! - Money is Allegro's decimal strings, one currency per form; the total
//!   to pay must be the lines and the delivery, to the grosz.

use chrono::{DateTime, Utc};
use contract::{Address, Buyer, Order, OrderLine, OrderState, Shipping, VatRate};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::OrderParseError;

const MAX_LINES: usize = 1000;
const MAX_QUANTITY: u32 = 100_000;
const MAX_TEXT_CHARS: usize = 2000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Form {
    id: String,
    #[serde(default)]
    message_to_seller: Option<String>,
    buyer: FormBuyer,
    #[serde(default)]
    payment: Option<Payment>,
    status: String,
    #[serde(default)]
    fulfillment: Option<Fulfillment>,
    #[serde(default)]
    delivery: Option<Delivery>,
    #[serde(default)]
    invoice: Option<Invoice>,
    line_items: Vec<LineItem>,
    summary: Summary,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct FormBuyer {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    company_name: Option<String>,
    phone_number: Option<String>,
    address: Option<BuyerAddress>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BuyerAddress {
    street: Option<String>,
    city: Option<String>,
    post_code: Option<String>,
    country_code: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Payment {
    #[serde(rename = "type")]
    kind: Option<String>,
    finished_at: Option<DateTime<Utc>>,
    paid_amount: Option<Money>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Fulfillment {
    status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Delivery {
    address: Option<DeliveryAddress>,
    method: Option<Method>,
    pickup_point: Option<PickupPoint>,
    cost: Option<Money>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct DeliveryAddress {
    first_name: Option<String>,
    last_name: Option<String>,
    company_name: Option<String>,
    street: Option<String>,
    city: Option<String>,
    zip_code: Option<String>,
    country_code: Option<String>,
    phone_number: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Method {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PickupPoint {
    id: Option<String>,
    name: Option<String>,
    address: Option<DeliveryAddress>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Invoice {
    required: bool,
    address: Option<InvoiceAddress>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct InvoiceAddress {
    street: Option<String>,
    city: Option<String>,
    zip_code: Option<String>,
    country_code: Option<String>,
    company: Option<Company>,
    natural_person: Option<NaturalPerson>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Company {
    name: Option<String>,
    ids: Vec<CompanyId>,
    tax_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CompanyId {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct NaturalPerson {
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LineItem {
    offer: Offer,
    quantity: u32,
    #[serde(default)]
    original_price: Option<Money>,
    price: Money,
    #[serde(default)]
    bought_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct Offer {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    external: Option<External>,
}

#[derive(Debug, Deserialize)]
struct External {
    #[serde(default)]
    id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    total_to_pay: Money,
}

/// Allegro's money: `{"amount": "123.45", "currency": "PLN"}`, the amount
/// a decimal string ("to avoid rounding errors").
#[derive(Debug, Clone, Deserialize)]
struct Money {
    amount: String,
    currency: String,
}

fn field_error(field: impl Into<String>, problem: impl Into<String>) -> OrderParseError {
    OrderParseError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

fn cut(s: &str, chars: usize) -> String {
    s.trim().chars().take(chars).collect()
}

fn text(value: &Option<String>) -> String {
    value
        .as_deref()
        .map(|s| cut(s, MAX_TEXT_CHARS))
        .unwrap_or_default()
}

fn optional(value: &Option<String>) -> Option<String> {
    Some(text(value)).filter(|s| !s.is_empty())
}

impl Money {
    /// The amount, in `currency`, within PLN 10 billion.
    fn amount(&self, field: &str, currency: &str) -> Result<Decimal, OrderParseError> {
        if self.currency.trim() != currency {
            return Err(field_error(
                field,
                format!("{} in an order in {currency}", cut(&self.currency, 8)),
            ));
        }
        let value: Decimal = self.amount.trim().parse().map_err(|_| {
            field_error(
                field,
                format!("`{}` is not an amount", cut(&self.amount, 40)),
            )
        })?;
        if value.abs() > Decimal::from(10_000_000_000_i64) || value.scale() > 2 {
            return Err(field_error(
                field,
                format!("{value} is not an amount in grosze"),
            ));
        }
        Ok(value)
    }
}

fn name(first: &Option<String>, last: &Option<String>) -> String {
    format!("{} {}", text(first), text(last)).trim().to_owned()
}

/// A NIP as digits (a `PL` prefix and separators dropped).
fn nip(company: &Company) -> Option<String> {
    let raw = company
        .ids
        .iter()
        .find(|id| id.kind == "PL_NIP")
        .map(|id| id.value.as_str())
        .or(company.tax_id.as_deref())?;
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    (digits.len() == 10).then_some(digits)
}

fn state(status: &str, fulfillment: Option<&str>) -> OrderState {
    match (status, fulfillment) {
        ("CANCELLED", _) | (_, Some("CANCELLED")) => OrderState::Cancelled,
        ("READY_FOR_PROCESSING", Some("SENT" | "PICKED_UP")) => OrderState::Completed,
        ("READY_FOR_PROCESSING", _) => OrderState::Paid,
        ("FILLED_IN", _) => OrderState::AwaitingPayment,
        _ => OrderState::Other,
    }
}

/// A checkout form normalised for the ERP; VAT left for the ERP's product
/// records (see the module's notes).
pub fn parse_checkout_form(shop: &str, body: &[u8]) -> Result<Order, OrderParseError> {
    let text_body = std::str::from_utf8(body).map_err(|_| OrderParseError::NotUtf8)?;
    let form: Form = serde_json::from_str(text_body).map_err(|e| OrderParseError::Json {
        platform: "Allegro",
        problem: e.to_string(),
    })?;
    let order_id = form.id.trim().to_owned();
    if order_id.len() != 36 || !order_id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(field_error("id", "must be a checkout form's UUID"));
    }
    let status = form.status.trim().to_owned();
    if !matches!(
        status.as_str(),
        "BOUGHT" | "FILLED_IN" | "READY_FOR_PROCESSING" | "CANCELLED"
    ) {
        return Err(field_error(
            "status",
            format!("`{}` is not a checkout form status", cut(&status, 40)),
        ));
    }
    let fulfillment = form
        .fulfillment
        .as_ref()
        .and_then(|f| f.status.as_deref())
        .map(str::trim);
    let currency = form.summary.total_to_pay.currency.trim().to_owned();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(field_error(
            "summary.totalToPay.currency",
            "must be an ISO 4217 code",
        ));
    }
    if form.line_items.is_empty() {
        return Err(field_error("lineItems", "an order needs at least one line"));
    }
    if form.line_items.len() > MAX_LINES {
        return Err(field_error(
            "lineItems",
            format!("more than {MAX_LINES} lines"),
        ));
    }
    let mut lines = Vec::with_capacity(form.line_items.len());
    for (i, item) in form.line_items.iter().enumerate() {
        let field = |name: &str| format!("lineItems[{i}].{name}");
        let sku = item
            .offer
            .external
            .as_ref()
            .map(|e| e.id.trim().to_owned())
            .unwrap_or_default();
        if sku.is_empty() {
            return Err(field_error(
                field("offer.external.id"),
                format!(
                    "offer {} has no external id (signature): no SKU to book it by",
                    cut(&item.offer.id, 20)
                ),
            ));
        }
        if item.quantity == 0 || item.quantity > MAX_QUANTITY {
            return Err(field_error(
                field("quantity"),
                format!("{} is outside 1..={MAX_QUANTITY}", item.quantity),
            ));
        }
        let unit = item.price.amount(&field("price"), &currency)?;
        if unit.is_sign_negative() {
            return Err(field_error(field("price"), "a price cannot be negative"));
        }
        let quantity = Decimal::from(item.quantity);
        let gross = unit * quantity;
        let discount = match &item.original_price {
            Some(original) => {
                let original = original.amount(&field("originalPrice"), &currency)?;
                ((original - unit) * quantity).max(Decimal::ZERO)
            }
            None => Decimal::ZERO,
        };
        lines.push(OrderLine {
            sku: cut(&sku, 100),
            name: cut(&item.offer.name, MAX_TEXT_CHARS),
            quantity,
            vat: VatRate::Percent(Decimal::ZERO),
            unit_price_gross: unit,
            total_net: gross,
            total_vat: Decimal::ZERO,
            total_gross: gross,
            discount_gross: discount,
        });
    }
    let delivery = form.delivery.unwrap_or_default();
    let shipping = match &delivery.cost {
        Some(cost) => {
            let gross = cost.amount("delivery.cost", &currency)?;
            let method = delivery.method.as_ref();
            Some(Shipping {
                method: method
                    .and_then(|m| m.id.as_deref())
                    .map(|id| cut(id, 100))
                    .unwrap_or_default(),
                title: method.map(|m| text(&m.name)).unwrap_or_default(),
                service_sku: None,
                vat: VatRate::Percent(Decimal::ZERO),
                total_net: gross,
                total_vat: Decimal::ZERO,
                total_gross: gross,
            })
        }
        None => None,
    };
    let total_gross = form
        .summary
        .total_to_pay
        .amount("summary.totalToPay", &currency)?;
    let parts: Decimal = lines.iter().map(|l| l.total_gross).sum::<Decimal>()
        + shipping.as_ref().map_or(Decimal::ZERO, |s| s.total_gross);
    if parts != total_gross {
        return Err(field_error(
            "summary.totalToPay",
            format!("{total_gross} is not the lines and the delivery ({parts})"),
        ));
    }
    let buyer = &form.buyer;
    let buyer_address = buyer.address.as_ref();
    let invoice = form.invoice.as_ref().filter(|i| i.required);
    let invoice_address = invoice.and_then(|i| i.address.as_ref());
    let company = invoice_address.and_then(|a| a.company.as_ref());
    let billing = match invoice_address {
        Some(a) => Address {
            name: match (company, &a.natural_person) {
                (Some(_), _) => String::new(),
                (None, Some(person)) => name(&person.first_name, &person.last_name),
                (None, None) => name(&buyer.first_name, &buyer.last_name),
            },
            company: company.and_then(|c| optional(&c.name)),
            street: text(&a.street),
            city: text(&a.city),
            postcode: text(&a.zip_code),
            country: text(&a.country_code).to_uppercase(),
            phone: optional(&buyer.phone_number),
        },
        None => Address {
            name: name(&buyer.first_name, &buyer.last_name),
            company: optional(&buyer.company_name),
            street: buyer_address.map(|a| text(&a.street)).unwrap_or_default(),
            city: buyer_address.map(|a| text(&a.city)).unwrap_or_default(),
            postcode: buyer_address
                .map(|a| text(&a.post_code))
                .unwrap_or_default(),
            country: buyer_address
                .map(|a| text(&a.country_code).to_uppercase())
                .unwrap_or_default(),
            phone: optional(&buyer.phone_number),
        },
    };
    let shipping_address = match (&delivery.pickup_point, &delivery.address) {
        (Some(point), recipient) => point.address.as_ref().map(|a| Address {
            name: recipient
                .as_ref()
                .map(|r| name(&r.first_name, &r.last_name))
                .unwrap_or_default(),
            company: Some(format!("{} {}", text(&point.name), text(&point.id)))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
            street: text(&a.street),
            city: text(&a.city),
            postcode: text(&a.zip_code),
            country: text(&a.country_code).to_uppercase(),
            phone: recipient.as_ref().and_then(|r| optional(&r.phone_number)),
        }),
        (None, Some(a)) => Some(Address {
            name: name(&a.first_name, &a.last_name),
            company: optional(&a.company_name),
            street: text(&a.street),
            city: text(&a.city),
            postcode: text(&a.zip_code),
            country: text(&a.country_code).to_uppercase(),
            phone: optional(&a.phone_number),
        }),
        (None, None) => None,
    };
    let placed_at = form
        .line_items
        .iter()
        .filter_map(|l| l.bought_at)
        .min()
        .or(form.updated_at)
        .ok_or_else(|| field_error("lineItems.boughtAt", "no line says when it was bought"))?;
    let revision = form.updated_at.unwrap_or(placed_at).max(placed_at);
    let payment = form.payment.unwrap_or_default();
    let paid_amount = match &payment.paid_amount {
        Some(amount) => amount.amount("payment.paidAmount", &currency)?,
        None => Decimal::ZERO,
    };
    let discount_gross = lines.iter().map(|l| l.discount_gross).sum();
    Ok(Order {
        shop: shop.to_owned(),
        number: order_id.clone(),
        order_id,
        revision,
        placed_at,
        state: state(&status, fulfillment),
        // What the seller sees: the form's status and, once there is one,
        // the fulfilment status the seller (or we) set.
        status: match fulfillment {
            Some(fulfillment) => format!("{status}/{fulfillment}"),
            None => status,
        },
        paid: payment.finished_at.is_some() && paid_amount > Decimal::ZERO,
        currency,
        payment_method: text(&payment.kind),
        payment_form: None,
        buyer: Buyer {
            email: optional(&buyer.email),
            nip: company.and_then(nip),
            billing,
            shipping: shipping_address,
        },
        lines,
        shipping,
        discount_gross,
        total_net: total_gross,
        total_vat: Decimal::ZERO,
        total_gross,
        customer_note: optional(&form.message_to_seller),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Allegro's checkout form as its OpenAPI description's example values
    /// assemble it (docs/platforms/allegro.md §3.3).
    const SPEC: &str =
        include_str!("../../../tests/connector-contract/examples/allegro/checkout-form-spec.json");

    fn parsed(body: &str) -> Result<Order, OrderParseError> {
        parse_checkout_form("allegro-1", body.as_bytes())
    }

    fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut form: serde_json::Value = serde_json::from_str(SPEC).expect("the example is JSON");
        edit(&mut form);
        form.to_string()
    }

    #[test]
    fn the_specs_example_form_becomes_the_contract_order() {
        let order = parsed(SPEC).expect("the example normalises");
        assert_eq!(order.order_id, "29738e61-7f6a-11e8-ac45-09db60ede9d6");
        assert_eq!(order.number, order.order_id);
        assert_eq!(order.status, "READY_FOR_PROCESSING/NEW");
        assert_eq!(order.state, OrderState::Paid);
        assert!(order.paid, "payment finished with 135.44");
        assert_eq!(order.currency, "PLN");
        assert_eq!(order.payment_method, "ONLINE");
        assert_eq!(
            order.placed_at,
            Utc.with_ymd_and_hms(2018, 1, 1, 10, 23, 43).unwrap()
                + chrono::Duration::milliseconds(123)
        );
        // updatedAt (2011) is older than the purchase in the example: the
        // revision is never before the order was placed.
        assert_eq!(order.revision, order.placed_at);
        assert_eq!(order.buyer.email.as_deref(), Some("user-email@allegro.pl"));
        assert_eq!(order.buyer.nip.as_deref(), Some("1111111111"));
        assert_eq!(
            order.buyer.billing.company.as_deref(),
            Some("Udix Sp. z o.o.")
        );
        assert_eq!(order.buyer.billing.street, "Grunwaldzka 182");
        assert_eq!(order.buyer.billing.postcode, "60-166");
        let shipping = order.buyer.shipping.as_ref().expect("a pickup point");
        assert_eq!(shipping.company.as_deref(), Some("Paczkomat POZ08A POZ08A"));
        assert_eq!(shipping.street, "Grunwaldzka 108");
        assert_eq!(shipping.name, "Jan Kowalski");
        assert_eq!(order.lines.len(), 1);
        let line = &order.lines[0];
        assert_eq!(line.sku, "AH-129834");
        assert_eq!(line.name, "Black shoes 41");
        assert_eq!(line.quantity, Decimal::ONE);
        assert_eq!(line.unit_price_gross, Decimal::new(12345, 2));
        assert_eq!(line.total_gross, Decimal::new(12345, 2));
        let delivery = order.shipping.as_ref().expect("a delivery cost");
        assert_eq!(delivery.method, "1fa56f79-4b6a-4821-a6f2-ca9c16d5c925");
        assert_eq!(delivery.title, "Allegro Paczkomaty InPost");
        assert_eq!(delivery.total_gross, Decimal::new(1199, 2));
        assert_eq!(order.total_gross, Decimal::new(13544, 2));
        assert_eq!(
            order.customer_note.as_deref(),
            Some("Please send me an item in red color")
        );
    }

    #[test]
    fn the_form_status_and_fulfilment_give_the_state() {
        for (status, fulfilment, state) in [
            ("BOUGHT", "NEW", OrderState::Other),
            ("FILLED_IN", "NEW", OrderState::AwaitingPayment),
            ("READY_FOR_PROCESSING", "PROCESSING", OrderState::Paid),
            ("READY_FOR_PROCESSING", "SENT", OrderState::Completed),
            ("READY_FOR_PROCESSING", "PICKED_UP", OrderState::Completed),
            ("READY_FOR_PROCESSING", "CANCELLED", OrderState::Cancelled),
            ("CANCELLED", "NEW", OrderState::Cancelled),
        ] {
            let body = edited(|f| {
                f["status"] = status.into();
                f["fulfillment"]["status"] = fulfilment.into();
            });
            assert_eq!(parsed(&body).unwrap().state, state, "{status}/{fulfilment}");
        }
        let err = parsed(&edited(|f| f["status"] = "PAID".into())).unwrap_err();
        assert!(
            err.to_string().contains("not a checkout form status"),
            "{err}"
        );
    }

    #[test]
    fn an_unpaid_form_is_not_paid_and_a_private_buyer_is_billed_at_home() {
        let body = edited(|f| {
            f["payment"]["finishedAt"] = serde_json::Value::Null;
            f["invoice"]["required"] = false.into();
        });
        let order = parsed(&body).unwrap();
        assert!(!order.paid);
        assert_eq!(order.buyer.nip, None);
        assert_eq!(order.buyer.billing.name, "Jan Kowalski");
        assert_eq!(order.buyer.billing.company.as_deref(), Some("Kowalex"));
        assert_eq!(order.buyer.billing.street, "Solna");
        assert_eq!(order.buyer.billing.country, "PL");
    }

    #[test]
    fn an_offer_without_a_signature_or_a_total_that_does_not_add_up_is_refused() {
        let err = parsed(&edited(|f| {
            f["lineItems"][0]["offer"]["external"] = serde_json::Value::Null
        }))
        .unwrap_err();
        assert!(err.to_string().contains("no SKU to book it by"), "{err}");
        let err = parsed(&edited(|f| {
            f["summary"]["totalToPay"]["amount"] = "135.45".into()
        }))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("135.45 is not the lines and the delivery (135.44)"),
            "{err}"
        );
        let err = parsed(&edited(|f| {
            f["lineItems"][0]["price"]["currency"] = "EUR".into()
        }))
        .unwrap_err();
        assert!(err.to_string().contains("EUR in an order in PLN"), "{err}");
        let err = parsed(&edited(|f| {
            f["lineItems"][0]["price"]["amount"] = "12.345".into()
        }))
        .unwrap_err();
        assert!(err.to_string().contains("not an amount in grosze"), "{err}");
        let err = parsed(&edited(|f| f["id"] = "727".into())).unwrap_err();
        assert!(err.to_string().contains("UUID"), "{err}");
        let err = parsed(&edited(|f| f["lineItems"][0]["quantity"] = 0.into())).unwrap_err();
        assert!(err.to_string().contains("outside 1..="), "{err}");
    }

    #[test]
    fn quantities_multiply_and_a_lower_price_than_the_original_is_a_discount() {
        let body = edited(|f| {
            f["lineItems"][0]["quantity"] = 3.into();
            f["lineItems"][0]["originalPrice"]["amount"] = "130.00".into();
            f["summary"]["totalToPay"]["amount"] = "382.34".into();
        });
        let order = parsed(&body).unwrap();
        assert_eq!(order.lines[0].total_gross, Decimal::new(37035, 2));
        assert_eq!(order.lines[0].discount_gross, Decimal::new(1965, 2));
        assert_eq!(order.discount_gross, Decimal::new(1965, 2));
    }
}
