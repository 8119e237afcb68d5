//! The vendored schema is the real one: `agent/schema/optima-tables.json` equals a
//! fresh extraction from `../shared/reference/optima-real-schema.json`
//! (relative to the workspace root) when that file is there.

use std::path::PathBuf;

#[test]
fn vendored_schema_equals_a_fresh_extraction() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let reference = root.join("../shared/reference/optima-real-schema.json");
    let Ok(full) = std::fs::read_to_string(&reference) else {
        eprintln!("{} not found: skipped", reference.display());
        return;
    };
    let fresh = optima_standin::schema::extract(&full).unwrap();
    assert!(
        fresh == optima_standin::schema::VENDORED_JSON,
        "agent/schema/optima-tables.json is stale: run `optima-standin extract-schema --from {}`",
        reference.display()
    );
}

#[test]
fn committed_tsql_schema_is_current() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/schema.sql")).unwrap();
    let mut fresh = Vec::new();
    optima_standin::tsql::write_script(&mut fresh, &Default::default(), true).unwrap();
    assert!(
        committed == String::from_utf8(fresh).unwrap(),
        "sql/schema.sql is stale: run `optima-standin tsql --schema-only > sql/schema.sql`"
    );
}
