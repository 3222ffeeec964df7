//! Landmark lower bounds (ALT: A*, landmarks, triangle inequality; Goldberg and Harrelson,
//! 2005): the exact times from and to a few far-apart vertices, so that a lower bound on the
//! time between any two vertices is a handful of subtractions.
//!
//! For a landmark `L` and vertices `a`, `b`: `d(L, b) ≤ d(L, a) + d(a, b)` and
//! `d(a, L) ≤ d(a, b) + d(b, L)`, so `d(a, b)` is at least the larger of `d(L, b) − d(L, a)`
//! and `d(a, L) − d(b, L)`, and at least the largest of these over the landmarks. Ranking
//! uses it to skip a candidate whose bound is already past the k-th best score without
//! asking their travel time: the straight line at the graph's top speed (the bound the
//! R-trees walk by) is three to four times below a car's real time in a city, a landmark
//! bound much closer.
//!
//! The landmarks are chosen farthest first (each the vertex farthest, there and back, from
//! vertex 0 and the landmarks already chosen), which puts them round the edge of the map,
//! where the bounds are best. The times are on the graph's own weights: closures only make
//! travel slower (`closure.rs`: a closed segment's pieces at a trip's ends keep their open
//! times, a slowed one's grow), so a bound on the open roads is still a bound under them;
//! the engine asks it only with none laid, when times come from the kept search spaces
//! (under closures they come from repaired sweeps, a lookup per source once swept).

use super::field::ArcLists;
use super::graph::BaseGraph;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Landmarks per graph. Each vertex's row is `2 × LANDMARKS` times of 4 bytes: with 8, one
/// 64-byte cache line per vertex, aligned to it (about 1.9 MB for Porto Alegre's car graph).
pub(crate) const LANDMARKS: usize = 8;

#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Row([u32; 2 * LANDMARKS]);

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Landmarks {
    /// The landmarks' vertices, in the order chosen.
    chosen: Vec<u32>,
    /// By vertex `v`: `d(L_i, v)` in `[i]`, `d(v, L_i)` in `[LANDMARKS + i]` (ms). A graph
    /// with fewer vertices than landmarks repeats the last one.
    rows: Vec<Row>,
}

impl Landmarks {
    /// Chooses the landmarks and computes their times: two Dijkstra searches over the whole
    /// graph per landmark, plus two (from and to vertex 0) to find the first.
    pub(crate) fn build(g: &BaseGraph) -> Landmarks {
        let n = g.vertex_count();
        if n == 0 {
            return Landmarks::default();
        }
        let arcs = ArcLists::build(g);
        let mut rows = vec![Row([0u32; 2 * LANDMARKS]); n];
        let mut chosen = Vec::with_capacity(LANDMARKS);
        let (mut from, mut to) = (Vec::new(), Vec::new());
        // How far, there and back, each vertex is from the nearest landmark chosen so far.
        let mut nearest = {
            dijkstra(&arcs, 0, true, &mut from);
            dijkstra(&arcs, 0, false, &mut to);
            from.iter()
                .zip(&to)
                .map(|(&f, &t)| u64::from(f) + u64::from(t))
                .collect::<Vec<u64>>()
        };
        for i in 0..LANDMARKS {
            // The farthest vertex (ties: the lowest id); past the graph's size, the last again.
            let l = (0..n as u32)
                .max_by_key(|&v| (nearest[v as usize], Reverse(v)))
                .expect("a graph with vertices");
            let l = if nearest[l as usize] == 0 && !chosen.is_empty() {
                *chosen.last().expect("not empty")
            } else {
                l
            };
            chosen.push(l);
            dijkstra(&arcs, l, true, &mut from);
            dijkstra(&arcs, l, false, &mut to);
            for v in 0..n {
                rows[v].0[i] = from[v];
                rows[v].0[LANDMARKS + i] = to[v];
                nearest[v] = nearest[v].min(u64::from(from[v]) + u64::from(to[v]));
            }
        }
        Landmarks { chosen, rows }
    }

    /// A lower bound on the time from vertex `a` to vertex `b` (ms): never more than the
    /// shortest path's.
    #[inline]
    pub(crate) fn lower_bound(&self, a: u32, b: u32) -> u64 {
        let (Some(Row(ra)), Some(Row(rb))) = (self.rows.get(a as usize), self.rows.get(b as usize))
        else {
            return 0;
        };
        let mut best = 0i64;
        for i in 0..LANDMARKS {
            let from = i64::from(rb[i]) - i64::from(ra[i]);
            let to = i64::from(ra[LANDMARKS + i]) - i64::from(rb[LANDMARKS + i]);
            best = best.max(from).max(to);
        }
        best as u64
    }

    /// The landmarks' vertices (tests).
    #[cfg(test)]
    pub(crate) fn chosen(&self) -> &[u32] {
        &self.chosen
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.rows.len() * std::mem::size_of::<Row>() + self.chosen.len() * 4
    }
}

/// Times from `source` to every vertex (`forward`), or from every vertex to `source`, in
/// `dist` (ms; `u32::MAX` where there is no way, which the graph's one strongly connected
/// component rules out).
fn dijkstra(arcs: &ArcLists, source: u32, forward: bool, dist: &mut Vec<u32>) {
    let n = arcs.vertex_count();
    dist.clear();
    dist.resize(n, u32::MAX);
    let mut heap = BinaryHeap::new();
    dist[source as usize] = 0;
    heap.push(Reverse((0u32, source)));
    while let Some(Reverse((d, v))) = heap.pop() {
        if d > dist[v as usize] {
            continue;
        }
        let next = if forward { arcs.outs(v) } else { arcs.ins(v) };
        for &(w, ms, _) in next {
            let nd = d.saturating_add(ms);
            if nd < dist[w as usize] {
                dist[w as usize] = nd;
                heap.push(Reverse((nd, w)));
            }
        }
    }
}
