//! Shop → ERP benchmark on the local run's real pieces: a burst of orders
//! placed in the WooCommerce stand-in, delivered by its signed webhooks to
//! the webhook function, queued as commands and written by the agent into
//! the Optima stand-in. Prints how long the burst took to place, how long
//! until every order was a document, the order-to-document delay (p50, p95,
//! max) and that no order became two documents.
//!
//! `cargo run --release -p harness --bin bench-orders -- --orders 1000`
//! (build the other binaries in the same profile first:
//! `cargo build --release -p agent -p functions -p optima-standin -p woo-standin --bins`).
//! A benchmark, not a test: it checks only that every order arrived once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use harness::cloud::{LocalCloud, start_agent};
use harness::paths::local_dir;
use harness::standins::{OptimaStandin, WooStandinProcess, woo_buyer_order};
use serde_json::json;
use tiberius::Query;
use tokio::sync::Mutex;

#[derive(Parser)]
#[command(about = "Benchmarks shop orders into the ERP on the local pieces")]
struct Args {
    /// Orders in the burst.
    #[arg(long, default_value_t = 1000)]
    orders: usize,
    /// Orders placed at once (shoppers checking out together).
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    /// Give up after this many minutes.
    #[arg(long, default_value_t = 20)]
    timeout_minutes: u64,
    /// Keep the working folder (logs, databases).
    #[arg(long)]
    keep: bool,
}

const AGENT_TOML: &str = "\n[sync]\npoll_seconds = 2\noverlap_seconds = 10\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n\n[orders]\nwarehouse = \"MAG\"\ndefault_payment_form = \"przelew\"\ndefault_shipping_service = \"TRANSPORT\"\ncollective_customer = \"DETAL\"\nprogress_seconds = 5\n";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = local_dir().join(format!(
        "bench-orders-{}-{}",
        args.orders,
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("working folder: {}", dir.display());
    let result = runtime.block_on(run(&args, &dir));
    if args.keep || result.is_err() {
        println!("logs and state kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 500, dir)?;
    // Products with enough stock in MAG for their share of the burst.
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let rows = Query::new(
        "SELECT TOP 50 t.Twr_Kod FROM CDN.Towary t JOIN CDN.TwrIlosci i ON i.TwI_TwrId = t.Twr_TwrId \
         JOIN CDN.Magazyny m ON m.Mag_MagId = i.TwI_MagId \
         WHERE m.Mag_Symbol = 'MAG' AND t.Twr_Typ = 1 AND t.Twr_NieAktywny = 0 AND t.Twr_Kod NOT LIKE 'BAD%' \
         GROUP BY t.Twr_Kod HAVING MIN(i.TwI_Ilosc - i.TwI_Rezerwacje) > 30 ORDER BY t.Twr_Kod",
    )
    .query(&mut sql)
    .await?
    .into_first_result()
    .await?;
    let skus: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get::<&str, _>("Twr_Kod").map(str::to_owned))
        .collect();
    if skus.is_empty() {
        bail!("no stocked products in the ERP stand-in");
    }
    let shop_catalogue: Vec<String> = erp
        .skus()
        .await?
        .into_iter()
        .map(|sku| format!("{sku};Produkt {sku};24.60;100000"))
        .collect();
    let shop = WooStandinProcess::start_with(None, Some(&shop_catalogue), None, dir)?;
    let cloud = LocalCloud::start_with_host_args(
        dir,
        "bench-orders",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 50, 50)),
        &["--schedule-every", "poller=30"],
    )?;
    let webhook = cloud.webhook_url.clone().context("no webhook URL")?;
    shop.register_order_webhooks(&format!("{webhook}/sklep"))
        .await?;
    let config = dir.join("agent.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 30, AGENT_TOML)?;
    let _agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &dir.join("agent.log"),
        &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
    )?;
    // Let the agent's first full pass go by, so it is not measured here.
    tokio::time::sleep(Duration::from_secs(15)).await;

    println!(
        "placing {} orders, {} at a time…",
        args.orders, args.concurrency
    );
    let placed: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let burst = Instant::now();
    let shop = Arc::new(shop);
    let gate = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.orders {
        let shop = shop.clone();
        let placed = placed.clone();
        let sku = skus[i % skus.len()].clone();
        let permit = gate.clone().acquire_owned().await?;
        tasks.spawn(async move {
            let _permit = permit;
            let order = shop
                .place_order(woo_buyer_order("Zamówienie", i, json!([[sku, 1]])))
                .await?;
            let number = order["number"].as_str().context("number")?.to_owned();
            placed.lock().await.insert(number, Instant::now());
            anyhow::Ok(())
        });
    }
    let mut failed = 0;
    while let Some(joined) = tasks.join_next().await {
        if let Err(err) = joined.map_err(anyhow::Error::from).and_then(|r| r) {
            if failed == 0 {
                println!("an order could not be placed: {err:#}");
            }
            failed += 1;
        }
    }
    if failed > 0 {
        println!("{failed} orders could not be placed");
    }
    let placing = burst.elapsed();
    let placed = placed.lock().await.clone();
    println!(
        "placed {} orders in {:.1} s ({:.0} orders/s)",
        placed.len(),
        placing.as_secs_f64(),
        placed.len() as f64 / placing.as_secs_f64()
    );

    let mut seen: BTreeMap<String, Instant> = BTreeMap::new();
    let mut duplicates = 0;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_minutes * 60);
    while seen.len() < placed.len() && Instant::now() < deadline {
        let rows = Query::new(
            "SELECT TrN_NumerObcy, COUNT(*) AS n FROM CDN.TraNag WHERE TrN_ImportRowId IS NOT NULL GROUP BY TrN_NumerObcy",
        )
        .query(&mut sql)
        .await?
        .into_first_result()
        .await?;
        let now = Instant::now();
        duplicates = 0;
        for row in &rows {
            let (Some(number), Some(n)) =
                (row.get::<&str, _>("TrN_NumerObcy"), row.get::<i32, _>("n"))
            else {
                continue;
            };
            if n > 1 {
                duplicates += 1;
            }
            seen.entry(number.to_owned()).or_insert(now);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let all_in = burst.elapsed();
    let mut delays: Vec<Duration> = placed
        .iter()
        .filter_map(|(number, at)| seen.get(number).map(|s| s.saturating_duration_since(*at)))
        .collect();
    delays.sort();
    println!(
        "in the ERP: {} of {} orders, {} written twice; all in {:.1} s after the burst began ({:.1} orders/s)",
        delays.len(),
        placed.len(),
        duplicates,
        all_in.as_secs_f64(),
        delays.len() as f64 / all_in.as_secs_f64()
    );
    println!(
        "order-to-document delay: p50 {:.2} s, p95 {:.2} s, max {:.2} s",
        percentile(&delays, 0.5).as_secs_f64(),
        percentile(&delays, 0.95).as_secs_f64(),
        delays.last().copied().unwrap_or_default().as_secs_f64()
    );
    // Orders the webhook did not take (the function answered an error, or
    // the shop had disabled the webhook by then) reached the ERP through
    // the poller; this says how many went each way.
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut delivered_orders = std::collections::BTreeSet::new();
    for delivery in shop.webhook_deliveries().await? {
        if delivery["kind"] != "event" {
            continue;
        }
        let outcome = delivery["outcome"].as_str().unwrap_or("?").to_owned();
        if outcome == "success" {
            delivered_orders.insert(delivery["resource_id"].as_u64().unwrap_or_default());
        }
        *outcomes.entry(outcome).or_default() += 1;
    }
    println!(
        "webhook deliveries by outcome: {outcomes:?}; orders taken by a webhook: {}, by the poller only: {}",
        delivered_orders.len(),
        placed.len().saturating_sub(delivered_orders.len())
    );
    let status = cloud.status().await?;
    println!(
        "admin status: parked orders {}",
        status["parked_orders"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_default()
    );
    if delays.len() != placed.len() || duplicates > 0 {
        bail!("not every order arrived exactly once");
    }
    Ok(())
}
