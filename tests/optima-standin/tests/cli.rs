//! The binary as a process: seed, serve (connection line, password from the
//! environment or generated), simulate (JSON lines), tsql.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_optima-standin");

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn seed(db: &std::path::Path, n: usize) {
    let out = Command::new(BIN)
        .args(["seed", "--db"])
        .arg(db)
        .args(["--products", &n.to_string(), "--seed", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["products"], n);
}

fn serve(db: &std::path::Path, password: Option<&str>) -> (Killed, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--db"])
        .arg(db)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("OPTIMA_STANDIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(p) = password {
        cmd.env("OPTIMA_STANDIN_PASSWORD", p);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let ado = line
        .strip_prefix("connection: ")
        .unwrap_or_else(|| panic!("no connection line: {line:?}"))
        .trim()
        .to_string();
    (child, ado)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_serve_and_query_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("firma.sqlite");
    seed(&db, 40);
    let (_child, ado) = serve(&db, Some("Tajne;Haslo=1"));
    assert!(ado.contains("encrypt=DANGER_PLAINTEXT"), "{ado}");
    assert!(ado.contains("user=sa"), "{ado}");
    let mut c = optima_standin::erp::connect(&ado)
        .await
        .expect("connect to the binary");
    let n = c
        .simple_query("SELECT COUNT(*) FROM CDN.Towary WHERE Twr_Typ = 1")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n.get::<i32, _>(0), Some(40));
    // The data persists in the file: a second server sees the same rows.
    c.execute(
        "UPDATE CDN.Towary SET Twr_Nazwa = N'Zmieniona nazwa' WHERE Twr_TwrId = 1",
        &[],
    )
    .await
    .unwrap();
    drop(c);
    drop(_child);
    let (_child2, ado2) = serve(&db, None);
    let mut c = optima_standin::erp::connect(&ado2).await.unwrap();
    let r = c
        .simple_query("SELECT Twr_Nazwa FROM CDN.Towary WHERE Twr_TwrId = 1")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.get::<&str, _>(0), Some("Zmieniona nazwa"));
    // Without a password a random one is generated: not the earlier one.
    assert!(!ado2.contains("Tajne"), "{ado2}");
}

#[test]
fn simulate_prints_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("firma.sqlite");
    seed(&db, 60);
    let out = Command::new(BIN)
        .args(["simulate", "--db"])
        .arg(&db)
        .args(["--rate", "200", "--duration", "0.2", "--seed", "4"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let logs: Vec<optima_standin::simulator::ActionLog> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(logs.len() >= 5, "{}", logs.len());
    assert!(logs.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}

#[test]
fn tsql_script_holds_schema_and_seed() {
    let out = Command::new(BIN)
        .args(["tsql", "--products", "20", "--seed", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let sql = String::from_utf8(out.stdout).unwrap();
    assert!(sql.contains("CREATE TABLE CDN.[Towary]"));
    assert!(sql.contains("SET IDENTITY_INSERT CDN.[Towary] ON;"));
    assert_eq!(sql.matches("INSERT INTO CDN.[Towary]").count(), 1);
    assert!(sql.contains("N'BAD-LONG-NAME'"));
    let schema = Command::new(BIN)
        .args(["tsql", "--schema-only"])
        .output()
        .unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/schema.sql")).unwrap();
    assert_eq!(
        String::from_utf8(schema.stdout).unwrap(),
        committed,
        "sql/schema.sql is stale: regenerate it"
    );
}
