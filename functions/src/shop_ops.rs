//! The shop-ops queue on the wire: each message is a JSON array of up to
//! [`OPERATIONS_PER_MESSAGE`] operations of one shop (one WooCommerce
//! batch call's worth), sent ten messages per `SendMessageBatch`. An
//! operation is a product's [`ShopOperation`] (`{shop, sku, changes,
//! source_time}`) or an order's [`OrderOperation`] (`{shop, order_id,
//! update}`), told apart by their fields ([`QueuedOperation`]). Used by
//! `ingest` and the `watchdog`; read by `shop-push`.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};

use crate::aws::describe_error;
use crate::mapping::ShopOperation;
use crate::shop::OrderUpdate;
use crate::state::StateError;

/// Operations per shop-ops message.
pub const OPERATIONS_PER_MESSAGE: usize = 100;

/// One update to show on a shop order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderOperation {
    pub shop: String,
    pub order_id: String,
    pub update: OrderUpdate,
}

/// Either kind of operation, as read off the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QueuedOperation {
    Order(OrderOperation),
    Product(ShopOperation),
}

/// Something queued for one shop.
pub trait ForShop: Serialize {
    fn shop(&self) -> &str;
}

impl ForShop for ShopOperation {
    fn shop(&self) -> &str {
        &self.shop
    }
}

impl ForShop for OrderOperation {
    fn shop(&self) -> &str {
        &self.shop
    }
}

/// Queues `operations` (any shops, any number); returns how many were queued.
/// An error means some may not be on the queue: the caller retries all.
pub async fn queue<T: ForShop>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    operations: Vec<T>,
) -> Result<usize, StateError> {
    let error = |operation: &'static str, message: String| StateError::Dynamo {
        operation,
        table: queue_url.to_owned(),
        message,
    };
    let mut per_shop: BTreeMap<String, Vec<T>> = BTreeMap::new();
    for op in operations {
        per_shop.entry(op.shop().to_owned()).or_default().push(op);
    }
    let mut bodies = Vec::new();
    for (shop, ops) in per_shop {
        for chunk in ops.chunks(OPERATIONS_PER_MESSAGE) {
            let body = serde_json::to_string(chunk).map_err(|e| StateError::Malformed {
                key: format!("shop-ops/{shop}"),
                problem: e.to_string(),
            })?;
            bodies.push((body, chunk.len()));
        }
    }
    let mut queued = 0;
    for group in bodies.chunks(10) {
        let entries = group
            .iter()
            .enumerate()
            .filter_map(|(i, (body, _))| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        let out = sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| error("SendMessageBatch", describe_error(&e)))?;
        if let Some(failed) = out.failed.first() {
            return Err(error(
                "SendMessageBatch",
                format!(
                    "{} of {} messages refused: {}",
                    out.failed.len(),
                    group.len(),
                    failed.message.clone().unwrap_or_default()
                ),
            ));
        }
        queued += group.iter().map(|(_, n)| n).sum::<usize>();
    }
    Ok(queued)
}
