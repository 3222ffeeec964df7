//! Care plans (issue 15): a weekly visit is scheduled, offered to its planned person first and
//! then to others when declined or expired, done and counted on time; another is missed and
//! reported; a call done after its window counts late; bad plans are refused naming the
//! field, changing nothing; a snapshot taken mid-plan continues identically.

use crate::world::*;
use dispatch_core::care_plan::{
    days_from_civil, CareKind, CarePeriod, CarePlanItem, CareWindow, Outcome,
};
use dispatch_core::command::Command;
use dispatch_core::engine::Engine;
use dispatch_core::event::{Event, EventRecord};
use dispatch_core::ids::{ElderId, IncidentId, OfferId};
use dispatch_core::model::{Actor, TravelMode};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::roster::ElderRecord;
use dispatch_core::time::Timestamp;

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

/// Monday 7 December 2026, 00:00 UTC.
fn monday() -> Timestamp {
    Timestamp(days_from_civil(2026, 12, 7) * DAY as i64)
}

fn config() -> PolicyConfig {
    PolicyConfig {
        // Positions stay fresh for the whole test (nobody moves; days pass).
        stale_position_ms: 60 * DAY,
        care_missed_grace_ms: HOUR,
        ..PolicyConfig::default()
    }
}

/// "A visit a week by V1, Monday 09:00 to Friday 17:00".
fn weekly_visit() -> CarePlanItem {
    CarePlanItem {
        id: "weekly-visit".into(),
        kind: CareKind::Visit,
        service: None,
        period: CarePeriod::Week,
        planned_responder: Some(rid("V1")),
        window: Some(CareWindow {
            from_day: 1,
            to_day: Some(5),
            from: "09:00".into(),
            to: "17:00".into(),
        }),
    }
}

/// "A call a day by V1, 09:00 to 10:00".
fn daily_call() -> CarePlanItem {
    CarePlanItem {
        id: "daily-call".into(),
        kind: CareKind::Call,
        service: None,
        period: CarePeriod::Day,
        planned_responder: Some(rid("V1")),
        window: Some(CareWindow {
            from_day: 1,
            to_day: None,
            from: "09:00".into(),
            to: "10:00".into(),
        }),
    }
}

/// V1 (paired with E1) 100 m away, V2 (a stranger) 150 m, grid worker W1 of G1 300 m; E1 in
/// G1 with `plan`. Everybody on duty at Monday 08:00.
fn world(plan: Vec<CarePlanItem>) -> Sim {
    let mut e1 = elder("E1", at(0.0, 0.0), "G1", 2, &["V1"]);
    e1.care_plan = plan;
    let ps = vec![
        volunteer("V1", at(100.0, 0.0)),
        volunteer("V2", at(150.0, 0.0)),
        grid_worker("W1", TravelMode::Foot, at(300.0, 0.0), "G1"),
    ];
    let mut sim = Sim::new(straight(), roster(ps, vec![e1]), config());
    sim.now = monday().plus_ms(8 * HOUR);
    sim.on_duty(&["V1", "V2", "W1"]);
    sim
}

fn offered(events: &[EventRecord]) -> Vec<(OfferId, String, IncidentId)> {
    offers(events)
        .into_iter()
        .map(|(o, r, i, _)| (o, r.to_string(), i))
        .collect()
}

fn opened(events: &[EventRecord]) -> Vec<(IncidentId, String)> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::IncidentOpened {
                incident_id,
                reason,
                ..
            } => Some((*incident_id, reason.clone())),
            _ => None,
        })
        .collect()
}

/// Accepts, arrives and completes `incident` as `who` (whose offer is `offer`).
fn do_the_job(sim: &mut Sim, who: &str, offer: OfferId, incident: IncidentId, on_scene_ms: u64) {
    sim.ok(Command::Accept {
        responder_id: rid(who),
        offer_id: offer,
    });
    sim.advance(5 * 60_000);
    sim.ok(Command::Arrived {
        responder_id: rid(who),
        incident_id: incident,
    });
    sim.advance(on_scene_ms);
    sim.ok(Command::Complete {
        responder_id: rid(who),
        incident_id: incident,
    });
}

#[test]
fn a_weekly_visit_goes_to_its_planned_person_first_is_done_on_time_then_missed_and_reported() {
    let mut sim = world(vec![weekly_visit()]);
    // Nothing before the window opens at 09:00.
    let before = sim.advance(HOUR - 1);
    assert!(opened(&before).is_empty(), "{before:?}");
    let ev = sim.advance(1);
    let jobs = opened(&ev);
    assert_eq!(jobs.len(), 1, "{ev:?}");
    let (job, reason) = jobs[0].clone();
    assert!(
        reason.contains("weekly-visit") && reason.contains("V1"),
        "{reason}"
    );
    // Wave 1: the planned person alone, though V2 is nearer than W1 and as near as V1.
    let first = offered(&ev);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!((first[0].1.as_str(), first[0].2), ("V1", job));

    // V1 declines: the job goes to the others (V1 is not asked again).
    let ev = sim.ok(Command::Decline {
        responder_id: rid("V1"),
        offer_id: first[0].0,
    });
    let second = offered(&ev);
    let who: Vec<&str> = second.iter().map(|o| o.1.as_str()).collect();
    assert!(who.contains(&"V2") && !who.contains(&"V1"), "{second:?}");
    let v2 = second.iter().find(|o| o.1 == "V2").expect("V2 offered").0;
    do_the_job(&mut sim, "V2", v2, job, 30 * 60_000);
    let done: Vec<&EventRecord> = sim
        .events
        .iter()
        .filter(|e| matches!(e.event, Event::CareVisitDone { .. }))
        .collect();
    assert_eq!(done.len(), 1);
    match &done[0].event {
        Event::CareVisitDone {
            incident_id,
            on_time,
            done_by,
            item_id,
            ..
        } => {
            assert_eq!(*incident_id, job);
            assert!(*on_time);
            assert_eq!(done_by.as_ref(), Some(&rid("V2")));
            assert_eq!(item_id, "weekly-visit");
        }
        _ => unreachable!(),
    }
    let done_at = done[0].at;
    let report = sim.engine.care_compliance(sim.now);
    let g1 = &report.grids[&"G1".into()];
    assert_eq!(
        (
            g1.week.planned,
            g1.week.on_time,
            g1.week.late,
            g1.week.missed
        ),
        (1, 1, 0, 0)
    );
    assert_eq!(g1.week.on_time_share, Some(1.0));
    // Counted for the person who did it.
    assert_eq!(report.responders[&rid("V2")].week.on_time, 1);
    assert!(!report.responders.contains_key(&rid("V1")));
    assert!(report.not_visited.is_empty());

    // Next week: V1 lets the offer expire; the others are asked; nobody comes.
    let next_monday = monday().plus_ms(7 * DAY + 9 * HOUR);
    let ev = sim.advance(next_monday.ms_since(sim.now));
    let jobs = opened(&ev);
    assert_eq!(jobs.len(), 1, "{ev:?}");
    let job2 = jobs[0].0;
    let first = offered(&ev);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, "V1");
    let ev = sim.advance(5 * 60_000);
    assert!(ev.iter().any(|e| matches!(
        &e.event,
        Event::OfferExpired { responder_id, .. } if *responder_id == rid("V1")
    )));
    let again = offered(&ev);
    assert!(
        !again.is_empty() && again.iter().all(|o| o.1 != "V1"),
        "{again:?}"
    );
    for (offer, who, _) in again {
        sim.ok(Command::Decline {
            responder_id: rid(&who),
            offer_id: offer,
        });
    }
    // Friday 17:00 plus an hour of grace: missed, and the job is cancelled with the reason.
    let deadline = monday().plus_ms(7 * DAY + 4 * DAY + 17 * HOUR);
    let ev = sim.advance(deadline.ms_since(sim.now) + HOUR - 1);
    assert!(
        !ev.iter()
            .any(|e| matches!(e.event, Event::CareVisitMissed { .. })),
        "missed before the grace ran out"
    );
    let ev = sim.advance(1);
    let missed = ev
        .iter()
        .position(|e| matches!(e.event, Event::CareVisitMissed { .. }))
        .expect("missed at the close plus the grace");
    match &ev[missed].event {
        Event::CareVisitMissed {
            incident_id,
            due_by,
            planned_responder,
            ..
        } => {
            assert_eq!(*incident_id, job2);
            assert_eq!(*due_by, deadline);
            assert_eq!(planned_responder.as_ref(), Some(&rid("V1")));
        }
        _ => unreachable!(),
    }
    assert!(ev[missed..].iter().any(|e| matches!(
        &e.event,
        Event::IncidentCancelled { incident_id, by: Actor::Engine, reason } if *incident_id == job2 && reason.contains("missed")
    )));
    // On the job's timeline, for the operators.
    let timeline = &sim.engine.incident(job2).expect("kept").timeline;
    assert!(timeline
        .iter()
        .any(|e| matches!(e.event, Event::CareVisitMissed { .. })));

    let report = sim.engine.care_compliance(sim.now);
    let g1 = &report.grids[&"G1".into()];
    assert_eq!(
        (g1.week.planned, g1.week.on_time, g1.week.missed),
        (1, 0, 1)
    );
    assert_eq!(g1.week.on_time_share, Some(0.0));
    // The month (December) holds both.
    assert_eq!(
        (g1.month.planned, g1.month.on_time, g1.month.missed),
        (2, 1, 1)
    );
    assert_eq!(g1.month.on_time_share, Some(0.5));
    // Counted for V1, who was asked first and nobody did it.
    assert_eq!(report.responders[&rid("V1")].week.missed, 1);
    assert_eq!(report.not_visited.len(), 1, "{:?}", report.not_visited);
    let nv = &report.not_visited[0];
    assert_eq!(nv.elder_id, ElderId::from("E1"));
    assert_eq!(nv.item_id, "weekly-visit");
    assert_eq!(nv.last_done, Some(done_at));
    assert_eq!(nv.overdue_since, deadline);
    assert_eq!(nv.overdue_ms, sim.now.ms_since(deadline));
    assert_eq!(nv.missed, 1);
    // A report asked about the first week still says what it said then.
    let then = sim.engine.care_compliance(done_at);
    assert_eq!(then.grids[&"G1".into()].week.on_time, 1);
    assert!(then.not_visited.is_empty());
    // A care job's promise is its window: the 10-minute and 60-minute job promises of
    // services (issue 12, gap 8) never run for it, and it shows no such clocks.
    assert!(
        !sim.events
            .iter()
            .any(|e| matches!(e.event, Event::SlaBreached { .. })),
        "a care job breached a service promise"
    );
}

#[test]
fn a_call_asks_only_people_the_elder_knows_and_done_after_its_window_counts_late() {
    let mut sim = world(vec![daily_call()]);
    let ev = sim.advance(HOUR);
    let job = opened(&ev)[0].0;
    let first = offered(&ev);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, "V1");
    let ev = sim.ok(Command::Decline {
        responder_id: rid("V1"),
        offer_id: first[0].0,
    });
    // A call needs no travel but a familiar voice: the grid worker, never the stranger V2.
    let second = offered(&ev);
    let who: Vec<&str> = second.iter().map(|o| o.1.as_str()).collect();
    assert_eq!(who, vec!["W1"], "{second:?}");
    // W1 is on it from 09:05 to 11:00: past the window's close at 10:00, and past the grace
    // too, but somebody is there, so it is not missed: it is late.
    do_the_job(&mut sim, "W1", second[0].0, job, 115 * 60_000);
    assert!(!sim
        .events
        .iter()
        .any(|e| matches!(e.event, Event::CareVisitMissed { .. })));
    assert!(sim.events.iter().any(|e| matches!(
        &e.event,
        Event::CareVisitDone { on_time: false, done_by: Some(r), .. } if *r == rid("W1")
    )));
    let report = sim.engine.care_compliance(sim.now);
    let g1 = &report.grids[&"G1".into()];
    assert_eq!((g1.week.planned, g1.week.on_time, g1.week.late), (1, 0, 1));
    assert_eq!(g1.week.on_time_share, Some(0.0));
    assert_eq!(report.responders[&rid("W1")].week.late, 1);
    // Done, though late: not "not visited".
    assert!(report.not_visited.is_empty());
    // The next day's call opens at 09:00 again.
    let ev = sim.advance(monday().plus_ms(DAY + 9 * HOUR).ms_since(sim.now));
    assert_eq!(opened(&ev).len(), 1, "{ev:?}");
}

#[test]
fn a_bad_plan_is_refused_naming_the_item_and_field_and_changes_nothing() {
    let mut sim = world(vec![]);
    let before = sim.engine.save_state();
    let with = |plan: Vec<CarePlanItem>| -> ElderRecord {
        let mut e = elder("E1", at(0.0, 0.0), "G1", 2, &["V1"]);
        e.care_plan = plan;
        e
    };
    let mut unknown = weekly_visit();
    unknown.planned_responder = Some(rid("V99"));
    let mut backwards = daily_call();
    backwards.window = Some(CareWindow {
        from_day: 1,
        to_day: None,
        from: "10:00".into(),
        to: "09:00".into(),
    });
    let mut day8 = weekly_visit();
    day8.window.as_mut().unwrap().to_day = Some(8);
    let mut no_service = weekly_visit();
    no_service.kind = CareKind::Service;
    let cases: Vec<(Vec<CarePlanItem>, &str)> = vec![
        (
            vec![unknown],
            "care_plan[0].planned_responder: unknown responder V99",
        ),
        (
            vec![daily_call(), daily_call()],
            "care_plan[1].id: duplicate item id daily-call",
        ),
        (vec![backwards], "care_plan[0].window"),
        (vec![day8], "care_plan[0].window.to_day: 8"),
        (vec![no_service], "care_plan[0].service: required"),
        (vec![daily_call(); 17], "care_plan: 17 items"),
    ];
    for (plan, expect) in cases {
        let r = sim.cmd(Command::UpsertElder {
            by: Actor::Operator(op()),
            elder: with(plan),
        });
        let msg = format!("{:?}", r.expect_err("refused"));
        assert!(msg.contains("elder E1") && msg.contains(expect), "{msg}");
        assert_eq!(
            sim.engine.save_state(),
            before,
            "a refused plan changed the engine"
        );
    }
}

#[test]
fn a_plan_taken_out_cancels_its_job_and_a_snapshot_continues_identically() {
    let mut sim = world(vec![weekly_visit(), daily_call()]);
    sim.advance(HOUR);
    // A snapshot with two open jobs and their timers continues as the original does.
    let state = sim.engine.save_state();
    let mut twin = Engine::restore_with_travel_times(straight(), config(), state.clone());
    assert_eq!(twin.save_state(), state);
    let script = |sim_now: Timestamp, e: &mut Engine| -> Vec<EventRecord> {
        let mut out = Vec::new();
        let mut now = sim_now;
        let end = sim_now.plus_ms(9 * DAY);
        let upsert = Command::UpsertElder {
            by: Actor::Operator(op()),
            elder: {
                let mut e1 = elder("E1", at(0.0, 0.0), "G1", 2, &["V1"]);
                e1.care_plan = vec![daily_call()];
                e1
            },
        };
        e.handle_command(now, upsert).expect("a valid plan");
        while let Some(ev) = e.poll_event() {
            out.push(ev);
        }
        while let Some(t) = e.poll_timeout().filter(|t| *t <= end) {
            now = t.max(now);
            e.handle_timeout(now);
            while let Some(ev) = e.poll_event() {
                out.push(ev);
            }
        }
        out
    };
    let a = script(sim.now, &mut sim.engine);
    let b = script(sim.now, &mut twin);
    assert_eq!(a, b);
    assert_eq!(sim.engine.save_state(), twin.save_state());
    // The weekly visit left the plan: its job was cancelled saying so, and not counted.
    assert!(a.iter().any(|e| matches!(
        &e.event,
        Event::IncidentCancelled { reason, .. } if reason.contains("weekly-visit") && reason.contains("out of the plan")
    )));
    let book = sim.engine.care_occurrences(&ElderId::from("E1"));
    assert_eq!(book["weekly-visit"].len(), 1);
    assert_eq!(book["weekly-visit"][0].outcome, Outcome::Cancelled);
    // Nobody answered the calls: one a day for the nine days (Monday's and eight more, the
    // last still open), each missed but the last.
    let calls = &book["daily-call"];
    assert_eq!(calls.len(), 10, "{calls:?}");
    assert!(calls[..9].iter().all(|o| o.outcome == Outcome::Missed));
    assert_eq!(calls[9].outcome, Outcome::Pending);
    let report = sim.engine.care_compliance(sim.now.plus_ms(9 * DAY));
    assert_eq!(report.not_visited.len(), 1);
    assert_eq!(report.not_visited[0].missed, 9);
}
