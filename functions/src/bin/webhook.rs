//! `webhook` in AWS: the router under lambda_http (Function URL, auth NONE:
//! every delivery is checked against the shop's webhook signature).

use functions::{aws::Clients, env::FunctionEnv, telemetry, webhook::Webhook};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let clients = Clients::from_env().await;
    // The shop credentials come from Secrets Manager, never the environment.
    let env = FunctionEnv::from_process()
        .with_shop_secrets(&clients)
        .await?;
    let webhook = Webhook::new(&clients, &env)?;
    lambda_http::run(webhook.router()).await
}
