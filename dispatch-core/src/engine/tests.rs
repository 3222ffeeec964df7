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
        regions: Vec::new(),
        grids: vec![GridRecord {
            id: "G1".into(),
            name: String::new(),
        }],
        responders: vec![ResponderRecord {
            kin_of: Vec::new(),
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
                details: Default::default(),
                care_plan: Vec::new(),
                check_in_by: None,
                family: Vec::new(),
            })
            .collect(),
        operators: vec![OperatorRecord {
            id: "OP1".into(),
            token_sha256: "a".repeat(64),
            roles: None,
        }],
        devices: vec![DeviceRecord {
            id: "GW1".into(),
            token_sha256: "b".repeat(64),
        }],
    };
    let roads: Arc<dyn TravelTimes> = Arc::new(matching::StraightLine::new(centre(), 20_000.0));
    let mut e = Engine::with_travel_times(roads, roster, PolicyConfig::default()).expect("roster");
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
    assert!(
        e.incidents.open_ids().next().is_none(),
        "and all of it is closed"
    );
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
