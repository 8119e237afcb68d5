//! Runs every function of a stack deployed with `--local-host` on loopback.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use functions::telemetry;
use local_host::{HostOptions, LocalHost, StackDescription};

/// The functions of one stack, hosted locally as Lambda would run them.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Stack description written by `infra/deploy.py deploy --local-host --describe-to FILE`.
    #[arg(long)]
    stack: PathBuf,
    /// Address Function URLs listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Fixed port for a Function URL, as FUNCTION=PORT (repeatable); others get free ports.
    #[arg(long = "url-port", value_parser = parse_port)]
    url_ports: Vec<(String, u16)>,
    /// Run a scheduled function every N seconds instead of its rate, as FUNCTION=SECONDS (repeatable).
    #[arg(long = "schedule-every", value_parser = parse_port)]
    schedule_every: Vec<(String, u16)>,
    /// Write function → URL as JSON here once serving.
    #[arg(long)]
    urls_to: Option<PathBuf>,
}

fn parse_port(text: &str) -> Result<(String, u16), String> {
    let (name, port) = text.split_once('=').ok_or("expected FUNCTION=NUMBER")?;
    let port = port
        .parse()
        .map_err(|_| format!("`{port}` is not a port number"))?;
    Ok((name.to_owned(), port))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let args = Args::parse();
    // The token never comes from the command line, where `ps` would show it.
    let admin_token = std::env::var("ADMIN_TOKEN").context(
        "set ADMIN_TOKEN (at least 16 characters): the admin Function URL requires it locally",
    )?;
    let stack = StackDescription::load(&args.stack)?;
    let host = LocalHost::start(
        &stack,
        HostOptions {
            bind: args.bind,
            url_ports: args.url_ports.into_iter().collect::<BTreeMap<_, _>>(),
            admin_token,
            schedule_every: args
                .schedule_every
                .into_iter()
                .map(|(name, seconds)| {
                    (
                        name,
                        std::time::Duration::from_secs(u64::from(seconds.max(1))),
                    )
                })
                .collect(),
        },
    )
    .await?;
    for (function, url) in host.urls() {
        println!("url: {function} {url}");
    }
    if let Some(path) = &args.urls_to {
        let json = serde_json::to_string_pretty(host.urls())?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    host.wait().await;
    Ok(())
}
