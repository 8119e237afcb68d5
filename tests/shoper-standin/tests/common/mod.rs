//! What the stand-in's tests share: start it, get a token, call it as a client would.
#![allow(dead_code)]

use reqwest::{Method, Response};
use serde_json::Value;
use shoper_standin::{NewProduct, Product, ShoperOptions, ShoperStandin};

pub use rust_decimal::Decimal;
pub use rust_decimal_macros::dec;

pub async fn start() -> ShoperStandin {
    start_with(|_| {}).await
}

pub async fn start_with(f: impl FnOnce(&mut ShoperOptions)) -> ShoperStandin {
    let mut opts = ShoperOptions::default();
    f(&mut opts);
    ShoperStandin::start(opts)
        .await
        .expect("start the stand-in")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// An `/auth` token of the default user (minted without the HTTP call).
pub fn token(s: &ShoperStandin) -> String {
    s.issue_auth_token().access_token
}

pub fn product(s: &ShoperStandin, sku: &str, price: Decimal, stock: i64) -> Product {
    s.add_product(NewProduct::new(
        sku,
        &format!("Produkt {sku}"),
        price,
        stock,
    ))
    .expect("seed a product")
}

/// `GET /webapi/rest/<path>`.
pub async fn get(s: &ShoperStandin, token: &str, path: &str) -> Response {
    client()
        .get(format!("{}/{path}", s.api_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET")
}

/// A JSON request under `/webapi/rest/`.
pub async fn send(
    s: &ShoperStandin,
    token: &str,
    method: Method,
    path: &str,
    body: &Value,
) -> Response {
    client()
        .request(method, format!("{}/{path}", s.api_url()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("send")
}

pub async fn json(r: Response) -> Value {
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub async fn status_json(r: Response) -> (u16, Value) {
    let st = r.status().as_u16();
    (st, json(r).await)
}

pub fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Asserts Shoper's error envelope.
pub fn assert_error(v: &Value, error: &str) {
    assert_eq!(v["error"], error, "body: {v}");
}

/// POST to the control API.
pub async fn control_post(s: &ShoperStandin, path: &str, body: &Value) -> (u16, Value) {
    let r = client()
        .post(format!("{}/{path}", s.control_url()))
        .json(body)
        .send()
        .await
        .expect("control POST");
    status_json(r).await
}

pub async fn control_get(s: &ShoperStandin, path: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{}/{path}", s.control_url()))
        .send()
        .await
        .expect("control GET");
    status_json(r).await
}
