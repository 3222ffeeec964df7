//! The sans-IO façade: `handle_command(now, cmd)` / `handle_timeout(now)` in,
//! `poll_event()` / `poll_timeout()` out. It owns all dispatch state; it reads no clock and
//! does no I/O, so the server, the simulator and journal replay drive the same code.
//!
//! Every handler validates completely before it changes anything, so an `Err` leaves the
//! engine exactly as it was (no event, no sequence number consumed). Decisions iterate only
//! ordered collections (`BTreeMap`, `BTreeSet`, sorted vectors), so the same commands at the
//! same times always give the same events.

use crate::command::{Alert, Command, Reply};
use crate::error::CommandError;
use crate::event::{Event, EventRecord, WithdrawReason};
use crate::geo::{LatLon, Projection};
use crate::ids::{AlertId, ElderId, IncidentId, OfferId, ResponderId};
use crate::incident::{AlertRef, Incident, IncidentStatus, Offer, OfferStatus};
use crate::matching::{self, CandidateInfo, Placed, RankQuery, Ranked, RoadTimes, TravelTimes};
use crate::model::{
    Actor, AlertKind, AssignmentRole, Availability, ResponderKind, ServiceKind, Sla, TravelMode,
};
use crate::policy::{MatchingMode, Plan, PolicyConfig};
use crate::responder::{ResponderState, ResponderStatus};
use crate::road::RoadNetwork;
use crate::roster::{Roster, RosterError, RosterFile};
use crate::spatial::{needs_reindex, tree_of, ResponderIndex};
use crate::time::Timestamp;
use crate::timebank::{TimeBank, TimeBankView};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

mod console_views;
pub use console_views::{Candidate, ElderView, SlaClock, SlaDurations, MAX_CANDIDATES};

/// Something the engine must do at a given time. Ordered, so timers due at the same moment
/// fire in a fixed order (offer expiries before SLA checks).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "timer", content = "id", rename_all = "snake_case")]
pub enum Timer {
    OfferExpiry(OfferId),
    /// A scheduled service reaches its lead time.
    IncidentStart(IncidentId),
    /// Try again after nobody could be asked.
    Retry(IncidentId),
    /// Try again to find an ambulance.
    AmbulanceRetry(IncidentId),
    /// No community responder accepted within 60 s: ambulance.
    AmbulanceIfNoAccept(IncidentId),
    SlaFirstAccept(IncidentId),
    SlaCommunityOnScene(IncidentId),
    SlaAmbulanceOnScene(IncidentId),
    RestOver(ResponderId),
}

/// Everything but the road network, for snapshots (team journal). `restore` rebuilds the
/// derived indexes (R-trees, id lookups) from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    pub roster: RosterFile,
    pub responders: Vec<ResponderState>,
    pub incidents: BTreeMap<IncidentId, Incident>,
    pub offers: BTreeMap<OfferId, Offer>,
    pub alerts: BTreeMap<AlertId, IncidentId>,
    pub open_by_elder: BTreeMap<ElderId, IncidentId>,
    /// Incidents waiting for a retry, with the retry's time.
    pub waiting: BTreeMap<IncidentId, Timestamp>,
    pub timers: Vec<(Timestamp, Timer)>,
    pub time_bank: TimeBank,
    pub next_incident: u64,
    pub next_offer: u64,
    pub seq: u64,
    /// Events decided but not yet polled.
    pub pending_events: Vec<EventRecord>,
    /// Batched dispatch: incidents waiting for the next dispatch round, and when it is due.
    #[serde(default)]
    pub pending_dispatch: Vec<IncidentId>,
    #[serde(default)]
    pub dispatch_due: Option<Timestamp>,
}

/// A responder as the console sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponderView {
    pub id: ResponderId,
    pub kind: ResponderKind,
    pub travel_mode: TravelMode,
    pub status: ResponderStatus,
    pub position: LatLon,
    pub position_at: Option<Timestamp>,
    pub grid_id: Option<crate::ids::GridId>,
}

/// An open incident as the console sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentSummary {
    pub id: IncidentId,
    pub elder_id: ElderId,
    pub kind: AlertKind,
    pub service: Option<ServiceKind>,
    pub plan: Plan,
    pub priority: u8,
    pub status: IncidentStatus,
    pub position: LatLon,
    pub opened_at: Timestamp,
    pub wave: u32,
    pub open_offers: Vec<OfferId>,
    pub community: Vec<ResponderId>,
    pub ambulance: Option<ResponderId>,
    /// Assigned responders who have not completed yet.
    pub committed: Vec<ResponderId>,
    /// The elder's care level (1..5) when the incident opened.
    #[serde(default)]
    pub care_level: u8,
    /// The promise clocks of an emergency (empty for services and welfare visits).
    #[serde(default)]
    pub clocks: Vec<SlaClock>,
}

/// The console's snapshot: open incidents and every responder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotView {
    pub last_seq: u64,
    pub incidents: Vec<IncidentSummary>,
    pub responders: Vec<ResponderView>,
    /// The promise durations, for clocks of incidents opened after the snapshot.
    pub sla_ms: SlaDurations,
}

/// One incident with its full timeline and decision reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentView {
    pub summary: IncidentSummary,
    pub alerts: Vec<AlertRef>,
    pub arrived: BTreeMap<ResponderId, Timestamp>,
    pub timeline: Vec<EventRecord>,
    /// The elder and their familiar people (`None` if the elder left the roster).
    pub elder: Option<ElderView>,
}

/// A fast, non-cryptographic hasher for the id → slot lookup on every location update (the
/// multiply-rotate scheme of rustc's FxHash). Ids come from the roster and authenticated
/// sessions, so hash flooding is not a concern; iteration order never matters (lookups only).
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn write_u8(&mut self, b: u8) {
        self.write(&[b]);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A cached placement: the projected position and mode it was computed for, and the result.
type PlacedEntry = ([f64; 2], TravelMode, Option<Placed>);

/// The engine. See the module docs.
pub struct Engine {
    /// Travel times (the road network in production).
    roads: Arc<dyn TravelTimes>,
    config: PolicyConfig,
    /// The projection of `roads`, cached (used on every location update).
    projection: Projection,
    roster: Roster,
    /// Responders by dense slot; slots are never reused, so R-tree entries stay small.
    responders: Vec<ResponderState>,
    /// Id → slot. Looked up only, never iterated (so a `HashMap` cannot affect decisions).
    slots: HashMap<ResponderId, u32, BuildHasherDefault<IdHasher>>,
    /// Available responders by (kind, mode).
    index: ResponderIndex,
    incidents: BTreeMap<IncidentId, Incident>,
    offers: BTreeMap<OfferId, Offer>,
    alerts: BTreeMap<AlertId, IncidentId>,
    open_by_elder: BTreeMap<ElderId, IncidentId>,
    /// Dispatching incidents with nobody asked right now, and when their retry fires. A retry
    /// timer is cancelled as soon as its incident stops waiting. A fruitless retry re-arms
    /// without an event, so a replay must make every timeout call (the journal keeps them all).
    waiting: BTreeMap<IncidentId, Timestamp>,
    timers: BTreeSet<(Timestamp, Timer)>,
    time_bank: TimeBank,
    next_incident: u64,
    next_offer: u64,
    seq: u64,
    events: VecDeque<EventRecord>,
    /// Incidents that need a wave at the end of the current call (empty between calls), or,
    /// with batched dispatch, at the next `handle_timeout` (due at `dispatch_due`).
    pending: BTreeSet<IncidentId>,
    dispatch_due: Option<Timestamp>,
    /// Closed incidents by closing time, oldest first (derived from `incidents`, not saved):
    /// they are forgotten `closed_retention_ms` after closing.
    closed: BTreeSet<(Timestamp, IncidentId)>,
    /// Waiting emergencies (dispatching, no community responder yet), most urgent first:
    /// joint rounds take the most urgent from the front instead of scanning every open
    /// incident. Derived from `incidents` (rebuilt on restore), kept by `reindex_waiting`.
    waiting_emergencies: BTreeSet<UrgencyKey>,
    /// Derived, not saved: each responder's position snapped to their mode's graph, keyed by
    /// the projected position it was snapped from (location updates do not snap; ranking
    /// snaps lazily, once per position). A pure function of the state, so it cannot change a
    /// decision.
    /// Behind a `Mutex` (never contended: one owner) so that `Engine` stays `Sync` for
    /// callers that share it behind a lock.
    placed_cache: Mutex<Vec<Option<PlacedEntry>>>,
    /// Test-only count of incidents visited to find surges (history must not add to it).
    #[cfg(test)]
    surge_scanned: std::sync::atomic::AtomicU64,
}

/// `Engine` is moved into the server's engine task and may be shared behind a lock.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Engine>();
};

/// Urgency order: highest priority, then oldest, then lowest id.
type UrgencyKey = (std::cmp::Reverse<u8>, Timestamp, IncidentId);

fn urgency_key(inc: &Incident) -> UrgencyKey {
    (std::cmp::Reverse(inc.priority), inc.opened_at, inc.id)
}

/// An emergency still waiting for its community responder.
fn is_waiting_emergency(inc: &Incident) -> bool {
    inc.plan == Plan::Emergency && inc.status == IncidentStatus::Dispatching && !inc.has_community()
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("responders", &self.responders.len())
            .field("incidents", &self.incidents.len())
            .field("seq", &self.seq)
            .finish()
    }
}

fn roster_to_command_error(e: RosterError) -> CommandError {
    match e {
        RosterError::UnknownGrid { grid, .. } => CommandError::UnknownGrid(grid),
        RosterError::UnknownPairedResponder { responder, .. } => {
            CommandError::UnknownResponder(responder)
        }
        RosterError::OffMap {
            position, detail, ..
        } => CommandError::OffMap {
            lat: position.lat,
            lon: position.lon,
            detail,
        },
        other => CommandError::Invalid(other.to_string()),
    }
}

fn secs(ms: u64) -> u64 {
    (ms + 500) / 1000
}

fn mode_name(m: TravelMode) -> &'static str {
    match m {
        TravelMode::Foot => "on foot",
        TravelMode::Car => "by car",
    }
}

impl Engine {
    /// An engine over the road network (the production constructor). The roster is
    /// validated: unknown grid, unknown paired responder, duplicate id or a position off the
    /// map is refused naming the entry.
    pub fn new(
        roads: Arc<RoadNetwork>,
        roster: RosterFile,
        config: PolicyConfig,
    ) -> Result<Engine, RosterError> {
        let times = RoadTimes {
            net: roads,
            foot_kmh: config.foot_profile_kmh,
        };
        Engine::with_travel_times(Arc::new(times), roster, config)
    }

    /// Rebuilds an engine from `save_state` over the road network.
    pub fn restore(roads: Arc<RoadNetwork>, config: PolicyConfig, state: EngineState) -> Engine {
        let times = RoadTimes {
            net: roads,
            foot_kmh: config.foot_profile_kmh,
        };
        Engine::restore_with_travel_times(Arc::new(times), config, state)
    }

    /// An engine over any travel-time source (the road network, or a test stand-in).
    pub fn with_travel_times(
        roads: Arc<dyn TravelTimes>,
        roster: RosterFile,
        config: PolicyConfig,
    ) -> Result<Engine, RosterError> {
        let on_map = |p: LatLon| roads.check_on_map(p);
        let roster = Roster::from_file(roster, &on_map)?;
        let projection = roads.projection();
        let responders: Vec<ResponderState> = roster
            .responders()
            .map(|r| ResponderState::new(r.clone(), projection.to_xy(r.home)))
            .collect();
        let state = EngineState {
            roster: roster.to_file(),
            responders,
            incidents: BTreeMap::new(),
            offers: BTreeMap::new(),
            alerts: BTreeMap::new(),
            open_by_elder: BTreeMap::new(),
            waiting: BTreeMap::new(),
            timers: Vec::new(),
            time_bank: TimeBank::default(),
            next_incident: 1,
            next_offer: 1,
            seq: 0,
            pending_events: Vec::new(),
            pending_dispatch: Vec::new(),
            dispatch_due: None,
        };
        Ok(Engine::restore_with_travel_times(roads, config, state))
    }

    /// Rebuilds an engine from a snapshot over any travel-time source.
    pub fn restore_with_travel_times(
        roads: Arc<dyn TravelTimes>,
        config: PolicyConfig,
        state: EngineState,
    ) -> Engine {
        // The snapshot was validated when its contents were accepted (positions included, so
        // the on-map check is skipped); a saved roster that fails validation is a bug.
        let roster = Roster::from_file(state.roster, &|_| Ok(()))
            .expect("a roster saved by the engine is valid");
        let slots = state
            .responders
            .iter()
            .enumerate()
            .map(|(i, r)| (r.record.id.clone(), i as u32))
            .collect();
        let index =
            ResponderIndex::bulk_load(state.responders.iter().enumerate().filter_map(|(i, r)| {
                r.anchor
                    .map(|a| (tree_of(r.record.kind, r.record.travel_mode), i as u32, a))
            }));
        // Snapshots from before `closed_at` existed: a closed incident closed at its last event.
        let closed = state
            .incidents
            .values()
            .filter(|i| !i.status.is_open())
            .map(|i| {
                let at = i
                    .closed_at
                    .or_else(|| i.timeline.last().map(|e| e.at))
                    .unwrap_or(i.opened_at);
                (at, i.id)
            })
            .collect();
        let waiting_emergencies = state
            .incidents
            .values()
            .filter(|i| is_waiting_emergency(i))
            .map(urgency_key)
            .collect();
        Engine {
            closed,
            waiting_emergencies,
            projection: roads.projection(),
            roads,
            config,
            roster,
            responders: state.responders,
            slots,
            index,
            incidents: state.incidents,
            offers: state.offers,
            alerts: state.alerts,
            open_by_elder: state.open_by_elder,
            waiting: state.waiting,
            timers: state.timers.into_iter().collect(),
            time_bank: state.time_bank,
            next_incident: state.next_incident,
            next_offer: state.next_offer,
            seq: state.seq,
            events: state.pending_events.into(),
            pending: state.pending_dispatch.into_iter().collect(),
            dispatch_due: state.dispatch_due,
            placed_cache: Mutex::new(Vec::new()),
            #[cfg(test)]
            surge_scanned: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Everything but the road network.
    pub fn save_state(&self) -> EngineState {
        EngineState {
            roster: self.roster.to_file(),
            responders: self.responders.clone(),
            incidents: self.incidents.clone(),
            offers: self.offers.clone(),
            alerts: self.alerts.clone(),
            open_by_elder: self.open_by_elder.clone(),
            waiting: self.waiting.clone(),
            timers: self.timers.iter().cloned().collect(),
            time_bank: self.time_bank.clone(),
            next_incident: self.next_incident,
            next_offer: self.next_offer,
            seq: self.seq,
            pending_events: self.events.iter().cloned().collect(),
            pending_dispatch: self.pending.iter().copied().collect(),
            dispatch_due: self.dispatch_due,
        }
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    // ------------------------------------------------------------------ read side

    /// The next event, in `seq` order.
    pub fn poll_event(&mut self) -> Option<EventRecord> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let timer = self.timers.first().map(|(t, _)| *t);
        match (timer, self.dispatch_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The sequence number of the last event decided (polled or not).
    pub fn last_seq(&self) -> u64 {
        self.seq
    }

    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// A responder's time bank; an empty one for a responder with no credit yet, `None`
    /// only for an id that is not (or no longer) on the roster.
    pub fn time_bank(&self, id: &ResponderId) -> Option<TimeBankView> {
        if let Some(a) = self.time_bank.account(id) {
            return Some(a.clone());
        }
        self.responder(id).map(|_| TimeBankView {
            responder_id: Some(id.clone()),
            balance_minutes: 0,
            history: Vec::new(),
        })
    }

    /// A responder's live state.
    pub fn responder(&self, id: &ResponderId) -> Option<&ResponderState> {
        self.slots
            .get(id)
            .map(|&s| &self.responders[s as usize])
            .filter(|r| !r.retired)
    }

    fn summary(&self, i: &Incident) -> IncidentSummary {
        IncidentSummary {
            id: i.id,
            elder_id: i.elder_id.clone(),
            kind: i.kind,
            service: i.service,
            plan: i.plan,
            priority: i.priority,
            status: i.status,
            position: i.position,
            opened_at: i.opened_at,
            wave: i.wave,
            open_offers: i.open_offers.iter().copied().collect(),
            community: i.community.clone(),
            ambulance: i.ambulance.clone(),
            committed: i.committed().cloned().collect(),
            care_level: i.care_level,
            clocks: self.clocks(i),
        }
    }

    pub fn incident(&self, id: IncidentId) -> Option<IncidentView> {
        let i = self.incidents.get(&id)?;
        Some(IncidentView {
            summary: self.summary(i),
            alerts: i.alerts.clone(),
            arrived: i.arrived.clone(),
            timeline: i.timeline.clone(),
            elder: self.elder_view(&i.elder_id),
        })
    }

    /// What a responder's phone must be told again when it reconnects: the open offer it
    /// holds (its `offer_sent` event), or the assignment it is working on (its latest
    /// `assigned` event), from the incident's timeline. Empty when it has no open job.
    pub fn open_job_events(&self, id: &ResponderId) -> Vec<EventRecord> {
        let Some(r) = self.responder(id) else {
            return Vec::new();
        };
        let (incident_id, offer) = match r.status {
            ResponderStatus::Offered {
                offer_id,
                incident_id,
            } => (incident_id, Some(offer_id)),
            ResponderStatus::EnRoute { incident_id } | ResponderStatus::OnScene { incident_id } => {
                (incident_id, None)
            }
            _ => return Vec::new(),
        };
        let Some(inc) = self.incidents.get(&incident_id) else {
            return Vec::new();
        };
        inc.timeline
            .iter()
            .rev()
            .find(|rec| match (&rec.event, offer) {
                (Event::OfferSent { offer_id, .. }, Some(o)) => *offer_id == o,
                (Event::Assigned { responder_id, .. }, None) => responder_id == id,
                _ => false,
            })
            .cloned()
            .into_iter()
            .collect()
    }

    /// Open incidents and every responder on the roster.
    pub fn snapshot_view(&self) -> SnapshotView {
        SnapshotView {
            last_seq: self.seq,
            incidents: self
                .open_by_elder
                .values()
                .filter_map(|id| self.incidents.get(id))
                .map(|i| (i.id, self.summary(i)))
                .collect::<BTreeMap<_, _>>()
                .into_values()
                .collect(),
            responders: self
                .responders
                .iter()
                .filter(|r| !r.retired)
                .map(|r| ResponderView {
                    id: r.record.id.clone(),
                    kind: r.record.kind,
                    travel_mode: r.record.travel_mode,
                    status: r.status,
                    position: r.position,
                    position_at: r.position_at,
                    grid_id: r.record.grid_id.clone(),
                })
                .collect(),
            sla_ms: self.sla_durations(),
        }
    }

    // ------------------------------------------------------------------ write side

    /// Applies one command. `Err` changes nothing.
    pub fn handle_command(&mut self, now: Timestamp, cmd: Command) -> Result<Reply, CommandError> {
        self.forget_closed(now);
        let reply = match cmd {
            Command::Location {
                responder_id,
                position,
            } => {
                return self.location(now, &responder_id, position);
            }
            Command::Alert(a) => self.alert(now, a)?,
            Command::CancelAlert {
                alert_id,
                device_id,
            } => self.cancel_alert(now, alert_id, device_id)?,
            Command::CheckIn {
                elder_id,
                device_id,
            } => {
                self.check_device(&device_id)?;
                if self.roster.elder(&elder_id).is_none() {
                    return Err(CommandError::UnknownElder(elder_id));
                }
                // A late check-in answers the missed one: a welfare visit nobody has reached
                // yet is called off (its offers withdrawn, its visitor released). Emergencies
                // are never closed by a check-in, and a visitor already at the door finishes.
                let visit = self.open_by_elder.get(&elder_id).copied().filter(|i| {
                    self.incidents
                        .get(i)
                        .is_some_and(|inc| inc.plan == Plan::WelfareVisit && inc.arrived.is_empty())
                });
                self.emit(
                    now,
                    Event::CheckedIn {
                        elder_id: elder_id.clone(),
                    },
                );
                if let Some(incident_id) = visit {
                    self.close(
                        now,
                        incident_id,
                        IncidentStatus::Cancelled,
                        Actor::Device(device_id),
                        format!("{elder_id} checked in: the welfare visit is not needed"),
                    );
                }
                Reply::Done
            }
            Command::SetAvailability {
                responder_id,
                status,
            } => self.set_availability(now, &responder_id, status)?,
            Command::Accept {
                responder_id,
                offer_id,
            } => self.accept(now, &responder_id, offer_id)?,
            Command::Decline {
                responder_id,
                offer_id,
            } => self.decline(now, &responder_id, offer_id)?,
            Command::Arrived {
                responder_id,
                incident_id,
            } => self.arrived(now, &responder_id, incident_id)?,
            Command::Complete {
                responder_id,
                incident_id,
            } => self.complete(now, &responder_id, incident_id)?,
            Command::RequestAmbulance {
                responder_id,
                incident_id,
            } => {
                let slot = self.slot(&responder_id)?;
                let inc = self.open_incident(incident_id)?;
                let needed = inc.ambulance.is_none() && inc.ambulance_wanted.is_none();
                if self.responders[slot as usize].status.incident() != Some(incident_id) {
                    return Err(CommandError::NotAssigned {
                        responder: responder_id,
                        incident: incident_id,
                    });
                }
                if needed {
                    self.dispatch_ambulance(
                        now,
                        incident_id,
                        format!("requested by {responder_id} on scene"),
                    );
                }
                Reply::Done
            }
            Command::Assign {
                operator_id,
                incident_id,
                responder_id,
            } => {
                self.check_operator(&operator_id)?;
                self.operator_assign(now, incident_id, &responder_id, &operator_id)?
            }
            Command::Cancel {
                operator_id,
                incident_id,
                reason,
            } => {
                self.check_operator(&operator_id)?;
                self.open_incident(incident_id)?;
                self.close(
                    now,
                    incident_id,
                    IncidentStatus::Cancelled,
                    Actor::Operator(operator_id),
                    reason,
                );
                Reply::Done
            }
            Command::Resolve {
                operator_id,
                incident_id,
                note,
            } => {
                self.check_operator(&operator_id)?;
                self.open_incident(incident_id)?;
                self.close(
                    now,
                    incident_id,
                    IncidentStatus::Resolved,
                    Actor::Operator(operator_id),
                    note,
                );
                Reply::Done
            }
            Command::UpsertGrid { by, grid } => {
                self.check_actor(&by)?;
                self.roster
                    .upsert_grid(grid)
                    .map_err(roster_to_command_error)?;
                Reply::Done
            }
            Command::UpsertResponder { by, responder } => {
                self.check_actor(&by)?;
                self.upsert_responder(responder)?
            }
            Command::RetireResponder { by, responder_id } => {
                self.check_actor(&by)?;
                self.retire_responder(now, &responder_id)?
            }
            Command::UpsertElder { by, elder } => {
                self.check_actor(&by)?;
                let roads = self.roads.clone();
                let on_map = |p: LatLon| roads.check_on_map(p);
                self.roster
                    .upsert_elder(elder, &on_map)
                    .map_err(roster_to_command_error)?;
                Reply::Done
            }
            Command::RetireElder { by, elder_id } => {
                self.check_actor(&by)?;
                if self.roster.elder(&elder_id).is_none() {
                    return Err(CommandError::UnknownElder(elder_id));
                }
                if let Some(i) = self.open_by_elder.get(&elder_id) {
                    return Err(CommandError::Invalid(format!(
                        "elder {elder_id} has open incident {i}"
                    )));
                }
                self.roster
                    .retire_elder(&elder_id)
                    .map_err(roster_to_command_error)?;
                Reply::Done
            }
            Command::RetireGrid { by, grid_id } => {
                self.check_actor(&by)?;
                if self.roster.grid(&grid_id).is_none() {
                    return Err(CommandError::UnknownGrid(grid_id));
                }
                self.roster
                    .retire_grid(&grid_id)
                    .map_err(roster_to_command_error)?;
                Reply::Done
            }
        };
        if self.config.dispatch_batched {
            if !self.pending.is_empty() && self.dispatch_due.is_none() {
                self.dispatch_due = Some(now);
            }
        } else {
            self.run_dispatch(now);
        }
        Ok(reply)
    }

    /// Fires every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.forget_closed(now);
        while let Some((at, _)) = self.timers.first() {
            if *at > now {
                break;
            }
            let (at, timer) = self.timers.pop_first().expect("checked non-empty");
            self.fire(now, at, timer);
        }
        self.dispatch_due = None;
        self.run_dispatch(now);
    }

    // ------------------------------------------------------------------ helpers

    /// Puts `id` in or out of `waiting_emergencies` after its plan, status, priority, opening
    /// time or community changed. `old` is its urgency key before the change.
    fn reindex_waiting(&mut self, id: IncidentId, old: Option<UrgencyKey>) {
        if let Some(k) = old {
            self.waiting_emergencies.remove(&k);
        }
        if let Some(inc) = self.incidents.get(&id) {
            if is_waiting_emergency(inc) {
                self.waiting_emergencies.insert(urgency_key(inc));
            }
        }
    }

    /// Forgets incidents closed more than `closed_retention_ms` before `now`: the incident
    /// with its timeline, its alerts' duplicate keys and its offers. Runs at the start of
    /// every call, so a replay forgets at the same points.
    fn forget_closed(&mut self, now: Timestamp) {
        let keep = self.config.closed_retention_ms;
        while let Some(&(at, id)) = self.closed.first() {
            if now.ms_since(at) < keep {
                break;
            }
            self.closed.pop_first();
            let Some(inc) = self.incidents.remove(&id) else {
                continue;
            };
            for a in &inc.alerts {
                if self.alerts.get(&a.alert_id) == Some(&id) {
                    self.alerts.remove(&a.alert_id);
                }
            }
            for rec in &inc.timeline {
                if let Event::OfferSent { offer_id, .. } = rec.event {
                    self.offers.remove(&offer_id);
                }
            }
        }
    }

    fn emit(&mut self, now: Timestamp, event: Event) {
        self.seq += 1;
        let rec = EventRecord {
            seq: self.seq,
            at: now,
            event,
        };
        if let Some(id) = rec.event.incident_id() {
            if let Some(i) = self.incidents.get_mut(&id) {
                i.timeline.push(rec.clone());
            }
        }
        self.events.push_back(rec);
    }

    fn slot(&self, id: &ResponderId) -> Result<u32, CommandError> {
        match self.slots.get(id) {
            Some(&s) if !self.responders[s as usize].retired => Ok(s),
            _ => Err(CommandError::UnknownResponder(id.clone())),
        }
    }

    fn open_incident(&self, id: IncidentId) -> Result<&Incident, CommandError> {
        let i = self
            .incidents
            .get(&id)
            .ok_or(CommandError::UnknownIncident(id))?;
        if !i.status.is_open() {
            return Err(CommandError::IncidentClosed(id));
        }
        Ok(i)
    }

    fn check_operator(&self, id: &crate::ids::OperatorId) -> Result<(), CommandError> {
        match self.roster.operator(id) {
            Some(_) => Ok(()),
            None => Err(CommandError::Invalid(format!("unknown operator {id}"))),
        }
    }

    fn check_device(&self, id: &crate::ids::DeviceId) -> Result<(), CommandError> {
        match self.roster.device(id) {
            Some(_) => Ok(()),
            None => Err(CommandError::Invalid(format!("unknown device {id}"))),
        }
    }

    fn check_actor(&self, by: &Actor) -> Result<(), CommandError> {
        match by {
            Actor::Operator(o) => self.check_operator(o),
            Actor::Engine => Ok(()),
            other => Err(CommandError::Invalid(format!(
                "{other:?} may not change the roster"
            ))),
        }
    }

    /// The incident no longer waits for a retry: drop its retry timer too.
    fn unwait(&mut self, incident_id: IncidentId) {
        if let Some(at) = self.waiting.remove(&incident_id) {
            self.timers.remove(&(at, Timer::Retry(incident_id)));
        }
    }

    fn set_timer(&mut self, at: Timestamp, t: Timer) {
        self.timers.insert((at, t));
    }

    fn cancel_timer(&mut self, at: Timestamp, t: Timer) {
        self.timers.remove(&(at, t));
    }

    /// Puts an available responder into the R-tree at their live position.
    fn index_insert(&mut self, slot: u32) {
        let r = &mut self.responders[slot as usize];
        if r.anchor.is_none() {
            r.anchor = Some(r.xy);
            let t = tree_of(r.record.kind, r.record.travel_mode);
            self.index.insert(t, slot, r.xy);
        }
    }

    fn index_remove(&mut self, slot: u32) {
        let r = &mut self.responders[slot as usize];
        if let Some(a) = r.anchor.take() {
            let t = tree_of(r.record.kind, r.record.travel_mode);
            self.index.remove(t, slot, a);
        }
    }

    /// Moves a responder between states, keeping the R-tree in step (only `available`
    /// responders are indexed). Illegal transitions are bugs: callers check first.
    fn set_status(&mut self, slot: u32, to: ResponderStatus) {
        let from = self.responders[slot as usize].status;
        debug_assert!(from.can_become(&to), "{} -> {}", from.name(), to.name());
        self.responders[slot as usize].status = to;
        match to {
            ResponderStatus::Available => {
                self.index_insert(slot);
                // Somebody can be asked again: the most urgent incidents waiting for a retry
                // try now (a bounded number, so a surge stays linear; the others' retry
                // timers still fire).
                let woken = self.most_urgent(
                    self.waiting.keys().copied(),
                    self.config.surge_max_incidents,
                );
                self.pending.extend(woken);
            }
            _ => self.index_remove(slot),
        }
    }

    // ------------------------------------------------------------------ responders

    fn location(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
        p: LatLon,
    ) -> Result<Reply, CommandError> {
        let slot = self.slot(id)?;
        let off = |detail: String| CommandError::OffMap {
            lat: p.lat,
            lon: p.lon,
            detail,
        };
        let p = p.validate().map_err(|e| off(e.to_string()))?;
        let xy = self.projection.to_xy(p);
        let d2 = xy[0] * xy[0] + xy[1] * xy[1];
        if d2 > self.config.map_radius_m * self.config.map_radius_m {
            return Err(off(format!(
                "{:.0} m from the map centre (limit {:.0} m)",
                d2.sqrt(),
                self.config.map_radius_m
            )));
        }
        let r = &mut self.responders[slot as usize];
        r.position = p;
        r.xy = xy;
        r.position_at = Some(now);
        if let Some(a) = r.anchor {
            if needs_reindex(a, xy) {
                let t = tree_of(r.record.kind, r.record.travel_mode);
                r.anchor = Some(xy);
                self.index.remove(t, slot, a);
                self.index.insert(t, slot, xy);
            }
        }
        self.emit(
            now,
            Event::ResponderMoved {
                responder_id: id.clone(),
                position: p,
            },
        );
        Ok(Reply::Done)
    }

    fn set_availability(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
        to: Availability,
    ) -> Result<Reply, CommandError> {
        let slot = self.slot(id)?;
        let st = self.responders[slot as usize].status;
        let refuse = |action| CommandError::InvalidTransition {
            responder: id.clone(),
            action,
            state: st.name(),
        };
        match (to, st) {
            (Availability::Available, ResponderStatus::Available)
            | (Availability::OffDuty, ResponderStatus::OffDuty) => return Ok(Reply::Done),
            (Availability::Available, ResponderStatus::OffDuty) => {
                self.responders[slot as usize].position_at = Some(now);
                self.set_status(slot, ResponderStatus::Available);
            }
            (Availability::Available, _) => return Err(refuse("go available")),
            (Availability::OffDuty, ResponderStatus::Available) => {
                self.set_status(slot, ResponderStatus::OffDuty)
            }
            (Availability::OffDuty, ResponderStatus::Offered { offer_id, .. }) => {
                self.withdraw(
                    now,
                    offer_id,
                    WithdrawReason::ResponderUnavailable,
                    ResponderStatus::OffDuty,
                );
            }
            (Availability::OffDuty, ResponderStatus::Resting { until }) => {
                self.cancel_timer(until, Timer::RestOver(id.clone()));
                self.set_status(slot, ResponderStatus::OffDuty);
            }
            (Availability::OffDuty, _) => return Err(refuse("go off duty")),
        }
        self.emit(
            now,
            Event::ResponderAvailability {
                responder_id: id.clone(),
                status: to,
            },
        );
        Ok(Reply::Done)
    }

    /// Checks an offer can be answered by `id` now.
    fn answerable(
        &self,
        now: Timestamp,
        id: &ResponderId,
        offer_id: OfferId,
    ) -> Result<u32, CommandError> {
        let slot = self.slot(id)?;
        let o = self
            .offers
            .get(&offer_id)
            .ok_or(CommandError::UnknownOffer(offer_id))?;
        if &o.responder_id != id {
            return Err(CommandError::NotYourOffer {
                offer: offer_id,
                responder: id.clone(),
            });
        }
        if o.status != OfferStatus::Open || now >= o.expires_at {
            return Err(CommandError::OfferClosed(offer_id));
        }
        Ok(slot)
    }

    fn accept(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
        offer_id: OfferId,
    ) -> Result<Reply, CommandError> {
        let slot = self.answerable(now, id, offer_id)?;
        let o = self.offers.get_mut(&offer_id).expect("checked");
        o.status = OfferStatus::Accepted;
        let (incident_id, expires_at, eta_ms) = (o.incident_id, o.expires_at, o.eta_ms);
        self.cancel_timer(expires_at, Timer::OfferExpiry(offer_id));
        let inc = self
            .incidents
            .get_mut(&incident_id)
            .expect("open offers belong to open incidents");
        inc.open_offers.remove(&offer_id);
        let reason = format!(
            "{id} accepted offer {offer_id} (wave {}) and is on the way, ETA {} s",
            inc.wave,
            secs(eta_ms)
        );
        self.assign_community(now, incident_id, slot, eta_ms, reason);
        Ok(Reply::Done)
    }

    /// Commits a community responder (from `available` or `offered`) to an incident.
    fn assign_community(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        slot: u32,
        eta_ms: u64,
        reason: String,
    ) {
        let id = self.responders[slot as usize].record.id.clone();
        self.set_status(slot, ResponderStatus::EnRoute { incident_id });
        self.responders[slot as usize].count_assignment(now);
        let inc = self
            .incidents
            .get_mut(&incident_id)
            .expect("caller checked");
        let first = inc.community.is_empty();
        let key = urgency_key(inc);
        inc.community.push(id.clone());
        if inc.first_accept_at.is_none() {
            inc.first_accept_at = Some(now);
        }
        if inc.status == IncidentStatus::Dispatching {
            inc.status = IncidentStatus::Assigned;
        }
        let opened = inc.opened_at;
        self.reindex_waiting(incident_id, Some(key));
        let inc = &self.incidents[&incident_id];
        let others: Vec<OfferId> = inc.open_offers.iter().copied().collect();
        self.unwait(incident_id);
        self.pending.remove(&incident_id);
        if first {
            self.cancel_timer(
                opened.plus_ms(self.config.sla_first_accept_ms),
                Timer::SlaFirstAccept(incident_id),
            );
            self.cancel_timer(
                opened.plus_ms(self.config.ambulance_after_no_accept_ms),
                Timer::AmbulanceIfNoAccept(incident_id),
            );
        }
        for o in others {
            self.withdraw(now, o, WithdrawReason::Filled, ResponderStatus::Available);
        }
        let (route, _) = self.route_for(slot, incident_id);
        self.emit(
            now,
            Event::Assigned {
                incident_id,
                responder_id: id,
                role: AssignmentRole::Community,
                eta_s: secs(eta_ms) as u32,
                route,
                reason,
            },
        );
    }

    /// Takes an open offer back; the responder becomes `then` (available or off duty).
    fn withdraw(
        &mut self,
        now: Timestamp,
        offer_id: OfferId,
        why: WithdrawReason,
        then: ResponderStatus,
    ) {
        let Some(o) = self.offers.get_mut(&offer_id) else {
            return;
        };
        if o.status != OfferStatus::Open {
            return;
        }
        o.status = OfferStatus::Withdrawn;
        let (incident_id, responder_id, expires_at) =
            (o.incident_id, o.responder_id.clone(), o.expires_at);
        self.cancel_timer(expires_at, Timer::OfferExpiry(offer_id));
        if let Some(i) = self.incidents.get_mut(&incident_id) {
            i.open_offers.remove(&offer_id);
        }
        if let Some(&slot) = self.slots.get(&responder_id) {
            self.set_status(slot, then);
        }
        if why == WithdrawReason::ResponderUnavailable {
            self.offer_closed(incident_id, offer_id);
        }
        self.emit(
            now,
            Event::OfferWithdrawn {
                offer_id,
                incident_id,
                responder_id,
                reason: why,
            },
        );
    }

    fn decline(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
        offer_id: OfferId,
    ) -> Result<Reply, CommandError> {
        let slot = self.answerable(now, id, offer_id)?;
        let o = self.offers.get_mut(&offer_id).expect("checked");
        o.status = OfferStatus::Declined;
        let (incident_id, expires_at) = (o.incident_id, o.expires_at);
        self.cancel_timer(expires_at, Timer::OfferExpiry(offer_id));
        self.set_status(slot, ResponderStatus::Available);
        self.offer_closed(incident_id, offer_id);
        self.emit(
            now,
            Event::OfferDeclined {
                offer_id,
                incident_id,
                responder_id: id.clone(),
            },
        );
        Ok(Reply::Done)
    }

    /// After a decline or expiry: a wave with no open offer left moves on to the next wave.
    fn offer_closed(&mut self, incident_id: IncidentId, offer_id: OfferId) {
        if let Some(i) = self.incidents.get_mut(&incident_id) {
            i.open_offers.remove(&offer_id);
            if i.open_offers.is_empty() && i.status == IncidentStatus::Dispatching {
                self.pending.insert(incident_id);
            }
        }
    }

    /// The slot of a responder committed to `incident_id` in the state `action` needs
    /// (`ready` names the incident of that state). Committed to it in the other state is an
    /// invalid transition; anything else means they are not on this incident.
    fn committed_slot(
        &self,
        id: &ResponderId,
        incident_id: IncidentId,
        action: &'static str,
        ready: fn(ResponderStatus) -> Option<IncidentId>,
    ) -> Result<u32, CommandError> {
        let slot = self.slot(id)?;
        self.open_incident(incident_id)?;
        let st = self.responders[slot as usize].status;
        if ready(st) == Some(incident_id) {
            return Ok(slot);
        }
        match st {
            ResponderStatus::EnRoute { incident_id: i }
            | ResponderStatus::OnScene { incident_id: i }
                if i == incident_id =>
            {
                Err(CommandError::InvalidTransition {
                    responder: id.clone(),
                    action,
                    state: st.name(),
                })
            }
            _ => Err(CommandError::NotAssigned {
                responder: id.clone(),
                incident: incident_id,
            }),
        }
    }

    fn arrived(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
        incident_id: IncidentId,
    ) -> Result<Reply, CommandError> {
        let slot = self.committed_slot(id, incident_id, "arrive", |st| match st {
            ResponderStatus::EnRoute { incident_id } => Some(incident_id),
            _ => None,
        })?;
        self.set_status(slot, ResponderStatus::OnScene { incident_id });
        let inc = self.incidents.get_mut(&incident_id).expect("checked");
        inc.arrived.insert(id.clone(), now);
        let role = if inc.ambulance.as_ref() == Some(id) {
            AssignmentRole::Ambulance
        } else {
            AssignmentRole::Community
        };
        let key = urgency_key(inc);
        if inc.status.can_become(IncidentStatus::OnScene) {
            inc.status = IncidentStatus::OnScene;
        }
        let (opened, amb_at) = (inc.opened_at, inc.ambulance_at);
        self.reindex_waiting(incident_id, Some(key));
        let inc = &self.incidents[&incident_id];
        let open: Vec<OfferId> = inc.open_offers.iter().copied().collect();
        self.unwait(incident_id);
        self.pending.remove(&incident_id);
        match role {
            AssignmentRole::Community => self.cancel_timer(
                opened.plus_ms(self.config.sla_community_on_scene_ms),
                Timer::SlaCommunityOnScene(incident_id),
            ),
            AssignmentRole::Ambulance => {
                if let Some(t) = amb_at {
                    self.cancel_timer(
                        t.plus_ms(self.config.sla_ambulance_on_scene_ms),
                        Timer::SlaAmbulanceOnScene(incident_id),
                    );
                }
            }
        }
        // Somebody is at the door: nobody else needs to be asked.
        for o in open {
            self.withdraw(now, o, WithdrawReason::Filled, ResponderStatus::Available);
        }
        self.emit(
            now,
            Event::ResponderArrived {
                incident_id,
                responder_id: id.clone(),
                role,
            },
        );
        Ok(Reply::Done)
    }

    fn complete(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
        incident_id: IncidentId,
    ) -> Result<Reply, CommandError> {
        let slot = self.committed_slot(id, incident_id, "complete", |st| match st {
            ResponderStatus::OnScene { incident_id } => Some(incident_id),
            _ => None,
        })?;
        self.release(now, slot, incident_id);
        let inc = self.incidents.get_mut(&incident_id).expect("checked");
        inc.completed.insert(id.clone());
        if inc.committed().next().is_none() {
            self.close(
                now,
                incident_id,
                IncidentStatus::Resolved,
                Actor::Responder(id.clone()),
                format!("completed by {id}"),
            );
        }
        Ok(Reply::Done)
    }

    /// A responder leaves an incident: credit the time bank (volunteers who arrived), then
    /// rest (volunteers after an emergency) or become available again.
    fn release(&mut self, now: Timestamp, slot: u32, incident_id: IncidentId) {
        let r = &self.responders[slot as usize];
        let id = r.record.id.clone();
        let kind = r.record.kind;
        let inc = &self.incidents[&incident_id];
        let (plan, arrived) = (inc.plan, inc.arrived.get(&id).copied());
        if kind == ResponderKind::Volunteer {
            if let Some(at) = arrived {
                let minutes = self.time_bank.credit(&id, incident_id, at, now);
                self.emit(
                    now,
                    Event::TimeBankCredited {
                        responder_id: id.clone(),
                        incident_id,
                        minutes,
                    },
                );
            }
        }
        if kind == ResponderKind::Volunteer && plan == Plan::Emergency && arrived.is_some() {
            let until = now.plus_ms(self.config.rest_after_emergency_ms);
            self.set_status(slot, ResponderStatus::Resting { until });
            self.set_timer(until, Timer::RestOver(id));
        } else {
            self.set_status(slot, ResponderStatus::Available);
        }
    }

    fn upsert_responder(
        &mut self,
        rec: crate::roster::ResponderRecord,
    ) -> Result<Reply, CommandError> {
        let roads = self.roads.clone();
        let on_map = |p: LatLon| roads.check_on_map(p);
        self.roster
            .upsert_responder(rec.clone(), &on_map)
            .map_err(roster_to_command_error)?;
        match self.slots.get(&rec.id).copied() {
            Some(slot) => {
                // Re-index under the (possibly new) kind and mode.
                let was_indexed = self.responders[slot as usize].anchor.is_some();
                self.index_remove(slot);
                let r = &mut self.responders[slot as usize];
                r.record = rec;
                if r.retired {
                    r.retired = false;
                    r.status = ResponderStatus::OffDuty;
                }
                if was_indexed {
                    self.index_insert(slot);
                }
            }
            None => {
                let slot = self.responders.len() as u32;
                let xy = self.projection.to_xy(rec.home);
                self.slots.insert(rec.id.clone(), slot);
                self.responders.push(ResponderState::new(rec, xy));
            }
        }
        Ok(Reply::Done)
    }

    fn retire_responder(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
    ) -> Result<Reply, CommandError> {
        let slot = self.slot(id)?;
        let st = self.responders[slot as usize].status;
        if st.incident().is_some() {
            return Err(CommandError::InvalidTransition {
                responder: id.clone(),
                action: "retire",
                state: st.name(),
            });
        }
        self.roster
            .retire_responder(id)
            .map_err(roster_to_command_error)?;
        match st {
            ResponderStatus::Offered { offer_id, .. } => self.withdraw(
                now,
                offer_id,
                WithdrawReason::ResponderUnavailable,
                ResponderStatus::OffDuty,
            ),
            ResponderStatus::Resting { until } => {
                self.cancel_timer(until, Timer::RestOver(id.clone()));
                self.set_status(slot, ResponderStatus::OffDuty);
            }
            ResponderStatus::Available => self.set_status(slot, ResponderStatus::OffDuty),
            _ => {}
        }
        self.responders[slot as usize].retired = true;
        Ok(Reply::Done)
    }

    fn operator_assign(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        id: &ResponderId,
        operator: &crate::ids::OperatorId,
    ) -> Result<Reply, CommandError> {
        let slot = self.slot(id)?;
        let inc = self.open_incident(incident_id)?;
        if inc.status == IncidentStatus::Scheduled {
            return Err(CommandError::Invalid(format!(
                "incident {incident_id} is scheduled for later"
            )));
        }
        let st = self.responders[slot as usize].status;
        let kind = self.responders[slot as usize].record.kind;
        if kind == ResponderKind::Ambulance && inc.ambulance.is_some() {
            return Err(CommandError::Invalid(format!(
                "incident {incident_id} already has an ambulance"
            )));
        }
        match st {
            ResponderStatus::Available => {}
            ResponderStatus::Offered { incident_id: i, .. } if i == incident_id => {}
            _ => {
                return Err(CommandError::InvalidTransition {
                    responder: id.clone(),
                    action: "be assigned",
                    state: st.name(),
                })
            }
        }
        if let ResponderStatus::Offered { offer_id, .. } = st {
            let o = self
                .offers
                .get_mut(&offer_id)
                .expect("offered state names an offer");
            o.status = OfferStatus::Accepted;
            let exp = o.expires_at;
            self.cancel_timer(exp, Timer::OfferExpiry(offer_id));
            if let Some(i) = self.incidents.get_mut(&incident_id) {
                i.open_offers.remove(&offer_id);
            }
        }
        let eta_ms = self.eta_of(slot, incident_id).unwrap_or(0);
        if kind == ResponderKind::Ambulance {
            self.assign_ambulance(
                now,
                incident_id,
                slot,
                eta_ms,
                format!("assigned by operator {operator}"),
            );
        } else {
            self.assign_community(
                now,
                incident_id,
                slot,
                eta_ms,
                format!("assigned by operator {operator}, ETA {} s", secs(eta_ms)),
            );
        }
        Ok(Reply::Done)
    }

    // ------------------------------------------------------------------ alerts and incidents

    fn alert(&mut self, now: Timestamp, a: Alert) -> Result<Reply, CommandError> {
        if let Some(&incident_id) = self.alerts.get(&a.alert_id) {
            return Ok(Reply::AlertAccepted {
                incident_id,
                duplicate: true,
            });
        }
        self.check_device(&a.device_id)?;
        let elder = self
            .roster
            .elder(&a.elder_id)
            .ok_or_else(|| CommandError::UnknownElder(a.elder_id.clone()))?;
        let plan = Plan::of(a.kind, a.service)
            .ok_or_else(|| CommandError::Invalid("a help alert needs a service".into()))?;
        if a.scheduled_for.is_some() && plan != Plan::Service {
            return Err(CommandError::Invalid(
                "scheduled_for is only for service requests".into(),
            ));
        }
        let position = a.position.unwrap_or(elder.home);
        let off = |detail: String| CommandError::OffMap {
            lat: position.lat,
            lon: position.lon,
            detail,
        };
        let position = position.validate().map_err(|e| off(e.to_string()))?;
        self.roads.check_on_map(position).map_err(off)?;
        let care_level = elder.care_level;
        let alert_ref = AlertRef {
            alert_id: a.alert_id.clone(),
            device_id: a.device_id.clone(),
            cancelled: false,
        };

        if let Some(&incident_id) = self.open_by_elder.get(&a.elder_id) {
            self.alerts.insert(a.alert_id.clone(), incident_id);
            let inc = self
                .incidents
                .get_mut(&incident_id)
                .expect("open_by_elder names open incidents");
            inc.alerts.push(alert_ref);
            self.emit(
                now,
                Event::AlertJoined {
                    incident_id,
                    alert_id: a.alert_id.clone(),
                },
            );
            let inc = &self.incidents[&incident_id];
            if plan == Plan::Emergency && inc.plan != Plan::Emergency {
                self.upgrade_to_emergency(now, incident_id);
            }
            let inc = &self.incidents[&incident_id];
            if plan == Plan::Emergency
                && a.ambulance_requested
                && inc.ambulance.is_none()
                && inc.ambulance_wanted.is_none()
            {
                self.dispatch_ambulance(now, incident_id, "the alert asks for an ambulance".into());
            }
            return Ok(Reply::AlertAccepted {
                incident_id,
                duplicate: false,
            });
        }

        let incident_id = IncidentId(self.next_incident);
        self.next_incident += 1;
        let priority = plan.priority(care_level);
        let start = match (plan, a.scheduled_for) {
            (Plan::Service, Some(t)) => Some(Timestamp(
                t.0.saturating_sub(self.config.service_lead_ms as i64),
            )),
            _ => None,
        }
        .filter(|s| *s > now);
        let inc = Incident {
            id: incident_id,
            elder_id: a.elder_id.clone(),
            kind: a.kind,
            service: a.service,
            plan,
            priority,
            care_level,
            position,
            xy: self.projection.to_xy(position),
            opened_at: now,
            scheduled_for: a.scheduled_for,
            status: if start.is_some() {
                IncidentStatus::Scheduled
            } else {
                IncidentStatus::Dispatching
            },
            alerts: vec![alert_ref],
            wave: 0,
            open_offers: BTreeSet::new(),
            asked: BTreeSet::new(),
            community: Vec::new(),
            ambulance: None,
            ambulance_at: None,
            arrived: BTreeMap::new(),
            ambulance_wanted: None,
            first_accept_at: None,
            completed: BTreeSet::new(),
            timeline: Vec::new(),
            closed_at: None,
        };
        self.incidents.insert(incident_id, inc);
        self.reindex_waiting(incident_id, None);
        self.alerts.insert(a.alert_id.clone(), incident_id);
        self.open_by_elder.insert(a.elder_id.clone(), incident_id);
        let what = match (a.kind, a.service) {
            (AlertKind::Fall, _) => "fall".to_string(),
            (AlertKind::CheckInMissed, _) => "missed check-in".to_string(),
            (AlertKind::Help, Some(s)) => format!(
                "help ({})",
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            ),
            (AlertKind::Help, None) => "help".to_string(),
        };
        let plan_text = match plan {
            Plan::Emergency => "emergency",
            Plan::Service => "service request",
            Plan::WelfareVisit => "welfare visit, own grid worker first",
        };
        let mut reason = format!(
            "{what} from {} (care level {care_level}): {plan_text}, priority {priority}",
            a.elder_id
        );
        if let Some(s) = start {
            reason.push_str(&format!("; offers go out at {s}"));
        }
        self.emit(
            now,
            Event::IncidentOpened {
                incident_id,
                alert_id: a.alert_id.clone(),
                elder_id: a.elder_id.clone(),
                kind: a.kind,
                service: a.service,
                priority,
                position,
                reason,
            },
        );
        match start {
            Some(s) => self.set_timer(s, Timer::IncidentStart(incident_id)),
            None => {
                self.pending.insert(incident_id);
            }
        }
        if plan == Plan::Emergency {
            self.start_emergency_timers(now, incident_id);
            if care_level >= self.config.ambulance_min_care_level {
                self.dispatch_ambulance(now, incident_id, format!("care level {care_level}"));
            } else if a.ambulance_requested {
                self.dispatch_ambulance(now, incident_id, "the alert asks for an ambulance".into());
            }
        }
        Ok(Reply::AlertAccepted {
            incident_id,
            duplicate: false,
        })
    }

    fn start_emergency_timers(&mut self, now: Timestamp, incident_id: IncidentId) {
        let c = &self.config;
        let timers = [
            (
                now.plus_ms(c.sla_first_accept_ms),
                Timer::SlaFirstAccept(incident_id),
            ),
            (
                now.plus_ms(c.sla_community_on_scene_ms),
                Timer::SlaCommunityOnScene(incident_id),
            ),
            (
                now.plus_ms(c.ambulance_after_no_accept_ms),
                Timer::AmbulanceIfNoAccept(incident_id),
            ),
        ];
        for (at, t) in timers {
            self.set_timer(at, t);
        }
    }

    /// An emergency alert joined a service or welfare incident: it becomes an emergency now.
    fn upgrade_to_emergency(&mut self, now: Timestamp, incident_id: IncidentId) {
        let inc = self
            .incidents
            .get_mut(&incident_id)
            .expect("caller checked");
        let key = urgency_key(inc);
        inc.plan = Plan::Emergency;
        inc.priority = Plan::Emergency.priority(inc.care_level);
        // The emergency's clocks start now (its SLAs are timed from the emergency alert).
        inc.opened_at = now;
        let care = inc.care_level;
        let had_community = inc.has_community();
        if inc.status == IncidentStatus::Scheduled {
            inc.status = IncidentStatus::Dispatching;
        }
        self.reindex_waiting(incident_id, Some(key));
        self.emit(
            now,
            Event::Escalated {
                incident_id,
                reason: "an emergency alert joined: now handled as an emergency".into(),
            },
        );
        if !had_community {
            self.start_emergency_timers(now, incident_id);
            self.pending.insert(incident_id);
        }
        if care >= self.config.ambulance_min_care_level {
            self.dispatch_ambulance(now, incident_id, format!("care level {care}"));
        }
    }

    fn cancel_alert(
        &mut self,
        now: Timestamp,
        alert_id: AlertId,
        device_id: crate::ids::DeviceId,
    ) -> Result<Reply, CommandError> {
        let incident_id = *self
            .alerts
            .get(&alert_id)
            .ok_or_else(|| CommandError::UnknownAlert(alert_id.clone()))?;
        let inc = self
            .incidents
            .get(&incident_id)
            .ok_or(CommandError::UnknownIncident(incident_id))?;
        let a = inc
            .alerts
            .iter()
            .find(|r| r.alert_id == alert_id)
            .expect("alerts map and incident agree");
        if a.device_id != device_id {
            return Err(CommandError::Invalid(format!(
                "alert {alert_id} was sent by another device"
            )));
        }
        if !inc.status.is_open() {
            return Err(CommandError::IncidentClosed(incident_id));
        }
        if a.cancelled {
            return Ok(Reply::Done);
        }
        let inc = self.incidents.get_mut(&incident_id).expect("checked");
        for r in inc.alerts.iter_mut().filter(|r| r.alert_id == alert_id) {
            r.cancelled = true;
        }
        if inc.alerts.iter().all(|r| r.cancelled) {
            self.close(
                now,
                incident_id,
                IncidentStatus::Cancelled,
                Actor::Device(device_id),
                format!("the device cancelled alert {alert_id} (\"I'm OK\")"),
            );
        }
        Ok(Reply::Done)
    }

    /// Ends an incident: open offers withdrawn, committed responders released, timers dropped.
    fn close(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        to: IncidentStatus,
        by: Actor,
        reason: String,
    ) {
        let inc = self
            .incidents
            .get_mut(&incident_id)
            .expect("caller checked");
        debug_assert!(inc.status.can_become(to));
        let key = urgency_key(inc);
        inc.status = to;
        inc.closed_at = Some(now);
        self.closed.insert((now, incident_id));
        self.waiting_emergencies.remove(&key);
        let open: Vec<OfferId> = inc.open_offers.iter().copied().collect();
        let committed: Vec<ResponderId> = inc.committed().cloned().collect();
        let elder = inc.elder_id.clone();
        self.open_by_elder.remove(&elder);
        self.unwait(incident_id);
        self.pending.remove(&incident_id);
        for o in open {
            self.withdraw(
                now,
                o,
                WithdrawReason::IncidentClosed,
                ResponderStatus::Available,
            );
        }
        for r in committed {
            if let Some(&slot) = self.slots.get(&r) {
                if self.responders[slot as usize].status.incident() == Some(incident_id) {
                    self.release(now, slot, incident_id);
                }
            }
        }
        let dead: Vec<(Timestamp, Timer)> = self
            .timers
            .iter()
            .filter(|(_, t)| {
                matches!(t,
                    Timer::IncidentStart(i) | Timer::Retry(i) | Timer::AmbulanceRetry(i) | Timer::AmbulanceIfNoAccept(i)
                    | Timer::SlaFirstAccept(i) | Timer::SlaCommunityOnScene(i) | Timer::SlaAmbulanceOnScene(i)
                    if *i == incident_id)
            })
            .cloned()
            .collect();
        for t in dead {
            self.timers.remove(&t);
        }
        let event = match to {
            IncidentStatus::Cancelled => Event::IncidentCancelled {
                incident_id,
                by,
                reason,
            },
            _ => Event::IncidentResolved {
                incident_id,
                by,
                reason,
            },
        };
        self.emit(now, event);
    }

    // ------------------------------------------------------------------ timers

    fn fire(&mut self, now: Timestamp, at: Timestamp, timer: Timer) {
        match timer {
            Timer::OfferExpiry(offer_id) => {
                let Some(o) = self.offers.get_mut(&offer_id) else {
                    return;
                };
                if o.status != OfferStatus::Open {
                    return;
                }
                o.status = OfferStatus::Expired;
                let (incident_id, responder_id) = (o.incident_id, o.responder_id.clone());
                if let Some(&slot) = self.slots.get(&responder_id) {
                    self.set_status(slot, ResponderStatus::Available);
                }
                self.offer_closed(incident_id, offer_id);
                self.emit(
                    now,
                    Event::OfferExpired {
                        offer_id,
                        incident_id,
                        responder_id,
                    },
                );
            }
            Timer::IncidentStart(i) => {
                if let Some(inc) = self.incidents.get_mut(&i) {
                    if inc.status == IncidentStatus::Scheduled {
                        let key = urgency_key(inc);
                        inc.status = IncidentStatus::Dispatching;
                        self.pending.insert(i);
                        self.reindex_waiting(i, Some(key));
                    }
                }
            }
            Timer::Retry(i) => {
                // Leaving `waiting` makes a fruitless retry report (and re-arm) again.
                if self.waiting.remove(&i).is_some() {
                    self.pending.insert(i);
                }
            }
            Timer::AmbulanceRetry(i) => {
                // Dead once an ambulance is assigned (that never reverts), so it needs no
                // cancelling.
                let wanted = self.incidents.get(&i).and_then(|inc| {
                    (inc.status.is_open() && inc.ambulance.is_none())
                        .then(|| inc.ambulance_wanted.clone())
                        .flatten()
                });
                if let Some(why) = wanted {
                    // `ambulance_wanted` stays set: a retry that finds none again re-arms
                    // quietly (the wait was already said).
                    self.dispatch_ambulance(now, i, why);
                }
            }
            Timer::AmbulanceIfNoAccept(i) => {
                let Some(inc) = self.incidents.get(&i) else {
                    return;
                };
                if inc.status.is_open()
                    && !inc.has_community()
                    && inc.ambulance.is_none()
                    && inc.ambulance_wanted.is_none()
                {
                    let s = secs(self.config.ambulance_after_no_accept_ms);
                    self.dispatch_ambulance(
                        now,
                        i,
                        format!("no community responder accepted within {s} s"),
                    );
                }
            }
            Timer::SlaFirstAccept(i) => {
                let Some(inc) = self.incidents.get(&i) else {
                    return;
                };
                let (status, accepted) = (inc.status, inc.first_accept_at.is_some());
                if status.is_open() && !accepted {
                    self.emit(
                        now,
                        Event::SlaBreached {
                            incident_id: i,
                            sla: Sla::FirstAccept,
                            deadline: at,
                        },
                    );
                    if status == IncidentStatus::Dispatching && !self.pending.contains(&i) {
                        self.emit(now, Event::Escalated { incident_id: i, reason: "nobody accepted within the first-accept SLA: widening to the next wave now".into() });
                        self.pending.insert(i);
                    }
                }
            }
            Timer::SlaCommunityOnScene(i) => {
                let Some(inc) = self.incidents.get(&i) else {
                    return;
                };
                let community_here = inc.community.iter().any(|r| inc.arrived.contains_key(r));
                if inc.status.is_open() && !community_here {
                    self.emit(
                        now,
                        Event::SlaBreached {
                            incident_id: i,
                            sla: Sla::CommunityOnScene,
                            deadline: at,
                        },
                    );
                    let inc = &self.incidents[&i];
                    if inc.ambulance.is_none() && inc.ambulance_wanted.is_none() {
                        let s = secs(self.config.sla_community_on_scene_ms);
                        self.dispatch_ambulance(
                            now,
                            i,
                            format!("no community responder on scene within {s} s"),
                        );
                    }
                }
            }
            Timer::SlaAmbulanceOnScene(i) => {
                let Some(inc) = self.incidents.get(&i) else {
                    return;
                };
                let here = inc
                    .ambulance
                    .as_ref()
                    .is_some_and(|a| inc.arrived.contains_key(a));
                if inc.status.is_open() && !here {
                    self.emit(
                        now,
                        Event::SlaBreached {
                            incident_id: i,
                            sla: Sla::AmbulanceOnScene,
                            deadline: at,
                        },
                    );
                    self.emit(
                        now,
                        Event::Escalated {
                            incident_id: i,
                            reason: "ambulance not on scene in time: operator attention".into(),
                        },
                    );
                }
            }
            Timer::RestOver(id) => {
                let Some(&slot) = self.slots.get(&id) else {
                    return;
                };
                if matches!(self.responders[slot as usize].status, ResponderStatus::Resting { until } if until <= now)
                {
                    self.set_status(slot, ResponderStatus::Available);
                    self.emit(
                        now,
                        Event::ResponderAvailability {
                            responder_id: id,
                            status: Availability::Available,
                        },
                    );
                }
            }
        }
    }

    // ------------------------------------------------------------------ matching

    /// The foot tree's top speed uses the fastest walker on the roster.
    fn tree_top_mps(&self, mode: TravelMode) -> f64 {
        let base = self.roads.max_speed_mps(mode);
        match mode {
            TravelMode::Car => base,
            TravelMode::Foot => {
                base * (self.roster.max_walk_kmh().max(self.roads.foot_kmh())
                    / self.roads.foot_kmh())
            }
        }
    }

    fn time_factor(&self, slot: u32) -> f64 {
        let r = &self.responders[slot as usize].record;
        match r.travel_mode {
            TravelMode::Car => 1.0,
            TravelMode::Foot => self.roads.foot_kmh() / r.walk_kmh.unwrap_or(self.roads.foot_kmh()),
        }
    }

    /// Whether `slot` may be offered `incident` (state aside): fresh position, right kind,
    /// skill, daily cap, not already asked.
    fn may_offer(&self, now: Timestamp, slot: u32, inc: &Incident) -> bool {
        let r = &self.responders[slot as usize];
        if r.retired
            || !r.position_fresh(now, self.config.stale_position_ms)
            || inc.asked.contains(&r.record.id)
        {
            return false;
        }
        if !inc.plan.offered_kinds().contains(&r.record.kind) {
            return false;
        }
        if r.record.kind == ResponderKind::Volunteer
            && r.assignments_on(now) >= self.config.volunteer_daily_cap
        {
            return false;
        }
        if let (Plan::Service, Some(s)) = (inc.plan, inc.service) {
            if let Some(skill) = self.config.skill_for(s) {
                if !r.record.skills.iter().any(|k| k == skill) {
                    return false;
                }
            }
        }
        true
    }

    /// A responder placed on their mode's graph, snapped at most once per position.
    fn placed(&self, slot: u32) -> Option<Placed> {
        let r = &self.responders[slot as usize];
        let mode = r.record.travel_mode;
        let mut cache = self.placed_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() <= slot as usize {
            cache.resize(self.responders.len(), None);
        }
        match &cache[slot as usize] {
            Some((xy, m, p)) if *xy == r.xy && *m == mode => *p,
            _ => {
                let p = self.roads.place(mode, r.position);
                cache[slot as usize] = Some((r.xy, mode, p));
                p
            }
        }
    }

    /// `elder` is looked up once per ranking by the caller (`None`: no familiarity).
    fn candidate_info(
        &self,
        slot: u32,
        elder: Option<&crate::roster::ElderRecord>,
    ) -> Option<CandidateInfo> {
        let position = self.placed(slot)?;
        let r = &self.responders[slot as usize];
        let familiar = elder.and_then(|e| self.roster.is_familiar(e, &r.record));
        Some(CandidateInfo {
            position,
            mode: r.record.travel_mode,
            time_factor: self.time_factor(slot),
            familiar,
        })
    }

    /// The familiar responders of an incident's elder (paired, own grid workers), by slot.
    fn familiar_slots(&self, inc: &Incident) -> Vec<u32> {
        let Some(e) = self.roster.elder(&inc.elder_id) else {
            return Vec::new();
        };
        let mut v: Vec<u32> = e
            .paired_responders
            .iter()
            .chain(self.roster.grid_workers(&e.grid_id))
            .filter_map(|id| self.slots.get(id).copied())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Ranks who may be offered `incident` now. `extra` responders (holding offers of other
    /// incidents in a surge) are considered too; `reserved` ones are excluded.
    fn rank_for(
        &self,
        now: Timestamp,
        incident_id: IncidentId,
        k: usize,
        extra: &BTreeSet<u32>,
        reserved: &BTreeSet<u32>,
    ) -> Vec<Ranked> {
        let inc = &self.incidents[&incident_id];
        if inc.plan == Plan::WelfareVisit && inc.wave == 0 {
            // A welfare visit's first wave is the elder's own grid worker(s) alone; nobody
            // there, and it goes to everyone eligible.
            let own = self.rank_among(now, incident_id, k, extra, reserved, true);
            if !own.is_empty() {
                return own;
            }
        }
        self.rank_among(now, incident_id, k, extra, reserved, false)
    }

    fn rank_among(
        &self,
        now: Timestamp,
        incident_id: IncidentId,
        k: usize,
        extra: &BTreeSet<u32>,
        reserved: &BTreeSet<u32>,
        welfare_first: bool,
    ) -> Vec<Ranked> {
        let inc = &self.incidents[&incident_id];
        let mut forced = self.familiar_slots(inc);
        if welfare_first {
            // Wave 1 of a welfare visit: the elder's own grid worker(s) only.
            let e = self.roster.elder(&inc.elder_id);
            forced.retain(|&s| {
                let r = &self.responders[s as usize].record;
                r.kind == ResponderKind::GridWorker
                    && e.is_some_and(|e| r.grid_id.as_ref() == Some(&e.grid_id))
            });
        }
        forced.extend(extra.iter().copied());
        forced.sort_unstable();
        forced.dedup();
        let elder = self.roster.elder(&inc.elder_id);
        let eligible = |slot: u32| -> Option<CandidateInfo> {
            if reserved.contains(&slot) || !self.may_offer(now, slot, inc) {
                return None;
            }
            match self.responders[slot as usize].status {
                ResponderStatus::Available => {}
                ResponderStatus::Offered { .. } if extra.contains(&slot) => {}
                _ => return None,
            }
            self.candidate_info(slot, elder)
        };
        let mut trees: Vec<(usize, f64)> = Vec::new();
        if !welfare_first {
            for &kind in inc.plan.offered_kinds() {
                for mode in [TravelMode::Foot, TravelMode::Car] {
                    trees.push((tree_of(kind, mode), self.tree_top_mps(mode)));
                }
            }
        }
        let q = RankQuery {
            target: inc.position,
            target_xy: inc.xy,
            trees: &trees,
            forced: &forced,
            k,
            margin_ms: self.config.familiarity_margin_ms,
        };
        matching::rank(&q, &self.index, self.roads.as_ref(), &eligible)
    }

    /// The baseline: nearest by straight line within the radius, no familiarity.
    fn rank_baseline(
        &self,
        now: Timestamp,
        incident_id: IncidentId,
        k: usize,
        radius_m: f64,
    ) -> Vec<Ranked> {
        let inc = &self.incidents[&incident_id];
        let trees: Vec<usize> = inc
            .plan
            .offered_kinds()
            .iter()
            .flat_map(|&kind| {
                [
                    tree_of(kind, TravelMode::Foot),
                    tree_of(kind, TravelMode::Car),
                ]
            })
            .collect();
        let near = matching::nearest_within(
            inc.xy,
            &trees,
            radius_m,
            k,
            &self.index,
            &|s| self.responders[s as usize].xy,
            &|s| {
                self.may_offer(now, s, inc)
                    && self.responders[s as usize].status == ResponderStatus::Available
            },
        );
        near.into_iter()
            .map(|(slot, _)| {
                let eta_ms = self.eta_of(slot, incident_id).unwrap_or(0);
                Ranked {
                    slot,
                    eta_ms,
                    score_ms: eta_ms as i64,
                    familiar: None,
                    mode: self.responders[slot as usize].record.travel_mode,
                }
            })
            .collect()
    }

    fn eta_of(&self, slot: u32, incident_id: IncidentId) -> Option<u64> {
        let r = &self.responders[slot as usize];
        let inc = &self.incidents[&incident_id];
        let t = self
            .roads
            .times_to(r.record.travel_mode, &[r.position], inc.position)[0]?;
        Some((t as f64 * self.time_factor(slot)).round() as u64)
    }

    fn route_for(&self, slot: u32, incident_id: IncidentId) -> (Vec<LatLon>, f64) {
        let r = &self.responders[slot as usize];
        let inc = &self.incidents[&incident_id];
        match self
            .roads
            .route(r.record.travel_mode, r.position, inc.position)
        {
            Some(route) => (route.path, route.distance_m),
            None => (Vec::new(), 0.0),
        }
    }

    /// Sends one offer.
    fn send_offer(&mut self, now: Timestamp, incident_id: IncidentId, c: &Ranked, reason: String) {
        let offer_id = OfferId(self.next_offer);
        self.next_offer += 1;
        let inc = self
            .incidents
            .get_mut(&incident_id)
            .expect("caller checked");
        let expires_at = now.plus_ms(self.config.expiry_ms(inc.plan));
        let id = self.responders[c.slot as usize].record.id.clone();
        inc.open_offers.insert(offer_id);
        inc.asked.insert(id.clone());
        let wave = inc.wave;
        self.unwait(incident_id);
        self.offers.insert(
            offer_id,
            Offer {
                id: offer_id,
                incident_id,
                responder_id: id.clone(),
                wave,
                sent_at: now,
                expires_at,
                eta_ms: c.eta_ms,
                status: OfferStatus::Open,
            },
        );
        self.set_status(
            c.slot,
            ResponderStatus::Offered {
                offer_id,
                incident_id,
            },
        );
        self.set_timer(expires_at, Timer::OfferExpiry(offer_id));
        let (route, distance_m) = self.route_for(c.slot, incident_id);
        self.emit(
            now,
            Event::OfferSent {
                offer_id,
                incident_id,
                responder_id: id,
                wave,
                eta_s: secs(c.eta_ms) as u32,
                distance_m: distance_m.round() as u32,
                route,
                expires_at,
                reason,
            },
        );
    }

    fn reason_for(&self, c: &Ranked, ranked: &[Ranked], position: usize) -> String {
        let r = &self.responders[c.slot as usize].record;
        let mut s = format!("{}: ", r.id);
        match c.familiar {
            Some(f) => s.push_str(f),
            None => s.push_str(&format!("#{} by road ETA", position + 1)),
        }
        s.push_str(&format!(", ETA {} s {}", secs(c.eta_ms), mode_name(c.mode)));
        if let Some(w) = r.walk_kmh.filter(|_| c.mode == TravelMode::Foot) {
            s.push_str(&format!(" at {w} km/h"));
        }
        if c.familiar.is_some() {
            if let Some(n) = ranked
                .iter()
                .filter(|o| o.familiar.is_none() && o.eta_ms < c.eta_ms)
                .min_by_key(|o| o.eta_ms)
            {
                let nid = &self.responders[n.slot as usize].record.id;
                s.push_str(&format!(
                    "; {nid} was nearer at {} s but not familiar (margin {} s)",
                    secs(n.eta_ms),
                    secs(self.config.familiarity_margin_ms)
                ));
            }
        }
        s
    }

    /// Sends the next wave of one incident, skipping `reserved` responders.
    fn send_wave(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        reserved: &BTreeSet<u32>,
        already: usize,
    ) {
        let inc = &self.incidents[&incident_id];
        // The baseline asks fixed-size waves ("3 nearest, then the next 3").
        let size = match self.config.matching {
            MatchingMode::RoadEta => self.config.wave_size(inc.wave + 1),
            MatchingMode::NearestRadius { .. } => self.config.wave_size(1),
        };
        let k = size.saturating_sub(already);
        let ranked = match self.config.matching {
            MatchingMode::RoadEta => {
                self.rank_for(now, incident_id, k + 1, &BTreeSet::new(), reserved)
            }
            MatchingMode::NearestRadius { radius_m } => {
                self.rank_baseline(now, incident_id, k, radius_m)
            }
        };
        let chosen: Vec<Ranked> = ranked.iter().take(k).cloned().collect();
        if chosen.is_empty() && already == 0 {
            let inc = &self.incidents[&incident_id];
            if inc.open_offers.is_empty() && !self.waiting.contains_key(&incident_id) {
                let why = match self.config.matching {
                    MatchingMode::NearestRadius { radius_m } => {
                        format!("nobody eligible within {radius_m:.0} m")
                    }
                    MatchingMode::RoadEta => {
                        "nobody eligible and reachable is available".to_string()
                    }
                };
                // Already said since this incident's last offer or assignment?
                let repeated = matches!(
                    inc.timeline.iter().rev().find(|e| matches!(
                        e.event,
                        Event::NoResponderAvailable { .. }
                            | Event::OfferSent { .. }
                            | Event::Assigned { .. }
                    )),
                    Some(EventRecord {
                        event: Event::NoResponderAvailable { .. },
                        ..
                    })
                );
                let retry = now.plus_ms(self.config.retry_ms);
                self.waiting.insert(incident_id, retry);
                self.set_timer(retry, Timer::Retry(incident_id));
                // Said once per stretch (until an offer or assignment): a fruitless retry
                // re-arms quietly, so a console watching thirty incidents is not told the same
                // thing every 15 s, and the timeline of a long wait stays short.
                if !repeated {
                    let every = self.config.retry_ms / 1000;
                    self.emit(
                        now,
                        Event::NoResponderAvailable {
                            incident_id,
                            reason: format!(
                                "{why}; trying again every {every} s and whenever a responder becomes available"
                            ),
                        },
                    );
                }
            }
            return;
        }
        if already == 0 {
            let inc = self.incidents.get_mut(&incident_id).expect("checked");
            inc.wave += 1;
            let wave = inc.wave;
            if wave > 1 {
                self.emit(
                    now,
                    Event::Escalated {
                        incident_id,
                        reason: format!(
                            "wave {wave}: asking {} more (the previous wave declined or expired)",
                            chosen.len()
                        ),
                    },
                );
            }
        }
        for (n, c) in chosen.iter().enumerate() {
            let reason = self.reason_for(c, &ranked, n + already);
            self.send_offer(now, incident_id, c, reason);
        }
    }

    fn dispatch_ambulance(&mut self, now: Timestamp, incident_id: IncidentId, why: String) {
        let inc = &self.incidents[&incident_id];
        let trees = [
            (
                tree_of(ResponderKind::Ambulance, TravelMode::Car),
                self.tree_top_mps(TravelMode::Car),
            ),
            (
                tree_of(ResponderKind::Ambulance, TravelMode::Foot),
                self.tree_top_mps(TravelMode::Foot),
            ),
        ];
        let stale = self.config.stale_position_ms;
        let eligible = |slot: u32| -> Option<CandidateInfo> {
            let r = &self.responders[slot as usize];
            (r.status == ResponderStatus::Available && !r.retired && r.position_fresh(now, stale))
                .then(|| self.candidate_info(slot, None))
                .flatten()
        };
        let q = RankQuery {
            target: inc.position,
            target_xy: inc.xy,
            trees: &trees,
            forced: &[],
            k: 1,
            margin_ms: 0,
        };
        let best = matching::rank(&q, &self.index, self.roads.as_ref(), &eligible);
        match best.first() {
            Some(c) => {
                let id = &self.responders[c.slot as usize].record.id;
                let reason = format!(
                    "{why}: {id} is the nearest available ambulance, ETA {} s by car",
                    secs(c.eta_ms)
                );
                self.emit(
                    now,
                    Event::Escalated {
                        incident_id,
                        reason: format!("ambulance dispatched: {why}"),
                    },
                );
                self.assign_ambulance(now, incident_id, c.slot, c.eta_ms, reason);
            }
            None => {
                let wanted = &mut self
                    .incidents
                    .get_mut(&incident_id)
                    .expect("checked")
                    .ambulance_wanted;
                let already_said = wanted.is_some();
                *wanted = Some(why.clone());
                let retry = now.plus_ms(self.config.retry_ms);
                self.set_timer(retry, Timer::AmbulanceRetry(incident_id));
                if !already_said {
                    let every = self.config.retry_ms / 1000;
                    self.emit(
                        now,
                        Event::Escalated {
                            incident_id,
                            reason: format!(
                                "ambulance needed ({why}) but none is available; trying again every {every} s"
                            ),
                        },
                    );
                }
            }
        }
    }

    fn assign_ambulance(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        slot: u32,
        eta_ms: u64,
        reason: String,
    ) {
        let id = self.responders[slot as usize].record.id.clone();
        self.set_status(slot, ResponderStatus::EnRoute { incident_id });
        let inc = self
            .incidents
            .get_mut(&incident_id)
            .expect("caller checked");
        inc.ambulance = Some(id.clone());
        inc.ambulance_at = Some(now);
        inc.ambulance_wanted = None;
        self.set_timer(
            now.plus_ms(self.config.sla_ambulance_on_scene_ms),
            Timer::SlaAmbulanceOnScene(incident_id),
        );
        let (route, _) = self.route_for(slot, incident_id);
        self.emit(
            now,
            Event::Assigned {
                incident_id,
                responder_id: id,
                role: AssignmentRole::Ambulance,
                eta_s: secs(eta_ms) as u32,
                route,
                reason,
            },
        );
    }

    /// Sends the waves decided during this call: jointly for emergencies in a surge, then one
    /// by one (most urgent first).
    fn run_dispatch(&mut self, now: Timestamp) {
        // Sending waves can free responders (surge re-assignment), which wakes waiting
        // incidents; a few rounds settle it. Waiting incidents also have retry timers, so
        // stopping after the cap loses nothing, and `pending` is empty between calls.
        for _ in 0..4 {
            if self.pending.is_empty() {
                break;
            }
            self.dispatch_round(now);
        }
        self.pending.clear();
    }

    fn dispatch_round(&mut self, now: Timestamp) {
        let pending: Vec<IncidentId> = std::mem::take(&mut self.pending)
            .into_iter()
            .filter(|i| {
                self.incidents.get(i).is_some_and(|inc| {
                    inc.status == IncidentStatus::Dispatching && !inc.has_community()
                })
            })
            .collect();
        let mut reserved = BTreeSet::new();
        let mut done = BTreeSet::new();
        if self.config.matching == MatchingMode::RoadEta {
            let surge = self.surge_set(&pending);
            let pending_emergencies = pending.iter().filter(|i| surge.contains(i)).count();
            if surge.len() >= 2 && pending_emergencies >= 1 {
                let (res, offered) = self.joint_round(now, &surge, &pending);
                reserved = res;
                done = offered;
            }
        }
        let mut order: Vec<IncidentId> = pending;
        order.sort_by_key(|i| (std::cmp::Reverse(self.incidents[i].priority), *i));
        for i in order {
            let already = usize::from(done.contains(&i));
            let inc = &self.incidents[&i];
            if inc.status == IncidentStatus::Dispatching && !inc.has_community() {
                self.send_wave(now, i, &reserved, already);
            }
        }
    }

    /// The most urgent of `ids` (highest priority, then oldest, then lowest id), at most
    /// `max` of them (at least one), in id order. Deterministic: a pure function of the state.
    fn most_urgent(&self, ids: impl Iterator<Item = IncidentId>, max: usize) -> Vec<IncidentId> {
        let mut keyed: Vec<_> = ids
            .filter_map(|i| self.incidents.get(&i))
            .map(|inc| (std::cmp::Reverse(inc.priority), inc.opened_at, inc.id))
            .collect();
        let max = max.max(1);
        if keyed.len() > max {
            keyed.select_nth_unstable(max - 1);
            keyed.truncate(max);
        }
        let mut out: Vec<IncidentId> = keyed.into_iter().map(|(_, _, id)| id).collect();
        out.sort_unstable();
        out
    }

    /// The emergencies of one joint round: waiting emergencies (dispatching, no community
    /// responder yet), at most `surge_max_incidents` of them: the pending ones first, then the
    /// most urgent others from the front of `waiting_emergencies` (closed history and
    /// assigned incidents are never visited). In id order.
    fn surge_set(&self, pending: &[IncidentId]) -> Vec<IncidentId> {
        let waiting_emergency = |i: &IncidentId| {
            #[cfg(test)]
            self.surge_scanned
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.incidents.get(i).is_some_and(|inc| {
                inc.plan == Plan::Emergency
                    && inc.status == IncidentStatus::Dispatching
                    && !inc.has_community()
            })
        };
        let max = self.config.surge_max_incidents.max(1);
        let mut surge = self.most_urgent(
            pending.iter().copied().filter(|i| waiting_emergency(i)),
            max,
        );
        if surge.len() < max {
            let taken: BTreeSet<IncidentId> = surge.iter().copied().collect();
            // The most urgent others, straight from the front of the ordered index.
            let others: Vec<IncidentId> = self
                .waiting_emergencies
                .iter()
                .map(|&(_, _, i)| i)
                .filter(|i| !taken.contains(i) && waiting_emergency(i))
                .take(max - surge.len())
                .collect();
            #[cfg(debug_assertions)]
            {
                // The index must give what a scan of every open incident gives (checked in
                // every debug build: the property tests run thousands of sequences).
                let scanned = self.most_urgent(
                    self.open_by_elder.values().copied().filter(|i| {
                        !taken.contains(i)
                            && self.incidents.get(i).is_some_and(is_waiting_emergency)
                    }),
                    max - surge.len(),
                );
                let mut got = others.clone();
                got.sort_unstable();
                assert_eq!(got, scanned, "waiting_emergencies out of step");
            }
            surge.extend(others);
            surge.sort_unstable();
        }
        surge
    }

    /// Joint assignment over (a bounded set of) waiting emergencies: each gets its best *primary* responder
    /// so that the total priority-weighted score is least, taking back open offers of other
    /// waiting emergencies where that serves better (`Reassigned`). Returns the primaries
    /// (reserved: other waves must not take them) and the pending incidents whose wave was
    /// started with their primary.
    fn joint_round(
        &mut self,
        now: Timestamp,
        surge: &[IncidentId],
        pending: &[IncidentId],
    ) -> (BTreeSet<u32>, BTreeSet<IncidentId>) {
        let offered: BTreeSet<u32> = surge
            .iter()
            .flat_map(|i| self.incidents[i].open_offers.iter())
            .filter_map(|o| self.slots.get(&self.offers[o].responder_id).copied())
            .collect();
        let k = self.config.surge_candidates.max(1);
        let margin = self.config.familiarity_margin_ms as i64;
        // A surge incident is ranked again in every round until someone accepts: its
        // walking sweep is worth keeping from the first round (then a ranking is lookups).
        for i in surge {
            let inc = &self.incidents[i];
            if let Some(t) = self.roads.place(TravelMode::Foot, inc.position) {
                self.roads.prepare_target(TravelMode::Foot, &t);
            }
        }
        let ranked: Vec<Vec<Ranked>> = surge
            .iter()
            .map(|&i| {
                // Responders holding an offer of *this* incident were already asked by it.
                self.rank_for(now, i, k, &offered, &BTreeSet::new())
                    .into_iter()
                    .chain(self.own_offers(i))
                    .collect()
            })
            .collect();
        let mut cols: Vec<u32> = ranked.iter().flatten().map(|r| r.slot).collect();
        cols.sort_unstable();
        cols.dedup();
        let costs: Vec<Vec<Option<u64>>> = surge
            .iter()
            .zip(&ranked)
            .map(|(i, rs)| {
                let w = u64::from(self.incidents[i].priority);
                cols.iter()
                    .map(|s| {
                        rs.iter()
                            .find(|r| r.slot == *s)
                            .map(|r| w * (r.score_ms + margin).max(0) as u64)
                    })
                    .collect()
            })
            .collect();
        let assignment = matching::assign_jointly(&costs);
        let (n_assigned, total) = matching::assignment_value(&costs, &assignment);
        let mut primaries = BTreeSet::new();
        let mut plan: Vec<(IncidentId, Ranked)> = Vec::new();
        for ((i, rs), a) in surge.iter().zip(&ranked).zip(&assignment) {
            if let Some(c) = a {
                let slot = cols[*c];
                primaries.insert(slot);
                let r = rs
                    .iter()
                    .find(|r| r.slot == slot)
                    .expect("cost came from this list")
                    .clone();
                plan.push((*i, r));
            }
        }
        // Phase 1: take back offers that the joint solution gives to another incident.
        for (i, r) in &plan {
            if let ResponderStatus::Offered {
                offer_id,
                incident_id,
            } = self.responders[r.slot as usize].status
            {
                if incident_id != *i {
                    self.withdraw(
                        now,
                        offer_id,
                        WithdrawReason::Reassigned,
                        ResponderStatus::Available,
                    );
                }
            }
        }
        // Phase 2: offer each primary to its incident (unless it already holds that offer).
        let mut started = BTreeSet::new();
        for (i, r) in &plan {
            if matches!(self.responders[r.slot as usize].status, ResponderStatus::Offered { incident_id, .. } if incident_id == *i)
            {
                continue;
            }
            let is_pending = pending.contains(i);
            let inc = self.incidents.get_mut(i).expect("surge incidents exist");
            if is_pending {
                inc.wave += 1;
                started.insert(*i);
            }
            let id = self.responders[r.slot as usize].record.id.clone();
            let mut reason = self.reason_for(
                r,
                &ranked[surge.iter().position(|x| x == i).expect("in surge")],
                0,
            );
            reason.push_str(&format!(
                "; surge of {} waiting emergencies: joint assignment gives {id} here (total weighted score {} s over {n_assigned} incidents)",
                surge.len(),
                secs(total)
            ));
            self.send_offer(now, *i, r, reason);
        }
        // Incidents that lost their only open offer and got no primary wait for the next try.
        for i in surge {
            let inc = &self.incidents[i];
            if inc.open_offers.is_empty() && !pending.contains(i) {
                self.pending.insert(*i);
            }
        }
        let again: Vec<IncidentId> = std::mem::take(&mut self.pending).into_iter().collect();
        for i in again {
            self.send_wave(now, i, &primaries, 0);
        }
        (primaries, started)
    }

    /// The responders holding open offers of `incident`, as ranked entries (their ETAs).
    fn own_offers(&self, incident_id: IncidentId) -> Vec<Ranked> {
        let inc = &self.incidents[&incident_id];
        inc.open_offers
            .iter()
            .filter_map(|o| {
                let offer = &self.offers[o];
                let slot = *self.slots.get(&offer.responder_id)?;
                let familiar = self.roster.elder(&inc.elder_id).and_then(|e| {
                    self.roster
                        .is_familiar(e, &self.responders[slot as usize].record)
                });
                let score_ms = offer.eta_ms as i64
                    - if familiar.is_some() {
                        self.config.familiarity_margin_ms as i64
                    } else {
                        0
                    };
                Some(Ranked {
                    slot,
                    eta_ms: offer.eta_ms,
                    score_ms,
                    familiar,
                    mode: self.responders[slot as usize].record.travel_mode,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    //! White-box checks that need the engine's private counters.
    use super::*;
    use crate::ids::{DeviceId, OperatorId};
    use crate::model::{AlertKind, Availability, ResponderKind, TravelMode};
    use crate::roster::{DeviceRecord, ElderRecord, GridRecord, OperatorRecord, ResponderRecord};

    fn centre() -> LatLon {
        LatLon::new(-30.03, -51.2).expect("valid")
    }

    fn at(dx: f64, dy: f64) -> LatLon {
        Projection::new(centre()).to_latlon([dx, dy])
    }

    fn engine() -> Engine {
        let roster = RosterFile {
            grids: vec![GridRecord {
                id: "G1".into(),
                name: String::new(),
            }],
            responders: vec![ResponderRecord {
                id: "V1".into(),
                kind: ResponderKind::Volunteer,
                travel_mode: TravelMode::Foot,
                walk_kmh: None,
                home: at(50.0, 0.0),
                grid_id: None,
                skills: Vec::new(),
                token_sha256: None,
            }],
            elders: (0..3)
                .map(|k| ElderRecord {
                    id: format!("E{k}").into(),
                    home: at(100.0 * k as f64, 0.0),
                    grid_id: "G1".into(),
                    care_level: 2,
                    paired_responders: Vec::new(),
                    family: Vec::new(),
                })
                .collect(),
            operators: vec![OperatorRecord {
                id: "OP1".into(),
                token_sha256: "a".repeat(64),
            }],
            devices: vec![DeviceRecord {
                id: "GW1".into(),
                token_sha256: "b".repeat(64),
            }],
        };
        let roads: Arc<dyn TravelTimes> = Arc::new(matching::StraightLine::new(centre(), 20_000.0));
        let mut e =
            Engine::with_travel_times(roads, roster, PolicyConfig::default()).expect("roster");
        e.handle_command(
            Timestamp(1_000),
            Command::SetAvailability {
                responder_id: "V1".into(),
                status: Availability::Available,
            },
        )
        .expect("on duty");
        e
    }

    fn fall(n: usize, elder: usize) -> Command {
        Command::Alert(Alert {
            alert_id: AlertId::from(format!("a{n}")),
            kind: AlertKind::Fall,
            service: None,
            elder_id: format!("E{elder}").into(),
            position: None,
            detected_at: Timestamp(0),
            ambulance_requested: false,
            scheduled_for: None,
            device_id: DeviceId::from("GW1"),
        })
    }

    /// Incidents visited to find surges while two falls compete for one volunteer, after
    /// `history` incidents were opened and cancelled.
    fn surge_cost_after(history: usize) -> u64 {
        let mut e = engine();
        let mut now = Timestamp(2_000);
        for n in 0..history {
            let reply = e.handle_command(now, fall(n, 0)).expect("alert");
            let Reply::AlertAccepted { incident_id, .. } = reply else {
                panic!("{reply:?}");
            };
            e.handle_command(
                now,
                Command::Cancel {
                    operator_id: OperatorId::from("OP1"),
                    incident_id,
                    reason: "drill".into(),
                },
            )
            .expect("cancel");
            now = now.plus_ms(10);
        }
        assert_eq!(e.incidents.len(), history, "history is kept");
        assert!(e.open_by_elder.is_empty(), "and all of it is closed");
        let before = e.surge_scanned.load(std::sync::atomic::Ordering::Relaxed);
        e.handle_command(now, fall(history, 1)).expect("alert");
        e.handle_command(now.plus_ms(10), fall(history + 1, 2))
            .expect("alert");
        e.surge_scanned.load(std::sync::atomic::Ordering::Relaxed) - before
    }

    #[test]
    fn finding_a_surge_does_not_revisit_closed_incidents() {
        let fresh = surge_cost_after(0);
        assert!(fresh > 0, "the surge path ran");
        assert_eq!(surge_cost_after(300), fresh, "history changed the cost");
    }
}
