//! Release benchmark of the stand-in through tiberius (not a timed test):
//!
//!     cargo bench -p optima-standin --bench standin
//!
//! Seeds `STANDIN_BENCH_PRODUCTS` products (default 100,000), then prints
//! rows per second for a full catalogue read and the time of the agent's
//! typical stock query (latest TwrIlosci row per item and warehouse for
//! 1,000 item ids, as an IN list of parameters).

use std::time::{Duration, Instant};

use optima_standin::erp;
use optima_standin::seed::{SeedOptions, seed_database};
use tiberius::ToSql;

const CATALOGUE: &str = "SELECT t.Twr_TwrId, t.Twr_Kod, t.Twr_Nazwa, t.Twr_EAN, t.Twr_JM, t.Twr_Stawka, t.Twr_TwGGIDNumer, \
    t.Twr_NieAktywny, t.Twr_TS_Mod, c.TwC_Wartosc \
    FROM CDN.Towary t WITH (NOLOCK) LEFT JOIN CDN.TwrCeny c WITH (NOLOCK) ON c.TwC_TwrID = t.Twr_TwrId AND c.TwC_TwCNumer = 2 \
    ORDER BY t.Twr_TwrId";

fn stock_sql(n: usize) -> String {
    let list: Vec<String> = (1..=n).map(|i| format!("@P{i}")).collect();
    format!(
        "SELECT i.TwI_TwrId, i.TwI_MagId, i.TwI_Ilosc, i.TwI_Rezerwacje, i.TwI_Ilosc - i.TwI_Rezerwacje - i.TwI_RezerwacjeZlecenia AS dostepne \
         FROM CDN.TwrIlosci i WITH (NOLOCK) \
         WHERE i.TwI_MagId IS NOT NULL AND i.TwI_TwrId IN ({}) \
         AND i.TwI_Data = (SELECT MAX(i2.TwI_Data) FROM CDN.TwrIlosci i2 WHERE i2.TwI_TwrId = i.TwI_TwrId AND i2.TwI_MagId = i.TwI_MagId AND i2.TwI_Data <= GETDATE())",
        list.join(", ")
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let products: usize = std::env::var("STANDIN_BENCH_PRODUCTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.sqlite");
    let t = Instant::now();
    let report = seed_database(&db, &SeedOptions { products, seed: 1 })?;
    println!(
        "seed: {} products, {} stock rows in {:.1} s",
        report.products,
        report.stock_rows,
        t.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = erp::start_standin(&db, None).await?;
        let mut c = erp::connect(&server.ado_connection_string()).await?;

        let mut times = Vec::new();
        let mut rows = 0usize;
        for _ in 0..3 {
            let t = Instant::now();
            let rs = c.simple_query(CATALOGUE).await?.into_first_result().await?;
            times.push(t.elapsed());
            rows = rs.len();
        }
        let best = *times.iter().min().unwrap_or(&Duration::ZERO);
        println!(
            "full catalogue read: {rows} rows (10 columns, with the retail price) in {:.3} s best of 3 = {:.0} rows/s",
            best.as_secs_f64(),
            rows as f64 / best.as_secs_f64()
        );

        let n = 1000.min(products);
        let sql = stock_sql(n);
        let ids: Vec<i32> = (0..n).map(|i| (i * (products / n)) as i32 + 1).collect();
        let params: Vec<&dyn ToSql> = ids.iter().map(|i| i as &dyn ToSql).collect();
        let mut times = Vec::new();
        let mut rows = 0usize;
        for _ in 0..21 {
            let t = Instant::now();
            let rs = c.query(&sql, &params).await?.into_first_result().await?;
            times.push(t.elapsed());
            rows = rs.len();
        }
        println!(
            "stock of {n} items by id (IN list of {n} parameters, latest TwrIlosci row per item/warehouse): {rows} rows, median {:.1} ms of 21",
            median(times).as_secs_f64() * 1000.0
        );
        server.shutdown().await;
        anyhow::Ok(())
    })?;
    Ok(())
}
