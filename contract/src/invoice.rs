//! A sales invoice (FS) or its correction (FSKOR) as Optima holds it: what
//! the buyer's copy shows (art. 106e of the Polish VAT act), read by the
//! agent from the document and sent with the order's progress.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::VatRate;

/// An invoice or a correction of one, with its KSeF state as Optima
/// recorded it. Money is in the document's currency unless named `_pln`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    /// Optima's document id (`TrN_TrNID`).
    pub document_id: i64,
    /// `TrN_NumerPelny`, e.g. "FS/12/2026".
    pub number: String,
    /// For a correction: the number of the invoice it corrects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<String>,
    /// For a correction: why (`TrN_KorektaZTytulu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction_reason: Option<String>,
    /// For a correction: the corrected invoice's date of issue, which the
    /// correction must repeat (art. 106j(2)(3) with art. 106e(1)(1)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_issued_on: Option<NaiveDate>,
    /// For a correction: the corrected invoice's KSeF number, where KSeF
    /// gave it one (art. 106j(2)(2a)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_ksef_number: Option<String>,
    /// Date of issue (`TrN_DataDok`).
    pub issued_on: NaiveDate,
    /// Date of the sale, i.e. of delivery (`TrN_DataWys`).
    pub sold_on: NaiveDate,
    /// The seller as on the company stamp the document names (`TrN_PCID`).
    pub seller: Party,
    /// The buyer (`TrN_Pod*`).
    pub buyer: Party,
    /// The payment form's name (`CDN.FormyPlatnosci`).
    pub payment_form: String,
    /// Payment due (`TrN_Termin`).
    pub payment_due: NaiveDate,
    /// ISO 4217 (`TrN_Waluta`, '' meaning PLN).
    pub currency: String,
    /// For a document in a foreign currency: the rate its VAT was converted
    /// to PLN at (`TrN_KursL`/`TrN_KursM`) and the rate's date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_rate: Option<ExchangeRate>,
    pub lines: Vec<InvoiceLine>,
    /// One row per rate (`CDN.TraVat`).
    pub vat_summary: Vec<VatSummary>,
    pub total_net: Decimal,
    pub total_vat: Decimal,
    pub total_gross: Decimal,
    /// `TrN_SplitPay`: "mechanizm podzielonej płatności".
    #[serde(default)]
    pub split_payment: bool,
    /// `TrN_MetodaKasowa`: "metoda kasowa".
    #[serde(default)]
    pub cash_accounting: bool,
    /// `TrN_NrKSeF` once KSeF accepted the invoice; none before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ksef_number: Option<String>,
    /// When KSeF accepted it (`TrN_KSeFDataPrzyjecia`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ksef_accepted_at: Option<NaiveDateTime>,
}

impl Invoice {
    /// A correction (FSKOR) rather than an invoice.
    pub fn is_correction(&self) -> bool {
        self.corrects.is_some()
    }
}

/// A party to the invoice: name, tax id and address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    /// The tax id (NIP) without its country prefix; none for a consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nip: Option<String>,
    /// The tax id's country prefix for an EU buyer (`TrN_PodNipKraj`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nip_country: Option<String>,
    /// Street with house and flat number, as one line.
    pub street: String,
    pub postcode: String,
    pub city: String,
    /// The country's name as Optima holds it ('' for Poland on many documents).
    pub country: String,
}

/// One line of the invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceLine {
    /// From 1 (`TrE_Lp`).
    pub position: u32,
    /// The goods or service (`TrE_TwrNazwa`).
    pub name: String,
    /// The product code (`TrE_TwrKod`).
    pub code: String,
    /// The unit of measure (`TrE_Jm`).
    pub unit: String,
    pub quantity: Decimal,
    /// Unit net price before the discount (`TrE_Cena0`).
    pub unit_net_price: Decimal,
    /// Discount in percent (`TrE_Rabat`); 0 for none.
    pub discount_percent: Decimal,
    pub vat: VatRate,
    /// Net value of the line after the discount (`TrE_WartoscNetto`).
    pub net: Decimal,
    /// Gross value of the line (`TrE_WartoscBrutto`).
    pub gross: Decimal,
}

/// The net, VAT and gross of one rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VatSummary {
    pub rate: VatRate,
    pub net: Decimal,
    pub vat: Decimal,
    pub gross: Decimal,
}

/// The rate a foreign-currency document was converted at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeRate {
    /// PLN per one unit of the currency.
    pub rate: Decimal,
    pub date: NaiveDate,
    /// The document's VAT in PLN (art. 106e(11)).
    pub total_vat_pln: Decimal,
}
