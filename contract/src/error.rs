//! Decoding errors: every way a message can be wrong has its own variant, so
//! the receiver can log precisely and park the message instead of panicking.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ContractError {
    #[error("message body is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("envelope field `{field}` is missing or has the wrong type")]
    MissingField { field: &'static str },
    #[error(
        "unsupported contract version {found}: this build speaks versions {min} to {max}; upgrade the side that is older (see docs/OPERATIONS.md, upgrades)"
    )]
    UnsupportedVersion { found: u64, min: u16, max: u16 },
    #[error(
        "the other side reads contract versions up to {peer_max}, but this build writes versions {min} to {max}; upgrade the side that is older (see docs/INSTALL.md, upgrades)"
    )]
    PeerTooOld { peer_max: u16, min: u16, max: u16 },
    #[error("cannot write contract version {version}: this build writes versions {min} to {max}")]
    CannotWrite { version: u16, min: u16, max: u16 },
    #[error(
        "a `{kind}` message needs contract version {needs}, but the other side reads only up to {version}; upgrade the side that is older (see docs/INSTALL.md, upgrades)"
    )]
    NeedsNewerPeer {
        kind: &'static str,
        needs: u16,
        version: u16,
    },
    #[error("unknown message kind `{0}`")]
    UnknownKind(String),
    #[error("payload of kind `{kind}` does not match the contract: {source}")]
    BadPayload {
        kind: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("compressed body is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("compressed body does not inflate: {0}")]
    Inflate(#[source] std::io::Error),
    #[error("compressed body inflates past {limit} bytes; refusing it")]
    TooLargeInflated { limit: usize },
    #[error("one {kind} record alone encodes to {size} bytes, over the {limit}-byte message limit")]
    RecordTooLarge {
        kind: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("invalid VAT rate `{0}`: expected a percentage such as 23, 8, 5 or 0, or zw, np, oo")]
    BadVatRate(String),
}
