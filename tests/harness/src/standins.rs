//! The ERP and shop stand-ins as processes, started from their own binaries
//! exactly as a person would (see docs/optima-standin.md, docs/woo-standin.md).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::cloud::random_secret;
use crate::free_port;
use crate::paths::workspace_bin;
use crate::process::Process;

/// The SQL Server stand-in holding an Optima company database.
pub struct OptimaStandin {
    pub process: Process,
    /// ADO connection string without the password (as the agent wants it).
    pub connection_string: String,
    pub password: String,
    pub db: std::path::PathBuf,
    port: u16,
}

impl OptimaStandin {
    /// Serves `db` (seeded with `products` products when missing) on a free port.
    pub fn start(db: &Path, products: usize, log_dir: &Path) -> anyhow::Result<OptimaStandin> {
        Self::start_on(
            db,
            products,
            free_port()?,
            &random_secret(),
            &log_dir.join("optima-standin.log"),
        )
    }

    fn start_on(
        db: &Path,
        products: usize,
        port: u16,
        password: &str,
        log: &Path,
    ) -> anyhow::Result<OptimaStandin> {
        let mut command = Command::new(workspace_bin("optima-standin")?);
        command
            .arg("serve")
            .arg("--db")
            .arg(db)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--seed-products", &products.to_string()])
            .env("OPTIMA_STANDIN_PASSWORD", password);
        let mut process = Process::spawn("optima-standin", command, log)?;
        let line = process.wait_for_log("connection: ", Duration::from_secs(120))?;
        let ado = line
            .split_once("connection: ")
            .map(|(_, ado)| ado.trim().to_owned())
            .context("no connection string printed")?;
        let connection_string = ado.replace(&format!("password={password};"), "");
        Ok(OptimaStandin {
            process,
            connection_string,
            password: password.to_owned(),
            db: db.to_owned(),
            port,
        })
    }

    /// The SQL Server goes away (the process is killed, its port closes).
    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// Serves the same database on the same port with the same password
    /// again, logging to `log`.
    pub fn restart(&mut self, log: &Path) -> anyhow::Result<()> {
        self.process.kill();
        *self = Self::start_on(&self.db, 10, self.port, &self.password, log)?;
        Ok(())
    }

    /// The connection string with the password, for the project's own tools.
    pub fn ado_with_password(&self) -> String {
        format!(
            "{};password={}",
            self.connection_string.trim_end_matches(';'),
            self.password
        )
    }

    /// Every product's SKU (`Twr_Kod`; services excluded), read over TDS like any client.
    pub async fn skus(&self) -> anyhow::Result<Vec<String>> {
        let mut client = optima_standin::erp::connect(&self.ado_with_password()).await?;
        let rows = client
            .simple_query("SELECT Twr_Kod FROM CDN.Towary WHERE Twr_Typ <> 0 ORDER BY Twr_TwrId")
            .await?
            .into_first_result()
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.get::<&str, _>("Twr_Kod").map(str::to_owned))
            .collect())
    }

    /// Two products with plenty of stock in MAG (so the shop can sell them
    /// whatever the first sync publishes).
    pub async fn stocked_skus(&self) -> anyhow::Result<Vec<String>> {
        let mut sql = optima_standin::erp::connect(&self.ado_with_password()).await?;
        let rows = tiberius::Query::new(
            "SELECT TOP 2 t.Twr_Kod FROM CDN.Towary t JOIN CDN.TwrIlosci i ON i.TwI_TwrId = t.Twr_TwrId \
             JOIN CDN.Magazyny m ON m.Mag_MagId = i.TwI_MagId \
             WHERE m.Mag_Symbol = 'MAG' AND t.Twr_Typ = 1 AND t.Twr_NieAktywny = 0 AND t.Twr_Kod NOT LIKE 'BAD%' \
             GROUP BY t.Twr_Kod HAVING MIN(i.TwI_Ilosc - i.TwI_Rezerwacje) > 20 ORDER BY t.Twr_Kod",
        )
        .query(&mut sql)
        .await?
        .into_first_result()
        .await?;
        let skus: Vec<String> = rows
            .iter()
            .filter_map(|r| r.get::<&str, _>("Twr_Kod").map(str::to_owned))
            .collect();
        anyhow::ensure!(skus.len() == 2, "two stocked products: {skus:?}");
        Ok(skus)
    }

    /// One action of the office (realise an RO, add a product, …), as
    /// the office simulator performs it on the stand-in's database.
    pub async fn perform(&self, action: optima_standin::simulator::Action) -> anyhow::Result<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            optima_standin::simulator::Simulator::open(&db)?.perform(action)?;
            Ok(())
        })
        .await?
    }

    /// Runs the office simulator against the same database for `seconds`.
    pub fn simulate(&self, rate: f64, seconds: f64, log_dir: &Path) -> anyhow::Result<Process> {
        let mut command = Command::new(workspace_bin("optima-standin")?);
        command.arg("simulate").arg("--db").arg(&self.db).args([
            "--rate",
            &rate.to_string(),
            "--duration",
            &seconds.to_string(),
        ]);
        Process::spawn(
            "office simulator",
            command,
            &log_dir.join("office-simulator.log"),
        )
    }
}

/// The WooCommerce stand-in.
pub struct WooStandinProcess {
    pub process: Process,
    pub base_url: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    /// The secret the shop's order webhooks are signed with (made up here,
    /// given to the cloud as the shop's `webhook_secret`).
    pub webhook_secret: String,
}

impl WooStandinProcess {
    /// Serves on a free port; `state` keeps the shop across restarts.
    pub fn start(state: Option<&Path>, log_dir: &Path) -> anyhow::Result<WooStandinProcess> {
        Self::start_with(state, None, None, log_dir)
    }

    /// With a product per SKU in `seed_skus` (the shop's catalogue, created
    /// when missing) and a rate limit.
    pub fn start_with(
        state: Option<&Path>,
        seed_skus: Option<&[String]>,
        rate_limit: Option<u32>,
        log_dir: &Path,
    ) -> anyhow::Result<WooStandinProcess> {
        let port = free_port()?;
        let consumer_key = format!("ck_{}", random_secret());
        let consumer_secret = format!("cs_{}", random_secret());
        let mut command = Command::new(workspace_bin("woo-standin")?);
        command
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--key", &consumer_key, "--secret", &consumer_secret]);
        if let Some(state) = state {
            command.arg("--state").arg(state);
        }
        if let Some(skus) = seed_skus {
            let file = log_dir.join("woo-seed.txt");
            std::fs::write(&file, skus.join("\n"))?;
            command.arg("--seed-products-from-skus").arg(file);
        }
        if let Some(limit) = rate_limit {
            command.args(["--rate-limit", &limit.to_string()]);
        }
        let mut process = Process::spawn("woo-standin", command, &log_dir.join("woo-standin.log"))?;
        let line = process.wait_for_log("listening: ", Duration::from_secs(30))?;
        let base_url = line
            .split_once("listening: ")
            .map(|(_, url)| url.trim().to_owned())
            .context("no URL printed")?;
        Ok(WooStandinProcess {
            process,
            base_url,
            consumer_key,
            consumer_secret,
            webhook_secret: random_secret(),
        })
    }
}

impl WooStandinProcess {
    /// The stand-in's view of a product by SKU (its control API), if any.
    pub async fn product(&self, sku: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let response = reqwest::get(format!("{}/__standin/products/{sku}", self.base_url)).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(response.error_for_status()?.json().await?))
    }

    /// The shop configuration (`ShopsConfig`) and secrets (`ShopSecrets`)
    /// for this stand-in as shop `id`, selling from `price_list` and
    /// `warehouses`, at most `requests_per_second` with room for `burst`.
    pub fn shop_parameters(
        &self,
        id: &str,
        price_list: &str,
        warehouses: &[&str],
        requests_per_second: u32,
        burst: u32,
    ) -> (String, String) {
        let config = serde_json::json!([{
            "id": id,
            "platform": "woocommerce",
            "base_url": self.base_url,
            "rate_limits": {
                "requests": {"tokens": requests_per_second, "per_seconds": 1, "burst": burst}
            },
            "rules": {
                "price_list": price_list,
                "shop_prices": "gross",
                "rounding": "grosz",
                "warehouses": warehouses,
                "safety_buffer": "0",
                "inactive": "hide"
            }
        }]);
        let secrets = serde_json::json!({ id: {
            "consumer_key": self.consumer_key,
            "consumer_secret": self.consumer_secret,
            "webhook_secret": self.webhook_secret
        }});
        (config.to_string(), secrets.to_string())
    }
}

impl WooStandinProcess {
    /// The stand-in's counters (`/__standin/stats`).
    pub async fn stats(&self) -> anyhow::Result<serde_json::Value> {
        Ok(reqwest::get(format!("{}/__standin/stats", self.base_url))
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// The stand-in's request log (`/__standin/requests`), oldest first.
    pub async fn requests(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        Ok(
            reqwest::get(format!("{}/__standin/requests", self.base_url))
                .await?
                .error_for_status()?
                .json()
                .await?,
        )
    }
}

impl WooStandinProcess {
    /// Registers the shop's order webhooks (`order.created`, `order.updated`)
    /// through the REST API, as a person would in WooCommerce's settings,
    /// signed with [`webhook_secret`](Self::webhook_secret). The shop pings
    /// `delivery_url` on creation.
    pub async fn register_order_webhooks(&self, delivery_url: &str) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        for topic in ["order.created", "order.updated"] {
            let response = client
                .post(format!("{}/wp-json/wc/v3/webhooks", self.base_url))
                .basic_auth(&self.consumer_key, Some(&self.consumer_secret))
                .json(&serde_json::json!({
                    "name": format!("ERP sync {topic}"),
                    "topic": topic,
                    "delivery_url": delivery_url,
                    "secret": self.webhook_secret,
                }))
                .send()
                .await?;
            let status = response.status();
            anyhow::ensure!(
                status.is_success(),
                "registering the {topic} webhook: {status} {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Refunds part of an order as the shop's staff would, by hand (no
    /// gateway refund): `POST /orders/{id}/refunds` with the amount, the
    /// reason and `(line item id, quantity, refund total)` per line; returns
    /// the refund's JSON.
    pub async fn refund(
        &self,
        order_id: u64,
        amount: &str,
        reason: &str,
        lines: &[(u64, u32, &str)],
    ) -> anyhow::Result<serde_json::Value> {
        let line_items: Vec<serde_json::Value> = lines
            .iter()
            .map(|(id, quantity, total)| {
                serde_json::json!({"id": id, "quantity": quantity, "refund_total": total})
            })
            .collect();
        let response = reqwest::Client::new()
            .post(format!(
                "{}/wp-json/wc/v3/orders/{order_id}/refunds",
                self.base_url
            ))
            .basic_auth(&self.consumer_key, Some(&self.consumer_secret))
            .json(&serde_json::json!({
                "amount": amount,
                "reason": reason,
                "api_refund": false,
                "line_items": line_items,
            }))
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "refunding: {status} {body}");
        Ok(body)
    }

    /// Places an order as a customer would (`POST /__standin/orders`, a
    /// `NewOrder`); returns the order's JSON.
    pub async fn place_order(&self, order: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let response = reqwest::Client::new()
            .post(format!("{}/__standin/orders", self.base_url))
            .json(&order)
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "placing an order: {status} {body}");
        Ok(body)
    }

    /// Changes an order's status as the shop's admin would (`PUT
    /// /__standin/orders/{id}/status`; fires `order.updated`).
    pub async fn set_order_status(&self, id: u64, status: &str) -> anyhow::Result<()> {
        let response = reqwest::Client::new()
            .put(format!("{}/__standin/orders/{id}/status", self.base_url))
            .json(&serde_json::json!({ "status": status }))
            .send()
            .await?;
        let code = response.status();
        anyhow::ensure!(
            code.is_success(),
            "setting order {id} to {status}: {code} {}",
            response.text().await.unwrap_or_default()
        );
        Ok(())
    }

    /// An order with its notes (`GET /__standin/orders/{id}`).
    pub async fn order(&self, id: u64) -> anyhow::Result<serde_json::Value> {
        Ok(
            reqwest::get(format!("{}/__standin/orders/{id}", self.base_url))
                .await?
                .error_for_status()?
                .json()
                .await?,
        )
    }

    /// Merges `faults` into the stand-in's fault configuration (`PUT /__standin/faults`).
    pub async fn set_faults(&self, faults: serde_json::Value) -> anyhow::Result<()> {
        reqwest::Client::new()
            .put(format!("{}/__standin/faults", self.base_url))
            .json(&faults)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Every fault switch back off (`POST /__standin/faults/reset`; the
    /// webhook delay it was started with stays).
    pub async fn reset_faults(&self) -> anyhow::Result<()> {
        reqwest::Client::new()
            .post(format!("{}/__standin/faults/reset", self.base_url))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// The webhook delivery log (`/__standin/webhook-deliveries`).
    pub async fn webhook_deliveries(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        Ok(
            reqwest::get(format!("{}/__standin/webhook-deliveries", self.base_url))
                .await?
                .error_for_status()?
                .json()
                .await?,
        )
    }
}

/// The Allegro stand-in (`tests/allegro-standin`): the API and its OAuth on
/// one address, a seller whose offers carry the ERP's SKUs as external ids.
pub struct AllegroStandinProcess {
    pub process: Process,
    /// The API root (`/sale/offers`, `/order/events` go under it).
    pub api_url: String,
    pub client_id: String,
    pub client_secret: String,
}

impl AllegroStandinProcess {
    /// Serves on a free port with an offer per SKU in `seed_skus` (at a
    /// placeholder price and no stock, until the first sync).
    pub fn start(seed_skus: &[String], log_dir: &Path) -> anyhow::Result<AllegroStandinProcess> {
        let port = free_port()?;
        let client_id = format!("app-{}", random_secret());
        let client_secret = random_secret();
        let offers = log_dir.join("allegro-offers.txt");
        let lines: Vec<String> = seed_skus
            .iter()
            .map(|sku| format!("{sku};Oferta {sku};1.00;1"))
            .collect();
        std::fs::write(&offers, lines.join("\n"))?;
        let mut command = Command::new(workspace_bin("allegro-standin")?);
        command
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--client-id", &client_id])
            .args(["--command-delay-ms", "300", "--device-interval-secs", "1"])
            .arg("--seed-offers")
            .arg(&offers)
            .env("ALLEGRO_STANDIN_SECRET", &client_secret);
        let mut process = Process::spawn(
            "allegro-standin",
            command,
            &log_dir.join("allegro-standin.log"),
        )?;
        let line = process.wait_for_log("api: ", Duration::from_secs(30))?;
        let api_url = line
            .split_once("api: ")
            .map(|(_, url)| url.trim().to_owned())
            .context("no URL printed")?;
        Ok(AllegroStandinProcess {
            process,
            api_url,
            client_id,
            client_secret,
        })
    }

    /// The shop `id` selling on this Allegro, as the operator configures it.
    pub fn shop_parameters(
        &self,
        id: &str,
        price_list: &str,
        warehouses: &[&str],
    ) -> (String, String) {
        allegro_shop_parameters(
            id,
            &self.api_url,
            &self.client_id,
            &self.client_secret,
            price_list,
            warehouses,
        )
    }

    /// Links the seller to shop `id` of `stack` as the operator does:
    /// `deploy.py allegro-authorize`, the seller confirming the code it
    /// shows (here through the stand-in's control API).
    pub async fn authorize(&self, endpoint: &str, stack: &str, id: &str) -> anyhow::Result<()> {
        use std::io::{BufRead, BufReader};

        let mut command = crate::stack::deploy_command(endpoint)?;
        command
            .args([
                "allegro-authorize",
                "--stack",
                stack,
                "--shop",
                id,
                "--timeout",
                "60",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command
            .spawn()
            .context("starting deploy.py allegro-authorize")?;
        let stdout = child.stdout.take().context("stdout")?;
        let shown: Vec<String> = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .take(2)
                .collect()
        })
        .await?;
        let code = shown
            .last()
            .and_then(|line| line.split("confirm the code: ").nth(1))
            .with_context(|| format!("deploy.py showed no code: {shown:?}"))?
            .to_owned();
        reqwest::Client::new()
            .post(format!("{}/__standin/devices/approve", self.api_url))
            .json(&serde_json::json!({ "code": code }))
            .send()
            .await?
            .error_for_status()
            .context("approving the code in the stand-in")?;
        let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
        anyhow::ensure!(
            output.status.success(),
            "deploy.py allegro-authorize failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// The offers (`/__standin/offers`).
    pub async fn offers(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        Ok(reqwest::get(format!("{}/__standin/offers", self.api_url))
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

/// Several shops' parameters as one deployment's: the configuration lists
/// and the credential objects joined.
pub fn joined_shop_parameters(shops: &[(String, String)]) -> anyhow::Result<(String, String)> {
    let mut config = Vec::new();
    let mut secrets = serde_json::Map::new();
    for (shop_config, shop_secrets) in shops {
        let list: Vec<serde_json::Value> = serde_json::from_str(shop_config)?;
        config.extend(list);
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(shop_secrets)?;
        secrets.extend(object);
    }
    Ok((
        serde_json::Value::Array(config).to_string(),
        serde_json::Value::Object(secrets).to_string(),
    ))
}

/// An Allegro shop as the operator configures it, API and OAuth at
/// `api_url`: `(ShopsConfig entries, credentials by shop)`.
pub fn allegro_shop_parameters(
    id: &str,
    api_url: &str,
    client_id: &str,
    client_secret: &str,
    price_list: &str,
    warehouses: &[&str],
) -> (String, String) {
    let config = serde_json::json!([{
        "id": id,
        "platform": "allegro",
        "base_url": api_url,
        "settings": {"auth_url": api_url, "command_poll": 100, "timeout": 10},
        "rules": {
            "price_list": price_list,
            "shop_prices": "gross",
            "rounding": "grosz",
            "warehouses": warehouses,
            "safety_buffer": "0",
            "inactive": "hide"
        }
    }]);
    let secrets = serde_json::json!({ id: {
        "client_id": client_id,
        "client_secret": client_secret,
    }});
    (config.to_string(), secrets.to_string())
}

/// The Shoper stand-in (`tests/shoper-standin`): a shop whose product
/// stocks carry the ERP's SKUs as codes.
pub struct ShoperStandinProcess {
    pub process: Process,
    /// The shop's address (the API is under `/webapi/rest`).
    pub base_url: String,
    pub login: String,
    pub password: String,
    /// The key the shop signs its webhooks with (made up here).
    pub webhook_secret: String,
}

impl ShoperStandinProcess {
    /// Serves on a free port with a product per SKU in `seed_skus` (at a
    /// placeholder price and no stock, until the first sync).
    pub fn start(seed_skus: &[String], log_dir: &Path) -> anyhow::Result<ShoperStandinProcess> {
        let port = free_port()?;
        let login = "webapi-sync".to_owned();
        let password = random_secret();
        let products = log_dir.join("shoper-products.txt");
        let lines: Vec<String> = seed_skus
            .iter()
            .map(|sku| format!("{sku};Produkt {sku};1.00;0"))
            .collect();
        std::fs::write(&products, lines.join("\n"))?;
        let mut command = Command::new(workspace_bin("shoper-standin")?);
        command
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--login", &login])
            .arg("--seed-products")
            .arg(&products)
            .env("SHOPER_STANDIN_PASSWORD", &password);
        let mut process = Process::spawn(
            "shoper-standin",
            command,
            &log_dir.join("shoper-standin.log"),
        )?;
        let line = process.wait_for_log("api: ", Duration::from_secs(30))?;
        let api = line
            .split_once("api: ")
            .map(|(_, url)| url.trim().to_owned())
            .context("no URL printed")?;
        let base_url = api.trim_end_matches("/webapi/rest").to_owned();
        Ok(ShoperStandinProcess {
            process,
            base_url,
            login,
            password,
            webhook_secret: random_secret(),
        })
    }

    /// The shop `id`, as the operator configures it.
    pub fn shop_parameters(
        &self,
        id: &str,
        price_list: &str,
        warehouses: &[&str],
    ) -> (String, String) {
        shoper_shop_parameters(
            id,
            &self.base_url,
            (&self.login, &self.password),
            &self.webhook_secret,
            price_list,
            warehouses,
        )
    }

    /// Adds the cloud's webhook for the order events, as in the shop's
    /// panel (Konfiguracja → Integracje → Webhooki).
    pub async fn register_order_webhooks(&self, delivery_url: &str) -> anyhow::Result<()> {
        reqwest::Client::new()
            .post(format!("{}/__standin/webhooks", self.base_url))
            .json(&serde_json::json!({
                "url": delivery_url,
                "secret": self.webhook_secret,
                "events": ["order.create", "order.edit", "order.paid", "order.status"],
            }))
            .send()
            .await?
            .error_for_status()
            .context("adding the webhook in the Shoper stand-in")?;
        Ok(())
    }
}

/// A Shoper shop as the operator configures it: `(ShopsConfig entries,
/// credentials by shop)`; `user` is the WebAPI user's login and password.
pub fn shoper_shop_parameters(
    id: &str,
    base_url: &str,
    user: (&str, &str),
    webhook_secret: &str,
    price_list: &str,
    warehouses: &[&str],
) -> (String, String) {
    let config = serde_json::json!([{
        "id": id,
        "platform": "shoper",
        "base_url": base_url,
        "settings": {"timeout": 10},
        "rules": {
            "price_list": price_list,
            "shop_prices": "gross",
            "rounding": "grosz",
            "warehouses": warehouses,
            "safety_buffer": "0",
            "inactive": "hide"
        }
    }]);
    let secrets = serde_json::json!({ id: {
        "login": user.0,
        "password": user.1,
        "webhook_secret": webhook_secret,
    }});
    (config.to_string(), secrets.to_string())
}

/// `GET url` as JSON (a stand-in's control API).
async fn control_get(url: String) -> anyhow::Result<serde_json::Value> {
    reqwest::get(&url)
        .await
        .with_context(|| format!("GET {url}"))?
        .error_for_status()
        .with_context(|| format!("GET {url}"))?
        .json()
        .await
        .with_context(|| format!("GET {url}: not JSON"))
}

/// `POST url` with a JSON body to a stand-in's control API; the answer's JSON.
async fn control_post(url: String, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let response = reqwest::Client::new()
        .post(&url)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    anyhow::ensure!(status.is_success(), "POST {url}: {status} {answer}");
    Ok(answer)
}

/// The last `limit` entries of a request log (`/__standin/requests?limit=N`),
/// oldest first, as a list.
async fn request_log_tail(base: &str, limit: usize) -> anyhow::Result<Vec<serde_json::Value>> {
    match control_get(format!("{base}/__standin/requests?limit={limit}")).await? {
        serde_json::Value::Array(list) => Ok(list),
        other => anyhow::bail!("the request log is not a list: {other}"),
    }
}

impl WooStandinProcess {
    /// The last `limit` API requests of the log (`/__standin/requests?limit=N`).
    pub async fn recent_requests(&self, limit: usize) -> anyhow::Result<Vec<serde_json::Value>> {
        request_log_tail(&self.base_url, limit).await
    }
}

impl AllegroStandinProcess {
    /// The last `limit` requests of the log (API and OAuth; `/__standin/requests?limit=N`).
    pub async fn recent_requests(&self, limit: usize) -> anyhow::Result<Vec<serde_json::Value>> {
        request_log_tail(&self.api_url, limit).await
    }

    /// Every command with its tasks (`/__standin/commands`), oldest first.
    pub async fn commands(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        match control_get(format!("{}/__standin/commands", self.api_url)).await? {
            serde_json::Value::Array(list) => Ok(list),
            other => anyhow::bail!("the command list is not a list: {other}"),
        }
    }

    /// A buyer's purchase (`POST /__standin/orders`, a `NewOrder` such as
    /// `{"lines": [{"offer_id": "…", "quantity": 1}]}`); the order's JSON.
    pub async fn place_order(
        &self,
        order: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        control_post(format!("{}/__standin/orders", self.api_url), order).await
    }
}

impl ShoperStandinProcess {
    /// The last `limit` requests of the log (`/__standin/requests?limit=N`).
    pub async fn recent_requests(&self, limit: usize) -> anyhow::Result<Vec<serde_json::Value>> {
        request_log_tail(&self.base_url, limit).await
    }

    /// Every product stock (`/__standin/stocks`): `code` is the SKU.
    pub async fn stocks(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        match control_get(format!("{}/__standin/stocks", self.base_url)).await? {
            serde_json::Value::Array(list) => Ok(list),
            other => anyhow::bail!("the stock list is not a list: {other}"),
        }
    }

    /// A buyer's order (`POST /__standin/orders`, a `NewOrder` such as
    /// `{"lines": [{"code": "SKU", "quantity": 1}], "paid": true}`); the order's JSON.
    pub async fn place_order(
        &self,
        order: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        control_post(format!("{}/__standin/orders", self.base_url), order).await
    }
}

/// A private buyer's WooCommerce order (`POST /__standin/orders`) for
/// `lines` (`[[sku, quantity], …]`), paid by transfer, with shipping; buyer
/// `n` is "Klient {surname} {n}", klient{n}@example.pl.
pub fn woo_buyer_order(surname: &str, n: usize, lines: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "line_items": lines,
        "billing": {"first_name": "Klient", "last_name": format!("{surname} {n}"),
                    "address_1": "ul. Długa 1", "city": "Łódź", "postcode": "90-001",
                    "country": "PL", "email": format!("klient{n}@example.pl")},
        "payment_method": "bacs",
        "shipping_total": "12.19",
        "status": "processing"
    })
}
