//! The dispatch service: WebSocket and HTTP on one port, the engine task, the journal file.
//!
//! Modules in reading order:
//! - [`wire`]: the v1 protocol's JSON messages (the only serde of the protocol).
//! - [`auth`]: bearer tokens → roles, against the roster's SHA-256 digests.
//! - [`engine_task`]: the single owner of the engine; output commit through the journal.
//! - [`journal`]: the journal on disk (group commit, recovery, snapshots, restore, storage).
//! - [`fanout`]: released events to consoles (filters, resume, lag policy) and responders.
//! - [`session`]: one WebSocket client, generic over Sink/Stream.
//! - [`http`], [`listener`]: the axum routes and the connection-limited listener.
//! - [`metrics`]: Prometheus text at `/metrics`.
//! - [`people`]: responders, elders and grids managed over HTTP; tokens issued.
//! - [`web`]: the console and responder web apps and `GET /v1/map`.
//! - [`serve_cmd`]: `dispatch serve` (flags → [`Config`] → [`run`]).
//! - [`cluster`]: `dispatch serve --nats`: region journals on JetStream, lease, standby, takeover.
//!
//! [`run`] takes its listener and its shutdown future as arguments (the mini-redis shape), so
//! a test binds `127.0.0.1:0` and passes any future.

pub mod auth;
pub mod care_plans;
pub mod closures;
pub mod cluster;
pub mod coverage;
pub mod disk_budget;
pub mod engine_task;
pub mod export_cmd;
pub mod fanout;
pub mod fd_limits;
pub mod http;
pub mod journal;
pub mod listener;
pub mod metrics;
pub mod moves;
pub mod people;
pub mod roster_cmd;
pub mod serve_cmd;
pub mod session;
pub mod time_bank;
pub mod web;
pub mod wire;

use crate::auth::{GridIndex, RightsIndex, RosterViews, TokenIndex};
use crate::engine_task::{EngineCore, EngineLimits, JournalSink};
use crate::fanout::{Fanout, ResponderRegistry};
use crate::session::SessionLimits;
use anyhow::Context;
use dispatch_core::roster::RosterFile;
use std::future::{Future, IntoFuture};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Every bound of the service, with its default and why (ARCHITECTURE.md "Queues",
/// docs/limits.md).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open TCP connections (WebSocket sessions included); more wait in the backlog.
    /// Default 20,000: DESIGN §7 has 10,000 connected responders plus consoles and gateways.
    /// The cap actually used is at most the file-descriptor limit minus `fd_reserve`.
    pub max_connections: usize,
    /// File descriptors kept free of connections for the journal, snapshots and the map.
    /// Default 64.
    pub fd_reserve: usize,
    /// Connections not yet authenticated (no authenticated request or upgrade yet), in all.
    /// Past it the oldest idle one is shed. Default: half the connection cap (the other half
    /// stays for established sessions, `/healthz` and new clients).
    pub max_unauthenticated: Option<usize>,
    /// Connections not yet authenticated from one IP address; past it that address's oldest
    /// idle one is shed. Default 256.
    pub max_unauthenticated_per_ip: usize,
    /// A connection that is not yet authenticated and sends nothing for this long is closed
    /// (covers accept → first byte, slow headers, slow upgrade). Default 10 s.
    pub handshake_timeout: Duration,
    /// Largest `POST /v1/alerts` body (larger: 413). Default 16 KiB.
    pub alert_body_bytes: usize,
    /// `POST /v1/alerts` per device token: sustained per second, and burst (like the
    /// WebSocket's). Over: 429 with `Retry-After`. Default 50/s, burst 200.
    pub http_rate_per_s: f64,
    pub http_rate_burst: f64,
    /// Watch free space here (`/healthz` degraded, metric, log); `None`: not watched.
    pub data_dir: Option<std::path::PathBuf>,
    /// Degraded below this many free bytes in `data_dir`. Default 1 GiB.
    pub disk_min_free_bytes: u64,
    /// Degraded below this percentage free in `data_dir`. Default 5 %.
    pub disk_min_free_percent: f64,
    /// Requests queued for the engine task. Default 8,192: a second of alerts at 1,000/s with
    /// room for every other command.
    pub command_queue: usize,
    /// Accepted engine steps waiting for fsync before the engine task stops taking more.
    /// Default 16,384 (a group commit takes ~4 ms; this is far more than one fsync's worth).
    pub max_uncommitted: usize,
    /// How long a sender waits for room in the command queue before `busy`. Default 2 s.
    pub send_wait: Duration,
    /// Recent events kept for consoles that resume (default 65,536; moves are not kept).
    pub ring_events: usize,
    /// At most one `responder_moved` per responder per console per this interval. Default 1 s.
    pub moved_interval_ms: u64,
    /// How often live coverage is brought up to date (docs/limits.md). Default 5 s.
    pub coverage_period: Duration,
    pub session: SessionLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 20_000,
            fd_reserve: 64,
            max_unauthenticated: None,
            max_unauthenticated_per_ip: 256,
            handshake_timeout: Duration::from_secs(10),
            alert_body_bytes: 16 * 1024,
            http_rate_per_s: 50.0,
            http_rate_burst: 200.0,
            data_dir: None,
            disk_min_free_bytes: 1 << 30,
            disk_min_free_percent: 5.0,
            command_queue: 8_192,
            max_uncommitted: 16_384,
            send_wait: Duration::from_secs(2),
            ring_events: 65_536,
            moved_interval_ms: 1_000,
            coverage_period: Duration::from_secs(5),
            session: SessionLimits {
                max_frame_bytes: 64 * 1024,
                rate_per_s: 50.0,
                rate_burst: 200.0,
                responder_queue: 256,
                console_queue: 4_096,
                write_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(120),
                area: None,
            },
        }
    }
}

/// How far outside the roster's homes a `location` may be: 0.5° (about 55 km), so a whole
/// city's outskirts are in and a phone reporting another continent (or (0, 0)) is not.
pub const AREA_MARGIN_DEG: f64 = 0.5;

/// The bounding box of every home on the roster, widened by [`AREA_MARGIN_DEG`].
pub fn service_area(roster: &RosterFile) -> Option<[f64; 4]> {
    let homes = roster
        .elders
        .iter()
        .map(|e| e.home)
        .chain(roster.responders.iter().map(|r| r.home));
    let mut area: Option<[f64; 4]> = None;
    for p in homes {
        let a = area.get_or_insert([p.lat, p.lon, p.lat, p.lon]);
        *a = [
            a[0].min(p.lat),
            a[1].min(p.lon),
            a[2].max(p.lat),
            a[3].max(p.lon),
        ];
    }
    area.map(|[a, b, c, d]| {
        [
            a - AREA_MARGIN_DEG,
            b - AREA_MARGIN_DEG,
            c + AREA_MARGIN_DEG,
            d + AREA_MARGIN_DEG,
        ]
    })
}

/// The listener's caps from the service's limits.
pub fn listener_limits(limits: &Limits) -> listener::ListenerLimits {
    listener::ListenerLimits {
        max_connections: limits.max_connections,
        max_unauthenticated: limits
            .max_unauthenticated
            .unwrap_or(limits.max_connections / 2)
            .max(1),
        per_ip: limits.max_unauthenticated_per_ip,
        handshake_timeout: limits.handshake_timeout,
    }
}

/// What the service runs: an engine (already built or restored), who may connect, where
/// records go, and the bounds.
pub struct Config {
    pub engine: Box<dyn EngineCore>,
    /// The roster the engine started from (its extent bounds positions when no map is given;
    /// tokens and grids are read from the engine, which may have changed them since).
    pub roster: RosterFile,
    pub journal: Box<dyn JournalSink>,
    pub limits: Limits,
    /// The web apps and the encoded map (`Site::default()`: embedded apps, no map).
    pub site: web::Site,
}

/// Serves until `shutdown` completes, then stops accepting, closes every session (1001),
/// lets the engine task finish what is queued, waits for the journal to make it durable,
/// closes the journal and returns.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future,
) -> anyhow::Result<()> {
    let Config {
        engine,
        roster,
        journal,
        limits,
        site,
    } = config;
    let addr = listener
        .local_addr()
        .context("reading the listener's address")?;
    let roster_views = RosterViews {
        tokens: Arc::new(TokenIndex::new(engine.token_table())),
        grids: Arc::new(GridIndex::new(engine.grid_table())),
        rights: Arc::new(RightsIndex::new(engine.rights_table())),
    };
    let mut session_limits = limits.session;
    session_limits.area = session_limits.area.or_else(|| service_area(&roster));
    let registry = Arc::new(ResponderRegistry::default());
    let head_seq = engine.last_seq();
    let fanout = Fanout::new(
        registry.clone(),
        limits.ring_events,
        limits.moved_interval_ms,
        head_seq,
    );
    // The engine has its own stop signal: it keeps serving while sessions drain.
    let engine_stop = CancellationToken::new();
    let (handle, engine_join) = engine_task::spawn(
        engine,
        journal,
        fanout,
        roster_views.clone(),
        EngineLimits {
            command_queue: limits.command_queue,
            max_uncommitted: limits.max_uncommitted,
            send_wait: limits.send_wait,
        },
        engine_stop.clone(),
    )?;
    let sessions_stop = CancellationToken::new();
    let sessions = TaskTracker::new();
    let disk = limits.data_dir.clone().map(|dir| {
        Arc::new(disk_budget::DiskBudget::new(
            dir,
            limits.disk_min_free_bytes,
            limits.disk_min_free_percent,
        ))
    });
    if let Some(d) = &disk {
        d.clone().watch(sessions_stop.clone());
    }
    let listener_limits = listener_limits(&limits);
    tracing::info!(
        max_connections = listener_limits.max_connections,
        max_unauthenticated = listener_limits.max_unauthenticated,
        per_ip = listener_limits.per_ip,
        handshake_timeout_ms = listener_limits.handshake_timeout.as_millis() as u64,
        "connection limits"
    );
    let state = http::AppState {
        engine: handle,
        tokens: roster_views.tokens,
        registry,
        session_limits,
        grids: roster_views.grids,
        rights: roster_views.rights,
        shutdown: sessions_stop.clone(),
        sessions: sessions.clone(),
        session_counter: Arc::new(AtomicU64::new(1)),
        prometheus: metrics::prometheus(),
        http_limits: http::HttpLimits {
            alert_body_bytes: limits.alert_body_bytes,
            rate_per_s: limits.http_rate_per_s,
            rate_burst: limits.http_rate_burst,
        },
        alert_buckets: Arc::default(),
        disk: disk.clone(),
        coverage: Arc::default(),
    };
    let coverage_task = coverage::spawn(
        state.engine.clone(),
        state.coverage.clone(),
        limits.coverage_period,
        sessions_stop.clone(),
    );
    let app = http::router(state).merge(web::routes(site));
    if cluster::is_cluster() {
        // Requests other nodes forward to this (active) engine go through the same router
        // (routed to this region already).
        cluster::forward::set_local_app(&app);
    }
    // Cluster mode with regions: an alert or a responder's session of another region goes
    // to that region's engine.
    let app = cluster::regions::wrap(app);
    tracing::info!(%addr, "serving");
    let server = tokio::spawn(
        axum::serve(
            listener::LimitedListener::new(listener, listener_limits),
            app.into_make_service_with_connect_info::<listener::ConnInfo>(),
        )
        .with_graceful_shutdown(sessions_stop.clone().cancelled_owned())
        .into_future(),
    );
    tokio::pin!(server);
    // `shutdown` need not be Send, so it is awaited here rather than handed to axum.
    let served = tokio::select! {
        _ = shutdown => {
            tracing::info!("shutting down: no new connections");
            sessions_stop.cancel();
            (&mut server).await
        }
        r = &mut server => r,
    };
    // Whatever ended serving, sessions go and the engine drains.
    sessions_stop.cancel();
    sessions.close();
    sessions.wait().await;
    let _ = coverage_task.await;
    engine_stop.cancel();
    let drained = engine_join.await.context("the engine thread panicked")?;
    served
        .context("the HTTP server task panicked")?
        .context("serving HTTP")?;
    drained.context("draining the engine")?;
    tracing::info!("stopped");
    Ok(())
}
