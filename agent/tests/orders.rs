//! Shop orders written into Optima through the agent's SQL writer, against
//! the ERP stand-in (or `MSSQL_URL`): one document per order whatever the
//! retries, totals to the grosz, customers matched or created, nothing
//! written for an order that cannot be written whole, progress read back.

use std::collections::BTreeMap;

use agent::optima::order_document::{
    DocumentKind, Withdrawal, WriteResult, WriteSettings, document_chains, import_row_id,
    withdraw_order, write_order,
};
use agent::order_progress::progress_of;
use agent::sql::connect_ado;
use agent::store::TrackedOrder;
use chrono::Utc;
use contract::{Address, Buyer, Order, OrderLine, OrderStage, Shipping};
use optima_standin::erp::{Erp, erp_for_tests};
use optima_standin::seed::SeedOptions;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tiberius::Query;

fn settings() -> WriteSettings {
    WriteSettings {
        document: DocumentKind::Ro,
        warehouse: "MAG".into(),
        collective_customer: None,
        customer_code_prefix: "WWW".into(),
        payment_forms: BTreeMap::from([("bacs".to_owned(), "przelew".to_owned())]),
        default_payment_form: None,
        shipping_services: BTreeMap::from([("flat_rate".to_owned(), "TRANSPORT".to_owned())]),
        default_shipping_service: None,
        fee_services: BTreeMap::new(),
        default_fee_service: None,
        series: None,
        foreign_currency: agent::erp_settings::ForeignCurrency::Park,
        currency_rate_type: 3,
    }
}

/// A seeded ERP stand-in and a goods SKU at 23 % and one at 8 % VAT.
async fn erp_with_skus(products: usize, seed: u64) -> anyhow::Result<(Erp, String, String)> {
    let erp = erp_for_tests(SeedOptions { products, seed }).await?;
    let (sku23, sku8) = (
        sku_with_rate(&erp, 23).await?,
        sku_with_rate(&erp, 8).await?,
    );
    Ok((erp, sku23, sku8))
}

async fn sku_with_rate(erp: &Erp, rate: u32) -> anyhow::Result<String> {
    let mut sql = erp.connect().await?;
    let mut query = Query::new(
        "SELECT TOP 1 Twr_Kod FROM CDN.Towary WHERE Twr_Stawka = @P1 AND Twr_Typ = 1 AND Twr_Flaga = 2 AND Twr_Kod NOT LIKE 'BAD%' ORDER BY Twr_TwrId",
    );
    query.bind(i32::try_from(rate)?);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    rows.first()
        .and_then(|r| r.get::<&str, _>("Twr_Kod"))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no product at {rate} %"))
}

/// 3 × 33.33 gross at 23 % after a 10.00 discount, 2 × 12.35 at 8 %, and
/// 14.99 shipping: awkward values whose net and VAT the shop rounded per line.
fn shop_order(id: &str, sku23: &str, sku8: &str) -> Order {
    Order {
        shop: "sklep-glowny".into(),
        order_id: id.into(),
        number: format!("WWW-{id}"),
        revision: Utc::now(),
        placed_at: Utc::now(),
        status: "processing".into(),
        state: contract::OrderState::Paid,
        paid: true,
        currency: "PLN".into(),
        payment_method: "bacs".into(),
        payment_form: None,
        buyer: Buyer {
            email: Some(format!("zażółć.{id}@example.pl")),
            nip: None,
            billing: Address {
                name: "Grzegorz Brzęczyszczykiewicz".into(),
                company: None,
                street: "ul. Świętokrzyska 12/34 lokal usługowy na parterze od podwórza".into(),
                city: "Łódź".into(),
                postcode: "90-001".into(),
                country: "PL".into(),
                phone: Some("+48 600 100 200".into()),
            },
            shipping: Some(Address {
                name: "Żaneta Ćwik".into(),
                company: Some("Źródło Sp. z o.o.".into()),
                street: "ul. Ogrodowa 5".into(),
                city: "Gdańsk".into(),
                postcode: "80-001".into(),
                country: "PL".into(),
                phone: None,
            }),
        },
        lines: vec![
            OrderLine {
                sku: sku23.into(),
                name: "Kawa".into(),
                quantity: dec!(3),
                vat: "23".parse().unwrap(),
                unit_price_gross: dec!(33.33),
                total_net: dec!(81.29),
                total_vat: dec!(18.70),
                total_gross: dec!(99.99),
                discount_gross: dec!(10.00),
            },
            OrderLine {
                sku: sku8.into(),
                name: "Herbata".into(),
                quantity: dec!(2),
                vat: "8".parse().unwrap(),
                unit_price_gross: dec!(12.35),
                total_net: dec!(22.87),
                total_vat: dec!(1.83),
                total_gross: dec!(24.70),
                discount_gross: dec!(0),
            },
        ],
        shipping: Some(Shipping {
            method: "flat_rate".into(),
            title: "Kurier InPost".into(),
            service_sku: None,
            vat: "23".parse().unwrap(),
            total_net: dec!(12.19),
            total_vat: dec!(2.80),
            total_gross: dec!(14.99),
        }),
        discount_gross: dec!(10.00),
        total_net: dec!(116.35),
        total_vat: dec!(23.33),
        total_gross: dec!(139.68),
        customer_note: Some("Proszę dzwonić przed dostawą".into()),
    }
}

async fn count(erp: &Erp, sql_text: &str, key: &str) -> anyhow::Result<i32> {
    let mut sql = erp.connect().await?;
    let mut query = Query::new(sql_text.to_owned());
    query.bind(key);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    Ok(rows.first().and_then(|r| r.get::<i32, _>(0)).unwrap_or(-1))
}

/// Rows in the tables a written order touches: (TraNag, TraElem, TraVat,
/// Kontrahenci).
async fn written_rows(erp: &Erp) -> anyhow::Result<(i32, i32, i32, i32)> {
    let mut counts = Vec::new();
    for table in ["TraNag", "TraElem", "TraVat", "Kontrahenci"] {
        counts.push(
            count(
                erp,
                &format!("SELECT COUNT(*) FROM CDN.{table} WHERE @P1 = @P1"),
                "x",
            )
            .await?,
        );
    }
    Ok((counts[0], counts[1], counts[2], counts[3]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_becomes_one_document_with_totals_to_the_grosz() -> anyhow::Result<()> {
    let (erp, sku23, sku8) = erp_with_skus(200, 11).await?;
    let order = shop_order("1001", &sku23, &sku8);
    let mut sql = connect_ado(&erp.ado, 10).await?;

    let first = write_order(&mut sql, &order, &settings(), None).await?;
    let WriteResult::Written {
        document_id,
        document_number,
        already: false,
    } = first.clone()
    else {
        panic!("expected a new document, got {first:?}");
    };
    assert!(document_number.starts_with("RO/"), "{document_number}");

    // Redeliveries, also two at once on separate connections: one document.
    let again = write_order(&mut sql, &order, &settings(), None).await?;
    assert_eq!(
        again,
        WriteResult::Written {
            document_id,
            document_number: document_number.clone(),
            already: true
        }
    );
    let (mut a, mut b) = (
        connect_ado(&erp.ado, 10).await?,
        connect_ado(&erp.ado, 10).await?,
    );
    let racing = shop_order("1002", &sku23, &sku8);
    let s = settings();
    let (ra, rb) = tokio::join!(
        write_order(&mut a, &racing, &s, None),
        write_order(&mut b, &racing, &s, None)
    );
    let (ra, rb) = (ra?, rb?);
    let news = [&ra, &rb]
        .iter()
        .filter(|r| matches!(r, WriteResult::Written { already: false, .. }))
        .count();
    assert_eq!(news, 1, "exactly one writer wrote: {ra:?} {rb:?}");
    for key in [order.key(), racing.key()] {
        assert_eq!(
            count(
                &erp,
                "SELECT COUNT(*) FROM CDN.TraNag WHERE TrN_ImportRowId = CAST(@P1 AS varchar(36))",
                &import_row_id(&key)
            )
            .await?,
            1,
            "one document for {key}"
        );
    }

    // The header: buffer, the shop's number, totals equal the shop's.
    let mut query = Query::new(
        "SELECT TrN_Bufor, TrN_NumerObcy, TrN_RazemNetto, TrN_RazemVAT, TrN_RazemBrutto, TrN_Opis, TrN_OdbNazwa1, TrN_OdbMiasto, TrN_PodID, TrN_FPlId, TrN_DataDok, TrN_Termin FROM CDN.TraNag WHERE TrN_TrNID = @P1",
    );
    query.bind(i32::try_from(document_id)?);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    let header = rows.first().ok_or_else(|| anyhow::anyhow!("no header"))?;
    assert_eq!(header.get::<i16, _>("TrN_Bufor"), Some(1));
    assert_eq!(header.get::<&str, _>("TrN_NumerObcy"), Some("WWW-1001"));
    assert_eq!(
        header.get::<Decimal, _>("TrN_RazemNetto"),
        Some(dec!(116.35))
    );
    assert_eq!(header.get::<Decimal, _>("TrN_RazemVAT"), Some(dec!(23.33)));
    assert_eq!(
        header.get::<Decimal, _>("TrN_RazemBrutto"),
        Some(dec!(139.68))
    );
    assert_eq!(header.get::<&str, _>("TrN_OdbMiasto"), Some("Gdańsk"));
    assert_eq!(
        header.get::<&str, _>("TrN_OdbNazwa1"),
        Some("Źródło Sp. z o.o. (Żaneta Ćwik)")
    );
    let remarks = header
        .get::<&str, _>("TrN_Opis")
        .unwrap_or_default()
        .to_owned();
    assert!(remarks.contains("Proszę dzwonić"), "{remarks}");
    assert!(
        remarks.contains("Ulica skrócono do 40 znaków"),
        "a cut says so in the remarks: {remarks}"
    );
    let customer = header.get::<i32, _>("TrN_PodID").unwrap_or_default();
    assert!(
        header.get::<i32, _>("TrN_FPlId").is_some(),
        "payment form mapped"
    );
    // "przelew" gives 7 days to pay (the seed's FPl_Termin).
    let (Some(issued), Some(due)) = (
        header.get::<chrono::NaiveDateTime, _>("TrN_DataDok"),
        header.get::<chrono::NaiveDateTime, _>("TrN_Termin"),
    ) else {
        panic!("no TrN_DataDok or TrN_Termin");
    };
    assert_eq!(due - issued, chrono::Duration::days(7));

    // Lines: goods with the discount kept, then shipping as a service line.
    let mut query = Query::new(
        "SELECT TrE_TwrKod, TrE_Ilosc, TrE_Rabat, TrE_WartoscNetto, TrE_WartoscBrutto FROM CDN.TraElem WHERE TrE_TrNId = @P1 ORDER BY TrE_Lp",
    );
    query.bind(i32::try_from(document_id)?);
    let lines = query.query(&mut sql).await?.into_first_result().await?;
    let codes: Vec<&str> = lines
        .iter()
        .filter_map(|r| r.get::<&str, _>("TrE_TwrKod"))
        .collect();
    assert_eq!(codes, [sku23.as_str(), sku8.as_str(), "TRANSPORT"]);
    assert_eq!(lines[0].get::<Decimal, _>("TrE_Rabat"), Some(dec!(9.09)));
    let net: Decimal = lines
        .iter()
        .filter_map(|r| r.get::<Decimal, _>("TrE_WartoscNetto"))
        .sum();
    assert_eq!(net, dec!(116.35));
    // Positions from 1; unit net prices to 4 decimals: 81.29 / 3 =
    // 27.0967, 22.87 / 2 = 11.4350 (no discount: the price before it is
    // the same), shipping 12.19.
    let mut query = Query::new(
        "SELECT TrE_Lp, TrE_CenaW, TrE_Cena0 FROM CDN.TraElem WHERE TrE_TrNId = @P1 ORDER BY TrE_Lp",
    );
    query.bind(i32::try_from(document_id)?);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    let priced: Vec<(Option<i32>, Option<Decimal>, Option<Decimal>)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<i32, _>("TrE_Lp"),
                r.get::<Decimal, _>("TrE_CenaW"),
                r.get::<Decimal, _>("TrE_Cena0"),
            )
        })
        .collect();
    assert_eq!(priced[0].0, Some(1));
    assert_eq!(priced[0].1, Some(dec!(27.0967)));
    assert_eq!(
        priced[1],
        (Some(2), Some(dec!(11.4350)), Some(dec!(11.4350)))
    );
    assert_eq!(priced[2], (Some(3), Some(dec!(12.19)), Some(dec!(12.19))));

    // VAT per rate equals the shop's lines.
    let mut query = Query::new(
        "SELECT TrV_Stawka, TrV_Netto, TrV_VAT FROM CDN.TraVat WHERE TrV_TrNId = @P1 ORDER BY TrV_Stawka",
    );
    query.bind(i32::try_from(document_id)?);
    let vat = query.query(&mut sql).await?.into_first_result().await?;
    let by_rate: Vec<(Decimal, Decimal, Decimal)> = vat
        .iter()
        .filter_map(|r| {
            Some((
                r.get::<Decimal, _>("TrV_Stawka")?,
                r.get::<Decimal, _>("TrV_Netto")?,
                r.get::<Decimal, _>("TrV_VAT")?,
            ))
        })
        .collect();
    assert_eq!(
        by_rate,
        [
            (dec!(8), dec!(22.87), dec!(1.83)),
            (dec!(23), dec!(93.48), dec!(21.50))
        ]
    );

    // A new customer with the Polish name intact; the next order by the same
    // e-mail finds them.
    let mut query = Query::new(
        "SELECT Knt_Nazwa1, Knt_Miasto, Knt_Email FROM CDN.Kontrahenci WHERE Knt_KntId = @P1",
    );
    query.bind(customer);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    assert_eq!(
        rows[0].get::<&str, _>("Knt_Nazwa1"),
        Some("Grzegorz Brzęczyszczykiewicz")
    );
    assert_eq!(rows[0].get::<&str, _>("Knt_Miasto"), Some("Łódź"));
    let mut same_buyer = shop_order("1003", &sku23, &sku8);
    same_buyer.buyer.email = order.buyer.email.clone();
    let WriteResult::Written {
        document_id: third, ..
    } = write_order(&mut sql, &same_buyer, &settings(), None).await?
    else {
        panic!("third order not written");
    };
    let mut query = Query::new("SELECT TrN_PodID FROM CDN.TraNag WHERE TrN_TrNID = @P1");
    query.bind(i32::try_from(third)?);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    assert_eq!(
        rows[0].get::<i32, _>("TrN_PodID"),
        Some(customer),
        "matched by e-mail"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_match_by_nip_and_private_buyers_go_to_the_collective_customer()
-> anyhow::Result<()> {
    let (erp, sku23, sku8) = erp_with_skus(100, 12).await?;
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let rows = Query::new("SELECT TOP 1 Knt_KntId, Knt_Nip FROM CDN.Kontrahenci WHERE Knt_Nip IS NOT NULL AND Knt_NipKraj = 'PL' ORDER BY Knt_KntId")
        .query(&mut sql)
        .await?
        .into_first_result()
        .await?;
    let known = rows[0].get::<i32, _>("Knt_KntId").unwrap_or_default();
    let nip = rows[0]
        .get::<&str, _>("Knt_Nip")
        .unwrap_or_default()
        .to_owned();

    let mut company = shop_order("2001", &sku23, &sku8);
    company.buyer.nip = Some(format!("PL {}", nip.replace('-', "")));
    company.buyer.email = Some("inny@example.pl".into());
    let mut collective = settings();
    collective.collective_customer = Some("DETAL".into());
    let private = shop_order("2002", &sku23, &sku8);

    for (order, expected) in [(&company, Some(known)), (&private, None)] {
        let WriteResult::Written { document_id, .. } =
            write_order(&mut sql, order, &collective, None).await?
        else {
            panic!("not written");
        };
        let mut query = Query::new(
            "SELECT k.Knt_Kod, k.Knt_KntId FROM CDN.TraNag n JOIN CDN.Kontrahenci k ON k.Knt_KntId = n.TrN_PodID WHERE n.TrN_TrNID = @P1",
        );
        query.bind(i32::try_from(document_id)?);
        let rows = query.query(&mut sql).await?.into_first_result().await?;
        match expected {
            Some(id) => assert_eq!(
                rows[0].get::<i32, _>("Knt_KntId"),
                Some(id),
                "matched by NIP"
            ),
            None => assert_eq!(rows[0].get::<&str, _>("Knt_Kod"), Some("DETAL")),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_that_cannot_be_written_whole_is_parked_and_writes_nothing() -> anyhow::Result<()>
{
    let (erp, sku23, sku8) = erp_with_skus(100, 13).await?;
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let before = written_rows(&erp).await?;

    let mut unknown = shop_order("3001", &sku23, &sku8);
    unknown.lines[1].sku = "NIE-MA-TAKIEGO".into();
    let mut unmapped_payment = shop_order("3002", &sku23, &sku8);
    unmapped_payment.payment_method = "bitcoin".into();
    let mut mismatch = shop_order("3003", &sku23, &sku8);
    mismatch.total_gross += dec!(0.01);
    let mut huge = shop_order("3004", &sku23, &sku8);
    huge.lines[0].quantity = Decimal::from(1_000_000_000_000i64);
    // No address at all; and one where neither address is complete (shipping
    // without a postcode, billing without a street). Each buyer is new, so
    // writing it would also create a customer.
    let mut no_address = shop_order("3005", &sku23, &sku8);
    no_address.buyer.billing = Address::default();
    no_address.buyer.shipping = None;
    let mut incomplete = shop_order("3006", &sku23, &sku8);
    incomplete.buyer.billing.street = "  ".into();
    if let Some(shipping) = incomplete.buyer.shipping.as_mut() {
        shipping.postcode = String::new();
    }
    for (order, expect) in [
        (&unknown, "unknown SKU in Optima: NIE-MA-TAKIEGO"),
        (&unmapped_payment, "payment method `bitcoin`"),
        (&mismatch, "totals do not add up"),
        (&huge, "out of range"),
        (&no_address, "no complete address"),
        (&incomplete, "no complete address"),
    ] {
        match write_order(&mut sql, order, &settings(), None).await? {
            WriteResult::Parked(reason) => assert!(reason.contains(expect), "{reason}"),
            other => panic!("{} should be parked, got {other:?}", order.order_id),
        }
        assert_eq!(
            count(
                &erp,
                "SELECT COUNT(*) FROM CDN.TraNag WHERE TrN_ImportRowId = CAST(@P1 AS varchar(36))",
                &import_row_id(&order.key())
            )
            .await?,
            0,
            "no document for the parked {}",
            order.order_id
        );
    }
    assert_eq!(
        written_rows(&erp).await?,
        before,
        "(TraNag, TraElem, TraVat, Kontrahenci): no document, line, VAT row or customer for a parked order"
    );
    Ok(())
}

/// A two-line shop order `id` written as an RO, as the follower tracks it.
async fn written_and_tracked(
    erp: &Erp,
    sql: &mut agent::sql::SqlClient,
    id: &str,
) -> anyhow::Result<TrackedOrder> {
    let (sku23, sku8) = (sku_with_rate(erp, 23).await?, sku_with_rate(erp, 8).await?);
    let order = shop_order(id, &sku23, &sku8);
    let WriteResult::Written {
        document_id,
        document_number,
        ..
    } = write_order(sql, &order, &settings(), None).await?
    else {
        anyhow::bail!("{id} not written");
    };
    Ok(TrackedOrder {
        key: order.key(),
        shop: order.shop.clone(),
        order_id: order.order_id.clone(),
        document_id,
        document_number,
        reported: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realising_the_reservation_reads_back_as_shipped_with_tracking() -> anyhow::Result<()> {
    let erp = erp_for_tests(SeedOptions {
        products: 100,
        seed: 14,
    })
    .await?;
    let Some(db) = erp.db.clone() else {
        eprintln!("real SQL Server: the office simulator is the stand-in's; skipped");
        return Ok(());
    };
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let tracked = written_and_tracked(&erp, &mut sql, "4001").await?;
    let document_id = tracked.document_id;
    let chains = document_chains(&mut sql, &[document_id]).await?;
    let accepted = progress_of(&tracked, &chains[&document_id]).unwrap();
    assert_eq!(accepted.stage, OrderStage::Accepted);

    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut sim = optima_standin::simulator::Simulator::open(&db)?;
        sim.perform(optima_standin::simulator::Action::Realise {
            ro_id: document_id,
            tracking: "PL0012345678".into(),
        })?;
        Ok(())
    })
    .await??;
    let chains = document_chains(&mut sql, &[document_id]).await?;
    let shipped = progress_of(&tracked, &chains[&document_id]).unwrap();
    assert_eq!(shipped.stage, OrderStage::Shipped);
    assert_eq!(shipped.tracking_number.as_deref(), Some("PL0012345678"));
    assert_eq!(
        shipped.documents.len(),
        3,
        "RO, FS and WZ: {:?}",
        shipped.documents
    );
    Ok(())
}

/// The invoice Optima made from a shop order reads back as the buyer's copy
/// shows it: the seller from the company stamp the FS names, the buyer, the
/// lines, the table per rate and the totals (amounts by hand: the RO's unit
/// net prices times the quantities, rounded to the grosz, VAT added per
/// line), then the KSeF number once Optima records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_realised_orders_invoice_reads_back_as_the_buyers_copy_and_then_with_its_ksef_number()
-> anyhow::Result<()> {
    let erp = erp_for_tests(SeedOptions {
        products: 100,
        seed: 19,
    })
    .await?;
    let Some(db) = erp.db.clone() else {
        eprintln!("real SQL Server: the office simulator is the stand-in's; skipped");
        return Ok(());
    };
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let (sku23, sku8) = (
        sku_with_rate(&erp, 23).await?,
        sku_with_rate(&erp, 8).await?,
    );
    let tracked = written_and_tracked(&erp, &mut sql, "4003").await?;
    let document_id = tracked.document_id;
    let sim_db = db.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut sim = optima_standin::simulator::Simulator::open(&sim_db)?;
        sim.perform(optima_standin::simulator::Action::Realise {
            ro_id: document_id,
            tracking: "PL0012345679".into(),
        })?;
        Ok(())
    })
    .await??;
    let chains = document_chains(&mut sql, &[document_id]).await?;
    let fs = chains[&document_id]
        .iter()
        .find(|d| d.class == 302)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no FS in {:?}", chains[&document_id]))?;
    let invoices =
        agent::optima::invoice::invoices(&mut sql, &[fs.id, document_id + 100_000]).await?;
    assert_eq!(invoices.len(), 1, "only the FS that exists");
    let invoice = &invoices[&fs.id];
    assert_eq!(invoice.number, fs.number);
    assert_eq!(invoice.corrects, None);
    let today = chrono::Local::now().date_naive();
    assert_eq!((invoice.issued_on, invoice.sold_on), (today, today));
    assert_eq!(invoice.payment_form, "przelew");
    assert_eq!(invoice.payment_due, today + chrono::Duration::days(7));
    assert_eq!(
        invoice.seller,
        contract::Party {
            name: "Palarnia Kawy Wiśniewski sp. z o.o.".into(),
            nip: Some("7251801126".into()),
            nip_country: Some("PL".into()),
            street: "ul. Piotrkowska 120".into(),
            postcode: "90-006".into(),
            city: "Łódź".into(),
            country: "Polska".into(),
        }
    );
    assert_eq!(invoice.buyer.name, "Grzegorz Brzęczyszczykiewicz");
    assert_eq!(
        (invoice.buyer.postcode.as_str(), invoice.buyer.city.as_str()),
        ("90-001", "Łódź")
    );
    assert!(
        invoice.buyer.street.contains("Świętokrzyska"),
        "{:?}",
        invoice.buyer
    );
    assert_eq!(invoice.buyer.nip, None);
    let lines: Vec<_> = invoice
        .lines
        .iter()
        .map(|l| {
            (
                l.position,
                l.code.as_str(),
                l.quantity,
                l.unit_net_price,
                l.vat.to_string(),
                l.net,
                l.gross,
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (
                1,
                sku23.as_str(),
                dec!(3),
                dec!(27.0967),
                "23".to_owned(),
                dec!(81.29),
                dec!(99.99)
            ),
            (
                2,
                sku8.as_str(),
                dec!(2),
                dec!(11.4350),
                "8".to_owned(),
                dec!(22.87),
                dec!(24.70)
            ),
            (
                3,
                "TRANSPORT",
                dec!(1),
                dec!(12.19),
                "23".to_owned(),
                dec!(12.19),
                dec!(14.99)
            ),
        ]
    );
    assert!(
        invoice
            .lines
            .iter()
            .all(|l| !l.name.is_empty() && !l.unit.is_empty())
    );
    let table: Vec<_> = invoice
        .vat_summary
        .iter()
        .map(|v| (v.rate.to_string(), v.net, v.vat, v.gross))
        .collect();
    assert_eq!(
        table,
        [
            ("23".to_owned(), dec!(93.48), dec!(21.50), dec!(114.98)),
            ("8".to_owned(), dec!(22.87), dec!(1.83), dec!(24.70)),
        ]
    );
    assert_eq!(
        (invoice.total_net, invoice.total_vat, invoice.total_gross),
        (dec!(116.35), dec!(23.33), dec!(139.68))
    );
    assert_eq!(invoice.currency, "PLN");
    assert_eq!(invoice.exchange_rate, None);
    assert_eq!(invoice.ksef_number, None, "KSeF has not answered yet");

    let ksef = "7251801126-20261207-0100A0B1C2D3-4E";
    let fs_id = fs.id;
    let db_for_return = db.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut sim = optima_standin::simulator::Simulator::open(&db)?;
        sim.perform(optima_standin::simulator::Action::KsefAccepted {
            document_id: fs_id,
            ksef_number: ksef.into(),
        })?;
        Ok(())
    })
    .await??;
    let invoices = agent::optima::invoice::invoices(&mut sql, &[fs.id]).await?;
    assert_eq!(invoices[&fs.id].ksef_number.as_deref(), Some(ksef));
    assert!(invoices[&fs.id].ksef_accepted_at.is_some());

    // The buyer sends one of the three back: the office books a quantity
    // correction against the invoice. The order's chain reaches it through
    // TrN_ZwrId, the newest-documents read names it with the invoice it
    // corrects, and it reads as a correction with the line negative.
    let first = agent::optima::invoice::corrections_after(&mut sql, None).await?;
    assert!(
        first.corrections.is_empty(),
        "the first read only finds where Optima is"
    );
    let start = first
        .next
        .ok_or_else(|| anyhow::anyhow!("no newest document id"))?;
    let returned = sku23.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut sim = optima_standin::simulator::Simulator::open(&db_for_return)?;
        sim.perform(optima_standin::simulator::Action::CorrectInvoice {
            invoice_id: fs_id,
            lines: vec![(returned, dec!(1))],
            reason: "Zwrot towaru".into(),
        })?;
        Ok(())
    })
    .await??;
    let chains = document_chains(&mut sql, &[document_id]).await?;
    let correction = chains[&document_id]
        .iter()
        .find(|d| d.class == 302 && d.id != fs.id)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no correction in {:?}", chains[&document_id]))?;
    assert!(correction.number.starts_with("FSKOR/"), "{correction:?}");
    assert!(!correction.in_buffer && !correction.cancelled);
    let read = agent::optima::invoice::corrections_after(&mut sql, Some(start)).await?;
    assert_eq!(read.corrections, [(correction.id, fs.id)]);
    assert_eq!(read.next, Some(correction.id));
    let invoices = agent::optima::invoice::invoices(&mut sql, &[correction.id]).await?;
    let corrected = &invoices[&correction.id];
    assert_eq!(corrected.corrects.as_deref(), Some(fs.number.as_str()));
    assert_eq!(corrected.correction_reason.as_deref(), Some("Zwrot towaru"));
    assert_eq!(corrected.corrected_issued_on, Some(today));
    assert_eq!(corrected.corrected_ksef_number.as_deref(), Some(ksef));
    let lines: Vec<_> = corrected
        .lines
        .iter()
        .map(|l| {
            (
                l.code.as_str(),
                l.quantity,
                l.unit_net_price,
                l.net,
                l.gross,
            )
        })
        .collect();
    // 27.0967 × −1 = −27.10 net; × 1.23 = −33.333 → −33.33 gross.
    assert_eq!(
        lines,
        [(
            sku23.as_str(),
            dec!(-1),
            dec!(27.0967),
            dec!(-27.10),
            dec!(-33.33)
        )]
    );
    assert_eq!(
        (
            corrected.total_net,
            corrected.total_vat,
            corrected.total_gross
        ),
        (dec!(-27.10), dec!(-6.23), dec!(-33.33))
    );
    assert_eq!(corrected.ksef_number, None);
    Ok(())
}

/// Before the office realises an order: the buyer's remark stays a reason
/// until the office clears it from the document, and a line whose
/// warehouse holds too little (plain SQL sets the stock) is named with
/// what is needed and what is free; services need none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_waits_for_its_remark_to_be_cleared_and_its_goods_to_be_in_stock()
-> anyhow::Result<()> {
    let erp = erp_for_tests(SeedOptions {
        products: 100,
        seed: 21,
    })
    .await?;
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let sku23 = sku_with_rate(&erp, 23).await?;
    let tracked = written_and_tracked(&erp, &mut sql, "4004").await?;
    let id = tracked.document_id;
    let run =
        async |sql: &mut agent::sql::SqlClient, text: &str, value: &str| -> anyhow::Result<()> {
            let mut query = Query::new(text.to_owned());
            query.bind(value.to_owned());
            query.execute(sql).await?;
            Ok(())
        };
    // Plenty of the Kawa in the order's warehouse: only the remark holds it.
    let set_stock = "UPDATE CDN.TwrIlosci SET TwI_Ilosc = {q}, TwI_Rezerwacje = 0, TwI_RezerwacjeZlecenia = 0 \
         WHERE TwI_TwrId = (SELECT Twr_TwrId FROM CDN.Towary WHERE Twr_Kod = CAST(@P1 AS varchar(50))) \
         AND TwI_MagId = (SELECT Mag_MagId FROM CDN.Magazyny WHERE Mag_Symbol = 'MAG')";
    run(&mut sql, &set_stock.replace("{q}", "100"), &sku23).await?;
    let checks = agent::optima::realisation::checks(&mut sql, &[id]).await?;
    let check = &checks[&id];
    assert_eq!(
        check.remark.as_deref(),
        Some("Proszę dzwonić przed dostawą")
    );
    assert!(
        check
            .short
            .iter()
            .all(|l| l.sku != sku23 && l.sku != "TRANSPORT"),
        "{check:?}"
    );

    // The warehouse holds 2 of the 3: short by one.
    run(&mut sql, &set_stock.replace("{q}", "2"), &sku23).await?;
    // The office handles the remark and takes it out of the description.
    let mut clear = Query::new("UPDATE CDN.TraNag SET TrN_Opis = @P1 WHERE TrN_TrNID = @P2");
    clear.bind("Zamówienie WWW-4004: obsłużone");
    clear.bind(i32::try_from(id)?);
    clear.execute(&mut sql).await?;
    let checks = agent::optima::realisation::checks(&mut sql, &[id]).await?;
    let check = &checks[&id];
    assert_eq!(check.remark, None);
    let short: Vec<_> = check
        .short
        .iter()
        .filter(|l| l.sku == sku23)
        .map(|l| (l.warehouse.as_str(), l.needed, l.available))
        .collect();
    assert_eq!(short, [("MAG", dec!(3), dec!(2))]);
    Ok(())
}

/// Where the office ships through Optima's courier module, the waybill is
/// not on the WZ but on the shipment order made for the invoice
/// (`SenditZleceniePrzesylki.SZL_FaId`), and the WZ is found through its
/// `TrN_FaId`; relations are stored both ways and none is counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_courier_shipment_gives_the_tracking_number_when_the_wz_has_none() -> anyhow::Result<()> {
    let erp = erp_for_tests(SeedOptions {
        products: 100,
        seed: 18,
    })
    .await?;
    let Some(db) = erp.db.clone() else {
        eprintln!("real SQL Server: the office simulator is the stand-in's; skipped");
        return Ok(());
    };
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let tracked = written_and_tracked(&erp, &mut sql, "4002").await?;
    let document_id = tracked.document_id;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut sim = optima_standin::simulator::Simulator::open(&db)?;
        sim.perform(optima_standin::simulator::Action::RealiseViaSendit {
            ro_id: document_id,
            tracking: "620012345678901234567890".into(),
            carrier: "InPost".into(),
        })?;
        Ok(())
    })
    .await??;
    let chains = document_chains(&mut sql, &[document_id]).await?;
    let chain = &chains[&document_id];
    assert_eq!(
        chain.iter().map(|d| d.class).collect::<Vec<_>>(),
        [308, 302, 306],
        "RO, its FS (related both ways, counted once) and the WZ pointing at the FS: {chain:?}"
    );
    let fs = &chain[1];
    assert_eq!(fs.tracking.as_deref(), Some("620012345678901234567890"));
    assert_eq!(fs.carrier.as_deref(), Some("InPost"));
    let shipped = progress_of(&tracked, chain).unwrap();
    assert_eq!(shipped.stage, OrderStage::Shipped);
    assert_eq!(
        shipped.tracking_number.as_deref(),
        Some("620012345678901234567890")
    );

    // The order's own waybill wins over its parcel's; without one, the
    // first parcel's number stands in; a blank carrier is none.
    let fs_id = i32::try_from(fs.id)?;
    let update = async |sql: &mut agent::sql::SqlClient, text: &str| -> anyhow::Result<()> {
        let mut query = Query::new(text.to_owned());
        query.bind(fs_id);
        query.execute(sql).await?;
        Ok(())
    };
    update(
        &mut sql,
        "UPDATE CDN.SenditPaczki SET SPA_NumerListu = 'PACZKA-2' WHERE SPA_SZLID IN          (SELECT SZL_SZLID FROM CDN.SenditZleceniePrzesylki WHERE SZL_FaId = @P1)",
    )
    .await?;
    let chains = document_chains(&mut sql, &[document_id]).await?;
    assert_eq!(
        chains[&document_id][1].tracking.as_deref(),
        Some("620012345678901234567890")
    );
    update(
        &mut sql,
        "UPDATE CDN.SenditZleceniePrzesylki SET SZL_NrListuPrzewozowego = '', SZL_KurierNazwa = ''          WHERE SZL_FaId = @P1",
    )
    .await?;
    let chains = document_chains(&mut sql, &[document_id]).await?;
    let fs = &chains[&document_id][1];
    assert_eq!(
        (fs.tracking.as_deref(), fs.carrier.as_deref()),
        (Some("PACZKA-2"), None)
    );
    Ok(())
}

/// `agent orders rehearse`: the document is written and read back inside a
/// transaction and rolled back: no row stays (header, lines, VAT, customer)
/// and the next number is the one it would have taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_shows_the_document_and_leaves_nothing_behind() -> anyhow::Result<()> {
    let erp = erp_for_tests(SeedOptions {
        products: 100,
        seed: 19,
    })
    .await?;
    let sku = sku_with_rate(&erp, 23).await?;
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let counts = async |sql: &mut agent::sql::SqlClient| -> anyhow::Result<Vec<i32>> {
        let mut out = Vec::new();
        for table in ["TraNag", "TraElem", "TraVat", "Kontrahenci"] {
            let rows = Query::new(format!("SELECT COUNT(*) AS n FROM CDN.{table}"))
                .query(sql)
                .await?
                .into_first_result()
                .await?;
            out.push(
                rows.first()
                    .and_then(|r| r.get::<i32, _>("n"))
                    .unwrap_or(-1),
            );
        }
        Ok(out)
    };
    let before = counts(&mut sql).await?;
    let order = agent::optima::order_document::sample_order(&sku, Decimal::new(12300, 2));
    let rehearsal =
        agent::optima::order_document::rehearse(&mut sql, &order, &settings(), None).await?;
    assert!(
        rehearsal.outcome.starts_with("written as RO/"),
        "{}",
        rehearsal.outcome
    );
    let column = |name: &str| {
        rehearsal
            .header
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(column("TrN_Bufor").as_deref(), Some("1"));
    assert_eq!(column("TrN_RazemBrutto").as_deref(), Some("123.00"));
    assert_eq!(rehearsal.lines.len(), 1);
    let number_string = column("TrN_NumerString")
        .unwrap_or_default()
        .trim_matches('\'')
        .to_owned();
    let number: i32 = column("TrN_NumerNr").unwrap_or_default().parse()?;
    assert_eq!(counts(&mut sql).await?, before, "nothing stays");
    assert_eq!(
        next_number(&erp, &number_string, 0).await?,
        number,
        "the number is free again"
    );
    // The same order written for real takes exactly that number.
    let WriteResult::Written {
        document_number, ..
    } = write_order(&mut sql, &order, &settings(), None).await?
    else {
        panic!("not written");
    };
    assert_eq!(
        document_number,
        number_string.replace("@numerS", &number.to_string())
    );
    Ok(())
}

/// The number the agent's numbering should give next: MAX+1 over the
/// documents with the same number string (`FS/@numerS/2026`), other than
/// `except`, computed here by plain SQL.
async fn next_number(erp: &Erp, number_string: &str, except: i64) -> anyhow::Result<i32> {
    let mut sql = erp.connect().await?;
    let mut query = Query::new(
        "SELECT ISNULL(MAX(TrN_NumerNr), 0) + 1 AS nr FROM CDN.TraNag WHERE TrN_NumerString = CAST(@P1 AS varchar(31)) AND TrN_TrNID <> @P2",
    );
    query.bind(number_string);
    query.bind(i32::try_from(except)?);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    rows.first()
        .and_then(|r| r.get::<i32, _>("nr"))
        .ok_or_else(|| anyhow::anyhow!("no numbering row"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoice_and_receipt_drafts_are_one_document_of_their_kind_in_the_buffer()
-> anyhow::Result<()> {
    let (erp, sku23, sku8) = erp_with_skus(100, 15).await?;
    let mut sql = connect_ado(&erp.ado, 10).await?;
    for (kind, symbol, class, id) in [
        (DocumentKind::Fs, "FS", 302, "5001"),
        (DocumentKind::Pa, "PA", 305, "5002"),
    ] {
        let mut s = settings();
        s.document = kind;
        let order = shop_order(id, &sku23, &sku8);
        let WriteResult::Written {
            document_id,
            document_number,
            already: false,
        } = write_order(&mut sql, &order, &s, None).await?
        else {
            panic!("{symbol}: not written as a new document");
        };

        let mut query = Query::new(
            "SELECT n.TrN_TypDokumentu, n.TrN_Rodzaj, n.TrN_NumerNr, n.TrN_NumerString, n.TrN_NumerPelny, n.TrN_Bufor, n.TrN_Anulowany, \
             n.TrN_PodmiotTyp, n.TrN_PodID, n.TrN_PodNazwa1, n.TrN_DataDok, n.TrN_Waluta, n.TrN_eSklepZrodlo, \
             n.TrN_RazemNetto, n.TrN_RazemVAT, n.TrN_RazemBrutto, d.DDf_Symbol, d.DDf_Klasa \
             FROM CDN.TraNag n JOIN CDN.DokDefinicje d ON d.DDf_DDfID = n.TrN_DDfId WHERE n.TrN_TrNID = @P1",
        );
        query.bind(i32::try_from(document_id)?);
        let rows = query.query(&mut sql).await?.into_first_result().await?;
        let header = rows.first().ok_or_else(|| anyhow::anyhow!("no header"))?;
        assert_eq!(header.get::<&str, _>("DDf_Symbol"), Some(symbol));
        assert_eq!(header.get::<i32, _>("DDf_Klasa"), Some(class));
        assert_eq!(header.get::<i32, _>("TrN_TypDokumentu"), Some(class));
        assert_eq!(header.get::<i32, _>("TrN_Rodzaj"), Some(class * 1000));
        assert_eq!(header.get::<i16, _>("TrN_Bufor"), Some(1), "{symbol} draft");
        assert_eq!(header.get::<i32, _>("TrN_Anulowany"), Some(0));
        // The customer as Optima pairs it, its block copied, a date-only
        // document, the system currency, the source marked as an API import.
        assert_eq!(header.get::<i16, _>("TrN_PodmiotTyp"), Some(1));
        assert!(header.get::<i32, _>("TrN_PodID").is_some());
        assert!(
            !header
                .get::<&str, _>("TrN_PodNazwa1")
                .unwrap_or_default()
                .is_empty()
        );
        let date = header
            .get::<chrono::NaiveDateTime, _>("TrN_DataDok")
            .unwrap();
        assert_eq!(date.time(), chrono::NaiveTime::MIN, "a date, not a time");
        assert_eq!(header.get::<&str, _>("TrN_Waluta"), Some(""));
        assert_eq!(header.get::<i32, _>("TrN_eSklepZrodlo"), Some(6));
        // Numbered in its own definition's series: SYMBOL/<MAX+1>/<year>.
        let full = header.get::<&str, _>("TrN_NumerPelny").unwrap_or_default();
        assert_eq!(full, document_number);
        let parts: Vec<&str> = full.split('/').collect();
        assert_eq!(parts.len(), 3, "{full}");
        assert_eq!(parts[0], symbol, "{full}");
        let nr = header.get::<i32, _>("TrN_NumerNr").unwrap_or_default();
        assert_eq!(parts[1], nr.to_string(), "{full}");
        let number_string = header.get::<&str, _>("TrN_NumerString").unwrap_or_default();
        assert_eq!(number_string, format!("{symbol}/@numerS/{}", parts[2]));
        assert_eq!(nr, next_number(&erp, number_string, document_id).await?);
        // Totals to the grosz: header, lines and VAT rows all equal the shop's.
        assert_eq!(
            (
                header.get::<Decimal, _>("TrN_RazemNetto"),
                header.get::<Decimal, _>("TrN_RazemVAT"),
                header.get::<Decimal, _>("TrN_RazemBrutto"),
            ),
            (
                Some(order.total_net),
                Some(order.total_vat),
                Some(order.total_gross)
            ),
            "{symbol} totals"
        );
        let mut query = Query::new(
            "SELECT TrE_WartoscNetto, TrE_WartoscBrutto FROM CDN.TraElem WHERE TrE_TrNId = @P1",
        );
        query.bind(i32::try_from(document_id)?);
        let lines = query.query(&mut sql).await?.into_first_result().await?;
        assert_eq!(lines.len(), 3, "two goods lines and shipping");
        let sum = |column: &str| -> Decimal {
            lines
                .iter()
                .filter_map(|r| r.get::<Decimal, _>(column))
                .sum()
        };
        assert_eq!(
            (sum("TrE_WartoscNetto"), sum("TrE_WartoscBrutto")),
            (order.total_net, order.total_gross)
        );
        let mut query =
            Query::new("SELECT TrV_Netto, TrV_VAT FROM CDN.TraVat WHERE TrV_TrNId = @P1");
        query.bind(i32::try_from(document_id)?);
        let vat = query.query(&mut sql).await?.into_first_result().await?;
        let vat_net: Decimal = vat
            .iter()
            .filter_map(|r| r.get::<Decimal, _>("TrV_Netto"))
            .sum();
        let vat_vat: Decimal = vat
            .iter()
            .filter_map(|r| r.get::<Decimal, _>("TrV_VAT"))
            .sum();
        assert_eq!((vat_net, vat_vat), (order.total_net, order.total_vat));

        // Exactly one document for the order, of this kind (no RO besides it);
        // a redelivery answers the same and writes nothing.
        let before = written_rows(&erp).await?;
        let again = write_order(&mut sql, &order, &s, None).await?;
        assert_eq!(
            again,
            WriteResult::Written {
                document_id,
                document_number: document_number.clone(),
                already: true
            }
        );
        assert_eq!(written_rows(&erp).await?, before, "{symbol} redelivery");
        let mut query = Query::new(
            "SELECT d.DDf_Symbol FROM CDN.TraNag n JOIN CDN.DokDefinicje d ON d.DDf_DDfID = n.TrN_DDfId WHERE n.TrN_NumerObcy = CAST(@P1 AS varchar(256))",
        );
        query.bind(order.number.as_str());
        let rows = query.query(&mut sql).await?.into_first_result().await?;
        let kinds: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.get::<&str, _>("DDf_Symbol"))
            .collect();
        assert_eq!(kinds, [symbol], "one document for {}", order.number);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_with_an_unknown_nip_becomes_one_new_customer_found_again_by_nip()
-> anyhow::Result<()> {
    let (erp, sku23, sku8) = erp_with_skus(100, 16).await?;
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let nip = "9512345672";
    let with_nip = "SELECT COUNT(*) FROM CDN.Kontrahenci WHERE REPLACE(REPLACE(Knt_Nip, '-', ''), ' ', '') = @P1";
    assert_eq!(
        count(&erp, with_nip, nip).await?,
        0,
        "no customer has {nip}"
    );
    let (.., customers_before) = written_rows(&erp).await?;
    // A collective customer is configured: a company with a NIP must not
    // land on it.
    let mut s = settings();
    s.collective_customer = Some("DETAL".into());

    let mut first = shop_order("6001", &sku23, &sku8);
    first.buyer.nip = Some("PL 951-234-56-72".into());
    first.buyer.email = Some("zakupy@zuraw.example.pl".into());
    first.buyer.billing.company = Some("Hurtownia Żuraw Sp. z o.o.".into());
    first.buyer.billing.name = "Jan Kowalski".into();
    // The same company, its NIP written differently, another e-mail.
    let mut second = shop_order("6002", &sku23, &sku8);
    second.buyer.nip = Some(nip.into());
    second.buyer.email = Some("faktury@zuraw.example.pl".into());
    second.buyer.billing.company = first.buyer.billing.company.clone();

    let mut customers = Vec::new();
    for order in [&first, &second] {
        let WriteResult::Written { document_id, .. } =
            write_order(&mut sql, order, &s, None).await?
        else {
            panic!("{} not written", order.order_id);
        };
        let mut query = Query::new(
            "SELECT k.Knt_KntId, k.Knt_Kod, k.Knt_Nip, k.Knt_NipKraj, k.Knt_Nazwa1, k.Knt_Nazwa2 \
             FROM CDN.TraNag n JOIN CDN.Kontrahenci k ON k.Knt_KntId = n.TrN_PodID WHERE n.TrN_TrNID = @P1",
        );
        query.bind(i32::try_from(document_id)?);
        let rows = query.query(&mut sql).await?.into_first_result().await?;
        let row = rows
            .first()
            .ok_or_else(|| anyhow::anyhow!("no customer on the document"))?;
        assert_eq!(row.get::<&str, _>("Knt_Nip"), Some(nip));
        assert_eq!(row.get::<&str, _>("Knt_NipKraj"), Some("PL"));
        assert_eq!(
            row.get::<&str, _>("Knt_Nazwa1"),
            Some("Hurtownia Żuraw Sp. z o.o.")
        );
        assert_eq!(row.get::<&str, _>("Knt_Nazwa2"), Some("Jan Kowalski"));
        let code = row.get::<&str, _>("Knt_Kod").unwrap_or_default();
        assert!(
            code.starts_with("WWW-"),
            "a customer the agent created: {code}"
        );
        customers.push(row.get::<i32, _>("Knt_KntId"));
    }
    assert_eq!(
        customers[0], customers[1],
        "the second order reuses the customer"
    );
    assert_eq!(count(&erp, with_nip, nip).await?, 1);
    let (.., customers_after) = written_rows(&erp).await?;
    assert_eq!(customers_after, customers_before + 1, "one new customer");
    Ok(())
}

/// The office realises `parent` into a `symbol` document (a draft in the
/// buffer or confirmed) over SQL, the way Optima links them: the new header
/// copies the parent's (every column but the identity and the computed
/// ones), an FS/PA is related to its RO in `TraNagRelacje` both ways, and a
/// WZ points at its invoice through `TrN_FaId`; a tracking number goes in
/// `TrN_NrListuPrzewozowego`.
async fn office_realises(
    erp: &Erp,
    parent: i64,
    symbol: &str,
    draft: bool,
    tracking: Option<&str>,
) -> anyhow::Result<(i64, String)> {
    let mut sql = erp.connect().await?;
    let mut query = Query::new(
        "SELECT TOP 1 DDf_DDfID, DDf_Klasa FROM CDN.DokDefinicje WHERE DDf_Symbol = CAST(@P1 AS varchar(5)) AND DDf_Nieaktywna = 0 ORDER BY DDf_DDfID",
    );
    query.bind(symbol);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    let (definition, class) = rows
        .first()
        .and_then(|r| {
            Some((
                r.try_get::<i32, _>("DDf_DDfID").ok()??,
                r.try_get::<i32, _>("DDf_Klasa").ok()??,
            ))
        })
        .ok_or_else(|| anyhow::anyhow!("no definition {symbol}"))?;
    let rows = Query::new(
        "SELECT COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = 'CDN' AND TABLE_NAME = 'TraNag' ORDER BY ORDINAL_POSITION",
    )
    .query(&mut sql)
    .await?
    .into_first_result()
    .await?;
    let overridden = [
        "TrN_DDfId",
        "TrN_TypDokumentu",
        "TrN_Rodzaj",
        "TrN_NumerString",
        "TrN_NumerNr",
        "TrN_Bufor",
        "TrN_NrListuPrzewozowego",
        "TrN_ImportRowId",
        "TrN_FaId",
        "TrN_NumerObcy",
    ];
    let skipped = [
        "TrN_TrNID",
        "TrN_NumerPelny",
        "TrN_StatusString",
        "TrN_WartoscZakupu",
    ];
    let copied: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get::<&str, _>("COLUMN_NAME").ok().flatten())
        .filter(|c| {
            !skipped
                .iter()
                .chain(&overridden)
                .any(|s| s.eq_ignore_ascii_case(c))
        })
        .map(str::to_owned)
        .collect();
    let year = chrono::Datelike::year(&chrono::Local::now());
    let number_string = format!("{symbol}/@numerS/BIURO{year}");
    let nr = 900_000 + i32::try_from(parent)?;
    let mut query = Query::new(format!(
        "DECLARE @ids TABLE (id int); \
         INSERT INTO CDN.TraNag ({cols}, {over}) OUTPUT INSERTED.TrN_TrNID INTO @ids (id) \
         SELECT {cols}, @P1, @P2, @P3, @P4, @P5, @P6, @P7, CAST(@P9 AS varchar(36)), {fa}, '' FROM CDN.TraNag WHERE TrN_TrNID = @P8; \
         SELECT id FROM @ids;",
        cols = copied.join(", "),
        over = overridden.join(", "),
        fa = if symbol == "WZ" { "@P8" } else { "NULL" },
    ));
    query.bind(definition);
    query.bind(class);
    query.bind(class * 1000);
    query.bind(number_string.clone());
    query.bind(nr);
    query.bind(i32::from(draft));
    query.bind(tracking.unwrap_or_default().to_owned());
    query.bind(i32::try_from(parent)?);
    // TrNGUID is a unique index (one NULL at most): Optima gives every
    // document its own GUID.
    query.bind(format!("{nr:08}-0000-4000-8000-{class:012}"));
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    let id = rows
        .first()
        .and_then(|r| r.try_get::<i32, _>("id").ok().flatten())
        .ok_or_else(|| anyhow::anyhow!("no id for the {symbol}"))?;
    if symbol != "WZ" {
        let mut query = Query::new("SELECT TrN_TypDokumentu FROM CDN.TraNag WHERE TrN_TrNID = @P1");
        query.bind(i32::try_from(parent)?);
        let rows = query.query(&mut sql).await?.into_first_result().await?;
        let parent_class = rows
            .first()
            .and_then(|r| r.try_get::<i32, _>("TrN_TypDokumentu").ok().flatten())
            .unwrap_or_default();
        for (from, from_class, to, to_class) in [
            (i32::try_from(parent)?, parent_class, id, class),
            (id, class, i32::try_from(parent)?, parent_class),
        ] {
            let mut query = Query::new(
                "INSERT INTO CDN.TraNagRelacje (TrR_TrNId, TrR_TrNTyp, TrR_FaId, TrR_FaTyp, TrR_Flaga) VALUES (@P1, @P2, @P3, @P4, 0)",
            );
            query.bind(from);
            query.bind(i16::try_from(from_class)?);
            query.bind(to);
            query.bind(i16::try_from(to_class)?);
            query.execute(&mut sql).await?;
        }
    }
    Ok((
        i64::from(id),
        number_string.replace("@numerS", &nr.to_string()),
    ))
}

/// The office, over SQL: `SET column = 1 or 0` on one document.
async fn office_sets(erp: &Erp, document: i64, column: &str, value: i32) -> anyhow::Result<()> {
    let mut sql = erp.connect().await?;
    let mut query = Query::new(format!(
        "UPDATE CDN.TraNag SET {column} = @P1 WHERE TrN_TrNID = @P2"
    ));
    query.bind(value);
    query.bind(i32::try_from(document)?);
    let done = query.execute(&mut sql).await?;
    anyhow::ensure!(done.total() == 1, "{column} of {document} not set");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_drafts_and_cancellations_read_back_as_their_stages() -> anyhow::Result<()> {
    let (erp, sku23, sku8) = erp_with_skus(100, 17).await?;
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let mut receipt_draft = settings();
    receipt_draft.document = DocumentKind::Pa;
    // An RO the office realises into a receipt, an RO it cancels, and an
    // order written straight as a PA draft that the office confirms.
    let mut tracked = Vec::new();
    for (id, s) in [
        ("7001", settings()),
        ("7002", settings()),
        ("7003", receipt_draft),
    ] {
        let order = shop_order(id, &sku23, &sku8);
        let WriteResult::Written {
            document_id,
            document_number,
            ..
        } = write_order(&mut sql, &order, &s, None).await?
        else {
            panic!("{id} not written");
        };
        tracked.push(TrackedOrder {
            key: order.key(),
            shop: order.shop.clone(),
            order_id: order.order_id.clone(),
            document_id,
            document_number,
            reported: None,
        });
    }
    let (realised, cancelled, receipt) = (&tracked[0], &tracked[1], &tracked[2]);
    let roots: Vec<i64> = tracked.iter().map(|t| t.document_id).collect();
    let mut sql_for = connect_ado(&erp.ado, 10).await?;
    let mut stages = async |expected: [OrderStage; 3]| -> anyhow::Result<Vec<Vec<String>>> {
        let chains = document_chains(&mut sql_for, &roots).await?;
        let mut documents = Vec::new();
        for (order, stage) in tracked.iter().zip(expected) {
            let chain = chains
                .get(&order.document_id)
                .ok_or_else(|| anyhow::anyhow!("no chain for {}", order.order_id))?;
            let progress = progress_of(order, chain)
                .ok_or_else(|| anyhow::anyhow!("no progress for {}", order.order_id))?;
            assert_eq!(progress.stage, stage, "{}: {chain:?}", order.order_id);
            documents.push(progress.documents);
        }
        Ok(documents)
    };
    let documents = stages([OrderStage::Accepted; 3]).await?;
    assert!(receipt.document_number.starts_with("PA/"));
    for (order, docs) in tracked.iter().zip(&documents) {
        assert_eq!(docs, std::slice::from_ref(&order.document_number));
    }

    // A receipt still in the buffer is not an invoice yet; confirmed, it is.
    let (pa, pa_number) = office_realises(&erp, realised.document_id, "PA", true, None).await?;
    stages([OrderStage::Accepted; 3]).await?;
    office_sets(&erp, pa, "TrN_Bufor", 0).await?;
    // Optima's mark of a cancelled document (Comarch BI's cancelled RO).
    office_sets(&erp, cancelled.document_id, "TrN_Anulowany", -2147483647).await?;
    office_sets(&erp, receipt.document_id, "TrN_Bufor", 0).await?;
    let documents = stages([
        OrderStage::Invoiced,
        OrderStage::Cancelled,
        OrderStage::Invoiced,
    ])
    .await?;
    assert_eq!(
        documents[0],
        [realised.document_number.clone(), pa_number.clone()]
    );
    assert_eq!(
        documents[1],
        std::slice::from_ref(&cancelled.document_number)
    );

    // The goods leave on a WZ from the receipt (RO → PA → WZ) with tracking.
    let (_, wz_number) = office_realises(&erp, pa, "WZ", false, Some("PL0099887766")).await?;
    stages([
        OrderStage::Shipped,
        OrderStage::Cancelled,
        OrderStage::Invoiced,
    ])
    .await?;
    let chains = document_chains(&mut sql, &[realised.document_id]).await?;
    let shipped = progress_of(realised, &chains[&realised.document_id]).unwrap();
    assert_eq!(shipped.tracking_number.as_deref(), Some("PL0099887766"));
    assert_eq!(
        shipped.documents,
        [realised.document_number.clone(), pa_number, wz_number]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_customer_without_a_billing_address_gets_the_shipping_address() -> anyhow::Result<()>
{
    let (erp, sku23, sku8) = erp_with_skus(100, 18).await?;
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let mut order = shop_order("8001", &sku23, &sku8);
    order.buyer.billing = Address::default();
    let WriteResult::Written { document_id, .. } =
        write_order(&mut sql, &order, &settings(), None).await?
    else {
        panic!("an order with a complete shipping address is written");
    };
    let mut query = Query::new(
        "SELECT k.Knt_Nazwa1, k.Knt_Nazwa2, k.Knt_Ulica, k.Knt_Miasto, k.Knt_KodPocztowy, n.TrN_OdbUlica \
         FROM CDN.TraNag n JOIN CDN.Kontrahenci k ON k.Knt_KntId = n.TrN_PodID WHERE n.TrN_TrNID = @P1",
    );
    query.bind(i32::try_from(document_id)?);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    let row = rows.first().ok_or_else(|| anyhow::anyhow!("no customer"))?;
    assert_eq!(row.get::<&str, _>("TrN_OdbUlica"), Some("ul. Ogrodowa 5"));
    assert_eq!(
        (
            row.get::<&str, _>("Knt_Nazwa1"),
            row.get::<&str, _>("Knt_Nazwa2"),
            row.get::<&str, _>("Knt_Ulica"),
            row.get::<&str, _>("Knt_Miasto"),
            row.get::<&str, _>("Knt_KodPocztowy"),
        ),
        (
            Some("Źródło Sp. z o.o."),
            Some("Żaneta Ćwik"),
            Some("ul. Ogrodowa 5"),
            Some("Gdańsk"),
            Some("80-001")
        ),
        "the customer's card has the only address the order has"
    );
    Ok(())
}

/// A shop cancellation takes a buffered, unrealised RO out of Optima whole
/// (header, lines, VAT table), as the office deleting it from the buffer
/// would; a second delivery of the command finds nothing and says so.
/// Documents that left the buffer or were realised stay, with a reason a
/// person can act on, and nothing of them changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_order_leaves_the_buffer_and_a_realised_one_is_held() -> anyhow::Result<()> {
    let erp = erp_for_tests(SeedOptions {
        products: 100,
        seed: 21,
    })
    .await?;
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let before = written_rows(&erp).await?;
    let buffered = written_and_tracked(&erp, &mut sql, "7001").await?;
    let written = written_rows(&erp).await?;
    assert!(written.0 > before.0 && written.1 > before.1 && written.2 > before.2);

    let withdrawal = withdraw_order(&mut sql, &buffered.key, "cancelled").await?;
    assert_eq!(
        withdrawal,
        Withdrawal::Withdrawn(Some(buffered.document_number.clone()))
    );
    let after = written_rows(&erp).await?;
    assert_eq!(
        (after.0, after.1, after.2),
        (before.0, before.1, before.2),
        "(TraNag, TraElem, TraVat): the document, its lines and VAT rows are gone"
    );
    assert_eq!(
        withdraw_order(&mut sql, &buffered.key, "cancelled").await?,
        Withdrawal::Withdrawn(None),
        "a redelivered cancel finds nothing"
    );

    // Saved for good (out of the buffer): held, untouched.
    let confirmed = written_and_tracked(&erp, &mut sql, "7002").await?;
    office_sets(&erp, confirmed.document_id, "TrN_Bufor", 0).await?;
    let rows = written_rows(&erp).await?;
    let Withdrawal::Held {
        document_number,
        reason,
    } = withdraw_order(&mut sql, &confirmed.key, "cancelled").await?
    else {
        anyhow::bail!("a confirmed RO must be held");
    };
    assert_eq!(document_number, confirmed.document_number);
    assert!(
        reason.contains("left the buffer") && reason.contains(&confirmed.document_number),
        "{reason}"
    );
    assert_eq!(written_rows(&erp).await?, rows, "nothing deleted");

    // Realised into FS + WZ, the RO itself still in the buffer: held.
    let Some(db) = erp.db.clone() else {
        eprintln!("real SQL Server: the office simulator is the stand-in's; rest skipped");
        return Ok(());
    };
    let realised = written_and_tracked(&erp, &mut sql, "7003").await?;
    let ro_id = realised.document_id;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut sim = optima_standin::simulator::Simulator::open(&db)?;
        sim.perform(optima_standin::simulator::Action::Realise {
            ro_id,
            tracking: "PL0099".into(),
        })?;
        Ok(())
    })
    .await??;
    let rows = written_rows(&erp).await?;
    let Withdrawal::Held { reason, .. } =
        withdraw_order(&mut sql, &realised.key, "cancelled").await?
    else {
        anyhow::bail!("a realised RO must be held");
    };
    assert!(reason.contains("realised into"), "{reason}");
    assert!(reason.contains("FS/"), "names the invoice: {reason}");
    assert_eq!(written_rows(&erp).await?, rows, "nothing deleted");
    Ok(())
}

/// The reserved part of each (SKU, MAG) reading, by the agent's stock read.
async fn reserved_in_mag(
    sql: &mut agent::sql::SqlClient,
    skus: &[String],
) -> anyhow::Result<Vec<Decimal>> {
    let ids = agent::optima::product_ids_for_skus(sql, skus).await?;
    let stock = agent::optima::stock(sql, &ids, Utc::now()).await?;
    skus.iter()
        .map(|sku| {
            stock
                .iter()
                .find(|s| &s.sku == sku && s.warehouse == "MAG")
                .map(|s| s.reserved)
                .ok_or_else(|| anyhow::anyhow!("no MAG stock for {sku}"))
        })
        .collect()
}

/// A shop order waiting in the buffer holds its goods back from the shop:
/// what the agent reports as reserved grows by exactly the order's
/// quantities (3 and 2, the order's own lines), and is given back once the
/// office confirms the document (Optima's own reservation or issue counts
/// from then on) or cancels it. Without it the shop is told, at the
/// product's next change, that the goods it sold are for sale again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffered_shop_order_holds_its_quantities_back_until_confirmed_or_cancelled()
-> anyhow::Result<()> {
    let erp = erp_for_tests(SeedOptions {
        products: 200,
        seed: 31,
    })
    .await?;
    let skus = vec![
        sku_with_rate(&erp, 23).await?,
        sku_with_rate(&erp, 8).await?,
    ];
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let before = reserved_in_mag(&mut sql, &skus).await?;

    let order = shop_order("3101", &skus[0], &skus[1]);
    let WriteResult::Written { document_id, .. } =
        write_order(&mut sql, &order, &settings(), None).await?
    else {
        panic!("not written");
    };
    let waiting = reserved_in_mag(&mut sql, &skus).await?;
    assert_eq!(waiting, vec![before[0] + dec!(3), before[1] + dec!(2)]);

    office_sets(&erp, document_id, "TrN_Bufor", 0).await?;
    assert_eq!(reserved_in_mag(&mut sql, &skus).await?, before, "confirmed");

    office_sets(&erp, document_id, "TrN_Bufor", 1).await?;
    office_sets(&erp, document_id, "TrN_Anulowany", -2147483647).await?;
    assert_eq!(reserved_in_mag(&mut sql, &skus).await?, before, "cancelled");
    Ok(())
}

/// NBP's public API as a stand-in on 127.0.0.1, answering
/// `/api/exchangerates/rates/a/{code}/{from}/{to}/` as api.nbp.pl does: the
/// table A rates of every weekday in the range, 404 "Brak danych" for a
/// code it does not publish, 503 for GBP (NBP failing). The EUR average is
/// 4.2345 on `rate_day` and 5.0000 on every other day, so a wrong day
/// shows in the amounts. Returns the base URL and the paths asked.
async fn nbp_standin(
    rate_day: chrono::NaiveDate,
) -> anyhow::Result<(String, std::sync::Arc<std::sync::Mutex<Vec<String>>>)> {
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use chrono::Datelike;
    type Asked = std::sync::Arc<std::sync::Mutex<Vec<String>>>;
    async fn rates(
        State((asked, rate_day)): State<(Asked, chrono::NaiveDate)>,
        Path((code, from, to)): Path<(String, chrono::NaiveDate, chrono::NaiveDate)>,
    ) -> axum::response::Response {
        if let Ok(mut asked) = asked.lock() {
            asked.push(format!("{code}/{from}/{to}"));
        }
        match code.as_str() {
            "eur" => {}
            "gbp" => {
                return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
            }
            _ => {
                return (
                    StatusCode::NOT_FOUND,
                    "404 NotFound - Not Found - Brak danych",
                )
                    .into_response();
            }
        }
        let mut published = Vec::new();
        let mut day = from;
        while day <= to {
            if day.weekday().number_from_monday() <= 5 {
                let mid = if day == rate_day { "4.2345" } else { "5.0000" };
                published.push(format!(
                    r#"{{"no":"{}/A/NBP/{}","effectiveDate":"{day}","mid":{mid}}}"#,
                    day.ordinal(),
                    day.year()
                ));
            }
            day += chrono::Duration::days(1);
        }
        if published.is_empty() {
            return (
                StatusCode::NOT_FOUND,
                "404 NotFound - Not Found - Brak danych",
            )
                .into_response();
        }
        let body = format!(
            r#"{{"table":"A","currency":"euro","code":"EUR","rates":[{}]}}"#,
            published.join(",")
        );
        ([("content-type", "application/json; charset=utf-8")], body).into_response()
    }
    let asked: Asked = Default::default();
    let app = axum::Router::new()
        .route(
            "/api/exchangerates/rates/a/{code}/{from}/{to}/",
            axum::routing::get(rates),
        )
        .with_state((asked.clone(), rate_day));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, asked))
}

/// An agent configuration for `erp` with `orders` as the `[orders]` section.
fn agent_config(
    erp: &Erp,
    dir: &std::path::Path,
    orders: &str,
) -> anyhow::Result<agent::config::AgentConfig> {
    agent_config_for(&erp.ado, dir, orders)
}

/// [`agent_config`] for the SQL Server of ADO.NET connection string `ado`.
fn agent_config_for(
    ado: &str,
    dir: &std::path::Path,
    orders: &str,
) -> anyhow::Result<agent::config::AgentConfig> {
    let (mut connection, mut password) = (Vec::new(), None);
    for part in ado.split(';') {
        match part.split_once('=') {
            Some((key, value)) if key.trim().eq_ignore_ascii_case("password") => {
                password = Some(value.trim_matches(['{', '}']).to_owned());
            }
            _ => connection.push(part),
        }
    }
    let password = password.map_or(String::new(), |p| format!("password = {p:?}\n"));
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "agent_id = \"biuro-1\"\n\n[aws]\nevents_queue_url = \"http://127.0.0.1:1/1/q-erp-events.fifo\"\ncommands_queue_url = \"http://127.0.0.1:1/1/q-erp-commands.fifo\"\n\n[sql]\nconnection_string = {:?}\n{password}\n[store]\npath = \"agent-state.sqlite\"\n\n[orders]\nwarehouse = \"MAG\"\npayment_forms = {{ bacs = \"przelew\" }}\nshipping_services = {{ flat_rate = \"TRANSPORT\" }}\n{orders}\n",
            connection.join(";")
        ),
    )?;
    Ok(agent::config::AgentConfig::load(&path)?)
}

/// The last weekday before `day`: the day of the NBP table a document dated
/// `day` takes (the stand-in publishes on weekdays).
fn weekday_before(day: chrono::NaiveDate) -> chrono::NaiveDate {
    use chrono::Datelike;
    let mut before = day - chrono::Duration::days(1);
    while before.weekday().number_from_monday() > 5 {
        before -= chrono::Duration::days(1);
    }
    before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_euro_order_is_written_in_euro_at_the_nbp_rate_of_the_working_day_before()
-> anyhow::Result<()> {
    use agent::order_intake::{OrderWriter, SqlOrderWriter, WriteError};
    let (erp, sku23, sku8) = erp_with_skus(200, 21).await?;
    let mut sql = erp.connect().await?;
    let rows = Query::new("SELECT GETDATE() AS now")
        .query(&mut sql)
        .await?
        .into_first_result()
        .await?;
    let today = rows
        .first()
        .and_then(|r| r.get::<chrono::NaiveDateTime, _>("now"))
        .ok_or_else(|| anyhow::anyhow!("no GETDATE()"))?
        .date();
    let rate_day = weekday_before(today);
    let (nbp_url, asked) = nbp_standin(rate_day).await?;
    let dir = tempfile::tempdir()?;
    let config = agent_config(
        &erp,
        dir.path(),
        &format!("foreign_currency = \"nbp\"\nnbp_url = \"{nbp_url}\""),
    )?;
    let settings = config.orders.as_ref().map(|o| o.write_settings()).unwrap();
    let mut writer = SqlOrderWriter::new(config.clone(), settings);

    let mut order = shop_order("3001", &sku23, &sku8);
    order.currency = "EUR".into();
    let WriteResult::Written {
        document_id,
        already: false,
        ..
    } = writer
        .write(&order)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    else {
        panic!("the EUR order was not written");
    };
    let id = i32::try_from(document_id)?;
    let mut query = Query::new(
        "SELECT TrN_Waluta, TrN_KursNumer, TrN_KursL, TrN_KursM, TrN_DataKur, TrN_DataDok, TrN_RazemNetto, TrN_RazemVAT, TrN_RazemBrutto, TrN_RazemNettoWal, TrN_RazemVATWal, TrN_RazemBruttoWal FROM CDN.TraNag WHERE TrN_TrNID = @P1",
    );
    query.bind(id);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    let h = rows.first().ok_or_else(|| anyhow::anyhow!("no header"))?;
    let money = |name: &str| h.get::<Decimal, _>(name).unwrap_or(dec!(-1));
    assert_eq!(h.get::<&str, _>("TrN_Waluta"), Some("EUR"));
    assert_eq!(h.get::<i32, _>("TrN_KursNumer"), Some(3));
    assert_eq!(
        (money("TrN_KursL"), money("TrN_KursM")),
        (dec!(4.2345), dec!(1))
    );
    assert_eq!(
        h.get::<chrono::NaiveDateTime, _>("TrN_DataKur")
            .map(|d| d.date()),
        Some(rate_day),
        "the rate's day is the last working day before the document's"
    );
    assert_eq!(
        h.get::<chrono::NaiveDateTime, _>("TrN_DataDok")
            .map(|d| d.date()),
        Some(today)
    );
    // In euro, the shop's amounts; in złoty, each line's net and VAT at
    // 4.2345 rounded to the grosz, by hand:
    //   goods 23 %  81.29 → 344.22, 18.70 → 79.19
    //   goods 8 %   22.87 →  96.84,  1.83 →  7.75
    //   shipping    12.19 →  51.62,  2.80 → 11.86
    assert_eq!(
        (
            money("TrN_RazemNettoWal"),
            money("TrN_RazemVATWal"),
            money("TrN_RazemBruttoWal")
        ),
        (dec!(116.35), dec!(23.33), dec!(139.68))
    );
    assert_eq!(
        (
            money("TrN_RazemNetto"),
            money("TrN_RazemVAT"),
            money("TrN_RazemBrutto")
        ),
        (dec!(492.68), dec!(98.80), dec!(591.48))
    );
    let mut query = Query::new(
        "SELECT TrE_Waluta, TrE_KursL, TrE_WartoscNetto, TrE_WartoscBrutto, TrE_WartoscNettoWal, TrE_WartoscBruttoWal FROM CDN.TraElem WHERE TrE_TrNId = @P1 ORDER BY TrE_Lp",
    );
    query.bind(id);
    let lines: Vec<(String, Decimal, Decimal, Decimal, Decimal, Decimal)> = query
        .query(&mut sql)
        .await?
        .into_first_result()
        .await?
        .iter()
        .map(|r| {
            let d = |n: &str| r.get::<Decimal, _>(n).unwrap_or(dec!(-1));
            (
                r.get::<&str, _>("TrE_Waluta")
                    .unwrap_or_default()
                    .to_owned(),
                d("TrE_KursL"),
                d("TrE_WartoscNetto"),
                d("TrE_WartoscBrutto"),
                d("TrE_WartoscNettoWal"),
                d("TrE_WartoscBruttoWal"),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (
                "EUR".into(),
                dec!(4.2345),
                dec!(344.22),
                dec!(423.41),
                dec!(81.29),
                dec!(99.99)
            ),
            (
                "EUR".into(),
                dec!(4.2345),
                dec!(96.84),
                dec!(104.59),
                dec!(22.87),
                dec!(24.70)
            ),
            (
                "EUR".into(),
                dec!(4.2345),
                dec!(51.62),
                dec!(63.48),
                dec!(12.19),
                dec!(14.99)
            ),
        ]
    );
    let mut query = Query::new(
        "SELECT TrV_Stawka, TrV_Netto, TrV_VAT, TrV_NettoWal, TrV_VATWal FROM CDN.TraVat WHERE TrV_TrNID = @P1 ORDER BY TrV_Stawka",
    );
    query.bind(id);
    let vat: Vec<[Decimal; 5]> = query
        .query(&mut sql)
        .await?
        .into_first_result()
        .await?
        .iter()
        .map(|r| {
            [
                "TrV_Stawka",
                "TrV_Netto",
                "TrV_VAT",
                "TrV_NettoWal",
                "TrV_VATWal",
            ]
            .map(|n| r.get::<Decimal, _>(n).unwrap_or(dec!(-1)))
        })
        .collect();
    assert_eq!(
        vat,
        vec![
            [dec!(8), dec!(96.84), dec!(7.75), dec!(22.87), dec!(1.83)],
            [
                dec!(23),
                dec!(395.84),
                dec!(91.05),
                dec!(93.48),
                dec!(21.50)
            ],
        ]
    );
    let asked_once = asked.lock().map(|a| a.clone()).unwrap_or_default();
    assert_eq!(
        asked_once,
        vec![format!(
            "eur/{}/{}",
            today - chrono::Duration::days(10),
            today - chrono::Duration::days(1)
        )]
    );

    // A redelivery finds the document without asking NBP again.
    assert!(matches!(
        writer.write(&order).await,
        Ok(WriteResult::Written { already: true, .. })
    ));
    assert_eq!(asked.lock().map(|a| a.len()).unwrap_or(0), 1);

    // A currency NBP does not publish: parked with NBP's reason, nothing written.
    let before = written_rows(&erp).await?;
    let mut unknown = shop_order("3002", &sku23, &sku8);
    unknown.currency = "XYZ".into();
    match writer.write(&unknown).await {
        Ok(WriteResult::Parked(reason)) => {
            assert!(
                reason.contains("XYZ") && reason.contains("Brak danych"),
                "{reason}"
            )
        }
        other => panic!("expected parked, got {other:?}"),
    }
    // NBP failing: the order waits (the command comes again), nothing written.
    let mut pound = shop_order("3003", &sku23, &sku8);
    pound.currency = "GBP".into();
    match writer.write(&pound).await {
        Err(WriteError::Unavailable(reason)) => assert!(reason.contains("503"), "{reason}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert_eq!(written_rows(&erp).await?, before);

    // Left at the default, `park`, a foreign order is parked naming the setting.
    let parked = agent_config(&erp, dir.path(), "")?;
    let mut writer = SqlOrderWriter::new(
        parked.clone(),
        parked.orders.as_ref().map(|o| o.write_settings()).unwrap(),
    );
    let mut euro = shop_order("3004", &sku23, &sku8);
    euro.currency = "EUR".into();
    match writer.write(&euro).await {
        Ok(WriteResult::Parked(reason)) => {
            assert!(reason.contains("foreign_currency"), "{reason}")
        }
        other => panic!("expected parked, got {other:?}"),
    }
    assert_eq!(written_rows(&erp).await?, before);
    Ok(())
}

/// What the writer makes of a failure decides the order's fate: passing
/// (Unavailable: the command stays queued and comes again) or for good
/// (Rejected). A dead SQL Server is not reachable; a deadlock that outlasts
/// the write's own retries passes, and the order is written once it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_and_a_lasting_deadlock_leave_the_order_for_later() -> anyhow::Result<()> {
    use agent::order_intake::{OrderWriter, SqlOrderWriter, WriteError};
    let (erp, sku23, sku8) = erp_with_skus(200, 23).await?;
    if erp.db.is_none() {
        eprintln!("real SQL Server: deadlocks are the stand-in's fault switch; skipped");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;

    // Nothing listens on port 1.
    let server = erp
        .ado
        .split(';')
        .find(|p| p.starts_with("server="))
        .ok_or_else(|| anyhow::anyhow!("no server in {}", erp.ado))?;
    let dead = erp.ado.replace(server, "server=tcp:127.0.0.1,1");
    let config = agent_config_for(&dead, dir.path(), "")?;
    let settings = config.orders.as_ref().map(|o| o.write_settings()).unwrap();
    // As the command loop asks it, through the agent's order intake.
    let orders = agent::order_intake::Orders::new(
        SqlOrderWriter::new(config, settings),
        std::sync::Arc::new(agent::store::Store::open(&dir.path().join("state.sqlite"))?),
        "biuro-1".into(),
        std::sync::Arc::new(tokio::sync::Notify::new()),
    );
    match orders.reachable().await {
        Err(WriteError::Unavailable(_)) => {}
        other => panic!("a dead server: {other:?}"),
    }

    let config = agent_config(&erp, dir.path(), "")?;
    let settings = config.orders.as_ref().map(|o| o.write_settings()).unwrap();
    let mut writer = SqlOrderWriter::new(config, settings);
    writer
        .reachable()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut control = erp.connect().await?;
    control
        .simple_query("-- standin:faults {\"deadlock_next\": 1000}")
        .await?
        .into_results()
        .await?;
    let order = shop_order("4001", &sku23, &sku8);
    let deadlocked = writer.write(&order).await;
    control
        .simple_query("-- standin:faults {\"deadlock_next\": 0}")
        .await?
        .into_results()
        .await?;
    match deadlocked {
        Err(WriteError::Unavailable(reason)) => assert!(reason.contains("1205"), "{reason}"),
        other => panic!("a deadlock victim every time: {other:?}"),
    }
    let document_id = match writer.write(&order).await {
        Ok(WriteResult::Written {
            document_id,
            already: false,
            ..
        }) => document_id,
        other => panic!("after the deadlocks: {other:?}"),
    };
    // The writer reads the document's chain back (the RO itself so far).
    let chains = writer
        .chains(&[document_id])
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(
        chains.get(&document_id).is_some_and(|c| !c.is_empty()),
        "{chains:?}"
    );
    Ok(())
}
