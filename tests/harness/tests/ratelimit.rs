//! The shared rate bucket against the AWS emulator: two concurrent callers
//! together never get more than the bucket allows; one instance never sends
//! more than the rate in a second whatever the burst; a penalty holds
//! everyone back until it ends, and the stored bucket says until when; the
//! shop's gate turns a token it cannot wait for into a rate limit.
//!
//! moto (5.2) runs requests on threads and checks a condition expression
//! and applies the write as two steps without a lock, so two conditional
//! writes arriving together can both pass: seen here as a sixth token
//! granted in the first 200 ms. DynamoDB (and LocalStack) make every
//! request atomic. The tests therefore reach the emulator through a proxy
//! that forwards one request at a time, which gives it exactly that
//! per-request atomicity; the callers still race each other freely.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use functions::ratelimit::{Acquired, RateLimitError, RateLimiter, ShopGate};
use functions::shop::{ONE_REQUEST, REQUESTS, RateLimit, RequestGate, ShopError};
use harness::emulator::{Emulator, sdk_config};

/// `rate` a second with room for `burst`.
fn limit(rate: u32, burst: u32) -> RateLimit {
    RateLimit::per_second(rate).with_burst(burst)
}

const TABLE: &str = "ratelimit-test";

struct Serial {
    target: String,
    http: reqwest::Client,
    one_at_a_time: tokio::sync::Mutex<()>,
    /// Added to every GetItem: a slow read of the bucket.
    read_delay: Duration,
    calls: Arc<Calls>,
}

/// The DynamoDB calls the proxy forwarded, by kind.
#[derive(Default)]
struct Calls {
    reads: AtomicU64,
    writes: AtomicU64,
}

/// Forwards one request, holding the lock from send to last byte.
async fn forward(State(proxy): State<Arc<Serial>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut outgoing = proxy
        .http
        .request(parts.method, format!("{}{path}", proxy.target))
        .body(body);
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let is_read = target.ends_with(".GetItem");
    if target.ends_with(".UpdateItem") {
        proxy.calls.writes.fetch_add(1, Ordering::SeqCst);
    }
    if is_read {
        proxy.calls.reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(proxy.read_delay).await;
    }
    let _turn = proxy.one_at_a_time.lock().await;
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(err) => return (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let Ok(bytes) = answer.bytes().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != header::CONTENT_LENGTH
            && name != header::TRANSFER_ENCODING
            && name != header::CONNECTION
        {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// The proxy's endpoint; it serves until the test's runtime ends.
async fn serial_proxy(
    target: String,
    read_delay: Duration,
    calls: Arc<Calls>,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let proxy = Arc::new(Serial {
        target,
        http: reqwest::Client::new(),
        one_at_a_time: tokio::sync::Mutex::new(()),
        read_delay,
        calls,
    });
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

/// A running emulator with an empty pk/sk table, and a limiter on it.
async fn limiter(
    dir: &std::path::Path,
) -> anyhow::Result<(Emulator, RateLimiter, aws_sdk_dynamodb::Client)> {
    limiter_with_slow_reads(dir, Duration::ZERO).await
}

/// [`limiter`], each read of a bucket taking `read_delay` longer.
async fn limiter_with_slow_reads(
    dir: &std::path::Path,
    read_delay: Duration,
) -> anyhow::Result<(Emulator, RateLimiter, aws_sdk_dynamodb::Client)> {
    let (emulator, limiter, client, _) = limiter_counting_calls(dir, read_delay).await?;
    Ok((emulator, limiter, client))
}

/// [`limiter_with_slow_reads`], with the DynamoDB calls it makes counted.
async fn limiter_counting_calls(
    dir: &std::path::Path,
    read_delay: Duration,
) -> anyhow::Result<(Emulator, RateLimiter, aws_sdk_dynamodb::Client, Arc<Calls>)> {
    let emulator = Emulator::start(dir)?;
    let calls = Arc::new(Calls::default());
    let endpoint = serial_proxy(emulator.endpoint(), read_delay, calls.clone()).await?;
    let config = sdk_config(&endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    client
        .create_table()
        .table_name(TABLE)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .context("creating the table")?;
    Ok((
        emulator,
        RateLimiter::new(client.clone(), TABLE),
        client,
        calls,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_callers_share_one_bucket_and_never_exceed_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_emulator, _, client) = limiter(dir.path()).await?;
    const RATE: u32 = 5;
    const BURST: u32 = 5;
    const EACH: usize = 20;

    let start = Instant::now();
    let grants = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        // Two instances (two Lambda invocations), racing at the bucket.
        let limiter = RateLimiter::new(client.clone(), TABLE);
        let grants = Arc::clone(&grants);
        tasks.push(tokio::spawn(async move {
            let mut got = 0;
            while got < EACH {
                // 7 s is ideal; a limiter that stops granting fails here
                // rather than hanging the test.
                anyhow::ensure!(
                    start.elapsed() < Duration::from_secs(60),
                    "{got} of {EACH} granted in 60 s"
                );
                match limiter.acquire("shop-a", 1, &limit(RATE, BURST)).await? {
                    Acquired::Granted => {
                        got += 1;
                        if let Ok(mut g) = grants.lock() {
                            g.push(start.elapsed());
                        }
                    }
                    Acquired::Wait(wait) => tokio::time::sleep(wait).await,
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let total = start.elapsed();
    let mut grants = grants
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    grants.sort();
    ensure!(grants.len() == 2 * EACH, "{} grants", grants.len());
    ensure_within_the_bucket(&grants, BURST, RATE)?;
    // Ideal: 5 at once, then 35 more at 5/s = 7 s.
    let ideal =
        Duration::from_millis((2 * EACH as u64 - u64::from(BURST)) * 1000 / u64::from(RATE));
    ensure!(
        total >= ideal - Duration::from_millis(50),
        "too fast: {total:?}"
    );
    // Liveness, not a benchmark: a limiter that wastes a third of the
    // shop's limit fails. The bound was 10 % over the ideal, which two
    // cores busy with other tests cannot promise (test audit §2).
    ensure!(
        total <= ideal + ideal / 2,
        "took {total:?}, more than 50% over the ideal {ideal:?}"
    );
    Ok(())
}

/// The k-th grant (1-based, `grants` sorted, times since the bucket was
/// first asked) came no earlier than the bucket allows: k ≤ burst + rate ×
/// elapsed, in millitokens (10 ms of slack for clock granularity between
/// the Instant here and the wall clock the limiter reads).
fn ensure_within_the_bucket(grants: &[Duration], burst: u32, rate: u32) -> anyhow::Result<()> {
    for (i, at) in grants.iter().enumerate() {
        let k = (i as u128 + 1) * 1000;
        let allowed = u128::from(burst) * 1000 + u128::from(rate) * (at.as_millis() + 10);
        ensure!(
            k <= allowed,
            "grant {} at {at:?}: more than {burst} + {rate}/s allow: {grants:?}",
            i + 1
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_in_one_instance_take_turns_at_the_bucket_instead_of_racing() -> anyhow::Result<()>
{
    // 40 requests of one instance at once (an Allegro write's commands),
    // a bucket with room for all of them: each grant is one read and one
    // conditional write. Racing, the 40 read one state, one write wins and
    // 39 lose and read again, round after round.
    let dir = tempfile::tempdir()?;
    let (_emulator, limiter, _, calls) = limiter_counting_calls(dir.path(), Duration::ZERO).await?;
    const CALLERS: u32 = 40;
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let limiter = limiter.clone();
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            loop {
                ensure!(
                    start.elapsed() < Duration::from_secs(30),
                    "not granted in 30 s"
                );
                match limiter.acquire("shop-t", 1, &limit(1000, CALLERS)).await? {
                    Acquired::Granted => return anyhow::Ok(()),
                    Acquired::Wait(wait) => tokio::time::sleep(wait).await,
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let (reads, writes) = (
        calls.reads.load(Ordering::SeqCst),
        calls.writes.load(Ordering::SeqCst),
    );
    ensure!(
        reads == u64::from(CALLERS) && writes == u64::from(CALLERS),
        "{CALLERS} grants took {reads} reads and {writes} writes of the bucket"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_came_due_while_its_bucket_was_read_is_not_taken_unasked() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    // Each read of the bucket takes 60 ms; at 10/s a token comes every
    // 100 ms. A caller asking 60 ms after a grant is told to wait 40 ms,
    // which has passed when the read returns: a wait of zero, which the
    // limiter used to return as a grant without taking the token (found
    // under load by two_callers_share_one_bucket_and_never_exceed_it: 8
    // grants in 228 ms from a bucket of 5 at 5/s).
    let (_emulator, limiter, _) =
        limiter_with_slow_reads(dir.path(), Duration::from_millis(60)).await?;
    let start = Instant::now();
    let mut grants = Vec::new();
    while start.elapsed() < Duration::from_millis(1500) {
        match limiter.acquire("shop-s", 1, &limit(10, 1)).await? {
            Acquired::Granted => grants.push(start.elapsed()),
            Acquired::Wait(wait) => tokio::time::sleep(wait).await,
        }
    }
    ensure!(grants.len() >= 5, "only {} grants in 1.5 s", grants.len());
    ensure_within_the_bucket(&grants, 1, 10)
}

/// The stored bucket, as `(tokens, updated_ms)`.
async fn stored(
    client: &aws_sdk_dynamodb::Client,
    shop: &str,
) -> anyhow::Result<Option<(i64, i64)>> {
    let item = client
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S("bucket".into()))
        .key("sk", AttributeValue::S(shop.into()))
        .consistent_read(true)
        .send()
        .await?
        .item;
    let Some(item) = item else { return Ok(None) };
    let number = |name: &str| -> anyhow::Result<i64> {
        Ok(item
            .get(name)
            .and_then(|v| v.as_n().ok())
            .with_context(|| format!("{name} missing"))?
            .parse()?)
    };
    Ok(Some((number("tokens")?, number("updated_ms")?)))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The penalty as stored: an empty bucket whose refill starts `wait` after
/// a moment between `before` and `after`.
async fn ensure_penalised(
    client: &aws_sdk_dynamodb::Client,
    shop: &str,
    wait_ms: i64,
    before: i64,
    after: i64,
) -> anyhow::Result<()> {
    let bucket = stored(client, shop).await?;
    let Some((tokens, until)) = bucket else {
        anyhow::bail!("no bucket stored for {shop}");
    };
    ensure!(tokens == 0, "{tokens} millitokens left after a penalty");
    ensure!(
        (before + wait_ms..=after + wait_ms).contains(&until),
        "penalised until {until}, expected {wait_ms} ms after {before}..={after}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_penalty_blocks_until_it_passes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_emulator, limiter, client) = limiter(dir.path()).await?;
    // A full bucket of 10 at 10/s.
    ensure!(limiter.acquire("shop-b", 1, &limit(10, 10)).await? == Acquired::Granted);
    let penalty = Duration::from_millis(1500);
    let penalised_at = Instant::now();
    let before = now_ms();
    limiter.penalise("shop-b", penalty).await?;
    let after = now_ms();
    ensure_penalised(&client, "shop-b", 1500, before, after).await?;
    // A shorter penalty later does not shorten it.
    limiter
        .penalise("shop-b", Duration::from_millis(100))
        .await?;
    ensure_penalised(&client, "shop-b", 1500, before, after).await?;

    let Acquired::Wait(wait) = limiter.acquire("shop-b", 1, &limit(10, 10)).await? else {
        anyhow::bail!("granted during a penalty");
    };
    // Until the penalty ends, plus one token at 10/s: arithmetic on the
    // stored bucket, not a measured time.
    ensure!(
        wait >= penalty - penalised_at.elapsed() && wait <= penalty + Duration::from_millis(100),
        "told to wait {wait:?}"
    );
    // Other shops are not affected.
    ensure!(limiter.acquire("shop-c", 1, &limit(10, 10)).await? == Acquired::Granted);

    let granted = limiter
        .acquire_within("shop-b", 1, &limit(10, 10), Duration::from_secs(5))
        .await?;
    let waited = penalised_at.elapsed();
    ensure!(granted, "not granted within 5 s");
    ensure!(
        waited >= penalty,
        "granted {waited:?} after a {penalty:?} penalty"
    );
    // A request that could never fit is refused, not waited for; one that
    // fills the whole burst is not.
    ensure!(matches!(
        limiter.acquire("shop-b", 11, &limit(10, 10)).await,
        Err(RateLimitError::Invalid { .. })
    ));
    ensure!(limiter.acquire("shop-d", 10, &limit(10, 10)).await? == Acquired::Granted);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_sends_at_most_the_rate_in_any_second_whatever_the_burst() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let (_emulator, limiter, _) = limiter(dir.path()).await?;
    // The bucket holds 10, so it grants 10 at once; a host counting
    // requests in a sliding second would see 10 where the shop allows 5.
    let mut grants = Vec::new();
    let start = Instant::now();
    for _ in 0..7 {
        let granted = limiter
            .acquire_within("shop-p", 1, &limit(5, 10), Duration::from_secs(10))
            .await?;
        ensure!(granted, "not granted within 10 s");
        grants.push(start.elapsed());
    }
    // A host's second plus the pacing margin: 2.5 % of a token's 200 ms,
    // five times.
    for (i, pair) in grants.windows(6).enumerate() {
        let span = pair[5] - pair[0];
        ensure!(
            span >= Duration::from_millis(1025),
            "grants {i}..={}: 6 within {span:?}: {grants:?}",
            i + 5
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shops_gate_leaves_a_token_it_cannot_wait_for_and_holds_everyone_back_after_a_429()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_emulator, limiter, client) = limiter(dir.path()).await?;
    // One request a second, a burst of one, and 200 ms to wait at most.
    let gate = ShopGate::new(
        limiter,
        "shop-g",
        BTreeMap::from([(REQUESTS.to_owned(), limit(1, 1))]),
        Duration::from_millis(200),
    );
    gate.admit(ONE_REQUEST).await?;
    let asked = Instant::now();
    match gate.admit(ONE_REQUEST).await {
        Err(ShopError::RateLimited { retry_after: None }) => {}
        other => anyhow::bail!("a token 1 s away with 200 ms to wait: {other:?}"),
    }
    // Told at once, not after sleeping towards a token it cannot have.
    ensure!(
        asked.elapsed() < Duration::from_millis(900),
        "the refusal took {:?}",
        asked.elapsed()
    );

    // A 429 without Retry-After holds the bucket for a second...
    let before = now_ms();
    gate.penalise(None).await;
    ensure_penalised(&client, "shop-g", 1000, before, now_ms()).await?;
    // ...and one with it for as long as the shop said.
    let before = now_ms();
    gate.penalise(Some(Duration::from_secs(3))).await;
    ensure_penalised(&client, "shop-g", 3000, before, now_ms()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_bucket_and_a_zero_rate_are_errors_and_nothing_asked_for_is_free()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_emulator, limiter, client) = limiter(dir.path()).await?;
    client
        .put_item()
        .table_name(TABLE)
        .item("pk", AttributeValue::S("bucket".into()))
        .item("sk", AttributeValue::S("shop-m".into()))
        .item("tokens", AttributeValue::S("plenty".into()))
        .item("updated_ms", AttributeValue::N("1".into()))
        .send()
        .await?;
    let got = limiter.acquire("shop-m", 1, &limit(5, 5)).await;
    ensure!(
        matches!(got, Err(RateLimitError::Malformed { .. })),
        "a bucket whose tokens are text: {got:?}"
    );
    let got = limiter.acquire("shop-z", 1, &limit(0, 5)).await;
    ensure!(
        matches!(got, Err(RateLimitError::Invalid { .. })),
        "a zero rate: {got:?}"
    );
    ensure!(limiter.acquire("shop-z", 0, &limit(5, 5)).await? == Acquired::Granted);
    ensure!(
        stored(&client, "shop-z").await?.is_none(),
        "asking for nothing wrote a bucket"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_costs_its_tokens_in_each_named_limit_from_its_own_bucket() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let (_emulator, limiter, client) = limiter(dir.path()).await?;
    // Allegro-like: plenty of requests, five offer edits a minute.
    let gate = ShopGate::new(
        limiter,
        "shop-e",
        BTreeMap::from([
            (REQUESTS.to_owned(), limit(100, 100)),
            ("offer_edits".to_owned(), RateLimit::per_minute(5)),
        ]),
        Duration::from_millis(300),
    );
    gate.admit(&[(REQUESTS, 1), ("offer_edits", 5)]).await?;
    ensure!(
        stored(&client, "shop-e#offer_edits").await?.map(|(t, _)| t) == Some(0),
        "five edits leave the edits bucket empty"
    );
    ensure!(
        stored(&client, "shop-e").await?.map(|(t, _)| t) == Some(99_000),
        "the request bucket (the shop's own key) paid one"
    );
    // The next edit is 12 s away: refused within the wait, while a plain
    // request still goes.
    match gate.admit(&[(REQUESTS, 1), ("offer_edits", 1)]).await {
        Err(ShopError::RateLimited { .. }) => {}
        other => anyhow::bail!("an edit 12 s away with 300 ms to wait: {other:?}"),
    }
    gate.admit(ONE_REQUEST).await?;
    // A limit the shop does not have is the connector's mistake, said so.
    match gate.admit(&[("orders", 1)]).await {
        Err(ShopError::Permanent(message)) => ensure!(message.contains("orders"), "{message}"),
        other => anyhow::bail!("an unknown limit: {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_shop_reports_left_lowers_the_shared_bucket_and_never_raises_it()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_emulator, limiter, client) = limiter(dir.path()).await?;
    // Shoper-like: a bucket of 10 leaking 2 a second.
    let bucket = limit(2, 10);
    let gate = ShopGate::new(
        limiter.clone(),
        "shop-r",
        BTreeMap::from([(REQUESTS.to_owned(), bucket)]),
        Duration::from_millis(100),
    );
    // Another client of the same account used 8 of 10: the shop says 2 left.
    gate.report(REQUESTS, 2).await;
    let (tokens, _) = stored(&client, "shop-r")
        .await?
        .context("a report writes the bucket")?;
    ensure!(tokens == 2000, "{tokens} millitokens after a report of 2");
    ensure!(
        matches!(
            limiter.acquire("shop-r", 3, &bucket).await?,
            Acquired::Wait(_)
        ),
        "three tokens granted from a bucket the shop said holds two"
    );
    // Reporting more than the bucket holds changes nothing.
    gate.report(REQUESTS, 10).await;
    let (after, _) = stored(&client, "shop-r").await?.context("still stored")?;
    ensure!(
        after <= tokens + 2000,
        "a report of 10 raised the bucket from {tokens} to {after}"
    );
    Ok(())
}
