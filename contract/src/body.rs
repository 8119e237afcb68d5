//! From envelope to SQS message body and back.
//!
//! A body is the envelope's JSON when that is small, or, when it is larger
//! than [`COMPRESS_ABOVE`], `gzip+base64:` followed by the base64 of the
//! gzipped JSON (SQS bodies must be text). A batch that would still pass
//! [`MAX_BODY_BYTES`] is split in halves until every part fits; each part is
//! its own envelope with its own sequence number.

use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::envelope::{THIS_BUILD, Versions};
use crate::{ContractError, Envelope, Payload};

/// The largest body we send. SQS accepts 1 MiB today; we stay at the
/// long-standing 256 KiB limit, less room for message attributes, so older
/// emulators and queues configured lower accept it too.
pub const MAX_BODY_BYTES: usize = 250 * 1024;
/// Bodies whose JSON is larger than this are compressed.
pub const COMPRESS_ABOVE: usize = 8 * 1024;
/// A compressed body may not inflate past this (a guard against zip bombs).
pub const MAX_INFLATED_BYTES: usize = 64 * 1024 * 1024;

const COMPRESSED_PREFIX: &str = "gzip+base64:";

/// Encodes one envelope as a message body, as it is (its own `version`).
/// Messages to a peer go through [`encode_body_at`] instead.
pub fn encode_body(envelope: &Envelope) -> String {
    compress(envelope.to_json())
}

/// Encodes one envelope as a message body at `version` (from
/// [`Versions::write_version`]), with this build's range.
pub fn encode_body_at(envelope: &Envelope, version: u16) -> Result<String, ContractError> {
    THIS_BUILD.encode_body_at(envelope, version)
}

impl Versions {
    /// [`Versions::encode_at`], as a message body.
    pub fn encode_body_at(
        self,
        envelope: &Envelope,
        version: u16,
    ) -> Result<String, ContractError> {
        Ok(compress(self.encode_at(envelope, version)?))
    }

    /// Decodes a message body (plain or compressed) with this range.
    pub fn decode_body(self, body: &str) -> Result<Envelope, ContractError> {
        decode_body_with(self, body)
    }
}

fn compress(json: Vec<u8>) -> String {
    if json.len() <= COMPRESS_ABOVE {
        // Our JSON is always UTF-8.
        return String::from_utf8(json).unwrap_or_default();
    }
    let mut encoder = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(&json);
    let compressed = encoder.finish().unwrap_or_default();
    let mut body = String::with_capacity(COMPRESSED_PREFIX.len() + compressed.len() * 4 / 3 + 4);
    body.push_str(COMPRESSED_PREFIX);
    STANDARD.encode_string(&compressed, &mut body);
    body
}

/// Decodes a message body (plain or compressed) into an envelope.
pub fn decode_body(body: &str) -> Result<Envelope, ContractError> {
    decode_body_with(THIS_BUILD, body)
}

fn decode_body_with(versions: Versions, body: &str) -> Result<Envelope, ContractError> {
    match body.strip_prefix(COMPRESSED_PREFIX) {
        None => versions.decode_envelope(body.as_bytes()),
        Some(encoded) => {
            let compressed = STANDARD.decode(encoded.trim())?;
            let mut json = Vec::new();
            GzDecoder::new(compressed.as_slice())
                .take(MAX_INFLATED_BYTES as u64 + 1)
                .read_to_end(&mut json)
                .map_err(ContractError::Inflate)?;
            if json.len() > MAX_INFLATED_BYTES {
                return Err(ContractError::TooLargeInflated {
                    limit: MAX_INFLATED_BYTES,
                });
            }
            versions.decode_envelope(&json)
        }
    }
}

/// Turns one payload into as many envelopes as it takes for each body to fit
/// in `max_body_bytes`, numbering them with `next_seq`. Returns each envelope
/// with its encoded body. A single record too large to send is an error.
/// Encodes at [`crate::SCHEMA_VERSION`]; see [`encode_envelopes_at`].
pub fn encode_envelopes(
    agent_id: &str,
    sent_at: DateTime<Utc>,
    payload: Payload,
    max_body_bytes: usize,
    next_seq: impl FnMut() -> u64,
) -> Result<Vec<(Envelope, String)>, ContractError> {
    encode_envelopes_at(
        crate::SCHEMA_VERSION,
        agent_id,
        sent_at,
        payload,
        max_body_bytes,
        next_seq,
    )
}

/// [`encode_envelopes`] at `version` (from [`Versions::write_version`]);
/// each returned envelope has `version` set to it.
pub fn encode_envelopes_at(
    version: u16,
    agent_id: &str,
    sent_at: DateTime<Utc>,
    payload: Payload,
    max_body_bytes: usize,
    next_seq: impl FnMut() -> u64,
) -> Result<Vec<(Envelope, String)>, ContractError> {
    let origin = Origin {
        agent_id,
        incarnation: None,
    };
    encode_envelopes_from(version, &origin, sent_at, payload, max_body_bytes, next_seq)
}

/// Who numbers a message: the agent and the incarnation of its state.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub agent_id: &'a str,
    pub incarnation: Option<&'a str>,
}

/// [`encode_envelopes_at`] for an agent whose sequence counts within an
/// incarnation: every envelope carries it.
pub fn encode_envelopes_from(
    version: u16,
    origin: &Origin<'_>,
    sent_at: DateTime<Utc>,
    payload: Payload,
    max_body_bytes: usize,
    mut next_seq: impl FnMut() -> u64,
) -> Result<Vec<(Envelope, String)>, ContractError> {
    let agent_id = origin.agent_id;
    // Measure with a placeholder sequence of the widest form, so the real
    // number can never push a body over the limit.
    let mut fitting = Vec::new();
    let mut pending = vec![payload];
    while let Some(part) = pending.pop() {
        let probe =
            Envelope::new(agent_id, u64::MAX, sent_at, part).with_incarnation(origin.incarnation);
        let size = encode_body_at(&probe, version)?.len();
        if size <= max_body_bytes {
            fitting.push(probe.payload);
            continue;
        }
        match probe.payload.split_in_half() {
            // Push the tail first so parts come out in their original order.
            Ok((head, tail)) => {
                pending.push(tail);
                pending.push(head);
            }
            Err(single) => {
                return Err(ContractError::RecordTooLarge {
                    kind: single.kind().as_str(),
                    size,
                    limit: max_body_bytes,
                });
            }
        }
    }
    fitting
        .into_iter()
        .map(|payload| {
            let mut envelope = Envelope::new(agent_id, next_seq(), sent_at, payload)
                .with_incarnation(origin.incarnation);
            envelope.version = version;
            let body = encode_body_at(&envelope, version)?;
            Ok((envelope, body))
        })
        .collect()
}
