//! The server-wide context every handler sees: options, the shop behind a mutex, faults, limiter,
//! stats, logs and the HTTP client that delivers webhooks.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::clock::SiteClock;
use crate::delivery::{self, DeliveryRecord};
use crate::faults::FaultState;
use crate::limits::Limiter;
use crate::requests::RequestLog;
use crate::state::{Event, ShopState};
use crate::stats::StatsState;

/// Locks a mutex, ignoring poisoning (a panicked handler must not take the server down).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a consumer key may do (WooCommerce → Settings → Advanced → REST API → Permissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPermissions {
    Read,
    Write,
    #[default]
    ReadWrite,
}

/// Shop settings that change API behaviour.
#[derive(Debug, Clone)]
pub struct ShopSettings {
    pub currency: String,
    pub currency_symbol: String,
    pub prices_include_tax: bool,
    /// Tax class of shipping (`""` = standard 23 %).
    pub shipping_tax_class: String,
    /// Whether `GET /products?sku=` also returns variations (it has varied across versions).
    pub sku_lookup_includes_variations: bool,
    /// `woocommerce_rest_batch_items_limit` (100).
    pub batch_limit: usize,
    /// Tax rates by class.
    pub tax_rates: Vec<crate::tax::TaxRate>,
}

pub struct Shared {
    pub consumer_key: String,
    pub consumer_secret: String,
    pub key_permissions: KeyPermissions,
    pub base_url: String,
    pub clock: SiteClock,
    pub settings: ShopSettings,
    pub shop: Mutex<ShopState>,
    pub faults: Mutex<FaultState>,
    pub limiter: Mutex<Limiter>,
    pub stats: Mutex<StatsState>,
    pub requests: Mutex<RequestLog>,
    pub deliveries: Mutex<Vec<DeliveryRecord>>,
    pub http: reqwest::Client,
    pub rt: tokio::runtime::Handle,
    pub dirty: AtomicBool,
    /// Queued webhook deliveries not yet started, by (webhook id, resource id): WooCommerce
    /// does not queue a second one for the same pair (`wc_webhook_execute_queue`).
    pub pending_deliveries: Mutex<std::collections::HashSet<(u64, u64)>>,
    /// API requests being processed right now.
    pub in_flight: std::sync::atomic::AtomicUsize,
    pub state_file: Option<PathBuf>,
    /// Serializes writers of the state file.
    pub save_lock: Mutex<()>,
    /// Serve the Shipment Tracking extension's routes.
    pub shipment_tracking: bool,
    /// `woocommerce_price_num_decimals` (WooCommerce → Settings → General; 2 by default):
    /// amounts of new orders are computed and shown with this many decimals.
    pub price_decimals: std::sync::atomic::AtomicU32,
}

impl Shared {
    pub fn shop(&self) -> MutexGuard<'_, ShopState> {
        lock(&self.shop)
    }

    pub fn precision(&self) -> crate::totals::Precision {
        crate::totals::Precision(self.price_decimals.load(Ordering::SeqCst))
    }

    /// `http://127.0.0.1:PORT/wp-json/wc/v3`
    pub fn api_root(&self) -> String {
        format!("{}/wp-json/wc/v3", self.base_url)
    }

    /// After a write: mark the state dirty (persistence) and queue webhook deliveries.
    pub fn after_write(self: &Arc<Self>, events: Vec<Event>) {
        self.dirty.store(true, Ordering::SeqCst);
        if !events.is_empty() {
            delivery::schedule(self, events);
        }
    }
}
