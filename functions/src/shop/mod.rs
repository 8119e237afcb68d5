//! Shop connectors: one module per platform behind one trait.
//!
//! A connector speaks its platform's HTTP API and nothing else: it looks up
//! the platform's ids for SKUs and writes [`ProductChanges`] in the
//! platform's batch shape, answering per item. It knows nothing of queues,
//! DynamoDB or rate buckets; `shop-push` wraps it with those. Errors say
//! what the caller should do: retry later ([`ShopError::RateLimited`],
//! [`ShopError::Transient`]), stop and tell a person ([`ShopError::Auth`],
//! [`ShopError::Permanent`]), or, for one item of a batch, park that item
//! ([`ItemOutcome::Rejected`]).
//!
//! Orders: a connector lists orders modified since a time, one page per
//! call (so each page is paced by the caller's rate limit), normalises the
//! platform's order into [`contract::Order`], sets an order's status and
//! adds a customer note. Webhook signatures and the order payload of each
//! platform are pure functions beside its connector ([`woo_order`]).
//!
//! Platforms: [`woocommerce`] (REST v3).

pub mod woo_order;
pub mod woocommerce;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::mapping::ProductChanges;

/// Where one SKU lives in a shop, in the platform's own ids (as text, so
/// numeric ids and Shopify's GIDs fit alike).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShopItemId {
    pub product_id: String,
    /// Set when the SKU is a variation of `product_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation_id: Option<String>,
}

impl ShopItemId {
    pub fn product(id: impl Into<String>) -> Self {
        ShopItemId {
            product_id: id.into(),
            variation_id: None,
        }
    }

    pub fn variation(product_id: impl Into<String>, variation_id: impl Into<String>) -> Self {
        ShopItemId {
            product_id: product_id.into(),
            variation_id: Some(variation_id.into()),
        }
    }
}

impl fmt::Display for ShopItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variation_id {
            Some(v) => write!(f, "{}/{v}", self.product_id),
            None => f.write_str(&self.product_id),
        }
    }
}

/// What became of one item of a batch write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ItemOutcome {
    Ok,
    /// The shop refused this item for good (unknown id, invalid value):
    /// park it; retrying sends the same refusal.
    Rejected {
        code: String,
        message: String,
    },
}

impl ItemOutcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, ItemOutcome::Ok)
    }
}

/// Why a whole call to a shop failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShopError {
    /// The shop (or its host) said slow down (HTTP 429).
    #[error("rate limited by the shop (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// Worth retrying: 5xx, a timeout, a dropped connection.
    #[error("shop unavailable: {0}")]
    Transient(String),
    /// The credentials are wrong or lack rights: nothing works until a person fixes them.
    #[error("shop refused the credentials: {0}")]
    Auth(String),
    /// The request itself is wrong (too large, malformed, misconfigured
    /// shop URL): retrying sends the same request.
    #[error("shop refused the request: {0}")]
    Permanent(String),
}

impl ShopError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ShopError::RateLimited { .. } | ShopError::Transient(_)
        )
    }
}

/// A connector configuration that does not make sense.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("shop configuration: {0}")]
pub struct ConfigError(pub String);

/// A credential: never printed, never logged, zeroed when dropped.
#[derive(Clone)]
pub struct Secret(secrecy::SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(secrecy::SecretString::from(value.into()))
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Paces a connector's HTTP requests to one shop: the connector asks for
/// one token before every request it sends (lookups, pages, categories,
/// batches alike), so the shop's limit holds however many requests one
/// trait call takes.
pub trait RequestGate: Send + Sync + fmt::Debug {
    /// Waits for a token; `Err` when none comes in time (try later).
    fn admit(&self) -> BoxFuture<'_, Result<(), ShopError>>;

    /// The shop answered 429: every user of the limit holds back for
    /// `retry_after` (a default back-off when the shop gave none).
    fn penalise(&self, retry_after: Option<Duration>) -> BoxFuture<'_, ()>;
}

/// The lookup result: SKU → where it lives. SKUs the shop does not have are absent.
pub type ItemIds = HashMap<String, ShopItemId>;

/// One page of orders as the platform lists them.
#[derive(Debug, Clone, Default)]
pub struct OrdersPage {
    pub orders: Vec<serde_json::Value>,
    /// Pages in all, when the platform says.
    pub total_pages: Option<usize>,
}

/// What every shop platform implements. Methods return boxed futures so
/// `shop-push` can hold any connector as `Arc<dyn ShopConnector>`.
pub trait ShopConnector: Send + Sync {
    /// The platform's name, for logs ("woocommerce").
    fn platform(&self) -> &'static str;

    /// The most items one [`write_products`](Self::write_products) call takes.
    fn max_batch(&self) -> usize;

    /// Finds the shop's ids of these SKUs (exact matches only).
    fn lookup_ids<'a>(&'a self, skus: &'a [String]) -> BoxFuture<'a, Result<ItemIds, ShopError>>;

    /// Writes up to [`max_batch`](Self::max_batch) items in the platform's
    /// batch shape. `Ok` carries one outcome per item, in input order; an
    /// `Err` means the shop may have applied none, some or all of them
    /// (writes are absolute, so repeating them is safe).
    fn write_products<'a>(
        &'a self,
        items: &'a [(ShopItemId, ProductChanges)],
    ) -> BoxFuture<'a, Result<Vec<ItemOutcome>, ShopError>>;

    /// Makes sure the category path (names from the top) exists in the
    /// shop, creating what is missing, so a following
    /// [`write_products`](Self::write_products) can put products in it.
    /// Platforms without categories do nothing.
    fn ensure_category<'a>(&'a self, path: &'a [String]) -> BoxFuture<'a, Result<(), ShopError>> {
        let _ = path;
        Box::pin(async { Ok(()) })
    }

    /// Page `page` (from 1) of the orders modified after `since`, oldest id first.
    fn list_orders_page<'a>(
        &'a self,
        since: DateTime<Utc>,
        page: usize,
    ) -> BoxFuture<'a, Result<OrdersPage, ShopError>>;

    /// A listed order normalised for the ERP.
    fn normalise_order(
        &self,
        shop: &str,
        raw: serde_json::Value,
        options: &woo_order::NormaliseOptions,
    ) -> Result<contract::Order, woo_order::OrderParseError>;

    /// Sets an order's status.
    fn set_order_status<'a>(
        &'a self,
        order_id: &'a str,
        status: &'a str,
    ) -> BoxFuture<'a, Result<(), ShopError>>;

    /// Adds a note the customer sees (and is e-mailed).
    fn add_customer_note<'a>(
        &'a self,
        order_id: &'a str,
        note: &'a str,
    ) -> BoxFuture<'a, Result<(), ShopError>>;
}
