//! The versioned envelope and its payload kinds.
//!
//! On the wire an envelope is one JSON object:
//! `{"version":1,"max_version":1,"kind":"stock","agent_id":"biuro-1","incarnation":"9f…","seq":42,"sent_at":"…","payload":[…]}`.
//!
//! `incarnation` names one life of the agent's local state (a random id made
//! when its state file is created): `seq` counts within it, so a reinstalled
//! or deleted state starts again at 1 and is heard (the cloud keys sequences
//! by agent and incarnation). It is optional: builds before it leave it out
//! and readers before it ignore it, so it needs no version step. `to`, on
//! a command, names the one agent that is to act on it (a stack can serve
//! several); optional the same way: an agent before it acts on any command.
//! Decoding checks the version first and the kind second, and only then the
//! payload, so an old or new peer gets a precise error instead of a serde
//! message about some field deep inside. Fields a reader does not know are
//! ignored (the decoder picks the fields it needs by name), which is what
//! lets `max_version` travel to builds that predate it.
//!
//! # Versions across an upgrade
//!
//! A build *reads* [`MIN_SCHEMA_VERSION`]`..=`[`SCHEMA_VERSION`] (its own
//! version and the one before) and can *write* any of them; [`THIS_BUILD`]
//! is that range. Every envelope also says, in `max_version`, the highest
//! version its sender reads (absent from builds before the field existed:
//! they read only the version they write). The rule, on both sides:
//!
//! - **write at the version the peer speaks**: `min(own max, peer's max)`,
//!   where the peer's max is the `max_version` of the latest envelope from
//!   it ([`Versions::write_version`]). The cloud learns each agent's from
//!   its heartbeats (stored with the heartbeat; for a command it takes the
//!   lowest over the agents not marked stale); the agent learns the cloud's
//!   from the commands it receives (kept in memory).
//! - **until it knows, write at the own minimum**, which a peer one version
//!   older or newer reads.
//! - **refuse clearly**: a writer whose peer's max is below its own minimum
//!   gets [`ContractError::PeerTooOld`] instead of a message the peer cannot
//!   read; a reader refuses an envelope outside its range with
//!   [`ContractError::UnsupportedVersion`] ("upgrade the side that is
//!   older"), and the agent leaves such a command queued.
//!
//! So new functions (n) work with old agents (n-1) and new agents with old
//! functions, in either order, for one version step. Encoding "at version
//! v" happens in one place, [`Versions::encode_at`]; when a version changes
//! a payload, the conversion to the older form goes there. [`Versions`] is a
//! value, not only constants, so the tests run a simulated build 2 against
//! a build 1 in both directions.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::ContractError;
use crate::command::{CancelOrder, ForceSync, Ping, Resend};
use crate::order::{Order, OrderAck, OrderProgress, RetryOrder};
use crate::records::{CustomerRecord, Heartbeat, PriceRecord, ProductRecord, StockRecord};

/// The newest version this build reads and writes.
///
/// - 1: the first.
/// - 2: a heartbeat travels in its own lane (FIFO message group
///   [`heartbeat_group`]), so it never waits behind the agent's data, and
///   its `seq` is the last data sequence number sent, which it does not
///   consume (see [`Envelope::in_heartbeat_lane`]); and order cancellation
///   (the `cancel_order` command, the `withdrawn`/`cancel_held` answers)
///   and `retry_order`, which [`Versions::encode_at`] refuses to write at
///   version 1. The payload forms of version 1's kinds are unchanged.
pub const SCHEMA_VERSION: u16 = 2;
/// The first version in which heartbeats have their own lane.
pub const HEARTBEAT_LANE_SINCE: u16 = 2;

/// The FIFO message group of an agent's heartbeats from version
/// [`HEARTBEAT_LANE_SINCE`] on (its data travels in the group `agent_id`).
pub fn heartbeat_group(agent_id: &str) -> String {
    format!("{agent_id}:heartbeat")
}
/// The oldest version this build still reads and writes (one step back, for
/// upgrades).
pub const MIN_SCHEMA_VERSION: u16 = 1;

// The rule needs a build to speak exactly one step back (or none).
const _: () = assert!(
    MIN_SCHEMA_VERSION >= 1
        && MIN_SCHEMA_VERSION <= SCHEMA_VERSION
        && SCHEMA_VERSION <= MIN_SCHEMA_VERSION + 1,
    "MIN_SCHEMA_VERSION must be SCHEMA_VERSION or the one before"
);

/// The contract versions this build speaks.
pub const THIS_BUILD: Versions = Versions {
    min: MIN_SCHEMA_VERSION,
    max: SCHEMA_VERSION,
};

/// Whether this build can read an envelope of `version`.
pub fn is_supported(version: u64) -> bool {
    THIS_BUILD.reads(version)
}

/// The range of contract versions a build speaks: it reads and writes every
/// version in `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub min: u16,
    pub max: u16,
}

impl Versions {
    /// Whether an envelope of `version` can be read.
    pub fn reads(self, version: u64) -> bool {
        (u64::from(self.min)..=u64::from(self.max)).contains(&version)
    }

    /// The version to write to a peer whose highest version is `peer_max`
    /// (`None`: not known yet, so the own minimum, which a peer one step
    /// older or newer reads). A peer below the own minimum is refused.
    pub fn write_version(self, peer_max: Option<u16>) -> Result<u16, ContractError> {
        let Some(peer_max) = peer_max else {
            return Ok(self.min);
        };
        let version = self.max.min(peer_max);
        if version < self.min {
            return Err(ContractError::PeerTooOld {
                peer_max,
                min: self.min,
                max: self.max,
            });
        }
        Ok(version)
    }

    /// The envelope as compact JSON at `version`, announcing `self.max` as
    /// the highest version this side reads. The one place that knows how
    /// an envelope looks at an older version: the payload forms are the
    /// same, but a payload added by a newer version (order cancellation,
    /// version 2) is refused below it rather than sent to a peer that
    /// cannot read it.
    pub fn encode_at(self, envelope: &Envelope, version: u16) -> Result<Vec<u8>, ContractError> {
        if !self.reads(u64::from(version)) {
            return Err(ContractError::CannotWrite {
                version,
                min: self.min,
                max: self.max,
            });
        }
        let needs = envelope.payload.since_version();
        if needs > version {
            return Err(ContractError::NeedsNewerPeer {
                kind: envelope.kind().as_str(),
                needs,
                version,
            });
        }
        Ok(envelope.wire_json(version, Some(self.max)))
    }

    /// Decodes an envelope from JSON bytes, checking version (against this
    /// range), then kind, then payload.
    pub fn decode_envelope(self, json: &[u8]) -> Result<Envelope, ContractError> {
        decode_with(self, json)
    }
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
    CancelOrder,
    RetryOrder,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
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
        Kind::CancelOrder,
        Kind::RetryOrder,
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
            Kind::CancelOrder => "cancel_order",
            Kind::RetryOrder => "retry_order",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Commands travel cloud → agent; everything else agent → cloud.
    pub fn is_command(self) -> bool {
        matches!(
            self,
            Kind::CreateOrder | Kind::ForceSync | Kind::Resend | Kind::Ping | Kind::CancelOrder
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
    CancelOrder(CancelOrder),
    RetryOrder(RetryOrder),
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
            Payload::CancelOrder(_) => Kind::CancelOrder,
            Payload::RetryOrder(_) => Kind::RetryOrder,
        }
    }

    /// The oldest contract version that carries this payload: version 2
    /// added order cancellation (the command and its two answers) and the
    /// retry of a parked order.
    pub fn since_version(&self) -> u16 {
        match self {
            Payload::CancelOrder(_) | Payload::RetryOrder(_) => 2,
            Payload::OrderAck(ack) => ack.outcome.since_version(),
            _ => 1,
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
    // The error hands the payload back as it came (moved, once per send),
    // so its size costs nothing worth a box.
    #[allow(clippy::result_large_err)]
    pub fn split_in_half(self) -> Result<(Payload, Payload), Payload> {
        #[allow(clippy::result_large_err)]
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
            Kind::CancelOrder => Payload::CancelOrder(de(value)?),
            Kind::RetryOrder => Payload::RetryOrder(de(value)?),
        })
    }
}

/// One message between agent and cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub version: u16,
    /// The highest version the sender reads; `None` from builds before the
    /// field existed (they read only the version they wrote).
    pub max_version: Option<u16>,
    pub agent_id: String,
    /// The life of the agent's local state `seq` counts in; `None` from
    /// builds before the field existed, and on commands.
    pub incarnation: Option<String>,
    /// A command's addressee: the one agent that acts on it (others give
    /// it back to the queue for it). `None` on events, and on commands for whichever
    /// agent takes them (stacks with one agent; builds before the field).
    pub to: Option<String>,
    /// Per agent incarnation, only grows (events); per-sender for commands.
    pub seq: u64,
    pub sent_at: DateTime<Utc>,
    pub payload: Payload,
}

impl Envelope {
    /// A new envelope at the current schema version, announcing this
    /// build's range. Writers that talk to a peer encode it at the peer's
    /// version with [`Versions::encode_at`] (or `encode_body_at`).
    pub fn new(
        agent_id: impl Into<String>,
        seq: u64,
        sent_at: DateTime<Utc>,
        payload: Payload,
    ) -> Self {
        Envelope {
            version: SCHEMA_VERSION,
            max_version: Some(SCHEMA_VERSION),
            agent_id: agent_id.into(),
            incarnation: None,
            to: None,
            seq,
            sent_at,
            payload,
        }
    }

    /// The same command, for agent `agent` only.
    pub fn addressed_to(mut self, agent: &str) -> Self {
        self.to = Some(agent.to_owned());
        self
    }

    /// Whether agent `agent` is to act on this command: it names `agent`,
    /// or no one.
    pub fn is_for(&self, agent: &str) -> bool {
        self.to.as_deref().is_none_or(|to| to == agent)
    }

    /// The same envelope, numbered within the agent state's `incarnation`.
    pub fn with_incarnation(mut self, incarnation: Option<&str>) -> Self {
        self.incarnation = incarnation.map(str::to_owned);
        self
    }

    pub fn kind(&self) -> Kind {
        self.payload.kind()
    }

    /// A heartbeat in its own lane (version [`HEARTBEAT_LANE_SINCE`] on):
    /// its `seq` is the last data sequence number, not one of its own, so
    /// the reader orders it by that and does not count it in the sequence.
    pub fn in_heartbeat_lane(&self) -> bool {
        self.kind() == Kind::Heartbeat && self.version >= HEARTBEAT_LANE_SINCE
    }

    /// The highest version the sender of this (decoded) envelope reads.
    pub fn sender_max_version(&self) -> u16 {
        self.max_version.unwrap_or(self.version).max(self.version)
    }

    /// The envelope as compact JSON, as it is (its own `version` and
    /// `max_version`).
    pub fn to_json(&self) -> Vec<u8> {
        self.wire_json(self.version, self.max_version)
    }

    fn wire_json(&self, version: u16, max_version: Option<u16>) -> Vec<u8> {
        #[derive(Serialize)]
        struct Wire<'a> {
            version: u16,
            #[serde(skip_serializing_if = "Option::is_none")]
            max_version: Option<u16>,
            kind: &'static str,
            agent_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            incarnation: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            to: Option<&'a str>,
            seq: u64,
            sent_at: &'a DateTime<Utc>,
            payload: &'a Payload,
        }
        let wire = Wire {
            version,
            max_version,
            kind: self.kind().as_str(),
            agent_id: &self.agent_id,
            incarnation: self.incarnation.as_deref(),
            to: self.to.as_deref(),
            seq: self.seq,
            sent_at: &self.sent_at,
            payload: &self.payload,
        };
        // Serialising our own types to a Vec cannot fail: no maps with
        // non-string keys, no custom serialisers that error.
        serde_json::to_vec(&wire).unwrap_or_default()
    }
}

/// Decodes an envelope from JSON bytes with this build's range, checking
/// version, then kind, then payload.
pub fn decode_envelope(json: &[u8]) -> Result<Envelope, ContractError> {
    decode_with(THIS_BUILD, json)
}

fn decode_with(versions: Versions, json: &[u8]) -> Result<Envelope, ContractError> {
    let value: Value = serde_json::from_slice(json).map_err(ContractError::Json)?;
    let Value::Object(mut object) = value else {
        return Err(ContractError::MissingField { field: "version" });
    };
    let version = object
        .get("version")
        .and_then(Value::as_u64)
        .ok_or(ContractError::MissingField { field: "version" })?;
    if !versions.reads(version) {
        return Err(ContractError::UnsupportedVersion {
            found: version,
            min: versions.min,
            max: versions.max,
        });
    }
    // Optional: absent from builds before it existed; a value that is not
    // a version is treated as absent rather than refusing the message.
    let max_version = object
        .get("max_version")
        .and_then(Value::as_u64)
        .and_then(|v| u16::try_from(v).ok());
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
    // Optional, like `max_version`: absent from builds before it.
    let incarnation = object
        .get("incarnation")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // Optional: builds before it read any command as theirs.
    let to = object.get("to").and_then(Value::as_str).map(str::to_owned);
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
        // `reads` bounds it to the u16 range.
        version: u16::try_from(version).unwrap_or(versions.max),
        max_version,
        agent_id,
        incarnation,
        to,
        seq,
        sent_at,
        payload,
    })
}
