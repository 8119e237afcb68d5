//! Webhooks: the `/webhooks` resource, deliveries with Shoper's headers, the SHA-1 signature
//! (checked here with an independent computation), app mode, delivery faults.

mod common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use shoper_standin::{NewOrder, NewWebhook, ShoperStandin};

type Got = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

struct Receiver {
    url: String,
    got: Got,
    status: Arc<AtomicU16>,
}

async fn hook(
    State((got, status)): State<(Got, Arc<AtomicU16>)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    got.lock().expect("lock").push((headers, body));
    StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
}

async fn receiver() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let got: Got = Arc::default();
    let status = Arc::new(AtomicU16::new(200));
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state((Arc::clone(&got), Arc::clone(&status)));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url: format!("http://{addr}/hook"),
        got,
        status,
    }
}

fn h(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// sha1(id + ":" + secret + ":" + body), lowercase hex — computed here, not by the stand-in.
fn expected_sha1(id: &str, secret: &str, body: &[u8]) -> String {
    let mut input = Vec::new();
    input.extend_from_slice(id.as_bytes());
    input.push(b':');
    input.extend_from_slice(secret.as_bytes());
    input.push(b':');
    input.extend_from_slice(body);
    let digest = Sha1::digest(&input);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn seed(s: &ShoperStandin) {
    product(s, "SKU-1", dec!(49.99), 10);
}

#[tokio::test]
async fn webhooks_resource_validates_and_reads_back() {
    let s = start().await;
    let t = token(&s);
    let (st, v) = status_json(
        send(
            &s,
            &t,
            Method::POST,
            "webhooks",
            &json!({"url": "https://me.example/hook", "events": ["order.create"], "active": 1}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 400);
    assert!(
        v["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("'format'")),
        "{v}"
    );
    let (st, v) = status_json(
        send(
            &s,
            &t,
            Method::POST,
            "webhooks",
            &json!({"url": "not a url", "events": ["order.create"], "format": 0}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(
        v["error_description"],
        "'not a url' nie jest poprawnym adresem URL"
    );
    let body = json!({"url": "https://me.example/hook", "events": ["order.create", "order.edit", "order.paid", "order.status"], "active": 1, "format": 0, "secret": "s3cr3t"});
    let (st, id) = status_json(send(&s, &t, Method::POST, "webhooks", &body).await).await;
    assert_eq!(st, 200);
    let id = id.as_u64().expect("id");
    let v = json(get(&s, &t, &format!("webhooks/{id}")).await).await;
    assert_eq!(v["secret"], "s3cr3t", "readable in clear");
    assert_eq!(v["format"], "0");
    assert_eq!(v["events"].as_array().map(Vec::len), Some(4));
    let r = send(
        &s,
        &t,
        Method::PUT,
        &format!("webhooks/{id}"),
        &json!({"active": 0}),
    )
    .await;
    assert_eq!(status_json(r).await, (200, json!(1)));
    assert!(!s.webhooks()[0].active);
    let v = json(
        get(
            &s,
            &t,
            "webhooks?filters=%7B%22url%22%3A%22https%3A%2F%2Fme.example%2Fhook%22%7D",
        )
        .await,
    )
    .await;
    assert_eq!(v["count"], "1");
    assert_eq!(
        get(&s, &t, "webhooks?filters[url][like]=%25me%25")
            .await
            .status(),
        404,
        "url filter is equality-only"
    );
    let (st, _) = status_json(
        send(
            &s,
            &t,
            Method::POST,
            "webhooks",
            &json!({"url": "https://x.example/", "events": ["order.nope"], "format": 0}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(
        status_json(
            send(
                &s,
                &t,
                Method::DELETE,
                &format!("webhooks/{id}"),
                &json!(null)
            )
            .await
        )
        .await,
        (200, json!(1))
    );
}

#[tokio::test]
async fn order_create_is_delivered_signed_like_shoper() {
    let rx = receiver().await;
    let s = start().await;
    seed(&s);
    let t = token(&s);
    let body = json!({"url": rx.url, "events": ["order.create", "order.edit", "order.paid", "order.status"], "active": 1, "format": 0, "secret": "s3cr3t"});
    let wid = json(send(&s, &t, Method::POST, "webhooks", &body).await).await;
    let wid = wid.as_u64().expect("id").to_string();
    let order = s
        .place_order(NewOrder::new("kupujacy@example.com").line("SKU-1", 2))
        .expect("order");
    let recs = s.wait_for_deliveries(1, Duration::from_secs(10)).await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].outcome, "delivered");
    let got = rx.got.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    let (headers, raw) = &got[0];
    assert_eq!(
        h(headers, "content-type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(h(headers, "user-agent"), "Shop Webhook Sender 5.26.54");
    assert_eq!(h(headers, "x-shop-domain"), s.shop_domain());
    assert_eq!(h(headers, "x-shop-license"), s.license());
    assert_eq!(h(headers, "x-shop-version"), "5.26.54");
    assert_eq!(h(headers, "x-webhook-id"), wid, "the webhook config's id");
    assert_eq!(h(headers, "x-webhook-name"), "order.create");
    let sig = h(headers, "x-webhook-sha1");
    assert_eq!(sig.len(), 40);
    assert!(
        sig.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    );
    assert_eq!(sig, expected_sha1(&wid, "s3cr3t", raw));
    assert_ne!(sig, expected_sha1(&wid, "wrong", raw));
    let v: Value = serde_json::from_slice(raw).expect("JSON body");
    assert_eq!(v["order_id"], order.order_id.to_string());
    assert_eq!(v["sum"], "99.98");
    assert_eq!(v["products"][0]["quantity"], "2");
    assert_eq!(v["products"][0]["stock_id"], "1");
    assert!(v["ip_address"].is_string());
    assert_eq!(v["is_paid"], false);
    // The record keeps the exact bytes and headers.
    assert_eq!(recs[0].request_body.as_bytes(), raw.as_ref());
    assert_eq!(recs[0].header("X-Webhook-SHA1"), Some(sig.as_str()));
}

#[tokio::test]
async fn status_and_payment_changes_send_their_events() {
    let rx = receiver().await;
    let s = start_with(|o| o.webhooks = vec![NewWebhook::new(&rx.url, "k")]).await;
    seed(&s);
    let o = s
        .place_order(NewOrder::new("a@b.pl").line("SKU-1", 1))
        .expect("order");
    let t = token(&s);
    assert_eq!(
        send(
            &s,
            &t,
            Method::PUT,
            &format!("orders/{}", o.order_id),
            &json!({"status_id": 2})
        )
        .await
        .status(),
        200
    );
    s.mark_order_paid(o.order_id).expect("paid");
    let recs = s.wait_for_deliveries(5, Duration::from_secs(10)).await;
    let names: Vec<&str> = recs.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "order.create",
            "order.status",
            "order.edit",
            "order.edit",
            "order.paid"
        ]
    );
    let got = rx.got.lock().expect("lock").clone();
    assert_eq!(got.len(), 5);
    for (headers, raw) in &got {
        assert_eq!(h(headers, "x-webhook-sha1"), expected_sha1("1", "k", raw));
    }
    let last: Value = serde_json::from_slice(&got[4].1).expect("JSON");
    assert_eq!(last["is_paid"], true);
    assert_eq!(last["status_id"], "2");
    // Without order.edit on status changes (unverified switch).
    s.configure(|c| c.status_change_sends_edit = false);
    s.clear_deliveries();
    s.set_order_status(o.order_id, 3).expect("status");
    let recs = s.wait_for_deliveries(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.deliveries().len(), 1);
    assert_eq!(recs[0].event, "order.status");
}

#[tokio::test]
async fn app_mode_derives_the_secret_per_shop() {
    let rx = receiver().await;
    let s = start_with(|o| {
        o.webhooks = vec![NewWebhook::new(&rx.url, "hook-secret")];
        o.config.appstore_secret = Some("app-secret".into());
    })
    .await;
    seed(&s);
    s.place_order(NewOrder::new("a@b.pl").line("SKU-1", 1))
        .expect("order");
    s.wait_for_deliveries(1, Duration::from_secs(10)).await;
    let got = rx.got.lock().expect("lock").clone();
    let (headers, raw) = &got[0];
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(b"app-secret").expect("key");
    mac.update(format!("{}:hook-secret", s.license()).as_bytes());
    let derived: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        h(headers, "x-webhook-sha1"),
        expected_sha1("1", &derived, raw)
    );
    assert_ne!(
        h(headers, "x-webhook-sha1"),
        expected_sha1("1", "hook-secret", raw)
    );
}

#[tokio::test]
async fn delivery_faults_and_retries() {
    let rx = receiver().await;
    let s =
        start_with(|o| o.webhooks = vec![NewWebhook::new(&rx.url, "k").events(&["order.create"])])
            .await;
    seed(&s);
    s.faults().duplicate_next_webhooks(1);
    s.place_order(NewOrder::new("a@b.pl").line("SKU-1", 1))
        .expect("order");
    let recs = s.wait_for_deliveries(2, Duration::from_secs(10)).await;
    assert_eq!(recs.len(), 2);
    assert!(recs[1].duplicate);
    assert_eq!(recs[0].request_body, recs[1].request_body);
    assert_eq!(
        recs[0].header("x-webhook-sha1"),
        recs[1].header("x-webhook-sha1")
    );

    s.clear_deliveries();
    s.faults().drop_next_webhooks(1);
    s.place_order(NewOrder::new("a@b.pl").line("SKU-1", 1))
        .expect("order");
    let recs = s.wait_for_deliveries(1, Duration::from_secs(10)).await;
    assert_eq!(recs[0].outcome, "dropped");
    assert_eq!(rx.got.lock().expect("lock").len(), 2);

    s.clear_deliveries();
    rx.status.store(500, Ordering::SeqCst);
    s.configure(|c| {
        c.webhook_retries = 2;
        c.webhook_retry_delay_ms = 10;
    });
    s.place_order(NewOrder::new("a@b.pl").line("SKU-1", 1))
        .expect("order");
    let recs = s.wait_for_deliveries(3, Duration::from_secs(10)).await;
    assert_eq!(recs.len(), 3);
    assert!(
        recs.iter()
            .all(|r| r.outcome == "failed" && r.response_status == Some(500))
    );
    assert_eq!(
        recs.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

#[tokio::test]
async fn xml_format_is_signed_over_the_xml_bytes() {
    let rx = receiver().await;
    let s = start().await;
    seed(&s);
    s.add_webhook(NewWebhook {
        format: 1,
        ..NewWebhook::new(&rx.url, "x")
    })
    .expect("webhook");
    s.place_order(NewOrder::new("a@b.pl").line("SKU-1", 1))
        .expect("order");
    s.wait_for_deliveries(1, Duration::from_secs(10)).await;
    let got = rx.got.lock().expect("lock").clone();
    let (headers, raw) = &got[0];
    let text = String::from_utf8_lossy(raw);
    assert!(text.starts_with("<?xml"));
    assert!(text.contains("<order_id>1</order_id>"));
    assert_eq!(h(headers, "x-webhook-sha1"), expected_sha1("1", "x", raw));
}
