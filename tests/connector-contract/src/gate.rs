//! An in-memory [`RequestGate`] for the suite: at most `tokens` requests in
//! any window of `per` (a sliding window, the way shop hosts count), every
//! admission and 429 penalty recorded so a case can check that each HTTP
//! request asked first. The shared DynamoDB gate is tested on its own
//! (`tests/harness/tests/ratelimit.rs`); here the connector is under test.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use functions::shop::{RequestGate, ShopError};
use futures::future::BoxFuture;
use tokio::time::Instant;

#[derive(Debug, Default)]
struct State {
    sent: VecDeque<Instant>,
    admitted: usize,
    penalties: Vec<Option<Duration>>,
    reports: Vec<(String, u32)>,
    held_until: Option<Instant>,
}

/// The suite's gate. Clones share their state.
#[derive(Debug, Clone)]
pub struct LocalGate {
    /// `None`: unlimited.
    window: Option<(usize, Duration)>,
    state: Arc<Mutex<State>>,
}

/// Room kept between the gate's window and the one the stand-in is
/// checked against: a request leaves a moment after it was admitted.
const MARGIN: Duration = Duration::from_millis(60);

impl LocalGate {
    pub fn unlimited() -> Self {
        LocalGate {
            window: None,
            state: Arc::default(),
        }
    }

    /// At most `tokens` requests in any `per`.
    pub fn limited(tokens: usize, per: Duration) -> Self {
        LocalGate {
            window: Some((tokens.max(1), per + MARGIN)),
            state: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests admitted so far (one per `(limit, tokens)` asked for with
    /// the main limit in it).
    pub fn admitted(&self) -> usize {
        self.state().admitted
    }

    /// Every 429's `Retry-After`, as the connector reported it.
    pub fn penalties(&self) -> Vec<Option<Duration>> {
        self.state().penalties.clone()
    }

    /// What the platform reported of its limits.
    pub fn reports(&self) -> Vec<(String, u32)> {
        self.state().reports.clone()
    }
}

impl RequestGate for LocalGate {
    fn admit<'a>(
        &'a self,
        cost: &'a [(&'static str, u32)],
    ) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(async move {
            let requests = cost
                .iter()
                .filter(|(name, _)| *name == functions::shop::REQUESTS)
                .map(|(_, n)| *n as usize)
                .sum::<usize>();
            loop {
                let wait = {
                    let mut state = self.state();
                    let now = Instant::now();
                    let held = state.held_until.filter(|until| *until > now);
                    match (held, self.window) {
                        (Some(until), _) => until - now,
                        (None, None) => {
                            state.admitted += requests;
                            return Ok(());
                        }
                        (None, Some((tokens, per))) => {
                            while state
                                .sent
                                .front()
                                .is_some_and(|t| now.duration_since(*t) >= per)
                            {
                                state.sent.pop_front();
                            }
                            if state.sent.len() + requests <= tokens {
                                state.sent.extend(std::iter::repeat_n(now, requests));
                                state.admitted += requests;
                                return Ok(());
                            }
                            state
                                .sent
                                .front()
                                .map(|t| per.saturating_sub(now.duration_since(*t)))
                                .unwrap_or(per)
                        }
                    }
                };
                tokio::time::sleep(wait).await;
            }
        })
    }

    fn penalise(&self, retry_after: Option<Duration>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut state = self.state();
            state.penalties.push(retry_after);
            state.held_until = Some(Instant::now() + retry_after.unwrap_or(Duration::ZERO));
        })
    }

    fn report<'a>(&'a self, limit: &'static str, remaining: u32) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.state().reports.push((limit.to_owned(), remaining));
        })
    }
}
