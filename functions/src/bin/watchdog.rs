//! `watchdog` in AWS: the scheduled handler under lambda_runtime.

use functions::{Deadline, aws::Clients, env::FunctionEnv, telemetry, watchdog::Watchdog};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let watchdog = Watchdog::new(&Clients::from_env().await, &FunctionEnv::from_process())?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        watchdog.handle_until(
            event.payload,
            Deadline::from_epoch_ms(event.context.deadline),
        )
    }))
    .await
}
