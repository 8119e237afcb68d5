//! Per-shop mapping rules: ERP records in, what one shop should show out.
//!
//! On the wire this module only defines [`ShopOperation`], the JSON message
//! `ingest` puts on the shop-ops queue and `shop-push` takes off it: one
//! shop, one SKU, the fields to change ([`ProductChanges`], money as decimal
//! strings) and the ERP reading time that ordered them. Everything else here
//! is pure: no I/O, no clock, no floats.
//!
//! The rules ([`ShopRules`]) come from configuration, one set per shop:
//! which Optima price list the shop sells at, whether the shop's price is
//! net or gross, how it is rounded, which warehouses feed its stock and with
//! what safety buffer, what an inactive product becomes, and how groups,
//! VAT rates and units are named there. From the latest records of one
//! product they build a [`ShopProductState`] (what the shop should hold);
//! [`diff`] compares it with what the shop holds now and yields an operation
//! only when something the shop shows changes, so a no-op is never sent.
//!
//! Rounding, decided once here for every shop:
//! - net ↔ gross is computed at full precision and rounded once, at the end,
//!   to the grosz, half away from zero: the Polish rule for VAT amounts
//!   (fractions under half a grosz are dropped, half a grosz or more count
//!   as a whole one), so 1234.565 → 1234.57, never the banker's 1234.56;
//! - [`Rounding::Ending99`] then moves the grosz price to the nearest
//!   `X.99` at or above `price − 0.01`: prices go up to the next `.99`,
//!   except that a price one grosz above a `.99` (a round `X.00`) goes down
//!   one grosz to it, so 10.00 → 9.99, 10.01 → 10.99, 9.99 → 9.99,
//!   0.01 → 0.99;
//! - stock is floored to whole units after the safety buffer, never below 0.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use contract::{PriceKind, PriceRecord, ProductRecord, StockRecord, VatRate};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a record produced nothing for a shop.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MapError {
    /// The record is for something this shop does not use (another price
    /// list): skip it quietly, nobody needs to look at it.
    #[error("not for this shop: {reason}")]
    NotForShop { reason: String },
    /// The record is wrong for the shop (a zero price, another currency, a
    /// value out of range): park it with this reason for a person; never
    /// publish it.
    #[error("parked: {reason}")]
    Park { reason: String },
}

impl MapError {
    fn park(reason: impl Into<String>) -> Self {
        MapError::Park {
            reason: reason.into(),
        }
    }

    /// Whether a person should see it (as opposed to a quiet skip).
    pub fn is_park(&self) -> bool {
        matches!(self, MapError::Park { .. })
    }
}

/// A shop's rules that do not make sense.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RulesError {
    #[error("shop rules are not valid JSON: {0}")]
    Syntax(String),
    #[error("shop rules: {0}")]
    Invalid(String),
}

/// What the shop's `regular_price` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceBasis {
    /// Tax included (WooCommerce in Poland with `prices_include_tax`).
    #[default]
    Gross,
    /// Tax added by the shop at checkout.
    Net,
}

/// How the shop price is rounded (see the module comment for the exact rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// To the grosz, half away from zero.
    #[default]
    Grosz,
    /// To the grosz, then to an `X.99` ending.
    #[serde(rename = "ending_99")]
    Ending99,
}

/// What an inactive ERP product becomes in the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InactivePolicy {
    /// Hidden from the shop; stock still follows the ERP.
    #[default]
    Hide,
    /// Still shown, but with stock 0 so nobody can order it.
    OutOfStock,
    /// Both hidden and at stock 0.
    HideAndOutOfStock,
}

/// How the ERP group path becomes the shop's category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoryMode {
    /// The whole path as nested categories: Narzędzia › Ręczne › Młotki
    /// (shown joined with `category_separator`).
    #[default]
    Path,
    /// Only the last group, as a top-level category: "Młotki".
    Leaf,
    /// The shop's categories are not ours to set.
    None,
}

/// Whose product names the shop shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameMode {
    /// Optima's `Twr_Nazwa`, kept in step.
    #[default]
    Erp,
    /// The shop's own names (e.g. written by a marketing team): never touched.
    Shop,
}

fn default_separator() -> String {
    " > ".to_owned()
}

/// One shop's mapping rules, as configured.
///
/// ```json
/// { "price_list": "Detaliczna", "shop_prices": "gross", "rounding": "grosz",
///   "vat_classes": { "23": "", "8": "reduced-rate", "0": "zero-rate" },
///   "warehouses": ["MAG"], "safety_buffer": "2", "inactive": "hide" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopRules {
    /// `DfC_Nazwa` of the Optima price list the shop sells at.
    pub price_list: String,
    #[serde(default)]
    pub shop_prices: PriceBasis,
    #[serde(default)]
    pub rounding: Rounding,
    /// The currency the shop sells in; prices in another one are parked
    /// rather than shown with the wrong unit. `None`: take the ERP's.
    #[serde(default)]
    pub currency: Option<String>,
    /// VAT rate → the shop's tax class name. Empty: tax classes are not
    /// ours to set. A rate missing from a non-empty map is parked.
    #[serde(default)]
    pub vat_classes: HashMap<VatRate, String>,
    /// `Mag_Symbol`s whose available stock is summed for the shop
    /// (compared without regard to case or surrounding spaces).
    pub warehouses: Vec<String>,
    /// Units kept back from the shop (against stock the ERP has not seen yet).
    #[serde(default)]
    pub safety_buffer: Decimal,
    #[serde(default)]
    pub inactive: InactivePolicy,
    #[serde(default)]
    pub names: NameMode,
    #[serde(default)]
    pub categories: CategoryMode,
    #[serde(default = "default_separator")]
    pub category_separator: String,
    /// ERP unit → the shop's unit name ("szt." → "pcs"); units not listed pass as they are.
    #[serde(default)]
    pub units: BTreeMap<String, String>,
}

impl ShopRules {
    /// Rules for a price list and warehouses, every other rule at its default.
    pub fn new(price_list: impl Into<String>, warehouses: Vec<String>) -> Self {
        ShopRules {
            price_list: price_list.into(),
            shop_prices: PriceBasis::default(),
            rounding: Rounding::default(),
            currency: None,
            vat_classes: HashMap::new(),
            warehouses,
            safety_buffer: Decimal::ZERO,
            inactive: InactivePolicy::default(),
            names: NameMode::default(),
            categories: CategoryMode::default(),
            category_separator: default_separator(),
            units: BTreeMap::new(),
        }
    }

    /// Parses and validates rules from their JSON configuration.
    pub fn from_json(text: &str) -> Result<Self, RulesError> {
        let rules: ShopRules =
            serde_json::from_str(text).map_err(|e| RulesError::Syntax(e.to_string()))?;
        rules.validate()?;
        Ok(rules)
    }

    /// Checks what serde cannot: names present, buffer not negative.
    pub fn validate(&self) -> Result<(), RulesError> {
        let invalid = |what: &str| Err(RulesError::Invalid(what.to_owned()));
        if self.price_list.trim().is_empty() {
            return invalid("price_list is empty");
        }
        if self.warehouses.is_empty() {
            return invalid("warehouses is empty: the shop would never have stock");
        }
        if self.warehouses.iter().any(|w| w.trim().is_empty()) {
            return invalid("a warehouse symbol is empty");
        }
        if self.safety_buffer.is_sign_negative() && !self.safety_buffer.is_zero() {
            return invalid("safety_buffer is negative");
        }
        if self
            .currency
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return invalid("currency is empty");
        }
        Ok(())
    }

    fn uses_warehouse(&self, symbol: &str) -> bool {
        let symbol = symbol.trim();
        self.warehouses
            .iter()
            .any(|w| w.trim().eq_ignore_ascii_case(symbol))
    }
}

// ---- money -----------------------------------------------------------------

/// Rounds to the grosz, half away from zero (the Polish VAT rule).
pub fn round_grosz(value: Decimal) -> Decimal {
    let mut rounded = value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    // Always two places, so "10" and "10.00" look alike in logs and JSON.
    rounded.rescale(2);
    rounded
}

/// Rounds to the grosz, then to the `X.99` at or above `price − 0.01`.
pub fn round_ending_99(value: Decimal) -> Decimal {
    let grosz = round_grosz(value);
    // X.99 ≥ grosz − 0.01  ⇔  X ≥ grosz − 1, and X is a whole number ≥ 0.
    let whole = grosz
        .checked_sub(Decimal::ONE)
        .map(|v| v.ceil())
        .unwrap_or(Decimal::ZERO)
        .max(Decimal::ZERO);
    // At the very top of Decimal's range there is no X.99 above: keep the grosz price.
    let mut result = whole.checked_add(Decimal::new(99, 2)).unwrap_or(grosz);
    result.rescale(2);
    result
}

/// Applies a shop's rounding rule.
pub fn round_price(value: Decimal, rounding: Rounding) -> Decimal {
    match rounding {
        Rounding::Grosz => round_grosz(value),
        Rounding::Ending99 => round_ending_99(value),
    }
}

/// 1 + rate/100, the factor between net and gross (1 for zw, np, oo).
fn vat_factor(vat: VatRate) -> Result<Decimal, MapError> {
    (vat.percent() / Decimal::ONE_HUNDRED)
        .checked_add(Decimal::ONE)
        .filter(|f| *f > Decimal::ZERO)
        .ok_or_else(|| MapError::park(format!("VAT rate {vat} cannot be used")))
}

fn overflow(value: Decimal) -> MapError {
    MapError::park(format!("price {value} is out of range"))
}

/// net × (1 + rate/100), unrounded.
fn gross_exact(net: Decimal, vat: VatRate) -> Result<Decimal, MapError> {
    net.checked_mul(vat_factor(vat)?)
        .ok_or_else(|| overflow(net))
}

/// gross / (1 + rate/100), unrounded.
fn net_exact(gross: Decimal, vat: VatRate) -> Result<Decimal, MapError> {
    gross
        .checked_div(vat_factor(vat)?)
        .ok_or_else(|| overflow(gross))
}

/// Gross from net at a VAT rate, rounded to the grosz.
pub fn net_to_gross(net: Decimal, vat: VatRate) -> Result<Decimal, MapError> {
    gross_exact(net, vat).map(round_grosz)
}

/// Net from gross at a VAT rate, rounded to the grosz.
pub fn gross_to_net(gross: Decimal, vat: VatRate) -> Result<Decimal, MapError> {
    net_exact(gross, vat).map(round_grosz)
}

/// The price the shop should show for a price-list record: the right list,
/// converted to the shop's basis, rounded by the shop's rule. A price that
/// is zero or negative (before or after rounding) is parked, never shown.
pub fn shop_price(price: &PriceRecord, rules: &ShopRules) -> Result<Decimal, MapError> {
    if price.price_list.trim() != rules.price_list.trim() {
        return Err(MapError::NotForShop {
            reason: format!(
                "price list {:?}, the shop uses {:?}",
                price.price_list, rules.price_list
            ),
        });
    }
    if let Some(currency) = &rules.currency
        && !price.currency.trim().eq_ignore_ascii_case(currency.trim())
    {
        return Err(MapError::park(format!(
            "{} price of {} in {}, the shop sells in {currency}",
            price.price_list, price.sku, price.currency
        )));
    }
    if price.value <= Decimal::ZERO {
        return Err(MapError::park(format!(
            "{} price of {} is {}: a shop must not sell at it",
            price.price_list, price.sku, price.value
        )));
    }
    let exact = match (price.kind, rules.shop_prices) {
        (PriceKind::Gross, PriceBasis::Gross) | (PriceKind::Net, PriceBasis::Net) => price.value,
        (PriceKind::Net, PriceBasis::Gross) => gross_exact(price.value, price.vat)?,
        (PriceKind::Gross, PriceBasis::Net) => net_exact(price.value, price.vat)?,
    };
    let rounded = round_price(exact, rules.rounding);
    if rounded <= Decimal::ZERO {
        return Err(MapError::park(format!(
            "{} price of {} rounds to {rounded}",
            price.price_list, price.sku
        )));
    }
    Ok(rounded)
}

// ---- stock -----------------------------------------------------------------

/// A warehouse whose available stock was below zero (bad data in the ERP);
/// it counted as zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NegativeStock {
    pub sku: String,
    pub warehouse: String,
    pub available: Decimal,
}

/// The shop's stock for one product and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    /// Whole units, never negative.
    pub quantity: Decimal,
    /// Warehouses that counted as zero because their available was negative.
    pub negative: Vec<NegativeStock>,
}

/// The shop's stock with its details: the latest reading per configured
/// warehouse, `available()` of each (a negative one counts as 0 and is
/// listed), summed, minus the safety buffer, floored, at least 0.
pub fn stock_level(stock: &[StockRecord], rules: &ShopRules) -> StockLevel {
    // Several readings of one warehouse may arrive together: the newest counts.
    let mut latest: BTreeMap<String, &StockRecord> = BTreeMap::new();
    for record in stock.iter().filter(|r| rules.uses_warehouse(&r.warehouse)) {
        let key = record.warehouse.trim().to_ascii_uppercase();
        match latest.get(&key) {
            Some(seen) if seen.read_at >= record.read_at => {}
            _ => {
                latest.insert(key, record);
            }
        }
    }
    let mut sum = Decimal::ZERO;
    let mut negative = Vec::new();
    for record in latest.values() {
        let available = record.available();
        if available.is_sign_negative() && !available.is_zero() {
            negative.push(NegativeStock {
                sku: record.sku.clone(),
                warehouse: record.warehouse.clone(),
                available,
            });
            continue;
        }
        // Quantities of this size are bad data; saturate rather than panic.
        sum = sum.checked_add(available).unwrap_or(Decimal::MAX);
    }
    let after_buffer = sum
        .checked_sub(rules.safety_buffer)
        .unwrap_or(Decimal::ZERO);
    let mut quantity = after_buffer.floor().max(Decimal::ZERO);
    quantity.rescale(0);
    StockLevel { quantity, negative }
}

/// The shop's stock: [`stock_level`] without the details (negative
/// warehouses are logged as warnings).
pub fn shop_stock(stock: &[StockRecord], rules: &ShopRules) -> Decimal {
    let level = stock_level(stock, rules);
    for bad in &level.negative {
        tracing::warn!(
            sku = %bad.sku,
            warehouse = %bad.warehouse,
            available = %bad.available,
            "negative available stock counted as 0"
        );
    }
    level.quantity
}

// ---- what the shop shows ---------------------------------------------------

/// What one shop should show for one product, from the latest ERP records.
/// `None` means "not ours to say": the field is left as the shop has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopProductState {
    pub sku: String,
    pub regular_price: Option<Decimal>,
    pub stock_quantity: Option<i64>,
    pub visible: bool,
    /// Empty when the shop's names are not ours to set.
    pub name: String,
    pub category: Option<String>,
    /// The category as a path of names from the top, as written to the shop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_path: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A state and the reasons for what it leaves out.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub state: ShopProductState,
    /// Problems a person should see (a zero price, a negative warehouse, an
    /// unmapped VAT rate); the fields they affect are left as the shop has them.
    pub parked: Vec<String>,
}

/// The shop's category for a group path, by the rule.
pub fn shop_category(group_path: &[String], rules: &ShopRules) -> Option<String> {
    let groups: Vec<&str> = group_path
        .iter()
        .map(|g| g.trim())
        .filter(|g| !g.is_empty())
        .collect();
    match rules.categories {
        CategoryMode::None => None,
        CategoryMode::Leaf => groups.last().map(|g| (*g).to_owned()),
        CategoryMode::Path if groups.is_empty() => None,
        CategoryMode::Path => Some(groups.join(&rules.category_separator)),
    }
}

/// The shop's category as a path from the top (one element for `leaf`).
pub fn shop_category_path(group_path: &[String], rules: &ShopRules) -> Option<Vec<String>> {
    let groups: Vec<String> = group_path
        .iter()
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect();
    match rules.categories {
        CategoryMode::None => None,
        _ if groups.is_empty() => None,
        CategoryMode::Leaf => groups.last().map(|g| vec![g.clone()]),
        CategoryMode::Path => Some(groups),
    }
}

/// The shop's tax class for a VAT rate; `Ok(None)` when the rules map none.
pub fn shop_tax_class(vat: VatRate, rules: &ShopRules) -> Result<Option<String>, MapError> {
    if rules.vat_classes.is_empty() {
        return Ok(None);
    }
    match rules.vat_classes.get(&vat) {
        Some(class) => Ok(Some(class.clone())),
        None => Err(MapError::park(format!(
            "VAT rate {vat} has no tax class in the shop's rules"
        ))),
    }
}

/// The shop's unit name for an ERP unit.
pub fn shop_unit(unit: &str, rules: &ShopRules) -> String {
    let unit = unit.trim();
    rules
        .units
        .get(unit)
        .cloned()
        .unwrap_or_else(|| unit.to_owned())
}

impl ShopProductState {
    /// Builds the state from the latest records of one product.
    ///
    /// `price` is the record for the shop's price list if one is known;
    /// `stock` the readings of its warehouses if any were ever read (`None`
    /// leaves the shop's stock alone; an empty slice means 0). Nothing here
    /// fails the whole product: a bad price or VAT rate is reported in
    /// `parked` and only its field is left out.
    pub fn from_records(
        product: &ProductRecord,
        price: Option<&PriceRecord>,
        stock: Option<&[StockRecord]>,
        rules: &ShopRules,
    ) -> Mapped {
        let mut parked = Vec::new();
        // Records of another SKU here are a caller's mix-up: never let them
        // set this product's price or stock.
        let price = price.filter(|p| {
            let same = p.sku == product.sku;
            if !same {
                parked.push(format!("{}: a price of {} was ignored", product.sku, p.sku));
            }
            same
        });
        let regular_price = price.and_then(|p| match shop_price(p, rules) {
            Ok(value) => Some(value),
            Err(MapError::Park { reason }) => {
                parked.push(reason);
                None
            }
            Err(MapError::NotForShop { .. }) => None,
        });
        let stock_quantity = stock.map(|readings| {
            let own: Vec<StockRecord> = readings
                .iter()
                .filter(|r| r.sku == product.sku)
                .cloned()
                .collect();
            if own.len() != readings.len() {
                parked.push(format!("{}: stock of other SKUs was ignored", product.sku));
            }
            let level = stock_level(&own, rules);
            parked.extend(level.negative.iter().map(|bad| {
                format!(
                    "{} in {}: available {} is negative; counted as 0",
                    bad.sku, bad.warehouse, bad.available
                )
            }));
            // A quantity past i64 is bad data; the shop cannot hold it anyway.
            i64::try_from(level.quantity).unwrap_or(i64::MAX)
        });
        let (visible, stock_quantity) = if product.active {
            (true, stock_quantity)
        } else {
            match rules.inactive {
                InactivePolicy::Hide => (false, stock_quantity),
                InactivePolicy::OutOfStock => (true, Some(0)),
                InactivePolicy::HideAndOutOfStock => (false, Some(0)),
            }
        };
        let tax_class = match shop_tax_class(product.vat, rules) {
            Ok(class) => class,
            Err(err) => {
                parked.push(format!("{}: {err}", product.sku));
                None
            }
        };
        let state = ShopProductState {
            sku: product.sku.clone(),
            regular_price,
            stock_quantity,
            visible,
            name: match rules.names {
                NameMode::Erp => product.name.trim().to_owned(),
                NameMode::Shop => String::new(),
            },
            category: shop_category(&product.group_path, rules),
            category_path: shop_category_path(&product.group_path, rules),
            tax_class,
            unit: Some(shop_unit(&product.unit, rules)),
        };
        Mapped { state, parked }
    }
}

// ---- operations --------------------------------------------------------------

/// The fields of one product to write to a shop; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regular_price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock_quantity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Category names from the top; the connector finds or creates them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

impl ProductChanges {
    pub fn is_empty(&self) -> bool {
        self == &ProductChanges::default()
    }

    /// The stock to write: none for a product the rules hide, so that a
    /// platform that cannot hide an item (Allegro's batch commands) or
    /// where hiding is unverified (Shoper) never sells it.
    pub fn shown_stock(&self) -> Option<i64> {
        match self.visible {
            Some(false) => Some(0),
            _ => self.stock_quantity,
        }
    }

    /// These changes with a later set laid over them (coalescing queued
    /// operations: the later value of each field wins, the rest stay).
    pub fn then(self, later: ProductChanges) -> ProductChanges {
        ProductChanges {
            regular_price: later.regular_price.or(self.regular_price),
            stock_quantity: later.stock_quantity.or(self.stock_quantity),
            visible: later.visible.or(self.visible),
            tax_class: later.tax_class.or(self.tax_class),
            name: later.name.or(self.name),
            category: later.category.or(self.category),
            unit: later.unit.or(self.unit),
        }
    }
}

/// Keeps only the fields of `changes` that differ from what the shop holds.
pub fn not_yet_held(changes: &ProductChanges, held: Option<&ProductChanges>) -> ProductChanges {
    let Some(held) = held else {
        return changes.clone();
    };
    fn keep<T: PartialEq + Clone>(new: &Option<T>, held: &Option<T>) -> Option<T> {
        match (new, held) {
            (Some(n), Some(h)) if n == h => None,
            (n, _) => n.clone(),
        }
    }
    ProductChanges {
        regular_price: keep(&changes.regular_price, &held.regular_price),
        stock_quantity: keep(&changes.stock_quantity, &held.stock_quantity),
        visible: keep(&changes.visible, &held.visible),
        tax_class: keep(&changes.tax_class, &held.tax_class),
        name: keep(&changes.name, &held.name),
        category: keep(&changes.category, &held.category),
        unit: keep(&changes.unit, &held.unit),
    }
}

/// One write to one shop, as it travels on the shop-ops queue (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopOperation {
    pub shop: String,
    pub sku: String,
    pub changes: ProductChanges,
    /// When the ERP was read for these values: an operation never
    /// overwrites what a newer reading already put in the shop.
    pub source_time: DateTime<Utc>,
    /// Write every field even where the shop is recorded as holding it
    /// already: the ERP resent an unchanged reading (a forced pass), and the
    /// shop may have been edited by hand since it confirmed our last write.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconcile: bool,
}

impl ShopOperation {
    /// Merges two operations on the same shop and SKU, whatever order they
    /// arrived in: the newer reading's fields win. `None` when they are for
    /// different products.
    pub fn coalesce(self, other: ShopOperation) -> Option<ShopOperation> {
        if self.shop != other.shop || self.sku != other.sku {
            return None;
        }
        let (older, newer) = if other.source_time >= self.source_time {
            (self, other)
        } else {
            (other, self)
        };
        Some(ShopOperation {
            shop: newer.shop,
            sku: newer.sku,
            changes: older.changes.then(newer.changes),
            source_time: newer.source_time,
            reconcile: older.reconcile || newer.reconcile,
        })
    }
}

/// The operation that brings a shop from `old` (what it holds; `None` when
/// unknown) to `new`, or `None` when nothing it shows would change.
///
/// Fields `new` leaves at `None` (or an empty name) are not ours to say and
/// never sent.
pub fn diff(
    shop: &str,
    old: Option<&ShopProductState>,
    new: &ShopProductState,
    source_time: DateTime<Utc>,
) -> Option<ShopOperation> {
    fn changed<T: PartialEq + Clone>(old: Option<&T>, new: Option<&T>) -> Option<T> {
        match (old, new) {
            (_, None) => None,
            (Some(o), Some(n)) if o == n => None,
            (_, Some(n)) => Some(n.clone()),
        }
    }
    let changes = ProductChanges {
        regular_price: changed(
            old.and_then(|o| o.regular_price.as_ref()),
            new.regular_price.as_ref(),
        ),
        stock_quantity: changed(
            old.and_then(|o| o.stock_quantity.as_ref()),
            new.stock_quantity.as_ref(),
        ),
        visible: changed(old.map(|o| &o.visible), Some(&new.visible)),
        tax_class: changed(
            old.and_then(|o| o.tax_class.as_ref()),
            new.tax_class.as_ref(),
        ),
        name: changed(
            old.map(|o| &o.name),
            Some(&new.name).filter(|n| !n.is_empty()),
        ),
        category: changed(
            old.and_then(|o| o.category_path.as_ref()),
            new.category_path.as_ref(),
        ),
        unit: changed(old.and_then(|o| o.unit.as_ref()), new.unit.as_ref()),
    };
    if changes.is_empty() {
        return None;
    }
    Some(ShopOperation {
        shop: shop.to_owned(),
        sku: new.sku.clone(),
        changes,
        source_time,
        reconcile: false,
    })
}
