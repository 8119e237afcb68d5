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

    let prices = optima::prices(&mut sql, &ids, agent::optima::PriceListKey::Lp).await?;
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
    let work_now = || erp.db.as_deref().map(optima_standin::work::now);
    let before = work_now();
    let (none, _) =
        optima::items_on_documents_since(&mut sql, now + chrono::Duration::hours(1)).await?;
    let after = work_now();
    assert!(none.is_empty(), "nothing changed after the future");
    if let (Some(before), Some(after)) = (before, after) {
        let work = after - before;
        // Optima has no index led by TrN_TS_Mod: the poll seeks the e-shop
        // index instead of reading every document (a plain `WHERE
        // TrN_TS_Mod > @since` steps through all of TraNag here).
        assert_eq!(
            work.full_scan_steps, 0,
            "an idle document poll scans nothing: {work:?}"
        );
    }
    Ok(())
}

/// Statements of an idle cursor poll: the server's clock, the smallest
/// `TrN_eSklepID` in use (none in the seed), documents since the cursor,
/// products since the cursor.
const IDLE_POLL_STATEMENTS: u64 = 4;

/// Cursor polls catch an office change, re-read the overlap while a late
/// commit could still arrive, and once the overlap has passed since the
/// cursor last moved, cost a clock read and a few empty queries: an idle
/// office is not asked for its last documents' items every poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_office_costs_four_statements_a_poll_once_the_overlap_passed() -> anyhow::Result<()>
{
    use agent::store::Store;
    use agent::sync::{CursorMoves, poll_changes};
    use optima_standin::simulator::{Action, Simulator};

    let erp = erp_for_tests(SeedOptions {
        products: 50,
        seed: 11,
    })
    .await?;
    let db = erp
        .db
        .clone()
        .ok_or_else(|| anyhow::anyhow!("this test writes a delivery through the stand-in's office simulator; it cannot run against MSSQL_URL"))?;
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("state.sqlite"))?;
    // Wide enough that the two polls after the delivery fall inside it on
    // a busy 2-core machine (it was 2 s: test audit §1 row 5).
    let overlap = chrono::Duration::seconds(5);
    let mut moves = CursorMoves::default();
    let poll = async |sql: &mut agent::sql::SqlClient, moves: &mut CursorMoves| {
        // Counted on this task only: the binary's other tests run beside it.
        let (report, cost) = optima::costed(poll_changes(
            sql,
            &store,
            overlap,
            moves,
            agent::optima::PriceListKey::Lp,
            std::time::Duration::ZERO,
        ))
        .await;
        anyhow::Ok((report?.items, cost.statements))
    };

    poll(&mut sql, &mut moves).await?; // the first poll sets the cursors
    let idle = std::time::Duration::from_millis(5500);
    tokio::time::sleep(idle).await;
    assert_eq!(
        poll(&mut sql, &mut moves).await?,
        (0, IDLE_POLL_STATEMENTS),
        "nothing changed since the cursors were set (the seed's documents are older)"
    );
    let ids = optima::product_ids_page(&mut sql, 0, 1).await?;
    let groups = optima::group_paths(&mut sql).await?;
    let products = optima::products(&mut sql, &ids, &groups).await?;
    let sku = products
        .first()
        .map(|p| p.sku.clone())
        .ok_or_else(|| anyhow::anyhow!("a product"))?;
    Simulator::open(&db)?.perform(Action::Delivery {
        sku,
        warehouse: "MAG".into(),
        qty: Decimal::from(5),
    })?;

    let (items, _) = poll(&mut sql, &mut moves).await?;
    assert_eq!(items, 1, "the delivered item is re-read");
    let (items, _) = poll(&mut sql, &mut moves).await?;
    assert_eq!(
        items, 1,
        "within the overlap of the cursor's move, it is read again"
    );
    tokio::time::sleep(idle).await;
    let (items, statements) = poll(&mut sql, &mut moves).await?;
    assert_eq!(
        (items, statements),
        (0, IDLE_POLL_STATEMENTS),
        "the overlap has passed: the clock, the e-shop ids in use (none), documents since the cursor, products since the cursor"
    );
    Ok(())
}

/// Available stock subtracts service-order reservations too: the office
/// reserves for a service order, and what the agent reports as reserved
/// grows by exactly that, computed here by plain SQL over the current row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_order_reservation_lowers_available_stock_by_exactly_its_quantity()
-> anyhow::Result<()> {
    let erp = erp_for_tests(SeedOptions {
        products: 60,
        seed: 21,
    })
    .await?;
    let Some(db) = erp.db.clone() else {
        eprintln!("real SQL Server: the office simulator is the stand-in's; skipped");
        return Ok(());
    };
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let ids = optima::product_ids_page(&mut sql, 0, 10).await?;
    let before = optima::stock(&mut sql, &ids, Utc::now()).await?;
    let target = before
        .iter()
        .find(|s| s.warehouse == "MAG")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no MAG stock"))?;
    let sku = target.sku.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut sim = optima_standin::simulator::Simulator::open(&db)?;
        sim.perform(optima_standin::simulator::Action::ReserveForServiceOrder {
            sku,
            warehouse: "MAG".into(),
            qty: Decimal::new(3, 0),
        })?;
        Ok(())
    })
    .await??;
    // Independent: the current row's three columns, by plain SQL.
    let mut query = tiberius::Query::new(
        "SELECT TOP 1 CAST(i.TwI_Ilosc - i.TwI_Rezerwacje - i.TwI_RezerwacjeZlecenia AS decimal(15,4)) AS available \
         FROM CDN.TwrIlosci i JOIN CDN.Towary t ON t.Twr_TwrId = i.TwI_TwrId JOIN CDN.Magazyny m ON m.Mag_MagId = i.TwI_MagId \
         WHERE t.Twr_Kod = CAST(@P1 AS varchar(50)) AND m.Mag_Symbol = 'MAG' AND i.TwI_Data <= GETDATE() ORDER BY i.TwI_Data DESC",
    );
    query.bind(target.sku.as_str());
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    let expected: Decimal = rows
        .first()
        .and_then(|r| r.get::<Decimal, _>("available"))
        .ok_or_else(|| anyhow::anyhow!("no stock row"))?;
    let after = optima::stock(&mut sql, &ids, Utc::now()).await?;
    let now = after
        .iter()
        .find(|s| s.sku == target.sku && s.warehouse == "MAG")
        .ok_or_else(|| anyhow::anyhow!("stock gone"))?;
    assert_eq!(now.available(), expected);
    assert_eq!(now.available(), target.available() - Decimal::new(3, 0));
    Ok(())
}

/// `TwC_TwCNumer` names a price level by `DfC_Lp`: after a level was
/// deleted (the stand-in's ids 1, 2, 4 have Lp 1, 2, 3) only the Lp key
/// finds the wholesale list; the id key loses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_follow_the_price_level_number_after_a_level_was_deleted() -> anyhow::Result<()> {
    let erp = erp_for_tests(SeedOptions {
        products: 40,
        seed: 22,
    })
    .await?;
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let ids = optima::product_ids_page(&mut sql, 0, 40).await?;
    let lists = |prices: &[contract::PriceRecord]| -> std::collections::BTreeSet<String> {
        prices.iter().map(|p| p.price_list.clone()).collect()
    };
    let by_lp = optima::prices(&mut sql, &ids, optima::PriceListKey::Lp).await?;
    assert!(lists(&by_lp).contains("Hurtowa"), "{:?}", lists(&by_lp));
    let by_id = optima::prices(&mut sql, &ids, optima::PriceListKey::Id).await?;
    if erp.db.is_some() {
        assert!(!lists(&by_id).contains("Hurtowa"), "{:?}", lists(&by_id));
    }
    Ok(())
}
