//! Allegro's limits, all on the stand-in's clock (so tests can move time instead of sleeping).
//!
//! - per client_id: a sliding minute of requests; going over blocks the client for
//!   `client_block_secs` (every request answers 429 meanwhile);
//! - per seller: PATCH/GET `/sale/product-offers/{id}` per minute; offer changes by quantity and
//!   price commands per minute and per hour; token mints per window.
//!
//! Each limit is a sliding-window log of weighted entries: an action is admitted when the
//! weights inside the window plus its own stay within the limit.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};

/// Weighted entries inside a sliding window.
#[derive(Debug, Default, Clone)]
pub struct Window {
    entries: VecDeque<(DateTime<Utc>, u64)>,
}

impl Window {
    fn prune(&mut self, now: DateTime<Utc>, span: Duration) {
        while let Some((t, _)) = self.entries.front() {
            if now - *t >= span {
                self.entries.pop_front();
            } else {
                break;
            }
        }
    }

    /// Sum of the weights within `span` before `now`.
    pub fn used(&mut self, now: DateTime<Utc>, span: Duration) -> u64 {
        self.prune(now, span);
        self.entries.iter().map(|(_, w)| w).sum()
    }

    /// Admits `weight` if the window stays within `limit`; records it when admitted.
    pub fn try_add(&mut self, now: DateTime<Utc>, span: Duration, limit: u64, weight: u64) -> bool {
        if self.used(now, span) + weight > limit {
            return false;
        }
        self.entries.push_back((now, weight));
        true
    }

    /// Records `weight` without a check.
    pub fn add(&mut self, now: DateTime<Utc>, weight: u64) {
        self.entries.push_back((now, weight));
    }
}

/// One client's minute and block.
#[derive(Debug, Default, Clone)]
pub struct ClientWindow {
    pub minute: Window,
    pub blocked_until: Option<DateTime<Utc>>,
}

/// All limit state.
#[derive(Debug, Default)]
pub struct LimitState {
    pub clients: HashMap<String, ClientWindow>,
    /// Keyed by (kind, seller id): `patch`, `get`, `qty-min`, `qty-hour`, `price-min`,
    /// `price-hour`, `mint`.
    pub seller: HashMap<(&'static str, String), Window>,
}

impl LimitState {
    /// The client-wide minute. `Err(())` = answer 429.
    pub fn client_request(
        &mut self,
        client_id: &str,
        now: DateTime<Utc>,
        per_minute: u32,
        block_secs: u64,
    ) -> Result<(), ()> {
        let w = self.clients.entry(client_id.to_string()).or_default();
        if let Some(until) = w.blocked_until {
            if now < until {
                return Err(());
            }
            w.blocked_until = None;
        }
        if w.minute
            .try_add(now, Duration::minutes(1), per_minute as u64, 1)
        {
            Ok(())
        } else {
            w.blocked_until = Some(now + Duration::seconds(block_secs as i64));
            Err(())
        }
    }

    /// A per-seller sliding window. `true` = admitted (and recorded).
    pub fn seller_try(
        &mut self,
        kind: &'static str,
        seller: &str,
        now: DateTime<Utc>,
        span: Duration,
        limit: u64,
        weight: u64,
    ) -> bool {
        self.seller
            .entry((kind, seller.to_string()))
            .or_default()
            .try_add(now, span, limit, weight)
    }

    /// Per-minute and per-hour windows together: both must admit, both record.
    #[allow(clippy::too_many_arguments)]
    pub fn seller_try_pair(
        &mut self,
        kinds: (&'static str, &'static str),
        seller: &str,
        now: DateTime<Utc>,
        per_minute: u64,
        per_hour: u64,
        weight: u64,
    ) -> bool {
        let min_used = self
            .seller
            .entry((kinds.0, seller.to_string()))
            .or_default()
            .used(now, Duration::minutes(1));
        let hour_used = self
            .seller
            .entry((kinds.1, seller.to_string()))
            .or_default()
            .used(now, Duration::hours(1));
        if min_used + weight > per_minute || hour_used + weight > per_hour {
            return false;
        }
        for k in [kinds.0, kinds.1] {
            self.seller
                .entry((k, seller.to_string()))
                .or_default()
                .add(now, weight);
        }
        true
    }

    pub fn clear(&mut self) {
        self.clients.clear();
        self.seller.clear();
    }
}
