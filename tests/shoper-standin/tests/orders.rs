//! Orders: keyset polling with filters and paging, lines, statuses, status writeback,
//! object-mtime, creating orders and lines through the API, parcels.

mod common;

use std::collections::BTreeSet;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use shoper_standin::{NewOrder, ShoperStandin};

fn seed_orders(s: &ShoperStandin, n: usize) {
    // These tests make many calls; the bucket has its own tests.
    s.configure(|c| c.bucket_limit = 10_000);
    product(s, "SKU-1", dec!(12.50), 100_000);
    product(s, "SKU-2", dec!(999.00), 100_000);
    for i in 0..n {
        let mut o = NewOrder::new(&format!("buyer{}@example.com", i % 7)).line("SKU-1", 2);
        if i % 3 == 0 {
            o = o.line("SKU-2", 1);
        }
        s.place_order(o).expect("place");
    }
}

fn ids(v: &Value) -> Vec<u64> {
    v["list"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|o| o["order_id"].as_str().and_then(|x| x.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn keyset_polling_pages_stably_through_125_orders() {
    let s = start().await;
    seed_orders(&s, 125);
    let t = token(&s);
    // Page through everything after order 10, 50 at a time, ascending.
    let mut seen = Vec::new();
    let mut page = 1;
    loop {
        let path = format!(
            "orders?order=order_id%20ASC&filters=%7B%22order_id%22%3A%7B%22%3E%22%3A10%7D%7D&limit=50&page={page}"
        );
        let r = get(&s, &t, &path).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-shop-result-count").as_deref(), Some("115"));
        assert_eq!(header(&r, "x-shop-result-pages").as_deref(), Some("3"));
        let v = json(r).await;
        assert_eq!(v["count"], "115", "count is a string");
        assert_eq!(v["pages"], 3, "pages is a number");
        assert_eq!(v["page"], page);
        seen.extend(ids(&v));
        if page >= v["pages"].as_u64().unwrap_or(0) as usize {
            break;
        }
        page += 1;
    }
    assert_eq!(seen, (11..=125).collect::<Vec<u64>>());
    // The same query again gives the same pages.
    let a = json(get(&s, &t, "orders?order=order_id%20ASC&limit=50&page=2").await).await;
    let b = json(get(&s, &t, "orders?order=order_id%20ASC&limit=50&page=2").await).await;
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(ids(&a), (51..=100).collect::<Vec<u64>>());
    // Past the end: an empty list.
    let v = json(get(&s, &t, "orders?limit=50&page=9").await).await;
    assert_eq!(v["list"], json!([]));
}

#[tokio::test]
async fn limit_above_50_silently_becomes_10_and_bare_order_is_desc() {
    let s = start().await;
    seed_orders(&s, 30);
    let t = token(&s);
    let v = json(get(&s, &t, "orders?limit=51").await).await;
    assert_eq!(ids(&v).len(), 10);
    assert_eq!(v["pages"], 3);
    let v = json(get(&s, &t, "orders?limit=500").await).await;
    assert_eq!(ids(&v).len(), 10);
    let v = json(get(&s, &t, "orders").await).await;
    assert_eq!(
        ids(&v),
        (1..=10).collect::<Vec<u64>>(),
        "default: 10 rows, by id"
    );
    let v = json(get(&s, &t, "orders?order=order_id&limit=3").await).await;
    assert_eq!(ids(&v), vec![30, 29, 28], "bare order= is DESC");
    let v = json(get(&s, &t, "orders?order=-order_id&limit=2").await).await;
    assert_eq!(ids(&v), vec![30, 29]);
    let v = json(get(&s, &t, "orders?order[0]=order_id%20asc&limit=2").await).await;
    assert_eq!(ids(&v), vec![1, 2]);
    // Bracket filters, `in`, equality on e-mail, and sorting on another field with the id
    // breaking ties.
    let v = json(
        get(
            &s,
            &t,
            "orders?filters[order_id][%3E]=25&order=order_id%20ASC",
        )
        .await,
    )
    .await;
    assert_eq!(ids(&v), vec![26, 27, 28, 29, 30]);
    let v = json(
        get(
            &s,
            &t,
            "orders?filters=%7B%22order_id%22%3A%7B%22in%22%3A%5B3%2C5%2C99%5D%7D%7D",
        )
        .await,
    )
    .await;
    assert_eq!(ids(&v), vec![3, 5]);
    let v = json(
        get(
            &s,
            &t,
            "orders?filters[order_id][in][]=4&filters[order_id][in][]=6",
        )
        .await,
    )
    .await;
    assert_eq!(ids(&v), vec![4, 6]);
    let v = json(
        get(
            &s,
            &t,
            "orders?filters=%7B%22email%22%3A%22buyer3%40example.com%22%7D&limit=50",
        )
        .await,
    )
    .await;
    assert_eq!(ids(&v), vec![4, 11, 18, 25]);
    let v = json(get(&s, &t, "orders?order=sum%20DESC&limit=50").await).await;
    let got = ids(&v);
    assert_eq!(
        &got[..3],
        &[1, 4, 7],
        "orders with the 999.00 line first, ties by id"
    );
    // Unsupported filter field → 404 envelope.
    let (st, v) = status_json(get(&s, &t, "orders?filters[nonsense]=1").await).await;
    assert_eq!(st, 404);
    assert_error(&v, "invalid_request");
}

#[tokio::test]
async fn order_rows_use_shoper_types() {
    let s = start().await;
    seed_orders(&s, 1);
    s.mark_order_paid(1).expect("paid");
    let t = token(&s);
    let v = json(get(&s, &t, "orders/1").await).await;
    assert_eq!(v["order_id"], "1");
    assert_eq!(v["sum"], "1024.00");
    assert_eq!(v["paid"], "1024.00");
    assert_eq!(v["is_paid"], true, "a real JSON boolean");
    assert_eq!(v["is_cash_on_delivery"], false);
    assert_eq!(v["status_id"], "1");
    assert_eq!(v["status"]["type"], "1");
    assert_eq!(v["currency_id"], "1");
    let date = v["date"].as_str().expect("date");
    assert_eq!(date.len(), 19, "naive YYYY-MM-DD HH:MM:SS: {date}");
    assert!(
        v.get("products").is_none(),
        "lines are not embedded in GET /orders"
    );
    let v = json(
        get(
            &s,
            &t,
            "order-products?filters[order_id]=1&order=id%20ASC&limit=50",
        )
        .await,
    )
    .await;
    assert_eq!(v["count"], "2");
    let l = &v["list"][0];
    assert_eq!(
        (l["price"].as_str(), l["quantity"].as_str()),
        (Some("12.50"), Some("2"))
    );
    assert_eq!(
        (l["tax"].as_str(), l["tax_value"].as_str()),
        (Some("23%"), Some("23"))
    );
    assert_eq!(l["code"], "SKU-1");
    assert_eq!(l["stock_id"], "1");
    // The buyer took stock off.
    assert_eq!(s.stock(1).expect("stock").stock, dec!(99_998));
    // object-mtime: singular works, plural is a 500, the query form a 501.
    let v = json(get(&s, &t, "object-mtime/order/1").await).await;
    assert!(v["date"].as_i64().is_some_and(|d| d > 1_700_000_000));
    let (st, v) = status_json(get(&s, &t, "object-mtime/orders/1").await).await;
    assert_eq!((st, v["error"].as_str()), (500, Some("server_error")));
    let (st, _) = status_json(get(&s, &t, "object-mtime/products").await).await;
    assert_eq!(st, 500);
    let (st, v) = status_json(get(&s, &t, "object-mtime?object=product").await).await;
    assert_eq!((st, v), (501, json!({"error": "invalid_request"})));
    assert_eq!(get(&s, &t, "orders/999").await.status(), 404);
}

#[tokio::test]
async fn statuses_and_status_writeback() {
    let s = start().await;
    seed_orders(&s, 2);
    let t = token(&s);
    let v = json(get(&s, &t, "statuses?limit=50").await).await;
    assert_eq!(v["count"], "11");
    let types: BTreeSet<String> = v["list"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|x| x["type"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        types,
        ["1", "2", "3", "4"].iter().map(|x| x.to_string()).collect()
    );
    assert!(v["list"][0]["translations"]["pl_PL"]["name"].is_string());
    let v = json(get(&s, &t, "statuses?filters[type]=4").await).await;
    assert_eq!(v["count"], "3");

    let before = s.order(1).expect("order").status_date;
    s.advance_clock(std::time::Duration::from_secs(3600));
    let r = send(&s, &t, Method::PUT, "orders/1", &json!({"status_id": 7})).await;
    assert_eq!(status_json(r).await, (200, json!(1)));
    let o = s.order(1).expect("order");
    assert_eq!(o.status_id, 7);
    assert!(o.status_date > before);
    let (st, v) =
        status_json(send(&s, &t, Method::PUT, "orders/1", &json!({"status_id": 77})).await).await;
    assert_eq!(st, 400);
    assert_eq!(
        v["error_description"],
        "Wartość pola 'status_id' jest niepoprawna: Nie znaleziono wartości '77'"
    );
    assert_eq!(s.order(1).expect("order").status_id, 7);
    // Filter on status.
    let v = json(get(&s, &t, "orders?filters[status_id]=7").await).await;
    assert_eq!(ids(&v), vec![1]);
}

#[tokio::test]
async fn an_order_update_changes_only_the_notes_it_names() {
    let s = start().await;
    seed_orders(&s, 1);
    let t = token(&s);
    s.edit_order(1, |o| {
        o.notes = "Proszę dzwonić".into();
        o.notes_priv = "VIP".into();
    })
    .expect("the staff's notes");
    let status = s.order(1).expect("order").status_id;
    let r = send(
        &s,
        &t,
        Method::PUT,
        "orders/1",
        &json!({"notes_pub": "Faktura FS/1: https://x.pl/i/1", "unknown_field": 5}),
    )
    .await;
    assert_eq!(status_json(r).await, (200, json!(1)));
    let v = json(get(&s, &t, "orders/1").await).await;
    assert_eq!(v["notes_pub"], "Faktura FS/1: https://x.pl/i/1");
    assert_eq!(
        (v["notes"].as_str(), v["notes_priv"].as_str()),
        (Some("Proszę dzwonić"), Some("VIP")),
        "the other notes stay"
    );
    assert_eq!(v["status_id"], status.to_string(), "and so does the status");
    assert!(v.get("unknown_field").is_none());
    for bad in [json!({"a": 1}), json!(["x"]), json!(true), Value::Null] {
        let (st, v) =
            status_json(send(&s, &t, Method::PUT, "orders/1", &json!({"notes_pub": bad})).await)
                .await;
        assert_eq!((st, v["error"].as_str()), (400, Some("invalid_request")));
        assert_eq!(
            v["error_description"],
            "Wartość pola 'notes_pub' jest niepoprawna: Wartość nie jest tekstem"
        );
    }
    assert_eq!(
        s.order(1).expect("order").notes_pub,
        "Faktura FS/1: https://x.pl/i/1",
        "a refused update changes nothing"
    );
    let (st, v) = status_json(
        send(
            &s,
            &t,
            Method::PUT,
            "orders/999",
            &json!({"notes_pub": "x"}),
        )
        .await,
    )
    .await;
    assert_eq!((st, v["error"].as_str()), (404, Some("invalid_request")));
    // With a limit set, longer notes are kept cut, without an error.
    s.configure(|c| c.notes_max_chars = Some(10));
    let r = send(
        &s,
        &t,
        Method::PUT,
        "orders/1",
        &json!({"notes_pub": "Zażółć gęślą jaźń"}),
    )
    .await;
    assert_eq!(status_json(r).await, (200, json!(1)));
    assert_eq!(s.order(1).expect("order").notes_pub, "Zażółć gęś");
}

#[tokio::test]
async fn creating_orders_and_lines_through_the_api() {
    let s = start().await;
    let p = product(&s, "SKU-1", dec!(999.00), 5);
    let t = token(&s);
    let (st, v) =
        status_json(send(&s, &t, Method::POST, "orders", &json!({"user_id": 1})).await).await;
    assert_eq!(st, 400);
    let d = v["error_description"].as_str().unwrap_or_default();
    assert!(d.starts_with("Wartość pola 'email' jest niepoprawna: Pole wymagane; Wartość pola 'status_id' jest niepoprawna: Pole wymagane"), "{d}");
    let body = json!({"email": "a@b.pl", "status_id": 1, "payment_id": 1, "shipping_id": 8, "user_id": 0, "shipping_tax_id": 1, "code": "X"});
    let (st, v) = status_json(send(&s, &t, Method::POST, "orders", &body).await).await;
    assert_eq!(st, 400);
    assert_eq!(
        v["error_description"],
        "Wartość pola 'user_id' jest niepoprawna: Nie znaleziono wartości '0'"
    );
    let mut body = body;
    body["user_id"] = json!(1);
    let (st, id) = status_json(send(&s, &t, Method::POST, "orders", &body).await).await;
    assert_eq!(st, 200);
    let oid = id.as_u64().expect("bare id");
    // The same code again is fine (no idempotency).
    let (st, id2) = status_json(send(&s, &t, Method::POST, "orders", &body).await).await;
    assert_eq!(st, 200);
    assert_ne!(id2, json!(oid));
    let line = json!({"order_id": oid, "product_id": p.product_id, "stock_id": p.base_stock_id, "quantity": 2, "price": 999.00, "name": "X"});
    let (st, _) = status_json(send(&s, &t, Method::POST, "order-products", &line).await).await;
    assert_eq!(st, 200);
    assert_eq!(
        s.stock(p.base_stock_id).expect("stock").stock,
        dec!(3),
        "the shop decrements"
    );
    let v = json(get(&s, &t, &format!("orders/{oid}")).await).await;
    assert_eq!(v["sum"], "1998.00");
    assert_eq!(v["origin"], "4");
    // With stock updating off, nothing is taken.
    s.configure(|c| c.shopping_update_stock_on_buy = false);
    send(&s, &t, Method::POST, "order-products", &line).await;
    assert_eq!(s.stock(p.base_stock_id).expect("stock").stock, dec!(3));
}

#[tokio::test]
async fn parcels_ship_lines_and_move_the_status() {
    let s = start().await;
    product(&s, "SKU-1", dec!(10.00), 10);
    product(&s, "SKU-2", dec!(20.00), 10);
    let o = s
        .place_order(NewOrder::new("a@b.pl").line("SKU-1", 2).line("SKU-2", 1))
        .expect("order");
    let lines = s.order_lines(o.order_id);
    let t = token(&s);
    // Part: one of the first line, unsent.
    let body = json!({"order_id": o.order_id, "shipping_id": 8, "products": [{"order_product_id": lines[0].id, "quantity": 1}]});
    let (st, pid) = status_json(send(&s, &t, Method::POST, "parcels", &body).await).await;
    assert_eq!(st, 200);
    assert_eq!(
        s.order(o.order_id).expect("order").status_id,
        1,
        "not sent yet"
    );
    // The rest, sent with a tracking number: the order moves to the configured status.
    let body =
        json!({"order_id": o.order_id, "shipping_id": 8, "shipping_code": "DPD-123", "sent": true});
    assert_eq!(
        send(&s, &t, Method::POST, "parcels", &body).await.status(),
        200
    );
    assert_eq!(s.order(o.order_id).expect("order").status_id, 7);
    let (st, v) = status_json(send(&s, &t, Method::POST, "parcels", &body).await).await;
    assert_eq!(
        (st, v["error_description"].as_str()),
        (400, Some("All products has been already sent"))
    );
    // A sent parcel takes only a new shipping_code.
    let sent_id = s
        .parcels()
        .iter()
        .find(|p| p.sent)
        .map(|p| p.parcel_id)
        .expect("sent");
    let r = send(
        &s,
        &t,
        Method::PUT,
        &format!("parcels/{sent_id}"),
        &json!({"shipping_code": "DPD-456"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let (st, v) = status_json(
        send(
            &s,
            &t,
            Method::PUT,
            &format!("parcels/{sent_id}"),
            &json!({"shipping_id": 9}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 400);
    assert_error(&v, "parcel_cannot_modify");
    // Sending the first parcel later.
    let pid = pid.as_u64().expect("id");
    assert_eq!(
        send(
            &s,
            &t,
            Method::PUT,
            &format!("parcels/{pid}"),
            &json!({"sent": 1})
        )
        .await
        .status(),
        200
    );
    let v = json(get(&s, &t, &format!("parcels?filters[order_id]={}", o.order_id)).await).await;
    assert_eq!(v["count"], "2");
    assert_eq!(v["list"][0]["sent"], "1");
    let v = json(get(&s, &t, &format!("orders/{}", o.order_id)).await).await;
    assert_eq!(v["total_parcels"], "2");
}
