//! Property tests over random command sequences: invariants after every step, determinism
//! (the same commands at the same times give the same events) and snapshot/restore in the
//! middle of a run (equal to the uninterrupted run).
//!
//! Commands are generated as *intents* ("accept the n-th open offer") resolved against the
//! live engine, so most of them are meaningful; the resolved commands and their times are
//! recorded and replayed verbatim.

use crate::world::*;
use dispatch_core::command::{Command, Reply};
use dispatch_core::engine::{Engine, EngineState};
use dispatch_core::error::CommandError;
use dispatch_core::event::{Event, EventRecord};
use dispatch_core::ids::{AlertId, IncidentId, OfferId};
use dispatch_core::incident::IncidentStatus;
use dispatch_core::matching::TravelTimes;
use dispatch_core::model::{AlertKind, Availability, ResponderKind, ServiceKind, TravelMode};
use dispatch_core::policy::{Plan, PolicyConfig};
use dispatch_core::responder::ResponderStatus;
use dispatch_core::roster::RosterFile;
use dispatch_core::time::Timestamp;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const RESPONDERS: [&str; 12] = [
    "V0", "V1", "V2", "V3", "V4", "V5", "W1", "W2", "A1", "A2", "S1", "K1",
];
const ELDERS: [&str; 4] = ["E1", "E2", "E3", "E4"];

fn world() -> RosterFile {
    let mut ps: Vec<_> = (0..6)
        .map(|i| {
            volunteer(
                &format!("V{i}"),
                at(150.0 * i as f64 - 300.0, 80.0 * (i % 3) as f64),
            )
        })
        .collect();
    ps[1].walk_kmh = Some(3.5);
    ps[4].travel_mode = TravelMode::Car;
    let w1 = grid_worker("W1", TravelMode::Foot, at(0.0, 400.0), "G1");
    let w2 = grid_worker("W2", TravelMode::Car, at(500.0, -400.0), "G2");
    let mut s1 = responder(
        "S1",
        ResponderKind::ServiceStaff,
        TravelMode::Car,
        at(-800.0, 0.0),
    );
    s1.skills = vec!["meal".into(), "medical_escort".into()];
    // E2's son, who lives next door to E1.
    let mut k1 = responder("K1", ResponderKind::Kin, TravelMode::Foot, at(20.0, 0.0));
    k1.kin_of = vec!["E2".into()];
    ps.extend([
        k1,
        w1,
        w2,
        ambulance("A1", at(2000.0, 0.0)),
        ambulance("A2", at(-2000.0, 500.0)),
        s1,
    ]);
    let es = vec![
        elder("E1", at(0.0, 0.0), "G1", 2, &["V2"]),
        elder("E2", at(300.0, 100.0), "G1", 3, &["V3", "V4"]),
        elder("E3", at(-400.0, -100.0), "G2", 4, &[]),
        elder("E4", at(100.0, -300.0), "G2", 5, &["V0"]),
    ];
    roster(ps, es)
}

fn config(batched: bool) -> PolicyConfig {
    PolicyConfig {
        rest_after_emergency_ms: 120_000,
        volunteer_daily_cap: 3,
        dispatch_batched: batched,
        // Short, so that sequences forget closed incidents (and replay/restore must agree).
        closed_retention_ms: 120_000,
        // Short, so that positions go stale within a sequence (a kept ranking must notice:
        // the engine checks each one it uses against a fresh ranking in debug builds).
        stale_position_ms: 150_000,
        ..PolicyConfig::default()
    }
}

#[derive(Debug, Clone)]
enum Intent {
    Fall(u8, u8),
    Help(u8, u8, u8),
    Missed(u8, u8),
    CancelAlert(u8, u8),
    Accept(u8),
    Decline(u8),
    Arrive(u8),
    Complete(u8),
    RequestAmbulance(u8),
    Availability(u8, bool),
    Move(u8, i16, i16),
    OperatorCancel(u8),
    OperatorResolve(u8),
    OperatorAssign(u8, u8),
    Wait(u32),
}

fn intent() -> impl Strategy<Value = Intent> {
    prop_oneof![
        3 => (0u8..4, 0u8..10).prop_map(|(e, a)| Intent::Fall(e, a)),
        1 => (0u8..4, 0u8..6, 0u8..10).prop_map(|(e, s, a)| Intent::Help(e, s, a)),
        1 => (0u8..4, 0u8..10).prop_map(|(e, a)| Intent::Missed(e, a)),
        1 => (0u8..4, 0u8..10).prop_map(|(e, a)| Intent::CancelAlert(e, a)),
        4 => any::<u8>().prop_map(Intent::Accept),
        2 => any::<u8>().prop_map(Intent::Decline),
        3 => any::<u8>().prop_map(Intent::Arrive),
        3 => any::<u8>().prop_map(Intent::Complete),
        1 => any::<u8>().prop_map(Intent::RequestAmbulance),
        3 => (0u8..RESPONDERS.len() as u8, any::<bool>()).prop_map(|(r, b)| Intent::Availability(r, b)),
        3 => (0u8..RESPONDERS.len() as u8, -300i16..300, -300i16..300).prop_map(|(r, x, y)| Intent::Move(r, x, y)),
        1 => any::<u8>().prop_map(Intent::OperatorCancel),
        1 => any::<u8>().prop_map(Intent::OperatorResolve),
        1 => (any::<u8>(), 0u8..RESPONDERS.len() as u8).prop_map(|(i, r)| Intent::OperatorAssign(i, r)),
        4 => (0u32..90_000).prop_map(Intent::Wait),
    ]
}

/// One recorded step: a command at a time, or a timeout call at a time.
#[derive(Debug, Clone)]
enum Step {
    Cmd(Timestamp, Command),
    Timeout(Timestamp),
}

fn pick<T: Clone>(v: &[T], n: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[n as usize % v.len()].clone())
}

/// Resolves an intent against the engine's current state.
fn resolve(
    e: &Engine,
    offer_owner: &BTreeMap<OfferId, String>,
    now: Timestamp,
    it: &Intent,
) -> Vec<Step> {
    let snap = e.snapshot_view();
    let open_offers: Vec<OfferId> = snap
        .incidents
        .iter()
        .flat_map(|i| i.open_offers.clone())
        .collect();
    let open: Vec<IncidentId> = snap.incidents.iter().map(|i| i.id).collect();
    let with = |f: &dyn Fn(&ResponderStatus) -> Option<IncidentId>| -> Vec<(String, IncidentId)> {
        snap.responders
            .iter()
            .filter_map(|r| f(&r.status).map(|i| (r.id.to_string(), i)))
            .collect()
    };
    let en_route = with(&|s| match s {
        ResponderStatus::EnRoute { incident_id } => Some(*incident_id),
        _ => None,
    });
    let on_scene = with(&|s| match s {
        ResponderStatus::OnScene { incident_id } => Some(*incident_id),
        _ => None,
    });
    let alert_cmd = |kind, service, e: u8, a: u8| {
        // Alert ids per elder: a resend is mostly a duplicate; the same id with another
        // kind (a conflict, handed to the operators) still happens.
        let mut al = alert(&format!("a{a}-{e}"), ELDERS[e as usize], kind, service);
        al.ambulance_requested = a == 9;
        Command::Alert(al)
    };
    let cmd = |c: Command| vec![Step::Cmd(now, c)];
    match *it {
        Intent::Fall(e, a) => cmd(alert_cmd(AlertKind::Fall, None, e, a)),
        Intent::Help(e, s, a) => {
            let service = [
                ServiceKind::Rescue,
                ServiceKind::Meal,
                ServiceKind::Medical,
                ServiceKind::Shopping,
                ServiceKind::Cleaning,
                ServiceKind::Mobility,
            ][s as usize];
            cmd(alert_cmd(AlertKind::Help, Some(service), e, a))
        }
        Intent::Missed(e, a) => cmd(alert_cmd(AlertKind::CheckInMissed, None, e, a)),
        Intent::CancelAlert(e, a) => cmd(Command::CancelAlert {
            alert_id: AlertId::from(format!("a{a}-{e}")),
            device_id: gw(),
        }),
        Intent::Accept(n) | Intent::Decline(n) => {
            let Some(o) = pick(&open_offers, n) else {
                return vec![];
            };
            let responder_id = rid(&offer_owner[&o]);
            if matches!(it, Intent::Accept(_)) {
                cmd(Command::Accept {
                    responder_id,
                    offer_id: o,
                })
            } else {
                cmd(Command::Decline {
                    responder_id,
                    offer_id: o,
                })
            }
        }
        Intent::Arrive(n) => pick(&en_route, n).map_or(vec![], |(r, i)| {
            cmd(Command::Arrived {
                responder_id: rid(&r),
                incident_id: i,
            })
        }),
        Intent::Complete(n) => pick(&on_scene, n).map_or(vec![], |(r, i)| {
            cmd(Command::Complete {
                responder_id: rid(&r),
                incident_id: i,
            })
        }),
        Intent::RequestAmbulance(n) => pick(&on_scene, n).map_or(vec![], |(r, i)| {
            cmd(Command::RequestAmbulance {
                responder_id: rid(&r),
                incident_id: i,
            })
        }),
        Intent::Availability(r, on) => cmd(Command::SetAvailability {
            responder_id: rid(RESPONDERS[r as usize]),
            status: if on {
                Availability::Available
            } else {
                Availability::OffDuty
            },
        }),
        Intent::Move(r, dx, dy) => {
            let id = rid(RESPONDERS[r as usize]);
            let p = e.responder(&id).map(|s| s.xy).unwrap_or([0.0, 0.0]);
            let pos = dispatch_core::geo::Projection::new(centre())
                .to_latlon([p[0] + dx as f64, p[1] + dy as f64]);
            cmd(Command::Location {
                responder_id: id,
                position: pos,
            })
        }
        Intent::OperatorCancel(n) => pick(&open, n).map_or(vec![], |i| {
            cmd(Command::Cancel {
                operator_id: op(),
                incident_id: i,
                reason: "prop".into(),
            })
        }),
        Intent::OperatorResolve(n) => pick(&open, n).map_or(vec![], |i| {
            cmd(Command::Resolve {
                operator_id: op(),
                incident_id: i,
                note: "prop".into(),
            })
        }),
        Intent::OperatorAssign(n, r) => pick(&open, n).map_or(vec![], |i| {
            cmd(Command::Assign {
                operator_id: op(),
                incident_id: i,
                responder_id: rid(RESPONDERS[r as usize]),
            })
        }),
        // Waiting is driven by the caller (it needs the engine between timer calls).
        Intent::Wait(_) => vec![],
    }
}

fn apply(e: &mut Engine, step: &Step) -> (Option<Result<Reply, CommandError>>, Vec<EventRecord>) {
    let r = match step {
        Step::Cmd(t, c) => Some(e.handle_command(*t, c.clone())),
        Step::Timeout(t) => {
            e.handle_timeout(*t);
            None
        }
    };
    let mut ev = Vec::new();
    while let Some(x) = e.poll_event() {
        ev.push(x);
    }
    (r, ev)
}

/// Emergencies above welfare visits above services.
fn urgency(p: Plan) -> u8 {
    match p {
        Plan::Emergency => 2,
        Plan::WelfareVisit => 1,
        Plan::Service => 0,
    }
}

/// `unhandled`: falls opened and not yet offered, assigned or escalated; `settled`: the
/// step ends a dispatch (any step unbatched; batched, a timeout), so none may be left.
fn check_invariants(
    e: &Engine,
    step_events: &[EventRecord],
    unhandled: &mut BTreeSet<IncidentId>,
    settled: bool,
) -> Result<(), TestCaseError> {
    let snap = e.snapshot_view();
    // An incident's plan and priority are those of the most urgent need it holds: no alert
    // of a more urgent plan ever sits on it (issue 12, defects 1 and 2).
    for s in &snap.incidents {
        let view = e.incident(s.id).expect("open incidents have views");
        for a in view.alerts.iter().filter(|a| !a.conflict) {
            let kind = a.kind.unwrap_or(s.kind);
            let need = Plan::of(kind, a.service.or(s.service)).expect("a valid alert");
            prop_assert!(
                urgency(need) <= urgency(s.plan),
                "{} is a {:?} holding a {:?} alert {}",
                s.id,
                s.plan,
                need,
                a.alert_id
            );
        }
        if s.needs_operator.is_none() {
            prop_assert_eq!(s.priority, s.plan.priority(s.care_level));
        }
    }
    // Never two incidents for one responder, and statuses agree with incidents.
    let mut holder: BTreeMap<String, IncidentId> = BTreeMap::new();
    for i in &snap.incidents {
        for r in &i.committed {
            prop_assert!(
                holder.insert(r.to_string(), i.id).is_none(),
                "{r} committed to two incidents"
            );
            // Kin only ever help their own elder (issue 12, gap 11).
            prop_assert!(
                r.as_str() != "K1" || i.elder_id.as_str() == "E2",
                "kin K1 on {}'s incident {}",
                i.elder_id,
                i.id
            );
        }
    }
    let mut offered: BTreeSet<OfferId> = BTreeSet::new();
    for r in &snap.responders {
        match r.status {
            ResponderStatus::EnRoute { incident_id } | ResponderStatus::OnScene { incident_id } => {
                prop_assert_eq!(
                    holder.get(r.id.as_str()),
                    Some(&incident_id),
                    "{} status disagrees",
                    r.id
                );
            }
            ResponderStatus::Offered {
                offer_id,
                incident_id,
            } => {
                prop_assert!(!holder.contains_key(r.id.as_str()));
                let inc = snap.incidents.iter().find(|i| i.id == incident_id);
                // Service staff never hold an emergency offer (issue 12, defect 1).
                prop_assert!(
                    !(r.kind == ResponderKind::ServiceStaff
                        && inc.is_some_and(|i| i.plan == Plan::Emergency)),
                    "service staff {} offered emergency {}",
                    r.id,
                    incident_id
                );
                prop_assert!(
                    r.kind != ResponderKind::Kin
                        || inc.is_some_and(|i| i.elder_id.as_str() == "E2"
                            && i.plan != Plan::Service),
                    "kin {} offered {}",
                    r.id,
                    incident_id
                );
                prop_assert!(
                    inc.is_some_and(|i| i.open_offers.contains(&offer_id)),
                    "{} holds a dead offer",
                    r.id
                );
                offered.insert(offer_id);
            }
            _ => prop_assert!(
                !holder.contains_key(r.id.as_str()),
                "{} is free but committed",
                r.id
            ),
        }
    }
    let all_open: BTreeSet<OfferId> = snap
        .incidents
        .iter()
        .flat_map(|i| i.open_offers.iter().copied())
        .collect();
    prop_assert_eq!(
        all_open,
        offered,
        "open offers and offered responders differ"
    );
    // Every emergency is offered, assigned or escalated when it opens (batched: by the
    // dispatch round that follows its command; closed before it is fine too) ...
    for ev in step_events {
        match &ev.event {
            Event::IncidentOpened {
                incident_id,
                kind: AlertKind::Fall,
                ..
            } => {
                unhandled.insert(*incident_id);
            }
            Event::OfferSent { incident_id, .. }
            | Event::Assigned { incident_id, .. }
            | Event::NoResponderAvailable { incident_id, .. }
            | Event::Escalated { incident_id, .. }
            | Event::IncidentCancelled { incident_id, .. }
            | Event::IncidentResolved { incident_id, .. } => {
                unhandled.remove(incident_id);
            }
            _ => {}
        }
    }
    // An alert the engine could not dispatch (here: an alert key resent with other
    // content) is handled by handing it to the operators.
    unhandled.retain(|i| {
        e.incident(*i)
            .is_none_or(|v| v.summary.needs_operator.is_none())
    });
    if settled {
        prop_assert!(
            unhandled.is_empty(),
            "emergency {:?} left unhandled",
            unhandled
        );
    }
    // ... and an open incident nobody is working on always has a timer to wake it.
    for i in &snap.incidents {
        // (One handed to the operators waits for a person, not a timer.)
        if i.status == IncidentStatus::Dispatching
            && i.open_offers.is_empty()
            && i.committed.is_empty()
            && i.needs_operator.is_none()
        {
            prop_assert!(e.poll_timeout().is_some(), "{} waits with no timer", i.id);
        }
    }
    // Sequence numbers are gap-free.
    for w in step_events.windows(2) {
        prop_assert_eq!(w[1].seq, w[0].seq + 1);
    }
    Ok(())
}

type Roads = fn() -> Arc<dyn TravelTimes>;

fn fresh(roads: Roads, batched: bool) -> Engine {
    Engine::with_travel_times(roads(), world(), config(batched)).unwrap()
}

type Replies = Vec<Option<Result<Reply, CommandError>>>;

fn replay(mut e: Engine, steps: &[Step]) -> (Engine, Vec<EventRecord>, Replies) {
    let mut events = Vec::new();
    let mut replies = Vec::new();
    for s in steps {
        let (r, ev) = apply(&mut e, s);
        replies.push(r);
        events.extend(ev);
    }
    (e, events, replies)
}

/// Runs one random sequence, checking invariants at every step, then replay and restore.
/// `batched`: the server's mode; the commands of one intent are applied together and the
/// dispatch they call for runs in the timeout that follows (as the engine task does after
/// draining its queue).
fn check_sequence(
    roads: Roads,
    intents: &[Intent],
    cut: usize,
    batched: bool,
) -> Result<(), TestCaseError> {
    let mut e = fresh(roads, batched);
    let mut now = Timestamp(1_700_000_000_000);
    let mut steps: Vec<Step> = Vec::new();
    let mut live_events = Vec::new();
    let mut live_replies = Vec::new();
    let mut journaled: Vec<bool> = Vec::new();
    let mut owner: BTreeMap<OfferId, String> = BTreeMap::new();
    let mut unhandled: BTreeSet<IncidentId> = BTreeSet::new();
    // Everybody starts on duty.
    let mut all: Vec<Step> = RESPONDERS
        .iter()
        .map(|r| {
            Step::Cmd(
                now,
                Command::SetAvailability {
                    responder_id: rid(r),
                    status: Availability::Available,
                },
            )
        })
        .collect();
    let mut run = |e: &mut Engine,
                   s: Step,
                   owner: &mut BTreeMap<OfferId, String>|
     -> Result<(), TestCaseError> {
        let (r, ev) = apply(e, &s);
        for x in &ev {
            if let Event::OfferSent {
                offer_id,
                responder_id,
                ..
            } = &x.event
            {
                owner.insert(*offer_id, responder_id.to_string());
            }
        }
        let settled = !batched || matches!(s, Step::Timeout(_));
        check_invariants(e, &ev, &mut unhandled, settled)?;
        // What the journal keeps: accepted commands, and every timeout call (as the server's
        // journal does: a timeout may change state without an event, e.g. a fruitless retry
        // re-arming quietly).
        journaled.push(match &s {
            Step::Cmd(..) => matches!(r, Some(Ok(_))),
            Step::Timeout(_) => true,
        });
        if batched {
            if let Step::Cmd(..) = &s {
                // Nothing is dispatched inside a command: offers come from the timeout.
                prop_assert!(
                    !ev.iter()
                        .any(|x| matches!(x.event, Event::OfferSent { .. })),
                    "a batched command sent an offer"
                );
            }
        }
        live_replies.push(r);
        live_events.extend(ev);
        steps.push(s);
        Ok(())
    };
    for s in all.drain(..) {
        run(&mut e, s, &mut owner)?;
    }
    for it in intents {
        if let Intent::Wait(ms) = it {
            // The virtual clock jumps from timer to timer, as the simulator's does.
            let end = now.plus_ms(u64::from(*ms));
            while let Some(t) = e.poll_timeout().filter(|t| *t <= end) {
                now = t.max(now);
                run(&mut e, Step::Timeout(now), &mut owner)?;
            }
            now = end;
        }
        for s in resolve(&e, &owner, now, it) {
            run(&mut e, s, &mut owner)?;
        }
        if batched && e.poll_timeout().is_some_and(|t| t <= now) {
            run(&mut e, Step::Timeout(now), &mut owner)?;
        }
    }
    prop_assert_eq!(e.last_seq(), live_events.len() as u64);
    // Journal replay: only what the journal keeps, on a fresh engine, gives the same events.
    let journal: Vec<Step> = steps
        .iter()
        .zip(&journaled)
        .filter(|(_, j)| **j)
        .map(|(s, _)| s.clone())
        .collect();
    let (_, ev_j, _) = replay(fresh(roads, batched), &journal);
    prop_assert_eq!(&ev_j, &live_events);
    // Determinism: the same steps on a fresh engine give the same events and replies.
    let (again, ev2, rep2) = replay(fresh(roads, batched), &steps);
    prop_assert_eq!(&ev2, &live_events);
    prop_assert_eq!(&rep2, &live_replies);
    prop_assert_eq!(again.save_state(), e.save_state());
    // Snapshot mid-run (through JSON, as the journal stores it), restore, continue.
    let k = cut % (steps.len() + 1);
    let (first, ev_a, _) = replay(fresh(roads, batched), &steps[..k]);
    let json = serde_json::to_string(&first.save_state()).unwrap();
    let state: EngineState = serde_json::from_str(&json).unwrap();
    let restored = Engine::restore_with_travel_times(roads(), config(batched), state);
    let (end, ev_b, _) = replay(restored, &steps[k..]);
    let mut joined = ev_a;
    joined.extend(ev_b);
    prop_assert_eq!(&joined, &live_events);
    prop_assert_eq!(end.save_state(), e.save_state());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Many sequences on straight lines (fast): the state machines and bookkeeping.
    #[test]
    fn random_sequences_keep_invariants_replay_and_restore(
        intents in proptest::collection::vec(intent(), 1..80),
        cut in 0usize..100,
    ) {
        check_sequence(straight, &intents, cut, false)?;
    }

    /// The same in batched dispatch (the server's mode), with snapshots cut between a
    /// command and the dispatch round it called for.
    #[test]
    fn random_sequences_batched_keep_invariants_replay_and_restore(
        intents in proptest::collection::vec(intent(), 1..80),
        cut in 0usize..100,
    ) {
        check_sequence(straight, &intents, cut, true)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0xa1e),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Fewer sequences on the real Porto Alegre roads (shared network).
    #[test]
    fn random_sequences_on_porto_alegre(
        intents in proptest::collection::vec(intent(), 1..60),
        cut in 0usize..100,
    ) {
        check_sequence(porto_alegre, &intents, cut, cut % 2 == 0)?;
    }
}
