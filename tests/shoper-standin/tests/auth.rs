//! `/auth`, Bearer checks, token expiry on the stand-in's clock, scopes.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use shoper_standin::{INSUFFICIENT_SCOPE, INVALID_TOKEN, User};

async fn auth_basic(
    s: &shoper_standin::ShoperStandin,
    login: &str,
    password: &str,
) -> reqwest::Response {
    client()
        .post(format!("{}/auth", s.api_url()))
        .basic_auth(login, Some(password))
        .send()
        .await
        .expect("POST /auth")
}

#[tokio::test]
async fn basic_credentials_give_a_bearer_token() {
    let s = start().await;
    let r = auth_basic(&s, s.login(), s.password()).await;
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    assert_eq!(v["expires_in"], 2_592_000);
    assert_eq!(v["token_type"], "bearer");
    let token = v["access_token"].as_str().expect("access_token");
    assert_eq!(token.len(), 40);
    assert!(v.get("refresh_token").is_none());
    let r = get(&s, token, "products").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn client_id_and_secret_work_as_query_and_form() {
    let s = start().await;
    let r = client()
        .post(format!(
            "{}/auth?client_id={}&client_secret={}",
            s.api_url(),
            s.login(),
            s.password()
        ))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    let r = client()
        .post(format!("{}/auth", s.api_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id={}&client_secret={}",
            s.login(),
            s.password()
        ))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    assert!(json(r).await["access_token"].is_string());
}

#[tokio::test]
async fn bad_credentials_are_refused() {
    let s = start().await;
    let (st, v) = status_json(auth_basic(&s, s.login(), "wrong").await).await;
    assert_eq!(st, 401);
    assert_error(&v, "auth_failure");
    let (st, v) = status_json(auth_basic(&s, "nobody", "x").await).await;
    assert_eq!(st, 401);
    assert_error(&v, "auth_failure");
    let (st, v) = status_json(
        client()
            .post(format!("{}/auth", s.api_url()))
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(st, 401);
    assert_error(&v, "auth_failure");

    s.add_user(User {
        webapi_access: false,
        ..User::new("clerk", "pw")
    });
    let (st, v) = status_json(auth_basic(&s, "clerk", "pw").await).await;
    assert_eq!(st, 401);
    assert_error(&v, "auth_webapi_access_denied");
    s.add_user(User {
        ip_allowed: false,
        ..User::new("remote", "pw")
    });
    let (st, v) = status_json(auth_basic(&s, "remote", "pw").await).await;
    assert_eq!(st, 401);
    assert_error(&v, "auth_ip_not_allowed");
    // GET /auth is not how to log in.
    let r = client()
        .get(format!("{}/auth", s.api_url()))
        .basic_auth(s.login(), Some(s.password()))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 405);
    assert_eq!(s.counters().auth_failures, 5);
}

#[tokio::test]
async fn missing_or_unknown_bearer_is_401_with_the_live_body() {
    let s = start().await;
    let r = client()
        .get(format!("{}/products", s.api_url()))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "x-shop-api-calls").as_deref(), Some("0"));
    let v = json(r).await;
    assert_eq!(
        v,
        json!({"error": "unauthorized_client", "error_description": INVALID_TOKEN})
    );
    let (st, v) =
        status_json(get(&s, "0123456789abcdef0123456789abcdef01234567", "products").await).await;
    assert_eq!(st, 401);
    assert_eq!(v["error_description"], "Provided access token is invalid");
}

#[tokio::test]
async fn an_expired_token_answers_401_and_reauth_works() {
    let s = start().await;
    let r = auth_basic(&s, s.login(), s.password()).await;
    let token = json(r).await["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(get(&s, &token, "statuses").await.status(), 200);
    // 30 days minus a minute: still good.
    s.advance_clock(Duration::from_secs(2_592_000 - 60));
    assert_eq!(get(&s, &token, "statuses").await.status(), 200);
    s.advance_clock(Duration::from_secs(60));
    let (st, v) = status_json(get(&s, &token, "statuses").await).await;
    assert_eq!(st, 401);
    assert_eq!(
        v,
        json!({"error": "unauthorized_client", "error_description": "Provided access token is invalid"})
    );
    // The connector's path: re-auth once, then carry on.
    let fresh = json(auth_basic(&s, s.login(), s.password()).await).await["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(get(&s, &fresh, "statuses").await.status(), 200);
    assert_eq!(s.counters().unauthorized, 1);
}

#[tokio::test]
async fn a_short_ttl_is_answered_in_expires_in() {
    let s = start().await;
    s.configure(|c| c.token_ttl_secs = 3600);
    let v = json(auth_basic(&s, s.login(), s.password()).await).await;
    assert_eq!(v["expires_in"], 3600);
    let token = v["access_token"].as_str().expect("token").to_string();
    s.advance_clock(Duration::from_secs(3601));
    assert_eq!(get(&s, &token, "statuses").await.status(), 401);
}

#[tokio::test]
async fn expire_and_revoke_by_hand() {
    let s = start().await;
    let a = token(&s);
    let b = token(&s);
    assert!(s.expire_token(&a));
    assert_eq!(get(&s, &a, "statuses").await.status(), 401);
    assert_eq!(get(&s, &b, "statuses").await.status(), 200);
    assert!(s.revoke_token(&b));
    assert_eq!(get(&s, &b, "statuses").await.status(), 401);
    // Panel tokens do not expire by default.
    let p = s.issue_panel_token(None).access_token;
    s.advance_clock(Duration::from_secs(10 * 365 * 86_400));
    assert_eq!(get(&s, &p, "statuses").await.status(), 200);
}

#[tokio::test]
async fn scopes_are_enforced_with_403() {
    let s = start().await;
    product(&s, "SKU-1", dec!(10.00), 5);
    let t = s.issue_panel_token(Some(&["products_read"])).access_token;
    assert_eq!(get(&s, &t, "products").await.status(), 200);
    let (st, v) = status_json(
        send(
            &s,
            &t,
            reqwest::Method::PUT,
            "product-stocks/1",
            &json!({"stock": 3}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 403);
    assert_eq!(
        v,
        json!({"error": "insufficient_scope", "error_description": INSUFFICIENT_SCOPE})
    );
    let (st, _) = status_json(get(&s, &t, "orders").await).await;
    assert_eq!(st, 403);
    // Scopes apply inside /bulk too.
    let (st, v) = status_json(
        send(
            &s,
            &t,
            reqwest::Method::POST,
            "bulk",
            &json!([{"id": "a", "path": "/webapi/rest/product-stocks/1", "method": "PUT", "body": {"stock": 1}}]),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["items"][0]["code"], 403);
    assert_eq!(s.stock(1).expect("stock").stock, dec!(5));
}
