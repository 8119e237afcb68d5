//! The `agent` command line: `run`, `sync`, `check`, `doctor`, and the
//! service's `install` / `uninstall` (systemd on Linux, the Service Control
//! Manager on Windows, plus `start` / `stop` there).

use std::path::PathBuf;
use std::process::ExitCode;

use agent::config::AgentConfig;
use clap::{Parser, Subcommand};

/// Keeps Comarch ERP Optima and the online shops in sync, from the office
/// server, outbound only.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (heartbeats, sync, orders) until stopped.
    Run {
        /// Configuration file (TOML); OPTIMA_SYNC_* environment variables override it.
        #[arg(long, short, default_value = "agent.toml")]
        config: PathBuf,
    },
    /// Force a sync pass now, whole or per area or SKU, and send it.
    Sync {
        #[arg(long, short, default_value = "agent.toml")]
        config: PathBuf,
        /// Only these areas (repeatable): catalogue, prices, stock.
        #[arg(long = "only", value_enum)]
        only: Vec<Area>,
        /// Only these SKUs (repeatable).
        #[arg(long = "sku")]
        skus: Vec<String>,
        /// Send every record, even those that did not change.
        #[arg(long)]
        all_records: bool,
    },
    /// Validate the configuration and exit: 0 when valid, 2 when not.
    Check {
        #[arg(long, short, default_value = "agent.toml")]
        config: PathBuf,
    },
    /// Check configuration, SQL Server and AWS, each PASS or FAIL with what
    /// to do; exits 1 when anything fails.
    Doctor {
        #[arg(long, short, default_value = "agent.toml")]
        config: PathBuf,
        /// Instead of the checks: write, for every table and column the agent
        /// relies on, what the database has against what the agent expects
        /// (read-only, from the system catalogs), to send back to us.
        #[arg(long, value_name = "FILE")]
        schema_report: Option<PathBuf>,
    },
    /// Shop orders: `rehearse` writes one inside a transaction and rolls back.
    #[command(subcommand)]
    Orders(OrdersCommand),
    /// Register the agent as a service and start it (a systemd unit on
    /// Linux, a Windows service on Windows).
    Install(agent::service::InstallArgs),
    /// Stop the service and remove it (configuration, secrets and state stay).
    Uninstall(agent::service::UninstallArgs),
    /// Start the installed Windows service.
    #[cfg(windows)]
    Start(agent::service::NameArg),
    /// Stop the installed Windows service.
    #[cfg(windows)]
    Stop(agent::service::NameArg),
    /// What the Windows Service Control Manager runs (not for people).
    #[cfg(windows)]
    #[command(hide = true)]
    Service {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum OrdersCommand {
    /// Write a sample (or the given) order into Optima inside a transaction,
    /// print the document as Optima holds it, and roll back: proves on a copy
    /// of the company database that documents are accepted. Needs [orders].
    Rehearse {
        #[arg(long, short, default_value = "agent.toml")]
        config: PathBuf,
        /// A shop order as JSON (the contract's `Order`); default: a sample.
        #[arg(long)]
        order: Option<PathBuf>,
        /// The product of the sample order (default: the first goods item).
        #[arg(long)]
        sku: Option<String>,
    },
    /// Send a parked order to Optima again, once what parked it is fixed
    /// (the SKU added, the payment form mapped): the cloud sends its create
    /// command again. Goes out through this agent's outbox.
    Retry {
        #[arg(long, short, default_value = "agent.toml")]
        config: PathBuf,
        /// The parked order as `/status` lists it: `<shop>:<order id>`.
        #[arg(long)]
        order: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Area {
    Catalogue,
    Prices,
    Stock,
}

impl From<Area> for contract::SyncArea {
    fn from(area: Area) -> Self {
        match area {
            Area::Catalogue => contract::SyncArea::Catalogue,
            Area::Prices => contract::SyncArea::Prices,
            Area::Stock => contract::SyncArea::Stock,
        }
    }
}

/// Exit code for an invalid configuration, as for a usage error.
const EXIT_BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(windows)]
    if let Command::Service { config, name } = cli.command {
        // Logs go to a rotating file and the Event Log, set up inside.
        return agent::winservice::dispatch(name, config);
    }
    // doctor prints its own verdicts; the driver's log lines would repeat them.
    if !matches!(cli.command, Command::Doctor { .. }) {
        agent::telemetry::init();
    }
    match cli.command {
        Command::Doctor {
            config,
            schema_report: Some(file),
        } => with_runtime(&config, |config| async move {
            let mut client = agent::sql::connect(&config.sql_target()).await?;
            let (text, problems) = agent::schema_report::report(&mut client).await?;
            std::fs::write(&file, &text)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))?;
            println!(
                "schema report written to {} ({} lines, {problems} problem(s))",
                file.display(),
                text.lines().count().saturating_sub(2)
            );
            Ok(())
        }),
        Command::Doctor { config, .. } => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("cannot start the async runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let checks = runtime.block_on(agent::doctor::run(&config, |check| println!("{check}")));
            let failed = checks.iter().filter(|c| c.failed()).count();
            if failed == 0 {
                println!("all checks passed");
                ExitCode::SUCCESS
            } else {
                println!("{failed} check(s) failed");
                ExitCode::FAILURE
            }
        }
        Command::Install(args) => report(agent::service::install(&args)),
        Command::Uninstall(args) => report(agent::service::uninstall(&args)),
        #[cfg(windows)]
        Command::Start(args) => report(agent::winservice::start(&args.name)),
        #[cfg(windows)]
        Command::Stop(args) => report(agent::winservice::stop(&args.name)),
        #[cfg(windows)]
        Command::Service { .. } => ExitCode::FAILURE,
        Command::Check { config } => match AgentConfig::load(&config) {
            Ok(config) => {
                println!(
                    "configuration {} is valid: {}",
                    config.source.display(),
                    config.summary()
                );
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("{err}");
                ExitCode::from(EXIT_BAD_CONFIG)
            }
        },
        Command::Orders(OrdersCommand::Retry { config, order }) => {
            with_runtime(&config, |config| async move {
                let (shop, order_id) = order
                    .split_once(':')
                    .filter(|(shop, id)| !shop.is_empty() && !id.is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!("--order `{order}`: expected <shop>:<order id>, as /status lists parked orders")
                    })?;
                agent::retry_parked_order(&config, shop, order_id)?;
                println!(
                    "asked the cloud to send {shop}:{order_id} again; it goes out with the running agent's next message (see /status)"
                );
                Ok(())
            })
        }
        Command::Orders(OrdersCommand::Rehearse { config, order, sku }) => {
            with_runtime(&config, |config| async move {
                let rehearsal = agent::rehearse_order(&config, order.as_deref(), sku).await?;
                println!("{}", rehearsal.outcome);
                if !rehearsal.header.is_empty() {
                    println!("\nCDN.TraNag:");
                    for (column, value) in &rehearsal.header {
                        println!("  {column} = {value}");
                    }
                }
                for (i, line) in rehearsal.lines.iter().enumerate() {
                    println!("\nCDN.TraElem, line {}:", i + 1);
                    for (column, value) in line {
                        println!("  {column} = {value}");
                    }
                }
                Ok(())
            })
        }
        Command::Run { config } => {
            with_runtime(&config, |config| async move { agent::run(config).await })
        }
        Command::Sync {
            config,
            only,
            skus,
            all_records,
        } => with_runtime(&config, |config| async move {
            let areas: Vec<contract::SyncArea> = only.into_iter().map(Into::into).collect();
            let report = agent::sync_now(&config, &areas, skus, all_records).await?;
            println!(
                "{} products read; changed: {} products, {} prices, {} stock rows; {} messages sent",
                report.pass.items,
                report.pass.products.changed,
                report.pass.prices.changed,
                report.pass.stock.changed,
                report.messages_sent
            );
            Ok(())
        }),
    }
}

/// Prints what a service command did, or why it failed.
fn report(result: anyhow::Result<String>) -> ExitCode {
    match result {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration (exit 2 when invalid) and runs `work` on a runtime.
fn with_runtime<F, Fut>(path: &std::path::Path, work: F) -> ExitCode
where
    F: FnOnce(AgentConfig) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config = match AgentConfig::load(path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
