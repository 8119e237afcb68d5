//! The WooCommerce connector against the WooCommerce stand-in on 127.0.0.1:
//! SKU lookup across pages and among variations, batch writes read back
//! from the shop, per-item rejections, each class of whole-call error, and
//! refunds read as buyers' returns (lines, pages, refunds in one second).

use std::collections::HashSet;
use std::time::Duration;

use functions::mapping::ProductChanges;
use functions::shop::woocommerce::{
    WooCommerce, WooConfig, WooCredentials, WooSettings, parse_retry_after,
};
use functions::shop::{
    CatalogueSink, ItemOutcome, ReturnedItem, ReturnsSource, Secret, ShopError, ShopItemId,
    ShopReturn,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;
use woo_standin::{NewOrder, NewProduct, WooOptions, WooStandin};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn standin() -> Result<WooStandin, Box<dyn std::error::Error>> {
    Ok(WooStandin::start(WooOptions {
        consumer_key: "ck_test".into(),
        consumer_secret: "cs_test".into(),
        ..WooOptions::default()
    })
    .await?)
}

fn config(w: &WooStandin) -> WooConfig {
    let mut config = WooConfig::new(
        w.base_url(),
        w.consumer_key(),
        Secret::new(w.consumer_secret()),
    );
    config.settings.timeout = Duration::from_secs(2);
    config
}

fn connector(w: &WooStandin) -> Result<WooCommerce, Box<dyn std::error::Error>> {
    Ok(WooCommerce::new(config(w))?)
}

fn add(
    w: &WooStandin,
    sku: &str,
    price: &str,
    stock: i64,
) -> Result<u64, woo_standin::StandinError> {
    w.add_product(NewProduct {
        sku: sku.into(),
        name: format!("Produkt {sku}"),
        regular_price: price.into(),
        stock_quantity: Some(stock),
        ..NewProduct::default()
    })
}

fn sku(i: usize) -> String {
    format!("SKU-{i:04}")
}

fn change(price: Decimal, stock: i64) -> ProductChanges {
    ProductChanges {
        regular_price: Some(price),
        stock_quantity: Some(stock),
        ..ProductChanges::default()
    }
}

#[tokio::test]
async fn looks_up_250_skus_across_pages() -> TestResult {
    let w = standin().await?;
    for i in 0..260 {
        add(&w, &sku(i), "10.00", 1)?;
    }
    let shop = connector(&w)?;
    let mut wanted: Vec<String> = (0..250).map(sku).collect();
    wanted.push("NIE-MA".into());
    let ids = shop.lookup_ids(&wanted).await?;
    assert_eq!(ids.len(), 250);
    for i in 0..250 {
        let expected = w
            .product_by_sku(&sku(i))
            .map(|p| ShopItemId::product(p.id.to_string()));
        assert_eq!(ids.get(&sku(i)), expected.as_ref(), "{}", sku(i));
    }
    // One SKU list, three pages of 100.
    let pages: HashSet<String> = w
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.query.contains("sku="))
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    for page in 1..=3 {
        assert!(
            pages.iter().any(|q| q.contains(&format!("page={page}"))),
            "page {page}: {pages:?}"
        );
    }
    w.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_batch_of_100_lands_and_reads_back() -> TestResult {
    let w = standin().await?;
    for i in 0..100 {
        add(&w, &sku(i), "10.00", 1)?;
    }
    let shop = connector(&w)?;
    assert_eq!(shop.max_batch(), 100);
    let skus: Vec<String> = (0..100).map(sku).collect();
    let ids = shop.lookup_ids(&skus).await?;
    let mut items = Vec::new();
    for (i, s) in skus.iter().enumerate() {
        let id = ids.get(s).cloned().ok_or("lookup missed a SKU")?;
        // 12.3 → "12.30", and a different price and stock per item.
        let price = dec!(12.3) + Decimal::from(i as u64);
        items.push((id, change(price, i as i64)));
    }
    let before = w.requests().len();
    let outcomes = shop.write_products(&items).await?;
    assert_eq!(outcomes, vec![ItemOutcome::Ok; 100]);
    let posts: Vec<_> = w.requests()[before..]
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(posts, ["/wp-json/wc/v3/products/batch"]);
    for (i, s) in skus.iter().enumerate() {
        let p = w.product_by_sku(s).ok_or("product vanished")?;
        assert_eq!(p.regular_price, format!("{}.30", 12 + i));
        assert_eq!(p.stock_quantity, Some(i as i64));
        assert!(p.manage_stock);
    }
    w.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_unknown_id_is_rejected_while_the_rest_succeed() -> TestResult {
    let w = standin().await?;
    let a = add(&w, "A", "10.00", 1)?;
    let b = add(&w, "B", "10.00", 1)?;
    let shop = connector(&w)?;
    let items = vec![
        (ShopItemId::product(a.to_string()), change(dec!(20), 5)),
        (ShopItemId::product("999999"), change(dec!(20), 5)),
        (ShopItemId::product(b.to_string()), change(dec!(21.5), 6)),
        (ShopItemId::product("not-a-number"), change(dec!(20), 5)),
    ];
    let outcomes = shop.write_products(&items).await?;
    assert_eq!(outcomes[0], ItemOutcome::Ok);
    assert!(
        matches!(&outcomes[1], ItemOutcome::Rejected { code, .. } if code == "woocommerce_rest_product_invalid_id"),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(outcomes[2], ItemOutcome::Ok);
    assert!(matches!(&outcomes[3], ItemOutcome::Rejected { .. }));
    assert_eq!(w.product(b).map(|p| p.regular_price), Some("21.50".into()));
    assert_eq!(w.product(a).and_then(|p| p.stock_quantity), Some(5));
    w.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn hiding_and_showing_a_product() -> TestResult {
    let w = standin().await?;
    let a = add(&w, "A", "10.00", 1)?;
    let shop = connector(&w)?;
    let id = ShopItemId::product(a.to_string());
    let hide = ProductChanges {
        visible: Some(false),
        ..ProductChanges::default()
    };
    assert_eq!(
        shop.write_products(&[(id.clone(), hide)]).await?,
        [ItemOutcome::Ok]
    );
    let p = w.product(a).ok_or("gone")?;
    assert_eq!(
        (p.status.as_str(), p.catalog_visibility.as_str()),
        ("private", "hidden")
    );
    assert_eq!(p.regular_price, "10.00", "fields not in the changes stay");
    let show = ProductChanges {
        visible: Some(true),
        ..ProductChanges::default()
    };
    assert_eq!(shop.write_products(&[(id, show)]).await?, [ItemOutcome::Ok]);
    let p = w.product(a).ok_or("gone")?;
    assert_eq!(
        (p.status.as_str(), p.catalog_visibility.as_str()),
        ("publish", "visible")
    );
    w.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn variation_skus_are_found_and_written_under_their_parent() -> TestResult {
    let w = standin().await?;
    let simple = add(&w, "PROSTY", "5.00", 1)?;
    let parent = w.add_product(NewProduct {
        sku: "KOSZ".into(),
        name: "Koszulka".into(),
        kind: "variable".into(),
        ..NewProduct::default()
    })?;
    let red = w.add_variation(
        parent,
        json!({"sku": "KOSZ-RED", "regular_price": "49.00", "manage_stock": true, "stock_quantity": 3}),
    )?;
    let shop = connector(&w)?;
    let skus = vec!["KOSZ-RED".to_owned(), "PROSTY".to_owned()];
    let ids = shop.lookup_ids(&skus).await?;
    let red_id = ShopItemId::variation(parent.to_string(), red.to_string());
    assert_eq!(ids.get("KOSZ-RED"), Some(&red_id));
    assert_eq!(
        ids.get("PROSTY"),
        Some(&ShopItemId::product(simple.to_string()))
    );

    // SKUs the shop does not have: the variation index is reused, not rescanned.
    let before = w.requests().len();
    let none = shop.lookup_ids(&["NIGDZIE".to_owned()]).await?;
    assert!(none.is_empty());
    let paths: Vec<String> = w.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/wp-json/wc/v3/products"]);

    let before = w.requests().len();
    let outcomes = shop
        .write_products(&[
            (red_id, change(dec!(39.99), 7)),
            (ShopItemId::product(simple.to_string()), change(dec!(6), 2)),
        ])
        .await?;
    assert_eq!(outcomes, [ItemOutcome::Ok, ItemOutcome::Ok]);
    let v = w.product(red).ok_or("variation gone")?;
    assert_eq!(
        (v.regular_price.as_str(), v.stock_quantity),
        ("39.99", Some(7))
    );
    let mut posts: Vec<String> = w.requests()[before..]
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path.clone())
        .collect();
    posts.sort();
    let mut expected = vec![
        "/wp-json/wc/v3/products/batch".to_owned(),
        format!("/wp-json/wc/v3/products/{parent}/variations/batch"),
    ];
    expected.sort();
    assert_eq!(posts, expected);

    // A shop whose product search finds variations: one request, same answer.
    let w2 = WooStandin::start(WooOptions {
        sku_lookup_includes_variations: true,
        ..WooOptions::default()
    })
    .await?;
    let parent2 = w2.add_product(NewProduct {
        sku: "KOSZ".into(),
        name: "Koszulka".into(),
        kind: "variable".into(),
        ..NewProduct::default()
    })?;
    let red2 = w2.add_variation(
        parent2,
        json!({"sku": "KOSZ-RED", "regular_price": "49.00"}),
    )?;
    let ids = connector(&w2)?.lookup_ids(&["KOSZ-RED".to_owned()]).await?;
    assert_eq!(
        ids.get("KOSZ-RED"),
        Some(&ShopItemId::variation(
            parent2.to_string(),
            red2.to_string()
        ))
    );
    assert_eq!(w2.requests().len(), 1);
    w2.shutdown().await;
    w.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn too_many_requests_is_rate_limited_with_its_retry_after() -> TestResult {
    let w = standin().await?;
    add(&w, "A", "10.00", 1)?;
    let shop = connector(&w)?;
    w.faults().set_rate_limit(Some(1));
    let skus = ["A".to_owned()];
    shop.lookup_ids(&skus).await?;
    let err = shop.lookup_ids(&skus).await.err();
    assert_eq!(
        err,
        Some(ShopError::RateLimited {
            retry_after: Some(Duration::from_secs(1))
        })
    );
    assert!(err.is_some_and(|e| e.is_retryable()));
    w.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn server_errors_and_timeouts_are_transient() -> TestResult {
    let w = standin().await?;
    let a = add(&w, "A", "10.00", 1)?;
    let mut cfg = config(&w);
    cfg.settings.timeout = Duration::from_millis(300);
    let shop = WooCommerce::new(cfg)?;
    w.faults().fail_next(1, 503);
    let err = shop.lookup_ids(&["A".to_owned()]).await.err();
    assert!(matches!(err, Some(ShopError::Transient(_))), "{err:?}");
    assert!(err.is_some_and(|e| e.is_retryable()));

    w.faults().hang_next(1, Duration::from_secs(2));
    let items = [(ShopItemId::product(a.to_string()), change(dec!(11), 1))];
    let err = shop.write_products(&items).await.err();
    assert!(matches!(err, Some(ShopError::Transient(_))), "{err:?}");
    // After the fault the same write goes through.
    assert_eq!(shop.write_products(&items).await?, [ItemOutcome::Ok]);
    w.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn wrong_credentials_are_auth_errors() -> TestResult {
    let w = standin().await?;
    for (key, secret) in [
        ("ck_wrong", w.consumer_secret()),
        (w.consumer_key(), "cs_wrong"),
    ] {
        let mut cfg = config(&w);
        cfg.consumer_key = key.into();
        cfg.consumer_secret = Secret::new(secret);
        let err = WooCommerce::new(cfg)?
            .lookup_ids(&["A".to_owned()])
            .await
            .err();
        assert!(
            matches!(&err, Some(ShopError::Auth(m)) if m.contains("woocommerce_rest_authentication_error")),
            "{err:?}"
        );
        assert!(err.is_some_and(|e| !e.is_retryable()));
    }
    w.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn credentials_can_travel_in_the_query_for_hosts_that_strip_authorization() -> TestResult {
    let w = standin().await?;
    let a = add(&w, "A", "10.00", 1)?;
    let mut cfg = config(&w);
    cfg.settings.query_auth = true;
    let shop = WooCommerce::new(cfg)?;
    let ids = shop.lookup_ids(&["A".to_owned()]).await?;
    assert_eq!(ids.get("A"), Some(&ShopItemId::product(a.to_string())));
    let items = [(ShopItemId::product(a.to_string()), change(dec!(15), 4))];
    assert_eq!(shop.write_products(&items).await?, [ItemOutcome::Ok]);
    assert_eq!(w.product(a).and_then(|p| p.stock_quantity), Some(4));
    // A transport error does not repeat the URL, which now holds the secret.
    w.faults().hang_next(1, Duration::from_secs(2));
    let mut cfg = config(&w);
    cfg.settings.query_auth = true;
    cfg.settings.timeout = Duration::from_millis(200);
    let err = WooCommerce::new(cfg)?
        .lookup_ids(&["A".to_owned()])
        .await
        .err();
    assert!(
        matches!(&err, Some(ShopError::Transient(m)) if !m.contains("cs_test")),
        "{err:?}"
    );
    w.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_batch_above_the_shop_limit_is_permanent() -> TestResult {
    let w = standin().await?;
    let a = add(&w, "A", "10.00", 1)?;
    let mut cfg = config(&w);
    // Misconfigured: the shop takes 100.
    cfg.settings.batch_limit = 150;
    let shop = WooCommerce::new(cfg)?;
    let items: Vec<_> = (0..101)
        .map(|_| (ShopItemId::product(a.to_string()), change(dec!(1), 1)))
        .collect();
    let err = shop.write_products(&items).await.err();
    assert!(
        matches!(&err, Some(ShopError::Permanent(m)) if m.contains("413")),
        "{err:?}"
    );
    w.shutdown().await;
    Ok(())
}

#[test]
fn configuration_is_checked_and_the_secret_never_printed() {
    let secret = Secret::new("cs_very_secret");
    for bad in [
        "http://sklep.example.pl",
        "ftp://127.0.0.1",
        "https://sklep.example.pl/?x=1",
        "not a url",
    ] {
        let cfg = WooConfig::new(bad, "ck", secret.clone());
        assert!(WooCommerce::new(cfg).is_err(), "{bad}");
    }
    for good in [
        "https://sklep.example.pl",
        "https://sklep.example.pl/shop/",
        "https://sklep.example.pl/wp-json/wc/v3",
        "http://127.0.0.1:8080",
        "http://localhost:8080",
    ] {
        let cfg = WooConfig::new(good, "ck", secret.clone());
        assert!(WooCommerce::new(cfg).is_ok(), "{good}");
    }
    let cfg = WooConfig::new("https://sklep.example.pl", "ck", secret.clone());
    let printed = format!("{cfg:?} {:?}", WooCommerce::new(cfg.clone()));
    assert!(!printed.contains("cs_very_secret"), "{printed}");
    let credentials: WooCredentials = serde_json::from_value(json!({
        "consumer_key": "ck_1",
        "consumer_secret": "cs_1",
    }))
    .expect("credentials");
    assert_eq!(credentials.consumer_secret.expose(), "cs_1");
    assert!(!format!("{credentials:?}").contains("cs_1"));
    let settings: WooSettings =
        serde_json::from_value(json!({"timeout": 5, "batch_limit": 50})).expect("settings");
    assert_eq!(settings.timeout, Duration::from_secs(5));
    assert_eq!(settings.batch_limit, 50);
    // Unset settings keep their defaults; an unknown one is refused.
    assert!(settings.search_variations);
    assert!(serde_json::from_value::<WooSettings>(json!({"timeot": 5})).is_err());
}

#[test]
fn retry_after_is_read_without_floats() {
    assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
    assert_eq!(parse_retry_after(" 2.0 "), Some(Duration::from_secs(2)));
    assert_eq!(parse_retry_after("0.25"), Some(Duration::from_millis(250)));
    assert_eq!(parse_retry_after("-3"), Some(Duration::ZERO));
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon"), None);
}

// ---- refunds as buyers' returns ------------------------------------------------------------

/// `POST /orders/{id}/refunds` as the shop's staff would (a manual refund); the refund's id.
async fn refund(
    w: &WooStandin,
    order: u64,
    body: serde_json::Value,
) -> Result<u64, Box<dyn std::error::Error>> {
    let mut body = body;
    body["api_refund"] = json!(false);
    let answer = reqwest::Client::new()
        .post(format!("{}/orders/{order}/refunds", w.api_url()))
        .basic_auth(w.consumer_key(), Some(w.consumer_secret()))
        .json(&body)
        .send()
        .await?;
    let status = answer.status();
    let refund: serde_json::Value = answer.json().await?;
    assert_eq!(status, 201, "{refund}");
    Ok(refund["id"].as_u64().ok_or("a refund without an id")?)
}

/// What the poller does: pages until the connector says there is no more, the cursor kept.
async fn poll(
    source: &dyn ReturnsSource,
    after: &mut Option<String>,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<ShopReturn>, usize), Box<dyn std::error::Error>> {
    let mut found = Vec::new();
    let mut reads = 0;
    loop {
        let page = source.list_returns(after.as_deref(), since).await?;
        reads += 1;
        found.extend(page.returns);
        if let Some(next) = page.after {
            *after = Some(next);
        }
        if !page.more || reads > 20 {
            return Ok((found, reads));
        }
    }
}

fn moment(secs: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc
        .with_ymd_and_hms(2025, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::seconds(secs)
}

#[tokio::test]
async fn a_refund_with_two_lines_is_a_buyers_return_with_its_skus_and_quantities() -> TestResult {
    let w = standin().await?;
    add(&w, "KUBEK-1", "10.00", 20)?;
    add(&w, "TALERZ-2", "5.00", 20)?;
    let order = w.place_order(NewOrder {
        line_items: vec![("KUBEK-1".into(), 2), ("TALERZ-2".into(), 3)],
        ..NewOrder::default()
    })?;
    w.set_clock(Some(moment(0)));
    let with_lines = refund(
        &w,
        order.id,
        json!({"reason": "Zwrot", "line_items": [
            {"id": order.line_items[0].id, "quantity": 1, "refund_total": 8.13, "refund_tax": [{"id": 1, "refund_total": 1.87}]},
            {"id": order.line_items[1].id, "quantity": 2, "refund_total": 8.13, "refund_tax": [{"id": 1, "refund_total": 1.87}]},
        ]}),
    )
    .await?;
    w.set_clock(Some(moment(5)));
    let amount_only = refund(&w, order.id, json!({"amount": "2.00"})).await?;
    w.set_clock(None);

    let source = connector(&w)?
        .connector()
        .returns
        .ok_or("WooCommerce has returns")?;
    let mut after = None;
    let (found, _) = poll(source.as_ref(), &mut after, moment(-3600)).await?;
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        found[0],
        ShopReturn {
            id: with_lines.to_string(),
            order_id: order.id.to_string(),
            created_at: moment(0),
            status: "refunded".into(),
            reference: with_lines.to_string(),
            items: vec![
                ReturnedItem {
                    sku: Some("KUBEK-1".into()),
                    name: "Produkt KUBEK-1".into(),
                    quantity: 1,
                },
                ReturnedItem {
                    sku: Some("TALERZ-2".into()),
                    name: "Produkt TALERZ-2".into(),
                    quantity: 2,
                },
            ],
        }
    );
    // Money back without goods: listed, with no items.
    assert_eq!(found[1].id, amount_only.to_string());
    assert_eq!(found[1].created_at, moment(5));
    assert!(found[1].items.is_empty());
    // Read again: nothing new.
    let (again, _) = poll(source.as_ref(), &mut after, moment(-3600)).await?;
    assert!(again.is_empty(), "{again:?}");
    // Every read asked WooCommerce's global refunds list, oldest first by GMT date.
    let reads: Vec<_> = w
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/refunds"))
        .collect();
    assert_eq!(reads.len(), 2);
    for r in &reads {
        for part in [
            "dates_are_gmt=true",
            "orderby=date",
            "order=asc",
            "per_page=100",
        ] {
            assert!(r.query.contains(part), "{}", r.query);
        }
    }
    w.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn refunds_are_read_across_a_page_and_within_one_second_once_each() -> TestResult {
    let w = standin().await?;
    add(&w, "KUBEK-1", "100.00", 1000)?;
    let order = w.place_order(NewOrder {
        line_items: vec![("KUBEK-1".into(), 10)],
        ..NewOrder::default()
    })?;
    // 98 refunds a second apart, then three in one second: the first page of 100 ends
    // between two refunds of the same second.
    let mut made = Vec::new();
    for i in 0..101 {
        w.set_clock(Some(moment(i.min(98))));
        made.push(refund(&w, order.id, json!({"amount": "0.01"})).await?);
    }
    let source = connector(&w)?
        .connector()
        .returns
        .ok_or("WooCommerce has returns")?;
    let since = moment(-3600);
    let mut after = None;
    let (first, reads) = poll(source.as_ref(), &mut after, since).await?;
    assert_eq!(reads, 2, "a full page, then the rest");
    let ids: Vec<String> = first.iter().map(|r| r.id.clone()).collect();
    let expected: Vec<String> = made.iter().map(u64::to_string).collect();
    assert_eq!(ids, expected, "each once, oldest first");

    // Two more in the very second the last read ended with, then one a second later.
    w.set_clock(Some(moment(98)));
    let late = [
        refund(&w, order.id, json!({"amount": "0.01"})).await?,
        refund(&w, order.id, json!({"amount": "0.01"})).await?,
    ];
    let (second, _) = poll(source.as_ref(), &mut after, since).await?;
    let ids: Vec<String> = second.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        ids,
        late.map(|id| id.to_string()),
        "the same second's latecomers, once"
    );
    w.set_clock(Some(moment(99)));
    let next = refund(&w, order.id, json!({"amount": "0.01"})).await?;
    w.set_clock(None);
    let (third, _) = poll(source.as_ref(), &mut after, since).await?;
    let ids: Vec<String> = third.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, [next.to_string()]);
    let (fourth, _) = poll(source.as_ref(), &mut after, since).await?;
    assert!(fourth.is_empty(), "{fourth:?}");
    w.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_woocommerce_without_the_refunds_list_says_so() -> TestResult {
    // WooCommerce before 9.0: no `GET /refunds`, WordPress's 404 for an unknown route.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::NOT_FOUND,
            axum::Json(json!({"code": "rest_no_route", "message": "No route was found matching the URL and request method.", "data": {"status": 404}})),
        )
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = WooConfig::new(base, "ck_test", Secret::new("cs_test"));
    config.settings.timeout = Duration::from_secs(2);
    let source = WooCommerce::new(config)?
        .connector()
        .returns
        .ok_or("WooCommerce has returns")?;
    match source.list_returns(None, moment(0)).await {
        Err(ShopError::Permanent(why)) => {
            assert!(
                why.contains("9.0") && why.contains("rest_no_route"),
                "{why}"
            )
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    server.abort();
    Ok(())
}
