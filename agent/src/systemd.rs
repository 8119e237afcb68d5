//! `agent install` / `agent uninstall` on Linux: the systemd unit the
//! project ships, written, enabled and started; or stopped, disabled and
//! removed.
//!
//! The unit runs `agent run --config FILE` as an unprivileged system user,
//! restarts it on failure, reads secrets (the SQL password, the AWS access
//! key) from an `EnvironmentFile` that only root can read (systemd reads it
//! before dropping privileges, so the service user never needs to), and
//! confines the process: read-only system, no home directories, writable
//! only where its state lives, no new privileges, IPv4/IPv6/Unix sockets
//! only.
//!
//! [`unit_text`] is pure so the unit can be tested on any machine; with
//! `--root DIR` the install writes under DIR and enables the unit there
//! with `systemctl --root`, which works without a running systemd.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// What the unit is generated from.
#[derive(Debug, Clone)]
pub struct UnitSpec {
    pub name: String,
    pub exe: PathBuf,
    pub config: PathBuf,
    pub env_file: PathBuf,
    pub user: String,
    /// Folders the service may write (its state).
    pub writable: Vec<PathBuf>,
}

/// The unit file's text.
pub fn unit_text(spec: &UnitSpec) -> String {
    let writable = spec
        .writable
        .iter()
        .map(|p| quote(p))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "# Written by `agent install`; `agent uninstall` removes it.\n\
[Unit]\n\
Description=optima-sync agent: Comarch ERP Optima <-> online shops, outbound only\n\
# Operator guide: docs/INSTALL.md of the optima-sync sources.\n\
Wants=network-online.target\n\
After=network-online.target\n\
\n\
[Service]\n\
Type=simple\n\
ExecStart={exe} run --config {config}\n\
User={user}\n\
# Secrets (OPTIMA_SYNC_SQL__PASSWORD, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY):\n\
# root-only (0600); systemd reads it before dropping privileges.\n\
EnvironmentFile={env_file}\n\
WorkingDirectory={workdir}\n\
Restart=on-failure\n\
RestartSec=5\n\
TimeoutStopSec=30\n\
UMask=0077\n\
NoNewPrivileges=yes\n\
CapabilityBoundingSet=\n\
ProtectSystem=strict\n\
ReadWritePaths={writable}\n\
ProtectHome=yes\n\
PrivateTmp=yes\n\
PrivateDevices=yes\n\
ProtectKernelTunables=yes\n\
ProtectKernelModules=yes\n\
ProtectKernelLogs=yes\n\
ProtectControlGroups=yes\n\
ProtectClock=yes\n\
ProtectHostname=yes\n\
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n\
RestrictNamespaces=yes\n\
RestrictRealtime=yes\n\
RestrictSUIDSGID=yes\n\
LockPersonality=yes\n\
MemoryDenyWriteExecute=yes\n\
SystemCallArchitectures=native\n\
\n\
[Install]\n\
WantedBy=multi-user.target\n",
        exe = quote(&spec.exe),
        config = quote(&spec.config),
        user = spec.user,
        env_file = spec.env_file.display(),
        workdir = quote(
            spec.writable
                .first()
                .map_or(Path::new("/"), PathBuf::as_path)
        ),
    )
}

/// systemd's quoting for a path in a command line or a path list.
fn quote(path: &Path) -> String {
    let text = path.display().to_string();
    if text.contains([' ', '"', '\\']) {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text
    }
}

/// Where the unit goes, under `root` when given.
pub fn unit_path(root: Option<&Path>, name: &str) -> PathBuf {
    let dir = Path::new("etc/systemd/system");
    root.unwrap_or(Path::new("/"))
        .join(dir)
        .join(format!("{name}.service"))
}

/// Writes and enables the unit; starts it unless `root` is given.
pub fn install(spec: &UnitSpec, root: Option<&Path>) -> anyhow::Result<PathBuf> {
    if root.is_none() {
        ensure_user(&spec.user)?;
    }
    ensure_env_file(&spec.env_file)?;
    for dir in &spec.writable {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if root.is_none() {
            // -R: a state file `agent doctor` made as root becomes the service's.
            run(Command::new("chown")
                .arg("-R")
                .arg(format!("{}:", spec.user))
                .arg(dir))?;
        }
    }
    let path = unit_path(root, &spec.name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, unit_text(spec))
        .with_context(|| format!("writing {}", path.display()))?;
    set_mode(&path, 0o644)?;
    match root {
        Some(root) => {
            run(Command::new("systemctl")
                .arg(format!("--root={}", root.display()))
                .args(["enable", &spec.name]))?;
        }
        None => {
            run(Command::new("systemctl").arg("daemon-reload"))?;
            run(Command::new("systemctl").args(["enable", "--now", &spec.name]))?;
        }
    }
    Ok(path)
}

/// Stops, disables and removes the unit. Configuration, secrets, state and
/// the user stay (they are the operator's).
pub fn uninstall(name: &str, root: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = unit_path(root, name);
    if !path.is_file() {
        bail!("{} does not exist: nothing to uninstall", path.display());
    }
    match root {
        Some(root) => run(Command::new("systemctl")
            .arg(format!("--root={}", root.display()))
            .args(["disable", name]))?,
        None => run(Command::new("systemctl").args(["disable", "--now", name]))?,
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    if root.is_none() {
        run(Command::new("systemctl").arg("daemon-reload"))?;
    }
    Ok(path)
}

/// Creates the system user when it does not exist.
fn ensure_user(user: &str) -> anyhow::Result<()> {
    let exists = Command::new("id")
        .arg("-u")
        .arg(user)
        .output()
        .is_ok_and(|o| o.status.success());
    if exists {
        return Ok(());
    }
    run(Command::new("useradd").args([
        "--system",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        user,
    ]))
    .with_context(|| format!("creating the system user `{user}`"))
}

/// An environment file for the secrets: created empty (0600) when missing;
/// refused when others can read it.
fn ensure_env_file(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(
            path,
            "# Secrets for the optima-sync agent, read by systemd (root only, mode 0600).\n\
             # OPTIMA_SYNC_SQL__PASSWORD=\n# AWS_ACCESS_KEY_ID=\n# AWS_SECRET_ACCESS_KEY=\n",
        )
        .with_context(|| format!("writing {}", path.display()))?;
        set_mode(path, 0o600)?;
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} holds secrets but others may read it (mode {:o}): run `chmod 600 {}` first",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .with_context(|| format!("running {shown}"))?;
    if !output.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> UnitSpec {
        UnitSpec {
            name: "optima-sync-agent".into(),
            exe: "/usr/local/bin/agent".into(),
            config: "/etc/optima-sync/agent.toml".into(),
            env_file: "/etc/optima-sync/agent.env".into(),
            user: "optima-sync".into(),
            writable: vec!["/var/lib/optima-sync".into()],
        }
    }

    #[test]
    fn the_unit_runs_the_agent_confined_with_secrets_from_a_file() {
        let unit = unit_text(&spec());
        for line in [
            "ExecStart=/usr/local/bin/agent run --config /etc/optima-sync/agent.toml",
            "User=optima-sync",
            "EnvironmentFile=/etc/optima-sync/agent.env",
            "Restart=on-failure",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=/var/lib/optima-sync",
            "WorkingDirectory=/var/lib/optima-sync",
            "WantedBy=multi-user.target",
        ] {
            assert!(unit.lines().any(|l| l == line), "missing `{line}`:\n{unit}");
        }
    }

    #[test]
    fn paths_with_spaces_are_quoted() {
        let mut spec = spec();
        spec.config = "/etc/optima sync/agent.toml".into();
        assert!(unit_text(&spec).contains("--config \"/etc/optima sync/agent.toml\""));
    }
}
