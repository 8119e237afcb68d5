//! `optima-standin`: seed, serve, simulate, configure, and the T-SQL script.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use optima_standin::seed::{SeedOptions, seed_database};
use optima_standin::server::{ServeOptions, StandinServer, TlsOptions};
use optima_standin::simulator::Simulator;

#[derive(Parser)]
#[command(
    name = "optima-standin",
    version,
    about = "A SQL Server look-alike holding a Comarch ERP Optima company database"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create (or replace) a seeded company database.
    Seed {
        #[arg(long)]
        db: PathBuf,
        #[arg(long, default_value_t = 2000)]
        products: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Settled invoices from years ago added to `TraNag` (headers
        /// only), to measure the document poll against a company's history.
        #[arg(long, default_value_t = 0)]
        history_documents: usize,
    },
    /// Serve the database over TDS until killed.
    Serve {
        #[arg(long)]
        db: PathBuf,
        #[arg(long, default_value = "127.0.0.1:1433")]
        listen: SocketAddr,
        #[arg(long, default_value = "sa")]
        user: String,
        /// The login's password; else OPTIMA_STANDIN_PASSWORD; else a random one.
        #[arg(long, env = "OPTIMA_STANDIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long, requires = "tls_key", conflicts_with = "tls_self_signed")]
        tls_cert: Option<PathBuf>,
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        #[arg(long)]
        tls_self_signed: bool,
        /// Seed the database with this many products when the file is missing.
        #[arg(long)]
        seed_products: Option<usize>,
    },
    /// Run the office simulator against the database file.
    Simulate {
        #[arg(long)]
        db: PathBuf,
        /// Actions per second.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// Seconds to run (default: until killed).
        #[arg(long)]
        duration: Option<f64>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Change what the database reports (compatibility level, collation) or
    /// deny SELECT on a table to a login; applies to the next connection.
    Configure {
        #[arg(long)]
        db: PathBuf,
        /// Back to the defaults first (150, Polish_CI_AS, all readable).
        #[arg(long)]
        reset: bool,
        #[arg(long)]
        compatibility_level: Option<u8>,
        /// The database collation reported, e.g. SQL_Latin1_General_CP1_CI_AS.
        #[arg(long)]
        collation: Option<String>,
        /// LOGIN:TABLE, e.g. sa:TwrCeny (repeatable): SELECT on CDN.TABLE
        /// fails with error 229 for that login.
        #[arg(long, value_name = "LOGIN:TABLE")]
        deny_select: Vec<String>,
    },
    /// Vendor the tables the stand-in holds from the full real-schema JSON
    /// (shared/reference/optima-real-schema.json) into agent/schema/optima-tables.json.
    ExtractSchema {
        #[arg(long)]
        from: PathBuf,
        /// Where to write (default: agent/schema/optima-tables.json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the schema and seed as a T-SQL script for a real SQL Server.
    Tsql {
        #[arg(long, default_value_t = 2000)]
        products: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Only the DDL (as committed in sql/schema.sql).
        #[arg(long)]
        schema_only: bool,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs written to files stay greppable.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Seed {
            db,
            products,
            seed,
            history_documents,
        } => {
            let report = seed_database(&db, &SeedOptions { products, seed })
                .with_context(|| format!("seeding {}", db.display()))?;
            println!("{}", serde_json::to_string(&report)?);
            if history_documents > 0 {
                let added = optima_standin::seed::add_history_documents(&db, history_documents)
                    .with_context(|| format!("adding history to {}", db.display()))?;
                println!("{{\"history_documents\":{added}}}");
            }
        }
        Cmd::Serve {
            db,
            listen,
            user,
            password,
            tls_cert,
            tls_key,
            tls_self_signed,
            seed_products,
        } => {
            if let Some(n) = seed_products
                && !db.exists()
            {
                seed_database(
                    &db,
                    &SeedOptions {
                        products: n,
                        seed: 1,
                    },
                )?;
            }
            let password = match password {
                Some(p) if !p.is_empty() => p,
                _ => optima_standin::erp::random_password(),
            };
            let tls = match (tls_cert, tls_key, tls_self_signed) {
                (Some(cert), Some(key), _) => Some(TlsOptions::Pem { cert, key }),
                (None, None, true) => Some(TlsOptions::SelfSigned),
                (None, None, false) => None,
                _ => bail!("--tls-cert and --tls-key go together"),
            };
            let db_for_work = db.clone();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let server = StandinServer::start(ServeOptions {
                    db,
                    listen,
                    user,
                    password,
                    tls,
                })
                .await?;
                let mut out = std::io::stdout();
                writeln!(out, "connection: {}", server.ado_connection_string())?;
                out.flush()?;
                // The engine's work so far, once a second when it changed,
                // for benchmarks (`optima_standin::work`).
                let served = db_for_work.clone();
                tokio::spawn(async move {
                    let mut last = optima_standin::work::Work::default();
                    loop {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        let now = optima_standin::work::now(&served);
                        if now != last {
                            tracing::info!(
                                statements = now.statements,
                                full_scan_steps = now.full_scan_steps,
                                vm_steps = now.vm_steps,
                                "work"
                            );
                            last = now;
                        }
                    }
                });
                wait_for_signal().await;
                server.shutdown().await;
                anyhow::Ok(())
            })?;
        }
        Cmd::Simulate {
            db,
            rate,
            duration,
            seed,
        } => {
            if rate.is_nan() || rate <= 0.0 {
                bail!("--rate must be positive");
            }
            let mut sim = Simulator::open(&db)?;
            let duration = duration.map(std::time::Duration::from_secs_f64);
            let mut out = std::io::stdout();
            sim.run(rate, duration, seed, |log| {
                let _ = writeln!(out, "{}", log.to_json());
                let _ = out.flush();
            })?;
        }
        Cmd::Configure {
            db,
            reset,
            compatibility_level,
            collation,
            deny_select,
        } => {
            use optima_standin::settings;
            if !db.exists() {
                bail!("no database {}", db.display());
            }
            let conn = optima_standin::db::open(&db, Default::default())?;
            if reset {
                settings::reset(&conn)?;
            }
            if let Some(level) = compatibility_level {
                settings::set_compatibility_level(&conn, level)?;
            }
            if let Some(collation) = collation {
                settings::set_collation(&conn, &collation)?;
            }
            for spec in deny_select {
                let Some((login, table)) = spec.split_once(':') else {
                    bail!("--deny-select {spec}: expected LOGIN:TABLE");
                };
                settings::deny_select(&conn, login, table)?;
            }
            let now = settings::load(&conn)?;
            println!(
                "compatibility level {}, collation {}",
                now.compatibility_level, now.collation
            );
        }
        Cmd::ExtractSchema { from, out } => {
            let full = std::fs::read_to_string(&from)
                .with_context(|| format!("reading {}", from.display()))?;
            let text = optima_standin::schema::extract(&full).map_err(anyhow::Error::msg)?;
            let out = out.unwrap_or_else(|| {
                PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../agent/schema/optima-tables.json"
                ))
            });
            std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
            println!("{}", out.display());
        }
        Cmd::Tsql {
            products,
            seed,
            schema_only,
        } => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            optima_standin::tsql::write_script(
                &mut out,
                &SeedOptions { products, seed },
                schema_only,
            )?;
            out.flush()?;
        }
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
