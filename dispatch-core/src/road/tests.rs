//! Profile rules on small hand-written OSM fixtures, snapping, and bad input.

use super::*;
use crate::geo::haversine_m;

pub(super) fn ll(lat: f64, lon: f64) -> LatLon {
    LatLon::new(lat, lon).unwrap()
}

pub(super) fn node(id: i64, lat: f64, lon: f64) -> OsmNode {
    OsmNode { id, lat, lon }
}

pub(super) fn way(id: i64, nodes: &[i64], tags: &[(&str, &str)]) -> OsmWay {
    OsmWay {
        id,
        nodes: nodes.to_vec(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A square of two-way residential streets (1-2-3-4-1, about 1.1 km a side, on the
/// equator), plus a diagonal 1 → 3 with the given tags: the diagonal is shorter than going
/// round, so whether a route takes it shows what the profile makes of it.
fn square_nodes() -> Vec<OsmNode> {
    vec![
        node(1, 0.0, 0.0),
        node(2, 0.0, 0.01),
        node(3, 0.01, 0.01),
        node(4, 0.01, 0.0),
    ]
}

fn square_with_diagonal(diagonal: &[(&str, &str)]) -> RoadNetwork {
    let ways = vec![
        way(100, &[1, 2, 3, 4, 1], &[("highway", "residential")]),
        way(200, &[1, 3], diagonal),
    ];
    RoadNetwork::from_elements(&square_nodes(), &ways, &RoadConfig::default()).unwrap()
}

fn pos(id: i64) -> LatLon {
    let n = square_nodes().into_iter().find(|n| n.id == id).unwrap();
    ll(n.lat, n.lon)
}

fn ms(len_m: f64, kmh: f64) -> u64 {
    ((len_m / (kmh / 3.6) * 1000.0).round() as u64).max(1)
}

fn time(net: &RoadNetwork, p: Profile, from: i64, to: i64) -> u64 {
    let g = net.profile(p);
    let r = g
        .route(&g.snap(pos(from)).unwrap(), &g.snap(pos(to)).unwrap())
        .unwrap();
    r.duration_ms
}

/// The diagonal at `kmh`.
fn diagonal_ms(kmh: f64) -> u64 {
    ms(haversine_m(pos(1), pos(3)), kmh)
}

/// Round the square from 1 to 3 (or back) at `kmh`: two sides, each rounded per segment.
fn round_ms(kmh: f64) -> u64 {
    ms(haversine_m(pos(1), pos(2)), kmh) + ms(haversine_m(pos(2), pos(3)), kmh)
}

#[test]
fn two_way_diagonal_is_used_both_ways() {
    let net = square_with_diagonal(&[("highway", "residential")]);
    assert_eq!(time(&net, Profile::Car, 1, 3), diagonal_ms(25.0));
    assert_eq!(time(&net, Profile::Car, 3, 1), diagonal_ms(25.0));
    assert!(diagonal_ms(25.0) < round_ms(25.0));
}

#[test]
fn each_one_way_form_allows_only_its_direction_by_car() {
    for tags in [
        &[("highway", "residential"), ("oneway", "yes")][..],
        &[("highway", "residential"), ("oneway", "true")],
        &[("highway", "residential"), ("oneway", "1")],
        &[("highway", "residential"), ("junction", "roundabout")],
        &[("highway", "motorway")],
        &[("highway", "motorway_link")],
    ] {
        let net = square_with_diagonal(tags);
        let class_kmh = RoadConfig::default().car_class_kmh[tags[0].1];
        assert_eq!(
            time(&net, Profile::Car, 1, 3),
            diagonal_ms(class_kmh),
            "{tags:?}"
        );
        assert_eq!(time(&net, Profile::Car, 3, 1), round_ms(25.0), "{tags:?}");
        if tags[0].1 == "residential" {
            // Walkers ignore one-way rules.
            assert_eq!(
                time(&net, Profile::Foot, 3, 1),
                diagonal_ms(4.5),
                "{tags:?}"
            );
        }
    }
    let net = square_with_diagonal(&[("highway", "residential"), ("oneway", "-1")]);
    assert_eq!(time(&net, Profile::Car, 3, 1), diagonal_ms(25.0));
    assert_eq!(time(&net, Profile::Car, 1, 3), round_ms(25.0));
    let net = square_with_diagonal(&[("highway", "motorway"), ("oneway", "no")]);
    assert_eq!(time(&net, Profile::Car, 3, 1), diagonal_ms(90.0));
}

#[test]
fn each_maxspeed_form() {
    for (value, kmh) in [
        ("50", 50.0),
        ("50 km/h", 50.0),
        ("25 mph", 25.0 * 1.609_344),
        ("junk", 25.0),
        ("none", 25.0),
    ] {
        let net = square_with_diagonal(&[("highway", "residential"), ("maxspeed", value)]);
        assert_eq!(time(&net, Profile::Car, 1, 3), diagonal_ms(kmh), "{value}");
        // Walkers walk at their own speed whatever the sign says.
        assert_eq!(time(&net, Profile::Foot, 1, 3), diagonal_ms(4.5), "{value}");
    }
}

#[test]
fn private_and_closed_ways() {
    for tags in [
        &[("highway", "service"), ("access", "private")][..],
        &[("highway", "service"), ("access", "no")],
        &[("highway", "service"), ("motor_vehicle", "no")],
        &[("highway", "service"), ("motorcar", "private")],
        &[("highway", "service"), ("area", "yes")],
    ] {
        let net = square_with_diagonal(tags);
        assert_eq!(time(&net, Profile::Car, 1, 3), round_ms(25.0), "{tags:?}");
    }
    // Closed to walkers too, unless they are let in explicitly.
    let net = square_with_diagonal(&[("highway", "service"), ("access", "private")]);
    assert_eq!(time(&net, Profile::Foot, 1, 3), round_ms(4.5));
    let net = square_with_diagonal(&[
        ("highway", "service"),
        ("access", "private"),
        ("foot", "yes"),
    ]);
    assert_eq!(time(&net, Profile::Foot, 1, 3), diagonal_ms(4.5));
    let net = square_with_diagonal(&[
        ("highway", "footway"),
        ("access", "no"),
        ("foot", "designated"),
    ]);
    assert_eq!(time(&net, Profile::Foot, 1, 3), diagonal_ms(4.5));
    // Motor-vehicle bans do not concern walkers.
    let net = square_with_diagonal(&[("highway", "service"), ("motor_vehicle", "no")]);
    assert_eq!(time(&net, Profile::Foot, 1, 3), diagonal_ms(4.5));
}

#[test]
fn foot_only_ways() {
    for class in [
        "footway",
        "path",
        "pedestrian",
        "track",
        "cycleway",
        "bridleway",
        "corridor",
    ] {
        let net = square_with_diagonal(&[("highway", class)]);
        assert_eq!(time(&net, Profile::Car, 1, 3), round_ms(25.0), "{class}");
        assert_eq!(time(&net, Profile::Foot, 1, 3), diagonal_ms(4.5), "{class}");
    }
    let net = square_with_diagonal(&[("highway", "footway"), ("foot", "no")]);
    assert_eq!(time(&net, Profile::Foot, 1, 3), round_ms(4.5));
    // Walkers may not use motorways or trunks.
    let net = square_with_diagonal(&[("highway", "trunk")]);
    assert_eq!(time(&net, Profile::Foot, 1, 3), round_ms(4.5));
    assert_eq!(time(&net, Profile::Car, 1, 3), diagonal_ms(70.0));
}

#[test]
fn steps_are_walked_at_half_speed() {
    let net = square_with_diagonal(&[("highway", "steps")]);
    let g = net.profile(Profile::Foot);
    // Two points on the stairs a quarter and three quarters of the way up.
    let at = |f: f64| ll(0.01 * f, 0.01 * f);
    let (a, b) = (g.snap(at(0.25)).unwrap(), g.snap(at(0.75)).unwrap());
    let r = g.route(&a, &b).unwrap();
    let expected = (diagonal_ms(2.25) as f64 * 0.5).round() as u64;
    assert!(
        r.duration_ms.abs_diff(expected) <= 1,
        "{} vs {expected}",
        r.duration_ms
    );
    assert_eq!(r.path.len(), 2);
    // The car graph has no steps: the same points snap to the square's sides instead.
    assert!(net.profile(Profile::Car).snap(at(0.5)).unwrap().moved_m > 500.0);
}

#[test]
fn a_way_with_a_missing_node_keeps_its_other_segments() {
    let ways = vec![way(
        100,
        &[1, 2, 999, 3, 4, 1],
        &[("highway", "residential")],
    )];
    let net = RoadNetwork::from_elements(&square_nodes(), &ways, &RoadConfig::default()).unwrap();
    let stats = net.profile(Profile::Car).stats();
    assert_eq!(
        stats.segments_missing_node, 2,
        "2-999 and 999-3 are skipped"
    );
    assert_eq!(stats.segments, 3, "1-2, 3-4 and 4-1 are kept");
    // 2 → 3 must now go the long way round, 2-1-4-3.
    let side = |a, b| ms(haversine_m(pos(a), pos(b)), 25.0);
    assert_eq!(
        time(&net, Profile::Car, 2, 3),
        side(2, 1) + side(1, 4) + side(4, 3)
    );
}

#[test]
fn only_the_largest_strongly_connected_component_is_kept() {
    let mut nodes = square_nodes();
    nodes.push(node(5, 0.013, 0.013));
    let ways = vec![
        way(100, &[1, 2, 3, 4, 1], &[("highway", "residential")]),
        // A one-way stub out of the square: nothing comes back from 5.
        way(
            300,
            &[3, 5],
            &[("highway", "residential"), ("oneway", "yes")],
        ),
    ];
    let net = RoadNetwork::from_elements(&nodes, &ways, &RoadConfig::default()).unwrap();
    let g = net.profile(Profile::Car);
    assert_eq!(g.stats().vertices_all, 5);
    assert_eq!(g.stats().vertices, 4);
    let s = g.snap(ll(0.013, 0.013)).unwrap();
    assert_eq!(s.point, pos(3));
    assert!((s.moved_m - haversine_m(pos(3), ll(0.013, 0.013))).abs() < 1e-6);
}

#[test]
fn snapping_lands_on_the_nearest_segment_not_the_nearest_node() {
    let net = square_with_diagonal(&[("highway", "residential")]);
    let g = net.profile(Profile::Car);
    // 100 m south of the middle of side 1-2.
    let s = g.snap(ll(-0.0009, 0.005)).unwrap();
    assert!(
        (s.point.lat).abs() < 1e-9 && (s.point.lon - 0.005).abs() < 1e-6,
        "{s:?}"
    );
    assert!((s.moved_m - 100.0).abs() < 1.0, "{}", s.moved_m);
    // Routing between two points on the same side runs along it, not via a corner.
    let t = g.snap(ll(0.0, 0.008)).unwrap();
    let r = g.route(&s, &t).unwrap();
    assert_eq!(r.path.len(), 2);
    assert!((r.distance_m - 333.6).abs() < 1.0, "{}", r.distance_m);
}

#[test]
fn positions_beyond_the_snap_limit_are_errors() {
    let net = square_with_diagonal(&[("highway", "residential")]);
    let g = net.profile(Profile::Car);
    assert!(matches!(
        g.snap(ll(0.05, 0.05)),
        Err(SnapError::TooFar { .. })
    ));
    assert!(matches!(
        g.snap(LatLon {
            lat: f64::NAN,
            lon: 0.0
        }),
        Err(SnapError::BadPosition(_))
    ));
    let cfg = RoadConfig {
        snap_limit_m: 10_000.0,
        ..RoadConfig::default()
    };
    let ways = vec![way(100, &[1, 2, 3, 4, 1], &[("highway", "residential")])];
    let net = RoadNetwork::from_elements(&square_nodes(), &ways, &cfg).unwrap();
    assert!(net.profile(Profile::Car).snap(ll(0.05, 0.05)).is_ok());
}

#[test]
fn a_map_without_roads_is_an_error() {
    let cfg = RoadConfig::default();
    assert!(matches!(
        RoadNetwork::from_elements(&[], &[], &cfg),
        Err(RoadError::NoRoads { .. })
    ));
    let ways = vec![
        way(1, &[1, 2, 3, 1], &[("building", "yes")]),
        way(2, &[1, 3], &[("highway", "proposed")]),
    ];
    assert!(matches!(
        RoadNetwork::from_elements(&square_nodes(), &ways, &cfg),
        Err(RoadError::NoRoads { .. })
    ));
    // A footpath alone is a map for walkers; the car profile is empty and says so on snap.
    let ways = vec![way(1, &[1, 2, 3, 1], &[("highway", "footway")])];
    let net = RoadNetwork::from_elements(&square_nodes(), &ways, &cfg).unwrap();
    assert_eq!(
        net.profile(Profile::Car).snap(pos(1)),
        Err(SnapError::NoRoads(Profile::Car))
    );
    assert!(net.profile(Profile::Foot).snap(pos(1)).is_ok());
}

#[test]
fn bad_pbf_input_is_an_error() {
    let cfg = RoadConfig::default();
    let junk = b"this is not a protobuf file, just some text\n".repeat(10);
    assert!(RoadNetwork::from_pbf(&junk[..], &cfg).is_err());
    assert!(matches!(
        RoadNetwork::from_pbf(&b""[..], &cfg),
        Err(RoadError::NoRoads { .. })
    ));
    let bytes = std::fs::read(crate::testdata::porto_alegre_pbf()).unwrap();
    let truncated = &bytes[..bytes.len() / 2];
    assert!(matches!(
        RoadNetwork::from_pbf(truncated, &cfg),
        Err(RoadError::Pbf(_))
    ));
}

#[test]
fn bad_config_is_an_error() {
    let cfg = RoadConfig {
        foot_kmh: 0.0,
        ..RoadConfig::default()
    };
    assert!(matches!(
        RoadNetwork::from_elements(&square_nodes(), &[], &cfg),
        Err(RoadError::BadConfig(_))
    ));
}

/// Checks that a search result is a real walk: consecutive segments share a vertex, each is
/// travelled in an allowed direction, and the times add up to the total.
pub(crate) fn assert_walk_adds_up(
    g: &ProfileGraph,
    from: &Snapped,
    to: &Snapped,
    f: &dijkstra::Found,
) {
    let mut v = f.start;
    let mut total = u64::from(f.source.ms);
    for &s in &f.segments {
        let seg = &g.base.segments[s as usize];
        let (next, ms) = if seg.a == v {
            (seg.b, seg.fwd_ms)
        } else {
            assert_eq!(seg.b, v, "segment {s} does not continue the walk");
            (seg.a, seg.bwd_ms)
        };
        assert_ne!(
            ms,
            graph::NO_ARC,
            "segment {s} travelled against its direction"
        );
        total += u64::from(ms);
        v = next;
    }
    assert_eq!(v, f.target.node);
    total += u64::from(f.target.ms);
    assert_eq!(total, u64::from(f.ms));
    let sources = snap::source_seeds(g.segment(from), from.frac);
    let targets = snap::target_seeds(g.segment(to), to.frac);
    assert!(sources.contains(&Some(f.source)) && targets.contains(&Some(f.target)));
}

/// A small random map: random ways between random nodes, with random one-way forms, classes
/// and speeds, so that shortcuts, parallel arcs, one-way loops and same-segment trips all
/// occur (`None` when it has no usable road).
pub(super) fn random_map(rng: &mut rand_chacha::ChaCha8Rng) -> Option<RoadNetwork> {
    use rand::Rng;
    let classes = [
        "residential",
        "primary",
        "service",
        "footway",
        "steps",
        "motorway",
    ];
    let oneways = [None, Some("yes"), Some("-1"), Some("no")];
    let n = rng.random_range(4..40);
    let nodes: Vec<OsmNode> = (0..n)
        .map(|i| node(i, rng.random_range(0.0..0.01), rng.random_range(0.0..0.01)))
        .collect();
    let ways: Vec<OsmWay> = (0..rng.random_range(3..2 * n))
        .map(|w| {
            let len = rng.random_range(2..5);
            let refs: Vec<i64> = (0..len).map(|_| rng.random_range(0..n)).collect();
            let mut tags = vec![("highway", classes[rng.random_range(0..classes.len())])];
            if let Some(o) = oneways[rng.random_range(0..oneways.len())] {
                tags.push(("oneway", o));
            }
            if rng.random_bool(0.3) {
                tags.push((
                    "maxspeed",
                    ["30", "60 km/h", "20 mph", "x"][rng.random_range(0..4)],
                ));
            }
            way(w, &refs, &tags)
        })
        .collect();
    RoadNetwork::from_elements(&nodes, &ways, &RoadConfig::default()).ok()
}

/// 300 random maps drawn from `seed` ([`random_map`]; those it gives up on skipped), and on
/// each profile's graph of each up to 8 random positions snapped (those too far from a road
/// left out): `check(map, profile, graph, points)`.
fn on_random_maps(seed: u64, mut check: impl FnMut(usize, Profile, &ProfileGraph, &[Snapped])) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for map in 0..300 {
        let Some(net) = random_map(&mut rng) else {
            continue;
        };
        for p in Profile::ALL {
            let g = net.profile(p);
            let points: Vec<Snapped> = (0..8)
                .filter_map(|_| {
                    g.snap(ll(rng.random_range(0.0..0.01), rng.random_range(0.0..0.01)))
                        .ok()
                })
                .collect();
            check(map, p, g, &points);
        }
    }
}

/// Contraction hierarchies against Dijkstra on many small random maps: random ways between
/// random nodes, with random one-way forms, classes and speeds, so that shortcuts, parallel
/// arcs, one-way loops and same-segment trips all occur.
#[test]
fn ch_equals_dijkstra_on_small_random_maps() {
    let mut checked = 0;
    on_random_maps(7, |map, p, g, points| {
        for from in points {
            let fast = g.times_to(points, from);
            let slow = g.times_to_dijkstra(points, from);
            assert_eq!(fast, slow, "map {map} {p}: times_to");
            // The kept spaces, every source at once (unreachable ones included).
            assert_eq!(g.times(points, from), slow, "map {map} {p}: times");
            for to in points {
                let (a, b) = (g.route(from, to), g.route_dijkstra(from, to));
                assert_eq!(
                    a.as_ref().map(|r| r.duration_ms),
                    b.as_ref().map(|r| r.duration_ms),
                    "map {map} {p}: {from:?} -> {to:?}"
                );
                // The time alone (no path unpacked) is the route's, unreachable included;
                // asked again, the kept time.
                for ask in ["searched", "kept"] {
                    assert_eq!(
                        g.time(from, to),
                        b.as_ref().map(|r| r.duration_ms),
                        "map {map} {p}: {ask} time {from:?} -> {to:?}"
                    );
                }
                let fs = snap::source_seeds(g.segment(from), from.frac);
                let ts = snap::target_seeds(g.segment(to), to.frac);
                if let Some(f) = g.ch.shortest(&fs, &ts) {
                    assert_walk_adds_up(g, from, to, &f);
                }
                checked += 1;
            }
        }
    });
    assert!(checked > 10_000, "{checked}");
}

/// Every vertex's space searched up front (`warm_vertex_spaces`) gives the times the spaces
/// searched on demand give, and Dijkstra's, on the same random maps; and the graph says it
/// holds them.
#[test]
fn warmed_vertex_spaces_give_dijkstra_s_times_on_small_random_maps() {
    let mut checked = 0;
    on_random_maps(27, |map, p, g, points| {
        let warm = g.clone();
        assert!(
            warm.warm_vertex_spaces(),
            "map {map} {p}: a small map is kept"
        );
        assert!(warm.vertex_spaces.get().is_some());
        assert!(
            g.vertex_spaces.get().is_none(),
            "the original searches on demand"
        );
        for to in points {
            let slow = g.times_to_dijkstra(points, to);
            assert_eq!(warm.times(points, to), slow, "map {map} {p}: warmed");
            assert_eq!(g.times(points, to), slow, "map {map} {p}: on demand");
            checked += points.len();
        }
    });
    assert!(checked > 10_000, "{checked}");
}

/// The snapping grid names the segment the R-tree finds, wherever it answers: random
/// positions on and off random maps (off the grid, far from every road), and positions
/// exactly on vertices, where the segments that meet there are equally near and the grid
/// leaves the choice to the tree.
#[test]
fn the_snapping_grid_names_the_r_tree_s_segment_on_small_random_maps() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(31);
    let (mut answered, mut left, mut at_vertices_left) = (0, 0, 0);
    on_random_maps(29, |map, p, g, _| {
        // Whether the grid answered `at` (and then with the tree's segment).
        let check = |at: LatLon| -> bool {
            let (grid, tree) = g.snap.grid_and_tree(at);
            if let Some(grid) = grid {
                assert_eq!(Some(grid), tree, "map {map} {p}: {at:?}");
            }
            // What snapping gives is the R-tree's answer either way.
            if let Ok(s) = g.snap(at) {
                assert_eq!(Some(s.segment), tree, "map {map} {p}: {at:?}");
            }
            grid.is_some()
        };
        for _ in 0..200 {
            let at = ll(
                rng.random_range(-0.004..0.014),
                rng.random_range(-0.004..0.014),
            );
            match check(at) {
                true => answered += 1,
                false => left += 1,
            }
        }
        for v in 0..g.vertex_count().min(20) {
            if !check(g.vertex(v).unwrap()) {
                left += 1;
                at_vertices_left += 1;
            }
        }
    });
    // Small sparse maps leave many positions far from every road, or off the grid; the
    // share answered on a city is in the Porto Alegre test.
    assert!(
        answered > 5_000,
        "{answered} answered, {left} left to the tree"
    );
    assert!(at_vertices_left > 0, "corners are left to the tree");
}

/// The landmarks' lower bound (`landmarks.rs`) is never above Dijkstra's time, on maps with
/// one-way loops, same-segment trips and points on vertices; and it is not trivially 0: on
/// most pairs of distinct places it is above it, and often above the straight line at the
/// graph's top speed (the bound the R-trees walk by).
#[test]
fn landmark_bounds_never_exceed_dijkstra_on_small_random_maps() {
    let (mut checked, mut positive, mut above_line) = (0, 0, 0);
    on_random_maps(17, |map, p, g, points| {
        for from in points {
            for to in points {
                let lb = g.time_lower_bound(from, to);
                let Some(r) = g.route_dijkstra(from, to) else {
                    continue;
                };
                assert!(
                    lb <= r.duration_ms,
                    "map {map} {p}: bound {lb} ms > Dijkstra {} ms, {from:?} -> {to:?}",
                    r.duration_ms
                );
                checked += 1;
                positive += usize::from(lb > 0);
                let line_ms =
                    crate::geo::haversine_m(from.point, to.point) / g.max_speed_mps() * 1000.0;
                above_line += usize::from(lb as f64 > line_ms + 2.0);
            }
        }
    });
    assert!(checked > 10_000, "{checked}");
    assert!(positive * 2 > checked, "{positive} of {checked} above 0");
    assert!(
        above_line * 4 > checked,
        "{above_line} of {checked} above the line"
    );
}

#[test]
fn the_network_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<RoadNetwork>();
    shareable::<Snapped>();
    let net = std::sync::Arc::new(square_with_diagonal(&[("highway", "residential")]));
    let expected = time(&net, Profile::Car, 1, 3);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let net = net.clone();
            std::thread::spawn(move || time(&net, Profile::Car, 1, 3))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), expected);
    }
    let g = net.profile(Profile::Car);
    assert!(g.times_to(&[], &g.snap(pos(1)).unwrap()).is_empty());
}

/// The kept search spaces fill up a generation at a time: a space asked for again in the
/// next generation stays (found without searching), one not asked for goes.
#[test]
fn kept_search_spaces_keep_the_ones_in_use_when_full() {
    let cache = SpaceCache::default();
    let quarter = SPACE_GENERATION_PAIRS / 4;
    let searches = std::cell::Cell::new(0);
    let get = |k: u32| {
        cache.get_or(SpaceKey::Vertex(k), || {
            searches.set(searches.get() + 1);
            vec![(k, 0); quarter]
        })
    };
    for k in 0..4 {
        get(k); // 0-3 fill the first generation exactly
    }
    assert_eq!(searches.get(), 4);
    get(4); // starts the second: 0-3 become the previous one
    get(0); // in use: moved to the current generation, not searched again
    assert_eq!(searches.get(), 5);
    for k in 5..8 {
        get(k); // 4, 0, 5, 6 fill the second; 7 starts the third
    }
    assert_eq!(searches.get(), 8);
    get(0); // kept through both turns
    get(4);
    assert_eq!(searches.get(), 8);
    get(1); // not asked for since the first generation: gone, searched again
    assert_eq!(searches.get(), 9);
    assert_eq!(get(1).len(), quarter);
}
