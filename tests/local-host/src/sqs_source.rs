//! An SQS event source, polled as Lambda's SQS poller does.
//!
//! Long-poll for up to `batch_size` messages (gathering more for up to the
//! batching window on standard queues), invoke the handler with the batch,
//! then delete what succeeded. A handler error or timeout deletes nothing:
//! the messages reappear after the queue's visibility timeout and, after
//! `maxReceiveCount`, the queue's redrive policy moves them to the DLQ.
//! With `ReportBatchItemFailures` only the reported messages stay.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::stack::EventSource;
use functions::HandlerError;
use functions::aws::describe_error;

pub type SqsHandler = Arc<
    dyn Fn(SqsEvent) -> Pin<Box<dyn Future<Output = Result<SqsBatchResponse, HandlerError>> + Send>>
        + Send
        + Sync,
>;

const LONG_POLL_SECONDS: i32 = 20;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What Lambda checks when an SQS event source is created, with the
/// function's own role (which therefore needs `sqs:GetQueueAttributes`): the
/// queue exists and hides a received message for at least the function's
/// timeout, so a running invocation's batch is not delivered twice.
pub async fn check_queue(
    source: &EventSource,
    sqs: &aws_sdk_sqs::Client,
    timeout: Duration,
) -> anyhow::Result<()> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&source.queue_url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{} cannot read the attributes of its queue {}: {}",
                source.function,
                source.queue_url,
                describe_error(&e)
            )
        })?;
    let visibility = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            anyhow::anyhow!("queue {} reported no VisibilityTimeout", source.queue_url)
        })?;
    anyhow::ensure!(
        visibility >= timeout.as_secs(),
        "queue {} hides messages for {visibility} s, less than {}'s timeout of {} s (Lambda refuses this event source)",
        source.queue_url,
        source.function,
        timeout.as_secs()
    );
    Ok(())
}

pub async fn run(
    source: EventSource,
    sqs: aws_sdk_sqs::Client,
    handler: SqsHandler,
    timeout: Duration,
    cancel: CancellationToken,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let batch = tokio::select! {
            _ = cancel.cancelled() => return,
            batch = gather(&source, &sqs) => batch,
        };
        let messages = match batch {
            Ok(messages) => {
                backoff = Duration::from_millis(500);
                messages
            }
            Err(err) => {
                warn!(queue = %source.queue_url, error = %err, retry_in = ?backoff, "cannot receive; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let event = to_event(&source, &messages);
        let outcome = tokio::time::timeout(timeout, handler(event)).await;
        let failed: HashSet<String> = match outcome {
            Ok(Ok(response)) if source.report_batch_item_failures => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Ok(Ok(_)) => HashSet::new(),
            Ok(Err(err)) => {
                warn!(function = %source.function, error = %err, messages = messages.len(), "invocation failed; the batch will be redelivered");
                continue;
            }
            Err(_) => {
                warn!(function = %source.function, ?timeout, "invocation timed out; the batch will be redelivered");
                continue;
            }
        };
        let done: Vec<&Message> = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
            .collect();
        if let Err(err) = delete(&sqs, &source.queue_url, &done).await {
            // Not deleting means redelivery: handlers are idempotent.
            warn!(queue = %source.queue_url, error = %err, "could not delete processed messages; they will be redelivered");
        }
        debug!(function = %source.function, processed = done.len(), failed = failed.len(), "batch done");
    }
}

/// One batch: long-poll for the first messages, then keep gathering until
/// the batch is full or the batching window has passed (short polls, as
/// SQS waits only in whole seconds).
async fn gather(source: &EventSource, sqs: &aws_sdk_sqs::Client) -> Result<Vec<Message>, String> {
    let mut batch: Vec<Message> = Vec::new();
    let window = Duration::from_secs(source.batching_window_seconds);
    let mut deadline: Option<Instant> = None;
    loop {
        let want = (source.batch_size - batch.len()).clamp(1, 10);
        let wait = if deadline.is_none() {
            LONG_POLL_SECONDS
        } else {
            0
        };
        let received = sqs
            .receive_message()
            .queue_url(&source.queue_url)
            .max_number_of_messages(want as i32)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| describe_error(&e))?;
        let got = received.messages.unwrap_or_default();
        let got_none = got.is_empty();
        batch.extend(got);
        if batch.is_empty() {
            // The long poll came back empty: let the caller check for shutdown.
            return Ok(batch);
        }
        let at = *deadline.get_or_insert_with(|| Instant::now() + window);
        if batch.len() >= source.batch_size || Instant::now() >= at {
            return Ok(batch);
        }
        if got_none {
            tokio::time::sleep(
                Duration::from_millis(50).min(at.saturating_duration_since(Instant::now())),
            )
            .await;
        }
    }
}

fn to_event(source: &EventSource, messages: &[Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.md5_of_body = m.md5_of_body.clone();
            record.attributes = m
                .attributes
                .as_ref()
                .map(|attrs| {
                    attrs
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                        .collect::<HashMap<_, _>>()
                })
                .unwrap_or_default();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = source.queue_arn.clone();
            record
        })
        .collect();
    event
}

async fn delete(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[&Message],
) -> Result<(), String> {
    for chunk in messages.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        if entries.is_empty() {
            continue;
        }
        let out = sqs
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| describe_error(&e))?;
        if !out.failed.is_empty() {
            return Err(format!("{} deletes failed", out.failed.len()));
        }
    }
    Ok(())
}
