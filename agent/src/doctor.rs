//! `agent doctor`: checks everything the agent needs, one line each, PASS,
//! WARN or FAIL, and for a failure what to do about it.
//!
//! - the configuration (the same validation as `agent check`);
//! - SQL Server: login, database, each Optima table the agent reads exists
//!   and is readable by the agent's login, the database's compatibility
//!   level and collation;
//! - AWS: credentials, sending to the events queue, receiving from the
//!   commands queue, and the clock against AWS's.
//!
//! What the probes leave behind, deliberately:
//! - **send**: a heartbeat, through the agent's own outbox and sequence
//!   numbers (the same path `agent sync` takes beside a running service), so
//!   the cloud's sequence check sees no gap and `/status` shows the doctor's
//!   run as a sign of life. The agent's IAM identity may only send to this
//!   queue, so a real send is the only proof that it can.
//! - **receive**: one `ReceiveMessage` of at most one message with
//!   `VisibilityTimeout=0` and no wait: a waiting command stays visible to
//!   the service at once, so nothing is stolen. It counts as one receive
//!   of that command (the queue dead-letters after 10), which is why the
//!   probe takes one message and not ten. The identity has no
//!   `GetQueueAttributes`, by design (least privilege), so the receive is
//!   the check.
//! - **clock**: the `Date` header of AWS's answers (1 s resolution) against
//!   the local clock (a waiting command's `SentTimestamp` would not do: it
//!   says when it was sent, not what time it is now). AWS
//!   refuses signatures more than 5 minutes off; the agent's heartbeat and
//!   stale-stock policy want better, so more than 60 s fails.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::config::{
    ConfigBag, Intercept, RuntimeComponents,
    interceptors::BeforeDeserializationInterceptorContextRef,
};
use chrono::{DateTime, Utc};
use contract::{AgentHealth, Heartbeat, MAX_BODY_BYTES, Payload};

use crate::config::AgentConfig;
use crate::sql::{self, SqlClient, SqlError};
use crate::store::Store;

/// Every Optima table the agent reads or writes (the statements are in
/// `optima.rs` and `optima/*.rs`; a unit test keeps this list in step
/// with them).
pub const OPTIMA_TABLES: &[&str] = &[
    "Towary",
    "TwrGrupy",
    "TwrEan",
    "TwrCeny",
    "DefCeny",
    "TwrIlosci",
    "Magazyny",
    "TraNag",
    "TraElem",
    "TraVat",
    "TraNagRelacje",
    "Kontrahenci",
    "DokDefinicje",
    "FormyPlatnosci",
    "SenditZleceniePrzesylki",
    "SenditPaczki",
    "Pieczatki",
];

/// Oldest compatibility level the agent's SQL is written for (SQL Server
/// 2008, the oldest Optima supports, is 100).
pub const MIN_COMPATIBILITY_LEVEL: i64 = 100;

/// Clock difference to AWS beyond which the check fails.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass(String),
    /// Works, but something deserves a look; does not fail the run.
    Warn(String),
    Fail {
        problem: String,
        fix: String,
    },
    /// Not run because an earlier check it depends on failed.
    Skipped(String),
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
}

impl Check {
    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome: Outcome::Pass(detail.into()),
        }
    }
    fn warn(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome: Outcome::Warn(detail.into()),
        }
    }
    fn fail(name: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome: Outcome::Fail {
                problem: problem.into(),
                fix: fix.into(),
            },
        }
    }
    fn skipped(name: impl Into<String>, why: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome: Outcome::Skipped(why.into()),
        }
    }
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. })
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Pass(detail) => write!(f, "PASS  {}: {detail}", self.name),
            Outcome::Warn(detail) => write!(f, "WARN  {}: {detail}", self.name),
            Outcome::Fail { problem, fix } => {
                write!(f, "FAIL  {}: {problem}\n      what to do: {fix}", self.name)
            }
            Outcome::Skipped(why) => write!(f, "SKIP  {}: {why}", self.name),
        }
    }
}

/// Runs every check, printing each line as it completes; returns them all.
pub async fn run(config_path: &Path, mut print: impl FnMut(&Check)) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut record = |check: Check, checks: &mut Vec<Check>| {
        print(&check);
        checks.push(check);
    };
    let config = match AgentConfig::load(config_path) {
        Ok(config) => {
            record(Check::pass("configuration", config.summary()), &mut checks);
            config
        }
        Err(err) => {
            record(
                Check::fail(
                    "configuration",
                    err.to_string(),
                    "fix the key named above (docs/OPERATIONS.md lists every key); `agent check` validates the file alone",
                ),
                &mut checks,
            );
            return checks;
        }
    };
    let sql_ok = {
        let sql_checks = sql_checks(&config).await;
        let ok = !sql_checks.iter().any(Check::failed);
        for check in sql_checks {
            record(check, &mut checks);
        }
        ok
    };
    for check in aws_checks(&config, sql_ok).await {
        record(check, &mut checks);
    }
    checks
}

/// The SQL Server checks, in order; later ones are skipped when login fails.
pub async fn sql_checks(config: &AgentConfig) -> Vec<Check> {
    let mut checks = Vec::new();
    let user = ado_value(&config.sql.connection_string, &["user id", "uid", "user"])
        .unwrap_or_else(|| "(none)".into());
    let database = ado_value(
        &config.sql.connection_string,
        &["database", "initial catalog"],
    );
    if config.sql_password.is_none() {
        checks.push(Check::warn(
            "SQL password",
            "none configured: set OPTIMA_SYNC_SQL__PASSWORD in the service's environment, or sql.password_file",
        ));
    }
    let mut client = match sql::connect(&config.sql_target()).await {
        Ok(client) => {
            checks.push(Check::pass(
                "SQL Server login",
                format!("logged in as `{user}`"),
            ));
            client
        }
        Err(err) => {
            checks.push(login_failure(&err, &user, database.as_deref()));
            checks.push(Check::skipped("Optima tables", "needs a SQL Server login"));
            return checks;
        }
    };
    checks.push(database_check(&mut client, database.as_deref()).await);
    for table in OPTIMA_TABLES {
        checks.push(table_check(&mut client, table, &user).await);
    }
    client.close().await.ok();
    checks
}

fn login_failure(err: &SqlError, user: &str, database: Option<&str>) -> Check {
    let name = "SQL Server login";
    let code = match err {
        SqlError::Server(e) => e.code(),
        _ => None,
    };
    match (err, code) {
        (_, Some(18456)) => Check::fail(
            name,
            format!("login failed for `{user}` (SQL Server error 18456): {err}"),
            "check `user=` in sql.connection_string and the password (OPTIMA_SYNC_SQL__PASSWORD or sql.password_file); the login must be a SQL Server login with SQL authentication enabled on the server (Server Properties → Security → SQL Server and Windows Authentication mode)",
        ),
        (_, Some(4060)) => Check::fail(
            name,
            format!(
                "cannot open database `{}` (SQL Server error 4060): {err}",
                database.unwrap_or("(default)")
            ),
            "check `database=` in sql.connection_string: it is the Optima company database (CDN_<company>, see Optima's Konfiguracja → Bazy danych), and the login needs a user in it (db_datareader)",
        ),
        (SqlError::Connect { .. }, _) | (SqlError::Timeout { .. }, _) => Check::fail(
            name,
            err.to_string(),
            "check `server=` (host\\instance and port; a named instance needs its TCP port or the SQL Server Browser), that TCP/IP is enabled in SQL Server Configuration Manager, and that the firewall on the SQL Server allows this machine",
        ),
        (SqlError::Config(_), _) => Check::fail(
            name,
            err.to_string(),
            "fix sql.connection_string (an ADO.NET connection string without the password)",
        ),
        _ => Check::fail(
            name,
            err.to_string(),
            "for a TLS error: SQL Server's default certificate is self-signed, add `TrustServerCertificate=true` to sql.connection_string or install a certificate this machine trusts",
        ),
    }
}

async fn database_check(client: &mut SqlClient, wanted: Option<&str>) -> Check {
    let name = "database";
    let query = "SELECT DB_NAME() AS name, CAST(DATABASEPROPERTYEX(DB_NAME(), 'Collation') AS nvarchar(128)) AS collation, \
                 (SELECT compatibility_level FROM sys.databases WHERE name = DB_NAME()) AS compatibility_level";
    let row = match client.simple_query(query).await {
        Ok(stream) => match stream.into_row().await {
            Ok(Some(row)) => row,
            Ok(None) => {
                return Check::fail(
                    name,
                    "no answer to a query on sys.databases",
                    "run `SELECT DB_NAME()` as the agent's login to see why",
                );
            }
            Err(err) => {
                return Check::fail(
                    name,
                    format!("reading the database's properties: {err}"),
                    "the login needs VIEW DEFINITION or to be a user in the database",
                );
            }
        },
        Err(err) => {
            return Check::fail(
                name,
                format!("reading the database's properties: {err}"),
                "the login needs to be a user in the database",
            );
        }
    };
    let db: String = row
        .try_get::<&str, _>("name")
        .ok()
        .flatten()
        .unwrap_or_default()
        .to_owned();
    let collation: String = row
        .try_get::<&str, _>("collation")
        .ok()
        .flatten()
        .unwrap_or_default()
        .to_owned();
    let level: Option<i64> = row
        .try_get::<u8, _>("compatibility_level")
        .ok()
        .flatten()
        .map(i64::from)
        .or_else(|| {
            row.try_get::<i16, _>("compatibility_level")
                .ok()
                .flatten()
                .map(i64::from)
        })
        .or_else(|| {
            row.try_get::<i32, _>("compatibility_level")
                .ok()
                .flatten()
                .map(i64::from)
        });
    if let Some(wanted) = wanted
        && !db.eq_ignore_ascii_case(wanted)
    {
        return Check::fail(
            name,
            format!("connected to `{db}`, not `{wanted}`"),
            "check `database=` in sql.connection_string",
        );
    }
    let Some(level) = level else {
        return Check::fail(
            name,
            format!("`{db}`: cannot read its compatibility level from sys.databases"),
            "grant the login VIEW ANY DATABASE, or check the database is online",
        );
    };
    if level < MIN_COMPATIBILITY_LEVEL {
        return Check::fail(
            name,
            format!(
                "`{db}` has compatibility level {level}; the agent needs {MIN_COMPATIBILITY_LEVEL} (SQL Server 2008) or later"
            ),
            "raise it (ALTER DATABASE … SET COMPATIBILITY_LEVEL = 110 or later) after checking with the Optima partner which level your Optima version supports",
        );
    }
    if !collation.to_ascii_lowercase().starts_with("polish") {
        return Check::warn(
            name,
            format!(
                "`{db}`, compatibility level {level}, collation `{collation}`: not a Polish collation, so Polish characters in varchar codes may not compare as Optima stores them; Optima databases are created Polish_CI_AS"
            ),
        );
    }
    Check::pass(
        name,
        format!("`{db}`, compatibility level {level}, collation {collation}"),
    )
}

async fn table_check(client: &mut SqlClient, table: &str, user: &str) -> Check {
    let name = format!("table CDN.{table}");
    let query = format!("SELECT TOP 1 * FROM CDN.{table}");
    let result = match client.simple_query(query).await {
        Ok(stream) => stream.into_results().await,
        Err(err) => Err(err),
    };
    match result {
        Ok(_) => Check::pass(name, "exists and is readable"),
        Err(err) => match err.code() {
            Some(208) => Check::fail(
                name,
                format!("does not exist (SQL Server error 208): {err}"),
                "the database is not an Optima company database (check `database=`), or this Optima version lacks the table: tell us the Optima version",
            ),
            Some(229) => Check::fail(
                name,
                format!("the login may not read it (SQL Server error 229): {err}"),
                format!(
                    "in the company database: ALTER ROLE db_datareader ADD MEMBER [{user}] (or GRANT SELECT ON SCHEMA::CDN TO [{user}])"
                ),
            ),
            _ => Check::fail(
                name,
                format!("cannot be read: {err}"),
                "run the same SELECT as the agent's login in SQL Server Management Studio to see why",
            ),
        },
    }
}

/// Captures the `Date` header of each AWS answer.
#[derive(Debug, Default, Clone)]
struct ServerDate(Arc<Mutex<Option<String>>>);

impl Intercept for ServerDate {
    fn name(&self) -> &'static str {
        "doctor-server-date"
    }
    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sqs::error::BoxError> {
        if let Some(date) = context.response().headers().get("date")
            && let Ok(mut slot) = self.0.lock()
        {
            *slot = Some(date.to_owned());
        }
        Ok(())
    }
}

/// The AWS checks: credentials, send, receive, clock.
pub async fn aws_checks(config: &AgentConfig, sql_ok: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    let transport = crate::sqs::Transport::new(config).await;
    let client = transport.client();
    // The same standard chain the transport uses (environment, profile,
    // credentials file); the SQS client does not expose its provider.
    let loader = crate::sqs::with_agent_settings(
        aws_config::defaults(aws_config::BehaviorVersion::latest()),
        config,
    );
    let credentials_fix = "put AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (printed once by `deploy.py deploy`) in the service's environment (Linux: the EnvironmentFile; Windows: see docs/INSTALL.md), or a credentials file with aws.profile";
    match loader.load().await.credentials_provider() {
        None => {
            checks.push(Check::fail(
                "AWS credentials",
                "none configured",
                credentials_fix,
            ));
            return checks;
        }
        Some(provider) => {
            use aws_sdk_sqs::config::ProvideCredentials;
            match provider.provide_credentials().await {
                Ok(creds) => checks.push(Check::pass(
                    "AWS credentials",
                    format!(
                        "access key {}…",
                        creds.access_key_id().chars().take(8).collect::<String>()
                    ),
                )),
                Err(err) => {
                    checks.push(Check::fail(
                        "AWS credentials",
                        crate::sqs::describe(&err),
                        credentials_fix,
                    ));
                    return checks;
                }
            }
        }
    }
    let date = ServerDate::default();
    let probing = crate::sqs::Transport::with_client(
        &transport,
        aws_sdk_sqs::Client::from_conf(
            client
                .config()
                .to_builder()
                .interceptor(date.clone())
                .build(),
        ),
    );

    checks.push(send_check(config, &probing, sql_ok).await);
    checks.push(receive_check(config, &probing).await);
    let server_time = date
        .0
        .lock()
        .ok()
        .and_then(|d| d.clone())
        .and_then(|d| DateTime::parse_from_rfc2822(&d).ok())
        .map(|d| d.with_timezone(&Utc));
    checks.push(clock_check(server_time, Utc::now()));
    checks
}

async fn send_check(
    config: &AgentConfig,
    transport: &crate::sqs::Transport,
    sql_ok: bool,
) -> Check {
    let name = "send to the events queue";
    let store = match Store::open(&config.store.path) {
        Ok(store) => store,
        Err(err) => {
            return Check::fail(
                name,
                format!(
                    "cannot open the agent state {}: {err}",
                    config.store.path.display()
                ),
                "the service account needs read and write access to store.path and its folder",
            );
        }
    };
    let heartbeat = Heartbeat {
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        agent_clock: Utc::now(),
        health: AgentHealth {
            sql_server: sql_ok,
            sql_error: (!sql_ok).then(|| "agent doctor: SQL Server checks failed".to_owned()),
            outbox_depth: store.outbox_depth().unwrap_or(0) + store.pending_count().unwrap_or(0),
            takes_orders: None,
            rejected_records: None,
            rejected_latest: None,
        },
    };
    if let Err(err) = store.enqueue(
        &config.agent_id,
        Payload::Heartbeat(heartbeat),
        Some("heartbeat"),
        MAX_BODY_BYTES,
        Utc::now(),
    ) {
        return Check::fail(
            name,
            format!("cannot queue a heartbeat: {err}"),
            "check store.path",
        );
    }
    let batching = crate::sender::Batching {
        agent_id: config.agent_id.clone(),
        batch_records: config.sync.batch_records,
    };
    match crate::sender::drain_once(transport, &store, &batching).await {
        Ok(sent) => Check::pass(
            name,
            format!(
                "{sent} message(s) sent to {} (a heartbeat, and whatever the outbox held)",
                config.aws.events_queue_url
            ),
        ),
        Err(err) => Check::fail(
            name,
            err.clone(),
            sqs_fix(&err, "aws.events_queue_url", "sqs:SendMessage"),
        ),
    }
}

async fn receive_check(config: &AgentConfig, transport: &crate::sqs::Transport) -> Check {
    let name = "receive from the commands queue";
    let Some(url) = &config.aws.commands_queue_url else {
        return Check::warn(
            name,
            "aws.commands_queue_url is not set: the agent takes no commands (forced passes, orders) from the cloud",
        );
    };
    let received = transport
        .client()
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(1)
        .visibility_timeout(0)
        .wait_time_seconds(0)
        .send()
        .await;
    match received {
        Ok(out) => {
            let messages = out.messages.unwrap_or_default();
            let detail = if messages.is_empty() {
                "allowed; no command waiting".to_owned()
            } else {
                "allowed; a command is waiting (left in place for the service)".to_owned()
            };
            Check::pass(name, detail)
        }
        Err(err) => {
            let text = crate::sqs::describe(&err);
            Check::fail(
                name,
                text.clone(),
                sqs_fix(&text, "aws.commands_queue_url", "sqs:ReceiveMessage"),
            )
        }
    }
}

fn sqs_fix(error: &str, key: &str, action: &str) -> String {
    let lowered = error.to_ascii_lowercase();
    if lowered.contains("nonexistentqueue")
        || lowered.contains("does not exist")
        || lowered.contains("queuedoesnotexist")
    {
        format!("`{key}` names no queue: copy it from the stack outputs (deploy.py prints them)")
    } else if lowered.contains("accessdenied") || lowered.contains("not authorized") {
        format!(
            "the AWS identity may not {action} on `{key}`: use the agent's access key from the deploy output, and check `{key}` is this stack's queue"
        )
    } else if lowered.contains("invalidclienttokenid")
        || lowered.contains("signaturedoesnotmatch")
        || lowered.contains("security token")
    {
        "the AWS access key is wrong or deleted: put the one from the deploy output in the service's environment".to_owned()
    } else if lowered.contains("dispatch failure")
        || lowered.contains("connect")
        || lowered.contains("dns")
        || lowered.contains("timed out")
        || lowered.contains("timeout")
    {
        "cannot reach SQS: allow outbound HTTPS (port 443) to sqs.<region>.amazonaws.com from this machine, set HTTPS_PROXY if the office uses a proxy, and check AWS_ENDPOINT_URL is unset (or right)".to_owned()
    } else {
        format!("check `{key}` and the agent's AWS credentials")
    }
}

/// Compares AWS's clock with ours.
pub fn clock_check(server: Option<DateTime<Utc>>, local: DateTime<Utc>) -> Check {
    let name = "clock";
    let Some(server) = server else {
        return Check::skipped(name, "no answer from AWS with a time in it");
    };
    let skew = (local - server).num_milliseconds() as f64 / 1000.0;
    if skew.abs() > MAX_CLOCK_SKEW.as_secs_f64() {
        Check::fail(
            name,
            format!("this machine's clock is {skew:+.0} s off AWS's"),
            "synchronise the clock (Windows: w32tm /resync, or the domain's time source; Linux: systemd-timesyncd or chrony); AWS refuses requests more than 5 minutes off",
        )
    } else {
        Check::pass(
            name,
            format!("{skew:+.0} s from AWS's (HTTP Date, 1 s resolution)"),
        )
    }
}

/// A value of an ADO.NET connection string, by any of its key names.
fn ado_value(ado: &str, keys: &[&str]) -> Option<String> {
    ado.split(';').find_map(|part| {
        let (key, value) = part.split_once('=')?;
        keys.iter()
            .any(|k| key.trim().eq_ignore_ascii_case(k))
            .then(|| value.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_list_covers_every_table_the_agent_reads() {
        let source = concat!(
            include_str!("optima.rs"),
            include_str!("optima/order_document.rs"),
            include_str!("optima/invoice.rs"),
            include_str!("optima/realisation.rs")
        );
        let mut read: Vec<&str> = source
            .split("CDN.")
            .skip(1)
            .filter_map(|rest| {
                let end = rest
                    .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .unwrap_or(rest.len());
                let name = &rest[..end];
                (!name.is_empty()).then_some(name)
            })
            .collect();
        read.sort_unstable();
        read.dedup();
        for table in read {
            assert!(
                OPTIMA_TABLES.contains(&table),
                "optima.rs reads CDN.{table}: add it to doctor::OPTIMA_TABLES"
            );
        }
    }

    #[test]
    fn the_clock_check_fails_beyond_a_minute() {
        let now = Utc::now();
        assert!(!clock_check(Some(now - chrono::Duration::seconds(3)), now).failed());
        let off = clock_check(Some(now - chrono::Duration::seconds(600)), now);
        assert!(off.failed(), "{off}");
        assert!(off.to_string().contains("+600 s"), "{off}");
    }

    #[test]
    fn ado_values_are_found_by_any_key_name() {
        let ado = "server=tcp:h,1433;Database=CDN_Firma;User ID=sync";
        assert_eq!(ado_value(ado, &["database"]).as_deref(), Some("CDN_Firma"));
        assert_eq!(
            ado_value(ado, &["user", "user id"]).as_deref(),
            Some("sync")
        );
    }
}
