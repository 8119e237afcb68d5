//! A bounded, deterministic fuzz of the webhook's checks (signature, ping,
//! topic, order JSON normalisation), run by `cargo test` on stable Rust.
//!
//! A seeded mutation loop over real WooCommerce order payloads: byte flips,
//! insertions, deletions, truncations, spliced JSON tokens (extreme numbers,
//! floats, nulls, nesting, non-ASCII, invalid UTF-8), re-signed most of the
//! time so mutations reach the parser, unsigned or wrongly signed the rest.
//! Every input must be answered 2xx or 4xx without a panic, and every order
//! that would be stored must be valid: a positive numeric id, 1 to
//! `MAX_LINES` lines, quantities in range, non-negative line amounts, and
//! a `CreateOrder` body that fits one queue message and decodes back to the
//! same order.

use axum::http::{HeaderMap, HeaderValue};
use contract::Payload;
use functions::env::FunctionEnv;
use functions::shop::woo_order::{MAX_LINES, MAX_QUANTITY, sign};
use functions::shops::Shops;
use functions::webhook::{Delivery, check};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

const SECRET: &str = "fuzz-webhook-secret";
const ITERATIONS: usize = 20_000;

/// A WooCommerce order as the stand-in's REST API sends it (non-ASCII as
/// \uXXXX, `/` escaped, price as a number).
const ORDER: &str = r#"{"id":42,"parent_id":0,"status":"processing","currency":"PLN","version":"9.4.2","prices_include_tax":true,"date_created":"2026-03-01T10:00:00","date_created_gmt":"2026-03-01T09:00:00","date_modified":"2026-03-01T10:00:05","date_modified_gmt":"2026-03-01T09:00:05","discount_total":"23.00","discount_tax":"4.84","shipping_total":"15.00","shipping_tax":"3.45","cart_tax":"43.56","total":"269.01","total_tax":"47.01","customer_id":0,"order_key":"wc_order_abc","billing":{"first_name":"\u017baneta","last_name":"\u0141\u0119cka","company":"Firma Sp. z o.o.","address_1":"ul. D\u0142uga 1\/3","address_2":"","city":"\u0141\u00f3d\u017a","state":"","postcode":"90-001","country":"PL","email":"a@example.pl","phone":"600100200"},"shipping":{"first_name":"Jan","last_name":"Nowak","company":"","address_1":"Polna 2","address_2":"","city":"Krak\u00f3w","state":"","postcode":"30-001","country":"PL","phone":""},"payment_method":"bacs","payment_method_title":"Przelew","transaction_id":"","customer_ip_address":"127.0.0.1","customer_user_agent":"x","created_via":"checkout","customer_note":"Prosz\u0119 dzwoni\u0107","date_completed":null,"date_completed_gmt":null,"date_paid":"2026-03-01T10:00:05","date_paid_gmt":"2026-03-01T09:00:05","cart_hash":"","number":"42","meta_data":[{"id":9,"key":"_billing_nip","value":"5260250274"}],"line_items":[{"id":1,"name":"Kawa ziarnista 1 kg","product_id":10,"variation_id":0,"quantity":2,"tax_class":"","subtotal":"200.00","subtotal_tax":"46.00","total":"180.00","total_tax":"41.40","taxes":[{"id":1,"total":"41.40","subtotal":"46.00"}],"meta_data":[],"sku":"KAWA-1","price":90,"image":{"id":"","src":""},"parent_name":null},{"id":2,"name":"Herbata","product_id":11,"variation_id":0,"quantity":3,"tax_class":"reduced-rate","subtotal":"30.00","subtotal_tax":"2.40","total":"27.00","total_tax":"2.16","taxes":[{"id":2,"total":"2.16","subtotal":"2.40"}],"meta_data":[],"sku":"HERB-1","price":9,"image":{"id":"","src":""},"parent_name":null}],"tax_lines":[{"id":5,"rate_code":"PL-VAT 23%-1","rate_id":1,"label":"VAT","compound":false,"tax_total":"41.40","shipping_tax_total":"3.45","rate_percent":23,"meta_data":[]},{"id":6,"rate_code":"PL-VAT 8%-1","rate_id":2,"label":"VAT","compound":false,"tax_total":"2.16","shipping_tax_total":"0.00","rate_percent":8,"meta_data":[]}],"shipping_lines":[{"id":7,"method_title":"Kurier","method_id":"flat_rate","instance_id":"","total":"15.00","total_tax":"3.45","taxes":[{"id":1,"total":"3.45","subtotal":""}],"meta_data":[]}],"fee_lines":[{"id":8,"name":"Pobranie","tax_class":"","tax_status":"taxable","amount":"5.00","total":"5.00","total_tax":"1.15","taxes":[{"id":1,"total":"1.15","subtotal":""}],"meta_data":[]}],"coupon_lines":[{"id":3,"code":"rabat10","discount":"23.00","discount_tax":"4.84","meta_data":[]}],"refunds":[],"payment_url":"","is_editable":false,"needs_payment":false,"needs_processing":true,"currency_symbol":"z\u0142","_links":{"self":[{"href":"http:\/\/127.0.0.1\/wp-json\/wc\/v3\/orders\/42"}]}}"#;

/// The same shape, minimal: a guest, no shipping, a pending order.
const MINIMAL: &str = r#"{"id":7,"status":"pending","currency":"PLN","date_modified_gmt":"2026-01-02T03:04:05","total":"12.30","total_tax":"2.30","billing":{},"line_items":[{"name":"X","sku":"X-1","quantity":1,"total":"10.00","total_tax":"2.30"}]}"#;

/// Tokens spliced into payloads where a value or a structure would be.
const TOKENS: &[&str] = &[
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "0",
    "-1",
    "1e309",
    "-0.0",
    "1.5",
    "18446744073709551616",
    "1000000000",
    "\"1e400\"",
    "\"-99999999999999999999999999999\"",
    "\"NaN\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"Zażółć gęślą jaźń\"",
    "[[[[[[[[[[]]]]]]]]]]",
    "{\"id\":",
    "\"quantity\":",
    ",",
    ":",
    "\"",
    "\\",
];

fn shops() -> Shops {
    let mut env = FunctionEnv::from_map([(
        "SHOPS".to_owned(),
        r#"[{"id":"sklep","platform":"woocommerce","base_url":"http://127.0.0.1:9","rules":{"price_list":"Detaliczna","warehouses":["MAG"]}}]"#.to_owned(),
    )]);
    env.set_shop_secrets(format!(
        r#"{{"sklep":{{"consumer_key":"ck","consumer_secret":"cs","webhook_secret":"{SECRET}"}}}}"#
    ));
    match Shops::from_env(&env, true) {
        Ok(shops) => shops,
        Err(err) => panic!("the fuzz shop configuration is valid: {err}"),
    }
}

fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut body = seed.to_vec();
    let rounds = rng.random_range(1..=4);
    for _ in 0..rounds {
        let len = body.len();
        match rng.random_range(0..8) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                body[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let i = rng.random_range(0..=len);
                let byte: u8 = rng.random();
                body.insert(i, byte);
            }
            2 if len > 1 => {
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..64)).min(len);
                body.drain(start..end);
            }
            3 if len > 1 => {
                body.truncate(rng.random_range(0..len));
            }
            4 | 5 => {
                // Replace what follows a `:` (a value) with a token.
                let colons: Vec<usize> = body
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b':')
                    .map(|(i, _)| i)
                    .collect();
                if let Some(&at) = colons.get(rng.random_range(0..colons.len().max(1))) {
                    let end = body[at + 1..]
                        .iter()
                        .position(|b| *b == b',' || *b == b'}' || *b == b']')
                        .map(|p| at + 1 + p)
                        .unwrap_or(body.len());
                    let token = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
                    body.splice(at + 1..end, token.iter().copied());
                }
            }
            6 if len > 2 => {
                // Duplicate a slice (repeated keys, doubled lines).
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..256)).min(len);
                let slice = body[start..end].to_vec();
                let at = rng.random_range(0..=body.len());
                body.splice(at..at, slice);
            }
            _ => {
                let i = rng.random_range(0..=len);
                let token = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
                body.splice(i..i, token.iter().copied());
            }
        }
    }
    body
}

fn headers(rng: &mut StdRng, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let topics = [
        "order.created",
        "order.updated",
        "order.deleted",
        "product.updated",
        "",
    ];
    let topic = topics[rng.random_range(0..topics.len())];
    if !topic.is_empty() {
        headers.insert("x-wc-webhook-topic", HeaderValue::from_static(topic));
    }
    let signature = match rng.random_range(0..10) {
        0 => None,
        1 => Some(sign(b"another secret", body)),
        _ => Some(sign(SECRET.as_bytes(), body)),
    };
    if let Some(signature) = signature
        && let Ok(value) = HeaderValue::from_str(&signature)
    {
        headers.insert("x-wc-webhook-signature", value);
    }
    headers
}

fn assert_valid(order: &contract::Order, input: &[u8]) {
    let shown = String::from_utf8_lossy(&input[..input.len().min(300)]).into_owned();
    assert!(
        !order.order_id.is_empty()
            && order.order_id.bytes().all(|b| b.is_ascii_digit())
            && order.order_id.bytes().any(|b| b != b'0'),
        "bad id {:?} from {shown}",
        order.order_id
    );
    assert!(
        !order.lines.is_empty() && order.lines.len() <= MAX_LINES * 2,
        "line count {} from {shown}",
        order.lines.len()
    );
    for line in &order.lines {
        assert!(
            line.quantity > Decimal::ZERO && line.quantity <= Decimal::from(MAX_QUANTITY),
            "quantity {} from {shown}",
            line.quantity
        );
        assert!(
            !line.total_net.is_sign_negative() || line.sku.starts_with("fee:"),
            "negative line from {shown}"
        );
    }
    let body = match functions::orders::command_body(order) {
        Ok(body) => body,
        Err(err) => panic!("a checked order has a command body: {err}"),
    };
    match contract::decode_body(&body) {
        Ok(envelope) => match envelope.payload {
            Payload::CreateOrder(decoded) => assert_eq!(*decoded, *order, "round trip"),
            other => panic!("decoded {:?}", other.kind()),
        },
        Err(err) => panic!("the command body decodes: {err} (from {shown})"),
    }
}

#[test]
fn the_webhook_parser_survives_mutated_payloads() {
    let shops = shops();
    let mut rng = StdRng::seed_from_u64(0x005E_ED0F_0DE5);
    let seeds = [ORDER.as_bytes(), MINIMAL.as_bytes()];
    let (mut orders, mut refused, mut other) = (0usize, 0usize, 0usize);
    let started = std::time::Instant::now();
    for i in 0..ITERATIONS {
        let seed = seeds[i % seeds.len()];
        // Every 50th input unmutated, so valid orders keep being exercised.
        let body = if i % 50 == 0 {
            seed.to_vec()
        } else {
            mutate(&mut rng, seed)
        };
        let headers = headers(&mut rng, &body);
        match check(&shops, "sklep", &headers, &body) {
            Ok(Delivery::Order(order)) => {
                orders += 1;
                assert_valid(&order, &body);
            }
            Ok(_) => other += 1,
            Err(rejection) => {
                let status = rejection.status().as_u16();
                assert!(
                    (400..500).contains(&status),
                    "{rejection} answered {status}"
                );
                refused += 1;
            }
        }
    }
    println!(
        "{ITERATIONS} inputs in {:?}: {orders} orders, {refused} refused, {other} pings/ignored",
        started.elapsed()
    );
    assert!(orders > ITERATIONS / 50, "valid orders were exercised");
    assert!(refused > ITERATIONS / 4, "refusals were exercised");
}
