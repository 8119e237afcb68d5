//! Upgrades: a command in a contract version the agent cannot speak (the
//! cloud was upgraded two steps, or the agent is too old) is refused with
//! a message that says which side to upgrade, and is not deleted: it stays
//! for a newer agent, or reaches the commands DLQ (and its alarm) after
//! the queue's maxReceiveCount. The agent keeps running. Until a command
//! tells it the cloud's versions, the agent writes at its minimum version
//! and announces its newest (`max_version`); a command it reads teaches it
//! the cloud's (the version rule is simulated across builds in
//! `contract/tests/versions.rs`).

use std::time::Duration;

use anyhow::{Context, ensure};
use contract::{Envelope, MIN_SCHEMA_VERSION, Payload, Ping, SCHEMA_VERSION};
use harness::cloud::start_agent;
use harness::emulator::{Emulator, sdk_config};
use harness::stack::deploy_local;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_in_a_newer_contract_is_refused_clearly_and_left_queued() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let emulator = Emulator::start(dir.path())?;
    let stack = deploy_local(
        &emulator.endpoint(),
        "upgrade",
        &dir.path().join("stack.json"),
        &[],
    )?;
    let commands = stack.output("CommandsQueueUrl")?.to_owned();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "agent_id = \"biuro-old\"\n\n[aws]\nevents_queue_url = \"{}\"\ncommands_queue_url = \"{commands}\"\n\n[sql]\nconnection_string = \"server=tcp:127.0.0.1,1;database=CDN_Firma;user=sa;encrypt=DANGER_PLAINTEXT\"\nconnect_timeout_seconds = 1\n\n[store]\npath = \"state.sqlite\"\n",
            stack.output("EventsQueueUrl")?
        ),
    )?;
    let mut agent = start_agent(
        &config,
        &emulator.endpoint(),
        &dir.path().join("agent.log"),
        // No IAM here (no LocalCloud): the emulator's administrator key.
        &[
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local-secret"),
        ],
    )?;

    let mut envelope = Envelope::new(
        "cloud",
        1,
        chrono::Utc::now(),
        Payload::Ping(Ping {
            nonce: "from-the-future".into(),
        }),
    );
    envelope.version = SCHEMA_VERSION + 1;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&emulator.endpoint()).await);
    sqs.send_message()
        .queue_url(&commands)
        .message_body(String::from_utf8(envelope.to_json())?)
        .message_group_id("biuro-old")
        .message_deduplication_id("future-1")
        .send()
        .await?;

    let line = agent
        .wait_for_log(
            &format!("unsupported contract version {}", SCHEMA_VERSION + 1),
            Duration::from_secs(60),
        )
        .with_context(|| harness::process::tail(&agent.log_text()))?;
    ensure!(
        line.contains("upgrade the side that is older"),
        "the refusal says what to do: {line}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(agent.is_running(), "the agent keeps running");

    // Not deleted: still in the queue (visible or in flight) or in its DLQ.
    let dlq = stack.output("CommandsDlqUrl")?.to_owned();
    let held = harness::cloud::messages_held(&sqs, &commands).await?
        + harness::cloud::messages_held(&sqs, &dlq).await?;
    ensure!(
        held == 1,
        "the refused command is kept, not deleted ({held} held)"
    );

    // What the agent sent so far (its heartbeat), before it knows the
    // cloud's versions: at its minimum, announcing its newest.
    let events = stack.output("EventsQueueUrl")?.to_owned();
    let received = sqs
        .receive_message()
        .queue_url(&events)
        .max_number_of_messages(10)
        .wait_time_seconds(5)
        .send()
        .await?
        .messages
        .unwrap_or_default();
    let sent: Vec<Envelope> = received
        .iter()
        .filter_map(|m| contract::decode_body(m.body()?).ok())
        .collect();
    ensure!(
        !sent.is_empty(),
        "the agent's heartbeat is on the events queue"
    );
    for envelope in &sent {
        ensure!(
            envelope.version == MIN_SCHEMA_VERSION && envelope.max_version == Some(SCHEMA_VERSION),
            "written at {} announcing {:?}",
            envelope.version,
            envelope.max_version
        );
    }

    // A command it can read (another message group: the refused one holds
    // its own) teaches it the cloud's versions.
    let ping = Envelope::new(
        "cloud",
        2,
        chrono::Utc::now(),
        Payload::Ping(Ping {
            nonce: "from-now".into(),
        }),
    );
    sqs.send_message()
        .queue_url(&commands)
        .message_body(contract::encode_body_at(&ping, MIN_SCHEMA_VERSION)?)
        .message_group_id("cloud-now")
        .message_deduplication_id("now-1")
        .send()
        .await?;
    agent
        .wait_for_log(
            &format!("the cloud reads contract versions up to {SCHEMA_VERSION}"),
            Duration::from_secs(60),
        )
        .with_context(|| harness::process::tail(&agent.log_text()))?;
    ensure!(agent.is_running(), "the agent keeps running");
    Ok(())
}
