//! `agent check` and `agent run` on good and bad configuration: a precise
//! message naming the key, exit code 2, and never a secret in the output.

use std::path::Path;
use std::process::{Command, Output};

const GOOD: &str = r#"
agent_id = "biuro-1"

[aws]
region = "eu-central-1"
events_queue_url = "https://sqs.eu-central-1.amazonaws.com/123456789012/s-erp-events.fifo"
commands_queue_url = "https://sqs.eu-central-1.amazonaws.com/123456789012/s-erp-commands.fifo"

[sql]
connection_string = "server=tcp:127.0.0.1,1433;database=CDN_Firma;user=sync;TrustServerCertificate=true"

[heartbeat]
interval_seconds = 30
"#;

fn agent(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent"));
    command.args(args).current_dir(dir);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("OPTIMA_SYNC_")) {
        command.env_remove(k);
    }
    command.envs(env.iter().copied());
    command.output().expect("the agent binary runs")
}

fn check(config: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("agent.toml"), config).expect("config written");
    let out = agent(&["check", "--config", "agent.toml"], dir.path(), env);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_valid_configuration_passes_and_hides_the_password() {
    let (code, stdout, stderr) = check(GOOD, &[("OPTIMA_SYNC_SQL__PASSWORD", "Tajne!Hasło-123")]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("is valid"), "{stdout}");
    assert!(stdout.contains("SQL password set"), "{stdout}");
    assert!(
        !stdout.contains("Tajne") && !stderr.contains("Tajne"),
        "the password never shows"
    );
}

#[test]
fn poll_seconds_takes_whole_seconds_and_fractions() {
    for poll in ["1", "0.25", "2.5"] {
        let (code, stdout, stderr) =
            check(&format!("{GOOD}\n[sync]\npoll_seconds = {poll}\n"), &[]);
        assert_eq!(code, Some(0), "poll_seconds = {poll}: {stdout}{stderr}");
    }
    let (code, stdout, stderr) = check(GOOD, &[("OPTIMA_SYNC_SYNC__POLL_SECONDS", "3")]);
    assert_eq!(code, Some(0), "from the environment: {stdout}{stderr}");
}

#[test]
fn bad_configurations_name_the_key_and_exit_2() {
    // (configuration, environment overrides, expected message)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            GOOD.replace("interval_seconds = 30", "interval_seconds = 0"),
            vec![],
            "`heartbeat.interval_seconds` = 0 is out of range: expected 1 to 3600",
        ),
        (
            GOOD.replace("interval_seconds = 30", "interval_seconds = \"often\""),
            vec![],
            "heartbeat.interval_seconds",
        ),
        (
            GOOD.replace("agent_id = \"biuro-1\"", "agent_id = \"biuro 1!\""),
            vec![],
            "`agent_id` = `biuro 1!` is invalid",
        ),
        (
            GOOD.replace("s-erp-events.fifo", "s-erp-events"),
            vec![],
            "`aws.events_queue_url`",
        ),
        (
            GOOD.replace(
                "https://sqs.eu-central-1.amazonaws.com/123456789012/s-erp-commands.fifo",
                "ftp://x/s.fifo",
            ),
            vec![],
            "`aws.commands_queue_url` = `ftp://x/s.fifo` is not a queue URL",
        ),
        (
            GOOD.replace("user=sync;", "user=sync;password=abc;"),
            vec![],
            "contains a password",
        ),
        (
            GOOD.replace("[heartbeat]", "[heartbeat]\nintervall = 3"),
            vec![],
            "`heartbeat.intervall` unknown field",
        ),
        (GOOD.replace("[aws]", "[aws"), vec![], "agent.toml"),
        (
            GOOD.replace("agent_id = \"biuro-1\"", ""),
            vec![],
            "missing field `agent_id`",
        ),
        (
            GOOD.to_owned(),
            vec![("OPTIMA_SYNC_HEARTBEAT__INTERVAL_SECONDS", "99999")],
            "`heartbeat.interval_seconds` = 99999",
        ),
        (
            format!("{GOOD}\n[sync]\npoll_seconds = 0\n"),
            vec![],
            "`sync.poll_seconds` = 0 is out of range: expected 0.1 to 3600 seconds",
        ),
        (
            GOOD.to_owned(),
            vec![("OPTIMA_SYNC_SYNC__POLL_SECONDS", "0.01")],
            "`sync.poll_seconds` = 0.01 is out of range",
        ),
    ];
    for (config, env, expected) in cases {
        let (code, stdout, stderr) = check(&config, &env);
        assert_eq!(
            code,
            Some(2),
            "exit code 2 for `{expected}`: {stdout}{stderr}"
        );
        assert!(
            stderr.contains(expected),
            "expected `{expected}` in: {stderr}"
        );
        assert!(
            stderr.contains("agent.toml"),
            "the message names the file: {stderr}"
        );
    }
}

#[test]
fn a_missing_file_and_run_with_bad_config_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = agent(&["check", "--config", "nope.toml"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml does not exist"));
    std::fs::write(
        dir.path().join("agent.toml"),
        GOOD.replace("interval_seconds = 30", "interval_seconds = 0"),
    )
    .expect("write");
    let out = agent(&["run", "--config", "agent.toml"], dir.path(), &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "run refuses to start on a bad configuration"
    );
}

#[cfg(unix)]
#[test]
fn a_password_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("sql-password");
    std::fs::write(&secret, "Tajne!Hasło-123\n").expect("write");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let config = GOOD.replace(
        "TrustServerCertificate=true\"",
        &format!(
            "TrustServerCertificate=true\"\npassword_file = \"{}\"",
            secret.display()
        ),
    );
    std::fs::write(dir.path().join("agent.toml"), &config).expect("write");
    let out = agent(&["check", "--config", "agent.toml"], dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = agent(&["check", "--config", "agent.toml"], dir.path(), &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Tajne"));
}

/// The audit's lease hole: the service's lease holder is the same across
/// restarts, so two `agent run` on one state file both held it and ran
/// passes and senders side by side. Now the second is refused at start,
/// and the lock of one killed with SIGKILL is free at once (the OS drops
/// it), so a restart never waits. AWS and SQL point at a closed port on
/// loopback: the service runs (retrying) without reaching anything.
#[test]
fn a_second_agent_on_one_state_file_is_refused_and_a_killed_ones_lock_is_free_at_once() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state.sqlite");
    let config = GOOD.replace("127.0.0.1,1433", "127.0.0.1,9")
        + &format!(
            "\n[store]\npath = \"{}\"\n",
            state.display().to_string().replace('\\', "/")
        );
    std::fs::write(dir.path().join("agent.toml"), config).expect("config written");
    let env = [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "example"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("OPTIMA_SYNC_SQL__PASSWORD", "x"),
    ];
    let start = |log: &str| {
        let log = std::fs::File::create(dir.path().join(log)).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_agent"));
        command
            .args(["run", "--config", "agent.toml"])
            .current_dir(dir.path())
            .envs(env.iter().copied())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        command.spawn().expect("the agent starts")
    };
    let log_of = |log: &str| std::fs::read_to_string(dir.path().join(log)).unwrap_or_default();
    let wait_started = |log: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !log_of(log).contains("agent starting") {
            assert!(Instant::now() < deadline, "{log}: {}", log_of(log));
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let exit_within = |child: &mut std::process::Child, limit: Duration| {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("waits") {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    let mut first = start("first.log");
    wait_started("first.log");
    let mut second = start("second.log");
    let refused = exit_within(&mut second, Duration::from_secs(20));
    let said = log_of("second.log");
    assert!(
        refused.is_some_and(|status| !status.success()),
        "a second agent ran on the same state file: {said}"
    );
    assert!(
        said.contains("another agent is already running on the state file")
            && said.contains(&format!("process {}", first.id())),
        "{said}"
    );
    assert!(
        !said.contains("agent starting"),
        "refused before it started anything: {said}"
    );

    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let mut third = start("third.log");
    wait_started("third.log");
    assert!(
        exit_within(&mut third, Duration::from_secs(1)).is_none(),
        "the restart keeps running: {}",
        log_of("third.log")
    );
}
