//! Issue 12, gap 8: services and welfare visits have promises of their own (decision version
//! 4): accepted within `sla_job_accept_ms` (10 min) of their offers going out, then the next
//! wave at once; somebody at the door within `sla_job_on_scene_ms` (60 min), or by a scheduled
//! service's requested time, then the operators are asked to step in.

use crate::world::*;
use dispatch_core::command::Command;
use dispatch_core::event::{Event, EventRecord};
use dispatch_core::model::{AlertKind, ServiceKind, Sla};
use dispatch_core::policy::PolicyConfig;

const MIN: u64 = 60_000;

fn breaches(ev: &[EventRecord]) -> Vec<(Sla, u64)> {
    ev.iter()
        .filter_map(|e| match &e.event {
            Event::SlaBreached { sla, deadline, .. } => Some((*sla, deadline.0 as u64)),
            _ => None,
        })
        .collect()
}

fn shopper() -> Sim {
    let mut s = volunteer("S1", at(100.0, 0.0));
    s.skills = vec!["shopping".into()];
    let mut sim = Sim::new(
        straight(),
        roster(vec![s], vec![elder("E1", at(0.0, 0.0), "G1", 2, &[])]),
        PolicyConfig::default(),
    );
    sim.on_duty(&["S1"]);
    sim
}

fn shopping(id: &str) -> Command {
    Command::Alert(alert(
        id,
        "E1",
        AlertKind::Help,
        Some(ServiceKind::Shopping),
    ))
}

#[test]
fn a_service_nobody_accepts_breaches_its_promises_and_escalates() {
    let mut sim = shopper();
    let t0 = sim.now.0 as u64;
    let i = incident_of(sim.cmd(shopping("h1")).expect("alert"));
    assert_eq!(offered_to(&sim.events), vec!["S1"]);
    // S1 lets it go by; at 10 min the accept promise is breached and escalated.
    let ev = sim.advance(10 * MIN);
    assert_eq!(breaches(&ev), vec![(Sla::JobAccept, t0 + 10 * MIN)]);
    assert!(
        ev.iter().any(|e| matches!(&e.event, Event::Escalated { reason, .. } if reason.contains("within 10 min"))),
        "{ev:#?}"
    );
    // At 60 min nobody is at the door: breached, and the operators are asked.
    let ev = sim.advance(50 * MIN);
    assert_eq!(breaches(&ev), vec![(Sla::JobOnScene, t0 + 60 * MIN)]);
    assert!(ev.iter().any(
        |e| matches!(&e.event, Event::Escalated { reason, .. } if reason.contains("operator"))
    ));
    // The clocks an operator sees hold the same deadlines, breached.
    let view = sim.engine.incident(i).unwrap();
    let clocks: Vec<_> = view
        .summary
        .clocks
        .iter()
        .map(|c| (c.sla, c.deadline.0 as u64, c.breached))
        .collect();
    assert_eq!(
        clocks,
        vec![
            (Sla::JobAccept, t0 + 10 * MIN, true),
            (Sla::JobOnScene, t0 + 60 * MIN, true)
        ]
    );
}

#[test]
fn a_service_accepted_and_reached_in_time_breaches_nothing() {
    let mut sim = shopper();
    let i = incident_of(sim.cmd(shopping("h1")).expect("alert"));
    let o = offers(&sim.events)[0].0;
    sim.advance(3 * MIN);
    sim.ok(Command::Accept {
        responder_id: rid("S1"),
        offer_id: o,
    });
    sim.advance(40 * MIN);
    sim.ok(Command::Arrived {
        responder_id: rid("S1"),
        incident_id: i,
    });
    let later = sim.advance(3 * 60 * MIN);
    assert!(
        breaches(&sim.events).is_empty(),
        "{:?}",
        breaches(&sim.events)
    );
    assert!(breaches(&later).is_empty());
    let clocks = sim.engine.incident(i).unwrap().summary.clocks;
    assert!(
        clocks.iter().all(|c| c.met_at.is_some() && !c.breached),
        "{clocks:?}"
    );
}

#[test]
fn a_scheduled_service_is_due_at_the_door_by_its_requested_time() {
    let mut sim = shopper();
    let t0 = sim.now.0 as u64;
    let mut a = alert("h1", "E1", AlertKind::Help, Some(ServiceKind::Shopping));
    let wanted = t0 + 3 * 60 * MIN;
    a.scheduled_for = Some(dispatch_core::time::Timestamp(wanted as i64));
    sim.ok(Command::Alert(a));
    // Offers go out an hour before (service_lead_ms): the accept promise counts from then.
    let lead = PolicyConfig::default().service_lead_ms;
    let ev = sim.advance(4 * 60 * MIN);
    assert_eq!(
        breaches(&ev),
        vec![
            (Sla::JobAccept, wanted - lead + 10 * MIN),
            (Sla::JobOnScene, wanted)
        ]
    );
}

#[test]
fn a_welfare_visit_has_the_same_promises_and_version_3_had_none() {
    let mut sim = Sim::new(
        straight(),
        roster(vec![], vec![elder("E1", at(0.0, 0.0), "G1", 2, &[])]),
        PolicyConfig::default(),
    );
    let visit = |id: &str| Command::Alert(alert(id, "E1", AlertKind::CheckInMissed, None));
    sim.ok(visit("c1"));
    let ev = sim.advance(61 * MIN);
    let got: Vec<Sla> = breaches(&ev).into_iter().map(|b| b.0).collect();
    assert_eq!(got, vec![Sla::JobAccept, Sla::JobOnScene]);
    // Replaying a version-3 journal decides no such promise.
    let mut old = Sim::new(
        straight(),
        roster(vec![], vec![elder("E1", at(0.0, 0.0), "G1", 2, &[])]),
        PolicyConfig::default(),
    );
    old.engine.set_decision_version(3);
    old.ok(visit("c1"));
    let ev = old.advance(61 * MIN);
    assert!(breaches(&ev).is_empty(), "{ev:?}");
}
