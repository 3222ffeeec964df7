//! Tests on the real Porto Alegre extract: counts against `../shared/data/README.md`, and
//! exact routing against the Dijkstra oracle.

use super::*;
use std::sync::OnceLock;

/// The Porto Alegre network, built once for every test in this crate.
pub(crate) fn porto_alegre() -> &'static RoadNetwork {
    static NET: OnceLock<RoadNetwork> = OnceLock::new();
    NET.get_or_init(|| {
        let file = std::fs::File::open(crate::testdata::porto_alegre_pbf())
            .expect("../shared/data/porto_alegre.osm.pbf beside the checkout");
        RoadNetwork::from_pbf(std::io::BufReader::new(file), &RoadConfig::default()).unwrap()
    })
}

fn porto_alegre_elements() -> (Vec<OsmNode>, Vec<OsmWay>) {
    let file = std::fs::File::open(crate::testdata::porto_alegre_pbf()).unwrap();
    osm::read_pbf(std::io::BufReader::new(file)).unwrap()
}

fn tag<'a>(w: &'a OsmWay, key: &str) -> Option<&'a str> {
    w.tags
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Our car profile drops `access`/`motor_vehicle`/`motorcar` = `no|private`, so it is the
/// README's "public only" row. Its one-way definition differs from ours on `oneway=-1`
/// (direction only) and on `oneway=no` motorways, and ours adds implied one-way
/// `motorway_link`; the extract has no `-1` and its motorway links are tagged one-way, so the
/// counts must agree exactly.
#[test]
fn car_graph_matches_the_readme_public_only_row() {
    let s = porto_alegre().stats().car;
    // 12,283 car-road ways, 1,054 of them closed to the public.
    assert_eq!(s.ways, 12_283 - 1_054);
    assert_eq!(
        (s.vertices_all, s.segments_all, s.arcs_all, s.vertices),
        (30_499, 35_797, 58_619, 29_820)
    );
    assert_eq!((s.segments_missing_node, s.segments_repeated_node), (0, 0));
    assert_eq!(porto_alegre().stats().nodes, 43_264);
}

/// The README's "all car roads" row, with the README's own definitions: no access filter, and
/// one-way on `oneway=yes|1|true|-1`, `junction=roundabout` or `highway=motorway` (not
/// `motorway_link`, and even on a motorway tagged `oneway=no`). Our configuration can express
/// all of that except "`oneway=no` on a motorway is still one-way", so the test first checks
/// that this extract has no such motorway.
#[test]
fn all_car_roads_match_the_readme_with_its_definitions() {
    let (nodes, ways) = porto_alegre_elements();
    assert!(!ways
        .iter()
        .any(|w| tag(w, "highway") == Some("motorway") && tag(w, "oneway") == Some("no")));
    let mut cfg = RoadConfig::default();
    cfg.car_closed_access.clear();
    cfg.car_implied_oneway = vec!["motorway".into()];
    let all = ImportedRoads::from_elements(&nodes, &ways, &cfg).unwrap();
    let s = all.stats().car;
    assert_eq!(s.ways, 12_283);
    assert_eq!(
        (s.vertices_all, s.segments_all, s.arcs_all, s.vertices),
        (32_701, 38_606, 63_443, 32_066)
    );
    // The README's car-road definition, counted straight from the tags.
    let classes = RoadConfig::default().car_class_kmh;
    let car_ways = ways
        .iter()
        .filter(|w| tag(w, "highway").is_some_and(|h| classes.contains_key(h)))
        .filter(|w| tag(w, "area") != Some("yes"))
        .count();
    assert_eq!(car_ways, 12_283);
}

/// The foot graph has no README row; it must at least contain every public car road that
/// walkers may use, and be symmetric.
#[test]
fn foot_graph_is_two_way_and_larger_than_the_car_graph() {
    let s = porto_alegre().stats().foot;
    assert_eq!(s.arcs_all, 2 * s.segments_all);
    assert!(s.vertices > porto_alegre().stats().car.vertices);
}

/// Random points near random vertices (up to ~300 m off, so most land mid-segment).
fn random_points(
    g: &ProfileGraph,
    rng: &mut rand_chacha::ChaCha8Rng,
    count: usize,
) -> Vec<Snapped> {
    use rand::Rng;
    let mut points = Vec::with_capacity(count);
    while points.len() < count {
        let v = g.vertex(rng.random_range(0..g.vertex_count())).unwrap();
        let p = crate::geo::LatLon {
            lat: v.lat + rng.random_range(-0.003..0.003),
            lon: v.lon + rng.random_range(-0.003..0.003),
        };
        if let Ok(s) = g.snap(p) {
            points.push(s);
        }
    }
    points
}

/// The snapping grid names the R-tree's segment on the real map, both profiles: positions
/// up to ~300 m off random vertices, the vertices themselves, and positions across the whole
/// extract's box (parks, the lake); and it answers most of them itself.
#[test]
fn the_snapping_grid_names_the_r_tree_s_segment_on_porto_alegre() {
    use rand::{Rng, SeedableRng};
    let net = porto_alegre();
    for (p, seed) in [(Profile::Car, 3), (Profile::Foot, 4)] {
        let g = net.profile(p);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (mut answered, mut asked) = (0, 0);
        let (lo, hi) = (
            g.vertex(0).unwrap(),
            g.vertex(g.vertex_count() - 1).unwrap(),
        );
        for i in 0..60_000 {
            let v = g.vertex(rng.random_range(0..g.vertex_count())).unwrap();
            let at = match i % 3 {
                0 => v,
                1 => crate::geo::LatLon {
                    lat: v.lat + rng.random_range(-0.003..0.003),
                    lon: v.lon + rng.random_range(-0.003..0.003),
                },
                _ => crate::geo::LatLon {
                    lat: rng.random_range(lo.lat.min(hi.lat) - 0.05..lo.lat.max(hi.lat) + 0.05),
                    lon: rng.random_range(lo.lon.min(hi.lon) - 0.05..lo.lon.max(hi.lon) + 0.05),
                },
            };
            let (grid, tree) = g.snap.grid_and_tree(at);
            asked += 1;
            if let Some(grid) = grid {
                assert_eq!(Some(grid), tree, "{p}: {at:?}");
                answered += 1;
            }
        }
        // Corners (a third of these positions are vertices) go to the tree; most others not.
        assert!(
            answered * 2 > asked,
            "{p}: the grid answered {answered} of {asked}"
        );
    }
}

#[test]
fn ch_routes_equal_dijkstra_on_porto_alegre() {
    use rand::SeedableRng;
    let net = porto_alegre();
    for (p, seed) in [(Profile::Car, 1), (Profile::Foot, 2)] {
        let g = net.profile(p);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let points = random_points(g, &mut rng, 600);
        for pair in points.chunks(2) {
            let (from, to) = (&pair[0], &pair[1]);
            let fast = g.route(from, to).expect("one SCC: every pair has a route");
            let slow = g.route_dijkstra(from, to).unwrap();
            assert_eq!(
                fast.duration_ms, slow.duration_ms,
                "{p}: {from:?} -> {to:?}"
            );
            assert_eq!(g.time(from, to), Some(slow.duration_ms), "{p}: time alone");
            assert_eq!(g.time(from, to), Some(slow.duration_ms), "{p}: time kept");
            assert_eq!(fast.path.first(), Some(&from.point));
            assert_eq!(fast.path.last(), Some(&to.point));
            // Equal times may take different streets, but not wildly different lengths.
            assert!((fast.distance_m - slow.distance_m).abs() < 0.2 * slow.distance_m + 50.0);
            let fs = snap::source_seeds(g.segment(from), from.frac);
            let ts = snap::target_seeds(g.segment(to), to.frac);
            let found = g.ch.shortest(&fs, &ts).unwrap();
            super::tests::assert_walk_adds_up(g, from, to, &found);
        }
    }
}

#[test]
fn times_to_equals_dijkstra_on_porto_alegre() {
    use rand::SeedableRng;
    let net = porto_alegre();
    for (p, seed) in [(Profile::Car, 3), (Profile::Foot, 4)] {
        let g = net.profile(p);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..4 {
            let target = random_points(g, &mut rng, 1)[0];
            let sources = random_points(g, &mut rng, 50);
            assert!(!g.has_sweep_to(&target), "a fresh target is not kept yet");
            let fast = g.times_to(&sources, &target);
            assert!(fast.iter().all(Option::is_some));
            assert_eq!(fast, g.times_to_dijkstra(&sources, &target), "{p}");
            // Asked again, the kept sweep answers: the same times, also for new sources.
            assert!(g.has_sweep_to(&target));
            assert_eq!(g.times_to(&sources, &target), fast, "{p}: kept sweep");
            let more = random_points(g, &mut rng, 20);
            assert_eq!(
                g.times_to(&more, &target),
                g.times_to_dijkstra(&more, &target),
                "{p}: kept sweep, new sources"
            );
        }
    }
}

/// The kept sweeps are bounded: the least recently used target is dropped first (its own
/// cache, so tests running beside it on the shared network cannot disturb it).
#[test]
fn kept_sweeps_evict_the_least_recently_used_target() {
    let cache = super::TargetCache::default();
    let n = super::TARGET_CACHE_ENTRIES as u32;
    for i in 0..n {
        cache.put((i, 0, 0), std::sync::Arc::new(vec![i]));
    }
    assert!(cache.get((0, 0, 0)).is_some(), "0 is now the most recent");
    cache.put((n, 0, 0), std::sync::Arc::new(vec![n]));
    assert!(
        cache.get((1, 0, 0)).is_none(),
        "1 was the least recently used"
    );
    assert_eq!(cache.get((0, 0, 0)).as_deref(), Some(&vec![0]));
    assert_eq!(cache.get((n, 0, 0)).as_deref(), Some(&vec![n]));
}

/// An oracle that shares no code with ours: petgraph's Dijkstra on the same arcs, between
/// vertices (a position exactly on a vertex snaps onto it at no cost).
#[test]
fn ch_equals_petgraph_dijkstra_between_vertices() {
    use petgraph::graph::{DiGraph, NodeIndex};
    use rand::{Rng, SeedableRng};
    let net = porto_alegre();
    for (p, seed) in [(Profile::Car, 5), (Profile::Foot, 6)] {
        let g = net.profile(p);
        let mut pg: DiGraph<(), u32> = DiGraph::new();
        for _ in 0..g.vertex_count() {
            pg.add_node(());
        }
        for (a, b, ms) in g.arcs() {
            pg.add_edge(NodeIndex::new(a), NodeIndex::new(b), ms);
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..5 {
            let s = rng.random_range(0..g.vertex_count());
            let all =
                petgraph::algo::dijkstra(&pg, NodeIndex::new(s), None, |e| u64::from(*e.weight()));
            let from = g.snap(g.vertex(s).unwrap()).unwrap();
            let targets: Vec<usize> = (0..40)
                .map(|_| rng.random_range(0..g.vertex_count()))
                .collect();
            for &t in &targets {
                let to = g.snap(g.vertex(t).unwrap()).unwrap();
                let ch = g.route(&from, &to).unwrap().duration_ms;
                assert_eq!(ch, all[&NodeIndex::new(t)], "{p}: vertex {s} -> {t}");
            }
            // Many-to-one, reversed: every target as the incident, s as the only responder.
            let t = targets[0];
            let to = g.snap(g.vertex(t).unwrap()).unwrap();
            assert_eq!(
                g.times_to(&[from], &to)[0].map(u64::from),
                Some(all[&NodeIndex::new(t)])
            );
        }
    }
}

/// The engine prunes candidates with "straight line / max_speed_mps": that bound must never
/// exceed a routed time (up to the rounding of the two partial segments at the ends).
#[test]
fn max_speed_gives_an_admissible_lower_bound() {
    use rand::SeedableRng;
    let net = porto_alegre();
    for (p, seed) in [(Profile::Car, 7), (Profile::Foot, 8)] {
        let g = net.profile(p);
        assert!(g.max_speed_mps() > 0.0);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let points = random_points(g, &mut rng, 400);
        for pair in points.chunks(2) {
            let r = g.route(&pair[0], &pair[1]).unwrap();
            let straight_m = crate::geo::haversine_m(pair[0].point, pair[1].point);
            let bound_ms = straight_m / g.max_speed_mps() * 1000.0;
            assert!(
                bound_ms <= r.duration_ms as f64 * 1.001 + 2.0,
                "{p}: bound {bound_ms} ms > route {} ms",
                r.duration_ms
            );
        }
    }
    // Sanity: the car graph's fastest arc is about the fastest road (80 km/h maxspeed here),
    // and walking is 4.5 km/h.
    let car_kmh = net.profile(Profile::Car).max_speed_mps() * 3.6;
    assert!((80.0..100.0).contains(&car_kmh), "{car_kmh}");
    let foot_kmh = net.profile(Profile::Foot).max_speed_mps() * 3.6;
    assert!((4.5..5.0).contains(&foot_kmh), "{foot_kmh}");
}

/// The landmarks' lower bound on Porto Alegre: never above Dijkstra's time, and much closer
/// to it than the straight line at the top speed, by car above all (the top speed is the
/// fastest road's; a city trip is mostly slower streets). Ranking skips candidates by it.
#[test]
fn landmark_bounds_are_admissible_and_closer_than_the_straight_line() {
    use rand::SeedableRng;
    let net = porto_alegre();
    for (p, seed, closer) in [(Profile::Car, 27, 1.5), (Profile::Foot, 28, 1.05)] {
        let g = net.profile(p);
        let mut chosen = g.landmarks.chosen().to_vec();
        chosen.sort_unstable();
        chosen.dedup();
        assert_eq!(
            chosen.len(),
            landmarks::LANDMARKS,
            "{p}: distinct landmarks"
        );
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let points = random_points(g, &mut rng, 400);
        let (mut sum_lb, mut sum_line, mut sum_time) = (0.0, 0.0, 0.0);
        for pair in points.chunks(2) {
            let (from, to) = (&pair[0], &pair[1]);
            let time = g.route_dijkstra(from, to).unwrap().duration_ms;
            let lb = g.time_lower_bound(from, to);
            assert!(lb <= time, "{p}: bound {lb} ms > Dijkstra {time} ms");
            sum_lb += lb as f64;
            sum_line += crate::geo::haversine_m(from.point, to.point) / g.max_speed_mps() * 1000.0;
            sum_time += time as f64;
        }
        eprintln!(
            "{p}: landmarks {:.2} of the time, straight line {:.2}",
            sum_lb / sum_time,
            sum_line / sum_time
        );
        assert!(
            sum_lb > closer * sum_line,
            "{p}: landmarks {sum_lb} ms in all, straight line {sum_line} ms"
        );
    }
}

/// A ranking asks one incident's time from many responders, and one responder's time to many
/// incidents: both ends' upward search spaces are kept and met again (`ProfileGraph::time`).
/// Every time read that way (one source at a time, or all of them at once) equals the
/// many-to-one sweep's and, on a sample, Dijkstra's.
#[test]
fn kept_search_spaces_give_the_sweeps_times_many_to_many() {
    use rand::SeedableRng;
    let net = porto_alegre();
    for (p, seed) in [(Profile::Car, 7), (Profile::Foot, 8)] {
        let g = net.profile(p);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let sources = random_points(g, &mut rng, 80);
        let targets = random_points(g, &mut rng, 25);
        let mut met = 0;
        for (k, t) in targets.iter().enumerate() {
            let swept = g.times_to(&sources, t);
            // All sources at once (the target's space looked up once) as one by one.
            assert_eq!(g.times(&sources, t), swept, "{p}: target {k}, all at once");
            for (i, s) in sources.iter().enumerate() {
                let kept = g.time(s, t);
                assert_eq!(
                    kept,
                    swept[i].map(u64::from),
                    "{p}: source {i} -> target {k}"
                );
                if (i + k) % 20 == 0 {
                    let slow = g.route_dijkstra(s, t).map(|r| r.duration_ms);
                    assert_eq!(kept, slow, "{p}: source {i} -> target {k}, Dijkstra");
                    met += 1;
                }
            }
        }
        assert!(met >= 100, "{met}");
    }
}

/// A phone's reported position wanders with every ping. Once a source inside a segment has
/// been ranked (`time`), its segment's vertices' spaces are kept, so a move along the
/// segment is answered from them (nothing searched again) and its times are still exact.
/// (A source snapped onto a vertex leaves by that vertex alone, so only sources inside a
/// segment are checked.)
#[test]
fn a_source_moving_along_its_segment_keeps_its_vertices_spaces() {
    use rand::{Rng, SeedableRng};
    let net = porto_alegre();
    for (p, seed) in [(Profile::Car, 17), (Profile::Foot, 18)] {
        let g = net.profile(p);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let sources = random_points(g, &mut rng, 40);
        let targets = random_points(g, &mut rng, 5);
        let inside: Vec<&Snapped> = sources
            .iter()
            .filter(|s| s.frac > 0.0 && s.frac < 1.0)
            .collect();
        assert!(inside.len() >= 20, "{p}: {}", inside.len());
        for (i, s) in inside.into_iter().enumerate() {
            for t in &targets {
                g.time(s, t);
            }
            let moved = Snapped {
                frac: rng.random_range(0.01..0.99),
                ..*s
            };
            // What ranking `s` kept is what `moved` needs: its seeds' vertices' spaces.
            for seed in snap::source_seeds(g.segment(&moved), moved.frac)
                .iter()
                .flatten()
            {
                assert!(
                    g.keeps_vertex_space(seed.node),
                    "{p}: source {i}: vertex {} not kept",
                    seed.node
                );
            }
            for (k, t) in targets.iter().enumerate() {
                let kept = g.time(&moved, t);
                let slow = g.route_dijkstra(&moved, t).map(|r| r.duration_ms);
                assert_eq!(kept, slow, "{p}: source {i} moved -> target {k}");
            }
        }
    }
}
