//! Issue 12, gap 9: an elder's daily check-in schedule (`check_in_by`, local time by
//! `utc_offset_s`). With no check-in since local midnight by then, the engine opens the
//! welfare visit itself; a check-in in time prevents it; a late one calls it off; a device's
//! `check_in_missed` still works and joins the same visit. Decision version 4 on.

use crate::world::*;
use dispatch_core::command::Command;
use dispatch_core::event::{Event, EventRecord};
use dispatch_core::ids::ElderId;
use dispatch_core::model::{Actor, AlertKind};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::time::Timestamp;

const HOUR: u64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// Local time is UTC − 3 h (Porto Alegre); E1 checks in by 10:00 local.
fn world() -> Sim {
    let mut e = elder("E1", at(0.0, 0.0), "G1", 3, &[]);
    e.check_in_by = Some("10:00".into());
    let config = PolicyConfig {
        utc_offset_s: -3 * 3600,
        ..PolicyConfig::default()
    };
    let mut sim = Sim::new(
        straight(),
        roster(
            vec![grid_worker(
                "W1",
                dispatch_core::model::TravelMode::Foot,
                at(50.0, 0.0),
                "G1",
            )],
            vec![e],
        ),
        config,
    );
    // Start on day 10 at 08:00 local (11:00 UTC).
    sim.now = Timestamp(10 * DAY + 11 * HOUR as i64);
    sim.on_duty(&["W1"]);
    sim
}

/// 10:00 local on day `d` (13:00 UTC).
fn due(d: i64) -> Timestamp {
    Timestamp(d * DAY + 13 * HOUR as i64)
}

fn visits_opened(ev: &[EventRecord]) -> Vec<Timestamp> {
    ev.iter()
        .filter_map(|e| match &e.event {
            Event::IncidentOpened {
                kind: AlertKind::CheckInMissed,
                ..
            } => Some(e.at),
            _ => None,
        })
        .collect()
}

fn check_in(sim: &mut Sim) {
    sim.ok(Command::CheckIn {
        elder_id: ElderId::from("E1"),
        device_id: gw(),
    });
}

fn until(sim: &mut Sim, t: Timestamp) -> Vec<EventRecord> {
    sim.advance((t.0 - sim.now.0) as u64)
}

#[test]
fn no_check_in_by_ten_opens_the_welfare_visit_at_ten() {
    let mut sim = world();
    let ev = until(&mut sim, Timestamp(due(10).0 - 60_000));
    assert!(visits_opened(&ev).is_empty(), "{ev:?}");
    // W1's phone says where W1 is (a position goes stale after 10 min).
    sim.ok(Command::Location {
        responder_id: rid("W1"),
        position: at(50.0, 0.0),
    });
    let ev = until(&mut sim, due(10));
    assert_eq!(visits_opened(&ev), vec![due(10)]);
    // Offered like any welfare visit: the elder's own grid worker first.
    assert_eq!(offered_to(&ev), vec!["W1"]);
}

#[test]
fn a_check_in_in_time_prevents_it_and_yesterdays_does_not_count() {
    let mut sim = world();
    until(&mut sim, Timestamp(due(10).0 - HOUR as i64)); // 09:00 local
    check_in(&mut sim);
    let ev = until(&mut sim, due(10));
    assert!(visits_opened(&ev).is_empty(), "{ev:?}");
    // Checked in at 23:00 local on day 10: day 11's check-in is still missing at 10:00.
    until(&mut sim, Timestamp(11 * DAY + 2 * HOUR as i64));
    check_in(&mut sim);
    let ev = until(&mut sim, due(11));
    assert_eq!(visits_opened(&ev), vec![due(11)]);
}

#[test]
fn a_late_check_in_calls_the_visit_off_and_a_device_alert_joins_it() {
    let mut sim = world();
    let ev = until(&mut sim, due(10));
    assert_eq!(visits_opened(&ev).len(), 1);
    // The gateway also reports the missed check-in: it joins the engine's visit.
    let r = sim
        .cmd(Command::Alert(alert(
            "gw-miss",
            "E1",
            AlertKind::CheckInMissed,
            None,
        )))
        .expect("alert");
    assert!(
        matches!(
            r,
            dispatch_core::command::Reply::AlertAccepted { merged: true, .. }
        ),
        "{r:?}"
    );
    sim.advance(30 * 60_000);
    sim.events.clear();
    check_in(&mut sim);
    assert!(sim.events.iter().any(|e| matches!(
        &e.event,
        Event::IncidentCancelled { by: Actor::Device(_), reason, .. } if reason.contains("checked in")
    )), "{:?}", sim.events);
}

#[test]
fn a_schedule_set_at_run_time_runs_and_one_taken_off_stops() {
    let mut sim = world();
    let mut e = sim
        .engine
        .roster()
        .elder(&ElderId::from("E1"))
        .unwrap()
        .clone();
    e.check_in_by = Some("09:30".into());
    sim.ok(Command::UpsertElder {
        by: Actor::Operator(op()),
        elder: e.clone(),
    });
    let ev = until(&mut sim, due(10));
    assert_eq!(
        visits_opened(&ev),
        vec![Timestamp(due(10).0 - HOUR as i64 / 2)]
    );
    e.check_in_by = None;
    sim.ok(Command::UpsertElder {
        by: Actor::Operator(op()),
        elder: e,
    });
    let ev = until(&mut sim, due(12));
    assert!(visits_opened(&ev).is_empty(), "{ev:?}");
    // A time of day that is not one is refused, naming the field.
    let mut bad = sim
        .engine
        .roster()
        .elder(&ElderId::from("E1"))
        .unwrap()
        .clone();
    bad.check_in_by = Some("25:00".into());
    let err = sim
        .cmd(Command::UpsertElder {
            by: Actor::Operator(op()),
            elder: bad,
        })
        .expect_err("refused");
    assert!(err.to_string().contains("check_in_by"), "{err}");
}

#[test]
fn version_3_rules_expect_no_check_in() {
    let mut e = elder("E1", at(0.0, 0.0), "G1", 3, &[]);
    e.check_in_by = Some("10:00".into());
    let mut sim = Sim::new(straight(), roster(vec![], vec![e]), PolicyConfig::default());
    sim.engine.set_decision_version(3);
    sim.now = Timestamp(10 * DAY + 11 * HOUR as i64);
    let ev = until(&mut sim, due(11));
    assert!(visits_opened(&ev).is_empty(), "{ev:?}");
}
