//! Round trips, golden files and hostile input for the wire contract.
//!
//! Golden files in `tests/golden/` pin the wire format: a change to any of
//! them is a contract change and needs a version step, except an added
//! envelope field older readers ignore (as `max_version` was: see
//! `tests/versions.rs`). Regenerate them
//! deliberately with `UPDATE_GOLDEN=1 cargo test -p contract`.

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use contract::*;
use rust_decimal_macros::dec;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn address() -> Address {
    Address {
        name: "Zażółć Gęślą-Jaźń".into(),
        company: Some("Łódzka Spółdzielnia Ślusarzy sp. z o.o.".into()),
        street: "ul. Źródlana 7/3".into(),
        city: "Łódź".into(),
        postcode: "90-001".into(),
        country: "PL".into(),
        phone: Some("+48 600 100 200".into()),
    }
}

fn sample_order() -> Order {
    Order {
        shop: "sklep-glowny".into(),
        order_id: "1042".into(),
        number: "1042".into(),
        revision: at("2026-11-20T10:15:00Z"),
        placed_at: at("2026-11-20T10:14:30Z"),
        status: "processing".into(),
        state: contract::OrderState::Paid,
        paid: true,
        currency: "PLN".into(),
        payment_method: "przelewy24".into(),
        payment_form: None,
        buyer: Buyer {
            email: Some("jan.kowalski@example.pl".into()),
            nip: Some("5260250274".into()),
            billing: address(),
            shipping: Some(address()),
        },
        lines: vec![OrderLine {
            sku: "MLT-500".into(),
            name: "Młotek ślusarski 500 g".into(),
            quantity: dec!(2),
            vat: VatRate::Percent(dec!(23)),
            unit_price_gross: dec!(49.99),
            total_net: dec!(81.28),
            total_vat: dec!(18.70),
            total_gross: dec!(99.98),
            discount_gross: dec!(0),
        }],
        shipping: Some(Shipping {
            method: "flat_rate".into(),
            title: "Kurier InPost".into(),
            service_sku: None,
            vat: VatRate::Percent(dec!(23)),
            total_net: dec!(12.19),
            total_vat: dec!(2.80),
            total_gross: dec!(14.99),
        }),
        discount_gross: dec!(0),
        total_net: dec!(93.47),
        total_vat: dec!(21.50),
        total_gross: dec!(114.97),
        customer_note: Some("Proszę dzwonić przed dostawą".into()),
    }
}

fn samples() -> Vec<Payload> {
    let read_at = at("2026-11-20T10:00:00Z");
    vec![
        Payload::Products(vec![ProductRecord {
            sku: "MLT-500".into(),
            erp_id: 17,
            name: "Młotek ślusarski 500 g".into(),
            ean: Some("5901234123457".into()),
            extra_eans: vec!["5900000000008".into()],
            unit: "szt.".into(),
            vat: VatRate::Percent(dec!(23)),
            group_path: vec!["Narzędzia".into(), "Ręczne".into(), "Młotki".into()],
            active: true,
            description: Some("Trzonek z drewna jesionowego".into()),
            modified_at: Some(read_at),
        }]),
        Payload::Prices(vec![PriceRecord {
            sku: "MLT-500".into(),
            price_list: "Detaliczna".into(),
            kind: PriceKind::Gross,
            value: dec!(49.9900),
            currency: "PLN".into(),
            vat: VatRate::Percent(dec!(23)),
        }]),
        Payload::Stock(vec![StockRecord {
            sku: "MLT-500".into(),
            warehouse: "MAG".into(),
            quantity: dec!(12.0000),
            reserved: dec!(2.5000),
            read_at,
        }]),
        Payload::Customers(vec![CustomerRecord {
            code: "KOWALSKI".into(),
            erp_id: 5,
            name: "Jan Kowalski Usługi Ślusarskie".into(),
            nip: Some("5260250274".into()),
            email: Some("jan.kowalski@example.pl".into()),
            price_level: Some(2),
        }]),
        Payload::OrderAck(OrderAck {
            shop: "sklep-glowny".into(),
            order_id: "1042".into(),
            revision: at("2026-11-20T10:15:00Z"),
            outcome: OrderAckOutcome::Written {
                document_id: 311,
                document_number: "RO/311/2026".into(),
            },
        }),
        Payload::OrderProgress(OrderProgress {
            shop: "sklep-glowny".into(),
            order_id: "1042".into(),
            stage: OrderStage::Shipped,
            tracking_number: Some("620000000000123456789012".into()),
            carrier: Some("InPost".into()),
            documents: vec!["FS/77/2026".into(), "WZ/80/2026".into()],
            invoices: Vec::new(),
            realisation: None,
            observed_at: read_at,
        }),
        Payload::Heartbeat(Heartbeat {
            agent_version: "0.1.0".into(),
            agent_clock: read_at,
            health: AgentHealth {
                sql_server: false,
                sql_error: Some("login failed (18456)".into()),
                outbox_depth: 3,
                takes_orders: None,
                rejected_records: None,
                rejected_latest: None,
            },
        }),
        Payload::CreateOrder(Box::new(sample_order())),
        Payload::ForceSync(ForceSync {
            areas: vec![SyncArea::Stock, SyncArea::Prices],
            skus: vec!["MLT-500".into()],
            ignore_hashes: true,
        }),
        Payload::Resend(Resend {
            from_seq: 40,
            to_seq: 41,
            incarnation: None,
        }),
        Payload::Ping(Ping {
            nonce: "n-1".into(),
        }),
        Payload::CancelOrder(CancelOrder {
            shop: "sklep-glowny".into(),
            order_id: "1042".into(),
            shop_status: "cancelled".into(),
        }),
        Payload::RetryOrder(RetryOrder {
            shop: "sklep-glowny".into(),
            order_id: "1042".into(),
        }),
    ]
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn every_kind_round_trips_and_matches_its_golden_file() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let sent_at = Utc
        .with_ymd_and_hms(2026, 11, 20, 10, 0, 1)
        .single()
        .unwrap_or_default();
    let mut kinds_seen = Vec::new();
    for (i, payload) in samples().into_iter().enumerate() {
        let envelope = Envelope::new("biuro-1", 100 + i as u64, sent_at, payload);
        let kind = envelope.kind();
        kinds_seen.push(kind);
        let json = envelope.to_json();
        let decoded = decode_envelope(&json).expect("our own JSON decodes");
        assert_eq!(decoded, envelope, "round trip of {}", kind.as_str());

        let pretty: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
        let pretty = serde_json::to_string_pretty(&pretty).expect("serialises") + "\n";
        let path = golden_dir().join(format!("{}.json", kind.as_str()));
        if update {
            std::fs::write(&path, &pretty).expect("golden file written");
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "golden file {} missing ({e}); run with UPDATE_GOLDEN=1",
                path.display()
            )
        });
        assert_eq!(pretty, golden, "wire format of {} changed", kind.as_str());
        let from_golden = decode_envelope(golden.as_bytes()).expect("golden decodes");
        assert_eq!(from_golden, envelope);
    }
    assert_eq!(
        kinds_seen,
        Kind::ALL.to_vec(),
        "every kind has a golden file"
    );
}

#[test]
fn the_clouds_payment_and_delivery_mapping_is_optional_both_ways() {
    // The golden create_order (and every order stored before the fields)
    // has neither: they read as absent, and absent ones are not written.
    let golden = std::fs::read_to_string(golden_dir().join("create_order.json"))
        .expect("the golden create_order");
    let Payload::CreateOrder(old) = decode_envelope(golden.as_bytes()).expect("decodes").payload
    else {
        panic!("a create_order")
    };
    assert_eq!(old.payment_form, None);
    assert_eq!(
        old.shipping.as_ref().and_then(|s| s.service_sku.clone()),
        None
    );

    let mut mapped = sample_order();
    mapped.payment_form = Some("karta".into());
    if let Some(shipping) = mapped.shipping.as_mut() {
        shipping.service_sku = Some("KURIER".into());
    }
    let envelope = Envelope::new(
        "cloud",
        0,
        Utc::now(),
        Payload::CreateOrder(Box::new(mapped)),
    );
    let body = encode_body(&envelope);
    let decoded = decode_body(&body).expect("decodes");
    assert_eq!(decoded, envelope, "the mapping travels");
    // An older agent's decoder ignores fields it does not know (no
    // deny_unknown_fields on the contract's types), so it reads the order
    // and maps with its own configuration: the same envelope at version 1.
    let at_1 = encode_body_at(&envelope, MIN_SCHEMA_VERSION).expect("encodes at the minimum");
    assert!(at_1.contains(r#""payment_form":"karta""#), "{at_1}");
    assert!(at_1.contains(r#""service_sku":"KURIER""#), "{at_1}");
}

#[test]
fn money_is_a_string_on_the_wire_and_keeps_its_scale() {
    let envelope = Envelope::new("a", 1, Utc::now(), samples().remove(1));
    let json = String::from_utf8(envelope.to_json()).expect("utf8");
    assert!(json.contains(r#""value":"49.9900""#), "{json}");
    let decoded = decode_envelope(json.as_bytes()).expect("decodes");
    let Payload::Prices(prices) = decoded.payload else {
        panic!("kind")
    };
    assert_eq!(prices[0].value.scale(), 4);
}

#[test]
fn bad_envelopes_give_errors_not_panics() {
    let cases: &[(&str, &str)] = &[
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("[]", "version"),
        (r#"{"kind":"ping"}"#, "version"),
        (
            r#"{"version":99,"kind":"ping","agent_id":"a","seq":1,"sent_at":"2026-01-01T00:00:00Z","payload":{"nonce":"x"}}"#,
            "unsupported contract version 99",
        ),
        (
            r#"{"version":0,"kind":"ping","agent_id":"a","seq":1,"sent_at":"2026-01-01T00:00:00Z","payload":{"nonce":"x"}}"#,
            "unsupported contract version 0",
        ),
        (r#"{"version":-1,"kind":"ping"}"#, "version"),
        (
            r#"{"version":1,"kind":"teleport","agent_id":"a","seq":1,"sent_at":"2026-01-01T00:00:00Z","payload":{}}"#,
            "unknown message kind `teleport`",
        ),
        (
            r#"{"version":1,"agent_id":"a","seq":1,"sent_at":"2026-01-01T00:00:00Z","payload":{}}"#,
            "`kind`",
        ),
        (
            r#"{"version":1,"kind":"ping","agent_id":"a","seq":-5,"sent_at":"2026-01-01T00:00:00Z","payload":{"nonce":"x"}}"#,
            "`seq`",
        ),
        (
            r#"{"version":1,"kind":"ping","agent_id":"a","seq":1,"sent_at":"yesterday","payload":{"nonce":"x"}}"#,
            "`sent_at`",
        ),
        (
            r#"{"version":1,"kind":"ping","agent_id":"a","seq":1,"sent_at":"2026-01-01T00:00:00Z"}"#,
            "`payload`",
        ),
        (
            r#"{"version":1,"kind":"stock","agent_id":"a","seq":1,"sent_at":"2026-01-01T00:00:00Z","payload":[{"sku":"X","warehouse":"MAG","quantity":"abc","reserved":"0","read_at":"2026-01-01T00:00:00Z"}]}"#,
            "payload of kind `stock`",
        ),
        (
            r#"{"version":1,"kind":"prices","agent_id":"a","seq":1,"sent_at":"2026-01-01T00:00:00Z","payload":[{"sku":"X","price_list":"D","kind":"gross","value":"1","currency":"PLN","vat":"abc"}]}"#,
            "payload of kind `prices`",
        ),
    ];
    for (input, expected) in cases {
        let err = decode_envelope(input.as_bytes()).expect_err(input);
        assert!(
            err.to_string().contains(expected),
            "{input}: got `{err}`, expected `{expected}`"
        );
    }
    // Raw bytes that are not UTF-8 are a JSON error too.
    assert!(decode_envelope(&[0xff, 0xfe, 0x00]).is_err());
    assert!(decode_body("gzip+base64:!!!not-base64").is_err());
    assert!(
        decode_body("gzip+base64:aGVsbG8=").is_err(),
        "base64 of non-gzip data"
    );
}

fn big_stock_batch(n: usize) -> Payload {
    Payload::Stock(
        (0..n)
            .map(|i| StockRecord {
                // Varied data compresses less, which is the hard case for splitting.
                sku: format!("SKU-{i:06}-{}", i.wrapping_mul(2654435761) % 1_000_003),
                warehouse: ["MAG", "SKLEP", "HURT"][i % 3].into(),
                quantity: rust_decimal::Decimal::new((i as i64 * 7919) % 100_000, 4),
                reserved: rust_decimal::Decimal::new(i as i64 % 17, 0),
                read_at: at("2026-11-20T10:00:00Z"),
            })
            .collect(),
    )
}

#[test]
fn large_batches_are_compressed_and_split_under_the_limit_in_order() {
    let original = big_stock_batch(20_000);
    let mut seq = 500;
    let limit = 64 * 1024;
    let parts = encode_envelopes("biuro-1", Utc::now(), original.clone(), limit, || {
        seq += 1;
        seq
    })
    .expect("encodes");
    assert!(
        parts.len() > 1,
        "20,000 records must not fit in one 64 KiB body"
    );
    let mut rebuilt = Vec::new();
    let mut last_seq = 500;
    for (envelope, body) in &parts {
        assert!(
            body.len() <= limit,
            "body of {} bytes over {limit}",
            body.len()
        );
        assert!(
            body.starts_with("gzip+base64:"),
            "large bodies are compressed"
        );
        assert!(envelope.seq > last_seq, "sequence numbers grow");
        last_seq = envelope.seq;
        let decoded = decode_body(body).expect("decodes");
        assert_eq!(&decoded, envelope);
        let Payload::Stock(records) = decoded.payload else {
            panic!("kind")
        };
        rebuilt.extend(records);
    }
    assert_eq!(
        Payload::Stock(rebuilt),
        original,
        "nothing lost, nothing reordered"
    );
}

#[test]
fn small_bodies_stay_plain_json() {
    let (envelope, body) =
        encode_envelopes("a", Utc::now(), big_stock_batch(3), MAX_BODY_BYTES, || 1)
            .expect("encodes")
            .remove(0);
    assert!(body.starts_with('{'));
    assert_eq!(decode_body(&body).expect("decodes"), envelope);
}

#[test]
fn a_single_record_over_the_limit_is_an_error() {
    let mut order = sample_order();
    // Varied text, so compression cannot make it fit.
    let letters: Vec<char> = "aąbcćdeęfghijklłmnńoóprsśtuwyzźż".chars().collect();
    let mut state: u64 = 1;
    let note: String = (0..20_000)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            letters[(state >> 33) as usize % letters.len()]
        })
        .collect();
    order.customer_note = Some(note);
    let err = encode_envelopes(
        "a",
        Utc::now(),
        Payload::CreateOrder(Box::new(order)),
        1024,
        || 1,
    )
    .expect_err("a 20,000-character note cannot fit in 1 KiB");
    assert!(err.to_string().contains("create_order"), "{err}");
}
