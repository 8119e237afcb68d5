//! A stand-in for the Lambda Runtime API (the HTTP interface a `bootstrap`
//! binary talks to inside Lambda), so the thin `main`s built on
//! `lambda_runtime`/`lambda_http` run as real processes in tests: the
//! binary long-polls `/invocation/next`, gets an event, and posts a
//! response or an error, exactly as under AWS.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Mutex, Notify};

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<(String, Value)>>,
    queued: Notify,
    outcomes: Mutex<Vec<(String, Outcome)>>,
    answered: Notify,
    init_error: Mutex<Option<Value>>,
}

pub struct RuntimeApi {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

impl RuntimeApi {
    pub async fn start() -> anyhow::Result<RuntimeApi> {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RuntimeApi { addr, inner })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// The environment Lambda gives every function, for a function called `name`.
    pub fn lambda_env(&self, name: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.host_port()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ]
    }

    /// Queues an event and waits for the function's answer to it.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> anyhow::Result<Outcome> {
        let id = format!("req-{}", rand::random::<u64>());
        self.inner.queue.lock().await.push_back((id.clone(), event));
        self.inner.queued.notify_waiters();
        self.inner.queued.notify_one();
        let wait = async {
            loop {
                let answered = self.inner.answered.notified();
                if let Some((_, outcome)) = self
                    .inner
                    .outcomes
                    .lock()
                    .await
                    .iter()
                    .find(|(i, _)| *i == id)
                {
                    return outcome.clone();
                }
                if let Some(err) = self.inner.init_error.lock().await.clone() {
                    return Outcome::Error(err);
                }
                answered.await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| anyhow::anyhow!("the function did not answer within {timeout:?}"))
    }
}

async fn next(State(inner): State<Arc<Inner>>) -> impl IntoResponse {
    loop {
        let queued = inner.queued.notified();
        if let Some((id, event)) = inner.queue.lock().await.pop_front() {
            let mut headers = HeaderMap::new();
            let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
            for (name, value) in [
                ("lambda-runtime-aws-request-id", id.clone()),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:eu-central-1:123456789012:function:local".to_owned(),
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000".to_owned(),
                ),
            ] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            return (StatusCode::OK, headers, event.to_string());
        }
        queued.await;
    }
}

async fn record(inner: &Inner, id: String, outcome: Outcome) {
    inner.outcomes.lock().await.push((id, outcome));
    inner.answered.notify_waiters();
}

async fn response(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    record(&inner, id, Outcome::Response(value)).await;
    StatusCode::ACCEPTED
}

async fn error(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    record(&inner, id, Outcome::Error(value)).await;
    StatusCode::ACCEPTED
}

async fn init_error(State(inner): State<Arc<Inner>>, body: String) -> StatusCode {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    *inner.init_error.lock().await = Some(value);
    inner.answered.notify_waiters();
    StatusCode::ACCEPTED
}
