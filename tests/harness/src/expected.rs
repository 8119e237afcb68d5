//! What a shop must show for the ERP's records, mapped as the cloud maps
//! them, and whether a product in the shop stand-in shows it.

use std::collections::HashMap;

use contract::{PriceRecord, ProductRecord, StockRecord};
use functions::mapping::{ShopProductState, ShopRules};
use rust_decimal::Decimal;
use serde_json::Value;

/// Per SKU, the state `rules` make of each product, its price in the
/// shop's price list and its stock readings.
pub fn shop_states(
    products: &[ProductRecord],
    prices: &[PriceRecord],
    stock: &[StockRecord],
    rules: &ShopRules,
) -> HashMap<String, ShopProductState> {
    products
        .iter()
        .map(|product| {
            let price = prices
                .iter()
                .find(|p| p.sku == product.sku && p.price_list == rules.price_list);
            let readings: Vec<_> = stock
                .iter()
                .filter(|s| s.sku == product.sku)
                .cloned()
                .collect();
            let readings = (!readings.is_empty()).then_some(readings.as_slice());
            let mapped = ShopProductState::from_records(product, price, readings, rules);
            (product.sku.clone(), mapped.state)
        })
        .collect()
}

/// Whether `product` (as `/__standin/products` lists it) shows `want`:
/// its price and stock where the state sets them, and its visibility.
pub fn shows(product: &Value, want: &ShopProductState) -> bool {
    let price_ok = want.regular_price.is_none_or(|w| {
        product["regular_price"]
            .as_str()
            .and_then(|s| s.parse::<Decimal>().ok())
            == Some(w)
    });
    let stock_ok = want
        .stock_quantity
        .is_none_or(|w| product["stock_quantity"].as_i64() == Some(w));
    let visible_ok = (product["status"] == "publish") == want.visible;
    price_ok && stock_ok && visible_ok
}
