//! Issue 12's defects, one regression test each, over the engine on virtual time and the real
//! Porto Alegre roads: requests of one elder that mix (a fall during a meal request), alerts
//! that repeat (resends, two gateways with one alert id), alerts the engine cannot dispatch
//! (unknown elder, off the map), and surges that must not use up responders.

use crate::world::*;
use dispatch_core::command::{Command, Reply};
use dispatch_core::error::CommandError;
use dispatch_core::event::Event;
use dispatch_core::geo::LatLon;
use dispatch_core::ids::{AlertId, IncidentId};
use dispatch_core::incident::IncidentStatus;
use dispatch_core::model::{AlertKind, Availability, ResponderKind, ServiceKind, Sla, TravelMode};
use dispatch_core::policy::{Plan, PolicyConfig};
use dispatch_core::roster::DeviceRecord;
use std::collections::BTreeMap;

fn help(id: &str, elder: &str, s: ServiceKind) -> Command {
    Command::Alert(alert(id, elder, AlertKind::Help, Some(s)))
}

fn accepted(r: Reply) -> (IncidentId, bool, bool, Option<String>) {
    match r {
        Reply::AlertAccepted {
            incident_id,
            duplicate,
            merged,
            problem,
        } => (
            incident_id,
            duplicate,
            merged,
            problem.map(|p| p.code.code().to_string()),
        ),
        other => panic!("not an alert reply: {other:?}"),
    }
}

/// A cook (volunteer with the meal skill) far away, service staff with the meal skill next
/// door, and an ordinary volunteer 100 m from E1.
fn kitchen() -> Sim {
    let mut cook = volunteer("C1", at(900.0, 0.0));
    cook.skills = vec!["meal".into()];
    let mut staff = responder(
        "S1",
        ResponderKind::ServiceStaff,
        TravelMode::Foot,
        at(60.0, 0.0),
    );
    staff.skills = vec!["meal".into()];
    let ps = vec![cook, staff, volunteer("V1", at(100.0, 0.0))];
    let mut sim = Sim::new(
        porto_alegre(),
        roster(ps, vec![elder("E1", at(0.0, 0.0), "G1", 2, &[])]),
        PolicyConfig::default(),
    );
    sim.on_duty(&["C1", "S1", "V1"]);
    sim
}

/// Defect 1: a fall that arrived while the elder's meal request was open kept the meal's
/// label (priority 1, 5-minute offers, service staff accepting an emergency).
#[test]
fn defect_1_a_fall_during_a_meal_request_is_handled_as_an_emergency() {
    let mut sim = kitchen();
    let (meal, ..) = accepted(sim.cmd(help("m1", "E1", ServiceKind::Meal)).unwrap());
    let mut meal_offers = offered_to(&sim.events);
    meal_offers.sort();
    assert_eq!(
        meal_offers,
        vec!["C1", "S1"],
        "the meal goes to those with the skill"
    );
    let t0 = sim.now;
    let ev = sim.ok(fall("f1", "E1"));
    let fall_id = match &ev[0].event {
        Event::IncidentOpened {
            incident_id,
            priority,
            ..
        } => {
            assert_eq!(*priority, 4, "an emergency's priority for care level 2");
            *incident_id
        }
        other => panic!("a fall opens its own incident, got {other:?}"),
    };
    assert_ne!(fall_id, meal);
    // Its own offers: an emergency's 30-second window, never to service staff.
    let fall_offers: Vec<_> = ev
        .iter()
        .filter_map(|e| match &e.event {
            Event::OfferSent {
                incident_id,
                responder_id,
                expires_at,
                ..
            } if *incident_id == fall_id => Some((responder_id.to_string(), *expires_at)),
            _ => None,
        })
        .collect();
    // V1 only: never S1 (service staff), and not C1, whose meal offer an emergency takes
    // over only next door (C1 is a quarter of an hour away on foot).
    assert_eq!(fall_offers, vec![("V1".to_string(), t0.plus_ms(30_000))]);
    let fall_view = sim.engine.incident(fall_id).unwrap().summary;
    assert_eq!((fall_view.plan, fall_view.priority), (Plan::Emergency, 4));
    assert!(
        !fall_view.clocks.is_empty(),
        "an emergency's promise clocks run"
    );
    // The meal is still wanted, still a service, its offers still open.
    let meal_view = sim.engine.incident(meal).unwrap().summary;
    assert_eq!((meal_view.plan, meal_view.priority), (Plan::Service, 1));
    assert_eq!(meal_view.open_offers.len(), 2);
    // The emergency's clocks, not the meal's: 30 s later the first-accept promise is broken
    // for the fall alone.
    let later = sim.advance(31_000);
    let breaches: Vec<IncidentId> = later
        .iter()
        .filter_map(|e| match &e.event {
            Event::SlaBreached {
                incident_id,
                sla: Sla::FirstAccept,
                ..
            } => Some(*incident_id),
            _ => None,
        })
        .collect();
    assert_eq!(breaches, vec![fall_id]);
}

/// Defect 2: with one open incident per elder, a meal asked for during a fall disappeared
/// into the fall. A different need is a different job; a repeat of the same need merges.
#[test]
fn defect_2_a_different_need_is_a_new_incident_and_a_repeat_merges() {
    let mut sim = kitchen();
    let (f, dup, merged, _) = accepted(sim.cmd(fall("f1", "E1")).unwrap());
    assert!(!dup && !merged);
    let (again, _, merged, _) = accepted(sim.cmd(help("r1", "E1", ServiceKind::Rescue)).unwrap());
    assert_eq!(
        (again, merged),
        (f, true),
        "a rescue call during a fall is the same need"
    );
    let (meal, _, merged, _) = accepted(sim.cmd(help("m1", "E1", ServiceKind::Meal)).unwrap());
    assert!(meal != f && !merged, "a meal during a fall is its own job");
    let (meal2, _, merged, _) = accepted(sim.cmd(help("m2", "E1", ServiceKind::Meal)).unwrap());
    assert_eq!(
        (meal2, merged),
        (meal, true),
        "a second meal request repeats the first"
    );
    let (clean, _, merged, _) = accepted(sim.cmd(help("c1", "E1", ServiceKind::Cleaning)).unwrap());
    assert!(clean != meal && clean != f && !merged);
    let (visit, _, merged, _) = accepted(
        sim.cmd(Command::Alert(alert(
            "w1",
            "E1",
            AlertKind::CheckInMissed,
            None,
        )))
        .unwrap(),
    );
    assert_eq!(
        (visit, merged),
        (f, true),
        "a missed check-in joins the emergency already bringing someone to the door"
    );
    // Handling the fall leaves the meal and the cleaning wanted.
    sim.ok(Command::Resolve {
        operator_id: op(),
        incident_id: f,
        note: "back in bed".into(),
    });
    for i in [meal, clean] {
        assert!(
            sim.engine.incident(i).unwrap().summary.status.is_open(),
            "{i}"
        );
    }
    // A fall now opens a new emergency (the old one is closed).
    let (f2, _, merged, _) = accepted(sim.cmd(fall("f2", "E1")).unwrap());
    assert!(f2 != f && !merged);
}

/// An emergency calls off the elder's welfare visit that nobody has reached yet (it brings
/// someone to the door); the reason names the emergency.
#[test]
fn an_emergency_calls_off_a_welfare_visit_nobody_reached() {
    let mut sim = kitchen();
    let (visit, ..) = accepted(
        sim.cmd(Command::Alert(alert(
            "w1",
            "E1",
            AlertKind::CheckInMissed,
            None,
        )))
        .unwrap(),
    );
    let (f, ..) = accepted(sim.cmd(fall("f1", "E1")).unwrap());
    assert_ne!(visit, f);
    let v = sim.engine.incident(visit).unwrap();
    assert_eq!(v.summary.status, IncidentStatus::Cancelled);
    let said = v.timeline.iter().any(|e| {
        matches!(&e.event, Event::IncidentCancelled { reason, .. } if reason.contains(&f.to_string()))
    });
    assert!(said, "{:?}", v.timeline.last());
}

/// Defect 4: in a surge, wave 1 of an incident whose first offer came from the joint round
/// was completed to wave 2's size (3 + 2 = 5 people asked).
#[test]
fn defect_4_a_surge_asks_wave_one_of_three() {
    let vs: Vec<_> = (0..12)
        .map(|i| volunteer(&format!("V{i}"), at(50.0 * i as f64 - 300.0, 40.0)))
        .collect();
    let es = vec![
        elder("E1", at(-150.0, 0.0), "G1", 2, &[]),
        elder("E2", at(150.0, 0.0), "G1", 2, &[]),
        elder("E3", at(0.0, 150.0), "G1", 2, &[]),
    ];
    let config = PolicyConfig {
        dispatch_batched: true,
        ..PolicyConfig::default()
    };
    // The three falls in one batch, by the rules of `version`: people asked per incident.
    let surge = |version: u32| -> BTreeMap<IncidentId, usize> {
        let mut sim = Sim::new(
            porto_alegre(),
            roster(vs.clone(), es.clone()),
            config.clone(),
        );
        sim.engine.set_decision_version(version);
        let ids: Vec<String> = (0..12).map(|i| format!("V{i}")).collect();
        sim.on_duty(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        let now = sim.now;
        for (a, e) in [("a1", "E1"), ("a2", "E2"), ("a3", "E3")] {
            sim.engine.handle_command(now, fall(a, e)).unwrap();
        }
        sim.engine.handle_timeout(now);
        let mut ev = Vec::new();
        while let Some(e) = sim.engine.poll_event() {
            ev.push(e);
        }
        let joint = ev.iter().any(|e| {
            matches!(&e.event, Event::OfferSent { reason, .. } if reason.contains("joint assignment"))
        });
        assert!(joint, "the three falls were ranked jointly");
        let mut per_incident: BTreeMap<IncidentId, usize> = BTreeMap::new();
        for (_, _, i, wave) in offers(&ev) {
            assert_eq!(wave, 1);
            *per_incident.entry(i).or_default() += 1;
        }
        per_incident
    };
    let today = surge(dispatch_core::journal::DECISION_VERSION);
    assert_eq!(today.len(), 3);
    for (i, n) in &today {
        assert_eq!(*n, config.wave_size(1), "{i} asked {n} people in wave 1");
    }
    // The defect, as version 2 decided it (kept for replay): some incident asked 5.
    let before = surge(2);
    assert!(
        before.values().any(|&n| n > config.wave_size(1)),
        "{before:?}"
    );
}

/// Defect 6: an alert naming an unknown elder, or a position off the map, was answered 422
/// and dropped. It is now kept, as an incident an operator must handle (nobody is offered
/// it), and the device is told exactly what was wrong.
#[test]
fn defect_6_an_undispatchable_alert_reaches_an_operator() {
    let mut sim = kitchen();
    let (i, dup, _, problem) = accepted(sim.cmd(fall("z1", "E404")).unwrap());
    assert!(!dup);
    assert_eq!(problem.as_deref(), Some("unknown_elder"));
    let v = sim.engine.incident(i).unwrap();
    let p = v
        .summary
        .needs_operator
        .clone()
        .expect("flagged for operators");
    assert!(p.message.contains("E404"), "{}", p.message);
    assert!(
        matches!(&v.timeline[0].event, Event::IncidentOpened { reason, .. }
        if reason.contains("NEEDS AN OPERATOR") && reason.contains("GW1"))
    );
    assert!(v.summary.open_offers.is_empty());
    assert!(
        sim.engine
            .snapshot_view()
            .incidents
            .iter()
            .any(|s| s.id == i),
        "operators see it among the open incidents"
    );
    // A resend is the same incident, with the same problem.
    let (again, dup, _, problem) = accepted(sim.cmd(fall("z1", "E404")).unwrap());
    assert_eq!(
        (again, dup, problem.as_deref()),
        (i, true, Some("unknown_elder"))
    );
    // Off the map: the raw position is in the reason.
    let mut far = alert("z2", "E1", AlertKind::Fall, None);
    far.position = Some(LatLon::new(10.0, 10.0).unwrap());
    let (off, _, _, problem) = accepted(sim.cmd(Command::Alert(far)).unwrap());
    assert_eq!(problem.as_deref(), Some("off_map"));
    let v = sim.engine.incident(off).unwrap();
    assert!(
        matches!(&v.timeline[0].event, Event::IncidentOpened { reason, .. }
        if reason.contains("position 10,10"))
    );
    // An operator cannot assign one (no route or ETA to give): refused, naming why.
    let refused = sim
        .engine
        .handle_command(
            sim.now,
            Command::Assign {
                operator_id: op(),
                incident_id: i,
                responder_id: rid("V1"),
            },
        )
        .unwrap_err();
    assert!(refused.to_string().contains("E404"), "{refused}");
    // Nobody is ever offered them, however long they wait; an operator closes them.
    let later = sim.advance(120_000);
    assert!(offers(&later).iter().all(|o| o.2 != i && o.2 != off));
    for id in [i, off] {
        sim.ok(Command::Resolve {
            operator_id: op(),
            incident_id: id,
            note: "phoned the family".into(),
        });
    }
}

/// Defect 7: duplicates keyed on `alert_id` alone, so gateway GW2's alert 0001 for E2 was
/// answered as a duplicate of GW1's 0001 for E1 and nobody went to E2.
#[test]
fn defect_7_two_gateways_may_use_one_alert_id() {
    let mut r = roster(
        vec![
            volunteer("V1", at(100.0, 0.0)),
            volunteer("V2", at(100.0, 400.0)),
        ],
        vec![
            elder("E1", at(0.0, 0.0), "G1", 2, &[]),
            elder("E2", at(0.0, 400.0), "G1", 2, &[]),
        ],
    );
    r.devices.push(DeviceRecord {
        id: "GW2".into(),
        token_sha256: digest(3),
    });
    let mut sim = Sim::new(porto_alegre(), r, PolicyConfig::default());
    sim.on_duty(&["V1", "V2"]);
    let (i1, ..) = accepted(sim.cmd(fall("0001", "E1")).unwrap());
    let mut from_gw2 = alert("0001", "E2", AlertKind::Fall, None);
    from_gw2.device_id = "GW2".into();
    let (i2, dup, merged, problem) = accepted(sim.cmd(Command::Alert(from_gw2)).unwrap());
    assert!(i2 != i1 && !dup && !merged && problem.is_none());
    let asked: Vec<_> = offers(&sim.events).into_iter().map(|o| o.2).collect();
    assert!(asked.contains(&i1) && asked.contains(&i2), "{asked:?}");
    // GW1 resending 0001 with another elder: a conflict, named, kept for the operators.
    let (c, dup, _, problem) = accepted(sim.cmd(fall("0001", "E2")).unwrap());
    assert!(c != i1 && c != i2 && !dup);
    assert_eq!(problem.as_deref(), Some("alert_conflict"));
    let msg = sim
        .engine
        .incident(c)
        .unwrap()
        .summary
        .needs_operator
        .unwrap()
        .message;
    assert!(
        msg.contains("E1") && msg.contains("E2") && msg.contains(&i1.to_string()),
        "{msg}"
    );
    // Resends: the conflicting one is a duplicate of its own incident, the first of the first.
    let (c2, dup, ..) = accepted(sim.cmd(fall("0001", "E2")).unwrap());
    assert_eq!((c2, dup), (c, true));
    let (first, dup, ..) = accepted(sim.cmd(fall("0001", "E1")).unwrap());
    assert_eq!((first, dup), (i1, true));
    // "I'm OK" from GW1 for 0001 cancels GW1's incident only.
    sim.ok(Command::CancelAlert {
        alert_id: AlertId::from("0001"),
        device_id: gw(),
    });
    let status = |sim: &Sim, i| sim.engine.incident(i).unwrap().summary.status;
    assert_eq!(status(&sim, i1), IncidentStatus::Cancelled);
    assert!(status(&sim, i2).is_open() && status(&sim, c).is_open());
}

/// A journal tail written by decision version 2 replays by version 2's rules: there, a fall
/// joined the open meal request and turned it into an emergency.
#[test]
fn version_2_rules_still_decide_a_version_2_tail() {
    let mut sim = kitchen();
    sim.engine.set_decision_version(2);
    let (meal, ..) = accepted(sim.cmd(help("m1", "E1", ServiceKind::Meal)).unwrap());
    let (f, _, merged, _) = accepted(sim.cmd(fall("f1", "E1")).unwrap());
    assert_eq!((f, merged), (meal, true));
    assert_eq!(
        sim.engine.incident(meal).unwrap().summary.plan,
        Plan::Emergency
    );
    // And today's rules once the replay is done.
    sim.engine
        .set_decision_version(dispatch_core::journal::DECISION_VERSION);
    let (m2, _, merged, _) = accepted(sim.cmd(help("m2", "E1", ServiceKind::Cleaning)).unwrap());
    assert!(m2 != meal && !merged);
}

/// Defect 3: whoever declined or let an offer expire was never asked again, so a long
/// emergency in a sparse area ended with nobody left to ask. Once everyone eligible was asked,
/// those who let it expire are asked again first, then (after a longer pause) those who
/// declined, and the timeline says so.
#[test]
fn defect_3_an_emergency_asks_again_when_everyone_was_asked() {
    let mut sim = Sim::new(
        porto_alegre(),
        roster(
            vec![
                volunteer("V1", at(100.0, 0.0)),
                volunteer("V2", at(-100.0, 0.0)),
            ],
            vec![elder("E1", at(0.0, 0.0), "G1", 2, &[])],
        ),
        PolicyConfig::default(),
    );
    sim.on_duty(&["V1", "V2"]);
    let ev = sim.ok(fall("f1", "E1"));
    let o = offers(&ev);
    assert_eq!(o.len(), 2, "wave 1 asks both");
    let v1_offer = o.iter().find(|x| x.1.as_str() == "V1").unwrap().0;
    sim.now = sim.now.plus_ms(1_000);
    sim.ok(Command::Decline {
        responder_id: rid("V1"),
        offer_id: v1_offer,
    });
    // V2 lets it expire; 30 s after that, V2 is asked again (not V1, who said no).
    let ev = sim.advance(61_000);
    let again: Vec<String> = offered_to(&ev);
    assert_eq!(again, vec!["V2"], "{ev:?}");
    let said = ev.iter().any(|e| {
        matches!(&e.event, Event::Escalated { reason, .. }
            if reason.contains("asking again") && reason.contains("expire") && reason.contains("V2"))
    });
    assert!(said, "the timeline says who is asked again and why");
    // V2 lets it expire again; V1's decline is two minutes old by then: V1 is asked again.
    let ev = sim.advance(90_000);
    let again = offered_to(&ev);
    assert!(again.contains(&"V1".to_string()), "{again:?}");
    assert!(ev.iter().any(|e| {
        matches!(&e.event, Event::Escalated { reason, .. }
            if reason.contains("declined") && reason.contains("V1"))
    }));
}

/// Defect 3, second half: a volunteer holding a 5-minute meal offer is asked for an
/// emergency next door; the emergency wins and the meal offer is withdrawn with a reason.
#[test]
fn defect_3_an_emergency_takes_a_volunteer_from_a_service_offer() {
    let mut cook = volunteer("C1", at(100.0, 0.0));
    cook.skills = vec!["meal".into()];
    let mut sim = Sim::new(
        porto_alegre(),
        roster(
            vec![cook],
            vec![
                elder("E1", at(0.0, 0.0), "G1", 2, &[]),
                elder("E2", at(150.0, 0.0), "G1", 2, &[]),
            ],
        ),
        PolicyConfig::default(),
    );
    sim.on_duty(&["C1"]);
    let (meal, ..) = accepted(sim.cmd(help("m1", "E1", ServiceKind::Meal)).unwrap());
    assert_eq!(offered_to(&sim.events), vec!["C1"]);
    let ev = sim.ok(fall("f1", "E2"));
    let withdrawn = ev.iter().any(|e| {
        matches!(&e.event, Event::OfferWithdrawn { incident_id, responder_id, reason: dispatch_core::event::WithdrawReason::Preempted, .. }
            if *incident_id == meal && responder_id.as_str() == "C1")
    });
    assert!(withdrawn, "{ev:?}");
    let fall_offers: Vec<_> = offers(&ev).into_iter().filter(|o| o.2 != meal).collect();
    assert_eq!(fall_offers.len(), 1);
    assert_eq!(fall_offers[0].1.as_str(), "C1");
    // The meal waits for someone else (nobody else has the skill) and says so.
    assert!(ev.iter().any(|e| matches!(&e.event,
        Event::NoResponderAvailable { incident_id, .. } if *incident_id == meal)));
    // A service never takes a volunteer from an emergency offer.
    let (m2, ..) = accepted(sim.cmd(help("m2", "E2", ServiceKind::Cleaning)).unwrap());
    assert!(offers(&sim.events).iter().all(|o| o.2 != m2));
}

fn presence(id: &str, session: u64, online: bool) -> Command {
    Command::Presence {
        responder_id: rid(id),
        session,
        online,
    }
}

/// Defect 5: a responder whose phone disconnected stayed `available` and was offered jobs
/// nobody would see, wasting an emergency's 30-second windows. After a grace period for
/// reconnects the phone that is gone is not offered jobs; back, it is offered again. A
/// reconnecting phone that says `available` while holding an offer is not refused.
#[test]
fn defect_5_a_phone_that_is_gone_is_not_offered_jobs() {
    let mut sim = Sim::new(
        porto_alegre(),
        roster(
            vec![
                volunteer("V1", at(100.0, 0.0)),
                volunteer("V2", at(-200.0, 0.0)),
            ],
            vec![
                elder("E1", at(0.0, 0.0), "G1", 2, &[]),
                elder("E2", at(0.0, 100.0), "G1", 2, &[]),
            ],
        ),
        PolicyConfig::default(),
    );
    sim.on_duty(&["V1", "V2"]);
    sim.ok(presence("V1", 1, true));
    sim.ok(presence("V2", 2, true));
    // V1's phone goes; a reconnect race closes an older session of V2's: ignored.
    sim.ok(presence("V1", 1, false));
    sim.ok(presence("V2", 1, false));
    // Within the grace period V1 is still asked (a tunnel, a lift).
    let ev = sim.ok(fall("f1", "E1"));
    let mut asked = offered_to(&ev);
    asked.sort();
    assert_eq!(asked, vec!["V1", "V2"]);
    let i1 = offers(&ev)[0].2;
    sim.ok(Command::Cancel {
        operator_id: op(),
        incident_id: i1,
        reason: "test".into(),
    });
    // Past it, V1 is not: only V2.
    sim.advance(PolicyConfig::default().presence_grace_ms);
    let ev = sim.ok(fall("f2", "E2"));
    assert_eq!(offered_to(&ev), vec!["V2"]);
    // V2, holding the offer, reconnects and says `available`: nothing changes, no error.
    let seq = sim.engine.last_seq();
    sim.ok(presence("V2", 3, true));
    sim.ok(Command::SetAvailability {
        responder_id: rid("V2"),
        status: dispatch_core::model::Availability::Available,
    });
    assert_eq!(sim.engine.last_seq(), seq, "reconnecting decides nothing");
    // V1's phone is back: when V2 declines, V1 is asked.
    sim.ok(presence("V1", 4, true));
    let v2_offer = offers(&ev)[0].0;
    let ev = sim.ok(Command::Decline {
        responder_id: rid("V2"),
        offer_id: v2_offer,
    });
    assert_eq!(offered_to(&ev), vec!["V1"]);
    // A restart forgets every session: after the grace, nobody is offered until a phone is back.
    sim.ok(Command::SessionsReset);
    assert!(!sim.engine.has_live_sessions());
}

/// Gap 12: the daily cap and the rest period hold for everyone who works, not only
/// volunteers: a grid worker rests after an emergency they reached and stops at their own
/// cap; service staff rest after a job.
#[test]
fn grid_workers_and_service_staff_have_a_cap_and_a_rest() {
    let config = PolicyConfig {
        grid_worker_daily_cap: 2,
        grid_worker_rest_after_emergency_ms: 10 * 60_000,
        ..PolicyConfig::default()
    };
    let mut staff = responder(
        "S1",
        ResponderKind::ServiceStaff,
        TravelMode::Foot,
        at(60.0, 0.0),
    );
    staff.skills = vec!["meal".into()];
    let mut sim = Sim::new(
        porto_alegre(),
        roster(
            vec![
                grid_worker("W1", TravelMode::Foot, at(100.0, 0.0), "G1"),
                staff,
            ],
            vec![elder("E1", at(0.0, 0.0), "G1", 2, &[])],
        ),
        config.clone(),
    );
    sim.on_duty(&["W1", "S1"]);
    let job = |sim: &mut Sim, cmd: Command, who: &str| -> Option<IncidentId> {
        let ev = sim.ok(cmd);
        let o = offers(&ev).into_iter().find(|o| o.1.as_str() == who)?;
        sim.ok(Command::Accept {
            responder_id: rid(who),
            offer_id: o.0,
        });
        sim.ok(Command::Arrived {
            responder_id: rid(who),
            incident_id: o.2,
        });
        sim.ok(Command::Complete {
            responder_id: rid(who),
            incident_id: o.2,
        });
        Some(o.2)
    };
    let status = |sim: &Sim, id: &str| sim.engine.responder(&rid(id)).unwrap().status.name();
    assert!(job(&mut sim, fall("f1", "E1"), "W1").is_some());
    assert_eq!(
        status(&sim, "W1"),
        "resting",
        "a grid worker rests after an emergency"
    );
    // Going available meanwhile is refused as `invalid_transition`, saying when the rest ends
    // (the phone tells its person so), and changes nothing.
    let rest_ends = sim.now.plus_ms(config.grid_worker_rest_after_emergency_ms);
    let back = Command::SetAvailability {
        responder_id: rid("W1"),
        status: Availability::Available,
    };
    match sim.engine.handle_command(sim.now, back) {
        Err(e @ CommandError::Resting { until, .. }) => {
            assert_eq!(e.code(), "invalid_transition");
            assert_eq!(until, rest_ends);
        }
        other => panic!("available while resting: {other:?}"),
    }
    assert_eq!(status(&sim, "W1"), "resting");
    sim.advance(config.grid_worker_rest_after_emergency_ms + 1_000);
    assert_eq!(status(&sim, "W1"), "available");
    let ping = || Command::Location {
        responder_id: rid("W1"),
        position: at(100.0, 0.0),
    };
    sim.ok(ping());
    assert!(job(&mut sim, fall("f2", "E1"), "W1").is_some());
    sim.advance(config.grid_worker_rest_after_emergency_ms + 1_000);
    sim.ok(ping());
    // Two today: the cap. The third fall asks nobody (W1 is the only one who may be asked).
    let ev = sim.ok(fall("f3", "E1"));
    assert!(!offered_to(&ev).contains(&"W1".to_string()), "{ev:?}");
    // Service staff rest after a job too.
    sim.ok(Command::Location {
        responder_id: rid("S1"),
        position: at(60.0, 0.0),
    });
    assert!(job(&mut sim, help("m1", "E1", ServiceKind::Meal), "S1").is_some());
    assert_eq!(status(&sim, "S1"), "resting");
}
