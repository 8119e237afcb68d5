//! Drains the outbox to SQS, oldest first, with the heartbeat waiting for
//! its own lane (if any) ahead of the data. When SQS cannot be reached the
//! outbox grows, the agent warns (loudly past a threshold) and retries with
//! exponential back-off; it drains in order once SQS answers again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::sqs::Transport;
use crate::store::Store;

fn backoff() -> impl Iterator<Item = Duration> {
    crate::retry::delays(Duration::from_millis(500), Duration::from_secs(30))
}

/// How the sender turns staged records into batches.
#[derive(Debug, Clone)]
pub struct Batching {
    pub agent_id: String,
    pub batch_records: usize,
}

/// Forms the next batch from staged records when the outbox is empty. Only
/// one batch is formed ahead, so while SQS is unreachable staged records
/// keep coalescing by key instead of piling up as batches.
pub fn refill_outbox(
    store: &Store,
    batching: &Batching,
) -> Result<Vec<u64>, crate::store::StoreError> {
    if store.outbox_depth()? > 0 {
        return Ok(Vec::new());
    }
    store.form_batch(
        &batching.agent_id,
        batching.batch_records,
        contract::MAX_BODY_BYTES,
        chrono::Utc::now(),
    )
}

/// Sends the heartbeat waiting for its own lane, if any; returns whether
/// there was one.
async fn send_lane_heartbeat(transport: &Transport, store: &Store) -> Result<bool, String> {
    let Some((version, body)) = store.lane_heartbeat().map_err(|e| e.to_string())? else {
        return Ok(false);
    };
    transport.send_heartbeat(&body).await?;
    debug!(bytes = body.len(), "heartbeat sent in its lane");
    if let Err(err) = store.remove_lane_heartbeat(version) {
        // Sent again with the next round: a second copy of a heartbeat is harmless.
        error!(error = %err, "cannot forget a sent heartbeat");
    }
    Ok(true)
}

/// Sends what is in the outbox until it is empty; returns how many messages
/// were sent, or the first error.
pub async fn drain_once(
    transport: &Transport,
    store: &Store,
    batching: &Batching,
) -> Result<usize, String> {
    let mut sent = usize::from(send_lane_heartbeat(transport, store).await?);
    loop {
        refill_outbox(store, batching).map_err(|e| e.to_string())?;
        let pending = store.pending(10).map_err(|e| e.to_string())?;
        if pending.is_empty() {
            return Ok(sent);
        }
        for entry in &pending {
            send_and_forget(transport, store, entry).await?;
            sent += 1;
        }
    }
}

/// Sends one outbox entry and, once SQS confirmed it, removes it.
async fn send_and_forget(
    transport: &Transport,
    store: &Store,
    entry: &crate::store::OutboxEntry,
) -> Result<(), String> {
    transport.send_event(entry).await?;
    debug!(seq = entry.seq, kind = %entry.kind, bytes = entry.body.len(), "sent");
    if let Err(err) = store.remove(entry.seq) {
        // Sent but not forgotten: it will be sent again, and the
        // deduplication id and the cloud's sequence check make that harmless.
        error!(seq = entry.seq, error = %err, "cannot remove a sent message from the outbox");
    }
    Ok(())
}

pub async fn run(
    transport: Transport,
    store: Arc<Store>,
    batching: Batching,
    warn_at: u64,
    outbox_changed: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut delays = backoff();
    let mut failing_since: Option<std::time::Instant> = None;
    loop {
        if let Err(err) = refill_outbox(&store, &batching) {
            error!(error = %err, "cannot form a batch from staged records");
        }
        let pending = match store.pending(10) {
            Ok(pending) => pending,
            Err(err) => {
                error!(error = %err, "cannot read the outbox");
                Vec::new()
            }
        };
        let mut failed = None;
        let heartbeat_sent = match send_lane_heartbeat(&transport, &store).await {
            Ok(sent) => sent,
            Err(err) => {
                failed = Some(err);
                true
            }
        };
        if pending.is_empty() && !heartbeat_sent {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = outbox_changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            continue;
        }
        if failed.is_none() {
            for entry in &pending {
                if let Err(err) = send_and_forget(&transport, &store, entry).await {
                    failed = Some(err);
                    break;
                }
            }
        }
        match failed {
            None => {
                if let Some(since) = failing_since.take() {
                    info!(after = ?since.elapsed(), "SQS reachable again; outbox draining");
                }
                delays = backoff();
            }
            Some(err) => {
                failing_since.get_or_insert_with(std::time::Instant::now);
                let delay = delays.next().unwrap_or(Duration::from_secs(30));
                let depth = store.outbox_depth().unwrap_or(0);
                if depth >= warn_at {
                    error!(depth, limit = warn_at, error = %err, "outbox is large: SQS has been unreachable for long; nothing is lost, it will drain when SQS answers");
                } else {
                    warn!(depth, error = %err, retry_in = ?delay, "cannot send to SQS; retrying");
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use contract::StockRecord;
    use rust_decimal::Decimal;

    fn stock(sku: &str) -> (String, StockRecord) {
        (
            format!("{sku}|MAG"),
            StockRecord {
                sku: sku.into(),
                warehouse: "MAG".into(),
                quantity: Decimal::ONE,
                reserved: Decimal::ZERO,
                read_at: Utc::now(),
            },
        )
    }

    /// One batch is formed ahead at most: while a message waits, staged
    /// records stay staged (and keep coalescing).
    #[test]
    fn a_batch_is_formed_only_when_the_outbox_is_empty() -> Result<(), crate::store::StoreError> {
        let dir = tempfile::tempdir().map_err(|e| {
            crate::store::StoreError::Sqlite(rusqlite::Error::InvalidPath(e.to_string().into()))
        })?;
        let store = Store::open(&dir.path().join("s.sqlite"))?;
        let batching = Batching {
            agent_id: "a".into(),
            batch_records: 1,
        };
        store.stage(
            crate::store::RecordKind::Stock,
            &[stock("A"), stock("B")],
            false,
            Utc::now(),
        )?;
        assert_eq!(refill_outbox(&store, &batching)?.len(), 1);
        assert!(
            refill_outbox(&store, &batching)?.is_empty(),
            "one waits already"
        );
        assert_eq!(store.outbox_depth()?, 1);
        let waiting = store.pending(10)?;
        store.remove(waiting[0].seq)?;
        assert_eq!(
            refill_outbox(&store, &batching)?.len(),
            1,
            "the next, once sent"
        );
        Ok(())
    }
}
