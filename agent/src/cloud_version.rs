//! The contract version the cloud reads, as far as this agent knows.
//!
//! Learned from the `max_version` of every command received (commands from
//! functions built before the field count as their own version) and kept in
//! memory only: after a restart the agent writes at its minimum again until
//! the next command, which the functions one version older or newer read
//! (see `contract::envelope`). Everything the agent sends is encoded at
//! [`write_version`] when it enters the outbox.

use std::sync::atomic::{AtomicU16, Ordering};

use contract::{Envelope, THIS_BUILD};
use tracing::{error, info};

/// 0: not known yet.
static CLOUD_MAX: AtomicU16 = AtomicU16::new(0);

/// The highest version the cloud reads, once a command said so.
pub fn cloud_max() -> Option<u16> {
    match CLOUD_MAX.load(Ordering::Relaxed) {
        0 => None,
        v => Some(v),
    }
}

/// Remembers what a command says about the cloud's versions; logs a change,
/// and an error when the cloud is older than this agent can write.
pub fn learn(command: &Envelope) {
    let cloud = command.sender_max_version();
    let before = CLOUD_MAX.swap(cloud, Ordering::Relaxed);
    if before == cloud {
        return;
    }
    match THIS_BUILD.write_version(Some(cloud)) {
        Ok(version) => info!(
            cloud_max_version = cloud,
            writing = version,
            "the cloud reads contract versions up to {cloud}; writing version {version}"
        ),
        Err(err) => error!(
            error = %err,
            "the functions are too old for this agent: upgrade them; until then messages go out at version {} and the cloud parks them",
            THIS_BUILD.min
        ),
    }
}

/// For a message that exists only from contract version `version` on, sent
/// by a process that has received no command (a command-line tool): takes
/// the cloud to read it. An older cloud parks the message as of an
/// unsupported version, which `/status` shows.
pub fn assume_at_least(version: u16) {
    CLOUD_MAX.fetch_max(version.min(THIS_BUILD.max), Ordering::Relaxed);
}

/// The version to encode messages to the cloud at: the lower of both sides'
/// newest, or this build's minimum while the cloud's is unknown (or too old
/// to be served, which [`learn`] has logged).
pub fn write_version() -> u16 {
    THIS_BUILD
        .write_version(cloud_max())
        .unwrap_or(THIS_BUILD.min)
}
