//! The exchange rate a foreign-currency order is written at.
//!
//! Polish law converts an amount in a foreign currency at the NBP average
//! rate (table A) of the last working day before the day that counts (VAT
//! act art. 31a(1); art. 106e(11) for the tax amounts on an invoice), and
//! Optima proposes the same on a document in a currency: the default rate
//! type, "średni kurs NBP", of the day before the document's date. Optima
//! downloads those rates from NBP into a table that is not in the company
//! schema the agent knows (`optima-real-schema.json` has only the view
//! `CDN.WalElem`, undated), so the agent asks NBP itself, through its
//! public API (`api.nbp.pl`, no key), once per currency and day.
//!
//! An NBP answer of "no data" (a currency not in table A, or no table in the
//! ten days before) parks the order with that reason; NBP unreachable or
//! failing leaves the order for later, like a dead SQL Server.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use thiserror::Error;

/// What NBP's public API is reached at unless `[orders] nbp_url` says otherwise.
pub const NBP_API: &str = "https://api.nbp.pl";

/// How far back a rate is looked for: Polish holidays next to a weekend
/// leave at most four days without a table (Christmas), so ten is ample
/// and far below the 93 days NBP answers for in one request.
const DAYS_BACK: i64 = 10;

/// A rate as Optima stores it on a document: `rate` units of złoty for
/// `per` units of the currency (`TrN_KursL`/`TrN_KursM`, decimal(15,4) and
/// an integer), from NBP table `table` published on `effective`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeRate {
    /// ISO code, upper case.
    pub currency: String,
    pub rate: Decimal,
    pub per: Decimal,
    /// NBP's number of the table, e.g. `232/A/NBP/2026`.
    pub table: String,
    /// The day the table was published: Optima's `TrN_DataKur`.
    pub effective: NaiveDate,
    /// The document date the rate was chosen for (the day after `effective`
    /// or later): a document written on another day needs another rate.
    pub document_day: NaiveDate,
}

impl ExchangeRate {
    /// The rate from NBP's `mid` (złoty per one unit). `TrN_KursL` keeps four
    /// decimals, so a currency quoted with more (HUF, JPY, …) is stored per
    /// 100 or 10,000 units, as Optima shows such rates.
    pub fn from_mid(
        currency: &str,
        mid: Decimal,
        table: &str,
        effective: NaiveDate,
        document_day: NaiveDate,
    ) -> Option<ExchangeRate> {
        if mid <= Decimal::ZERO {
            return None;
        }
        let per = [1i64, 100, 10_000]
            .into_iter()
            .map(Decimal::from)
            .find(|per| (mid * per).normalize().scale() <= 4)
            .unwrap_or(Decimal::from(10_000));
        Some(ExchangeRate {
            currency: currency.trim().to_ascii_uppercase(),
            rate: (mid * per).round_dp(4),
            per,
            table: table.to_owned(),
            effective,
            document_day,
        })
    }

    /// `amount` in złoty, before rounding.
    pub fn in_zloty(&self, amount: Decimal) -> Decimal {
        amount * self.rate / self.per
    }
}

#[derive(Debug, Error)]
pub enum RateError {
    /// NBP has no such rate: the order is parked with this reason.
    #[error("{0}")]
    NotPublished(String),
    /// NBP could not be asked now: the order waits and comes again.
    #[error("the NBP rate cannot be read now: {0}")]
    Unavailable(String),
}

/// NBP's answer to `/api/exchangerates/rates/a/{code}/{from}/{to}/`.
#[derive(Debug, serde::Deserialize)]
struct Series {
    code: String,
    rates: Vec<Published>,
}

#[derive(Debug, serde::Deserialize)]
struct Published {
    no: String,
    #[serde(rename = "effectiveDate")]
    effective_date: NaiveDate,
    /// Read as JSON text, not through a float.
    mid: serde_json::Number,
}

/// NBP table A rates, each (currency, document day) asked once.
pub struct NbpRates {
    http: reqwest::Client,
    base: String,
    known: HashMap<(String, NaiveDate), ExchangeRate>,
}

impl NbpRates {
    pub fn new(base: &str) -> Result<NbpRates, RateError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("optima-sync-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RateError::Unavailable(format!("no HTTP client: {e}")))?;
        Ok(NbpRates {
            http,
            base: base.trim_end_matches('/').to_owned(),
            known: HashMap::new(),
        })
    }

    /// The average rate of `currency` from the last table A published
    /// before `document_day`.
    pub async fn rate_before(
        &mut self,
        currency: &str,
        document_day: NaiveDate,
    ) -> Result<ExchangeRate, RateError> {
        let code = currency.trim().to_ascii_uppercase();
        if code.len() != 3 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(RateError::NotPublished(format!(
                "`{currency}` is not a currency code NBP publishes"
            )));
        }
        if let Some(rate) = self.known.get(&(code.clone(), document_day)) {
            return Ok(rate.clone());
        }
        let to = document_day - chrono::Duration::days(1);
        let from = document_day - chrono::Duration::days(DAYS_BACK);
        let url = format!(
            "{}/api/exchangerates/rates/a/{}/{from}/{to}/?format=json",
            self.base,
            code.to_ascii_lowercase()
        );
        let response = self
            .http
            .get(&url)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| RateError::Unavailable(format!("{url}: {e}")))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| RateError::Unavailable(format!("{url}: {e}")))?;
        let rate = rate_from_answer(&code, document_day, from, to, status.as_u16(), &body)?;
        self.known.insert((code, document_day), rate.clone());
        Ok(rate)
    }
}

/// Reads NBP's answer: 200 with the series (the last rate is the one), 404
/// when it has no table A rate for the code in the range; anything else is
/// NBP failing now.
fn rate_from_answer(
    code: &str,
    document_day: NaiveDate,
    from: NaiveDate,
    to: NaiveDate,
    status: u16,
    body: &str,
) -> Result<ExchangeRate, RateError> {
    match status {
        200 => {}
        404 => {
            return Err(RateError::NotPublished(format!(
                "NBP table A has no {code} average rate from {from} to {to} (NBP: {}); enter the order in Optima by hand",
                body.trim().chars().take(120).collect::<String>()
            )));
        }
        other => {
            return Err(RateError::Unavailable(format!(
                "NBP answered {other}: {}",
                body.trim().chars().take(200).collect::<String>()
            )));
        }
    }
    let series: Series = serde_json::from_str(body)
        .map_err(|e| RateError::Unavailable(format!("NBP's answer does not read: {e}")))?;
    let last = series
        .rates
        .iter()
        .filter(|r| r.effective_date < document_day)
        .max_by_key(|r| r.effective_date)
        .ok_or_else(|| {
            RateError::NotPublished(format!(
                "NBP table A has no {code} average rate from {from} to {to}"
            ))
        })?;
    let mid = Decimal::from_str(&last.mid.to_string())
        .or_else(|_| Decimal::from_scientific(&last.mid.to_string()))
        .map_err(|e| {
            RateError::Unavailable(format!("NBP's rate {} does not read: {e}", last.mid))
        })?;
    if !series.code.eq_ignore_ascii_case(code) {
        return Err(RateError::Unavailable(format!(
            "NBP answered for {} when asked for {code}",
            series.code
        )));
    }
    ExchangeRate::from_mid(code, mid, &last.no, last.effective_date, document_day).ok_or_else(
        || RateError::NotPublished(format!("NBP's {code} rate {mid} is not a usable rate")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// NBP's answer for `code`, for a document dated 2026-12-01 (asked from
    /// 2026-11-21 to 2026-11-30).
    fn answer(code: &str, status: u16, body: &str) -> Result<ExchangeRate, RateError> {
        rate_from_answer(
            code,
            day(2026, 12, 1),
            day(2026, 11, 21),
            day(2026, 11, 30),
            status,
            body,
        )
    }

    #[test]
    fn the_last_table_before_the_document_day_is_taken() {
        // NBP's answer shape (api.nbp.pl, "Kurs średni waluty … w przedziale dat").
        let body = r#"{"table":"A","currency":"euro","code":"EUR","rates":[
            {"no":"231/A/NBP/2026","effectiveDate":"2026-11-27","mid":4.2161},
            {"no":"232/A/NBP/2026","effectiveDate":"2026-11-30","mid":4.2205}]}"#;
        let monday = day(2026, 12, 1);
        let rate = answer("EUR", 200, body).unwrap();
        assert_eq!(rate.rate, dec!(4.2205));
        assert_eq!(rate.per, dec!(1));
        assert_eq!(rate.effective, day(2026, 11, 30));
        assert_eq!(rate.table, "232/A/NBP/2026");
        assert_eq!(rate.document_day, monday);
    }

    #[test]
    fn no_data_parks_and_a_failing_nbp_waits() {
        let reason = answer("XYZ", 404, "404 NotFound - Not Found - Brak danych").unwrap_err();
        assert!(
            matches!(&reason, RateError::NotPublished(r) if r.contains("XYZ") && r.contains("2026-11-21")),
            "{reason}"
        );
        for status in [400, 429, 500, 503] {
            let err = answer("EUR", status, "").unwrap_err();
            assert!(matches!(err, RateError::Unavailable(_)), "{status}: {err}");
        }
        let empty = r#"{"table":"A","currency":"euro","code":"EUR","rates":[]}"#;
        assert!(matches!(
            answer("EUR", 200, empty),
            Err(RateError::NotPublished(_))
        ));
        assert!(matches!(
            answer("EUR", 200, "<html>"),
            Err(RateError::Unavailable(_))
        ));
    }

    #[test]
    fn a_rate_published_on_the_document_day_is_not_the_one() {
        // Asked up to the day before, but should NBP answer with the day
        // itself, the day before's rate still stands.
        let body = r#"{"table":"A","currency":"euro","code":"EUR","rates":[
            {"no":"232/A/NBP/2026","effectiveDate":"2026-11-30","mid":4.2205},
            {"no":"233/A/NBP/2026","effectiveDate":"2026-12-01","mid":4.3000}]}"#;
        let rate = answer("EUR", 200, body).unwrap();
        assert_eq!(
            (rate.rate, rate.effective),
            (dec!(4.2205), day(2026, 11, 30))
        );
    }

    #[tokio::test]
    async fn what_is_not_a_currency_code_is_never_sent_to_nbp() {
        // Port 1 refuses: a request would be `Unavailable`, not `NotPublished`.
        let mut nbp = NbpRates::new("http://127.0.0.1:1").unwrap();
        for code in ["EURO", "E1R", "EU", "e/../x", ""] {
            let answer = nbp.rate_before(code, day(2026, 12, 1)).await;
            assert!(
                matches!(answer, Err(RateError::NotPublished(_))),
                "{code:?}: {answer:?}"
            );
        }
        assert!(matches!(
            nbp.rate_before("EUR", day(2026, 12, 1)).await,
            Err(RateError::Unavailable(_))
        ));
    }

    #[test]
    fn a_rate_with_more_than_four_decimals_is_kept_per_hundred_units() {
        let d = day(2026, 12, 1);
        let huf = ExchangeRate::from_mid("huf", dec!(0.010834), "1", d, d).unwrap();
        assert_eq!(
            (huf.currency.as_str(), huf.rate, huf.per),
            ("HUF", dec!(1.0834), dec!(100))
        );
        // 1000 HUF = 10.834 zł, whatever the storage.
        assert_eq!(huf.in_zloty(dec!(1000)), dec!(10.834));
        let eur = ExchangeRate::from_mid("EUR", dec!(4.2205), "1", d, d).unwrap();
        assert_eq!((eur.rate, eur.per), (dec!(4.2205), dec!(1)));
        assert!(ExchangeRate::from_mid("EUR", dec!(0), "1", d, d).is_none());
    }
}
