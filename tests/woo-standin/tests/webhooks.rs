mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use woo_standin::{Address, NewOrder, NewWebhook, WooOptions};

fn verify(secret: &str, body: &[u8], sig: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD
        .decode(sig)
        .unwrap();
    mac.verify_slice(&expected).is_ok()
}

fn order_for(sku: &str) -> NewOrder {
    NewOrder {
        line_items: vec![(sku.into(), 1)],
        billing: Address {
            first_name: "Zdzisław".into(),
            last_name: "Źdźbło".into(),
            city: "Gdańsk".into(),
            email: Some("z@example.pl".into()),
            ..Address::default()
        },
        ..NewOrder::default()
    }
}

/// Waits until `n` event deliveries have failed (and been counted).
async fn wait_failed(w: &woo_standin::WooStandin, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let failed = w
            .webhook_deliveries()
            .iter()
            .filter(|d| d.kind == "event" && d.outcome == "failed")
            .count();
        if failed >= n || std::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn creation_ping_is_form_encoded_without_signature() {
    let w = start().await;
    let rx = Receiver::start(200).await;
    let r = send_json(
        &w,
        Method::POST,
        "/webhooks",
        json!({"name": "Zamówienia", "topic": "order.created", "delivery_url": rx.url, "secret": "tajne"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "active");
    assert!(v.get("secret").is_none());
    let id = v["id"].as_u64().unwrap();
    let all = rx.all();
    assert_eq!(all.len(), 1);
    let ping = &all[0];
    assert_eq!(
        ping.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(&ping.body[..], format!("webhook_id={id}").as_bytes());
    assert!(ping.header("x-wc-webhook-signature").is_none());
    assert!(ping.header("x-wc-webhook-topic").is_none());

    let r = send_json(
        &w,
        Method::POST,
        "/webhooks",
        json!({"topic": "order.paid", "delivery_url": rx.url}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_shop_webhook_invalid_topic");
    w.shutdown().await;
}

#[tokio::test]
async fn delivery_signature_verifies_over_raw_body() {
    let w = start().await;
    let rx = Receiver::start(200).await;
    w.add_product(product("W1", "Świeca", "12.30", 5)).unwrap();
    let hook = w
        .add_webhook(NewWebhook {
            topic: "order.created".into(),
            delivery_url: rx.url.clone(),
            secret: "sekret-ąę".into(),
            ..NewWebhook::default()
        })
        .await
        .unwrap();
    let o = w.place_order(order_for("W1")).unwrap();
    let log = w
        .wait_for_webhook_deliveries(1, Duration::from_secs(5))
        .await;
    assert_eq!(log[0].outcome, "success");
    assert_eq!(log[0].response_status, Some(200));
    let got = rx.wait_deliveries(1).await;
    assert_eq!(got.len(), 1);
    let d = &got[0];
    let sig = d.header("x-wc-webhook-signature").unwrap();
    assert!(verify("sekret-ąę", &d.body, &sig));
    assert!(!verify("wrong", &d.body, &sig));
    assert_eq!(
        d.header("x-wc-webhook-topic").as_deref(),
        Some("order.created")
    );
    assert_eq!(d.header("x-wc-webhook-resource").as_deref(), Some("order"));
    assert_eq!(d.header("x-wc-webhook-event").as_deref(), Some("created"));
    assert_eq!(
        d.header("x-wc-webhook-id"),
        Some(hook.webhook.id.to_string())
    );
    assert!(d.header("x-wc-webhook-delivery-id").is_some());
    assert_eq!(
        d.header("x-wc-webhook-source"),
        Some(format!("{}/", w.base_url()))
    );
    // The body is PHP-escaped JSON: re-serializing it would not reproduce the signed bytes.
    let raw = String::from_utf8(d.body.to_vec()).unwrap();
    assert!(raw.contains("\\u0179d\\u017ab\\u0142o"), "{raw}");
    let reserialized = serde_json::to_vec(&d.json()).unwrap();
    assert!(!verify("sekret-ąę", &reserialized, &sig));
    let body = d.json();
    assert_eq!(body["id"], o.id);
    assert_eq!(body["billing"]["last_name"], "Źdźbło");
    assert_eq!(body["line_items"][0]["name"], "Świeca");
    w.shutdown().await;
}

#[tokio::test]
async fn body_is_built_at_delivery_time() {
    let w = start_with(WooOptions {
        webhook_delay: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let rx = Receiver::start(200).await;
    w.add_product(product("W2", "x", "5.00", 5)).unwrap();
    w.add_webhook(NewWebhook {
        topic: "order.created".into(),
        delivery_url: rx.url.clone(),
        secret: "s".into(),
        ..NewWebhook::default()
    })
    .await
    .unwrap();
    let o = w.place_order(order_for("W2")).unwrap();
    assert_eq!(o.status, "processing");
    w.set_order_status(o.id, "completed").unwrap();
    let got = rx.wait_deliveries(1).await;
    assert_eq!(
        got[0].header("x-wc-webhook-topic").as_deref(),
        Some("order.created")
    );
    assert_eq!(got[0].json()["status"], "completed");
    w.shutdown().await;
}

#[tokio::test]
async fn disabled_by_the_seventh_consecutive_failure_and_never_retried() {
    let w = start().await;
    let rx = Receiver::start(500).await;
    w.add_product(product("W3", "x", "5.00", 100)).unwrap();
    let o = w.place_order(order_for("W3")).unwrap();
    let hook = w
        .add_webhook(NewWebhook {
            topic: "order.updated".into(),
            delivery_url: rx.url.clone(),
            secret: "s".into(),
            ..NewWebhook::default()
        })
        .await
        .unwrap();
    let id = hook.webhook.id;
    let statuses = [
        "on-hold",
        "processing",
        "on-hold",
        "processing",
        "on-hold",
        "processing",
        "on-hold",
    ];
    for (i, s) in statuses.iter().enumerate() {
        w.set_order_status(o.id, s).unwrap();
        // The delivery is logged once its failure has been counted.
        wait_failed(&w, i + 1).await;
        let rec = w.webhook(id).unwrap();
        if i < 6 {
            // WC_Webhook::failed_delivery: "more than 5" is checked before incrementing.
            assert_eq!(rec.webhook.status, "active", "after {} failures", i + 1);
            assert_eq!(rec.failure_count, i as u32 + 1);
        } else {
            assert_eq!(rec.webhook.status, "disabled");
        }
    }
    let v: Value = get(&w, &format!("/webhooks/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "disabled");
    // No more deliveries, and none of the failed ones was retried.
    w.set_order_status(o.id, "completed").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.deliveries().len(), 7);
    let failed = w
        .webhook_deliveries()
        .iter()
        .filter(|d| d.kind == "event" && d.outcome == "failed")
        .count();
    assert_eq!(failed, 7);
    // The ping got 500, so it stays pending and every save (each failure) pinged again.
    assert!(rx.all().len() > 7);

    // Re-enabling keeps the failure count: one success resets it.
    rx.status.store(200, std::sync::atomic::Ordering::SeqCst);
    let r = send_json(
        &w,
        Method::PUT,
        &format!("/webhooks/{id}"),
        json!({"status": "active"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(w.webhook(id).unwrap().failure_count, 6);
    w.set_order_status(o.id, "processing").unwrap();
    assert_eq!(rx.wait_deliveries(8).await.len(), 8);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while w.webhook(id).unwrap().failure_count != 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(w.webhook(id).unwrap().failure_count, 0);
    w.shutdown().await;
}

#[tokio::test]
async fn duplicate_and_lost_deliveries() {
    let w = start().await;
    let rx = Receiver::start(200).await;
    w.add_product(product("W4", "x", "5.00", 100)).unwrap();
    w.add_webhook(NewWebhook {
        topic: "order.created".into(),
        delivery_url: rx.url.clone(),
        secret: "s".into(),
        ..NewWebhook::default()
    })
    .await
    .unwrap();
    w.faults().duplicate_next_webhooks(1);
    let o1 = w.place_order(order_for("W4")).unwrap();
    let got = rx.wait_deliveries(2).await;
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|d| d.json()["id"] == o1.id));
    w.faults().drop_next_webhooks(1);
    let _o2 = w.place_order(order_for("W4")).unwrap();
    let o3 = w.place_order(order_for("W4")).unwrap();
    let got = rx.wait_deliveries(3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got_now = rx.deliveries();
    assert_eq!(got_now.len(), 3, "{got:?}");
    assert_eq!(got_now[2].json()["id"], o3.id);
    assert!(
        w.webhook_deliveries()
            .iter()
            .any(|d| d.outcome == "dropped")
    );
    w.shutdown().await;
}

#[tokio::test]
async fn events_for_a_queued_resource_are_coalesced() {
    let w = start_with(WooOptions {
        webhook_delay: Duration::from_millis(800),
        ..Default::default()
    })
    .await;
    let rx = Receiver::start(200).await;
    w.add_product(product("W5", "x", "5.00", 100)).unwrap();
    let o = w.place_order(order_for("W5")).unwrap();
    w.add_webhook(NewWebhook {
        topic: "order.updated".into(),
        delivery_url: rx.url.clone(),
        secret: "s".into(),
        ..NewWebhook::default()
    })
    .await
    .unwrap();
    for s in ["on-hold", "processing", "completed"] {
        let r = send_json(
            &w,
            Method::PUT,
            &format!("/orders/{}", o.id),
            json!({"status": s}),
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    let got = rx.wait_deliveries(1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rx.deliveries().len(), 1, "{got:?}");
    assert_eq!(got[0].json()["status"], "completed");
    let coalesced = w
        .webhook_deliveries()
        .iter()
        .filter(|d| d.outcome == "coalesced")
        .count();
    assert_eq!(coalesced, 2);
    // Once it went out, the next event queues a new delivery.
    w.set_order_status(o.id, "refunded").unwrap();
    assert_eq!(rx.wait_deliveries(2).await.len(), 2);
    w.shutdown().await;
}
