//! The agent → cloud pipe, `ingest` run in-process against the emulator
//! and the deployed stack, with envelopes as an agent writes them:
//! - an agent whose state file was deleted (a new incarnation, numbering
//!   from 1 again) is heard, and asked to resend everything;
//! - an agent whose clock stepped back an hour still gets its stock,
//!   heartbeats and order progress recorded (order is by sequence);
//! - a SKU whose stored item no longer reads is parked with the reason,
//!   and the rest of the batch lands;
//! - a heartbeat in its own lane (contract version 2) is recorded while the
//!   agent's data is still queued, and takes no data sequence number; a
//!   real agent moves its heartbeats there once the cloud tells it;
//! - a buyer's data expires: every stored order and parked order carries
//!   `expires_at` (the retention from its last write), a newer revision
//!   renews it, and an expired order reads as absent and is stored afresh.

use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use contract::{
    Address, AgentHealth, Buyer, Envelope, Heartbeat, Order, OrderLine, OrderProgress, OrderStage,
    Payload, PriceKind, PriceRecord, ProductRecord, StockRecord, VatRate, encode_body,
};
use functions::aws::Clients;
use functions::catalog::Catalog;
use functions::env::FunctionEnv;
use functions::ingest::Ingest;
use harness::cloud::LocalCloud;
use harness::emulator::sdk_config;
use harness::standins::WooStandinProcess;
use harness::wait_for;
use rust_decimal::Decimal;
use serde_json::Value;

/// The cloud with one shop holding `skus`, and `ingest` built as its Lambda is.
struct Pipe {
    _dir: tempfile::TempDir,
    shop: WooStandinProcess,
    cloud: LocalCloud,
    clients: Clients,
    env: FunctionEnv,
    ingest: Ingest,
}

impl Pipe {
    async fn start(name: &str, skus: &[&str]) -> anyhow::Result<Pipe> {
        let dir = tempfile::tempdir()?;
        let skus: Vec<String> = skus.iter().map(|s| (*s).to_owned()).collect();
        let shop = WooStandinProcess::start_with(None, Some(&skus), None, dir.path())?;
        let cloud = LocalCloud::start_with(
            dir.path(),
            name,
            Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
        )?;
        let clients = Clients::from_config(&sdk_config(&cloud.emulator.endpoint()).await);
        let env = FunctionEnv::from_map(cloud.stack.function("ingest")?.environment());
        let ingest = Ingest::new(&clients, &env)?;
        Ok(Pipe {
            _dir: dir,
            shop,
            cloud,
            clients,
            env,
            ingest,
        })
    }

    /// Delivers envelopes one SQS record each, as the events queue would,
    /// and expects none of them back.
    async fn deliver(&self, envelopes: &[Envelope]) -> anyhow::Result<()> {
        let mut event = SqsEvent::default();
        event.records = envelopes
            .iter()
            .map(|envelope| {
                let mut message = SqsMessage::default();
                message.message_id = Some(format!(
                    "{}-{}-{}",
                    envelope.agent_id,
                    envelope.incarnation.as_deref().unwrap_or("-"),
                    envelope.seq
                ));
                message.body = Some(encode_body(envelope));
                message
                    .attributes
                    .insert("MessageGroupId".into(), envelope.agent_id.clone());
                message
            })
            .collect();
        let answer = self
            .ingest
            .handle(event)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(
            answer.batch_item_failures.is_empty(),
            "nothing is handed back for redelivery: {answer:?}"
        );
        Ok(())
    }

    fn catalog(&self) -> anyhow::Result<Catalog> {
        Ok(Catalog::new(
            self.clients.dynamodb.clone(),
            self.env.required("STATE_TABLE")?,
        ))
    }

    async fn stock_of(&self, sku: &str) -> anyhow::Result<Vec<Decimal>> {
        let state = self.catalog()?.load(sku).await?;
        Ok(state.erp(sku)?.stock.iter().map(|s| s.quantity).collect())
    }

    async fn agent_status(&self, agent: &str) -> anyhow::Result<Value> {
        let status = self.cloud.status().await?;
        status["agents"]
            .as_array()
            .and_then(|agents| agents.iter().find(|a| a["agent_id"] == agent))
            .cloned()
            .with_context(|| format!("agent {agent} in {status}"))
    }

    /// The resend commands waiting for the agent.
    async fn resends(&self) -> anyhow::Result<Vec<contract::Resend>> {
        let sqs = aws_sdk_sqs::Client::new(&sdk_config(&self.cloud.emulator.endpoint()).await);
        let messages = sqs
            .receive_message()
            .queue_url(self.cloud.stack.output("CommandsQueueUrl")?)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .send()
            .await?
            .messages
            .unwrap_or_default();
        Ok(messages
            .iter()
            .filter_map(|m| contract::decode_body(m.body.as_deref()?).ok())
            .filter_map(|envelope| match envelope.payload {
                Payload::Resend(resend) => Some(resend),
                _ => None,
            })
            .collect())
    }
}

/// What an agent with a state file of `incarnation` numbers `seq`.
fn from(incarnation: &str, seq: u64, sent_at: DateTime<Utc>, payload: Payload) -> Envelope {
    Envelope::new("biuro", seq, sent_at, payload).with_incarnation(Some(incarnation))
}

fn product(sku: &str) -> Payload {
    Payload::Products(vec![ProductRecord {
        sku: sku.into(),
        erp_id: 1,
        name: format!("Wiertło {sku}"),
        ean: None,
        extra_eans: Vec::new(),
        unit: "szt.".into(),
        vat: VatRate::Percent(Decimal::from(23)),
        group_path: vec!["Narzędzia".into()],
        active: true,
        description: None,
        modified_at: None,
    }])
}

fn price(sku: &str) -> Payload {
    Payload::Prices(vec![PriceRecord {
        sku: sku.into(),
        price_list: "Detaliczna".into(),
        kind: PriceKind::Gross,
        value: Decimal::new(4999, 2),
        currency: "PLN".into(),
        vat: VatRate::Percent(Decimal::from(23)),
    }])
}

fn stock(skus: &[&str], quantity: i64, read_at: DateTime<Utc>) -> Payload {
    Payload::Stock(
        skus.iter()
            .map(|sku| StockRecord {
                sku: (*sku).into(),
                warehouse: "MAG".into(),
                quantity: Decimal::from(quantity),
                reserved: Decimal::ZERO,
                read_at,
            })
            .collect(),
    )
}

fn heartbeat(clock: DateTime<Utc>, outbox_depth: u64) -> Payload {
    Payload::Heartbeat(Heartbeat {
        agent_version: "test".into(),
        agent_clock: clock,
        health: AgentHealth {
            sql_server: true,
            sql_error: None,
            outbox_depth,
            takes_orders: Some(true),
            rejected_records: None,
            rejected_latest: None,
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_agent_state_is_heard_again_and_asked_for_everything() -> anyhow::Result<()> {
    let pipe = Pipe::start("reborn", &["X-1"]).await?;
    let t0 = Utc::now();
    // The first life of the agent's state: months of messages.
    let mut first_life = vec![
        from("aaaa", 1, t0, product("X-1")),
        from("aaaa", 2, t0, price("X-1")),
        from("aaaa", 3, t0, stock(&["X-1"], 7, t0)),
    ];
    first_life.extend((4..=20).map(|seq| from("aaaa", seq, t0, heartbeat(t0, seq))));
    pipe.deliver(&first_life).await?;
    assert_eq!(pipe.stock_of("X-1").await?, [Decimal::from(7)]);
    assert!(pipe.resends().await?.is_empty(), "no gap, no resend");

    // The state file is deleted: a new incarnation numbers from 1 again.
    let t1 = t0 + chrono::Duration::seconds(5);
    pipe.deliver(&[
        from("bbbb", 1, t1, stock(&["X-1"], 3, t1)),
        from("bbbb", 2, t1, heartbeat(t1, 99)),
    ])
    .await?;
    assert_eq!(
        pipe.stock_of("X-1").await?,
        [Decimal::from(3)],
        "the new life's stock is recorded, not dropped as already seen"
    );
    let agent = pipe.agent_status("biuro").await?;
    assert_eq!(
        agent["outbox_depth"], 99,
        "its heartbeat is recorded: {agent}"
    );
    assert_eq!(agent["incarnation"], "bbbb", "{agent}");
    wait_for(
        "the new stock in the shop",
        Duration::from_secs(30),
        || async {
            Ok(pipe
                .shop
                .product("X-1")
                .await?
                .filter(|p| p["stock_quantity"] == 3))
        },
    )
    .await?;
    let resends = pipe.resends().await?;
    assert!(
        resends.iter().any(|r| r.from_seq == 1),
        "the new life is asked to resend everything: {resends:?}"
    );
    // And the first life's late redelivery changes nothing.
    pipe.deliver(&[from("aaaa", 3, t0, stock(&["X-1"], 7, t0))])
        .await?;
    assert_eq!(pipe.stock_of("X-1").await?, [Decimal::from(3)]);
    Ok(())
}

fn order(id: &str) -> Order {
    Order {
        shop: "sklep".into(),
        order_id: id.into(),
        number: format!("#{id}"),
        revision: Utc::now(),
        placed_at: Utc::now(),
        status: "processing".into(),
        state: contract::OrderState::Paid,
        paid: true,
        currency: "PLN".into(),
        payment_method: "bacs".into(),
        payment_form: None,
        buyer: Buyer {
            email: Some("klient@example.pl".into()),
            nip: None,
            billing: Address {
                name: "Łucja Wędrowna".into(),
                street: "ul. Piękna 1".into(),
                city: "Kraków".into(),
                postcode: "30-001".into(),
                country: "PL".into(),
                ..Address::default()
            },
            shipping: None,
        },
        lines: vec![OrderLine {
            sku: "X-1".into(),
            name: "Towar".into(),
            quantity: Decimal::from(2),
            vat: VatRate::Percent(Decimal::from(23)),
            unit_price_gross: Decimal::new(2460, 2),
            total_net: Decimal::new(4000, 2),
            total_vat: Decimal::new(920, 2),
            total_gross: Decimal::new(4920, 2),
            discount_gross: Decimal::ZERO,
        }],
        shipping: None,
        discount_gross: Decimal::ZERO,
        total_net: Decimal::new(4000, 2),
        total_vat: Decimal::new(920, 2),
        total_gross: Decimal::new(4920, 2),
        customer_note: None,
    }
}

fn progress(stage: OrderStage, tracking: Option<&str>, observed_at: DateTime<Utc>) -> Payload {
    Payload::OrderProgress(OrderProgress {
        shop: "sklep".into(),
        order_id: "501".into(),
        stage,
        tracking_number: tracking.map(str::to_owned),
        carrier: None,
        documents: vec!["FS/1/2026".into()],
        invoices: Vec::new(),
        realisation: None,
        observed_at,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_stepped_back_an_hour_loses_nothing() -> anyhow::Result<()> {
    let pipe = Pipe::start("clock", &["X-1"]).await?;
    let table = pipe.env.required("STATE_TABLE")?;
    let orders = functions::orders::OrderStore::new(pipe.clients.dynamodb.clone(), &table, 30);
    orders.store(&order("501"), false).await?;
    let t0 = Utc::now();
    pipe.deliver(&[
        from("cccc", 1, t0, product("X-1")),
        from("cccc", 2, t0, price("X-1")),
        from("cccc", 3, t0, stock(&["X-1"], 7, t0)),
        from("cccc", 4, t0, heartbeat(t0, 1)),
        from("cccc", 5, t0, progress(OrderStage::Accepted, None, t0)),
    ])
    .await?;
    wait_for("X-1 at 7 in the shop", Duration::from_secs(30), || async {
        Ok(pipe
            .shop
            .product("X-1")
            .await?
            .filter(|p| p["stock_quantity"] == 7))
    })
    .await?;

    // w32tm steps the office clock back an hour; the agent goes on.
    let back = t0 - chrono::Duration::hours(1);
    pipe.deliver(&[
        from("cccc", 6, back, stock(&["X-1"], 2, back)),
        from("cccc", 7, back, heartbeat(back, 42)),
        from(
            "cccc",
            8,
            back,
            progress(OrderStage::Shipped, Some("TRACK-9"), back),
        ),
    ])
    .await?;
    assert_eq!(
        pipe.stock_of("X-1").await?,
        [Decimal::from(2)],
        "the later reading wins"
    );
    let agent = pipe.agent_status("biuro").await?;
    assert_eq!(
        agent["outbox_depth"], 42,
        "the later heartbeat is stored: {agent}"
    );
    let stored = orders.get("sklep", "501").await?.context("order 501")?;
    assert_eq!(
        (stored.stage.as_deref(), stored.tracking.as_deref()),
        (Some("shipped"), Some("TRACK-9")),
        "the later progress is recorded"
    );
    wait_for("X-1 at 2 in the shop", Duration::from_secs(30), || async {
        Ok(pipe
            .shop
            .product("X-1")
            .await?
            .filter(|p| p["stock_quantity"] == 2))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_stored_sku_is_parked_and_the_rest_of_the_batch_lands() -> anyhow::Result<()>
{
    let pipe = Pipe::start("poison", &["BAD-1", "GOOD-1"]).await?;
    let t0 = Utc::now();
    // The item of BAD-1 as a code change or a manual edit might leave it.
    pipe.clients
        .dynamodb
        .put_item()
        .table_name(pipe.env.required("STATE_TABLE")?)
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("sku#BAD-1".into()),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("erp".into()),
        )
        .item(
            "records",
            aws_sdk_dynamodb::types::AttributeValue::S("{not json".into()),
        )
        .item(
            "rev",
            aws_sdk_dynamodb::types::AttributeValue::N("3".into()),
        )
        .send()
        .await?;
    pipe.deliver(&[
        from("dddd", 1, t0, product("GOOD-1")),
        from("dddd", 2, t0, price("GOOD-1")),
        from("dddd", 3, t0, stock(&["BAD-1", "GOOD-1"], 5, t0)),
        from("dddd", 4, t0, heartbeat(t0, 4)),
    ])
    .await?;
    assert_eq!(pipe.stock_of("GOOD-1").await?, [Decimal::from(5)]);
    let status = pipe.cloud.status().await?;
    let parked = status["parked_records"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        parked.iter().any(|p| p["sku"] == "BAD-1"
            && p["reasons"][0]
                .as_str()
                .is_some_and(|r| r.contains("stored state unreadable"))),
        "BAD-1 is parked with the reason: {status}"
    );
    let agent = pipe.agent_status("biuro").await?;
    assert_eq!(agent["outbox_depth"], 4, "the group goes on: {agent}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_in_its_own_lane_is_recorded_ahead_of_a_data_backlog() -> anyhow::Result<()> {
    let pipe = Pipe::start("lane", &["X-1"]).await?;
    let t0 = Utc::now();
    pipe.deliver(&[
        from("eeee", 1, t0, product("X-1")),
        from("eeee", 2, t0, price("X-1")),
        from("eeee", 3, t0, stock(&["X-1"], 7, t0)),
    ])
    .await?;
    // The agent has sent up to seq 40; 4..=40 still wait in its data group
    // (a first full pass of a large catalogue). Its heartbeat does not.
    let mut lane = from("eeee", 40, t0, heartbeat(t0, 37));
    lane.version = contract::HEARTBEAT_LANE_SINCE;
    assert!(lane.in_heartbeat_lane());
    pipe.deliver(&[lane]).await?;
    let agent = pipe.agent_status("biuro").await?;
    assert_eq!(agent["outbox_depth"], 37, "recorded at once: {agent}");
    // The backlog follows, in order: the heartbeat took no number.
    pipe.deliver(&[from("eeee", 4, t0, stock(&["X-1"], 5, t0))])
        .await?;
    assert_eq!(
        pipe.stock_of("X-1").await?,
        [Decimal::from(5)],
        "seq 4 is the next, not already seen"
    );
    assert!(
        pipe.resends().await?.is_empty(),
        "no gap was seen, nothing to resend"
    );
    Ok(())
}

const DEAD_SQL: &str = "server=tcp:127.0.0.1,1;database=CDN_Firma;user=sa;encrypt=DANGER_PLAINTEXT";

/// A real agent starts at version 1 (heartbeats in the data lane, each
/// taking a number), is told by the cloud that it reads version 2, and
/// from then on its heartbeats travel in their own lane: still recorded,
/// no longer taking numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_agent_moves_its_heartbeats_to_their_lane_once_told() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cloud = LocalCloud::start(dir.path(), "lane-e2e")?;
    let config = dir.path().join("agent.toml");
    cloud.write_agent_config(&config, "biuro-9", DEAD_SQL, 1)?;
    let mut agent = harness::cloud::start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &dir.path().join("agent.log"),
        &[],
    )?;
    agent
        .wait_for_log(
            &format!(
                "the cloud reads contract versions up to {}",
                contract::SCHEMA_VERSION
            ),
            Duration::from_secs(60),
        )
        .with_context(|| harness::process::tail(&agent.log_text()))?;
    let agent_status = || async {
        let status = cloud.status().await?;
        let agent = status["agents"]
            .as_array()
            .and_then(|agents| agents.iter().find(|a| a["agent_id"] == "biuro-9"))
            .cloned();
        Ok::<_, anyhow::Error>(agent)
    };
    // Heartbeats keep arriving (each second) while the sequence stands still.
    let first = wait_for(
        "a heartbeat after the switch",
        Duration::from_secs(30),
        || async { agent_status().await },
    )
    .await?;
    let mut last = (first["last_seen"].clone(), first["last_seq"].clone());
    let mut newer_with_same_seq = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while newer_with_same_seq < 2 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "heartbeats kept taking numbers (last {last:?}):\n{}",
            harness::process::tail(&agent.log_text())
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Some(now) = agent_status().await? else {
            continue;
        };
        let seen = (now["last_seen"].clone(), now["last_seq"].clone());
        if seen.0 != last.0 {
            newer_with_same_seq = if seen.1 == last.1 {
                newer_with_same_seq + 1
            } else {
                0
            };
            last = seen;
        }
    }
    Ok(())
}

/// `expires_at` of one item, read raw.
async fn expires_at(pipe: &Pipe, table: &str, pk: &str, sk: &str) -> anyhow::Result<i64> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let item = pipe
        .clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await?
        .item
        .with_context(|| format!("no item {pk}/{sk}"))?;
    Ok(item
        .get("expires_at")
        .and_then(|v| v.as_n().ok())
        .with_context(|| format!("{pk}/{sk} has no expires_at"))?
        .parse()?)
}

/// `days` after a moment between `before` and now, in Unix seconds.
fn ensure_expires(at: i64, days: i64, before: DateTime<Utc>) -> anyhow::Result<()> {
    let span = chrono::Duration::days(days);
    let earliest = (before + span).timestamp();
    let latest = (Utc::now() + span).timestamp();
    anyhow::ensure!(
        (earliest..=latest).contains(&at),
        "expires at {at}, not {days} days after the write ({earliest}..={latest})"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyers_data_expires_and_a_newer_revision_renews_it() -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let pipe = Pipe::start("retention", &["X-1"]).await?;
    let table = pipe.env.required("STATE_TABLE")?;
    let client = pipe.clients.dynamodb.clone();
    // Two retentions on one table, so a renewal shows without waiting.
    let one_day = functions::orders::OrderStore::new(client.clone(), &table, 1);
    let thirty_days = functions::orders::OrderStore::new(client.clone(), &table, 30);

    let mut first = order("701");
    first.revision = Utc::now() - chrono::Duration::minutes(5);
    let before = Utc::now();
    one_day.store(&first, false).await?;
    ensure_expires(
        expires_at(&pipe, &table, "order#sklep", "701").await?,
        1,
        before,
    )?;

    // The same revision again changes nothing, the expiry included.
    thirty_days.store(&first, false).await?;
    ensure_expires(
        expires_at(&pipe, &table, "order#sklep", "701").await?,
        1,
        before,
    )?;

    // A newer revision is a new write of the buyer's data: its expiry runs
    // from now.
    let mut newer = first.clone();
    newer.revision = Utc::now();
    let before = Utc::now();
    let stored = thirty_days.store(&newer, false).await?;
    anyhow::ensure!(stored.written, "the newer revision was not stored");
    ensure_expires(
        expires_at(&pipe, &table, "order#sklep", "701").await?,
        30,
        before,
    )?;

    // A parked order (listed for the office with its number and reason)
    // expires too.
    let before = Utc::now();
    thirty_days
        .park("sklep", "701", "#701", "unknown SKU X-9")
        .await?;
    ensure_expires(
        expires_at(&pipe, &table, "parked-orders", "sklep#701").await?,
        30,
        before,
    )?;

    // Past its expiry (DynamoDB deletes lazily, emulators never), an order
    // reads as absent, and even an older revision is stored afresh.
    client
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("order#sklep".into()))
        .key("sk", AttributeValue::S("701".into()))
        .update_expression("SET expires_at = :past")
        .expression_attribute_values(
            ":past",
            AttributeValue::N((Utc::now().timestamp() - 1).to_string()),
        )
        .send()
        .await?;
    anyhow::ensure!(
        thirty_days.get("sklep", "701").await?.is_none(),
        "an expired order still reads"
    );
    let before = Utc::now();
    let stored = thirty_days.store(&first, false).await?;
    anyhow::ensure!(stored.written, "an expired order blocked an older revision");
    ensure_expires(
        expires_at(&pipe, &table, "order#sklep", "701").await?,
        30,
        before,
    )?;
    Ok(())
}
