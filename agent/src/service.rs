//! `agent install` / `agent uninstall`: one command on both systems. On
//! Linux they write and enable, or disable and remove, the systemd unit
//! ([`crate::systemd`]); on Windows they register, or remove, the Windows
//! service (`crate::winservice`).

use std::path::{Path, PathBuf};

use anyhow::Context;
#[cfg(not(windows))]
use anyhow::bail;

use crate::config::AgentConfig;

/// The service's default name (systemd unit / Windows service).
pub const DEFAULT_NAME: &str = "optima-sync-agent";

#[derive(Debug, Clone, clap::Args)]
pub struct InstallArgs {
    /// The configuration the service runs with (validated now).
    #[arg(long, short)]
    pub config: PathBuf,
    /// The service's name.
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
    /// Linux: the system user the service runs as (created when missing).
    #[cfg(unix)]
    #[arg(long, default_value = "optima-sync")]
    pub user: String,
    /// Linux: the secrets file systemd reads (root only, 0600; created empty when missing).
    #[cfg(unix)]
    #[arg(long, default_value = "/etc/optima-sync/agent.env")]
    pub env_file: PathBuf,
    /// Linux: install into this root instead of the running system (enables
    /// with `systemctl --root`; no user, no start). For images and tests.
    #[cfg(unix)]
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Linux: print the unit file and change nothing.
    #[cfg(unix)]
    #[arg(long)]
    pub print_unit: bool,
    /// Windows: the account the service runs as (default LocalService; a
    /// dedicated user `.\optima-sync` needs --password-env).
    #[cfg(windows)]
    #[arg(long, default_value = r"NT AUTHORITY\LocalService")]
    pub account: String,
    /// Windows: the environment variable holding that account's password
    /// (never the command line).
    #[cfg(windows)]
    #[arg(long)]
    pub password_env: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct UninstallArgs {
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
    /// Linux: the root the unit was installed into with `install --root`.
    #[cfg(unix)]
    #[arg(long)]
    pub root: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct NameArg {
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
}

/// The configuration file as an absolute path, validated.
fn validated_config(path: &Path) -> anyhow::Result<(PathBuf, AgentConfig)> {
    let absolute =
        std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    let config = AgentConfig::load(&absolute).context("the service would not start")?;
    Ok((absolute, config))
}

/// The folder of the agent's state, absolute.
fn state_dir(config: &AgentConfig) -> anyhow::Result<PathBuf> {
    let store = std::path::absolute(&config.store.path)
        .with_context(|| format!("resolving {}", config.store.path.display()))?;
    Ok(store
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/")))
}

#[cfg(unix)]
pub fn install(args: &InstallArgs) -> anyhow::Result<String> {
    use crate::systemd::{UnitSpec, unit_text};
    let (config_path, config) = validated_config(&args.config)?;
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("finding this program's path")?;
    if exe.starts_with("/root") || exe.starts_with("/home") || exe.starts_with("/tmp") {
        bail!(
            "{} is under /root, /home or /tmp, which the service cannot see (ProtectHome, PrivateTmp): copy it to /usr/local/bin/ and run `install` from there",
            exe.display()
        );
    }
    let spec = UnitSpec {
        name: args.name.clone(),
        exe,
        config: config_path,
        env_file: std::path::absolute(&args.env_file)?,
        user: args.user.clone(),
        writable: vec![state_dir(&config)?],
    };
    if args.print_unit {
        return Ok(unit_text(&spec));
    }
    if args.root.is_none() && !systemd_is_running() {
        bail!(
            "systemd is not running here (PID 1 is `{}`): use `agent install --print-unit` and install the unit by hand, or `--root DIR` for an image",
            pid1_name()
        );
    }
    let path = crate::systemd::install(&spec, args.root.as_deref())?;
    Ok(match &args.root {
        Some(root) => format!(
            "wrote {} and enabled it under {} (it starts when that system boots)",
            path.display(),
            root.display()
        ),
        None => format!(
            "wrote {}, enabled and started it; follow it with `journalctl -u {} -f`; put the secrets in {}",
            path.display(),
            spec.name,
            spec.env_file.display()
        ),
    })
}

#[cfg(unix)]
pub fn uninstall(args: &UninstallArgs) -> anyhow::Result<String> {
    if args.root.is_none() && !systemd_is_running() {
        bail!("systemd is not running here (PID 1 is `{}`)", pid1_name());
    }
    let path = crate::systemd::uninstall(&args.name, args.root.as_deref())?;
    Ok(format!(
        "stopped, disabled and removed {}; the configuration, its secrets and the agent's state were left in place",
        path.display()
    ))
}

/// What PID 1 is called (`systemd` where systemd runs the machine).
#[cfg(unix)]
pub fn pid1_name() -> String {
    std::fs::read_to_string("/proc/1/comm")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// systemd's own test: it created /run/systemd/system at boot.
#[cfg(unix)]
pub fn systemd_is_running() -> bool {
    Path::new("/run/systemd/system").is_dir() && pid1_name() == "systemd"
}

#[cfg(windows)]
pub fn install(args: &InstallArgs) -> anyhow::Result<String> {
    let (config_path, config) = validated_config(&args.config)?;
    let password = match &args.password_env {
        Some(var) => {
            Some(std::env::var(var).with_context(|| format!("--password-env {var}: not set"))?)
        }
        None => None,
    };
    crate::winservice::install(
        &args.name,
        &config_path,
        &state_dir(&config)?,
        &args.account,
        password,
    )
}

#[cfg(windows)]
pub fn uninstall(args: &UninstallArgs) -> anyhow::Result<String> {
    crate::winservice::uninstall(&args.name)
}

#[cfg(not(any(unix, windows)))]
pub fn install(_: &InstallArgs) -> anyhow::Result<String> {
    bail!("services are supported on Linux (systemd) and Windows only")
}

#[cfg(not(any(unix, windows)))]
pub fn uninstall(_: &UninstallArgs) -> anyhow::Result<String> {
    bail!("services are supported on Linux (systemd) and Windows only")
}
