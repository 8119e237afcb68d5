//! The shop-ops queue on the wire: each message is a JSON array of up to
//! [`OPERATIONS_PER_MESSAGE`] `ShopOperation`s of one shop (one WooCommerce
//! batch call's worth), sent ten messages per `SendMessageBatch`. Used by
//! `ingest` and the `watchdog`; read by `shop-push`.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::aws::describe_error;
use crate::mapping::ShopOperation;
use crate::state::StateError;

/// Operations per shop-ops message.
pub const OPERATIONS_PER_MESSAGE: usize = 100;

/// Queues `operations` (any shops, any number); returns how many were queued.
/// An error means some may not be on the queue: the caller retries all.
pub async fn queue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    operations: Vec<ShopOperation>,
) -> Result<usize, StateError> {
    let error = |operation: &'static str, message: String| StateError::Dynamo {
        operation,
        table: queue_url.to_owned(),
        message,
    };
    let mut per_shop: BTreeMap<String, Vec<ShopOperation>> = BTreeMap::new();
    for op in operations {
        per_shop.entry(op.shop.clone()).or_default().push(op);
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
