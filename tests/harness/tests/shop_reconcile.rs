//! ERP → shop against what the shop confirmed, not only what was queued:
//! a shop that refuses our credentials for a while parks nothing and loses
//! nothing (its messages stay on the queue), and afterwards the next
//! reading brings it back; a stock figure edited by hand in the shop is
//! put right by a forced pass (records resent unchanged).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use contract::{
    Envelope, Payload, PriceKind, PriceRecord, ProductRecord, StockRecord, VatRate, encode_body,
};
use harness::cloud::LocalCloud;
use harness::emulator::sdk_config;
use harness::standins::WooStandinProcess;
use harness::wait_for;
use rust_decimal::Decimal;

const SKU: &str = "REC-1";

async fn send(sqs: &aws_sdk_sqs::Client, queue: &str, envelope: &Envelope) -> anyhow::Result<()> {
    sqs.send_message()
        .queue_url(queue)
        .message_body(encode_body(envelope))
        .message_group_id(&envelope.agent_id)
        .message_deduplication_id(format!(
            "{}-{}-{}",
            envelope.agent_id,
            envelope.seq,
            rand::random::<u32>()
        ))
        .send()
        .await?;
    Ok(())
}

fn product() -> ProductRecord {
    ProductRecord {
        sku: SKU.into(),
        erp_id: 1,
        name: "Wkrętarka".into(),
        ean: None,
        extra_eans: Vec::new(),
        unit: "szt.".into(),
        vat: VatRate::Percent(Decimal::from(23)),
        group_path: vec!["Narzędzia".into()],
        active: true,
        description: None,
        modified_at: None,
    }
}

fn price() -> PriceRecord {
    PriceRecord {
        sku: SKU.into(),
        price_list: "Detaliczna".into(),
        kind: PriceKind::Gross,
        value: Decimal::new(19900, 2),
        currency: "PLN".into(),
        vat: VatRate::Percent(Decimal::from(23)),
    }
}

fn stock(warehouse: &str, quantity: i64, read_at: DateTime<Utc>) -> StockRecord {
    StockRecord {
        sku: SKU.into(),
        warehouse: warehouse.into(),
        quantity: Decimal::from(quantity),
        reserved: Decimal::ZERO,
        read_at,
    }
}

async fn shop_stock(shop: &WooStandinProcess) -> anyhow::Result<Option<i64>> {
    Ok(shop
        .product(SKU)
        .await?
        .and_then(|p| p["stock_quantity"].as_i64()))
}

async fn stock_shown(shop: &WooStandinProcess, quantity: i64) -> anyhow::Result<()> {
    wait_for(
        &format!("{SKU} at {quantity} in the shop"),
        Duration::from_secs(30),
        || async { Ok((shop_stock(shop).await? == Some(quantity)).then_some(())) },
    )
    .await
}

/// The events queue empty, and the shop-ops queue with nothing visible
/// (messages in flight may stay: a refused batch waits out its visibility).
async fn settled(cloud: &LocalCloud) -> anyhow::Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut calm = 0;
    loop {
        if Instant::now() > deadline {
            bail!("the queues did not settle within 60 s");
        }
        let status = cloud.status().await?;
        let q = &status["queues"];
        let busy = q["erp_events"]["visible"].as_u64().unwrap_or(1)
            + q["erp_events"]["in_flight"].as_u64().unwrap_or(1)
            + q["shop_ops"]["visible"].as_u64().unwrap_or(1);
        calm = if busy == 0 { calm + 1 } else { 0 };
        if calm >= 3 {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// A shop and the cloud with the product at 7 in it.
async fn started(
    logs: &std::path::Path,
    stack: &str,
) -> anyhow::Result<(
    WooStandinProcess,
    LocalCloud,
    aws_sdk_sqs::Client,
    String,
    DateTime<Utc>,
)> {
    let shop = WooStandinProcess::start_with(None, Some(&[SKU.to_owned()]), None, logs)?;
    let cloud = LocalCloud::start_with(
        logs,
        stack,
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
    )?;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&cloud.emulator.endpoint()).await);
    let events = cloud.stack.output("EventsQueueUrl")?.to_owned();
    let t0 = Utc::now();
    send(
        &sqs,
        &events,
        &Envelope::new("biuro", 1, t0, Payload::Products(vec![product()])),
    )
    .await?;
    send(
        &sqs,
        &events,
        &Envelope::new("biuro", 2, t0, Payload::Prices(vec![price()])),
    )
    .await?;
    send(
        &sqs,
        &events,
        &Envelope::new("biuro", 3, t0, Payload::Stock(vec![stock("MAG", 7, t0)])),
    )
    .await?;
    stock_shown(&shop, 7).await?;
    settled(&cloud).await?;
    Ok((shop, cloud, sqs, events, t0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_park_nothing_and_the_next_reading_heals_the_shop() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let (shop, cloud, sqs, events, t0) = started(dir.path(), "auth").await?;

    // The host's security plugin refuses every request for a while.
    shop.set_faults(serde_json::json!({"fail_status": 401, "fail_next": 1000}))
        .await?;
    let t1 = t0 + chrono::Duration::seconds(1);
    send(
        &sqs,
        &events,
        &Envelope::new("biuro", 4, t1, Payload::Stock(vec![stock("MAG", 5, t1)])),
    )
    .await?;
    wait_for("the shop's 401", Duration::from_secs(30), || async {
        Ok(shop.stats().await?["responses_by_status"]["401"]
            .as_u64()
            .filter(|n| *n > 0))
    })
    .await?;
    let status = settled(&cloud).await?;
    assert_eq!(
        status["parked_records"].as_array().map(Vec::len),
        Some(0),
        "nothing parked for refused credentials: {status}"
    );
    assert!(
        status["queues"]["shop_ops"]["in_flight"].as_u64() >= Some(1),
        "the refused message stays on the queue, to come back or reach the DLQ: {status}"
    );
    assert_eq!(shop_stock(&shop).await?, Some(7));

    // The credentials work again. A reading that changes nothing the shop
    // shows (a warehouse this shop does not sell from) still finds the shop
    // short of what was queued, and sends it.
    shop.set_faults(serde_json::json!({"fail_next": 0})).await?;
    let t2 = t0 + chrono::Duration::seconds(2);
    send(
        &sqs,
        &events,
        &Envelope::new("biuro", 5, t2, Payload::Stock(vec![stock("INNY", 3, t2)])),
    )
    .await?;
    stock_shown(&shop, 5).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edit_in_the_shop_is_put_right_by_a_forced_pass() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (shop, cloud, sqs, events, t0) = started(dir.path(), "handedit").await?;

    // Someone sets the stock in WooCommerce's admin.
    reqwest::Client::new()
        .put(format!("{}/__standin/products/{SKU}/stock", shop.base_url))
        .json(&serde_json::json!({"stock_quantity": 1}))
        .send()
        .await?
        .error_for_status()?;
    assert_eq!(shop_stock(&shop).await?, Some(1));

    // The same batch redelivered changes nothing: it is not a new reading.
    let before = shop.stats().await?["total_requests"]
        .as_u64()
        .context("count")?;
    send(
        &sqs,
        &events,
        &Envelope::new("biuro", 3, t0, Payload::Stock(vec![stock("MAG", 7, t0)])),
    )
    .await?;
    settled(&cloud).await?;
    assert_eq!(shop.stats().await?["total_requests"].as_u64(), Some(before));

    // `agent sync --all-records`: every record read again, unchanged.
    let t1 = t0 + chrono::Duration::seconds(5);
    send(
        &sqs,
        &events,
        &Envelope::new("biuro", 4, t1, Payload::Products(vec![product()])),
    )
    .await?;
    send(
        &sqs,
        &events,
        &Envelope::new("biuro", 5, t1, Payload::Prices(vec![price()])),
    )
    .await?;
    send(
        &sqs,
        &events,
        &Envelope::new("biuro", 6, t1, Payload::Stock(vec![stock("MAG", 7, t1)])),
    )
    .await?;
    stock_shown(&shop, 7).await?;
    Ok(())
}

/// A batch request the shop refuses as a whole (a 400, as a plugin
/// validating one product might answer) parks only what the shop refuses
/// when asked item by item: here nothing, so every product gets its stock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_parks_only_the_items_refused_alone() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let logs = dir.path();
    let skus: Vec<String> = (0..3).map(|i| format!("ONE-{i}")).collect();
    let shop = WooStandinProcess::start_with(None, Some(&skus), None, logs)?;
    let cloud = LocalCloud::start_with(
        logs,
        "refused",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
    )?;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&cloud.emulator.endpoint()).await);
    shop.set_faults(
        serde_json::json!({"fail_status": 400, "fail_next": 1, "fail_path_contains": "/batch"}),
    )
    .await?;
    let now = Utc::now();
    let operations: Vec<serde_json::Value> = skus
        .iter()
        .map(|sku| {
            serde_json::json!({"shop": "sklep", "sku": sku, "source_time": now,
                               "changes": {"stock_quantity": 11}})
        })
        .collect();
    sqs.send_message()
        .queue_url(cloud.stack.output("ShopOpsQueueUrl")?)
        .message_body(serde_json::Value::Array(operations).to_string())
        .send()
        .await?;
    wait_for("every product at 11", Duration::from_secs(30), || async {
        for sku in &skus {
            let shown = shop
                .product(sku)
                .await?
                .is_some_and(|p| p["stock_quantity"] == 11);
            if !shown {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await?;
    let status = settled(&cloud).await?;
    assert_eq!(
        status["parked_records"].as_array().map(Vec::len),
        Some(0),
        "nothing parked: {status}"
    );
    assert_eq!(shop.stats().await?["injected_errors"], 1);
    Ok(())
}
