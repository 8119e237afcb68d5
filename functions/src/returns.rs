//! Buyers' returns reported by the shops (Allegro's customer returns,
//! WooCommerce's refunds), kept
//! for the office: each one needs a correction in the ERP. The poller reads
//! each platform's new returns after its orders ([`ReturnStore::record`]);
//! `/status` lists them ([`ReturnStore::list`]).
//!
//! When the ERP's correction of the order's invoice arrives (the agent
//! reports it with the order's progress), ingest records its number
//! ([`ReturnStore::correction_issued`]) and the listing shows the return as
//! corrected.
//!
//! Items: `pk = return#<shop>`, `sk = <return id>`, the return's fields
//! (serde_dynamo); the read position `pk = cursors`, `sk = returns#<shop>`,
//! `after` = the connector's cursor (opaque here: Allegro's last return id,
//! WooCommerce's second and ids); an order's corrections `pk =
//! corrections#<shop>`, `sk = <order id>`, `numbers` (a string set), read
//! by key for the returns listed (no scan).

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::dynamo::{get_s, s};
use crate::shop::ShopReturn;
use crate::state::StateError;

/// A return as stored and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedReturn {
    pub shop: String,
    #[serde(flatten)]
    pub shop_return: ShopReturn,
    /// What the office must do ("nothing" once corrected).
    pub needs: String,
    /// The ERP's corrections of the order's invoice, by number.
    #[serde(default)]
    pub corrections: Vec<String>,
}

/// What a return asks of the office until the ERP has a correction.
const NEEDS_CORRECTION: &str = "a correction in the ERP";

#[derive(Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    #[serde(flatten)]
    reported: ReportedReturn,
}

#[derive(Debug, Clone)]
pub struct ReturnStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl ReturnStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        ReturnStore {
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

    /// Where the shop's returns were last read to.
    pub async fn cursor(&self, shop: &str) -> Result<Option<String>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s("cursors"))
            .key("sk", s(format!("returns#{shop}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", &e))?;
        Ok(out
            .item
            .as_ref()
            .and_then(|item| get_s(item, "after"))
            .map(str::to_owned))
    }

    pub async fn set_cursor(&self, shop: &str, after: &str) -> Result<(), StateError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("cursors"))
            .key("sk", s(format!("returns#{shop}")))
            .update_expression("SET #after = :after")
            .expression_attribute_names("#after", "after")
            .expression_attribute_values(":after", s(after))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("UpdateItem", &e))
    }

    /// Keeps a return (again, with its newer status, when listed again).
    pub async fn record(&self, shop: &str, shop_return: &ShopReturn) -> Result<(), StateError> {
        let item = Item {
            pk: format!("return#{shop}"),
            sk: shop_return.id.clone(),
            reported: ReportedReturn {
                shop: shop.to_owned(),
                shop_return: shop_return.clone(),
                needs: NEEDS_CORRECTION.into(),
                corrections: Vec::new(),
            },
        };
        let item: std::collections::HashMap<String, AttributeValue> =
            serde_dynamo::to_item(item).map_err(|e| StateError::Malformed {
                key: format!("return#{shop}/{}", shop_return.id),
                problem: e.to_string(),
            })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("PutItem", &e))
    }

    /// A shop's returns, newest first, at most `limit`.
    pub async fn list(&self, shop: &str, limit: usize) -> Result<Vec<ReportedReturn>, StateError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("return#{shop}")))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.error("Query", &e))?;
            for item in out.items.unwrap_or_default() {
                match serde_dynamo::from_item::<_, Item>(item) {
                    Ok(item) => found.push(item.reported),
                    Err(err) => tracing::warn!(shop, error = %err, "a stored return is unreadable"),
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() || found.len() >= limit * 4 {
                break;
            }
        }
        found.sort_by_key(|r| std::cmp::Reverse(r.shop_return.created_at));
        found.truncate(limit);
        let orders: Vec<String> = found
            .iter()
            .map(|r| r.shop_return.order_id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let corrections = self.corrections(shop, &orders).await?;
        for listed in &mut found {
            if let Some(numbers) = corrections.get(&listed.shop_return.order_id) {
                listed.corrections = numbers.clone();
                listed.needs = "nothing: corrected in the ERP".into();
            }
        }
        Ok(found)
    }

    /// The ERP issued correction `number` for the order's invoice (again:
    /// no change).
    pub async fn correction_issued(
        &self,
        shop: &str,
        order_id: &str,
        number: &str,
    ) -> Result<(), StateError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("corrections#{shop}")))
            .key("sk", s(order_id))
            .update_expression("ADD numbers :number")
            .expression_attribute_values(":number", AttributeValue::Ss(vec![number.to_owned()]))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("UpdateItem", &e))
    }

    /// The corrections of these orders, by order id (read by key).
    async fn corrections(
        &self,
        shop: &str,
        orders: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<String>>, StateError> {
        let keys: Vec<std::collections::HashMap<String, AttributeValue>> = orders
            .iter()
            .map(|order| {
                std::collections::HashMap::from([
                    ("pk".to_owned(), s(format!("corrections#{shop}"))),
                    ("sk".to_owned(), s(order.as_str())),
                ])
            })
            .collect();
        let mut found = std::collections::HashMap::new();
        for item in crate::dynamo::batch_get(&self.client, &self.table, keys).await? {
            if let Some(order) = get_s(&item, "sk") {
                let mut numbers = item
                    .get("numbers")
                    .and_then(|v| v.as_ss().ok())
                    .cloned()
                    .unwrap_or_default();
                numbers.sort();
                found.insert(order.to_owned(), numbers);
            }
        }
        Ok(found)
    }
}
