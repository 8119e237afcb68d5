//! tiberius against the stand-in: connection, parameters, types, errors,
//! transactions, TLS, concurrency.

mod common;

use std::str::FromStr;

use common::full_insert;

use chrono::NaiveDate;
use optima_standin::erp::{self, Erp};
use optima_standin::seed::SeedOptions;
use rust_decimal::Decimal;
use tiberius::error::Error as TdsError;

async fn erp() -> Erp {
    erp::erp_for_tests(SeedOptions {
        products: 300,
        seed: 11,
    })
    .await
    .expect("stand-in")
}

fn server_error(e: TdsError) -> (u32, String) {
    match e {
        TdsError::Server(t) => (t.code(), t.message().to_string()),
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_read_metadata() {
    let erp = erp().await;
    let mut c = erp.connect().await.expect("connect");
    let row = c
        .simple_query("SELECT @@VERSION AS v, DB_NAME() AS db, SERVERPROPERTY('Collation') AS coll")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.get::<&str, _>("v")
            .unwrap()
            .contains("Microsoft SQL Server")
    );
    assert_eq!(row.get::<&str, _>("db"), Some("CDN_Firma"));
    assert_eq!(row.get::<&str, _>("coll"), Some("Polish_CI_AS"));
    assert_eq!(
        row.columns()[2].column_type(),
        tiberius::ColumnType::SSVariant
    );
    let row = c
        .simple_query("SELECT compatibility_level FROM sys.databases WHERE name = DB_NAME()")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<u8, _>(0), Some(150));
    let n = c
        .simple_query("SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'CDN' AND TABLE_NAME IN ('Towary', 'TwrIlosci', 'TraNag')")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n.get::<i32, _>(0), Some(3));
    let oid = c
        .simple_query("SELECT OBJECT_ID('CDN.Towary'), OBJECT_ID('CDN.Nope')")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert!(oid.get::<i32, _>(0).is_some());
    assert_eq!(oid.get::<i32, _>(1), None);
    c.simple_query(
        "SET NOCOUNT ON; SET TRANSACTION ISOLATION LEVEL READ COMMITTED; SET LOCK_TIMEOUT 5000",
    )
    .await
    .unwrap()
    .into_results()
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameterised_query_with_column_metadata() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let rows = c
        .query(
            "SELECT TOP (3) t.Twr_TwrId, t.Twr_Kod, t.Twr_Nazwa, t.Twr_Stawka, c.TwC_Wartosc, t.Twr_TS_Mod \
             FROM CDN.Towary t WITH (NOLOCK) JOIN CDN.TwrCeny c ON c.TwC_TwrID = t.Twr_TwrId AND c.TwC_TwCNumer = @P1 \
             WHERE t.Twr_TwrId > @P2 AND t.Twr_Kod LIKE @P3 ORDER BY t.Twr_TwrId",
            &[&2i32, &0i64, &"%-0%"],
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    let cols = rows[0].columns();
    assert_eq!(cols[1].name(), "Twr_Kod");
    assert_eq!(cols[1].column_type(), tiberius::ColumnType::BigVarChar);
    assert_eq!(cols[2].column_type(), tiberius::ColumnType::NVarchar);
    assert_eq!(cols[3].column_type(), tiberius::ColumnType::Decimaln);
    assert_eq!(cols[5].column_type(), tiberius::ColumnType::Datetimen);
    for r in &rows {
        let price: Decimal = r.get(4).unwrap();
        assert_eq!(price.scale(), 4, "decimal(17,4) keeps its scale");
        let _: chrono::NaiveDateTime = r.get(5).unwrap();
    }
    // varchar comparison with CAST, as the agent writes it.
    let sku: String = rows[0].get::<&str, _>(1).unwrap().to_string();
    let one = c
        .query(
            "SELECT Twr_TwrId FROM CDN.Towary WHERE Twr_Kod = CAST(@P1 AS varchar(50))",
            &[&sku.as_str()],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.get::<i32, _>(0), rows[0].get::<i32, _>(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_round_trip_exactly() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let polish = "Zażółć gęślą jaźń — ĄĆĘŁŃÓŚŹŻ „cudzysłów” €";
    let ts = NaiveDate::from_ymd_opt(2026, 3, 4)
        .unwrap()
        .and_hms_milli_opt(5, 6, 7, 890)
        .unwrap();
    let d152 = Decimal::from_str("-1234567890123.45").unwrap();
    let d174 = Decimal::from_str("123456789.1234").unwrap();
    let d154 = Decimal::from_str("0.0001").unwrap();
    let d52 = Decimal::from_str("23.00").unwrap();
    let d74 = Decimal::from_str("0.0100").unwrap();
    let row = c
        .query(
            "SELECT @P1 AS s, CAST(@P2 AS decimal(15,2)) AS a, CAST(@P3 AS decimal(17,4)) AS b, CAST(@P4 AS decimal(15,4)) AS c, \
             CAST(@P5 AS decimal(5,2)) AS d, CAST(@P6 AS decimal(7,4)) AS e, @P7 AS t, CAST(@P7 AS datetime) AS t2, @P8 AS n, \
             @P9 AS big, CAST(@P10 AS smallint) AS sm, CAST(1 AS bit) AS bt, CAST(@P11 AS uniqueidentifier) AS g",
            &[
                &polish, &d152, &d174, &d154, &d52, &d74, &ts, &Option::<i32>::None, &9_000_000_000i64, &-7i32,
                &"6F9619FF-8B86-D011-B42D-00C04FC964FF",
            ],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<&str, _>("s"), Some(polish));
    assert_eq!(row.get::<Decimal, _>("a"), Some(d152));
    assert_eq!(row.get::<Decimal, _>("b"), Some(d174));
    assert_eq!(row.get::<Decimal, _>("c"), Some(d154));
    assert_eq!(
        row.get::<Decimal, _>("d").map(|d| d.to_string()),
        Some("23.00".into())
    );
    assert_eq!(
        row.get::<Decimal, _>("e").map(|d| d.to_string()),
        Some("0.0100".into())
    );
    assert_eq!(row.get::<chrono::NaiveDateTime, _>("t"), Some(ts));
    // datetime keeps 1/300 s: .890 is representable as .890 after rounding to 3.33 ms
    let t2: chrono::NaiveDateTime = row.get("t2").unwrap();
    assert!((t2 - ts).num_milliseconds().abs() <= 3);
    assert_eq!(row.get::<i32, _>("n"), None);
    assert_eq!(row.get::<i64, _>("big"), Some(9_000_000_000));
    assert_eq!(row.get::<i16, _>("sm"), Some(-7));
    assert_eq!(row.get::<bool, _>("bt"), Some(true));
    assert_eq!(
        row.get::<uuid::Uuid, _>("g")
            .map(|g| g.to_string().to_uppercase()),
        Some("6F9619FF-8B86-D011-B42D-00C04FC964FF".into())
    );
    // Polish text into an nvarchar column and back, and varchar (code page 1250).
    let mut c2 = erp.connect().await.unwrap();
    c2.execute(
        full_insert(
            "Magazyny",
            &[("Mag_Symbol", "@P1"), ("Mag_Nazwa", "@P2")],
            "",
        ),
        &[
            &"ŁÓDŹ",
            &polish.chars().take(50).collect::<String>().as_str(),
        ],
    )
    .await
    .unwrap();
    let r = c2
        .query(
            "SELECT Mag_Symbol, Mag_Nazwa FROM CDN.Magazyny WHERE Mag_Symbol = @P1",
            &[&"łódź"],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .expect("case-insensitive match, as Polish_CI_AS");
    assert_eq!(r.get::<&str, _>(0), Some("ŁÓDŹ"));
    assert_eq!(
        r.get::<&str, _>(1).map(|s| s.to_string()),
        Some(polish.chars().take(50).collect())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_server_error_numbers() {
    // The refusals of real Optima's schema are in tests/refusals.rs.
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    // TwrCeny's unique index (product, price number): 2601.
    let e = c
        .execute("INSERT INTO CDN.TwrCeny (TwC_TwrID, TwC_TwCNumer, TwC_Typ, TwC_Wartosc, TwC_Waluta) VALUES (1, 2, 2, 1, 'PLN')", &[])
        .await
        .unwrap_err();
    assert_eq!(
        server_error(e),
        (2601, "Cannot insert duplicate key row in object 'CDN.TwrCeny' with unique index 'TwCTowar'. The duplicate key value is (1, 2).".to_string())
    );
    let e = c
        .simple_query("SELECT * FORM CDN.Towary")
        .await
        .unwrap_err();
    assert_eq!(server_error(e).0, 102);
    let e = c
        .simple_query(
            "MERGE CDN.Towary AS t USING CDN.Towary AS s ON 1 = 1 WHEN MATCHED THEN DELETE;",
        )
        .await
        .unwrap_err();
    let (_, msg) = server_error(e);
    assert!(msg.contains("MERGE"), "{msg}");
    let e = c
        .simple_query("SELECT Twr_Nope FROM CDN.Towary")
        .await
        .unwrap_err();
    assert_eq!(
        server_error(e),
        (207, "Invalid column name 'Twr_Nope'.".to_string())
    );
    let e = c
        .execute(
            full_insert(
                "Towary",
                &[
                    ("Twr_TwrId", "1"),
                    ("Twr_Kod", "'ID-1'"),
                    ("Twr_Nazwa", "N'x'"),
                    ("Twr_JM", "N'szt.'"),
                ],
                "",
            ),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(server_error(e).0, 544);
    let e = match c
        .simple_query("SELECT CAST(12345.678 AS decimal(5,2))")
        .await
    {
        Ok(stream) => stream.into_results().await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(server_error(e).0, 8115);
    // The connection stays usable after errors.
    let r = c
        .simple_query("SELECT 1")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.get::<i32, _>(0), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_transaction_leaves_nothing() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let count =
        |n: &'static str| format!("SELECT COUNT(*) FROM CDN.TraNag WHERE TrN_NumerObcy = '{n}'");
    c.simple_query("BEGIN TRANSACTION")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    // TraNag has triggers: the id comes through a table variable.
    let ro = |nr: i32| {
        full_insert(
            "TraNag",
            &[
                ("TrN_DDfId", "6"),
                ("TrN_TypDokumentu", "308"),
                ("TrN_Rodzaj", "308000"),
                ("TrN_NumerString", "'RO/@numerS/2099'"),
                ("TrN_NumerNr", &nr.to_string()),
                ("TrN_NumerObcy", "@P1"),
                ("TrN_Bufor", "1"),
                ("TrN_MagZrdId", "1"),
                ("TrN_ImportRowId", "NEWID()"),
            ],
            "OUTPUT INSERTED.TrN_TrNID INTO @ids (id)",
        )
    };
    let id = c
        .query(
            format!(
                "DECLARE @ids TABLE (id int); {}; SELECT id FROM @ids",
                ro(900)
            ),
            &[&"shop-1001"],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
        .get::<i32, _>(0)
        .unwrap();
    assert!(id > 0);
    let inside = c
        .simple_query(count("shop-1001"))
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inside.get::<i32, _>(0), Some(1));
    c.simple_query("ROLLBACK TRANSACTION")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    let after = c
        .simple_query(count("shop-1001"))
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.get::<i32, _>(0), Some(0));
    let mut other = erp.connect().await.unwrap();
    let seen = other
        .simple_query(count("shop-1001"))
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.get::<i32, _>(0), Some(0));
    // A committed one stays, and SCOPE_IDENTITY works.
    c.simple_query("BEGIN TRAN")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    let r = c
        .query(
            format!(
                "{}; SELECT CAST(SCOPE_IDENTITY() AS int) AS id",
                ro(901).replace(" OUTPUT INSERTED.TrN_TrNID INTO @ids (id)", "")
            ),
            &[&"shop-1002"],
        )
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    assert!(
        r.last()
            .and_then(|rs| rs.first())
            .and_then(|row| row.get::<i32, _>("id"))
            .is_some()
    );
    c.simple_query("COMMIT")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    let seen = other
        .simple_query(count("shop-1002"))
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.get::<i32, _>(0), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_18456() {
    let erp = erp().await;
    let ado = erp.ado.replace("password=", "password=wrong");
    match erp::connect(&ado).await {
        Err(optima_standin::Error::Client(TdsError::Server(t))) => assert_eq!(t.code(), 18456),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("logged in with a wrong password"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_login_with_a_self_signed_certificate() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("optima_standin=debug")
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("o.sqlite");
    optima_standin::seed::seed_database(
        &db,
        &SeedOptions {
            products: 20,
            seed: 1,
        },
    )
    .unwrap();
    let server = erp::start_standin(&db, Some(optima_standin::server::TlsOptions::SelfSigned))
        .await
        .unwrap();
    // Pin the server's own certificate, as a deliberate configuration.
    let pem = dir.path().join("server.pem");
    std::fs::write(&pem, server.tls_cert_pem().unwrap()).unwrap();
    let ado = server.ado_connection_string().replace(
        "TrustServerCertificate=true",
        &format!("TrustServerCertificateCA={}", pem.display()),
    );
    assert!(ado.contains("encrypt=true"));
    let mut c = erp::connect(&ado).await.expect("TLS login");
    let r = c
        .simple_query("SELECT COUNT(*) FROM CDN.Towary WHERE Twr_Typ = 1")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.get::<i32, _>(0), Some(20));
    // A client that refuses encryption is turned away.
    let plain = server.ado_connection_string().replace(
        "encrypt=true;TrustServerCertificate=true",
        "encrypt=DANGER_PLAINTEXT",
    );
    assert!(erp::connect(&plain).await.is_err());
    // A certificate from PEM files (as --tls-cert/--tls-key).
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let pem_server = erp::start_standin(
        &db,
        Some(optima_standin::server::TlsOptions::Pem {
            cert: cert.clone(),
            key,
        }),
    )
    .await
    .unwrap();
    let ado2 = pem_server.ado_connection_string().replace(
        "TrustServerCertificate=true",
        &format!("TrustServerCertificateCA={}", cert.display()),
    );
    let mut c2 = erp::connect(&ado2)
        .await
        .expect("TLS login with a PEM certificate");
    let r = c2
        .simple_query("SELECT 1")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.get::<i32, _>(0), Some(1));
    // A client pinning another certificate refuses the server.
    let wrong = ado.replace(&pem.display().to_string(), &cert.display().to_string());
    assert!(erp::connect(&wrong).await.is_err());
    // A wrong password over TLS is 18456 too.
    let bad = ado.replace("password=", "password=x");
    assert!(
        matches!(erp::connect(&bad).await, Err(optima_standin::Error::Client(TdsError::Server(t))) if t.code() == 18456)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_connections_read_and_write_at_once() {
    let erp = erp().await;
    let mut tasks = Vec::new();
    for w in 0..8i32 {
        let ado = erp.ado.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = erp::connect(&ado).await.unwrap();
            for k in 0..15i32 {
                let sku = format!("CONC-{w}-{k}");
                c.simple_query("BEGIN TRAN").await.unwrap().into_results().await.unwrap();
                let insert = full_insert(
                    "Towary",
                    &[("Twr_Kod", "@P1"), ("Twr_Nazwa", "@P2"), ("Twr_JM", "N'szt.'"), ("Twr_Stawka", "23")],
                    "OUTPUT INSERTED.Twr_TwrId INTO @ids (id)",
                );
                let id = c
                    .query(
                        format!("DECLARE @ids TABLE (id int); {insert}; SELECT id FROM @ids"),
                        &[&sku.as_str(), &format!("Wątek {w} — {k}").as_str()],
                    )
                    .await
                    .unwrap()
                    .into_row()
                    .await
                    .unwrap()
                    .unwrap()
                    .get::<i32, _>(0)
                    .unwrap();
                c.execute(
                    "INSERT INTO CDN.TwrCeny (TwC_TwrID, TwC_TwCNumer, TwC_Typ, TwC_Wartosc, TwC_Waluta) VALUES (@P1, 2, 2, @P2, 'PLN')",
                    &[&id, &Decimal::new(1000 + k as i64, 2)],
                )
                .await
                .unwrap();
                c.simple_query("COMMIT").await.unwrap().into_results().await.unwrap();
                let n = c
                    .query("SELECT COUNT(*) FROM CDN.Towary t JOIN CDN.TwrCeny c ON c.TwC_TwrID = t.Twr_TwrId WHERE t.Twr_Kod LIKE @P1", &[&format!("CONC-{w}-%").as_str()])
                    .await
                    .unwrap()
                    .into_row()
                    .await
                    .unwrap()
                    .unwrap()
                    .get::<i32, _>(0)
                    .unwrap();
                assert_eq!(n, k + 1);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = erp.connect().await.unwrap();
    let r = c
        .simple_query("SELECT COUNT(*), COUNT(DISTINCT Twr_Kod), SUM(c.TwC_Wartosc) FROM CDN.Towary t JOIN CDN.TwrCeny c ON c.TwC_TwrID = t.Twr_TwrId WHERE Twr_Kod LIKE 'CONC-%'")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.get::<i32, _>(0), Some(120));
    assert_eq!(r.get::<i32, _>(1), Some(120));
    // 8 writers × Σ(10.00 + k/100, k = 0..15)
    assert_eq!(
        r.get::<Decimal, _>(2),
        Some(Decimal::from_str("1208.40").unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_counts_result_sets_and_small_types() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    // DONE row counts.
    let r = c
        .execute(
            "UPDATE CDN.Towary SET Twr_Opis = N'opis' WHERE Twr_TwrId <= @P1",
            &[&5i32],
        )
        .await
        .unwrap();
    assert_eq!(r.rows_affected(), &[5]);
    // SET NOCOUNT ON drops the counts, as SQL Server does.
    let r = c
        .execute(
            "SET NOCOUNT ON; UPDATE CDN.Towary SET Twr_Opis = N'x' WHERE Twr_TwrId <= 2",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.total(), 0);
    c.simple_query("SET NOCOUNT OFF")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    // Several result sets in one batch.
    let sets = c
        .simple_query("SELECT TOP 2 Twr_Kod FROM CDN.Towary ORDER BY Twr_TwrId; SELECT Mag_Symbol FROM CDN.Magazyny ORDER BY Mag_MagId; SELECT 42 AS answer")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    assert_eq!(sets.len(), 3);
    assert_eq!(sets[0].len(), 2);
    assert_eq!(sets[1][0].get::<&str, _>(0), Some("MAG"));
    assert_eq!(sets[2][0].get::<i32, _>("answer"), Some(42));
    // smallint, tinyint, bit and uniqueidentifier parameters.
    let g = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    let row = c
        .query(
            "SELECT @P1 AS a, @P2 AS b, @P3 AS c, @P4 AS d",
            &[&-12i16, &200u8, &true, &g],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<i16, _>("a"), Some(-12));
    assert_eq!(row.get::<u8, _>("b"), Some(200));
    assert_eq!(row.get::<bool, _>("c"), Some(true));
    assert_eq!(row.get::<uuid::Uuid, _>("d"), Some(g));
    // ORDER BY ... OFFSET/FETCH, ISNULL, DATEADD, SYSUTCDATETIME, IN lists.
    let rows = c
        .query(
            "SELECT Twr_TwrId, ISNULL(Twr_EAN, '') AS ean, DATEADD(day, -7, GETDATE()) AS week_ago, SYSUTCDATETIME() AS utc \
             FROM CDN.Towary WHERE Twr_TwrId IN (@P1, @P2, @P3, @P4) ORDER BY Twr_TwrId OFFSET 1 ROWS FETCH NEXT 2 ROWS ONLY",
            &[&1i32, &2i32, &3i32, &4i32],
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(ids, [2, 3]);
    let week_ago: chrono::NaiveDateTime = rows[0].get("week_ago").unwrap();
    let now = chrono::Local::now().naive_local();
    assert!(
        (now - week_ago - chrono::Duration::days(7))
            .num_seconds()
            .abs()
            < 60
    );
    assert!(rows[0].get::<chrono::NaiveDateTime, _>("utc").is_some());
    // A too-long value through CAST is truncated, as SQL Server does.
    let r = c
        .query("SELECT CAST(@P1 AS varchar(3)) AS s", &[&"abcdef"])
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.get::<&str, _>("s"), Some("abc"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_query_shapes() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    // Latest stock row per item and warehouse with ROW_NUMBER in a derived table.
    let rows = c
        .query(
            "SELECT x.TwI_TwrId, x.TwI_MagId, x.TwI_Ilosc, x.rn FROM ( \
               SELECT TwI_TwrId, TwI_MagId, TwI_Ilosc, ROW_NUMBER() OVER (PARTITION BY TwI_TwrId, TwI_MagId ORDER BY TwI_Data DESC) AS rn \
               FROM CDN.TwrIlosci WITH (NOLOCK) WHERE TwI_Data <= GETDATE() AND TwI_MagId IS NOT NULL AND TwI_TwrId IN (@P1, @P2)) x \
             WHERE x.rn = 1 ORDER BY x.TwI_TwrId, x.TwI_MagId OPTION (RECOMPILE)",
            &[&1i32, &2i32],
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r.get::<i64, _>("rn"), Some(1), "ROW_NUMBER is bigint");
        let _: Decimal = r.get(2).unwrap();
    }
    // The same through SELECT * over the derived table.
    let rows2 = c
        .query(
            "SELECT * FROM (SELECT TwI_TwrId, TwI_Ilosc, ROW_NUMBER() OVER (PARTITION BY TwI_TwrId, TwI_MagId ORDER BY TwI_Data DESC) AS rn \
             FROM CDN.TwrIlosci WHERE TwI_TwrId = @P1 AND TwI_MagId = 1 AND TwI_Data <= GETDATE()) x WHERE rn = 1",
            &[&1i32],
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows2.len(), 1);
    assert_eq!(rows2[0].get::<i64, _>("rn"), Some(1));
    // Keyset paging with TOP (@P1), and changes since a cursor.
    let page = c
        .query(
            "SELECT TOP (@P1) Twr_TwrId, Twr_Kod FROM CDN.Towary WHERE Twr_TwrId > @P2 AND Twr_TS_Mod > @P3 ORDER BY Twr_TwrId",
            &[&10i32, &100i32, &chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap()],
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let ids: Vec<i32> = page.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(ids, (101..=110).collect::<Vec<_>>());
    // nvarchar(max) both ways (PLP): a 10,000-character description.
    let long: String = "Żółw ".repeat(2000);
    c.execute(
        "UPDATE CDN.Towary SET Twr_Opis = @P1 WHERE Twr_TwrId = 1",
        &[&long.as_str()],
    )
    .await
    .unwrap();
    let r = c
        .simple_query("SELECT Twr_Opis, LEN(Twr_Opis) AS n FROM CDN.Towary WHERE Twr_TwrId = 1")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.columns()[0].column_type(), tiberius::ColumnType::NVarchar);
    assert_eq!(r.get::<&str, _>(0), Some(long.as_str()));
    assert_eq!(
        r.get::<i32, _>("n"),
        Some(9999),
        "LEN ignores the trailing space"
    );
    // Aggregates over decimals are exact and typed decimal(38, s).
    let r = c
        .simple_query("SELECT SUM(TwI_Ilosc) AS total, COUNT(*) AS n, ISNULL(SUM(CASE WHEN 1 = 0 THEN TwI_Ilosc END), 0) AS none FROM CDN.TwrIlosci WHERE TwI_MagId = 1")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.get::<Decimal, _>("total").map(|d| d.scale()), Some(4));
    assert!(r.get::<i32, _>("n").unwrap() > 0);
    assert_eq!(r.get::<Decimal, _>("none"), Some(Decimal::ZERO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_connections_at_once() {
    let erp = erp().await;
    let mut tasks = Vec::new();
    for i in 0..32i32 {
        let ado = erp.ado.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = erp::connect(&ado).await.unwrap();
            let r = c
                .query(
                    "SELECT COUNT(*) FROM CDN.Towary WHERE Twr_TwrId > @P1 AND Twr_Typ = 1",
                    &[&i],
                )
                .await
                .unwrap()
                .into_row()
                .await
                .unwrap()
                .unwrap();
            r.get::<i32, _>(0).unwrap()
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), 300 - i as i32);
    }
}
