//! What the stand-in's tests share: start it, mint a token, call it as a client would.
#![allow(dead_code)]

use allegro_standin::{AllegroOptions, AllegroStandin, NewOffer, Offer, VND};
use reqwest::{Method, Response};
use serde_json::Value;

pub const CLIENT_ID: &str = "standin-client-id";
pub const CLIENT_SECRET: &str = "standin-client-secret";

pub async fn start() -> AllegroStandin {
    start_with(|_| {}).await
}

/// The stand-in with Allegro's defaults, except a device interval of 0 and
/// commands that finish at once.
pub async fn start_with(f: impl FnOnce(&mut AllegroOptions)) -> AllegroStandin {
    let mut opts = AllegroOptions::default();
    // Tests poll the device flow back to back; the ones about the interval set it.
    opts.config.device_interval_secs = 0;
    // Commands finish at once unless a test looks at them while they run.
    opts.config.command_delay_ms = 0;
    f(&mut opts);
    AllegroStandin::start(opts)
        .await
        .expect("start the stand-in")
}

/// A client that shows redirects (the 303 of a finished offer operation).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// An access token of the default seller with the default scopes.
pub fn token(s: &AllegroStandin) -> String {
    s.issue_tokens(s.seller_id()).access_token
}

pub fn offer(s: &AllegroStandin, sku: &str, price: &str, stock: i64) -> Offer {
    s.add_offer(NewOffer::new(sku, sku, price, stock))
        .expect("seed an offer")
}

/// GET under the API root with Allegro's public media type.
pub async fn get(s: &AllegroStandin, token: &str, path: &str) -> Response {
    client()
        .get(format!("{}{path}", s.api_url()))
        .bearer_auth(token)
        .header("accept", VND)
        .send()
        .await
        .expect("GET")
}

/// A JSON body in Allegro's media type.
pub async fn send(
    s: &AllegroStandin,
    token: &str,
    method: Method,
    path: &str,
    body: &Value,
) -> Response {
    client()
        .request(method, format!("{}{path}", s.api_url()))
        .bearer_auth(token)
        .header("accept", VND)
        .header("content-type", VND)
        .body(body.to_string())
        .send()
        .await
        .expect("send")
}

/// A form POST under the OAuth root with the client's Basic credentials.
pub async fn oauth_post(s: &AllegroStandin, path: &str, form: &str, secret: &str) -> Response {
    client()
        .post(format!("{}{path}", s.auth_url()))
        .basic_auth(CLIENT_ID, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string())
        .send()
        .await
        .expect("POST")
}

pub async fn json(r: Response) -> Value {
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub async fn status_json(r: Response) -> (u16, Value) {
    let st = r.status().as_u16();
    (st, json(r).await)
}

/// The first of Allegro's `{"errors": [...]}`.
pub fn the_error(v: &Value) -> &Value {
    let e = &v["errors"][0];
    assert!(e.is_object(), "no errors[0] in {v}");
    e
}

/// The refresh grant with the client's credentials: status and body.
pub async fn refresh(s: &AllegroStandin, refresh_token: &str) -> (u16, Value) {
    let form = format!("grant_type=refresh_token&refresh_token={refresh_token}");
    status_json(oauth_post(s, "/auth/oauth/token", &form, CLIENT_SECRET).await).await
}
