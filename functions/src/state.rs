//! The state table: one DynamoDB table, keys `pk`/`sk`, TTL on `expires_at`.
//!
//! Item families (pk → sk):
//! - `agents` → agent id: the agent's last heartbeat.
//! - `parked` → `<received at>#<message id>`: messages that could not be
//!   used, with their reason, for the admin status.
//!
//! TTL deletion is lazy in AWS (and absent in emulators), so every read
//! here ignores items whose `expires_at` has passed.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use thiserror::Error;

use crate::aws::describe_error;
use crate::dynamo::{get_bool, get_n, get_s, n, s};

#[derive(Debug, Error)]
pub enum StateError {
    #[error("DynamoDB {operation} on {table} failed: {message}")]
    Dynamo {
        operation: &'static str,
        table: String,
        message: String,
    },
    #[error("state item {key} is malformed: {problem}")]
    Malformed { key: String, problem: String },
    #[error("{0}")]
    Contract(#[from] contract::ContractError),
    /// Something the cloud needs to know first has not been heard yet.
    #[error("{0}")]
    NotYet(String),
    /// The buyer's documents could not be stored (S3, or their records).
    #[error(transparent)]
    Documents(#[from] crate::documents::DocumentsError),
}

impl StateError {
    /// A DynamoDB call on `table` that failed, described for the log.
    pub fn dynamo(
        operation: &'static str,
        table: &str,
        err: &(dyn std::error::Error + 'static),
    ) -> StateError {
        StateError::Dynamo {
            operation,
            table: table.to_owned(),
            message: describe_error(err),
        }
    }
}

/// What the table knows about one agent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentStatus {
    pub agent_id: String,
    pub agent_version: String,
    /// The newest contract version the agent reads (from its heartbeat's
    /// envelope; `None` if stored before the field existed).
    pub contract_max_version: Option<u16>,
    /// When the cloud received the last heartbeat.
    pub last_seen: DateTime<Utc>,
    /// The agent's clock in that heartbeat.
    pub agent_clock: DateTime<Utc>,
    /// agent clock − cloud clock at receipt, in seconds (positive: agent ahead).
    pub clock_skew_seconds: f64,
    pub last_seq: u64,
    pub sql_server_reachable: bool,
    pub sql_error: Option<String>,
    pub outbox_depth: u64,
    /// Whether the agent writes shop orders (None: an agent too old to say).
    pub takes_orders: Option<bool>,
    /// The life of the agent's state file its last heartbeat came from.
    pub incarnation: Option<String>,
    /// Staged records the agent set aside as unsendable, and the latest.
    pub rejected_records: u64,
    pub rejected_latest: Option<String>,
    /// Set by the watchdog when heartbeats stopped.
    pub marked_stale: bool,
}

/// A message that could not be used, kept for a person.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ParkedMessage {
    pub source: String,
    pub message_id: String,
    pub reason: String,
    pub received_at: DateTime<Utc>,
}

/// Access to the state table.
#[derive(Clone, Debug)]
pub struct StateTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention: Duration,
}

fn expired(item: &HashMap<String, AttributeValue>, now: DateTime<Utc>) -> bool {
    get_n::<i64>(item, "expires_at").is_some_and(|at| at <= now.timestamp())
}

/// A heartbeat as the ingest function records it.
pub struct HeartbeatWrite<'a> {
    pub agent_id: &'a str,
    pub incarnation: Option<&'a str>,
    pub seq: u64,
    /// Where it stands in everything the agent said
    /// ([`crate::sequences::SeqVersion::rank`]): what orders heartbeats.
    pub rank: u64,
    pub heartbeat: &'a contract::Heartbeat,
    /// The envelope's `max_version` (see [`crate::agent_versions`]).
    pub max_version: u16,
    pub received_at: DateTime<Utc>,
}

impl StateTable {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        retention_days: i64,
    ) -> Self {
        StateTable {
            client,
            table: table.into(),
            retention: Duration::days(retention_days.max(1)),
        }
    }

    pub fn name(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    fn error(
        &self,
        operation: &'static str,
        err: &(dyn std::error::Error + 'static),
    ) -> StateError {
        StateError::dynamo(operation, &self.table, err)
    }

    /// Stores a heartbeat unless one from later in the agent's sequence is
    /// already stored (never by the agent's clock, which may step back):
    /// reordered heartbeats change nothing. Returns whether it was stored.
    pub async fn record_heartbeat(&self, write: HeartbeatWrite<'_>) -> Result<bool, StateError> {
        let hb = write.heartbeat;
        let clock_ms = hb.agent_clock.timestamp_millis();
        let skew_ms = (hb.agent_clock - write.received_at).num_milliseconds();
        // An update, not a put: the watchdog's stale mark stays until the
        // watchdog itself sees the agent back (and restores what it zeroed).
        let sql_error = match &hb.health.sql_error {
            Some(error) => s(error),
            None => AttributeValue::Null(true),
        };
        let nullable = |text: Option<&str>| match text {
            Some(text) => s(text),
            None => AttributeValue::Null(true),
        };
        let put = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("agents"))
            .key("sk", s(write.agent_id))
            .update_expression(
                "SET agent_version = :version, agent_clock_ms = :clock, received_at_ms = :received, \
                 skew_ms = :skew, last_seq = :seq, sql_server = :sql, outbox_depth = :outbox, sql_error = :sql_error, \
                 max_version = :max_version, takes_orders = :takes_orders, hb_rank = :rank, \
                 incarnation = :incarnation, rejected_records = :rejected, rejected_latest = :rejected_latest",
            )
            .condition_expression(
                "attribute_not_exists(pk) OR attribute_not_exists(hb_rank) OR hb_rank <= :rank",
            )
            .expression_attribute_values(":rank", n(write.rank))
            .expression_attribute_values(":incarnation", nullable(write.incarnation))
            .expression_attribute_values(":rejected", n(hb.health.rejected_records.unwrap_or(0)))
            .expression_attribute_values(
                ":rejected_latest",
                nullable(hb.health.rejected_latest.as_deref()),
            )
            .expression_attribute_values(":version", s(&hb.agent_version))
            .expression_attribute_values(":clock", n(clock_ms))
            .expression_attribute_values(":received", n(write.received_at.timestamp_millis()))
            .expression_attribute_values(":skew", n(skew_ms))
            .expression_attribute_values(":seq", n(write.seq))
            .expression_attribute_values(":sql", AttributeValue::Bool(hb.health.sql_server))
            .expression_attribute_values(":outbox", n(hb.health.outbox_depth))
            .expression_attribute_values(":sql_error", sql_error)
            .expression_attribute_values(":max_version", n(write.max_version))
            .expression_attribute_values(
                ":takes_orders",
                match hb.health.takes_orders {
                    Some(takes) => AttributeValue::Bool(takes),
                    None => AttributeValue::Null(true),
                },
            );
        crate::dynamo::written(put.send().await)
            .map(|written| written.is_some())
            .map_err(|err| self.error("UpdateItem", &err))
    }

    /// Every agent that has sent a heartbeat.
    pub async fn agents(&self) -> Result<Vec<AgentStatus>, StateError> {
        let now = Utc::now();
        let items = self.query_partition("agents").await?;
        items
            .iter()
            .filter(|item| !expired(item, now))
            .map(|item| {
                let key = format!("agents/{}", get_s(item, "sk").unwrap_or("?"));
                let malformed = |problem: &str| StateError::Malformed {
                    key: key.clone(),
                    problem: problem.to_owned(),
                };
                Ok(AgentStatus {
                    agent_id: get_s(item, "sk")
                        .ok_or_else(|| malformed("no sk"))?
                        .to_owned(),
                    agent_version: get_s(item, "agent_version").unwrap_or_default().to_owned(),
                    contract_max_version: get_n(item, "max_version"),
                    last_seen: get_n(item, "received_at_ms")
                        .and_then(DateTime::from_timestamp_millis)
                        .ok_or_else(|| malformed("no received_at_ms"))?,
                    agent_clock: get_n(item, "agent_clock_ms")
                        .and_then(DateTime::from_timestamp_millis)
                        .ok_or_else(|| malformed("no agent_clock_ms"))?,
                    clock_skew_seconds: get_n::<i64>(item, "skew_ms").unwrap_or(0) as f64 / 1000.0,
                    last_seq: get_n(item, "last_seq").unwrap_or(0),
                    sql_server_reachable: get_bool(item, "sql_server"),
                    sql_error: get_s(item, "sql_error").map(str::to_owned),
                    outbox_depth: get_n(item, "outbox_depth").unwrap_or(0),
                    takes_orders: match item.get("takes_orders") {
                        Some(AttributeValue::Bool(takes)) => Some(*takes),
                        _ => None,
                    },
                    marked_stale: get_bool(item, "stale"),
                    incarnation: get_s(item, "incarnation").map(str::to_owned),
                    rejected_records: get_n(item, "rejected_records").unwrap_or(0),
                    rejected_latest: get_s(item, "rejected_latest").map(str::to_owned),
                })
            })
            .collect()
    }

    /// Marks an agent stale (or not) without touching its heartbeat fields.
    pub async fn mark_stale(&self, agent_id: &str, stale: bool) -> Result<(), StateError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("agents"))
            .key("sk", s(agent_id))
            .update_expression("SET stale = :stale")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":stale", AttributeValue::Bool(stale))
            .send()
            .await
            .map_err(|err| self.error("UpdateItem", &err))?;
        Ok(())
    }

    /// Keeps a message that could not be used, with its reason, for a person.
    pub async fn park(
        &self,
        source: &str,
        message_id: &str,
        body: &str,
        reason: &str,
    ) -> Result<(), StateError> {
        let now = Utc::now();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s("parked"))
            .item("sk", s(format!("{}#{message_id}", now.to_rfc3339())))
            .item("source", s(source))
            .item("message_id", s(message_id))
            .item("reason", s(reason))
            .item("body", s(body))
            .item("received_at_ms", n(now.timestamp_millis()))
            .item("expires_at", n((now + self.retention).timestamp()))
            .send()
            .await
            .map_err(|err| self.error("PutItem", &err))?;
        Ok(())
    }

    /// Parked messages, oldest first.
    pub async fn parked(&self) -> Result<Vec<ParkedMessage>, StateError> {
        let now = Utc::now();
        Ok(self
            .query_partition("parked")
            .await?
            .iter()
            .filter(|item| !expired(item, now))
            .map(|item| ParkedMessage {
                source: get_s(item, "source").unwrap_or_default().to_owned(),
                message_id: get_s(item, "message_id").unwrap_or_default().to_owned(),
                reason: get_s(item, "reason").unwrap_or_default().to_owned(),
                received_at: get_n(item, "received_at_ms")
                    .and_then(DateTime::from_timestamp_millis)
                    .unwrap_or_default(),
            })
            .collect())
    }

    async fn query_partition(
        &self,
        pk: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StateError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| self.error("Query", &err))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}
