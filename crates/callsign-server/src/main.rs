//! `callsign`: the one binary.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use callsign_domain::{OsRandom, SystemClock};
use callsign_server::BoxResult;
use callsign_server::app::AppState;
use callsign_server::config::{Config, DEFAULT_CONFIG, LogFormat, RawConfig};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "callsign",
    version,
    about = "Phone-based multi-factor authentication server (SMS and voice), Auth0-compatible"
)]
struct Cli {
    /// TOML configuration file (see `callsign default-config`).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:8080.
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<String>,
    /// sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Directory for generated files (encryption key file, bootstrap credentials).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (migrates the database first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the commented example configuration with every default.
    DefaultConfig,
    /// Administrative commands.
    #[command(subcommand)]
    Admin(Admin),
}

#[derive(Debug, Subcommand)]
enum Admin {
    /// Create a Management API client with every scope; prints its credentials as JSON.
    CreateClient {
        /// The application's name.
        #[arg(long, default_value = "Callsign Management")]
        name: String,
        /// Write the JSON to this file (mode 0600) instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Make a new signing key current; the old one stays published until its tokens expire.
    RotateSigningKey,
    /// Add a new encryption key to the data-directory key file and re-encrypt every stored secret under it.
    RotateEncryptionKey,
    /// Print a one-time link (valid 24 hours) that creates a dashboard operator, or makes an existing user one.
    DashboardLink,
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received; finishing in-flight requests"),
        _ = term => tracing::info!("SIGTERM received; finishing in-flight requests"),
    }
}

/// The settings document that says where the installation was last served (`{"public_url"}`).
const SERVED_AT: &str = "served_at";

async fn start(config: Config) -> BoxResult<AppState> {
    let (app, report) = AppState::start(config, Arc::new(SystemClock), Arc::new(OsRandom)).await?;
    if let Some(p) = report.bootstrap_file {
        eprintln!(
            "Bootstrap Management API credentials and a one-time dashboard setup link written to {}",
            p.display()
        );
    }
    Ok(app)
}

async fn serve(config: Config) -> BoxResult<()> {
    let tls = match &config.tls {
        Some(t) => Some(callsign_server::tls::load_server_config(&t.cert_file, &t.key_file)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("listen: cannot bind {}: {e}", config.listen))?;
    let metrics_listener = match config.metrics_addr {
        Some(a) => {
            Some(tokio::net::TcpListener::bind(a).await.map_err(|e| format!("metrics_addr: cannot bind {a}: {e}"))?)
        }
        None => None,
    };
    let app = start(config.clone()).await?;
    // Where this installation is served, for `admin dashboard-link` run without --listen.
    let served = serde_json::json!({"public_url": config.public_url});
    if let Err(e) = app.store.put_setting(SERVED_AT, &served, callsign_domain::Clock::now(&SystemClock)).await {
        tracing::warn!(error = %e, "could not record the public URL for admin commands");
    }
    tracing::info!(
        listen = %config.listen,
        public_url = %config.public_url,
        database = app.store.backend(),
        tls = config.tls.is_some(),
        "Callsign is serving"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = callsign_core::delivery::spawn_workers(&app.core, stop_rx.clone());
    workers.push(callsign_core::log_streams::spawn_delivery(&app.core, stop_rx.clone()));
    workers.push(callsign_server::web::session::spawn_purger(&app.core, stop_rx.clone()));
    workers.push(callsign_core::identity::signing::spawn_key_watcher(&app.core, stop_rx.clone()));
    workers.push(callsign_core::alerts::spawn_sender(&app.core, stop_rx.clone()));
    let metrics_task = metrics_listener.map(|l| {
        tracing::info!(addr = ?l.local_addr().ok(), "metrics listener on /metrics");
        let router = callsign_server::metrics::router(app.metrics.clone());
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            axum::serve(l, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.changed().await;
                })
                .await
        })
    });
    let result = callsign_server::http::serve(app, listener, tls, async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    })
    .await;
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    // Workers finish the message in hand; anything not finished is picked up again after its lease.
    for w in workers {
        let _ = w.await;
    }
    result.map_err(|e| format!("server error: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

async fn run(cli: Cli) -> BoxResult<()> {
    if matches!(cli.command, Command::DefaultConfig) {
        print!("{DEFAULT_CONFIG}");
        return Ok(());
    }
    let flags =
        RawConfig { listen: cli.listen, database_url: cli.database_url, data_dir: cli.data_dir, ..Default::default() };
    let config = Config::load(cli.config.as_deref(), std::env::vars(), flags)?;
    init_logging(&config);
    match cli.command {
        Command::DefaultConfig => Ok(()),
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let store = callsign_server::db::open_store(&config.database_url).await?;
            store.migrate().await?;
            store.check_ready().await?;
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::Admin(Admin::CreateClient { name, output }) => {
            let app = start(config).await?;
            let (id, secret) = callsign_server::identity::bootstrap::create_management_client(&app, &name).await?;
            let json = callsign_server::identity::bootstrap::credentials_json(&app, &id, &secret);
            match output {
                Some(path) => {
                    callsign_server::keys::write_private_file(&path, &json, true)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    eprintln!("credentials for client {id} written to {}", path.display());
                }
                None => print!("{json}"),
            }
            Ok(())
        }
        Command::Admin(Admin::DashboardLink) => {
            let mut config = config;
            // Without --listen or a public URL here, the link is for the address the server last served on.
            if !config.public_url_given {
                let store = callsign_server::db::open_store(&config.database_url).await?;
                store.migrate().await?;
                if let Some(url) =
                    store.get_setting(SERVED_AT).await?.and_then(|v| v["public_url"].as_str().map(str::to_owned))
                {
                    config.public_url = url;
                }
            }
            let app = start(config).await?;
            let url = callsign_server::dashboard::auth::create_setup_link(&app).await?;
            eprintln!("one-time dashboard setup link (valid 24 hours, single use):");
            println!("{url}");
            Ok(())
        }
        Command::Admin(Admin::RotateSigningKey) => {
            let app = start(config).await?;
            let kid = app.signer.rotate(&app).await?;
            println!("new signing key {kid} is current; earlier keys stay published until their tokens expire");
            Ok(())
        }
        Command::Admin(Admin::RotateEncryptionKey) => {
            if config.encryption_keys.is_some() {
                return Err("encryption keys come from configuration: put a new key first in encryption_keys \
                            (keep the old ones after it) and restart; stored secrets are re-encrypted on start"
                    .into());
            }
            let store = callsign_server::db::open_store(&config.database_url).await?;
            store.migrate().await?;
            let path = callsign_server::keys::key_file_path(&config.data_dir);
            let rng = OsRandom;
            let now = callsign_domain::Clock::now(&SystemClock);
            let keyring = callsign_server::keys::rotate_key_file(&path, &rng, now)?;
            let n = callsign_server::keys::reencrypt_stale(store.as_ref(), &keyring, &rng, now).await?;
            println!(
                "key {} is now active in {}; re-encrypted {n} secrets. Older keys stay in the file until you remove them.",
                keyring.active_key_id(),
                path.display()
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
