//! Optima → Allegro → Optima on every real piece but Allegro itself: the
//! Optima stand-in, the cloud (its functions under the template's IAM
//! grants, the poller every 3 s) and an agent that writes orders, with
//! the Allegro stand-in (`tests/allegro-standin`) as the marketplace.
//!
//! The seller's offers carry the SKUs as their external ids. The first
//! sync sets their stock and prices by Allegro's batch commands to what
//! plain SQL says Optima has; a buyer's checkout form becomes one RO in
//! Optima with the ERP's VAT rates (Allegro states gross prices only); the
//! order realised with a tracking number shows on Allegro as SENT with
//! one shipment of that waybill, and the buyer's return is listed for the
//! office on `/status`. The seller's tokens live in the shop's
//! own secret, and a token that expires mid-run is refreshed there.

use std::time::{Duration, Instant};

use allegro_standin::{AllegroOptions, AllegroStandin, NewOffer, NewOrder};
use anyhow::Context;
use harness::cloud::{LocalCloud, start_agent};
use harness::emulator::sdk_config;
use harness::expected::{catalogue_by_plain_sql, stock_by_plain_sql};
use harness::standins::OptimaStandin;
use harness::wait_for;
use rust_decimal::Decimal;
use tiberius::Query;

const SHOP: &str = "allegro";
const STACK: &str = "allegro-e2e";

const ORDERS_TOML: &str = "\n[sync]\npoll_seconds = 1\noverlap_seconds = 5\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n\n[orders]\nwarehouse = \"MAG\"\ndefault_payment_form = \"przelew\"\ndefault_shipping_service = \"TRANSPORT\"\nprogress_seconds = 1\ncommand_visibility_seconds = 10\n\n[orders.payment_forms]\nONLINE = \"przelew\"\n";

/// The shop's configuration and credentials, as the operator writes them.
fn shop_parameters(standin: &AllegroStandin) -> (String, String) {
    assert_eq!(
        standin.api_url(),
        standin.auth_url(),
        "OAuth on the API's address"
    );
    harness::standins::allegro_shop_parameters(
        SHOP,
        &standin.api_url(),
        standin.client_id(),
        standin.client_secret(),
        "Detaliczna",
        &["MAG"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_out_an_allegro_order_in_and_its_shipment_back() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 60, &dir)?;
    let skus = erp.stocked_skus().await?;

    let mut options = AllegroOptions::default();
    options.config.command_delay_ms = 300;
    let allegro = AllegroStandin::start(options).await?;
    let mut offers = Vec::new();
    for sku in &skus {
        // Listed by the seller at a placeholder price and stock.
        offers.push(allegro.add_offer(NewOffer::new(sku, &format!("Oferta {sku}"), "1.00", 1))?);
    }

    let cloud = LocalCloud::start_with_host_args(
        &dir,
        STACK,
        Some(shop_parameters(&allegro)),
        &["--schedule-every", "poller=3"],
    )?;
    // The operator's authorisation (deploy.py allegro-authorize): the
    // seller's pair in the shop's own secret.
    let aws = sdk_config(&cloud.emulator.endpoint()).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let pair = allegro.issue_tokens(allegro.seller_id());
    let token_secret = functions::token_secrets::secret_name(STACK, SHOP);
    secrets
        .create_secret()
        .name(&token_secret)
        .secret_string(
            serde_json::json!({
                "access_token": pair.access_token,
                "refresh_token": pair.refresh_token.context("a refresh token")?,
            })
            .to_string(),
        )
        .send()
        .await?;

    let config = dir.join("agent.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 30, ORDERS_TOML)?;
    let _agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &dir.join("agent.log"),
        &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
    )?;

    // Stock and prices out, by commands, to what plain SQL reads.
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let stock = stock_by_plain_sql(&mut sql).await?;
    let catalogue = catalogue_by_plain_sql(&mut sql, "Detaliczna").await?;
    for (sku, offer) in skus.iter().zip(&offers) {
        let record = stock.iter().find(|r| &r.sku == sku).context("stock")?;
        let want_stock = (record.quantity - record.reserved).floor();
        let want_price = catalogue
            .get(sku)
            .and_then(|row| row.gross_price)
            .context("a price")?;
        wait_for(
            &format!("offer {} showing Optima's stock and price", offer.id),
            Duration::from_secs(90),
            || async {
                let now = allegro.offer(&offer.id).context("the offer")?;
                Ok(
                    (Decimal::from(now.available) == want_stock && now.price == want_price)
                        .then_some(()),
                )
            },
        )
        .await?;
    }
    let commands = allegro.commands();
    assert!(
        commands.len() >= 2,
        "stock and prices by commands: {commands:?}"
    );

    // A token that dies mid-run: the next call refreshes it, and the new
    // pair is what the shop's secret holds.
    assert!(allegro.expire_access_tokens() > 0);
    let refreshes_before = allegro.counters().refreshes;

    // A buyer's order.
    let placed = Instant::now();
    let order = allegro.place_order(NewOrder::one(&offers[0].id, 2))?;
    let total = order.total();
    let header = wait_for("the RO in Optima", Duration::from_secs(90), || {
        let number = order.id.clone();
        let ado = erp.ado_with_password();
        async move {
            let mut sql = optima_standin::erp::connect(&ado).await?;
            let mut query = Query::new(
                "SELECT TrN_TrNID, TrN_NumerPelny, TrN_RazemBrutto, TrN_RazemNetto, TrN_RazemVAT \
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
                    row.get::<Decimal, _>("TrN_RazemNetto"),
                    row.get::<Decimal, _>("TrN_RazemVAT"),
                )),
                more => anyhow::bail!("{} documents for one order", more.len()),
            })
        }
    })
    .await?;
    println!(
        "Allegro order {} → Optima {} after {:?}",
        order.id,
        header.1,
        placed.elapsed()
    );
    let (ro_id, ro_number, gross, net, vat) = header;
    assert!(ro_number.starts_with("RO/"), "{ro_number}");
    assert_eq!(gross, Some(total), "gross is what the buyer paid");
    assert_eq!(
        net.zip(vat).map(|(n, v)| n + v),
        Some(total),
        "net + VAT = gross"
    );
    // The VAT by hand: the line at the product's own rate in Optima
    // (`Twr_Stawka`), the delivery at the shop's delivery rate (23 %), each
    // gross split to the grosz.
    let mut query = Query::new(
        "SELECT CAST(Twr_Stawka AS decimal(5,2)) AS rate FROM CDN.Towary WHERE Twr_Kod = @P1",
    );
    query.bind(skus[0].as_str());
    let rate = query
        .query(&mut sql)
        .await?
        .into_first_result()
        .await?
        .first()
        .and_then(|row| row.get::<Decimal, _>("rate"))
        .context("the product's VAT rate")?;
    let split = |gross: Decimal, rate: Decimal| {
        let net = (gross * Decimal::ONE_HUNDRED / (Decimal::ONE_HUNDRED + rate))
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        gross - net
    };
    let line_gross = order.line_items[0].price * Decimal::from(order.line_items[0].quantity);
    let want_vat = split(line_gross, rate) + split(order.delivery_cost, Decimal::from(23));
    assert_eq!(
        vat,
        Some(want_vat),
        "VAT from the ERP's rate {rate} % on {line_gross} and 23 % on the delivery {}",
        order.delivery_cost
    );
    assert!(
        allegro.counters().refreshes > refreshes_before,
        "the expired token was refreshed"
    );
    let stored = secrets
        .get_secret_value()
        .secret_id(&token_secret)
        .send()
        .await?
        .secret_string
        .context("the token secret")?;
    let stored: serde_json::Value = serde_json::from_str(&stored)?;
    assert_ne!(
        stored["access_token"].as_str(),
        Some(pair.access_token.as_str()),
        "the refreshed pair is in the shop's secret"
    );

    // Realised with a parcel: SENT on Allegro, one shipment of that waybill.
    erp.perform(optima_standin::simulator::Action::RealiseViaSendit {
        ro_id: i64::from(ro_id),
        tracking: "620123456789012345678901".into(),
        carrier: "InPost".into(),
    })
    .await?;
    let shipped = wait_for(
        "the order SENT on Allegro with its shipment",
        Duration::from_secs(90),
        || async {
            let now = allegro.order(&order.id).context("the order")?;
            Ok((now.fulfillment_status == "SENT" && !now.shipments.is_empty()).then_some(now))
        },
    )
    .await?;
    // Later progress passes change nothing more.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let settled = allegro.order(&order.id).context("the order")?;
    assert_eq!(settled.shipments.len(), 1, "{:?}", settled.shipments);
    assert_eq!(shipped.shipments[0].waybill, "620123456789012345678901");
    assert_eq!(
        shipped.shipments[0].carrier_id, "INPOST",
        "{:?}",
        shipped.shipments[0]
    );
    // The invoice Optima made is uploaded to the order (Allegro's one
    // seller invoice per order), its PDF fetched from the buyer's link.
    let invoice = wait_for(
        "the invoice uploaded to the Allegro order",
        Duration::from_secs(60),
        || async {
            let now = allegro.order(&order.id).context("the order")?;
            Ok(now.invoices.into_iter().find(|i| i.uploaded_at.is_some()))
        },
    )
    .await?;
    let number = invoice.invoice_number.clone().unwrap_or_default();
    assert!(number.starts_with("FS/"), "{invoice:?}");
    assert!(
        invoice.file_size.unwrap_or(0) > 1000,
        "a real PDF: {invoice:?}"
    );
    assert_eq!(
        invoice.file_name,
        format!("{}.pdf", number.replace('/', "_"))
    );

    // The buyer sends the goods back: the office sees the return, with the
    // SKU and quantity, as needing a correction in Optima.
    let returned = allegro.add_customer_return(&order.id, "DELIVERED")?;
    let listed = wait_for("the return on /status", Duration::from_secs(60), || async {
        let status = cloud.status().await?;
        Ok(status["returns"].as_array().and_then(|listed| {
            listed
                .iter()
                .find(|r| r["id"] == returned.id.as_str())
                .cloned()
        }))
    })
    .await?;
    assert_eq!(listed["shop"], SHOP);
    assert_eq!(listed["order_id"], order.id.as_str());
    assert_eq!(listed["status"], "DELIVERED");
    assert_eq!(listed["items"][0]["sku"], skus[0].as_str(), "{listed}");
    assert_eq!(listed["items"][0]["quantity"], 2);
    assert_eq!(listed["needs"], "a correction in the ERP");
    Ok(())
}

/// The operator links the seller with `deploy.py allegro-authorize`: the
/// command shows Allegro's code, waits while the seller has not confirmed
/// it, and stores a pair that Allegro accepts in the shop's own secret,
/// without printing the tokens; `destroy` removes the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_links_a_seller_with_the_device_flow() -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader};

    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let mut options = AllegroOptions::default();
    options.config.device_interval_secs = 1;
    let allegro = AllegroStandin::start(options).await?;
    let stack = "allegro-authorize";
    let cloud = LocalCloud::start_with(&dir, stack, Some(shop_parameters(&allegro)))?;

    let mut command = harness::stack::deploy_command(&cloud.emulator.endpoint())?;
    command
        .args([
            "allegro-authorize",
            "--stack",
            stack,
            "--shop",
            SHOP,
            "--timeout",
            "60",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command
        .spawn()
        .context("starting deploy.py allegro-authorize")?;
    let stdout = child.stdout.take().context("stdout")?;
    let shown: Vec<String> = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take(2)
            .collect()
    })
    .await?;
    let code = shown
        .last()
        .and_then(|line| line.split("confirm the code: ").nth(1))
        .with_context(|| format!("no code shown: {shown:?}"))?
        .to_owned();
    assert!(
        shown[0].contains("?code="),
        "the page to open, with the code: {shown:?}"
    );
    // The command polls while the seller has not confirmed.
    let pending = wait_for("the command polling", Duration::from_secs(20), || async {
        Ok((allegro.counters().device_polls >= 2).then_some(()))
    })
    .await;
    pending?;
    assert!(
        allegro.approve_device(&code),
        "the code {code} is Allegro's"
    );
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");

    let aws = sdk_config(&cloud.emulator.endpoint()).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let name = functions::token_secrets::secret_name(stack, SHOP);
    let stored: serde_json::Value = serde_json::from_str(
        &secrets
            .get_secret_value()
            .secret_id(&name)
            .send()
            .await?
            .secret_string
            .context("the token secret")?,
    )?;
    let access = stored["access_token"].as_str().context("an access token")?;
    assert!(stored["refresh_token"].is_string(), "a refresh token");
    assert!(
        !stderr.contains(access),
        "the command printed the token: {stderr}"
    );
    let answer = reqwest::Client::new()
        .get(format!("{}/order/events", allegro.api_url()))
        .bearer_auth(access)
        .header("accept", allegro_standin::VND)
        .send()
        .await?;
    assert_eq!(answer.status(), 200, "Allegro accepts the stored token");

    let mut destroy = harness::stack::deploy_command(&cloud.emulator.endpoint())?;
    let done = destroy.args(["destroy", "--stack", stack]).output()?;
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let gone = secrets.get_secret_value().secret_id(&name).send().await;
    assert!(gone.is_err(), "the token secret outlived the stack");
    Ok(())
}
