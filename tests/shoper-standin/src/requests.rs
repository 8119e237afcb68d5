//! The request log (`/__standin/requests`): the last 10 000 requests to `/webapi/rest/*`, with
//! arrival time, outcome, who called and what the bucket said.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

const CAPACITY: usize = 10_000;

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub seq: u64,
    /// Arrival, RFC 3339 UTC with milliseconds (wall clock).
    pub at: String,
    /// Arrival on the stand-in's clock (differs once a test moved the clock).
    pub clock_at: String,
    pub method: String,
    /// Path below `/webapi/rest/` (e.g. `product-stocks/181`).
    pub path: String,
    /// Query string as sent (`client_secret` redacted).
    pub query: String,
    pub status: u16,
    pub duration_ms: u64,
    /// WebAPI login the token (or `/auth` credentials) belongs to, when known.
    pub login: Option<String>,
    /// `auth` (from `/auth`) or `panel` (integration token), when known.
    pub token_kind: Option<String>,
    /// `X-Shop-Api-Calls` answered, when the bucket was consulted.
    pub bucket_calls: Option<u32>,
    /// Sub-requests of a `/bulk` call.
    pub bulk_operations: Option<usize>,
    /// What shaped the answer besides the handler: `injected_error`, `hang`, `unauthorized`,
    /// `rate_limited`.
    pub refused: Option<String>,
}

/// Ring buffer of requests.
#[derive(Debug, Default)]
pub struct RequestLog {
    next_seq: u64,
    items: VecDeque<RequestRecord>,
}

impl RequestLog {
    pub fn push(&mut self, mut r: RequestRecord) {
        self.next_seq += 1;
        r.seq = self.next_seq;
        if self.items.len() >= CAPACITY {
            self.items.pop_front();
        }
        self.items.push_back(r);
    }

    pub fn all(&self) -> Vec<RequestRecord> {
        self.items.iter().cloned().collect()
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }
}

/// Query string with secrets redacted.
pub fn redact_query(q: &str) -> String {
    q.split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if ["client_secret", "password", "refresh_token"].contains(&k) => {
                format!("{k}=REDACTED")
            }
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}
