//! Webhook deliveries: one worker sends them in the order the events happened (Shoper's real
//! ordering and retry policy are *unverified*: assume at-least-once and unordered, which the
//! duplicate / drop / delay faults and [`crate::Config::webhook_retries`] let tests provoke).
//! Every attempt is recorded with the exact headers and body sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::faults::WebhookFault;
use crate::state::lock;
use crate::util::rfc3339;

/// A signed delivery waiting to be sent.
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    pub webhook_id: u64,
    pub event: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub fault: WebhookFault,
    pub retries: u32,
    pub retry_delay_ms: u64,
    pub timeout_ms: u64,
}

/// One delivery attempt (or a dropped delivery).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub seq: u64,
    pub webhook_id: u64,
    /// `order.create`, ...
    pub event: String,
    pub url: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// A second copy sent by the duplicate fault.
    pub duplicate: bool,
    /// `delivered` (2xx), `failed` (other status), `error` (no answer), `dropped` (fault).
    pub outcome: String,
    pub response_status: Option<u16>,
    pub error: Option<String>,
    /// RFC 3339 (wall clock), None when dropped.
    pub sent_at: Option<String>,
    pub duration_ms: u64,
    pub request_headers: BTreeMap<String, String>,
    /// The body exactly as sent (the signature covers these bytes).
    pub request_body: String,
}

impl DeliveryRecord {
    /// A request header by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// All attempts, oldest first.
#[derive(Debug, Default)]
pub struct DeliveryLog {
    next_seq: u64,
    pub items: Vec<DeliveryRecord>,
}

impl DeliveryLog {
    fn push(&mut self, mut r: DeliveryRecord) {
        self.next_seq += 1;
        r.seq = self.next_seq;
        self.items.push(r);
    }
}

fn record(job: &DeliveryJob, attempt: u32, duplicate: bool) -> DeliveryRecord {
    DeliveryRecord {
        seq: 0,
        webhook_id: job.webhook_id,
        event: job.event.clone(),
        url: job.url.clone(),
        attempt,
        duplicate,
        outcome: String::new(),
        response_status: None,
        error: None,
        sent_at: None,
        duration_ms: 0,
        request_headers: job.headers.iter().cloned().collect(),
        request_body: String::from_utf8_lossy(&job.body).into_owned(),
    }
}

async fn attempt(client: &reqwest::Client, job: &DeliveryJob, rec: &mut DeliveryRecord) -> bool {
    let start = Instant::now();
    rec.sent_at = Some(rfc3339(chrono::Utc::now()));
    let mut req = client
        .post(&job.url)
        .timeout(Duration::from_millis(job.timeout_ms.max(1)))
        .body(job.body.clone());
    for (k, v) in &job.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let ok = match req.send().await {
        Ok(resp) => {
            let st = resp.status().as_u16();
            rec.response_status = Some(st);
            let ok = resp.status().is_success();
            rec.outcome = if ok { "delivered" } else { "failed" }.into();
            ok
        }
        Err(e) => {
            rec.outcome = "error".into();
            rec.error = Some(e.to_string());
            false
        }
    };
    rec.duration_ms = start.elapsed().as_millis() as u64;
    ok
}

async fn deliver(
    client: &reqwest::Client,
    job: &DeliveryJob,
    duplicate: bool,
    log: &Mutex<DeliveryLog>,
    notify: &tokio::sync::Notify,
) {
    let mut n = 1;
    loop {
        let mut rec = record(job, n, duplicate);
        let ok = attempt(client, job, &mut rec).await;
        lock(log).push(rec);
        notify.notify_waiters();
        if ok || n > job.retries {
            break;
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(job.retry_delay_ms)).await;
    }
}

/// Sends queued deliveries until the channel closes.
pub async fn worker(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<DeliveryJob>,
    log: Arc<Mutex<DeliveryLog>>,
    notify: Arc<tokio::sync::Notify>,
) {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("shoper-standin: cannot build the webhook client: {e}");
            return;
        }
    };
    while let Some(job) = rx.recv().await {
        if job.fault.drop {
            let mut rec = record(&job, 1, false);
            rec.outcome = "dropped".into();
            lock(&log).push(rec);
            notify.notify_waiters();
            continue;
        }
        if !job.fault.delay.is_zero() {
            tokio::time::sleep(job.fault.delay).await;
        }
        deliver(&client, &job, false, &log, &notify).await;
        if job.fault.duplicate {
            deliver(&client, &job, true, &log, &notify).await;
        }
    }
}
