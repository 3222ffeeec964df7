//! Issue 12, gap 11: "first to kin, then to the nearest, then to the familiar". A family
//! member is a responder of kind `kin`, bound to their elder(s) by `kin_of` (decision version
//! 5): offered that elder's emergencies first within the kin margin (120 s), never anybody
//! else's jobs. Straight-line roads: on foot, 1 m of straight line is about 1.04 s.

use crate::world::*;
use dispatch_core::command::Command;
use dispatch_core::model::{AlertKind, ResponderKind, ServiceKind, TravelMode};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::roster::ResponderRecord;

fn kin(id: &str, home: LatLon, of: &[&str]) -> ResponderRecord {
    ResponderRecord {
        kin_of: of.iter().map(|e| (*e).into()).collect(),
        ..responder(id, ResponderKind::Kin, TravelMode::Foot, home)
    }
}

use dispatch_core::geo::LatLon;

/// One person asked per wave, so the order is what is offered first.
fn one_at_a_time() -> PolicyConfig {
    PolicyConfig {
        wave_sizes: vec![1],
        acceptance_target: 0.0, // one at a time: the order is what is tested
        care_levels: (1..=5)
            .map(|level| dispatch_core::policy::CareLevelRule {
                level,
                wave_sizes: Some(vec![1]),
                ..Default::default()
            })
            .collect(),
        ..PolicyConfig::default()
    }
}

/// E1's daughter K1 at `kin_m`, a stranger S1 at 100 m, P1 (paired with E1) at `paired_m`.
fn family(kin_m: f64, paired_m: f64) -> Sim {
    let mut sim = Sim::new(
        straight(),
        roster(
            vec![
                volunteer("S1", at(100.0, 0.0)),
                volunteer("P1", at(paired_m, 0.0)),
                kin("K1", at(kin_m, 0.0), &["E1"]),
            ],
            vec![
                elder("E1", at(0.0, 0.0), "G1", 3, &["P1"]),
                elder("E2", at(0.0, 30.0), "G1", 3, &[]),
            ],
        ),
        one_at_a_time(),
    );
    sim.on_duty(&["S1", "P1", "K1"]);
    sim
}

#[test]
fn kin_within_their_margin_are_asked_before_a_nearer_stranger() {
    // K1 is about 104 s farther than S1: within the 120 s kin margin.
    let mut sim = family(200.0, 5000.0);
    assert_eq!(offered_to(&sim.ok(fall("a1", "E1"))), vec!["K1"]);
    // About 156 s farther: the stranger first.
    let mut sim = family(250.0, 5000.0);
    assert_eq!(offered_to(&sim.ok(fall("a1", "E1"))), vec!["S1"]);
}

#[test]
fn kin_come_before_the_familiar() {
    // K1 and P1 equally far, 104 s beyond S1: kin (120 s margin) beat the paired volunteer
    // (60 s) and the stranger.
    let mut sim = family(200.0, 200.0);
    let ev = sim.ok(fall("a1", "E1"));
    assert_eq!(offered_to(&ev), vec!["K1"]);
    assert!(
        ev.iter().any(|e| matches!(&e.event,
            dispatch_core::event::Event::OfferSent { reason, .. } if reason.contains("K1: kin"))),
        "{ev:#?}"
    );
}

#[test]
fn kin_are_never_offered_another_elders_job_nor_a_service() {
    // K1 is next door to E2 (30 m), the only one near: E2's fall goes to S1, never K1.
    let mut sim = family(10.0, 5000.0);
    let ev = sim.ok(fall("a1", "E2"));
    assert_eq!(offered_to(&ev), vec!["S1"]);
    let ev = sim.advance(10 * 60_000);
    assert!(!offered_to(&ev).contains(&"K1".to_string()), "{ev:#?}");
    // Nor their own elder's service (a meal).
    let mut sim = family(10.0, 5000.0);
    let ev = sim.ok(Command::Alert(alert(
        "h1",
        "E1",
        AlertKind::Help,
        Some(ServiceKind::Shopping),
    )));
    assert!(!offered_to(&ev).contains(&"K1".to_string()), "{ev:#?}");
}

#[test]
fn kin_are_asked_to_look_in_when_their_elders_check_in_is_missed() {
    // The welfare visit goes to E1's own grid worker first (none here), then to anyone
    // eligible: K1, next door, is.
    let mut sim = family(10.0, 5000.0);
    let ev = sim.ok(Command::Alert(alert(
        "c1",
        "E1",
        AlertKind::CheckInMissed,
        None,
    )));
    assert_eq!(offered_to(&ev), vec!["K1"]);
}

#[test]
fn version_4_journals_never_offer_kin() {
    let mut sim = family(200.0, 5000.0);
    sim.engine.set_decision_version(4);
    let ev = sim.ok(fall("a1", "E1"));
    assert_eq!(offered_to(&ev), vec!["S1"]);
}

#[test]
fn the_roster_binds_kin_to_known_elders_only() {
    let file = |r: ResponderRecord| roster(vec![r], vec![elder("E1", at(0.0, 0.0), "G1", 3, &[])]);
    let load = |f| {
        dispatch_core::roster::Roster::from_file(f, &|_| Ok(()))
            .map(drop)
            .map_err(|e| e.to_string())
    };
    assert!(load(file(kin("K1", at(0.0, 0.0), &["E1"]))).is_ok());
    let none = load(file(kin("K1", at(0.0, 0.0), &[]))).unwrap_err();
    assert!(
        none.contains("responder K1") && none.contains("kin_of"),
        "{none}"
    );
    let unknown = load(file(kin("K1", at(0.0, 0.0), &["E9"]))).unwrap_err();
    assert!(unknown.contains("E9"), "{unknown}");
    let twice = load(file(kin("K1", at(0.0, 0.0), &["E1", "E1"]))).unwrap_err();
    assert!(twice.contains("twice"), "{twice}");
    let mut v = volunteer("V1", at(0.0, 0.0));
    v.kin_of = vec!["E1".into()];
    let not_kin = load(file(v)).unwrap_err();
    assert!(
        not_kin.contains("only for responders of kind `kin`"),
        "{not_kin}"
    );

    // At run time: an elder with kin bound is not retired from under them.
    let mut sim = family(200.0, 5000.0);
    let err = sim
        .cmd(Command::RetireElder {
            by: dispatch_core::model::Actor::Operator(op()),
            elder_id: "E1".into(),
        })
        .unwrap_err();
    assert!(err.to_string().contains("K1"), "{err}");
    assert!(sim.engine.roster().elder(&"E1".into()).is_some());
}

#[test]
fn an_operator_cannot_send_kin_to_another_elders_job() {
    let mut sim = family(10.0, 5000.0);
    let i = incident_of(sim.cmd(fall("a1", "E2")).expect("alert"));
    let err = sim
        .cmd(Command::Assign {
            operator_id: op(),
            incident_id: i,
            responder_id: rid("K1"),
        })
        .unwrap_err();
    assert!(err.to_string().contains("family of E1"), "{err}");
    // Their own elder's emergency: yes.
    let mine = incident_of(sim.cmd(fall("a2", "E1")).expect("alert"));
    let ev = sim.ok(Command::Assign {
        operator_id: op(),
        incident_id: mine,
        responder_id: rid("K1"),
    });
    assert!(
        ev.iter().any(|e| matches!(&e.event,
            dispatch_core::event::Event::Assigned { responder_id, .. } if responder_id.as_str() == "K1")),
        "{ev:#?}"
    );
}

#[test]
fn kin_ties_do_not_change_under_an_open_offer() {
    // K1 holds E1's offer; rebinding her to E2 meanwhile is refused (she would keep a job
    // the new record does not allow), and allowed once the offer is gone.
    let mut sim = family(200.0, 5000.0);
    assert_eq!(offered_to(&sim.ok(fall("a1", "E1"))), vec!["K1"]);
    let rebound = kin("K1", at(200.0, 0.0), &["E2"]);
    let err = sim
        .cmd(Command::UpsertResponder {
            by: dispatch_core::model::Actor::Operator(op()),
            responder: rebound.clone(),
        })
        .unwrap_err();
    assert!(err.to_string().contains("kin_of"), "{err}");
    assert_eq!(
        sim.engine.roster().responder(&rid("K1")).unwrap().kin_of,
        vec!["E1".into()]
    );
    let offer = offers(&sim.events)
        .into_iter()
        .find(|o| o.1 == rid("K1"))
        .unwrap();
    sim.ok(Command::Decline {
        responder_id: rid("K1"),
        offer_id: offer.0,
    });
    sim.ok(Command::UpsertResponder {
        by: dispatch_core::model::Actor::Operator(op()),
        responder: rebound,
    });
}
