//! The periodic sign of life: version, clock, and what the agent can reach.
//!
//! Once the cloud reads contract version 2 a heartbeat travels in its own
//! lane (see `contract::HEARTBEAT_LANE_SINCE`; the sender sends it ahead of
//! the data), so a backlog of data never makes a working agent look silent;
//! before that it goes through the outbox in the data lane, as version 1
//! wants.

use std::sync::Arc;

use chrono::Utc;
use contract::{AgentHealth, Envelope, HEARTBEAT_LANE_SINCE, Heartbeat, MAX_BODY_BYTES, Payload};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use crate::config::AgentConfig;
use crate::sql;
use crate::store::Store;

pub async fn run(
    config: AgentConfig,
    store: Arc<Store>,
    outbox_changed: Arc<Notify>,
    now: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(config.heartbeat_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sql_was_ok = true;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
            _ = now.notified() => {}
        }
        let sql_error = match sql::probe(&config.sql_target()).await {
            Ok(()) => None,
            Err(err) => Some(err.to_string()),
        };
        match (&sql_error, sql_was_ok) {
            (Some(err), true) => {
                warn!(error = %err, "SQL Server unreachable; the heartbeat reports it, retrying each interval")
            }
            (None, false) => warn!("SQL Server reachable again"),
            _ => {}
        }
        sql_was_ok = sql_error.is_none();
        let rejected = store.rejected().unwrap_or_default();
        let heartbeat = Heartbeat {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            agent_clock: Utc::now(),
            health: AgentHealth {
                sql_server: sql_error.is_none(),
                sql_error,
                outbox_depth: store.outbox_depth().unwrap_or(0)
                    + store.pending_count().unwrap_or(0),
                takes_orders: Some(config.orders.is_some()),
                rejected_records: (rejected.count > 0).then_some(rejected.count),
                rejected_latest: rejected.latest,
            },
        };
        let version = crate::cloud_version::write_version();
        if version >= HEARTBEAT_LANE_SINCE {
            match put_in_lane(&store, &config.agent_id, heartbeat, version) {
                Ok(()) => {
                    debug!("heartbeat queued for its lane");
                    outbox_changed.notify_one();
                }
                Err(err) => error!(error = %err, "cannot queue the heartbeat"),
            }
            continue;
        }
        match store.enqueue(
            &config.agent_id,
            Payload::Heartbeat(heartbeat),
            Some("heartbeat"),
            MAX_BODY_BYTES,
            Utc::now(),
        ) {
            Ok(seqs) => {
                debug!(?seqs, "heartbeat queued");
                outbox_changed.notify_one();
            }
            Err(err) => error!(error = %err, "cannot queue the heartbeat"),
        }
    }
}

/// A heartbeat for its own lane: numbered by the last data sequence number
/// (it takes none of its own), in the state's incarnation; the sender sends
/// it ahead of the data.
fn put_in_lane(
    store: &Store,
    agent_id: &str,
    heartbeat: Heartbeat,
    version: u16,
) -> Result<(), String> {
    let (incarnation, seq) = store.position().map_err(|e| e.to_string())?;
    let mut envelope = Envelope::new(agent_id, seq, Utc::now(), Payload::Heartbeat(heartbeat))
        .with_incarnation(Some(&incarnation));
    envelope.version = version;
    let body = contract::encode_body_at(&envelope, version).map_err(|e| e.to_string())?;
    store
        .put_lane_heartbeat(&incarnation, &body)
        .map_err(|e| e.to_string())
}
