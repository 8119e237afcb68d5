//! Tax classes: WooCommerce tax class slugs mapped to rates (one rate per class, country PL).
//! Default, a Polish shop: standard (`""`) 23 %, `reduced-rate` 8 %, `super-reduced-rate` 5 %,
//! `zero-rate` 0 % (configurable with `WooOptions::tax_rates`). Unknown classes are reset to
//! standard, as `WC_Product::set_tax_class` does.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One tax rate row (`woocommerce_tax_rates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaxRate {
    pub id: u64,
    /// Tax class slug, `""` = standard.
    pub class: String,
    pub percent: Decimal,
    pub label: String,
}

impl TaxRate {
    /// `PL-VAT 23%-1` style rate code (COUNTRY-STATE-NAME-PRIORITY with an empty state).
    pub fn rate_code(&self) -> String {
        format!("PL-{}-1", self.label)
    }
}

/// The shop's rates.
pub fn polish_vat() -> Vec<TaxRate> {
    let mk = |id: u64, class: &str, pct: i64| TaxRate {
        id,
        class: class.to_string(),
        percent: Decimal::from(pct),
        label: format!("VAT {pct}%"),
    };
    vec![
        mk(1, "", 23),
        mk(2, "reduced-rate", 8),
        mk(3, "super-reduced-rate", 5),
        mk(4, "zero-rate", 0),
    ]
}

/// Valid class slugs (for `tax_class`).
pub fn valid_class(rates: &[TaxRate], class: &str) -> bool {
    rates.iter().any(|r| r.class == class)
}

/// The rate for a class (the standard class's for unknown ones).
pub fn rate_for(rates: &[TaxRate], class: &str) -> TaxRate {
    rates
        .iter()
        .find(|r| r.class == class)
        .or_else(|| rates.iter().find(|r| r.class.is_empty()))
        .cloned()
        .unwrap_or_else(|| fallback(rates))
}

fn fallback(rates: &[TaxRate]) -> TaxRate {
    rates.first().cloned().unwrap_or(TaxRate {
        id: 1,
        class: String::new(),
        percent: Decimal::from(23),
        label: "VAT 23%".into(),
    })
}
