//! The cloud's commands through the real commands queue to running agents:
//! a forced pass for one SKU re-sends that SKU and no other; forced passes
//! asked back to back are all done (merged, not dropped); a resend makes a
//! full pass in the same life, and one naming a number past the agent's
//! own makes it begin a new life; a command addressed to another agent of
//! the stack is left on the queue for it, and that agent takes it (last:
//! with two agents polling, either may receive the other's command first). What
//! each agent did is read from the cloud's state table (each stored ERP
//! record carries the agent and the sequence it came in), not from the
//! agent's word. And `agent sync` run beside the service waits for the
//! sync lease the service holds, then runs.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use contract::{Envelope, ForceSync, Payload, Resend, SyncArea, encode_body};
use harness::cloud::{LocalCloud, applied_life, start_agent};
use harness::process::Process;
use harness::standins::OptimaStandin;
use harness::wait_for;

const AGENT_TOML: &str = "\n[sync]\npoll_seconds = 2\noverlap_seconds = 5\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n";

struct Bench {
    erp: OptimaStandin,
    cloud: LocalCloud,
    sqs: aws_sdk_sqs::Client,
    catalog: functions::catalog::Catalog,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    commands: String,
    dir: std::path::PathBuf,
    sends: usize,
}

impl Bench {
    fn agent(&self, agent_id: &str) -> anyhow::Result<Process> {
        let config = self.dir.join(format!("{agent_id}.toml"));
        self.cloud.write_agent_config_with(
            &config,
            agent_id,
            &self.erp.connection_string,
            30,
            AGENT_TOML,
        )?;
        start_agent(
            &config,
            &self.cloud.emulator.endpoint(),
            &self.dir.join(format!("{agent_id}.log")),
            &[("OPTIMA_SYNC_SQL__PASSWORD", self.erp.password.as_str())],
        )
    }

    /// A command as the cloud sends it: addressed, in its agent's group.
    async fn send(&mut self, to: &str, payload: Payload) -> anyhow::Result<()> {
        self.sends += 1;
        let envelope = Envelope::new("cloud", 0, Utc::now(), payload).addressed_to(to);
        self.sqs
            .send_message()
            .queue_url(&self.commands)
            .message_group_id(functions::ingest::agent_command_group(to))
            .message_deduplication_id(format!("test-{}", self.sends))
            .message_body(encode_body(&envelope))
            .send()
            .await?;
        Ok(())
    }

    /// The rank (agent sequence) of the stock record the cloud holds for
    /// `sku`, and the agent it came from.
    async fn stock_origin(&self, sku: &str) -> anyhow::Result<Option<(String, u64)>> {
        let state = self.catalog.load(sku).await?;
        Ok(state
            .records
            .iter()
            .filter(|(kind, _)| kind.starts_with("stock#"))
            .filter_map(|(_, stored)| stored.from.as_ref())
            .map(|from| (from.agent.clone(), from.rank))
            .max_by_key(|(_, rank)| *rank))
    }

    /// Waits until the cloud holds a stock record of `sku` from `agent`
    /// newer than `than`.
    async fn stock_resent(&self, sku: &str, agent: &str, than: u64) -> anyhow::Result<u64> {
        wait_for(
            &format!("{sku}'s stock sent again by {agent}"),
            Duration::from_secs(40),
            || async {
                Ok(self
                    .stock_origin(sku)
                    .await?
                    .filter(|(from, rank)| from == agent && *rank > than)
                    .map(|(_, rank)| rank))
            },
        )
        .await
    }

    async fn rank(&self, sku: &str) -> anyhow::Result<u64> {
        Ok(self
            .stock_origin(sku)
            .await?
            .map(|(_, rank)| rank)
            .unwrap_or(0))
    }

    /// biuro's life as the cloud follows it.
    async fn life(&self) -> anyhow::Result<Option<String>> {
        Ok(applied_life(&self.dynamodb, &self.table, "biuro")
            .await?
            .map(|(life, _)| life))
    }

    async fn commands_waiting(&self) -> anyhow::Result<u64> {
        harness::cloud::messages_held(&self.sqs, &self.commands).await
    }
}

/// A resend from 1 to `to_seq` of the life `life`, as ingest asks it.
fn resend_up_to(life: &str, to_seq: u64) -> Payload {
    Payload::Resend(Resend {
        from_seq: 1,
        to_seq,
        incarnation: Some(life.to_owned()),
    })
}

fn force_stock(skus: &[&str]) -> Payload {
    Payload::ForceSync(ForceSync {
        areas: vec![SyncArea::Stock],
        skus: skus.iter().map(|s| s.to_string()).collect(),
        ignore_hashes: true,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_the_agent_they_name_and_do_what_they_ask() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 30, &dir)?;
    let skus = erp.skus().await?;
    let cloud = LocalCloud::start(&dir, "commands-agent")?;
    let aws = harness::emulator::sdk_config(&cloud.emulator.endpoint()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let table = cloud.stack.output("StateTableName")?.to_owned();
    let commands = cloud.stack.output("CommandsQueueUrl")?.to_owned();
    let mut bench = Bench {
        erp,
        sqs: aws_sdk_sqs::Client::new(&aws),
        catalog: functions::catalog::Catalog::new(dynamodb.clone(), table.clone()),
        dynamodb,
        table,
        commands,
        cloud,
        dir: dir.clone(),
        sends: 0,
    };
    let mut agent = bench.agent("biuro")?;
    // The first full pass has reached the cloud: ten SKUs with stock.
    let skus = wait_for(
        "the first pass in the cloud",
        Duration::from_secs(60),
        || async {
            let mut stocked = Vec::new();
            for sku in &skus {
                if bench.rank(sku).await? > 0 {
                    stocked.push(sku.clone());
                }
            }
            Ok((stocked.len() >= 10).then_some(stocked))
        },
    )
    .await?;

    // 1. A forced pass of one SKU: that SKU is sent again, no other.
    let (one, other) = (skus[0].as_str(), skus[1].as_str());
    let other_before = bench.rank(other).await?;
    let one_before = bench.rank(one).await?;
    bench.send("biuro", force_stock(&[one])).await?;
    bench.stock_resent(one, "biuro", one_before).await?;
    assert_eq!(
        bench.rank(other).await?,
        other_before,
        "a forced pass of {one} sent {other} too"
    );

    // 2. Three forced passes asked back to back: every SKU of each is sent.
    let three = [skus[2].as_str(), skus[3].as_str(), skus[4].as_str()];
    let mut before = Vec::new();
    for sku in three {
        before.push(bench.rank(sku).await?);
    }
    for sku in three {
        bench.send("biuro", force_stock(&[sku])).await?;
    }
    for (sku, before) in three.iter().zip(before) {
        bench.stock_resent(sku, "biuro", before).await?;
    }

    // 3. A resend within the agent's own numbers: a full pass, same life.
    let life = bench.life().await?.context("the cloud follows biuro")?;
    let rest: Vec<&str> = skus[6..10].iter().map(String::as_str).collect();
    let mut before = Vec::new();
    for sku in &rest {
        before.push(bench.rank(sku).await?);
    }
    bench.send("biuro", resend_up_to(&life, 1)).await?;
    for (sku, before) in rest.iter().zip(before) {
        bench.stock_resent(sku, "biuro", before).await?;
    }
    assert_eq!(
        bench.life().await?,
        Some(life.clone()),
        "a resend of numbers the agent gave keeps its life"
    );

    // 4. A resend past anything the agent numbered (its file is older than
    //    the cloud): a new life, which the cloud then follows.
    bench.send("biuro", resend_up_to(&life, 1_000_000)).await?;
    let new_life = wait_for(
        "the cloud following biuro's new life",
        Duration::from_secs(40),
        || async { Ok(bench.life().await?.filter(|l| *l != life)) },
    )
    .await?;
    agent.wait_for_log("the state begins a new life", Duration::from_secs(5))?;
    println!("biuro: life {life} → {new_life}");
    // 5. A command for another agent of the stack: left on the queue.
    //    (The cloud's own resend for the new life taken first.)
    wait_for(
        "an empty commands queue",
        Duration::from_secs(30),
        || async { Ok((bench.commands_waiting().await? == 0).then_some(())) },
    )
    .await?;
    bench
        .send("biuro-2", force_stock(&[skus[5].as_str()]))
        .await?;
    // Until biuro has met it: given it back, or (the bug) taken it.
    wait_for(
        "biuro meeting biuro-2's command",
        Duration::from_secs(30),
        || async {
            let gave_back = agent
                .log_text()
                .contains("a command for another agent of the stack");
            Ok((gave_back || bench.commands_waiting().await? == 0).then_some(()))
        },
    )
    .await?;
    assert_eq!(
        bench.commands_waiting().await?,
        1,
        "biuro took biuro-2's command off the queue"
    );
    // Its addressee takes it.
    let mut second = bench.agent("biuro-2")?;
    wait_for(
        "biuro-2 taking its command",
        Duration::from_secs(120),
        || async { Ok((bench.commands_waiting().await? == 0).then_some(())) },
    )
    .await?;
    second.wait_for_log("force sync requested by the cloud", Duration::from_secs(5))?;

    Ok(())
}

/// Every statement the ERP stand-in runs takes `ms` longer.
async fn set_latency(sql: &mut optima_standin::erp::Client, ms: u64) -> anyhow::Result<()> {
    let batch = format!("-- standin:faults {{\"latency_ms\": {ms}}}");
    sql.simple_query(batch).await?.into_results().await?;
    Ok(())
}

/// `agent sync` on the office server while the service runs with the same
/// state file: one sync at a time (the sync lease, holders `service:<id>`
/// and `cli:<pid>`). Every SQL statement is made to take a second, so the
/// service's forced full pass holds the lease for several; `agent sync`
/// started meanwhile waits for it and then runs its own pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_sync_waits_while_the_service_holds_the_sync_lease() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 30, &dir)?;
    let skus = erp.skus().await?;
    let cloud = LocalCloud::start(&dir, "sync-lease")?;
    let aws = harness::emulator::sdk_config(&cloud.emulator.endpoint()).await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let commands = cloud.stack.output("CommandsQueueUrl")?.to_owned();
    let config = dir.join("biuro.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 30, AGENT_TOML)?;
    let debug = "info,agent=debug,tiberius=error";
    let mut service = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &dir.join("service.log"),
        &[
            ("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str()),
            ("RUST_LOG", debug),
        ],
    )?;
    service.wait_for_log("pass done", Duration::from_secs(60))?;

    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    set_latency(&mut sql, 1000).await?;
    let forced = Envelope::new(
        "cloud",
        0,
        Utc::now(),
        Payload::ForceSync(ForceSync {
            areas: vec![SyncArea::Catalogue, SyncArea::Prices, SyncArea::Stock],
            skus: vec![],
            ignore_hashes: true,
        }),
    )
    .addressed_to("biuro");
    sqs.send_message()
        .queue_url(&commands)
        .message_group_id(functions::ingest::agent_command_group("biuro"))
        .message_deduplication_id("lease-test")
        .message_body(encode_body(&forced))
        .send()
        .await?;
    service.wait_for_log("force sync requested", Duration::from_secs(30))?;

    let mut command = std::process::Command::new(harness::paths::workspace_bin("agent")?);
    command
        .args(["sync", "--config"])
        .arg(&config)
        .args(["--only", "stock", "--sku", &skus[0]])
        .envs(harness::emulator::agent_env_for(&cloud.emulator.endpoint()))
        .env("OPTIMA_SYNC_SQL__PASSWORD", &erp.password)
        .env("RUST_LOG", debug);
    let mut manual = Process::spawn("agent sync", command, &dir.join("sync.log"))?;
    let waiting = "another sync is running; waiting for it";
    // Either may reach the lease first in the gap before the forced pass:
    // one of them waits for the other.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !manual.log_text().contains(waiting)
        && !service
            .log_text()
            .split_once("force sync requested")
            .is_some_and(|(_, after)| after.contains(waiting))
    {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "neither the service nor agent sync waited for the other: both synced at once\nsync:\n{}",
            harness::process::tail(&manual.log_text())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    set_latency(&mut sql, 0).await?;
    let code = manual.wait_exit(Duration::from_secs(150))?;
    anyhow::ensure!(
        code == Some(0),
        "agent sync exited {code:?}:\n{}",
        harness::process::tail(&manual.log_text())
    );
    anyhow::ensure!(
        manual.log_text().contains("1 products read"),
        "agent sync ran its pass after the wait:\n{}",
        harness::process::tail(&manual.log_text())
    );
    Ok(())
}
