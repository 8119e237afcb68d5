//! ERP → shop sync benchmark on the local run's real pieces: the ERP
//! stand-in seeded with `--products` products, the WooCommerce stand-in
//! seeded with the same SKUs, the AWS emulator with the stack, the functions'
//! local host and the agent, each a process on 127.0.0.1.
//!
//! Prints (and with `--out FILE` writes as JSON):
//! 1. the first full sync: time until the shop stops changing, SQS messages
//!    and bytes the agent sent, shop API requests, and the agent's CPU and
//!    peak RSS over it (with every other process's CPU, to show where the
//!    time goes);
//! 2. the agent idle: RSS, CPU per second, and the SQL cost of a cursor poll;
//! 3. the delay from an office sale to the shop's stock over `--changes` sales.
//!
//! `cargo run --release -p harness --bin bench-sync -- --products 10000`
//! (build the other binaries in the same profile first:
//! `cargo build --release -p agent -p functions -p optima-standin -p woo-standin --bins`).
//! It is a benchmark, not a test: it checks nothing beyond sanity.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use harness::bench::{
    CpuMeter, clock_ticks, cpu_ticks, find_emulator_pid, load_average, percentile, round, rss_kib,
};
use harness::cloud::{LocalCloud, start_agent};
use harness::paths::local_dir;
use harness::standins::{OptimaStandin, WooStandinProcess};
use optima_standin::seed::{SeedOptions, seed_database};
use optima_standin::simulator::{Action, Simulator};
use serde::Serialize;
use serde_json::Value;

#[derive(Parser)]
#[command(about = "Benchmarks the ERP → shop sync on the local pieces")]
struct Args {
    /// Products in the ERP stand-in (and the shop).
    #[arg(long, default_value_t = 10_000)]
    products: usize,
    /// Office sales measured one at a time for the ERP → shop delay.
    #[arg(long, default_value_t = 200)]
    changes: usize,
    /// Write the figures as JSON here too.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The agent's `[sync] poll_seconds` (the shipped default is 0.5).
    #[arg(long, default_value_t = 0.5)]
    poll_seconds: f64,
    /// The shop's request limit in the cloud's shop configuration (req/s; burst the same).
    #[arg(long, default_value_t = 50)]
    shop_rate: u32,
    /// Give up waiting for the first full sync after this many minutes and
    /// report how far it got.
    #[arg(long, default_value_t = 25)]
    pass_timeout_minutes: u64,
    /// Seconds of sampling the idle agent.
    #[arg(long, default_value_t = 10)]
    idle_seconds: u64,
    /// Keep the working folder (logs, databases) instead of removing it.
    #[arg(long)]
    keep: bool,
    /// Settled invoices from years ago added to `TraNag` before the run
    /// (a company's history: the document poll must not read it).
    #[arg(long, default_value_t = 0)]
    history_documents: usize,
}

/// Seed defaults of the shop stand-in (`--seed-products-from-skus`).
const SEED_PRICE: &str = "10.00";
const SEED_STOCK: i64 = 10;

#[derive(Serialize, Default)]
struct Figures {
    date_utc: String,
    machine: Machine,
    products: usize,
    /// Documents in `TraNag` (the seed's and the added history).
    documents: usize,
    settings: BTreeMap<String, Value>,
    seed_erp_seconds: f64,
    add_history_seconds: f64,
    start_cloud_seconds: f64,
    first_pass: FirstPass,
    idle: Idle,
    delay: Delay,
    workdir: String,
}

#[derive(Serialize, Default)]
struct Machine {
    cpus: usize,
    load_average_start: String,
    load_average_end: String,
}

#[derive(Serialize, Default)]
struct FirstPass {
    finished: bool,
    /// Agent start → the last shop request of the pass.
    seconds: f64,
    /// Shop products whose price, stock or status differ from the seed.
    products_updated: usize,
    shop_products: usize,
    products_per_second: f64,
    /// Agent start → its three full passes (stock, prices, catalogue) logged done.
    agent_read_seconds: Option<f64>,
    /// Agent start → the last message it sent to SQS in the pass.
    agent_sent_seconds: Option<f64>,
    sqs_messages: u64,
    sqs_bytes: u64,
    sqs_messages_by_kind: BTreeMap<String, u64>,
    /// Records the cloud's `ingest` applied (of those the agent sent).
    records_applied: u64,
    records_sent: u64,
    records_applied_per_second: f64,
    shop_requests: u64,
    shop_requests_by_endpoint: BTreeMap<String, u64>,
    shop_rate_limited: u64,
    agent_peak_rss_mib: f64,
    agent_cpu_seconds: f64,
    agent_cpu_per_second: f64,
    /// CPU seconds over the pass of each process (children included).
    cpu_seconds_by_process: BTreeMap<String, f64>,
    parked_records: Option<usize>,
}

#[derive(Serialize, Default)]
struct Idle {
    seconds: f64,
    agent_rss_mib: f64,
    agent_cpu_per_second: f64,
    cursor_polls: usize,
    cursor_poll_statements_median: Option<u64>,
    cursor_poll_rows_median: Option<u64>,
    /// What the ERP stand-in's engine did per idle poll (SQLite's counters,
    /// `optima_standin::work`): rows stepped through by whole-table or
    /// whole-index scans, and virtual-machine steps (all rows read).
    erp_full_scan_steps_per_poll: Option<f64>,
    erp_vm_steps_per_poll: Option<f64>,
    erp_statements_per_poll: Option<f64>,
}

#[derive(Serialize, Default)]
struct Delay {
    measured: usize,
    timed_out: usize,
    skipped: usize,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    max_ms: Option<f64>,
    mean_ms: Option<f64>,
    sqs_messages: u64,
    shop_requests: u64,
}

// ---------------------------------------------------------------- the agent's log

#[derive(Default)]
struct AgentLog {
    messages: u64,
    bytes: u64,
    by_kind: BTreeMap<String, u64>,
    passes_done: usize,
    /// (statements, rows) per cursor poll line.
    cursor_polls: Vec<(u64, u64)>,
}

/// The value of `key=` in a tracing line (up to the next space).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!(" {key}=");
    let start = line.find(&pattern)? + pattern.len();
    let rest = &line[start..];
    Some(rest.split_whitespace().next().unwrap_or(rest))
}

/// Records the agent staged in its full passes (`pass done ... changed=N`).
fn records_sent(agent_log: &Path) -> u64 {
    std::fs::read_to_string(agent_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("pass done"))
        .filter_map(|l| field(l, "changed").and_then(|n| n.parse::<u64>().ok()))
        .sum()
}

fn read_agent_log(path: &Path) -> AgentLog {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut log = AgentLog::default();
    for line in text.lines() {
        if line.contains(" sent ") || line.contains(": sent") {
            if let Some(bytes) = field(line, "bytes").and_then(|b| b.parse::<u64>().ok()) {
                let kind = field(line, "kind").unwrap_or("?").to_owned();
                // Heartbeats are counted by kind only: they are not the sync.
                if kind != "heartbeat" {
                    log.messages += 1;
                    log.bytes += bytes;
                }
                *log.by_kind.entry(kind).or_default() += 1;
            }
        } else if line.contains("pass done") {
            log.passes_done += 1;
        } else if line.contains("cursor poll") {
            let number = |k| field(line, k).and_then(|v| v.parse::<u64>().ok());
            if let (Some(s), Some(r)) = (number("statements"), number("rows")) {
                log.cursor_polls.push((s, r));
            }
        }
    }
    log
}

/// Records `ingest` applied so far (its `records applied ... records=N` lines).
/// The ERP stand-in's last logged counters: (statements, full-scan steps,
/// VM steps).
fn last_erp_work(erp_log: &Path) -> Option<(u64, u64, u64)> {
    let text = std::fs::read_to_string(erp_log).ok()?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains(" work ") || l.ends_with(" work"))?;
    let field = |name: &str| -> Option<u64> {
        let at = line.find(&format!("{name}="))? + name.len() + 1;
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some((
        field("statements")?,
        field("full_scan_steps")?,
        field("vm_steps")?,
    ))
}

fn records_applied(functions_log: &Path) -> u64 {
    std::fs::read_to_string(functions_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("records applied"))
        .filter_map(|l| field(l, "records").and_then(|n| n.parse::<u64>().ok()))
        .sum()
}

// ---------------------------------------------------------------- the shop and the cloud

async fn all_products(
    client: &reqwest::Client,
    shop: &WooStandinProcess,
) -> anyhow::Result<Vec<Value>> {
    client
        .get(format!("{}/__standin/products", shop.base_url))
        .send()
        .await
        .context("GET /__standin/products")?
        .error_for_status()?
        .json()
        .await
        .context("the shop's product list")
}

/// A product's stock in the shop (control API, one kept-alive client).
async fn stock_in_shop(
    client: &reqwest::Client,
    shop: &WooStandinProcess,
    sku: &str,
) -> anyhow::Result<Option<i64>> {
    let response = client
        .get(format!("{}/__standin/products/{sku}", shop.base_url))
        .send()
        .await
        .with_context(|| format!("GET /__standin/products/{sku}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let product: Value = response.error_for_status()?.json().await?;
    Ok(product["stock_quantity"].as_i64())
}

fn is_updated(product: &Value) -> bool {
    product["regular_price"] != SEED_PRICE
        || product["stock_quantity"].as_i64() != Some(SEED_STOCK)
        || product["status"] != "publish"
}

async fn shop_requests(shop: &WooStandinProcess) -> anyhow::Result<u64> {
    shop.stats().await?["total_requests"]
        .as_u64()
        .context("total_requests in the shop's stats")
}

fn median(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The shop stand-in seeded with `skus`, as `WooStandinProcess::start_with`
/// does but waiting longer: seeding 100,000 products takes it over 30 s.
fn start_shop(skus: &[String], dir: &Path) -> anyhow::Result<WooStandinProcess> {
    let port = harness::free_port()?;
    let consumer_key = format!("ck_{}", harness::cloud::random_secret());
    let consumer_secret = format!("cs_{}", harness::cloud::random_secret());
    let seed = dir.join("woo-seed.txt");
    std::fs::write(&seed, skus.join("\n"))?;
    let mut command = std::process::Command::new(harness::paths::workspace_bin("woo-standin")?);
    command
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--key", &consumer_key, "--secret", &consumer_secret])
        .arg("--seed-products-from-skus")
        .arg(&seed);
    let mut process =
        harness::process::Process::spawn("woo-standin", command, &dir.join("woo-standin.log"))?;
    let line = process.wait_for_log("listening: ", Duration::from_secs(900))?;
    let base_url = line
        .split_once("listening: ")
        .map(|(_, url)| url.trim().to_owned())
        .context("no URL printed")?;
    Ok(WooStandinProcess {
        process,
        base_url,
        consumer_key,
        consumer_secret,
        webhook_secret: harness::cloud::random_secret(),
    })
}

// ---------------------------------------------------------------- main

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.products < 10 {
        bail!("--products must be at least 10 (the seed's bad rows)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stamp = chrono::Utc::now();
    let dir = local_dir().join(format!(
        "bench-sync-{}-{}",
        args.products,
        stamp.format("%Y%m%dT%H%M%S")
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("working folder: {}", dir.display());
    let result = runtime.block_on(run(&args, &dir, stamp));
    if let Ok(figures) = &result {
        let json = serde_json::to_string_pretty(figures)?;
        println!("\n{json}");
        if let Some(out) = &args.out {
            std::fs::write(out, json + "\n")
                .with_context(|| format!("writing {}", out.display()))?;
            println!("written to {}", out.display());
        }
    }
    if args.keep || result.is_err() {
        println!("logs and state kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|_| ())
}

async fn run(
    args: &Args,
    dir: &Path,
    stamp: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Figures> {
    let tick = clock_ticks();
    let mut figures = Figures {
        date_utc: stamp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        products: args.products,
        workdir: dir.display().to_string(),
        ..Figures::default()
    };
    figures.machine.cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    figures.machine.load_average_start = load_average();
    let sync = format!(
        "\n[sync]\npoll_seconds = {}\noverlap_seconds = 10\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n",
        args.poll_seconds
    );
    figures
        .settings
        .insert("agent_sync".into(), Value::String(sync.trim().to_owned()));
    figures.settings.insert(
        "shop_requests_per_second".into(),
        Value::from(args.shop_rate),
    );

    // The ERP, seeded here (in this process) so seeding is timed apart.
    let db = dir.join("optima.sqlite");
    println!("seeding the ERP stand-in with {} products…", args.products);
    let t = Instant::now();
    let seeded = seed_database(
        &db,
        &SeedOptions {
            products: args.products,
            seed: 1,
        },
    )
    .context("seeding the ERP stand-in")?;
    figures.seed_erp_seconds = round(t.elapsed().as_secs_f64(), 1);
    println!(
        "  {} products, {} stock rows in {:.1} s ({} deliberately bad rows)",
        seeded.products,
        seeded.stock_rows,
        figures.seed_erp_seconds,
        seeded.bad_skus.len()
    );
    let documents_seeded = seeded.documents;
    if args.history_documents > 0 {
        println!("adding {} history documents…", args.history_documents);
        let t = Instant::now();
        optima_standin::seed::add_history_documents(&db, args.history_documents)
            .context("adding history documents")?;
        figures.add_history_seconds = round(t.elapsed().as_secs_f64(), 1);
        println!("  in {:.1} s", figures.add_history_seconds);
    }
    figures.documents = documents_seeded + args.history_documents;
    let erp = OptimaStandin::start(&db, args.products, dir)?;
    let skus = erp.skus().await.context("reading the ERP's SKUs")?;
    println!(
        "starting the shop stand-in with {} SKUs, the emulator, the stack and the functions…",
        skus.len()
    );
    let t = Instant::now();
    let shop = start_shop(&skus, dir)?;
    let cloud = LocalCloud::start_with(
        dir,
        "bench",
        Some(shop.shop_parameters(
            "sklep",
            "Detaliczna",
            &["MAG"],
            args.shop_rate,
            args.shop_rate,
        )),
    )?;
    figures.start_cloud_seconds = round(t.elapsed().as_secs_f64(), 1);
    let config = dir.join("agent.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 30, &sync)?;
    let client = reqwest::Client::new();
    let requests_before = shop_requests(&shop).await?;
    let stats_before = shop.stats().await?;

    // 1. The first full sync.
    let agent_log = dir.join("agent.log");
    let started = Instant::now();
    let mut agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &agent_log,
        &[
            ("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str()),
            ("RUST_LOG", "info,agent=debug,tiberius=error"),
        ],
    )?;
    let agent_pid = agent.pid().context("the agent's pid")?;
    let cpu = CpuMeter::start(&[
        ("agent", Some(agent_pid)),
        ("functions local-host", cloud.host.pid()),
        (
            "aws emulator (moto)",
            find_emulator_pid(cloud.emulator.port),
        ),
        ("woo-standin", shop.process.pid()),
        ("optima-standin", erp.process.pid()),
    ]);
    let agent_cpu0 = cpu_ticks(agent_pid, false).unwrap_or(0);
    println!("agent started (pid {agent_pid}); waiting for the first full sync…");

    let deadline = started + Duration::from_secs(args.pass_timeout_minutes * 60);
    let list_every = Duration::from_secs((args.products as u64 / 5000).max(2));
    let mut peak_rss = 0u64;
    let mut last_requests = requests_before;
    let mut last_request_change = started;
    let mut last_messages = 0u64;
    let mut last_sent_at: Option<Duration> = None;
    let mut read_done_at: Option<Duration> = None;
    let mut updated = 0usize;
    let mut shop_products = skus.len();
    let mut last_list = started;
    let mut last_print = started;
    let mut last_log_read = started;
    let mut quiet_checks = 0;
    let finished = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(rss) = rss_kib(agent_pid) {
            peak_rss = peak_rss.max(rss);
        }
        if !agent.is_running() {
            bail!(
                "the agent exited during the first pass; see {}",
                agent_log.display()
            );
        }
        if last_log_read.elapsed() < Duration::from_secs(1) {
            continue;
        }
        last_log_read = Instant::now();
        let log = read_agent_log(&agent_log);
        if log.messages != last_messages {
            last_messages = log.messages;
            last_sent_at = Some(started.elapsed());
        }
        if read_done_at.is_none() && log.passes_done >= 3 {
            read_done_at = Some(started.elapsed());
        }
        let requests = shop_requests(&shop).await?;
        if requests != last_requests {
            last_requests = requests;
            last_request_change = Instant::now();
            quiet_checks = 0;
        }
        if last_list.elapsed() >= list_every {
            last_list = Instant::now();
            let products = all_products(&client, &shop).await?;
            shop_products = products.len();
            updated = products.iter().filter(|p| is_updated(p)).count();
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            println!(
                "  {:>6.0} s: {updated}/{shop_products} shop products updated, {} records applied by ingest, {} shop requests, {} SQS messages ({} KiB) sent, agent RSS {:.1} MiB",
                started.elapsed().as_secs_f64(),
                records_applied(&dir.join("functions.log")),
                requests.saturating_sub(requests_before),
                log.messages,
                log.bytes / 1024,
                mib(rss_kib(agent_pid).unwrap_or(0)),
            );
        }
        // Done: the agent read everything, no shop request for 10 s, the
        // queues empty three checks in a row.
        if read_done_at.is_some()
            && log.messages > 0
            && last_request_change.elapsed() > Duration::from_secs(10)
        {
            if cloud.queued_messages().await? == 0 {
                quiet_checks += 1;
            } else {
                quiet_checks = 0;
            }
            if quiet_checks >= 3 {
                break true;
            }
        }
        if Instant::now() > deadline {
            println!(
                "  gave up waiting after {} minutes",
                args.pass_timeout_minutes
            );
            break false;
        }
    };
    let pass_end = if finished {
        last_request_change
    } else {
        Instant::now()
    };
    let pass_seconds = pass_end.duration_since(started).as_secs_f64();
    let agent_cpu1 = cpu_ticks(agent_pid, false).unwrap_or(agent_cpu0);
    let cpu_by_process = cpu.seconds();
    let products = all_products(&client, &shop).await?;
    let log = read_agent_log(&agent_log);
    let applied = records_applied(&dir.join("functions.log"));
    let records_sent = records_sent(&dir.join("agent.log"));
    let stats = shop.stats().await?;
    let endpoints = |s: &Value| -> BTreeMap<String, u64> {
        s["requests_by_endpoint"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let before_by_endpoint = endpoints(&stats_before);
    let parked = cloud
        .status()
        .await
        .ok()
        .and_then(|s| s["parked_records"].as_array().map(Vec::len));
    let agent_cpu_seconds = agent_cpu1.saturating_sub(agent_cpu0) as f64 / tick;
    figures.first_pass = FirstPass {
        finished,
        seconds: round(pass_seconds, 1),
        products_updated: products.iter().filter(|p| is_updated(p)).count(),
        shop_products: products.len(),
        products_per_second: 0.0,
        agent_read_seconds: read_done_at.map(|d| round(d.as_secs_f64(), 1)),
        agent_sent_seconds: last_sent_at.map(|d| round(d.as_secs_f64(), 1)),
        sqs_messages: log.messages,
        sqs_bytes: log.bytes,
        sqs_messages_by_kind: log.by_kind.clone(),
        records_applied: applied,
        records_sent,
        records_applied_per_second: round(applied as f64 / pass_seconds.max(0.001), 1),
        shop_requests: stats["total_requests"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(requests_before),
        shop_requests_by_endpoint: endpoints(&stats)
            .into_iter()
            .map(|(k, v)| {
                let before = before_by_endpoint.get(&k).copied().unwrap_or(0);
                (k, v.saturating_sub(before))
            })
            .filter(|(_, v)| *v > 0)
            .collect(),
        shop_rate_limited: stats["rate_limited"].as_u64().unwrap_or(0),
        agent_peak_rss_mib: round(mib(peak_rss), 1),
        agent_cpu_seconds: round(agent_cpu_seconds, 2),
        agent_cpu_per_second: round(agent_cpu_seconds / pass_seconds.max(0.001), 3),
        cpu_seconds_by_process: cpu_by_process
            .into_iter()
            .map(|(k, v)| (k, round(v, 1)))
            .collect(),
        parked_records: parked,
    };
    figures.first_pass.products_per_second = round(
        figures.first_pass.products_updated as f64 / pass_seconds.max(0.001),
        1,
    );
    print_first_pass(&figures.first_pass);

    // 2. Idle: nothing changes.
    println!("sampling the idle agent for {} s…", args.idle_seconds);
    let erp_log = dir.join("optima-standin.log");
    // The stand-in logs its counters once a second when they changed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let work_before = last_erp_work(&erp_log);
    let polls_before = read_agent_log(&agent_log).cursor_polls.len();
    let idle_start = Instant::now();
    let idle_cpu0 = cpu_ticks(agent_pid, false).unwrap_or(0);
    let mut rss_samples = Vec::new();
    while idle_start.elapsed() < Duration::from_secs(args.idle_seconds) {
        if let Some(rss) = rss_kib(agent_pid) {
            rss_samples.push(rss);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let idle_seconds = idle_start.elapsed().as_secs_f64();
    let idle_cpu = cpu_ticks(agent_pid, false)
        .unwrap_or(idle_cpu0)
        .saturating_sub(idle_cpu0) as f64
        / tick;
    let polls: Vec<(u64, u64)> = read_agent_log(&agent_log)
        .cursor_polls
        .into_iter()
        .skip(polls_before)
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let erp_per_poll = match (work_before, last_erp_work(&erp_log)) {
        (Some(before), Some(after)) if !polls.is_empty() => {
            let n = polls.len() as f64;
            Some((
                round((after.1 - before.1) as f64 / n, 1),
                round((after.2 - before.2) as f64 / n, 1),
                round((after.0 - before.0) as f64 / n, 1),
            ))
        }
        _ => None,
    };
    figures.idle = Idle {
        seconds: round(idle_seconds, 1),
        agent_rss_mib: round(mib(median(rss_samples).unwrap_or(0)), 1),
        agent_cpu_per_second: round(idle_cpu / idle_seconds, 4),
        cursor_polls: polls.len(),
        cursor_poll_statements_median: median(polls.iter().map(|p| p.0).collect()),
        cursor_poll_rows_median: median(polls.iter().map(|p| p.1).collect()),
        erp_full_scan_steps_per_poll: erp_per_poll.map(|w| w.0),
        erp_vm_steps_per_poll: erp_per_poll.map(|w| w.1),
        erp_statements_per_poll: erp_per_poll.map(|w| w.2),
    };
    println!(
        "  ERP engine per idle poll: {:?} statements, {:?} full-scan steps, {:?} VM steps ({} documents in TraNag)",
        figures.idle.erp_statements_per_poll,
        figures.idle.erp_full_scan_steps_per_poll,
        figures.idle.erp_vm_steps_per_poll,
        figures.documents
    );
    println!(
        "  agent idle: RSS {:.1} MiB, CPU {:.4} s/s; {} cursor polls, median {:?} statements, {:?} rows",
        figures.idle.agent_rss_mib,
        figures.idle.agent_cpu_per_second,
        figures.idle.cursor_polls,
        figures.idle.cursor_poll_statements_median,
        figures.idle.cursor_poll_rows_median
    );

    if !finished {
        // The cloud still works through the backlog: a sale would queue
        // behind it (FIFO), so the delay is not measured.
        println!("  (the delay is not measured: the first sync has not finished)");
        figures.machine.load_average_end = load_average();
        return Ok(figures);
    }

    // 3. ERP sale → shop stock, one at a time.
    let mut candidates: Vec<String> = products
        .iter()
        .filter(|p| p["status"] == "publish")
        .filter(|p| p["stock_quantity"].as_i64().is_some_and(|s| s >= 2))
        .filter_map(|p| p["sku"].as_str().map(str::to_owned))
        .collect();
    // Spread over the catalogue, not the first few hundred.
    let step = (candidates.len() / args.changes.max(1)).max(1);
    candidates = candidates.into_iter().step_by(step).collect();
    println!(
        "measuring {} sales of 1 unit, one at a time, over {} products…",
        args.changes,
        candidates.len()
    );
    let messages_before = read_agent_log(&agent_log).messages;
    let requests_before = shop_requests(&shop).await?;
    let mut office = Simulator::open(&db).context("opening the office simulator")?;
    let mut delays = Vec::new();
    let (mut timed_out, mut skipped) = (0, 0);
    for i in 0..args.changes {
        let Some(sku) = candidates.get(i % candidates.len().max(1)) else {
            break;
        };
        let before = stock_in_shop(&client, &shop, sku).await?;
        let Some(before) = before.filter(|s| *s >= 2) else {
            skipped += 1;
            continue;
        };
        // One sale at a time, each right after the previous one showed,
        // would always follow the agent's poll by the same margin and
        // measure exactly one poll interval; a random part of the interval
        // first puts each sale at a random point of the poll cycle, as
        // sales in an office are.
        let phase = rand::random::<f64>() * args.poll_seconds;
        tokio::time::sleep(Duration::from_secs_f64(phase)).await;
        let sold_at = Instant::now();
        office
            .perform(Action::Sale {
                sku: sku.clone(),
                warehouse: "MAG".into(),
                qty: "1".parse().context("quantity")?,
                receipt: true,
            })
            .with_context(|| format!("selling {sku}"))?;
        let limit = sold_at + Duration::from_secs(60);
        loop {
            let now = stock_in_shop(&client, &shop, sku).await?;
            if now == Some(before - 1) {
                delays.push(sold_at.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            if Instant::now() > limit {
                timed_out += 1;
                println!(
                    "  {sku}: not in the shop after 60 s (shop shows {now:?}, expected {})",
                    before - 1
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if (i + 1) % 20 == 0 {
            println!("  {} / {} sales", i + 1, args.changes);
        }
    }
    let mean = (!delays.is_empty()).then(|| delays.iter().sum::<f64>() / delays.len() as f64);
    delays.sort_by(f64::total_cmp);
    figures.delay = Delay {
        measured: delays.len(),
        timed_out,
        skipped,
        p50_ms: percentile(&delays, 50.0).map(|v| round(v, 0)),
        p95_ms: percentile(&delays, 95.0).map(|v| round(v, 0)),
        max_ms: delays.last().map(|v| round(*v, 0)),
        mean_ms: mean.map(|v| round(v, 0)),
        sqs_messages: read_agent_log(&agent_log)
            .messages
            .saturating_sub(messages_before),
        shop_requests: shop_requests(&shop).await?.saturating_sub(requests_before),
    };
    println!(
        "  ERP sale → shop stock over {} sales: p50 {:?} ms, p95 {:?} ms, max {:?} ms ({} timed out, {} skipped)",
        figures.delay.measured,
        figures.delay.p50_ms,
        figures.delay.p95_ms,
        figures.delay.max_ms,
        timed_out,
        skipped
    );
    figures.machine.load_average_end = load_average();
    agent.kill();
    Ok(figures)
}

fn print_first_pass(pass: &FirstPass) {
    println!(
        "first full sync {}: {:.1} s, {}/{} shop products updated ({:.1} products/s)",
        if pass.finished {
            "done"
        } else {
            "NOT finished"
        },
        pass.seconds,
        pass.products_updated,
        pass.shop_products,
        pass.products_per_second
    );
    println!(
        "  agent: read everything at {:?} s, last SQS send at {:?} s; {} messages, {} bytes; CPU {:.2} s ({:.3} s/s); peak RSS {:.1} MiB",
        pass.agent_read_seconds,
        pass.agent_sent_seconds,
        pass.sqs_messages,
        pass.sqs_bytes,
        pass.agent_cpu_seconds,
        pass.agent_cpu_per_second,
        pass.agent_peak_rss_mib
    );
    println!(
        "  shop: {} API requests ({} answered 429); cloud applied {} of {} records ({:.1} records/s)",
        pass.shop_requests,
        pass.shop_rate_limited,
        pass.records_applied,
        pass.records_sent,
        pass.records_applied_per_second
    );
    println!(
        "  CPU seconds over the pass: {:?}",
        pass.cpu_seconds_by_process
    );
}
