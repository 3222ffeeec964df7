//! The live travel-time field against a field built from scratch and against Dijkstra, on
//! many small random maps under random sequences of sources arriving, moving and leaving.

use super::field::Reach;
use super::tests::{ll, random_map};
use super::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const UNIT: u64 = 1024;

fn best(
    g: &ProfileGraph,
    f: &SourceField,
    offsets: &HashMap<u32, f64>,
    t: &Snapped,
) -> Option<u64> {
    let mut out: Vec<Reach> = Vec::new();
    f.reach(g, t, &mut out);
    out.iter()
        .map(|r| u64::from(r.ms) * UNIT + (offsets[&r.source] * UNIT as f64).round() as u64)
        .min()
}

/// After every change: each vertex's label equals the label of a field built from scratch
/// from the same sources (in another order), and the best way to each probe point equals
/// the best of plain Dijkstra from every source, whenever that is within the horizon; on
/// half the maps with random road closures laid (Dijkstra on the changed weights).
#[test]
fn field_equals_a_rebuilt_field_and_dijkstra_on_small_random_maps() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut checked = 0;
    for map in 0..150 {
        let Some(net) = random_map(&mut rng) else {
            continue;
        };
        for p in Profile::ALL {
            let g = net.profile(p);
            if g.vertex_count() == 0 {
                continue;
            }
            let horizon = if rng.random_bool(0.5) {
                f64::MAX / 4096.0
            } else {
                rng.random_range(20_000.0..400_000.0)
            };
            // Half the maps with road closures laid: the field on the changed weights.
            let overlay = if rng.random_bool(0.5) && g.vertex_count() > 1 {
                super::closure_tests::random_overlay(&mut rng, g.base.segments.len())
            } else {
                ProfileOverlay::none()
            };
            let mut field = SourceField::with_overlay(g, horizon, overlay.clone());
            let mut here: HashMap<u32, (Snapped, f64)> = HashMap::new();
            // On a vertex half the time, so that sources tie.
            let point = |rng: &mut rand_chacha::ChaCha8Rng| {
                let at = if rng.random_bool(0.5) {
                    g.vertex(rng.random_range(0..g.vertex_count()))?
                } else {
                    ll(rng.random_range(0.0..0.01), rng.random_range(0.0..0.01))
                };
                g.snap(at).ok()
            };
            let probes: Vec<Snapped> = (0..6).filter_map(|_| point(&mut rng)).collect();
            for step in 0..25 {
                let id = rng.random_range(0..8u32);
                let mut changed = Vec::new();
                if rng.random_bool(0.3) {
                    assert_eq!(
                        field.remove(g, id, &mut changed),
                        here.remove(&id).is_some()
                    );
                } else if let Some(at) = point(&mut rng) {
                    // Whole ms sometimes, so that ties between sources occur.
                    let offset = if rng.random_bool(0.5) {
                        f64::from(rng.random_range(0..3u32) * 1000)
                    } else {
                        rng.random_range(0.0..20_000.0)
                    };
                    field.insert(g, id, at, offset, &mut changed);
                    here.insert(id, (at, offset));
                }
                assert_eq!(field.len(), here.len());
                let mut order: Vec<u32> = here.keys().copied().collect();
                order.shuffle(&mut rng);
                let mut fresh = SourceField::with_overlay(g, horizon, overlay.clone());
                for id in order {
                    let (at, offset) = here[&id];
                    fresh.insert(g, id, at, offset, &mut Vec::new());
                }
                for v in 0..g.vertex_count() as u32 {
                    assert_eq!(
                        field.label(v),
                        fresh.label(v),
                        "map {map} {p} step {step}: vertex {v}"
                    );
                }
                let offsets: HashMap<u32, f64> = here.iter().map(|(k, (_, o))| (*k, *o)).collect();
                let cap = (horizon * UNIT as f64).ceil() as u64;
                for t in &probes {
                    let oracle = here
                        .iter()
                        .filter_map(|(_, (s, o))| {
                            let r = g.route_dijkstra_with(s, t, &overlay)?;
                            Some(r.duration_ms * UNIT + (o * UNIT as f64).round() as u64)
                        })
                        .min();
                    let got = best(g, &field, &offsets, t);
                    match oracle {
                        Some(o) if o <= cap => {
                            assert_eq!(got, Some(o), "map {map} {p} step {step}")
                        }
                        Some(o) => assert!(got.is_none_or(|x| x >= o)),
                        None => assert_eq!(got, None),
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 5_000, "{checked}");
}

/// A changed vertex is reported as changed: every vertex whose label differs before and after
/// a change is in `changed` (coverage re-reads only the elders at those vertices).
#[test]
fn every_changed_label_is_reported() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let mut checked = 0;
    for _ in 0..100 {
        let Some(net) = random_map(&mut rng) else {
            continue;
        };
        let g = net.profile(Profile::Foot);
        let mut field = SourceField::new(g, rng.random_range(20_000.0..400_000.0));
        for _ in 0..20 {
            let before: Vec<_> = (0..g.vertex_count() as u32)
                .map(|v| field.label(v))
                .collect();
            let id = rng.random_range(0..5u32);
            let mut changed = Vec::new();
            if rng.random_bool(0.3) {
                field.remove(g, id, &mut changed);
            } else if let Ok(at) =
                g.snap(ll(rng.random_range(0.0..0.01), rng.random_range(0.0..0.01)))
            {
                field.insert(g, id, at, rng.random_range(0.0..5_000.0), &mut changed);
            }
            for v in 0..g.vertex_count() as u32 {
                if field.label(v) != before[v as usize] {
                    assert!(changed.contains(&v), "vertex {v} changed unreported");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 500, "{checked}");
}

fn some_map() -> RoadNetwork {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    (0..50)
        .find_map(|_| random_map(&mut rng).filter(|n| n.profile(Profile::Car).vertex_count() > 1))
        .expect("a random map with roads")
}

/// Ids index the field's table of sources: one far beyond any group's size is refused with
/// a clear message rather than a table of billions.
#[test]
#[should_panic(expected = "ids index a table")]
fn source_ids_beyond_the_table_bound_are_refused() {
    let net = some_map();
    let g = net.profile(Profile::Foot);
    let at = g.snap(g.vertex(0).expect("a vertex")).expect("on the map");
    SourceField::new(g, 60_000.0).insert(g, MAX_SOURCE_ID + 1, at, 0.0, &mut Vec::new());
}

/// A target placed on one profile's graph read on the other's field is a caller's bug:
/// caught, not read as times on the wrong graph.
#[test]
#[should_panic(expected = "another graph or under another overlay")]
fn a_target_placed_on_the_other_graph_is_refused() {
    let net = some_map();
    let (foot, car) = (net.profile(Profile::Foot), net.profile(Profile::Car));
    let home = car.vertex(0).expect("a vertex");
    let target = FieldTarget::new(foot, &ProfileOverlay::none(), &foot.snap(home).unwrap())
        .expect("placed on foot");
    let mut field = SourceField::new(car, 60_000.0);
    field.insert(car, 0, car.snap(home).unwrap(), 0.0, &mut Vec::new());
    field.reach_placed(car, &target, &mut Vec::new());
}
