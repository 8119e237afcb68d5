//! The foundation end to end: the template lints and deploys, its outputs
//! name what the code uses, a heartbeat goes from the agent process through
//! SQS and the ingest function into DynamoDB and out of `/status`, the admin
//! URL wants its credential, the agent rides out an unreachable AWS, and the
//! thin Lambda mains work under a Runtime API.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use functions::aws::Clients;
use functions::env::FunctionEnv;
use harness::cloud::{LocalCloud, start_agent};
use harness::emulator::{Emulator, sdk_config};
use harness::gate::Gate;
use harness::lambda_api::{Outcome, RuntimeApi};
use harness::paths::workspace_bin;
use harness::process::Process;
use harness::stack::{deploy_command, deploy_local, template_path};
use harness::venv;
use serde_json::{Value, json};

const DEAD_SQL: &str = "server=tcp:127.0.0.1,1;database=CDN_Firma;user=sa;encrypt=DANGER_PLAINTEXT";

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<Value>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<Value>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = String::new();
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(err) => last_error = format!("{err:#}"),
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}; last error: {last_error}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn agent_in(status: &Value, agent_id: &str) -> Option<Value> {
    status["agents"]
        .as_array()?
        .iter()
        .find(|a| a["agent_id"] == agent_id)
        .cloned()
}

#[test]
fn the_template_passes_cfn_lint() -> anyhow::Result<()> {
    let bin = venv::ensure()?;
    let output = Command::new(bin.join("cfn-lint"))
        .arg(template_path())
        .output()?;
    ensure!(
        output.status.success(),
        "cfn-lint found problems:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_deploys_and_its_outputs_name_every_resource_the_code_uses()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let emulator = Emulator::start(dir.path())?;
    let stack = deploy_local(
        &emulator.endpoint(),
        "foundation",
        &dir.path().join("stack.json"),
        &[],
    )?;
    let config = sdk_config(&emulator.endpoint()).await;
    let clients = Clients::from_config(&config);

    // Every function can be built from the environment the template gives it:
    // no name the code uses is missing from the stack.
    for (handler, function) in &stack.functions {
        let mut env = FunctionEnv::from_map(function.environment())
            .with_shop_secrets(&clients)
            .await?;
        if handler == "admin" {
            env.set("ADMIN_AUTH", "token");
            env.set("ADMIN_TOKEN", "a-token-of-sixteen-chars");
        }
        let built = match handler.as_str() {
            "ingest" => functions::ingest::Ingest::new(&clients, &env).map(|_| ()),
            "admin" => functions::admin::Admin::new(&clients, &env).map(|_| ()),
            "watchdog" => functions::watchdog::Watchdog::new(&clients, &env).map(|_| ()),
            "shop-push" => functions::shop_push::ShopPush::new(&clients, &env).map(|_| ()),
            "webhook" => functions::webhook::Webhook::new(&clients, &env).map(|_| ()),
            "poller" => functions::poller::Poller::new(&clients, &env).map(|_| ()),
            other => {
                bail!("the template declares a function `{other}` this build has no handler for")
            }
        };
        built.with_context(|| format!("building `{handler}` from its stack environment"))?;
    }
    ensure!(
        stack.functions.len() == 6,
        "ingest, shop-push, admin, watchdog, webhook and poller are deployed"
    );

    // The outputs the agent is configured from name real queues.
    for key in [
        "EventsQueueUrl",
        "EventsDlqUrl",
        "CommandsQueueUrl",
        "CommandsDlqUrl",
        "ShopOpsQueueUrl",
        "ShopOpsDlqUrl",
    ] {
        let url = stack.output(key)?;
        let attrs = clients
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .with_context(|| format!("output {key} = {url} is not a queue"))?
            .attributes
            .unwrap_or_default();
        if !key.contains("Dlq") {
            let redrive = attrs
                .get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
                .with_context(|| format!("{key} has no redrive policy"))?;
            ensure!(
                redrive.contains("deadLetterTargetArn"),
                "{key} redrives to a DLQ: {redrive}"
            );
        }
    }
    let table = stack.output("StateTableName")?;
    let ttl = clients
        .dynamodb
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await?;
    let ttl = ttl.time_to_live_description.context("no TTL description")?;
    ensure!(
        ttl.attribute_name() == Some("expires_at"),
        "TTL attribute is expires_at: {ttl:?}"
    );

    // What the emulator skipped was created through the API by the deploy step.
    ensure!(
        stack.function_urls.iter().all(|u| u.url.is_some()),
        "Function URLs exist: {:?}",
        stack.function_urls
    );
    ensure!(
        stack.schedules.iter().any(|s| s.function == "watchdog")
            && stack.schedules.iter().any(|s| s.function == "poller"),
        "the watchdog and the order poller are scheduled: {:?}",
        stack.schedules
    );
    ensure!(
        stack
            .function_urls
            .iter()
            .any(|u| u.function == "webhook" && u.auth == "NONE"),
        "the webhook has a public Function URL: {:?}",
        stack.function_urls
    );
    ensure!(
        stack.event_sources.iter().all(|s| !s.managed_by_lambda),
        "a --local-host deploy leaves no event source mapping to race the host"
    );

    // Deploying again is an update that changes nothing and still succeeds.
    deploy_local(
        &emulator.endpoint(),
        "foundation",
        &dir.path().join("stack2.json"),
        &[],
    )?;

    // destroy removes it all.
    let out = deploy_command(&emulator.endpoint())?
        .args(["destroy", "--stack", "foundation"])
        .output()?;
    ensure!(
        out.status.success(),
        "destroy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let queues = clients
        .sqs
        .list_queues()
        .send()
        .await?
        .queue_urls
        .unwrap_or_default();
    ensure!(queues.is_empty(), "queues left after destroy: {queues:?}");
    let tables = clients
        .dynamodb
        .list_tables()
        .send()
        .await?
        .table_names
        .unwrap_or_default();
    ensure!(tables.is_empty(), "tables left after destroy: {tables:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_reaches_status_and_status_wants_its_credential() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cloud = LocalCloud::start(dir.path(), "heartbeat")?;
    let config = dir.path().join("agent.toml");
    cloud.write_agent_config(&config, "biuro-1", DEAD_SQL, 1)?;
    let mut agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &dir.path().join("agent.log"),
        &[],
    )?;

    let started = chrono::Utc::now();
    let seen = wait_until("the agent on /status", Duration::from_secs(30), || async {
        Ok(agent_in(&cloud.status().await?, "biuro-1"))
    })
    .await
    .with_context(|| harness::process::tail(&agent.log_text()))?;
    assert_eq!(seen["agent_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        seen["sql_server_reachable"], false,
        "the heartbeat says the ERP is unreachable"
    );
    let sql_error = seen["sql_error"].as_str().unwrap_or_default();
    assert!(
        sql_error.contains("127.0.0.1:1"),
        "the heartbeat says why: {sql_error}"
    );
    let skew = seen["clock_skew_seconds"]
        .as_f64()
        .context("skew is a number")?;
    assert!(skew.abs() < 5.0, "same machine, small skew: {skew}");
    let last_seen: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(seen["last_seen"].clone())?;
    assert!(last_seen >= started - chrono::Duration::seconds(1));
    assert_eq!(seen["stale"], false);

    let status = cloud.status().await?;
    for queue in [
        "erp_events",
        "erp_events_dlq",
        "erp_commands",
        "erp_commands_dlq",
        "shop_ops",
        "shop_ops_dlq",
    ] {
        assert!(
            status["queues"][queue]["visible"].is_u64(),
            "{queue} depth reported: {status}"
        );
    }

    let client = reqwest::Client::new();
    let url = format!("{}/status", cloud.admin_url);
    let none = client.get(&url).send().await?;
    assert_eq!(none.status(), 401, "no credential");
    let wrong = client
        .get(&url)
        .bearer_auth("not-the-admin-token-at-all")
        .send()
        .await?;
    assert_eq!(wrong.status(), 401, "wrong credential");
    let body = wrong.text().await?;
    assert!(
        !body.contains(&cloud.admin_token),
        "the token is never echoed"
    );
    assert!(agent.is_running());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_rides_out_an_unreachable_emulator_and_its_heartbeats_arrive_after()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cloud = LocalCloud::start(dir.path(), "outage")?;
    let gate = Gate::start(([127, 0, 0, 1], cloud.emulator.port).into()).await?;
    let config = dir.path().join("agent.toml");
    cloud.write_agent_config(&config, "biuro-2", DEAD_SQL, 1)?;
    let mut agent = start_agent(&config, &gate.url(), &dir.path().join("agent.log"), &[])?;
    wait_until("a first heartbeat", Duration::from_secs(30), || async {
        Ok(agent_in(&cloud.status().await?, "biuro-2"))
    })
    .await?;

    gate.close();
    let cut_at = chrono::Utc::now();
    agent.wait_for_log("cannot send to SQS; retrying", Duration::from_secs(30))?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        agent.is_running(),
        "the agent keeps running while AWS is unreachable"
    );
    let log = agent.log_text();
    let retries = log.matches("cannot send to SQS; retrying").count();
    assert!(
        retries >= 2,
        "it retries, with back-off, and says what is wrong:\n{log}"
    );
    assert!(log.contains("retry_in"), "it says when it retries");

    gate.open();
    let back = wait_until(
        "a heartbeat sent after the outage",
        Duration::from_secs(60),
        || async {
            let status = cloud.status().await?;
            Ok(agent_in(&status, "biuro-2").filter(|a| {
                serde_json::from_value::<chrono::DateTime<chrono::Utc>>(a["last_seen"].clone())
                    .is_ok_and(|t| t > cut_at)
            }))
        },
    )
    .await?;
    assert_eq!(
        back["outbox_depth"].as_u64().map(|d| d <= 1),
        Some(true),
        "the outbox drained: {back}"
    );
    agent.wait_for_log("SQS reachable again", Duration::from_secs(10))?;
    Ok(())
}

/// An SQS event as Lambda delivers it, from message bodies.
fn sqs_event(bodies: &[(&str, String)]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("rh-{id}"),
                "body": body,
                "attributes": {"MessageGroupId": "biuro-3", "ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:q.fifo",
                "awsRegion": "eu-central-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

fn heartbeat_body(seq: u64, clock: chrono::DateTime<chrono::Utc>) -> String {
    contract::encode_body(&contract::Envelope::new(
        "biuro-3",
        seq,
        clock,
        contract::Payload::Heartbeat(contract::Heartbeat {
            agent_version: "9.9.9".into(),
            agent_clock: clock,
            health: contract::AgentHealth {
                sql_server: true,
                sql_error: None,
                outbox_depth: seq,
                takes_orders: None,
                rejected_records: None,
                rejected_latest: None,
            },
        }),
    ))
}

fn start_lambda(
    name: &str,
    api: &RuntimeApi,
    cloud_env: Vec<(String, String)>,
    endpoint: &str,
    log: &std::path::Path,
) -> anyhow::Result<Process> {
    let mut command = Command::new(workspace_bin(name)?);
    command
        .env_clear()
        .envs(harness::emulator::aws_env_for(endpoint))
        .envs(api.lambda_env(name))
        .envs(cloud_env)
        .env("LOG_FORMAT", "json");
    Process::spawn(name, command, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thin_lambda_mains_serve_real_invocations() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let emulator = Emulator::start(dir.path())?;
    let stack = deploy_local(
        &emulator.endpoint(),
        "mains",
        &dir.path().join("stack.json"),
        &[],
    )?;
    let endpoint = emulator.endpoint();

    let ingest_api = RuntimeApi::start().await?;
    let _ingest = start_lambda(
        "ingest",
        &ingest_api,
        stack.function("ingest")?.environment(),
        &endpoint,
        &dir.path().join("ingest.log"),
    )?;
    let now = chrono::Utc::now();
    let older = now - chrono::Duration::seconds(30);
    let outcome = ingest_api
        .invoke(
            sqs_event(&[
                ("m1", heartbeat_body(7, now)),
                ("m2", "{\"version\":1,\"kind\":\"teleport\"}".to_owned()),
                // An older heartbeat delivered late must not win.
                ("m3", heartbeat_body(6, older)),
            ]),
            Duration::from_secs(30),
        )
        .await?;
    assert_eq!(
        outcome,
        Outcome::Response(json!({"batchItemFailures": []})),
        "nothing to retry"
    );

    // admin runs under lambda_http on a public URL: /status wants an API
    // token the deploy command made (the deployed ADMIN_AUTH=tokens).
    let made = harness::stack::deploy_command(&endpoint)?
        .args(["api-token", "--stack", "mains", "--name", "test"])
        .output()?;
    ensure!(
        made.status.success(),
        "api-token: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let token = String::from_utf8(made.stdout)?.trim().to_owned();
    let admin_api = RuntimeApi::start().await?;
    let _admin = start_lambda(
        "admin",
        &admin_api,
        stack.function("admin")?.environment(),
        &endpoint,
        &dir.path().join("admin.log"),
    )?;
    let url_event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/status",
        "rawQueryString": "",
        "headers": {"host": "abc.lambda-url.eu-central-1.on.aws", "authorization": format!("Bearer {token}")},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc", "domainName": "abc.lambda-url.eu-central-1.on.aws",
            "domainPrefix": "abc", "requestId": "r1", "routeKey": "$default", "stage": "$default",
            "time": "23/Nov/2026:10:00:00 +0000", "timeEpoch": 1_795_000_000_000_i64,
            "http": {"method": "GET", "path": "/status", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"}
        },
        "isBase64Encoded": false
    });
    let Outcome::Response(answer) = admin_api.invoke(url_event, Duration::from_secs(30)).await?
    else {
        bail!("admin answered with an error");
    };
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or_default())?;
    let agent = agent_in(&body, "biuro-3").context("ingest stored the heartbeat")?;
    assert_eq!(agent["last_seq"], 7, "the newer heartbeat stays: {agent}");
    let parked = body["parked"].as_array().context("parked list")?;
    assert!(
        parked
            .iter()
            .any(|p| p["reason"].as_str().is_some_and(|r| r.contains("teleport"))),
        "the undecodable message is parked with its reason: {parked:?}"
    );

    let watchdog_api = RuntimeApi::start().await?;
    let _watchdog = start_lambda(
        "watchdog",
        &watchdog_api,
        stack.function("watchdog")?.environment(),
        &endpoint,
        &dir.path().join("watchdog.log"),
    )?;
    let Outcome::Response(summary) = watchdog_api
        .invoke(json!({"source": "schedule"}), Duration::from_secs(30))
        .await?
    else {
        bail!("watchdog answered with an error");
    };
    assert!(summary["changed"].is_array(), "{summary}");
    Ok(())
}
