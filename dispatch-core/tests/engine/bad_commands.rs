//! Refused commands: each returns its typed error and leaves the engine exactly as it was
//! (compared through `save_state`, which includes the sequence counter and queued events).

use crate::world::*;
use dispatch_core::command::{Command, Reply};
use dispatch_core::error::CommandError;
use dispatch_core::geo::LatLon;
use dispatch_core::ids::{AlertId, ElderId, IncidentId, OfferId};
use dispatch_core::model::{Actor, AlertKind, Availability, ResponderKind, TravelMode};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::roster::GridRecord;

fn refused(sim: &mut Sim, c: Command, code: &str) {
    let before = sim.engine.save_state();
    let seq = sim.engine.last_seq();
    let r = sim.engine.handle_command(sim.now, c.clone());
    match r {
        Err(e) => assert_eq!(e.code(), code, "{c:?} -> {e}"),
        Ok(ok) => panic!("{c:?} was accepted: {ok:?}"),
    }
    assert_eq!(sim.engine.last_seq(), seq);
    assert!(sim.engine.poll_event().is_none());
    assert_eq!(sim.engine.save_state(), before, "{c:?} changed the state");
}

#[test]
fn refused_commands_change_nothing() {
    let ps = vec![
        volunteer("V1", at(100.0, 0.0)),
        volunteer("V2", at(150.0, 0.0)),
        volunteer("V3", at(5000.0, 0.0)),
        responder(
            "A1",
            ResponderKind::Ambulance,
            TravelMode::Car,
            at(1000.0, 0.0),
        ),
    ];
    let es = vec![
        elder("E1", at(0.0, 0.0), "G1", 2, &[]),
        elder("E2", at(0.0, 300.0), "G1", 2, &[]),
    ];
    let mut sim = Sim::new(straight(), roster(ps, es), PolicyConfig::default());
    sim.on_duty(&["V1", "V2", "A1"]);
    let ev = sim.ok(fall("a1", "E1"));
    let o = offers(&ev);
    let (o1, o2) = (
        o.iter().find(|x| x.1.as_str() == "V1").unwrap().0,
        o.iter().find(|x| x.1.as_str() == "V2").unwrap().0,
    );
    let i1 = o[0].2;

    // An alert naming an unknown elder is not refused (it goes to an operator: see
    // mixed_requests.rs); one from an unknown device is.
    let mut stranger = alert("zz", "E1", AlertKind::Fall, None);
    stranger.device_id = "GW404".into();
    refused(&mut sim, Command::Alert(stranger), "invalid");
    refused(
        &mut sim,
        Command::Location {
            responder_id: rid("R404"),
            position: at(0.0, 0.0),
        },
        "unknown_responder",
    );
    refused(
        &mut sim,
        Command::Accept {
            responder_id: rid("V1"),
            offer_id: OfferId(999),
        },
        "unknown_offer",
    );
    refused(
        &mut sim,
        Command::Accept {
            responder_id: rid("V1"),
            offer_id: o2,
        },
        "not_your_offer",
    );
    refused(
        &mut sim,
        Command::Decline {
            responder_id: rid("V3"),
            offer_id: o1,
        },
        "not_your_offer",
    );
    refused(
        &mut sim,
        Command::Arrived {
            responder_id: rid("V1"),
            incident_id: IncidentId(77),
        },
        "unknown_incident",
    );
    refused(
        &mut sim,
        Command::Arrived {
            responder_id: rid("V1"),
            incident_id: i1,
        },
        "not_assigned",
    );
    refused(
        &mut sim,
        Command::Complete {
            responder_id: rid("V3"),
            incident_id: i1,
        },
        "not_assigned",
    );
    refused(
        &mut sim,
        Command::CancelAlert {
            alert_id: AlertId::from("nope"),
            device_id: gw(),
        },
        "unknown_alert",
    );
    // Off the map: a responder's location (an alert's goes to an operator).
    refused(
        &mut sim,
        Command::Location {
            responder_id: rid("V3"),
            position: LatLon {
                lat: 95.0,
                lon: 0.0,
            },
        },
        "off_map",
    );
    refused(
        &mut sim,
        Command::Location {
            responder_id: rid("V3"),
            position: LatLon::new(0.0, 0.0).unwrap(),
        },
        "off_map",
    );
    // Going available while holding an offer is a reconnecting phone's no-op (issue 12,
    // defect 5): accepted, and nothing changes.
    let before = sim.engine.save_state();
    sim.ok(Command::SetAvailability {
        responder_id: rid("V1"),
        status: Availability::Available,
    });
    assert_eq!(sim.engine.save_state(), before);
    // Impossible transitions.
    sim.ok(Command::Accept {
        responder_id: rid("V1"),
        offer_id: o1,
    });
    refused(
        &mut sim,
        Command::SetAvailability {
            responder_id: rid("V1"),
            status: Availability::OffDuty,
        },
        "invalid_transition",
    );
    refused(
        &mut sim,
        Command::Complete {
            responder_id: rid("V1"),
            incident_id: i1,
        },
        "invalid_transition",
    );
    refused(
        &mut sim,
        Command::Accept {
            responder_id: rid("V2"),
            offer_id: o2,
        },
        "offer_closed",
    );
    // Retiring V1, who is on E1's incident, is accepted from decision version 4 on (V1 is
    // taken off it: tests/engine/retire_on_job.rs); version 3 refused it.
    sim.engine.set_decision_version(3);
    refused(
        &mut sim,
        Command::RetireResponder {
            by: Actor::Operator(op()),
            responder_id: rid("V1"),
        },
        "invalid_transition",
    );
    sim.engine
        .set_decision_version(dispatch_core::journal::DECISION_VERSION);
    refused(
        &mut sim,
        Command::RetireElder {
            by: Actor::Operator(op()),
            elder_id: ElderId::from("E1"),
        },
        "invalid",
    );
    refused(
        &mut sim,
        Command::RetireGrid {
            by: Actor::Operator(op()),
            grid_id: grid("G1"),
        },
        "invalid",
    );
    refused(
        &mut sim,
        Command::UpsertGrid {
            by: Actor::Device(gw()),
            grid: GridRecord {
                id: "G9".into(),
                name: String::new(),
            },
        },
        "invalid",
    );
    let mut bad = elder("E9", at(0.0, 0.0), "G404", 2, &[]);
    refused(
        &mut sim,
        Command::UpsertElder {
            by: Actor::Operator(op()),
            elder: bad.clone(),
        },
        "unknown_grid",
    );
    bad.grid_id = grid("G1");
    bad.paired_responders = vec![rid("V404")];
    refused(
        &mut sim,
        Command::UpsertElder {
            by: Actor::Operator(op()),
            elder: bad,
        },
        "unknown_responder",
    );
    refused(
        &mut sim,
        Command::Assign {
            operator_id: op(),
            incident_id: i1,
            responder_id: rid("V3"),
        },
        "invalid_transition",
    );
    sim.ok(Command::Cancel {
        operator_id: op(),
        incident_id: i1,
        reason: "test".into(),
    });
    refused(
        &mut sim,
        Command::Resolve {
            operator_id: op(),
            incident_id: i1,
            note: String::new(),
        },
        "incident_closed",
    );
    refused(
        &mut sim,
        Command::Arrived {
            responder_id: rid("V1"),
            incident_id: i1,
        },
        "incident_closed",
    );
    // Help without a service.
    refused(
        &mut sim,
        Command::Alert(alert("h", "E2", AlertKind::Help, None)),
        "invalid",
    );
}

#[test]
fn accepted_roster_changes_take_effect() {
    let mut sim = Sim::new(
        straight(),
        roster(vec![], vec![elder("E1", at(0.0, 0.0), "G1", 2, &[])]),
        PolicyConfig::default(),
    );
    sim.ok(Command::UpsertResponder {
        by: Actor::Operator(op()),
        responder: volunteer("N1", at(80.0, 0.0)),
    });
    sim.on_duty(&["N1"]);
    let ev = sim.ok(fall("a1", "E1"));
    assert_eq!(offered_to(&ev), vec!["N1"]);
    let o = offers(&ev)[0].0;
    let ev = sim.ok(Command::RetireResponder {
        by: Actor::Operator(op()),
        responder_id: rid("N1"),
    });
    assert!(ev.iter().any(|e| matches!(e.event, dispatch_core::event::Event::OfferWithdrawn { offer_id, .. } if offer_id == o)));
    assert!(sim.engine.responder(&rid("N1")).is_none());
    assert!(matches!(
        sim.cmd(Command::Location {
            responder_id: rid("N1"),
            position: at(0.0, 0.0)
        }),
        Err(CommandError::UnknownResponder(_))
    ));
}

/// A time-bank redemption (issue 15) is a command like any other: refused for an unknown
/// responder or operator, a caller that is not an operator, a field out of bounds, or a balance
/// that would go negative without the override, each time changing nothing; accepted, it
/// answers its ledger entry, emits `time_bank_redeemed` with it, and is kept by `save_state`.
#[test]
fn time_bank_redemptions_are_refused_without_change_or_recorded() {
    let mut sim = Sim::new(
        straight(),
        roster(
            vec![volunteer("V1", at(100.0, 0.0))],
            vec![elder("E1", at(0.0, 0.0), "G1", 2, &[])],
        ),
        PolicyConfig::default(),
    );
    let redeem =
        |who: &str, by: Actor, minutes: u32, note: &str, over: bool| Command::RedeemTimeBank {
            by,
            responder_id: rid(who),
            minutes,
            note: note.into(),
            override_negative: over,
        };
    let by = || Actor::Operator(op());
    refused(
        &mut sim,
        redeem("V1", by(), 5, "", false),
        "insufficient_balance",
    );
    refused(
        &mut sim,
        redeem("V404", by(), 5, "", true),
        "unknown_responder",
    );
    refused(
        &mut sim,
        redeem("V1", Actor::Operator("OP404".into()), 5, "", true),
        "invalid",
    );
    refused(
        &mut sim,
        redeem("V1", Actor::Device(gw()), 5, "", true),
        "invalid",
    );
    refused(&mut sim, redeem("V1", by(), 0, "", true), "invalid");
    refused(&mut sim, redeem("V1", by(), 100_001, "", true), "invalid");
    refused(
        &mut sim,
        redeem("V1", by(), 1, &"x".repeat(201), true),
        "invalid",
    );

    let seq = sim.engine.last_seq();
    let reply = sim
        .cmd(redeem("V1", by(), 5, "agreed", true))
        .expect("accepted");
    let Reply::TimeBankRedeemed { entry } = reply else {
        panic!("{reply:?}");
    };
    assert_eq!(entry.balance_minutes(), -5);
    assert_eq!(sim.engine.last_seq(), seq + 1, "a redemption is one event");
    assert_eq!(
        sim.events.last().map(|e| &e.event),
        Some(&dispatch_core::event::Event::TimeBankRedeemed {
            responder_id: rid("V1"),
            entry: entry.clone(),
        })
    );
    let tb = sim.engine.time_bank(&rid("V1")).unwrap();
    assert_eq!((tb.balance_minutes, tb.entries.len()), (-5, 1));
    assert_eq!(tb.entries[0], entry);
    let state = sim.engine.save_state();
    let again: dispatch_core::engine::EngineState =
        serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
    assert_eq!(again, state);
    // Now negative: even a small redemption needs the override.
    refused(
        &mut sim,
        redeem("V1", by(), 1, "", false),
        "insufficient_balance",
    );
}
