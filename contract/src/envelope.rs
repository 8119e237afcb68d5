//! The versioned envelope and its payload kinds.
//!
//! On the wire an envelope is one JSON object:
//! `{"version":1,"kind":"stock","agent_id":"biuro-1","seq":42,"sent_at":"…","payload":[…]}`.
//! Decoding checks the version first and the kind second, and only then the
//! payload, so an old or new peer gets a precise error instead of a serde
//! message about some field deep inside.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::ContractError;
use crate::command::{ForceSync, Ping, Resend};
use crate::order::{Order, OrderAck, OrderProgress};
use crate::records::{CustomerRecord, Heartbeat, PriceRecord, ProductRecord, StockRecord};

/// The version this build writes.
pub const SCHEMA_VERSION: u16 = 1;
/// The oldest version this build still reads (one step back, for upgrades).
pub const MIN_SCHEMA_VERSION: u16 = 1;

/// Whether this build can read an envelope of `version`.
pub fn is_supported(version: u64) -> bool {
    (u64::from(MIN_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&version)
}

/// The kind of a message: its payload's type, named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Products,
    Prices,
    Stock,
    Customers,
    OrderAck,
    OrderProgress,
    Heartbeat,
    CreateOrder,
    ForceSync,
    Resend,
    Ping,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Products,
        Kind::Prices,
        Kind::Stock,
        Kind::Customers,
        Kind::OrderAck,
        Kind::OrderProgress,
        Kind::Heartbeat,
        Kind::CreateOrder,
        Kind::ForceSync,
        Kind::Resend,
        Kind::Ping,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Products => "products",
            Kind::Prices => "prices",
            Kind::Stock => "stock",
            Kind::Customers => "customers",
            Kind::OrderAck => "order_ack",
            Kind::OrderProgress => "order_progress",
            Kind::Heartbeat => "heartbeat",
            Kind::CreateOrder => "create_order",
            Kind::ForceSync => "force_sync",
            Kind::Resend => "resend",
            Kind::Ping => "ping",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Commands travel cloud → agent; everything else agent → cloud.
    pub fn is_command(self) -> bool {
        matches!(
            self,
            Kind::CreateOrder | Kind::ForceSync | Kind::Resend | Kind::Ping
        )
    }
}

/// What an envelope carries. Serialised without a tag: the envelope's
/// `kind` field names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Payload {
    Products(Vec<ProductRecord>),
    Prices(Vec<PriceRecord>),
    Stock(Vec<StockRecord>),
    Customers(Vec<CustomerRecord>),
    OrderAck(OrderAck),
    OrderProgress(OrderProgress),
    Heartbeat(Heartbeat),
    CreateOrder(Box<Order>),
    ForceSync(ForceSync),
    Resend(Resend),
    Ping(Ping),
}

impl Payload {
    pub fn kind(&self) -> Kind {
        match self {
            Payload::Products(_) => Kind::Products,
            Payload::Prices(_) => Kind::Prices,
            Payload::Stock(_) => Kind::Stock,
            Payload::Customers(_) => Kind::Customers,
            Payload::OrderAck(_) => Kind::OrderAck,
            Payload::OrderProgress(_) => Kind::OrderProgress,
            Payload::Heartbeat(_) => Kind::Heartbeat,
            Payload::CreateOrder(_) => Kind::CreateOrder,
            Payload::ForceSync(_) => Kind::ForceSync,
            Payload::Resend(_) => Kind::Resend,
            Payload::Ping(_) => Kind::Ping,
        }
    }

    /// Number of records in a record batch; 1 for single-object payloads.
    pub fn len(&self) -> usize {
        match self {
            Payload::Products(v) => v.len(),
            Payload::Prices(v) => v.len(),
            Payload::Stock(v) => v.len(),
            Payload::Customers(v) => v.len(),
            _ => 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Splits a record batch into two halves; `None` for a single object or
    /// a batch of one, which cannot be made smaller.
    pub fn split_in_half(self) -> Result<(Payload, Payload), Payload> {
        fn halves<T>(
            mut v: Vec<T>,
            wrap: fn(Vec<T>) -> Payload,
        ) -> Result<(Payload, Payload), Payload> {
            if v.len() < 2 {
                return Err(wrap(v));
            }
            let tail = v.split_off(v.len() / 2);
            Ok((wrap(v), wrap(tail)))
        }
        match self {
            Payload::Products(v) => halves(v, Payload::Products),
            Payload::Prices(v) => halves(v, Payload::Prices),
            Payload::Stock(v) => halves(v, Payload::Stock),
            Payload::Customers(v) => halves(v, Payload::Customers),
            other => Err(other),
        }
    }

    fn from_value(kind: Kind, value: Value) -> Result<Payload, serde_json::Error> {
        use serde_json::from_value as de;
        Ok(match kind {
            Kind::Products => Payload::Products(de(value)?),
            Kind::Prices => Payload::Prices(de(value)?),
            Kind::Stock => Payload::Stock(de(value)?),
            Kind::Customers => Payload::Customers(de(value)?),
            Kind::OrderAck => Payload::OrderAck(de(value)?),
            Kind::OrderProgress => Payload::OrderProgress(de(value)?),
            Kind::Heartbeat => Payload::Heartbeat(de(value)?),
            Kind::CreateOrder => Payload::CreateOrder(Box::new(de(value)?)),
            Kind::ForceSync => Payload::ForceSync(de(value)?),
            Kind::Resend => Payload::Resend(de(value)?),
            Kind::Ping => Payload::Ping(de(value)?),
        })
    }
}

/// One message between agent and cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub version: u16,
    pub agent_id: String,
    /// Per-agent, only grows (events); per-sender for commands.
    pub seq: u64,
    pub sent_at: DateTime<Utc>,
    pub payload: Payload,
}

impl Envelope {
    /// A new envelope at the current schema version.
    pub fn new(
        agent_id: impl Into<String>,
        seq: u64,
        sent_at: DateTime<Utc>,
        payload: Payload,
    ) -> Self {
        Envelope {
            version: SCHEMA_VERSION,
            agent_id: agent_id.into(),
            seq,
            sent_at,
            payload,
        }
    }

    pub fn kind(&self) -> Kind {
        self.payload.kind()
    }

    /// The envelope as compact JSON.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Wire<'a> {
            version: u16,
            kind: &'static str,
            agent_id: &'a str,
            seq: u64,
            sent_at: &'a DateTime<Utc>,
            payload: &'a Payload,
        }
        let wire = Wire {
            version: self.version,
            kind: self.kind().as_str(),
            agent_id: &self.agent_id,
            seq: self.seq,
            sent_at: &self.sent_at,
            payload: &self.payload,
        };
        // Serialising our own types to a Vec cannot fail: no maps with
        // non-string keys, no custom serialisers that error.
        serde_json::to_vec(&wire).unwrap_or_default()
    }
}

/// Decodes an envelope from JSON bytes, checking version, then kind, then payload.
pub fn decode_envelope(json: &[u8]) -> Result<Envelope, ContractError> {
    let value: Value = serde_json::from_slice(json).map_err(ContractError::Json)?;
    let Value::Object(mut object) = value else {
        return Err(ContractError::MissingField { field: "version" });
    };
    let version = object
        .get("version")
        .and_then(Value::as_u64)
        .ok_or(ContractError::MissingField { field: "version" })?;
    if !is_supported(version) {
        return Err(ContractError::UnsupportedVersion {
            found: version,
            min: MIN_SCHEMA_VERSION,
            max: SCHEMA_VERSION,
        });
    }
    let kind_name = object
        .get("kind")
        .and_then(Value::as_str)
        .ok_or(ContractError::MissingField { field: "kind" })?;
    let kind =
        Kind::parse(kind_name).ok_or_else(|| ContractError::UnknownKind(kind_name.to_owned()))?;
    let agent_id = object
        .get("agent_id")
        .and_then(Value::as_str)
        .ok_or(ContractError::MissingField { field: "agent_id" })?
        .to_owned();
    let seq = object
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or(ContractError::MissingField { field: "seq" })?;
    let sent_at = object
        .get("sent_at")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or(ContractError::MissingField { field: "sent_at" })?;
    let payload_value = object
        .remove("payload")
        .ok_or(ContractError::MissingField { field: "payload" })?;
    let payload =
        Payload::from_value(kind, payload_value).map_err(|source| ContractError::BadPayload {
            kind: kind.as_str().to_owned(),
            source,
        })?;
    Ok(Envelope {
        // is_supported bounds it to the u16 range.
        version: u16::try_from(version).unwrap_or(SCHEMA_VERSION),
        agent_id,
        seq,
        sent_at,
        payload,
    })
}
