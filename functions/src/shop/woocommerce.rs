//! WooCommerce REST API v3 (`/wp-json/wc/v3`), over HTTPS with HTTP Basic
//! auth (consumer key as user, secret as password).
//!
//! On the wire:
//! - lookup: `GET /products?sku=A,B,...&per_page=100&orderby=id&order=asc&page=N`,
//!   following `X-WP-TotalPages`; SKUs are matched exactly on our side, since
//!   whether the filter is exact, and whether it finds variations, has varied
//!   between WooCommerce versions. SKUs still missing are looked for among
//!   the variations of variable products (`GET /products?type=variable`, then
//!   `GET /products/{id}/variations`, kept as an index for a few minutes)
//!   when `search_variations` is on.
//! - write: `POST /products/batch` with `{"update": [{"id", "regular_price":
//!   "12.30", "manage_stock": true, "stock_quantity", "status",
//!   "catalog_visibility", "tax_class"}]}`, at most 100 items (the
//!   `woocommerce_rest_batch_items_limit` filter; above it the whole request
//!   is refused with 413); variations go to `POST
//!   /products/{parent}/variations/batch`. Each item answers in place: the
//!   product, or `{"id", "error": {"code", "message"}}` while the rest succeed.
//! - pacing: with a [`RequestGate`] ([`WooCommerce::with_gate`]) every
//!   request, whatever call it belongs to, waits for its own token, and a
//!   429 holds the gate back for its `Retry-After`.
//! - auth: HTTP Basic; with `query_auth`, `consumer_key`/`consumer_secret`
//!   query parameters instead (hosts that strip `Authorization`).
//! - errors: 429 (a host's limiter; core has none) with `Retry-After`, 5xx,
//!   408 and timeouts are retryable; 401/403 are credentials; other 4xx (400
//!   `rest_invalid_param`, 404, 413) and redirects are permanent.
//!
//! - orders: `GET /orders?modified_after=<GMT>&dates_are_gmt=true&orderby=id&order=asc&per_page=100&page=N`
//!   (one page per call, `X-WP-TotalPages`; the page token is the page
//!   number). Updates: an ERP stage or a cancellation is `PUT /orders/{id}`
//!   `{"status"}` with the status `order_stage_status` maps it to; a
//!   tracking number or an invoice is a customer note, `POST
//!   /orders/{id}/notes` `{"note", "customer_note": true}` (WooCommerce
//!   e-mails it to the buyer).
//! - returns: each refund (WooCommerce 9.0+'s `GET /refunds?after=<GMT>&dates_are_gmt=true&
//!   exclude=<ids>&orderby=date&order=asc&per_page=100`, one page per call) is a buyer's return
//!   ([`super::ShopReturn`]): its id, its order (`parent_id`), `date_created_gmt`, status
//!   `refunded`, the refund id as reference, and its line items (negative quantities: the
//!   returned pieces) by SKU and name; a line refunded in money only (quantity 0) names no
//!   returned piece, and an amount-only refund has no items but is listed all the same. See
//!   [`RefundCursor`] for where the next read goes on. A WooCommerce before 9.0 has no
//!   `/refunds` (404 `rest_no_route`): a permanent error that says so.
//!
//! Hiding a product sets `status: private` and `catalog_visibility: hidden`
//! (customers can neither find nor buy it; the shop's staff still see it);
//! showing it sets `publish` and `visible`. Variations have no catalogue
//! visibility: their `status` alone (`private` = disabled) does it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Timelike;
use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

pub use super::wire::parse_retry_after;
use super::wire::{excerpt, transport_error};
use super::woo_order::NormaliseOptions;
use super::{
    CatalogueSink, ConfigError, FeedPosition, ItemIds, ItemOutcome, ONE_REQUEST, OrderParseError,
    OrderSource, OrderUpdate, OrderUpdater, OrdersPage, PageToken, ProductChanges, RawOrder,
    RequestGate, Secret, ShopError, ShopItemId, UpdateOutcome,
};

/// WooCommerce's largest page.
const PER_PAGE: usize = 100;
/// Longest `sku=` value per request: request lines above 8 KiB are refused
/// by common servers (Apache, nginx), and the rest of the URL needs room.
const MAX_SKU_PARAM_BYTES: usize = 4000;
/// Stop paging after this many pages: a shop answering with ever more pages
/// is broken, and a Lambda must not loop until its timeout.
const MAX_PAGES: usize = 1000;

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// One WooCommerce shop: where, its credentials, and its settings.
#[derive(Debug, Clone)]
pub struct WooConfig {
    /// The site's address, e.g. `https://sklep.example.pl`. HTTPS only,
    /// except on loopback (tests and the local run).
    pub base_url: String,
    pub consumer_key: String,
    pub consumer_secret: Secret,
    pub settings: WooSettings,
}

/// A WooCommerce shop's credentials, as the shop credentials secret holds them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WooCredentials {
    pub consumer_key: String,
    pub consumer_secret: Secret,
    /// The secret the shop's order webhooks are signed with.
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
}

/// A WooCommerce shop's settings (`settings` in its shop configuration),
/// each with a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WooSettings {
    /// Per request, in seconds in the configuration (default 30).
    #[serde(deserialize_with = "seconds")]
    pub timeout: Duration,
    /// The shop's `woocommerce_rest_batch_items_limit` (default 100).
    pub batch_limit: usize,
    /// Look for SKUs the product search misses among variations (default on).
    pub search_variations: bool,
    /// How long the index of variation SKUs is reused, in seconds in the
    /// configuration (default 300): a variation added in the shop is found
    /// at most this much later.
    #[serde(deserialize_with = "seconds")]
    pub variation_index_ttl: Duration,
    /// Send the key and secret as `consumer_key`/`consumer_secret` query
    /// parameters instead of HTTP Basic, for hosts that strip the
    /// `Authorization` header (Apache with CGI/FastCGI). Off by default:
    /// URLs end up in access logs.
    pub query_auth: bool,
    /// The product meta key the ERP's unit is written to (WooCommerce has no
    /// unit field; themes and plugins read it from meta). Empty: not written.
    pub unit_meta_key: String,
    /// Order meta data keys that may hold the buyer's NIP, tried in order.
    pub nip_meta_keys: Vec<String>,
    /// Statuses that close an order (cancelled in the neutral lifecycle):
    /// when the ERP already has the order, it is taken out of Optima (a
    /// buffered document is deleted) or held for a person, and the ERP's
    /// progress never moves it to another status.
    pub order_closed_statuses: Vec<String>,
    /// ERP stage (accepted, invoiced, shipped, cancelled) → the status
    /// set when the agent reports it; merged over
    /// [`default_stage_status`]; an empty string turns a stage off.
    pub order_stage_status: BTreeMap<String, String>,
    /// The customer note that carries a tracking number; `{tracking}` is
    /// replaced by the number, `{carrier}` by the carrier (or nothing).
    pub tracking_note: String,
    /// The customer note that carries the invoice; `{number}` and `{link}`
    /// are replaced.
    pub invoice_note: String,
}

impl Default for WooSettings {
    fn default() -> Self {
        WooSettings {
            timeout: Duration::from_secs(30),
            batch_limit: 100,
            search_variations: true,
            variation_index_ttl: Duration::from_secs(300),
            query_auth: false,
            unit_meta_key: "unit".into(),
            nip_meta_keys: [
                "_billing_nip",
                "billing_nip",
                "_nip",
                "nip",
                "_billing_vat_number",
                "vat_number",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            order_closed_statuses: super::woo_order::DEFAULT_CLOSED_STATUSES
                .into_iter()
                .map(str::to_owned)
                .collect(),
            order_stage_status: BTreeMap::new(),
            tracking_note: "Numer przesyłki: {tracking}".into(),
            invoice_note: "Faktura {number}: {link}".into(),
        }
    }
}

/// The stages a shop configuration may name.
pub const STAGES: [&str; 4] = ["accepted", "invoiced", "shipped", "cancelled"];

/// The shop status each ERP stage (by name) sets unless configured
/// otherwise. An accepted reservation changes nothing: the order already is
/// what the trigger made it (setting `processing` would claim an unpaid
/// order paid).
pub fn default_stage_status(stage: &str) -> Option<&'static str> {
    match stage {
        "invoiced" => Some("processing"),
        "shipped" => Some("completed"),
        "cancelled" => Some("cancelled"),
        _ => None,
    }
}

impl WooSettings {
    /// What is wrong with these settings, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.batch_limit == 0 {
            return Some("batch_limit must be at least 1".into());
        }
        if self.timeout.is_zero() {
            return Some("timeout must be above zero".into());
        }
        if let Some(key) = self
            .order_stage_status
            .keys()
            .find(|k| !STAGES.contains(&k.as_str()))
        {
            return Some(format!(
                "order_stage_status: `{key}` is not a stage (accepted, invoiced, shipped, cancelled)"
            ));
        }
        None
    }

    /// The shop status to set for an ERP stage (by name), if any.
    pub fn status_for(&self, stage: &str) -> Option<String> {
        match self.order_stage_status.get(stage) {
            Some(status) if status.trim().is_empty() => None,
            Some(status) => Some(status.trim().to_owned()),
            None => default_stage_status(stage).map(str::to_owned),
        }
    }

    pub fn normalise_options(&self) -> NormaliseOptions {
        NormaliseOptions {
            nip_meta_keys: self.nip_meta_keys.clone(),
            closed_statuses: self.order_closed_statuses.clone(),
        }
    }
}

impl WooConfig {
    /// A shop with the default settings.
    pub fn new(
        base_url: impl Into<String>,
        consumer_key: impl Into<String>,
        consumer_secret: Secret,
    ) -> Self {
        WooConfig {
            base_url: base_url.into(),
            consumer_key: consumer_key.into(),
            consumer_secret,
            settings: WooSettings::default(),
        }
    }
}

/// Category id by (parent id, name key).
type CategoryIds = HashMap<(u64, String), u64>;

/// Variation SKU → ids, as last scanned.
#[derive(Debug)]
struct VariationIndex {
    built: Instant,
    ids: HashMap<String, ShopItemId>,
}

/// A WooCommerce connector.
#[derive(Debug, Clone)]
pub struct WooCommerce {
    http: reqwest::Client,
    /// `<base>/wp-json/wc/v3`, without a trailing slash.
    api: Url,
    consumer_key: String,
    consumer_secret: Secret,
    batch_limit: usize,
    search_variations: bool,
    variation_index_ttl: Duration,
    query_auth: bool,
    /// Shared by clones, so one warm Lambda instance scans once per TTL.
    variation_index: Arc<tokio::sync::Mutex<Option<VariationIndex>>>,
    /// Category ids by (parent id, lower-cased name), loaded once per
    /// instance and kept up to date with what it creates.
    categories: Arc<tokio::sync::Mutex<Option<CategoryIds>>>,
    /// The product meta key units are written to; empty: units not written.
    unit_meta_key: String,
    /// How orders are read and updated.
    settings: Arc<WooSettings>,
    /// Takes a token before every request; `None`: unpaced.
    gate: Option<Arc<dyn RequestGate>>,
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
}

/// The API root for a configured site address.
fn api_root(base_url: &str) -> Result<Url, ConfigError> {
    let bad = |why: &str| ConfigError(format!("base_url {base_url:?}: {why}"));
    let url = Url::parse(base_url.trim()).map_err(|e| bad(&e.to_string()))?;
    let host = url.host_str().ok_or_else(|| bad("no host"))?;
    match url.scheme() {
        "https" => {}
        // Plain HTTP would need OAuth 1.0a signing and sends the secret in
        // clear: only loopback, where nothing leaves the machine.
        "http" if is_loopback(host) => {}
        _ => return Err(bad("must be https (http only on localhost)")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials belong in consumer_key/consumer_secret"));
    }
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/wp-json/wc/v3").unwrap_or(path);
    let mut api = url.clone();
    api.set_path(&format!("{path}/wp-json/wc/v3"));
    Ok(api)
}

impl WooCommerce {
    pub fn new(config: WooConfig) -> Result<Self, ConfigError> {
        let api = api_root(&config.base_url)?;
        if config.consumer_key.trim().is_empty() || config.consumer_secret.expose().is_empty() {
            return Err(ConfigError("consumer key and secret are required".into()));
        }
        if let Some(problem) = config.settings.problem() {
            return Err(ConfigError(problem));
        }
        let settings = config.settings;
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            // A redirect turns POST into GET and drops Authorization across
            // hosts: better to say the base URL is wrong.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("erp-shop-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError(format!("HTTP client: {e}")))?;
        Ok(WooCommerce {
            http,
            api,
            consumer_key: config.consumer_key.trim().to_owned(),
            consumer_secret: config.consumer_secret,
            batch_limit: settings.batch_limit,
            search_variations: settings.search_variations,
            variation_index_ttl: settings.variation_index_ttl,
            query_auth: settings.query_auth,
            variation_index: Arc::default(),
            categories: Arc::default(),
            unit_meta_key: settings.unit_meta_key.trim().to_owned(),
            settings: Arc::new(settings),
            gate: None,
        })
    }

    /// The shop's connector: every capability WooCommerce has.
    pub fn connector(self) -> super::Connector {
        let this = Arc::new(self);
        super::Connector {
            platform: "woocommerce",
            catalogue: Some(this.clone()),
            orders: Some(this.clone()),
            updates: Some(this.clone()),
            webhooks: Some(Arc::new(super::woo_order::WooWebhooks)),
            returns: Some(this),
        }
    }

    /// Every request this connector sends takes a token from `gate` first.
    pub fn with_gate(mut self, gate: Arc<dyn RequestGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Every category the shop has, by (parent id, name key).
    async fn load_categories(&self) -> Result<CategoryIds, ShopError> {
        let all = self.get_all("/products/categories", &[]).await?;
        let mut known = HashMap::new();
        for category in &all {
            if let (Some(id), Some(name)) = (category["id"].as_u64(), category["name"].as_str()) {
                let parent = category["parent"].as_u64().unwrap_or(0);
                known.insert((parent, category_key(name)), id);
            }
        }
        tracing::debug!(categories = known.len(), "WooCommerce categories loaded");
        Ok(known)
    }

    /// Finds or creates each level of `path`; the cache learns every id.
    async fn category_path(&self, path: &[String]) -> Result<(), ShopError> {
        let mut cache = self.categories.lock().await;
        let mut known = match cache.take() {
            Some(known) => known,
            None => self.load_categories().await?,
        };
        let mut parent = 0;
        let mut result = Ok(());
        for name in path {
            let key = (parent, category_key(name));
            if let Some(id) = known.get(&key) {
                parent = *id;
                continue;
            }
            let request = self
                .http
                .post(self.url("/products/categories", &[]))
                .json(&json!({"name": name, "parent": parent}));
            let id = match self.call(request).await {
                Ok((_, created)) => created["id"].as_u64(),
                // Someone (another instance, a person) made it meanwhile.
                Err(ShopError::Permanent(message)) if message.contains("term_exists") => {
                    match self.load_categories().await {
                        Ok(fresh) => {
                            known = fresh;
                            known.get(&key).copied()
                        }
                        Err(err) => {
                            result = Err(err);
                            break;
                        }
                    }
                }
                Err(err) => {
                    result = Err(err);
                    break;
                }
            };
            let Some(id) = id else {
                result = Err(ShopError::Permanent(format!(
                    "the shop did not give an id for category `{name}`"
                )));
                break;
            };
            tracing::info!(category = %name, id, parent, "category created in the shop");
            known.insert(key, id);
            parent = id;
        }
        *cache = Some(known);
        result
    }

    /// The id of the deepest level of `path`, if every level is known.
    async fn category_id(&self, path: &[String]) -> Option<u64> {
        let cache = self.categories.lock().await;
        let known = cache.as_ref()?;
        let mut parent = 0;
        for name in path {
            parent = *known.get(&(parent, category_key(name)))?;
        }
        Some(parent)
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.api.clone();
        url.set_path(&format!("{}{path}", self.api.path()));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        if self.query_auth {
            url.query_pairs_mut()
                .append_pair("consumer_key", &self.consumer_key)
                .append_pair("consumer_secret", self.consumer_secret.expose());
        }
        url
    }

    /// Sends a request and returns the headers and JSON body of a 2xx answer.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(HeaderMap, Value), ShopError> {
        let request = if self.query_auth {
            request
        } else {
            request.basic_auth(&self.consumer_key, Some(self.consumer_secret.expose()))
        };
        if let Some(gate) = &self.gate {
            gate.admit(ONE_REQUEST).await?;
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport_error)?;
        if status.is_success() {
            let value = serde_json::from_slice(&body).map_err(|_| {
                // Hosts and WAFs answer 200 with HTML challenge pages.
                ShopError::Transient(format!(
                    "{status} with a body that is not JSON: {}",
                    excerpt(&body)
                ))
            })?;
            return Ok((headers, value));
        }
        let error = status_error(status, &headers, &body);
        if let (ShopError::RateLimited { retry_after }, Some(gate)) = (&error, &self.gate) {
            gate.penalise(*retry_after).await;
        }
        Err(error)
    }

    /// Every page of a collection.
    async fn get_all(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<Value>, ShopError> {
        let per_page = PER_PAGE.to_string();
        let mut items = Vec::new();
        for page in 1..=MAX_PAGES {
            let page_text = page.to_string();
            let mut q = query.to_vec();
            q.extend([
                ("per_page", per_page.as_str()),
                ("page", page_text.as_str()),
                // A stable order, so products added while we page do not
                // shift others between pages.
                ("orderby", "id"),
                ("order", "asc"),
            ]);
            let (headers, body) = self.call(self.http.get(self.url(path, &q))).await?;
            let Value::Array(batch) = body else {
                return Err(ShopError::Transient(format!(
                    "GET {path} answered something other than a list"
                )));
            };
            let count = batch.len();
            items.extend(batch);
            let total_pages = headers
                .get("x-wp-totalpages")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<usize>().ok());
            let more = match total_pages {
                Some(total) => page < total,
                // No header (a proxy stripped it): a full page may have a successor.
                None => count == PER_PAGE,
            };
            if !more || count == 0 {
                return Ok(items);
            }
        }
        Err(ShopError::Transient(format!(
            "GET {path} still had pages after {MAX_PAGES}"
        )))
    }

    async fn lookup(&self, skus: &[String]) -> Result<ItemIds, ShopError> {
        let wanted: HashSet<&str> = skus
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .filter(|s| {
                // WooCommerce splits the sku parameter on commas.
                let listable = !s.contains(',');
                if !listable {
                    tracing::warn!(sku = %s, "a SKU with a comma cannot be looked up in WooCommerce");
                }
                listable
            })
            .collect();
        let mut ordered: Vec<&str> = wanted.iter().copied().collect();
        ordered.sort_unstable();
        let mut found = ItemIds::new();
        for chunk in sku_chunks(&ordered) {
            let list = chunk.join(",");
            for item in self.get_all("/products", &[("sku", &list)]).await? {
                record_match(&item, &wanted, &mut found);
            }
        }
        let missing: Vec<&str> = ordered
            .iter()
            .copied()
            .filter(|s| !found.contains_key(*s))
            .collect();
        if self.search_variations && !missing.is_empty() {
            self.lookup_variations(&missing, &mut found).await?;
        }
        Ok(found)
    }

    /// Finds SKUs among variations, through an index of every variable
    /// product's variations built at most once per `variation_index_ttl`.
    /// WooCommerce has no search across all variations, and most SKUs a
    /// lookup misses are ERP products the shop does not sell: scanning for
    /// each lookup would spend the shop's rate limit on nothing.
    async fn lookup_variations(
        &self,
        missing: &[&str],
        found: &mut ItemIds,
    ) -> Result<(), ShopError> {
        // Held while building, so concurrent lookups wait for one scan.
        let mut cache = self.variation_index.lock().await;
        let fresh = cache
            .as_ref()
            .is_some_and(|index| index.built.elapsed() < self.variation_index_ttl);
        if !fresh {
            let ids = self.build_variation_index().await?;
            *cache = Some(VariationIndex {
                built: Instant::now(),
                ids,
            });
        }
        if let Some(index) = cache.as_ref() {
            for sku in missing {
                if let Some(id) = index.ids.get(*sku) {
                    found.insert((*sku).to_owned(), id.clone());
                }
            }
        }
        Ok(())
    }

    async fn build_variation_index(&self) -> Result<HashMap<String, ShopItemId>, ShopError> {
        let parents: Vec<u64> = self
            .get_all("/products", &[("type", "variable")])
            .await?
            .iter()
            .filter_map(|p| p.get("id").and_then(Value::as_u64))
            .collect();
        let mut ids = HashMap::new();
        for parent in parents {
            let path = format!("/products/{parent}/variations");
            for item in self.get_all(&path, &[]).await? {
                let sku = item.get("sku").and_then(Value::as_str).map(str::trim);
                let id = item.get("id").and_then(Value::as_u64);
                if let (Some(sku), Some(id)) = (sku, id)
                    && !sku.is_empty()
                {
                    ids.entry(sku.to_owned()).or_insert_with(|| {
                        ShopItemId::variation(parent.to_string(), id.to_string())
                    });
                }
            }
        }
        tracing::debug!(variations = ids.len(), "WooCommerce variation index built");
        Ok(ids)
    }

    async fn write(
        &self,
        items: &[(ShopItemId, ProductChanges)],
    ) -> Result<Vec<ItemOutcome>, ShopError> {
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        // Products in one call, each variable product's variations in another.
        let mut groups: BTreeMap<Option<u64>, Vec<(usize, u64, Value)>> = BTreeMap::new();
        for (index, (id, changes)) in items.iter().enumerate() {
            match woo_ids(id) {
                Some((parent, item_id)) => {
                    let category = match &changes.category {
                        Some(path) if parent.is_none() => {
                            let id = self.category_id(path).await;
                            if id.is_none() {
                                tracing::warn!(category = ?path, "category unknown to the shop; the product keeps its own");
                            }
                            id
                        }
                        _ => None,
                    };
                    let body = update_body(
                        item_id,
                        changes,
                        parent.is_some(),
                        category,
                        &self.unit_meta_key,
                    );
                    groups
                        .entry(parent)
                        .or_default()
                        .push((index, item_id, body));
                }
                None => {
                    outcomes[index] = Some(ItemOutcome::Rejected {
                        code: "invalid_id".into(),
                        message: format!("{id} is not a WooCommerce id"),
                    });
                }
            }
        }
        for (parent, members) in groups {
            let path = match parent {
                None => "/products/batch".to_owned(),
                Some(p) => format!("/products/{p}/variations/batch"),
            };
            for chunk in members.chunks(self.batch_limit) {
                let result = self.batch(&path, chunk).await;
                match (result, parent) {
                    (Ok(answers), _) => {
                        for ((index, _, _), outcome) in chunk.iter().zip(answers) {
                            outcomes[*index] = Some(outcome);
                        }
                    }
                    // One variable product refusing (deleted parent, say)
                    // is that product's problem, not the whole write's.
                    (Err(ShopError::Permanent(message)), Some(_)) => {
                        for (index, _, _) in chunk {
                            outcomes[*index] = Some(ItemOutcome::Rejected {
                                code: "variation_batch_refused".into(),
                                message: message.clone(),
                            });
                        }
                    }
                    (Err(err), _) => return Err(err),
                }
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| ItemOutcome::Rejected {
                    code: "not_sent".into(),
                    message: "no answer for this item".into(),
                })
            })
            .collect())
    }

    /// One `POST .../batch` call; one outcome per item, in order.
    async fn batch(
        &self,
        path: &str,
        chunk: &[(usize, u64, Value)],
    ) -> Result<Vec<ItemOutcome>, ShopError> {
        let update: Vec<&Value> = chunk.iter().map(|(_, _, body)| body).collect();
        let request = self
            .http
            .post(self.url(path, &[]))
            .json(&json!({ "update": update }));
        let (_, body) = self.call(request).await?;
        let answers = body
            .get("update")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if answers.len() != chunk.len() {
            // Writes are absolute: the caller can safely send them again.
            return Err(ShopError::Transient(format!(
                "POST {path}: {} answers for {} items",
                answers.len(),
                chunk.len()
            )));
        }
        Ok(chunk
            .iter()
            .zip(answers)
            .map(|((_, id, _), answer)| item_outcome(*id, answer))
            .collect())
    }
}

impl WooCommerce {
    async fn orders_page(
        &self,
        from: &FeedPosition,
        page: Option<&PageToken>,
    ) -> Result<OrdersPage, ShopError> {
        let FeedPosition::Time(since) = from else {
            return Err(ShopError::Permanent(format!(
                "WooCommerce lists orders by time, not from {from:?}"
            )));
        };
        let page = match page {
            None => 1,
            Some(token) => token.0.parse::<usize>().map_err(|_| {
                ShopError::Permanent(format!("`{}` is not a WooCommerce page number", token.0))
            })?,
        };
        let since = since.format("%Y-%m-%dT%H:%M:%S").to_string();
        let per_page = PER_PAGE.to_string();
        let page_text = page.max(1).to_string();
        let query = [
            ("modified_after", since.as_str()),
            ("dates_are_gmt", "true"),
            ("orderby", "id"),
            ("order", "asc"),
            ("per_page", per_page.as_str()),
            ("page", page_text.as_str()),
        ];
        let (headers, body) = self
            .call(self.http.get(self.url("/orders", &query)))
            .await?;
        let Value::Array(orders) = body else {
            return Err(ShopError::Transient(
                "GET /orders answered something other than a list".into(),
            ));
        };
        let total_pages = headers
            .get("x-wp-totalpages")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        let more = match total_pages {
            Some(total) => page < total,
            None => orders.len() >= PER_PAGE,
        };
        let next = (more && !orders.is_empty()).then(|| PageToken((page + 1).to_string()));
        let orders = orders
            .into_iter()
            .map(|order| RawOrder {
                id: order
                    .get("id")
                    .map(Value::to_string)
                    .unwrap_or_else(|| "-".into()),
                body: serde_json::to_vec(&order).unwrap_or_default(),
                position: None,
            })
            .collect();
        Ok(OrdersPage {
            orders,
            next,
            end: None,
        })
    }

    fn order_path(order_id: &str) -> Result<String, ShopError> {
        let id: u64 = order_id.trim().parse().map_err(|_| {
            ShopError::Permanent(format!("`{order_id}` is not a WooCommerce order id"))
        })?;
        Ok(format!("/orders/{id}"))
    }

    async fn put_status(&self, order_id: &str, status: &str) -> Result<(), ShopError> {
        let path = Self::order_path(order_id)?;
        let request = self
            .http
            .put(self.url(&path, &[]))
            .json(&json!({ "status": status }));
        let (_, body) = self.call(request).await?;
        match body.get("status").and_then(Value::as_str) {
            Some(now) if now == status => Ok(()),
            other => Err(ShopError::Permanent(format!(
                "PUT {path}: asked for status {status}, the order is {}",
                other.unwrap_or("?")
            ))),
        }
    }

    /// Adds a customer note unless the order has one with this text: a
    /// redelivered update (shop-push retries a batch after a partial
    /// failure) shows the buyer each tracking number or invoice once.
    /// Returns whether it added one.
    async fn post_note(&self, order_id: &str, note: &str) -> Result<bool, ShopError> {
        let path = format!("{}/notes", Self::order_path(order_id)?);
        let (_, notes) = self
            .call(self.http.get(self.url(&path, &[("type", "customer")])))
            .await?;
        let already = notes
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["note"].as_str().map(str::trim) == Some(note));
        if already {
            return Ok(false);
        }
        let request = self
            .http
            .post(self.url(&path, &[]))
            .json(&json!({ "note": note, "customer_note": true }));
        self.call(request).await.map(|_| true)
    }
}

/// Where the refunds were read to: `<date_created_gmt>|<id>,<id>…`, the newest creation
/// second read and every refund id read with that very second.
///
/// WooCommerce filters refunds by creation time (`after`, exclusive, to the second), not by id,
/// and several refunds can be made in one second: asking `after` the last second read would miss
/// one made later in that second, asking from that second again lists the last ones again. So the
/// next read asks from one second earlier (`after` = second − 1 s) and leaves out the ids already
/// read at that second (`exclude=`, and again here in case a host drops the parameter). A second
/// refund in the same second is read next time; none is listed twice. Ids, not "ids up to the
/// last", because ids are handed out before a refund is saved: two made at once can land in
/// either order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundCursor {
    /// The newest creation second read (UTC).
    pub at: chrono::NaiveDateTime,
    /// The refunds read with that creation second.
    pub seen: Vec<u64>,
}

impl RefundCursor {
    const FORMAT: &'static str = "%Y-%m-%dT%H:%M:%S";

    /// The first read: refunds from `since` (to the second) on.
    pub fn starting(since: chrono::DateTime<chrono::Utc>) -> RefundCursor {
        let at = since.naive_utc();
        RefundCursor {
            at: at.with_nanosecond(0).unwrap_or(at),
            seen: Vec::new(),
        }
    }

    /// A stored cursor; `None` if it is not one this connector wrote.
    pub fn parse(text: &str) -> Option<RefundCursor> {
        let (at, ids) = text.split_once('|')?;
        let at = chrono::NaiveDateTime::parse_from_str(at, Self::FORMAT).ok()?;
        let seen = ids
            .split(',')
            .filter(|id| !id.is_empty())
            .map(|id| id.parse::<u64>().ok())
            .collect::<Option<Vec<u64>>>()?;
        Some(RefundCursor { at, seen })
    }

    /// Moves past a refund read (they come oldest first).
    fn read(&mut self, created: chrono::NaiveDateTime, id: u64) {
        if created > self.at {
            self.at = created;
            self.seen.clear();
        }
        if created == self.at && !self.seen.contains(&id) {
            self.seen.push(id);
        }
    }

    /// Whether a listed refund was read before.
    fn covers(&self, created: chrono::NaiveDateTime, id: u64) -> bool {
        created < self.at || (created == self.at && self.seen.contains(&id))
    }
}

impl std::fmt::Display for RefundCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = self.seen.iter().map(u64::to_string).collect();
        write!(f, "{}|{}", self.at.format(Self::FORMAT), ids.join(","))
    }
}

/// A refund's creation time: WooCommerce's `date_created_gmt` has no offset (it is UTC).
fn refund_created(refund: &Value) -> Option<chrono::NaiveDateTime> {
    let text = refund["date_created_gmt"].as_str()?.trim();
    chrono::NaiveDateTime::parse_from_str(text, RefundCursor::FORMAT)
        .ok()
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.naive_utc())
        })
        .map(|t| t.with_nanosecond(0).unwrap_or(t))
}

/// A refund's order: `parent_id`, or the order its `up` link points at.
fn refund_order(refund: &Value) -> Option<u64> {
    refund["parent_id"]
        .as_u64()
        .filter(|id| *id != 0)
        .or_else(|| {
            refund["_links"]["up"][0]["href"]
                .as_str()?
                .rsplit('/')
                .next()?
                .parse()
                .ok()
        })
}

/// The pieces a refund gives back: its line items with a quantity (negative in WooCommerce).
fn returned_items(refund: &Value) -> Vec<super::ReturnedItem> {
    refund["line_items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|line| {
            let quantity = u32::try_from(line["quantity"].as_i64()?.unsigned_abs()).ok()?;
            (quantity > 0).then(|| super::ReturnedItem {
                sku: line["sku"]
                    .as_str()
                    .map(str::trim)
                    .filter(|sku| !sku.is_empty())
                    .map(str::to_owned),
                name: line["name"]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect(),
                quantity,
            })
        })
        .collect()
}

impl WooCommerce {
    async fn returns_page(
        &self,
        after: Option<&str>,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<super::ReturnsPage, ShopError> {
        let mut cursor = match after.map(|text| (text, RefundCursor::parse(text))) {
            Some((_, Some(cursor))) => cursor,
            Some((text, None)) => {
                tracing::warn!(cursor = %text, "not a WooCommerce refunds cursor: reading from the start again");
                RefundCursor::starting(since)
            }
            None => RefundCursor::starting(since),
        };
        let from = (cursor.at - chrono::Duration::seconds(1))
            .format(RefundCursor::FORMAT)
            .to_string();
        let exclude: Vec<String> = cursor.seen.iter().map(u64::to_string).collect();
        let exclude = exclude.join(",");
        let per_page = PER_PAGE.to_string();
        let mut query = vec![
            ("after", from.as_str()),
            ("dates_are_gmt", "true"),
            ("orderby", "date"),
            ("order", "asc"),
            ("per_page", per_page.as_str()),
            ("page", "1"),
        ];
        if !exclude.is_empty() {
            query.push(("exclude", exclude.as_str()));
        }
        let (headers, body) = self
            .call(self.http.get(self.url("/refunds", &query)))
            .await
            .map_err(|e| match e {
                ShopError::Permanent(why) if why.contains("rest_no_route") => {
                    ShopError::Permanent(format!(
                        "GET /refunds is not in this shop's WooCommerce (it came with 9.0): \
                         its refunds are not read as returns until it is updated ({why})"
                    ))
                }
                other => other,
            })?;
        let Value::Array(listed) = body else {
            return Err(ShopError::Transient(
                "GET /refunds answered something other than a list".into(),
            ));
        };
        let before = cursor.clone();
        let mut returns = Vec::new();
        for refund in &listed {
            let (Some(id), Some(created)) = (refund["id"].as_u64(), refund_created(refund)) else {
                tracing::warn!("a WooCommerce refund without an id or creation date: skipped");
                continue;
            };
            if before.covers(created, id) {
                continue;
            }
            cursor.read(created, id);
            let Some(order_id) = refund_order(refund) else {
                tracing::warn!(
                    refund = id,
                    "a WooCommerce refund without its order: skipped"
                );
                continue;
            };
            returns.push(super::ShopReturn {
                id: id.to_string(),
                order_id: order_id.to_string(),
                created_at: created.and_utc(),
                status: "refunded".to_owned(),
                reference: id.to_string(),
                items: returned_items(refund),
            });
        }
        let total_pages = headers
            .get("x-wp-totalpages")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        let more = match total_pages {
            Some(total) => total > 1,
            None => listed.len() >= PER_PAGE,
        };
        let moved = cursor != before;
        Ok(super::ReturnsPage {
            returns,
            after: moved.then(|| cursor.to_string()),
            // A page that moves nothing would be asked for again, to the same answer.
            more: more && moved,
        })
    }
}

impl super::ReturnsSource for WooCommerce {
    fn list_returns<'a>(
        &'a self,
        after: Option<&'a str>,
        since: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<super::ReturnsPage, ShopError>> {
        Box::pin(self.returns_page(after, since))
    }
}

impl WooCommerce {
    async fn apply_update(
        &self,
        order_id: &str,
        update: &OrderUpdate,
    ) -> Result<UpdateOutcome, ShopError> {
        let stage = match update {
            OrderUpdate::Stage { stage } => Some(crate::shops::stage_name(*stage)),
            OrderUpdate::Cancel => Some("cancelled"),
            OrderUpdate::Tracking { .. } | OrderUpdate::Invoice { .. } => None,
        };
        if let Some(stage) = stage {
            let Some(status) = self.settings.status_for(stage) else {
                return Ok(UpdateOutcome::NotApplicable);
            };
            self.put_status(order_id, &status).await?;
            return Ok(UpdateOutcome::Applied(format!("status {status}")));
        }
        let note = match update {
            OrderUpdate::Tracking { number, carrier } => self
                .settings
                .tracking_note
                .replace("{tracking}", number)
                .replace("{carrier}", carrier.as_deref().unwrap_or("")),
            OrderUpdate::Invoice {
                number,
                link,
                corrects,
            } => self
                .settings
                .invoice_note
                .replace(
                    "{number}",
                    &super::invoice_label(number, corrects.as_deref()),
                )
                .replace("{link}", link),
            OrderUpdate::Stage { .. } | OrderUpdate::Cancel => {
                return Ok(UpdateOutcome::NotApplicable);
            }
        };
        Ok(UpdateOutcome::Applied(
            if self.post_note(order_id, note.trim()).await? {
                "customer note"
            } else {
                "customer note already on the order"
            }
            .into(),
        ))
    }
}

impl CatalogueSink for WooCommerce {
    fn max_batch(&self) -> usize {
        self.batch_limit
    }

    fn has_categories(&self) -> bool {
        true
    }

    fn ensure_category<'a>(&'a self, path: &'a [String]) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(self.category_path(path))
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

impl OrderSource for WooCommerce {
    fn list_orders<'a>(
        &'a self,
        from: &'a FeedPosition,
        page: Option<&'a PageToken>,
    ) -> BoxFuture<'a, Result<OrdersPage, ShopError>> {
        Box::pin(self.orders_page(from, page))
    }

    fn normalise_order(
        &self,
        shop: &str,
        raw: &RawOrder,
    ) -> Result<contract::Order, OrderParseError> {
        super::woo_order::parse_order(shop, &raw.body, &self.settings.normalise_options())
    }
}

impl OrderUpdater for WooCommerce {
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

/// SKU lists for the `sku=` parameter, each short enough for a request line.
fn sku_chunks<'a>(skus: &[&'a str]) -> Vec<Vec<&'a str>> {
    let mut chunks: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut bytes = 0;
    for sku in skus {
        // Percent-encoding can triple a byte; the comma becomes %2C.
        let cost = encoded_len(sku) + 3;
        if !current.is_empty() && bytes + cost > MAX_SKU_PARAM_BYTES {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(sku);
        bytes += cost;
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

fn encoded_len(s: &str) -> usize {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                1
            } else {
                3
            }
        })
        .sum()
}

/// Records a listed product or variation if its SKU is one we asked for.
fn record_match(item: &Value, wanted: &HashSet<&str>, found: &mut ItemIds) {
    let Some(sku) = item.get("sku").and_then(Value::as_str).map(str::trim) else {
        return;
    };
    if !wanted.contains(sku) {
        return;
    }
    let Some(id) = item.get("id").and_then(Value::as_u64) else {
        return;
    };
    // Shops whose product search includes variations list them with their parent.
    let is_variation = item.get("type").and_then(Value::as_str) == Some("variation");
    let item_id = if is_variation {
        let parent = item
            .get("parent_id")
            .and_then(Value::as_u64)
            .filter(|p| *p != 0);
        match parent {
            Some(p) => ShopItemId::variation(p.to_string(), id.to_string()),
            None => return,
        }
    } else {
        ShopItemId::product(id.to_string())
    };
    match found.get(sku) {
        Some(existing) if *existing != item_id => {
            // WooCommerce enforces unique SKUs, but imports can bypass it.
            tracing::warn!(sku, first = %existing, other = %item_id, "SKU found twice in the shop; keeping the first");
        }
        Some(_) => {}
        None => {
            found.insert(sku.to_owned(), item_id);
        }
    }
}

/// (parent for variations, id to update), numeric as WooCommerce wants.
fn woo_ids(id: &ShopItemId) -> Option<(Option<u64>, u64)> {
    let product: u64 = id.product_id.trim().parse().ok()?;
    match &id.variation_id {
        None => Some((None, product)),
        Some(v) => Some((Some(product), v.trim().parse().ok()?)),
    }
}

/// WooCommerce money: a string with two decimals.
fn money(value: Decimal) -> String {
    let mut v =
        value.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    v.rescale(2);
    v.to_string()
}

/// Category names compare as WordPress shows them: HTML entities decoded
/// (the REST API answers `&amp;`), case and surrounding spaces ignored.
fn category_key(name: &str) -> String {
    name.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#039;", "'")
        .trim()
        .to_lowercase()
}

fn update_body(
    id: u64,
    changes: &ProductChanges,
    variation: bool,
    category: Option<u64>,
    unit_meta_key: &str,
) -> Value {
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    if let Some(name) = changes.name.as_ref().filter(|_| !variation) {
        // A variation's name comes from its product and attributes.
        body.insert("name".into(), json!(name));
    }
    if let Some(category) = category {
        body.insert("categories".into(), json!([{ "id": category }]));
    }
    if let Some(unit) = changes.unit.as_ref().filter(|_| !unit_meta_key.is_empty()) {
        body.insert(
            "meta_data".into(),
            json!([{ "key": unit_meta_key, "value": unit }]),
        );
    }
    if let Some(price) = changes.regular_price {
        body.insert("regular_price".into(), json!(money(price)));
    }
    if let Some(quantity) = changes.stock_quantity {
        // stock_quantity counts only on products that manage stock.
        body.insert("manage_stock".into(), json!(true));
        body.insert("stock_quantity".into(), json!(quantity));
    }
    if let Some(visible) = changes.visible {
        body.insert(
            "status".into(),
            json!(if visible { "publish" } else { "private" }),
        );
        if !variation {
            body.insert(
                "catalog_visibility".into(),
                json!(if visible { "visible" } else { "hidden" }),
            );
        }
    }
    if let Some(class) = &changes.tax_class {
        body.insert("tax_class".into(), json!(class));
    }
    Value::Object(body)
}

fn item_outcome(id: u64, answer: &Value) -> ItemOutcome {
    match answer.get("error") {
        Some(error) => ItemOutcome::Rejected {
            code: error
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned(),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        },
        None if answer.get("id").and_then(Value::as_u64) == Some(id) => ItemOutcome::Ok,
        None => ItemOutcome::Rejected {
            code: "unexpected_answer".into(),
            message: format!(
                "asked to update {id}, the answer is for {}",
                answer.get("id").unwrap_or(&Value::Null)
            ),
        },
    }
}

/// WooCommerce's error body `{"code", "message", "data": {"status"}}` as text.
fn describe(status: StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.get("code").is_some() => format!(
            "{status} {}: {}",
            v.get("code").and_then(Value::as_str).unwrap_or(""),
            v.get("message").and_then(Value::as_str).unwrap_or("")
        ),
        _ => format!("{status}: {}", excerpt(body)),
    }
}

fn status_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ShopError {
    match status.as_u16() {
        429 => ShopError::RateLimited {
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after),
        },
        401 | 403 => ShopError::Auth(describe(status, body)),
        408 | 500..=599 => ShopError::Transient(describe(status, body)),
        300..=399 => ShopError::Permanent(format!(
            "{status}: redirected to {}; set base_url to the final address",
            headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
        )),
        _ => ShopError::Permanent(describe(status, body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_cursor_reads_back_what_it_wrote_and_nothing_else() {
        let text = "2025-03-01T12:00:00|15,14";
        let cursor = RefundCursor::parse(text);
        assert_eq!(
            cursor.as_ref().map(ToString::to_string).as_deref(),
            Some(text)
        );
        assert_eq!(
            RefundCursor::parse("2025-03-01T12:00:00|").map(|c| c.seen),
            Some(Vec::new())
        );
        for garbage in [
            "",
            "15",
            "2025-03-01|15",
            "2025-03-01T12:00:00|15,x",
            "eyJmcm9tIjoxfQ",
        ] {
            assert_eq!(RefundCursor::parse(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn a_refund_cursor_moves_with_the_newest_second_and_keeps_its_ids() {
        let at = |s: &str| chrono::NaiveDateTime::parse_from_str(s, RefundCursor::FORMAT);
        let (Ok(t0), Ok(t1)) = (at("2025-03-01T12:00:00"), at("2025-03-01T12:00:01")) else {
            panic!("test dates");
        };
        let mut cursor = RefundCursor {
            at: t0,
            seen: vec![7],
        };
        assert!(cursor.covers(t0, 7));
        assert!(
            !cursor.covers(t0, 5),
            "an earlier id made later in the same second"
        );
        cursor.read(t0, 5);
        assert_eq!(cursor.seen, [7, 5]);
        cursor.read(t1, 9);
        assert_eq!((cursor.at, cursor.seen.clone()), (t1, vec![9]));
        assert!(cursor.covers(t0, 1));
    }

    #[test]
    fn odd_refund_lines_are_read_without_panicking() {
        let refund = json!({
            "id": 30,
            "date_created_gmt": "2025-03-01T12:00:00",
            "_links": {"up": [{"href": "https://sklep.example/wp-json/wc/v3/orders/12"}]},
            "line_items": [
                {"name": "Kubek", "sku": "K-1", "quantity": -2},
                {"name": "Korekta ceny", "sku": "K-2", "quantity": 0},
                {"name": null, "sku": null, "quantity": 3},
                {"name": "Bez ilości", "sku": ""},
                {"name": "Za dużo", "quantity": -99_999_999_999_i64},
                "not a line",
            ],
        });
        assert_eq!(refund_order(&refund), Some(12));
        assert_eq!(
            refund_created(&refund).map(|t| t.and_utc().to_rfc3339()),
            Some("2025-03-01T12:00:00+00:00".into())
        );
        let items = returned_items(&refund);
        assert_eq!(
            items,
            [
                super::super::ReturnedItem {
                    sku: Some("K-1".into()),
                    name: "Kubek".into(),
                    quantity: 2
                },
                super::super::ReturnedItem {
                    sku: None,
                    name: String::new(),
                    quantity: 3
                },
            ]
        );
        assert!(returned_items(&json!({"line_items": "none"})).is_empty());
        assert_eq!(refund_order(&json!({"parent_id": 0})), None);
        assert_eq!(
            refund_created(&json!({"date_created_gmt": "wczoraj"})),
            None
        );
    }
}
