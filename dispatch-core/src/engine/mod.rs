//! The sans-IO façade: `handle_command(now, cmd)` / `handle_timeout(now)` in,
//! `poll_event()` / `poll_timeout()` out. It owns all dispatch state; it reads no clock and
//! does no I/O, so the server, the simulator and journal replay drive the same code.
//!
//! Every handler validates completely before it changes anything, so an `Err` leaves the
//! engine exactly as it was (no event, no sequence number consumed). Decisions iterate only
//! ordered collections (`BTreeMap`, `BTreeSet`, sorted vectors), so the same commands at the
//! same times always give the same events.
//!
//! This file holds the owner ([`Engine`], its saved form [`EngineState`]), the constructors
//! and the façade. Three kinds of method exist, in the manner of quinn-proto's `connection/`:
//!
//! - the **façade** (`pub`, here and in the view files): commands and timeouts in, events,
//!   deadlines and read-only views out;
//! - **use cases** (`pub(super)` methods on `Engine`), each in a file named for what it does;
//!   they may touch any part of the engine, but only through the rooms' methods;
//! - **rooms**: types that own one part of the state and keep its invariants by construction
//!   (their fields are private to their file; callers get `&` access and mutating methods
//!   that keep the derived indexes in step).
//!
//! | room | state | keeps |
//! | --- | --- | --- |
//! | `Responders` (`responders.rs`) | responder states by slot, id → slot, the R-tree, the snap cache, grid workers by grid | only `available` responders are in the R-tree; a status changes only in `Responders::set_status` |
//! | `Incidents` (`incidents.rs`) | incidents, alert → incident, elder → open incident, the closed queue, the urgency index | an incident changes only in `Incidents::update` (or `open`, `join`, `close`), which moves it in or out of the urgency index of waiting emergencies |
//! | `Offers` (`offers.rs`) | every offer, the next offer id | ids minted in order; an offer is settled (accepted, declined, expired, withdrawn) once, from open |
//!
//! The rest (retry waits, timers, time bank, counters, pending events and dispatches) is
//! held by `Engine` itself.
//!
//! | file | what |
//! | --- | --- |
//! | `intake.rs` | an alert opens or joins an incident (or goes to the operators); a device cancels its alert |
//! | `legacy.rs` | the rules of earlier decision versions, for replaying their journal tails |
//! | `ranking.rs` | who may be offered an incident, ranked by road ETA; the reason texts |
//! | `waves.rs` | dispatch rounds: waves of offers, the ambulance track |
//! | `surge.rs` | joint assignment when several emergencies wait at once |
//! | `kept.rs` | waiting emergencies' rankings kept between surge rounds while nothing they read changed |
//! | `offers.rs` | the `Offers` room; accept, decline, withdraw; an operator assigns by hand |
//! | `lifecycle.rs` | arrival, completion, closing, forgetting closed incidents |
//! | `responders.rs` | the `Responders` room; locations, availability, roster edits; every status change |
//! | `incidents.rs` | the `Incidents` room; urgency order, what a waiting emergency is |
//! | `timers.rs` | the [`Timer`]s and what each does when it fires |
//! | `care.rs` | the `Care` room (care-plan occurrences); opening each window's job, outcomes, the compliance report |
//! | `check_ins.rs` | elders' check-in schedules: a welfare visit when the daily check-in does not come |
//! | `roads.rs` | the `Closures` room; road closures and slowdowns laid over the travel times for their window |
//! | `views.rs`, `console_views.rs` | the read side: snapshots, timelines, clocks, candidates |
//! | `coverage.rs` | what live coverage reads of the engine: the responders an emergency could be offered to now, the elders |
//!
//! Methods the use-case files share are `pub(super)`; nothing outside `engine` reaches in.

use crate::command::{Alert, Command, Reply};
use crate::error::CommandError;
use crate::event::{Event, EventRecord, RosterChange, RosterEntry, WithdrawReason};
use crate::geo::{LatLon, Projection};
use crate::ids::{AlertId, ElderId, IncidentId, OfferId, ResponderId};
use crate::incident::{AlertRef, Incident, IncidentStatus, NeedsOperator, Offer, OfferStatus};
use crate::journal::ROSTER_EVENTS_SINCE;
use crate::matching::{
    self, CandidateInfo, Forced, Placed, RankQuery, Ranked, RoadTimes, TravelTimes,
};
use crate::model::{
    Actor, AlertKind, AssignmentRole, Availability, ResponderKind, ServiceKind, Sla, TravelMode,
};
use crate::policy::{MatchingMode, Plan, PolicyConfig};
use crate::responder::{ResponderState, ResponderStatus};
use crate::road::RoadNetwork;
use crate::roster::{change_of, Roster, RosterError, RosterFile};
use crate::spatial::{needs_reindex, tree_of, ResponderIndex};
use crate::time::Timestamp;
use crate::timebank::{RedeemError, RedemptionRequest, TimeBank, TimeBankView};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

mod care;
mod check_ins;
mod console_views;
mod coverage;
mod incidents;
mod intake;
mod kept;
mod legacy;
mod lifecycle;
mod offers;
mod ranking;
mod responders;
use responders::GridWorker;
mod roads;
mod surge;
mod timers;
mod views;
mod waves;

pub use crate::ids::IdHasher;
pub use care::CARE_PLAN_DEVICE;
pub use check_ins::CHECK_IN_DEVICE;
pub use console_views::{Candidate, ElderView, SlaClock, SlaDurations, MAX_CANDIDATES};
use incidents::{is_waiting_emergency, Incidents};
pub use timers::Timer;
pub use views::{IncidentSummary, IncidentView, ResponderView, SnapshotView};

/// Everything but the road network, for snapshots (team journal). `restore` rebuilds the
/// derived indexes (R-trees, id lookups) from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    pub roster: RosterFile,
    pub responders: Vec<ResponderState>,
    /// Shared with the engine until either changes one (the same JSON as plain incidents).
    pub incidents: BTreeMap<IncidentId, std::sync::Arc<Incident>>,
    pub offers: BTreeMap<OfferId, Offer>,
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
    /// Care-plan occurrences (absent in snapshots from before care plans).
    #[serde(default)]
    pub care: crate::care_plan::CareBook,
    /// When each elder last checked in (absent in snapshots from before check-in schedules).
    #[serde(default)]
    pub check_ins: BTreeMap<ElderId, Timestamp>,
    /// Road closures laid (absent in snapshots from before road closures).
    #[serde(default)]
    pub closures: Vec<crate::closures::LaidClosure>,
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
    /// The responders room: live states, id lookup, R-tree of the available (`responders.rs`).
    responders: responders::Responders,
    /// The incidents room: incidents, their alert and elder lookups, the closed queue and
    /// the urgency index of waiting emergencies (`incidents.rs`).
    incidents: Incidents,
    /// The offers room: every offer, and offer id minting (`offers.rs`).
    offers: offers::Offers,
    /// Dispatching incidents with nobody asked right now, and when their retry fires. A retry
    /// timer is cancelled as soon as its incident stops waiting. A fruitless retry re-arms
    /// without an event, so a replay must make every timeout call (the journal keeps them all).
    waiting: BTreeMap<IncidentId, Timestamp>,
    timers: timers::TimerTable,
    time_bank: TimeBank,
    /// The care room: care-plan occurrences and their jobs (`care.rs`).
    care: care::Care,
    /// When each elder last checked in (`check_ins.rs`).
    check_ins: BTreeMap<ElderId, Timestamp>,
    /// The closures room: road closures laid and the segments each covers (`roads.rs`).
    closures: roads::Closures,
    next_incident: u64,
    seq: u64,
    events: VecDeque<EventRecord>,
    /// Incidents that need a wave at the end of the current call (empty between calls), or,
    /// with batched dispatch, at the next `handle_timeout` (due at `dispatch_due`).
    pending: BTreeSet<IncidentId>,
    dispatch_due: Option<Timestamp>,
    /// The decision version whose rules decide the next input: always
    /// `journal::DECISION_VERSION`, except while journal replay feeds records an earlier
    /// release decided (`legacy.rs`). Not saved.
    rules: u32,
    /// Bumped by every change of an elder, for live coverage (`coverage.rs`). Not saved.
    elders_version: u64,
    /// Waiting emergencies' rankings kept between surge rounds (`kept.rs`). Not saved: a
    /// cache that never changes a decision.
    kept: BTreeMap<IncidentId, kept::Kept>,
    /// Test-only count of incidents visited to find surges (history must not add to it).
    #[cfg(test)]
    surge_scanned: std::sync::atomic::AtomicU64,
    /// Test-only count of kept rankings used (`kept.rs`).
    #[cfg(test)]
    kept_used: Vec<IncidentId>,
    /// Test-only list of waves completed from a kept ranking (`Engine::kept_wave`).
    #[cfg(test)]
    kept_wave_used: Vec<IncidentId>,
}

/// `Engine` is moved into the server's engine task and may be shared behind a lock.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Engine>();
};

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
        e @ RosterError::LastPeopleOperator(_) => CommandError::LastPeopleOperator(e.to_string()),
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
        let times = RoadTimes::new(roads, config.foot_profile_kmh);
        Engine::with_travel_times(Arc::new(times), roster, config)
    }

    /// Rebuilds an engine from `save_state` over the road network.
    pub fn restore(roads: Arc<RoadNetwork>, config: PolicyConfig, state: EngineState) -> Engine {
        let times = RoadTimes::new(roads, config.foot_profile_kmh);
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
        let has_plans = roster
            .elders()
            .any(|e| !e.care_plan.is_empty() || e.check_in_by.is_some());
        let responders: Vec<ResponderState> = roster
            .responders()
            .map(|r| ResponderState::new(r.clone(), projection.to_xy(r.home)))
            .collect();
        let state = EngineState {
            roster: roster.to_file(),
            responders,
            incidents: BTreeMap::new(),
            offers: BTreeMap::new(),
            waiting: BTreeMap::new(),
            timers: Vec::new(),
            time_bank: TimeBank::default(),
            next_incident: 1,
            next_offer: 1,
            seq: 0,
            pending_events: Vec::new(),
            pending_dispatch: Vec::new(),
            dispatch_due: None,
            care: crate::care_plan::CareBook {
                unsynced: has_plans,
                ..Default::default()
            },
            check_ins: BTreeMap::new(),
            closures: Vec::new(),
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
        let net = roads.road_network();
        let mut engine = Engine {
            projection: roads.projection(),
            roads,
            config,
            roster,
            responders: responders::Responders::from_saved(state.responders),
            incidents: Incidents::from_saved(state.incidents),
            offers: offers::Offers::from_saved(state.offers, state.next_offer),
            waiting: state.waiting,
            timers: timers::TimerTable::from_saved(state.timers),
            time_bank: state.time_bank,
            care: care::Care::from_saved(state.care),
            check_ins: state.check_ins,
            closures: roads::Closures::from_saved(state.closures, net.as_deref()),
            next_incident: state.next_incident,
            seq: state.seq,
            events: state.pending_events.into(),
            pending: state.pending_dispatch.into_iter().collect(),
            dispatch_due: state.dispatch_due,
            rules: crate::journal::DECISION_VERSION,
            elders_version: 1,
            kept: BTreeMap::new(),
            #[cfg(test)]
            surge_scanned: std::sync::atomic::AtomicU64::new(0),
            #[cfg(test)]
            kept_used: Vec::new(),
            #[cfg(test)]
            kept_wave_used: Vec::new(),
        };
        // Lays the saved closures, or none: travel times never keep an earlier engine's.
        engine.lay_closures();
        engine
    }

    /// Everything but the road network.
    pub fn save_state(&self) -> EngineState {
        EngineState {
            roster: self.roster.to_file(),
            responders: self.responders.to_saved(),
            incidents: self.incidents.all().clone(),
            offers: self.offers.all().clone(),
            waiting: self.waiting.clone(),
            timers: self.timers.to_vec(),
            time_bank: self.time_bank.clone(),
            next_incident: self.next_incident,
            next_offer: self.offers.next_id(),
            seq: self.seq,
            pending_events: self.events.iter().cloned().collect(),
            pending_dispatch: self.pending.iter().copied().collect(),
            dispatch_due: self.dispatch_due,
            care: self.care.to_saved(),
            check_ins: self.check_ins.clone(),
            closures: self.closures.to_saved(),
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
        if self.care.needs_sync() {
            // A new engine's care plans are scheduled on its first call: now.
            return Some(Timestamp(i64::MIN));
        }
        let timer = self.timers.next();
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

    // ------------------------------------------------------------------ write side

    /// Applies one command. `Err` changes nothing.
    pub fn handle_command(&mut self, now: Timestamp, cmd: Command) -> Result<Reply, CommandError> {
        self.forget_kept_before(&cmd);
        self.forget_closed(now);
        self.care_sync_all(now);
        // An elder's record carries their care plan: reschedule it once the change is in.
        let care_of = match &cmd {
            Command::UpsertElder { elder, .. } => Some(elder.id.clone()),
            Command::RetireElder { elder_id, .. } => Some(elder_id.clone()),
            _ => None,
        };
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
                self.check_ins.insert(elder_id.clone(), now);
                // A late check-in answers the missed one: a welfare visit nobody has reached
                // yet is called off (its offers withdrawn, its visitor released). Emergencies
                // are never closed by a check-in, and a visitor already at the door finishes.
                let visits: Vec<IncidentId> = self
                    .incidents
                    .open_of(&elder_id)
                    .filter(|i| {
                        let inc = &self.incidents[i];
                        inc.plan == Plan::WelfareVisit && inc.arrived.is_empty()
                    })
                    .collect();
                self.emit(
                    now,
                    Event::CheckedIn {
                        elder_id: elder_id.clone(),
                    },
                );
                for incident_id in visits {
                    self.close(
                        now,
                        incident_id,
                        IncidentStatus::Cancelled,
                        Actor::Device(device_id.clone()),
                        format!("{elder_id} checked in: the welfare visit is not needed"),
                    );
                }
                Reply::Done
            }
            Command::SetAvailability {
                responder_id,
                status,
            } => self.set_availability(now, &responder_id, status)?,
            Command::Presence {
                responder_id,
                session,
                online,
            } => self.presence(now, &responder_id, session, online)?,
            Command::SessionsReset => {
                self.sessions_reset(now);
                Reply::Done
            }
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
                if self.responders[slot].status.incident() != Some(incident_id) {
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
                let id = grid.id.to_string();
                let change = change_of(self.roster.grid(&grid.id), &grid);
                self.roster
                    .upsert_grid(grid)
                    .map_err(roster_to_command_error)?;
                self.roster_changed(now, by, RosterEntry::Grid, id, change);
                Reply::Done
            }
            Command::UpsertResponder { by, responder } => {
                self.check_actor(&by)?;
                let id = responder.id.to_string();
                let change = change_of(self.roster.responder(&responder.id), &responder);
                let reply = self.upsert_responder(responder)?;
                self.roster_changed(now, by, RosterEntry::Responder, id, change);
                reply
            }
            Command::RetireResponder { by, responder_id } => {
                self.check_actor(&by)?;
                let reply = self.retire_responder(now, &responder_id)?;
                let id = responder_id.to_string();
                self.roster_changed(now, by, RosterEntry::Responder, id, RosterChange::Retired);
                reply
            }
            Command::UpsertElder { by, elder } => {
                self.check_actor(&by)?;
                let id = elder.id.to_string();
                let change = change_of(self.roster.elder(&elder.id), &elder);
                let roads = self.roads.clone();
                let on_map = |p: LatLon| roads.check_on_map(p);
                self.roster
                    .upsert_elder(elder, &on_map)
                    .map_err(roster_to_command_error)?;
                self.elders_version += 1;
                self.roster_changed(now, by, RosterEntry::Elder, id, change);
                Reply::Done
            }
            Command::RetireElder { by, elder_id } => {
                self.check_actor(&by)?;
                if self.roster.elder(&elder_id).is_none() {
                    return Err(CommandError::UnknownElder(elder_id));
                }
                if let Some(i) = self.incidents.open_of(&elder_id).next() {
                    return Err(CommandError::Invalid(format!(
                        "elder {elder_id} has open incident {i}"
                    )));
                }
                self.roster
                    .retire_elder(&elder_id)
                    .map_err(roster_to_command_error)?;
                self.elders_version += 1;
                let id = elder_id.to_string();
                self.roster_changed(now, by, RosterEntry::Elder, id, RosterChange::Retired);
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
                let id = grid_id.to_string();
                self.roster_changed(now, by, RosterEntry::Grid, id, RosterChange::Retired);
                Reply::Done
            }
            Command::UpsertOperator { by, operator } => {
                self.check_actor(&by)?;
                let id = operator.id.to_string();
                let change = change_of(self.roster.operator(&operator.id), &operator);
                self.roster
                    .upsert_operator(operator)
                    .map_err(roster_to_command_error)?;
                self.roster_changed(now, by, RosterEntry::Operator, id, change);
                Reply::Done
            }
            Command::RetireOperator { by, operator_id } => {
                self.check_actor(&by)?;
                self.roster
                    .retire_operator(&operator_id)
                    .map_err(roster_to_command_error)?;
                let id = operator_id.to_string();
                self.roster_changed(now, by, RosterEntry::Operator, id, RosterChange::Retired);
                Reply::Done
            }
            Command::UpsertDevice { by, device } => {
                self.check_actor(&by)?;
                let id = device.id.to_string();
                let change = change_of(self.roster.device(&device.id), &device);
                self.roster
                    .upsert_device(device)
                    .map_err(roster_to_command_error)?;
                self.roster_changed(now, by, RosterEntry::Device, id, change);
                Reply::Done
            }
            Command::RetireDevice { by, device_id } => {
                self.check_actor(&by)?;
                self.roster
                    .retire_device(&device_id)
                    .map_err(roster_to_command_error)?;
                let id = device_id.to_string();
                self.roster_changed(now, by, RosterEntry::Device, id, RosterChange::Retired);
                Reply::Done
            }
            Command::CloseRoad { by, closure } => self.close_road(now, by, closure)?,
            Command::ReopenRoad { by, closure_id } => self.reopen_road(now, by, closure_id)?,
            Command::RedeemTimeBank {
                by,
                responder_id,
                minutes,
                note,
                override_negative,
            } => {
                let Actor::Operator(by) = by else {
                    return Err(CommandError::Invalid(format!(
                        "{by:?} may not redeem time-bank minutes"
                    )));
                };
                self.check_operator(&by)?;
                self.slot(&responder_id)?;
                let req = RedemptionRequest {
                    minutes,
                    note,
                    by,
                    override_negative,
                };
                let entry =
                    self.time_bank
                        .redeem(&responder_id, now, req)
                        .map_err(|e| match e {
                            RedeemError::BadField(m) => CommandError::Invalid(m),
                            e @ RedeemError::Insufficient { .. } => {
                                CommandError::InsufficientBalance {
                                    responder: responder_id.clone(),
                                    detail: e.to_string(),
                                }
                            }
                        })?;
                if self.rules >= ROSTER_EVENTS_SINCE {
                    self.emit(
                        now,
                        Event::TimeBankRedeemed {
                            responder_id,
                            entry: entry.clone(),
                        },
                    );
                }
                Reply::TimeBankRedeemed { entry }
            }
        };
        if let Some(elder_id) = care_of {
            self.care_sync_elder(now, &elder_id);
            self.check_in_sync_elder(now, &elder_id);
        }
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
        self.care_sync_all(now);
        while let Some((at, timer)) = self.timers.pop_due(now) {
            self.fire(now, at, timer);
        }
        self.dispatch_due = None;
        self.run_dispatch(now);
    }

    fn emit(&mut self, now: Timestamp, event: Event) {
        self.seq += 1;
        let rec = EventRecord {
            seq: self.seq,
            at: now,
            event,
        };
        if let Some(id) = rec.event.incident_id() {
            self.incidents.update(id, |i| i.timeline.push(rec.clone()));
        }
        self.events.push_back(rec);
    }

    /// Tells the operators that a roster entry changed (decision version 4 on).
    fn roster_changed(
        &mut self,
        now: Timestamp,
        by: Actor,
        entry: RosterEntry,
        id: String,
        change: RosterChange,
    ) {
        if self.rules >= ROSTER_EVENTS_SINCE {
            self.emit(
                now,
                Event::RosterChanged {
                    entry,
                    id,
                    change,
                    by,
                },
            );
        }
    }

    fn slot(&self, id: &ResponderId) -> Result<u32, CommandError> {
        match self.responders.slot_of(id) {
            Some(s) if !self.responders[s].retired => Ok(s),
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
}

#[cfg(test)]
mod tests;
