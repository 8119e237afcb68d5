//! `allegro-standin serve --listen ADDR [--auth-listen ADDR] [--client-id ID --client-secret S]
//! [--seller-id N] [--access-ttl-secs N] [--refresh-grace-secs N] [--client-per-minute N]
//! [--command-delay-ms N] [--device-interval-secs N] [--seed-offers FILE]`: runs the Allegro
//! stand-in until killed.

use std::net::SocketAddr;
use std::path::PathBuf;

use allegro_standin::{AllegroOptions, AllegroStandin, Config, NewOffer};
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "allegro-standin",
    about = "A local stand-in of Allegro's REST API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve until killed.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8082")]
        listen: SocketAddr,
        /// Serve /auth/oauth/* on a second address (like allegro.pl next to api.allegro.pl).
        #[arg(long)]
        auth_listen: Option<SocketAddr>,
        #[arg(long, default_value = "standin-client-id")]
        client_id: String,
        #[arg(
            long,
            default_value = "standin-client-secret",
            env = "ALLEGRO_STANDIN_SECRET"
        )]
        client_secret: String,
        #[arg(long, default_value = "437848322")]
        seller_id: String,
        /// Access token lifetime (Allegro: 43199).
        #[arg(long, default_value_t = 43_199)]
        access_ttl_secs: u64,
        /// Refresh token lifetime (Allegro: 3 months).
        #[arg(long, default_value_t = 90 * 24 * 3600)]
        refresh_ttl_secs: u64,
        /// How long a used refresh token is still accepted (Allegro: 60).
        #[arg(long, default_value_t = 60)]
        refresh_grace_secs: u64,
        /// Device polling interval (Allegro: 5).
        #[arg(long, default_value_t = 5)]
        device_interval_secs: u64,
        /// Requests per client_id per sliding minute (Allegro: 9000).
        #[arg(long, default_value_t = 9_000)]
        client_per_minute: u32,
        /// Delay until batch commands finish, in milliseconds.
        #[arg(long, default_value_t = 1_000)]
        command_delay_ms: u64,
        /// Lines `SKU;name;price;stock` to seed offers from.
        #[arg(long)]
        seed_offers: Option<PathBuf>,
    },
}

fn seed(standin: &AllegroStandin, path: &PathBuf) -> anyhow::Result<usize> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(';').map(str::trim).collect();
        let sku = f[0];
        let name = f.get(1).copied().unwrap_or(sku);
        let price = f.get(2).copied().unwrap_or("10.00");
        let stock: i64 = match f.get(3) {
            Some(s) => s
                .parse()
                .with_context(|| format!("line {}: stock {s:?}", i + 1))?,
            None => 10,
        };
        standin
            .add_offer(NewOffer::new(sku, name, price, stock))
            .with_context(|| format!("line {}", i + 1))?;
        n += 1;
    }
    Ok(n)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let Cli {
        command:
            Command::Serve {
                listen,
                auth_listen,
                client_id,
                client_secret,
                seller_id,
                access_ttl_secs,
                refresh_ttl_secs,
                refresh_grace_secs,
                device_interval_secs,
                client_per_minute,
                command_delay_ms,
                seed_offers,
            },
    } = Cli::parse();
    let standin = AllegroStandin::start(AllegroOptions {
        listen,
        auth_listen,
        client_id,
        client_secret,
        seller_id,
        config: Config {
            access_ttl_secs,
            refresh_ttl_secs,
            refresh_grace_secs,
            device_interval_secs,
            client_per_minute,
            command_delay_ms,
            ..Config::default()
        },
        ..AllegroOptions::default()
    })
    .await
    .context("starting allegro-standin")?;
    if let Some(path) = seed_offers {
        let n = seed(&standin, &path)?;
        println!("seeded: {n} offers from {}", path.display());
    }
    println!("api: {}", standin.api_url());
    println!("auth: {}", standin.auth_url());
    println!("client_id: {}", standin.client_id());
    println!("seller_id: {}", standin.seller_id());
    println!("control: {}/", standin.control_url());
    wait_for_signal().await?;
    println!("stopping");
    standin.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C or, on Unix, SIGTERM.
async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for ctrl-c")?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("waiting for ctrl-c")
    }
}
