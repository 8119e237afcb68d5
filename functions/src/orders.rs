//! Shop orders in the state table, and the one path every order takes in:
//! normalised (by the shop's connector), stored once, and sent to the ERP
//! when it passes the shop's trigger. The `webhook` and the `poller` both
//! call [`OrderIntake::accept`], so a lost webhook loses nothing and a
//! duplicate does nothing.
//!
//! Items (personal data: every one carries `expires_at`, now + the
//! retention, and every read here ignores expired ones, since DynamoDB
//! deletes lazily and emulators never do):
//! - `pk = order#<shop>`, `sk = <order id>`: `order` (the normalised
//!   [`contract::Order`] as JSON), `revision_ms` (the platform's
//!   `date_modified_gmt`; a write lands only when it is newer, so an older
//!   update never overwrites a newer one and an equal one is a no-op),
//!   `status`, `stored_ms`, `expires_at`;
//!   the command: `command_claim_ms` (a sender's lease), `command_rev_ms`
//!   (the revision whose `CreateOrder` is on the queue); the cancel, once
//!   the shop closed an order whose command went out: `cancel_claim_ms`,
//!   `cancel_rev_ms`, and `withdrawn_ms` when the agent took the document
//!   out of Optima;
//!   the agent's answers: `erp_document_id`, `erp_document_number`,
//!   `acked_ms`, `parked_reason`; progress: `stage`, `tracking`,
//!   `documents`, `progress_ms` (the agent's clock, shown) and `progress_rank` (its
//!   place in the agent's sequence, which orders progress), and what became shop operations:
//!   `stage_queued`, `tracking_queued`; what shop-push showed in the shop:
//!   `stage_shown`, `tracking_shown`, `invoice_shown`.
//! - `pk = parked-orders`, `sk = <shop>#<order id>`: orders the agent
//!   parked, with the reason, for the admin status.
//! - `pk = cursors`, `sk = orders#<shop>`: the poller's cursor (`at_ms`).
//!
//! The `CreateOrder` command goes to the commands FIFO queue with
//! `MessageGroupId` = the shop id (or, with the shop's `orders_agent` set,
//! addressed to that agent and in its group) and `MessageDeduplicationId` = hex
//! SHA-256 of `shop \0 order id \0 revision ms`. Each order is sent once:
//! the first revision that passes the trigger claims the send with a
//! conditional write (a lease, so a sender that died is replaced after
//! [`CLAIM_LEASE_MS`]), sends, then records the revision (`command_rev_ms`,
//! written only after SQS took the message). Until that mark is there, any
//! delivery or poll that finds the order, the same revision included, sends
//! again ([`Accepted::command_pending`] says so, and the poller keeps its
//! cursor from moving past such an order), so a failed send never leaves an
//! order stored but never queued. Later revisions are stored, not sent
//! again (the ERP document exists by then; the agent also finds the order's
//! key if a command ever arrives twice), except one: when a revision shows
//! the shop closed the order (`order_closed_statuses`), a `CancelOrder`
//! goes out the same way, once, behind the create in the shop's FIFO
//! group. The agent deletes a buffered document or answers that a person
//! must decide (the order is then parked with that reason); an agent too
//! old to read the command gets none, and the order is parked for a person.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Duration, Utc};
use contract::{CancelOrder, Envelope, Order, OrderAck, OrderAckOutcome, OrderProgress, Payload};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::aws::describe_error;
use crate::dynamo::{get_n, get_s, n, s};
use crate::shop::{FeedPosition, OrderParseError};
use crate::shops::{ShopConfig, stage_name};
use crate::state::StateError;

/// How long a claim to send an order's command holds before another
/// sender may take over (the claimer died between claim and send).
pub const CLAIM_LEASE_MS: i64 = 60_000;

type Item = HashMap<String, AttributeValue>;

fn order_pk(shop: &str) -> String {
    format!("order#{shop}")
}

/// Parked orders read for the console's filter.
const PARKED_READ: usize = 500;

/// The console's listing of a shop's orders by the day they were received.
fn recent_pk(shop: &str, received_ms: i64) -> String {
    let day = DateTime::from_timestamp_millis(received_ms).unwrap_or_default();
    format!("orders-by-day#{shop}#{}", day.format("%Y-%m-%d"))
}

/// The console's search: a shop's orders under one term.
fn find_pk(shop: &str, term: &str) -> String {
    format!("order-find#{shop}#{term}")
}

/// Sorts by receipt time (zero-padded), then the order's id.
fn listing_sk(received_ms: i64, order_id: &str) -> String {
    format!("{received_ms:015}#{order_id}")
}

/// What the console's search finds an order by.
fn search_terms(order: &Order) -> Vec<String> {
    let mut terms = vec![format!("number:{}", order.number.trim())];
    if let Some(email) = order
        .buyer
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        terms.push(format!("email:{}", email.to_lowercase()));
    }
    if let Some(surname) = order.buyer.billing.name.split_whitespace().last() {
        terms.push(format!("name:{}", surname.to_lowercase()));
    }
    for line in &order.lines {
        terms.push(format!("sku:{}", line.sku.trim()));
    }
    terms.sort();
    terms.dedup();
    terms
}

/// (receipt time, shop, order id) of listing items still kept.
fn listing_refs(shop: &str, items: Vec<Item>, now: DateTime<Utc>) -> Vec<(i64, String, String)> {
    items
        .iter()
        .filter(|item| !expired(item, now))
        .filter_map(|item| {
            let (received, _) = get_s(item, "sk")?.split_once('#')?;
            Some((
                received.parse().ok()?,
                shop.to_owned(),
                get_s(item, "order_id")?.to_owned(),
            ))
        })
        .collect()
}

fn expired(item: &Item, now: DateTime<Utc>) -> bool {
    get_n::<i64>(item, "expires_at").is_some_and(|at| at <= now.timestamp())
}

/// An order as stored, with what happened to it.
#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub order: Order,
    pub revision_ms: i64,
    pub expires_at: i64,
    /// The revision whose `CreateOrder` went out, if any.
    pub command_rev_ms: Option<i64>,
    pub command_claim_ms: Option<i64>,
    /// The revision whose `CancelOrder` went out (or was answered without
    /// one, for an agent too old to read it), if any.
    pub cancel_rev_ms: Option<i64>,
    /// The agent took the order's document out of Optima after the shop
    /// cancelled it (or there was none).
    pub withdrawn: bool,
    /// How many times a parked order was sent to the ERP again.
    pub retries: i64,
    pub erp_document_number: Option<String>,
    pub parked_reason: Option<String>,
    pub stage: Option<String>,
    pub tracking: Option<String>,
    pub stage_queued: Option<String>,
    pub tracking_queued: Option<String>,
    /// What shop-push has shown in the shop: the stage (by name), the
    /// tracking number, the invoice number.
    pub stage_shown: Option<String>,
    pub tracking_shown: Option<String>,
    pub invoice_shown: Option<String>,
    /// The ERP's documents of the order, as its last progress named them.
    pub documents: Vec<String>,
    /// When the cloud first stored it (epoch ms; 0 for orders stored
    /// before the field).
    pub received_ms: i64,
}

/// What shop-push records on an order once the shop said yes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShownMark {
    Stage,
    Tracking,
    Invoice,
}

impl ShownMark {
    fn attribute(self) -> &'static str {
        match self {
            ShownMark::Stage => "stage_shown",
            ShownMark::Tracking => "tracking_shown",
            ShownMark::Invoice => "invoice_shown",
        }
    }
}

impl StoredOrder {
    fn from_item(item: &Item) -> Result<StoredOrder, StateError> {
        let key = format!(
            "{}/{}",
            get_s(item, "pk").unwrap_or("?"),
            get_s(item, "sk").unwrap_or("?")
        );
        let order: Order = get_s(item, "order")
            .ok_or_else(|| StateError::Malformed {
                key: key.clone(),
                problem: "no order".into(),
            })
            .and_then(|text| {
                serde_json::from_str(text).map_err(|e| StateError::Malformed {
                    key: key.clone(),
                    problem: e.to_string(),
                })
            })?;
        let text = |name: &str| get_s(item, name).map(str::to_owned);
        Ok(StoredOrder {
            revision_ms: get_n(item, "revision_ms").unwrap_or(0),
            received_ms: get_n(item, "received_ms").unwrap_or(0),
            expires_at: get_n(item, "expires_at").unwrap_or(0),
            command_rev_ms: get_n(item, "command_rev_ms"),
            command_claim_ms: get_n(item, "command_claim_ms"),
            cancel_rev_ms: get_n(item, "cancel_rev_ms"),
            withdrawn: get_n::<i64>(item, "withdrawn_ms").is_some(),
            retries: get_n(item, "retries").unwrap_or(0),
            erp_document_number: text("erp_document_number"),
            parked_reason: text("parked_reason"),
            stage: text("stage"),
            tracking: text("tracking"),
            stage_queued: text("stage_queued"),
            tracking_queued: text("tracking_queued"),
            stage_shown: text("stage_shown"),
            tracking_shown: text("tracking_shown"),
            invoice_shown: text("invoice_shown"),
            documents: get_s(item, "documents")
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default(),
            order,
        })
    }
}

/// What storing an order did.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Whether this revision was written (false: an equal or newer one is stored).
    pub written: bool,
    /// The order as now stored (the newest revision).
    pub current: StoredOrder,
}

/// A parked order, for the admin status.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ParkedOrder {
    pub shop: String,
    pub order_id: String,
    pub number: String,
    pub reason: String,
    pub parked_at: DateTime<Utc>,
}

/// An order the ERP holds but has not realised yet, with what stands in
/// the way of realising it (seed 004's three checks), for the admin status.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AwaitingRealisation {
    pub shop: String,
    pub order_id: String,
    pub number: String,
    /// The ERP's document (e.g. "RO/21/2026").
    pub document: String,
    /// All three checks pass: Optima may realise it.
    pub ready: bool,
    /// What blocks it, in words.
    pub blocked_by: Vec<String>,
    pub checked_at: DateTime<Utc>,
}

/// The reasons an order cannot be realised yet: the buyer's remark, the
/// goods the warehouse lacks, and (from the shop) no payment.
pub fn realisation_blockers(check: &contract::RealisationCheck, paid: bool) -> Vec<String> {
    let mut blocked_by = Vec::new();
    if let Some(remark) = &check.remark {
        blocked_by.push(format!("the buyer's remark is on the order: \"{remark}\""));
    }
    for line in &check.short {
        blocked_by.push(format!(
            "{}: {} needed in {}, {} free",
            line.sku, line.needed, line.warehouse, line.available
        ));
    }
    if !paid {
        blocked_by.push("not paid in the shop".into());
    }
    blocked_by
}

/// Where an interrupted order poll goes on. Pages are read in id order
/// over a fixed `since`, so a run that reached its page limit with pages
/// left continues at the next page with the same `since`, and the cursor
/// moves only when a run has read to the last page: moving it to the
/// newest revision of the pages read so far could pass orders on pages not
/// yet read (a higher id, an older revision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollResume {
    pub since: FeedPosition,
    /// Where the next page starts (the platform's token; `None`: the first).
    pub page: Option<crate::shop::PageToken>,
    pub newest: Option<FeedPosition>,
    pub oldest_pending: Option<FeedPosition>,
}

/// The orders in the state table.
#[derive(Clone, Debug)]
pub struct OrderStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention: Duration,
}

impl OrderStore {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        retention_days: i64,
    ) -> Self {
        OrderStore {
            client,
            table: table.into(),
            retention: Duration::days(retention_days.max(1)),
        }
    }

    fn error(
        &self,
        operation: &'static str,
        err: &(dyn std::error::Error + 'static),
    ) -> StateError {
        StateError::dynamo(operation, &self.table, err)
    }

    /// Stores `order` unless an equal or newer revision is stored (an
    /// expired item counts as absent).
    ///
    /// `closing`: the order's status closes it in its shop. Platforms give
    /// revisions to the second, so a cancellation can carry the same
    /// revision as the update before it; at an equal revision a closing
    /// status that differs from the stored one is stored (closing wins, so
    /// deliveries in any order end the same), any other equal revision is
    /// a no-op.
    pub async fn store(&self, order: &Order, closing: bool) -> Result<Stored, StateError> {
        let now = Utc::now();
        let condition = if closing {
            "attribute_not_exists(pk) OR revision_ms < :rev OR expires_at <= :now_s OR (revision_ms = :rev AND #status <> :status)"
        } else {
            "attribute_not_exists(pk) OR revision_ms < :rev OR expires_at <= :now_s"
        };
        let json = serde_json::to_string(order).map_err(|e| StateError::Malformed {
            key: order.key(),
            problem: e.to_string(),
        })?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(order_pk(&order.shop)))
            .key("sk", s(&order.order_id))
            .update_expression(
                "SET #order = :order, revision_ms = :rev, #status = :status, stored_ms = :now, expires_at = :exp, received_ms = if_not_exists(received_ms, :now)",
            )
            .condition_expression(condition)
            .expression_attribute_names("#order", "order")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":order", s(json))
            .expression_attribute_values(":rev", n(order.revision.timestamp_millis()))
            .expression_attribute_values(":status", s(&order.status))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_values(":now_s", n(now.timestamp()))
            .expression_attribute_values(":exp", n((now + self.retention).timestamp()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                let received_ms = get_n(&item, "received_ms").unwrap_or(now.timestamp_millis());
                self.index(order, received_ms).await?;
                Ok(Stored {
                    written: true,
                    current: StoredOrder::from_item(&item)?,
                })
            }
            Err(err) => {
                let old = err
                    .as_service_error()
                    .filter(|e| e.is_conditional_check_failed_exception())
                    .map(|e| match e {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => {
                            c.item().cloned()
                        }
                        _ => None,
                    });
                match old {
                    Some(Some(item)) => {
                        let current = StoredOrder::from_item(&item)?;
                        // Listed again: the first delivery may have stored
                        // the order and failed to list it.
                        self.index(&current.order, current.received_ms).await?;
                        Ok(Stored {
                            written: false,
                            current,
                        })
                    }
                    // The condition failed but the emulator/AWS did not return
                    // the item: read it.
                    Some(None) => match self.get(&order.shop, &order.order_id).await? {
                        Some(current) => {
                            self.index(&current.order, current.received_ms).await?;
                            Ok(Stored {
                                written: false,
                                current,
                            })
                        }
                        None => Err(StateError::Malformed {
                            key: order.key(),
                            problem: "the stored order vanished during the write".into(),
                        }),
                    },
                    None => Err(self.error("UpdateItem", &err)),
                }
            }
        }
    }

    /// Lists the order for the console: in its shop's partition of the
    /// day it was received, and under each term it is found by (its
    /// number, the buyer's e-mail and surname, each SKU). Written with each
    /// delivery, the same keys each time (the receipt time does not
    /// change), so a failure here fails the store and the shop's retry
    /// lists it. An order stored before the field (no receipt time) is
    /// listed by its revision.
    async fn index(&self, order: &Order, received_ms: i64) -> Result<(), StateError> {
        let received_ms = if received_ms > 0 {
            received_ms
        } else {
            order.revision.timestamp_millis()
        };
        let sk = listing_sk(received_ms, &order.order_id);
        let expires = n((Utc::now() + self.retention).timestamp());
        let mut partitions = vec![recent_pk(&order.shop, received_ms)];
        partitions.extend(
            search_terms(order)
                .into_iter()
                .map(|term| find_pk(&order.shop, &term)),
        );
        let puts = partitions.into_iter().map(|pk| {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(pk))
                .item("sk", s(&sk))
                .item("order_id", s(&order.order_id))
                .item("expires_at", expires.clone())
                .send()
        });
        futures::future::try_join_all(puts)
            .await
            .map_err(|e| self.error("PutItem", &e))?;
        Ok(())
    }

    /// The newest orders of `shops` received before `before_ms` (epoch ms;
    /// `None`: now), newest first, at most `limit`, reading day partitions
    /// back over the retention period (Query per shop and day, never a scan).
    pub async fn recent(
        &self,
        shops: &[String],
        before_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredOrder>, StateError> {
        let now = Utc::now();
        let before = before_ms.unwrap_or(now.timestamp_millis() + 1);
        let mut refs: Vec<(i64, String, String)> = Vec::new();
        let days = self.retention.num_days() + 1;
        for back in 0..days {
            let day = before - back * 86_400_000;
            for shop in shops {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND sk < :before")
                    .expression_attribute_values(":pk", s(recent_pk(shop, day)))
                    .expression_attribute_values(":before", s(listing_sk(before, "")))
                    .scan_index_forward(false)
                    .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                    .send()
                    .await
                    .map_err(|e| self.error("Query", &e))?;
                refs.extend(listing_refs(shop, out.items.unwrap_or_default(), now));
            }
            if refs.len() >= limit {
                break;
            }
        }
        self.by_refs(refs, limit).await
    }

    /// Orders of `shops` found by what a person types: an order's number,
    /// a buyer's e-mail or surname, or a SKU (exact, case aside for e-mail
    /// and surname), newest first, at most `limit` (Query per term and shop).
    pub async fn find(
        &self,
        shops: &[String],
        text: &str,
        limit: usize,
    ) -> Result<Vec<StoredOrder>, StateError> {
        let now = Utc::now();
        let text = text.trim();
        let terms = if text.contains('@') {
            vec![format!("email:{}", text.to_lowercase())]
        } else {
            vec![
                format!("number:{text}"),
                format!("sku:{text}"),
                format!("name:{}", text.to_lowercase()),
            ]
        };
        let mut refs = Vec::new();
        for shop in shops {
            for term in &terms {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(find_pk(shop, term)))
                    .scan_index_forward(false)
                    .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                    .send()
                    .await
                    .map_err(|e| self.error("Query", &e))?;
                refs.extend(listing_refs(shop, out.items.unwrap_or_default(), now));
            }
        }
        self.by_refs(refs, limit).await
    }

    /// The parked orders of `shops`, newest first, at most `limit` (their
    /// listing, then the orders by key).
    pub async fn parked_orders(
        &self,
        shops: &[String],
        limit: usize,
    ) -> Result<Vec<StoredOrder>, StateError> {
        let refs = self
            .parked(PARKED_READ)
            .await?
            .into_iter()
            .filter(|p| shops.contains(&p.shop))
            .map(|p| (p.parked_at.timestamp_millis(), p.shop, p.order_id))
            .collect();
        self.by_refs(refs, limit).await
    }

    /// The orders the listing names, newest first, each once.
    async fn by_refs(
        &self,
        mut refs: Vec<(i64, String, String)>,
        limit: usize,
    ) -> Result<Vec<StoredOrder>, StateError> {
        refs.sort_by(|a, b| b.cmp(a));
        refs.dedup_by(|a, b| a.1 == b.1 && a.2 == b.2);
        refs.truncate(limit);
        let keys = refs
            .iter()
            .map(|(_, shop, id)| {
                HashMap::from([
                    ("pk".to_owned(), s(order_pk(shop))),
                    ("sk".to_owned(), s(id)),
                ])
            })
            .collect();
        let now = Utc::now();
        let mut orders: Vec<StoredOrder> =
            crate::dynamo::batch_get(&self.client, &self.table, keys)
                .await?
                .iter()
                .filter(|item| !expired(item, now))
                .filter_map(|item| match StoredOrder::from_item(item) {
                    Ok(order) => Some(order),
                    Err(err) => {
                        warn!(error = %err, "a listed order does not read; left out of the list");
                        None
                    }
                })
                .collect();
        let rank: HashMap<(&str, &str), usize> = refs
            .iter()
            .enumerate()
            .map(|(i, (_, shop, id))| ((shop.as_str(), id.as_str()), i))
            .collect();
        orders.sort_by_key(|o| {
            rank.get(&(o.order.shop.as_str(), o.order.order_id.as_str()))
                .copied()
                .unwrap_or(usize::MAX)
        });
        Ok(orders)
    }

    /// An order, unless absent or expired.
    pub async fn get(&self, shop: &str, order_id: &str) -> Result<Option<StoredOrder>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(order_pk(shop)))
            .key("sk", s(order_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", &e))?;
        match out.item {
            Some(item) if !expired(&item, Utc::now()) => Ok(Some(StoredOrder::from_item(&item)?)),
            _ => Ok(None),
        }
    }

    /// Claims the sending of an order's command; false when it is sent or
    /// another sender holds a fresh claim. A cancel is claimed only once
    /// the create went out.
    pub async fn claim_command(
        &self,
        shop: &str,
        order_id: &str,
        command: OrderCommand,
    ) -> Result<bool, StateError> {
        let now = Utc::now().timestamp_millis();
        let (claim, sent) = command.attributes();
        let after = match command {
            OrderCommand::Create => "",
            OrderCommand::Cancel => " AND attribute_exists(command_rev_ms)",
        };
        self.conditional_update(
            shop,
            order_id,
            &format!("SET {claim} = :now"),
            &format!(
                "attribute_exists(pk) AND attribute_not_exists({sent}){after} AND \
                 (attribute_not_exists({claim}) OR {claim} < :stale)"
            ),
            &[(":now", n(now)), (":stale", n(now - CLAIM_LEASE_MS))],
        )
        .await
    }

    /// Records that the command for `revision_ms` is on the queue.
    pub async fn command_sent(
        &self,
        shop: &str,
        order_id: &str,
        command: OrderCommand,
        revision_ms: i64,
    ) -> Result<(), StateError> {
        let (_, sent) = command.attributes();
        self.conditional_update(
            shop,
            order_id,
            &format!("SET {sent} = :rev"),
            "attribute_exists(pk)",
            &[(":rev", n(revision_ms))],
        )
        .await
        .map(|_| ())
    }

    /// Gives a claim back after a failed send, so the next sender tries at once.
    pub async fn release_claim(
        &self,
        shop: &str,
        order_id: &str,
        command: OrderCommand,
    ) -> Result<(), StateError> {
        let (claim, sent) = command.attributes();
        self.conditional_update(
            shop,
            order_id,
            &format!("REMOVE {claim}"),
            &format!("attribute_not_exists({sent})"),
            &[],
        )
        .await
        .map(|_| ())
    }

    /// Makes a parked order sendable again (its create command is no longer
    /// marked as sent, and a retry is counted so the new command is not a
    /// duplicate to SQS); false when it is not parked, or has a document.
    pub async fn rearm(&self, shop: &str, order_id: &str) -> Result<bool, StateError> {
        let now = Utc::now();
        let rearmed = self
            .conditional_update(
                shop,
                order_id,
                "SET retries = if_not_exists(retries, :zero) + :one REMOVE command_rev_ms, command_claim_ms, parked_reason",
                "attribute_exists(pk) AND expires_at > :now_s AND attribute_exists(parked_reason) \
                 AND attribute_not_exists(erp_document_number) AND attribute_not_exists(withdrawn_ms)",
                &[
                    (":zero", n(0)),
                    (":one", n(1)),
                    (":now_s", n(now.timestamp())),
                ],
            )
            .await?;
        if rearmed {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s("parked-orders"))
                .key("sk", s(format!("{shop}#{order_id}")))
                .send()
                .await
                .map_err(|e| self.error("DeleteItem", &e))?;
        }
        Ok(rearmed)
    }

    /// Records the agent's answer. False when the order is not (or no longer) stored.
    pub async fn record_ack(&self, ack: &OrderAck) -> Result<bool, StateError> {
        let now = Utc::now();
        let recorded = match &ack.outcome {
            OrderAckOutcome::Written {
                document_id,
                document_number,
            } => {
                self.conditional_update(
                    &ack.shop,
                    &ack.order_id,
                    "SET erp_document_id = :id, erp_document_number = :number, acked_ms = :now REMOVE parked_reason",
                    "attribute_exists(pk) AND expires_at > :now_s",
                    &[
                        (":id", n(document_id)),
                        (":number", s(document_number)),
                        (":now", n(now.timestamp_millis())),
                        (":now_s", n(now.timestamp())),
                    ],
                )
                .await?
            }
            OrderAckOutcome::Parked { reason } => {
                self.conditional_update(
                    &ack.shop,
                    &ack.order_id,
                    "SET parked_reason = :reason, acked_ms = :now",
                    "attribute_exists(pk) AND expires_at > :now_s AND attribute_not_exists(erp_document_number)",
                    &[
                        (":reason", s(reason)),
                        (":now", n(now.timestamp_millis())),
                        (":now_s", n(now.timestamp())),
                    ],
                )
                .await?
            }
            OrderAckOutcome::Withdrawn { .. } => {
                // The shop closed the order itself: no status to set.
                self.conditional_update(
                    &ack.shop,
                    &ack.order_id,
                    "SET withdrawn_ms = :now, acked_ms = :now, stage = :stage, stage_queued = :stage REMOVE parked_reason",
                    "attribute_exists(pk) AND expires_at > :now_s",
                    &[
                        (":stage", s("cancelled")),
                        (":now", n(now.timestamp_millis())),
                        (":now_s", n(now.timestamp())),
                    ],
                )
                .await?
            }
            OrderAckOutcome::CancelHeld {
                document_number,
                reason,
            } => {
                let mut values = vec![
                    (":reason", s(reason)),
                    (":now", n(now.timestamp_millis())),
                    (":now_s", n(now.timestamp())),
                ];
                let set_number = if document_number.is_empty() {
                    ""
                } else {
                    values.push((":number", s(document_number)));
                    ", erp_document_number = :number"
                };
                self.conditional_update(
                    &ack.shop,
                    &ack.order_id,
                    &format!("SET parked_reason = :reason, acked_ms = :now{set_number}"),
                    "attribute_exists(pk) AND expires_at > :now_s",
                    &values,
                )
                .await?
            }
        };
        if !recorded {
            return Ok(false);
        }
        let sk = format!("{}#{}", ack.shop, ack.order_id);
        match &ack.outcome {
            OrderAckOutcome::Written { .. } | OrderAckOutcome::Withdrawn { .. } => {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", s("parked-orders"))
                    .key("sk", s(sk))
                    .send()
                    .await
                    .map_err(|e| self.error("DeleteItem", &e))?;
            }
            OrderAckOutcome::Parked { reason } | OrderAckOutcome::CancelHeld { reason, .. } => {
                let number = self
                    .get(&ack.shop, &ack.order_id)
                    .await?
                    .map(|o| o.order.number)
                    .unwrap_or_else(|| ack.order_id.clone());
                self.park(&ack.shop, &ack.order_id, &number, reason).await?;
            }
        }
        Ok(true)
    }

    /// Lists an order on the admin status with its reason.
    pub async fn park(
        &self,
        shop: &str,
        order_id: &str,
        number: &str,
        reason: &str,
    ) -> Result<(), StateError> {
        let now = Utc::now();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s("parked-orders"))
            .item("sk", s(format!("{shop}#{order_id}")))
            .item("shop", s(shop))
            .item("order_id", s(order_id))
            .item("number", s(number))
            .item("reason", s(reason))
            .item("parked_ms", n(now.timestamp_millis()))
            .item("expires_at", n((now + self.retention).timestamp()))
            .send()
            .await
            .map_err(|e| self.error("PutItem", &e))?;
        Ok(())
    }

    /// Lists the order as waiting to be realised with what blocks it, or
    /// (`check` none: realised, cancelled) takes it off the list.
    pub async fn awaiting_realisation(
        &self,
        stored: &StoredOrder,
        check: Option<&contract::RealisationCheck>,
    ) -> Result<(), StateError> {
        let key = format!("{}#{}", stored.order.shop, stored.order.order_id);
        let Some(check) = check else {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s("awaiting-realisation"))
                .key("sk", s(key))
                .send()
                .await
                .map_err(|e| self.error("DeleteItem", &e))?;
            return Ok(());
        };
        let now = Utc::now();
        let blocked_by = realisation_blockers(check, stored.order.paid);
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s("awaiting-realisation"))
            .item("sk", s(key))
            .item("shop", s(&stored.order.shop))
            .item("order_id", s(&stored.order.order_id))
            .item("number", s(&stored.order.number))
            .item(
                "document",
                s(stored.erp_document_number.clone().unwrap_or_default()),
            )
            .item(
                "blocked_by",
                AttributeValue::L(blocked_by.into_iter().map(s).collect()),
            )
            .item("checked_ms", n(now.timestamp_millis()))
            .item("expires_at", n((now + self.retention).timestamp()))
            .send()
            .await
            .map_err(|e| self.error("PutItem", &e))?;
        Ok(())
    }

    /// The unexpired items of a list kept for the admin status (one
    /// partition: `parked-orders`, `awaiting-realisation`), up to `limit`.
    async fn listed(
        &self,
        list: &str,
        limit: usize,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StateError> {
        let now = Utc::now();
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(list))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| self.error("Query", &e))?;
        Ok(out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|item| !expired(item, now))
            .collect())
    }

    /// Orders waiting to be realised (not expired), up to `limit`.
    pub async fn awaiting_realisation_list(
        &self,
        limit: usize,
    ) -> Result<Vec<AwaitingRealisation>, StateError> {
        Ok(self
            .listed("awaiting-realisation", limit)
            .await?
            .iter()
            .map(|item| {
                let blocked_by = crate::dynamo::get_strings(item, "blocked_by");
                AwaitingRealisation {
                    shop: get_s(item, "shop").unwrap_or_default().to_owned(),
                    order_id: get_s(item, "order_id").unwrap_or_default().to_owned(),
                    number: get_s(item, "number").unwrap_or_default().to_owned(),
                    document: get_s(item, "document").unwrap_or_default().to_owned(),
                    ready: blocked_by.is_empty(),
                    blocked_by,
                    checked_at: get_n(item, "checked_ms")
                        .and_then(DateTime::from_timestamp_millis)
                        .unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Remembers an order the shop's paused orders hold back from the ERP.
    pub async fn hold_paused(&self, shop: &str, order_id: &str) -> Result<(), StateError> {
        let now = Utc::now();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("paused-orders#{shop}")))
            .item("sk", s(order_id))
            .item("held_ms", n(now.timestamp_millis()))
            .item("expires_at", n((now + self.retention).timestamp()))
            .send()
            .await
            .map_err(|e| self.error("PutItem", &e))?;
        Ok(())
    }

    /// Up to `limit` of the orders a shop's pause holds back (ids).
    pub async fn paused(&self, shop: &str, limit: usize) -> Result<Vec<String>, StateError> {
        Ok(self
            .listed(&format!("paused-orders#{shop}"), limit)
            .await?
            .iter()
            .filter_map(|item| get_s(item, "sk").map(str::to_owned))
            .collect())
    }

    /// Forgets a held-back order (sent, or no longer to be sent).
    pub async fn release_paused(&self, shop: &str, order_id: &str) -> Result<(), StateError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("paused-orders#{shop}")))
            .key("sk", s(order_id))
            .send()
            .await
            .map_err(|e| self.error("DeleteItem", &e))?;
        Ok(())
    }

    /// Parked orders (not expired), up to `limit`.
    pub async fn parked(&self, limit: usize) -> Result<Vec<ParkedOrder>, StateError> {
        Ok(self
            .listed("parked-orders", limit)
            .await?
            .iter()
            .map(|item| ParkedOrder {
                shop: get_s(item, "shop").unwrap_or_default().to_owned(),
                order_id: get_s(item, "order_id").unwrap_or_default().to_owned(),
                number: get_s(item, "number").unwrap_or_default().to_owned(),
                reason: get_s(item, "reason").unwrap_or_default().to_owned(),
                parked_at: get_n(item, "parked_ms")
                    .and_then(DateTime::from_timestamp_millis)
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Records the ERP's progress unless progress from later in the agent's
    /// sequence is stored (`rank`, [`crate::sequences::SeqVersion::rank`];
    /// never the agent's clock, which may step back); returns the order as
    /// now stored (`None`: not stored or expired).
    pub async fn record_progress(
        &self,
        progress: &OrderProgress,
        rank: u64,
    ) -> Result<Option<StoredOrder>, StateError> {
        let now = Utc::now();
        let tracking = match progress
            .tracking_number
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            Some(t) => s(t),
            None => AttributeValue::Null(true),
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(order_pk(&progress.shop)))
            .key("sk", s(&progress.order_id))
            .update_expression(
                "SET stage = :stage, tracking = :tracking, documents = :documents, progress_ms = :obs, \
                 progress_rank = :rank",
            )
            .condition_expression(
                "attribute_exists(pk) AND expires_at > :now_s AND \
                 (attribute_not_exists(progress_rank) OR progress_rank <= :rank)",
            )
            .expression_attribute_values(":rank", n(rank))
            .expression_attribute_values(":stage", s(stage_name(progress.stage)))
            .expression_attribute_values(":tracking", tracking)
            .expression_attribute_values(
                ":documents",
                s(serde_json::to_string(&progress.documents).unwrap_or_default()),
            )
            .expression_attribute_values(":obs", n(progress.observed_at.timestamp_millis()))
            .expression_attribute_values(":now_s", n(now.timestamp()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match crate::dynamo::written(result) {
            Ok(Some(out)) => Ok(Some(StoredOrder::from_item(
                &out.attributes.unwrap_or_default(),
            )?)),
            // Older news, or no such order: what is stored stands.
            Ok(None) => self.get(&progress.shop, &progress.order_id).await,
            Err(err) => Err(self.error("UpdateItem", &err)),
        }
    }

    /// Records that the stage and tracking number became shop operations.
    pub async fn progress_queued(
        &self,
        shop: &str,
        order_id: &str,
        stage: Option<&str>,
        tracking: Option<&str>,
    ) -> Result<(), StateError> {
        let mut sets = Vec::new();
        let mut values = Vec::new();
        if let Some(stage) = stage {
            sets.push("stage_queued = :stage");
            values.push((":stage", s(stage)));
        }
        if let Some(tracking) = tracking {
            sets.push("tracking_queued = :tracking");
            values.push((":tracking", s(tracking)));
        }
        if sets.is_empty() {
            return Ok(());
        }
        self.conditional_update(
            shop,
            order_id,
            &format!("SET {}", sets.join(", ")),
            "attribute_exists(pk)",
            &values,
        )
        .await
        .map(|_| ())
    }

    /// Records what shop-push did to the order in the shop.
    pub async fn shop_done(
        &self,
        shop: &str,
        order_id: &str,
        mark: ShownMark,
        value: &str,
    ) -> Result<(), StateError> {
        self.conditional_update(
            shop,
            order_id,
            &format!("SET {} = :v", mark.attribute()),
            "attribute_exists(pk)",
            &[(":v", s(value))],
        )
        .await
        .map(|_| ())
    }

    /// The poller's cursor for a shop.
    pub async fn cursor(&self, shop: &str) -> Result<Option<FeedPosition>, StateError> {
        Ok(self.poll_position(shop).await?.0)
    }

    /// The poll cursor and, when the last run stopped at its page limit
    /// with pages left, where the next run goes on.
    ///
    /// A position is stored as `<name>_ms` (a time, Unix milliseconds) or
    /// `<name>_pos` (a journal position, text that sorts in feed order);
    /// NULL reads as absent.
    pub async fn poll_position(
        &self,
        shop: &str,
    ) -> Result<(Option<FeedPosition>, Option<PollResume>), StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s("cursors"))
            .key("sk", s(format!("orders#{shop}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", &e))?;
        let Some(item) = out.item else {
            return Ok((None, None));
        };
        let position = |name: &str| -> Option<FeedPosition> {
            get_s(&item, &format!("{name}_pos"))
                .map(|text| FeedPosition::Journal(text.to_owned()))
                .or_else(|| {
                    get_n::<i64>(&item, &format!("{name}_ms"))
                        .and_then(DateTime::from_timestamp_millis)
                        .map(FeedPosition::Time)
                })
        };
        // The page token; a page number stored by builds before tokens
        // (WooCommerce's token is its page number).
        let page = get_s(&item, "resume_token")
            .map(str::to_owned)
            .or_else(|| get_n::<usize>(&item, "resume_page").map(|n| n.to_string()))
            .map(crate::shop::PageToken);
        let resume = position("resume_since").map(|since| PollResume {
            since,
            page,
            newest: position("resume_newest"),
            oldest_pending: position("resume_pending"),
        });
        Ok((position("at"), resume))
    }

    /// Records where the next poll goes on, or (`None`) that it starts
    /// afresh from the cursor.
    pub async fn set_resume(
        &self,
        shop: &str,
        resume: Option<&PollResume>,
    ) -> Result<(), StateError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("cursors"))
            .key("sk", s(format!("orders#{shop}")));
        let request = match resume {
            None => request.update_expression(
                "REMOVE resume_since_ms, resume_since_pos, resume_page, resume_token, \
                 resume_newest_ms, resume_newest_pos, resume_pending_ms, resume_pending_pos",
            ),
            // An absent value is stored as NULL, which reads back as `None`.
            Some(resume) => {
                let (since_ms, since_pos) = position_values(Some(&resume.since));
                let (newest_ms, newest_pos) = position_values(resume.newest.as_ref());
                let (pending_ms, pending_pos) = position_values(resume.oldest_pending.as_ref());
                let page = resume
                    .page
                    .as_ref()
                    .map_or(AttributeValue::Null(true), |token| s(&token.0));
                request
                    .update_expression(
                        "SET resume_since_ms = :since_ms, resume_since_pos = :since_pos, \
                         resume_token = :page, \
                         resume_newest_ms = :newest_ms, resume_newest_pos = :newest_pos, \
                         resume_pending_ms = :pending_ms, resume_pending_pos = :pending_pos \
                         REMOVE resume_page",
                    )
                    .expression_attribute_values(":since_ms", since_ms)
                    .expression_attribute_values(":since_pos", since_pos)
                    .expression_attribute_values(":page", page)
                    .expression_attribute_values(":newest_ms", newest_ms)
                    .expression_attribute_values(":newest_pos", newest_pos)
                    .expression_attribute_values(":pending_ms", pending_ms)
                    .expression_attribute_values(":pending_pos", pending_pos)
            }
        };
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("UpdateItem", &e))
    }

    /// Moves the cursor forward (never back).
    pub async fn set_cursor(&self, shop: &str, at: &FeedPosition) -> Result<(), StateError> {
        let (attribute, value) = match at {
            FeedPosition::Time(at) => ("at_ms", n(at.timestamp_millis())),
            FeedPosition::Journal(text) => ("at_pos", s(text)),
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("cursors"))
            .key("sk", s(format!("orders#{shop}")))
            .update_expression("SET #at = :at")
            .condition_expression("attribute_not_exists(#at) OR #at < :at")
            .expression_attribute_names("#at", attribute)
            .expression_attribute_values(":at", value)
            .send()
            .await;
        crate::dynamo::written(result)
            .map(|_| ())
            .map_err(|err| self.error("UpdateItem", &err))
    }

    /// An UpdateItem on an order item; false when the condition failed.
    async fn conditional_update(
        &self,
        shop: &str,
        order_id: &str,
        update: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, StateError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(order_pk(shop)))
            .key("sk", s(order_id))
            .update_expression(update)
            .condition_expression(condition);
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        crate::dynamo::written(request.send().await)
            .map(|written| written.is_some())
            .map_err(|err| self.error("UpdateItem", &err))
    }
}

/// Why an order's VAT could not be taken from the ERP's product records.
#[derive(Debug, thiserror::Error)]
pub enum VatError {
    /// Nothing the ERP said gives this SKU's rate: the order waits for a
    /// person (or for the product to reach the catalogue).
    #[error("line {sku}: the ERP has sent no product for this SKU, so its VAT rate is unknown")]
    Unknown { sku: String },
    #[error("line {sku}: {problem}")]
    Unusable { sku: String, problem: String },
    /// The catalogue could not be read: try again later.
    #[error(transparent)]
    Store(#[from] StateError),
}

/// For a platform that states gross prices only
/// ([`crate::shop::VatStated::NotStated`]): each line takes its SKU's rate
/// from the ERP's product record in the catalogue, the delivery takes
/// `delivery`, and each splits its gross into net (rounded to the grosz,
/// as the price mapping does) and VAT; the order's net and VAT are the sums.
pub async fn complete_vat(
    catalog: &crate::catalog::Catalog,
    order: &mut Order,
    delivery: contract::VatRate,
) -> Result<(), VatError> {
    let skus: Vec<String> = order.lines.iter().map(|l| l.sku.clone()).collect();
    let states = catalog.load_many(&skus, &[]).await?;
    let mut rates = HashMap::new();
    for sku in &skus {
        let product = states
            .get(sku)
            .filter(|state| state.unreadable.is_none())
            .and_then(|state| state.erp(sku).ok())
            .and_then(|erp| erp.product);
        if let Some(product) = product {
            rates.insert(sku.clone(), product.vat);
        }
    }
    with_rates(order, &rates, delivery)
}

/// [`complete_vat`]'s arithmetic, with the rates found.
pub fn with_rates(
    order: &mut Order,
    rates: &HashMap<String, contract::VatRate>,
    delivery: contract::VatRate,
) -> Result<(), VatError> {
    let split = |sku: &str, gross: rust_decimal::Decimal, rate: contract::VatRate| {
        crate::mapping::gross_to_net(gross, rate)
            .map(|net| (net, gross - net))
            .map_err(|e| VatError::Unusable {
                sku: sku.to_owned(),
                problem: e.to_string(),
            })
    };
    for line in &mut order.lines {
        let rate = *rates.get(&line.sku).ok_or_else(|| VatError::Unknown {
            sku: line.sku.clone(),
        })?;
        let (net, vat) = split(&line.sku, line.total_gross, rate)?;
        line.vat = rate;
        line.total_net = net;
        line.total_vat = vat;
    }
    if let Some(shipping) = &mut order.shipping {
        let (net, vat) = split("delivery", shipping.total_gross, delivery)?;
        shipping.vat = delivery;
        shipping.total_net = net;
        shipping.total_vat = vat;
    }
    let (lines_net, lines_vat) = order.lines.iter().fold(
        (rust_decimal::Decimal::ZERO, rust_decimal::Decimal::ZERO),
        |(n, v), l| (n + l.total_net, v + l.total_vat),
    );
    let (ship_net, ship_vat) = order.shipping.as_ref().map_or(
        (rust_decimal::Decimal::ZERO, rust_decimal::Decimal::ZERO),
        |s| (s.total_net, s.total_vat),
    );
    order.total_net = lines_net + ship_net;
    order.total_vat = lines_vat + ship_vat;
    Ok(())
}

/// A position's two stored forms, `(<name>_ms, <name>_pos)`: one set, the
/// other NULL.
fn position_values(at: Option<&FeedPosition>) -> (AttributeValue, AttributeValue) {
    let null = || AttributeValue::Null(true);
    match at {
        Some(FeedPosition::Time(at)) => (n(at.timestamp_millis()), null()),
        Some(FeedPosition::Journal(text)) => (null(), s(text)),
        None => (null(), null()),
    }
}

/// The `CreateOrder` message body for an order; refused when it would not
/// fit one queue message (checked before the order is stored).
pub fn command_body(order: &Order) -> Result<String, OrderParseError> {
    let envelope = Envelope::new(
        "cloud",
        0,
        Utc::now(),
        Payload::CreateOrder(Box::new(order.clone())),
    );
    let body = contract::encode_body(&envelope);
    if body.len() > contract::MAX_BODY_BYTES {
        return Err(OrderParseError::Field {
            field: "line_items".into(),
            problem: format!(
                "the order is too large for one ERP command ({} bytes encoded, at most {})",
                body.len(),
                contract::MAX_BODY_BYTES
            ),
        });
    }
    Ok(body)
}

/// The two commands an order can send the ERP, each once: create it, and
/// (after the shop closed it) cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderCommand {
    Create,
    Cancel,
}

impl OrderCommand {
    /// The stored order's attributes for it: (the sender's claim, the
    /// revision that went out).
    fn attributes(self) -> (&'static str, &'static str) {
        match self {
            OrderCommand::Create => ("command_claim_ms", "command_rev_ms"),
            OrderCommand::Cancel => ("cancel_claim_ms", "cancel_rev_ms"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            OrderCommand::Create => "CreateOrder",
            OrderCommand::Cancel => "CancelOrder",
        }
    }
}

/// The deduplication id of an order's command (`retries`: how many times
/// a parked order was sent again, so each new send is a new message).
pub fn command_dedup_id(
    shop: &str,
    order_id: &str,
    revision_ms: i64,
    command: OrderCommand,
    retries: i64,
) -> String {
    let mut text = match command {
        OrderCommand::Create => format!("{shop}\0{order_id}\0{revision_ms}"),
        OrderCommand::Cancel => format!("{shop}\0{order_id}\0{revision_ms}\0cancel"),
    };
    if retries > 0 {
        text.push_str(&format!("\0retry {retries}"));
    }
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// What [`OrderIntake::accept`] did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Accepted {
    /// This revision was stored (false: an equal or newer one already was).
    pub stored: bool,
    /// A `CreateOrder` went to the queue now.
    pub command_sent: bool,
    /// A `CancelOrder` went to the queue now (the shop closed an order the
    /// ERP has).
    pub cancel_sent: bool,
    /// The order passes its shop's trigger (or, for a cancel, the shop
    /// closed it) but its command is not (yet)
    /// marked as on the queue: the send failed, or another sender holds
    /// the claim. The next delivery or poll of the same revision sends it
    /// (the poller keeps its cursor from moving past such an order).
    pub command_pending: bool,
    /// The shop's orders are paused (the emergency switch): stored, held
    /// back from the ERP until the pause ends.
    #[serde(default)]
    pub paused: bool,
}

/// What asking to send a parked order again did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "result", content = "document", rename_all = "snake_case")]
pub enum Retried {
    /// Its create command is on the queue again.
    Sent,
    /// Re-armed; the command goes with the next delivery or poll.
    Pending,
    /// The order is not parked (written, pending, or taken out).
    NotParked,
    /// Optima already has its document.
    HasDocument(String),
    /// No such order is stored (unknown, or past retention).
    NotStored,
}

/// Why an order could not be taken in.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The order is not stored: the caller must report a failure (5xx, retry).
    #[error("the order could not be stored: {0}")]
    Store(#[from] StateError),
}

/// Normalised orders in: stored once, sent to the ERP once.
#[derive(Clone, Debug)]
pub struct OrderIntake {
    pub store: OrderStore,
    sqs: aws_sdk_sqs::Client,
    commands_queue_url: String,
}

impl OrderIntake {
    pub fn new(store: OrderStore, sqs: aws_sdk_sqs::Client, commands_queue_url: String) -> Self {
        OrderIntake {
            store,
            sqs,
            commands_queue_url,
        }
    }

    /// Stores the order and, when the stored order passes the shop's
    /// trigger and its command has not gone out, sends it; when the shop
    /// has closed an order whose command went out, sends the cancel.
    pub async fn accept(&self, shop: &ShopConfig, order: &Order) -> Result<Accepted, IntakeError> {
        let stored = self.store.store(order, order.state.is_closed()).await?;
        let current = &stored.current;
        let mut accepted = Accepted {
            stored: stored.written,
            command_sent: false,
            cancel_sent: false,
            command_pending: false,
            paused: false,
        };
        // The shop changed a parked order (the SKU fixed, the address
        // completed): the newer revision goes to the ERP again.
        let mut rearmed = None;
        if stored.written
            && current.parked_reason.is_some()
            && current.erp_document_number.is_none()
            && shop.order_trigger.passes(&current.order)
            && !current.order.state.is_closed()
            && self.store.rearm(&order.shop, &order.order_id).await?
        {
            info!(order = %order.key(), "a parked order changed in the shop: sending it to the ERP again");
            rearmed = self.store.get(&order.shop, &order.order_id).await?;
        }
        let current = rearmed.as_ref().unwrap_or(current);
        let command = if current.command_rev_ms.is_none() {
            if !shop.order_trigger.passes(&current.order) {
                return Ok(accepted);
            }
            OrderCommand::Create
        } else if current.cancel_rev_ms.is_none() && current.order.state.is_closed() {
            OrderCommand::Cancel
        } else {
            return Ok(accepted);
        };
        if command == OrderCommand::Create
            && crate::emergency::Emergency::new(self.store.client.clone(), &self.store.table)
                .get(&order.shop)
                .await?
                .pause_orders
        {
            info!(order = %current.order.key(), "the shop's orders are paused: held back from the ERP");
            self.store.hold_paused(&order.shop, &order.order_id).await?;
            accepted.paused = true;
            return Ok(accepted);
        }
        // The order is stored: from here on a failure only delays the
        // command (the next delivery or poll sends it), so it is not an error.
        match self.send_command(shop, current, command).await {
            Ok(true) => match command {
                OrderCommand::Create => accepted.command_sent = true,
                OrderCommand::Cancel => accepted.cancel_sent = true,
            },
            Ok(false) => {
                // Another sender holds the claim, or finished meanwhile:
                // pending until the mark that SQS took the command is there.
                accepted.command_pending = !self.command_recorded(current, command).await;
            }
            Err(err) => {
                warn!(order = %current.order.key(), command = command.name(), error = %err, "order stored, command not sent yet");
                accepted.command_pending = true;
            }
        }
        Ok(accepted)
    }

    /// A person asks to send a parked order again (`agent orders retry`,
    /// or the admin endpoint): re-armed and sent at its stored revision.
    pub async fn retry(&self, shop: &ShopConfig, order_id: &str) -> Result<Retried, IntakeError> {
        let Some(current) = self.store.get(&shop.id, order_id).await? else {
            return Ok(Retried::NotStored);
        };
        if let Some(number) = current.erp_document_number {
            return Ok(Retried::HasDocument(number));
        }
        if current.parked_reason.is_none() || current.withdrawn {
            return Ok(Retried::NotParked);
        }
        if !self.store.rearm(&shop.id, order_id).await? {
            return Ok(Retried::NotParked);
        }
        let Some(current) = self.store.get(&shop.id, order_id).await? else {
            return Ok(Retried::NotStored);
        };
        match self
            .send_command(shop, &current, OrderCommand::Create)
            .await
        {
            Ok(true) => {
                info!(order = %current.order.key(), retries = current.retries, "parked order sent to the ERP again");
                Ok(Retried::Sent)
            }
            Ok(false) | Err(_) => Ok(Retried::Pending),
        }
    }

    /// The pause ended: sends, page by page, the orders it held back that
    /// still pass the shop's trigger. Returns how many went; an order whose
    /// send fails stays listed for the next release.
    pub async fn release_paused(&self, shop: &ShopConfig) -> Result<usize, IntakeError> {
        let mut sent = 0;
        let mut failed = std::collections::HashSet::new();
        loop {
            let page = self.store.paused(&shop.id, 100).await?;
            let page: Vec<String> = page.into_iter().filter(|id| !failed.contains(id)).collect();
            if page.is_empty() {
                return Ok(sent);
            }
            for order_id in page {
                let due = match self.store.get(&shop.id, &order_id).await? {
                    Some(current)
                        if current.command_rev_ms.is_none()
                            && !current.withdrawn
                            && !current.order.state.is_closed()
                            && shop.order_trigger.passes(&current.order) =>
                    {
                        Some(current)
                    }
                    _ => None,
                };
                if let Some(current) = due {
                    match self
                        .send_command(shop, &current, OrderCommand::Create)
                        .await
                    {
                        Ok(_) => sent += 1,
                        Err(err) => {
                            warn!(order = %current.order.key(), error = %err, "a paused order could not be sent yet");
                            failed.insert(order_id);
                            continue;
                        }
                    }
                }
                self.store.release_paused(&shop.id, &order_id).await?;
            }
        }
    }

    /// Whether the stored order carries the mark that its command is on
    /// the queue (false when it cannot be read: the caller retries).
    async fn command_recorded(&self, current: &StoredOrder, command: OrderCommand) -> bool {
        let order = &current.order;
        match self.store.get(&order.shop, &order.order_id).await {
            Ok(Some(now)) => match command {
                OrderCommand::Create => now.command_rev_ms.is_some(),
                OrderCommand::Cancel => now.cancel_rev_ms.is_some(),
            },
            Ok(None) => false,
            Err(err) => {
                warn!(order = %order.key(), error = %err, "cannot read whether the command went out");
                false
            }
        }
    }

    async fn send_command(
        &self,
        shop: &ShopConfig,
        current: &StoredOrder,
        command: OrderCommand,
    ) -> Result<bool, StateError> {
        let order = &current.order;
        if !self
            .store
            .claim_command(&order.shop, &order.order_id, command)
            .await?
        {
            return Ok(false);
        }
        let payload = match command {
            // The shop's mapping as it is now (the console may have changed
            // it since the order was stored), not as it was then.
            OrderCommand::Create => {
                Payload::CreateOrder(Box::new(shop.erp_mapping.applied_to(order)))
            }
            OrderCommand::Cancel => Payload::CancelOrder(CancelOrder {
                shop: order.shop.clone(),
                order_id: order.order_id.clone(),
                shop_status: order.status.clone(),
            }),
        };
        let mut envelope = Envelope::new("cloud", 0, Utc::now(), payload);
        if let Some(agent) = &shop.orders_agent {
            envelope = envelope.addressed_to(agent);
        }
        let (client, table) = (&self.store.client, &self.store.table);
        let body = crate::agent_versions::command_body(client, table, &envelope).await;
        let body = match body {
            Ok(body) => body,
            Err(StateError::Contract(err @ contract::ContractError::NeedsNewerPeer { .. })) => {
                // An agent that cannot read a cancel: a person does it, and
                // the poller is not held up waiting for an upgrade.
                let reason = format!(
                    "the order was {} in the shop, but the agents cannot take it out of Optima ({err}); remove or cancel {} in Optima by hand",
                    order.status,
                    current
                        .erp_document_number
                        .as_deref()
                        .unwrap_or("its document")
                );
                warn!(order = %order.key(), %reason, "cancel not sent");
                self.store
                    .park(&order.shop, &order.order_id, &order.number, &reason)
                    .await?;
                self.store
                    .command_sent(&order.shop, &order.order_id, command, current.revision_ms)
                    .await?;
                return Ok(false);
            }
            Err(err) => {
                self.release(order, command).await;
                return Err(err);
            }
        };
        let sent = self
            .sqs
            .send_message()
            .queue_url(&self.commands_queue_url)
            .message_body(body)
            .message_group_id(shop.order_command_group())
            .message_deduplication_id(command_dedup_id(
                &order.shop,
                &order.order_id,
                current.revision_ms,
                command,
                current.retries,
            ))
            .send()
            .await;
        if let Err(err) = sent {
            let message = describe_error(&err);
            self.release(order, command).await;
            return Err(StateError::Dynamo {
                operation: "SendMessage",
                table: self.commands_queue_url.clone(),
                message,
            });
        }
        self.store
            .command_sent(&order.shop, &order.order_id, command, current.revision_ms)
            .await?;
        info!(order = %order.key(), number = %order.number, revision_ms = current.revision_ms, command = command.name(), "order command sent to the ERP");
        Ok(true)
    }

    async fn release(&self, order: &Order, command: OrderCommand) {
        if let Err(release) = self
            .store
            .release_claim(&order.shop, &order.order_id, command)
            .await
        {
            warn!(order = %order.key(), error = %release, "could not release the command claim; it lapses by itself");
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_order_is_ready_only_with_no_remark_nothing_short_and_paid() {
        use rust_decimal_macros::dec;
        let clear = contract::RealisationCheck::default();
        assert!(realisation_blockers(&clear, true).is_empty());
        assert_eq!(
            realisation_blockers(&clear, false),
            ["not paid in the shop"]
        );
        let blocked = contract::RealisationCheck {
            remark: Some("Proszę o fakturę".into()),
            short: vec![contract::ShortLine {
                sku: "KAWA-1".into(),
                warehouse: "MAG".into(),
                needed: dec!(3),
                available: dec!(2),
            }],
        };
        assert_eq!(
            realisation_blockers(&blocked, true),
            [
                "the buyer's remark is on the order: \"Proszę o fakturę\"",
                "KAWA-1: 3 needed in MAG, 2 free"
            ]
        );
    }
    use super::*;
    use contract::VatRate;
    use rust_decimal::Decimal;

    fn allegro_order() -> Order {
        let body =
            include_str!("../../tests/connector-contract/examples/allegro/checkout-form-spec.json");
        crate::shop::allegro_order::parse_checkout_form("allegro-1", body.as_bytes())
            .expect("the example normalises")
    }

    fn rate(percent: i64) -> VatRate {
        VatRate::Percent(Decimal::from(percent))
    }

    #[test]
    fn gross_prices_take_the_erps_rate_and_split_to_the_grosz() {
        let mut order = allegro_order();
        let rates = HashMap::from([("AH-129834".to_owned(), rate(23))]);
        with_rates(&mut order, &rates, rate(23)).expect("every SKU has a rate");
        // 123.45 / 1.23 = 100.3658… → 100.37, VAT 23.08;
        // 11.99 / 1.23 = 9.7479… → 9.75, VAT 2.24.
        let line = &order.lines[0];
        assert_eq!(
            (line.vat, line.total_net, line.total_vat),
            (rate(23), Decimal::new(10037, 2), Decimal::new(2308, 2))
        );
        let delivery = order.shipping.as_ref().expect("delivery");
        assert_eq!(
            (delivery.total_net, delivery.total_vat),
            (Decimal::new(975, 2), Decimal::new(224, 2))
        );
        assert_eq!(
            (order.total_net, order.total_vat),
            (Decimal::new(11012, 2), Decimal::new(2532, 2))
        );
        assert_eq!(order.total_net + order.total_vat, order.total_gross);

        // A book at 8 %: 123.45 / 1.08 = 114.3055… → 114.31, VAT 9.14.
        let mut order = allegro_order();
        let rates = HashMap::from([("AH-129834".to_owned(), rate(8))]);
        with_rates(&mut order, &rates, rate(23)).expect("every SKU has a rate");
        assert_eq!(
            (order.lines[0].total_net, order.lines[0].total_vat),
            (Decimal::new(11431, 2), Decimal::new(914, 2))
        );
    }

    #[test]
    fn a_sku_the_erp_never_sent_leaves_the_vat_unknown_and_says_which() {
        let mut order = allegro_order();
        let err = with_rates(&mut order, &HashMap::new(), rate(23)).expect_err("no rate");
        assert!(
            matches!(&err, VatError::Unknown { sku } if sku == "AH-129834"),
            "{err}"
        );
        assert!(err.to_string().contains("VAT rate is unknown"), "{err}");
    }
}
