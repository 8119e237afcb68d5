mod common;

use std::time::{Duration, Instant};

use common::*;
use woo_standin::WooOptions;

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let w = start_with(WooOptions {
        rate_limit_per_sec: Some(5),
        ..Default::default()
    })
    .await;
    // All eight at once, so they fall inside one second however busy the
    // machine (they were sent one after another: test audit §2).
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = format!("{}/products", w.api_url());
        tasks.push(tokio::spawn(async move {
            let r = client()
                .get(url)
                .basic_auth(KEY, Some(SECRET))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.headers().get("retry-after").cloned())
        }));
    }
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for t in tasks {
        let (status, header) = t.await.unwrap();
        if status == 429 {
            retry_after = header;
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3);
    let ra: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!(ra >= 1);
    let s = w.stats();
    assert_eq!(s.rate_limited, 3);
    assert_eq!(s.max_admitted_in_any_1s, 5);
    assert_eq!(s.max_requests_in_any_1s, 8);
    assert_eq!(s.count("GET /products"), 8);
    w.shutdown().await;
}

#[tokio::test]
async fn a_paced_client_never_passes_the_limit() {
    let w = start_with(WooOptions {
        rate_limit_per_sec: Some(10),
        ..Default::default()
    })
    .await;
    // About 8 requests per second for ~1.5 s: at least 125 ms between sends.
    let mut last: Option<Instant> = None;
    for _ in 0..12 {
        if let Some(l) = last {
            tokio::time::sleep_until((l + Duration::from_millis(125)).into()).await;
        }
        last = Some(Instant::now());
        assert_eq!(get(&w, "/orders").await.status(), 200);
    }
    let s = w.stats();
    assert_eq!(s.rate_limited, 0);
    assert!(s.max_requests_in_any_1s <= 10, "{s:?}");
    assert_eq!(s.count("GET /orders"), 12, "{s:?}");
    w.shutdown().await;
}

#[tokio::test]
async fn injected_503_then_recovery() {
    let w = start().await;
    w.faults().fail_next(2, 503);
    assert_eq!(get(&w, "/products").await.status(), 503);
    assert_eq!(get(&w, "/products").await.status(), 503);
    assert_eq!(get(&w, "/products").await.status(), 200);
    assert_eq!(w.stats().injected_errors, 2);
    // With a Retry-After, as some hosts send.
    let mut cfg = w.faults().config();
    cfg.fail_next = 1;
    cfg.fail_retry_after = Some(7);
    w.faults().set_config(cfg);
    let r = get(&w, "/products").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "7");
    // Only matching paths.
    w.faults().clear();
    w.faults().fail_next_matching(1, 502, "/orders");
    assert_eq!(get(&w, "/products").await.status(), 200);
    assert_eq!(get(&w, "/orders").await.status(), 502);
    w.shutdown().await;
}

#[tokio::test]
async fn injected_timeout_hangs_but_the_write_happens() {
    let w = start().await;
    let id = w.add_product(product("T1", "t", "1.00", 1)).unwrap();
    w.faults().hang_next(1, Duration::from_millis(1500));
    let r = client()
        .put(format!("{}/products/{id}", w.api_url()))
        .basic_auth(KEY, Some(SECRET))
        .timeout(Duration::from_millis(300))
        .json(&serde_json::json!({"stock_quantity": 42}))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
    // Processed before the hang: the client timed out, the shop changed anyway.
    let deadline = Instant::now() + Duration::from_secs(3);
    while w.product(id).unwrap().stock_quantity != Some(42) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(w.product(id).unwrap().stock_quantity, Some(42));
    assert_eq!(w.stats().injected_timeouts, 1);
    // The next request is fine.
    assert_eq!(get(&w, &format!("/products/{id}")).await.status(), 200);
    w.shutdown().await;
}

#[tokio::test]
async fn control_api_exposes_state_and_faults() {
    let w = start().await;
    w.add_product(product("C-1", "Łódka", "3.00", 2)).unwrap();
    let c = client();
    let v: serde_json::Value = c
        .get(format!("{}/__standin/products/C-1", w.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["name"], "Łódka");
    let r = c
        .put(format!("{}/__standin/faults", w.base_url()))
        .json(&serde_json::json!({"fail_next": 1, "fail_status": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&w, "/products").await.status(), 500);
    let r = c
        .put(format!("{}/__standin/rate-limit", w.base_url()))
        .json(&serde_json::json!({"per_sec": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&w, "/products").await.status(), 200);
    assert_eq!(get(&w, "/products").await.status(), 429);
    let stats: serde_json::Value = c
        .get(format!("{}/__standin/stats", w.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["rate_limited"], 1);
    let log: Vec<serde_json::Value> = c
        .get(format!("{}/__standin/requests?limit=2", w.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1]["status"], 429);
    let state: serde_json::Value = c
        .get(format!("{}/__standin/state", w.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(state["products"].as_object().unwrap().len() == 1);
    w.shutdown().await;
}

#[tokio::test]
async fn concurrency_limit_and_latency() {
    let w = start().await;
    // Long enough that the four requests overlap on a busy machine.
    w.faults().set_latency(Duration::from_millis(3000));
    w.faults().set_max_concurrent(Some(2));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = format!("{}/products", w.api_url());
        tasks.push(tokio::spawn(async move {
            client()
                .get(url)
                .basic_auth(KEY, Some(SECRET))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(ok + refused, 4, "{statuses:?}");
    assert!(ok >= 2 && refused >= 1, "{statuses:?}");
    let s = w.stats();
    assert_eq!(s.rejected_concurrency, refused as u64);
    assert!(s.max_in_flight >= 3, "{s:?}");
    w.shutdown().await;
}
