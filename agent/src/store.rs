//! The agent's local state: one SQLite file (WAL, full fsync on commit).
//!
//! - `meta`: the next sequence number.
//! - `outbox`: encoded message bodies waiting for SQS to confirm them,
//!   oldest first. A body is written here, with its sequence number, in the
//!   same transaction that allocates the number, before any send; it leaves
//!   only after SQS confirmed it. So a crash at any point loses nothing and
//!   re-sends at most what was in flight.
//! - Rows with a `coalesce_key` (e.g. the heartbeat) are replaced in place
//!   while unsent: an outage does not replay a history of heartbeats.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use contract::{ContractError, Payload, encode_envelopes};
use rusqlite::{Connection, OptionalExtension, params};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("agent state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot encode a message: {0}")]
    Encode(#[from] ContractError),
    #[error("agent state database lock poisoned")]
    Poisoned,
}

/// One message waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub seq: u64,
    pub kind: String,
    pub body: String,
}

pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT OR IGNORE INTO meta (key, value) VALUES ('next_seq', 1);
             CREATE TABLE IF NOT EXISTS outbox (
                 seq INTEGER PRIMARY KEY,
                 kind TEXT NOT NULL,
                 coalesce_key TEXT UNIQUE,
                 body TEXT NOT NULL,
                 created_at TEXT NOT NULL
             );",
        )?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Encodes `payload` (split to fit SQS), numbers and stores it; returns
    /// the sequence numbers. With a `coalesce_key`, an unsent message with
    /// the same key is replaced in place and keeps its number.
    pub fn enqueue(
        &self,
        agent_id: &str,
        payload: Payload,
        coalesce_key: Option<&str>,
        max_body_bytes: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let kind = payload.kind().as_str();
        let reuse: Option<u64> = match coalesce_key {
            Some(key) => tx
                .query_row(
                    "SELECT seq FROM outbox WHERE coalesce_key = ?1",
                    [key],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .map(|seq| seq as u64),
            None => None,
        };
        // SQLite integers are i64; sequence numbers stay far below i64::MAX.
        let mut next = tx.query_row("SELECT value FROM meta WHERE key = 'next_seq'", [], |r| {
            r.get::<_, i64>(0)
        })? as u64;
        let mut allocated = 0u64;
        let parts = encode_envelopes(agent_id, now, payload, max_body_bytes, || match reuse {
            Some(seq) if allocated == 0 => {
                allocated += 1;
                seq
            }
            _ => {
                let seq = next;
                next += 1;
                allocated += 1;
                seq
            }
        })?;
        let mut seqs = Vec::with_capacity(parts.len());
        for (i, (envelope, body)) in parts.iter().enumerate() {
            let key = if i == 0 { coalesce_key } else { None };
            tx.execute(
                "INSERT INTO outbox (seq, kind, coalesce_key, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(seq) DO UPDATE SET body = excluded.body, created_at = excluded.created_at",
                params![envelope.seq as i64, kind, key, body, now.to_rfc3339()],
            )?;
            seqs.push(envelope.seq);
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'next_seq'",
            [next as i64],
        )?;
        tx.commit()?;
        Ok(seqs)
    }

    /// Up to `limit` unsent messages, oldest first.
    pub fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT seq, kind, body FROM outbox ORDER BY seq LIMIT ?1")?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(OutboxEntry {
                seq: r.get::<_, i64>(0)? as u64,
                kind: r.get(1)?,
                body: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// SQS confirmed it: forget it.
    pub fn remove(&self, seq: u64) -> Result<(), StoreError> {
        self.conn()?
            .execute("DELETE FROM outbox WHERE seq = ?1", [seq as i64])?;
        Ok(())
    }

    pub fn outbox_depth(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn()?
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))?
            as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::{AgentHealth, Heartbeat, Ping};

    fn heartbeat(depth: u64) -> Payload {
        Payload::Heartbeat(Heartbeat {
            agent_version: "t".into(),
            agent_clock: Utc::now(),
            health: AgentHealth {
                sql_server: true,
                sql_error: None,
                outbox_depth: depth,
            },
        })
    }

    #[test]
    fn sequence_numbers_grow_and_survive_reopening() -> Result<(), StoreError> {
        let dir = tempfile::tempdir()
            .map_err(|e| StoreError::Sqlite(rusqlite::Error::InvalidPath(e.to_string().into())))?;
        let path = dir.path().join("state.sqlite");
        let store = Store::open(&path)?;
        let ping = || Payload::Ping(Ping { nonce: "x".into() });
        let a = store.enqueue("a", ping(), None, 250_000, Utc::now())?;
        let b = store.enqueue("a", ping(), None, 250_000, Utc::now())?;
        assert_eq!((a, b), (vec![1], vec![2]));
        store.remove(1)?;
        store.remove(2)?;
        drop(store);
        let store = Store::open(&path)?;
        assert_eq!(
            store.enqueue("a", ping(), None, 250_000, Utc::now())?,
            vec![3],
            "no number is reused after a restart"
        );
        Ok(())
    }

    #[test]
    fn an_unsent_heartbeat_is_replaced_not_queued_twice() -> Result<(), StoreError> {
        let dir = tempfile::tempdir()
            .map_err(|e| StoreError::Sqlite(rusqlite::Error::InvalidPath(e.to_string().into())))?;
        let store = Store::open(&dir.path().join("s.sqlite"))?;
        let first = store.enqueue("a", heartbeat(1), Some("heartbeat"), 250_000, Utc::now())?;
        let second = store.enqueue("a", heartbeat(2), Some("heartbeat"), 250_000, Utc::now())?;
        assert_eq!(first, second, "the unsent heartbeat keeps its number");
        let pending = store.pending(10)?;
        assert_eq!(pending.len(), 1);
        assert!(
            pending[0].body.contains(r#""outbox_depth":2"#),
            "the newest heartbeat wins"
        );
        store.remove(first[0])?;
        let third = store.enqueue("a", heartbeat(3), Some("heartbeat"), 250_000, Utc::now())?;
        assert!(
            third[0] > first[0],
            "once sent, the next heartbeat gets a new number"
        );
        Ok(())
    }
}
