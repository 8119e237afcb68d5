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

pub mod cells;
pub mod insert;
pub mod invoice;
pub mod order_document;
pub mod realisation;

use cells::Cells;

pub use crate::erp_settings::PriceListKey;

/// Largest id list in one statement (SQL Server allows 2,100 parameters).
pub const IDS_PER_STATEMENT: usize = 500;

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

/// Statements run and rows read by one piece of work ([`costed`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SqlCost {
    pub statements: u64,
    pub rows: u64,
}

tokio::task_local! {
    static COST: std::cell::Cell<SqlCost>;
}

/// Runs `work` and counts the statements it runs, on its own task only:
/// the order writer or the commands loop running beside a cursor poll (or
/// another test in the same process) never adds to its figure, as a
/// process-wide counter did. Nested, the inner cost counts in the outer.
pub async fn costed<T>(work: impl std::future::Future<Output = T>) -> (T, SqlCost) {
    let (out, cost) = COST
        .scope(std::cell::Cell::new(SqlCost::default()), async move {
            let out = work.await;
            (out, COST.with(std::cell::Cell::get))
        })
        .await;
    add_cost(cost);
    (out, cost)
}

/// Adds to the cost of the work being [`costed`], if any.
pub(crate) fn count_statement(rows: usize) {
    add_cost(SqlCost {
        statements: 1,
        rows: rows as u64,
    });
}

fn add_cost(more: SqlCost) {
    let _ = COST.try_with(|cost| {
        let now = cost.get();
        cost.set(SqlCost {
            statements: now.statements + more.statements,
            rows: now.rows + more.rows,
        });
    });
}

async fn fetch(client: &mut SqlClient, query: Query<'_>) -> Result<Vec<Row>, SqlError> {
    let rows = query.query(client).await?.into_first_result().await?;
    count_statement(rows.len());
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
        let cells = Cells::new(row, "CDN.TwrGrupy");
        let (Some(id), Some(parent)) = (cells.id("TwG_GIDNumer")?, cells.id("TwG_GrONumer")?)
        else {
            continue;
        };
        let name = cells
            .text("TwG_Nazwa")?
            .filter(|n| !n.trim().is_empty())
            .or(cells.text("TwG_Kod")?)
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
    ids_of(&fetch(client, query).await?, "CDN.Towary", "Twr_TwrId")
}

/// The non-NULL ids in `column` of `rows`.
fn ids_of(rows: &[Row], table: &'static str, column: &str) -> Result<Vec<i32>, SqlError> {
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(id) = Cells::new(row, table).id(column)? {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The newest non-NULL stamp in `column` of `rows`.
fn newest_of(
    rows: &[Row],
    table: &'static str,
    column: &str,
) -> Result<Option<NaiveDateTime>, SqlError> {
    let mut newest = None;
    for row in rows {
        newest = newest.max(Cells::new(row, table).datetime(column)?);
    }
    Ok(newest)
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
        ids.extend(ids_of(
            &fetch(client, query).await?,
            "CDN.Towary",
            "Twr_TwrId",
        )?);
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
    Ok((
        ids_of(&rows, "CDN.Towary", "Twr_TwrId")?,
        newest_of(&rows, "CDN.Towary", "Twr_TS_Mod")?,
    ))
}

/// Items on documents changed (`TrN_TS_Mod`) after `since`: sales, receipts,
/// goods issues, deliveries, reservations, cancellations. Returns the item
/// ids and the newest stamp seen.
///
/// Optima has no index that starts with `TrN_TS_Mod`, so `WHERE TrN_TS_Mod
/// > @since` alone reads the whole of `TraNag` (a million rows in a busy
/// company) on every poll. Its e-shop index `TraNageSklepID`
/// (`TrN_eSklepID, TrN_TS_Mod, TrN_GIDNumer`) does seek on the stamp once
/// the e-shop id is fixed, and every document has one value there (NULL
/// for most). So the poll first finds the values in use, one index seek
/// each ([`document_shop_ids`]), then seeks each value's range of stamps:
/// an idle poll reads no document row, whatever the size of `TraNag`.
pub async fn items_on_documents_since(
    client: &mut SqlClient,
    since: NaiveDateTime,
) -> Result<(Vec<i32>, Option<NaiveDateTime>), SqlError> {
    let shop_ids = document_shop_ids(client).await?;
    let mut sql = "SELECT TrN_TrNID, TrN_TS_Mod FROM CDN.TraNag WHERE TrN_eSklepID IS NULL AND TrN_TS_Mod > @P1".to_owned();
    if !shop_ids.is_empty() {
        sql.push_str(&format!(
            " UNION ALL SELECT TrN_TrNID, TrN_TS_Mod FROM CDN.TraNag WHERE TrN_eSklepID IN ({}) AND TrN_TS_Mod > @P1",
            placeholders(2, shop_ids.len())
        ));
    }
    let mut docs = Query::new(sql);
    docs.bind(since);
    for id in &shop_ids {
        docs.bind(*id);
    }
    let rows = fetch(client, docs).await?;
    let newest = newest_of(&rows, "CDN.TraNag", "TrN_TS_Mod")?;
    let doc_ids = ids_of(&rows, "CDN.TraNag", "TrN_TrNID")?;
    let mut items = Vec::new();
    for chunk in doc_ids.chunks(IDS_PER_STATEMENT) {
        let mut query = Query::new(format!(
            "SELECT DISTINCT TrE_TwrId FROM CDN.TraElem JOIN CDN.Towary ON Twr_TwrId = TrE_TwrId WHERE TrE_TrNId IN ({}) AND Twr_Typ <> 0",
            placeholders(1, chunk.len())
        ));
        for id in chunk {
            query.bind(*id);
        }
        items.extend(ids_of(
            &fetch(client, query).await?,
            "CDN.TraElem",
            "TrE_TwrId",
        )?);
    }
    items.sort_unstable();
    items.dedup();
    Ok((items, newest))
}

/// The non-NULL values of `TrN_eSklepID` in `TraNag` (0, and the id of each
/// Comarch e-Sklep that brought documents): the smallest, then the next
/// above it, each a seek on the `TraNageSklepID` index. Few values exist
/// (one per e-shop), so this is a handful of one-row reads.
async fn document_shop_ids(client: &mut SqlClient) -> Result<Vec<i32>, SqlError> {
    /// More distinct values than any company has e-shops: stop, rather
    /// than walk a column someone filled with something else.
    const MOST: usize = 64;
    let mut ids: Vec<i32> = Vec::new();
    loop {
        let query = match ids.last() {
            None => Query::new("SELECT MIN(TrN_eSklepID) AS id FROM CDN.TraNag"),
            Some(last) => {
                let mut query = Query::new(
                    "SELECT MIN(TrN_eSklepID) AS id FROM CDN.TraNag WHERE TrN_eSklepID > @P1",
                );
                query.bind(*last);
                query
            }
        };
        let next = match fetch(client, query).await?.first() {
            Some(row) => Cells::new(row, "CDN.TraNag").id("id")?,
            None => None,
        };
        match next {
            Some(id) if ids.len() < MOST => ids.push(id),
            Some(_) => {
                return Err(SqlError::Unexpected(format!(
                    "CDN.TraNag.TrN_eSklepID holds more than {MOST} distinct values; the document poll expects one per e-shop"
                )));
            }
            None => return Ok(ids),
        }
    }
}

/// The server's clock, so cursors never depend on the agent's.
pub async fn server_now(client: &mut SqlClient) -> Result<NaiveDateTime, SqlError> {
    let rows = fetch(client, Query::new("SELECT GETDATE() AS now")).await?;
    rows.first()
        .map(|r| Cells::new(r, "GETDATE()").datetime("now"))
        .transpose()?
        .flatten()
        .ok_or_else(|| SqlError::Unexpected("GETDATE() returned no row".into()))
}

fn vat_of(rate: Option<Decimal>, flag: Option<i64>) -> Result<VatRate, String> {
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
            let cells = Cells::new(&row, "CDN.TwrEan");
            if let (Some(id), Some(ean)) = (cells.id("TwE_TwrID")?, cells.text("TwE_EAN")?) {
                let ean = ean.trim();
                if !ean.is_empty() {
                    extra.entry(id).or_default().push(ean.to_owned());
                }
            }
        }
        for row in &rows {
            let cells = Cells::new(row, "CDN.Towary");
            let id = cells.id_required("Twr_TwrId")?;
            let sku = cells.text_or_empty("Twr_Kod")?;
            if sku.is_empty() {
                warn!(erp_id = id, "product without a code skipped");
                continue;
            }
            let vat = match vat_of(cells.decimal("Twr_Stawka")?, cells.int("Twr_Flaga")?) {
                Ok(vat) => vat,
                Err(reason) => {
                    warn!(%sku, %reason, "product skipped: its VAT rate cannot be read");
                    continue;
                }
            };
            // Twr_EAN is NOT NULL in Optima: '' when the product has none.
            let ean = Some(cells.text_or_empty("Twr_EAN")?).filter(|e| !e.is_empty());
            let mut extra_eans = extra.remove(&id).unwrap_or_default();
            // Optima may repeat the main code among the extra ones.
            extra_eans.retain(|e| Some(e) != ean.as_ref());
            out.push(ProductRecord {
                sku,
                erp_id: i64::from(id),
                name: cells.text("Twr_Nazwa")?.unwrap_or_default().to_owned(),
                ean,
                extra_eans,
                unit: cells.text_or_empty("Twr_JM")?,
                vat,
                group_path: cells
                    .id("Twr_TwGGIDNumer")?
                    .and_then(|g| groups.get(&g).cloned())
                    .unwrap_or_default(),
                active: cells.int("Twr_NieAktywny")?.unwrap_or(0) == 0,
                description: cells
                    .text("Twr_Opis")?
                    .map(str::to_owned)
                    .filter(|d| !d.is_empty()),
                modified_at: cells.datetime("Twr_TS_Mod")?.map(naive_to_utc),
            });
        }
    }
    Ok(out)
}

/// Projects every price-list price of the given products. `TwC_TwCNumer`
/// names the price list through `key` (see [`PriceListKey`]).
pub async fn prices(
    client: &mut SqlClient,
    ids: &[i32],
    key: PriceListKey,
) -> Result<Vec<PriceRecord>, SqlError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let mut query = Query::new(format!(
            "SELECT t.Twr_Kod, t.Twr_Stawka, t.Twr_Flaga, d.DfC_Nazwa, c.TwC_Typ, c.TwC_Wartosc, c.TwC_Waluta \
             FROM CDN.TwrCeny c JOIN CDN.Towary t ON t.Twr_TwrId = c.TwC_TwrID JOIN CDN.DefCeny d ON d.{} = c.TwC_TwCNumer \
             WHERE c.TwC_TwrID IN ({}) ORDER BY t.Twr_Kod, d.DfC_Nazwa",
            key.column(),
            placeholders(1, chunk.len())
        ));
        for id in chunk {
            query.bind(*id);
        }
        for row in fetch(client, query).await? {
            let cells = Cells::new(&row, "CDN.TwrCeny");
            let sku = cells.text_or_empty("Twr_Kod")?;
            let Ok(vat) = vat_of(cells.decimal("Twr_Stawka")?, cells.int("Twr_Flaga")?) else {
                continue;
            };
            let (Some(value), Some(list)) =
                (cells.decimal("TwC_Wartosc")?, cells.text("DfC_Nazwa")?)
            else {
                warn!(%sku, "price row without a value or list skipped");
                continue;
            };
            // TwC_Typ (tinyint): 1 net, 2 gross (E4).
            let kind = if cells.int("TwC_Typ")? == Some(2) {
                PriceKind::Gross
            } else {
                PriceKind::Net
            };
            let currency = cells.text_or_empty("TwC_Waluta")?;
            out.push(PriceRecord {
                sku,
                price_list: list.trim().to_owned(),
                kind,
                value,
                // Unverified whether Optima stores złoty as '' or 'PLN'; both mean PLN.
                currency: if currency.is_empty() {
                    "PLN".to_owned()
                } else {
                    currency
                },
                vat,
            });
        }
    }
    Ok(out)
}

/// Projects current stock per warehouse: for each product and warehouse,
/// the `TwrIlosci` row with the latest `TwI_Data` at or before the server's
/// now (how Comarch's own stock report reads it). What is reserved counts
/// both customer reservations and service-order reservations: available =
/// `TwI_Ilosc − TwI_Rezerwacje − TwI_RezerwacjeZlecenia` (E7), and the
/// shop orders this agent wrote that still wait in the buffer
/// ([`in_buffered_shop_orders`]).
pub async fn stock(
    client: &mut SqlClient,
    ids: &[i32],
    read_at: DateTime<Utc>,
) -> Result<Vec<StockRecord>, SqlError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let mut query = Query::new(format!(
            "SELECT t.Twr_Kod, m.Mag_Symbol, i.TwI_Ilosc, i.TwI_Rezerwacje, i.TwI_RezerwacjeZlecenia \
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
            let cells = Cells::new(&row, "CDN.TwrIlosci");
            let sku = cells.text_or_empty("Twr_Kod")?;
            let warehouse = cells.text_or_empty("Mag_Symbol")?;
            let Some(quantity) = cells.decimal("TwI_Ilosc")? else {
                continue;
            };
            if sku.is_empty() || warehouse.is_empty() {
                continue;
            }
            let reserved = cells.decimal("TwI_Rezerwacje")?.unwrap_or_default()
                + cells.decimal("TwI_RezerwacjeZlecenia")?.unwrap_or_default();
            out.push(StockRecord {
                sku,
                warehouse,
                quantity,
                reserved,
                read_at,
            });
        }
        let buffered = in_buffered_shop_orders(client, chunk).await?;
        for record in out.iter_mut() {
            if let Some(quantity) = buffered.get(&(record.sku.clone(), record.warehouse.clone())) {
                record.reserved += *quantity;
            }
        }
    }
    Ok(out)
}

/// The quantities, per (SKU, warehouse), on the shop orders this agent
/// wrote (`TrN_eSklepZrodlo` 6) as RO, FS or PA drafts that are still in
/// the buffer and not cancelled.
///
/// The shop took these goods off its own stock when the buyer ordered;
/// no public evidence says a buffered document adds to `TwI_Rezerwacje`
/// (docs/OPERATIONS.md), and `TwI_Ilosc` moves only once the office
/// confirms it. Left out, the shop would be told, at the product's next
/// change, that the goods it sold are for sale again. Should an Optima
/// count them as reserved too, the shop shows too little until the office
/// confirms the order: the safe side. One seek per type on Optima's
/// `TraNagTypDokumentuBuforRodzaj` (the buffer holds few documents), then
/// the lines by `TrETraNag`.
async fn in_buffered_shop_orders(
    client: &mut SqlClient,
    ids: &[i32],
) -> Result<HashMap<(String, String), Decimal>, SqlError> {
    let mut query = Query::new(format!(
        "SELECT t.Twr_Kod, m.Mag_Symbol, SUM(e.TrE_Ilosc) AS TrE_Ilosc \
         FROM CDN.TraNag n JOIN CDN.TraElem e ON e.TrE_TrNId = n.TrN_TrNID \
         JOIN CDN.Towary t ON t.Twr_TwrId = e.TrE_TwrId JOIN CDN.Magazyny m ON m.Mag_MagId = e.TrE_MagId \
         WHERE n.TrN_TypDokumentu IN (302, 305, 308) AND n.TrN_Bufor = 1 AND n.TrN_Anulowany = 0 \
           AND n.TrN_eSklepZrodlo = 6 AND e.TrE_TwrId IN ({}) \
         GROUP BY t.Twr_Kod, m.Mag_Symbol",
        placeholders(1, ids.len())
    ));
    for id in ids {
        query.bind(*id);
    }
    let mut out = HashMap::new();
    for row in fetch(client, query).await? {
        let cells = Cells::new(&row, "CDN.TraElem");
        let sku = cells.text_or_empty("Twr_Kod")?;
        let warehouse = cells.text_or_empty("Mag_Symbol")?;
        if let Some(quantity) = cells.decimal("TrE_Ilosc")? {
            out.insert((sku, warehouse), quantity);
        }
    }
    Ok(out)
}
