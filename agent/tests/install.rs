//! `agent install` / `agent uninstall` with systemd: the unit passes
//! `systemd-analyze verify`, installs into and uninstalls from a root with
//! `systemctl --root` (no running systemd needed), and, where systemd runs
//! the machine as root, really starts and stops the service.
//!
//! A check that cannot run here says why; under `CI=true` that is a
//! failure, except for the running-systemd test: CI runs in a container
//! whose PID 1 is not systemd (docs/TESTING.md).

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const AGENT: &str = env!("CARGO_BIN_EXE_agent");

fn agent(args: &[&str]) -> Output {
    agent_at(Path::new(AGENT), args)
}

fn agent_at(exe: &Path, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .output()
        .expect("the agent binary runs")
}

/// The agent binary where a service can run it. `install` refuses a binary
/// under /root, /home or /tmp (ProtectHome and PrivateTmp hide them from the
/// service), and a checkout or `CARGO_TARGET_DIR` may well be there: then a
/// copy goes into a temporary folder under /var/lib, removed with the
/// returned guard. `None` when that folder cannot be made (not root).
fn installable_agent() -> Option<(PathBuf, Option<tempfile::TempDir>)> {
    let exe = Path::new(AGENT)
        .canonicalize()
        .expect("the agent binary exists");
    if !["/root", "/home", "/tmp"]
        .iter()
        .any(|p| exe.starts_with(p))
    {
        return Some((exe, None));
    }
    let dir = tempfile::Builder::new()
        .prefix("optima-sync-install-test-")
        .tempdir_in("/var/lib")
        .ok()?;
    let copy = dir.path().join("agent");
    std::fs::copy(&exe, &copy).expect("the agent binary copied");
    Some((copy, Some(dir)))
}

/// Says why a check cannot run; under `CI=true` (where .ci/run provides
/// root and systemd's tools) that is a failure.
fn cannot_run(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("cannot run under CI=true: {reason}");
    }
    eprintln!("skipped: {reason}");
}

const NOT_INSTALLABLE: &str =
    "the agent binary is under /root, /home or /tmp and /var/lib is not writable (not root)";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        "agent_id = \"biuro-1\"\n\n[aws]\nevents_queue_url = \"http://127.0.0.1:1/q/erp-events.fifo\"\n\n[sql]\nconnection_string = \"server=tcp:127.0.0.1,1;database=CDN_Firma;user=sync\"\n\n[store]\npath = \"state/agent-state.sqlite\"\n",
    )
    .expect("config written");
    std::fs::create_dir_all(dir.join("state")).expect("state folder");
    path
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let Some((exe, _copy)) = installable_agent() else {
        return cannot_run(NOT_INSTALLABLE);
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let out = agent_at(
        &exe,
        &[
            "install",
            "--config",
            config.to_str().expect("utf-8 path"),
            "--print-unit",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let unit = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        unit.contains(&format!(
            "ExecStart={} run --config {}",
            exe.display(),
            config.display()
        )),
        "{unit}"
    );
    assert!(
        unit.contains(&format!(
            "ReadWritePaths={}",
            dir.path().join("state").display()
        )),
        "the state folder, resolved beside the configuration, is writable:\n{unit}"
    );
    let Some(analyze) = which("systemd-analyze") else {
        return cannot_run("`systemd-analyze` is not installed (Debian package systemd)");
    };
    let file = dir.path().join("optima-sync-agent.service");
    std::fs::write(&file, &unit).expect("unit written");
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&file)
        .output()
        .expect("systemd-analyze runs");
    // verify exits 0 on unknown keys and only warns: any output is a finding.
    let said = text(&out);
    let findings: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("optima-sync-agent.service"))
        .collect();
    assert!(
        out.status.success() && findings.is_empty(),
        "systemd-analyze verify:\n{said}"
    );
}

#[test]
fn install_and_uninstall_into_a_root_enable_and_remove_the_unit() {
    if which("systemctl").is_none() {
        return cannot_run("no systemctl (Debian package systemd)");
    }
    let Some((exe, _copy)) = installable_agent() else {
        return cannot_run(NOT_INSTALLABLE);
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let root = dir.path().join("root");
    let env_file = dir.path().join("secrets/agent.env");
    let out = agent_at(
        &exe,
        &[
            "install",
            "--config",
            config.to_str().expect("utf-8"),
            "--root",
            root.to_str().expect("utf-8"),
            "--env-file",
            env_file.to_str().expect("utf-8"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let unit = root.join("etc/systemd/system/optima-sync-agent.service");
    let wants = root.join("etc/systemd/system/multi-user.target.wants/optima-sync-agent.service");
    assert!(unit.is_file(), "{}", text(&out));
    assert!(wants.symlink_metadata().is_ok(), "enabled: {}", text(&out));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&env_file)
        .expect("the secrets file was created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the secrets file is root-only");

    // A secrets file others can read is refused.
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = agent_at(
        &exe,
        &[
            "install",
            "--config",
            config.to_str().expect("utf-8"),
            "--root",
            root.to_str().expect("utf-8"),
            "--env-file",
            env_file.to_str().expect("utf-8"),
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("chmod 600"), "{}", text(&out));

    let out = agent_at(
        &exe,
        &["uninstall", "--root", root.to_str().expect("utf-8")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!unit.exists() && wants.symlink_metadata().is_err());
    assert!(config.is_file(), "the configuration stays");
}

#[test]
fn install_refuses_an_invalid_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "agent_id = \"bad id\"\n").expect("written");
    let out = agent(&[
        "install",
        "--config",
        config.to_str().expect("utf-8"),
        "--print-unit",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("would not start"), "{}", text(&out));
}

/// The real thing, where systemd runs the machine and we are root. Not in
/// CI's container (PID 1 is not systemd there): the only check that skips
/// under `CI=true`, saying so.
#[test]
fn install_enables_and_starts_and_uninstall_stops_and_removes_the_service_under_a_running_systemd()
{
    let pid1 = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if pid1.trim() != "systemd" || !Path::new("/run/systemd/system").is_dir() {
        eprintln!(
            "skipped: PID 1 is `{}`, not systemd (the unit is still verified and installed into a root above)",
            pid1.trim()
        );
        return;
    }
    let uid = Command::new("id").arg("-u").output().map(|o| o.stdout);
    if !uid.is_ok_and(|id| id == b"0\n") {
        return cannot_run("installing a system service needs root");
    }
    let Some((exe, _copy)) = installable_agent() else {
        return cannot_run(NOT_INSTALLABLE);
    };
    let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let config = write_config(dir.path());
    let name = format!("optima-sync-agent-test-{}", std::process::id());
    let env_file = dir.path().join("agent.env");
    let out = agent_at(
        &exe,
        &[
            "install",
            "--config",
            config.to_str().expect("utf-8"),
            "--name",
            &name,
            "--user",
            "nobody",
            "--env-file",
            env_file.to_str().expect("utf-8"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let enabled = Command::new("systemctl")
        .args(["is-enabled", &name])
        .output()
        .expect("systemctl");
    assert!(enabled.status.success(), "{}", text(&enabled));
    // Started: the agent keeps running with a dead SQL Server and queue
    // (it says what is wrong and backs off), so the unit stays active.
    let is_active = || {
        Command::new("systemctl")
            .args(["is-active", &name])
            .output()
            .expect("systemctl")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut state = text(&is_active());
    while state.trim() != "active" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        state = text(&is_active());
    }
    assert_eq!(state.trim(), "active", "the service runs after install");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(text(&is_active()).trim(), "active", "and keeps running");
    let out = agent_at(&exe, &["uninstall", "--name", &name]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!is_active().status.success(), "stopped by uninstall");
    let gone = Command::new("systemctl")
        .args(["cat", &name])
        .output()
        .expect("systemctl");
    assert!(!gone.status.success(), "the unit is gone");
}
