//! The watchdog's e-mail alerts against the emulator: the stack's alarm
//! topic with a queue subscribed in place of an e-mail address (the
//! emulator delivers SNS to SQS as AWS does), and the watchdog built from
//! the environment the template gives it.
//!
//! A parked order, a silent agent, a message in a dead-letter queue and a
//! shop that refused our credentials mail once each, each linking its
//! console page, even with two watchdog runs at once; a run within the
//! hour mails nothing; a run past the hour mails again what is still there
//! (the refusal, older than its half hour by then, is not).
//!
//! With the stack's `AlertEmailFrom`/`AlertEmailTo` set, the same mail goes
//! by SES (read back from the emulator's sent mail), under the watchdog's
//! own role with IAM enforced: from the granted address it goes, from any
//! other it is refused and the claim given back.

use std::collections::BTreeMap;

use anyhow::{Context, ensure};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::config::{ProvideCredentials, SharedCredentialsProvider};
use chrono::Utc;
use functions::Deadline;
use functions::aws::Clients;
use functions::env::FunctionEnv;
use functions::watchdog::Watchdog;
use harness::emulator::{Emulator, sdk_config};
use harness::stack::deploy_local;
use serde_json::{Value, json};

const CONSOLE: &str = "http://konsola.test/console/";

/// Every mail the subscribed queue holds now: subject → body.
async fn mails(sqs: &aws_sdk_sqs::Client, inbox: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(inbox)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(found);
        }
        for message in messages {
            let envelope: Value =
                serde_json::from_str(message.body.as_deref().context("a message without body")?)?;
            found.push((
                envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                envelope["Message"].as_str().unwrap_or_default().to_owned(),
            ));
            sqs.delete_message()
                .queue_url(inbox)
                .receipt_handle(message.receipt_handle.context("no receipt handle")?)
                .send()
                .await?;
        }
    }
}

/// The console link a mail carries.
fn link(body: &str) -> Option<&str> {
    body.lines()
        .find_map(|line| line.strip_prefix("Panel / Console: "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_cause_mails_once_an_hour_with_its_console_link() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path();
    let emulator = Emulator::start(dir)?;
    let stack = deploy_local(&emulator.endpoint(), "alerts", &dir.join("stack.json"), &[])?;
    let clients = Clients::from_config(&sdk_config(&emulator.endpoint()).await);
    let table = stack.output("StateTableName")?.to_owned();

    // The alarm topic's subscriber: a queue, read as a person reads mail.
    let inbox = clients
        .sqs
        .create_queue()
        .queue_name("alerts-inbox")
        .send()
        .await?
        .queue_url
        .context("no inbox URL")?;
    let inbox_arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&inbox)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .context("no inbox ARN")?;
    clients
        .sns
        .subscribe()
        .topic_arn(stack.output("AlarmTopicArn")?)
        .protocol("sqs")
        .endpoint(inbox_arn)
        .send()
        .await?;

    // What needs a person: an order parked, an agent silent for an hour, a
    // command in the dead-letter queue, a shop's 401.
    functions::orders::OrderStore::new(clients.dynamodb.clone(), table.clone(), 30)
        .park("sklep", "41 7", "1041", "the order has no shipping address")
        .await?;
    let hour_ago = (Utc::now() - chrono::Duration::hours(1)).timestamp_millis();
    clients
        .dynamodb
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("agents".into()))
        .item("sk", AttributeValue::S("biuro".into()))
        .item("received_at_ms", AttributeValue::N(hour_ago.to_string()))
        .item("agent_clock_ms", AttributeValue::N(hour_ago.to_string()))
        .send()
        .await?;
    clients
        .sqs
        .send_message()
        .queue_url(stack.output("CommandsDlqUrl")?)
        .message_body("{}")
        .message_group_id("sklep")
        .message_deduplication_id("dead-1")
        .send()
        .await?;
    functions::alerts::record_refusal(
        &clients.dynamodb,
        &table,
        "sklep",
        "401 woocommerce_rest_cannot_view",
    )
    .await;

    let mut env = FunctionEnv::from_map(stack.function("watchdog")?.environment());
    env.set("CONSOLE_URL", CONSOLE);
    let watchdog = Watchdog::new(&clients, &env).context("configuring the watchdog")?;
    let now = Utc::now();

    // Two runs at once, as two schedules overlapping: one mail per cause.
    let (first, second) = tokio::join!(
        watchdog.handle_at(json!({}), Deadline::NONE, now),
        watchdog.handle_at(json!({}), Deadline::NONE, now),
    );
    let (first, second) = (
        first.map_err(|e| anyhow::anyhow!("{e}"))?,
        second.map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let got = mails(&clients.sqs, &inbox).await?;
    let by_subject: BTreeMap<&str, &str> = got
        .iter()
        .map(|(subject, body)| (subject.as_str(), body.as_str()))
        .collect();
    let expected = [
        (
            "Zamowienie wstrzymane: sklep nr 1041",
            "http://konsola.test/console/orders/sklep/41%207",
        ),
        ("Agent biuro nie odpowiada", "http://konsola.test/console/"),
        (
            "Komunikaty w kolejce bledow erp_commands_dlq",
            "http://konsola.test/console/",
        ),
        (
            "Sklep sklep odrzuca dane logowania",
            "http://konsola.test/console/",
        ),
    ];
    ensure!(
        got.len() == expected.len(),
        "one mail per cause, however many runs: {got:#?}\nruns: {first}\n{second}"
    );
    for (subject, page) in expected {
        let body = by_subject
            .get(subject)
            .with_context(|| format!("no mail `{subject}` in {got:#?}"))?;
        ensure!(
            link(body) == Some(page),
            "`{subject}` links {:?}: {body}",
            link(body)
        );
    }
    ensure!(
        by_subject["Zamowienie wstrzymane: sklep nr 1041"]
            .contains("the order has no shipping address"),
        "the parked order's mail says why"
    );

    // Within the hour: nothing more, the causes all still there.
    let later = watchdog
        .handle_at(
            json!({}),
            Deadline::NONE,
            now + chrono::Duration::minutes(20),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let got = mails(&clients.sqs, &inbox).await?;
    ensure!(
        got.is_empty(),
        "mailed again within the hour: {got:#?}\n{later}"
    );
    ensure!(later["alerts"]["quiet"] == 4, "{later}");

    // Past the hour: what is still there mails again; the refusal, older
    // than its half hour by then, no longer counts.
    let past = watchdog
        .handle_at(
            json!({}),
            Deadline::NONE,
            now + chrono::Duration::minutes(61),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let got = mails(&clients.sqs, &inbox).await?;
    let mut subjects: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
    subjects.sort_unstable();
    ensure!(
        subjects
            == [
                "Agent biuro nie odpowiada",
                "Komunikaty w kolejce bledow erp_commands_dlq",
                "Zamowienie wstrzymane: sklep nr 1041",
            ],
        "past the hour: {subjects:?}\n{past}"
    );
    // And once more at the same time: nothing.
    watchdog
        .handle_at(
            json!({}),
            Deadline::NONE,
            now + chrono::Duration::minutes(62),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let got = mails(&clients.sqs, &inbox).await?;
    ensure!(got.is_empty(), "{got:#?}");
    Ok(())
}

/// Clients signed as the watchdog's role. The role trusts only Lambda, so
/// it is assumed before IAM is enforced, as the local host does.
async fn as_watchdog(endpoint: &str, role_arn: &str) -> anyhow::Result<Clients> {
    let admin = sdk_config(endpoint).await;
    let credentials = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name("alerts-test-watchdog")
        .configure(&admin)
        .build()
        .await
        .provide_credentials()
        .await
        .with_context(|| format!("assuming {role_arn}"))?;
    let config = admin
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    Ok(Clients::from_config(&config))
}

/// Every mail the emulator's SES sent: (from, to, subject, body), read
/// from moto's model dump (`/moto-api/data.json`, `ses` → `Message`).
async fn ses_sent(endpoint: &str) -> anyhow::Result<Vec<(String, Vec<String>, String, String)>> {
    let dump: Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await?
        .error_for_status()?
        .json()
        .await
        .context("the emulator's model dump")?;
    let messages = dump["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(messages
        .iter()
        .map(|m| {
            let to = m["destinations"]["ToAddresses"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let text = |key: &str| m[key].as_str().unwrap_or_default().to_owned();
            (text("source"), to, text("subject"), text("body"))
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_sender_set_alerts_go_by_ses_from_that_address_only() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path();
    let emulator = Emulator::start(dir)?;
    let endpoint = emulator.endpoint();
    let stack = deploy_local(
        &endpoint,
        "alerts-ses",
        &dir.join("stack.json"),
        &[
            "AlertEmailFrom=alerty@sklep.test".to_owned(),
            "AlertEmailTo=biuro@sklep.test,szef@sklep.test".to_owned(),
        ],
    )?;
    let admin = Clients::from_config(&sdk_config(&endpoint).await);
    let table = stack.output("StateTableName")?.to_owned();
    // Both addresses verified in SES (as the sender's owner does once, by
    // the link SES mails): only the grant tells them apart.
    for identity in ["alerty@sklep.test", "inny@sklep.test"] {
        admin
            .ses
            .create_email_identity()
            .email_identity(identity)
            .send()
            .await
            .with_context(|| format!("verifying {identity}"))?;
    }
    let role = stack
        .function("watchdog")?
        .role_arn
        .clone()
        .context("the watchdog has no role")?;
    let watchdog_clients = as_watchdog(&endpoint, &role).await?;
    emulator.enforce_iam()?;

    functions::orders::OrderStore::new(admin.dynamodb.clone(), table.clone(), 30)
        .park("sklep", "41 7", "1041", "the order has no shipping address")
        .await?;
    let mut env = FunctionEnv::from_map(stack.function("watchdog")?.environment());
    env.set("CONSOLE_URL", CONSOLE);
    let watchdog = Watchdog::new(&watchdog_clients, &env).context("configuring the watchdog")?;
    let now = Utc::now();

    let run = watchdog
        .handle_at(json!({}), Deadline::NONE, now)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        run["alerts"]["sent"].as_array().map(Vec::len) == Some(1)
            && run["alerts"]["errors"]
                .as_array()
                .is_some_and(Vec::is_empty),
        "{run}"
    );
    let sent = ses_sent(&endpoint).await?;
    ensure!(sent.len() == 1, "one mail: {sent:#?}");
    let (from, to, subject, body) = &sent[0];
    ensure!(from == "alerty@sklep.test", "{from}");
    ensure!(to == &["biuro@sklep.test", "szef@sklep.test"], "{to:?}");
    ensure!(
        subject == "Zamowienie wstrzymane: sklep nr 1041",
        "{subject}"
    );
    ensure!(
        link(body) == Some("http://konsola.test/console/orders/sklep/41%207"),
        "{body}"
    );
    ensure!(body.contains("the order has no shipping address"), "{body}");

    // Within the hour the claim holds: nothing more.
    let later = watchdog
        .handle_at(
            json!({}),
            Deadline::NONE,
            now + chrono::Duration::minutes(20),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(ses_sent(&endpoint).await?.len() == 1, "{later}");

    // A function told another sender cannot mail from it: IAM refuses (the
    // grant names the one identity), nothing is sent, and the claim is
    // given back, so the right sender mails in the same minute.
    emulator.expect_refusals();
    let mut other = env.clone();
    other.set("ALERT_EMAIL_FROM", "inny@sklep.test");
    let misconfigured =
        Watchdog::new(&watchdog_clients, &other).context("configuring the watchdog")?;
    let past = now + chrono::Duration::minutes(61);
    let refused = misconfigured
        .handle_at(json!({}), Deadline::NONE, past)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        refused["alerts"]["sent"]
            .as_array()
            .is_some_and(Vec::is_empty)
            && refused["alerts"]["errors"].to_string().contains("SES"),
        "{refused}"
    );
    ensure!(ses_sent(&endpoint).await?.len() == 1, "mailed from inny@");
    let again = watchdog
        .handle_at(json!({}), Deadline::NONE, past)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(run["alerts"]["sent"] == again["alerts"]["sent"], "{again}");
    ensure!(ses_sent(&endpoint).await?.len() == 2);
    Ok(())
}
