//! The WooCommerce connector against the WooCommerce stand-in on 127.0.0.1:
//! SKU lookup across pages and among variations, batch writes read back
//! from the shop, per-item rejections, and each class of whole-call error.

use std::collections::HashSet;
use std::time::Duration;

use functions::mapping::ProductChanges;
use functions::shop::woocommerce::{
    WooCommerce, WooConfig, WooCredentials, WooSettings, parse_retry_after,
};
use functions::shop::{CatalogueSink, ItemOutcome, Secret, ShopError, ShopItemId};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;
use woo_standin::{NewProduct, WooOptions, WooStandin};

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
