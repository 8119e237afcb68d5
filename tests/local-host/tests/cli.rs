//! The `local-host` binary itself. Besides checking it, this test makes
//! `cargo test --workspace` build `target/debug/local-host`, which every
//! harness test starts (a package without integration tests gets no binary
//! from `cargo test`).

use std::process::Command;

fn refusal(stack: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_local-host"))
        .arg("--stack")
        .arg(stack)
        .env("ADMIN_TOKEN", "a-local-admin-token-of-some-length")
        .output()
        .expect("local-host runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "started anyway: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn a_missing_or_foreign_stack_description_is_a_clear_error_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("local-host-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let missing = refusal(&dir.join("no-such-stack.json"));
    assert!(
        missing.contains("reading the stack description") && missing.contains("no-such-stack.json"),
        "{missing}"
    );
    let foreign = dir.join("package.json");
    std::fs::write(&foreign, r#"{"name": "not a stack"}"#).expect("write");
    let foreign = refusal(&foreign);
    assert!(
        foreign.contains("package.json is not a stack description"),
        "{foreign}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
