//! The road network as drawable polylines: what a map on a screen needs, and nothing a router
//! needs. Built from the kept (largest-SCC) segments of both profiles, chained into lines at
//! vertices where exactly two segments of the same class meet, so a browser draws a few
//! thousand lines instead of tens of thousands of segments.

use super::graph::BaseGraph;
use crate::geo::LatLon;
use std::collections::{HashMap, HashSet};

/// How a line is drawn: a closed set, so a client can style every class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LineClass {
    /// A car road whose speed is at least [`MAIN_ROAD_KMH`].
    MainRoad = 0,
    /// Any other car road.
    Road = 1,
    /// Open on foot only (footways, paths, steps, pedestrian streets…).
    FootOnly = 2,
}

/// Car roads at or above this speed are drawn as main roads.
pub const MAIN_ROAD_KMH: f64 = 50.0;

/// One drawable polyline.
#[derive(Debug, Clone, PartialEq)]
pub struct RoadLine {
    pub class: LineClass,
    pub points: Vec<LatLon>,
}

/// Every kept road of both profiles as polylines, each segment in exactly one line.
pub(crate) fn outline(car: &BaseGraph, foot: &BaseGraph) -> Vec<RoadLine> {
    let mut edges: Vec<(LineClass, i64, i64)> = Vec::new();
    let mut coords: HashMap<i64, LatLon> = HashMap::new();
    let mut car_keys: HashSet<(i64, i64)> = HashSet::new();
    for s in &car.segments {
        let (a, b) = (car.osm_ids[s.a as usize], car.osm_ids[s.b as usize]);
        coords.insert(a, car.coords[s.a as usize]);
        coords.insert(b, car.coords[s.b as usize]);
        car_keys.insert((a.min(b), a.max(b)));
        // The faster direction decides: a one-way street has one direction only.
        let ms = match (s.fwd_ms, s.bwd_ms) {
            (0, 0) => continue,
            (0, m) | (m, 0) => m,
            (f, b) => f.min(b),
        };
        let kmh = s.len_m / (f64::from(ms) / 1000.0) * 3.6;
        let class = if kmh + 1e-6 >= MAIN_ROAD_KMH {
            LineClass::MainRoad
        } else {
            LineClass::Road
        };
        edges.push((class, a, b));
    }
    for s in &foot.segments {
        let (a, b) = (foot.osm_ids[s.a as usize], foot.osm_ids[s.b as usize]);
        if car_keys.contains(&(a.min(b), a.max(b))) {
            continue;
        }
        coords.insert(a, foot.coords[s.a as usize]);
        coords.insert(b, foot.coords[s.b as usize]);
        edges.push((LineClass::FootOnly, a, b));
    }
    let mut lines = Vec::new();
    for class in [LineClass::MainRoad, LineClass::Road, LineClass::FootOnly] {
        let class_edges: Vec<(i64, i64)> = edges
            .iter()
            .filter(|e| e.0 == class)
            .map(|e| (e.1, e.2))
            .collect();
        for chain in chains(&class_edges) {
            lines.push(RoadLine {
                class,
                points: chain.iter().map(|id| coords[id]).collect(),
            });
        }
    }
    lines
}

/// Chains undirected edges into vertex sequences, breaking at every vertex whose degree is not
/// two; cycles with no such vertex become one closed chain. Deterministic: vertices and edges
/// are visited in sorted order.
fn chains(edges: &[(i64, i64)]) -> Vec<Vec<i64>> {
    let mut adj: HashMap<i64, Vec<(i64, usize)>> = HashMap::new();
    for (i, &(a, b)) in edges.iter().enumerate() {
        adj.entry(a).or_default().push((b, i));
        adj.entry(b).or_default().push((a, i));
    }
    let mut used = vec![false; edges.len()];
    let mut out = Vec::new();
    let mut starts: Vec<i64> = adj.keys().copied().collect();
    starts.sort_unstable();
    let walk = |start: i64, first: (i64, usize), used: &mut Vec<bool>| {
        let mut chain = vec![start];
        let (mut at, mut edge) = first;
        loop {
            used[edge] = true;
            chain.push(at);
            let next = match adj[&at].as_slice() {
                [x, y] if adj[&at].len() == 2 => {
                    if x.1 == edge {
                        *y
                    } else {
                        *x
                    }
                }
                _ => break,
            };
            if used[next.1] {
                break;
            }
            (at, edge) = next;
        }
        chain
    };
    // Open chains first: from every vertex that is not a pass-through.
    for &v in &starts {
        if adj[&v].len() == 2 {
            continue;
        }
        for &e in &adj[&v] {
            if !used[e.1] {
                out.push(walk(v, e, &mut used));
            }
        }
    }
    // What is left are cycles of pass-through vertices.
    for &v in &starts {
        for &e in &adj[&v] {
            if !used[e.1] {
                out.push(walk(v, e, &mut used));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every edge lands in exactly one chain, as consecutive vertices.
    fn check_cover(edges: &[(i64, i64)]) {
        let chains = chains(edges);
        let mut seen: Vec<(i64, i64)> = chains
            .iter()
            .flat_map(|c| c.windows(2).map(|w| (w[0].min(w[1]), w[0].max(w[1]))))
            .collect();
        let mut want: Vec<(i64, i64)> = edges.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect();
        seen.sort_unstable();
        want.sort_unstable();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_path_with_a_branch_becomes_three_chains() {
        // 1-2-3-4 with a branch 3-5: vertex 3 has degree 3, so the lines break there.
        let edges = [(1, 2), (2, 3), (3, 4), (3, 5)];
        check_cover(&edges);
        let c = chains(&edges);
        assert_eq!(c.len(), 3, "{c:?}");
        assert!(
            c.contains(&vec![1, 2, 3]) || c.contains(&vec![3, 2, 1]),
            "{c:?}"
        );
    }

    #[test]
    fn a_ring_is_one_closed_chain() {
        let edges = [(1, 2), (2, 3), (3, 4), (4, 1)];
        check_cover(&edges);
        let c = chains(&edges);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].first(), c[0].last());
    }

    #[test]
    fn random_graphs_are_covered_exactly_once() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let n = rng.random_range(2..12);
            let mut edges = Vec::new();
            let mut keys = HashSet::new();
            for _ in 0..rng.random_range(1..20) {
                let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
                if a != b && keys.insert((a.min(b), a.max(b))) {
                    edges.push((a, b));
                }
            }
            check_cover(&edges);
        }
    }
}
