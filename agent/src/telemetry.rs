//! Logging: human-readable text on a terminal or service log, JSON with `LOG_FORMAT=json`.

use tracing_subscriber::EnvFilter;

/// tiberius warns about plaintext on every connection; the agent says it once
/// at start instead (see `sql::warn_if_plaintext`).
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tiberius=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
