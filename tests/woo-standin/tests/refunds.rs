//! Refunds as WooCommerce makes and lists them: a refund's own line items (negative copies of
//! the order's lines with `_refunded_item_id`), a line id that is no line of the order, and the
//! global `GET /refunds` with its paging, date filter and parameter checks.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use woo_standin::{NewOrder, Order, WooStandin};

/// A 2 × A (10.00) + 3 × B (5.00) order, 23 % VAT included, with a 15.00 courier line.
async fn shop_with_order() -> (WooStandin, Order) {
    let w = start().await;
    w.add_product(product("KUBEK-A", "Kubek A", "10.00", 50))
        .unwrap();
    w.add_product(product("TALERZ-B", "Talerz B", "5.00", 50))
        .unwrap();
    let o = w
        .place_order(NewOrder {
            line_items: vec![("KUBEK-A".into(), 2), ("TALERZ-B".into(), 3)],
            shipping_total: Some("15.00".parse().unwrap()),
            ..NewOrder::default()
        })
        .unwrap();
    (w, o)
}

async fn refund(w: &WooStandin, order: u64, body: Value) -> reqwest::Response {
    send_json(w, Method::POST, &format!("/orders/{order}/refunds"), body).await
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + Duration::seconds(secs)
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn a_refunds_lines_are_negative_copies_of_the_orders_lines() {
    let (w, o) = shop_with_order().await;
    let (a, b) = (&o.line_items[0], &o.line_items[1]);
    let ship = &o.shipping_lines[0];
    let r = refund(
        &w,
        o.id,
        json!({
            "reason": "Zwrot towaru",
            "api_refund": false,
            "line_items": [
                {"id": a.id, "quantity": 1, "refund_total": 8.13, "refund_tax": [{"id": 1, "refund_total": 1.87}]},
                {"id": b.id, "quantity": 2, "refund_total": "8.13", "refund_tax": [{"id": 1, "refund_total": "1.87"}]},
                {"id": ship.id, "refund_total": 12.20, "refund_tax": [{"id": 1, "refund_total": 2.80}]},
            ],
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    // No `amount`: the lines' totals and taxes.
    assert_eq!(v["amount"], "35.00");
    let lines = v["line_items"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{v}");
    for (line, (ordered, qty)) in lines.iter().zip([(a, 1), (b, 2)]) {
        assert_ne!(line["id"], ordered.id, "a refund's line is a new item");
        assert_eq!(line["name"], ordered.name);
        assert_eq!(line["product_id"], ordered.product_id);
        assert_eq!(line["variation_id"], 0);
        assert_eq!(line["sku"], ordered.sku);
        assert_eq!(line["quantity"], -qty);
        assert_eq!(line["total"], "-8.13");
        assert_eq!(line["subtotal"], "-8.13");
        assert_eq!(line["total_tax"], "-1.87");
        assert_eq!(
            line["taxes"],
            json!([{"id": 1, "total": "-1.87", "subtotal": "-1.87"}])
        );
        let meta = line["meta_data"].as_array().unwrap();
        assert_eq!(meta.len(), 1);
        assert_eq!(meta[0]["key"], "_refunded_item_id");
        assert_eq!(meta[0]["value"], ordered.id.to_string());
    }
    assert_eq!(lines[0]["price"].as_f64(), Some(8.13));
    assert_eq!(lines[1]["price"].as_f64(), Some(4.065));
    assert_eq!(v["line_items"][0]["sku"], "KUBEK-A");
    assert_eq!(v["line_items"][1]["sku"], "TALERZ-B");
    // Shipping goes to `shipping_lines`, the taxes to one tax line per rate.
    assert_eq!(v["shipping_lines"][0]["total"], "-12.20");
    assert_eq!(
        v["shipping_lines"][0]["meta_data"][0]["value"],
        ship.id.to_string()
    );
    assert_eq!(v["tax_lines"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["tax_lines"][0]["rate_id"], 1);
    assert_eq!(v["tax_lines"][0]["tax_total"], "-3.74");
    assert_eq!(v["tax_lines"][0]["shipping_tax_total"], "-2.80");
    assert_eq!(v["fee_lines"], json!([]));
    // The same refund read back, and the order's own lines untouched.
    let again: Value = get(&w, &format!("/orders/{}/refunds/{}", o.id, v["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["line_items"], v["line_items"]);
    assert_eq!(w.order(o.id).unwrap().line_items, o.line_items);
    w.shutdown().await;
}

#[tokio::test]
async fn a_line_id_that_is_no_line_of_the_order_is_skipped_and_the_refund_still_made() {
    let (w, o) = shop_with_order().await;
    let other = w
        .place_order(NewOrder {
            line_items: vec![("KUBEK-A".into(), 1)],
            ..NewOrder::default()
        })
        .unwrap();
    let foreign = other.line_items[0].id;
    let r = refund(
        &w,
        o.id,
        json!({
            "amount": "20.00",
            "api_refund": false,
            "line_items": [
                {"id": foreign, "quantity": 1, "refund_total": 8.13},
                {"id": 987654, "quantity": 1, "refund_total": 8.13},
                {"id": o.line_items[0].id, "quantity": 2, "refund_total": 16.26},
            ],
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["amount"], "20.00");
    let lines = v["line_items"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{v}");
    assert_eq!(
        lines[0]["meta_data"][0]["value"],
        o.line_items[0].id.to_string()
    );
    assert_eq!(lines[0]["quantity"], -2);

    // Only foreign ids: an amount-only refund.
    let r = refund(
        &w,
        o.id,
        json!({"amount": "1.00", "api_refund": false, "line_items": [{"id": foreign, "quantity": 1}]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["line_items"], json!([]));
    // The other order is untouched.
    assert!(w.order_refunds(other.id).is_empty());
    w.shutdown().await;
}

#[tokio::test]
async fn refusals_stay_and_a_line_amount_that_is_no_number_is_a_critical_error() {
    let (w, o) = shop_with_order().await;
    let line = o.line_items[0].id;
    let r = refund(
        &w,
        o.id,
        json!({"amount": "5.00", "api_refund": false, "line_items": [{"id": line, "quantity": 1, "refund_total": "pięć"}]}),
    )
    .await;
    assert_eq!(r.status(), 500);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "internal_server_error");
    // The gateway still refuses, with lines too, and nothing is recorded.
    let r = refund(
        &w,
        o.id,
        json!({"line_items": [{"id": line, "quantity": 1, "refund_total": 8.13}]}),
    )
    .await;
    assert_eq!(r.status(), 500);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_cannot_create_order_refund");
    // No amount and no numbers to add up: nothing to refund.
    let r = refund(
        &w,
        o.id,
        json!({"api_refund": false, "line_items": [{"id": line, "quantity": 1}]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = refund(
        &w,
        o.id,
        json!({"amount": "5.00", "api_refund": false, "api_restock": "maybe"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "rest_invalid_param");
    assert!(w.order_refunds(o.id).is_empty());
    w.shutdown().await;
}

#[tokio::test]
async fn all_refunds_are_listed_page_by_page_oldest_first() {
    let (w, o) = shop_with_order().await;
    let second = w
        .place_order(NewOrder {
            line_items: vec![("TALERZ-B".into(), 4)],
            ..NewOrder::default()
        })
        .unwrap();
    // Five refunds, two of them in the same second, alternating between the orders.
    let mut made = Vec::new();
    for (i, secs) in [0, 1, 1, 2, 3].into_iter().enumerate() {
        w.set_clock(Some(at(secs)));
        let order = if i % 2 == 0 { o.id } else { second.id };
        let r = refund(&w, order, json!({"amount": "1.00", "api_refund": false})).await;
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        made.push((v["id"].as_u64().unwrap(), order));
    }
    w.set_clock(None);

    let mut seen = Vec::new();
    for page in 1..=3 {
        let r = get(
            &w,
            &format!("/refunds?per_page=2&page={page}&orderby=date&order=asc"),
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-wp-total"), "5");
        assert_eq!(header(&r, "x-wp-totalpages"), "3");
        let text = r.text().await.unwrap();
        assert!(
            text.starts_with("[{\"id\":") && text.contains(",\"parent_id\":"),
            "{text}"
        );
        let list: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(list.len(), if page < 3 { 2 } else { 1 });
        for v in list {
            let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
            assert!(keys.contains(&&"parent_id".to_string()));
            assert!(
                v["_links"]["up"][0]["href"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("/orders/{}", v["parent_id"]))
            );
            assert!(v["_links"]["refunded_by"][0]["href"].is_string());
            seen.push((v["id"].as_u64().unwrap(), v["parent_id"].as_u64().unwrap()));
        }
    }
    assert_eq!(seen, made);
    // Newest first by default.
    let list: Vec<Value> = get(&w, "/refunds").await.json().await.unwrap();
    let ids: Vec<u64> = list.iter().filter_map(|v| v["id"].as_u64()).collect();
    let mut newest_first: Vec<u64> = made.iter().map(|(id, _)| *id).collect();
    newest_first.reverse();
    assert_eq!(ids, newest_first);
    // `offset`, `include`, `exclude`, and `parent`, which /refunds ignores (one order's are at
    // /orders/{id}/refunds), unlike `parent_exclude`.
    let ids_of =
        |list: Vec<Value>| -> Vec<u64> { list.iter().filter_map(|v| v["id"].as_u64()).collect() };
    let all_asc: Vec<u64> = made.iter().map(|(id, _)| *id).collect();
    let q = |s: &str| format!("/refunds?orderby=id&order=asc&{s}");
    assert_eq!(
        ids_of(get(&w, &q("offset=3")).await.json().await.unwrap()),
        all_asc[3..]
    );
    assert_eq!(
        ids_of(
            get(&w, &q(&format!("include={},{}", all_asc[4], all_asc[0])))
                .await
                .json()
                .await
                .unwrap()
        ),
        [all_asc[0], all_asc[4]]
    );
    assert_eq!(
        ids_of(
            get(&w, &q(&format!("exclude={}", all_asc[1])))
                .await
                .json()
                .await
                .unwrap()
        )
        .len(),
        4
    );
    assert_eq!(
        ids_of(
            get(&w, &q(&format!("parent={}", o.id)))
                .await
                .json()
                .await
                .unwrap()
        ),
        all_asc
    );
    let not_second = ids_of(
        get(&w, &q(&format!("parent_exclude={}", second.id)))
            .await
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(not_second, [all_asc[0], all_asc[2], all_asc[4]]);
    // One order's list: the same paging, without `parent_id`.
    let r = get(
        &w,
        &format!("/orders/{}/refunds?per_page=2&order=asc", o.id),
    )
    .await;
    assert_eq!(header(&r, "x-wp-total"), "3");
    assert_eq!(header(&r, "x-wp-totalpages"), "2");
    let list: Vec<Value> = r.json().await.unwrap();
    assert_eq!(ids_of(list.clone()), [all_asc[0], all_asc[2]]);
    assert!(list[0].get("parent_id").is_none());
    w.shutdown().await;
}

#[tokio::test]
async fn after_takes_refunds_created_after_a_time_to_the_second() {
    let (w, o) = shop_with_order().await;
    let mut ids = Vec::new();
    for secs in [0, 1, 1, 2] {
        w.set_clock(Some(at(secs)));
        let r = refund(&w, o.id, json!({"amount": "1.00", "api_refund": false})).await;
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["date_created_gmt"],
            at(secs).format("%Y-%m-%dT%H:%M:%S").to_string()
        );
        ids.push(v["id"].as_u64().unwrap());
    }
    let after = |secs: i64, gmt: bool| {
        let t = at(secs).format("%Y-%m-%dT%H:%M:%S");
        format!("/refunds?orderby=date&order=asc&after={t}&dates_are_gmt={gmt}")
    };
    let listed = |path: String| {
        let w = &w;
        async move {
            let list: Vec<Value> = get(w, &path).await.json().await.unwrap();
            list.iter()
                .filter_map(|v| v["id"].as_u64())
                .collect::<Vec<u64>>()
        }
    };
    // Exclusive: after 12:00:01 is 12:00:02 only; after 12:00:00, both of 12:00:01 too.
    assert_eq!(listed(after(1, true)).await, ids[3..]);
    assert_eq!(listed(after(0, true)).await, ids[1..]);
    assert_eq!(listed(after(-1, true)).await, ids);
    // Without `dates_are_gmt` the time is the site's (+01:00): 13:00:00 there is 12:00:00 GMT.
    assert_eq!(listed(after(3600, false)).await, ids[1..]);
    // With an offset the time is what it says.
    assert_eq!(
        listed("/refunds?order=asc&after=2025-03-01T13:00:01%2B01:00".to_string()).await,
        ids[3..]
    );
    assert_eq!(
        listed("/refunds?order=asc&before=2025-03-01T12:00:01&dates_are_gmt=1".to_string()).await,
        ids[..1]
    );
    w.shutdown().await;
}

#[tokio::test]
async fn invalid_list_parameters_are_refused_like_wordpress() {
    let (w, _) = shop_with_order().await;
    for (query, param) in [
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("page=0", "page"),
        ("order=up", "order"),
        ("orderby=price", "orderby"),
        ("after=yesterday", "after"),
        ("include=abc", "include[0]"),
        ("parent=x", "parent[0]"),
        ("dates_are_gmt=maybe", "dates_are_gmt"),
        ("status=shipped", "status"),
        ("offset=-1", "offset"),
    ] {
        let r = get(&w, &format!("/refunds?{query}")).await;
        assert_eq!(r.status(), 400, "{query}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "rest_invalid_param", "{query}");
        assert!(v["data"]["params"].get(param).is_some(), "{query}: {v}");
    }
    let r = get(&w, "/refunds?per_page=100&orderby=id&status=any").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-wp-total"), "0");
    assert_eq!(r.text().await.unwrap(), "[]");
    // Read-only.
    let r = send_json(&w, Method::POST, "/refunds", json!({"amount": "1.00"})).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "rest_no_route");
    w.shutdown().await;
}

#[tokio::test]
async fn the_clock_is_pinned_over_http_too() {
    let (w, o) = shop_with_order().await;
    let r = client()
        .put(format!("{}/__standin/clock", w.base_url()))
        .json(&json!({"now": "2025-03-01T12:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["pinned"], true);
    let r = refund(&w, o.id, json!({"amount": "1.00", "api_refund": false})).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["date_created_gmt"], "2025-03-01T12:00:00");
    assert_eq!(v["date_created"], "2025-03-01T13:00:00");
    let r = client()
        .put(format!("{}/__standin/clock", w.base_url()))
        .json(&json!({"now": null}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["pinned"], false);
    w.shutdown().await;
}
