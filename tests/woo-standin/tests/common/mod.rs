//! Test helpers: start a stand-in, an authenticated reqwest client, a webhook receiver.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use woo_standin::{NewProduct, WooOptions, WooStandin};

pub const KEY: &str = "ck_test_key";
pub const SECRET: &str = "cs_test_secret";

pub async fn start() -> WooStandin {
    start_with(WooOptions::default()).await
}

pub async fn start_with(opts: WooOptions) -> WooStandin {
    WooStandin::start(WooOptions {
        consumer_key: KEY.into(),
        consumer_secret: SECRET.into(),
        ..opts
    })
    .await
    .expect("start stand-in")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// GET `{api}{path}` with Basic auth.
pub async fn get(w: &WooStandin, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{}", w.api_url(), path))
        .basic_auth(KEY, Some(SECRET))
        .send()
        .await
        .expect("send")
}

pub async fn send_json(
    w: &WooStandin,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    client()
        .request(method, format!("{}{}", w.api_url(), path))
        .basic_auth(KEY, Some(SECRET))
        .json(&body)
        .send()
        .await
        .expect("send")
}

pub fn product(sku: &str, name: &str, price: &str, stock: i64) -> NewProduct {
    NewProduct {
        sku: sku.into(),
        name: name.into(),
        regular_price: price.into(),
        stock_quantity: Some(stock),
        ..NewProduct::default()
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

/// A webhook receiver on 127.0.0.1 answering `status`.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    pub status: Arc<AtomicU16>,
}

#[derive(Clone)]
struct RecvState {
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

async fn receive(State(s): State<RecvState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    s.got.lock().expect("lock").push(Received {
        headers,
        body,
        at: Instant::now(),
    });
    StatusCode::from_u16(s.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
}

impl Receiver {
    pub async fn start(status: u16) -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(status));
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(RecvState {
                got: Arc::clone(&got),
                status: Arc::clone(&status),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            got,
            status,
        }
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Requests that carry a topic header (i.e. not pings).
    pub fn deliveries(&self) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.header("x-wc-webhook-topic").is_some())
            .collect()
    }

    /// Waits until at least `n` deliveries arrived (or 5 s).
    pub async fn wait_deliveries(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let d = self.deliveries();
            if d.len() >= n || Instant::now() > deadline {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
