//! `watchdog`: on a schedule, marks agents whose heartbeats stopped, and
//! applies each shop's stale-stock policy.
//!
//! A silent agent means the shop's stock may be stale: another channel may
//! be selling the last units. With `zero_low_stock`, every product the shop
//! shows with at most `threshold` units goes to 0 when the agent goes
//! silent, and back to what the ERP last said when it returns. Those writes
//! carry a reading time just after the one they replace, so any newer ERP
//! reading still wins. The status shows the mark and the zeroed count.

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::HandlerError;
use crate::aws::Clients;
use crate::catalog::Catalog;
use crate::env::{EnvError, FunctionEnv};
use crate::mapping::{ProductChanges, ShopOperation};
use crate::shops::{Shops, StalePolicy};
use crate::state::StateTable;

pub struct Watchdog {
    state: StateTable,
    catalog: Catalog,
    shops: Shops,
    sqs: aws_sdk_sqs::Client,
    shop_ops_queue_url: String,
    stale_after: ChronoDuration,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("stale_after", &self.stale_after)
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
        Ok(Watchdog {
            state: StateTable::new(clients.dynamodb.clone(), table.clone(), 30),
            catalog: Catalog::new(clients.dynamodb.clone(), table),
            shops,
            sqs: clients.sqs.clone(),
            shop_ops_queue_url: env.required("SHOP_OPS_QUEUE_URL")?,
            stale_after: ChronoDuration::seconds(seconds),
        })
    }

    /// The handler: the schedule's input in, a summary out.
    pub async fn handle(&self, _input: Value) -> Result<Value, HandlerError> {
        let now = Utc::now();
        let mut changed = Vec::new();
        for agent in self.state.agents().await? {
            let stale = now - agent.last_seen > self.stale_after;
            if stale == agent.marked_stale {
                continue;
            }
            self.state.mark_stale(&agent.agent_id, stale).await?;
            let affected = if stale {
                warn!(agent = %agent.agent_id, last_seen = %agent.last_seen, "agent silent: data is stale");
                self.zero_low_stock().await?
            } else {
                info!(agent = %agent.agent_id, "agent is back");
                self.restore().await?
            };
            changed.push(json!({"agent_id": agent.agent_id, "stale": stale, "shop_products_changed": affected}));
        }
        Ok(json!({ "changed": changed }))
    }

    async fn zero_low_stock(&self) -> Result<usize, HandlerError> {
        let mut operations = Vec::new();
        for shop in &self.shops.shops {
            let StalePolicy::ZeroLowStock { threshold } = shop.stale_policy else {
                continue;
            };
            for (sku, held, held_at) in self.catalog.all_held::<ProductChanges>(&shop.id).await? {
                if held.stock_quantity.is_some_and(|q| q > 0 && q <= threshold) {
                    self.catalog.mark_zeroed(&shop.id, &sku).await?;
                    operations.push(ShopOperation {
                        shop: shop.id.clone(),
                        sku,
                        changes: ProductChanges {
                            stock_quantity: Some(0),
                            ..ProductChanges::default()
                        },
                        source_time: held_at + ChronoDuration::milliseconds(1),
                        reconcile: false,
                    });
                }
            }
        }
        Ok(crate::shop_ops::queue(&self.sqs, &self.shop_ops_queue_url, operations).await?)
    }

    async fn restore(&self) -> Result<usize, HandlerError> {
        let mut operations = Vec::new();
        for shop in &self.shops.shops {
            for sku in self.catalog.take_zeroed(&shop.id).await? {
                let state = self.catalog.load(&sku).await?;
                let Some((queued, source_ms)) = state.queued.get(&shop.id) else {
                    continue;
                };
                let held_at = self
                    .catalog
                    .held::<ProductChanges>(&shop.id, &sku)
                    .await?
                    .map(|(_, at)| at);
                let source = held_at
                    .unwrap_or_default()
                    .max(chrono::DateTime::from_timestamp_millis(*source_ms).unwrap_or_default())
                    + ChronoDuration::milliseconds(1);
                operations.push(ShopOperation {
                    shop: shop.id.clone(),
                    sku,
                    changes: ProductChanges {
                        stock_quantity: queued.stock_quantity,
                        ..ProductChanges::default()
                    },
                    source_time: source,
                    reconcile: false,
                });
            }
        }
        Ok(crate::shop_ops::queue(&self.sqs, &self.shop_ops_queue_url, operations).await?)
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
