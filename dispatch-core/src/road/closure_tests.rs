//! Closures and slowdowns against Dijkstra on the changed weights, on many small random maps
//! with random overlays, and on Porto Alegre's roads.

use super::closure::Effect;
use super::graph::NO_ARC;
use super::tests::{ll, node, random_map, way};
use super::*;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub(super) fn random_overlay(rng: &mut rand_chacha::ChaCha8Rng, segments: usize) -> ProfileOverlay {
    let n = rng.random_range(1..=segments.clamp(1, 6));
    ProfileOverlay::new((0..n).map(|_| {
        let s = rng.random_range(0..segments as u32);
        let e = if rng.random_bool(0.5) {
            Effect::Closed
        } else {
            Effect::Slow {
                permille: rng.random_range(1001..8000),
            }
        };
        (s, e)
    }))
}

/// Time from every vertex to `target` by a Dijkstra written here, on the arcs with the
/// overlay applied by hand (closed: gone; slowed: × factor, rounded up).
fn times_to_vertex(g: &ProfileGraph, target: u32, changes: &[(u32, Effect)]) -> Vec<u32> {
    let b = &g.base;
    let effect = |s: u32| changes.iter().find(|(c, _)| *c == s).map(|(_, e)| *e);
    let mut into: Vec<Vec<(u32, u32)>> = vec![Vec::new(); b.vertex_count()];
    for v in 0..b.vertex_count() as u32 {
        for a in b.out_arcs(v) {
            let ms = match effect(b.out_seg[a]) {
                None => b.out_ms[a],
                Some(Effect::Closed) => continue,
                Some(Effect::Slow { permille }) => {
                    (u64::from(b.out_ms[a]) * u64::from(permille)).div_ceil(1000) as u32
                }
            };
            into[b.out_head[a] as usize].push((v, ms));
        }
    }
    let mut d = vec![u32::MAX; b.vertex_count()];
    let mut heap = BinaryHeap::from([Reverse((0u32, target))]);
    d[target as usize] = 0;
    while let Some(Reverse((du, u))) = heap.pop() {
        if du > d[u as usize] {
            continue;
        }
        for &(x, w) in &into[u as usize] {
            if du + w < d[x as usize] {
                d[x as usize] = du + w;
                heap.push(Reverse((du + w, x)));
            }
        }
    }
    d
}

/// Random points and random overlays: every route and every many-to-one time equals
/// Dijkstra on the changed weights; none is faster than on the old weights; some differ.
#[test]
fn closures_equal_dijkstra_on_the_changed_weights_on_small_random_maps() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
    let (mut checked, mut changed) = (0, 0);
    for map in 0..300 {
        let Some(net) = random_map(&mut rng) else {
            continue;
        };
        for p in Profile::ALL {
            let g = net.profile(p);
            if g.base.segments.is_empty() {
                continue;
            }
            let points: Vec<Snapped> = (0..8)
                .filter_map(|_| {
                    g.snap(ll(rng.random_range(0.0..0.01), rng.random_range(0.0..0.01)))
                        .ok()
                })
                .collect();
            // Two overlays in turn, so that a sweep repaired for one is never read for the
            // other (each has its own id in the cache).
            let overlays = [
                random_overlay(&mut rng, g.base.segments.len()),
                random_overlay(&mut rng, g.base.segments.len()),
            ];
            for round in 0..2 {
                for ov in &overlays {
                    for to in &points {
                        let fast = g.times_to_with(&points, to, ov);
                        let plain = g.times_to(&points, to);
                        for (i, from) in points.iter().enumerate() {
                            let oracle = g
                                .route_dijkstra_with(from, to, ov)
                                .map(|r| u32::try_from(r.duration_ms).unwrap());
                            assert_eq!(fast[i], oracle, "map {map} {p} round {round}: sweep");
                            let route = g.route_with(from, to, ov);
                            assert_eq!(
                                route.as_ref().map(|r| r.duration_ms),
                                oracle.map(u64::from),
                                "map {map} {p}: route {from:?} -> {to:?}"
                            );
                            match (plain[i], oracle) {
                                (Some(a), Some(b)) => {
                                    assert!(b >= a, "map {map} {p}: a closure made it faster");
                                    changed += usize::from(b > a);
                                }
                                (None, Some(_)) => panic!("map {map} {p}: a closure opened a way"),
                                (Some(_), None) => changed += 1,
                                (None, None) => {}
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 20_000, "{checked}");
    assert!(
        changed > 1_000,
        "{changed}: the overlays changed too few times"
    );
}

/// From every vertex to a vertex target (no partial pieces): the repaired sweep against a
/// Dijkstra that applies the overlay itself, on the arcs, with nothing shared.
#[test]
fn repaired_sweep_equals_an_independent_dijkstra_to_each_vertex() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(29);
    let mut checked = 0;
    for map in 0..200 {
        let Some(net) = random_map(&mut rng) else {
            continue;
        };
        for p in Profile::ALL {
            let g = net.profile(p);
            let (nv, ns) = (g.vertex_count(), g.base.segments.len());
            if nv < 2 {
                continue;
            }
            let mut changes: Vec<(u32, Effect)> = Vec::new();
            for _ in 0..rng.random_range(1..4) {
                changes.push((rng.random_range(0..ns as u32), Effect::Closed));
            }
            for _ in 0..rng.random_range(0..3) {
                let permille = rng.random_range(1500..5000);
                changes.push((rng.random_range(0..ns as u32), Effect::Slow { permille }));
            }
            // The overlay takes the stronger effect where a segment is named twice; so does
            // the oracle's list once reduced the same way.
            let ov = ProfileOverlay::new(changes.iter().copied());
            let reduced: Vec<(u32, Effect)> = (0..ns as u32)
                .filter_map(|s| Some((s, ov.effect(s)?)))
                .collect();
            let everyone: Vec<Snapped> =
                (0..nv).filter_map(|v| g.snap(g.vertex(v)?).ok()).collect();
            for _ in 0..4 {
                let t = rng.random_range(0..nv as u32);
                let Ok(target) = g.snap(g.vertex(t as usize).unwrap()) else {
                    continue;
                };
                // Snapping a vertex lands on one of its segments at an end.
                let at = [g.segment(&target).a, g.segment(&target).b];
                let tv = if target.frac == 0.0 { at[0] } else { at[1] };
                if target.frac != 0.0 && target.frac != 1.0 {
                    continue;
                }
                let want = times_to_vertex(g, tv, &reduced);
                let got = g.times_to_with(&everyone, &target, &ov);
                for (s, t) in everyone.iter().zip(&got) {
                    if s.frac != 0.0 && s.frac != 1.0 {
                        continue;
                    }
                    let sv = if s.frac == 0.0 {
                        g.segment(s).a
                    } else {
                        g.segment(s).b
                    };
                    let expect = Some(want[sv as usize]).filter(|&d| d != u32::MAX);
                    // A same-segment trip may be shorter than through the vertices only when
                    // the ends differ; at vertices they are the same trip.
                    assert_eq!(*t, expect, "map {map} {p}: {sv} -> {tv}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 5_000, "{checked}");
}

/// A grid of two-way streets, 100 m apart: closing one stretch sends a car around the block.
fn grid() -> RoadNetwork {
    let mut nodes = Vec::new();
    let id = |r: i64, c: i64| r * 10 + c;
    for r in 0..4 {
        for c in 0..4 {
            nodes.push(node(id(r, c), r as f64 * 0.0009, c as f64 * 0.0009));
        }
    }
    let mut ways = Vec::new();
    for r in 0..4 {
        let refs: Vec<i64> = (0..4).map(|c| id(r, c)).collect();
        ways.push(way(100 + r, &refs, &[("highway", "residential")]));
    }
    for c in 0..4 {
        let refs: Vec<i64> = (0..4).map(|r| id(r, c)).collect();
        ways.push(way(200 + c, &refs, &[("highway", "residential")]));
    }
    RoadNetwork::from_elements(&nodes, &ways, &RoadConfig::default()).unwrap()
}

#[test]
fn a_closed_way_is_driven_around_and_a_door_on_it_is_still_reached() {
    let net = grid();
    let g = net.profile(Profile::Car);
    let proj = net.projection();
    let from = g.snap(ll(0.0, 0.0)).unwrap();
    let to = g.snap(ll(0.0, 0.0027)).unwrap();
    let door = g.snap(ll(0.0, 0.00135)).unwrap();
    let open = g.route(&from, &to).unwrap();
    let segs = g.segments_in(&ClosureArea::Ways { ids: vec![100] }, proj);
    assert_eq!(segs.len(), 3, "way 100 has three segments");
    let ov = ProfileOverlay::new(segs.iter().map(|&s| (s, Effect::Closed)));
    let closed = g.route_with(&from, &to, &ov).unwrap();
    // Around the block: up one street, along the next row, down again (200 m more).
    assert!(
        closed.duration_ms > open.duration_ms * 3 / 2,
        "{} vs {}",
        closed.duration_ms,
        open.duration_ms
    );
    assert!(
        closed.path.iter().any(|p| p.lat > 0.0005),
        "it leaves the row"
    );
    // A door halfway along the closed street: reached from the nearer end, not through.
    let reach = g.route_with(&from, &door, &ov).unwrap();
    let plain = g.route(&from, &door).unwrap();
    assert!(reach.duration_ms > plain.duration_ms);
    assert_eq!(
        g.times_to_with(&[from], &door, &ov)[0],
        Some(reach.duration_ms as u32)
    );
    // Slowed ×1.5 instead: still the straight way (300 m at ×1.5 is less than 500 m round
    // the block), half as long again (rounded up per segment).
    let slow = ProfileOverlay::new(segs.iter().map(|&s| (s, Effect::Slow { permille: 1500 })));
    let r = g.route_with(&from, &to, &slow).unwrap();
    let want = open.duration_ms * 3 / 2;
    assert!(
        r.duration_ms.abs_diff(want) <= 3,
        "{} vs {want}",
        r.duration_ms
    );
    // ×3: round the block is faster now.
    let slower = ProfileOverlay::new(segs.iter().map(|&s| (s, Effect::Slow { permille: 3000 })));
    assert_eq!(
        g.route_with(&from, &to, &slower).unwrap().duration_ms,
        closed.duration_ms
    );
}

#[test]
fn lines_and_polygons_catch_the_roads_they_cover() {
    let net = grid();
    let g = net.profile(Profile::Car);
    let proj = net.projection();
    let along = |pts: &[(f64, f64)]| ClosureArea::Line {
        points: pts.iter().map(|&(a, b)| ll(a, b)).collect(),
        width_m: DEFAULT_LINE_WIDTH_M,
    };
    // Drawn along the first row, a few metres off: its three segments, no crossing street.
    let line = g.segments_in(&along(&[(0.00003, -0.0001), (0.00003, 0.0028)]), proj);
    let row = g.segments_in(&ClosureArea::Ways { ids: vec![100] }, proj);
    assert_eq!(line, row);
    // Only a stretch of it: one segment.
    let part = g.segments_in(&along(&[(0.0, 0.0009), (0.0, 0.0018)]), proj);
    assert_eq!(part.len(), 1);
    // Over two thirds of that segment only: still that one.
    assert_eq!(
        g.segments_in(&along(&[(0.0, 0.0009), (0.0, 0.0015)]), proj),
        part
    );
    // A long segment (a 600 m way of two nodes) caught by a line over a sixth of it (100 m),
    // not by the same line 40 m beside it.
    let long = RoadNetwork::from_elements(
        &[node(1, 0.0, 0.0), node(2, 0.0, 0.0062)],
        &[way(9, &[1, 2], &[("highway", "primary")])],
        &RoadConfig::default(),
    )
    .unwrap();
    let lg = long.profile(Profile::Car);
    let part = |to: f64| {
        lg.segments_in(
            &along(&[(0.0, 0.002), (0.0, 0.002 + to)]),
            long.projection(),
        )
    };
    assert_eq!(part(0.0009).len(), 1, "100 m of a 600 m piece");
    let beside = lg.segments_in(
        &along(&[(0.00036, 0.002), (0.00036, 0.0029)]),
        long.projection(),
    );
    assert!(beside.is_empty(), "40 m beside it");
    // Across the row, along the second column's street: its own segments, not the row's.
    let across = g.segments_in(&along(&[(-0.0002, 0.0009), (0.0011, 0.0009)]), proj);
    let column = g.segments_in(&ClosureArea::Ways { ids: vec![201] }, proj);
    assert!(
        !across.is_empty() && across.iter().all(|s| column.contains(s)),
        "{across:?}"
    );
    // A polygon round the middle crossing: the four segments meeting there at least.
    let square = ClosureArea::Polygon {
        points: vec![
            ll(0.0007, 0.0007),
            ll(0.0007, 0.0011),
            ll(0.0011, 0.0011),
            ll(0.0011, 0.0007),
        ],
    };
    assert_eq!(g.segments_in(&square, proj).len(), 4);
    // Far away: nothing.
    assert!(g
        .segments_in(&along(&[(0.01, 0.01), (0.011, 0.011)]), proj)
        .is_empty());
    // Malformed areas are refused before any road is looked at.
    assert!(along(&[(0.0, 0.0)]).check().is_err());
    assert!(ClosureArea::Ways { ids: vec![] }.check().is_err());
    let wide = ClosureArea::Line {
        points: vec![ll(0.0, 0.0), ll(0.0, 0.001)],
        width_m: 1e6,
    };
    assert!(wide.check().is_err());
    assert!(square.check().is_ok());
}

#[test]
fn an_overlay_ignores_nothing_and_combines_by_the_stronger_effect() {
    let ov = ProfileOverlay::new([
        (3, Effect::Slow { permille: 2000 }),
        (3, Effect::Slow { permille: 1500 }),
        (4, Effect::Slow { permille: 1500 }),
        (4, Effect::Closed),
        (5, Effect::Slow { permille: 1000 }),
    ]);
    assert_eq!(ov.effect(3), Some(Effect::Slow { permille: 2000 }));
    assert_eq!(ov.effect(4), Some(Effect::Closed));
    assert_eq!(ov.effect(5), None, "a factor of 1 changes nothing");
    assert_eq!(ov.through(3, 1001), 2002);
    assert_eq!(ov.through(4, 10), NO_ARC);
    assert!(ProfileOverlay::new([]).is_empty());
}

/// `RoadTimes::keep_target` relies on this: asking whether a target's sweep is kept marks
/// it most recently used, so a waiting incident whose ranking was kept keeps its sweep while
/// newer targets push older ones out (its own network, so no other test shares the cache).
#[test]
fn asking_for_a_kept_sweep_keeps_it_longer() {
    let net = grid();
    let g = net.profile(Profile::Foot);
    let none = ProfileOverlay::none();
    let n = super::TARGET_CACHE_ENTRIES;
    // Distinct targets along the first row (three segments, about 270 m).
    let targets: Vec<_> = (0..=n)
        .map(|i| {
            let lon = 0.0027 * (i as f64 + 0.5) / (n as f64 + 1.0);
            g.snap(ll(0.0, lon)).unwrap()
        })
        .collect();
    let keys: std::collections::BTreeSet<_> = targets
        .iter()
        .map(|t| (t.segment, t.frac.to_bits()))
        .collect();
    assert_eq!(keys.len(), n + 1, "every target is a distinct position");
    for t in &targets[..n] {
        g.prepare_sweep_to_with(t, &none);
    }
    assert!(
        g.has_sweep_to_with(&targets[0], &none),
        "the oldest, asked for"
    );
    g.prepare_sweep_to_with(&targets[n], &none);
    assert!(
        g.has_sweep_to_with(&targets[0], &none),
        "asked for, so kept"
    );
    assert!(
        !g.has_sweep_to_with(&targets[1], &none),
        "the least recently used went instead"
    );
}
