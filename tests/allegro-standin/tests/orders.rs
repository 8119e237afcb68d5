//! Orders: events, event stats, checkout forms, fulfillment, shipments, carriers, invoices,
//! customer returns and the buyer-side hooks (checklist items 16–22, 29).

mod common;

use std::time::Duration;

use allegro_standin::{AllegroStandin, BETA, NewCompany, NewOrder, VND};
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn place(s: &AllegroStandin, offer_id: &str, qty: u32) -> allegro_standin::Order {
    s.place_order(NewOrder::one(offer_id, qty))
        .expect("place order")
}

fn event_types(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn placing_an_order_emits_bought_filled_in_ready_and_takes_stock() {
    let s = start().await;
    let t = token(&s);
    let o = offer(&s, "SKU-1", "123.45", 3);
    let order = place(&s, &o.id, 2);
    assert_eq!(order.status, "READY_FOR_PROCESSING");
    let off = s.offer(&o.id).unwrap();
    assert_eq!((off.available, off.sold), (1, 2));

    let v = json(get(&s, &t, "/order/events").await).await;
    assert_eq!(
        event_types(&v),
        ["BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING"]
    );
    let e = &v["events"][2];
    for k in ["id", "occurredAt", "type", "order"] {
        assert!(e.get(k).is_some(), "{k}");
    }
    assert_eq!(e["order"]["seller"]["id"], s.seller_id());
    assert_eq!(e["order"]["checkoutForm"]["id"], order.id.as_str());
    assert_eq!(
        e["order"]["checkoutForm"]["revision"],
        order.revision.as_str()
    );
    assert_eq!(
        e["order"]["lineItems"][0]["offer"]["external"]["id"],
        "SKU-1"
    );
    assert_eq!(
        e["order"]["lineItems"][0]["price"],
        json!({"amount": "123.45", "currency": "PLN"})
    );
    assert!(e["order"]["buyer"]["login"].is_string());
    // Ids: fixed-width numeric strings, ascending as text and as numbers.
    let ids: Vec<String> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ids.iter()
            .all(|i| i.len() == 16 && i.chars().all(|c| c.is_ascii_digit()))
    );
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    s.shutdown().await;
}

#[tokio::test]
async fn events_from_is_exclusive_limit_and_type_filters() {
    let s = start().await;
    let t = token(&s);
    let o = offer(&s, "SKU-1", "10.00", 10);
    let a = place(&s, &o.id, 1);
    let _b = place(&s, &o.id, 1);
    s.cancel_order(&a.id).unwrap();
    let all = json(get(&s, &t, "/order/events").await).await;
    assert_eq!(all["events"].as_array().unwrap().len(), 7);
    let third = all["events"][2]["id"].as_str().unwrap().to_string();
    let v = json(get(&s, &t, &format!("/order/events?from={third}")).await).await;
    assert_eq!(v["events"].as_array().unwrap().len(), 4);
    assert_eq!(v["events"][0]["id"], all["events"][3]["id"]);
    let v = json(get(&s, &t, &format!("/order/events?from={third}&limit=2")).await).await;
    assert_eq!(v["events"].as_array().unwrap().len(), 2);
    let v = json(
        get(
            &s,
            &t,
            "/order/events?type=READY_FOR_PROCESSING&type=BUYER_CANCELLED",
        )
        .await,
    )
    .await;
    assert_eq!(
        event_types(&v),
        [
            "READY_FOR_PROCESSING",
            "READY_FOR_PROCESSING",
            "BUYER_CANCELLED"
        ]
    );
    // The last id: nothing new.
    let last = all["events"][6]["id"].as_str().unwrap();
    let v = json(get(&s, &t, &format!("/order/events?from={last}")).await).await;
    assert_eq!(v["events"], json!([]));
    for q in ["limit=0", "limit=1001", "type=SHIPPED", "from=abc"] {
        let (st, v) = status_json(get(&s, &t, &format!("/order/events?{q}")).await).await;
        assert_eq!(st, 422, "{q}");
        the_error(&v);
    }
    assert_eq!(
        json(get(&s, &t, "/order/events?limit=1000").await).await["events"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    s.shutdown().await;
}

#[tokio::test]
async fn event_hooks_duplicate_out_of_order_late_and_retention() {
    let s = start().await;
    let t = token(&s);
    let o = offer(&s, "SKU-1", "10.00", 10);
    let a = place(&s, &o.id, 1);
    let dup = s.inject_duplicate_ready(&a.id).unwrap();
    let ooo = s.inject_out_of_order(&a.id, "FILLED_IN").unwrap();
    let late = s
        .insert_late_event(
            &a.id,
            "BOUGHT",
            chrono::Utc::now() - chrono::Duration::hours(3),
        )
        .unwrap();
    let v = json(get(&s, &t, "/order/events").await).await;
    assert_eq!(
        event_types(&v),
        [
            "BOUGHT",
            "FILLED_IN",
            "READY_FOR_PROCESSING",
            "READY_FOR_PROCESSING",
            "FILLED_IN",
            "BOUGHT"
        ]
    );
    let ev = v["events"].as_array().unwrap();
    assert_eq!(ev[3]["id"], dup.id.as_str());
    assert_eq!(ev[4]["id"], ooo.id.as_str());
    // Ids keep going up while occurredAt goes back.
    let at = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(ev[i]["occurredAt"].as_str().unwrap()).unwrap()
    };
    assert!(at(4) < at(3));
    assert!(at(5) < at(0));
    assert!(
        ev.windows(2)
            .all(|w| w[0]["id"].as_str() < w[1]["id"].as_str())
    );
    assert_eq!(ev[5]["id"], late.id.as_str());
    // The same over the control API.
    let r = client()
        .post(format!("{}/orders/{}/events", s.control_url(), a.id))
        .json(&json!({"kind": "late", "type": "BUYER_CANCELLED", "occurredAt": "2026-01-01T00:00:00.000Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stats = json(get(&s, &t, "/order/event-stats").await).await;
    assert_eq!(
        stats["latestEvent"]["occurredAt"],
        "2026-01-01T00:00:00.000Z"
    );

    // Retention: 60 days.
    s.advance_clock(Duration::from_secs(59 * 24 * 3600));
    let t = token(&s);
    assert_eq!(
        json(get(&s, &t, "/order/events").await).await["events"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    s.advance_clock(Duration::from_secs(24 * 3600));
    let t = token(&s);
    assert_eq!(
        json(get(&s, &t, "/order/events").await).await["events"],
        json!([])
    );
    assert_eq!(
        json(get(&s, &t, "/order/event-stats").await).await["latestEvent"],
        Value::Null
    );
    s.shutdown().await;
}

#[tokio::test]
async fn event_stats_gives_the_latest_event_to_start_from() {
    let s = start().await;
    let t = token(&s);
    let o = offer(&s, "SKU-1", "10.00", 10);
    place(&s, &o.id, 1);
    let stats = json(get(&s, &t, "/order/event-stats").await).await;
    let last = s.events().last().cloned().unwrap();
    assert_eq!(stats["latestEvent"]["id"], last.id.as_str());
    assert!(stats["latestEvent"]["occurredAt"].is_string());
    let from = format!("/order/events?from={}", last.id);
    assert_eq!(json(get(&s, &t, &from).await).await["events"], json!([]));
    place(&s, &o.id, 1);
    assert_eq!(
        json(get(&s, &t, &from).await).await["events"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    s.shutdown().await;
}

#[tokio::test]
async fn checkout_form_has_the_full_shape() {
    let s = start().await;
    let t = token(&s);
    let o = offer(&s, "AH-129834", "123.45", 3);
    let order = s
        .place_order(NewOrder {
            invoice_company: Some(NewCompany {
                name: "Udix Sp. z o.o.".into(),
                nip: "1111111111".into(),
            }),
            message_to_seller: Some("red please".into()),
            ..NewOrder::one(&o.id, 1)
        })
        .unwrap();
    let (st, f) =
        status_json(get(&s, &t, &format!("/order/checkout-forms/{}", order.id)).await).await;
    assert_eq!(st, 200);
    assert_eq!(f["id"], order.id.as_str());
    assert_eq!(f["status"], "READY_FOR_PROCESSING");
    assert_eq!(f["messageToSeller"], "red please");
    assert_eq!(f["revision"], order.revision.as_str());
    assert_eq!(f["fulfillment"]["status"], "NEW");
    assert_eq!(f["fulfillment"]["shipmentSummary"]["lineItemsSent"], "NONE");
    assert_eq!(f["payment"]["type"], "ONLINE");
    assert_eq!(
        f["payment"]["paidAmount"],
        json!({"amount": "135.44", "currency": "PLN"})
    );
    assert_eq!(
        f["summary"]["totalToPay"],
        json!({"amount": "135.44", "currency": "PLN"})
    );
    assert_eq!(
        f["delivery"]["cost"],
        json!({"amount": "11.99", "currency": "PLN"})
    );
    assert!(f["delivery"]["method"]["id"].is_string());
    assert!(f["delivery"]["pickupPoint"]["id"].is_string());
    assert_eq!(f["invoice"]["required"], true);
    assert_eq!(
        f["invoice"]["address"]["company"]["ids"][0],
        json!({"type": "PL_NIP", "value": "1111111111"})
    );
    let li = &f["lineItems"][0];
    assert!(uuid::Uuid::parse_str(li["id"].as_str().unwrap()).is_ok());
    assert_eq!(li["offer"]["id"], o.id.as_str());
    assert_eq!(li["offer"]["external"]["id"], "AH-129834");
    assert_eq!(li["price"]["amount"], "123.45");
    assert_eq!(li["originalPrice"]["amount"], "123.45");
    assert_eq!(li["quantity"], 1);
    assert!(li["boughtAt"].is_string());
    assert_eq!(f["surcharges"], json!([]));
    assert_eq!(f["marketplace"]["id"], "allegro-pl");
    for k in ["buyer", "updatedAt", "delivery"] {
        assert!(!f[k].is_null(), "{k}");
    }
    assert!(uuid::Uuid::parse_str(f["payment"]["id"].as_str().unwrap()).is_ok());

    // Refusals: not a UUID → 422; unknown or another seller's → 404.
    let (st, v) = status_json(get(&s, &t, "/order/checkout-forms/12345").await).await;
    assert_eq!(st, 422);
    the_error(&v);
    let (st, v) = status_json(
        get(
            &s,
            &t,
            &format!("/order/checkout-forms/{}", uuid::Uuid::new_v4()),
        )
        .await,
    )
    .await;
    assert_eq!(st, 404);
    the_error(&v);
    let other = s.issue_tokens("555").access_token;
    assert_eq!(
        get(&s, &other, &format!("/order/checkout-forms/{}", order.id))
            .await
            .status(),
        404
    );
    s.shutdown().await;
}

#[tokio::test]
async fn checkout_form_list_filters_paging_and_the_10000_cap() {
    let s = start().await;
    let t = token(&s);
    let o = offer(&s, "SKU-1", "10.00", 100);
    let a = place(&s, &o.id, 1);
    s.advance_clock(Duration::from_secs(10));
    let b = s
        .place_order(NewOrder {
            stop_at: Some("FILLED_IN".into()),
            buyer_login: Some("Other".into()),
            ..NewOrder::one(&o.id, 1)
        })
        .unwrap();
    s.advance_clock(Duration::from_secs(10));
    let c = place(&s, &o.id, 1);
    s.cancel_order(&c.id).unwrap();

    let v = json(get(&s, &t, "/order/checkout-forms").await).await;
    assert_eq!(
        (v["count"].as_u64(), v["totalCount"].as_u64()),
        (Some(3), Some(3))
    );
    // Default sort: newest purchase first.
    assert_eq!(v["checkoutForms"][0]["id"], c.id.as_str());
    let v = json(
        get(
            &s,
            &t,
            "/order/checkout-forms?sort=lineItems.boughtAt&limit=1&offset=1",
        )
        .await,
    )
    .await;
    assert_eq!(
        (v["count"].as_u64(), v["totalCount"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(v["checkoutForms"][0]["id"], b.id.as_str());
    let v = json(get(&s, &t, "/order/checkout-forms?status=READY_FOR_PROCESSING").await).await;
    assert_eq!(v["totalCount"], 1);
    assert_eq!(v["checkoutForms"][0]["id"], a.id.as_str());
    let v = json(
        get(
            &s,
            &t,
            "/order/checkout-forms?status=FILLED_IN&status=CANCELLED",
        )
        .await,
    )
    .await;
    assert_eq!(v["totalCount"], 2);
    let v = json(get(&s, &t, "/order/checkout-forms?buyer.login=Other").await).await;
    assert_eq!(v["checkoutForms"][0]["id"], b.id.as_str());
    let since = chrono::DateTime::parse_from_rfc3339(&allegro_ts(b.bought_at)).unwrap();
    let q = format!(
        "/order/checkout-forms?lineItems.boughtAt.gte={}",
        since.to_rfc3339().replace('+', "%2B")
    );
    assert_eq!(json(get(&s, &t, &q).await).await["totalCount"], 2);
    let q = format!(
        "/order/checkout-forms?updatedAt.lte={}",
        allegro_ts(a.updated_at)
    );
    assert_eq!(json(get(&s, &t, &q).await).await["totalCount"], 1);
    let v = json(get(&s, &t, "/order/checkout-forms?fulfillment.status=NEW&fulfillment.shipmentSummary.lineItemsSent=NONE").await).await;
    assert_eq!(v["totalCount"], 3);

    let (st, v) =
        status_json(get(&s, &t, "/order/checkout-forms?offset=9950&limit=100").await).await;
    assert_eq!(st, 422);
    assert_eq!(
        v,
        json!({"errors": [{"code": "VALIDATION_ERROR", "message": "Offset and limit parameters exceed maximal result size of 10000 items",
            "details": null, "path": "/order/checkout-forms", "userMessage": null, "metadata": {}}]})
    );
    assert_eq!(
        get(&s, &t, "/order/checkout-forms?offset=9900&limit=100")
            .await
            .status(),
        200
    );
    for q in ["limit=101", "limit=0", "offset=-1"] {
        let (st, v) = status_json(get(&s, &t, &format!("/order/checkout-forms?{q}")).await).await;
        assert_eq!(st, 422, "{q}");
        the_error(&v);
    }
    for q in [
        "status=SHIPPED",
        "fulfillment.status=DONE",
        "sort=id",
        "updatedAt.gte=yesterday",
    ] {
        assert_eq!(
            get(&s, &t, &format!("/order/checkout-forms?{q}"))
                .await
                .status(),
            400,
            "{q}"
        );
    }
    s.shutdown().await;
}

fn allegro_ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test]
async fn fulfillment_checks_revision_and_emits_event() {
    let s = start().await;
    let t = token(&s);
    let o = offer(&s, "SKU-1", "10.00", 10);
    let order = place(&s, &o.id, 1);
    let path = |rev: &str| {
        format!(
            "/order/checkout-forms/{}/fulfillment?checkoutForm.revision={rev}",
            order.id
        )
    };

    let r = send(
        &s,
        &t,
        Method::PUT,
        &path(&order.revision),
        &json!({"status": "PROCESSING"}),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert!(r.text().await.unwrap().is_empty());
    let after = s.order(&order.id).unwrap();
    assert_eq!(after.fulfillment_status, "PROCESSING");
    assert_ne!(after.revision, order.revision);
    assert_eq!(
        after.updated_at, order.updated_at,
        "updatedAt does not change"
    );
    assert_eq!(after.fulfillment_history.len(), 1);
    assert_eq!(
        after.fulfillment_history[0].revision_sent.as_deref(),
        Some(order.revision.as_str())
    );
    let v = json(get(&s, &t, "/order/events?type=FULFILLMENT_STATUS_CHANGED").await).await;
    assert_eq!(
        v["events"][0]["order"]["checkoutForm"]["revision"],
        after.revision.as_str()
    );

    // A stale revision: 409.
    let (st, v) = status_json(
        send(
            &s,
            &t,
            Method::PUT,
            &path(&order.revision),
            &json!({"status": "SENT"}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 409);
    let e = the_error(&v);
    assert_eq!(e["message"], "Conflict. Provided revision is outdated.");
    assert_eq!(e["code"], "CONFLICT");
    // RETURNED or unknown: 422.
    for bad in ["RETURNED", "DONE"] {
        let (st, v) = status_json(
            send(
                &s,
                &t,
                Method::PUT,
                &path(&after.revision),
                &json!({"status": bad}),
            )
            .await,
        )
        .await;
        assert_eq!(st, 422, "{bad}");
        the_error(&v);
    }
    // No revision parameter: no check.
    let r = send(
        &s,
        &t,
        Method::PUT,
        &format!("/order/checkout-forms/{}/fulfillment", order.id),
        &json!({"status": "SENT"}),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(s.order(&order.id).unwrap().fulfillment_status, "SENT");
    // Another seller's order: 404; not a UUID: 422.
    let other = s.issue_tokens("555").access_token;
    assert_eq!(
        send(
            &s,
            &other,
            Method::PUT,
            &format!("/order/checkout-forms/{}/fulfillment", order.id),
            &json!({"status": "SENT"})
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        send(
            &s,
            &t,
            Method::PUT,
            "/order/checkout-forms/x/fulfillment",
            &json!({"status": "SENT"})
        )
        .await
        .status(),
        422
    );
    s.shutdown().await;
}

#[tokio::test]
async fn shipments_and_carriers() {
    let s = start().await;
    let t = token(&s);
    let o = offer(&s, "SKU-1", "10.00", 10);
    let o2 = offer(&s, "SKU-2", "10.00", 10);
    let order = s
        .place_order(NewOrder {
            lines: vec![
                allegro_standin::NewLine {
                    offer_id: o.id.clone(),
                    quantity: 1,
                    price: None,
                },
                allegro_standin::NewLine {
                    offer_id: o2.id.clone(),
                    quantity: 1,
                    price: None,
                },
            ],
            ..NewOrder::default()
        })
        .unwrap();
    let other_order = place(&s, &o.id, 1);
    let carriers = json(get(&s, &t, "/order/carriers").await).await;
    assert!(
        carriers["carriers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "ALLEGRO")
    );
    assert!(
        carriers["carriers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "OTHER")
    );

    let path = format!("/order/checkout-forms/{}/shipments", order.id);
    let line = order.line_items[0].id.clone();
    let (st, v) = status_json(
        send(
            &s,
            &t,
            Method::POST,
            &path,
            &json!({"carrierId": "ALLEGRO", "waybill": "AD-1239134", "lineItems": [{"id": line}]}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert!(v["id"].is_string());
    assert!(v["createdAt"].is_string());
    assert_eq!(v["waybill"], "AD-1239134");
    let f = json(get(&s, &t, &format!("/order/checkout-forms/{}", order.id)).await).await;
    assert_eq!(f["fulfillment"]["shipmentSummary"]["lineItemsSent"], "SOME");
    assert_eq!(
        send(
            &s,
            &t,
            Method::POST,
            &path,
            &json!({"carrierId": "DHL", "waybill": "X1"})
        )
        .await
        .status(),
        201
    );
    let list = json(get(&s, &t, &path).await).await;
    assert_eq!(list["shipments"].as_array().unwrap().len(), 2);
    assert_eq!(s.order(&order.id).unwrap().shipments.len(), 2);

    let long = "W".repeat(65);
    for body in [
        json!({"carrierId": "NOPE", "waybill": "X"}),
        json!({"waybill": "X"}),
        json!({"carrierId": "DHL", "waybill": long}),
        json!({"carrierId": "DHL", "waybill": ""}),
        json!({"carrierId": "OTHER", "waybill": "X", "carrierName": "A name that is far too long for Allegro"}),
    ] {
        let (st, v) = status_json(send(&s, &t, Method::POST, &path, &body).await).await;
        assert_eq!(st, 400, "{body}");
        the_error(&v);
    }
    let foreign_line = other_order.line_items[0].id.clone();
    let (st, v) = status_json(
        send(
            &s,
            &t,
            Method::POST,
            &path,
            &json!({"carrierId": "DHL", "waybill": "X", "lineItems": [{"id": foreign_line}]}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 422);
    the_error(&v);
    let other = s.issue_tokens("555").access_token;
    assert_eq!(
        send(
            &s,
            &other,
            Method::POST,
            &path,
            &json!({"carrierId": "DHL", "waybill": "X"})
        )
        .await
        .status(),
        404
    );
    s.shutdown().await;
}

#[tokio::test]
async fn invoices_metadata_then_pdf() {
    let s = start_with(|o| o.config.invoice_max_bytes = 1024).await;
    let t = token(&s);
    let o = offer(&s, "SKU-1", "10.00", 10);
    let order = place(&s, &o.id, 1);
    let base = format!("/order/checkout-forms/{}/invoices", order.id);
    let (st, v) = status_json(
        send(
            &s,
            &t,
            Method::POST,
            &base,
            &json!({"invoiceNumber": "FV 1"}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 422);
    the_error(&v);
    let (st, v) = status_json(
        send(
            &s,
            &t,
            Method::POST,
            &base,
            &json!({"file": {"name": "FV_01.pdf"}, "invoiceNumber": "FV 01/2026"}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 201);
    let id = v["id"].as_str().unwrap().to_string();
    // More invoices (corrections) up to 10 per order, then a refusal.
    for n in 2..=10 {
        let (st, _) = status_json(
            send(
                &s,
                &t,
                Method::POST,
                &base,
                &json!({"file": {"name": format!("FV_{n:02}.pdf")}}),
            )
            .await,
        )
        .await;
        assert_eq!(st, 201, "invoice {n}");
    }
    let (st, v) = status_json(
        send(
            &s,
            &t,
            Method::POST,
            &base,
            &json!({"file": {"name": "FV_11.pdf"}}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 409);
    the_error(&v);
    // An order paid with Extended Payment Terms takes one.
    let mut deferred = NewOrder::one(&o.id, 1);
    deferred.payment_type = Some("EXTENDED_TERM".into());
    let deferred = s.place_order(deferred).expect("place order");
    let deferred_base = format!("/order/checkout-forms/{}/invoices", deferred.id);
    for (name, expected) in [("A.pdf", 201), ("B.pdf", 409)] {
        let (st, _) = status_json(
            send(
                &s,
                &t,
                Method::POST,
                &deferred_base,
                &json!({"file": {"name": name}}),
            )
            .await,
        )
        .await;
        assert_eq!(st, expected, "{name}");
    }

    let put = |ct: &'static str, body: Vec<u8>| {
        client()
            .put(format!("{}{base}/{id}/file", s.api_url()))
            .bearer_auth(&t)
            .header("accept", VND)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_eq!(
        put("application/json", b"%PDF".to_vec())
            .await
            .unwrap()
            .status(),
        415
    );
    assert_eq!(
        put("application/pdf", Vec::new()).await.unwrap().status(),
        422
    );
    assert_eq!(
        put("application/pdf", vec![b'x'; 1025])
            .await
            .unwrap()
            .status(),
        413
    );
    assert_eq!(
        put("application/pdf", b"%PDF-1.4 ...".to_vec())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        put("application/pdf", b"%PDF-1.4 ...".to_vec())
            .await
            .unwrap()
            .status(),
        409
    );
    let r = client()
        .put(format!(
            "{}{base}/{}/file",
            s.api_url(),
            uuid::Uuid::new_v4()
        ))
        .bearer_auth(&t)
        .header("accept", VND)
        .header("content-type", "application/pdf")
        .body("%PDF")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let inv = &s.order(&order.id).unwrap().invoices[0];
    assert_eq!(
        (inv.file_size, inv.invoice_number.as_deref()),
        (Some(12), Some("FV 01/2026"))
    );
    let list = json(get(&s, &t, &base).await).await;
    assert_eq!(list["invoices"][0]["file"]["name"], "FV_01.pdf");
    assert!(list["invoices"][0]["file"]["uploadedAt"].is_string());
    s.shutdown().await;
}

#[tokio::test]
async fn invoice_size_limit_defaults_to_3_mb() {
    let s = start().await;
    let t = token(&s);
    let o = offer(&s, "SKU-1", "10.00", 10);
    let order = place(&s, &o.id, 1);
    let base = format!("/order/checkout-forms/{}/invoices", order.id);
    let v = json(
        send(
            &s,
            &t,
            Method::POST,
            &base,
            &json!({"file": {"name": "big.pdf"}}),
        )
        .await,
    )
    .await;
    let r = client()
        .put(format!(
            "{}{base}/{}/file",
            s.api_url(),
            v["id"].as_str().unwrap()
        ))
        .bearer_auth(&t)
        .header("accept", VND)
        .header("content-type", "application/pdf")
        .body(vec![b'x'; 3 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    s.shutdown().await;
}

#[tokio::test]
async fn buyer_hooks_cancel_modify_and_staged_placing() {
    let s = start().await;
    let t = token(&s);
    let o = offer(&s, "SKU-1", "10.00", 10);
    let order = s
        .place_order(NewOrder {
            stop_at: Some("BOUGHT".into()),
            ..NewOrder::one(&o.id, 1)
        })
        .unwrap();
    assert_eq!(order.status, "BOUGHT");
    let f = json(get(&s, &t, &format!("/order/checkout-forms/{}", order.id)).await).await;
    assert_eq!(f["payment"]["finishedAt"], Value::Null);
    let filled = s.advance_order(&order.id).unwrap();
    assert_eq!(filled.status, "FILLED_IN");
    assert_ne!(filled.revision, order.revision);
    let modified = s.buyer_modify_order(&order.id, "new address").unwrap();
    assert_ne!(modified.revision, filled.revision);
    assert!(modified.updated_at >= filled.updated_at);
    let cancelled = s.cancel_order(&order.id).unwrap();
    assert_eq!(cancelled.status, "CANCELLED");
    let v = json(get(&s, &t, "/order/events").await).await;
    assert_eq!(
        event_types(&v),
        ["BOUGHT", "FILLED_IN", "BUYER_MODIFIED", "BUYER_CANCELLED"]
    );
    assert!(s.advance_order(&order.id).is_err());

    // Over the control API: place, then cancel.
    let r = client()
        .post(format!("{}/orders", s.control_url()))
        .json(&json!({"lines": [{"offer_id": o.id, "quantity": 2}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let placed = json(r).await;
    let id = placed["id"].as_str().unwrap();
    let r = client()
        .post(format!("{}/orders/{id}/cancel", s.control_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["status"], "CANCELLED");
    let r = client()
        .post(format!("{}/orders", s.control_url()))
        .json(&json!({"lines": [{"offer_id": o.id, "quantity": 100}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    s.shutdown().await;
}

#[tokio::test]
async fn customer_returns_need_the_beta_media_type() {
    let s = start().await;
    let t = token(&s);
    let o = offer(&s, "SKU-1", "10.00", 10);
    let order = place(&s, &o.id, 1);
    let ret = s.add_customer_return(&order.id, "DELIVERED").unwrap();
    let r = client()
        .get(format!(
            "{}/order/customer-returns?orderId={}",
            s.api_url(),
            order.id
        ))
        .bearer_auth(&t)
        .header("accept", BETA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    assert_eq!(v["count"], 1);
    let cr = &v["customerReturns"][0];
    assert_eq!(cr["id"], ret.id.as_str());
    assert_eq!(cr["orderId"], order.id.as_str());
    assert_eq!(cr["status"], "DELIVERED");
    assert_eq!(cr["items"][0]["offerId"], o.id.as_str());
    let r = client()
        .get(format!("{}/order/customer-returns?limit=1001", s.api_url()))
        .bearer_auth(&t)
        .header("accept", BETA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    s.shutdown().await;
}
