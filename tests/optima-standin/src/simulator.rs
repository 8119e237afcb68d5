//! A busy office: other sales channels, deliveries, price changes, new and
//! retired products, reservations realised or cancelled. Each action writes
//! the rows the way Optima's application does (documents numbered from their
//! definition, lines, dated stock rows, reservations, `*_TS_Mod`) through
//! [`crate::office`] in one transaction, and returns a structured
//! [`ActionLog`] so a test can wait for its effect elsewhere.
//!
//! Conventions (docs/optima-standin.md): a document's `TrN_NumerString` is
//! its definition's `DDf_Numeracja` with every token but `@numerS` resolved,
//! `TrN_NumerNr` the next number for that string; `TrN_PodmiotTyp`,
//! `TrN_OdbiorcaTyp`, `TrN_PlatnikTyp` = 1 with the customer's id; an RO
//! realised into FS (or PA) + WZ is related to the FS in `TraNagRelacje` in
//! both directions, the WZ points to the FS through `TrN_FaId`; a cancelled
//! RO has `TrN_Anulowany = -2147483647`.

use std::path::Path;
use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime};
use rand::Rng;
use rusqlite::{Connection, OptionalExtension, ToSql, params};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::db;
use crate::error::{Error, Result};
use crate::office;
use crate::seed::WAREHOUSES;
use crate::types::{format_datetime, parse_decimal};

/// `TrN_Anulowany` of a cancelled document (Comarch BI's value).
pub const CANCELLED: i64 = -2147483647;

/// `TrN_KSeFStatusId` and `TrN_KSeFStatus` of an invoice KSeF accepted
/// and whose UPO Optima collected. The text is the status Comarch's help
/// names ("Wysłane\ odebrano UPO"); the id is the stand-in's choice: the
/// ids' values are not public.
pub const KSEF_STATUS_UPO_RECEIVED: i64 = 3;
pub const KSEF_STATUS_UPO_RECEIVED_TEXT: &str = "Wysłane\\ odebrano UPO";

/// One office action. Warehouses by symbol (MAG, SKLEP, HURT), products by
/// SKU (`Twr_Kod`), price lists by their number in `TwrCeny`
/// (`TwC_TwCNumer` = `DfC_Lp`: 1 purchase, 2 retail gross, 3 wholesale net).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// A sale through another channel: FS (or PA when `receipt`) plus WZ.
    Sale {
        sku: String,
        warehouse: String,
        qty: Decimal,
        receipt: bool,
    },
    /// A purchase delivery: PZ, stock up.
    Delivery {
        sku: String,
        warehouse: String,
        qty: Decimal,
    },
    /// A new price in a price list (`TwC_TwCNumer`, i.e. `DfC_Lp`).
    PriceChange {
        sku: String,
        price_list: i64,
        price: Decimal,
    },
    /// A new product with prices and no stock.
    NewProduct { sku: String, name: String },
    /// A product made inactive.
    Deactivate { sku: String },
    /// A customer reservation (RO), confirmed (not in the buffer).
    Reservation {
        sku: String,
        warehouse: String,
        qty: Decimal,
        shop_order: Option<String>,
    },
    /// An RO realised into FS and WZ; the tracking number in the WZ's
    /// `TrN_NrListuPrzewozowego`.
    Realise { ro_id: i64, tracking: String },
    /// An RO realised into FS and WZ, shipped through Sendit: the tracking
    /// number in a shipment order (`CDN.SenditZleceniePrzesylki`, `SZL_FaId`
    /// = the FS) and its parcel (`CDN.SenditPaczki`); the WZ's own column
    /// stays ''.
    RealiseViaSendit {
        ro_id: i64,
        tracking: String,
        #[serde(default = "default_carrier")]
        carrier: String,
    },
    /// An RO cancelled (`TrN_Anulowany = -2147483647`, reservation released).
    Cancel { ro_id: i64 },
    /// KSeF accepted an invoice: its number, status and dates recorded on
    /// the document as Optima's [KSeF] tab shows them once the UPO is in.
    KsefAccepted {
        document_id: i64,
        ksef_number: String,
    },
    /// A buyer's return booked against an approved invoice: a quantity
    /// correction (FSKOR, `TrN_Korekta` 1, `TrN_Rodzaj` 302001,
    /// `TrN_ZwrId` = the invoice) with the returned quantities negative at
    /// the invoice's prices, approved, and the goods back in the invoice's
    /// warehouse.
    CorrectInvoice {
        invoice_id: i64,
        /// (SKU, quantity returned) per line.
        lines: Vec<(String, Decimal)>,
        reason: String,
    },
    /// Stock reserved for a service order: only `TwI_RezerwacjeZlecenia`
    /// rises (no document the agent reads, no product change).
    ReserveForServiceOrder {
        sku: String,
        warehouse: String,
        qty: Decimal,
    },
}

fn default_carrier() -> String {
    "InPost".into()
}

/// A document an action wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocRef {
    pub id: i64,
    pub symbol: String,
    pub number: String,
}

/// What an action did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionLog {
    pub seq: u64,
    pub at: String,
    pub action: Action,
    pub documents: Vec<DocRef>,
    /// Products whose stock, price or card changed.
    pub twr_ids: Vec<i64>,
}

impl ActionLog {
    /// One JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// A document line to write.
#[derive(Debug, Clone)]
pub struct Line {
    pub twr_id: i64,
    pub qty: Decimal,
    /// Net unit price; None = from the retail price list.
    pub price_net: Option<Decimal>,
}

pub struct Simulator {
    conn: Connection,
    seq: u64,
}

fn dec(s: Option<String>) -> Decimal {
    s.as_deref().and_then(parse_decimal).unwrap_or_default()
}

fn now() -> NaiveDateTime {
    chrono::Local::now().naive_local()
}

fn mag_id(conn: &Connection, symbol: &str) -> Result<i64> {
    conn.query_row(
        "SELECT Mag_MagId FROM CDN.Magazyny WHERE Mag_Symbol = ?1",
        [symbol],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| Error::Other(format!("no warehouse {symbol}")))
}

fn twr_id(conn: &Connection, sku: &str) -> Result<i64> {
    conn.query_row(
        "SELECT Twr_TwrId FROM CDN.Towary WHERE Twr_Kod = ?1",
        [sku],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| Error::Other(format!("no product {sku}")))
}

fn customer_by_code(conn: &Connection, code: &str) -> Result<i64> {
    conn.query_row(
        "SELECT Knt_KntId FROM CDN.Kontrahenci WHERE Knt_Kod = ?1",
        [code],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| Error::Other(format!("no customer {code}")))
}

/// A warehouse's (None: all warehouses') current stock row: the latest
/// `TwI_Data` not in the future.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stock {
    pub qty: Decimal,
    /// `TwI_Rezerwacje`: confirmed customer reservations.
    pub reserved: Decimal,
    /// `TwI_RezerwacjeZlecenia`: reserved for service orders.
    pub reserved_orders: Decimal,
}

impl Stock {
    /// Available = Ilosc − Rezerwacje − RezerwacjeZlecenia.
    pub fn available(&self) -> Decimal {
        self.qty - self.reserved - self.reserved_orders
    }
}

/// The current stock row of an item in a warehouse (None = all warehouses).
pub fn current_stock(conn: &Connection, twr: i64, mag: Option<i64>) -> Result<Stock> {
    let r: Option<(Option<String>, Option<String>, Option<String>)> = conn
        .query_row(
            "SELECT CAST(TwI_Ilosc AS TEXT), CAST(TwI_Rezerwacje AS TEXT), CAST(TwI_RezerwacjeZlecenia AS TEXT) FROM CDN.TwrIlosci \
             WHERE TwI_TwrId = ?1 AND TwI_MagId IS ?2 AND TwI_Data <= ?3 ORDER BY TwI_Data DESC LIMIT 1",
            params![twr, mag, format_datetime(&now())],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(r.map(|(a, b, c)| Stock {
        qty: dec(a),
        reserved: dec(b),
        reserved_orders: dec(c),
    })
    .unwrap_or_default())
}

/// Moves stock the way Optima records it: a new dated TwrIlosci row for the
/// warehouse and for the all-warehouses row.
pub fn move_stock(
    conn: &Connection,
    twr: i64,
    mag: i64,
    dqty: Decimal,
    dres: Decimal,
) -> Result<()> {
    move_stock_and_orders(conn, twr, mag, dqty, dres, Decimal::ZERO)
}

/// [`move_stock`] with a change of the service-order reservations too.
pub fn move_stock_and_orders(
    conn: &Connection,
    twr: i64,
    mag: i64,
    dqty: Decimal,
    dres: Decimal,
    dorders: Decimal,
) -> Result<()> {
    let when = format_datetime(&now());
    for m in [Some(mag), None] {
        let s = current_stock(conn, twr, m)?;
        let q = s.qty + dqty;
        let r = (s.reserved + dres).max(Decimal::ZERO);
        let z = (s.reserved_orders + dorders).max(Decimal::ZERO);
        let updated = conn.execute(
            "UPDATE CDN.TwrIlosci SET TwI_Ilosc = ?4, TwI_Rezerwacje = ?5, TwI_RezerwacjeZlecenia = ?6 WHERE TwI_TwrId = ?1 AND TwI_MagId IS ?2 AND TwI_Data = ?3",
            params![twr, m, when, q.to_string(), r.to_string(), z.to_string()],
        )?;
        if updated == 0 {
            office::insert(
                conn,
                "CDN.TwrIlosci",
                &[
                    ("TwI_TwrId", &twr),
                    ("TwI_MagId", &m),
                    ("TwI_Data", &when),
                    ("TwI_Ilosc", &q.to_string()),
                    ("TwI_Rezerwacje", &r.to_string()),
                    ("TwI_RezerwacjeZlecenia", &z.to_string()),
                ],
            )?;
        }
    }
    Ok(())
}

/// Resolves a numbering scheme's tokens except `@numerS` (which
/// `TrN_NumerPelny` fills from `TrN_NumerNr`).
pub fn numer_string(scheme: &str, symbol: &str, warehouse: &str, when: NaiveDateTime) -> String {
    scheme
        .replace("@symbol", symbol)
        .replace("@rok_kal", &format!("{:04}", when.year()))
        .replace("@miesiac", &format!("{:02}", when.month()))
        .replace("@magazyn", warehouse)
        .replace("@seria", "")
        .replace("@brak", "")
}

/// The customer card's fields a document copies (`Pod*`, `Odb*`).
const CARD: [(&str, &str, &str); 16] = [
    ("Knt_Nazwa1", "TrN_PodNazwa1", "TrN_OdbNazwa1"),
    ("Knt_Nazwa2", "TrN_PodNazwa2", "TrN_OdbNazwa2"),
    ("Knt_Nazwa3", "TrN_PodNazwa3", "TrN_OdbNazwa3"),
    ("Knt_Ulica", "TrN_PodUlica", "TrN_OdbUlica"),
    ("Knt_NrDomu", "TrN_PodNrDomu", "TrN_OdbNrDomu"),
    ("Knt_NrLokalu", "TrN_PodNrLokalu", "TrN_OdbNrLokalu"),
    ("Knt_Miasto", "TrN_PodMiasto", "TrN_OdbMiasto"),
    (
        "Knt_KodPocztowy",
        "TrN_PodKodPocztowy",
        "TrN_OdbKodPocztowy",
    ),
    ("Knt_Kraj", "TrN_PodKraj", "TrN_OdbKraj"),
    ("Knt_Poczta", "TrN_PodPoczta", "TrN_OdbPoczta"),
    ("Knt_Gmina", "TrN_PodGmina", "TrN_OdbGmina"),
    ("Knt_Powiat", "TrN_PodPowiat", "TrN_OdbPowiat"),
    (
        "Knt_Wojewodztwo",
        "TrN_PodWojewodztwo",
        "TrN_OdbWojewodztwo",
    ),
    ("Knt_Adres2", "TrN_PodAdres2", "TrN_OdbAdres2"),
    ("Knt_NipKraj", "TrN_PodNipKraj", "TrN_OdbNipKraj"),
    ("Knt_NipE", "TrN_PodNipE", "TrN_OdbNipE"),
];

/// Writes a document header and its lines as Optima's application does
/// (numbering from the active definition of `symbol`, the customer's card
/// copied, totals); returns its id. `customer` None = the collective
/// customer `DETAL`. Stock is the caller's part.
#[allow(clippy::too_many_arguments)]
pub fn insert_document(
    conn: &Connection,
    symbol: &str,
    mag: i64,
    customer: Option<i64>,
    lines: &[Line],
    bufor: i64,
    numer_obcy: Option<&str>,
    when: NaiveDateTime,
) -> Result<i64> {
    let (ddf, class, scheme): (i64, i64, String) = conn
        .query_row(
            "SELECT DDf_DDfID, DDf_Klasa, DDf_Numeracja FROM CDN.DokDefinicje WHERE DDf_Symbol = ?1 AND DDf_Nieaktywna = 0 ORDER BY DDf_DDfID LIMIT 1",
            [symbol],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?
        .ok_or_else(|| Error::Other(format!("no active document definition {symbol}")))?;
    let knt = match customer {
        Some(k) => k,
        None => customer_by_code(conn, "DETAL")?,
    };
    let mag_symbol: String = conn.query_row(
        "SELECT Mag_Symbol FROM CDN.Magazyny WHERE Mag_MagId = ?1",
        [mag],
        |r| r.get(0),
    )?;
    let numer = numer_string(&scheme, symbol, &mag_symbol, when);
    let nr: i64 = conn.query_row(
        "SELECT IFNULL(MAX(TrN_NumerNr), 0) + 1 FROM CDN.TraNag WHERE TrN_NumerString = ?1",
        [&numer],
        |r| r.get(0),
    )?;
    // The card's fields, copied as the customer (Pod*) and recipient (Odb*).
    let card_cols: Vec<&str> = CARD.iter().map(|c| c.0).collect();
    let card: Vec<String> = conn.query_row(
        &format!(
            "SELECT {}, Knt_Telefon1, Knt_Email, Knt_GLN FROM CDN.Kontrahenci WHERE Knt_KntId = ?1",
            card_cols.join(", ")
        ),
        [knt],
        |r| {
            (0..card_cols.len() + 3)
                .map(|i| r.get::<_, String>(i))
                .collect()
        },
    )?;
    let day = when.date().and_time(chrono::NaiveTime::MIN);
    let data_dok = format_datetime(&day);
    let rodzaj = class * 1000;
    // Receipts are gross (TrN_TypNB 2), the rest net (1).
    let typ_nb: i64 = if symbol == "PA" { 2 } else { 1 };
    let obcy = numer_obcy.unwrap_or("");
    let zwrocono: Option<i64> = if class == 308 { Some(1) } else { None };
    // Optima names the company stamp in force on each document.
    let stamp: Option<i64> = conn
        .query_row(
            "SELECT PC_PCID FROM CDN.Pieczatki WHERE PC_Aktualna <> 0 ORDER BY PC_DataOd DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let one = 1i64;
    let mut values: Vec<(&str, &dyn ToSql)> = vec![
        ("TrN_DDfId", &ddf),
        ("TrN_TypDokumentu", &class),
        ("TrN_Rodzaj", &rodzaj),
        ("TrN_NumerNr", &nr),
        ("TrN_NumerString", &numer),
        ("TrN_NumerObcy", &obcy),
        ("TrN_DataDok", &data_dok),
        ("TrN_DataWys", &data_dok),
        ("TrN_DataOpe", &data_dok),
        ("TrN_DataKur", &data_dok),
        ("TrN_Termin", &data_dok),
        ("TrN_Bufor", &bufor),
        ("TrN_PodmiotTyp", &one),
        ("TrN_PodID", &knt),
        ("TrN_OdbiorcaTyp", &one),
        ("TrN_OdbID", &knt),
        ("TrN_PlatnikTyp", &one),
        ("TrN_PlatnikID", &knt),
        ("TrN_MagZrdId", &mag),
        ("TrN_Waluta", &"PLN"),
        ("TrN_KursL", &one),
        ("TrN_KursM", &one),
        ("TrN_TypNB", &typ_nb),
        ("TrN_ZwroconoCalaIlosc", &zwrocono),
        ("TrN_PCID", &stamp),
        ("TrN_OdbTelefon", &card[CARD.len()]),
        ("TrN_OdbEmail", &card[CARD.len() + 1]),
        ("TrN_PodmiotGLN", &card[CARD.len() + 2]),
        ("TrN_OdbiorcaGLN", &card[CARD.len() + 2]),
    ];
    for (i, (_, pod, odb)) in CARD.iter().enumerate() {
        values.push((pod, &card[i]));
        values.push((odb, &card[i]));
    }
    let id = office::insert_at(conn, "CDN.TraNag", &values, day)?;
    let (mut netto, mut brutto) = (Decimal::ZERO, Decimal::ZERO);
    for (i, l) in lines.iter().enumerate() {
        type TwrRow = (
            String,
            String,
            String,
            String,
            String,
            i64,
            i64,
            Option<String>,
            Option<String>,
        );
        let (kod, nazwa, jm, ean, numer_kat, flaga, typ, stawka, gross): TwrRow = conn.query_row(
            "SELECT Twr_Kod, Twr_Nazwa, Twr_JM, Twr_EAN, Twr_NumerKat, Twr_Flaga, Twr_Typ, CAST(Twr_Stawka AS TEXT), \
             (SELECT CAST(TwC_Wartosc AS TEXT) FROM CDN.TwrCeny WHERE TwC_TwrID = Twr_TwrId AND TwC_TwCNumer = 2) \
             FROM CDN.Towary WHERE Twr_TwrId = ?1",
            [l.twr_id],
            |r| {
                Ok((
                    r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?,
                    r.get(7)?, r.get(8)?,
                ))
            },
        )?;
        let stawka = dec(stawka);
        let vat = Decimal::ONE + stawka / Decimal::from(100);
        let price = l
            .price_net
            .unwrap_or_else(|| (dec(gross) / vat).round_dp(4));
        let wn = (price * l.qty).round_dp(2);
        let wb = (wn * vat).round_dp(2);
        netto += wn;
        brutto += wb;
        let lp = i as i64 + 1;
        let (qty, price_s, stawka_s) = (l.qty.to_string(), price.to_string(), stawka.to_string());
        let (wn_s, wb_s) = (wn.to_string(), wb.to_string());
        let retail = 2i64;
        office::insert_at(
            conn,
            "CDN.TraElem",
            &[
                ("TrE_TrNId", &id),
                ("TrE_Lp", &lp),
                ("TrE_TypDokumentu", &class),
                ("TrE_Aktywny", &one),
                ("TrE_Flaga", &flaga),
                ("TrE_TwrId", &l.twr_id),
                ("TrE_TwrTyp", &typ),
                ("TrE_MagId", &mag),
                ("TrE_TwrKod", &kod),
                ("TrE_TwrNazwa", &nazwa),
                ("TrE_TwrEAN", &ean),
                ("TrE_TwrNumerKat", &numer_kat),
                ("TrE_Stawka", &stawka_s),
                ("TrE_Jm", &jm),
                ("TrE_JmZ", &jm),
                ("TrE_Ilosc", &qty),
                ("TrE_IloscJM", &qty),
                ("TrE_JMPrzelicznikL", &one),
                ("TrE_JMPrzelicznikM", &one),
                ("TrE_Cena0", &price_s),
                ("TrE_CenaW", &price_s),
                ("TrE_WartoscNetto", &wn_s),
                ("TrE_WartoscNettoWal", &wn_s),
                ("TrE_WartoscBrutto", &wb_s),
                ("TrE_WartoscBruttoWal", &wb_s),
                ("TrE_Waluta", &"PLN"),
                ("TrE_KursL", &one),
                ("TrE_KursM", &one),
                ("TrE_TwCNumer", &retail),
                ("TrE_TypNB", &typ_nb),
                ("TrE_PodmiotTyp", &one),
                ("TrE_PodID", &knt),
                ("TrE_DataDok", &data_dok),
                ("TrE_DataOpe", &data_dok),
            ],
            day,
        )?;
    }
    let vat = brutto - netto;
    conn.execute(
        "UPDATE CDN.TraNag SET TrN_RazemNetto = ?2, TrN_RazemVAT = ?3, TrN_RazemBrutto = ?4, \
         TrN_RazemNettoWal = ?2, TrN_RazemVATWal = ?3, TrN_RazemBruttoWal = ?4 WHERE TrN_TrNID = ?1",
        params![id, netto.to_string(), vat.to_string(), brutto.to_string()],
    )?;
    write_vat_table(conn, id)?;
    Ok(id)
}

/// One TraVat row per VAT rate of the document's lines.
fn write_vat_table(conn: &Connection, id: i64) -> Result<()> {
    let mut st = conn.prepare(
        "SELECT CAST(TrE_Stawka AS TEXT), TrE_Flaga, CAST(ss_sum(TrE_WartoscNetto) AS TEXT), CAST(ss_sum(TrE_WartoscBrutto) AS TEXT) \
         FROM CDN.TraElem WHERE TrE_TrNId = ?1 GROUP BY TrE_Stawka, TrE_Flaga",
    )?;
    type VatRow = (Option<String>, i64, Option<String>, Option<String>);
    let rows: Vec<VatRow> = st
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<std::result::Result<_, _>>()?;
    for (stawka, flaga, netto, brutto) in rows {
        let (stawka, netto, brutto) = (dec(stawka), dec(netto), dec(brutto));
        let (s, n, v) = (
            stawka.to_string(),
            netto.to_string(),
            (brutto - netto).to_string(),
        );
        office::insert(
            conn,
            "CDN.TraVat",
            &[
                ("TrV_TrNID", &id),
                ("TrV_Stawka", &s),
                ("TrV_Flaga", &flaga),
                ("TrV_Zrodlowa", &s),
                ("TrV_Netto", &n),
                ("TrV_NettoWal", &n),
                ("TrV_VAT", &v),
                ("TrV_VATWal", &v),
            ],
        )?;
    }
    Ok(())
}

fn doc_ref(conn: &Connection, id: i64) -> Result<DocRef> {
    Ok(conn.query_row(
        "SELECT TrN_TrNID, DDf_Symbol, TrN_NumerPelny FROM CDN.TraNag JOIN CDN.DokDefinicje ON DDf_DDfID = TrN_DDfId WHERE TrN_TrNID = ?1",
        [id],
        |r| Ok(DocRef { id: r.get(0)?, symbol: r.get(1)?, number: r.get(2)? }),
    )?)
}

impl Simulator {
    /// Opens the stand-in's database file (it must exist, e.g. seeded).
    pub fn open(db: &Path) -> Result<Simulator> {
        if !db.exists() {
            return Err(Error::Other(format!(
                "{}: no such database (seed it first)",
                db.display()
            )));
        }
        let conn = db::open(db, Arc::new(Default::default()))?;
        Ok(Simulator { conn, seq: 0 })
    }

    /// The SQLite connection (read-only use in tests).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Picks and performs a random action.
    pub fn step<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Result<ActionLog> {
        let action = self.pick(rng)?;
        self.perform(action)
    }

    fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Action> {
        let c = &self.conn;
        let n: i64 = c.query_row("SELECT count(*) FROM CDN.Towary", [], |r| r.get(0))?;
        let random_stocked = |rng: &mut R| -> Result<Option<(String, String)>> {
            let off = rng.random_range(0..n.max(1));
            Ok(c.query_row(
                "SELECT Twr_Kod, Mag_Symbol FROM CDN.Towary JOIN CDN.TwrIlosci ON TwI_TwrId = Twr_TwrId JOIN CDN.Magazyny ON Mag_MagId = TwI_MagId \
                 WHERE Twr_TwrId >= ?1 AND Twr_NieAktywny = 0 AND Twr_Kod NOT LIKE 'BAD-%' AND TwI_Ilosc - TwI_Rezerwacje - TwI_RezerwacjeZlecenia > 3 LIMIT 1",
                [off],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ).optional()?)
        };
        let open_ro = |rng: &mut R| -> Result<Option<i64>> {
            let ids: Vec<i64> = c
                .prepare("SELECT TrN_TrNID FROM CDN.TraNag WHERE TrN_TypDokumentu = 308 AND TrN_Bufor = 0 AND TrN_Anulowany = 0 AND IFNULL(TrN_ZwroconoCalaIlosc, 1) = 1")?
                .query_map([], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            Ok(if ids.is_empty() {
                None
            } else {
                Some(ids[rng.random_range(0..ids.len())])
            })
        };
        let roll = rng.random_range(0..100);
        let stocked = random_stocked(rng)?;
        let Some((sku, warehouse)) = stocked else {
            return Ok(Action::NewProduct {
                sku: format!("NOWY-{:06}", rng.random_range(0..1_000_000)),
                name: "Nowość — żółta łopatka".into(),
            });
        };
        Ok(match roll {
            0..=34 => Action::Sale {
                sku,
                warehouse,
                qty: Decimal::from(rng.random_range(1..4)),
                receipt: rng.random_bool(0.4),
            },
            35..=49 => Action::Delivery {
                sku,
                warehouse,
                qty: Decimal::from(rng.random_range(10..100)),
            },
            50..=64 => {
                let list = rng.random_range(1..=3);
                Action::PriceChange {
                    sku,
                    price_list: list,
                    price: Decimal::new(rng.random_range(199..99_999), 2),
                }
            }
            65..=69 => Action::NewProduct {
                sku: format!("NOWY-{:06}", rng.random_range(0..1_000_000)),
                name: format!(
                    "{} {}",
                    ["Łopata", "Żelazko", "Śrubokręt", "Kołdra", "Gąbka"][rng.random_range(0..5)],
                    ["ogrodowa", "parowe", "krzyżakowy", "puchowa", "ścierna"]
                        [rng.random_range(0..5)]
                ),
            },
            70..=72 => Action::Deactivate { sku },
            73..=74 => Action::ReserveForServiceOrder {
                sku,
                warehouse,
                qty: Decimal::ONE,
            },
            75..=84 => Action::Reservation {
                sku,
                warehouse,
                qty: Decimal::from(rng.random_range(1..3)),
                shop_order: None,
            },
            85..=94 => match open_ro(rng)? {
                Some(ro_id) if rng.random_bool(0.3) => Action::RealiseViaSendit {
                    ro_id,
                    tracking: format!("{:024}", rng.random_range(0..10_000_000_000u64)),
                    carrier: default_carrier(),
                },
                Some(ro_id) => Action::Realise {
                    ro_id,
                    tracking: format!("PL{:010}", rng.random_range(0..10_000_000_000u64)),
                },
                None => Action::Reservation {
                    sku,
                    warehouse,
                    qty: Decimal::ONE,
                    shop_order: None,
                },
            },
            _ => match open_ro(rng)? {
                Some(ro_id) => Action::Cancel { ro_id },
                None => Action::Reservation {
                    sku,
                    warehouse,
                    qty: Decimal::ONE,
                    shop_order: None,
                },
            },
        })
    }

    /// Performs one action in a transaction and logs it.
    pub fn perform(&mut self, action: Action) -> Result<ActionLog> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (documents, twr_ids) = apply(&tx, &action)?;
        tx.commit()?;
        self.seq += 1;
        let log = ActionLog {
            seq: self.seq,
            at: format_datetime(&now()),
            action,
            documents,
            twr_ids,
        };
        tracing::info!(target: "optima_standin::simulator", seq = log.seq, action = %log.to_json(), "office action");
        Ok(log)
    }

    /// Runs `rate` actions per second for `duration` (None = forever),
    /// calling `on_log` after each.
    pub fn run(
        &mut self,
        rate: f64,
        duration: Option<std::time::Duration>,
        seed: u64,
        mut on_log: impl FnMut(&ActionLog),
    ) -> Result<u64> {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let start = std::time::Instant::now();
        let period = std::time::Duration::from_secs_f64(1.0 / rate.max(0.001));
        let mut n = 0u64;
        loop {
            if let Some(d) = duration
                && start.elapsed() >= d
            {
                break;
            }
            match self.step(&mut rng) {
                Ok(log) => on_log(&log),
                Err(e) => tracing::warn!(error = %e, "office action failed"),
            }
            n += 1;
            let next = start + period.mul_f64(n as f64);
            let now = std::time::Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
        Ok(n)
    }
}

fn apply(c: &Connection, action: &Action) -> Result<(Vec<DocRef>, Vec<i64>)> {
    let mut docs = Vec::new();
    match action {
        Action::Sale {
            sku,
            warehouse,
            qty,
            receipt,
        } => {
            let twr = twr_id(c, sku)?;
            let mag = mag_id(c, warehouse)?;
            let lines = [Line {
                twr_id: twr,
                qty: *qty,
                price_net: None,
            }];
            // A receipt goes to the collective customer, an invoice to K00001.
            let customer = if *receipt {
                None
            } else {
                Some(customer_by_code(c, "K00001")?)
            };
            let inv = insert_document(
                c,
                if *receipt { "PA" } else { "FS" },
                mag,
                customer,
                &lines,
                0,
                None,
                now(),
            )?;
            let wz = insert_document(c, "WZ", mag, customer, &lines, 0, None, now())?;
            link_wz(c, wz, inv)?;
            move_stock(c, twr, mag, -*qty, Decimal::ZERO)?;
            docs.push(doc_ref(c, inv)?);
            docs.push(doc_ref(c, wz)?);
            Ok((docs, vec![twr]))
        }
        Action::Delivery {
            sku,
            warehouse,
            qty,
        } => {
            let twr = twr_id(c, sku)?;
            let mag = mag_id(c, warehouse)?;
            let purchase: Option<String> = c
                .query_row(
                    "SELECT CAST(TwC_Wartosc AS TEXT) FROM CDN.TwrCeny WHERE TwC_TwrID = ?1 AND TwC_TwCNumer = 1",
                    [twr],
                    |r| r.get(0),
                )
                .optional()?;
            let price = dec(purchase);
            let supplier = customer_by_code(c, crate::seed::SUPPLIER_CODE)?;
            let pz = insert_document(
                c,
                "PZ",
                mag,
                Some(supplier),
                &[Line {
                    twr_id: twr,
                    qty: *qty,
                    price_net: Some(price),
                }],
                0,
                None,
                now(),
            )?;
            // The lot points at the delivery line (TraSElem is not held:
            // the PZ's line id stands for it).
            let line: i64 = c.query_row(
                "SELECT TrE_TrEID FROM CDN.TraElem WHERE TrE_TrNId = ?1",
                [pz],
                |r| r.get(0),
            )?;
            let (q, p, w) = (
                qty.to_string(),
                price.to_string(),
                (*qty * price).round_dp(2).to_string(),
            );
            office::insert(
                c,
                "CDN.TwrZasoby",
                &[
                    ("TwZ_TwrId", &twr),
                    ("TwZ_MagId", &mag),
                    ("TwZ_TrSIdDost", &line),
                    ("TwZ_Data", &format_datetime(&now())),
                    ("TwZ_Ilosc", &q),
                    ("TwZ_Quan", &q),
                    ("TwZ_Cena", &p),
                    ("TwZ_Wartosc", &w),
                ],
            )?;
            move_stock(c, twr, mag, *qty, Decimal::ZERO)?;
            docs.push(doc_ref(c, pz)?);
            Ok((docs, vec![twr]))
        }
        Action::PriceChange {
            sku,
            price_list,
            price,
        } => {
            let twr = twr_id(c, sku)?;
            let typ: i64 = c
                .query_row(
                    "SELECT DfC_Typ FROM CDN.DefCeny WHERE DfC_Lp = ?1",
                    [price_list],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| Error::Other(format!("no price list {price_list}")))?;
            let n = c.execute(
                "UPDATE CDN.TwrCeny SET TwC_Wartosc = ?3 WHERE TwC_TwrID = ?1 AND TwC_TwCNumer = ?2",
                params![twr, price_list, price.to_string()],
            )?;
            if n == 0 {
                crate::seed::insert_price(c, twr, *price_list, typ, *price)?;
            }
            Ok((docs, vec![twr]))
        }
        Action::NewProduct { sku, name } => {
            let e12 = format!(
                "590{:09}",
                (sku.bytes().map(|b| b as u64).sum::<u64>() * 7919) % 1_000_000_000
            );
            let ean = format!("{e12}{}", crate::seed::ean13_check(&e12));
            let ts = format_datetime(&now());
            let (zero, one, two, vat) = (0i64, 1i64, 2i64, 23i64);
            let twr = office::insert(
                c,
                "CDN.Towary",
                &[
                    ("Twr_Kod", sku),
                    ("Twr_Nazwa", name),
                    ("Twr_EAN", &ean),
                    ("Twr_JM", &"szt."),
                    ("Twr_TwGGIDNumer", &zero),
                    ("Twr_TwCNumer", &two),
                    ("Twr_Stawka", &vat),
                    ("Twr_StawkaZak", &vat),
                    ("Twr_Flaga", &two),
                    ("Twr_FlagaZak", &two),
                    ("Twr_Typ", &one),
                    ("Twr_TS_Zal", &ts),
                    ("Twr_TS_Mod", &ts),
                ],
            )?;
            for (list, typ, v) in [(1, 1, "10.00"), (2, 2, "19.99"), (3, 1, "13.50")] {
                let v: Decimal = v.parse().unwrap_or_default();
                crate::seed::insert_price(c, twr, list, typ, v)?;
            }
            Ok((docs, vec![twr]))
        }
        Action::Deactivate { sku } => {
            let twr = twr_id(c, sku)?;
            c.execute(
                "UPDATE CDN.Towary SET Twr_NieAktywny = 1 WHERE Twr_TwrId = ?1",
                [twr],
            )?;
            Ok((docs, vec![twr]))
        }
        Action::Reservation {
            sku,
            warehouse,
            qty,
            shop_order,
        } => {
            let twr = twr_id(c, sku)?;
            let mag = mag_id(c, warehouse)?;
            let ro = insert_document(
                c,
                "RO",
                mag,
                Some(customer_by_code(c, "K00001")?),
                &[Line {
                    twr_id: twr,
                    qty: *qty,
                    price_net: None,
                }],
                0,
                shop_order.as_deref(),
                now(),
            )?;
            move_stock(c, twr, mag, Decimal::ZERO, *qty)?;
            docs.push(doc_ref(c, ro)?);
            Ok((docs, vec![twr]))
        }
        Action::Realise { ro_id, tracking } => realise(c, *ro_id, tracking, None),
        Action::RealiseViaSendit {
            ro_id,
            tracking,
            carrier,
        } => realise(c, *ro_id, tracking, Some(carrier)),
        Action::Cancel { ro_id } => {
            let (mag, _, _) = open_ro(c, *ro_id)?;
            let lines = ro_lines(c, *ro_id)?;
            let mut twrs = Vec::new();
            for l in &lines {
                move_stock(c, l.twr_id, mag, Decimal::ZERO, -l.qty)?;
                twrs.push(l.twr_id);
            }
            c.execute(
                "UPDATE CDN.TraNag SET TrN_Anulowany = ?3, TrN_TS_Mod = ?2 WHERE TrN_TrNID = ?1",
                params![ro_id, format_datetime(&now()), CANCELLED],
            )?;
            docs.push(doc_ref(c, *ro_id)?);
            Ok((docs, twrs))
        }
        Action::KsefAccepted {
            document_id,
            ksef_number,
        } => {
            let at = format_datetime(&now());
            let changed = c.execute(
                "UPDATE CDN.TraNag SET TrN_NrKSeF = ?2, TrN_KSeFStatusId = ?3, TrN_KSeFStatus = ?4, \
                 TrN_KSeFDataWyslania = ?5, TrN_KSeFDataPrzyjecia = ?5, TrN_KSeFDataOdebraniaUpo = ?5, TrN_TS_Mod = ?5 \
                 WHERE TrN_TrNID = ?1 AND TrN_TypDokumentu = 302 AND TrN_Bufor = 0",
                params![document_id, ksef_number, KSEF_STATUS_UPO_RECEIVED, KSEF_STATUS_UPO_RECEIVED_TEXT, at],
            )?;
            if changed == 0 {
                return Err(Error::Other(format!(
                    "document {document_id} is not an approved invoice"
                )));
            }
            docs.push(doc_ref(c, *document_id)?);
            Ok((docs, Vec::new()))
        }
        Action::CorrectInvoice {
            invoice_id,
            lines,
            reason,
        } => correct_invoice(c, *invoice_id, lines, reason),
        Action::ReserveForServiceOrder {
            sku,
            warehouse,
            qty,
        } => {
            let twr = twr_id(c, sku)?;
            let mag = mag_id(c, warehouse)?;
            move_stock_and_orders(c, twr, mag, Decimal::ZERO, Decimal::ZERO, *qty)?;
            Ok((docs, vec![twr]))
        }
    }
}

/// An RO realised into FS + WZ: related both ways, the WZ linked to its FS,
/// the tracking number on the WZ or (via Sendit) in a shipment order.
fn realise(
    c: &Connection,
    ro_id: i64,
    tracking: &str,
    sendit: Option<&str>,
) -> Result<(Vec<DocRef>, Vec<i64>)> {
    let (mag, knt, obcy) = open_ro(c, ro_id)?;
    let lines = ro_lines(c, ro_id)?;
    let fs = insert_document(c, "FS", mag, knt, &lines, 0, obcy.as_deref(), now())?;
    // The invoice takes the order's payment form, due its days after the
    // invoice's date.
    let form: Option<(i64, i64)> = c
        .query_row(
            "SELECT f.FPl_FPlId, f.FPl_Termin FROM CDN.TraNag r JOIN CDN.FormyPlatnosci f ON f.FPl_FPlId = r.TrN_FPlId WHERE r.TrN_TrNID = ?1",
            [ro_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((form, days)) = form {
        let due = now().date().and_time(chrono::NaiveTime::MIN) + chrono::Duration::days(days);
        c.execute(
            "UPDATE CDN.TraNag SET TrN_FPlId = ?2, TrN_Termin = ?3 WHERE TrN_TrNID = ?1",
            params![fs, form, format_datetime(&due)],
        )?;
    }
    let wz = insert_document(c, "WZ", mag, knt, &lines, 0, obcy.as_deref(), now())?;
    relate(c, ro_id, fs)?;
    relate(c, fs, ro_id)?;
    link_wz(c, wz, fs)?;
    match sendit {
        None => {
            c.execute(
                "UPDATE CDN.TraNag SET TrN_NrListuPrzewozowego = ?2 WHERE TrN_TrNID = ?1",
                params![wz, tracking],
            )?;
        }
        Some(carrier) => shipment_order(c, fs, tracking, carrier)?,
    }
    let mut twrs = Vec::new();
    for l in &lines {
        move_stock(c, l.twr_id, mag, -l.qty, -l.qty)?;
        twrs.push(l.twr_id);
    }
    c.execute(
        "UPDATE CDN.TraNag SET TrN_ZwroconoCalaIlosc = 3, TrN_TS_Mod = ?2 WHERE TrN_TrNID = ?1",
        params![ro_id, format_datetime(&now())],
    )?;
    Ok((
        vec![doc_ref(c, ro_id)?, doc_ref(c, fs)?, doc_ref(c, wz)?],
        twrs,
    ))
}

/// `TrN_Rodzaj` of a quantity correction of an FS. Comarch's own filters
/// name 307001–307004 for PZ corrections and 305001/305005 for PA ones;
/// 302001 for the FS's is by analogy (*unverified*). The agent does not
/// read it: it knows a correction by `TrN_Korekta` and `TrN_ZwrId`.
const RODZAJ_FS_QUANTITY_CORRECTION: i64 = 302_001;

fn correct_invoice(
    c: &Connection,
    invoice_id: i64,
    returned: &[(String, Decimal)],
    reason: &str,
) -> Result<(Vec<DocRef>, Vec<i64>)> {
    type InvoiceRow = (i64, i64, i64, Option<i64>, i64, String);
    let invoice: Option<InvoiceRow> = c
        .query_row(
            "SELECT TrN_TypDokumentu, TrN_Bufor, TrN_Anulowany, TrN_PodID, TrN_MagZrdId, TrN_NumerObcy FROM CDN.TraNag WHERE TrN_TrNID = ?1",
            [invoice_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?;
    let Some((class, bufor, anulowany, knt, mag, obcy)) = invoice else {
        return Err(Error::Other(format!("no document {invoice_id}")));
    };
    if class != 302 || bufor != 0 || anulowany != 0 {
        return Err(Error::Other(format!(
            "document {invoice_id} is not an approved invoice"
        )));
    }
    let mut lines = Vec::new();
    for (sku, qty) in returned {
        let twr = twr_id(c, sku)?;
        let found: Option<(String, String)> = c
            .query_row(
                "SELECT CAST(TrE_Ilosc AS TEXT), CAST(TrE_CenaW AS TEXT) FROM CDN.TraElem WHERE TrE_TrNId = ?1 AND TrE_TwrId = ?2 ORDER BY TrE_Lp LIMIT 1",
                params![invoice_id, twr],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((sold, price)) = found else {
            return Err(Error::Other(format!(
                "{sku} is not on invoice {invoice_id}"
            )));
        };
        if *qty <= Decimal::ZERO || *qty > dec(Some(sold)) {
            return Err(Error::Other(format!(
                "{sku}: {qty} cannot be returned from invoice {invoice_id}"
            )));
        }
        lines.push(Line {
            twr_id: twr,
            qty: -*qty,
            price_net: Some(dec(Some(price))),
        });
    }
    let obcy = Some(obcy).filter(|o| !o.is_empty());
    let correction = insert_document(c, "FSKOR", mag, knt, &lines, 0, obcy.as_deref(), now())?;
    c.execute(
        "UPDATE CDN.TraNag SET TrN_Rodzaj = ?2, TrN_Korekta = 1, TrN_ZwrId = ?3, TrN_KorektaZTytulu = ?4 WHERE TrN_TrNID = ?1",
        params![correction, RODZAJ_FS_QUANTITY_CORRECTION, invoice_id, reason],
    )?;
    let mut twrs = Vec::new();
    for l in &lines {
        move_stock(c, l.twr_id, mag, -l.qty, Decimal::ZERO)?;
        twrs.push(l.twr_id);
    }
    Ok((vec![doc_ref(c, correction)?], twrs))
}

/// A Sendit shipment order (ZNP) for an invoice, with one parcel.
fn shipment_order(c: &Connection, fs: i64, tracking: &str, carrier: &str) -> Result<()> {
    let when = now();
    let numer = format!("ZNP/@numerS/{:04}", when.year());
    let nr: i64 = c.query_row(
        "SELECT IFNULL(MAX(SZL_NumerNr), 0) + 1 FROM CDN.SenditZleceniePrzesylki WHERE SZL_NumerString = ?1",
        [&numer],
        |r| r.get(0),
    )?;
    // The recipient as on the invoice.
    let odb: (String, String, String, String, String, String) = c.query_row(
        "SELECT TrN_OdbNazwa1, TrN_OdbUlica, TrN_OdbNrDomu, TrN_OdbNrLokalu, TrN_OdbMiasto, TrN_OdbKodPocztowy FROM CDN.TraNag WHERE TrN_TrNID = ?1",
        [fs],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
    )?;
    let day = format_datetime(&when.date().and_time(chrono::NaiveTime::MIN));
    let szl = office::insert(
        c,
        "CDN.SenditZleceniePrzesylki",
        &[
            ("SZL_FaId", &fs),
            ("SZL_NumerString", &numer),
            ("SZL_NumerNr", &nr),
            ("SZL_DataDok", &day),
            ("SZL_NrListuPrzewozowego", &tracking),
            ("SZL_KurierNazwa", &carrier),
            ("SZL_OdbNazwa", &odb.0),
            ("SZL_OdbUlica", &odb.1),
            ("SZL_OdbNrDomu", &odb.2),
            ("SZL_OdbNrLokalu", &odb.3),
            ("SZL_OdbMiasto", &odb.4),
            ("SZL_OdbKodPocztowy", &odb.5),
        ],
    )?;
    let one = 1i64;
    office::insert(
        c,
        "CDN.SenditPaczki",
        &[
            ("SPA_SZLID", &szl),
            ("SPA_LP", &one),
            ("SPA_NumerListu", &tracking),
        ],
    )?;
    Ok(())
}

/// A relation from document `from` to `to` (`TraNagRelacje`, classes as
/// smallint, `TrR_Flaga` 0).
fn relate(c: &Connection, from: i64, to: i64) -> Result<()> {
    c.execute(
        "INSERT INTO CDN.TraNagRelacje (TrR_TrNId, TrR_TrNTyp, TrR_FaId, TrR_FaTyp, TrR_Flaga) \
         SELECT a.TrN_TrNID, a.TrN_TypDokumentu, b.TrN_TrNID, b.TrN_TypDokumentu, 0 FROM CDN.TraNag a, CDN.TraNag b WHERE a.TrN_TrNID = ?1 AND b.TrN_TrNID = ?2",
        params![from, to],
    )?;
    Ok(())
}

/// A WZ issued for an invoice or receipt points to it through `TrN_FaId`.
fn link_wz(c: &Connection, wz: i64, invoice: i64) -> Result<()> {
    c.execute(
        "UPDATE CDN.TraNag SET TrN_FaId = ?2 WHERE TrN_TrNID = ?1",
        params![wz, invoice],
    )?;
    Ok(())
}

type RoRow = (i64, i64, i64, Option<i64>, i64, Option<i64>, String);

fn open_ro(c: &Connection, id: i64) -> Result<(i64, Option<i64>, Option<String>)> {
    let r: Option<RoRow> = c
        .query_row(
            "SELECT TrN_TypDokumentu, TrN_Bufor, TrN_Anulowany, TrN_ZwroconoCalaIlosc, TrN_MagZrdId, TrN_PodID, TrN_NumerObcy FROM CDN.TraNag WHERE TrN_TrNID = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )
        .optional()?;
    match r {
        None => Err(Error::Other(format!("no document {id}"))),
        Some((t, ..)) if t != 308 => Err(Error::Other(format!("document {id} is not an RO"))),
        Some((_, _, a, ..)) if a != 0 => Err(Error::Other(format!("RO {id} is cancelled"))),
        Some((_, _, _, Some(z), ..)) if z != 1 => {
            Err(Error::Other(format!("RO {id} is already realised")))
        }
        Some((_, _, _, _, mag, knt, obcy)) => Ok((mag, knt, Some(obcy).filter(|o| !o.is_empty()))),
    }
}

fn ro_lines(c: &Connection, id: i64) -> Result<Vec<Line>> {
    let mut st = c.prepare("SELECT TrE_TwrId, CAST(TrE_Ilosc AS TEXT), CAST(TrE_CenaW AS TEXT) FROM CDN.TraElem WHERE TrE_TrNId = ?1 ORDER BY TrE_Lp")?;
    let rows = st.query_map([id], |r| {
        Ok(Line {
            twr_id: r.get(0)?,
            qty: dec(r.get(1)?),
            price_net: Some(dec(r.get(2)?)),
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Warehouse symbols, for callers that pick one.
pub fn warehouse_symbols() -> Vec<&'static str> {
    WAREHOUSES.iter().map(|w| w.0).collect()
}
