//! `shop-push`: shop operations off the shop-ops queue, into the shops.
//!
//! Per invocation, operations are grouped per shop and coalesced per SKU
//! (the newer reading wins), then checked against what the shop was last
//! seen to hold: an older reading never overwrites a newer one and a write
//! that changes nothing is never sent. Shop ids by SKU are looked up once
//! and cached. Writes go in the platform's batch calls, each after taking a
//! token from the shop's bucket in DynamoDB (shared by every instance). A
//! 429 empties the bucket for `Retry-After`; 5xx and timeouts are retried a
//! few times with back-off inside the invocation and then handed back to
//! the queue. Permanent refusals (SKU not in the shop, a value the shop
//! rejects, bad credentials) are parked with their reason.
//!
//! Order operations (a status for an ERP stage, a tracking note) go one
//! call each, under the same limit. Each is checked against the stored
//! order first: one the order's newer stage has superseded, or one already
//! done (`status_set`, `tracking_noted`, recorded after the shop said yes),
//! is skipped, so a redelivered message never changes the shop twice. A
//! refusal is parked on the order, where the admin status lists it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use tracing::{info, warn};

use crate::HandlerError;
use crate::aws::Clients;
use crate::catalog::Catalog;
use crate::env::{EnvError, FunctionEnv};
use crate::mapping::{ProductChanges, ShopOperation};
use crate::orders::OrderStore;
use crate::ratelimit::{RateLimiter, ShopCallError, ShopLimits};
use crate::shop::{ItemOutcome, ShopConnector, ShopError, ShopItemId};
use crate::shop_ops::{OrderAction, OrderOperation, QueuedOperation};
use crate::shops::Shops;
use crate::state::{StateError, StateTable};

/// Attempts of one shop call inside an invocation before handing back to the queue.
const ATTEMPTS: u32 = 4;
/// The longest a call waits for a rate-limit token before handing back.
const MAX_TOKEN_WAIT: Duration = Duration::from_secs(60);

pub struct ShopPush {
    catalog: Catalog,
    orders: OrderStore,
    state: StateTable,
    limiter: RateLimiter,
    shops: Shops,
    connectors: HashMap<String, Arc<dyn ShopConnector>>,
}

impl std::fmt::Debug for ShopPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShopPush")
            .field("shops", &self.connectors.keys())
            .finish()
    }
}

/// Keeps only the fields of `changes` that differ from what the shop holds.
pub fn not_yet_held(changes: &ProductChanges, held: Option<&ProductChanges>) -> ProductChanges {
    let Some(held) = held else {
        return changes.clone();
    };
    fn keep<T: PartialEq + Clone>(new: &Option<T>, held: &Option<T>) -> Option<T> {
        match (new, held) {
            (Some(n), Some(h)) if n == h => None,
            (n, _) => n.clone(),
        }
    }
    ProductChanges {
        regular_price: keep(&changes.regular_price, &held.regular_price),
        stock_quantity: keep(&changes.stock_quantity, &held.stock_quantity),
        visible: keep(&changes.visible, &held.visible),
        tax_class: keep(&changes.tax_class, &held.tax_class),
        name: keep(&changes.name, &held.name),
        category: keep(&changes.category, &held.category),
        unit: keep(&changes.unit, &held.unit),
    }
}

impl ShopPush {
    pub fn new(clients: &Clients, env: &FunctionEnv) -> Result<Self, EnvError> {
        let table = env.required("STATE_TABLE")?;
        let shops = Shops::from_env(env, true).map_err(|e| EnvError::Invalid {
            name: "SHOPS",
            value: e.to_string(),
            expected: "a JSON list of shops with credentials in SHOP_SECRETS",
        })?;
        let mut connectors = HashMap::new();
        for shop in &shops.shops {
            let connector = shops.connector(&shop.id).map_err(|e| EnvError::Invalid {
                name: "SHOPS",
                value: e.to_string(),
                expected: "a usable shop address and credentials",
            })?;
            connectors.insert(shop.id.clone(), connector);
        }
        Ok(ShopPush {
            catalog: Catalog::new(clients.dynamodb.clone(), table.clone()),
            orders: OrderStore::new(clients.dynamodb.clone(), table.clone(), 30),
            state: StateTable::new(clients.dynamodb.clone(), table.clone(), 30),
            limiter: RateLimiter::new(clients.dynamodb.clone(), table),
            shops,
            connectors,
        })
    }

    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, HandlerError> {
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
            let skus: Vec<String> = operations.keys().cloned().collect();
            match self
                .push_shop(&shop, operations.into_values().map(|(op, _)| op).collect())
                .await
            {
                Ok(()) => {}
                Err(PushError::Permanent(err)) => {
                    // Retrying sends the same refusal: park for a person.
                    warn!(%shop, error = %err, "the shop refused; parking its operations");
                    for sku in &skus {
                        self.catalog
                            .set_parked(&shop, sku, &[err.to_string()])
                            .await?;
                    }
                }
                Err(err) => {
                    warn!(%shop, error = %err, "shop push failed; its messages will be redelivered");
                    failed.extend(sources.into_iter().flatten());
                }
            }
        }
        for (op, message_id) in order_work {
            if failed.contains(&message_id) {
                continue;
            }
            match self.push_order(&op).await {
                Ok(()) => {}
                Err(PushError::Permanent(err)) => {
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
                            &format!("the shop refused {:?}: {err}", op.action),
                        )
                        .await?;
                }
                Err(err) => {
                    warn!(shop = %op.shop, order = %op.order_id, error = %err, "order update failed; its message will be redelivered");
                    failed.insert(message_id);
                }
            }
        }
        let mut response = SqsBatchResponse::default();
        for id in failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
        Ok(response)
    }

    /// Writes one shop's operations; `Err` means retry later (nothing lost:
    /// writes are absolute and what landed is recorded as held).
    async fn push_shop(&self, shop: &str, operations: Vec<ShopOperation>) -> Result<(), PushError> {
        let Some(connector) = self.connectors.get(shop) else {
            for op in &operations {
                self.catalog
                    .set_parked(shop, &op.sku, &[format!("shop `{shop}` is not configured")])
                    .await?;
            }
            return Ok(());
        };
        let config = self
            .shops
            .get(shop)
            .ok_or_else(|| PushError::Config(shop.to_owned()))?;
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
            let changes = not_yet_held(&op.changes, held.as_ref().map(|(h, _)| h));
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
        // Shop ids not cached yet: looked up once, in the platform's pages.
        // Only shop calls happen in these loops, paced by the rate limit;
        // what they taught us is recorded afterwards, all at once.
        missing.sort();
        let mut not_in_shop = Vec::new();
        let mut new_ids = Vec::new();
        for chunk in missing.chunks(connector.max_batch()) {
            let found = self
                .call(shop, config.requests_per_second, config.burst, || {
                    connector.lookup_ids(chunk)
                })
                .await?;
            for sku in chunk {
                match found.get(sku) {
                    Some(id) => {
                        ids.insert(sku.clone(), id.clone());
                        new_ids.push((sku.clone(), id.clone()));
                    }
                    None => not_in_shop.push(sku.clone()),
                }
            }
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
        for path in paths {
            if let Err(err) = self
                .call(shop, config.requests_per_second, config.burst, || {
                    connector.ensure_category(path)
                })
                .await
            {
                warn!(%shop, category = ?path, error = %err, "cannot find or create the category; products keep theirs");
            }
        }
        let mut results: Vec<(ShopOperation, ProductChanges, ItemOutcome)> = Vec::new();
        let mut failure = None;
        for chunk in writable.chunks(connector.max_batch()) {
            let items: Vec<(ShopItemId, ProductChanges)> = chunk
                .iter()
                .map(|(id, op, _)| (id.clone(), op.changes.clone()))
                .collect();
            match self
                .call(shop, config.requests_per_second, config.burst, || {
                    connector.write_products(&items)
                })
                .await
            {
                Ok(outcomes) => results.extend(
                    chunk
                        .iter()
                        .cloned()
                        .zip(outcomes)
                        .map(|((_, op, held_after), outcome)| (op, held_after, outcome)),
                ),
                Err(err) => {
                    // Record what did land before handing the rest back.
                    failure = Some(err);
                    break;
                }
            }
        }
        let written = results.iter().filter(|(_, _, o)| o.is_ok()).count();
        self.record(shop, new_ids, not_in_shop, results).await?;
        if let Some(err) = failure {
            return Err(err);
        }
        info!(%shop, written, "shop updated");
        Ok(())
    }

    /// One order operation, unless superseded or already done.
    async fn push_order(&self, op: &OrderOperation) -> Result<(), PushError> {
        let (Some(connector), Some(config)) =
            (self.connectors.get(&op.shop), self.shops.get(&op.shop))
        else {
            warn!(shop = %op.shop, order = %op.order_id, "order operation for a shop not configured; dropped");
            return Ok(());
        };
        let Some(stored) = self.orders.get(&op.shop, &op.order_id).await? else {
            info!(shop = %op.shop, order = %op.order_id, "order no longer stored (retention passed); operation dropped");
            return Ok(());
        };
        let (rate, burst) = (config.requests_per_second, config.burst);
        match &op.action {
            OrderAction::SetStatus { status, stage } => {
                if stored.stage.as_deref() != Some(stage.as_str())
                    || stored.status_set.as_deref() == Some(status.as_str())
                {
                    return Ok(());
                }
                self.call(&op.shop, rate, burst, || {
                    connector.set_order_status(&op.order_id, status)
                })
                .await?;
                self.orders
                    .shop_done(&op.shop, &op.order_id, "status_set", status)
                    .await?;
                info!(shop = %op.shop, order = %op.order_id, %status, %stage, "order status set in the shop");
            }
            OrderAction::TrackingNote { tracking, note } => {
                if stored.tracking_noted.as_deref() == Some(tracking.as_str()) {
                    return Ok(());
                }
                self.call(&op.shop, rate, burst, || {
                    connector.add_customer_note(&op.order_id, note)
                })
                .await?;
                self.orders
                    .shop_done(&op.shop, &op.order_id, "tracking_noted", tracking)
                    .await?;
                info!(shop = %op.shop, order = %op.order_id, %tracking, "tracking number noted for the customer");
            }
        }
        Ok(())
    }

    /// Records ids found, SKUs the shop lacks, what it now holds and what it refused.
    async fn record(
        &self,
        shop: &str,
        new_ids: Vec<(String, ShopItemId)>,
        not_in_shop: Vec<String>,
        results: Vec<(ShopOperation, ProductChanges, ItemOutcome)>,
    ) -> Result<(), StateError> {
        let catalog = &self.catalog;
        let not_in_shop = not_in_shop.iter().flat_map(|sku| {
            catalog.parked_writes(
                shop,
                sku,
                &["the SKU is not in the shop (no product or variation has it)".to_owned()],
            )
        });
        let results = results
            .iter()
            .flat_map(|(op, held_after, outcome)| match outcome {
                ItemOutcome::Ok => {
                    vec![catalog.held_write(shop, &op.sku, held_after, op.source_time)]
                }
                ItemOutcome::Rejected { code, message } => catalog.parked_writes(
                    shop,
                    &op.sku,
                    &[format!("the shop refused the update ({code}): {message}")],
                ),
            });
        let writes = new_ids
            .iter()
            .map(|(sku, id)| catalog.id_write(shop, sku, id))
            .chain(not_in_shop)
            .chain(results)
            .collect();
        catalog.write_all(writes).await.map(|_| ())
    }

    /// One shop call under the rate limit, retried on 429 and transient errors.
    async fn call<'a, T, F>(
        &self,
        shop: &str,
        rate: u32,
        burst: u32,
        request: F,
    ) -> Result<T, PushError>
    where
        F: FnMut() -> futures::future::BoxFuture<'a, Result<T, ShopError>>,
    {
        let limits = ShopLimits {
            rate,
            burst,
            attempts: ATTEMPTS,
            max_token_wait: MAX_TOKEN_WAIT,
        };
        self.limiter
            .call_shop(shop, limits, request)
            .await
            .map_err(|err| match err {
                ShopCallError::RateLimit(e) => PushError::RateLimit(e),
                ShopCallError::Retryable(e) => PushError::Shop(e),
                ShopCallError::Permanent(e) => PushError::Permanent(e),
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
    #[error("the shop refused: {0}")]
    Permanent(ShopError),
    #[error("shop `{0}` has no configuration")]
    Config(String),
}
