//! A live travel-time field: for every vertex of one profile's graph, the shortest time from
//! the nearest of a changing set of sources (responders of one travel mode and speed), and
//! which source that is, up to a horizon. Coverage keeps one per group of responders and reads
//! an elder's best ETA from it in a few lookups.
//!
//! Sources come and go one at a time and only the part of the graph that changes is touched:
//! - adding a source runs Dijkstra from it only where it is strictly nearer than the current
//!   owner (its cell of the road Voronoi diagram, within the horizon);
//! - removing one clears its cell and fills it again from the cell's border and from any
//!   other source seeded inside it;
//! - moving one clears its old cell and fills it again in the same run that spreads the
//!   source from its new place.
//!
//! The labels are `(key, owner)` ordered lexicographically, with the key in 1/1024 ms so that
//! a source's off-road time (a fraction of a ms) takes part in the order in exact integer
//! arithmetic. With that order each vertex's label is the minimum over all sources whatever
//! the order of changes, so an owner's cell is connected along its shortest-path tree (what
//! removal relies on) and the incremental field equals the one built from scratch (the
//! property tests compare them).

use super::closure::ProfileOverlay;
use super::graph::{BaseGraph, NO_ARC};
use super::snap::{self, Snapped};
use super::{Profile, ProfileGraph};
use crate::ids::FastMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The largest source id (ids index a table of sources).
pub const MAX_SOURCE_ID: u32 = (1 << 24) - 1;

/// Key units per ms.
const UNIT: u64 = 1024;
const NONE: u32 = u32::MAX;
/// The label of a vertex no source reaches within the horizon.
const EMPTY: (u64, u32) = (u64::MAX, NONE);

/// One way a source reaches a target: which source, the on-graph time in whole ms from
/// its snapped point to the target's, as [`ProfileGraph::route`] would find it (off-road
/// time not included), and how far the source stands from the road.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reach {
    pub source: u32,
    pub ms: u32,
    /// The source's off-road distance (its [`Snapped::moved_m`]).
    pub moved_m: f64,
}

/// A target placed once for many reads ([`SourceField::reach_placed`]): the vertices it is
/// reached from with the time of the last piece, on the weights of one road overlay. Coverage
/// keeps one per elder and profile, so that reading an elder again (on every change near
/// them) does not look their segment up in the graph and the overlay each time.
#[derive(Debug, Clone, Copy)]
pub struct FieldTarget {
    /// `(vertex, ms)`; the vertex is `NONE` where there is no way in from that end.
    from: [(u32, u32); 2],
    segment: u32,
    frac: f64,
    /// The target's off-road distance (its [`Snapped::moved_m`]).
    pub moved_m: f64,
    /// The graph and the overlay it was placed on (reading it on another field's is a
    /// caller's bug, caught).
    profile: Profile,
    overlay: u64,
}

impl FieldTarget {
    /// `target` as the fields on `g` under `overlay` read it; `None` if it is not a place on
    /// `g`.
    pub fn new(g: &ProfileGraph, overlay: &ProfileOverlay, target: &Snapped) -> Option<Self> {
        if !g.owns(target) {
            return None;
        }
        let ends = overlay.partial(target.segment, g.segment(target));
        let mut from = [(NONE, 0); 2];
        for (slot, t) in from.iter_mut().zip(snap::target_seeds(&ends, target.frac)) {
            if let Some(t) = t {
                *slot = (t.node, t.ms);
            }
        }
        Some(FieldTarget {
            from,
            segment: target.segment,
            frac: target.frac,
            moved_m: target.moved_m,
            profile: target.profile,
            overlay: overlay.id(),
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Source {
    snapped: Snapped,
    offset: u64,
}

/// Every vertex's outgoing and incoming arcs as `(other end, ms, segment)` triples, each list
/// one slice (the graph keeps heads, times and segments in three arrays; a field's pass
/// over a cell reads all three of each arc, so one array is one cache miss, not three).
#[derive(Debug, Clone)]
pub(crate) struct ArcLists {
    out_first: Vec<u32>,
    out_arcs: Vec<(u32, u32, u32)>,
    in_first: Vec<u32>,
    in_arcs: Vec<(u32, u32, u32)>,
}

impl ArcLists {
    pub(crate) fn build(g: &BaseGraph) -> ArcLists {
        let n = g.vertex_count();
        // The graph's out-arcs in its own order, so its index of them serves as is.
        let out_first = g.out_first.clone();
        let out_arcs = (g.out_head.iter().zip(&g.out_ms).zip(&g.out_seg))
            .map(|((&h, &ms), &seg)| (h, ms, seg))
            .collect();
        let mut count = vec![0u32; n + 1];
        for &h in &g.out_head {
            count[h as usize + 1] += 1;
        }
        for i in 0..n {
            count[i + 1] += count[i];
        }
        let in_first = count.clone();
        let mut in_arcs = vec![(0, 0, 0); g.out_head.len()];
        let mut next = count;
        for v in 0..n as u32 {
            for a in g.out_arcs(v) {
                let h = g.out_head[a] as usize;
                in_arcs[next[h] as usize] = (v, g.out_ms[a], g.out_seg[a]);
                next[h] += 1;
            }
        }
        ArcLists {
            out_first,
            out_arcs,
            in_first,
            in_arcs,
        }
    }

    /// The outgoing arcs of `v` as `(head, ms, segment)`.
    pub(crate) fn outs(&self, v: u32) -> &[(u32, u32, u32)] {
        let r = self.out_first[v as usize] as usize..self.out_first[v as usize + 1] as usize;
        &self.out_arcs[r]
    }

    /// The incoming arcs of `v` as `(tail, ms, segment)`.
    pub(crate) fn ins(&self, v: u32) -> &[(u32, u32, u32)] {
        let r = self.in_first[v as usize] as usize..self.in_first[v as usize + 1] as usize;
        &self.in_arcs[r]
    }

    pub(crate) fn vertex_count(&self) -> usize {
        self.out_first.len().saturating_sub(1)
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        (self.out_first.len() + self.in_first.len()) * 4
            + (self.out_arcs.len() + self.in_arcs.len()) * 12
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct SourceField {
    cap: u64,
    /// By vertex: `(key, owner)`, `EMPTY` beyond the horizon; one array, so that reading a
    /// vertex's label is one cache line, not two.
    labels: Vec<(u64, u32)>,
    /// By id: ids index this table, so keep them small and dense (coverage numbers each
    /// group's sources from 0 and reuses the numbers of those who left).
    sources: Vec<Option<Source>>,
    held: usize,
    /// Sources by the vertices they are seeded at (refilling a cell seeds them again).
    at_vertex: FastMap<u32, Vec<u32>>,
    /// Sources by the segment they stand on (a target on the same segment may be reached
    /// along it without touching a vertex).
    on_segment: FastMap<u32, Vec<u32>>,
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
    /// The road closures its times honour (fixed for the field's life: a new overlay is a
    /// new field).
    overlay: ProfileOverlay,
}

impl SourceField {
    /// An empty field on `g` keeping times up to `horizon_ms` (a source's off-road offset
    /// included); vertices further from every source hold nothing.
    pub fn new(g: &ProfileGraph, horizon_ms: f64) -> SourceField {
        SourceField::with_overlay(g, horizon_ms, ProfileOverlay::none())
    }

    /// [`Self::new`] on the weights as `overlay` changes them (road closures): the times
    /// [`ProfileGraph::route_with`] gives.
    pub fn with_overlay(g: &ProfileGraph, horizon_ms: f64, overlay: ProfileOverlay) -> SourceField {
        let n = g.base.vertex_count();
        SourceField {
            cap: (horizon_ms.max(0.0) * UNIT as f64).ceil() as u64,
            labels: vec![EMPTY; n],
            sources: Vec::new(),
            held: 0,
            at_vertex: FastMap::default(),
            on_segment: FastMap::default(),
            heap: BinaryHeap::new(),
            overlay,
        }
    }

    /// How many sources the field holds.
    pub fn len(&self) -> usize {
        self.held
    }

    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Adds source `id` standing at `at`, starting `offset_ms` late (its off-road time), and
    /// pushes every vertex whose label changed onto `changed`. A source already there is
    /// moved: its old cell is cleared and filled again in the same run that spreads it from
    /// its new place, so a move of a few metres costs about one pass over its cell, not a
    /// removal's refill followed by an insertion taking the same vertices back.
    ///
    /// Ids index the field's table of sources: keep them small and dense (at most
    /// [`MAX_SOURCE_ID`]; coverage numbers each group's sources from 0).
    pub fn insert(
        &mut self,
        g: &ProfileGraph,
        id: u32,
        at: Snapped,
        offset_ms: f64,
        changed: &mut Vec<u32>,
    ) {
        assert!(
            id <= MAX_SOURCE_ID,
            "source id {id} over {MAX_SOURCE_ID}: ids index a table"
        );
        // A point snapped on another graph is not a place on this one: nothing changes, not
        // even a held source's old place (callers snap on the field's own graph).
        if !g.owns(&at) {
            return;
        }
        let cell = self.take(g, id);
        let offset = (offset_ms.max(0.0) * UNIT as f64).round() as u64;
        if self.sources.len() <= id as usize {
            self.sources.resize(id as usize + 1, None);
        }
        self.sources[id as usize] = Some(Source {
            snapped: at,
            offset,
        });
        self.held += 1;
        self.on_segment.entry(at.segment).or_default().push(id);
        for seed in self.seeds(g, &at).iter().flatten() {
            self.at_vertex.entry(seed.node).or_default().push(id);
            self.offer(seed.node, offset + u64::from(seed.ms) * UNIT, id);
        }
        if let Some(cell) = cell {
            changed.extend_from_slice(&cell);
            self.refill(g, &cell);
        }
        self.run(g.arc_lists(), changed);
    }

    /// Removes source `id` (false if it is not there), pushing every vertex whose label
    /// changed onto `changed`.
    pub fn remove(&mut self, g: &ProfileGraph, id: u32, changed: &mut Vec<u32>) -> bool {
        let Some(cell) = self.take(g, id) else {
            return false;
        };
        changed.extend_from_slice(&cell);
        self.refill(g, &cell);
        self.run(g.arc_lists(), changed);
        true
    }

    /// Takes source `id` out and clears its cell: every vertex it owns, reached from its
    /// seeds along its own vertices (a cell is connected along its shortest-path tree).
    /// Returns the cleared vertices, `None` if the source is not there.
    fn take(&mut self, g: &ProfileGraph, id: u32) -> Option<Vec<u32>> {
        let src = self.sources.get_mut(id as usize)?.take()?;
        self.held -= 1;
        let seeds = self.seeds(g, &src.snapped);
        detach(&mut self.on_segment, src.snapped.segment, id);
        for seed in seeds.iter().flatten() {
            detach(&mut self.at_vertex, seed.node, id);
        }
        let arcs = g.arc_lists();
        let mut cell = Vec::new();
        for seed in seeds.iter().flatten() {
            if self.labels[seed.node as usize].1 == id {
                self.clear(seed.node, &mut cell);
            }
        }
        let mut i = 0;
        while i < cell.len() {
            let v = cell[i];
            for &(w, _, _) in arcs.outs(v) {
                if self.labels[w as usize].1 == id {
                    self.clear(w, &mut cell);
                }
            }
            i += 1;
        }
        Some(cell)
    }

    /// Offers a cleared cell's vertices what reaches them: the labels across its border,
    /// and the sources seeded inside it. [`Self::run`] then spreads them.
    fn refill(&mut self, g: &ProfileGraph, cell: &[u32]) {
        let arcs = g.arc_lists();
        for &v in cell {
            for &(u, ms, s) in arcs.ins(v) {
                let ms = self.overlay.through(s, ms);
                let (key, owner) = self.labels[u as usize];
                if owner != NONE && ms != NO_ARC {
                    self.offer(v, key + u64::from(ms) * UNIT, owner);
                }
            }
            let inside: Vec<(u64, u32)> = self
                .at_vertex
                .get(&v)
                .into_iter()
                .flatten()
                .flat_map(|&s| {
                    let other = self.source(s);
                    self.seeds(g, &other.snapped)
                        .into_iter()
                        .flatten()
                        .filter(move |x| x.node == v)
                        .map(move |x| (other.offset + u64::from(x.ms) * UNIT, s))
                })
                .collect();
            for (k, s) in inside {
                self.offer(v, k, s);
            }
        }
    }

    /// The ways the field's sources reach `target`: the owner of each vertex the target is
    /// reached from, and every source on the target's own segment. The best of them (after
    /// each source's off-road time and speed) is the best of all sources.
    pub fn reach(&self, g: &ProfileGraph, target: &Snapped, out: &mut Vec<Reach>) {
        if let Some(t) = FieldTarget::new(g, &self.overlay, target) {
            self.reach_placed(g, &t, out);
        }
    }

    /// [`Self::reach`] of a target placed beforehand on this field's overlay.
    pub fn reach_placed(&self, g: &ProfileGraph, target: &FieldTarget, out: &mut Vec<Reach>) {
        assert!(
            target.profile == g.base.profile && target.overlay == self.overlay.id(),
            "a target placed on another graph or under another overlay"
        );
        for &(v, ms) in &target.from {
            if v == NONE {
                continue;
            }
            let (key, o) = self.labels[v as usize];
            if o != NONE {
                let src = self.source(o);
                let path = (key - src.offset) / UNIT;
                out.push(Reach {
                    source: o,
                    ms: u32::try_from(path).unwrap_or(u32::MAX).saturating_add(ms),
                    moved_m: src.snapped.moved_m,
                });
            }
        }
        if let Some(ids) = self.on_segment.get(&target.segment) {
            let seg = &g.base.segments[target.segment as usize];
            let along = self.overlay.whole(target.segment, seg);
            for &s in ids {
                let from = self.source(s).snapped;
                if let Some(ms) = snap::same_segment_ms(&along, from.frac, target.frac) {
                    out.push(Reach {
                        source: s,
                        ms,
                        moved_m: from.moved_m,
                    });
                }
            }
        }
    }

    /// The label of vertex `v`: `(time in 1/1024 ms, owner)`, or `None` beyond the horizon
    /// (tests compare whole fields with it).
    pub fn label(&self, v: u32) -> Option<(u64, u32)> {
        let label = *self.labels.get(v as usize)?;
        (label.1 != NONE).then_some(label)
    }

    fn clear(&mut self, v: u32, cell: &mut Vec<u32>) {
        self.labels[v as usize] = EMPTY;
        cell.push(v);
    }

    /// Lowers `v`'s label to `(k, id)` if that is smaller and within the horizon.
    fn offer(&mut self, v: u32, k: u64, id: u32) {
        let i = v as usize;
        if k <= self.cap && (k, id) < self.labels[i] {
            self.labels[i] = (k, id);
            self.heap.push(Reverse((k, id, v)));
        }
    }

    fn run(&mut self, arcs: &ArcLists, changed: &mut Vec<u32>) {
        while let Some(Reverse((k, id, v))) = self.heap.pop() {
            if self.labels[v as usize] != (k, id) {
                continue;
            }
            changed.push(v);
            for &(w, ms, seg) in arcs.outs(v) {
                let ms = self.overlay.through(seg, ms);
                if ms != NO_ARC {
                    self.offer(w, k + u64::from(ms) * UNIT, id);
                }
            }
        }
    }

    /// Source `id`, which the field holds (its labels and lists name only those).
    fn source(&self, id: u32) -> &Source {
        self.sources[id as usize]
            .as_ref()
            .expect("labels and lists name only held sources")
    }

    /// The vertices a source at `at` reaches first, on the field's weights.
    fn seeds(&self, g: &ProfileGraph, at: &Snapped) -> snap::Seeds {
        snap::source_seeds(&self.overlay.partial(at.segment, g.segment(at)), at.frac)
    }
}

fn detach(map: &mut FastMap<u32, Vec<u32>>, at: u32, id: u32) {
    if let Some(v) = map.get_mut(&at) {
        v.retain(|&x| x != id);
        if v.is_empty() {
            map.remove(&at);
        }
    }
}
