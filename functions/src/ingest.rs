//! `ingest`: ERP events from the agent, off the events queue.
//!
//! Each SQS record is one envelope. A body that cannot be decoded (bad
//! JSON, unknown kind, a contract version this build does not speak) will
//! never decode however often it is retried, so it is parked with its
//! reason and the batch goes on. A failure to store state is transient: the
//! record, and every later record of the same FIFO group in this batch, is
//! reported back as a batch item failure so SQS redelivers them in order
//! (and, after maxReceiveCount, moves them to the DLQ, which has an alarm).

use std::collections::HashSet;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::Utc;
use contract::{Envelope, Payload, decode_body};
use tracing::{info, warn};

use crate::HandlerError;
use crate::aws::Clients;
use crate::env::{EnvError, FunctionEnv};
use crate::state::{HeartbeatWrite, StateError, StateTable};

/// What `ingest` needs, built once at cold start.
#[derive(Clone, Debug)]
pub struct Ingest {
    state: StateTable,
}

impl Ingest {
    pub fn new(clients: &Clients, env: &FunctionEnv) -> Result<Self, EnvError> {
        let table = env.required("STATE_TABLE")?;
        let retention_days = env.parsed("RETENTION_DAYS", "a whole number of days")?;
        Ok(Ingest {
            state: StateTable::new(clients.dynamodb.clone(), table, retention_days),
        })
    }

    /// The handler: one SQS batch in, the failed message ids out.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, HandlerError> {
        let mut response = SqsBatchResponse::default();
        // FIFO order: once a group fails, its later messages must fail too.
        let mut failed_groups: HashSet<String> = HashSet::new();
        for record in event.records {
            let message_id = record.message_id.clone().unwrap_or_default();
            let group = record
                .attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_default();
            if failed_groups.contains(&group) {
                response.batch_item_failures.push(failure(&message_id));
                continue;
            }
            let body = record.body.as_deref().unwrap_or_default();
            let result = match decode_body(body) {
                Ok(envelope) => self.apply(envelope).await,
                Err(err) => {
                    warn!(%message_id, error = %err, "parking an undecodable message");
                    self.state
                        .park("erp-events", &message_id, body, &err.to_string())
                        .await
                }
            };
            if let Err(err) = result {
                warn!(%message_id, error = %err, "message failed; SQS will redeliver it");
                failed_groups.insert(group);
                response.batch_item_failures.push(failure(&message_id));
            }
        }
        Ok(response)
    }

    async fn apply(&self, envelope: Envelope) -> Result<(), StateError> {
        let received_at = Utc::now();
        match &envelope.payload {
            Payload::Heartbeat(heartbeat) => {
                let stored = self
                    .state
                    .record_heartbeat(HeartbeatWrite {
                        agent_id: &envelope.agent_id,
                        seq: envelope.seq,
                        heartbeat,
                        received_at,
                    })
                    .await?;
                info!(
                    agent = %envelope.agent_id,
                    seq = envelope.seq,
                    stored,
                    skew_ms = (heartbeat.agent_clock - received_at).num_milliseconds(),
                    "heartbeat"
                );
                Ok(())
            }
            other => {
                // Record kinds this deployment does not handle yet are kept,
                // not dropped, so a newer agent loses nothing.
                let reason = format!(
                    "kind `{}` is not handled by this ingest version",
                    other.kind().as_str()
                );
                warn!(agent = %envelope.agent_id, seq = envelope.seq, %reason, "parking");
                let body = contract::encode_body(&envelope);
                self.state
                    .park(
                        "erp-events",
                        &format!("{}#{}", envelope.agent_id, envelope.seq),
                        &body,
                        &reason,
                    )
                    .await
            }
        }
    }
}

fn failure(message_id: &str) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = message_id.to_owned();
    failure
}
