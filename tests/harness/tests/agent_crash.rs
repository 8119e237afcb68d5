//! `kill -9` at random moments during the agent's first full pass, restart,
//! repeat: the shop ends up exactly where the ERP says it should be, with
//! nothing lost (the local store is written before anything is sent, and
//! every consumer is idempotent).

use std::time::{Duration, Instant};

use agent::optima;
use anyhow::{Context, bail, ensure};
use functions::mapping::ShopRules;
use harness::cloud::{LocalCloud, start_agent};
use harness::process::Process;
use harness::standins::{OptimaStandin, WooStandinProcess};
use rand::{Rng, SeedableRng};
use serde_json::Value;

const SYNC: &str = "\n[sync]\npoll_seconds = 1\noverlap_seconds = 5\nstock_minutes = 60\nprices_minutes = 60\ncatalogue_minutes = 1440\nbatch_records = 100\n";

/// One `kill -9` (this long after the agent said it was starting) and what
/// the agent had done by then.
#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Kill {
    after: Duration,
    started: bool,
    pass_done: bool,
    unsent: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_agent_during_a_full_pass_loses_nothing() -> anyhow::Result<()> {
    let dir = harness::TestDir::new()?;
    let logs = &dir.path().to_path_buf();
    let db = logs.join("optima.sqlite");
    // Big enough that reading, staging and sending the first pass takes
    // seconds: 300 products were read and sent within a second, before
    // any kill landed.
    let erp = OptimaStandin::start(&db, 2000, logs)?;
    let skus = erp.skus().await?;
    let shop = WooStandinProcess::start_with(None, Some(&skus), None, logs)?;
    let parameters = shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 50, 50);
    let shops: Value = serde_json::from_str(&parameters.0)?;
    let rules: ShopRules = serde_json::from_value(shops[0]["rules"].clone())?;
    let cloud = LocalCloud::start_with(logs, "crash", Some(parameters))?;
    let config = logs.join("agent.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 5, SYNC)?;
    let env = [("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())];
    let endpoint = cloud.emulator.endpoint();

    // Fixed seed: the same kill points every run.
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261123);
    let state = config.with_file_name("biuro-state.sqlite");
    let mut kills = Vec::new();
    for round in 0..5 {
        let log = logs.join(format!("agent-{round}.log"));
        let mut agent: Process = start_agent(&config, &endpoint, &log, &env)?;
        agent.wait_for_log("agent starting", Duration::from_secs(30))?;
        let delay = Duration::from_millis(rng.random_range(100..2000));
        tokio::time::sleep(delay).await;
        agent.kill();
        // Where the kill landed, read at the moment from what the killed
        // agent left: records staged and not yet in a message, messages
        // not yet sent (its state file), and whether it had logged the end
        // of its full pass.
        let store = agent::store::Store::open(&state)?;
        let unsent = store.pending_count()? + store.outbox_depth()?;
        let text = std::fs::read_to_string(&log)?;
        kills.push(Kill {
            after: delay,
            started: text.contains("agent starting"),
            pass_done: text.contains("pass done"),
            unsent,
        });
    }
    println!("kills: {kills:#?}");
    ensure!(
        kills.iter().all(|k| k.started),
        "every killed agent had started: {kills:?}"
    );
    let inside = kills
        .iter()
        .filter(|k| !k.pass_done || k.unsent > 0)
        .count();
    ensure!(
        inside >= 3,
        "at least three kills land inside the pass (before its end, or with its records not yet sent): {kills:?}"
    );
    let _agent = start_agent(&config, &endpoint, &logs.join("agent-final.log"), &env)?;

    // What the shop must show, from the ERP itself: stock by plain SQL
    // (quantity less both reservations), not by the agent's reader under
    // test; products and prices as the agent reads them.
    let mut sql = agent::sql::connect_ado(&erp.ado_with_password(), 10).await?;
    let groups = optima::group_paths(&mut sql).await?;
    let ids = optima::product_ids_for_skus(&mut sql, &skus).await?;
    let products = optima::products(&mut sql, &ids, &groups).await?;
    let prices = optima::prices(&mut sql, &ids, optima::PriceListKey::Lp).await?;
    let stock = harness::expected::stock_by_plain_sql(
        &mut optima_standin::erp::connect(&erp.ado_with_password()).await?,
    )
    .await?;
    let expected = harness::expected::shop_states(&products, &prices, &stock, &rules);

    let deadline = Instant::now() + Duration::from_secs(240);
    let mut wrong: Vec<String>;
    // Every SKU the shop sells has its expectation: the shop was seeded with
    // the ERP's SKUs, and the ERP has each of them.
    ensure!(
        expected.len() == skus.len(),
        "an expectation per SKU: {} of {}",
        expected.len(),
        skus.len()
    );
    loop {
        let all: Vec<Value> = reqwest::get(format!("{}/__standin/products", shop.base_url))
            .await?
            .json()
            .await?;
        ensure!(
            all.len() == skus.len(),
            "the shop has {} products",
            all.len()
        );
        wrong = all
            .iter()
            .filter_map(|p| {
                let sku = p["sku"].as_str().unwrap_or_default();
                match expected.get(sku) {
                    Some(want) if harness::expected::shows(p, want) => None,
                    Some(want) => Some(format!("{sku}: shop {p} vs {want:?}")),
                    None => Some(format!("{sku}: a shop product the ERP does not have: {p}")),
                }
            })
            .collect();
        if wrong.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{} products never converged, e.g. {:?}",
                wrong.len(),
                wrong.iter().take(3).collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let status = cloud.status().await?;
    let dlq = status["queues"]["erp_events_dlq"]["visible"]
        .as_u64()
        .context("dlq depth")?;
    assert_eq!(dlq, 0, "nothing ended in the DLQ");
    Ok(())
}
