//! Errors: [`SqlError`] is what a SQL Server would send as an ERROR token;
//! [`Error`] is the library's error for everything else.

use std::fmt;

/// An error as SQL Server reports it: message number, severity class, state
/// and text. Sent to the client as an ERROR token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub number: u32,
    pub class: u8,
    pub state: u8,
    pub message: String,
}

impl SqlError {
    pub fn new(number: u32, class: u8, message: impl Into<String>) -> Self {
        SqlError {
            number,
            class,
            state: 1,
            message: message.into(),
        }
    }
    /// Error 102, SQL Server's syntax error.
    pub fn syntax(near: &str) -> Self {
        SqlError::new(102, 15, format!("Incorrect syntax near '{near}'."))
    }
    /// Error 208, an unknown table.
    pub fn invalid_object(name: &str) -> Self {
        SqlError::new(208, 16, format!("Invalid object name '{name}'."))
    }
    /// Error 207, an unknown column.
    pub fn invalid_column(name: &str) -> Self {
        SqlError::new(207, 16, format!("Invalid column name '{name}'."))
    }
    /// A construct the stand-in does not translate (outside the documented
    /// subset). Number 50000, the user-defined range: SQL Server has no
    /// equivalent, and the text names the construct.
    pub fn unsupported(what: impl fmt::Display) -> Self {
        SqlError::new(
            50000,
            16,
            format!(
                "optima-standin: unsupported T-SQL construct: {what} (see docs/optima-standin.md for the supported subset)"
            ),
        )
    }
    /// Error 137, an undeclared variable or parameter.
    pub fn undeclared(name: &str) -> Self {
        SqlError::new(
            137,
            15,
            format!("Must declare the scalar variable \"{name}\"."),
        )
    }
    /// Error 8115, arithmetic overflow converting to a decimal.
    pub fn overflow(ty: &str) -> Self {
        SqlError::new(
            8115,
            16,
            format!("Arithmetic overflow error converting expression to data type {ty}."),
        )
    }
    /// Error 245/8114, a failed conversion.
    pub fn conversion(value: &str, ty: &str) -> Self {
        if ty.starts_with("decimal") || ty.starts_with("numeric") {
            return SqlError::new(8114, 16, "Error converting data type varchar to numeric.");
        }
        SqlError::new(
            245,
            16,
            format!(
                "Conversion failed when converting the varchar value '{value}' to data type {ty}."
            ),
        )
    }
    /// Error 271, a computed column written.
    pub fn computed_column(name: &str) -> Self {
        SqlError::new(
            271,
            16,
            format!(
                "The column \"{name}\" cannot be modified because it is either a computed column or is the result of a UNION operator."
            ),
        )
    }
    /// An internal error of the stand-in, reported like a SQL Server error.
    pub fn internal(message: impl fmt::Display) -> Self {
        SqlError::new(50000, 16, format!("optima-standin: {message}"))
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Msg {}, Level {}, State {}: {}",
            self.number, self.class, self.state, self.message
        )
    }
}

impl std::error::Error for SqlError {}

/// The library's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Sql(#[from] SqlError),
    #[error("TDS protocol: {0}")]
    Protocol(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("SQL client: {0}")]
    Client(#[from] tiberius::error::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
