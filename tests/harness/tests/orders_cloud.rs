//! The cloud's half of shop → ERP on real pieces (the emulator with the
//! stack, the functions' local host, the WooCommerce stand-in; the agent is
//! replaced by messages on the events queue and by reading the commands
//! queue): the webhook answers bad input clearly and stores nothing wrong;
//! every order becomes exactly one `CreateOrder`, whether its webhook comes
//! five times, is lost (the poller finds it) or meets the poller; an older
//! revision never overwrites a newer one; personal data carries its TTL and
//! expired items are not read; the ERP's progress (shipped, cancelled) sets
//! the shop's status and adds the tracking note once, under the shop's rate
//! limit; an order stored while the commands queue fails is queued by the
//! next delivery or poll (the poller's cursor holds for it); the poller
//! reads every page.

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

/// Waits until the poller has listed the shop's orders in two runs that
/// both began after `since`, by the stand-in's request log (a run's pages
/// come back to back; runs are 2 s apart).
async fn poller_listed_twice_since(
    shop: &WooStandinProcess,
    since: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    wait_for("two poller runs", Duration::from_secs(30), || async {
        let listings: Vec<chrono::DateTime<Utc>> = shop
            .requests()
            .await?
            .iter()
            .filter(|r| r["method"] == "GET" && r["path"] == "/wp-json/wc/v3/orders")
            .filter_map(|r| r["at"].as_str())
            .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| *t > since)
            .collect();
        let (Some(first), Some(last)) = (listings.iter().min(), listings.iter().max()) else {
            return Ok(None);
        };
        Ok((*last - *first >= chrono::Duration::seconds(1)).then_some(()))
    })
    .await
}

/// Every `CreateOrder` taken off the commands queue so far, per order key,
/// and how many of each other kind went by.
#[derive(Default)]
struct Commands {
    seen: BTreeMap<String, usize>,
    others: BTreeMap<String, usize>,
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
                // A command the agent could not read is a failure, not a
                // message to skip.
                let body = message.body.as_deref().unwrap_or_default();
                let envelope = contract::decode_body(body)
                    .with_context(|| format!("an unreadable command: {body:.200}"))?;
                match envelope.payload {
                    Payload::CreateOrder(order) => {
                        *self.seen.entry(order.key()).or_default() += 1;
                    }
                    other => {
                        *self
                            .others
                            .entry(format!("{:?}", other.kind()))
                            .or_default() += 1;
                    }
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

/// What the agent parks an order without a complete address with.
const NO_ADDRESS: &str = "the order has no complete address (a name or company, street, city and postcode, in shipping or billing)";

/// The order JSON with another order id (one the shop does not have, so
/// the poller never lists it).
fn with_id(body: &[u8], id: u64) -> anyhow::Result<Vec<u8>> {
    let mut order: Value = serde_json::from_slice(body)?;
    anyhow::ensure!(order["id"].is_u64(), "the order JSON has no id");
    order["id"] = json!(id);
    Ok(serde_json::to_vec(&order)?)
}

fn replace(body: &[u8], from: &str, to: &str) -> anyhow::Result<Vec<u8>> {
    let text = std::str::from_utf8(body)?;
    anyhow::ensure!(text.contains(from), "the order JSON has no `{from}`");
    Ok(text.replacen(from, to, 1).into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_refuses_bad_input_and_stores_each_order_once() -> anyhow::Result<()> {
    let dir = harness::TestDir::new()?;
    let logs = &dir.path().to_path_buf();
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
    // The poller (every 2 s) lists the shop's orders and may store `id`
    // at any moment; the deliveries checked here carry an id the shop does
    // not have, so what is stored under it is the webhook's doing alone.
    let hidden = id + 900_000;
    let body = with_id(&order_bytes(&shop, id).await?, hidden)?;

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
        Err(err) => {
            assert!(
                !err.downcast_ref::<reqwest::Error>()
                    .is_some_and(reqwest::Error::is_timeout),
                "5 MB body: a timeout is not a refusal: {err}"
            );
            eprintln!("5 MB body: connection closed by the server ({err})");
        }
    }
    assert!(took < Duration::from_secs(3), "5 MB body took {took:?}");
    // A refusal, not a server that fell over: it answers the next delivery.
    let (status, answer) = post(
        &format!("{base}/no-such-shop"),
        body.clone(),
        &signed(&secret, &body, "order.created"),
    )
    .await?;
    assert_eq!(
        status, 400,
        "the webhook still answers after the 5 MB body: {answer}"
    );
    println!("5 MB body refused in {took:?}");
    assert!(
        store.get(SHOP, &hidden.to_string()).await?.is_none(),
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
        .get(SHOP, &hidden.to_string())
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
        .get(SHOP, &hidden.to_string())
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

    // The poller meets the shop's orders within seconds: still one command
    // each (the hidden one only ever came by webhook; `id` only by poll).
    // Two of its runs have listed the orders (by the shop's request log).
    poller_listed_twice_since(&shop, Utc::now()).await?;
    let mut commands = Commands::default();
    commands
        .drain(&sqs, &commands_queue, Duration::from_secs(3))
        .await?;
    assert_eq!(
        commands.count(hidden),
        1,
        "one CreateOrder: {:?}",
        commands.seen
    );
    assert_eq!(commands.count(id), 1, "{:?}", commands.seen);
    assert!(
        commands.others.is_empty(),
        "only order commands on the queue: {:?}",
        commands.others
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
            aws_sdk_dynamodb::types::AttributeValue::S(hidden.to_string()),
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

    // The agent parks the address-less order (as it does, before writing
    // anything): the status lists it with the agent's reason.
    send_event(
        &sqs,
        cloud.stack.output("EventsQueueUrl")?,
        1,
        Payload::OrderAck(OrderAck {
            shop: SHOP.into(),
            order_id: second_id.to_string(),
            revision: Utc::now(),
            outcome: OrderAckOutcome::Parked {
                reason: NO_ADDRESS.into(),
            },
        }),
    )
    .await?;
    let parked = wait_for(
        "the parked order on /status",
        Duration::from_secs(20),
        || cloud.parked_order(&second_key),
    )
    .await?;
    assert_eq!(parked["reason"], NO_ADDRESS);
    assert_eq!(parked["number"], second["number"], "{parked}");

    // Expired items are not read (the emulator never deletes them, AWS
    // lazily). The hidden order: the poller would store `id` again.
    for (pk, sk) in [
        (format!("order#{SHOP}"), hidden.to_string()),
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
        store.get(SHOP, &hidden.to_string()).await?.is_none(),
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
    let dir = harness::TestDir::new()?;
    let logs = &dir.path().to_path_buf();
    let skus = ["KAWA-1".to_owned(), "HERB-1".to_owned()];
    // The host lets 4 requests through in any second (a sliding window).
    // The cloud's limit is a token bucket, which sends at most `burst` +
    // `tokens` × 1 s in a second: 4 a second holding 4 could send 7 (and
    // did, once the poller also read refunds). A bucket of 3 a second
    // holding 1 sends at most 4 in any second, 333 ms apart, so network
    // jitter cannot squeeze a fifth in: what an integrator configures
    // against such a host (docs/OPERATIONS.md, "Shops").
    let shop = WooStandinProcess::start_with(None, Some(&skus), Some(4), logs)?;
    let cloud = LocalCloud::start_with_host_args(
        logs,
        "orders-flow",
        Some(shop.shop_parameters(SHOP, "Detaliczna", &["MAG"], 3, 1)),
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
    // Both faults landed: the lost order's delivery was dropped, and the
    // other order's was delivered a second time (its copy answered).
    let deliveries = shop.webhook_deliveries().await?;
    let of = |id: u64| {
        deliveries
            .iter()
            .filter(move |d| d["kind"] == "event" && d["resource_id"] == id)
    };
    assert!(
        of(lost).any(|d| d["outcome"] == "dropped"),
        "the stand-in dropped the lost order's delivery: {deliveries:?}"
    );
    assert!(
        of(twice).any(|d| d["duplicate"] == true && d["sent_at"].is_string()),
        "the stand-in delivered the order twice: {deliveries:?}"
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
        carrier: None,
        documents: vec!["FS/1/2026".into(), "WZ/1/2026".into()],
        invoices: Vec::new(),
        realisation: None,
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
    wait_for(
        "completed with its tracking note",
        Duration::from_secs(30),
        || async {
            let order = shop.order(first).await?;
            let done = order.to_string().contains("PL123456789")
                && order["order"]["status"] == "completed";
            Ok(done.then_some(order))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let order = shop.order(first).await?;
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
    // What the cloud did, not what the stand-in's limiter let through: no
    // request was refused with a 429, and none arrived above 4 a second.
    assert_eq!(stats["rate_limited"], 0, "never a 429: {stats}");
    let busiest = stats["max_requests_in_any_1s"].as_u64().context("stats")?;
    assert!(
        busiest <= 4,
        "the cloud kept to the shop's limit: {busiest} requests in one second"
    );
    // The status change came back as a webhook: stored, not sent again.
    commands
        .drain(&sqs, &commands_queue, Duration::from_secs(2))
        .await?;
    assert_eq!(commands.count(first), 1, "{:?}", commands.seen);

    // The ERP cancels another order (twice the same news): the shop shows
    // it cancelled, set once, under the same limit; no command follows.
    let cancelled = OrderProgress {
        shop: SHOP.into(),
        order_id: twice.to_string(),
        stage: OrderStage::Cancelled,
        tracking_number: None,
        carrier: None,
        documents: vec!["RO/2/2026".into()],
        invoices: Vec::new(),
        realisation: None,
        observed_at: Utc::now(),
    };
    send_event(
        &sqs,
        &events_queue,
        4,
        Payload::OrderProgress(cancelled.clone()),
    )
    .await?;
    send_event(&sqs, &events_queue, 5, Payload::OrderProgress(cancelled)).await?;
    wait_for("cancelled in the shop", Duration::from_secs(30), || async {
        let order = shop.order(twice).await?;
        Ok((order["order"]["status"] == "cancelled").then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let order = shop.order(twice).await?;
    assert_eq!(order["order"]["status"], "cancelled", "{order}");
    let puts: Vec<Value> = shop
        .requests()
        .await?
        .into_iter()
        .filter(|r| {
            r["method"] == "PUT"
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("/orders/{twice}")))
        })
        .collect();
    assert_eq!(puts.len(), 1, "the status was set once: {puts:?}");
    let stats = shop.stats().await?;
    // What the cloud did, not what the stand-in's limiter let through: no
    // request was refused with a 429, and none arrived above 4 a second.
    assert_eq!(stats["rate_limited"], 0, "never a 429: {stats}");
    let busiest = stats["max_requests_in_any_1s"].as_u64().context("stats")?;
    assert!(
        busiest <= 4,
        "the cloud kept to the shop's limit: {busiest} requests in one second"
    );
    commands
        .drain(&sqs, &commands_queue, Duration::from_secs(2))
        .await?;
    assert_eq!(commands.count(twice), 1, "{:?}", commands.seen);
    Ok(())
}

/// The commands queue's attributes that its template sets (and moto
/// echoes), to make it again as the stack made it.
const QUEUE_ATTRIBUTES: [&str; 8] = [
    "FifoQueue",
    "ContentBasedDeduplication",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "RedrivePolicy",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_stored_while_the_queue_fails_is_queued_by_the_next_delivery_or_poll()
-> anyhow::Result<()> {
    let dir = harness::TestDir::new()?;
    let logs = &dir.path().to_path_buf();
    let skus = ["KAWA-1".to_owned(), "HERB-1".to_owned()];
    let shop = WooStandinProcess::start_with(None, Some(&skus), None, logs)?;
    let cloud = LocalCloud::start_with_host_args(
        logs,
        "orders-queue-fault",
        Some(shop.shop_parameters(SHOP, "Detaliczna", &["MAG"], 20, 20)),
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

    // The commands queue goes away (an SQS outage, as the functions see
    // it: every SendMessage fails); how it was made is kept. The emulator
    // refuses sends to a queue it cannot find (AWS answers that it does
    // not exist): provoked here.
    cloud.emulator.expect_refusals();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&commands_queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    let queue_name = commands_queue
        .rsplit('/')
        .next()
        .context("queue name")?
        .to_owned();
    sqs.delete_queue().queue_url(&commands_queue).send().await?;

    // The poller lists `paid` (a command is due) and, a second later,
    // `unpaid` (nothing is due); no webhook is registered.
    let paid = shop.place_order(new_order("a@example.pl")).await?["id"]
        .as_u64()
        .context("id")?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let unpaid = shop
        .place_order(json!({"line_items": [["HERB-1", 1]], "status": "pending",
            "billing": {"first_name": "Jan", "last_name": "Nowak", "address_1": "ul. Krótka 2",
                        "city": "Kraków", "postcode": "30-001", "country": "PL"}}))
        .await?["id"]
        .as_u64()
        .context("id")?;

    // A webhook delivery of an order the poller cannot list (an id the
    // shop does not have): stored, answered 200 (WooCommerce would not
    // retry a 5xx, only count it towards disabling the webhook), pending.
    let hidden = paid + 900_000;
    let body = with_id(&order_bytes(&shop, paid).await?, hidden)?;
    let headers = signed(&secret, &body, "order.created");
    let (status, answer) = post(&url, body.clone(), &headers).await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            &answer["stored"],
            &answer["command_sent"],
            &answer["command_pending"]
        ),
        (&json!(true), &json!(false), &json!(true)),
        "{answer}"
    );
    let kept = store
        .get(SHOP, &hidden.to_string())
        .await?
        .context("stored")?;
    assert_eq!(kept.command_rev_ms, None, "not marked as queued");

    // The poller stores both; `paid` stays unmarked and holds the cursor
    // at its revision, though `unpaid` is newer.
    let (paid_rev, unpaid_rev) = wait_for(
        "the poller storing both orders",
        Duration::from_secs(30),
        || async {
            let a = store.get(SHOP, &paid.to_string()).await?;
            let b = store.get(SHOP, &unpaid.to_string()).await?;
            Ok(a.zip(b).map(|(a, b)| (a.revision_ms, b.revision_ms)))
        },
    )
    .await?;
    assert!(paid_rev < unpaid_rev, "{paid_rev} < {unpaid_rev}");
    // Two more runs, each failing to send.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let kept = store
        .get(SHOP, &paid.to_string())
        .await?
        .context("stored")?;
    assert_eq!(kept.command_rev_ms, None, "not marked as queued");
    let cursor = store.cursor(SHOP).await?.context("a cursor")?;
    assert_eq!(
        cursor.time().map(|t| t.timestamp_millis()),
        Some(paid_rev),
        "the cursor holds at the order whose command is pending"
    );

    // The queue is back.
    let mut create = sqs.create_queue().queue_name(&queue_name);
    for (name, value) in attributes {
        if QUEUE_ATTRIBUTES.contains(&name.as_str()) {
            create = create.attributes(name, value);
        }
    }
    let recreated = create.send().await?.queue_url.context("queue url")?;
    // The emulator answers with its own host; the name is what counts.
    assert!(
        recreated.ends_with(&format!("/{queue_name}")),
        "{recreated}"
    );

    // The same delivery again (same revision): sent now, then never again.
    let (status, answer) = post(&url, body.clone(), &headers).await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["stored"], &answer["command_sent"]),
        (&json!(false), &json!(true)),
        "{answer}"
    );
    let (status, answer) = post(&url, body.clone(), &headers).await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            &answer["stored"],
            &answer["command_sent"],
            &answer["command_pending"]
        ),
        (&json!(false), &json!(false), &json!(false)),
        "{answer}"
    );

    // The poller sends `paid` on its next run, then moves the cursor on.
    wait_for(
        "the poller queueing the pending order",
        Duration::from_secs(30),
        || async {
            let kept = store.get(SHOP, &paid.to_string()).await?;
            Ok(kept
                .and_then(|k| k.command_rev_ms)
                .filter(|rev| *rev == paid_rev))
        },
    )
    .await?;
    wait_for(
        "the cursor moving past the order",
        Duration::from_secs(30),
        || async {
            let cursor = store.cursor(SHOP).await?;
            Ok(cursor.filter(|c| c.time().map(|t| t.timestamp_millis()) == Some(unpaid_rev)))
        },
    )
    .await?;

    // Exactly one command per order, however many runs and deliveries met it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut commands = Commands::default();
    commands
        .drain(&sqs, &commands_queue, Duration::from_secs(3))
        .await?;
    assert_eq!(commands.count(hidden), 1, "{:?}", commands.seen);
    assert_eq!(commands.count(paid), 1, "{:?}", commands.seen);
    assert_eq!(commands.count(unpaid), 0, "{:?}", commands.seen);
    assert_eq!(commands.seen.len(), 2, "{:?}", commands.seen);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_reads_every_page_and_stores_each_order_once() -> anyhow::Result<()> {
    const ORDERS: u64 = 105;
    let dir = harness::TestDir::new()?;
    let logs = &dir.path().to_path_buf();
    let skus = ["KAWA-1".to_owned(), "HERB-1".to_owned()];
    let shop = WooStandinProcess::start_with(None, Some(&skus), None, logs)?;
    // Placed before the cloud starts: its first poll finds them all, more
    // than one page (100 per page) of them.
    let mut ids = Vec::new();
    for n in 0..ORDERS {
        let placed = shop
            .place_order(new_order(&format!("k{n}@example.pl")))
            .await?;
        ids.push(placed["id"].as_u64().context("id")?);
    }
    let cloud = LocalCloud::start_with_host_args(
        logs,
        "orders-paging",
        Some(shop.shop_parameters(SHOP, "Detaliczna", &["MAG"], 20, 20)),
        &["--schedule-every", "poller=2"],
    )?;
    let config = sdk_config(&cloud.emulator.endpoint()).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = cloud.stack.output("StateTableName")?.to_owned();
    let commands_queue = cloud.stack.output("CommandsQueueUrl")?.to_owned();
    let store = OrderStore::new(dynamodb.clone(), &table, 30);

    let mut commands = Commands::default();
    let deadline = Instant::now() + Duration::from_secs(90);
    while ids.iter().any(|id| commands.count(*id) == 0) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {ORDERS} orders on the commands queue",
            commands.seen.len()
        );
        commands
            .drain(&sqs, &commands_queue, Duration::from_millis(500))
            .await?;
    }
    // A few more runs: nothing new.
    tokio::time::sleep(Duration::from_secs(5)).await;
    commands
        .drain(&sqs, &commands_queue, Duration::from_secs(3))
        .await?;
    for id in &ids {
        assert_eq!(commands.count(*id), 1, "order {id}: {:?}", commands.seen);
    }
    assert_eq!(commands.seen.len(), ids.len(), "{:?}", commands.seen);

    // One stored item per order.
    let mut stored = 0;
    let mut start = None;
    loop {
        let out = dynamodb
            .query()
            .table_name(&table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("order#{SHOP}")),
            )
            .set_exclusive_start_key(start)
            .send()
            .await?;
        stored += out.items.unwrap_or_default().len();
        start = out.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    assert_eq!(stored, ids.len(), "one item per order");

    // The first run read two pages.
    let pages: Vec<String> = shop
        .requests()
        .await?
        .iter()
        .filter(|r| {
            r["method"] == "GET" && r["path"].as_str().is_some_and(|p| p.ends_with("/orders"))
        })
        .filter_map(|r| r["query"].as_str().map(str::to_owned))
        .collect();
    assert!(
        pages.iter().any(|q| q.contains("page=2")),
        "a second page was read: {pages:?}"
    );

    // The cursor is the newest revision seen.
    let mut newest = 0;
    for id in &ids {
        let kept = store.get(SHOP, &id.to_string()).await?.context("stored")?;
        assert!(kept.command_rev_ms.is_some(), "order {id} marked as queued");
        newest = newest.max(kept.revision_ms);
    }
    let cursor = store.cursor(SHOP).await?.context("a cursor")?;
    assert_eq!(cursor.time().map(|t| t.timestamp_millis()), Some(newest));
    Ok(())
}

/// A poll that reaches its page limit with pages left goes on at the next
/// page and moves the cursor only when it has read them all. The orders on
/// the later pages (higher ids) here have older revisions than those on
/// the first page, by more than the overlap: a cursor moved to the first
/// page's newest revision would pass them for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_that_reaches_its_page_limit_goes_on_from_there() -> anyhow::Result<()> {
    const ORDERS: u64 = 105;
    let dir = harness::TestDir::new()?;
    let logs = &dir.path().to_path_buf();
    let skus = ["KAWA-1".to_owned(), "HERB-1".to_owned()];
    let shop = WooStandinProcess::start_with(None, Some(&skus), None, logs)?;
    let mut ids = Vec::new();
    for n in 0..ORDERS {
        let placed = shop
            .place_order(new_order(&format!("p{n}@example.pl")))
            .await?;
        ids.push(placed["id"].as_u64().context("id")?);
    }
    ids.sort_unstable();
    // The first page (the 100 lowest ids) is modified again 3 s later: its
    // revisions are newer than the second page's by more than the 1 s
    // overlap below.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let http = reqwest::Client::new();
    for id in &ids[..100] {
        http.put(format!("{}/wp-json/wc/v3/orders/{id}", shop.base_url))
            .basic_auth(&shop.consumer_key, Some(&shop.consumer_secret))
            .json(&json!({"customer_note": "Proszę o fakturę"}))
            .send()
            .await?
            .error_for_status()?;
    }
    let cloud = LocalCloud::start_with_parameters(
        logs,
        "orders-page-limit",
        Some(shop.shop_parameters(SHOP, "Detaliczna", &["MAG"], 50, 50)),
        &["--schedule-every", "poller=2"],
        &["OrderPollMaxPages=1", "OrderPollOverlapSeconds=1"],
    )?;
    let config = sdk_config(&cloud.emulator.endpoint()).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = cloud.stack.output("StateTableName")?.to_owned();
    let commands_queue = cloud.stack.output("CommandsQueueUrl")?.to_owned();
    let store = OrderStore::new(dynamodb.clone(), &table, 30);

    let mut commands = Commands::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ids.iter().any(|id| commands.count(*id) == 0) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {ORDERS} orders on the commands queue; missing: {:?}",
            commands.seen.len(),
            ids.iter()
                .filter(|id| commands.count(**id) == 0)
                .collect::<Vec<_>>()
        );
        commands
            .drain(&sqs, &commands_queue, Duration::from_millis(500))
            .await?;
    }
    for id in &ids {
        assert_eq!(commands.count(*id), 1, "order {id}: {:?}", commands.seen);
    }

    // Every page read, the cursor is the newest revision and nothing is
    // left to resume.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (cursor, resume) = store.poll_position(SHOP).await?;
        let mut newest = 0;
        for id in &ids {
            let kept = store.get(SHOP, &id.to_string()).await?.context("stored")?;
            newest = newest.max(kept.revision_ms);
        }
        if resume.is_none()
            && cursor
                .as_ref()
                .and_then(|c| c.time())
                .map(|t| t.timestamp_millis())
                == Some(newest)
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "cursor {cursor:?}, resume {resume:?}, newest revision {newest}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// A backlog of changed orders bigger than one poller invocation can take
/// in (a slow shop host) moves forward with each run: each run is cut off
/// at its deadline, as Lambda does, but records after each page where to go
/// on, so the next run does not start again at the first page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_cut_off_at_its_deadline_goes_on_at_the_next_page() -> anyhow::Result<()> {
    const ORDERS: u64 = 250;
    const BUDGET: Duration = Duration::from_secs(12);
    let dir = harness::TestDir::new()?;
    let logs = &dir.path().to_path_buf();
    let skus = ["KAWA-1".to_owned(), "HERB-1".to_owned()];
    let shop = WooStandinProcess::start_with(None, Some(&skus), None, logs)?;
    let mut ids = Vec::new();
    for n in 0..ORDERS {
        let placed = shop
            .place_order(new_order(&format!("d{n}@example.pl")))
            .await?;
        ids.push(placed["id"].as_u64().context("id")?);
    }
    let cloud = LocalCloud::start_with_parameters(
        logs,
        "orders-deadline",
        Some(shop.shop_parameters(SHOP, "Detaliczna", &["MAG"], 50, 50)),
        // The host's own poller stays out of the way: the test runs it.
        &["--schedule-every", "poller=3600"],
        &[],
    )?;
    // A slow host: each page of orders takes 5 s to answer, so even once
    // its orders are stored (taking them in again is quick) 3 pages do not
    // fit in one run.
    shop.set_faults(json!({"latency_ms": 5000})).await?;
    let config = sdk_config(&cloud.emulator.endpoint()).await;
    let clients = functions::aws::Clients::from_config(&config);
    let env = functions::env::FunctionEnv::from_map(cloud.stack.function("poller")?.environment())
        .with_shop_secrets(&clients)
        .await?;
    let poller = functions::poller::Poller::new(&clients, &env)?;
    let table = cloud.stack.output("StateTableName")?.to_owned();
    let store = OrderStore::new(aws_sdk_dynamodb::Client::new(&config), &table, 30);

    let mut runs = 0;
    loop {
        runs += 1;
        anyhow::ensure!(runs <= 6, "the poll did not get through 3 pages in 5 runs");
        // Lambda ends the invocation at its deadline whatever the handler does.
        let _ = tokio::time::timeout(
            BUDGET,
            poller.handle_until(Value::Null, functions::Deadline::after(BUDGET)),
        )
        .await;
        let (cursor, resume) = store.poll_position(SHOP).await?;
        if cursor.is_some() && resume.is_none() {
            break;
        }
    }
    for id in &ids {
        anyhow::ensure!(
            store.get(SHOP, &id.to_string()).await?.is_some(),
            "order {id} stored after {runs} runs"
        );
    }
    println!("{ORDERS} orders polled in {runs} runs");
    Ok(())
}
