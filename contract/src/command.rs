//! What the cloud asks of the agent through the commands queue.

use serde::{Deserialize, Serialize};

/// The data areas a sync pass can cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncArea {
    Catalogue,
    Prices,
    Stock,
    Customers,
}

impl SyncArea {
    pub const ALL: [SyncArea; 4] = [
        SyncArea::Catalogue,
        SyncArea::Prices,
        SyncArea::Stock,
        SyncArea::Customers,
    ];
}

/// Force a pass now, whole or per area, optionally for given SKUs only.
/// Empty `areas` means every area; empty `skus` means every product.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ForceSync {
    #[serde(default)]
    pub areas: Vec<SyncArea>,
    #[serde(default)]
    pub skus: Vec<String>,
    /// Resend even records whose hash did not change.
    #[serde(default)]
    pub ignore_hashes: bool,
}

/// Resend what was sent with these sequence numbers (the cloud saw a gap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resend {
    pub from_seq: u64,
    pub to_seq: u64,
}

/// Answer with a heartbeat now (used by the admin side and `doctor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    pub nonce: String,
}
