//! `ingest` in AWS: the handler under lambda_runtime.

use aws_lambda_events::event::sqs::SqsEvent;
use functions::{aws::Clients, env::FunctionEnv, ingest::Ingest, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let ingest = Ingest::new(&Clients::from_env().await, &FunctionEnv::from_process())?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        ingest.handle(event.payload)
    }))
    .await
}
