//! `agent doctor` against the ERP stand-in and the AWS emulator: all green,
//! then each failure an installer meets, each with its FAIL line and what
//! to do, and a non-zero exit.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use optima_standin::settings;

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

/// The `what to do:` line under check `name`'s FAIL line.
fn advice<'a>(out: &'a str, name: &str) -> anyhow::Result<&'a str> {
    let mut lines = out.lines();
    lines
        .find(|l| l.starts_with("FAIL") && l.contains(name))
        .with_context(|| format!("no `FAIL … {name}` line in:\n{out}"))?;
    lines
        .next()
        .filter(|l| l.trim_start().starts_with("what to do:"))
        .with_context(|| format!("no advice under `FAIL … {name}` in:\n{out}"))
}

/// The rest of the run passes (or warns): SQL tables and the SQS checks.
fn others_pass(out: &str, except: &str) -> anyhow::Result<()> {
    for name in [
        "SQL Server login",
        "  database:",
        "table CDN.Towary",
        "table CDN.TraElem",
        "send to the events queue",
        "receive from the commands queue",
        "clock",
    ] {
        if name == except {
            continue;
        }
        ensure!(
            out.lines()
                .any(|l| (l.starts_with("PASS") || l.starts_with("WARN")) && l.contains(name)),
            "`{name}` does not pass beside the failure of `{except}`:\n{out}"
        );
    }
    Ok(())
}

/// The stand-in's login (`user=` of its connection string).
fn login(s: &Setup) -> String {
    s.standin
        .connection_string
        .split(';')
        .find_map(|p| p.strip_prefix("user="))
        .unwrap_or("sa")
        .to_owned()
}

/// SQL Server 2005's level (90), below the 100 the agent needs.
fn compatibility_level_too_low(s: &Setup, good: &Path) -> anyhow::Result<()> {
    let conn = optima_standin::db::open(&s.standin.db, Arc::default())?;
    settings::set_compatibility_level(&conn, 90)?;
    let out = s.doctor(good, &s.emulator.endpoint(), &s.standin.password);
    settings::reset(&conn)?;
    let out = out?;
    let all = text(&out);
    ensure!(!out.status.success(), "exit code at level 90:\n{all}");
    let db = line(&all, "FAIL", "  database:")?;
    ensure!(db.contains("compatibility level 90"), "{db}");
    ensure!(
        advice(&all, "  database:")?.contains("SET COMPATIBILITY_LEVEL"),
        "{all}"
    );
    others_pass(&all, "  database:")
}

/// A database created with the server's default Latin collation instead of
/// Optima's Polish_CI_AS: doctor warns (the agent still works), the run
/// passes.
fn collation_not_polish(s: &Setup, good: &Path) -> anyhow::Result<()> {
    let conn = optima_standin::db::open(&s.standin.db, Arc::default())?;
    settings::set_collation(&conn, "SQL_Latin1_General_CP1_CS_AS")?;
    let out = s.doctor(good, &s.emulator.endpoint(), &s.standin.password);
    settings::reset(&conn)?;
    let out = out?;
    let all = text(&out);
    ensure!(
        out.status.success(),
        "a non-Polish collation is a warning, not a failure:\n{all}"
    );
    let db = line(&all, "WARN", "  database:")?;
    ensure!(
        db.contains("SQL_Latin1_General_CP1_CS_AS")
            && db.contains("not a Polish collation")
            && db.contains("Polish_CI_AS"),
        "{db}"
    );
    others_pass(&all, "  database:")
}

/// DENY SELECT on one table to the agent's login: SQL Server's error 229.
fn table_not_readable(s: &Setup, good: &Path) -> anyhow::Result<()> {
    let user = login(s);
    let conn = optima_standin::db::open(&s.standin.db, Arc::default())?;
    settings::deny_select(&conn, &user, "TwrCeny")?;
    let out = s.doctor(good, &s.emulator.endpoint(), &s.standin.password);
    settings::reset(&conn)?;
    let out = out?;
    let all = text(&out);
    ensure!(!out.status.success(), "exit code on a denied table:\n{all}");
    let table = line(&all, "FAIL", "table CDN.TwrCeny")?;
    ensure!(
        table.contains("229") && table.contains("The SELECT permission was denied"),
        "{table}"
    );
    let fix = advice(&all, "table CDN.TwrCeny")?;
    ensure!(
        fix.contains(&format!("db_datareader ADD MEMBER [{user}]")),
        "{fix}"
    );
    others_pass(&all, "table CDN.TwrCeny")
}

/// AWS's answers say a time 10 minutes behind this machine's: a proxy on
/// loopback in front of the emulator rewrites their `Date` header.
fn clock_skewed(s: &Setup, good: &Path) -> anyhow::Result<()> {
    let proxy = SkewedDate::start(&s.emulator.endpoint(), chrono::Duration::minutes(-10))?;
    let out = s.doctor(good, &proxy.endpoint, &s.standin.password)?;
    let all = text(&out);
    ensure!(!out.status.success(), "exit code on a skewed clock:\n{all}");
    let clock = line(&all, "FAIL", "clock")?;
    // The header has 1 s resolution, and the answer takes a moment.
    let skew: i64 = clock
        .split("clock is ")
        .nth(1)
        .and_then(|rest| rest.split(" s off AWS's").next())
        .and_then(|n| n.trim_start_matches('+').parse().ok())
        .with_context(|| format!("no skew in `{clock}`"))?;
    ensure!((595..=605).contains(&skew), "{clock}");
    ensure!(advice(&all, "clock")?.contains("w32tm /resync"), "{all}");
    others_pass(&all, "clock")
}

/// An HTTP proxy on 127.0.0.1 in front of `upstream` whose answers carry
/// a `Date` header `shift` off the real time (all else passes through).
struct SkewedDate {
    endpoint: String,
    _runtime: tokio::runtime::Runtime,
}

impl SkewedDate {
    fn start(upstream: &str, shift: chrono::Duration) -> anyhow::Result<SkewedDate> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let client = reqwest::Client::builder().no_proxy().build()?;
        let upstream = upstream.trim_end_matches('/').to_owned();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (client, upstream) = (client.clone(), upstream.clone());
            async move {
                match Self::forward(&client, &upstream, request, shift).await {
                    Ok(response) => response,
                    Err(err) => axum::response::IntoResponse::into_response((
                        axum::http::StatusCode::BAD_GATEWAY,
                        err.to_string(),
                    )),
                }
            }
        });
        runtime.spawn(async move { axum::serve(listener, app).await });
        Ok(SkewedDate {
            endpoint,
            _runtime: runtime,
        })
    }

    async fn forward(
        client: &reqwest::Client,
        upstream: &str,
        request: axum::extract::Request,
        shift: chrono::Duration,
    ) -> anyhow::Result<axum::response::Response> {
        use axum::http::header;
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await?;
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut headers = parts.headers;
        for hop in [
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            header::CONTENT_LENGTH,
        ] {
            headers.remove(hop);
        }
        let answer = client
            .request(parts.method, format!("{upstream}{path}"))
            .headers(headers)
            .body(body)
            .send()
            .await?;
        let status = answer.status();
        let mut headers = answer.headers().clone();
        for hop in [
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            header::CONTENT_LENGTH,
            header::DATE,
        ] {
            headers.remove(hop);
        }
        let date = (chrono::Utc::now() + shift)
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        headers.insert(header::DATE, date.parse()?);
        let mut response =
            axum::response::Response::new(axum::body::Body::from(answer.bytes().await?));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
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

    // The schema report, as an integrator runs it on a client's copy: the
    // command writes the file, every table the agent relies on is in it
    // with a verdict per column, and the stand-in (Optima's real schema)
    // has no problem.
    let report = s.dir.join("schema-report.txt");
    let out = Command::new(workspace_bin("agent")?)
        .args(["doctor", "--config"])
        .arg(&good)
        .arg("--schema-report")
        .arg(&report)
        .envs(aws_env_for(&endpoint))
        .env("OPTIMA_SYNC_SQL__PASSWORD", &s.standin.password)
        .output()
        .context("running agent doctor --schema-report")?;
    let all = text(&out);
    ensure!(out.status.success(), "schema report:\n{all}");
    ensure!(all.contains("0 problem(s)"), "{all}");
    let written = std::fs::read_to_string(&report).context("the report file")?;
    let expected: serde_json::Value =
        serde_json::from_str(include_str!("../../../agent/schema/optima-tables.json"))?;
    for table in expected.as_object().context("tables")?.keys() {
        ensure!(
            written
                .lines()
                .any(|l| l.contains(table.as_str()) && l.contains("OK")),
            "{table} is not in the report:\n{written}"
        );
    }
    ensure!(
        written.lines().any(|l| l.contains("TrN_NumerPelny")),
        "column lines, e.g. the computed TrN_NumerPelny:\n{written}"
    );
    ensure!(!written.contains("PROBLEM"), "{written}");
    ensure!(!written.contains(&s.standin.password));

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

    // The database's compatibility level, its collation, a table the login
    // may not read, the clock: each names its problem, the others still run.
    compatibility_level_too_low(&s, &good)?;
    collation_not_polish(&s, &good)?;
    table_not_readable(&s, &good)?;
    clock_skewed(&s, &good)?;

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

    // The command line `agent install` registers is one the Windows agent
    // takes: run outside the Service Control Manager it reaches the
    // service dispatcher, which says it needs the SCM (exit 1), never a
    // usage error (exit 2).
    let definition = agent::service::windows_service_definition(
        agent::service::DEFAULT_NAME,
        &wine.exe,
        &good,
        scratch.path(),
        r"NT AUTHORITY\LocalService",
    );
    let out = wine.agent().args(&definition.arguments).output()?;
    let all = text(&out);
    ensure!(
        out.status.code() == Some(1)
            && all.contains("is started by the Windows Service Control Manager"),
        "agent.exe {:?} under wine ({}):\n{all}",
        definition.arguments,
        out.status
    );
    Ok(())
}
