//! The operator's console in a real browser (headless Chromium driven over
//! WebDriver) against the whole local stack: the ERP stand-in, the
//! WooCommerce stand-in, the cloud and the agent. The operator signs in by
//! the one-time link, sets a password, sees a parked order with its reason,
//! fixes the cause in the ERP stand-in, presses Send again and sees the
//! order's document number appear; the log names the operator. Each page is
//! checked for labels, contrast, a title and keyboard reach, and saved as a
//! screenshot in `target/console-screenshots/` (docs/INSTALL.md shows them).

use std::time::Duration;

use anyhow::Context;
use harness::browser::{Browser, Viewport, screenshot_dir};
use harness::cloud::{LocalCloud, start_agent};
use harness::standins::{OptimaStandin, WooStandinProcess};
use harness::wait_for;
use serde_json::{Value, json};

const ORDERS_TOML: &str = "\n[sync]\npoll_seconds = 1\noverlap_seconds = 5\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n\n[orders]\nwarehouse = \"MAG\"\ndefault_payment_form = \"przelew\"\ndefault_shipping_service = \"TRANSPORT\"\nprogress_seconds = 1\ncommand_visibility_seconds = 10\n\n[orders.payment_forms]\nbacs = \"przelew\"\n";

const SHOP_ONLY: &str = "KONSOLA-TYLKO-W-SKLEPIE";
const OPERATOR: &str = "biuro@palarnia.example";
const PASSWORD: &str = "kawa-z-palarni-2026!";

fn address(email: &str) -> Value {
    json!({"first_name": "Anna", "last_name": "Nowak", "address_1": "ul. Lipowa 7",
           "city": "Poznań", "postcode": "60-001", "country": "PL", "email": email})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_sees_a_parked_order_and_sends_it_again_once_fixed()
-> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let shots = screenshot_dir("console-screenshots");
    let Some(browser) = Browser::start(&dir).await? else {
        return Ok(());
    };
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 60, &dir)?;
    let all_skus = erp.skus().await?;
    let skus = erp.stocked_skus().await?;
    let shop = WooStandinProcess::start_with(None, Some(&all_skus), None, &dir)?;
    let cloud = LocalCloud::start_with_host_args(
        &dir,
        "console",
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

    // A page without a session sends the browser to the sign-in page (in
    // Polish, as asked once: the console keeps the language).
    browser
        .open(&format!("{}/console/orders?lang=pl", cloud.admin_url))
        .await?;
    browser
        .wait_for_url("/console/signin", Duration::from_secs(10))
        .await?;
    browser.screenshot(&shots, "01-signin").await?;
    browser.accessibility().await?.ensure_none()?;

    // The first operator's one-time link (what `deploy.py console-invite`
    // and `local-sync` give): the browser redeems it and is asked for a
    // password.
    let link = cloud.console_invite(OPERATOR).await?;
    browser.open(&link).await?;
    browser
        .wait_for_url("/console/password", Duration::from_secs(10))
        .await?;
    browser.screenshot(&shots, "02-password").await?;
    browser.accessibility().await?.ensure_none()?;
    browser.fill("Nowe hasło", PASSWORD).await?;
    browser.fill("Powtórz nowe hasło", PASSWORD).await?;
    browser.click_button("Zapisz hasło").await?;
    browser
        .wait_for_text("Agenci w biurze", Duration::from_secs(10))
        .await?;
    let session = browser
        .cookies()
        .await?
        .into_iter()
        .find(|c| c.name == "__Host-console")
        .context("the session cookie")?;
    assert!(
        session.http_only && session.secure && session.same_site.as_deref() == Some("Strict"),
        "{session:?}"
    );
    // The agent reports in, and the overview shows it.
    wait_for(
        "the agent on the overview",
        Duration::from_secs(60),
        || async {
            browser
                .open(&format!("{}/console/", cloud.admin_url))
                .await?;
            Ok(browser.text().await?.contains("biuro").then_some(()))
        },
    )
    .await?;
    browser.screenshot(&shots, "03-overview").await?;
    browser.accessibility().await?.ensure_none()?;

    // An order with a product only the shop has is parked with its reason.
    reqwest::Client::new()
        .post(format!("{}/__standin/products", shop.base_url))
        .json(
            &json!({"sku": SHOP_ONLY, "name": "Tylko w sklepie", "regular_price": "49.20",
                      "stock_quantity": 50, "manage_stock": true}),
        )
        .send()
        .await?
        .error_for_status()?;
    let placed = shop
        .place_order(json!({
            "line_items": [[skus[0], 1], [SHOP_ONLY, 2]],
            "billing": address("konsola@example.pl"),
            "shipping": address("konsola@example.pl"),
            "payment_method": "bacs",
            "shipping_total": "15.00",
            "status": "processing"
        }))
        .await?;
    let number = placed["number"].as_str().context("number")?.to_owned();
    wait_for(
        "the parked order on the page",
        Duration::from_secs(60),
        || async {
            browser
                .open(&format!("{}/console/orders", cloud.admin_url))
                .await?;
            let text = browser.text().await?;
            Ok((text.contains(&number) && text.contains(SHOP_ONLY)).then_some(()))
        },
    )
    .await?;
    browser.screenshot(&shots, "04-orders-parked").await?;
    browser.accessibility().await?.ensure_none()?;

    // The office adds the product in Optima; the operator sends it again.
    erp.perform(optima_standin::simulator::Action::NewProduct {
        sku: SHOP_ONLY.into(),
        name: "Tylko w sklepie, już w Optimie".into(),
    })
    .await?;
    browser.click_button("Wyślij ponownie").await?;
    browser
        .wait_for_text("Wysłane ponownie do Optimy.", Duration::from_secs(10))
        .await?;
    let order_url = browser.current_url().await?;
    let shown = wait_for(
        "the order's document number on its page",
        Duration::from_secs(60),
        || async {
            browser.open(&order_url).await?;
            let text = browser.text().await?;
            Ok(text.lines().find(|l| l.contains("RO/")).map(str::to_owned))
        },
    )
    .await?;
    assert!(shown.contains("RO/"), "{shown}");
    browser.screenshot(&shots, "05-order").await?;
    browser.accessibility().await?.ensure_none()?;

    // The orders list has it newest first, with its document; the search
    // finds it by the buyer's e-mail, surname and a SKU, and the state
    // filter keeps it among the orders in Optima and out of the parked.
    // (Read in the list's own section: the lists below name it too.)
    let listed_section = |text: String| {
        text.split_once("\nWstrzymane\n")
            .map(|(list, _)| list.to_owned())
            .unwrap_or(text)
    };
    let row = format!("sklep / {number}");
    browser
        .open(&format!("{}/console/orders", cloud.admin_url))
        .await?;
    let listed = listed_section(browser.text().await?);
    assert!(
        listed.contains("Ostatnie zamówienia") && listed.contains(&row) && listed.contains("RO/"),
        "{listed}"
    );
    browser.accessibility().await?.ensure_none()?;
    for q in ["Konsola@Example.pl", "nowak", SHOP_ONLY] {
        browser
            .open(&format!("{}/console/orders?q={q}", cloud.admin_url))
            .await?;
        let found = listed_section(browser.text().await?);
        assert!(
            found.contains("Znalezione") && found.contains(&row),
            "{q}: {found}"
        );
    }
    browser
        .open(&format!(
            "{}/console/orders?q=NIE-MA-TAKIEGO",
            cloud.admin_url
        ))
        .await?;
    let none = listed_section(browser.text().await?);
    assert!(
        !none.contains(&row) && none.contains("Nic nie pasuje"),
        "{none}"
    );
    browser
        .open(&format!(
            "{}/console/orders?state=in_optima",
            cloud.admin_url
        ))
        .await?;
    let in_optima = listed_section(browser.text().await?);
    assert!(
        in_optima.contains(&row),
        "in Optima: {in_optima}\n\nall: {listed}"
    );
    browser
        .open(&format!("{}/console/orders?state=parked", cloud.admin_url))
        .await?;
    let latest = listed_section(browser.text().await?);
    assert!(!latest.contains(&row), "not among the parked: {latest}");

    // The log names the operator and the action.
    browser
        .open(&format!("{}/console/log", cloud.admin_url))
        .await?;
    let log = browser.text().await?;
    assert!(
        log.contains(OPERATOR) && log.contains("order sent again"),
        "{log}"
    );
    browser.screenshot(&shots, "06-log").await?;
    browser.accessibility().await?.ensure_none()?;

    // On a phone the orders page still reads, and in English on request.
    browser.set_viewport(Viewport::PHONE).await?;
    browser
        .open(&format!("{}/console/orders?lang=en", cloud.admin_url))
        .await?;
    browser
        .wait_for_text("Parked", Duration::from_secs(10))
        .await?;
    browser.screenshot(&shots, "07-orders-phone-en").await?;
    browser.accessibility().await?.ensure_none()?;

    // Signed out, the pages are closed again.
    browser.click_button("Sign out").await?;
    browser
        .open(&format!("{}/console/orders", cloud.admin_url))
        .await?;
    browser
        .wait_for_url("/console/signin", Duration::from_secs(10))
        .await?;
    Ok(())
}

/// `deploy.py console-invite` makes the operator and a link the admin
/// function redeems once: the same items as `Auth::invite`, written by the
/// deploy command's own AWS credentials, the token only in the fragment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_command_invites_an_operator_whose_link_works_once() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let stack = "console-invite";
    let cloud = LocalCloud::start_with(&dir, stack, None)?;
    let output = harness::stack::deploy_command(&cloud.emulator.endpoint())?
        .args([
            "console-invite",
            "--stack",
            stack,
            "--email",
            "Szef@Palarnia.example",
        ])
        // The local host serves the Function URLs; in AWS the admin
        // function's own URL is the default.
        .args(["--console-url", &cloud.admin_url])
        .output()
        .context("running deploy.py console-invite")?;
    anyhow::ensure!(
        output.status.success(),
        "console-invite: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout)?;
    let (page, token) = printed
        .trim()
        .split_once('#')
        .context("a link with the token after #")?;
    assert!(page.ends_with("/console/link"), "{printed}");
    assert!(token.len() >= 43, "256 bits, base64url: {token}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let redeem = || {
        http.post(format!("{}/console/link", cloud.admin_url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
    };
    let first = redeem().await?;
    assert_eq!(first.status(), 303, "redeemed");
    assert_eq!(
        first
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok()),
        Some("/console/password"),
        "a new operator sets a password first"
    );
    assert_eq!(redeem().await?.status(), 403, "once only");

    // A lost authenticator: `console-reset-totp` turns TOTP off, ends the
    // operator's sessions (a new epoch) and says so in the console's log.
    let config = harness::emulator::sdk_config(&cloud.emulator.endpoint()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = cloud.stack.output("StateTableName")?;
    let key = |item: aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder| {
        item.table_name(table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S("operator#szef@palarnia.example".into()),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("operator".into()),
            )
    };
    dynamodb
        .update_item()
        .table_name(table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("operator#szef@palarnia.example".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("operator".into()),
        )
        .update_expression("SET totp_secret = :s, totp_last_step = :n")
        .expression_attribute_values(
            ":s",
            aws_sdk_dynamodb::types::AttributeValue::S("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into()),
        )
        .expression_attribute_values(":n", aws_sdk_dynamodb::types::AttributeValue::N("1".into()))
        .send()
        .await?;
    let epoch =
        |item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
            item.get("session_epoch")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(0)
        };
    let before = key(dynamodb.get_item())
        .send()
        .await?
        .item
        .context("the operator")?;
    let reset = harness::stack::deploy_command(&cloud.emulator.endpoint())?
        .args([
            "console-reset-totp",
            "--stack",
            stack,
            "--email",
            "Szef@Palarnia.example",
        ])
        .output()?;
    anyhow::ensure!(
        reset.status.success(),
        "console-reset-totp: {}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let after = key(dynamodb.get_item())
        .send()
        .await?
        .item
        .context("the operator")?;
    assert!(
        !after.contains_key("totp_secret") && !after.contains_key("totp_last_step"),
        "{after:?}"
    );
    assert_eq!(epoch(&after), epoch(&before) + 1, "sessions ended");
    let log = functions::console::log::ActivityLog::new(dynamodb.clone(), table);
    let entries = log
        .newest(chrono::Utc::now(), 1, 50, Some("totp reset"))
        .await?;
    assert!(
        entries
            .iter()
            .any(|e| e.subject == "szef@palarnia.example" && e.actor == "deploy.py"),
        "{entries:?}"
    );
    Ok(())
}

/// The stock the stand-in shop shows for `sku`.
async fn shop_stock(shop: &WooStandinProcess, sku: &str) -> anyhow::Result<Option<i64>> {
    Ok(shop
        .product(sku)
        .await?
        .and_then(|p| p["stock_quantity"].as_i64()))
}

/// The sync page's one-click actions and the emergency switch, end to end:
/// Sync now for a product and a stock pass reach the agent; "show 0 stock"
/// zeroes what the shop shows and "resume" puts the ERP's figures back;
/// "stop writing" keeps an ERP change out of the shop until the resume's
/// full pass; "pause orders" keeps an order out of Optima until the
/// resume sends it. Each press is in the log with its operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_forces_passes_and_switches_a_shop_to_emergency_and_back() -> anyhow::Result<()>
{
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let shots = screenshot_dir("console-screenshots");
    let Some(browser) = Browser::start(&dir).await? else {
        return Ok(());
    };
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 30, &dir)?;
    let all_skus = erp.skus().await?;
    let skus = erp.stocked_skus().await?;
    let shop = WooStandinProcess::start_with(None, Some(&all_skus), None, &dir)?;
    let cloud = LocalCloud::start_with_host_args(
        &dir,
        "console-sync",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
        &[
            "--schedule-every",
            "poller=5",
            "--schedule-every",
            "watchdog=2",
        ],
    )?;
    let webhook = cloud.webhook_url.clone().context("no webhook URL")?;
    shop.register_order_webhooks(&format!("{webhook}/sklep"))
        .await?;
    let config = dir.join("agent.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 30, ORDERS_TOML)?;
    let mut agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &dir.join("agent.log"),
        &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
    )?;
    cloud
        .first_operator_in(&browser, OPERATOR, PASSWORD)
        .await?;

    // The first pass puts the ERP's stock into the shop: MAG's quantity
    // less its reservations, read by plain SQL (buffer 0).
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let erp_stock = harness::expected::stock_by_plain_sql(&mut sql).await?;
    let mut before = Vec::new();
    for sku in &skus {
        let record = erp_stock
            .iter()
            .find(|r| &r.sku == sku)
            .context("the SKU's stock in MAG")?;
        let want = record.available().floor().to_string().parse::<i64>()?;
        wait_for(
            "the first pass in the shop",
            Duration::from_secs(90),
            || async { Ok((shop_stock(&shop, sku).await? == Some(want)).then_some(())) },
        )
        .await?;
        before.push(want);
    }

    // A product's page: Optima's figures and what the shop should show and
    // confirmed; Sync now asks the agent.
    let product_url = format!("{}/console/products?sku={}", cloud.admin_url, skus[0]);
    let row = format!("stan {}, cena", before[0]);
    wait_for(
        "the shop's confirmed stock on the product's page",
        Duration::from_secs(30),
        || async {
            browser.open(&product_url).await?;
            let text = browser.text().await?;
            Ok((text.contains("W Optimie") && text.matches(&row).count() == 2).then_some(()))
        },
    )
    .await?;
    browser.screenshot(&shots, "08-product").await?;
    browser.accessibility().await?.ensure_none()?;
    browser.click_button("Synchronizuj teraz").await?;
    browser
        .wait_for_text("Poproszono agentów", Duration::from_secs(10))
        .await?;
    agent.wait_for_log("skus=1", Duration::from_secs(30))?;

    // A stock pass, one click.
    browser
        .open(&format!("{}/console/sync", cloud.admin_url))
        .await?;
    browser.screenshot(&shots, "09-sync").await?;
    browser.accessibility().await?.ensure_none()?;
    browser.click_button("Tylko stany").await?;
    browser
        .wait_for_text(
            "Poproszono agentów o przebieg: stock",
            Duration::from_secs(10),
        )
        .await?;
    agent.wait_for_log("areas=[Stock]", Duration::from_secs(30))?;

    // Show 0 stock everywhere: the shop shows 0 for every product it had in stock.
    browser.click_button("Pokaż wszędzie stan 0").await?;
    for sku in &skus {
        wait_for("0 in the shop", Duration::from_secs(60), || async {
            Ok((shop_stock(&shop, sku).await? == Some(0)).then_some(()))
        })
        .await?;
    }
    wait_for(
        "the zeroing finished on the sync page",
        Duration::from_secs(30),
        || async {
            browser
                .open(&format!("{}/console/sync", cloud.admin_url))
                .await?;
            Ok(browser.text().await?.contains("wyzerowane").then_some(()))
        },
    )
    .await?;
    browser.screenshot(&shots, "10-emergency-zero").await?;
    browser.accessibility().await?.ensure_none()?;
    // And back: the ERP's figures again.
    browser.click_button("Wznów normalne wysyłanie").await?;
    for (sku, shown) in skus.iter().zip(&before) {
        wait_for(
            "the ERP's stock back in the shop",
            Duration::from_secs(60),
            || async { Ok((shop_stock(&shop, sku).await? == Some(*shown)).then_some(())) },
        )
        .await?;
    }

    // Stop writing: a delivery in Optima stays out of the shop until the resume.
    browser
        .click_button("Zatrzymaj wysyłanie do sklepu")
        .await?;
    browser
        .wait_for_text("ZATRZYMANE", Duration::from_secs(10))
        .await?;
    erp.perform(optima_standin::simulator::Action::Delivery {
        sku: skus[1].clone(),
        warehouse: "MAG".into(),
        qty: rust_decimal::Decimal::from(7),
    })
    .await?;
    let host_log = || std::fs::read_to_string(dir.join("functions.log")).unwrap_or_default();
    wait_for(
        "the stopped shop's write dropped",
        Duration::from_secs(60),
        || {
            let text = host_log();
            async move {
                Ok(text
                    .contains("the emergency switch stops writes to this shop")
                    .then_some(()))
            }
        },
    )
    .await?;
    assert_eq!(
        shop_stock(&shop, &skus[1]).await?,
        Some(before[1]),
        "nothing written while stopped"
    );
    browser.click_button("Wznów normalne wysyłanie").await?;
    wait_for(
        "the delivery in the shop after the resume",
        Duration::from_secs(90),
        || async { Ok((shop_stock(&shop, &skus[1]).await? == Some(before[1] + 7)).then_some(())) },
    )
    .await?;

    // Pause orders: an order is taken in but not sent to Optima until the resume.
    browser.click_button("Wstrzymaj zamówienia").await?;
    browser
        .wait_for_text("WSTRZYMANE", Duration::from_secs(10))
        .await?;
    let placed = shop
        .place_order(json!({
            "line_items": [[skus[0], 1]],
            "billing": address("pauza@example.pl"),
            "shipping": address("pauza@example.pl"),
            "payment_method": "bacs",
            "status": "processing"
        }))
        .await?;
    let order_id = placed["id"].as_u64().context("id")?;
    wait_for(
        "the paused order counted on the sync page",
        Duration::from_secs(60),
        || async {
            browser
                .open(&format!("{}/console/sync", cloud.admin_url))
                .await?;
            let text = browser.text().await?;
            Ok(text
                .contains("Zamówienia czekające na wznowienie\n1")
                .then_some(()))
        },
    )
    .await?;
    browser.screenshot(&shots, "11-emergency-paused").await?;
    let order_page = format!("{}/console/orders/sklep/{order_id}", cloud.admin_url);
    browser.open(&order_page).await?;
    assert!(
        !browser.text().await?.contains("RO/"),
        "paused: not in Optima"
    );
    browser
        .open(&format!("{}/console/sync", cloud.admin_url))
        .await?;
    browser.click_button("Wznów zamówienia").await?;
    wait_for(
        "the held order in Optima after the resume",
        Duration::from_secs(60),
        || async {
            browser.open(&order_page).await?;
            Ok(browser.text().await?.contains("RO/").then_some(()))
        },
    )
    .await?;

    // Every press is in the log with its operator.
    browser
        .open(&format!("{}/console/log", cloud.admin_url))
        .await?;
    let log = browser.text().await?;
    for action in ["product sync", "forced sync", "emergency switch"] {
        assert!(log.contains(action), "{action} in the log: {log}");
    }
    assert!(
        log.contains("orders: paused → sent; 1 held order(s) sent to the ERP"),
        "{log}"
    );
    Ok(())
}
