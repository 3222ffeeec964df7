//! The single owner of the `Engine`: requests in over a bounded channel, coalesced location
//! pings, timers from `poll_timeout`, the journal, and released events out to the [`Fanout`].
//!
//! Output commit: after each accepted command (and each `handle_timeout` that produced events)
//! the task appends a journal record and parks the reply and the events it caused until the
//! journal reports `durable.lsn >= lsn`; only then do they reach sockets. Refusals queue behind
//! them too, so nothing a client sees depends on state that is not yet on disk. Reads
//! (snapshots for consoles, incident timelines, time banks) are served only when nothing is
//! waiting for durability, for the same reason.

use crate::auth::RosterViews;
use crate::fanout::{Delivery, Fanout, Meta, SubscribeReq};
use crate::journal;
use crate::journal::Journal;
use crate::metrics as m;
use anyhow::Context;
use dispatch_core::command::{Command, Reply};
use dispatch_core::engine::{Engine, EngineState};
use dispatch_core::error::CommandError;
use dispatch_core::event::{Event, EventRecord};
use dispatch_core::geo::LatLon;
use dispatch_core::ids::{DeviceId, ElderId, GridId, IncidentId, OperatorId, ResponderId};
use dispatch_core::roster::{GridTable, RightsTable, TokenTable};
use dispatch_core::sans_io::SansIo;
use dispatch_core::time::Timestamp;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

/// What the engine task needs of the engine: the sans-IO calls of DESIGN §2.1 ([`SansIo`])
/// plus the read side, as JSON (the views are serde types; the wire sends them as they are).
pub trait EngineCore: SansIo + Send + 'static {
    fn last_seq(&self) -> u64;
    /// Open incidents and responders, for a console's `snapshot`.
    fn snapshot_json(&self) -> Value;
    /// One incident with its full timeline and reasons.
    fn incident_json(&self, id: IncidentId) -> Option<Value>;
    fn time_bank_json(&self, id: &ResponderId) -> Option<Value>;
    /// The care plans' compliance report as things stood at `at`.
    fn care_compliance_json(&self, _at: Timestamp) -> Value {
        Value::Null
    }
    /// Who an operator may assign to an open incident, best ETA first.
    fn candidates_json(&self, id: IncidentId, limit: usize) -> Option<Value>;
    /// What delivering an event needs beyond the event, read now (see [`Delivery`]).
    fn delivery(&self, event: &Event) -> Delivery;
    /// What a console filter sees of an incident.
    fn incident_meta(&self, id: IncidentId) -> Option<Meta>;
    /// The roster's token index (shared; a new one after each change).
    fn token_table(&self) -> TokenTable;
    /// The roster's grids (shared; a new table after each change of a grid).
    fn grid_table(&self) -> GridTable;
    /// The roster's operator rights (shared; a new table after each change of an operator).
    fn rights_table(&self) -> RightsTable;
    /// A roster entry as the roster file holds it (`None`: no such entry).
    fn roster_entry(&self, entry: &RosterRef) -> Option<Value>;
    /// The whole roster as a file (digests included), for an import's differences.
    fn roster_file(&self) -> dispatch_core::roster::RosterFile;
    /// Everything but the road network, for journal snapshots.
    fn save_state(&self) -> EngineState;
    /// The open offer or assignment a reconnecting phone must be told again.
    fn open_job_events(&self, id: &ResponderId) -> Vec<EventRecord>;
    /// What a reconnecting kin's phone must be told again of their elders' open incidents.
    fn kin_news_events(&self, id: &ResponderId) -> Vec<EventRecord>;
    /// What live coverage needs now: the responders an emergency could be offered to, and
    /// the elders if their version is not `known_elders` (`None`: no road network, no
    /// coverage).
    fn coverage_input(
        &self,
        _now: Timestamp,
        _known_elders: u64,
    ) -> Option<crate::coverage::CoverageInput> {
        None
    }
    /// Whether the state believes some phone session is live (reset at start).
    fn has_live_sessions(&self) -> bool {
        false
    }
    /// The road closures laid, with the lines they cover.
    fn road_closures(&self) -> Vec<dispatch_core::closures::ClosureView> {
        Vec::new()
    }
}

impl EngineCore for Engine {
    fn road_closures(&self) -> Vec<dispatch_core::closures::ClosureView> {
        Engine::road_closures(self)
    }
    fn last_seq(&self) -> u64 {
        Engine::last_seq(self)
    }
    fn snapshot_json(&self) -> Value {
        serde_json::to_value(self.snapshot_view()).unwrap_or(Value::Null)
    }
    fn incident_json(&self, id: IncidentId) -> Option<Value> {
        self.incident(id).and_then(|v| serde_json::to_value(v).ok())
    }
    fn time_bank_json(&self, id: &ResponderId) -> Option<Value> {
        self.time_bank(id)
            .and_then(|v| serde_json::to_value(v).ok())
    }
    fn care_compliance_json(&self, at: Timestamp) -> Value {
        serde_json::to_value(self.care_compliance(at)).unwrap_or(Value::Null)
    }
    fn candidates_json(&self, id: IncidentId, limit: usize) -> Option<Value> {
        self.candidates(id, limit)
            .and_then(|v| serde_json::to_value(v).ok())
    }
    fn delivery(&self, event: &Event) -> Delivery {
        Delivery::of(self, event)
    }
    fn has_live_sessions(&self) -> bool {
        Engine::has_live_sessions(self)
    }
    fn coverage_input(
        &self,
        now: Timestamp,
        known_elders: u64,
    ) -> Option<crate::coverage::CoverageInput> {
        let version = self.elders_version();
        Some(crate::coverage::CoverageInput {
            net: self.road_network()?,
            foot_kmh: self.foot_kmh(),
            now,
            sources: self.coverage_sources(now),
            elders: (version != known_elders).then(|| (version, self.coverage_elders())),
            overlay: self.road_overlay(),
        })
    }
    fn incident_meta(&self, id: IncidentId) -> Option<Meta> {
        Delivery::incident_meta(self, id)
    }
    fn token_table(&self) -> TokenTable {
        self.roster().token_table()
    }
    fn grid_table(&self) -> GridTable {
        self.roster().grid_table()
    }
    fn rights_table(&self) -> RightsTable {
        self.roster().rights_table()
    }
    fn roster_entry(&self, entry: &RosterRef) -> Option<Value> {
        let roster = self.roster();
        match entry {
            RosterRef::Responder(id) => serde_json::to_value(roster.responder(id)?).ok(),
            RosterRef::Elder(id) => serde_json::to_value(roster.elder(id)?).ok(),
            RosterRef::Grid(id) => serde_json::to_value(roster.grid(id)?).ok(),
            RosterRef::Operator(id) => serde_json::to_value(roster.operator(id)?).ok(),
            RosterRef::Device(id) => serde_json::to_value(roster.device(id)?).ok(),
        }
    }
    fn roster_file(&self) -> dispatch_core::roster::RosterFile {
        self.roster().to_file()
    }
    fn save_state(&self) -> EngineState {
        Engine::save_state(self)
    }
    fn kin_news_events(&self, id: &ResponderId) -> Vec<EventRecord> {
        Engine::kin_news_events(self, id)
    }
    fn open_job_events(&self, id: &ResponderId) -> Vec<EventRecord> {
        Engine::open_job_events(self, id)
    }
}

pub use crate::journal::{Durability, Lsn};

/// The seam to the journal: one call per engine step that must be replayable. Each returns
/// the LSN whose durability releases the step's reply and events (the step's record and the
/// audit record of the events it caused).
pub trait JournalSink: Send + 'static {
    /// An accepted command (at the `now` it was given) and the events it caused.
    fn command(
        &mut self,
        now: Timestamp,
        command: &Command,
        events: &[EventRecord],
    ) -> anyhow::Result<Lsn>;
    /// A `handle_timeout(now)` call and the events it caused.
    fn timeout(&mut self, now: Timestamp, events: &[EventRecord]) -> anyhow::Result<Lsn>;
    /// Watches the durable LSN (and failure).
    fn durable(&self) -> watch::Receiver<Durability>;
    /// Whether enough was appended since the last snapshot to take another.
    fn snapshot_due(&self) -> bool;
    /// Takes a snapshot of the state after everything appended so far (encoded and written
    /// off the engine's thread).
    fn snapshot(&mut self, state: EngineState) -> anyhow::Result<()>;
    /// Flushes and stops; called once, after the last record is durable.
    fn close(self: Box<Self>) -> anyhow::Result<()>;
}

impl JournalSink for Journal {
    fn command(
        &mut self,
        now: Timestamp,
        command: &Command,
        events: &[EventRecord],
    ) -> anyhow::Result<Lsn> {
        Ok(journal::journal_command(self, now, command, events)?)
    }

    fn timeout(&mut self, now: Timestamp, events: &[EventRecord]) -> anyhow::Result<Lsn> {
        Ok(journal::journal_timeout(self, now, events)?)
    }

    fn durable(&self) -> watch::Receiver<Durability> {
        Journal::durable(self)
    }

    fn snapshot_due(&self) -> bool {
        Journal::snapshot_due(self)
    }

    fn snapshot(&mut self, state: EngineState) -> anyhow::Result<()> {
        Journal::snapshot(self, state)?;
        Ok(())
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        let d = Journal::close(*self)?;
        match d.failed {
            Some(why) => anyhow::bail!("journal failed: {why}"),
            None => Ok(()),
        }
    }
}

/// A journal that keeps nothing and calls every record durable at once: for tests and for
/// measuring what the disk costs. `dispatch serve` always uses the real journal.
#[derive(Debug)]
pub struct VolatileJournal {
    lsn: Lsn,
    tx: watch::Sender<Durability>,
}

impl Default for VolatileJournal {
    fn default() -> Self {
        VolatileJournal {
            lsn: 0,
            tx: watch::Sender::new(Durability::default()),
        }
    }
}

impl VolatileJournal {
    fn step(&mut self) -> Lsn {
        self.lsn += 1;
        let lsn = self.lsn;
        self.tx.send_modify(|d| d.lsn = lsn);
        lsn
    }
}

impl JournalSink for VolatileJournal {
    fn command(
        &mut self,
        _now: Timestamp,
        _command: &Command,
        _events: &[EventRecord],
    ) -> anyhow::Result<Lsn> {
        Ok(self.step())
    }

    fn timeout(&mut self, _now: Timestamp, _events: &[EventRecord]) -> anyhow::Result<Lsn> {
        Ok(self.step())
    }

    fn durable(&self) -> watch::Receiver<Durability> {
        self.tx.subscribe()
    }

    fn snapshot_due(&self) -> bool {
        false
    }

    fn snapshot(&mut self, _state: EngineState) -> anyhow::Result<()> {
        Ok(())
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Why a request got no engine answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Engine(#[from] CommandError),
    /// The command queue stayed full for the whole wait: try again.
    #[error("the server is busy; try again")]
    Busy,
    /// Shutting down, or the journal failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// What the request expected of the roster did not hold (see [`Expect`]).
    #[error("{0}")]
    Conflict(String),
}

/// A roster entry, as people management names it.
#[derive(Debug, Clone, PartialEq)]
pub enum RosterRef {
    Responder(ResponderId),
    Elder(ElderId),
    Grid(GridId),
    Operator(OperatorId),
    Device(DeviceId),
}

impl std::fmt::Display for RosterRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RosterRef::Responder(id) => write!(f, "responder {id}"),
            RosterRef::Elder(id) => write!(f, "elder {id}"),
            RosterRef::Grid(id) => write!(f, "grid {id}"),
            RosterRef::Operator(id) => write!(f, "operator {id}"),
            RosterRef::Device(id) => write!(f, "device {id}"),
        }
    }
}

/// What must hold of the roster when a command's turn comes.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Nothing,
    /// The entry does not exist (a create).
    Absent(RosterRef),
    /// The entry is exactly as it was read (a read-modify-write).
    Unchanged(RosterRef, Value),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Engine(e) => e.code(),
            Refusal::Busy => "busy",
            Refusal::Unavailable(_) => "unavailable",
            Refusal::Conflict(_) => "conflict",
        }
    }
}

type Outcome = Result<Reply, Refusal>;

/// What sessions and HTTP handlers ask of the engine task.
#[derive(Debug)]
pub enum Request {
    Command {
        cmd: Command,
        /// Checked against the engine right before the command runs (people management's
        /// create and read-modify-write, without a race between the check and the change).
        expect: Expect,
        reply: oneshot::Sender<Outcome>,
        /// When the session or HTTP handler handed it over (for `alert_to_offer`).
        sent_at: Instant,
    },
    RosterEntry {
        entry: RosterRef,
        reply: oneshot::Sender<Option<Value>>,
    },
    RosterFile {
        reply: oneshot::Sender<dispatch_core::roster::RosterFile>,
    },
    Subscribe(SubscribeReq),
    Incident {
        id: IncidentId,
        reply: oneshot::Sender<Option<Value>>,
    },
    /// The care plans' compliance report (`None`: as of now).
    CareCompliance {
        at: Option<Timestamp>,
        reply: oneshot::Sender<Value>,
    },
    TimeBank {
        id: ResponderId,
        reply: oneshot::Sender<Option<Value>>,
    },
    /// The road closures laid (holding or waiting for their window).
    Closures {
        reply: oneshot::Sender<Vec<dispatch_core::closures::ClosureView>>,
    },
    Candidates {
        id: IncidentId,
        limit: usize,
        reply: oneshot::Sender<Option<Value>>,
    },
    /// What live coverage needs (see [`EngineCore::coverage_input`]).
    Coverage {
        known_elders: u64,
        reply: oneshot::Sender<Option<crate::coverage::CoverageInput>>,
    },
    /// A responder's phone (re)connected: send it its open offer or assignment again.
    ResponderJoined {
        id: ResponderId,
        session_no: u64,
    },
}

/// Location pings applied in one turn of the engine task (about a millisecond of work).
const PING_TURN: usize = 512;

/// Requests taken from the queue in one turn before timers (and batched dispatch) run.
const BURST: usize = 256;

/// Location pings waiting for the engine: newest wins per responder, so the map's size is
/// bounded by the number of responders and a burst of pings costs one engine call each.
#[derive(Debug, Default)]
pub struct Locations {
    pending: Mutex<HashMap<ResponderId, LatLon>>,
    notify: Notify,
}

impl Locations {
    pub fn push(&self, responder: ResponderId, position: LatLon) {
        let len = {
            let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            map.insert(responder, position);
            map.len()
        };
        if len == 1 {
            self.notify.notify_one();
        }
    }

    fn take(&self) -> HashMap<ResponderId, LatLon> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn len(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The sessions' and handlers' side of the engine task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Request>,
    locations: Arc<Locations>,
    durable: watch::Receiver<Durability>,
    /// Why the engine task stopped accepting commands (a journal failure), if it did.
    failure: watch::Receiver<Option<String>>,
    /// How long a sender waits for room in the command queue before it is told `busy`.
    send_wait: Duration,
}

impl EngineHandle {
    /// Runs a command; the answer comes once it (and everything before it) is durable.
    pub async fn command(&self, cmd: Command) -> Outcome {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Command {
            cmd,
            expect: Expect::Nothing,
            reply,
            sent_at: Instant::now(),
        })
        .await?;
        rx.await
            .map_err(|_| Refusal::Unavailable("the engine stopped".into()))?
    }

    /// Runs a command if `expect` holds when its turn comes (else `Refusal::Conflict`).
    pub async fn command_if(&self, expect: Expect, cmd: Command) -> Outcome {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Command {
            cmd,
            expect,
            reply,
            sent_at: Instant::now(),
        })
        .await?;
        rx.await
            .map_err(|_| Refusal::Unavailable("the engine stopped".into()))?
    }

    /// A roster entry as the roster file holds it (digests included: callers strip them).
    pub async fn roster_entry(&self, entry: RosterRef) -> Result<Option<Value>, Refusal> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::RosterEntry { entry, reply }).await?;
        rx.await
            .map_err(|_| Refusal::Unavailable("the engine stopped".into()))
    }

    /// The whole roster as it is now (digests included: callers never show them).
    pub async fn roster_file(&self) -> Result<dispatch_core::roster::RosterFile, Refusal> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::RosterFile { reply }).await?;
        rx.await
            .map_err(|_| Refusal::Unavailable("the engine stopped".into()))
    }

    /// Queues a location ping (coalesced: newest wins). Never waits.
    pub fn location(&self, responder: ResponderId, position: LatLon) {
        self.locations.push(responder, position);
    }

    pub async fn subscribe(&self, req: SubscribeReq) -> Result<(), Refusal> {
        self.send(Request::Subscribe(req)).await
    }

    pub async fn incident(&self, id: IncidentId) -> Result<Option<Value>, Refusal> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Incident { id, reply }).await?;
        rx.await
            .map_err(|_| Refusal::Unavailable("the engine stopped".into()))
    }

    /// Tells the engine task a responder's phone connected (after it is in the registry), so
    /// that an open offer or assignment is sent to it again: read at once, sent once
    /// everything decided before it is durable (`Pending::resend`).
    pub async fn responder_joined(&self, id: ResponderId, session_no: u64) -> Result<(), Refusal> {
        self.send(Request::ResponderJoined { id, session_no }).await
    }

    /// Who an operator may assign to an open incident now (`None`: no such open incident).
    pub async fn candidates(&self, id: IncidentId, limit: usize) -> Result<Option<Value>, Refusal> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Candidates { id, limit, reply }).await?;
        rx.await
            .map_err(|_| Refusal::Unavailable("the engine stopped".into()))
    }

    /// What live coverage needs now (`None`: this engine has no road network).
    pub async fn coverage_input(
        &self,
        known_elders: u64,
    ) -> Result<Option<crate::coverage::CoverageInput>, Refusal> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Coverage {
            known_elders,
            reply,
        })
        .await?;
        rx.await
            .map_err(|_| Refusal::Unavailable("the engine stopped".into()))
    }

    /// The care plans' compliance report as things stood at `at` (`None`: now).
    pub async fn care_compliance(&self, at: Option<Timestamp>) -> Result<Value, Refusal> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::CareCompliance { at, reply }).await?;
        rx.await
            .map_err(|_| Refusal::Unavailable("the engine stopped".into()))
    }

    pub async fn time_bank(&self, id: ResponderId) -> Result<Option<Value>, Refusal> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::TimeBank { id, reply }).await?;
        rx.await
            .map_err(|_| Refusal::Unavailable("the engine stopped".into()))
    }

    /// The road closures laid, with the lines they cover.
    pub async fn road_closures(
        &self,
    ) -> Result<Vec<dispatch_core::closures::ClosureView>, Refusal> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Closures { reply }).await?;
        rx.await
            .map_err(|_| Refusal::Unavailable("the engine stopped".into()))
    }

    /// The journal's state, for `/healthz`; `failed` also covers an append the engine task
    /// saw fail.
    pub fn durability(&self) -> Durability {
        let mut d = self.durable.borrow().clone();
        if d.failed.is_none() {
            d.failed = self.failure.borrow().clone();
        }
        d
    }

    /// Whether the engine task is still taking requests.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    async fn send(&self, req: Request) -> Result<(), Refusal> {
        match tokio::time::timeout(self.send_wait, self.tx.send(req)).await {
            Err(_) => Err(Refusal::Busy),
            Ok(Err(_)) => Err(Refusal::Unavailable("shutting down".into())),
            Ok(Ok(())) => Ok(()),
        }
    }
}

/// Bounds of the engine task's queues.
#[derive(Debug, Clone, Copy)]
pub struct EngineLimits {
    /// Requests waiting for the engine.
    pub command_queue: usize,
    /// Accepted commands (and phones' resends) waiting for durability before the task stops
    /// taking more.
    pub max_uncommitted: usize,
    pub send_wait: Duration,
}

/// A reply and the events of one engine step, waiting for `lsn` to be durable.
struct Pending {
    lsn: u64,
    reply: Option<(oneshot::Sender<Outcome>, Outcome)>,
    /// The accepted command's metric label (`accept`, `decline`, …), counted at release.
    counted: Option<&'static str>,
    events: Vec<EventRecord>,
    /// One per event, read from the engine when the step was decided.
    deliveries: Vec<Delivery>,
    /// When the step was decided (its journal record appended): `release_wait` is from here.
    decided: Instant,
    /// A reconnected phone's open jobs, read when it joined and sent to it once everything
    /// decided before is durable (`ResponderJoined`).
    resend: Option<Resend>,
}

struct Resend {
    id: ResponderId,
    session_no: u64,
    jobs: Vec<(EventRecord, Delivery)>,
}

/// The task's state.
pub struct EngineTask {
    engine: Box<dyn EngineCore>,
    journal: Box<dyn JournalSink>,
    durable: watch::Receiver<Durability>,
    fanout: Fanout,
    roster_views: RosterViews,
    uncommitted: VecDeque<Pending>,
    /// Reads waiting for `uncommitted` to empty.
    deferred: VecDeque<Request>,
    last_lsn: u64,
    /// The last `now` given to the engine: wall-clock steps back are clamped, time never
    /// runs backwards inside the engine.
    last_now: Timestamp,
    failed: Option<String>,
    failure: watch::Sender<Option<String>>,
    limits: EngineLimits,
    locations: Arc<Locations>,
    /// Pings taken from `locations` and not yet applied (a responder may also have a newer
    /// one back in `locations`: it is applied later, so the newest still wins).
    pings: VecDeque<(ResponderId, LatLon)>,
    /// New incidents whose first offer is not released yet, with when their alert was
    /// handed to the engine task (`AwaitingOffer`: bounded).
    awaiting_offer: AwaitingOffer,
}

/// Alerts waiting for their incident's first offer, for `dispatch_alert_to_offer_seconds`
/// (the incidents dispatched as soon as they came in: not those that had to wait for somebody
/// to become available).
/// Bounded: past `AwaitingOffer::MAX` entries, those older than a minute are dropped (an
/// incident nobody could be offered, or one an ambulance took alone, never stops a clock).
#[derive(Default)]
struct AwaitingOffer(HashMap<IncidentId, Instant>);

impl AwaitingOffer {
    const MAX: usize = 10_000;

    fn insert(&mut self, id: IncidentId, at: Instant) {
        if self.0.len() >= Self::MAX {
            self.0.retain(|_, t| t.elapsed() < Duration::from_secs(60));
        }
        if self.0.len() < Self::MAX {
            self.0.insert(id, at);
        }
    }

    /// The alert's hand-over instant, if `event` is the first offer of its incident. An
    /// incident that found nobody to ask (`no_responder_available`) stops its clock unrecorded:
    /// its wait is for a person, not for the server.
    fn first_offer(&mut self, event: &Event) -> Option<Instant> {
        match event {
            Event::OfferSent { incident_id, .. } => self.0.remove(incident_id),
            Event::NoResponderAvailable { incident_id, .. } => {
                self.0.remove(incident_id);
                None
            }
            _ => None,
        }
    }
}

/// Starts the engine task on its own thread; returns its handle and a receiver of its result
/// (closed without a value if it panicked).
pub fn spawn(
    engine: Box<dyn EngineCore>,
    journal: Box<dyn JournalSink>,
    fanout: Fanout,
    roster_views: RosterViews,
    limits: EngineLimits,
    shutdown: CancellationToken,
) -> anyhow::Result<(EngineHandle, oneshot::Receiver<anyhow::Result<()>>)> {
    let (tx, rx) = mpsc::channel(limits.command_queue.max(1));
    let locations = Arc::new(Locations::default());
    let durable = journal.durable();
    let failure = watch::Sender::new(None);
    let handle = EngineHandle {
        tx,
        locations: locations.clone(),
        durable: durable.clone(),
        failure: failure.subscribe(),
        send_wait: limits.send_wait,
    };
    let mut task = EngineTask {
        engine,
        journal,
        durable,
        fanout,
        roster_views,
        uncommitted: VecDeque::new(),
        deferred: VecDeque::new(),
        last_lsn: 0,
        last_now: Timestamp(0),
        failed: None,
        failure,
        limits,
        locations,
        pings: VecDeque::new(),
        awaiting_offer: AwaitingOffer::default(),
    };
    // A restart: the sessions the state remembers are gone (each phone reconnects).
    if task.engine.has_live_sessions() {
        task.apply(Command::SessionsReset, None);
    }
    // The one writer gets an OS thread of its own (with a single-threaded runtime for its
    // timers and channels): as a task among thousands of session tasks it would get a
    // thousandth of the CPU, and every session waits on it.
    let (done_tx, done) = oneshot::channel();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the engine thread's runtime")?;
    std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || {
            let result = rt.block_on(task.run(rx, shutdown));
            let _ = done_tx.send(result);
        })
        .context("starting the engine thread")?;
    Ok((handle, done))
}

fn wall_clock() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Timestamp(ms)
}

/// Metric label of a command: the client message that carries it (`availability` for
/// `set_availability`), and `roster` for every run-time roster change.
fn command_label(cmd: &Command) -> &'static str {
    match cmd {
        Command::SetAvailability { .. } => "availability",
        Command::UpsertGrid { .. }
        | Command::UpsertResponder { .. }
        | Command::RetireResponder { .. }
        | Command::UpsertElder { .. }
        | Command::RetireElder { .. }
        | Command::RetireGrid { .. }
        | Command::UpsertOperator { .. }
        | Command::RetireOperator { .. }
        | Command::UpsertDevice { .. }
        | Command::RetireDevice { .. } => "roster",
        other => other.into(),
    }
}

impl EngineTask {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Request>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut stopping = false;
        loop {
            self.release();
            if self.uncommitted.is_empty() {
                while let Some(req) = self.deferred.pop_front() {
                    self.read(req);
                }
            }
            m::queue_depth("commands", rx.len());
            m::queue_depth("locations", self.locations.len() + self.pings.len());
            m::queue_depth("uncommitted", self.uncommitted.len());

            let wake = self.engine.poll_timeout();
            let sleep_for = wake.map(|t| Duration::from_millis(t.ms_since(wall_clock())));
            let can_take =
                self.deferred.is_empty() && self.uncommitted.len() < self.limits.max_uncommitted;
            let waiting = !self.uncommitted.is_empty();
            // Not biased: with location pings always pending, a biased order starved the
            // command queue (alerts waited behind seconds of pings).
            tokio::select! {
                _ = shutdown.cancelled(), if !stopping => {
                    // Stop taking new requests; those already queued are still served.
                    stopping = true;
                    rx.close();
                }
                changed = self.durable.changed(), if waiting => {
                    if changed.is_err() {
                        self.fail("the journal stopped".into());
                    }
                }
                _ = tokio::time::sleep(sleep_for.unwrap_or_default()), if sleep_for.is_some() => {
                    self.timeout();
                }
                _ = self.locations.notify.notified(), if can_take && self.pings.is_empty() => {
                    self.pings.extend(self.locations.take());
                    self.apply_pings();
                }
                _ = std::future::ready(()), if can_take && !self.pings.is_empty() => {
                    self.apply_pings();
                }
                req = rx.recv(), if can_take => match req {
                    Some(req) => {
                        self.request(req);
                        // Take what else is queued (bounded) before the timer turn: with
                        // batched dispatch, a burst of alerts then shares one dispatch
                        // round (one joint assignment) in the timeout that follows.
                        for _ in 1..BURST {
                            if !self.deferred.is_empty()
                                || self.uncommitted.len() >= self.limits.max_uncommitted
                            {
                                break;
                            }
                            match rx.try_recv() {
                                Ok(req) => self.request(req),
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
            }
        }
        // Drain: pings already taken, then wait until everything appended is durable.
        self.pings.extend(self.locations.take());
        while !self.pings.is_empty() {
            self.apply_pings();
        }
        while !self.uncommitted.is_empty() && self.failed.is_none() {
            self.release();
            if self.uncommitted.is_empty() {
                break;
            }
            if self.durable.changed().await.is_err() {
                self.fail("the journal stopped".into());
            }
        }
        self.release();
        for req in self.deferred.drain(..) {
            drop(req); // their senders learn the engine stopped
        }
        // A clean stop leaves a snapshot of the final state: the next start (an upgrade,
        // typically) then replays no journal tail (docs/durability.md, "Upgrades").
        if self.failed.is_none() {
            if let Err(e) = self.journal.snapshot(self.engine.save_state()) {
                tracing::warn!(error = %format!("{e:#}"), "snapshot at stop failed");
            }
        }
        tracing::info!(last_seq = self.engine.last_seq(), "engine task stopped");
        self.journal.close()
    }

    fn now(&mut self) -> Timestamp {
        self.last_now = self.last_now.max(wall_clock());
        self.last_now
    }

    /// A command runs at once, and so does a phone's join (what it reads is sent in order with
    /// the steps before it: `Pending::resend`); any other read waits until everything before
    /// it is durable, and the task takes nothing more meanwhile.
    fn request(&mut self, req: Request) {
        if matches!(
            req,
            Request::Command { .. } | Request::ResponderJoined { .. }
        ) || self.uncommitted.is_empty()
        {
            self.read(req);
        } else {
            self.deferred.push_back(req);
        }
    }

    fn read(&mut self, req: Request) {
        match req {
            Request::Command {
                cmd,
                expect,
                reply,
                sent_at,
            } => self.apply_if(expect, cmd, reply, sent_at),
            Request::RosterEntry { entry, reply } => {
                let _ = reply.send(self.engine.roster_entry(&entry));
            }
            Request::RosterFile { reply } => {
                let _ = reply.send(self.engine.roster_file());
            }
            Request::Subscribe(sub) => {
                let engine = &self.engine;
                self.fanout.subscribe(
                    sub,
                    || engine.snapshot_json(),
                    |id| engine.incident_meta(id),
                );
                m::consoles(self.fanout.console_count());
            }
            Request::Incident { id, reply } => {
                let _ = reply.send(self.engine.incident_json(id));
            }
            Request::CareCompliance { at, reply } => {
                let at = at.unwrap_or_else(|| self.now());
                let _ = reply.send(self.engine.care_compliance_json(at));
            }
            Request::TimeBank { id, reply } => {
                let _ = reply.send(self.engine.time_bank_json(&id));
            }
            Request::Closures { reply } => {
                let _ = reply.send(self.engine.road_closures());
            }
            Request::Candidates { id, limit, reply } => {
                let _ = reply.send(self.engine.candidates_json(id, limit));
            }
            Request::Coverage {
                known_elders,
                reply,
            } => {
                let now = self.now();
                let _ = reply.send(self.engine.coverage_input(now, known_elders));
            }
            Request::ResponderJoined { id, session_no } => {
                // After a journal failure nothing more is sent: the state may hold steps that
                // were never durable.
                if self.failed.is_some() {
                    return;
                }
                let mut events = self.engine.kin_news_events(&id);
                events.extend(self.engine.open_job_events(&id));
                let jobs: Vec<_> = events
                    .into_iter()
                    .map(|r| {
                        let d = self.engine.delivery(&r.event);
                        (r, d)
                    })
                    .collect();
                if self.uncommitted.is_empty() {
                    let dropped = self.fanout.resend(&id, session_no, &jobs);
                    m::lagged(0, dropped);
                } else {
                    // Read now, sent once what it read is durable: a start-up burst of
                    // phones joining does not stop the task for a journal round trip each.
                    self.uncommitted.push_back(Pending {
                        lsn: self.last_lsn,
                        reply: None,
                        counted: None,
                        events: Vec::new(),
                        deliveries: Vec::new(),
                        decided: Instant::now(),
                        resend: Some(Resend {
                            id,
                            session_no,
                            jobs,
                        }),
                    });
                }
            }
        }
    }

    /// The events of the step just taken, each with its delivery (read before the engine
    /// takes another step).
    fn drain_events(&mut self) -> (Vec<EventRecord>, Vec<Delivery>) {
        let events: Vec<EventRecord> = std::iter::from_fn(|| self.engine.poll_event()).collect();
        let deliveries = events
            .iter()
            .map(|r| self.engine.delivery(&r.event))
            .collect();
        (events, deliveries)
    }

    fn apply_if(
        &mut self,
        expect: Expect,
        cmd: Command,
        reply: oneshot::Sender<Outcome>,
        sent_at: Instant,
    ) {
        let unmet = match &expect {
            Expect::Nothing => None,
            Expect::Absent(entry) => self
                .engine
                .roster_entry(entry)
                .map(|_| format!("{entry} already exists")),
            Expect::Unchanged(entry, seen) => (self.engine.roster_entry(entry).as_ref()
                != Some(seen))
            .then(|| format!("{entry} changed while this request ran; read it again")),
        };
        match unmet {
            Some(why) => {
                let _ = reply.send(Err(Refusal::Conflict(why)));
            }
            None => self.apply(cmd, Some((reply, sent_at))),
        }
    }

    fn apply(&mut self, cmd: Command, reply: Option<(oneshot::Sender<Outcome>, Instant)>) {
        let (reply, sent_at) = match reply {
            Some((tx, at)) => (Some(tx), Some(at)),
            None => (None, None),
        };
        if let Some(why) = &self.failed {
            if let Some(tx) = reply {
                let _ = tx.send(Err(Refusal::Unavailable(why.clone())));
            }
            return;
        }
        let now = self.now();
        let label = command_label(&cmd);
        let command = cmd.clone();
        let started = Instant::now();
        let result = self.engine.handle_command(now, cmd);
        m::decision_latency(label, started.elapsed());
        let (events, deliveries) = self.drain_events();
        let (lsn, outcome, counted) = match result {
            Ok(r) => match self.journal.command(now, &command, &events) {
                Ok(lsn) => {
                    self.last_lsn = lsn;
                    self.roster_views.tokens.follow(&self.engine.token_table());
                    self.roster_views.grids.follow(&self.engine.grid_table());
                    self.roster_views.rights.follow(&self.engine.rights_table());
                    self.maybe_snapshot();
                    (lsn, Ok(r), Some(label))
                }
                Err(e) => {
                    // The engine moved on but the record is not kept: nothing more may be
                    // acknowledged. The events are withheld for good.
                    self.fail(format!("journal append failed: {e:#}"));
                    if let Some(tx) = reply {
                        let _ = tx.send(Err(Refusal::Unavailable(format!(
                            "journal append failed: {e:#}"
                        ))));
                    }
                    return;
                }
            },
            // A refusal changes nothing; it waits behind earlier records all the same.
            Err(e) => (self.last_lsn, Err(Refusal::Engine(e)), None),
        };
        // A new incident's alert: the clock of `dispatch_alert_to_offer_seconds` starts when
        // its handler handed it over, and stops when its first offer is released.
        if let (
            Ok(Reply::AlertAccepted {
                incident_id,
                duplicate: false,
                merged: false,
                problem: None,
            }),
            Some(at),
        ) = (&outcome, sent_at)
        {
            self.awaiting_offer.insert(*incident_id, at);
        }
        if reply.is_none() {
            if let Err(e) = &outcome {
                m::refused(label);
                tracing::debug!(command = label, error = %e, "refused");
            }
        }
        self.uncommitted.push_back(Pending {
            lsn,
            reply: reply.map(|tx| (tx, outcome)),
            counted,
            events,
            deliveries,
            decided: Instant::now(),
            resend: None,
        });
    }

    /// Applies up to `PING_TURN` taken pings; the rest wait for the next turn, so a command
    /// (an alert) never waits behind more than one turn of pings.
    fn apply_pings(&mut self) {
        let n = self.pings.len().min(PING_TURN);
        let turn: Vec<(ResponderId, LatLon)> = self.pings.drain(..n).collect();
        for (responder_id, position) in turn {
            self.apply(
                Command::Location {
                    responder_id,
                    position,
                },
                None,
            );
        }
    }

    fn timeout(&mut self) {
        if self.failed.is_some() {
            return;
        }
        let now = self.now();
        let started = Instant::now();
        self.engine.handle_timeout(now);
        m::decision_latency("timeout", started.elapsed());
        let (events, deliveries) = self.drain_events();
        // Every call is journaled, events or not: a timer may change state silently, and
        // replay must make the same calls.
        match self.journal.timeout(now, &events) {
            Ok(lsn) => {
                self.last_lsn = lsn;
                self.maybe_snapshot();
                self.uncommitted.push_back(Pending {
                    lsn,
                    reply: None,
                    counted: None,
                    events,
                    deliveries,
                    decided: Instant::now(),
                    resend: None,
                });
            }
            Err(e) => self.fail(format!("journal append failed: {e:#}")),
        }
    }

    fn maybe_snapshot(&mut self) {
        if self.journal.snapshot_due() {
            let state = self.engine.save_state();
            if let Err(e) = self.journal.snapshot(state) {
                // A missed snapshot costs replay time at the next start, nothing else.
                tracing::warn!(error = %format!("{e:#}"), "journal snapshot failed");
            }
        }
    }

    fn fail(&mut self, why: String) {
        if self.failed.is_none() {
            tracing::error!(error = %why, "journal failed: no further command is accepted");
            m::journal_failed();
            self.failed = Some(why.clone());
            self.failure.send_replace(Some(why.clone()));
        }
        // Whoever waits for a durability that will never come is told now.
        for p in self.uncommitted.drain(..) {
            if let Some((tx, _)) = p.reply {
                let _ = tx.send(Err(Refusal::Unavailable(why.clone())));
            }
        }
    }

    /// Releases, in order, every step whose record is durable.
    fn release(&mut self) {
        let durable = self.durable.borrow_and_update().clone();
        if let Some(why) = durable.failed {
            self.fail(why);
            return;
        }
        while self
            .uncommitted
            .front()
            .is_some_and(|p| p.lsn <= durable.lsn)
        {
            let Some(p) = self.uncommitted.pop_front() else {
                break;
            };
            if let Some(label) = p.counted {
                m::command_accepted(label);
            }
            if let Some((tx, outcome)) = p.reply {
                let _ = tx.send(outcome);
            }
            if !p.events.is_empty() {
                m::release_wait(p.decided.elapsed());
            }
            for (record, delivery) in p.events.iter().zip(&p.deliveries) {
                m::event(&record.event);
                let published = self.fanout.publish(record, delivery);
                m::lagged(published.consoles_lagged, published.responders_dropped);
                if let Some(at) = self.awaiting_offer.first_offer(&record.event) {
                    m::alert_to_offer(at.elapsed());
                }
            }
            if let Some(r) = p.resend {
                let dropped = self.fanout.resend(&r.id, r.session_no, &r.jobs);
                m::lagged(0, dropped);
            }
        }
        m::consoles(self.fanout.console_count());
    }
}

/// Metric label of an event, for the closed set of event counters: its wire `type`.
pub fn event_label(e: &Event) -> &'static str {
    e.into()
}
