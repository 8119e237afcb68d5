//! A shop order normalised for the ERP, and what the agent answers about it.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::VatRate;

/// A postal address. Fields are optional because shops leave them empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub company: Option<String>,
    pub street: String,
    pub city: String,
    pub postcode: String,
    /// ISO 3166-1 alpha-2, e.g. "PL".
    pub country: String,
    pub phone: Option<String>,
}

/// Who bought: only the fields the ERP document needs (data minimisation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Buyer {
    pub email: Option<String>,
    /// Polish tax id when the buyer is a company asking for an invoice.
    pub nip: Option<String>,
    pub billing: Address,
    pub shipping: Option<Address>,
}

/// One order line, as the shop priced it (after discounts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: String,
    pub name: String,
    pub quantity: Decimal,
    pub vat: VatRate,
    /// Unit price gross after discount.
    pub unit_price_gross: Decimal,
    pub total_net: Decimal,
    pub total_vat: Decimal,
    pub total_gross: Decimal,
    /// Discount on this line, gross (kept so the document shows it).
    #[serde(default)]
    pub discount_gross: Decimal,
}

/// Delivery, billed as its own line in the ERP document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipping {
    /// The shop's delivery method id, mapped to Optima's by configuration.
    pub method: String,
    pub title: String,
    /// The SKU (`Twr_Kod`) of the Optima service item the shop's settings
    /// in the cloud map `method` to, filled when the cloud sends the order;
    /// the agent prefers it to its own `[orders]` mapping. Absent (the
    /// shop's settings map nothing, an older cloud, a stored order): the
    /// agent's mapping decides. Needs no version step: an older agent
    /// ignores a field it does not know and uses its own mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_sku: Option<String>,
    pub vat: VatRate,
    pub total_net: Decimal,
    pub total_vat: Decimal,
    pub total_gross: Decimal,
}

/// Where an order stands in its shop, named the same for every platform.
/// Each connector maps its platform's statuses onto these; the platform's
/// own status stays in [`Order::status`] for display and for a trigger on
/// one exact status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Placed; the platform says nothing yet of payment.
    Placed,
    /// Placed and waiting for the buyer's payment (a bank transfer, an
    /// unfinished online payment).
    AwaitingPayment,
    /// Paid, or accepted for fulfilment with payment on delivery: ready
    /// to fulfil.
    Paid,
    /// Fulfilled and closed by the shop.
    Completed,
    /// Will not be fulfilled: cancelled, refunded, failed, deleted.
    Cancelled,
    /// A status the platform's mapping does not name (a draft, a plugin's
    /// own status). An order written before this field existed reads as
    /// this (an older agent ignores the field).
    #[default]
    Other,
}

impl OrderState {
    /// Whether the order will not be fulfilled.
    pub fn is_closed(self) -> bool {
        self == OrderState::Cancelled
    }
}

/// A shop order as the ERP needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Our id for the shop (from configuration), e.g. "sklep-glowny".
    pub shop: String,
    /// The platform's order id.
    pub order_id: String,
    /// The number the customer sees (goes to `TrN_NumerObcy`).
    pub number: String,
    /// The platform's modified time: a newer revision supersedes an older one.
    pub revision: DateTime<Utc>,
    pub placed_at: DateTime<Utc>,
    /// The platform's own status, as the shop shows it.
    pub status: String,
    /// The status in the neutral lifecycle every platform maps to.
    #[serde(default)]
    pub state: OrderState,
    pub paid: bool,
    pub currency: String,
    /// The shop's payment method id, mapped to Optima's by configuration.
    pub payment_method: String,
    /// The Optima payment form (`FPl_Nazwa`) the shop's settings in the
    /// cloud map `payment_method` to, filled when the cloud sends the
    /// order; the agent prefers it to its own `[orders]` mapping. Absent:
    /// the agent's mapping decides (as for [`Shipping::service_sku`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_form: Option<String>,
    pub buyer: Buyer,
    pub lines: Vec<OrderLine>,
    pub shipping: Option<Shipping>,
    pub discount_gross: Decimal,
    pub total_net: Decimal,
    pub total_vat: Decimal,
    pub total_gross: Decimal,
    pub customer_note: Option<String>,
}

impl Order {
    /// The idempotency key of this order everywhere: shop and order id.
    pub fn key(&self) -> String {
        format!("{}:{}", self.shop, self.order_id)
    }
}

/// How the agent's write of an order ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OrderAckOutcome {
    /// Written now, or found already written (a redelivery): same answer.
    Written {
        document_id: i64,
        document_number: String,
    },
    /// Not written and will not be until someone acts (unknown SKU, ...).
    Parked { reason: String },
    /// The shop cancelled the order and Optima holds no live document for
    /// it any more: the buffered document was deleted (`document_number`),
    /// or none had been written (`None`). Contract version 2 and later.
    Withdrawn { document_number: Option<String> },
    /// The shop cancelled the order, but its document has left the buffer
    /// or been realised, so it stays in Optima until a person decides.
    /// Contract version 2 and later.
    CancelHeld {
        document_number: String,
        reason: String,
    },
}

impl OrderAckOutcome {
    /// The oldest contract version that carries this outcome.
    pub fn since_version(&self) -> u16 {
        match self {
            OrderAckOutcome::Written { .. } | OrderAckOutcome::Parked { .. } => 1,
            OrderAckOutcome::Withdrawn { .. } | OrderAckOutcome::CancelHeld { .. } => 2,
        }
    }
}

/// The agent's answer to a create-order or cancel-order command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderAck {
    pub shop: String,
    pub order_id: String,
    pub revision: DateTime<Utc>,
    #[serde(flatten)]
    pub outcome: OrderAckOutcome,
}

/// Where an order stands in the ERP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStage {
    /// The reservation exists and is waiting.
    Accepted,
    /// Invoiced or receipted, goods not yet issued.
    Invoiced,
    /// Goods issued (WZ), possibly with a tracking number.
    Shipped,
    Cancelled,
}

/// A change in the ERP documents linked to a shop order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderProgress {
    pub shop: String,
    pub order_id: String,
    pub stage: OrderStage,
    pub tracking_number: Option<String>,
    /// The courier of the tracking number, where the ERP names it (a
    /// Sendit shipment's `SZL_KurierNazwa`). Absent from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// The ERP documents that show it, e.g. ["FS/12/2026", "WZ/40/2026"].
    pub documents: Vec<String>,
    /// The approved invoices (FS) and corrections (FSKOR) among them, with
    /// what the buyer's copy shows. Absent from older agents, and ignored
    /// by older clouds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invoices: Vec<crate::Invoice>,
    /// While the order waits to be realised (stage `accepted`): what the
    /// ERP says of the checks before realising it (seed 004: no buyer's
    /// remark, the goods in stock; the third, paid, is the shop's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realisation: Option<RealisationCheck>,
    pub observed_at: DateTime<Utc>,
}

/// The ERP's part of the checks before an order is realised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RealisationCheck {
    /// The buyer's remark still on the order's document, if any (the
    /// office clears it once handled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    /// Goods the order's warehouse cannot cover now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub short: Vec<ShortLine>,
}

/// A line the warehouse cannot cover: what is needed and what is free.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShortLine {
    pub sku: String,
    pub warehouse: String,
    pub needed: Decimal,
    pub available: Decimal,
}

/// A person asks to send a parked order to the ERP again (`agent orders
/// retry`), once what parked it is fixed (the SKU added to Optima, the
/// payment form mapped, …). Agent → cloud; contract version 2 and later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryOrder {
    pub shop: String,
    pub order_id: String,
}
