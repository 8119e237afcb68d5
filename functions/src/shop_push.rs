//! `shop-push`: shop operations off the shop-ops queue, into the shops.
//!
//! Per invocation, operations are grouped per shop and coalesced per SKU
//! (the newer reading wins), then checked against what the shop was last
//! seen to hold: an older reading never overwrites a newer one and a write
//! that changes nothing is never sent. Shop ids by SKU are looked up once
//! and cached. Writes go in the platform's batch calls; every HTTP request
//! the connector makes takes a token from the shop's bucket in DynamoDB
//! first (shared by every instance, [`crate::ratelimit::ShopGate`]). A
//! 429 empties the bucket for `Retry-After`; 5xx and timeouts are retried a
//! few times with back-off inside the invocation and then handed back to
//! the queue. Permanent refusals (SKU not in the shop, a value the shop
//! rejects) are parked with their reason, item by item: a request the shop
//! refuses as a whole is asked again for each item alone. Refused
//! credentials (401/403) park nothing: the messages go back to the queue
//! until the shop takes them or they reach the dead-letter queue (alarm).
//! An operation marked `reconcile` (records resent unchanged) is written
//! even where the shop is recorded as holding its values.
//!
//! Each call's lesson (ids found, what the shop now holds) is recorded as
//! soon as the call returns, and no call starts that the invocation's
//! deadline leaves no room for: a backlog bigger than one invocation
//! moves forward with each delivery.
//!
//! Order updates (an ERP stage, a cancellation, a tracking number, an
//! invoice) go one call each to the platform's [`crate::shop::OrderUpdater`],
//! under the same limits; a platform without one, or without that kind,
//! is skipped. Each is checked against the stored order first: one the
//! order's newer stage has superseded, or one already shown
//! (`stage_shown`, `tracking_shown`, `invoice_shown`, recorded after the
//! shop said yes), is skipped, so a redelivered message never changes the
//! shop twice. A refusal is parked on the order, where the admin status
//! lists it.
//!
//! A message handed back comes again after a back-off set on it
//! ([`redelivery_delay`]: 20 s after its first failure, doubling to
//! 15 min) rather than after the queue's 6-minute visibility: a shop down
//! for a minute is caught up a minute later, and one down for an hour and a
//! half still loses nothing before the dead-letter queue.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use tracing::{error, info, warn};

use crate::aws::Clients;
use crate::catalog::{Catalog, Write};
use crate::emergency::{Emergency, Push};
use crate::env::{EnvError, FunctionEnv};
use crate::mapping::{ProductChanges, ShopOperation, not_yet_held};
use crate::orders::{OrderStore, ShownMark};
use crate::ratelimit::{RateLimiter, ShopCallError, ShopLimits};
use crate::shop::{
    CatalogueSink, Connector, ItemOutcome, OrderUpdate, ShopError, ShopItemId, UpdateOutcome,
};
use crate::shop_ops::{OrderOperation, QueuedOperation};
use crate::shop_settings::{BuiltFromShops, ShopsSource};
use crate::shops::{Shops, stage_name};
use crate::state::{StateError, StateTable};
use crate::{Deadline, HandlerError};

/// Attempts of one shop call inside an invocation before handing back to the queue.
const ATTEMPTS: u32 = 4;
/// The longest a call waits for a rate-limit token before handing back.
const MAX_TOKEN_WAIT: Duration = Duration::from_secs(60);
/// Time kept before the deadline for recording what the last call did.
const RECORDING_RESERVE: Duration = Duration::from_secs(2);
/// A failed message's first redelivery delay, doubled on each receive.
const FIRST_REDELIVERY: Duration = Duration::from_secs(20);
/// The longest redelivery delay. With the queue's `maxReceiveCount` of 12
/// (infra/template.yaml) a message outlives 96 minutes of a shop outage.
const LAST_REDELIVERY: Duration = Duration::from_secs(900);

/// The emergency switch's "show 0 stock": every stock figure written as 0.
/// Returns the operations and the SKUs that had stock to hide.
fn stock_at_zero(operations: Vec<ShopOperation>) -> (Vec<ShopOperation>, Vec<String>) {
    let mut zeroed = Vec::new();
    let operations = operations
        .into_iter()
        .map(|mut op| {
            if op.changes.stock_quantity.is_some_and(|q| q != 0) {
                op.changes.stock_quantity = Some(0);
                zeroed.push(op.sku.clone());
            }
            op
        })
        .collect();
    (operations, zeroed)
}

/// When a message that failed on its `receive_count`-th delivery comes back.
pub fn redelivery_delay(receive_count: u32) -> Duration {
    let doublings = receive_count.saturating_sub(1).min(16);
    FIRST_REDELIVERY
        .saturating_mul(1 << doublings)
        .min(LAST_REDELIVERY)
}

pub struct ShopPush {
    catalog: Catalog,
    orders: OrderStore,
    state: StateTable,
    limiter: RateLimiter,
    /// The shops with the console's saved settings and credentials.
    shops: ShopsSource,
    /// Built again when the shops change.
    connectors: BuiltFromShops<HashMap<String, Connector>>,
    sqs: aws_sdk_sqs::Client,
    shop_ops_queue_url: String,
    emergency: Emergency,
}

impl std::fmt::Debug for ShopPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShopPush")
            .field("shops", &self.connectors.now().keys())
            .finish()
    }
}

impl ShopPush {
    pub fn new(clients: &Clients, env: &FunctionEnv) -> Result<Self, EnvError> {
        let shops = Shops::from_env(env, true).map_err(|e| EnvError::Invalid {
            name: "SHOPS",
            value: e.to_string(),
            expected: "a JSON list of shops with credentials in the SHOP_SECRETS_ARN secret",
        })?;
        // Allegro's rotating tokens: each shop's own secret.
        let shops = shops.with_token_stores(crate::shops::TokenStores::from_env(env, clients));
        let table = env.required("STATE_TABLE")?;
        let limiter = RateLimiter::new(clients.dynamodb.clone(), table.clone());
        let shops = ShopsSource::from_env(shops, clients, env);
        let pacer = limiter.clone();
        let connectors = BuiltFromShops::new(shops.now(), move |shops| {
            shops.connectors(&pacer, MAX_TOKEN_WAIT)
        })
        .map_err(|e| EnvError::Invalid {
            name: "SHOPS",
            value: e.to_string(),
            expected: "a usable shop address and credentials",
        })?;
        Ok(ShopPush {
            catalog: Catalog::new(clients.dynamodb.clone(), table.clone()),
            emergency: Emergency::new(clients.dynamodb.clone(), table.clone()),
            orders: OrderStore::new(clients.dynamodb.clone(), table.clone(), 30),
            state: StateTable::new(clients.dynamodb.clone(), table.clone(), 30),
            limiter,
            shops,
            connectors,
            sqs: clients.sqs.clone(),
            shop_ops_queue_url: env.required("SHOP_OPS_QUEUE_URL")?,
        })
    }

    /// The handler without a time limit (tests, tools).
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, HandlerError> {
        self.handle_until(event, Deadline::NONE).await
    }

    /// The handler: what cannot be done before `deadline` is handed back
    /// (its messages reported as failures), with what was done recorded.
    pub async fn handle_until(
        &self,
        event: SqsEvent,
        deadline: Deadline,
    ) -> Result<SqsBatchResponse, HandlerError> {
        // Credentials or settings saved in the console, at most CACHE old.
        let shops = self.shops.refresh().await;
        self.connectors.for_shops(&shops);
        // shop → SKU → (coalesced operation, the messages it came from)
        let mut work: BTreeMap<String, BTreeMap<String, (ShopOperation, HashSet<String>)>> =
            BTreeMap::new();
        let mut order_work: Vec<(OrderOperation, String)> = Vec::new();
        for record in &event.records {
            let message_id = record.message_id.clone().unwrap_or_default();
            let body = record.body.as_deref().unwrap_or_default();
            let operations: Vec<ShopOperation> =
                match serde_json::from_str::<Vec<QueuedOperation>>(body) {
                    Ok(ops) => ops
                        .into_iter()
                        .filter_map(|op| match op {
                            QueuedOperation::Product(op) => Some(op),
                            QueuedOperation::Order(op) => {
                                order_work.push((op, message_id.clone()));
                                None
                            }
                        })
                        .collect(),
                    Err(err) => {
                        warn!(%message_id, error = %err, "parking a malformed shop-ops message");
                        self.state
                            .park("shop-ops", &message_id, body, &err.to_string())
                            .await?;
                        continue;
                    }
                };
            for op in operations {
                let per_shop = work.entry(op.shop.clone()).or_default();
                match per_shop.remove(&op.sku) {
                    None => {
                        per_shop.insert(op.sku.clone(), (op, HashSet::from([message_id.clone()])));
                    }
                    Some((existing, mut sources)) => {
                        sources.insert(message_id.clone());
                        let sku = op.sku.clone();
                        let merged = existing.clone().coalesce(op).unwrap_or(existing);
                        per_shop.insert(sku, (merged, sources));
                    }
                }
            }
        }
        let mut failed: HashSet<String> = HashSet::new();
        for (shop, operations) in work {
            let sources: Vec<HashSet<String>> =
                operations.values().map(|(_, s)| s.clone()).collect();
            let operations = operations.into_values().map(|(op, _)| op).collect();
            match self.push_shop(&shop, operations, deadline).await {
                Ok(()) => {}
                Err(PushError::Auth(err)) => {
                    // Not parked: nothing is wrong with the products. The
                    // messages come back until the credentials work again,
                    // or go to the dead-letter queue, whose alarm calls a person.
                    error!(%shop, error = %err, "the shop refused our credentials; its messages will be redelivered");
                    failed.extend(sources.into_iter().flatten());
                }
                Err(err) => {
                    warn!(%shop, error = %err, "shop push stopped; its messages will be redelivered (what landed is recorded)");
                    failed.extend(sources.into_iter().flatten());
                }
            }
        }
        for (op, message_id) in order_work {
            if failed.contains(&message_id) {
                continue;
            }
            match self.push_order(&op, deadline).await {
                Ok(()) => {}
                Err(PushError::Refused(err)) => {
                    warn!(shop = %op.shop, order = %op.order_id, error = %err, "the shop refused an order update; parking it");
                    let number = self
                        .orders
                        .get(&op.shop, &op.order_id)
                        .await?
                        .map(|o| o.order.number)
                        .unwrap_or_else(|| op.order_id.clone());
                    self.orders
                        .park(
                            &op.shop,
                            &op.order_id,
                            &number,
                            &format!("the shop refused {:?}: {err}", op.update),
                        )
                        .await?;
                }
                Err(err) => {
                    warn!(shop = %op.shop, order = %op.order_id, error = %err, "order update failed; its message will be redelivered");
                    failed.insert(message_id);
                }
            }
        }
        self.delay_redelivery(&event, &failed).await;
        let mut response = SqsBatchResponse::default();
        for id in failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
        Ok(response)
    }

    /// Sets each failed message's visibility to its back-off. Best effort:
    /// a message this fails for comes back after the queue's visibility.
    async fn delay_redelivery(&self, event: &SqsEvent, failed: &HashSet<String>) {
        let entries: Vec<_> = event
            .records
            .iter()
            .filter(|r| r.message_id.as_ref().is_some_and(|id| failed.contains(id)))
            .filter_map(|r| {
                let receives = r
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                let delay = redelivery_delay(receives);
                aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(r.message_id.clone()?)
                    .receipt_handle(r.receipt_handle.clone()?)
                    .visibility_timeout(i32::try_from(delay.as_secs()).unwrap_or(i32::MAX))
                    .build()
                    .ok()
            })
            .collect();
        for chunk in entries.chunks(10) {
            let result = self
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.shop_ops_queue_url)
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await;
            match result {
                Ok(out) if out.failed().is_empty() => {
                    info!(
                        messages = chunk.len(),
                        "failed messages come back after their back-off"
                    );
                }
                Ok(out) => {
                    warn!(failed = ?out.failed(), "some failed messages keep the queue's visibility");
                }
                Err(err) => {
                    warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&err), "could not set the redelivery back-off; the messages come back after the queue's visibility");
                }
            }
        }
    }

    /// Writes one shop's operations; `Err` means retry later (nothing lost:
    /// writes are absolute, and what each call taught us, ids found and what
    /// the shop now holds, is recorded as soon as the call returns, so a
    /// redelivery carries on where this one stopped). A request the shop
    /// refuses as a whole is asked again item by item and only the item it
    /// refuses is parked.
    async fn push_shop(
        &self,
        shop: &str,
        operations: Vec<ShopOperation>,
        deadline: Deadline,
    ) -> Result<(), PushError> {
        let Some(connector) = self.connectors.now().get(shop).cloned() else {
            for op in &operations {
                self.catalog
                    .set_parked(shop, &op.sku, &[format!("shop `{shop}` is not configured")])
                    .await?;
            }
            return Ok(());
        };
        let Some(connector): Option<&dyn CatalogueSink> = connector.catalogue.as_deref() else {
            info!(%shop, platform = connector.platform, operations = operations.len(), "the platform takes no catalogue; dropped");
            return Ok(());
        };
        if self.shops.now().get(shop).is_none() {
            return Err(PushError::Config(shop.to_owned()));
        }
        let operations = match self.emergency.get(shop).await?.push {
            Push::Normal => operations,
            Push::Stopped => {
                // Caught up by the full pass that switching back asks for.
                warn!(%shop, operations = operations.len(), "the emergency switch stops writes to this shop; dropped");
                return Ok(());
            }
            Push::ZeroStock => {
                let (operations, zeroed) = stock_at_zero(operations);
                // Remembered first, so switching back restores each of them.
                self.catalog
                    .write_all(self.catalog.zeroed_writes(shop, &zeroed))
                    .await?;
                operations
            }
        };
        // Drop what is older than, or equal to, what the shop holds, and
        // find the cached shop ids (batched reads: the shop calls, not
        // these, should set the pace).
        let skus: Vec<String> = operations.iter().map(|op| op.sku.clone()).collect();
        let mut known = self
            .catalog
            .held_and_ids::<ProductChanges>(shop, &skus)
            .await?;
        let mut todo = Vec::new();
        let mut ids: HashMap<String, ShopItemId> = HashMap::new();
        let mut missing = Vec::new();
        for op in operations {
            let (held, id) = known.remove(&op.sku).unwrap_or((None, None));
            if let Some((_, held_at)) = &held
                && *held_at > op.source_time
            {
                continue;
            }
            let changes = if op.reconcile {
                op.changes.clone()
            } else {
                not_yet_held(&op.changes, held.as_ref().map(|(h, _)| h))
            };
            if changes.is_empty() {
                continue;
            }
            let held_after = held
                .map(|(h, _)| h)
                .unwrap_or_default()
                .then(op.changes.clone());
            match id {
                Some(id) => {
                    ids.insert(op.sku.clone(), id);
                }
                None => missing.push(op.sku.clone()),
            }
            todo.push((ShopOperation { changes, ..op }, held_after));
        }
        if todo.is_empty() {
            return Ok(());
        }
        // Shop ids not cached yet: looked up once, in the platform's pages,
        // each page's answer recorded before the next is asked for.
        missing.sort();
        for chunk in missing.chunks(connector.max_batch()) {
            let (found, refused) = self
                .isolating_refusals(shop, deadline, chunk, |skus| connector.lookup_ids(skus))
                .await?;
            let mut writes = Vec::new();
            for (sku, result) in chunk.iter().zip(refused) {
                let reason = match (found.get(sku), result) {
                    (_, Some(refusal)) => format!("the shop refused to look the SKU up: {refusal}"),
                    (Some(id), None) => {
                        ids.insert(sku.clone(), id.clone());
                        writes.push(self.catalog.id_write(shop, sku, id));
                        continue;
                    }
                    (None, None) => {
                        "the SKU is not in the shop (no product or variation has it)".to_owned()
                    }
                };
                writes.extend(self.catalog.parked_writes(shop, sku, &[reason]));
            }
            self.catalog.write_all(writes).await?;
        }
        let writable: Vec<(ShopItemId, ShopOperation, ProductChanges)> = todo
            .into_iter()
            .filter_map(|(op, held_after)| ids.get(&op.sku).map(|id| (id.clone(), op, held_after)))
            .collect();
        // Categories the writes put products in: found or created first,
        // each path as one paced call.
        let mut paths: Vec<&Vec<String>> = writable
            .iter()
            .filter_map(|(_, op, _)| op.changes.category.as_ref())
            .collect();
        paths.sort();
        paths.dedup();
        if !connector.has_categories() {
            paths.clear();
        }
        for path in paths {
            match self
                .call(shop, deadline, || connector.ensure_category(path))
                .await
            {
                Ok(()) => {}
                Err(PushError::Refused(err)) => {
                    warn!(%shop, category = ?path, error = %err, "cannot find or create the category; products keep theirs");
                }
                Err(err) => return Err(err),
            }
        }
        let mut written = 0;
        for chunk in writable.chunks(connector.max_batch()) {
            let items: Vec<(ShopItemId, ProductChanges)> = chunk
                .iter()
                .map(|(id, op, _)| (id.clone(), op.changes.clone()))
                .collect();
            let (outcomes, refused) = self
                .isolating_refusals(shop, deadline, &items, |items| {
                    connector.write_products(items)
                })
                .await?;
            let mut outcomes = outcomes.into_iter();
            let mut writes = Vec::new();
            for ((_, op, held_after), refusal) in chunk.iter().zip(refused) {
                let outcome = match refusal {
                    Some(refusal) => ItemOutcome::Rejected {
                        code: "request_refused".into(),
                        message: refusal.to_string(),
                    },
                    None => outcomes.next().unwrap_or(ItemOutcome::Rejected {
                        code: "not_sent".into(),
                        message: "no answer for this item".into(),
                    }),
                };
                writes.extend(self.outcome_writes(shop, op, held_after, &outcome));
                written += usize::from(outcome.is_ok());
            }
            self.catalog.write_all(writes).await?;
        }
        info!(%shop, written, "shop updated");
        Ok(())
    }

    /// One order update, unless superseded or already shown.
    async fn push_order(&self, op: &OrderOperation, deadline: Deadline) -> Result<(), PushError> {
        let Some(connector) = self.connectors.now().get(&op.shop).cloned() else {
            warn!(shop = %op.shop, order = %op.order_id, "order operation for a shop not configured; dropped");
            return Ok(());
        };
        let kind = op.update.kind();
        let Some(updater) = connector
            .updates
            .as_ref()
            .filter(|updater| updater.supports(kind))
        else {
            info!(shop = %op.shop, order = %op.order_id, platform = connector.platform, kind, "the platform shows no such update on its orders; dropped");
            return Ok(());
        };
        let Some(stored) = self.orders.get(&op.shop, &op.order_id).await? else {
            info!(shop = %op.shop, order = %op.order_id, "order no longer stored (retention passed); operation dropped");
            return Ok(());
        };
        // What marks the update done on the stored order, so a redelivered
        // message never changes the shop twice.
        let (mark, value, shown) = match &op.update {
            OrderUpdate::Stage { stage } => {
                let name = stage_name(*stage);
                if stored.stage.as_deref() != Some(name) {
                    // A newer stage superseded it.
                    return Ok(());
                }
                (ShownMark::Stage, name.to_owned(), &stored.stage_shown)
            }
            OrderUpdate::Cancel => {
                let name = stage_name(contract::OrderStage::Cancelled);
                if stored.stage.as_deref() != Some(name) {
                    return Ok(());
                }
                (ShownMark::Stage, name.to_owned(), &stored.stage_shown)
            }
            OrderUpdate::Tracking { number, .. } => {
                (ShownMark::Tracking, number.clone(), &stored.tracking_shown)
            }
            OrderUpdate::Invoice { number, .. } => {
                (ShownMark::Invoice, number.clone(), &stored.invoice_shown)
            }
        };
        if shown.as_deref() == Some(value.as_str()) {
            return Ok(());
        }
        let outcome = self
            .call(&op.shop, deadline, || {
                updater.apply_order_update(&op.order_id, &op.update)
            })
            .await?;
        self.orders
            .shop_done(&op.shop, &op.order_id, mark, &value)
            .await?;
        match outcome {
            UpdateOutcome::Applied(what) => {
                info!(shop = %op.shop, order = %op.order_id, kind, %value, %what, "order updated in the shop");
            }
            UpdateOutcome::NotApplicable => {
                info!(shop = %op.shop, order = %op.order_id, kind, %value, "the shop's settings map this update to nothing");
            }
        }
        Ok(())
    }

    /// What to record of one write's outcome: what the shop now holds, or
    /// why it refused the item.
    fn outcome_writes(
        &self,
        shop: &str,
        op: &ShopOperation,
        held_after: &ProductChanges,
        outcome: &ItemOutcome,
    ) -> Vec<Write> {
        match outcome {
            ItemOutcome::Ok => {
                vec![
                    self.catalog
                        .held_write(shop, &op.sku, held_after, op.source_time),
                ]
            }
            ItemOutcome::Rejected { code, message } => self.catalog.parked_writes(
                shop,
                &op.sku,
                &[format!("the shop refused the update ({code}): {message}")],
            ),
        }
    }

    /// A call for many items (`items`) that the shop may refuse as a whole
    /// (a 400 for one bad value, say): then each item is asked for alone, so
    /// one item's refusal does not park the others. Returns what the calls
    /// answered, in item order for the items answered (a per-item answer
    /// such as [`ItemOutcome`] lines up with the items not refused), and per
    /// item the refusal, if any.
    async fn isolating_refusals<'a, I, R, F>(
        &self,
        shop: &str,
        deadline: Deadline,
        items: &'a [I],
        mut request: F,
    ) -> Result<(R, Vec<Option<ShopError>>), PushError>
    where
        R: Default + Extend<<R as IntoIterator>::Item> + IntoIterator,
        F: FnMut(&'a [I]) -> futures::future::BoxFuture<'a, Result<R, ShopError>>,
    {
        match self.call(shop, deadline, || request(items)).await {
            Ok(answer) => return Ok((answer, vec![None; items.len()])),
            Err(PushError::Refused(err)) if items.len() == 1 => {
                return Ok((R::default(), vec![Some(err)]));
            }
            Err(PushError::Refused(err)) => {
                warn!(%shop, items = items.len(), error = %err, "the shop refused a request for many items; asking for each alone");
            }
            Err(err) => return Err(err),
        }
        let mut answers = R::default();
        let mut refused = Vec::with_capacity(items.len());
        for one in items.chunks(1) {
            match self.call(shop, deadline, || request(one)).await {
                Ok(answer) => {
                    answers.extend(answer);
                    refused.push(None);
                }
                Err(PushError::Refused(err)) => refused.push(Some(err)),
                Err(err) => return Err(err),
            }
        }
        Ok((answers, refused))
    }

    /// One shop call under the rate limit, retried on 429 and transient
    /// errors, started only while the deadline leaves room for it and
    /// cut off (as a transient failure: writes are absolute) when it would
    /// run past it.
    async fn call<'a, T, F>(
        &self,
        shop: &str,
        deadline: Deadline,
        request: F,
    ) -> Result<T, PushError>
    where
        F: FnMut() -> futures::future::BoxFuture<'a, Result<T, ShopError>>,
    {
        if !deadline.allows(RECORDING_RESERVE) {
            return Err(PushError::OutOfTime);
        }
        let room = deadline
            .remaining()
            .map(|left| left.saturating_sub(RECORDING_RESERVE));
        let limits = ShopLimits {
            attempts: ATTEMPTS,
            max_token_wait: room.map_or(MAX_TOKEN_WAIT, |room| room.min(MAX_TOKEN_WAIT)),
        };
        let call = self.limiter.call_shop(shop, limits, request);
        let result = match room {
            Some(room) => tokio::time::timeout(room, call)
                .await
                .map_err(|_| PushError::OutOfTime)?,
            None => call.await,
        };
        result.map_err(|err| match err {
            ShopCallError::RateLimit(e) => PushError::RateLimit(e),
            ShopCallError::Retryable(e) => PushError::Shop(e),
            ShopCallError::Permanent(e @ ShopError::Auth(_)) => PushError::Auth(e),
            ShopCallError::Permanent(e) => PushError::Refused(e),
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum PushError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    RateLimit(#[from] crate::ratelimit::RateLimitError),
    #[error("{0}")]
    Shop(ShopError),
    /// Credentials refused: retried (and dead-lettered, with an alarm), never parked.
    #[error("{0}")]
    Auth(ShopError),
    /// This request is refused for good: retrying sends the same refusal.
    #[error("the shop refused: {0}")]
    Refused(ShopError),
    #[error("the invocation's time is nearly up")]
    OutOfTime,
    #[error("shop `{0}` has no configuration")]
    Config(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showing_zero_writes_every_stock_figure_as_0_and_names_the_skus_it_hid() {
        let op = |sku: &str, stock: Option<i64>, price: Option<i64>| ShopOperation {
            shop: "sklep".into(),
            sku: sku.into(),
            changes: ProductChanges {
                stock_quantity: stock,
                regular_price: price.map(rust_decimal::Decimal::from),
                ..ProductChanges::default()
            },
            source_time: chrono::DateTime::UNIX_EPOCH,
            reconcile: false,
        };
        let (ops, hidden) = stock_at_zero(vec![
            op("A", Some(5), None),
            op("B", None, Some(10)),
            op("C", Some(0), None),
        ]);
        assert_eq!(
            ops.iter()
                .map(|o| o.changes.stock_quantity)
                .collect::<Vec<_>>(),
            [Some(0), None, Some(0)]
        );
        // A price change stays as it is; only stock is hidden.
        assert_eq!(ops[1].changes.regular_price, Some(10.into()));
        assert_eq!(hidden, ["A"]);
    }

    #[test]
    fn a_failed_message_comes_back_after_20_s_doubling_to_15_minutes() {
        let secs = |n| redelivery_delay(n).as_secs();
        assert_eq!(
            (1..=8).map(secs).collect::<Vec<_>>(),
            vec![20, 40, 80, 160, 320, 640, 900, 900]
        );
        assert_eq!(secs(0), 20);
        assert_eq!(secs(u32::MAX), 900);
        // maxReceiveCount 12: eleven back-offs before the dead-letter queue.
        assert_eq!((1..=11).map(secs).sum::<u64>(), 5760);
    }
}
