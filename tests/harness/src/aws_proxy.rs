//! A proxy between the agent and the AWS emulator that a fault campaign
//! turns bad: refusing connections (the emulator or the office's line
//! down) or answering every request as SQS does when it throttles. The
//! emulator keeps its state throughout (killing moto would lose it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ProxyMode {
    Forward = 0,
    /// Accepted and dropped at once: the far side is gone.
    Down = 1,
    /// Every request answered `400 RequestThrottled` (SQS's JSON protocol).
    Throttle = 2,
}

/// How many connections and requests each fault met.
#[derive(Debug, Default)]
pub struct ProxyCounters {
    /// Connections dropped while down (new ones, and open ones cut).
    pub refused: AtomicU64,
    /// Requests answered with a throttling error.
    pub throttled: AtomicU64,
    pub forwarded: AtomicU64,
}

pub struct AwsProxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    cut: watch::Sender<u64>,
    pub counters: Arc<ProxyCounters>,
}

/// SQS's answer to a throttled request, in both error shapes its SDK
/// reads (the JSON protocol's `__type` and the query-compatible header).
const THROTTLED: &str =
    "{\"__type\":\"com.amazonaws.sqs#RequestThrottled\",\"message\":\"Rate exceeded\"}";

impl AwsProxy {
    /// Listens on a free port, forwarding to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<AwsProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mode = Arc::new(AtomicU8::new(ProxyMode::Forward as u8));
        let (cut, _) = watch::channel(0u64);
        let counters = Arc::new(ProxyCounters::default());
        let (loop_mode, loop_cut, loop_counters) = (mode.clone(), cut.clone(), counters.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mode = loop_mode.load(Ordering::SeqCst);
                let counters = loop_counters.clone();
                if mode == ProxyMode::Down as u8 {
                    counters.refused.fetch_add(1, Ordering::SeqCst);
                    drop(inbound);
                    continue;
                }
                if mode == ProxyMode::Throttle as u8 {
                    tokio::spawn(answer_throttled(inbound, counters));
                    continue;
                }
                let mut cut = loop_cut.subscribe();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    counters.forwarded.fetch_add(1, Ordering::SeqCst);
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    tokio::select! {
                        _ = tokio::io::copy(&mut ri, &mut wo) => {}
                        _ = tokio::io::copy(&mut ro, &mut wi) => {}
                        _ = cut.changed() => {
                            counters.refused.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        Ok(AwsProxy {
            addr,
            mode,
            cut,
            counters,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches the mode; open connections are cut so the next request
    /// meets the new mode at once.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        if mode != ProxyMode::Forward {
            self.cut.send_modify(|g| *g += 1);
        }
    }
}

/// Reads HTTP/1.1 requests off `stream` and answers each as throttled,
/// closing after the first (a client reconnects through the proxy).
async fn answer_throttled(mut stream: TcpStream, counters: Arc<ProxyCounters>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => request.extend_from_slice(&buf[..n]),
            _ => return,
        }
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if request.len() > 1 << 20 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        match tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => request.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-query-error: RequestThrottled;Sender\r\nx-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{THROTTLED}",
        THROTTLED.len()
    );
    if stream.write_all(response.as_bytes()).await.is_ok() {
        counters.throttled.fetch_add(1, Ordering::SeqCst);
    }
    let _ = stream.shutdown().await;
}
