//! `dispatch serve`: flags → map, roster, journal → [`crate::Config`] → [`crate::run`], with
//! tracing logs and a clean stop on Ctrl-C / SIGTERM.

use crate::journal_file::{Journal, JournalOptions};
use crate::journal_recover::restore_engine;
use crate::session::SessionLimits;
use crate::{Config, Limits};
use anyhow::Context;
use dispatch_core::engine::Engine;
use dispatch_core::matching::{RoadTimes, TravelTimes};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::road::{RoadConfig, RoadNetwork};
use dispatch_core::roster::RosterFile;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// Start even though a journal record in the middle is corrupt: keep the records before
    /// it, set the rest aside as `.torn` files (docs/durability.md). Off: refuse to start.
    #[arg(long)]
    pub recover_to_corruption: bool,
    /// Journal records between engine snapshots (bounds restart time and live disk use).
    #[arg(long, default_value_t = JournalOptions::default().snapshot_every)]
    pub snapshot_every: u64,
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
        .with_writer(std::io::stderr)
        .try_init();
}

/// The dispatch policy `dispatch serve` runs (and replays its journal with): DESIGN §4's
/// defaults, with batched dispatch so that a burst of commands shares one dispatch round.
pub fn server_policy(foot_profile_kmh: f64) -> PolicyConfig {
    PolicyConfig {
        foot_profile_kmh,
        dispatch_batched: true,
        ..PolicyConfig::default()
    }
}

/// Reads and parses the roster file.
pub fn load_roster(path: &Path) -> anyhow::Result<RosterFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading roster {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing roster {}", path.display()))
}

/// Serves until Ctrl-C / SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = open(&args)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listen address")?;
    println!("dispatch: listening on http://{addr} (WebSocket: ws://{addr}/v1/ws)");
    crate::run(config, listener, stop_signal()).await
}

/// Map, roster, journal → the engine as it was when the service last stopped.
pub fn open(args: &ServeArgs) -> anyhow::Result<Config> {
    let roster = load_roster(&args.roster)?;
    let started = std::time::Instant::now();
    let file = std::fs::File::open(&args.map)
        .with_context(|| format!("opening map {}", args.map.display()))?;
    let road_config = RoadConfig::default();
    let roads = RoadNetwork::from_pbf(std::io::BufReader::new(file), &road_config)
        .with_context(|| format!("reading map {}", args.map.display()))?;
    tracing::info!(map = %args.map.display(), ms = started.elapsed().as_millis() as u64, "road network ready");
    let policy = server_policy(road_config.foot_kmh);
    let site = crate::web::Site::new(&roads);
    let times: Arc<dyn TravelTimes> = Arc::new(RoadTimes {
        net: Arc::new(roads),
        foot_kmh: road_config.foot_kmh,
    });
    // Check the roster against the map before touching the journal, so a bad roster is
    // reported as such (naming the entry) rather than as a replay failure.
    Engine::with_travel_times(times.clone(), roster.clone(), policy.clone())
        .with_context(|| format!("roster {} refused", args.roster.display()))?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let journal_opts = JournalOptions {
        recover_past_corruption: args.recover_to_corruption,
        snapshot_every: args.snapshot_every,
        ..JournalOptions::default()
    };
    let (journal, recovered) = Journal::open(&args.data_dir, journal_opts)
        .with_context(|| format!("opening the journal in {}", args.data_dir.display()))?;
    let (engine, stats) = restore_engine(&recovered, times, roster, policy)
        .with_context(|| format!("restoring from {}", args.data_dir.display()))?;
    tracing::info!(
        snapshot_lsn = stats.snapshot_lsn,
        commands = stats.commands,
        timeouts = stats.timeouts,
        last_seq = engine.last_seq(),
        "engine restored"
    );
    let defaults = Limits::default();
    let limits = Limits {
        max_connections: args.max_connections,
        session: SessionLimits {
            max_frame_bytes: args.max_frame_bytes,
            ..defaults.session
        },
        ..defaults
    };
    Ok(Config {
        // The roster as it is now (run-time changes replayed), for tokens and filters.
        roster: engine.roster().to_file(),
        engine: Box::new(engine),
        journal: Box::new(journal),
        limits,
        site,
    })
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
