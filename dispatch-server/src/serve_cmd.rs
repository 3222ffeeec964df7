//! `dispatch serve`: flags → map, roster, journal → [`crate::Config`] → [`crate::run`], with
//! tracing logs and a clean stop on Ctrl-C / SIGTERM.

use crate::journal::restore_engine;
use crate::journal::{Journal, JournalOptions};
use crate::session::SessionLimits;
use crate::{Config, Limits};
use anyhow::Context;
use dispatch_core::engine::Engine;
use dispatch_core::matching::{RoadTimes, TravelTimes};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::road::{Profile, RoadConfig, RoadNetwork};
use dispatch_core::roster::RosterFile;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    /// Connection, size, rate, timeout and disk limits (docs/limits.md).
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Start even though a journal record in the middle is corrupt: keep the records before
    /// it, set the rest aside as `.torn` files (docs/durability.md). Off: refuse to start.
    #[arg(long)]
    pub recover_to_corruption: bool,
    /// Journal records between engine snapshots (bounds restart time and live disk use).
    #[arg(long, default_value_t = JournalOptions::default().snapshot_every)]
    pub snapshot_every: u64,
    /// Seconds after which a snapshot is taken anyway once any record was appended since the
    /// last one (0: by record count only).
    #[arg(long, default_value_t = 600)]
    pub snapshot_after_s: u64,
    /// The dispatch rules (TOML: any key of docs/deploy.md's "Dispatch rules" table; the
    /// rest keep their defaults). Checked at start; an error names the key. Change it only
    /// across a clean stop: replaying a crash tail needs the rules that decided it.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Cluster mode (docs/cluster.md); without `--nats`, embedded mode.
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
}

/// The limits' flags (docs/limits.md has each with its default and why).
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Maximum open connections (lowered to the open-file limit minus --fd-reserve).
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// File descriptors kept for the journal, snapshots and the map.
    #[arg(long, default_value_t = Limits::default().fd_reserve)]
    pub fd_reserve: usize,
    /// Connections not yet authenticated, in all (default: half the connection cap).
    #[arg(long)]
    pub max_unauthenticated: Option<usize>,
    /// Connections not yet authenticated from one IP address.
    #[arg(long, default_value_t = Limits::default().max_unauthenticated_per_ip)]
    pub max_unauthenticated_per_ip: usize,
    /// An unauthenticated connection silent this long is closed (first byte, headers, upgrade).
    #[arg(long, default_value_t = Limits::default().handshake_timeout.as_millis() as u64)]
    pub handshake_timeout_ms: u64,
    /// A WebSocket session without any frame (a ping counts) this long is closed with 4001.
    #[arg(long, default_value_t = Limits::default().session.idle_timeout.as_secs())]
    pub idle_timeout_s: u64,
    /// Largest accepted WebSocket frame, in bytes (larger closes with 1009).
    #[arg(long, default_value_t = Limits::default().session.max_frame_bytes)]
    pub max_frame_bytes: usize,
    /// WebSocket frames per second per session, sustained.
    #[arg(long, default_value_t = Limits::default().session.rate_per_s)]
    pub ws_rate_per_s: f64,
    /// WebSocket frames per session in a burst.
    #[arg(long, default_value_t = Limits::default().session.rate_burst)]
    pub ws_rate_burst: f64,
    /// Largest `POST /v1/alerts` body, in bytes (larger: 413).
    #[arg(long, default_value_t = Limits::default().alert_body_bytes)]
    pub alert_body_bytes: usize,
    /// `POST /v1/alerts` per device per second, sustained (over: 429 + Retry-After).
    #[arg(long, default_value_t = Limits::default().http_rate_per_s)]
    pub http_rate_per_s: f64,
    /// `POST /v1/alerts` per device in a burst.
    #[arg(long, default_value_t = Limits::default().http_rate_burst)]
    pub http_rate_burst: f64,
    /// `/healthz` is degraded below this many free bytes in the data dir.
    #[arg(long, default_value_t = Limits::default().disk_min_free_bytes)]
    pub disk_min_free_bytes: u64,
    /// `/healthz` is degraded below this percentage free in the data dir.
    #[arg(long, default_value_t = Limits::default().disk_min_free_percent)]
    pub disk_min_free_percent: f64,
    /// How often live coverage (`GET /v1/coverage`) is brought up to date, in ms.
    #[arg(long, default_value_t = Limits::default().coverage_period.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub coverage_period_ms: u64,
}

impl Default for LimitArgs {
    fn default() -> Self {
        let d = Limits::default();
        LimitArgs {
            max_connections: d.max_connections,
            fd_reserve: d.fd_reserve,
            max_unauthenticated: d.max_unauthenticated,
            max_unauthenticated_per_ip: d.max_unauthenticated_per_ip,
            handshake_timeout_ms: d.handshake_timeout.as_millis() as u64,
            idle_timeout_s: d.session.idle_timeout.as_secs(),
            max_frame_bytes: d.session.max_frame_bytes,
            ws_rate_per_s: d.session.rate_per_s,
            ws_rate_burst: d.session.rate_burst,
            alert_body_bytes: d.alert_body_bytes,
            http_rate_per_s: d.http_rate_per_s,
            http_rate_burst: d.http_rate_burst,
            disk_min_free_bytes: d.disk_min_free_bytes,
            disk_min_free_percent: d.disk_min_free_percent,
            coverage_period_ms: d.coverage_period.as_millis() as u64,
        }
    }
}

impl LimitArgs {
    /// The [`Limits`] these flags ask for, the connection cap sized below the process's
    /// open-file limit (raised to its hard limit first, where allowed), with the data dir
    /// watched for free space.
    pub fn to_limits(&self, data_dir: &Path) -> Limits {
        let fd = crate::fd_limits::raise_and_size(self.max_connections, self.fd_reserve);
        tracing::info!(
            soft_before = ?fd.soft_before,
            soft = ?fd.soft,
            hard = ?fd.hard,
            reserve = self.fd_reserve,
            requested = self.max_connections,
            max_connections = fd.max_connections,
            "open-file limit and connection cap"
        );
        let d = Limits::default();
        Limits {
            max_connections: fd.max_connections,
            fd_reserve: self.fd_reserve,
            max_unauthenticated: self.max_unauthenticated,
            max_unauthenticated_per_ip: self.max_unauthenticated_per_ip,
            handshake_timeout: Duration::from_millis(self.handshake_timeout_ms),
            alert_body_bytes: self.alert_body_bytes,
            http_rate_per_s: self.http_rate_per_s,
            http_rate_burst: self.http_rate_burst,
            data_dir: Some(data_dir.to_path_buf()),
            disk_min_free_bytes: self.disk_min_free_bytes,
            disk_min_free_percent: self.disk_min_free_percent,
            coverage_period: Duration::from_millis(self.coverage_period_ms),
            session: SessionLimits {
                max_frame_bytes: self.max_frame_bytes,
                rate_per_s: self.ws_rate_per_s,
                rate_burst: self.ws_rate_burst,
                idle_timeout: Duration::from_secs(self.idle_timeout_s),
                ..d.session
            },
            ..d
        }
    }
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

/// The server's policy, from `--config` when given: keys as `PolicyConfig`'s fields, unknown
/// keys refused by name, values checked (`PolicyConfig::validate`). `dispatch_batched` and
/// `foot_profile_kmh` are the server's own (set from the map's profile) and may not be set.
pub fn load_policy(path: Option<&Path>, foot_profile_kmh: f64) -> anyhow::Result<PolicyConfig> {
    let Some(path) = path else {
        return Ok(server_policy(foot_profile_kmh));
    };
    let parsed = read_policy_file(path)?;
    let policy = PolicyConfig {
        foot_profile_kmh,
        dispatch_batched: true,
        ..parsed
    };
    policy
        .validate()
        .map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
    Ok(policy)
}

/// A policy file (TOML, `PolicyConfig`'s fields over the defaults), unknown keys refused by
/// name and the values checked; `dispatch_batched` and `foot_profile_kmh` belong to whoever
/// runs the engine (the server, the simulator) and may not be set. Shared by `dispatch
/// serve --config` and `simulator run --engine-config`.
pub fn read_policy_file(path: &Path) -> anyhow::Result<PolicyConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("config {} is not TOML", path.display()))?;
    let known = match serde_json::to_value(PolicyConfig::default())? {
        serde_json::Value::Object(m) => m,
        _ => anyhow::bail!("PolicyConfig is not a table"),
    };
    for key in table.keys() {
        if key == "dispatch_batched" || key == "foot_profile_kmh" {
            anyhow::bail!(
                "config {}: `{key}` is set by the server, not the config file",
                path.display()
            );
        }
        if !known.contains_key(key) {
            let mut names: Vec<&str> = known
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "dispatch_batched" && *k != "foot_profile_kmh")
                .collect();
            names.sort_unstable();
            anyhow::bail!(
                "config {}: unknown key `{key}` (known: {})",
                path.display(),
                names.join(", ")
            );
        }
    }
    let parsed: PolicyConfig =
        toml::from_str(&text).with_context(|| format!("config {}", path.display()))?;
    parsed
        .validate()
        .map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
    Ok(parsed)
}

/// Reads and parses the roster file.
pub fn load_roster(path: &Path) -> anyhow::Result<RosterFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading roster {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing roster {}", path.display()))
}

/// Serves until Ctrl-C / SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if !args.cluster.nats.is_empty() {
        return crate::cluster::serve(args).await;
    }
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

/// What every node of a deployment reads from its flags before any journal: the dispatch
/// rules, the roster file, the road network (as travel times) and the web site.
pub struct World {
    pub policy: PolicyConfig,
    pub roster: RosterFile,
    pub times: Arc<dyn TravelTimes>,
    pub site: crate::web::Site,
    /// The engine the roster file describes (checked against the map).
    pub from_file: Engine,
}

/// Flags → [`World`]; the quick checks first, so a wrong config key or roster fails before
/// the map loads.
pub fn load_world(args: &ServeArgs) -> anyhow::Result<World> {
    let road_config = RoadConfig::default();
    let policy = load_policy(args.config.as_deref(), road_config.foot_kmh)?;
    let roster = load_roster(&args.roster)?;
    let started = std::time::Instant::now();
    let file = std::fs::File::open(&args.map)
        .with_context(|| format!("opening map {}", args.map.display()))?;
    let roads = RoadNetwork::from_pbf(std::io::BufReader::new(file), &road_config)
        .with_context(|| format!("reading map {}", args.map.display()))?;
    tracing::info!(map = %args.map.display(), ms = started.elapsed().as_millis() as u64, "road network ready");
    let site = crate::web::Site::new(&roads);
    let roads = Arc::new(roads);
    warm_in_background(roads.clone());
    let times: Arc<dyn TravelTimes> = Arc::new(RoadTimes::new(roads, road_config.foot_kmh));
    // Check the roster against the map before touching the journal, so a bad roster is
    // reported as such (naming the entry) rather than as a replay failure.
    let from_file = Engine::with_travel_times(times.clone(), roster.clone(), policy.clone())
        .with_context(|| format!("roster {} refused", args.roster.display()))?;
    Ok(World {
        policy,
        roster,
        times,
        site,
        from_file,
    })
}

/// Searches every road vertex's spaces on a thread of its own (`road-warm`, about 0.75 s on
/// Porto Alegre, beside the replay and the phones connecting), so that no ranking searches
/// one afterwards: the first alerts near places not ranked before cost what later ones do.
/// Travel times asked meanwhile search on demand; the same times either way.
fn warm_in_background(roads: Arc<RoadNetwork>) {
    let warm = move || {
        // Foot first: the larger, and the one ranking asks most.
        for p in [Profile::Foot, Profile::Car] {
            let started = std::time::Instant::now();
            let kept = roads.profile(p).warm_vertex_spaces();
            let ms = started.elapsed().as_millis() as u64;
            match kept {
                true => tracing::info!(profile = %p, ms, "every road vertex's search space kept"),
                false => tracing::warn!(
                    profile = %p,
                    ms,
                    "road graph too large to keep every vertex's search space: searched when first asked"
                ),
            }
        }
    };
    // Optional: without it, spaces are searched when first asked, as before.
    if let Err(e) = std::thread::Builder::new()
        .name("road-warm".into())
        .spawn(warm)
    {
        tracing::warn!(error = %e, "road-warm thread not started: search spaces searched when first asked");
    }
}

/// Map, roster, journal → the engine as it was when the service last stopped.
pub fn open(args: &ServeArgs) -> anyhow::Result<Config> {
    let World {
        policy,
        roster,
        times,
        site,
        from_file,
    } = load_world(args)?;
    // The roster file seeds an empty data directory (a snapshot at LSN 0); from then on the
    // data directory is the truth about who exists, changed only by journaled commands.
    let seeded = crate::journal::seed(
        &crate::journal::DiskStorage,
        &args.data_dir,
        &from_file.save_state(),
    )
    .with_context(|| format!("seeding data dir {}", args.data_dir.display()))?;
    drop(from_file);
    if seeded {
        tracing::info!(
            roster = %args.roster.display(),
            data_dir = %args.data_dir.display(),
            "empty data directory seeded from the roster file; from now on the data directory \
             holds who exists (changed over HTTP, kept by the journal)"
        );
    }
    let journal_opts = JournalOptions {
        recover_past_corruption: args.recover_to_corruption,
        snapshot_every: args.snapshot_every,
        snapshot_after: (args.snapshot_after_s > 0)
            .then(|| std::time::Duration::from_secs(args.snapshot_after_s)),
        ..JournalOptions::default()
    };
    let (journal, recovered) = Journal::open(&args.data_dir, journal_opts)
        .with_context(|| format!("opening the journal in {}", args.data_dir.display()))?;
    let (engine, stats) = restore_engine(&recovered, times, roster.clone(), policy)
        .with_context(|| format!("restoring from {}", args.data_dir.display()))?;
    tracing::info!(
        snapshot_lsn = stats.snapshot_lsn,
        commands = stats.commands,
        timeouts = stats.timeouts,
        last_seq = engine.last_seq(),
        "engine restored"
    );
    if !seeded {
        let differences = roster.differences(&engine.roster().to_file());
        if !differences.is_empty() {
            tracing::warn!(
                roster = %args.roster.display(),
                count = differences.len(),
                differences = %differences.join("; "),
                "the roster file differs from the data directory's roster, which is the truth \
                 (run-time changes are kept; the file only seeds an empty data directory); \
                 to apply the file, import it: POST /v1/roster/import (docs/deploy.md)"
            );
        }
    }
    let limits = args.limits.to_limits(&args.data_dir);
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
