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
//! deployment must check, and [`crate::orders::OrderWriter`] is the seam
//! where Optima's XML import or COM API can replace it.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use contract::{Address, Order, VatRate};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use tiberius::Query;

use super::{IDS_PER_STATEMENT, fetch, placeholders};
use crate::sql::{SqlClient, SqlError};

/// Which document a shop order becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DocumentKind {
    /// Rezerwacja odbiorcy: reserves the goods, realised later into FS/PA + WZ.
    Ro,
    /// Faktura sprzedaży draft.
    Fs,
    /// Paragon draft.
    Pa,
}

impl DocumentKind {
    pub fn symbol(self) -> &'static str {
        match self {
            DocumentKind::Ro => "RO",
            DocumentKind::Fs => "FS",
            DocumentKind::Pa => "PA",
        }
    }
}

/// How orders are written, from the agent's `[orders]` configuration.
#[derive(Debug, Clone)]
pub struct WriteSettings {
    pub document: DocumentKind,
    /// `Mag_Symbol` of the warehouse the goods leave from.
    pub warehouse: String,
    /// `Knt_Kod` of the collective customer for private buyers; None creates
    /// a customer per buyer.
    pub collective_customer: Option<String>,
    /// Prefix of the codes of customers the agent creates.
    pub customer_code_prefix: String,
    /// Shop payment method id → `FPl_Nazwa`.
    pub payment_forms: BTreeMap<String, String>,
    pub default_payment_form: Option<String>,
    /// Shop shipping method id → the SKU of a service item.
    pub shipping_services: BTreeMap<String, String>,
    pub default_shipping_service: Option<String>,
}

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

/// The document's lines (goods, then shipping as a service line) and its
/// checks; an error is the reason the order is parked.
fn document_lines(order: &Order, settings: &WriteSettings) -> Result<Vec<DocLine>, String> {
    if order.lines.is_empty() {
        return Err("the order has no lines".into());
    }
    if recipient(order).is_none() {
        return Err(
            "the order has no complete address (a name or company, street, city and postcode, in shipping or billing)"
                .into(),
        );
    }
    let mut lines = Vec::new();
    for line in &order.lines {
        if line.quantity <= Decimal::ZERO || line.quantity >= Decimal::from(100_000_000_000i64) {
            return Err(format!(
                "line {}: quantity {} is out of range",
                line.sku, line.quantity
            ));
        }
        for value in [line.total_net, line.total_vat, line.total_gross] {
            if !fits_money(value) {
                return Err(format!("line {}: amount {value} is out of range", line.sku));
            }
        }
        if line.total_net + line.total_vat != line.total_gross {
            return Err(format!(
                "line {}: net {} + VAT {} is not gross {}",
                line.sku, line.total_net, line.total_vat, line.total_gross
            ));
        }
        let rate = Decimal::ONE + line.vat.percent() / Decimal::ONE_HUNDRED;
        let discount_net = (line.discount_gross / rate).round_dp(2);
        lines.push(DocLine {
            sku: line.sku.trim().to_owned(),
            quantity: line.quantity,
            vat: line.vat,
            net_before_discount: line.total_net + discount_net,
            total_net: line.total_net,
            total_vat: line.total_vat,
            total_gross: line.total_gross,
            discount_gross: line.discount_gross,
        });
    }
    if let Some(shipping) = order.shipping.as_ref().filter(|s| !s.total_gross.is_zero()) {
        let service = settings
            .shipping_services
            .get(&shipping.method)
            .or(settings.default_shipping_service.as_ref())
            .ok_or_else(|| {
                format!(
                    "shipping method `{}` has no service item in [orders.shipping_services] and there is no default_shipping_service",
                    shipping.method
                )
            })?;
        if shipping.total_net + shipping.total_vat != shipping.total_gross {
            return Err("shipping: net + VAT is not gross".into());
        }
        lines.push(DocLine {
            sku: service.clone(),
            quantity: Decimal::ONE,
            vat: shipping.vat,
            net_before_discount: shipping.total_net,
            total_net: shipping.total_net,
            total_vat: shipping.total_vat,
            total_gross: shipping.total_gross,
            discount_gross: Decimal::ZERO,
        });
    }
    let net: Decimal = lines.iter().map(|l| l.total_net).sum();
    let vat: Decimal = lines.iter().map(|l| l.total_vat).sum();
    let gross: Decimal = lines.iter().map(|l| l.total_gross).sum();
    if (net, vat, gross) != (order.total_net, order.total_vat, order.total_gross) {
        return Err(format!(
            "totals do not add up: lines and shipping give net {net}, VAT {vat}, gross {gross}; the shop says net {}, VAT {}, gross {} (fees are not supported)",
            order.total_net, order.total_vat, order.total_gross
        ));
    }
    Ok(lines)
}

/// VAT summary per rate, as `TraVat` holds it.
fn vat_summary(lines: &[DocLine]) -> BTreeMap<Decimal, (Decimal, Decimal)> {
    let mut summary: BTreeMap<Decimal, (Decimal, Decimal)> = BTreeMap::new();
    for line in lines {
        let entry = summary.entry(line.vat.percent()).or_default();
        entry.0 += line.total_net;
        entry.1 += line.total_vat;
    }
    summary
}

async fn exec(client: &mut SqlClient, query: Query<'_>) -> Result<u64, SqlError> {
    let done = query.execute(client).await?;
    super::STATEMENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    Ok(fetch(client, query).await?.first().and_then(|row| {
        Some((
            i64::from(row.get::<i32, _>("TrN_TrNID")?),
            row.get::<&str, _>("TrN_NumerPelny")?.to_owned(),
        ))
    }))
}

/// Writes `order` as one document in one transaction, or finds it written.
pub async fn write_order(
    client: &mut SqlClient,
    order: &Order,
    settings: &WriteSettings,
) -> Result<WriteResult, SqlError> {
    let key = import_row_id(&order.key());
    if let Some((document_id, document_number)) = find_written(client, &key).await? {
        return Ok(WriteResult::Written {
            document_id,
            document_number,
            already: true,
        });
    }
    let lines = match document_lines(order, settings) {
        Ok(lines) => lines,
        Err(reason) => return Ok(WriteResult::Parked(reason)),
    };
    simple(client, "BEGIN TRANSACTION").await?;
    let written = write_in_transaction(client, order, settings, &key, &lines).await;
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

struct Item {
    id: i32,
    name: String,
    unit: String,
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
            "SELECT Twr_TwrId, Twr_Kod, Twr_Nazwa, Twr_JM FROM CDN.Towary WHERE Twr_Kod IN ({list})"
        ));
        for sku in chunk {
            query.bind(sku.as_str());
        }
        for row in fetch(client, query).await? {
            let (Some(id), Some(code)) = (
                row.get::<i32, _>("Twr_TwrId"),
                row.get::<&str, _>("Twr_Kod"),
            ) else {
                continue;
            };
            items.insert(
                code.trim().to_uppercase(),
                Item {
                    id,
                    name: row
                        .get::<&str, _>("Twr_Nazwa")
                        .unwrap_or_default()
                        .to_owned(),
                    unit: row.get::<&str, _>("Twr_JM").unwrap_or_default().to_owned(),
                },
            );
        }
    }
    Ok(items)
}

async fn first_id(
    client: &mut SqlClient,
    sql: &str,
    value: &str,
    column: &str,
) -> Result<Option<i32>, SqlError> {
    let mut query = Query::new(sql.to_owned());
    query.bind(value);
    Ok(fetch(client, query)
        .await?
        .first()
        .and_then(|r| r.get::<i32, _>(column)))
}

/// The customer: by NIP, then by e-mail, then the collective customer for a
/// private buyer, else a new one. Returns its id.
async fn customer(
    client: &mut SqlClient,
    order: &Order,
    settings: &WriteSettings,
    notes: &mut Vec<String>,
) -> Result<Result<i32, String>, SqlError> {
    let nip = order.buyer.nip.as_deref().and_then(nip_digits);
    if let Some(nip) = &nip
        && let Some(id) = first_id(
            client,
            "SELECT TOP 1 Knt_KntId FROM CDN.Kontrahenci WHERE REPLACE(REPLACE(Knt_Nip, '-', ''), ' ', '') = @P1 AND Knt_NieAktywny = 0 ORDER BY Knt_KntId",
            nip,
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
            "SELECT TOP 1 Knt_KntId FROM CDN.Kontrahenci WHERE Knt_Email = @P1 AND Knt_NieAktywny = 0 ORDER BY Knt_KntId",
            email,
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
        "Knt_KntId",
    )
    .await?
    {
        return Ok(Ok(id));
    }
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
        .map(|_| billing.name.clone());
    let mut query = Query::new(
        "INSERT INTO CDN.Kontrahenci (Knt_Kod, Knt_Nazwa1, Knt_Nazwa2, Knt_Ulica, Knt_Miasto, Knt_KodPocztowy, Knt_Kraj, Knt_NipKraj, Knt_Nip, Knt_Email, Knt_Telefon1, Knt_ImportRowId) \
         OUTPUT INSERTED.Knt_KntId \
         VALUES (CAST(@P1 AS varchar(20)), @P2, @P3, @P4, @P5, CAST(@P6 AS varchar(10)), @P7, CAST(@P8 AS varchar(2)), @P9, @P10, @P11, CAST(@P12 AS varchar(36)))",
    );
    query.bind(code.clone());
    query.bind(fit(&display, 50, "Nazwa kontrahenta", notes));
    query.bind(second.map(|s| fit(&s, 50, "Nazwa kontrahenta (2)", notes)));
    query.bind(fit(&billing.street, 40, "Ulica", notes));
    query.bind(fit(&billing.city, 40, "Miasto", notes));
    query.bind(fit(&billing.postcode, 10, "Kod pocztowy", notes));
    query.bind(country_name(&billing.country));
    query.bind(nip.as_ref().map(|_| {
        let c = billing.country.trim().to_ascii_uppercase();
        if c.is_empty() { "PL".to_owned() } else { c }
    }));
    query.bind(nip.clone());
    query.bind(email.map(|e| fit(e, 127, "E-mail", notes)));
    query.bind(
        billing
            .phone
            .as_deref()
            .map(|p| fit(p, 20, "Telefon", notes)),
    );
    query.bind(import_row_id(&format!("customer:{code}")));
    let id = fetch(client, query)
        .await?
        .first()
        .and_then(|r| r.get::<i32, _>("Knt_KntId"))
        .ok_or_else(|| SqlError::Unexpected("INSERT INTO CDN.Kontrahenci returned no id".into()))?;
    Ok(Ok(id))
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
        text.push_str(&format!("; uwagi klienta: {note}"));
    }
    for note in notes {
        text.push_str("; ");
        text.push_str(note);
    }
    let mut ignored = Vec::new();
    fit(&text, 1024, "Opis", &mut ignored)
}

async fn write_in_transaction(
    client: &mut SqlClient,
    order: &Order,
    settings: &WriteSettings,
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
        "Mag_MagId",
    )
    .await?
    else {
        return parked(format!(
            "warehouse `{}` (orders.warehouse) is not in Optima",
            settings.warehouse
        ));
    };
    let form_name = settings
        .payment_forms
        .get(&order.payment_method)
        .or(settings.default_payment_form.as_ref());
    let payment_form = match form_name {
        Some(name) => match first_id(
            client,
            "SELECT FPl_FPlId FROM CDN.FormyPlatnosci WHERE FPl_Nazwa = @P1",
            name,
            "FPl_FPlId",
        )
        .await?
        {
            Some(id) => Some(id),
            None => return parked(format!("payment form `{name}` is not in Optima")),
        },
        None => {
            return parked(format!(
                "payment method `{}` has no Optima payment form in [orders.payment_forms] and there is no default_payment_form",
                order.payment_method
            ));
        }
    };
    let symbol = settings.document.symbol();
    let mut query = Query::new(
        "SELECT DDf_DDfID, DDf_Klasa FROM CDN.DokDefinicje WHERE DDf_Symbol = CAST(@P1 AS varchar(5))",
    );
    query.bind(symbol);
    let Some((definition, class)) = fetch(client, query)
        .await?
        .first()
        .and_then(|r| Some((r.get::<i32, _>("DDf_DDfID")?, r.get::<i32, _>("DDf_Klasa")?)))
    else {
        return parked(format!("document definition {symbol} is not in Optima"));
    };

    let mut notes = Vec::new();
    let customer = match customer(client, order, settings, &mut notes).await? {
        Ok(id) => id,
        Err(reason) => return parked(reason),
    };

    let rows = fetch(client, Query::new("SELECT GETDATE() AS now")).await?;
    let now: NaiveDateTime = rows
        .first()
        .and_then(|r| r.get::<NaiveDateTime, _>("now"))
        .ok_or_else(|| SqlError::Unexpected("GETDATE() returned no row".into()))?;
    let year = chrono::Datelike::year(&now);
    // UPDLOCK+HOLDLOCK: two writers cannot take the same number; the
    // unique (definition, number) index is the backstop.
    let mut query = Query::new(
        "SELECT ISNULL(MAX(TrN_NumerNr), 0) + 1 AS nr FROM CDN.TraNag WITH (UPDLOCK, HOLDLOCK) WHERE TrN_DDfId = @P1 AND TrN_NumerPelny LIKE @P2",
    );
    query.bind(definition);
    query.bind(format!("{symbol}/%/{year}"));
    let number: i32 = fetch(client, query)
        .await?
        .first()
        .and_then(|r| r.get::<i32, _>("nr"))
        .ok_or_else(|| SqlError::Unexpected("numbering query returned no row".into()))?;
    let full_number = format!("{symbol}/{number}/{year}");

    // Checked complete before the transaction (document_lines).
    let recipient: &Address = recipient(order).unwrap_or(&order.buyer.billing);
    let recipient_name = recipient
        .company
        .as_ref()
        .filter(|c| !c.trim().is_empty())
        .map(|c| format!("{c} ({})", recipient.name))
        .unwrap_or_else(|| recipient.name.clone());
    let odb_name = fit(&recipient_name, 50, "Odbiorca", &mut notes);
    let odb_street = fit(&recipient.street, 40, "Ulica odbiorcy", &mut notes);
    let odb_city = fit(&recipient.city, 40, "Miasto odbiorcy", &mut notes);
    let odb_postcode = fit(&recipient.postcode, 10, "Kod pocztowy odbiorcy", &mut notes);
    let odb_phone = recipient
        .phone
        .as_deref()
        .map(|p| fit(p, 20, "Telefon odbiorcy", &mut notes));
    let foreign_number: String = order.number.chars().take(256).collect();

    let net: Decimal = lines.iter().map(|l| l.total_net).sum();
    let vat: Decimal = lines.iter().map(|l| l.total_vat).sum();
    let gross: Decimal = lines.iter().map(|l| l.total_gross).sum();
    let line_names: Vec<String> = lines
        .iter()
        .filter_map(|l| items.get(&l.sku.to_uppercase()))
        .map(|item| fit(&item.name, 255, "Nazwa towaru", &mut notes))
        .collect();

    let mut header = Query::new(
        "INSERT INTO CDN.TraNag (TrN_DDfId, TrN_TypDokumentu, TrN_Rodzaj, TrN_NumerNr, TrN_NumerPelny, TrN_NumerObcy, TrN_DataDok, TrN_Bufor, TrN_PodID, TrN_MagZrdId, \
         TrN_RazemNetto, TrN_RazemVAT, TrN_RazemBrutto, TrN_ImportRowId, TrN_eSklepZrodlo, TrN_TypNB, TrN_FPlId, TrN_Opis, \
         TrN_OdbNazwa1, TrN_OdbUlica, TrN_OdbMiasto, TrN_OdbKodPocztowy, TrN_OdbKraj, TrN_OdbTelefon) \
         OUTPUT INSERTED.TrN_TrNID \
         VALUES (@P1, @P2, @P3, @P4, @P5, CAST(@P6 AS varchar(256)), @P7, 1, @P8, @P9, @P10, @P11, @P12, CAST(@P13 AS varchar(36)), 0, 2, @P14, @P15, \
         @P16, @P17, @P18, CAST(@P19 AS varchar(10)), @P20, @P21)",
    );
    header.bind(definition);
    header.bind(class);
    header.bind(class * 1000);
    header.bind(number);
    header.bind(full_number.clone());
    header.bind(foreign_number);
    header.bind(now);
    header.bind(customer);
    header.bind(warehouse);
    header.bind(net);
    header.bind(vat);
    header.bind(gross);
    header.bind(key.to_owned());
    header.bind(payment_form);
    header.bind(remarks(order, &notes));
    header.bind(odb_name);
    header.bind(odb_street);
    header.bind(odb_city);
    header.bind(odb_postcode);
    header.bind(country_name(&recipient.country));
    header.bind(odb_phone);
    let document_id = fetch(client, header)
        .await?
        .first()
        .and_then(|r| r.get::<i32, _>("TrN_TrNID"))
        .ok_or_else(|| SqlError::Unexpected("INSERT INTO CDN.TraNag returned no id".into()))?;
    crate::failpoint::hit("order_in_transaction");

    for (index, (line, name)) in lines.iter().zip(line_names).enumerate() {
        let Some(item) = items.get(&line.sku.to_uppercase()) else {
            continue;
        };
        let unit_net = (line.total_net / line.quantity).round_dp(4);
        let unit_before = (line.net_before_discount / line.quantity).round_dp(4);
        let before_gross = line.total_gross + line.discount_gross;
        let discount_percent = if before_gross.is_zero() {
            Decimal::ZERO
        } else {
            (line.discount_gross / before_gross * Decimal::ONE_HUNDRED).round_dp(2)
        };
        let mut query = Query::new(
            "INSERT INTO CDN.TraElem (TrE_TrNId, TrE_Lp, TrE_TwrId, TrE_MagId, TrE_TwrKod, TrE_TwrNazwa, TrE_Stawka, TrE_JM, TrE_Ilosc, TrE_Cena0, TrE_Rabat, TrE_CenaW, TrE_WartoscNetto, TrE_WartoscBrutto) \
             VALUES (@P1, @P2, @P3, @P4, CAST(@P5 AS varchar(50)), @P6, @P7, @P8, @P9, @P10, @P11, @P12, @P13, @P14)",
        );
        query.bind(document_id);
        query.bind(i32::try_from(index + 1).unwrap_or(i32::MAX));
        query.bind(item.id);
        query.bind(warehouse);
        query.bind(line.sku.clone());
        query.bind(name);
        query.bind(line.vat.percent());
        query.bind(item.unit.clone());
        query.bind(line.quantity);
        query.bind(unit_before);
        query.bind(discount_percent);
        query.bind(unit_net);
        query.bind(line.total_net);
        query.bind(line.total_gross);
        exec(client, query).await?;
    }
    for (rate, (rate_net, rate_vat)) in vat_summary(lines) {
        let mut query = Query::new(
            "INSERT INTO CDN.TraVat (TrV_TrNId, TrV_Stawka, TrV_Netto, TrV_VAT) VALUES (@P1, @P2, @P3, @P4)",
        );
        query.bind(document_id);
        query.bind(rate);
        query.bind(rate_net);
        query.bind(rate_vat);
        exec(client, query).await?;
    }
    Ok(WriteResult::Written {
        document_id: i64::from(document_id),
        document_number: full_number,
        already: false,
    })
}

/// A document in the chain that starts at a written order's document.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedDocument {
    pub id: i64,
    /// `TrN_TypDokumentu`: 302 FS, 305 PA, 306 WZ, 308 RO.
    pub class: i32,
    pub number: String,
    pub tracking: Option<String>,
    pub cancelled: bool,
    pub in_buffer: bool,
}

/// For each root document: itself first, then what it was realised into
/// (`TraNagRelacje`, two levels: RO → FS/PA → WZ).
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
            "SELECT TrN_TrNID, TrN_TypDokumentu, TrN_NumerPelny, TrN_NrPrzesylki, TrN_Anulowany, TrN_Bufor FROM CDN.TraNag WHERE TrN_TrNID IN ({})",
            placeholders(1, chunk.len())
        ));
        for id in chunk {
            query.bind(*id);
        }
        for row in fetch(client, query).await? {
            if let Some(doc) = linked(&row) {
                chains.entry(doc.id).or_default().push(doc);
            }
        }
        // Children of the roots, then their children.
        let mut parents: HashMap<i64, i64> = chunk
            .iter()
            .map(|id| (i64::from(*id), i64::from(*id)))
            .collect();
        for _level in 0..2 {
            let parent_ids: Vec<i32> = parents
                .keys()
                .filter_map(|id| i32::try_from(*id).ok())
                .collect();
            if parent_ids.is_empty() {
                break;
            }
            let mut next = HashMap::new();
            for part in parent_ids.chunks(IDS_PER_STATEMENT) {
                let mut query = Query::new(format!(
                    "SELECT r.TrR_TrNId AS parent_id, d.TrN_TrNID, d.TrN_TypDokumentu, d.TrN_NumerPelny, d.TrN_NrPrzesylki, d.TrN_Anulowany, d.TrN_Bufor \
                     FROM CDN.TraNagRelacje r JOIN CDN.TraNag d ON d.TrN_TrNID = r.TrR_FaId WHERE r.TrR_TrNId IN ({}) ORDER BY d.TrN_TrNID",
                    placeholders(1, part.len())
                ));
                for id in part {
                    query.bind(*id);
                }
                for row in fetch(client, query).await? {
                    let (Some(parent), Some(doc)) = (row.get::<i32, _>("parent_id"), linked(&row))
                    else {
                        continue;
                    };
                    let Some(root) = parents.get(&i64::from(parent)).copied() else {
                        continue;
                    };
                    next.insert(doc.id, root);
                    chains.entry(root).or_default().push(doc);
                }
            }
            parents = next;
        }
    }
    Ok(chains)
}

fn linked(row: &tiberius::Row) -> Option<LinkedDocument> {
    Some(LinkedDocument {
        id: i64::from(row.get::<i32, _>("TrN_TrNID")?),
        class: row.get::<i32, _>("TrN_TypDokumentu")?,
        number: row.get::<&str, _>("TrN_NumerPelny")?.to_owned(),
        tracking: row
            .get::<&str, _>("TrN_NrPrzesylki")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        cancelled: row.get::<i16, _>("TrN_Anulowany").unwrap_or(0) != 0,
        in_buffer: row.get::<i16, _>("TrN_Bufor").unwrap_or(0) != 0,
    })
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
            paid: true,
            currency: "PLN".into(),
            payment_method: "bacs".into(),
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
        let lines = document_lines(&order(), &settings()).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].sku, "TRANSPORT");
        let summary = vat_summary(&lines);
        assert_eq!(summary[&dec!(23)], (dec!(93.48), dec!(21.50)));

        let mut off_by_a_grosz = order();
        off_by_a_grosz.total_gross = dec!(114.99);
        let reason = document_lines(&off_by_a_grosz, &settings()).unwrap_err();
        assert!(reason.contains("totals do not add up"), "{reason}");
    }

    #[test]
    fn absurd_quantities_and_unmapped_shipping_are_parked_with_a_reason() {
        let mut huge = order();
        huge.lines[0].quantity = dec!(100000000000);
        assert!(
            document_lines(&huge, &settings())
                .unwrap_err()
                .contains("out of range")
        );
        let mut no_default = settings();
        no_default.default_shipping_service = None;
        assert!(
            document_lines(&order(), &no_default)
                .unwrap_err()
                .contains("flat_rate")
        );
    }

    #[test]
    fn an_order_without_a_complete_address_is_parked_and_billing_stands_in_for_shipping() {
        let mut no_address = order();
        no_address.buyer.billing = Address::default();
        no_address.buyer.shipping = None;
        assert!(
            document_lines(&no_address, &settings())
                .unwrap_err()
                .contains("no complete address")
        );
        let mut no_street = order();
        no_street.buyer.shipping = None;
        no_street.buyer.billing.street = " ".into();
        assert!(document_lines(&no_street, &settings()).is_err());

        let mut blank_shipping = order();
        blank_shipping.buyer.shipping = Some(Address {
            name: "Jan".into(),
            ..Address::default()
        });
        assert!(document_lines(&blank_shipping, &settings()).is_ok());
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
        assert!(document_lines(&shipping_only, &settings()).is_ok());
        assert_eq!(card_address(&shipping_only), &shipping);
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
