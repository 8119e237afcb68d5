//! The request bucket: headers on every answer, 429 with `Retry-After` when full, leaking on the
//! stand-in's clock.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn every_answer_reports_the_bucket_and_the_11th_call_is_refused() {
    let s = start_with(|o| o.frozen_clock = true).await;
    let t = token(&s);
    for i in 1..=10u32 {
        // Successes and handler errors alike count and report.
        let path = if i % 2 == 0 {
            "statuses"
        } else {
            "products/999"
        };
        let r = get(&s, &t, path).await;
        assert!(r.status() == 200 || r.status() == 404);
        assert_eq!(header(&r, "x-shop-api-limit").as_deref(), Some("10"));
        assert_eq!(header(&r, "x-shop-api-bandwidth").as_deref(), Some("2"));
        assert_eq!(header(&r, "x-shop-api-calls"), Some(i.to_string()));
    }
    let r = get(&s, &t, "statuses").await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("1"));
    assert_eq!(header(&r, "x-shop-api-limit").as_deref(), Some("10"));
    assert_eq!(header(&r, "x-shop-api-bandwidth").as_deref(), Some("2"));
    assert_eq!(header(&r, "x-shop-api-calls").as_deref(), Some("10"));
    let v = json(r).await;
    assert_eq!(v["error"], "temporarily_unavailable");
    assert!(v["error_description"].is_string());
    assert_eq!(s.counters().rate_limited, 1);
    // A refused call adds nothing; half a second leaks one unit.
    s.advance_clock(Duration::from_millis(500));
    let r = get(&s, &t, "statuses").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-shop-api-calls").as_deref(), Some("10"));
    assert_eq!(get(&s, &t, "statuses").await.status(), 429);
    // Five seconds empty it.
    s.advance_clock(Duration::from_secs(5));
    let r = get(&s, &t, "statuses").await;
    assert_eq!(header(&r, "x-shop-api-calls").as_deref(), Some("1"));
    assert_eq!(
        s.requests()
            .iter()
            .filter(|r| r.refused.as_deref() == Some("rate_limited"))
            .count(),
        2
    );
}

#[tokio::test]
async fn buckets_are_per_token_and_configurable() {
    let s = start_with(|o| {
        o.frozen_clock = true;
        o.config.bucket_bandwidth = 10;
    })
    .await;
    let a = token(&s);
    let b = s.issue_panel_token(None).access_token;
    for _ in 0..10 {
        assert_eq!(get(&s, &a, "statuses").await.status(), 200);
    }
    assert_eq!(get(&s, &a, "statuses").await.status(), 429);
    let r = get(&s, &b, "statuses").await;
    assert_eq!(r.status(), 200, "another token has its own bucket");
    assert_eq!(header(&r, "x-shop-api-bandwidth").as_deref(), Some("10"));
    s.advance_clock(Duration::from_millis(100));
    assert_eq!(get(&s, &a, "statuses").await.status(), 200);
    // Retry-After rounds up to whole seconds.
    s.configure(|c| c.bucket_bandwidth = 1);
    let r = get(&s, &a, "statuses").await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("1"));
    s.reset_buckets();
    assert_eq!(get(&s, &a, "statuses").await.status(), 200);
}

#[tokio::test]
async fn writes_and_unauthorized_answers_carry_the_headers() {
    let s = start_with(|o| o.frozen_clock = true).await;
    product(&s, "SKU-1", dec!(1.00), 1);
    let t = token(&s);
    let r = send(
        &s,
        &t,
        Method::PUT,
        "product-stocks/1",
        &json!({"stock": 2}),
    )
    .await;
    assert_eq!(header(&r, "x-shop-api-calls").as_deref(), Some("1"));
    let r = send(
        &s,
        &t,
        Method::PUT,
        "product-stocks/1",
        &json!({"price": 0}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(header(&r, "x-shop-api-calls").as_deref(), Some("2"));
    let r = get(&s, "bogus", "statuses").await;
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "x-shop-api-limit").as_deref(), Some("10"));
    s.configure(|c| c.bucket_headers_on_unauthorized = false);
    let r = get(&s, "bogus", "statuses").await;
    assert!(header(&r, "x-shop-api-limit").is_none());
    let log = s.requests();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].bucket_calls, Some(1));
    assert_eq!(log[0].login.as_deref(), Some("webapi"));
    assert_eq!(log[2].refused.as_deref(), Some("unauthorized"));
}
