//! The agent's configuration: a TOML file plus `OPTIMA_SYNC_*` environment
//! overrides (`OPTIMA_SYNC_SQL__PASSWORD` sets `sql.password`), validated at
//! start with messages that name the key, what is wrong and what is expected.
//!
//! Secrets (the SQL password) come from the environment or a file only the
//! service account can read; they are wrapped in [`Secret`], whose Debug and
//! Display never show them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use thiserror::Error;

/// Environment variables with this prefix override the file (`__` separates sections).
pub const ENV_PREFIX: &str = "OPTIMA_SYNC_";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(
        "configuration file {0} does not exist (pass --config FILE; see docs/OPERATIONS.md for an example)"
    )]
    Missing(PathBuf),
    #[error("configuration {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("configuration {path}: `{key}` {problem}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        problem: String,
    },
}

pub use crate::secrets::Secret;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    agent_id: String,
    aws: AwsSection,
    sql: SqlSection,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    heartbeat: HeartbeatSection,
    #[serde(default)]
    sync: SyncSection,
    /// Absent: this agent does not write shop orders into Optima.
    orders: Option<OrdersSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSection {
    /// AWS region of the stack; default: the standard AWS configuration.
    pub region: Option<String>,
    /// Named profile; default: the standard AWS configuration.
    pub profile: Option<String>,
    /// `EventsQueueUrl` from the stack outputs.
    pub events_queue_url: String,
    /// `CommandsQueueUrl` from the stack outputs.
    pub commands_queue_url: Option<String>,
    /// An AWS credentials file (INI, `[default]` or `[<profile>]`) readable
    /// only by the service account; otherwise the standard chain.
    pub credentials_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSection {
    /// ADO.NET connection string without the password, e.g.
    /// `server=tcp:SERWER\OPTIMA,1433;database=CDN_Firma;user=sync;TrustServerCertificate=true`.
    pub connection_string: String,
    /// Prefer the environment (`OPTIMA_SYNC_SQL__PASSWORD`) or `password_file`.
    pub password: Option<Secret>,
    /// A file holding only the password, readable only by the service account.
    pub password_file: Option<PathBuf>,
    /// Windows: a generic credential in the Credential Manager of the
    /// service account (`cmdkey /generic:NAME /user:sync /pass`).
    pub password_credential: Option<String>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
}

fn default_connect_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// The agent's local state (outbox, hashes, cursors), a SQLite file.
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// Outbox size past which the agent warns loudly (AWS unreachable for long).
    #[serde(default = "default_outbox_warn")]
    pub outbox_warn_at: u64,
}

fn default_store_path() -> PathBuf {
    PathBuf::from("agent-state.sqlite")
}

fn default_outbox_warn() -> u64 {
    10_000
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            path: default_store_path(),
            outbox_warn_at: default_outbox_warn(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSection {
    #[serde(default = "default_heartbeat")]
    pub interval_seconds: u64,
}

fn default_heartbeat() -> u64 {
    30
}

impl Default for HeartbeatSection {
    fn default() -> Self {
        HeartbeatSection {
            interval_seconds: default_heartbeat(),
        }
    }
}

/// How often each kind of pass runs (the seeds' three triggers: documents
/// changed, interval passes per data kind, forced passes on demand).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSection {
    /// Documents changed since the cursor: seconds between polls, fractions
    /// allowed (0.1 to 3600). Each idle poll is three index seeks, so a
    /// sub-second poll costs the server little and keeps a sale's way to
    /// the shop near a second.
    pub poll_seconds: f64,
    /// Product cards changed since the cursor (name, VAT, prices edited on
    /// the card, …): seconds between polls, at least `poll_seconds`. Optima
    /// has no index on `Twr_TS_Mod`, so each such poll reads all of
    /// `CDN.Towary`; sales and deliveries do not wait for it.
    pub product_poll_seconds: u64,
    /// Re-read this many seconds before the cursor (equal timestamps, clock skew).
    pub overlap_seconds: u64,
    pub stock_minutes: u64,
    pub prices_minutes: u64,
    pub catalogue_minutes: u64,
    /// Records per batch message (before splitting to fit SQS).
    pub batch_records: usize,
    /// Which `CDN.DefCeny` column `TwC_TwCNumer` refers to: `lp` (the
    /// default, as Comarch's FAQ reads it) or `id`.
    pub price_list_key: crate::erp_settings::PriceListKey,
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            poll_seconds: 0.5,
            product_poll_seconds: 10,
            overlap_seconds: 10,
            stock_minutes: 5,
            prices_minutes: 5,
            catalogue_minutes: 1440,
            batch_records: 500,
            price_list_key: crate::erp_settings::PriceListKey::default(),
        }
    }
}

/// How shop orders are written into Optima (`[orders]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersSection {
    /// RO (a reservation, the default), FS or PA (drafts in the buffer).
    #[serde(default = "default_document")]
    pub document: crate::erp_settings::DocumentKind,
    /// `Mag_Symbol` of the warehouse orders are served from.
    pub warehouse: String,
    /// `Knt_Kod` of the collective customer for private buyers (seed 000's
    /// "klient detaliczny"); absent: a customer is created per buyer.
    pub collective_customer: Option<String>,
    #[serde(default = "default_customer_prefix")]
    pub customer_code_prefix: String,
    /// Shop payment method id (e.g. `bacs`, `cod`) → Optima payment form
    /// name. A shop's mapping on the console's Shops page, carried on the
    /// order's command, comes first; this (and `shipping_services`) is the
    /// fallback for what it leaves out.
    #[serde(default)]
    pub payment_forms: std::collections::BTreeMap<String, String>,
    pub default_payment_form: Option<String>,
    /// Shop shipping method id (e.g. `flat_rate`) → SKU of a service item.
    #[serde(default)]
    pub shipping_services: std::collections::BTreeMap<String, String>,
    pub default_shipping_service: Option<String>,
    /// Shop fee name (e.g. `Pobranie`, a cash-on-delivery surcharge) → SKU
    /// of a service item; fees arrive as lines with SKU `fee:<name>`.
    #[serde(default)]
    pub fee_services: std::collections::BTreeMap<String, String>,
    pub default_fee_service: Option<String>,
    /// The series for document numbering schemes with `@seria`.
    pub series: Option<String>,
    /// An order in another currency than złoty: `park` (default) for a
    /// person, or `nbp`: written in its currency at the NBP average rate of
    /// the last working day before the document date.
    #[serde(default)]
    pub foreign_currency: crate::erp_settings::ForeignCurrency,
    /// `TrN_KursNumer` of such documents: the number of Optima's "średni
    /// kurs NBP" rate type. 3 is the number public direct INSERTs of Optima
    /// documents carry (optima-real.md E9).
    #[serde(default = "default_currency_rate_type")]
    pub currency_rate_type: i32,
    /// Where NBP's public API is (tests point it at a stand-in).
    #[serde(default = "default_nbp_url")]
    pub nbp_url: String,
    /// Seconds between checks of what became of written orders.
    #[serde(default = "default_progress_seconds")]
    pub progress_seconds: u64,
    /// Seconds a received command is hidden from other receives: after a
    /// crash, the order comes again this much later (and is found written).
    #[serde(default = "default_command_visibility")]
    pub command_visibility_seconds: u64,
}

fn default_command_visibility() -> u64 {
    60
}

fn default_document() -> crate::erp_settings::DocumentKind {
    crate::erp_settings::DocumentKind::Ro
}

fn default_customer_prefix() -> String {
    "WWW".into()
}

fn default_currency_rate_type() -> i32 {
    3
}

fn default_nbp_url() -> String {
    crate::exchange_rates::NBP_API.into()
}

fn default_progress_seconds() -> u64 {
    5
}

impl OrdersSection {
    pub fn write_settings(&self) -> crate::erp_settings::WriteSettings {
        crate::erp_settings::WriteSettings {
            document: self.document,
            warehouse: self.warehouse.clone(),
            collective_customer: self.collective_customer.clone(),
            customer_code_prefix: self.customer_code_prefix.clone(),
            payment_forms: self.payment_forms.clone(),
            default_payment_form: self.default_payment_form.clone(),
            shipping_services: self.shipping_services.clone(),
            default_shipping_service: self.default_shipping_service.clone(),
            fee_services: self.fee_services.clone(),
            default_fee_service: self.default_fee_service.clone(),
            series: self.series.clone(),
            foreign_currency: self.foreign_currency,
            currency_rate_type: self.currency_rate_type,
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub source: PathBuf,
    pub agent_id: String,
    pub aws: AwsSection,
    pub sql: SqlSection,
    /// The SQL password, from wherever it was configured.
    pub sql_password: Option<Secret>,
    pub store: StoreSection,
    pub heartbeat_interval: Duration,
    pub sync: SyncSection,
    pub orders: Option<OrdersSection>,
}

impl AgentConfig {
    /// Reads the file, applies environment overrides, validates.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        if !path.is_file() {
            return Err(ConfigError::Missing(path.to_owned()));
        }
        let raw: RawConfig = Figment::new()
            .merge(Toml::file_exact(path))
            .merge(Env::prefixed(ENV_PREFIX).split("__"))
            .extract()
            .map_err(|err| ConfigError::Parse {
                path: path.to_owned(),
                message: describe_figment_error(err),
            })?;
        Self::validate(path, raw)
    }

    fn validate(path: &Path, mut raw: RawConfig) -> Result<AgentConfig, ConfigError> {
        // A service starts in a folder of the system's choosing (System32 on
        // Windows): relative paths are relative to this file.
        let beside = |file: &mut PathBuf| {
            if file.is_relative()
                && let Some(dir) = path.parent()
            {
                *file = dir.join(&*file);
            }
        };
        raw.sql.password_file.as_mut().map(beside);
        raw.aws.credentials_file.as_mut().map(beside);
        beside(&mut raw.store.path);
        let invalid = |key: &'static str, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            problem,
        };
        let id = &raw.agent_id;
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "agent_id",
                format!(
                    "= `{id}` is invalid: expected 1 to 64 characters from A-Z, a-z, 0-9, - and _"
                ),
            ));
        }
        check_queue_url(&raw.aws.events_queue_url)
            .map_err(|p| invalid("aws.events_queue_url", p))?;
        if let Some(url) = &raw.aws.commands_queue_url {
            check_queue_url(url).map_err(|p| invalid("aws.commands_queue_url", p))?;
        }
        let poll = raw.sync.poll_seconds;
        if !(0.1..=3600.0).contains(&poll) {
            return Err(invalid(
                "sync.poll_seconds",
                format!("= {poll} is out of range: expected 0.1 to 3600 seconds"),
            ));
        }
        let interval = raw.heartbeat.interval_seconds;
        if !(1..=3600).contains(&interval) {
            return Err(invalid(
                "heartbeat.interval_seconds",
                format!("= {interval} is out of range: expected 1 to 3600 seconds"),
            ));
        }
        if !(1..=300).contains(&raw.sql.connect_timeout_seconds) {
            return Err(invalid(
                "sql.connect_timeout_seconds",
                format!(
                    "= {} is out of range: expected 1 to 300",
                    raw.sql.connect_timeout_seconds
                ),
            ));
        }
        let lowered = raw.sql.connection_string.to_ascii_lowercase();
        if lowered.contains("password=") || lowered.contains("pwd=") {
            return Err(invalid(
                "sql.connection_string",
                "contains a password: put it in OPTIMA_SYNC_SQL__PASSWORD or in sql.password_file instead, so the configuration file can be shared safely".into(),
            ));
        }
        tiberius::Config::from_ado_string(&raw.sql.connection_string).map_err(|err| {
            invalid(
                "sql.connection_string",
                format!("is not a valid ADO.NET connection string: {err}"),
            )
        })?;
        let sql_password = match (&raw.sql.password, &raw.sql.password_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "sql.password_file",
                    "is set together with sql.password: use one of them".into(),
                ));
            }
            (Some(password), None) => Some(password.clone()),
            (None, Some(file)) => {
                Some(read_password_file(file).map_err(|p| invalid("sql.password_file", p))?)
            }
            (None, None) => match &raw.sql.password_credential {
                Some(target) => Some(
                    crate::secrets::read_credential(target)
                        .map_err(|p| invalid("sql.password_credential", p))?,
                ),
                None => None,
            },
        };
        if raw.sql.password_credential.is_some()
            && (raw.sql.password.is_some() || raw.sql.password_file.is_some())
        {
            return Err(invalid(
                "sql.password_credential",
                "is set together with sql.password (or OPTIMA_SYNC_SQL__PASSWORD) or sql.password_file: use one of them".into(),
            ));
        }
        if let Some(file) = &raw.aws.credentials_file {
            check_private(file).map_err(|p| invalid("aws.credentials_file", p))?;
        }
        let store = raw.store;
        if let Some(parent) = store.path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(invalid(
                "store.path",
                format!("= {}: its folder does not exist", store.path.display()),
            ));
        }
        if let Some(orders) = &raw.orders {
            if orders.warehouse.trim().is_empty() {
                return Err(invalid(
                    "orders.warehouse",
                    "is empty: expected the Mag_Symbol orders are served from, e.g. MAG".into(),
                ));
            }
            let prefix = &orders.customer_code_prefix;
            if prefix.is_empty()
                || prefix.len() > 7
                || !prefix.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(invalid(
                    "orders.customer_code_prefix",
                    format!(
                        "= `{prefix}` is invalid: expected 1 to 7 letters or digits (Knt_Kod holds 20 characters)"
                    ),
                ));
            }
            if !(1..=999).contains(&orders.currency_rate_type) {
                return Err(invalid(
                    "orders.currency_rate_type",
                    format!(
                        "is {}: expected the number of Optima's NBP average rate type (1-999, usually 3)",
                        orders.currency_rate_type
                    ),
                ));
            }
            let nbp = orders.nbp_url.trim();
            if !(nbp.starts_with("https://")
                || nbp.starts_with("http://127.0.0.1")
                || nbp.starts_with("http://localhost"))
            {
                return Err(invalid(
                    "orders.nbp_url",
                    format!(
                        "is `{nbp}`: expected an https:// address (default {})",
                        crate::exchange_rates::NBP_API
                    ),
                ));
            }
            if !(1..=3600).contains(&orders.progress_seconds) {
                return Err(invalid(
                    "orders.progress_seconds",
                    format!(
                        "= {} is out of range: expected 1 to 3600",
                        orders.progress_seconds
                    ),
                ));
            }
            if !(2..=43_200).contains(&orders.command_visibility_seconds) {
                return Err(invalid(
                    "orders.command_visibility_seconds",
                    format!(
                        "= {} is out of range: expected 2 to 43200 (SQS's limit)",
                        orders.command_visibility_seconds
                    ),
                ));
            }
            if raw.aws.commands_queue_url.is_none() {
                return Err(invalid(
                    "aws.commands_queue_url",
                    "is missing: [orders] needs the commands queue the orders arrive on (the stack output CommandsQueueUrl)".into(),
                ));
            }
        }
        Ok(AgentConfig {
            source: path.to_owned(),
            agent_id: raw.agent_id,
            aws: raw.aws,
            sql: raw.sql,
            sql_password,
            store,
            heartbeat_interval: Duration::from_secs(interval),
            sync: raw.sync,
            orders: raw.orders,
        })
    }

    /// One line for `agent check`, without secrets.
    pub fn summary(&self) -> String {
        format!(
            "agent `{}`, events queue {}, SQL password {}, state in {}",
            self.agent_id,
            self.aws.events_queue_url,
            if self.sql_password.is_some() {
                "set"
            } else {
                "not set"
            },
            self.store.path.display()
        )
    }

    /// Where the SQL layer connects, from `[sql]`.
    pub fn sql_target(&self) -> crate::sql::SqlTarget {
        crate::sql::SqlTarget {
            ado: self.sql_connection_string(),
            timeout_seconds: self.sql.connect_timeout_seconds,
        }
    }

    /// The ADO connection string with the password added, for tiberius only.
    pub fn sql_connection_string(&self) -> Secret {
        match &self.sql_password {
            None => Secret::new(self.sql.connection_string.clone()),
            Some(password) => {
                // ADO quoting: braces around the value, a '}' doubled inside.
                let quoted = password.expose().replace('}', "}}");
                let base = self.sql.connection_string.trim_end_matches(';');
                Secret::new(format!("{base};password={{{quoted}}}"))
            }
        }
    }
}

fn check_queue_url(url: &str) -> Result<(), String> {
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok {
        return Err(format!(
            "= `{url}` is not a queue URL: expected https://sqs.<region>.amazonaws.com/<account>/<name>.fifo (the stack output)"
        ));
    }
    if !url.ends_with(".fifo") {
        return Err(format!(
            "= `{url}` is not a FIFO queue: the agent's queues end in .fifo (copy the stack output)"
        ));
    }
    Ok(())
}

fn read_password_file(path: &Path) -> Result<Secret, String> {
    check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("= {}: {e}", path.display()))?;
    let password = text.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(format!("= {}: the file is empty", path.display()));
    }
    Ok(Secret::new(password))
}

/// A secrets file must exist and, on Unix, be readable by its owner only
/// (on Windows its ACL is set with icacls: docs/INSTALL.md).
fn check_private(path: &Path) -> Result<(), String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("= {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "= {}: readable by others (mode {:o}); run `chmod 600 {}` so only the service account can read it",
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    Ok(())
}

/// Figment's messages, one per problem, with the key path and where it came from.
fn describe_figment_error(err: figment::Error) -> String {
    err.into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!("`{}` ", e.path.join("."))
            };
            let origin = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            format!("{key}{}{origin}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}
