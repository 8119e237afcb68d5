//! Rate limiting as a host (not WooCommerce core) does it, and the 1-second window meter.
//!
//! The limiter is a **sliding window log over a rolling second**: a request is admitted when fewer
//! than N requests were admitted in the preceding 1000 ms; otherwise it gets 429 with
//! `Retry-After` (whole seconds, at least 1). This is stricter than a token bucket with burst N:
//! it guarantees that no 1-second window ever holds more than N admitted requests, which is
//! exactly what [`WindowMeter`] measures.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

/// Sliding-window limiter.
#[derive(Debug, Default)]
pub struct Limiter {
    per_sec: Option<u32>,
    admitted: VecDeque<Instant>,
}

impl Limiter {
    pub fn new(per_sec: Option<u32>) -> Self {
        Limiter {
            per_sec,
            admitted: VecDeque::new(),
        }
    }

    pub fn limit(&self) -> Option<u32> {
        self.per_sec
    }

    pub fn set_limit(&mut self, per_sec: Option<u32>) {
        self.per_sec = per_sec;
        self.admitted.clear();
    }

    /// `Ok(())` = admitted; `Err(secs)` = rejected, retry after `secs`.
    pub fn check(&mut self, now: Instant) -> Result<(), u64> {
        let Some(limit) = self.per_sec else {
            return Ok(());
        };
        while let Some(front) = self.admitted.front() {
            if now.duration_since(*front) >= WINDOW {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
        if self.admitted.len() < limit as usize {
            self.admitted.push_back(now);
            Ok(())
        } else {
            let wait = self
                .admitted
                .front()
                .map(|f| WINDOW.saturating_sub(now.duration_since(*f)))
                .unwrap_or(WINDOW);
            Err(wait.as_secs_f64().ceil().max(1.0) as u64)
        }
    }
}

/// Counts events in a rolling 1-second window and remembers the maximum ever seen.
#[derive(Debug, Default)]
pub struct WindowMeter {
    window: VecDeque<Instant>,
    max: usize,
}

impl WindowMeter {
    /// Records an event; returns the count in the window ending now.
    pub fn hit(&mut self, now: Instant) -> usize {
        self.window.push_back(now);
        while let Some(front) = self.window.front() {
            if now.duration_since(*front) >= WINDOW {
                self.window.pop_front();
            } else {
                break;
            }
        }
        self.max = self.max.max(self.window.len());
        self.window.len()
    }

    pub fn max(&self) -> usize {
        self.max
    }
}
