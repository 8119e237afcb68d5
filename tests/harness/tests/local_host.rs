//! The local host's SQS event source behaves as Lambda's: batches no larger
//! than the batch size, deletes what succeeded, leaves reported failures for
//! redelivery, and lets the queue's redrive policy move a poison message to
//! its DLQ after maxReceiveCount.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_sdk_sqs::types::QueueAttributeName;
use harness::emulator::{Emulator, sdk_config};
use local_host::sqs_source::{self, SqsHandler};
use local_host::stack::EventSource;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_batch_failures_are_redelivered_and_poison_goes_to_the_dlq() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let emulator = Emulator::start(dir.path())?;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&emulator.endpoint()).await);
    let dlq = sqs
        .create_queue()
        .queue_name("work-dlq")
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .unwrap_or_default()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap_or_default();
    let queue = sqs
        .create_queue()
        .queue_name("work")
        // Longer than the handler may take, as Lambda requires of a queue it polls.
        .attributes(QueueAttributeName::VisibilityTimeout, "2")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"2"}}"#),
        )
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    for i in 0..9 {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(format!("good-{i}"))
            .send()
            .await?;
    }
    sqs.send_message()
        .queue_url(&queue)
        .message_body("poison")
        .send()
        .await?;

    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let largest_batch = Arc::new(Mutex::new(0usize));
    let handler: SqsHandler = {
        let seen = seen.clone();
        let largest_batch = largest_batch.clone();
        Arc::new(move |event| {
            let seen = seen.clone();
            let largest_batch = largest_batch.clone();
            Box::pin(async move {
                let mut response = SqsBatchResponse::default();
                if let Ok(mut largest) = largest_batch.lock() {
                    *largest = (*largest).max(event.records.len());
                }
                for record in event.records {
                    let body = record.body.unwrap_or_default();
                    if let Ok(mut seen) = seen.lock() {
                        *seen.entry(body.clone()).or_default() += 1;
                    }
                    if body == "poison" {
                        let mut failure = BatchItemFailure::default();
                        failure.item_identifier = record.message_id.unwrap_or_default();
                        response.batch_item_failures.push(failure);
                    }
                }
                Ok(response)
            })
        })
    };
    let source = EventSource {
        name: "WorkSource".into(),
        function: "test".into(),
        queue_url: queue.clone(),
        queue_arn: None,
        fifo: false,
        visibility_timeout_seconds: 2,
        batch_size: 4,
        batching_window_seconds: 0,
        report_batch_item_failures: true,
        managed_by_lambda: false,
    };
    let cancel = CancellationToken::new();
    let poller = tokio::spawn(sqs_source::run(
        source,
        sqs.clone(),
        handler,
        Duration::from_secs(5),
        cancel.clone(),
    ));

    let deadline = Instant::now() + Duration::from_secs(40);
    let mut in_dlq = 0;
    while Instant::now() < deadline {
        in_dlq = sqs
            .receive_message()
            .queue_url(&dlq)
            .visibility_timeout(30)
            .send()
            .await?
            .messages
            .unwrap_or_default()
            .len();
        if in_dlq > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    cancel.cancel();
    let _ = poller.await;

    assert_eq!(in_dlq, 1, "the poison message reached the DLQ");
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    for i in 0..9 {
        assert_eq!(
            seen.get(&format!("good-{i}")),
            Some(&1),
            "good-{i} processed exactly once: {seen:?}"
        );
    }
    assert_eq!(
        seen.get("poison"),
        Some(&2),
        "poison received maxReceiveCount times: {seen:?}"
    );
    let largest = largest_batch.lock().map(|l| *l).unwrap_or_default();
    assert!(
        (1..=4).contains(&largest),
        "no batch above the batch size: {largest}"
    );
    let left = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    assert_eq!(
        left.get(&QueueAttributeName::ApproximateNumberOfMessages)
            .map(String::as_str),
        Some("0")
    );
    Ok(())
}
