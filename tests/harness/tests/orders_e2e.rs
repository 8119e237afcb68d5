//! Shop → ERP → shop on every real piece: an order placed in the WooCommerce
//! stand-in reaches the webhook, becomes a command, and the agent writes it
//! into the Optima stand-in as an RO with the right customer, addresses,
//! lines, prices, VAT and totals; the office realises it with the simulator
//! and the shop shows the order completed with its tracking number.

use std::time::{Duration, Instant};

use anyhow::Context;
use harness::cloud::{LocalCloud, start_agent};
use harness::standins::{OptimaStandin, WooStandinProcess};
use harness::wait_for;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tiberius::Query;

pub const ORDERS_TOML: &str = "\n[sync]\npoll_seconds = 1\noverlap_seconds = 5\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n\n[orders]\nwarehouse = \"MAG\"\ndefault_payment_form = \"przelew\"\ndefault_shipping_service = \"TRANSPORT\"\nprogress_seconds = 1\ncommand_visibility_seconds = 10\n\n[orders.payment_forms]\nbacs = \"przelew\"\ncod = \"pobranie\"\n";

/// Two products with plenty of stock in MAG (so the shop can sell them
/// whatever the first sync publishes).
async fn stocked_skus(erp: &OptimaStandin) -> anyhow::Result<Vec<String>> {
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let rows = Query::new(
        "SELECT TOP 2 t.Twr_Kod FROM CDN.Towary t JOIN CDN.TwrIlosci i ON i.TwI_TwrId = t.Twr_TwrId \
         JOIN CDN.Magazyny m ON m.Mag_MagId = i.TwI_MagId \
         WHERE m.Mag_Symbol = 'MAG' AND t.Twr_Typ = 1 AND t.Twr_NieAktywny = 0 AND t.Twr_Kod NOT LIKE 'BAD%' \
         GROUP BY t.Twr_Kod HAVING MIN(i.TwI_Ilosc - i.TwI_Rezerwacje) > 20 ORDER BY t.Twr_Kod",
    )
    .query(&mut sql)
    .await?
    .into_first_result()
    .await?;
    let skus: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get::<&str, _>("Twr_Kod").map(str::to_owned))
        .collect();
    anyhow::ensure!(skus.len() == 2, "two stocked products: {skus:?}");
    Ok(skus)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_order_becomes_an_ro_and_its_shipping_comes_back() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = if std::env::var_os("E2E_KEEP").is_some() {
        tmp.keep()
    } else {
        tmp.path().to_path_buf()
    };
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 100, &dir)?;
    let all_skus = erp.skus().await?;
    let skus = stocked_skus(&erp).await?;
    let shop = WooStandinProcess::start_with(None, Some(&all_skus), None, &dir)?;
    let cloud = LocalCloud::start_with_host_args(
        &dir,
        "orders-e2e",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
        &["--schedule-every", "poller=5"],
    )?;
    let webhook = cloud.webhook_url.clone().context("no webhook URL")?;
    shop.register_order_webhooks(&format!("{webhook}/sklep"))
        .await?;
    let config = dir.join("agent.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 30, ORDERS_TOML)?;
    let _agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &dir.join("agent.log"),
        &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
    )?;

    let placed = Instant::now();
    let order = shop
        .place_order(json!({
            "line_items": [[skus[0], 3], [skus[1], 1]],
            "billing": {"first_name": "Żaneta", "last_name": "Gęślarska", "company": "Źdźbło Sp. z o.o.",
                        "address_1": "ul. Świętego Wojciecha 12", "city": "Łódź", "postcode": "90-001",
                        "country": "PL", "email": "zaneta@example.pl", "phone": "+48 600 700 800"},
            "shipping": {"first_name": "Jerzy", "last_name": "Kowalczyk", "address_1": "ul. Polna 3",
                         "city": "Gdańsk", "postcode": "80-001", "country": "PL"},
            "payment_method": "bacs",
            "shipping_total": "15.00",
            "status": "processing"
        }))
        .await?;
    let order_id = order["id"].as_u64().context("order id")?;
    let number = order["number"].as_str().context("order number")?.to_owned();
    let total: Decimal = order["total"].as_str().context("total")?.parse()?;
    let total_tax: Decimal = order["total_tax"].as_str().context("total_tax")?.parse()?;

    // The RO appears in Optima.
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let header = wait_for("the RO in Optima", Duration::from_secs(60), || {
        let number = number.clone();
        let ado = erp.ado_with_password();
        async move {
            let mut sql = optima_standin::erp::connect(&ado).await?;
            let mut query = Query::new(
                "SELECT n.TrN_TrNID, n.TrN_NumerPelny, n.TrN_Bufor, n.TrN_RazemBrutto, n.TrN_RazemVAT, n.TrN_OdbMiasto, n.TrN_OdbNazwa1, \
                 k.Knt_Nazwa1, k.Knt_Nazwa2, k.Knt_Miasto, k.Knt_Email FROM CDN.TraNag n JOIN CDN.Kontrahenci k ON k.Knt_KntId = n.TrN_PodID \
                 WHERE n.TrN_NumerObcy = CAST(@P1 AS varchar(256))",
            );
            query.bind(number.as_str());
            let rows = query.query(&mut sql).await?.into_first_result().await?;
            Ok(rows.first().map(|r| {
                (
                    r.get::<i32, _>("TrN_TrNID").unwrap_or_default(),
                    r.get::<&str, _>("TrN_NumerPelny").unwrap_or_default().to_owned(),
                    r.get::<i16, _>("TrN_Bufor"),
                    r.get::<Decimal, _>("TrN_RazemBrutto"),
                    r.get::<Decimal, _>("TrN_RazemVAT"),
                    r.get::<&str, _>("TrN_OdbMiasto").map(str::to_owned),
                    r.get::<&str, _>("Knt_Nazwa1").map(str::to_owned),
                    r.get::<&str, _>("Knt_Nazwa2").map(str::to_owned),
                    r.get::<&str, _>("Knt_Miasto").map(str::to_owned),
                )
            }))
        }
    })
    .await?;
    println!(
        "shop order {number} → Optima {} after {:?}",
        header.1,
        placed.elapsed()
    );
    let (ro_id, ro_number, bufor, gross, vat, odb_city, name1, name2, city) = header;
    assert!(ro_number.starts_with("RO/"), "{ro_number}");
    assert_eq!(bufor, Some(1), "written to the buffer");
    assert_eq!(
        gross,
        Some(total),
        "gross equals the shop's total to the grosz"
    );
    assert_eq!(vat, Some(total_tax), "VAT equals the shop's tax");
    assert_eq!(
        odb_city.as_deref(),
        Some("Gdańsk"),
        "recipient = shipping address"
    );
    assert_eq!(
        name1.as_deref(),
        Some("Źdźbło Sp. z o.o."),
        "company as the customer"
    );
    assert_eq!(name2.as_deref(), Some("Żaneta Gęślarska"));
    assert_eq!(city.as_deref(), Some("Łódź"));

    let mut query = Query::new(
        "SELECT TrE_TwrKod, TrE_Ilosc, TrE_WartoscBrutto FROM CDN.TraElem WHERE TrE_TrNId = @P1 ORDER BY TrE_Lp",
    );
    query.bind(ro_id);
    let lines = query.query(&mut sql).await?.into_first_result().await?;
    let codes: Vec<(String, Decimal)> = lines
        .iter()
        .filter_map(|r| {
            Some((
                r.get::<&str, _>("TrE_TwrKod")?.to_owned(),
                r.get::<Decimal, _>("TrE_Ilosc")?,
            ))
        })
        .collect();
    assert_eq!(
        codes,
        [
            (skus[0].clone(), Decimal::from(3)),
            (skus[1].clone(), Decimal::from(1)),
            ("TRANSPORT".to_owned(), Decimal::ONE)
        ]
    );
    let shop_lines: Vec<Decimal> = order["line_items"]
        .as_array()
        .context("line_items")?
        .iter()
        .map(|l| -> anyhow::Result<Decimal> {
            let total: Decimal = l["total"].as_str().context("total")?.parse()?;
            let tax: Decimal = l["total_tax"].as_str().context("total_tax")?.parse()?;
            Ok(total + tax)
        })
        .collect::<anyhow::Result<_>>()?;
    let erp_lines: Vec<Decimal> = lines
        .iter()
        .take(2)
        .filter_map(|r| r.get::<Decimal, _>("TrE_WartoscBrutto"))
        .collect();
    assert_eq!(
        erp_lines, shop_lines,
        "line gross values as the shop priced them"
    );

    // The warehouse realises the reservation with a tracking number.
    let db = erp.db.clone();
    let realised = Instant::now();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut sim = optima_standin::simulator::Simulator::open(&db)?;
        sim.perform(optima_standin::simulator::Action::Realise {
            ro_id: i64::from(ro_id),
            tracking: "PL7777000111".into(),
        })?;
        Ok(())
    })
    .await??;
    let shown: Value = wait_for(
        "the shop's order completed with tracking",
        Duration::from_secs(60),
        || async {
            let order = shop.order(order_id).await?;
            let done = order["order"]["status"] == "completed"
                && order["notes"].to_string().contains("PL7777000111");
            Ok(done.then_some(order))
        },
    )
    .await?;
    println!(
        "realised in Optima → shop completed with tracking after {:?}",
        realised.elapsed()
    );
    let notes = shown["notes"].as_array().context("notes")?;
    let tracking_notes: Vec<&Value> = notes
        .iter()
        .filter(|n| n.to_string().contains("PL7777000111"))
        .collect();
    assert_eq!(tracking_notes.len(), 1, "one tracking note: {notes:?}");
    assert_eq!(
        tracking_notes[0]["customer_note"], true,
        "the customer sees it: {notes:?}"
    );
    Ok(())
}
