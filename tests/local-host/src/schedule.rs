//! Scheduled functions, run on their `rate(...)` as EventBridge Scheduler would.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::stack::Schedule;
use functions::HandlerError;

pub type ScheduledHandler = Arc<
    dyn Fn(Value) -> Pin<Box<dyn Future<Output = Result<Value, HandlerError>> + Send>>
        + Send
        + Sync,
>;

/// Parses `rate(5 minutes)`, `rate(1 hour)`, `rate(30 seconds)`.
pub fn parse_rate(expression: &str) -> anyhow::Result<Duration> {
    let inner = expression
        .trim()
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| {
            anyhow!("schedule `{expression}`: the local host runs rate(...) expressions only")
        })?;
    let (count, unit) = inner
        .trim()
        .split_once(' ')
        .ok_or_else(|| anyhow!("schedule `{expression}`: expected `rate(<n> <unit>)`"))?;
    let count: u64 = count
        .parse()
        .map_err(|_| anyhow!("schedule `{expression}`: `{count}` is not a whole number"))?;
    if count == 0 {
        bail!("schedule `{expression}`: the rate must be at least 1");
    }
    let seconds = match unit.trim() {
        "second" | "seconds" => 1,
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        other => bail!("schedule `{expression}`: unknown unit `{other}`"),
    };
    Ok(Duration::from_secs(count * seconds))
}

/// Calls the handler every `every`, the first time one period after start,
/// and stops a run at the function's `timeout`, as Lambda does.
pub async fn run(
    schedule: Schedule,
    every: Duration,
    handler: ScheduledHandler,
    timeout: Duration,
    cancel: CancellationToken,
) {
    let input: Value = serde_json::from_str(&schedule.input).unwrap_or(Value::Null);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match tokio::time::timeout(timeout, handler(input.clone())).await {
            Ok(Ok(output)) => info!(schedule = %schedule.name, %output, "scheduled run"),
            Ok(Err(err)) => warn!(schedule = %schedule.name, error = %err, "scheduled run failed"),
            Err(_) => warn!(schedule = %schedule.name, ?timeout, "scheduled run timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_nonsense_is_refused() {
        assert_eq!(
            parse_rate("rate(1 minute)").ok(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_rate("rate(5 minutes)").ok(),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            parse_rate("rate(2 hours)").ok(),
            Some(Duration::from_secs(7200))
        );
        assert!(parse_rate("rate(0 minutes)").is_err());
        assert!(parse_rate("cron(0 12 * * ? *)").is_err());
        assert!(parse_rate("rate(five minutes)").is_err());
        assert!(parse_rate("rate(5 fortnights)").is_err());
    }
}
