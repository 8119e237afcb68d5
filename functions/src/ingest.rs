//! `ingest`: ERP events from the agent, off the events queue.
//!
//! Records (products, prices, stock) are stored per SKU, newer over older
//! only; then every shop's mapping rules turn the SKU's latest records into
//! what that shop should show, and only a changed shop-facing value becomes
//! a shop operation on the shop-ops queue. A record a shop cannot show in
//! full is parked with its reasons (the admin status lists them); the rest
//! of the batch goes on. An envelope whose sequence number was already
//! applied is a no-op; a gap is logged and the agent is asked to resend
//! (see [`crate::sequences`]: sequences count per agent incarnation, and a
//! new life of an agent is heard from seq 1 and asked for everything).
//! Newer over older is decided by the envelope's place in its agent's
//! sequence, never by the agent's clock. A SKU whose stored item no longer
//! reads is parked with the reason and skipped; the rest goes on.
//!
//! Order answers: an `OrderAck` records the ERP document number (or the
//! reason the agent parked the order, which the admin status lists) on the
//! stored order; an `OrderProgress` records the ERP stage and tracking
//! number and, when either changed, queues the order updates (the stage,
//! or a cancellation; the tracking number) on the shop-ops queue, marking
//! them queued only once they are on it; the shop's platform decides what
//! each becomes there (WooCommerce: a status per its `order_stage_status`,
//! a customer note).
//!
//! Each SQS record is one envelope. A body that cannot be decoded (bad
//! JSON, unknown kind, a contract version this build does not speak) will
//! never decode however often it is retried, so it is parked with its
//! reason and the batch goes on. A failure to store state is transient: the
//! record, and every later record of the same FIFO group in this batch, is
//! reported back as a batch item failure so SQS redelivers them in order
//! (and, after maxReceiveCount, moves them to the DLQ, which has an alarm).

use std::collections::{BTreeMap, HashSet};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use contract::{Envelope, Payload, decode_body};
use tracing::{error, info, warn};

use crate::HandlerError;
use crate::aws::{Clients, describe_error};
use crate::catalog::{Catalog, RecordOrigin, SkuState};
use crate::documents::{InvoiceFiles, InvoiceRecords};
use crate::env::{EnvError, FunctionEnv};
use crate::mapping::{ShopOperation, ShopProductState, diff, not_yet_held};
use crate::orders::OrderStore;
use crate::sequences::{Position, SeqCheck, SeqVersion, Sequences};
use crate::shop::OrderUpdate;
use crate::shop_ops::OrderOperation;
use crate::shops::Shops;
use crate::state::{HeartbeatWrite, StateError, StateTable};

/// Times a batch reads, maps and writes SKUs that others keep writing
/// meanwhile before it gives up (and SQS redelivers it).
const WRITE_ATTEMPTS: usize = 5;

/// A record as a JSON value (our own records always serialise).
fn to_json<T: serde::Serialize>(record: &T) -> serde_json::Value {
    serde_json::to_value(record).unwrap_or_default()
}

/// What `ingest` needs, built once at cold start.
#[derive(Clone, Debug)]
pub struct Ingest {
    state: StateTable,
    catalog: Catalog,
    sequences: Sequences,
    orders: OrderStore,
    shops: crate::shop_settings::ShopsSource,
    sqs: aws_sdk_sqs::Client,
    shop_ops_queue_url: String,
    commands_queue_url: String,
    invoice_files: InvoiceFiles,
    invoice_records: InvoiceRecords,
    returns: crate::returns::ReturnStore,
    /// Where buyers open their invoices (the webhook's Function URL); empty
    /// until the deploy command knows it, and then no link is given.
    document_link_base: String,
}

impl Ingest {
    pub fn new(clients: &Clients, env: &FunctionEnv) -> Result<Self, EnvError> {
        let table = env.required("STATE_TABLE")?;
        let retention_days = env.parsed("RETENTION_DAYS", "a whole number of days")?;
        let shops = Shops::from_env(env, false).map_err(|e| EnvError::Invalid {
            name: "SHOPS",
            value: e.to_string(),
            expected: "a JSON list of shops (see docs/OPERATIONS.md)",
        })?;
        let invoice_link_days = env.parsed("INVOICE_LINK_DAYS", "a whole number of days")?;
        Ok(Ingest {
            invoice_files: InvoiceFiles::new(clients.s3.clone(), env.required("DOCUMENTS_BUCKET")?),
            invoice_records: InvoiceRecords::new(
                clients.dynamodb.clone(),
                table.clone(),
                invoice_link_days,
            ),
            document_link_base: env
                .get("DOCUMENT_LINK_BASE")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            returns: crate::returns::ReturnStore::new(clients.dynamodb.clone(), table.clone()),
            state: StateTable::new(clients.dynamodb.clone(), table.clone(), retention_days),
            catalog: Catalog::new(clients.dynamodb.clone(), table.clone()),
            sequences: Sequences::new(clients.dynamodb.clone(), table.clone()),
            orders: OrderStore::new(clients.dynamodb.clone(), table, retention_days),
            shops: crate::shop_settings::ShopsSource::from_env(shops, clients, env),
            sqs: clients.sqs.clone(),
            shop_ops_queue_url: env.required("SHOP_OPS_QUEUE_URL")?,
            commands_queue_url: env.required("COMMANDS_QUEUE_URL")?,
        })
    }

    /// The handler: one SQS batch in, the failed message ids out.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, HandlerError> {
        // The console's saved shop settings, at most CACHE old.
        self.shops.refresh().await;
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
                Ok(envelope) => match self.apply(envelope).await {
                    // Will not read however often it is retried: keep the
                    // message for a person instead of blocking the group.
                    Err(err @ StateError::Malformed { .. }) => {
                        warn!(%message_id, error = %err, "parking a message that meets an unreadable stored item");
                        self.state
                            .park("erp-events", &message_id, body, &err.to_string())
                            .await
                    }
                    other => other,
                },
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
        let agent = envelope.agent_id.as_str();
        let incarnation = envelope.incarnation.as_deref();
        if envelope.in_heartbeat_lane() {
            // Its own lane: not counted in the sequence, ordered by the last
            // data sequence number it carries.
            let position = self
                .sequences
                .check(agent, incarnation, envelope.seq.saturating_add(1))
                .await?;
            self.resend_if_behind(agent, incarnation, envelope.seq, position.last_applied)
                .await;
            self.end_if_superseded(agent, incarnation, envelope.seq, &position)
                .await;
            let version = SeqVersion {
                generation: position.version.generation,
                seq: envelope.seq,
            };
            return self.apply_payload(&envelope, version).await;
        }
        let position = self
            .sequences
            .check(agent, incarnation, envelope.seq)
            .await?;
        if let Payload::Heartbeat(_) = envelope.payload {
            self.end_if_superseded(agent, incarnation, envelope.seq, &position)
                .await;
        }
        match position.check {
            SeqCheck::Duplicate => {
                // A heartbeat is numbered when it is sent, so its number is
                // the agent's last one, as in the lane above.
                if let Payload::Heartbeat(_) = envelope.payload {
                    self.resend_if_behind(agent, incarnation, envelope.seq, position.last_applied)
                        .await;
                } else {
                    self.end_if_number_reused(agent, incarnation, &envelope, &position)
                        .await;
                }
                info!(%agent, seq = envelope.seq, "already applied; nothing to do");
                return Ok(());
            }
            SeqCheck::Gap { from, to } => {
                warn!(%agent, ?incarnation, from, to, new_life = position.new_life, "sequence gap: asking the agent to resend");
                self.ask_resend(agent, incarnation, from, to).await;
            }
            SeqCheck::InOrder if position.new_life => {
                // A deleted, recreated or restored state: what it believes
                // it sent says nothing about what the cloud holds.
                warn!(%agent, ?incarnation, "a new life of this agent's state: asking it to resend everything");
                self.ask_resend(agent, incarnation, 1, envelope.seq).await;
            }
            SeqCheck::InOrder => {}
        }
        self.apply_payload(&envelope, position.version).await?;
        self.sequences
            .mark(
                agent,
                incarnation,
                position.version,
                envelope.sent_at.timestamp_millis(),
            )
            .await
    }

    /// A data envelope numbered at or below what this life applied, but
    /// written after the envelope applied last: not a redelivery (a
    /// redelivered envelope is the one stored when it was numbered, its
    /// `sent_at` unchanged) but a number given twice, by a state file
    /// restored from a backup that numbered on before it heard it was
    /// behind. What it carries would be dropped as seen; the resend past
    /// anything it can have numbered tells it to begin a new life.
    /// Heartbeats are left out: a heartbeat not yet read keeps its number
    /// and takes a newer body.
    async fn end_if_number_reused(
        &self,
        agent: &str,
        incarnation: Option<&str>,
        envelope: &Envelope,
        position: &Position,
    ) {
        let sent_ms = envelope.sent_at.timestamp_millis();
        if incarnation.is_none() || position.last_sent_ms.is_none_or(|last| sent_ms <= last) {
            return;
        }
        warn!(%agent, ?incarnation, seq = envelope.seq, last_applied = ?position.last_applied, "a number this life gave before, on a newer envelope (a restored state file): asking the agent to begin a new life");
        self.ask_resend(agent, incarnation, envelope.seq, u64::MAX)
            .await;
    }

    /// An agent whose last number in this life (`agent_last_seq`, from its
    /// heartbeat) is below what the cloud applied of it: its state file went
    /// back (restored from an older backup), and what it numbers now would be
    /// dropped as seen. The resend past its last number tells it to begin a
    /// new life.
    async fn resend_if_behind(
        &self,
        agent: &str,
        incarnation: Option<&str>,
        agent_last_seq: u64,
        applied: Option<u64>,
    ) {
        let (Some(applied), Some(_)) = (applied, incarnation) else {
            return;
        };
        if applied > agent_last_seq {
            warn!(%agent, ?incarnation, agent_last_seq, applied, "the agent's state is older than what the cloud applied of it (a restored state file): asking it to begin a new life");
            self.ask_resend(agent, incarnation, agent_last_seq + 1, applied)
                .await;
        }
    }

    /// A heartbeat from a life a later life of the agent has passed (a
    /// state file restored from a backup taken before that later life
    /// began): in order within its life, but all it says ranks below the
    /// later life and would be dropped as older, for good. The resend past
    /// anything it can have numbered tells it to begin a new life, which
    /// ranks above every earlier one.
    async fn end_if_superseded(
        &self,
        agent: &str,
        incarnation: Option<&str>,
        heartbeat_seq: u64,
        position: &Position,
    ) {
        // Only a life heard before can have been passed by a later one.
        if incarnation.is_none() || position.new_life {
            return;
        }
        match self
            .sequences
            .superseded(agent, position.version.generation)
            .await
        {
            Ok(false) => {}
            Ok(true) => {
                warn!(%agent, ?incarnation, heartbeat_seq, "the agent speaks in a life a later one has passed (a restored state file): asking it to begin a new life");
                self.ask_resend(
                    agent,
                    incarnation,
                    heartbeat_seq.saturating_add(1),
                    u64::MAX,
                )
                .await;
            }
            // The next heartbeat asks again.
            Err(err) => {
                warn!(%agent, error = %err, "cannot tell whether the agent's life was passed")
            }
        }
    }

    async fn ask_resend(&self, agent: &str, incarnation: Option<&str>, from: u64, to: u64) {
        let envelope = Envelope::new(
            "cloud",
            0,
            Utc::now(),
            Payload::Resend(contract::Resend {
                from_seq: from,
                to_seq: to,
                incarnation: incarnation.map(str::to_owned),
            }),
        )
        .addressed_to(agent);
        // At the version every agent of the stack reads.
        let body =
            crate::agent_versions::command_body(self.state.client(), self.state.name(), &envelope)
                .await;
        let life = incarnation.map(|i| format!("{i}-")).unwrap_or_default();
        let dedup = fitting_dedup_id(format!("resend-{agent}-{life}{from}-{to}"));
        // On failure the next gap check asks again; the periodic passes heal anyway.
        self.send_command(agent, body, dedup, "a resend").await;
    }

    /// Tells an agent that writes heartbeats in the data lane although it
    /// reads the version with their own lane what the cloud reads: any
    /// command does (the agent learns versions only from commands). A ping,
    /// at most every five minutes per agent, at the version its heartbeat
    /// says it reads; it answers with a heartbeat.
    async fn announce_versions(&self, agent: &str, agent_max: u16, received_at: DateTime<Utc>) {
        let envelope = Envelope::new(
            "cloud",
            0,
            Utc::now(),
            Payload::Ping(contract::Ping {
                nonce: "versions".into(),
            }),
        )
        .addressed_to(agent);
        let body = contract::THIS_BUILD
            .write_version(Some(agent_max))
            .and_then(|version| contract::encode_body_at(&envelope, version))
            .map_err(StateError::from);
        let dedup = format!("versions-{agent}-{}", received_at.timestamp() / 300);
        self.send_command(agent, body, dedup, "a ping").await;
    }

    /// Sends a command to one agent's group of the commands queue; a
    /// failure is logged (the callers ask again later).
    async fn send_command(
        &self,
        agent: &str,
        body: Result<String, StateError>,
        dedup: String,
        what: &str,
    ) {
        let body = match body {
            Ok(body) => body,
            Err(err) => {
                // Refused (an agent too old for this build) or the table unreadable.
                warn!(error = %err, "could not send {what}");
                return;
            }
        };
        let sent = self
            .sqs
            .send_message()
            .queue_url(&self.commands_queue_url)
            .message_body(body)
            .message_group_id(agent_command_group(agent))
            .message_deduplication_id(dedup)
            .send()
            .await;
        if let Err(err) = sent {
            warn!(error = %describe_error(&err), "could not send {what}");
        }
    }

    /// Stores an envelope's records (newer over older) and queues, for every
    /// shop, the operations they make necessary. Returns the SKUs whose
    /// records changed and the operations queued.
    ///
    /// The SKUs' items are read together, merged, mapped, the operations
    /// queued, and only then each item written back with its queued states,
    /// under the condition that nobody wrote it meanwhile (a SKU that lost
    /// that race is read and mapped again). Were the queued state recorded
    /// before the operations were on the queue and the send failed, the
    /// retry would find nothing to send; this way a failure anywhere leaves
    /// the message to be redelivered, and the worst a retry does is queue
    /// an operation twice, which shop-push drops as a no-op.
    async fn apply_records(
        &self,
        envelope: &Envelope,
        version: SeqVersion,
    ) -> Result<(usize, usize), StateError> {
        let incoming = records_by_sku(envelope, version);
        let shop_ids: Vec<String> = self
            .shops
            .now()
            .shops
            .iter()
            .map(|s| s.id.clone())
            .collect();
        let mut pending: Vec<String> = incoming.keys().cloned().collect();
        let (mut touched, mut queued) = (0, 0);
        for attempt in 1..=WRITE_ATTEMPTS {
            let mut states = self.catalog.load_many(&pending, &shop_ids).await?;
            let mut operations = Vec::new();
            let mut parked = Vec::new();
            let mut writes = Vec::new();
            let mut written = Vec::new();
            for sku in &pending {
                let mut state = states.remove(sku).unwrap_or_default();
                if let Some(problem) = state.unreadable.take() {
                    parked.extend(self.park_unreadable(sku, &problem));
                    continue;
                }
                let mut changed = false;
                // Every record again as stored, only read later: the agent
                // resent unchanged records (a forced pass).
                let mut resent = true;
                for (kind, record, at, from) in incoming.get(sku).into_iter().flatten() {
                    resent &= state
                        .records
                        .get(kind)
                        .is_some_and(|stored| same_reading(&stored.record, record));
                    changed |= state.merge(kind, record.clone(), *at, Some(from.clone()));
                }
                if !changed {
                    continue;
                }
                let plan = match self.map_sku(sku, &state, resent) {
                    Ok(plan) => plan,
                    Err(StateError::Malformed { key, problem }) => {
                        parked.extend(self.park_unreadable(sku, &format!("{key}: {problem}")));
                        continue;
                    }
                    Err(err) => return Err(err),
                };
                for (shop, reasons) in plan.parked {
                    parked.extend(self.catalog.parked_writes(&shop, sku, &reasons));
                }
                for (op, shop_state) in plan.operations {
                    state.queued.insert(
                        op.shop.clone(),
                        (shop_state, op.source_time.timestamp_millis()),
                    );
                    operations.push(op);
                }
                writes.push(self.catalog.state_write(sku, &state)?);
                written.push(sku.clone());
            }
            self.catalog.write_all(parked).await?;
            queued +=
                crate::shop_ops::queue(&self.sqs, &self.shop_ops_queue_url, operations).await?;
            let landed = self.catalog.write_all(writes).await?;
            touched += landed.iter().filter(|l| **l).count();
            pending = written
                .into_iter()
                .zip(landed)
                .filter_map(|(sku, landed)| (!landed).then_some(sku))
                .collect();
            if pending.is_empty() {
                return Ok((touched, queued));
            }
            warn!(
                attempt,
                skus = pending.len(),
                "SKUs written meanwhile by another invocation; reading and mapping them again"
            );
        }
        Err(StateError::Dynamo {
            operation: "TransactWriteItems",
            table: self.state.name().to_owned(),
            message: format!(
                "{} SKUs were written by others {WRITE_ATTEMPTS} times in a row while this batch mapped them",
                pending.len()
            ),
        })
    }

    /// The writes that park a SKU in every shop because its stored item no
    /// longer reads (after a code change or a manual edit): retrying would
    /// never help, so its records are skipped, reported, and the rest of
    /// the batch goes on. Deleting the item (or fixing it) and forcing a
    /// pass for the SKU brings it back.
    fn park_unreadable(&self, sku: &str, problem: &str) -> Vec<crate::catalog::Write> {
        warn!(%sku, %problem, "stored state unreadable: SKU parked, its records skipped");
        let reasons = [format!(
            "stored state unreadable, ERP records not applied: {problem}"
        )];
        self.shops
            .now()
            .shops
            .iter()
            .flat_map(|shop| self.catalog.parked_writes(&shop.id, sku, &reasons))
            .collect()
    }

    /// What every shop should show of a SKU after a change to its records:
    /// the operations (each with the state to record as queued once it is
    /// on the queue) and the shops whose parked reasons changed.
    ///
    /// A shop gets the operation when the mapped state differs from what was
    /// queued or from what the shop confirmed it holds (a write it refused,
    /// or one that ended in the dead-letter queue, is queued again by the
    /// next reading), and always when the records were `resent` unchanged:
    /// then the operation is a reconcile, written even over what the shop is
    /// recorded as holding, which corrects a hand edit in the shop.
    fn map_sku(&self, sku: &str, state: &SkuState, resent: bool) -> Result<SkuPlan, StateError> {
        let erp = state.erp(sku)?;
        let mut plan = SkuPlan::default();
        let Some(product) = &erp.product else {
            // Prices or stock before the product card: mapped when it arrives.
            return Ok(plan);
        };
        let newest = erp.newest.unwrap_or_else(Utc::now);
        for shop in &self.shops.now().shops {
            // Shop-push keeps the operation with the later source time: a
            // later change never gets an earlier one than what was queued
            // before it, even when the agent's clock stepped back.
            let source = match state.queued.get(&shop.id) {
                Some((_, queued_ms)) => DateTime::from_timestamp_millis(queued_ms + 1)
                    .map_or(newest, |after| newest.max(after)),
                None => newest,
            };
            let price = erp
                .prices
                .iter()
                .find(|p| p.price_list == shop.rules.price_list);
            let stock = (!erp.stock.is_empty()).then_some(erp.stock.as_slice());
            let mapped = ShopProductState::from_records(product, price, stock, &shop.rules);
            let mut reasons = mapped.parked.clone();
            if price.is_none() {
                reasons.push(format!(
                    "no price in price list `{}`",
                    shop.rules.price_list
                ));
            }
            let parked_now = state.parked.get(&shop.id).cloned().unwrap_or_default();
            if reasons != parked_now {
                plan.parked.push((shop.id.clone(), reasons));
            }
            let queued = state.queued.get(&shop.id).map(|(q, _)| q);
            // Something changed: send the whole state the shop should show,
            // not just the change. The shop-ops queue does not keep order,
            // and shop-push drops an operation older than what the shop
            // holds; only a complete state can be dropped without losing a
            // field that the newer one did not carry.
            let Some(mut op) = diff(&shop.id, None, &mapped.state, source) else {
                continue;
            };
            let changed = diff(&shop.id, queued, &mapped.state, source).is_some();
            let not_held = state
                .held
                .get(&shop.id)
                .is_some_and(|held| !not_yet_held(&op.changes, Some(held)).is_empty());
            if changed || not_held || resent {
                op.reconcile = resent;
                plan.operations.push((op, mapped.state));
            }
        }
        Ok(plan)
    }

    async fn apply_payload(
        &self,
        envelope: &Envelope,
        version: SeqVersion,
    ) -> Result<(), StateError> {
        let received_at = Utc::now();
        match &envelope.payload {
            Payload::Products(_) | Payload::Prices(_) | Payload::Stock(_) => {
                let (touched, queued) = self.apply_records(envelope, version).await?;
                info!(
                    agent = %envelope.agent_id,
                    seq = envelope.seq,
                    kind = envelope.kind().as_str(),
                    records = envelope.payload.len(),
                    touched,
                    shop_operations = queued,
                    "records applied"
                );
                Ok(())
            }
            Payload::Heartbeat(heartbeat) => {
                let stored = self
                    .state
                    .record_heartbeat(HeartbeatWrite {
                        agent_id: &envelope.agent_id,
                        incarnation: envelope.incarnation.as_deref(),
                        seq: envelope.seq,
                        rank: version.rank(),
                        heartbeat,
                        max_version: envelope.sender_max_version(),
                        received_at,
                    })
                    .await?;
                if !envelope.in_heartbeat_lane()
                    && envelope.sender_max_version() >= contract::HEARTBEAT_LANE_SINCE
                {
                    self.announce_versions(
                        &envelope.agent_id,
                        envelope.sender_max_version(),
                        received_at,
                    )
                    .await;
                }
                info!(
                    agent = %envelope.agent_id,
                    seq = envelope.seq,
                    lane = envelope.in_heartbeat_lane(),
                    stored,
                    skew_ms = (heartbeat.agent_clock - received_at).num_milliseconds(),
                    "heartbeat"
                );
                Ok(())
            }
            Payload::OrderAck(ack) => {
                let recorded = self.orders.record_ack(ack).await?;
                if recorded {
                    info!(agent = %envelope.agent_id, seq = envelope.seq, shop = %ack.shop, order = %ack.order_id, outcome = ?ack.outcome, "order acknowledged by the ERP");
                } else {
                    warn!(agent = %envelope.agent_id, seq = envelope.seq, shop = %ack.shop, order = %ack.order_id, "order ack for an order not stored (expired, unknown, or already written); nothing to record");
                }
                Ok(())
            }
            Payload::OrderProgress(progress) => {
                self.apply_progress(envelope, progress, version).await
            }
            Payload::RetryOrder(retry) => {
                let shops = self.shops.now();
                let Some(shop) = shops.get(&retry.shop) else {
                    warn!(agent = %envelope.agent_id, shop = %retry.shop, "retry of an order of a shop not configured; ignored");
                    return Ok(());
                };
                let intake = crate::orders::OrderIntake::new(
                    self.orders.clone(),
                    self.sqs.clone(),
                    self.commands_queue_url.clone(),
                );
                let retried = intake
                    .retry(shop, &retry.order_id)
                    .await
                    .map_err(|crate::orders::IntakeError::Store(e)| e)?;
                info!(agent = %envelope.agent_id, shop = %retry.shop, order = %retry.order_id, ?retried, "a person asked to send a parked order again");
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
                let body = contract::encode_body(envelope);
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

impl Ingest {
    /// Records the ERP's progress on an order and queues what the shop
    /// should show because of it (once per change).
    async fn apply_progress(
        &self,
        envelope: &Envelope,
        progress: &contract::OrderProgress,
        version: SeqVersion,
    ) -> Result<(), StateError> {
        let shops = self.shops.now();
        let Some(shop) = shops.get(&progress.shop) else {
            warn!(agent = %envelope.agent_id, shop = %progress.shop, "order progress for a shop not configured; ignored");
            return Ok(());
        };
        let Some(stored) = self
            .orders
            .record_progress(progress, version.rank())
            .await?
        else {
            warn!(shop = %progress.shop, order = %progress.order_id, "order progress for an order not stored (expired or unknown); ignored");
            return Ok(());
        };
        // Seed 004's checks before realising: listed while the ERP holds
        // the order unrealised, taken off the list after.
        let waiting =
            progress.stage == contract::OrderStage::Accepted && !stored.order.state.is_closed();
        self.orders
            .awaiting_realisation(&stored, progress.realisation.as_ref().filter(|_| waiting))
            .await?;
        // The shop closed the order (cancelled, refunded, …): moving it to
        // another status would reopen it and take its stock again, so only
        // the ERP's documents still reach the buyer (a refunded order's
        // correction above all).
        let closed = stored.order.state.is_closed();
        if closed {
            info!(shop = %shop.id, order = %progress.order_id, shop_status = %stored.order.status, stage = ?stored.stage, "order progress for an order the shop closed: its status is left as it is");
        }
        let new_stage = stored
            .stage
            .clone()
            .filter(|_| !closed)
            .filter(|stage| stored.stage_queued.as_deref() != Some(stage.as_str()));
        let new_tracking = stored
            .tracking
            .clone()
            .filter(|_| !closed)
            .filter(|t| stored.tracking_queued.as_deref() != Some(t.as_str()));
        // The platform's connector decides what each update becomes in the
        // shop (a status, a note, a shipment, or nothing).
        let mut operations = Vec::new();
        if let Some(stage) = new_stage.as_deref().and_then(crate::shops::stage_named) {
            operations.push(OrderOperation {
                shop: shop.id.clone(),
                order_id: progress.order_id.clone(),
                update: OrderUpdate::for_stage(stage),
            });
        }
        if let Some(tracking) = &new_tracking {
            operations.push(OrderOperation {
                shop: shop.id.clone(),
                order_id: progress.order_id.clone(),
                update: OrderUpdate::Tracking {
                    number: tracking.clone(),
                    carrier: progress.carrier.clone(),
                },
            });
        }
        let mut links_given = Vec::new();
        for invoice in &progress.invoices {
            if invoice.is_correction() {
                // The buyer's return (or refund) now has its correction.
                self.returns
                    .correction_issued(&shop.id, &progress.order_id, &invoice.number)
                    .await?;
            }
            if let Some(link) = self
                .store_invoice(&shop.id, &progress.order_id, invoice)
                .await?
            {
                operations.push(OrderOperation {
                    shop: shop.id.clone(),
                    order_id: progress.order_id.clone(),
                    update: OrderUpdate::Invoice {
                        number: invoice.number.clone(),
                        link,
                        corrects: invoice.corrects.clone(),
                    },
                });
                links_given.push(invoice.document_id);
            }
        }
        let queued =
            crate::shop_ops::queue(&self.sqs, &self.shop_ops_queue_url, operations).await?;
        for document_id in links_given {
            self.invoice_records
                .link_queued(&shop.id, &progress.order_id, document_id)
                .await?;
        }
        self.orders
            .progress_queued(
                &shop.id,
                &progress.order_id,
                new_stage.as_deref(),
                new_tracking.as_deref(),
            )
            .await?;
        info!(shop = %shop.id, order = %progress.order_id, stage = ?stored.stage, tracking = ?stored.tracking, shop_operations = queued, "order progress");
        Ok(())
    }
}

impl Ingest {
    /// Renders the invoice's buyer's copy when the stored one shows another
    /// number or KSeF state, under its token's link; returns the link when
    /// the shop has not been given it yet.
    async fn store_invoice(
        &self,
        shop: &str,
        order_id: &str,
        invoice: &contract::Invoice,
    ) -> Result<Option<String>, StateError> {
        let record = self
            .invoice_records
            .get_or_create(shop, order_id, invoice.document_id)
            .await?;
        let shown_ksef = invoice.ksef_number.clone().unwrap_or_default();
        let current = record.rendered_number.as_deref() == Some(invoice.number.as_str())
            && record.rendered_ksef.as_deref() == Some(shown_ksef.as_str());
        if !current {
            let pdf = match crate::invoice_pdf::render_invoice(invoice) {
                Ok(pdf) => pdf,
                Err(err) => {
                    // The data cannot change by retrying: the order's other
                    // news goes on, the invoice is reported for a person.
                    error!(shop, order = order_id, invoice = %invoice.number, error = %err, "the invoice cannot be rendered; the buyer gets no copy");
                    return Ok(None);
                }
            };
            self.invoice_files
                .put(&record.token, pdf, &invoice.number)
                .await?;
            self.invoice_records
                .rendered(
                    shop,
                    order_id,
                    invoice.document_id,
                    &invoice.number,
                    invoice.ksef_number.as_deref(),
                )
                .await?;
            info!(shop, order = order_id, invoice = %invoice.number, ksef = ?invoice.ksef_number, "the buyer's copy of the invoice stored");
        }
        if record.link_queued {
            return Ok(None);
        }
        if self.document_link_base.is_empty() {
            warn!(shop, order = order_id, invoice = %invoice.number, "no DOCUMENT_LINK_BASE: the invoice is stored, but the shop gets no link until the deploy command sets it");
            return Ok(None);
        }
        Ok(Some(format!(
            "{}/invoice/{}",
            self.document_link_base.trim_end_matches('/'),
            record.token
        )))
    }
}

/// What [`Ingest::map_sku`] decided for one SKU.
#[derive(Default)]
struct SkuPlan {
    operations: Vec<(ShopOperation, ShopProductState)>,
    /// shop → the reasons the SKU is parked there now (empty: no longer parked).
    parked: Vec<(String, Vec<String>)>,
}

/// An ERP record of an envelope: its kind (its place in the SKU's item:
/// `product`, `price#<list>`, `stock#<warehouse>`), the record, the agent's
/// clock for it (shown, and the source time of shop operations) and where
/// it stands in the agent's sequence (what decides newer over older).
type IncomingRecord = (String, serde_json::Value, DateTime<Utc>, RecordOrigin);

/// An envelope's ERP records by SKU.
fn records_by_sku(
    envelope: &Envelope,
    version: SeqVersion,
) -> BTreeMap<String, Vec<IncomingRecord>> {
    let mut by_sku: BTreeMap<String, Vec<_>> = BTreeMap::new();
    let from = RecordOrigin {
        agent: envelope.agent_id.clone(),
        rank: version.rank(),
    };
    let mut add = |sku: &str, kind: String, record: serde_json::Value, at: DateTime<Utc>| {
        by_sku
            .entry(sku.to_owned())
            .or_default()
            .push((kind, record, at, from.clone()));
    };
    match &envelope.payload {
        Payload::Products(products) => {
            for p in products {
                // A card's own modification time when the ERP has one, but
                // never older than the batch.
                let at = p
                    .modified_at
                    .unwrap_or(envelope.sent_at)
                    .max(envelope.sent_at);
                add(&p.sku, "product".into(), to_json(p), at);
            }
        }
        Payload::Prices(prices) => {
            for p in prices {
                let kind = format!("price#{}", p.price_list);
                add(&p.sku, kind, to_json(p), envelope.sent_at);
            }
        }
        Payload::Stock(stock) => {
            for r in stock {
                add(
                    &r.sku,
                    format!("stock#{}", r.warehouse),
                    to_json(r),
                    r.read_at,
                );
            }
        }
        _ => {}
    }
    by_sku
}

/// The commands queue group of everything addressed to one agent: its
/// commands wait only behind each other, never behind another agent's.
pub fn agent_command_group(agent: &str) -> String {
    format!("agent-{agent}")
}

/// SQS takes deduplication ids of at most 128 characters: a longer one
/// (a 64-character agent id with an incarnation and two large numbers) is
/// replaced by its SHA-256, which keeps it as unique.
fn fitting_dedup_id(id: String) -> String {
    use sha2::{Digest, Sha256};
    if id.len() <= 128 {
        return id;
    }
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Whether two readings of one record say the same, whenever each was read.
fn same_reading(stored: &serde_json::Value, incoming: &serde_json::Value) -> bool {
    let without_time = |value: &serde_json::Value| {
        let mut value = value.clone();
        if let Some(fields) = value.as_object_mut() {
            fields.remove("read_at");
        }
        value
    };
    without_time(stored) == without_time(incoming)
}

fn failure(message_id: &str) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = message_id.to_owned();
    failure
}

#[cfg(test)]
mod tests {
    use super::fitting_dedup_id;

    #[test]
    fn a_deduplication_id_always_fits_sqs() {
        let short = "resend-biuro-1-5".to_owned();
        assert_eq!(fitting_dedup_id(short.clone()), short);
        let agent = "a".repeat(64);
        let long = format!(
            "resend-{agent}-{}-{}-{}",
            "f".repeat(32),
            u64::MAX,
            u64::MAX
        );
        let fitted = fitting_dedup_id(long.clone());
        assert!(fitted.len() <= 128);
        assert_ne!(fitted, fitting_dedup_id(long.replace("-1", "-2")));
    }
}
