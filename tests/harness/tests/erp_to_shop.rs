//! ERP → shop on the local run's real pieces: the ERP stand-in, the agent,
//! the emulator with the stack, the functions host and the WooCommerce
//! stand-in, each a process. A sale made in the office shows in the shop
//! without waiting for a periodic pass (the delay is printed); a forced price pass brings a new
//! price rounded to the grosz; a product made inactive is hidden; bad rows
//! are parked with their reasons while everything else arrives.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use harness::cloud::{LocalCloud, start_agent};
use harness::paths::workspace_bin;
use harness::standins::{OptimaStandin, WooStandinProcess};
use harness::wait_for;
use optima_standin::seed;
use optima_standin::simulator::{Action, Simulator};
use rust_decimal::Decimal;
use serde_json::Value;

const SYNC: &str = "\n[sync]\npoll_seconds = 1\noverlap_seconds = 5\nstock_minutes = 60\nprices_minutes = 60\ncatalogue_minutes = 1440\nbatch_records = 500\n";

fn stock_of(product: &Value) -> Option<i64> {
    product["stock_quantity"].as_i64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn office_changes_reach_the_shop_within_seconds() -> anyhow::Result<()> {
    let dir = harness::TestDir::new()?;
    // E2E_KEEP=1 keeps the logs and state for a look after a failure.
    let logs = &dir.path().to_path_buf();
    let db = logs.join("optima.sqlite");
    let erp = OptimaStandin::start(&db, 200, logs)?;
    let skus = erp.skus().await?;
    let shop = WooStandinProcess::start_with(None, Some(&skus), None, logs)?;
    let cloud = LocalCloud::start_with(
        logs,
        "e2s",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
    )?;
    let config = logs.join("agent.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 5, SYNC)?;
    let _agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &logs.join("agent.log"),
        &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
    )?;

    // The first full pass lands: every shop product got the ERP's price.
    let client = reqwest::Client::new();
    let all_products = || async {
        let list: Vec<Value> = client
            .get(format!("{}/__standin/products", shop.base_url))
            .send()
            .await?
            .json()
            .await?;
        Ok::<_, anyhow::Error>(list)
    };
    // What the shop must show, by plain SQL and hand arithmetic apart
    // from the agent's readers and the cloud's mapping: every product with
    // a price above zero in "Detaliczna" at that price, gross, to the grosz,
    // under Optima's own name and its own group.
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let catalogue = harness::expected::catalogue_by_plain_sql(&mut sql, "Detaliczna").await?;
    let priced: Vec<(&String, Decimal)> = catalogue
        .iter()
        .filter_map(|(sku, row)| Some((sku, row.gross_price?)))
        .collect();
    // The seed's one unpriced row (a zero retail price) is parked, not sold.
    assert_eq!(
        priced.len(),
        skus.len() - 1,
        "products with a retail price by plain SQL"
    );
    let shows_price = |product: &Value, want: Decimal| {
        product["regular_price"]
            .as_str()
            .and_then(|p| p.parse::<Decimal>().ok())
            == Some(want)
    };
    wait_for(
        "the first full pass in the shop",
        Duration::from_secs(90),
        || async {
            let products = all_products().await?;
            let by_sku: HashMap<&str, &Value> = products
                .iter()
                .filter_map(|p| Some((p["sku"].as_str()?, p)))
                .collect();
            let wrong = priced
                .iter()
                .filter(|(sku, want)| {
                    !by_sku
                        .get(sku.as_str())
                        .is_some_and(|p| shows_price(p, *want))
                })
                .count();
            Ok((wrong == 0).then_some(()))
        },
    )
    .await?;
    // Names and the group tree arrive too: Optima's names, nested categories.
    let products = all_products().await?;
    let categories: Vec<Value> = client
        .get(format!(
            "{}/wp-json/wc/v3/products/categories?per_page=100",
            shop.base_url
        ))
        .basic_auth(&shop.consumer_key, Some(&shop.consumer_secret))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let category = |id: u64| categories.iter().find(|c| c["id"].as_u64() == Some(id));
    let mut checked = 0;
    for product in &products {
        let sku = product["sku"].as_str().unwrap_or_default();
        if seed::BAD_SKUS.contains(&sku) {
            continue;
        }
        let row = catalogue
            .get(sku)
            .with_context(|| format!("{sku} in the shop but not in Optima"))?;
        assert_eq!(product["name"].as_str(), Some(row.name.as_str()), "{sku}");
        let group = row
            .group
            .as_deref()
            .with_context(|| format!("{sku} has no group in Optima"))?;
        let leaf = product["categories"][0]["id"]
            .as_u64()
            .and_then(category)
            .with_context(|| format!("{sku} has no category: {product}"))?;
        assert_eq!(leaf["name"].as_str(), Some(group), "{sku}: {leaf}");
        assert!(
            leaf["parent"].as_u64().and_then(category).is_some(),
            "{sku}: its group sits under its parent groups: {leaf}"
        );
        checked += 1;
    }
    assert_eq!(
        checked,
        skus.len() - seed::BAD_SKUS.len(),
        "products checked for name and group"
    );
    // The seed names products in Polish: the check above saw them.
    assert!(
        catalogue
            .values()
            .any(|row| row.name.chars().any(|c| "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ".contains(c))),
        "no Polish name in the seed"
    );

    // Wait for the queues to settle so the measurement below is one change.
    wait_for("quiet queues", Duration::from_secs(60), || async {
        let status = cloud.status().await?;
        let busy: u64 = ["erp_events", "shop_ops"]
            .iter()
            .map(|q| {
                status["queues"][q]["visible"].as_u64().unwrap_or(1)
                    + status["queues"][q]["in_flight"].as_u64().unwrap_or(1)
            })
            .sum();
        Ok((busy == 0).then_some(()))
    })
    .await?;

    // A sale in the office, through another channel.
    let products = all_products().await?;
    let target = products
        .iter()
        .filter(|p| p["status"] == "publish")
        .find(|p| stock_of(p).is_some_and(|s| (5..1000).contains(&s)))
        .context("a product with stock in MAG")?;
    let sku = target["sku"].as_str().unwrap_or_default().to_owned();
    let before = stock_of(target).unwrap_or_default();
    let sold_at = Instant::now();
    let mut office = Simulator::open(&db)?;
    office.perform(Action::Sale {
        sku: sku.clone(),
        warehouse: "MAG".into(),
        qty: Decimal::from(2),
        receipt: true,
    })?;
    // How many seconds it takes is a benchmark (docs/BENCHMARKS.md, sale →
    // shop). The 30 s here only fails a sync that leaves the sale to its
    // next periodic pass (60 minutes in SYNC).
    wait_for("the sale in the shop", Duration::from_secs(30), || async {
        Ok(shop
            .product(&sku)
            .await?
            .filter(|p| stock_of(p) == Some(before - 2)))
    })
    .await?;
    let delay = sold_at.elapsed();
    println!(
        "ERP sale → shop stock: {delay:?} (SKU {sku}, {before} → {})",
        before - 2
    );

    // A new retail (gross) price with more decimals than the grosz, forced
    // through `agent sync --only prices --sku`.
    office.perform(Action::PriceChange {
        sku: sku.clone(),
        price_list: 2,
        price: "123.4567".parse()?,
    })?;
    let forced = std::process::Command::new(workspace_bin("agent")?)
        .args(["sync", "--config"])
        .arg(&config)
        .args(["--only", "prices", "--sku", &sku])
        // As the agent user, from the configuration's credentials file.
        .envs(harness::emulator::agent_env_for(&cloud.emulator.endpoint()))
        .env("OPTIMA_SYNC_SQL__PASSWORD", &erp.password)
        .output()?;
    assert!(
        forced.status.success(),
        "agent sync: {}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let out = String::from_utf8_lossy(&forced.stdout);
    assert!(
        out.contains("1 products read") && out.contains("1 prices"),
        "{out}"
    );
    wait_for(
        "the new price in the shop",
        Duration::from_secs(30),
        || async {
            Ok(shop
                .product(&sku)
                .await?
                .filter(|p| p["regular_price"] == "123.46"))
        },
    )
    .await?;

    // Made inactive in Optima → hidden in the shop.
    let other = products
        .iter()
        .filter(|p| p["status"] == "publish")
        .filter_map(|p| p["sku"].as_str())
        .find(|s| *s != sku)
        .context("another product")?
        .to_owned();
    office.perform(Action::Deactivate { sku: other.clone() })?;
    wait_for(
        "the inactive product hidden",
        Duration::from_secs(30),
        || async {
            Ok(shop
                .product(&other)
                .await?
                .filter(|p| p["status"] == "private"))
        },
    )
    .await?;

    // Bad rows are parked with reasons; the rest arrived (checked above).
    let status = cloud.status().await?;
    let parked = status["parked_records"]
        .as_array()
        .context("parked_records")?;
    let reasons: Vec<&str> = parked
        .iter()
        .flat_map(|p| p["reasons"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("zero") || r.contains("0.00") || r.contains("not positive")),
        "zero price parked: {reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("negative")),
        "negative stock parked: {reasons:?}"
    );
    Ok(())
}
