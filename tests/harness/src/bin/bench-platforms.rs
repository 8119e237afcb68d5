//! Per-platform benchmark on the local run's real pieces: for each shop
//! platform (WooCommerce, Allegro, Shoper) in turn, the ERP stand-in with
//! `--skus` products, that platform's stand-in (a process) with an item per
//! ERP SKU, the AWS emulator with the stack and the functions' local host
//! serving that one shop at the platform's default limits (WooCommerce, which
//! has no limit of its own, at `--woo-rate` requests a rolling second), and
//! the agent.
//!
//! It measures
//! 1. the full first push: agent start → every SKU shows Optima's stock in
//!    the shop (what plain SQL reads, mapped as the cloud maps it, read back
//!    from the stand-in's control API), and from the stand-in's own request
//!    log the requests in each window of the platform's limit (a rolling
//!    second for WooCommerce and Shoper, a rolling minute for Allegro, whose
//!    offer changes per minute come from its command list): the busiest
//!    window and the mean over the push, as a share of the limit, and 429s;
//! 2. then `--orders` orders placed in the shop through the stand-in's
//!    control API, `--orders-at-once` at a time every `--order-wave-seconds`,
//!    each timed from its placing to its document in Optima (`CDN.TraNag` by
//!    `TrN_NumerObcy`, polled every 250 ms): p50, p95, max, and that each is
//!    exactly one document.
//!
//! `./target/release/bench-platforms --platform all --skus 10000 --orders 200`
//! (build the other binaries in the same profile first, see
//! docs/BENCHMARKS.md). A benchmark, not a test: it checks only that every
//! SKU was pushed, every order arrived once and no window went over the
//! limit, and reports figures.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Parser;
use harness::bench::{CpuMeter, find_emulator_pid, git_commit, load_average, percentile, round};
use harness::cloud::{LocalCloud, start_agent};
use harness::paths::local_dir;
use harness::standins::{
    AllegroStandinProcess, OptimaStandin, ShoperStandinProcess, WooStandinProcess, woo_buyer_order,
};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};
use tiberius::Query;

#[derive(Parser)]
#[command(about = "Benchmarks each shop platform's full push and orders on the local pieces")]
struct Args {
    /// The platforms to run: woocommerce, allegro, shoper, or all (repeatable).
    #[arg(long = "platform", value_parser = ["woocommerce", "allegro", "shoper", "all"], default_value = "all")]
    platforms: Vec<String>,
    /// Products in the ERP stand-in (and items in the shop).
    #[arg(long, default_value_t = 10_000)]
    skus: usize,
    /// Orders placed in the shop after the push.
    #[arg(long, default_value_t = 200)]
    orders: usize,
    /// Orders placed together (buyers checking out at once).
    #[arg(long, default_value_t = 5)]
    orders_at_once: usize,
    /// Seconds between one group of orders and the next.
    #[arg(long, default_value_t = 2.0)]
    order_wave_seconds: f64,
    /// The WooCommerce shop's limit, requests per rolling second (the
    /// stand-in enforces it and the cloud is configured with it; the
    /// project's default for a host that states none is 2).
    #[arg(long, default_value_t = 10)]
    woo_rate: u32,
    /// The poller's interval in seconds (the template's schedule: 60).
    #[arg(long, default_value_t = 60)]
    poller_seconds: u64,
    /// Give up waiting for the full push after this many minutes (and
    /// report how far it got, with an extrapolation).
    #[arg(long, default_value_t = 25)]
    push_timeout_minutes: u64,
    /// Give up waiting for the orders' documents after this many minutes.
    #[arg(long, default_value_t = 10)]
    order_timeout_minutes: u64,
    /// Write the figures as JSON here too.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the working folders (logs, databases).
    #[arg(long)]
    keep: bool,
}

const AGENT_TOML: &str = "\n[sync]\noverlap_seconds = 10\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n\n[orders]\nwarehouse = \"MAG\"\ndefault_payment_form = \"przelew\"\ndefault_shipping_service = \"TRANSPORT\"\ncollective_customer = \"DETAL\"\nprogress_seconds = 5\n\n[orders.payment_forms]\nbacs = \"przelew\"\nONLINE = \"przelew\"\n";

/// Requests fetched from a stand-in's log per look (its ring holds 10,000).
const LOG_TAIL: usize = 5000;

// ---------------------------------------------------------------- platforms

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Platform {
    WooCommerce,
    Allegro,
    Shoper,
}

impl Platform {
    fn slug(self) -> &'static str {
        match self {
            Platform::WooCommerce => "woocommerce",
            Platform::Allegro => "allegro",
            Platform::Shoper => "shoper",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Platform::WooCommerce => "WooCommerce",
            Platform::Allegro => "Allegro",
            Platform::Shoper => "Shoper",
        }
    }

    fn shop_id(self) -> &'static str {
        match self {
            Platform::WooCommerce => "sklep",
            Platform::Allegro => "allegro",
            Platform::Shoper => "shoper",
        }
    }
}

/// A platform's request limit as the benchmark counts it.
#[derive(Debug, Clone, Serialize)]
struct Limit {
    text: String,
    /// The window requests are counted in.
    window_seconds: u64,
    /// The sustained rate per window (the limit's floor).
    per_window: f64,
    /// The most requests one window may hold without going over the limit
    /// (Shoper: the bucket's burst plus what leaks out in the window).
    ceiling: u64,
}

/// One shop stand-in, as a process.
enum Shop {
    Woo(WooStandinProcess),
    Allegro(AllegroStandinProcess),
    Shoper(ShoperStandinProcess),
}

/// An item of the shop as its control API shows it.
#[derive(Debug, Clone)]
struct Item {
    /// The platform's id (an Allegro offer's id; the SKU elsewhere).
    id: String,
    stock: Option<Decimal>,
    /// On sale (published, active).
    sellable: bool,
}

fn decimal(value: &Value) -> Option<Decimal> {
    match value {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

impl Shop {
    fn pid(&self) -> Option<u32> {
        match self {
            Shop::Woo(s) => s.process.pid(),
            Shop::Allegro(s) => s.process.pid(),
            Shop::Shoper(s) => s.process.pid(),
        }
    }

    /// Every item by SKU.
    async fn items(&self) -> anyhow::Result<HashMap<String, Item>> {
        let mut items = HashMap::new();
        match self {
            Shop::Woo(shop) => {
                let list: Vec<Value> =
                    reqwest::get(format!("{}/__standin/products", shop.base_url))
                        .await
                        .context("GET /__standin/products")?
                        .error_for_status()?
                        .json()
                        .await
                        .context("the shop's product list")?;
                for p in list {
                    let Some(sku) = p["sku"].as_str().filter(|s| !s.is_empty()) else {
                        continue;
                    };
                    items.insert(
                        sku.to_owned(),
                        Item {
                            id: sku.to_owned(),
                            stock: p["stock_quantity"].as_i64().map(Decimal::from),
                            sellable: p["status"] == "publish",
                        },
                    );
                }
            }
            Shop::Allegro(shop) => {
                for o in shop.offers().await? {
                    let (Some(sku), Some(id)) = (o["external_id"].as_str(), o["id"].as_str())
                    else {
                        continue;
                    };
                    items.insert(
                        sku.to_owned(),
                        Item {
                            id: id.to_owned(),
                            stock: o["available"].as_i64().map(Decimal::from),
                            sellable: o["status"] == "ACTIVE" && o["archived"] != true,
                        },
                    );
                }
            }
            Shop::Shoper(shop) => {
                for s in shop.stocks().await? {
                    let Some(code) = s["code"].as_str().filter(|c| !c.is_empty()) else {
                        continue;
                    };
                    items.insert(
                        code.to_owned(),
                        Item {
                            id: code.to_owned(),
                            stock: decimal(&s["stock"]),
                            sellable: s["active"] != false,
                        },
                    );
                }
            }
        }
        Ok(items)
    }

    async fn recent_requests(&self, limit: usize) -> anyhow::Result<Vec<Value>> {
        match self {
            Shop::Woo(s) => s.recent_requests(limit).await,
            Shop::Allegro(s) => s.recent_requests(limit).await,
            Shop::Shoper(s) => s.recent_requests(limit).await,
        }
    }

    /// Places order `n` for one unit of `item` (SKU `sku`) as a buyer;
    /// returns the number Optima keeps as `TrN_NumerObcy`.
    async fn place_order(&self, n: usize, sku: &str, item: &Item) -> anyhow::Result<String> {
        match self {
            Shop::Woo(shop) => {
                let order = shop
                    .place_order(woo_buyer_order("Zamówienie", n, json!([[sku, 1]])))
                    .await?;
                order["number"]
                    .as_str()
                    .map(str::to_owned)
                    .with_context(|| format!("no number in the placed order {order}"))
            }
            Shop::Allegro(shop) => {
                let order = shop
                    .place_order(&json!({
                        "buyer_email": format!("klient{n}@example.pl"),
                        "lines": [{"offer_id": item.id, "quantity": 1}],
                    }))
                    .await?;
                order["id"]
                    .as_str()
                    .map(str::to_owned)
                    .with_context(|| format!("no id in the placed order {order}"))
            }
            Shop::Shoper(shop) => {
                let order = shop
                    .place_order(&json!({
                        "email": format!("klient{n}@example.pl"),
                        "lines": [{"code": sku, "quantity": 1}],
                        "shipping_cost": "14.99",
                        "paid": true,
                    }))
                    .await?;
                // Shoper's REST answers give ids as strings.
                order["order_id"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| order["order_id"].as_u64().map(|id| id.to_string()))
                    .with_context(|| format!("no order_id in the placed order {order}"))
            }
        }
    }

    /// Whether a request is the catalogue push's (not the poller's orders
    /// or a token).
    fn is_push_request(&self, r: &Req) -> bool {
        let p = r.path.as_str();
        match self {
            Shop::Woo(_) => p.contains("/products"),
            Shop::Allegro(_) => p.starts_with("/sale/"),
            Shop::Shoper(_) => {
                p.starts_with("bulk")
                    || p.starts_with("product-stocks")
                    || p.starts_with("products")
            }
        }
    }

    /// A short name for a request, for the breakdown.
    fn kind(&self, r: &Req) -> String {
        let p = r.path.as_str();
        let name = match self {
            Shop::Woo(_) => {
                let tail = p.split("/wc/v3/").nth(1).unwrap_or(p);
                if tail.starts_with("products/batch") {
                    "products/batch".to_owned()
                } else if tail.starts_with("products/categories") {
                    "products/categories".to_owned()
                } else {
                    tail.split('/').next().unwrap_or(tail).to_owned()
                }
            }
            Shop::Allegro(_) => {
                let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
                match parts.as_slice() {
                    ["sale", family, _, "tasks"] => format!("{family} tasks"),
                    ["sale", family, _] if family.ends_with("commands") => {
                        if r.method == "PUT" {
                            format!("{family} register")
                        } else {
                            format!("{family} status")
                        }
                    }
                    [first, second, ..] => format!("{first}/{second}"),
                    [first] => (*first).to_owned(),
                    [] => String::new(),
                }
            }
            Shop::Shoper(_) => p.split('/').next().unwrap_or(p).to_owned(),
        };
        format!("{} {name}", r.method)
    }
}

// ---------------------------------------------------------------- the request log

/// One request from a stand-in's log.
#[derive(Debug, Clone)]
struct Req {
    seq: u64,
    at: DateTime<Utc>,
    method: String,
    path: String,
    status: u16,
    bucket_calls: Option<u64>,
    bulk_operations: Option<u64>,
}

fn parse_request(v: &Value) -> Option<Req> {
    Some(Req {
        seq: v["seq"].as_u64()?,
        at: DateTime::parse_from_rfc3339(v["at"].as_str()?)
            .ok()?
            .with_timezone(&Utc),
        method: v["method"].as_str().unwrap_or_default().to_owned(),
        path: v["path"].as_str().unwrap_or_default().to_owned(),
        status: u16::try_from(v["status"].as_u64()?).ok()?,
        bucket_calls: v["bucket_calls"].as_u64(),
        bulk_operations: v["bulk_operations"].as_u64(),
    })
}

/// The stand-in's request log, collected a tail at a time so that nothing
/// is lost when its ring (10,000) turns over.
#[derive(Default)]
struct RequestLog {
    seen: BTreeMap<u64, Req>,
    /// Requests the ring dropped before they were read.
    lost: u64,
}

impl RequestLog {
    async fn collect(&mut self, shop: &Shop) -> anyhow::Result<()> {
        let tail = shop.recent_requests(LOG_TAIL).await?;
        let parsed: Vec<Req> = tail.iter().filter_map(parse_request).collect();
        if let (Some(last), Some(first)) = (self.seen.keys().next_back(), parsed.first())
            && first.seq > last + 1
        {
            self.lost += first.seq - last - 1;
        }
        for r in parsed {
            self.seen.insert(r.seq, r);
        }
        Ok(())
    }

    fn last_seq(&self) -> u64 {
        self.seen.keys().next_back().copied().unwrap_or(0)
    }
}

/// The most any window of `window_ms` holds, as (total weight, its start).
fn busiest(entries: &[(i64, u64)], window_ms: i64) -> (u64, Option<i64>) {
    let mut best = (0, None);
    let mut sum = 0u64;
    let mut i = 0;
    for j in 0..entries.len() {
        sum += entries[j].1;
        while entries[j].0 - entries[i].0 >= window_ms {
            sum -= entries[i].1;
            i += 1;
        }
        if sum > best.0 {
            best = (sum, Some(entries[i].0));
        }
    }
    best
}

// ---------------------------------------------------------------- figures

#[derive(Serialize, Default)]
struct Figures {
    date_utc: String,
    commit: String,
    cpus: usize,
    load_average_start: String,
    load_average_end: String,
    platforms: Vec<PlatformFigures>,
}

#[derive(Serialize, Default)]
struct PlatformFigures {
    platform: String,
    workdir: String,
    skus_in_erp: usize,
    /// SKUs the shop holds that Optima gives a stock.
    skus_to_push: usize,
    limit: Option<Limit>,
    settings: String,
    start_seconds: f64,
    push: Push,
    orders: Orders,
    failures: Vec<String>,
}

#[derive(Serialize, Default)]
struct Push {
    finished: bool,
    /// SKUs showing Optima's stock at the end.
    shown: usize,
    /// Agent start → every SKU shows Optima's stock.
    all_shown_seconds: Option<f64>,
    /// Agent start → the first and last catalogue request.
    first_request_seconds: Option<f64>,
    last_request_seconds: Option<f64>,
    /// Requests between the first and last catalogue request (the
    /// poller's included: they take from the same limit).
    requests: usize,
    requests_by_kind: BTreeMap<String, usize>,
    rate_limited: usize,
    log_requests_lost: u64,
    busiest_window: u64,
    busiest_window_percent: f64,
    mean_per_window: f64,
    mean_percent: f64,
    /// Shoper: the fullest the shop's bucket was (`X-Shop-Api-Calls`).
    max_bucket_fill: Option<u64>,
    bulk_operations: Option<u64>,
    offer_changes: Option<OfferChanges>,
    /// (seconds since agent start, SKUs showing Optima's stock).
    progress: Vec<(f64, usize)>,
    /// When not finished: the time the whole push would take at the rate
    /// of its last five minutes.
    extrapolated_seconds: Option<f64>,
    cpu_seconds: BTreeMap<String, f64>,
}

#[derive(Serialize, Default)]
struct OfferChanges {
    quantity_commands: usize,
    price_commands: usize,
    changes: u64,
    busiest_minute: u64,
    busiest_minute_quantity: u64,
    busiest_minute_price: u64,
    mean_per_minute: f64,
    /// Of the connector's one `offer_changes` budget (9,000 a minute).
    busiest_percent: f64,
    mean_percent: f64,
}

#[derive(Serialize, Default)]
struct Orders {
    placed: usize,
    not_placed: usize,
    placing_seconds: f64,
    in_erp: usize,
    more_than_one_document: usize,
    p50_seconds: Option<f64>,
    p95_seconds: Option<f64>,
    max_seconds: Option<f64>,
}

// ---------------------------------------------------------------- main

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.skus < 10 {
        bail!("--skus must be at least 10 (the seed's deliberately bad rows)");
    }
    let runs = |p: &str| args.platforms.iter().any(|s| s == p || s == "all");
    let platforms: Vec<Platform> = [Platform::WooCommerce, Platform::Allegro, Platform::Shoper]
        .into_iter()
        .filter(|p| runs(p.slug()))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stamp = Utc::now();
    let mut figures = Figures {
        date_utc: stamp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        commit: git_commit(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average_start: load_average(),
        ..Figures::default()
    };
    println!(
        "bench-platforms at {} ({} CPUs, load {}), commit {}",
        figures.date_utc, figures.cpus, figures.load_average_start, figures.commit
    );
    for platform in platforms {
        let dir = local_dir().join(format!(
            "bench-platforms-{}-{}-{}",
            platform.slug(),
            args.skus,
            Utc::now().format("%Y%m%dT%H%M%S")
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        println!(
            "\n== {} == working folder: {}",
            platform.name(),
            dir.display()
        );
        let mut result = PlatformFigures {
            platform: platform.name().to_owned(),
            workdir: dir.display().to_string(),
            skus_in_erp: args.skus,
            ..PlatformFigures::default()
        };
        let outcome = runtime.block_on(run_platform(&args, platform, &dir, &mut result));
        if let Err(err) = &outcome {
            println!("{}: the run stopped: {err:#}", platform.name());
            result.failures.push(format!("the run stopped: {err:#}"));
        }
        if args.keep || outcome.is_err() || !result.failures.is_empty() {
            println!("logs and state kept in {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
        figures.platforms.push(result);
    }
    figures.load_average_end = load_average();
    print_table(&figures);
    let json = serde_json::to_string_pretty(&figures)?;
    if let Some(out) = &args.out {
        std::fs::write(out, json + "\n").with_context(|| format!("writing {}", out.display()))?;
        println!("figures written to {}", out.display());
    }
    let failed: Vec<String> = figures
        .platforms
        .iter()
        .flat_map(|p| {
            p.failures
                .iter()
                .map(move |f| format!("{}: {f}", p.platform))
        })
        .collect();
    if !failed.is_empty() {
        bail!("checks failed:\n  {}", failed.join("\n  "));
    }
    Ok(())
}

/// Per SKU, the stock the shop must show: Optima's stock by plain SQL, its
/// products and prices as the agent reads them, mapped as the cloud maps
/// them for a shop selling from `MAG` (only SKUs given a stock).
async fn expected_stock(erp: &OptimaStandin) -> anyhow::Result<HashMap<String, Decimal>> {
    use agent::optima;
    let rules: functions::mapping::ShopRules = serde_json::from_value(json!({
        "price_list": "Detaliczna",
        "shop_prices": "gross",
        "rounding": "grosz",
        "warehouses": ["MAG"],
        "safety_buffer": "0",
        "inactive": "hide"
    }))
    .context("the shop's rules")?;
    let mut sql = agent::sql::connect_ado(&erp.ado_with_password(), 10).await?;
    let skus = erp.skus().await?;
    let groups = optima::group_paths(&mut sql).await?;
    let ids = optima::product_ids_for_skus(&mut sql, &skus).await?;
    let products = optima::products(&mut sql, &ids, &groups).await?;
    let prices = optima::prices(&mut sql, &ids, optima::PriceListKey::Lp).await?;
    let mut plain = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let stock = harness::expected::stock_by_plain_sql(&mut plain).await?;
    let states = harness::expected::shop_states(&products, &prices, &stock, &rules);
    Ok(states
        .into_iter()
        .filter_map(|(sku, state)| state.stock_quantity.map(|q| (sku, Decimal::from(q.max(0)))))
        .collect())
}

/// The agent's full passes logged done (stock, prices, catalogue).
fn passes_done(agent_log: &Path) -> usize {
    std::fs::read_to_string(agent_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("pass done"))
        .count()
}

async fn run_platform(
    args: &Args,
    platform: Platform,
    dir: &Path,
    result: &mut PlatformFigures,
) -> anyhow::Result<()> {
    let t = Instant::now();
    println!("starting the ERP stand-in with {} products…", args.skus);
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), args.skus, dir)?;
    let skus = erp.skus().await.context("reading the ERP's SKUs")?;
    let expected = expected_stock(&erp)
        .await
        .context("Optima's stock by plain SQL")?;
    println!(
        "starting the {} stand-in with {} items, the emulator, the stack and the functions…",
        platform.name(),
        skus.len()
    );
    let id = platform.shop_id();
    let (shop, parameters, limit) = match platform {
        Platform::WooCommerce => {
            let shop = WooStandinProcess::start_with(None, Some(&skus), Some(args.woo_rate), dir)?;
            let parameters =
                shop.shop_parameters(id, "Detaliczna", &["MAG"], args.woo_rate, args.woo_rate);
            let limit = Limit {
                text: format!(
                    "{} requests a rolling second (configured; the stand-in refuses more)",
                    args.woo_rate
                ),
                window_seconds: 1,
                per_window: f64::from(args.woo_rate),
                ceiling: u64::from(args.woo_rate),
            };
            (Shop::Woo(shop), parameters, limit)
        }
        Platform::Allegro => {
            let shop = AllegroStandinProcess::start(&skus, dir)?;
            let parameters = shop.shop_parameters(id, "Detaliczna", &["MAG"]);
            let limit = Limit {
                text: "9,000 requests a minute per client id; 9,000 offer changes a minute (the platform's defaults)".into(),
                window_seconds: 60,
                per_window: 9000.0,
                ceiling: 9000,
            };
            (Shop::Allegro(shop), parameters, limit)
        }
        Platform::Shoper => {
            let shop = ShoperStandinProcess::start(&skus, dir)?;
            let parameters = shop.shop_parameters(id, "Detaliczna", &["MAG"]);
            let limit = Limit {
                text: "a bucket of 10 leaking 2 a second (the platform's default)".into(),
                window_seconds: 1,
                per_window: 2.0,
                ceiling: 12,
            };
            (Shop::Shoper(shop), parameters, limit)
        }
    };
    result.settings = parameters.0.clone();
    result.limit = Some(limit.clone());
    let poller = format!("poller={}", args.poller_seconds);
    let stack = "bench-platforms";
    let cloud = LocalCloud::start_with_host_args(
        dir,
        stack,
        Some(parameters),
        &["--schedule-every", &poller],
    )?;
    let webhook = cloud.webhook_url.clone();
    match &shop {
        Shop::Woo(s) => {
            let url = webhook.context("no webhook URL")?;
            s.register_order_webhooks(&format!("{url}/{id}")).await?;
        }
        Shop::Shoper(s) => {
            let url = webhook.context("no webhook URL")?;
            s.register_order_webhooks(&format!("{url}/{id}")).await?;
        }
        Shop::Allegro(s) => {
            s.authorize(&cloud.emulator.endpoint(), stack, id)
                .await
                .context("linking the Allegro seller")?;
        }
    }
    result.start_seconds = round(t.elapsed().as_secs_f64(), 1);

    // The SKUs to push: in the shop, and given a stock by Optima.
    let items = shop.items().await?;
    let targets: HashMap<String, Decimal> = expected
        .into_iter()
        .filter(|(sku, _)| items.contains_key(sku))
        .collect();
    result.skus_to_push = targets.len();
    let mut log = RequestLog::default();
    log.collect(&shop).await?;
    let seq_before = log.last_seq();

    // 1. The full first push.
    let config = dir.join("agent.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 30, AGENT_TOML)?;
    let agent_log = dir.join("agent.log");
    let started_wall = Utc::now();
    let started = Instant::now();
    let mut agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &agent_log,
        &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
    )?;
    let cpu = CpuMeter::start(&[
        (
            "aws emulator (moto)",
            find_emulator_pid(cloud.emulator.port),
        ),
        ("functions local-host", cloud.host.pid()),
        ("agent", agent.pid()),
        ("shop stand-in", shop.pid()),
        ("optima-standin", erp.process.pid()),
    ]);
    println!(
        "agent started; waiting until {} SKUs show Optima's stock in the shop…",
        targets.len()
    );
    let deadline = started + Duration::from_secs(args.push_timeout_minutes * 60);
    let look_every = Duration::from_secs((args.skus as u64 / 5000).max(2));
    let mut shown = 0usize;
    let mut all_shown: Option<Duration> = None;
    let mut last_look = started.checked_sub(look_every).unwrap_or(started);
    let mut last_print = started;
    let mut last_push_request_seen = (0u64, Instant::now());
    let mut quiet_checks = 0;
    let mut progress: Vec<(f64, usize)> = Vec::new();
    let mut mismatches: Vec<String> = Vec::new();
    let finished = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if !agent.is_running() {
            bail!(
                "the agent exited during the push; see {}",
                agent_log.display()
            );
        }
        log.collect(&shop).await?;
        let newest_push = log
            .seen
            .range(seq_before + 1..)
            .rev()
            .find(|(_, r)| shop.is_push_request(r))
            .map(|(seq, _)| *seq)
            .unwrap_or(0);
        if newest_push != last_push_request_seen.0 {
            last_push_request_seen = (newest_push, Instant::now());
        }
        if all_shown.is_none() && last_look.elapsed() >= look_every {
            last_look = Instant::now();
            let now = shop.items().await?;
            mismatches.clear();
            shown = 0;
            for (sku, want) in &targets {
                if now.get(sku).and_then(|i| i.stock) == Some(*want) {
                    shown += 1;
                } else if mismatches.len() < 5 {
                    mismatches.push(format!(
                        "{sku}: shop {:?}, Optima {want}",
                        now.get(sku).and_then(|i| i.stock)
                    ));
                }
            }
            progress.push((round(started.elapsed().as_secs_f64(), 1), shown));
            if shown == targets.len() {
                all_shown = Some(started.elapsed());
                println!(
                    "  every SKU shows Optima's stock after {:.1} s; waiting for the push to go quiet…",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        if last_print.elapsed() >= Duration::from_secs(30) {
            last_print = Instant::now();
            let push_requests = log
                .seen
                .range(seq_before + 1..)
                .filter(|(_, r)| shop.is_push_request(r))
                .count();
            println!(
                "  {:>6.0} s: {shown}/{} SKUs show Optima's stock; {push_requests} catalogue requests so far",
                started.elapsed().as_secs_f64(),
                targets.len()
            );
        }
        // Done: every SKU shown (or nothing more moving: the agent's passes
        // sent, the queues empty), and no catalogue request for 10 s.
        if last_push_request_seen.0 > 0
            && last_push_request_seen.1.elapsed() > Duration::from_secs(10)
            && passes_done(&agent_log) >= 3
        {
            if cloud.queued_messages().await? == 0 {
                quiet_checks += 1;
            } else {
                quiet_checks = 0;
            }
            if quiet_checks >= 3 {
                if all_shown.is_none() {
                    // One last look, in case the last write landed just now.
                    let now = shop.items().await?;
                    shown = targets
                        .iter()
                        .filter(|(sku, want)| now.get(*sku).and_then(|i| i.stock) == Some(**want))
                        .count();
                    progress.push((round(started.elapsed().as_secs_f64(), 1), shown));
                    if shown == targets.len() {
                        all_shown = Some(started.elapsed());
                    }
                }
                break all_shown.is_some();
            }
        } else {
            quiet_checks = 0;
        }
        if Instant::now() > deadline {
            println!(
                "  gave up waiting after {} minutes: {shown}/{} SKUs shown",
                args.push_timeout_minutes,
                targets.len()
            );
            break false;
        }
    };
    log.collect(&shop).await?;
    result.push.cpu_seconds = cpu.seconds();
    result.push.finished = finished;
    result.push.shown = shown;
    result.push.all_shown_seconds = all_shown.map(|d| round(d.as_secs_f64(), 1));
    result.push.progress = progress.clone();
    if !finished {
        result.failures.push(format!(
            "the push did not finish: {shown} of {} SKUs show Optima's stock (e.g. {})",
            targets.len(),
            mismatches.join("; ")
        ));
        // The rate of the last five minutes (or of the whole run).
        if let (Some(last), Some(first)) = (
            progress.last(),
            progress
                .iter()
                .find(|(t, _)| *t >= progress.last().map_or(0.0, |l| l.0) - 300.0),
        ) && last.0 > first.0
            && last.1 > first.1
        {
            let rate = (last.1 - first.1) as f64 / (last.0 - first.0);
            let remaining = targets.len().saturating_sub(last.1) as f64;
            result.push.extrapolated_seconds = Some(round(last.0 + remaining / rate, 0));
        }
    }
    analyse_push(&shop, &log, seq_before, started_wall, &limit, result);
    if let Shop::Allegro(allegro) = &shop {
        result.push.offer_changes = Some(offer_changes(allegro, started_wall, result).await?);
    }
    print_push(result);

    // 2. Orders.
    let shop = Arc::new(shop);
    measure_orders(args, &shop, &erp, &targets, result).await?;
    agent.kill();
    Ok(())
}

/// Requests per window of the limit over the push, from the stand-in's log.
fn analyse_push(
    shop: &Shop,
    log: &RequestLog,
    seq_before: u64,
    started_wall: DateTime<Utc>,
    limit: &Limit,
    result: &mut PlatformFigures,
) {
    let ms = |at: DateTime<Utc>| (at - started_wall).num_milliseconds();
    let after: Vec<&Req> = log.seen.range(seq_before + 1..).map(|(_, r)| r).collect();
    let first = after
        .iter()
        .find(|r| shop.is_push_request(r))
        .map(|r| r.seq);
    let last = after
        .iter()
        .rev()
        .find(|r| shop.is_push_request(r))
        .map(|r| r.seq);
    let (Some(first), Some(last)) = (first, last) else {
        result
            .failures
            .push("the shop's log holds no catalogue request".into());
        return;
    };
    let span: Vec<&Req> = log.seen.range(first..=last).map(|(_, r)| r).collect();
    let push = &mut result.push;
    push.log_requests_lost = log.lost;
    push.requests = span.len();
    for r in &span {
        *push.requests_by_kind.entry(shop.kind(r)).or_default() += 1;
    }
    push.rate_limited = span.iter().filter(|r| r.status == 429).count();
    let t0 = span.first().map_or(0, |r| ms(r.at));
    let t1 = span.last().map_or(0, |r| ms(r.at));
    push.first_request_seconds = Some(round(t0 as f64 / 1000.0, 1));
    push.last_request_seconds = Some(round(t1 as f64 / 1000.0, 1));
    let mut times: Vec<(i64, u64)> = span.iter().map(|r| (ms(r.at), 1)).collect();
    times.sort_unstable();
    let window_ms = i64::try_from(limit.window_seconds * 1000).unwrap_or(i64::MAX);
    let (most, _) = busiest(&times, window_ms);
    push.busiest_window = most;
    push.busiest_window_percent = round(most as f64 / limit.per_window * 100.0, 1);
    // The mean over the push: requests per window of the span (at least one window).
    let span_ms = (t1 - t0).max(window_ms) as f64;
    push.mean_per_window = round(span.len() as f64 / span_ms * window_ms as f64, 2);
    push.mean_percent = round(push.mean_per_window / limit.per_window * 100.0, 1);
    if let Shop::Shoper(_) = shop {
        push.max_bucket_fill = span.iter().filter_map(|r| r.bucket_calls).max();
        push.bulk_operations = Some(span.iter().filter_map(|r| r.bulk_operations).sum());
        if push.max_bucket_fill.is_some_and(|f| f > 10) {
            result.failures.push(format!(
                "the shop's bucket held {:?} (more than its 10)",
                push.max_bucket_fill
            ));
        }
    }
    if most > limit.ceiling {
        result.failures.push(format!(
            "a window of {} s held {most} requests, more than the limit's {}",
            limit.window_seconds, limit.ceiling
        ));
    }
    if push.rate_limited > 0 {
        result.failures.push(format!(
            "the shop answered 429 {} times during the push",
            push.rate_limited
        ));
    }
    if log.lost > 0 {
        result.failures.push(format!(
            "{} requests left the stand-in's log before they were read (the figures miss them)",
            log.lost
        ));
    }
}

/// Allegro's offer changes per minute, from its commands (each task is one
/// offer changed).
async fn offer_changes(
    allegro: &AllegroStandinProcess,
    started_wall: DateTime<Utc>,
    result: &mut PlatformFigures,
) -> anyhow::Result<OfferChanges> {
    let commands = allegro.commands().await?;
    let mut all = Vec::new();
    let mut by_family: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    for c in &commands {
        let Some(at) = c["created_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        else {
            continue;
        };
        let ms = (at.with_timezone(&Utc) - started_wall).num_milliseconds();
        let offers = c["tasks"].as_array().map_or(0, |t| t.len() as u64);
        let family = c["family"].as_str().unwrap_or("?").to_owned();
        all.push((ms, offers));
        by_family.entry(family).or_default().push((ms, offers));
    }
    all.sort_unstable();
    for list in by_family.values_mut() {
        list.sort_unstable();
    }
    let changes: u64 = all.iter().map(|(_, n)| n).sum();
    let (most, _) = busiest(&all, 60_000);
    let family_most = |f: &str| by_family.get(f).map_or(0, |l| busiest(l, 60_000).0);
    let span_ms = match (all.first(), all.last()) {
        (Some(a), Some(b)) => (b.0 - a.0).max(60_000) as f64,
        _ => 60_000.0,
    };
    let mean = changes as f64 / span_ms * 60_000.0;
    let figures = OfferChanges {
        quantity_commands: by_family.get("quantity").map_or(0, Vec::len),
        price_commands: by_family.get("price").map_or(0, Vec::len),
        changes,
        busiest_minute: most,
        busiest_minute_quantity: family_most("quantity"),
        busiest_minute_price: family_most("price"),
        mean_per_minute: round(mean, 1),
        busiest_percent: round(most as f64 / 9000.0 * 100.0, 1),
        mean_percent: round(mean / 9000.0 * 100.0, 1),
    };
    if most > 9000 {
        result.failures.push(format!(
            "{most} offer changes in one minute, more than 9,000"
        ));
    }
    Ok(figures)
}

fn print_push(result: &PlatformFigures) {
    let p = &result.push;
    println!(
        "push {}: {}/{} SKUs show Optima's stock; all shown at {:?} s; catalogue requests from {:?} s to {:?} s",
        if p.finished { "done" } else { "NOT finished" },
        p.shown,
        result.skus_to_push,
        p.all_shown_seconds,
        p.first_request_seconds,
        p.last_request_seconds
    );
    println!(
        "  {} requests ({} answered 429): busiest window {} ({} %), mean {} per window ({} %)",
        p.requests,
        p.rate_limited,
        p.busiest_window,
        p.busiest_window_percent,
        p.mean_per_window,
        p.mean_percent
    );
    println!("  by kind: {:?}", p.requests_by_kind);
    if let Some(oc) = &p.offer_changes {
        println!(
            "  offer changes: {} in {} quantity and {} price commands; busiest minute {} ({} %: quantity {}, price {}), mean {}/min ({} %)",
            oc.changes,
            oc.quantity_commands,
            oc.price_commands,
            oc.busiest_minute,
            oc.busiest_percent,
            oc.busiest_minute_quantity,
            oc.busiest_minute_price,
            oc.mean_per_minute,
            oc.mean_percent
        );
    }
    if let Some(fill) = p.max_bucket_fill {
        println!(
            "  Shoper bucket: fullest {fill} of 10; {} /bulk operations",
            p.bulk_operations.unwrap_or(0)
        );
    }
    if let Some(x) = p.extrapolated_seconds {
        println!("  at the rate of its last minutes the push would take {x:.0} s in all");
    }
    println!("  CPU seconds over the push: {:?}", p.cpu_seconds);
}

/// Each order number with its documents in Optima (`TrN_NumerObcy` of
/// documents the agent imported).
async fn documents(sql: &mut optima_standin::erp::Client) -> anyhow::Result<Vec<(String, i32)>> {
    let rows = Query::new(
        "SELECT TrN_NumerObcy, COUNT(*) AS n FROM CDN.TraNag \
         WHERE TrN_NumerObcy IS NOT NULL AND TrN_ImportRowId IS NOT NULL GROUP BY TrN_NumerObcy",
    )
    .query(sql)
    .await?
    .into_first_result()
    .await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some((
                row.get::<&str, _>("TrN_NumerObcy")?.trim().to_owned(),
                row.get::<i32, _>("n")?,
            ))
        })
        .collect())
}

/// Notes when each placed order was first seen in Optima, and its
/// documents now.
fn note_documents(
    found: Vec<(String, i32)>,
    placed: &BTreeMap<String, Instant>,
    seen: &mut BTreeMap<String, (Instant, i32)>,
) {
    let now = Instant::now();
    for (number, count) in found {
        if !placed.contains_key(&number) {
            continue;
        }
        seen.entry(number).or_insert((now, count)).1 = count;
    }
}

/// Places the orders and times each to its document in Optima.
async fn measure_orders(
    args: &Args,
    shop: &Arc<Shop>,
    erp: &OptimaStandin,
    targets: &HashMap<String, Decimal>,
    result: &mut PlatformFigures,
) -> anyhow::Result<()> {
    if args.orders == 0 {
        return Ok(());
    }
    // One unit each of products on sale with stock to spare, spread over
    // the catalogue.
    let items = shop.items().await?;
    let mut candidates: Vec<(String, Item)> = items
        .into_iter()
        .filter(|(sku, item)| {
            item.sellable
                && targets.contains_key(sku)
                && item.stock.is_some_and(|s| s >= Decimal::from(3))
        })
        .collect();
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    let step = (candidates.len() / args.orders.max(1)).max(1);
    let candidates: Vec<(String, Item)> = candidates.into_iter().step_by(step).collect();
    if candidates.is_empty() {
        bail!("no product on sale with stock to order");
    }
    println!(
        "placing {} orders, {} at a time every {} s, over {} products…",
        args.orders,
        args.orders_at_once,
        args.order_wave_seconds,
        candidates.len()
    );
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let mut placed: BTreeMap<String, Instant> = BTreeMap::new();
    let mut seen: BTreeMap<String, (Instant, i32)> = BTreeMap::new();
    let mut not_placed = 0;
    let began = Instant::now();
    let wave = Duration::from_secs_f64(args.order_wave_seconds.max(0.0));
    let mut n = 0;
    let mut next_wave = Instant::now();
    // Placing a group, then looking for documents until the next group.
    while n < args.orders {
        if Instant::now() >= next_wave {
            next_wave += wave;
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..args.orders_at_once.max(1) {
                if n >= args.orders {
                    break;
                }
                let (sku, item) = candidates[n % candidates.len()].clone();
                let (i, shop) = (n, Arc::clone(shop));
                n += 1;
                tasks.spawn(async move {
                    let number = shop.place_order(i, &sku, &item).await;
                    (number, Instant::now())
                });
            }
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok((Ok(number), at)) => {
                        placed.insert(number, at);
                    }
                    Ok((Err(err), _)) => {
                        if not_placed == 0 {
                            println!("  an order could not be placed: {err:#}");
                        }
                        not_placed += 1;
                    }
                    Err(err) => {
                        println!("  placing an order failed: {err}");
                        not_placed += 1;
                    }
                }
            }
        }
        note_documents(documents(&mut sql).await?, &placed, &mut seen);
        let pause = next_wave
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(250));
        tokio::time::sleep(pause).await;
    }
    let placing = began.elapsed();
    let deadline = Instant::now() + Duration::from_secs(args.order_timeout_minutes * 60);
    while seen.len() < placed.len() && Instant::now() < deadline {
        note_documents(documents(&mut sql).await?, &placed, &mut seen);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A poller's pass after the last document, so that a second document
    // for an order would show.
    println!(
        "  {} of {} orders in Optima; watching for a second document over one poller interval…",
        seen.len(),
        placed.len()
    );
    tokio::time::sleep(Duration::from_secs(args.poller_seconds + 10)).await;
    note_documents(documents(&mut sql).await?, &placed, &mut seen);
    let mut delays: Vec<f64> = placed
        .iter()
        .filter_map(|(number, at)| {
            seen.get(number)
                .map(|(s, _)| s.saturating_duration_since(*at).as_secs_f64())
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    let twice = seen.values().filter(|(_, n)| *n > 1).count();
    let orders = &mut result.orders;
    orders.placed = placed.len();
    orders.not_placed = not_placed;
    orders.placing_seconds = round(placing.as_secs_f64(), 1);
    orders.in_erp = delays.len();
    orders.more_than_one_document = twice;
    orders.p50_seconds = percentile(&delays, 50.0).map(|v| round(v, 2));
    orders.p95_seconds = percentile(&delays, 95.0).map(|v| round(v, 2));
    orders.max_seconds = delays.last().map(|v| round(*v, 2));
    println!(
        "orders: {} placed in {:.1} s ({} not placed); {} in Optima, {} with more than one document; delay p50 {:?} s, p95 {:?} s, max {:?} s",
        orders.placed,
        orders.placing_seconds,
        not_placed,
        orders.in_erp,
        twice,
        orders.p50_seconds,
        orders.p95_seconds,
        orders.max_seconds
    );
    if not_placed > 0 {
        result
            .failures
            .push(format!("{not_placed} orders could not be placed"));
    }
    if delays.len() != placed.len() || twice > 0 {
        result.failures.push(format!(
            "not every order became exactly one document: {} of {} in Optima, {twice} more than once",
            delays.len(),
            placed.len()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- the table

fn seconds(s: Option<f64>) -> String {
    s.map_or("—".into(), |s| format!("{s:.1} s"))
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The figures as a Markdown table, a column per platform.
fn print_table(figures: &Figures) {
    let columns = &figures.platforms;
    if columns.is_empty() {
        return;
    }
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, cell: &dyn Fn(&PlatformFigures) -> String| {
        rows.push((name.to_owned(), columns.iter().map(cell).collect()));
    };
    row("limit", &|p| {
        p.limit.as_ref().map_or("—".into(), |l| l.text.clone())
    });
    row("SKUs to push (in the shop, given a stock)", &|p| {
        thousands(p.skus_to_push as u64)
    });
    row(
        "**full push: agent start → every SKU shows Optima's stock**",
        &|p| {
            if p.push.finished {
                format!("**{}**", seconds(p.push.all_shown_seconds))
            } else {
                format!(
                    "**not finished**: {} of {} after {}{}",
                    thousands(p.push.shown as u64),
                    thousands(p.skus_to_push as u64),
                    seconds(p.push.progress.last().map(|x| x.0)),
                    p.push
                        .extrapolated_seconds
                        .map_or(String::new(), |x| format!(
                            "; at its last rate ≈ {x:.0} s in all"
                        ))
                )
            }
        },
    );
    row(
        "catalogue requests: first / last (from agent start)",
        &|p| {
            format!(
                "{} / {}",
                seconds(p.push.first_request_seconds),
                seconds(p.push.last_request_seconds)
            )
        },
    );
    row("requests in the push (429s)", &|p| {
        format!(
            "{} ({})",
            thousands(p.push.requests as u64),
            p.push.rate_limited
        )
    });
    row("**busiest window** (of the limit's)", &|p| {
        let unit = p.limit.as_ref().map_or(1, |l| l.window_seconds);
        format!(
            "**{} requests in {unit} s ({} % of the floor)**",
            thousands(p.push.busiest_window),
            p.push.busiest_window_percent
        )
    });
    row("**mean over the push**", &|p| {
        let unit = p.limit.as_ref().map_or(1, |l| l.window_seconds);
        format!(
            "**{} requests per {unit} s ({} %)**",
            p.push.mean_per_window, p.push.mean_percent
        )
    });
    row("offer changes: busiest minute / mean (of 9,000)", &|p| {
        p.push.offer_changes.as_ref().map_or("—".into(), |o| {
            format!(
                "{} ({} %) / {} a minute ({} %); {} changes in {} quantity + {} price commands",
                thousands(o.busiest_minute),
                o.busiest_percent,
                o.mean_per_minute,
                o.mean_percent,
                thousands(o.changes),
                o.quantity_commands,
                o.price_commands
            )
        })
    });
    row("Shoper bucket: fullest (of 10)", &|p| {
        p.push
            .max_bucket_fill
            .map_or("—".into(), |f| format!("{f}"))
    });
    row(
        "CPU s over the push: moto / local host / agent / shop",
        &|p| {
            let c = |k: &str| p.push.cpu_seconds.get(k).copied().unwrap_or(0.0);
            format!(
                "{} / {} / {} / {}",
                c("aws emulator (moto)"),
                c("functions local-host"),
                c("agent"),
                c("shop stand-in")
            )
        },
    );
    row("orders placed / in Optima / more than one document", &|p| {
        format!(
            "{} / {} / {}",
            p.orders.placed, p.orders.in_erp, p.orders.more_than_one_document
        )
    });
    row("**order → RO in Optima: p50 / p95 / max**", &|p| {
        format!(
            "**{} / {} / {}**",
            seconds(p.orders.p50_seconds),
            seconds(p.orders.p95_seconds),
            seconds(p.orders.max_seconds)
        )
    });
    row("checks", &|p| {
        if p.failures.is_empty() {
            "all held".into()
        } else {
            p.failures.join("; ")
        }
    });
    println!();
    println!(
        "| | {} |",
        columns
            .iter()
            .map(|p| p.platform.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(columns.len()));
    for (name, cells) in rows {
        println!("| {name} | {} |", cells.join(" | "));
    }
}
