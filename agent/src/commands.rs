//! The commands queue: what the cloud asks of the agent, long-polled.
//!
//! Force-sync and resend commands go to the sync loop; ping asks for a
//! heartbeat now. A message is deleted only after it was handed over, so a
//! crash means redelivery, and every command is idempotent. Create-order
//! commands are left in the queue for an agent that writes orders.

use std::time::Duration;

use contract::{ForceSync, Payload, SyncArea, decode_body};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::sqs::Transport;

pub async fn run(
    transport: Transport,
    force: mpsc::Sender<ForceSync>,
    heartbeat_now: std::sync::Arc<Notify>,
    cancel: CancellationToken,
) {
    if !transport.has_commands_queue() {
        info!("no commands queue configured: forced passes come from the command line only");
        return;
    }
    let mut delay = Duration::from_secs(1);
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => return,
            received = transport.receive_commands() => received,
        };
        let messages = match received {
            Ok(messages) => {
                delay = Duration::from_secs(1);
                messages
            }
            Err(err) => {
                warn!(error = %err, retry_in = ?delay, "cannot receive commands; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        for message in messages {
            let handled = match decode_body(&message.body) {
                Ok(envelope) => match envelope.payload {
                    Payload::ForceSync(request) => {
                        info!(areas = ?request.areas, skus = request.skus.len(), "force sync requested by the cloud");
                        force.send(request).await.is_ok()
                    }
                    Payload::Resend(range) => {
                        // Sent batches are not kept once SQS confirmed them;
                        // resending the current truth heals any gap.
                        info!(
                            from = range.from_seq,
                            to = range.to_seq,
                            "the cloud saw a gap; resending current state"
                        );
                        force
                            .send(ForceSync {
                                areas: vec![SyncArea::Catalogue, SyncArea::Prices, SyncArea::Stock],
                                skus: Vec::new(),
                                ignore_hashes: true,
                            })
                            .await
                            .is_ok()
                    }
                    Payload::Ping(_) => {
                        heartbeat_now.notify_one();
                        true
                    }
                    other => {
                        warn!(
                            kind = other.kind().as_str(),
                            "this agent version does not handle this command; leaving it queued"
                        );
                        false
                    }
                },
                Err(err) => {
                    // Undecodable: retries cannot help; the queue's redrive
                    // policy moves it to the DLQ, where an alarm fires.
                    warn!(error = %err, "undecodable command left for the DLQ");
                    false
                }
            };
            if handled && let Err(err) = transport.delete_command(&message.receipt_handle).await {
                warn!(error = %err, "cannot delete a handled command; it will come again (harmless)");
            }
        }
    }
}
