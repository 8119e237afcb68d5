mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn sku_lookup_with_several_skus() {
    let w = start().await;
    for i in 0..5 {
        w.add_product(product(&format!("SKU-{i}"), &format!("P{i}"), "10.00", 5))
            .unwrap();
    }
    let r = get(&w, "/products?sku=SKU-1,SKU-3,NOPE").await;
    assert_eq!(r.status(), 200);
    let v: Vec<Value> = r.json().await.unwrap();
    let mut skus: Vec<&str> = v.iter().map(|p| p["sku"].as_str().unwrap()).collect();
    skus.sort();
    assert_eq!(skus, ["SKU-1", "SKU-3"]);
    // The parts are not trimmed: a space after the comma misses.
    let v: Vec<Value> = get(&w, "/products?sku=SKU-1,%20SKU-3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v.len(), 1);
    // Exact match, not a substring search.
    let v: Vec<Value> = get(&w, "/products?sku=SKU").await.json().await.unwrap();
    assert!(v.is_empty());
    assert_eq!(w.product_by_sku("SKU-3").unwrap().name, "P3");
    w.shutdown().await;
}

#[tokio::test]
async fn pagination_headers_and_per_page_limit() {
    let w = start().await;
    for i in 0..25 {
        w.add_product(product(&format!("A{i:02}"), "x", "1.00", 1))
            .unwrap();
    }
    let r = get(&w, "/products?per_page=10&page=2&orderby=id&order=asc").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-wp-total"], "25");
    assert_eq!(r.headers()["x-wp-totalpages"], "3");
    let link = r.headers()["link"].to_str().unwrap().to_string();
    assert!(link.contains("rel=\"next\""), "{link}");
    assert!(link.contains("rel=\"prev\""), "{link}");
    assert!(link.contains("page=3"), "{link}");
    let v: Vec<Value> = r.json().await.unwrap();
    assert_eq!(v.len(), 10);
    assert_eq!(v[0]["sku"], "A10");

    let r = get(&w, "/products?per_page=101").await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "rest_invalid_param");
    assert!(v["data"]["params"]["per_page"].is_string());

    // Past the last page: an empty list, not an error.
    let r = get(&w, "/products?per_page=10&page=9").await;
    assert_eq!(r.status(), 200);
    let v: Vec<Value> = r.json().await.unwrap();
    assert!(v.is_empty());
    w.shutdown().await;
}

#[tokio::test]
async fn batch_limit_and_per_item_errors() {
    let w = start().await;
    let mut ids = Vec::new();
    for i in 0..99 {
        ids.push(
            w.add_product(product(&format!("B{i}"), "x", "1.00", 1))
                .unwrap(),
        );
    }
    let mut updates: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "stock_quantity": 7}))
        .collect();
    updates.push(json!({"id": 999_999, "stock_quantity": 7}));
    assert_eq!(updates.len(), 100);
    let mut too_many = updates.clone();
    too_many.push(json!({"id": ids[0], "stock_quantity": 1}));

    let r = send_json(
        &w,
        Method::POST,
        "/products/batch",
        json!({"update": too_many}),
    )
    .await;
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_request_entity_too_large");
    assert_eq!(v["data"]["status"], 413);
    assert_eq!(w.product(ids[0]).unwrap().stock_quantity, Some(1));

    let r = send_json(
        &w,
        Method::POST,
        "/products/batch",
        json!({"update": updates}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let items = v["update"].as_array().unwrap();
    assert_eq!(items.len(), 100);
    assert_eq!(items[0]["stock_quantity"], 7);
    assert_eq!(items[99]["id"], 999_999);
    assert_eq!(
        items[99]["error"]["code"],
        "woocommerce_rest_product_invalid_id"
    );
    assert_eq!(items[99]["error"]["data"]["status"], 400);
    assert_eq!(w.product(ids[98]).unwrap().stock_quantity, Some(7));

    // create + delete in one batch, counted together.
    let r = send_json(
        &w,
        Method::POST,
        "/products/batch",
        json!({"create": [{"name": "Nowy", "sku": "NEW-1", "regular_price": "5.00"}], "delete": [ids[0]]}),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["create"][0]["sku"], "NEW-1");
    assert_eq!(v["delete"][0]["id"], ids[0]);
    assert!(w.product(ids[0]).is_none());

    // Batch items skip schema validation: a numeric price is PHP-cast, not rejected…
    let r = send_json(
        &w,
        Method::POST,
        "/products/batch",
        json!({"update": [{"id": ids[1], "regular_price": 12.5, "stock_quantity": "3"}]}),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["update"][0]["regular_price"], "12.5");
    assert_eq!(v["update"][0]["stock_quantity"], 3);
    // …while the same body on the single-item route is a 400.
    let r = send_json(
        &w,
        Method::PUT,
        &format!("/products/{}", ids[1]),
        json!({"regular_price": 12.5}),
    )
    .await;
    assert_eq!(r.status(), 400);
    w.shutdown().await;
}

#[tokio::test]
async fn validation_like_woocommerce() {
    let w = start().await;
    // A number where the schema says string.
    let r = send_json(
        &w,
        Method::POST,
        "/products",
        json!({"name": "X", "regular_price": 12.5}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "rest_invalid_param");
    assert_eq!(v["message"], "Invalid parameter(s): regular_price");

    let r = send_json(
        &w,
        Method::POST,
        "/products",
        json!({"name": "X", "status": "online"}),
    )
    .await;
    assert_eq!(r.status(), 400);

    // Non-numeric price text is sanitised away, not rejected (wc_format_decimal).
    let r = send_json(
        &w,
        Method::POST,
        "/products",
        json!({"name": "X", "sku": "S1", "regular_price": "12,50 zł", "manage_stock": true, "stock_quantity": -3}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["regular_price"], "1250");
    assert_eq!(v["stock_quantity"], -3);
    assert_eq!(v["stock_status"], "outofstock");
    let id = v["id"].as_u64().unwrap();

    // Duplicate SKU.
    let r = send_json(
        &w,
        Method::POST,
        "/products",
        json!({"name": "Y", "sku": "S1"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "product_invalid_sku");

    // Unknown id.
    let r = get(&w, "/products/424242").await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_product_invalid_id");

    // Invalid JSON.
    let r = client()
        .put(format!("{}/products/{id}", w.api_url()))
        .basic_auth(KEY, Some(SECRET))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "rest_invalid_json");

    // JSON without a JSON Content-Type is not read at all (WordPress): 200, nothing changes.
    let r = client()
        .put(format!("{}/products/{id}", w.api_url()))
        .basic_auth(KEY, Some(SECRET))
        .body(r#"{"name": "Zmieniona"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(w.product(id).unwrap().name, "X");
    // Form fields are read (PHP style).
    let r = client()
        .put(format!("{}/products/{id}", w.api_url()))
        .basic_auth(KEY, Some(SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=Formularz&meta_data[0][key]=k&meta_data[0][value]=v&stock_quantity=4")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let p = w.product(id).unwrap();
    assert_eq!(p.name, "Formularz");
    assert_eq!(p.stock_quantity, Some(4));
    assert_eq!(p.meta_data[0].key, "k");

    // PUT works and sale price drives price.
    let r = send_json(
        &w,
        Method::PUT,
        &format!("/products/{id}"),
        json!({"regular_price": "20.00", "sale_price": "15.00", "catalog_visibility": "hidden", "status": "private"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["price"], "15.00");
    assert_eq!(v["on_sale"], true);
    assert_eq!(v["catalog_visibility"], "hidden");
    assert_eq!(v["status"], "private");
    w.shutdown().await;
}

#[tokio::test]
async fn polish_characters_survive() {
    let w = start().await;
    let name = "Zażółć gęślą jaźń ĄĆĘŁŃÓŚŹŻ";
    let r = send_json(
        &w,
        Method::POST,
        "/products",
        json!({"name": name, "sku": "PL-1", "regular_price": "9.99"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let text = r.text().await.unwrap();
    // WooCommerce's field order: id first, _links last; wp_json_encode escapes non-ASCII and /.
    assert!(text.starts_with("{\"id\":"), "{text}");
    assert!(text.contains("\"_links\":{"));
    assert!(text.contains("Za\\u017c\\u00f3\\u0142\\u0107"), "{text}");
    assert!(text.contains("http:\\/\\/127.0.0.1"));
    assert!(!text.contains(name));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["name"], name);
    assert_eq!(v["slug"], "zazolc-gesla-jazn-acelnoszz");
    let v: Vec<Value> = get(&w, "/products?sku=PL-1").await.json().await.unwrap();
    assert_eq!(v[0]["name"], name);
    assert_eq!(w.product_by_sku("PL-1").unwrap().name, name);
    w.shutdown().await;
}

#[tokio::test]
async fn variations_list_and_batch() {
    let w = start().await;
    let parent = w
        .add_product(woo_standin::NewProduct {
            sku: "KOSZ".into(),
            name: "Koszulka".into(),
            kind: "variable".into(),
            ..Default::default()
        })
        .unwrap();
    let r = send_json(
        &w,
        Method::POST,
        &format!("/products/{parent}/variations/batch"),
        json!({"create": [
            {"sku": "KOSZ-S", "regular_price": "49.00", "manage_stock": true, "stock_quantity": 3},
            {"sku": "KOSZ-M", "regular_price": "49.00", "manage_stock": true, "stock_quantity": 4}
        ]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let vid = v["create"][0]["id"].as_u64().unwrap();
    let r = send_json(
        &w,
        Method::POST,
        &format!("/products/{parent}/variations/batch"),
        json!({"update": [{"id": vid, "stock_quantity": 9}, {"id": 777777, "stock_quantity": 1}]}),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["update"][0]["stock_quantity"], 9);
    assert_eq!(
        v["update"][1]["error"]["code"],
        "woocommerce_rest_product_variation_invalid_id"
    );
    let r = get(&w, &format!("/products/{parent}/variations")).await;
    assert_eq!(r.headers()["x-wp-total"], "2");
    let list: Vec<Value> = r.json().await.unwrap();
    assert!(list.iter().all(|x| x["parent_id"] == parent));
    let p: Value = get(&w, &format!("/products/{parent}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["variations"].as_array().unwrap().len(), 2);
    // Variation SKUs are not found by /products?sku= by default.
    let found: Vec<Value> = get(&w, "/products?sku=KOSZ-S").await.json().await.unwrap();
    assert!(found.is_empty());
    assert_eq!(w.product_by_sku("KOSZ-S").unwrap().stock_quantity, Some(9));
    // /products/{id} also serves and updates a variation id (wc_get_product has no type check).
    let v: Value = get(&w, &format!("/products/{vid}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["type"], "variation");
    assert_eq!(v["parent_id"], parent);
    let r = send_json(
        &w,
        Method::PUT,
        &format!("/products/{vid}"),
        json!({"stock_quantity": 2}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(w.product(vid).unwrap().stock_quantity, Some(2));
    w.shutdown().await;
}
