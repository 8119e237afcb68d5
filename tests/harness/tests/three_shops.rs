//! One deployment, three platforms: a WooCommerce shop, an Allegro seller
//! and a Shoper shop sell the same Optima products. A sale at the office
//! counter (FS + WZ in Optima) reaches all three as the stock plain SQL
//! reads after it, each through its own API (WooCommerce's batch, Allegro's
//! quantity command, Shoper's `/bulk`).

use std::time::{Duration, Instant};

use allegro_standin::{AllegroOptions, AllegroStandin, NewOffer};
use anyhow::Context;
use harness::cloud::{LocalCloud, start_agent};
use harness::expected::stock_by_plain_sql;
use harness::standins::{
    OptimaStandin, WooStandinProcess, allegro_shop_parameters, joined_shop_parameters,
    shoper_shop_parameters,
};
use harness::wait_for;
use optima_standin::simulator::Action;
use rust_decimal::Decimal;
use shoper_standin::{NewProduct, ShoperOptions, ShoperStandin};

const AGENT_TOML: &str = "\n[sync]\npoll_seconds = 1\noverlap_seconds = 5\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n";

/// What each shop shows of `sku`'s stock.
async fn shown(
    woo: &WooStandinProcess,
    allegro: &AllegroStandin,
    shoper: &ShoperStandin,
    sku: &str,
) -> anyhow::Result<[Option<Decimal>; 3]> {
    let woo_stock = woo
        .product(sku)
        .await?
        .and_then(|p| p["stock_quantity"].as_i64())
        .map(Decimal::from);
    let allegro_stock = allegro
        .offers_by_sku(sku)
        .first()
        .map(|o| Decimal::from(o.available));
    let shoper_stock = shoper.stock_by_code(sku).map(|s| s.stock);
    Ok([woo_stock, allegro_stock, shoper_stock])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_in_optima_reaches_woocommerce_allegro_and_shoper() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 40, &dir)?;
    let skus = erp.stocked_skus().await?;
    let sku = skus[0].clone();

    let woo = WooStandinProcess::start_with(None, Some(&skus), None, &dir)?;
    let mut options = AllegroOptions::default();
    options.config.command_delay_ms = 200;
    let allegro = AllegroStandin::start(options).await?;
    let shoper = ShoperStandin::start(ShoperOptions::default()).await?;
    for sku in &skus {
        allegro.add_offer(NewOffer::new(sku, sku, "1.00", 1))?;
        shoper.add_product(NewProduct::new(sku, sku, Decimal::ONE, 0))?;
    }
    let stack = "three-shops";
    let parameters = joined_shop_parameters(&[
        woo.shop_parameters("sklep", "Detaliczna", &["MAG"], 10, 10),
        allegro_shop_parameters(
            "allegro",
            &allegro.api_url(),
            allegro.client_id(),
            allegro.client_secret(),
            "Detaliczna",
            &["MAG"],
        ),
        shoper_shop_parameters(
            "shoper",
            &shoper.base_url(),
            (shoper.login(), shoper.password()),
            "klucz",
            "Detaliczna",
            &["MAG"],
        ),
    ])?;
    let cloud = LocalCloud::start_with(&dir, stack, Some(parameters))?;
    // The Allegro seller's tokens in the shop's own secret.
    let aws = harness::emulator::sdk_config(&cloud.emulator.endpoint()).await;
    let pair = allegro.issue_tokens(allegro.seller_id());
    aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(functions::token_secrets::secret_name(stack, "allegro"))
        .secret_string(
            serde_json::json!({
                "access_token": pair.access_token,
                "refresh_token": pair.refresh_token.context("a refresh token")?,
            })
            .to_string(),
        )
        .send()
        .await?;
    let config = dir.join("agent.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 30, AGENT_TOML)?;
    let _agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &dir.join("agent.log"),
        &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
    )?;

    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let in_optima = |records: Vec<contract::StockRecord>| -> anyhow::Result<Decimal> {
        let record = records
            .iter()
            .find(|r| r.sku == sku)
            .context("the SKU's stock")?;
        Ok((record.quantity - record.reserved).floor())
    };
    let before = in_optima(stock_by_plain_sql(&mut sql).await?)?;
    wait_for(
        "the first sync in all three shops",
        Duration::from_secs(120),
        || async {
            let now = shown(&woo, &allegro, &shoper, &sku).await?;
            Ok(now.iter().all(|s| *s == Some(before)).then_some(()))
        },
    )
    .await?;

    let sold_at = Instant::now();
    erp.perform(Action::Sale {
        sku: sku.clone(),
        warehouse: "MAG".into(),
        qty: Decimal::from(3),
        receipt: false,
    })
    .await?;
    let after = in_optima(stock_by_plain_sql(&mut sql).await?)?;
    assert_eq!(after, before - Decimal::from(3), "the sale took 3 off");
    let reached = std::sync::Mutex::new([None; 3]);
    wait_for(
        "the sale in all three shops",
        Duration::from_secs(60),
        || async {
            let now = shown(&woo, &allegro, &shoper, &sku).await?;
            let mut reached = reached.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            for (at, stock) in reached.iter_mut().zip(now) {
                if at.is_none() && stock == Some(after) {
                    *at = Some(sold_at.elapsed());
                }
            }
            Ok(reached.iter().all(Option::is_some).then_some(()))
        },
    )
    .await?;
    let reached = reached.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    println!(
        "a sale in Optima reached WooCommerce after {:?}, Allegro after {:?}, Shoper after {:?}",
        reached[0], reached[1], reached[2]
    );
    Ok(())
}
