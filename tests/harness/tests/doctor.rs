//! `agent doctor` against the ERP stand-in and the AWS emulator: all green,
//! then each failure an installer meets, each with its FAIL line and what
//! to do, and a non-zero exit.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use anyhow::{Context, ensure};
use harness::emulator::{Emulator, aws_env_for};
use harness::paths::workspace_bin;
use harness::stack::deploy_local;
use harness::standins::OptimaStandin;
use harness::wine::{Availability, prepare, skip_or_fail};

struct Setup {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    emulator: Emulator,
    events: String,
    commands: String,
    standin: OptimaStandin,
}

fn setup() -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_path_buf();
    let emulator = Emulator::start(&path)?;
    let stack = deploy_local(
        &emulator.endpoint(),
        "doctor",
        &path.join("stack.json"),
        &[],
    )?;
    let standin = OptimaStandin::start(&path.join("optima.sqlite"), 20, &path)?;
    Ok(Setup {
        events: stack.output("EventsQueueUrl")?.to_owned(),
        commands: stack.output("CommandsQueueUrl")?.to_owned(),
        _dir: dir,
        dir: path,
        emulator,
        standin,
    })
}

impl Setup {
    fn config(&self, name: &str, events: &str, sql: &str) -> anyhow::Result<std::path::PathBuf> {
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "agent_id = \"biuro-doctor\"\n\n[aws]\nevents_queue_url = \"{events}\"\ncommands_queue_url = \"{}\"\n\n[sql]\nconnection_string = \"{sql}\"\nconnect_timeout_seconds = 3\n\n[store]\npath = \"{name}-state.sqlite\"\n",
                self.commands
            ),
        )?;
        Ok(path)
    }

    fn doctor(&self, config: &Path, endpoint: &str, password: &str) -> anyhow::Result<Output> {
        Command::new(workspace_bin("agent")?)
            .args(["doctor", "--config"])
            .arg(config)
            .envs(aws_env_for(endpoint))
            .env("OPTIMA_SYNC_SQL__PASSWORD", password)
            .output()
            .context("running agent doctor")
    }
}

fn text(output: &Output) -> String {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("--- agent doctor ({}):\n{all}", output.status);
    all
}

/// The line of check `name`, which must start with `verdict`.
fn line<'a>(out: &'a str, verdict: &str, name: &str) -> anyhow::Result<&'a str> {
    out.lines()
        .find(|l| l.starts_with(verdict) && l.contains(name))
        .with_context(|| format!("no `{verdict} … {name}` line in:\n{out}"))
}

#[test]
fn doctor_passes_against_the_stand_in_and_the_emulator_and_names_each_failure() -> anyhow::Result<()>
{
    let s = setup()?;
    let endpoint = s.emulator.endpoint();
    let sql = s.standin.connection_string.clone();
    let good = s.config("good", &s.events, &sql)?;

    // All green.
    let out = s.doctor(&good, &endpoint, &s.standin.password)?;
    let all = text(&out);
    ensure!(out.status.success(), "doctor fails on a good setup:\n{all}");
    for name in [
        "configuration",
        "SQL Server login",
        "database",
        "table CDN.Towary",
        "table CDN.TraElem",
        "AWS credentials",
        "send to the events queue",
        "receive from the commands queue",
        "clock",
    ] {
        ensure!(
            all.lines()
                .any(|l| (l.starts_with("PASS") || l.starts_with("WARN")) && l.contains(name)),
            "`{name}` does not pass:\n{all}"
        );
    }
    ensure!(
        !all.contains(&s.standin.password),
        "the password is never printed"
    );

    // A bad password: SQL Server's 18456, and what to check.
    let out = s.doctor(&good, &endpoint, "not-the-password")?;
    let all = text(&out);
    ensure!(!out.status.success(), "exit code on a bad password:\n{all}");
    let login = line(&all, "FAIL", "SQL Server login")?;
    ensure!(login.contains("18456"), "{login}");
    ensure!(
        all.contains("OPTIMA_SYNC_SQL__PASSWORD"),
        "says where the password comes from:\n{all}"
    );
    ensure!(
        !all.contains("not-the-password"),
        "the password is never printed"
    );

    // A database that is not there: 4060.
    let wrong_db = sql.replace("database=CDN_", "database=CDN_Nope_");
    ensure!(
        wrong_db != sql,
        "the stand-in's connection string names its database: {sql}"
    );
    let config = s.config("wrong-db", &s.events, &wrong_db)?;
    let out = s.doctor(&config, &endpoint, &s.standin.password)?;
    let all = text(&out);
    ensure!(!out.status.success(), "{all}");
    let login = line(&all, "FAIL", "SQL Server login")?;
    ensure!(login.contains("4060"), "{login}");
    ensure!(all.contains("database="), "says which key to fix:\n{all}");

    // SQS unreachable: both queue checks fail and say what to open.
    let out = s.doctor(&good, "http://127.0.0.1:1", &s.standin.password)?;
    let all = text(&out);
    ensure!(!out.status.success(), "{all}");
    line(&all, "FAIL", "send to the events queue")?;
    line(&all, "FAIL", "receive from the commands queue")?;
    ensure!(all.contains("cannot reach SQS"), "{all}");
    line(&all, "PASS", "SQL Server login")?;

    // A queue URL that names no queue.
    let wrong_queue = s.events.replace("erp-events", "erp-nothing");
    let config = s.config("wrong-queue", &wrong_queue, &sql)?;
    let out = s.doctor(&config, &endpoint, &s.standin.password)?;
    let all = text(&out);
    ensure!(!out.status.success(), "{all}");
    let send = line(&all, "FAIL", "send to the events queue")?;
    ensure!(all.contains("names no queue"), "{send}\n{all}");
    line(&all, "PASS", "receive from the commands queue")?;

    // An invalid configuration: the first check fails and nothing else runs.
    let broken = s.dir.join("broken.toml");
    std::fs::write(&broken, "agent_id = \"bad id!\"\n")?;
    let out = s.doctor(&broken, &endpoint, &s.standin.password)?;
    let all = text(&out);
    ensure!(!out.status.success(), "{all}");
    line(&all, "FAIL", "configuration")?;

    // A table the agent reads is missing (last: it changes the database).
    let conn = optima_standin::db::open(&s.standin.db, Arc::default())?;
    conn.execute_batch("DROP TABLE CDN.TwrEan")?;
    drop(conn);
    let out = s.doctor(&good, &endpoint, &s.standin.password)?;
    let all = text(&out);
    ensure!(!out.status.success(), "{all}");
    line(&all, "FAIL", "table CDN.TwrEan")?;
    line(&all, "PASS", "table CDN.Towary")?;
    Ok(())
}

/// The Windows build, under Wine, against the same stand-in and emulator
/// on loopback: `--version`, `check` and `doctor` (a pass and a failure).
#[test]
fn the_windows_agent_runs_check_and_doctor_under_wine() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let wine = match prepare(scratch.path())? {
        Availability::Ready(wine) => wine,
        Availability::Missing(reason) => return skip_or_fail(&reason),
    };
    let out = wine.agent().arg("--version").output()?;
    let all = text(&out);
    ensure!(
        out.status.success(),
        "agent.exe --version under wine:\n{all}"
    );
    ensure!(all.contains(env!("CARGO_PKG_VERSION")), "{all}");

    let s = setup()?;
    let endpoint = s.emulator.endpoint();
    let good = s.config("wine", &s.events, &s.standin.connection_string)?;
    let out = wine
        .agent()
        .arg("check")
        .arg("--config")
        .arg(&good)
        .output()?;
    let all = text(&out);
    ensure!(out.status.success(), "agent.exe check:\n{all}");
    ensure!(all.contains("is valid"), "{all}");

    let doctor = |password: &str| {
        wine.agent()
            .args(["doctor", "--config"])
            .arg(&good)
            .envs(aws_env_for(&endpoint))
            .env("OPTIMA_SYNC_SQL__PASSWORD", password)
            .output()
    };
    let out = doctor(&s.standin.password)?;
    let all = text(&out);
    ensure!(out.status.success(), "agent.exe doctor under wine:\n{all}");
    line(&all, "PASS", "table CDN.TraElem")?;
    line(&all, "PASS", "send to the events queue")?;
    line(&all, "PASS", "clock")?;

    let out = doctor("not-the-password")?;
    let all = text(&out);
    ensure!(!out.status.success(), "{all}");
    ensure!(
        line(&all, "FAIL", "SQL Server login")?.contains("18456"),
        "{all}"
    );
    Ok(())
}
