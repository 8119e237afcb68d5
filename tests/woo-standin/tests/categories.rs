mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn categories_nest_reject_a_duplicate_name_under_one_parent_and_attach_to_products() {
    let w = start().await;
    let id = w
        .add_product(product("KAWA-1", "Kawa", "49.99", 5))
        .unwrap();

    let r = send_json(
        &w,
        reqwest::Method::POST,
        "/products/categories",
        json!({"name": "Żywność"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let food: Value = r.json().await.unwrap();
    assert_eq!(food["slug"], "zywnosc");
    assert_eq!(food["parent"], 0);
    let food_id = food["id"].as_u64().unwrap();

    let r = send_json(
        &w,
        reqwest::Method::POST,
        "/products/categories",
        json!({"name": "Kawa", "parent": food_id}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let coffee: Value = r.json().await.unwrap();
    let coffee_id = coffee["id"].as_u64().unwrap();

    // The same name under the same parent: term_exists, naming the existing id.
    let r = send_json(
        &w,
        reqwest::Method::POST,
        "/products/categories",
        json!({"name": "kawa", "parent": food_id}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "term_exists");
    assert_eq!(v["data"]["resource_id"], coffee_id);
    // Under another parent it is a new term with its own slug.
    let r = send_json(
        &w,
        reqwest::Method::POST,
        "/products/categories",
        json!({"name": "Kawa"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let other: Value = r.json().await.unwrap();
    assert_eq!(other["slug"], "kawa-2");
    // A parent that does not exist.
    let r = send_json(
        &w,
        reqwest::Method::POST,
        "/products/categories",
        json!({"name": "X", "parent": 99999}),
    )
    .await;
    assert_eq!(r.status(), 400);

    let r = get(&w, &format!("/products/categories?parent={food_id}")).await;
    assert_eq!(r.headers()["x-wp-total"], "1");
    let children: Value = r.json().await.unwrap();
    assert_eq!(children[0]["name"], "Kawa");

    let r = send_json(
        &w,
        reqwest::Method::POST,
        "/products/batch",
        json!({"update": [{"id": id, "name": "Kawa ziarnista 1 kg", "categories": [{"id": coffee_id}]}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let p = w.product(id).unwrap();
    assert_eq!(p.name, "Kawa ziarnista 1 kg");
    assert_eq!(
        p.categories.iter().map(|c| c.id).collect::<Vec<_>>(),
        [coffee_id]
    );
    let r = get(&w, &format!("/products/categories/{coffee_id}")).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["count"], 1);
    w.shutdown().await;
}
