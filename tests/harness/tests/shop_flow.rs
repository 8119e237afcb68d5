//! The cloud's half of ERP → shop with the agent replaced by messages sent
//! straight to the events and shop-ops queues: redelivered and reordered
//! batches change nothing in the shop, and 2,000 updates go into a shop
//! limited to a few requests per second without loss, without passing the
//! limit, and not far from the fastest time that limit allows.

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
use serde_json::Value;

/// Sends an envelope as the agent would, with a fresh deduplication id (a redelivery).
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

/// Both queues empty and nothing in flight, three checks in a row.
async fn quiet(cloud: &LocalCloud) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut calm = 0;
    while calm < 3 {
        if Instant::now() > deadline {
            bail!("the queues did not settle within 60 s");
        }
        let status = cloud.status().await?;
        let busy: u64 = ["erp_events", "shop_ops"]
            .iter()
            .map(|q| {
                status["queues"][q]["visible"].as_u64().unwrap_or(1)
                    + status["queues"][q]["in_flight"].as_u64().unwrap_or(1)
            })
            .sum();
        calm = if busy == 0 { calm + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    Ok(())
}

fn product(sku: &str) -> ProductRecord {
    ProductRecord {
        sku: sku.into(),
        erp_id: 1,
        name: format!("Wiertło {sku} ąćęłńóśźż"),
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

fn price(sku: &str, value: Decimal) -> PriceRecord {
    PriceRecord {
        sku: sku.into(),
        price_list: "Detaliczna".into(),
        kind: PriceKind::Gross,
        value,
        currency: "PLN".into(),
        vat: VatRate::Percent(Decimal::from(23)),
    }
}

fn stock(sku: &str, quantity: i64, read_at: DateTime<Utc>) -> StockRecord {
    StockRecord {
        sku: sku.into(),
        warehouse: "MAG".into(),
        quantity: Decimal::from(quantity),
        reserved: Decimal::ZERO,
        read_at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_and_reordered_batches_change_nothing_in_the_shop() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let logs = dir.path();
    let shop = WooStandinProcess::start_with(None, Some(&["X-1".to_owned()]), None, logs)?;
    let cloud = LocalCloud::start_with(
        logs,
        "idem",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
    )?;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&cloud.emulator.endpoint()).await);
    let events = cloud.stack.output("EventsQueueUrl")?.to_owned();
    let t0 = Utc::now();
    let e = |seq, payload| Envelope::new("biuro", seq, t0, payload);

    send(
        &sqs,
        &events,
        &e(1, Payload::Products(vec![product("X-1")])),
    )
    .await?;
    send(
        &sqs,
        &events,
        &e(2, Payload::Prices(vec![price("X-1", "50.00".parse()?)])),
    )
    .await?;
    let newer = e(3, Payload::Stock(vec![stock("X-1", 7, t0)]));
    send(&sqs, &events, &newer).await?;
    wait_for("X-1 at 7 for 50.00", Duration::from_secs(30), || async {
        Ok(shop
            .product("X-1")
            .await?
            .filter(|p| p["stock_quantity"] == 7 && p["regular_price"] == "50.00"))
    })
    .await?;
    quiet(&cloud).await?;
    let before = shop.stats().await?["total_requests"]
        .as_u64()
        .context("request count")?;

    // The same batch again, as SQS may deliver it after a crash: nothing.
    send(&sqs, &events, &newer).await?;
    quiet(&cloud).await?;
    let redelivered = shop.stats().await?["total_requests"]
        .as_u64()
        .context("request count")?;
    assert_eq!(
        redelivered, before,
        "a redelivery sends nothing to the shop"
    );
    // The same figure read again under a new sequence number, its clock a
    // minute behind (the office clock stepped back): order is by sequence,
    // so it is not dropped as older; an unchanged reading counts as the
    // agent resending (a forced pass), which restates the value in the shop
    // once (reconciliation against what the shop holds), no more.
    send(
        &sqs,
        &events,
        &e(
            4,
            Payload::Stock(vec![stock("X-1", 7, t0 - chrono::Duration::seconds(60))]),
        ),
    )
    .await?;
    quiet(&cloud).await?;
    let product = shop.product("X-1").await?.context("X-1")?;
    assert_eq!(product["stock_quantity"], 7, "still the ERP's figure");
    let after = shop.stats().await?["total_requests"]
        .as_u64()
        .context("request count")?;
    assert!(
        after <= before + 1,
        "at most one write restating the same figure: {before} -> {after} requests"
    );

    // A newer reading after a gap (seq 5 never sent) still lands, and the
    // agent is asked to resend.
    send(
        &sqs,
        &events,
        &e(
            6,
            Payload::Stock(vec![stock("X-1", 4, t0 + chrono::Duration::seconds(1))]),
        ),
    )
    .await?;
    wait_for("X-1 at 4", Duration::from_secs(30), || async {
        Ok(shop
            .product("X-1")
            .await?
            .filter(|p| p["stock_quantity"] == 4))
    })
    .await?;
    let commands = sqs
        .receive_message()
        .queue_url(cloud.stack.output("CommandsQueueUrl")?)
        .wait_time_seconds(5)
        .send()
        .await?
        .messages
        .unwrap_or_default();
    let resend = commands
        .iter()
        .filter_map(|m| m.body.as_deref())
        .filter_map(|b| contract::decode_body(b).ok())
        .find_map(|env| match env.payload {
            Payload::Resend(r) => Some(r),
            _ => None,
        })
        .context("a resend command for the gap")?;
    assert_eq!((resend.from_seq, resend.to_seq), (5, 5));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_updates_fit_a_rate_limited_shop_without_loss() -> anyhow::Result<()> {
    const LIMIT: u32 = 5;
    const SKUS: usize = 2000;
    let dir = harness::TestDir::new()?;
    // E2E_KEEP=1 keeps the logs for a look after a failure.
    let logs = &dir.path().to_path_buf();
    let skus: Vec<String> = (0..SKUS).map(|i| format!("RL-{i:05}")).collect();
    let shop = WooStandinProcess::start_with(None, Some(&skus), Some(LIMIT), logs)?;
    let cloud = LocalCloud::start_with(
        logs,
        "rate",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], LIMIT, 1)),
    )?;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&cloud.emulator.endpoint()).await);
    let ops_queue = cloud.stack.output("ShopOpsQueueUrl")?.to_owned();
    let before = shop.stats().await?["total_requests"].as_u64().unwrap_or(0);

    // What ingest queues for 2,000 changed SKUs: 20 messages of 100 operations.
    let now = Utc::now();
    let operations: Vec<Value> = skus
        .iter()
        .enumerate()
        .map(|(i, sku)| {
            serde_json::json!({
                "shop": "sklep", "sku": sku, "source_time": now,
                "changes": {"stock_quantity": (i % 97) as i64 + 20, "regular_price": format!("{}.99", i % 50 + 1)}
            })
        })
        .collect();
    // As ingest sends them: SendMessageBatch, ten messages a call.
    let bodies: Vec<String> = operations
        .chunks(100)
        .map(|c| Value::Array(c.to_vec()).to_string())
        .collect();
    for group in bodies.chunks(10) {
        let entries = group
            .iter()
            .enumerate()
            .map(|(i, body)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        sqs.send_message_batch()
            .queue_url(&ops_queue)
            .set_entries(Some(entries))
            .send()
            .await?;
    }
    wait_for(
        "every update in the shop",
        Duration::from_secs(120),
        || async {
            let last = shop.product(&skus[SKUS - 1]).await?;
            Ok(last
                .filter(|p| p["stock_quantity"] == ((SKUS - 1) % 97) as i64 + 20)
                .map(|_| ()))
        },
    )
    .await?;
    quiet(&cloud).await?;

    let all: Vec<Value> = reqwest::get(format!("{}/__standin/products", shop.base_url))
        .await?
        .json()
        .await?;
    let by_sku: std::collections::HashMap<&str, &Value> = all
        .iter()
        .filter_map(|p| Some((p["sku"].as_str()?, p)))
        .collect();
    for (i, sku) in skus.iter().enumerate() {
        let p = by_sku
            .get(sku.as_str())
            .with_context(|| format!("{sku} in the shop"))?;
        assert_eq!(
            p["stock_quantity"],
            (i % 97) as i64 + 20,
            "{sku}: no update lost"
        );
        assert_eq!(p["regular_price"], format!("{}.99", i % 50 + 1), "{sku}");
    }
    let stats = shop.stats().await?;
    assert_eq!(stats["rate_limited"], 0, "never a 429: {stats}");
    let max = stats["max_requests_in_any_1s"].as_u64().unwrap_or(u64::MAX);
    assert!(
        max <= u64::from(LIMIT),
        "at most {LIMIT} requests in any second, saw {max}"
    );

    let requests: Vec<Value> = shop
        .requests()
        .await?
        .into_iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/wp-json/"))
        })
        .collect();
    let count = requests.len() as u64;
    assert_eq!(
        count,
        shop.stats().await?["total_requests"].as_u64().unwrap_or(0) - before,
        "every API request is logged"
    );
    let times: Vec<DateTime<Utc>> = requests
        .iter()
        .filter_map(|r| r["at"].as_str())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .collect();
    let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
        bail!("no request times logged");
    };
    let took = (*last - *first).to_std()?;
    let fastest = Duration::from_secs_f64((count - 1) as f64 / f64::from(LIMIT));
    println!(
        "{count} requests for {SKUS} updates in {took:?}; the limit of {LIMIT}/s allows {fastest:?} at best"
    );
    assert!(
        count <= 2 * (SKUS as u64).div_ceil(100) + 2,
        "lookups and writes in batches of 100: {count}"
    );
    let timeline: Vec<String> = requests
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["at"].as_str().unwrap_or("?"),
                r["endpoint"].as_str().unwrap_or("?"),
                r["status"]
            )
        })
        .collect();
    // Measured by the shop's clock, but the functions host and the emulator
    // share 2 cores with the other tests of this binary: the bound fails a
    // push that leaves a third of the limit unused (one that waits for a
    // redelivery, or paces below the rate), not one slowed by its
    // neighbours. It was 10 % (test audit §2); the figure is printed above.
    assert!(
        took.as_secs_f64() <= fastest.as_secs_f64() * 1.5,
        "within 50% of the fastest: {took:?} vs {fastest:?}; requests:\n{}",
        timeline.join("\n")
    );
    Ok(())
}

fn heartbeat(seq: u64) -> Envelope {
    Envelope::new(
        "biuro",
        seq,
        Utc::now(),
        Payload::Heartbeat(contract::Heartbeat {
            agent_version: "test".into(),
            agent_clock: Utc::now(),
            health: contract::AgentHealth {
                sql_server: true,
                sql_error: None,
                outbox_depth: 0,
                takes_orders: None,
                rejected_records: None,
                rejected_latest: None,
            },
        }),
    )
}

/// The same watchdog code the schedule runs, with a 1-second staleness
/// limit, returned once the cloud's own status shows the agent silent for
/// at least 2 s (whole seconds, rounded down), so it is past the limit.
async fn watchdog_stale_after_one_second(
    cloud: &LocalCloud,
) -> anyhow::Result<functions::watchdog::Watchdog> {
    let clients =
        functions::aws::Clients::from_config(&sdk_config(&cloud.emulator.endpoint()).await);
    let mut env =
        functions::env::FunctionEnv::from_map(cloud.stack.function("watchdog")?.environment());
    env.set("AGENT_STALE_AFTER_SECONDS", "1");
    wait_for(
        "the agent silent for 2 s by the cloud's clock",
        Duration::from_secs(30),
        || async {
            let status = cloud.status().await?;
            let silent = status["agents"][0]["seconds_since_seen"].as_i64();
            Ok(silent.filter(|s| *s >= 2).map(|_| ()))
        },
    )
    .await?;
    Ok(functions::watchdog::Watchdog::new(&clients, &env)?)
}

/// Under the default stale policy, `hold`, a silent agent is marked stale
/// and the shop is left alone: not one request, low stock as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_agent_under_hold_leaves_the_shop_as_it_is() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let shop = WooStandinProcess::start_with(None, Some(&["LOW-1".to_owned()]), None, dir.path())?;
    let cloud = LocalCloud::start_with(
        dir.path(),
        "hold",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
    )?;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&cloud.emulator.endpoint()).await);
    let events = cloud.stack.output("EventsQueueUrl")?.to_owned();
    let t0 = Utc::now();
    send(&sqs, &events, &heartbeat(1)).await?;
    for (seq, payload) in [
        (2, Payload::Products(vec![product("LOW-1")])),
        (3, Payload::Prices(vec![price("LOW-1", "9.99".parse()?)])),
        (4, Payload::Stock(vec![stock("LOW-1", 1, t0)])),
    ] {
        send(&sqs, &events, &Envelope::new("biuro", seq, t0, payload)).await?;
    }
    let low = ["LOW-1".to_owned()];
    wait_for("LOW-1 at 1", Duration::from_secs(30), || {
        all_at(&shop, &low, 1)
    })
    .await?;
    quiet(&cloud).await?;
    let before = shop.stats().await?["total_requests"].as_u64();

    let watchdog = watchdog_stale_after_one_second(&cloud).await?;
    let summary = watchdog
        .handle(Value::Null)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(summary["changed"][0]["stale"], true, "{summary}");
    quiet(&cloud).await?;
    let status = cloud.status().await?;
    assert_eq!(status["agents"][0]["stale"], true, "{status}");
    assert_eq!(status["shops"][0]["zeroed_products"], 0, "{status}");
    assert_eq!(
        shop.stats().await?["total_requests"].as_u64(),
        before,
        "hold sends nothing to the shop"
    );
    assert!(all_at(&shop, &low, 1).await?.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_agent_zeroes_low_stock_and_its_return_restores_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let logs = dir.path();
    let shop = WooStandinProcess::start_with(
        None,
        Some(&[
            "LOW-1".to_owned(),
            "HIGH-1".to_owned(),
            "EDGE-3".to_owned(),
            "EDGE-4".to_owned(),
        ]),
        None,
        logs,
    )?;
    let (config, secrets) = shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20);
    let mut config: Value = serde_json::from_str(&config)?;
    config[0]["stale_policy"] = serde_json::json!({"policy": "zero_low_stock", "threshold": 3});
    let cloud = LocalCloud::start_with(logs, "stale", Some((config.to_string(), secrets)))?;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&cloud.emulator.endpoint()).await);
    let events = cloud.stack.output("EventsQueueUrl")?.to_owned();
    let t0 = Utc::now();
    let e = |seq, payload| Envelope::new("biuro", seq, t0, payload);
    send(&sqs, &events, &heartbeat(1)).await?;
    send(
        &sqs,
        &events,
        &e(
            2,
            Payload::Products(vec![
                product("LOW-1"),
                product("HIGH-1"),
                product("EDGE-3"),
                product("EDGE-4"),
            ]),
        ),
    )
    .await?;
    send(
        &sqs,
        &events,
        &e(
            3,
            Payload::Prices(vec![
                price("LOW-1", "9.99".parse()?),
                price("HIGH-1", "19.99".parse()?),
                price("EDGE-3", "1.00".parse()?),
                price("EDGE-4", "1.00".parse()?),
            ]),
        ),
    )
    .await?;
    send(
        &sqs,
        &events,
        &e(
            4,
            // The threshold is 3: at 3 a product is low, at 4 it is not.
            Payload::Stock(vec![
                stock("LOW-1", 2, t0),
                stock("HIGH-1", 40, t0),
                stock("EDGE-3", 3, t0),
                stock("EDGE-4", 4, t0),
            ]),
        ),
    )
    .await?;
    wait_for(
        "both products in the shop",
        Duration::from_secs(30),
        || async {
            let low = shop
                .product("LOW-1")
                .await?
                .and_then(|p| p["stock_quantity"].as_i64());
            let high = shop
                .product("HIGH-1")
                .await?
                .and_then(|p| p["stock_quantity"].as_i64());
            let edges = all_at(&shop, &["EDGE-3".to_owned()], 3).await?.is_some()
                && all_at(&shop, &["EDGE-4".to_owned()], 4).await?.is_some();
            Ok((low == Some(2) && high == Some(40) && edges).then_some(()))
        },
    )
    .await?;
    quiet(&cloud).await?;

    let watchdog = watchdog_stale_after_one_second(&cloud).await?;
    let summary = watchdog
        .handle(Value::Null)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(summary["changed"][0]["stale"], true, "{summary}");
    let low_ones = ["LOW-1".to_owned(), "EDGE-3".to_owned()];
    wait_for(
        "the low-stock products at 0",
        Duration::from_secs(30),
        || all_at(&shop, &low_ones, 0),
    )
    .await?;
    quiet(&cloud).await?;
    assert_eq!(
        shop.product("HIGH-1").await?.context("HIGH-1")?["stock_quantity"],
        40,
        "plenty of stock stays"
    );
    assert_eq!(
        shop.product("EDGE-4").await?.context("EDGE-4")?["stock_quantity"],
        4,
        "one above the threshold stays"
    );
    let status = cloud.status().await?;
    let agent = &status["agents"][0];
    assert_eq!(
        agent["stale"], true,
        "the status says the data is stale: {status}"
    );
    assert_eq!(status["shops"][0]["zeroed_products"], 2, "{status}");

    // The agent is back: the shop shows the ERP's figure again.
    send(&sqs, &events, &heartbeat(5)).await?;
    wait_for("a fresh heartbeat", Duration::from_secs(30), || async {
        let status = cloud.status().await?;
        Ok((status["agents"][0]["seconds_since_seen"].as_i64() == Some(0)).then_some(()))
    })
    .await?;
    let summary = watchdog
        .handle(Value::Null)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(summary["changed"][0]["stale"], false, "{summary}");
    wait_for(
        "the low-stock products restored",
        Duration::from_secs(30),
        || async {
            Ok(all_at(&shop, &["LOW-1".to_owned()], 2)
                .await?
                .and(all_at(&shop, &["EDGE-3".to_owned()], 3).await?))
        },
    )
    .await?;
    assert_eq!(cloud.status().await?["shops"][0]["zeroed_products"], 0);
    Ok(())
}

/// One SQS record carrying an envelope, as the events queue delivers it.
fn sqs_event(envelope: &Envelope) -> aws_lambda_events::event::sqs::SqsEvent {
    let mut message = aws_lambda_events::event::sqs::SqsMessage::default();
    message.message_id = Some(format!("{}-{}", envelope.agent_id, envelope.seq));
    message.body = Some(encode_body(envelope));
    message
        .attributes
        .insert("MessageGroupId".into(), envelope.agent_id.clone());
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    event.records = vec![message];
    event
}

/// Two `ingest` invocations at once, each with a batch for the same SKUs
/// (prices from one agent, stock from another), both land: every SKU keeps
/// the price of one and the stock of the other, and the shop shows both.
/// Each invocation reads the SKUs' items, merges its records and writes
/// them back; without the write's revision check the slower one would put
/// back what it read and drop the other's records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_for_the_same_skus_both_land() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let logs = dir.path();
    let skus: Vec<String> = (0..120).map(|i| format!("RACE-{i}")).collect();
    let shop = WooStandinProcess::start_with(None, Some(&skus), None, logs)?;
    let cloud = LocalCloud::start_with(
        logs,
        "race",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 50, 50)),
    )?;
    let config = sdk_config(&cloud.emulator.endpoint()).await;
    let clients = functions::aws::Clients::from_config(&config);
    let env = functions::env::FunctionEnv::from_map(cloud.stack.function("ingest")?.environment());
    let ingest = functions::ingest::Ingest::new(&clients, &env)?;
    let t0 = Utc::now();

    let products = Envelope::new(
        "katalog",
        1,
        t0,
        Payload::Products(skus.iter().map(|s| product(s)).collect()),
    );
    let answer = ingest.handle(sqs_event(&products)).await;
    let answer = answer.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");

    let prices = Envelope::new(
        "ceny",
        1,
        t0,
        Payload::Prices(
            skus.iter()
                .map(|s| price(s, Decimal::new(1999, 2)))
                .collect(),
        ),
    );
    let stock = Envelope::new(
        "magazyn",
        1,
        t0,
        Payload::Stock(skus.iter().map(|s| stock(s, 7, t0)).collect()),
    );
    let (a, b) = tokio::join!(
        ingest.handle(sqs_event(&prices)),
        ingest.handle(sqs_event(&stock))
    );
    for answer in [a, b] {
        let answer = answer.map_err(|e| anyhow::anyhow!("{e}"))?;
        assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    }

    let catalog =
        functions::catalog::Catalog::new(clients.dynamodb.clone(), env.required("STATE_TABLE")?);
    let states = catalog.load_many(&skus, &[]).await?;
    for sku in &skus {
        let erp = states.get(sku).context("loaded")?.erp(sku)?;
        assert_eq!(
            erp.prices.iter().map(|p| p.value).collect::<Vec<_>>(),
            vec![Decimal::new(1999, 2)],
            "{sku}: the price batch's record"
        );
        assert_eq!(
            erp.stock.iter().map(|s| s.quantity).collect::<Vec<_>>(),
            vec![Decimal::from(7)],
            "{sku}: the stock batch's record"
        );
    }
    wait_for(
        "every product with its price and stock in the shop",
        Duration::from_secs(60),
        || async {
            for sku in &skus {
                let product = shop.product(sku).await?;
                let shown = product
                    .is_some_and(|p| p["regular_price"] == "19.99" && p["stock_quantity"] == 7);
                if !shown {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        },
    )
    .await?;
    Ok(())
}

/// Every product of `skus` in the shop at `quantity` (the stand-in's list).
async fn all_at(
    shop: &WooStandinProcess,
    skus: &[String],
    quantity: i64,
) -> anyhow::Result<Option<()>> {
    let all: Vec<Value> = reqwest::get(format!("{}/__standin/products", shop.base_url))
        .await?
        .json()
        .await?;
    let at: std::collections::HashMap<&str, i64> = all
        .iter()
        .filter_map(|p| Some((p["sku"].as_str()?, p["stock_quantity"].as_i64()?)))
        .collect();
    Ok(skus
        .iter()
        .all(|sku| at.get(sku.as_str()) == Some(&quantity))
        .then_some(()))
}

/// A watchdog restore that fails halfway (the shop-ops queue refuses) or
/// has no time left forgets nothing: the agent stays marked stale and the
/// zeroed markers stay until their restoring operations are on the queue,
/// so the next run puts every product back. 150 SKUs: more than one page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_cut_short_is_finished_by_the_next_run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let logs = dir.path();
    let skus: Vec<String> = (0..150).map(|i| format!("ZERO-{i:03}")).collect();
    let shop = WooStandinProcess::start_with(None, Some(&skus), None, logs)?;
    let (config, secrets) = shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 50, 50);
    let mut config: Value = serde_json::from_str(&config)?;
    config[0]["stale_policy"] = serde_json::json!({"policy": "zero_low_stock", "threshold": 3});
    let cloud = LocalCloud::start_with(logs, "restore", Some((config.to_string(), secrets)))?;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&cloud.emulator.endpoint()).await);
    let events = cloud.stack.output("EventsQueueUrl")?.to_owned();
    let t0 = Utc::now();
    let e = |seq, payload| Envelope::new("biuro", seq, t0, payload);
    send(&sqs, &events, &heartbeat(1)).await?;
    send(
        &sqs,
        &events,
        &e(
            2,
            Payload::Products(skus.iter().map(|s| product(s)).collect()),
        ),
    )
    .await?;
    send(
        &sqs,
        &events,
        &e(
            3,
            Payload::Prices(
                skus.iter()
                    .map(|s| price(s, Decimal::new(999, 2)))
                    .collect(),
            ),
        ),
    )
    .await?;
    send(
        &sqs,
        &events,
        &e(
            4,
            Payload::Stock(skus.iter().map(|s| stock(s, 2, t0)).collect()),
        ),
    )
    .await?;
    wait_for("every product at 2", Duration::from_secs(60), || {
        all_at(&shop, &skus, 2)
    })
    .await?;
    quiet(&cloud).await?;

    let clients =
        functions::aws::Clients::from_config(&sdk_config(&cloud.emulator.endpoint()).await);
    let watchdog_env = |stale_after: &str, queue: Option<&str>| -> anyhow::Result<_> {
        let mut env =
            functions::env::FunctionEnv::from_map(cloud.stack.function("watchdog")?.environment());
        env.set("AGENT_STALE_AFTER_SECONDS", stale_after);
        if let Some(queue) = queue {
            env.set("SHOP_OPS_QUEUE_URL", queue);
        }
        Ok(functions::watchdog::Watchdog::new(&clients, &env)?)
    };
    // Stale at once: the agent's last heartbeat is already too old.
    let silent = watchdog_env("0", None)?;
    silent
        .handle(Value::Null)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    wait_for("every product at 0", Duration::from_secs(60), || {
        all_at(&shop, &skus, 0)
    })
    .await?;
    quiet(&cloud).await?;
    assert_eq!(cloud.status().await?["shops"][0]["zeroed_products"], 150);

    // The agent is back, but the restore cannot queue its operations.
    let ops_queue = cloud.stack.output("ShopOpsQueueUrl")?.to_owned();
    let broken = watchdog_env("3600", Some(&format!("{ops_queue}-gone")))?;
    assert!(
        broken.handle(Value::Null).await.is_err(),
        "the restore fails"
    );
    let status = cloud.status().await?;
    assert_eq!(
        status["shops"][0]["zeroed_products"], 150,
        "no marker forgotten before its restore is queued: {status}"
    );
    assert_eq!(status["agents"][0]["stale"], true, "{status}");

    // No time left: nothing done, nothing forgotten.
    let back = watchdog_env("3600", None)?;
    let summary = back
        .handle_until(Value::Null, functions::Deadline::after(Duration::ZERO))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(summary["changed"][0]["finished"], false, "{summary}");
    assert_eq!(cloud.status().await?["shops"][0]["zeroed_products"], 150);

    // The next run restores every product.
    let summary = back
        .handle(Value::Null)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(
        summary["changed"][0]["shop_products_changed"], 150,
        "{summary}"
    );
    wait_for("every product back at 2", Duration::from_secs(60), || {
        all_at(&shop, &skus, 2)
    })
    .await?;
    let status = cloud.status().await?;
    assert_eq!(status["shops"][0]["zeroed_products"], 0, "{status}");
    assert_eq!(status["agents"][0]["stale"], false, "{status}");
    Ok(())
}

/// A shop-ops backlog bigger than one invocation can write moves forward
/// with each delivery: each invocation is cut off at its deadline (as
/// Lambda does) but records the shop ids it looked up and what the shop
/// took as it goes, so the redelivered batch carries on instead of redoing
/// the same lookups and first writes every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_bigger_than_one_invocation_moves_forward_each_time() -> anyhow::Result<()> {
    const LIMIT: u32 = 5;
    const BUDGET: Duration = Duration::from_millis(3500);
    let dir = tempfile::tempdir()?;
    let logs = dir.path();
    let skus: Vec<String> = (0..1000).map(|i| format!("LONG-{i:04}")).collect();
    let shop = WooStandinProcess::start_with(None, Some(&skus), Some(LIMIT), logs)?;
    let cloud = LocalCloud::start_with(
        logs,
        "backlog",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], LIMIT, 1)),
    )?;
    let clients =
        functions::aws::Clients::from_config(&sdk_config(&cloud.emulator.endpoint()).await);
    let env =
        functions::env::FunctionEnv::from_map(cloud.stack.function("shop-push")?.environment())
            .with_shop_secrets(&clients)
            .await?;
    let push = functions::shop_push::ShopPush::new(&clients, &env)?;

    // Ten messages of 100 operations: 10 lookups and 10 writes, at least
    // 3.8 s at 5 requests a second, more than one invocation's 3.5 s.
    let now = Utc::now();
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    for (n, chunk) in skus.chunks(100).enumerate() {
        let operations: Vec<Value> = chunk
            .iter()
            .map(|sku| {
                serde_json::json!({"shop": "sklep", "sku": sku, "source_time": now,
                                   "changes": {"stock_quantity": 42}})
            })
            .collect();
        let mut message = aws_lambda_events::event::sqs::SqsMessage::default();
        message.message_id = Some(format!("backlog-{n}"));
        message.body = Some(Value::Array(operations).to_string());
        event.records.push(message);
    }
    // What the shop has answered so far: lookups and batch writes.
    let answered = |stats: &Value| {
        ["GET /products", "POST /products/batch"]
            .iter()
            .map(|endpoint| {
                stats["requests_by_endpoint"][endpoint]
                    .as_u64()
                    .unwrap_or(0)
            })
            .sum::<u64>()
    };
    let mut invocations = 0;
    let mut before = answered(&shop.stats().await?);
    loop {
        invocations += 1;
        // A liveness bound: on a loaded machine an invocation does less,
        // but each must do something.
        anyhow::ensure!(
            invocations <= 40,
            "the backlog is not written after {} invocations",
            invocations - 1
        );
        // Lambda ends the invocation at its deadline whatever the handler does.
        let answer = tokio::time::timeout(
            BUDGET,
            push.handle_until(event.clone(), functions::Deadline::after(BUDGET)),
        )
        .await;
        if let Ok(answer) = answer {
            let answer = answer.map_err(|e| anyhow::anyhow!("{e}"))?;
            if answer.batch_item_failures.is_empty() {
                break;
            }
        }
        // Handed back with work left: it moved forward, not round in place.
        let after = answered(&shop.stats().await?);
        anyhow::ensure!(
            after > before,
            "invocation {invocations} got no answer from the shop ({after} in all)"
        );
        before = after;
    }
    assert!(
        all_at(&shop, &skus, 42).await?.is_some(),
        "every product written"
    );
    let stats = shop.stats().await?;
    // Each chunk looked up once, give or take one call cut off per invocation.
    let lookups = stats["requests_by_endpoint"]["GET /products"]
        .as_u64()
        .unwrap_or(u64::MAX);
    assert!(
        lookups <= 10 + invocations,
        "{lookups} lookups for 10 chunks in {invocations} invocations: {stats}"
    );
    println!("written in {invocations} invocations");
    Ok(())
}

/// Stock for the variations of a variable-product catalogue reaches a shop
/// limited to 3 requests a second without ever passing it: every request
/// the connector makes (the SKU lookup, the list of variable products, each
/// product's variations, each product's variation batch) takes its own
/// token, not one token per lookup or write however many requests it makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variable_catalogue_never_passes_the_shop_limit() -> anyhow::Result<()> {
    const LIMIT: u32 = 3;
    let dir = tempfile::tempdir()?;
    let logs = dir.path();
    let shop = WooStandinProcess::start_with(None, None, None, logs)?;
    let http = reqwest::Client::new();
    let mut variations = Vec::new();
    for i in 0..8 {
        let parent: Value = http
            .post(format!("{}/__standin/products", shop.base_url))
            .json(&serde_json::json!({"sku": format!("VAR-{i}"), "name": format!("Koszulka {i}"), "type": "variable"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = parent["id"].as_u64().context("parent id")?;
        for size in ["S", "M", "L"] {
            let sku = format!("VAR-{i}-{size}");
            http.post(format!(
                "{}/wp-json/wc/v3/products/{id}/variations",
                shop.base_url
            ))
            .basic_auth(&shop.consumer_key, Some(&shop.consumer_secret))
            .json(&serde_json::json!({"sku": sku, "regular_price": "10.00", "manage_stock": true, "stock_quantity": 1}))
            .send()
            .await?
            .error_for_status()?;
            variations.push(sku);
        }
    }
    http.put(format!("{}/__standin/rate-limit", shop.base_url))
        .json(&serde_json::json!({"per_sec": LIMIT}))
        .send()
        .await?
        .error_for_status()?;
    http.post(format!("{}/__standin/stats/reset", shop.base_url))
        .send()
        .await?
        .error_for_status()?;
    let cloud = LocalCloud::start_with(
        logs,
        "variable",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], LIMIT, 1)),
    )?;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&cloud.emulator.endpoint()).await);
    let now = Utc::now();
    let operations: Vec<Value> = variations
        .iter()
        .map(|sku| {
            serde_json::json!({"shop": "sklep", "sku": sku, "source_time": now,
                               "changes": {"stock_quantity": 9}})
        })
        .collect();
    sqs.send_message()
        .queue_url(cloud.stack.output("ShopOpsQueueUrl")?)
        .message_body(Value::Array(operations).to_string())
        .send()
        .await?;
    wait_for("every variation at 9", Duration::from_secs(90), || async {
        for sku in &variations {
            let shown = shop
                .product(sku)
                .await?
                .is_some_and(|p| p["stock_quantity"] == 9);
            if !shown {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await?;
    let stats = shop.stats().await?;
    println!("{stats}");
    assert!(
        stats["requests_by_endpoint"]["GET /products/{id}/variations"].as_u64() >= Some(8),
        "the variations were looked for: {stats}"
    );
    assert_eq!(stats["rate_limited"], 0, "never a 429: {stats}");
    let max = stats["max_requests_in_any_1s"].as_u64().unwrap_or(u64::MAX);
    assert!(
        max <= u64::from(LIMIT),
        "at most {LIMIT} requests in any second, saw {max}: {stats}"
    );
    Ok(())
}

/// Three products in sync at 5, then the shop's `faults` switched on and
/// the stock changed to 3: the shop's API requests from the change on,
/// once every product shows 3 (nothing lost), and the queues are quiet.
async fn stock_change_under(
    stack: &str,
    faults: Value,
    within: Duration,
) -> anyhow::Result<Vec<Value>> {
    let dir = tempfile::tempdir()?;
    let skus: Vec<String> = (1..=3).map(|i| format!("F-{i}")).collect();
    let shop = WooStandinProcess::start_with(None, Some(&skus), None, dir.path())?;
    let cloud = LocalCloud::start_with(
        dir.path(),
        stack,
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
    )?;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&cloud.emulator.endpoint()).await);
    let events = cloud.stack.output("EventsQueueUrl")?.to_owned();
    let t0 = Utc::now();
    let products = skus.iter().map(|s| product(s)).collect();
    let prices = skus.iter().map(|s| price(s, Decimal::from(10))).collect();
    let at = |q| skus.iter().map(|s| stock(s, q, t0)).collect::<Vec<_>>();
    for (seq, payload) in [
        (1, Payload::Products(products)),
        (2, Payload::Prices(prices)),
        (3, Payload::Stock(at(5))),
    ] {
        send(&sqs, &events, &Envelope::new("biuro", seq, t0, payload)).await?;
    }
    wait_for("the shop at 5", Duration::from_secs(30), || {
        all_at(&shop, &skus, 5)
    })
    .await?;
    quiet(&cloud).await?;
    let before = shop
        .requests()
        .await?
        .iter()
        .filter_map(|r| r["seq"].as_u64())
        .max()
        .unwrap_or(0);
    shop.set_faults(faults).await?;
    let later = t0 + chrono::Duration::seconds(1);
    let change = skus.iter().map(|s| stock(s, 3, later)).collect();
    send(
        &sqs,
        &events,
        &Envelope::new("biuro", 4, later, Payload::Stock(change)),
    )
    .await?;
    wait_for("the shop at 3", within, || all_at(&shop, &skus, 3)).await?;
    quiet(&cloud).await?;
    let status = cloud.status().await?;
    assert_eq!(
        status["queues"]["shop_ops_dlq"]["visible"].as_u64(),
        Some(0),
        "nothing in the shop-ops DLQ: {}",
        status["queues"]
    );
    Ok(shop
        .requests()
        .await?
        .into_iter()
        .filter(|r| r["seq"].as_u64().is_some_and(|s| s > before))
        .collect())
}

fn arrival(request: &Value) -> anyhow::Result<DateTime<Utc>> {
    let at = request["at"].as_str().context("arrival time")?;
    Ok(DateTime::parse_from_rfc3339(at)?.with_timezone(&Utc))
}

/// The injected failures in `requests`, and the gap from each to the
/// request that followed it (arrival to arrival, the stand-in's clock).
fn failures_and_gaps(requests: &[Value]) -> anyhow::Result<Vec<(u16, Duration)>> {
    let mut out = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        if r["fault"] != "injected_error" {
            continue;
        }
        let next = requests.get(i + 1).context("a request after the failure")?;
        let gap = (arrival(next)? - arrival(r)?).to_std()?;
        out.push((r["status"].as_u64().unwrap_or(0) as u16, gap));
    }
    Ok(out)
}

/// A 429 with `Retry-After: 3` holds every request to the shop back for
/// 3 s, and the change still lands: one 429, no second one, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_holds_the_shop_back_until_retry_after_and_loses_nothing() -> anyhow::Result<()> {
    let requests = stock_change_under(
        "fault-429",
        serde_json::json!({"fail_next": 1, "fail_status": 429, "fail_retry_after": 3, "fail_path_contains": "batch"}),
        Duration::from_secs(60),
    )
    .await?;
    let failures = failures_and_gaps(&requests)?;
    assert_eq!(
        failures.len(),
        1,
        "one 429, never asked again into it: {requests:?}"
    );
    let (status, gap) = failures[0];
    assert_eq!(status, 429);
    assert!(
        gap >= Duration::from_secs(3),
        "the next request came {gap:?} after the 429, before its Retry-After of 3 s"
    );
    Ok(())
}

/// A 429 without `Retry-After` holds the shop back for the default penalty
/// (1 s) instead of asking again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_retry_after_waits_the_default_penalty() -> anyhow::Result<()> {
    let requests = stock_change_under(
        "fault-429-bare",
        serde_json::json!({"fail_next": 1, "fail_status": 429, "fail_path_contains": "batch"}),
        Duration::from_secs(60),
    )
    .await?;
    let failures = failures_and_gaps(&requests)?;
    assert_eq!(failures.len(), 1, "{requests:?}");
    assert!(
        failures[0].1 >= Duration::from_secs(1),
        "asked again {:?} after a bare 429",
        failures[0].1
    );
    Ok(())
}

/// Two 503s are retried inside the same call with a back-off (at least
/// 0.5 s before the first retry), and the change lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_down_for_two_requests_is_retried_with_back_off() -> anyhow::Result<()> {
    let requests = stock_change_under(
        "fault-503",
        serde_json::json!({"fail_next": 2, "fail_status": 503, "fail_path_contains": "batch"}),
        Duration::from_secs(60),
    )
    .await?;
    let failures = failures_and_gaps(&requests)?;
    assert_eq!(
        failures.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![503, 503],
        "{requests:?}"
    );
    assert!(
        failures[0].1 >= Duration::from_millis(500),
        "retried {:?} after a 503",
        failures[0].1
    );
    Ok(())
}

/// A shop down past the last attempt of a call: the message goes back to
/// the queue and comes again after its first back-off (20 s), not after
/// the queue's 6-minute visibility, and the change lands; nothing in the
/// dead-letter queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_down_past_the_last_attempt_gets_the_message_again_after_its_back_off()
-> anyhow::Result<()> {
    let requests = stock_change_under(
        "fault-503-redelivered",
        serde_json::json!({"fail_next": 5, "fail_status": 503, "fail_path_contains": "batch"}),
        Duration::from_secs(120),
    )
    .await?;
    let failures = failures_and_gaps(&requests)?;
    assert_eq!(
        failures.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![503; 5],
        "four attempts in the first delivery, one in the second: {requests:?}"
    );
    let redelivered_after = failures[3].1;
    assert!(
        redelivered_after >= Duration::from_secs(19)
            && redelivered_after < Duration::from_secs(100),
        "the message came back {redelivered_after:?} after the last attempt (back-off 20 s)"
    );
    Ok(())
}
