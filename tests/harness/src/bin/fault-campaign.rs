//! The fault campaign (issue #15): the real pieces under a generated office
//! and order stream while faults of every kind are injected; then an
//! invariant checker waits for the system to converge. Prints the faults
//! injected by kind and the verdicts; exits non-zero on any violation.
//!
//! `cargo build --workspace --bins && cargo run -p harness --bin fault-campaign -- --seed 1 --faults 600 --orders 400 --duration 1800`
//! (see docs/BENCHMARKS.md for the figures of a run).

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use harness::campaign::{CampaignOptions, FaultKind, run};
use harness::paths::local_dir;

#[derive(Parser)]
#[command(about = "Injects faults of every kind into the local pieces and checks the invariants")]
struct Args {
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Faults to inject (counted once proven landed).
    #[arg(long, default_value_t = 500)]
    faults: usize,
    /// Orders placed in the shop over the duration.
    #[arg(long, default_value_t = 300)]
    orders: usize,
    /// Seconds the office simulator and the order stream run.
    #[arg(long, default_value_t = 1200)]
    duration: u64,
    /// Products in the ERP.
    #[arg(long, default_value_t = 200)]
    products: usize,
    /// Seconds the system gets to converge after the last fault.
    #[arg(long, default_value_t = 600)]
    converge_timeout: u64,
    /// Fault kinds left out (e.g. `--skip state-restore`), by name:
    /// agent-kill, agent-kill-in-order, state-restore, sql-down,
    /// sql-deadlock, sql-slow, clock-step, emulator-down, sqs-throttle,
    /// shop-429, shop-5xx, shop-timeout, webhook-duplicate, webhook-lost,
    /// webhook-late.
    #[arg(long)]
    skip: Vec<String>,
    /// Keep the working folder (logs, databases) even when all holds.
    #[arg(long)]
    keep: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let dir = local_dir().join(format!(
        "fault-campaign-{}-{}",
        args.seed,
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    println!("working folder: {}", dir.display());
    let mut kinds = FaultKind::ALL.to_vec();
    for slug in &args.skip {
        let kind = FaultKind::from_slug(slug).with_context(|| format!("no fault kind `{slug}`"))?;
        kinds.retain(|k| *k != kind);
    }
    let options = CampaignOptions {
        seed: args.seed,
        faults: args.faults,
        orders: args.orders,
        duration: Duration::from_secs(args.duration),
        products: args.products,
        converge_timeout: Duration::from_secs(args.converge_timeout),
        kinds,
        dir: dir.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = runtime.block_on(run(&options)).context("the campaign")?;
    println!("{}", report.render());
    let violations = report.violations();
    if args.keep || !violations.is_empty() {
        println!("logs and state kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if !violations.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
