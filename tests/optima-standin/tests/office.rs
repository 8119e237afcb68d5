//! The seed and the office simulator, seen through tiberius as the agent
//! sees them.

use std::collections::HashMap;

use optima_standin::erp::{self, Erp};
use optima_standin::seed::{self, BAD_SKUS, SeedOptions};
use optima_standin::simulator::{Action, Simulator};
use rand::SeedableRng;
use rust_decimal::Decimal;

async fn erp() -> Erp {
    erp::erp_for_tests(SeedOptions {
        products: 300,
        seed: 11,
    })
    .await
    .expect("stand-in")
}

/// The agent's stock query: the latest TwrIlosci row per item and warehouse
/// (not in the future) for a list of ids.
const STOCK_SQL: &str = "SELECT i.TwI_TwrId, i.TwI_MagId, i.TwI_Ilosc, i.TwI_Rezerwacje, i.TwI_RezerwacjeZlecenia, \
    i.TwI_Ilosc - i.TwI_Rezerwacje - i.TwI_RezerwacjeZlecenia AS dostepne \
    FROM CDN.TwrIlosci i WITH (NOLOCK) \
    WHERE i.TwI_MagId IS NOT NULL AND i.TwI_TwrId IN (@P1) \
    AND i.TwI_Data = (SELECT MAX(i2.TwI_Data) FROM CDN.TwrIlosci i2 WHERE i2.TwI_TwrId = i.TwI_TwrId AND i2.TwI_MagId = i.TwI_MagId AND i2.TwI_Data <= GETDATE())";

/// Per warehouse: (quantity, reserved for customers); available is checked
/// to be quantity − reservations − service-order reservations.
async fn stock(c: &mut erp::Client, twr: i32) -> HashMap<i32, (Decimal, Decimal)> {
    let rows = c
        .query(STOCK_SQL, &[&twr])
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let avail: Decimal = r.get("dostepne").unwrap();
            let q: Decimal = r.get(2).unwrap();
            let res: Decimal = r.get(3).unwrap();
            let orders: Decimal = r.get(4).unwrap();
            assert_eq!(avail, q - res - orders);
            (r.get::<i32, _>(1).unwrap(), (q, res))
        })
        .collect()
}

async fn twr_of(c: &mut erp::Client, sku: &str) -> i32 {
    c.query(
        "SELECT Twr_TwrId FROM CDN.Towary WHERE Twr_Kod = CAST(@P1 AS varchar(50))",
        &[&sku],
    )
    .await
    .unwrap()
    .into_row()
    .await
    .unwrap()
    .unwrap()
    .get(0)
    .unwrap()
}

/// A product with plenty of stock in MAG.
async fn stocked_sku(c: &mut erp::Client) -> (String, i32) {
    let r = c
        .simple_query("SELECT TOP 1 Twr_Kod, Twr_TwrId FROM CDN.Towary t JOIN CDN.TwrIlosci i ON i.TwI_TwrId = t.Twr_TwrId \
             WHERE i.TwI_MagId = 1 AND i.TwI_Ilosc - i.TwI_Rezerwacje > 20 AND t.Twr_Kod NOT LIKE 'BAD-%' AND t.Twr_NieAktywny = 0 \
             AND i.TwI_Data = (SELECT MAX(TwI_Data) FROM CDN.TwrIlosci x WHERE x.TwI_TwrId = t.Twr_TwrId AND x.TwI_MagId = 1 AND x.TwI_Data <= GETDATE()) \
             AND NOT EXISTS (SELECT 1 FROM CDN.TwrIlosci f WHERE f.TwI_TwrId = t.Twr_TwrId AND f.TwI_Data > GETDATE()) \
             ORDER BY Twr_TwrId")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    (r.get::<&str, _>(0).unwrap().to_string(), r.get(1).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sale_delivery_price_and_deactivation_are_visible_to_the_agent() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let Some(db) = erp.db.as_ref() else {
        return; // a real SQL Server: the simulator drives the stand-in's file
    };
    let mut sim = Simulator::open(db).unwrap();
    let (sku, twr) = stocked_sku(&mut c).await;
    let before = stock(&mut c, twr).await[&1];
    let cursor: chrono::NaiveDateTime = c
        .simple_query("SELECT MAX(TrN_TS_Mod) FROM CDN.TraNag")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
        .get(0)
        .unwrap();

    let log = sim
        .perform(Action::Sale {
            sku: sku.clone(),
            warehouse: "MAG".into(),
            qty: Decimal::from(3),
            receipt: false,
        })
        .unwrap();
    let symbols: Vec<&str> = log.documents.iter().map(|d| d.symbol.as_str()).collect();
    assert_eq!(symbols, ["FS", "WZ"]);
    assert!(
        log.documents[0].number.starts_with("FS/"),
        "{}",
        log.documents[0].number
    );
    assert_eq!(stock(&mut c, twr).await[&1].0, before.0 - Decimal::from(3));
    // The TrN_TS_Mod cursor finds the new documents.
    let changed = c
        .query("SELECT TrN_TrNID, TrN_NumerPelny FROM CDN.TraNag WHERE TrN_TS_Mod > @P1 ORDER BY TrN_TrNID", &[&cursor])
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let ids: Vec<i32> = changed.iter().map(|r| r.get(0).unwrap()).collect();
    assert!(
        ids.contains(&(log.documents[0].id as i32)) && ids.contains(&(log.documents[1].id as i32))
    );

    sim.perform(Action::Delivery {
        sku: sku.clone(),
        warehouse: "MAG".into(),
        qty: Decimal::from(50),
    })
    .unwrap();
    assert_eq!(stock(&mut c, twr).await[&1].0, before.0 + Decimal::from(47));

    sim.perform(Action::PriceChange {
        sku: sku.clone(),
        price_list: 2,
        price: Decimal::new(12_345, 2),
    })
    .unwrap();
    let p: Decimal = c
        .query(
            "SELECT TwC_Wartosc FROM CDN.TwrCeny WHERE TwC_TwrID = @P1 AND TwC_TwCNumer = 2",
            &[&twr],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(p.to_string(), "123.4500");

    let ts_before: chrono::NaiveDateTime = c
        .query(
            "SELECT Twr_TS_Mod FROM CDN.Towary WHERE Twr_TwrId = @P1",
            &[&twr],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
        .get(0)
        .unwrap();
    sim.perform(Action::Deactivate { sku: sku.clone() })
        .unwrap();
    let r = c
        .query(
            "SELECT Twr_NieAktywny, Twr_TS_Mod FROM CDN.Towary WHERE Twr_TwrId = @P1",
            &[&twr],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.get::<u8, _>(0), Some(1));
    assert!(
        r.get::<chrono::NaiveDateTime, _>(1).unwrap() > ts_before,
        "Twr_TS_Mod maintained"
    );

    let log = sim
        .perform(Action::NewProduct {
            sku: "NOWY-TEST-1".into(),
            name: "Łopata śnieżna".into(),
        })
        .unwrap();
    assert_eq!(twr_of(&mut c, "NOWY-TEST-1").await as i64, log.twr_ids[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservation_realised_and_cancelled() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let Some(db) = erp.db.as_ref() else {
        return; // a real SQL Server: the simulator drives the stand-in's file
    };
    let mut sim = Simulator::open(db).unwrap();
    let (sku, twr) = stocked_sku(&mut c).await;
    let before = stock(&mut c, twr).await[&1];
    let ro = sim
        .perform(Action::Reservation {
            sku: sku.clone(),
            warehouse: "MAG".into(),
            qty: Decimal::from(2),
            shop_order: Some("WOO-42".into()),
        })
        .unwrap();
    let ro_id = ro.documents[0].id;
    assert!(ro.documents[0].number.starts_with("RO/"));
    assert_eq!(
        stock(&mut c, twr).await[&1],
        (before.0, before.1 + Decimal::from(2))
    );

    let done = sim
        .perform(Action::Realise {
            ro_id,
            tracking: "PL0000000042".into(),
        })
        .unwrap();
    let syms: Vec<&str> = done.documents.iter().map(|d| d.symbol.as_str()).collect();
    assert_eq!(syms, ["RO", "FS", "WZ"]);
    assert_eq!(
        stock(&mut c, twr).await[&1],
        (before.0 - Decimal::from(2), before.1)
    );
    // RO ↔ FS in TraNagRelacje (both directions), WZ → FS through TrN_FaId,
    // the tracking number on the WZ.
    let rows = c
        .query(
            "SELECT fs.TrN_NumerPelny, wz.TrN_NumerPelny, wz.TrN_NrListuPrzewozowego, ro.TrN_ZwroconoCalaIlosc, r.TrR_FaTyp, r.TrR_Flaga, \
             (SELECT COUNT(*) FROM CDN.TraNagRelacje b WHERE b.TrR_TrNId = fs.TrN_TrNID AND b.TrR_FaId = ro.TrN_TrNID AND b.TrR_FaTyp = 308) \
             FROM CDN.TraNag ro JOIN CDN.TraNagRelacje r ON r.TrR_TrNId = ro.TrN_TrNID \
             JOIN CDN.TraNag fs ON fs.TrN_TrNID = r.TrR_FaId JOIN CDN.TraNag wz ON wz.TrN_FaId = fs.TrN_TrNID \
             WHERE ro.TrN_TrNID = @P1",
            &[&(ro_id as i32)],
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let year = chrono::Local::now().format("%Y").to_string();
    assert_eq!(rows[0].get::<&str, _>(0).unwrap(), done.documents[1].number);
    assert!(rows[0].get::<&str, _>(0).unwrap().starts_with("FS/"));
    assert!(
        rows[0]
            .get::<&str, _>(1)
            .unwrap()
            .ends_with(&format!("/{year}"))
    );
    assert_eq!(rows[0].get::<&str, _>(2), Some("PL0000000042"));
    assert_eq!(rows[0].get::<u8, _>(3), Some(3));
    assert_eq!(rows[0].get::<i16, _>(4), Some(302));
    assert_eq!(rows[0].get::<i16, _>(5), Some(0));
    assert_eq!(rows[0].get::<i32, _>(6), Some(1), "FS → RO too");
    // Realising twice is refused, and nothing changes.
    assert!(
        sim.perform(Action::Realise {
            ro_id,
            tracking: "X".into()
        })
        .is_err()
    );

    let ro2 = sim
        .perform(Action::Reservation {
            sku: sku.clone(),
            warehouse: "MAG".into(),
            qty: Decimal::ONE,
            shop_order: None,
        })
        .unwrap();
    sim.perform(Action::Cancel {
        ro_id: ro2.documents[0].id,
    })
    .unwrap();
    assert_eq!(
        stock(&mut c, twr).await[&1],
        (before.0 - Decimal::from(2), before.1)
    );
    let cancelled = c
        .query(
            "SELECT TrN_Anulowany FROM CDN.TraNag WHERE TrN_TrNID = @P1",
            &[&(ro2.documents[0].id as i32)],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cancelled.get::<i32, _>(0), Some(-2147483647));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realised_via_sendit_and_reserved_for_a_service_order() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let Some(db) = erp.db.as_ref() else {
        return; // a real SQL Server: the simulator drives the stand-in's file
    };
    let mut sim = Simulator::open(db).unwrap();
    let (sku, twr) = stocked_sku(&mut c).await;
    let ro = sim
        .perform(Action::Reservation {
            sku: sku.clone(),
            warehouse: "MAG".into(),
            qty: Decimal::ONE,
            shop_order: None,
        })
        .unwrap();
    let done = sim
        .perform(Action::RealiseViaSendit {
            ro_id: ro.documents[0].id,
            tracking: "630000000000000000000042".into(),
            carrier: "InPost".into(),
        })
        .unwrap();
    let (fs, wz) = (done.documents[1].id as i32, done.documents[2].id as i32);
    let r = c
        .query(
            "SELECT z.SZL_NrListuPrzewozowego, z.SZL_KurierNazwa, p.SPA_NumerListu, wz.TrN_NrListuPrzewozowego, wz.TrN_FaId \
             FROM CDN.SenditZleceniePrzesylki z JOIN CDN.SenditPaczki p ON p.SPA_SZLID = z.SZL_SZLID \
             JOIN CDN.TraNag wz ON wz.TrN_TrNID = @P2 WHERE z.SZL_FaId = @P1",
            &[&fs, &wz],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.get::<&str, _>(0), Some("630000000000000000000042"));
    assert_eq!(r.get::<&str, _>(1), Some("InPost"));
    assert_eq!(r.get::<&str, _>(2), Some("630000000000000000000042"));
    assert_eq!(r.get::<&str, _>(3), Some(""));
    assert_eq!(r.get::<i32, _>(4), Some(fs));

    // A service-order reservation changes only TwI_RezerwacjeZlecenia.
    let before = stock(&mut c, twr).await[&1];
    let ts: chrono::NaiveDateTime = c
        .query(
            "SELECT Twr_TS_Mod FROM CDN.Towary WHERE Twr_TwrId = @P1",
            &[&twr],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
        .get(0)
        .unwrap();
    sim.perform(Action::ReserveForServiceOrder {
        sku,
        warehouse: "MAG".into(),
        qty: Decimal::from(2),
    })
    .unwrap();
    assert_eq!(stock(&mut c, twr).await[&1], before);
    let r = c
        .query(
            "SELECT TOP 1 TwI_RezerwacjeZlecenia, (SELECT Twr_TS_Mod FROM CDN.Towary WHERE Twr_TwrId = @P1) FROM CDN.TwrIlosci \
             WHERE TwI_TwrId = @P1 AND TwI_MagId = 1 AND TwI_Data <= GETDATE() ORDER BY TwI_Data DESC",
            &[&twr],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert!(r.get::<Decimal, _>(0).unwrap() >= Decimal::from(2));
    assert_eq!(r.get::<chrono::NaiveDateTime, _>(1), Some(ts));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_office_keeps_stock_consistent() {
    let erp = erp().await;
    let Some(db) = erp.db.as_ref() else {
        return; // a real SQL Server: the simulator drives the stand-in's file
    };
    let mut sim = Simulator::open(db).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..120 {
        let log = sim.step(&mut rng).unwrap();
        let json = log.to_json();
        let kind = serde_json::from_str::<serde_json::Value>(&json).unwrap()["action"]["kind"]
            .as_str()
            .unwrap()
            .to_string();
        kinds.insert(kind);
    }
    assert!(kinds.len() >= 6, "{kinds:?}");
    // Per item: the all-warehouses row equals the sum of the warehouse rows.
    let mut c = erp.connect().await.unwrap();
    let bad = c
        .simple_query(
            "WITH cur AS (SELECT i.TwI_TwrId, i.TwI_MagId, i.TwI_Ilosc, i.TwI_Rezerwacje FROM CDN.TwrIlosci i \
               WHERE i.TwI_Data = (SELECT MAX(x.TwI_Data) FROM CDN.TwrIlosci x WHERE x.TwI_TwrId = i.TwI_TwrId \
               AND ((x.TwI_MagId IS NULL AND i.TwI_MagId IS NULL) OR x.TwI_MagId = i.TwI_MagId) AND x.TwI_Data <= GETDATE())) \
             SELECT a.TwI_TwrId FROM cur a \
             WHERE a.TwI_MagId IS NULL AND (a.TwI_Ilosc <> (SELECT SUM(b.TwI_Ilosc) FROM cur b WHERE b.TwI_TwrId = a.TwI_TwrId AND b.TwI_MagId IS NOT NULL) \
                OR a.TwI_Rezerwacje <> (SELECT SUM(b.TwI_Rezerwacje) FROM cur b WHERE b.TwI_TwrId = a.TwI_TwrId AND b.TwI_MagId IS NOT NULL))",
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert!(bad.is_empty(), "{} items inconsistent", bad.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_is_realistic_and_has_the_bad_rows() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let rows = c
        .simple_query("SELECT Twr_Kod, Twr_EAN, LEN(Twr_Nazwa) AS len, (SELECT TwC_Wartosc FROM CDN.TwrCeny WHERE TwC_TwrID = Twr_TwrId AND TwC_TwCNumer = 2) AS retail FROM CDN.Towary WHERE Twr_Typ = 1")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows.len(), 300);
    let mut eans: HashMap<String, usize> = HashMap::new();
    for r in &rows {
        // Optima keeps '' for no barcode (Twr_EAN is NOT NULL).
        if let Some(e) = r.get::<&str, _>(1).filter(|e| !e.is_empty()) {
            *eans.entry(e.to_string()).or_default() += 1;
            let sku = r.get::<&str, _>(0).unwrap();
            assert_eq!(e.len(), 13, "{sku}");
            assert_eq!(
                seed::ean13_check(&e[..12]),
                e[12..].parse::<u32>().unwrap(),
                "{sku}"
            );
        }
    }
    let find = |sku: &str| {
        rows.iter()
            .find(|r| r.get::<&str, _>(0) == Some(sku))
            .unwrap()
    };
    assert_eq!(find("BAD-NO-EAN").get::<&str, _>(1), Some(""));
    assert_eq!(eans[find("BAD-DUP-EAN").get::<&str, _>(1).unwrap()], 2);
    assert_eq!(find("BAD-LONG-NAME").get::<i32, _>("len"), Some(255));
    assert_eq!(
        find("BAD-ZERO-PRICE").get::<Decimal, _>("retail"),
        Some(Decimal::ZERO)
    );
    let neg = twr_of(&mut c, "BAD-NEG-STOCK").await;
    assert!(stock(&mut c, neg).await[&1].0 < Decimal::ZERO);
    for b in BAD_SKUS {
        find(b);
    }
    // Polish names, units, VAT rates, warehouses, price lists, customers.
    let r = c
        .simple_query("SELECT (SELECT COUNT(*) FROM CDN.Towary WHERE Twr_Nazwa LIKE N'%ł%' OR Twr_Nazwa LIKE N'%ż%' OR Twr_Nazwa LIKE N'%ś%'), \
             (SELECT COUNT(DISTINCT Twr_JM) FROM CDN.Towary WHERE Twr_Typ = 1), (SELECT COUNT(DISTINCT Twr_Stawka) FROM CDN.Towary), \
             (SELECT COUNT(*) FROM CDN.Magazyny), (SELECT COUNT(*) FROM CDN.DefCeny), (SELECT COUNT(*) FROM CDN.Kontrahenci WHERE Knt_Kod NOT IN ('DETAL', 'DOSTAWCA')), \
             (SELECT COUNT(*) FROM CDN.TwrGrupy WHERE TwG_GIDTyp = -16 AND TwG_GrONumer IN (SELECT TwG_GIDNumer FROM CDN.TwrGrupy WHERE TwG_GIDTyp = -16 AND TwG_GrONumer IN (SELECT TwG_GIDNumer FROM CDN.TwrGrupy WHERE TwG_GIDTyp = -16 AND TwG_GrONumer = 0 AND TwG_TwGID <> 0))), \
             (SELECT COUNT(*) FROM CDN.TwrIlosci WHERE TwI_RezerwacjeZlecenia > 0)")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert!(r.get::<i32, _>(0).unwrap() > 50);
    assert_eq!(r.get::<i32, _>(1), Some(4));
    assert!(r.get::<i32, _>(2).unwrap() >= 4);
    assert_eq!(r.get::<i32, _>(3), Some(3));
    assert_eq!(r.get::<i32, _>(4), Some(3));
    assert_eq!(r.get::<i32, _>(5), Some(500));
    assert!(r.get::<i32, _>(6).unwrap() > 10, "third-level groups");
    assert!(
        r.get::<i32, _>(7).unwrap() > 0,
        "service-order reservations"
    );
    let nips = c
        .simple_query("SELECT Knt_Nip FROM CDN.Kontrahenci WHERE Knt_Nip <> ''")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert!(nips.len() > 300);
    assert!(
        nips.iter()
            .all(|r| seed::nip_valid(r.get::<&str, _>(0).unwrap()))
    );
    // A future-dated (planned) stock row is not current stock.
    let future = c
        .simple_query("SELECT TOP 1 TwI_TwrId, TwI_Ilosc FROM CDN.TwrIlosci WHERE TwI_Data > GETDATE() AND TwI_MagId = 1")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap();
    if let Some(f) = future {
        let twr: i32 = f.get(0).unwrap();
        let planned: Decimal = f.get(1).unwrap();
        assert_ne!(stock(&mut c, twr).await[&1].0, planned);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_conventions_the_agent_relies_on() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    // Price lists: ids and Lp disagree (a level was deleted).
    let lists = c
        .simple_query("SELECT DfC_DfCId, DfC_Lp, DfC_Typ, DfC_Nazwa, DfC_Waluta FROM CDN.DefCeny ORDER BY DfC_Lp")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let lists: Vec<(i32, i32, u8, String)> = lists
        .iter()
        .map(|r| {
            assert_eq!(r.get::<&str, _>(4), Some("PLN"));
            (
                r.get(0).unwrap(),
                r.get(1).unwrap(),
                r.get(2).unwrap(),
                r.get::<&str, _>(3).unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        lists,
        [
            (1, 1, 1, "Zakupu".to_string()),
            (2, 2, 2, "Detaliczna".to_string()),
            (4, 3, 1, "Hurtowa".to_string())
        ]
    );
    // TwC_Typ is tinyint: read as u8, and i16 is refused (tiberius' panic).
    let p = c
        .simple_query("SELECT TOP 1 TwC_Typ, TwC_Waluta FROM CDN.TwrCeny WHERE TwC_TwCNumer = 2")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.get::<u8, _>(0), Some(2));
    assert!(p.try_get::<i16, _>(0).is_err());
    assert_eq!(p.get::<&str, _>(1), Some("PLN"));
    // Definitions: one active per symbol, an inactive FS beside the active.
    let defs = c
        .simple_query("SELECT DDf_Symbol, DDf_Klasa, DDf_Numeracja FROM CDN.DokDefinicje WHERE DDf_Nieaktywna = 0 ORDER BY DDf_DDfID")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let defs: Vec<(String, i32)> = defs
        .iter()
        .map(|r| {
            assert_eq!(r.get::<&str, _>(2), Some("@symbol/@numerS/@rok_kal"));
            (r.get::<&str, _>(0).unwrap().to_string(), r.get(1).unwrap())
        })
        .collect();
    for (sym, class) in [
        ("FS", 302),
        ("PA", 305),
        ("WZ", 306),
        ("PZ", 307),
        ("RO", 308),
    ] {
        assert_eq!(
            defs.iter().filter(|d| d.0 == sym).collect::<Vec<_>>(),
            [&(sym.to_string(), class)]
        );
    }
    let fs: i32 = c
        .simple_query("SELECT COUNT(*) FROM CDN.DokDefinicje WHERE DDf_Symbol = 'FS'")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(fs, 2);
    // Documents: numbered from their NumerString, customer pairs set, date
    // only, PLN, not from the e-shop.
    let docs = c
        .simple_query("SELECT TrN_NumerString, TrN_NumerNr, TrN_NumerPelny, TrN_PodmiotTyp, TrN_PodID, TrN_OdbiorcaTyp, TrN_OdbID, \
             TrN_PlatnikTyp, TrN_PlatnikID, TrN_DataDok, TrN_Waluta, TrN_KursL, TrN_eSklepZrodlo, TrN_PodNazwa1, Knt_Nazwa1, TrN_Anulowany \
             FROM CDN.TraNag JOIN CDN.Kontrahenci ON Knt_KntId = TrN_PodID")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(docs.len(), 40);
    for d in &docs {
        let string = d.get::<&str, _>(0).unwrap();
        let nr: i32 = d.get(1).unwrap();
        assert!(string.contains("@numerS"), "{string}");
        assert_eq!(
            d.get::<&str, _>(2).unwrap(),
            string.replace("@numerS", &nr.to_string())
        );
        assert_eq!(d.get::<i16, _>(3), Some(1));
        assert_eq!(d.get::<i32, _>(4), d.get::<i32, _>(6));
        assert_eq!(d.get::<i16, _>(5), Some(1));
        assert_eq!(d.get::<i16, _>(7), Some(1));
        assert_eq!(d.get::<i32, _>(8), d.get::<i32, _>(4));
        let day: chrono::NaiveDateTime = d.get(9).unwrap();
        assert_eq!(day.time(), chrono::NaiveTime::MIN);
        assert_eq!(d.get::<&str, _>(10), Some("PLN"));
        assert_eq!(d.get::<Decimal, _>(11), Some(Decimal::ONE));
        assert_eq!(d.get::<i32, _>(12), None);
        assert_eq!(d.get::<&str, _>(13), d.get::<&str, _>(14));
        assert_eq!(d.get::<i32, _>(15), Some(0));
    }
}

#[test]
fn seeding_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let dump = |name: &str| {
        let p = dir.path().join(name);
        seed::seed_database(
            &p,
            &SeedOptions {
                products: 150,
                seed: 99,
            },
        )
        .unwrap();
        let sim = Simulator::open(&p).unwrap();
        let mut st = sim
            .connection()
            .prepare("SELECT Twr_Kod || Twr_Nazwa || Twr_EAN || Twr_Stawka || (SELECT group_concat(TwC_Wartosc) FROM CDN.TwrCeny WHERE TwC_TwrID = Twr_TwrId) FROM CDN.Towary WHERE Twr_Typ = 1 ORDER BY Twr_TwrId")
            .unwrap();
        let v: Vec<String> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        v
    };
    let a = dump("a.sqlite");
    assert_eq!(a.len(), 150);
    assert_eq!(a, dump("b.sqlite"));
    assert_eq!(SeedOptions::default().products, 2000);
}
