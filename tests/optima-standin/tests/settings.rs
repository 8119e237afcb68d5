//! Stand-in settings kept in the database file: the compatibility level and
//! collation the database reports, and SELECT denied to a login (error 229),
//! over TDS as a client sees them, and through `optima-standin configure`.

use std::process::Command;
use std::sync::Arc;

use optima_standin::erp::{connect, start_standin};
use optima_standin::seed::{SeedOptions, seed_database};
use optima_standin::{db, settings};
use tiberius::error::Error as TdsError;

const BIN: &str = env!("CARGO_BIN_EXE_optima-standin");

fn seeded() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optima.sqlite");
    seed_database(
        &path,
        &SeedOptions {
            products: 20,
            seed: 5,
        },
    )
    .unwrap();
    (dir, path)
}

fn server_error(e: TdsError) -> (u32, u8, String) {
    match e {
        TdsError::Server(t) => (t.code(), t.class(), t.message().to_string()),
        other => panic!("expected a server error, got {other:?}"),
    }
}

async fn properties(client: &mut optima_standin::erp::Client) -> (u8, String, String) {
    let row = client
        .simple_query(
            "SELECT (SELECT compatibility_level FROM sys.databases WHERE name = DB_NAME()) AS level, \
             (SELECT collation_name FROM sys.databases WHERE name = DB_NAME()) AS coll, \
             CAST(DATABASEPROPERTYEX(DB_NAME(), 'Collation') AS nvarchar(128)) AS prop",
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    (
        row.get::<u8, _>("level").unwrap(),
        row.get::<&str, _>("coll").unwrap().to_owned(),
        row.get::<&str, _>("prop").unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_level_collation_and_denied_select_follow_the_settings() {
    let (_dir, path) = seeded();
    let server = start_standin(&path, None).await.unwrap();
    let ado = server.ado_connection_string();

    let mut c = connect(&ado).await.unwrap();
    assert_eq!(
        properties(&mut c).await,
        (150, "Polish_CI_AS".into(), "Polish_CI_AS".into())
    );

    let conn = db::open(&path, Arc::default()).unwrap();
    settings::set_compatibility_level(&conn, 90).unwrap();
    settings::set_collation(&conn, "SQL_Latin1_General_CP1_CS_AS").unwrap();
    settings::deny_select(&conn, "SA", "CDN.TwrCeny").unwrap();
    assert!(settings::deny_select(&conn, "sa", "Nope").is_err());

    // An open connection keeps what it saw; the next one sees the change.
    assert_eq!(properties(&mut c).await.0, 150);
    let mut c = connect(&ado).await.unwrap();
    assert_eq!(
        properties(&mut c).await,
        (
            90,
            "SQL_Latin1_General_CP1_CS_AS".into(),
            "SQL_Latin1_General_CP1_CS_AS".into()
        )
    );
    let master = c
        .simple_query("SELECT compatibility_level FROM sys.databases WHERE name = 'master'")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(master.get::<u8, _>(0), Some(150));

    // Error 229, as SQL Server words it, in a batch, a join and over RPC;
    // the connection stays usable and other tables stay readable.
    let expected = (
        229,
        14,
        "The SELECT permission was denied on the object 'TwrCeny', database 'CDN_Firma', schema 'CDN'.".to_owned(),
    );
    for sql in [
        "SELECT TOP 1 * FROM CDN.TwrCeny",
        "SELECT t.Twr_Kod FROM CDN.Towary t JOIN [CDN].[TwrCeny] c ON c.TwC_TwrID = t.Twr_TwrID",
        "SELECT Twr_Kod FROM CDN.Towary WHERE Twr_TwrID IN (SELECT TwC_TwrID FROM CDN.TwrCeny)",
    ] {
        let err = match c.simple_query(sql).await {
            Err(e) => e,
            Ok(stream) => stream.into_results().await.unwrap_err(),
        };
        assert_eq!(server_error(err), expected, "{sql}");
    }
    let err = match c
        .query(
            "SELECT TwC_Wartosc FROM CDN.TwrCeny WHERE TwC_TwrID = @P1",
            &[&1i32],
        )
        .await
    {
        Err(e) => e,
        Ok(stream) => stream.into_results().await.unwrap_err(),
    };
    assert_eq!(server_error(err), expected);
    let n = c
        .simple_query("SELECT COUNT(*) FROM CDN.Towary")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert!(n.get::<i32, _>(0).unwrap() > 0);

    // Back to the defaults.
    settings::reset(&conn).unwrap();
    let mut c = connect(&ado).await.unwrap();
    assert_eq!(properties(&mut c).await.0, 150);
    c.simple_query("SELECT TOP 1 * FROM CDN.TwrCeny")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    server.shutdown().await;
}

#[test]
fn configure_through_the_binary() {
    let (_dir, path) = seeded();
    let out = Command::new(BIN)
        .args(["configure", "--db"])
        .arg(&path)
        .args([
            "--compatibility-level",
            "100",
            "--collation",
            "Latin1_General_CS_AS",
            "--deny-select",
            "sync:TraElem",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "compatibility level 100, collation Latin1_General_CS_AS"
    );
    let conn = db::open(&path, Arc::default()).unwrap();
    assert_eq!(
        settings::denied_select(&conn, "SYNC").unwrap(),
        ["traelem".to_owned()].into()
    );
    assert!(settings::denied_select(&conn, "sa").unwrap().is_empty());

    let out = Command::new(BIN)
        .args(["configure", "--db"])
        .arg(&path)
        .arg("--reset")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        settings::load(&conn).unwrap(),
        settings::DatabaseSettings::default()
    );
    assert!(settings::denied_select(&conn, "sync").unwrap().is_empty());

    let out = Command::new(BIN)
        .args(["configure", "--db"])
        .arg(&path)
        .args(["--deny-select", "TraElem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
