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

impl ForceSync {
    /// One request that covers both: requests that wait for the same pass
    /// are merged instead of queued (an empty list means everything).
    pub fn merge(&mut self, other: ForceSync) {
        fn union<T: Ord>(mine: &mut Vec<T>, theirs: Vec<T>) {
            if mine.is_empty() || theirs.is_empty() {
                mine.clear();
            } else {
                mine.extend(theirs);
                mine.sort();
                mine.dedup();
            }
        }
        union(&mut self.areas, other.areas);
        union(&mut self.skus, other.skus);
        self.ignore_hashes |= other.ignore_hashes;
    }
}

/// Resend what was sent with these sequence numbers (the cloud saw a gap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resend {
    pub from_seq: u64,
    pub to_seq: u64,
    /// The life of the agent's state the numbers count in; absent from
    /// clouds before the field. When it is the agent's current life and
    /// `to_seq` is past the last number the agent gave, its state file is
    /// older than what the cloud applied (restored from a backup), and the
    /// agent begins a new life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(areas: &[SyncArea], skus: &[&str], ignore_hashes: bool) -> ForceSync {
        ForceSync {
            areas: areas.to_vec(),
            skus: skus.iter().map(|s| s.to_string()).collect(),
            ignore_hashes,
        }
    }

    #[test]
    fn merged_requests_cover_everything_either_asked_for() {
        let mut merged = request(&[SyncArea::Stock], &["B", "A"], false);
        merged.merge(request(
            &[SyncArea::Prices, SyncArea::Stock],
            &["A", "C"],
            true,
        ));
        assert_eq!(
            merged,
            request(&[SyncArea::Prices, SyncArea::Stock], &["A", "B", "C"], true)
        );
        // An empty list is "all": it stays all, whichever side has it.
        let mut all_areas = request(&[], &["A"], false);
        all_areas.merge(request(&[SyncArea::Stock], &["B"], false));
        assert_eq!(all_areas, request(&[], &["A", "B"], false));
        let mut some = request(&[SyncArea::Stock], &["A"], true);
        some.merge(request(&[SyncArea::Stock], &[], false));
        assert_eq!(some, request(&[SyncArea::Stock], &[], true));
    }
}
