//! What the agent projects out of Optima and sends to the cloud.
//!
//! One struct per record kind; the agent hashes each projected record and
//! sends only those whose hash changed, so these must be deterministic
//! (ordered collections, normalised decimals).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::VatRate;

/// A product card (`CDN.Towary`), keyed by its code, which is the shop SKU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRecord {
    pub sku: String,
    /// Optima's internal id (`Twr_TwrId`), for reading back; not shown to shops.
    pub erp_id: i64,
    pub name: String,
    pub ean: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_eans: Vec<String>,
    pub unit: String,
    pub vat: VatRate,
    /// Group path from the root, e.g. ["Narzędzia", "Ręczne", "Młotki"].
    #[serde(default)]
    pub group_path: Vec<String>,
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `Twr_TS_Mod` as read, for ordering; not part of what the shop sees.
    pub modified_at: Option<DateTime<Utc>>,
}

/// Whether a price-list value is net or gross (`DfC_Typ`/`TwC_Typ`: 1 net, 2 gross).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceKind {
    Net,
    Gross,
}

/// One product's price in one price list (`CDN.TwrCeny` joined to `CDN.DefCeny`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceRecord {
    pub sku: String,
    /// The price list's name (`DfC_Nazwa`), which shop rules refer to.
    pub price_list: String,
    pub kind: PriceKind,
    pub value: Decimal,
    pub currency: String,
    /// The product's VAT rate, so net ↔ gross needs no second lookup.
    pub vat: VatRate,
}

/// Stock of one product in one warehouse at read time: the latest
/// `CDN.TwrIlosci` row at or before now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockRecord {
    pub sku: String,
    /// Warehouse symbol (`Mag_Symbol`), e.g. "MAG".
    pub warehouse: String,
    pub quantity: Decimal,
    pub reserved: Decimal,
    /// When the agent read it: newer readings win over older ones.
    pub read_at: DateTime<Utc>,
}

impl StockRecord {
    /// Available = quantity − reservations (may be negative in bad data; the
    /// cloud parks or clamps it, never publishes it as is).
    pub fn available(&self) -> Decimal {
        self.quantity - self.reserved
    }
}

/// A customer card (`CDN.Kontrahenci`) with its price level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRecord {
    pub code: String,
    pub erp_id: i64,
    pub name: String,
    pub nip: Option<String>,
    pub email: Option<String>,
    /// `Knt_Ceny`: which price list this customer buys at.
    pub price_level: Option<i32>,
}

/// What the agent can reach, as it last saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentHealth {
    pub sql_server: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_error: Option<String>,
    /// Batches written locally and not yet confirmed by SQS.
    pub outbox_depth: u64,
    /// Whether this agent writes shop orders (has an `[orders]` section);
    /// absent from agents older than the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takes_orders: Option<bool>,
    /// Staged records the agent set aside because they cannot be sent (too
    /// large alone, unreadable); absent when none, and from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_records: Option<u64>,
    /// The latest of them: `<kind> <key>: <reason>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_latest: Option<String>,
}

/// The agent's sign of life, sent on an interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub agent_version: String,
    /// The agent's clock when it built the heartbeat; the cloud compares it
    /// with its own clock to report skew.
    pub agent_clock: DateTime<Utc>,
    pub health: AgentHealth,
}
