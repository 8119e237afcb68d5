//! The console's pages under a full state table: N products (each with its
//! ERP records, what the shop should show and what it holds; one in a
//! hundred parked) and M orders (stored, listed and indexed for search as
//! the webhook stores them; one in fifty parked) written into the local
//! stack's table through the functions' own writers, then every page asked
//! for in turn by a signed-in operator, `--rounds` times. Prints p50, p95
//! and max per page, and counts the table scans the admin function made
//! (the emulator's IAM log: every DynamoDB call with its action).
//!
//! `cargo build --release -p local-host -p harness --bins` then
//! `./target/release/bench-console --products 100000 --orders 10000`.
//! A benchmark, not a test: it fails only when a page does not answer 200
//! or a scan is seen.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Parser;
use contract::{
    Address, Buyer, Order, OrderLine, OrderState, PriceKind, PriceRecord, ProductRecord,
    StockRecord, VatRate,
};
use functions::catalog::{Catalog, SkuState};
use functions::mapping::{ProductChanges, ShopProductState};
use functions::orders::OrderStore;
use futures::StreamExt;
use harness::bench::{git_commit, load_average, percentile, round};
use harness::cloud::LocalCloud;
use harness::paths::local_dir;
use harness::standins::WooStandinProcess;
use rust_decimal::Decimal;

#[derive(Parser)]
#[command(about = "Benchmarks the console's pages with a full state table")]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    products: usize,
    #[arg(long, default_value_t = 10_000)]
    orders: usize,
    /// Times each page is asked for (after two unmeasured).
    #[arg(long, default_value_t = 40)]
    rounds: usize,
    /// Keep the working folder.
    #[arg(long)]
    keep: bool,
}

const SHOP: &str = "sklep";
/// Writes in flight while seeding.
const SEED_CONCURRENCY: usize = 8;

fn sku(i: usize) -> String {
    format!("BENCH-{i:06}")
}

fn sku_state(sku: &str, i: usize) -> anyhow::Result<SkuState> {
    let now = Utc::now();
    let vat = VatRate::Percent(Decimal::from(23));
    let mut state = SkuState::default();
    let product = ProductRecord {
        sku: sku.to_owned(),
        erp_id: i as i64 + 1,
        name: format!("Produkt testowy {i}"),
        ean: Some(format!("590{i:010}")),
        extra_eans: Vec::new(),
        unit: "szt".into(),
        vat,
        group_path: vec!["Kawa".into(), "Ziarnista".into()],
        active: true,
        description: None,
        modified_at: Some(now),
    };
    let price = PriceRecord {
        sku: sku.to_owned(),
        price_list: "Detaliczna".into(),
        kind: PriceKind::Gross,
        value: Decimal::new(4999 + (i % 500) as i64, 2),
        currency: "PLN".into(),
        vat,
    };
    let stock = StockRecord {
        sku: sku.to_owned(),
        warehouse: "MAG".into(),
        quantity: Decimal::from((i % 40) as i64),
        reserved: Decimal::ZERO,
        read_at: now,
    };
    state.merge("product", serde_json::to_value(&product)?, now, None);
    state.merge(
        "price#Detaliczna",
        serde_json::to_value(vec![&price])?,
        now,
        None,
    );
    state.merge("stock#MAG", serde_json::to_value(vec![&stock])?, now, None);
    state.queued.insert(
        SHOP.into(),
        (
            ShopProductState {
                sku: sku.to_owned(),
                regular_price: Some(price.value),
                stock_quantity: Some((i % 40) as i64),
                visible: true,
                name: product.name.clone(),
                category: Some("Kawa/Ziarnista".into()),
                category_path: None,
                tax_class: None,
                unit: None,
            },
            now.timestamp_millis(),
        ),
    );
    Ok(state)
}

fn order(i: usize) -> anyhow::Result<Order> {
    let now = Utc::now();
    let surname = ["Nowak", "Kowalska", "Wiśniewski", "Wójcik", "Kamińska"][i % 5];
    let address = Address {
        name: format!("Anna {surname}"),
        company: None,
        street: "ul. Lipowa 7".into(),
        city: "Poznań".into(),
        postcode: "60-001".into(),
        country: "PL".into(),
        phone: None,
    };
    let gross = Decimal::new(12_300, 2);
    Ok(Order {
        shop: SHOP.into(),
        order_id: (100_000 + i).to_string(),
        number: (100_000 + i).to_string(),
        revision: now,
        placed_at: now,
        status: "processing".into(),
        state: OrderState::Paid,
        paid: true,
        currency: "PLN".into(),
        payment_method: "bacs".into(),
        payment_form: None,
        buyer: Buyer {
            email: Some(format!("kupujacy{i}@example.pl")),
            nip: None,
            billing: address.clone(),
            shipping: Some(address),
        },
        lines: vec![OrderLine {
            sku: sku(i % 1000),
            name: "Produkt".into(),
            quantity: Decimal::ONE,
            vat: VatRate::Percent(Decimal::from(23)),
            unit_price_gross: gross,
            total_net: Decimal::new(10_000, 2),
            total_vat: Decimal::new(2_300, 2),
            total_gross: gross,
            discount_gross: Decimal::ZERO,
        }],
        shipping: None,
        discount_gross: Decimal::ZERO,
        total_net: Decimal::new(10_000, 2),
        total_vat: Decimal::new(2_300, 2),
        total_gross: gross,
        customer_note: None,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = local_dir().join("bench-console");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let shop = WooStandinProcess::start_with(None, Some(&[]), None, &root)?;
    let cloud = LocalCloud::start_with(
        &root,
        "bench-console",
        Some(shop.shop_parameters(SHOP, "Detaliczna", &["MAG"], 20, 20)),
    )?;
    let config = harness::emulator::sdk_config(&cloud.emulator.endpoint()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = cloud.stack.output("StateTableName")?.to_owned();
    let catalog = Catalog::new(dynamodb.clone(), table.clone());
    let orders = OrderStore::new(dynamodb.clone(), table.clone(), 30);

    let started = Instant::now();
    let chunks: Vec<Vec<usize>> = (0..args.products)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(<[usize]>::to_vec)
        .collect();
    let mut seeded = futures::stream::iter(chunks.into_iter().map(|chunk| {
        let catalog = catalog.clone();
        async move {
            let mut writes = Vec::new();
            for i in chunk {
                let sku = sku(i);
                writes.push(catalog.state_write(&sku, &sku_state(&sku, i)?)?);
                let held = ProductChanges {
                    stock_quantity: Some((i % 40) as i64),
                    regular_price: Some(Decimal::new(4999 + (i % 500) as i64, 2)),
                    visible: Some(true),
                    ..ProductChanges::default()
                };
                writes.push(catalog.held_write(SHOP, &sku, &held, Utc::now()));
                if i % 100 == 0 {
                    writes.extend(catalog.parked_writes(
                        SHOP,
                        &sku,
                        &["VAT 23% has no tax class in the shop".into()],
                    ));
                }
            }
            catalog.write_all(writes).await?;
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(SEED_CONCURRENCY);
    while let Some(done) = seeded.next().await {
        done?;
    }
    let products_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut stored = futures::stream::iter((0..args.orders).map(|i| {
        let orders = orders.clone();
        async move {
            let order = order(i)?;
            orders.store(&order, false).await?;
            if i % 50 == 0 {
                orders
                    .park(
                        SHOP,
                        &order.order_id,
                        &order.number,
                        "unknown SKU NIE-MA in Optima",
                    )
                    .await?;
            }
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(SEED_CONCURRENCY);
    while let Some(done) = stored.next().await {
        done?;
    }
    let orders_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "seeded {} products in {:.0} s and {} orders in {:.0} s",
        args.products, products_seconds, args.orders, orders_seconds
    );

    // A signed-in operator: the link's session reads every page.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let link = cloud.console_invite("bench@optima-sync.test").await?;
    let token = link.split_once('#').context("a token in the link")?.1;
    let redeemed = http
        .post(format!("{}/console/link", cloud.admin_url))
        .form(&[("token", token)])
        .send()
        .await?;
    let cookie = redeemed
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-console="))
        .and_then(|v| v.split(';').next())
        .context("a session cookie")?
        .to_owned();

    let middle = args.orders / 2;
    let pages: Vec<(&str, String)> = vec![
        ("overview", "/console/".into()),
        ("orders (latest 50)", "/console/orders".into()),
        (
            "orders, parked filter",
            "/console/orders?state=parked".into(),
        ),
        (
            "orders, search by e-mail",
            format!("/console/orders?q=kupujacy{middle}@example.pl"),
        ),
        (
            "orders, search by SKU",
            format!("/console/orders?q={}", sku(7)),
        ),
        (
            "an order",
            format!("/console/orders/{SHOP}/{}", 100_000 + middle),
        ),
        ("products (parked list)", "/console/products".into()),
        (
            "a product",
            format!("/console/products?sku={}", sku(args.products / 2)),
        ),
        ("sync", "/console/sync".into()),
        ("log", "/console/log".into()),
    ];
    let mut results = Vec::new();
    for (name, path) in &pages {
        let mut times = Vec::new();
        for round_no in 0..args.rounds + 2 {
            let started = Instant::now();
            let answer = http
                .get(format!("{}{path}", cloud.admin_url))
                .header(reqwest::header::COOKIE, &cookie)
                .send()
                .await?;
            let status = answer.status();
            let body = answer.text().await?;
            let took = started.elapsed();
            if status != 200 {
                bail!("{name} ({path}) answered {status}: {body}");
            }
            if round_no >= 2 {
                times.push(took.as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        results.push((
            *name,
            percentile(&times, 50.0).unwrap_or_default(),
            percentile(&times, 95.0).unwrap_or_default(),
            times.last().copied().unwrap_or_default(),
        ));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let calls = harness::iam::read_calls(cloud.emulator.iam_calls_file())?;
    let scans = calls.iter().filter(|c| c.action == "dynamodb:Scan").count();

    println!(
        "commit {} · {} products, {} orders · {} rounds a page · load {}",
        git_commit(),
        args.products,
        args.orders,
        args.rounds,
        load_average()
    );
    println!("| page | p50 ms | p95 ms | max ms |");
    println!("|---|---:|---:|---:|");
    for (name, p50, p95, max) in &results {
        println!(
            "| {name} | {} | {} | {} |",
            round(*p50, 1),
            round(*p95, 1),
            round(*max, 1)
        );
    }
    println!("DynamoDB scans by any identity: {scans}");
    if !args.keep {
        let _ = std::fs::remove_dir_all(&root);
    }
    if scans > 0 {
        bail!("{scans} table scan(s) seen");
    }
    Ok(())
}
