//! `shop-push` in AWS: the handler under lambda_runtime.

use aws_lambda_events::event::sqs::SqsEvent;
use functions::{Deadline, aws::Clients, env::FunctionEnv, shop_push::ShopPush, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let clients = Clients::from_env().await;
    // The shop credentials come from Secrets Manager, never the environment.
    let env = FunctionEnv::from_process()
        .with_shop_secrets(&clients)
        .await?;
    let push = ShopPush::new(&clients, &env)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        push.handle_until(
            event.payload,
            Deadline::from_epoch_ms(event.context.deadline),
        )
    }))
    .await
}
