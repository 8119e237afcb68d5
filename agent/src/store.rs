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
//! - `hashes`: per record key, the hash of what was last staged: only a
//!   record whose hash changed is staged again.
//! - `pending`: staged records, one row per key, newest wins; the sender
//!   turns them into an outbox batch only when the outbox is empty, so while
//!   SQS is unreachable updates of the same SKU coalesce here instead of
//!   piling up as history.
//! - `cursors`: change-detection cursors (e.g. the newest `TrN_TS_Mod` seen).
//! - `leases`: only one sync of a kind runs at a time, across processes.
//! - `orders`: shop orders this agent wrote into Optima, and what it last
//!   reported of their progress, until they reach a final stage.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use contract::{ContractError, Payload, encode_envelopes_at};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("agent state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot encode a message: {0}")]
    Encode(#[from] ContractError),
    #[error("a staged record is not valid JSON: {0}")]
    Json(String),
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

/// The oldest staged records of a kind: read through `pending_by_age`, so
/// each batch of a full pass costs its own rows, not a sort of everything
/// still staged (which made a 100,000-product pass quadratic: 55 CPU s).
const OLDEST_PENDING: &str =
    "SELECT key, record FROM pending WHERE kind = ?1 ORDER BY staged_at, key LIMIT ?2";

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT OR IGNORE INTO meta (key, value) VALUES ('next_seq', 1);
             CREATE TABLE IF NOT EXISTS hashes (kind TEXT NOT NULL, key TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (kind, key));
             CREATE TABLE IF NOT EXISTS pending (kind TEXT NOT NULL, key TEXT NOT NULL, record TEXT NOT NULL, staged_at TEXT NOT NULL, PRIMARY KEY (kind, key));
             CREATE INDEX IF NOT EXISTS pending_by_age ON pending (kind, staged_at, key);
             CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS orders (
                 key TEXT PRIMARY KEY,
                 shop TEXT NOT NULL,
                 order_id TEXT NOT NULL,
                 document_id INTEGER NOT NULL,
                 document_number TEXT NOT NULL,
                 reported TEXT,
                 final INTEGER NOT NULL DEFAULT 0,
                 updated_at TEXT NOT NULL
             );
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
        let next_seq = || match reuse {
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
        };
        let version = crate::cloud_version::write_version();
        let parts = encode_envelopes_at(version, agent_id, now, payload, max_body_bytes, next_seq)?;
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

/// A shop order this agent wrote, followed until it is done.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedOrder {
    pub key: String,
    pub shop: String,
    pub order_id: String,
    pub document_id: i64,
    pub document_number: String,
    /// What was last reported (an opaque summary), None before the first report.
    pub reported: Option<String>,
}

impl Store {
    /// Starts following an order's document (a repeat is a no-op).
    pub fn track_order(
        &self,
        shop: &str,
        order_id: &str,
        document_id: i64,
        document_number: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT OR IGNORE INTO orders (key, shop, order_id, document_id, document_number, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![format!("{shop}:{order_id}"), shop, order_id, document_id, document_number, now.to_rfc3339()],
        )?;
        Ok(())
    }

    /// Orders not yet in a final stage, oldest first.
    pub fn open_orders(&self, limit: usize) -> Result<Vec<TrackedOrder>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT key, shop, order_id, document_id, document_number, reported FROM orders WHERE final = 0 ORDER BY updated_at, key LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(TrackedOrder {
                key: r.get(0)?,
                shop: r.get(1)?,
                order_id: r.get(2)?,
                document_id: r.get(3)?,
                document_number: r.get(4)?,
                reported: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records what was reported; a final stage stops the following.
    pub fn order_reported(
        &self,
        key: &str,
        reported: &str,
        is_final: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn()?.execute(
            "UPDATE orders SET reported = ?2, final = ?3, updated_at = ?4 WHERE key = ?1",
            params![key, reported, is_final as i64, now.to_rfc3339()],
        )?;
        Ok(())
    }
}

/// A record kind the agent stages, with how its key and hash are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Products,
    Prices,
    Stock,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Products => "products",
            RecordKind::Prices => "prices",
            RecordKind::Stock => "stock",
        }
    }

    const ALL: [RecordKind; 3] = [RecordKind::Products, RecordKind::Prices, RecordKind::Stock];
}

/// What the hash of a record covers: everything the cloud uses, not the
/// moment it was read (`read_at`, `modified_at`), or every pass would resend.
fn content_hash(record: &serde_json::Value) -> String {
    let mut record = record.clone();
    if let Some(object) = record.as_object_mut() {
        object.remove("read_at");
        object.remove("modified_at");
    }
    hex::encode(Sha256::digest(record.to_string().as_bytes()))
}

/// The result of staging one set of records.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Staged {
    pub read: usize,
    pub changed: usize,
}

impl Store {
    /// Stages the records whose content changed since they were last staged
    /// (all of them with `ignore_hashes`), replacing any unsent version.
    pub fn stage<T: serde::Serialize>(
        &self,
        kind: RecordKind,
        records: &[(String, T)],
        ignore_hashes: bool,
        now: DateTime<Utc>,
    ) -> Result<Staged, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let mut staged = Staged {
            read: records.len(),
            changed: 0,
        };
        {
            let mut get = tx.prepare("SELECT hash FROM hashes WHERE kind = ?1 AND key = ?2")?;
            let mut put_hash =
                tx.prepare("INSERT OR REPLACE INTO hashes (kind, key, hash) VALUES (?1, ?2, ?3)")?;
            let mut put_pending =
                tx.prepare("INSERT OR REPLACE INTO pending (kind, key, record, staged_at) VALUES (?1, ?2, ?3, ?4)")?;
            let stamp = now.to_rfc3339();
            for (key, record) in records {
                let value =
                    serde_json::to_value(record).map_err(|e| StoreError::Json(e.to_string()))?;
                let hash = content_hash(&value);
                let old: Option<String> = get
                    .query_row(params![kind.as_str(), key], |r| r.get(0))
                    .optional()?;
                if !ignore_hashes && old.as_deref() == Some(hash.as_str()) {
                    continue;
                }
                put_hash.execute(params![kind.as_str(), key, hash])?;
                put_pending.execute(params![kind.as_str(), key, value.to_string(), stamp])?;
                staged.changed += 1;
            }
        }
        tx.commit()?;
        Ok(staged)
    }

    /// Staged records waiting to become a batch.
    pub fn pending_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn()?
            .query_row("SELECT COUNT(*) FROM pending", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    /// Moves up to `max_records` staged records of one kind into the outbox
    /// as numbered messages, in one transaction. Returns the sequence
    /// numbers (empty when nothing was staged).
    pub fn form_batch(
        &self,
        agent_id: &str,
        max_records: usize,
        max_body_bytes: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let mut chosen: Option<(RecordKind, Vec<(String, String)>)> = None;
        for kind in RecordKind::ALL {
            let mut stmt = tx.prepare(OLDEST_PENDING)?;
            let rows = stmt
                .query_map(params![kind.as_str(), max_records as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            if !rows.is_empty() {
                chosen = Some((kind, rows));
                break;
            }
        }
        let Some((kind, rows)) = chosen else {
            return Ok(Vec::new());
        };
        let json = |r: &String| {
            serde_json::from_str::<serde_json::Value>(r)
                .map_err(|e| StoreError::Json(e.to_string()))
        };
        let values = rows
            .iter()
            .map(|(_, r)| json(r))
            .collect::<Result<Vec<_>, _>>()?;
        let array = serde_json::Value::Array(values);
        let decode = |e: serde_json::Error| StoreError::Json(e.to_string());
        let payload = match kind {
            RecordKind::Products => {
                Payload::Products(serde_json::from_value(array).map_err(decode)?)
            }
            RecordKind::Prices => Payload::Prices(serde_json::from_value(array).map_err(decode)?),
            RecordKind::Stock => Payload::Stock(serde_json::from_value(array).map_err(decode)?),
        };
        let mut next = tx.query_row("SELECT value FROM meta WHERE key = 'next_seq'", [], |r| {
            r.get::<_, i64>(0)
        })? as u64;
        let version = crate::cloud_version::write_version();
        let parts = encode_envelopes_at(version, agent_id, now, payload, max_body_bytes, || {
            let seq = next;
            next += 1;
            seq
        })?;
        let mut seqs = Vec::new();
        for (envelope, body) in &parts {
            tx.execute(
                "INSERT INTO outbox (seq, kind, coalesce_key, body, created_at) VALUES (?1, ?2, NULL, ?3, ?4)",
                params![envelope.seq as i64, kind.as_str(), body, now.to_rfc3339()],
            )?;
            seqs.push(envelope.seq);
        }
        for (key, _) in &rows {
            tx.execute(
                "DELETE FROM pending WHERE kind = ?1 AND key = ?2",
                params![kind.as_str(), key],
            )?;
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'next_seq'",
            [next as i64],
        )?;
        tx.commit()?;
        Ok(seqs)
    }

    /// Forgets every hash of one kind (the next pass resends everything).
    pub fn clear_hashes(&self, kind: RecordKind) -> Result<(), StoreError> {
        self.conn()?
            .execute("DELETE FROM hashes WHERE kind = ?1", [kind.as_str()])?;
        Ok(())
    }

    pub fn cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()?
            .query_row("SELECT value FROM cursors WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO cursors (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            params![name, value],
        )?;
        Ok(())
    }

    /// Takes the lease `name` for `holder` until `until`, unless another
    /// holder has it and it has not expired. Returns whether it was taken.
    pub fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let changed = self.conn()?.execute(
            "INSERT INTO leases (name, holder, until_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
             WHERE leases.holder = excluded.holder OR leases.until_ms < ?4",
            params![
                name,
                holder,
                until.timestamp_millis(),
                now.timestamp_millis()
            ],
        )?;
        Ok(changed == 1)
    }

    pub fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.conn()?.execute(
            "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
            params![name, holder],
        )?;
        Ok(())
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
                takes_orders: None,
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

    fn stock(sku: &str, quantity: i64) -> (String, contract::StockRecord) {
        (
            format!("{sku}|MAG"),
            contract::StockRecord {
                sku: sku.into(),
                warehouse: "MAG".into(),
                quantity: rust_decimal::Decimal::new(quantity, 0),
                reserved: rust_decimal::Decimal::ZERO,
                read_at: Utc::now(),
            },
        )
    }

    #[test]
    fn only_changed_records_are_staged_and_updates_of_one_sku_coalesce() -> Result<(), StoreError> {
        let dir = tempfile::tempdir()
            .map_err(|e| StoreError::Sqlite(rusqlite::Error::InvalidPath(e.to_string().into())))?;
        let store = Store::open(&dir.path().join("s.sqlite"))?;
        let first = store.stage(
            RecordKind::Stock,
            &[stock("A", 5), stock("B", 7)],
            false,
            Utc::now(),
        )?;
        assert_eq!(
            first,
            Staged {
                read: 2,
                changed: 2
            }
        );
        // Read again a moment later: same content, new read_at: nothing to send.
        let again = store.stage(
            RecordKind::Stock,
            &[stock("A", 5), stock("B", 7)],
            false,
            Utc::now(),
        )?;
        assert_eq!(again.changed, 0, "read_at alone is not a change");
        // A is sold twice while nothing is sent: one pending row, the newest.
        store.stage(RecordKind::Stock, &[stock("A", 4)], false, Utc::now())?;
        store.stage(RecordKind::Stock, &[stock("A", 3)], false, Utc::now())?;
        assert_eq!(store.pending_count()?, 2, "A and B, not A three times");
        let forced = store.stage(RecordKind::Stock, &[stock("B", 7)], true, Utc::now())?;
        assert_eq!(forced.changed, 1, "ignore_hashes stages unchanged records");

        let seqs = store.form_batch("a", 1000, 250_000, Utc::now())?;
        assert_eq!(seqs.len(), 1);
        assert_eq!(store.pending_count()?, 0);
        let body = &store.pending(10)?[0].body;
        let envelope = contract::decode_body(body).map_err(StoreError::Encode)?;
        let contract::Payload::Stock(records) = envelope.payload else {
            panic!("a stock batch");
        };
        let a = records.iter().find(|r| r.sku == "A").map(|r| r.quantity);
        assert_eq!(
            a,
            Some(rust_decimal::Decimal::new(3, 0)),
            "the newest A wins"
        );
        assert!(
            store.form_batch("a", 1000, 250_000, Utc::now())?.is_empty(),
            "nothing left to batch"
        );
        Ok(())
    }

    #[test]
    fn a_batch_reads_the_oldest_staged_records_by_index_without_sorting_all()
    -> Result<(), StoreError> {
        let dir = tempfile::tempdir()
            .map_err(|e| StoreError::Sqlite(rusqlite::Error::InvalidPath(e.to_string().into())))?;
        let store = Store::open(&dir.path().join("state.sqlite"))?;
        let conn = store.conn()?;
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {OLDEST_PENDING}"))?
            .query_map(params!["stock", 500], |r| r.get::<_, String>(3))?
            .collect::<Result<_, _>>()?;
        assert!(
            plan.iter().any(|step| step.contains("pending_by_age"))
                && !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
        Ok(())
    }

    #[test]
    fn a_lease_is_held_by_one_holder_until_it_expires() -> Result<(), StoreError> {
        let dir = tempfile::tempdir()
            .map_err(|e| StoreError::Sqlite(rusqlite::Error::InvalidPath(e.to_string().into())))?;
        let store = Store::open(&dir.path().join("s.sqlite"))?;
        let now = Utc::now();
        let later = now + chrono::Duration::minutes(5);
        assert!(store.take_lease("sync:stock", "service", now, later)?);
        assert!(
            !store.take_lease("sync:stock", "cli", now, later)?,
            "a second sync of a kind waits"
        );
        assert!(
            store.take_lease(
                "sync:stock",
                "cli",
                later + chrono::Duration::seconds(1),
                later + chrono::Duration::minutes(5)
            )?,
            "an expired lease can be taken"
        );
        store.release_lease("sync:stock", "cli")?;
        assert!(store.take_lease("sync:stock", "service", now, later)?);
        Ok(())
    }
}
