//! Fault injection and the `/__standin` control API over HTTP.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn fail_next_answers_shoper_envelopes_then_recovers() {
    let s = start().await;
    let t = token(&s);
    s.faults().fail_next(2, 503);
    for _ in 0..2 {
        let (st, v) = status_json(get(&s, &t, "statuses").await).await;
        assert_eq!(st, 503);
        assert_error(&v, "temporarily_unavailable");
    }
    assert_eq!(get(&s, &t, "statuses").await.status(), 200);
    s.faults().fail_next(1, 429);
    let r = get(&s, &t, "statuses").await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("1"));
    assert_eq!(header(&r, "x-shop-api-limit").as_deref(), Some("10"));
    // A 429 without Retry-After (a proxy's) only when asked for.
    let mut cfg = s.faults().config();
    cfg.fail_next = 1;
    cfg.fail_status = 429;
    cfg.fail_without_retry_after = true;
    s.faults().set_config(cfg);
    let r = get(&s, &t, "statuses").await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after"), None);
    s.faults().clear();
    for (status, error) in [
        (402, "access_denied"),
        (409, "server_error"),
        (500, "server_error"),
    ] {
        s.faults().fail_next(1, status);
        let (st, v) = status_json(get(&s, &t, "statuses").await).await;
        assert_eq!(st, status);
        assert_error(&v, error);
    }
    // Only matching paths.
    s.faults().fail_next_matching(1, 500, "product-stocks");
    assert_eq!(get(&s, &t, "statuses").await.status(), 200);
    assert_eq!(get(&s, &t, "product-stocks").await.status(), 500);
    assert_eq!(get(&s, &t, "product-stocks").await.status(), 200);
    // Only one method.
    let mut cfg = s.faults().config();
    cfg.fail_next = 1;
    cfg.fail_status = 503;
    cfg.path_contains = None;
    cfg.method = Some("PUT".into());
    s.faults().set_config(cfg);
    assert_eq!(get(&s, &t, "statuses").await.status(), 200);
    let r = send(&s, &t, Method::PUT, "orders/1", &json!({})).await;
    assert_eq!(r.status(), 503);
    let injected = s
        .requests()
        .iter()
        .filter(|r| r.refused.as_deref() == Some("injected_error"))
        .count();
    assert_eq!(injected, 9);
}

#[tokio::test]
async fn latency_and_hang() {
    let s = start().await;
    let t = token(&s);
    s.faults().set_latency(Duration::from_millis(150));
    let start = Instant::now();
    assert_eq!(get(&s, &t, "statuses").await.status(), 200);
    assert!(start.elapsed() >= Duration::from_millis(150));
    s.faults().clear();
    product(&s, "SKU-1", dec!(1.00), 1);
    s.faults().hang_next(1, Duration::from_secs(5));
    // The client gives up; the write still happened (processed, then hung).
    let r = client()
        .put(format!("{}/product-stocks/1", s.api_url()))
        .bearer_auth(&t)
        .timeout(Duration::from_millis(300))
        .body(json!({"stock": 9}).to_string())
        .send()
        .await;
    assert!(r.is_err(), "timed out");
    assert_eq!(s.stock(1).expect("stock").stock, dec!(9));
}

#[tokio::test]
async fn control_api_drives_the_shop() {
    let s = start().await;
    let (st, v) = control_post(
        &s,
        "products",
        &json!({"code": "C-1", "name": "Kubek", "price": "19.99", "stock": 4}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let stock_id = v["stock"]["stock_id"].as_u64().expect("stock id");
    let pid = v["product"]["product_id"].as_u64().expect("product id");
    let (st, _) = control_post(
        &s,
        &format!("products/{pid}/variants"),
        &json!({"code": "C-1-R", "option_name": "Kolor: czerwony", "price": 21.5, "stock": 2}),
    )
    .await;
    assert_eq!(st, 201);
    let (st, v) = control_get(&s, "stocks?code=C-1-R").await;
    assert_eq!(st, 200);
    assert_eq!(v[0]["price"], "21.5");
    let r = client()
        .patch(format!("{}/stocks/{stock_id}", s.control_url()))
        .json(&json!({"stock": 7}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 200);
    assert_eq!(s.stock(stock_id).expect("stock").stock, dec!(7));

    let (st, v) = control_post(
        &s,
        "orders",
        &json!({"email": "k@x.pl", "lines": [{"code": "C-1", "quantity": 2}], "paid": true}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["sum"], "39.98");
    assert_eq!(v["is_paid"], true);
    let oid = v["order_id"].as_str().expect("id").to_string();
    assert_eq!(s.stock(stock_id).expect("stock").stock, dec!(5));
    let (st, v) = control_post(
        &s,
        &format!("orders/{oid}/status"),
        &json!({"status_id": 8}),
    )
    .await;
    assert_eq!((st, v["status_id"].as_u64()), (200, Some(8)));
    let (st, v) = control_post(
        &s,
        "orders",
        &json!({"lines": [{"code": "NOPE", "quantity": 1}]}),
    )
    .await;
    assert_eq!((st, v["code"].as_str()), (400, Some("invalid_request")));

    // Tokens, expiry and the clock over HTTP.
    let (st, v) = control_post(&s, "tokens", &json!({"kind": "auth"})).await;
    assert_eq!(st, 201);
    let tok = v["access_token"].as_str().expect("token").to_string();
    assert_eq!(get(&s, &tok, "orders").await.status(), 200);
    let (st, _) = control_post(&s, "clock/advance", &json!({"seconds": 2_592_000})).await;
    assert_eq!(st, 200);
    assert_eq!(get(&s, &tok, "orders").await.status(), 401);
    let (_, v) = control_post(&s, "tokens", &json!({"scopes": ["orders_read"]})).await;
    let panel = v["access_token"].as_str().expect("token").to_string();
    assert_eq!(get(&s, &panel, "orders").await.status(), 200);
    assert_eq!(get(&s, &panel, "products").await.status(), 403);
    let (_, v) = control_post(&s, "tokens/expire", &json!({})).await;
    assert!(v["count"].as_u64().is_some_and(|n| n >= 1));

    // Config and faults merge; unknown fields are refused.
    let r = client()
        .put(format!("{}/config", s.control_url()))
        .json(&json!({"bucket_bandwidth": 10, "locale_timezone": "UTC"}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 200);
    assert_eq!(s.config().bucket_bandwidth, 10);
    let r = client()
        .put(format!("{}/config", s.control_url()))
        .json(&json!({"locale_timezone": "Mars/Olympus"}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 400);
    let r = client()
        .put(format!("{}/faults", s.control_url()))
        .json(&json!({"fail_next": 1, "fail_status": 503}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 200);
    let t = s.issue_panel_token(None).access_token;
    assert_eq!(get(&s, &t, "statuses").await.status(), 503);
    let (_, v) = control_get(&s, "requests?limit=1").await;
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["status"], 503);
    let (_, v) = control_get(&s, "counters").await;
    assert!(v["tokens_issued"].as_u64().is_some_and(|n| n >= 3));
    let (st, body) = control_get(&s, "statuses").await;
    assert_eq!((st, body.as_array().map(Vec::len)), (200, Some(11)));
    let r = client()
        .get(format!("{}/", s.control_url()))
        .send()
        .await
        .expect("GET");
    assert!(r.text().await.expect("text").contains("shoper-standin"));
}

#[tokio::test]
async fn shop_local_timestamps_follow_the_configured_zone() {
    let s = start().await;
    product(&s, "SKU-1", dec!(1.00), 5);
    let o = s
        .place_order(shoper_standin::NewOrder::new("a@b.pl").line("SKU-1", 1))
        .expect("order");
    let t = token(&s);
    let warsaw = json(get(&s, &t, &format!("orders/{}", o.order_id)).await).await["date"]
        .as_str()
        .expect("date")
        .to_string();
    s.configure(|c| c.locale_timezone = "UTC".into());
    let utc = json(get(&s, &t, &format!("orders/{}", o.order_id)).await).await["date"]
        .as_str()
        .expect("date")
        .to_string();
    assert_eq!(utc, o.date.format("%Y-%m-%d %H:%M:%S").to_string());
    assert_ne!(warsaw, utc, "Warsaw is UTC+1 or +2");
    let v = json(get(&s, &t, "application-config").await).await;
    assert_eq!(v["locale_timezone"], "UTC");
    // Orders can be edited through the API too.
    let r = send(
        &s,
        &t,
        Method::PUT,
        &format!("orders/{}", o.order_id),
        &json!({"notes_priv": "pilne", "email": "bad"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = send(
        &s,
        &t,
        Method::PUT,
        &format!("orders/{}", o.order_id),
        &json!({"notes_priv": "pilne"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.order(o.order_id).expect("order").notes_priv, "pilne");
}
