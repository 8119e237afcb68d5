//! The whole sync on this machine, on embedded defaults: the AWS emulator,
//! the stack deployed into it from `infra/template.yaml`, the functions'
//! local host, the ERP stand-in, the WooCommerce stand-in and the agent,
//! all on 127.0.0.1. Prints where to look; ctrl-c stops everything.

use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use harness::emulator::Emulator;
use harness::paths::{local_dir, workspace_bin};
use harness::process::Process;
use harness::stack::deploy_local;
use rand::Rng;
use rand::distr::Alphanumeric;

#[derive(Parser)]
#[command(about = "Runs the whole sync locally on embedded defaults")]
struct Args {
    /// Stack name inside the emulator.
    #[arg(long, default_value = "optima-sync-local")]
    stack: String,
    /// Agent heartbeat interval, seconds.
    #[arg(long, default_value_t = 10)]
    heartbeat_seconds: u64,
}

fn secret() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = local_dir();
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;

    println!("starting the AWS emulator…");
    let emulator = Emulator::start(&logs)?;
    let endpoint = emulator.endpoint();
    println!("deploying infra/template.yaml as stack `{}`…", args.stack);
    let stack_file = dir.join("stack.json");
    let stack = deploy_local(&endpoint, &args.stack, &stack_file)?;

    let admin_token = secret();
    let urls_file = dir.join("urls.json");
    let _ = std::fs::remove_file(&urls_file);
    let mut host_cmd = Command::new(workspace_bin("local-host")?);
    host_cmd
        .arg("--stack")
        .arg(&stack_file)
        .arg("--urls-to")
        .arg(&urls_file)
        .envs(emulator.aws_env())
        .env("ADMIN_TOKEN", &admin_token);
    let mut host = Process::spawn("functions host", host_cmd, &logs.join("functions.log"))?;
    host.wait_for_log("url: admin", Duration::from_secs(30))?;
    let urls: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&urls_file)?)?;
    let admin_url = urls["admin"].as_str().unwrap_or_default().to_owned();

    let agent_config = dir.join("agent.toml");
    std::fs::write(
        &agent_config,
        format!(
            "agent_id = \"local-office\"\n\n[aws]\nevents_queue_url = \"{}\"\ncommands_queue_url = \"{}\"\n\n[sql]\nconnection_string = \"server=tcp:127.0.0.1,1;database=CDN_Firma;user=sa;encrypt=DANGER_PLAINTEXT\"\n\n[store]\npath = \"{}\"\n\n[heartbeat]\ninterval_seconds = {}\n",
            stack.output("EventsQueueUrl")?,
            stack.output("CommandsQueueUrl")?,
            dir.join("agent-state.sqlite").display(),
            args.heartbeat_seconds
        ),
    )?;
    let mut agent_cmd = Command::new(workspace_bin("agent")?);
    agent_cmd
        .arg("run")
        .arg("--config")
        .arg(&agent_config)
        .envs(emulator.aws_env());
    let _agent = Process::spawn("agent", agent_cmd, &logs.join("agent.log"))?;

    println!();
    println!("the sync is running locally:");
    println!("  admin status : curl -H 'Authorization: Bearer {admin_token}' {admin_url}/status");
    println!("  AWS emulator : {endpoint}  (AWS_ENDPOINT_URL={endpoint} aws sqs list-queues)");
    println!("  agent config : {}", agent_config.display());
    println!("  logs         : {}", logs.display());
    println!("press ctrl-c to stop everything");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    println!("stopping…");
    drop(emulator);
    drop(host);
    Ok(())
}
