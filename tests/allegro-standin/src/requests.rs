//! The request log (`/__standin/requests`): the last 10 000 requests to the API and the OAuth
//! endpoints, with arrival time (RFC 3339, milliseconds), outcome and who called.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

const CAPACITY: usize = 10_000;

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub seq: u64,
    /// Arrival, RFC 3339 UTC with milliseconds (wall clock, not the test clock).
    pub at: String,
    /// Arrival on the stand-in's clock (differs once a test moved the clock).
    pub clock_at: String,
    pub method: String,
    pub path: String,
    /// Query string (the OAuth endpoints' secrets redacted).
    pub query: String,
    pub status: u16,
    pub duration_ms: u64,
    /// client_id of the token or Basic credentials, when known.
    pub client_id: Option<String>,
    /// Seller of the token, when known.
    pub seller_id: Option<String>,
    /// The `Trace-Id` answered.
    pub trace_id: String,
    /// `Accept` as sent.
    pub accept: Option<String>,
    /// What shaped the answer besides the handler: `injected_error`, `hang`, `rate_limited`,
    /// `unauthorized`, `forbidden`, `not_acceptable`, `unsupported_media_type`.
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

/// Query string with token-bearing parameters redacted.
pub fn redact_query(q: &str) -> String {
    q.split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _))
                if [
                    "refresh_token",
                    "device_code",
                    "client_secret",
                    "access_token",
                ]
                .contains(&k) =>
            {
                format!("{k}=REDACTED")
            }
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}
