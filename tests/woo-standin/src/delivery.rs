//! Webhook deliveries the way `WC_Webhook::deliver` makes them:
//!
//! * asynchronous: queued after the event, sent after a delay (`FaultConfig::webhook_delay_ms`,
//!   default 50 ms; WooCommerce uses Action Scheduler, often much later);
//! * the body is the resource's current REST JSON **built at delivery time**, not at event time
//!   (`{"id": N}` for `*.deleted` topics);
//! * headers `X-WC-Webhook-Source` (site URL with `/`), `-Topic`, `-Resource`, `-Event`,
//!   `-Signature` (base64 HMAC-SHA256 of the exact body bytes keyed with the secret), `-ID`
//!   (webhook id), `-Delivery-ID` (a hash of webhook id + current second: two deliveries in the
//!   same second share it);
//! * 60 s timeout; a 200–302 answer is a success; **no retry**; the failure count resets on
//!   success; a failure while the count is already above 5 disables the webhook — i.e. 6
//!   consecutive failures leave it `active` with `failure_count` 6 and the 7th disables it
//!   (`WC_Webhook::failed_delivery` checks before incrementing);
//! * the creation ping is a form-encoded `webhook_id=<id>` POST without the X-WC headers and
//!   without a signature; only an exact 200 clears `pending_delivery`, and while it is pending
//!   every save of the webhook (each delivery result is one) pings again; the ping never counts
//!   as a delivery failure;
//! * one queued delivery per (webhook, resource): while one waits, further events for the same
//!   resource add nothing (logged as `coalesced`); it then carries the newest state
//!   (`wc_webhook_execute_queue`: "Make webhooks unique");
//! * faults: drop (never sent), duplicate (sent twice), extra delay.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::orders::order_json;
use crate::products::product_json;
use crate::shared::{Shared, lock};
use crate::state::Event;
use crate::variations::variation_json;

const USER_AGENT: &str = "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)";
const MAX_FAILURES: u32 = 5;

/// One delivery attempt (or a dropped one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub delivery_id: String,
    pub webhook_id: u64,
    /// `ping` or `event`.
    pub kind: String,
    pub topic: String,
    pub resource_id: u64,
    pub url: String,
    /// When the event happened (RFC 3339).
    pub event_at: String,
    /// When the request was sent (None when dropped).
    pub sent_at: Option<String>,
    /// A second copy of the same delivery (fault injection).
    pub duplicate: bool,
    /// `success`, `failed`, `dropped`, `coalesced` (merged into a queued delivery), `skipped`
    /// (webhook or resource gone).
    pub outcome: String,
    pub response_status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub request_headers: BTreeMap<String, String>,
    pub request_body: String,
}

/// base64(HMAC-SHA256(body, secret)) — what `X-WC-Webhook-Signature` carries.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn delivery_id(webhook_id: u64) -> String {
    let secs = chrono::Utc::now().timestamp();
    let h = Sha256::digest(format!("{webhook_id}{secs}"));
    hex::encode(&h[..16])
}

/// Queues deliveries for events to every active webhook on the topic.
pub fn schedule(shared: &Arc<Shared>, events: Vec<Event>) {
    let event_at = chrono::Utc::now().to_rfc3339();
    let targets: Vec<(u64, Event)> = {
        let shop = shared.shop();
        events
            .iter()
            .flat_map(|e| {
                let topic = e.topic();
                shop.webhooks
                    .values()
                    .filter(move |w| w.webhook.status == "active" && w.webhook.topic == topic)
                    .map(|w| (w.webhook.id, e.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    for (wid, event) in targets {
        // "Make webhooks unique": while a delivery for this webhook and resource waits in the
        // queue, another event adds nothing; the queued one will carry the newest state.
        if !lock(&shared.pending_deliveries).insert((wid, event.id)) {
            record(
                shared,
                skipped_record(shared, wid, &event, &event_at, "coalesced"),
            );
            continue;
        }
        let fault = lock(&shared.faults).webhook_fault();
        let shared = Arc::clone(shared);
        let event_at = event_at.clone();
        shared.rt.clone().spawn(async move {
            tokio::time::sleep(fault.delay).await;
            // Claimed by the queue runner: from now on a new event queues a new delivery.
            lock(&shared.pending_deliveries).remove(&(wid, event.id));
            if fault.drop {
                record(
                    &shared,
                    skipped_record(&shared, wid, &event, &event_at, "dropped"),
                );
                return;
            }
            let id = deliver(&shared, wid, &event, &event_at, None).await;
            if fault.duplicate {
                deliver(&shared, wid, &event, &event_at, id).await;
            }
        });
    }
}

/// The body, built now from the current state (`{"id": N}` for deleted resources).
fn payload(shared: &Shared, event: &Event) -> Option<String> {
    if event.event == "deleted" {
        return Some(format!("{{\"id\":{}}}", event.id));
    }
    let root = shared.api_root();
    let shop = shared.shop();
    match event.resource {
        "order" => shop.orders.get(&event.id).map(|o| order_json(o, &root).0),
        "product" => shop.products.get(&event.id).map(|p| {
            if p.kind == "variation" {
                variation_json(p, &root).0
            } else {
                product_json(p, &root).0
            }
        }),
        "coupon" => shop.coupons.get(&event.id).map(crate::json::text),
        _ => None,
    }
}

/// Sends one event delivery; returns its delivery id (reused for a duplicate).
async fn deliver(
    shared: &Arc<Shared>,
    wid: u64,
    event: &Event,
    event_at: &str,
    dup_of: Option<String>,
) -> Option<String> {
    let rec = shared.shop().webhooks.get(&wid).cloned();
    let did = dup_of.clone().unwrap_or_else(|| delivery_id(wid));
    let mut r = DeliveryRecord {
        delivery_id: did.clone(),
        webhook_id: wid,
        kind: "event".into(),
        topic: event.topic(),
        resource_id: event.id,
        url: String::new(),
        event_at: event_at.to_string(),
        sent_at: None,
        duplicate: dup_of.is_some(),
        outcome: "skipped".into(),
        response_status: None,
        error: None,
        duration_ms: 0,
        request_headers: BTreeMap::new(),
        request_body: String::new(),
    };
    let Some(rec) = rec else {
        r.error = Some("webhook deleted".into());
        record(shared, r);
        return None;
    };
    r.url = rec.webhook.delivery_url.clone();
    let Some(body) = payload(shared, event) else {
        r.error = Some("resource no longer exists".into());
        record(shared, r);
        return None;
    };
    let body = crate::json::php_escape(&body).into_bytes();
    let mut headers = BTreeMap::new();
    headers.insert("Content-Type".to_string(), "application/json".to_string());
    headers.insert("User-Agent".to_string(), USER_AGENT.to_string());
    headers.insert(
        "X-WC-Webhook-Source".to_string(),
        format!("{}/", shared.base_url),
    );
    headers.insert("X-WC-Webhook-Topic".to_string(), event.topic());
    headers.insert(
        "X-WC-Webhook-Resource".to_string(),
        event.resource.to_string(),
    );
    headers.insert("X-WC-Webhook-Event".to_string(), event.event.to_string());
    headers.insert(
        "X-WC-Webhook-Signature".to_string(),
        signature(&rec.secret, &body),
    );
    headers.insert("X-WC-Webhook-ID".to_string(), wid.to_string());
    headers.insert("X-WC-Webhook-Delivery-ID".to_string(), did.clone());
    let (status, error, ms) = post(shared, &r.url, &headers, body.clone()).await;
    r.sent_at = Some(chrono::Utc::now().to_rfc3339());
    r.request_headers = headers;
    r.request_body = String::from_utf8_lossy(&body).into_owned();
    r.response_status = status;
    r.error = error;
    r.duration_ms = ms;
    let ok = status.is_some_and(|s| (200..=302).contains(&s));
    r.outcome = if ok { "success" } else { "failed" }.into();
    // WC_Webhook::log_delivery / failed_delivery: a success resets the count; a failure when
    // the count is already above 5 disables the webhook (so the 7th consecutive failure does),
    // otherwise it increments the count. Each of these saves the webhook, and a save of an
    // active webhook whose first ping never succeeded pings again.
    let ping_again = {
        let mut shop = shared.shop();
        match shop.webhooks.get_mut(&wid) {
            Some(w) => {
                if ok {
                    w.failure_count = 0;
                } else if w.failure_count > MAX_FAILURES {
                    w.webhook.status = "disabled".into();
                    tracing::warn!(
                        webhook = wid,
                        "webhook disabled after {} consecutive failures",
                        w.failure_count + 1
                    );
                } else {
                    w.failure_count += 1;
                }
                w.webhook.status == "active" && w.pending_delivery
            }
            None => false,
        }
    };
    shared
        .dirty
        .store(true, std::sync::atomic::Ordering::SeqCst);
    {
        let mut st = lock(&shared.stats);
        st.snapshot.webhook_deliveries += 1;
        if !ok {
            st.snapshot.webhook_failures += 1;
        }
    }
    record(shared, r);
    if ping_again {
        ping(shared, wid).await;
    }
    Some(did)
}

async fn post(
    shared: &Shared,
    url: &str,
    headers: &BTreeMap<String, String>,
    body: Vec<u8>,
) -> (Option<u16>, Option<String>, u64) {
    let timeout = Duration::from_millis(lock(&shared.faults).cfg.webhook_timeout_ms.max(1));
    let mut req = shared.http.post(url).timeout(timeout).body(body);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let start = Instant::now();
    let result = req.send().await;
    let ms = start.elapsed().as_millis() as u64;
    match result {
        Ok(resp) => (Some(resp.status().as_u16()), None, ms),
        Err(e) => (None, Some(e.to_string()), ms),
    }
}

/// The creation ping: form-encoded `webhook_id=<id>`, no signature.
pub async fn ping(shared: &Arc<Shared>, wid: u64) {
    let Some(rec) = shared.shop().webhooks.get(&wid).cloned() else {
        return;
    };
    let body = format!("webhook_id={wid}").into_bytes();
    let mut headers = BTreeMap::new();
    headers.insert(
        "Content-Type".to_string(),
        "application/x-www-form-urlencoded".to_string(),
    );
    headers.insert("User-Agent".to_string(), USER_AGENT.to_string());
    let (status, error, ms) = post(shared, &rec.webhook.delivery_url, &headers, body.clone()).await;
    // deliver_ping: only exactly 200 counts; otherwise the webhook stays pending.
    let ok = status == Some(200);
    if ok && let Some(w) = shared.shop().webhooks.get_mut(&wid) {
        w.pending_delivery = false;
    }
    let now = chrono::Utc::now().to_rfc3339();
    record(
        shared,
        DeliveryRecord {
            delivery_id: String::new(),
            webhook_id: wid,
            kind: "ping".into(),
            topic: rec.webhook.topic.clone(),
            resource_id: 0,
            url: rec.webhook.delivery_url.clone(),
            event_at: now.clone(),
            sent_at: Some(now),
            duplicate: false,
            outcome: if ok { "success" } else { "failed" }.into(),
            response_status: status,
            error,
            duration_ms: ms,
            request_headers: headers,
            request_body: String::from_utf8_lossy(&body).into_owned(),
        },
    );
}

/// A record for an event that produced no request (`dropped`, `coalesced`).
fn skipped_record(
    shared: &Shared,
    wid: u64,
    event: &Event,
    event_at: &str,
    outcome: &str,
) -> DeliveryRecord {
    let url = shared
        .shop()
        .webhooks
        .get(&wid)
        .map(|w| w.webhook.delivery_url.clone())
        .unwrap_or_default();
    DeliveryRecord {
        delivery_id: String::new(),
        webhook_id: wid,
        kind: "event".into(),
        topic: event.topic(),
        resource_id: event.id,
        url,
        event_at: event_at.to_string(),
        sent_at: None,
        duplicate: false,
        outcome: outcome.into(),
        response_status: None,
        error: None,
        duration_ms: 0,
        request_headers: BTreeMap::new(),
        request_body: String::new(),
    }
}

fn record(shared: &Shared, r: DeliveryRecord) {
    tracing::debug!(webhook = r.webhook_id, topic = %r.topic, outcome = %r.outcome, "webhook delivery");
    let mut d = lock(&shared.deliveries);
    if d.len() >= 10_000 {
        d.remove(0);
    }
    d.push(r);
}
