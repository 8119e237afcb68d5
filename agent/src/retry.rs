//! One retry policy for every loop that waits for something outside to come
//! back (SQL Server, SQS, Optima): exponential from `first` to `cap`, with
//! jitter so that agents restarted together do not knock in step, and no
//! limit on attempts (the agent waits for as long as it takes, and says so).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// The delays between attempts: `first`, then doubling up to `cap`, each
/// with jitter. Start a new one after a success.
pub fn delays(first: Duration, cap: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(cap)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Waits out retries: `next()` gives the delay before the next attempt, and
/// `reset()` after a success starts again from the first delay.
pub struct Backoff {
    first: Duration,
    cap: Duration,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    failing: bool,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            first,
            cap,
            delays: Box::new(delays(first, cap)),
            failing: false,
        }
    }

    /// The delay before the next attempt (after a failure).
    pub fn next_delay(&mut self) -> Duration {
        self.failing = true;
        self.delays.next().unwrap_or(self.cap)
    }

    /// After a success: true when it ends a run of failures.
    pub fn reset(&mut self) -> bool {
        let was_failing = self.failing;
        if was_failing {
            self.delays = Box::new(delays(self.first, self.cap));
            self.failing = false;
        }
        was_failing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_start_again_after_a_success() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let first = backoff.next_delay();
        assert!(
            first >= Duration::from_secs(1) && first <= Duration::from_secs(2),
            "{first:?}"
        );
        let later: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        assert!(
            later.iter().all(|d| *d <= Duration::from_secs(16)),
            "{later:?}"
        );
        assert!(
            later[6..].iter().all(|d| *d >= Duration::from_secs(8)),
            "{later:?}"
        );
        assert!(backoff.reset(), "a success ends the failures");
        assert!(!backoff.reset(), "nothing to end the second time");
        let again = backoff.next_delay();
        assert!(again <= Duration::from_secs(2), "{again:?}");
    }
}
