//! The cloud's half of shop → ERP on real pieces (the emulator with the
//! stack, the functions' local host, the WooCommerce stand-in; the agent is
//! replaced by messages on the events queue and by reading the commands
//! queue): the webhook answers bad input clearly and stores nothing wrong;
//! every order becomes exactly one `CreateOrder`, whether its webhook comes
//! five times, is lost (the poller finds it) or meets the poller; an older
//! revision never overwrites a newer one; personal data carries its TTL and
//! expired items are not read; the ERP's progress sets the shop's status
//! and adds the tracking note once, under the shop's rate limit.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use contract::{Envelope, OrderAck, OrderAckOutcome, OrderProgress, OrderStage, Payload};
use functions::orders::OrderStore;
use functions::shop::woo_order::sign;
use harness::cloud::LocalCloud;
use harness::emulator::sdk_config;
use harness::standins::WooStandinProcess;
use harness::wait_for;
use serde_json::{Value, json};

const SHOP: &str = "sklep";

/// A refused delivery: what, body, headers, expected status, what the error says.
type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, String)>, u16, &'a str);

fn logs_dir(dir: &tempfile::TempDir) -> std::path::PathBuf {
    // E2E_KEEP=1 keeps the logs and state for a look after a failure.
    if std::env::var_os("E2E_KEEP").is_some() {
        dir.path().to_path_buf().join("kept")
    } else {
        dir.path().to_path_buf()
    }
}

/// Every `CreateOrder` taken off the commands queue so far, per order key.
#[derive(Default)]
struct Commands {
    seen: BTreeMap<String, usize>,
}

impl Commands {
    /// Receives (and deletes, so the FIFO group moves on) until the queue
    /// has been empty for `quiet`.
    async fn drain(
        &mut self,
        sqs: &aws_sdk_sqs::Client,
        queue: &str,
        quiet: Duration,
    ) -> anyhow::Result<()> {
        let mut last = Instant::now();
        while last.elapsed() < quiet {
            let out = sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await?;
            for message in out.messages.unwrap_or_default() {
                last = Instant::now();
                if let Some(body) = message.body.as_deref()
                    && let Ok(envelope) = contract::decode_body(body)
                    && let Payload::CreateOrder(order) = envelope.payload
                {
                    *self.seen.entry(order.key()).or_default() += 1;
                }
                if let Some(handle) = message.receipt_handle {
                    sqs.delete_message()
                        .queue_url(queue)
                        .receipt_handle(handle)
                        .send()
                        .await?;
                }
            }
        }
        Ok(())
    }

    fn count(&self, order_id: u64) -> usize {
        self.seen
            .get(&format!("{SHOP}:{order_id}"))
            .copied()
            .unwrap_or(0)
    }
}

async fn post(
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> anyhow::Result<(u16, Value)> {
    let mut request = reqwest::Client::new().post(url).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

fn signed(secret: &str, body: &[u8], topic: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".to_owned()),
        ("x-wc-webhook-topic", topic.to_owned()),
        ("x-wc-webhook-signature", sign(secret.as_bytes(), body)),
    ]
}

/// The order as WooCommerce's API (and its webhooks) send it, as raw bytes.
async fn order_bytes(shop: &WooStandinProcess, id: u64) -> anyhow::Result<Vec<u8>> {
    Ok(reqwest::Client::new()
        .get(format!("{}/wp-json/wc/v3/orders/{id}", shop.base_url))
        .basic_auth(&shop.consumer_key, Some(&shop.consumer_secret))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?
        .to_vec())
}

fn new_order(email: &str) -> Value {
    json!({
        "line_items": [["KAWA-1", 2], ["HERB-1", 1]],
        "billing": {"first_name": "Żaneta", "last_name": "Łęcka", "address_1": "ul. Długa 1",
                    "city": "Łódź", "postcode": "90-001", "country": "PL", "email": email},
        "shipping_total": "15.00",
        "status": "processing"
    })
}

fn replace(body: &[u8], from: &str, to: &str) -> anyhow::Result<Vec<u8>> {
    let text = std::str::from_utf8(body)?;
    anyhow::ensure!(text.contains(from), "the order JSON has no `{from}`");
    Ok(text.replacen(from, to, 1).into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_refuses_bad_input_and_stores_each_order_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let logs = &logs_dir(&dir);
    let skus = ["KAWA-1".to_owned(), "HERB-1".to_owned()];
    let shop = WooStandinProcess::start_with(None, Some(&skus), None, logs)?;
    let cloud = LocalCloud::start_with_host_args(
        logs,
        "orders-webhook",
        Some(shop.shop_parameters(SHOP, "Detaliczna", &["MAG"], 20, 20)),
        // The poller runs too, every 2 s: it meets every order the webhook took.
        &["--schedule-every", "poller=2"],
    )?;
    let base = cloud.webhook_url.clone().context("no webhook URL")?;
    let url = format!("{base}/{SHOP}");
    let config = sdk_config(&cloud.emulator.endpoint()).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = cloud.stack.output("StateTableName")?.to_owned();
    let commands_queue = cloud.stack.output("CommandsQueueUrl")?.to_owned();
    let store = OrderStore::new(dynamodb.clone(), &table, 30);
    let secret = shop.webhook_secret.clone();

    // No webhook is registered: this test is the shop, delivering by hand.
    let placed = shop.place_order(new_order("a@example.pl")).await?;
    let id = placed["id"].as_u64().context("order id")?;
    let body = order_bytes(&shop, id).await?;

    // WooCommerce's creation ping: unsigned, form-encoded.
    let (status, _) = post(
        &url,
        b"webhook_id=7".to_vec(),
        &[(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        )],
    )
    .await?;
    assert_eq!(status, 200, "ping");

    // Refusals: each a clear answer, nothing stored.
    let wrong = vec![
        ("content-type", "application/json".to_owned()),
        ("x-wc-webhook-topic", "order.created".to_owned()),
        ("x-wc-webhook-signature", sign(b"not the secret", &body)),
    ];
    let truncated = body[..body.len() / 2].to_vec();
    let mut not_utf8 = body.clone();
    not_utf8.insert(1, 0xff);
    let huge_quantity = replace(&body, "\"quantity\":2", "\"quantity\":1000000000")?;
    let cases: Vec<Case> = vec![
        (
            "missing signature",
            body.clone(),
            vec![("content-type", "application/json".to_owned())],
            401,
            "missing",
        ),
        (
            "wrong signature",
            body.clone(),
            wrong,
            401,
            "does not match",
        ),
        (
            "truncated JSON",
            truncated.clone(),
            signed(&secret, &truncated, "order.created"),
            400,
            "not a WooCommerce order",
        ),
        (
            "invalid UTF-8",
            not_utf8.clone(),
            signed(&secret, &not_utf8, "order.created"),
            400,
            "UTF-8",
        ),
        (
            "quantity 10^9",
            huge_quantity.clone(),
            signed(&secret, &huge_quantity, "order.created"),
            400,
            "quantity",
        ),
    ];
    for (what, payload, headers, expected, says) in cases {
        let (status, answer) = post(&url, payload, &headers).await?;
        assert_eq!(status, expected, "{what}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(says),
            "{what}: the answer `{error}` should say `{says}`"
        );
    }
    let (status, answer) = post(
        &format!("{base}/no-such-shop"),
        body.clone(),
        &signed(&secret, &body, "order.created"),
    )
    .await?;
    assert_eq!(status, 400, "unknown shop: {answer}");
    // 5 MB: refused quickly (413), not read and parsed.
    let big = vec![b'x'; 5 * 1024 * 1024];
    let started = Instant::now();
    let big_answer = post(&url, big.clone(), &signed(&secret, &big, "order.created")).await;
    let took = started.elapsed();
    match big_answer {
        Ok((status, _)) => assert!(status == 413 || status == 400, "5 MB body: {status}"),
        // A server may close the connection after answering 413 while the
        // client still sends; that is a refusal too.
        Err(err) => eprintln!("5 MB body: connection closed by the server ({err})"),
    }
    assert!(took < Duration::from_secs(3), "5 MB body took {took:?}");
    println!("5 MB body refused in {took:?}");
    assert!(
        store.get(SHOP, &id.to_string()).await?.is_none(),
        "nothing was stored by refused deliveries"
    );

    // The same delivery five times: one stored order, one command.
    let headers = signed(&secret, &body, "order.created");
    let mut stored = 0;
    for _ in 0..5 {
        let (status, answer) = post(&url, body.clone(), &headers).await?;
        assert_eq!(status, 200, "{answer}");
        stored += usize::from(answer["stored"] == true);
    }
    assert_eq!(stored, 1, "stored once");
    let kept = store
        .get(SHOP, &id.to_string())
        .await?
        .context("the order is stored")?;
    assert_eq!(kept.order.buyer.billing.city, "Łódź");
    assert_eq!(kept.order.lines.len(), 2);
    let total: rust_decimal::Decimal = placed["total"].as_str().context("total")?.parse()?;
    assert_eq!(kept.order.total_gross, total, "totals to the grosz");

    // An older revision after the newer one changes nothing.
    let older = replace(
        &body,
        &format!(
            "\"date_modified_gmt\":\"{}\"",
            placed["date_modified_gmt"].as_str().context("date")?
        ),
        "\"date_modified_gmt\":\"2020-01-01T00:00:00\"",
    )?;
    let older = replace(
        &older,
        "\"status\":\"processing\"",
        "\"status\":\"pending\"",
    )?;
    let (status, answer) = post(
        &url,
        older.clone(),
        &signed(&secret, &older, "order.updated"),
    )
    .await?;
    assert_eq!((status, answer["stored"].clone()), (200, json!(false)));
    let kept = store
        .get(SHOP, &id.to_string())
        .await?
        .context("still stored")?;
    assert_eq!(kept.order.status, "processing", "the newer revision stands");

    // A missing address is stored as it is; the ERP side decides.
    let second = shop
        .place_order(json!({"line_items": [["KAWA-1", 1]], "status": "processing"}))
        .await?;
    let second_id = second["id"].as_u64().context("id")?;
    let second_key = second_id.to_string();
    let second_body = order_bytes(&shop, second_id).await?;
    let (status, answer) = post(
        &url,
        second_body.clone(),
        &signed(&secret, &second_body, "order.created"),
    )
    .await?;
    assert_eq!(status, 200, "no address: {answer}");

    // A pending (unpaid) order is stored but not sent under the default trigger.
    let unpaid = shop
        .place_order(json!({"line_items": [["HERB-1", 1]], "status": "pending"}))
        .await?;
    let unpaid_id = unpaid["id"].as_u64().context("id")?;
    let unpaid_body = order_bytes(&shop, unpaid_id).await?;
    let (status, answer) = post(
        &url,
        unpaid_body.clone(),
        &signed(&secret, &unpaid_body, "order.created"),
    )
    .await?;
    assert_eq!(
        (status, answer["command_sent"].clone()),
        (200, json!(false))
    );

    // The poller meets all three within seconds: still one command each.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut commands = Commands::default();
    commands
        .drain(&sqs, &commands_queue, Duration::from_secs(3))
        .await?;
    assert_eq!(
        commands.count(id),
        1,
        "one CreateOrder: {:?}",
        commands.seen
    );
    assert_eq!(commands.count(second_id), 1, "{:?}", commands.seen);
    assert_eq!(commands.count(unpaid_id), 0, "{:?}", commands.seen);

    // Personal data carries its TTL: now + 30 days.
    let item = dynamodb
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("order#{SHOP}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(id.to_string()),
        )
        .send()
        .await?
        .item
        .context("raw item")?;
    let expires: i64 = item
        .get("expires_at")
        .and_then(|v| v.as_n().ok())
        .context("expires_at")?
        .parse()?;
    let expected = Utc::now().timestamp() + 30 * 86_400;
    assert!(
        (expires - expected).abs() < 600,
        "expires_at {expires} is about now + 30 days ({expected})"
    );

    // An agent parks the second order: the status lists it with its reason.
    send_event(
        &sqs,
        cloud.stack.output("EventsQueueUrl")?,
        1,
        Payload::OrderAck(OrderAck {
            shop: SHOP.into(),
            order_id: second_id.to_string(),
            revision: Utc::now(),
            outcome: OrderAckOutcome::Parked {
                reason: "unknown SKU KAWA-1".into(),
            },
        }),
    )
    .await?;
    let parked = wait_for(
        "the parked order on /status",
        Duration::from_secs(20),
        || async {
            let status = cloud.status().await?;
            Ok(status["parked_orders"].as_array().and_then(|a| {
                a.iter()
                    .find(|p| p["order_id"].as_str() == Some(second_key.as_str()))
                    .cloned()
            }))
        },
    )
    .await?;
    assert_eq!(parked["reason"], "unknown SKU KAWA-1");

    // Expired items are not read (the emulator never deletes them, AWS lazily).
    for (pk, sk) in [
        (format!("order#{SHOP}"), id.to_string()),
        ("parked-orders".to_owned(), format!("{SHOP}#{second_id}")),
    ] {
        dynamodb
            .update_item()
            .table_name(&table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk))
            .update_expression("SET expires_at = :past")
            .expression_attribute_values(
                ":past",
                aws_sdk_dynamodb::types::AttributeValue::N(
                    (Utc::now().timestamp() - 10).to_string(),
                ),
            )
            .send()
            .await?;
    }
    assert!(
        store.get(SHOP, &id.to_string()).await?.is_none(),
        "an expired order is not read"
    );
    let status = cloud.status().await?;
    assert!(
        !status["parked_orders"].as_array().is_some_and(|a| a
            .iter()
            .any(|p| p["order_id"].as_str() == Some(second_key.as_str()))),
        "an expired parked order is not listed: {}",
        status["parked_orders"]
    );
    Ok(())
}

async fn send_event(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    seq: u64,
    payload: Payload,
) -> anyhow::Result<()> {
    let envelope = Envelope::new("biuro", seq, Utc::now(), payload);
    sqs.send_message()
        .queue_url(queue)
        .message_body(contract::encode_body(&envelope))
        .message_group_id("biuro")
        .message_deduplication_id(format!("biuro-{seq}-{}", rand::random::<u32>()))
        .send()
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_and_duplicated_webhooks_give_one_command_and_progress_reaches_the_shop_once()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let logs = &logs_dir(&dir);
    let skus = ["KAWA-1".to_owned(), "HERB-1".to_owned()];
    let shop = WooStandinProcess::start_with(None, Some(&skus), Some(4), logs)?;
    let cloud = LocalCloud::start_with_host_args(
        logs,
        "orders-flow",
        Some(shop.shop_parameters(SHOP, "Detaliczna", &["MAG"], 4, 4)),
        &["--schedule-every", "poller=2"],
    )?;
    let base = cloud.webhook_url.clone().context("no webhook URL")?;
    shop.register_order_webhooks(&format!("{base}/{SHOP}"))
        .await?;
    let config = sdk_config(&cloud.emulator.endpoint()).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let commands_queue = cloud.stack.output("CommandsQueueUrl")?.to_owned();
    let events_queue = cloud.stack.output("EventsQueueUrl")?.to_owned();
    let mut commands = Commands::default();

    // Delivered normally.
    let started = Instant::now();
    let first = shop.place_order(new_order("a@example.pl")).await?["id"]
        .as_u64()
        .context("id")?;
    // Lost: the poller finds it.
    shop.set_faults(json!({"webhook_drop_next": 2})).await?;
    let lost = shop.place_order(new_order("b@example.pl")).await?["id"]
        .as_u64()
        .context("id")?;
    // Delivered twice.
    shop.set_faults(json!({"webhook_duplicate_next": 2}))
        .await?;
    let twice = shop.place_order(new_order("c@example.pl")).await?["id"]
        .as_u64()
        .context("id")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while [first, lost, twice]
        .iter()
        .any(|id| commands.count(*id) == 0)
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "orders missing: {:?}",
            commands.seen
        );
        commands
            .drain(&sqs, &commands_queue, Duration::from_millis(500))
            .await?;
    }
    println!(
        "three orders on the commands queue after {:?}",
        started.elapsed()
    );
    let deliveries = shop.webhook_deliveries().await?;
    assert!(
        deliveries.iter().any(|d| d.to_string().contains("dropped")),
        "the stand-in dropped a delivery"
    );
    // Everything settles: still exactly one command each.
    tokio::time::sleep(Duration::from_secs(5)).await;
    commands
        .drain(&sqs, &commands_queue, Duration::from_secs(3))
        .await?;
    for id in [first, lost, twice] {
        assert_eq!(commands.count(id), 1, "order {id}: {:?}", commands.seen);
    }

    // The ERP writes the first order and ships it: twice the same news, as
    // a redelivery would bring it.
    send_event(
        &sqs,
        &events_queue,
        1,
        Payload::OrderAck(OrderAck {
            shop: SHOP.into(),
            order_id: first.to_string(),
            revision: Utc::now(),
            outcome: OrderAckOutcome::Written {
                document_id: 41,
                document_number: "RO/1/2026".into(),
            },
        }),
    )
    .await?;
    let shipped = OrderProgress {
        shop: SHOP.into(),
        order_id: first.to_string(),
        stage: OrderStage::Shipped,
        tracking_number: Some("PL123456789".into()),
        documents: vec!["FS/1/2026".into(), "WZ/1/2026".into()],
        observed_at: Utc::now(),
    };
    send_event(
        &sqs,
        &events_queue,
        2,
        Payload::OrderProgress(shipped.clone()),
    )
    .await?;
    send_event(&sqs, &events_queue, 3, Payload::OrderProgress(shipped)).await?;
    let order = wait_for(
        "completed with its tracking note",
        Duration::from_secs(30),
        || async {
            let order = shop.order(first).await?;
            let done = order.to_string().contains("PL123456789")
                && order.to_string().contains("\"completed\"");
            Ok(done.then_some(order))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let order = shop.order(first).await.unwrap_or(order);
    let notes = order.to_string().matches("PL123456789").count();
    assert_eq!(notes, 1, "one tracking note: {order}");
    let puts = shop
        .requests()
        .await?
        .iter()
        .filter(|r| {
            r["method"] == "PUT"
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("/orders/{first}")))
        })
        .count();
    assert_eq!(puts, 1, "the status was set once");
    let stats = shop.stats().await?;
    let busiest = stats["max_admitted_in_any_1s"].as_u64().context("stats")?;
    assert!(
        busiest <= 4,
        "the shop's limit held: {busiest} in one second"
    );
    // The status change came back as a webhook: stored, not sent again.
    commands
        .drain(&sqs, &commands_queue, Duration::from_secs(2))
        .await?;
    assert_eq!(commands.count(first), 1, "{:?}", commands.seen);
    Ok(())
}
