//! Plain Dijkstra on a profile's segment graph: the obviously-correct oracle that contraction
//! hierarchies are tested and benchmarked against.

use super::graph::BaseGraph;
use super::snap::{Seed, Seeds};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A shortest path between two sets of seeds: the vertex it enters the graph at, the segments
/// it runs along in order, and the seeds it used at both ends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    pub ms: u32,
    pub start: u32,
    pub segments: Vec<u32>,
    pub source: Seed,
    pub target: Seed,
}

/// The shortest path from any source seed to any target seed, or `None` if there is none,
/// with `weight(arc)` the time of each arc ([`super::graph::NO_ARC`]: not travelled).
pub(crate) fn shortest(
    g: &BaseGraph,
    sources: &Seeds,
    targets: &Seeds,
    weight: impl Fn(usize) -> u32,
) -> Option<Found> {
    const INF: u32 = u32::MAX;
    let n = g.vertex_count();
    let mut dist = vec![INF; n];
    let mut pred_seg = vec![u32::MAX; n];
    let mut heap = BinaryHeap::new();
    for s in sources.iter().flatten() {
        if s.ms < dist[s.node as usize] {
            dist[s.node as usize] = s.ms;
            heap.push(Reverse((s.ms, s.node)));
        }
    }
    let mut best = INF;
    let mut best_target = None;
    while let Some(Reverse((d, v))) = heap.pop() {
        if d > dist[v as usize] {
            continue;
        }
        if d >= best {
            break;
        }
        for t in targets.iter().flatten() {
            if t.node == v && d.saturating_add(t.ms) < best {
                best = d.saturating_add(t.ms);
                best_target = Some(*t);
            }
        }
        for arc in g.out_arcs(v) {
            let (w, nd) = (g.out_head[arc], d.saturating_add(weight(arc)));
            if nd < dist[w as usize] {
                dist[w as usize] = nd;
                pred_seg[w as usize] = g.out_seg[arc];
                heap.push(Reverse((nd, w)));
            }
        }
    }
    let target = best_target?;
    let mut segments = Vec::new();
    let mut v = target.node;
    while pred_seg[v as usize] != u32::MAX {
        let seg_id = pred_seg[v as usize];
        let seg = &g.segments[seg_id as usize];
        segments.push(seg_id);
        v = if seg.b == v { seg.a } else { seg.b };
    }
    segments.reverse();
    let source = sources
        .iter()
        .flatten()
        .filter(|s| s.node == v)
        .min_by_key(|s| s.ms)
        .copied()?;
    Some(Found {
        ms: best,
        start: v,
        segments,
        source,
        target,
    })
}
