//! Exactly once, on the agent's side: create-order commands on the real
//! (emulated) commands queue, the agent process writing into the ERP
//! stand-in over TDS, and everything that can go wrong in between: the same
//! order five times, the agent aborting after the SQL commit but before the
//! queue delete, the agent aborting inside the transaction, and the SQL
//! Server gone while orders arrive. Each ends with exactly one document per
//! order and an empty queue.

use std::time::{Duration, Instant};

use agent::optima::order_document::import_row_id;
use anyhow::Context;
use chrono::Utc;
use contract::{Address, Buyer, MAX_BODY_BYTES, Order, OrderLine, Payload, encode_envelopes};
use harness::cloud::{LocalCloud, start_agent};
use harness::process::Process;
use harness::standins::OptimaStandin;
use harness::wait_for;
use rust_decimal_macros::dec;
use tiberius::Query;

const AGENT_TOML: &str = "\n[sync]\npoll_seconds = 2\noverlap_seconds = 5\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n\n[orders]\nwarehouse = \"MAG\"\ndefault_payment_form = \"przelew\"\ndefault_shipping_service = \"TRANSPORT\"\ncollective_customer = \"DETAL\"\nprogress_seconds = 1\ncommand_visibility_seconds = 3\n";

struct Bench {
    erp: OptimaStandin,
    cloud: LocalCloud,
    sqs: aws_sdk_sqs::Client,
    commands: String,
    config: std::path::PathBuf,
    sku: String,
    dir: std::path::PathBuf,
    agents: usize,
    sends: usize,
}

impl Bench {
    fn agent(&mut self, failpoint: Option<&str>) -> anyhow::Result<Process> {
        self.agents += 1;
        let mut env = vec![("OPTIMA_SYNC_SQL__PASSWORD", self.erp.password.as_str())];
        if let Some(point) = failpoint {
            env.push(("AGENT_FAILPOINT", point));
        }
        start_agent(
            &self.config,
            &self.cloud.emulator.endpoint(),
            &self.dir.join(format!("agent-{}.log", self.agents)),
            &env,
        )
    }

    fn order(&self, id: &str) -> Order {
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
                email: Some(format!("klient.{id}@example.pl")),
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
                sku: self.sku.clone(),
                name: "Towar".into(),
                quantity: dec!(2),
                vat: "23".parse().expect("a VAT rate"),
                unit_price_gross: dec!(24.60),
                total_net: dec!(40.00),
                total_vat: dec!(9.20),
                total_gross: dec!(49.20),
                discount_gross: dec!(0),
            }],
            shipping: None,
            discount_gross: dec!(0),
            total_net: dec!(40.00),
            total_vat: dec!(9.20),
            total_gross: dec!(49.20),
            customer_note: None,
        }
    }

    /// One create-order command, as the cloud sends it (each send its own
    /// deduplication id, as separate webhook deliveries would make).
    async fn send(&mut self, order: &Order) -> anyhow::Result<()> {
        self.sends += 1;
        let (_, body) = encode_envelopes(
            "cloud",
            Utc::now(),
            Payload::CreateOrder(Box::new(order.clone())),
            MAX_BODY_BYTES,
            || 1,
        )?
        .into_iter()
        .next()
        .context("no envelope")?;
        self.sqs
            .send_message()
            .queue_url(&self.commands)
            .message_group_id(&order.shop)
            .message_deduplication_id(format!("{}-{}", order.key(), self.sends))
            .message_body(body)
            .send()
            .await?;
        Ok(())
    }

    async fn documents(&self, order: &Order) -> anyhow::Result<i32> {
        let mut sql = optima_standin::erp::connect(&self.erp.ado_with_password()).await?;
        let mut query = Query::new(
            "SELECT COUNT(*) AS n FROM CDN.TraNag WHERE TrN_ImportRowId = CAST(@P1 AS varchar(36))",
        );
        query.bind(import_row_id(&order.key()));
        let rows = query.query(&mut sql).await?.into_first_result().await?;
        Ok(rows
            .first()
            .and_then(|r| r.get::<i32, _>("n"))
            .unwrap_or(-1))
    }

    async fn queue_is_empty(&self) -> anyhow::Result<bool> {
        Ok(harness::cloud::messages_held(&self.sqs, &self.commands).await? == 0)
    }

    async fn wait_written(&self, orders: &[&Order], what: &str) -> anyhow::Result<()> {
        wait_for(what, Duration::from_secs(60), || async {
            for order in orders {
                if self.documents(order).await? != 1 {
                    return Ok(None);
                }
            }
            Ok(self.queue_is_empty().await?.then_some(()))
        })
        .await
    }
}

async fn sku_at_23(erp: &OptimaStandin) -> anyhow::Result<String> {
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let rows = Query::new(
        "SELECT TOP 1 Twr_Kod FROM CDN.Towary WHERE Twr_Stawka = 23 AND Twr_Typ = 1 AND Twr_Kod NOT LIKE 'BAD%' ORDER BY Twr_TwrId",
    )
    .query(&mut sql)
    .await?
    .into_first_result()
    .await?;
    rows.first()
        .and_then(|r| r.get::<&str, _>("Twr_Kod"))
        .map(str::to_owned)
        .context("no product at 23 %")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_becomes_exactly_one_document_whatever_fails() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 30, &dir)?;
    let sku = sku_at_23(&erp).await?;
    let cloud = LocalCloud::start(&dir, "orders-agent")?;
    let config = dir.join("agent.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 30, AGENT_TOML)?;
    let sqs =
        aws_sdk_sqs::Client::new(&harness::emulator::sdk_config(&cloud.emulator.endpoint()).await);
    let commands = cloud.stack.output("CommandsQueueUrl")?.to_owned();
    let mut bench = Bench {
        erp,
        cloud,
        sqs,
        commands,
        config,
        sku,
        dir: dir.clone(),
        agents: 0,
        sends: 0,
    };

    // 1. The same order five times (webhook retries, webhook + poller...).
    let mut agent = bench.agent(None)?;
    let started = Instant::now();
    let first = bench.order("1001");
    for _ in 0..5 {
        bench.send(&first).await?;
    }
    bench
        .wait_written(&[&first], "order 1001 written once, queue drained")
        .await?;
    println!(
        "five deliveries: one document after {:?}",
        started.elapsed()
    );
    let log = agent.log_text();
    assert_eq!(log.matches("order written into Optima").count(), 1, "{log}");
    assert_eq!(log.matches("order already in Optima").count(), 4, "{log}");

    // 2. The agent dies after the SQL commit, before deleting the command.
    agent.kill();
    let mut crashing = bench.agent(Some("order_after_commit"))?;
    let second = bench.order("1002");
    bench.send(&second).await?;
    crashing.wait_exit(Duration::from_secs(30))?;
    assert!(crashing.log_text().contains("failpoint order_after_commit"));
    assert_eq!(
        bench.documents(&second).await?,
        1,
        "committed before the crash"
    );
    let agent = bench.agent(None)?;
    bench
        .wait_written(&[&second], "order 1002 answered after the restart")
        .await?;
    assert!(
        agent.log_text().contains("order already in Optima"),
        "the redelivery found it"
    );

    // 3. The agent dies inside the transaction: nothing committed, written
    //    once on redelivery.
    drop(agent);
    let mut crashing = bench.agent(Some("order_in_transaction"))?;
    let third = bench.order("1003");
    bench.send(&third).await?;
    crashing.wait_exit(Duration::from_secs(30))?;
    // The crash landed inside the transaction, not before it or by chance.
    assert!(
        crashing
            .log_text()
            .contains("failpoint order_in_transaction"),
        "the agent died at the failpoint"
    );
    assert_eq!(
        bench.documents(&third).await?,
        0,
        "rolled back with the connection"
    );
    let agent = bench.agent(None)?;
    bench
        .wait_written(&[&third], "order 1003 written after the restart")
        .await?;

    // 4. The SQL Server is down while orders arrive.
    bench.erp.stop();
    let later: Vec<Order> = (0..10).map(|i| bench.order(&format!("2{i:03}"))).collect();
    for order in &later {
        bench.send(order).await?;
    }
    // The outage landed: the agent took an order, could not write it, and
    // left it queued (its log says so) while the ERP was down.
    let deferred = "Optima cannot take the order command now";
    let deadline = Instant::now() + Duration::from_secs(60);
    while !agent.log_text().contains(deferred) {
        if Instant::now() > deadline {
            anyhow::bail!(
                "the agent never tried an order while the ERP was down:\n{}",
                agent.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let down_for = Instant::now();
    let dir = bench.dir.clone();
    bench
        .erp
        .restart(&dir.join("optima-standin-restarted.log"))?;
    bench
        .wait_written(
            &later.iter().collect::<Vec<_>>(),
            "ten orders written once the ERP is back",
        )
        .await?;
    println!(
        "SQL Server back: ten orders written within {:?}",
        down_for.elapsed()
    );
    for order in [&first, &second, &third].into_iter().chain(later.iter()) {
        assert_eq!(bench.documents(order).await?, 1, "{}", order.key());
    }
    Ok(())
}
