//! `woo-standin serve --listen ADDR [--key K --secret S] [--rate-limit N] [--state FILE]
//! [--seed-products-from-skus FILE]`: runs the WooCommerce stand-in until killed.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use woo_standin::{WooOptions, WooStandin};

#[derive(Parser)]
#[command(name = "woo-standin", about = "A WooCommerce REST API v3 stand-in")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve until killed.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        #[arg(long, default_value = "ck_standin")]
        key: String,
        #[arg(long, default_value = "cs_standin")]
        secret: String,
        /// Requests per rolling second before 429.
        #[arg(long)]
        rate_limit: Option<u32>,
        /// JSON file to keep the shop across restarts.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Lines `SKU[;name[;price[;stock[;tax_class]]]]`.
        #[arg(long)]
        seed_products_from_skus: Option<PathBuf>,
        /// Also serve the Shipment Tracking extension's API.
        #[arg(long)]
        shipment_tracking: bool,
        /// Delay before webhook deliveries, in milliseconds.
        #[arg(long, default_value_t = 50)]
        webhook_delay_ms: u64,
        /// Decimals of prices and order amounts (`woocommerce_price_num_decimals`).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=6))]
        price_decimals: u32,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            key,
            secret,
            rate_limit,
            state,
            seed_products_from_skus,
            shipment_tracking,
            webhook_delay_ms,
            price_decimals,
        } => {
            let standin = WooStandin::start(WooOptions {
                listen,
                consumer_key: key,
                consumer_secret: secret,
                rate_limit_per_sec: rate_limit,
                state_file: state,
                shipment_tracking,
                webhook_delay: std::time::Duration::from_millis(webhook_delay_ms),
                price_decimals,
                ..WooOptions::default()
            })
            .await
            .context("starting woo-standin")?;
            if let Some(seed) = seed_products_from_skus {
                let n = standin
                    .seed_from_file(&seed)
                    .with_context(|| format!("seeding from {}", seed.display()))?;
                println!("seeded: {n} products from {}", seed.display());
            }
            println!("listening: {}", standin.base_url());
            println!("api: {}", standin.api_url());
            println!("consumer_key: {}", standin.consumer_key());
            // The caller gave the secret (or left the documented default);
            // it does not belong in a log.
            println!("control: {}/__standin/", standin.base_url());
            wait_for_signal().await?;
            println!("stopping (state saved if --state was given)");
            standin.shutdown().await;
            Ok(())
        }
    }
}

/// Waits for Ctrl-C or, on Unix, SIGTERM (so `kill PID` still saves the state file).
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
