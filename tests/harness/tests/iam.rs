//! IAM as AWS enforces it, on the local run's real pieces.
//!
//! The audit: every function runs under its own role and the agent as the
//! stack's agent user, with the emulator checking each call against their
//! policies and logging it. After a run that exercises every identity (a
//! full ERP → shop sync, a shop order written into the ERP and
//! acknowledged, an order parked and mailed by the watchdog's alert, admin
//! status, the scheduled poller and watchdog), each
//! identity's calls are compared with its deployed grants: a call not
//! granted fails (AWS would refuse it), and so does a grant never called,
//! unless it is listed in [`NOT_REACHED`] with the path that needs it (a
//! listed grant that is no longer granted, or that the run did call, fails
//! too, so the list only ever shrinks to the truth).
//!
//! Enforcement bites: a stack whose webhook role lacks `dynamodb:Query`
//! (the grant the webhook once missed) and whose agent user lacks
//! `sqs:ReceiveMessage` refuses exactly those calls.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, ensure};
use aws_sdk_dynamodb::types::AttributeValue;
use harness::cloud::{LocalCloud, start_agent};
use harness::iam::{Identity, audit, read_calls};
use harness::standins::{OptimaStandin, WooStandinProcess};
use harness::wait_for;
use serde_json::{Value, json};
use tiberius::Query;

const AGENT_TOML: &str = "\n[sync]\npoll_seconds = 1\noverlap_seconds = 5\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n\n[orders]\nwarehouse = \"MAG\"\ndefault_payment_form = \"przelew\"\ndefault_shipping_service = \"TRANSPORT\"\nprogress_seconds = 1\ncommand_visibility_seconds = 10\n\n[orders.payment_forms]\nbacs = \"przelew\"\n";

/// Whether a resource's name is `suffix`'s: it ends so, or (a secret,
/// whose ARN Secrets Manager ends in a random `-XXXXXX`) it does but for that.
fn named(resource: &str, suffix: &str) -> bool {
    resource.ends_with(suffix)
        || resource
            .rsplit_once('-')
            .is_some_and(|(name, _)| name.ends_with(suffix))
}

/// Granted, reachable in the code, but not called by the audit's run:
/// (identity, action, resource name suffix, the path that calls it).
const NOT_REACHED: &[(&str, &str, &str, &str)] = &[
    (
        "admin",
        "secretsmanager:PutSecretValue",
        "-shop-secrets",
        "shop_settings::CredentialsSecret::update: credentials saved in the Shops page (console_shops)",
    ),
    (
        "admin",
        "dynamodb:PutItem",
        "state",
        "console::log::ActivityLog::record: an operator signs in or acts in the console (console.rs, console_auth.rs)",
    ),
    (
        "admin",
        "dynamodb:BatchGetItem",
        "state",
        "returns::ReturnStore::list: /status with a buyer's return listed (orders_e2e, allegro_e2e)",
    ),
    (
        "ingest",
        "s3:PutObject",
        "invoices/*",
        "ingest::store_invoice: an order realised into an invoice (orders_e2e)",
    ),
    (
        "webhook",
        "s3:GetObject",
        "invoices/*",
        "webhook::invoice: a buyer opening an invoice link (orders_e2e)",
    ),
    (
        "shop-push",
        "sqs:ChangeMessageVisibility",
        "shop-ops",
        "shop_push::delay_redelivery: a shop down past the last attempt (shop_flow, under the same enforcement)",
    ),
    (
        "agent",
        "sqs:ChangeMessageVisibility",
        "erp-commands.fifo",
        "agent::sqs::change_command_visibility: a command put back for later (orders_agent)",
    ),
    (
        "ingest",
        "dynamodb:Query",
        "-state",
        "agent_versions and the zeroed-SKU queries: a command re-sent, a silent agent back",
    ),
    (
        "poller",
        "dynamodb:BatchGetItem",
        "-state",
        "orders::complete_vat: an order of a platform that states gross prices only (Allegro; the run's shop is WooCommerce)",
    ),
    (
        "poller",
        "secretsmanager:GetSecretValue",
        "-token-*",
        "token_secrets::SecretTokens::load: an Allegro shop's tokens (the run's shop is WooCommerce)",
    ),
    (
        "poller",
        "secretsmanager:PutSecretValue",
        "-token-*",
        "token_secrets::SecretTokens::save: an Allegro token refresh",
    ),
    (
        "poller",
        "secretsmanager:CreateSecret",
        "-token-*",
        "token_secrets::SecretTokens::save: an Allegro shop's first refresh",
    ),
    (
        "shop-push",
        "secretsmanager:GetSecretValue",
        "-token-*",
        "token_secrets::SecretTokens::load: an Allegro shop's tokens (the run's shop is WooCommerce)",
    ),
    (
        "shop-push",
        "secretsmanager:PutSecretValue",
        "-token-*",
        "token_secrets::SecretTokens::save: an Allegro token refresh",
    ),
    (
        "shop-push",
        "secretsmanager:CreateSecret",
        "-token-*",
        "token_secrets::SecretTokens::save: an Allegro shop's first refresh",
    ),
    (
        "poller",
        "dynamodb:DeleteItem",
        "-state",
        "token_secrets::SecretTokens::release: the Allegro token refresh lease given back",
    ),
    (
        "poller",
        "dynamodb:Query",
        "-state",
        "agent_versions via orders::send_command: an order only the poll found (orders_cloud)",
    ),
    (
        "poller",
        "sqs:SendMessage",
        "erp-commands.fifo",
        "orders::send_command: an order only the poll found, its webhook lost (orders_cloud)",
    ),
    (
        "shop-push",
        "dynamodb:DeleteItem",
        "-state",
        "catalog::write_one's delete and orders' parked-order clean-up",
    ),
    (
        "shop-push",
        "dynamodb:Query",
        "-state",
        "catalog's zeroed-SKU and parked listings",
    ),
    (
        "watchdog",
        "dynamodb:BatchGetItem",
        "-state",
        "a silent agent's return (shop_flow)",
    ),
    (
        "watchdog",
        "dynamodb:DeleteItem",
        "-state",
        "catalog::unzeroed_writes: a silent agent's return, once restored; alerts::release: an alert whose mail failed",
    ),
    (
        "watchdog",
        "dynamodb:Query",
        "/index/held-stock",
        "catalog::low_stock_page: a silent agent's low stock (shop_flow)",
    ),
    (
        "watchdog",
        "dynamodb:UpdateItem",
        "-state",
        "state::mark_stale: a silent agent",
    ),
    (
        "watchdog",
        "sqs:SendMessage",
        "shop-ops",
        "shop_ops::queue: zeroing and restoring a silent agent's stock",
    ),
    (
        "webhook",
        "dynamodb:DeleteItem",
        "-state",
        "orders::rearm: a parked order the shop fixed, sent again (orders_e2e::a_parked_order_fixed_in_the_shop_goes_in_again)",
    ),
    (
        "webhook",
        "dynamodb:BatchGetItem",
        "-state",
        "orders::complete_vat: an order of a platform that states gross prices only (Allegro; the run's shop is WooCommerce)",
    ),
];

fn address() -> Value {
    json!({"first_name": "Anna", "last_name": "Nowak", "address_1": "ul. Lipowa 7",
           "city": "Poznań", "postcode": "60-001", "country": "PL",
           "email": "anna@example.pl", "phone": "+48 600 100 200"})
}

async fn ro_number(erp: &OptimaStandin, shop_number: &str) -> anyhow::Result<Option<String>> {
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let mut query = Query::new(
        "SELECT TrN_NumerPelny FROM CDN.TraNag WHERE TrN_NumerObcy = CAST(@P1 AS varchar(256))",
    );
    query.bind(shop_number);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    Ok(rows
        .first()
        .and_then(|r| r.get::<&str, _>("TrN_NumerPelny").map(str::to_owned)))
}

fn show(name: &str, identity: &Identity) -> String {
    let list = |set: &BTreeSet<(String, String)>| {
        set.iter()
            .map(|(a, r)| format!("{a} on {r}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{name}:\n  granted: {}\n  called:  {}\n  missing: {}\n  unused:  {}\n",
        list(&identity.granted),
        list(&identity.called),
        list(&identity.missing()),
        list(&identity.unused()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_identity_calls_exactly_what_its_policy_grants() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    // E2E_KEEP=1 keeps the logs, state and the emulator's IAM log.
    let dir = tmp.path().to_path_buf();
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 60, &dir)?;
    let skus = erp.skus().await?;
    let shop = WooStandinProcess::start_with(None, Some(&skus), None, &dir)?;
    let cloud = LocalCloud::start_with_host_args(
        &dir,
        "iam-audit",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
        &[
            "--schedule-every",
            "poller=2",
            "--schedule-every",
            "watchdog=2",
        ],
    )?;
    let webhook = cloud.webhook_url.clone().context("no webhook URL")?;
    shop.register_order_webhooks(&format!("{webhook}/sklep"))
        .await?;
    let config = dir.join("agent.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 2, AGENT_TOML)?;
    let _agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &dir.join("agent.log"),
        &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
    )?;

    // ERP → shop: the first full pass lands (ingest, shop-push).
    let client = reqwest::Client::new();
    wait_for(
        "the first full pass in the shop",
        Duration::from_secs(120),
        || async {
            let products: Vec<Value> = client
                .get(format!("{}/__standin/products", shop.base_url))
                .send()
                .await?
                .json()
                .await?;
            let priced = products
                .iter()
                .filter(|p| p["regular_price"] != "10.00")
                .count();
            Ok((priced > products.len() * 9 / 10).then_some(()))
        },
    )
    .await?;

    // Shop → ERP: an order through the webhook, written by the agent and
    // acknowledged back to the cloud.
    let order = shop
        .place_order(json!({
            "line_items": [[skus[0], 1]],
            "billing": address(),
            "shipping": address(),
            "payment_method": "bacs",
            "shipping_total": "10.00",
            "status": "processing"
        }))
        .await?;
    let number = order["number"].as_str().context("order number")?.to_owned();
    wait_for("the order's RO in Optima", Duration::from_secs(90), || {
        let number = number.clone();
        let erp = &erp;
        async move { ro_number(erp, &number).await }
    })
    .await?;
    // An order the agent parks (it has no address), sent again
    // from the admin URL: the admin's retry grants are called.
    let parked = shop
        .place_order(json!({
            "line_items": [[skus[0], 1]],
            "billing": {"email": "bez-adresu@example.pl"},
            "payment_method": "bacs",
            "status": "processing"
        }))
        .await?;
    let parked_id = parked["id"].as_u64().context("order id")?.to_string();
    wait_for(
        "the order without an address parked",
        Duration::from_secs(90),
        || async { Ok(cloud.parked_order(&parked_id).await?.map(|_| ())) },
    )
    .await?;
    // The watchdog mails it (its claim in the state table, then
    // sns:Publish) before it is sent again.
    let dynamodb = aws_sdk_dynamodb::Client::new(
        &harness::emulator::sdk_config(&cloud.emulator.endpoint()).await,
    );
    let table = cloud.stack.output("StateTableName")?.to_owned();
    wait_for(
        "the watchdog's alert about the parked order",
        Duration::from_secs(30),
        || async {
            let claim = dynamodb
                .get_item()
                .table_name(&table)
                .key("pk", AttributeValue::S("alert".into()))
                .key("sk", AttributeValue::S(format!("order#sklep#{parked_id}")))
                .consistent_read(true)
                .send()
                .await?;
            Ok(claim.item.map(|_| ()))
        },
    )
    .await?;
    let retried = cloud.retry_order("sklep", &parked_id).await?;
    ensure!(retried["retried"]["result"] == "sent", "{retried}");
    // The acknowledgements travel back through the events queue.
    tokio::time::sleep(Duration::from_secs(5)).await;
    cloud.status().await?;

    let calls = read_calls(cloud.emulator.iam_calls_file())?;
    let identities = audit(&cloud.stack, &calls)?;
    let report: String = identities
        .iter()
        .map(|(name, identity)| show(name, identity))
        .collect();
    println!("{report}");

    let mut problems = Vec::new();
    for (name, identity) in &identities {
        for (action, resource) in identity.missing() {
            problems.push(format!(
                "{name} calls {action} on {resource}, which its policy does not grant"
            ));
        }
        for (action, resource) in identity.unused() {
            let listed = NOT_REACHED
                .iter()
                .any(|(who, a, r, _)| who == name && *a == action && named(&resource, r));
            if !listed {
                problems.push(format!(
                    "{name} is granted {action} on {resource} but never calls it: remove the grant, or list the path that needs it in NOT_REACHED"
                ));
            }
        }
    }
    for (who, action, resource, why) in NOT_REACHED {
        let identity = identities
            .get(*who)
            .with_context(|| format!("NOT_REACHED names `{who}`, which the stack does not have"))?;
        let granted = identity
            .granted
            .iter()
            .any(|(a, r)| a == action && named(r, resource));
        let called = identity
            .called
            .iter()
            .any(|(a, r)| a == action && named(r, resource));
        if !granted {
            problems.push(format!(
                "NOT_REACHED lists {who} {action} on {resource} ({why}), which is no longer granted: drop it from the list"
            ));
        }
        if called {
            problems.push(format!(
                "NOT_REACHED lists {who} {action} on {resource} ({why}), which this run calls: drop it from the list"
            ));
        }
    }
    for expected in [
        "ingest",
        "shop-push",
        "webhook",
        "poller",
        "watchdog",
        "admin",
        "agent",
    ] {
        ensure!(
            identities
                .get(expected)
                .is_some_and(|i| !i.called.is_empty()),
            "the run made no call as {expected}:\n{report}"
        );
    }
    ensure!(problems.is_empty(), "{}\n\n{report}", problems.join("\n"));
    Ok(())
}

/// Enforcement bites: with one grant removed from the webhook's role and one
/// from the agent user's policy, exactly those calls are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_template_does_not_grant_is_refused() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    // E2E_KEEP=1 keeps the logs, state and the emulator's IAM log.
    let dir = tmp.path().to_path_buf();
    let template = std::fs::read_to_string(harness::stack::template_path())?;
    let webhook_grant = "Action: [dynamodb:GetItem, dynamodb:UpdateItem, dynamodb:Query, dynamodb:PutItem, dynamodb:BatchGetItem, dynamodb:DeleteItem]";
    let agent_grant =
        "Action: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility]";
    for grant in [webhook_grant, agent_grant] {
        ensure!(
            template.matches(grant).count() == 1,
            "the template no longer has exactly one `{grant}`: update this test"
        );
    }
    let narrowed = template
        .replace(
            webhook_grant,
            "Action: [dynamodb:GetItem, dynamodb:UpdateItem, dynamodb:PutItem, dynamodb:BatchGetItem]",
        )
        .replace(
            agent_grant,
            "Action: [sqs:DeleteMessage, sqs:ChangeMessageVisibility]",
        );
    let narrowed_path = dir.join("narrowed-template.yaml");
    std::fs::write(&narrowed_path, narrowed)?;

    let shop = WooStandinProcess::start_with(None, Some(&["A-1".to_owned()]), None, &dir)?;
    let cloud = LocalCloud::start_from_template(
        &dir,
        "iam-narrowed",
        Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
        &[],
        &[],
        Some(&narrowed_path),
    )?;
    // The refusals are this test's subject: it judges them below.
    cloud.emulator.expect_refusals();
    let webhook = cloud.webhook_url.clone().context("no webhook URL")?;
    shop.register_order_webhooks(&format!("{webhook}/sklep"))
        .await?;
    let config = dir.join("agent.toml");
    cloud.write_agent_config(
        &config,
        "biuro",
        "server=tcp:127.0.0.1,1;database=CDN_Firma;user=sa;encrypt=DANGER_PLAINTEXT",
        1,
    )?;
    let mut agent = start_agent(
        &config,
        &cloud.emulator.endpoint(),
        &dir.join("agent.log"),
        &[],
    )?;

    // The webhook stores the order, then cannot read the agents' contract
    // version to write its command: AccessDenied, as in AWS before the fix.
    shop.place_order(json!({
        "line_items": [["A-1", 1]],
        "billing": address(),
        "shipping": address(),
        "payment_method": "bacs",
        "status": "processing"
    }))
    .await?;
    let refused = |action: &'static str, resource: &'static str| {
        let file = cloud.emulator.iam_calls_file().to_path_buf();
        let stack = cloud.stack.clone();
        move || {
            let file = file.clone();
            let stack = stack.clone();
            async move {
                let calls = read_calls(&file)?;
                let identities = audit(&stack, &calls)?;
                Ok(identities.values().find_map(|i| {
                    i.refused
                        .iter()
                        .find(|(a, r)| a == action && r.contains(resource))
                        .cloned()
                }))
            }
        }
    };
    wait_for(
        "the webhook's refused dynamodb:Query",
        Duration::from_secs(30),
        refused("dynamodb:Query", "-state"),
    )
    .await?;
    let calls = read_calls(cloud.emulator.iam_calls_file())?;
    let identities = audit(&cloud.stack, &calls)?;
    let webhook_refused = &identities.get("webhook").context("no webhook")?.refused;
    ensure!(
        webhook_refused.iter().all(|(a, _)| a == "dynamodb:Query"),
        "only the removed grant is refused for the webhook: {webhook_refused:?}"
    );

    // The agent cannot take commands: AccessDenied on its commands queue,
    // and it says so.
    wait_for(
        "the agent's refused sqs:ReceiveMessage",
        Duration::from_secs(30),
        refused("sqs:ReceiveMessage", "erp-commands"),
    )
    .await?;
    agent
        .wait_for_log("AccessDenied", Duration::from_secs(30))
        .with_context(|| harness::process::tail(&agent.log_text()))?;
    let calls = read_calls(cloud.emulator.iam_calls_file())?;
    let identities = audit(&cloud.stack, &calls)?;
    let agent_refused = &identities.get("agent").context("no agent")?.refused;
    ensure!(
        agent_refused.iter().all(|(a, _)| a == "sqs:ReceiveMessage"),
        "only the removed grant is refused for the agent: {agent_refused:?}"
    );
    Ok(())
}
