//! What the engine did for the statements it served, per database file, so
//! tests and benchmarks can tell an index seek from a table scan: SQLite's
//! own per-statement counters (`sqlite3_stmt_status`), summed over every
//! session on that database. `full_scan_steps` counts rows stepped
//! through by scans of a whole table or index (0 for a statement that only
//! seeks); `vm_steps` is the engine's work in virtual-machine steps, which
//! grows with every row read, seek or scan.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Statement, StatementStatus};

static BY_DATABASE: Mutex<Option<HashMap<String, Work>>> = Mutex::new(None);

/// The counters at one moment; subtract two to get the work in between.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Work {
    pub statements: u64,
    pub full_scan_steps: u64,
    pub vm_steps: u64,
}

impl std::ops::Sub for Work {
    type Output = Work;
    fn sub(self, earlier: Work) -> Work {
        Work {
            statements: self.statements.saturating_sub(earlier.statements),
            full_scan_steps: self.full_scan_steps.saturating_sub(earlier.full_scan_steps),
            vm_steps: self.vm_steps.saturating_sub(earlier.vm_steps),
        }
    }
}

/// Adds a finished statement's counters to its database's (and resets
/// them: statements are cached and run again).
pub fn record(database: &str, statement: &Statement<'_>) {
    let take = |status| u64::try_from(statement.reset_status(status)).unwrap_or(0);
    let (full_scan_steps, vm_steps) = (
        take(StatementStatus::FullscanStep),
        take(StatementStatus::VmStep),
    );
    if let Ok(mut map) = BY_DATABASE.lock() {
        let work = map
            .get_or_insert_with(HashMap::new)
            .entry(database.to_owned())
            .or_default();
        work.statements += 1;
        work.full_scan_steps += full_scan_steps;
        work.vm_steps += vm_steps;
    }
}

/// The counters of the database at `path` now.
pub fn now(path: &Path) -> Work {
    let Ok(map) = BY_DATABASE.lock() else {
        return Work::default();
    };
    let wanted = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    map.as_ref()
        .and_then(|m| {
            m.iter()
                .find(|(db, _)| std::fs::canonicalize(db).unwrap_or_else(|_| db.into()) == wanted)
                .map(|(_, w)| *w)
        })
        .unwrap_or_default()
}
