//! Mapping rules on awkward decimals: net ↔ gross at every Polish rate, both
//! rounding rules, stock sums with buffers and bad data, inactive products,
//! and diffs that never produce a no-op.

use chrono::{DateTime, TimeZone, Utc};
use contract::{PriceKind, PriceRecord, ProductRecord, StockRecord, VatRate};
use functions::mapping::{
    CategoryMode, InactivePolicy, MapError, PriceBasis, ProductChanges, Rounding, ShopOperation,
    ShopProductState, ShopRules, diff, gross_to_net, net_to_gross, not_yet_held, round_ending_99,
    round_grosz, shop_category, shop_category_path, shop_price, shop_stock, stock_level,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn pct(p: Decimal) -> VatRate {
    VatRate::Percent(p)
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + seconds, 0)
        .single()
        .unwrap_or_default()
}

fn rules() -> ShopRules {
    ShopRules::new("Detaliczna", vec!["MAG".into(), "SKLEP".into()])
}

fn price(kind: PriceKind, value: Decimal, vat: VatRate) -> PriceRecord {
    PriceRecord {
        sku: "MLOTEK-500".into(),
        price_list: "Detaliczna".into(),
        kind,
        value,
        currency: "PLN".into(),
        vat,
    }
}

fn stock(warehouse: &str, quantity: Decimal, reserved: Decimal, read_at: i64) -> StockRecord {
    StockRecord {
        sku: "MLOTEK-500".into(),
        warehouse: warehouse.into(),
        quantity,
        reserved,
        read_at: at(read_at),
    }
}

fn product(active: bool) -> ProductRecord {
    ProductRecord {
        sku: "MLOTEK-500".into(),
        erp_id: 7,
        name: " Młotek 500 g ".into(),
        ean: None,
        extra_eans: vec![],
        unit: "szt".into(),
        vat: pct(dec!(23)),
        group_path: vec!["Narzędzia".into(), "Ręczne".into(), "Młotki".into()],
        active,
        description: None,
        modified_at: None,
    }
}

#[test]
fn net_and_gross_at_every_polish_rate() {
    let cases = [
        // (net, rate, gross)
        (dec!(100), pct(dec!(23)), dec!(123.00)),
        (dec!(100), pct(dec!(8)), dec!(108.00)),
        (dec!(100), pct(dec!(5)), dec!(105.00)),
        (dec!(100), pct(dec!(0)), dec!(100.00)),
        (dec!(100), VatRate::Exempt, dec!(100.00)),
        (dec!(0.01), pct(dec!(23)), dec!(0.01)),
        // 8.13 × 1.23 = 9.9999 → 10.00
        (dec!(8.13), pct(dec!(23)), dec!(10.00)),
        // 1.5 × 1.05 = 1.575: exactly half a grosz → up
        (dec!(1.5), pct(dec!(5)), dec!(1.58)),
        // 12.345 × 1.08 = 13.3326
        (dec!(12.345), pct(dec!(8)), dec!(13.33)),
    ];
    for (net, vat, gross) in cases {
        assert_eq!(net_to_gross(net, vat), Ok(gross), "{net} net at {vat}");
    }
    let back = [
        // (gross, rate, net)
        (dec!(99.99), pct(dec!(23)), dec!(81.29)),
        (dec!(123), pct(dec!(23)), dec!(100.00)),
        (dec!(10.80), pct(dec!(8)), dec!(10.00)),
        (dec!(1.05), pct(dec!(5)), dec!(1.00)),
        (dec!(0.01), pct(dec!(23)), dec!(0.01)),
        (dec!(0.01), pct(dec!(8)), dec!(0.01)),
        (dec!(1234.565), pct(dec!(0)), dec!(1234.57)),
        (dec!(1234.565), VatRate::Exempt, dec!(1234.57)),
        (dec!(1234.565), VatRate::NotSubject, dec!(1234.57)),
        // 1.23 / 1.23 exactly; 0.02 / 1.23 = 0.01626 → 0.02
        (dec!(1.23), pct(dec!(23)), dec!(1.00)),
        (dec!(0.02), pct(dec!(23)), dec!(0.02)),
    ];
    for (gross, vat, net) in back {
        assert_eq!(gross_to_net(gross, vat), Ok(net), "{gross} gross at {vat}");
    }
}

#[test]
fn grosz_rounding_is_half_away_from_zero() {
    assert_eq!(round_grosz(dec!(1234.565)), dec!(1234.57));
    assert_eq!(round_grosz(dec!(1234.5649999)), dec!(1234.56));
    assert_eq!(round_grosz(dec!(0.005)), dec!(0.01));
    assert_eq!(round_grosz(dec!(0.0049)), dec!(0.00));
    assert_eq!(round_grosz(dec!(-0.005)), dec!(-0.01));
    assert_eq!(round_grosz(dec!(10)).to_string(), "10.00");
    assert_eq!(round_grosz(dec!(9.99)), dec!(9.99));
}

#[test]
fn ending_99_goes_up_except_one_grosz_above_a_99() {
    let cases = [
        (dec!(9.99), dec!(9.99)),
        (dec!(10.00), dec!(9.99)),
        (dec!(10.001), dec!(9.99)),
        (dec!(10.005), dec!(10.99)),
        (dec!(10.01), dec!(10.99)),
        (dec!(10.50), dec!(10.99)),
        (dec!(10.98), dec!(10.99)),
        (dec!(0.01), dec!(0.99)),
        (dec!(0.99), dec!(0.99)),
        (dec!(1.00), dec!(0.99)),
        (dec!(1.01), dec!(1.99)),
        (dec!(1234.565), dec!(1234.99)),
        (dec!(1235.00), dec!(1234.99)),
    ];
    for (value, expected) in cases {
        assert_eq!(round_ending_99(value), expected, "{value}");
        assert_eq!(round_ending_99(value).to_string(), expected.to_string());
    }
}

#[test]
fn shop_price_converts_and_rounds_by_the_rules() {
    let mut r = rules();
    // Gross list, gross shop: as is, to the grosz.
    let gross = price(PriceKind::Gross, dec!(99.99), pct(dec!(23)));
    assert_eq!(shop_price(&gross, &r), Ok(dec!(99.99)));
    // Net list, gross shop: 81.30 × 1.23 = 99.999 → 100.00.
    let net = price(PriceKind::Net, dec!(81.30), pct(dec!(23)));
    assert_eq!(shop_price(&net, &r), Ok(dec!(100.00)));
    r.rounding = Rounding::Ending99;
    assert_eq!(shop_price(&net, &r), Ok(dec!(99.99)));
    assert_eq!(shop_price(&gross, &r), Ok(dec!(99.99)));
    // Gross list, net shop.
    r.shop_prices = PriceBasis::Net;
    r.rounding = Rounding::Grosz;
    assert_eq!(shop_price(&gross, &r), Ok(dec!(81.29)));
    assert_eq!(shop_price(&net, &r), Ok(dec!(81.30)));
    // zw: net and gross are the same number.
    r.shop_prices = PriceBasis::Gross;
    let exempt = price(PriceKind::Net, dec!(1234.565), VatRate::Exempt);
    assert_eq!(shop_price(&exempt, &r), Ok(dec!(1234.57)));
}

#[test]
fn zero_negative_foreign_and_other_list_prices_are_never_published() {
    let mut r = rules();
    for value in [dec!(0), dec!(-1), dec!(0.00)] {
        let p = price(PriceKind::Gross, value, pct(dec!(23)));
        let err = shop_price(&p, &r).err();
        assert!(
            err.as_ref().is_some_and(MapError::is_park),
            "{value}: {err:?}"
        );
    }
    // Rounds to zero: parked too.
    let tiny = price(PriceKind::Gross, dec!(0.004), pct(dec!(23)));
    assert!(shop_price(&tiny, &r).is_err_and(|e| e.is_park()));
    // Another list: skipped quietly.
    let mut other = price(PriceKind::Gross, dec!(10), pct(dec!(23)));
    other.price_list = "Hurtowa".into();
    assert!(matches!(
        shop_price(&other, &r),
        Err(MapError::NotForShop { .. })
    ));
    assert!(!shop_price(&other, &r).is_err_and(|e| e.is_park()));
    // Another currency: parked.
    r.currency = Some("PLN".into());
    let mut eur = price(PriceKind::Gross, dec!(10), pct(dec!(23)));
    eur.currency = "EUR".into();
    assert!(shop_price(&eur, &r).is_err_and(|e| e.is_park()));
    // Out of Decimal's range: parked, not a panic.
    let huge = price(PriceKind::Net, Decimal::MAX, pct(dec!(23)));
    assert!(shop_price(&huge, &r).is_err_and(|e| e.is_park()));
}

#[test]
fn stock_sums_configured_warehouses_minus_buffer_floored() {
    let mut r = rules();
    let readings = [
        stock("MAG", dec!(10.5), dec!(2), 0),   // 8.5
        stock("sklep ", dec!(3), dec!(0), 0),   // 3, symbol matched loosely
        stock("SERWIS", dec!(100), dec!(0), 0), // not configured
    ];
    assert_eq!(shop_stock(&readings, &r), dec!(11));
    r.safety_buffer = dec!(2);
    assert_eq!(shop_stock(&readings, &r), dec!(9));
    r.safety_buffer = dec!(0.6); // 11.5 − 0.6 = 10.9 → 10
    assert_eq!(shop_stock(&readings, &r), dec!(10));
    r.safety_buffer = dec!(50);
    assert_eq!(shop_stock(&readings, &r), dec!(0));
    assert_eq!(shop_stock(&[], &r), dec!(0));
}

#[test]
fn a_negative_warehouse_counts_as_zero_and_is_reported() {
    let r = rules();
    let readings = [
        stock("MAG", dec!(1), dec!(4), 0), // −3
        stock("SKLEP", dec!(5), dec!(0), 0),
    ];
    let level = stock_level(&readings, &r);
    assert_eq!(level.quantity, dec!(5));
    assert_eq!(level.negative.len(), 1);
    assert_eq!(level.negative[0].warehouse, "MAG");
    assert_eq!(level.negative[0].available, dec!(-3));
    assert_eq!(shop_stock(&readings, &r), dec!(5));
}

#[test]
fn the_newest_reading_of_a_warehouse_wins() {
    let r = rules();
    let readings = [
        stock("MAG", dec!(9), dec!(0), 10),
        stock("MAG", dec!(2), dec!(0), 20),
        stock("MAG", dec!(7), dec!(0), 15),
    ];
    assert_eq!(shop_stock(&readings, &r), dec!(2));
}

#[test]
fn inactive_products_are_hidden_or_out_of_stock() {
    let readings = [stock("MAG", dec!(4), dec!(0), 0)];
    let p = price(PriceKind::Gross, dec!(49.90), pct(dec!(23)));
    let mut r = rules();

    let active = ShopProductState::from_records(&product(true), Some(&p), Some(&readings), &r);
    assert!(active.parked.is_empty());
    assert!(active.state.visible);
    assert_eq!(active.state.stock_quantity, Some(4));
    assert_eq!(active.state.regular_price, Some(dec!(49.90)));
    assert_eq!(active.state.name, "Młotek 500 g");
    assert_eq!(
        active.state.category.as_deref(),
        Some("Narzędzia > Ręczne > Młotki")
    );

    r.inactive = InactivePolicy::Hide;
    let hidden = ShopProductState::from_records(&product(false), Some(&p), Some(&readings), &r);
    assert!(!hidden.state.visible);
    assert_eq!(hidden.state.stock_quantity, Some(4));

    r.inactive = InactivePolicy::OutOfStock;
    let out = ShopProductState::from_records(&product(false), Some(&p), None, &r);
    assert!(out.state.visible);
    assert_eq!(out.state.stock_quantity, Some(0));

    r.inactive = InactivePolicy::HideAndOutOfStock;
    let both = ShopProductState::from_records(&product(false), Some(&p), Some(&readings), &r);
    assert!(!both.state.visible);
    assert_eq!(both.state.stock_quantity, Some(0));
}

#[test]
fn a_bad_price_leaves_the_price_alone_and_is_parked() {
    let readings = [stock("MAG", dec!(4), dec!(6), 0)];
    let zero = price(PriceKind::Gross, dec!(0), pct(dec!(23)));
    let mapped =
        ShopProductState::from_records(&product(true), Some(&zero), Some(&readings), &rules());
    assert_eq!(mapped.state.regular_price, None);
    assert_eq!(mapped.state.stock_quantity, Some(0));
    // The zero price and the negative warehouse.
    assert_eq!(mapped.parked.len(), 2, "{:?}", mapped.parked);
}

#[test]
fn records_of_another_sku_never_set_this_product() {
    let mut other_price = price(PriceKind::Gross, dec!(5), pct(dec!(23)));
    other_price.sku = "INNY".into();
    let mut other_stock = stock("MAG", dec!(50), dec!(0), 0);
    other_stock.sku = "INNY".into();
    let readings = [other_stock, stock("SKLEP", dec!(2), dec!(0), 0)];
    let mapped = ShopProductState::from_records(
        &product(true),
        Some(&other_price),
        Some(&readings),
        &rules(),
    );
    assert_eq!(mapped.state.regular_price, None);
    assert_eq!(mapped.state.stock_quantity, Some(2));
    assert_eq!(mapped.parked.len(), 2, "{:?}", mapped.parked);
}

#[test]
fn categories_vat_classes_and_units_follow_the_rules() {
    let mut r = rules();
    let path = vec![
        "Narzędzia".to_owned(),
        " Ręczne ".to_owned(),
        "Młotki".to_owned(),
    ];
    assert_eq!(
        shop_category(&path, &r).as_deref(),
        Some("Narzędzia > Ręczne > Młotki")
    );
    assert_eq!(
        shop_category_path(&path, &r),
        Some(vec!["Narzędzia".into(), "Ręczne".into(), "Młotki".into()]),
        "nested categories, names trimmed"
    );
    r.categories = CategoryMode::Leaf;
    assert_eq!(shop_category(&path, &r).as_deref(), Some("Młotki"));
    assert_eq!(shop_category_path(&path, &r), Some(vec!["Młotki".into()]));
    r.categories = CategoryMode::None;
    assert_eq!(shop_category(&path, &r), None);
    assert_eq!(shop_category_path(&path, &r), None);
    r.categories = CategoryMode::Path;
    assert_eq!(shop_category(&[], &r), None);
    assert_eq!(shop_category_path(&[], &r), None);

    let rules = ShopRules::from_json(
        r#"{"price_list": "Detaliczna", "warehouses": ["MAG"],
            "vat_classes": {"23": "", "8": "reduced-rate", "zw": "zero-rate"},
            "units": {"szt": "pcs"}, "rounding": "ending_99", "inactive": "out_of_stock"}"#,
    );
    let rules = match rules {
        Ok(rules) => rules,
        Err(err) => panic!("{err}"),
    };
    assert_eq!(rules.rounding, Rounding::Ending99);
    let mapped = ShopProductState::from_records(&product(true), None, None, &rules);
    assert_eq!(mapped.state.tax_class.as_deref(), Some(""));
    assert_eq!(mapped.state.unit.as_deref(), Some("pcs"));
    assert_eq!(mapped.state.regular_price, None);
    assert_eq!(mapped.state.stock_quantity, None);
    let mut p5 = product(true);
    p5.vat = pct(dec!(5));
    let unmapped = ShopProductState::from_records(&p5, None, None, &rules);
    assert_eq!(unmapped.state.tax_class, None);
    assert_eq!(unmapped.parked.len(), 1);
}

#[test]
fn invalid_rules_are_refused() {
    for bad in [
        r#"{"price_list": "", "warehouses": ["MAG"]}"#,
        r#"{"price_list": "D", "warehouses": []}"#,
        r#"{"price_list": "D", "warehouses": [" "]}"#,
        r#"{"price_list": "D", "warehouses": ["MAG"], "safety_buffer": "-1"}"#,
        r#"{"price_list": "D", "warehouses": ["MAG"], "rounding": "up"}"#,
        r#"{"price_list": "D", "warehouses": ["MAG"], "vat_classes": {"x": ""}}"#,
        r#"{"price_list": "D", "warehouses": ["MAG"], "warehouse": ["MAG"]}"#,
    ] {
        assert!(ShopRules::from_json(bad).is_err(), "{bad}");
    }
    // A buffer of zero, minus zero, or above zero is fine.
    for good in ["0", "-0", "2", "0.5"] {
        let json =
            format!(r#"{{"price_list": "D", "warehouses": ["MAG"], "safety_buffer": "{good}"}}"#);
        assert!(ShopRules::from_json(&json).is_ok(), "{json}");
    }
}

fn state(price: Option<Decimal>, stock: Option<i64>, visible: bool) -> ShopProductState {
    ShopProductState {
        sku: "MLOTEK-500".into(),
        regular_price: price,
        stock_quantity: stock,
        visible,
        name: "Młotek".into(),
        category: None,
        category_path: None,
        tax_class: None,
        unit: None,
    }
}

#[test]
fn diff_sends_only_what_changed_and_never_a_no_op() {
    let old = state(Some(dec!(10.00)), Some(3), true);
    // Same values at other scales: nothing the shop is sent changes.
    let same = state(Some(dec!(10.0)), Some(3), true);
    assert_eq!(diff("woo", Some(&old), &same, at(0)), None);
    // A renamed, regrouped product: name, category path and unit go out.
    let mut renamed = same.clone();
    renamed.name = "Młotek stalowy".into();
    renamed.category_path = Some(vec!["Narzędzia".into(), "Młotki".into()]);
    renamed.unit = Some("szt.".into());
    assert_eq!(
        diff("woo", Some(&old), &renamed, at(0)).map(|op| op.changes),
        Some(ProductChanges {
            name: Some("Młotek stalowy".into()),
            category: Some(vec!["Narzędzia".into(), "Młotki".into()]),
            unit: Some("szt.".into()),
            ..ProductChanges::default()
        })
    );
    // Names the shop keeps (`names: shop`) arrive empty and are never sent.
    let mut shop_named = same.clone();
    shop_named.name = String::new();
    assert_eq!(diff("woo", Some(&old), &shop_named, at(0)), None);
    // Fields we do not know are not ours to say.
    assert_eq!(
        diff("woo", Some(&old), &state(None, None, true), at(0)),
        None
    );

    let new = state(Some(dec!(10.00)), Some(2), true);
    let op = diff("woo", Some(&old), &new, at(5));
    assert_eq!(
        op,
        Some(ShopOperation {
            shop: "woo".into(),
            sku: "MLOTEK-500".into(),
            changes: ProductChanges {
                stock_quantity: Some(2),
                ..ProductChanges::default()
            },
            source_time: at(5),
            reconcile: false,
        })
    );
    let hidden = diff(
        "woo",
        Some(&old),
        &state(Some(dec!(12)), Some(3), false),
        at(5),
    );
    assert_eq!(
        hidden.map(|op| op.changes),
        Some(ProductChanges {
            regular_price: Some(dec!(12)),
            visible: Some(false),
            ..ProductChanges::default()
        })
    );
    // Unknown shop state: everything we know is sent.
    let first = diff("woo", None, &old, at(0)).map(|op| op.changes);
    assert_eq!(
        first,
        Some(ProductChanges {
            regular_price: Some(dec!(10.00)),
            stock_quantity: Some(3),
            visible: Some(true),
            name: Some("Młotek".into()),
            ..ProductChanges::default()
        })
    );
}

#[test]
fn operations_travel_as_json_with_decimal_strings_and_coalesce_newest_first() {
    let op = ShopOperation {
        shop: "woo".into(),
        sku: "A".into(),
        changes: ProductChanges {
            regular_price: Some(dec!(81.29)),
            stock_quantity: Some(4),
            ..ProductChanges::default()
        },
        source_time: at(10),
        reconcile: false,
    };
    let json = serde_json::to_value(&op).unwrap_or_default();
    assert_eq!(json["changes"]["regular_price"], "81.29");
    assert_eq!(json["changes"]["stock_quantity"], 4);
    assert!(json["changes"].get("visible").is_none());
    let back: Option<ShopOperation> = serde_json::from_value(json).ok();
    assert_eq!(back.as_ref(), Some(&op));

    let older = ShopOperation {
        changes: ProductChanges {
            stock_quantity: Some(9),
            visible: Some(false),
            ..ProductChanges::default()
        },
        source_time: at(5),
        ..op.clone()
    };
    // Whatever the arrival order, the newer reading's fields win.
    for merged in [
        op.clone().coalesce(older.clone()),
        older.clone().coalesce(op.clone()),
    ] {
        let merged = merged.map(|m| (m.changes, m.source_time));
        assert_eq!(
            merged,
            Some((
                ProductChanges {
                    regular_price: Some(dec!(81.29)),
                    stock_quantity: Some(4),
                    visible: Some(false),
                    ..ProductChanges::default()
                },
                at(10)
            ))
        );
    }
    // A forced pass (reconcile) in either is kept whichever is newer.
    let forced = ShopOperation {
        reconcile: true,
        ..older.clone()
    };
    for merged in [
        op.clone().coalesce(forced.clone()),
        forced.clone().coalesce(op.clone()),
    ] {
        assert_eq!(merged.map(|m| m.reconcile), Some(true));
    }
    assert_eq!(
        op.clone().coalesce(older.clone()).map(|m| m.reconcile),
        Some(false)
    );
    let other = ShopOperation {
        sku: "B".into(),
        ..op.clone()
    };
    assert_eq!(op.coalesce(other), None);
}

#[test]
fn only_what_the_shop_does_not_hold_yet_is_written() {
    let changes = ProductChanges {
        regular_price: Some(dec!(81.29)),
        stock_quantity: Some(4),
        visible: Some(true),
        name: Some("Młotek".into()),
        ..ProductChanges::default()
    };
    // Nothing known of the shop: all of it.
    assert_eq!(not_yet_held(&changes, None), changes);
    let held = ProductChanges {
        regular_price: Some(dec!(81.29)),
        stock_quantity: Some(5),
        visible: None,
        name: Some("Młotek".into()),
        tax_class: Some("reduced-rate".into()),
        ..ProductChanges::default()
    };
    // Same price and name: dropped; other stock: kept; visibility the shop
    // was never told: kept; a tax class it holds that is not being written:
    // not written.
    assert_eq!(
        not_yet_held(&changes, Some(&held)),
        ProductChanges {
            stock_quantity: Some(4),
            visible: Some(true),
            ..ProductChanges::default()
        }
    );
    // All held: nothing to write.
    assert!(not_yet_held(&changes, Some(&changes)).is_empty());
}
