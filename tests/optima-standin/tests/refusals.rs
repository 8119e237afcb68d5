//! What SQL Server refuses, the stand-in refuses with the same number and
//! text, through tiberius. With `MSSQL_URL` set these run against that
//! server (holding `optima-standin tsql`'s schema and seed) as well.

mod common;

use common::{erp, full_insert, server_error, unique};
use rust_decimal::Decimal;

fn towar(kod: &str) -> String {
    full_insert(
        "Towary",
        &[
            ("Twr_Kod", kod),
            ("Twr_Nazwa", "N'Test'"),
            ("Twr_JM", "N'szt.'"),
            ("Twr_Stawka", "23"),
        ],
        "",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_into_not_null_is_515() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    // An explicit NULL.
    let sql = towar(&format!("'{}'", unique("N"))).replace("N'Test'", "NULL");
    let (n, msg) = server_error(c.execute(sql, &[]).await.unwrap_err());
    assert_eq!(n, 515, "{msg}");
    assert!(
        msg.starts_with("Cannot insert the value NULL into column 'Twr_Nazwa', table '")
            && msg.ends_with(".CDN.Towary'; column does not allow nulls. INSERT fails."),
        "{msg}"
    );
    // A text column left out has no default in Optima.
    let e = c
        .execute(
            "INSERT INTO CDN.Towary (Twr_Kod, Twr_Nazwa, Twr_JM, Twr_Stawka) VALUES (@P1, N'x', N'szt.', 23)",
            &[&unique("N").as_str()],
        )
        .await
        .unwrap_err();
    assert_eq!(server_error(e).0, 515);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_long_is_2628() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let long = "X".repeat(51);
    let e = c
        .execute(towar("@P1"), &[&long.as_str()])
        .await
        .unwrap_err();
    let (n, msg) = server_error(e);
    assert_eq!(n, 2628, "{msg}");
    assert!(
        msg.contains(".CDN.Towary', column 'Twr_Kod'. Truncated value: 'XXXX"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_in_a_unique_index_is_2601() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let kod = unique("DUP");
    c.execute(towar("@P1"), &[&kod.as_str()]).await.unwrap();
    let (n, msg) = server_error(c.execute(towar("@P1"), &[&kod.as_str()]).await.unwrap_err());
    assert_eq!(n, 2601);
    assert_eq!(
        msg,
        format!(
            "Cannot insert duplicate key row in object 'CDN.Towary' with unique index 'TwrKod'. The duplicate key value is ({kod})."
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_primary_key_is_2627() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    // TwrTSModEsklep's key is the product's id, not an identity.
    let id = (uuid::Uuid::new_v4().as_u128() % 1_000_000_000) as i32 + 1_000_000;
    let sql = "INSERT INTO CDN.TwrTSModEsklep (TwTS_TwrId) VALUES (@P1)";
    c.execute(sql, &[&id]).await.unwrap();
    let (n, msg) = server_error(c.execute(sql, &[&id]).await.unwrap_err());
    assert_eq!(n, 2627);
    assert_eq!(
        msg,
        format!(
            "Violation of PRIMARY KEY constraint 'PK_TwrTSModEsklep'. Cannot insert duplicate key in object 'CDN.TwrTSModEsklep'. The duplicate key value is ({id})."
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn computed_column_written_is_271() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let sql = full_insert(
        "TraNag",
        &[
            ("TrN_NumerString", "'RO/@numerS/2026'"),
            ("TrN_NumerPelny", "N'RO/1/2026'"),
        ],
        "",
    );
    let (n, msg) = server_error(c.execute(sql, &[]).await.unwrap_err());
    assert_eq!(n, 271);
    assert_eq!(
        msg,
        "The column \"TrN_NumerPelny\" cannot be modified because it is either a computed column or is the result of a UNION operator."
    );
    let e = c
        .execute(
            "UPDATE CDN.TraNag SET TrN_NumerPelny = N'x' WHERE TrN_TrNID = 0",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(server_error(e).0, 271);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_column_is_207_and_unknown_table_is_208() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    // Columns the stand-in used to invent are not in Optima.
    for col in ["TrN_NrPrzesylki", "TrN_Nope"] {
        let e = c
            .simple_query(format!("SELECT {col} FROM CDN.TraNag"))
            .await
            .unwrap_err();
        assert_eq!(
            server_error(e),
            (207, format!("Invalid column name '{col}'."))
        );
    }
    let e = c
        .simple_query("SELECT TwZ_TrNId FROM CDN.TwrZasoby")
        .await
        .unwrap_err();
    assert_eq!(server_error(e).0, 207);
    let e = c
        .simple_query("SELECT * FROM CDN.NoSuchTable")
        .await
        .unwrap_err();
    assert_eq!(
        server_error(e),
        (208, "Invalid object name 'CDN.NoSuchTable'.".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_without_into_on_a_table_with_triggers_is_334() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let sql = full_insert(
        "TraNag",
        &[
            ("TrN_NumerString", "'RO/@numerS/2026'"),
            ("TrN_NumerNr", "1"),
        ],
        "OUTPUT INSERTED.TrN_TrNID",
    );
    let (n, msg) = server_error(c.execute(sql, &[]).await.unwrap_err());
    assert_eq!(n, 334);
    assert_eq!(
        msg,
        "The target table 'CDN.TraNag' of the DML statement cannot have any enabled triggers if the statement contains an OUTPUT clause without INTO clause."
    );
    let sql = full_insert(
        "Kontrahenci",
        &[("Knt_Kod", &format!("'{}'", unique("K")))],
        "OUTPUT INSERTED.Knt_KntId",
    );
    assert_eq!(server_error(c.execute(sql, &[]).await.unwrap_err()).0, 334);
    // The triggers are listed where SQL Server lists them.
    let n: i32 = c
        .simple_query("SELECT COUNT(*) FROM sys.triggers WHERE parent_id = OBJECT_ID('CDN.TraNag') AND is_disabled = 0")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(n, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_conversions_are_245_and_8114() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let e = c
        .execute(
            "INSERT INTO CDN.TraVat (TrV_TrNID, TrV_Flaga) VALUES (0, 'abc')",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(
        server_error(e),
        (
            245,
            "Conversion failed when converting the varchar value 'abc' to data type smallint."
                .to_string()
        )
    );
    let e = c
        .execute(
            "INSERT INTO CDN.TraVat (TrV_TrNID, TrV_Flaga) VALUES (@P1, 2)",
            &[&"abc"],
        )
        .await
        .unwrap_err();
    assert_eq!(
        server_error(e),
        (
            245,
            "Conversion failed when converting the nvarchar value 'abc' to data type int."
                .to_string()
        )
    );
    // A string into a decimal.
    let e = c
        .execute(
            "INSERT INTO CDN.TraVat (TrV_TrNID, TrV_Netto) VALUES (0, @P1)",
            &[&"12,50 zł"],
        )
        .await
        .unwrap_err();
    assert_eq!(
        server_error(e),
        (
            8114,
            "Error converting data type nvarchar to numeric.".to_string()
        )
    );
    let e = match c.simple_query("SELECT CAST('abc' AS decimal(15,2))").await {
        Ok(s) => s.into_results().await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(server_error(e).0, 8114);
}

/// What real code does on a table with triggers: OUTPUT ... INTO a table
/// variable, then SELECT from it; `id` comes back as int.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_into_a_table_variable_in_a_batch_and_an_rpc() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let insert = full_insert(
        "TraNag",
        &[
            ("TrN_TypDokumentu", "308"),
            ("TrN_Rodzaj", "308000"),
            ("TrN_NumerString", "@P1"),
            ("TrN_NumerNr", "@P2"),
            ("TrN_NumerObcy", "@P3"),
            ("TrN_Bufor", "1"),
            ("TrN_PodmiotTyp", "1"),
            ("TrN_PodID", "1"),
            ("TrN_Waluta", "'PLN'"),
            ("TrN_KursL", "1"),
            ("TrN_KursM", "1"),
            ("TrN_ImportRowId", "@P4"),
        ],
        "OUTPUT INSERTED.TrN_TrNID INTO @ids (id)",
    );
    let numer = format!("RO/@numerS/{}", unique("T"));
    let rpc = format!(
        "DECLARE @ids TABLE (id int); {insert}; SELECT id, CAST(SCOPE_IDENTITY() AS int) AS scope FROM @ids;"
    );
    let guid = uuid::Uuid::new_v4().to_string();
    let rows = c
        .query(
            rpc.as_str(),
            &[&numer.as_str(), &7i32, &"WOO-7", &guid.as_str()],
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let id: i32 = rows[0].get("id").unwrap();
    assert_eq!(rows[0].get::<i32, _>("scope"), Some(id));
    let r = c
        .query(
            "SELECT TrN_NumerPelny, TrN_Anulowany, TrN_eSklepZrodlo FROM CDN.TraNag WHERE TrN_TrNID = @P1",
            &[&id],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    // The full number is computed from NumerString and NumerNr.
    assert_eq!(
        r.get::<&str, _>(0).map(|s| s.to_string()),
        Some(numer.replace("@numerS", "7"))
    );
    assert_eq!(r.get::<i32, _>(1), Some(0));
    assert_eq!(r.get::<i32, _>(2), None);

    // The same in one batch (literals), twice: the variable is per batch.
    let numer2 = format!("RO/@numerS/{}", unique("T"));
    let batch = |nr: i32| {
        let guid = uuid::Uuid::new_v4().to_string();
        let sql = insert
            .replace("@P1", &format!("'{numer2}'"))
            .replace("@P2", &nr.to_string())
            .replace("@P3", "'WOO-8'")
            .replace("@P4", &format!("'{guid}'"));
        format!("DECLARE @ids TABLE (id int); {sql}; SELECT id FROM @ids;")
    };
    for nr in [1, 2] {
        let row = c
            .simple_query(batch(nr))
            .await
            .unwrap()
            .into_row()
            .await
            .unwrap()
            .unwrap();
        assert!(row.get::<i32, _>("id").unwrap() > id);
    }
    // Without DECLARE: 1087.
    let e = c.simple_query("SELECT id FROM @ids").await.unwrap_err();
    assert_eq!(server_error(e).0, 1087);
}

/// Every column goes out in its real type: tinyint as tinyint (tiberius'
/// `get::<i16>` would panic on it), int as int, decimal with its scale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_come_back_in_their_real_types() {
    let erp = erp().await;
    let mut c = erp.connect().await.unwrap();
    let r = c
        .simple_query(
            "SELECT TOP 1 TwC_Typ, TwC_TwCNumer, TwC_Wartosc, Twr_NieAktywny, Twr_Typ, Twr_Flaga \
             FROM CDN.TwrCeny JOIN CDN.Towary ON Twr_TwrId = TwC_TwrID ORDER BY TwC_TwCID",
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert!(r.get::<u8, _>(0).is_some());
    assert!(r.try_get::<i16, _>(0).is_err(), "tinyint is not smallint");
    assert!(r.get::<i32, _>(1).is_some());
    assert!(r.get::<Decimal, _>(2).unwrap().scale() == 4);
    assert!(r.get::<u8, _>(3).is_some());
    assert!(r.get::<u8, _>(4).is_some());
    assert!(r.get::<i16, _>(5).is_some());
    let r = c
        .simple_query("SELECT TOP 1 TrN_Anulowany, TrN_Bufor, TrN_ZwroconoCalaIlosc FROM CDN.TraNag WHERE TrN_TypDokumentu = 308")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert!(r.try_get::<i16, _>(0).is_err(), "TrN_Anulowany is int");
    assert!(r.get::<i32, _>(0).is_some());
    assert!(r.get::<i16, _>(1).is_some());
    assert!(r.get::<u8, _>(2).is_some());
}
