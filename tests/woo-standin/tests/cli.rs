mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::client;

#[tokio::test]
async fn binary_prints_listening_and_serves() {
    let dir = std::env::temp_dir().join(format!("woo-standin-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed = dir.join("skus.txt");
    std::fs::write(&seed, "CLI-1;Herbata;12,30;5\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_woo-standin"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--key",
            "ck_cli",
            "--secret",
            "cs_cli",
        ])
        .arg("--seed-products-from-skus")
        .arg(&seed)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut base = None;
    let mut saw_key = false;
    for _ in 0..10 {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(url) = line.strip_prefix("listening: ") {
            base = Some(url.to_string());
        }
        if line == "consumer_key: ck_cli" {
            saw_key = true;
        }
        if line.starts_with("control:") {
            break;
        }
    }
    let base = base.expect("listening line");
    assert!(base.starts_with("http://127.0.0.1:"));
    assert!(saw_key);
    let v: serde_json::Value = client()
        .get(format!("{base}/wp-json/wc/v3/products?sku=CLI-1"))
        .basic_auth("ck_cli", Some("cs_cli"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v[0]["regular_price"], "12.30");
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
