//! `watchdog`: on a schedule, marks agents whose heartbeats stopped,
//! applies each shop's stale-stock policy and its emergency switch's "show
//! 0 stock" ([`crate::emergency`]), and mails alerts.
//!
//! A silent agent means the shop's stock may be stale: another channel may
//! be selling the last units. With `zero_low_stock`, every product the shop
//! shows with at most `threshold` units goes to 0 when the agent goes
//! silent, and back to what the ERP last said when it returns. Those writes
//! carry a reading time just after the one they replace, so any newer ERP
//! reading still wins. The status shows the mark and the zeroed count.
//!
//! The low-stock products come from the `held-stock` index (shop, stock
//! held), never a table scan, and both directions go page by page within
//! the invocation's deadline: zeroing writes a page's markers before
//! queueing its zeroes, restoring forgets a page's markers only after
//! queueing its restores, and the agent's mark changes only once the last
//! page is queued. A run cut short by time or an error is carried on by the
//! next one.
//!
//! Each run also mails what needs a person ([`crate::alerts`]): every
//! agent it finds stale, each parked order (the `parked-orders` listing),
//! each shop that refused our credentials within the last half hour, and
//! each dead-letter queue holding messages, at most once an hour per
//! cause. Finding and mailing them never fails the run: an error is logged
//! and shown in the run's summary.

use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::alerts::{Alert, Alerts, Cause};
use crate::aws::{Clients, describe_error};
use crate::catalog::Catalog;
use crate::emergency::{Emergency, Push};
use crate::env::{EnvError, FunctionEnv};
use crate::mapping::{ProductChanges, ShopOperation};
use crate::orders::OrderStore;
use crate::shop_settings::ShopsSource;
use crate::shops::{Shops, StalePolicy};
use crate::state::{AgentStatus, StateTable};
use crate::{Deadline, HandlerError};

/// Time a page of work needs: its reads, its queueing and its marker writes.
const PAGE_RESERVE: Duration = Duration::from_secs(2);

/// How far one run got.
#[derive(Debug, Default)]
struct Progress {
    /// Shop operations queued.
    queued: usize,
    /// Everything the change calls for is queued.
    finished: bool,
}

pub struct Watchdog {
    state: StateTable,
    catalog: Catalog,
    /// `SHOPS` with the settings the console saved (its stale policy).
    shops: ShopsSource,
    sqs: aws_sdk_sqs::Client,
    shop_ops_queue_url: String,
    stale_after: ChronoDuration,
    orders: OrderStore,
    /// The dead-letter queues, by the name the status gives them.
    dlqs: Vec<(&'static str, String)>,
    /// `None`: no alarm topic configured, no mails.
    alerts: Option<Alerts>,
    /// Each shop's emergency switch.
    emergency: Emergency,
}

/// The dead-letter queues the watchdog watches, by environment variable.
const DLQS: [(&str, &str); 3] = [
    ("erp_events_dlq", "EVENTS_DLQ_URL"),
    ("erp_commands_dlq", "COMMANDS_DLQ_URL"),
    ("shop_ops_dlq", "SHOP_OPS_DLQ_URL"),
];

/// Parked orders read per run for their mails (one Query).
const PARKED_ORDERS_READ: usize = 200;

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("stale_after", &self.stale_after)
            .field("alerts", &self.alerts.is_some())
            .finish()
    }
}

impl Watchdog {
    pub fn new(clients: &Clients, env: &FunctionEnv) -> Result<Self, EnvError> {
        let seconds: i64 = env.parsed("AGENT_STALE_AFTER_SECONDS", "a whole number of seconds")?;
        let table = env.required("STATE_TABLE")?;
        let shops = Shops::from_env(env, false).map_err(|e| EnvError::Invalid {
            name: "SHOPS",
            value: e.to_string(),
            expected: "a JSON list of shops (see docs/OPERATIONS.md)",
        })?;
        let dlqs = DLQS
            .iter()
            .map(|(name, var)| Ok((*name, env.required(var)?)))
            .collect::<Result<Vec<_>, EnvError>>()?;
        Ok(Watchdog {
            orders: OrderStore::new(clients.dynamodb.clone(), table.clone(), 30),
            dlqs,
            alerts: Alerts::from_env(clients, env)?,
            state: StateTable::new(clients.dynamodb.clone(), table.clone(), 30),
            emergency: Emergency::new(clients.dynamodb.clone(), table.clone()),
            catalog: Catalog::new(clients.dynamodb.clone(), table),
            shops: ShopsSource::from_env(shops, clients, env),
            sqs: clients.sqs.clone(),
            shop_ops_queue_url: env.required("SHOP_OPS_QUEUE_URL")?,
            stale_after: ChronoDuration::seconds(seconds),
        })
    }

    /// The handler without a time limit (tests, tools).
    pub async fn handle(&self, input: Value) -> Result<Value, HandlerError> {
        self.handle_until(input, Deadline::NONE).await
    }

    /// The handler: the schedule's input in, a summary out. An agent is
    /// marked stale (or back) only once everything its change calls for is
    /// on the shop-ops queue: a run cut short by `deadline` or an error
    /// leaves the mark as it was, and the next run carries on. Each step is
    /// safe to repeat (zeroing writes 0 again, restoring writes the ERP's
    /// figure again), so carrying on needs no cursor.
    pub async fn handle_until(
        &self,
        input: Value,
        deadline: Deadline,
    ) -> Result<Value, HandlerError> {
        self.handle_at(input, deadline, Utc::now()).await
    }

    /// The handler as at `now` (tests move the clock past an alert's hour).
    /// The alerts go after the stale-stock work and whatever became of it;
    /// their own errors are in the summary, never the run's.
    pub async fn handle_at(
        &self,
        _input: Value,
        deadline: Deadline,
        now: DateTime<Utc>,
    ) -> Result<Value, HandlerError> {
        let agents = self.state.agents().await?;
        let changed = self.apply_stale_policies(&agents, now, deadline).await;
        let emergency = self.apply_emergency(&agents, deadline).await;
        let alerts = self.alert(&agents, now, deadline).await;
        Ok(json!({ "changed": changed?, "emergency": emergency?, "alerts": alerts }))
    }

    /// Marks each agent stale or back once what its change calls for is
    /// queued.
    async fn apply_stale_policies(
        &self,
        agents: &[AgentStatus],
        now: DateTime<Utc>,
        deadline: Deadline,
    ) -> Result<Vec<Value>, HandlerError> {
        let mut changed = Vec::new();
        for agent in agents {
            let stale = now - agent.last_seen > self.stale_after;
            if stale == agent.marked_stale {
                continue;
            }
            let progress = if stale {
                warn!(agent = %agent.agent_id, last_seen = %agent.last_seen, "agent silent: data is stale");
                self.zero_low_stock(deadline).await?
            } else {
                info!(agent = %agent.agent_id, "agent is back");
                self.restore(deadline).await?
            };
            if progress.finished {
                self.state.mark_stale(&agent.agent_id, stale).await?;
            } else {
                info!(agent = %agent.agent_id, queued = progress.queued, "out of time; the next run carries on");
            }
            changed.push(json!({
                "agent_id": &agent.agent_id,
                "stale": stale,
                "shop_products_changed": progress.queued,
                "finished": progress.finished,
            }));
        }
        Ok(changed)
    }

    /// Finds what needs a person and mails what is due; `null` without an
    /// alarm topic.
    async fn alert(&self, agents: &[AgentStatus], now: DateTime<Utc>, deadline: Deadline) -> Value {
        let Some(alerts) = &self.alerts else {
            return Value::Null;
        };
        let (found, mut errors) = self.causes(alerts, agents, now).await;
        let mut summary = alerts.notify_all(&found, now, deadline).await;
        errors.append(&mut summary.errors);
        summary.errors = errors;
        serde_json::to_value(summary).unwrap_or_default()
    }

    /// The causes present now, each read without a scan (the agents as
    /// read, the parked-orders listing, the refusals' partition, each
    /// DLQ's depth), with what could not be read.
    async fn causes(
        &self,
        alerts: &Alerts,
        agents: &[AgentStatus],
        now: DateTime<Utc>,
    ) -> (Vec<Alert>, Vec<String>) {
        let mut found = Vec::new();
        let mut errors = Vec::new();
        for agent in agents {
            if now - agent.last_seen > self.stale_after {
                found.push(Alert {
                    cause: Cause::AgentStale {
                        agent: agent.agent_id.clone(),
                    },
                    detail: format!(
                        "ostatnio / last seen: {} UTC ({} min temu / ago)",
                        agent.last_seen.format("%Y-%m-%d %H:%M"),
                        (now - agent.last_seen).num_minutes()
                    ),
                });
            }
        }
        match self.orders.parked(PARKED_ORDERS_READ).await {
            Ok(parked) => found.extend(parked.into_iter().map(|order| Alert {
                cause: Cause::OrderParked {
                    shop: order.shop,
                    order: order.order_id,
                    number: order.number,
                },
                detail: order.reason,
            })),
            Err(err) => errors.push(format!("parked orders: {err}")),
        }
        match alerts.refusing_shops(now).await {
            Ok(shops) => found.extend(shops.into_iter().map(|(shop, at, said)| Alert {
                cause: Cause::ShopRefusedCredentials { shop },
                detail: format!("{} UTC: {said}", at.format("%Y-%m-%d %H:%M")),
            })),
            Err(err) => errors.push(format!("shops' refusals: {err}")),
        }
        for (name, url) in &self.dlqs {
            match dlq_depth(&self.sqs, url).await {
                Ok(0) => {}
                Ok(count) => found.push(Alert {
                    cause: Cause::DlqHasMessages {
                        queue: (*name).to_owned(),
                    },
                    detail: format!("komunikatów / messages: {count}"),
                }),
                Err(err) => errors.push(format!("{name}: {err}")),
            }
        }
        for error in &errors {
            warn!(%error, "cannot tell whether an alert is due");
        }
        (found, errors)
    }

    /// Zeroes, page by page, what each shop with the policy holds at
    /// `1..=threshold` units (see [`Watchdog::zero_shop`]).
    async fn zero_low_stock(&self, deadline: Deadline) -> Result<Progress, HandlerError> {
        let mut progress = Progress::default();
        for shop in &self.shops.refresh().await.shops {
            let StalePolicy::ZeroLowStock { threshold } = shop.stale_policy else {
                continue;
            };
            if !self
                .zero_shop(&shop.id, threshold, deadline, &mut progress)
                .await?
            {
                return Ok(progress);
            }
        }
        progress.finished = true;
        Ok(progress)
    }

    /// Zeroes, page by page, what a shop holds at `1..=threshold` units:
    /// the markers first (so a restore puts back even a zeroing cut
    /// short), then the operations. False when `deadline` cut it short.
    async fn zero_shop(
        &self,
        shop: &str,
        threshold: i64,
        deadline: Deadline,
        progress: &mut Progress,
    ) -> Result<bool, HandlerError> {
        let mut start = None;
        loop {
            if !deadline.allows(PAGE_RESERVE) {
                return Ok(false);
            }
            let page = self.catalog.low_stock_page(shop, threshold, start).await?;
            let skus: Vec<String> = page.skus.iter().map(|(sku, _)| sku.clone()).collect();
            self.catalog
                .write_all(self.catalog.zeroed_writes(shop, &skus))
                .await?;
            let operations = page
                .skus
                .into_iter()
                .map(|(sku, held_at)| ShopOperation {
                    shop: shop.to_owned(),
                    sku,
                    changes: ProductChanges {
                        stock_quantity: Some(0),
                        ..ProductChanges::default()
                    },
                    // Just after what it replaces: any newer ERP reading wins.
                    source_time: held_at + ChronoDuration::milliseconds(1),
                    reconcile: false,
                })
                .collect();
            progress.queued +=
                crate::shop_ops::queue(&self.sqs, &self.shop_ops_queue_url, operations).await?;
            match page.next {
                Some(next) => start = Some(next),
                None => return Ok(true),
            }
        }
    }

    /// Puts back what the ERP last said for each SKU the stale-stock
    /// policy zeroed, in every shop but one whose emergency switch shows 0
    /// (its markers wait for the switch).
    async fn restore(&self, deadline: Deadline) -> Result<Progress, HandlerError> {
        let mut progress = Progress::default();
        for shop in &self.shops.refresh().await.shops {
            if self.emergency.get(&shop.id).await?.push == Push::ZeroStock {
                continue;
            }
            if !self.restore_shop(&shop.id, deadline, &mut progress).await? {
                return Ok(progress);
            }
        }
        progress.finished = true;
        Ok(progress)
    }

    /// Puts back, page by page, what the ERP last said for each SKU zeroed
    /// in a shop; a page's markers are forgotten only once its operations
    /// are on the queue. False when `deadline` cut it short.
    async fn restore_shop(
        &self,
        shop: &str,
        deadline: Deadline,
        progress: &mut Progress,
    ) -> Result<bool, HandlerError> {
        loop {
            if !deadline.allows(PAGE_RESERVE) {
                return Ok(false);
            }
            let skus = self.catalog.zeroed_page(shop).await?;
            if skus.is_empty() {
                return Ok(true);
            }
            let shop_ids = [shop.to_owned()];
            let states = self.catalog.load_many(&skus, &shop_ids).await?;
            let held = self
                .catalog
                .held_and_ids::<ProductChanges>(shop, &skus)
                .await?;
            let operations = skus
                .iter()
                .filter_map(|sku| {
                    let (queued, source_ms) = states.get(sku)?.queued.get(shop)?;
                    let held_at = held
                        .get(sku)
                        .and_then(|(held, _)| held.as_ref())
                        .map(|(_, at)| *at);
                    let source = held_at
                        .unwrap_or_default()
                        .max(DateTime::from_timestamp_millis(*source_ms).unwrap_or_default())
                        + ChronoDuration::milliseconds(1);
                    Some(ShopOperation {
                        shop: shop.to_owned(),
                        sku: sku.clone(),
                        changes: ProductChanges {
                            stock_quantity: queued.stock_quantity,
                            ..ProductChanges::default()
                        },
                        source_time: source,
                        reconcile: false,
                    })
                })
                .collect();
            progress.queued +=
                crate::shop_ops::queue(&self.sqs, &self.shop_ops_queue_url, operations).await?;
            self.catalog
                .write_all(self.catalog.unzeroed_writes(shop, &skus))
                .await?;
        }
    }

    /// The emergency switch's "show 0 stock" (seed 003): zeroes everything
    /// a shop shows in stock once the switch is on, and puts the ERP's
    /// figures back once it is off; each recorded on the switch only when
    /// finished, so a run cut short is carried on by the next. A shop
    /// whose stale-stock policy is in force (an agent marked stale) gets
    /// its low stock zeroed again after the restore.
    async fn apply_emergency(
        &self,
        agents: &[AgentStatus],
        deadline: Deadline,
    ) -> Result<Vec<Value>, HandlerError> {
        let mut changed = Vec::new();
        let any_stale = agents.iter().any(|a| a.marked_stale);
        for shop in &self.shops.refresh().await.shops {
            let switch = self.emergency.get(&shop.id).await?;
            let zero = switch.push == Push::ZeroStock;
            if zero == switch.zero_applied {
                continue;
            }
            let mut progress = Progress::default();
            let finished = if zero {
                warn!(shop = %shop.id, by = ?switch.changed_by, "emergency: showing 0 stock everywhere");
                self.zero_shop(&shop.id, i64::MAX, deadline, &mut progress)
                    .await?
            } else {
                info!(shop = %shop.id, by = ?switch.changed_by, "emergency over: putting the ERP's stock back");
                let restored = self.restore_shop(&shop.id, deadline, &mut progress).await?;
                match shop.stale_policy {
                    StalePolicy::ZeroLowStock { threshold } if restored && any_stale => {
                        self.zero_shop(&shop.id, threshold, deadline, &mut progress)
                            .await?
                    }
                    _ => restored,
                }
            };
            if finished
                && !self
                    .emergency
                    .record_zero_applied(&shop.id, &switch, zero)
                    .await?
            {
                info!(shop = %shop.id, "the switch changed meanwhile; the next run follows it");
            }
            changed.push(json!({
                "shop": shop.id,
                "zero_stock": zero,
                "shop_products_changed": progress.queued,
                "finished": finished,
            }));
        }
        Ok(changed)
    }

    /// How many products the policy holds at 0, per shop (for the status).
    pub async fn zeroed(catalog: &Catalog, shops: &Shops) -> Vec<Value> {
        let mut out = Vec::new();
        for shop in &shops.shops {
            let count = catalog.zeroed_count(&shop.id).await.unwrap_or(0);
            out.push(json!({"shop": shop.id, "stale_policy": shop.stale_policy, "zeroed_products": count}));
        }
        out
    }
}

/// Messages waiting in a dead-letter queue (visible and in flight: a
/// person reading them holds them in flight).
async fn dlq_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64, String> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|err| describe_error(&err))?;
    let attributes = out.attributes.unwrap_or_default();
    let read = |name: QueueAttributeName| {
        attributes
            .get(&name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(read(QueueAttributeName::ApproximateNumberOfMessages)
        + read(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}
