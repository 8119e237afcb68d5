//! The admin Function URL is public (the console signs operators in
//! itself), so its JSON routes take API tokens that `deploy.py api-token`
//! makes; and a public URL whose function's resource policy lacks one of
//! the two permissions AWS asks for since October 2025 is refused locally
//! as AWS refuses it.

use anyhow::Context;
use harness::cloud::LocalCloud;

fn deploy_py(cloud: &LocalCloud, args: &[&str]) -> anyhow::Result<std::process::Output> {
    harness::stack::deploy_command(&cloud.emulator.endpoint())?
        .args(args)
        .output()
        .context("running deploy.py")
}

async fn status_code(url: &str, token: Option<&str>) -> anyhow::Result<u16> {
    let mut request = reqwest::Client::new().get(format!("{url}/status"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Ok(request.send().await?.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_takes_an_api_token_the_deploy_command_made_until_it_is_revoked()
-> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let stack = "api-token";
    let cloud = LocalCloud::start_with(tmp.path(), stack, None)?;
    let made = deploy_py(
        &cloud,
        &["api-token", "--stack", stack, "--name", "monitoring"],
    )?;
    anyhow::ensure!(
        made.status.success(),
        "api-token: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let token = String::from_utf8(made.stdout)?.trim().to_owned();
    assert!(token.len() >= 43, "256 bits, base64url: {token}");

    assert_eq!(status_code(&cloud.admin_url, Some(&token)).await?, 200);
    assert_eq!(status_code(&cloud.admin_url, None).await?, 401);
    let mut wrong = token.clone();
    wrong.pop();
    assert_eq!(status_code(&cloud.admin_url, Some(&wrong)).await?, 401);

    // The table keeps the hash, never the token.
    let config = harness::emulator::sdk_config(&cloud.emulator.endpoint()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = cloud.stack.output("StateTableName")?;
    let listing = dynamodb
        .get_item()
        .table_name(table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("api-tokens".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("monitoring".into()),
        )
        .send()
        .await?
        .item
        .context("the token's listing")?;
    assert!(!format!("{listing:?}").contains(&token), "{listing:?}");

    // A second token of the same name is refused; the first stays.
    let again = deploy_py(
        &cloud,
        &["api-token", "--stack", stack, "--name", "monitoring"],
    )?;
    assert!(!again.status.success(), "a name is taken once");
    assert_eq!(status_code(&cloud.admin_url, Some(&token)).await?, 200);

    let revoked = deploy_py(
        &cloud,
        &[
            "api-token",
            "--stack",
            stack,
            "--name",
            "monitoring",
            "--revoke",
        ],
    )?;
    anyhow::ensure!(
        revoked.status.success(),
        "revoke: {}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert_eq!(status_code(&cloud.admin_url, Some(&token)).await?, 401);
    // The local host's own token (ADMIN_TOKEN) still works locally.
    assert_eq!(
        status_code(&cloud.admin_url, Some(&cloud.admin_token)).await?,
        200
    );
    Ok(())
}

/// AWS answers 403 `{"Message":"Forbidden"}` at a public URL whose
/// function lets everyone `lambda:InvokeFunctionUrl` but not
/// `lambda:InvokeFunction`; the template grants both, and the local host,
/// reading the deployed policy, refuses a stack that forgot one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_url_without_both_permissions_is_refused_as_aws_refuses_it() -> anyhow::Result<()>
{
    let tmp = harness::TestDir::new()?;
    let template = std::fs::read_to_string(harness::stack::template_path())?;
    let permission = "  WebhookInvokePermission:\n    Type: AWS::Lambda::Permission\n    Properties:\n      FunctionName: { Ref: WebhookFunction }\n      Action: lambda:InvokeFunction\n      Principal: \"*\"\n      InvokedViaFunctionUrl: true\n";
    anyhow::ensure!(
        template.matches(permission).count() == 1,
        "the template no longer declares the webhook's InvokeFunction permission this way: update this test"
    );
    let narrowed = tmp.path().join("template.yaml");
    std::fs::write(&narrowed, template.replace(permission, ""))?;
    let cloud = LocalCloud::start_from_template(
        tmp.path(),
        "url-permission",
        None,
        &[],
        &[],
        Some(&narrowed),
    )?;
    let webhook = cloud.webhook_url.clone().context("no webhook URL")?;
    let refused = reqwest::Client::new()
        .post(format!("{webhook}/sklep"))
        .body("{}")
        .send()
        .await?;
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await?;
    assert_eq!(body, serde_json::json!({"Message": "Forbidden"}));
    // The admin function kept both: its URL answers.
    assert_eq!(
        status_code(&cloud.admin_url, Some(&cloud.admin_token)).await?,
        200
    );
    Ok(())
}
