//! The T-SQL side: translation to SQLite, typing of result columns, and the
//! per-connection session that executes batches.
pub mod infer;
pub mod like;
pub mod session;
pub mod translate;
