//! `agent install` / `agent uninstall`: one command on both systems. On
//! Linux they write and enable, or disable and remove, the systemd unit
//! ([`crate::systemd`]); on Windows they register, or remove, the Windows
//! service (`crate::winservice`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// The Windows log folder: `logs\` beside the configuration file.
pub fn windows_log_dir(config: &Path) -> PathBuf {
    config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
        .join("logs")
}

/// The event log's registry key of the service's event source.
pub fn windows_event_source_key(name: &str) -> String {
    format!(r"HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\{name}")
}

/// The message file the event source points at: .NET's generic one, so
/// the event viewer shows the agent's text as it is.
const WINDOWS_EVENT_MESSAGE_FILE: &str =
    r"%SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\EventLogMessages.dll";

/// What `agent install` registers with Windows' Service Control Manager,
/// and the commands it runs beside. Built apart from the Windows calls
/// (`crate::winservice::install` applies it as it is), so it is checked
/// field by field on any system.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowsServiceDefinition {
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub executable: PathBuf,
    /// What the Service Control Manager runs the executable with.
    pub arguments: Vec<OsString>,
    /// Started at boot (`SERVICE_AUTO_START`), not on demand.
    pub automatic_start: bool,
    pub account: String,
    /// After each of the first failures, a restart this long after it.
    pub restart_after: Vec<Duration>,
    /// The count of failures starts again after this long without one.
    pub failure_count_reset: Duration,
    /// Folders the service's account may write (state, logs), nothing else.
    pub writable: Vec<PathBuf>,
    /// Commands run after the service is registered, before it starts:
    /// the folders' rights (`icacls`) and the event source (`reg`).
    pub commands: Vec<Vec<OsString>>,
}

/// The Windows service for `config` (absolute), run as `account`.
pub fn windows_service_definition(
    name: &str,
    executable: &Path,
    config: &Path,
    state_dir: &Path,
    account: &str,
) -> WindowsServiceDefinition {
    let writable = vec![state_dir.to_path_buf(), windows_log_dir(config)];
    let mut commands: Vec<Vec<OsString>> = writable
        .iter()
        .map(|dir| {
            vec![
                "icacls".into(),
                dir.clone().into_os_string(),
                "/grant".into(),
                format!("{account}:(OI)(CI)M").into(),
                "/T".into(),
                "/Q".into(),
            ]
        })
        .collect();
    let key = windows_event_source_key(name);
    for (value, kind, data) in [
        (
            "EventMessageFile",
            "REG_EXPAND_SZ",
            WINDOWS_EVENT_MESSAGE_FILE,
        ),
        ("TypesSupported", "REG_DWORD", "7"),
    ] {
        commands.push(
            [
                "reg", "add", &key, "/v", value, "/t", kind, "/d", data, "/f",
            ]
            .map(OsString::from)
            .to_vec(),
        );
    }
    WindowsServiceDefinition {
        name: name.to_owned(),
        display_name: "optima-sync agent".into(),
        description: "Keeps Comarch ERP Optima and the online shops in sync; outbound HTTPS only."
            .into(),
        executable: executable.to_path_buf(),
        arguments: vec![
            "service".into(),
            "--config".into(),
            config.as_os_str().to_owned(),
            "--name".into(),
            name.into(),
        ],
        automatic_start: true,
        account: account.to_owned(),
        restart_after: vec![Duration::from_secs(10); 3],
        failure_count_reset: Duration::from_secs(86_400),
        writable,
        commands,
    }
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
    let exe = std::env::current_exe().context("finding this program's path")?;
    let definition = windows_service_definition(
        &args.name,
        &exe,
        &config_path,
        &state_dir(&config)?,
        &args.account,
    );
    crate::winservice::install(&definition, password)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_windows_service_runs_the_agent_as_a_service_with_its_config_and_restarts_it() {
        let d = windows_service_definition(
            "optima-sync-agent",
            Path::new(r"C:\Program Files\optima-sync\agent.exe"),
            // `/` so the folder of the file is found on the system running
            // the test too; Windows takes either separator.
            Path::new("C:/ProgramData/optima-sync/agent.toml"),
            Path::new(r"C:\ProgramData\optima-sync\state"),
            r"NT AUTHORITY\LocalService",
        );
        assert_eq!(d.name, "optima-sync-agent");
        assert_eq!(d.display_name, "optima-sync agent");
        assert_eq!(
            d.executable,
            Path::new(r"C:\Program Files\optima-sync\agent.exe")
        );
        let arguments: Vec<&str> = d.arguments.iter().filter_map(|a| a.to_str()).collect();
        assert_eq!(
            arguments,
            [
                "service",
                "--config",
                "C:/ProgramData/optima-sync/agent.toml",
                "--name",
                "optima-sync-agent"
            ]
        );
        assert!(d.automatic_start);
        assert_eq!(d.account, r"NT AUTHORITY\LocalService");
        assert_eq!(d.restart_after, vec![Duration::from_secs(10); 3]);
        assert_eq!(d.failure_count_reset, Duration::from_secs(24 * 3600));
        let commands: Vec<String> = d
            .commands
            .iter()
            .map(|c| {
                c.iter()
                    .filter_map(|a| a.to_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(
            commands[..2],
            [
                r"icacls C:\ProgramData\optima-sync\state /grant NT AUTHORITY\LocalService:(OI)(CI)M /T /Q",
                r"icacls C:/ProgramData/optima-sync/logs /grant NT AUTHORITY\LocalService:(OI)(CI)M /T /Q",
            ]
        );
        assert_eq!(
            commands[2..],
            [
                r"reg add HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\optima-sync-agent /v EventMessageFile /t REG_EXPAND_SZ /d %SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\EventLogMessages.dll /f",
                r"reg add HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\optima-sync-agent /v TypesSupported /t REG_DWORD /d 7 /f",
            ]
        );
        assert_eq!(d.writable.len(), 2);
    }
}
