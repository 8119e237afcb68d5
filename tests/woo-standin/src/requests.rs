//! The request log (`/__standin/requests`): the last 10 000 API requests with their outcome.
//! `consumer_secret` in query strings is redacted.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

const CAPACITY: usize = 10_000;

/// One API request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub seq: u64,
    /// RFC 3339 UTC arrival time.
    pub at: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub endpoint: String,
    pub status: u16,
    pub duration_ms: u64,
    /// `rate_limited`, `injected_error`, `hang` when a fault shaped the answer.
    pub fault: Option<String>,
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

/// Query string with `consumer_secret` redacted.
pub fn redact_query(q: &str) -> String {
    q.split('&')
        .map(|kv| {
            if kv.starts_with("consumer_secret=") {
                "consumer_secret=REDACTED".to_string()
            } else {
                kv.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}
