//! Logging set-up shared by every binary of the crate.

use tracing_subscriber::EnvFilter;

/// JSON lines when `LOG_FORMAT=json` (CloudWatch), text otherwise.
/// `RUST_LOG` filters as usual; the default is `info`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json");
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = if json {
        builder.json().without_time().try_init()
    } else {
        builder.try_init()
    };
}
