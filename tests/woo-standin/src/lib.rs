//! # woo-standin — a WooCommerce REST API v3 stand-in
//!
//! An HTTP server on 127.0.0.1 that behaves like a WooCommerce shop's `/wp-json/wc/v3/` closely
//! enough to test a connector against real behaviour, errors and limits included, plus a
//! control API (`/__standin`) and this library handle.
//!
//! Map of the crate (one concept per file):
//! - [`WooStandin`], [`WooOptions`], [`Faults`] — this file: start/stop, accessors, fault switches
//! - `server` — router and request pipeline (stats → rate limit → 5xx/hang faults → auth → handler)
//! - `auth` — consumer key/secret (Basic or query), WooCommerce's 401 errors
//! - `error` — [`StandinError`] (library) and [`ApiError`] (WooCommerce's JSON error shape)
//! - `params`, `pagination`, `batch`, `json` — WP parameter validation, paging headers, batch
//!   endpoints, JSON text in WooCommerce's field order
//! - `products`, `variations`, `coupons` — catalogue resources
//! - `orders`, `notes`, `refunds`, `totals`, `tax` — orders, order notes, refunds (an order's and
//!   `GET /refunds` of all), money (rust_decimal), Polish VAT
//! - `tracking` — the Shipment Tracking extension's API (optional)
//! - `webhooks`, `delivery` — the webhook resource and deliveries (signature, ping, auto-disable)
//! - `limits`, `faults`, `stats`, `requests` — rate limiter, fault injection, counters, request log
//! - `control`, `actions` — `/__standin/*` and shop actions outside the REST API
//! - `index` — `GET /wp-json/` and `GET /wp-json/wc/v3` discovery documents
//! - `state`, `persist`, `clock`, `shared` — shop state, state/seed files, site time (which a
//!   test can pin: [`WooStandin::set_clock`]), context

mod actions;
mod auth;
mod batch;
mod categories;
mod clock;
mod control;
mod coupons;
mod delivery;
mod error;
mod faults;
mod index;
mod json;
mod limits;
mod notes;
mod orders;
mod pagination;
mod params;
mod persist;
mod products;
mod refunds;
mod requests;
mod server;
mod shared;
mod state;
mod stats;
mod tax;
mod totals;
mod tracking;
mod variations;
mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use coupons::{Coupon, NewCoupon};
pub use delivery::{DeliveryRecord, signature};
pub use error::{ApiError, Result, StandinError};
pub use faults::FaultConfig;
pub use notes::OrderNote;
pub use orders::{
    Address, CouponLine, FeeLine, LineItem, LineTax, NewFee, NewOrder, Order, ShippingLine, TaxLine,
};
pub use products::{Dimensions, MetaData, NewProduct, Product, TermRef};
pub use refunds::Refund;
pub use requests::RequestRecord;
pub use shared::KeyPermissions;
pub use state::ShopState;
pub use stats::Stats;
pub use tax::{TaxRate, polish_vat};
pub use tracking::Tracking;
pub use webhooks::{NewWebhook, Webhook, WebhookRecord};

use crate::clock::SiteClock;
use crate::faults::FaultState;
use crate::limits::Limiter;
use crate::requests::RequestLog;
use crate::shared::{Shared, ShopSettings, lock};
use crate::stats::StatsState;

/// How to start the stand-in.
#[derive(Debug, Clone)]
pub struct WooOptions {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    pub consumer_key: String,
    pub consumer_secret: String,
    pub key_permissions: KeyPermissions,
    /// Requests per rolling second before 429 (None = unlimited, like WooCommerce core).
    pub rate_limit_per_sec: Option<u32>,
    /// Delay between an event and its webhook delivery.
    pub webhook_delay: Duration,
    /// Webhook HTTP timeout (60 s like WooCommerce).
    pub webhook_timeout: Duration,
    /// Site time zone as a fixed UTC offset in minutes (default 60 = +01:00).
    pub utc_offset_minutes: i32,
    pub currency: String,
    pub currency_symbol: String,
    /// Prices entered gross (default true, as Polish shops do).
    pub prices_include_tax: bool,
    /// `woocommerce_price_num_decimals` (default 2; `PUT /__standin/settings` changes it).
    pub price_decimals: u32,
    /// Whether `GET /products?sku=` also finds variations (default false).
    pub sku_lookup_includes_variations: bool,
    /// Serve the Shipment Tracking extension's API (`/wp-json/wc-shipment-tracking/v3`).
    pub shipment_tracking: bool,
    /// Batch limit (`woocommerce_rest_batch_items_limit`, 100).
    pub batch_limit: usize,
    /// Tax rates, one per class slug (`""` = standard). Default: Polish VAT 23/8/5/0.
    pub tax_rates: Vec<TaxRate>,
    /// Optional JSON state file, loaded at start and saved on changes.
    pub state_file: Option<PathBuf>,
    /// Seed for fault probabilities.
    pub seed: u64,
}

impl Default for WooOptions {
    fn default() -> Self {
        WooOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            consumer_key: "ck_standin".into(),
            consumer_secret: "cs_standin".into(),
            key_permissions: KeyPermissions::ReadWrite,
            rate_limit_per_sec: None,
            webhook_delay: Duration::from_millis(50),
            webhook_timeout: Duration::from_secs(60),
            utc_offset_minutes: 60,
            currency: "PLN".into(),
            currency_symbol: "&#122;&#322;".into(),
            prices_include_tax: true,
            price_decimals: 2,
            sku_lookup_includes_variations: false,
            shipment_tracking: false,
            batch_limit: 100,
            tax_rates: tax::polish_vat(),
            state_file: None,
            seed: 0x5eed,
        }
    }
}

/// A running stand-in.
pub struct WooStandin {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl WooStandin {
    /// Binds, loads the state file if any, and serves in the background.
    pub async fn start(opts: WooOptions) -> Result<WooStandin> {
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
        let shop = match &opts.state_file {
            Some(path) => persist::load(path)?.unwrap_or_default(),
            None => ShopState::default(),
        };
        let fault_cfg = FaultConfig {
            webhook_delay_ms: opts.webhook_delay.as_millis() as u64,
            webhook_timeout_ms: opts.webhook_timeout.as_millis() as u64,
            ..FaultConfig::default()
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let shared = Arc::new(Shared {
            consumer_key: opts.consumer_key.clone(),
            consumer_secret: opts.consumer_secret.clone(),
            key_permissions: opts.key_permissions,
            base_url: format!("http://{addr}"),
            clock: SiteClock::new(opts.utc_offset_minutes),
            settings: ShopSettings {
                currency: opts.currency.clone(),
                currency_symbol: opts.currency_symbol.clone(),
                prices_include_tax: opts.prices_include_tax,
                shipping_tax_class: String::new(),
                sku_lookup_includes_variations: opts.sku_lookup_includes_variations,
                batch_limit: opts.batch_limit,
                tax_rates: opts.tax_rates.clone(),
            },
            shop: Mutex::new(shop),
            faults: Mutex::new(FaultState::new(fault_cfg, opts.seed)),
            limiter: Mutex::new(Limiter::new(opts.rate_limit_per_sec)),
            stats: Mutex::new(StatsState::default()),
            requests: Mutex::new(RequestLog::default()),
            deliveries: Mutex::new(Vec::new()),
            http,
            rt: tokio::runtime::Handle::current(),
            dirty: AtomicBool::new(false),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            pending_deliveries: Mutex::new(std::collections::HashSet::new()),
            state_file: opts.state_file.clone(),
            save_lock: Mutex::new(()),
            shipment_tracking: opts.shipment_tracking,
            price_decimals: std::sync::atomic::AtomicU32::new(opts.price_decimals.min(6)),
        });
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        persist::spawn_autosave(Arc::clone(&shared), stop_rx.clone());
        let app = server::router(Arc::clone(&shared));
        let mut rx = stop_rx;
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.changed().await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!("woo-standin server error: {e}");
            }
        });
        tracing::info!(%addr, "woo-standin listening");
        Ok(WooStandin {
            shared,
            addr,
            stop,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `http://127.0.0.1:PORT/wp-json/wc/v3`
    pub fn api_url(&self) -> String {
        self.shared.api_root()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn consumer_key(&self) -> &str {
        &self.shared.consumer_key
    }

    pub fn consumer_secret(&self) -> &str {
        &self.shared.consumer_secret
    }

    /// Product or variation by SKU.
    pub fn product_by_sku(&self, sku: &str) -> Option<Product> {
        let shop = self.shared.shop();
        shop.id_by_sku(sku)
            .and_then(|id| shop.products.get(&id).cloned())
    }

    /// Product or variation by id.
    pub fn product(&self, id: u64) -> Option<Product> {
        self.shared.shop().products.get(&id).cloned()
    }

    /// All products and variations.
    pub fn products(&self) -> Vec<Product> {
        self.shared.shop().products.values().cloned().collect()
    }

    /// Adds a product (validated like `POST /products`); returns its id.
    pub fn add_product(&self, p: NewProduct) -> Result<u64> {
        Ok(actions::add_product(&self.shared, &p)?.id)
    }

    /// Adds a variation under a (variable) product; `body` is a `POST .../variations` body.
    pub fn add_variation(&self, parent_id: u64, body: serde_json::Value) -> Result<u64> {
        let map = body.as_object().cloned().unwrap_or_default();
        let (v, events) = {
            let mut shop = self.shared.shop();
            variations::create(&self.shared, &mut shop, parent_id, &map)?
        };
        self.shared.after_write(events);
        Ok(v.id)
    }

    /// Sets stock of a SKU (turns on `manage_stock`).
    pub fn set_stock(&self, sku: &str, qty: i64) -> Result<Product> {
        Ok(actions::set_stock(&self.shared, sku, qty)?)
    }

    /// Adds a coupon (or returns the existing one with that code).
    pub fn add_coupon(&self, c: NewCoupon) -> Result<Coupon> {
        let c = {
            let mut shop = self.shared.shop();
            coupons::ensure(&self.shared, &mut shop, &c)?
        };
        self.shared.after_write(Vec::new());
        Ok(c)
    }

    /// Places an order as a customer would (fires `order.created`).
    pub fn place_order(&self, o: NewOrder) -> Result<Order> {
        Ok(actions::place_order(&self.shared, &o)?)
    }

    /// Changes an order's status as the admin would (fires `order.updated`).
    pub fn set_order_status(&self, id: u64, status: &str) -> Result<Order> {
        Ok(actions::set_order_status(&self.shared, id, status)?)
    }

    pub fn order(&self, id: u64) -> Option<Order> {
        self.shared.shop().orders.get(&id).cloned()
    }

    pub fn orders(&self) -> Vec<Order> {
        self.shared.shop().orders.values().cloned().collect()
    }

    /// Refunds of an order, oldest first.
    pub fn order_refunds(&self, order_id: u64) -> Vec<Refund> {
        self.shared
            .shop()
            .refunds
            .get(&order_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Refunds of every order, as `(order id, refund)`, oldest first.
    pub fn refunds(&self) -> Vec<(u64, Refund)> {
        let shop = self.shared.shop();
        let mut all: Vec<(u64, Refund)> = shop
            .refunds
            .iter()
            .flat_map(|(order, rs)| rs.iter().map(|r| (*order, r.clone())))
            .collect();
        all.sort_by_key(|(_, r)| r.id);
        all
    }

    /// Pins the shop's clock at `at`: every date the shop writes from then on (orders, refunds,
    /// notes, products) is that instant, until pinned elsewhere; `None` lets it run with the
    /// wall clock again. `PUT /__standin/clock` does the same over HTTP.
    pub fn set_clock(&self, at: Option<chrono::DateTime<chrono::Utc>>) {
        self.shared.clock.pin(at);
    }

    /// Shipment tracking items of an order (Shipment Tracking extension).
    pub fn shipment_trackings(&self, order_id: u64) -> Vec<Tracking> {
        tracking::items(&self.shared.shop(), order_id).unwrap_or_default()
    }

    /// Notes of an order, newest first (as the API lists them).
    pub fn order_notes(&self, id: u64) -> Vec<OrderNote> {
        let mut notes = self
            .shared
            .shop()
            .order_notes
            .get(&id)
            .cloned()
            .unwrap_or_default();
        notes.reverse();
        notes
    }

    /// Adds a webhook like `POST /webhooks` (pings it when active).
    pub async fn add_webhook(&self, w: NewWebhook) -> Result<WebhookRecord> {
        Ok(actions::add_webhook(&self.shared, &w).await?)
    }

    /// Webhooks with their secrets and failure counts.
    pub fn webhooks(&self) -> Vec<WebhookRecord> {
        self.shared.shop().webhooks.values().cloned().collect()
    }

    pub fn webhook(&self, id: u64) -> Option<WebhookRecord> {
        self.shared.shop().webhooks.get(&id).cloned()
    }

    /// Delivery log (pings, deliveries, dropped ones).
    pub fn webhook_deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.shared.deliveries).clone()
    }

    /// Waits until at least `n` event deliveries have been attempted (sent, successful or not;
    /// pings, drops and coalesced events do not count) or `timeout` passes; returns them.
    pub async fn wait_for_webhook_deliveries(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Vec<DeliveryRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let sent: Vec<DeliveryRecord> = self
                .webhook_deliveries()
                .into_iter()
                .filter(|d| d.kind == "event" && d.sent_at.is_some())
                .collect();
            if sent.len() >= n || tokio::time::Instant::now() >= deadline {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Request log (last 10 000 API requests).
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).all()
    }

    /// A copy of the whole shop.
    pub fn state(&self) -> ShopState {
        self.shared.shop().clone()
    }

    /// Fault switches.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Counter snapshot.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).snapshot()
    }

    pub fn reset_stats(&self) {
        lock(&self.shared.stats).reset();
    }

    /// Empties the shop, logs and counters.
    pub fn reset(&self) {
        actions::reset(&self.shared);
    }

    /// Writes the state file now (no-op without one).
    pub fn save_state(&self) -> Result<()> {
        persist::save(&self.shared)
    }

    /// Adds products from a seed file; returns how many were added.
    pub fn seed_from_file(&self, path: &std::path::Path) -> Result<usize> {
        let mut n = 0;
        for p in persist::read_seed(path)? {
            if self.product_by_sku(&p.sku).is_none() {
                self.add_product(p)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Stops serving (and saves the state file).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        if let Err(e) = persist::save(&self.shared) {
            tracing::warn!("saving state at shutdown: {e}");
        }
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

    /// Current configuration.
    pub fn config(&self) -> FaultConfig {
        lock(&self.shared.faults).cfg.clone()
    }

    /// Replaces the configuration.
    pub fn set_config(&self, cfg: FaultConfig) {
        lock(&self.shared.faults).cfg = cfg;
    }

    /// Clears every fault (keeps webhook delay and timeout).
    pub fn clear(&self) {
        self.edit(|c| {
            *c = FaultConfig {
                webhook_delay_ms: c.webhook_delay_ms,
                webhook_timeout_ms: c.webhook_timeout_ms,
                ..FaultConfig::default()
            }
        });
    }

    /// The next `n` API requests answer `status` (e.g. 503) unprocessed.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.edit(|c| {
            c.fail_next = n;
            c.fail_status = status;
        });
    }

    /// Like `fail_next`, only for paths containing `path_contains`.
    pub fn fail_next_matching(&self, n: u32, status: u16, path_contains: &str) {
        self.edit(|c| {
            c.fail_next = n;
            c.fail_status = status;
            c.fail_path_contains = Some(path_contains.to_string());
        });
    }

    /// Each API request answers `status` with probability `p`.
    pub fn set_error_probability(&self, p: f64, status: u16) {
        self.edit(|c| {
            c.fail_probability = p;
            c.fail_status = status;
        });
    }

    /// The next `n` API requests are processed, then hang for `d` before answering.
    pub fn hang_next(&self, n: u32, d: Duration) {
        self.edit(|c| {
            c.hang_next = n;
            c.hang_ms = d.as_millis() as u64;
        });
    }

    /// Each API request hangs for `d` with probability `p`.
    pub fn set_hang_probability(&self, p: f64, d: Duration) {
        self.edit(|c| {
            c.hang_probability = p;
            c.hang_ms = d.as_millis() as u64;
        });
    }

    /// Adds `d` of latency to every API request (a slow host).
    pub fn set_latency(&self, d: Duration) {
        self.edit(|c| c.latency_ms = d.as_millis() as u64);
    }

    /// At most `n` API requests in flight; more answer `fail_status` (503) at once.
    pub fn set_max_concurrent(&self, n: Option<u32>) {
        self.edit(|c| c.max_concurrent = n);
    }

    /// Hang before processing instead of after.
    pub fn set_hang_before_processing(&self, before: bool) {
        self.edit(|c| c.hang_before_processing = before);
    }

    /// Changes the rate limit (None = unlimited).
    pub fn set_rate_limit(&self, per_sec: Option<u32>) {
        lock(&self.shared.limiter).set_limit(per_sec);
    }

    /// The next `n` webhook deliveries are lost.
    pub fn drop_next_webhooks(&self, n: u32) {
        self.edit(|c| c.webhook_drop_next = n);
    }

    /// The next `n` webhook deliveries are sent twice.
    pub fn duplicate_next_webhooks(&self, n: u32) {
        self.edit(|c| c.webhook_duplicate_next = n);
    }

    /// The next `n` webhook deliveries wait `extra` longer.
    pub fn delay_next_webhooks(&self, n: u32, extra: Duration) {
        self.edit(|c| {
            c.webhook_extra_delay_next = n;
            c.webhook_extra_delay_ms = extra.as_millis() as u64;
        });
    }

    /// Probabilities for webhook loss, duplication and extra delay.
    pub fn set_webhook_probabilities(
        &self,
        drop: f64,
        duplicate: f64,
        delay: f64,
        extra: Duration,
    ) {
        self.edit(|c| {
            c.webhook_drop_probability = drop;
            c.webhook_duplicate_probability = duplicate;
            c.webhook_extra_delay_probability = delay;
            c.webhook_extra_delay_ms = extra.as_millis() as u64;
        });
    }

    /// Base delay between event and delivery.
    pub fn set_webhook_delay(&self, d: Duration) {
        self.edit(|c| c.webhook_delay_ms = d.as_millis() as u64);
    }

    /// Webhook HTTP timeout.
    pub fn set_webhook_timeout(&self, d: Duration) {
        self.edit(|c| c.webhook_timeout_ms = d.as_millis() as u64);
    }
}
