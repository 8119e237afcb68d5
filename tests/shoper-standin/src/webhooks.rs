//! Webhooks (docs §7): the `/webhooks` resource and how deliveries are signed.
//!
//! - `POST /webhooks` `{"url","events":[...],"active":1,"format":0,"secret":"..."}` → id;
//!   `format` (0 JSON, 1 XML) is required on create; an invalid URL → 400
//!   `'<url>' nie jest poprawnym adresem URL`; `PUT` takes a partial body; `GET` answers the
//!   `secret` in clear (`""` if none); the `url` filter is equality-only.
//! - A delivery is `POST <url>` with `Content-Type: application/json; charset=utf-8`,
//!   `User-Agent: Shop Webhook Sender <version>`, `X-Shop-Domain`, `X-Shop-License`,
//!   `X-Shop-Version`, `X-Webhook-Id` (the webhook config's id), `X-Webhook-Name` (the event),
//!   `X-Webhook-SHA1` = lowercase hex `sha1(X-Webhook-Id + ":" + secret + ":" + body)` over the
//!   exact body bytes (not an HMAC).
//! - AppStore app mode ([`crate::Config::appstore_secret`]): the secret used is
//!   `hex(HMAC-SHA512(key=appstore_secret, msg=X-Shop-License + ":" + webhook_secret))`.
//! - `format` 1 (XML) sends the same object as XML (`<order>...</order>`, arrays as `<item>`);
//!   the real XML layout is *unverified*.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};
use sha2::Sha512;

use crate::delivery::DeliveryJob;
use crate::error::{ApiError, Invalid};
use crate::faults::FaultState;
use crate::query::{self, Op, Page};
use crate::state::{Notice, State};
use crate::util::{Params, bool_of, flag, string_of, u64_of};

/// Events a webhook may subscribe to (the client library's list plus events seen live).
pub const EVENTS: [&str; 28] = [
    "order.create",
    "order.edit",
    "order.paid",
    "order.status",
    "order.delete",
    "client.create",
    "client.edit",
    "client.delete",
    "product.create",
    "product.edit",
    "product.delete",
    "parcel.create",
    "parcel.dispatch",
    "parcel.delete",
    "subscriber.create",
    "subscriber.edit",
    "subscriber.delete",
    "category.create",
    "category.edit",
    "category.delete",
    "product-tag.edit",
    "admin.account_connected",
    "admin.account_disconnected",
    "order_transaction.create",
    "order_refund.create",
    "producer.create",
    "producer.edit",
    "producer.delete",
];

/// A webhook configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub webhook_id: u64,
    pub url: String,
    /// `""` when none.
    pub secret: String,
    /// 0 JSON, 1 XML.
    pub format: u8,
    pub active: bool,
    pub events: Vec<String>,
}

fn default_events() -> Vec<String> {
    ["order.create", "order.edit", "order.paid", "order.status"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn yes() -> bool {
    true
}

/// A webhook as the panel creates it (control API / library).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewWebhook {
    pub url: String,
    #[serde(default)]
    pub secret: String,
    /// Default: `order.create`, `order.edit`, `order.paid`, `order.status`.
    #[serde(default = "default_events")]
    pub events: Vec<String>,
    #[serde(default)]
    pub format: u8,
    #[serde(default = "yes")]
    pub active: bool,
}

impl NewWebhook {
    /// JSON deliveries of the order events to `url`, signed with `secret`.
    pub fn new(url: &str, secret: &str) -> Self {
        NewWebhook {
            url: url.into(),
            secret: secret.into(),
            events: default_events(),
            format: 0,
            active: true,
        }
    }

    pub fn events(mut self, events: &[&str]) -> Self {
        self.events = events.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// Lowercase hex `sha1(webhook_id + ":" + secret + ":" + body)` — `X-Webhook-SHA1`.
pub fn signature(webhook_id: &str, secret: &str, body: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(webhook_id.as_bytes());
    h.update(b":");
    h.update(secret.as_bytes());
    h.update(b":");
    h.update(body);
    hex::encode(h.finalize())
}

/// The per-shop secret of an AppStore app's webhook:
/// `hex(HMAC-SHA512(key=appstore_secret, msg=license + ":" + webhook_secret))`.
pub fn derive_app_secret(appstore_secret: &str, license: &str, webhook_secret: &str) -> String {
    match Hmac::<Sha512>::new_from_slice(appstore_secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(license.as_bytes());
            mac.update(b":");
            mac.update(webhook_secret.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

fn valid_url(u: &str) -> bool {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"));
    match rest {
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !u.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn check_url(u: &str, inv: &mut Invalid) {
    if !valid_url(u) {
        inv.clause(format!("'{u}' nie jest poprawnym adresem URL"));
    }
}

fn check_events(events: &[String], inv: &mut Invalid) {
    if events.is_empty() {
        inv.required("events");
    }
    for e in events {
        if !EVENTS.contains(&e.as_str()) {
            inv.field("events", format!("Nieznane zdarzenie '{e}'"));
        }
    }
}

/// Adds a webhook (as the panel would).
pub fn add(m: &mut State, n: &NewWebhook) -> Result<Webhook, ApiError> {
    let mut inv = Invalid::new();
    check_url(&n.url, &mut inv);
    check_events(&n.events, &mut inv);
    if n.format > 1 {
        inv.field("format", "Dozwolone wartości: 0, 1");
    }
    inv.finish()?;
    let id = m.next_webhook_id;
    m.next_webhook_id += 1;
    let w = Webhook {
        webhook_id: id,
        url: n.url.clone(),
        secret: n.secret.clone(),
        format: n.format,
        active: n.active,
        events: n.events.clone(),
    };
    m.webhooks.insert(id, w.clone());
    Ok(w)
}

/// A webhook as served.
pub fn webhook_json(w: &Webhook) -> Value {
    json!({
        "webhook_id": w.webhook_id.to_string(),
        "url": w.url,
        "secret": w.secret,
        "format": w.format.to_string(),
        "active": flag(w.active),
        "events": w.events,
    })
}

fn object(body: Option<&Value>) -> Result<&Map<String, Value>, ApiError> {
    match body {
        Some(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::invalid("Niepoprawny format danych")),
    }
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse().map_err(|_| ApiError::not_found())
}

fn read_events(v: &Value, inv: &mut Invalid) -> Option<Vec<String>> {
    match v {
        Value::Array(items) => {
            let list: Vec<String> = items.iter().filter_map(string_of).collect();
            if list.len() != items.len() {
                inv.field("events", "Niepoprawny format danych");
                return None;
            }
            check_events(&list, inv);
            Some(list)
        }
        _ => {
            inv.field("events", "Niepoprawny format danych");
            None
        }
    }
}

pub fn list(m: &State, params: &Params) -> Result<Page, ApiError> {
    let q = query::parse(params, &m.cfg, &["webhook_id", "url", "active", "format"])?;
    if q.filters.iter().any(|f| f.field == "url" && f.op != Op::Eq) {
        return Err(ApiError::not_found());
    }
    let rows = m.webhooks.values().map(webhook_json).collect();
    Ok(query::run(rows, &q, "webhook_id"))
}

pub fn get(m: &State, id: &str) -> Result<Value, ApiError> {
    let w = m
        .webhooks
        .get(&parse_id(id)?)
        .ok_or_else(ApiError::not_found)?;
    Ok(webhook_json(w))
}

/// `POST /webhooks` → the new id (`format` required).
pub fn post(m: &mut State, body: Option<&Value>) -> Result<Value, ApiError> {
    let o = object(body)?;
    let mut inv = Invalid::new();
    let url = o.get("url").and_then(string_of);
    match &url {
        None => inv.required("url"),
        Some(u) => check_url(u, &mut inv),
    }
    let events = match o.get("events") {
        None => {
            inv.required("events");
            None
        }
        Some(v) => read_events(v, &mut inv),
    };
    let format = match o.get("format") {
        None | Some(Value::Null) => {
            inv.required("format");
            0
        }
        Some(v) => match u64_of(v) {
            Some(f) if f <= 1 => f as u8,
            _ => {
                inv.field("format", "Dozwolone wartości: 0, 1");
                0
            }
        },
    };
    let active = match o.get("active") {
        None => true,
        Some(v) => bool_of(v).unwrap_or_else(|| {
            inv.field("active", "Dozwolone wartości: 0, 1");
            true
        }),
    };
    let secret = o.get("secret").and_then(string_of).unwrap_or_default();
    inv.finish()?;
    let w = add(
        m,
        &NewWebhook {
            url: url.unwrap_or_default(),
            secret,
            events: events.unwrap_or_default(),
            format,
            active,
        },
    )?;
    Ok(json!(w.webhook_id))
}

/// `PUT /webhooks/{id}` (partial) → `1`.
pub fn put(m: &mut State, id: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    let wid = parse_id(id)?;
    let mut next = m
        .webhooks
        .get(&wid)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    let o = object(body)?;
    let mut inv = Invalid::new();
    if let Some(v) = o.get("url") {
        match string_of(v) {
            Some(u) => {
                check_url(&u, &mut inv);
                next.url = u;
            }
            None => inv.field("url", "Wartość nie jest tekstem"),
        }
    }
    if let Some(v) = o.get("events")
        && let Some(list) = read_events(v, &mut inv)
    {
        next.events = list;
    }
    if let Some(v) = o.get("format") {
        match u64_of(v) {
            Some(f) if f <= 1 => next.format = f as u8,
            _ => inv.field("format", "Dozwolone wartości: 0, 1"),
        }
    }
    if let Some(v) = o.get("active") {
        match bool_of(v) {
            Some(b) => next.active = b,
            None => inv.field("active", "Dozwolone wartości: 0, 1"),
        }
    }
    if let Some(v) = o.get("secret") {
        next.secret = string_of(v).unwrap_or_default();
    }
    inv.finish()?;
    m.webhooks.insert(wid, next);
    Ok(json!(1))
}

pub fn delete(m: &mut State, id: &str) -> Result<Value, ApiError> {
    let wid = parse_id(id)?;
    m.webhooks.remove(&wid).ok_or_else(ApiError::not_found)?;
    Ok(json!(1))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml_value(name: &str, v: &Value, out: &mut String) {
    out.push_str(&format!("<{name}>"));
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "1" } else { "0" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&xml_escape(s)),
        Value::Array(items) => {
            for it in items {
                xml_value("item", it, out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                let tag = if k.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
                    k.clone()
                } else {
                    format!("item_{k}")
                };
                xml_value(&tag, x, out);
            }
        }
    }
    out.push_str(&format!("</{name}>"));
}

/// The body bytes of a delivery in the webhook's format.
pub fn body_bytes(event: &str, payload: &Value, format: u8) -> Vec<u8> {
    if format == 1 {
        let root = event.split('.').next().unwrap_or("object");
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        xml_value(root, payload, &mut s);
        s.into_bytes()
    } else {
        payload.to_string().into_bytes()
    }
}

/// Turns notices into signed deliveries for every active webhook subscribed to the event.
pub fn jobs(
    m: &mut State,
    faults: &mut FaultState,
    notices: Vec<Notice>,
    shop_domain: &str,
    license: &str,
) -> Vec<DeliveryJob> {
    let mut out = Vec::new();
    for n in notices {
        let hooks: Vec<Webhook> = m
            .webhooks
            .values()
            .filter(|w| w.active && w.events.contains(&n.event))
            .cloned()
            .collect();
        for w in hooks {
            let body = body_bytes(&n.event, &n.payload, w.format);
            let secret = match &m.cfg.appstore_secret {
                Some(app) => derive_app_secret(app, license, &w.secret),
                None => w.secret.clone(),
            };
            let id = w.webhook_id.to_string();
            let sha1 = signature(&id, &secret, &body);
            let content_type = if w.format == 1 {
                "application/xml; charset=utf-8"
            } else {
                "application/json; charset=utf-8"
            };
            let headers = vec![
                ("Content-Type".to_string(), content_type.to_string()),
                (
                    "User-Agent".to_string(),
                    format!("Shop Webhook Sender {}", m.cfg.shop_version),
                ),
                ("X-Shop-Domain".to_string(), shop_domain.to_string()),
                ("X-Shop-License".to_string(), license.to_string()),
                ("X-Shop-Version".to_string(), m.cfg.shop_version.clone()),
                ("X-Webhook-Id".to_string(), id),
                ("X-Webhook-Name".to_string(), n.event.clone()),
                ("X-Webhook-SHA1".to_string(), sha1),
            ];
            m.counters.webhooks_queued += 1;
            out.push(DeliveryJob {
                webhook_id: w.webhook_id,
                event: n.event.clone(),
                url: w.url.clone(),
                headers,
                body,
                fault: faults.webhook_fault(),
                retries: m.cfg.webhook_retries,
                retry_delay_ms: m.cfg.webhook_retry_delay_ms,
                timeout_ms: m.cfg.webhook_timeout_ms,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_sha1_of_id_secret_body() {
        // sha1("5:s3cr3t:{}") computed independently (Python hashlib).
        assert_eq!(
            signature("5", "s3cr3t", b"{}"),
            "d9fd6d3b74f15fe9a84e85a19f4027f99de71290"
        );
    }
}
