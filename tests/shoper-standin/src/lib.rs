//! # shoper-standin — a local stand-in of the Shoper REST API
//!
//! An HTTP server on 127.0.0.1 that behaves like a Shoper shop's `/webapi/rest/` closely enough
//! to test the connector against Shoper's real behaviour, refusals included
//! (docs/platforms/shoper.md, "Stand-in checklist"). Tests start it in-process with
//! [`ShoperStandin::start`]; the `shoper-standin` binary runs it for the local run. A control
//! API under `/__standin` (no auth, no bucket, not logged) and this handle seed products, place
//! orders as a buyer, change statuses, issue and expire tokens, move the clock, inject faults,
//! and read the request and webhook delivery logs.
//!
//! Map of the crate:
//! - [`ShoperStandin`], [`ShoperOptions`], [`Faults`] — this file
//! - `server` — router and pipeline (faults → auth → bucket → handler → headers → log)
//! - `api` — routing of `/webapi/rest/<resource>`, scopes, `/bulk`
//! - `auth` — `/auth`, panel tokens, Bearer check, scopes
//! - `catalog` — `/products`, `/product-stocks`
//! - `orders` — `/orders`, `/order-products`, `/statuses`, `/parcels`, `object-mtime`
//! - `webhooks`, `delivery` — `/webhooks`, signing, the delivery worker
//! - `query` — collections: limit/page/order/filters
//! - `limits`, `faults`, `requests` — the leaky bucket, fault injection, request log
//! - `config` — [`Config`]: lifetimes, limits, switches for *unverified* behaviour
//! - `state`, `util`, `error`, `control` — state and clock, wire formats, error bodies,
//!   `/__standin`

// The wire shapes are large `json!` literals.
#![recursion_limit = "256"]
// Control handlers return `Result<_, Response>` to answer early, as allegro-standin does.
#![allow(clippy::result_large_err)]

mod api;
mod auth;
mod catalog;
mod config;
mod control;
mod delivery;
mod error;
mod faults;
mod limits;
mod orders;
mod query;
mod requests;
mod server;
mod state;
mod util;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

pub use auth::{SCOPES, Token, TokenKind, User};
pub use catalog::{NewProduct, NewVariant, Product, Stock, TAXES};
pub use config::Config;
pub use delivery::DeliveryRecord;
pub use error::{ApiError, INSUFFICIENT_SCOPE, INVALID_TOKEN, NOT_FOUND};
pub use faults::FaultConfig;
pub use orders::{
    Address, NewLine, NewOrder, Order, OrderLine, PAYMENTS, Parcel, SHIPPINGS, Status,
};
pub use requests::RequestRecord;
pub use state::Counters;
pub use webhooks::{EVENTS, NewWebhook, Webhook, derive_app_secret, signature};

use crate::delivery::DeliveryLog;
use crate::faults::FaultState;
use crate::requests::RequestLog;
use crate::state::{Shared, State, lock};

/// Errors of the library handle.
#[derive(Debug, thiserror::Error)]
pub enum StandinError {
    /// The listen address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A library call was refused the way the API would refuse it.
    #[error("{0}")]
    Api(#[from] ApiError),
}

/// Result of library calls.
pub type Result<T> = std::result::Result<T, StandinError>;

/// How to start the stand-in.
#[derive(Debug, Clone)]
pub struct ShoperOptions {
    /// Port 0 picks a free port.
    pub listen: SocketAddr,
    /// The WebAPI user `/auth` accepts.
    pub login: String,
    pub password: String,
    /// `X-Shop-Domain` of webhook deliveries.
    pub shop_domain: String,
    /// `X-Shop-License` of webhook deliveries (40 hex characters).
    pub license: String,
    pub config: Config,
    /// Webhooks configured from the start (as if added in the panel).
    pub webhooks: Vec<NewWebhook>,
    /// Start with the clock standing still (only [`ShoperStandin::advance_clock`] moves it):
    /// the bucket then never leaks by itself, which makes limit tests exact.
    pub frozen_clock: bool,
    /// Seed for fault probabilities.
    pub seed: u64,
}

impl Default for ShoperOptions {
    fn default() -> Self {
        ShoperOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            login: "webapi".into(),
            password: "standin-password".into(),
            shop_domain: "sklep-standin.shoparena.pl".into(),
            license: "5d7a0e3f1c2b4a69880f7e6d5c4b3a2918070605".into(),
            config: Config::default(),
            webhooks: Vec::new(),
            frozen_clock: false,
            seed: 0x5eed,
        }
    }
}

/// A running stand-in.
pub struct ShoperStandin {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    worker: tokio::task::JoinHandle<()>,
}

impl ShoperStandin {
    /// Binds and serves in the background (call inside a Tokio runtime).
    pub async fn start(opts: ShoperOptions) -> Result<ShoperStandin> {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|source| StandinError::Bind {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StandinError::Bind {
            addr: opts.listen,
            source,
        })?;
        let mut st = State::new(opts.config.clone());
        st.users
            .insert(opts.login.clone(), User::new(&opts.login, &opts.password));
        if opts.frozen_clock {
            st.frozen_at = Some(Utc::now());
        }
        for w in &opts.webhooks {
            webhooks::add(&mut st, w)?;
        }
        let deliveries = Arc::new(Mutex::new(DeliveryLog::default()));
        let delivered = Arc::new(tokio::sync::Notify::new());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let worker = tokio::spawn(delivery::worker(
            rx,
            Arc::clone(&deliveries),
            Arc::clone(&delivered),
        ));
        let shared = Arc::new(Shared {
            login: opts.login.clone(),
            password: opts.password.clone(),
            base_url: format!("http://{addr}"),
            shop_domain: opts.shop_domain.clone(),
            license: opts.license.clone(),
            state: Mutex::new(st),
            faults: Mutex::new(FaultState::new(opts.seed)),
            requests: Mutex::new(RequestLog::default()),
            deliveries,
            delivered,
            outbox_tx: tx,
        });
        let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
        let app = server::router(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.changed().await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!("shoper-standin server error: {e}");
            }
        });
        tracing::info!(%addr, "shoper-standin listening");
        Ok(ShoperStandin {
            shared,
            addr,
            stop,
            server,
            worker,
        })
    }

    /// `http://127.0.0.1:PORT` (the shop's root).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `http://127.0.0.1:PORT/webapi/rest` (resources go under it: `/products`, `/auth`, ...).
    pub fn api_url(&self) -> String {
        format!("{}/webapi/rest", self.shared.base_url)
    }

    /// `http://127.0.0.1:PORT/__standin`
    pub fn control_url(&self) -> String {
        format!("{}/__standin", self.shared.base_url)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The default WebAPI user's login and password.
    pub fn login(&self) -> &str {
        &self.shared.login
    }

    pub fn password(&self) -> &str {
        &self.shared.password
    }

    pub fn shop_domain(&self) -> &str {
        &self.shared.shop_domain
    }

    pub fn license(&self) -> &str {
        &self.shared.license
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        self.shared.with(f)
    }

    // ------------------------------------------------------------ config and clock

    pub fn config(&self) -> Config {
        self.shared.st().cfg.clone()
    }

    pub fn set_config(&self, cfg: Config) {
        self.shared.st().cfg = cfg;
    }

    /// Changes some settings: `standin.configure(|c| c.bucket_bandwidth = 10)`.
    pub fn configure(&self, f: impl FnOnce(&mut Config)) {
        f(&mut self.shared.st().cfg);
    }

    /// The stand-in's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.st().now_precise()
    }

    /// Moves the clock forward: token expiry and the bucket's leak follow it.
    pub fn advance_clock(&self, d: Duration) {
        let mut m = self.shared.st();
        m.clock_offset += chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
    }

    /// Stops the clock (only [`Self::advance_clock`] moves it from now on).
    pub fn freeze_clock(&self) {
        let mut m = self.shared.st();
        if m.frozen_at.is_none() {
            m.frozen_at = Some(Utc::now());
        }
    }

    /// Lets the clock run with the wall clock again (keeping what was advanced).
    pub fn unfreeze_clock(&self) {
        let mut m = self.shared.st();
        if let Some(at) = m.frozen_at.take() {
            // Keep `now` continuous: the time spent frozen is taken off.
            m.clock_offset -= Utc::now() - at;
        }
    }

    /// Empties every request bucket.
    pub fn reset_buckets(&self) {
        self.shared.st().buckets.clear();
    }

    // ------------------------------------------------------------ users and tokens

    /// Adds (or replaces) a WebAPI user.
    pub fn add_user(&self, user: User) {
        self.shared.st().users.insert(user.login.clone(), user);
    }

    /// A panel integration token ("Token API") of the default user; `scopes` None = every
    /// right (see [`SCOPES`]). Lifetime: [`Config::panel_token_ttl_secs`].
    pub fn issue_panel_token(&self, scopes: Option<&[&str]>) -> Token {
        let login = self.shared.login.clone();
        self.with(|m| {
            let ttl = m.cfg.panel_token_ttl_secs;
            let scopes = scopes.map(|s| s.iter().map(|x| x.to_string()).collect());
            auth::mint(m, &login, TokenKind::Panel, ttl, scopes)
        })
    }

    /// An `/auth` token of the default user without the HTTP call.
    pub fn issue_auth_token(&self) -> Token {
        let login = self.shared.login.clone();
        self.with(|m| {
            let ttl = m.cfg.token_ttl_secs;
            auth::mint(m, &login, TokenKind::Auth, Some(ttl), None)
        })
    }

    /// Expires one token now (the next call with it answers 401).
    pub fn expire_token(&self, token: &str) -> bool {
        auth::expire(&mut self.shared.st(), Some(token)) > 0
    }

    /// Expires every token; returns how many.
    pub fn expire_tokens(&self) -> usize {
        auth::expire(&mut self.shared.st(), None)
    }

    /// Revokes a token (as deleting the integration in the panel would).
    pub fn revoke_token(&self, token: &str) -> bool {
        auth::revoke(&mut self.shared.st(), Some(token)) > 0
    }

    pub fn tokens(&self) -> Vec<Token> {
        self.shared.st().tokens.values().cloned().collect()
    }

    // ------------------------------------------------------------ catalogue

    /// Seeds a simple product (base stock with code, price, stock).
    pub fn add_product(&self, p: NewProduct) -> Result<Product> {
        Ok(self.with(|m| catalog::add_product(m, &p))?)
    }

    /// Seeds an option variant of a product.
    pub fn add_variant(&self, product_id: u64, v: NewVariant) -> Result<Stock> {
        Ok(self.with(|m| catalog::add_variant(m, product_id, &v))?)
    }

    pub fn product(&self, id: u64) -> Option<Product> {
        self.shared.st().products.get(&id).cloned()
    }

    pub fn products(&self) -> Vec<Product> {
        self.shared.st().products.values().cloned().collect()
    }

    pub fn stock(&self, stock_id: u64) -> Option<Stock> {
        self.shared.st().stocks.get(&stock_id).cloned()
    }

    /// The stock whose `code` is `code` (a variant before a base stock with the same code).
    pub fn stock_by_code(&self, code: &str) -> Option<Stock> {
        catalog::stock_by_code(&self.shared.st(), code).cloned()
    }

    pub fn stocks(&self) -> Vec<Stock> {
        self.shared.st().stocks.values().cloned().collect()
    }

    /// Changes a stock as an admin in the panel would (`product.edit`).
    pub fn edit_stock(&self, stock_id: u64, f: impl FnOnce(&mut Stock)) -> Result<Stock> {
        Ok(self.with(|m| {
            let s = m
                .stocks
                .get_mut(&stock_id)
                .ok_or_else(ApiError::not_found)?;
            f(s);
            s.stock_id = stock_id;
            let s = s.clone();
            let now = m.now();
            if let Some(p) = m.products.get_mut(&s.product_id) {
                p.edit_date = now;
            }
            if let Some(p) = m.products.get(&s.product_id) {
                let body = catalog::product_json(m, p);
                m.emit("product.edit", body);
            }
            Ok::<_, ApiError>(s)
        })?)
    }

    /// Sets a stock quantity (panel).
    pub fn set_stock(&self, stock_id: u64, quantity: Decimal) -> Result<Stock> {
        self.edit_stock(stock_id, |s| s.stock = quantity)
    }

    /// Sets a stock's own price (panel).
    pub fn set_price(&self, stock_id: u64, price: Decimal) -> Result<Stock> {
        if price <= Decimal::ZERO {
            return Err(ApiError::invalid(
                "Wartość pola 'price' jest niepoprawna: Wartość musi być większa od 0",
            )
            .into());
        }
        self.edit_stock(stock_id, |s| {
            s.price = price;
            s.price_type = 1;
        })
    }

    // ------------------------------------------------------------ orders

    /// A buyer places an order (stock is taken off, `order.create` goes out).
    pub fn place_order(&self, o: NewOrder) -> Result<Order> {
        Ok(self.with(|m| orders::place(m, &o))?)
    }

    /// Changes an order's status as the panel would (`order.status`, `order.edit`).
    pub fn set_order_status(&self, order_id: u64, status_id: u64) -> Result<Order> {
        Ok(self.with(|m| orders::set_status(m, order_id, status_id))?)
    }

    /// Records full payment (`order.paid`).
    pub fn mark_order_paid(&self, order_id: u64) -> Result<Order> {
        Ok(self.with(|m| orders::mark_paid(m, order_id))?)
    }

    /// Changes an order as an admin would (`order.edit`, plus `order.status`/`order.paid` when
    /// those changed).
    pub fn edit_order(&self, order_id: u64, f: impl FnOnce(&mut Order)) -> Result<Order> {
        Ok(self.with(|m| orders::edit(m, order_id, f))?)
    }

    pub fn order(&self, id: u64) -> Option<Order> {
        self.shared.st().orders.get(&id).cloned()
    }

    pub fn orders(&self) -> Vec<Order> {
        self.shared.st().orders.values().cloned().collect()
    }

    /// An order as `GET /orders/{id}` serves it, with `products[]` (the webhook body shape).
    pub fn order_json(&self, id: u64) -> Option<serde_json::Value> {
        let m = self.shared.st();
        m.orders.get(&id).map(|o| orders::order_json(&m, o, true))
    }

    pub fn order_lines(&self, order_id: u64) -> Vec<OrderLine> {
        orders::order_lines(&self.shared.st(), order_id)
    }

    pub fn parcels(&self) -> Vec<Parcel> {
        self.shared.st().parcels.values().cloned().collect()
    }

    pub fn statuses(&self) -> Vec<Status> {
        self.shared.st().statuses.values().cloned().collect()
    }

    /// Adds a customer account (`user_id` of orders).
    pub fn add_customer(&self, user_id: u64) {
        self.shared.st().customers.insert(user_id);
    }

    // ------------------------------------------------------------ webhooks

    /// Adds a webhook as the panel would.
    pub fn add_webhook(&self, w: NewWebhook) -> Result<Webhook> {
        Ok(self.with(|m| webhooks::add(m, &w))?)
    }

    pub fn webhooks(&self) -> Vec<Webhook> {
        self.shared.st().webhooks.values().cloned().collect()
    }

    /// Delivery attempts so far, oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.shared.deliveries).items.clone()
    }

    pub fn clear_deliveries(&self) {
        lock(&self.shared.deliveries).items.clear();
    }

    /// Waits until at least `n` delivery records exist (or `timeout` passes); returns them.
    pub async fn wait_for_deliveries(&self, n: usize, timeout: Duration) -> Vec<DeliveryRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.delivered.notified();
            let items = self.deliveries();
            if items.len() >= n {
                return items;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.deliveries();
            }
        }
    }

    // ------------------------------------------------------------ log and faults

    /// Request log (last 10 000 `/webapi/rest` requests), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).all()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    pub fn counters(&self) -> Counters {
        self.shared.st().counters.clone()
    }

    /// Fault switches.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Stops serving and delivering.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        self.worker.abort();
    }
}

/// Fault switches of a running stand-in (cheap to clone).
#[derive(Clone)]
pub struct Faults {
    shared: Arc<Shared>,
}

impl Faults {
    fn edit(&self, f: impl FnOnce(&mut FaultConfig)) {
        f(&mut lock(&self.shared.faults).cfg);
    }

    pub fn config(&self) -> FaultConfig {
        lock(&self.shared.faults).cfg.clone()
    }

    pub fn set_config(&self, cfg: FaultConfig) {
        lock(&self.shared.faults).cfg = cfg;
    }

    pub fn clear(&self) {
        self.set_config(FaultConfig::default());
    }

    /// The next `n` requests answer `status` unprocessed (Shoper's envelope for it).
    pub fn fail_next(&self, n: u32, status: u16) {
        self.edit(|c| {
            c.fail_next = n;
            c.fail_status = status;
            c.path_contains = None;
            c.method = None;
        });
    }

    /// Like `fail_next`, only for paths containing `path_contains`.
    pub fn fail_next_matching(&self, n: u32, status: u16, path_contains: &str) {
        self.edit(|c| {
            c.fail_next = n;
            c.fail_status = status;
            c.path_contains = Some(path_contains.into());
            c.method = None;
        });
    }

    /// Each request answers `status` with probability `p`.
    pub fn set_error_probability(&self, p: f64, status: u16) {
        self.edit(|c| {
            c.fail_probability = p;
            c.fail_status = status;
        });
    }

    /// The next `n` requests are processed, then hang for `d` before answering.
    pub fn hang_next(&self, n: u32, d: Duration) {
        self.edit(|c| {
            c.hang_next = n;
            c.hang_ms = d.as_millis() as u64;
        });
    }

    /// Latency added to every request.
    pub fn set_latency(&self, d: Duration) {
        self.edit(|c| c.latency_ms = d.as_millis() as u64);
    }

    /// The next `n` webhook deliveries are dropped.
    pub fn drop_next_webhooks(&self, n: u32) {
        self.edit(|c| c.webhook_drop_next = n);
    }

    /// The next `n` webhook deliveries are sent twice.
    pub fn duplicate_next_webhooks(&self, n: u32) {
        self.edit(|c| c.webhook_duplicate_next = n);
    }

    /// Delay before each webhook delivery.
    pub fn set_webhook_delay(&self, d: Duration) {
        self.edit(|c| c.webhook_delay_ms = d.as_millis() as u64);
    }
}
