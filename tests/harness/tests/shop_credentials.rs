//! Shop credentials saved the way the console's Shops page saves them
//! (`CredentialsSecret::update`) take effect in a warm function within the
//! settings' 30 s, nothing restarted: the running webhook refuses a
//! delivery signed with the old webhook secret and takes one signed with
//! the new. Two saves at once both land: the read-modify-write of the one
//! secret runs under a lease in the state table, so neither overwrites the
//! other's field.

use std::time::Duration;

use anyhow::Context;
use functions::shop::woo_order::sign;
use functions::shop_settings::{CACHE, CredentialsRecord, CredentialsSecret};
use harness::cloud::LocalCloud;
use harness::standins::WooStandinProcess;
use harness::wait_for;
use serde_json::{Value, json};

const NEW_WEBHOOK_SECRET: &str = "nowy-sekret-webhooka-0815";
const NEW_CONSUMER_SECRET: &str = "cs_nowy_klucz_0815";

/// Posts a delivery of a topic the ERP does not take, signed with
/// `secret`: the webhook's status (200 once the signature is good).
async fn delivery_signed_with(webhook: &str, secret: &str) -> anyhow::Result<u16> {
    let body = serde_json::to_vec(&json!({"id": 7, "sku": "KAWA-1"}))?;
    let response = reqwest::Client::new()
        .post(format!("{webhook}/sklep"))
        .header("content-type", "application/json")
        .header("x-wc-webhook-topic", "product.updated")
        .header("x-wc-webhook-signature", sign(secret.as_bytes(), &body))
        .body(body)
        .send()
        .await?;
    Ok(response.status().as_u16())
}

/// The stack's shop credentials secret: the one holding the shop's keys.
async fn shop_secret_arn(secrets: &aws_sdk_secretsmanager::Client) -> anyhow::Result<String> {
    for listed in secrets.list_secrets().send().await?.secret_list() {
        let Some(arn) = listed.arn() else { continue };
        let value = secrets.get_secret_value().secret_id(arn).send().await?;
        let json: Value =
            serde_json::from_str(value.secret_string().unwrap_or("null")).unwrap_or(Value::Null);
        if json["sklep"]["consumer_key"].is_string() {
            return Ok(arn.to_owned());
        }
    }
    anyhow::bail!("no secret holds the shop's credentials")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_credentials_reach_a_warm_webhook_and_two_saves_at_once_both_land()
-> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let shop = WooStandinProcess::start_with(None, Some(&[]), None, &dir)?;
    let (shops, _) = shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20);
    let cloud = LocalCloud::start_with(
        &dir,
        "shop-credentials",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
    )?;
    let webhook = cloud.webhook_url.clone().context("no webhook URL")?;

    // The webhook is warm with the credentials of its cold start.
    assert_eq!(
        delivery_signed_with(&webhook, &shop.webhook_secret).await?,
        200
    );
    assert_eq!(
        delivery_signed_with(&webhook, NEW_WEBHOOK_SECRET).await?,
        401
    );

    // Two operators save one field each at the same moment.
    let sdk = harness::emulator::sdk_config(&cloud.emulator.endpoint()).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = cloud.stack.output("StateTableName")?.to_owned();
    let arn = shop_secret_arn(&secrets).await?;
    let secret = CredentialsSecret::new(
        secrets.clone(),
        &arn,
        CredentialsRecord::new(dynamodb, &table),
    );
    let entry: Vec<Value> = serde_json::from_str(&shops)?;
    let config = functions::shops::read_shop(entry.first().context("the shop")?.clone())?;
    let webhook_field = [("webhook_secret".to_owned(), NEW_WEBHOOK_SECRET.to_owned())];
    let consumer_field = [("consumer_secret".to_owned(), NEW_CONSUMER_SECRET.to_owned())];
    let (first, second) = tokio::join!(
        secret.update(&config, &webhook_field),
        secret.update(&config, &consumer_field),
    );
    assert_eq!(first.map_err(anyhow::Error::msg)?, ["webhook_secret"]);
    assert_eq!(second.map_err(anyhow::Error::msg)?, ["consumer_secret"]);
    let stored = secrets.get_secret_value().secret_id(&arn).send().await?;
    let stored: Value = serde_json::from_str(stored.secret_string().unwrap_or("null"))?;
    assert_eq!(
        stored["sklep"]["webhook_secret"], NEW_WEBHOOK_SECRET,
        "neither save lost the other's field"
    );
    assert_eq!(stored["sklep"]["consumer_secret"], NEW_CONSUMER_SECRET);
    assert_eq!(stored["sklep"]["consumer_key"], shop.consumer_key.as_str());

    // The warm webhook takes the new secret within the settings' cache.
    let saved = std::time::Instant::now();
    wait_for(
        "the webhook to take the new secret",
        CACHE + Duration::from_secs(15),
        || async {
            Ok((delivery_signed_with(&webhook, NEW_WEBHOOK_SECRET).await? == 200).then_some(()))
        },
    )
    .await?;
    println!("new webhook secret in use after {:?}", saved.elapsed());
    assert_eq!(
        delivery_signed_with(&webhook, &shop.webhook_secret).await?,
        401,
        "the old secret no longer signs"
    );
    Ok(())
}
