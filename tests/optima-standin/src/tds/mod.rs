//! The TDS 7.4 wire protocol, server side.
pub mod login;
pub mod packet;
pub mod prelogin;
pub mod rpc;
pub mod tls;
pub mod tokens;
