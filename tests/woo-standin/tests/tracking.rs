mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use woo_standin::{NewOrder, WooOptions};

fn tracking_url(w: &woo_standin::WooStandin, order: u64) -> String {
    format!(
        "{}/wp-json/wc-shipment-tracking/v3/orders/{order}/shipment-trackings",
        w.base_url()
    )
}

#[tokio::test]
async fn shipment_tracking_is_an_extension() {
    // Core WooCommerce: no such route.
    let w = start().await;
    w.add_product(product("T", "T", "1.00", 5)).unwrap();
    let o = w
        .place_order(NewOrder {
            line_items: vec![("T".into(), 1)],
            ..NewOrder::default()
        })
        .unwrap();
    let r = client()
        .post(tracking_url(&w, o.id))
        .basic_auth(KEY, Some(SECRET))
        .json(&json!({"tracking_provider": "DPD", "tracking_number": "123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "rest_no_route");
    w.shutdown().await;

    // With the extension.
    let w = start_with(WooOptions {
        shipment_tracking: true,
        ..Default::default()
    })
    .await;
    w.add_product(product("T", "T", "1.00", 5)).unwrap();
    let o = w
        .place_order(NewOrder {
            line_items: vec![("T".into(), 1)],
            ..NewOrder::default()
        })
        .unwrap();
    let r = client()
        .post(tracking_url(&w, o.id))
        .json(&json!({"tracking_number": "123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(tracking_url(&w, o.id))
        .basic_auth(KEY, Some(SECRET))
        .json(&json!({"tracking_provider": "DPD", "tracking_number": "0000123456789", "date_shipped": "2026-11-20"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["tracking_number"], "0000123456789");
    assert_eq!(t["date_shipped"], "2026-11-20");
    assert!(
        t["tracking_link"]
            .as_str()
            .unwrap()
            .contains("0000123456789")
    );
    let r = client()
        .post(tracking_url(&w, o.id))
        .basic_auth(KEY, Some(SECRET))
        .json(&json!({"tracking_provider": "DPD"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let list: Vec<Value> = client()
        .get(tracking_url(&w, o.id))
        .basic_auth(KEY, Some(SECRET))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(w.shipment_trackings(o.id).len(), 1);
    let order: Value = get(&w, &format!("/orders/{}", o.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        order["meta_data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["key"] == "_wc_shipment_tracking_items")
    );
    let r = send_json(&w, Method::GET, "/orders/1/shipment-trackings", json!({})).await;
    assert_eq!(r.status(), 404);
    let r = client()
        .post(tracking_url(&w, 999_999))
        .basic_auth(KEY, Some(SECRET))
        .json(&json!({"tracking_number": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    w.shutdown().await;
}
