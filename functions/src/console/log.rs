//! The console's log: what happened, newest first — operators' actions
//! (sign-ins, "Send again", forced syncs) with who did them, and the
//! events the console records beside them.
//!
//! Items: `pk = log#<yyyy-mm-dd>` (UTC day), `sk = <RFC 3339 time>#<uuid>`,
//! the entry's fields; `ttl` after [`KEEP_DAYS`]. A page reads the newest
//! days' partitions backwards (Query, `ScanIndexForward = false`), never the
//! table.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::dynamo::s;
use crate::state::StateError;

/// Days an entry is kept.
pub const KEEP_DAYS: i64 = 90;

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub at: DateTime<Utc>,
    /// Who: an operator's e-mail, or "system".
    pub actor: String,
    /// What, as a short key: "sign-in", "sign-in refused", "order sent again", …
    pub action: String,
    /// On what: "sklep/1234", an e-mail, …
    pub subject: String,
    /// The rest, in words.
    #[serde(default)]
    pub detail: String,
}

#[derive(Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    ttl: i64,
    #[serde(flatten)]
    entry: LogEntry,
}

#[derive(Debug, Clone)]
pub struct ActivityLog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl ActivityLog {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        ActivityLog {
            client,
            table: table.into(),
        }
    }

    /// Records an entry.
    pub async fn record(&self, entry: LogEntry) -> Result<(), StateError> {
        let item = Item {
            pk: format!("log#{}", entry.at.format("%Y-%m-%d")),
            sk: format!(
                "{}#{}",
                entry.at.to_rfc3339(),
                uuid::Uuid::new_v4().simple()
            ),
            ttl: (entry.at + Duration::days(KEEP_DAYS)).timestamp(),
            entry,
        };
        let item: std::collections::HashMap<String, AttributeValue> =
            serde_dynamo::to_item(item).map_err(|e| StateError::Malformed {
                key: "log".into(),
                problem: e.to_string(),
            })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StateError::dynamo("PutItem", &self.table, &e))
    }

    /// The newest entries, at most `limit`, from the last `days` days
    /// (today first), those whose actor, action or subject contain
    /// `filter` (case-insensitive) when one is given.
    pub async fn newest(
        &self,
        now: DateTime<Utc>,
        days: i64,
        limit: usize,
        filter: Option<&str>,
    ) -> Result<Vec<LogEntry>, StateError> {
        let needle = filter
            .map(|f| f.trim().to_lowercase())
            .filter(|f| !f.is_empty());
        let mut found = Vec::new();
        for back in 0..days.max(1) {
            let day = (now - Duration::days(back)).format("%Y-%m-%d").to_string();
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(format!("log#{day}")))
                    .scan_index_forward(false)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| StateError::dynamo("Query", &self.table, &e))?;
                for item in out.items.unwrap_or_default() {
                    let Ok(item) = serde_dynamo::from_item::<_, Item>(item) else {
                        tracing::warn!(day, "a log entry is unreadable; skipped");
                        continue;
                    };
                    let entry = item.entry;
                    let shown = needle.as_deref().is_none_or(|n| {
                        [&entry.actor, &entry.action, &entry.subject, &entry.detail]
                            .iter()
                            .any(|field| field.to_lowercase().contains(n))
                    });
                    if shown {
                        found.push(entry);
                        if found.len() >= limit {
                            return Ok(found);
                        }
                    }
                }
                start = out.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        Ok(found)
    }
}
