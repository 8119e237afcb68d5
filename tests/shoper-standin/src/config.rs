//! Runtime configuration (`GET/PUT /__standin/config`): token lifetimes, the request bucket,
//! paging, bulk, shop settings, webhook delivery, and a switch for every behaviour
//! docs/platforms/shoper.md marks *unverified* (each such field says so; its default is the
//! documented or most likely value).

use serde::{Deserialize, Serialize};

/// Everything a test may want to change while the stand-in runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    // --- auth ---
    /// Lifetime of `/auth` tokens in seconds, answered as `expires_in` (observed 2592000 =
    /// 30 days; one third-party page shows 3600).
    pub token_ttl_secs: u64,
    /// Lifetime of panel integration tokens ("Token API"); None = they never expire
    /// (*unverified*: no lifetime is documented).
    pub panel_token_ttl_secs: Option<u64>,
    /// `token_type` answered by `/auth` (*unverified* casing; the docs show `bearer`).
    pub token_type: String,
    /// `error_description` for an *expired* token (*unverified*: the code is
    /// `unauthorized_client` as for any bad token; the live text for a bad token is used).
    pub expired_token_description: String,

    // --- the request bucket (leaky bucket per token) ---
    /// Bucket capacity, `X-Shop-Api-Limit` (documented default 10).
    pub bucket_limit: u32,
    /// Leak per second, `X-Shop-Api-Bandwidth` (2 with an `/auth` token; 10 seen with a panel
    /// token).
    pub bucket_bandwidth: u32,
    /// A `/bulk` call costs one unit per sub-request instead of one in all (*unverified*;
    /// default: one unit).
    pub bulk_cost_per_operation: bool,
    /// `error_description` of the 429 (*unverified*; the docs call the state "Calls limit
    /// exceeded").
    pub rate_limit_description: String,
    /// Send the `X-Shop-Api-*` headers on 401 answers too, with `X-Shop-Api-Calls: 0` (there is
    /// no bucket before a token is known; presence on other 4xx is *unverified*).
    pub bucket_headers_on_unauthorized: bool,

    // --- collections ---
    /// Page size when `limit` is absent, out of range or above `max_limit` (*unverified* default
    /// 10; `limit>50` → 10 rows is live).
    pub default_limit: u32,
    /// Largest `limit` honoured (50).
    pub max_limit: u32,
    /// `filters={"code":...}` works on `/product-stocks` (*unverified*: `code` is a stock field
    /// but only `product_id` was verified live; off → 404 like other unsupported fields).
    pub stock_code_filter: bool,
    /// Filters on `add_date`/`edit_date` (products) and `date`/`status_date` (orders) work
    /// (*unverified*; off → 404 like other unsupported fields).
    pub date_filters: bool,

    // --- bulk ---
    /// Most sub-requests per `/bulk` call (25, SDK `MAX_OPS`).
    pub bulk_max_operations: usize,
    /// HTTP status of a `/bulk` answer whose `errors` is true (*unverified*; default 200).
    pub bulk_status_with_errors: u16,
    /// `error_description` when a `/bulk` call has too many sub-requests (*unverified*: the SDK
    /// refuses client-side; the stand-in answers 400 `invalid_request`).
    pub bulk_too_many_description: String,

    // --- shop settings (GET /application-config) ---
    /// `locale_timezone`: the zone of every naive timestamp (UTC, or a European zone name).
    pub locale_timezone: String,
    /// `shopping_update_stock_on_buy`: order lines decrement the stock they point at.
    pub shopping_update_stock_on_buy: bool,
    /// `shopping_parcel_send_status_id`: the status an order moves to when a parcel is sent.
    pub parcel_send_status_id: u64,
    /// `warehouses_enabled` (Premium multi-warehouse): `stock` becomes read-only. Off: the
    /// `/warehouses` resource answers 400 `Warehouses module is disabled`.
    pub warehouses_enabled: bool,
    /// Whether order lines may take stock below zero (*unverified*; default: the decrement stops
    /// at 0).
    pub allow_negative_stock: bool,
    /// Longest `notes`, `notes_priv` and `notes_pub` of an order, in characters; longer text
    /// is kept cut to this length without an error (*unverified*: no limit is documented, so
    /// the default is none; when set, it plays the worst case, a column that silently cuts,
    /// which a client only notices by reading the order back).
    pub notes_max_chars: Option<usize>,

    // --- webhooks ---
    /// A status change also sends `order.edit` (besides `order.status`) (*unverified*; live
    /// captures show both events exist).
    pub status_change_sends_edit: bool,
    /// Extra delivery attempts after a non-2xx answer or a timeout (*unverified*; default 0).
    pub webhook_retries: u32,
    /// Pause before each retry, in ms.
    pub webhook_retry_delay_ms: u64,
    /// Delivery timeout in ms (*unverified*).
    pub webhook_timeout_ms: u64,
    /// AppStore app mode: when set, webhook secrets are derived per shop as
    /// `hex(HMAC-SHA512(key=appstore_secret, msg=license + ":" + webhook_secret))` before the
    /// SHA-1 signature (SDK `WebhookVerifier::deriveShopSecret`).
    pub appstore_secret: Option<String>,
    /// `User-Agent` version and `X-Shop-Version` of deliveries (live: 5.26.54).
    pub shop_version: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token_ttl_secs: 2_592_000,
            panel_token_ttl_secs: None,
            token_type: "bearer".into(),
            expired_token_description: crate::error::INVALID_TOKEN.into(),
            bucket_limit: 10,
            bucket_bandwidth: 2,
            bulk_cost_per_operation: false,
            rate_limit_description: "Calls limit exceeded".into(),
            bucket_headers_on_unauthorized: true,
            default_limit: 10,
            max_limit: 50,
            stock_code_filter: true,
            date_filters: true,
            bulk_max_operations: 25,
            bulk_status_with_errors: 200,
            bulk_too_many_description: "Przekroczono maksymalną liczbę operacji (25)".into(),
            locale_timezone: "Europe/Warsaw".into(),
            shopping_update_stock_on_buy: true,
            parcel_send_status_id: 7,
            warehouses_enabled: false,
            allow_negative_stock: false,
            notes_max_chars: None,
            status_change_sends_edit: true,
            webhook_retries: 0,
            webhook_retry_delay_ms: 1_000,
            webhook_timeout_ms: 10_000,
            appstore_secret: None,
            shop_version: "5.26.54".into(),
        }
    }
}
