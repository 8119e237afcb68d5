//! The short fuzz run in `cargo test` (CI): a few thousand seeded inputs per
//! target, each with its properties (see the crate docs). The million-input
//! run is the `fuzz` binary.

use fuzz::{ContractBody, Normalise, OrderList, Report, RetryAfter, Target, Webhook, run};

const SEED: u64 = 0x005E_ED0F_0DE5;

fn short<T: Target>(target: &T, inputs: u64) -> Report {
    let report = run(target, SEED, inputs);
    println!("{}", fuzz::table(std::slice::from_ref(&report)));
    assert_eq!(
        report.failures(),
        0,
        "{} panics, {} violations; {}",
        report.panics,
        report.violations,
        report.failures.join("\n")
    );
    report
}

#[test]
fn the_webhook_refuses_what_is_not_signed_and_survives_the_rest() {
    let webhook = match Webhook::new() {
        Ok(webhook) => webhook,
        Err(err) => panic!("the fuzz shop configuration is valid: {err}"),
    };
    let report = short(&webhook, 3_000);
    // Every path was taken, so "no violation" means something.
    for outcome in [
        "order",
        "400 malformed",
        "401 unsigned",
        "401 bad signature",
        "ignored topic",
        "ping",
    ] {
        assert!(
            report.count(outcome) > 0,
            "no input ended as {outcome}: {report:?}"
        );
    }
    assert!(report.count("401 unsigned") + report.count("401 bad signature") > 800);
}

#[test]
fn order_normalisation_keeps_its_bounds() {
    let report = short(&Normalise, 4_000);
    assert!(
        report.count("order") > 100 && report.count("refused") > 1_000,
        "{report:?}"
    );
}

#[test]
fn the_pollers_order_list_reads_as_the_webhook_does() {
    let report = short(&OrderList, 2_000);
    assert!(
        report.count("orders") > 100 && report.count("not a list") > 100,
        "{report:?}"
    );
}

#[test]
fn contract_bodies_decode_or_are_refused_and_round_trip() {
    let report = short(&ContractBody, 4_000);
    assert!(
        report.count("decoded") > 200 && report.count("refused") > 1_000,
        "{report:?}"
    );
}

#[test]
fn retry_after_reads_whole_seconds_exactly() {
    let report = short(&RetryAfter, 4_000);
    assert!(
        report.count("read") > 1_000 && report.count("unreadable") > 100,
        "{report:?}"
    );
}
