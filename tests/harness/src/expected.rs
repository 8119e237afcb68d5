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

/// One product of the office's catalogue as plain SQL reads it, with what
/// a shop selling gross in one price list must show for it.
#[derive(Debug, Clone)]
pub struct CatalogueRow {
    pub name: String,
    /// The name of the product's own group (`TwG_Nazwa`, else `TwG_Kod`).
    pub group: Option<String>,
    pub active: bool,
    /// The list's price, gross: as stored when `TwC_Typ` is 2, else net ×
    /// (100 + `Twr_Stawka`) / 100; rounded half away from zero to the grosz.
    /// `None` when the list has no price above zero for it.
    pub gross_price: Option<Decimal>,
}

/// The catalogue per SKU by plain SQL and hand arithmetic, not the agent's
/// readers or the cloud's mapping: what the shop must show is computed
/// apart from the code under test.
pub async fn catalogue_by_plain_sql(
    sql: &mut optima_standin::erp::Client,
    price_list: &str,
) -> anyhow::Result<HashMap<String, CatalogueRow>> {
    let groups: HashMap<i32, String> = sql
        .simple_query(
            "SELECT TwG_GIDNumer, TwG_Nazwa, TwG_Kod FROM CDN.TwrGrupy WHERE TwG_GIDTyp = -16",
        )
        .await?
        .into_first_result()
        .await?
        .iter()
        .filter_map(|row| {
            let id = row.get::<i32, _>("TwG_GIDNumer")?;
            let name = row
                .get::<&str, _>("TwG_Nazwa")
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .or(row.get::<&str, _>("TwG_Kod").map(str::trim))?;
            Some((id, name.to_owned()))
        })
        .collect();
    let rows = sql
        .simple_query(
            "SELECT Twr_TwrId, Twr_Kod, Twr_Nazwa, Twr_NieAktywny, Twr_TwGGIDNumer, \
               CAST(Twr_Stawka AS decimal(5,2)) AS stawka FROM CDN.Towary",
        )
        .await?
        .into_first_result()
        .await?;
    let mut by_id: HashMap<i32, (String, Decimal)> = HashMap::new();
    let mut catalogue = HashMap::new();
    for row in &rows {
        let (Some(id), Some(sku), Some(stawka)) = (
            row.get::<i32, _>("Twr_TwrId"),
            row.get::<&str, _>("Twr_Kod"),
            row.get::<Decimal, _>("stawka"),
        ) else {
            continue;
        };
        let sku = sku.trim().to_owned();
        by_id.insert(id, (sku.clone(), stawka));
        catalogue.insert(
            sku,
            CatalogueRow {
                name: row
                    .get::<&str, _>("Twr_Nazwa")
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                group: row
                    .get::<i32, _>("Twr_TwGGIDNumer")
                    .and_then(|g| groups.get(&g).cloned()),
                active: row.get::<u8, _>("Twr_NieAktywny").unwrap_or(0) == 0,
                gross_price: None,
            },
        );
    }
    let prices = sql
        .simple_query(format!(
            "SELECT c.TwC_TwrID, c.TwC_Typ, CAST(c.TwC_Wartosc AS decimal(15,4)) AS value \
             FROM CDN.TwrCeny c JOIN CDN.DefCeny d ON d.DfC_Lp = c.TwC_TwCNumer \
             WHERE d.DfC_Nazwa = '{}'",
            price_list.replace('\'', "''")
        ))
        .await?
        .into_first_result()
        .await?;
    for row in &prices {
        let (Some(id), Some(value)) = (
            row.get::<i32, _>("TwC_TwrID"),
            row.get::<Decimal, _>("value"),
        ) else {
            continue;
        };
        let Some((sku, stawka)) = by_id.get(&id) else {
            continue;
        };
        let gross = if row.get::<u8, _>("TwC_Typ") == Some(2) {
            value
        } else {
            value * (Decimal::ONE_HUNDRED + stawka) / Decimal::ONE_HUNDRED
        };
        let gross =
            gross.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        if let Some(entry) = catalogue.get_mut(sku)
            && gross > Decimal::ZERO
        {
            entry.gross_price = Some(gross);
        }
    }
    Ok(catalogue)
}
