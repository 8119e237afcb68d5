//! Upgrades, one version step in either order: a simulated build 2
//! (`Versions { min: 1, max: 2 }`) talking to a build 1 in both directions,
//! through the same encode/decode code the agent and the functions use.
//! Each side writes at `write_version(peer's max)` and learns the peer's max
//! from what it receives (see `contract::envelope`'s documentation).

use chrono::Utc;
use contract::*;

const BUILD_1: Versions = Versions { min: 1, max: 1 };
const BUILD_2: Versions = Versions { min: 1, max: 2 };
const BUILD_3: Versions = Versions { min: 2, max: 3 };

/// One side of the conversation: the versions it speaks and what it has
/// learned of its peer.
struct Side {
    name: &'static str,
    speaks: Versions,
    peer_max: Option<u16>,
}

impl Side {
    fn new(name: &'static str, speaks: Versions) -> Side {
        Side {
            name,
            speaks,
            peer_max: None,
        }
    }

    /// Writes a message to the peer: (the version written, the body).
    fn send(&self, payload: Payload) -> Result<(u16, String), ContractError> {
        let version = self.speaks.write_version(self.peer_max)?;
        let envelope = Envelope::new(self.name, 1, Utc::now(), payload);
        Ok((version, self.speaks.encode_body_at(&envelope, version)?))
    }

    /// Reads a message from the peer and learns the peer's max from it.
    fn receive(&mut self, body: &str) -> Result<Envelope, ContractError> {
        let envelope = self.speaks.decode_body(body)?;
        self.peer_max = Some(envelope.sender_max_version());
        Ok(envelope)
    }
}

fn ping() -> Payload {
    Payload::Ping(Ping { nonce: "n".into() })
}

fn heartbeat() -> Payload {
    Payload::Heartbeat(Heartbeat {
        agent_version: "x".into(),
        agent_clock: Utc::now(),
        health: AgentHealth {
            sql_server: true,
            sql_error: None,
            outbox_depth: 0,
            takes_orders: None,
            rejected_records: None,
            rejected_latest: None,
        },
    })
}

/// A command from `cloud` to `agent`, then a heartbeat back, each read by
/// the other; returns the versions written (command, heartbeat).
fn exchange(cloud: &mut Side, agent: &mut Side) -> (u16, u16) {
    let (command_version, body) = cloud.send(ping()).expect("the cloud writes");
    let command = agent.receive(&body).expect("the agent reads the command");
    assert_eq!(command.version, command_version);
    let (event_version, body) = agent.send(heartbeat()).expect("the agent writes");
    let event = cloud.receive(&body).expect("the cloud reads the heartbeat");
    assert_eq!(event.version, event_version);
    (command_version, event_version)
}

#[test]
fn new_functions_and_an_old_agent_understand_each_other() {
    let mut cloud = Side::new("cloud", BUILD_2);
    let mut agent = Side::new("biuro", BUILD_1);
    // Nothing known yet: both write their minimum, 1.
    assert_eq!(exchange(&mut cloud, &mut agent), (1, 1));
    assert_eq!(
        cloud.peer_max,
        Some(1),
        "the cloud learned the agent reads 1"
    );
    assert_eq!(
        agent.peer_max,
        Some(2),
        "the agent learned the cloud reads 2"
    );
    // Known: the cloud writes at the agent's 1, the agent at its own 1.
    assert_eq!(exchange(&mut cloud, &mut agent), (1, 1));
    // The heartbeat first (agent started before any command): same result.
    let mut cloud = Side::new("cloud", BUILD_2);
    let mut agent = Side::new("biuro", BUILD_1);
    let (_, body) = agent.send(heartbeat()).expect("writes");
    cloud
        .receive(&body)
        .expect("new functions read an old agent");
    assert_eq!(exchange(&mut cloud, &mut agent), (1, 1));
}

#[test]
fn a_new_agent_and_old_functions_understand_each_other() {
    let mut cloud = Side::new("cloud", BUILD_1);
    let mut agent = Side::new("biuro", BUILD_2);
    // The agent's first events, before it knows the cloud: at 1.
    let (version, body) = agent.send(heartbeat()).expect("writes");
    assert_eq!(version, 1, "until it knows, the agent writes its minimum");
    cloud
        .receive(&body)
        .expect("old functions read a new agent");
    assert_eq!(cloud.peer_max, Some(2));
    // The old cloud writes its only version; the agent learns it, stays at 1.
    assert_eq!(exchange(&mut cloud, &mut agent), (1, 1));
    assert_eq!(agent.peer_max, Some(1));
    assert_eq!(exchange(&mut cloud, &mut agent), (1, 1));
}

#[test]
fn two_new_sides_move_to_the_new_version_once_they_know() {
    let mut cloud = Side::new("cloud", BUILD_2);
    let mut agent = Side::new("biuro", BUILD_2);
    assert_eq!(exchange(&mut cloud, &mut agent), (1, 2));
    assert_eq!(exchange(&mut cloud, &mut agent), (2, 2));
}

#[test]
fn two_version_steps_are_refused_clearly_on_both_sides() {
    let mut cloud = Side::new("cloud", BUILD_3);
    let mut agent = Side::new("biuro", BUILD_1);
    // Unknown agent: the cloud writes its minimum, 2; the agent refuses it.
    let (version, body) = cloud.send(ping()).expect("writes");
    assert_eq!(version, 2);
    let err = agent.receive(&body).expect_err("too new for build 1");
    let message = err.to_string();
    assert!(
        message.contains("unsupported contract version 2")
            && message.contains("speaks versions 1 to 1")
            && message.contains("upgrade the side that is older"),
        "{message}"
    );
    // The agent's heartbeat (at 1) is refused by build 3 the same way.
    let (_, body) = agent.send(heartbeat()).expect("writes");
    let err = cloud.receive(&body).expect_err("too old for build 3");
    assert!(err.to_string().contains("unsupported contract version 1"));
    // Once the cloud knows the agent reads only 1, it writes nothing.
    cloud.peer_max = Some(1);
    let err = cloud.send(ping()).expect_err("refused");
    assert!(matches!(
        err,
        ContractError::PeerTooOld {
            peer_max: 1,
            min: 2,
            max: 3
        }
    ));
    assert!(
        err.to_string()
            .contains("the other side reads contract versions up to 1")
            && err.to_string().contains("upgrade the side that is older"),
        "{err}"
    );
}

#[test]
fn write_version_is_the_lower_max_and_the_own_minimum_until_known() {
    assert_eq!(BUILD_2.write_version(None).ok(), Some(1));
    assert_eq!(BUILD_2.write_version(Some(1)).ok(), Some(1));
    assert_eq!(BUILD_2.write_version(Some(2)).ok(), Some(2));
    assert_eq!(BUILD_2.write_version(Some(7)).ok(), Some(2));
    assert_eq!(BUILD_1.write_version(Some(2)).ok(), Some(1));
    assert!(BUILD_3.write_version(Some(1)).is_err());
    // A build writes only versions it knows.
    let envelope = Envelope::new("a", 1, Utc::now(), ping());
    assert!(matches!(
        BUILD_1.encode_at(&envelope, 2),
        Err(ContractError::CannotWrite { version: 2, .. })
    ));
    assert!(matches!(
        THIS_BUILD.encode_at(&envelope, 0),
        Err(ContractError::CannotWrite { version: 0, .. })
    ));
}

#[test]
fn envelopes_from_builds_before_max_version_still_decode() {
    // What every build before the field wrote: no `max_version`.
    let old = r#"{"version":1,"kind":"ping","agent_id":"a","seq":1,"sent_at":"2026-01-01T00:00:00Z","payload":{"nonce":"x"}}"#;
    let envelope = decode_envelope(old.as_bytes()).expect("decodes");
    assert_eq!(envelope.max_version, None);
    assert_eq!(envelope.sender_max_version(), 1, "it reads what it wrote");
    // And fields a build does not know are ignored, so an older decoder
    // reads envelopes carrying `max_version` (or later additions).
    let newer = r#"{"version":1,"max_version":2,"from_the_future":{"x":[1]},"kind":"ping","agent_id":"a","seq":1,"sent_at":"2026-01-01T00:00:00Z","payload":{"nonce":"x"}}"#;
    let envelope = BUILD_1.decode_body(newer).expect("unknown fields ignored");
    assert_eq!(envelope.max_version, Some(2));
    assert_eq!(envelope.sender_max_version(), 2);
}

#[test]
fn large_bodies_are_encoded_at_the_version_asked_for() {
    let records: Vec<StockRecord> = (0..3000)
        .map(|i| StockRecord {
            sku: format!("SKU-{i:05}"),
            warehouse: "MAG".into(),
            quantity: rust_decimal::Decimal::new(i, 0),
            reserved: rust_decimal::Decimal::ZERO,
            read_at: Utc::now(),
        })
        .collect();
    let mut seq = 0;
    let parts = encode_envelopes_at(
        MIN_SCHEMA_VERSION,
        "a",
        Utc::now(),
        Payload::Stock(records),
        MAX_BODY_BYTES,
        || {
            seq += 1;
            seq
        },
    )
    .expect("encodes");
    for (envelope, body) in parts {
        assert_eq!(envelope.version, MIN_SCHEMA_VERSION);
        let decoded = decode_body(&body).expect("decodes");
        assert_eq!(decoded.version, MIN_SCHEMA_VERSION);
        assert_eq!(decoded.max_version, Some(SCHEMA_VERSION));
    }
}

/// Version 2 added order cancellation. A cancel command, or a cancellation
/// answer, is never written at version 1 (a build-1 agent could not read
/// it and would leave it blocking its shop's queue): the writer gets an
/// error that says to upgrade, and a build-2 pair exchanges it.
#[test]
fn order_cancellation_is_written_only_to_a_peer_that_reads_version_2() {
    let cancel = || {
        Payload::CancelOrder(CancelOrder {
            shop: "sklep".into(),
            order_id: "7".into(),
            shop_status: "cancelled".into(),
        })
    };
    let revision = Utc::now();
    let withdrawn = || {
        Payload::OrderAck(OrderAck {
            shop: "sklep".into(),
            order_id: "7".into(),
            revision,
            outcome: OrderAckOutcome::Withdrawn {
                document_number: Some("RO/1/2026".into()),
            },
        })
    };
    let mut cloud = Side::new("cloud", BUILD_2);
    cloud.peer_max = Some(1);
    let refused = cloud.send(cancel()).expect_err("not at version 1");
    assert!(
        matches!(
            refused,
            ContractError::NeedsNewerPeer {
                kind: "cancel_order",
                needs: 2,
                version: 1
            }
        ),
        "{refused}"
    );
    assert!(refused.to_string().contains("upgrade"), "{refused}");
    let mut agent = Side::new("agent", BUILD_2);
    assert!(agent.send(withdrawn()).is_err(), "unknown peer: version 1");

    cloud.peer_max = Some(2);
    let (version, body) = cloud.send(cancel()).expect("a build-2 agent reads it");
    assert_eq!(version, 2);
    assert_eq!(agent.receive(&body).expect("decodes").payload, cancel());
    let (version, body) = agent.send(withdrawn()).expect("learned the cloud reads 2");
    assert_eq!(version, 2);
    assert_eq!(cloud.receive(&body).expect("decodes").payload, withdrawn());
}

#[test]
fn the_incarnation_travels_and_is_optional_both_ways() {
    let origin = Origin {
        agent_id: "biuro",
        incarnation: Some("0f3c"),
    };
    let parts = encode_envelopes_from(
        MIN_SCHEMA_VERSION,
        &origin,
        Utc::now(),
        ping(),
        MAX_BODY_BYTES,
        || 1,
    )
    .expect("encodes");
    let decoded = decode_body(&parts[0].1).expect("decodes");
    assert_eq!(decoded.incarnation.as_deref(), Some("0f3c"));
    // Builds before the field neither write it nor need it.
    let old = r#"{"version":1,"kind":"ping","agent_id":"a","seq":1,"sent_at":"2026-01-01T00:00:00Z","payload":{"nonce":"x"}}"#;
    assert_eq!(decode_body(old).expect("decodes").incarnation, None);
    assert!(
        !encode_body(&Envelope::new("a", 1, Utc::now(), ping())).contains("incarnation"),
        "absent, not null, so golden files and old readers see no change"
    );
}

#[test]
fn a_command_names_its_agent_and_one_without_a_name_is_for_any() {
    let addressed = Envelope::new("cloud", 0, Utc::now(), ping()).addressed_to("biuro-2");
    let decoded = decode_body(&encode_body(&addressed)).expect("decodes");
    assert_eq!(decoded.to.as_deref(), Some("biuro-2"));
    assert!(decoded.is_for("biuro-2"));
    assert!(!decoded.is_for("biuro-1"), "another agent leaves it alone");
    // Builds before the field send commands for whichever agent takes them.
    let old = r#"{"version":1,"kind":"ping","agent_id":"cloud","seq":0,"sent_at":"2026-01-01T00:00:00Z","payload":{"nonce":"x"}}"#;
    let old = decode_body(old).expect("decodes");
    assert_eq!(old.to, None);
    assert!(old.is_for("biuro-1") && old.is_for("biuro-2"));
    assert!(
        !encode_body(&Envelope::new("a", 1, Utc::now(), ping())).contains("\"to\""),
        "absent, not null, so golden files and old readers see no change"
    );
}

#[test]
fn a_resend_names_the_life_it_asks_of_and_an_old_one_names_none() {
    let resend = |incarnation: Option<&str>| {
        Envelope::new(
            "cloud",
            0,
            Utc::now(),
            Payload::Resend(contract::Resend {
                from_seq: 7,
                to_seq: 9,
                incarnation: incarnation.map(str::to_string),
            }),
        )
    };
    let decoded = decode_body(&encode_body(&resend(Some("0f3c")))).expect("decodes");
    match decoded.payload {
        Payload::Resend(range) => assert_eq!(range.incarnation.as_deref(), Some("0f3c")),
        other => panic!("decoded as {other:?}"),
    }
    // The golden resend.json is a resend from a build before the field.
    assert!(!encode_body(&resend(None)).contains("incarnation"));
}
