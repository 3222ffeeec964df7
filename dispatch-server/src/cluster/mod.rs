//! Cluster mode (`dispatch serve --nats URL[,URL…] --node NAME`, docs/cluster.md): the
//! region's journal is a replicated NATS JetStream stream; one engine is active for the region
//! (it holds the lease in a JetStream key-value bucket and appends with fencing), the others
//! are hot standbys following the stream into a warm engine, and one of them takes over from
//! exactly the last record when the active engine stops renewing its lease.
//!
//! - [`log`]: the region's journal as a JetStream stream (the "log" of log replication, not
//!   logging): kinds of message, seed, fenced append, `StreamReplica`, snapshots, `Follower`.
//! - [`forward`]: any node answers — HTTP forwarded, WebSocket sessions proxied.
//! - this file: the node's life — standby (follow, answer 503), takeover (catch up, fence,
//!   serve with the journal replicated), step-down (exit when the lease or the stream is lost).
//!
//! Without `--nats` none of this runs: embedded mode is unchanged.

pub mod forward;
pub mod log;
pub mod regions;

use crate::journal::{Journal, JournalOptions};
use crate::serve_cmd::{load_world, ServeArgs, World};
use anyhow::{bail, Context};
use async_nats::jetstream;
use async_nats::jetstream::kv;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dispatch_core::engine::{Engine, EngineState};
use dispatch_core::journal::RegionId;
use futures_util::StreamExt;
use serde::Serialize;
use std::future::IntoFuture;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The cluster flags of `dispatch serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Cluster mode: the NATS servers (comma-separated `nats://HOST:PORT`) whose JetStream
    /// holds the region journals. Without it, embedded mode (one node, journal in --data-dir).
    #[arg(long, value_name = "URL[,URL…]", value_delimiter = ',')]
    pub nats: Vec<String>,
    /// This node's name in the cluster (required with --nats; unique per node).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// How long a region's lease lasts without renewal: a dead engine's region is taken over
    /// this long after its last renewal. Every node must use the same value. At most 60 s:
    /// an append retries a lost acknowledgement for up to a lease, well inside the stream's
    /// two-minute de-duplication window.
    #[arg(long, default_value_t = 3_000, value_parser = clap::value_parser!(u64).range(500..=60_000))]
    pub lease_ms: u64,
    /// Copies JetStream keeps of each region's stream and of the lease bucket (3 survives one
    /// dead server; 1 only for a single-server trial).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=5))]
    pub nats_replicas: u64,
    /// HOST:PORT at which the other nodes reach this node's HTTP and WebSocket (a standby
    /// proxies sessions there when this node is active). Default: the listen address, unless
    /// it is a wildcard (0.0.0.0, [::]), which must then be given.
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// A NATS credentials file (JWT + NKey seed) for this node's connection; `tls://` URLs in
    /// --nats use TLS. NATS must be access-controlled: whoever can publish to the region's
    /// subjects can write its journal (docs/cluster.md, "Security").
    #[arg(long, value_name = "FILE.creds")]
    pub nats_creds: Option<std::path::PathBuf>,
    /// The dispatch region this node runs the engine of (the roster's `regions` section; 0
    /// when it has none). One process per region: a machine serving two regions runs two.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub region: u16,
}

impl Default for ClusterArgs {
    fn default() -> Self {
        ClusterArgs {
            nats: Vec::new(),
            node: None,
            lease_ms: 3_000,
            nats_replicas: 3,
            advertise: None,
            nats_creds: None,
            region: 0,
        }
    }
}

/// The lease bucket: one key per region, holding the active node's name; the bucket's
/// `max_age` is the lease, so an unrenewed key disappears.
pub const LEASE_BUCKET: &str = "dispatch_leases";

fn lease_key(region: RegionId) -> String {
    format!("region-{}", region.0)
}

/// What `/healthz` says of the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct RegionStatus {
    pub region: u16,
    /// `catching_up` (reading the stream at start), `standby`, `taking_over`, `active`.
    pub role: &'static str,
    /// The last stream sequence this node applied (standby) or wrote (active).
    pub applied_seq: u64,
    /// The node holding the region's lease, as last seen.
    pub lease_holder: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    pub node: String,
    pub regions: Mutex<Vec<RegionStatus>>,
}

static STATUS: OnceLock<Arc<ClusterStatus>> = OnceLock::new();
/// The stream sequence this node's engine started following from: the seed's, or that of the
/// cluster snapshot it started from.
static STARTED_FROM: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Whether this process runs in cluster mode.
pub fn is_cluster() -> bool {
    STATUS.get().is_some()
}

/// The cluster status of this process (`None`: embedded mode), for `/healthz`.
pub fn status() -> Option<serde_json::Value> {
    let s = STATUS.get()?;
    let regions = s.regions.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Some(serde_json::json!({
        "node": s.node,
        "regions": regions,
        "started_from_seq": STARTED_FROM.load(std::sync::atomic::Ordering::Relaxed),
    }))
}

fn set_status(region: RegionId, role: &'static str, applied: u64, holder: Option<String>) {
    if let Some(s) = STATUS.get() {
        let mut regions = s.regions.lock().unwrap_or_else(|p| p.into_inner());
        let entry = RegionStatus {
            region: region.0,
            role,
            applied_seq: applied,
            lease_holder: holder,
        };
        match regions.iter_mut().find(|r| r.region == region.0) {
            Some(r) => *r = entry,
            None => regions.push(entry),
        }
    }
    crate::metrics::cluster_role(region, role, applied);
}

/// The active engine wrote up to stream sequence `seq`.
pub(crate) fn set_applied(region: RegionId, seq: u64) {
    if let Some(s) = STATUS.get() {
        let mut regions = s.regions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = regions.iter_mut().find(|r| r.region == region.0) {
            r.applied_seq = seq;
        }
    }
}

/// Ends the process: this node may no longer act for the region. Exit code 75 (EX_TEMPFAIL):
/// a supervisor restarts it, and it comes back as a standby.
fn step_down(region: RegionId, why: &str) -> ! {
    tracing::error!(region = region.0, why, "stepping down: this engine no longer holds the region; exiting so a supervisor restarts it as a standby");
    crate::metrics::cluster_step_down(region);
    std::process::exit(75)
}

/// `dispatch serve --nats …`: standby until this node takes the region's lease, then the
/// active engine until stopped (or stepped down).
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cluster = args.cluster.clone();
    let node = cluster
        .node
        .clone()
        .context("--node NAME is required with --nats")?;
    if node.is_empty()
        || node.len() > 64
        || !node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("--node must be 1 to 64 of A-Z a-z 0-9 - _ (it names this node in the stream and the lease)");
    }
    // The quick checks before the map loads.
    let servers = cluster
        .nats
        .iter()
        .map(|u| {
            u.parse::<async_nats::ServerAddr>()
                .with_context(|| format!("--nats: `{u}` is not a NATS server address"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(a) = &cluster.advertise {
        let port = a.rsplit_once(':').and_then(|(host, port)| {
            (!host.is_empty() && !host.contains(char::is_whitespace))
                .then(|| port.parse::<u16>().ok())
                .flatten()
        });
        if port.is_none_or(|p| p == 0) {
            bail!("--advertise `{a}` is not HOST:PORT (where the other nodes reach this one)");
        }
    }
    // The recorder first: a standby's gauges are set long before `run` would install it.
    let _ = crate::metrics::prometheus();
    let region = RegionId(cluster.region);
    let lease = Duration::from_millis(cluster.lease_ms);
    let replicas = cluster.nats_replicas as usize;
    // How long start-up steps (a cluster electing its leaders, reading a snapshot) and a
    // takeover may take before this node gives up (and a supervisor starts it again).
    let startup_wait = Duration::from_secs(30);

    let World {
        policy,
        roster,
        times,
        site,
        from_file,
    } = load_world(&args)?;
    // This region's engine holds this region's people (the whole roster when it has no
    // regions section).
    let map = roster.region_map().context("the roster's regions")?;
    if !map.contains(region) {
        let have: Vec<String> = map.regions().map(|r| r.0.to_string()).collect();
        bail!(
            "--region {}: the roster has no such region (it has {})",
            region.0,
            have.join(", ")
        );
    }
    drop(from_file);
    let from_file = Engine::with_travel_times(
        times.clone(),
        roster.region_slice(&map, region),
        policy.clone(),
    )
    .with_context(|| format!("region {}'s part of the roster refused", region.0))?;

    let mut options = async_nats::ConnectOptions::new();
    if let Some(creds) = &cluster.nats_creds {
        options = options
            .credentials_file(creds)
            .await
            .with_context(|| format!("--nats-creds {}", creds.display()))?;
    }
    let client = options
        .name(format!("dispatch-{node}"))
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .request_timeout(Some(Duration::from_secs(2)))
        .connect(servers)
        .await
        .context("connecting to NATS")?;
    let js = jetstream::new(client.clone());
    let stream = log::ensure_stream(&js, region, replicas, startup_wait).await?;
    let leases = log::retry(startup_wait, "creating the lease bucket", || async {
        match js.get_key_value(LEASE_BUCKET).await {
            Ok(kv) => Ok(kv),
            Err(_) => {
                js.create_key_value(kv::Config {
                    bucket: LEASE_BUCKET.to_string(),
                    history: 1,
                    max_age: lease,
                    num_replicas: replicas,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
            }
        }
    })
    .await?;

    check_found(&stream, &leases, replicas, lease).await?;
    regions::set(regions::Directory::new(
        &roster,
        map.clone(),
        region,
        client,
        leases.clone(),
        args.limits.alert_body_bytes,
    ));
    drop(roster);

    let snapshots = log::retry(startup_wait, "creating the snapshot bucket", || async {
        match js.get_object_store(log::SNAPSHOT_BUCKET).await {
            Ok(store) => Ok(store),
            Err(_) => {
                js.create_object_store(jetstream::object_store::Config {
                    bucket: log::SNAPSHOT_BUCKET.to_string(),
                    num_replicas: replicas,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
            }
        }
    })
    .await?;

    let state = serde_json::to_vec(&from_file.save_state()).context("encoding the seed")?;
    drop(from_file);
    if log::write_seed(&js, region, &node, &state, startup_wait).await? {
        tracing::info!(region = region.0, "seeded the region's stream");
    }
    // Start from the cluster's newest snapshot when it belongs to this stream and the stream
    // still holds what follows it; else from the seed.
    let mut info_stream = stream.clone();
    let (first, last, created_ns) = {
        let info = info_stream
            .info()
            .await
            .context("reading the region's stream")?;
        let created = info.created.unix_timestamp_nanos() as i64;
        (info.state.first_sequence, info.state.last_sequence, created)
    };
    let snapshot = match log::read_snapshot(&snapshots, region, created_ns, startup_wait).await {
        Ok(Some((seq, state))) if seq + 1 >= first && seq <= last => Some((state, seq)),
        Ok(Some((seq, _))) => {
            tracing::warn!(
                seq,
                first,
                last,
                "the cluster's snapshot is not usable with the stream; replaying from the seed"
            );
            None
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "replaying from the seed");
            None
        }
    };
    let (start_state, start_seq) = match snapshot {
        Some(s) => s,
        None => log::read_seed(&stream, startup_wait).await?,
    };
    let start: EngineState = serde_json::from_slice(&start_state).with_context(|| {
        format!("the region's state at stream sequence {start_seq} is not one this build can read")
    })?;
    STARTED_FROM.store(start_seq, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        region = region.0,
        start_seq,
        "following the region's stream"
    );
    let engine = Engine::restore_with_travel_times(times.clone(), policy.clone(), start);
    // A stream seeded before the roster named regions holds everybody: this region's engine
    // would then offer other regions' people too. Refused rather than served.
    let foreign = engine
        .roster()
        .grids()
        .find_map(|g| Some((g.id.clone(), map.of_grid(&g.id).filter(|r| *r != region)?)));
    if let Some((grid, other)) = foreign {
        bail!(
            "region {}'s stream holds grid {grid}, which the roster puts in region {}: the \
             stream was seeded before the roster's regions said so, and its engine would offer \
             another region's people. A region's people are fixed by its stream (docs/cluster.md, \
             \"Regions\"); start this region on a new stream, or keep the roster's regions as \
             they were",
            region.0,
            other.0
        );
    }
    drop(map);
    let mut follower = log::Follower::new(engine, start_seq);

    let _ = STATUS.set(Arc::new(ClusterStatus {
        node: node.clone(),
        regions: Mutex::new(Vec::new()),
    }));
    set_status(region, "catching_up", follower.applied, None);

    let listener = std::net::TcpListener::bind(&args.listen)
        .with_context(|| format!("listening on {}", args.listen))?;
    listener
        .set_nonblocking(true)
        .context("listener non-blocking")?;
    let addr = listener
        .local_addr()
        .context("reading the listen address")?;
    println!("dispatch: listening on http://{addr} (WebSocket: ws://{addr}/v1/ws)");
    let advertise = match &cluster.advertise {
        Some(a) => a.clone(),
        None if addr.ip().is_unspecified() => {
            bail!("--listen {addr} is a wildcard: give --advertise HOST:PORT (where the other nodes reach this one)")
        }
        None => addr.to_string(),
    };
    // The lease's value: who holds the region and where the others reach it.
    let lease_value = format!("{node} {advertise}");

    // Standby: follow the stream, forward requests and proxy sessions to the active node,
    // until the lease is ours.
    let active_addr: Arc<Mutex<Option<forward::Holder>>> = Arc::default();
    let standby_stop = CancellationToken::new();
    let limits = args.limits.to_limits(&args.data_dir);
    let standby_server = tokio::spawn(
        axum::serve(
            crate::listener::LimitedListener::new(
                tokio::net::TcpListener::from_std(listener.try_clone()?)?,
                crate::listener_limits(&limits),
            ),
            regions::wrap(standby_router(forward::Standby {
                client: js.client(),
                region,
                active: active_addr.clone(),
                stop: standby_stop.clone(),
            }))
            .into_make_service_with_connect_info::<crate::listener::ConnInfo>(),
        )
        .with_graceful_shutdown(standby_stop.clone().cancelled_owned())
        .into_future(),
    );
    let stop = crate::serve_cmd::stop_signal();
    tokio::pin!(stop);

    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: follower.applied + 1,
            },
            ..Default::default()
        })
        .await
        .context("following the region's stream")?;
    let mut messages = consumer
        .messages()
        .await
        .context("following the region's stream")?;
    let key = lease_key(region);
    let Some(revision) = follow_until_lease(
        &stream,
        &leases,
        &key,
        &lease_value,
        region,
        &mut follower,
        &mut messages,
        &active_addr,
        stop.as_mut(),
    )
    .await?
    else {
        standby_stop.cancel();
        let _ = standby_server.await;
        return Ok(());
    };

    // Takeover. The lease is renewed from now on (catching up may take longer than a lease);
    // a takeover that fails releases it and steps down.
    let took_at = Instant::now();
    let active_stop = CancellationToken::new();
    let revision = Arc::new(std::sync::atomic::AtomicU64::new(revision));
    let renewer = tokio::spawn(renew_lease(
        leases.clone(),
        key.clone(),
        lease_value.clone(),
        revision.clone(),
        lease,
        region,
        active_stop.clone(),
    ));
    set_status(region, "taking_over", follower.applied, Some(node.clone()));
    tracing::info!(
        region = region.0,
        applied = follower.applied,
        "took the region's lease; catching up and fencing"
    );
    let taken = take_over(
        &js,
        &stream,
        region,
        &node,
        follower,
        messages,
        lease,
        startup_wait,
    )
    .await;
    let (fence_seq, engine) = match taken {
        Ok(t) => t,
        Err(e) => {
            active_stop.cancel();
            let _ = renewer.await;
            let rev = revision.load(std::sync::atomic::Ordering::SeqCst);
            let _ = leases.delete_expect_revision(&key, Some(rev)).await;
            step_down(region, &format!("the takeover failed: {e:#}"));
        }
    };

    // This term's local journal: the engine as taken over is its seed.
    let term_dir = args
        .data_dir
        .join(format!("region-{}-seq-{fence_seq:020}", region.0));
    std::fs::create_dir_all(&term_dir)
        .with_context(|| format!("creating {}", term_dir.display()))?;
    crate::journal::seed(
        &crate::journal::DiskStorage,
        &term_dir,
        &engine.save_state(),
    )
    .with_context(|| format!("seeding {}", term_dir.display()))?;
    prune_terms(&args.data_dir, region, TERMS_KEPT);
    let (journal, _recovered) = Journal::open(
        &term_dir,
        JournalOptions {
            region,
            snapshot_every: args.snapshot_every,
            snapshot_after: (args.snapshot_after_s > 0)
                .then(|| Duration::from_secs(args.snapshot_after_s)),
            ..JournalOptions::default()
        },
    )
    .with_context(|| format!("opening the journal in {}", term_dir.display()))?;
    journal.set_replica(Arc::new(log::StreamReplica {
        js: js.clone(),
        snapshots: Some(snapshots.clone()),
        uploading: Arc::default(),
        stream_created_ns: created_ns,
        region,
        node: node.clone(),
        runtime: tokio::runtime::Handle::current(),
        wait: lease,
        last: Mutex::new(fence_seq),
    }));
    // A failed journal (fenced, or the cluster unreachable past the lease) ends this node.
    let mut durable = journal.durable();
    tokio::spawn(async move {
        if let Ok(d) = durable.wait_for(|d| d.failed.is_some()).await {
            step_down(region, d.failed.as_deref().unwrap_or_default());
        }
    });
    let forwarder = tokio::spawn(forward::serve(
        js.client(),
        region,
        node.clone(),
        active_stop.clone(),
    ));
    set_status(region, "active", fence_seq, Some(node.clone()));
    crate::metrics::cluster_takeover(region, took_at.elapsed());
    tracing::info!(
        region = region.0,
        fence_seq,
        ms = took_at.elapsed().as_millis() as u64,
        "active for the region"
    );

    standby_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), standby_server).await;
    let config = crate::Config {
        roster: engine.roster().to_file(),
        engine: Box::new(engine),
        journal: Box::new(journal),
        limits,
        site,
    };
    let served = crate::run(config, tokio::net::TcpListener::from_std(listener)?, stop).await;
    // A clean stop hands the region over at once rather than after the lease: the key is
    // deleted only if this node's last renewal is still its latest revision (a node that lost
    // the region must not delete its successor's lease).
    active_stop.cancel();
    let _ = renewer.await;
    let _ = forwarder.await;
    let rev = revision.load(std::sync::atomic::Ordering::SeqCst);
    if let Err(e) = leases.delete_expect_revision(&key, Some(rev)).await {
        tracing::warn!(error = %e, "could not release the region's lease; a standby takes over when it expires");
    }
    served
}

/// The standby's loop: applies the stream as it grows, reads the lease every 250 ms (telling
/// the standby's router who is active), and bids for it once caught up when no node holds it.
/// The lease's revision once this node holds it; `None` when stopped first.
#[allow(clippy::too_many_arguments)]
async fn follow_until_lease<F: std::future::Future>(
    stream: &jetstream::stream::Stream,
    leases: &kv::Store,
    key: &str,
    lease_value: &str,
    region: RegionId,
    follower: &mut log::Follower,
    messages: &mut jetstream::consumer::pull::Ordered,
    active: &Mutex<Option<forward::Holder>>,
    mut stop: std::pin::Pin<&mut F>,
) -> anyhow::Result<Option<u64>> {
    // How often a standby reads the lease and the stream's end: a takeover begins at most this
    // long after the lease expired.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut caught_up = false;
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(None),
            m = messages.next() => {
                let m = match m {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => { tracing::warn!(error = %e, "reading the region's stream"); continue; }
                    None => bail!("the region's stream ended"),
                };
                apply(region, follower, &m)?;
            }
            _ = tick.tick() => {
                let found = match leases.entry(key).await {
                    Ok(e) => parse_lease(e),
                    Err(e) => { tracing::warn!(error = %e, "reading the region's lease"); continue; }
                };
                let holder = found.as_ref().map(|h| h.node.clone());
                *active.lock().unwrap_or_else(|p| p.into_inner()) = found;
                let mut info_stream = stream.clone();
                let stream_last = match info_stream.info().await {
                    Ok(info) => info.state.last_sequence,
                    // Not knowing the stream's end, this node cannot say it has caught up.
                    Err(e) => { tracing::warn!(error = %e, "reading the region's stream"); continue; }
                };
                // Catching up until the first time it reaches the stream's end; a standby after
                // that (its lag, a message or two under load, is the lag gauge).
                caught_up |= follower.applied >= stream_last;
                let role = if caught_up { "standby" } else { "catching_up" };
                crate::metrics::cluster_lag(region, stream_last.saturating_sub(follower.applied));
                set_status(region, role, follower.applied, holder.clone());
                // Only a node that has read to the stream's end once bids: one still replaying a
                // long history would hold the region while unable to serve it.
                if holder.is_none() && caught_up {
                    match leases.create(key, lease_value.to_string().into()).await {
                        Ok(rev) => return Ok(Some(rev)),
                        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                            tracing::info!("the region's lease was taken by another node")
                        }
                        Err(e) => tracing::warn!(error = %e, "bidding for the region's lease"),
                    }
                }
            }
        }
    }
}

/// Reads the region's stream to its end, appends a fence there (reading further and trying
/// again while the old engine still appends), and returns the fence's sequence and the engine
/// with every record before it applied. Bounded by `wait`; stream errors are retried within it.
#[allow(clippy::too_many_arguments)]
async fn take_over(
    js: &jetstream::Context,
    stream: &jetstream::stream::Stream,
    region: RegionId,
    node: &str,
    mut follower: log::Follower,
    mut messages: jetstream::consumer::pull::Ordered,
    lease: Duration,
    wait: Duration,
) -> anyhow::Result<(u64, Engine)> {
    let deadline = Instant::now() + wait;
    let fence_seq = loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the region's stream kept moving (or kept failing) for {wait:?}"
        );
        let mut info_stream = stream.clone();
        let last = match info_stream.info().await {
            Ok(info) => info.state.last_sequence,
            Err(e) => {
                tracing::warn!(error = %e, "reading the region's stream while taking over");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while follower.applied < last {
            let m = tokio::time::timeout_at(deadline.into(), messages.next())
                .await
                .context("catching up with the region's stream took too long")?;
            match m {
                Some(Ok(m)) => apply(region, &mut follower, &m)?,
                Some(Err(e)) => tracing::warn!(error = %e, "reading the region's stream"),
                None => bail!("the region's stream ended"),
            }
        }
        match log::append(js, region, node, "fence", &[], follower.applied, lease).await {
            // Our own fence: nothing to apply (an unfinished group before it is dropped in
            // `finish`, as a follower drops it at a fence).
            Ok(Some(seq)) => break seq,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "appending the fence; retrying");
                continue;
            }
        }
    };
    drop(messages);
    Ok((fence_seq, follower.finish()?))
}

/// The lease's value `"<node> <host:port>"`; `None` for no entry or a delete marker (a node
/// that stopped cleanly released the region).
fn parse_lease(entry: Option<kv::Entry>) -> Option<forward::Holder> {
    let entry = entry.filter(|e| e.operation == kv::Operation::Put)?;
    let value = String::from_utf8_lossy(&entry.value).into_owned();
    let (node, addr) = value.split_once(' ').unwrap_or((value.as_str(), ""));
    Some(forward::Holder {
        node: node.to_string(),
        addr: addr.to_string(),
    })
}

/// A stream or lease bucket found already made must be made as this node would make it: the
/// replicas are the durability claim, and the bucket's `max_age` is the lease.
async fn check_found(
    stream: &jetstream::stream::Stream,
    leases: &kv::Store,
    replicas: usize,
    lease: Duration,
) -> anyhow::Result<()> {
    let mut s = stream.clone();
    let found = s
        .info()
        .await
        .context("reading the region's stream")?
        .config
        .num_replicas;
    if found != replicas {
        bail!(
            "the region's stream keeps {found} copies but --nats-replicas is {replicas}: \
             change the stream (nats stream edit) or the flag, on every node"
        );
    }
    let status = leases.status().await.context("reading the lease bucket")?;
    if status.max_age() != lease {
        bail!(
            "the lease bucket's lease is {:?} but --lease-ms is {}: every node must use the \
             same lease (it is fixed by the first node)",
            status.max_age(),
            lease.as_millis()
        );
    }
    Ok(())
}

/// Local term directories kept: this one and the one before (the stream is the truth; these
/// are a cache, and the previous one is kept for a look after a takeover).
const TERMS_KEPT: usize = 2;

/// Removes all but the newest `keep` term directories of `region` in `data_dir`.
fn prune_terms(data_dir: &std::path::Path, region: RegionId, keep: usize) {
    let prefix = format!("region-{}-seq-", region.0);
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    let mut terms: Vec<_> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    // Zero-padded sequences: the name order is the term order.
    terms.sort();
    let old = terms.len().saturating_sub(keep);
    for dir in &terms[..old] {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => tracing::info!(dir = %dir.display(), "removed an old term's local journal"),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove an old term's local journal")
            }
        }
    }
}

fn apply(
    region: RegionId,
    follower: &mut log::Follower,
    m: &jetstream::Message,
) -> anyhow::Result<()> {
    let info = m
        .info()
        .map_err(|e| anyhow::anyhow!("a stream message without its sequence: {e}"))?;
    let seq = info.stream_sequence;
    let headers = m.headers.as_ref();
    let kind = headers.and_then(|h| h.get(log::KIND)).map(|v| v.as_str());
    let more = headers.and_then(|h| h.get(log::MORE)).is_some();
    follower.apply(seq, kind, more, &m.payload)?;
    crate::metrics::cluster_applied(region, follower.applied);
    Ok(())
}

/// Renews the lease every quarter of its length with the revision this node wrote last
/// (shared with the caller, who deletes the key with it at a clean stop). Lost (another node
/// wrote the key) or not renewed for a whole lease: step down.
async fn renew_lease(
    leases: kv::Store,
    key: String,
    value: String,
    revision: Arc<std::sync::atomic::AtomicU64>,
    lease: Duration,
    region: RegionId,
    stop: CancellationToken,
) {
    use std::sync::atomic::Ordering::SeqCst;
    let mut last_ok = Instant::now();
    let mut tick = tokio::time::interval(lease / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mine = revision.load(SeqCst);
        match leases.update(&key, value.clone().into(), mine).await {
            Ok(rev) => {
                revision.store(rev, SeqCst);
                last_ok = Instant::now();
                crate::metrics::cluster_lease_renewed(region, true);
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                // Our previous renewal may have been stored with its answer lost: then the
                // key holds our own value at a newer revision, and the lease is still ours.
                match leases.entry(&key).await {
                    Ok(Some(entry))
                        if entry.operation == kv::Operation::Put
                            && entry.value.as_ref() == value.as_bytes()
                            && entry.revision > mine =>
                    {
                        revision.store(entry.revision, SeqCst);
                    }
                    _ => step_down(region, "another node holds the region's lease"),
                }
            }
            Err(e) => {
                crate::metrics::cluster_lease_renewed(region, false);
                tracing::warn!(error = %e, "renewing the region's lease");
                if last_ok.elapsed() >= lease {
                    step_down(
                        region,
                        "the lease could not be renewed for a whole lease period",
                    )
                }
            }
        }
    }
}

/// What a standby answers: `/healthz` (503, role `standby`) and `/metrics` itself; WebSocket
/// sessions are proxied and every other request forwarded to the active engine
/// (`forward.rs`), with 503 + `Retry-After` (or an `unavailable` frame) when there is none.
fn standby_router(standby: forward::Standby) -> Router {
    Router::new()
        .route("/healthz", get(standby_healthz))
        .route("/metrics", get(standby_metrics))
        .route("/v1/ws", get(forward::websocket))
        .fallback(forward::forward)
        .with_state(standby)
}

async fn standby_healthz() -> Response {
    let body = serde_json::json!({
        "status": "standby",
        "engine": "standby",
        "cluster": status(),
    });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        axum::Json(body),
    )
        .into_response()
}

async fn standby_metrics() -> Response {
    match crate::metrics::prometheus() {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            h.render(),
        )
            .into_response(),
        None => crate::http::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "metrics recorder not installed",
        ),
    }
}
