//! The on-prem agent.
//!
//! It reads Comarch ERP Optima's SQL Server, sends what changed to the
//! cloud's events queue and takes commands from the commands queue, all
//! outbound: no inbound port, no VPN. Everything it sends goes through a
//! local crash-safe outbox first, so an AWS outage or a `kill -9` loses
//! nothing; a dead SQL Server or an unreachable queue slows it down but never
//! stops it: it backs off, says what is wrong, and says so in its heartbeat.
//!
//! Map of the crate:
//! - [`config`]: TOML + environment, validated at start; secrets redacted.
//! - [`store`]: the local SQLite state: sequence numbers and the outbox.
//! - [`sqs`]: the SQS transport (send to events, receive commands).
//! - [`commands`]: the commands queue consumer (force sync, resend, ping).
//! - [`cloud_version`]: the contract version the cloud reads, learned from
//!   its commands; what the agent writes at.
//! - [`exchange_rates`]: the NBP rate a foreign-currency order is written at.
//! - [`sql`]: the SQL Server connection (tiberius) and its health probe.
//! - [`optima`]: every SQL statement run against Optima, and the projection
//!   of its rows into contract records; `optima::cells` reads a row without
//!   a panic whatever the column's width, `optima::insert` builds the
//!   INSERTs that name every NOT NULL column, `optima::order_document` writes an
//!   order as one document (and rehearses it) and reads its chain.
//! - [`sync`]: passes that read Optima and stage what changed (cursor
//!   polls, interval passes, forced passes).
//! - [`orders`]: shop orders written into Optima, and their progress.
//! - [`heartbeat`]: the periodic sign of life.
//! - [`sender`]: drains the outbox to SQS, oldest first, with back-off.
//! - [`doctor`]: `agent doctor`, every check with what to do on failure.
//! - [`schema_report`]: `agent doctor --schema-report`, the database's
//!   tables against the Optima schema the agent expects.
//! - [`service`], [`systemd`], `winservice`: `agent install`/`uninstall`
//!   as a systemd unit or a Windows service.

pub mod cloud_version;
pub mod commands;
pub mod config;
pub mod doctor;
pub mod erp_settings;
pub mod exchange_rates;
pub mod failpoint;
pub mod heartbeat;
pub mod optima;
pub mod order_intake;
pub mod order_progress;
pub mod retry;
pub mod schema_report;
pub mod secrets;
pub mod sender;
pub mod service;
pub mod sql;
pub mod sqs;
pub mod store;
pub mod sync;
pub mod systemd;
pub mod telemetry;
#[cfg(windows)]
pub mod winservice;

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::AgentConfig;
use crate::store::Store;

/// One running agent per state file: an exclusive lock on `<state>.lock`,
/// held while the returned file is open. The sync loop's lease holder is
/// the same across restarts (so a killed service takes its own lease back
/// at once), which is safe only while no second service runs on the file:
/// two would run passes and send the outbox at the same time. The OS
/// frees the lock when the process dies, however it dies.
fn lock_state_for_service(state: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut path = state.as_os_str().to_owned();
    path.push(".lock");
    let path = std::path::PathBuf::from(path);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            use std::io::Write;
            // Who holds it, for the message a second start prints.
            file.set_len(0)?;
            write!(file, "{}", std::process::id())?;
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            // Unreadable on Windows while locked: then no process id.
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (process {pid})"),
            };
            anyhow::bail!(
                "another agent is already running on the state file {}{holder}: stop it first, or give this one its own `[store] path` and `agent_id`",
                state.display(),
            )
        }
        Err(std::fs::TryLockError::Error(err)) => {
            Err(err).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Runs the agent until ctrl-c or SIGTERM.
pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    run_until(config, shutdown_signal()).await
}

/// Runs the agent until `stop` completes (a service manager's stop request).
pub async fn run_until(
    config: AgentConfig,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let _one_service = lock_state_for_service(&config.store.path)?;
    let store = Arc::new(
        Store::open(&config.store.path)
            .with_context(|| format!("opening the agent state {}", config.store.path.display()))?,
    );
    sql::warn_if_plaintext(&config.sql_target());
    let sqs = sqs::Transport::new(&config).await;
    let cancel = CancellationToken::new();
    let outbox_changed = Arc::new(Notify::new());
    info!(agent = %config.agent_id, version = env!("CARGO_PKG_VERSION"), state = %config.store.path.display(), "agent starting");

    let heartbeat_now = Arc::new(Notify::new());
    let forced = Arc::new(sync::ForceRequests::default());
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(heartbeat::run(
        config.clone(),
        store.clone(),
        outbox_changed.clone(),
        heartbeat_now.clone(),
        cancel.clone(),
    ));
    tasks.spawn(sender::run(
        sqs.clone(),
        store.clone(),
        sender::Batching {
            agent_id: config.agent_id.clone(),
            batch_records: config.sync.batch_records,
        },
        config.store.outbox_warn_at,
        outbox_changed.clone(),
        cancel.clone(),
    ));
    tasks.spawn(sync::run(
        config.clone(),
        store.clone(),
        outbox_changed.clone(),
        forced.clone(),
        cancel.clone(),
    ));
    let orders = config.orders.as_ref().map(|section| {
        order_intake::Orders::new(
            order_intake::SqlOrderWriter::new(config.clone(), section.write_settings()),
            store.clone(),
            config.agent_id.clone(),
            outbox_changed.clone(),
        )
    });
    if let (Some(orders), Some(section)) = (&orders, &config.orders) {
        info!(document = section.document.symbol(), warehouse = %section.warehouse, "writing shop orders into Optima");
        tasks.spawn(order_progress::follow(
            orders.clone(),
            std::time::Duration::from_secs(section.progress_seconds),
            cancel.clone(),
        ));
    }
    tasks.spawn(commands::run(
        sqs.clone(),
        config.agent_id.clone(),
        store.clone(),
        forced,
        heartbeat_now,
        orders,
        cancel.clone(),
    ));

    stop.await;
    info!("stopping");
    cancel.cancel();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// What `agent sync` did.
#[derive(Debug, Clone, Copy)]
pub struct ForcedSyncReport {
    pub pass: sync::PassReport,
    pub messages_sent: usize,
}

/// `agent orders rehearse`: the order from `order_file` (JSON), or a sample
/// of one unit of `sku` (default: the first goods item in Optima), written
/// inside a transaction and rolled back.
pub async fn rehearse_order(
    config: &AgentConfig,
    order_file: Option<&std::path::Path>,
    sku: Option<String>,
) -> anyhow::Result<optima::order_document::Rehearsal> {
    let orders = config.orders.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "{} has no [orders] section: a rehearsal writes the way the configured writer would",
            config.source.display()
        )
    })?;
    let mut client = sql::connect(&config.sql_target())
        .await
        .context("connecting to SQL Server")?;
    let order = match order_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a shop order (contract Order JSON)",
                    path.display()
                )
            })?
        }
        None => {
            let sku = match sku {
                Some(sku) => sku,
                None => {
                    let ids = optima::product_ids_page(&mut client, 0, 1).await?;
                    let products = optima::products(&mut client, &ids, &Default::default()).await?;
                    products.first().map(|p| p.sku.clone()).ok_or_else(|| {
                        anyhow::anyhow!("Optima has no goods to put on a sample order; give --sku")
                    })?
                }
            };
            optima::order_document::sample_order(&sku, rust_decimal::Decimal::new(12300, 2))
        }
    };
    let settings = orders.write_settings();
    let rate = match order_intake::OrderRates::new(&orders.nbp_url)
        .for_order(&mut client, &order, &settings)
        .await
        .context("looking up the order's exchange rate")?
    {
        order_intake::OrderRate::None => None,
        order_intake::OrderRate::At(rate) => Some(rate),
        order_intake::OrderRate::Parked(reason) => {
            return Ok(optima::order_document::Rehearsal {
                outcome: format!("parked before the transaction: {reason}"),
                header: Vec::new(),
                lines: Vec::new(),
            });
        }
    };
    Ok(optima::order_document::rehearse(&mut client, &order, &settings, rate.as_ref()).await?)
}

/// Queues the request to send a parked order to the ERP again in the
/// agent's outbox (the running service sends it; the cloud re-sends the
/// order's create command).
pub fn retry_parked_order(config: &AgentConfig, shop: &str, order_id: &str) -> anyhow::Result<()> {
    let store = Store::open(&config.store.path)
        .with_context(|| format!("opening the agent state {}", config.store.path.display()))?;
    let retry = contract::Payload::RetryOrder(contract::RetryOrder {
        shop: shop.to_owned(),
        order_id: order_id.to_owned(),
    });
    cloud_version::assume_at_least(retry.since_version());
    store
        .enqueue(
            &config.agent_id,
            retry,
            None,
            contract::MAX_BODY_BYTES,
            chrono::Utc::now(),
        )
        .context("queueing the retry")?;
    Ok(())
}

/// A forced pass from the command line: read, stage, and send it all now.
/// Shows a progress bar on a terminal.
pub async fn sync_now(
    config: &AgentConfig,
    areas: &[contract::SyncArea],
    skus: Vec<String>,
    ignore_hashes: bool,
) -> anyhow::Result<ForcedSyncReport> {
    use std::io::IsTerminal;
    let store = Store::open(&config.store.path)
        .with_context(|| format!("opening the agent state {}", config.store.path.display()))?;
    let mut client = sql::connect(&config.sql_target())
        .await
        .context("connecting to SQL Server")?;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message("reading Optima");
    let scope = if skus.is_empty() {
        sync::Scope::All
    } else {
        sync::Scope::Skus(skus)
    };
    let holder = format!("cli:{}", std::process::id());
    // The service syncs in short steps; wait for a gap rather than fail.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let pass = loop {
        let ran = sync::leased(
            &store,
            &holder,
            sync::pass(
                &mut client,
                &store,
                areas,
                &scope,
                ignore_hashes,
                config.sync.price_list_key,
                |done, total| {
                    if let Some(total) = total {
                        bar.set_length(total as u64);
                    }
                    bar.set_position(done as u64);
                    bar.set_message(format!("{done} products read"));
                },
            ),
        )
        .await?;
        match ran {
            Some(pass) => break pass,
            None if std::time::Instant::now() < deadline => {
                bar.set_message("waiting for the running sync to finish");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            None => anyhow::bail!(
                "another sync has been running for two minutes; try again when it ends"
            ),
        }
    };
    bar.set_message("sending to SQS");
    let transport = sqs::Transport::new(config).await;
    let batching = sender::Batching {
        agent_id: config.agent_id.clone(),
        batch_records: config.sync.batch_records,
    };
    let messages_sent = sender::drain_once(&transport, &store, &batching)
        .await
        .map_err(|e| anyhow::anyhow!("sending to SQS failed ({e}); the staged records stay in the outbox for the service to send"))?;
    bar.finish_and_clear();
    Ok(ForcedSyncReport {
        pass,
        messages_sent,
    })
}
