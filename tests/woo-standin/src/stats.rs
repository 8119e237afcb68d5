//! Counters: requests per endpoint (method + route with ids as `{id}`), responses per status,
//! 429s, injected faults, and the maximum number of API requests seen in any rolling 1-second
//! window (all arrivals, and admitted ones).

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::limits::WindowMeter;

/// A snapshot of the counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub total_requests: u64,
    /// `"GET /products"`, `"PUT /orders/{id}"`, ... (API root stripped).
    pub requests_by_endpoint: BTreeMap<String, u64>,
    pub responses_by_status: BTreeMap<u16, u64>,
    /// 429s answered by the rate limiter.
    pub rate_limited: u64,
    pub injected_errors: u64,
    pub injected_timeouts: u64,
    /// Max API requests that arrived within any rolling second (including rejected ones).
    pub max_requests_in_any_1s: usize,
    /// Max API requests admitted (not 429) within any rolling second.
    pub max_admitted_in_any_1s: usize,
    /// Max API requests being processed at the same time.
    pub max_in_flight: usize,
    /// Requests refused because `max_concurrent` was reached.
    pub rejected_concurrency: u64,
    pub webhook_deliveries: u64,
    pub webhook_failures: u64,
}

impl Stats {
    /// Requests counted for an endpoint key like `"POST /products/batch"`.
    pub fn count(&self, endpoint: &str) -> u64 {
        self.requests_by_endpoint
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }
}

/// Live counters.
#[derive(Debug, Default)]
pub struct StatsState {
    pub snapshot: Stats,
    pub arrivals: WindowMeter,
    pub admitted: WindowMeter,
}

impl StatsState {
    pub fn on_arrival(&mut self, endpoint: &str, now: Instant) {
        self.snapshot.total_requests += 1;
        *self
            .snapshot
            .requests_by_endpoint
            .entry(endpoint.to_string())
            .or_default() += 1;
        self.arrivals.hit(now);
    }

    pub fn on_admitted(&mut self, now: Instant) {
        self.admitted.hit(now);
    }

    pub fn on_status(&mut self, status: u16) {
        *self.snapshot.responses_by_status.entry(status).or_default() += 1;
    }

    pub fn snapshot(&self) -> Stats {
        let mut s = self.snapshot.clone();
        s.max_requests_in_any_1s = self.arrivals.max();
        s.max_admitted_in_any_1s = self.admitted.max();
        s
    }

    pub fn reset(&mut self) {
        *self = StatsState::default();
    }
}

/// `GET /wp-json/wc/v3/orders/123/notes` → `GET /orders/{id}/notes`.
pub fn endpoint_key(method: &str, path: &str) -> String {
    let rest = path.strip_prefix("/wp-json/wc/v3").unwrap_or(path);
    let norm: Vec<&str> = rest
        .split('/')
        .map(|seg| {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                seg
            }
        })
        .collect();
    let joined = norm.join("/");
    let joined = if joined.len() > 1 {
        joined.trim_end_matches('/').to_string()
    } else {
        joined
    };
    format!("{method} {joined}")
}
