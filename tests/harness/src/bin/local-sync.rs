//! The whole sync on this machine, on embedded defaults: the AWS emulator,
//! the stack deployed into it from `infra/template.yaml`, the functions'
//! local host, the ERP stand-in (or a real SQL Server from `MSSQL_URL`), the
//! shop stand-ins (`--shop woocommerce|allegro|shoper`, repeatable, or `all`;
//! WooCommerce by default) and the agent, all on 127.0.0.1. State persists
//! in `.local/` across runs (an Allegro seller is linked again each run,
//! with `deploy.py allegro-authorize`). Prints where to look; ctrl-c stops
//! everything.

use clap::Parser;
use harness::cloud::{LocalCloud, start_agent};
use harness::paths::local_dir;
use harness::standins::{
    AllegroStandinProcess, OptimaStandin, ShoperStandinProcess, WooStandinProcess,
    joined_shop_parameters,
};

#[derive(Parser)]
#[command(about = "Runs the whole sync locally on embedded defaults")]
struct Args {
    /// Stack name inside the emulator.
    #[arg(long, default_value = "optima-sync-local")]
    stack: String,
    /// Agent heartbeat interval, seconds.
    #[arg(long, default_value_t = 10)]
    heartbeat_seconds: u64,
    /// Products in the ERP stand-in's company when it is first seeded.
    #[arg(long, default_value_t = 2000)]
    products: usize,
    /// The shops to run: woocommerce, allegro, shoper, or all (repeatable).
    #[arg(long = "shop", value_parser = ["woocommerce", "allegro", "shoper", "all"], default_value = "woocommerce")]
    shops: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runs = |platform: &str| args.shops.iter().any(|s| s == platform || s == "all");
    // The agent, the stand-ins and the functions' host run as processes.
    println!(
        "building the agent, the stand-ins and the functions (once; minutes on a fresh clone)…"
    );
    harness::paths::build_bins(&[
        "agent",
        "optima-standin",
        "woo-standin",
        "allegro-standin",
        "shoper-standin",
        "local-host",
    ])?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = local_dir();
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    // A real SQL Server when MSSQL_URL names one (connection string without
    // the password, which goes in MSSQL_PASSWORD), else the stand-in.
    let (erp, sql_connection, sql_password) = match std::env::var("MSSQL_URL") {
        Ok(url) => (
            None,
            url,
            std::env::var("MSSQL_PASSWORD").unwrap_or_default(),
        ),
        Err(_) => {
            println!(
                "starting the ERP stand-in (seeding {} products on first run)…",
                args.products
            );
            let erp = OptimaStandin::start(&dir.join("optima.sqlite"), args.products, &logs)?;
            let (conn, password) = (erp.connection_string.clone(), erp.password.clone());
            (Some(erp), conn, password)
        }
    };
    // The shop already sells the ERP's products (creating them is not the
    // sync's job): on first run its catalogue is made from the ERP's SKUs.
    let shop_state = dir.join("woo-shop.json");
    let erp_skus = match &erp {
        Some(erp) => Some(runtime.block_on(erp.skus())?),
        None => None,
    };
    let shop = if runs("woocommerce") {
        let seed = erp_skus.as_ref().filter(|_| !shop_state.exists());
        Some(WooStandinProcess::start_with(
            Some(&shop_state),
            seed.map(Vec::as_slice),
            None,
            &logs,
        )?)
    } else {
        None
    };
    // The seller's offers on Allegro carry the ERP's SKUs.
    let allegro = if runs("allegro") {
        Some(AllegroStandinProcess::start(
            erp_skus.as_deref().unwrap_or_default(),
            &logs,
        )?)
    } else {
        None
    };
    // The Shoper shop's product stocks carry the ERP's SKUs as codes.
    let shoper = if runs("shoper") {
        Some(ShoperStandinProcess::start(
            erp_skus.as_deref().unwrap_or_default(),
            &logs,
        )?)
    } else {
        None
    };
    let mut parameters = Vec::new();
    if let Some(shop) = &shop {
        parameters.push(shop.shop_parameters("sklep", "Detaliczna", &["MAG", "SKLEP"], 10, 10));
    }
    if let Some(allegro) = &allegro {
        parameters.push(allegro.shop_parameters("allegro", "Detaliczna", &["MAG", "SKLEP"]));
    }
    if let Some(shoper) = &shoper {
        parameters.push(shoper.shop_parameters("shoper", "Detaliczna", &["MAG", "SKLEP"]));
    }
    println!(
        "deploying infra/template.yaml as `{}` into the AWS emulator, starting the functions…",
        args.stack
    );
    let cloud = LocalCloud::start_with_host_args(
        &logs,
        &args.stack,
        Some(joined_shop_parameters(&parameters)?),
        // Orders in seconds, not a minute, when a webhook is lost locally.
        &["--schedule-every", "poller=10"],
    )?;
    // Orders placed in the shop flow through the webhook (and the poller).
    if let (Some(url), Some(shop)) = (&cloud.webhook_url, &shop) {
        runtime.block_on(shop.register_order_webhooks(&format!("{url}/sklep")))?;
    }
    if let (Some(url), Some(shoper)) = (&cloud.webhook_url, &shoper) {
        runtime.block_on(shoper.register_order_webhooks(&format!("{url}/shoper")))?;
    }
    // The Allegro seller linked as the operator links one.
    if let Some(allegro) = &allegro {
        runtime.block_on(allegro.authorize(&cloud.emulator.endpoint(), &args.stack, "allegro"))?;
    }
    // Secrets for a person at this machine, in a file only they can read.
    let env_file = dir.join("agent.env");
    std::fs::write(
        &env_file,
        format!(
            "OPTIMA_SYNC_SQL__PASSWORD={sql_password}\nADMIN_TOKEN={}\nWOO_CONSUMER_KEY={}\nWOO_CONSUMER_SECRET={}\n",
            cloud.admin_token,
            shop.as_ref().map_or("", |s| s.consumer_key.as_str()),
            shop.as_ref().map_or("", |s| s.consumer_secret.as_str())
        ),
    )?;
    #[cfg(unix)]
    std::fs::set_permissions(
        &env_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    let agent_config = dir.join("agent.toml");
    // Seconds, not minutes, between passes: a local run should show changes now.
    cloud.write_agent_config_with(
        &agent_config,
        "local-office",
        &sql_connection,
        args.heartbeat_seconds,
        &format!(
            "\n[sync]\npoll_seconds = 0.5\nstock_minutes = 5\nprices_minutes = 1\ncatalogue_minutes = 60\n{}",
            harness::LOCAL_ORDERS_TOML
        ),
    )?;
    let agent = start_agent(
        &agent_config,
        &cloud.emulator.endpoint(),
        &logs.join("agent.log"),
        &[("OPTIMA_SYNC_SQL__PASSWORD", sql_password.as_str())],
    )?;

    let endpoint = cloud.emulator.endpoint();
    // The console's first operator, signed in by a one-time link.
    let console_link = runtime
        .block_on(cloud.console_invite("biuro@optima-sync.test"))
        .map_err(|e| e.context("inviting the console's first operator"))?;
    println!();
    println!("the sync is running locally:");
    println!(
        "  console      : {}/console/ (first sign-in, once, within 30 minutes: {console_link})",
        cloud.admin_url
    );
    println!(
        "  admin status : curl -H 'Authorization: Bearer {}' {}/status",
        cloud.admin_token, cloud.admin_url
    );
    println!(
        "  AWS emulator : AWS_ENDPOINT_URL={endpoint} (stack description: {})",
        cloud.stack_file.display()
    );
    println!(
        "  ERP          : {sql_connection} (password in {}/agent.env)",
        dir.display()
    );
    if let Some(shop) = &shop {
        println!(
            "  shop         : {}/wp-json/wc/v3  (key {}, state: {}/__standin/state)",
            shop.base_url, shop.consumer_key, shop.base_url
        );
        if let Some(url) = &cloud.webhook_url {
            println!(
                "  shop webhook : {url}/sklep (order.created, order.updated; registered in the shop)"
            );
        }
    }
    if let Some(allegro) = &allegro {
        let offer = runtime
            .block_on(allegro.offers())?
            .into_iter()
            .find_map(|o| o["id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "OFFER_ID".into());
        println!(
            "  allegro      : {} (offers: {}/__standin/offers; the seller's tokens in secret {}-token-allegro)",
            allegro.api_url, allegro.api_url, args.stack
        );
        println!(
            "  allegro order: curl -X POST -H 'content-type: application/json' -d '{{\"lines\":[{{\"offer_id\":\"{offer}\",\"quantity\":1}}]}}' {}/__standin/orders",
            allegro.api_url
        );
    }
    if let Some(shoper) = &shoper {
        println!(
            "  shoper       : {}/webapi/rest (WebAPI user {}; products: {}/__standin/products)",
            shoper.base_url, shoper.login, shoper.base_url
        );
        if let Some(url) = &cloud.webhook_url {
            println!(
                "  shoper webhook: {url}/shoper (order.create/edit/paid/status; added in the shop)"
            );
        }
        let sku = erp_skus
            .as_ref()
            .and_then(|skus| skus.first().cloned())
            .unwrap_or_else(|| "SKU".into());
        println!(
            "  shoper order : curl -X POST -H 'content-type: application/json' -d '{{\"lines\":[{{\"code\":\"{sku}\",\"quantity\":1}}],\"paid\":true}}' {}/__standin/orders",
            shoper.base_url
        );
    }
    println!("  agent config : {}", agent_config.display());
    if let Some(erp) = &erp {
        println!(
            "  office       : cargo run -p optima-standin -- simulate --db {} --rate 1",
            erp.db.display()
        );
    }
    println!("  logs         : {}", logs.display());
    println!("press ctrl-c to stop everything");

    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    println!("stopping…");
    drop(agent);
    drop(shop);
    drop(allegro);
    drop(shoper);
    drop(erp);
    drop(cloud);
    Ok(())
}
