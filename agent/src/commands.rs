//! The commands queue: what the cloud asks of the agent, long-polled.
//!
//! Force-sync and resend commands go to the sync loop; ping asks for a
//! heartbeat now; create-order and cancel-order go to [`crate::orders`]. A message is
//! deleted only after it was handed over (for an order: written and its
//! answer in the outbox), so a crash means redelivery, and every command is
//! idempotent. When Optima is unreachable, an order command is put back with
//! a short visibility and no further commands are taken until Optima
//! answers again: each try counts towards the queue's dead-letter limit, so
//! the agent does not spin through them while the ERP is down.

use std::time::Duration;

use contract::{ForceSync, Payload, SyncArea, decode_body};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::order_intake::{Handled, OrderWriter, Orders};
use crate::sqs::Transport;

/// Seconds an order command stays invisible after Optima could not take it.
const RETRY_VISIBILITY_SECONDS: i32 = 5;

pub async fn run<W: OrderWriter>(
    transport: Transport,
    force: mpsc::Sender<ForceSync>,
    heartbeat_now: std::sync::Arc<Notify>,
    orders: Option<Orders<W>>,
    cancel: CancellationToken,
) {
    if !transport.has_commands_queue() {
        info!("no commands queue configured: forced passes come from the command line only");
        return;
    }
    let mut backoff = crate::retry::Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => return,
            received = transport.receive_commands() => received,
        };
        let messages = match received {
            Ok(messages) => {
                backoff.reset();
                messages
            }
            Err(err) => {
                let wait = backoff.next_delay();
                warn!(error = %err, retry_in = ?wait, "cannot receive commands; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        };
        let mut erp_down: Option<String> = None;
        for message in messages {
            if erp_down.is_some() {
                // Give the rest back at once, in order, for after the outage.
                if let Err(err) = transport
                    .change_command_visibility(&message.receipt_handle, RETRY_VISIBILITY_SECONDS)
                    .await
                {
                    warn!(error = %err, "cannot give a command back; it returns after its visibility timeout");
                }
                continue;
            }
            let decoded = decode_body(&message.body);
            if let Ok(envelope) = &decoded {
                crate::cloud_version::learn(envelope);
            }
            let handled = match decoded {
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
                    Payload::CreateOrder(order) if orders.is_some() => {
                        let Some(orders) = &orders else { continue };
                        let handled = orders.create(&order).await;
                        settle(
                            &transport,
                            &message.receipt_handle,
                            handled,
                            &order.key(),
                            &mut erp_down,
                        )
                        .await
                    }
                    Payload::CancelOrder(cancel) if orders.is_some() => {
                        let Some(orders) = &orders else { continue };
                        let handled = orders.cancel(&cancel).await;
                        settle(
                            &transport,
                            &message.receipt_handle,
                            handled,
                            &cancel.key(),
                            &mut erp_down,
                        )
                        .await
                    }
                    order_command @ (Payload::CreateOrder(_) | Payload::CancelOrder(_)) => {
                        warn!(
                            kind = order_command.kind().as_str(),
                            "an order command arrived, but this agent does not write orders: add an [orders] section (warehouse, default_payment_form, default_shipping_service) to its configuration and restart it; the order stays queued"
                        );
                        false
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
                    // Undecodable (or in a contract version this build does
                    // not speak): not deleted; a newer agent may take it,
                    // else the queue's redrive policy moves it to the DLQ,
                    // where an alarm fires.
                    warn!(error = %err, "undecodable command left for the DLQ");
                    false
                }
            };
            if handled && let Err(err) = transport.delete_command(&message.receipt_handle).await {
                warn!(error = %err, "cannot delete a handled command; it will come again (harmless)");
            }
        }
        if erp_down.is_some() {
            wait_for_erp(&orders, &cancel).await;
        }
    }
}

/// After an order command: true to delete it; otherwise it is given back
/// for a short while and no further commands are taken until Optima answers.
async fn settle(
    transport: &Transport,
    receipt_handle: &str,
    handled: Handled,
    order: &str,
    erp_down: &mut Option<String>,
) -> bool {
    match handled {
        Handled::Done => true,
        Handled::RetryLater(reason) => {
            warn!(%order, %reason, "Optima cannot take the order command now; it stays queued");
            if let Err(err) = transport
                .change_command_visibility(receipt_handle, RETRY_VISIBILITY_SECONDS)
                .await
            {
                warn!(error = %err, "cannot give the command back; it returns after its visibility timeout");
            }
            *erp_down = Some(reason);
            false
        }
    }
}

/// Waits until Optima answers again before taking more commands.
async fn wait_for_erp<W: OrderWriter>(orders: &Option<Orders<W>>, cancel: &CancellationToken) {
    let Some(orders) = orders else { return };
    let mut delays = crate::retry::delays(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        let wait = delays.next().unwrap_or(Duration::from_secs(30));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match orders.reachable().await {
            Ok(()) => {
                info!("Optima answers again; taking orders");
                return;
            }
            Err(err) => {
                warn!(error = %err, "Optima still unavailable; orders wait in the queue");
            }
        }
    }
}
