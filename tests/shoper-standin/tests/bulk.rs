//! `/bulk`: sub-requests in order with their own outcome, the 25-operation limit, bucket cost.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn bulk_runs_every_operation() {
    let s = start().await;
    let a = product(&s, "A", dec!(10.00), 1);
    let b = product(&s, "B", dec!(20.00), 2);
    let t = token(&s);
    let ops = json!([
        {"id": "ps-a", "path": format!("/webapi/rest/product-stocks/{}", a.base_stock_id), "method": "PUT", "body": {"stock": 5}},
        {"id": "ps-b", "path": format!("/webapi/rest/product-stocks/{}", b.base_stock_id), "method": "PUT", "body": {"stock": 7, "price": 25.5}},
        {"id": "p-1", "path": "/webapi/rest/products", "method": "GET", "params": {"limit": 50, "page": 1}},
        {"id": "ps-q", "path": "/webapi/rest/product-stocks", "method": "GET", "params": {"filters": {"code": "B"}}},
        {"id": "new", "path": "/webapi/rest/products", "method": "POST",
         "body": {"category_id": 1, "code": "C", "stock": {"price": 3}, "translations": {"pl_PL": {"name": "C"}}}}
    ]);
    let r = send(&s, &t, Method::POST, "bulk", &ops).await;
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    assert_eq!(v["errors"], false);
    let items = v["items"].as_array().expect("items");
    assert_eq!(items.len(), 5);
    assert_eq!(items[0], json!({"code": 200, "body": 1, "id": "ps-a"}));
    assert_eq!(items[1]["body"], 1);
    assert_eq!(items[2]["id"], "p-1");
    assert_eq!(items[2]["body"]["count"], "2");
    assert_eq!(items[2]["body"]["list"][1]["stock"]["stock"], "7");
    assert_eq!(items[3]["body"]["list"][0]["price"], "25.50");
    assert_eq!(items[4]["body"], 3, "POST answers the new id");
    assert_eq!(s.stock(a.base_stock_id).expect("a").stock, dec!(5));
    assert_eq!(s.counters().bulk_operations, 5);
    assert_eq!(s.requests().last().and_then(|r| r.bulk_operations), Some(5));
}

#[tokio::test]
async fn a_failing_operation_does_not_stop_the_others() {
    let s = start().await;
    let a = product(&s, "A", dec!(10.00), 1);
    let b = product(&s, "B", dec!(20.00), 2);
    let t = token(&s);
    let ops = json!([
        {"id": "ps-a", "path": format!("/webapi/rest/product-stocks/{}", a.base_stock_id), "method": "PUT", "body": {"stock": 5}},
        {"id": "ps-999", "path": "/webapi/rest/product-stocks/999", "method": "PUT", "body": {"stock": 5}},
        {"id": "bad-price", "path": format!("/webapi/rest/product-stocks/{}", b.base_stock_id), "method": "PUT", "body": {"price": 0}},
        {"id": "ps-b", "path": format!("/webapi/rest/product-stocks/{}", b.base_stock_id), "method": "PUT", "body": {"stock": 9}},
        {"id": "no-path", "method": "GET"},
        {"id": "nested", "path": "/webapi/rest/bulk", "method": "POST", "body": []}
    ]);
    let r = send(&s, &t, Method::POST, "bulk", &ops).await;
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    assert_eq!(v["errors"], true);
    let items = v["items"].as_array().expect("items");
    assert_eq!(items[0]["code"], 200);
    assert_eq!(
        items[1],
        json!({"code": 404, "body": {"error": "invalid_request", "error_description": "Resource not found"}, "id": "ps-999"})
    );
    assert_eq!(items[2]["code"], 400);
    assert_eq!(items[2]["body"]["error"], "invalid_request");
    assert_eq!(items[3], json!({"code": 200, "body": 1, "id": "ps-b"}));
    assert_eq!(items[4]["code"], 400);
    assert_eq!(items[5]["code"], 400);
    assert_eq!(s.stock(a.base_stock_id).expect("a").stock, dec!(5));
    assert_eq!(s.stock(b.base_stock_id).expect("b").stock, dec!(9));
    assert_eq!(s.stock(b.base_stock_id).expect("b").price, dec!(20.00));
}

fn stock_ops(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"id": format!("op-{i}"), "path": "/webapi/rest/product-stocks/1", "method": "PUT", "body": {"stock": i}}))
            .collect(),
    )
}

#[tokio::test]
async fn more_than_25_operations_are_refused() {
    let s = start().await;
    product(&s, "A", dec!(10.00), 1);
    let t = token(&s);
    let (st, v) = status_json(send(&s, &t, Method::POST, "bulk", &stock_ops(26)).await).await;
    assert_eq!(st, 400);
    assert_error(&v, "invalid_request");
    assert_eq!(s.stock(1).expect("stock").stock, dec!(1), "nothing ran");
    let (st, v) = status_json(send(&s, &t, Method::POST, "bulk", &stock_ops(25)).await).await;
    assert_eq!(st, 200);
    assert_eq!(v["items"].as_array().map(Vec::len), Some(25));
    assert_eq!(
        s.stock(1).expect("stock").stock,
        dec!(24),
        "in order: the last write wins"
    );
    // Not an array, empty, or GET: refused.
    assert_eq!(
        send(&s, &t, Method::POST, "bulk", &json!({"id": 1}))
            .await
            .status(),
        400
    );
    assert_eq!(
        send(&s, &t, Method::POST, "bulk", &json!([]))
            .await
            .status(),
        400
    );
    assert_eq!(get(&s, &t, "bulk").await.status(), 405);
}

#[tokio::test]
async fn bulk_costs_one_bucket_unit_unless_configured() {
    let s = start_with(|o| o.frozen_clock = true).await;
    product(&s, "A", dec!(10.00), 1);
    let t = token(&s);
    let r = send(&s, &t, Method::POST, "bulk", &stock_ops(25)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-shop-api-calls").as_deref(), Some("1"));
    s.configure(|c| c.bulk_cost_per_operation = true);
    let r = send(&s, &t, Method::POST, "bulk", &stock_ops(9)).await;
    assert_eq!(header(&r, "x-shop-api-calls").as_deref(), Some("10"));
    s.reset_buckets();
    // 25 units never fit a bucket of 10.
    let (st, v) = status_json(send(&s, &t, Method::POST, "bulk", &stock_ops(25)).await).await;
    assert_eq!(st, 429);
    assert_error(&v, "temporarily_unavailable");
}

#[tokio::test]
async fn bulk_status_with_errors_is_configurable() {
    let s = start().await;
    s.configure(|c| c.bulk_status_with_errors = 207);
    let t = token(&s);
    let ops = json!([{"id": "x", "path": "/webapi/rest/product-stocks/1", "method": "GET"}]);
    let r = send(&s, &t, Method::POST, "bulk", &ops).await;
    assert_eq!(r.status(), 207);
    assert_eq!(json(r).await["errors"], true);
}
