//! A busy office: other sales channels, deliveries, price changes, new and
//! retired products, reservations realised or cancelled. Each action writes
//! the rows the way Optima does (documents with numbering, lines, dated
//! stock rows, reservations, `*_TS_Mod`) in one transaction, and returns a
//! structured [`ActionLog`] so a test can wait for its effect elsewhere.

use std::path::Path;
use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime};
use rand::Rng;
use rusqlite::{Connection, OptionalExtension, params};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::db;
use crate::error::{Error, Result};
use crate::seed::WAREHOUSES;
use crate::types::{format_datetime, parse_decimal};

/// One office action. Warehouses by symbol (MAG, SKLEP, HURT), products by
/// SKU (`Twr_Kod`), price lists by id (1 purchase, 2 retail gross, 3
/// wholesale net).
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
    /// A new price in a price list.
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
    /// An RO realised into FS and WZ with a tracking number.
    Realise { ro_id: i64, tracking: String },
    /// An RO cancelled.
    Cancel { ro_id: i64 },
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

/// The current stock row of an item in a warehouse (None = all warehouses):
/// the latest `TwI_Data` not in the future.
pub fn current_stock(conn: &Connection, twr: i64, mag: Option<i64>) -> Result<(Decimal, Decimal)> {
    let r: Option<(Option<String>, Option<String>)> = conn
        .query_row(
            "SELECT CAST(TwI_Ilosc AS TEXT), CAST(TwI_Rezerwacje AS TEXT) FROM CDN.TwrIlosci \
             WHERE TwI_TwrId = ?1 AND TwI_MagId IS ?2 AND TwI_Data <= ?3 ORDER BY TwI_Data DESC LIMIT 1",
            params![twr, mag, format_datetime(&now())],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(r.map(|(a, b)| (dec(a), dec(b))).unwrap_or_default())
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
    let when = format_datetime(&now());
    for m in [Some(mag), None] {
        let (q, r) = current_stock(conn, twr, m)?;
        let (q, r) = (q + dqty, (r + dres).max(Decimal::ZERO));
        let updated = conn.execute(
            "UPDATE CDN.TwrIlosci SET TwI_Ilosc = ?4, TwI_Rezerwacje = ?5 WHERE TwI_TwrId = ?1 AND TwI_MagId IS ?2 AND TwI_Data = ?3",
            params![twr, m, when, q.to_string(), r.to_string()],
        )?;
        if updated == 0 {
            conn.execute(
                "INSERT INTO CDN.TwrIlosci (TwI_TwrId, TwI_MagId, TwI_Data, TwI_Ilosc, TwI_Rezerwacje) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![twr, m, when, q.to_string(), r.to_string()],
            )?;
        }
    }
    Ok(())
}

/// Writes a document header and its lines with Optima's numbering
/// (`RO/12/2026`) and totals; returns its id. Stock is the caller's part.
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
    let (ddf, class): (i64, i64) = conn
        .query_row(
            "SELECT DDf_DDfID, DDf_Klasa FROM CDN.DokDefinicje WHERE DDf_Symbol = ?1",
            [symbol],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| Error::Other(format!("no document definition {symbol}")))?;
    let year = when.year();
    let nr: i64 = conn.query_row(
        "SELECT IFNULL(MAX(TrN_NumerNr), 0) + 1 FROM CDN.TraNag WHERE TrN_DDfId = ?1 AND TrN_NumerPelny LIKE ?2",
        params![ddf, format!("%/{year}")],
        |r| r.get(0),
    )?;
    let numer = format!("{symbol}/{nr}/{year}");
    let ts = format_datetime(&now());
    conn.execute(
        "INSERT INTO CDN.TraNag (TrN_DDfId, TrN_TypDokumentu, TrN_Rodzaj, TrN_NumerNr, TrN_NumerPelny, TrN_NumerObcy, TrN_DataDok, TrN_Bufor, TrN_PodID, TrN_MagZrdId, TrN_TS_Zal, TrN_TS_Mod) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
        params![ddf, class, class * 1000, nr, numer, numer_obcy, format_datetime(&when), bufor, customer, mag, ts],
    )?;
    let id = conn.last_insert_rowid();
    let (mut netto, mut brutto) = (Decimal::ZERO, Decimal::ZERO);
    for (i, l) in lines.iter().enumerate() {
        let (kod, nazwa, jm, stawka, gross): (String, String, String, Option<String>, Option<String>) = conn
            .query_row(
                "SELECT Twr_Kod, Twr_Nazwa, Twr_JM, CAST(Twr_Stawka AS TEXT), \
                 (SELECT CAST(TwC_Wartosc AS TEXT) FROM CDN.TwrCeny WHERE TwC_TwrID = Twr_TwrId AND TwC_TwCNumer = 2) \
                 FROM CDN.Towary WHERE Twr_TwrId = ?1",
                [l.twr_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
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
        conn.execute(
            "INSERT INTO CDN.TraElem (TrE_TrNId, TrE_Lp, TrE_TwrId, TrE_MagId, TrE_TwrKod, TrE_TwrNazwa, TrE_Stawka, TrE_JM, TrE_Ilosc, TrE_CenaW, TrE_WartoscNetto, TrE_WartoscBrutto) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![id, i as i64 + 1, l.twr_id, mag, kod, nazwa, stawka.to_string(), jm, l.qty.to_string(), price.to_string(), wn.to_string(), wb.to_string()],
        )?;
    }
    conn.execute(
        "UPDATE CDN.TraNag SET TrN_RazemNetto = ?2, TrN_RazemVAT = ?3, TrN_RazemBrutto = ?4, TrN_TS_Mod = TrN_TS_Mod WHERE TrN_TrNID = ?1",
        params![id, netto.to_string(), (brutto - netto).to_string(), brutto.to_string()],
    )?;
    Ok(id)
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
                 WHERE Twr_TwrId >= ?1 AND Twr_NieAktywny = 0 AND Twr_Kod NOT LIKE 'BAD-%' AND TwI_Ilosc - TwI_Rezerwacje > 3 LIMIT 1",
                [off],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ).optional()?)
        };
        let open_ro = |rng: &mut R| -> Result<Option<i64>> {
            let ids: Vec<i64> = c
                .prepare("SELECT TrN_TrNID FROM CDN.TraNag WHERE TrN_TypDokumentu = 308 AND TrN_Bufor = 0 AND TrN_Anulowany = 0 AND TrN_ZwroconoCalaIlosc = 0")?
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
            73..=84 => Action::Reservation {
                sku,
                warehouse,
                qty: Decimal::from(rng.random_range(1..3)),
                shop_order: None,
            },
            85..=94 => match open_ro(rng)? {
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
            let customer = if *receipt { None } else { Some(1) };
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
            relate(c, inv, wz)?;
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
            let pz = insert_document(
                c,
                "PZ",
                mag,
                None,
                &[Line {
                    twr_id: twr,
                    qty: *qty,
                    price_net: Some(price),
                }],
                0,
                None,
                now(),
            )?;
            c.execute(
                "INSERT INTO CDN.TwrZasoby (TwZ_TwrId, TwZ_MagId, TwZ_TrNId, TwZ_Data, TwZ_Ilosc, TwZ_Cena) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![twr, mag, pz, format_datetime(&now()), qty.to_string(), price.to_string()],
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
                    "SELECT DfC_Typ FROM CDN.DefCeny WHERE DfC_DfCId = ?1",
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
                c.execute(
                    "INSERT INTO CDN.TwrCeny (TwC_TwrID, TwC_TwCNumer, TwC_Typ, TwC_Wartosc) VALUES (?1, ?2, ?3, ?4)",
                    params![twr, price_list, typ, price.to_string()],
                )?;
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
            c.execute(
                "INSERT INTO CDN.Towary (Twr_Kod, Twr_Nazwa, Twr_EAN, Twr_JM, Twr_TwGGIDNumer, Twr_Stawka, Twr_TS_Zal, Twr_TS_Mod) VALUES (?1, ?2, ?3, 'szt.', 0, 23, ?4, ?4)",
                params![sku, name, ean, ts],
            )?;
            let twr = c.last_insert_rowid();
            for (list, typ, v) in [(1, 1, "10.00"), (2, 2, "19.99"), (3, 1, "13.50")] {
                c.execute(
                    "INSERT INTO CDN.TwrCeny (TwC_TwrID, TwC_TwCNumer, TwC_Typ, TwC_Wartosc) VALUES (?1, ?2, ?3, ?4)",
                    params![twr, list, typ, v],
                )?;
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
                Some(1),
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
        Action::Realise { ro_id, tracking } => {
            let (mag, knt, obcy) = open_ro(c, *ro_id)?;
            let lines = ro_lines(c, *ro_id)?;
            let fs = insert_document(c, "FS", mag, knt, &lines, 0, obcy.as_deref(), now())?;
            let wz = insert_document(c, "WZ", mag, knt, &lines, 0, obcy.as_deref(), now())?;
            for id in [fs, wz] {
                c.execute(
                    "UPDATE CDN.TraNag SET TrN_NrPrzesylki = ?2 WHERE TrN_TrNID = ?1",
                    params![id, tracking],
                )?;
            }
            relate(c, *ro_id, fs)?;
            relate(c, fs, wz)?;
            let mut twrs = Vec::new();
            for l in &lines {
                move_stock(c, l.twr_id, mag, -l.qty, -l.qty)?;
                twrs.push(l.twr_id);
            }
            c.execute(
                "UPDATE CDN.TraNag SET TrN_ZwroconoCalaIlosc = 3, TrN_TS_Mod = ?2 WHERE TrN_TrNID = ?1",
                params![ro_id, format_datetime(&now())],
            )?;
            docs.push(doc_ref(c, *ro_id)?);
            docs.push(doc_ref(c, fs)?);
            docs.push(doc_ref(c, wz)?);
            Ok((docs, twrs))
        }
        Action::Cancel { ro_id } => {
            let (mag, _, _) = open_ro(c, *ro_id)?;
            let lines = ro_lines(c, *ro_id)?;
            let mut twrs = Vec::new();
            for l in &lines {
                move_stock(c, l.twr_id, mag, Decimal::ZERO, -l.qty)?;
                twrs.push(l.twr_id);
            }
            c.execute(
                "UPDATE CDN.TraNag SET TrN_Anulowany = 1, TrN_TS_Mod = ?2 WHERE TrN_TrNID = ?1",
                params![ro_id, format_datetime(&now())],
            )?;
            docs.push(doc_ref(c, *ro_id)?);
            Ok((docs, twrs))
        }
    }
}

fn relate(c: &Connection, from: i64, to: i64) -> Result<()> {
    c.execute(
        "INSERT INTO CDN.TraNagRelacje (TrR_TrNId, TrR_TrNTyp, TrR_FaId, TrR_FaTyp) \
         SELECT a.TrN_TrNID, a.TrN_TypDokumentu, b.TrN_TrNID, b.TrN_TypDokumentu FROM CDN.TraNag a, CDN.TraNag b WHERE a.TrN_TrNID = ?1 AND b.TrN_TrNID = ?2",
        params![from, to],
    )?;
    Ok(())
}

type RoRow = (i64, i64, i64, i64, i64, Option<i64>, Option<String>);

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
        Some((_, _, 1, ..)) => Err(Error::Other(format!("RO {id} is cancelled"))),
        Some((_, _, _, z, ..)) if z != 0 => {
            Err(Error::Other(format!("RO {id} is already realised")))
        }
        Some((_, _, _, _, mag, knt, obcy)) => Ok((mag, knt, obcy)),
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
