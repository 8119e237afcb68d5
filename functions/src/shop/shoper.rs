//! Shoper REST API (`https://<shop>/webapi/rest`), as docs/platforms/shoper.md
//! describes it (sources there; decisions in docs/CONNECTORS.md).
//!
//! On the wire:
//! - auth: `POST /auth` with HTTP Basic `login:password` (a WebAPI user)
//!   → `{"access_token","expires_in"}`; every other request sends
//!   `Authorization: Bearer`. The token lives in memory (one per connector,
//!   shared by its clones) and is asked for again when it nears its
//!   `expires_in`, or when a request answers 401 (`unauthorized_client`):
//!   then once, and a second 401 on the same request is a credentials
//!   error. `/auth` refusing the login (401 `auth_failure`, ...) is one too.
//!   No refresh token, no rotation: two instances holding two tokens is
//!   fine. Redirects are not followed (they would carry the token away).
//! - pacing: every request, `/auth` included, takes one token of
//!   [`REQUESTS`] from the [`RequestGate`] first. Shoper's leaky bucket
//!   (capacity `X-Shop-Api-Limit`, fill `X-Shop-Api-Calls`) is reported to
//!   the gate after every answer as what is left (`limit − calls`), so the
//!   shared bucket never believes in more room than the shop has. A 429
//!   (`temporarily_unavailable`) holds the gate back for its
//!   `Retry-After`. A `/bulk` call is admitted as one request: what it
//!   costs in the shop's bucket is unmeasured (docs §5), and whatever it
//!   costs, the `X-Shop-Api-Calls` of its answer tells the gate.
//! - lookup: `GET /product-stocks?filters={"code":{"in":[…]}}&order=stock_id ASC&limit=50`
//!   (≤ 50 codes a request, every page). SKUs live on stocks: one per
//!   variant and one base stock per simple product. The `code` filter is
//!   *unverified*, so its answer is trusted only as far as it goes: codes
//!   are matched exactly on our side; a shop that answers 404 for the filter
//!   (unsupported), or lists codes it was not asked for (the filter
//!   ignored), is read in full (`GET /product-stocks` page by page, the
//!   doc's safe path). A code on a variant wins over the same code on a
//!   base stock.
//! - write: `POST /bulk` with up to 25 `PUT /webapi/rest/product-stocks/{stock_id}`
//!   `{"stock", "price", "price_type": 1}` (absolute stock, never below 0;
//!   the own gross price, above 0), each answering in place
//!   (`{"errors", "items":[{"id","code","body"}]}`): a 4xx item is that
//!   item's refusal, a 5xx or 429 item makes the whole call retryable
//!   (writes are absolute). A product the rules hide is written
//!   `active: 0` with stock 0. Names, units, tax classes and categories
//!   are not written.
//! - orders: see "The order feed" below; lines by `GET
//!   /order-products?filters={"order_id":{"in":[…]}}` for each page of
//!   orders, attached to each order as `products[]` (the webhook's shape),
//!   then [`super::shoper_order`] normalises them.
//! - updates: a stage or a cancellation is `PUT /orders/{id}`
//!   `{"status_id"}` (the status the settings map the stage to; else the
//!   shop's first active status of the stage's type in `GET /statuses`:
//!   accepted → type 2 "in progress", shipped → 3 "closed/shipped",
//!   cancelled → 4 "not completed"; invoiced sets nothing). A tracking
//!   number is a parcel's `shipping_code`: kept when a parcel of the order
//!   already has it (so applying it twice does nothing), else written on
//!   the first parcel without a code (`PUT /parcels/{id}`), else a new
//!   parcel `POST /parcels {"order_id","shipping_id","shipping_code","sent"}`
//!   with the order's shipping method (Shoper then moves a sent parcel's
//!   order to the shop's parcel-sent status). The carrier's name is not
//!   sent: a parcel takes the order's shipping method. The buyer's invoice
//!   is a line with its link in the order's `notes_pub`: see "The buyer's
//!   invoice" below.
//! - errors: 429, 408, 409 (locked by an admin), 5xx and timeouts are
//!   retryable; 401 after a renewal, 402 (shop unpaid) and 403
//!   (`insufficient_scope`) are credentials; other 4xx and redirects are
//!   permanent.
//!
//! ## The order feed
//!
//! Shoper has no list of orders modified since a time: rows carry no
//! modification time (docs §6). What it has: `order_id`, which only grows
//! (keyset paging by `filters={"order_id":{">":N}}&order=order_id ASC` is
//! verified live), and `status_date`, the time of the last status change,
//! as a filter *unverified*. Paging by order id alone sees every new order
//! once but never an order again after it changed, and the contract
//! (`paging_over_500_orders_with_concurrent_changes`) asks that a second
//! listing from where the first ended show an order changed after it was
//! read: a cancellation must reach the ERP even when its webhook is lost.
//! So a listing reads two sets:
//!
//! 1. changed: orders up to the last id already read (`order_id ≤ K`) whose
//!    `status_date` is at or after a watermark `T`
//!    (`filters={"status_date":{">=":T},"order_id":{">":last}}`, keyset);
//! 2. new: every order after `K` (`filters={"order_id":{">":last}}`, keyset).
//!
//! The position is a [`FeedPosition::Journal`] of both, `K` zero-padded to
//! 20 digits, then `T` in UTC (`00000000000000000503-20260927T111216Z`):
//! both only grow, so a later position sorts after an earlier one as text.
//! A listing ends at `K` = the last id it read and `T` = the shop's clock
//! when it began (the HTTP `Date` of its first answer) less
//! `status_overlap` (default 300 s: clocks, and status changes saved while
//! the listing ran). A listed order shows again from `(its id − 1, T)` when
//! new, from the listing's own position when changed. The new orders never
//! depend on the unverified filter; a shop that answers the `status_date`
//! filter with 404, or ignores it (lists orders without a status date or
//! changed before `T`), is read for new orders only (status changes then
//! come by webhooks alone) and the log says so. What the feed cannot see: a
//! change that moves no status (a payment, an edited address) — that comes
//! by the webhooks (`order.paid`, `order.edit`). A new shop starts
//! (`start`) after the last order placed before its look-back (read from
//! `order=order_id DESC`), with `T` at the look-back.
//!
//! ## The buyer's invoice
//!
//! What Shoper's REST API offers for it (sources: SDK = Shoper's
//! OpenAPI-generated PHP SDK, copy at github.com/mkasprz/shoper-sdk-php;
//! LIB = github.com/dreamcommerce/shop-appstore-lib; OL =
//! github.com/openlinker-project/openlinker; docs = docs/platforms/shoper.md):
//!
//! - No document or file on an order. OpenLinker grepped Shoper's official
//!   Postman collection (365 endpoints) for invoice, faktura, paragon,
//!   receipt, document and fiscal and found nothing, and a live shop's
//!   order page in the panel has no place for one [OL
//!   `docs/plans/analysis/SPIKE-3638-shoper-rest-api.md`, "Sales documents
//!   — confirmed absent"]. So the PDF cannot be attached; its link can be
//!   given.
//! - Three free texts on the order, strings on `GET /orders/{id}` and
//!   writable one by one with `PUT /orders/{id}` (every field of the update
//!   is optional) [SDK `src/Raw/Types/Order.php`,
//!   `src/Rest/Orders/Requests/OrderUpdate.php`]: `notes` "client notes"
//!   (the buyer's own remark at checkout, which [`super::shoper_order`]
//!   reads), `notes_priv` "private administrator's notes", and `notes_pub`
//!   "public administrator's notes".
//! - `additional_fields`: fields the shop defines for its forms (the
//!   checkout among them) and the buyer fills in [LIB
//!   `Resource/AdditionalField.php` `LOCATE_ORDER*`; SDK `OrderUpdate.php`];
//!   an input of the buyer's that a shop must first create, not a place for
//!   the seller's message. Parcels carry a shipping code only (docs §6).
//! - `order_url` is the buyer's page of the order in their account
//!   (`…/pl/panel/order/2` on a live trial shop) [OL
//!   `…/order-source/__tests__/shoper-order-source-test-data.ts`].
//!
//! So the line goes into `notes_pub`. That the buyer sees it (on the
//! order's page in their account, and whether in the shop's e-mails) is
//! *unverified*: it rests on the field's name and the SDK's "public"
//! against "private"; no Shoper page found says where it is shown, nor
//! whether writing it e-mails the buyer. No length limit is documented
//! (the SDK states none), so none is assumed before writing; what the shop
//! kept is read back instead.
//!
//! How the line is written:
//!
//! 1. The line is the `invoice_note` setting (default `Faktura {number}:
//!    {link}`), on one line. The link must be an http(s) URL without
//!    spaces: it is what marks the line as ours.
//! 2. `GET /orders/{id}`: if a word of `notes_pub` is the link, nothing is
//!    written (a redelivery, or a later update of the same invoice: the
//!    KSeF number changes the PDF behind the link, not the link). Else the
//!    line is added on a line of its own after what the staff wrote, and
//!    `PUT /orders/{id}` sends `{"notes_pub"}` alone. A second invoice of
//!    the order has another link, so both lines stay.
//! 3. `GET /orders/{id}` again: the text as written, or any text with the
//!    link in it, is done. Cut short (what was written up to a limit the
//!    docs do not give): the text before is written back and the update is
//!    refused (`Permanent`), rather than leave the buyer half a link. As it
//!    was before: refused (`Permanent`), the shop does not keep the field.
//!    Anything else (someone wrote between our read and our write): again
//!    from the read, [`NOTE_TRIES`] times in all, then `Transient`.
//!
//! The race: Shoper has no conditional write (no version or ETag in the
//! SDK's order; none found elsewhere), so this is read, add, write. An
//! admin editing the order in the panel holds it locked and the API
//! answers 409 meanwhile (docs §2; retried later), which leaves a save by
//! someone else between our read and our write, one round trip, to be
//! overwritten. Accepted: the window is short, the read-back at least sees
//! to our own line, and a field of our own would be one the buyer does not
//! see. The three requests take their tokens from the gate as every
//! other request does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::shoper_order::{NormaliseOptions, ShoperWebhooks, Zone, flag_of, id_of};
use super::wire::{excerpt, parse_retry_after, transport_error};
use super::{
    CatalogueSink, ConfigError, FeedPosition, ItemIds, ItemOutcome, ONE_REQUEST, OrderParseError,
    OrderSource, OrderUpdate, OrderUpdater, OrdersPage, PageToken, ProductChanges, REQUESTS,
    RawOrder, RequestGate, Secret, ShopError, ShopItemId, UpdateOutcome,
};

/// Shoper's largest page (`limit` above 50 silently becomes 10).
const PAGE: usize = 50;
/// Sub-requests per `/bulk` call at most (the SDK's `MAX_OPS`).
pub const BULK_MAX: usize = 25;
/// Stop paging after this many pages: a shop answering ever more pages
/// is broken, and a Lambda must not loop until its timeout.
const MAX_PAGES: usize = 2000;
/// Pages of newest orders walked to find where a new shop starts.
const MAX_START_PAGES: usize = 40;
/// Bytes of `code` values per lookup request (URLs stay short).
const MAX_CODES_BYTES: usize = 3000;
/// A token is asked for again this long before Shoper says it expires.
const RENEW_EARLY: Duration = Duration::from_secs(60);
/// Tokens are not trusted for longer than this, whatever `expires_in` says.
const LONGEST_TOKEN: Duration = Duration::from_secs(366 * 24 * 3600);
/// The extra id where a stock's id travels in a [`ShopItemId`].
pub const STOCK_ID: &str = "stock_id";
/// Reads, additions, writes and read-backs of an order's public notes
/// before a busy order is left for a later try.
pub const NOTE_TRIES: usize = 3;

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// Stage → status id: a number or its digits; `""` or `null` turns the
/// stage off.
fn stage_statuses<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<u64>>, D::Error> {
    let raw = BTreeMap::<String, Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(stage, value)| {
            let status = match &value {
                Value::Null => None,
                Value::String(s) if s.trim().is_empty() => None,
                other => Some(id_of(Some(other)).filter(|id| *id > 0).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "order_stage_status.{stage}: `{other}` is not a status id"
                    ))
                })?),
            };
            Ok((stage, status))
        })
        .collect()
}

/// A Shoper shop's credentials, as the shop credentials secret holds them:
/// a WebAPI user (an administrator with the WebAPI right).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShoperCredentials {
    pub login: String,
    pub password: Secret,
    /// The key the shop's webhooks are signed with ("Klucz" in the panel).
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
}

/// A Shoper shop's settings (`settings` in its shop configuration), each
/// with a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShoperSettings {
    /// Per request, in seconds (default 30).
    #[serde(deserialize_with = "seconds")]
    pub timeout: Duration,
    /// Stock writes per `/bulk` call, 1 to 25 (default 25).
    pub bulk_size: usize,
    /// The shop's `locale_timezone` (`GET /application-config`), the zone
    /// of every timestamp it writes (default `Europe/Warsaw`).
    pub timezone: String,
    /// `currency_id` → ISO 4217 code, over the default `{"1": "PLN"}`.
    pub currencies: BTreeMap<String, String>,
    /// How far before a listing began the next one looks for status
    /// changes, in seconds (default 300).
    #[serde(deserialize_with = "seconds")]
    pub status_overlap: Duration,
    /// ERP stage (accepted, invoiced, shipped, cancelled) → the shop's
    /// `status_id` (a number; `""` turns the stage off). A stage not
    /// named takes the shop's first active status of its type
    /// ([`default_stage_type`]).
    #[serde(deserialize_with = "stage_statuses")]
    pub order_stage_status: BTreeMap<String, Option<u64>>,
    /// A tracking number marks its parcel sent (default on): Shoper then
    /// moves the order to its parcel-sent status and may tell the buyer.
    pub parcel_sent: bool,
    /// The line an invoice adds to the order's public notes (`{number}`,
    /// `{link}`; default `Faktura {number}: {link}`). It must hold
    /// `{link}`: the link is what finds the line again.
    pub invoice_note: String,
}

impl Default for ShoperSettings {
    fn default() -> Self {
        ShoperSettings {
            timeout: Duration::from_secs(30),
            bulk_size: BULK_MAX,
            timezone: "Europe/Warsaw".into(),
            currencies: BTreeMap::new(),
            status_overlap: Duration::from_secs(300),
            order_stage_status: BTreeMap::new(),
            parcel_sent: true,
            invoice_note: "Faktura {number}: {link}".into(),
        }
    }
}

/// The Shoper status type an ERP stage sets unless configured otherwise
/// (`GET /statuses` `type`: 1 new, 2 in progress, 3 closed/shipped, 4 not
/// completed). An invoice changes nothing the buyer sees.
pub fn default_stage_type(stage: &str) -> Option<u8> {
    match stage {
        "accepted" => Some(2),
        "shipped" => Some(3),
        "cancelled" => Some(4),
        _ => None,
    }
}

/// Where a stage leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageTarget {
    Off,
    Status(u64),
    FirstOfType(u8),
}

impl ShoperSettings {
    /// What is wrong with these settings, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.timeout.is_zero() {
            return Some("timeout must be above zero".into());
        }
        if !(1..=BULK_MAX).contains(&self.bulk_size) {
            return Some(format!("bulk_size must be 1 to {BULK_MAX}"));
        }
        if Zone::named(&self.timezone).is_none() {
            return Some(format!(
                "timezone `{}` is not one this connector knows (an IANA name such as Europe/Warsaw)",
                self.timezone
            ));
        }
        if let Some((id, code)) = self.currencies.iter().find(|(id, code)| {
            id_of(Some(&Value::String((*id).clone()))).is_none()
                || code.trim().len() != 3
                || !code.trim().chars().all(|c| c.is_ascii_alphabetic())
        }) {
            return Some(format!(
                "currencies: `{id}` → `{code}`: a currency id and its ISO 4217 code"
            ));
        }
        if let Some(stage) = self
            .order_stage_status
            .keys()
            .find(|stage| crate::shops::stage_named(stage).is_none())
        {
            return Some(format!(
                "order_stage_status: `{stage}` is not a stage (accepted, invoiced, shipped, cancelled)"
            ));
        }
        if !self.invoice_note.contains("{link}") {
            return Some(format!(
                "invoice_note `{}` must hold {{link}}: the buyer's link, and what finds the line again",
                self.invoice_note
            ));
        }
        None
    }

    /// Where an ERP stage (by name) leads.
    pub fn target(&self, stage: &str) -> StageTarget {
        match self.order_stage_status.get(stage) {
            Some(Some(status)) => StageTarget::Status(*status),
            Some(None) => StageTarget::Off,
            None => default_stage_type(stage).map_or(StageTarget::Off, StageTarget::FirstOfType),
        }
    }

    /// How this shop's orders are read.
    pub fn normalise_options(&self) -> NormaliseOptions {
        let mut options = NormaliseOptions {
            zone: Zone::named(&self.timezone).unwrap_or(Zone::WARSAW),
            ..NormaliseOptions::default()
        };
        for (id, code) in &self.currencies {
            options
                .currencies
                .insert(id.trim().to_owned(), code.trim().to_ascii_uppercase());
        }
        options
    }
}

/// One Shoper shop: where, its WebAPI user and its settings.
#[derive(Debug, Clone)]
pub struct ShoperConfig {
    /// The shop's address (`https://sklep123.shoparena.pl`, with or without
    /// `/webapi/rest`). HTTPS only, except on loopback.
    pub base_url: String,
    pub credentials: ShoperCredentials,
    pub settings: ShoperSettings,
}

/// The token in use and when to stop trusting it.
#[derive(Debug, Clone)]
struct Held {
    token: Secret,
    until: Option<Instant>,
}

/// A status of the shop's `GET /statuses`.
#[derive(Debug, Clone, Copy)]
struct StatusRow {
    id: u64,
    kind: u64,
    order: u64,
    active: bool,
}

/// A Shoper connector.
#[derive(Debug, Clone)]
pub struct Shoper {
    http: reqwest::Client,
    /// `<base>/webapi/rest`, without a trailing slash.
    api: Url,
    login: String,
    password: Secret,
    /// Shared by clones: one token per warm instance.
    held: Arc<tokio::sync::Mutex<Option<Held>>>,
    /// The shop's statuses, read once for the stages' defaults.
    statuses: Arc<tokio::sync::Mutex<Option<Vec<StatusRow>>>>,
    settings: Arc<ShoperSettings>,
    options: Arc<NormaliseOptions>,
    gate: Option<Arc<dyn RequestGate>>,
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
}

/// The API root for a configured shop address.
fn api_root(base_url: &str) -> Result<Url, ConfigError> {
    let bad = |why: &str| ConfigError(format!("base_url {base_url:?}: {why}"));
    let url = Url::parse(base_url.trim()).map_err(|e| bad(&e.to_string()))?;
    let host = url.host_str().ok_or_else(|| bad("no host"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        _ => return Err(bad("must be https (http only on localhost)")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials belong in login/password"));
    }
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/webapi/rest").unwrap_or(path);
    let mut api = url.clone();
    api.set_path(&format!("{path}/webapi/rest"));
    Ok(api)
}

/// An answer, whatever its status.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    raw: Vec<u8>,
}

impl Reply {
    /// Shoper's error envelope `{"error","error_description"}`, if it is one.
    fn error_code(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }

    fn describe(&self) -> String {
        match self.error_code() {
            Some(code) => format!(
                "{} {code}: {}",
                self.status,
                excerpt(
                    self.body
                        .get("error_description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .as_bytes()
                )
            ),
            None => format!("{}: {}", self.status, excerpt(&self.raw)),
        }
    }

    fn error(&self) -> ShopError {
        match self.status.as_u16() {
            401..=403 => ShopError::Auth(self.describe()),
            408 | 409 | 500..=599 => ShopError::Transient(self.describe()),
            300..=399 => ShopError::Permanent(format!(
                "{}: redirected to {}; set base_url to the final address",
                self.status,
                self.headers
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("?")
            )),
            _ => ShopError::Permanent(self.describe()),
        }
    }

    /// The JSON body of a 2xx answer, else the error it is.
    fn ok(self) -> Result<Value, ShopError> {
        if self.status.is_success() {
            Ok(self.body)
        } else {
            Err(self.error())
        }
    }

    /// Whether this is Shoper's 404 (a missing object or an unsupported
    /// filter), not a proxy's bare one.
    fn is_shoper_404(&self) -> bool {
        self.status == StatusCode::NOT_FOUND && self.error_code().is_some()
    }
}

/// One page of a collection: its rows and how many pages there are.
fn page_of(path: &str, body: &Value) -> Result<(Vec<Value>, usize), ShopError> {
    let rows = body
        .get("list")
        .and_then(Value::as_array)
        .ok_or_else(|| ShopError::Transient(format!("GET {path} answered without a `list`")))?;
    let pages = body
        .get("pages")
        .and_then(|p| id_of(Some(p)))
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(1);
    Ok((rows.clone(), pages))
}

/// A whole number as JSON (what request bodies take).
fn number(value: u64) -> Value {
    Value::from(value)
}

/// Money as a JSON number with two decimals (`129.99`): serialised from
/// its decimal text, which round-trips.
fn money(value: Decimal) -> Value {
    let mut v =
        value.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    v.rescale(2);
    serde_json::from_str::<Value>(&v.to_string()).unwrap_or(Value::Null)
}

/// The Shoper stock id of an item.
fn stock_id(id: &ShopItemId) -> Option<u64> {
    id.extra
        .get(STOCK_ID)
        .or(id.variation_id.as_ref())
        .and_then(|s| s.trim().parse().ok())
        .filter(|s| *s > 0)
}

/// What one stock write sends, or why it is not sent.
fn stock_body(changes: &ProductChanges) -> Result<Option<Value>, ItemOutcome> {
    let mut body = Map::new();
    // A product the rules hide is switched off and sold out: whether an
    // inactive base stock hides the whole product is *unverified*.
    if let Some(quantity) = changes.shown_stock() {
        body.insert("stock".into(), Value::from(quantity.max(0)));
    }
    if let Some(visible) = changes.visible {
        body.insert("active".into(), number(u64::from(visible)));
    }
    if let Some(price) = changes.regular_price {
        if price <= Decimal::ZERO {
            return Err(ItemOutcome::Rejected {
                code: "invalid_price".into(),
                message: format!("Shoper takes prices above zero, not {price}"),
            });
        }
        body.insert("price".into(), money(price));
        // A base stock takes only 1; a variant with 1 has its own price.
        body.insert("price_type".into(), number(1));
    }
    Ok((!body.is_empty()).then_some(Value::Object(body)))
}

/// One bulk item's answer as the outcome of its write; `Err` when the
/// whole write should be tried again or stopped.
fn bulk_outcome(item: &Value) -> Result<ItemOutcome, ShopError> {
    let code = item.get("code").and_then(|c| id_of(Some(c))).unwrap_or(0);
    let body = item.get("body").unwrap_or(&Value::Null);
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("").trim();
    let describe = || {
        let message = text("error_description");
        format!(
            "HTTP {code} {}{}",
            text("error"),
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        )
    };
    match code {
        200..=299 => Ok(ItemOutcome::Ok),
        429 => Err(ShopError::RateLimited { retry_after: None }),
        401..=403 => Err(ShopError::Auth(format!("a bulk write: {}", describe()))),
        400..=499 => Ok(ItemOutcome::Rejected {
            code: match text("error") {
                "" => format!("http_{code}"),
                error => error.to_owned(),
            },
            message: match text("error_description") {
                "" => describe(),
                message => message.to_owned(),
            },
        }),
        _ => Err(ShopError::Transient(format!(
            "a bulk write: {}",
            describe()
        ))),
    }
}

/// How far the order feed was read: the last order id and the status
/// watermark (see the module's notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub after: u64,
    pub since: DateTime<Utc>,
}

const SINCE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

impl Position {
    /// The journal text: sorts in feed order.
    pub fn text(&self) -> String {
        format!("{:020}-{}", self.after, self.since.format(SINCE_FORMAT))
    }

    pub fn parse(text: &str) -> Option<Position> {
        let (after, since) = text.trim().split_once('-')?;
        if after.len() != 20 || !after.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let since = NaiveDateTime::parse_from_str(since, SINCE_FORMAT)
            .ok()?
            .and_utc();
        Some(Position {
            after: after.parse().ok()?,
            since,
        })
    }

    fn feed(&self) -> FeedPosition {
        FeedPosition::Journal(self.text())
    }
}

/// Which set of orders a page reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Changed,
    New,
}

/// Where the next page of a listing starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    phase: Phase,
    /// The last order id read in this phase.
    last: u64,
    /// Where the listing will leave the status watermark.
    watermark: DateTime<Utc>,
}

impl Cursor {
    fn token(&self) -> PageToken {
        let phase = match self.phase {
            Phase::Changed => 'c',
            Phase::New => 'n',
        };
        PageToken(format!(
            "{phase}.{}.{}",
            self.last,
            self.watermark.timestamp()
        ))
    }

    fn parse(token: &PageToken) -> Option<Cursor> {
        let mut parts = token.0.split('.');
        let phase = match parts.next()? {
            "c" => Phase::Changed,
            "n" => Phase::New,
            _ => return None,
        };
        let last = parts.next()?.parse().ok()?;
        let watermark = DateTime::from_timestamp(parts.next()?.parse().ok()?, 0)?;
        parts.next().is_none().then_some(Cursor {
            phase,
            last,
            watermark,
        })
    }
}

impl Shoper {
    pub fn new(config: ShoperConfig) -> Result<Self, ConfigError> {
        let api = api_root(&config.base_url)?;
        let credentials = config.credentials;
        if credentials.login.trim().is_empty() || credentials.password.expose().is_empty() {
            return Err(ConfigError("login and password are required".into()));
        }
        if let Some(problem) = config.settings.problem() {
            return Err(ConfigError(problem));
        }
        let settings = config.settings;
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            // A redirect would carry the Bearer token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("erp-shop-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError(format!("HTTP client: {e}")))?;
        Ok(Shoper {
            http,
            api,
            login: credentials.login.trim().to_owned(),
            password: credentials.password,
            held: Arc::default(),
            statuses: Arc::default(),
            options: Arc::new(settings.normalise_options()),
            settings: Arc::new(settings),
            gate: None,
        })
    }

    /// The shop's connector: catalogue, orders, updates and webhooks.
    pub fn connector(self) -> super::Connector {
        let this = Arc::new(self);
        super::Connector {
            platform: "shoper",
            catalogue: Some(this.clone()),
            orders: Some(this.clone()),
            updates: Some(this),
            webhooks: Some(Arc::new(ShoperWebhooks)),
            returns: None,
        }
    }

    /// Every request this connector sends takes a token from `gate` first.
    pub fn with_gate(mut self, gate: Arc<dyn RequestGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.api.clone();
        url.set_path(&format!("{}{path}", self.api.path()));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends one request after the gate admitted it; tells the gate of the
    /// bucket and of a 429.
    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<Reply, ShopError> {
        if let Some(gate) = &self.gate {
            gate.admit(ONE_REQUEST).await?;
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let raw = response.bytes().await.map_err(transport_error)?.to_vec();
        if let Some(gate) = &self.gate
            && let Some(remaining) = bucket_left(&headers)
        {
            gate.report(REQUESTS, remaining).await;
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            if let Some(gate) = &self.gate {
                gate.penalise(retry_after).await;
            }
            return Err(ShopError::RateLimited { retry_after });
        }
        let body = if raw.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice(&raw) {
                Ok(value) => value,
                // Proxies and maintenance pages answer 200 with HTML.
                Err(_) if status.is_success() => {
                    return Err(ShopError::Transient(format!(
                        "{status} with a body that is not JSON: {}",
                        excerpt(&raw)
                    )));
                }
                Err(_) => Value::Null,
            }
        };
        Ok(Reply {
            status,
            headers,
            body,
            raw,
        })
    }

    /// `POST /auth`: a new token for the WebAPI user.
    async fn authenticate(&self) -> Result<Held, ShopError> {
        let request = self
            .http
            .post(self.url("/auth", &[]))
            .basic_auth(&self.login, Some(self.password.expose()));
        let reply = self.exchange(request).await?;
        if !reply.status.is_success() {
            return Err(match reply.status.as_u16() {
                400..=499 => ShopError::Auth(format!(
                    "Shoper refused the WebAPI login of `{}`: {}",
                    self.login,
                    reply.describe()
                )),
                _ => reply.error(),
            });
        }
        let token = reply
            .body
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ShopError::Transient("the /auth answer has no access_token".into()))?;
        let until = id_of(reply.body.get("expires_in"))
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s).min(LONGEST_TOKEN))
            .and_then(|life| Instant::now().checked_add(life - RENEW_EARLY.min(life / 2)));
        tracing::debug!(login = %self.login, "Shoper token issued");
        Ok(Held {
            token: Secret::new(token),
            until,
        })
    }

    /// The token to send: the one held, else a new one.
    async fn token(&self) -> Result<Secret, ShopError> {
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref()
            && h.until.is_none_or(|until| Instant::now() < until)
        {
            return Ok(h.token.clone());
        }
        let fresh = self.authenticate().await?;
        let token = fresh.token.clone();
        *held = Some(fresh);
        Ok(token)
    }

    /// `refused` was answered 401: a new token, unless another task of
    /// this instance already got one.
    async fn renew(&self, refused: &Secret) -> Result<(), ShopError> {
        let mut held = self.held.lock().await;
        if held
            .as_ref()
            .is_some_and(|h| h.token.expose() != refused.expose())
        {
            return Ok(());
        }
        *held = None;
        *held = Some(self.authenticate().await?);
        tracing::info!(login = %self.login, "Shoper token renewed after a 401");
        Ok(())
    }

    /// One API request with the token, renewed once on a 401; the answer
    /// whatever its status (except 429, an error already).
    async fn call_raw(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Reply, ShopError> {
        let mut renewed = false;
        loop {
            let token = self.token().await?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose());
            if let Some(body) = body {
                request = request.json(body);
            }
            let reply = self.exchange(request).await?;
            if reply.status != StatusCode::UNAUTHORIZED {
                return Ok(reply);
            }
            if renewed {
                return Err(ShopError::Auth(format!(
                    "Shoper refused a token it had just issued: {}",
                    reply.describe()
                )));
            }
            self.renew(&token).await?;
            renewed = true;
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, ShopError> {
        self.call_raw(method, self.url(path, query), body)
            .await?
            .ok()
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ShopError> {
        self.call(Method::GET, path, query, None).await
    }

    /// Every row of a collection, page by page.
    async fn get_all(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<Value>, ShopError> {
        let limit = PAGE.to_string();
        let mut rows = Vec::new();
        for page in 1..=MAX_PAGES {
            let page_text = page.to_string();
            let mut q = query.to_vec();
            q.extend([("limit", limit.as_str()), ("page", page_text.as_str())]);
            let (list, pages) = page_of(path, &self.get(path, &q).await?)?;
            let empty = list.is_empty();
            rows.extend(list);
            if page >= pages || empty {
                return Ok(rows);
            }
        }
        Err(ShopError::Transient(format!(
            "GET {path} still had pages after {MAX_PAGES}"
        )))
    }
}

/// What the shop's bucket has left, from its headers.
fn bucket_left(headers: &HeaderMap) -> Option<u32> {
    let read = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    let limit = read("x-shop-api-limit")?;
    let calls = read("x-shop-api-calls")?;
    Some(limit.saturating_sub(calls))
}

/// Whether a page of "changed" orders shows that the shop ignored the
/// `status_date` filter: a row without a status date, or one older than
/// the filter asked for (by more than the hour a clock change can shift a
/// naive time).
fn status_filter_ignored(rows: &[Value], since: DateTime<Utc>, zone: Zone) -> bool {
    rows.iter().any(|row| {
        let changed = row
            .get("status_date")
            .and_then(Value::as_str)
            .and_then(|at| zone.parse(at));
        changed.is_none_or(|at| at < since - chrono::Duration::hours(1))
    })
}

/// Lists of codes for the `in` filter, each short enough for a URL.
fn code_chunks<'a>(codes: &[&'a str]) -> Vec<Vec<&'a str>> {
    let mut chunks: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut bytes = 0;
    for code in codes {
        // JSON quotes and percent-encoding can triple a byte.
        let cost = code.len() * 3 + 9;
        if !current.is_empty() && (bytes + cost > MAX_CODES_BYTES || current.len() >= PAGE) {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(code);
        bytes += cost;
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// A stock row as an item id: (code, id, is a variant).
fn stock_item(row: &Value) -> Option<(String, ShopItemId, bool)> {
    let code = row.get("code").and_then(Value::as_str)?.trim().to_owned();
    let stock = id_of(row.get("stock_id"))?;
    let product = id_of(row.get("product_id"))?;
    let variant = flag_of(row.get("extended")).unwrap_or(false);
    let mut id = if variant {
        ShopItemId::variation(product.to_string(), stock.to_string())
    } else {
        ShopItemId::product(product.to_string())
    };
    id.extra.insert(STOCK_ID.into(), stock.to_string());
    Some((code, id, variant))
}

/// Records a stock if its code is wanted: a variant wins over a base
/// stock with the same code, else the first found stays.
fn record(
    row: &Value,
    wanted: &HashSet<&str>,
    found: &mut ItemIds,
    variants: &mut HashSet<String>,
) {
    let Some((code, id, variant)) = stock_item(row) else {
        return;
    };
    if !wanted.contains(code.as_str()) {
        return;
    }
    match found.get(&code) {
        Some(kept) if *kept == id => {}
        Some(kept) if variant && !variants.contains(&code) => {
            tracing::debug!(sku = %code, base = %kept, variant = %id, "a variant shares its product's code: the variant is written");
            variants.insert(code.clone());
            found.insert(code, id);
        }
        Some(kept) => {
            tracing::warn!(sku = %code, kept = %kept, other = %id, "SKU found on two stocks in the shop; keeping the first");
        }
        None => {
            if variant {
                variants.insert(code.clone());
            }
            found.insert(code, id);
        }
    }
}

impl Shoper {
    async fn lookup(&self, skus: &[String]) -> Result<ItemIds, ShopError> {
        let wanted: HashSet<&str> = skus
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        let mut ordered: Vec<&str> = wanted.iter().copied().collect();
        ordered.sort_unstable();
        let mut found = ItemIds::new();
        let mut variants = HashSet::new();
        for chunk in code_chunks(&ordered) {
            let filter = json!({"code": {"in": chunk}}).to_string();
            let asked: HashSet<String> = chunk.iter().map(|c| c.to_lowercase()).collect();
            let limit = PAGE.to_string();
            let mut full_scan = false;
            for page in 1..=MAX_PAGES {
                let page_text = page.to_string();
                let query = [
                    ("filters", filter.as_str()),
                    ("order", "stock_id ASC"),
                    ("limit", limit.as_str()),
                    ("page", page_text.as_str()),
                ];
                let reply = self
                    .call_raw(Method::GET, self.url("/product-stocks", &query), None)
                    .await?;
                if reply.is_shoper_404() {
                    tracing::info!("the shop does not filter stocks by code: reading every stock");
                    full_scan = true;
                    break;
                }
                let (rows, pages) = page_of("/product-stocks", &reply.ok()?)?;
                // The shop compares codes without regard to case; a code
                // that is none of those asked means the filter was ignored.
                let ignored = rows.iter().any(|row| {
                    row.get("code")
                        .and_then(Value::as_str)
                        .is_some_and(|c| !asked.contains(&c.trim().to_lowercase()))
                });
                if ignored {
                    tracing::info!("the shop ignored the stock code filter: reading every stock");
                    full_scan = true;
                    break;
                }
                for row in &rows {
                    record(row, &wanted, &mut found, &mut variants);
                }
                if page >= pages || rows.is_empty() {
                    break;
                }
            }
            if full_scan {
                for row in self
                    .get_all("/product-stocks", &[("order", "stock_id ASC")])
                    .await?
                {
                    record(&row, &wanted, &mut found, &mut variants);
                }
                return Ok(found);
            }
        }
        Ok(found)
    }

    async fn write(
        &self,
        items: &[(ShopItemId, ProductChanges)],
    ) -> Result<Vec<ItemOutcome>, ShopError> {
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        let mut ops: Vec<(usize, Value)> = Vec::new();
        for (index, (id, changes)) in items.iter().enumerate() {
            let Some(stock) = stock_id(id) else {
                outcomes[index] = Some(ItemOutcome::Rejected {
                    code: "invalid_id".into(),
                    message: format!("{id} has no Shoper stock id"),
                });
                continue;
            };
            match stock_body(changes) {
                Err(refusal) => outcomes[index] = Some(refusal),
                // Nothing this connector writes changed.
                Ok(None) => outcomes[index] = Some(ItemOutcome::Ok),
                Ok(Some(body)) => ops.push((
                    index,
                    json!({
                        "id": index.to_string(),
                        "path": format!("{}/product-stocks/{stock}", self.api.path()),
                        "method": "PUT",
                        "body": body,
                    }),
                )),
            }
        }
        for chunk in ops.chunks(self.settings.bulk_size) {
            let batch: Vec<&Value> = chunk.iter().map(|(_, op)| op).collect();
            let reply = self
                .call_raw(Method::POST, self.url("/bulk", &[]), Some(&json!(batch)))
                .await?;
            // Items answer in place, also when the call's status says some
            // failed (that status is *unverified*: 200 or a 4xx).
            let answers = reply
                .body
                .get("items")
                .and_then(Value::as_array)
                .filter(|_| reply.status.is_success() || reply.status.is_client_error());
            let Some(answers) = answers else {
                return Err(if reply.status.is_success() {
                    ShopError::Transient("POST /bulk answered without `items`".into())
                } else {
                    reply.error()
                });
            };
            let by_id: HashMap<String, &Value> = answers
                .iter()
                .filter_map(|item| {
                    let id = match item.get("id")? {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    Some((id, item))
                })
                .collect();
            for (index, _) in chunk {
                let answer = by_id.get(&index.to_string()).ok_or_else(|| {
                    // Writes are absolute: the caller can safely send them again.
                    ShopError::Transient(format!(
                        "POST /bulk: no answer for item {index} of {}",
                        chunk.len()
                    ))
                })?;
                outcomes[*index] = Some(bulk_outcome(answer)?);
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
}

impl Shoper {
    /// The status watermark a listing leaves: the shop's clock at its first
    /// answer (our own when it sends no `Date`) less the overlap, never
    /// before where it started.
    fn watermark(&self, headers: &HeaderMap, since: DateTime<Utc>) -> DateTime<Utc> {
        let shop_now = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v.trim()).ok())
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or_else(Utc::now);
        let overlap = chrono::Duration::from_std(self.settings.status_overlap)
            .unwrap_or(chrono::Duration::zero());
        (shop_now - overlap).max(since)
    }

    /// One page of orders (keyset on `order_id`) under `filters`.
    async fn orders_reply(&self, filters: &Value) -> Result<Reply, ShopError> {
        let filters = filters.to_string();
        let limit = PAGE.to_string();
        let query = [
            ("filters", filters.as_str()),
            ("order", "order_id ASC"),
            ("limit", limit.as_str()),
            ("page", "1"),
        ];
        self.call_raw(Method::GET, self.url("/orders", &query), None)
            .await
    }

    /// The lines of these orders, by order id.
    async fn lines_of(&self, ids: &[u64]) -> Result<HashMap<u64, Vec<Value>>, ShopError> {
        let mut lines: HashMap<u64, Vec<Value>> = HashMap::new();
        for chunk in ids.chunks(PAGE) {
            let filter = json!({"order_id": {"in": chunk}}).to_string();
            for line in self
                .get_all(
                    "/order-products",
                    &[("filters", filter.as_str()), ("order", "id ASC")],
                )
                .await?
            {
                if let Some(order) = id_of(line.get("order_id")) {
                    lines.entry(order).or_default().push(line);
                }
            }
        }
        Ok(lines)
    }

    /// Orders with their lines, each where the feed shows it again.
    async fn with_lines(
        &self,
        rows: Vec<(u64, Value)>,
        position: impl Fn(u64) -> FeedPosition,
    ) -> Result<Vec<RawOrder>, ShopError> {
        let ids: Vec<u64> = rows.iter().map(|(id, _)| *id).collect();
        let mut lines = self.lines_of(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|(id, row)| {
                let mut order = match row {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                order.insert(
                    "products".into(),
                    Value::Array(lines.remove(&id).unwrap_or_default()),
                );
                RawOrder {
                    id: id.to_string(),
                    body: serde_json::to_vec(&Value::Object(order)).unwrap_or_default(),
                    position: Some(position(id)),
                }
            })
            .collect())
    }

    async fn orders_page(
        &self,
        from: &FeedPosition,
        page: Option<&PageToken>,
    ) -> Result<OrdersPage, ShopError> {
        let position = match from {
            FeedPosition::Journal(text) => Position::parse(text).ok_or_else(|| {
                ShopError::Permanent(format!("`{text}` is not a Shoper feed position"))
            })?,
            FeedPosition::Time(_) => {
                return Err(ShopError::Permanent(
                    "Shoper's orders are read from a position of order id and status time, not from a time"
                        .into(),
                ));
            }
        };
        let cursor = match page {
            Some(token) => Some(Cursor::parse(token).ok_or_else(|| {
                ShopError::Permanent(format!("`{}` is not a Shoper page token", token.0))
            })?),
            None => None,
        };
        let (phase, last) = match cursor {
            Some(c) => (c.phase, c.last),
            // No order is at or before id 0: nothing can have changed.
            None if position.after == 0 => (Phase::New, 0),
            None => (Phase::Changed, 0),
        };
        match phase {
            Phase::Changed => {
                let filters = json!({
                    "status_date": {">=": self.options.zone.format(position.since)},
                    "order_id": {">": last},
                });
                let reply = self.orders_reply(&filters).await?;
                let watermark = cursor
                    .map(|c| c.watermark)
                    .unwrap_or_else(|| self.watermark(&reply.headers, position.since));
                let to_new = Cursor {
                    phase: Phase::New,
                    last: position.after,
                    watermark,
                };
                if reply.is_shoper_404() {
                    tracing::warn!(
                        "the shop does not filter orders by status_date: status changes reach us by webhooks only"
                    );
                    return Ok(OrdersPage {
                        orders: Vec::new(),
                        next: Some(to_new.token()),
                        end: None,
                    });
                }
                let (rows, pages) = page_of("/orders", &reply.ok()?)?;
                if status_filter_ignored(&rows, position.since, self.options.zone) {
                    tracing::warn!(
                        "the shop ignored the status_date filter: status changes reach us by webhooks only"
                    );
                    return Ok(OrdersPage {
                        orders: Vec::new(),
                        next: Some(to_new.token()),
                        end: None,
                    });
                }
                let mut kept = Vec::new();
                let mut passed = false;
                let mut newest = last;
                for row in rows {
                    let Some(id) = id_of(row.get("order_id")) else {
                        continue;
                    };
                    if id > position.after {
                        // Orders after K are read as new ones.
                        passed = true;
                        break;
                    }
                    newest = newest.max(id);
                    kept.push((id, row));
                }
                let done = passed || pages <= 1 || newest == last;
                let next = if done {
                    to_new
                } else {
                    Cursor {
                        phase: Phase::Changed,
                        last: newest,
                        watermark,
                    }
                };
                let here = position.feed();
                let orders = self.with_lines(kept, |_| here.clone()).await?;
                Ok(OrdersPage {
                    orders,
                    next: Some(next.token()),
                    end: None,
                })
            }
            Phase::New => {
                let start = last.max(position.after);
                let filters = json!({"order_id": {">": start}});
                let reply = self.orders_reply(&filters).await?;
                let watermark = cursor
                    .map(|c| c.watermark)
                    .unwrap_or_else(|| self.watermark(&reply.headers, position.since));
                let (rows, pages) = page_of("/orders", &reply.ok()?)?;
                let rows: Vec<(u64, Value)> = rows
                    .into_iter()
                    .filter_map(|row| {
                        id_of(row.get("order_id"))
                            .filter(|id| *id > start)
                            .map(|id| (id, row))
                    })
                    .collect();
                let newest = rows.iter().map(|(id, _)| *id).max().unwrap_or(start);
                let more = pages > 1 && newest > start;
                let since = position.since;
                let orders = self
                    .with_lines(rows, |id| {
                        Position {
                            after: id.saturating_sub(1),
                            since,
                        }
                        .feed()
                    })
                    .await?;
                Ok(OrdersPage {
                    orders,
                    next: more.then(|| {
                        Cursor {
                            phase: Phase::New,
                            last: newest,
                            watermark,
                        }
                        .token()
                    }),
                    end: (!more).then(|| {
                        Position {
                            after: newest,
                            since: watermark.max(since),
                        }
                        .feed()
                    }),
                })
            }
        }
    }

    /// Where a new shop's feed starts: after the last order placed before
    /// `lookback_from`, status changes from then on.
    async fn start_position(
        &self,
        lookback_from: DateTime<Utc>,
    ) -> Result<FeedPosition, ShopError> {
        let limit = PAGE.to_string();
        let mut oldest_seen: Option<u64> = None;
        for page in 1..=MAX_START_PAGES {
            let page_text = page.to_string();
            let body = self
                .get(
                    "/orders",
                    &[
                        ("order", "order_id DESC"),
                        ("limit", limit.as_str()),
                        ("page", page_text.as_str()),
                    ],
                )
                .await?;
            let (rows, pages) = page_of("/orders", &body)?;
            for row in &rows {
                let Some(id) = id_of(row.get("order_id")) else {
                    continue;
                };
                let placed = row
                    .get("date")
                    .and_then(Value::as_str)
                    .and_then(|d| self.options.zone.parse(d));
                if placed.is_some_and(|at| at < lookback_from) {
                    return Ok(Position {
                        after: id,
                        since: lookback_from,
                    }
                    .feed());
                }
                oldest_seen = Some(oldest_seen.map_or(id, |o| o.min(id)));
            }
            if page >= pages || rows.is_empty() {
                // Every order is within the look-back.
                return Ok(Position {
                    after: 0,
                    since: lookback_from,
                }
                .feed());
            }
        }
        let after = oldest_seen.map_or(0, |id| id.saturating_sub(1));
        tracing::warn!(
            after,
            "more orders in the look-back than a start reads: starting after the oldest read"
        );
        Ok(Position {
            after,
            since: lookback_from,
        }
        .feed())
    }
}

/// The invoice's link, if it is one the buyer can open and the notes can
/// find again as a word: an http(s) URL without spaces.
fn invoice_link(link: &str) -> Result<&str, ShopError> {
    let link = link.trim();
    let plain = !link.is_empty() && !link.chars().any(|c| c.is_whitespace() || c.is_control());
    match Url::parse(link) {
        Ok(url) if plain && matches!(url.scheme(), "https" | "http") => Ok(link),
        _ => Err(ShopError::Permanent(format!(
            "invoice link `{}` is not an http(s) address without spaces",
            excerpt(link.as_bytes())
        ))),
    }
}

/// `template` with `{number}` and `{link}` filled in one pass (a number
/// holding `{link}` stays as it is), as one line.
fn invoice_line(template: &str, number: &str, link: &str) -> String {
    let mut line = String::with_capacity(template.len() + number.len() + link.len());
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        line.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{number}") {
            line.push_str(number.trim());
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{link}") {
            line.push_str(link);
            rest = after;
        } else {
            line.push('{');
            rest = &tail[1..];
        }
    }
    line.push_str(rest);
    let line: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line.trim().to_owned()
}

/// Whether a word of `notes` is `link` (bare, or in brackets, quotes or
/// before a full stop): a longer link that starts like it is not.
fn has_link(notes: &str, link: &str) -> bool {
    notes.split(char::is_whitespace).any(|word| {
        word == link || word.trim_matches(|c: char| "()[]<>\"'.,;:!?".contains(c)) == link
    })
}

/// `notes` with `line` added on a line of its own.
fn with_line(notes: &str, line: &str) -> String {
    match notes.trim_end() {
        "" => line.to_owned(),
        kept => format!("{kept}\n{line}"),
    }
}

/// The public notes of an order as `GET /orders/{id}` answers it.
fn public_notes(order: u64, row: &Value) -> Result<String, ShopError> {
    match row.get("notes_pub") {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(ShopError::Permanent(format!(
            "order {order}: notes_pub is not text but `{}`",
            excerpt(other.to_string().as_bytes())
        ))),
    }
}

/// What the shop kept of a write of the public notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// The line is there (as written, or among what others wrote since).
    Shown,
    /// What was written, cut after this many characters.
    Cut(usize),
    /// The notes as they were before the write.
    Unchanged,
    /// Something else: another writer came between the read and the write.
    Overwritten,
}

/// What the shop kept: `before` read, `written` sent, `after` read back.
fn kept(before: &str, written: &str, after: &str, link: &str) -> Kept {
    let after_text = after.trim_end();
    if after == written || has_link(after, link) {
        Kept::Shown
    } else if after_text == before.trim_end() {
        Kept::Unchanged
    } else if written.starts_with(after_text) && after_text.len() > before.trim_end().len() {
        Kept::Cut(after.chars().count())
    } else {
        Kept::Overwritten
    }
}

impl Shoper {
    fn order_number(order_id: &str) -> Result<u64, ShopError> {
        order_id
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| ShopError::Permanent(format!("`{order_id}` is not a Shoper order id")))
    }

    /// The shop's first active status of `kind`, by its order in the panel.
    async fn first_status_of(&self, kind: u8) -> Result<Option<u64>, ShopError> {
        let mut cache = self.statuses.lock().await;
        if cache.is_none() {
            let rows = self.get_all("/statuses", &[]).await?;
            *cache = Some(
                rows.iter()
                    .filter_map(|row| {
                        Some(StatusRow {
                            id: id_of(row.get("status_id"))?,
                            kind: id_of(row.get("type"))?,
                            order: id_of(row.get("order")).unwrap_or(u64::MAX),
                            active: flag_of(row.get("active")).unwrap_or(true),
                        })
                    })
                    .collect(),
            );
        }
        Ok(cache.as_ref().and_then(|rows| {
            rows.iter()
                .filter(|s| s.active && s.kind == u64::from(kind))
                .min_by_key(|s| (s.order, s.id))
                .map(|s| s.id)
        }))
    }

    async fn set_status(&self, order_id: &str, stage: &str) -> Result<UpdateOutcome, ShopError> {
        let order = Self::order_number(order_id)?;
        let status = match self.settings.target(stage) {
            StageTarget::Off => return Ok(UpdateOutcome::NotApplicable),
            StageTarget::Status(status) => status,
            StageTarget::FirstOfType(kind) => match self.first_status_of(kind).await? {
                Some(status) => status,
                None => {
                    tracing::warn!(
                        stage,
                        kind,
                        "the shop has no active status of the stage's type: nothing set"
                    );
                    return Ok(UpdateOutcome::NotApplicable);
                }
            },
        };
        self.call(
            Method::PUT,
            &format!("/orders/{order}"),
            &[],
            Some(&json!({"status_id": status})),
        )
        .await?;
        Ok(UpdateOutcome::Applied(format!("status {status}")))
    }

    async fn add_tracking(
        &self,
        order_id: &str,
        number: &str,
        carrier: Option<&str>,
    ) -> Result<UpdateOutcome, ShopError> {
        let order = Self::order_number(order_id)?;
        let code = number.trim();
        if code.is_empty() || code.chars().count() > 100 {
            return Err(ShopError::Permanent(format!(
                "tracking number `{code}` does not fit a parcel's shipping code (1 to 100 characters)"
            )));
        }
        let filter = json!({"order_id": order}).to_string();
        let parcels = self
            .get_all(
                "/parcels",
                &[("filters", filter.as_str()), ("order", "parcel_id ASC")],
            )
            .await?;
        let text = |p: &Value, key: &str| {
            p.get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or("")
                .to_owned()
        };
        if parcels.iter().any(|p| text(p, "shipping_code") == code) {
            return Ok(UpdateOutcome::Applied(format!(
                "parcel with {code} already on the order"
            )));
        }
        let carrier_note = carrier
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| format!(" (carrier {c} not sent: the order's shipping method stays)"))
            .unwrap_or_default();
        let open = parcels.iter().find_map(|p| {
            let id = id_of(p.get("parcel_id"))?;
            text(p, "shipping_code")
                .is_empty()
                .then(|| (id, flag_of(p.get("sent")).unwrap_or(false)))
        });
        if let Some((parcel, sent)) = open {
            let mut body = json!({"shipping_code": code});
            if self.settings.parcel_sent
                && !sent
                && let Some(map) = body.as_object_mut()
            {
                map.insert("sent".into(), Value::Bool(true));
            }
            self.call(Method::PUT, &format!("/parcels/{parcel}"), &[], Some(&body))
                .await?;
            return Ok(UpdateOutcome::Applied(format!(
                "shipping code {code} on parcel {parcel}{carrier_note}"
            )));
        }
        let row = self.get(&format!("/orders/{order}"), &[]).await?;
        let shipping = id_of(row.get("shipping_id")).ok_or_else(|| {
            ShopError::Permanent(format!("order {order} has no shipping method for a parcel"))
        })?;
        let created = self
            .call(
                Method::POST,
                "/parcels",
                &[],
                Some(&json!({
                    "order_id": order,
                    "shipping_id": shipping,
                    "shipping_code": code,
                    "sent": self.settings.parcel_sent,
                })),
            )
            .await?;
        Ok(UpdateOutcome::Applied(format!(
            "parcel {} with {code}{carrier_note}",
            id_of(Some(&created)).map_or_else(|| "?".to_owned(), |id| id.to_string())
        )))
    }

    /// The invoice's line in the order's public notes, once (see "The
    /// buyer's invoice" in the module's notes).
    async fn show_invoice(
        &self,
        order_id: &str,
        number: &str,
        corrects: Option<&str>,
        link: &str,
    ) -> Result<UpdateOutcome, ShopError> {
        let order = Self::order_number(order_id)?;
        let link = invoice_link(link)?;
        let label = super::invoice_label(number, corrects);
        let line = invoice_line(&self.settings.invoice_note, &label, link);
        let path = format!("/orders/{order}");
        for _ in 0..NOTE_TRIES {
            let before = public_notes(order, &self.get(&path, &[]).await?)?;
            if has_link(&before, link) {
                return Ok(UpdateOutcome::Applied(format!(
                    "invoice {number} already in the order's public notes"
                )));
            }
            let written = with_line(&before, &line);
            self.call(
                Method::PUT,
                &path,
                &[],
                Some(&json!({"notes_pub": written})),
            )
            .await?;
            let after = public_notes(order, &self.get(&path, &[]).await?)?;
            match kept(&before, &written, &after, link) {
                Kept::Shown => {
                    return Ok(UpdateOutcome::Applied(format!(
                        "invoice {number} in the order's public notes"
                    )));
                }
                Kept::Unchanged => {
                    return Err(ShopError::Permanent(format!(
                        "order {order}: Shoper kept the public notes (notes_pub) as they were, without the invoice's line"
                    )));
                }
                Kept::Cut(at) => {
                    let put_back = match self
                        .call(Method::PUT, &path, &[], Some(&json!({"notes_pub": before})))
                        .await
                    {
                        Ok(_) => "they were put back as they were".to_owned(),
                        Err(e) => format!("putting them back failed: {e}"),
                    };
                    return Err(ShopError::Permanent(format!(
                        "order {order}: Shoper cut the public notes (notes_pub) at {at} characters, so the invoice's link does not fit; {put_back}"
                    )));
                }
                Kept::Overwritten => {
                    tracing::info!(
                        order,
                        "the order's public notes changed while the invoice's line was written; reading them again"
                    );
                }
            }
        }
        Err(ShopError::Transient(format!(
            "order {order}: the public notes changed {NOTE_TRIES} times while the invoice's line was written"
        )))
    }

    async fn apply_update(
        &self,
        order_id: &str,
        update: &OrderUpdate,
    ) -> Result<UpdateOutcome, ShopError> {
        match update {
            OrderUpdate::Stage { stage } => {
                self.set_status(order_id, crate::shops::stage_name(*stage))
                    .await
            }
            OrderUpdate::Cancel => self.set_status(order_id, "cancelled").await,
            OrderUpdate::Tracking { number, carrier } => {
                self.add_tracking(order_id, number, carrier.as_deref())
                    .await
            }
            OrderUpdate::Invoice {
                number,
                link,
                corrects,
            } => {
                self.show_invoice(order_id, number, corrects.as_deref(), link)
                    .await
            }
        }
    }
}

impl CatalogueSink for Shoper {
    fn max_batch(&self) -> usize {
        self.settings.bulk_size
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

impl OrderSource for Shoper {
    fn start<'a>(
        &'a self,
        lookback_from: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<FeedPosition, ShopError>> {
        Box::pin(self.start_position(lookback_from))
    }

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
        super::shoper_order::parse_order(shop, &raw.body, &self.options)
    }
}

impl OrderUpdater for Shoper {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn settings(json: &str) -> Result<ShoperSettings, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn settings_have_defaults_and_refuse_what_makes_no_sense() {
        let s = settings("{}").unwrap();
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.bulk_size, 25);
        assert_eq!(s.problem(), None);
        assert_eq!(s.target("accepted"), StageTarget::FirstOfType(2));
        assert_eq!(s.target("invoiced"), StageTarget::Off);
        assert_eq!(s.target("shipped"), StageTarget::FirstOfType(3));
        assert_eq!(s.target("cancelled"), StageTarget::FirstOfType(4));
        assert!(settings(r#"{"bucket": 10}"#).is_err(), "unknown fields");
        let s = settings(
            r#"{"order_stage_status": {"shipped": 11, "cancelled": "9", "accepted": ""},
                "currencies": {"2": "eur"}, "timezone": "Europe/London", "timeout": 5}"#,
        )
        .unwrap();
        assert_eq!(s.problem(), None);
        assert_eq!(s.target("shipped"), StageTarget::Status(11));
        assert_eq!(s.target("cancelled"), StageTarget::Status(9));
        assert_eq!(s.target("accepted"), StageTarget::Off);
        let options = s.normalise_options();
        assert_eq!(options.currencies.get("1").map(String::as_str), Some("PLN"));
        assert_eq!(options.currencies.get("2").map(String::as_str), Some("EUR"));
        assert_eq!(options.zone, Zone::named("Europe/London").unwrap());
        assert!(settings(r#"{"order_stage_status": {"shipped": "wysłane"}}"#).is_err());
        assert!(settings(r#"{"order_stage_status": {"shipped": 0}}"#).is_err());
        for (bad, says) in [
            (r#"{"order_stage_status": {"sent": 7}}"#, "not a stage"),
            (r#"{"bulk_size": 26}"#, "bulk_size"),
            (r#"{"bulk_size": 0}"#, "bulk_size"),
            (r#"{"timeout": 0}"#, "timeout"),
            (r#"{"timezone": "Europe/Warszawa"}"#, "timezone"),
            (r#"{"currencies": {"x": "PLN"}}"#, "currencies"),
            (r#"{"currencies": {"2": "EURO"}}"#, "currencies"),
        ] {
            let problem = settings(bad).unwrap().problem().unwrap_or_default();
            assert!(problem.contains(says), "{bad}: {problem}");
        }
        let credentials: ShoperCredentials =
            serde_json::from_str(r#"{"login": "api", "password": "p"}"#).unwrap();
        assert!(credentials.webhook_secret.is_none());
        assert!(
            serde_json::from_str::<ShoperCredentials>(
                r#"{"login": "api", "password": "p", "token": "x"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn the_api_lives_under_webapi_rest_over_https() {
        for (base, api) in [
            (
                "https://sklep.shoparena.pl",
                "https://sklep.shoparena.pl/webapi/rest",
            ),
            (
                "https://sklep.pl/webapi/rest/",
                "https://sklep.pl/webapi/rest",
            ),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/webapi/rest"),
        ] {
            assert_eq!(api_root(base).unwrap().as_str(), api);
        }
        for bad in [
            "http://sklep.pl",
            "https://user:pw@sklep.pl",
            "https://sklep.pl?x=1",
            "sklep.pl",
        ] {
            assert!(api_root(bad).is_err(), "{bad}");
        }
        let config = |login: &str| ShoperConfig {
            base_url: "https://sklep.pl".into(),
            credentials: ShoperCredentials {
                login: login.into(),
                password: Secret::new("p"),
                webhook_secret: None,
            },
            settings: ShoperSettings::default(),
        };
        assert!(Shoper::new(config(" ")).is_err());
        let connector = Shoper::new(config("api")).unwrap().connector();
        assert_eq!(connector.platform, "shoper");
        let caps = connector.capabilities();
        assert!(caps.catalogue && caps.orders && caps.order_updates && caps.webhooks);
        assert!(!caps.categories);
        let updates = connector.updates.unwrap();
        assert!(updates.supports("tracking") && updates.supports("invoice"));
    }

    const LINK: &str = "https://abc.lambda-url.eu-central-1.on.aws/invoice/AbCd-_0123";

    #[test]
    fn the_invoice_line_is_one_line_with_the_number_and_the_link() {
        let template = ShoperSettings::default().invoice_note;
        assert_eq!(
            invoice_line(&template, " FS/1/2026 ", LINK),
            format!("Faktura FS/1/2026: {LINK}")
        );
        assert_eq!(
            invoice_line("{number}\n{link} {x} {", "FS\r\n7 {link}", LINK),
            format!("FS  7 {{link}} {LINK} {{x}} {{")
        );
        assert_eq!(invoice_link(&format!(" {LINK} ")).unwrap(), LINK);
        for bad in [
            "",
            "invoice/AbCd",
            "ftp://host/invoice/x",
            "https://host/in voice/x",
            "https://host/invoice/x\ty",
            "javascript:alert(1)",
        ] {
            assert!(
                matches!(invoice_link(bad), Err(ShopError::Permanent(_))),
                "{bad:?}"
            );
        }
        let mut no_link = ShoperSettings::default();
        assert_eq!(no_link.problem(), None);
        no_link.invoice_note = "Faktura {number}".into();
        assert!(
            no_link
                .problem()
                .unwrap_or_default()
                .contains("invoice_note")
        );
        let s = settings(r#"{"invoice_note": "Rachunek {number}: {link}"}"#).unwrap();
        assert_eq!(s.problem(), None);
    }

    #[test]
    fn the_link_is_found_as_a_word_of_the_notes() {
        let ours = format!("Faktura FS/1/2026: {LINK}");
        assert!(has_link(&ours, LINK));
        assert!(has_link(&format!("Zapłacono.\n{ours}\nDziękujemy"), LINK));
        assert!(has_link(&format!("(link: {LINK}). "), LINK));
        assert!(has_link(&format!("<{LINK}>"), LINK));
        assert!(!has_link("", LINK));
        assert!(!has_link(&format!("{LINK}x"), LINK), "a longer link");
        assert!(!has_link(&format!("{LINK}/more"), LINK));
        assert!(!has_link(&LINK[..LINK.len() - 1], LINK), "a cut link");
    }

    #[test]
    fn the_line_goes_after_what_the_staff_wrote() {
        assert_eq!(with_line("", "L"), "L");
        assert_eq!(with_line("  \n", "L"), "L");
        assert_eq!(
            with_line("Wysyłka w piątek.\n\n", "L"),
            "Wysyłka w piątek.\nL"
        );
        assert_eq!(with_line("A\nB", "L"), "A\nB\nL");
        let row = json!({"notes_pub": "A", "notes_priv": "secret"});
        assert_eq!(public_notes(1, &row).unwrap(), "A");
        assert_eq!(public_notes(1, &json!({"notes_pub": null})).unwrap(), "");
        assert_eq!(public_notes(1, &json!({})).unwrap(), "");
        assert!(matches!(
            public_notes(1, &json!({"notes_pub": 5})),
            Err(ShopError::Permanent(_))
        ));
    }

    #[test]
    fn what_the_shop_kept_is_told_apart() {
        let line = format!("Faktura FS/1/2026: {LINK}");
        let before = "Wysyłka w piątek.";
        let written = with_line(before, &line);
        assert_eq!(kept(before, &written, &written, LINK), Kept::Shown);
        // The shop's own trimming, or someone's later words, keep the line.
        assert_eq!(
            kept(before, &written, &format!("{written}\n"), LINK),
            Kept::Shown
        );
        assert_eq!(
            kept(before, &written, &format!("{written}\nOdbiór 5.10"), LINK),
            Kept::Shown
        );
        assert_eq!(kept(before, &written, before, LINK), Kept::Unchanged);
        assert_eq!(kept("", &line, "", LINK), Kept::Unchanged);
        let cut = &written[..written.len() - 4];
        assert_eq!(
            kept(before, &written, cut, LINK),
            Kept::Cut(cut.chars().count())
        );
        assert_eq!(
            kept(before, &written, "Wysyłka w piątek.\nFak", LINK),
            Kept::Cut(21)
        );
        assert_eq!(
            kept(before, &written, "Wysyłka w sobotę.", LINK),
            Kept::Overwritten
        );
        assert_eq!(kept(before, &written, "", LINK), Kept::Overwritten);
    }

    #[test]
    fn positions_sort_as_text_in_feed_order_and_read_back() {
        let t0 = Utc.with_ymd_and_hms(2026, 9, 27, 11, 12, 16).unwrap();
        let a = Position {
            after: 99,
            since: t0,
        };
        let b = Position {
            after: 503,
            since: t0,
        };
        let c = Position {
            after: 503,
            since: t0 + chrono::Duration::seconds(1),
        };
        assert_eq!(a.text(), "00000000000000000099-20260927T111216Z");
        assert!(b.feed().is_after(&a.feed()) && c.feed().is_after(&b.feed()));
        for p in [a, b, c] {
            assert_eq!(Position::parse(&p.text()), Some(p));
        }
        for bad in ["", "99-20260927T111216Z", "00000000000000000099", "x"] {
            assert_eq!(Position::parse(bad), None, "{bad}");
        }
        let cursor = Cursor {
            phase: Phase::Changed,
            last: 42,
            watermark: t0,
        };
        assert_eq!(Cursor::parse(&cursor.token()), Some(cursor));
        assert_eq!(Cursor::parse(&PageToken("n.1".into())), None);
        assert_eq!(Cursor::parse(&PageToken("x.1.2".into())), None);
    }

    #[test]
    fn the_watermark_is_the_shops_clock_less_the_overlap() {
        let shoper = Shoper::new(ShoperConfig {
            base_url: "https://sklep.pl".into(),
            credentials: ShoperCredentials {
                login: "api".into(),
                password: Secret::new("p"),
                webhook_secret: None,
            },
            settings: ShoperSettings::default(),
        })
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::DATE,
            "Sun, 27 Sep 2026 11:12:16 GMT".parse().unwrap(),
        );
        let long_ago = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            shoper.watermark(&headers, long_ago),
            Utc.with_ymd_and_hms(2026, 9, 27, 11, 7, 16).unwrap()
        );
        let later = Utc.with_ymd_and_hms(2026, 9, 27, 11, 10, 0).unwrap();
        assert_eq!(shoper.watermark(&headers, later), later, "never backwards");
    }

    #[test]
    fn stock_writes_are_absolute_and_prices_above_zero() {
        let changes = ProductChanges {
            regular_price: Some(Decimal::new(12999, 3)),
            stock_quantity: Some(-4),
            ..ProductChanges::default()
        };
        assert_eq!(
            stock_body(&changes).unwrap().unwrap(),
            json!({"stock": 0, "price": 13.00, "price_type": 1})
        );
        assert_eq!(stock_body(&ProductChanges::default()).unwrap(), None);
        let hidden = ProductChanges {
            stock_quantity: Some(9),
            visible: Some(false),
            ..ProductChanges::default()
        };
        assert_eq!(
            stock_body(&hidden).unwrap().unwrap(),
            json!({"stock": 0, "active": 0})
        );
        let shown = ProductChanges {
            stock_quantity: Some(9),
            visible: Some(true),
            ..ProductChanges::default()
        };
        assert_eq!(
            stock_body(&shown).unwrap().unwrap(),
            json!({"stock": 9, "active": 1})
        );
        let free = ProductChanges {
            regular_price: Some(Decimal::ZERO),
            ..ProductChanges::default()
        };
        assert!(
            matches!(stock_body(&free), Err(ItemOutcome::Rejected { code, .. }) if code == "invalid_price")
        );
        assert_eq!(money(Decimal::new(12345, 2)).to_string(), "123.45");

        let mut id = ShopItemId::product("93");
        assert_eq!(stock_id(&id), None);
        id.extra.insert(STOCK_ID.into(), "181".into());
        assert_eq!(stock_id(&id), Some(181));
        assert_eq!(stock_id(&ShopItemId::variation("93", "182")), Some(182));
    }

    #[test]
    fn bulk_items_answer_in_place() {
        assert_eq!(
            bulk_outcome(&json!({"code": 200, "body": 1, "id": "0"})).unwrap(),
            ItemOutcome::Ok
        );
        assert_eq!(
            bulk_outcome(&json!({"code": 404, "id": "4", "body":
                {"error": "invalid_request", "error_description": "Resource not found"}}))
            .unwrap(),
            ItemOutcome::Rejected {
                code: "invalid_request".into(),
                message: "Resource not found".into()
            }
        );
        assert_eq!(
            bulk_outcome(&json!({"code": "400", "body": null})).unwrap(),
            ItemOutcome::Rejected {
                code: "http_400".into(),
                message: "HTTP 400 ".into()
            }
        );
        assert!(matches!(
            bulk_outcome(&json!({"code": 503, "body": {}})),
            Err(ShopError::Transient(_))
        ));
        assert!(matches!(
            bulk_outcome(&json!({"code": 403, "body": {"error": "insufficient_scope"}})),
            Err(ShopError::Auth(_))
        ));
        assert!(matches!(
            bulk_outcome(&json!({"code": 429})),
            Err(ShopError::RateLimited { .. })
        ));
    }

    #[test]
    fn stocks_match_codes_exactly_and_variants_win() {
        let wanted: HashSet<&str> = ["SKU-1", "SKU-2"].into_iter().collect();
        let mut found = ItemIds::new();
        let mut variants = HashSet::new();
        let row = |stock: u64, code: &str, extended: &str| json!({"stock_id": stock.to_string(), "product_id": "93", "code": code, "extended": extended});
        for r in [
            row(181, "SKU-1", "0"),
            row(182, "SKU-1", "1"),
            row(183, "SKU-1", "1"),
            row(184, "sku-2", "0"),
            row(185, "SKU-2 ", "0"),
            json!({"stock_id": "186", "code": "SKU-2"}),
        ] {
            record(&r, &wanted, &mut found, &mut variants);
        }
        let first = found.get("SKU-1").unwrap();
        assert_eq!(first.variation_id.as_deref(), Some("182"));
        assert_eq!(first.extra.get(STOCK_ID).map(String::as_str), Some("182"));
        let second = found.get("SKU-2").unwrap();
        assert_eq!(second.extra.get(STOCK_ID).map(String::as_str), Some("185"));
        assert_eq!(second.variation_id, None);

        let codes: Vec<String> = (0..120).map(|i| format!("C-{i}")).collect();
        let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
        let chunks = code_chunks(&refs);
        assert!(chunks.iter().all(|c| c.len() <= PAGE));
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 120);
    }

    #[test]
    fn an_ignored_status_filter_is_noticed() {
        let since = Utc.with_ymd_and_hms(2026, 9, 28, 4, 0, 0).unwrap();
        let zone = Zone::WARSAW;
        let row = |at: &str| json!({"order_id": "1", "status_date": at});
        // 06:12 in Warsaw is 04:12 UTC: after `since`.
        assert!(!status_filter_ignored(
            &[row("2026-09-28 06:12:16")],
            since,
            zone
        ));
        assert!(!status_filter_ignored(&[], since, zone));
        assert!(status_filter_ignored(
            &[row("2026-09-28 06:12:16"), row("2026-09-01 10:00:00")],
            since,
            zone
        ));
        assert!(status_filter_ignored(
            &[json!({"order_id": "1"})],
            since,
            zone
        ));
    }

    #[test]
    fn the_bucket_reports_what_is_left() {
        let mut headers = HeaderMap::new();
        assert_eq!(bucket_left(&headers), None);
        headers.insert("x-shop-api-limit", "10".parse().unwrap());
        headers.insert("x-shop-api-calls", "3".parse().unwrap());
        assert_eq!(bucket_left(&headers), Some(7));
        headers.insert("x-shop-api-calls", "12".parse().unwrap());
        assert_eq!(bucket_left(&headers), Some(0));
    }
}
