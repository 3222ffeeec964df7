//! Surge benchmark: many emergencies waiting at once for few free responders (DESIGN §4/§7).
//! 600 falls opened 20 ms apart against 300 responders on the `StraightLine` travel-time
//! stand-in; three in four offers are declined (freeing the responder, which wakes waiting
//! incidents), the rest accepted, and due timers (offer expiries, retries) fire as time
//! moves. Reports the mean cost per engine call, and prints one run of a five times larger
//! surge (3,000 falls). Figures and the command in
//! `benches/README.md`.

use criterion::{criterion_group, criterion_main, Criterion};
use dispatch_core::command::{Alert, Command};
use dispatch_core::engine::Engine;
use dispatch_core::event::Event;
use dispatch_core::geo::LatLon;
use dispatch_core::ids::{AlertId, DeviceId, ElderId, GridId, OperatorId, ResponderId};
use dispatch_core::matching::{StraightLine, TravelTimes};
use dispatch_core::model::{AlertKind, Availability, ResponderKind, TravelMode};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::roster::{
    DeviceRecord, ElderRecord, GridRecord, OperatorRecord, ResponderRecord, RosterFile,
};
use dispatch_core::time::Timestamp;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ALERTS: usize = 600;
/// A five times larger surge, run once (not by criterion) to show the cost per call is flat.
const ALERTS_LARGE: usize = 3_000;
const RESPONDERS: usize = 300;
const ELDERS: usize = 3_000;
const ORIGIN: (f64, f64) = (-30.03, -51.2);

fn at(dlat: f64, dlon: f64) -> LatLon {
    LatLon::new(ORIGIN.0 + dlat, ORIGIN.1 + dlon).expect("valid")
}

fn roster() -> RosterFile {
    RosterFile {
        regions: Vec::new(),
        grids: vec![GridRecord {
            id: GridId::from("g1"),
            name: String::new(),
        }],
        responders: (0..RESPONDERS)
            .map(|i| ResponderRecord {
                kin_of: Vec::new(),
                id: ResponderId::from(format!("v{i}")),
                kind: ResponderKind::Volunteer,
                travel_mode: if i % 2 == 0 {
                    TravelMode::Foot
                } else {
                    TravelMode::Car
                },
                walk_kmh: None,
                home: at(
                    (i % 20) as f64 * 0.002 - 0.02,
                    (i / 20) as f64 * 0.002 - 0.015,
                ),
                grid_id: None,
                skills: vec![],
                token_sha256: None,
            })
            .collect(),
        elders: (0..ELDERS)
            .map(|i| ElderRecord {
                id: ElderId::from(format!("e{i}")),
                home: at(
                    (i % 40) as f64 * 0.001 - 0.02,
                    (i / 40) as f64 * 0.001 - 0.0125,
                ),
                grid_id: GridId::from("g1"),
                // Care level 1–3: no ambulance at once, so the surge is community-only.
                care_level: 1 + (i % 3) as u8,
                paired_responders: vec![],
                details: Default::default(),
                care_plan: Vec::new(),
                check_in_by: None,
                family: vec![],
            })
            .collect(),
        operators: vec![OperatorRecord {
            id: OperatorId::from("op"),
            token_sha256: "a".repeat(64),
            roles: None,
        }],
        devices: vec![DeviceRecord {
            id: DeviceId::from("d"),
            token_sha256: "b".repeat(64),
        }],
    }
}

/// Runs one surge; returns (engine calls, a checksum of the decisions: offers + assignments).
fn surge(alerts: usize) -> (u64, u64) {
    let roads: Arc<dyn TravelTimes> = Arc::new(StraightLine::new(at(0.0, 0.0), 20_000.0));
    let mut engine =
        Engine::with_travel_times(roads, roster(), PolicyConfig::default()).expect("roster");
    let mut now = Timestamp(1_700_000_000_000);
    for i in 0..RESPONDERS {
        let cmd = Command::SetAvailability {
            responder_id: ResponderId::from(format!("v{i}")),
            status: Availability::Available,
        };
        engine.handle_command(now, cmd).expect("on duty");
    }
    let (mut calls, mut offers, mut assigned) = (0u64, 0u64, 0u64);
    let mut replies: Vec<Command> = Vec::new();
    for i in 0..alerts {
        now = now.plus_ms(20);
        while engine.poll_timeout().is_some_and(|t| t <= now) {
            engine.handle_timeout(now);
            calls += 1;
        }
        let cmd = Command::Alert(Alert {
            alert_id: AlertId::from(format!("a{i}")),
            kind: AlertKind::Fall,
            service: None,
            elder_id: ElderId::from(format!("e{}", i % ELDERS)),
            position: None,
            detected_at: now,
            ambulance_requested: false,
            scheduled_for: None,
            device_id: DeviceId::from("d"),
        });
        engine.handle_command(now, cmd).expect("alert accepted");
        calls += 1;
        // Answer every offer sent so far; answers can send more offers, answered in turn.
        loop {
            while let Some(rec) = engine.poll_event() {
                match rec.event {
                    Event::OfferSent {
                        offer_id,
                        responder_id,
                        ..
                    } => {
                        offers += 1;
                        replies.push(Command::answer_offer(
                            responder_id,
                            offer_id,
                            offer_id.0 % 4 == 0,
                        ));
                    }
                    Event::Assigned { .. } => assigned += 1,
                    _ => {}
                }
            }
            if replies.is_empty() {
                break;
            }
            for cmd in std::mem::take(&mut replies) {
                // An offer withdrawn meanwhile (reassigned in the surge) is refused: fine.
                let _ = engine.handle_command(now, cmd);
                calls += 1;
            }
        }
    }
    (calls, offers * 1_000_000 + assigned)
}

/// One timed run of `alerts` falls, printed; returns its checksum.
fn once(alerts: usize) -> u64 {
    let started = Instant::now();
    let (calls, checksum) = surge(alerts);
    let took = started.elapsed();
    assert!(checksum > 0, "the surge sent no offers");
    println!(
        "surge: {alerts} falls, {RESPONDERS} responders: {calls} engine calls in {:.1} ms, {:.1} µs per call (checksum {checksum})",
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e6 / calls as f64
    );
    checksum
}

fn bench(c: &mut Criterion) {
    once(ALERTS_LARGE);
    let checksum = once(ALERTS);
    let mut g = c.benchmark_group("surge");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("600_falls_300_responders", |b| {
        b.iter(|| {
            let (calls, sum) = surge(ALERTS);
            assert_eq!(sum, checksum, "the surge is deterministic");
            black_box(calls)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
