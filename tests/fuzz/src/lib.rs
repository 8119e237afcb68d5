//! Fuzzing on stable Rust of every parser that takes outside input.
//!
//! No fuzzing engine: a seeded mutation loop over real payloads (byte
//! flips, insertions, deletions, truncations, spliced JSON tokens, list
//! elements repeated past the line bound), so a run is reproduced by its
//! seed. Each [`Target`] checks properties, not only "no panic":
//!
//! - `webhook` (`functions::webhook::check`): nothing unsigned, wrongly
//!   signed or tampered with is accepted except WooCommerce's creation
//!   ping; a correctly signed delivery is an order that keeps the bounds
//!   below, an ignored topic, or a 400 with a reason;
//! - `order normalisation` (`woo_order::parse_order`): an accepted order
//!   has a positive id, 1..=`MAX_LINES` lines, quantities in range, amounts
//!   within the money bound, gross = net + VAT on each line, and a
//!   `CreateOrder` body that fits one message and decodes to the same order;
//! - `shop order list` (the poller's `GET /orders`, `order_from_value`):
//!   the same bounds, and the same order as the webhook's parser reads;
//! - `contract body` (`contract::decode_body`, plain and gzip+base64): a
//!   decoded envelope is of a supported version and survives encode∘decode;
//! - `Retry-After` (`woocommerce::parse_retry_after`): whole seconds read
//!   exactly.
//!
//! `cargo test -p fuzz` runs a short run of each; the `fuzz` binary runs
//! a million inputs each and prints a table (docs/BENCHMARKS.md, "Fuzzing").

pub mod mutate;
pub mod runner;
pub mod seeds;
pub mod targets;

pub use runner::{Report, Target, run, table};
pub use targets::{ContractBody, Normalise, OrderList, RetryAfter, Webhook};

/// Runs every target with `inputs` inputs each from `seed`.
pub fn run_all(seed: u64, inputs: u64) -> Result<Vec<Report>, String> {
    Ok(vec![
        run(&Webhook::new()?, seed, inputs),
        run(&Normalise, seed, inputs),
        run(&OrderList, seed, inputs),
        run(&ContractBody, seed, inputs),
        run(&RetryAfter, seed, inputs),
    ])
}
