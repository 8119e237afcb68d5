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

/// The shop cancelled an order whose create command went to the ERP: take
/// the buffered document out of Optima (the way Optima allows, deleting a
/// buffered document), or leave it for a person when it has left the
/// buffer or been realised. Written at contract version 2 and later only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelOrder {
    pub shop: String,
    pub order_id: String,
    /// The shop's status that closed the order (e.g. `cancelled`), for the
    /// reason a person reads.
    pub shop_status: String,
}

impl CancelOrder {
    /// The same key as [`crate::Order::key`].
    pub fn key(&self) -> String {
        format!("{}:{}", self.shop, self.order_id)
    }
}
