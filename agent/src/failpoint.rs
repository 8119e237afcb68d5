//! Crash points for the exactly-once tests: with `AGENT_FAILPOINT=<name>`
//! in its environment the agent aborts (as `kill -9` would) the first time
//! it reaches that point. Never set outside tests; unset, it costs a lookup.

/// Aborts the process here when `AGENT_FAILPOINT` names this point.
pub fn hit(name: &str) {
    if std::env::var("AGENT_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
