//! The ERP's view of each product in the state table, and what each shop
//! should show: one partition per SKU (`pk = sku#<SKU>`), items
//! - `erp`: the latest ERP record of each kind (`product`, `price#<price
//!   list>`, `stock#<warehouse>`, JSON with `version_ms`, the time the agent
//!   read it) and the state last queued for each shop (what `ingest` diffs
//!   against, so an unchanged value is never queued again), with a revision
//!   number: `ingest` reads the items of a batch's SKUs together, merges
//!   newer over older, and writes each back only if its revision is still
//!   the one it read. One item per SKU rather than one per record keeps a
//!   full pass at about one write per SKU and kind instead of three calls
//!   per record;
//! - `held#<shop>`: what the shop was last seen to hold (written by
//!   `shop-push` after the shop confirmed it);
//! - `id#<shop>`: the shop's id for the SKU, looked up once and cached;
//! - `parked#<shop>`: why the SKU is parked in that shop, if it is.
//!
//! Plus records that could not be mapped (`pk = parked-records`,
//! `sk = <shop>#<SKU>`). Agent sequence numbers are in [`crate::sequences`].

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use contract::{PriceRecord, ProductRecord, StockRecord};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::aws::describe_error;
use crate::dynamo::{get_n, get_s, get_strings, get_time, n, s};
use crate::mapping::{ProductChanges, ShopProductState};
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

/// The sort key of a SKU's ERP item.
const ERP_SK: &str = "erp";
/// The index of `held#<shop>` items by shop and stock figure
/// (`infra/template.yaml`): low stock without a scan.
const HELD_STOCK_INDEX: &str = "held-stock";
/// Items per page of the watchdog's queries (one batch of work each).
const PAGE_ITEMS: i32 = 100;
/// TransactWriteItems takes at most 100 writes.
const TRANSACTION_ITEMS: usize = 100;
/// Writes in flight when a refused transaction's writes go one by one.
const SINGLE_WRITES_IN_FLIGHT: usize = 16;

/// Everything stored for one SKU.
#[derive(Debug, Default, Clone)]
pub struct SkuState {
    /// The latest ERP record per kind (`product`, `price#<list>`,
    /// `stock#<warehouse>`) with the time the agent read it.
    pub records: BTreeMap<String, StoredRecord>,
    /// shop id → state last queued, with its source time (epoch ms).
    pub queued: BTreeMap<String, (ShopProductState, i64)>,
    /// shop id → why the SKU is parked there now.
    pub parked: HashMap<String, Vec<String>>,
    /// shop id → what the shop confirmed it holds (`held#<shop>`), read
    /// with the SKU so a value the shop never took is queued again.
    pub held: HashMap<String, ProductChanges>,
    /// The item's revision when read (0: no item yet).
    pub rev: u64,
    /// Why the stored item does not read (then the rest is empty).
    pub unreadable: Option<String>,
}

/// An ERP record as stored, with its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub record: serde_json::Value,
    /// The agent's clock for it (read or modification time): shown, and the
    /// source time of what it makes a shop show; decides order only between
    /// records of different agents.
    pub version_ms: i64,
    /// Which agent said it, and where in everything that agent said: what
    /// decides newer over older (absent from items stored before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<RecordOrigin>,
}

/// The agent a record came from and the [`crate::sequences::SeqVersion::rank`]
/// of its envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordOrigin {
    pub agent: String,
    pub rank: u64,
}

/// A SKU's ERP records, decoded.
#[derive(Debug, Default, Clone)]
pub struct ErpRecords {
    pub product: Option<ProductRecord>,
    pub prices: Vec<PriceRecord>,
    pub stock: Vec<StockRecord>,
    /// The newest version among them.
    pub newest: Option<DateTime<Utc>>,
}

impl SkuState {
    /// Takes `record` unless the stored one of its kind is newer: the one
    /// place "older never overwrites newer" is decided for ERP records, so
    /// batches that arrive twice or out of order never leave older values in
    /// place. Newer is by the agent's sequence ([`RecordOrigin`]), never by
    /// its clock, which may step back; only records of different agents
    /// fall back to their clocks. Returns whether anything changed.
    pub fn merge(
        &mut self,
        kind: &str,
        record: serde_json::Value,
        version: DateTime<Utc>,
        from: Option<RecordOrigin>,
    ) -> bool {
        let version_ms = version.timestamp_millis();
        if let Some(stored) = self.records.get(kind) {
            let not_newer = match (&stored.from, &from) {
                (Some(old), Some(new)) if old.agent == new.agent => {
                    new.rank < old.rank || (new.rank == old.rank && stored.record == record)
                }
                // Stored before versions by sequence: the agent's word now is newer.
                (None, Some(_)) => stored.record == record && stored.version_ms >= version_ms,
                _ => {
                    stored.version_ms > version_ms
                        || (stored.version_ms == version_ms && stored.record == record)
                }
            };
            if not_newer {
                return false;
            }
        }
        self.records.insert(
            kind.to_owned(),
            StoredRecord {
                record,
                version_ms,
                from,
            },
        );
        true
    }

    /// The records, decoded.
    pub fn erp(&self, sku: &str) -> Result<ErpRecords, StateError> {
        let mut erp = ErpRecords::default();
        for (kind, stored) in &self.records {
            let value = stored.record.clone();
            if kind == "product" {
                erp.product = from_value(value, sku, kind)?;
            } else if kind.starts_with("price#") {
                erp.prices
                    .extend(from_value::<PriceRecord>(value, sku, kind)?);
            } else if kind.starts_with("stock#") {
                erp.stock
                    .extend(from_value::<StockRecord>(value, sku, kind)?);
            }
            if let Some(at) = DateTime::from_timestamp_millis(stored.version_ms) {
                erp.newest = Some(erp.newest.map_or(at, |n| n.max(at)));
            }
        }
        Ok(erp)
    }
}

/// A condition on a write, with its values.
#[derive(Debug, Clone)]
pub struct Condition {
    expression: String,
    values: HashMap<String, AttributeValue>,
}

impl Condition {
    fn new(expression: &str) -> Self {
        Condition {
            expression: expression.to_owned(),
            values: HashMap::new(),
        }
    }

    fn value(mut self, name: &str, value: AttributeValue) -> Self {
        self.values.insert(name.to_owned(), value);
        self
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// One write of [`Catalog::write_all`].
#[derive(Debug, Clone)]
pub enum Write {
    Put {
        item: HashMap<String, AttributeValue>,
        condition: Option<Condition>,
    },
    Delete {
        key: HashMap<String, AttributeValue>,
    },
}

impl Write {
    fn operation(&self) -> &'static str {
        match self {
            Write::Put { .. } => "PutItem",
            Write::Delete { .. } => "DeleteItem",
        }
    }

    fn transact_item(
        &self,
        table: &str,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, aws_sdk_dynamodb::error::BuildError>
    {
        use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
        Ok(match self {
            Write::Put { item, condition } => TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(item.clone()))
                        .set_condition_expression(condition.as_ref().map(|c| c.expression.clone()))
                        .set_expression_attribute_values(
                            condition.as_ref().and_then(Condition::values),
                        )
                        .build()?,
                )
                .build(),
            Write::Delete { key } => TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(table)
                        .set_key(Some(key.clone()))
                        .build()?,
                )
                .build(),
        })
    }
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
        StateError::dynamo(operation, &self.table, err)
    }

    /// Everything stored for a SKU (its ERP item; not its parked markers).
    pub async fn load(&self, sku: &str) -> Result<SkuState, StateError> {
        let mut states = self.load_many(&[sku.to_owned()], &[]).await?;
        let mut state = states.remove(sku).unwrap_or_default();
        match state.unreadable.take() {
            Some(problem) => Err(StateError::Malformed {
                key: format!("{sku}/{ERP_SK}"),
                problem,
            }),
            None => Ok(state),
        }
    }

    /// Everything stored for many SKUs, with whether each is parked in each
    /// of `shops` and what each of them holds, in BatchGetItem calls of 100
    /// keys. A SKU whose item does not read comes back with
    /// [`SkuState::unreadable`] set, so one bad item does not fail the others.
    pub async fn load_many(
        &self,
        skus: &[String],
        shops: &[String],
    ) -> Result<HashMap<String, SkuState>, StateError> {
        let mut states: HashMap<String, SkuState> = skus
            .iter()
            .map(|sku| (sku.clone(), SkuState::default()))
            .collect();
        let sort_keys: Vec<String> = std::iter::once(ERP_SK.to_owned())
            .chain(shops.iter().map(|shop| format!("parked#{shop}")))
            .chain(shops.iter().map(|shop| format!("held#{shop}")))
            .collect();
        let keys = skus.iter().flat_map(|sku| {
            sort_keys
                .iter()
                .map(|sk| HashMap::from([("pk".to_owned(), pk(sku)), ("sk".to_owned(), s(sk))]))
        });
        for item in self.batch_get(keys.collect()).await? {
            let Some(sku) = get_s(&item, "pk").and_then(|p| p.strip_prefix("sku#")) else {
                continue;
            };
            let Some(state) = states.get_mut(sku) else {
                continue;
            };
            let sk = get_s(&item, "sk").unwrap_or_default();
            if sk == ERP_SK {
                let key = format!("{sku}/{sk}");
                let records = json_attr(&item, "records", &key);
                let queued = json_attr(&item, "queued", &key);
                match (records, queued) {
                    (Ok(records), Ok(queued)) => {
                        state.records = records.unwrap_or_default();
                        state.queued = queued.unwrap_or_default();
                    }
                    (Err(err), _) | (_, Err(err)) => state.unreadable = Some(err.to_string()),
                }
                state.rev = get_n(&item, "rev").unwrap_or(0);
            } else if let Some(shop) = sk.strip_prefix("parked#") {
                let reasons = get_strings(&item, "reasons");
                state.parked.insert(shop.to_owned(), reasons);
            } else if let Some(shop) = sk.strip_prefix("held#")
                && let Some((held, _)) = decode_held(&item)
            {
                state.held.insert(shop.to_owned(), held);
            }
        }
        Ok(states)
    }

    /// The write that stores `state` as the SKU's ERP item, unless another
    /// writer changed the item since `state` was read (then it does not land
    /// and the caller reads again): records and queued shop states go
    /// together, so each is decided against the other's latest.
    pub fn state_write(&self, sku: &str, state: &SkuState) -> Result<Write, StateError> {
        fn encode<T: Serialize>(value: &T, sku: &str, name: &str) -> Result<String, StateError> {
            serde_json::to_string(value).map_err(|e| StateError::Malformed {
                key: format!("{sku}/{ERP_SK}.{name}"),
                problem: e.to_string(),
            })
        }
        let item = HashMap::from([
            ("pk".to_owned(), pk(sku)),
            ("sk".to_owned(), s(ERP_SK)),
            (
                "records".to_owned(),
                s(encode(&state.records, sku, "records")?),
            ),
            (
                "queued".to_owned(),
                s(encode(&state.queued, sku, "queued")?),
            ),
            ("rev".to_owned(), n(state.rev + 1)),
        ]);
        let condition = if state.rev == 0 {
            Condition::new("attribute_not_exists(pk)")
        } else {
            Condition::new("rev = :rev").value(":rev", n(state.rev))
        };
        Ok(Write::Put {
            item,
            condition: Some(condition),
        })
    }

    /// The write that records what the shop confirmed it holds, unless newer is recorded.
    pub fn held_write(
        &self,
        shop: &str,
        sku: &str,
        held: &ProductChanges,
        source: DateTime<Utc>,
    ) -> Write {
        let json = serde_json::to_string(held).unwrap_or_default();
        let stamp = source.timestamp_millis();
        let mut item = HashMap::from([
            ("pk".to_owned(), pk(sku)),
            ("sk".to_owned(), s(format!("held#{shop}"))),
            ("state".to_owned(), s(json)),
            ("source_ms".to_owned(), n(stamp)),
            // The `held-stock` index's keys: the watchdog finds low stock
            // per shop there instead of scanning the table.
            ("held_shop".to_owned(), s(shop)),
        ]);
        if let Some(quantity) = held.stock_quantity {
            item.insert("held_stock".to_owned(), n(quantity));
        }
        Write::Put {
            item,
            // The one place "older never overwrites newer" is decided for
            // what a shop holds.
            condition: Some(
                Condition::new("attribute_not_exists(pk) OR source_ms <= :v").value(":v", n(stamp)),
            ),
        }
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
        Ok(out.item.as_ref().and_then(decode_held))
    }

    /// Applies writes, in TransactWriteItems calls of up to 100 (the only
    /// batched call that keeps each write's condition: BatchWriteItem has
    /// none). A transaction is all or nothing, so when one is refused (a
    /// condition failed, a concurrent writer, the same key twice) its writes
    /// are made one by one instead, which tells which of them landed.
    /// Returns, per write, whether it landed.
    pub async fn write_all(&self, writes: Vec<Write>) -> Result<Vec<bool>, StateError> {
        use aws_sdk_dynamodb::types::TransactWriteItem;
        let mut landed = Vec::with_capacity(writes.len());
        for chunk in writes.chunks(TRANSACTION_ITEMS) {
            if chunk.len() > 1 {
                let items: Result<Vec<TransactWriteItem>, _> =
                    chunk.iter().map(|w| w.transact_item(&self.table)).collect();
                let items = items.map_err(|e| StateError::Malformed {
                    key: "transaction".into(),
                    problem: e.to_string(),
                })?;
                match self
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .send()
                    .await
                {
                    Ok(_) => {
                        landed.extend(std::iter::repeat_n(true, chunk.len()));
                        continue;
                    }
                    Err(err) => {
                        debug!(writes = chunk.len(), error = %describe_error(&err), "transaction refused; writing one by one");
                    }
                }
            }
            let one_by_one: Vec<Result<bool, StateError>> =
                futures::stream::iter(chunk.iter().cloned())
                    .map(|write| async move { self.write_one(&write).await })
                    .buffered(SINGLE_WRITES_IN_FLIGHT)
                    .collect()
                    .await;
            for result in one_by_one {
                landed.push(result?);
            }
        }
        Ok(landed)
    }

    async fn write_one(&self, write: &Write) -> Result<bool, StateError> {
        let result = match write {
            Write::Put { item, condition } => {
                let mut request = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item.clone()));
                if let Some(condition) = condition {
                    request = request
                        .condition_expression(&condition.expression)
                        .set_expression_attribute_values(condition.values())
                }
                request
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.into_service_error().into())
            }
            Write::Delete { key } => self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| e.into_service_error().into()),
        };
        match result {
            Ok(()) => Ok(true),
            Err(aws_sdk_dynamodb::Error::ConditionalCheckFailedException(_)) => Ok(false),
            Err(err) => Err(self.error(write.operation(), &err)),
        }
    }

    /// Items by key ([`crate::dynamo::batch_get`]).
    async fn batch_get(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StateError> {
        crate::dynamo::batch_get(&self.client, &self.table, keys).await
    }

    /// For many SKUs at once: what the shop holds (with its source time) and
    /// the shop's cached id.
    pub async fn held_and_ids<T: DeserializeOwned>(
        &self,
        shop: &str,
        skus: &[String],
    ) -> Result<HashMap<String, HeldAndId<T>>, StateError> {
        let mut out: HashMap<String, HeldAndId<T>> =
            skus.iter().map(|sku| (sku.clone(), (None, None))).collect();
        let held_sk = format!("held#{shop}");
        let id_sk = format!("id#{shop}");
        let keys = skus.iter().flat_map(|sku| {
            [&held_sk, &id_sk]
                .map(|sk| HashMap::from([("pk".to_owned(), pk(sku)), ("sk".to_owned(), s(sk))]))
        });
        for item in self.batch_get(keys.collect()).await? {
            let Some(entry) = get_s(&item, "pk")
                .and_then(|p| p.strip_prefix("sku#"))
                .and_then(|sku| out.get_mut(sku))
            else {
                continue;
            };
            let sk = get_s(&item, "sk").unwrap_or_default();
            if sk == held_sk {
                entry.0 = decode_held(&item);
            } else if sk == id_sk {
                entry.1 = get_s(&item, "id").and_then(|text| serde_json::from_str(text).ok());
            }
        }
        Ok(out)
    }

    /// One page of the SKUs a shop holds with `1..=threshold` units, with
    /// the source time of what it holds, from the `held-stock` index (only
    /// `held#<shop>` items with a stock figure are in it), so the watchdog
    /// reads only the products it zeroes. `start`: where the last page ended.
    pub async fn low_stock_page(
        &self,
        shop: &str,
        threshold: i64,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<LowStockPage, StateError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(HELD_STOCK_INDEX)
            .key_condition_expression("held_shop = :shop AND held_stock BETWEEN :one AND :max")
            .expression_attribute_values(":shop", s(shop))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(threshold))
            .limit(PAGE_ITEMS)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| self.error("Query", &e))?;
        let skus = page
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| {
                let sku = get_s(item, "pk")?.strip_prefix("sku#")?;
                Some((sku.to_owned(), get_time(item, "source_ms")?))
            })
            .collect();
        Ok(LowStockPage {
            skus,
            next: page.last_evaluated_key.filter(|k| !k.is_empty()),
        })
    }

    /// The writes that remember SKUs zeroed in a shop by the stale-stock
    /// policy, to restore later.
    pub fn zeroed_writes(&self, shop: &str, skus: &[String]) -> Vec<Write> {
        skus.iter()
            .map(|sku| Write::Put {
                item: HashMap::from([
                    ("pk".to_owned(), s(format!("stale-zeroed#{shop}"))),
                    ("sk".to_owned(), s(sku)),
                ]),
                condition: None,
            })
            .collect()
    }

    /// The writes that forget zeroed SKUs (once their restore is queued).
    pub fn unzeroed_writes(&self, shop: &str, skus: &[String]) -> Vec<Write> {
        skus.iter()
            .map(|sku| Write::Delete {
                key: HashMap::from([
                    ("pk".to_owned(), s(format!("stale-zeroed#{shop}"))),
                    ("sk".to_owned(), s(sku)),
                ]),
            })
            .collect()
    }

    /// One page of the SKUs zeroed in a shop (left in place: the caller
    /// forgets them with [`Catalog::unzeroed_writes`] once restored).
    pub async fn zeroed_page(&self, shop: &str) -> Result<Vec<String>, StateError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("stale-zeroed#{shop}")))
            .consistent_read(true)
            .limit(PAGE_ITEMS)
            .send()
            .await
            .map_err(|e| self.error("Query", &e))?;
        Ok(page
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|i| get_s(i, "sk").map(str::to_owned))
            .collect())
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

    /// The write that caches the shop's id for a SKU.
    pub fn id_write(&self, shop: &str, sku: &str, id: &ShopItemId) -> Write {
        Write::Put {
            item: HashMap::from([
                ("pk".to_owned(), pk(sku)),
                ("sk".to_owned(), s(format!("id#{shop}"))),
                (
                    "id".to_owned(),
                    s(serde_json::to_string(id).unwrap_or_default()),
                ),
            ]),
            condition: None,
        }
    }

    /// Keeps (or, with no reasons, clears) why a SKU cannot be fully shown
    /// in a shop.
    pub async fn set_parked(
        &self,
        shop: &str,
        sku: &str,
        reasons: &[String],
    ) -> Result<(), StateError> {
        self.write_all(self.parked_writes(shop, sku, reasons))
            .await
            .map(|_| ())
    }

    /// The writes of [`Catalog::set_parked`]: the listing the admin status
    /// reads (`parked-records`) and a marker in the SKU's own partition that
    /// [`Catalog::load_many`] reads with the SKU, so a change of reasons is
    /// seen without reading the listing.
    pub fn parked_writes(&self, shop: &str, sku: &str, reasons: &[String]) -> Vec<Write> {
        let listing_key = [
            ("pk".to_owned(), s("parked-records")),
            ("sk".to_owned(), s(format!("{shop}#{sku}"))),
        ];
        let marker_key = [
            ("pk".to_owned(), pk(sku)),
            ("sk".to_owned(), s(format!("parked#{shop}"))),
        ];
        if reasons.is_empty() {
            return [listing_key.to_vec(), marker_key.to_vec()]
                .into_iter()
                .map(|key| Write::Delete {
                    key: key.into_iter().collect(),
                })
                .collect();
        }
        let reasons = AttributeValue::L(reasons.iter().map(|r| s(r.clone())).collect());
        let marker = marker_key
            .into_iter()
            .chain([("reasons".to_owned(), reasons.clone())]);
        let listing = listing_key.into_iter().chain([
            ("shop".to_owned(), s(shop)),
            ("sku".to_owned(), s(sku)),
            ("reasons".to_owned(), reasons),
            ("at_ms".to_owned(), n(Utc::now().timestamp_millis())),
        ]);
        vec![
            Write::Put {
                item: marker.collect(),
                condition: None,
            },
            Write::Put {
                item: listing.collect(),
                condition: None,
            },
        ]
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
                reasons: get_strings(item, "reasons"),
            })
            .collect())
    }
}

/// One page of [`Catalog::low_stock_page`]: SKUs with the source time of
/// what the shop holds, and where the next page starts.
#[derive(Debug, Default)]
pub struct LowStockPage {
    pub skus: Vec<(String, DateTime<Utc>)>,
    pub next: Option<HashMap<String, AttributeValue>>,
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

/// What a shop holds, from its `held#<shop>` item.
fn decode_held<T: DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
) -> Option<(T, DateTime<Utc>)> {
    let state = serde_json::from_str(get_s(item, "state")?).ok()?;
    Some((state, get_time(item, "source_ms")?))
}

/// An attribute holding JSON text, decoded (`None` when absent).
fn json_attr<T: DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
    name: &str,
    key: &str,
) -> Result<Option<T>, StateError> {
    get_s(item, name)
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| StateError::Malformed {
            key: format!("{key}.{name}"),
            problem: e.to_string(),
        })
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
