//! Orders (docs §6): `/orders`, `/order-products`, `/statuses`, `/parcels`, `object-mtime`,
//! plus the buyer and panel actions the stand-in offers to tests (place an order, change its
//! status, record a payment).
//!
//! - Orders are read by keyset (`filters={"order_id":{">":N}}&order=order_id ASC`); rows carry
//!   no `edit_date`; `GET /object-mtime/order/{id}` answers `{"date":<unix>}` (plural → 500).
//! - `POST /orders` needs `email, status_id, payment_id, shipping_id, user_id, shipping_tax_id`;
//!   `user_id` must exist (`0` refused); `code` is not unique. Lines come by
//!   `POST /order-products`, which takes stock off the line's `stock_id`
//!   (`shopping_update_stock_on_buy`).
//! - `PUT /orders/{id}` changes only the fields it names (every field of the SDK's
//!   `OrderUpdate` is optional) → `1`: `status_id` (unknown → 400), `paid`, `shipping_cost`,
//!   `email`, the addresses, `code`, `pickup_point` and the three notes, `notes` (the buyer's
//!   remark at checkout), `notes_priv` (the staff's private notes) and `notes_pub` (the staff's
//!   notes the buyer is shown, *unverified* where) [SDK `Types/Order.php`]. A note that is not
//!   text → 400; no length limit is documented ([`crate::Config::notes_max_chars`] cuts
//!   silently when set). Fields it does not know are ignored (*unverified*: what Shoper answers
//!   to them is not documented). Any change sends `order.edit`.
//! - `POST /parcels` ships what is left (or the given `products[]`); a sent parcel moves the
//!   order to `parcel_send_status_id`; nothing left → 400 `All products has been already sent`;
//!   a sent parcel only takes a new `shipping_code`.
//! - Webhooks: `order.create` on creation, `order.edit` on any change, `order.status` on a status
//!   change (plus `order.edit` when [`crate::Config::status_change_sends_edit`]), `order.paid`
//!   when an order becomes paid, `order.delete`; `parcel.create` / `parcel.dispatch`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::catalog::{de_decimal, de_decimal_opt, effective_price, stock_by_code, tax};
use crate::error::{ApiError, Invalid};
use crate::query::{self, Page};
use crate::state::State;
use crate::util::{Params, bool_of, decimal_of, flag, money, qty, string_of, u64_of};

/// Payment methods: (payment_id, name, cash on delivery).
pub const PAYMENTS: [(u64, &str, bool); 3] = [
    (1, "Przelew bankowy", false),
    (2, "Płatność przy odbiorze", true),
    (3, "Przelewy24", false),
];

/// Shipping methods: (shipping_id, name).
pub const SHIPPINGS: [(u64, &str); 3] = [
    (1, "Odbiór osobisty"),
    (8, "Kurier DPD"),
    (9, "InPost Paczkomaty 24/7"),
];

/// An order status (`GET /statuses`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub status_id: u64,
    pub name: String,
    /// 1 new, 2 opened / in progress, 3 closed / shipped, 4 not completed (cancelled, rejected,
    /// returned).
    pub kind: u8,
    pub active: bool,
    pub default: bool,
    pub color: String,
    pub email_change: bool,
    pub order: u32,
}

/// The 11 statuses of a fresh shop (ids and names illustrative; types per the docs).
pub fn default_statuses() -> BTreeMap<u64, Status> {
    let rows: [(u64, &str, u8, &str); 11] = [
        (1, "Złożone", 1, "#3b8ad9"),
        (2, "Przyjęte do realizacji", 2, "#f0ad4e"),
        (3, "Oczekiwanie na dostawę", 2, "#f0ad4e"),
        (4, "W trakcie kompletowania", 2, "#f0ad4e"),
        (5, "Oczekiwanie na płatność", 2, "#f0ad4e"),
        (6, "Gotowe do wysłania", 2, "#5bc0de"),
        (7, "Przesyłka wysłana", 3, "#5cb85c"),
        (8, "Anulowane", 4, "#d9534f"),
        (9, "Odrzucone", 4, "#d9534f"),
        (10, "Zwrócone", 4, "#d9534f"),
        (11, "Przesyłka odebrana", 3, "#5cb85c"),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, (id, name, kind, color))| {
            (
                *id,
                Status {
                    status_id: *id,
                    name: (*name).into(),
                    kind: *kind,
                    active: true,
                    default: *id == 1,
                    color: (*color).into(),
                    email_change: false,
                    order: i as u32 + 1,
                },
            )
        })
        .collect()
}

/// A billing or delivery address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Address {
    pub firstname: String,
    pub lastname: String,
    pub company: String,
    pub street1: String,
    pub street2: String,
    pub city: String,
    pub postcode: String,
    pub state: String,
    pub country: String,
    pub country_code: String,
    pub phone: String,
    /// NIP.
    pub tax_identification_number: String,
    pub pesel: String,
}

impl Address {
    /// A Polish address for tests.
    pub fn sample() -> Self {
        Address {
            firstname: "Anna".into(),
            lastname: "Kowalska".into(),
            company: String::new(),
            street1: "Warszawska 1/2".into(),
            street2: String::new(),
            city: "Kraków".into(),
            postcode: "31-345".into(),
            state: String::new(),
            country: "Polska".into(),
            country_code: "PL".into(),
            phone: "500600700".into(),
            tax_identification_number: String::new(),
            pesel: String::new(),
        }
    }
}

/// An order header (lines live in `/order-products`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: u64,
    pub user_id: Option<u64>,
    pub date: DateTime<Utc>,
    pub status_date: DateTime<Utc>,
    pub status_id: u64,
    pub paid: Decimal,
    pub shipping_id: u64,
    pub shipping_cost: Decimal,
    pub shipping_tax_id: u64,
    pub payment_id: u64,
    pub currency_id: u64,
    pub email: String,
    pub notes: String,
    pub notes_priv: String,
    pub notes_pub: String,
    pub code: String,
    /// 0 shop, 4 webapi, 5 panel, ...
    pub origin: u32,
    pub ip_address: String,
    pub pickup_point: String,
    pub billing_address: Address,
    pub delivery_address: Address,
    /// Last change (`object-mtime`).
    pub mtime: DateTime<Utc>,
}

/// An order line (`/order-products`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub id: u64,
    pub order_id: u64,
    /// 0 = not in the catalogue.
    pub product_id: u64,
    pub stock_id: u64,
    /// Gross unit price.
    pub price: Decimal,
    pub discount_perc: Decimal,
    pub quantity: Decimal,
    pub name: String,
    pub option: String,
    pub code: String,
    pub pkwiu: String,
    /// The tax NAME (`23%`, `zw.`).
    pub tax: String,
    /// The tax RATE in % (`23`).
    pub tax_value: Decimal,
    pub unit: String,
    pub weight: Decimal,
}

/// A parcel (`/parcels`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parcel {
    pub parcel_id: u64,
    pub order_id: u64,
    pub shipping_id: u64,
    pub shipping_code: String,
    pub sent: bool,
    pub send_date: Option<DateTime<Utc>>,
    /// (order_product_id, quantity)
    pub products: Vec<(u64, Decimal)>,
}

fn default_one() -> Decimal {
    Decimal::ONE
}

/// One line of a buyer's order: a stock by its code (SKU).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewLine {
    pub code: String,
    #[serde(default = "default_one", deserialize_with = "de_decimal")]
    pub quantity: Decimal,
    /// Unit price; None: the stock's current price.
    #[serde(default, deserialize_with = "de_decimal_opt")]
    pub price: Option<Decimal>,
}

fn default_email() -> String {
    "kupujacy@example.com".into()
}
fn default_shipping() -> u64 {
    8
}
fn default_payment() -> u64 {
    1
}
fn default_user() -> Option<u64> {
    Some(1)
}

/// An order placed as a buyer in the shop front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOrder {
    #[serde(default = "default_email")]
    pub email: String,
    pub lines: Vec<NewLine>,
    #[serde(default = "default_shipping")]
    pub shipping_id: u64,
    #[serde(default, deserialize_with = "de_decimal")]
    pub shipping_cost: Decimal,
    /// 1 transfer, 2 cash on delivery, 3 online.
    #[serde(default = "default_payment")]
    pub payment_id: u64,
    /// Paid in full at once.
    #[serde(default)]
    pub paid: bool,
    /// A customer account (1 and 2 exist); None: a guest.
    #[serde(default = "default_user")]
    pub user_id: Option<u64>,
    #[serde(default)]
    pub billing_address: Option<Address>,
    #[serde(default)]
    pub delivery_address: Option<Address>,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub pickup_point: String,
    /// Starting status; None: the default status (type 1).
    #[serde(default)]
    pub status_id: Option<u64>,
}

impl NewOrder {
    /// An order for `email` without lines yet.
    pub fn new(email: &str) -> Self {
        NewOrder {
            email: email.into(),
            lines: Vec::new(),
            shipping_id: 8,
            shipping_cost: Decimal::ZERO,
            payment_id: 1,
            paid: false,
            user_id: Some(1),
            billing_address: None,
            delivery_address: None,
            notes: String::new(),
            pickup_point: String::new(),
            status_id: None,
        }
    }

    /// Adds `quantity` of the stock whose code is `code` at its current price.
    pub fn line(mut self, code: &str, quantity: i64) -> Self {
        self.lines.push(NewLine {
            code: code.into(),
            quantity: Decimal::from(quantity),
            price: None,
        });
        self
    }

    pub fn paid(mut self) -> Self {
        self.paid = true;
        self
    }

    pub fn shipping_cost(mut self, cost: Decimal) -> Self {
        self.shipping_cost = cost;
        self
    }
}

// ---------------------------------------------------------------- sums and shapes

fn lines_of(m: &State, order_id: u64) -> Vec<&OrderLine> {
    m.lines
        .values()
        .filter(|l| l.order_id == order_id)
        .collect()
}

fn line_total(l: &OrderLine) -> Decimal {
    let gross = l.price * l.quantity;
    (gross - gross * l.discount_perc / Decimal::ONE_HUNDRED).round_dp(2)
}

/// Lines plus shipping.
pub fn order_sum(m: &State, o: &Order) -> Decimal {
    lines_of(m, o.order_id)
        .into_iter()
        .map(line_total)
        .sum::<Decimal>()
        + o.shipping_cost
}

fn status_json(s: &Status) -> Value {
    json!({
        "status_id": s.status_id.to_string(),
        "active": flag(s.active),
        "default": flag(s.default),
        "color": s.color,
        "type": s.kind.to_string(),
        "email_change": flag(s.email_change),
        "order": s.order.to_string(),
        "translations": {
            "pl_PL": {
                "trans_id": s.status_id.to_string(),
                "status_id": s.status_id.to_string(),
                "name": s.name,
                "message": "",
                "lang_id": "1",
            }
        }
    })
}

fn address_json(a: &Address, order_id: u64, kind: u8) -> Value {
    json!({
        "address_id": (order_id * 2 - (2 - kind as u64)).to_string(),
        "order_id": order_id.to_string(),
        "type": kind.to_string(),
        "firstname": a.firstname,
        "lastname": a.lastname,
        "company": a.company,
        "tax_identification_number": a.tax_identification_number,
        "pesel": a.pesel,
        "city": a.city,
        "postcode": a.postcode,
        "street1": a.street1,
        "street2": a.street2,
        "state": a.state,
        "country": a.country,
        "country_code": a.country_code,
        "phone": a.phone,
    })
}

/// An order line as served.
pub fn line_json(l: &OrderLine) -> Value {
    json!({
        "id": l.id.to_string(),
        "order_id": l.order_id.to_string(),
        "product_id": l.product_id.to_string(),
        "stock_id": l.stock_id.to_string(),
        "price": money(l.price),
        "discount_perc": money(l.discount_perc),
        "quantity": qty(l.quantity),
        "delivery_time": "0",
        "delivery_time_hours": null,
        "name": l.name,
        "code": l.code,
        "pkwiu": l.pkwiu,
        "tax": l.tax,
        "tax_value": qty(l.tax_value),
        "unit": l.unit,
        "option": l.option,
        "unit_fp": "0",
        "unit_id": "1",
        "weight": money(l.weight),
        "type": "0",
        "children": [],
        "text_options": [],
        "file_options": [],
        "loyalty": null,
        "warehouses": {},
    })
}

/// An order as `GET /orders` serves it; `with_products` adds `products[]`, `payment{}` and
/// `shipping{}` as webhook bodies carry them.
pub fn order_json(m: &State, o: &Order, with_products: bool) -> Value {
    let sum = order_sum(m, o);
    let (shipping_tax_name, shipping_tax_value) = tax(o.shipping_tax_id)
        .map(|(n, v)| (n.to_string(), qty(v)))
        .unwrap_or_default();
    let cod = PAYMENTS
        .iter()
        .any(|(id, _, cod)| *id == o.payment_id && *cod);
    let lines = lines_of(m, o.order_id);
    let total_parcels = m
        .parcels
        .values()
        .filter(|p| p.order_id == o.order_id)
        .count();
    let mut v = json!({
        "order_id": o.order_id.to_string(),
        "user_id": o.user_id.map(|u| u.to_string()),
        "date": m.local(o.date),
        "status_date": m.local(o.status_date),
        "confirm_date": m.local(o.date),
        "status_id": o.status_id.to_string(),
        "status": m.statuses.get(&o.status_id).map(status_json),
        "sum": money(sum),
        "paid": money(o.paid),
        "is_paid": o.paid >= sum,
        "is_underpayment": flag(o.paid > Decimal::ZERO && o.paid < sum),
        "is_overpayment": flag(o.paid > sum),
        "is_cash_on_delivery": cod,
        "payment_id": o.payment_id.to_string(),
        "shipping_id": o.shipping_id.to_string(),
        "shipping_cost": money(o.shipping_cost),
        "shipping_tax_id": o.shipping_tax_id.to_string(),
        "shipping_tax_value": shipping_tax_value,
        "shipping_tax_name": shipping_tax_name,
        "currency_id": o.currency_id.to_string(),
        "currency_rate": "1.0000",
        "email": o.email,
        "delivery_email": o.email,
        "code": o.code,
        "notes": o.notes,
        "notes_priv": o.notes_priv,
        "notes_pub": o.notes_pub,
        "origin": o.origin.to_string(),
        "lang_id": "1",
        "ip_address": o.ip_address,
        "pickup_point": o.pickup_point,
        "pickup_point_data": null,
        "promo_code": "",
        "discount_client": "0.00",
        "discount_group": "0.00",
        "discount_levels": "0.00",
        "discount_code": "0.00",
        "total_products": lines.len().to_string(),
        "total_parcels": total_parcels.to_string(),
        "vat_eu": false,
        "order_url": format!("/panel/orders/view/{}", o.order_id),
        "payment_url": null,
        "additional_fields": [],
        "billing_address": address_json(&o.billing_address, o.order_id, 1),
        "delivery_address": address_json(&o.delivery_address, o.order_id, 2),
    });
    if with_products && let Value::Object(map) = &mut v {
        map.insert(
            "products".into(),
            Value::Array(lines.into_iter().map(line_json).collect()),
        );
        let pay = PAYMENTS
            .iter()
            .find(|(id, _, _)| *id == o.payment_id)
            .map(|(_, n, _)| *n)
            .unwrap_or("");
        map.insert(
            "payment".into(),
            json!({"payment_id": o.payment_id.to_string(), "name": pay}),
        );
        let ship = SHIPPINGS
            .iter()
            .find(|(id, _)| *id == o.shipping_id)
            .map(|(_, n)| *n)
            .unwrap_or("");
        map.insert(
            "shipping".into(),
            json!({"shipping_id": o.shipping_id.to_string(), "name": ship, "cost": money(o.shipping_cost)}),
        );
    }
    v
}

fn parcel_json(m: &State, p: &Parcel) -> Value {
    let addr = m
        .orders
        .get(&p.order_id)
        .map(|o| address_json(&o.delivery_address, o.order_id, 2))
        .unwrap_or(Value::Null);
    json!({
        "parcel_id": p.parcel_id.to_string(),
        "order_id": p.order_id.to_string(),
        "shipping_id": p.shipping_id.to_string(),
        "shipping_code": p.shipping_code,
        "sent": flag(p.sent),
        "send_date": p.send_date.map(|d| m.local(d)),
        "online": "0",
        "weight": "0.00",
        "cod": null,
        "insurance": null,
        "products": p.products.iter().map(|(id, q)| json!({"order_product_id": id.to_string(), "quantity": qty(*q)})).collect::<Vec<_>>(),
        "delivery_address": addr,
    })
}

// ---------------------------------------------------------------- events

fn emit_order(m: &mut State, order_id: u64, events: &[&str]) {
    let now = m.now();
    if let Some(o) = m.orders.get_mut(&order_id) {
        o.mtime = now;
    }
    let Some(o) = m.orders.get(&order_id) else {
        return;
    };
    let body = order_json(m, o, true);
    for e in events {
        m.emit(e, body.clone());
    }
}

fn is_paid(m: &State, order_id: u64) -> bool {
    m.orders
        .get(&order_id)
        .is_some_and(|o| o.paid >= order_sum(m, o) && order_sum(m, o) > Decimal::ZERO)
}

/// Events for a change: `order.edit`, plus `order.status` on a status change (and then
/// `order.edit` only with `status_change_sends_edit`), plus `order.paid` when it became paid.
fn change_events(m: &State, status_changed: bool, became_paid: bool) -> Vec<&'static str> {
    let mut ev = Vec::new();
    if status_changed {
        ev.push("order.status");
        if m.cfg.status_change_sends_edit {
            ev.push("order.edit");
        }
    } else {
        ev.push("order.edit");
    }
    if became_paid {
        ev.push("order.paid");
    }
    ev
}

// ---------------------------------------------------------------- buyer and panel actions

fn default_status(m: &State) -> u64 {
    m.statuses
        .values()
        .find(|s| s.default)
        .or_else(|| m.statuses.values().find(|s| s.kind == 1))
        .map(|s| s.status_id)
        .unwrap_or(1)
}

/// Takes `qty` off a stock (as the shop does on a sale).
fn take_stock(m: &mut State, stock_id: u64, quantity: Decimal) {
    if !m.cfg.shopping_update_stock_on_buy {
        return;
    }
    let allow = m.cfg.allow_negative_stock;
    if let Some(s) = m.stocks.get_mut(&stock_id) {
        let next = s.stock - quantity;
        s.stock = if allow { next } else { next.max(Decimal::ZERO) };
        s.sold += quantity;
    }
}

fn make_line(
    m: &mut State,
    order_id: u64,
    stock_id: u64,
    quantity: Decimal,
    price: Option<Decimal>,
) -> OrderLine {
    let s = m.stocks.get(&stock_id).cloned();
    let p = s
        .as_ref()
        .and_then(|s| m.products.get(&s.product_id))
        .cloned();
    let (tax_name, tax_value) = p
        .as_ref()
        .and_then(|p| tax(p.tax_id))
        .map(|(n, v)| (n.to_string(), v))
        .unwrap_or(("23%".into(), Decimal::from(23)));
    let unit_price = price.unwrap_or_else(|| {
        s.as_ref()
            .map(|s| effective_price(m, s))
            .unwrap_or_default()
    });
    let id = m.next_line_id;
    m.next_line_id += 1;
    OrderLine {
        id,
        order_id,
        product_id: s.as_ref().map(|s| s.product_id).unwrap_or(0),
        stock_id,
        price: unit_price.round_dp(2),
        discount_perc: Decimal::ZERO,
        quantity,
        name: p.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
        option: s
            .as_ref()
            .map(|s| s.option_name.clone())
            .unwrap_or_default(),
        code: s.as_ref().map(|s| s.code.clone()).unwrap_or_default(),
        pkwiu: p.as_ref().map(|p| p.pkwiu.clone()).unwrap_or_default(),
        tax: tax_name,
        tax_value,
        unit: "szt.".into(),
        weight: s.as_ref().map(|s| s.weight).unwrap_or_default(),
    }
}

/// A buyer places an order in the shop front: stock is taken off, `order.create` is sent.
/// Refused when a code is unknown, a stock is inactive or too low, or a reference is wrong.
pub fn place(m: &mut State, n: &NewOrder) -> Result<Order, ApiError> {
    let mut inv = Invalid::new();
    if n.lines.is_empty() {
        inv.required("products");
    }
    let mut picked: Vec<(u64, Decimal, Option<Decimal>)> = Vec::new();
    for l in &n.lines {
        match stock_by_code(m, &l.code) {
            None => inv.missing_ref("code", &l.code),
            Some(s) if !s.active => {
                inv.field("code", format!("Produkt '{}' jest niedostępny", l.code))
            }
            Some(_) if l.quantity <= Decimal::ZERO => {
                inv.field("quantity", "Wartość musi być większa od 0")
            }
            Some(s)
                if m.cfg.shopping_update_stock_on_buy
                    && !m.cfg.allow_negative_stock
                    && s.stock < l.quantity =>
            {
                inv.field(
                    "quantity",
                    format!(
                        "Brak wystarczającej ilości produktu '{}' w magazynie",
                        l.code
                    ),
                )
            }
            Some(s) => picked.push((s.stock_id, l.quantity, l.price)),
        }
    }
    check_refs(
        m,
        n.user_id,
        n.payment_id,
        n.shipping_id,
        n.status_id,
        &mut inv,
    );
    inv.finish()?;
    let now = m.now();
    let id = m.next_order_id;
    m.next_order_id += 1;
    let billing = n.billing_address.clone().unwrap_or_else(Address::sample);
    let order = Order {
        order_id: id,
        user_id: n.user_id,
        date: now,
        status_date: now,
        status_id: n.status_id.unwrap_or_else(|| default_status(m)),
        paid: Decimal::ZERO,
        shipping_id: n.shipping_id,
        shipping_cost: n.shipping_cost.round_dp(2),
        shipping_tax_id: 1,
        payment_id: n.payment_id,
        currency_id: 1,
        email: n.email.clone(),
        notes: n.notes.clone(),
        notes_priv: String::new(),
        notes_pub: String::new(),
        code: format!("{:08x}", id.wrapping_mul(2_654_435_761)),
        origin: 0,
        ip_address: "127.0.0.1".into(),
        pickup_point: n.pickup_point.clone(),
        delivery_address: n
            .delivery_address
            .clone()
            .unwrap_or_else(|| billing.clone()),
        billing_address: billing,
        mtime: now,
    };
    m.orders.insert(id, order);
    for (stock_id, quantity, price) in picked {
        let line = make_line(m, id, stock_id, quantity, price);
        take_stock(m, stock_id, quantity);
        m.lines.insert(line.id, line);
    }
    if n.paid {
        let sum = m
            .orders
            .get(&id)
            .map(|o| order_sum(m, o))
            .unwrap_or_default();
        if let Some(o) = m.orders.get_mut(&id) {
            o.paid = sum;
        }
    }
    emit_order(m, id, &["order.create"]);
    m.orders.get(&id).cloned().ok_or_else(ApiError::not_found)
}

fn check_refs(
    m: &State,
    user_id: Option<u64>,
    payment_id: u64,
    shipping_id: u64,
    status_id: Option<u64>,
    inv: &mut Invalid,
) {
    if let Some(u) = user_id
        && !m.customers.contains(&u)
    {
        inv.missing_ref("user_id", u);
    }
    if !PAYMENTS.iter().any(|(id, _, _)| *id == payment_id) {
        inv.missing_ref("payment_id", payment_id);
    }
    if !SHIPPINGS.iter().any(|(id, _)| *id == shipping_id) {
        inv.missing_ref("shipping_id", shipping_id);
    }
    if let Some(s) = status_id
        && !m.statuses.contains_key(&s)
    {
        inv.missing_ref("status_id", s);
    }
}

/// Changes an order's status (as the panel or the API does): `status_date` moves, webhooks go.
pub fn set_status(m: &mut State, order_id: u64, status_id: u64) -> Result<Order, ApiError> {
    if !m.orders.contains_key(&order_id) {
        return Err(ApiError::not_found());
    }
    if !m.statuses.contains_key(&status_id) {
        let mut inv = Invalid::new();
        inv.missing_ref("status_id", status_id);
        inv.finish()?;
    }
    let now = m.now();
    let changed = match m.orders.get_mut(&order_id) {
        Some(o) if o.status_id != status_id => {
            o.status_id = status_id;
            o.status_date = now;
            true
        }
        _ => false,
    };
    let ev = change_events(m, changed, false);
    emit_order(m, order_id, &ev);
    m.orders
        .get(&order_id)
        .cloned()
        .ok_or_else(ApiError::not_found)
}

/// Records a payment of the whole sum (`order.paid`).
pub fn mark_paid(m: &mut State, order_id: u64) -> Result<Order, ApiError> {
    let sum = m
        .orders
        .get(&order_id)
        .map(|o| order_sum(m, o))
        .ok_or_else(ApiError::not_found)?;
    let was = is_paid(m, order_id);
    if let Some(o) = m.orders.get_mut(&order_id) {
        o.paid = sum;
    }
    let ev = change_events(m, false, !was);
    emit_order(m, order_id, &ev);
    m.orders
        .get(&order_id)
        .cloned()
        .ok_or_else(ApiError::not_found)
}

/// Changes an order as an admin in the panel would (`order.edit`).
pub fn edit(m: &mut State, order_id: u64, f: impl FnOnce(&mut Order)) -> Result<Order, ApiError> {
    let was_paid = is_paid(m, order_id);
    let before = m
        .orders
        .get(&order_id)
        .map(|o| o.status_id)
        .ok_or_else(ApiError::not_found)?;
    let now = m.now();
    if let Some(o) = m.orders.get_mut(&order_id) {
        f(o);
        o.order_id = order_id;
        if o.status_id != before {
            o.status_date = now;
        }
    }
    let after = m
        .orders
        .get(&order_id)
        .map(|o| o.status_id)
        .unwrap_or(before);
    let paid_now = is_paid(m, order_id);
    let ev = change_events(m, after != before, paid_now && !was_paid);
    emit_order(m, order_id, &ev);
    m.orders
        .get(&order_id)
        .cloned()
        .ok_or_else(ApiError::not_found)
}

// ---------------------------------------------------------------- handlers

fn object(body: Option<&Value>) -> Result<&Map<String, Value>, ApiError> {
    match body {
        Some(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::invalid("Niepoprawny format danych")),
    }
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse().map_err(|_| ApiError::not_found())
}

fn order_fields(m: &State) -> Vec<&'static str> {
    let mut f = vec![
        "order_id",
        "user_id",
        "status_id",
        "email",
        "code",
        "origin",
        "shipping_id",
        "payment_id",
        "sum",
        "paid",
        "is_paid",
    ];
    if m.cfg.date_filters {
        f.extend(["date", "status_date"]);
    }
    f
}

pub fn orders_list(m: &State, params: &Params) -> Result<Page, ApiError> {
    let q = query::parse(params, &m.cfg, &order_fields(m))?;
    let rows = m.orders.values().map(|o| order_json(m, o, false)).collect();
    Ok(query::run(rows, &q, "order_id"))
}

pub fn order_get(m: &State, id: &str) -> Result<Value, ApiError> {
    let o = m
        .orders
        .get(&parse_id(id)?)
        .ok_or_else(ApiError::not_found)?;
    Ok(order_json(m, o, false))
}

fn read_address(v: &Value, into: &mut Address, field: &str, inv: &mut Invalid) {
    let Value::Object(o) = v else {
        inv.field(field, "Niepoprawny format danych");
        return;
    };
    let slots: [(&str, &mut String); 13] = [
        ("firstname", &mut into.firstname),
        ("lastname", &mut into.lastname),
        ("company", &mut into.company),
        ("street1", &mut into.street1),
        ("street2", &mut into.street2),
        ("city", &mut into.city),
        ("postcode", &mut into.postcode),
        ("state", &mut into.state),
        ("country", &mut into.country),
        ("country_code", &mut into.country_code),
        ("phone", &mut into.phone),
        (
            "tax_identification_number",
            &mut into.tax_identification_number,
        ),
        ("pesel", &mut into.pesel),
    ];
    for (k, slot) in slots {
        if let Some(x) = o.get(k).and_then(string_of) {
            *slot = x;
        }
    }
}

fn valid_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((a, b)) => !a.is_empty() && b.contains('.') && !b.starts_with('.') && !s.contains(' '),
        None => false,
    }
}

/// `POST /orders` (origin 4, webapi) → the new id.
pub fn order_post(m: &mut State, body: Option<&Value>) -> Result<Value, ApiError> {
    let o = object(body)?;
    let mut inv = Invalid::new();
    let email = o.get("email").and_then(string_of);
    match &email {
        None => inv.required("email"),
        Some(e) if !valid_email(e) => inv.field("email", "Niepoprawny adres e-mail"),
        _ => {}
    }
    let mut ids = BTreeMap::new();
    for k in [
        "status_id",
        "payment_id",
        "shipping_id",
        "user_id",
        "shipping_tax_id",
    ] {
        match o.get(k) {
            None | Some(Value::Null) => inv.required(k),
            Some(v) => match u64_of(v) {
                Some(x) => {
                    ids.insert(k, x);
                }
                None => inv.missing_ref(k, string_of(v).unwrap_or_default()),
            },
        }
    }
    let get = |k: &str| ids.get(k).copied();
    if let Some(u) = get("user_id")
        && !m.customers.contains(&u)
    {
        inv.missing_ref("user_id", u);
    }
    if let Some(s) = get("status_id")
        && !m.statuses.contains_key(&s)
    {
        inv.missing_ref("status_id", s);
    }
    if let Some(p) = get("payment_id")
        && !PAYMENTS.iter().any(|(id, _, _)| *id == p)
    {
        inv.missing_ref("payment_id", p);
    }
    if let Some(s) = get("shipping_id")
        && !SHIPPINGS.iter().any(|(id, _)| *id == s)
    {
        inv.missing_ref("shipping_id", s);
    }
    if let Some(t) = get("shipping_tax_id")
        && tax(t).is_none()
    {
        inv.missing_ref("shipping_tax_id", t);
    }
    let shipping_cost = match o.get("shipping_cost") {
        None => Decimal::ZERO,
        Some(v) => match decimal_of(v) {
            Some(d) if d >= Decimal::ZERO => d,
            _ => {
                inv.field("shipping_cost", "Wartość nie jest liczbą");
                Decimal::ZERO
            }
        },
    };
    let mut billing = Address::default();
    let mut delivery = Address::default();
    if let Some(v) = o.get("billing_address") {
        read_address(v, &mut billing, "billing_address", &mut inv);
    }
    if let Some(v) = o.get("delivery_address") {
        read_address(v, &mut delivery, "delivery_address", &mut inv);
    }
    inv.finish()?;
    let now = m.now();
    let id = m.next_order_id;
    m.next_order_id += 1;
    let s = |k: &str| o.get(k).and_then(string_of).unwrap_or_default();
    let order = Order {
        order_id: id,
        user_id: get("user_id"),
        date: now,
        status_date: now,
        status_id: get("status_id").unwrap_or(1),
        paid: o.get("paid").and_then(decimal_of).unwrap_or_default(),
        shipping_id: get("shipping_id").unwrap_or(1),
        shipping_cost,
        shipping_tax_id: get("shipping_tax_id").unwrap_or(1),
        payment_id: get("payment_id").unwrap_or(1),
        currency_id: 1,
        email: email.unwrap_or_default(),
        notes: kept_note(s("notes"), m.cfg.notes_max_chars),
        notes_priv: kept_note(s("notes_priv"), m.cfg.notes_max_chars),
        notes_pub: kept_note(s("notes_pub"), m.cfg.notes_max_chars),
        code: s("code"),
        origin: 4,
        ip_address: s("ip_address"),
        pickup_point: s("pickup_point"),
        billing_address: billing,
        delivery_address: delivery,
        mtime: now,
    };
    m.orders.insert(id, order);
    emit_order(m, id, &["order.create"]);
    Ok(json!(id))
}

/// A note as the shop keeps it: cut to `max` characters ([`crate::Config::notes_max_chars`]).
fn kept_note(text: String, max: Option<usize>) -> String {
    match max {
        Some(max) if text.chars().count() > max => text.chars().take(max).collect(),
        _ => text,
    }
}

/// `PUT /orders/{id}`: `status_id`, `paid`, notes, `email`, `shipping_cost`, `code`,
/// `pickup_point`, addresses → `1`; fields not named keep their values.
pub fn order_put(m: &mut State, id: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    let oid = parse_id(id)?;
    let mut next = m
        .orders
        .get(&oid)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    let o = object(body)?;
    let mut inv = Invalid::new();
    if let Some(v) = o.get("status_id") {
        match u64_of(v) {
            Some(s) if m.statuses.contains_key(&s) => next.status_id = s,
            _ => inv.missing_ref("status_id", string_of(v).unwrap_or_default()),
        }
    }
    if let Some(v) = o.get("paid") {
        match decimal_of(v) {
            Some(d) if d >= Decimal::ZERO => next.paid = d,
            _ => inv.field("paid", "Wartość nie jest liczbą"),
        }
    }
    if let Some(v) = o.get("shipping_cost") {
        match decimal_of(v) {
            Some(d) if d >= Decimal::ZERO => next.shipping_cost = d,
            _ => inv.field("shipping_cost", "Wartość nie jest liczbą"),
        }
    }
    if let Some(v) = o.get("email") {
        match string_of(v) {
            Some(e) if valid_email(&e) => next.email = e,
            _ => inv.field("email", "Niepoprawny adres e-mail"),
        }
    }
    let max = m.cfg.notes_max_chars;
    for (k, slot, note) in [
        ("notes", &mut next.notes, true),
        ("notes_priv", &mut next.notes_priv, true),
        ("notes_pub", &mut next.notes_pub, true),
        ("code", &mut next.code, false),
        ("pickup_point", &mut next.pickup_point, false),
    ] {
        if let Some(v) = o.get(k) {
            match string_of(v) {
                Some(s) if note => *slot = kept_note(s, max),
                Some(s) => *slot = s,
                None => inv.field(k, "Wartość nie jest tekstem"),
            }
        }
    }
    if let Some(v) = o.get("billing_address") {
        read_address(v, &mut next.billing_address, "billing_address", &mut inv);
    }
    if let Some(v) = o.get("delivery_address") {
        read_address(v, &mut next.delivery_address, "delivery_address", &mut inv);
    }
    inv.finish()?;
    edit(m, oid, move |o| *o = next)?;
    Ok(json!(1))
}

pub fn order_delete(m: &mut State, id: &str) -> Result<Value, ApiError> {
    let oid = parse_id(id)?;
    if !m.orders.contains_key(&oid) {
        return Err(ApiError::not_found());
    }
    let body = m
        .orders
        .get(&oid)
        .map(|o| order_json(m, o, true))
        .unwrap_or(Value::Null);
    m.orders.remove(&oid);
    m.lines.retain(|_, l| l.order_id != oid);
    m.parcels.retain(|_, p| p.order_id != oid);
    m.emit("order.delete", body);
    Ok(json!(1))
}

pub fn lines_list(m: &State, params: &Params) -> Result<Page, ApiError> {
    let q = query::parse(
        params,
        &m.cfg,
        &["id", "order_id", "product_id", "stock_id", "code"],
    )?;
    let rows = m.lines.values().map(line_json).collect();
    Ok(query::run(rows, &q, "id"))
}

pub fn line_get(m: &State, id: &str) -> Result<Value, ApiError> {
    let l = m
        .lines
        .get(&parse_id(id)?)
        .ok_or_else(ApiError::not_found)?;
    Ok(line_json(l))
}

/// `POST /order-products`: `order_id`, `quantity` and `stock_id` (or `product_id`: its base
/// stock) required; `price`, `name`, `code` default from the catalogue. Takes stock off.
pub fn line_post(m: &mut State, body: Option<&Value>) -> Result<Value, ApiError> {
    let o = object(body)?;
    let mut inv = Invalid::new();
    let order_id = o.get("order_id").and_then(u64_of);
    match order_id {
        None => inv.required("order_id"),
        Some(id) if !m.orders.contains_key(&id) => inv.missing_ref("order_id", id),
        _ => {}
    }
    let stock_id = match (
        o.get("stock_id").and_then(u64_of),
        o.get("product_id").and_then(u64_of),
    ) {
        (Some(s), _) if m.stocks.contains_key(&s) => Some(s),
        (Some(s), _) => {
            inv.missing_ref("stock_id", s);
            None
        }
        (None, Some(p)) => match m.products.get(&p) {
            Some(p) => Some(p.base_stock_id),
            None => {
                inv.missing_ref("product_id", p);
                None
            }
        },
        (None, None) => {
            inv.required("stock_id");
            None
        }
    };
    let quantity = match o.get("quantity") {
        None => {
            inv.required("quantity");
            Decimal::ZERO
        }
        Some(v) => match decimal_of(v) {
            Some(q) if q > Decimal::ZERO => q,
            _ => {
                inv.field("quantity", "Wartość musi być większa od 0");
                Decimal::ZERO
            }
        },
    };
    let price = match o.get("price") {
        None => None,
        Some(v) => match decimal_of(v) {
            Some(p) if p >= Decimal::ZERO => Some(p),
            _ => {
                inv.field("price", "Wartość nie jest liczbą");
                None
            }
        },
    };
    inv.finish()?;
    let (Some(order_id), Some(stock_id)) = (order_id, stock_id) else {
        return Err(ApiError::invalid("Niepoprawny format danych"));
    };
    let was_paid = is_paid(m, order_id);
    let mut line = make_line(m, order_id, stock_id, quantity, price);
    if let Some(n) = o.get("name").and_then(string_of) {
        line.name = n;
    }
    if let Some(c) = o.get("code").and_then(string_of) {
        line.code = c;
    }
    if let Some(d) = o.get("discount_perc").and_then(decimal_of) {
        line.discount_perc = d;
    }
    take_stock(m, stock_id, quantity);
    let id = line.id;
    m.lines.insert(id, line);
    let paid_now = is_paid(m, order_id);
    let ev = change_events(m, false, paid_now && !was_paid);
    emit_order(m, order_id, &ev);
    Ok(json!(id))
}

/// `PUT /order-products/{id}`: `quantity`, `price`, `discount_perc`, `name`, `code` → `1`.
pub fn line_put(m: &mut State, id: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    let lid = parse_id(id)?;
    let mut next = m.lines.get(&lid).cloned().ok_or_else(ApiError::not_found)?;
    let o = object(body)?;
    let mut inv = Invalid::new();
    if let Some(v) = o.get("quantity") {
        match decimal_of(v) {
            Some(q) if q > Decimal::ZERO => next.quantity = q,
            _ => inv.field("quantity", "Wartość musi być większa od 0"),
        }
    }
    for (k, slot) in [
        ("price", &mut next.price),
        ("discount_perc", &mut next.discount_perc),
    ] {
        if let Some(v) = o.get(k) {
            match decimal_of(v) {
                Some(d) if d >= Decimal::ZERO => *slot = d,
                _ => inv.field(k, "Wartość nie jest liczbą"),
            }
        }
    }
    for (k, slot) in [("name", &mut next.name), ("code", &mut next.code)] {
        if let Some(v) = o.get(k).and_then(string_of) {
            *slot = v;
        }
    }
    inv.finish()?;
    let order_id = next.order_id;
    m.lines.insert(lid, next);
    let ev = change_events(m, false, false);
    emit_order(m, order_id, &ev);
    Ok(json!(1))
}

pub fn line_delete(m: &mut State, id: &str) -> Result<Value, ApiError> {
    let lid = parse_id(id)?;
    let l = m.lines.remove(&lid).ok_or_else(ApiError::not_found)?;
    let ev = change_events(m, false, false);
    emit_order(m, l.order_id, &ev);
    Ok(json!(1))
}

pub fn statuses_list(m: &State, params: &Params) -> Result<Page, ApiError> {
    let q = query::parse(params, &m.cfg, &["status_id", "type", "active", "default"])?;
    let rows = m.statuses.values().map(status_json).collect();
    Ok(query::run(rows, &q, "status_id"))
}

pub fn status_get(m: &State, id: &str) -> Result<Value, ApiError> {
    let s = m
        .statuses
        .get(&parse_id(id)?)
        .ok_or_else(ApiError::not_found)?;
    Ok(status_json(s))
}

/// `GET /object-mtime/<object>/<id>`: `{"date": <unix>}` for `order` and `product`; a plural
/// object name → 500 (live); anything else → 400.
pub fn mtime(m: &State, object: &str, id: &str) -> Result<Value, ApiError> {
    let t = match object {
        "order" => m.orders.get(&parse_id(id)?).map(|o| o.mtime),
        "product" => m.products.get(&parse_id(id)?).map(|p| p.edit_date),
        "orders" | "products" | "parcels" | "users" | "categories" => {
            return Err(ApiError::new(500, "server_error", "Internal server error"));
        }
        _ => return Err(ApiError::invalid("Nieobsługiwany obiekt")),
    };
    let t = t.ok_or_else(ApiError::not_found)?;
    Ok(json!({"date": t.timestamp()}))
}

// ---------------------------------------------------------------- parcels

/// Quantity of each line of `order_id` not yet in a parcel.
fn remaining(m: &State, order_id: u64) -> BTreeMap<u64, Decimal> {
    let mut left: BTreeMap<u64, Decimal> = lines_of(m, order_id)
        .into_iter()
        .map(|l| (l.id, l.quantity))
        .collect();
    for p in m.parcels.values().filter(|p| p.order_id == order_id) {
        for (lid, q) in &p.products {
            if let Some(x) = left.get_mut(lid) {
                *x -= *q;
            }
        }
    }
    left.retain(|_, q| *q > Decimal::ZERO);
    left
}

pub fn parcels_list(m: &State, params: &Params) -> Result<Page, ApiError> {
    let q = query::parse(
        params,
        &m.cfg,
        &[
            "parcel_id",
            "order_id",
            "shipping_id",
            "shipping_code",
            "sent",
        ],
    )?;
    let rows = m.parcels.values().map(|p| parcel_json(m, p)).collect();
    Ok(query::run(rows, &q, "parcel_id"))
}

pub fn parcel_get(m: &State, id: &str) -> Result<Value, ApiError> {
    let p = m
        .parcels
        .get(&parse_id(id)?)
        .ok_or_else(ApiError::not_found)?;
    Ok(parcel_json(m, p))
}

fn send_parcel(m: &mut State, parcel_id: u64) {
    let now = m.now();
    let Some(order_id) = m.parcels.get_mut(&parcel_id).map(|p| {
        p.sent = true;
        p.send_date = Some(now);
        p.order_id
    }) else {
        return;
    };
    if let Some(p) = m.parcels.get(&parcel_id) {
        let body = parcel_json(m, p);
        m.emit("parcel.dispatch", body);
    }
    let target = m.cfg.parcel_send_status_id;
    if m.statuses.contains_key(&target) {
        let _ = set_status(m, order_id, target);
    }
}

/// `POST /parcels`: `order_id`, `shipping_id` required; `products[]` ships part, none ships
/// the rest; `sent` dispatches at once → the new id.
pub fn parcel_post(m: &mut State, body: Option<&Value>) -> Result<Value, ApiError> {
    let o = object(body)?;
    let mut inv = Invalid::new();
    let order_id = o.get("order_id").and_then(u64_of);
    match order_id {
        None => inv.required("order_id"),
        Some(id) if !m.orders.contains_key(&id) => inv.missing_ref("order_id", id),
        _ => {}
    }
    let shipping_id = o.get("shipping_id").and_then(u64_of);
    match shipping_id {
        None => inv.required("shipping_id"),
        Some(s) if !SHIPPINGS.iter().any(|(id, _)| *id == s) => inv.missing_ref("shipping_id", s),
        _ => {}
    }
    let sent = match o.get("sent") {
        None => false,
        Some(v) => bool_of(v).unwrap_or_else(|| {
            inv.field("sent", "Dozwolone wartości: 0, 1");
            false
        }),
    };
    inv.finish()?;
    let order_id = order_id.unwrap_or_default();
    let left = remaining(m, order_id);
    let products: Vec<(u64, Decimal)> = match o.get("products") {
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut inv = Invalid::new();
            let mut out = Vec::new();
            for it in items {
                let lid = it.get("order_product_id").and_then(u64_of);
                let q = it.get("quantity").and_then(decimal_of);
                match (lid, q) {
                    (Some(l), Some(q)) if q > Decimal::ZERO => match left.get(&l) {
                        Some(avail) if q <= *avail => out.push((l, q)),
                        Some(_) => inv.field("products", format!("Za duża ilość dla pozycji {l}")),
                        None if m.lines.get(&l).is_some_and(|x| x.order_id == order_id) => {
                            return Err(ApiError::invalid("All products has been already sent"));
                        }
                        None => inv.missing_ref("order_product_id", l),
                    },
                    _ => inv.field("products", "Niepoprawny format danych"),
                }
            }
            inv.finish()?;
            out
        }
        Some(Value::Array(_)) | None => left.into_iter().collect(),
        Some(_) => {
            return Err(ApiError::invalid(
                "Wartość pola 'products' jest niepoprawna",
            ));
        }
    };
    if products.is_empty() {
        return Err(ApiError::invalid("All products has been already sent"));
    }
    let id = m.next_parcel_id;
    m.next_parcel_id += 1;
    let parcel = Parcel {
        parcel_id: id,
        order_id,
        shipping_id: shipping_id.unwrap_or_default(),
        shipping_code: o
            .get("shipping_code")
            .and_then(string_of)
            .unwrap_or_default(),
        sent: false,
        send_date: None,
        products,
    };
    m.parcels.insert(id, parcel);
    if let Some(p) = m.parcels.get(&id) {
        let body = parcel_json(m, p);
        m.emit("parcel.create", body);
    }
    if sent {
        send_parcel(m, id);
    }
    Ok(json!(id))
}

/// `PUT /parcels/{id}`: `shipping_code` any time; `sent`, `shipping_id` only while unsent
/// (`parcel_cannot_modify` / `parcel_already_sent` after).
pub fn parcel_put(m: &mut State, id: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    let pid = parse_id(id)?;
    let cur = m
        .parcels
        .get(&pid)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    let o = object(body)?;
    if cur.sent {
        if let Some(v) = o.get("sent")
            && bool_of(v) == Some(false)
        {
            return Err(ApiError::new(
                400,
                "parcel_already_sent",
                "Paczka została już wysłana",
            ));
        }
        if o.keys().any(|k| k != "shipping_code" && k != "sent") {
            return Err(ApiError::new(
                400,
                "parcel_cannot_modify",
                "Wysłanej paczki nie można modyfikować",
            ));
        }
    }
    let mut inv = Invalid::new();
    let mut next = cur.clone();
    if let Some(v) = o.get("shipping_code") {
        match string_of(v) {
            Some(c) => next.shipping_code = c,
            None => inv.field("shipping_code", "Wartość nie jest tekstem"),
        }
    }
    if let Some(v) = o.get("shipping_id") {
        match u64_of(v) {
            Some(s) if SHIPPINGS.iter().any(|(id, _)| *id == s) => next.shipping_id = s,
            _ => inv.missing_ref("shipping_id", string_of(v).unwrap_or_default()),
        }
    }
    let send = match o.get("sent") {
        Some(v) => match bool_of(v) {
            Some(b) => b && !cur.sent,
            None => {
                inv.field("sent", "Dozwolone wartości: 0, 1");
                false
            }
        },
        None => false,
    };
    inv.finish()?;
    m.parcels.insert(pid, next);
    if send {
        send_parcel(m, pid);
    }
    Ok(json!(1))
}

pub fn parcel_delete(m: &mut State, id: &str) -> Result<Value, ApiError> {
    let pid = parse_id(id)?;
    let p = m.parcels.get(&pid).ok_or_else(ApiError::not_found)?;
    if p.sent {
        return Err(ApiError::new(
            400,
            "parcel_already_sent",
            "Paczka została już wysłana",
        ));
    }
    m.parcels.remove(&pid);
    Ok(json!(1))
}

/// Lines of an order, oldest first.
pub fn order_lines(m: &State, order_id: u64) -> Vec<OrderLine> {
    lines_of(m, order_id).into_iter().cloned().collect()
}
