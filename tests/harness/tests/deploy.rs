//! The one deploy command as an operator runs it, pointed at the emulator:
//! the full template (Lambda's own event source mappings, not the local
//! host), artefacts uploaded to a bucket it creates, the Function URLs and
//! the agent's configuration and one-time access key printed, and the
//! webhook address of the configured shop; a second deploy issues no
//! second key and keeps the shops; the shop credentials are in Secrets
//! Manager only (not in any function's environment, the stack, the
//! description file or the output); `destroy` leaves nothing behind (stack,
//! functions, roles, queues, table, artefact bucket, the agent's user, the
//! secret).

use std::process::Command;

use anyhow::{Context, ensure};
use harness::emulator::{Emulator, sdk_config};
use harness::stack::deploy_command;
use harness::venv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_prints_urls_and_the_agent_key_once_and_destroy_removes_everything()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let emulator = Emulator::start(dir.path())?;
    let endpoint = emulator.endpoint();

    // One zip per function the template declares (the emulator runs none).
    let names = deploy_command(&endpoint)?.arg("functions").output()?;
    ensure!(
        names.status.success(),
        "{}",
        String::from_utf8_lossy(&names.stderr)
    );
    let names: Vec<String> = String::from_utf8(names.stdout)?
        .lines()
        .map(str::to_owned)
        .collect();
    ensure!(names.iter().any(|n| n == "ingest"), "{names:?}");
    let artifacts = dir.path().join("artifacts");
    std::fs::create_dir_all(&artifacts)?;
    let bootstrap = dir.path().join("bootstrap");
    std::fs::write(&bootstrap, "#!/bin/sh\nexit 1\n")?;
    for name in &names {
        let status = Command::new(venv::ensure()?.join("python"))
            .args(["-m", "zipfile", "-c"])
            .arg(artifacts.join(format!("{name}.zip")))
            .arg(&bootstrap)
            .status()?;
        ensure!(status.success(), "zipping {name}");
    }

    // One shop, so the per-shop webhook address is printed (and kept by a
    // deploy that does not pass the shops again).
    let shops = dir.path().join("shops.json");
    std::fs::write(
        &shops,
        r#"[{"id":"sklep-1","platform":"woocommerce","base_url":"https://sklep.example.pl"}]"#,
    )?;
    let shops_parameter = format!("ShopsConfig=@{}", shops.display());
    // Its credentials go to Secrets Manager: never into an environment
    // variable, the stack, the description file or the deploy's output.
    let secret_value = format!("cs_{}", harness::cloud::random_secret());
    let secrets = dir.path().join("shop-secrets.json");
    std::fs::write(
        &secrets,
        serde_json::json!({"sklep-1": {"consumer_key": "ck_1", "consumer_secret": secret_value,
                                       "webhook_secret": format!("wh-{secret_value}")}})
        .to_string(),
    )?;
    let secrets_parameter = format!("ShopSecrets=@{}", secrets.display());
    let description = dir.path().join("office.json");
    let deploy = |parameters: &[&str]| -> anyhow::Result<(String, String)> {
        let mut command = deploy_command(&endpoint)?;
        command
            .args([
                "deploy",
                "--stack",
                "office",
                "--architecture",
                "x86_64",
                "--artifacts",
            ])
            .arg(&artifacts)
            .arg("--describe-to")
            .arg(&description);
        for parameter in parameters {
            command.args(["--parameter", parameter]);
        }
        let out = command.output().context("running deploy.py deploy")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        ensure!(out.status.success(), "deploy failed:\n{stdout}{stderr}");
        Ok((stdout, stderr))
    };
    let (first, log) = deploy(&[&shops_parameter, &secrets_parameter])?;
    println!("{first}");
    ensure!(
        !first.contains(&secret_value) && !log.contains(&secret_value),
        "the deploy printed the shop secret"
    );
    ensure!(
        !std::fs::read_to_string(&description)?.contains(&secret_value),
        "the description file holds the shop secret"
    );
    ensure!(log.contains("created artifact bucket"), "{log}");
    // The JSON part: outputs and every Function URL, each with a URL.
    let printed_json = |stdout: &str| -> anyhow::Result<serde_json::Value> {
        let json_end = stdout.find("\n}\n").context("a JSON object first")? + 2;
        Ok(serde_json::from_str(&stdout[..json_end])?)
    };
    let printed = printed_json(&first)?;
    let urls = printed["function_urls"]
        .as_array()
        .context("function_urls")?;
    ensure!(!urls.is_empty(), "{first}");
    for url in urls {
        let text = url["url"].as_str().unwrap_or_default();
        ensure!(text.starts_with("http"), "a Function URL for {url}");
    }
    // The shop's webhook: the webhook Function URL + /<shop id>, in the
    // JSON and in the instructions on standard error.
    let webhook_base = urls
        .iter()
        .find(|u| u["function"] == "webhook")
        .and_then(|u| u["url"].as_str())
        .context("a webhook Function URL")?;
    let webhook = format!("{}/sklep-1", webhook_base.trim_end_matches('/'));
    ensure!(
        printed["webhook_urls"]["sklep-1"] == webhook.as_str(),
        "webhook_urls: {} (expected sklep-1: {webhook})",
        printed["webhook_urls"]
    );
    ensure!(
        log.contains("register each shop's order webhook")
            && log.contains(&format!("sklep-1: {webhook}")),
        "{log}"
    );
    let events = printed["outputs"]["EventsQueueUrl"]
        .as_str()
        .context("EventsQueueUrl")?;
    // The hand-over: the agent's configuration and its key, once.
    ensure!(
        first.contains(&format!("events_queue_url = \"{events}\"")),
        "{first}"
    );
    ensure!(first.contains("commands_queue_url = \""), "{first}");
    ensure!(first.contains("AWS_ACCESS_KEY_ID="), "{first}");
    ensure!(first.contains("AWS_SECRET_ACCESS_KEY="), "{first}");
    ensure!(
        !log.contains("AWS_SECRET_ACCESS_KEY"),
        "the key goes to standard output only"
    );

    let (second, _) = deploy(&[])?;
    ensure!(
        !second.contains("AWS_SECRET_ACCESS_KEY=") && second.contains("issued before"),
        "a second deploy issues no second key:\n{second}"
    );
    ensure!(
        printed_json(&second)?["webhook_urls"]["sklep-1"] == webhook.as_str(),
        "a deploy without ShopsConfig keeps the shops:\n{second}"
    );

    // What an operator with read access to Lambda and CloudFormation sees,
    // and what the functions get: the secret's ARN, not its value.
    let exposed = r#"
import boto3, json, sys
s = boto3.session.Session(region_name="eu-central-1")
e = sys.argv[1]
lam = s.client("lambda", endpoint_url=e)
cfn = s.client("cloudformation", endpoint_url=e)
sm = s.client("secretsmanager", endpoint_url=e)
envs = {f["FunctionName"]: lam.get_function_configuration(FunctionName=f["FunctionName"]).get("Environment", {}).get("Variables", {}) for f in lam.list_functions()["Functions"]}
stack = cfn.describe_stacks(StackName="office")["Stacks"][0]
arn = next(v for vs in envs.values() for k, v in vs.items() if k == "SHOP_SECRETS_ARN")
print(json.dumps({"envs": envs, "outputs": stack.get("Outputs", []), "parameters": stack.get("Parameters", []),
                  "secret": sm.get_secret_value(SecretId=arn)["SecretString"]}))
"#;
    let out = Command::new(venv::ensure()?.join("python"))
        .args(["-c", exposed, &endpoint])
        .envs(harness::emulator::aws_env_for(&endpoint))
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    for part in ["envs", "outputs", "parameters"] {
        ensure!(
            !seen[part].to_string().contains(&secret_value),
            "the shop secret is in the stack's {part}"
        );
    }
    ensure!(
        seen["secret"]
            .as_str()
            .is_some_and(|s| s.contains(&secret_value)),
        "the secret the functions are given holds the credentials"
    );

    let out = deploy_command(&endpoint)?
        .args(["destroy", "--stack", "office"])
        .output()?;
    let log = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "destroy failed: {log}");
    ensure!(log.contains("deleted the agent's access key"), "{log}");

    let config = sdk_config(&endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queues = sqs
        .list_queues()
        .send()
        .await?
        .queue_urls
        .unwrap_or_default();
    ensure!(queues.is_empty(), "queues left: {queues:?}");
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let tables = ddb
        .list_tables()
        .send()
        .await?
        .table_names
        .unwrap_or_default();
    ensure!(tables.is_empty(), "tables left: {tables:?}");
    // Lambda, IAM and S3 through the deploy command's own Python SDK.
    let check = r#"
import boto3, json, sys
s = boto3.session.Session(region_name="eu-central-1")
e = sys.argv[1]
left = {
    "functions": [f["FunctionName"] for f in s.client("lambda", endpoint_url=e).list_functions()["Functions"]],
    # local-admin is the emulator's stand-in for the deployer, not the stack's.
    "users": [u["UserName"] for u in s.client("iam", endpoint_url=e).list_users()["Users"] if u["UserName"] != "local-admin"],
    "roles": [r["RoleName"] for r in s.client("iam", endpoint_url=e).list_roles()["Roles"]],
    "buckets": [b["Name"] for b in s.client("s3", endpoint_url=e).list_buckets().get("Buckets", [])],
    "stacks": [x["StackName"] for x in s.client("cloudformation", endpoint_url=e).list_stacks()["StackSummaries"] if x["StackStatus"] != "DELETE_COMPLETE"],
    "secrets": [x["Name"] for x in s.client("secretsmanager", endpoint_url=e).list_secrets()["SecretList"]],
}
print(json.dumps(left))
"#;
    let out = Command::new(venv::ensure()?.join("python"))
        .args(["-c", check, &endpoint])
        .envs(harness::emulator::aws_env_for(&endpoint))
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    for kind in [
        "functions",
        "users",
        "roles",
        "buckets",
        "stacks",
        "secrets",
    ] {
        ensure!(
            left[kind].as_array().is_some_and(Vec::is_empty),
            "{kind} left after destroy: {left}"
        );
    }
    Ok(())
}
