//! `dispatch serve`: flags → map, roster, journal → [`crate::Config`] → [`crate::run`], with
//! tracing logs and a clean stop on Ctrl-C / SIGTERM.

use crate::engine_task::{EngineCore, JournalSink, VolatileJournal};
use crate::session::SessionLimits;
use crate::{Config, Limits};
use anyhow::Context;
use dispatch_core::roster::RosterFile;
use std::path::{Path, PathBuf};

/// `dispatch serve --map FILE.osm.pbf --roster FILE.json --data-dir DIR --listen ADDR`
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The OpenStreetMap extract (.osm.pbf) to route on.
    #[arg(long, value_name = "FILE.osm.pbf")]
    pub map: PathBuf,
    /// The roster (DESIGN §5.1): grids, responders, elders, operators, devices.
    #[arg(long, value_name = "FILE.json")]
    pub roster: PathBuf,
    /// Where the journal and snapshots live (created if missing).
    #[arg(long, value_name = "DIR", default_value = "dispatch-data")]
    pub data_dir: PathBuf,
    /// Address to listen on (HTTP and WebSocket on one port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Maximum open connections.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Largest accepted WebSocket frame, in bytes (larger closes with 1009).
    #[arg(long, default_value_t = Limits::default().session.max_frame_bytes)]
    pub max_frame_bytes: usize,
}

/// The entry point `main.rs` calls: builds a runtime, serves until Ctrl-C / SIGTERM.
pub fn main(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing();
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    rt.block_on(serve(args))
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests calling main twice) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// Reads and parses the roster file.
pub fn load_roster(path: &Path) -> anyhow::Result<RosterFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading roster {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing roster {}", path.display()))
}

/// Serves until Ctrl-C / SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let roster = load_roster(&args.roster)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let engine = open_engine(&args.map, &roster)?;
    let journal: Box<dyn JournalSink> = open_journal(&args.data_dir)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listen address")?;
    println!("dispatch: listening on http://{addr} (WebSocket: ws://{addr}/v1/ws)");
    let defaults = Limits::default();
    let limits = Limits {
        max_connections: args.max_connections,
        session: SessionLimits {
            max_frame_bytes: args.max_frame_bytes,
            ..defaults.session
        },
        ..defaults
    };
    let config = Config {
        engine,
        roster,
        journal,
        limits,
    };
    crate::run(config, listener, stop_signal()).await
}

/// Builds the road network from the map and the engine from the roster.
fn open_engine(map: &Path, _roster: &RosterFile) -> anyhow::Result<Box<dyn EngineCore>> {
    let file =
        std::fs::File::open(map).with_context(|| format!("opening map {}", map.display()))?;
    let _reader = std::io::BufReader::new(file);
    // Wired once the engine branch lands (RoadNetwork::from_pbf + Engine::new).
    anyhow::bail!("this build has no engine yet (branch `engine` not merged)")
}

/// The journal in `data_dir`.
fn open_journal(_data_dir: &Path) -> anyhow::Result<Box<dyn JournalSink>> {
    tracing::warn!("no journal in this build: accepted alerts are NOT kept across restarts");
    Ok(Box::new(VolatileJournal::default()))
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
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
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C"),
        _ = term => tracing::info!("SIGTERM"),
    }
}
