//! Fault switches (its own test binary: the switches are process-wide).

mod common;

use chrono::NaiveDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlocks_roll_back_and_the_clock_steps() {
    let erp = common::erp().await;
    if erp.is_real() {
        return; // the switches are the stand-in's own
    }
    let mut c = erp.connect().await.expect("connect");
    let name = product_name(&mut c).await;
    c.simple_query("BEGIN TRANSACTION").await.expect("begin");
    c.simple_query("UPDATE CDN.Towary SET Twr_Nazwa = 'renamed' WHERE Twr_TwrId = 1")
        .await
        .expect("update")
        .into_results()
        .await
        .expect("update");
    switch(
        &mut c,
        r#"{"deadlock_next": 1, "deadlock_in_transaction_only": true}"#,
    )
    .await;
    let victim = c
        .simple_query("UPDATE CDN.Towary SET Twr_Nazwa = 'again' WHERE Twr_TwrId = 1")
        .await
        .map(|_| ());
    let (code, _) = common::server_error(victim.expect_err("chosen as the deadlock victim"));
    assert_eq!(code, 1205);
    // The transaction is gone with the first row; the next statement runs.
    assert_eq!(
        product_name(&mut c).await,
        name,
        "the update is rolled back"
    );
    let trancount = c
        .simple_query("SELECT @@TRANCOUNT AS tc")
        .await
        .expect("trancount")
        .into_row()
        .await
        .expect("trancount")
        .and_then(|r| r.get::<i32, _>("tc"));
    assert_eq!(trancount, Some(0), "no transaction left");

    // Outside a transaction nothing is chosen.
    switch(&mut c, r#"{"deadlock_next": 1}"#).await;
    c.simple_query("SELECT 1 AS one")
        .await
        .expect("read outside a transaction")
        .into_results()
        .await
        .expect("read");
    switch(
        &mut c,
        r#"{"deadlock_next": 0, "deadlock_in_transaction_only": false}"#,
    )
    .await;

    let before = read_now(&mut c).await;
    c.simple_query(r#"-- standin:faults {"clock_offset_seconds": -3600}"#)
        .await
        .expect("step")
        .into_results()
        .await
        .expect("step");
    let after = read_now(&mut c).await;
    let step = (after - before).num_seconds();
    assert!(
        (-3601..=-3595).contains(&step),
        "stepped back an hour: {step}"
    );
    c.simple_query(r#"-- standin:faults {"clock_offset_seconds": 0}"#)
        .await
        .expect("step back")
        .into_results()
        .await
        .expect("step back");
}

async fn read_now(c: &mut optima_standin::erp::Client) -> NaiveDateTime {
    c.simple_query("SELECT GETDATE() AS now")
        .await
        .expect("now")
        .into_row()
        .await
        .expect("now")
        .and_then(|r| r.get::<NaiveDateTime, _>("now"))
        .expect("a time")
}

async fn product_name(c: &mut optima_standin::erp::Client) -> String {
    c.simple_query("SELECT Twr_Nazwa FROM CDN.Towary WHERE Twr_TwrId = 1")
        .await
        .expect("name")
        .into_row()
        .await
        .expect("name")
        .and_then(|r| r.get::<&str, _>("Twr_Nazwa").map(str::to_owned))
        .expect("product 1")
}

async fn switch(c: &mut optima_standin::erp::Client, json: &str) {
    c.simple_query(format!("-- standin:faults {json}"))
        .await
        .expect("switch")
        .into_results()
        .await
        .expect("switch");
}
