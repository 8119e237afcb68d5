mod common;

use common::*;
use woo_standin::{NewOrder, WooOptions};

#[tokio::test]
async fn state_file_keeps_the_shop_across_restarts() {
    let dir = std::env::temp_dir().join(format!("woo-standin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("shop.json");
    let _ = std::fs::remove_file(&file);

    let w = start_with(WooOptions {
        state_file: Some(file.clone()),
        ..Default::default()
    })
    .await;
    w.add_product(product("P-1", "Pierogi ruskie", "19.99", 7))
        .unwrap();
    let o = w
        .place_order(NewOrder {
            line_items: vec![("P-1".into(), 2)],
            ..NewOrder::default()
        })
        .unwrap();
    w.shutdown().await;
    assert!(file.exists());

    let w = start_with(WooOptions {
        state_file: Some(file.clone()),
        ..Default::default()
    })
    .await;
    let p = w.product_by_sku("P-1").unwrap();
    assert_eq!(p.name, "Pierogi ruskie");
    assert_eq!(p.stock_quantity, Some(5));
    assert_eq!(w.order(o.id).unwrap().total, o.total);
    // Ids continue after the restored ones.
    let id = w.add_product(product("P-2", "x", "1.00", 1)).unwrap();
    assert!(id > o.id);
    w.shutdown().await;

    // Seed file.
    let seed = dir.join("skus.txt");
    std::fs::write(
        &seed,
        "# sku;name;price;stock;tax class\nS-1;Chleb żytni;6,50;12;reduced-rate\nS-2\nP-1\n",
    )
    .unwrap();
    let w = start_with(WooOptions {
        state_file: Some(file.clone()),
        ..Default::default()
    })
    .await;
    assert_eq!(w.seed_from_file(&seed).unwrap(), 2);
    let s1 = w.product_by_sku("S-1").unwrap();
    assert_eq!(
        (
            s1.regular_price.as_str(),
            s1.tax_class.as_str(),
            s1.stock_quantity
        ),
        ("6.50", "reduced-rate", Some(12))
    );
    w.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
