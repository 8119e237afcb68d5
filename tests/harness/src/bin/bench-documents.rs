//! Documents back to the buyer, on the local run's real pieces: N orders
//! placed in the WooCommerce stand-in become ROs in the Optima stand-in
//! (webhook, command, agent), then the office realises them one by one at
//! a steady pace (the simulator's `Realise`: FS + WZ) and records each
//! invoice's KSeF number (`KsefAccepted`). Measured per order:
//!
//! 1. FS in Optima → the invoice link in a customer note on the shop order
//!    (from the simulator's action returning to the note seen);
//! 2. KSeF number in Optima → the KSeF number on the PDF behind that link
//!    (the cloud renders the buyer's copy again under the same link).
//!
//! Prints p50, p95 and max of both, and fails unless every order got its
//! link and its KSeF number in time, with one invoice note each.
//!
//! `cargo build --release -p agent -p local-host -p optima-standin -p woo-standin -p harness --bins`
//! then `./target/release/bench-documents --orders 100`.
//! A benchmark, not a test: it checks only that every document arrived once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use harness::bench::{git_commit, load_average, percentile, round};
use harness::cloud::{LocalCloud, start_agent};
use harness::paths::local_dir;
use harness::standins::{OptimaStandin, WooStandinProcess, woo_buyer_order};
use optima_standin::simulator::{Action, Simulator};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tiberius::Query;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

#[derive(Parser)]
#[command(about = "Benchmarks invoices and KSeF numbers from the ERP back to the shop")]
struct Args {
    /// Orders placed, realised and given a KSeF number.
    #[arg(long, default_value_t = 100)]
    orders: usize,
    /// Milliseconds between two realisations (and between two KSeF numbers
    /// recorded): the office's pace. Below ~300 ms the local cloud's
    /// invoice path is the bottleneck (docs/BENCHMARKS.md) and the delays
    /// measure its queue, not one document.
    #[arg(long, default_value_t = 500)]
    pace_ms: u64,
    /// Milliseconds between two checks of one order's notes or PDF.
    #[arg(long, default_value_t = 200)]
    poll_ms: u64,
    /// Checks in flight at once, across all orders.
    #[arg(long, default_value_t = 8)]
    poll_concurrency: usize,
    /// The agent's `[orders] progress_seconds` (its follower's round interval).
    #[arg(long, default_value_t = 1)]
    progress_seconds: u64,
    /// Give up on one order's link (or KSeF number) after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_seconds: u64,
    /// Keep the working folder (logs, databases, per-order delays).
    #[arg(long)]
    keep: bool,
}

/// Orders placed in the shop at once.
const PLACE_CONCURRENCY: usize = 5;
/// How long every order may take to be an RO the cloud lists as awaiting
/// realisation.
const READY_TIMEOUT: Duration = Duration::from_secs(600);

fn agent_toml(progress_seconds: u64) -> String {
    format!(
        "\n[sync]\npoll_seconds = 2\noverlap_seconds = 10\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n\n[orders]\nwarehouse = \"MAG\"\ndefault_payment_form = \"przelew\"\ndefault_shipping_service = \"TRANSPORT\"\ncollective_customer = \"DETAL\"\nprogress_seconds = {progress_seconds}\n"
    )
}

/// One shop order and what became of it.
#[derive(Clone)]
struct Order {
    id: u64,
    number: String,
    ro_id: i64,
}

/// How the checks poll: every `every`, at most `gate`'s permits at once,
/// until `within` has passed; failed checks are counted and retried.
#[derive(Clone)]
struct Poll {
    gate: Arc<Semaphore>,
    every: Duration,
    within: Duration,
    errors: Arc<AtomicUsize>,
    http: reqwest::Client,
}

impl Poll {
    /// Runs `check` until it yields a value: the value and the instant its
    /// answer came back, or `None` after `within` from `since`.
    async fn until<T, F, Fut>(&self, since: Instant, mut check: F) -> Option<(Instant, T)>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
    {
        let deadline = since + self.within;
        loop {
            let answer = {
                let _permit = self.gate.acquire().await.ok()?;
                let answer = check().await;
                (Instant::now(), answer)
            };
            match answer {
                (at, Ok(Some(value))) => return Some((at, value)),
                (_, Ok(None)) => {}
                (_, Err(err)) => {
                    if self.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        println!("a check failed (retried; later failures only counted): {err:#}");
                    }
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(self.every).await;
        }
    }

    /// The PDF behind `link`.
    async fn pdf(&self, link: &str) -> anyhow::Result<Vec<u8>> {
        let answer = self
            .http
            .get(link)
            .send()
            .await
            .with_context(|| format!("fetching {link}"))?
            .error_for_status()
            .with_context(|| format!("fetching {link}"))?;
        let kind = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        anyhow::ensure!(kind == "application/pdf", "{link} answered {kind:?}");
        Ok(answer.bytes().await?.to_vec())
    }
}

/// The PDF's text (`pdftotext`, off the async workers).
async fn pdf_text(pdf: Vec<u8>) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || harness::pdf::text(&pdf)).await?
}

/// The links in the order's customer notes that point at an invoice.
fn invoice_links(order: &Value) -> Vec<String> {
    order["notes"]
        .as_array()
        .map(|notes| {
            notes
                .iter()
                .filter(|n| n["customer_note"] == true)
                .filter_map(|n| {
                    let text = n["note"].as_str()?;
                    let at = text.find("http")?;
                    let link: String = text[at..]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    link.contains("/invoice/").then_some(link)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One office action on the stand-in's database, with what it made.
async fn perform(
    db: &std::path::Path,
    action: Action,
) -> anyhow::Result<optima_standin::simulator::ActionLog> {
    let db = db.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        Ok(Simulator::open(&db)?.perform(action)?)
    })
    .await?
}

/// A KSeF number of the stand-in's seller for order `n` (unique per run).
fn ksef_number(n: usize) -> String {
    format!(
        "7251801126-{}-{:012X}-{:02X}",
        chrono::Utc::now().format("%Y%m%d"),
        0xBE_0000_0000u64 + n as u64,
        n % 256
    )
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// "p50 x s, p95 y s, max z s" of `delays` (seconds).
fn summary(delays: &mut [f64]) -> String {
    delays.sort_by(f64::total_cmp);
    let at =
        |p| percentile(delays, p).map_or("—".to_owned(), |v| format!("{:.2} s", round(v, 2)));
    format!("p50 {}, p95 {}, max {}", at(50.0), at(95.0), at(100.0))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.orders > 0, "--orders must be at least 1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = local_dir().join(format!(
        "bench-documents-{}-{}",
        args.orders,
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("working folder: {}", dir.display());
    let result = runtime.block_on(run(&args, &dir));
    if let Err(err) = &result {
        println!("failed: {err:#}");
    }
    if args.keep || result.is_err() {
        println!("logs and state kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let commit = git_commit();
    println!(
        "commit {}, {} local, load average {} at the start",
        if commit.is_empty() {
            "unknown (not a git checkout)"
        } else {
            &commit
        },
        chrono::Local::now().format("%Y-%m-%d %H:%M"),
        load_average()
    );
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 500, dir)?;
    // Products with stock in MAG for their share of the orders.
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
    if skus.is_empty() || skus.len() * 30 < args.orders {
        bail!(
            "{} stocked products in the ERP stand-in: too few for {} orders",
            skus.len(),
            args.orders
        );
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
        "bench-documents",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 50, 50)),
        &["--schedule-every", "poller=30"],
    )?;
    let webhook = cloud.webhook_url.clone().context("no webhook URL")?;
    shop.register_order_webhooks(&format!("{webhook}/sklep"))
        .await?;
    let config = dir.join("agent.toml");
    cloud.write_agent_config_with(
        &config,
        "biuro",
        &erp.connection_string,
        30,
        &agent_toml(args.progress_seconds),
    )?;
    let _agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &dir.join("agent.log"),
        &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
    )?;
    // Let the agent's first full pass go by.
    tokio::time::sleep(Duration::from_secs(15)).await;

    // The orders, placed a few at a time (not measured).
    println!("placing {} orders…", args.orders);
    let shop = Arc::new(shop);
    let gate = Arc::new(Semaphore::new(PLACE_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for i in 0..args.orders {
        let shop = shop.clone();
        let sku = skus[i % skus.len()].clone();
        let permit = gate.clone().acquire_owned().await?;
        tasks.spawn(async move {
            let _permit = permit;
            let order = shop
                .place_order(woo_buyer_order("Faktura", i, json!([[sku, 1]])))
                .await?;
            let id = order["id"].as_u64().context("the placed order's id")?;
            let number = order["number"]
                .as_str()
                .context("the placed order's number")?
                .to_owned();
            anyhow::Ok((id, number))
        });
    }
    let mut placed: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (id, number) = joined?.context("placing an order")?;
        placed.insert(number, id);
    }

    // Every order an RO in Optima (once), and listed by the cloud as
    // awaiting realisation (the agent's acknowledgement and first progress
    // are in).
    let started = Instant::now();
    let orders: Vec<Order> = loop {
        let rows = Query::new(
            "SELECT TrN_TrNID, TrN_NumerObcy FROM CDN.TraNag \
             WHERE TrN_ImportRowId IS NOT NULL AND TrN_NumerPelny LIKE 'RO/%'",
        )
        .query(&mut sql)
        .await?
        .into_first_result()
        .await?;
        let mut ros: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for row in &rows {
            if let (Some(id), Some(number)) = (
                row.get::<i32, _>("TrN_TrNID"),
                row.get::<&str, _>("TrN_NumerObcy"),
            ) {
                ros.entry(number.to_owned())
                    .or_default()
                    .push(i64::from(id));
            }
        }
        // (The seeded database has ROs of its own, without a shop order number.)
        if let Some((number, ids)) = ros
            .iter()
            .find(|(number, ids)| ids.len() > 1 && placed.contains_key(*number))
        {
            bail!("order {number} was written twice: ROs {ids:?}");
        }
        let status = cloud.status().await?;
        let listed: std::collections::BTreeSet<String> = status["awaiting_realisation"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|o| o["order_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let ready: Vec<Order> = placed
            .iter()
            .filter_map(|(number, id)| {
                let ro_id = *ros.get(number)?.first()?;
                listed.contains(&id.to_string()).then(|| Order {
                    id: *id,
                    number: number.clone(),
                    ro_id,
                })
            })
            .collect();
        if ready.len() == placed.len() {
            break ready;
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!(
                "after {READY_TIMEOUT:?}: {} of {} orders are ROs, {} awaiting realisation on /status",
                ros.len(),
                placed.len(),
                ready.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "{} orders are ROs awaiting realisation ({:.1} s after the last was placed); load average {}",
        orders.len(),
        seconds(started.elapsed()),
        load_average()
    );

    let poll = Poll {
        gate: Arc::new(Semaphore::new(args.poll_concurrency.max(1))),
        every: Duration::from_millis(args.poll_ms),
        within: Duration::from_secs(args.timeout_seconds),
        errors: Arc::default(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
    };
    let pace = Duration::from_millis(args.pace_ms);

    // 1. The office realises each RO; the shop shows the invoice link.
    println!(
        "realising {} ROs, one every {} ms…",
        orders.len(),
        args.pace_ms
    );
    let phase = Instant::now();
    let mut ticker = tokio::time::interval(pace);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut waits = JoinSet::new();
    for (n, order) in orders.iter().enumerate() {
        ticker.tick().await;
        let log = perform(
            &erp.db,
            Action::Realise {
                ro_id: order.ro_id,
                tracking: format!("PL{:010}", 7_000_000_000u64 + n as u64),
            },
        )
        .await
        .with_context(|| format!("realising RO {} of order {}", order.ro_id, order.number))?;
        let realised = Instant::now();
        let realised_utc = chrono::Utc::now();
        let fs = log
            .documents
            .iter()
            .find(|d| d.symbol == "FS")
            .cloned()
            .with_context(|| format!("no FS made by realising order {}", order.number))?;
        let (poll, shop) = (poll.clone(), shop.clone());
        let order_id = order.id;
        waits.spawn(async move {
            let found = poll
                .until(realised, || async {
                    let links = invoice_links(&shop.order(order_id).await?);
                    Ok(links.into_iter().next())
                })
                .await;
            (
                n,
                fs,
                realised_utc,
                found.map(|(at, link)| (at.saturating_duration_since(realised), link)),
            )
        });
    }
    let mut invoices = BTreeMap::new();
    let mut link_delays = Vec::new();
    let mut no_link = Vec::new();
    while let Some(joined) = waits.join_next().await {
        let (n, fs, realised_utc, found) = joined?;
        match found {
            Some((delay, link)) => {
                link_delays.push(seconds(delay));
                invoices.insert(n, (fs, link, delay, realised_utc));
            }
            None => no_link.push(orders[n].number.clone()),
        }
    }
    println!(
        "invoice links: {} of {} orders in {:.1} s; FS → link {}; load average {}",
        invoices.len(),
        orders.len(),
        seconds(phase.elapsed()),
        summary(&mut link_delays),
        load_average()
    );

    // What the buyer sees before the KSeF number: the invoice, awaiting it
    // (not measured; also the baseline the second phase compares with).
    let mut baselines = BTreeMap::new();
    for (n, (fs, link, _, _)) in &invoices {
        let pdf = poll.pdf(link).await?;
        let text = pdf_text(pdf.clone()).await?;
        anyhow::ensure!(
            text.contains(&fs.number),
            "order {}: the PDF at {link} does not name {}",
            orders[*n].number,
            fs.number
        );
        baselines.insert(*n, Sha256::digest(&pdf).to_vec());
    }

    // 2. The office records each FS's KSeF number; the PDF behind the link shows it.
    println!(
        "recording {} KSeF numbers, one every {} ms…",
        invoices.len(),
        args.pace_ms
    );
    let phase = Instant::now();
    let mut ticker = tokio::time::interval(pace);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut waits = JoinSet::new();
    for (n, (fs, link, _, _)) in &invoices {
        ticker.tick().await;
        let ksef = ksef_number(*n);
        perform(
            &erp.db,
            Action::KsefAccepted {
                document_id: fs.id,
                ksef_number: ksef.clone(),
            },
        )
        .await
        .with_context(|| format!("recording the KSeF number of {}", fs.number))?;
        let recorded = Instant::now();
        let recorded_utc = chrono::Utc::now();
        let poll = poll.clone();
        let link = link.clone();
        // The PDF's hash when last read: only a changed PDF is read as text.
        let seen = Arc::new(std::sync::Mutex::new(
            baselines.get(n).cloned().unwrap_or_default(),
        ));
        let n = *n;
        waits.spawn(async move {
            let found = poll
                .until(recorded, || {
                    let (poll, link, ksef, seen) =
                        (poll.clone(), link.clone(), ksef.clone(), seen.clone());
                    async move {
                        let pdf = poll.pdf(&link).await?;
                        let hash = Sha256::digest(&pdf).to_vec();
                        {
                            let mut seen = seen
                                .lock()
                                .map_err(|_| anyhow::anyhow!("a check panicked"))?;
                            if *seen == hash {
                                return Ok(None);
                            }
                            *seen = hash;
                        }
                        let text = pdf_text(pdf).await?;
                        Ok(text.contains(&ksef).then_some(()))
                    }
                })
                .await;
            (
                n,
                found.map(|(at, ())| (at.saturating_duration_since(recorded), recorded_utc)),
            )
        });
    }
    let mut ksef_delays = Vec::new();
    let mut per_order = BTreeMap::new();
    let mut no_ksef = Vec::new();
    while let Some(joined) = waits.join_next().await {
        let (n, found) = joined?;
        match found {
            Some((delay, recorded_utc)) => {
                ksef_delays.push(seconds(delay));
                per_order.insert(n, (delay, recorded_utc));
            }
            None => no_ksef.push(orders[n].number.clone()),
        }
    }
    println!(
        "KSeF numbers on the PDF: {} of {} in {:.1} s; KSeF number → on the PDF {}; load average {}",
        per_order.len(),
        invoices.len(),
        seconds(phase.elapsed()),
        summary(&mut ksef_delays),
        load_average()
    );

    // One invoice note per order, after both phases.
    let mut twice = Vec::new();
    for order in &orders {
        let links = invoice_links(&shop.order(order.id).await?);
        if links.len() > 1 {
            twice.push(format!("{} ({} notes)", order.number, links.len()));
        }
    }
    // Per order, with the UTC instants of the office's actions (to line
    // up with the logs' timestamps).
    let mut csv =
        String::from("order,fs,realised_utc,fs_to_link_s,ksef_recorded_utc,ksef_to_pdf_s\n");
    let utc = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    for (n, (fs, _, delay, realised_utc)) in &invoices {
        let (recorded, ksef_delay) = per_order.get(n).map_or_else(Default::default, |(d, at)| {
            (utc(at), format!("{:.3}", seconds(*d)))
        });
        csv.push_str(&format!(
            "{},{},{},{:.3},{recorded},{ksef_delay}\n",
            orders[*n].number,
            fs.number,
            utc(realised_utc),
            seconds(*delay),
        ));
    }
    std::fs::write(dir.join("delays.csv"), csv).context("writing delays.csv")?;

    println!();
    println!(
        "orders {}; agent progress_seconds {}; pace {} ms; poll every {} ms, {} at once; checks failed and retried: {}",
        orders.len(),
        args.progress_seconds,
        args.pace_ms,
        args.poll_ms,
        args.poll_concurrency,
        poll.errors.load(Ordering::Relaxed)
    );
    println!(
        "FS in Optima → invoice link in the shop: {} of {}, {}",
        link_delays.len(),
        orders.len(),
        summary(&mut link_delays)
    );
    println!(
        "KSeF number in Optima → on the buyer's PDF: {} of {}, {}",
        ksef_delays.len(),
        invoices.len(),
        summary(&mut ksef_delays)
    );
    println!(
        "invoice notes twice: {}; load average {} at the end",
        twice.len(),
        load_average()
    );
    if !no_link.is_empty() || !no_ksef.is_empty() || !twice.is_empty() {
        bail!(
            "within {} s: no invoice link for {:?}; no KSeF number for {:?}; the invoice note twice on {:?}",
            args.timeout_seconds,
            no_link,
            no_ksef,
            twice
        );
    }
    Ok(())
}
