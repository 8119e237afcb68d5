//! # optima-standin
//!
//! A SQL Server look-alike holding a Comarch ERP Optima company database,
//! for the local run, the tests and the benchmarks. Map of the crate:
//!
//! - [`server`]: the TDS 7.4 server ([`server::StandinServer`]) on a socket,
//!   plaintext or TLS, SQL authentication, one session thread per connection.
//! - [`tds`]: the wire protocol: packets, PRELOGIN, LOGIN7, RPC parameters,
//!   response tokens, TLS inside PRELOGIN.
//! - [`sql`]: T-SQL → SQLite translation ([`sql::translate`]), result column
//!   typing ([`sql::infer`]), and per-connection execution ([`sql::session`]).
//! - [`schema`]: Optima's real tables (from `agent/schema/optima-tables.json`) with
//!   SQL Server types and constraints; the source of the SQLite DDL, the
//!   T-SQL DDL and COLMETADATA.
//! - [`types`]: SQL Server types and values, and their conversions.
//! - [`db`]: opening the SQLite file (`ATTACH ... AS CDN`, WAL, catalog views,
//!   SQL Server functions).
//! - [`seed`]: a deterministic Polish company (products, prices, stock,
//!   customers, documents, and deliberately bad rows).
//! - [`settings`]: what the database reports (compatibility level,
//!   collation) and SELECT denied to a login, kept in the database file.
//! - [`office`]: rows as Optima's application writes them (every NOT NULL
//!   column filled), for the seed and the simulator.
//! - [`simulator`]: a busy office writing rows the way Optima does.
//! - [`tsql`]: the same schema and seed as a T-SQL script for a real server.
//! - [`erp`]: choosing the ERP for tests: `MSSQL_URL` or a fresh stand-in.
//! - [`error`]: SQL Server errors and the library's error type.
//! - [`faults`]: deadlocks, slow statements and clock steps a test switches on.

pub mod db;
pub mod erp;
pub mod error;
pub mod faults;
pub mod office;
pub mod schema;
pub mod seed;
pub mod server;
pub mod settings;
pub mod simulator;
pub mod sql;
pub mod tds;
pub mod tsql;
pub mod types;
pub mod work;

pub use error::{Error, Result, SqlError};
