//! Offers, PATCH product-offers, quantity and price commands (checklist items 23–29).

mod common;

use std::time::Duration;

use allegro_standin::NewOffer;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const QTY: &str = "/sale/offer-quantity-change-commands";
const PRICE: &str = "/sale/offer-price-change-commands";

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn qty_body(change: &str, value: i64, ids: &[&str]) -> Value {
    json!({
        "modification": {"changeType": change, "value": value},
        "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": ids.iter().map(|i| json!({"id": i})).collect::<Vec<_>>()}]
    })
}

#[tokio::test]
async fn list_offers_by_external_id_with_paging() {
    let s = start().await;
    let t = token(&s);
    let a = offer(&s, "SKU-A", "10.00", 5);
    let b = offer(&s, "SKU-B", "12.50", 0);
    let c = offer(&s, "SKU-C", "99.99", 7);
    s.add_offer(NewOffer {
        seller_id: Some("999".into()),
        ..NewOffer::new("SKU-A", "foreign", "1.00", 1)
    })
    .unwrap();
    s.add_offer(NewOffer {
        archived: true,
        ..NewOffer::new("SKU-A", "archived", "1.00", 1)
    })
    .unwrap();

    let v = json(get(&s, &t, "/sale/offers?external.id=SKU-A").await).await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["totalCount"], 1);
    let o = &v["offers"][0];
    assert_eq!(o["id"], a.id.as_str());
    assert_eq!(o["external"]["id"], "SKU-A");
    assert_eq!(
        o["sellingMode"]["price"],
        json!({"amount": "10.00", "currency": "PLN"})
    );
    assert_eq!(o["stock"]["available"], 5);
    assert_eq!(o["publication"]["status"], "ACTIVE");

    let v = json(get(&s, &t, "/sale/offers?external.id=SKU-A&external.id=SKU-C").await).await;
    assert_eq!(v["count"], 2);
    let v = json(get(&s, &t, &format!("/sale/offers?offer.id={}", b.id)).await).await;
    assert_eq!(v["offers"][0]["external"]["id"], "SKU-B");
    // Default: 20 per page, newest first.
    let v = json(get(&s, &t, "/sale/offers").await).await;
    assert_eq!(v["totalCount"], 3);
    assert_eq!(v["offers"][0]["id"], c.id.as_str());
    let v = json(get(&s, &t, "/sale/offers?limit=1&offset=1").await).await;
    assert_eq!(
        (v["count"].as_u64(), v["totalCount"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(v["offers"][0]["id"], b.id.as_str());
    let v = json(get(&s, &t, "/sale/offers?publication.status=ACTIVE&limit=1000").await).await;
    assert_eq!(v["totalCount"], 3);

    // Refusals: > 100 external ids, limit out of range, bad status.
    let many: String = (0..101).map(|i| format!("external.id=S{i}&")).collect();
    let r = get(&s, &t, &format!("/sale/offers?{many}")).await;
    assert_eq!(r.status(), 400);
    the_error(&json(r).await);
    for q in [
        "limit=0",
        "limit=1001",
        "offset=-1",
        "publication.status=SOLD",
    ] {
        let r = get(&s, &t, &format!("/sale/offers?{q}")).await;
        assert_eq!(r.status(), 400, "{q}");
        the_error(&json(r).await);
    }
    s.shutdown().await;
}

#[tokio::test]
async fn quantity_command_runs_asynchronously_and_reports_tasks() {
    let s = start_with(|o| o.config.command_delay_ms = 2_000).await;
    let t = token(&s);
    let a = offer(&s, "A", "10.00", 5);
    let b = offer(&s, "B", "10.00", 5);
    let archived = s
        .add_offer(NewOffer {
            archived: true,
            ..NewOffer::new("Z", "old", "1.00", 3)
        })
        .unwrap();
    let foreign = s
        .add_offer(NewOffer {
            seller_id: Some("1".into()),
            ..NewOffer::new("F", "f", "1.00", 3)
        })
        .unwrap();
    let id = uuid();
    let body = qty_body(
        "FIXED",
        42,
        &[&a.id, "77777777777", &archived.id, &foreign.id, &b.id],
    );
    let (st, rep) =
        status_json(send(&s, &t, Method::PUT, &format!("{QTY}/{id}"), &body).await).await;
    assert_eq!(st, 201, "{rep}");
    assert_eq!(rep["id"], id.as_str());
    assert_eq!(rep["completedAt"], Value::Null);
    assert_eq!(
        rep["taskCount"],
        json!({"total": 0, "success": 0, "failed": 0})
    );
    assert!(rep["createdAt"].as_str().unwrap().ends_with('Z'));

    // Not yet processed.
    let v = json(get(&s, &t, &format!("{QTY}/{id}")).await).await;
    assert_eq!(v["completedAt"], Value::Null);
    let v = json(get(&s, &t, &format!("{QTY}/{id}/tasks")).await).await;
    assert_eq!(v["tasks"][0]["status"], "NEW");
    assert_eq!(s.offer(&a.id).unwrap().available, 5);

    s.advance_clock(Duration::from_secs(2));
    let v = json(get(&s, &t, &format!("{QTY}/{id}")).await).await;
    assert!(v["completedAt"].is_string(), "{v}");
    assert_eq!(
        v["taskCount"],
        json!({"total": 5, "success": 2, "failed": 3})
    );
    assert_eq!(s.offer(&a.id).unwrap().available, 42);
    assert_eq!(s.offer(&b.id).unwrap().available, 42);
    assert_eq!(s.offer(&archived.id).unwrap().available, 3);

    let v = json(get(&s, &t, &format!("{QTY}/{id}/tasks")).await).await;
    let tasks = v["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 5);
    assert_eq!(tasks[0]["offer"]["id"], a.id.as_str());
    assert_eq!(tasks[0]["field"], "quantity");
    assert_eq!(tasks[0]["status"], "SUCCESS");
    assert_eq!(tasks[0]["errors"], json!([]));
    for fail in &tasks[1..4] {
        assert_eq!(fail["status"], "FAIL");
        assert_eq!(fail["message"], "Offer not found.");
        assert_eq!(fail["errors"][0]["code"], "OFFER_NOT_FOUND");
        assert_eq!(fail["errors"][0]["userMessage"], "Offer not found.");
    }
    assert_eq!(tasks[4]["status"], "SUCCESS");

    // Paging of tasks.
    let v = json(get(&s, &t, &format!("{QTY}/{id}/tasks?limit=2&offset=3")).await).await;
    assert_eq!(v["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(v["tasks"][1]["offer"]["id"], b.id.as_str());
    for q in ["limit=0", "limit=1001", "offset=1000", "offset=-1"] {
        let r = get(&s, &t, &format!("{QTY}/{id}/tasks?{q}")).await;
        assert_eq!(r.status(), 422, "{q}");
        the_error(&json(r).await);
    }
    s.shutdown().await;
}

#[tokio::test]
async fn gain_and_injected_task_failures() {
    let s = start().await;
    let t = token(&s);
    let a = offer(&s, "A", "10.00", 5);
    let b = offer(&s, "B", "10.00", 1);
    let c = offer(&s, "C", "10.00", 1);
    s.fail_next_task(
        &c.id,
        "EXCEPTION_DURING_OFFER_QUANTITY_UPDATE",
        "Try again.",
    );
    let id = uuid();
    let r = send(
        &s,
        &t,
        Method::PUT,
        &format!("{QTY}/{id}"),
        &qty_body("GAIN", -2, &[&a.id, &b.id, &c.id]),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v = json(get(&s, &t, &format!("{QTY}/{id}/tasks")).await).await;
    assert_eq!(v["tasks"][0]["status"], "SUCCESS");
    assert_eq!(
        v["tasks"][1]["errors"][0]["code"],
        "ATTEMPT_TO_CHANGE_OFFER_QUANTITY_TO_INVALID_VALUE"
    );
    assert_eq!(
        v["tasks"][2]["errors"][0]["code"],
        "EXCEPTION_DURING_OFFER_QUANTITY_UPDATE"
    );
    assert_eq!(s.offer(&a.id).unwrap().available, 3);
    // FIXED 0 ends the offer (configurable guess).
    let r = send(
        &s,
        &t,
        Method::PUT,
        &format!("{QTY}/{}", uuid()),
        &qty_body("FIXED", 0, &[&a.id]),
    )
    .await;
    assert_eq!(r.status(), 201);
    let _ = get(&s, &t, "/sale/offers").await;
    assert_eq!(s.offer(&a.id).unwrap().status, "ENDED");
    s.shutdown().await;
}

#[tokio::test]
async fn an_omitted_task_leaves_its_offer_out_of_the_report_and_unchanged() {
    let s = start().await;
    let t = token(&s);
    let a = offer(&s, "A", "10.00", 5);
    let b = offer(&s, "B", "10.00", 5);
    let r = client()
        .post(format!("{}/commands/omit-next-task", s.control_url()))
        .json(&json!({"offer_id": a.id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for expected_tasks in [1, 2] {
        let id = uuid();
        let body = qty_body("FIXED", 2, &[&a.id, &b.id]);
        let r = send(&s, &t, Method::PUT, &format!("{QTY}/{id}"), &body).await;
        assert_eq!(r.status(), 201);
        let v = json(get(&s, &t, &format!("{QTY}/{id}/tasks")).await).await;
        let tasks = v["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), expected_tasks, "{v}");
        if expected_tasks == 1 {
            assert_eq!(tasks[0]["offer"]["id"], b.id.as_str());
            assert_eq!(s.offer(&a.id).unwrap().available, 5);
        }
    }
    assert_eq!(s.offer(&a.id).unwrap().available, 2);
    s.shutdown().await;
}

#[tokio::test]
async fn command_ids_are_single_use() {
    let s = start().await;
    let t = token(&s);
    let a = offer(&s, "A", "10.00", 5);
    let id = uuid();
    let body = qty_body("GAIN", 1, &[&a.id]);
    assert_eq!(
        send(&s, &t, Method::PUT, &format!("{QTY}/{id}"), &body)
            .await
            .status(),
        201
    );
    let first = json(get(&s, &t, &format!("{QTY}/{id}")).await).await;
    assert_eq!(s.offer(&a.id).unwrap().available, 6);
    // Same id, same body: the original report, no second run.
    let (st, again) =
        status_json(send(&s, &t, Method::PUT, &format!("{QTY}/{id}"), &body).await).await;
    assert_eq!(st, 201);
    assert_eq!(again, first);
    let _ = get(&s, &t, "/sale/offers").await;
    assert_eq!(s.offer(&a.id).unwrap().available, 6);
    assert_eq!(s.counters().commands_completed, 1);
    // Same id, other body: 409.
    let (st, v) = status_json(
        send(
            &s,
            &t,
            Method::PUT,
            &format!("{QTY}/{id}"),
            &qty_body("GAIN", 2, &[&a.id]),
        )
        .await,
    )
    .await;
    assert_eq!(st, 409);
    let e = the_error(&v);
    assert_eq!(
        e["code"],
        "COMMAND_ALREADY_REGISTERED_WITH_DIFFERENT_CONTENT"
    );
    assert_eq!(
        e["message"],
        "Command with the given id but with different content is already registered."
    );
    // Unknown id: 404 COMMAND_NOT_FOUND; the price family does not see quantity ids.
    for path in [
        format!("{QTY}/{}", uuid()),
        format!("{PRICE}/{id}"),
        format!("{QTY}/{}/tasks", uuid()),
    ] {
        let (st, v) = status_json(get(&s, &t, &path).await).await;
        assert_eq!(st, 404, "{path}");
        let e = the_error(&v);
        assert_eq!(e["code"], "COMMAND_NOT_FOUND");
        assert_eq!(e["message"], "Command not found.");
        assert_eq!(e["path"], "");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn commands_are_validated_synchronously() {
    let s = start().await;
    let t = token(&s);
    let a = offer(&s, "A", "10.00", 5);
    let ids: Vec<String> = (0..1001).map(|i| format!("{}", 10_000 + i)).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let cases = [
        (
            QTY,
            json!({"modification": {"changeType": "SET", "value": 1}, "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": a.id}]}]}),
        ),
        (
            QTY,
            json!({"modification": {"changeType": "FIXED", "value": 1}}),
        ),
        (
            QTY,
            json!({"modification": {"changeType": "FIXED", "value": -1}, "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": a.id}]}]}),
        ),
        (
            QTY,
            json!({"modification": {"changeType": "FIXED", "value": 1}, "offerCriteria": [{"type": "ALL", "offers": [{"id": a.id}]}]}),
        ),
        (QTY, qty_body("FIXED", 1, &refs)),
        (
            PRICE,
            json!({"modification": {"type": "FIXED_PRICE", "price": {"amount": "12.345", "currency": "PLN"}}, "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": a.id}]}]}),
        ),
        (
            PRICE,
            json!({"modification": {"type": "FIXED_PRICE", "price": {"amount": 12, "currency": "PLN"}}, "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": a.id}]}]}),
        ),
        (
            PRICE,
            json!({"modification": {"type": "FIXED_PRICE", "price": {"amount": "-1.00", "currency": "PLN"}}, "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": a.id}]}]}),
        ),
        (
            PRICE,
            json!({"modification": {"type": "DOUBLE"}, "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": a.id}]}]}),
        ),
    ];
    for (family, body) in cases {
        let (st, v) =
            status_json(send(&s, &t, Method::PUT, &format!("{family}/{}", uuid()), &body).await)
                .await;
        assert_eq!(st, 422, "{body}: {v}");
        let e = the_error(&v);
        assert_eq!(e["code"], "VALIDATION_ERROR");
    }
    // A commandId that is not a UUID.
    let r = send(
        &s,
        &t,
        Method::PUT,
        &format!("{QTY}/not-a-uuid"),
        &qty_body("FIXED", 1, &[&a.id]),
    )
    .await;
    assert_eq!(r.status(), 422);
    // Malformed JSON: 400.
    let r = client()
        .put(format!("{}{QTY}/{}", s.api_url(), uuid()))
        .bearer_auth(&t)
        .header("accept", allegro_standin::VND)
        .header("content-type", allegro_standin::VND)
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    the_error(&json(r).await);
    assert!(s.commands().is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn price_command_changes_prices() {
    let s = start().await;
    let t = token(&s);
    let a = offer(&s, "A", "100.00", 5);
    let b = offer(&s, "B", "10.00", 5);
    let crit =
        json!([{"type": "CONTAINS_OFFERS", "offers": [{"id": a.id}, {"id": b.id}, {"id": "1"}]}]);
    let fixed = json!({"modification": {"type": "FIXED_PRICE", "marketplaceId": "allegro-pl", "price": {"amount": "79.90", "currency": "PLN"}}, "offerCriteria": crit});
    let id = uuid();
    let (st, rep) =
        status_json(send(&s, &t, Method::PUT, &format!("{PRICE}/{id}"), &fixed).await).await;
    assert_eq!((st, rep["taskCount"]["total"].as_u64()), (201, Some(0)));
    let v = json(get(&s, &t, &format!("{PRICE}/{id}")).await).await;
    assert_eq!(
        v["taskCount"],
        json!({"total": 3, "success": 2, "failed": 1})
    );
    let tasks = json(get(&s, &t, &format!("{PRICE}/{id}/tasks")).await).await;
    assert_eq!(tasks["tasks"][0]["field"], "price");
    assert_eq!(tasks["tasks"][2]["errors"][0]["code"], "OFFER_NOT_FOUND");
    assert_eq!(s.offer(&a.id).unwrap().price.to_string(), "79.90");
    let pct = json!({"modification": {"type": "DECREASE_PERCENTAGE", "percentage": "10"}, "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": b.id}]}]});
    assert_eq!(
        send(&s, &t, Method::PUT, &format!("{PRICE}/{}", uuid()), &pct)
            .await
            .status(),
        201
    );
    let v = json(get(&s, &t, &format!("/sale/offers?offer.id={}", b.id)).await).await;
    // 79.90 (set above) less 10 %.
    assert_eq!(v["offers"][0]["sellingMode"]["price"]["amount"], "71.91");
    let inc = json!({"modification": {"type": "INCREASE_PRICE", "value": {"amount": "0.99", "currency": "PLN"}}, "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": b.id}]}]});
    assert_eq!(
        send(&s, &t, Method::PUT, &format!("{PRICE}/{}", uuid()), &inc)
            .await
            .status(),
        201
    );
    let _ = get(&s, &t, "/sale/offers").await;
    assert_eq!(s.offer(&b.id).unwrap().price.to_string(), "72.90");
    s.shutdown().await;
}

#[tokio::test]
async fn patch_product_offer_stock_price_and_end() {
    let s = start().await;
    let t = token(&s);
    let a = offer(&s, "A", "10.00", 5);
    let path = format!("/sale/product-offers/{}", a.id);
    let (st, v) = status_json(send(&s, &t, Method::PATCH, &path, &json!({"sellingMode": {"price": {"amount": "129.99", "currency": "PLN"}}, "stock": {"available": 7}})).await).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["stock"]["available"], 7);
    assert_eq!(v["sellingMode"]["price"]["amount"], "129.99");
    let (st, v) = status_json(
        send(
            &s,
            &t,
            Method::PATCH,
            &path,
            &json!({"stock": {"available": 0}}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["publication"]["status"], "ENDED");
    let (st, v) = status_json(get(&s, &t, &path).await).await;
    assert_eq!((st, v["stock"]["available"].as_i64()), (200, Some(0)));
    // Refusals.
    let r = send(
        &s,
        &t,
        Method::PATCH,
        "/sale/product-offers/123",
        &json!({"stock": {"available": 1}}),
    )
    .await;
    assert_eq!(r.status(), 404);
    the_error(&json(r).await);
    let (st, v) = status_json(
        send(
            &s,
            &t,
            Method::PATCH,
            &path,
            &json!({"stock": {"available": -1}}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 422);
    assert_eq!(the_error(&v)["path"], "stock.available");
    let r = send(
        &s,
        &t,
        Method::PATCH,
        &path,
        &json!({"sellingMode": {"price": {"amount": "1.001", "currency": "PLN"}}}),
    )
    .await;
    assert_eq!(r.status(), 422);
    s.shutdown().await;
}

#[tokio::test]
async fn patch_product_offer_async_202_then_409_then_303() {
    let s = start_with(|o| {
        o.config.patch_async = true;
        o.config.patch_async_ms = 5_000;
        o.config.patch_async_retry_after_secs = 2;
    })
    .await;
    let t = token(&s);
    let a = offer(&s, "A", "10.00", 5);
    let path = format!("/sale/product-offers/{}", a.id);
    let r = send(
        &s,
        &t,
        Method::PATCH,
        &path,
        &json!({"stock": {"available": 9}}),
    )
    .await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["retry-after"], "2");
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{}{path}/operations/", s.api_url())),
        "{location}"
    );
    let op_path = location.trim_start_matches(&s.api_url()).to_string();
    // Another edit while pending: 409.
    let r = send(
        &s,
        &t,
        Method::PATCH,
        &path,
        &json!({"stock": {"available": 1}}),
    )
    .await;
    assert_eq!(r.status(), 409);
    the_error(&json(r).await);
    assert_eq!(get(&s, &t, &op_path).await.status(), 202);
    assert_eq!(s.offer(&a.id).unwrap().available, 5);
    s.advance_clock(Duration::from_secs(5));
    let r = get(&s, &t, &op_path).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("{}{path}", s.api_url())
    );
    assert_eq!(s.offer(&a.id).unwrap().available, 9);
    assert_eq!(
        send(
            &s,
            &t,
            Method::PATCH,
            &path,
            &json!({"stock": {"available": 1}})
        )
        .await
        .status(),
        202
    );
    s.shutdown().await;
}
