//! The `agent` command line: `run`, `check`.

use std::path::PathBuf;
use std::process::ExitCode;

use agent::config::AgentConfig;
use clap::{Parser, Subcommand};

/// Keeps Comarch ERP Optima and the online shops in sync, from the office
/// server, outbound only.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (heartbeats, sync, orders) until stopped.
    Run {
        /// Configuration file (TOML); OPTIMA_SYNC_* environment variables override it.
        #[arg(long, short, default_value = "agent.toml")]
        config: PathBuf,
    },
    /// Validate the configuration and exit: 0 when valid, 2 when not.
    Check {
        #[arg(long, short, default_value = "agent.toml")]
        config: PathBuf,
    },
}

/// Exit code for an invalid configuration, as for a usage error.
const EXIT_BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    agent::telemetry::init();
    match cli.command {
        Command::Check { config } => match AgentConfig::load(&config) {
            Ok(config) => {
                println!(
                    "configuration {} is valid: {}",
                    config.source.display(),
                    config.summary()
                );
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("{err}");
                ExitCode::from(EXIT_BAD_CONFIG)
            }
        },
        Command::Run { config } => {
            let config = match AgentConfig::load(&config) {
                Ok(config) => config,
                Err(err) => {
                    eprintln!("{err}");
                    return ExitCode::from(EXIT_BAD_CONFIG);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("cannot start the async runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(agent::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("agent stopped: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
