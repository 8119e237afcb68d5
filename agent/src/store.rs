//! The agent's local state: one SQLite file (WAL, full fsync on commit).
//!
//! - `meta`: the next sequence number.
//! - `identity`: the incarnation, a random id made when this file is
//!   created. Sequence numbers count within it, and every envelope carries
//!   it, so after the file is deleted or the agent reinstalled the cloud
//!   hears the new life from seq 1 instead of dropping it as already seen.
//! - `outbox`: encoded message bodies waiting for SQS to confirm them,
//!   oldest first. A body is written here, with its sequence number, in the
//!   same transaction that allocates the number, before any send; it leaves
//!   only after SQS confirmed it. So a crash at any point loses nothing and
//!   re-sends at most what was in flight.
//! - Rows with a `coalesce_key` (e.g. the heartbeat) are replaced in place
//!   while no sender has read them: an outage does not replay a history of
//!   heartbeats. A row handed to the sender (`handed`) is never changed: it
//!   may be on the wire already, under its number's deduplication id, so a
//!   newer message takes a new row and number instead (heartbeats excepted:
//!   losing a replaced one costs nothing).
//! - `lane`: the latest heartbeat for its own lane (contract version 2 on),
//!   one slot, replaced each interval: it takes no sequence number and is
//!   sent ahead of the data.
//! - `rejected`: staged records that cannot be sent at all (larger than a
//!   message alone, or no longer readable), set aside with the reason so the
//!   rest of the kind flows; the heartbeat reports how many and the latest.
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
use contract::{ContractError, Origin, Payload, encode_envelopes_from};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

/// A transaction that takes the write lock when it begins. A deferred one
/// that reads, then writes after another process (the service beside an
/// `agent sync`) committed in between cannot upgrade its snapshot: SQLite
/// answers "database is locked" at once, without waiting the busy timeout.
fn write_transaction(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}
use sha2::{Digest, Sha256};
use thiserror::Error;
use tracing::error;

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

/// Descriptions longer than this are cut when staged: the cloud does not use
/// them, and an HTML description with inline images alone can pass a
/// message's size limit (which would hold up every batch of its kind).
pub const MAX_DESCRIPTION_BYTES: usize = 4 * 1024;

/// One message waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub seq: u64,
    pub kind: String,
    pub body: String,
}

pub struct Store {
    conn: Mutex<Connection>,
    /// When this process opened the file: a restored file's reports since
    /// then may all have been dropped ([`Store::begin_new_life`]).
    opened_at: DateTime<Utc>,
}

/// Staged records set aside because they cannot be sent, for the heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejected {
    pub count: u64,
    /// `<kind> <key>: <reason>` of the latest one.
    pub latest: Option<String>,
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
             );
             CREATE TABLE IF NOT EXISTS identity (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS lane (name TEXT PRIMARY KEY, body TEXT NOT NULL, version INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS rejected (kind TEXT NOT NULL, key TEXT NOT NULL, reason TEXT NOT NULL, record TEXT NOT NULL, rejected_at TEXT NOT NULL, PRIMARY KEY (kind, key));
             CREATE TABLE IF NOT EXISTS order_documents (document_id INTEGER PRIMARY KEY, key TEXT NOT NULL);",
        )?;
        // Files made before the column existed: their rows were never handed.
        let has_handed = conn
            .prepare("SELECT 1 FROM pragma_table_info('outbox') WHERE name = 'handed'")?
            .exists([])?;
        if !has_handed {
            conn.execute_batch("ALTER TABLE outbox ADD COLUMN handed INTEGER NOT NULL DEFAULT 0")?;
        }
        // Files made before the follower went round-robin: orders count as
        // tracked since their last change, and as never checked.
        let has_checked = conn
            .prepare("SELECT 1 FROM pragma_table_info('orders') WHERE name = 'checked_at'")?
            .exists([])?;
        if !has_checked {
            conn.execute_batch(
                "ALTER TABLE orders ADD COLUMN checked_at TEXT; \
                 ALTER TABLE orders ADD COLUMN tracked_at TEXT; \
                 UPDATE orders SET tracked_at = updated_at;",
            )?;
        }
        // Files made before corrections were followed: no order was
        // followed again.
        let has_reopened = conn
            .prepare("SELECT 1 FROM pragma_table_info('orders') WHERE name = 'reopened_at'")?
            .exists([])?;
        if !has_reopened {
            conn.execute_batch("ALTER TABLE orders ADD COLUMN reopened_at TEXT")?;
        }
        // A file made before incarnations existed gets one now: the cloud
        // hears it as a new life and asks for a full resend once.
        conn.execute(
            "INSERT OR IGNORE INTO identity (key, value) VALUES ('incarnation', ?1)",
            [uuid::Uuid::new_v4().simple().to_string()],
        )?;
        Ok(Store {
            conn: Mutex::new(conn),
            opened_at: Utc::now(),
        })
    }

    /// The life of this state file that sequence numbers count in.
    pub fn incarnation(&self) -> Result<String, StoreError> {
        incarnation_in(&*self.conn()?)
    }

    /// The cloud has applied more of this incarnation than this file says
    /// it numbered (`cloud_last_seq` > [`Store::position`]): the file was
    /// restored from an older backup, or copied from another install. The
    /// cloud would drop everything numbered from here as already seen, so
    /// this file starts a new life, counted from 1, which the cloud hears
    /// as new. The messages SQS has not confirmed yet are renumbered into
    /// it in their order (re-encoded: the bodies carry the incarnation);
    /// the heartbeat waiting for its lane is dropped (the next carries the
    /// new life); every followed order is reported again, and so is every
    /// order reported since the file was opened, final or not (those
    /// reports went out under the old numbers and may have been dropped).
    /// Returns the new incarnation.
    pub fn begin_new_life(&self, agent_id: &str, now: DateTime<Utc>) -> Result<String, StoreError> {
        let mut conn = self.conn()?;
        let tx = write_transaction(&mut conn)?;
        let unsent: Vec<(String, Option<String>, String)> = {
            let mut stmt =
                tx.prepare("SELECT kind, coalesce_key, body FROM outbox ORDER BY seq")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let new_life = uuid::Uuid::new_v4().simple().to_string();
        tx.execute(
            "UPDATE identity SET value = ?1 WHERE key = 'incarnation'",
            [&new_life],
        )?;
        tx.execute("DELETE FROM outbox", [])?;
        tx.execute("DELETE FROM lane WHERE name = 'heartbeat'", [])?;
        tx.execute(
            "UPDATE orders SET reported = NULL, final = 0 WHERE final = 0 OR updated_at >= ?1",
            [self.opened_at.to_rfc3339()],
        )?;
        let origin = Origin {
            agent_id,
            incarnation: Some(&new_life),
        };
        let mut next = 1u64;
        for (kind, coalesce_key, body) in unsent {
            let envelope = contract::decode_body(&body)?;
            let parts = encode_envelopes_from(
                envelope.version,
                &origin,
                envelope.sent_at,
                envelope.payload,
                contract::MAX_BODY_BYTES,
                || {
                    next += 1;
                    next - 1
                },
            )?;
            for (i, (envelope, body)) in parts.iter().enumerate() {
                let key = if i == 0 {
                    coalesce_key.as_deref()
                } else {
                    None
                };
                tx.execute(
                    "INSERT INTO outbox (seq, kind, coalesce_key, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![envelope.seq as i64, kind, key, body, now.to_rfc3339()],
                )?;
            }
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'next_seq'",
            [next as i64],
        )?;
        tx.commit()?;
        Ok(new_life)
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Encodes `payload` (split to fit SQS), numbers and stores it; returns
    /// the sequence numbers. With a `coalesce_key`, a message with the same
    /// key that no sender has read yet is replaced in place and keeps its
    /// number; one already handed to a sender stays as it is and this one
    /// gets a new number.
    pub fn enqueue(
        &self,
        agent_id: &str,
        payload: Payload,
        coalesce_key: Option<&str>,
        max_body_bytes: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>, StoreError> {
        let mut conn = self.conn()?;
        let tx = write_transaction(&mut conn)?;
        let kind = payload.kind().as_str();
        let reuse: Option<u64> = match coalesce_key {
            Some(key) => {
                // A handed row keeps its body and number but gives up the
                // key, so this message can take it in a row of its own.
                // Heartbeats excepted: a replaced one that is lost costs
                // nothing (the next follows), while a row per interval of
                // an SQS outage would replay a history of them.
                if payload.kind() != contract::Kind::Heartbeat {
                    tx.execute(
                        "UPDATE outbox SET coalesce_key = NULL WHERE coalesce_key = ?1 AND handed = 1",
                        [key],
                    )?;
                }
                tx.query_row(
                    "SELECT seq FROM outbox WHERE coalesce_key = ?1",
                    [key],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .map(|seq| seq as u64)
            }
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
        let incarnation = incarnation_in(&tx)?;
        let parts = encode_envelopes_from(
            version,
            &Origin {
                agent_id,
                incarnation: Some(&incarnation),
            },
            now,
            payload,
            max_body_bytes,
            next_seq,
        )?;
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

    /// Up to `limit` unsent messages, oldest first, marked as handed to the
    /// sender in the same transaction: from now on they are never coalesced
    /// into (see [`Store::enqueue`]).
    pub fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut conn = self.conn()?;
        let tx = write_transaction(&mut conn)?;
        let entries = {
            let mut stmt =
                tx.prepare("SELECT seq, kind, body FROM outbox ORDER BY seq LIMIT ?1")?;
            let rows = stmt.query_map([limit as i64], |r| {
                Ok(OutboxEntry {
                    seq: r.get::<_, i64>(0)? as u64,
                    kind: r.get(1)?,
                    body: r.get(2)?,
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        for entry in &entries {
            tx.execute(
                "UPDATE outbox SET handed = 1 WHERE seq = ?1 AND handed = 0",
                [entry.seq as i64],
            )?;
        }
        tx.commit()?;
        Ok(entries)
    }

    /// SQS confirmed it: forget it.
    pub fn remove(&self, seq: u64) -> Result<(), StoreError> {
        self.conn()?
            .execute("DELETE FROM outbox WHERE seq = ?1", [seq as i64])?;
        Ok(())
    }

    /// Puts a heartbeat body for its own lane in the one slot, replacing an
    /// unsent one (a newer heartbeat says everything an older one did);
    /// not when it was made in a life this file has left meanwhile.
    pub fn put_lane_heartbeat(&self, incarnation: &str, body: &str) -> Result<(), StoreError> {
        let conn = self.conn()?;
        if incarnation_in(&conn)? != incarnation {
            return Ok(());
        }
        conn.execute(
            "INSERT INTO lane (name, body, version) VALUES ('heartbeat', ?1, 1)
             ON CONFLICT(name) DO UPDATE SET body = excluded.body, version = lane.version + 1",
            [body],
        )?;
        Ok(())
    }

    /// The heartbeat waiting for its lane, with its version for
    /// [`Store::remove_lane_heartbeat`].
    pub fn lane_heartbeat(&self) -> Result<Option<(i64, String)>, StoreError> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT version, body FROM lane WHERE name = 'heartbeat'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// SQS took the heartbeat of `version`: forget it, unless a newer one
    /// replaced it meanwhile.
    pub fn remove_lane_heartbeat(&self, version: i64) -> Result<(), StoreError> {
        self.conn()?.execute(
            "DELETE FROM lane WHERE name = 'heartbeat' AND version = ?1",
            [version],
        )?;
        Ok(())
    }

    /// The incarnation and the last sequence number given in it (0: none
    /// yet), read together (a new life can begin between two separate
    /// reads): what a heartbeat in its own lane carries without taking one.
    pub fn position(&self) -> Result<(String, u64), StoreError> {
        let conn = self.conn()?;
        let next = conn.query_row("SELECT value FROM meta WHERE key = 'next_seq'", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok((incarnation_in(&conn)?, (next as u64).saturating_sub(1)))
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
            "INSERT OR IGNORE INTO orders (key, shop, order_id, document_id, document_number, updated_at, tracked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![format!("{shop}:{order_id}"), shop, order_id, document_id, document_number, now.to_rfc3339()],
        )?;
        Ok(())
    }

    /// Orders not yet in a final stage, the least recently checked first,
    /// marked as checked `now`: a round takes the next `limit`, so orders
    /// that never reach a final stage cannot keep new ones from being
    /// followed.
    pub fn orders_to_check(
        &self,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<TrackedOrder>, StoreError> {
        let mut conn = self.conn()?;
        let tx = write_transaction(&mut conn)?;
        let orders: Vec<TrackedOrder> = {
            let mut stmt = tx.prepare(
                "SELECT key, shop, order_id, document_id, document_number, reported FROM orders WHERE final = 0 \
                 ORDER BY checked_at IS NOT NULL, checked_at, key LIMIT ?1",
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
            rows.collect::<Result<_, _>>()?
        };
        {
            let mut mark = tx.prepare("UPDATE orders SET checked_at = ?2 WHERE key = ?1")?;
            let at = now.to_rfc3339();
            for order in &orders {
                mark.execute(params![order.key, at])?;
            }
        }
        tx.commit()?;
        Ok(orders)
    }

    /// Stops following orders tracked (or followed again) before `before`
    /// (picked up in person, shipped without a tracking number, forgotten):
    /// returns how many.
    pub fn stop_following_before(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        Ok(self.conn()?.execute(
            "UPDATE orders SET final = 1 WHERE final = 0 AND COALESCE(reopened_at, tracked_at) < ?1",
            [before.to_rfc3339()],
        )?)
    }

    /// Remembers the documents of an order's chain, so that a correction
    /// made to one of them later finds the order.
    pub fn remember_documents(&self, key: &str, documents: &[i64]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = write_transaction(&mut conn)?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO order_documents (document_id, key) VALUES (?1, ?2) \
                 ON CONFLICT(document_id) DO UPDATE SET key = excluded.key",
            )?;
            for document in documents {
                insert.execute(params![document, key])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Follows again the finished orders that a new correction names:
    /// `corrections` are (correction, corrected document) pairs; one whose
    /// corrected document is an order's and that the order has not reported
    /// yet reopens it, for another following period. Returns the keys.
    pub fn reopen_corrected(
        &self,
        corrections: &[(i64, i64)],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let tx = write_transaction(&mut conn)?;
        let mut reopened = Vec::new();
        {
            let mut owner = tx.prepare("SELECT key FROM order_documents WHERE document_id = ?1")?;
            let mut reopen = tx.prepare(
                "UPDATE orders SET final = 0, reopened_at = ?2 WHERE key = ?1 AND final = 1",
            )?;
            let at = now.to_rfc3339();
            for (correction, corrected) in corrections {
                if owner.exists([correction])? {
                    continue;
                }
                let key: Option<String> = owner.query_row([corrected], |r| r.get(0)).optional()?;
                if let Some(key) = key
                    && reopen.execute(params![key, at])? > 0
                {
                    reopened.push(key);
                }
            }
        }
        tx.commit()?;
        Ok(reopened)
    }

    /// Stops following one order (its document is gone from Optima).
    pub fn stop_following(&self, key: &str) -> Result<(), StoreError> {
        self.conn()?
            .execute("UPDATE orders SET final = 1 WHERE key = ?1", [key])?;
        Ok(())
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

    /// A staged record as a payload of one, or why it cannot be read.
    fn decode_one(self, text: &str) -> Result<Payload, String> {
        let read = |e: serde_json::Error| format!("staged record cannot be read: {e}");
        Ok(match self {
            RecordKind::Products => {
                Payload::Products(vec![serde_json::from_str(text).map_err(read)?])
            }
            RecordKind::Prices => Payload::Prices(vec![serde_json::from_str(text).map_err(read)?]),
            RecordKind::Stock => Payload::Stock(vec![serde_json::from_str(text).map_err(read)?]),
        })
    }

    /// Payloads of this kind (from [`RecordKind::decode_one`]) as one.
    fn join(self, parts: Vec<Payload>) -> Payload {
        let (mut products, mut prices, mut stock) = (Vec::new(), Vec::new(), Vec::new());
        for part in parts {
            match part {
                Payload::Products(v) => products.extend(v),
                Payload::Prices(v) => prices.extend(v),
                Payload::Stock(v) => stock.extend(v),
                _ => {}
            }
        }
        match self {
            RecordKind::Products => Payload::Products(products),
            RecordKind::Prices => Payload::Prices(prices),
            RecordKind::Stock => Payload::Stock(stock),
        }
    }
}

/// Sets a staged record aside with its reason (it leaves `pending` with the
/// batch; its hash stays, so it is staged again only once it changes).
fn reject(
    tx: &rusqlite::Transaction<'_>,
    kind: RecordKind,
    key: &str,
    record: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    error!(kind = kind.as_str(), %key, %reason, "a staged record cannot be sent; set aside, the rest goes on");
    tx.execute(
        "INSERT OR REPLACE INTO rejected (kind, key, reason, record, rejected_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![kind.as_str(), key, reason, record, now.to_rfc3339()],
    )?;
    Ok(())
}

/// Cuts a record's `description` to [`MAX_DESCRIPTION_BYTES`] (on a
/// character boundary).
fn cap_description(record: &mut serde_json::Value) {
    let Some(serde_json::Value::String(text)) = record.get_mut("description") else {
        return;
    };
    if text.len() > MAX_DESCRIPTION_BYTES {
        let mut end = MAX_DESCRIPTION_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
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
        let tx = write_transaction(&mut conn)?;
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
                let mut value =
                    serde_json::to_value(record).map_err(|e| StoreError::Json(e.to_string()))?;
                cap_description(&mut value);
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
    /// numbers (empty when nothing was staged). A record that cannot be sent
    /// (no longer readable, or too large for a message alone) is set aside
    /// in `rejected` with its reason and the rest goes on: one bad record
    /// never holds up its kind.
    pub fn form_batch(
        &self,
        agent_id: &str,
        max_records: usize,
        max_body_bytes: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<u64>, StoreError> {
        loop {
            let (seqs, taken) = self.form_one_batch(agent_id, max_records, max_body_bytes, now)?;
            // A batch whose every record was set aside: try the next ones.
            if !seqs.is_empty() || taken == 0 {
                return Ok(seqs);
            }
        }
    }

    /// One [`Store::form_batch`] attempt: the numbers written and how many
    /// staged records it took (written or set aside).
    fn form_one_batch(
        &self,
        agent_id: &str,
        max_records: usize,
        max_body_bytes: usize,
        now: DateTime<Utc>,
    ) -> Result<(Vec<u64>, usize), StoreError> {
        let mut conn = self.conn()?;
        let tx = write_transaction(&mut conn)?;
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
            return Ok((Vec::new(), 0));
        };
        let version = crate::cloud_version::write_version();
        let incarnation = incarnation_in(&tx)?;
        let origin = Origin {
            agent_id,
            incarnation: Some(&incarnation),
        };
        let encode = |payload: Payload, next: &mut u64| {
            encode_envelopes_from(version, &origin, now, payload, max_body_bytes, || {
                let seq = *next;
                *next += 1;
                seq
            })
        };
        let mut records = Vec::with_capacity(rows.len());
        let mut set_aside = std::collections::HashSet::new();
        for (key, text) in &rows {
            match kind.decode_one(text) {
                Ok(one) => records.push((key.as_str(), one)),
                Err(reason) => {
                    reject(&tx, kind, key, text, &reason, now)?;
                    set_aside.insert(key.as_str());
                }
            }
        }
        let mut next = tx.query_row("SELECT value FROM meta WHERE key = 'next_seq'", [], |r| {
            r.get::<_, i64>(0)
        })? as u64;
        let first = next;
        let batch = kind.join(records.iter().map(|(_, one)| one.clone()).collect());
        let parts = match encode(batch, &mut next) {
            Ok(parts) => parts,
            Err(ContractError::RecordTooLarge { .. }) => {
                // Find the records too large alone, set them aside, send the rest.
                next = first;
                let mut fitting = Vec::with_capacity(records.len());
                for (key, one) in records {
                    let mut probe = 0;
                    match encode(one.clone(), &mut probe) {
                        Ok(_) => fitting.push(one),
                        Err(err) => {
                            let text = rows
                                .iter()
                                .find(|(k, _)| k == key)
                                .map(|(_, t)| t.as_str())
                                .unwrap_or_default();
                            reject(&tx, kind, key, text, &err.to_string(), now)?;
                            set_aside.insert(key);
                        }
                    }
                }
                encode(kind.join(fitting), &mut next)?
            }
            Err(err) => return Err(err.into()),
        };
        let mut seqs = Vec::new();
        for (envelope, body) in &parts {
            if envelope.payload.is_empty() {
                continue;
            }
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
            if !set_aside.contains(key.as_str()) {
                // Sent now: no longer a rejected record.
                tx.execute(
                    "DELETE FROM rejected WHERE kind = ?1 AND key = ?2",
                    params![kind.as_str(), key],
                )?;
            }
        }
        // Only numbers of rows written are used up: none is skipped.
        let next = seqs.last().map_or(first, |last| last + 1);
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'next_seq'",
            [next as i64],
        )?;
        tx.commit()?;
        Ok((seqs, rows.len()))
    }

    /// How many staged records were set aside as unsendable, and the latest.
    pub fn rejected(&self) -> Result<Rejected, StoreError> {
        let conn = self.conn()?;
        let count = conn.query_row("SELECT COUNT(*) FROM rejected", [], |r| r.get::<_, i64>(0))?;
        let latest = conn
            .query_row(
                "SELECT kind, key, reason FROM rejected ORDER BY rejected_at DESC, key LIMIT 1",
                [],
                |r| {
                    Ok(format!(
                        "{} {}: {}",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?
                    ))
                },
            )
            .optional()?;
        Ok(Rejected {
            count: count as u64,
            latest,
        })
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

/// The incarnation as the file holds it: read where a message is numbered,
/// in the same transaction, so a new life cannot slip in between.
fn incarnation_in(conn: &Connection) -> Result<String, StoreError> {
    Ok(conn.query_row(
        "SELECT value FROM identity WHERE key = 'incarnation'",
        [],
        |r| r.get(0),
    )?)
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
                rejected_records: None,
                rejected_latest: None,
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
        let during_outage =
            store.enqueue("a", heartbeat(4), Some("heartbeat"), 250_000, Utc::now())?;
        assert_eq!(
            during_outage, first,
            "one the sender read but could not send yet is replaced too: an outage keeps one"
        );
        store.remove(first[0])?;
        let third = store.enqueue("a", heartbeat(3), Some("heartbeat"), 250_000, Utc::now())?;
        assert!(
            third[0] > first[0],
            "once sent, the next heartbeat gets a new number"
        );
        Ok(())
    }

    #[test]
    fn a_lane_heartbeat_takes_no_number_and_a_newer_one_replaces_it() -> Result<(), StoreError> {
        let (_dir, store) = temp_store()?;
        let ping = || Payload::Ping(Ping { nonce: "x".into() });
        store.enqueue("a", ping(), None, 250_000, Utc::now())?;
        store.put_lane_heartbeat(&store.incarnation()?, "one")?;
        let (sending, _) = store.lane_heartbeat()?.unwrap_or_default();
        store.put_lane_heartbeat(&store.incarnation()?, "two")?;
        store.remove_lane_heartbeat(sending)?;
        assert_eq!(
            store.lane_heartbeat()?.map(|(_, body)| body).as_deref(),
            Some("two"),
            "the newer one, put while the older was on the wire, stays"
        );
        assert_eq!(store.position()?.1, 1, "no number taken");
        assert_eq!(
            store.enqueue("a", ping(), None, 250_000, Utc::now())?,
            vec![2]
        );
        Ok(())
    }

    #[test]
    fn a_coalesced_message_that_splits_keeps_its_number_for_the_first_part_only()
    -> Result<(), StoreError> {
        let (_dir, store) = temp_store()?;
        let now = Utc::now();
        let one = Payload::Stock(vec![stock("A", 1).1]);
        assert_eq!(store.enqueue("a", one, Some("k"), 250_000, now)?, [1]);
        // Too big for one message of 2 KB: the same key, several parts.
        let records: Vec<_> = (0..200)
            .map(|i| {
                stock(
                    &format!(
                        "SKU-{:016x}",
                        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ),
                    i,
                )
                .1
            })
            .collect();
        let seqs = store.enqueue("a", Payload::Stock(records), Some("k"), 2_000, now)?;
        assert!(seqs.len() > 1, "split: {seqs:?}");
        let expected: Vec<u64> = std::iter::once(1).chain(2..=seqs.len() as u64).collect();
        assert_eq!(
            seqs, expected,
            "the first part takes the replaced number, the rest new ones"
        );
        let stored: Vec<u64> = store.pending(100)?.iter().map(|e| e.seq).collect();
        assert_eq!(stored, expected, "every part stored");
        Ok(())
    }

    #[test]
    fn a_price_batch_carries_every_staged_price() -> Result<(), StoreError> {
        let (_dir, store) = temp_store()?;
        let prices: Vec<(String, contract::PriceRecord)> = ["A", "B", "C"]
            .iter()
            .map(|sku| {
                (
                    format!("{sku}|Detaliczna"),
                    contract::PriceRecord {
                        sku: (*sku).into(),
                        price_list: "Detaliczna".into(),
                        kind: contract::PriceKind::Gross,
                        value: rust_decimal::Decimal::new(1999, 2),
                        currency: "PLN".into(),
                        vat: contract::VatRate::Percent(rust_decimal::Decimal::from(23)),
                    },
                )
            })
            .collect();
        store.stage(RecordKind::Prices, &prices, false, Utc::now())?;
        assert_eq!(store.form_batch("a", 1000, 250_000, Utc::now())?.len(), 1);
        let envelope = decode(&store.pending(10)?[0].body)?;
        let Payload::Prices(sent) = envelope.payload else {
            panic!("a price batch: {:?}", envelope.payload.kind());
        };
        let skus: Vec<&str> = sent.iter().map(|p| p.sku.as_str()).collect();
        assert_eq!(skus, ["A", "B", "C"]);
        Ok(())
    }

    /// A batch too large for one message goes as several, numbered one
    /// after another, each number once.
    #[test]
    fn a_batch_that_splits_takes_consecutive_numbers() -> Result<(), StoreError> {
        let (_dir, store) = temp_store()?;
        let records: Vec<_> = (0..2000)
            .map(|i| {
                stock(
                    &format!(
                        "SKU-{:08x}",
                        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
                    ),
                    i,
                )
            })
            .collect();
        store.stage(RecordKind::Stock, &records, false, Utc::now())?;
        let seqs = store.form_batch("a", 2000, 8_000, Utc::now())?;
        assert!(seqs.len() > 1, "split: {seqs:?}");
        let expected: Vec<u64> = (seqs[0]..seqs[0] + seqs.len() as u64).collect();
        assert_eq!(seqs, expected);
        let sent: usize = store
            .pending(100)?
            .iter()
            .map(|m| decode(&m.body).map(|e| e.payload.len()))
            .sum::<Result<usize, _>>()?;
        assert_eq!(sent, 2000, "every record in one of them");
        Ok(())
    }

    /// Forgetting the hashes makes the next pass stage everything again
    /// (a forced full sync); unchanged records are otherwise skipped.
    #[test]
    fn cleared_hashes_stage_unchanged_records_again() -> Result<(), StoreError> {
        let (_dir, store) = temp_store()?;
        let records = [stock("A", 1), stock("B", 2)];
        assert_eq!(
            store
                .stage(RecordKind::Stock, &records, false, Utc::now())?
                .changed,
            2
        );
        assert_eq!(
            store
                .stage(RecordKind::Stock, &records, false, Utc::now())?
                .changed,
            0
        );
        store.clear_hashes(RecordKind::Prices)?;
        assert_eq!(
            store
                .stage(RecordKind::Stock, &records, false, Utc::now())?
                .changed,
            0,
            "another kind's hashes only"
        );
        store.clear_hashes(RecordKind::Stock)?;
        assert_eq!(
            store
                .stage(RecordKind::Stock, &records, false, Utc::now())?
                .changed,
            2
        );
        Ok(())
    }

    #[test]
    fn a_description_is_cut_at_4_kib_on_a_character_boundary() {
        let cut = |text: String| {
            let mut record = serde_json::json!({ "description": text });
            cap_description(&mut record);
            record["description"].as_str().unwrap_or_default().len()
        };
        assert_eq!(cut("a".repeat(4096)), 4096, "4 KiB is kept whole");
        assert_eq!(cut("a".repeat(4097)), 4096);
        // "ż" is two bytes across the limit: it goes whole.
        assert_eq!(cut(format!("{}ż", "a".repeat(4095))), 4095);
    }

    #[test]
    fn a_final_report_or_a_vanished_document_ends_the_following() -> Result<(), StoreError> {
        let (_dir, store) = temp_store()?;
        let now = Utc::now();
        store.track_order("s", "1", 10, "RO/1/2026", now)?;
        store.track_order("s", "2", 20, "RO/2/2026", now)?;
        store.track_order("s", "3", 30, "RO/3/2026", now)?;
        store.order_reported("s:1", "Accepted|", false, now)?;
        store.order_reported("s:2", "Shipped|PL1", true, now)?;
        store.stop_following("s:3")?;
        let open = store.orders_to_check(10, now)?;
        let keys: Vec<(&str, Option<&str>)> = open
            .iter()
            .map(|o| (o.key.as_str(), o.reported.as_deref()))
            .collect();
        assert_eq!(keys, [("s:1", Some("Accepted|"))]);
        Ok(())
    }

    /// A correction to a finished order's invoice follows the order again,
    /// once, for a new period counted from then; a correction the order
    /// already reported, one of a document no order has, or one of an order
    /// still followed changes nothing.
    #[test]
    fn a_new_correction_follows_a_finished_order_again_for_a_new_period() -> Result<(), StoreError>
    {
        let (_dir, store) = temp_store()?;
        let long_ago = Utc::now() - chrono::Duration::days(50);
        store.track_order("s", "1", 10, "RO/1/2026", long_ago)?;
        store.track_order("s", "2", 20, "RO/2/2026", long_ago)?;
        store.remember_documents("s:1", &[10, 11, 12])?;
        store.remember_documents("s:2", &[20, 21])?;
        store.order_reported("s:1", "Shipped|PL1", true, long_ago)?;
        store.order_reported("s:2", "Accepted|", false, long_ago)?;
        let now = Utc::now();
        // 13 corrects the FS 11 of order 1; 21 is already order 2's; 99
        // corrects a document no order has; 22 corrects order 2's RO, which
        // is still followed.
        let reopened = store.reopen_corrected(&[(13, 11), (21, 20), (98, 99), (22, 20)], now)?;
        assert_eq!(reopened, ["s:1"]);
        let keys = |open: Vec<TrackedOrder>| open.into_iter().map(|o| o.key).collect::<Vec<_>>();
        assert_eq!(keys(store.orders_to_check(10, now)?), ["s:1", "s:2"]);
        // Once reported, the same correction does not reopen it again.
        store.remember_documents("s:1", &[10, 11, 12, 13])?;
        store.order_reported("s:1", "Shipped|PL1|13", true, now)?;
        assert!(store.reopen_corrected(&[(13, 11)], now)?.is_empty());
        // The period: order 2 (tracked 50 days ago) ends at 40 days; order
        // 1, followed again today, does not.
        store.reopen_corrected(&[(14, 12)], now)?;
        assert_eq!(
            store.stop_following_before(now - chrono::Duration::days(40))?,
            1
        );
        assert_eq!(keys(store.orders_to_check(10, now)?), ["s:1"]);
        Ok(())
    }

    fn temp_store() -> Result<(tempfile::TempDir, Store), StoreError> {
        let dir = tempfile::tempdir()
            .map_err(|e| StoreError::Sqlite(rusqlite::Error::InvalidPath(e.to_string().into())))?;
        let store = Store::open(&dir.path().join("s.sqlite"))?;
        Ok((dir, store))
    }

    fn decode(body: &str) -> Result<contract::Envelope, StoreError> {
        contract::decode_body(body).map_err(StoreError::Encode)
    }

    #[test]
    fn a_new_state_file_is_a_new_incarnation_numbered_from_one() -> Result<(), StoreError> {
        let (dir, store) = temp_store()?;
        let path = dir.path().join("s.sqlite");
        let ping = || Payload::Ping(Ping { nonce: "x".into() });
        store.enqueue("a", ping(), None, 250_000, Utc::now())?;
        let first = store.incarnation()?;
        assert_eq!(first.len(), 32, "a random 128-bit id: {first}");
        let envelope = decode(&store.pending(1)?[0].body)?;
        assert_eq!(envelope.incarnation.as_deref(), Some(first.as_str()));
        drop(store);
        assert_eq!(
            Store::open(&path)?.incarnation()?,
            first,
            "kept across restarts"
        );
        std::fs::remove_file(&path)
            .map_err(|e| StoreError::Sqlite(rusqlite::Error::InvalidPath(e.to_string().into())))?;
        let store = Store::open(&path)?;
        assert_ne!(store.incarnation()?, first, "a deleted state is a new life");
        assert_eq!(
            store.enqueue("a", ping(), None, 250_000, Utc::now())?,
            vec![1]
        );
        let envelope = decode(&store.pending(1)?[0].body)?;
        assert_eq!(
            envelope.incarnation.as_deref(),
            Some(store.incarnation()?.as_str())
        );
        Ok(())
    }

    #[test]
    fn a_new_life_renumbers_what_sqs_has_not_confirmed_from_one_in_order() -> Result<(), StoreError>
    {
        let (_dir, store) = temp_store()?;
        let ping = |nonce: &str| {
            Payload::Ping(Ping {
                nonce: nonce.into(),
            })
        };
        for nonce in ["sent", "in-flight", "waiting"] {
            store.enqueue("a", ping(nonce), None, 250_000, Utc::now())?;
        }
        let shipped = progress(Some("T1"));
        store.enqueue(
            "a",
            shipped.clone(),
            Some("order:sklep:7"),
            250_000,
            Utc::now(),
        )?;
        store.remove(1)?;
        store.pending(1)?; // seq 2 handed to the sender, not confirmed
        store.track_order("sklep", "7", 70, "RO/7/2026", Utc::now())?;
        store.order_reported("sklep:7", "shipped T1", false, Utc::now())?;
        store.track_order("sklep", "8", 80, "RO/8/2026", Utc::now())?;
        store.order_reported("sklep:8", "shipped T8", true, Utc::now())?;
        let old = store.incarnation()?;
        store.put_lane_heartbeat(&old, "old life")?;

        let new = store.begin_new_life("a", Utc::now())?;

        assert_ne!(new, old);
        assert_eq!(store.incarnation()?, new);
        assert_eq!(
            store.position()?,
            (new.clone(), 3),
            "three unsent, numbered 1..=3"
        );
        let unsent = store.pending(10)?;
        let decoded = unsent
            .iter()
            .map(|entry| decode(&entry.body))
            .collect::<Result<Vec<_>, _>>()?;
        assert_eq!(
            decoded.iter().map(|e| e.seq).collect::<Vec<_>>(),
            unsent.iter().map(|e| e.seq).collect::<Vec<_>>(),
            "each body carries its row's number"
        );
        assert_eq!(
            unsent.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(
            decoded
                .iter()
                .all(|e| e.incarnation.as_deref() == Some(new.as_str()))
        );
        assert_eq!(decoded[0].payload, ping("in-flight"), "oldest first");
        assert_eq!(decoded[1].payload, ping("waiting"));
        assert_eq!(decoded[2].payload, shipped);
        assert_eq!(
            store.lane_heartbeat()?,
            None,
            "the old life's heartbeat is dropped"
        );
        store.put_lane_heartbeat(&old, "late, from the old life")?;
        assert_eq!(store.lane_heartbeat()?, None, "and a late one is not taken");
        let followed = store.orders_to_check(10, Utc::now())?;
        assert_eq!(
            followed.len(),
            2,
            "the open order and the one whose final stage went out under the old numbers"
        );
        assert!(
            followed.iter().all(|order| order.reported.is_none()),
            "reported again in the new life"
        );
        assert_eq!(
            store.enqueue("a", ping("next"), None, 250_000, Utc::now())?,
            vec![4],
            "numbering goes on in the new life"
        );
        Ok(())
    }

    #[test]
    fn a_new_life_keeps_an_unsent_messages_coalesce_key() -> Result<(), StoreError> {
        let (_dir, store) = temp_store()?;
        store.enqueue(
            "a",
            progress(None),
            Some("order:sklep:7"),
            250_000,
            Utc::now(),
        )?;
        store.begin_new_life("a", Utc::now())?;
        assert_eq!(
            store.enqueue(
                "a",
                progress(Some("T1")),
                Some("order:sklep:7"),
                250_000,
                Utc::now()
            )?,
            vec![1],
            "the newer progress replaces the renumbered one in place"
        );
        assert_eq!(store.outbox_depth()?, 1);
        Ok(())
    }

    fn progress(tracking: Option<&str>) -> Payload {
        Payload::OrderProgress(contract::OrderProgress {
            shop: "sklep".into(),
            order_id: "7".into(),
            stage: contract::OrderStage::Shipped,
            tracking_number: tracking.map(str::to_owned),
            carrier: None,
            documents: vec!["FS/1/2026".into()],
            invoices: Vec::new(),
            realisation: None,
            observed_at: Utc::now(),
        })
    }

    /// Orders that never reach a final stage (picked up in person, shipped
    /// without a number) cannot keep a new one from being followed: each
    /// round takes the least recently checked, and an order written longer
    /// ago than the following period is no longer followed. (Before, a
    /// round took the oldest by last change, the same ones every time.)
    #[test]
    fn orders_that_never_finish_do_not_starve_a_new_one() -> Result<(), StoreError> {
        let (_dir, store) = temp_store()?;
        let start = Utc::now() - chrono::Duration::days(90);
        for i in 0..5 {
            store.track_order("sklep", &format!("{i}"), i, &format!("RO/{i}/2026"), start)?;
        }
        let now = Utc::now();
        store.track_order("sklep", "new", 99, "RO/99/2026", now)?;
        let mut seen = std::collections::BTreeSet::new();
        for round in 0..2 {
            let at = now + chrono::Duration::seconds(round);
            seen.extend(
                store
                    .orders_to_check(3, at)?
                    .into_iter()
                    .map(|o| o.order_id),
            );
        }
        assert!(
            seen.contains("new"),
            "the new order is checked within two rounds: {seen:?}"
        );
        assert_eq!(seen.len(), 6, "every order is checked in turn: {seen:?}");

        assert_eq!(
            store.stop_following_before(now - chrono::Duration::days(60))?,
            5
        );
        let left = store.orders_to_check(10, now + chrono::Duration::seconds(5))?;
        assert_eq!(
            left.iter().map(|o| o.order_id.as_str()).collect::<Vec<_>>(),
            ["new"],
            "orders written 90 days ago are no longer followed"
        );
        Ok(())
    }

    /// The sender read a progress row and is sending it when the follower
    /// queues a newer one for the same order: the newer one must not go into
    /// the row the sender removes once SQS confirms the older body.
    #[test]
    fn a_message_handed_to_the_sender_is_never_replaced() -> Result<(), StoreError> {
        let (_dir, store) = temp_store()?;
        let key = Some("order_progress:sklep:7");
        let first = store.enqueue("a", progress(None), key, 250_000, Utc::now())?;
        let in_flight = store.pending(10)?;
        assert_eq!(in_flight.len(), 1);
        let second = store.enqueue("a", progress(Some("TRACK-1")), key, 250_000, Utc::now())?;
        assert_ne!(first, second, "a new number, not the handed row's");
        // SQS confirmed what the sender read: it forgets that row only.
        store.remove(in_flight[0].seq)?;
        let left = store.pending(10)?;
        assert_eq!(left.len(), 1, "the newer progress is still to send");
        assert!(left[0].body.contains("TRACK-1"), "{}", left[0].body);
        // Not yet read by a sender: the next one still coalesces into it.
        let (_dir2, store2) = temp_store()?;
        let a = store2.enqueue("a", progress(None), key, 250_000, Utc::now())?;
        let b = store2.enqueue("a", progress(Some("T")), key, 250_000, Utc::now())?;
        assert_eq!(a, b);
        Ok(())
    }

    /// Text gzip cannot shrink much.
    fn noise(bytes: usize) -> String {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..bytes)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect()
    }

    fn product(
        sku: &str,
        name_bytes: usize,
        description_bytes: usize,
    ) -> (String, contract::ProductRecord) {
        (
            sku.to_owned(),
            contract::ProductRecord {
                sku: sku.into(),
                erp_id: 1,
                name: noise(name_bytes),
                ean: None,
                extra_eans: Vec::new(),
                unit: "szt.".into(),
                vat: contract::VatRate::Percent(rust_decimal::Decimal::from(23)),
                group_path: Vec::new(),
                active: true,
                description: Some(noise(description_bytes)),
                modified_at: None,
            },
        )
    }

    /// A huge description (the cloud never uses it) is cut when staged; a
    /// record still too large for a message alone, or one that no longer
    /// reads, is set aside with its reason, and the rest of its kind and
    /// every later kind go on.
    #[test]
    fn an_unsendable_record_is_set_aside_and_the_rest_flows() -> Result<(), StoreError> {
        let (_dir, store) = temp_store()?;
        let huge_description = product("DESC", 10, 2_000_000);
        let huge_name = product("NAME", 400_000, 10);
        let huge_name_key = huge_name.0.clone();
        store.stage(
            RecordKind::Products,
            &[huge_description, huge_name, product("OK", 10, 10)],
            false,
            Utc::now(),
        )?;
        store.stage(
            RecordKind::Stock,
            &[stock("A", 5), ("BROKEN|MAG".to_owned(), stock("B", 1).1)],
            false,
            Utc::now(),
        )?;
        // A stored row that no longer reads as a stock record.
        store.conn()?.execute(
            "UPDATE pending SET record = '{\"sku\": 1}' WHERE key = 'BROKEN|MAG'",
            [],
        )?;

        let products = store.form_batch("a", 1000, 250_000, Utc::now())?;
        assert_eq!(products.len(), 1);
        let envelope = decode(&store.pending(10)?[0].body)?;
        let Payload::Products(sent) = envelope.payload else {
            panic!("a product batch");
        };
        let skus: Vec<&str> = sent.iter().map(|p| p.sku.as_str()).collect();
        assert_eq!(skus, ["DESC", "OK"], "the too-large one is set aside");
        let description = sent[0].description.as_deref().unwrap_or_default();
        assert_eq!(description.len(), MAX_DESCRIPTION_BYTES, "cut, not dropped");
        store.remove(products[0])?;

        let stock_batch = store.form_batch("a", 1000, 250_000, Utc::now())?;
        assert_eq!(stock_batch.len(), 1, "stock still flows");
        let envelope = decode(&store.pending(10)?[0].body)?;
        assert_eq!(
            envelope.payload.len(),
            1,
            "only A: the unreadable row is set aside"
        );

        let rejected = store.rejected()?;
        assert_eq!(rejected.count, 2, "{rejected:?}");
        // Each set-aside row keeps its own record, for a person to read.
        let kept: String = store.conn()?.query_row(
            "SELECT record FROM rejected WHERE key = ?1",
            [huge_name_key.as_str()],
            |r| r.get(0),
        )?;
        assert!(
            kept.contains("\"NAME\""),
            "NAME's own record: {}",
            &kept[..80.min(kept.len())]
        );
        let latest = rejected.latest.unwrap_or_default();
        assert!(
            latest.contains("BROKEN|MAG") && latest.contains("cannot be read"),
            "{latest}"
        );

        // NAME is shortened in the ERP: sent, and no longer listed.
        store.remove(stock_batch[0])?;
        store.stage(
            RecordKind::Products,
            &[product("NAME", 10, 10)],
            false,
            Utc::now(),
        )?;
        assert_eq!(store.form_batch("a", 1000, 250_000, Utc::now())?.len(), 1);
        assert_eq!(
            store.rejected()?.count,
            1,
            "only the unreadable one is left"
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
