//! Buyers' returns reported by the shops (Allegro's customer returns), kept
//! for the office: each one needs a correction in the ERP. The poller reads
//! each platform's new returns after its orders ([`ReturnStore::record`]);
//! `/status` lists them ([`ReturnStore::list`]).
//!
//! Items: `pk = return#<shop>`, `sk = <return id>`, the return's fields
//! (serde_dynamo); the read position `pk = cursors`, `sk = returns#<shop>`,
//! `after` = the last return's id.

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
    /// What the office must do.
    pub needs: String,
}

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
                needs: "a correction in the ERP".into(),
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
        Ok(found)
    }
}
