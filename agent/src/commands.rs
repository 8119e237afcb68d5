//! The commands queue: what the cloud asks of the agent, long-polled.
//!
//! Force-sync and resend commands go to the sync loop (merged while a pass
//! runs, so they never hold up the orders behind them); ping asks for a
//! heartbeat now; create-order and cancel-order go to [`crate::orders`]. A
//! command addressed to another agent of the stack is given back to the
//! queue for it ([`left_for_addressee`]). A resend past the last number this state gave in its
//! life means the state file is older than what the cloud applied (restored
//! from a backup): the store begins a new life first. A message is
//! deleted only after it was handed over (for an order: written and its
//! answer in the outbox), so a crash means redelivery, and every command is
//! idempotent. When Optima is unreachable, an order command is put back with
//! a short visibility and no further commands are taken until Optima
//! answers again: each try counts towards the queue's dead-letter limit, so
//! the agent does not spin through them while the ERP is down.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use contract::{ForceSync, Payload, SyncArea, decode_body};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::order_intake::{Handled, OrderWriter, Orders};
use crate::sqs::Transport;
use crate::store::Store;
use crate::sync::ForceRequests;

/// Seconds an order command stays invisible after Optima could not take it.
const RETRY_VISIBILITY_SECONDS: i32 = 5;

/// How long another agent's command stays hidden after this agent gave it
/// back: 2 s after its first receive, doubling with each receive to a
/// minute. Every receive counts towards the commands queue's dead-letter
/// limit (10), so a command whose agent is away lasts about five minutes of
/// other agents' polls, instead of ten polls, before the DLQ; its agent,
/// polling too, takes it within seconds while it runs. Hidden rather than
/// waited on, so this agent's own commands behind it are not held up.
fn left_for_addressee(receive_count: u32) -> i32 {
    2i32.saturating_pow(receive_count.clamp(1, 6)).min(60)
}

#[allow(clippy::too_many_arguments)]
pub async fn run<W: OrderWriter>(
    transport: Transport,
    agent_id: String,
    store: Arc<Store>,
    force: Arc<ForceRequests>,
    heartbeat_now: Arc<Notify>,
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
        let received = messages.len();
        let mut for_others = 0;
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
                if !envelope.is_for(&agent_id) {
                    for_others += 1;
                    let hidden = left_for_addressee(message.receive_count);
                    info!(
                        to = envelope.to.as_deref().unwrap_or_default(),
                        kind = envelope.kind().as_str(),
                        receives = message.receive_count,
                        hidden_seconds = hidden,
                        "a command for another agent of the stack; given back for it"
                    );
                    if let Err(err) = transport
                        .change_command_visibility(&message.receipt_handle, hidden)
                        .await
                    {
                        warn!(error = %err, "cannot give another agent's command back; it returns after its visibility timeout");
                    }
                    continue;
                }
            }
            let handled = match decoded {
                Ok(envelope) => match envelope.payload {
                    Payload::ForceSync(request) => {
                        info!(areas = ?request.areas, skus = request.skus.len(), "force sync requested by the cloud");
                        force.ask(request);
                        true
                    }
                    Payload::Resend(range) => {
                        begin_new_life_if_restored(&store, &agent_id, &range);
                        // Sent batches are not kept once SQS confirmed them;
                        // resending the current truth heals any gap.
                        info!(
                            from = range.from_seq,
                            to = range.to_seq,
                            "the cloud saw a gap; resending current state"
                        );
                        force.ask(ForceSync {
                            areas: vec![SyncArea::Catalogue, SyncArea::Prices, SyncArea::Stock],
                            skus: Vec::new(),
                            ignore_hashes: true,
                        });
                        heartbeat_now.notify_one();
                        true
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
        } else if received > 0 && for_others == received {
            // Out of step with the moment they become visible again, so the
            // addressee's waiting poll is as likely to take them as ours.
            let jitter = 500 + u64::from(Utc::now().timestamp_subsec_millis() % 1000);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(jitter)) => {}
            }
        }
    }
}

/// A resend of this state's own life up to a number it never gave: the
/// state file is older than what the cloud applied (see
/// [`Store::begin_new_life`]). The cloud asks again while it stays so, so
/// a failure here is only logged.
fn begin_new_life_if_restored(store: &Store, agent_id: &str, range: &contract::Resend) {
    let (life, last) = match store.position() {
        Ok(position) => position,
        Err(err) => {
            warn!(error = %err, "cannot read the agent state's position");
            return;
        }
    };
    if range.incarnation.as_deref() != Some(life.as_str()) || range.to_seq <= last {
        return;
    }
    match store.begin_new_life(agent_id, Utc::now()) {
        Ok(new_life) => warn!(
            old = %life,
            new = %new_life,
            agent_last_seq = last,
            cloud_applied = range.to_seq,
            "the cloud applied more of this state's life than the state file holds (restored from an older backup?): the state begins a new life and resends everything"
        ),
        Err(err) => warn!(error = %err, "cannot begin a new life of the agent state"),
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

#[cfg(test)]
mod tests {
    use super::left_for_addressee;

    #[test]
    fn another_agents_command_is_hidden_longer_with_each_receive() {
        let hidden: Vec<i32> = (1..=9).map(left_for_addressee).collect();
        assert_eq!(hidden, [2, 4, 8, 16, 32, 60, 60, 60, 60]);
        // Nine receives given back before the tenth sends it to the DLQ.
        assert!(hidden.iter().sum::<i32>() >= 300, "{hidden:?}");
        assert_eq!(left_for_addressee(0), 2, "a count SQS did not report");
    }
}
