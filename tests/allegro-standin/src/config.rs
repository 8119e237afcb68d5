//! Runtime configuration (`GET/PUT /__standin/config`): lifetimes, limits, delays and the
//! switches for behaviour the research notes mark *unverified*.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Everything a test may want to change while the stand-in runs. Defaults are Allegro's
/// documented values (docs/platforms/allegro.md); *unverified* guesses are marked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    // --- OAuth ---
    /// Access token lifetime in seconds (Allegro: 12 h, answered as `expires_in: 43199`).
    pub access_ttl_secs: u64,
    /// Refresh token lifetime in seconds (Allegro: 3 months; 90 days here).
    pub refresh_ttl_secs: u64,
    /// How long a used refresh token is still accepted (Allegro: 60 s).
    pub refresh_grace_secs: u64,
    /// Whether the previous access token also dies at once on refresh (Allegro staff: yes).
    pub refresh_kills_old_access: bool,
    /// Device code lifetime in seconds (`expires_in`, Allegro: 3600).
    pub device_ttl_secs: u64,
    /// Device polling interval in seconds (`interval`, Allegro: 5).
    pub device_interval_secs: u64,
    /// The device answer prints `expires_in`/`interval` as strings like the docs do (*unverified*).
    pub device_numbers_as_strings: bool,
    /// Status and body for bad client credentials on `/auth/oauth/*` (*unverified*).
    pub bad_client_status: u16,
    pub bad_client_body: Value,
    /// At most this many tokens minted per user in `token_mint_window_secs` (None: no limit).
    pub token_mint_limit: Option<u32>,
    pub token_mint_window_secs: u64,
    /// Status answered when an application (client_credentials) token is used on a seller
    /// endpoint (*unverified*: 403).
    pub app_token_status: u16,
    /// Status for an unknown/garbled token on `GET /sale/offers` (spec: 403; *unverified*).
    pub sale_offers_invalid_token_status: u16,

    // --- limits ---
    /// Requests per client_id in a sliding minute (Allegro: 9 000).
    pub client_per_minute: u32,
    /// How long a client is blocked once over the limit (Allegro: 60 s).
    pub client_block_secs: u64,
    /// 429 body (*unverified*).
    pub rate_limit_body: Value,
    /// `Retry-After` on 429 (None: not sent, the default; *unverified*).
    pub rate_limit_retry_after: Option<u64>,
    /// `PATCH /sale/product-offers/{id}` per seller per minute (2 500).
    pub offer_patch_per_minute: u32,
    /// `GET /sale/product-offers/{id}` per seller per minute (3 500).
    pub offer_get_per_minute: u32,
    /// Offer changes by quantity commands per seller: per minute (9 000) and per hour (250 000).
    pub quantity_changes_per_minute: u64,
    pub quantity_changes_per_hour: u64,
    /// Offer changes by price commands per seller: per minute (9 000) and per hour (150 000).
    pub price_changes_per_minute: u64,
    pub price_changes_per_hour: u64,

    // --- commands and offers ---
    /// Time from a command's PUT until its tasks are done, in ms.
    pub command_delay_ms: u64,
    /// Offers per command (and per criterion), Allegro: 1 000.
    pub command_max_offers: usize,
    /// Status when the same commandId comes again with the same body (*unverified*: 201 with
    /// the original report).
    pub repeat_command_status: u16,
    /// `FIXED` quantity 0 ends an ACTIVE offer like PATCH stock 0 does (*unverified*).
    pub fixed_zero_ends_offer: bool,
    /// PATCH product-offers answers 202 + `Location` + `Retry-After` and keeps the edit pending
    /// for `patch_async_ms` (test hook; default off = 200 at once).
    pub patch_async: bool,
    pub patch_async_ms: u64,
    pub patch_async_retry_after_secs: u64,

    // --- orders ---
    /// Events older than this many days are no longer served (Allegro: 60).
    pub event_retention_days: i64,
    /// Largest invoice file in bytes (Allegro: 3 MB).
    pub invoice_max_bytes: usize,
    /// Adding a tracking number sets fulfillment to SENT (a seller setting; default off).
    pub shipment_sets_sent: bool,
    /// 409 code for a stale `checkoutForm.revision` (*unverified*).
    pub revision_conflict_code: String,

    // --- headers ---
    /// Refuse bodies whose Content-Type is not Allegro's (415, *unverified*).
    pub enforce_content_type: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            access_ttl_secs: 43_199,
            refresh_ttl_secs: 90 * 24 * 3600,
            refresh_grace_secs: 60,
            refresh_kills_old_access: true,
            device_ttl_secs: 3600,
            device_interval_secs: 5,
            device_numbers_as_strings: true,
            bad_client_status: 401,
            bad_client_body: json!({
                "error": "unauthorized",
                "error_description": "Full authentication is required to access this resource"
            }),
            token_mint_limit: None,
            token_mint_window_secs: 3600,
            app_token_status: 403,
            sale_offers_invalid_token_status: 401,
            client_per_minute: 9_000,
            client_block_secs: 60,
            rate_limit_body: json!({"errors": [{
                "code": "TooManyRequestsException",
                "message": "Too many requests",
                "details": null,
                "path": null,
                "userMessage": "Too many requests"
            }]}),
            rate_limit_retry_after: None,
            offer_patch_per_minute: 2_500,
            offer_get_per_minute: 3_500,
            quantity_changes_per_minute: 9_000,
            quantity_changes_per_hour: 250_000,
            price_changes_per_minute: 9_000,
            price_changes_per_hour: 150_000,
            command_delay_ms: 1_000,
            command_max_offers: 1_000,
            repeat_command_status: 201,
            fixed_zero_ends_offer: true,
            patch_async: false,
            patch_async_ms: 1_000,
            patch_async_retry_after_secs: 1,
            event_retention_days: 60,
            invoice_max_bytes: 3 * 1024 * 1024,
            shipment_sets_sent: false,
            revision_conflict_code: "CONFLICT".into(),
            enforce_content_type: true,
        }
    }
}
