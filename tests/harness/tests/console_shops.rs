//! The console's Shops page in a real browser against the whole local
//! stack: the operator raises a WooCommerce shop's safety buffer and the
//! shop shows that much less stock after the next pass, nothing restarted;
//! a negative buffer is refused with its reason and saves nothing; the
//! history shows both versions with the operator and restores the first;
//! a new webhook secret lands in the credentials secret and never on a page.

use std::time::Duration;

use anyhow::Context;
use harness::browser::{Browser, screenshot_dir};
use harness::cloud::{LocalCloud, start_agent};
use harness::standins::{OptimaStandin, WooStandinProcess};
use harness::wait_for;
use serde_json::Value;

const OPERATOR: &str = "sklepy@palarnia.example";
const PASSWORD: &str = "ustawienia-sklepu-2026!";
const NEW_WEBHOOK_SECRET: &str = "nowy-sekret-webhooka-4711";

async fn shop_stock(shop: &WooStandinProcess, sku: &str) -> anyhow::Result<Option<i64>> {
    Ok(shop
        .product(sku)
        .await?
        .and_then(|p| p["stock_quantity"].as_i64()))
}

/// Asks for the product again (the product page's Sync now: resent even
/// unchanged, so mapped again with the shop's current settings) until the
/// shop shows `want`.
async fn resync_until(
    browser: &Browser,
    admin_url: &str,
    shop: &WooStandinProcess,
    sku: &str,
    want: i64,
) -> anyhow::Result<()> {
    // The functions read saved settings at most every 30 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        browser
            .open(&format!("{admin_url}/console/products?sku={sku}"))
            .await?;
        browser.click_button("Synchronizuj teraz").await?;
        let seen = wait_for("the shop's stock", Duration::from_secs(15), || async {
            Ok((shop_stock(shop, sku).await? == Some(want)).then_some(()))
        })
        .await;
        if seen.is_ok() {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the shop never showed {want} for {sku} (now {:?})",
            shop_stock(shop, sku).await?
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_changes_a_shops_buffer_restores_it_and_sets_a_credential() -> anyhow::Result<()>
{
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let shots = screenshot_dir("console-screenshots");
    let Some(browser) = Browser::start(&dir).await? else {
        return Ok(());
    };
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 10, &dir)?;
    let all_skus = erp.skus().await?;
    let skus = erp.stocked_skus().await?;
    let shop = WooStandinProcess::start_with(None, Some(&all_skus), None, &dir)?;
    let cloud = LocalCloud::start_with(
        &dir,
        "console-shops",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
    )?;
    let config = dir.join("agent.toml");
    cloud.write_agent_config(&config, "biuro", &erp.connection_string, 30)?;
    let _agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &dir.join("agent.log"),
        &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
    )?;
    cloud
        .first_operator_in(&browser, OPERATOR, PASSWORD)
        .await?;

    // The first pass: the ERP's stock, buffer 0.
    let sku = skus.first().context("a stocked SKU")?.clone();
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let erp_stock = harness::expected::stock_by_plain_sql(&mut sql).await?;
    let before = erp_stock
        .iter()
        .find(|r| r.sku == sku)
        .context("the SKU's stock in MAG")?
        .available()
        .floor()
        .to_string()
        .parse::<i64>()?;
    anyhow::ensure!(before > 3, "{sku} has {before} in MAG");
    wait_for(
        "the first pass in the shop",
        Duration::from_secs(90),
        || {
            let (shop, sku) = (&shop, &sku);
            async move { Ok((shop_stock(shop, sku).await? == Some(before)).then_some(())) }
        },
    )
    .await?;

    // The list, then the shop's page.
    browser
        .open(&format!("{}/console/shops", cloud.admin_url))
        .await?;
    browser
        .wait_for_text("z wdrożenia (ShopsConfig)", Duration::from_secs(10))
        .await?;
    browser.accessibility().await?.ensure_none()?;
    browser.click_link("sklep").await?;
    browser
        .wait_for_text("Historia wersji", Duration::from_secs(10))
        .await?;
    browser.screenshot(&shots, "12-shop-settings").await?;
    browser.accessibility().await?.ensure_none()?;

    // A negative buffer: refused with its reason, nothing saved.
    browser.fill("Bufor bezpieczeństwa", "-2").await?;
    browser.click_button("Zapisz nową wersję").await?;
    browser
        .wait_for_text("safety_buffer is negative", Duration::from_secs(10))
        .await?;
    let text = browser.text().await?;
    assert!(text.contains("Nie zapisano"), "{text}");
    assert!(
        text.contains("Nic jeszcze nie zapisano w konsoli"),
        "nothing saved: {text}"
    );

    // Buffer 3: the shop shows 3 less after the next pass.
    browser.fill("Bufor bezpieczeństwa", "3").await?;
    browser.click_button("Zapisz nową wersję").await?;
    browser
        .wait_for_text("Zapisano wersję 1", Duration::from_secs(10))
        .await?;
    resync_until(&browser, &cloud.admin_url, &shop, &sku, before - 3).await?;

    // A second version (buffer 1), then version 1 restored (buffer 3).
    browser
        .open(&format!("{}/console/shops/sklep", cloud.admin_url))
        .await?;
    browser.fill("Bufor bezpieczeństwa", "1").await?;
    browser.click_button("Zapisz nową wersję").await?;
    browser
        .wait_for_text("Zapisano wersję 2", Duration::from_secs(10))
        .await?;
    let text = browser.text().await?;
    assert!(text.matches(OPERATOR).count() >= 3, "{text}");
    assert!(text.contains("rules.safety_buffer: 3 → 1"), "{text}");
    browser.click_button("Przywróć wersję 1").await?;
    browser
        .wait_for_text("Zapisano wersję 3", Duration::from_secs(10))
        .await?;
    assert!(
        browser.text().await?.contains("rules.safety_buffer: 1 → 3"),
        "the restore wrote version 1's content"
    );
    resync_until(&browser, &cloud.admin_url, &shop, &sku, before - 3).await?;

    // The log names the operator and what changed.
    browser
        .open(&format!("{}/console/log", cloud.admin_url))
        .await?;
    browser
        .wait_for_text("shop settings changed", Duration::from_secs(10))
        .await?;

    // A new webhook secret: in the secret, never on a page.
    browser
        .open(&format!("{}/console/shops/sklep", cloud.admin_url))
        .await?;
    browser.fill("webhook_secret", NEW_WEBHOOK_SECRET).await?;
    browser.click_button("Zapisz dane dostępowe").await?;
    browser
        .wait_for_text(
            "Zmieniono dane dostępowe: webhook_secret",
            Duration::from_secs(10),
        )
        .await?;
    let html = browser.html().await?;
    assert!(
        !html.contains(NEW_WEBHOOK_SECRET),
        "the page shows no secret"
    );
    assert!(html.contains("webhook_secret (ustawione)"), "{html}");
    let sdk = harness::emulator::sdk_config(&cloud.emulator.endpoint()).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let mut found = None;
    for listed in secrets.list_secrets().send().await?.secret_list() {
        let Some(arn) = listed.arn() else { continue };
        let value = secrets.get_secret_value().secret_id(arn).send().await?;
        let json: Value =
            serde_json::from_str(value.secret_string().unwrap_or("null")).unwrap_or(Value::Null);
        if json["sklep"]["consumer_key"].is_string() {
            found = Some(json);
        }
    }
    let stored = found.context("the shop credentials secret")?;
    assert_eq!(stored["sklep"]["webhook_secret"], NEW_WEBHOOK_SECRET);
    assert!(
        stored["sklep"]["consumer_secret"].is_string(),
        "the other fields kept"
    );
    browser
        .open(&format!("{}/console/log", cloud.admin_url))
        .await?;
    let log = browser.html().await?;
    assert!(log.contains("shop credentials changed"), "{log}");
    assert!(
        !log.contains(NEW_WEBHOOK_SECRET),
        "the log names fields only"
    );
    Ok(())
}
