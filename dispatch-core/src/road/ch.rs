//! Contraction hierarchies: exact shortest paths with small searches.
//!
//! Preparation contracts vertices one by one (least important first: edge difference plus
//! contracted neighbours, re-evaluated lazily), adding a shortcut u → w past each contracted
//! v unless a witness search finds a path u → w avoiding v that is no longer. A witness search
//! that gives up early only adds a superfluous shortcut, never a wrong one, so the settle
//! limit trades preparation time against graph size, not exactness.
//!
//! Vertices are renumbered by rank (contraction order), so that the upward arcs of vertex `r`
//! are a contiguous slice and the many-to-one sweep ([`Ch::distances_to`], PHAST) is one linear
//! pass over the arrays.

use super::dijkstra::Found;
use super::graph::BaseGraph;
use super::snap::Seeds;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const INF: u32 = u32::MAX;
const NONE: u32 = u32::MAX;
/// In an arc's `mid`: set for a shortcut (the rest indexes [`Ch::halves`]), clear for an
/// original arc (the rest is its segment id).
const SHORTCUT: u32 = 1 << 31;

/// How many vertices a witness search may settle before it gives up (and a shortcut is
/// added). Larger means fewer shortcuts and a slower preparation. Estimating a vertex's
/// priority only needs a count, so it searches less than a real contraction.
const WITNESS_SETTLE_LIMIT: usize = 500;
const ESTIMATE_SETTLE_LIMIT: usize = 20;

/// A prepared hierarchy over one profile's graph.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ch {
    /// Graph vertex → rank.
    rank_of: Vec<u32>,
    /// Upward arcs r → head (head ranks above r): `up_first[r]..up_first[r + 1]`.
    up_first: Vec<u32>,
    up: Vec<Hop>,
    up_mid: Vec<u32>,
    /// Arcs tail → r whose tail ranks above r, stored at r (the backward search climbs them).
    down_first: Vec<u32>,
    /// `node` is the tail here.
    down: Vec<Hop>,
    down_mid: Vec<u32>,
    /// The two arcs a shortcut t → h past m stands for: t → m (an index into the down
    /// arrays, stored at m) and m → h (an index into the up arrays). Unpacking is then a walk
    /// down this table with no searching.
    halves: Vec<[u32; 2]>,
}

/// An arc as the searches read it: the vertex at its other end and its time, side by side so
/// that one relaxation touches one cache line.
#[derive(Debug, Clone, Copy, Default)]
struct Hop {
    node: u32,
    ms: u32,
}

#[derive(Debug, Clone, Copy)]
struct Adj {
    to: u32,
    ms: u32,
    mid: u32,
}

/// Reusable bounded Dijkstra for witness searches.
struct Witness {
    dist: Vec<u32>,
    stamp: Vec<u32>,
    generation: u32,
    heap: MinQueue,
}

impl Witness {
    fn new(n: usize) -> Witness {
        Witness {
            dist: vec![INF; n],
            stamp: vec![0; n],
            generation: 0,
            heap: MinQueue::default(),
        }
    }

    fn get(&self, v: u32) -> u32 {
        if self.stamp[v as usize] == self.generation {
            self.dist[v as usize]
        } else {
            INF
        }
    }

    /// Distances from `source` in the remaining graph without `avoid`, exact up to `max_ms`
    /// (or until the settle limit).
    fn run(&mut self, out: &[Vec<Adj>], source: u32, avoid: u32, max_ms: u32, limit: usize) {
        self.generation += 1;
        self.heap.clear();
        self.stamp[source as usize] = self.generation;
        self.dist[source as usize] = 0;
        self.heap.push(0, source);
        let mut settled = 0;
        while let Some((d, v)) = self.heap.pop() {
            if d > self.get(v) {
                continue;
            }
            if d > max_ms || settled >= limit {
                break;
            }
            settled += 1;
            for a in &out[v as usize] {
                if a.to == avoid {
                    continue;
                }
                let nd = d.saturating_add(a.ms);
                if nd < self.get(a.to) {
                    self.stamp[a.to as usize] = self.generation;
                    self.dist[a.to as usize] = nd;
                    self.heap.push(nd, a.to);
                }
            }
        }
    }
}

/// The contraction state: the remaining graph, with arcs only between uncontracted vertices.
struct Contraction {
    out: Vec<Vec<Adj>>,
    inn: Vec<Vec<Adj>>,
    witness: Witness,
}

impl Contraction {
    /// Calls `found(u, w, ms)` for every shortcut contracting `v` needs.
    fn shortcuts(&mut self, v: u32, limit: usize, mut found: impl FnMut(u32, u32, u32)) {
        let vi = v as usize;
        let Some(max_out) = self.out[vi].iter().map(|a| a.ms).max() else {
            return;
        };
        for i in 0..self.inn[vi].len() {
            let into = self.inn[vi][i];
            let u = into.to;
            if !self.out[vi].iter().any(|a| a.to != u) {
                continue;
            }
            self.witness
                .run(&self.out, u, v, into.ms.saturating_add(max_out), limit);
            for a in &self.out[vi] {
                let need = into.ms.saturating_add(a.ms);
                if a.to != u && self.witness.get(a.to) > need {
                    found(u, a.to, need);
                }
            }
        }
    }

    /// Edge difference plus contracted neighbours: small for vertices whose contraction
    /// keeps the graph small, and spread evenly over the map.
    fn priority(&mut self, v: u32, contracted_neighbours: u32) -> i64 {
        let mut added = 0i64;
        self.shortcuts(v, ESTIMATE_SETTLE_LIMIT, |_, _, _| added += 1);
        let removed = (self.out[v as usize].len() + self.inn[v as usize].len()) as i64;
        added - removed + i64::from(contracted_neighbours)
    }

    fn add_arc(&mut self, u: u32, w: u32, ms: u32, mid: u32) {
        let list = &mut self.out[u as usize];
        if let Some(a) = list.iter_mut().find(|a| a.to == w) {
            if a.ms <= ms {
                return;
            }
            *a = Adj { to: w, ms, mid };
            let b = self.inn[w as usize]
                .iter_mut()
                .find(|a| a.to == u)
                .expect("in and out lists mirror each other");
            *b = Adj { to: u, ms, mid };
        } else {
            list.push(Adj { to: w, ms, mid });
            self.inn[w as usize].push(Adj { to: u, ms, mid });
        }
    }
}

impl Ch {
    pub(crate) fn build(g: &BaseGraph) -> Ch {
        let n = g.vertex_count();
        let mut c = Contraction {
            out: vec![Vec::new(); n],
            inn: vec![Vec::new(); n],
            witness: Witness::new(n),
        };
        for v in 0..n as u32 {
            for arc in g.out_arcs(v) {
                c.add_arc(v, g.out_head[arc], g.out_ms[arc], g.out_seg[arc]);
            }
        }
        let mut neighbours_done = vec![0u32; n];
        let mut prio: Vec<i64> = (0..n as u32).map(|v| c.priority(v, 0)).collect();
        let mut heap: BinaryHeap<Reverse<(i64, u32)>> = (0..n as u32)
            .map(|v| Reverse((prio[v as usize], v)))
            .collect();
        let mut contracted = vec![false; n];
        let mut order = Vec::with_capacity(n);
        // The final arcs of each vertex: its arcs to the vertices still uncontracted when it is
        // contracted (all of which rank above it).
        let mut up: Vec<Vec<Adj>> = vec![Vec::new(); n];
        let mut down: Vec<Vec<Adj>> = vec![Vec::new(); n];
        let mut shortcuts = Vec::new();
        while let Some(Reverse((p, v))) = heap.pop() {
            let vi = v as usize;
            if contracted[vi] || p != prio[vi] {
                continue;
            }
            let fresh = c.priority(v, neighbours_done[vi]);
            if fresh > p && heap.peek().is_some_and(|Reverse((next, _))| fresh > *next) {
                prio[vi] = fresh;
                heap.push(Reverse((fresh, v)));
                continue;
            }
            shortcuts.clear();
            c.shortcuts(v, WITNESS_SETTLE_LIMIT, |u, w, ms| {
                shortcuts.push((u, w, ms))
            });
            up[vi] = std::mem::take(&mut c.out[vi]);
            down[vi] = std::mem::take(&mut c.inn[vi]);
            for a in &up[vi] {
                c.inn[a.to as usize].retain(|b| b.to != v);
            }
            for a in &down[vi] {
                c.out[a.to as usize].retain(|b| b.to != v);
            }
            for &(u, w, ms) in &shortcuts {
                c.add_arc(u, w, ms, SHORTCUT | v);
            }
            contracted[vi] = true;
            order.push(v);
            let mut touched: Vec<u32> = up[vi].iter().chain(&down[vi]).map(|a| a.to).collect();
            touched.sort_unstable();
            touched.dedup();
            for w in touched {
                neighbours_done[w as usize] += 1;
                let p = c.priority(w, neighbours_done[w as usize]);
                prio[w as usize] = p;
                heap.push(Reverse((p, w)));
            }
        }

        let mut rank_of = vec![0u32; n];
        for (r, &v) in order.iter().enumerate() {
            rank_of[v as usize] = r as u32;
        }
        let remap = |mid: u32| {
            if mid & SHORTCUT != 0 {
                SHORTCUT | rank_of[(mid & !SHORTCUT) as usize]
            } else {
                mid
            }
        };
        let csr = |lists: &[Vec<Adj>]| {
            let mut first = Vec::with_capacity(n + 1);
            let (mut hops, mut mid) = (Vec::new(), Vec::new());
            first.push(0u32);
            for &v in &order {
                for a in &lists[v as usize] {
                    hops.push(Hop {
                        node: rank_of[a.to as usize],
                        ms: a.ms,
                    });
                    mid.push(remap(a.mid));
                }
                first.push(hops.len() as u32);
            }
            (first, hops, mid)
        };
        let (up_first, up_hops, up_mid) = csr(&up);
        let (down_first, down_hops, down_mid) = csr(&down);
        let mut ch = Ch {
            rank_of,
            up_first,
            up: up_hops,
            up_mid,
            down_first,
            down: down_hops,
            down_mid,
            halves: Vec::new(),
        };
        ch.link_halves();
        ch
    }

    /// Replaces each shortcut's bypassed rank by an index into `halves`. A shortcut t → h past
    /// m was made from the arcs t → m and m → h as they stood when m was contracted, and
    /// those never change after, so both are found among m's arcs (parallel arcs were merged,
    /// so each is unique).
    fn link_halves(&mut self) {
        let n = self.rank_of.len() as u32;
        for r in 0..n {
            for a in self.ups(r) {
                if self.up_mid[a] & SHORTCUT != 0 {
                    let half = self.find_halves(r, self.up[a].node, self.up_mid[a] & !SHORTCUT);
                    self.up_mid[a] = SHORTCUT | self.halves.len() as u32;
                    self.halves.push(half);
                }
            }
            for a in self.downs(r) {
                if self.down_mid[a] & SHORTCUT != 0 {
                    let half = self.find_halves(self.down[a].node, r, self.down_mid[a] & !SHORTCUT);
                    self.down_mid[a] = SHORTCUT | self.halves.len() as u32;
                    self.halves.push(half);
                }
            }
        }
    }

    fn find_halves(&self, tail: u32, head: u32, m: u32) -> [u32; 2] {
        let first = self.downs(m).find(|&a| self.down[a].node == tail);
        let second = self.ups(m).find(|&a| self.up[a].node == head);
        match (first, second) {
            (Some(x), Some(y)) => [x as u32, y as u32],
            _ => unreachable!("a shortcut's two halves are arcs of the vertex it bypasses"),
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        (self.rank_of.len()
            + self.up_first.len()
            + 2 * self.up.len()
            + self.up_mid.len()
            + self.down_first.len()
            + 2 * self.down.len()
            + self.down_mid.len()
            + 2 * self.halves.len())
            * std::mem::size_of::<u32>()
    }

    /// Arcs in the hierarchy (original arcs kept plus shortcuts).
    pub(crate) fn arc_count(&self) -> usize {
        self.up.len() + self.down.len()
    }

    fn ups(&self, r: u32) -> std::ops::Range<usize> {
        self.up_first[r as usize] as usize..self.up_first[r as usize + 1] as usize
    }

    fn downs(&self, r: u32) -> std::ops::Range<usize> {
        self.down_first[r as usize] as usize..self.down_first[r as usize + 1] as usize
    }

    /// Appends the original segments an arc stands for, in travel order.
    fn unpack(&self, mid: u32, stack: &mut Vec<u32>, segments: &mut Vec<u32>) {
        stack.clear();
        stack.push(mid);
        while let Some(mid) = stack.pop() {
            if mid & SHORTCUT == 0 {
                segments.push(mid);
            } else {
                let [first, second] = self.halves[(mid & !SHORTCUT) as usize];
                stack.push(self.up_mid[second as usize]);
                stack.push(self.down_mid[first as usize]);
            }
        }
    }

    /// The shortest path from any source seed to any target seed: a bidirectional search that
    /// only ever climbs in rank.
    pub(crate) fn shortest(&self, sources: &Seeds, targets: &Seeds) -> Option<Found> {
        SCRATCH.with(|cell| {
            let mut s = cell.borrow_mut();
            let n = self.rank_of.len();
            s.begin(n);
            let Scratch { fwd, bwd, .. } = &mut *s;
            for seed in sources.iter().flatten() {
                fwd.reach(self.rank_of[seed.node as usize], seed.ms, NONE, NONE);
            }
            for seed in targets.iter().flatten() {
                bwd.reach(self.rank_of[seed.node as usize], seed.ms, NONE, NONE);
            }
            let (mut best, mut meet) = (INF, NONE);
            loop {
                let f_top = fwd.top().filter(|&d| d < best);
                let b_top = bwd.top().filter(|&d| d < best);
                let forward = match (f_top, b_top) {
                    (None, None) => break,
                    (Some(f), Some(b)) => f <= b,
                    (f, _) => f.is_some(),
                };
                let (side, other) = if forward {
                    (&mut *fwd, &*bwd)
                } else {
                    (&mut *bwd, &*fwd)
                };
                let Some((d, v)) = side.pop() else { break };
                let there = other.get(v);
                if there != INF && d.saturating_add(there) < best {
                    best = d.saturating_add(there);
                    meet = v;
                }
                // Stall on demand: if a higher vertex already reaches v more cheaply (through
                // an arc the other way), d is not v's distance, and nothing climbs on from v.
                let (stall, climb, hops) = if forward {
                    (self.downs(v), self.ups(v), &self.up)
                } else {
                    (self.ups(v), self.downs(v), &self.down)
                };
                let stall_hops = if forward { &self.down } else { &self.up };
                if stall_hops[stall]
                    .iter()
                    .any(|h| side.get(h.node).saturating_add(h.ms) < d)
                {
                    continue;
                }
                let first = climb.start;
                for (i, h) in hops[climb].iter().enumerate() {
                    side.reach(h.node, d.saturating_add(h.ms), v, (first + i) as u32);
                }
            }
            if meet == NONE {
                return None;
            }
            // Climb back from the meeting vertex to the source, then down to the target.
            let mut arcs_up = Vec::new();
            let mut r = meet;
            while fwd.pred_arc(r) != NONE {
                arcs_up.push(self.up_mid[fwd.pred_arc(r) as usize]);
                r = fwd.pred_node(r);
            }
            let start_rank = r;
            let mut segments = Vec::new();
            let mut stack = Vec::new();
            for &mid in arcs_up.iter().rev() {
                self.unpack(mid, &mut stack, &mut segments);
            }
            let mut r = meet;
            while bwd.pred_arc(r) != NONE {
                self.unpack(
                    self.down_mid[bwd.pred_arc(r) as usize],
                    &mut stack,
                    &mut segments,
                );
                r = bwd.pred_node(r);
            }
            let end_rank = r;
            let source = sources
                .iter()
                .flatten()
                .filter(|s| self.rank_of[s.node as usize] == start_rank)
                .min_by_key(|s| s.ms)
                .copied()?;
            let target = targets
                .iter()
                .flatten()
                .filter(|s| self.rank_of[s.node as usize] == end_rank)
                .min_by_key(|s| s.ms)
                .copied()?;
            Some(Found {
                ms: best,
                start: source.node,
                segments,
                source,
                target,
            })
        })
    }

    /// The whole upward search space of `seeds`: every vertex the search climbing from them
    /// settles (forward: the way a trip leaves sources; backward: the way it reaches
    /// targets), as `(rank, ms)` sorted by rank. Vertices the search stalls are left out.
    ///
    /// The time from a source to a target is the minimum of `ms + ms` over the ranks the
    /// source's forward space and the target's backward space share: the highest vertex of a
    /// shortest path is in both with its exact times (no vertex on a shortest path is
    /// stalled, since stalling means a shorter way exists), and every sum is the length of a
    /// real path. So a source's space, searched once, answers for every target
    /// ([`space_ms`]).
    pub(crate) fn space(&self, seeds: &Seeds, forward: bool) -> Vec<(u32, u32)> {
        SCRATCH.with(|cell| {
            let mut s = cell.borrow_mut();
            let n = self.rank_of.len();
            s.begin(n);
            let side = &mut s.fwd;
            for seed in seeds.iter().flatten() {
                side.reach(self.rank_of[seed.node as usize], seed.ms, NONE, NONE);
            }
            let (stall_hops, climb_hops) = if forward {
                (&self.down, &self.up)
            } else {
                (&self.up, &self.down)
            };
            let mut out = Vec::new();
            while let Some((d, v)) = side.pop() {
                let (stall, climb) = if forward {
                    (self.downs(v), self.ups(v))
                } else {
                    (self.ups(v), self.downs(v))
                };
                if stall_hops[stall]
                    .iter()
                    .any(|h| side.get(h.node).saturating_add(h.ms) < d)
                {
                    continue;
                }
                out.push((v, d));
                for h in &climb_hops[climb] {
                    side.reach(h.node, d.saturating_add(h.ms), NONE, NONE);
                }
            }
            out.sort_unstable_by_key(|&(r, _)| r);
            out
        })
    }

    /// PHAST many-to-one: fills `dist[rank]` with the time from every vertex to the target
    /// seeds. One backward upward search, then one sweep from the top rank down, pulling each
    /// vertex's time from the higher-ranked vertices its up arcs lead to (already final).
    pub(crate) fn distances_to(&self, targets: &Seeds, dist: &mut Vec<u32>) {
        let n = self.rank_of.len();
        dist.clear();
        dist.resize(n, INF);
        let mut heap = MinQueue::default();
        for seed in targets.iter().flatten() {
            let r = self.rank_of[seed.node as usize];
            if seed.ms < dist[r as usize] {
                dist[r as usize] = seed.ms;
                heap.push(seed.ms, r);
            }
        }
        while let Some((d, v)) = heap.pop() {
            if d > dist[v as usize] {
                continue;
            }
            for a in self.downs(v) {
                let (u, nd) = (self.down[a].node, d.saturating_add(self.down[a].ms));
                if nd < dist[u as usize] {
                    dist[u as usize] = nd;
                    heap.push(nd, u);
                }
            }
        }
        for r in (0..n).rev() {
            let mut d = dist[r];
            for hop in &self.up[self.up_first[r] as usize..self.up_first[r + 1] as usize] {
                d = d.min(hop.ms.saturating_add(dist[hop.node as usize]));
            }
            dist[r] = d;
        }
    }

    pub(crate) fn rank(&self, v: u32) -> u32 {
        self.rank_of[v as usize]
    }
}

/// One direction of a bidirectional search, reusable across queries on this thread.
#[derive(Default)]
struct Side {
    /// Per vertex: the generation it was last reached in, and its tentative time then.
    label: Vec<(u32, u32)>,
    /// Per vertex: the vertex and arc it was reached through.
    pred: Vec<(u32, u32)>,
    generation: u32,
    heap: MinQueue,
}

impl Side {
    fn begin(&mut self, n: usize) {
        if self.label.len() < n {
            self.label.resize(n, (0, INF));
            self.pred.resize(n, (NONE, NONE));
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.label.fill((0, INF));
            self.generation = 1;
        }
        self.heap.clear();
    }

    #[inline]
    fn get(&self, v: u32) -> u32 {
        let (generation, d) = self.label[v as usize];
        if generation == self.generation {
            d
        } else {
            INF
        }
    }

    #[inline]
    fn reach(&mut self, v: u32, d: u32, pred_node: u32, pred_arc: u32) {
        if d < self.get(v) {
            self.label[v as usize] = (self.generation, d);
            self.pred[v as usize] = (pred_node, pred_arc);
            self.heap.push(d, v);
        }
    }

    /// The smallest tentative distance still queued (skipping stale entries).
    fn top(&mut self) -> Option<u32> {
        while let Some((d, v)) = self.heap.peek() {
            if d > self.get(v) {
                self.heap.pop();
            } else {
                return Some(d);
            }
        }
        None
    }

    fn pop(&mut self) -> Option<(u32, u32)> {
        self.top()?;
        self.heap.pop()
    }

    fn pred_node(&self, v: u32) -> u32 {
        self.pred[v as usize].0
    }

    fn pred_arc(&self, v: u32) -> u32 {
        self.pred[v as usize].1
    }
}

/// A min-priority queue of (time, vertex), packed into one `u64` so that each comparison is a
/// single integer compare.
#[derive(Debug, Default)]
struct MinQueue(BinaryHeap<Reverse<u64>>);

impl MinQueue {
    #[inline]
    fn push(&mut self, d: u32, v: u32) {
        self.0.push(Reverse((u64::from(d) << 32) | u64::from(v)));
    }

    #[inline]
    fn pop(&mut self) -> Option<(u32, u32)> {
        self.0.pop().map(|Reverse(x)| ((x >> 32) as u32, x as u32))
    }

    #[inline]
    fn peek(&self) -> Option<(u32, u32)> {
        self.0
            .peek()
            .map(|&Reverse(x)| ((x >> 32) as u32, x as u32))
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

#[derive(Default)]
struct Scratch {
    fwd: Side,
    bwd: Side,
}

impl Scratch {
    fn begin(&mut self, n: usize) {
        self.fwd.begin(n);
        self.bwd.begin(n);
    }
}

thread_local! {
    /// Search state reused by every query on this thread, so a query allocates nothing and
    /// clears nothing (entries are valid only under the current generation stamp).
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The time from a source to a target given the source's forward [`Ch::space`] and the
/// target's backward one: a merge of the two rank-sorted lists. `None` if they share no
/// vertex.
pub(crate) fn space_ms(up: &[(u32, u32)], down: &[(u32, u32)]) -> Option<u32> {
    let (mut i, mut j) = (0, 0);
    let mut best = INF;
    while i < up.len() && j < down.len() {
        let (a, b) = (up[i], down[j]);
        match a.0.cmp(&b.0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                best = best.min(a.1.saturating_add(b.1));
                i += 1;
                j += 1;
            }
        }
    }
    (best != INF).then_some(best)
}
