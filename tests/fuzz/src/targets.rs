//! One target per parser of outside input, each with the properties its
//! outcome must keep.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use contract::{Order, Payload};
use flate2::Compression;
use flate2::write::GzEncoder;
use functions::env::FunctionEnv;
use functions::shop;
use functions::shop::woo_order::{
    MAX_LINES, MAX_QUANTITY, NormaliseOptions, order_from_value, parse_order, sign,
};
use functions::shop::woocommerce::parse_retry_after;
use functions::shops::Shops;
use functions::webhook::{Checker, Delivery, MAX_BODY_BYTES, Rejection};
use http::{HeaderMap, HeaderValue};
use rand::Rng;
use rand::rngs::StdRng;
use rust_decimal::Decimal;

use crate::mutate::{TOKENS, mutate};
use crate::runner::Target;
use crate::seeds::{ENVELOPES, MINIMAL, ORDER, order_with_lines};

/// The largest absolute amount of a money field the normaliser takes
/// (`woo_order::MAX_AMOUNT`, PLN 10 billion), written out here so the
/// bound is checked, not borrowed.
const MAX_AMOUNT: i64 = 10_000_000_000;

fn shorten(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(400) {
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], bytes.len()),
        None => format!("{text:?}"),
    }
}

/// Order bodies to mutate: the two real payloads most of the time, and
/// bodies at and just past the line bound now and then (they are large,
/// so rarely, to keep the rate up).
fn order_seed(rng: &mut StdRng, index: u64) -> Vec<u8> {
    if index.is_multiple_of(97) {
        return match rng.random_range(0..4) {
            0 => order_with_lines(MAX_LINES, 0),
            1 => order_with_lines(MAX_LINES + 1, 0),
            2 => order_with_lines(MAX_LINES - 1, 1),
            _ => order_with_lines(1, MAX_LINES),
        }
        .into_bytes();
    }
    if index.is_multiple_of(2) {
        ORDER
    } else {
        MINIMAL
    }
    .as_bytes()
    .to_vec()
}

/// Every input unmutated now and then, so valid orders keep being checked.
fn order_body(rng: &mut StdRng, index: u64) -> Vec<u8> {
    let seed = order_seed(rng, index);
    if index.is_multiple_of(50) || index.is_multiple_of(97) && rng.random_bool(0.5) {
        seed
    } else {
        mutate(rng, &seed)
    }
}

/// What an accepted order must be, whatever the input.
pub fn check_order(order: &Order) -> Result<(), String> {
    let id = &order.order_id;
    if id.is_empty()
        || id.len() > 20
        || !id.bytes().all(|b| b.is_ascii_digit())
        || id.bytes().all(|b| b == b'0')
    {
        return Err(format!("order id {id:?} is not a positive whole number"));
    }
    if order.lines.is_empty() || order.lines.len() > MAX_LINES {
        return Err(format!(
            "{} lines, outside 1..={MAX_LINES}",
            order.lines.len()
        ));
    }
    let currency_ok = (1..=3).contains(&order.currency.len())
        && order.currency.bytes().all(|b| b.is_ascii_uppercase());
    if !currency_ok {
        return Err(format!("currency {:?}", order.currency));
    }
    let bound = Decimal::from(MAX_AMOUNT);
    for (i, line) in order.lines.iter().enumerate() {
        if line.quantity <= Decimal::ZERO || line.quantity > Decimal::from(MAX_QUANTITY) {
            return Err(format!("line {i}: quantity {}", line.quantity));
        }
        if line.total_net.abs() > bound || line.total_vat.abs() > bound {
            return Err(format!(
                "line {i}: amount {} / {} past {bound}",
                line.total_net, line.total_vat
            ));
        }
        if line.total_gross != line.total_net + line.total_vat {
            return Err(format!("line {i}: gross is not net + VAT"));
        }
    }
    let body = functions::orders::command_body(order)
        .map_err(|err| format!("an accepted order has no command body: {err}"))?;
    match contract::decode_body(&body) {
        Ok(envelope) => match envelope.payload {
            Payload::CreateOrder(decoded) if *decoded == *order => Ok(()),
            Payload::CreateOrder(_) => Err("the command body decodes to another order".into()),
            other => Err(format!("the command body decodes as {:?}", other.kind())),
        },
        Err(err) => Err(format!("the command body does not decode: {err}")),
    }
}

/// How a fuzzed delivery is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// No `X-WC-Webhook-Signature` header.
    Unsigned,
    /// The right body under another secret.
    WrongSecret,
    /// The right secret over other bytes than those sent.
    Tampered,
    /// Not a signature: random base64, tokens, non-ASCII bytes.
    Garbage,
    /// The right secret over the bytes sent.
    Valid,
}

pub struct WebhookInput {
    pub body: Vec<u8>,
    pub headers: HeaderMap,
    pub signing: Signing,
    pub topic: Option<&'static str>,
}

/// `webhook::check`: the signature, the creation ping, the topic and the
/// order, as a delivery reaches the function.
pub struct Webhook {
    checker: Checker,
}

pub const WEBHOOK_SECRET: &str = "fuzz-webhook-secret";
const SHOP: &str = "sklep";
const TOPICS: [&str; 6] = [
    "order.created",
    "order.updated",
    "order.restored",
    "order.deleted",
    "product.updated",
    " order.updated\t",
];

impl Webhook {
    pub fn new() -> Result<Self, String> {
        let mut env = FunctionEnv::from_map([(
            "SHOPS".to_owned(),
            r#"[{"id":"sklep","platform":"woocommerce","base_url":"http://127.0.0.1:9","rules":{"price_list":"Detaliczna","warehouses":["MAG"]}}]"#.to_owned(),
        )]);
        env.set_shop_secrets(format!(
            r#"{{"sklep":{{"consumer_key":"ck","consumer_secret":"cs","webhook_secret":"{WEBHOOK_SECRET}"}}}}"#
        ));
        let shops = Shops::from_env(&env, true).map_err(|err| err.to_string())?;
        let checker = Checker::new(shops).map_err(|err| err.to_string())?;
        Ok(Webhook { checker })
    }
}

/// What WooCommerce sends unsigned: `webhook_id=<digits>`, and nothing else
/// may pass without a signature. Written out here, not borrowed from the
/// code under test.
fn is_ping(body: &[u8], webhook_id: &str) -> bool {
    std::str::from_utf8(body)
        .ok()
        .and_then(|text| text.trim().strip_prefix("webhook_id="))
        .is_some_and(|digits| {
            digits.bytes().all(|b| b.is_ascii_digit())
                && digits
                    .parse::<u64>()
                    .ok()
                    .map(|id| id.to_string())
                    .as_deref()
                    == Some(webhook_id)
        })
}

fn decoded_signature(text: &[u8]) -> Option<Vec<u8>> {
    STANDARD.decode(text.trim_ascii()).ok()
}

fn is_order_topic(topic: Option<&str>) -> bool {
    matches!(
        topic.map(str::trim),
        None | Some("order.created" | "order.updated" | "order.restored")
    )
}

/// Without a valid signature: refused with 401, or WooCommerce's creation
/// ping (a header that is not text counts as absent).
fn unsigned_outcome(
    input: &WebhookInput,
    result: Result<Delivery, Rejection>,
) -> Result<&'static str, String> {
    match result {
        Ok(Delivery::Ping { id }) if is_ping(&input.body, &id) => Ok("ping"),
        Err(Rejection::Unverified(shop::Rejection::MissingSignature(_))) => Ok("401 unsigned"),
        Err(Rejection::Unverified(shop::Rejection::BadSignature(_)))
            if input.signing != Signing::Unsigned =>
        {
            Ok("401 bad signature")
        }
        other => Err(format!(
            "a delivery {:?} (no valid signature) answered {other:?}",
            input.signing
        )),
    }
}

/// Correctly signed: an order within bounds for an order topic, an
/// acknowledged other topic, or a 400 with a reason; never a panic.
fn signed_outcome(
    input: &WebhookInput,
    result: Result<Delivery, Rejection>,
) -> Result<&'static str, String> {
    match result {
        Ok(Delivery::Order(order)) if is_order_topic(input.topic) => {
            check_order(&order).map(|()| "order")
        }
        Ok(Delivery::Ignored { .. }) if !is_order_topic(input.topic) => Ok("ignored topic"),
        Err(rejection @ Rejection::Malformed(_))
            if rejection.status().as_u16() == 400 && rejection.to_string().len() >= 10 =>
        {
            Ok("400 malformed")
        }
        other => Err(format!(
            "a correctly signed delivery (topic {:?}) answered {other:?}",
            input.topic
        )),
    }
}

impl Target for Webhook {
    type Input = WebhookInput;

    fn name(&self) -> &'static str {
        "webhook"
    }

    fn generate(&self, rng: &mut StdRng, index: u64) -> WebhookInput {
        let mut body = match index % 40 {
            // Pings and near-pings, for the one unsigned path.
            1 => mutate(rng, b"webhook_id=123"),
            _ => order_body(rng, index),
        };
        let signing = match rng.random_range(0..10) {
            0 => Signing::Unsigned,
            1 => Signing::WrongSecret,
            2 => Signing::Tampered,
            3 => Signing::Garbage,
            _ => Signing::Valid,
        };
        let signature: Option<Vec<u8>> = match signing {
            Signing::Unsigned => None,
            Signing::WrongSecret => {
                let secrets: [&[u8]; 4] = [
                    b"another secret",
                    b"",
                    b"fuzz-webhook-secreT",
                    b"fuzz-webhook-secret ",
                ];
                Some(sign(secrets[rng.random_range(0..secrets.len())], &body).into_bytes())
            }
            Signing::Tampered => {
                let signed = sign(WEBHOOK_SECRET.as_bytes(), &body);
                let sent = mutate(rng, &body);
                body = if sent == body {
                    [body.as_slice(), b" "].concat()
                } else {
                    sent
                };
                Some(signed.into_bytes())
            }
            Signing::Garbage => Some(match rng.random_range(0..4) {
                0 => {
                    let bytes: [u8; 32] = rng.random();
                    STANDARD.encode(bytes).into_bytes()
                }
                1 => TOKENS[rng.random_range(0..TOKENS.len())]
                    .as_bytes()
                    .to_vec(),
                2 => mutate(rng, sign(WEBHOOK_SECRET.as_bytes(), &body).as_bytes()),
                _ => (0..rng.random_range(0..64)).map(|_| rng.random()).collect(),
            }),
            Signing::Valid => {
                let signature = sign(WEBHOOK_SECRET.as_bytes(), &body);
                Some(if rng.random_bool(0.1) {
                    format!(" {signature} ").into_bytes()
                } else {
                    signature.into_bytes()
                })
            }
        };
        // A mutated signature that decodes to the right MAC is a right signature.
        let signing = match (&signature, signing) {
            (Some(text), Signing::Garbage)
                if decoded_signature(text)
                    == decoded_signature(sign(WEBHOOK_SECRET.as_bytes(), &body).as_bytes()) =>
            {
                Signing::Valid
            }
            _ => signing,
        };
        let mut headers = HeaderMap::new();
        let topic = rng
            .random_bool(0.9)
            .then(|| TOPICS[rng.random_range(0..TOPICS.len())]);
        if let Some(topic) = topic {
            headers.insert("x-wc-webhook-topic", HeaderValue::from_static(topic));
        }
        let signing = match signature.map(|s| HeaderValue::from_bytes(&s)) {
            Some(Ok(value)) => {
                headers.insert("x-wc-webhook-signature", value);
                signing
            }
            // Bytes no header can carry: the delivery arrives unsigned.
            Some(Err(_)) | None => Signing::Unsigned,
        };
        WebhookInput {
            body,
            headers,
            signing,
            topic,
        }
    }

    fn check(&self, input: &WebhookInput) -> Result<&'static str, String> {
        let result = self
            .checker
            .check(SHOP, &input.headers, &input.body, Utc::now());
        if result == Err(Rejection::TooLarge) {
            return if input.body.len() > MAX_BODY_BYTES {
                Ok("413 too large")
            } else {
                Err("a body within the limit refused as too large".into())
            };
        }
        if input.signing == Signing::Valid {
            signed_outcome(input, result)
        } else {
            unsigned_outcome(input, result)
        }
    }

    fn describe(&self, input: &WebhookInput) -> String {
        format!(
            "{:?}, topic {:?}, signature {:?}, body {}",
            input.signing,
            input.topic,
            input.headers.get("x-wc-webhook-signature"),
            shorten(&input.body)
        )
    }
}

fn options() -> NormaliseOptions {
    NormaliseOptions {
        nip_meta_keys: vec!["_billing_nip".into()],
        ..NormaliseOptions::default()
    }
}

/// `woo_order::parse_order` alone (no signature to compute, so more inputs
/// per second reach the normalisation).
pub struct Normalise;

impl Target for Normalise {
    type Input = Vec<u8>;

    fn name(&self) -> &'static str {
        "order normalisation"
    }

    fn generate(&self, rng: &mut StdRng, index: u64) -> Vec<u8> {
        order_body(rng, index)
    }

    fn check(&self, body: &Vec<u8>) -> Result<&'static str, String> {
        match parse_order(SHOP, body, &options()) {
            Ok(order) => check_order(&order).map(|()| "order"),
            Err(err) if err.to_string().len() >= 10 => Ok("refused"),
            Err(err) => Err(format!("unclear refusal: {err}")),
        }
    }

    fn describe(&self, body: &Vec<u8>) -> String {
        shorten(body)
    }
}

/// What the poller parses from `GET /orders`: a JSON list, each element
/// normalised by `order_from_value`. An element must come out as the
/// webhook's parser reads the same order.
pub struct OrderList;

impl Target for OrderList {
    type Input = Vec<u8>;

    fn name(&self) -> &'static str {
        "shop order list"
    }

    fn generate(&self, rng: &mut StdRng, index: u64) -> Vec<u8> {
        let seed = format!("[{ORDER},{MINIMAL}]");
        if index.is_multiple_of(50) {
            seed.into_bytes()
        } else {
            mutate(rng, seed.as_bytes())
        }
    }

    fn check(&self, body: &Vec<u8>) -> Result<&'static str, String> {
        let Ok(serde_json::Value::Array(orders)) = serde_json::from_slice(body) else {
            return Ok("not a list");
        };
        let mut outcome = "all refused";
        for value in orders {
            let text = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
            // serde_json does not round-trip every float exactly (1e-28 comes
            // back as 1.0000000000000001e-28): compare only what it rewrites
            // as it read it, as the shop's own text reaches both parsers.
            let stable =
                serde_json::from_slice::<serde_json::Value>(&text).ok() == Some(value.clone());
            let listed = order_from_value(SHOP, value, &options());
            let delivered = parse_order(SHOP, &text, &options());
            match (listed, delivered) {
                (Ok(listed), _) if !stable => {
                    check_order(&listed)?;
                    outcome = "orders";
                }
                (Err(_), _) if !stable => {}
                (Ok(listed), Ok(delivered)) if listed == delivered => {
                    check_order(&listed)?;
                    outcome = "orders";
                }
                (Ok(listed), Ok(delivered)) => {
                    return Err(format!(
                        "poller and webhook read different orders: {}",
                        first_difference(&format!("{listed:?}"), &format!("{delivered:?}"))
                    ));
                }
                (Err(_), Err(_)) => {}
                (listed, delivered) => {
                    return Err(format!(
                        "poller {:?} but webhook {:?}",
                        listed.map(|o| o.key()),
                        delivered.map(|o| o.key())
                    ));
                }
            }
        }
        Ok(outcome)
    }

    fn describe(&self, body: &Vec<u8>) -> String {
        shorten(body)
    }
}

/// Where two texts part, with some context.
fn first_difference(a: &str, b: &str) -> String {
    let at = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    // Up to 60 characters before; `a` and `b` agree up to `at`.
    let from = a[..at].char_indices().rev().nth(59).map_or(0, |(i, _)| i);
    let window = |s: &str| {
        s.get(from..)
            .unwrap_or("")
            .chars()
            .take(120)
            .collect::<String>()
    };
    format!("{:?} vs {:?}", window(a), window(b))
}

/// `contract::decode_body`, which the cloud's `ingest` applies to agent
/// batches and the agent applies to commands: plain and `gzip+base64:`
/// bodies. A decoded envelope must encode and decode back to itself.
pub struct ContractBody;

fn gzip_base64(json: &[u8]) -> String {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(json);
    let compressed = encoder.finish().unwrap_or_default();
    format!("gzip+base64:{}", STANDARD.encode(compressed))
}

impl Target for ContractBody {
    type Input = String;

    fn name(&self) -> &'static str {
        "contract body"
    }

    fn generate(&self, rng: &mut StdRng, index: u64) -> String {
        let seed = ENVELOPES[rng.random_range(0..ENVELOPES.len())].as_bytes();
        let json = if index.is_multiple_of(50) {
            seed.to_vec()
        } else {
            mutate(rng, seed)
        };
        match rng.random_range(0..8) {
            0 => gzip_base64(&json),
            // A compressed body damaged in transit.
            1 => String::from_utf8_lossy(&mutate(rng, gzip_base64(&json).as_bytes())).into_owned(),
            _ => String::from_utf8_lossy(&json).into_owned(),
        }
    }

    fn check(&self, body: &String) -> Result<&'static str, String> {
        let envelope = match contract::decode_body(body) {
            Ok(envelope) => envelope,
            Err(err) if err.to_string().len() >= 10 => return Ok("refused"),
            Err(err) => return Err(format!("unclear refusal: {err}")),
        };
        if !contract::is_supported(u64::from(envelope.version)) {
            return Err(format!("decoded unsupported version {}", envelope.version));
        }
        let again = contract::decode_body(&contract::encode_body(&envelope))
            .map_err(|err| format!("a decoded envelope does not decode once encoded: {err}"))?;
        if again != envelope {
            return Err(format!(
                "round trip changed the envelope:\n  {envelope:?}\n  {again:?}"
            ));
        }
        Ok("decoded")
    }

    fn describe(&self, body: &String) -> String {
        shorten(body.as_bytes())
    }
}

/// `woocommerce::parse_retry_after`: the shop's `Retry-After` header.
pub struct RetryAfter;

const RETRY_AFTER_SEEDS: [&str; 8] = [
    "2",
    "2.5",
    "-1",
    "0",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "Sun, 06 Dec 2026 08:00:00 +0000",
    "79228162514264337593543950335",
    "18446744073709551615",
];

impl Target for RetryAfter {
    type Input = String;

    fn name(&self) -> &'static str {
        "Retry-After"
    }

    fn generate(&self, rng: &mut StdRng, _index: u64) -> String {
        let seed = RETRY_AFTER_SEEDS[rng.random_range(0..RETRY_AFTER_SEEDS.len())];
        if rng.random_bool(0.3) {
            let n: u32 = rng.random_range(0..100_000);
            return n.to_string();
        }
        String::from_utf8_lossy(&mutate(rng, seed.as_bytes())).into_owned()
    }

    fn check(&self, value: &String) -> Result<&'static str, String> {
        let wait = parse_retry_after(value);
        // Whole seconds must read exactly; anything else may be unreadable.
        if let Ok(seconds) = value.trim().parse::<u32>() {
            let expected = Duration::from_secs(u64::from(seconds));
            if wait != Some(expected) {
                return Err(format!("{value:?} read as {wait:?}"));
            }
        }
        Ok(if wait.is_some() { "read" } else { "unreadable" })
    }

    fn describe(&self, value: &String) -> String {
        format!("{value:?}")
    }
}
