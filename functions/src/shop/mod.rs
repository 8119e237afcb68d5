//! Shop connectors: one module per platform, each implementing the narrow
//! traits of the capabilities its platform has, in the manner of Vector's
//! sources and sinks:
//!
//! - [`CatalogueSink`]: looks up the platform's ids for SKUs and writes
//!   [`ProductChanges`] in the platform's batch shape, answering per item;
//! - [`OrderSource`]: lists the orders changed since a time, one page per
//!   call from an opaque [`PageToken`], and normalises one into
//!   [`contract::Order`] with its neutral [`contract::OrderState`];
//! - [`OrderUpdater`]: applies an [`OrderUpdate`] (an ERP stage, a
//!   cancellation, a tracking number, an invoice) the platform's way;
//! - [`WebhookVerifier`]: checks one webhook delivery (headers, raw body,
//!   secret, now) and says what it is; poll-only platforms have none.
//!
//! A [`Connector`] holds what one shop's platform has; `shop-push`,
//! `poller` and `webhook` each take the one trait they need and skip a shop
//! whose platform lacks it ([`Connector::capabilities`]). Connectors know
//! nothing of queues or DynamoDB: every HTTP request they send asks the
//! shop's [`RequestGate`] first, with its cost in the platform's named
//! limits. Errors say what the caller should do: retry later
//! ([`ShopError::RateLimited`], [`ShopError::Transient`]), stop and tell a
//! person ([`ShopError::Auth`], [`ShopError::Permanent`]), or, for one item
//! of a batch, park that item ([`ItemOutcome::Rejected`]).
//!
//! Platforms: [`woocommerce`] (REST v3; its order payload and signature
//! are pure functions in [`woo_order`]).

pub mod allegro;
pub mod allegro_order;
pub mod shoper;
pub mod shoper_order;
pub mod tokens;
pub mod wire;
pub mod woo_order;
pub mod woocommerce;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
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
    /// A platform's further ids of the item (an Allegro offer's product,
    /// a Shopify inventory item and location), by the connector's names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl ShopItemId {
    pub fn product(id: impl Into<String>) -> Self {
        ShopItemId {
            product_id: id.into(),
            variation_id: None,
            extra: BTreeMap::new(),
        }
    }

    pub fn variation(product_id: impl Into<String>, variation_id: impl Into<String>) -> Self {
        ShopItemId {
            product_id: product_id.into(),
            variation_id: Some(variation_id.into()),
            extra: BTreeMap::new(),
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

/// The name of a platform's main limit: every HTTP request costs one of it.
pub const REQUESTS: &str = "requests";

/// A limit as a platform states it: `tokens` every `per`, with room for
/// `burst` at once (Allegro: 9,000 requests a minute; Shoper: a bucket of
/// 10 leaking 2 a second; a WooCommerce host: a few a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub tokens: u32,
    /// The period, in whole seconds in the configuration.
    #[serde(rename = "per_seconds", with = "whole_seconds")]
    pub per: Duration,
    /// The most taken at once; `tokens` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

mod whole_seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

impl RateLimit {
    pub const fn per_second(tokens: u32) -> RateLimit {
        RateLimit {
            tokens,
            per: Duration::from_secs(1),
            burst: None,
        }
    }

    pub const fn per_minute(tokens: u32) -> RateLimit {
        RateLimit {
            tokens,
            per: Duration::from_secs(60),
            burst: None,
        }
    }

    pub const fn with_burst(self, burst: u32) -> RateLimit {
        RateLimit {
            burst: Some(burst),
            ..self
        }
    }

    /// The most tokens taken at once.
    pub fn capacity(&self) -> u32 {
        self.burst.unwrap_or(self.tokens)
    }

    /// Why the limit cannot be used, if it cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if self.tokens == 0 {
            Some("tokens must be at least 1")
        } else if self.per.is_zero() {
            Some("per_seconds must be at least 1")
        } else if self.capacity() == 0 {
            Some("burst must be at least 1")
        } else {
            None
        }
    }
}

/// Paces a connector's HTTP requests to one shop: the connector asks
/// before every request it sends (lookups, pages, categories, batches
/// alike) for the request's cost in the platform's named limits
/// ([`REQUESTS`] for every request; others such as Allegro's offer edits
/// as the platform counts them), so the shop's limits hold however many
/// requests one trait call takes.
pub trait RequestGate: Send + Sync + fmt::Debug {
    /// Waits until every `(limit, tokens)` of `cost` is granted; `Err`
    /// when one does not come in time (try later).
    fn admit<'a>(&'a self, cost: &'a [(&'static str, u32)])
    -> BoxFuture<'a, Result<(), ShopError>>;

    /// The shop answered 429: every user of the limit holds back for
    /// `retry_after` (a default back-off when the shop gave none).
    fn penalise(&self, retry_after: Option<Duration>) -> BoxFuture<'_, ()>;

    /// The platform reported how many tokens of `limit` it has left (a
    /// header on an answer): the shared bucket holds no more than that.
    fn report<'a>(&'a self, limit: &'static str, remaining: u32) -> BoxFuture<'a, ()> {
        let _ = (limit, remaining);
        Box::pin(async {})
    }
}

/// One request's cost in the main limit.
pub const ONE_REQUEST: &[(&str, u32)] = &[(REQUESTS, 1)];

/// The lookup result: SKU → where it lives. SKUs the shop does not have are absent.
pub type ItemIds = HashMap<String, ShopItemId>;

/// The catalogue side of a platform: products, stock and prices out.
pub trait CatalogueSink: Send + Sync {
    /// The most items one [`write_products`](Self::write_products) call takes.
    fn max_batch(&self) -> usize;

    /// Whether [`ensure_category`](Self::ensure_category) does anything.
    fn has_categories(&self) -> bool {
        false
    }

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
    fn ensure_category<'a>(&'a self, path: &'a [String]) -> BoxFuture<'a, Result<(), ShopError>> {
        let _ = path;
        Box::pin(async { Ok(()) })
    }
}

/// One order as the platform gave it, not yet read: its id (for logs and
/// parking) and its body in the platform's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOrder {
    pub id: String,
    pub body: Vec<u8>,
    /// Where the feed shows this order again when read from there (a
    /// journal's event before it); `None`: its revision time.
    pub position: Option<FeedPosition>,
}

/// How far a shop's order feed has been read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedPosition {
    /// Orders modified after this time, for platforms that filter by a
    /// modified time (WooCommerce). Read back with an overlap: their
    /// filters are exclusive and to the second.
    Time(DateTime<Utc>),
    /// A position in the platform's journal (Allegro's event id), read
    /// from exactly there. The connector writes positions so that a later
    /// one sorts after an earlier one as text (fixed width), which is how
    /// the state table compares them.
    Journal(String),
}

impl FeedPosition {
    /// Whether `self` is further along the feed than `other`. Positions of
    /// two kinds (a shop moved to another platform) do not compare: the
    /// newer kind wins.
    pub fn is_after(&self, other: &FeedPosition) -> bool {
        match (self, other) {
            (FeedPosition::Time(a), FeedPosition::Time(b)) => a > b,
            (FeedPosition::Journal(a), FeedPosition::Journal(b)) => a > b,
            _ => true,
        }
    }

    /// The time, for a position that is one.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            FeedPosition::Time(at) => Some(*at),
            FeedPosition::Journal(_) => None,
        }
    }

    /// The later of two positions.
    pub fn later(self, other: FeedPosition) -> FeedPosition {
        if other.is_after(&self) { other } else { self }
    }

    /// The earlier of two positions.
    pub fn earlier(self, other: FeedPosition) -> FeedPosition {
        if self.is_after(&other) { other } else { self }
    }
}

/// Where the next page of a listing starts, in the platform's terms (a
/// page number, a cursor, an offset): opaque to the caller, which stores
/// it to go on after an interruption.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PageToken(pub String);

/// One page of orders.
#[derive(Debug, Clone, Default)]
pub struct OrdersPage {
    pub orders: Vec<RawOrder>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<PageToken>,
    /// How far the feed was read with this page, when the platform says
    /// (a journal's last event, orders or not); `None`: the newest
    /// revision of its orders.
    pub end: Option<FeedPosition>,
}

/// Why an order payload is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrderParseError {
    #[error("the body is not valid UTF-8")]
    NotUtf8,
    #[error("the body is not a {platform} order: {problem}")]
    Json {
        platform: &'static str,
        problem: String,
    },
    #[error("field `{field}`: {problem}")]
    Field { field: String, problem: String },
}

/// How a platform states VAT on its orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VatStated {
    /// Each line and the delivery carry their rate (WooCommerce, Shoper).
    PerLine,
    /// Gross prices only (Allegro): the orders come out at a zero rate,
    /// and the caller takes each line's rate from the ERP's product record
    /// ([`crate::orders::complete_vat`]) and the delivery's from here,
    /// before the order goes anywhere.
    NotStated { delivery: contract::VatRate },
}

/// The order side of a platform: orders in.
pub trait OrderSource: Send + Sync {
    /// Where a shop new to us starts reading: orders changed after
    /// `lookback_from` are taken (a new shop's history is not sent to the
    /// ERP). A journal finds its position for that time.
    fn start<'a>(
        &'a self,
        lookback_from: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<FeedPosition, ShopError>> {
        Box::pin(async move { Ok(FeedPosition::Time(lookback_from)) })
    }

    /// One page of the orders changed after `from`: the first with `page`
    /// = `None`, then each with the token the page before gave. Pages of
    /// one listing keep `from`; the caller moves it only after the last
    /// page.
    fn list_orders<'a>(
        &'a self,
        from: &'a FeedPosition,
        page: Option<&'a PageToken>,
    ) -> BoxFuture<'a, Result<OrdersPage, ShopError>>;

    /// How the platform states VAT on its orders.
    fn vat_stated(&self) -> VatStated {
        VatStated::PerLine
    }

    /// A listed or delivered order normalised for the ERP, with its
    /// neutral state.
    fn normalise_order(
        &self,
        shop: &str,
        raw: &RawOrder,
    ) -> Result<contract::Order, OrderParseError>;
}

/// What the ERP asks to show on a shop order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrderUpdate {
    /// The ERP reached a stage (accepted, invoiced, shipped).
    Stage { stage: contract::OrderStage },
    /// The ERP cancelled the order.
    Cancel,
    /// A parcel left with this number.
    Tracking {
        number: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        carrier: Option<String>,
    },
    /// The invoice, for the buyer: its number and where to read it; for a
    /// correction, also the number of the invoice it corrects.
    Invoice {
        number: String,
        link: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        corrects: Option<String>,
    },
}

/// What a note calls an invoice (its `{number}`): the number, and for a
/// correction the invoice it corrects, so the buyer tells them apart.
pub fn invoice_label(number: &str, corrects: Option<&str>) -> String {
    match corrects.map(str::trim).filter(|c| !c.is_empty()) {
        Some(corrected) => format!("{} (korygująca fakturę {corrected})", number.trim()),
        None => number.trim().to_owned(),
    }
}

impl OrderUpdate {
    /// The update's kind, for logs and for [`OrderUpdater::supports`].
    pub fn kind(&self) -> &'static str {
        match self {
            OrderUpdate::Stage { .. } => "stage",
            OrderUpdate::Cancel => "cancel",
            OrderUpdate::Tracking { .. } => "tracking",
            OrderUpdate::Invoice { .. } => "invoice",
        }
    }

    /// An ERP stage as the update that shows it.
    pub fn for_stage(stage: contract::OrderStage) -> OrderUpdate {
        match stage {
            contract::OrderStage::Cancelled => OrderUpdate::Cancel,
            stage => OrderUpdate::Stage { stage },
        }
    }
}

/// What applying an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Done in the shop; the text says what (for the log).
    Applied(String),
    /// The shop's configuration maps it to nothing (a stage switched off).
    NotApplicable,
}

/// The order-update side of a platform: progress back to the buyer.
pub trait OrderUpdater: Send + Sync {
    /// Whether this platform can show updates of this kind at all.
    fn supports(&self, kind: &str) -> bool;

    /// Applies one update to the shop's order. Applying it again is safe
    /// (the caller records what was done and skips repeats, but a crash
    /// between the shop's yes and the record repeats one).
    fn apply_order_update<'a>(
        &'a self,
        order_id: &'a str,
        update: &'a OrderUpdate,
    ) -> BoxFuture<'a, Result<UpdateOutcome, ShopError>>;
}

/// What a webhook delivery is, once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The platform checking the address (WooCommerce's creation ping).
    Ping { id: String },
    /// Signed, and not about an order the ERP needs (another topic, a deletion).
    Ignored { topic: String },
    /// Signed, and about an order: its raw body, for the order source.
    Order(RawOrder),
}

/// Why a webhook delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    #[error("the shop has no webhook secret configured")]
    NoSecret,
    #[error("{0} is missing")]
    MissingSignature(&'static str),
    #[error("{0} does not match the body")]
    BadSignature(&'static str),
    #[error("the delivery is older than the platform's replay window")]
    Stale,
}

/// A platform's signed webhooks.
pub trait WebhookVerifier: Send + Sync {
    /// Checks one delivery: its headers, raw body, the shop's webhook
    /// secret (if one is configured) and the time now. Nothing but what
    /// the platform sends unsigned (a ping) passes without the secret.
    fn verify(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        secret: Option<&Secret>,
        now: DateTime<Utc>,
    ) -> Result<Delivery, Rejection>;

    /// The header a delivery's id travels in, for logs.
    fn delivery_id_header(&self) -> Option<&'static str> {
        None
    }
}

/// One item of a buyer's return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnedItem {
    /// The SKU, where the platform's item names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    pub name: String,
    pub quantity: u32,
}

/// A buyer's return as the platform reports it: the office needs a
/// correction in the ERP for it (issue #18 links it to the document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopReturn {
    pub id: String,
    pub order_id: String,
    pub created_at: DateTime<Utc>,
    /// The platform's own status (Allegro: CREATED, DELIVERED, …).
    pub status: String,
    /// The number the buyer and the platform quote.
    pub reference: String,
    pub items: Vec<ReturnedItem>,
}

/// One read of a platform's returns.
#[derive(Debug, Clone, Default)]
pub struct ReturnsPage {
    pub returns: Vec<ShopReturn>,
    /// Where the next read goes on, opaque to the caller (Allegro: the last
    /// return's id; WooCommerce: a `RefundCursor`); `None`: as before.
    pub after: Option<String>,
    /// Whether more are waiting past this page.
    pub more: bool,
}

/// The returns side of a platform: buyers' returns, for the office.
pub trait ReturnsSource: Send + Sync {
    /// The returns created after `after` (the position the last read
    /// gave), or, the first time, since `since`.
    fn list_returns<'a>(
        &'a self,
        after: Option<&'a str>,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<ReturnsPage, ShopError>>;
}

/// What a shop's platform can do, for callers to skip what it lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Capabilities {
    pub catalogue: bool,
    pub categories: bool,
    pub orders: bool,
    pub order_updates: bool,
    pub webhooks: bool,
    pub returns: bool,
}

/// One shop's connector: the parts its platform has.
#[derive(Clone)]
pub struct Connector {
    pub platform: &'static str,
    pub catalogue: Option<Arc<dyn CatalogueSink>>,
    pub orders: Option<Arc<dyn OrderSource>>,
    pub updates: Option<Arc<dyn OrderUpdater>>,
    pub webhooks: Option<Arc<dyn WebhookVerifier>>,
    pub returns: Option<Arc<dyn ReturnsSource>>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("platform", &self.platform)
            .field("capabilities", &self.capabilities())
            .finish()
    }
}

impl Connector {
    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            catalogue: self.catalogue.is_some(),
            categories: self.catalogue.as_ref().is_some_and(|c| c.has_categories()),
            orders: self.orders.is_some(),
            order_updates: self.updates.is_some(),
            webhooks: self.webhooks.is_some(),
            returns: self.returns.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::invoice_label;

    #[test]
    fn a_correction_is_labelled_with_the_invoice_it_corrects() {
        assert_eq!(invoice_label(" FS/1/2026 ", None), "FS/1/2026");
        assert_eq!(invoice_label("FS/1/2026", Some("  ")), "FS/1/2026");
        assert_eq!(
            invoice_label("FSKOR/2/2026", Some("FS/1/2026")),
            "FSKOR/2/2026 (korygująca fakturę FS/1/2026)"
        );
    }
}
