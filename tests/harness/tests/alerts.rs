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

use std::collections::BTreeMap;

use anyhow::{Context, ensure};
use aws_sdk_dynamodb::types::AttributeValue;
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
