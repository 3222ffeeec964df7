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
/// In an arc's `mid`: set for a shortcut (the rest is the rank of the vertex it bypasses),
/// clear for an original arc (the rest is its segment id).
const SHORTCUT: u32 = 1 << 31;

/// How many vertices a witness search may settle before it gives up (and a shortcut is
/// added). Larger means fewer shortcuts and a slower preparation.
const WITNESS_SETTLE_LIMIT: usize = 500;

/// A prepared hierarchy over one profile's graph.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ch {
    /// Graph vertex → rank.
    rank_of: Vec<u32>,
    /// Upward arcs r → head (head ranks above r): `up_first[r]..up_first[r + 1]`.
    up_first: Vec<u32>,
    up_head: Vec<u32>,
    up_ms: Vec<u32>,
    up_mid: Vec<u32>,
    /// Arcs tail → r whose tail ranks above r, stored at r (the backward search climbs them).
    down_first: Vec<u32>,
    down_tail: Vec<u32>,
    down_ms: Vec<u32>,
    down_mid: Vec<u32>,
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
    heap: BinaryHeap<Reverse<(u32, u32)>>,
}

impl Witness {
    fn new(n: usize) -> Witness {
        Witness {
            dist: vec![INF; n],
            stamp: vec![0; n],
            generation: 0,
            heap: BinaryHeap::new(),
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
    fn run(&mut self, out: &[Vec<Adj>], source: u32, avoid: u32, max_ms: u32) {
        self.generation += 1;
        self.heap.clear();
        self.stamp[source as usize] = self.generation;
        self.dist[source as usize] = 0;
        self.heap.push(Reverse((0, source)));
        let mut settled = 0;
        while let Some(Reverse((d, v))) = self.heap.pop() {
            if d > self.get(v) {
                continue;
            }
            if d > max_ms || settled >= WITNESS_SETTLE_LIMIT {
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
                    self.heap.push(Reverse((nd, a.to)));
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
    fn shortcuts(&mut self, v: u32, mut found: impl FnMut(u32, u32, u32)) {
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
                .run(&self.out, u, v, into.ms.saturating_add(max_out));
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
        self.shortcuts(v, |_, _, _| added += 1);
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
            c.shortcuts(v, |u, w, ms| shortcuts.push((u, w, ms)));
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
            let (mut head, mut ms, mut mid) = (Vec::new(), Vec::new(), Vec::new());
            first.push(0u32);
            for &v in &order {
                for a in &lists[v as usize] {
                    head.push(rank_of[a.to as usize]);
                    ms.push(a.ms);
                    mid.push(remap(a.mid));
                }
                first.push(head.len() as u32);
            }
            (first, head, ms, mid)
        };
        let (up_first, up_head, up_ms, up_mid) = csr(&up);
        let (down_first, down_tail, down_ms, down_mid) = csr(&down);
        Ch {
            rank_of,
            up_first,
            up_head,
            up_ms,
            up_mid,
            down_first,
            down_tail,
            down_ms,
            down_mid,
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        (self.rank_of.len()
            + self.up_first.len()
            + self.up_head.len()
            + self.up_ms.len()
            + self.up_mid.len()
            + self.down_first.len()
            + self.down_tail.len()
            + self.down_ms.len()
            + self.down_mid.len())
            * std::mem::size_of::<u32>()
    }

    /// Arcs in the hierarchy (original arcs kept plus shortcuts).
    pub(crate) fn arc_count(&self) -> usize {
        self.up_head.len() + self.down_tail.len()
    }

    fn ups(&self, r: u32) -> std::ops::Range<usize> {
        self.up_first[r as usize] as usize..self.up_first[r as usize + 1] as usize
    }

    fn downs(&self, r: u32) -> std::ops::Range<usize> {
        self.down_first[r as usize] as usize..self.down_first[r as usize + 1] as usize
    }

    /// Appends the segments of arc `tail → head` (ranks) in travel order.
    fn unpack(&self, tail: u32, head: u32, mid: u32, segments: &mut Vec<u32>) {
        let mut stack = vec![(tail, head, mid)];
        while let Some((t, h, mid)) = stack.pop() {
            if mid & SHORTCUT == 0 {
                segments.push(mid);
                continue;
            }
            let m = mid & !SHORTCUT;
            // t → m was final when m was contracted: it sits among m's down arcs with tail t;
            // m → h among m's up arcs with head h. Parallel arcs were merged, so each is unique.
            let first = self
                .downs(m)
                .find(|&a| self.down_tail[a] == t)
                .map(|a| self.down_mid[a]);
            let second = self
                .ups(m)
                .find(|&a| self.up_head[a] == h)
                .map(|a| self.up_mid[a]);
            let (Some(first), Some(second)) = (first, second) else {
                debug_assert!(false, "a shortcut's two halves are in the hierarchy");
                return;
            };
            stack.push((m, h, second));
            stack.push((t, m, first));
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
                if forward {
                    for a in self.ups(v) {
                        side.reach(
                            self.up_head[a],
                            d.saturating_add(self.up_ms[a]),
                            v,
                            a as u32,
                        );
                    }
                } else {
                    for a in self.downs(v) {
                        side.reach(
                            self.down_tail[a],
                            d.saturating_add(self.down_ms[a]),
                            v,
                            a as u32,
                        );
                    }
                }
            }
            if meet == NONE {
                return None;
            }
            // Climb back from the meeting vertex to the source, then down to the target.
            let mut arcs_up = Vec::new();
            let mut r = meet;
            while fwd.pred_arc(r) != NONE {
                let (t, a) = (fwd.pred_node(r), fwd.pred_arc(r) as usize);
                arcs_up.push((t, r, self.up_mid[a]));
                r = t;
            }
            let start_rank = r;
            let mut segments = Vec::new();
            for &(t, h, mid) in arcs_up.iter().rev() {
                self.unpack(t, h, mid, &mut segments);
            }
            let mut r = meet;
            while bwd.pred_arc(r) != NONE {
                let (h, a) = (bwd.pred_node(r), bwd.pred_arc(r) as usize);
                self.unpack(r, h, self.down_mid[a], &mut segments);
                r = h;
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

    /// PHAST many-to-one: fills `dist[rank]` with the time from every vertex to the target
    /// seeds. One backward upward search, then one sweep from the top rank down, pulling each
    /// vertex's time from the higher-ranked vertices its up arcs lead to (already final).
    pub(crate) fn distances_to(&self, targets: &Seeds, dist: &mut Vec<u32>) {
        let n = self.rank_of.len();
        dist.clear();
        dist.resize(n, INF);
        let mut heap = BinaryHeap::new();
        for seed in targets.iter().flatten() {
            let r = self.rank_of[seed.node as usize];
            if seed.ms < dist[r as usize] {
                dist[r as usize] = seed.ms;
                heap.push(Reverse((seed.ms, r)));
            }
        }
        while let Some(Reverse((d, v))) = heap.pop() {
            if d > dist[v as usize] {
                continue;
            }
            for a in self.downs(v) {
                let (u, nd) = (self.down_tail[a], d.saturating_add(self.down_ms[a]));
                if nd < dist[u as usize] {
                    dist[u as usize] = nd;
                    heap.push(Reverse((nd, u)));
                }
            }
        }
        for r in (0..n).rev() {
            let mut d = dist[r];
            for a in self.up_first[r] as usize..self.up_first[r + 1] as usize {
                d = d.min(self.up_ms[a].saturating_add(dist[self.up_head[a] as usize]));
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
    stamp: Vec<u32>,
    dist: Vec<u32>,
    pred_node: Vec<u32>,
    pred_arc: Vec<u32>,
    generation: u32,
    heap: BinaryHeap<Reverse<(u32, u32)>>,
}

impl Side {
    fn begin(&mut self, n: usize) {
        if self.stamp.len() < n {
            self.stamp.resize(n, 0);
            self.dist.resize(n, INF);
            self.pred_node.resize(n, NONE);
            self.pred_arc.resize(n, NONE);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.fill(0);
            self.generation = 1;
        }
        self.heap.clear();
    }

    fn get(&self, v: u32) -> u32 {
        if self.stamp[v as usize] == self.generation {
            self.dist[v as usize]
        } else {
            INF
        }
    }

    fn reach(&mut self, v: u32, d: u32, pred_node: u32, pred_arc: u32) {
        if d < self.get(v) {
            let i = v as usize;
            self.stamp[i] = self.generation;
            self.dist[i] = d;
            self.pred_node[i] = pred_node;
            self.pred_arc[i] = pred_arc;
            self.heap.push(Reverse((d, v)));
        }
    }

    /// The smallest tentative distance still queued (skipping stale entries).
    fn top(&mut self) -> Option<u32> {
        while let Some(&Reverse((d, v))) = self.heap.peek() {
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
        self.heap.pop().map(|Reverse(x)| x)
    }

    fn pred_node(&self, v: u32) -> u32 {
        self.pred_node[v as usize]
    }

    fn pred_arc(&self, v: u32) -> u32 {
        self.pred_arc[v as usize]
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
