//! `shoper-standin serve --listen ADDR [--login L --password P] [--shop-domain D] [--license K]
//! [--token-ttl-secs N] [--bucket-limit N] [--bucket-bandwidth N] [--bulk-cost-per-operation]
//! [--timezone ZONE] [--webhook-url URL]... [--webhook-secret S] [--webhook-events E,E]
//! [--webhook-format 0|1] [--appstore-secret S] [--panel-token] [--seed-products FILE]`: runs the
//! Shoper stand-in until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rust_decimal::Decimal;
use shoper_standin::{Config, NewProduct, NewWebhook, ShoperOptions, ShoperStandin};

#[derive(Parser)]
#[command(
    name = "shoper-standin",
    about = "A local stand-in of the Shoper REST API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve until killed.
    Serve(Box<Serve>),
}

#[derive(clap::Args)]
struct Serve {
    #[arg(long, default_value = "127.0.0.1:8083")]
    listen: SocketAddr,
    /// WebAPI user login (`/auth` Basic user or client_id).
    #[arg(long, default_value = "webapi")]
    login: String,
    /// WebAPI user password.
    #[arg(
        long,
        default_value = "standin-password",
        env = "SHOPER_STANDIN_PASSWORD"
    )]
    password: String,
    /// `X-Shop-Domain` of webhook deliveries.
    #[arg(long, default_value = "sklep-standin.shoparena.pl")]
    shop_domain: String,
    /// `X-Shop-License` of webhook deliveries (40 hex characters).
    #[arg(long, default_value = "5d7a0e3f1c2b4a69880f7e6d5c4b3a2918070605")]
    license: String,
    /// Lifetime of `/auth` tokens (observed: 2592000 = 30 days).
    #[arg(long, default_value_t = 2_592_000)]
    token_ttl_secs: u64,
    /// Bucket capacity, `X-Shop-Api-Limit`.
    #[arg(long, default_value_t = 10)]
    bucket_limit: u32,
    /// Bucket leak per second, `X-Shop-Api-Bandwidth` (2 for /auth tokens; 10 seen with panel tokens).
    #[arg(long, default_value_t = 2)]
    bucket_bandwidth: u32,
    /// A /bulk call costs one bucket unit per sub-request.
    #[arg(long)]
    bulk_cost_per_operation: bool,
    /// `locale_timezone` of the shop (UTC or a European zone such as Europe/Warsaw).
    #[arg(long, default_value = "Europe/Warsaw")]
    timezone: String,
    /// Deliver webhooks to this URL (repeatable: one webhook per URL).
    #[arg(long = "webhook-url")]
    webhook_urls: Vec<String>,
    /// The webhooks' secret ("Klucz").
    #[arg(long, default_value = "", env = "SHOPER_STANDIN_WEBHOOK_SECRET")]
    webhook_secret: String,
    /// Events of those webhooks, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "order.create,order.edit,order.paid,order.status"
    )]
    webhook_events: Vec<String>,
    /// 0 JSON, 1 XML.
    #[arg(long, default_value_t = 0)]
    webhook_format: u8,
    /// AppStore app mode: derive webhook secrets per shop with this app secret.
    #[arg(long, env = "SHOPER_STANDIN_APPSTORE_SECRET")]
    appstore_secret: Option<String>,
    /// Mint a panel integration token at start and print it.
    #[arg(long)]
    panel_token: bool,
    /// Lines `SKU;name;price;stock` to seed products from.
    #[arg(long)]
    seed_products: Option<PathBuf>,
}

fn seed(standin: &ShoperStandin, path: &PathBuf) -> anyhow::Result<usize> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(';').map(str::trim).collect();
        let sku = f.first().copied().unwrap_or_default();
        let name = f.get(1).copied().unwrap_or(sku);
        let price = Decimal::from_str(f.get(2).copied().unwrap_or("10.00"))
            .with_context(|| format!("line {}: price", i + 1))?;
        let stock: i64 = match f.get(3) {
            Some(s) => s
                .parse()
                .with_context(|| format!("line {}: stock {s:?}", i + 1))?,
            None => 10,
        };
        standin
            .add_product(NewProduct::new(sku, name, price, stock))
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
        command: Command::Serve(s),
    } = Cli::parse();
    let webhooks = s
        .webhook_urls
        .iter()
        .map(|url| NewWebhook {
            url: url.clone(),
            secret: s.webhook_secret.clone(),
            events: s.webhook_events.clone(),
            format: s.webhook_format,
            active: true,
        })
        .collect();
    let standin = ShoperStandin::start(ShoperOptions {
        listen: s.listen,
        login: s.login.clone(),
        password: s.password.clone(),
        shop_domain: s.shop_domain.clone(),
        license: s.license.clone(),
        config: Config {
            token_ttl_secs: s.token_ttl_secs,
            bucket_limit: s.bucket_limit,
            bucket_bandwidth: s.bucket_bandwidth,
            bulk_cost_per_operation: s.bulk_cost_per_operation,
            locale_timezone: s.timezone.clone(),
            appstore_secret: s.appstore_secret.clone(),
            ..Config::default()
        },
        webhooks,
        ..ShoperOptions::default()
    })
    .await
    .context("starting shoper-standin")?;
    if let Some(path) = &s.seed_products {
        let n = seed(&standin, path)?;
        println!("seeded: {n} products from {}", path.display());
    }
    println!("api: {}", standin.api_url());
    println!("login: {}", standin.login());
    println!("shop_domain: {}", standin.shop_domain());
    for w in standin.webhooks() {
        println!(
            "webhook {}: {} ({})",
            w.webhook_id,
            w.url,
            w.events.join(",")
        );
    }
    if s.panel_token {
        println!(
            "panel_token: {}",
            standin.issue_panel_token(None).access_token
        );
    }
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
