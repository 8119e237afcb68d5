//! OAuth: device flow, refresh rotation with grace, lifetimes, client credentials, bearer 401s
//! (checklist items 1, 4–11, 15).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

async fn device_code(s: &allegro_standin::AllegroStandin) -> Value {
    let r = oauth_post(
        s,
        "/auth/oauth/device",
        &format!("client_id={CLIENT_ID}&scope=allegro%3Aapi%3Aorders%3Aread%20allegro%3Aapi%3Asale%3Aoffers%3Awrite"),
        CLIENT_SECRET,
    )
    .await;
    assert_eq!(r.status(), 200);
    json(r).await
}

async fn poll(s: &allegro_standin::AllegroStandin, device_code: &str) -> (u16, Value) {
    status_json(
        oauth_post(
            s,
            "/auth/oauth/token",
            &format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={device_code}"
            ),
            CLIENT_SECRET,
        )
        .await,
    )
    .await
}

#[tokio::test]
async fn device_flow_pending_then_approved_then_code_used_up() {
    let s = start().await;
    let d = device_code(&s).await;
    for k in [
        "user_code",
        "device_code",
        "verification_uri",
        "verification_uri_complete",
    ] {
        assert!(d[k].is_string(), "{k} in {d}");
    }
    // The docs print these as strings.
    assert_eq!(d["expires_in"], "3600");
    assert_eq!(d["interval"], "0");
    let user = d["user_code"].as_str().unwrap();
    assert_eq!(user.len(), 9);
    assert!(
        d["verification_uri_complete"]
            .as_str()
            .unwrap()
            .ends_with(&format!("?code={user}"))
    );
    let code = d["device_code"].as_str().unwrap();

    let (st, v) = poll(&s, code).await;
    assert_eq!(
        (st, v),
        (400, serde_json::json!({"error": "authorization_pending"}))
    );

    // Approve with the user code as shown to the user ("XXX XXX XXX").
    let shown = format!("{} {} {}", &user[..3], &user[3..6], &user[6..]);
    assert!(s.approve_device(&shown));
    let (st, tok) = poll(&s, code).await;
    assert_eq!(st, 200, "{tok}");
    assert_eq!(tok["token_type"], "bearer");
    assert_eq!(tok["expires_in"], 43199);
    assert!(tok["refresh_token"].is_string());
    assert!(tok["jti"].is_string());
    assert_eq!(
        tok["scope"],
        "allegro:api:orders:read allegro:api:sale:offers:write"
    );
    // A JWT whose payload names the seller.
    let access = tok["access_token"].as_str().unwrap();
    let payload = access.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["user_name"], s.seller_id());

    // A device code gives a token only once.
    let (st, v) = poll(&s, code).await;
    assert_eq!(
        (st, v),
        (400, serde_json::json!({"error": "Invalid device code"}))
    );
    let (st, v) = poll(&s, "123").await;
    assert_eq!(
        (st, v["error"].clone()),
        (400, Value::from("Invalid device code"))
    );

    let r = get(&s, access, "/order/events").await;
    assert_eq!(r.status(), 200);
    let c = s.counters();
    assert_eq!(
        (c.device_codes, c.device_exchanges, c.device_polls),
        (1, 1, 4)
    );
    s.shutdown().await;
}

#[tokio::test]
async fn device_polling_faster_than_interval_slows_down() {
    let s = start_with(|o| o.config.device_interval_secs = 5).await;
    let d = device_code(&s).await;
    assert_eq!(d["interval"], "5");
    let code = d["device_code"].as_str().unwrap();
    assert_eq!(poll(&s, code).await.1["error"], "authorization_pending");
    assert_eq!(poll(&s, code).await.1["error"], "slow_down");
    s.advance_clock(Duration::from_secs(5));
    assert_eq!(poll(&s, code).await.1["error"], "authorization_pending");
    assert!(s.approve_device(code));
    s.advance_clock(Duration::from_secs(5));
    assert_eq!(poll(&s, code).await.0, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn device_denied_and_expired_codes() {
    let s = start_with(|o| o.config.device_numbers_as_strings = false).await;
    let d = device_code(&s).await;
    assert_eq!(d["expires_in"], 3600);
    let code = d["device_code"].as_str().unwrap();
    assert!(s.deny_device(code));
    assert_eq!(
        poll(&s, code).await,
        (400, serde_json::json!({"error": "access_denied"}))
    );

    let d = device_code(&s).await;
    let code = d["device_code"].as_str().unwrap();
    s.advance_clock(Duration::from_secs(3600));
    assert_eq!(poll(&s, code).await.1["error"], "Invalid device code");
    assert!(
        s.approve_device(code),
        "approving late is possible, exchanging is not"
    );
    assert_eq!(poll(&s, code).await.1["error"], "Invalid device code");
    s.shutdown().await;
}

#[tokio::test]
async fn bad_client_credentials_are_401_unauthorized() {
    let s = start().await;
    let r = oauth_post(
        &s,
        "/auth/oauth/device",
        &format!("client_id={CLIENT_ID}"),
        "wrong",
    )
    .await;
    assert_eq!(r.status(), 401);
    let v = json(r).await;
    assert_eq!(v["error"], "unauthorized");
    let r = oauth_post(
        &s,
        "/auth/oauth/token",
        "grant_type=client_credentials",
        "wrong",
    )
    .await;
    assert_eq!(r.status(), 401);
    // No Basic header at all.
    let r = client()
        .post(format!(
            "{}/auth/oauth/token?grant_type=client_credentials",
            s.auth_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // client_id in the query string (Allegro's curl sample) works too.
    let r = client()
        .post(format!(
            "{}/auth/oauth/device?client_id={CLIENT_ID}",
            s.auth_url()
        ))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Unsupported grant.
    let (st, v) = status_json(
        oauth_post(
            &s,
            "/auth/oauth/token",
            "grant_type=password",
            CLIENT_SECRET,
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    // The body is configurable (unverified).
    s.configure(|c| {
        c.bad_client_status = 400;
        c.bad_client_body = serde_json::json!({"error": "invalid_client"});
    });
    let (st, v) = status_json(
        oauth_post(
            &s,
            "/auth/oauth/token",
            "grant_type=client_credentials",
            "x",
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, v),
        (400, serde_json::json!({"error": "invalid_client"}))
    );
    s.shutdown().await;
}

#[tokio::test]
async fn bearer_refusals_use_allegros_401_bodies() {
    let s = start().await;
    let r = client()
        .get(format!("{}/order/events", s.api_url()))
        .header("accept", allegro_standin::VND)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        json(r).await,
        serde_json::json!({"error": "unauthorized", "error_description": "Full authentication is required to access this resource"})
    );
    let r = get(&s, "garbage.token", "/order/events").await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        json(r).await,
        serde_json::json!({"error": "invalid_token", "error_description": "Cannot convert access token to JSON"})
    );

    let pair = s.issue_tokens(s.seller_id());
    assert_eq!(
        get(&s, &pair.access_token, "/order/events").await.status(),
        200
    );
    assert!(s.expire_access_token(&pair.access_token));
    let r = get(&s, &pair.access_token, "/order/events").await;
    assert_eq!(r.status(), 401);
    let v = json(r).await;
    assert_eq!(v["error"], "invalid_token");
    assert_eq!(
        v["error_description"],
        format!("Access token expired: {}", pair.access_token)
    );
    // After a refresh the same call works with the new token.
    let (st, t) = refresh(&s, pair.refresh_token.as_deref().unwrap()).await;
    assert_eq!(st, 200, "{t}");
    let fresh = t["access_token"].as_str().unwrap();
    assert_eq!(get(&s, fresh, "/order/events").await.status(), 200);
    assert_eq!(s.counters().unauthorized, 3);

    // The spec's 403 for an invalid token on GET /sale/offers is a switch.
    s.configure(|c| c.sale_offers_invalid_token_status = 403);
    assert_eq!(get(&s, "garbage", "/sale/offers").await.status(), 403);
    s.shutdown().await;
}

#[tokio::test]
async fn refresh_rotates_kills_old_access_and_honours_grace() {
    let s = start().await;
    let first = s.issue_tokens(s.seller_id());
    let old_refresh = first.refresh_token.clone().unwrap();
    let (st, second) = refresh(&s, &old_refresh).await;
    assert_eq!(st, 200);
    assert_eq!(second["expires_in"], 43199);
    assert_ne!(second["access_token"], first.access_token.as_str());
    assert_ne!(second["refresh_token"], old_refresh.as_str());
    // The previous access token is dead at once.
    let r = get(&s, &first.access_token, "/order/events").await;
    assert_eq!(r.status(), 401);
    assert!(
        json(r).await["error_description"]
            .as_str()
            .unwrap()
            .starts_with("Access token expired: ")
    );
    let second_access = second["access_token"].as_str().unwrap().to_string();
    assert_eq!(get(&s, &second_access, "/order/events").await.status(), 200);

    // The old refresh token still works inside the 60 s grace...
    s.advance_clock(Duration::from_secs(59));
    let (st, third) = refresh(&s, &old_refresh).await;
    assert_eq!(st, 200);
    // ...and that refresh logs out the pair before it (two workers refreshing).
    assert_eq!(get(&s, &second_access, "/order/events").await.status(), 401);
    assert_eq!(
        get(&s, third["access_token"].as_str().unwrap(), "/order/events")
            .await
            .status(),
        200
    );
    // After the grace: 400 invalid_grant.
    s.advance_clock(Duration::from_secs(1));
    let (st, v) = refresh(&s, &old_refresh).await;
    assert_eq!(st, 400);
    assert_eq!(
        v,
        serde_json::json!({"error": "invalid_grant", "error_description": format!("Invalid refresh token: {old_refresh}")})
    );
    let (st, v) = refresh(&s, "nonsense").await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")));
    let c = s.counters();
    assert_eq!(
        (c.refreshes, c.refresh_reuses, c.refresh_failures),
        (2, 1, 2)
    );
    s.shutdown().await;
}

#[tokio::test]
async fn grace_and_lifetimes_are_configurable() {
    let s = start_with(|o| {
        o.config.refresh_grace_secs = 0;
        o.config.access_ttl_secs = 2;
        o.config.refresh_ttl_secs = 10;
    })
    .await;
    let p = s.issue_tokens(s.seller_id());
    assert_eq!(p.expires_in, 2);
    let (st, t) = refresh(&s, p.refresh_token.as_deref().unwrap()).await;
    assert_eq!((st, t["expires_in"].as_u64()), (200, Some(2)));
    // No grace: the used refresh token is refused at once.
    assert_eq!(
        refresh(&s, p.refresh_token.as_deref().unwrap()).await.0,
        400
    );
    // Access token lifetime.
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(get(&s, access, "/order/events").await.status(), 200);
    s.advance_clock(Duration::from_secs(2));
    assert_eq!(get(&s, access, "/order/events").await.status(), 401);
    // Refresh token lifetime.
    s.advance_clock(Duration::from_secs(8));
    let (st, v) = refresh(&s, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")));
    s.shutdown().await;
}

#[tokio::test]
async fn refresh_token_dies_after_three_months_by_default() {
    let s = start().await;
    let p = s.issue_tokens(s.seller_id());
    s.advance_clock(Duration::from_secs(90 * 24 * 3600));
    let (st, v) = refresh(&s, p.refresh_token.as_deref().unwrap()).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")));
    s.shutdown().await;
}

#[tokio::test]
async fn client_credentials_token_only_for_application_endpoints() {
    let s = start().await;
    let (st, t) = status_json(
        oauth_post(
            &s,
            "/auth/oauth/token",
            "grant_type=client_credentials",
            CLIENT_SECRET,
        )
        .await,
    )
    .await;
    assert_eq!(st, 200);
    assert!(t.get("refresh_token").is_none(), "{t}");
    let app = t["access_token"].as_str().unwrap();
    assert_eq!(get(&s, app, "/order/carriers").await.status(), 200);
    for path in ["/order/events", "/sale/offers", "/order/checkout-forms"] {
        let r = get(&s, app, path).await;
        assert_eq!(r.status(), 403, "{path}");
        assert_eq!(the_error(&json(r).await)["code"], "AccessDenied");
    }
    assert_eq!(s.counters().client_credentials, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn tokens_without_the_scope_get_403() {
    let s = start().await;
    let t = s
        .issue_tokens_with_scopes(s.seller_id(), &["allegro:api:orders:read"])
        .access_token;
    assert_eq!(get(&s, &t, "/order/events").await.status(), 200);
    assert_eq!(get(&s, &t, "/sale/offers").await.status(), 403);
    s.shutdown().await;
}

#[tokio::test]
async fn token_mints_per_user_are_limited() {
    let s = start_with(|o| {
        o.config.token_mint_limit = Some(2);
        o.config.token_mint_window_secs = 60;
    })
    .await;
    let p = s.issue_tokens(s.seller_id()); // not counted: a test hook
    let (st, a) = refresh(&s, p.refresh_token.as_deref().unwrap()).await;
    assert_eq!(st, 200);
    let (st, b) = refresh(&s, a["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 200);
    let (st, v) = refresh(&s, b["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 429, "{v}");
    s.advance_clock(Duration::from_secs(60));
    assert_eq!(
        refresh(&s, b["refresh_token"].as_str().unwrap()).await.0,
        200
    );
    s.shutdown().await;
}

#[tokio::test]
async fn oauth_can_live_on_its_own_base_url() {
    let s = start_with(|o| o.auth_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    assert_ne!(s.auth_url(), s.api_url());
    // Not served on the API host.
    let r = client()
        .post(format!("{}/auth/oauth/token", s.api_url()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let d = device_code(&s).await;
    assert!(
        d["verification_uri"]
            .as_str()
            .unwrap()
            .starts_with(&s.auth_url())
    );
    let (st, _) = status_json(
        oauth_post(
            &s,
            "/auth/oauth/token",
            "grant_type=client_credentials",
            CLIENT_SECRET,
        )
        .await,
    )
    .await;
    assert_eq!(st, 200);
    s.shutdown().await;
}
