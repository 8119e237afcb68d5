//! `admin` in AWS: the router under lambda_http (Function URL, IAM auth).

use functions::{admin::Admin, aws::Clients, env::FunctionEnv, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let admin = Admin::new(&Clients::from_env().await, &FunctionEnv::from_process())?;
    lambda_http::run(admin.router()).await
}
