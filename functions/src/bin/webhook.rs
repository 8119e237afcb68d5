//! `webhook` in AWS: the router under lambda_http (Function URL, auth NONE:
//! every delivery is checked against the shop's webhook signature).

use functions::{aws::Clients, env::FunctionEnv, telemetry, webhook::Webhook};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let webhook = Webhook::new(&Clients::from_env().await, &FunctionEnv::from_process())?;
    lambda_http::run(webhook.router()).await
}
