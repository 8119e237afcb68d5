//! The invoices (FS) and corrections of written orders, as the buyer's copy
//! shows them: the header with both parties, the lines, the VAT table and
//! the KSeF number once Optima has it. Read only; the project never sends
//! anything to KSeF (Optima or the accounting office does).
//!
//! Where each field comes from (Optima's real schema):
//! - `CDN.TraNag`: number, dates (`TrN_DataDok` issue, `TrN_DataWys` sale),
//!   `TrN_Termin`, the buyer (`TrN_Pod*`), currency and rate, totals (the
//!   `*Wal` columns are the document's currency, the others złoty),
//!   `TrN_SplitPay`, `TrN_MetodaKasowa`, `TrN_NrKSeF`,
//!   `TrN_KSeFDataPrzyjecia`, a correction's `TrN_ZwrId` (the corrected
//!   document) and `TrN_KorektaZTytulu`;
//! - `CDN.Pieczatki` by `TrN_PCID`: the seller (the company stamp in force
//!   when the document was issued; where a document names none, the stamp
//!   marked current);
//! - `CDN.FormyPlatnosci` by `TrN_FPlId`: the payment form's name;
//! - `CDN.TraElem`: the lines; `CDN.TraVat`: the table per rate.

use std::collections::HashMap;

use chrono::NaiveDate;
use contract::{ExchangeRate, Invoice, InvoiceLine, Party, VatRate, VatSummary};
use rust_decimal::Decimal;
use tiberius::Query;

use super::cells::Cells;
use super::order_document::rate_of_flag;
use super::{IDS_PER_STATEMENT, fetch, placeholders};
use crate::sql::{SqlClient, SqlError};

const HEADER: &str = "SELECT d.TrN_TrNID, d.TrN_NumerPelny, d.TrN_DataDok, d.TrN_DataWys, d.TrN_Termin, \
     d.TrN_Waluta, d.TrN_KursL, d.TrN_KursM, d.TrN_DataKur, d.TrN_RazemVAT, \
     d.TrN_RazemNettoWal, d.TrN_RazemVATWal, d.TrN_RazemBruttoWal, d.TrN_SplitPay, d.TrN_MetodaKasowa, \
     d.TrN_NrKSeF, d.TrN_KSeFDataPrzyjecia, d.TrN_KorektaZTytulu, o.TrN_NumerPelny AS corrected, \
     o.TrN_DataDok AS corrected_issued, o.TrN_NrKSeF AS corrected_ksef, \
     d.TrN_PodNazwa1, d.TrN_PodNazwa2, d.TrN_PodNazwa3, d.TrN_PodNipE, d.TrN_PodNipKraj, d.TrN_PodUlica, \
     d.TrN_PodNrDomu, d.TrN_PodNrLokalu, d.TrN_PodKodPocztowy, d.TrN_PodMiasto, d.TrN_PodKraj, \
     f.FPl_Nazwa, p.PC_Nazwa1, p.PC_Nazwa2, p.PC_Nazwa3, p.PC_NipE, p.PC_NipKraj, p.PC_Ulica, p.PC_NrDomu, \
     p.PC_NrLokalu, p.PC_KodP, p.PC_Miasto, p.PC_Kraj \
     FROM CDN.TraNag d \
     LEFT JOIN CDN.TraNag o ON o.TrN_TrNID = d.TrN_ZwrId \
     LEFT JOIN CDN.FormyPlatnosci f ON f.FPl_FPlId = d.TrN_FPlId \
     LEFT JOIN CDN.Pieczatki p ON p.PC_PCID = COALESCE(d.TrN_PCID, \
       (SELECT TOP 1 c.PC_PCID FROM CDN.Pieczatki c WHERE c.PC_Aktualna <> 0 ORDER BY c.PC_DataOd DESC)) \
     WHERE d.TrN_TrNID IN";

/// The invoices among `ids` (documents of any class may be asked; only
/// what Optima holds is returned), by document id.
pub async fn invoices(
    client: &mut SqlClient,
    ids: &[i64],
) -> Result<HashMap<i64, Invoice>, SqlError> {
    let ids: Vec<i32> = ids
        .iter()
        .filter_map(|id| i32::try_from(*id).ok())
        .collect();
    let mut found = HashMap::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let list = placeholders(1, chunk.len());
        let mut query = Query::new(format!("{HEADER} ({list})"));
        for id in chunk {
            query.bind(*id);
        }
        for row in fetch(client, query).await? {
            let invoice = header(&Cells::new(&row, "CDN.TraNag"))?;
            found.insert(invoice.document_id, invoice);
        }
        let mut query = Query::new(format!(
            "SELECT TrE_TrNId, TrE_Lp, TrE_TwrNazwa, TrE_TwrKod, TrE_Jm, TrE_Ilosc, TrE_Cena0, TrE_Rabat, \
             TrE_Stawka, TrE_Flaga, TrE_WartoscNettoWal, TrE_WartoscBruttoWal \
             FROM CDN.TraElem WHERE TrE_TrNId IN ({list}) ORDER BY TrE_TrNId, TrE_Lp"
        ));
        for id in chunk {
            query.bind(*id);
        }
        for row in fetch(client, query).await? {
            let cells = Cells::new(&row, "CDN.TraElem");
            let document = cells.int_required("TrE_TrNId")?;
            let Some(invoice) = found.get_mut(&document) else {
                continue;
            };
            invoice.lines.push(line(&cells)?);
        }
        let mut query = Query::new(format!(
            "SELECT TrV_TrNID, TrV_Stawka, TrV_Flaga, TrV_NettoWal, TrV_VATWal \
             FROM CDN.TraVat WHERE TrV_TrNID IN ({list}) ORDER BY TrV_TrNID, TrV_Flaga DESC, TrV_Stawka DESC"
        ));
        for id in chunk {
            query.bind(*id);
        }
        for row in fetch(client, query).await? {
            let cells = Cells::new(&row, "CDN.TraVat");
            let document = cells.int_required("TrV_TrNID")?;
            let Some(invoice) = found.get_mut(&document) else {
                continue;
            };
            let rate = rate(&cells, "TrV_Flaga", "TrV_Stawka")?;
            let net = money(&cells, "TrV_NettoWal")?;
            let vat = money(&cells, "TrV_VATWal")?;
            invoice.vat_summary.push(VatSummary {
                rate,
                net,
                vat,
                gross: net + vat,
            });
        }
    }
    Ok(found)
}

/// One read of new corrections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrectionsRead {
    /// (correction, the document it corrects), oldest first.
    pub corrections: Vec<(i64, i64)>,
    /// The document id the next read goes on from.
    pub next: Option<i64>,
}

/// New documents looked at per round at most.
const DOCUMENTS_PER_ROUND: i64 = 500;
/// Ids below the last one seen that are read again: an id is taken when a
/// transaction inserts the row, which may commit after a later id is
/// already read. A correction seen twice costs nothing (the follower
/// reopens an order only for a correction it has not reported).
const LOOKBACK_IDS: i64 = 1_000;

/// Correcting documents made after document `after` (by `TrN_TrNID`, which
/// only grows): each with the document it corrects (`TrN_ZwrId`), in the
/// buffer or not, so that a finished order is followed again when its
/// invoice gets a correction, weeks after it was shipped. Corrections carry
/// `TrN_Korekta` ≠ 0 (Comarch's filter for "all but buffer, corrections and
/// cancelled" is `IsNull(TrN_Korekta,0)=0 AND TrN_Bufor=0`) and point at the
/// corrected document through `TrN_ZwrId` (Comarch's filter for "documents
/// without corrections": `not exists (… where t.TrN_ZwrId = A.TrN_TrNID)`).
/// The read walks the primary key from `after`; with no `after` yet it
/// only finds where Optima is now (the newest id), so that the first round
/// does not read history.
pub async fn corrections_after(
    client: &mut SqlClient,
    after: Option<i64>,
) -> Result<CorrectionsRead, SqlError> {
    let Some(after) = after else {
        let rows = fetch(
            client,
            Query::new("SELECT MAX(TrN_TrNID) AS newest FROM CDN.TraNag"),
        )
        .await?;
        let newest = match rows.first() {
            Some(row) => Cells::new(row, "CDN.TraNag").int("newest")?,
            None => None,
        };
        return Ok(CorrectionsRead {
            corrections: Vec::new(),
            next: Some(newest.unwrap_or(0)),
        });
    };
    let from = i32::try_from((after - LOOKBACK_IDS).max(0))
        .map_err(|_| SqlError::Unexpected(format!("document id {after} out of range")))?;
    let mut query = Query::new(format!(
        "SELECT TOP {} TrN_TrNID, TrN_ZwrId, TrN_Korekta FROM CDN.TraNag \
         WHERE TrN_TrNID > @P1 ORDER BY TrN_TrNID",
        LOOKBACK_IDS + DOCUMENTS_PER_ROUND
    ));
    query.bind(from);
    let mut found = Vec::new();
    // The last id looked at, correction or not: the next round goes on
    // from there.
    let mut last = Some(after);
    for row in fetch(client, query).await? {
        let cells = Cells::new(&row, "CDN.TraNag");
        let id = cells.int_required("TrN_TrNID")?;
        last = last.max(Some(id));
        let correction = cells.int("TrN_Korekta")?.unwrap_or(0) != 0;
        if let (true, Some(corrected)) = (correction, cells.int("TrN_ZwrId")?) {
            found.push((id, corrected));
        }
    }
    Ok(CorrectionsRead {
        corrections: found,
        next: last,
    })
}

fn header(cells: &Cells<'_>) -> Result<Invoice, SqlError> {
    let currency = match cells.text_or_empty("TrN_Waluta")?.as_str() {
        "" => "PLN".to_owned(),
        code => code.to_owned(),
    };
    let exchange_rate = if currency == "PLN" {
        None
    } else {
        let units = cells.decimal("TrN_KursM")?.unwrap_or(Decimal::ONE);
        let rate = cells.decimal("TrN_KursL")?.unwrap_or_default();
        Some(ExchangeRate {
            rate: if units.is_zero() { rate } else { rate / units },
            date: date(cells, "TrN_DataKur")?,
            total_vat_pln: money(cells, "TrN_RazemVAT")?,
        })
    };
    let corrects = cells.text("corrected")?.map(|n| n.trim().to_owned());
    let correction_reason = corrects
        .as_ref()
        .map(|_| cells.text_or_empty("TrN_KorektaZTytulu"))
        .transpose()?
        .filter(|r| !r.is_empty());
    // What the correction repeats of the corrected invoice.
    let (corrected_issued_on, corrected_ksef_number) = match corrects {
        Some(_) => (
            cells.datetime("corrected_issued")?.map(|d| d.date()),
            present(cells.text_or_empty("corrected_ksef")?),
        ),
        None => (None, None),
    };
    Ok(Invoice {
        document_id: cells.int_required("TrN_TrNID")?,
        number: cells.text_or_empty("TrN_NumerPelny")?,
        corrects,
        correction_reason,
        corrected_issued_on,
        corrected_ksef_number,
        issued_on: date(cells, "TrN_DataDok")?,
        sold_on: date(cells, "TrN_DataWys")?,
        seller: Party {
            name: joined(cells, &["PC_Nazwa1", "PC_Nazwa2", "PC_Nazwa3"])?,
            nip: present(cells.text_or_empty("PC_NipE")?),
            nip_country: present(cells.text_or_empty("PC_NipKraj")?),
            street: street(cells, "PC_Ulica", "PC_NrDomu", "PC_NrLokalu")?,
            postcode: cells.text_or_empty("PC_KodP")?,
            city: cells.text_or_empty("PC_Miasto")?,
            country: cells.text_or_empty("PC_Kraj")?,
        },
        buyer: Party {
            name: joined(cells, &["TrN_PodNazwa1", "TrN_PodNazwa2", "TrN_PodNazwa3"])?,
            nip: present(cells.text_or_empty("TrN_PodNipE")?),
            nip_country: present(cells.text_or_empty("TrN_PodNipKraj")?),
            street: street(cells, "TrN_PodUlica", "TrN_PodNrDomu", "TrN_PodNrLokalu")?,
            postcode: cells.text_or_empty("TrN_PodKodPocztowy")?,
            city: cells.text_or_empty("TrN_PodMiasto")?,
            country: cells.text_or_empty("TrN_PodKraj")?,
        },
        payment_form: cells.text_or_empty("FPl_Nazwa")?,
        payment_due: date(cells, "TrN_Termin")?,
        currency,
        exchange_rate,
        lines: Vec::new(),
        vat_summary: Vec::new(),
        total_net: money(cells, "TrN_RazemNettoWal")?,
        total_vat: money(cells, "TrN_RazemVATWal")?,
        total_gross: money(cells, "TrN_RazemBruttoWal")?,
        split_payment: cells.int("TrN_SplitPay")?.unwrap_or(0) != 0,
        cash_accounting: cells.int("TrN_MetodaKasowa")?.unwrap_or(0) != 0,
        ksef_number: present(cells.text_or_empty("TrN_NrKSeF")?),
        ksef_accepted_at: cells.datetime("TrN_KSeFDataPrzyjecia")?,
    })
}

fn line(cells: &Cells<'_>) -> Result<InvoiceLine, SqlError> {
    let position = cells.int_required("TrE_Lp")?;
    Ok(InvoiceLine {
        position: u32::try_from(position).unwrap_or_default(),
        name: cells.text_or_empty("TrE_TwrNazwa")?,
        code: cells.text_or_empty("TrE_TwrKod")?,
        unit: cells.text_or_empty("TrE_Jm")?,
        quantity: money(cells, "TrE_Ilosc")?.normalize(),
        unit_net_price: money(cells, "TrE_Cena0")?,
        discount_percent: money(cells, "TrE_Rabat")?.normalize(),
        vat: rate(cells, "TrE_Flaga", "TrE_Stawka")?,
        net: money(cells, "TrE_WartoscNettoWal")?,
        gross: money(cells, "TrE_WartoscBruttoWal")?,
    })
}

fn rate(cells: &Cells<'_>, flag: &str, percent: &str) -> Result<VatRate, SqlError> {
    let flag = cells.int(flag)?.unwrap_or(2);
    let percent = cells.decimal(percent)?.unwrap_or_default();
    rate_of_flag(flag, percent)
        .map_err(|e| SqlError::Unexpected(format!("{} {flag}/{percent}: {e}", "a VAT rate")))
}

/// A NOT NULL money or quantity column; NULL reads as 0.
fn money(cells: &Cells<'_>, column: &str) -> Result<Decimal, SqlError> {
    Ok(cells.decimal(column)?.unwrap_or_default())
}

fn date(cells: &Cells<'_>, column: &str) -> Result<NaiveDate, SqlError> {
    cells
        .datetime(column)?
        .map(|d| d.date())
        .ok_or_else(|| SqlError::Unexpected(format!("{column} is NULL on an invoice")))
}

fn present(text: String) -> Option<String> {
    Some(text).filter(|t| !t.is_empty())
}

/// Optima splits a long name over three columns.
fn joined(cells: &Cells<'_>, columns: &[&str]) -> Result<String, SqlError> {
    let mut parts = Vec::new();
    for column in columns {
        let part = cells.text_or_empty(column)?;
        if !part.is_empty() {
            parts.push(part);
        }
    }
    Ok(parts.join(" "))
}

/// "ul. Długa 5/7": the street with the house and flat numbers.
fn street(cells: &Cells<'_>, street: &str, house: &str, flat: &str) -> Result<String, SqlError> {
    let street = cells.text_or_empty(street)?;
    let house = cells.text_or_empty(house)?;
    let flat = cells.text_or_empty(flat)?;
    let number = match (house.is_empty(), flat.is_empty()) {
        (false, false) => format!("{house}/{flat}"),
        (false, true) => house,
        (true, false) => flat,
        (true, true) => String::new(),
    };
    Ok([street, number]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" "))
}
