//! Products and their stocks (docs §4): `/products`, `/product-stocks`.
//!
//! Every product has one base stock (`extended` 0, `price_type` 1, `default` 1) whose `code`,
//! `ean`, `price` and `stock` are the product's; variants are further stocks (`extended` 1)
//! whose `price_type` says how their price relates to the base (0 from product, 1 own,
//! 2 base + price, 3 base − price). Stock writes are absolute (`PUT /product-stocks/{id}`
//! `{"stock":77}`); `PUT /products/{id}` `{"stock":{"stock_relative":-2}}` changes the base stock
//! by a difference (and ignores `stock`). Prices must be greater than 0; a base stock only
//! takes `price_type` 1 (spec). With `warehouses_enabled` the `stock` field is read-only.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, Invalid};
use crate::query::{self, Page};
use crate::state::State;
use crate::util::{Params, bool_of, decimal_of, flag, money, qty, string_of, u64_of};

/// Taxes: (tax_id, name as on order lines, rate in %). `zw.` and `np.` have rate 0.
pub const TAXES: [(u64, &str, u32); 6] = [
    (1, "23%", 23),
    (2, "8%", 8),
    (3, "5%", 5),
    (4, "0%", 0),
    (5, "zw.", 0),
    (6, "np.", 0),
];

/// (name, rate) of a tax id.
pub fn tax(id: u64) -> Option<(&'static str, Decimal)> {
    TAXES
        .iter()
        .find(|(i, _, _)| *i == id)
        .map(|(_, n, r)| (*n, Decimal::from(*r)))
}

/// A product (its code, ean, price and stock live on the base stock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub product_id: u64,
    /// The `pl_PL` name.
    pub name: String,
    pub description: String,
    pub tax_id: u64,
    pub category_id: u64,
    pub producer_id: Option<u64>,
    pub unit_id: u64,
    pub pkwiu: String,
    pub add_date: DateTime<Utc>,
    pub edit_date: DateTime<Utc>,
    /// The base stock's `stock_id`.
    pub base_stock_id: u64,
}

/// A `product-stocks` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stock {
    pub stock_id: u64,
    pub product_id: u64,
    /// false: the base stock; true: an option variant.
    pub extended: bool,
    /// Gross price (or difference, per `price_type`).
    pub price: Decimal,
    /// 0 from product, 1 own price, 2 added to base, 3 subtracted from base.
    pub price_type: u8,
    pub price_wholesale: Decimal,
    pub price_special: Decimal,
    pub active: bool,
    pub default: bool,
    pub stock: Decimal,
    pub warn_level: Decimal,
    pub sold: Decimal,
    pub code: String,
    pub ean: String,
    pub weight: Decimal,
    pub availability_id: Option<u64>,
    pub delivery_id: u64,
    /// The variant's label (an order line's `option`), empty for the base stock.
    pub option_name: String,
    /// Option value ids of a variant.
    pub options: Vec<u64>,
}

/// Reads a decimal from a JSON number or string.
pub fn de_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let v = Value::deserialize(d)?;
    decimal_of(&v).ok_or_else(|| serde::de::Error::custom(format!("not a number: {v}")))
}

/// Reads an optional decimal from a JSON number or string.
pub fn de_decimal_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    decimal_of(&v)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("not a number: {v}")))
}

fn one() -> u64 {
    1
}

/// What a test seeds: a simple product with its base stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewProduct {
    /// The SKU (`code` of the base stock and the product).
    pub code: String,
    pub name: String,
    /// Gross price, > 0.
    #[serde(deserialize_with = "de_decimal")]
    pub price: Decimal,
    #[serde(default, deserialize_with = "de_decimal")]
    pub stock: Decimal,
    #[serde(default)]
    pub ean: String,
    /// Tax (1 = 23%, see [`TAXES`]).
    #[serde(default = "one")]
    pub tax_id: u64,
    #[serde(default = "one")]
    pub category_id: u64,
    #[serde(default, deserialize_with = "de_decimal")]
    pub weight: Decimal,
}

impl NewProduct {
    pub fn new(code: &str, name: &str, price: Decimal, stock: i64) -> Self {
        NewProduct {
            code: code.into(),
            name: name.into(),
            price,
            stock: Decimal::from(stock),
            ean: String::new(),
            tax_id: 1,
            category_id: 1,
            weight: Decimal::ZERO,
        }
    }

    pub fn ean(mut self, ean: &str) -> Self {
        self.ean = ean.into();
        self
    }
}

/// What a test seeds: an option variant of a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewVariant {
    pub code: String,
    /// The option label (`Rozmiar: XL`), shown as an order line's `option`.
    #[serde(default)]
    pub option_name: String,
    /// Own gross price (`price_type` 1); None: the product's price (`price_type` 0).
    #[serde(default, deserialize_with = "de_decimal_opt")]
    pub price: Option<Decimal>,
    #[serde(default, deserialize_with = "de_decimal")]
    pub stock: Decimal,
    #[serde(default)]
    pub ean: String,
}

impl NewVariant {
    pub fn new(code: &str, option_name: &str, price: Option<Decimal>, stock: i64) -> Self {
        NewVariant {
            code: code.into(),
            option_name: option_name.into(),
            price,
            stock: Decimal::from(stock),
            ean: String::new(),
        }
    }
}

fn new_stock(m: &mut State, product_id: u64, extended: bool) -> Stock {
    let id = m.next_stock_id;
    m.next_stock_id += 1;
    Stock {
        stock_id: id,
        product_id,
        extended,
        price: Decimal::ZERO,
        price_type: if extended { 0 } else { 1 },
        price_wholesale: Decimal::ZERO,
        price_special: Decimal::ZERO,
        active: true,
        default: !extended,
        stock: Decimal::ZERO,
        warn_level: Decimal::ZERO,
        sold: Decimal::ZERO,
        code: String::new(),
        ean: String::new(),
        weight: Decimal::ZERO,
        availability_id: None,
        delivery_id: 1,
        option_name: String::new(),
        options: Vec::new(),
    }
}

/// Seeds a product with its base stock.
pub fn add_product(m: &mut State, n: &NewProduct) -> Result<Product, ApiError> {
    let mut inv = Invalid::new();
    if n.code.trim().is_empty() {
        inv.required("code");
    }
    if n.name.trim().is_empty() {
        inv.required("translations");
    }
    if n.price <= Decimal::ZERO {
        inv.field("price", "Wartość musi być większa od 0");
    }
    if n.stock < Decimal::ZERO {
        inv.field("stock", "Wartość nie może być ujemna");
    }
    if tax(n.tax_id).is_none() {
        inv.missing_ref("tax_id", n.tax_id);
    }
    inv.finish()?;
    let now = m.now();
    let pid = m.next_product_id;
    m.next_product_id += 1;
    let mut s = new_stock(m, pid, false);
    s.price = n.price.round_dp(2);
    s.stock = n.stock;
    s.code = n.code.clone();
    s.ean = n.ean.clone();
    s.weight = n.weight;
    let p = Product {
        product_id: pid,
        name: n.name.clone(),
        description: String::new(),
        tax_id: n.tax_id,
        category_id: n.category_id,
        producer_id: None,
        unit_id: 1,
        pkwiu: String::new(),
        add_date: now,
        edit_date: now,
        base_stock_id: s.stock_id,
    };
    m.stocks.insert(s.stock_id, s);
    m.products.insert(pid, p.clone());
    let body = product_json(m, &p);
    m.emit("product.create", body);
    Ok(p)
}

/// Seeds an option variant.
pub fn add_variant(m: &mut State, product_id: u64, n: &NewVariant) -> Result<Stock, ApiError> {
    if !m.products.contains_key(&product_id) {
        return Err(ApiError::not_found());
    }
    let mut inv = Invalid::new();
    if n.price.is_some_and(|p| p <= Decimal::ZERO) {
        inv.field("price", "Wartość musi być większa od 0");
    }
    if n.stock < Decimal::ZERO {
        inv.field("stock", "Wartość nie może być ujemna");
    }
    inv.finish()?;
    let mut s = new_stock(m, product_id, true);
    if let Some(p) = n.price {
        s.price = p.round_dp(2);
        s.price_type = 1;
    }
    s.stock = n.stock;
    s.code = n.code.clone();
    s.ean = n.ean.clone();
    s.option_name = n.option_name.clone();
    s.options = vec![s.stock_id];
    m.stocks.insert(s.stock_id, s.clone());
    touch_product(m, product_id);
    Ok(s)
}

/// The gross unit price a buyer pays for a stock.
pub fn effective_price(m: &State, s: &Stock) -> Decimal {
    let base = m
        .products
        .get(&s.product_id)
        .and_then(|p| m.stocks.get(&p.base_stock_id))
        .map(|b| b.price)
        .unwrap_or(s.price);
    match s.price_type {
        0 => base,
        2 => base + s.price,
        3 => (base - s.price).max(Decimal::ZERO),
        _ => s.price,
    }
}

/// A stock by its `code` (variants first: a variant may share the product's code).
pub fn stock_by_code<'a>(m: &'a State, code: &str) -> Option<&'a Stock> {
    m.stocks
        .values()
        .filter(|s| s.code == code)
        .max_by_key(|s| s.extended)
}

fn touch_product(m: &mut State, product_id: u64) {
    let now = m.now();
    if let Some(p) = m.products.get_mut(&product_id) {
        p.edit_date = now;
    }
}

// ---------------------------------------------------------------- wire shapes

/// A `product-stocks` row as served.
pub fn stock_json(s: &Stock) -> Value {
    json!({
        "stock_id": s.stock_id.to_string(),
        "product_id": s.product_id.to_string(),
        "extended": flag(s.extended),
        "price": money(s.price),
        "price_type": s.price_type.to_string(),
        "price_wholesale": money(s.price_wholesale),
        "price_wholesale_type": "0",
        "price_special": money(s.price_special),
        "price_special_type": "0",
        "active": flag(s.active),
        "default": flag(s.default),
        "stock": qty(s.stock),
        "warn_level": qty(s.warn_level),
        "sold": qty(s.sold),
        "code": s.code,
        "ean": s.ean,
        "weight": money(s.weight),
        "weight_type": "0",
        "availability_id": s.availability_id.map(|a| a.to_string()),
        "calculated_availability_id": s.availability_id.map(|a| a.to_string()),
        "delivery_id": s.delivery_id.to_string(),
        "gfx_id": null,
        "package": "1.00",
        "calculation_unit_id": null,
        "calculation_unit_ratio": "1",
        "historical_lowest_price": money(s.price),
        "special_offer": null,
        "options": s.options,
        "additional_codes": {"isbn": null, "kgo": null, "bloz7": null, "bloz12": null, "producer": null, "warehouse": null, "gtu": null},
        "warehouses": {},
    })
}

/// A `/products` row as served (the base stock embedded as `stock`).
pub fn product_json(m: &State, p: &Product) -> Value {
    let base = m.stocks.get(&p.base_stock_id);
    let pid = p.product_id.to_string();
    json!({
        "product_id": pid,
        "type": "0",
        "producer_id": p.producer_id.map(|x| x.to_string()),
        "group_id": null,
        "tax_id": p.tax_id.to_string(),
        "category_id": p.category_id.to_string(),
        "unit_id": p.unit_id.to_string(),
        "add_date": m.local(p.add_date),
        "edit_date": m.local(p.edit_date),
        "other_price": "0.00",
        "promo_price": null,
        "code": base.map(|b| b.code.clone()).unwrap_or_default(),
        "ean": base.map(|b| b.ean.clone()).unwrap_or_default(),
        "pkwiu": p.pkwiu,
        "is_product_of_day": false,
        "bestseller": "0",
        "newproduct": "0",
        "vol_weight": "0.00",
        "gauge_id": null,
        "currency_id": null,
        "in_loyalty": "0",
        "loyalty_score": null,
        "loyalty_price": null,
        "dimension_w": "0.00",
        "dimension_h": "0.00",
        "dimension_l": "0.00",
        "unit_price_calculation": "0",
        "stock": base.map(stock_json).unwrap_or(Value::Null),
        "translations": {
            "pl_PL": {
                "translation_id": pid,
                "product_id": pid,
                "name": p.name,
                "short_description": "",
                "description": p.description,
                "active": "1",
                "isdefault": "1",
                "lang_id": "1",
                "seo_title": "",
                "seo_description": "",
                "seo_keywords": "",
                "seo_url": "",
                "permalink": "",
                "order": "0",
                "main_page": "0",
                "main_page_order": "0",
            }
        },
        "categories": [p.category_id],
        "options": [],
        "attributes": {},
        "tags": [],
        "collections": [],
        "related": [],
        "feeds_excludes": [],
    })
}

// ---------------------------------------------------------------- handlers

fn object(body: Option<&Value>) -> Result<&Map<String, Value>, ApiError> {
    match body {
        Some(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::invalid("Niepoprawny format danych")),
    }
}

/// Stock fields of a write, checked; `extended` decides which `price_type` values are valid.
#[derive(Debug, Default)]
struct StockChange {
    stock: Option<Decimal>,
    stock_relative: Option<Decimal>,
    sold_relative: Option<Decimal>,
    price: Option<Decimal>,
    price_type: Option<u8>,
    price_wholesale: Option<Decimal>,
    price_special: Option<Decimal>,
    code: Option<String>,
    ean: Option<String>,
    active: Option<bool>,
    warn_level: Option<Decimal>,
    weight: Option<Decimal>,
    availability_id: Option<Option<u64>>,
    delivery_id: Option<u64>,
}

fn read_stock_change(
    m: &State,
    o: &Map<String, Value>,
    extended: bool,
    relative_allowed: bool,
    inv: &mut Invalid,
) -> StockChange {
    let mut c = StockChange::default();
    let dec = |k: &str, inv: &mut Invalid, min_exclusive: bool| -> Option<Decimal> {
        let v = o.get(k)?;
        match decimal_of(v) {
            Some(d) if min_exclusive && d <= Decimal::ZERO => {
                inv.field(k, "Wartość musi być większa od 0");
                None
            }
            Some(d) if !min_exclusive && d < Decimal::ZERO => {
                inv.field(k, "Wartość nie może być ujemna");
                None
            }
            Some(d) => Some(d),
            None => {
                inv.field(k, "Wartość nie jest liczbą");
                None
            }
        }
    };
    if o.contains_key("stock") && m.cfg.warehouses_enabled {
        inv.field("stock", "Pole tylko do odczytu przy włączonych magazynach");
    } else {
        c.stock = dec("stock", inv, false);
    }
    if relative_allowed {
        for (k, slot) in [
            ("stock_relative", &mut c.stock_relative),
            ("sold_relative", &mut c.sold_relative),
        ] {
            if let Some(v) = o.get(k) {
                if k == "stock_relative" && m.cfg.warehouses_enabled {
                    inv.field(k, "Pole tylko do odczytu przy włączonych magazynach");
                    continue;
                }
                match decimal_of(v) {
                    Some(d) => *slot = Some(d),
                    None => inv.field(k, "Wartość nie jest liczbą"),
                }
            }
        }
    }
    if o.contains_key("price") {
        c.price = dec("price", inv, true);
    }
    if let Some(v) = o.get("price_type") {
        match u64_of(v) {
            Some(t) if t <= 3 => {
                if !extended && t != 1 {
                    inv.field(
                        "price_type",
                        "Dla magazynu podstawowego dozwolona jest tylko wartość 1",
                    );
                } else {
                    c.price_type = Some(t as u8);
                }
            }
            _ => inv.field("price_type", "Dozwolone wartości: 0, 1, 2, 3"),
        }
    }
    c.price_wholesale = dec("price_wholesale", inv, false);
    c.price_special = dec("price_special", inv, false);
    c.warn_level = dec("warn_level", inv, false);
    c.weight = dec("weight", inv, false);
    for (k, slot) in [("code", &mut c.code), ("ean", &mut c.ean)] {
        if let Some(v) = o.get(k) {
            match string_of(v) {
                Some(s) => *slot = Some(s),
                None => inv.field(k, "Wartość nie jest tekstem"),
            }
        }
    }
    if let Some(v) = o.get("active") {
        match bool_of(v) {
            Some(b) => c.active = Some(b),
            None => inv.field("active", "Dozwolone wartości: 0, 1"),
        }
    }
    if let Some(v) = o.get("availability_id") {
        if v.is_null() {
            c.availability_id = Some(None);
        } else {
            match u64_of(v) {
                Some(a) => c.availability_id = Some(Some(a)),
                None => inv.field("availability_id", "Wartość nie jest liczbą"),
            }
        }
    }
    if let Some(v) = o.get("delivery_id") {
        match u64_of(v) {
            Some(d) => c.delivery_id = Some(d),
            None => inv.field("delivery_id", "Wartość nie jest liczbą"),
        }
    }
    c
}

/// Applies a checked change; `Err` when a relative change would take the stock below zero.
fn apply_stock_change(
    s: &mut Stock,
    c: &StockChange,
    allow_negative: bool,
) -> Result<bool, ApiError> {
    let mut stock_written = false;
    let new_stock = match (c.stock_relative, c.stock) {
        (Some(d), _) => Some(s.stock + d),
        (None, Some(v)) => Some(v),
        _ => None,
    };
    if let Some(v) = new_stock {
        if v < Decimal::ZERO && !allow_negative {
            let mut inv = Invalid::new();
            inv.field("stock_relative", "Stan magazynowy nie może być ujemny");
            inv.finish()?;
        }
        s.stock = v;
        stock_written = true;
    }
    if let Some(d) = c.sold_relative {
        s.sold = (s.sold + d).max(Decimal::ZERO);
    }
    if let Some(p) = c.price {
        s.price = p.round_dp(2);
    }
    if let Some(t) = c.price_type {
        s.price_type = t;
    }
    if let Some(p) = c.price_wholesale {
        s.price_wholesale = p.round_dp(2);
    }
    if let Some(p) = c.price_special {
        s.price_special = p.round_dp(2);
    }
    if let Some(x) = &c.code {
        s.code = x.clone();
    }
    if let Some(x) = &c.ean {
        s.ean = x.clone();
    }
    if let Some(a) = c.active {
        s.active = a;
    }
    if let Some(w) = c.warn_level {
        s.warn_level = w;
    }
    if let Some(w) = c.weight {
        s.weight = w;
    }
    if let Some(a) = c.availability_id {
        s.availability_id = a;
    }
    if let Some(d) = c.delivery_id {
        s.delivery_id = d;
    }
    Ok(stock_written)
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse().map_err(|_| ApiError::not_found())
}

/// Fields `/products` filters and sorts on (`code` and `category_id` answer 404, live).
fn product_fields(m: &State) -> Vec<&'static str> {
    let mut f = vec![
        "product_id",
        "type",
        "producer_id",
        "tax_id",
        "unit_id",
        "group_id",
        "translations.name",
    ];
    if m.cfg.date_filters {
        f.extend(["add_date", "edit_date"]);
    }
    f
}

fn stock_fields(m: &State) -> Vec<&'static str> {
    let mut f = vec!["stock_id", "product_id", "extended", "active", "default"];
    if m.cfg.stock_code_filter {
        f.extend(["code", "ean"]);
    }
    f
}

pub fn products_list(m: &State, params: &Params) -> Result<Page, ApiError> {
    let q = query::parse(params, &m.cfg, &product_fields(m))?;
    let rows = m.products.values().map(|p| product_json(m, p)).collect();
    Ok(query::run(rows, &q, "product_id"))
}

pub fn product_get(m: &State, id: &str) -> Result<Value, ApiError> {
    let p = m
        .products
        .get(&parse_id(id)?)
        .ok_or_else(ApiError::not_found)?;
    Ok(product_json(m, p))
}

fn name_of(o: &Map<String, Value>) -> Option<String> {
    let t = o.get("translations")?.as_object()?;
    let pick = t.get("pl_PL").or_else(|| t.values().next())?;
    pick.get("name").and_then(string_of)
}

/// `POST /products`: `category_id`, `code`, `stock.price` and a translation `name` are required.
pub fn product_post(m: &mut State, body: Option<&Value>) -> Result<Value, ApiError> {
    let o = object(body)?;
    let mut inv = Invalid::new();
    let category = o.get("category_id").and_then(u64_of);
    if category.is_none() {
        inv.required("category_id");
    }
    let code = o.get("code").and_then(string_of).filter(|c| !c.is_empty());
    if code.is_none() {
        inv.required("code");
    }
    let name = name_of(o);
    if name.is_none() {
        inv.required("translations");
    }
    let tax_id = match o.get("tax_id") {
        None => 1,
        Some(v) => match u64_of(v) {
            Some(t) if tax(t).is_some() => t,
            _ => {
                inv.missing_ref("tax_id", string_of(v).unwrap_or_default());
                1
            }
        },
    };
    let empty = Map::new();
    let stock_obj = match o.get("stock") {
        Some(Value::Object(s)) => s,
        Some(_) => {
            inv.field("stock", "Niepoprawny format danych");
            &empty
        }
        None => {
            inv.required("stock");
            &empty
        }
    };
    if !stock_obj.is_empty() && !stock_obj.contains_key("price") {
        inv.required("stock.price");
    }
    let change = read_stock_change(m, stock_obj, false, true, &mut inv);
    inv.finish()?;
    let n = NewProduct {
        code: code.unwrap_or_default(),
        name: name.unwrap_or_default(),
        price: change.price.unwrap_or(Decimal::ONE),
        stock: Decimal::ZERO,
        ean: o
            .get("ean")
            .and_then(string_of)
            .or(change.ean.clone())
            .unwrap_or_default(),
        tax_id,
        category_id: category.unwrap_or(1),
        weight: Decimal::ZERO,
    };
    let p = add_product(m, &n)?;
    let allow = m.cfg.allow_negative_stock;
    if let Some(s) = m.stocks.get_mut(&p.base_stock_id) {
        apply_stock_change(s, &change, allow)?;
    }
    if let Some(pk) = o.get("pkwiu").and_then(string_of)
        && let Some(pp) = m.products.get_mut(&p.product_id)
    {
        pp.pkwiu = pk;
    }
    Ok(json!(p.product_id))
}

/// `PUT /products/{id}`: `code`, `ean`, `tax_id`, `category_id`, `pkwiu`, `translations`, and the
/// base stock through `stock` (with `stock_relative` / `sold_relative`).
pub fn product_put(m: &mut State, id: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    let pid = parse_id(id)?;
    let base_id = m
        .products
        .get(&pid)
        .map(|p| p.base_stock_id)
        .ok_or_else(ApiError::not_found)?;
    let o = object(body)?;
    let mut inv = Invalid::new();
    let mut change = match o.get("stock") {
        Some(Value::Object(s)) => read_stock_change(m, s, false, true, &mut inv),
        Some(_) => {
            inv.field("stock", "Niepoprawny format danych");
            StockChange::default()
        }
        None => StockChange::default(),
    };
    for k in ["code", "ean"] {
        if let Some(v) = o.get(k) {
            match string_of(v) {
                Some(s) if k == "code" => change.code = Some(s),
                Some(s) => change.ean = Some(s),
                None => inv.field(k, "Wartość nie jest tekstem"),
            }
        }
    }
    let tax_id = match o.get("tax_id") {
        None => None,
        Some(v) => match u64_of(v) {
            Some(t) if tax(t).is_some() => Some(t),
            _ => {
                inv.missing_ref("tax_id", string_of(v).unwrap_or_default());
                None
            }
        },
    };
    let category = o.get("category_id").and_then(u64_of);
    inv.finish()?;
    let allow = m.cfg.allow_negative_stock;
    let written = match m.stocks.get_mut(&base_id) {
        Some(s) => {
            let mut copy = s.clone();
            let w = apply_stock_change(&mut copy, &change, allow)?;
            *s = copy;
            w
        }
        None => false,
    };
    if written {
        m.counters.stock_writes += 1;
    }
    let name = name_of(o);
    let now = m.now();
    if let Some(p) = m.products.get_mut(&pid) {
        if let Some(n) = name {
            p.name = n;
        }
        if let Some(t) = tax_id {
            p.tax_id = t;
        }
        if let Some(c) = category {
            p.category_id = c;
        }
        if let Some(pk) = o.get("pkwiu").and_then(string_of) {
            p.pkwiu = pk;
        }
        p.edit_date = now;
    }
    if let Some(p) = m.products.get(&pid) {
        let body = product_json(m, p);
        m.emit("product.edit", body);
    }
    Ok(json!(1))
}

pub fn product_delete(m: &mut State, id: &str) -> Result<Value, ApiError> {
    let pid = parse_id(id)?;
    let p = m.products.remove(&pid).ok_or_else(ApiError::not_found)?;
    m.stocks.retain(|_, s| s.product_id != pid);
    let body = json!({"product_id": p.product_id.to_string()});
    m.emit("product.delete", body);
    Ok(json!(1))
}

pub fn stocks_list(m: &State, params: &Params) -> Result<Page, ApiError> {
    let q = query::parse(params, &m.cfg, &stock_fields(m))?;
    let rows = m.stocks.values().map(stock_json).collect();
    Ok(query::run(rows, &q, "stock_id"))
}

pub fn stock_get(m: &State, id: &str) -> Result<Value, ApiError> {
    let s = m
        .stocks
        .get(&parse_id(id)?)
        .ok_or_else(ApiError::not_found)?;
    Ok(stock_json(s))
}

/// `PUT /product-stocks/{id}`: absolute `stock`, `price` (> 0), `price_type` (base stock: only
/// 1), `code`, `ean`, `active`, ... → `1`.
pub fn stock_put(m: &mut State, id: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    let sid = parse_id(id)?;
    let current = m
        .stocks
        .get(&sid)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    let o = object(body)?;
    let mut inv = Invalid::new();
    let change = read_stock_change(m, o, current.extended, false, &mut inv);
    inv.finish()?;
    let mut next = current.clone();
    let written = apply_stock_change(&mut next, &change, m.cfg.allow_negative_stock)?;
    m.stocks.insert(sid, next);
    if written {
        m.counters.stock_writes += 1;
    }
    touch_product(m, current.product_id);
    if let Some(p) = m.products.get(&current.product_id) {
        let body = product_json(m, p);
        m.emit("product.edit", body);
    }
    Ok(json!(1))
}

/// `POST /product-stocks`: a variant of `product_id` → its `stock_id`.
pub fn stock_post(m: &mut State, body: Option<&Value>) -> Result<Value, ApiError> {
    let o = object(body)?;
    let mut inv = Invalid::new();
    let pid = o.get("product_id").and_then(u64_of);
    match pid {
        None => inv.required("product_id"),
        Some(p) if !m.products.contains_key(&p) => inv.missing_ref("product_id", p),
        _ => {}
    }
    let change = read_stock_change(m, o, true, false, &mut inv);
    inv.finish()?;
    let pid = pid.unwrap_or_default();
    let mut s = new_stock(m, pid, true);
    apply_stock_change(&mut s, &change, m.cfg.allow_negative_stock)?;
    if change.price.is_some() && change.price_type.is_none() {
        s.price_type = 1;
    }
    s.options = vec![s.stock_id];
    let sid = s.stock_id;
    m.stocks.insert(sid, s);
    touch_product(m, pid);
    Ok(json!(sid))
}

/// `DELETE /product-stocks/{id}`: a base stock cannot go (`cannot_delete_internal_object`).
pub fn stock_delete(m: &mut State, id: &str) -> Result<Value, ApiError> {
    let sid = parse_id(id)?;
    let s = m.stocks.get(&sid).ok_or_else(ApiError::not_found)?;
    if !s.extended {
        return Err(ApiError::new(
            400,
            "cannot_delete_internal_object",
            "Nie można usunąć magazynu podstawowego produktu",
        ));
    }
    let pid = s.product_id;
    m.stocks.remove(&sid);
    touch_product(m, pid);
    Ok(json!(1))
}
