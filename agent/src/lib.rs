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
//! - [`sql`]: the SQL Server connection (tiberius) and its health probe.
//! - [`optima`]: every SQL statement run against Optima, and the projection
//!   of its rows into contract records.
//! - [`heartbeat`]: the periodic sign of life.
//! - [`sender`]: drains the outbox to SQS, oldest first, with back-off.

pub mod config;
pub mod heartbeat;
pub mod optima;
pub mod sender;
pub mod sql;
pub mod sqs;
pub mod store;
pub mod telemetry;

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::AgentConfig;
use crate::store::Store;

/// Runs the agent until ctrl-c or SIGTERM.
pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    let store = Arc::new(
        Store::open(&config.store.path)
            .with_context(|| format!("opening the agent state {}", config.store.path.display()))?,
    );
    sql::warn_if_plaintext(&config);
    let sqs = sqs::Transport::new(&config).await;
    let cancel = CancellationToken::new();
    let outbox_changed = Arc::new(Notify::new());
    info!(agent = %config.agent_id, version = env!("CARGO_PKG_VERSION"), state = %config.store.path.display(), "agent starting");

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(heartbeat::run(
        config.clone(),
        store.clone(),
        outbox_changed.clone(),
        cancel.clone(),
    ));
    tasks.spawn(sender::run(
        sqs.clone(),
        store.clone(),
        config.store.outbox_warn_at,
        outbox_changed.clone(),
        cancel.clone(),
    ));

    shutdown_signal().await;
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
