//! Orders (research notes §3.3–§3.9): checkout forms, the list with its filters and the 10 000
//! cap, fulfillment with revision checks, shipments, carriers, invoices and customer returns;
//! plus the buyer-side actions the control API offers (place, advance, cancel, modify).

use std::collections::HashSet;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::events;
use crate::oauth::Caller;
use crate::offers::{seller_of, set_stock};
use crate::state::{Shared, State as Market};
use crate::util::{
    ApiError, BETA, Params, is_uuid, money, parse_price, random_digits, revision, ts, typed_json,
    uuid, vnd_json,
};

/// Checkout-form statuses.
pub const ORDER_STATUSES: [&str; 4] = ["BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING", "CANCELLED"];
/// Fulfillment statuses (all of them; `RETURNED` is Allegro's only).
pub const FULFILLMENT_STATUSES: [&str; 9] = [
    "NEW",
    "PROCESSING",
    "READY_FOR_SHIPMENT",
    "READY_FOR_PICKUP",
    "SENT",
    "PICKED_UP",
    "CANCELLED",
    "SUSPENDED",
    "RETURNED",
];
/// Carriers served by `GET /order/carriers`.
pub const CARRIERS: [(&str, &str); 10] = [
    ("ALLEGRO", "Allegro"),
    ("INPOST", "InPost"),
    ("DPD", "DPD"),
    ("DHL", "DHL"),
    ("POCZTA_POLSKA", "Poczta Polska"),
    ("UPS", "UPS"),
    ("GLS", "GLS"),
    ("FEDEX", "FedEx"),
    ("ORLEN", "Orlen Paczka"),
    ("OTHER", "Inny przewoźnik"),
];

/// One line of a checkout form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    /// UUID.
    pub id: String,
    pub offer_id: String,
    pub offer_name: String,
    pub external_id: Option<String>,
    pub quantity: u32,
    pub original_price: Decimal,
    pub price: Decimal,
    pub bought_at: DateTime<Utc>,
}

/// The payment of a checkout form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    /// ONLINE, CASH_ON_DELIVERY, ...
    pub kind: String,
    pub provider: String,
    pub finished_at: Option<DateTime<Utc>>,
    pub paid: Option<Decimal>,
}

/// A shipment (tracking number) the seller added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    pub id: String,
    pub waybill: String,
    pub carrier_id: String,
    pub carrier_name: Option<String>,
    pub line_items: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// An invoice the seller added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: String,
    pub invoice_number: Option<String>,
    pub file_name: String,
    pub created_at: DateTime<Utc>,
    /// Size in bytes of the uploaded file, once uploaded.
    pub file_size: Option<usize>,
    pub uploaded_at: Option<DateTime<Utc>>,
}

/// A fulfillment change the seller made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FulfillmentChange {
    pub status: String,
    pub at: DateTime<Utc>,
    /// The `checkoutForm.revision` the seller sent, if any.
    pub revision_sent: Option<String>,
    pub revision_after: String,
}

/// A checkout form with what the seller did to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// UUID.
    pub id: String,
    pub seller_id: String,
    pub status: String,
    pub fulfillment_status: String,
    pub buyer: Value,
    pub payment: Payment,
    pub delivery: Value,
    pub delivery_cost: Decimal,
    pub invoice: Value,
    pub line_items: Vec<LineItem>,
    pub message_to_seller: Option<String>,
    pub currency: String,
    pub marketplace: String,
    pub bought_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: String,
    pub shipments: Vec<Shipment>,
    pub invoices: Vec<Invoice>,
    pub fulfillment_history: Vec<FulfillmentChange>,
}

impl Order {
    /// Lines plus delivery.
    pub fn total(&self) -> Decimal {
        self.line_items
            .iter()
            .map(|l| l.price * Decimal::from(l.quantity))
            .sum::<Decimal>()
            + self.delivery_cost
    }

    fn line_items_sent(&self) -> &'static str {
        let sent: HashSet<&str> = self
            .shipments
            .iter()
            .flat_map(|s| s.line_items.iter().map(String::as_str))
            .collect();
        let n = self
            .line_items
            .iter()
            .filter(|l| sent.contains(l.id.as_str()))
            .count();
        if n == 0 {
            "NONE"
        } else if n == self.line_items.len() {
            "ALL"
        } else {
            "SOME"
        }
    }
}

/// A line of an order to place.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewLine {
    pub offer_id: String,
    pub quantity: u32,
    /// Unit price; the offer's price when None.
    pub price: Option<String>,
}

/// The invoice company of an order to place (a private purchase when absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewCompany {
    pub name: String,
    pub nip: String,
}

/// An order to place as a buyer (control API / library).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewOrder {
    /// The seller; the default seller when None.
    pub seller_id: Option<String>,
    pub buyer_login: Option<String>,
    pub buyer_email: Option<String>,
    pub buyer_first_name: Option<String>,
    pub buyer_last_name: Option<String>,
    pub guest: bool,
    pub lines: Vec<NewLine>,
    /// Default `"11.99"`.
    pub delivery_cost: Option<String>,
    /// Default `"Allegro Paczkomaty InPost"` (with a pickup point).
    pub delivery_method: Option<String>,
    /// ONLINE (default), CASH_ON_DELIVERY, WIRE_TRANSFER, ...
    pub payment_type: Option<String>,
    pub invoice_company: Option<NewCompany>,
    pub message_to_seller: Option<String>,
    /// Stop after BOUGHT or FILLED_IN (default: go on to READY_FOR_PROCESSING).
    pub stop_at: Option<String>,
}

impl NewOrder {
    /// One line of `qty` of an offer, everything else default.
    pub fn one(offer_id: &str, qty: u32) -> NewOrder {
        NewOrder {
            lines: vec![NewLine {
                offer_id: offer_id.into(),
                quantity: qty,
                price: None,
            }],
            ..NewOrder::default()
        }
    }
}

/// A customer return (BETA resource).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerReturn {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub reference_number: String,
    pub order_id: String,
    pub seller_id: String,
    pub buyer_email: String,
    pub buyer_login: String,
    pub items: Vec<Value>,
    pub status: String,
    pub marketplace: String,
}

/// Returns a checkout form's JSON (research notes §3.3).
pub fn form_json(o: &Order) -> Value {
    let total = o.total();
    json!({
        "id": o.id,
        "messageToSeller": o.message_to_seller,
        "buyer": o.buyer,
        "payment": {
            "id": o.payment.id,
            "type": o.payment.kind,
            "provider": o.payment.provider,
            "finishedAt": o.payment.finished_at.map(ts),
            "paidAmount": o.payment.paid.map(|p| money(p, &o.currency)),
            "reconciliation": null,
            "features": [],
        },
        "status": o.status,
        "fulfillment": {
            "status": o.fulfillment_status,
            "shipmentSummary": {"lineItemsSent": o.line_items_sent()},
            "provider": {"id": "SELLER"},
        },
        "delivery": o.delivery,
        "invoice": o.invoice,
        "lineItems": o.line_items.iter().map(|l| line_item_json(l, &o.currency)).collect::<Vec<_>>(),
        "surcharges": [],
        "discounts": [],
        "note": null,
        "marketplace": {"id": o.marketplace},
        "summary": {"totalToPay": money(total, &o.currency)},
        "updatedAt": ts(o.updated_at),
        "revision": o.revision,
    })
}

/// One line item's JSON (checkout forms and events).
pub fn line_item_json(l: &LineItem, currency: &str) -> Value {
    json!({
        "id": l.id,
        "offer": {
            "id": l.offer_id,
            "name": l.offer_name,
            "external": l.external_id.as_ref().map(|e| json!({"id": e})),
            "productSet": null,
        },
        "quantity": l.quantity,
        "originalPrice": money(l.original_price, currency),
        "price": money(l.price, currency),
        "reconciliation": null,
        "selectedAdditionalServices": [],
        "vouchers": [],
        "tax": null,
        "boughtAt": ts(l.bought_at),
    })
}

// ---------------------------------------------------------------- buyer-side actions

/// Places an order as a buyer: BOUGHT, then FILLED_IN, then READY_FOR_PROCESSING (unless
/// `stop_at`), each with its event. Takes the stock off the offers.
pub fn place(m: &mut Market, default_seller: &str, n: &NewOrder) -> Result<Order, ApiError> {
    if n.lines.is_empty() {
        return Err(ApiError::validation("an order needs at least one line"));
    }
    let seller = n
        .seller_id
        .clone()
        .unwrap_or_else(|| default_seller.to_string());
    let now = m.now();
    let mut lines = Vec::new();
    let mut currency = "PLN".to_string();
    for l in &n.lines {
        let Some(o) = m.offers.get(&l.offer_id) else {
            return Err(ApiError::not_found(
                "NOT_FOUND",
                format!("offer {} not found", l.offer_id),
            ));
        };
        if o.seller_id != seller || o.archived {
            return Err(ApiError::validation(format!(
                "offer {} is not an offer of seller {seller}",
                l.offer_id
            )));
        }
        if l.quantity == 0 || i64::from(l.quantity) > o.available {
            return Err(ApiError::validation(format!(
                "offer {} has {} available, {} asked",
                l.offer_id, o.available, l.quantity
            )));
        }
        let price = match &l.price {
            Some(p) => {
                parse_price(&json!({"amount": p, "currency": o.currency}))
                    .map_err(ApiError::validation)?
                    .0
            }
            None => o.price,
        };
        currency = o.currency.clone();
        lines.push(LineItem {
            id: uuid(),
            offer_id: o.id.clone(),
            offer_name: o.name.clone(),
            external_id: o.external_id.clone(),
            quantity: l.quantity,
            original_price: o.price,
            price,
            bought_at: now,
        });
    }
    for l in &lines {
        if let Some(o) = m.offers.get_mut(&l.offer_id) {
            let left = o.available - i64::from(l.quantity);
            o.sold += i64::from(l.quantity);
            set_stock(o, left, true);
        }
    }
    let delivery_cost = match &n.delivery_cost {
        Some(c) => crate::offers::decimal(c)
            .filter(|d| *d >= Decimal::ZERO)
            .ok_or_else(|| ApiError::validation(format!("delivery_cost '{c}' is not an amount")))?,
        None => Decimal::new(1199, 2),
    };
    let login = n.buyer_login.clone().unwrap_or_else(|| "User_Login".into());
    let first = n.buyer_first_name.clone().unwrap_or_else(|| "Jan".into());
    let last = n
        .buyer_last_name
        .clone()
        .unwrap_or_else(|| "Kowalski".into());
    let company_name = n.invoice_company.as_ref().map(|c| c.name.clone());
    let buyer = json!({
        "id": random_digits(8),
        "email": n.buyer_email.clone().unwrap_or_else(|| format!("{}@allegromail.pl", login.to_lowercase())),
        "login": login,
        "firstName": first,
        "lastName": last,
        "companyName": company_name,
        "guest": n.guest,
        "personalIdentity": null,
        "phoneNumber": "123123123",
        "preferences": {"language": "pl-PL"},
        "address": {"street": "Solna 1", "city": "Poznań", "postCode": "60-166", "countryCode": "PL"},
    });
    let method = n
        .delivery_method
        .clone()
        .unwrap_or_else(|| "Allegro Paczkomaty InPost".into());
    let pickup = method.contains("Paczkomat");
    let delivery = json!({
        "address": {"firstName": first, "lastName": last, "street": "Grunwaldzka 182", "city": "Poznań",
            "zipCode": "60-166", "countryCode": "PL", "companyName": null, "phoneNumber": "123123123",
            "modifiedAt": null},
        "method": {"id": "1fa56f79-4b6a-4821-a6f2-ca9c16d5c925", "name": method},
        "pickupPoint": if pickup { json!({"id": "POZ08A", "name": "Paczkomat POZ08A", "description": "Stacja paliw BP",
            "address": {"street": "Grunwaldzka 108", "zipCode": "60-166", "city": "Poznań", "countryCode": "PL"}}) } else { Value::Null },
        "cost": money(delivery_cost, &currency),
        "time": {"from": ts(now), "to": ts(now + chrono::Duration::days(4)),
            "dispatch": {"from": ts(now), "to": ts(now + chrono::Duration::days(2))}},
        "smart": pickup,
        "cancellation": null,
        "calculatedNumberOfPackages": 1,
    });
    let invoice = match &n.invoice_company {
        Some(c) => json!({
            "required": true,
            "address": {"street": "Grunwaldzka 182", "city": "Poznań", "zipCode": "60-166", "countryCode": "PL",
                "company": {"name": c.name, "ids": [{"type": "PL_NIP", "value": c.nip}], "vatPayerStatus": "ACTIVE", "taxId": c.nip},
                "naturalPerson": null},
            "dueDate": null,
            "features": [],
        }),
        None => json!({"required": false, "address": null, "dueDate": null, "features": []}),
    };
    let order = Order {
        id: uuid(),
        seller_id: seller,
        status: "BOUGHT".into(),
        fulfillment_status: "NEW".into(),
        buyer,
        payment: Payment {
            id: uuid(),
            kind: n.payment_type.clone().unwrap_or_else(|| "ONLINE".into()),
            provider: if n.payment_type.as_deref() == Some("CASH_ON_DELIVERY") {
                "OFFLINE".into()
            } else {
                "PAYU".into()
            },
            finished_at: None,
            paid: None,
        },
        delivery,
        delivery_cost,
        invoice,
        line_items: lines,
        message_to_seller: n.message_to_seller.clone(),
        currency,
        marketplace: "allegro-pl".into(),
        bought_at: now,
        updated_at: now,
        revision: revision(),
        shipments: Vec::new(),
        invoices: Vec::new(),
        fulfillment_history: Vec::new(),
    };
    let id = order.id.clone();
    events::push(m, &order, "BOUGHT", None);
    m.orders.insert(id.clone(), order);
    let stop = n.stop_at.as_deref().unwrap_or("READY_FOR_PROCESSING");
    if !["BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING"].contains(&stop) {
        return Err(ApiError::validation(format!(
            "stop_at '{stop}' is not a stage"
        )));
    }
    if stop != "BOUGHT" {
        advance(m, &id)?;
        if stop == "READY_FOR_PROCESSING" {
            advance(m, &id)?;
        }
    }
    m.orders
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("NOT_FOUND", "order vanished"))
}

fn touch_by_buyer(
    m: &mut Market,
    id: &str,
    f: impl FnOnce(&mut Order, DateTime<Utc>),
) -> Result<Order, ApiError> {
    let now = m.now();
    let o = m
        .orders
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found("NOT_FOUND", format!("order {id} not found")))?;
    f(o, now);
    o.revision = revision();
    o.updated_at = now;
    Ok(o.clone())
}

/// Moves an order to its next stage (BOUGHT → FILLED_IN → READY_FOR_PROCESSING) with its event.
pub fn advance(m: &mut Market, id: &str) -> Result<Order, ApiError> {
    let (next, kind) = match m.orders.get(id).map(|o| o.status.as_str()) {
        Some("BOUGHT") => ("FILLED_IN", "FILLED_IN"),
        Some("FILLED_IN") => ("READY_FOR_PROCESSING", "READY_FOR_PROCESSING"),
        Some(s) => {
            return Err(ApiError::validation(format!(
                "order {id} is {s}; it cannot advance"
            )));
        }
        None => {
            return Err(ApiError::not_found(
                "NOT_FOUND",
                format!("order {id} not found"),
            ));
        }
    };
    let o = touch_by_buyer(m, id, |o, now| {
        o.status = next.into();
        if next == "READY_FOR_PROCESSING" && o.payment.kind != "CASH_ON_DELIVERY" {
            o.payment.finished_at = Some(now);
            o.payment.paid = Some(o.total());
        }
    })?;
    events::push(m, &o, kind, None);
    Ok(o)
}

/// The buyer cancels (BUYER_CANCELLED), or Allegro does (AUTO_CANCELLED).
pub fn cancel(m: &mut Market, id: &str, auto: bool) -> Result<Order, ApiError> {
    let o = touch_by_buyer(m, id, |o, _| o.status = "CANCELLED".into())?;
    events::push(
        m,
        &o,
        if auto {
            "AUTO_CANCELLED"
        } else {
            "BUYER_CANCELLED"
        },
        None,
    );
    Ok(o)
}

/// The buyer changes something (a new message): BUYER_MODIFIED, new revision and updatedAt.
pub fn buyer_modify(m: &mut Market, id: &str, message: &str) -> Result<Order, ApiError> {
    let o = touch_by_buyer(m, id, |o, _| {
        o.message_to_seller = Some(message.to_string())
    })?;
    events::push(m, &o, "BUYER_MODIFIED", None);
    Ok(o)
}

/// Adds a customer return for an order (all its lines).
pub fn add_return(
    m: &mut Market,
    order_id: &str,
    status: &str,
) -> Result<CustomerReturn, ApiError> {
    let o = m
        .orders
        .get(order_id)
        .ok_or_else(|| ApiError::not_found("NOT_FOUND", format!("order {order_id} not found")))?;
    let r = CustomerReturn {
        id: uuid(),
        created_at: m.now(),
        reference_number: random_digits(8).to_string(),
        order_id: o.id.clone(),
        seller_id: o.seller_id.clone(),
        buyer_email: o
            .buyer
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or("")
            .into(),
        buyer_login: o
            .buyer
            .get("login")
            .and_then(Value::as_str)
            .unwrap_or("")
            .into(),
        items: o
            .line_items
            .iter()
            .map(|l| {
                json!({"offerId": l.offer_id, "quantity": l.quantity, "name": l.offer_name,
                    "price": money(l.price, &o.currency),
                    "reason": {"type": "DONT_LIKE_IT", "userComment": null}})
            })
            .collect(),
        status: status.to_string(),
        marketplace: o.marketplace.clone(),
    };
    m.returns.push(r.clone());
    Ok(r)
}

// ---------------------------------------------------------------- API handlers

fn form_not_found(id: &str) -> ApiError {
    ApiError::not_found("NOT_FOUND", format!("Checkout form {id} not found"))
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if is_uuid(id) {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "Checkout form id '{id}' is not a valid UUID"
        )))
    }
}

fn own_order<'a>(m: &'a mut Market, id: &str, seller: &str) -> Result<&'a mut Order, ApiError> {
    check_id(id)?;
    m.orders
        .get_mut(id)
        .filter(|o| o.seller_id == seller)
        .ok_or_else(|| form_not_found(id))
}

fn respond(r: Result<(u16, Value), ApiError>) -> Response {
    match r {
        Ok((204, _)) => StatusCode::NO_CONTENT.into_response(),
        Ok((status, v)) => vnd_json(status, &v),
        Err(e) => e.into_response(),
    }
}

/// `GET /order/checkout-forms/{id}`
pub async fn get_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    respond((|| {
        let seller = seller_of(&caller)?;
        let mut m = shared.st();
        Ok((200, form_json(own_order(&mut m, &id, seller)?)))
    })())
}

fn one_of(p: &Params, name: &str, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let vals = p.all(name);
    if let Some(bad) = vals.iter().find(|v| !allowed.contains(&v.as_str())) {
        return Err(
            ApiError::bad_request(format!("Invalid value '{bad}' of parameter '{name}'"))
                .with_path(name.to_string()),
        );
    }
    Ok(vals)
}

/// `GET /order/checkout-forms`
pub async fn list_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
) -> Response {
    let p = Params::from_query(uri.query());
    respond((|| {
        let seller = seller_of(&caller)?;
        let limit = p.int("limit", 100, 1, 100, 422)?;
        let offset = p.int("offset", 0, 0, i64::MAX as u64, 422)?;
        if offset + limit > 10_000 {
            return Err(ApiError::validation(
                "Offset and limit parameters exceed maximal result size of 10000 items",
            )
            .with_path("/order/checkout-forms")
            .with_user_message(None));
        }
        let statuses = one_of(&p, "status", &ORDER_STATUSES)?;
        let ful = one_of(&p, "fulfillment.status", &FULFILLMENT_STATUSES)?;
        let sent = one_of(
            &p,
            "fulfillment.shipmentSummary.lineItemsSent",
            &["NONE", "SOME", "ALL"],
        )?;
        let sort = p.get("sort").unwrap_or("-lineItems.boughtAt").to_string();
        if ![
            "lineItems.boughtAt",
            "-lineItems.boughtAt",
            "updatedAt",
            "-updatedAt",
        ]
        .contains(&sort.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "Invalid value '{sort}' of parameter 'sort'"
            )));
        }
        let (ugte, ulte) = (p.time("updatedAt.gte")?, p.time("updatedAt.lte")?);
        let (bgte, blte) = (
            p.time("lineItems.boughtAt.gte")?,
            p.time("lineItems.boughtAt.lte")?,
        );
        let login = p.get("buyer.login");
        let payment = p.get("payment.id");
        let market = p.get("marketplace.id");
        let method = p.get("delivery.method.id");
        let m = shared.st();
        let mut found: Vec<&Order> = m
            .orders
            .values()
            .filter(|o| o.seller_id == seller)
            .filter(|o| statuses.is_empty() || statuses.contains(&o.status))
            .filter(|o| ful.is_empty() || ful.contains(&o.fulfillment_status))
            .filter(|o| sent.is_empty() || sent.iter().any(|s| s == o.line_items_sent()))
            .filter(|o| ugte.is_none_or(|t| o.updated_at >= t))
            .filter(|o| ulte.is_none_or(|t| o.updated_at <= t))
            .filter(|o| bgte.is_none_or(|t| o.bought_at >= t))
            .filter(|o| blte.is_none_or(|t| o.bought_at <= t))
            .filter(|o| {
                login.is_none_or(|l| o.buyer.get("login").and_then(Value::as_str) == Some(l))
            })
            .filter(|o| payment.is_none_or(|pid| o.payment.id == pid))
            .filter(|o| market.is_none_or(|mk| o.marketplace == mk))
            .filter(|o| {
                method.is_none_or(|mid| {
                    o.delivery.pointer("/method/id").and_then(Value::as_str) == Some(mid)
                })
            })
            .collect();
        found.sort_by(|a, b| {
            let key = |o: &Order| {
                if sort.ends_with("updatedAt") {
                    o.updated_at
                } else {
                    o.bought_at
                }
            };
            let ord = key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id));
            if sort.starts_with('-') {
                ord.reverse()
            } else {
                ord
            }
        });
        let total = found.len();
        let page: Vec<Value> = found
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(form_json)
            .collect();
        Ok((
            200,
            json!({"checkoutForms": page, "count": page.len(), "totalCount": total}),
        ))
    })())
}

/// `PUT /order/checkout-forms/{id}/fulfillment?checkoutForm.revision=…`
pub async fn fulfillment_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let p = Params::from_query(uri.query());
    respond((|| {
        let seller = seller_of(&caller)?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("Malformed JSON: {e}")))?;
        let mut m = shared.st();
        let now = m.now();
        let conflict_code = m.cfg.revision_conflict_code.clone();
        let o = own_order(&mut m, &id, seller)?;
        let status = v.get("status").and_then(Value::as_str).unwrap_or("");
        if status == "RETURNED" {
            return Err(
                ApiError::validation("Status RETURNED cannot be set by the seller")
                    .with_path("status"),
            );
        }
        if !FULFILLMENT_STATUSES.contains(&status) {
            return Err(
                ApiError::validation(format!("Unknown fulfillment status '{status}'"))
                    .with_path("status"),
            );
        }
        let sent = p.get("checkoutForm.revision").map(str::to_string);
        if let Some(r) = &sent
            && r != &o.revision
        {
            return Err(ApiError::new(
                409,
                &conflict_code,
                "Conflict. Provided revision is outdated.",
            ));
        }
        if o.fulfillment_status != status {
            o.fulfillment_status = status.to_string();
            o.revision = revision();
            // updatedAt stays: it changes only on buyer actions.
            o.fulfillment_history.push(FulfillmentChange {
                status: status.to_string(),
                at: now,
                revision_sent: sent,
                revision_after: o.revision.clone(),
            });
            let snapshot = o.clone();
            events::push(&mut m, &snapshot, "FULFILLMENT_STATUS_CHANGED", None);
        }
        Ok((204, Value::Null))
    })())
}

/// `GET /order/carriers` (application or user token).
pub async fn carriers_handler() -> Response {
    let list: Vec<Value> = CARRIERS
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    vnd_json(200, &json!({ "carriers": list }))
}

fn shipment_json(s: &Shipment) -> Value {
    json!({
        "id": s.id,
        "waybill": s.waybill,
        "carrierId": s.carrier_id,
        "carrierName": s.carrier_name,
        "lineItems": s.line_items.iter().map(|l| json!({"id": l})).collect::<Vec<_>>(),
        "createdAt": ts(s.created_at),
    })
}

/// `POST /order/checkout-forms/{id}/shipments`
pub async fn shipment_create_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond((|| {
        let seller = seller_of(&caller)?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("Malformed JSON: {e}")))?;
        let mut m = shared.st();
        let now = m.now();
        let sets_sent = m.cfg.shipment_sets_sent;
        let o = own_order(&mut m, &id, seller)?;
        let carrier = v.get("carrierId").and_then(Value::as_str).unwrap_or("");
        if carrier.is_empty() {
            return Err(ApiError::bad_request("carrierId is required").with_path("carrierId"));
        }
        if !CARRIERS.iter().any(|(c, _)| *c == carrier) {
            return Err(
                ApiError::bad_request(format!("Unknown carrier '{carrier}'"))
                    .with_path("carrierId"),
            );
        }
        let waybill = v
            .get("waybill")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        if waybill.is_empty() || waybill.chars().count() > 64 {
            return Err(ApiError::bad_request(
                "waybill is required and must have at most 64 characters",
            )
            .with_path("waybill"));
        }
        let carrier_name = v
            .get("carrierName")
            .and_then(Value::as_str)
            .map(str::to_string);
        if carrier_name
            .as_ref()
            .is_some_and(|n| n.chars().count() > 30)
        {
            return Err(
                ApiError::bad_request("carrierName must have at most 30 characters")
                    .with_path("carrierName"),
            );
        }
        if carrier == "OTHER" && carrier_name.as_deref().is_none_or(str::is_empty) {
            return Err(
                ApiError::bad_request("carrierName is required for carrierId OTHER")
                    .with_path("carrierName"),
            );
        }
        let asked: Vec<String> = v
            .get("lineItems")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(bad) = asked
            .iter()
            .find(|l| !o.line_items.iter().any(|li| &li.id == *l))
        {
            return Err(ApiError::validation(format!(
                "Line item {bad} does not belong to checkout form {id}"
            ))
            .with_path("lineItems"));
        }
        let lines = if asked.is_empty() {
            o.line_items.iter().map(|l| l.id.clone()).collect()
        } else {
            asked
        };
        let s = Shipment {
            id: STANDARD.encode(format!("{carrier}:{}:{}", waybill, random_digits(6))),
            waybill: waybill.to_string(),
            carrier_id: carrier.to_string(),
            carrier_name: if carrier == "OTHER" {
                carrier_name
            } else {
                None
            },
            line_items: lines,
            created_at: now,
        };
        o.shipments.push(s.clone());
        if sets_sent && o.fulfillment_status != "SENT" {
            o.fulfillment_status = "SENT".into();
            o.revision = revision();
            let snapshot = o.clone();
            events::push(&mut m, &snapshot, "FULFILLMENT_STATUS_CHANGED", None);
        }
        Ok((201, shipment_json(&s)))
    })())
}

/// `GET /order/checkout-forms/{id}/shipments`
pub async fn shipment_list_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    respond((|| {
        let seller = seller_of(&caller)?;
        let mut m = shared.st();
        let o = own_order(&mut m, &id, seller)?;
        let list: Vec<Value> = o.shipments.iter().map(shipment_json).collect();
        Ok((200, json!({ "shipments": list })))
    })())
}

fn invoice_json(i: &Invoice) -> Value {
    json!({
        "id": i.id,
        "invoiceNumber": i.invoice_number,
        "createdAt": ts(i.created_at),
        "file": {
            "name": i.file_name,
            "uploadedAt": i.uploaded_at.map(ts),
            "securityVerification": i.uploaded_at.map(|_| json!({"status": "ACCEPTED", "passedAt": null})),
        },
    })
}

/// Invoices a seller may add to one order.
pub const MAX_INVOICES_PER_ORDER: usize = 10;

/// `POST /order/checkout-forms/{id}/invoices`
pub async fn invoice_create_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond((|| {
        let seller = seller_of(&caller)?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("Malformed JSON: {e}")))?;
        let mut m = shared.st();
        let now = m.now();
        let o = own_order(&mut m, &id, seller)?;
        let name = v
            .pointer("/file/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        if name.is_empty() {
            return Err(ApiError::validation("file.name is required").with_path("file.name"));
        }
        // Up to 10 invoices per order (corrections included) since
        // 2025-08-14 (allegro-api#11996; 5 from 2021, #4614); an order paid
        // with Extended Payment Terms still takes 1. Allegro's answer past
        // the limit is not documented: a 409 here (*unverified*).
        let limit = if o.payment.kind == "EXTENDED_TERM" {
            1
        } else {
            MAX_INVOICES_PER_ORDER
        };
        if o.invoices.len() >= limit {
            return Err(ApiError::new(
                409,
                "INVOICE_LIMIT_EXCEEDED",
                format!("The order already has {limit} invoices added by the seller").as_str(),
            ));
        }
        let inv = Invoice {
            id: uuid(),
            invoice_number: v
                .get("invoiceNumber")
                .and_then(Value::as_str)
                .map(str::to_string),
            file_name: name.to_string(),
            created_at: now,
            file_size: None,
            uploaded_at: None,
        };
        o.invoices.push(inv.clone());
        Ok((201, json!({"id": inv.id})))
    })())
}

/// `PUT /order/checkout-forms/{id}/invoices/{invoiceId}/file` (raw PDF bytes).
pub async fn invoice_file_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((id, invoice_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = (|| {
        let seller = seller_of(&caller)?;
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct
            .trim()
            .to_ascii_lowercase()
            .starts_with("application/pdf")
        {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaTypeException",
                format!("Content type '{ct}' not supported; send application/pdf"),
            ));
        }
        let mut m = shared.st();
        let now = m.now();
        let max = m.cfg.invoice_max_bytes;
        let o = own_order(&mut m, &id, seller)?;
        let inv = o
            .invoices
            .iter_mut()
            .find(|i| i.id == invoice_id)
            .ok_or_else(|| ApiError::not_found("NOT_FOUND", "Invoice not found"))?;
        if inv.uploaded_at.is_some() {
            return Err(ApiError::new(
                409,
                "INVOICE_FILE_ALREADY_UPLOADED",
                "The invoice file has already been uploaded",
            ));
        }
        if body.is_empty() {
            return Err(ApiError::validation("The invoice file is empty"));
        }
        if body.len() > max {
            return Err(ApiError::new(
                413,
                "PAYLOAD_TOO_LARGE",
                format!("The invoice file is larger than {max} bytes"),
            ));
        }
        inv.file_size = Some(body.len());
        inv.uploaded_at = Some(now);
        Ok(())
    })();
    match r {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /order/checkout-forms/{id}/invoices`
pub async fn invoice_list_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    respond((|| {
        let seller = seller_of(&caller)?;
        let mut m = shared.st();
        let o = own_order(&mut m, &id, seller)?;
        let list: Vec<Value> = o.invoices.iter().map(invoice_json).collect();
        Ok((
            200,
            json!({"orderMode": "REGULAR", "invoices": list, "hasExternalInvoices": false}),
        ))
    })())
}

fn return_json(r: &CustomerReturn) -> Value {
    json!({
        "id": r.id,
        "createdAt": ts(r.created_at),
        "referenceNumber": r.reference_number,
        "orderId": r.order_id,
        "buyer": {"email": r.buyer_email, "login": r.buyer_login},
        "items": r.items,
        "parcels": [],
        "refund": null,
        "rejection": null,
        "marketplaceId": r.marketplace,
        "status": r.status,
    })
}

/// `GET /order/customer-returns` (BETA media type).
pub async fn returns_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
) -> Response {
    let p = Params::from_query(uri.query());
    let r = (|| {
        let seller = seller_of(&caller)?;
        let limit = p.int("limit", 100, 1, 1000, 422)?;
        let offset = p.int("offset", 0, 0, i64::MAX as u64, 422)?;
        let ids = p.all("customerReturnId");
        let orders = p.all("orderId");
        let statuses = p.all("status");
        let login = p.get("buyer.login");
        let created_from = match p.get("createdAt.gte") {
            Some(t) => Some(
                DateTime::parse_from_rfc3339(t)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::validation(format!("createdAt.gte {t:?} is not a time"))
                    })?,
            ),
            None => None,
        };
        let m = shared.st();
        // `from`: the returns created after that one (the list is in
        // creation order).
        let after = match p.get("from") {
            Some(id) => m
                .returns
                .iter()
                .position(|r| r.id == id)
                .map(|at| at + 1)
                .ok_or_else(|| ApiError::validation(format!("from {id:?} is not a return")))?,
            None => 0,
        };
        let list: Vec<Value> = m
            .returns
            .iter()
            .skip(after)
            .filter(|r| r.seller_id == seller)
            .filter(|r| created_from.is_none_or(|t| r.created_at >= t))
            .filter(|r| ids.is_empty() || ids.contains(&r.id))
            .filter(|r| orders.is_empty() || orders.contains(&r.order_id))
            .filter(|r| statuses.is_empty() || statuses.contains(&r.status))
            .filter(|r| login.is_none_or(|l| r.buyer_login == l))
            .skip(offset as usize)
            .take(limit as usize)
            .map(return_json)
            .collect();
        Ok::<Value, ApiError>(json!({"count": list.len(), "customerReturns": list}))
    })();
    match r {
        Ok(v) => typed_json(200, &v, BETA),
        Err(e) => {
            let mut resp = e.into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(BETA));
            resp
        }
    }
}
