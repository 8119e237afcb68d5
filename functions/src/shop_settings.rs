//! A shop's settings as the console's Shops page edits them: the same JSON
//! object one entry of `SHOPS` (`ShopsConfig`) is, read by the same code
//! ([`crate::shops::read_shop`]), kept in the state table with its history,
//! and laid over that shop's `SHOPS` entry by every function that reads
//! the shops ([`ShopsSource`]) within [`CACHE`] of a save.
//!
//! Items: `pk = shop-settings#<shop>`; `sk = v#<version, 10 digits>` per
//! version (who, when, a note, the JSON) and `sk = current` (the newest
//! version's number and JSON). A save writes both in one transaction, the
//! `current` item on condition that it still holds the version the editor
//! started from, so of two editors one wins and the other is told. The
//! history is a Query on the partition, newest first; nothing scans.
//!
//! The credentials are not here: they stay in the `SHOP_SECRETS_ARN`
//! secret, which [`CredentialsSecret`] changes field by field and never
//! reads back to a page. Each change is recorded in the state table
//! (`pk = shop-credentials`, `sk = version`: the secret's version the
//! console wrote), so a warm function reads the secret again only when that
//! record changed: one GetItem per [`CACHE`], one GetSecretValue per change.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::Value;
use tracing::{info, warn};

use crate::aws::{Clients, describe_error};
use crate::dynamo::{get_n, get_s, get_time, n, s, written};
use crate::env::FunctionEnv;
use crate::shops::{ShopConfig, Shops, ShopsError, read_shop};

/// How long a warm function keeps the stored settings before reading them
/// again: a save lands everywhere within this.
pub const CACHE: Duration = Duration::from_secs(30);

/// One version of a shop's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsVersion {
    pub version: u64,
    pub at: DateTime<Utc>,
    /// The operator's e-mail.
    pub by: String,
    /// What changed, in words.
    pub note: String,
    /// The shop's entry, as `SHOPS` would hold it.
    pub settings: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("someone saved this shop's settings meanwhile (now version {0}): open the page again")]
    Conflict(u64),
    #[error("DynamoDB {operation} of shop settings failed: {message}")]
    Table {
        operation: &'static str,
        message: String,
    },
    #[error("stored shop settings {key} are unreadable: {problem}")]
    Malformed { key: String, problem: String },
}

/// The stored settings of every shop, in the state table.
#[derive(Debug, Clone)]
pub struct ShopSettings {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn partition(shop: &str) -> String {
    format!("shop-settings#{shop}")
}

fn version_key(version: u64) -> String {
    format!("v#{version:010}")
}

impl ShopSettings {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        ShopSettings {
            client,
            table: table.into(),
        }
    }

    fn read(item: &HashMap<String, AttributeValue>) -> Result<SettingsVersion, SettingsError> {
        let key = format!(
            "{}/{}",
            get_s(item, "pk").unwrap_or_default(),
            get_s(item, "sk").unwrap_or_default()
        );
        let malformed = |problem: &str| SettingsError::Malformed {
            key: key.clone(),
            problem: problem.to_owned(),
        };
        let settings = get_s(item, "settings").ok_or_else(|| malformed("no settings"))?;
        Ok(SettingsVersion {
            version: get_n(item, "version").ok_or_else(|| malformed("no version"))?,
            at: get_time(item, "at").ok_or_else(|| malformed("no time"))?,
            by: get_s(item, "by").unwrap_or_default().to_owned(),
            note: get_s(item, "note").unwrap_or_default().to_owned(),
            settings: serde_json::from_str(settings).map_err(|e| malformed(&e.to_string()))?,
        })
    }

    async fn get(&self, shop: &str, sk: &str) -> Result<Option<SettingsVersion>, SettingsError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(partition(shop)))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| SettingsError::Table {
                operation: "GetItem",
                message: describe_error(&e),
            })?;
        answer.item.as_ref().map(Self::read).transpose()
    }

    /// The shop's newest version, if the console ever saved one.
    pub async fn current(&self, shop: &str) -> Result<Option<SettingsVersion>, SettingsError> {
        self.get(shop, "current").await
    }

    /// One version.
    pub async fn version(
        &self,
        shop: &str,
        version: u64,
    ) -> Result<Option<SettingsVersion>, SettingsError> {
        self.get(shop, &version_key(version)).await
    }

    /// The newest `limit` versions, newest first.
    pub async fn history(
        &self,
        shop: &str,
        limit: i32,
    ) -> Result<Vec<SettingsVersion>, SettingsError> {
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
            .expression_attribute_values(":pk", s(partition(shop)))
            .expression_attribute_values(":v", s("v#"))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(|e| SettingsError::Table {
                operation: "Query",
                message: describe_error(&e),
            })?;
        answer.items().iter().map(Self::read).collect()
    }

    /// Saves `settings` as the version after `expected` (0: none saved
    /// yet); refused with [`SettingsError::Conflict`] when another save
    /// came first. Returns the new version's number.
    pub async fn save(
        &self,
        shop: &str,
        expected: u64,
        settings: &Value,
        by: &str,
        note: &str,
    ) -> Result<u64, SettingsError> {
        let version = expected + 1;
        let item = |sk: String| {
            HashMap::from([
                ("pk".to_owned(), s(partition(shop))),
                ("sk".to_owned(), s(sk)),
                ("version".to_owned(), n(version)),
                ("at".to_owned(), n(Utc::now().timestamp_millis())),
                ("by".to_owned(), s(by)),
                ("note".to_owned(), s(note)),
                ("settings".to_owned(), s(settings.to_string())),
            ])
        };
        let built = |e: aws_sdk_dynamodb::error::BuildError| SettingsError::Table {
            operation: "TransactWriteItems",
            message: e.to_string(),
        };
        let history = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item(version_key(version))))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(built)?;
        let current = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item("current".to_owned())));
        let current = match expected {
            0 => current.condition_expression("attribute_not_exists(pk)"),
            _ => current
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(expected)),
        }
        .build()
        .map_err(built)?;
        let outcome = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(history).build())
            .transact_items(TransactWriteItem::builder().put(current).build())
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(version),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                let now = self.current(shop).await?.map_or(0, |c| c.version);
                Err(SettingsError::Conflict(now))
            }
            Err(err) => Err(SettingsError::Table {
                operation: "TransactWriteItems",
                message: describe_error(&err),
            }),
        }
    }
}

/// `entry` read as the settings of `shop` (its id and platform kept): the
/// problem in words, or the shop it configures.
pub fn check(shop: &ShopConfig, entry: Value) -> Result<ShopConfig, String> {
    let read = read_shop(entry).map_err(|e| match e {
        crate::shops::ShopsError::Shop { problem, .. } => problem,
        other => other.to_string(),
    })?;
    if read.id != shop.id {
        return Err(format!("the id cannot change (it is {})", shop.id));
    }
    if read.platform.name() != shop.platform.name() {
        return Err(format!(
            "the platform cannot change (it is {})",
            shop.platform.name()
        ));
    }
    Ok(read)
}

/// What differs between two versions of a shop's settings, one line per
/// field: `rules.safety_buffer: 0 → 2` (`—` where a field is absent).
pub fn changes(old: &Value, new: &Value) -> Vec<String> {
    let (mut before, mut after) = (BTreeMap::new(), BTreeMap::new());
    flatten("", old, &mut before);
    flatten("", new, &mut after);
    let mut fields: Vec<&String> = before.keys().chain(after.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter(|field| before.get(*field) != after.get(*field))
        .map(|field| {
            let shown = |v: Option<&String>| v.cloned().unwrap_or_else(|| "—".to_owned());
            format!(
                "{field}: {} → {}",
                shown(before.get(field)),
                shown(after.get(field))
            )
        })
        .collect()
}

/// Each leaf of `value` (objects are walked; a list is one leaf) by its
/// dotted path.
fn flatten(path: &str, value: &Value, into: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                let path = match path {
                    "" => key.clone(),
                    _ => format!("{path}.{key}"),
                };
                flatten(&path, value, into);
            }
        }
        Value::String(text) => {
            into.insert(path.to_owned(), text.clone());
        }
        other => {
            into.insert(path.to_owned(), other.to_string());
        }
    }
}

/// The shops a function serves: `SHOPS` with the credentials the secret
/// holds and each shop's stored settings laid over its entry, read again
/// at most every [`CACHE`] (the credentials only when the console recorded
/// a change of them). A read that fails keeps what was known (at cold
/// start: `SHOPS` and the credentials read then) and says so in the log;
/// it never stops the function.
#[derive(Debug, Clone)]
pub struct ShopsSource {
    inner: Arc<SourceInner>,
}

#[derive(Debug)]
struct SourceInner {
    store: Option<ShopSettings>,
    credentials: Option<CredentialsWatch>,
    loaded: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    at: Option<Instant>,
    /// `SHOPS` with the credentials last read.
    base: Shops,
    /// `base` with the stored settings: replaced only when they changed,
    /// so what is built from it ([`BuiltFromShops`]) is built again then.
    shops: Arc<Shops>,
}

impl ShopsSource {
    /// `base` (from `SHOPS`) with the settings `store` holds; without a
    /// store, `base` as it is.
    pub fn new(base: Shops, store: Option<ShopSettings>) -> Self {
        Self::watching(base, store, None)
    }

    fn watching(
        base: Shops,
        store: Option<ShopSettings>,
        credentials: Option<CredentialsWatch>,
    ) -> Self {
        let shops = Arc::new(base.clone());
        ShopsSource {
            inner: Arc::new(SourceInner {
                store,
                credentials,
                loaded: Mutex::new(Loaded {
                    at: None,
                    base,
                    shops,
                }),
            }),
        }
    }

    /// `base` with the stored settings of the state table `STATE_TABLE`,
    /// and, when `base` holds the credentials of `SHOP_SECRETS_ARN`, those
    /// read again after the console changed them.
    pub fn from_env(base: Shops, clients: &Clients, env: &FunctionEnv) -> Self {
        let table = env.get("STATE_TABLE");
        let store = table.map(|table| ShopSettings::new(clients.dynamodb.clone(), table));
        let credentials = match (table, env.get("SHOP_SECRETS_ARN")) {
            (Some(table), Some(arn)) if base.holds_credentials() => Some(CredentialsWatch {
                secret: CredentialsSecret::new(
                    clients.secrets.clone(),
                    arn,
                    CredentialsRecord::new(clients.dynamodb.clone(), table),
                ),
                state: Mutex::new(WatchState {
                    held: env.shop_secrets_version().map(str::to_owned),
                    seen: None,
                }),
            }),
            _ => None,
        };
        ShopsSource::watching(base, store, credentials)
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, Loaded> {
        // A panic elsewhere while holding the lock leaves valid data.
        self.inner
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The shops as last read.
    pub fn now(&self) -> Arc<Shops> {
        self.loaded().shops.clone()
    }

    /// The shops, read again when the last read is older than [`CACHE`].
    pub async fn refresh(&self) -> Arc<Shops> {
        if self.inner.store.is_none() && self.inner.credentials.is_none() {
            return self.now();
        }
        let base = {
            let loaded = self.loaded();
            if loaded.at.is_some_and(|at| at.elapsed() < CACHE) {
                return loaded.shops.clone();
            }
            loaded.base.clone()
        };
        let new_base = match &self.inner.credentials {
            Some(watch) => watch.reread(&base).await,
            None => None,
        };
        let base_changed = new_base.is_some();
        let base = new_base.unwrap_or(base);
        let mut stored = BTreeMap::new();
        let mut failed = None;
        if let Some(store) = &self.inner.store {
            for shop in &base.shops {
                match store.current(&shop.id).await {
                    Ok(Some(current)) => {
                        stored.insert(shop.id.clone(), current.settings);
                    }
                    Ok(None) => {}
                    Err(err) => {
                        failed = Some(err);
                        break;
                    }
                }
            }
        }
        let mut loaded = self.loaded();
        loaded.at = Some(Instant::now());
        let shops = match failed {
            Some(err) => {
                warn!(error = %err, "stored shop settings unreadable: the last known settings stay");
                match base_changed {
                    // The new credentials under the settings last known.
                    true => Some(loaded.shops.with_credentials_of(&base)),
                    false => None,
                }
            }
            None => {
                let (shops, problems) = base.with_settings(&stored);
                for problem in problems {
                    warn!(error = %problem, "stored shop settings refused: the shop keeps its SHOPS entry");
                }
                (base_changed || !shops.same_entries(&loaded.shops)).then_some(shops)
            }
        };
        if let Some(shops) = shops {
            loaded.shops = Arc::new(shops);
        }
        loaded.base = base;
        loaded.shops.clone()
    }
}

type BuildFromShops<T> = Box<dyn Fn(&Shops) -> Result<T, ShopsError> + Send + Sync>;

/// Something a function builds from its shops (the connectors, the
/// webhook's checker), built again when [`ShopsSource`] gives other shops
/// (credentials or settings changed in the console). A build that fails
/// keeps the last one and says so in the log.
pub struct BuiltFromShops<T> {
    build: BuildFromShops<T>,
    built: Mutex<(Arc<Shops>, Arc<T>)>,
}

impl<T> std::fmt::Debug for BuiltFromShops<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BuiltFromShops")
    }
}

impl<T> BuiltFromShops<T> {
    /// Built from `shops` now (at cold start: a failure stops the function).
    pub fn new(
        shops: Arc<Shops>,
        build: impl Fn(&Shops) -> Result<T, ShopsError> + Send + Sync + 'static,
    ) -> Result<Self, ShopsError> {
        let built = Arc::new(build(&shops)?);
        Ok(BuiltFromShops {
            build: Box::new(build),
            built: Mutex::new((shops, built)),
        })
    }

    /// What `shops` give, built again when they are not the ones it was
    /// built from.
    pub fn for_shops(&self, shops: &Arc<Shops>) -> Arc<T> {
        {
            let built = self.lock();
            if Arc::ptr_eq(&built.0, shops) {
                return built.1.clone();
            }
        }
        let mut built = self.lock();
        match (self.build)(shops) {
            Ok(fresh) => *built = (shops.clone(), Arc::new(fresh)),
            Err(err) => {
                warn!(error = %err, "the changed shops could not be used: the last ones stay");
                // Not tried again until the shops change again.
                built.0 = shops.clone();
            }
        }
        built.1.clone()
    }

    /// What was built last.
    pub fn now(&self) -> Arc<T> {
        self.lock().1.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Arc<Shops>, Arc<T>)> {
        self.built
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether the console changed the credentials secret since a function
/// read it: the record's version against the one the function holds.
#[derive(Debug)]
struct CredentialsWatch {
    secret: CredentialsSecret,
    state: Mutex<WatchState>,
}

#[derive(Debug)]
struct WatchState {
    /// The secret's version the function's credentials are.
    held: Option<String>,
    /// The recorded version last acted on: a record that does not name
    /// what the function holds (the secret changed outside the console
    /// since) causes one read, not one per [`CACHE`].
    seen: Option<String>,
}

impl CredentialsWatch {
    fn state(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `base` with the credentials read again, when the console recorded
    /// a change since they were read; None: unchanged, or unreadable (the
    /// log says which, never what they are).
    async fn reread(&self, base: &Shops) -> Option<Shops> {
        let recorded = match self.secret.record.version().await {
            Ok(Some(recorded)) => recorded,
            Ok(None) => return None,
            Err(err) => {
                warn!(error = %err, "the credentials' change record is unreadable: the credentials stay");
                return None;
            }
        };
        {
            let mut state = self.state();
            if state.held.as_ref() == Some(&recorded) || state.seen.as_ref() == Some(&recorded) {
                state.seen = Some(recorded);
                return None;
            }
        }
        let (text, version) = match self.secret.read_text().await {
            Ok(read) => read,
            Err(err) => {
                warn!(error = %err, "the changed credentials are unreadable: the credentials stay");
                return None;
            }
        };
        {
            let mut state = self.state();
            state.seen = Some(recorded);
            if version.is_some() && state.held == version {
                return None;
            }
            state.held = version;
        }
        match base.with_credentials(&text) {
            Ok(shops) => {
                info!("the shop credentials changed in the console: the new ones are in use");
                Some(shops)
            }
            Err(err) => {
                warn!(error = %err, "the changed credentials are refused: the credentials stay");
                None
            }
        }
    }
}

/// The shop credentials secret (`SHOP_SECRETS_ARN`): JSON, an entry per
/// shop id. Changed one shop's fields at a time; never read back to a page.
#[derive(Debug, Clone)]
pub struct CredentialsSecret {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
    record: CredentialsRecord,
}

/// How long a credentials save may hold the secret, and how long another
/// waits for it before giving up.
const CREDENTIALS_LEASE: Duration = Duration::from_secs(30);
const CREDENTIALS_WAIT: Duration = Duration::from_secs(10);

impl CredentialsSecret {
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        arn: impl Into<String>,
        record: CredentialsRecord,
    ) -> Self {
        CredentialsSecret {
            client,
            arn: arn.into(),
            record,
        }
    }

    /// The secret's text and its version. The text holds secrets: it
    /// stays a [`SecretString`] and no error echoes it.
    async fn read_text(&self) -> Result<(SecretString, Option<String>), String> {
        let answer = self
            .client
            .get_secret_value()
            .secret_id(&self.arn)
            .send()
            .await
            .map_err(|e| format!("reading the credentials secret: {}", describe_error(&e)))?;
        let text = answer.secret_string().unwrap_or("{}").to_owned();
        Ok((SecretString::from(text), answer.version_id))
    }

    async fn read(&self) -> Result<serde_json::Map<String, Value>, String> {
        let (text, _) = self.read_text().await?;
        // The text holds secrets: never echo it.
        serde_json::from_str(secrecy::ExposeSecret::expose_secret(&text)).map_err(|_| {
            "the credentials secret is not a JSON object of credentials per shop".to_owned()
        })
    }

    /// Per field of the shop's platform, whether the secret holds a
    /// non-empty value.
    pub async fn which_set(&self, shop: &ShopConfig) -> Result<Vec<(&'static str, bool)>, String> {
        let all = self.read().await?;
        let entry = all.get(&shop.id);
        Ok(crate::shops::credential_fields(shop.platform.name())
            .iter()
            .map(|field| {
                let set = entry
                    .and_then(|e| e.get(*field))
                    .and_then(Value::as_str)
                    .is_some_and(|v| !v.is_empty());
                (*field, set)
            })
            .collect())
    }

    /// Writes the `changed` fields (name, new value) into the shop's
    /// entry, the rest of the secret as it was; refused, unwritten, when
    /// the entry would not be the platform's credentials. Returns the
    /// names of the fields whose value changed.
    ///
    /// Secrets Manager has no conditional write, so two saves at once
    /// (two operators, two shops) would each read the secret, change their
    /// own shop's entry and write the whole: the later write would lose the
    /// earlier one's change. The read-modify-write therefore runs under a
    /// lease, a conditional item in the state table ([`CredentialsRecord`]),
    /// and a second save waits for it (at most [`CREDENTIALS_WAIT`]). The
    /// lease lapses after [`CREDENTIALS_LEASE`] should its holder die; a
    /// save takes well under a second, far inside it.
    pub async fn update(
        &self,
        shop: &ShopConfig,
        changed: &[(String, String)],
    ) -> Result<Vec<String>, String> {
        let holder = uuid::Uuid::new_v4().to_string();
        let waited = Instant::now();
        while !self.record.take_lease(&holder).await? {
            if waited.elapsed() > CREDENTIALS_WAIT {
                return Err(
                    "another save of the credentials is under way: try again in a moment".into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let outcome = self.update_holding_lease(shop, changed).await;
        self.record.give_back(&holder).await;
        outcome
    }

    async fn update_holding_lease(
        &self,
        shop: &ShopConfig,
        changed: &[(String, String)],
    ) -> Result<Vec<String>, String> {
        let mut all = self.read().await?;
        let entry = all
            .entry(shop.id.clone())
            .or_insert_with(|| Value::Object(Default::default()));
        let Some(fields) = entry.as_object_mut() else {
            return Err("the shop's entry in the credentials secret is not an object".into());
        };
        let mut names = Vec::new();
        for (name, value) in changed {
            if fields.get(name).and_then(Value::as_str) != Some(value.as_str()) {
                fields.insert(name.clone(), Value::String(value.clone()));
                names.push(name.clone());
            }
        }
        if names.is_empty() {
            return Ok(names);
        }
        Shops::check_credentials(shop, entry.clone())?;
        let written = self
            .client
            .put_secret_value()
            .secret_id(&self.arn)
            .secret_string(Value::Object(all).to_string())
            .send()
            .await
            .map_err(|e| format!("writing the credentials secret: {}", describe_error(&e)))?;
        // Any new value tells the functions to read the secret again; the
        // secret's own version spares a function that already holds it
        // (one started since) the read.
        let version = written
            .version_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if let Err(err) = self.record.record(&version).await {
            warn!(error = %err, "credentials saved, but the change is not recorded: warm functions take them at their next cold start");
        }
        Ok(names)
    }
}

/// The state table's items about the credentials secret, `pk =
/// shop-credentials`: `sk = lease` (which save holds the secret, until
/// when) and `sk = version` (the secret's version the console wrote last).
#[derive(Debug, Clone)]
pub struct CredentialsRecord {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

const CREDENTIALS_PARTITION: &str = "shop-credentials";

impl CredentialsRecord {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        CredentialsRecord {
            client,
            table: table.into(),
        }
    }

    fn key(sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), s(CREDENTIALS_PARTITION)),
            ("sk".to_owned(), s(sk)),
        ])
    }

    /// Takes the lease for `holder` when nobody holds it, or its holder's
    /// time is up; false: someone else holds it.
    async fn take_lease(&self, holder: &str) -> Result<bool, String> {
        let now = Utc::now();
        let until = now
            + chrono::Duration::from_std(CREDENTIALS_LEASE)
                .unwrap_or(chrono::Duration::seconds(30));
        let mut item = Self::key("lease");
        item.insert("holder".into(), s(holder));
        item.insert("until_ms".into(), n(until.timestamp_millis()));
        // The table's TTL removes a lease left behind.
        item.insert("expires_at".into(), n(until.timestamp() + 3600));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR until_ms < :now")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await;
        written(put)
            .map(|done| done.is_some())
            .map_err(|e| format!("the credentials lease: {}", describe_error(&e)))
    }

    async fn give_back(&self, holder: &str) {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key("lease")))
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", s(holder))
            .send()
            .await;
        if let Err(err) = written(deleted) {
            // It lapses by itself.
            warn!(error = %describe_error(&err), "the credentials lease was not given back");
        }
    }

    async fn record(&self, version: &str) -> Result<(), String> {
        let mut item = Self::key("version");
        item.insert("version_id".into(), s(version));
        item.insert("at".into(), n(Utc::now().timestamp_millis()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("recording the credentials' change: {}", describe_error(&e)))
    }

    /// The secret's version the console wrote last, if it ever wrote one.
    async fn version(&self) -> Result<Option<String>, String> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key("version")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "reading the credentials' change record: {}",
                    describe_error(&e)
                )
            })?;
        Ok(answer
            .item
            .as_ref()
            .and_then(|item| get_s(item, "version_id"))
            .map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shop() -> Value {
        json!({
            "id": "sklep", "platform": "woocommerce", "base_url": "https://sklep.example.pl",
            "rules": {"price_list": "Detaliczna", "warehouses": ["MAG"]},
        })
    }

    #[test]
    fn changes_name_each_field_with_its_old_and_new_value() {
        let mut new = shop();
        new["rules"]["safety_buffer"] = json!(2);
        new["rules"]["warehouses"] = json!(["MAG", "SKLEP"]);
        new["order_trigger"] = json!("placed");
        assert_eq!(
            changes(&shop(), &new),
            vec![
                "order_trigger: — → placed",
                "rules.safety_buffer: — → 2",
                r#"rules.warehouses: ["MAG"] → ["MAG","SKLEP"]"#,
            ]
        );
        assert!(changes(&new, &new).is_empty());
        assert_eq!(
            changes(&new, &shop()),
            vec![
                "order_trigger: placed → —",
                "rules.safety_buffer: 2 → —",
                r#"rules.warehouses: ["MAG","SKLEP"] → ["MAG"]"#,
            ]
        );
    }

    #[test]
    fn check_reads_with_the_shops_parser_and_keeps_id_and_platform() {
        let current = read_shop(shop()).expect("a shop");
        let mut tuned = shop();
        tuned["rules"]["safety_buffer"] = json!("3");
        let read = check(&current, tuned).expect("a valid change");
        assert_eq!(read.rules.safety_buffer, rust_decimal::Decimal::from(3));

        for (field, value, expected) in [
            ("id", json!("inny"), "the id cannot change"),
            ("platform", json!("shoper"), "the platform cannot change"),
            (
                "order_trigger",
                json!("when-paid"),
                "placed, paid or status:",
            ),
            ("bogus", json!(1), "unknown field"),
        ] {
            let mut wrong = shop();
            wrong[field] = value;
            let err = check(&current, wrong).expect_err(field);
            assert!(err.contains(expected), "{field}: {err}");
        }
        let mut negative = shop();
        negative["rules"]["safety_buffer"] = json!("-1");
        let err = check(&current, negative).expect_err("a negative buffer");
        assert!(err.contains("safety_buffer is negative"), "{err}");
    }

    #[test]
    fn stored_settings_replace_their_shops_entry_and_bad_ones_are_ignored() {
        let mut env = FunctionEnv::default();
        env.set("SHOPS", json!([shop()]).to_string());
        let base = Shops::from_env(&env, false).expect("shops");
        let mut tuned = shop();
        tuned["rules"]["safety_buffer"] = json!("4");
        let (shops, problems) = base.with_settings(&BTreeMap::from([
            ("sklep".to_owned(), tuned.clone()),
            ("nieznany".to_owned(), shop()),
        ]));
        assert!(problems.is_empty(), "{problems:?}");
        let read = shops.get("sklep").expect("the shop");
        assert_eq!(read.rules.safety_buffer, rust_decimal::Decimal::from(4));
        assert_eq!(shops.written("sklep"), Some(&tuned));
        assert_eq!(shops.shops.len(), 1, "a stored shop never adds one");

        let mut moved = shop();
        moved["platform"] = json!("shoper");
        let mut broken = shop();
        broken["rules"]["warehouses"] = json!([]);
        for bad in [moved, broken] {
            let (shops, problems) =
                base.with_settings(&BTreeMap::from([("sklep".to_owned(), bad)]));
            assert_eq!(problems.len(), 1);
            let kept = shops.get("sklep").expect("the shop");
            assert_eq!(kept.rules.safety_buffer, rust_decimal::Decimal::ZERO);
            assert_eq!(shops.written("sklep"), Some(&shop()));
        }
    }

    #[test]
    fn new_credentials_replace_the_old_and_wrong_ones_are_refused_unechoed() {
        let mut env = FunctionEnv::default();
        env.set("SHOPS", json!([shop()]).to_string());
        env.set_shop_secrets(
            json!({"sklep": {"consumer_key": "ck", "consumer_secret": "cs", "webhook_secret": "stary"}})
                .to_string(),
        );
        let shops = Shops::from_env(&env, true).expect("shops");
        assert!(shops.holds_credentials());
        let new = SecretString::from(
            json!({"sklep": {"consumer_key": "ck", "consumer_secret": "cs", "webhook_secret": "nowy"}})
                .to_string(),
        );
        let changed = shops.with_credentials(&new).expect("new credentials");
        assert_eq!(
            changed
                .webhook_secret("sklep")
                .map(crate::shop::Secret::expose),
            Some("nowy")
        );
        assert!(changed.same_entries(&shops), "the settings stay");
        let wrong = SecretString::from(json!({"sklep": {"api_key": "sekret-123"}}).to_string());
        let err = shops.with_credentials(&wrong).expect_err("wrong shape");
        assert!(!err.to_string().contains("sekret-123"), "{err}");
        let missing = SecretString::from(json!({}).to_string());
        assert!(shops.with_credentials(&missing).is_err());
    }

    #[test]
    fn what_is_built_from_the_shops_is_built_again_only_when_they_change() {
        let mut env = FunctionEnv::default();
        env.set("SHOPS", json!([shop()]).to_string());
        let first = Arc::new(Shops::from_env(&env, false).expect("shops"));
        let builds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = builds.clone();
        let built = BuiltFromShops::new(first.clone(), move |shops| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match shops.get("sklep").map(|s| s.rules.safety_buffer) {
                // A builder that cannot use a buffer of 5 (as a connector
                // cannot use credentials of the wrong shape).
                Some(buffer) if buffer == 5.into() => Err(ShopsError::Config("refused".into())),
                buffer => Ok(buffer),
            }
        })
        .expect("built");
        let count = || builds.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(*built.for_shops(&first), Some(0.into()));
        assert_eq!(count(), 1, "the same shops: not built again");

        let with_buffer = |buffer: &str| {
            let mut tuned = shop();
            tuned["rules"]["safety_buffer"] = json!(buffer);
            let (shops, problems) =
                first.with_settings(&BTreeMap::from([("sklep".to_owned(), tuned)]));
            assert!(problems.is_empty(), "{problems:?}");
            Arc::new(shops)
        };
        let second = with_buffer("2");
        assert_eq!(*built.for_shops(&second), Some(2.into()));
        assert_eq!(count(), 2);

        // A build that fails keeps the last one, and is not tried again
        // for the same shops.
        let refused = with_buffer("5");
        assert_eq!(*built.for_shops(&refused), Some(2.into()));
        assert_eq!(*built.for_shops(&refused), Some(2.into()));
        assert_eq!(count(), 3);
        assert_eq!(*built.now(), Some(2.into()));
    }

    #[tokio::test]
    async fn without_a_store_the_source_is_the_env() {
        let mut env = FunctionEnv::default();
        env.set("SHOPS", json!([shop()]).to_string());
        let source = ShopsSource::new(Shops::from_env(&env, false).expect("shops"), None);
        assert_eq!(source.refresh().await.shops.len(), 1);
        assert_eq!(source.now().shops[0].id, "sklep");
    }
}
