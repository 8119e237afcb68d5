//! Fault injection: answer an error status for the next N API requests (optionally only for
//! paths containing a string) or with a probability, add latency, hang after processing; and
//! for webhook deliveries: drop, duplicate or delay the next N. "Next N" switches come before
//! probabilities; probabilities use a seeded RNG.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The fault configuration (`GET/PUT /__standin/faults`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// The next N requests answer `fail_status` without being processed (no bucket unit used).
    pub fail_next: u32,
    /// Status of injected errors (default 503). The body is Shoper's envelope for that status:
    /// 402 `access_denied`, 409/500/501 `server_error`, 429/503 `temporarily_unavailable`,
    /// others `server_error`.
    pub fail_status: u16,
    /// Probability (0..1) that a request answers `fail_status`.
    pub fail_probability: f64,
    /// Only requests whose path contains this are failed or hung.
    pub path_contains: Option<String>,
    /// Only requests with this method (`PUT`, ...) are failed or hung.
    pub method: Option<String>,
    /// `Retry-After` (seconds) on injected errors, if any (an injected 429 without one gets
    /// `1`, as Shoper always sends it).
    pub fail_retry_after: Option<u64>,
    /// Injected errors carry no `Retry-After` at all, not even a 429's default (what a proxy or
    /// a CDN in front of the shop may answer; Shoper itself sends one).
    pub fail_without_retry_after: bool,
    /// The next N requests are processed, then hang `hang_ms` before answering.
    pub hang_next: u32,
    pub hang_ms: u64,
    /// Added to every request before it is processed, in ms.
    pub latency_ms: u64,
    /// The next N webhook deliveries are never sent (recorded as `dropped`).
    pub webhook_drop_next: u32,
    /// The next N webhook deliveries are sent twice (same body and signature).
    pub webhook_duplicate_next: u32,
    /// Wait this long before each webhook delivery, in ms.
    pub webhook_delay_ms: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            fail_next: 0,
            fail_status: 503,
            fail_probability: 0.0,
            path_contains: None,
            method: None,
            fail_retry_after: None,
            fail_without_retry_after: false,
            hang_next: 0,
            hang_ms: 0,
            latency_ms: 0,
            webhook_drop_next: 0,
            webhook_duplicate_next: 0,
            webhook_delay_ms: 0,
        }
    }
}

/// What to do to one request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestFault {
    pub error: Option<u16>,
    pub hang: Option<Duration>,
    pub latency: Duration,
}

/// What to do to one webhook delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WebhookFault {
    pub drop: bool,
    pub duplicate: bool,
    pub delay: Duration,
}

/// Configuration plus RNG.
pub struct FaultState {
    pub cfg: FaultConfig,
    rng: StdRng,
}

impl FaultState {
    pub fn new(seed: u64) -> Self {
        FaultState {
            cfg: FaultConfig::default(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Decides the faults for a `method` request to `path`.
    pub fn request_fault(&mut self, method: &str, path: &str) -> RequestFault {
        let mut out = RequestFault {
            latency: Duration::from_millis(self.cfg.latency_ms),
            ..RequestFault::default()
        };
        if !self
            .cfg
            .path_contains
            .as_deref()
            .is_none_or(|s| path.contains(s))
            || !self
                .cfg
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
        {
            return out;
        }
        if self.cfg.fail_next > 0 {
            self.cfg.fail_next -= 1;
            out.error = Some(self.cfg.fail_status);
        } else if self.cfg.fail_probability > 0.0
            && self
                .rng
                .random_bool(self.cfg.fail_probability.clamp(0.0, 1.0))
        {
            out.error = Some(self.cfg.fail_status);
        }
        if out.error.is_none() && self.cfg.hang_next > 0 {
            self.cfg.hang_next -= 1;
            out.hang = Some(Duration::from_millis(self.cfg.hang_ms));
        }
        out
    }

    /// Decides the faults for one webhook delivery.
    pub fn webhook_fault(&mut self) -> WebhookFault {
        let mut out = WebhookFault {
            delay: Duration::from_millis(self.cfg.webhook_delay_ms),
            ..WebhookFault::default()
        };
        if self.cfg.webhook_drop_next > 0 {
            self.cfg.webhook_drop_next -= 1;
            out.drop = true;
        } else if self.cfg.webhook_duplicate_next > 0 {
            self.cfg.webhook_duplicate_next -= 1;
            out.duplicate = true;
        }
        out
    }
}
