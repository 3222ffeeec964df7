//! Live coverage on the real Porto Alegre roads: its ETAs are the dispatch ranking's (checked
//! against the ranking's own road times for every responder, and against plain Dijkstra on a
//! sample), kept current incrementally (equal to coverage rebuilt from scratch after random
//! moves), and fed by the engine with exactly the responders an emergency could be offered to.

use crate::world::*;
use dispatch_core::command::Command;
use dispatch_core::coverage::{CoverElder, CoverKind, CoverSource, Coverage, CIRCLE_MS, DOOR_MS};
use dispatch_core::geo::LatLon;
use dispatch_core::ids::{ElderId, GridId, ResponderId};
use dispatch_core::matching::{RoadTimes, TravelTimes};
use dispatch_core::model::{Availability, ResponderKind, TravelMode};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::road::{ClosureArea, Effect, Profile, ProfileOverlay, RoadConfig, RoadOverlay};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

fn random_sources(rng: &mut ChaCha8Rng, n: usize, spread_m: f64) -> Vec<CoverSource> {
    let foot_kmh = RoadConfig::default().foot_kmh;
    (0..n)
        .map(|i| {
            let (kind, mode, factor) = match i % 10 {
                0 => (CoverKind::Ambulance, TravelMode::Car, 1.0),
                1 => (CoverKind::Community, TravelMode::Car, 1.0),
                _ => {
                    let walk = (rng.random_range(3.5..=5.0f64) * 10.0).round() / 10.0;
                    (CoverKind::Community, TravelMode::Foot, foot_kmh / walk)
                }
            };
            CoverSource {
                id: ResponderId::from(format!("R{i}")),
                kind,
                mode,
                time_factor: factor,
                position: at(
                    rng.random_range(-spread_m..spread_m),
                    rng.random_range(-spread_m..spread_m),
                ),
            }
        })
        .collect()
}

fn random_elders(rng: &mut ChaCha8Rng, n: usize, spread_m: f64) -> Vec<CoverElder> {
    (0..n)
        .map(|i| CoverElder {
            id: ElderId::from(format!("E{i}")),
            grid_id: GridId::from(format!("G{}", i % 4)),
            care_level: (i % 5) as u8 + 1,
            home: at(
                rng.random_range(-spread_m..spread_m),
                rng.random_range(-spread_m..spread_m),
            ),
        })
        .collect()
}

/// The ranking's ETA from one source to one place: `TravelTimes::times_to` on the source's
/// profile (what `Engine::eta_of` and the ranking call), times the source's factor.
fn ranking_eta(times: &RoadTimes, s: &CoverSource, to: LatLon) -> Option<u64> {
    let t = times.times_to(s.mode, &[s.position], to)[0]?;
    Some((t as f64 * s.time_factor).round() as u64)
}

fn best(times: &RoadTimes, sources: &[CoverSource], kind: CoverKind, to: LatLon) -> Option<u64> {
    sources
        .iter()
        .filter(|s| s.kind == kind)
        .filter_map(|s| ranking_eta(times, s, to))
        .filter(|&t| t <= CIRCLE_MS)
        .min()
}

#[test]
fn coverage_etas_are_the_rankings_on_porto_alegre() {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let net = porto_alegre_net();
    let times = RoadTimes::new(net.clone(), RoadConfig::default().foot_kmh);
    let sources = random_sources(&mut rng, 300, 3_000.0);
    let elders = random_elders(&mut rng, 300, 3_000.0);
    let mut cov = Coverage::new(net.clone(), RoadConfig::default().foot_kmh);
    cov.set_elders(elders);
    cov.sync(&sources);
    let (mut door, mut circle, mut ambulance) = (0, 0, 0);
    for e in cov.elders() {
        let c = best(&times, &sources, CoverKind::Community, e.elder.home);
        let a = best(&times, &sources, CoverKind::Ambulance, e.elder.home);
        assert_eq!(e.community_ms, c, "{}: community", e.elder.id);
        assert_eq!(e.ambulance_ms, a, "{}: ambulance", e.elder.id);
        door += usize::from(c.is_some_and(|t| t <= DOOR_MS));
        circle += usize::from(e.in_circle());
        ambulance += usize::from(a.is_some());
    }
    // The sample must exercise every case: inside 3 minutes, only inside 15, reached by an
    // ambulance.
    assert!(
        door > 20 && circle > door && ambulance > 20,
        "{door} {circle} {ambulance}"
    );
    let s = cov.summary();
    assert_eq!(s.overall.elders, 300);
    assert_eq!(s.overall.within_180_s, door as u64);
    assert_eq!(s.overall.within_900_s, circle as u64);
    let on_roads = sources
        .iter()
        .filter(|s| {
            let p = match s.mode {
                TravelMode::Car => Profile::Car,
                TravelMode::Foot => Profile::Foot,
            };
            net.profile(p).snap(s.position).is_ok()
        })
        .count() as u64;
    assert!(on_roads > 250, "{on_roads}");
    assert_eq!(s.community_responders + s.ambulances, on_roads);
}

/// Road closures laid under coverage: its ETAs are the ranking's on the changed weights (the
/// same overlay laid on the ranking's times), some elders fall out of the 3-minute circle,
/// and lifting the closures brings every ETA back.
#[test]
fn coverage_honours_road_closures_as_the_ranking_does() {
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    let net = porto_alegre_net();
    let times = RoadTimes::new(net.clone(), RoadConfig::default().foot_kmh);
    let sources = random_sources(&mut rng, 200, 1_500.0);
    let elders = random_elders(&mut rng, 200, 1_500.0);
    let mut cov = Coverage::new(net.clone(), RoadConfig::default().foot_kmh);
    cov.set_elders(elders);
    cov.sync(&sources);
    let before: Vec<(Option<u64>, Option<u64>)> = cov
        .elders()
        .iter()
        .map(|e| (e.community_ms, e.ambulance_ms))
        .collect();
    // A flood over a 1 km square in the middle: closed to cars and walkers alike.
    let square = ClosureArea::Polygon {
        points: vec![
            at(-500.0, -500.0),
            at(500.0, -500.0),
            at(500.0, 500.0),
            at(-500.0, 500.0),
        ],
    };
    let of = |p: Profile| {
        ProfileOverlay::new(
            net.profile(p)
                .segments_in(&square, net.projection())
                .into_iter()
                .map(|s| (s, Effect::Closed)),
        )
    };
    let flood = Arc::new(RoadOverlay {
        car: of(Profile::Car),
        foot: of(Profile::Foot),
    });
    assert!(flood.car.len() > 50 && flood.foot.len() > 50);
    times.set_overlay(flood.clone());
    cov.set_overlay(flood.clone());
    assert_eq!(
        cov.set_overlay(flood.clone()).added,
        0,
        "the same overlay again: nothing"
    );
    let mut worse = 0;
    for (e, was) in cov.elders().iter().zip(&before) {
        let c = best(&times, &sources, CoverKind::Community, e.elder.home);
        let a = best(&times, &sources, CoverKind::Ambulance, e.elder.home);
        assert_eq!(e.community_ms, c, "{}: community", e.elder.id);
        assert_eq!(e.ambulance_ms, a, "{}: ambulance", e.elder.id);
        worse += usize::from((c, a) != *was);
    }
    assert!(worse > 20, "{worse} elders' ETAs changed");
    // Responders move while the flood holds (the server's order: the overlay, then the
    // period's moves): the ETAs are still the ranking's on the flooded roads.
    let mut moved = sources.clone();
    for s in moved.iter_mut().step_by(3) {
        s.position = dispatch_core::geo::Projection::new(s.position).to_latlon([120.0, -80.0]);
    }
    assert!(cov.sync(&moved).moved > 50);
    for e in cov.elders() {
        let c = best(&times, &moved, CoverKind::Community, e.elder.home);
        let a = best(&times, &moved, CoverKind::Ambulance, e.elder.home);
        assert_eq!(e.community_ms, c, "{}: community after moves", e.elder.id);
        assert_eq!(e.ambulance_ms, a, "{}: ambulance after moves", e.elder.id);
    }
    // Coverage started while the flood holds, its elders given after the overlay: their
    // homes are placed on the flooded roads too.
    let mut late = Coverage::new(net.clone(), RoadConfig::default().foot_kmh);
    late.set_overlay(flood.clone());
    late.set_elders(cov.elders().iter().map(|e| e.elder.clone()).collect());
    late.sync(&moved);
    for (e, live) in late.elders().iter().zip(cov.elders()) {
        let c = best(&times, &moved, CoverKind::Community, e.elder.home);
        assert_eq!(e.community_ms, c, "{}: community, started late", e.elder.id);
        assert_eq!(
            (e.community_ms, e.ambulance_ms),
            (live.community_ms, live.ambulance_ms),
            "{}: started late",
            e.elder.id
        );
    }
    cov.sync(&sources);
    // Lifted: back to the ETAs before, exactly.
    let none = Arc::new(RoadOverlay::default());
    cov.set_overlay(none);
    let after: Vec<(Option<u64>, Option<u64>)> = cov
        .elders()
        .iter()
        .map(|e| (e.community_ms, e.ambulance_ms))
        .collect();
    assert_eq!(after, before);
}

/// Plain Dijkstra (the road layer's oracle, no hierarchy, no sweep) agrees on a sample.
#[test]
fn coverage_etas_equal_plain_dijkstra_on_a_sample() {
    let mut rng = ChaCha8Rng::seed_from_u64(18);
    let net = porto_alegre_net();
    let sources = random_sources(&mut rng, 120, 1_500.0);
    let elders = random_elders(&mut rng, 6, 1_500.0);
    let mut cov = Coverage::new(net.clone(), RoadConfig::default().foot_kmh);
    cov.set_elders(elders);
    cov.sync(&sources);
    let mut found = 0;
    for e in cov.elders() {
        for kind in [CoverKind::Community, CoverKind::Ambulance] {
            let oracle = sources
                .iter()
                .filter(|s| s.kind == kind)
                .filter_map(|s| {
                    let p = match s.mode {
                        TravelMode::Car => Profile::Car,
                        TravelMode::Foot => Profile::Foot,
                    };
                    let g = net.profile(p);
                    let (from, to) = (g.snap(s.position).ok()?, g.snap(e.elder.home).ok()?);
                    let r = g.route_dijkstra(&from, &to)?;
                    let off = ((from.moved_m + to.moved_m) / g.max_speed_mps() * 1000.0).ceil();
                    Some(((r.duration_ms as f64 + off) * s.time_factor).round() as u64)
                })
                .filter(|&t| t <= CIRCLE_MS)
                .min();
            let got = match kind {
                CoverKind::Community => e.community_ms,
                CoverKind::Ambulance => e.ambulance_ms,
            };
            assert_eq!(got, oracle, "{} {kind:?}", e.elder.id);
            found += usize::from(got.is_some());
        }
    }
    assert!(found >= 8, "{found}");
}

/// Walking speeds not given to 0.1 km/h are grouped at the nearest 0.1 (so that a roster of
/// many slightly different speeds still makes few fields): their ETA is the ranking's at that
/// speed, within 1.5 % of the ranking's at their own.
#[test]
fn walking_speeds_off_the_tenth_are_grouped_at_the_nearest_tenth() {
    let net = porto_alegre_net();
    let foot = RoadConfig::default().foot_kmh;
    let times = RoadTimes::new(net.clone(), foot);
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let elders = random_elders(&mut rng, 200, 1_200.0);
    let mut sources = random_sources(&mut rng, 80, 1_200.0);
    for s in sources.iter_mut().filter(|s| s.mode == TravelMode::Foot) {
        let walk = rng.random_range(3.5..5.0f64);
        s.time_factor = foot / walk;
    }
    let mut cov = Coverage::new(net.clone(), foot);
    cov.set_elders(elders);
    cov.sync(&sources);
    let rounded: Vec<CoverSource> = sources
        .iter()
        .map(|s| {
            let mut r = s.clone();
            if s.mode == TravelMode::Foot {
                r.time_factor = foot / ((foot / s.time_factor * 10.0).round() / 10.0);
            }
            r
        })
        .collect();
    let mut compared = 0;
    for e in cov.elders() {
        let at_tenth = best(&times, &rounded, CoverKind::Community, e.elder.home);
        assert_eq!(e.community_ms, at_tenth, "{}", e.elder.id);
        let exact = best(&times, &sources, CoverKind::Community, e.elder.home);
        if let (Some(a), Some(b)) = (e.community_ms, exact) {
            assert!(
                (a as f64 - b as f64).abs() <= 0.015 * b as f64 + 1.0,
                "{a} vs {b}"
            );
            compared += 1;
        }
    }
    assert!(compared > 100, "{compared}");
}

/// Responders arriving, moving, changing speed and leaving, in random batches, and now and
/// then a roster change (elders leaving, moving home, joining, in another order): after
/// each batch, every elder's ETAs equal those of coverage built afresh from the same
/// responders and elders.
#[test]
fn incremental_coverage_equals_coverage_rebuilt() {
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    let net = porto_alegre_net();
    let pool = random_sources(&mut rng, 200, 2_000.0);
    let mut elders = random_elders(&mut rng, 400, 2_000.0);
    let joining = random_elders(&mut rng, 40, 2_000.0);
    let mut live = Coverage::new(net.clone(), RoadConfig::default().foot_kmh);
    live.set_elders(elders.clone());
    // Each source on or off duty and where it is; each round a few come, go and move.
    let mut state: Vec<Option<CoverSource>> = pool.iter().map(|s| Some(s.clone())).collect();
    let mut now: Vec<CoverSource> = Vec::new();
    let mut touched_fewer = 0;
    for round in 0..12 {
        for (slot, s) in state.iter_mut().zip(&pool) {
            let roll: f64 = rng.random();
            if roll < 0.04 {
                *slot = match slot {
                    Some(_) => None,
                    None => Some(s.clone()),
                };
            } else if roll < 0.08 {
                if let Some(x) = slot {
                    let d = [
                        rng.random_range(-300.0..300.0),
                        rng.random_range(-300.0..300.0),
                    ];
                    x.position = dispatch_core::geo::Projection::new(x.position).to_latlon(d);
                }
            } else if roll < 0.10 {
                // Into another group: a walker at another speed, or a car that changes
                // kind; or off the map (and back on later, from the pool).
                if let Some(x) = slot {
                    match (x.mode, rng.random_range(0..3)) {
                        (_, 0) => x.position = LatLon { lat: 0.0, lon: 0.0 },
                        (TravelMode::Foot, _) => {
                            let walk = rng.random_range(35..=50) as f64 / 10.0;
                            x.time_factor = RoadConfig::default().foot_kmh / walk;
                        }
                        (TravelMode::Car, _) => {
                            x.kind = match x.kind {
                                CoverKind::Ambulance => CoverKind::Community,
                                CoverKind::Community => CoverKind::Ambulance,
                            }
                        }
                    }
                }
            }
        }
        if round % 4 == 3 {
            // A roster change while responders are held.
            elders.retain(|_| rng.random_bool(0.9));
            for e in elders.iter_mut().filter(|_| rng.random_bool(0.1)) {
                e.home = dispatch_core::geo::Projection::new(e.home).to_latlon([150.0, -90.0]);
            }
            elders.extend(joining.iter().skip(round * 3).take(10).map(|e| CoverElder {
                id: format!("{}-{round}", e.id.as_str()).into(),
                ..e.clone()
            }));
            elders.shuffle(&mut rng);
            live.set_elders(elders.clone());
        }
        let next: Vec<CoverSource> = state.iter().flatten().cloned().collect();
        let stats = live.sync(&next);
        touched_fewer += usize::from(stats.elders < elders.len());
        now = next;
        let mut fresh = Coverage::new(net.clone(), RoadConfig::default().foot_kmh);
        fresh.set_elders(elders.clone());
        fresh.sync(&now);
        assert_same_coverage(&live, &fresh, &format!("round {round}"));
    }
    assert!(!now.is_empty());
    // Incremental: a batch reads again only the elders it may have changed.
    assert!(touched_fewer >= 6, "{touched_fewer}");
}

/// Both coverages give every elder the same ETAs and the same summary.
fn assert_same_coverage(a: &Coverage, b: &Coverage, context: &str) {
    assert_eq!(a.elders().len(), b.elders().len(), "{context}");
    for (x, y) in a.elders().iter().zip(b.elders()) {
        assert_eq!(
            (x.community_ms, x.ambulance_ms),
            (y.community_ms, y.ambulance_ms),
            "{context}: {}",
            x.elder.id
        );
    }
    assert_eq!(a.summary(), b.summary(), "{context}");
}

/// The engine gives coverage the responders the ranking could offer an emergency to: on duty
/// on a fresh position, not holding an offer; volunteers, grid workers and ambulances, never
/// service staff or kin.
#[test]
fn engine_gives_coverage_only_responders_an_emergency_could_be_offered_to() {
    let mut kin = responder("K1", ResponderKind::Kin, TravelMode::Foot, at(50.0, 0.0));
    kin.kin_of = vec![ElderId::from("E1")];
    let staff = responder(
        "S1",
        ResponderKind::ServiceStaff,
        TravelMode::Foot,
        at(0.0, 60.0),
    );
    let r = roster(
        vec![
            volunteer("V1", at(100.0, 0.0)),
            volunteer("V2", at(0.0, 120.0)),
            ambulance("A1", at(2_000.0, 0.0)),
            kin,
            staff,
        ],
        vec![elder("E1", at(0.0, 0.0), "G1", 3, &[])],
    );
    let mut sim = Sim::new(porto_alegre(), r, PolicyConfig::default());
    let ids = |sim: &Sim| {
        let mut v: Vec<(String, CoverKind)> = sim
            .engine
            .coverage_sources(sim.now)
            .into_iter()
            .map(|s| (s.id.to_string(), s.kind))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert!(ids(&sim).is_empty(), "nobody is on duty yet");
    sim.on_duty(&["V1", "V2", "A1", "K1", "S1"]);
    assert_eq!(
        ids(&sim),
        vec![
            ("A1".to_string(), CoverKind::Ambulance),
            ("V1".to_string(), CoverKind::Community),
            ("V2".to_string(), CoverKind::Community),
        ]
    );
    let v = sim.engine.elders_version();
    let es = sim.engine.coverage_elders();
    assert_eq!(es.len(), 1);
    assert_eq!((es[0].care_level, es[0].home), (3, at(0.0, 0.0)));
    // A fall: whoever is offered it drops out of coverage while they hold the offer.
    sim.ok(fall("a1", "E1"));
    let offered = offered_to(&sim.events);
    assert!(!offered.is_empty());
    for id in &offered {
        assert!(
            !ids(&sim).iter().any(|(x, _)| x == id),
            "{id} holds an offer"
        );
    }
    // Off duty: gone. An elder's change moves the version on.
    sim.ok(Command::SetAvailability {
        responder_id: rid("A1"),
        status: Availability::OffDuty,
    });
    assert!(!ids(&sim).iter().any(|(x, _)| x == "A1"));
    sim.ok(Command::UpsertElder {
        by: dispatch_core::model::Actor::Operator(op()),
        elder: elder("E2", at(10.0, 10.0), "G1", 5, &[]),
    });
    assert!(sim.engine.elders_version() > v);
    assert_eq!(sim.engine.coverage_elders().len(), 2);
    // A position older than the staleness limit: not counted.
    sim.advance(PolicyConfig::default().stale_position_ms + 1_000);
    assert!(ids(&sim).is_empty(), "{:?}", ids(&sim));
}

/// A responder named twice in one period's list is taken once, by their first entry,
/// whether coverage held them already or not.
#[test]
fn a_responder_named_twice_in_a_sync_counts_once_by_the_first_entry() {
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let net = porto_alegre_net();
    let sources = random_sources(&mut rng, 40, 1_500.0);
    let elders = random_elders(&mut rng, 150, 1_500.0);
    let shifted = |s: &CoverSource| CoverSource {
        position: dispatch_core::geo::Projection::new(s.position).to_latlon([250.0, 180.0]),
        ..s.clone()
    };
    let mut twice = Coverage::new(net.clone(), RoadConfig::default().foot_kmh);
    twice.set_elders(elders.clone());
    let mut once = twice.clone();
    // New to coverage: the second entry (elsewhere) is not taken.
    let mut given = sources.clone();
    given.push(shifted(&sources[0]));
    let stats = twice.sync(&given);
    once.sync(&sources);
    assert_eq!((stats.added, stats.moved), (40, 0));
    // Held already: the first entry moves them, the second does not.
    let mut given: Vec<CoverSource> = sources.clone();
    given[1] = shifted(&sources[1]);
    given.push(sources[1].clone());
    let stats = twice.sync(&given);
    let mut expected = sources.clone();
    expected[1] = shifted(&sources[1]);
    once.sync(&expected);
    assert_eq!((stats.added, stats.moved, stats.removed), (0, 1, 0));
    assert_same_coverage(&twice, &once, "named twice");
}
