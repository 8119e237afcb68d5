//! Optima → Shoper → Optima on every real piece but Shoper itself: the
//! Optima stand-in, the cloud (its functions under the template's IAM
//! grants, the poller every 3 s, the webhook signed as Shoper signs) and an
//! agent that writes orders, with the Shoper stand-in
//! (`tests/shoper-standin`) as the shop.
//!
//! The shop's product stocks carry the SKUs as their codes. The first sync
//! sets their stock and prices through `/bulk` to what plain SQL says
//! Optima has; a buyer's order (its webhook delivered signed with
//! `X-Webhook-SHA1`) becomes one RO in Optima with the shop's per-line VAT;
//! the order realised with a tracking number shows in the shop as a sent
//! parcel with that code, once.

use std::time::{Duration, Instant};

use anyhow::Context;
use harness::cloud::{LocalCloud, start_agent};
use harness::expected::{catalogue_by_plain_sql, stock_by_plain_sql};
use harness::standins::OptimaStandin;
use harness::wait_for;
use rust_decimal::Decimal;
use shoper_standin::{NewLine, NewOrder, NewProduct, NewWebhook, ShoperOptions, ShoperStandin};
use tiberius::Query;

const SHOP: &str = "shoper";
const WEBHOOK_SECRET: &str = "klucz-webhooka-e2e";

const ORDERS_TOML: &str = "\n[sync]\npoll_seconds = 1\noverlap_seconds = 5\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n\n[orders]\nwarehouse = \"MAG\"\ndefault_payment_form = \"przelew\"\ndefault_shipping_service = \"TRANSPORT\"\nprogress_seconds = 1\ncommand_visibility_seconds = 10\n";

fn shop_parameters(standin: &ShoperStandin) -> (String, String) {
    harness::standins::shoper_shop_parameters(
        SHOP,
        &standin.base_url(),
        (standin.login(), standin.password()),
        WEBHOOK_SECRET,
        "Detaliczna",
        &["MAG"],
    )
}

/// The VAT rate of a product in Optima (`Twr_Stawka`), by plain SQL.
async fn rate_of(sql: &mut optima_standin::erp::Client, sku: &str) -> anyhow::Result<Decimal> {
    let mut query = Query::new(
        "SELECT CAST(Twr_Stawka AS decimal(5,2)) AS rate FROM CDN.Towary WHERE Twr_Kod = @P1",
    );
    query.bind(sku);
    query
        .query(sql)
        .await?
        .into_first_result()
        .await?
        .first()
        .and_then(|row| row.get::<Decimal, _>("rate"))
        .context("the product's VAT rate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_out_a_shoper_order_in_and_its_parcel_back() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 60, &dir)?;
    let skus = erp.stocked_skus().await?;
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;

    let shoper = ShoperStandin::start(ShoperOptions::default()).await?;
    let mut rates = Vec::new();
    for sku in &skus {
        let rate = rate_of(&mut sql, sku).await?;
        // The shop's product carries Optima's rate, as the shop's staff
        // set it (the sync does not write tax classes to Shoper).
        let tax_id = match rate.to_string().as_str() {
            "23" | "23.00" => 1,
            "8" | "8.00" => 2,
            "5" | "5.00" => 3,
            _ => 4,
        };
        shoper.add_product(NewProduct {
            tax_id,
            ..NewProduct::new(sku, &format!("Produkt {sku}"), Decimal::ONE, 0)
        })?;
        rates.push(rate);
    }

    let cloud = LocalCloud::start_with_host_args(
        &dir,
        "shoper-e2e",
        Some(shop_parameters(&shoper)),
        &["--schedule-every", "poller=3"],
    )?;
    let webhook = cloud.webhook_url.clone().context("no webhook URL")?;
    shoper.add_webhook(NewWebhook {
        url: format!("{webhook}/{SHOP}"),
        secret: WEBHOOK_SECRET.into(),
        events: vec![
            "order.create".into(),
            "order.edit".into(),
            "order.paid".into(),
            "order.status".into(),
        ],
        format: 0,
        active: true,
    })?;
    let config = dir.join("agent.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 30, ORDERS_TOML)?;
    let _agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &dir.join("agent.log"),
        &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
    )?;

    // Stock and prices out, through /bulk, to what plain SQL reads.
    let stock = stock_by_plain_sql(&mut sql).await?;
    let catalogue = catalogue_by_plain_sql(&mut sql, "Detaliczna").await?;
    for sku in &skus {
        let record = stock.iter().find(|r| &r.sku == sku).context("stock")?;
        let want_stock = (record.quantity - record.reserved).floor();
        let want_price = catalogue
            .get(sku)
            .and_then(|row| row.gross_price)
            .context("a price")?;
        wait_for(
            &format!("{sku} showing Optima's stock and price in Shoper"),
            Duration::from_secs(90),
            || async {
                let now = shoper.stock_by_code(sku).context("the stock")?;
                Ok((now.stock == want_stock && now.price == want_price).then_some(()))
            },
        )
        .await?;
    }

    // A buyer's order, paid at once.
    let placed = Instant::now();
    let order = shoper.place_order(NewOrder {
        lines: vec![NewLine {
            code: skus[0].clone(),
            quantity: Decimal::from(2),
            price: None,
        }],
        shipping_cost: Decimal::new(1499, 2),
        paid: true,
        ..NewOrder::new("kupujacy@example.pl")
    })?;
    let number = order.order_id.to_string();
    let header = wait_for("the RO in Optima", Duration::from_secs(90), || {
        let number = number.clone();
        let ado = erp.ado_with_password();
        async move {
            let mut sql = optima_standin::erp::connect(&ado).await?;
            let mut query = Query::new(
                "SELECT TrN_TrNID, TrN_NumerPelny, TrN_RazemBrutto, TrN_RazemVAT \
                 FROM CDN.TraNag WHERE TrN_NumerObcy = CAST(@P1 AS varchar(256))",
            );
            query.bind(number.as_str());
            let rows = query.query(&mut sql).await?.into_first_result().await?;
            Ok(match rows.as_slice() {
                [] => None,
                [row] => Some((
                    row.get::<i32, _>("TrN_TrNID").unwrap_or_default(),
                    row.get::<&str, _>("TrN_NumerPelny")
                        .unwrap_or_default()
                        .to_owned(),
                    row.get::<Decimal, _>("TrN_RazemBrutto"),
                    row.get::<Decimal, _>("TrN_RazemVAT"),
                )),
                more => anyhow::bail!("{} documents for one order", more.len()),
            })
        }
    })
    .await?;
    println!(
        "Shoper order {number} → Optima {} after {:?}",
        header.1,
        placed.elapsed()
    );
    let (ro_id, ro_number, gross, vat) = header;
    // The order's webhook reached the cloud and was taken (signed).
    let deliveries = shoper.deliveries();
    assert!(
        deliveries
            .iter()
            .any(|d| d.event == "order.create" && d.response_status == Some(200)),
        "order.create delivered and accepted: {:?}",
        deliveries
            .iter()
            .map(|d| (&d.event, d.response_status, &d.error))
            .collect::<Vec<_>>()
    );
    assert!(ro_number.starts_with("RO/"), "{ro_number}");
    let lines = shoper.order_lines(order.order_id);
    let line_gross: Decimal = lines.iter().map(|l| l.price * l.quantity).sum();
    assert_eq!(
        gross,
        Some(line_gross + order.shipping_cost),
        "gross is what the buyer pays"
    );
    // The VAT by hand: each line at its rate, the delivery at 23 %, each
    // gross split to the grosz.
    let split = |gross: Decimal, rate: Decimal| {
        let net = (gross * Decimal::ONE_HUNDRED / (Decimal::ONE_HUNDRED + rate))
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        gross - net
    };
    let want_vat = split(line_gross, rates[0]) + split(order.shipping_cost, Decimal::from(23));
    assert_eq!(vat, Some(want_vat), "VAT at {} % and 23 %", rates[0]);

    // Realised with a parcel: the shop's order gets a sent parcel with
    // that code, once.
    erp.perform(optima_standin::simulator::Action::RealiseViaSendit {
        ro_id: i64::from(ro_id),
        tracking: "620987654321098765432101".into(),
        carrier: "InPost".into(),
    })
    .await?;
    let tracked = |code: &str| {
        shoper
            .parcels()
            .into_iter()
            .filter(|p| p.order_id == order.order_id && p.shipping_code == code)
            .count()
    };
    wait_for(
        "a parcel with the tracking number in Shoper",
        Duration::from_secs(90),
        || async { Ok((tracked("620987654321098765432101") > 0).then_some(())) },
    )
    .await?;
    // Later progress passes add nothing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        tracked("620987654321098765432101"),
        1,
        "{:?}",
        shoper.parcels()
    );
    let status = shoper.order(order.order_id).context("the order")?.status_id;
    let kind = shoper
        .statuses()
        .into_iter()
        .find(|s| s.status_id == status)
        .map(|s| s.kind);
    assert_eq!(kind, Some(3), "a shipped status (type 3), now {status}");
    Ok(())
}
