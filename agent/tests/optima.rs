//! The agent's Optima SQL against the ERP stand-in (or `MSSQL_URL`): what it
//! projects is what the database holds, bad rows included.

use std::collections::HashMap;

use agent::optima;
use agent::sql::connect_ado;
use chrono::{NaiveDate, Utc};
use contract::VatRate;
use optima_standin::erp::erp_for_tests;
use optima_standin::seed::SeedOptions;
use rust_decimal::Decimal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_prices_and_stock_project_from_optima() -> anyhow::Result<()> {
    let erp = erp_for_tests(SeedOptions {
        products: 300,
        seed: 7,
    })
    .await?;
    let mut sql = connect_ado(&erp.ado, 10).await?;

    let groups = optima::group_paths(&mut sql).await?;
    assert!(
        groups.values().any(|p| p.len() == 3),
        "a three-level group tree: {groups:?}"
    );

    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let page = optima::product_ids_page(&mut sql, after, 128).await?;
        let Some(&last) = page.last() else { break };
        after = last;
        ids.extend(page);
    }
    assert_eq!(ids.len(), 300, "keyset pages cover the catalogue once");

    let products = optima::products(&mut sql, &ids, &groups).await?;
    assert!(
        products.len() >= 295,
        "all but unreadable rows: {}",
        products.len()
    );
    assert!(
        products
            .iter()
            .any(|p| p.name.chars().any(|c| "ąćęłńóśźż".contains(c))),
        "Polish names survive"
    );
    assert!(
        products.iter().any(|p| p.vat == VatRate::Exempt),
        "zw products"
    );
    assert!(
        products
            .iter()
            .any(|p| p.vat == VatRate::Percent(Decimal::from(23)))
    );
    assert!(
        products.iter().any(|p| p.ean.is_none()),
        "the missing-EAN bad row is projected, for the cloud to park"
    );
    assert!(
        products.iter().any(|p| p.name.chars().count() == 255),
        "the 255-character name arrives whole"
    );
    assert!(products.iter().any(|p| !p.group_path.is_empty()));

    let by_sku =
        optima::product_ids_for_skus(&mut sql, &[products[0].sku.clone(), "NO-SUCH-SKU".into()])
            .await?;
    assert_eq!(by_sku, vec![products[0].erp_id as i32]);

    let prices = optima::prices(&mut sql, &ids).await?;
    let lists: std::collections::BTreeSet<&str> =
        prices.iter().map(|p| p.price_list.as_str()).collect();
    assert!(
        lists.len() >= 3,
        "retail, wholesale and purchase lists: {lists:?}"
    );
    assert!(
        prices.iter().any(|p| p.value.is_zero()),
        "the zero-price bad row is projected, for the cloud to park"
    );
    assert!(prices.iter().all(|p| p.value.scale() <= 4));

    let stock = optima::stock(&mut sql, &ids, Utc::now()).await?;
    let mut per_item: HashMap<(&str, &str), usize> = HashMap::new();
    for s in &stock {
        *per_item
            .entry((s.sku.as_str(), s.warehouse.as_str()))
            .or_default() += 1;
    }
    assert!(
        per_item.values().all(|&n| n == 1),
        "one (latest) row per item and warehouse"
    );
    let warehouses: std::collections::BTreeSet<&str> =
        stock.iter().map(|s| s.warehouse.as_str()).collect();
    assert!(warehouses.len() >= 2, "several warehouses: {warehouses:?}");
    assert!(
        stock.iter().any(|s| s.available() < Decimal::ZERO),
        "the negative-stock bad row is projected"
    );

    let long_ago = NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default();
    let (items, newest) = optima::items_on_documents_since(&mut sql, long_ago).await?;
    assert!(!items.is_empty(), "the seed has documents with lines");
    assert!(newest.is_some());
    let now = optima::server_now(&mut sql).await?;
    let (none, _) =
        optima::items_on_documents_since(&mut sql, now + chrono::Duration::hours(1)).await?;
    assert!(none.is_empty(), "nothing changed after the future");
    Ok(())
}
