//! Issue 15: a responder retired while on a job is taken off it and replaced by the normal
//! escalation (decision version 4; version 3 refused the retirement), and every roster change
//! and redemption is an event on the operator stream.

use crate::world::*;
use dispatch_core::command::Command;
use dispatch_core::event::{Event, EventRecord, RosterChange, RosterEntry};
use dispatch_core::incident::IncidentStatus;
use dispatch_core::model::{Actor, AlertKind, AssignmentRole, Sla};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::roster::GridRecord;

fn retire(id: &str) -> Command {
    Command::RetireResponder {
        by: Actor::Operator(op()),
        responder_id: rid(id),
    }
}

fn unassigned(ev: &[EventRecord]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match &e.event {
            Event::Unassigned { responder_id, .. } => Some(responder_id.to_string()),
            _ => None,
        })
        .collect()
}

fn assigned(ev: &[EventRecord], role: AssignmentRole) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match &e.event {
            Event::Assigned {
                responder_id,
                role: r,
                ..
            } if *r == role => Some(responder_id.to_string()),
            _ => None,
        })
        .collect()
}

fn changes(ev: &[EventRecord]) -> Vec<(RosterEntry, String, RosterChange)> {
    ev.iter()
        .filter_map(|e| match &e.event {
            Event::RosterChanged {
                entry, id, change, ..
            } => Some((*entry, id.clone(), *change)),
            _ => None,
        })
        .collect()
}

/// E1 falls; V1 (100 m) and V2 (1 km, within a level-2 search: 20 min on foot) are on duty; V1, asked first, accepts.
fn v1_on_the_way() -> (Sim, dispatch_core::ids::IncidentId) {
    let mut sim = Sim::new(
        straight(),
        roster(
            vec![
                volunteer("V1", at(100.0, 0.0)),
                volunteer("V2", at(1000.0, 0.0)),
            ],
            vec![elder("E1", at(0.0, 0.0), "G1", 2, &[])],
        ),
        PolicyConfig::default(),
    );
    sim.on_duty(&["V1", "V2"]);
    let i = incident_of(sim.cmd(fall("a1", "E1")).expect("alert"));
    let first: Vec<_> = offers(&sim.events)
        .into_iter()
        .filter(|o| o.1 == rid("V1"))
        .collect();
    assert_eq!(first.len(), 1, "V1, the nearest, is asked first");
    sim.ok(Command::Accept {
        responder_id: rid("V1"),
        offer_id: first[0].0,
    });
    assert_eq!(
        sim.engine.incident(i).unwrap().summary.status,
        IncidentStatus::Assigned
    );
    (sim, i)
}

#[test]
fn a_volunteer_retired_on_the_way_is_replaced_by_the_next_wave() {
    let (mut sim, i) = v1_on_the_way();

    let ev = sim.ok(retire("V1"));
    assert_eq!(unassigned(&ev), vec!["V1"]);
    assert_eq!(
        changes(&ev),
        vec![(RosterEntry::Responder, "V1".into(), RosterChange::Retired)]
    );
    let view = sim.engine.incident(i).unwrap();
    assert!(view.summary.community.is_empty(), "{:?}", view.summary);
    assert!(sim.engine.responder(&rid("V1")).is_none());
    // Somebody else is asked: at once if V2 was never asked, or when V2 may be asked again.
    let mut later = ev.clone();
    if !offered_to(&later).contains(&"V2".to_string()) {
        later.extend(sim.advance(180_000));
    }
    let v2: Vec<_> = offers(&later)
        .into_iter()
        .filter(|o| o.1 == rid("V2") && o.2 == i)
        .collect();
    assert!(!v2.is_empty(), "V2 was not asked after V1 left: {later:#?}");
    assert!(
        !later.iter().any(|e| matches!(
            e.event,
            Event::SlaBreached {
                sla: Sla::FirstAccept,
                ..
            }
        )),
        "the first accept happened; its promise is not breached again"
    );
    let o = v2.last().unwrap().0;
    let ev = sim.ok(Command::Accept {
        responder_id: rid("V2"),
        offer_id: o,
    });
    assert_eq!(assigned(&ev, AssignmentRole::Community), vec!["V2"]);
    let view = sim.engine.incident(i).unwrap();
    assert_eq!(view.summary.status, IncidentStatus::Assigned);
    assert_eq!(view.summary.community, vec![rid("V2")]);
}

#[test]
fn a_volunteer_retired_at_the_door_reopens_the_search() {
    let (mut sim, i) = v1_on_the_way();
    sim.ok(Command::Arrived {
        responder_id: rid("V1"),
        incident_id: i,
    });
    assert_eq!(
        sim.engine.incident(i).unwrap().summary.status,
        IncidentStatus::OnScene
    );
    sim.ok(retire("V1"));
    let view = sim.engine.incident(i).unwrap();
    assert_eq!(view.summary.status, IncidentStatus::Dispatching);
    assert!(view.arrived.is_empty(), "{:?}", view.arrived);
    // Nobody is left at the door: the incident is open and offered again, not resolved.
    let later = sim.advance(180_000);
    assert!(offers(&sim.events)
        .iter()
        .any(|o| o.1 == rid("V2") && o.2 == i));
    assert!(!later
        .iter()
        .any(|e| matches!(e.event, Event::IncidentResolved { .. })));
}

#[test]
fn an_ambulance_retired_on_the_way_is_replaced_by_another() {
    let mut sim = Sim::new(
        straight(),
        roster(
            vec![
                ambulance("A1", at(1000.0, 0.0)),
                ambulance("A2", at(3000.0, 0.0)),
            ],
            vec![elder("E1", at(0.0, 0.0), "G1", 2, &[])],
        ),
        PolicyConfig::default(),
    );
    sim.on_duty(&["A1", "A2"]);
    let mut a = alert("a1", "E1", AlertKind::Fall, None);
    a.ambulance_requested = true;
    let i = incident_of(sim.cmd(Command::Alert(a)).expect("alert"));
    assert_eq!(assigned(&sim.events, AssignmentRole::Ambulance), vec!["A1"]);
    let ev = sim.ok(retire("A1"));
    assert_eq!(unassigned(&ev), vec!["A1"]);
    assert_eq!(assigned(&ev, AssignmentRole::Ambulance), vec!["A2"]);
    assert_eq!(
        sim.engine.incident(i).unwrap().summary.ambulance,
        Some(rid("A2"))
    );
}

#[test]
fn every_roster_change_is_an_event_naming_the_entry_and_what_changed() {
    let mut sim = Sim::new(
        straight(),
        roster(vec![], vec![elder("E1", at(0.0, 0.0), "G1", 2, &[])]),
        PolicyConfig::default(),
    );
    let by = || Actor::Operator(op());
    let mut v = volunteer("N1", at(80.0, 0.0));
    v.token_sha256 = Some(digest(901));
    let mut ev = sim.ok(Command::UpsertResponder {
        by: by(),
        responder: v.clone(),
    });
    v.token_sha256 = Some(digest(902));
    ev.extend(sim.ok(Command::UpsertResponder {
        by: by(),
        responder: v.clone(),
    }));
    v.skills = vec!["cleaning".into()];
    ev.extend(sim.ok(Command::UpsertResponder {
        by: by(),
        responder: v.clone(),
    }));
    ev.extend(sim.ok(Command::UpsertGrid {
        by: by(),
        grid: GridRecord {
            id: "G7".into(),
            name: "Vila Nova".into(),
        },
    }));
    ev.extend(sim.ok(Command::RetireGrid {
        by: by(),
        grid_id: grid("G7"),
    }));
    let mut e = elder("E1", at(0.0, 0.0), "G1", 3, &[]);
    ev.extend(sim.ok(Command::UpsertElder {
        by: by(),
        elder: e.clone(),
    }));
    e.id = "E2".into();
    ev.extend(sim.ok(Command::UpsertElder { by: by(), elder: e }));
    ev.extend(sim.ok(Command::RetireElder {
        by: by(),
        elder_id: "E2".into(),
    }));
    ev.extend(sim.ok(retire("N1")));
    use RosterChange::*;
    use RosterEntry::*;
    assert_eq!(
        changes(&ev),
        vec![
            (Responder, "N1".into(), Added),
            (Responder, "N1".into(), TokenIssued),
            (Responder, "N1".into(), Changed),
            (Grid, "G7".into(), Added),
            (Grid, "G7".into(), Retired),
            (Elder, "E1".into(), Changed),
            (Elder, "E2".into(), Added),
            (Elder, "E2".into(), Retired),
            (Responder, "N1".into(), Retired),
        ]
    );
    assert!(ev.iter().all(|e| matches!(
        &e.event,
        Event::RosterChanged { by: Actor::Operator(o), .. } if *o == op()
    )));
    // Replayed by the rules of version 3, the same changes decide no event at all.
    let mut old = Sim::new(
        straight(),
        roster(vec![], vec![elder("E1", at(0.0, 0.0), "G1", 2, &[])]),
        PolicyConfig::default(),
    );
    old.engine.set_decision_version(3);
    old.ok(Command::UpsertResponder {
        by: by(),
        responder: v,
    });
    assert!(old.events.is_empty(), "{:?}", old.events);
}

/// A journal tail written by version 3: a roster change decided no event and so has no
/// Decisions record. Replayed by today's engine it must still decide none, or every later
/// event's `seq` would be one off and replay would refuse the data directory.
#[test]
fn a_roster_change_journaled_by_version_3_replays_without_an_event() {
    use dispatch_core::journal::{Entry, Record, RegionId, Replayer};
    let fresh = || {
        Sim::new(
            straight(),
            roster(vec![], vec![elder("E1", at(0.0, 0.0), "G1", 2, &[])]),
            PolicyConfig::default(),
        )
    };
    let region = RegionId(0);
    let add = Command::UpsertResponder {
        by: Actor::Operator(op()),
        responder: volunteer("N1", at(80.0, 0.0)),
    };
    let on_duty = Command::SetAvailability {
        responder_id: rid("N1"),
        status: dispatch_core::model::Availability::Available,
    };
    // What version 3 wrote, decided by a version-3 engine.
    let mut live = fresh();
    live.engine.set_decision_version(3);
    let mut records = Vec::new();
    for c in [add, on_duty] {
        let before = live.events.len();
        live.ok(c.clone());
        records.push(Record::command(region, live.now, c));
        if let Some(mut d) = Record::decisions(region, live.events[before..].to_vec()) {
            if let Entry::Decisions {
                decision_version, ..
            } = &mut d.entry
            {
                *decision_version = 3;
            }
            records.push(d);
        }
    }
    assert_eq!(
        records.len(),
        3,
        "the change has no Decisions record: {records:?}"
    );
    // Replayed by today's engine.
    let mut today = fresh();
    let mut rep = Replayer::new();
    for (k, r) in records.iter().enumerate() {
        rep.apply_before(&mut today.engine, r, records.get(k + 1))
            .unwrap_or_else(|e| panic!("record {k}: {e}"));
    }
    assert_eq!(rep.verified, 1);
    assert_eq!(today.engine.last_seq(), live.engine.last_seq());
    // Recovery then hands the engine today's rules (as `restore_engine` does).
    today
        .engine
        .set_decision_version(dispatch_core::journal::DECISION_VERSION);
    let ev = today.ok(retire("N1"));
    assert_eq!(changes(&ev).len(), 1, "{ev:?}");
}
