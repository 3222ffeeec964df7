//! The people around the engine in a virtual-time run: devices that send the scheduled alerts
//! (and sometimes "I'm OK"), responders who answer offers, travel, arrive and complete.
//!
//! Every random choice about a responder and an incident is drawn from a generator keyed by
//! (seed, responder, alert, how many times this responder was offered it), not from one shared
//! stream. So two policies run on the same scenario meet the *same* people behaving the *same*
//! way: if V00042 accepts alert AL000017 after 12 s under one policy, she does under the other.

use crate::scenario::{Scenario, ScheduledAlert};
use crate::virtual_clock::{Agenda, World};
use dispatch_core::command::{Command, Reply};
use dispatch_core::error::CommandError;
use dispatch_core::event::{Event, EventRecord};
use dispatch_core::geo::{haversine_m, LatLon};
use dispatch_core::ids::{AlertId, IncidentId, OfferId, ResponderId};
use dispatch_core::model::{AlertKind, AssignmentRole, ServiceKind};
use dispatch_core::time::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// How responders behave. Shares and ranges are assumptions (docs/simulator.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BehaviourParams {
    /// Chance a responder accepts an offer; `decline_share` declines; the rest stay silent and
    /// let the offer expire (phone in a pocket).
    pub accept_share: f64,
    pub decline_share: f64,
    /// Seconds from offer to accept, uniform in the range.
    pub accept_delay_s: (f64, f64),
    pub decline_delay_s: (f64, f64),
    /// Real travel time over the engine's ETA, uniform in the range (traffic lights, stairs,
    /// finding the door).
    pub pace_factor: (f64, f64),
    /// Minutes on scene before `complete`, uniform, by kind.
    pub emergency_service_min: (f64, f64),
    pub help_service_min: (f64, f64),
    pub welfare_visit_min: (f64, f64),
    /// A moving responder's phone reports its position this often.
    pub location_interval_s: f64,
    /// An idle responder's phone reports its position this often (keeps it fresh for ranking).
    pub idle_ping_s: f64,
    /// `accept_share` is multiplied by these at night (00–07), by day (07–16) and in the
    /// evening (16–24), virtual time (the run starts at midnight). A share that would pass
    /// 1 − `decline_share` is capped there.
    pub accept_by_hour: [f64; 3],
    /// The share of volunteers on duty at night (00–07), by day (07–16) and in the evening
    /// (16–24). Each volunteer's duty is drawn per day and period from the run's seed; a
    /// volunteer due off duty while on a job goes off when it is done. Everyone else (grid
    /// workers, ambulances, service staff, kin) stays on duty all day.
    pub on_duty_by_hour: [f64; 3],
    /// Each volunteer's own willingness (`--propensity`): absent, every volunteer accepts
    /// with the same chance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propensity: Option<Propensity>,
}

/// Volunteers who differ: whether a volunteer ignores an alert is predictable from their
/// history (Khalemsky et al., JMIR mHealth uHealth 2023: 79 % of ignored alerts predicted),
/// so some answer most alerts and many rarely do. Each volunteer draws a propensity
/// `p ~ Beta(alpha, beta)` once per seed, a `dormant_share` of them 0; `beta` is chosen so
/// that the mean over all volunteers is the preset's `accept_share` (the published
/// averages stay as they are). The shape is an assumption (docs/research/
/// volunteer-behaviour.md, "Per-volunteer heterogeneity").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Propensity {
    pub alpha: f64,
    pub dormant_share: f64,
}

impl Propensity {
    /// The research note's suggestion: J-shaped (`alpha` < 1: many near 0, a tail of
    /// frequent responders), 10 % dormant.
    pub const RESEARCH: Propensity = Propensity {
        alpha: 0.8,
        dormant_share: 0.10,
    };

    /// Volunteer `id`'s propensity for a population whose mean is `mean` (the same in every
    /// run of `seed`).
    pub fn draw(&self, seed: u64, id: &ResponderId, mean: f64) -> f64 {
        let mut rng = keyed_rng(seed, &[b"propensity", id.as_str().as_bytes()]);
        if rng.random::<f64>() < self.dormant_share {
            return 0.0;
        }
        // The awake carry the whole mean.
        let m = (mean / (1.0 - self.dormant_share).max(1e-9)).clamp(1e-6, 1.0 - 1e-6);
        let beta = self.alpha * (1.0 - m) / m;
        match rand_distr::Beta::new(self.alpha, beta) {
            Ok(d) => rng.sample(d),
            Err(_) => m,
        }
    }
}

impl Default for BehaviourParams {
    fn default() -> Self {
        BehaviourParams {
            accept_share: 0.6,
            decline_share: 0.25,
            accept_delay_s: (5.0, 25.0),
            decline_delay_s: (3.0, 15.0),
            pace_factor: (1.0, 1.2),
            emergency_service_min: (15.0, 45.0),
            help_service_min: (30.0, 90.0),
            welfare_visit_min: (10.0, 20.0),
            location_interval_s: 30.0,
            idle_ping_s: 240.0,
            accept_by_hour: [1.0; 3],
            on_duty_by_hour: [1.0; 3],
            propensity: None,
        }
    }
}

/// The behaviour presets `--behaviour` names (docs/simulator.md, "Behaviour presets").
pub const PRESETS: [&str; 3] = ["optimistic", "scquizzato2020", "mottlau2022"];

impl BehaviourParams {
    /// A named preset: `optimistic` (the default above: 60 % accept within 5–25 s, all day),
    /// or `scquizzato2020`, volunteers as published programmes report them (every figure and
    /// its source in docs/simulator.md and docs/research/volunteer-behaviour.md): 28.7 % of
    /// alerts accepted (the median over 12 systems, Scquizzato et al., Resuscitation 2020),
    /// half that at night and 1.3 times by evening (the Danish day/evening/night acceptors
    /// per arrest, 3.7 / 4.8 / 1.8), 40 % of the others declining and the rest silent (an
    /// assumption: no split is published), accepting 10–70 s after the alert (median 40 s,
    /// sized so that alert to leaving home is about the published 1:45 median with the
    /// walk out of the door). `mottlau2022`: the same day's shape as people going on and off
    /// duty instead of a willingness that changes by the hour (the Danish acceptors per
    /// arrest, Mottlau et al. 2022): 30 % of volunteers on duty at night, 60 % by day, 78 % in
    /// the evening, and those on duty accepting 40 % of offers (declining 24 %, silent for
    /// the rest), so that by day 0.60 × 0.40 = 24 % of all volunteers would accept, as
    /// published (docs/research/volunteer-behaviour.md, 2.6: the split is a modelling
    /// choice).
    pub fn preset(name: &str) -> Option<BehaviourParams> {
        match name {
            "optimistic" => Some(BehaviourParams::default()),
            "scquizzato2020" => Some(BehaviourParams {
                accept_share: 0.287,
                decline_share: 0.285,
                accept_delay_s: (10.0, 70.0),
                decline_delay_s: (5.0, 40.0),
                accept_by_hour: [0.49, 1.0, 1.30],
                ..BehaviourParams::default()
            }),
            "mottlau2022" => Some(BehaviourParams {
                accept_share: 0.40,
                decline_share: 0.24,
                accept_delay_s: (10.0, 70.0),
                decline_delay_s: (5.0, 40.0),
                on_duty_by_hour: [0.30, 0.60, 0.78],
                ..BehaviourParams::default()
            }),
            _ => None,
        }
    }

    /// The accept share at `now` (virtual time).
    pub fn accept_share_at(&self, now: Timestamp) -> f64 {
        let m = self.accept_by_hour[period_of(now)];
        (self.accept_share * m).clamp(0.0, (1.0 - self.decline_share).max(0.0))
    }

    /// The chances that a responder of propensity `own` (None: the average responder)
    /// accepts and declines an offer at `now`. With a propensity, the hour's multiplier
    /// scales it and those who do not accept decline and stay silent in the preset's ratio.
    pub fn answer_shares(&self, now: Timestamp, own: Option<f64>) -> (f64, f64) {
        match own {
            None => (self.accept_share_at(now), self.decline_share),
            Some(p) => {
                let accept = (p * self.accept_by_hour[period_of(now)]).clamp(0.0, 0.98);
                let rest = (1.0 - self.accept_share).max(1e-9);
                let decline = (1.0 - accept) * (self.decline_share / rest).min(1.0);
                (accept, decline)
            }
        }
    }

    /// Whether volunteer `id` is on duty in the period holding `at` (drawn from `seed`, the
    /// day and the period: the same in every run of that seed).
    pub fn on_duty(&self, seed: u64, id: &ResponderId, at: Timestamp) -> bool {
        let share = self.on_duty_by_hour[period_of(at)];
        if share >= 1.0 {
            return true;
        }
        let day = at.0.div_euclid(DAY_MS).to_le_bytes();
        let period = [period_of(at) as u8];
        let mut rng = keyed_rng(seed, &[b"duty", id.as_str().as_bytes(), &day, &period]);
        rng.random::<f64>() < share
    }
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Where the periods begin, in hours of the day.
const PERIOD_STARTS_H: [i64; 3] = [0, 7, 16];

/// The period of the day holding `at`: 0 night (00–07), 1 day (07–16), 2 evening (16–24).
fn period_of(at: Timestamp) -> usize {
    let hour = (at.0 / HOUR_MS).rem_euclid(24);
    PERIOD_STARTS_H
        .iter()
        .rposition(|&h| hour >= h)
        .unwrap_or(0)
}

/// The period boundaries after `from` up to `to` (virtual time).
fn period_starts(from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
    let mut out = Vec::new();
    let mut day = from.0.div_euclid(DAY_MS);
    loop {
        for h in PERIOD_STARTS_H {
            let t = Timestamp(day * DAY_MS + h * HOUR_MS);
            if t > to {
                return out;
            }
            if t > from {
                out.push(t);
            }
        }
        day += 1;
    }
}

impl BehaviourParams {
    /// The range of minutes on scene for an incident of this kind and service.
    pub fn service_min(&self, kind: AlertKind, service: Option<ServiceKind>) -> (f64, f64) {
        match (kind, service) {
            (AlertKind::Fall, _) | (AlertKind::Help, None | Some(ServiceKind::Rescue)) => {
                self.emergency_service_min
            }
            (AlertKind::Help, _) => self.help_service_min,
            // A care-plan visit takes as long as a welfare visit.
            (AlertKind::CheckInMissed | AlertKind::CarePlan, _) => self.welfare_visit_min,
        }
    }
}

/// FNV-1a over the parts, a stable hash (std's hasher may change between releases).
fn stable_seed(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The generator for one keyed decision.
pub fn keyed_rng(seed: u64, parts: &[&[u8]]) -> ChaCha8Rng {
    let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
    let seed_bytes = seed.to_le_bytes();
    all.push(&seed_bytes);
    all.extend_from_slice(parts);
    ChaCha8Rng::seed_from_u64(stable_seed(&all))
}

/// A uniform draw in `[lo, hi)` (`lo` when the range is empty).
pub fn uniform(rng: &mut ChaCha8Rng, (lo, hi): (f64, f64)) -> f64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

fn secs_ms(s: f64) -> u64 {
    (s * 1000.0).round().max(0.0) as u64
}

/// Things that will happen.
#[derive(Debug, Clone)]
enum Action {
    OnDuty {
        responder: usize,
    },
    /// A volunteer's duty changes at a period's start.
    Duty {
        responder: usize,
        on: bool,
    },
    Alert(usize),
    CancelAlert(usize),
    Reply {
        responder: usize,
        offer_id: OfferId,
        accept: bool,
    },
    Move {
        responder: usize,
        trip: u64,
        position: LatLon,
    },
    Arrive {
        responder: usize,
        trip: u64,
        incident_id: IncidentId,
    },
    Complete {
        responder: usize,
        trip: u64,
        incident_id: IncidentId,
    },
    Ping {
        responder: usize,
    },
}

#[derive(Debug, Clone)]
struct Responder {
    id: ResponderId,
    position: LatLon,
    /// Bumped whenever a trip starts or is abandoned, so stale moves are skipped.
    trip: u64,
    incident: Option<IncidentId>,
    /// Due off duty while on a job: goes off when it is done.
    off_after_job: bool,
}

#[derive(Debug, Clone)]
struct IncidentInfo {
    alert: usize,
    service_min: (f64, f64),
}

/// The simulated people of one run.
#[derive(Debug)]
pub struct SimWorld {
    seed: u64,
    behaviour: BehaviourParams,
    alerts: Vec<ScheduledAlert>,
    alert_index: HashMap<AlertId, usize>,
    responders: Vec<Responder>,
    responder_index: HashMap<ResponderId, usize>,
    /// Each volunteer's own propensity (`--propensity`), by responder index.
    propensity: Vec<Option<f64>>,
    agenda: Agenda<Action>,
    incidents: HashMap<IncidentId, IncidentInfo>,
    open_incidents: usize,
    open_offers: HashMap<OfferId, usize>,
    offers_seen: HashMap<(usize, IncidentId), u32>,
    alerts_end: Timestamp,
    /// Refusals by the engine's error code (some are honest races, e.g. a reply crossing an
    /// expiry; they are reported, not hidden).
    pub refusals: BTreeMap<String, u64>,
}

impl SimWorld {
    pub fn new(scenario: &Scenario, behaviour: &BehaviourParams) -> SimWorld {
        let mut agenda = Agenda::default();
        for (i, a) in scenario.alerts.iter().enumerate() {
            agenda.push(a.at, Action::Alert(i));
            if let Some(c) = a.cancel_at {
                agenda.push(c, Action::CancelAlert(i));
            }
        }
        let n = scenario.roster.responders.len().max(1) as u64;
        let responders: Vec<Responder> = scenario
            .roster
            .responders
            .iter()
            .map(|r| Responder {
                id: r.id.clone(),
                position: r.home,
                trip: 0,
                incident: None,
                off_after_job: false,
            })
            .collect();
        let seed = scenario.params.seed;
        let volunteer: Vec<bool> = scenario
            .roster
            .responders
            .iter()
            .map(|r| r.kind == dispatch_core::model::ResponderKind::Volunteer)
            .collect();
        let on = |i: usize, at: Timestamp| {
            !volunteer[i] || behaviour.on_duty(seed, &responders[i].id, at)
        };
        // Everybody on duty comes on in the first ten seconds (responders start off duty),
        // and every phone reports right after, then every `idle_ping_s`.
        for i in 0..responders.len() {
            let at = scenario.start.plus_ms(i as u64 * 10_000 / n);
            if on(i, scenario.start) {
                agenda.push(at, Action::OnDuty { responder: i });
            }
            agenda.push(at, Action::Ping { responder: i });
        }
        // Volunteers going on and off duty at each period's start.
        let mut before = scenario.start;
        for t in period_starts(scenario.start, scenario.end) {
            for i in (0..responders.len()).filter(|&i| volunteer[i]) {
                let (was, now_on) = (on(i, before), on(i, t));
                if was != now_on {
                    agenda.push(
                        t,
                        Action::Duty {
                            responder: i,
                            on: now_on,
                        },
                    );
                }
            }
            before = t;
        }
        let propensity = (0..responders.len())
            .map(|i| {
                let p = behaviour.propensity.filter(|_| volunteer[i])?;
                Some(p.draw(seed, &responders[i].id, behaviour.accept_share))
            })
            .collect();
        SimWorld {
            seed: scenario.params.seed,
            propensity,
            behaviour: behaviour.clone(),
            alert_index: scenario
                .alerts
                .iter()
                .enumerate()
                .map(|(i, a)| (a.alert.alert_id.clone(), i))
                .collect(),
            alerts: scenario.alerts.clone(),
            responder_index: responders
                .iter()
                .enumerate()
                .map(|(i, r)| (r.id.clone(), i))
                .collect(),
            responders,
            agenda,
            incidents: HashMap::new(),
            open_incidents: 0,
            open_offers: HashMap::new(),
            offers_seen: HashMap::new(),
            alerts_end: scenario.end,
            refusals: BTreeMap::new(),
        }
    }

    /// A volunteer due off duty during their job goes off now that it is done.
    fn off_if_due(&mut self, now: Timestamp, r: usize) {
        if std::mem::take(&mut self.responders[r].off_after_job) {
            self.agenda.push(
                now,
                Action::Duty {
                    responder: r,
                    on: false,
                },
            );
        }
    }

    fn alert_key(&self, incident_id: IncidentId) -> Option<&[u8]> {
        let info = self.incidents.get(&incident_id)?;
        Some(self.alerts[info.alert].alert.alert_id.as_str().as_bytes())
    }

    /// Schedules the moves along `route` over `travel_ms`, then the arrival.
    fn start_trip(
        &mut self,
        now: Timestamp,
        r: usize,
        incident_id: IncidentId,
        route: &[LatLon],
        travel_ms: u64,
    ) {
        self.responders[r].trip += 1;
        self.responders[r].incident = Some(incident_id);
        let trip = self.responders[r].trip;
        let step_ms = secs_ms(self.behaviour.location_interval_s).max(1_000);
        let mut t = step_ms;
        while t < travel_ms {
            let position = along(route, t as f64 / travel_ms as f64);
            self.agenda.push(
                now.plus_ms(t),
                Action::Move {
                    responder: r,
                    trip,
                    position,
                },
            );
            t += step_ms;
        }
        if let Some(&last) = route.last() {
            self.agenda.push(
                now.plus_ms(travel_ms),
                Action::Move {
                    responder: r,
                    trip,
                    position: last,
                },
            );
        }
        self.agenda.push(
            now.plus_ms(travel_ms),
            Action::Arrive {
                responder: r,
                trip,
                incident_id,
            },
        );
    }
}

/// The point a share `f` (0..=1) of the way along a polyline, by distance.
pub fn along(path: &[LatLon], f: f64) -> LatLon {
    let Some(&first) = path.first() else {
        return LatLon { lat: 0.0, lon: 0.0 };
    };
    let lengths: Vec<f64> = path.windows(2).map(|w| haversine_m(w[0], w[1])).collect();
    let total: f64 = lengths.iter().sum();
    if total <= 0.0 {
        return first;
    }
    let mut left = f.clamp(0.0, 1.0) * total;
    for (w, len) in path.windows(2).zip(&lengths) {
        if left <= *len && *len > 0.0 {
            let g = left / len;
            return LatLon {
                lat: w[0].lat + (w[1].lat - w[0].lat) * g,
                lon: w[0].lon + (w[1].lon - w[0].lon) * g,
            };
        }
        left -= len;
    }
    *path.last().unwrap_or(&first)
}

impl World for SimWorld {
    fn next_at(&self) -> Option<Timestamp> {
        self.agenda.next_at()
    }

    fn pop_command(&mut self, now: Timestamp) -> Option<Command> {
        let (_, action) = self.agenda.pop_due(now)?;
        match action {
            Action::Alert(i) => Some(Command::Alert(self.alerts[i].alert.clone())),
            Action::CancelAlert(i) => {
                let a = &self.alerts[i].alert;
                Some(Command::CancelAlert {
                    alert_id: a.alert_id.clone(),
                    device_id: a.device_id.clone(),
                })
            }
            Action::Reply {
                responder,
                offer_id,
                accept,
            } => {
                // A withdrawn or expired offer gets no reply: the phone has cleared it.
                self.open_offers.remove(&offer_id)?;
                let responder_id = self.responders[responder].id.clone();
                Some(Command::answer_offer(responder_id, offer_id, accept))
            }
            Action::Move {
                responder,
                trip,
                position,
            } => {
                let r = &mut self.responders[responder];
                (r.trip == trip).then(|| {
                    r.position = position;
                    Command::Location {
                        responder_id: r.id.clone(),
                        position,
                    }
                })
            }
            Action::Arrive {
                responder,
                trip,
                incident_id,
            } => {
                let r = &self.responders[responder];
                (r.trip == trip).then(|| Command::Arrived {
                    responder_id: r.id.clone(),
                    incident_id,
                })
            }
            Action::Complete {
                responder,
                trip,
                incident_id,
            } => {
                let r = &self.responders[responder];
                (r.trip == trip).then(|| Command::Complete {
                    responder_id: r.id.clone(),
                    incident_id,
                })
            }
            Action::OnDuty { responder } => Some(Command::SetAvailability {
                responder_id: self.responders[responder].id.clone(),
                status: dispatch_core::model::Availability::Available,
            }),
            Action::Duty { responder, on } => {
                let r = &mut self.responders[responder];
                r.off_after_job = !on && r.incident.is_some();
                let status = if on {
                    dispatch_core::model::Availability::Available
                } else if r.incident.is_some() {
                    return None; // goes off once the job is done
                } else {
                    dispatch_core::model::Availability::OffDuty
                };
                Some(Command::SetAvailability {
                    responder_id: r.id.clone(),
                    status,
                })
            }
            Action::Ping { responder } => {
                let every_ms = secs_ms(self.behaviour.idle_ping_s).max(1_000);
                self.agenda
                    .push(now.plus_ms(every_ms), Action::Ping { responder });
                let r = &self.responders[responder];
                // Moving phones already report; pinging too would only double the traffic.
                r.incident.is_none().then(|| Command::Location {
                    responder_id: r.id.clone(),
                    position: r.position,
                })
            }
        }
    }

    fn on_reply(&mut self, now: Timestamp, cmd: &Command, result: &Result<Reply, CommandError>) {
        match result {
            Err(e) => *self.refusals.entry(e.code().to_string()).or_default() += 1,
            Ok(_) => match cmd {
                Command::Arrived {
                    responder_id,
                    incident_id,
                } => {
                    let Some(&r) = self.responder_index.get(responder_id) else {
                        return;
                    };
                    let Some(info) = self.incidents.get(incident_id) else {
                        return;
                    };
                    let key = self.alerts[info.alert].alert.alert_id.as_str().as_bytes();
                    let mut rng = keyed_rng(
                        self.seed,
                        &[b"service", responder_id.as_str().as_bytes(), key],
                    );
                    let minutes = uniform(&mut rng, info.service_min);
                    let trip = self.responders[r].trip;
                    self.agenda.push(
                        now.plus_ms(secs_ms(minutes * 60.0)),
                        Action::Complete {
                            responder: r,
                            trip,
                            incident_id: *incident_id,
                        },
                    );
                }
                Command::Complete { responder_id, .. } => {
                    if let Some(&r) = self.responder_index.get(responder_id) {
                        self.responders[r].incident = None;
                        self.responders[r].trip += 1;
                        self.off_if_due(now, r);
                    }
                }
                _ => {}
            },
        }
    }

    fn on_event(&mut self, now: Timestamp, record: &EventRecord) {
        match &record.event {
            Event::IncidentOpened {
                incident_id,
                alert_id,
                kind,
                service,
                ..
            } => {
                let Some(&alert) = self.alert_index.get(alert_id) else {
                    return;
                };
                let service_min = self.behaviour.service_min(*kind, *service);
                self.incidents
                    .insert(*incident_id, IncidentInfo { alert, service_min });
                self.open_incidents += 1;
            }
            Event::OfferSent {
                offer_id,
                incident_id,
                responder_id,
                ..
            } => {
                let Some(&r) = self.responder_index.get(responder_id) else {
                    return;
                };
                let Some(key) = self.alert_key(*incident_id).map(<[u8]>::to_vec) else {
                    return;
                };
                let n = self.offers_seen.entry((r, *incident_id)).or_default();
                *n += 1;
                let nth = n.to_le_bytes();
                let mut rng = keyed_rng(
                    self.seed,
                    &[b"offer", responder_id.as_str().as_bytes(), &key, &nth],
                );
                let u: f64 = rng.random();
                let b = &self.behaviour;
                let (accept_share, decline_share) = b.answer_shares(now, self.propensity[r]);
                let (accept, delay) = if u < accept_share {
                    (true, uniform(&mut rng, b.accept_delay_s))
                } else if u < accept_share + decline_share {
                    (false, uniform(&mut rng, b.decline_delay_s))
                } else {
                    return; // silent: the offer will expire
                };
                self.open_offers.insert(*offer_id, r);
                self.agenda.push(
                    now.plus_ms(secs_ms(delay)),
                    Action::Reply {
                        responder: r,
                        offer_id: *offer_id,
                        accept,
                    },
                );
            }
            Event::OfferWithdrawn { offer_id, .. } | Event::OfferExpired { offer_id, .. } => {
                self.open_offers.remove(offer_id);
            }
            Event::Assigned {
                incident_id,
                responder_id,
                role,
                eta_s,
                route,
                ..
            } => {
                let Some(&r) = self.responder_index.get(responder_id) else {
                    return;
                };
                let Some(key) = self.alert_key(*incident_id).map(<[u8]>::to_vec) else {
                    return;
                };
                let role_key: &[u8] = match role {
                    AssignmentRole::Community => b"community",
                    AssignmentRole::Ambulance => b"ambulance",
                };
                let mut rng = keyed_rng(
                    self.seed,
                    &[b"pace", responder_id.as_str().as_bytes(), &key, role_key],
                );
                let pace = uniform(&mut rng, self.behaviour.pace_factor);
                let travel_ms = (f64::from(*eta_s) * 1000.0 * pace).round() as u64;
                let route = route.clone();
                self.start_trip(now, r, *incident_id, &route, travel_ms);
            }
            Event::IncidentResolved { incident_id, .. }
            | Event::IncidentCancelled { incident_id, .. } => {
                self.open_incidents = self.open_incidents.saturating_sub(1);
                let freed: Vec<usize> = (0..self.responders.len())
                    .filter(|&r| self.responders[r].incident == Some(*incident_id))
                    .collect();
                for r in freed {
                    self.responders[r].incident = None;
                    self.responders[r].trip += 1;
                    self.off_if_due(now, r);
                }
            }
            _ => {}
        }
    }

    fn is_quiet(&self) -> bool {
        self.open_incidents == 0 && self.agenda.next_at().is_none_or(|t| t >= self.alerts_end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_draws_are_stable_and_distinct() {
        let a: u64 = keyed_rng(1, &[b"offer", b"V1", b"AL1"]).random();
        let b: u64 = keyed_rng(1, &[b"offer", b"V1", b"AL1"]).random();
        let c: u64 = keyed_rng(1, &[b"offer", b"V1", b"AL2"]).random();
        // Part boundaries matter: ("V1","AL1") is not ("V1A","L1").
        let d: u64 = keyed_rng(1, &[b"offer", b"V1A", b"L1"]).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn along_interpolates_by_distance() {
        let p = [
            LatLon { lat: 0.0, lon: 0.0 },
            LatLon {
                lat: 0.0,
                lon: 0.001,
            },
            LatLon {
                lat: 0.0,
                lon: 0.003,
            },
        ];
        let mid = along(&p, 0.5);
        assert!((mid.lon - 0.0015).abs() < 1e-9, "{mid:?}");
        assert_eq!(along(&p, 1.0), p[2]);
        assert_eq!(along(&p, 0.0), p[0]);
        assert_eq!(along(&p[..1], 0.7), p[0]);
    }

    #[test]
    fn presets_and_the_accept_share_by_hour() {
        for name in PRESETS {
            assert!(BehaviourParams::preset(name).is_some(), "{name}");
        }
        assert!(BehaviourParams::preset("pessimistic").is_none());
        assert_eq!(
            BehaviourParams::preset("optimistic"),
            Some(BehaviourParams::default())
        );
        let p = BehaviourParams::preset("scquizzato2020").unwrap();
        let at = |h: i64| Timestamp(crate::scenario::VIRTUAL_EPOCH.0 + h * 3_600_000 + 60_000);
        assert!((p.accept_share_at(at(3)) - 0.287 * 0.49).abs() < 1e-12);
        assert!((p.accept_share_at(at(10)) - 0.287).abs() < 1e-12);
        assert!((p.accept_share_at(at(20)) - 0.287 * 1.3).abs() < 1e-12);
        assert!((p.accept_share_at(at(24 + 10)) - 0.287).abs() < 1e-12);
        // Never past what declines leave.
        let greedy = BehaviourParams {
            accept_share: 0.9,
            decline_share: 0.3,
            accept_by_hour: [2.0; 3],
            ..BehaviourParams::default()
        };
        assert!((greedy.accept_share_at(at(1)) - 0.7).abs() < 1e-12);
    }

    #[test]
    fn volunteers_go_on_and_off_duty_in_the_published_shares() {
        let p = BehaviourParams::preset("mottlau2022").unwrap();
        let at = |h: i64| Timestamp(crate::scenario::VIRTUAL_EPOCH.0 + h * 3_600_000 + 60_000);
        let ids: Vec<ResponderId> = (0..4000)
            .map(|i| ResponderId::from(format!("V{i}")))
            .collect();
        let share = |h: i64| {
            ids.iter().filter(|id| p.on_duty(7, id, at(h))).count() as f64 / ids.len() as f64
        };
        for (h, want) in [(3, 0.30), (10, 0.60), (20, 0.78), (24 + 3, 0.30)] {
            assert!((share(h) - want).abs() < 0.025, "{h} h: {}", share(h));
        }
        // The same all through a period, drawn again in the next one and the next day.
        let same = |a: i64, b: i64| {
            ids.iter()
                .filter(|id| p.on_duty(7, id, at(a)) == p.on_duty(7, id, at(b)))
                .count()
        };
        assert_eq!(same(8, 15), ids.len());
        assert!(
            same(10, 24 + 10) < ids.len() * 9 / 10,
            "another day, another draw"
        );
        assert!(same(10, 20) < ids.len(), "another period, another draw");
        // And another seed, another draw; everybody on duty where the share is 1.
        assert!(ids
            .iter()
            .any(|id| p.on_duty(7, id, at(10)) != p.on_duty(8, id, at(10))));
        assert!(ids
            .iter()
            .all(|id| BehaviourParams::default().on_duty(7, id, at(3))));
        // By day, those on duty accept 40 %: 24 % of all volunteers, as published.
        assert!((share(10) * p.accept_share_at(at(10)) - 0.24).abs() < 0.02);
    }

    #[test]
    fn varied_volunteers_keep_the_published_mean_and_differ() {
        let p = BehaviourParams {
            propensity: Some(Propensity::RESEARCH),
            ..BehaviourParams::preset("scquizzato2020").unwrap()
        };
        let at = |h: i64| Timestamp(crate::scenario::VIRTUAL_EPOCH.0 + h * 3_600_000 + 60_000);
        let ids: Vec<ResponderId> = (0..20_000)
            .map(|i| ResponderId::from(format!("V{i}")))
            .collect();
        let own: Vec<f64> = ids
            .iter()
            .map(|id| Propensity::RESEARCH.draw(7, id, p.accept_share))
            .collect();
        let mean = own.iter().sum::<f64>() / own.len() as f64;
        assert!((mean - 0.287).abs() < 0.01, "mean {mean}");
        let dormant = own.iter().filter(|&&x| x == 0.0).count() as f64 / own.len() as f64;
        assert!((dormant - 0.10).abs() < 0.01, "dormant {dormant}");
        // Skewed: well over half under the mean, and a tail of frequent responders.
        let under = own.iter().filter(|&&x| x < 0.287).count() as f64 / own.len() as f64;
        let frequent = own.iter().filter(|&&x| x > 0.7).count() as f64 / own.len() as f64;
        assert!(under > 0.55 && frequent > 0.03, "{under} {frequent}");
        // Drawn once per seed: the same again, another seed another.
        assert_eq!(Propensity::RESEARCH.draw(7, &ids[5], 0.287), own[5]);
        assert!(ids
            .iter()
            .take(100)
            .any(|id| Propensity::RESEARCH.draw(8, id, 0.287)
                != Propensity::RESEARCH.draw(7, id, 0.287)));
        // By day the population accepts the preset's share on average; declines and silence
        // keep the preset's ratio.
        let day: f64 = own
            .iter()
            .map(|&x| p.answer_shares(at(10), Some(x)).0)
            .sum::<f64>()
            / own.len() as f64;
        assert!((day - 0.287).abs() < 0.01, "{day}");
        let (a, d) = p.answer_shares(at(10), Some(0.5));
        assert!((a - 0.5).abs() < 1e-12);
        assert!((d / (1.0 - a) - 0.285 / (1.0 - 0.287)).abs() < 1e-9);
        // At night the hour's multiplier scales one's own.
        assert!((p.answer_shares(at(3), Some(0.5)).0 - 0.5 * 0.49).abs() < 1e-12);
        // Without a propensity, the preset's shares as before.
        assert_eq!(
            p.answer_shares(at(10), None),
            (p.accept_share_at(at(10)), p.decline_share)
        );
    }

    #[test]
    fn periods_start_at_7_16_and_midnight() {
        let e = crate::scenario::VIRTUAL_EPOCH.0;
        let h = |x: i64| Timestamp(e + x * 3_600_000);
        assert_eq!(
            period_starts(h(0), h(48)),
            vec![h(7), h(16), h(24), h(31), h(40), h(48)]
        );
        assert_eq!(period_starts(h(7), h(15)), Vec::<Timestamp>::new());
        assert_eq!(period_of(h(6)), 0);
        assert_eq!(period_of(h(7)), 1);
        assert_eq!(period_of(h(23)), 2);
    }
}
