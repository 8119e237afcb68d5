//! Where secrets may come from: the environment, a file only the service
//! account can read (SQL password, AWS credentials), or on Windows the
//! Credential Manager; never the command line, never printed.

use std::path::Path;
use std::process::{Command, Output};

fn agent(args: &[&str], dir: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent"));
    command.args(args).current_dir(dir);
    for (k, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("OPTIMA_SYNC_") || k.starts_with("AWS_"))
    {
        command.env_remove(k);
    }
    command
        .env("HOME", dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_REGION", "eu-central-1");
    command.output().expect("the agent binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const BASE: &str = "agent_id = \"biuro-1\"\n\n[aws]\nevents_queue_url = \"http://127.0.0.1:1/1/q-erp-events.fifo\"\ncredentials_file = \"aws-credentials\"\n\n[sql]\nconnection_string = \"server=tcp:127.0.0.1,1;database=CDN_Firma;user=sync\"\nconnect_timeout_seconds = 1\n";

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[cfg(unix)]
#[test]
fn aws_credentials_come_from_a_private_file_and_a_shared_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("agent.toml"), BASE).expect("config");
    let creds = dir.path().join("aws-credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = AKIAFROMTHEFILE00001\naws_secret_access_key = a-secret-only-in-the-file\n",
    )
    .expect("credentials");

    chmod(&creds, 0o644);
    let out = agent(&["check", "--config", "agent.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("aws.credentials_file"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("chmod 600"), "{}", text(&out));

    chmod(&creds, 0o600);
    let out = agent(&["doctor", "--config", "agent.toml"], dir.path());
    let all = text(&out);
    assert!(!out.status.success(), "nothing is reachable here:\n{all}");
    assert!(
        all.lines()
            .any(|l| l.starts_with("PASS  AWS credentials") && l.contains("AKIAFROM")),
        "the key comes from the file:\n{all}"
    );
    assert!(!all.contains("a-secret-only-in-the-file"), "{all}");
}

#[cfg(not(windows))]
#[test]
fn the_credential_manager_is_refused_off_windows_with_the_alternatives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = BASE.replace("credentials_file = \"aws-credentials\"\n", "")
        + "password_credential = \"optima-sync:sql\"\n";
    std::fs::write(dir.path().join("agent.toml"), config).expect("config");
    let out = agent(&["check", "--config", "agent.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("sql.password_credential"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("OPTIMA_SYNC_SQL__PASSWORD"),
        "{}",
        text(&out)
    );
}

#[test]
fn no_subcommand_takes_a_password_argument() {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["run", "check", "doctor", "sync", "install"] {
        let out = agent(&[sub, "--help"], dir.path());
        let help = text(&out).to_ascii_lowercase();
        // The help itself, not an error that happens to lack the word.
        assert!(
            out.status.success() && help.contains("--config"),
            "`agent {sub} --help` did not print its options:\n{help}"
        );
        assert!(
            !help.contains("--password") && !help.contains("--secret"),
            "`agent {sub}` must not accept a secret on the command line:\n{help}"
        );
    }
}
