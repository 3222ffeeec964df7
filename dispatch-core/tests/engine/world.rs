//! Test fixtures: a small roster placed in metres around a centre, a driver that advances a
//! virtual clock through the engine's timers, and event helpers.

use dispatch_core::command::{Alert, Command, Reply};
use dispatch_core::engine::Engine;
use dispatch_core::error::CommandError;
use dispatch_core::event::{Event, EventRecord};
use dispatch_core::geo::{LatLon, Projection};
use dispatch_core::ids::{
    AlertId, DeviceId, ElderId, GridId, IncidentId, OfferId, OperatorId, ResponderId,
};
use dispatch_core::matching::{RoadTimes, StraightLine, TravelTimes};
use dispatch_core::model::{AlertKind, Availability, ResponderKind, ServiceKind, TravelMode};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::road::{RoadConfig, RoadNetwork};
use dispatch_core::roster::{
    DeviceRecord, ElderRecord, GridRecord, OperatorRecord, ResponderRecord, RosterFile,
};
use dispatch_core::time::Timestamp;
use std::sync::{Arc, OnceLock};

/// The map centre of the straight-line world.
pub fn centre() -> LatLon {
    LatLon::new(-30.03, -51.2).unwrap()
}

/// A position `dx` metres east and `dy` north of the centre.
pub fn at(dx: f64, dy: f64) -> LatLon {
    Projection::new(centre()).to_latlon([dx, dy])
}

/// The real Porto Alegre road network, built once per test binary.
pub fn porto_alegre_net() -> Arc<RoadNetwork> {
    static NET: OnceLock<Arc<RoadNetwork>> = OnceLock::new();
    NET.get_or_init(|| {
        let file = std::fs::File::open(dispatch_core::testdata::porto_alegre_pbf())
            .expect("../shared/data/porto_alegre.osm.pbf beside the checkout");
        let net = RoadNetwork::from_pbf(std::io::BufReader::new(file), &RoadConfig::default())
            .expect("the Porto Alegre extract builds");
        Arc::new(net)
    })
    .clone()
}

/// Porto Alegre as the engine sees it (`centre()` is in the middle of its roads).
pub fn porto_alegre() -> Arc<dyn TravelTimes> {
    Arc::new(RoadTimes::new(
        porto_alegre_net(),
        RoadConfig::default().foot_kmh,
    ))
}

/// Straight lines, 1.3 detour, foot 4.5 km/h, car 10 m/s, 20 km radius.
pub fn straight() -> Arc<dyn TravelTimes> {
    Arc::new(StraightLine::new(centre(), 20_000.0))
}

pub fn digest(n: u32) -> String {
    format!("{n:064x}")
}

pub fn responder(id: &str, kind: ResponderKind, mode: TravelMode, home: LatLon) -> ResponderRecord {
    ResponderRecord {
        kin_of: Vec::new(),
        id: id.into(),
        kind,
        travel_mode: mode,
        walk_kmh: None,
        home,
        grid_id: None,
        skills: Vec::new(),
        token_sha256: None,
    }
}

/// An ambulance (by car).
pub fn ambulance(id: &str, home: LatLon) -> ResponderRecord {
    responder(id, ResponderKind::Ambulance, TravelMode::Car, home)
}

/// A grid worker of `grid` who travels by `mode`.
pub fn grid_worker(id: &str, mode: TravelMode, home: LatLon, grid_id: &str) -> ResponderRecord {
    ResponderRecord {
        kin_of: Vec::new(),
        grid_id: Some(grid(grid_id)),
        ..responder(id, ResponderKind::GridWorker, mode, home)
    }
}

pub fn volunteer(id: &str, home: LatLon) -> ResponderRecord {
    responder(id, ResponderKind::Volunteer, TravelMode::Foot, home)
}

pub fn elder(id: &str, home: LatLon, grid: &str, care_level: u8, paired: &[&str]) -> ElderRecord {
    ElderRecord {
        id: id.into(),
        home,
        grid_id: grid.into(),
        care_level,
        paired_responders: paired.iter().map(|p| ResponderId::from(*p)).collect(),
        details: Default::default(),
        care_plan: Vec::new(),
        check_in_by: None,
        family: Vec::new(),
    }
}

/// A roster with grids G1, G2, operator OP1, device GW1, and the given people.
pub fn roster(responders: Vec<ResponderRecord>, elders: Vec<ElderRecord>) -> RosterFile {
    RosterFile {
        regions: Vec::new(),
        grids: vec![
            GridRecord {
                id: "G1".into(),
                name: "one".into(),
            },
            GridRecord {
                id: "G2".into(),
                name: "two".into(),
            },
        ],
        responders,
        elders,
        operators: vec![OperatorRecord {
            id: "OP1".into(),
            token_sha256: digest(1),
            roles: None,
        }],
        devices: vec![DeviceRecord {
            id: "GW1".into(),
            token_sha256: digest(2),
        }],
    }
}

pub fn rid(s: &str) -> ResponderId {
    ResponderId::from(s)
}

pub fn op() -> OperatorId {
    OperatorId::from("OP1")
}

pub fn gw() -> DeviceId {
    DeviceId::from("GW1")
}

pub fn alert(alert_id: &str, elder: &str, kind: AlertKind, service: Option<ServiceKind>) -> Alert {
    Alert {
        alert_id: AlertId::from(alert_id),
        kind,
        service,
        elder_id: ElderId::from(elder),
        position: None,
        detected_at: Timestamp(0),
        ambulance_requested: false,
        scheduled_for: None,
        device_id: gw(),
    }
}

pub fn fall(alert_id: &str, elder: &str) -> Command {
    Command::Alert(alert(alert_id, elder, AlertKind::Fall, None))
}

/// An engine on a virtual clock, collecting every event it emits.
pub struct Sim {
    pub engine: Engine,
    pub now: Timestamp,
    pub events: Vec<EventRecord>,
}

impl Sim {
    pub fn new(roads: Arc<dyn TravelTimes>, roster: RosterFile, config: PolicyConfig) -> Sim {
        let engine = Engine::with_travel_times(roads, roster, config).expect("valid roster");
        Sim {
            engine,
            now: Timestamp(1_000_000),
            events: Vec::new(),
        }
    }

    fn drain(&mut self) -> Vec<EventRecord> {
        let mut out = Vec::new();
        while let Some(e) = self.engine.poll_event() {
            out.push(e);
        }
        self.events.extend(out.iter().cloned());
        out
    }

    /// Runs a command at the current time; returns its reply and the events it caused.
    pub fn cmd(&mut self, c: Command) -> Result<Reply, CommandError> {
        let r = self.engine.handle_command(self.now, c);
        self.dispatch_if_batched();
        self.drain();
        r
    }

    /// Batched dispatch: the round a command called for runs in the timeout due now, as the
    /// server's engine task runs it right after the command.
    fn dispatch_if_batched(&mut self) {
        if self.engine.config().dispatch_batched
            && self.engine.poll_timeout().is_some_and(|t| t <= self.now)
        {
            self.engine.handle_timeout(self.now);
        }
    }

    /// Runs a command that must succeed, returning the events it caused.
    pub fn ok(&mut self, c: Command) -> Vec<EventRecord> {
        let r = self.engine.handle_command(self.now, c.clone());
        assert!(r.is_ok(), "{c:?} -> {r:?}");
        self.dispatch_if_batched();
        self.drain()
    }

    /// Advances the clock to `now + ms`, firing every timer due on the way.
    pub fn advance(&mut self, ms: u64) -> Vec<EventRecord> {
        let end = self.now.plus_ms(ms);
        let mut out = Vec::new();
        while let Some(t) = self.engine.poll_timeout() {
            if t > end {
                break;
            }
            self.now = t.max(self.now);
            self.engine.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = end;
        out
    }

    /// Puts responders on duty at the current time.
    pub fn on_duty(&mut self, ids: &[&str]) {
        for id in ids {
            self.ok(Command::SetAvailability {
                responder_id: rid(id),
                status: Availability::Available,
            });
        }
    }
}

/// The offers in `events`: (offer, responder, incident, wave).
pub fn offers(events: &[EventRecord]) -> Vec<(OfferId, ResponderId, IncidentId, u32)> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::OfferSent {
                offer_id,
                responder_id,
                incident_id,
                wave,
                ..
            } => Some((*offer_id, responder_id.clone(), *incident_id, *wave)),
            _ => None,
        })
        .collect()
}

pub fn offered_to(events: &[EventRecord]) -> Vec<String> {
    offers(events)
        .into_iter()
        .map(|o| o.1.to_string())
        .collect()
}

pub fn incident_of(reply: Reply) -> IncidentId {
    match reply {
        Reply::AlertAccepted { incident_id, .. } => incident_id,
        other => panic!("not an alert reply: {other:?}"),
    }
}

pub fn grid(id: &str) -> GridId {
    GridId::from(id)
}
