//! One token bucket per shop, kept in the state table so every concurrent
//! Lambda instance that writes to a shop draws from the same limit.
//!
//! On the wire: item `pk = "bucket"`, `sk = <shop id>`, with `tokens` (N,
//! in millitokens: whole numbers, so refills never drift as floats would)
//! and `updated_ms` (N, Unix milliseconds of the last change). A caller
//! reads the item (strongly consistent), refills it for the time passed
//! (`rate` tokens per second is exactly `rate` millitokens per millisecond),
//! and, when enough is there, writes the remainder back with an UpdateItem
//! that holds only if `tokens` and `updated_ms` are still what it read. Two
//! instances racing for the last token cannot both win: the loser's
//! condition fails, it reads again and is told to wait. No item means a
//! full bucket.
//!
//! When a shop answers 429 anyway (its own limit is stricter, or someone
//! else uses the same key), [`RateLimiter::penalise`] empties the bucket and
//! moves `updated_ms` to the end of the shop's `Retry-After`: nothing
//! refills before then, so every instance holds back, not just the one that
//! was told.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use thiserror::Error;

use crate::aws::describe_error;
use crate::dynamo::s;
use crate::shop::{REQUESTS, RateLimit, RequestGate, ShopError};
use futures::future::BoxFuture;

/// A waiting caller sleeps 2.5 % of a token's interval past the moment the
/// token is due. Tokens are granted on time, but the requests they pay for
/// reach the shop after a DynamoDB write whose latency varies; a shop that
/// counts requests in a sliding window (hosts do) could otherwise see
/// `tokens + 1` when one write was slow and the next fast. Over a window
/// the margin adds up to 2.5 % of it, at any rate.
fn pacing_margin(limit: &RateLimit) -> Duration {
    let per_token = limit.per / limit.tokens.max(1);
    per_token * 25 / 1000
}

/// How many times a caller re-reads after losing a race before it gives up
/// for now (and is told to come back shortly).
const MAX_ATTEMPTS: u32 = 8;
/// The wait a caller gets after losing that many races in a row.
const CONTENDED_WAIT: Duration = Duration::from_millis(20);

#[derive(Debug, Error)]
pub enum RateLimitError {
    #[error("DynamoDB {operation} on {table} failed: {message}")]
    Dynamo {
        operation: &'static str,
        table: String,
        message: String,
    },
    #[error("rate bucket {shop} is malformed: {problem}")]
    Malformed { shop: String, problem: String },
    /// A request the bucket can never grant (more than its burst, a zero rate).
    #[error("rate bucket {shop}: {problem}")]
    Invalid { shop: String, problem: String },
}

/// How long one call may keep trying.
#[derive(Debug, Clone, Copy)]
pub struct ShopLimits {
    /// Tries of one call (429s and 5xx included) before giving up for now.
    pub attempts: u32,
    /// The longest a call waits for the shop's limit (tokens, 429s) before
    /// giving up for now.
    pub max_token_wait: Duration,
}

/// A shop's limits as its connector's [`RequestGate`]: each request's cost
/// from the shop's shared buckets (one per named limit) before it is sent,
/// a 429 empties the request bucket for every instance, and what the
/// platform reports it has left lowers the bucket to that.
#[derive(Debug, Clone)]
pub struct ShopGate {
    limiter: RateLimiter,
    shop: String,
    limits: BTreeMap<String, RateLimit>,
    /// Limits whose bucket is not the shop's own (an application's limit
    /// shared by every shop that uses the application), by name.
    shared: BTreeMap<String, String>,
    max_wait: Duration,
}

impl ShopGate {
    /// The shop's named `limits`; a request waits at most `max_wait` for
    /// its tokens.
    pub fn new(
        limiter: RateLimiter,
        shop: impl Into<String>,
        limits: BTreeMap<String, RateLimit>,
        max_wait: Duration,
    ) -> Self {
        ShopGate {
            limiter,
            shop: shop.into(),
            limits,
            shared: BTreeMap::new(),
            max_wait,
        }
    }

    /// The limit `limit` is counted in bucket `key`, shared with every
    /// gate given the same key (Allegro's 9,000 requests a minute belong
    /// to the application, whichever seller's shop makes them).
    pub fn sharing(mut self, limit: &str, key: impl Into<String>) -> Self {
        self.shared.insert(limit.to_owned(), key.into());
        self
    }

    /// The bucket this gate counts `limit` in.
    pub fn bucket_of(&self, limit: &str) -> String {
        self.shared
            .get(limit)
            .cloned()
            .unwrap_or_else(|| Self::bucket_key(&self.shop, limit))
    }

    /// The bucket of one named limit: the shop's id for its requests (as
    /// stored before limits had names), `<shop>#<limit>` for the others.
    pub fn bucket_key(shop: &str, limit: &str) -> String {
        if limit == REQUESTS {
            shop.to_owned()
        } else {
            format!("{shop}#{limit}")
        }
    }

    fn limit(&self, name: &str) -> Result<&RateLimit, ShopError> {
        self.limits.get(name).ok_or_else(|| {
            ShopError::Permanent(format!(
                "the connector asked for the limit `{name}`, which shop {} does not have",
                self.shop
            ))
        })
    }
}

/// The hold after a 429 that names no `Retry-After`.
const DEFAULT_PENALTY: Duration = Duration::from_secs(1);

impl RequestGate for ShopGate {
    fn admit<'a>(
        &'a self,
        cost: &'a [(&'static str, u32)],
    ) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(async move {
            for (name, tokens) in cost {
                let limit = self.limit(name)?;
                let granted = self
                    .limiter
                    .acquire_within(&self.bucket_of(name), *tokens, limit, self.max_wait)
                    .await
                    .map_err(|err| {
                        ShopError::Transient(format!("the shop's rate bucket: {err}"))
                    })?;
                if !granted {
                    return Err(ShopError::RateLimited { retry_after: None });
                }
            }
            Ok(())
        })
    }

    fn penalise(&self, retry_after: Option<Duration>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let wait = retry_after.unwrap_or(DEFAULT_PENALTY);
            if let Err(err) = self.limiter.penalise(&self.bucket_of(REQUESTS), wait).await {
                tracing::warn!(shop = %self.shop, error = %err, "cannot hold the shop's bucket back after a 429");
            }
        })
    }

    fn report<'a>(&'a self, limit: &'static str, remaining: u32) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Ok(rate) = self.limit(limit) else {
                return;
            };
            let key = self.bucket_of(limit);
            if let Err(err) = self.limiter.lower_to(&key, remaining, rate).await {
                tracing::warn!(shop = %self.shop, limit, error = %err, "cannot record what the shop reported of its limit");
            }
        })
    }
}

/// How a rate-limited shop call failed.
#[derive(Debug, Error)]
pub enum ShopCallError {
    #[error(transparent)]
    RateLimit(#[from] RateLimitError),
    /// Still failing after every attempt (or no token in time): try later.
    #[error("{0}")]
    Retryable(ShopError),
    /// Refused for good (credentials, a request the shop rejects).
    #[error("the shop refused: {0}")]
    Permanent(ShopError),
}

/// A bucket as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Millitokens.
    pub tokens: i64,
    /// Unix milliseconds; in the future while the shop's penalty lasts.
    pub updated_ms: i64,
}

/// What to do with a request for tokens, decided from the stored bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Granted: store this bucket.
    Grant(Bucket),
    /// Not enough yet: ask again after this many milliseconds.
    Wait(u64),
}

/// The token-bucket arithmetic, pure: `n` tokens of `limit` (`tokens`
/// every `per`, room for its burst) from the stored bucket (`None`: full)
/// at `now_ms`. Refill is `tokens × 1000` millitokens per `per`, counted
/// in whole millitokens from `updated_ms` (a fraction is lost at a grant:
/// never more than the limit).
pub fn decide(stored: Option<Bucket>, now_ms: i64, n: u32, limit: &RateLimit) -> Decision {
    let capacity = i128::from(limit.capacity()) * 1000;
    let need = i128::from(n) * 1000;
    let per_ms = i128::try_from(limit.per.as_millis())
        .unwrap_or(i128::MAX)
        .max(1);
    // Millitokens per `per_ms` milliseconds.
    let rate = i128::from(limit.tokens.max(1)) * 1000;
    let (tokens, updated) = match stored {
        Some(b) => (i128::from(b.tokens), i128::from(b.updated_ms)),
        None => (capacity, i128::from(now_ms)),
    };
    let now = i128::from(now_ms);
    // Before updated_ms (a penalty, or another instance's clock a little
    // ahead) nothing refills.
    let elapsed = (now - updated).max(0);
    let available = (tokens.saturating_add(elapsed.saturating_mul(rate) / per_ms)).min(capacity);
    if available >= need {
        // Never move updated_ms backwards: that would refill a penalty.
        let updated_ms = updated.max(now);
        return Decision::Grant(Bucket {
            tokens: clamp_i64(available - need),
            updated_ms: clamp_i64(updated_ms),
        });
    }
    // When the bucket, refilled exactly from `updated_ms`, holds `need`:
    // counted from the stored tokens, so a fraction lost to flooring
    // `available` does not add a millisecond.
    let blocked = (updated - now).max(0);
    let due = ((need - tokens).saturating_mul(per_ms) + rate - 1) / rate;
    let refill = (due - elapsed).max(0);
    Decision::Wait(u64::try_from(blocked.saturating_add(refill)).unwrap_or(u64::MAX))
}

fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// What [`RateLimiter::acquire`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The tokens were taken.
    Granted,
    /// Nothing was taken: ask again after this long. It can be zero (the
    /// tokens came due while the bucket was being read), and that is still
    /// not a grant.
    Wait(Duration),
}

/// The shared buckets in the state table.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// When this instance's granted requests left, per bucket, over the
    /// limit's window: see [`RateLimiter::pace`].
    sent: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
    /// One bucket read-and-write at a time per bucket in this instance:
    /// concurrent callers of one instance would otherwise race each other's
    /// conditional writes, and every lost race costs two more DynamoDB calls.
    turns: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

fn num(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn get_i64(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

impl RateLimiter {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        RateLimiter {
            client,
            table: table.into(),
            sent: Arc::default(),
            turns: Arc::default(),
        }
    }

    /// The lock that gives this instance's callers of bucket `shop` their
    /// turn at it.
    fn turn(&self, shop: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        turns.entry(shop.to_owned()).or_default().clone()
    }

    fn error(
        &self,
        operation: &'static str,
        err: &(dyn std::error::Error + 'static),
    ) -> RateLimitError {
        RateLimitError::Dynamo {
            operation,
            table: self.table.clone(),
            message: describe_error(err),
        }
    }

    async fn read(&self, shop: &str) -> Result<Option<Bucket>, RateLimitError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s("bucket"))
            .key("sk", s(shop))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| self.error("GetItem", &err))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        match (get_i64(&item, "tokens"), get_i64(&item, "updated_ms")) {
            (Some(tokens), Some(updated_ms)) => Ok(Some(Bucket { tokens, updated_ms })),
            _ => Err(RateLimitError::Malformed {
                shop: shop.to_owned(),
                problem: "tokens or updated_ms missing or not a number".into(),
            }),
        }
    }

    /// Takes `n` tokens of `limit` from the bucket `shop` (a shop's id, or
    /// [`ShopGate::bucket_key`] for its other limits), or says how long to
    /// wait before asking again (nothing was taken).
    pub async fn acquire(
        &self,
        shop: &str,
        n: u32,
        limit: &RateLimit,
    ) -> Result<Acquired, RateLimitError> {
        let invalid = |problem: String| RateLimitError::Invalid {
            shop: shop.to_owned(),
            problem,
        };
        if let Some(problem) = limit.problem() {
            return Err(invalid(problem.into()));
        }
        if n > limit.capacity() {
            return Err(invalid(format!(
                "{n} tokens can never fit a burst of {}",
                limit.capacity()
            )));
        }
        if n == 0 {
            return Ok(Acquired::Granted);
        }
        let turn = self.turn(shop);
        let _turn = turn.lock().await;
        for _ in 0..MAX_ATTEMPTS {
            // The clock is read before the bucket, not after: a grant then
            // dates from when it was asked for, and a wait ends when the
            // token is due, not a read's latency later. Otherwise every
            // token after a wait comes that much late and, with a burst of
            // 1, the lateness adds up request after request.
            let asked = tokio::time::Instant::now();
            let now_ms = Utc::now().timestamp_millis();
            let stored = self.read(shop).await?;
            let next = match decide(stored, now_ms, n, limit) {
                Decision::Wait(ms) => {
                    return Ok(Acquired::Wait(
                        Duration::from_millis(ms).saturating_sub(asked.elapsed()),
                    ));
                }
                Decision::Grant(next) => next,
            };
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s("bucket"))
                .key("sk", s(shop))
                .update_expression("SET #t = :t, #u = :u")
                .expression_attribute_names("#t", "tokens")
                .expression_attribute_names("#u", "updated_ms")
                .expression_attribute_values(":t", num(next.tokens))
                .expression_attribute_values(":u", num(next.updated_ms));
            update = match stored {
                None => update.condition_expression("attribute_not_exists(pk)"),
                Some(old) => update
                    .condition_expression("#t = :old_t AND #u = :old_u")
                    .expression_attribute_values(":old_t", num(old.tokens))
                    .expression_attribute_values(":old_u", num(old.updated_ms)),
            };
            match crate::dynamo::written(update.send().await) {
                Ok(Some(_)) => return Ok(Acquired::Granted),
                // Another instance changed the bucket since we read it.
                Ok(None) => continue,
                Err(err) => return Err(self.error("UpdateItem", &err)),
            }
        }
        tracing::debug!(
            shop,
            attempts = MAX_ATTEMPTS,
            "rate bucket contended; backing off"
        );
        Ok(Acquired::Wait(CONTENDED_WAIT))
    }

    /// [`acquire`](Self::acquire), sleeping between attempts, until granted
    /// (`true`) or until granting would take longer than `max_wait` (`false`:
    /// hand the work back to the queue rather than sleep past a timeout).
    pub async fn acquire_within(
        &self,
        shop: &str,
        n: u32,
        limit: &RateLimit,
        max_wait: Duration,
    ) -> Result<bool, RateLimitError> {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            let wait = match self.acquire(shop, n, limit).await? {
                Acquired::Granted => {
                    self.pace(shop, n, limit).await;
                    return Ok(true);
                }
                Acquired::Wait(wait) => wait,
            };
            if tokio::time::Instant::now() + wait > deadline {
                return Ok(false);
            }
            tokio::time::sleep(wait + pacing_margin(limit)).await;
        }
    }

    /// Holds a granted request back until this instance has sent fewer
    /// than `tokens` in the last `per` (plus the pacing margin). A grant is
    /// dated when it was asked for, but the request leaves after the
    /// bucket's DynamoDB calls, whose latency varies: a slow grant followed
    /// by fast ones would put `tokens + 1` requests into a host's sliding
    /// window. Locally the moment a request leaves is known exactly.
    async fn pace(&self, shop: &str, n: u32, limit: &RateLimit) {
        let window = limit.per + pacing_margin(limit) * limit.tokens.max(1);
        let rate = usize::try_from(limit.tokens.max(1)).unwrap_or(usize::MAX);
        loop {
            let wait = {
                let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
                let times = sent.entry(shop.to_owned()).or_default();
                let now = Instant::now();
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= window)
                {
                    times.pop_front();
                }
                if times.len() < rate {
                    times.extend(std::iter::repeat_n(now, n.max(1) as usize));
                    return;
                }
                times
                    .front()
                    .map(|t| window.saturating_sub(now.duration_since(*t)))
                    .unwrap_or(window)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One shop call, retried: the connector takes a token before each of
    /// its requests ([`ShopGate`]) and holds every instance back after a
    /// 429, so a 429 is tried again (its requests wait for their tokens)
    /// until `max_token_wait` has passed; 5xx and timeouts back off (0.5 s,
    /// doubling to 8 s, with jitter); `attempts` tries in all. Used by `shop-push` and the
    /// `poller` alike. A refusal of our credentials (401/403) is recorded
    /// for the e-mail alert ([`crate::alerts::record_refusal`]).
    pub async fn call_shop<'a, T, F>(
        &self,
        shop: &str,
        limits: ShopLimits,
        mut request: F,
    ) -> Result<T, ShopCallError>
    where
        F: FnMut() -> futures::future::BoxFuture<'a, Result<T, ShopError>>,
    {
        let started = Instant::now();
        // Doubling from half a second, with jitter so that invocations
        // turned away together do not come back together.
        let mut backoff = backon::BackoffBuilder::build(
            backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(8))
                .with_jitter()
                .without_max_times(),
        );
        let mut last = None;
        for _ in 0..limits.attempts.max(1) {
            match request().await {
                Ok(value) => return Ok(value),
                Err(err @ ShopError::RateLimited { .. }) => {
                    if started.elapsed() >= limits.max_token_wait {
                        return Err(ShopCallError::Retryable(err));
                    }
                    last = Some(err);
                }
                Err(err @ ShopError::Transient(_)) => {
                    let wait = backoff.next().unwrap_or(Duration::from_secs(8));
                    tracing::warn!(%shop, error = %err, retry_in = ?wait, "shop unavailable; backing off");
                    tokio::time::sleep(wait).await;
                    last = Some(err);
                }
                Err(err @ ShopError::Auth(_)) => {
                    // Kept for the watchdog's alert (alerts.rs): every shop
                    // call passes here, whichever function makes it.
                    crate::alerts::record_refusal(
                        &self.client,
                        &self.table,
                        shop,
                        &err.to_string(),
                    )
                    .await;
                    return Err(ShopCallError::Permanent(err));
                }
                Err(err) => return Err(ShopCallError::Permanent(err)),
            }
        }
        Err(ShopCallError::Retryable(
            last.unwrap_or(ShopError::Transient("no attempt made".into())),
        ))
    }

    /// The platform said it has `remaining` tokens of the bucket's limit
    /// left: the stored bucket is lowered to that if it holds more (another
    /// client of the same account spends them too). It is never raised.
    pub async fn lower_to(
        &self,
        shop: &str,
        remaining: u32,
        limit: &RateLimit,
    ) -> Result<(), RateLimitError> {
        let reported = i64::from(remaining) * 1000;
        for _ in 0..MAX_ATTEMPTS {
            let now_ms = Utc::now().timestamp_millis();
            let stored = self.read(shop).await?;
            // What the bucket holds now: taking nothing refills it.
            let Decision::Grant(now) = decide(stored, now_ms, 0, limit) else {
                return Ok(());
            };
            if now.tokens <= reported {
                return Ok(());
            }
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s("bucket"))
                .key("sk", s(shop))
                .update_expression("SET #t = :t, #u = :u")
                .expression_attribute_names("#t", "tokens")
                .expression_attribute_names("#u", "updated_ms")
                .expression_attribute_values(":t", num(reported))
                .expression_attribute_values(":u", num(now.updated_ms));
            update = match stored {
                None => update.condition_expression("attribute_not_exists(pk)"),
                Some(old) => update
                    .condition_expression("#t = :old_t AND #u = :old_u")
                    .expression_attribute_values(":old_t", num(old.tokens))
                    .expression_attribute_values(":old_u", num(old.updated_ms)),
            };
            match crate::dynamo::written(update.send().await) {
                Ok(Some(_)) => return Ok(()),
                Ok(None) => continue,
                Err(err) => return Err(self.error("UpdateItem", &err)),
            }
        }
        Ok(())
    }

    /// Empties the shop's bucket until `retry_after` from now (the shop
    /// answered 429). A longer penalty already in place is kept.
    pub async fn penalise(&self, shop: &str, retry_after: Duration) -> Result<(), RateLimitError> {
        let wait_ms = i64::try_from(retry_after.as_millis()).unwrap_or(i64::MAX);
        let until = Utc::now().timestamp_millis().saturating_add(wait_ms);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("bucket"))
            .key("sk", s(shop))
            .update_expression("SET #t = :zero, #u = :until")
            .condition_expression("attribute_not_exists(pk) OR #u < :until")
            .expression_attribute_names("#t", "tokens")
            .expression_attribute_names("#u", "updated_ms")
            .expression_attribute_values(":zero", num(0))
            .expression_attribute_values(":until", num(until))
            .send()
            .await;
        match crate::dynamo::written(result) {
            Ok(Some(_)) => {
                tracing::info!(
                    shop,
                    retry_after_ms = wait_ms,
                    "shop rate limit hit; bucket emptied"
                );
                Ok(())
            }
            // A longer penalty is already in place.
            Ok(None) => Ok(()),
            Err(err) => Err(self.error("UpdateItem", &err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_790_000_000_000;

    /// `rate` a second with room for `burst`.
    fn lim(rate: u32, burst: u32) -> RateLimit {
        RateLimit::per_second(rate).with_burst(burst)
    }

    fn bucket(tokens: i64, updated_ms: i64) -> Option<Bucket> {
        Some(Bucket { tokens, updated_ms })
    }

    #[test]
    fn a_missing_bucket_is_full() {
        assert_eq!(
            decide(None, T, 2, &lim(5, 5)),
            Decision::Grant(Bucket {
                tokens: 3000,
                updated_ms: T
            })
        );
    }

    #[test]
    fn refill_is_exact_in_millitokens_and_capped_at_the_burst() {
        // 5/s: 5 millitokens per ms, one token per 200 ms.
        assert_eq!(
            decide(bucket(0, T), T + 199, 1, &lim(5, 5)),
            Decision::Wait(1)
        );
        assert_eq!(
            decide(bucket(0, T), T + 200, 1, &lim(5, 5)),
            Decision::Grant(Bucket {
                tokens: 0,
                updated_ms: T + 200
            })
        );
        assert_eq!(
            decide(bucket(0, T), T + 3_600_000, 1, &lim(5, 5)),
            Decision::Grant(Bucket {
                tokens: 4000,
                updated_ms: T + 3_600_000
            })
        );
        // 3 tokens at 7/s from empty: 3000 / 7 = 428.57 → 429 ms.
        assert_eq!(decide(bucket(0, T), T, 3, &lim(7, 10)), Decision::Wait(429));
    }

    #[test]
    fn a_penalty_blocks_until_its_end_and_then_refills() {
        let penalised = bucket(0, T + 1000);
        assert_eq!(decide(penalised, T, 1, &lim(5, 5)), Decision::Wait(1200));
        assert_eq!(
            decide(penalised, T + 1000, 1, &lim(5, 5)),
            Decision::Wait(200)
        );
        assert!(matches!(
            decide(penalised, T + 1200, 1, &lim(5, 5)),
            Decision::Grant(_)
        ));
        // Tokens left while updated_ms is ahead (clock skew): granted, and
        // updated_ms does not move back.
        assert_eq!(
            decide(bucket(2000, T + 5), T, 1, &lim(5, 5)),
            Decision::Grant(Bucket {
                tokens: 1000,
                updated_ms: T + 5
            })
        );
    }

    #[test]
    fn the_pacing_margin_is_two_and_a_half_percent_of_a_tokens_interval() {
        // 4/s: a token every 250 ms, 2.5 % of it is 6.25 ms.
        assert_eq!(pacing_margin(&lim(4, 4)), Duration::from_micros(6_250));
        assert_eq!(pacing_margin(&lim(1, 1)), Duration::from_millis(25));
        // 100 a minute: a token every 600 ms, 2.5 % of it is 15 ms.
        assert_eq!(
            pacing_margin(&RateLimit::per_minute(100)),
            Duration::from_millis(15)
        );
        // A zero rate is refused before it gets here; it must not divide by zero.
        assert_eq!(pacing_margin(&lim(0, 1)), Duration::from_millis(25));
    }

    #[test]
    fn a_limit_per_minute_refills_by_its_own_period() {
        // BaseLinker's 100 a minute: 1.667 tokens a second, a token every 600 ms.
        let minute = RateLimit::per_minute(100).with_burst(1);
        assert_eq!(decide(bucket(0, T), T, 1, &minute), Decision::Wait(600));
        assert_eq!(decide(bucket(0, T), T + 599, 1, &minute), Decision::Wait(1));
        assert_eq!(
            decide(bucket(0, T), T + 600, 1, &minute),
            Decision::Grant(Bucket {
                tokens: 0,
                updated_ms: T + 600
            })
        );
        // A fraction of a millitoken is not granted: 1 ms of 100/min is
        // 1.667 millitokens, of which 1 counts.
        assert_eq!(
            decide(bucket(0, T), T + 1, 0, &minute),
            Decision::Grant(Bucket {
                tokens: 1,
                updated_ms: T + 1
            })
        );
        // Allegro's 9,000 a minute, burst 9,000: 150 millitokens a ms; a
        // full bucket less 9,000 takes a minute to refill.
        let allegro = RateLimit::per_minute(9000);
        assert_eq!(
            decide(None, T, 9000, &allegro),
            Decision::Grant(Bucket {
                tokens: 0,
                updated_ms: T
            })
        );
        assert_eq!(
            decide(bucket(0, T), T, 9000, &allegro),
            Decision::Wait(60_000)
        );
    }

    #[test]
    fn values_past_a_stored_number_are_clamped_to_its_ends() {
        assert_eq!(clamp_i64(i128::from(i64::MAX) + 1), i64::MAX);
        assert_eq!(clamp_i64(i128::from(i64::MIN) - 1), i64::MIN);
        assert_eq!(clamp_i64(-5), -5);
    }

    /// `call_shop` never touches the bucket itself (the connector's gate
    /// does), so a client that can reach nothing is enough (a refusal's
    /// record for the alert fails and is only logged).
    fn offline_limiter() -> RateLimiter {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("eu-central-1"))
            .build();
        RateLimiter::new(aws_sdk_dynamodb::Client::from_conf(config), "unused")
    }

    /// A shop that answers each call with the next scripted answer after
    /// `each_takes` (the time its gate made the request wait), and records
    /// when each call began on tokio's (paused) clock.
    struct ScriptedShop {
        answers: Mutex<VecDeque<Result<u32, ShopError>>>,
        calls: Mutex<Vec<Duration>>,
        each_takes: Duration,
        started: Instant,
    }

    impl ScriptedShop {
        fn new(answers: Vec<Result<u32, ShopError>>, each_takes: Duration) -> Arc<Self> {
            Arc::new(ScriptedShop {
                answers: Mutex::new(answers.into()),
                calls: Mutex::default(),
                each_takes,
                started: Instant::now(),
            })
        }

        fn request(self: &Arc<Self>) -> BoxFuture<'static, Result<u32, ShopError>> {
            let shop = Arc::clone(self);
            Box::pin(async move {
                shop.calls
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(shop.started.elapsed());
                tokio::time::sleep(shop.each_takes).await;
                shop.answers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop_front()
                    .unwrap_or_else(|| Err(ShopError::Permanent("script ran out".into())))
            })
        }

        fn calls(&self) -> Vec<Duration> {
            self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }
    }

    fn limits(attempts: u32, max_token_wait: Duration) -> ShopLimits {
        ShopLimits {
            attempts,
            max_token_wait,
        }
    }

    fn rate_limited() -> Result<u32, ShopError> {
        Err(ShopError::RateLimited { retry_after: None })
    }

    fn down(n: u32) -> Result<u32, ShopError> {
        Err(ShopError::Transient(format!("503 number {n}")))
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_is_asked_again_at_once_and_its_answer_returned() {
        let shop = ScriptedShop::new(vec![rate_limited(), Ok(7)], Duration::ZERO);
        let got = offline_limiter()
            .call_shop("s", limits(4, Duration::from_secs(30)), || shop.request())
            .await;
        assert!(matches!(got, Ok(7)), "{got:?}");
        // The gate holds the retry back for the shop's Retry-After; call_shop
        // adds no back-off of its own on top.
        assert_eq!(shop.calls(), vec![Duration::ZERO, Duration::ZERO]);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_answers_are_retried_until_the_token_wait_is_spent_then_left_for_later() {
        // Each request waits 500 ms at the gate: the second answer comes at
        // exactly 1 s, the limit, and is the last.
        let shop = ScriptedShop::new(vec![rate_limited(); 10], Duration::from_millis(500));
        let got = offline_limiter()
            .call_shop("s", limits(10, Duration::from_secs(1)), || shop.request())
            .await;
        assert!(
            matches!(
                got,
                Err(ShopCallError::Retryable(ShopError::RateLimited { .. }))
            ),
            "{got:?}"
        );
        assert_eq!(shop.calls().len(), 2, "{:?}", shop.calls());
    }

    #[tokio::test(start_paused = true)]
    async fn a_shop_down_is_backed_off_from_half_a_second_doubling_and_left_after_the_last_attempt()
    {
        let shop = ScriptedShop::new((1..=10).map(down).collect(), Duration::ZERO);
        let got = offline_limiter()
            .call_shop("s", limits(4, Duration::from_secs(30)), || shop.request())
            .await;
        // The last failure is what is reported.
        match got {
            Err(ShopCallError::Retryable(ShopError::Transient(message))) => {
                assert_eq!(message, "503 number 4");
            }
            other => panic!("{other:?}"),
        }
        let calls = shop.calls();
        assert_eq!(calls.len(), 4, "{calls:?}");
        // Gaps of [0.5, 1), [1, 2), [2, 4) s: doubling, with jitter below
        // the next step.
        for (i, pair) in calls.windows(2).enumerate() {
            let gap = pair[1] - pair[0];
            let floor = Duration::from_millis(500 << i);
            assert!(gap >= floor && gap < floor * 2, "gap {i}: {gap:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_shop_back_after_a_503_answers_the_same_call() {
        let shop = ScriptedShop::new(vec![down(1), Ok(3)], Duration::ZERO);
        let got = offline_limiter()
            .call_shop("s", limits(4, Duration::from_secs(30)), || shop.request())
            .await;
        assert!(matches!(got, Ok(3)), "{got:?}");
        assert_eq!(shop.calls().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_not_asked_again() {
        for refusal in [
            ShopError::Auth("401".into()),
            ShopError::Permanent("400".into()),
        ] {
            let shop = ScriptedShop::new(vec![Err(refusal), Ok(1)], Duration::ZERO);
            let got = offline_limiter()
                .call_shop("s", limits(4, Duration::from_secs(30)), || shop.request())
                .await;
            assert!(matches!(got, Err(ShopCallError::Permanent(_))), "{got:?}");
            assert_eq!(shop.calls().len(), 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn zero_attempts_still_make_one() {
        let shop = ScriptedShop::new(vec![Ok(5)], Duration::ZERO);
        let got = offline_limiter()
            .call_shop("s", limits(0, Duration::from_secs(30)), || shop.request())
            .await;
        assert!(matches!(got, Ok(5)), "{got:?}");
    }

    #[test]
    fn absurd_stored_values_do_not_overflow() {
        assert!(matches!(
            decide(
                bucket(i64::MAX, i64::MIN),
                i64::MAX,
                1,
                &lim(u32::MAX, u32::MAX)
            ),
            Decision::Grant(_)
        ));
        assert!(matches!(
            decide(bucket(i64::MIN, i64::MAX), i64::MIN, 1, &lim(1, 1)),
            Decision::Wait(_)
        ));
    }
}
