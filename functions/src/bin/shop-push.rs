//! `shop-push` in AWS: the handler under lambda_runtime.

use aws_lambda_events::event::sqs::SqsEvent;
use functions::{Deadline, aws::Clients, env::FunctionEnv, shop_push::ShopPush, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let push = ShopPush::new(&Clients::from_env().await, &FunctionEnv::from_process())?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        push.handle_until(
            event.payload,
            Deadline::from_epoch_ms(event.context.deadline),
        )
    }))
    .await
}
