//! Every SQL statement the agent runs against Comarch ERP Optima, and the
//! projection of its rows into contract records.
//!
//! Reads run at READ COMMITTED (never NOLOCK: a dirty read could publish
//! stock from a document that is then rolled back) with `SET LOCK_TIMEOUT`,
//! so a read that meets an office lock gives up quickly and is retried on
//! the next pass instead of queueing behind it; no statement opens a
//! transaction, so shared locks are held row by row only. Reads go by keyset
//! pages or id lists of a few hundred, which keeps each statement short.
//! Codes are varchar in Optima and tiberius sends `&str` as nvarchar, so
//! comparisons against varchar columns `CAST` the parameter to keep index
//! seeks. Rows are decoded by column name and the types the server reports,
//! never by assumed widths (they differ between Optima versions).
//! Services (`Twr_Typ = 0`, e.g. the shipping item of shop orders) have no
//! stock and are not shop products: the read side skips them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use contract::{PriceKind, PriceRecord, ProductRecord, StockRecord, VatRate};
use rust_decimal::Decimal;
use tiberius::{Query, Row};
use tracing::warn;

use crate::sql::{SqlClient, SqlError};

pub mod orders;

/// Largest id list in one statement (SQL Server allows 2,100 parameters).
pub const IDS_PER_STATEMENT: usize = 500;

/// Per-session settings sent once after connecting.
pub const SESSION_SETTINGS: &str =
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; SET LOCK_TIMEOUT 5000; SET NOCOUNT ON;";

/// Optima's `datetime` columns hold the office's local time; the office is
/// in Poland, so they are read as Europe/Warsaw-less naive times and treated
/// as UTC offsets only for ordering. Cursors compare naive times as read.
fn naive_to_utc(t: NaiveDateTime) -> DateTime<Utc> {
    Utc.from_utc_datetime(&t)
}

fn placeholders(start: usize, count: usize) -> String {
    (start..start + count)
        .map(|i| format!("@P{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Statements run and rows read since the process started, for the cost
/// figures `tracing` reports (a cursor poll's cost is the difference).
pub static STATEMENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub static ROWS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn fetch(client: &mut SqlClient, query: Query<'_>) -> Result<Vec<Row>, SqlError> {
    use std::sync::atomic::Ordering::Relaxed;
    let rows = query.query(client).await?.into_first_result().await?;
    STATEMENTS.fetch_add(1, Relaxed);
    ROWS.fetch_add(rows.len() as u64, Relaxed);
    Ok(rows)
}

/// Maps `TwG_GIDNumer` to the group's path from the root's children down.
pub async fn group_paths(client: &mut SqlClient) -> Result<HashMap<i32, Vec<String>>, SqlError> {
    let rows = fetch(
        client,
        Query::new("SELECT TwG_GIDNumer, TwG_GrONumer, TwG_Nazwa, TwG_Kod FROM CDN.TwrGrupy WHERE TwG_GIDTyp = -16"),
    )
    .await?;
    let mut nodes: HashMap<i32, (i32, String)> = HashMap::new();
    for row in &rows {
        let (Some(id), Some(parent)) = (
            row.get::<i32, _>("TwG_GIDNumer"),
            row.get::<i32, _>("TwG_GrONumer"),
        ) else {
            continue;
        };
        let name = row
            .get::<&str, _>("TwG_Nazwa")
            .or_else(|| row.get::<&str, _>("TwG_Kod"))
            .unwrap_or_default()
            .to_owned();
        nodes.insert(id, (parent, name));
    }
    let mut paths = HashMap::new();
    for &id in nodes.keys() {
        let mut path = Vec::new();
        let mut current = id;
        // The root (0) is its own parent; a cycle in bad data stops at 16 levels.
        for _ in 0..16 {
            if current == 0 {
                break;
            }
            let Some((parent, name)) = nodes.get(&current) else {
                break;
            };
            path.push(name.clone());
            current = *parent;
        }
        path.reverse();
        paths.insert(id, path);
    }
    Ok(paths)
}

/// Product ids in id order after `after`, at most `limit` (a catalogue page).
pub async fn product_ids_page(
    client: &mut SqlClient,
    after: i32,
    limit: usize,
) -> Result<Vec<i32>, SqlError> {
    let mut query = Query::new(format!(
        "SELECT TOP ({limit}) Twr_TwrId FROM CDN.Towary WHERE Twr_TwrId > @P1 AND Twr_Typ <> 0 ORDER BY Twr_TwrId"
    ));
    query.bind(after);
    Ok(fetch(client, query)
        .await?
        .iter()
        .filter_map(|r| r.get::<i32, _>("Twr_TwrId"))
        .collect())
}

/// Product ids for SKUs (codes); unknown codes are simply absent.
pub async fn product_ids_for_skus(
    client: &mut SqlClient,
    skus: &[String],
) -> Result<Vec<i32>, SqlError> {
    let mut ids = Vec::new();
    for chunk in skus.chunks(IDS_PER_STATEMENT) {
        let list = (1..=chunk.len())
            .map(|i| format!("CAST(@P{i} AS varchar(50))"))
            .collect::<Vec<_>>()
            .join(",");
        let mut query = Query::new(format!(
            "SELECT Twr_TwrId FROM CDN.Towary WHERE Twr_Kod IN ({list}) AND Twr_Typ <> 0"
        ));
        for sku in chunk {
            query.bind(sku.as_str());
        }
        ids.extend(
            fetch(client, query)
                .await?
                .iter()
                .filter_map(|r| r.get::<i32, _>("Twr_TwrId")),
        );
    }
    Ok(ids)
}

/// Products changed (`Twr_TS_Mod`) after `since`, with their newest stamp.
pub async fn products_modified_since(
    client: &mut SqlClient,
    since: NaiveDateTime,
) -> Result<(Vec<i32>, Option<NaiveDateTime>), SqlError> {
    let mut query = Query::new(
        "SELECT Twr_TwrId, Twr_TS_Mod FROM CDN.Towary WHERE Twr_TS_Mod > @P1 AND Twr_Typ <> 0",
    );
    query.bind(since);
    let rows = fetch(client, query).await?;
    let newest = rows
        .iter()
        .filter_map(|r| r.get::<NaiveDateTime, _>("Twr_TS_Mod"))
        .max();
    Ok((
        rows.iter()
            .filter_map(|r| r.get::<i32, _>("Twr_TwrId"))
            .collect(),
        newest,
    ))
}

/// Items on documents changed (`TrN_TS_Mod`) after `since`: sales, receipts,
/// goods issues, deliveries, reservations, cancellations. Returns the item
/// ids and the newest stamp seen.
pub async fn items_on_documents_since(
    client: &mut SqlClient,
    since: NaiveDateTime,
) -> Result<(Vec<i32>, Option<NaiveDateTime>), SqlError> {
    let mut docs =
        Query::new("SELECT TrN_TrNID, TrN_TS_Mod FROM CDN.TraNag WHERE TrN_TS_Mod > @P1");
    docs.bind(since);
    let rows = fetch(client, docs).await?;
    let newest = rows
        .iter()
        .filter_map(|r| r.get::<NaiveDateTime, _>("TrN_TS_Mod"))
        .max();
    let doc_ids: Vec<i32> = rows
        .iter()
        .filter_map(|r| r.get::<i32, _>("TrN_TrNID"))
        .collect();
    let mut items = Vec::new();
    for chunk in doc_ids.chunks(IDS_PER_STATEMENT) {
        let mut query = Query::new(format!(
            "SELECT DISTINCT TrE_TwrId FROM CDN.TraElem JOIN CDN.Towary ON Twr_TwrId = TrE_TwrId WHERE TrE_TrNId IN ({}) AND Twr_Typ <> 0",
            placeholders(1, chunk.len())
        ));
        for id in chunk {
            query.bind(*id);
        }
        items.extend(
            fetch(client, query)
                .await?
                .iter()
                .filter_map(|r| r.get::<i32, _>("TrE_TwrId")),
        );
    }
    items.sort_unstable();
    items.dedup();
    Ok((items, newest))
}

/// The server's clock, so cursors never depend on the agent's.
pub async fn server_now(client: &mut SqlClient) -> Result<NaiveDateTime, SqlError> {
    let rows = fetch(client, Query::new("SELECT GETDATE() AS now")).await?;
    rows.first()
        .and_then(|r| r.get::<NaiveDateTime, _>("now"))
        .ok_or_else(|| SqlError::Unexpected("GETDATE() returned no row".into()))
}

fn vat_of(rate: Option<Decimal>, flag: Option<i16>) -> Result<VatRate, String> {
    // Twr_Flaga 1 marks exempt goods (zw); otherwise Twr_Stawka is the percentage.
    match (flag, rate) {
        (Some(1), _) => Ok(VatRate::Exempt),
        (_, Some(rate)) => rate
            .to_string()
            .parse()
            .map_err(|e: contract::ContractError| e.to_string()),
        (_, None) => Err("no VAT rate (Twr_Stawka is NULL)".into()),
    }
}

/// Projects products by id (any number; chunked).
pub async fn products(
    client: &mut SqlClient,
    ids: &[i32],
    groups: &HashMap<i32, Vec<String>>,
) -> Result<Vec<ProductRecord>, SqlError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let list = placeholders(1, chunk.len());
        let mut query = Query::new(format!(
            "SELECT Twr_TwrId, Twr_Kod, Twr_Nazwa, Twr_EAN, Twr_Opis, Twr_JM, Twr_TwGGIDNumer, Twr_Stawka, Twr_Flaga, Twr_NieAktywny, Twr_TS_Mod \
             FROM CDN.Towary WHERE Twr_TwrId IN ({list}) ORDER BY Twr_TwrId"
        ));
        for id in chunk {
            query.bind(*id);
        }
        let rows = fetch(client, query).await?;
        let mut eans_query = Query::new(format!(
            "SELECT TwE_TwrID, TwE_EAN FROM CDN.TwrEan WHERE TwE_TwrID IN ({list}) ORDER BY TwE_TwrID, TwE_EAN"
        ));
        for id in chunk {
            eans_query.bind(*id);
        }
        let mut extra: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for row in fetch(client, eans_query).await? {
            if let (Some(id), Some(ean)) = (
                row.get::<i32, _>("TwE_TwrID"),
                row.get::<&str, _>("TwE_EAN"),
            ) {
                extra.entry(id).or_default().push(ean.trim().to_owned());
            }
        }
        for row in &rows {
            let id = row.get::<i32, _>("Twr_TwrId").unwrap_or_default();
            let Some(sku) = row.get::<&str, _>("Twr_Kod").map(|s| s.trim().to_owned()) else {
                warn!(erp_id = id, "product without a code skipped");
                continue;
            };
            let vat = match vat_of(
                row.get::<Decimal, _>("Twr_Stawka"),
                row.get::<i16, _>("Twr_Flaga"),
            ) {
                Ok(vat) => vat,
                Err(reason) => {
                    warn!(%sku, %reason, "product skipped: its VAT rate cannot be read");
                    continue;
                }
            };
            let ean = row
                .get::<&str, _>("Twr_EAN")
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned);
            out.push(ProductRecord {
                sku,
                erp_id: i64::from(id),
                name: row
                    .get::<&str, _>("Twr_Nazwa")
                    .unwrap_or_default()
                    .to_owned(),
                ean,
                extra_eans: extra.remove(&id).unwrap_or_default(),
                unit: row
                    .get::<&str, _>("Twr_JM")
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                vat,
                group_path: row
                    .get::<i32, _>("Twr_TwGGIDNumer")
                    .and_then(|g| groups.get(&g).cloned())
                    .unwrap_or_default(),
                active: row.get::<u8, _>("Twr_NieAktywny").unwrap_or(0) == 0,
                description: row
                    .get::<&str, _>("Twr_Opis")
                    .map(str::to_owned)
                    .filter(|d| !d.is_empty()),
                modified_at: row.get::<NaiveDateTime, _>("Twr_TS_Mod").map(naive_to_utc),
            });
        }
    }
    Ok(out)
}

/// Projects every price-list price of the given products.
pub async fn prices(client: &mut SqlClient, ids: &[i32]) -> Result<Vec<PriceRecord>, SqlError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let mut query = Query::new(format!(
            "SELECT t.Twr_Kod, t.Twr_Stawka, t.Twr_Flaga, d.DfC_Nazwa, c.TwC_Typ, c.TwC_Wartosc, c.TwC_Waluta \
             FROM CDN.TwrCeny c JOIN CDN.Towary t ON t.Twr_TwrId = c.TwC_TwrID JOIN CDN.DefCeny d ON d.DfC_DfCId = c.TwC_TwCNumer \
             WHERE c.TwC_TwrID IN ({}) ORDER BY t.Twr_Kod, d.DfC_Nazwa",
            placeholders(1, chunk.len())
        ));
        for id in chunk {
            query.bind(*id);
        }
        for row in fetch(client, query).await? {
            let sku = row
                .get::<&str, _>("Twr_Kod")
                .unwrap_or_default()
                .trim()
                .to_owned();
            let Ok(vat) = vat_of(
                row.get::<Decimal, _>("Twr_Stawka"),
                row.get::<i16, _>("Twr_Flaga"),
            ) else {
                continue;
            };
            let (Some(value), Some(list)) = (
                row.get::<Decimal, _>("TwC_Wartosc"),
                row.get::<&str, _>("DfC_Nazwa"),
            ) else {
                warn!(%sku, "price row without a value or list skipped");
                continue;
            };
            out.push(PriceRecord {
                sku,
                price_list: list.trim().to_owned(),
                kind: if row.get::<i16, _>("TwC_Typ") == Some(2) {
                    PriceKind::Gross
                } else {
                    PriceKind::Net
                },
                value,
                currency: row
                    .get::<&str, _>("TwC_Waluta")
                    .unwrap_or("PLN")
                    .trim()
                    .to_owned(),
                vat,
            });
        }
    }
    Ok(out)
}

/// Projects current stock per warehouse: for each product and warehouse,
/// the `TwrIlosci` row with the latest `TwI_Data` at or before the server's now.
pub async fn stock(
    client: &mut SqlClient,
    ids: &[i32],
    read_at: DateTime<Utc>,
) -> Result<Vec<StockRecord>, SqlError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let mut query = Query::new(format!(
            "SELECT t.Twr_Kod, m.Mag_Symbol, i.TwI_Ilosc, i.TwI_Rezerwacje \
             FROM CDN.TwrIlosci i JOIN CDN.Towary t ON t.Twr_TwrId = i.TwI_TwrId JOIN CDN.Magazyny m ON m.Mag_MagId = i.TwI_MagId \
             WHERE i.TwI_TwrId IN ({}) AND i.TwI_Data = (SELECT MAX(l.TwI_Data) FROM CDN.TwrIlosci l \
               WHERE l.TwI_TwrId = i.TwI_TwrId AND l.TwI_MagId = i.TwI_MagId AND l.TwI_Data <= GETDATE()) \
             ORDER BY t.Twr_Kod, m.Mag_Symbol",
            placeholders(1, chunk.len())
        ));
        for id in chunk {
            query.bind(*id);
        }
        for row in fetch(client, query).await? {
            let (Some(sku), Some(warehouse), Some(quantity)) = (
                row.get::<&str, _>("Twr_Kod"),
                row.get::<&str, _>("Mag_Symbol"),
                row.get::<Decimal, _>("TwI_Ilosc"),
            ) else {
                continue;
            };
            out.push(StockRecord {
                sku: sku.trim().to_owned(),
                warehouse: warehouse.trim().to_owned(),
                quantity,
                reserved: row.get::<Decimal, _>("TwI_Rezerwacje").unwrap_or_default(),
                read_at,
            });
        }
    }
    Ok(out)
}
