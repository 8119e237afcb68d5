//! The whole sync on this machine, on embedded defaults: the AWS emulator,
//! the stack deployed into it from `infra/template.yaml`, the functions'
//! local host, and the agent, all on 127.0.0.1. Prints where to look;
//! ctrl-c stops everything.

use clap::Parser;
use harness::cloud::{LocalCloud, start_agent};
use harness::paths::local_dir;

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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = local_dir();
    let logs = dir.join("logs");
    println!(
        "starting the AWS emulator, deploying infra/template.yaml as `{}`, starting the functions…",
        args.stack
    );
    let cloud = LocalCloud::start(&logs, &args.stack)?;
    let agent_config = dir.join("agent.toml");
    cloud.write_agent_config(
        &agent_config,
        "local-office",
        "server=tcp:127.0.0.1,1;database=CDN_Firma;user=sa;encrypt=DANGER_PLAINTEXT",
        args.heartbeat_seconds,
    )?;
    let agent = start_agent(
        &agent_config,
        &cloud.emulator.endpoint(),
        &logs.join("agent.log"),
        &[],
    )?;

    let endpoint = cloud.emulator.endpoint();
    println!();
    println!("the sync is running locally:");
    println!(
        "  admin status : curl -H 'Authorization: Bearer {}' {}/status",
        cloud.admin_token, cloud.admin_url
    );
    println!(
        "  AWS emulator : AWS_ENDPOINT_URL={endpoint} (stack description: {})",
        cloud.stack_file.display()
    );
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
    drop(agent);
    drop(cloud);
    Ok(())
}
