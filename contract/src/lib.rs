//! The wire contract between the on-prem agent and the cloud functions.
//!
//! Everything that crosses SQS is an [`Envelope`]: a schema version, the
//! message kind, the sending agent, the incarnation of its state file and a
//! sequence number that only grows within it, the time it was sent, and
//! one [`Payload`]. The agent sends ERP
//! facts (products, prices, stock, customers, order acknowledgements and
//! progress, heartbeats) to the events queue; the cloud sends commands
//! (create or cancel an order, force a sync, resend a range, ping) to the commands
//! queue.
//!
//! Map of the crate:
//! - [`envelope`]: the envelope, the payload kinds and strict decoding;
//!   which contract version to write to a peer, across upgrades.
//! - [`records`]: what the agent projects out of Optima.
//! - [`order`]: a shop order normalised for the ERP, and its ack/progress.
//! - [`invoice`]: the invoice (and its corrections) an order's progress carries.
//! - [`command`]: what the cloud asks of the agent.
//! - [`vat`]: Polish VAT rates (23, 8, 5, 0, zw, ...).
//! - [`body`]: how an envelope becomes SQS message bodies (JSON, gzip +
//!   base64 when large, split so no message passes the queue's limit).
//!
//! This crate depends on serde and decimal/time types only: no AWS, no SQL.
//! Money and quantities are `rust_decimal::Decimal`, serialised as strings.

pub mod body;
pub mod command;
pub mod envelope;
pub mod error;
pub mod invoice;
pub mod order;
pub mod records;
pub mod vat;

pub use body::{
    MAX_BODY_BYTES, Origin, decode_body, encode_body, encode_body_at, encode_envelopes,
    encode_envelopes_at, encode_envelopes_from,
};
pub use command::{CancelOrder, ForceSync, Ping, Resend, SyncArea};
pub use envelope::{
    Envelope, HEARTBEAT_LANE_SINCE, Kind, MIN_SCHEMA_VERSION, Payload, SCHEMA_VERSION, THIS_BUILD,
    Versions, decode_envelope, heartbeat_group, is_supported,
};
pub use error::ContractError;
pub use invoice::{ExchangeRate, Invoice, InvoiceLine, Party, VatSummary};
pub use order::{
    Address, Buyer, Order, OrderAck, OrderAckOutcome, OrderLine, OrderProgress, OrderStage,
    OrderState, RealisationCheck, RetryOrder, Shipping, ShortLine,
};
pub use records::{
    AgentHealth, CustomerRecord, Heartbeat, PriceKind, PriceRecord, ProductRecord, StockRecord,
};
pub use vat::VatRate;
