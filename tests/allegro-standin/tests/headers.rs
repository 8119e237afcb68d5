//! Accept / Content-Type / Trace-Id, the request log, faults, 404s (checklist items 2, 3, 29).

mod common;

use std::time::Duration;

use allegro_standin::{BETA, VND};
use common::*;
use serde_json::json;

#[tokio::test]
async fn missing_or_wrong_accept_is_406_not_acceptable() {
    let s = start().await;
    let t = token(&s);
    for accept in [None, Some("application/json"), Some("*/*"), Some(BETA)] {
        let mut rb = client()
            .get(format!("{}/sale/offers", s.api_url()))
            .bearer_auth(&t);
        if let Some(a) = accept {
            rb = rb.header("accept", a);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 406, "{accept:?}");
        assert_eq!(r.headers()["content-type"], VND);
        let v = json(r).await;
        let e = the_error(&v);
        assert_eq!(e["code"], "NotAcceptableException");
        assert_eq!(
            e["message"],
            "Not acceptable representation requested. Please check 'Accept' request header"
        );
    }
    // Customer returns want the beta type; the public one is refused there.
    let r = get(&s, &t, "/order/customer-returns").await;
    assert_eq!(r.status(), 406);
    let r = client()
        .get(format!("{}/order/customer-returns", s.api_url()))
        .bearer_auth(&t)
        .header("accept", BETA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], BETA);
    assert_eq!(s.counters().not_acceptable, 5);
    s.shutdown().await;
}

#[tokio::test]
async fn answers_carry_allegros_content_type_and_a_trace_id() {
    let s = start().await;
    let t = token(&s);
    let r = get(&s, &t, "/sale/offers").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], VND);
    let trace = r.headers()["trace-id"].to_str().unwrap().to_string();
    assert!(!trace.is_empty());
    // Errors too, and 401s.
    let r = get(&s, &t, "/order/checkout-forms/not-a-uuid").await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["content-type"], VND);
    assert!(r.headers().contains_key("trace-id"));
    let r = get(&s, "nope", "/order/events").await;
    assert!(r.headers().contains_key("trace-id"));
    // Unknown API path: ErrorsHolder 404.
    let r = get(&s, &t, "/sale/nothing-here").await;
    assert_eq!(r.status(), 404);
    the_error(&json(r).await);
    // The log has the trace id of the first answer.
    assert!(s.requests().iter().any(|q| q.trace_id == trace));
    s.shutdown().await;
}

#[tokio::test]
async fn bodies_need_allegros_content_type() {
    let s = start().await;
    let t = token(&s);
    let o = offer(&s, "SKU-1", "10.00", 5);
    let r = client()
        .patch(format!("{}/sale/product-offers/{}", s.api_url(), o.id))
        .bearer_auth(&t)
        .header("accept", VND)
        .header("content-type", "application/json")
        .body(json!({"stock": {"available": 3}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    the_error(&json(r).await);
    s.configure(|c| c.enforce_content_type = false);
    let r = client()
        .patch(format!("{}/sale/product-offers/{}", s.api_url(), o.id))
        .bearer_auth(&t)
        .header("accept", VND)
        .header("content-type", "application/json")
        .body(json!({"stock": {"available": 3}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.shutdown().await;
}

#[tokio::test]
async fn request_log_records_arrival_outcome_and_can_be_cleared() {
    let s = start().await;
    let t = token(&s);
    let _ = get(&s, &t, "/order/events?limit=5").await;
    let _ = get(&s, "bad", "/sale/offers").await;
    let _ = oauth_post(
        &s,
        "/auth/oauth/token",
        "grant_type=refresh_token&refresh_token=secret",
        CLIENT_SECRET,
    )
    .await;
    let log = s.requests();
    assert_eq!(log.len(), 3);
    let first = &log[0];
    assert_eq!(first.method, "GET");
    assert_eq!(first.path, "/order/events");
    assert_eq!(first.query, "limit=5");
    assert_eq!(first.status, 200);
    assert_eq!(first.client_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(first.seller_id.as_deref(), Some(s.seller_id()));
    assert_eq!(first.accept.as_deref(), Some(VND));
    // RFC 3339 UTC with milliseconds.
    assert_eq!(
        first.at.len(),
        "2026-01-01T00:00:00.000Z".len(),
        "{}",
        first.at
    );
    assert!(first.at.ends_with('Z'));
    assert!(chrono::DateTime::parse_from_rfc3339(&first.at).is_ok());
    assert!(log[0].at <= log[1].at && log[0].seq < log[1].seq);
    assert_eq!(log[1].status, 401);
    assert_eq!(log[1].refused.as_deref(), Some("unauthorized"));
    assert_eq!(log[2].path, "/auth/oauth/token");
    assert_eq!(log[2].client_id.as_deref(), Some(CLIENT_ID));

    // Over HTTP too, then clear.
    let v = json(
        client()
            .get(format!("{}/requests?limit=1", s.control_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["path"], "/auth/oauth/token");
    let r = client()
        .delete(format!("{}/requests", s.control_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(s.requests().is_empty());
    let _ = get(&s, &t, "/order/event-stats").await;
    s.clear_requests();
    assert!(s.requests().is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn faults_fail_the_next_requests_then_stop() {
    let s = start().await;
    let t = token(&s);
    s.faults().fail_next_matching(2, 503, "/order/events");
    assert_eq!(get(&s, &t, "/sale/offers").await.status(), 200);
    let r = get(&s, &t, "/order/events").await;
    assert_eq!(r.status(), 503);
    the_error(&json(r).await);
    assert_eq!(get(&s, &t, "/order/events").await.status(), 503);
    assert_eq!(get(&s, &t, "/order/events").await.status(), 200);
    let log = s.requests();
    assert_eq!(log[1].refused.as_deref(), Some("injected_error"));

    // Over the control API: merge fields.
    let r = client()
        .put(format!("{}/faults", s.control_url()))
        .json(&json!({"fail_next": 1, "fail_status": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&s, &t, "/order/events").await.status(), 500);
    assert_eq!(get(&s, &t, "/order/events").await.status(), 200);

    // A hang: processed, then the answer is late.
    s.faults().clear();
    s.faults().hang_next(1, Duration::from_millis(300));
    let r = client()
        .get(format!("{}/order/events", s.api_url()))
        .bearer_auth(&t)
        .header("accept", VND)
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(r.is_err());
    assert_eq!(get(&s, &t, "/order/events").await.status(), 200);
    s.shutdown().await;
}

#[tokio::test]
async fn control_api_sets_config_and_moves_the_clock() {
    let s = start().await;
    let base = s.control_url();
    let r = client()
        .put(format!("{base}/config"))
        .json(&json!({"refresh_grace_secs": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(s.config().refresh_grace_secs, 5);
    let r = client()
        .put(format!("{base}/config"))
        .json(&json!({"nope": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let before = s.now();
    let r = client()
        .post(format!("{base}/clock/advance"))
        .json(&json!({"seconds": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(s.now() - before >= chrono::Duration::seconds(3600));
    let text = client()
        .get(format!("{}/", s.api_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("allegro-standin"));
    s.shutdown().await;
}
