//! The SQL that writes a shop order into Optima as one document, and reads
//! what became of it.
//!
//! One transaction per order: the idempotency key (`TrN_ImportRowId`, which
//! Optima keeps unique) is written with the header, so a redelivered
//! command finds it and writes nothing new, and a crash inside the
//! transaction leaves nothing behind. Everything that can make an order
//! unwritable (an unknown SKU, a totals mismatch, a missing payment form) is
//! checked before the first INSERT, so an order is never written in part.
//!
//! This writes the tables directly, as the reference warns against by
//! default: docs/OPERATIONS.md ("Orders in Optima") says what a real
//! deployment must check, and [`crate::order_intake::OrderWriter`] is the seam
//! where Optima's XML import or COM API can replace it.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, NaiveDateTime};
use contract::{Address, Order, VatRate};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use tiberius::Query;

pub use crate::erp_settings::{DocumentKind, WriteSettings};

use super::cells::Cells;
use super::insert::Insert;
use super::{IDS_PER_STATEMENT, fetch, placeholders};
use crate::exchange_rates::ExchangeRate;
use crate::sql::{SqlClient, SqlError};

/// What the write did.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteResult {
    Written {
        document_id: i64,
        document_number: String,
        /// True when a previous delivery had written it already.
        already: bool,
    },
    /// Not written, and will not be until someone acts.
    Parked(String),
}

/// The key Optima keeps unique for this order: 36 characters, like the
/// GUIDs Optima's own imports put in `TrN_ImportRowId`, derived from shop and
/// order id so every delivery of the order computes the same one.
pub fn import_row_id(order_key: &str) -> String {
    let hash = hex::encode(Sha256::digest(format!("order:{order_key}").as_bytes()));
    format!(
        "{}-{}-{}-{}-{}",
        &hash[0..8],
        &hash[8..12],
        &hash[12..16],
        &hash[16..20],
        &hash[20..32]
    )
}

/// Cuts `text` to what an nvarchar(`units`) column holds (SQL Server counts
/// UTF-16 code units), noting in `notes` what was cut.
fn fit(text: &str, units: usize, what: &str, notes: &mut Vec<String>) -> String {
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        used += c.len_utf16();
        if used > units {
            notes.push(format!("{what} skrócono do {units} znaków: „{text}”"));
            return out;
        }
        out.push(c);
    }
    out
}

fn nip_digits(nip: &str) -> Option<String> {
    let digits: String = nip.chars().filter(char::is_ascii_digit).collect();
    (digits.len() == 10).then_some(digits)
}

/// The ISO code of a shop's country ("" and unknown read as Poland's PL).
fn iso_country(code: &str) -> String {
    let code = code.trim().to_ascii_uppercase();
    if code.len() == 2 { code } else { "PL".into() }
}

fn country_name(code: &str) -> String {
    match code.trim().to_ascii_uppercase().as_str() {
        "" | "PL" => "Polska".into(),
        "DE" => "Niemcy".into(),
        "CZ" => "Czechy".into(),
        "SK" => "Słowacja".into(),
        "LT" => "Litwa".into(),
        "UA" => "Ukraina".into(),
        "GB" => "Wielka Brytania".into(),
        other => other.into(),
    }
}

/// A line as it goes into `TraElem`.
#[derive(Debug, Clone, PartialEq)]
struct DocLine {
    sku: String,
    quantity: Decimal,
    vat: VatRate,
    net_before_discount: Decimal,
    total_net: Decimal,
    total_vat: Decimal,
    total_gross: Decimal,
    discount_gross: Decimal,
    /// Net, VAT and gross in złoty: the amounts above for a złoty order,
    /// else each converted at the document's rate and rounded to the grosz
    /// (VAT converted as an amount, art. 106e(11) of the VAT act; gross
    /// their sum, so the złoty columns add up as the currency ones do).
    zloty: (Decimal, Decimal, Decimal),
}

/// The document's currency as its columns hold it.
#[derive(Debug, Clone, PartialEq)]
struct DocumentCurrency {
    /// `TrN_Waluta`: '' for złoty (Comarch's BI reads '' as the system
    /// currency), else the ISO code.
    code: String,
    rate_type: i32,
    rate: Decimal,
    per: Decimal,
    /// `TrN_DataKur`: the day of the NBP table, or the document date.
    rate_day: Option<NaiveDate>,
}

impl DocumentCurrency {
    fn of(rate: Option<&ExchangeRate>, settings: &WriteSettings) -> DocumentCurrency {
        match rate {
            Some(r) => DocumentCurrency {
                code: r.currency.clone(),
                rate_type: settings.currency_rate_type,
                rate: r.rate,
                per: r.per,
                rate_day: Some(r.effective),
            },
            None => DocumentCurrency {
                code: String::new(),
                rate_type: settings.currency_rate_type,
                rate: Decimal::ONE,
                per: Decimal::ONE,
                rate_day: None,
            },
        }
    }
}

/// True for an order in another currency than złoty.
pub fn is_foreign(order: &Order) -> bool {
    let currency = order.currency.trim();
    !currency.is_empty() && !currency.eq_ignore_ascii_case("PLN")
}

/// Money columns are decimal(15,2), quantities decimal(15,4).
fn fits_money(value: Decimal) -> bool {
    value.abs() < Decimal::from(10_000_000_000_000i64)
}

/// Where the goods go: the shipping address when it is complete, else the
/// billing address; `None` when neither names a recipient with a street,
/// city and postcode (the document's `TrN_Odb*` columns and a new
/// customer's card need them).
fn recipient(order: &Order) -> Option<&Address> {
    order
        .buyer
        .shipping
        .as_ref()
        .filter(|a| complete(a))
        .or(Some(&order.buyer.billing).filter(|a| complete(a)))
}

/// A name or company, street, city and postcode.
fn complete(a: &Address) -> bool {
    let named =
        !a.name.trim().is_empty() || a.company.as_deref().is_some_and(|c| !c.trim().is_empty());
    named
        && [&a.street, &a.city, &a.postcode]
            .iter()
            .all(|field| !field.trim().is_empty())
}

/// The address on a new customer's card: billing when complete, else the
/// recipient's (an order with only a shipping address).
fn card_address(order: &Order) -> &Address {
    let billing = &order.buyer.billing;
    if complete(billing) {
        billing
    } else {
        recipient(order).unwrap_or(billing)
    }
}

/// Which mapping named a payment form or a delivery's service item, so a
/// parked order's reason says where to fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappedBy {
    /// The shop's settings in the cloud (the console's Shops page), carried
    /// on the order's create command.
    ShopSettings,
    /// This agent's `[orders]` configuration.
    AgentConfig,
}

impl std::fmt::Display for MappedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MappedBy::ShopSettings => "from the shop's settings in the console",
            MappedBy::AgentConfig => "from [orders] in the agent's configuration",
        })
    }
}

/// The Optima payment form (`FPl_Nazwa`) an order is written with: the
/// one its command carries (the shop's settings in the cloud) first, so
/// the console can change it without touching the office; else
/// `[orders.payment_forms]`, else `default_payment_form`, which stay as
/// they are for installs that map in the agent. None at all: the reason
/// the order is parked.
pub fn payment_form<'a>(
    order: &'a Order,
    settings: &'a WriteSettings,
) -> Result<(&'a str, MappedBy), String> {
    if let Some(form) = order
        .payment_form
        .as_deref()
        .filter(|f| !f.trim().is_empty())
    {
        return Ok((form, MappedBy::ShopSettings));
    }
    settings
        .payment_forms
        .get(&order.payment_method)
        .or(settings.default_payment_form.as_ref())
        .map(|form| (form.as_str(), MappedBy::AgentConfig))
        .ok_or_else(|| {
            format!(
                "payment method `{}` has no Optima payment form: map it on the shop's page in the console, or in [orders.payment_forms] (or set default_payment_form)",
                order.payment_method
            )
        })
}

/// The SKU of the service item a delivery is written as, in the order of
/// [`payment_form`]: the command's, then `[orders.shipping_services]`,
/// then `default_shipping_service`.
pub fn shipping_service<'a>(
    shipping: &'a contract::Shipping,
    settings: &'a WriteSettings,
) -> Result<(&'a str, MappedBy), String> {
    if let Some(sku) = shipping
        .service_sku
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        return Ok((sku, MappedBy::ShopSettings));
    }
    settings
        .shipping_services
        .get(&shipping.method)
        .or(settings.default_shipping_service.as_ref())
        .map(|sku| (sku.as_str(), MappedBy::AgentConfig))
        .ok_or_else(|| {
            format!(
                "shipping method `{}` has no service item: map it on the shop's page in the console, or in [orders.shipping_services] (or set default_shipping_service)",
                shipping.method
            )
        })
}

/// The document's lines (goods, then shipping as a service line) and its
/// checks; an error is the reason the order is parked.
fn document_lines(
    order: &Order,
    settings: &WriteSettings,
    rate: Option<&ExchangeRate>,
) -> Result<Vec<DocLine>, String> {
    if order.lines.is_empty() {
        return Err("the order has no lines".into());
    }
    if recipient(order).is_none() {
        return Err(
            "the order has no complete address (a name or company, street, city and postcode, in shipping or billing)"
                .into(),
        );
    }
    let currency = order.currency.trim().to_ascii_uppercase();
    let rate = if is_foreign(order) {
        match rate {
            Some(rate) if rate.currency == currency => Some(rate),
            Some(rate) => {
                return Err(format!(
                    "the order is in {currency} but the rate found is for {}",
                    rate.currency
                ));
            }
            None => {
                return Err(format!(
                    "the order is in {currency} and [orders] foreign_currency is `park`: enter it in Optima by hand, or set foreign_currency = \"nbp\" to write such orders at the NBP average rate"
                ));
            }
        }
    } else {
        None
    };
    let in_zloty = |(net, vat, gross): (Decimal, Decimal, Decimal)| match rate {
        None => (net, vat, gross),
        Some(rate) => {
            let (net, vat) = (
                round_grosz(rate.in_zloty(net)),
                round_grosz(rate.in_zloty(vat)),
            );
            (net, vat, net + vat)
        }
    };
    let mut lines = Vec::new();
    for line in &order.lines {
        if line.quantity <= Decimal::ZERO || line.quantity >= Decimal::from(100_000_000_000i64) {
            return Err(format!(
                "line {}: quantity {} is out of range",
                line.sku, line.quantity
            ));
        }
        if line.quantity.normalize().scale() > 4 {
            return Err(format!(
                "line {}: quantity {} has more than the 4 decimals Optima keeps",
                line.sku, line.quantity
            ));
        }
        for value in [line.total_net, line.total_vat, line.total_gross] {
            if !fits_money(value) {
                return Err(format!("line {}: amount {value} is out of range", line.sku));
            }
        }
        let (net, vat, gross) = to_grosz(line.total_net, line.total_gross);
        if !adds_up(line.total_net, line.total_vat, line.total_gross) {
            return Err(format!(
                "line {}: net {} + VAT {} is not gross {}",
                line.sku, line.total_net, line.total_vat, line.total_gross
            ));
        }
        let sku = match line.sku.trim().strip_prefix("fee:") {
            // A fee (a cash-on-delivery surcharge, a payment fee) is a
            // service line, as shipping is.
            Some(fee) => settings
                .fee_services
                .get(fee.trim())
                .or(settings.default_fee_service.as_ref())
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "fee `{}` has no service item in [orders.fee_services] and there is no default_fee_service",
                        fee.trim()
                    )
                })?,
            None => line.sku.trim().to_owned(),
        };
        let vat_factor = Decimal::ONE + line.vat.percent() / Decimal::ONE_HUNDRED;
        let discount_gross = round_grosz(line.discount_gross);
        let discount_net = round_grosz(discount_gross / vat_factor);
        lines.push(DocLine {
            sku,
            quantity: line.quantity,
            vat: line.vat,
            net_before_discount: net + discount_net,
            total_net: net,
            total_vat: vat,
            total_gross: gross,
            discount_gross,
            zloty: in_zloty((net, vat, gross)),
        });
    }
    if let Some(shipping) = order.shipping.as_ref().filter(|s| !s.total_gross.is_zero()) {
        let (service, _) = shipping_service(shipping, settings)?;
        let (net, vat, gross) = to_grosz(shipping.total_net, shipping.total_gross);
        if !adds_up(shipping.total_net, shipping.total_vat, shipping.total_gross) {
            return Err("shipping: net + VAT is not gross".into());
        }
        lines.push(DocLine {
            sku: service.to_owned(),
            quantity: Decimal::ONE,
            vat: shipping.vat,
            net_before_discount: net,
            total_net: net,
            total_vat: vat,
            total_gross: gross,
            discount_gross: Decimal::ZERO,
            zloty: in_zloty((net, vat, gross)),
        });
    }
    if lines.iter().any(|l| !fits_money(l.zloty.2)) {
        return Err(format!(
            "an amount in złoty at the {currency} rate is out of range"
        ));
    }
    let net: Decimal = lines.iter().map(|l| l.total_net).sum();
    let vat: Decimal = lines.iter().map(|l| l.total_vat).sum();
    let gross: Decimal = lines.iter().map(|l| l.total_gross).sum();
    let shop = to_grosz(order.total_net, order.total_gross);
    if gross != shop.2 {
        return Err(format!(
            "totals do not add up to the grosz: lines, shipping and fees give net {net}, VAT {vat}, gross {gross}; the shop says net {}, VAT {}, gross {}",
            order.total_net, order.total_vat, order.total_gross
        ));
    }
    Ok(lines)
}

/// The shop's net + VAT is its gross, to less than a grosz: amounts with
/// three decimals may differ by a fraction of one, never by a whole one (for
/// amounts in whole grosze this is exact equality).
fn adds_up(net: Decimal, vat: Decimal, gross: Decimal) -> bool {
    (net + vat - gross).abs() < Decimal::new(1, 2)
}

/// Rounds to the grosz as Optima does (half away from zero: 0.005 → 0.01).
fn round_grosz(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// Net, VAT and gross in Optima's `decimal(15,2)`: net and gross rounded
/// to the grosz and VAT their difference, which is the shop's VAT rounded
/// whenever that kept net + VAT = gross (shop prices are gross, so when
/// rounding broke the sum, gross and net stand and VAT gives way). The
/// callers check the shop's own VAT with [`adds_up`].
fn to_grosz(net: Decimal, gross: Decimal) -> (Decimal, Decimal, Decimal) {
    let (net, gross) = (round_grosz(net), round_grosz(gross));
    (net, gross - net, gross)
}

/// One rate's sums in `TraVat`: net and VAT in the document's currency and
/// in złoty.
#[derive(Debug, Clone, Default, PartialEq)]
struct RateSums {
    net: Decimal,
    vat: Decimal,
    zloty_net: Decimal,
    zloty_vat: Decimal,
}

/// VAT summary per rate and kind (taxed, zw, np), as `TraVat` holds it.
fn vat_summary(lines: &[DocLine]) -> BTreeMap<(Decimal, i64), RateSums> {
    let mut summary: BTreeMap<(Decimal, i64), RateSums> = BTreeMap::new();
    for line in lines {
        let entry = summary
            .entry((line.vat.percent(), vat_flag(line.vat)))
            .or_default();
        entry.net += line.total_net;
        entry.vat += line.total_vat;
        entry.zloty_net += line.zloty.0;
        entry.zloty_vat += line.zloty.1;
    }
    summary
}

async fn exec(client: &mut SqlClient, query: Query<'_>) -> Result<u64, SqlError> {
    let done = query.execute(client).await?;
    super::count_statement(0);
    Ok(done.total())
}

async fn simple(client: &mut SqlClient, sql: &str) -> Result<(), SqlError> {
    client.simple_query(sql).await?.into_results().await?;
    Ok(())
}

/// True for SQL Server's duplicate key errors (2601 unique index, 2627 constraint).
pub fn is_duplicate_key(err: &SqlError) -> bool {
    matches!(err, SqlError::Server(tiberius::error::Error::Server(token)) if matches!(token.code(), 2601 | 2627))
}

/// The document already written for this key, if any.
pub async fn find_written(
    client: &mut SqlClient,
    import_row_id: &str,
) -> Result<Option<(i64, String)>, SqlError> {
    let mut query = Query::new(
        "SELECT TrN_TrNID, TrN_NumerPelny FROM CDN.TraNag WHERE TrN_ImportRowId = CAST(@P1 AS varchar(36))",
    );
    query.bind(import_row_id);
    match fetch(client, query).await?.first() {
        Some(row) => {
            let cells = Cells::new(row, "CDN.TraNag");
            Ok(Some((
                i64::from(cells.id_required("TrN_TrNID")?),
                cells.text_or_empty("TrN_NumerPelny")?,
            )))
        }
        None => Ok(None),
    }
}

/// What a rehearsal wrote before it rolled back: the document as Optima
/// holds it (header columns and lines), or the reason it would be parked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rehearsal {
    pub outcome: String,
    pub header: Vec<(String, String)>,
    pub lines: Vec<Vec<(String, String)>>,
}

/// Writes `order` inside a transaction on the real database, reads the
/// document back and rolls back: proof on a copy of a client's Optima that
/// documents are accepted, before anything goes live. Nothing stays, not
/// even the document number (numbers are MAX+1); an identity value used
/// inside the transaction is not given back (SQL Server never does), which
/// leaves a gap in `TrN_TrNID`, harmless.
pub async fn rehearse(
    client: &mut SqlClient,
    order: &Order,
    settings: &WriteSettings,
    rate: Option<&ExchangeRate>,
) -> Result<Rehearsal, SqlError> {
    let key = import_row_id(&format!("rehearsal:{}", order.key()));
    let lines = match document_lines(order, settings, rate) {
        Ok(lines) => lines,
        Err(reason) => {
            return Ok(Rehearsal {
                outcome: format!("parked before the transaction: {reason}"),
                header: Vec::new(),
                lines: Vec::new(),
            });
        }
    };
    simple(client, "BEGIN TRANSACTION").await?;
    let result: Result<Rehearsal, SqlError> = async {
        let (document_id, document_number) =
            match write_in_transaction(client, order, settings, rate, &key, &lines).await? {
                WriteResult::Written {
                    document_id,
                    document_number,
                    ..
                } => (document_id, document_number),
                WriteResult::Parked(reason) => {
                    return Ok(Rehearsal {
                        outcome: format!("parked: {reason}"),
                        header: Vec::new(),
                        lines: Vec::new(),
                    });
                }
            };
        let id = i32::try_from(document_id).unwrap_or(i32::MAX);
        let header =
            read_back(client, "SELECT * FROM CDN.TraNag WHERE TrN_TrNID = @P1", id).await?;
        let lines = read_back(
            client,
            "SELECT * FROM CDN.TraElem WHERE TrE_TrNId = @P1 ORDER BY TrE_Lp",
            id,
        )
        .await?;
        Ok(Rehearsal {
            outcome: format!("written as {document_number} (id {document_id}), then rolled back"),
            header: header.into_iter().next().unwrap_or_default(),
            lines,
        })
    }
    .await;
    // Always rolled back, whatever happened.
    let rolled_back = simple(client, "ROLLBACK TRANSACTION").await;
    let rehearsal = result?;
    rolled_back?;
    Ok(rehearsal)
}

/// Every row of a one-parameter query as (column, value as text) pairs.
async fn read_back(
    client: &mut SqlClient,
    sql: &str,
    id: i32,
) -> Result<Vec<Vec<(String, String)>>, SqlError> {
    let mut query = Query::new(sql.to_owned());
    query.bind(id);
    let rows = fetch(client, query).await?;
    Ok(rows
        .iter()
        .map(|row| {
            row.cells()
                .map(|(column, data)| (column.name().to_owned(), cell_text(data)))
                .collect()
        })
        .collect())
}

/// A cell as text, for printing.
fn cell_text(data: &tiberius::ColumnData<'static>) -> String {
    use tiberius::ColumnData as D;
    match data {
        D::U8(Some(v)) => v.to_string(),
        D::I16(Some(v)) => v.to_string(),
        D::I32(Some(v)) => v.to_string(),
        D::I64(Some(v)) => v.to_string(),
        D::Bit(Some(v)) => v.to_string(),
        D::F32(Some(v)) => v.to_string(),
        D::F64(Some(v)) => v.to_string(),
        D::String(Some(v)) => format!("'{v}'"),
        D::Guid(Some(v)) => v.to_string(),
        D::Numeric(Some(_)) => <Decimal as tiberius::FromSql>::from_sql(data)
            .ok()
            .flatten()
            .map(|d| d.to_string())
            .unwrap_or_default(),
        D::DateTime(Some(_)) | D::SmallDateTime(Some(_)) | D::DateTime2(Some(_)) => {
            <NaiveDateTime as tiberius::FromSql>::from_sql(data)
                .ok()
                .flatten()
                .map(|d| d.to_string())
                .unwrap_or_default()
        }
        D::Binary(Some(b)) => format!("<{} bytes>", b.len()),
        _ => "NULL".to_owned(),
    }
}

/// A sample shop order for a rehearsal: one line of `sku` (quantity 1 at
/// `gross`, 23 % VAT), a private buyer in Gdańsk, bank transfer, no shipping.
pub fn sample_order(sku: &str, gross: Decimal) -> Order {
    let gross = round_grosz(gross);
    let net = round_grosz(gross / Decimal::new(123, 2));
    let now = chrono::Utc::now();
    Order {
        shop: "proba".into(),
        order_id: format!("proba-{}", now.timestamp()),
        number: "PROBA-1".into(),
        revision: now,
        placed_at: now,
        status: "processing".into(),
        state: contract::OrderState::Paid,
        paid: true,
        currency: "PLN".into(),
        payment_method: "bacs".into(),
        payment_form: None,
        buyer: contract::Buyer {
            billing: Address {
                name: "Zofia Łęcka".into(),
                street: "ul. Długa 1".into(),
                city: "Gdańsk".into(),
                postcode: "80-001".into(),
                country: "PL".into(),
                ..Address::default()
            },
            email: Some("zofia.lecka@example.com".into()),
            ..contract::Buyer::default()
        },
        lines: vec![contract::OrderLine {
            sku: sku.to_owned(),
            name: sku.to_owned(),
            quantity: Decimal::ONE,
            vat: VatRate::Percent(Decimal::from(23)),
            unit_price_gross: gross,
            total_net: net,
            total_vat: gross - net,
            total_gross: gross,
            discount_gross: Decimal::ZERO,
        }],
        shipping: None,
        discount_gross: Decimal::ZERO,
        total_net: net,
        total_vat: gross - net,
        total_gross: gross,
        customer_note: Some("Próba zapisu (agent orders rehearse); wycofana".into()),
    }
}

/// Writes `order` as one document in one transaction, or finds it written.
/// `rate` is the exchange rate of a foreign-currency order (None parks it).
pub async fn write_order(
    client: &mut SqlClient,
    order: &Order,
    settings: &WriteSettings,
    rate: Option<&ExchangeRate>,
) -> Result<WriteResult, SqlError> {
    let key = import_row_id(&order.key());
    if let Some((document_id, document_number)) = find_written(client, &key).await? {
        return Ok(WriteResult::Written {
            document_id,
            document_number,
            already: true,
        });
    }
    let lines = match document_lines(order, settings, rate) {
        Ok(lines) => lines,
        Err(reason) => return Ok(WriteResult::Parked(reason)),
    };
    simple(client, "BEGIN TRANSACTION").await?;
    let written = write_in_transaction(client, order, settings, rate, &key, &lines).await;
    match written {
        Ok(WriteResult::Written {
            document_id,
            document_number,
            ..
        }) => {
            simple(client, "COMMIT TRANSACTION").await?;
            Ok(WriteResult::Written {
                document_id,
                document_number,
                already: false,
            })
        }
        Ok(parked) => {
            simple(client, "ROLLBACK TRANSACTION").await?;
            Ok(parked)
        }
        Err(err) => {
            // The connection may be gone; SQL Server rolls back then anyway.
            let _ = simple(client, "ROLLBACK TRANSACTION").await;
            if is_duplicate_key(&err)
                && let Some((document_id, document_number)) = find_written(client, &key).await?
            {
                // Another delivery of the same order committed first.
                return Ok(WriteResult::Written {
                    document_id,
                    document_number,
                    already: true,
                });
            }
            Err(err)
        }
    }
}

/// What cancelling a shop order did to its document in Optima.
#[derive(Debug, Clone, PartialEq)]
pub enum Withdrawal {
    /// The buffered document was deleted (`Some(number)`), or there was
    /// none for this order (`None`).
    Withdrawn(Option<String>),
    /// The document stays: it has left the buffer, been realised or
    /// cancelled by hand. A person decides; the reason says what to do.
    Held {
        document_number: String,
        reason: String,
    },
}

/// Takes a shop-cancelled order's document out of Optima the way Optima
/// allows it: a document still in the buffer (green on Optima's lists) may
/// be deleted; one saved for good (black) may only be cancelled, by a
/// person, and one realised into an FS, PA or WZ carries the sale on
/// (Comarch's knowledge base, message ID 29447: "W Comarch ERP Optima
/// usunąć można jedynie dokumenty zapisane do bufora"). So a buffered,
/// unrealised document is deleted with its lines and VAT table in one
/// transaction (its number becomes free, as when the office deletes it),
/// and anything else is held with the reason. The row is locked while it
/// is judged, so the office cannot realise it in between.
pub async fn withdraw_order(
    client: &mut SqlClient,
    order_key: &str,
    shop_status: &str,
) -> Result<Withdrawal, SqlError> {
    let key = import_row_id(order_key);
    simple(client, "BEGIN TRANSACTION").await?;
    let judged = withdraw_in_transaction(client, &key, shop_status).await;
    match judged {
        Ok(Withdrawal::Withdrawn(Some(number))) => {
            simple(client, "COMMIT TRANSACTION").await?;
            Ok(Withdrawal::Withdrawn(Some(number)))
        }
        Ok(other) => {
            simple(client, "ROLLBACK TRANSACTION").await?;
            Ok(other)
        }
        Err(err) => {
            let _ = simple(client, "ROLLBACK TRANSACTION").await;
            Err(err)
        }
    }
}

async fn withdraw_in_transaction(
    client: &mut SqlClient,
    key: &str,
    shop_status: &str,
) -> Result<Withdrawal, SqlError> {
    let mut query = Query::new(
        "SELECT TrN_TrNID, TrN_NumerPelny, TrN_Bufor, TrN_Anulowany FROM CDN.TraNag WITH (UPDLOCK, HOLDLOCK) \
         WHERE TrN_ImportRowId = CAST(@P1 AS varchar(36))",
    );
    query.bind(key);
    let rows = fetch(client, query).await?;
    let Some(row) = rows.first() else {
        return Ok(Withdrawal::Withdrawn(None));
    };
    let cells = Cells::new(row, "CDN.TraNag");
    let id = cells.id_required("TrN_TrNID")?;
    let number = cells.text_or_empty("TrN_NumerPelny")?;
    let in_buffer = cells.int("TrN_Bufor")?.unwrap_or(0) != 0;
    let cancelled = cells.int("TrN_Anulowany")?.unwrap_or(0) != 0;
    let held = |why: String| {
        Ok(Withdrawal::Held {
            document_number: number.clone(),
            reason: format!(
                "the order was {shop_status} in the shop, but {number} {why}: Optima allows deleting only a document still in the buffer, so a person decides (cancel it in Optima, or restore the order in the shop)"
            ),
        })
    };
    if cancelled {
        return held("is already cancelled in Optima".into());
    }
    if !in_buffer {
        return held("has left the buffer".into());
    }
    // Realised: a relation in either direction, or a document pointing at
    // it through TrN_FaId.
    let mut query = Query::new(
        "SELECT d.TrN_NumerPelny FROM CDN.TraNagRelacje r JOIN CDN.TraNag d ON d.TrN_TrNID = r.TrR_FaId WHERE r.TrR_TrNId = @P1 \
         UNION SELECT d.TrN_NumerPelny FROM CDN.TraNagRelacje r JOIN CDN.TraNag d ON d.TrN_TrNID = r.TrR_TrNId WHERE r.TrR_FaId = @P1 \
         UNION SELECT d.TrN_NumerPelny FROM CDN.TraNag d WHERE d.TrN_FaId = @P1",
    );
    query.bind(id);
    let derived: Vec<String> = fetch(client, query)
        .await?
        .iter()
        .map(|row| Cells::new(row, "CDN.TraNag").text_or_empty("TrN_NumerPelny"))
        .collect::<Result<_, _>>()?;
    if !derived.is_empty() {
        return held(format!("was realised into {}", derived.join(", ")));
    }
    for sql in [
        "DELETE FROM CDN.TraVat WHERE TrV_TrNID = @P1",
        "DELETE FROM CDN.TraElem WHERE TrE_TrNId = @P1",
        "DELETE FROM CDN.TraNag WHERE TrN_TrNID = @P1",
    ] {
        let mut query = Query::new(sql);
        query.bind(id);
        query.execute(client).await?;
        super::count_statement(0);
    }
    Ok(Withdrawal::Withdrawn(Some(number)))
}

/// A product as a document line needs it.
struct Item {
    id: i32,
    name: String,
    unit: String,
    ean: String,
    catalogue_number: String,
    /// `Twr_Typ`: 0 a service, 1 goods.
    kind: i64,
}

async fn items_by_sku(
    client: &mut SqlClient,
    skus: &[String],
) -> Result<HashMap<String, Item>, SqlError> {
    let mut items = HashMap::new();
    for chunk in skus.chunks(IDS_PER_STATEMENT) {
        let list = (1..=chunk.len())
            .map(|i| format!("CAST(@P{i} AS varchar(50))"))
            .collect::<Vec<_>>()
            .join(",");
        let mut query = Query::new(format!(
            "SELECT Twr_TwrId, Twr_Kod, Twr_Nazwa, Twr_JM, Twr_EAN, Twr_NumerKat, Twr_Typ FROM CDN.Towary WHERE Twr_Kod IN ({list})"
        ));
        for sku in chunk {
            query.bind(sku.as_str());
        }
        for row in fetch(client, query).await? {
            let cells = Cells::new(&row, "CDN.Towary");
            let code = cells.text_or_empty("Twr_Kod")?;
            items.insert(
                code.to_uppercase(),
                Item {
                    id: cells.id_required("Twr_TwrId")?,
                    name: cells.text("Twr_Nazwa")?.unwrap_or_default().to_owned(),
                    unit: cells.text_or_empty("Twr_JM")?,
                    ean: cells.text_or_empty("Twr_EAN")?,
                    catalogue_number: cells.text_or_empty("Twr_NumerKat")?,
                    kind: cells.int("Twr_Typ")?.unwrap_or(1),
                },
            );
        }
    }
    Ok(items)
}

/// The first row's int `column` of a one-parameter query on `table`.
async fn first_id(
    client: &mut SqlClient,
    sql: &str,
    value: &str,
    table: &'static str,
    column: &str,
) -> Result<Option<i32>, SqlError> {
    let mut query = Query::new(sql.to_owned());
    query.bind(value);
    match fetch(client, query).await?.first() {
        Some(row) => Cells::new(row, table).id(column),
        None => Ok(None),
    }
}

/// Runs an INSERT that returns the new row's identity.
async fn insert_returning(
    client: &mut SqlClient,
    insert: &Insert,
    identity: &str,
) -> Result<i32, SqlError> {
    let rows = fetch(client, insert.query(Some(identity))).await?;
    match rows.first() {
        Some(row) => Cells::new(row, insert.table()).id_required("id"),
        None => Err(SqlError::Unexpected(format!(
            "INSERT INTO {} returned no id",
            insert.table()
        ))),
    }
}

/// The customer: by NIP, then by e-mail, then the collective customer for a
/// private buyer, else a new one. Returns its id.
async fn customer(
    client: &mut SqlClient,
    order: &Order,
    settings: &WriteSettings,
    now: NaiveDateTime,
    notes: &mut Vec<String>,
) -> Result<Result<i32, String>, SqlError> {
    let nip = order.buyer.nip.as_deref().and_then(nip_digits);
    if let Some(nip) = &nip
        && let Some(id) = first_id(
            client,
            "SELECT TOP 1 Knt_KntId FROM CDN.Kontrahenci WHERE REPLACE(REPLACE(Knt_Nip, '-', ''), ' ', '') = @P1 AND Knt_Nieaktywny = 0 ORDER BY Knt_KntId",
            nip,
            "CDN.Kontrahenci",
            "Knt_KntId",
        )
        .await?
    {
        return Ok(Ok(id));
    }
    let email = order
        .buyer
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    if let Some(email) = email
        && let Some(id) = first_id(
            client,
            "SELECT TOP 1 Knt_KntId FROM CDN.Kontrahenci WHERE Knt_Email = @P1 AND Knt_Nieaktywny = 0 ORDER BY Knt_KntId",
            email,
            "CDN.Kontrahenci",
            "Knt_KntId",
        )
        .await?
    {
        return Ok(Ok(id));
    }
    if nip.is_none()
        && let Some(code) = &settings.collective_customer
    {
        return Ok(first_id(
            client,
            "SELECT Knt_KntId FROM CDN.Kontrahenci WHERE Knt_Kod = CAST(@P1 AS varchar(20))",
            code,
            "CDN.Kontrahenci",
            "Knt_KntId",
        )
        .await?
        .ok_or_else(|| {
            format!(
                "the collective customer `{code}` (orders.collective_customer) is not in Optima"
            )
        }));
    }
    // A new customer, with a code derived from who they are so that a retry
    // finds the same one.
    let identity = nip
        .clone()
        .or_else(|| email.map(str::to_lowercase))
        .unwrap_or_else(|| order.key());
    let hash = hex::encode(Sha256::digest(identity.as_bytes())).to_uppercase();
    let prefix: String = settings.customer_code_prefix.chars().take(7).collect();
    let code = format!("{prefix}-{}", &hash[..12]);
    if let Some(id) = first_id(
        client,
        "SELECT Knt_KntId FROM CDN.Kontrahenci WHERE Knt_Kod = CAST(@P1 AS varchar(20))",
        &code,
        "CDN.Kontrahenci",
        "Knt_KntId",
    )
    .await?
    {
        return Ok(Ok(id));
    }
    let card = customer_card(order, &code, nip.as_deref(), email, now, notes);
    Ok(Ok(insert_returning(client, &card, "Knt_KntId").await?))
}

/// A new customer's card (`CDN.Kontrahenci`), every NOT NULL column named.
/// Values follow a public integration that creates Optima customers by SQL
/// (optima-real.md E8): the address also as the contact person's, '' for
/// every unused text, 0 for unused flags and limits; `Knt_Rodzaj` 1 and
/// `Knt_Rodzaj_Odbiorca` 1 for a customer; `Knt_OsPlec` 1.
fn customer_card(
    order: &Order,
    code: &str,
    nip: Option<&str>,
    email: Option<&str>,
    now: NaiveDateTime,
    notes: &mut Vec<String>,
) -> Insert {
    let billing = card_address(order);
    let display = billing
        .company
        .clone()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| Some(billing.name.clone()).filter(|n| !n.trim().is_empty()))
        .or_else(|| email.map(str::to_owned))
        .unwrap_or_else(|| format!("Klient sklepu {}", order.shop));
    let second = billing
        .company
        .as_ref()
        .filter(|c| !c.trim().is_empty())
        .map(|_| billing.name.clone())
        .unwrap_or_default();
    let country = iso_country(&billing.country);
    let street = fit(&billing.street, 40, "Ulica", notes);
    let city = fit(&billing.city, 40, "Miasto", notes);
    let postcode = fit(&billing.postcode, 10, "Kod pocztowy", notes);
    let phone = fit(
        billing.phone.as_deref().unwrap_or_default(),
        20,
        "Telefon",
        notes,
    );
    let mut card = Insert::into("CDN.Kontrahenci");
    card.set("Knt_PodmiotTyp", 1)
        .set("Knt_Kod", code)
        .set("Knt_Nazwa1", fit(&display, 50, "Nazwa kontrahenta", notes))
        .set(
            "Knt_Nazwa2",
            fit(&second, 50, "Nazwa kontrahenta (2)", notes),
        )
        .set("Knt_Ulica", street.clone())
        .set("Knt_Miasto", city.clone())
        .set("Knt_KodPocztowy", postcode.clone())
        .set("Knt_Poczta", city.clone())
        .set("Knt_Kraj", country_name(&billing.country))
        .set("Knt_KrajISO", country.clone())
        .set(
            "Knt_NipKraj",
            if nip.is_some() {
                country.clone()
            } else {
                String::new()
            },
        )
        .set("Knt_Nip", nip.unwrap_or_default())
        .set("Knt_NipE", nip.unwrap_or_default())
        .set(
            "Knt_Email",
            fit(email.unwrap_or_default(), 127, "E-mail", notes),
        )
        .set("Knt_Telefon1", phone)
        .set(
            "Knt_Opis",
            format!("Utworzony przez synchronizację ze sklepu {}", order.shop),
        )
        .set("Knt_OsKraj", country_name(&billing.country))
        .set("Knt_OsUlica", street)
        .set("Knt_OsMiasto", city)
        .set("Knt_OsKodPocztowy", postcode)
        .set("Knt_OsPlec", 1)
        .set("Knt_Rodzaj", 1)
        .set("Knt_Rodzaj_Odbiorca", 1)
        // A buyer without a NIP is a final consumer, not a VAT payer.
        .set("Knt_Finalny", i64::from(nip.is_none()))
        .set("Knt_PodatekVat", i64::from(nip.is_some()))
        .set(
            "Knt_ImportRowId",
            import_row_id(&format!("customer:{code}")),
        )
        .set("Knt_TS_Zal", now)
        .set("Knt_TS_Mod", now)
        .empty(&[
            "Knt_Nazwa3",
            "Knt_Adres2",
            "Knt_NrDomu",
            "Knt_NrLokalu",
            "Knt_Gmina",
            "Knt_Powiat",
            "Knt_Wojewodztwo",
            "Knt_Telefon2",
            "Knt_Fax",
            "Knt_URL",
            "Knt_EAN",
            "Knt_GLN",
            "Knt_Regon",
            "Knt_Grupa",
            "Knt_KodTransakcji",
            "Knt_KontoDost",
            "Knt_KontoOdb",
            "Knt_LimitKredytuWal",
            "Knt_Pesel",
            "Knt_RachunekNr",
            "Knt_Zezwolenie",
            "Knt_OsAdres2",
            "Knt_OsEmail",
            "Knt_OsGmina",
            "Knt_OsGSM",
            "Knt_OsNazwisko",
            "Knt_OsNrDomu",
            "Knt_OsNrLokalu",
            "Knt_OsPoczta",
            "Knt_OsPowiat",
            "Knt_OsTelefon",
            "Knt_OsTytul",
            "Knt_OsWojewodztwo",
        ])
        .zero(&[
            "Knt_Algorytm",
            "Knt_AutoWindBlokadaSprzed",
            "Knt_AwfMonit",
            "Knt_AwfZgoda",
            "Knt_BlokadaDok",
            "Knt_Ceny",
            "Knt_Chroniony",
            "Knt_ESklep",
            "Knt_Export",
            "Knt_FCzesci",
            "Knt_FinalnyWegiel",
            "Knt_IBAN",
            "Knt_Informacje",
            "Knt_Komornik",
            "Knt_LimitFlag",
            "Knt_LimitKredytu",
            "Knt_LimitKredytuWykorzystany",
            "Knt_LimitPrzeterKredytFlag",
            "Knt_LimitPrzeterKredytWartosc",
            "Knt_LpAnonimizacji",
            "Knt_MalyPod",
            "Knt_MaxZwloka",
            "Knt_Medialny",
            "Knt_MetodaKasowa",
            "Knt_NaliczajPlatnosc",
            "Knt_NieNaliczajOdsetek",
            "Knt_NieNaliczajOplataCukrowa",
            "Knt_NieRozliczac",
            "Knt_NieUwzglVATZD",
            "Knt_NieUwzgledniajPrzychWKasowymPIT",
            "Knt_NieUwzglwedniajWEwidencjiWegiel",
            "Knt_NieWysylajDokumentuDoKSeF",
            "Knt_Nieaktywny",
            "Knt_PowiazanyUoV",
            "Knt_Rodzaj_Dostawca",
            "Knt_Rodzaj_Konkurencja",
            "Knt_Rodzaj_Partner",
            "Knt_Rodzaj_Potencjalny",
            "Knt_Rolnik",
            "Knt_SplitPay",
            "Knt_Termin",
            "Knt_TerminPlat",
            "Knt_TerminZwrotuKaucji",
            "Knt_UmowaWegiel",
            "Knt_Upust",
            "Knt_ZakazDokumentowHaMag",
            "Knt_ZgodaNaEFaktury",
            "Knt_ZwolnionyZAkcyzy",
        ]);
    card
}

/// A customer card's name and address, as a document copies it into its
/// `TrN_Pod*` block.
struct Card {
    values: Vec<(&'static str, String)>,
}

/// (card column, document column) pairs of the customer block.
const CARD_TO_DOCUMENT: [(&str, &str); 17] = [
    ("Knt_Nazwa1", "TrN_PodNazwa1"),
    ("Knt_Nazwa2", "TrN_PodNazwa2"),
    ("Knt_Nazwa3", "TrN_PodNazwa3"),
    ("Knt_Ulica", "TrN_PodUlica"),
    ("Knt_NrDomu", "TrN_PodNrDomu"),
    ("Knt_NrLokalu", "TrN_PodNrLokalu"),
    ("Knt_Miasto", "TrN_PodMiasto"),
    ("Knt_KodPocztowy", "TrN_PodKodPocztowy"),
    ("Knt_Poczta", "TrN_PodPoczta"),
    ("Knt_Kraj", "TrN_PodKraj"),
    ("Knt_Wojewodztwo", "TrN_PodWojewodztwo"),
    ("Knt_Powiat", "TrN_PodPowiat"),
    ("Knt_Gmina", "TrN_PodGmina"),
    ("Knt_Adres2", "TrN_PodAdres2"),
    ("Knt_NipKraj", "TrN_PodNipKraj"),
    ("Knt_NipE", "TrN_PodNipE"),
    ("Knt_GLN", "TrN_PodmiotGLN"),
];

async fn read_card(client: &mut SqlClient, id: i32) -> Result<Card, SqlError> {
    let columns: Vec<&str> = CARD_TO_DOCUMENT.iter().map(|(k, _)| *k).collect();
    let mut query = Query::new(format!(
        "SELECT {} FROM CDN.Kontrahenci WHERE Knt_KntId = @P1",
        columns.join(", ")
    ));
    query.bind(id);
    let rows = fetch(client, query).await?;
    let row = rows
        .first()
        .ok_or_else(|| SqlError::Unexpected(format!("customer {id} vanished")))?;
    let cells = Cells::new(row, "CDN.Kontrahenci");
    let mut values = Vec::new();
    for (card, document) in CARD_TO_DOCUMENT {
        values.push((document, cells.text_or_empty(card)?));
    }
    Ok(Card { values })
}

/// What [`remarks`] puts before the buyer's own remark.
const BUYER_REMARK: &str = "; uwagi klienta: ";

/// The buyer's remark in an order document's description as
/// [`remarks`] wrote it, while the office has left it there.
pub fn buyer_remark(description: &str) -> Option<&str> {
    let (_, rest) = description.split_once(BUYER_REMARK)?;
    // The writer's own notes follow it, each after "; ".
    let remark = rest.split("; ").next().unwrap_or(rest).trim();
    (!remark.is_empty()).then_some(remark)
}

fn remarks(order: &Order, notes: &[String]) -> String {
    let mut text = format!(
        "Zamówienie {} ze sklepu {} (id {}); płatność: {}",
        order.number, order.shop, order.order_id, order.payment_method
    );
    if let Some(shipping) = &order.shipping {
        text.push_str(&format!("; dostawa: {}", shipping.title));
    }
    if order.buyer.billing.street.trim().is_empty() && order.buyer.shipping.is_none() {
        text.push_str("; brak adresu w zamówieniu");
    }
    if let Some(note) = order.customer_note.as_deref().filter(|n| !n.is_empty()) {
        text.push_str(BUYER_REMARK);
        text.push_str(note);
    }
    for note in notes {
        text.push_str("; ");
        text.push_str(note);
    }
    let mut ignored = Vec::new();
    fit(&text, 1024, "Opis", &mut ignored)
}

/// `TrN_NumerString` from a definition's numbering scheme (`DDf_Numeracja`):
/// every token resolved but `@numerS`, which Optima's `FN_NUMERPELNY`
/// replaces by `TrN_NumerNr`. `@brak` is an empty segment and goes with its
/// separator (a public scheme `@brak/@symbol/@rok_kal/@numerS/@brak` gives
/// `UMW/2025/@numerS`); `@miesiac` is two digits; `@seria` needs a series.
pub fn numbering_string(
    scheme: &str,
    symbol: &str,
    date: NaiveDateTime,
    series: Option<&str>,
) -> Result<String, String> {
    let scheme = scheme.trim();
    let mut parts = Vec::new();
    let mut numbered = false;
    for part in scheme.split('/') {
        let value = match part.trim() {
            "@brak" => continue,
            "@numerS" => {
                numbered = true;
                "@numerS".to_owned()
            }
            "@symbol" => symbol.to_owned(),
            "@rok_kal" => format!("{:04}", chrono::Datelike::year(&date)),
            "@rok" => format!("{:02}", chrono::Datelike::year(&date) % 100),
            "@miesiac" => format!("{:02}", chrono::Datelike::month(&date)),
            "@seria" => match series {
                Some(s) if !s.trim().is_empty() => s.trim().to_owned(),
                _ => {
                    return Err(format!(
                        "the numbering scheme `{scheme}` has a series (@seria): set orders.series"
                    ));
                }
            },
            token if token.starts_with('@') => {
                return Err(format!(
                    "the numbering scheme `{scheme}` has the token {token}, which the agent does not know"
                ));
            }
            literal => literal.to_owned(),
        };
        parts.push(value);
    }
    if !numbered {
        return Err(format!("the numbering scheme `{scheme}` has no @numerS"));
    }
    let text = parts.join("/");
    if text.len() > 31 {
        return Err(format!(
            "the document number `{text}` is longer than TrN_NumerString's 31 characters"
        ));
    }
    Ok(text)
}

/// The document's payment terms: the form's id and its days to pay.
struct PaymentForm {
    id: i32,
    days: i64,
}

/// `TrV_Flaga`/`TrE_Flaga` for a rate: 2 taxed, 1 exempt (zw), 4 not
/// subject (np), as Optima's VAT registers decode them (optima-real.md E2).
fn vat_flag(vat: VatRate) -> i64 {
    match vat {
        VatRate::Percent(_) => 2,
        VatRate::Exempt => 1,
        VatRate::NotSubject | VatRate::ReverseCharge => 4,
    }
}

/// The rate a document's `TrE_Flaga`/`TrV_Flaga` and percentage stand
/// for: [`vat_flag`] read back (4 reads as `np`: Optima gives `oo` the same
/// flag, and only a reverse-charge document tells them apart).
pub(crate) fn rate_of_flag(
    flag: i64,
    percent: Decimal,
) -> Result<VatRate, contract::ContractError> {
    match flag {
        1 => Ok(VatRate::Exempt),
        4 => Ok(VatRate::NotSubject),
        _ => percent.to_string().parse(),
    }
}

async fn write_in_transaction(
    client: &mut SqlClient,
    order: &Order,
    settings: &WriteSettings,
    rate: Option<&ExchangeRate>,
    key: &str,
    lines: &[DocLine],
) -> Result<WriteResult, SqlError> {
    let parked = |reason: String| Ok(WriteResult::Parked(reason));
    let mut skus: Vec<String> = lines.iter().map(|l| l.sku.clone()).collect();
    skus.sort();
    skus.dedup();
    let items = items_by_sku(client, &skus).await?;
    let unknown: Vec<&str> = skus
        .iter()
        .filter(|s| !items.contains_key(&s.to_uppercase()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return parked(format!("unknown SKU in Optima: {}", unknown.join(", ")));
    }
    let Some(warehouse) = first_id(
        client,
        "SELECT Mag_MagId FROM CDN.Magazyny WHERE Mag_Symbol = CAST(@P1 AS varchar(20))",
        &settings.warehouse,
        "CDN.Magazyny",
        "Mag_MagId",
    )
    .await?
    else {
        return parked(format!(
            "warehouse `{}` (orders.warehouse) is not in Optima",
            settings.warehouse
        ));
    };
    let (form_name, mapped_by) = match payment_form(order, settings) {
        Ok(found) => found,
        Err(reason) => return parked(reason),
    };
    let mut query =
        Query::new("SELECT FPl_FPlId, FPl_Termin FROM CDN.FormyPlatnosci WHERE FPl_Nazwa = @P1");
    query.bind(form_name);
    let payment = match fetch(client, query).await?.first() {
        Some(row) => {
            let cells = Cells::new(row, "CDN.FormyPlatnosci");
            PaymentForm {
                id: cells.id_required("FPl_FPlId")?,
                days: cells.int("FPl_Termin")?.unwrap_or(0).clamp(0, 3650),
            }
        }
        None => {
            return parked(format!(
                "payment form `{form_name}` ({mapped_by}) is not in Optima"
            ));
        }
    };
    // DDf_Symbol is not unique in Optima (index DDfSymbol): the active
    // definition of the document's class with the lowest id.
    let symbol = settings.document.symbol();
    let class = settings.document.class();
    let mut query = Query::new(
        "SELECT TOP 1 DDf_DDfID, DDf_Numeracja FROM CDN.DokDefinicje WHERE DDf_Symbol = CAST(@P1 AS varchar(5)) AND DDf_Klasa = @P2 AND DDf_Nieaktywna = 0 ORDER BY DDf_DDfID",
    );
    query.bind(symbol);
    query.bind(class);
    let (definition, scheme) = match fetch(client, query).await?.first() {
        Some(row) => {
            let cells = Cells::new(row, "CDN.DokDefinicje");
            (
                cells.id_required("DDf_DDfID")?,
                cells.text_or_empty("DDf_Numeracja")?,
            )
        }
        None => {
            return parked(format!(
                "no active document definition {symbol} (class {class}) in Optima"
            ));
        }
    };

    let now = super::server_now(client).await?;
    // Document dates are dates: Optima's own filters compare TrN_DataDok
    // with a date (optima-real.md §0.8).
    let today = now.date().and_time(chrono::NaiveTime::MIN);
    if let Some(rate) = rate.filter(|r| r.document_day != now.date()) {
        // Midnight passed since the rate was looked up: the document needs
        // the next day's rate. Nothing is written; the command comes again.
        return Err(SqlError::Unexpected(format!(
            "the {} rate was looked up for {} and the document date is now {}: written again with the new rate",
            rate.currency,
            rate.document_day,
            now.date()
        )));
    }
    let currency = DocumentCurrency::of(rate, settings);
    let number_string = match numbering_string(&scheme, symbol, today, settings.series.as_deref()) {
        Ok(text) => text,
        Err(reason) => return parked(reason),
    };

    let mut notes = Vec::new();
    let customer = match customer(client, order, settings, now, &mut notes).await? {
        Ok(id) => id,
        Err(reason) => return parked(reason),
    };
    let card = read_card(client, customer).await?;

    // UPDLOCK+HOLDLOCK on the unique (TypDokumentu, NumerString, NumerNr,
    // Anulowany) index: two writers cannot take the same number, and the
    // index itself is the backstop.
    let mut query = Query::new(
        "SELECT ISNULL(MAX(TrN_NumerNr), 0) + 1 AS nr FROM CDN.TraNag WITH (UPDLOCK, HOLDLOCK) WHERE TrN_TypDokumentu = @P1 AND TrN_NumerString = CAST(@P2 AS varchar(31))",
    );
    query.bind(class);
    query.bind(number_string.as_str());
    let number = match fetch(client, query).await?.first() {
        Some(row) => Cells::new(row, "CDN.TraNag").id_required("nr")?,
        None => {
            return Err(SqlError::Unexpected(
                "numbering query returned no row".into(),
            ));
        }
    };
    let full_number = number_string.replace("@numerS", &number.to_string());

    // Checked complete before the transaction (document_lines).
    let recipient: &Address = recipient(order).unwrap_or(&order.buyer.billing);
    let line_names: Vec<String> = lines
        .iter()
        .filter_map(|l| items.get(&l.sku.to_uppercase()))
        .map(|item| fit(&item.name, 255, "Nazwa towaru", &mut notes))
        .collect();
    let header = document_header(&mut DocumentHeader {
        order,
        definition,
        class,
        number_string: &number_string,
        number,
        key,
        customer,
        card: &card,
        recipient,
        warehouse,
        payment: &payment,
        lines,
        currency: &currency,
        today,
        now,
        notes: &mut notes,
    });
    let document_id = insert_returning(client, &header, "TrN_TrNID").await?;
    crate::failpoint::hit("order_in_transaction");

    for (index, (line, name)) in lines.iter().zip(line_names).enumerate() {
        let Some(item) = items.get(&line.sku.to_uppercase()) else {
            continue;
        };
        let row = document_line(
            document_id,
            index + 1,
            class,
            warehouse,
            line,
            item,
            name,
            &currency,
            today,
        );
        exec(client, row.query(None)).await?;
    }
    for ((rate, flag), sums) in vat_summary(lines) {
        let row = vat_row(document_id, rate, flag, &sums);
        exec(client, row.query(None)).await?;
    }
    Ok(WriteResult::Written {
        document_id: i64::from(document_id),
        document_number: full_number,
        already: false,
    })
}

/// One `CDN.TraVat` row: a rate's net and VAT, in złoty and in the
/// document's currency (the same for a złoty document).
fn vat_row(document_id: i32, rate: Decimal, flag: i64, sums: &RateSums) -> Insert {
    let mut row = Insert::into("CDN.TraVat");
    row.set("TrV_TrNID", document_id)
        .set("TrV_Stawka", rate)
        .set("TrV_Flaga", flag)
        .set("TrV_Netto", sums.zloty_net)
        .set("TrV_VAT", sums.zloty_vat)
        .set("TrV_NettoWal", sums.net)
        .set("TrV_VATWal", sums.vat)
        .zero(&["TrV_Typ", "TrV_Zrodlowa"]);
    row
}

/// What the document header is made of.
struct DocumentHeader<'a> {
    order: &'a Order,
    definition: i32,
    class: i32,
    number_string: &'a str,
    number: i32,
    key: &'a str,
    customer: i32,
    card: &'a Card,
    recipient: &'a Address,
    warehouse: i32,
    payment: &'a PaymentForm,
    lines: &'a [DocLine],
    currency: &'a DocumentCurrency,
    today: NaiveDateTime,
    now: NaiveDateTime,
    notes: &'a mut Vec<String>,
}

/// The `CDN.TraNag` row of a buffered sales document, every NOT NULL column
/// named. Values follow a public direct INSERT of an Optima document
/// (optima-real.md E9): the customer as subject, recipient and payer
/// (`*Typ` 1 = customer), `KursNumer` 3 with rate 1/1 for złoty, '' for
/// unused texts (including `TrN_Waluta`: Comarch's BI reads '' as the
/// system currency, złoty), 0 for unused flags. A document in a currency
/// has its code, the rate and the rate's day, its amounts in `*Wal` and
/// their złoty value in the plain columns. The source is marked as an API import
/// (`TrN_eSklepZrodlo` 6, as Comarch BI decodes it; 0 would claim Comarch
/// e-Sklep). `TrN_TypNB` 2: shop prices are gross.
fn document_header(h: &mut DocumentHeader<'_>) -> Insert {
    let net: Decimal = h.lines.iter().map(|l| l.total_net).sum();
    let vat: Decimal = h.lines.iter().map(|l| l.total_vat).sum();
    let gross: Decimal = h.lines.iter().map(|l| l.total_gross).sum();
    let zloty_net: Decimal = h.lines.iter().map(|l| l.zloty.0).sum();
    let zloty_vat: Decimal = h.lines.iter().map(|l| l.zloty.1).sum();
    let zloty_gross: Decimal = h.lines.iter().map(|l| l.zloty.2).sum();
    let c = h.currency;
    let rate_day = c
        .rate_day
        .map(|d| d.and_time(chrono::NaiveTime::MIN))
        .unwrap_or(h.today);
    let notes = &mut Vec::new();
    let r = h.recipient;
    let recipient_name = r
        .company
        .as_ref()
        .filter(|c| !c.trim().is_empty())
        .map(|c| format!("{c} ({})", r.name))
        .unwrap_or_else(|| r.name.clone());
    let mut doc = Insert::into("CDN.TraNag");
    doc.set("TrN_DDfId", h.definition)
        .set("TrN_TypDokumentu", h.class)
        .set("TrN_Rodzaj", h.class * 1000)
        .set("TrN_NumerString", h.number_string)
        .set("TrN_NumerNr", h.number)
        .set(
            "TrN_NumerObcy",
            h.order.number.chars().take(256).collect::<String>(),
        )
        .set("TrN_Bufor", 1)
        .set("TrN_Anulowany", 0)
        .set("TrN_DataDok", h.today)
        .set("TrN_DataWys", h.today)
        .set("TrN_DataOpe", h.today)
        .set("TrN_DataKur", rate_day)
        .set(
            "TrN_Termin",
            h.today + chrono::Duration::days(h.payment.days),
        )
        .set("TrN_PodmiotTyp", 1)
        .set("TrN_PodID", h.customer)
        .set("TrN_OdbiorcaTyp", 1)
        .set("TrN_OdbID", h.customer)
        .set("TrN_PlatnikTyp", 1)
        .set("TrN_PlatnikID", h.customer)
        .set("TrN_MagZrdId", h.warehouse)
        .set("TrN_FPlId", h.payment.id)
        .set("TrN_RazemNetto", zloty_net)
        .set("TrN_RazemVAT", zloty_vat)
        .set("TrN_RazemBrutto", zloty_gross)
        .set("TrN_RazemNettoWal", net)
        .set("TrN_RazemVATWal", vat)
        .set("TrN_RazemBruttoWal", gross)
        .set("TrN_Waluta", c.code.clone())
        .set("TrN_KursNumer", c.rate_type)
        .set("TrN_KursL", c.rate)
        .set("TrN_KursM", c.per)
        .set("TrN_TypNB", 2)
        .set("TrN_ImportRowId", h.key)
        .set("TrN_eSklepZrodlo", 6)
        .set("TrN_TS_Zal", h.now)
        .set("TrN_TS_Mod", h.now);
    for (column, value) in &h.card.values {
        doc.set(column, value.clone());
    }
    doc.set("TrN_OdbNazwa1", fit(&recipient_name, 50, "Odbiorca", notes))
        .set("TrN_OdbUlica", fit(&r.street, 40, "Ulica odbiorcy", notes))
        .set("TrN_OdbMiasto", fit(&r.city, 40, "Miasto odbiorcy", notes))
        .set(
            "TrN_OdbKodPocztowy",
            fit(&r.postcode, 10, "Kod pocztowy odbiorcy", notes),
        )
        .set("TrN_OdbPoczta", fit(&r.city, 40, "Poczta odbiorcy", notes))
        .set("TrN_OdbKraj", country_name(&r.country))
        .set(
            "TrN_OdbTelefon",
            fit(
                r.phone.as_deref().unwrap_or_default(),
                20,
                "Telefon odbiorcy",
                notes,
            ),
        )
        .empty(&[
            "TrN_OdbNazwa2",
            "TrN_OdbNazwa3",
            "TrN_OdbNrDomu",
            "TrN_OdbNrLokalu",
            "TrN_OdbAdres2",
            "TrN_OdbGmina",
            "TrN_OdbPowiat",
            "TrN_OdbWojewodztwo",
            "TrN_OdbNipE",
            "TrN_OdbNipKraj",
            "TrN_OdbiorcaGLN",
            "TrN_Odebral",
            "TrN_NumerPelnyPrw",
            "TrN_Kategoria",
            "TrN_KodKraju",
            "TrN_KodTransakcji",
            "TrN_NotaKorPo",
            "TrN_NotaKorPrzed",
        ])
        .zero(&[
            "TrN_AktualizacjaCenyZakKor",
            "TrN_AwizoId",
            "TrN_BlokadaPlatnosci",
            "TrN_BzpId",
            "TrN_Centrala",
            "TrN_Detal",
            "TrN_DokMOSMMId",
            "TrN_EdycjaTabelkiVAT",
            "TrN_Export",
            "TrN_FADokumentDostawy",
            "TrN_Finalny",
            "TrN_FinalnyWegiel",
            "TrN_Fiskalna",
            "TrN_Korekta",
            "TrN_KSeFStatusId",
            "TrN_MetodaKasowa",
            "TrN_NieNaliczajOplataCukrowa",
            "TrN_NieUwzglwedniajWEwidencjiWegiel",
            "TrN_NieWysylajDokumentuDoKSeF",
            "TrN_NrListuPrzewozowegoTypKuriera",
            "TrN_PAFACzesciowe",
            "TrN_PARodzajKor",
            "TrN_PlatElemWalSys",
            "TrN_PlatKaucje",
            "TrN_PlatnikRachunekLp",
            "TrN_PlatnoscNaWZ",
            "TrN_PodatekVat",
            "TrN_PunktyZam",
            "TrN_PunktyZap",
            "TrN_Rabat",
            "TrN_RabatWartosc",
            "TrN_RezerwacjaWew",
            "TrN_RozliczamPodatekWOSS",
            "TrN_SplitPay",
            "TrN_StatusInt",
            "TrN_StawkaNPOO",
            "TrN_TaxFreePotwierdzony",
            "TrN_TrSTyp",
            "TrN_TrybNettoVAT",
            "TrN_UmowaWegiel",
            "TrN_VatDlaDokWal",
            "TrN_WartoscOO",
            "TrN_WartoscSP",
            "TrN_ZwolnionyZAkcyzy",
            "Trn_DokumentDostawy",
            "Trn_Sent",
            "Trn_WszystkoPlSyncho",
        ]);
    h.notes.append(notes);
    doc.set("TrN_Opis", remarks(h.order, h.notes));
    doc
}

/// The `CDN.TraElem` row of one line, every NOT NULL column named (E9's
/// line values: active, the product's kind, flag and codes copied, unit
/// conversion 1/1 into the base unit; prices in the document's currency,
/// values in złoty and in the currency).
#[allow(clippy::too_many_arguments)]
fn document_line(
    document_id: i32,
    position: usize,
    class: i32,
    warehouse: i32,
    line: &DocLine,
    item: &Item,
    name: String,
    currency: &DocumentCurrency,
    today: NaiveDateTime,
) -> Insert {
    let unit_net = (line.total_net / line.quantity).round_dp(4);
    let unit_before = (line.net_before_discount / line.quantity).round_dp(4);
    let before_gross = line.total_gross + line.discount_gross;
    let discount_percent = if before_gross.is_zero() {
        Decimal::ZERO
    } else {
        (line.discount_gross / before_gross * Decimal::ONE_HUNDRED).round_dp(2)
    };
    let position = i64::try_from(position).unwrap_or(i64::MAX);
    let mut row = Insert::into("CDN.TraElem");
    row.set("TrE_TrNId", document_id)
        .set("TrE_Lp", position)
        .set("TrE_LpPow", position)
        .set("TrE_TypDokumentu", class)
        .set("TrE_Aktywny", 1)
        .set("TrE_TwrId", item.id)
        .set("TrE_MagId", warehouse)
        .set("TrE_TwrKod", line.sku.clone())
        .set("TrE_TwrNazwa", name)
        .set("TrE_TwrEAN", item.ean.chars().take(40).collect::<String>())
        .set(
            "TrE_TwrNumerKat",
            item.catalogue_number.chars().take(40).collect::<String>(),
        )
        .set("TrE_TwrTyp", item.kind)
        .set("TrE_Stawka", line.vat.percent())
        .set("TrE_Flaga", vat_flag(line.vat))
        .set("TrE_TypNB", 2)
        .set("TrE_Jm", item.unit.clone())
        .set("TrE_JmZ", item.unit.clone())
        .set("TrE_JMPrzelicznikL", Decimal::ONE)
        .set("TrE_JMPrzelicznikM", Decimal::ONE)
        .set("TrE_Ilosc", line.quantity)
        .set("TrE_IloscJM", line.quantity)
        .set("TrE_Cena0", unit_before)
        .set("TrE_Cena0WD", unit_before)
        .set("TrE_Rabat", discount_percent)
        .set("TrE_CenaW", unit_net)
        .set("TrE_CenaWWD", unit_net)
        .set("TrE_CenaT", unit_net)
        .set("TrE_WartoscNetto", line.zloty.0)
        .set("TrE_WartoscBrutto", line.zloty.2)
        .set("TrE_WartoscNettoWal", line.total_net)
        .set("TrE_WartoscBruttoWal", line.total_gross)
        .set("TrE_Waluta", currency.code.clone())
        .set("TrE_KursNumer", currency.rate_type)
        .set("TrE_KursL", currency.rate)
        .set("TrE_KursM", currency.per)
        .set("TrE_DataDok", today)
        .set("TrE_DataOpe", today)
        .empty(&["TrE_TwrKodDostawcy", "TrE_TwrOpis", "TrE_TwrSWW"])
        .zero(&[
            "TrE_AkcyzaOpal",
            "TrE_AkcyzaStawka",
            "TrE_DoZwrotu",
            "TrE_FakZalKwotaMax",
            "TrE_IFA24",
            "TrE_IFA24Mag",
            "TrE_IloscJMKW",
            "TrE_IloscKW",
            "TrE_JmCalkowite",
            "TrE_Kaucja",
            "TrE_KosztKGO",
            "TrE_KosztUslugi",
            "TrE_KV7ID",
            "TrE_KWRoznicaKursowa",
            "TrE_OplataCukrowaDoliczDoCeny",
            "TrE_OplataCukrowaOdCukrowStala",
            "TrE_OplataCukrowaOdCukrowZawartoscGram",
            "TrE_OplataCukrowaOdCukrowZawartoscRoztwor",
            "TrE_OplataCukrowaOdCukrowZawartoscSokow20",
            "TrE_OplataCukrowaOdCukrowZmienna",
            "TrE_OplataCukrowaOdKofeinyTauryny",
            "TrE_OplataCukrowaOdKofeinyTaurynyStala",
            "TrE_OplataCukrowaOdSubstancjiSlodzacych",
            "TrE_OplataCukrowaPrzelicznikML",
            "TrE_PATrEId",
            "TrE_Prog",
            "TrE_SplitPay",
            "TrE_StawkaOSS",
            "TrE_TwCNumer",
            "TrE_Upust",
            "TrE_UpustKnt",
            "TrE_UpustKntTyp",
            "TrE_UpustTyp",
            "TrE_UslugaZlozona",
            "TrE_UslugaZlozonaId",
            "TrE_WartoscZakupuWylicz",
            "TrE_ZestawWiazanie",
            "TrE_Zrodlowa",
            "TrE_ZTwGlowny",
            "TrE_ZTwID",
            "TrE_ZTwIlosc",
            "Tre_CenaZCzteremaMiejscami",
            "Tre_OdwrotneObciazenie",
        ]);
    row
}

/// A document in the chain that starts at a written order's document.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedDocument {
    pub id: i64,
    /// `TrN_TypDokumentu`: 302 FS, 305 PA, 306 WZ, 308 RO.
    pub class: i32,
    pub number: String,
    /// The waybill: the document's `TrN_NrListuPrzewozowego`, or a courier
    /// shipment (Sendit ZNP) made for it.
    pub tracking: Option<String>,
    /// The courier, where a Sendit shipment names it.
    pub carrier: Option<String>,
    pub cancelled: bool,
    pub in_buffer: bool,
}

const CHAIN_COLUMNS: &str = "d.TrN_TrNID, d.TrN_TypDokumentu, d.TrN_NumerPelny, d.TrN_NrListuPrzewozowego, d.TrN_Anulowany, d.TrN_Bufor";

/// For each root document: itself first, then what it was realised into, two
/// levels down (RO → FS/PA → WZ, and FS → its corrections). Links are
/// `CDN.TraNagRelacje` (Optima stores each relation in both directions, so a
/// document already in the chain is not added again), `TrN_FaId` (a WZ
/// points at its invoice) and `TrN_ZwrId` (a correction points at the
/// document it corrects; index `TrNZwrot`).
/// Tracking numbers missing on the documents are looked up in the courier
/// shipments (`CDN.SenditZleceniePrzesylki`, `SZL_FaId`, and its parcels).
pub async fn document_chains(
    client: &mut SqlClient,
    roots: &[i64],
) -> Result<HashMap<i64, Vec<LinkedDocument>>, SqlError> {
    let mut chains: HashMap<i64, Vec<LinkedDocument>> = HashMap::new();
    let ids: Vec<i32> = roots
        .iter()
        .filter_map(|id| i32::try_from(*id).ok())
        .collect();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let mut query = Query::new(format!(
            "SELECT d.TrN_TrNID AS parent_id, {CHAIN_COLUMNS} FROM CDN.TraNag d WHERE d.TrN_TrNID IN ({})",
            placeholders(1, chunk.len())
        ));
        for id in chunk {
            query.bind(*id);
        }
        // document id → its root
        let mut seen: HashMap<i64, i64> = HashMap::new();
        for row in fetch(client, query).await? {
            let (_, doc) = linked(&row)?;
            seen.insert(doc.id, doc.id);
            chains.entry(doc.id).or_default().push(doc);
        }
        let mut parents: Vec<i64> = seen.keys().copied().collect();
        for _level in 0..2 {
            let parent_ids: Vec<i32> = parents
                .iter()
                .filter_map(|id| i32::try_from(*id).ok())
                .collect();
            if parent_ids.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for part in parent_ids.chunks(IDS_PER_STATEMENT) {
                let list = placeholders(1, part.len());
                let mut query = Query::new(format!(
                    "SELECT r.TrR_TrNId AS parent_id, {CHAIN_COLUMNS} FROM CDN.TraNagRelacje r JOIN CDN.TraNag d ON d.TrN_TrNID = r.TrR_FaId WHERE r.TrR_TrNId IN ({list}) \
                     UNION SELECT d.TrN_FaId AS parent_id, {CHAIN_COLUMNS} FROM CDN.TraNag d WHERE d.TrN_FaId IN ({list}) \
                     UNION SELECT d.TrN_ZwrId AS parent_id, {CHAIN_COLUMNS} FROM CDN.TraNag d WHERE d.TrN_ZwrId IN ({list}) ORDER BY 2"
                ));
                for id in part {
                    query.bind(*id);
                }
                for row in fetch(client, query).await? {
                    let (parent, doc) = linked(&row)?;
                    let Some(root) = parent.and_then(|p| seen.get(&p).copied()) else {
                        continue;
                    };
                    if seen.contains_key(&doc.id) {
                        continue;
                    }
                    seen.insert(doc.id, root);
                    next.push(doc.id);
                    chains.entry(root).or_default().push(doc);
                }
            }
            parents = next;
        }
        courier_shipments(client, &mut chains).await?;
    }
    Ok(chains)
}

/// Fills in the tracking number (and carrier) of chain documents from the
/// courier shipments made for them, where the document has none itself.
async fn courier_shipments(
    client: &mut SqlClient,
    chains: &mut HashMap<i64, Vec<LinkedDocument>>,
) -> Result<(), SqlError> {
    let untracked: Vec<i32> = chains
        .values()
        .flatten()
        .filter(|d| d.tracking.is_none())
        .filter_map(|d| i32::try_from(d.id).ok())
        .collect();
    let mut found: HashMap<i64, (String, Option<String>)> = HashMap::new();
    for part in untracked.chunks(IDS_PER_STATEMENT) {
        let mut query = Query::new(format!(
            "SELECT z.SZL_FaId, z.SZL_NrListuPrzewozowego, z.SZL_KurierNazwa, \
             (SELECT TOP 1 p.SPA_NumerListu FROM CDN.SenditPaczki p WHERE p.SPA_SZLID = z.SZL_SZLID AND p.SPA_NumerListu <> '' ORDER BY p.SPA_LP) AS parcel \
             FROM CDN.SenditZleceniePrzesylki z WHERE z.SZL_FaId IN ({}) ORDER BY z.SZL_SZLID",
            placeholders(1, part.len())
        ));
        for id in part {
            query.bind(*id);
        }
        for row in fetch(client, query).await? {
            let cells = Cells::new(&row, "CDN.SenditZleceniePrzesylki");
            let Some(document) = cells.int("SZL_FaId")? else {
                continue;
            };
            let number = Some(cells.text_or_empty("SZL_NrListuPrzewozowego")?)
                .filter(|n| !n.is_empty())
                .or(Some(cells.text_or_empty("parcel")?).filter(|n| !n.is_empty()));
            if let Some(number) = number {
                let carrier =
                    Some(cells.text_or_empty("SZL_KurierNazwa")?).filter(|c| !c.is_empty());
                found.insert(document, (number, carrier));
            }
        }
    }
    for document in chains.values_mut().flatten() {
        if document.tracking.is_none()
            && let Some((number, carrier)) = found.get(&document.id)
        {
            document.tracking = Some(number.clone());
            document.carrier = carrier.clone();
        }
    }
    Ok(())
}

/// A chain row: the parent it was reached from, and the document.
fn linked(row: &tiberius::Row) -> Result<(Option<i64>, LinkedDocument), SqlError> {
    let cells = Cells::new(row, "CDN.TraNag");
    let class = cells.int_required("TrN_TypDokumentu")?;
    Ok((
        cells.int("parent_id")?,
        LinkedDocument {
            id: cells.int_required("TrN_TrNID")?,
            class: i32::try_from(class).unwrap_or_default(),
            number: cells.text_or_empty("TrN_NumerPelny")?,
            tracking: Some(cells.text_or_empty("TrN_NrListuPrzewozowego")?)
                .filter(|t| !t.is_empty()),
            carrier: None,
            // Optima marks a cancelled document with a non-zero
            // TrN_Anulowany (Comarch BI's cancelled RO: -2147483647).
            cancelled: cells.int("TrN_Anulowany")?.unwrap_or(0) != 0,
            in_buffer: cells.int("TrN_Bufor")?.unwrap_or(0) != 0,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::{Buyer, OrderLine, Shipping};
    use rust_decimal_macros::dec;

    fn settings() -> WriteSettings {
        WriteSettings {
            document: DocumentKind::Ro,
            warehouse: "MAG".into(),
            collective_customer: None,
            customer_code_prefix: "WWW".into(),
            payment_forms: BTreeMap::new(),
            default_payment_form: Some("przelew".into()),
            shipping_services: BTreeMap::new(),
            default_shipping_service: Some("TRANSPORT".into()),
            fee_services: BTreeMap::new(),
            default_fee_service: None,
            series: None,
            foreign_currency: crate::erp_settings::ForeignCurrency::Park,
            currency_rate_type: 3,
        }
    }

    fn order() -> Order {
        Order {
            shop: "sklep".into(),
            order_id: "17".into(),
            number: "17".into(),
            revision: chrono::Utc::now(),
            placed_at: chrono::Utc::now(),
            status: "processing".into(),
            state: contract::OrderState::Paid,
            paid: true,
            currency: "PLN".into(),
            payment_method: "bacs".into(),
            payment_form: None,
            buyer: Buyer {
                billing: Address {
                    name: "Zofia Łęcka".into(),
                    street: "ul. Długa 1".into(),
                    city: "Gdańsk".into(),
                    postcode: "80-001".into(),
                    country: "PL".into(),
                    ..Address::default()
                },
                ..Buyer::default()
            },
            lines: vec![OrderLine {
                sku: "A".into(),
                name: "Kawa".into(),
                quantity: dec!(3),
                vat: "23".parse().unwrap(),
                unit_price_gross: dec!(33.33),
                total_net: dec!(81.29),
                total_vat: dec!(18.70),
                total_gross: dec!(99.99),
                discount_gross: dec!(0),
            }],
            shipping: Some(Shipping {
                method: "flat_rate".into(),
                title: "Kurier".into(),
                service_sku: None,
                vat: "23".parse().unwrap(),
                total_net: dec!(12.19),
                total_vat: dec!(2.80),
                total_gross: dec!(14.99),
            }),
            discount_gross: dec!(0),
            total_net: dec!(93.48),
            total_vat: dec!(21.50),
            total_gross: dec!(114.98),
            customer_note: None,
        }
    }

    #[test]
    fn shipping_becomes_a_service_line_and_totals_must_match_to_the_grosz() {
        let lines = document_lines(&order(), &settings(), None).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].sku, "TRANSPORT");
        let summary = vat_summary(&lines);
        let sums = &summary[&(dec!(23), 2)];
        assert_eq!((sums.net, sums.vat), (dec!(93.48), dec!(21.50)));

        let mut off_by_a_grosz = order();
        off_by_a_grosz.total_gross = dec!(114.99);
        let reason = document_lines(&off_by_a_grosz, &settings(), None).unwrap_err();
        assert!(reason.contains("totals do not add up"), "{reason}");
    }

    #[test]
    fn a_line_whose_net_and_vat_miss_its_gross_is_parked_not_mended() {
        let mut o = order();
        o.lines[0].total_vat = dec!(18.60);
        o.total_vat = dec!(21.40);
        o.total_gross = dec!(114.98);
        let reason = document_lines(&o, &settings(), None).unwrap_err();
        assert!(reason.contains("is not gross"), "{reason}");
        let mut shipping = order();
        if let Some(s) = shipping.shipping.as_mut() {
            s.total_vat = dec!(2.70);
        }
        assert!(
            document_lines(&shipping, &settings(), None)
                .unwrap_err()
                .contains("shipping")
        );
    }

    #[test]
    fn absurd_quantities_and_unmapped_shipping_are_parked_with_a_reason() {
        let mut huge = order();
        huge.lines[0].quantity = dec!(100000000000);
        assert!(
            document_lines(&huge, &settings(), None)
                .unwrap_err()
                .contains("out of range")
        );
        let mut no_default = settings();
        no_default.default_shipping_service = None;
        assert!(
            document_lines(&order(), &no_default, None)
                .unwrap_err()
                .contains("flat_rate")
        );
    }

    #[test]
    fn the_commands_payment_form_wins_over_the_agents_and_the_agents_is_the_fallback() {
        let mut settings = settings();
        settings
            .payment_forms
            .insert("bacs".into(), "przelew bankowy".into());
        // The agent's own mapping, then its default, as before the console.
        let plain = order();
        assert_eq!(
            payment_form(&plain, &settings),
            Ok(("przelew bankowy", MappedBy::AgentConfig))
        );
        let mut other_method = order();
        other_method.payment_method = "cod".into();
        assert_eq!(
            payment_form(&other_method, &settings),
            Ok(("przelew", MappedBy::AgentConfig))
        );
        // The shop's settings, carried on the command, come first.
        let mut mapped = order();
        mapped.payment_form = Some("karta".into());
        assert_eq!(
            payment_form(&mapped, &settings),
            Ok(("karta", MappedBy::ShopSettings))
        );
        // A blank one is no mapping.
        mapped.payment_form = Some(" ".into());
        assert_eq!(
            payment_form(&mapped, &settings),
            Ok(("przelew bankowy", MappedBy::AgentConfig))
        );
        // Neither maps it: the reason names both places.
        settings.payment_forms.clear();
        settings.default_payment_form = None;
        let reason = payment_form(&plain, &settings).unwrap_err();
        assert!(reason.contains("`bacs`"), "{reason}");
        assert!(reason.contains("console"), "{reason}");
        assert!(reason.contains("[orders.payment_forms]"), "{reason}");
        assert_eq!(
            payment_form(&mapped_with("karta"), &settings),
            Ok(("karta", MappedBy::ShopSettings)),
            "the command's mapping needs nothing of the agent's"
        );
    }

    fn mapped_with(form: &str) -> Order {
        let mut order = order();
        order.payment_form = Some(form.into());
        order
    }

    #[test]
    fn the_commands_delivery_service_wins_over_the_agents_and_the_agents_is_the_fallback() {
        let mut settings = settings();
        settings
            .shipping_services
            .insert("flat_rate".into(), "KURIER".into());
        let lines = document_lines(&order(), &settings, None).unwrap();
        assert_eq!(lines[1].sku, "KURIER", "the agent's mapping");

        let mut mapped = order();
        if let Some(shipping) = mapped.shipping.as_mut() {
            shipping.service_sku = Some("PACZKOMAT".into());
        }
        let lines = document_lines(&mapped, &settings, None).unwrap();
        assert_eq!(lines[1].sku, "PACZKOMAT", "the command's mapping");

        // Without any mapping in the agent, the command's still writes it.
        settings.shipping_services.clear();
        settings.default_shipping_service = None;
        assert!(document_lines(&order(), &settings, None).is_err());
        let lines = document_lines(&mapped, &settings, None).unwrap();
        assert_eq!(lines[1].sku, "PACZKOMAT");
        let shipping = mapped.shipping.as_ref().unwrap();
        assert_eq!(
            shipping_service(shipping, &settings),
            Ok(("PACZKOMAT", MappedBy::ShopSettings))
        );
    }

    #[test]
    fn four_decimals_of_quantity_are_kept_and_a_fifth_is_refused() {
        let mut four = order();
        four.lines[0].quantity = dec!(1.2345);
        assert!(document_lines(&four, &settings(), None).is_ok());
        let mut five = order();
        five.lines[0].quantity = dec!(1.23456);
        assert!(
            document_lines(&five, &settings(), None)
                .unwrap_err()
                .contains("4 decimals")
        );
    }

    #[test]
    fn net_and_vat_add_up_to_gross_within_less_than_a_grosz() {
        assert!(adds_up(dec!(10.00), dec!(2.30), dec!(12.30)));
        assert!(adds_up(dec!(10.004), dec!(2.30), dec!(12.30)));
        assert!(!adds_up(dec!(10.00), dec!(2.30), dec!(12.31)));
        assert!(!adds_up(dec!(10.00), dec!(2.31), dec!(12.30)));
    }

    #[test]
    fn the_rehearsal_prints_each_cell_as_its_value() {
        use tiberius::ColumnData as D;
        assert_eq!(cell_text(&D::U8(Some(7))), "7");
        assert_eq!(cell_text(&D::I16(Some(-2))), "-2");
        assert_eq!(cell_text(&D::I32(Some(3))), "3");
        assert_eq!(cell_text(&D::I64(Some(4))), "4");
        assert_eq!(cell_text(&D::Bit(Some(true))), "true");
        assert_eq!(cell_text(&D::F32(Some(1.5))), "1.5");
        assert_eq!(cell_text(&D::F64(Some(2.25))), "2.25");
        assert_eq!(
            cell_text(&D::String(Some("RO/1/2026".into()))),
            "'RO/1/2026'"
        );
        assert_eq!(
            cell_text(&D::Guid(Some(tiberius::Uuid::nil()))),
            "00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(
            cell_text(&D::Numeric(Some(
                tiberius::numeric::Numeric::new_with_scale(12345, 2)
            ))),
            "123.45"
        );
        let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 7)
            .and_then(|d| d.and_hms_opt(10, 30, 0))
            .unwrap();
        assert_eq!(
            cell_text(&tiberius::IntoSql::into_sql(at)),
            "2026-12-07 10:30:00"
        );
        assert_eq!(
            cell_text(&D::Binary(Some(vec![1, 2, 3].into()))),
            "<3 bytes>"
        );
        assert_eq!(cell_text(&D::I32(None)), "NULL");
    }

    #[test]
    fn the_rehearsals_sample_order_is_a_whole_order_at_23_percent() {
        let order = sample_order("MLOTEK-500", dec!(123.004));
        assert_eq!(
            (order.total_net, order.total_vat, order.total_gross),
            (dec!(100.00), dec!(23.00), dec!(123.00))
        );
        let line = &order.lines[0];
        assert_eq!(
            (line.total_net, line.total_vat, line.total_gross),
            (dec!(100.00), dec!(23.00), dec!(123.00))
        );
        assert_eq!(order.buyer.billing.country, "PL");
        assert!(
            order.buyer.email.is_some(),
            "a new customer needs an e-mail"
        );
        assert!(document_lines(&order, &settings(), None).is_ok());
    }

    #[test]
    fn amounts_fit_decimal_15_2_up_to_its_last_grosz() {
        assert!(fits_money(dec!(9999999999999.99)));
        assert!(fits_money(dec!(-9999999999999.99)));
        assert!(!fits_money(dec!(10000000000000)));
        assert!(!fits_money(dec!(-10000000000000)));
    }

    #[test]
    fn countries_are_iso_codes_on_the_card_and_polish_names_on_the_document() {
        assert_eq!(iso_country(" de "), "DE");
        assert_eq!(iso_country(""), "PL");
        assert_eq!(iso_country("POL"), "PL");
        assert_eq!(country_name("pl"), "Polska");
        assert_eq!(country_name(""), "Polska");
        assert_eq!(country_name("de"), "Niemcy");
        assert_eq!(country_name("GB"), "Wielka Brytania");
        assert_eq!(country_name("fr"), "FR");
    }

    #[test]
    fn a_company_without_a_persons_name_is_a_recipient() {
        let mut company = order();
        company.buyer.shipping = None;
        company.buyer.billing.name = " ".into();
        company.buyer.billing.company = Some("Źdźbło Sp. z o.o.".into());
        assert!(complete(&company.buyer.billing));
        company.buyer.billing.company = Some("  ".into());
        assert!(!complete(&company.buyer.billing));
    }

    #[test]
    fn an_order_without_a_complete_address_is_parked_and_billing_stands_in_for_shipping() {
        let mut no_address = order();
        no_address.buyer.billing = Address::default();
        no_address.buyer.shipping = None;
        assert!(
            document_lines(&no_address, &settings(), None)
                .unwrap_err()
                .contains("no complete address")
        );
        let mut no_street = order();
        no_street.buyer.shipping = None;
        no_street.buyer.billing.street = " ".into();
        assert!(document_lines(&no_street, &settings(), None).is_err());

        let mut blank_shipping = order();
        blank_shipping.buyer.shipping = Some(Address {
            name: "Jan".into(),
            ..Address::default()
        });
        assert!(document_lines(&blank_shipping, &settings(), None).is_ok());
        assert_eq!(
            recipient(&blank_shipping).map(|a| a.street.as_str()),
            Some(blank_shipping.buyer.billing.street.as_str())
        );
        assert_eq!(card_address(&blank_shipping), &blank_shipping.buyer.billing);

        // Only a shipping address: it is the new customer's card too.
        let mut shipping_only = order();
        let shipping = shipping_only.buyer.billing.clone();
        shipping_only.buyer.shipping = Some(shipping.clone());
        shipping_only.buyer.billing = Address::default();
        assert!(document_lines(&shipping_only, &settings(), None).is_ok());
        assert_eq!(card_address(&shipping_only), &shipping);
    }

    #[test]
    fn three_decimal_amounts_are_rounded_half_away_from_zero_and_add_up() {
        let mut o = order();
        o.lines[0].total_net = dec!(81.295);
        o.lines[0].total_vat = dec!(18.695);
        o.lines[0].total_gross = dec!(99.990);
        o.total_net = dec!(93.485);
        let lines = document_lines(&o, &settings(), None).unwrap();
        assert_eq!(
            (lines[0].total_net, lines[0].total_vat, lines[0].total_gross),
            (dec!(81.30), dec!(18.69), dec!(99.99)),
            "net 81.295 rounds up; VAT gives way so that net + VAT = gross"
        );
        let gross: Decimal = lines.iter().map(|l| l.total_gross).sum();
        assert_eq!(gross, dec!(114.98));
        let summary = vat_summary(&lines);
        let rate = &summary[&(dec!(23), 2)];
        assert_eq!((rate.net, rate.vat), (dec!(93.49), dec!(21.49)));
        assert_eq!((rate.zloty_net, rate.zloty_vat), (rate.net, rate.vat));

        // Rounding each line drifts a grosz from the shop's total: parked.
        let mut drift = order();
        drift.lines[0].total_gross = dec!(99.985);
        drift.lines[0].total_net = dec!(81.285);
        drift.total_gross = dec!(114.975);
        assert!(
            document_lines(&drift, &settings(), None)
                .is_ok_and(|l| l[0].total_gross == dec!(99.99))
        );
        drift.total_gross = dec!(114.97);
        assert!(
            document_lines(&drift, &settings(), None)
                .unwrap_err()
                .contains("to the grosz")
        );
    }

    #[test]
    fn a_fee_becomes_its_service_line_or_the_order_is_parked_naming_it() {
        let mut o = order();
        o.lines.push(OrderLine {
            sku: "fee:Pobranie".into(),
            name: "Pobranie".into(),
            quantity: dec!(1),
            vat: "23".parse().unwrap(),
            unit_price_gross: dec!(5.00),
            total_net: dec!(4.07),
            total_vat: dec!(0.93),
            total_gross: dec!(5.00),
            discount_gross: dec!(0),
        });
        o.total_net += dec!(4.07);
        o.total_vat += dec!(0.93);
        o.total_gross += dec!(5.00);
        let reason = document_lines(&o, &settings(), None).unwrap_err();
        assert!(reason.contains("fee `Pobranie`"), "{reason}");
        let mut mapped = settings();
        mapped
            .fee_services
            .insert("Pobranie".into(), "POBRANIE".into());
        let lines = document_lines(&o, &mapped, None).unwrap();
        assert_eq!(lines[1].sku, "POBRANIE");
        assert_eq!(lines[1].total_gross, dec!(5.00));
        assert_eq!(lines.len(), 3, "goods, fee, shipping");
    }

    #[test]
    fn a_discounted_line_keeps_its_net_price_before_the_discount() {
        let mut o = order();
        // 10.00 gross off at 23 %: 10.00 / 1.23 = 8.1300… → 8.13 net, so
        // the net before the discount is 81.29 + 8.13 = 89.42.
        o.lines[0].discount_gross = dec!(10.00);
        o.discount_gross = dec!(10.00);
        let lines = document_lines(&o, &settings(), None).unwrap();
        assert_eq!(lines[0].discount_gross, dec!(10.00));
        assert_eq!(lines[0].net_before_discount, dec!(89.42));
        // 8 %: 5.00 / 1.08 = 4.6296… → 4.63.
        o.lines[0].vat = "8".parse().unwrap();
        o.lines[0].discount_gross = dec!(5.00);
        o.lines[0].total_net = dec!(92.58);
        o.lines[0].total_vat = dec!(7.41);
        o.total_net = dec!(104.77);
        o.total_vat = dec!(10.21);
        let lines = document_lines(&o, &settings(), None).unwrap();
        assert_eq!(lines[0].net_before_discount, dec!(97.21));
        // No discount: the net as it is.
        assert_eq!(lines[1].net_before_discount, lines[1].total_net);
    }

    #[test]
    fn a_euro_order_keeps_its_amounts_in_euro_and_converts_each_to_the_grosz() {
        let mut o = order();
        o.currency = "EUR".into();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let friday = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let rate =
            ExchangeRate::from_mid("EUR", dec!(4.2345), "231/A/NBP/2026", friday, day).unwrap();
        let lines = document_lines(&o, &settings(), Some(&rate)).unwrap();
        // The goods line, 81.29 + 18.70 = 99.99 EUR, by hand at 4.2345:
        // 81.29 × 4.2345 = 344.222505 → 344.22; 18.70 × 4.2345 = 79.18515 →
        // 79.19; gross their sum, 423.41 (99.99 × 4.2345 = 423.407655).
        assert_eq!(
            (lines[0].total_net, lines[0].total_vat, lines[0].total_gross),
            (dec!(81.29), dec!(18.70), dec!(99.99))
        );
        assert_eq!(lines[0].zloty, (dec!(344.22), dec!(79.19), dec!(423.41)));
        // Shipping 12.19 + 2.80 = 14.99 EUR: 51.618555 → 51.62; 11.8566 →
        // 11.86; 63.48.
        assert_eq!(lines[1].zloty, (dec!(51.62), dec!(11.86), dec!(63.48)));
        let summary = vat_summary(&lines);
        let sums = &summary[&(dec!(23), 2)];
        assert_eq!((sums.net, sums.vat), (dec!(93.48), dec!(21.50)));
        assert_eq!(
            (sums.zloty_net, sums.zloty_vat),
            (dec!(395.84), dec!(91.05))
        );
        let currency = DocumentCurrency::of(Some(&rate), &settings());
        assert_eq!(
            (
                currency.code.as_str(),
                currency.rate,
                currency.per,
                currency.rate_day
            ),
            ("EUR", dec!(4.2345), dec!(1), Some(friday))
        );
        assert_eq!(DocumentCurrency::of(None, &settings()).code, "");

        // A rate for another currency is never applied.
        let usd = ExchangeRate::from_mid("USD", dec!(3.9), "x", friday, day).unwrap();
        assert!(
            document_lines(&o, &settings(), Some(&usd))
                .unwrap_err()
                .contains("USD")
        );
    }

    #[test]
    fn a_foreign_currency_order_is_parked_with_its_currency() {
        let mut o = order();
        o.currency = "EUR".into();
        assert!(
            document_lines(&o, &settings(), None)
                .unwrap_err()
                .contains("in EUR")
        );
        o.currency = "pln".into();
        assert!(document_lines(&o, &settings(), None).is_ok());
    }

    #[test]
    fn numbering_schemes_resolve_every_token_but_the_number() {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 3, 9)
            .unwrap()
            .and_time(chrono::NaiveTime::MIN);
        let n = |scheme: &str, series: Option<&str>| numbering_string(scheme, "RO", date, series);
        assert_eq!(
            n("@symbol/@numerS/@rok_kal", None).unwrap(),
            "RO/@numerS/2026"
        );
        assert_eq!(
            n("@brak/@symbol/@rok_kal/@numerS/@brak", None).unwrap(),
            "RO/2026/@numerS"
        );
        assert_eq!(
            n("@symbol/@numerS/@miesiac/@rok_kal", None).unwrap(),
            "RO/@numerS/03/2026"
        );
        assert_eq!(
            n("@symbol/@seria/@numerS", Some("WWW")).unwrap(),
            "RO/WWW/@numerS"
        );
        assert!(
            n("@symbol/@seria/@numerS", None)
                .unwrap_err()
                .contains("orders.series")
        );
        assert!(
            n("@symbol/@kwartal/@numerS", None)
                .unwrap_err()
                .contains("@kwartal")
        );
        assert!(
            n("@symbol/@rok_kal", None)
                .unwrap_err()
                .contains("no @numerS")
        );
        assert_eq!(
            n("@symbol/@numerS/@rok_kal", None)
                .unwrap()
                .replace("@numerS", "7"),
            "RO/7/2026"
        );
        // A blank series is no series; a literal stays as written; @rok
        // is two digits.
        assert!(n("@symbol/@seria/@numerS", Some("  ")).is_err());
        assert_eq!(n("ZAM/@numerS/@rok", None).unwrap(), "ZAM/@numerS/26");
        // TrN_NumerString is varchar(31): 31 characters fit, 32 do not.
        let fits = format!("{}/@numerS", "X".repeat(23));
        assert_eq!(n(&fits, None).unwrap().len(), 31);
        let too_long = format!("{}/@numerS", "X".repeat(24));
        assert!(n(&too_long, None).unwrap_err().contains("31"));
    }

    #[test]
    fn the_remarks_say_when_the_order_came_without_an_address() {
        let mut order = order();
        order.buyer.shipping = None;
        assert!(!remarks(&order, &[]).contains("brak adresu"));
        order.buyer.billing.street = " ".into();
        assert!(remarks(&order, &[]).contains("brak adresu"));
        order.buyer.shipping = Some(order.buyer.billing.clone());
        assert!(!remarks(&order, &[]).contains("brak adresu"));
    }

    /// Every NOT NULL column of Optima's real schema that has no default
    /// (numeric ones too: their DEFAULT 0 is an assumption) is named by the
    /// agent's INSERTs, no computed column is, and every column named exists.
    #[test]
    fn every_insert_names_every_required_column_of_the_real_schema() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/optima-tables.json");
        let text = std::fs::read_to_string(path).expect("the vendored real schema");
        let schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
        let o = order();
        let lines = document_lines(&o, &settings(), None).unwrap();
        let item = Item {
            id: 1,
            name: "Kawa".into(),
            unit: "szt.".into(),
            ean: String::new(),
            catalogue_number: String::new(),
            kind: 1,
        };
        let card = Card {
            values: CARD_TO_DOCUMENT
                .iter()
                .map(|(_, d)| (*d, String::new()))
                .collect(),
        };
        let payment = PaymentForm { id: 1, days: 7 };
        let now = chrono::NaiveDate::from_ymd_opt(2026, 3, 9)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap();
        let mut notes = Vec::new();
        let inserts = [
            document_header(&mut DocumentHeader {
                order: &o,
                definition: 1,
                class: 308,
                number_string: "RO/@numerS/2026",
                number: 1,
                key: "k",
                customer: 1,
                card: &card,
                recipient: &o.buyer.billing,
                warehouse: 1,
                payment: &payment,
                lines: &lines,
                currency: &DocumentCurrency::of(None, &settings()),
                today: now,
                now,
                notes: &mut notes,
            }),
            document_line(
                1,
                1,
                308,
                1,
                &lines[0],
                &item,
                "Kawa".into(),
                &DocumentCurrency::of(None, &settings()),
                now,
            ),
            vat_row(1, dec!(23), 2, &RateSums::default()),
            customer_card(&o, "WWW-1", Some("5260250274"), None, now, &mut notes),
        ];
        for insert in &inserts {
            let table = &schema[insert.table()];
            let columns = table["columns"].as_array().expect("columns");
            let named: Vec<String> = insert.column_names().map(str::to_ascii_lowercase).collect();
            let pk: Vec<String> = table["primary_key"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_ascii_lowercase())
                .collect();
            for column in columns {
                let name = column["column"].as_str().unwrap();
                let lower = name.to_ascii_lowercase();
                if !column["computed"].is_null() {
                    assert!(
                        !named.contains(&lower),
                        "{}: computed {name} is written",
                        insert.table()
                    );
                    continue;
                }
                let required = column["nullable"] == false
                    && column["default"].is_null()
                    && !pk.contains(&lower);
                if required {
                    assert!(
                        named.contains(&lower),
                        "{}: {name} is NOT NULL without a default and not written",
                        insert.table()
                    );
                }
            }
            for name in &named {
                assert!(
                    columns
                        .iter()
                        .any(|c| c["column"].as_str().unwrap().eq_ignore_ascii_case(name)),
                    "{}: {name} is not in Optima's schema",
                    insert.table()
                );
            }
        }
    }

    #[test]
    fn import_row_id_is_stable_and_36_characters() {
        let a = import_row_id("sklep:17");
        assert_eq!(a.len(), 36);
        assert_eq!(a, import_row_id("sklep:17"));
        assert_ne!(a, import_row_id("sklep:18"));
    }

    #[test]
    fn fitting_counts_utf16_units_and_says_what_was_cut() {
        let mut notes = Vec::new();
        assert_eq!(fit("Łódź", 10, "Miasto", &mut notes), "Łódź");
        assert!(notes.is_empty());
        assert_eq!(fit("Zażółć gęślą jaźń", 6, "Nazwa", &mut notes), "Zażółć");
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("Zażółć gęślą jaźń"));
    }
}
