//! Fault injection: 5xx answers (next K requests or a probability), hangs (timeouts), and webhook
//! delivery faults (drop, duplicate, extra delay). Deterministic "next N" switches are applied
//! before probabilities; probabilities use a seeded RNG (`WooOptions::seed`).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The whole fault configuration (`GET/PUT /__standin/faults`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// The next N API requests answer `fail_status` without being processed.
    pub fail_next: u32,
    /// Status used for injected errors (default 503).
    pub fail_status: u16,
    /// Probability (0..1) that any API request answers `fail_status`.
    pub fail_probability: f64,
    /// Only requests whose path contains this are failed (both switches).
    pub fail_path_contains: Option<String>,
    /// `Retry-After` (seconds) sent with injected errors, if any.
    pub fail_retry_after: Option<u64>,
    /// The next N API requests hang for `hang_ms`.
    pub hang_next: u32,
    /// Probability (0..1) that a request hangs for `hang_ms`.
    pub hang_probability: f64,
    pub hang_ms: u64,
    /// Only requests whose path contains this hang.
    pub hang_path_contains: Option<String>,
    /// Hang before processing (the write does not happen if the client gives up) instead of
    /// after it (the default: the write happens, the client just never hears about it).
    pub hang_before_processing: bool,
    /// Added to every API request before it is processed (a slow PHP host), in ms.
    pub latency_ms: u64,
    /// At most this many API requests in flight (PHP workers); more get `fail_status`
    /// immediately.
    pub max_concurrent: Option<u32>,
    /// Base delay between an event and its webhook delivery (default 50 ms).
    pub webhook_delay_ms: u64,
    /// Webhook HTTP timeout (WooCommerce: 60 s).
    pub webhook_timeout_ms: u64,
    /// The next N deliveries are lost (never sent).
    pub webhook_drop_next: u32,
    pub webhook_drop_probability: f64,
    /// The next N deliveries are sent twice (same body, same delivery id).
    pub webhook_duplicate_next: u32,
    pub webhook_duplicate_probability: f64,
    /// The next N deliveries wait `webhook_extra_delay_ms` more.
    pub webhook_extra_delay_next: u32,
    pub webhook_extra_delay_probability: f64,
    pub webhook_extra_delay_ms: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            fail_next: 0,
            fail_status: 503,
            fail_probability: 0.0,
            fail_path_contains: None,
            fail_retry_after: None,
            hang_next: 0,
            hang_probability: 0.0,
            hang_ms: 0,
            hang_path_contains: None,
            hang_before_processing: false,
            latency_ms: 0,
            max_concurrent: None,
            webhook_delay_ms: 50,
            webhook_timeout_ms: 60_000,
            webhook_drop_next: 0,
            webhook_drop_probability: 0.0,
            webhook_duplicate_next: 0,
            webhook_duplicate_probability: 0.0,
            webhook_extra_delay_next: 0,
            webhook_extra_delay_probability: 0.0,
            webhook_extra_delay_ms: 0,
        }
    }
}

/// What to do to one API request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestFault {
    pub error: Option<u16>,
    pub hang: Option<Duration>,
    pub hang_before: bool,
}

/// What to do to one webhook delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WebhookFault {
    pub drop: bool,
    pub duplicate: bool,
    pub delay: Duration,
}

/// Fault configuration plus its RNG.
pub struct FaultState {
    pub cfg: FaultConfig,
    rng: StdRng,
}

impl FaultState {
    pub fn new(cfg: FaultConfig, seed: u64) -> Self {
        FaultState {
            cfg,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn roll(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// Decides the faults for a request to `path`.
    pub fn request_fault(&mut self, path: &str) -> RequestFault {
        let mut out = RequestFault::default();
        let fail_applies = self
            .cfg
            .fail_path_contains
            .as_deref()
            .is_none_or(|s| path.contains(s));
        if fail_applies {
            if self.cfg.fail_next > 0 {
                self.cfg.fail_next -= 1;
                out.error = Some(self.cfg.fail_status);
            } else if self.roll(self.cfg.fail_probability) {
                out.error = Some(self.cfg.fail_status);
            }
        }
        if out.error.is_some() {
            return out;
        }
        let hang_applies = self
            .cfg
            .hang_path_contains
            .as_deref()
            .is_none_or(|s| path.contains(s));
        if hang_applies {
            let hang = if self.cfg.hang_next > 0 {
                self.cfg.hang_next -= 1;
                true
            } else {
                self.roll(self.cfg.hang_probability)
            };
            if hang {
                out.hang = Some(Duration::from_millis(self.cfg.hang_ms));
                out.hang_before = self.cfg.hang_before_processing;
            }
        }
        out
    }

    /// Decides the faults for one webhook delivery.
    pub fn webhook_fault(&mut self) -> WebhookFault {
        let mut out = WebhookFault {
            delay: Duration::from_millis(self.cfg.webhook_delay_ms),
            ..Default::default()
        };
        if self.cfg.webhook_drop_next > 0 {
            self.cfg.webhook_drop_next -= 1;
            out.drop = true;
        } else if self.roll(self.cfg.webhook_drop_probability) {
            out.drop = true;
        }
        if self.cfg.webhook_duplicate_next > 0 {
            self.cfg.webhook_duplicate_next -= 1;
            out.duplicate = true;
        } else if self.roll(self.cfg.webhook_duplicate_probability) {
            out.duplicate = true;
        }
        let extra = if self.cfg.webhook_extra_delay_next > 0 {
            self.cfg.webhook_extra_delay_next -= 1;
            true
        } else {
            self.roll(self.cfg.webhook_extra_delay_probability)
        };
        if extra {
            out.delay += Duration::from_millis(self.cfg.webhook_extra_delay_ms);
        }
        out
    }
}
