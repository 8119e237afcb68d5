//! What a shop must show for the ERP's records, mapped as the cloud maps
//! them, and whether a product in the shop stand-in shows it.

use std::collections::HashMap;

use chrono::Utc;
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

/// Stock in MAG per SKU, by plain SQL rather than the agent's reader:
/// the current `TwrIlosci` row's quantity, its two reservations, and
/// the lines of the shop's orders still waiting in the buffer (the shop
/// took those off its own stock when they were placed).
pub async fn stock_by_plain_sql(
    sql: &mut optima_standin::erp::Client,
) -> anyhow::Result<Vec<StockRecord>> {
    let rows = sql
        .simple_query(
            "SELECT t.Twr_Kod, CAST(i.TwI_Ilosc AS decimal(15,4)) AS quantity, \
               CAST(i.TwI_Rezerwacje + i.TwI_RezerwacjeZlecenia AS decimal(15,4)) AS reserved \
             FROM CDN.TwrIlosci i JOIN CDN.Towary t ON t.Twr_TwrId = i.TwI_TwrId \
             JOIN CDN.Magazyny m ON m.Mag_MagId = i.TwI_MagId \
             WHERE m.Mag_Symbol = 'MAG' AND i.TwI_Data = (SELECT MAX(l.TwI_Data) FROM CDN.TwrIlosci l \
               WHERE l.TwI_TwrId = i.TwI_TwrId AND l.TwI_MagId = i.TwI_MagId AND l.TwI_Data <= GETDATE())",
        )
        .await?
        .into_first_result()
        .await?;
    let mut stock: HashMap<String, (Decimal, Decimal)> = HashMap::new();
    for row in &rows {
        let (Some(sku), Some(quantity), Some(reserved)) = (
            row.get::<&str, _>("Twr_Kod"),
            row.get::<Decimal, _>("quantity"),
            row.get::<Decimal, _>("reserved"),
        ) else {
            continue;
        };
        stock.insert(sku.trim().to_owned(), (quantity, reserved));
    }
    let waiting = sql
        .simple_query(
            "SELECT t.Twr_Kod, CAST(e.TrE_Ilosc AS decimal(15,4)) AS quantity \
             FROM CDN.TraElem e JOIN CDN.TraNag n ON n.TrN_TrNID = e.TrE_TrNId \
             JOIN CDN.Towary t ON t.Twr_TwrId = e.TrE_TwrId JOIN CDN.Magazyny m ON m.Mag_MagId = e.TrE_MagId \
             WHERE m.Mag_Symbol = 'MAG' AND n.TrN_Bufor = 1 AND n.TrN_Anulowany = 0 AND n.TrN_eSklepZrodlo = 6",
        )
        .await?
        .into_first_result()
        .await?;
    for row in &waiting {
        if let (Some(sku), Some(quantity)) = (
            row.get::<&str, _>("Twr_Kod"),
            row.get::<Decimal, _>("quantity"),
        ) && let Some(entry) = stock.get_mut(sku.trim())
        {
            entry.1 += quantity;
        }
    }
    let read_at = Utc::now();
    Ok(stock
        .into_iter()
        .map(|(sku, (quantity, reserved))| StockRecord {
            sku,
            warehouse: "MAG".into(),
            quantity,
            reserved,
            read_at,
        })
        .collect())
}
