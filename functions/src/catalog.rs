//! The ERP's view of each product in the state table, and what each shop
//! should show: one partition per SKU (`pk = sku#<SKU>`), items
//! - `product`, `price#<price list>`, `stock#<warehouse>`: the latest ERP
//!   record (JSON) with `version_ms`, the time the agent read it; a write
//!   only lands when it is not older than what is stored, so batches that
//!   arrive twice or out of order never leave older values in place;
//! - `shop#<shop>`: the state last queued for that shop (what `ingest`
//!   diffs against, so an unchanged value is never queued again);
//! - `held#<shop>`: what the shop was last seen to hold (written by
//!   `shop-push` after the shop confirmed it);
//! - `id#<shop>`: the shop's id for the SKU, looked up once and cached.
//!
//! Plus per-agent sequence numbers (`pk = sequences`) and records that
//! could not be mapped (`pk = parked-records`, `sk = <shop>#<SKU>`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use contract::{PriceRecord, ProductRecord, StockRecord};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::aws::describe_error;
use crate::dynamo::{n, s};
use crate::mapping::ShopProductState;
use crate::shop::ShopItemId;
use crate::state::StateError;

#[derive(Clone, Debug)]
pub struct Catalog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn pk(sku: &str) -> AttributeValue {
    s(format!("sku#{sku}"))
}

/// Everything stored for one SKU.
#[derive(Debug, Default, Clone)]
pub struct SkuState {
    pub product: Option<ProductRecord>,
    pub prices: Vec<PriceRecord>,
    pub stock: Vec<StockRecord>,
    /// The newest `version_ms` among the ERP records.
    pub newest: Option<DateTime<Utc>>,
    /// shop id → state last queued.
    pub queued: HashMap<String, (ShopProductState, i64)>,
    /// Shops for which this SKU is parked now.
    pub parked_in: std::collections::HashSet<String>,
}

/// Sequence check result for an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// Seen before: do nothing.
    Duplicate,
    /// The next one, or the first one.
    InOrder,
    /// Later than the next expected one: `missing` were never seen.
    Gap { from: u64, to: u64 },
}

impl Catalog {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Catalog {
            client,
            table: table.into(),
        }
    }

    fn error(
        &self,
        operation: &'static str,
        err: &(dyn std::error::Error + 'static),
    ) -> StateError {
        StateError::Dynamo {
            operation,
            table: self.table.clone(),
            message: describe_error(err),
        }
    }

    /// Where `seq` stands against the last sequence applied for `agent`.
    pub async fn check_seq(&self, agent: &str, seq: u64) -> Result<SeqCheck, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s("sequences"))
            .key("sk", s(agent))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", &e))?;
        let last: Option<u64> = out
            .item
            .as_ref()
            .and_then(|i| i.get("last_seq"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok());
        Ok(match last {
            None => SeqCheck::InOrder,
            Some(last) if seq <= last => SeqCheck::Duplicate,
            Some(last) if seq == last + 1 => SeqCheck::InOrder,
            Some(last) => SeqCheck::Gap {
                from: last + 1,
                to: seq - 1,
            },
        })
    }

    /// Records `seq` as applied (never moves backwards).
    pub async fn mark_seq(&self, agent: &str, seq: u64) -> Result<(), StateError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("sequences"))
            .key("sk", s(agent))
            .update_expression("SET last_seq = :seq")
            .condition_expression("attribute_not_exists(last_seq) OR last_seq < :seq")
            .expression_attribute_values(":seq", n(seq))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(self.error("UpdateItem", &err)),
        }
    }

    /// Stores an ERP record unless a newer one is stored. Returns whether it landed.
    pub async fn put_record<T: Serialize>(
        &self,
        sku: &str,
        sk: &str,
        record: &T,
        version: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let json = serde_json::to_string(record).map_err(|e| StateError::Malformed {
            key: format!("{sku}/{sk}"),
            problem: e.to_string(),
        })?;
        self.put_if_not_older(sku, sk, ("record", json), ("version_ms", version))
            .await
    }

    /// Everything stored for a SKU (one query on its partition).
    pub async fn load(&self, sku: &str) -> Result<SkuState, StateError> {
        let mut state = SkuState::default();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", pk(sku))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.error("Query", &e))?;
            for item in page.items.unwrap_or_default() {
                let sk = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                let version = item
                    .get("version_ms")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<i64>().ok());
                let record = item.get("record").and_then(|v| v.as_s().ok());
                let decode = |text: &str| {
                    serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
                        StateError::Malformed {
                            key: format!("{sku}/{sk}"),
                            problem: e.to_string(),
                        }
                    })
                };
                if let (Some(record), Some(version)) = (record, version) {
                    let value = decode(record)?;
                    if let Some(at) = DateTime::from_timestamp_millis(version) {
                        state.newest = Some(state.newest.map_or(at, |n| n.max(at)));
                    }
                    if sk == "product" {
                        state.product = from_value(value, sku, &sk)?;
                    } else if sk.starts_with("price#") {
                        state
                            .prices
                            .extend(from_value::<PriceRecord>(value, sku, &sk)?);
                    } else if sk.starts_with("stock#") {
                        state
                            .stock
                            .extend(from_value::<StockRecord>(value, sku, &sk)?);
                    }
                } else if let Some(shop) = sk.strip_prefix("parked#") {
                    state.parked_in.insert(shop.to_owned());
                } else if let Some(shop) = sk.strip_prefix("shop#") {
                    let queued = item.get("state").and_then(|v| v.as_s().ok());
                    let source_ms = item
                        .get("source_ms")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if let Some(text) = queued
                        && let Some(queued) =
                            from_value::<ShopProductState>(decode(text)?, sku, &sk)?
                    {
                        state.queued.insert(shop.to_owned(), (queued, source_ms));
                    }
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(state),
            }
        }
    }

    /// Stores the state queued for a shop, unless a newer one was queued.
    pub async fn put_queued(
        &self,
        shop: &str,
        state: &ShopProductState,
        source: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        self.put_shop_item("shop", shop, state, source).await
    }

    /// Stores what the shop confirmed it holds, unless newer is recorded.
    pub async fn put_held<T: Serialize>(
        &self,
        shop: &str,
        sku: &str,
        held: &T,
        source: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let json = serde_json::to_string(held).unwrap_or_default();
        self.conditional_put(sku, &format!("held#{shop}"), json, source)
            .await
    }

    /// What the shop was last seen to hold, with its source time.
    pub async fn held<T: DeserializeOwned>(
        &self,
        shop: &str,
        sku: &str,
    ) -> Result<Option<(T, DateTime<Utc>)>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk(sku))
            .key("sk", s(format!("held#{shop}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", &e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let state = item.get("state").and_then(|v| v.as_s().ok());
        let source = item
            .get("source_ms")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_millis);
        match (state, source) {
            (Some(state), Some(source)) => {
                Ok(serde_json::from_str(state).ok().map(|s| (s, source)))
            }
            _ => Ok(None),
        }
    }

    async fn put_shop_item<T: Serialize>(
        &self,
        kind: &str,
        shop: &str,
        state: &T,
        source: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let json = serde_json::to_string(state).unwrap_or_default();
        let sku = serde_json::to_value(state)
            .ok()
            .and_then(|v| v.get("sku").and_then(|s| s.as_str()).map(str::to_owned))
            .unwrap_or_default();
        self.conditional_put(&sku, &format!("{kind}#{shop}"), json, source)
            .await
    }

    async fn conditional_put(
        &self,
        sku: &str,
        sk: &str,
        json: String,
        source: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        self.put_if_not_older(sku, sk, ("state", json), ("source_ms", source))
            .await
    }

    /// Writes `body` unless the stored item's `stamp` is newer: the one
    /// place "older never overwrites newer" is decided. Returns whether it landed.
    async fn put_if_not_older(
        &self,
        sku: &str,
        sk: &str,
        (body_attr, body): (&str, String),
        (stamp_attr, stamp): (&str, DateTime<Utc>),
    ) -> Result<bool, StateError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(sku))
            .item("sk", s(sk))
            .item(body_attr, s(body))
            .item(stamp_attr, n(stamp.timestamp_millis()))
            .condition_expression("attribute_not_exists(pk) OR #stamp <= :v")
            .expression_attribute_names("#stamp", stamp_attr)
            .expression_attribute_values(":v", n(stamp.timestamp_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(self.error("PutItem", &err)),
        }
    }

    /// For many SKUs at once: what the shop holds (with its source time) and
    /// the shop's cached id, in BatchGetItem calls of 100 keys.
    pub async fn held_and_ids<T: DeserializeOwned>(
        &self,
        shop: &str,
        skus: &[String],
    ) -> Result<HashMap<String, HeldAndId<T>>, StateError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut out: HashMap<String, HeldAndId<T>> =
            skus.iter().map(|sku| (sku.clone(), (None, None))).collect();
        let held_sk = format!("held#{shop}");
        let id_sk = format!("id#{shop}");
        for chunk in skus.chunks(50) {
            let keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .flat_map(|sku| {
                    [&held_sk, &id_sk].map(|sk| {
                        HashMap::from([
                            ("pk".to_owned(), pk(sku)),
                            ("sk".to_owned(), s(sk.clone())),
                        ])
                    })
                })
                .collect();
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| StateError::Malformed {
                    key: "batch-get".into(),
                    problem: e.to_string(),
                })?;
            // Unprocessed keys come back under load: ask again, a bounded number of times.
            for _ in 0..10 {
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request.clone())
                    .send()
                    .await
                    .map_err(|e| self.error("BatchGetItem", &e))?;
                for item in answer
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let sku = item
                        .get("pk")
                        .and_then(|v| v.as_s().ok())
                        .and_then(|p| p.strip_prefix("sku#"))
                        .map(str::to_owned)
                        .unwrap_or_default();
                    let Some(entry) = out.get_mut(&sku) else {
                        continue;
                    };
                    let sk = item
                        .get("sk")
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default();
                    if sk == held_sk {
                        let state = item.get("state").and_then(|v| v.as_s().ok());
                        let source = item
                            .get("source_ms")
                            .and_then(|v| v.as_n().ok())
                            .and_then(|v| v.parse::<i64>().ok())
                            .and_then(DateTime::from_timestamp_millis);
                        if let (Some(state), Some(source)) = (state, source) {
                            entry.0 = serde_json::from_str(state).ok().map(|s| (s, source));
                        }
                    } else if sk == id_sk {
                        entry.1 = item
                            .get("id")
                            .and_then(|v| v.as_s().ok())
                            .and_then(|text| serde_json::from_str(text).ok());
                    }
                }
                match answer
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                {
                    Some(rest) if !rest.keys().is_empty() => request = rest,
                    _ => break,
                }
            }
        }
        Ok(out)
    }

    /// Every SKU with what the shop holds, for one shop (a scan: used by the
    /// watchdog only when an agent goes silent or comes back).
    pub async fn all_held<T: DeserializeOwned>(
        &self,
        shop: &str,
    ) -> Result<Vec<(String, T, DateTime<Utc>)>, StateError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("sk = :held")
                .expression_attribute_values(":held", s(format!("held#{shop}")))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.error("Scan", &e))?;
            for item in page.items.unwrap_or_default() {
                let sku = item
                    .get("pk")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|p| p.strip_prefix("sku#"));
                let state = item
                    .get("state")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|t| serde_json::from_str(t).ok());
                let source = item
                    .get("source_ms")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<i64>().ok())
                    .and_then(DateTime::from_timestamp_millis);
                if let (Some(sku), Some(state), Some(source)) = (sku, state, source) {
                    out.push((sku.to_owned(), state, source));
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(out),
            }
        }
    }

    /// SKUs zeroed in a shop by the stale-stock policy, to restore later.
    pub async fn mark_zeroed(&self, shop: &str, sku: &str) -> Result<(), StateError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("stale-zeroed#{shop}")))
            .item("sk", s(sku))
            .send()
            .await
            .map_err(|e| self.error("PutItem", &e))?;
        Ok(())
    }

    /// The SKUs zeroed in a shop, and forgets them.
    pub async fn take_zeroed(&self, shop: &str) -> Result<Vec<String>, StateError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("stale-zeroed#{shop}")))
            .send()
            .await
            .map_err(|e| self.error("Query", &e))?;
        let skus: Vec<String> = page
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned())
            .collect();
        for sku in &skus {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(format!("stale-zeroed#{shop}")))
                .key("sk", s(sku.clone()))
                .send()
                .await
                .map_err(|e| self.error("DeleteItem", &e))?;
        }
        Ok(skus)
    }

    /// How many SKUs the stale-stock policy holds at 0 in a shop now.
    pub async fn zeroed_count(&self, shop: &str) -> Result<usize, StateError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("stale-zeroed#{shop}")))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .map_err(|e| self.error("Query", &e))?;
        Ok(page.count.max(0) as usize)
    }

    /// The shop's id for a SKU, if looked up before.
    pub async fn shop_id(&self, shop: &str, sku: &str) -> Result<Option<ShopItemId>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk(sku))
            .key("sk", s(format!("id#{shop}")))
            .send()
            .await
            .map_err(|e| self.error("GetItem", &e))?;
        Ok(out
            .item
            .and_then(|i| i.get("id").and_then(|v| v.as_s().ok()).cloned())
            .and_then(|text| serde_json::from_str(&text).ok()))
    }

    pub async fn put_shop_id(
        &self,
        shop: &str,
        sku: &str,
        id: &ShopItemId,
    ) -> Result<(), StateError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(sku))
            .item("sk", s(format!("id#{shop}")))
            .item("id", s(serde_json::to_string(id).unwrap_or_default()))
            .send()
            .await
            .map_err(|e| self.error("PutItem", &e))?;
        Ok(())
    }

    /// Keeps (or, with no reasons, clears) why a SKU cannot be fully shown
    /// in a shop. A marker in the SKU's own partition lets [`Catalog::load`]
    /// tell whether there is anything to clear.
    pub async fn set_parked(
        &self,
        shop: &str,
        sku: &str,
        reasons: &[String],
    ) -> Result<(), StateError> {
        let key = format!("{shop}#{sku}");
        if reasons.is_empty() {
            for (partition, sort) in [
                (s("parked-records"), s(key.clone())),
                (pk(sku), s(format!("parked#{shop}"))),
            ] {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", partition)
                    .key("sk", sort)
                    .send()
                    .await
                    .map_err(|e| self.error("DeleteItem", &e))?;
            }
            return Ok(());
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(sku))
            .item("sk", s(format!("parked#{shop}")))
            .send()
            .await
            .map_err(|e| self.error("PutItem", &e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s("parked-records"))
            .item("sk", s(key))
            .item("shop", s(shop))
            .item("sku", s(sku))
            .item(
                "reasons",
                AttributeValue::L(reasons.iter().map(|r| s(r.clone())).collect()),
            )
            .item("at_ms", n(Utc::now().timestamp_millis()))
            .send()
            .await
            .map_err(|e| self.error("PutItem", &e))?;
        Ok(())
    }

    /// Records parked per shop and SKU, with their reasons (at most `limit`).
    pub async fn parked_records(&self, limit: i32) -> Result<Vec<ParkedRecord>, StateError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s("parked-records"))
            .limit(limit)
            .send()
            .await
            .map_err(|e| self.error("Query", &e))?;
        Ok(out
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| ParkedRecord {
                shop: item
                    .get("shop")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default(),
                sku: item
                    .get("sku")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default(),
                reasons: item
                    .get("reasons")
                    .and_then(|v| v.as_l().ok())
                    .map(|l| l.iter().filter_map(|r| r.as_s().ok().cloned()).collect())
                    .unwrap_or_default(),
            })
            .collect())
    }
}

/// What a shop holds for a SKU (with the reading time) and the shop's id for it.
pub type HeldAndId<T> = (Option<(T, DateTime<Utc>)>, Option<ShopItemId>);

/// A product a shop cannot show in full, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ParkedRecord {
    pub shop: String,
    pub sku: String,
    pub reasons: Vec<String>,
}

fn from_value<T: DeserializeOwned>(
    value: serde_json::Value,
    sku: &str,
    sk: &str,
) -> Result<Option<T>, StateError> {
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| StateError::Malformed {
            key: format!("{sku}/{sk}"),
            problem: e.to_string(),
        })
}
