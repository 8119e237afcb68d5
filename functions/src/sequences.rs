//! Where each agent's envelopes stand in its sequence, in the state table.
//!
//! An agent numbers what it sends within an *incarnation*: one life of its
//! local state file, named by a random id made when the file is created
//! (envelopes from builds before it carry none). Items (`pk = sequences`):
//! - `sk = <agent>`: the agent's current generation and incarnation, and
//!   the last sequence applied of envelopes without an incarnation;
//! - `sk = <agent>#<incarnation>`: the last sequence applied in that
//!   incarnation and the generation it was given.
//!
//! The cloud gives every incarnation a *generation*, counting up in the
//! order it hears them (envelopes without one are generation 0). An
//! agent's events travel in one FIFO group, so `(generation, seq)` orders
//! everything an agent says, across reinstalls, without its wall clock:
//! records, order progress and heartbeats are versioned by it
//! ([`SeqVersion`]). A new incarnation is heard from seq 1 (a later first
//! seq is a gap, as within one); when it replaces an earlier life, ingest
//! asks the agent to resend everything, since what the cloud holds may be
//! newer than what a restored or recreated state believes it sent.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::dynamo::{get_n, s};
use crate::state::StateError;

/// The position of one envelope in everything its agent has said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeqVersion {
    pub generation: u64,
    pub seq: u64,
}

impl SeqVersion {
    /// Bits of [`SeqVersion::rank`] that hold the sequence number.
    const SEQ_BITS: u32 = 40;

    /// One number with the same order (for DynamoDB conditions): the
    /// generation above 40 bits of sequence (10^12 messages per life).
    pub fn rank(self) -> u64 {
        let seq = self.seq.min((1 << Self::SEQ_BITS) - 1);
        self.generation
            .saturating_mul(1 << Self::SEQ_BITS)
            .saturating_add(seq)
    }
}

/// Where an envelope stands against the last one applied from its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// Seen before: do nothing.
    Duplicate,
    /// The next one, or the first one.
    InOrder,
    /// Later than the next expected one: `from..=to` were never seen.
    Gap { from: u64, to: u64 },
}

/// [`Sequences::check`]'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub check: SeqCheck,
    pub version: SeqVersion,
    /// The first envelope heard of an incarnation that replaces an earlier
    /// life of the same agent (a deleted, recreated or restored state).
    pub new_life: bool,
    /// The last sequence number applied in this life (None: none yet).
    pub last_applied: Option<u64>,
    /// When the agent numbered the envelope applied last (its `sent_at`,
    /// epoch ms), where recorded.
    pub last_sent_ms: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct Sequences {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

const PK: &str = "sequences";

impl Sequences {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Sequences {
            client,
            table: table.into(),
        }
    }

    fn error(
        &self,
        operation: &'static str,
        err: &(dyn std::error::Error + 'static),
    ) -> StateError {
        StateError::dynamo(operation, &self.table, err)
    }

    async fn item(
        &self,
        sk: &str,
    ) -> Result<Option<std::collections::HashMap<String, AttributeValue>>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(PK))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", &e))?;
        Ok(out.item)
    }

    /// Where `seq` of `incarnation` stands for `agent`, and its version.
    pub async fn check(
        &self,
        agent: &str,
        incarnation: Option<&str>,
        seq: u64,
    ) -> Result<Position, StateError> {
        let against = |last: Option<u64>| match last {
            None => SeqCheck::InOrder,
            Some(last) if seq <= last => SeqCheck::Duplicate,
            Some(last) if seq == last + 1 => SeqCheck::InOrder,
            Some(last) => SeqCheck::Gap {
                from: last + 1,
                to: seq - 1,
            },
        };
        let Some(incarnation) = incarnation else {
            let last = self
                .item(agent)
                .await?
                .and_then(|item| get_n(&item, "last_seq"));
            return Ok(Position {
                check: against(last),
                version: SeqVersion { generation: 0, seq },
                new_life: false,
                last_applied: last,
                last_sent_ms: None,
            });
        };
        if let Some(item) = self.item(&life_sk(agent, incarnation)).await? {
            let last = get_n(&item, "last_seq");
            return Ok(Position {
                check: against(last),
                version: SeqVersion {
                    generation: get_n(&item, "generation").unwrap_or(1),
                    seq,
                },
                new_life: false,
                last_applied: last,
                last_sent_ms: get_n(&item, "last_sent_ms"),
            });
        }
        // A life not heard before: it counts from 1, after every earlier one.
        let agent_item = self.item(agent).await?;
        let before = agent_item
            .as_ref()
            .and_then(|item| get_n::<u64>(item, "generation"))
            .unwrap_or(0);
        Ok(Position {
            check: against(Some(0)),
            version: SeqVersion {
                generation: before + 1,
                seq,
            },
            new_life: agent_item.is_some(),
            last_applied: None,
            last_sent_ms: None,
        })
    }

    /// True when a later life of `agent` has passed `generation`: a state
    /// file restored from a backup taken before that later life began. Its
    /// envelopes may be in order within its life, yet everything they carry
    /// ranks below what the later life said. Asked for heartbeats only, so
    /// the data lane's hot path reads no more than before.
    pub async fn superseded(&self, agent: &str, generation: u64) -> Result<bool, StateError> {
        let current = self
            .item(agent)
            .await?
            .and_then(|item| get_n::<u64>(&item, "generation"))
            .unwrap_or(generation);
        Ok(generation < current)
    }

    /// Records `version.seq` of `incarnation` as applied (never moves back).
    /// `sent_ms`: the envelope's `sent_at` (epoch ms), kept with the life's
    /// last number (see [`Position::last_sent_ms`]).
    pub async fn mark(
        &self,
        agent: &str,
        incarnation: Option<&str>,
        version: SeqVersion,
        sent_ms: i64,
    ) -> Result<(), StateError> {
        let Some(incarnation) = incarnation else {
            return self.set_last(agent, version.seq, None).await;
        };
        // The life's own item first: a retry after a failure in between
        // finds it and keeps the same generation.
        self.set_last(
            &life_sk(agent, incarnation),
            version.seq,
            Some((version.generation, sent_ms)),
        )
        .await?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(PK))
            .key("sk", s(agent))
            .update_expression("SET generation = :g, incarnation = :inc")
            .condition_expression("attribute_not_exists(generation) OR generation < :g")
            .expression_attribute_values(":g", crate::dynamo::n(version.generation))
            .expression_attribute_values(":inc", s(incarnation))
            .send()
            .await;
        self.conditional(result)
    }

    async fn set_last(
        &self,
        sk: &str,
        seq: u64,
        life: Option<(u64, i64)>,
    ) -> Result<(), StateError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(PK))
            .key("sk", s(sk))
            .condition_expression("attribute_not_exists(last_seq) OR last_seq < :seq")
            .expression_attribute_values(":seq", crate::dynamo::n(seq));
        update = match life {
            Some((generation, sent_ms)) => update
                .update_expression("SET last_seq = :seq, generation = :g, last_sent_ms = :sent")
                .expression_attribute_values(":g", crate::dynamo::n(generation))
                .expression_attribute_values(":sent", crate::dynamo::n(sent_ms)),
            None => update.update_expression("SET last_seq = :seq"),
        };
        let result = update.send().await;
        self.conditional(result)
    }

    /// A refused condition means newer is already recorded: fine.
    fn conditional(
        &self,
        result: Result<
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
            aws_sdk_dynamodb::error::SdkError<
                aws_sdk_dynamodb::operation::update_item::UpdateItemError,
            >,
        >,
    ) -> Result<(), StateError> {
        crate::dynamo::written(result)
            .map(|_| ())
            .map_err(|err| self.error("UpdateItem", &err))
    }
}

fn life_sk(agent: &str, incarnation: &str) -> String {
    format!("{agent}#{incarnation}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_orders_like_the_pair() {
        let a = SeqVersion {
            generation: 0,
            seq: 900_000,
        };
        let b = SeqVersion {
            generation: 1,
            seq: 1,
        };
        assert!(a < b && a.rank() < b.rank());
        assert!(
            SeqVersion {
                generation: 1,
                seq: 2
            }
            .rank()
                > b.rank()
        );
    }
}
