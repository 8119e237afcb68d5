mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use woo_standin::{Address, NewCoupon, NewOrder, NewProduct};

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn polish_billing() -> Address {
    Address {
        first_name: "Grzegorz".into(),
        last_name: "Brzęczyszczykiewicz".into(),
        company: "Żółw Sp. z o.o.".into(),
        address_1: "ul. Świętokrzyska 12".into(),
        city: "Łódź".into(),
        postcode: "90-001".into(),
        country: "PL".into(),
        email: Some("grzegorz@example.pl".into()),
        phone: "+48 600 000 000".into(),
        ..Address::default()
    }
}

#[tokio::test]
async fn totals_to_the_grosz_with_23_and_8_percent_and_a_percent_coupon() {
    let w = start().await;
    w.add_product(product("VAT23", "Wiertarka", "123.00", 10))
        .unwrap();
    w.add_product(NewProduct {
        tax_class: "reduced-rate".into(),
        ..product("VAT8", "Książka", "10.80", 10)
    })
    .unwrap();
    let o = w
        .place_order(NewOrder {
            line_items: vec![("VAT23".into(), 2), ("VAT8".into(), 3)],
            billing: polish_billing(),
            shipping_total: Some(dec("15.00")),
            coupon: Some(NewCoupon {
                code: "RABAT10".into(),
                discount_type: "percent".into(),
                amount: dec("10"),
            }),
            ..NewOrder::default()
        })
        .unwrap();
    assert!(o.prices_include_tax);
    let a = &o.line_items[0];
    assert_eq!(
        (&*a.subtotal, &*a.subtotal_tax, &*a.total, &*a.total_tax),
        ("200.00", "46.00", "180.00", "41.40")
    );
    let b = &o.line_items[1];
    assert_eq!(
        (&*b.subtotal, &*b.subtotal_tax, &*b.total, &*b.total_tax),
        ("30.00", "2.40", "27.00", "2.16")
    );
    assert_eq!(o.discount_total, "23.00");
    assert_eq!(o.discount_tax, "4.84");
    assert_eq!(o.shipping_total, "15.00");
    assert_eq!(o.shipping_tax, "3.45");
    assert_eq!(o.total_tax, "47.01");
    assert_eq!(o.total, "269.01");
    assert_eq!(o.coupon_lines[0].code, "rabat10");
    assert_eq!(o.coupon_lines[0].discount, "23.00");
    assert_eq!(o.tax_lines.len(), 2);
    // price is a JSON number.
    let v: Value = get(&w, &format!("/orders/{}", o.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(v["line_items"][0]["price"].is_number());
    assert_eq!(v["line_items"][0]["price"].as_f64(), Some(90.0));
    assert_eq!(v["line_items"][0]["taxes"][0]["total"], "41.40");
    assert_eq!(v["billing"]["city"], "Łódź");
    assert_eq!(v["billing"]["last_name"], "Brzęczyszczykiewicz");
    // Stock reduced on processing.
    assert_eq!(w.product_by_sku("VAT23").unwrap().stock_quantity, Some(8));
    assert!(v["date_paid_gmt"].is_string());
    w.shutdown().await;
}

#[tokio::test]
async fn totals_with_fixed_cart_coupon_split_by_cents_over_rest() {
    let w = start().await;
    w.add_product(product("A", "A", "99.99", 5)).unwrap();
    w.add_product(NewProduct {
        tax_class: "reduced-rate".into(),
        ..product("B", "B", "4.99", 5)
    })
    .unwrap();
    w.add_coupon(NewCoupon {
        code: "MINUS10".into(),
        discount_type: "fixed_cart".into(),
        amount: dec("10.00"),
    })
    .unwrap();
    let r = send_json(
        &w,
        Method::POST,
        "/orders",
        json!({
            "payment_method": "cod",
            "payment_method_title": "Za pobraniem",
            "billing": {"first_name": "Jan", "last_name": "Kowalski", "email": "jan@example.pl", "city": "Kraków"},
            "line_items": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 3}],
            "shipping_lines": [{"method_id": "flat_rate", "method_title": "Kurier", "total": "12.19"}],
            "coupon_lines": [{"code": "minus10"}]
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["status"], "pending");
    assert_eq!(o["line_items"][0]["subtotal"], "81.29");
    assert_eq!(o["line_items"][0]["subtotal_tax"], "18.70");
    assert_eq!(o["line_items"][0]["total"], "74.22");
    assert_eq!(o["line_items"][0]["total_tax"], "17.07");
    assert_eq!(o["line_items"][1]["subtotal"], "13.86");
    assert_eq!(o["line_items"][1]["total"], "12.66");
    assert_eq!(o["line_items"][1]["total_tax"], "1.01");
    assert_eq!(o["discount_total"], "8.27");
    assert_eq!(o["discount_tax"], "1.73");
    assert_eq!(o["shipping_tax"], "2.80");
    assert_eq!(o["total_tax"], "20.88");
    assert_eq!(o["total"], "119.95");
    assert_eq!(o["coupon_lines"][0]["discount"], "8.27");
    assert_eq!(o["coupon_lines"][0]["discount_tax"], "1.73");
    // Pending: no stock reduction yet.
    assert_eq!(w.product_by_sku("A").unwrap().stock_quantity, Some(5));
    // An unknown SKU is not an error in WooCommerce: the line has no product and costs 0.
    let r = send_json(
        &w,
        Method::POST,
        "/orders",
        json!({"line_items": [{"sku": "NO-SUCH-SKU", "quantity": 2, "name": "Widmo"}, {"sku": "A", "quantity": 1}]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["line_items"][0]["product_id"], 0);
    assert_eq!(v["line_items"][0]["total"], "0.00");
    assert_eq!(v["total"], "99.99");
    let r = send_json(
        &w,
        Method::POST,
        "/orders",
        json!({"line_items": [{"quantity": 1}]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_required_product_reference");
    assert!(
        w.place_order(NewOrder {
            line_items: vec![("NO-SUCH-SKU".into(), 1)],
            ..NewOrder::default()
        })
        .is_err()
    );
    // Unknown coupon.
    let r = send_json(
        &w,
        Method::POST,
        "/orders",
        json!({"line_items": [{"sku": "A", "quantity": 1}], "coupon_lines": [{"code": "nope"}]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_invalid_coupon");
    w.shutdown().await;
}

#[tokio::test]
async fn status_changes_notes_and_invalid_status() {
    let w = start().await;
    w.add_product(product("S", "S", "10.00", 5)).unwrap();
    let o = w
        .place_order(NewOrder {
            line_items: vec![("S".into(), 2)],
            ..NewOrder::default()
        })
        .unwrap();
    let r = send_json(
        &w,
        Method::PUT,
        &format!("/orders/{}", o.id),
        json!({"status": "shipped"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "rest_invalid_param");

    let r = send_json(
        &w,
        Method::PUT,
        &format!("/orders/{}", o.id),
        json!({"status": "completed"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "completed");
    assert!(v["date_completed_gmt"].is_string());

    let r = send_json(
        &w,
        Method::POST,
        &format!("/orders/{}/notes", o.id),
        json!({"note": "Wysłano paczkę: 123456", "customer_note": true}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let r = send_json(
        &w,
        Method::POST,
        &format!("/orders/{}/notes", o.id),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "rest_missing_callback_param");
    let notes: Vec<Value> = get(&w, &format!("/orders/{}/notes", o.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(notes[0]["note"], "Wysłano paczkę: 123456");
    assert_eq!(notes[0]["customer_note"], true);
    assert!(
        notes
            .iter()
            .any(|n| n["note"] == "Order status changed from Processing to Completed.")
    );
    assert_eq!(w.order_notes(o.id)[0].note, "Wysłano paczkę: 123456");

    // Setting "refunded" refunds what is left (wc_order_fully_refunded).
    let refunded = send_json(
        &w,
        Method::PUT,
        &format!("/orders/{}", o.id),
        json!({"status": "refunded"}),
    )
    .await;
    let v: Value = refunded.json().await.unwrap();
    assert_eq!(v["refunds"][0]["total"], "-20.00");
    assert_eq!(v["refunds"][0]["reason"], "Order fully refunded.");
    // Cancelling restores stock.
    assert_eq!(w.product_by_sku("S").unwrap().stock_quantity, Some(3));
    w.set_order_status(o.id, "cancelled").unwrap();
    assert_eq!(w.product_by_sku("S").unwrap().stock_quantity, Some(5));
    assert!(w.set_order_status(o.id, "bogus").is_err());

    let r = get(&w, "/orders/99999").await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_shop_order_invalid_id");
    w.shutdown().await;
}

#[tokio::test]
async fn modified_after_with_dates_are_gmt() {
    let w = start().await;
    w.add_product(product("M", "M", "1.00", 100)).unwrap();
    let o1 = w
        .place_order(NewOrder {
            line_items: vec![("M".into(), 1)],
            ..NewOrder::default()
        })
        .unwrap();
    let o2 = w
        .place_order(NewOrder {
            line_items: vec![("M".into(), 1)],
            ..NewOrder::default()
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mark = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.set_order_status(o2.id, "completed").unwrap();

    let r = get(
        &w,
        &format!(
            "/orders?modified_after={mark}&dates_are_gmt=true&orderby=id&order=asc&per_page=100"
        ),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-wp-total"], "1");
    let v: Vec<Value> = r.json().await.unwrap();
    assert_eq!(v[0]["id"], o2.id);

    // The same instant with an explicit offset.
    let r = get(&w, &format!("/orders?modified_after={mark}Z")).await;
    let v: Vec<Value> = r.json().await.unwrap();
    assert_eq!(v.len(), 1);

    // Without dates_are_gmt the value is site time (+01:00), i.e. an hour earlier in UTC: both
    // orders were modified after it.
    let r = get(&w, &format!("/orders?modified_after={mark}")).await;
    let v: Vec<Value> = r.json().await.unwrap();
    assert_eq!(v.len(), 2, "site-local reading of {mark}");

    let all: Vec<Value> = get(&w, "/orders?orderby=id&order=asc")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all[0]["id"], o1.id);
    let r = get(&w, "/orders?modified_after=yesterday").await;
    assert_eq!(r.status(), 400);
    w.shutdown().await;
}

#[tokio::test]
async fn hostile_input_gets_errors_and_the_server_keeps_running() {
    let w = start().await;
    w.add_product(product("H", "H", "99999999999.99", 5))
        .unwrap();
    for body in [
        json!({"line_items": [{"sku": "H", "quantity": 9_223_372_036_854_775_807i64}]}),
        json!({"line_items": [{"sku": "H", "quantity": 100}]}),
        json!({"line_items": [{"sku": "H", "quantity": -1}]}),
        json!({"line_items": "nope"}),
        json!({"line_items": [{"sku": "H", "quantity": 1}], "shipping_lines": [{"total": "1e40"}, {"total": "99999999999999999999999999"}]}),
        json!({"billing": {"first_name": 5}}),
        json!({"status": ["x"]}),
    ] {
        let r = send_json(&w, Method::POST, "/orders", body.clone()).await;
        assert!(r.status().is_client_error(), "{body}: {}", r.status());
    }
    let r = send_json(&w, Method::PUT, "/products/abc", json!({})).await;
    assert_eq!(r.status(), 404);
    let r = send_json(
        &w,
        Method::PUT,
        &format!("/products/{}", w.product_by_sku("H").unwrap().id),
        json!({"stock_quantity": i64::MAX, "manage_stock": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = send_json(
        &w,
        Method::POST,
        "/products/batch",
        json!({"update": [{"id": "x"}, 5, null], "delete": ["a", {"id": 1}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(get(&w, "/orders?per_page=0").await.status(), 400);
    assert_eq!(
        get(&w, "/orders?page=99999999999999999999").await.status(),
        400
    );
    assert_eq!(
        get(&w, "/orders?page=9223372036854775807&per_page=100")
            .await
            .status(),
        200
    );
    assert_eq!(get(&w, "/products").await.status(), 200);
    w.shutdown().await;
}

#[tokio::test]
async fn refunds_like_woocommerce() {
    let w = start().await;
    w.add_product(product("R", "R", "10.00", 5)).unwrap();
    let o = w
        .place_order(NewOrder {
            line_items: vec![("R".into(), 2)],
            ..NewOrder::default()
        })
        .unwrap();
    let path = format!("/orders/{}/refunds", o.id);
    // api_refund defaults to true: the gateway cannot pay back.
    let r = send_json(&w, Method::POST, &path, json!({"amount": "5.00"})).await;
    assert_eq!(r.status(), 500);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_cannot_create_order_refund");
    let r = send_json(
        &w,
        Method::POST,
        &path,
        json!({"amount": "0", "api_refund": false}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = send_json(
        &w,
        Method::POST,
        &path,
        json!({"amount": "5.00", "reason": "Uszkodzona paczka", "api_refund": false}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let refund: Value = r.json().await.unwrap();
    assert_eq!(refund["amount"], "5.00");
    let r = send_json(
        &w,
        Method::POST,
        &path,
        json!({"amount": "15.01", "api_refund": false}),
    )
    .await;
    assert_eq!(r.status(), 500);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["message"], "Invalid refund amount.");
    let order: Value = get(&w, &format!("/orders/{}", o.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["refunds"][0]["total"], "-5.00");
    assert_eq!(order["status"], "processing");
    let r = send_json(
        &w,
        Method::POST,
        &path,
        json!({"amount": "15.00", "api_refund": false}),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(w.order(o.id).unwrap().status, "refunded");
    let list: Vec<Value> = get(&w, &path).await.json().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["amount"], "15.00");
    w.shutdown().await;
}

/// A cash-on-delivery order with a fee, in a shop with 2 and then 3 price decimals
/// (`woocommerce_price_num_decimals`): every amount is rounded to the shop's decimals, half away
/// from zero. Expected figures worked out by hand in the comments.
#[tokio::test]
async fn fees_and_three_price_decimals() {
    let w = start().await;
    w.add_product(product("COD-1", "Kubek", "12.35", 10))
        .unwrap();
    let order = || NewOrder {
        line_items: vec![("COD-1".into(), 3)],
        billing: polish_billing(),
        payment_method: "cod".into(),
        payment_method_title: "Płatność przy odbiorze".into(),
        shipping_total: Some(dec("12.345")),
        fee_lines: vec![woo_standin::NewFee {
            name: "Pobranie".into(),
            total: dec("4.995"),
            ..Default::default()
        }],
        ..NewOrder::default()
    };
    // 2 decimals: line 37.05 gross, tax 37.05·23/123 = 6.928… → 6.93, net 30.12;
    // fee 4.995 → 5.00, tax 1.15; shipping 12.345 → 12.35, tax 2.8405 → 2.84;
    // tax 10.92, total 30.12 + 5.00 + 12.35 + 10.92 = 58.39.
    let two = w.place_order(order()).unwrap();
    assert_eq!(
        (&*two.line_items[0].total, &*two.line_items[0].total_tax),
        ("30.12", "6.93")
    );
    assert_eq!(two.fee_lines.len(), 1);
    let fee = &two.fee_lines[0];
    assert_eq!(
        (&*fee.name, &*fee.total, &*fee.total_tax),
        ("Pobranie", "5.00", "1.15")
    );
    assert_eq!(
        (&*two.shipping_total, &*two.shipping_tax),
        ("12.35", "2.84")
    );
    assert_eq!((&*two.total_tax, &*two.total), ("10.92", "58.39"));

    let settings = format!("{}/__standin/settings", w.base_url());
    let refused = client()
        .put(&settings)
        .json(&json!({"price_decimals": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let set = client()
        .put(&settings)
        .json(&json!({"price_decimals": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);

    // 3 decimals: tax 6.928, net 30.122; fee 4.995, tax 1.14885 → 1.149; shipping 12.345,
    // tax 2.83935 → 2.839; tax 10.916, total 30.122 + 4.995 + 12.345 + 10.916 = 58.378.
    let three = w.place_order(order()).unwrap();
    assert_eq!(
        (&*three.line_items[0].total, &*three.line_items[0].total_tax),
        ("30.122", "6.928")
    );
    let fee = &three.fee_lines[0];
    assert_eq!((&*fee.total, &*fee.total_tax), ("4.995", "1.149"));
    assert_eq!(
        (&*three.shipping_total, &*three.shipping_tax),
        ("12.345", "2.839")
    );
    assert_eq!((&*three.total_tax, &*three.total), ("10.916", "58.378"));
    let v: Value = get(&w, &format!("/orders/{}", three.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["total"], "58.378",
        "the REST API shows the shop's decimals"
    );
    assert_eq!(v["fee_lines"][0]["name"], "Pobranie");
    w.shutdown().await;
}
