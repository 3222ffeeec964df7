//! End-to-end tests of the simulator: KPIs checked against hand-computed values, reproducible
//! seeded runs of the real engine, and the radius baseline really being the radius rule.

use dispatch_core::event::{Event, EventRecord};
use dispatch_core::geo::LatLon;
use dispatch_core::ids::{AlertId, ElderId, IncidentId, ResponderId};
use dispatch_core::model::{
    AlertKind, AssignmentRole, ResponderKind, ServiceKind, Sla, TravelMode,
};
use dispatch_core::roster::{ElderRecord, GridRecord, ResponderRecord, RosterFile};
use dispatch_core::time::Timestamp;
use simulator::kpi::KpiCollector;

const P: LatLon = LatLon {
    lat: -30.03,
    lon: -51.22,
};

fn responder(id: &str, kind: ResponderKind, grid: &str) -> ResponderRecord {
    ResponderRecord {
        id: id.into(),
        kind,
        travel_mode: TravelMode::Foot,
        walk_kmh: None,
        home: P,
        grid_id: Some(grid.into()),
        skills: vec![],
        token_sha256: None,
    }
}

fn elder(id: &str, grid: &str, paired: &[&str]) -> ElderRecord {
    ElderRecord {
        id: id.into(),
        home: P,
        grid_id: grid.into(),
        care_level: 3,
        paired_responders: paired.iter().map(|p| ResponderId::from(*p)).collect(),
        family: vec![],
    }
}

fn at_s(s: i64) -> Timestamp {
    Timestamp(1_000_000 + s * 1000)
}

fn opened(id: u64, elder: &str, kind: AlertKind, service: Option<ServiceKind>) -> Event {
    Event::IncidentOpened {
        incident_id: IncidentId(id),
        alert_id: AlertId::from(format!("a{id}")),
        elder_id: ElderId::from(elder),
        kind,
        service,
        priority: 3,
        position: P,
        reason: String::new(),
    }
}

fn assigned(id: u64, who: &str, role: AssignmentRole) -> Event {
    Event::Assigned {
        incident_id: IncidentId(id),
        responder_id: who.into(),
        role,
        eta_s: 60,
        route: vec![],
        reason: String::new(),
    }
}

fn arrived(id: u64, who: &str, role: AssignmentRole) -> Event {
    Event::ResponderArrived {
        incident_id: IncidentId(id),
        responder_id: who.into(),
        role,
    }
}

/// Three emergencies and one service call with known times; every expected number below is
/// worked out by hand in the comments.
#[test]
fn kpis_of_a_tiny_hand_built_stream() {
    use AssignmentRole::{Ambulance, Community};
    let roster = RosterFile {
        grids: vec![
            GridRecord {
                id: "G1".into(),
                name: String::new(),
            },
            GridRecord {
                id: "G2".into(),
                name: String::new(),
            },
        ],
        responders: vec![
            responder("V1", ResponderKind::Volunteer, "G1"),
            responder("V2", ResponderKind::Volunteer, "G1"),
            responder("V3", ResponderKind::Volunteer, "G2"),
            responder("W1", ResponderKind::GridWorker, "G2"),
            responder("A1", ResponderKind::Ambulance, "G1"),
        ],
        elders: vec![
            elder("E1", "G1", &["V1"]),
            elder("E2", "G1", &[]),
            elder("E3", "G1", &[]),
            elder("E4", "G2", &[]),
        ],
        ..RosterFile::default()
    };
    let stream = vec![
        // Incident 1: accepted after 10 s by a paired volunteer, on scene at 100 s.
        (0, opened(1, "E1", AlertKind::Fall, None)),
        (10, assigned(1, "V1", Community)),
        (100, arrived(1, "V1", Community)),
        // Incident 2: accepted after 40 s by a stranger, on scene at 250 s; ambulance at 600 s.
        (1000, opened(2, "E2", AlertKind::Fall, None)),
        (
            1030,
            Event::SlaBreached {
                incident_id: IncidentId(2),
                sla: Sla::FirstAccept,
                deadline: at_s(1030),
            },
        ),
        (1040, assigned(2, "V2", Community)),
        (1060, assigned(2, "A1", Ambulance)),
        (1250, arrived(2, "V2", Community)),
        (1600, arrived(2, "A1", Ambulance)),
        // Incident 3: a rescue call nobody accepts; the ambulance is there at 700 s.
        (
            2000,
            opened(3, "E3", AlertKind::Help, Some(ServiceKind::Rescue)),
        ),
        (2010, assigned(3, "A1", Ambulance)),
        (2700, arrived(3, "A1", Ambulance)),
        // Incident 4: a meal, not an emergency; E4's own grid worker takes it (familiar).
        (
            3000,
            opened(4, "E4", AlertKind::Help, Some(ServiceKind::Meal)),
        ),
        (3020, assigned(4, "W1", Community)),
        (
            4000,
            Event::TimeBankCredited {
                responder_id: "V1".into(),
                incident_id: IncidentId(1),
                minutes: 30,
            },
        ),
    ];
    let mut kpis = KpiCollector::new(&roster);
    for (seq, (t, event)) in stream.into_iter().enumerate() {
        kpis.observe(&EventRecord {
            seq: seq as u64 + 1,
            at: at_s(t),
            event,
        });
    }
    let k = kpis.finish();

    assert_eq!(
        (
            k.incidents.opened,
            k.incidents.emergencies,
            k.incidents.services
        ),
        (4, 3, 1)
    );
    assert_eq!(k.incidents.emergencies_never_accepted, 1);
    assert_eq!(k.incidents.with_ambulance, 2);

    // First accept over the 3 emergencies: [10, 40, never]. Nearest rank: p50 = 2nd = 40,
    // p90 = 3rd = never (null). Within 30 s: 1 of 3.
    let d = &k.first_accept_s;
    assert_eq!((d.count, d.reached), (3, 2));
    assert_eq!((d.p50, d.p90, d.p99), (Some(40.0), None, None));
    assert_eq!(d.within_target, Some(1.0 / 3.0));

    // Community on scene: [100, 250, never]; p50 = 250; within 180 s: 1 of 3.
    let d = &k.community_on_scene_s;
    assert_eq!((d.p50, d.p90), (Some(250.0), None));
    assert_eq!(d.within_target, Some(1.0 / 3.0));

    // Ambulance on scene over the 2 incidents it went to: [600, 700]; p50 = 1st = 600,
    // p90 = 2nd = 700; within 660 s: 1 of 2.
    let d = &k.ambulance_on_scene_s;
    assert_eq!(
        (d.count, d.p50, d.p90, d.p99),
        (2, Some(600.0), Some(700.0), Some(700.0))
    );
    assert_eq!(d.within_target, Some(0.5));

    // Community assignments: V1 (paired with E1), V2 (stranger to E2), W1 (E4's grid worker).
    assert_eq!(k.familiar_assignments.community_assignments, 3);
    assert_eq!(k.familiar_assignments.familiar, 2);

    // Volunteer loads V1 = 1, V2 = 1, V3 = 0: max 1, mean 2/3, max/mean 1.5;
    // Gini of [0, 1, 1] = 2 (1*0 + 2*1 + 3*1) / (3 * 2) - 4/3 = 1/3.
    let w = &k.volunteer_workload;
    assert_eq!(
        (w.volunteers, w.volunteers_assigned, w.assignments, w.max),
        (3, 2, 2, 1)
    );
    assert!((w.max_over_mean.unwrap() - 1.5).abs() < 1e-12);
    assert!((w.gini - 1.0 / 3.0).abs() < 1e-12);

    assert_eq!(k.sla_breaches.first_accept, 1);
    assert_eq!(
        (
            k.time_bank.credits,
            k.time_bank.minutes,
            k.time_bank.volunteers_credited
        ),
        (1, 30, 1)
    );
}
