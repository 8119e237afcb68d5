//! The agent's outbox against SQS (the emulator's FIFO queue), through the
//! agent's own sender and transport: staged records leave as numbered
//! batches, in order, each once; a heartbeat waiting for its own lane goes
//! first, in its own group; an unreachable queue loses nothing and the
//! outbox drains once the queue answers.

use agent::sender::{Batching, drain_once};
use agent::sqs::Transport;
use agent::store::{RecordKind, Store};
use anyhow::Context;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::Utc;
use contract::{Payload, StockRecord, decode_body};
use harness::TestDir;
use harness::emulator::{Emulator, sdk_config};
use rust_decimal::Decimal;

const AGENT: &str = "biuro";

struct Bench {
    _emulator: Emulator,
    sqs: aws_sdk_sqs::Client,
    queue: String,
    store: Store,
    transport: Transport,
    batching: Batching,
}

async fn bench(dir: &std::path::Path) -> anyhow::Result<Bench> {
    let emulator = Emulator::start(dir)?;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&emulator.endpoint()).await);
    let queue = sqs
        .create_queue()
        .queue_name("events.fifo")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await?
        .queue_url
        .context("no queue URL")?;
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "agent_id = \"{AGENT}\"\n\n[aws]\nevents_queue_url = \"{queue}\"\n\n[sql]\nconnection_string = \"server=tcp:127.0.0.1,1;database=x;user=x\"\n\n[store]\npath = \"state.sqlite\"\n"
        ),
    )?;
    let config = agent::config::AgentConfig::load(&config)?;
    let transport = Transport::new(&config).await.with_client(sqs.clone());
    Ok(Bench {
        _emulator: emulator,
        sqs,
        queue,
        store: Store::open(&dir.join("state.sqlite"))?,
        transport,
        batching: Batching {
            agent_id: AGENT.into(),
            batch_records: 10,
        },
    })
}

fn stock(sku: &str, quantity: i64) -> (String, StockRecord) {
    (
        format!("{sku}|MAG"),
        StockRecord {
            sku: sku.into(),
            warehouse: "MAG".into(),
            quantity: Decimal::from(quantity),
            reserved: Decimal::ZERO,
            read_at: Utc::now(),
        },
    )
}

/// Every message on the queue, in the order SQS hands them out, with its
/// FIFO group; each deleted once read.
async fn receive_all(bench: &Bench) -> anyhow::Result<Vec<(String, contract::Envelope)>> {
    let mut all = Vec::new();
    loop {
        let out = bench
            .sqs
            .receive_message()
            .queue_url(&bench.queue)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(all);
        }
        for message in messages {
            let group = message
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                .cloned()
                .unwrap_or_default();
            let body = message.body.as_deref().context("no body")?;
            all.push((group, decode_body(body)?));
            bench
                .sqs
                .delete_message()
                .queue_url(&bench.queue)
                .receipt_handle(message.receipt_handle.as_deref().context("no handle")?)
                .send()
                .await?;
        }
    }
}

fn heartbeat(clock: chrono::DateTime<Utc>) -> contract::Heartbeat {
    contract::Heartbeat {
        agent_version: "test".into(),
        agent_clock: clock,
        health: contract::AgentHealth {
            sql_server: true,
            sql_error: None,
            outbox_depth: 1,
            takes_orders: None,
            rejected_records: None,
            rejected_latest: None,
        },
    }
}

fn skus_in(envelope: &contract::Envelope) -> Vec<String> {
    match &envelope.payload {
        Payload::Stock(records) => records.iter().map(|r| r.sku.clone()).collect(),
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_records_leave_once_in_numbered_batches_and_a_dead_queue_loses_nothing()
-> anyhow::Result<()> {
    let dir = TestDir::new()?;
    let bench = bench(dir.path()).await?;
    let now = Utc::now();

    // 25 records at 10 a batch: three messages, numbered 1, 2, 3.
    let records: Vec<_> = (0..25).map(|i| stock(&format!("SKU-{i:02}"), i)).collect();
    bench.store.stage(RecordKind::Stock, &records, false, now)?;
    let sent = drain_once(&bench.transport, &bench.store, &bench.batching)
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(sent, 3, "messages sent");
    assert_eq!(bench.store.outbox_depth()?, 0, "the outbox is empty");
    assert_eq!(bench.store.pending_count()?, 0, "nothing staged is left");
    let received = receive_all(&bench).await?;
    let seqs: Vec<u64> = received.iter().map(|(_, e)| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(
        received
            .iter()
            .all(|(group, e)| group == AGENT && e.agent_id == AGENT)
    );
    let mut skus: Vec<String> = received.iter().flat_map(|(_, e)| skus_in(e)).collect();
    skus.sort();
    let mut expected: Vec<String> = records.iter().map(|(_, r)| r.sku.clone()).collect();
    expected.sort();
    assert_eq!(skus, expected, "every record once");

    // Nothing staged: nothing sent.
    let sent = drain_once(&bench.transport, &bench.store, &bench.batching)
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(sent, 0);
    assert!(receive_all(&bench).await?.is_empty());

    // A heartbeat waiting for its lane goes first, in its own group.
    let (life, _) = bench.store.position()?;
    let heartbeat = contract::Envelope::new(AGENT, 0, now, Payload::Heartbeat(heartbeat(now)));
    bench
        .store
        .put_lane_heartbeat(&life, &contract::encode_body(&heartbeat))?;
    bench
        .store
        .stage(RecordKind::Stock, &[stock("SKU-00", 99)], false, now)?;
    let sent = drain_once(&bench.transport, &bench.store, &bench.batching)
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(sent, 2, "the heartbeat and one batch");
    assert_eq!(
        bench.store.lane_heartbeat()?,
        None,
        "the heartbeat is forgotten once sent"
    );
    let received = receive_all(&bench).await?;
    assert_eq!(received.len(), 2, "{received:?}");
    let heartbeat_group = contract::heartbeat_group(AGENT);
    assert!(
        received
            .iter()
            .any(|(group, e)| *group == heartbeat_group && e.payload == heartbeat.payload),
        "the heartbeat in its own group: {received:?}"
    );
    let (_, envelope) = received
        .iter()
        .find(|(group, _)| group == AGENT)
        .context("the batch in the agent's group")?;
    assert_eq!(
        (envelope.seq, skus_in(envelope)),
        (4, vec!["SKU-00".to_owned()])
    );

    // A queue that does not answer: an error, and the batch stays.
    let missing = format!("{}-missing.fifo", bench.queue.trim_end_matches(".fifo"));
    std::fs::write(
        dir.path().join("missing.toml"),
        format!(
            "agent_id = \"{AGENT}\"\n\n[aws]\nevents_queue_url = \"{missing}\"\n\n[sql]\nconnection_string = \"server=tcp:127.0.0.1,1;database=x;user=x\"\n\n[store]\npath = \"state.sqlite\"\n"
        ),
    )?;
    let config = agent::config::AgentConfig::load(&dir.path().join("missing.toml"))?;
    let dead = Transport::new(&config).await.with_client(bench.sqs.clone());
    bench
        .store
        .stage(RecordKind::Stock, &[stock("SKU-01", 7)], false, now)?;
    let failed = drain_once(&dead, &bench.store, &bench.batching).await;
    assert!(
        failed.is_err(),
        "sent to a queue that does not exist: {failed:?}"
    );
    assert_eq!(
        bench.store.outbox_depth()?,
        1,
        "the batch waits in the outbox"
    );
    let sent = drain_once(&bench.transport, &bench.store, &bench.batching)
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(sent, 1);
    let received = receive_all(&bench).await?;
    assert_eq!(received.len(), 1);
    assert_eq!(
        (received[0].1.seq, skus_in(&received[0].1)),
        (5, vec!["SKU-01".to_owned()])
    );
    Ok(())
}

/// The sender's own loop (`sender::run`), as the agent runs it: staged
/// records leave without being asked; while the queue does not exist it
/// retries with a back-off that starts at half a second (not the 30 s
/// ceiling), so once the queue is there the records arrive within seconds,
/// in order, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_sends_what_is_staged_and_retries_soon_after_the_queue_was_missing()
-> anyhow::Result<()> {
    let dir = TestDir::new()?;
    let bench = bench(dir.path()).await?;
    let later = format!("{}-later.fifo", bench.queue.trim_end_matches(".fifo"));
    let name = later.rsplit('/').next().context("a queue name")?.to_owned();
    std::fs::write(
        dir.path().join("later.toml"),
        format!(
            "agent_id = \"{AGENT}\"\n\n[aws]\nevents_queue_url = \"{later}\"\n\n[sql]\nconnection_string = \"server=tcp:127.0.0.1,1;database=x;user=x\"\n\n[store]\npath = \"state.sqlite\"\n"
        ),
    )?;
    let config = agent::config::AgentConfig::load(&dir.path().join("later.toml"))?;
    let transport = Transport::new(&config).await.with_client(bench.sqs.clone());
    let store = std::sync::Arc::new(Store::open(&dir.path().join("sender.sqlite"))?);
    let changed = std::sync::Arc::new(tokio::sync::Notify::new());
    let cancel = tokio_util::sync::CancellationToken::new();
    let sender = tokio::spawn(agent::sender::run(
        transport,
        store.clone(),
        bench.batching.clone(),
        1_000,
        changed.clone(),
        cancel.clone(),
    ));
    let records: Vec<_> = (0..15).map(|i| stock(&format!("SKU-{i:02}"), i)).collect();
    store.stage(RecordKind::Stock, &records, false, Utc::now())?;
    changed.notify_one();
    // The queue is missing: the sender fails and backs off; the batch waits.
    harness::wait_for(
        "the first batch waiting in the outbox",
        std::time::Duration::from_secs(10),
        || async { Ok((store.outbox_depth()? == 1).then_some(())) },
    )
    .await?;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    anyhow::ensure!(
        store.outbox_depth()? == 1,
        "nothing sent to a missing queue"
    );
    let created = bench
        .sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await?
        .queue_url
        .context("no queue URL")?;
    anyhow::ensure!(created == later, "{created} is not {later}");
    let arrived = std::time::Instant::now();
    let mut received = Vec::new();
    harness::wait_for(
        "both batches on the queue",
        std::time::Duration::from_secs(10),
        || async { Ok((store.outbox_depth()? == 0 && store.pending_count()? == 0).then_some(())) },
    )
    .await?;
    println!("drained {:?} after the queue appeared", arrived.elapsed());
    loop {
        let out = bench
            .sqs
            .receive_message()
            .queue_url(&later)
            .max_number_of_messages(10)
            .send()
            .await?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            received.push(decode_body(message.body.as_deref().context("no body")?)?);
            bench
                .sqs
                .delete_message()
                .queue_url(&later)
                .receipt_handle(message.receipt_handle.as_deref().context("no handle")?)
                .send()
                .await?;
        }
    }
    cancel.cancel();
    sender.await?;
    let seqs: Vec<u64> = received.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2], "in order, each once");
    let skus: Vec<String> = received.iter().flat_map(skus_in).collect();
    let expected: Vec<String> = records.iter().map(|(_, r)| r.sku.clone()).collect();
    let mut sorted = skus.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "every record once");
    Ok(())
}
