//! `kill -9` at random moments during the agent's first full pass, restart,
//! repeat: the shop ends up exactly where the ERP says it should be, with
//! nothing lost (the local store is written before anything is sent, and
//! every consumer is idempotent).

use std::time::{Duration, Instant};

use agent::optima;
use anyhow::{Context, bail};
use functions::mapping::ShopRules;
use harness::cloud::{LocalCloud, start_agent};
use harness::process::Process;
use harness::standins::{OptimaStandin, WooStandinProcess};
use rand::{Rng, SeedableRng};
use serde_json::Value;

const SYNC: &str = "\n[sync]\npoll_seconds = 1\noverlap_seconds = 5\nstock_minutes = 60\nprices_minutes = 60\ncatalogue_minutes = 1440\nbatch_records = 100\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_agent_during_a_full_pass_loses_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let logs = &if std::env::var_os("E2E_KEEP").is_some() {
        dir.keep()
    } else {
        dir.path().to_path_buf()
    };
    let db = logs.join("optima.sqlite");
    let erp = OptimaStandin::start(&db, 300, logs)?;
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
    let mut kills = Vec::new();
    for round in 0..5 {
        let mut agent: Process = start_agent(
            &config,
            &endpoint,
            &logs.join(format!("agent-{round}.log")),
            &env,
        )?;
        let delay = Duration::from_millis(rng.random_range(300..2500));
        tokio::time::sleep(delay).await;
        agent.kill();
        kills.push(delay);
    }
    println!("killed the agent after {kills:?}");
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
    loop {
        let all: Vec<Value> = reqwest::get(format!("{}/__standin/products", shop.base_url))
            .await?
            .json()
            .await?;
        wrong = all
            .iter()
            .filter_map(|p| {
                let sku = p["sku"].as_str()?;
                let want = expected.get(sku)?;
                (!harness::expected::shows(p, want)).then(|| format!("{sku}: shop {p} vs {want:?}"))
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
    assert!(
        expected.len() >= 295,
        "the catalogue was read: {}",
        expected.len()
    );
    let status = cloud.status().await?;
    let dlq = status["queues"]["erp_events_dlq"]["visible"]
        .as_u64()
        .context("dlq depth")?;
    assert_eq!(dlq, 0, "nothing ended in the DLQ");
    Ok(())
}
