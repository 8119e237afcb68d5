//! `watchdog`: on a schedule, marks agents whose heartbeats stopped.
//!
//! A silent agent means the shop's stock may be stale; the mark is what the
//! status and the stale-stock policy read.

use chrono::Utc;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::HandlerError;
use crate::aws::Clients;
use crate::env::{EnvError, FunctionEnv};
use crate::state::StateTable;

#[derive(Clone, Debug)]
pub struct Watchdog {
    state: StateTable,
    stale_after: chrono::Duration,
}

impl Watchdog {
    pub fn new(clients: &Clients, env: &FunctionEnv) -> Result<Self, EnvError> {
        let seconds: i64 = env.parsed("AGENT_STALE_AFTER_SECONDS", "a whole number of seconds")?;
        Ok(Watchdog {
            state: StateTable::new(clients.dynamodb.clone(), env.required("STATE_TABLE")?, 30),
            stale_after: chrono::Duration::seconds(seconds),
        })
    }

    /// The handler: the schedule's input in, a summary out.
    pub async fn handle(&self, _input: Value) -> Result<Value, HandlerError> {
        let now = Utc::now();
        let mut changed = Vec::new();
        for agent in self.state.agents().await? {
            let stale = now - agent.last_seen > self.stale_after;
            if stale != agent.marked_stale {
                self.state.mark_stale(&agent.agent_id, stale).await?;
                if stale {
                    warn!(agent = %agent.agent_id, last_seen = %agent.last_seen, "agent silent: data is stale");
                } else {
                    info!(agent = %agent.agent_id, "agent is back");
                }
                changed.push(json!({"agent_id": agent.agent_id, "stale": stale}));
            }
        }
        Ok(json!({ "changed": changed }))
    }
}
