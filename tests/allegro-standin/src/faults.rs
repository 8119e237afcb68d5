//! Fault injection for API and OAuth requests: answer an error status for the next N requests
//! (optionally only for paths containing a string) or with a probability, add latency, or hang.
//! "Next N" switches come before probabilities; probabilities use a seeded RNG.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The fault configuration (`GET/PUT /__standin/faults`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// The next N requests answer `fail_status` without being processed.
    pub fail_next: u32,
    /// Status of injected errors (default 503).
    pub fail_status: u16,
    /// Probability (0..1) that a request answers `fail_status`.
    pub fail_probability: f64,
    /// Only requests whose path contains this are failed or hung.
    pub path_contains: Option<String>,
    /// `Retry-After` (seconds) on injected errors, if any.
    pub fail_retry_after: Option<u64>,
    /// The next N requests are processed, then hang `hang_ms` before answering.
    pub hang_next: u32,
    pub hang_ms: u64,
    /// Added to every request before it is processed, in ms.
    pub latency_ms: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            fail_next: 0,
            fail_status: 503,
            fail_probability: 0.0,
            path_contains: None,
            fail_retry_after: None,
            hang_next: 0,
            hang_ms: 0,
            latency_ms: 0,
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

    /// Decides the faults for a request to `path`.
    pub fn request_fault(&mut self, path: &str) -> RequestFault {
        let mut out = RequestFault {
            latency: Duration::from_millis(self.cfg.latency_ms),
            ..RequestFault::default()
        };
        if !self
            .cfg
            .path_contains
            .as_deref()
            .is_none_or(|s| path.contains(s))
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
}
