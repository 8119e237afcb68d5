//! Shoper's request bucket: a leaky bucket per access token (docs §8). Each admitted request
//! adds its cost; the bucket leaks `bandwidth` units per second on the stand-in's clock (tests
//! move the clock instead of sleeping). A request that would overflow the capacity is refused
//! with 429 and `Retry-After`, and adds nothing. Every answer reports `X-Shop-Api-Limit`
//! (capacity), `X-Shop-Api-Bandwidth` (leak per second) and `X-Shop-Api-Calls` (the fill after
//! this request, rounded up).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

/// One token's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Units in the bucket at `at`.
    pub fill: f64,
    pub at: DateTime<Utc>,
}

/// What the headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketReport {
    pub limit: u32,
    pub bandwidth: u32,
    pub calls: u32,
}

/// The outcome of asking for room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted(BucketReport),
    /// Refused; `Retry-After` seconds until the request would fit.
    Refused(BucketReport, u64),
}

impl Bucket {
    fn leak(&mut self, now: DateTime<Utc>, bandwidth: u32) {
        if now > self.at {
            let secs = (now - self.at).num_milliseconds() as f64 / 1000.0;
            self.fill = (self.fill - secs * bandwidth as f64).max(0.0);
            self.at = now;
        }
    }
}

fn calls(fill: f64) -> u32 {
    // Round up, but forgive float noise (0.999999 → 1, 1.0000001 → 1).
    (fill - 1e-6).ceil().max(0.0) as u32
}

/// All buckets, keyed by access token.
#[derive(Debug, Default)]
pub struct Buckets {
    map: HashMap<String, Bucket>,
}

impl Buckets {
    /// Admits `cost` units for `key` if they fit under `limit`.
    pub fn take(
        &mut self,
        key: &str,
        now: DateTime<Utc>,
        limit: u32,
        bandwidth: u32,
        cost: u32,
    ) -> Admission {
        let b = self
            .map
            .entry(key.to_string())
            .or_insert(Bucket { fill: 0.0, at: now });
        b.leak(now, bandwidth);
        let report = |fill: f64| BucketReport {
            limit,
            bandwidth,
            calls: calls(fill),
        };
        if b.fill + cost as f64 <= limit as f64 + 1e-6 {
            b.fill += cost as f64;
            Admission::Admitted(report(b.fill))
        } else {
            let over = b.fill + cost as f64 - limit as f64;
            let retry = if bandwidth == 0 {
                60
            } else {
                (over / bandwidth as f64).ceil().max(1.0) as u64
            };
            Admission::Refused(report(b.fill), retry)
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_refuses_and_leaks() {
        let mut b = Buckets::default();
        let t0 = Utc::now();
        for i in 1..=10 {
            assert_eq!(
                b.take("t", t0, 10, 2, 1),
                Admission::Admitted(BucketReport {
                    limit: 10,
                    bandwidth: 2,
                    calls: i
                })
            );
        }
        assert!(matches!(
            b.take("t", t0, 10, 2, 1),
            Admission::Refused(_, 1)
        ));
        assert!(matches!(
            b.take("t", t0, 10, 2, 5),
            Admission::Refused(_, 3)
        ));
        let t1 = t0 + chrono::Duration::seconds(1);
        assert!(matches!(b.take("t", t1, 10, 2, 1), Admission::Admitted(r) if r.calls == 9));
        let t2 = t1 + chrono::Duration::seconds(60);
        assert!(matches!(b.take("t", t2, 10, 2, 1), Admission::Admitted(r) if r.calls == 1));
    }
}
