//! `poller` in AWS: the scheduled handler under lambda_runtime.

use functions::{Deadline, aws::Clients, env::FunctionEnv, poller::Poller, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let clients = Clients::from_env().await;
    // The shop credentials come from Secrets Manager, never the environment.
    let env = FunctionEnv::from_process()
        .with_shop_secrets(&clients)
        .await?;
    let poller = Poller::new(&clients, &env)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        poller.handle_until(
            event.payload,
            Deadline::from_epoch_ms(event.context.deadline),
        )
    }))
    .await
}
