//! The fault campaign: the real pieces (Optima stand-in with its office
//! simulator, WooCommerce stand-in placing orders, the cloud in the
//! emulator, the agent) run while faults of every kind are injected one
//! after another; then the faults stop and an invariant checker waits for
//! the system to converge: every shop order one ERP document, every price
//! and stock in the shop what the ERP says, every parked item with a
//! reason, every DLQ empty.
//!
//! A fault is counted only once it is proven to have landed: a process
//! that was running was killed, a stand-in counter went down, a log line
//! appeared, a query was measured slow or read a stepped clock.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use functions::mapping::ShopRules;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::aws_proxy::{AwsProxy, ProxyMode};
use crate::cloud::{LocalCloud, start_agent};
use crate::process::Process;
use crate::standins::{OptimaStandin, WooStandinProcess};

/// The faults, one injector each ([`World::inject`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// `kill -9` of the agent at a random moment.
    AgentKill,
    /// The agent aborts inside the order transaction (after the header's
    /// INSERT, before the lines and the commit).
    AgentKillInOrderTransaction,
    /// The agent's state file replaced by an older copy of itself.
    StateRestore,
    /// The SQL Server process killed, and started again a moment later.
    SqlDown,
    /// Statements chosen as deadlock victims (1205).
    SqlDeadlock,
    /// Every statement slowed down for a while.
    SqlSlow,
    /// Optima's server clock stepped an hour forward or back for a while.
    ClockStep,
    /// The agent's connections to AWS cut and refused for a while.
    EmulatorDown,
    /// Every AWS request of the agent throttled for a while.
    SqsThrottle,
    /// The shop answers 429 Too Many Requests (with `Retry-After`).
    Shop429,
    /// The shop answers 500/502/503.
    Shop5xx,
    /// A shop request hangs past the client's 30 s timeout.
    ShopTimeout,
    /// An order webhook delivered twice.
    WebhookDuplicate,
    /// An order webhook never delivered.
    WebhookLost,
    /// An order webhook delivered seconds late, after later ones.
    WebhookLate,
}

impl FaultKind {
    pub const ALL: [FaultKind; 15] = [
        FaultKind::AgentKill,
        FaultKind::AgentKillInOrderTransaction,
        FaultKind::StateRestore,
        FaultKind::SqlDown,
        FaultKind::SqlDeadlock,
        FaultKind::SqlSlow,
        FaultKind::ClockStep,
        FaultKind::EmulatorDown,
        FaultKind::SqsThrottle,
        FaultKind::Shop429,
        FaultKind::Shop5xx,
        FaultKind::ShopTimeout,
        FaultKind::WebhookDuplicate,
        FaultKind::WebhookLost,
        FaultKind::WebhookLate,
    ];

    /// The name on the command line (`--skip state-restore`).
    pub fn slug(self) -> &'static str {
        match self {
            FaultKind::AgentKill => "agent-kill",
            FaultKind::AgentKillInOrderTransaction => "agent-kill-in-order",
            FaultKind::StateRestore => "state-restore",
            FaultKind::SqlDown => "sql-down",
            FaultKind::SqlDeadlock => "sql-deadlock",
            FaultKind::SqlSlow => "sql-slow",
            FaultKind::ClockStep => "clock-step",
            FaultKind::EmulatorDown => "emulator-down",
            FaultKind::SqsThrottle => "sqs-throttle",
            FaultKind::Shop429 => "shop-429",
            FaultKind::Shop5xx => "shop-5xx",
            FaultKind::ShopTimeout => "shop-timeout",
            FaultKind::WebhookDuplicate => "webhook-duplicate",
            FaultKind::WebhookLost => "webhook-lost",
            FaultKind::WebhookLate => "webhook-late",
        }
    }

    pub fn from_slug(slug: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.slug() == slug)
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::AgentKill => "agent kill -9",
            FaultKind::AgentKillInOrderTransaction => "agent kill -9 inside the order transaction",
            FaultKind::StateRestore => "agent state file restored from a backup",
            FaultKind::SqlDown => "SQL Server down",
            FaultKind::SqlDeadlock => "SQL deadlock victim (1205)",
            FaultKind::SqlSlow => "SQL slow",
            FaultKind::ClockStep => "Optima clock step ±1 h",
            FaultKind::EmulatorDown => "AWS (emulator) unreachable",
            FaultKind::SqsThrottle => "SQS throttling",
            FaultKind::Shop429 => "shop 429",
            FaultKind::Shop5xx => "shop 5xx",
            FaultKind::ShopTimeout => "shop timeout",
            FaultKind::WebhookDuplicate => "webhook duplicated",
            FaultKind::WebhookLost => "webhook lost",
            FaultKind::WebhookLate => "webhook late and reordered",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CampaignOptions {
    pub seed: u64,
    /// Faults to inject (landed ones are counted; attempts stop at twice this).
    pub faults: usize,
    /// Orders the shop's customers place over `duration` (injectors that
    /// need an order event place more).
    pub orders: usize,
    /// How long the order stream runs; faults are spread over it (at most
    /// a second apart, and they go on past it until `faults` have landed);
    /// the office simulator runs until the faults stop.
    pub duration: Duration,
    pub products: usize,
    /// How long the system gets to converge once the faults stop.
    pub converge_timeout: Duration,
    pub kinds: Vec<FaultKind>,
    /// The working folder (logs, databases, state files).
    pub dir: PathBuf,
}

/// What the campaign did and what the checker found.
#[derive(Debug, Default)]
pub struct CampaignReport {
    pub seed: u64,
    pub injected: BTreeMap<FaultKind, usize>,
    /// Attempts that could not be proven to land (not counted as injected).
    pub not_landed: BTreeMap<FaultKind, usize>,
    pub orders_placed: usize,
    pub orders_as_documents: usize,
    pub orders_parked: usize,
    /// Shop orders written as more than one document.
    pub duplicates: Vec<String>,
    /// Shop orders neither written nor parked.
    pub lost: Vec<String>,
    pub stock_price_mismatches: Vec<String>,
    pub products_checked: usize,
    pub parked_without_reason: Vec<String>,
    pub parked_with_reason: usize,
    /// DLQ name → messages in it.
    pub dlq_messages: BTreeMap<String, u64>,
    pub fault_phase: Duration,
    /// From the last fault to every invariant holding (None: never).
    pub converged_after: Option<Duration>,
}

impl CampaignReport {
    pub fn total_injected(&self) -> usize {
        self.injected.values().sum()
    }

    /// The invariants that do not hold, in words.
    pub fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.duplicates.is_empty() {
            out.push(format!(
                "{} shop orders are more than one ERP document: {:?}",
                self.duplicates.len(),
                first(&self.duplicates)
            ));
        }
        if !self.lost.is_empty() {
            out.push(format!(
                "{} shop orders are neither an ERP document nor parked: {:?}",
                self.lost.len(),
                first(&self.lost)
            ));
        }
        if !self.stock_price_mismatches.is_empty() {
            out.push(format!(
                "{} products show another price or stock in the shop than the ERP's: {:?}",
                self.stock_price_mismatches.len(),
                first(&self.stock_price_mismatches)
            ));
        }
        if !self.parked_without_reason.is_empty() {
            out.push(format!(
                "parked without a reason: {:?}",
                first(&self.parked_without_reason)
            ));
        }
        let in_dlq: u64 = self.dlq_messages.values().sum();
        if in_dlq > 0 {
            out.push(format!("messages in DLQs: {:?}", self.dlq_messages));
        }
        if self.converged_after.is_none() && out.is_empty() {
            out.push("the checker never ran to the end".into());
        }
        out
    }

    /// The report as printed by the campaign and quoted in docs/BENCHMARKS.md.
    pub fn render(&self) -> String {
        let mut s = format!("fault campaign, seed {}\n", self.seed);
        s += &format!(
            "faults injected (landed): {} in {:.0} s\n",
            self.total_injected(),
            self.fault_phase.as_secs_f64()
        );
        for kind in FaultKind::ALL {
            let landed = self.injected.get(&kind).copied().unwrap_or(0);
            let missed = self.not_landed.get(&kind).copied().unwrap_or(0);
            if landed + missed > 0 {
                s += &format!(
                    "  {:<45} {landed:>5}   (not landed: {missed})\n",
                    kind.name()
                );
            }
        }
        s += &format!(
            "orders placed: {}; ERP documents: {}; parked (with a reason): {}; duplicates: {}; lost: {}\n",
            self.orders_placed,
            self.orders_as_documents,
            self.orders_parked,
            self.duplicates.len(),
            self.lost.len()
        );
        s += &format!(
            "products checked (price, stock, visibility): {}; differing: {}\n",
            self.products_checked,
            self.stock_price_mismatches.len()
        );
        s += &format!(
            "parked items with a reason: {}; without: {}; DLQ messages: {}\n",
            self.parked_with_reason,
            self.parked_without_reason.len(),
            self.dlq_messages.values().sum::<u64>()
        );
        s += &match self.converged_after {
            Some(t) => format!("converged {:.1} s after the last fault\n", t.as_secs_f64()),
            None => "did NOT converge\n".into(),
        };
        let violations = self.violations();
        if violations.is_empty() {
            s += "invariants: all hold\n";
        } else {
            for v in violations {
                s += &format!("VIOLATION: {v}\n");
            }
        }
        s
    }
}

fn first(list: &[String]) -> Vec<&String> {
    list.iter().take(5).collect()
}

/// The agent's configuration: quick polls, interval passes short enough
/// that a change stamped behind the cursor (the clock stepped back) is read
/// again within the campaign, and a command a killed agent held back in
/// the queue after 15 s (FIFO: it holds up the orders behind it).
const AGENT_TOML: &str = "\n[sync]\npoll_seconds = 1\noverlap_seconds = 5\nstock_minutes = 2\nprices_minutes = 2\ncatalogue_minutes = 1440\nbatch_records = 200\n\n[orders]\nwarehouse = \"MAG\"\ndefault_payment_form = \"przelew\"\ndefault_shipping_service = \"TRANSPORT\"\ncollective_customer = \"DETAL\"\nprogress_seconds = 5\ncommand_visibility_seconds = 15\n\n[orders.payment_forms]\nbacs = \"przelew\"\ncod = \"pobranie\"\n";

/// The shop's order numbers and ids, as placed.
#[derive(Default)]
struct Placed {
    orders: Vec<(u64, String)>,
}

struct World {
    dir: PathBuf,
    erp: OptimaStandin,
    erp_runs: usize,
    shop: Arc<WooStandinProcess>,
    cloud: LocalCloud,
    proxy: AwsProxy,
    config: PathBuf,
    agent: Option<Process>,
    agent_runs: usize,
    state_file: PathBuf,
    backup: Option<PathBuf>,
    skus: Arc<Vec<String>>,
    placed: Arc<Mutex<Placed>>,
    rng: StdRng,
}

/// Runs the campaign; the report says what landed and what holds.
pub async fn run(options: &CampaignOptions) -> anyhow::Result<CampaignReport> {
    let dir = &options.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rng = StdRng::seed_from_u64(options.seed);
    let erp = OptimaStandin::start(&dir.join("optima.sqlite"), options.products, dir)?;
    let skus = stocked_skus(&erp).await?;
    let catalogue = erp.skus().await?;
    let shop = WooStandinProcess::start_with(None, Some(&catalogue), None, dir)?;
    let parameters = shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 50, 50);
    let cloud = LocalCloud::start_with_host_args(
        dir,
        "campaign",
        Some(parameters),
        &["--schedule-every", "poller=10"],
    )?;
    let webhook = cloud.webhook_url.clone().context("no webhook URL")?;
    shop.register_order_webhooks(&format!("{webhook}/sklep"))
        .await?;
    let emulator: std::net::SocketAddr = format!("127.0.0.1:{}", cloud.emulator.port).parse()?;
    let proxy = AwsProxy::start(emulator).await?;
    let config = dir.join("agent.toml");
    cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 5, AGENT_TOML)?;
    let state_file = dir.join("biuro-state.sqlite");
    let mut world = World {
        dir: dir.clone(),
        erp,
        erp_runs: 0,
        shop: Arc::new(shop),
        cloud,
        proxy,
        config,
        agent: None,
        agent_runs: 0,
        state_file,
        backup: None,
        skus: Arc::new(skus),
        placed: Arc::default(),
        rng: StdRng::seed_from_u64(rng.random()),
    };
    world.start_agent(None)?;
    // Runs until the faults stop (then it is killed).
    let simulator = world.erp.simulate(
        2.0,
        options.duration.as_secs_f64() * 20.0,
        &world.dir.join("simulator"),
    )?;
    // A first backup of the state file once the agent has sent something.
    tokio::time::sleep(Duration::from_secs(8)).await;
    world.kill_agent();
    world.take_backup()?;
    world.start_agent(None)?;

    let stream = tokio::spawn(order_stream(
        world.shop.clone(),
        world.skus.clone(),
        world.placed.clone(),
        options.orders,
        options.duration,
        rng.random(),
    ));

    let mut report = CampaignReport {
        seed: options.seed,
        ..Default::default()
    };
    let began = Instant::now();
    let gap = options.duration.as_secs_f64() / options.faults.max(1) as f64;
    let mut deck: Vec<FaultKind> = Vec::new();
    let mut attempts = 0;
    while report.total_injected() < options.faults && attempts < options.faults * 2 {
        attempts += 1;
        if deck.is_empty() {
            deck = options.kinds.clone();
            deck.shuffle(&mut rng);
        }
        let Some(kind) = deck.pop() else { break };
        let landed = world
            .inject(kind)
            .await
            .with_context(|| format!("injecting {}", kind.name()))?;
        if landed > 0 {
            *report.injected.entry(kind).or_default() += landed;
        } else {
            *report.not_landed.entry(kind).or_default() += 1;
        }
        tracing::info!(
            fault = kind.name(),
            landed,
            total = report.total_injected(),
            "fault"
        );
        let pause = rng.random_range(0.0..(2.0 * gap).clamp(0.01, 1.0));
        tokio::time::sleep(Duration::from_secs_f64(pause)).await;
    }
    stream.await.context("the order stream")??;
    world.heal().await?;
    drop(simulator);
    report.fault_phase = began.elapsed();
    let calm = Instant::now();
    let deadline = calm + options.converge_timeout;
    loop {
        world.check(&mut report).await?;
        if report.violations().is_empty()
            || report.violations() == vec!["the checker never ran to the end".to_owned()]
        {
            report.converged_after = Some(calm.elapsed());
            break;
        }
        if Instant::now() > deadline || !report.duplicates.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    world.kill_agent();
    Ok(report)
}

/// Products with stock in MAG for their share of the orders.
async fn stocked_skus(erp: &OptimaStandin) -> anyhow::Result<Vec<String>> {
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let rows = sql
        .simple_query(
            "SELECT TOP 50 t.Twr_Kod FROM CDN.Towary t JOIN CDN.TwrIlosci i ON i.TwI_TwrId = t.Twr_TwrId \
             JOIN CDN.Magazyny m ON m.Mag_MagId = i.TwI_MagId \
             WHERE m.Mag_Symbol = 'MAG' AND t.Twr_Typ = 1 AND t.Twr_NieAktywny = 0 AND t.Twr_Kod NOT LIKE 'BAD%' \
             GROUP BY t.Twr_Kod HAVING MIN(i.TwI_Ilosc - i.TwI_Rezerwacje) > 30 ORDER BY t.Twr_Kod",
        )
        .await?
        .into_first_result()
        .await?;
    let skus: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get::<&str, _>("Twr_Kod").map(str::to_owned))
        .collect();
    anyhow::ensure!(!skus.is_empty(), "no stocked products in the ERP stand-in");
    Ok(skus)
}

/// Places one order of one or two stocked products; records its id and number.
async fn place_order(
    shop: &WooStandinProcess,
    skus: &[String],
    placed: &Mutex<Placed>,
    pick: (usize, usize, bool),
) -> anyhow::Result<()> {
    let (a, b, two) = pick;
    let mut lines = vec![json!([skus[a % skus.len()], 1])];
    if two && a % skus.len() != b % skus.len() {
        lines.push(json!([skus[b % skus.len()], 2]));
    }
    let i = placed.lock().await.orders.len();
    let order = crate::standins::woo_buyer_order("Kampania", i, serde_json::Value::from(lines));
    // The control API shares the shop's fault switches with the REST API:
    // an order is placed again until the shop takes it.
    let mut last = None;
    for _ in 0..20 {
        match shop.place_order(order.clone()).await {
            Ok(body) => {
                let id = body["id"].as_u64().context("order id")?;
                let number = body["number"].as_str().context("order number")?.to_owned();
                placed.lock().await.orders.push((id, number));
                return Ok(());
            }
            Err(err) => last = Some(err),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("no attempt"))
        .context("placing an order"))
}

async fn order_stream(
    shop: Arc<WooStandinProcess>,
    skus: Arc<Vec<String>>,
    placed: Arc<Mutex<Placed>>,
    orders: usize,
    duration: Duration,
    seed: u64,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let gap = duration.as_secs_f64() / orders.max(1) as f64;
    for _ in 0..orders {
        let pick = (
            rng.random_range(0..1024),
            rng.random_range(0..1024),
            rng.random_bool(0.3),
        );
        place_order(&shop, &skus, &placed, pick).await?;
        let pause = rng.random_range(0.0..(2.0 * gap).max(0.001));
        tokio::time::sleep(Duration::from_secs_f64(pause)).await;
    }
    Ok(())
}

impl World {
    fn start_agent(&mut self, failpoint: Option<&str>) -> anyhow::Result<()> {
        self.agent_runs += 1;
        let log = self
            .dir
            .join("agent")
            .join(format!("agent-{:04}.log", self.agent_runs));
        let mut env = vec![("OPTIMA_SYNC_SQL__PASSWORD", self.erp.password.as_str())];
        if let Some(point) = failpoint {
            env.push(("AGENT_FAILPOINT", point));
        }
        self.agent = Some(start_agent(&self.config, &self.proxy.url(), &log, &env)?);
        Ok(())
    }

    /// `kill -9`; true when the agent was running.
    fn kill_agent(&mut self) -> bool {
        match self.agent.take() {
            Some(mut agent) => {
                let running = agent.is_running();
                agent.kill();
                running
            }
            None => false,
        }
    }

    fn state_files(base: &Path) -> [PathBuf; 3] {
        let with = |suffix: &str| {
            let mut name = base.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        [base.to_owned(), with("-wal"), with("-shm")]
    }

    /// Copies the (stopped) agent's state file aside.
    fn take_backup(&mut self) -> anyhow::Result<()> {
        let backup = self.dir.join("state-backup.sqlite");
        for (from, to) in Self::state_files(&self.state_file)
            .iter()
            .zip(Self::state_files(&backup).iter())
        {
            let _ = std::fs::remove_file(to);
            if from.exists() {
                std::fs::copy(from, to)
                    .with_context(|| format!("backing up {}", from.display()))?;
            }
        }
        self.backup = Some(backup);
        Ok(())
    }

    async fn sql(&self) -> anyhow::Result<optima_standin::erp::Client> {
        optima_standin::erp::connect(&self.erp.ado_with_password())
            .await
            .map_err(anyhow::Error::from)
    }

    async fn standin_switch(&self, json: Value) -> anyhow::Result<()> {
        let mut sql = self.sql().await?;
        sql.simple_query(format!("-- standin:faults {json}"))
            .await?
            .into_results()
            .await?;
        Ok(())
    }

    /// Deadlock victims so far, from every stand-in log.
    fn deadlocks_logged(&self) -> usize {
        let mut n = 0;
        for run in 0..=self.erp_runs {
            let log = self.erp_log(run);
            n += std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("standin fault injected: deadlock 1205")
                .count();
        }
        n
    }

    fn erp_log(&self, run: usize) -> PathBuf {
        if run == 0 {
            self.dir.join("optima-standin.log")
        } else {
            self.dir
                .join("optima")
                .join(format!("optima-standin-{run:04}.log"))
        }
    }

    async fn shop_faults(&self) -> anyhow::Result<Value> {
        Ok(
            reqwest::get(format!("{}/__standin/faults", self.shop.base_url))
                .await?
                .error_for_status()?
                .json()
                .await?,
        )
    }

    /// Arms a "next N" shop switch and waits until the shop has spent it;
    /// returns how many landed (the rest are disarmed).
    async fn shop_next(
        &mut self,
        switch: &str,
        n: u32,
        extra: Value,
        needs_order: bool,
    ) -> anyhow::Result<usize> {
        let mut faults = extra;
        faults[switch] = json!(n);
        self.shop.set_faults(faults).await?;
        if needs_order {
            self.place_one().await?;
        }
        let deadline = Instant::now() + Duration::from_secs(40);
        let left = loop {
            let left = self.shop_faults().await?[switch].as_u64().unwrap_or(0);
            if left == 0 || Instant::now() > deadline {
                break left;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        self.shop.set_faults(json!({ switch: 0 })).await?;
        Ok(n as usize - left as usize)
    }

    async fn place_one(&mut self) -> anyhow::Result<()> {
        let pick = (
            self.rng.random_range(0..1024),
            self.rng.random_range(0..1024),
            self.rng.random_bool(0.3),
        );
        place_order(&self.shop, &self.skus, &self.placed, pick).await
    }

    /// Injects one fault; returns how many landed (0: not proven).
    async fn inject(&mut self, kind: FaultKind) -> anyhow::Result<usize> {
        let landed = match kind {
            FaultKind::AgentKill => {
                let delay = self.rng.random_range(0..2000);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let landed = self.kill_agent();
                if self.rng.random_bool(0.2) {
                    self.take_backup()?;
                }
                self.start_agent(None)?;
                usize::from(landed)
            }
            FaultKind::AgentKillInOrderTransaction => {
                self.kill_agent();
                self.start_agent(Some("order_in_transaction"))?;
                self.place_one().await?;
                let landed = match self.agent.as_mut() {
                    Some(agent) => {
                        let exited = agent.wait_exit(Duration::from_secs(60)).is_ok();
                        exited
                            && agent
                                .log_text()
                                .contains("failpoint order_in_transaction: aborting")
                    }
                    None => false,
                };
                self.kill_agent();
                self.start_agent(None)?;
                usize::from(landed)
            }
            FaultKind::StateRestore => {
                let Some(backup) = self.backup.clone() else {
                    return Ok(0);
                };
                self.kill_agent();
                for (from, to) in Self::state_files(&backup)
                    .iter()
                    .zip(Self::state_files(&self.state_file).iter())
                {
                    let _ = std::fs::remove_file(to);
                    if from.exists() {
                        std::fs::copy(from, to)
                            .with_context(|| format!("restoring {}", to.display()))?;
                    }
                }
                self.start_agent(None)?;
                1
            }
            FaultKind::SqlDown => {
                let running = self.erp.process.is_running();
                self.erp.stop();
                let down = self.rng.random_range(500..4000);
                tokio::time::sleep(Duration::from_millis(down)).await;
                self.erp_runs += 1;
                let log = self.erp_log(self.erp_runs);
                self.erp.restart(&log)?;
                usize::from(running)
            }
            FaultKind::SqlDeadlock => {
                let before = self.deadlocks_logged();
                let n = self.rng.random_range(1..=4u32);
                let in_transaction = self.rng.random_bool(0.5);
                self.standin_switch(json!({
                    "deadlock_next": n,
                    "deadlock_in_transaction_only": in_transaction
                }))
                .await?;
                if in_transaction {
                    self.place_one().await?;
                }
                let deadline = Instant::now() + Duration::from_secs(40);
                while self.deadlocks_logged() < before + n as usize && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                self.standin_switch(
                    json!({"deadlock_next": 0, "deadlock_in_transaction_only": false}),
                )
                .await?;
                self.deadlocks_logged().saturating_sub(before)
            }
            FaultKind::SqlSlow => {
                let latency = self.rng.random_range(300..2000u64);
                self.standin_switch(json!({ "latency_ms": latency }))
                    .await?;
                let mut sql = self.sql().await?;
                let started = Instant::now();
                sql.simple_query("SELECT 1 AS one")
                    .await?
                    .into_results()
                    .await?;
                let measured = started.elapsed();
                let hold = self.rng.random_range(1000..5000);
                tokio::time::sleep(Duration::from_millis(hold)).await;
                self.standin_switch(json!({ "latency_ms": 0 })).await?;
                usize::from(measured >= Duration::from_millis(latency))
            }
            FaultKind::ClockStep => {
                let offset: i64 = if self.rng.random_bool(0.5) {
                    3600
                } else {
                    -3600
                };
                self.standin_switch(json!({ "clock_offset_seconds": offset }))
                    .await?;
                let mut sql = self.sql().await?;
                let server = sql
                    .simple_query("SELECT GETDATE() AS now")
                    .await?
                    .into_row()
                    .await?
                    .and_then(|r| r.get::<chrono::NaiveDateTime, _>("now"))
                    .context("GETDATE()")?;
                let step = (server - chrono::Local::now().naive_local()).num_seconds();
                let hold = self.rng.random_range(2000..6000);
                tokio::time::sleep(Duration::from_millis(hold)).await;
                self.standin_switch(json!({ "clock_offset_seconds": 0 }))
                    .await?;
                usize::from((step - offset).abs() < 30)
            }
            FaultKind::EmulatorDown => {
                let before = self
                    .proxy
                    .counters
                    .refused
                    .load(std::sync::atomic::Ordering::SeqCst);
                self.proxy.set_mode(ProxyMode::Down);
                let hold = self.rng.random_range(1000..5000);
                tokio::time::sleep(Duration::from_millis(hold)).await;
                self.proxy.set_mode(ProxyMode::Forward);
                let after = self
                    .proxy
                    .counters
                    .refused
                    .load(std::sync::atomic::Ordering::SeqCst);
                usize::from(after > before)
            }
            FaultKind::SqsThrottle => {
                let counter = &self.proxy.counters.throttled;
                let before = counter.load(std::sync::atomic::Ordering::SeqCst);
                self.proxy.set_mode(ProxyMode::Throttle);
                let hold = Duration::from_millis(self.rng.random_range(1000..4000));
                let started = Instant::now();
                while started.elapsed() < hold
                    || (counter.load(std::sync::atomic::Ordering::SeqCst) == before
                        && started.elapsed() < Duration::from_secs(20))
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                self.proxy.set_mode(ProxyMode::Forward);
                usize::from(counter.load(std::sync::atomic::Ordering::SeqCst) > before)
            }
            FaultKind::Shop429 => {
                let n = self.rng.random_range(1..=3);
                self.shop_next(
                    "fail_next",
                    n,
                    json!({"fail_status": 429, "fail_retry_after": 1}),
                    false,
                )
                .await?
            }
            FaultKind::Shop5xx => {
                let n = self.rng.random_range(1..=3);
                let status = [500, 502, 503][self.rng.random_range(0..3)];
                self.shop_next(
                    "fail_next",
                    n,
                    json!({"fail_status": status, "fail_retry_after": null}),
                    false,
                )
                .await?
            }
            FaultKind::ShopTimeout => {
                let before = self.rng.random_bool(0.5);
                self.shop_next(
                    "hang_next",
                    1,
                    json!({"hang_ms": 31_000, "hang_before_processing": before}),
                    false,
                )
                .await?
            }
            FaultKind::WebhookDuplicate => {
                self.shop_next("webhook_duplicate_next", 1, json!({}), true)
                    .await?
            }
            FaultKind::WebhookLost => {
                self.shop_next("webhook_drop_next", 1, json!({}), true)
                    .await?
            }
            FaultKind::WebhookLate => {
                let delay = self.rng.random_range(2000..20000u64);
                let landed = self
                    .shop_next(
                        "webhook_extra_delay_next",
                        1,
                        json!({ "webhook_extra_delay_ms": delay }),
                        true,
                    )
                    .await?;
                // A later order's webhook overtakes the late one.
                self.place_one().await?;
                landed
            }
        };
        Ok(landed)
    }

    /// Every fault off, the agent running as configured.
    async fn heal(&mut self) -> anyhow::Result<()> {
        self.proxy.set_mode(ProxyMode::Forward);
        self.shop.reset_faults().await?;
        if !self.erp.process.is_running() {
            self.erp_runs += 1;
            let log = self.erp_log(self.erp_runs);
            self.erp.restart(&log)?;
        }
        self.standin_switch(
            json!({"deadlock_next": 0, "latency_ms": 0, "clock_offset_seconds": 0}),
        )
        .await?;
        let running = self.agent.as_mut().is_some_and(Process::is_running);
        if !running {
            self.kill_agent();
            self.start_agent(None)?;
        }
        Ok(())
    }

    /// Runs the invariant checker once, filling `report`.
    async fn check(&self, report: &mut CampaignReport) -> anyhow::Result<()> {
        let placed = self.placed.lock().await.orders.clone();
        report.orders_placed = placed.len();
        let mut sql = self.sql().await?;
        let rows = sql
            .simple_query(
                "SELECT TrN_NumerObcy, COUNT(*) AS n FROM CDN.TraNag WHERE TrN_ImportRowId IS NOT NULL GROUP BY TrN_NumerObcy",
            )
            .await?
            .into_first_result()
            .await?;
        let documents: HashMap<String, i32> = rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.get::<&str, _>("TrN_NumerObcy")?.to_owned(),
                    r.get::<i32, _>("n")?,
                ))
            })
            .collect();
        let status = self.cloud.status().await?;
        let parked_orders: BTreeMap<String, String> = status["parked_orders"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["order_id"].as_str()?.to_owned(),
                    p["reason"].as_str().unwrap_or_default().to_owned(),
                ))
            })
            .collect();
        report.duplicates.clear();
        report.lost.clear();
        report.orders_as_documents = 0;
        report.orders_parked = 0;
        for (id, number) in &placed {
            match documents.get(number).copied().unwrap_or(0) {
                0 if parked_orders.contains_key(&id.to_string()) => report.orders_parked += 1,
                0 => report.lost.push(format!("order {id} (number {number})")),
                1 => report.orders_as_documents += 1,
                n => report
                    .duplicates
                    .push(format!("order {id} (number {number}): {n} documents")),
            }
        }
        report.parked_without_reason.clear();
        report.parked_with_reason = 0;
        for (id, reason) in &parked_orders {
            if reason.trim().is_empty() {
                report.parked_without_reason.push(format!("order {id}"));
            } else {
                report.parked_with_reason += 1;
            }
        }
        for record in status["parked_records"].as_array().into_iter().flatten() {
            let reasons = record["reasons"].as_array().map(Vec::len).unwrap_or(0);
            if reasons == 0 {
                report
                    .parked_without_reason
                    .push(format!("product {}", record["sku"]));
            } else {
                report.parked_with_reason += 1;
            }
        }
        for message in status["parked"].as_array().into_iter().flatten() {
            if message["reason"]
                .as_str()
                .is_none_or(|r| r.trim().is_empty())
            {
                report
                    .parked_without_reason
                    .push(format!("message {}", message["message_id"]));
            } else {
                report.parked_with_reason += 1;
            }
        }
        report.dlq_messages.clear();
        if let Some(queues) = status["queues"].as_object() {
            for (name, depth) in queues {
                if name.ends_with("_dlq") {
                    let n = depth["visible"].as_u64().unwrap_or(0)
                        + depth["in_flight"].as_u64().unwrap_or(0);
                    if n > 0 {
                        report.dlq_messages.insert(name.clone(), n);
                    }
                }
            }
        }
        let (checked, wrong) = self.shop_against_erp().await?;
        report.products_checked = checked;
        report.stock_price_mismatches = wrong;
        Ok(())
    }

    /// What the shop must show per product: the ERP's stock by plain SQL
    /// ([`crate::expected::stock_by_plain_sql`]) and its prices as the agent reads
    /// them, mapped as the cloud maps them, against what the shop shows.
    async fn shop_against_erp(&self) -> anyhow::Result<(usize, Vec<String>)> {
        use agent::optima;
        let parameters = self
            .shop
            .shop_parameters("sklep", "Detaliczna", &["MAG"], 50, 50);
        let shops: Value = serde_json::from_str(&parameters.0)?;
        let rules: ShopRules = serde_json::from_value(shops[0]["rules"].clone())?;
        let mut sql = agent::sql::connect_ado(&self.erp.ado_with_password(), 10).await?;
        let skus = self.erp.skus().await?;
        let groups = optima::group_paths(&mut sql).await?;
        let ids = optima::product_ids_for_skus(&mut sql, &skus).await?;
        let products = optima::products(&mut sql, &ids, &groups).await?;
        let prices = optima::prices(&mut sql, &ids, optima::PriceListKey::Lp).await?;
        let stock = crate::expected::stock_by_plain_sql(&mut self.sql().await?).await?;
        let expected = crate::expected::shop_states(&products, &prices, &stock, &rules);
        let all: Vec<Value> = reqwest::get(format!("{}/__standin/products", self.shop.base_url))
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut checked = 0;
        let wrong = all
            .iter()
            .filter_map(|p| {
                let sku = p["sku"].as_str()?;
                let want = expected.get(sku)?;
                checked += 1;
                (!crate::expected::shows(p, want)).then(|| {
                    format!(
                        "{sku}: shop price {} stock {} status {}, ERP {:?} {:?} visible {}",
                        p["regular_price"],
                        p["stock_quantity"],
                        p["status"],
                        want.regular_price,
                        want.stock_quantity,
                        want.visible
                    )
                })
            })
            .collect();
        Ok((checked, wrong))
    }
}
