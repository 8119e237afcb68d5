//! The cloud side of the sync: Lambda handlers and what they share.
//!
//! Each function is a plain async handler that knows nothing of its host:
//! in AWS a five-line `main` in `src/bin/` runs it under `lambda_runtime` or
//! `lambda_http`; locally the dev crate `tests/local-host` runs every
//! function of the deployed stack in one process, emulating Lambda's SQS
//! event sources, schedules and Function URLs on loopback (it is not part
//! of what is deployed).
//!
//! Map of the crate:
//! - [`env`]: a function's configuration, read from the environment
//!   variables that `infra/template.yaml` gives it (the only list of names).
//! - [`aws`]: AWS clients, built once at cold start from the standard
//!   configuration (`AWS_ENDPOINT_URL`, region, credentials).
//! - [`state`]: the DynamoDB state table (heartbeats, parked messages).
//! - [`agent_versions`]: the contract version commands are written at.
//! - [`dynamo`]: DynamoDB attribute helpers.
//! - [`catalog`]: per-SKU ERP records and shop states in the state table.
//! - [`sequences`]: where each agent's envelopes stand; their versions.
//! - [`shops`]: the configured shops (rules, limits, credentials).
//! - [`ingest`]: ERP events from the agent (events queue).
//! - [`mapping`]: per-shop mapping rules (price list, VAT, rounding, stock), pure.
//! - [`erp_mapping`]: per-shop payment and delivery methods → Optima's, carried on order commands.
//! - [`shop`]: shop connectors behind one trait (WooCommerce REST v3).
//! - [`ratelimit`]: per-shop token buckets in the state table, shared by all instances.
//! - [`orders`]: shop orders in the state table; the one intake path
//!   (store once, send to the ERP once) of the webhook and the poller.
//! - [`webhook`]: the shops' order webhooks (Function URL, per-shop path).
//! - [`poller`]: scheduled; fetches orders changed since each shop's cursor.
//! - [`shop_ops`]: how shop operations travel on the shop-ops queue.
//! - [`shop_push`]: shop operations into the shops under their rate limits.
//! - [`admin`]: the admin Function URL (`GET /status`).
//! - [`watchdog`]: scheduled; marks a silent agent stale, mails alerts.
//! - [`alerts`]: e-mail alerts (parked orders, refused credentials, silent
//!   agents, dead letters) through the alarm topic, one an hour per cause.
//! - [`telemetry`]: tracing set-up (JSON logs in the cloud).

pub mod admin;
pub mod agent_versions;
pub mod alerts;
pub mod aws;
pub mod catalog;
pub mod console;
pub mod documents;
pub mod dynamo;
pub mod emergency;
pub mod env;
pub mod erp_mapping;
pub mod ingest;
pub mod invoice_pdf;
pub mod mapping;
pub mod orders;
pub mod poller;
pub mod ratelimit;
pub mod returns;
pub mod sequences;
pub mod shop;
pub mod shop_ops;
pub mod shop_push;
pub mod shop_settings;
pub mod shops;
pub mod state;
pub mod telemetry;
pub mod token_secrets;
pub mod watchdog;
pub mod webhook;

/// The error type handlers return to their host (boxed, as lambda_runtime expects).
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// When an invocation must have answered: Lambda's `context.deadline`, or
/// the local host's timeout. Handlers stop starting work that cannot finish
/// before it and hand the rest back with what they did recorded, instead of
/// being cut off by the platform with nothing recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<tokio::time::Instant>);

impl Deadline {
    /// No limit (tests and tools that call a handler directly).
    pub const NONE: Deadline = Deadline(None);

    /// `budget` from now.
    pub fn after(budget: std::time::Duration) -> Deadline {
        Deadline(Some(tokio::time::Instant::now() + budget))
    }

    /// From Lambda's context: Unix milliseconds.
    pub fn from_epoch_ms(deadline_ms: u64) -> Deadline {
        let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        Deadline::after(std::time::Duration::from_millis(
            deadline_ms.saturating_sub(now_ms),
        ))
    }

    /// Time left; `None` without a limit.
    pub fn remaining(&self) -> Option<std::time::Duration> {
        self.0
            .map(|at| at.saturating_duration_since(tokio::time::Instant::now()))
    }

    /// Whether at least `needed` is left.
    pub fn allows(&self, needed: std::time::Duration) -> bool {
        self.remaining().is_none_or(|left| left >= needed)
    }
}
