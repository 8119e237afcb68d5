mod common;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn missing_credentials_answer_401_cannot_view() {
    let w = start().await;
    let r = client()
        .get(format!("{}/products", w.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    let text = r.text().await.unwrap();
    assert!(text.starts_with("{\"code\":"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["code"], "woocommerce_rest_cannot_view");
    assert_eq!(v["message"], "Sorry, you cannot list resources.");
    assert_eq!(v["data"]["status"], 401);

    let r = client()
        .post(format!("{}/products/batch", w.api_url()))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_cannot_batch");
    w.shutdown().await;
}

#[tokio::test]
async fn wrong_key_or_secret_answer_authentication_error() {
    let w = start().await;
    let r = client()
        .get(format!("{}/orders", w.api_url()))
        .basic_auth("ck_wrong", Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_authentication_error");
    assert_eq!(v["message"], "Consumer key is invalid.");

    let r = client()
        .get(format!("{}/orders", w.api_url()))
        .basic_auth(KEY, Some("cs_wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["message"], "Consumer secret is invalid.");
    w.shutdown().await;
}

#[tokio::test]
async fn basic_and_query_credentials_work() {
    let w = start().await;
    assert_eq!(get(&w, "/products").await.status(), 200);
    let r = client()
        .get(format!(
            "{}/products?consumer_key={KEY}&consumer_secret={SECRET}",
            w.api_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The secret never reaches the request log.
    let log = w.requests();
    assert!(log.iter().all(|r| !r.query.contains(SECRET)));
    w.shutdown().await;
}

#[tokio::test]
async fn unknown_route_is_rest_no_route() {
    let w = start().await;
    let r = get(&w, "/nothing-here").await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "rest_no_route");
    // Authentication runs before routing: a bad key is a 401 even there.
    let r = client()
        .get(format!("{}/nothing-here", w.api_url()))
        .basic_auth("ck_bad", Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    w.shutdown().await;
}

#[tokio::test]
async fn discovery_documents_need_no_auth() {
    let w = start().await;
    let v: Value = client()
        .get(format!("{}/wp-json/", w.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "wc/v3")
    );
    let v: Value = client()
        .get(w.api_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let args = &v["routes"]["/wc/v3/orders"]["endpoints"][0]["args"];
    assert!(args.get("modified_after").is_some(), "{v}");
    assert_eq!(args["per_page"]["maximum"], 100);
    w.shutdown().await;
}
