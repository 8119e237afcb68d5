//! Shop orders written into Optima through the agent's SQL writer, against
//! the ERP stand-in (or `MSSQL_URL`): one document per order whatever the
//! retries, totals to the grosz, customers matched or created, nothing
//! written for an order that cannot be written whole, progress read back.

use std::collections::BTreeMap;

use agent::optima::orders::{
    DocumentKind, WriteResult, WriteSettings, document_chains, import_row_id, write_order,
};
use agent::orders::progress_of;
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
    }
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
        paid: true,
        currency: "PLN".into(),
        payment_method: "bacs".into(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_becomes_one_document_with_totals_to_the_grosz() -> anyhow::Result<()> {
    let erp = erp_for_tests(SeedOptions {
        products: 200,
        seed: 11,
    })
    .await?;
    let (sku23, sku8) = (
        sku_with_rate(&erp, 23).await?,
        sku_with_rate(&erp, 8).await?,
    );
    let order = shop_order("1001", &sku23, &sku8);
    let mut sql = connect_ado(&erp.ado, 10).await?;

    let first = write_order(&mut sql, &order, &settings()).await?;
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
    let again = write_order(&mut sql, &order, &settings()).await?;
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
        write_order(&mut a, &racing, &s),
        write_order(&mut b, &racing, &s)
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
        "SELECT TrN_Bufor, TrN_NumerObcy, TrN_RazemNetto, TrN_RazemVAT, TrN_RazemBrutto, TrN_Opis, TrN_OdbNazwa1, TrN_OdbMiasto, TrN_PodID, TrN_FPlId FROM CDN.TraNag WHERE TrN_TrNID = @P1",
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
    } = write_order(&mut sql, &same_buyer, &settings()).await?
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
    let erp = erp_for_tests(SeedOptions {
        products: 100,
        seed: 12,
    })
    .await?;
    let (sku23, sku8) = (
        sku_with_rate(&erp, 23).await?,
        sku_with_rate(&erp, 8).await?,
    );
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
            write_order(&mut sql, order, &collective).await?
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
    let erp = erp_for_tests(SeedOptions {
        products: 100,
        seed: 13,
    })
    .await?;
    let (sku23, sku8) = (
        sku_with_rate(&erp, 23).await?,
        sku_with_rate(&erp, 8).await?,
    );
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let before_docs = count(&erp, "SELECT COUNT(*) FROM CDN.TraNag WHERE @P1 = @P1", "x").await?;
    let before_customers = count(
        &erp,
        "SELECT COUNT(*) FROM CDN.Kontrahenci WHERE @P1 = @P1",
        "x",
    )
    .await?;

    let mut unknown = shop_order("3001", &sku23, &sku8);
    unknown.lines[1].sku = "NIE-MA-TAKIEGO".into();
    let mut unmapped_payment = shop_order("3002", &sku23, &sku8);
    unmapped_payment.payment_method = "bitcoin".into();
    let mut mismatch = shop_order("3003", &sku23, &sku8);
    mismatch.total_gross += dec!(0.01);
    let mut huge = shop_order("3004", &sku23, &sku8);
    huge.lines[0].quantity = Decimal::from(1_000_000_000_000i64);
    for (order, expect) in [
        (&unknown, "unknown SKU in Optima: NIE-MA-TAKIEGO"),
        (&unmapped_payment, "payment method `bitcoin`"),
        (&mismatch, "totals do not add up"),
        (&huge, "out of range"),
    ] {
        match write_order(&mut sql, order, &settings()).await? {
            WriteResult::Parked(reason) => assert!(reason.contains(expect), "{reason}"),
            other => panic!("{} should be parked, got {other:?}", order.order_id),
        }
    }
    assert_eq!(
        count(&erp, "SELECT COUNT(*) FROM CDN.TraNag WHERE @P1 = @P1", "x").await?,
        before_docs
    );
    assert_eq!(
        count(
            &erp,
            "SELECT COUNT(*) FROM CDN.Kontrahenci WHERE @P1 = @P1",
            "x"
        )
        .await?,
        before_customers,
        "no customer created for a parked order"
    );
    Ok(())
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
    let (sku23, sku8) = (
        sku_with_rate(&erp, 23).await?,
        sku_with_rate(&erp, 8).await?,
    );
    let mut sql = connect_ado(&erp.ado, 10).await?;
    let order = shop_order("4001", &sku23, &sku8);
    let WriteResult::Written {
        document_id,
        document_number,
        ..
    } = write_order(&mut sql, &order, &settings()).await?
    else {
        panic!("not written");
    };
    let tracked = TrackedOrder {
        key: order.key(),
        shop: order.shop.clone(),
        order_id: order.order_id.clone(),
        document_id,
        document_number,
        reported: None,
    };
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
