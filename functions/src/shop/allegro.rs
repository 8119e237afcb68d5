//! Allegro REST API (`https://api.allegro.pl`), with OAuth2 tokens from
//! `https://allegro.pl/auth/oauth` (docs/platforms/allegro.md has the
//! sources; docs/CONNECTORS.md the decisions).
//!
//! On the wire:
//! - every request: `Authorization: Bearer`, `Accept` (and, with a body,
//!   `Content-Type`) `application/vnd.allegro.public.v1+json`.
//! - tokens: the pair lives in a [`TokenStore`] (in the cloud, the shop's
//!   own secret). A 401 `invalid_token` (or a 403 with Allegro's auth error
//!   body, which `/sale/offers` answers for a bad token) renews: the
//!   store is read again (another instance may have refreshed), and only
//!   if it holds the refused token does this instance take the store's
//!   refresh lease and `POST /auth/oauth/token grant_type=refresh_token`.
//!   Allegro rotates the refresh token and kills the previous pair at
//!   once, so two refreshers would log each other out: one at a time.
//! - lookup: `GET /sale/offers?external.id=…` (≤ 100 values a request, the
//!   offer's external id being the SKU), `limit=1000`.
//! - write: stock by `PUT /sale/offer-quantity-change-commands/{uuid}`
//!   (`FIXED`), prices by `PUT /sale/offer-price-change-commands/{uuid}`
//!   (`FIXED_PRICE`), one command per distinct value (a command sets one
//!   value for all its offers), ≤ 1,000 offers each; then `GET …/{uuid}`
//!   until `completedAt`, and `GET …/{uuid}/tasks` for each offer's
//!   outcome. Writes are absolute, so a retry sends a new command id.
//! - orders: `GET /order/events?from=<id>&type=…&limit=N` (the journal;
//!   `start` from `/order/event-stats`); each order event's checkout form
//!   is read (`GET /order/checkout-forms/{id}`) once per page. Positions
//!   are event ids, zero-padded to sort as text.
//! - updates: a stage or a cancellation is `PUT
//!   /order/checkout-forms/{id}/fulfillment` `{"status"}`; a tracking number
//!   is `POST /order/checkout-forms/{id}/shipments` unless the form
//!   already has that waybill.
//! - errors: 429 (the client's minute block) and 5xx, timeouts are
//!   retryable; refused tokens that do not renew are credentials; other
//!   4xx are permanent.
//!
//! A product hidden in the shop (`visible: false`) gets stock 0: the
//! batch commands cannot hide an offer.
//!
//! Not yet: the invoice upload (issue #18), ending an offer by a
//! publication command, and raising stock on an offer Allegro ended at
//! zero.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

pub use super::tokens::{MemoryTokens, TokenPair, TokenStore};
use super::wire::{excerpt, parse_retry_after, transport_error};
use super::{
    CatalogueSink, ConfigError, FeedPosition, ItemIds, ItemOutcome, OrderParseError, OrderSource,
    OrderUpdate, OrderUpdater, OrdersPage, PageToken, ProductChanges, REQUESTS, RawOrder,
    RequestGate, Secret, ShopError, ShopItemId, UpdateOutcome, VatStated,
};

/// Allegro's media type.
pub const MEDIA_TYPE: &str = "application/vnd.allegro.public.v1+json";
/// The media type of Allegro's beta resources (customer returns).
pub const BETA_MEDIA_TYPE: &str = "application/vnd.allegro.beta.v1+json";
/// Returns read per request.
const RETURNS_PER_PAGE: usize = 100;
/// The named limit of offer changes (quantity and price commands count
/// each offer).
pub const OFFER_CHANGES: &str = "offer_changes";
/// `external.id` values per offers request.
const SKUS_PER_LOOKUP: usize = 100;
/// Offers per command.
const OFFERS_PER_COMMAND: usize = 1000;
/// Commands of one write registered and awaited at once.
const COMMANDS_AT_ONCE: usize = 32;
/// Order events that concern an order's content or state.
const ORDER_EVENTS: [&str; 5] = [
    "READY_FOR_PROCESSING",
    "BUYER_CANCELLED",
    "AUTO_CANCELLED",
    "BUYER_MODIFIED",
    "FULFILLMENT_STATUS_CHANGED",
];
/// Journal pages walked to find where a new shop starts (1,000 events
/// each: 60 days of a busy seller).
const MAX_START_PAGES: usize = 500;
/// Width event ids are padded to, so that positions sort as text.
const POSITION_WIDTH: usize = 20;

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// An Allegro shop's credentials, as the shop credentials secret holds
/// them: the application's. The seller's tokens live in the
/// [`TokenStore`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllegroCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

/// An Allegro shop's settings, each with a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllegroSettings {
    /// Where OAuth lives (`https://allegro.pl`; the sandbox's is
    /// `https://allegro.pl.allegrosandbox.pl`).
    pub auth_url: String,
    /// Per request, in seconds (default 30).
    #[serde(deserialize_with = "seconds")]
    pub timeout: Duration,
    /// Order events read per call (1–1000, default 100): each may need
    /// its checkout form read.
    pub events_per_page: usize,
    /// How long a write waits for Allegro to finish its commands, in
    /// seconds (default 30); longer: the write is retried.
    #[serde(deserialize_with = "seconds")]
    pub command_wait: Duration,
    /// Between looks at a running command, in milliseconds (default 500).
    #[serde(deserialize_with = "millis")]
    pub command_poll: Duration,
    /// ERP stage → the fulfilment status it sets; merged over
    /// [`default_stage_status`]; an empty string turns a stage off.
    pub order_stage_status: BTreeMap<String, String>,
    /// The VAT rate of the delivery, in percent (Allegro states none).
    pub delivery_vat_percent: u32,
    /// Carrier names (as the ERP writes them, any case) → Allegro's
    /// `carrierId`, over the built-in list; others go as `OTHER` with
    /// their name.
    pub carriers: BTreeMap<String, String>,
}

impl Default for AllegroSettings {
    fn default() -> Self {
        AllegroSettings {
            auth_url: "https://allegro.pl".into(),
            timeout: Duration::from_secs(30),
            events_per_page: 100,
            command_wait: Duration::from_secs(30),
            command_poll: Duration::from_millis(500),
            order_stage_status: BTreeMap::new(),
            delivery_vat_percent: 23,
            carriers: BTreeMap::new(),
        }
    }
}

/// The fulfilment status each ERP stage sets unless configured otherwise.
/// An invoice changes nothing the buyer sees on Allegro (the document
/// itself is uploaded).
pub fn default_stage_status(stage: &str) -> Option<&'static str> {
    match stage {
        "accepted" => Some("PROCESSING"),
        "shipped" => Some("SENT"),
        "cancelled" => Some("CANCELLED"),
        _ => None,
    }
}

/// Fulfilment statuses a seller may set.
const SETTABLE: [&str; 8] = [
    "NEW",
    "PROCESSING",
    "READY_FOR_SHIPMENT",
    "READY_FOR_PICKUP",
    "SENT",
    "PICKED_UP",
    "CANCELLED",
    "SUSPENDED",
];

/// Allegro's carrier ids by the names an ERP writes (lower case).
const CARRIERS: [(&str, &str); 11] = [
    ("inpost", "INPOST"),
    ("paczkomaty inpost", "INPOST"),
    ("dpd", "DPD"),
    ("dhl", "DHL"),
    ("poczta polska", "POCZTA_POLSKA"),
    ("pocztex", "POCZTA_POLSKA"),
    ("ups", "UPS"),
    ("gls", "GLS"),
    ("fedex", "FEDEX"),
    ("orlen paczka", "ORLEN"),
    ("allegro", "ALLEGRO"),
];

impl AllegroSettings {
    /// What is wrong with these settings, if anything.
    pub fn problem(&self) -> Option<String> {
        if !(1..=1000).contains(&self.events_per_page) {
            return Some("events_per_page must be 1 to 1000".into());
        }
        if self.timeout.is_zero() {
            return Some("timeout must be above zero".into());
        }
        if self.command_poll.is_zero() {
            return Some("command_poll must be above zero".into());
        }
        if let Err(e) = Url::parse(&self.auth_url) {
            return Some(format!("auth_url: {e}"));
        }
        if let Some((stage, status)) = self.order_stage_status.iter().find(|(stage, status)| {
            crate::shops::stage_named(stage).is_none()
                || !(status.trim().is_empty() || SETTABLE.contains(&status.trim()))
        }) {
            return Some(format!(
                "order_stage_status: `{stage}` → `{status}`: stages are accepted, invoiced, \
                 shipped, cancelled; statuses {}",
                SETTABLE.join(", ")
            ));
        }
        if self.delivery_vat_percent > 100 {
            return Some("delivery_vat_percent must be 0 to 100".into());
        }
        None
    }

    /// The fulfilment status an ERP stage (by name) sets, if any.
    pub fn status_for(&self, stage: &str) -> Option<String> {
        match self.order_stage_status.get(stage) {
            Some(status) if status.trim().is_empty() => None,
            Some(status) => Some(status.trim().to_owned()),
            None => default_stage_status(stage).map(str::to_owned),
        }
    }

    /// Allegro's `carrierId` for a carrier name; `None`: `OTHER`.
    pub fn carrier_id(&self, name: &str) -> Option<String> {
        let key = name.trim().to_lowercase();
        self.carriers
            .iter()
            .find(|(k, _)| k.trim().to_lowercase() == key)
            .map(|(_, id)| id.clone())
            .or_else(|| {
                CARRIERS
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, id)| (*id).to_owned())
            })
    }
}

/// One Allegro shop: where, the application's credentials, the seller's
/// tokens and the settings.
#[derive(Debug, Clone)]
pub struct AllegroConfig {
    /// The API's address (`https://api.allegro.pl`); HTTPS except on
    /// loopback.
    pub base_url: String,
    pub credentials: AllegroCredentials,
    pub tokens: Arc<dyn TokenStore>,
    pub settings: AllegroSettings,
}

/// An Allegro connector.
#[derive(Debug, Clone)]
pub struct Allegro {
    http: reqwest::Client,
    api: Url,
    auth: Url,
    client_id: String,
    client_secret: Secret,
    tokens: Arc<dyn TokenStore>,
    /// The access token this instance last used.
    access: Arc<tokio::sync::Mutex<Option<Secret>>>,
    settings: Arc<AllegroSettings>,
    gate: Option<Arc<dyn RequestGate>>,
}

fn https_or_loopback(name: &str, text: &str) -> Result<Url, ConfigError> {
    let bad = |why: &str| ConfigError(format!("{name} {text:?}: {why}"));
    let url = Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
    let host = url.host_str().ok_or_else(|| bad("no host"))?;
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1");
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(bad("must be https (http only on localhost)"));
    }
    if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must have no query and no credentials"));
    }
    Ok(url)
}

/// What an answer to a request was.
enum Answer {
    Body(StatusCode, Value),
    /// The token was refused (expired, revoked, replaced by a refresh).
    TokenRefused(String),
}

impl Allegro {
    pub fn new(config: AllegroConfig) -> Result<Self, ConfigError> {
        let api = https_or_loopback("base_url", &config.base_url)?;
        let auth = https_or_loopback("auth_url", &config.settings.auth_url)?;
        if let Some(problem) = config.settings.problem() {
            return Err(ConfigError(problem));
        }
        if config.credentials.client_id.trim().is_empty()
            || config.credentials.client_secret.expose().is_empty()
        {
            return Err(ConfigError(
                "client_id and client_secret are required".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(config.settings.timeout)
            .connect_timeout(config.settings.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("erp-shop-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError(format!("HTTP client: {e}")))?;
        Ok(Allegro {
            http,
            api,
            auth,
            client_id: config.credentials.client_id.trim().to_owned(),
            client_secret: config.credentials.client_secret,
            tokens: config.tokens,
            access: Arc::default(),
            settings: Arc::new(config.settings),
            gate: None,
        })
    }

    /// The shop's connector: catalogue, orders and updates (Allegro has
    /// no webhooks: the event journal is polled).
    pub fn connector(self) -> super::Connector {
        let this = Arc::new(self);
        super::Connector {
            platform: "allegro",
            catalogue: Some(this.clone()),
            orders: Some(this.clone()),
            updates: Some(this.clone()),
            webhooks: None,
            returns: Some(this),
        }
    }

    /// Every request this connector sends takes its tokens from `gate`.
    pub fn with_gate(mut self, gate: Arc<dyn RequestGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.api.clone();
        url.set_path(&format!("{}{path}", self.api.path().trim_end_matches('/')));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The access token to send: this instance's, else the store's.
    async fn access_token(&self) -> Result<Secret, ShopError> {
        let mut held = self.access.lock().await;
        if let Some(token) = held.as_ref() {
            return Ok(token.clone());
        }
        let pair = self.tokens.load().await?.ok_or_else(|| {
            ShopError::Auth(
                "the shop has no Allegro tokens yet: authorise it (deploy.py allegro-authorize)"
                    .into(),
            )
        })?;
        *held = Some(pair.access.clone());
        Ok(pair.access)
    }

    /// `refused` was refused: a newer token from the store if another
    /// instance refreshed, else a refresh under the store's lease.
    async fn renew(&self, refused: &Secret) -> Result<(), ShopError> {
        let mut held = self.access.lock().await;
        if held
            .as_ref()
            .is_some_and(|t| t.expose() != refused.expose())
        {
            return Ok(());
        }
        for _ in 0..20 {
            let stored = self.tokens.load().await?.ok_or_else(|| {
                ShopError::Auth("the shop's Allegro tokens are gone: authorise it again".into())
            })?;
            if stored.access.expose() != refused.expose() {
                *held = Some(stored.access);
                return Ok(());
            }
            if self.tokens.lease(Duration::from_secs(30)).await? {
                let renewed = self.refresh(&stored.refresh).await;
                let saved = match &renewed {
                    Ok(pair) => self.tokens.save(pair).await,
                    Err(_) => Ok(()),
                };
                self.tokens.release().await;
                let pair = renewed?;
                saved?;
                tracing::info!("Allegro access token refreshed");
                *held = Some(pair.access);
                return Ok(());
            }
            // Another instance is refreshing: its pair lands in the store.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(ShopError::Transient(
            "another instance held the token refresh for too long".into(),
        ))
    }

    /// The refresh grant: a new pair (the old one dies with it).
    async fn refresh(&self, refresh: &Secret) -> Result<TokenPair, ShopError> {
        let mut url = self.auth.clone();
        url.set_path(&format!(
            "{}/auth/oauth/token",
            self.auth.path().trim_end_matches('/')
        ));
        let response = self
            .http
            .post(url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose()),
            ])
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            let field = |name: &str| {
                value[name]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(Secret::new)
                    .ok_or_else(|| ShopError::Transient(format!("the token answer has no {name}")))
            };
            return Ok(TokenPair {
                access: field("access_token")?,
                refresh: field("refresh_token")?,
            });
        }
        // The error's description quotes the token: only its code is kept.
        let code = value["error"].as_str().unwrap_or("").to_owned();
        Err(match status.as_u16() {
            429 => ShopError::RateLimited { retry_after: None },
            500..=599 => ShopError::Transient(format!("token refresh answered {status}")),
            _ => ShopError::Auth(format!(
                "Allegro refused the token refresh ({status} {code}): authorise the shop again"
            )),
        })
    }

    /// One request, its cost taken from the gate first.
    async fn send(
        &self,
        method: &Method,
        url: &Url,
        body: Option<RequestBody<'_>>,
        token: &Secret,
        cost: &[(&'static str, u32)],
        accept: &'static str,
    ) -> Result<Answer, ShopError> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(token.expose())
            .header(reqwest::header::ACCEPT, accept);
        match body {
            Some(RequestBody::Json(body)) => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, MEDIA_TYPE)
                    .body(body.to_string());
            }
            Some(RequestBody::Pdf(bytes)) => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/pdf")
                    .body(bytes.to_vec());
            }
            None => {}
        }
        if let Some(gate) = &self.gate {
            gate.admit(cost).await?;
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(transport_error)?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|_| {
                ShopError::Transient(format!(
                    "{status} with a body that is not JSON: {}",
                    excerpt(&bytes)
                ))
            })?
        };
        if status.is_success() {
            return Ok(Answer::Body(status, value));
        }
        // Allegro's auth error body: {"error", "error_description"}.
        if let Some(code) = value.get("error").and_then(Value::as_str)
            && matches!(status.as_u16(), 401 | 403)
        {
            return Ok(Answer::TokenRefused(format!("{status} {code}")));
        }
        let error = status_error(status, &headers, &value);
        if let (ShopError::RateLimited { retry_after }, Some(gate)) = (&error, &self.gate) {
            gate.penalise(*retry_after).await;
        }
        Err(error)
    }

    /// Sends a request, renewing the token once if it is refused; the
    /// answer's status and JSON body.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        cost: &[(&'static str, u32)],
    ) -> Result<(StatusCode, Value), ShopError> {
        self.call_as(method, url, body.map(RequestBody::Json), cost, MEDIA_TYPE)
            .await
    }

    /// [`call`](Self::call) asking for another representation (the
    /// customer returns' beta one).
    async fn call_as(
        &self,
        method: Method,
        url: Url,
        body: Option<RequestBody<'_>>,
        cost: &[(&'static str, u32)],
        accept: &'static str,
    ) -> Result<(StatusCode, Value), ShopError> {
        let mut renewed = false;
        loop {
            let token = self.access_token().await?;
            match self.send(&method, &url, body, &token, cost, accept).await? {
                Answer::Body(status, value) => return Ok((status, value)),
                Answer::TokenRefused(what) if renewed => {
                    return Err(ShopError::Auth(format!(
                        "Allegro refused a freshly refreshed token ({what})"
                    )));
                }
                Answer::TokenRefused(_) => {
                    self.renew(&token).await?;
                    renewed = true;
                }
            }
        }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ShopError> {
        self.call(Method::GET, self.url(path, query), None, ONE)
            .await
            .map(|(_, v)| v)
    }

    async fn lookup(&self, skus: &[String]) -> Result<ItemIds, ShopError> {
        let wanted: Vec<&str> = skus
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && s.chars().count() <= 100)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut found = ItemIds::new();
        for chunk in wanted.chunks(SKUS_PER_LOOKUP) {
            let mut query: Vec<(&str, &str)> = chunk.iter().map(|s| ("external.id", *s)).collect();
            query.push(("limit", "1000"));
            let answer = self.get("/sale/offers", &query).await?;
            let offers = answer["offers"].as_array().ok_or_else(|| {
                ShopError::Transient("GET /sale/offers answered without `offers`".into())
            })?;
            for offer in offers {
                let (Some(id), Some(sku)) =
                    (offer["id"].as_str(), offer["external"]["id"].as_str())
                else {
                    continue;
                };
                if !chunk.contains(&sku) {
                    continue;
                }
                // Several offers may carry one SKU: the ERP's stock and
                // price go to the first found; the rest are logged.
                if let Some(kept) = found.get(sku) {
                    tracing::warn!(sku, kept = %kept, other = id, "two Allegro offers carry one SKU");
                    continue;
                }
                found.insert(sku.to_owned(), ShopItemId::product(id));
            }
        }
        Ok(found)
    }

    /// Registers a command and waits for its tasks: offer id → outcome.
    async fn run_command(
        &self,
        family: &str,
        modification: Value,
        offers: &[&str],
    ) -> Result<HashMap<String, ItemOutcome>, ShopError> {
        let id = uuid::Uuid::new_v4().to_string();
        let path = format!("/sale/{family}/{id}");
        let body = json!({
            "modification": modification,
            "offerCriteria": [{
                "type": "CONTAINS_OFFERS",
                "offers": offers.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            }],
        });
        let changes = u32::try_from(offers.len()).unwrap_or(u32::MAX);
        let cost = [(REQUESTS, 1), (OFFER_CHANGES, changes)];
        self.call(Method::PUT, self.url(&path, &[]), Some(&body), &cost)
            .await?;
        let started = tokio::time::Instant::now();
        loop {
            // Allegro runs the tasks after the PUT answers: a report read at
            // once would only cost a request.
            tokio::time::sleep(self.settings.command_poll).await;
            let report = self.get(&path, &[]).await?;
            if !report["completedAt"].is_null() {
                break;
            }
            if started.elapsed() >= self.settings.command_wait {
                return Err(ShopError::Transient(format!(
                    "Allegro had not finished command {id} after {:?}",
                    self.settings.command_wait
                )));
            }
        }
        let mut outcomes = HashMap::new();
        let tasks_path = format!("{path}/tasks");
        let limit = OFFERS_PER_COMMAND.to_string();
        let answer = self
            .get(&tasks_path, &[("limit", &limit), ("offset", "0")])
            .await?;
        for task in answer["tasks"].as_array().into_iter().flatten() {
            let Some(offer) = task["offer"]["id"].as_str() else {
                continue;
            };
            let outcome = match task["status"].as_str() {
                Some("SUCCESS") => ItemOutcome::Ok,
                Some("FAIL") => {
                    let error = &task["errors"][0];
                    let code = error["code"].as_str().unwrap_or("FAIL").to_owned();
                    if code.starts_with("EXCEPTION_DURING")
                        || code.ends_with("NotAvailableException")
                    {
                        // Allegro's own hiccup: the whole write is retried.
                        return Err(ShopError::Transient(format!("offer {offer}: {code}")));
                    }
                    let message = error["message"]
                        .as_str()
                        .or(task["message"].as_str())
                        .filter(|m| !m.is_empty())
                        .unwrap_or("refused")
                        .to_owned();
                    ItemOutcome::Rejected { code, message }
                }
                _ => {
                    return Err(ShopError::Transient(format!(
                        "command {id} finished with offer {offer} still pending"
                    )));
                }
            };
            outcomes.insert(offer.to_owned(), outcome);
        }
        Ok(outcomes)
    }

    async fn write(
        &self,
        items: &[(ShopItemId, ProductChanges)],
    ) -> Result<Vec<ItemOutcome>, ShopError> {
        // A command sets one value for all its offers: one per value.
        let mut by_stock: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
        let mut by_price: BTreeMap<Decimal, Vec<&str>> = BTreeMap::new();
        for (id, changes) in items {
            if let Some(stock) = changes.shown_stock() {
                by_stock
                    .entry(stock.max(0))
                    .or_default()
                    .push(&id.product_id);
            }
            if let Some(price) = changes.regular_price {
                by_price
                    .entry(price.round_dp(2))
                    .or_default()
                    .push(&id.product_id);
            }
        }
        // Commands run on Allegro's side for seconds: register them all
        // (a few at a time, each request through the gate) and wait for
        // them together, so a batch costs the limit's time, not the sum of
        // the waits.
        let mut commands: Vec<(&str, Value, &[&str])> = Vec::new();
        for (stock, offers) in &by_stock {
            for chunk in offers.chunks(OFFERS_PER_COMMAND) {
                let modification = json!({"changeType": "FIXED", "value": stock});
                commands.push(("offer-quantity-change-commands", modification, chunk));
            }
        }
        for (price, offers) in &by_price {
            for chunk in offers.chunks(OFFERS_PER_COMMAND) {
                let modification = json!({
                    "type": "FIXED_PRICE",
                    "price": {"amount": format!("{:.2}", price), "currency": "PLN"},
                });
                commands.push(("offer-price-change-commands", modification, chunk));
            }
        }
        // The futures are made first (a closure inside the stream would not
        // be `Send` for every lifetime); none runs before it is polled.
        let runs: Vec<_> = commands
            .into_iter()
            .map(|(family, modification, offers)| self.run_command(family, modification, offers))
            .collect();
        let reports: Vec<HashMap<String, ItemOutcome>> = futures::stream::iter(runs)
            .buffer_unordered(COMMANDS_AT_ONCE)
            .try_collect()
            .await?;
        let mut outcomes: HashMap<String, ItemOutcome> = HashMap::new();
        for (offer, outcome) in reports.into_iter().flatten() {
            // A refusal of either value stands for the offer.
            let keep_refusal = outcomes.get(&offer).is_some_and(|o| !o.is_ok());
            if !keep_refusal {
                outcomes.insert(offer, outcome);
            }
        }
        Ok(items
            .iter()
            .map(|(id, changes)| {
                let touched = changes.shown_stock().is_some() || changes.regular_price.is_some();
                match outcomes.get(&id.product_id) {
                    Some(outcome) => outcome.clone(),
                    None if !touched => ItemOutcome::Ok,
                    None => ItemOutcome::Rejected {
                        code: "NO_TASK".into(),
                        message: format!("Allegro reported nothing for offer {id}"),
                    },
                }
            })
            .collect())
    }

    async fn events_page(
        &self,
        from: &FeedPosition,
        page: Option<&PageToken>,
    ) -> Result<OrdersPage, ShopError> {
        let after = match (page, from) {
            (Some(token), _) => token.0.clone(),
            (None, FeedPosition::Journal(position)) => position.clone(),
            (None, FeedPosition::Time(_)) => {
                return Err(ShopError::Permanent(
                    "Allegro's orders are read from the event journal, not from a time".into(),
                ));
            }
        };
        let limit = self.settings.events_per_page.to_string();
        let from_id = event_id(&after);
        let mut query: Vec<(&str, &str)> = ORDER_EVENTS.iter().map(|t| ("type", *t)).collect();
        query.push(("limit", &limit));
        if !from_id.is_empty() {
            query.push(("from", &from_id));
        }
        let answer = self.get("/order/events", &query).await?;
        let events = answer["events"].as_array().ok_or_else(|| {
            ShopError::Transient("GET /order/events answered without `events`".into())
        })?;
        let mut orders = Vec::new();
        let mut read: HashSet<String> = HashSet::new();
        let mut before = after.clone();
        for event in events {
            let Some(event_id) = event["id"].as_str() else {
                return Err(ShopError::Transient("an order event without an id".into()));
            };
            let position = pad(event_id);
            let form = event["order"]["checkoutForm"]["id"].as_str().unwrap_or("");
            if !form.is_empty() && read.insert(form.to_owned()) {
                let path = format!("/order/checkout-forms/{form}");
                let body = self.get(&path, &[]).await?;
                orders.push(RawOrder {
                    id: form.to_owned(),
                    body: body.to_string().into_bytes(),
                    position: Some(FeedPosition::Journal(before.clone())),
                });
            }
            before = position;
        }
        let full = events.len() >= self.settings.events_per_page;
        Ok(OrdersPage {
            orders,
            next: full.then(|| PageToken(before.clone())),
            end: (!events.is_empty()).then_some(FeedPosition::Journal(before)),
        })
    }

    async fn apply_update(
        &self,
        order_id: &str,
        update: &OrderUpdate,
    ) -> Result<UpdateOutcome, ShopError> {
        if order_id.len() != 36 || !order_id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(ShopError::Permanent(format!(
                "`{order_id}` is not an Allegro checkout form id"
            )));
        }
        let status = match update {
            OrderUpdate::Stage { stage } => {
                self.settings.status_for(crate::shops::stage_name(*stage))
            }
            OrderUpdate::Cancel => self.settings.status_for("cancelled"),
            OrderUpdate::Tracking { number, carrier } => {
                return self
                    .add_shipment(order_id, number, carrier.as_deref())
                    .await;
            }
            OrderUpdate::Invoice { number, link, .. } => {
                return self.upload_invoice(order_id, number, link).await;
            }
        };
        let Some(status) = status else {
            return Ok(UpdateOutcome::NotApplicable);
        };
        let path = format!("/order/checkout-forms/{order_id}/fulfillment");
        self.call(
            Method::PUT,
            self.url(&path, &[]),
            Some(&json!({"status": status})),
            ONE,
        )
        .await?;
        Ok(UpdateOutcome::Applied(format!(
            "fulfilment status {status}"
        )))
    }

    async fn add_shipment(
        &self,
        order_id: &str,
        number: &str,
        carrier: Option<&str>,
    ) -> Result<UpdateOutcome, ShopError> {
        let waybill = number.trim();
        if waybill.is_empty() || waybill.chars().count() > 64 {
            return Err(ShopError::Permanent(format!(
                "tracking number `{waybill}` does not fit Allegro's waybill (1 to 64 characters)"
            )));
        }
        let path = format!("/order/checkout-forms/{order_id}/shipments");
        let known = self.get(&path, &[]).await?;
        let already = known["shipments"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["waybill"].as_str() == Some(waybill));
        if already {
            return Ok(UpdateOutcome::Applied(format!(
                "shipment {waybill} already on the order"
            )));
        }
        let carrier_name = carrier.map(str::trim).filter(|c| !c.is_empty());
        let carrier_id = carrier_name.and_then(|c| self.settings.carrier_id(c));
        let body = match (carrier_id, carrier_name) {
            (Some(id), _) => json!({"carrierId": id, "waybill": waybill}),
            (None, name) => json!({
                "carrierId": "OTHER",
                "carrierName": name.unwrap_or("Przewoźnik").chars().take(30).collect::<String>(),
                "waybill": waybill,
            }),
        };
        self.call(Method::POST, self.url(&path, &[]), Some(&body), ONE)
            .await?;
        Ok(UpdateOutcome::Applied(format!("shipment {waybill} added")))
    }
}

impl Allegro {
    /// The buyer's invoice as Allegro takes it since March 2026: the
    /// invoice's record on the order, then its PDF (fetched from the
    /// buyer's own link). Allegro takes up to 10 invoices per order,
    /// corrections included (allegro-api#11996, #12784; 1 for an order paid
    /// with Extended Payment Terms), and one file per invoice (409 for a
    /// second): an invoice is found by its number, so a redelivery stops
    /// there, and a correction is added beside the invoice. Past the limit
    /// Allegro refuses, and the refusal is the order's parked reason.
    async fn upload_invoice(
        &self,
        order_id: &str,
        number: &str,
        link: &str,
    ) -> Result<UpdateOutcome, ShopError> {
        let path = format!("/order/checkout-forms/{order_id}/invoices");
        let known = self.get(&path, &[]).await?;
        let invoices = known["invoices"].as_array().cloned().unwrap_or_default();
        let ours = invoices
            .iter()
            .find(|i| i["invoiceNumber"].as_str() == Some(number));
        let invoice_id = match ours {
            Some(invoice) if !invoice["file"]["uploadedAt"].is_null() => {
                return Ok(UpdateOutcome::Applied(format!(
                    "invoice {number} already on the order"
                )));
            }
            Some(invoice) => invoice["id"].as_str().unwrap_or_default().to_owned(),
            None => {
                let body = json!({
                    "file": {"name": crate::documents::file_name(number)},
                    "invoiceNumber": number,
                });
                let (_, answer) = self
                    .call(Method::POST, self.url(&path, &[]), Some(&body), ONE)
                    .await?;
                answer["id"].as_str().unwrap_or_default().to_owned()
            }
        };
        if invoice_id.is_empty() {
            return Err(ShopError::Transient(format!(
                "Allegro gave invoice {number} no id"
            )));
        }
        let pdf = self.download_invoice(link).await?;
        let file = self.url(&format!("{path}/{invoice_id}/file"), &[]);
        self.call_as(
            Method::PUT,
            file,
            Some(RequestBody::Pdf(&pdf)),
            ONE,
            MEDIA_TYPE,
        )
        .await?;
        Ok(UpdateOutcome::Applied(format!(
            "invoice {number} uploaded ({} bytes)",
            pdf.len()
        )))
    }

    /// The buyer's copy, from the link the buyer is given.
    async fn download_invoice(&self, link: &str) -> Result<Vec<u8>, ShopError> {
        let answer = self
            .http
            .get(link)
            .send()
            .await
            .map_err(|e| ShopError::Transient(format!("fetching the invoice: {e}")))?;
        if !answer.status().is_success() {
            return Err(ShopError::Transient(format!(
                "the invoice link answered {}",
                answer.status()
            )));
        }
        let pdf = answer
            .bytes()
            .await
            .map_err(|e| ShopError::Transient(format!("reading the invoice: {e}")))?;
        if pdf.len() > MAX_INVOICE_BYTES {
            return Err(ShopError::Permanent(format!(
                "the invoice's PDF has {} bytes; Allegro takes at most {MAX_INVOICE_BYTES}",
                pdf.len()
            )));
        }
        Ok(pdf.to_vec())
    }
}

/// What a request carries: Allegro's JSON, or an invoice's PDF.
#[derive(Clone, Copy)]
enum RequestBody<'a> {
    Json(&'a Value),
    Pdf(&'a [u8]),
}

/// Allegro's limit on an invoice file (docs/platforms/allegro.md §3.8: 3 MB;
/// the issue asks for at most 2 MB).
const MAX_INVOICE_BYTES: usize = 2 * 1024 * 1024;

const ONE: &[(&str, u32)] = super::ONE_REQUEST;

/// An event id as a position: zero-padded so later ids sort later as text.
fn pad(event_id: &str) -> String {
    if event_id.chars().all(|c| c.is_ascii_digit()) && event_id.len() < POSITION_WIDTH {
        format!("{event_id:0>POSITION_WIDTH$}")
    } else {
        event_id.to_owned()
    }
}

/// A position as the event id Allegro knows.
fn event_id(position: &str) -> String {
    if position.chars().all(|c| c.is_ascii_digit()) {
        let trimmed = position.trim_start_matches('0');
        trimmed.to_owned()
    } else {
        position.to_owned()
    }
}

/// Allegro's error body `{"errors": [{"code", "message"}]}` as text.
fn describe(status: StatusCode, body: &Value) -> String {
    match body["errors"][0].as_object() {
        Some(error) => format!(
            "{status} {}: {}",
            error.get("code").and_then(Value::as_str).unwrap_or(""),
            error.get("message").and_then(Value::as_str).unwrap_or("")
        ),
        None => format!("{status}"),
    }
}

fn status_error(status: StatusCode, headers: &HeaderMap, body: &Value) -> ShopError {
    match status.as_u16() {
        429 => ShopError::RateLimited {
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after),
        },
        401 | 403 => ShopError::Auth(describe(status, body)),
        408 | 500..=599 => ShopError::Transient(describe(status, body)),
        _ => ShopError::Permanent(describe(status, body)),
    }
}

impl CatalogueSink for Allegro {
    fn max_batch(&self) -> usize {
        // Items with one value share a command; distinct values each take
        // three requests, so batches stay modest.
        100
    }

    fn lookup_ids<'a>(&'a self, skus: &'a [String]) -> BoxFuture<'a, Result<ItemIds, ShopError>> {
        Box::pin(self.lookup(skus))
    }

    fn write_products<'a>(
        &'a self,
        items: &'a [(ShopItemId, ProductChanges)],
    ) -> BoxFuture<'a, Result<Vec<ItemOutcome>, ShopError>> {
        Box::pin(self.write(items))
    }
}

impl OrderSource for Allegro {
    fn start<'a>(
        &'a self,
        lookback_from: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<FeedPosition, ShopError>> {
        // The journal has no time filter: it is read from its oldest event
        // (60 days back) to the first that occurred at or after
        // `lookback_from`, and starts just before it.
        Box::pin(async move {
            let mut after = String::new();
            for _ in 0..MAX_START_PAGES {
                let mut query = vec![("limit", "1000")];
                if !after.is_empty() {
                    query.push(("from", after.as_str()));
                }
                let answer = self.get("/order/events", &query).await?;
                let events = answer["events"].as_array().ok_or_else(|| {
                    ShopError::Transient("GET /order/events answered without `events`".into())
                })?;
                let Some(last) = events.last() else {
                    // Nothing since: start after the last event seen.
                    return Ok(FeedPosition::Journal(pad(&after)));
                };
                let mut before = after.clone();
                for event in events {
                    let occurred = event["occurredAt"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                    if occurred.is_some_and(|t| t >= lookback_from) {
                        return Ok(FeedPosition::Journal(pad(&before)));
                    }
                    before = event["id"].as_str().unwrap_or(&before).to_owned();
                }
                after = last["id"].as_str().unwrap_or("").to_owned();
            }
            // A journal too long to walk: from its latest event on.
            tracing::warn!(
                "Allegro's event journal is too long to find the start in: starting at its latest event"
            );
            let stats = self.get("/order/event-stats", &[]).await?;
            let latest = stats["latestEvent"]["id"].as_str().unwrap_or("");
            Ok(FeedPosition::Journal(pad(latest)))
        })
    }

    fn list_orders<'a>(
        &'a self,
        from: &'a FeedPosition,
        page: Option<&'a PageToken>,
    ) -> BoxFuture<'a, Result<OrdersPage, ShopError>> {
        Box::pin(self.events_page(from, page))
    }

    fn vat_stated(&self) -> VatStated {
        VatStated::NotStated {
            delivery: contract::VatRate::Percent(Decimal::from(self.settings.delivery_vat_percent)),
        }
    }

    fn normalise_order(
        &self,
        shop: &str,
        raw: &RawOrder,
    ) -> Result<contract::Order, OrderParseError> {
        super::allegro_order::parse_checkout_form(shop, &raw.body)
    }
}

impl OrderUpdater for Allegro {
    fn supports(&self, kind: &str) -> bool {
        matches!(kind, "stage" | "cancel" | "tracking" | "invoice")
    }

    fn apply_order_update<'a>(
        &'a self,
        order_id: &'a str,
        update: &'a OrderUpdate,
    ) -> BoxFuture<'a, Result<UpdateOutcome, ShopError>> {
        Box::pin(self.apply_update(order_id, update))
    }
}

impl Allegro {
    async fn returns_page(
        &self,
        after: Option<&str>,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<super::ReturnsPage, ShopError> {
        let limit = RETURNS_PER_PAGE.to_string();
        let since_text = since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut query = vec![("limit", limit.as_str())];
        match after {
            Some(id) => query.push(("from", id)),
            None => query.push(("createdAt.gte", since_text.as_str())),
        }
        let url = self.url("/order/customer-returns", &query);
        let (_, answer) = self
            .call_as(Method::GET, url, None, ONE, BETA_MEDIA_TYPE)
            .await?;
        let listed = answer["customerReturns"].as_array().ok_or_else(|| {
            ShopError::Transient(
                "GET /order/customer-returns answered without `customerReturns`".into(),
            )
        })?;
        // Returns name offers: their SKUs are the offers' external ids.
        let offer_ids: Vec<&str> = listed
            .iter()
            .flat_map(|r| r["items"].as_array().into_iter().flatten())
            .filter_map(|item| item["offerId"].as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut skus: HashMap<String, String> = HashMap::new();
        for chunk in offer_ids.chunks(SKUS_PER_LOOKUP) {
            let mut query: Vec<(&str, &str)> = chunk.iter().map(|id| ("offer.id", *id)).collect();
            query.push(("limit", "1000"));
            let offers = self.get("/sale/offers", &query).await?;
            for offer in offers["offers"].as_array().into_iter().flatten() {
                if let (Some(id), Some(sku)) =
                    (offer["id"].as_str(), offer["external"]["id"].as_str())
                {
                    skus.insert(id.to_owned(), sku.to_owned());
                }
            }
        }
        let mut returns = Vec::new();
        for listed in listed {
            let (Some(id), Some(order_id)) = (listed["id"].as_str(), listed["orderId"].as_str())
            else {
                tracing::warn!("an Allegro customer return without an id or order id: skipped");
                continue;
            };
            let created_at = listed["createdAt"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or(since, |t| t.with_timezone(&chrono::Utc));
            let items = listed["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| super::ReturnedItem {
                    sku: item["offerId"]
                        .as_str()
                        .and_then(|id| skus.get(id).cloned()),
                    name: item["name"]
                        .as_str()
                        .unwrap_or("")
                        .chars()
                        .take(200)
                        .collect(),
                    quantity: item["quantity"]
                        .as_u64()
                        .and_then(|q| u32::try_from(q).ok())
                        .unwrap_or(0),
                })
                .collect();
            returns.push(super::ShopReturn {
                id: id.to_owned(),
                order_id: order_id.to_owned(),
                created_at,
                status: listed["status"].as_str().unwrap_or("").to_owned(),
                reference: listed["referenceNumber"].as_str().unwrap_or("").to_owned(),
                items,
            });
        }
        Ok(super::ReturnsPage {
            more: listed.len() >= RETURNS_PER_PAGE,
            after: listed
                .last()
                .and_then(|r| r["id"].as_str())
                .map(str::to_owned),
            returns,
        })
    }
}

impl super::ReturnsSource for Allegro {
    fn list_returns<'a>(
        &'a self,
        after: Option<&'a str>,
        since: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<super::ReturnsPage, ShopError>> {
        Box::pin(self.returns_page(after, since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_product_gets_no_stock() {
        let hidden = ProductChanges {
            visible: Some(false),
            stock_quantity: Some(7),
            ..ProductChanges::default()
        };
        assert_eq!(hidden.shown_stock(), Some(0));
        let shown = ProductChanges {
            visible: Some(true),
            stock_quantity: Some(7),
            ..ProductChanges::default()
        };
        assert_eq!(shown.shown_stock(), Some(7));
        assert_eq!(ProductChanges::default().shown_stock(), None);
    }

    #[test]
    fn positions_sort_as_text_and_go_back_to_event_ids() {
        let (a, b) = (pad("999"), pad("1532603898317497"));
        assert!(b > a, "{a} {b}");
        assert_eq!(a.len(), POSITION_WIDTH);
        assert_eq!(event_id(&b), "1532603898317497");
        assert_eq!(event_id(&pad("")), "");
    }

    #[test]
    fn carriers_map_by_name_and_settings_win() {
        let mut settings = AllegroSettings::default();
        assert_eq!(settings.carrier_id(" InPost ").as_deref(), Some("INPOST"));
        assert_eq!(settings.carrier_id("Kurier Jan").as_deref(), None);
        settings.carriers.insert("Kurier Jan".into(), "DPD".into());
        assert_eq!(settings.carrier_id("kurier jan").as_deref(), Some("DPD"));
    }

    #[test]
    fn stages_map_to_fulfilment_statuses_and_bad_ones_are_refused() {
        let mut settings = AllegroSettings::default();
        assert_eq!(settings.status_for("shipped").as_deref(), Some("SENT"));
        assert_eq!(settings.status_for("invoiced"), None);
        settings
            .order_stage_status
            .insert("shipped".into(), "RETURNED".into());
        assert!(settings.problem().is_some_and(|p| p.contains("RETURNED")));
        settings
            .order_stage_status
            .insert("shipped".into(), String::new());
        assert_eq!(settings.problem(), None);
        assert_eq!(settings.status_for("shipped"), None);
    }
}
