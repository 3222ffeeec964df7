//! Engine benchmarks on the real Porto Alegre roads: alert → offers decided with 1,000 /
//! 10,000 / 100,000 available responders (p50/p99), location updates per second through
//! `handle_command`, and memory per responder and per elder (estimated from sizes).
//! Figures and the command are in `benches/README.md`.

use criterion::{criterion_group, criterion_main, Criterion};
use dispatch_core::command::{Alert, Command};
use dispatch_core::engine::Engine;
use dispatch_core::event::Event;
use dispatch_core::geo::LatLon;
use dispatch_core::ids::{AlertId, DeviceId, ElderId, IncidentId, OperatorId, ResponderId};
use dispatch_core::model::{AlertKind, Availability, ResponderKind, TravelMode};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::responder::ResponderState;
use dispatch_core::road::{Profile, RoadConfig, RoadNetwork};
use dispatch_core::roster::{
    DeviceRecord, ElderRecord, GridRecord, OperatorRecord, ResponderRecord, RosterFile,
};
use dispatch_core::time::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const ELDERS: usize = 2_000;
const T0: Timestamp = Timestamp(1_700_000_000_000);

fn network() -> Arc<RoadNetwork> {
    static NET: OnceLock<Arc<RoadNetwork>> = OnceLock::new();
    NET.get_or_init(|| {
        let file = std::fs::File::open(dispatch_core::testdata::porto_alegre_pbf())
            .expect("../shared/data/porto_alegre.osm.pbf");
        let net =
            RoadNetwork::from_pbf(std::io::BufReader::new(file), &RoadConfig::default()).unwrap();
        // As the server has them a moment after start (its `road-warm` thread); with
        // `BENCH_COLD_SPACES` set, searched when first asked (to compare).
        if std::env::var_os("BENCH_COLD_SPACES").is_none() {
            assert!(net.warm_vertex_spaces(), "Porto Alegre's spaces are kept");
        }
        Arc::new(net)
    })
    .clone()
}

/// A random point near a random foot-graph vertex (people live beside roads).
fn near_road(net: &RoadNetwork, rng: &mut ChaCha8Rng) -> LatLon {
    let g = net.profile(Profile::Foot);
    let v = g.vertex(rng.random_range(0..g.vertex_count())).unwrap();
    LatLon::new(
        v.lat + rng.random_range(-0.0002..0.0002),
        v.lon + rng.random_range(-0.0002..0.0002),
    )
    .unwrap()
}

/// `n` responders (70 % walking volunteers at 3.5–5 km/h, 20 % grid workers by car, 10 %
/// service staff) and `ELDERS` elders of care level 1–3 (no ambulance at once), seeded.
fn roster(net: &RoadNetwork, n: usize) -> RosterFile {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let grids: Vec<GridRecord> = (0..50)
        .map(|g| GridRecord {
            id: format!("G{g}").into(),
            name: String::new(),
        })
        .collect();
    let responders: Vec<ResponderRecord> = (0..n)
        .map(|i| {
            let (kind, mode) = match i % 10 {
                0 | 1 => (ResponderKind::GridWorker, TravelMode::Car),
                2 => (ResponderKind::ServiceStaff, TravelMode::Car),
                _ => (ResponderKind::Volunteer, TravelMode::Foot),
            };
            ResponderRecord {
                kin_of: Vec::new(),
                id: format!("R{i}").into(),
                kind,
                travel_mode: mode,
                walk_kmh: (mode == TravelMode::Foot).then(|| rng.random_range(3.5..5.0)),
                home: near_road(net, &mut rng),
                grid_id: Some(format!("G{}", i % 50).into()),
                skills: vec!["meal".into()],
                token_sha256: None,
            }
        })
        .collect();
    let elders: Vec<ElderRecord> = (0..ELDERS)
        .map(|i| ElderRecord {
            id: format!("E{i}").into(),
            home: near_road(net, &mut rng),
            grid_id: format!("G{}", i % 50).into(),
            care_level: 1 + (i % 3) as u8,
            paired_responders: vec![format!("R{}", (i * 7 + 3) % n).into()],
            details: Default::default(),
            care_plan: Vec::new(),
            check_in_by: None,
            family: Vec::new(),
        })
        .collect();
    RosterFile {
        regions: Vec::new(),
        grids,
        responders,
        elders,
        operators: vec![OperatorRecord {
            id: "OP1".into(),
            token_sha256: format!("{:064x}", 1),
            roles: None,
        }],
        devices: vec![DeviceRecord {
            id: "GW1".into(),
            token_sha256: format!("{:064x}", 2),
        }],
    }
}

/// An engine with `n` responders, all on duty at `T0`.
fn engine(n: usize) -> Engine {
    let net = network();
    let mut e = Engine::new(net.clone(), roster(&net, n), PolicyConfig::default()).unwrap();
    for i in 0..n {
        let id = ResponderId::from(format!("R{i}"));
        e.handle_command(
            T0,
            Command::SetAvailability {
                responder_id: id,
                status: Availability::Available,
            },
        )
        .unwrap();
    }
    while e.poll_event().is_some() {}
    e
}

/// One fall, its offers decided; returns (time taken, offers sent, incident).
/// One alert, its events drained (timed); `digest` folds in who was offered it, at what ETA
/// and why (after the timed part), so that two builds' runs can be shown to decide alike.
fn one_alert(
    e: &mut Engine,
    now: Timestamp,
    k: u64,
    digest: &mut u64,
) -> (Duration, usize, IncidentId) {
    let alert = Alert {
        alert_id: AlertId::from(format!("b{k}")),
        kind: AlertKind::Fall,
        service: None,
        elder_id: ElderId::from(format!("E{}", k as usize % ELDERS)),
        position: None,
        detected_at: now,
        ambulance_requested: false,
        scheduled_for: None,
        device_id: DeviceId::from("GW1"),
    };
    let mut sent = Vec::with_capacity(4);
    let start = Instant::now();
    let reply = e.handle_command(now, Command::Alert(alert)).unwrap();
    while let Some(ev) = e.poll_event() {
        if let Event::OfferSent {
            responder_id,
            eta_s,
            reason,
            ..
        } = ev.event
        {
            sent.push((responder_id, eta_s, reason));
        }
    }
    let took = start.elapsed();
    let offers = sent.len();
    for offer in &sent {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        offer.hash(&mut h);
        *digest = digest.rotate_left(5) ^ h.finish();
    }
    let incident = match reply {
        dispatch_core::command::Reply::AlertAccepted { incident_id, .. } => incident_id,
        _ => unreachable!("an alert is answered with alert_accepted"),
    };
    (took, offers, incident)
}

fn close(e: &mut Engine, now: Timestamp, incident_id: IncidentId) {
    e.handle_command(
        now,
        Command::Cancel {
            operator_id: OperatorId::from("OP1"),
            incident_id,
            reason: String::new(),
        },
    )
    .unwrap();
    while e.poll_event().is_some() {}
}

/// This thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`): what an alert costs the engine
/// whatever else the two cores are doing.
fn thread_cpu() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn alert_to_offers(c: &mut Criterion) {
    // `BENCH_RESPONDERS=100000` runs one size only (to profile it alone).
    let only: Option<usize> = std::env::var("BENCH_RESPONDERS")
        .ok()
        .map(|v| v.parse().expect("BENCH_RESPONDERS: a number of responders"));
    for n in [1_000usize, 10_000, 100_000] {
        if only.is_some_and(|o| o != n) {
            continue;
        }
        let mut e = engine(n);
        let mut now = T0.plus_ms(1_000);
        // Our own percentile run: 2,000 alerts, each cancelled before the next.
        let (mut times, mut cpu) = (Vec::new(), Vec::new());
        let (mut offers_total, mut digest) = (0usize, 0u64);
        for k in 0..2_000u64 {
            let cpu0 = thread_cpu();
            let (t, offers, i) = one_alert(&mut e, now, k, &mut digest);
            cpu.push(thread_cpu() - cpu0);
            assert_eq!(offers, 3, "every alert must get a full first wave");
            offers_total += offers;
            times.push(t);
            close(&mut e, now, i);
            now = now.plus_ms(1);
        }
        // Which alerts the tail is made of (their place in the run: the first ones meet
        // search spaces and allocator state nobody has warmed yet).
        let mut slowest: Vec<usize> = (0..cpu.len()).collect();
        slowest.sort_by_key(|&i| std::cmp::Reverse(cpu[i]));
        let slowest: Vec<String> = slowest[..5]
            .iter()
            .map(|&i| format!("#{i} {:?}", cpu[i]))
            .collect();
        times.sort();
        cpu.sort();
        println!(
            "alert->offers n={n}: p50 {:?} p99 {:?} max {:?}; thread CPU p50 {:?} p99 {:?} max {:?}, slowest {} (offers checksum {offers_total}, decisions digest {digest:016x})",
            pct(&times, 0.5),
            pct(&times, 0.99),
            times.last().unwrap(),
            pct(&cpu, 0.5),
            pct(&cpu, 0.99),
            cpu.last().unwrap(),
            slowest.join(", ")
        );
        if n <= 10_000 {
            now = jittered_pass(&mut e, n, now);
        }
        let mut k = 10_000u64;
        c.bench_function(&format!("alert_to_offers/{n}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (t, offers, i) = one_alert(&mut e, now, k, &mut 0);
                    assert_eq!(offers, 3);
                    total += t;
                    close(&mut e, now, i);
                    k += 1;
                    now = now.plus_ms(1);
                }
                total
            })
        });
    }
}

/// Phones at home report GPS positions that wander a few metres: before each of 500 alerts
/// every responder's position is set anew within about 4–6 m of their home (seeded), outside
/// the timed part, as if every phone had pinged since the last alert (a city with fewer than
/// one alert per ping interval). Prints the same percentiles as the first pass.
fn jittered_pass(e: &mut Engine, n: usize, mut now: Timestamp) -> Timestamp {
    let ids: Vec<ResponderId> = (0..n).map(|i| ResponderId::from(format!("R{i}"))).collect();
    let homes: Vec<LatLon> = ids
        .iter()
        .map(|id| e.responder(id).unwrap().position)
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let (mut cpu, mut offers_total, mut digest) = (Vec::new(), 0usize, 0u64);
    for k in 0..500u64 {
        for (id, home) in ids.iter().zip(&homes) {
            let position = LatLon {
                lat: home.lat + rng.random_range(-0.00004..0.00004),
                lon: home.lon + rng.random_range(-0.00004..0.00004),
            };
            e.handle_command(
                now,
                Command::Location {
                    responder_id: id.clone(),
                    position,
                },
            )
            .unwrap();
        }
        while e.poll_event().is_some() {}
        let cpu0 = thread_cpu();
        let (_, offers, i) = one_alert(e, now, 5_000 + k, &mut digest);
        cpu.push(thread_cpu() - cpu0);
        assert_eq!(offers, 3, "every alert must get a full first wave");
        offers_total += offers;
        close(e, now, i);
        now = now.plus_ms(1);
    }
    cpu.sort();
    println!(
        "alert->offers n={n}, positions jittered before each alert: thread CPU p50 {:?} p99 {:?} max {:?} (offers checksum {offers_total}, decisions digest {digest:016x})",
        pct(&cpu, 0.5),
        pct(&cpu, 0.99),
        cpu.last().unwrap()
    );
    now
}

fn location_updates(c: &mut Criterion) {
    let n = 10_000usize;
    let mut e = engine(n);
    let ids: Vec<ResponderId> = (0..n).map(|i| ResponderId::from(format!("R{i}"))).collect();
    let mut pos: Vec<LatLon> = ids
        .iter()
        .map(|id| e.responder(id).unwrap().position)
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    // Walking pings: a few metres each (about 5e-5 degrees at most).
    let steps: Vec<(f64, f64)> = (0..4096)
        .map(|_| {
            (
                rng.random_range(-0.00005..0.00005),
                rng.random_range(-0.00005..0.00005),
            )
        })
        .collect();
    let mut now = T0.plus_ms(1);
    let mut run = |count: u64, e: &mut Engine| -> (Duration, u64) {
        let start = Instant::now();
        let mut moved = 0u64;
        for j in 0..count {
            let i = (j as usize * 7919) % n;
            let (dlat, dlon) = steps[j as usize % steps.len()];
            let p = LatLon {
                lat: pos[i].lat + dlat,
                lon: pos[i].lon + dlon,
            };
            pos[i] = p;
            e.handle_command(
                now,
                Command::Location {
                    responder_id: ids[i].clone(),
                    position: p,
                },
            )
            .unwrap();
            while let Some(ev) = e.poll_event() {
                if matches!(ev.event, Event::ResponderMoved { .. }) {
                    moved += 1;
                }
            }
        }
        now = now.plus_ms(1);
        (start.elapsed(), moved)
    };
    let count = 2_000_000u64;
    let (t, moved) = run(count, &mut e);
    assert_eq!(moved, count, "every update must be applied");
    println!(
        "location updates n={n}: {count} in {t:?} = {:.0} updates/s (checksum {moved})",
        count as f64 / t.as_secs_f64()
    );
    c.bench_function("location_update/10000", |b| {
        b.iter_custom(|iters| {
            let (t, moved) = run(iters, &mut e);
            assert_eq!(moved, iters);
            t
        })
    });
}

/// Live coverage (issue 17) with 10,000 responders (the engine's available ones, plus 20
/// ambulances) and 100,000 elders: one responder moving, one ambulance moving, and one period
/// in which 1 % of the responders moved, each against one alert's dispatch in the same run
/// (`alert_to_offers/10000`).
fn coverage_updates(c: &mut Criterion) {
    use dispatch_core::coverage::{CoverElder, CoverKind, CoverSource, Coverage};
    let n = 10_000usize;
    let e = engine(n);
    let net = network();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    // What the engine's thread pays per period: the list of the available.
    c.bench_function("coverage_engine_side/10000", |b| {
        b.iter(|| black_box(e.coverage_sources(T0.plus_ms(1))))
    });
    let mut sources = e.coverage_sources(T0.plus_ms(1));
    sources.extend((0..20).map(|i| CoverSource {
        id: ResponderId::from(format!("AMB{i}")),
        kind: CoverKind::Ambulance,
        mode: TravelMode::Car,
        time_factor: 1.0,
        position: near_road(&net, &mut rng),
    }));
    let elders: Vec<CoverElder> = (0..100_000)
        .map(|i| CoverElder {
            id: ElderId::from(format!("E{i}")),
            grid_id: format!("G{}", i % 50).into(),
            care_level: 1 + (i % 5) as u8,
            home: near_road(&net, &mut rng),
        })
        .collect();
    let mut cov = Coverage::new(net.clone(), RoadConfig::default().foot_kmh);
    let t = Instant::now();
    cov.set_elders(elders);
    let placed = t.elapsed();
    let t = Instant::now();
    let first = cov.sync(&sources);
    let built = t.elapsed();
    let s = cov.summary();
    println!(
        "coverage n={} elders=100000: elders placed in {placed:?}, first sync {built:?} \
         ({first:?}); within 3 min {:.1} %, within 15 min {:.1} %",
        sources.len(),
        s.overall.share_180_s * 100.0,
        s.overall.share_900_s * 100.0
    );
    // A walking ping: a few metres.
    let step = |s: &mut CoverSource, rng: &mut ChaCha8Rng, d: f64| {
        s.position = LatLon {
            lat: s.position.lat + rng.random_range(-d..d),
            lon: s.position.lon + rng.random_range(-d..d),
        };
    };
    let walkers: Vec<usize> = (0..sources.len())
        .filter(|&i| sources[i].mode == TravelMode::Foot)
        .collect();
    let ambulances: Vec<usize> = (0..sources.len())
        .filter(|&i| sources[i].kind == CoverKind::Ambulance)
        .collect();
    // What one walking ping touches, on average over a sample of moves (printed with the
    // figures: the move's cost follows these counts).
    let (mut vertices, mut read) = (0usize, 0usize);
    for j in 0..200 {
        let i = walkers[(j * 104_729) % walkers.len()];
        step(&mut sources[i], &mut rng, 0.0002);
        let st = cov.update(std::slice::from_ref(&sources[i]), &[]);
        vertices += st.vertices;
        read += st.elders;
    }
    println!(
        "coverage: a walking volunteer's move changes {} vertices and reads {} elders again \
         (mean of 200)",
        vertices / 200,
        read / 200
    );
    let mut k = 0usize;
    c.bench_function("coverage_move_one_volunteer/10000x100000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let i = walkers[(k * 7919) % walkers.len()];
                k += 1;
                step(&mut sources[i], &mut rng, 0.0002);
                let t = Instant::now();
                black_box(cov.update(std::slice::from_ref(&sources[i]), &[]));
                total += t.elapsed();
            }
            total
        })
    });
    c.bench_function("coverage_move_one_ambulance/10000x100000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let i = ambulances[k % ambulances.len()];
                k += 1;
                step(&mut sources[i], &mut rng, 0.002);
                let t = Instant::now();
                black_box(cov.update(std::slice::from_ref(&sources[i]), &[]));
                total += t.elapsed();
            }
            total
        })
    });
    c.bench_function("coverage_period_1pc_moved/10000x100000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                for _ in 0..sources.len() / 100 {
                    let i = walkers[(k * 7919) % walkers.len()];
                    k += 1;
                    step(&mut sources[i], &mut rng, 0.0002);
                }
                let t = Instant::now();
                black_box(cov.sync(&sources));
                total += t.elapsed();
            }
            total
        })
    });
}

/// Memory per responder and per elder, estimated from the sizes of what the engine keeps.
fn memory_estimate(_c: &mut Criterion) {
    let id_heap = 16 + 6; // Arc<str> header + a short id such as "V00042"
    let record = std::mem::size_of::<ResponderRecord>() + id_heap + 24 + 8; // + one skill
                                                                            // The engine keeps a live state (with its own copy of the record), the roster's record,
                                                                            // an R-tree entry (point + slot, ~1.5x for nodes) and an id → slot hash entry.
    let responder = std::mem::size_of::<ResponderState>()
        + record
        + (std::mem::size_of::<[f64; 2]>() + 8) * 3 / 2
        + (16 + 4 + 8) * 2;
    // An elder is one roster record in a BTreeMap (key Arc + record + ~1 pairing), ~1.3x.
    let elder = (16 + std::mem::size_of::<ElderRecord>() + id_heap + 16) * 13 / 10;
    println!(
        "memory estimate: {responder} bytes per responder, {elder} bytes per elder \
         ({:.1} MB for 100,000 of each, road graph aside)",
        (responder + elder) as f64 * 100_000.0 / 1e6
    );
    assert!(responder > 0 && elder > 0);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = memory_estimate, alert_to_offers, location_updates, coverage_updates
}
criterion_main!(benches);
