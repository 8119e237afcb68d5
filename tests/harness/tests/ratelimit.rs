//! The shared rate bucket against the AWS emulator: two concurrent callers
//! together never get more than the bucket allows and finish close to the
//! ideal time; a penalty holds everyone back until it ends.
//!
//! moto (5.2) runs requests on threads and checks a condition expression
//! and applies the write as two steps without a lock, so two conditional
//! writes arriving together can both pass: seen here as a sixth token
//! granted in the first 200 ms. DynamoDB (and LocalStack) make every
//! request atomic. The tests therefore reach the emulator through a proxy
//! that forwards one request at a time, which gives it exactly that
//! per-request atomicity; the callers still race each other freely.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use functions::ratelimit::RateLimiter;
use harness::emulator::{Emulator, sdk_config};

const TABLE: &str = "ratelimit-test";

struct Serial {
    target: String,
    http: reqwest::Client,
    one_at_a_time: tokio::sync::Mutex<()>,
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
async fn serial_proxy(target: String) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let proxy = Arc::new(Serial {
        target,
        http: reqwest::Client::new(),
        one_at_a_time: tokio::sync::Mutex::new(()),
    });
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

/// A running emulator with an empty pk/sk table, and a limiter on it.
async fn limiter(dir: &std::path::Path) -> anyhow::Result<(Emulator, RateLimiter)> {
    let emulator = Emulator::start(dir)?;
    let endpoint = serial_proxy(emulator.endpoint()).await?;
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
    Ok((emulator, RateLimiter::new(client, TABLE)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_callers_share_one_bucket_and_never_exceed_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_emulator, limiter) = limiter(dir.path()).await?;
    const RATE: u32 = 5;
    const BURST: u32 = 5;
    const EACH: usize = 20;

    let start = Instant::now();
    let grants = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let limiter = limiter.clone();
        let grants = Arc::clone(&grants);
        tasks.push(tokio::spawn(async move {
            let mut got = 0;
            while got < EACH {
                let wait = limiter.acquire("shop-a", 1, RATE, BURST).await?;
                if wait.is_zero() {
                    got += 1;
                    if let Ok(mut g) = grants.lock() {
                        g.push(start.elapsed());
                    }
                } else {
                    tokio::time::sleep(wait).await;
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
    // The k-th grant (1-based) happened no earlier than the bucket allows:
    // k ≤ burst + rate × elapsed, in millitokens (10 ms of slack for clock
    // granularity between the Instant here and the wall clock there).
    for (i, at) in grants.iter().enumerate() {
        let k = (i as u128 + 1) * 1000;
        let allowed = u128::from(BURST) * 1000 + u128::from(RATE) * (at.as_millis() + 10);
        ensure!(
            k <= allowed,
            "grant {} at {at:?}: more than {BURST} + {RATE}/s allow",
            i + 1
        );
    }
    // Ideal: 5 at once, then 35 more at 5/s = 7 s.
    let ideal =
        Duration::from_millis((2 * EACH as u64 - u64::from(BURST)) * 1000 / u64::from(RATE));
    ensure!(
        total >= ideal - Duration::from_millis(50),
        "too fast: {total:?}"
    );
    ensure!(
        total <= ideal + ideal / 10,
        "took {total:?}, more than 10% over the ideal {ideal:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_penalty_blocks_until_it_passes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_emulator, limiter) = limiter(dir.path()).await?;
    // A full bucket of 10 at 10/s.
    ensure!(limiter.acquire("shop-b", 1, 10, 10).await?.is_zero());
    let penalty = Duration::from_millis(1500);
    let penalised_at = Instant::now();
    limiter.penalise("shop-b", penalty).await?;
    // A shorter penalty later does not shorten it.
    limiter
        .penalise("shop-b", Duration::from_millis(100))
        .await?;

    let wait = limiter.acquire("shop-b", 1, 10, 10).await?;
    // Until the penalty ends, plus one token at 10/s.
    ensure!(
        wait >= penalty - penalised_at.elapsed() && wait <= penalty + Duration::from_millis(100),
        "told to wait {wait:?}"
    );
    // Other shops are not affected.
    ensure!(limiter.acquire("shop-c", 1, 10, 10).await?.is_zero());

    let granted = limiter
        .acquire_within("shop-b", 1, 10, 10, Duration::from_secs(5))
        .await?;
    let after = penalised_at.elapsed();
    ensure!(granted, "not granted within 5 s");
    ensure!(
        after >= penalty,
        "granted {after:?} after a {penalty:?} penalty"
    );
    ensure!(
        after <= penalty + Duration::from_millis(800),
        "granted late: {after:?}"
    );
    // A request that could never fit is refused, not waited for.
    ensure!(limiter.acquire("shop-b", 11, 10, 10).await.is_err());
    Ok(())
}
