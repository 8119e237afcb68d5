//! Faults a test switches on in a running stand-in, as a real SQL Server
//! shows them: deadlock victims (error 1205, the transaction rolled back),
//! slow statements, and a server clock set wrong (`GETDATE()` stepped).
//!
//! Switched with a batch from any client, so a test needs no second port:
//! `-- standin:faults {"deadlock_next": 2, "latency_ms": 300, "clock_offset_seconds": -3600}`
//! (fields left out keep their value). Every fault injected is logged
//! (`standin fault injected: …`) so a test can prove it landed.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

use serde::Deserialize;

/// The prefix of a control batch.
pub const CONTROL_PREFIX: &str = "-- standin:faults";

/// The process-wide fault switches (one server per process).
pub struct Faults {
    deadlock_next: AtomicU32,
    deadlock_in_transaction_only: AtomicBool,
    latency_ms: AtomicU64,
    clock_offset_seconds: AtomicI64,
}

pub static FAULTS: Faults = Faults {
    deadlock_next: AtomicU32::new(0),
    deadlock_in_transaction_only: AtomicBool::new(false),
    latency_ms: AtomicU64::new(0),
    clock_offset_seconds: AtomicI64::new(0),
};

/// A control batch's JSON.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSwitches {
    /// The next N statements (batches or RPC calls) fail with 1205.
    pub deadlock_next: Option<u32>,
    /// Only statements inside a transaction are chosen as victims.
    pub deadlock_in_transaction_only: Option<bool>,
    /// Added before every statement, in ms.
    pub latency_ms: Option<u64>,
    /// Added to `GETDATE()`, `SYSDATETIME()` and their UTC forms.
    pub clock_offset_seconds: Option<i64>,
}

impl Faults {
    /// Applies a control batch's text (after [`CONTROL_PREFIX`]).
    pub fn apply(&self, json: &str) -> Result<(), serde_json::Error> {
        let switches: FaultSwitches = serde_json::from_str(json.trim())?;
        if let Some(n) = switches.deadlock_next {
            self.deadlock_next.store(n, Ordering::SeqCst);
        }
        if let Some(only) = switches.deadlock_in_transaction_only {
            self.deadlock_in_transaction_only
                .store(only, Ordering::SeqCst);
        }
        if let Some(ms) = switches.latency_ms {
            self.latency_ms.store(ms, Ordering::SeqCst);
        }
        if let Some(offset) = switches.clock_offset_seconds {
            let before = self.clock_offset_seconds.swap(offset, Ordering::SeqCst);
            if before != offset {
                tracing::info!(
                    offset,
                    before,
                    "standin fault injected: clock stepped to offset {offset} s"
                );
            }
        }
        Ok(())
    }

    /// Whether this statement is chosen as a deadlock victim (counts it down).
    pub fn take_deadlock(&self, in_transaction: bool) -> bool {
        if self.deadlock_in_transaction_only.load(Ordering::SeqCst) && !in_transaction {
            return false;
        }
        self.deadlock_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    pub fn latency(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.latency_ms.load(Ordering::SeqCst))
    }

    pub fn clock_offset(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.clock_offset_seconds.load(Ordering::SeqCst))
    }
}
