//! The contract version the cloud writes commands at.
//!
//! Each heartbeat's envelope says the highest contract version its agent
//! reads (`max_version`); the ingest function stores it with the heartbeat
//! (`agents` items of the state table). A command goes to the stack's
//! commands queue, which any of its agents may take, so it is written at
//! `min(this build's newest, the lowest max_version of the agents not
//! marked stale)`, or at this build's minimum while any of them has not
//! said (heartbeats stored before the field existed) or none is known: the
//! rule of `contract::envelope`. An agent below this build's minimum gets
//! no command: the error says to upgrade it, and the order stays pending
//! (the next delivery or poll sends it once the agent is upgraded).
//!
//! What the table says is cached for [`CACHE_FOR`] per table, so a burst of
//! orders costs one query, not one per order.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use contract::{Envelope, THIS_BUILD};

use crate::state::{AgentStatus, StateError, StateTable};

/// How long a lookup of the agents' versions is reused.
pub const CACHE_FOR: Duration = Duration::from_secs(10);

/// Per state table: when it was read, and what it said.
type Cache = HashMap<String, (Instant, Option<u16>)>;

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// The highest version every live agent reads, when all of them said.
pub fn lowest_agent_max(agents: &[AgentStatus]) -> Option<u16> {
    let mut lowest: Option<u16> = None;
    for agent in agents.iter().filter(|a| !a.marked_stale) {
        let max = agent.contract_max_version?;
        lowest = Some(lowest.map_or(max, |l| l.min(max)));
    }
    lowest
}

/// [`lowest_agent_max`] of the stack's agents, from the state table
/// (cached for [`CACHE_FOR`]).
pub async fn agents_max_version(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Option<u16>, StateError> {
    let cached = CACHE.lock().ok().and_then(|cache| {
        cache
            .as_ref()?
            .get(table)
            .filter(|(at, _)| at.elapsed() < CACHE_FOR)
            .map(|(_, max)| *max)
    });
    if let Some(max) = cached {
        return Ok(max);
    }
    let agents = StateTable::new(client.clone(), table, 1).agents().await?;
    let max = lowest_agent_max(&agents);
    if max.is_none() {
        // Not known yet (no heartbeat, or one from before the field): asked
        // again next time rather than remembered.
        return Ok(None);
    }
    if let Ok(mut cache) = CACHE.lock() {
        cache
            .get_or_insert_with(HashMap::new)
            .insert(table.to_owned(), (Instant::now(), max));
    }
    Ok(max)
}

/// A command's message body, encoded at the version the stack's agents
/// read. A command that exists only from a newer version on (its payload's
/// [`contract::Payload::since_version`]) waits while the agents have not
/// said which version they read ([`StateError::NotYet`]), and is refused
/// with [`contract::ContractError::NeedsNewerPeer`] when one is known to
/// read only older versions.
pub async fn command_body(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    envelope: &Envelope,
) -> Result<String, StateError> {
    let agents_max = agents_max_version(client, table).await?;
    if agents_max.is_none() && envelope.payload.since_version() > THIS_BUILD.min {
        return Err(StateError::NotYet(format!(
            "no agent has said which contract version it reads; a `{}` command waits for the next heartbeat",
            envelope.kind().as_str()
        )));
    }
    let version = THIS_BUILD.write_version(agents_max)?;
    Ok(contract::encode_body_at(envelope, version)?)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn agent(max: Option<u16>, stale: bool) -> AgentStatus {
        AgentStatus {
            agent_id: "a".into(),
            agent_version: "0".into(),
            contract_max_version: max,
            last_seen: Utc::now(),
            agent_clock: Utc::now(),
            clock_skew_seconds: 0.0,
            last_seq: 0,
            sql_server_reachable: true,
            sql_error: None,
            outbox_depth: 0,
            takes_orders: Some(true),
            marked_stale: stale,
            incarnation: None,
            rejected_records: 0,
            rejected_latest: None,
        }
    }

    #[test]
    fn the_lowest_live_agent_decides_and_unknown_means_the_minimum() {
        assert_eq!(lowest_agent_max(&[]), None);
        assert_eq!(lowest_agent_max(&[agent(Some(2), false)]), Some(2));
        assert_eq!(
            lowest_agent_max(&[agent(Some(2), false), agent(Some(1), false)]),
            Some(1)
        );
        assert_eq!(
            lowest_agent_max(&[agent(Some(2), false), agent(Some(1), true)]),
            Some(2),
            "a stale agent does not hold the others back"
        );
        assert_eq!(
            lowest_agent_max(&[agent(Some(2), false), agent(None, false)]),
            None,
            "an agent that has not said: write the minimum"
        );
        assert_eq!(
            THIS_BUILD.write_version(lowest_agent_max(&[])).ok(),
            Some(THIS_BUILD.min)
        );
    }
}
