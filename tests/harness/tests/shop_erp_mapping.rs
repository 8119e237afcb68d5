//! A shop's payment and delivery mapping set on the console's Shops page
//! reaches Optima, nothing restarted: before it, the agent's `[orders]`
//! mapping writes a WooCommerce order paid by bank transfer (`bacs`) with
//! the payment form `przelew`; after the operator maps `bacs` to `karta`
//! and the shop's `flat_rate` to the service item `TRANSPORT` on the page,
//! the next order's document carries `karta` and a `TRANSPORT` line,
//! though the agent's configuration maps no delivery at all. Read back
//! from the ERP stand-in by plain SQL.

use std::time::Duration;

use anyhow::Context;
use harness::browser::Browser;
use harness::cloud::{LocalCloud, start_agent};
use harness::standins::{OptimaStandin, WooStandinProcess};
use harness::wait_for;
use serde_json::{Value, json};
use tiberius::Query;

const OPERATOR: &str = "platnosci@palarnia.example";
const PASSWORD: &str = "mapowanie-platnosci-2026!";

/// The agent maps `bacs` to `przelew` and nothing of delivery.
const ORDERS_TOML: &str = "\n[sync]\npoll_seconds = 1\noverlap_seconds = 5\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n\n[orders]\nwarehouse = \"MAG\"\ndefault_payment_form = \"gotówka\"\nprogress_seconds = 1\ncommand_visibility_seconds = 10\n\n[orders.payment_forms]\nbacs = \"przelew\"\n";

/// The document Optima holds for shop order `number`: its payment form's
/// name and its lines' SKUs, once there.
async fn document_of(
    erp: &OptimaStandin,
    number: &str,
) -> anyhow::Result<Option<(String, Vec<String>)>> {
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let mut query = Query::new(
        "SELECT n.TrN_TrNID, f.FPl_Nazwa FROM CDN.TraNag n JOIN CDN.FormyPlatnosci f ON f.FPl_FPlId = n.TrN_FPlId \
         WHERE n.TrN_NumerObcy = CAST(@P1 AS varchar(256))",
    );
    query.bind(number);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let id = row.get::<i32, _>("TrN_TrNID").context("TrN_TrNID")?;
    let form = row
        .get::<&str, _>("FPl_Nazwa")
        .context("FPl_Nazwa")?
        .to_owned();
    let mut query =
        Query::new("SELECT TrE_TwrKod FROM CDN.TraElem WHERE TrE_TrNId = @P1 ORDER BY TrE_Lp");
    query.bind(id);
    let lines = query.query(&mut sql).await?.into_first_result().await?;
    let skus = lines
        .iter()
        .filter_map(|r| r.get::<&str, _>("TrE_TwrKod").map(str::to_owned))
        .collect();
    Ok(Some((form, skus)))
}

async fn written(erp: &OptimaStandin, number: &str) -> anyhow::Result<(String, Vec<String>)> {
    wait_for(
        "the order's document in Optima",
        Duration::from_secs(90),
        || document_of(erp, number),
    )
    .await
}

fn order(sku: &str, shipping_total: Option<&str>) -> Value {
    let mut order = json!({
        "line_items": [[sku, 1]],
        "billing": {"first_name": "Anna", "last_name": "Nowak", "address_1": "ul. Lipowa 7",
                    "city": "Poznań", "postcode": "60-001", "country": "PL", "email": "anna@example.pl"},
        "payment_method": "bacs",
        "status": "processing"
    });
    if let Some(total) = shipping_total {
        order["shipping_total"] = json!(total);
    }
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shops_page_maps_payment_and_delivery_before_the_agents_configuration()
-> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let Some(browser) = Browser::start(&dir).await? else {
        return Ok(());
    };
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 10, &dir)?;
    let all_skus = erp.skus().await?;
    let sku = erp
        .stocked_skus()
        .await?
        .first()
        .context("a stocked SKU")?
        .clone();
    let shop = WooStandinProcess::start_with(None, Some(&all_skus), None, &dir)?;
    let cloud = LocalCloud::start_with_host_args(
        &dir,
        "shop-erp-mapping",
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

    // Nothing on the page: the agent's own mapping.
    let before = shop.place_order(order(&sku, None)).await?;
    let number = before["number"].as_str().context("order number")?;
    let (form, _) = written(&erp, number).await?;
    assert_eq!(form, "przelew", "the agent's [orders.payment_forms]");

    // The operator maps bacs and flat_rate on the shop's page.
    cloud
        .first_operator_in(&browser, OPERATOR, PASSWORD)
        .await?;
    browser
        .open(&format!("{}/console/shops/sklep", cloud.admin_url))
        .await?;
    browser
        .wait_for_text("Płatność i dostawa w Optimie", Duration::from_secs(10))
        .await?;
    browser.fill("Formy płatności", "bacs = karta").await?;
    browser
        .fill("Usługi dostawy", "flat_rate = TRANSPORT")
        .await?;
    browser.click_button("Zapisz nową wersję").await?;
    browser
        .wait_for_text("Zapisano wersję 1", Duration::from_secs(10))
        .await?;
    let text = browser.text().await?;
    assert!(
        text.contains("erp_mapping.payment_forms.bacs: — → karta"),
        "the history says what changed: {text}"
    );
    browser.accessibility().await?.ensure_none()?;
    // The webhook reads saved settings at most this often.
    tokio::time::sleep(functions::shop_settings::CACHE + Duration::from_secs(2)).await;

    // The next order: the page's mapping, though the agent maps no delivery.
    let after = shop.place_order(order(&sku, Some("15.00"))).await?;
    let number = after["number"].as_str().context("order number")?;
    let (form, skus) = written(&erp, number).await?;
    assert_eq!(form, "karta", "the Shops page's mapping wins");
    assert_eq!(skus, [sku.clone(), "TRANSPORT".to_owned()]);
    Ok(())
}
