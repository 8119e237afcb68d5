//! The contract's rules that callers rely on without seeing them: which
//! kinds are commands, how a batch counts and splits, the heartbeat lane,
//! the body limits (plain below 8 KiB, one message up to 250 KiB, a
//! compressed body refused past 64 MiB inflated) and the VAT rates. Each
//! test was written against a mutant `cargo mutants -p contract` left alive
//! (docs/TESTING.md).

use std::io::Write;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use contract::*;
use flate2::Compression;
use flate2::write::GzEncoder;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

fn stock(n: usize) -> Vec<StockRecord> {
    (0..n)
        .map(|i| StockRecord {
            sku: format!("SKU-{i:06}-{}", i.wrapping_mul(2_654_435_761) % 1_000_003),
            warehouse: "MAG".into(),
            quantity: Decimal::new((i as i64 * 7919) % 100_000, 2),
            reserved: Decimal::ZERO,
            read_at: at(),
        })
        .collect()
}

fn heartbeat() -> Payload {
    Payload::Heartbeat(Heartbeat {
        agent_version: "0.1.0".into(),
        agent_clock: at(),
        health: AgentHealth {
            sql_server: true,
            sql_error: None,
            outbox_depth: 0,
            takes_orders: Some(true),
            rejected_records: None,
            rejected_latest: None,
        },
    })
}

#[test]
fn commands_are_the_kinds_that_travel_from_the_cloud_to_the_agent() {
    let commands: Vec<&str> = Kind::ALL
        .into_iter()
        .filter(|k| k.is_command())
        .map(Kind::as_str)
        .collect();
    assert_eq!(
        commands,
        [
            "create_order",
            "force_sync",
            "resend",
            "ping",
            "cancel_order"
        ]
    );
}

#[test]
fn this_build_reads_versions_one_and_two() {
    let read: Vec<u64> = (0..5).filter(|v| is_supported(*v)).collect();
    assert_eq!(read, [1, 2]);
}

#[test]
fn an_agents_heartbeats_have_their_own_fifo_group() {
    assert_eq!(heartbeat_group("biuro-1"), "biuro-1:heartbeat");
}

#[test]
fn only_a_version_two_heartbeat_rides_in_the_heartbeat_lane() {
    let mut beat = Envelope::new("a", 7, at(), heartbeat());
    assert!(beat.in_heartbeat_lane());
    beat.version = 1;
    assert!(!beat.in_heartbeat_lane(), "version 1 heartbeats are data");
    let data = Envelope::new("a", 7, at(), Payload::Stock(stock(1)));
    assert!(!data.in_heartbeat_lane());
}

#[test]
fn a_batch_counts_its_records_and_a_single_object_counts_one() {
    let product = ProductRecord {
        sku: "P".into(),
        erp_id: 1,
        name: "Młotek".into(),
        ean: None,
        extra_eans: Vec::new(),
        unit: "szt".into(),
        vat: VatRate::Percent(dec!(23)),
        group_path: Vec::new(),
        active: true,
        description: None,
        modified_at: None,
    };
    let price = PriceRecord {
        sku: "P".into(),
        price_list: "Detaliczna".into(),
        kind: PriceKind::Gross,
        value: dec!(1.00),
        currency: "PLN".into(),
        vat: VatRate::Percent(dec!(23)),
    };
    let batches = [
        Payload::Products(vec![product.clone(), product.clone(), product]),
        Payload::Prices(vec![price.clone(), price.clone(), price]),
        Payload::Stock(stock(3)),
        Payload::Customers(Vec::new()),
    ];
    let counts: Vec<usize> = batches.iter().map(Payload::len).collect();
    assert_eq!(counts, [3, 3, 3, 0]);
    assert!(batches[3].is_empty());
    assert!(!batches[2].is_empty());
    assert_eq!(heartbeat().len(), 1);
    assert!(!heartbeat().is_empty());
}

#[test]
fn a_batch_splits_into_its_first_and_second_half_and_one_record_does_not_split() {
    let Ok((head, tail)) = Payload::Stock(stock(5)).split_in_half() else {
        panic!("five records split");
    };
    assert_eq!((head.len(), tail.len()), (2, 3));
    let Ok((one, other)) = Payload::Stock(stock(2)).split_in_half() else {
        panic!("two records split");
    };
    assert_eq!((one.len(), other.len()), (1, 1));
    assert!(Payload::Stock(stock(1)).split_in_half().is_err());
    assert!(heartbeat().split_in_half().is_err());
}

#[test]
fn a_body_is_plain_json_up_to_8_kib_and_compressed_above() {
    let small = Envelope::new("a", 1, at(), Payload::Stock(stock(30)));
    let json = small.to_json();
    assert!(
        json.len() > 2 * 1024 && json.len() <= 8 * 1024,
        "{}",
        json.len()
    );
    let body = encode_body(&small);
    assert_eq!(body.as_bytes(), json.as_slice(), "plain JSON, unchanged");
    assert_eq!(decode_body(&body).ok(), Some(small));

    let large = Envelope::new("a", 2, at(), Payload::Stock(stock(200)));
    assert!(large.to_json().len() > 8 * 1024);
    let body = encode_body(&large);
    assert!(body.starts_with("gzip+base64:"), "{}", &body[..20]);
    assert_eq!(decode_body(&body).ok(), Some(large));
}

#[test]
fn a_batch_that_compresses_under_250_kib_goes_as_one_message() {
    let parts = encode_envelopes("a", at(), Payload::Stock(stock(3000)), MAX_BODY_BYTES, || 1)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parts.len(), 1, "one body of {} bytes", parts[0].1.len());
    assert!(parts[0].1.len() > 16 * 1024, "{}", parts[0].1.len());
    assert_eq!(MAX_BODY_BYTES, 250 * 1024);
}

fn gzip_body(json: &[u8]) -> String {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(json).unwrap_or_else(|e| panic!("{e}"));
    let compressed = encoder.finish().unwrap_or_else(|e| panic!("{e}"));
    format!(
        "gzip+base64:{}",
        base64::engine::general_purpose::STANDARD.encode(compressed)
    )
}

#[test]
fn a_compressed_body_inflating_up_to_64_mib_is_read_and_past_it_refused() {
    let big = Envelope::new("a", 3, at(), Payload::Stock(stock(20_000)));
    let json = big.to_json();
    assert!(json.len() > 2 * 1024 * 1024, "{}", json.len());
    assert_eq!(decode_body(&gzip_body(&json)).ok(), Some(big));

    // Exactly at the limit is still read (trailing spaces are valid JSON).
    let small = Envelope::new("a", 4, at(), Payload::Stock(stock(2)));
    let mut at_limit = small.to_json();
    at_limit.resize(64 * 1024 * 1024, b' ');
    assert_eq!(decode_body(&gzip_body(&at_limit)).ok(), Some(small));

    // Valid JSON start, then spaces to one byte past the limit.
    let mut bomb = b"{\"version\":2".to_vec();
    bomb.resize(64 * 1024 * 1024 + 1, b' ');
    match decode_body(&gzip_body(&bomb)) {
        Err(ContractError::TooLargeInflated { limit }) => assert_eq!(limit, 64 * 1024 * 1024),
        other => panic!("expected TooLargeInflated, got {other:?}"),
    }
}

#[test]
fn vat_rates_read_as_optima_writes_them() {
    let rate = |s: &str| s.parse::<VatRate>();
    assert_eq!(rate("np").ok(), Some(VatRate::NotSubject));
    assert_eq!(rate("oo").ok(), Some(VatRate::ReverseCharge));
    assert_eq!(rate("ZW").ok(), Some(VatRate::Exempt));
    assert_eq!(rate("100").ok(), Some(VatRate::Percent(dec!(100))));
    assert!(rate("100.01").is_err());
    assert!(rate("-1").is_err());
    let percents: Vec<Decimal> = ["23", "8%", "zw", "np", "oo"]
        .iter()
        .map(|s| rate(s).map(|r| r.percent()).unwrap_or(Decimal::MAX))
        .collect();
    assert_eq!(percents, [dec!(23), dec!(8), dec!(0), dec!(0), dec!(0)]);
}
