//! Roads that change: closures and slowdowns laid over a profile's graph without rebuilding
//! its hierarchy, exact from the moment they are laid.
//!
//! An overlay only ever makes travel slower (a closed stretch costs "no arc", a slowed one
//! its time × a factor ≥ 1). That is what keeps it cheap and exact:
//! - a route: the hierarchy's path on the old weights costs the same on the new ones when it
//!   touches no changed segment, and every other path costs at least what it did, so it is
//!   still the fastest; otherwise plain Dijkstra on the new weights answers;
//! - the many-to-one sweep: a vertex keeps its old time when one of its shortest-path arcs
//!   is unchanged and leads to a vertex that keeps its own; the others (found in the order
//!   of their old times, so each is decided after everything it depends on) are settled
//!   again by Dijkstra seeded from their unaffected neighbours (Ramalingam and Reps' repair
//!   for weight increases). The work is the part of the graph whose shortest way to the
//!   target ran through a change.
//!
//! Door access: a closed stretch cannot be driven (or walked) *through*, nor along from one
//! place on it to another, but a place on it is still reached from either end, and a trip
//! from a place on it still leaves by either end, at the profile's speed: the crew stops at
//! the barrier and covers the last metres. A slowed stretch is slowed for those partial
//! pieces too.

use super::graph::{Segment, NO_ARC};
use super::snap::{self, Seeds, Snapped};
use super::ProfileGraph;
use crate::geo::{LatLon, Projection};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

/// What an overlay does to one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Closed,
    /// Travel time × `permille` / 1000 (rounded up), with `permille` > 1000.
    Slow {
        permille: u32,
    },
}

impl Effect {
    /// The stronger of two effects on the same segment (closed wins, then the larger factor).
    fn max(self, other: Effect) -> Effect {
        match (self, other) {
            (Effect::Closed, _) | (_, Effect::Closed) => Effect::Closed,
            (Effect::Slow { permille: a }, Effect::Slow { permille: b }) => {
                Effect::Slow { permille: a.max(b) }
            }
        }
    }
}

static NEXT_OVERLAY: AtomicU64 = AtomicU64::new(1);

/// The changed segments of one profile's graph. Each overlay built has its own id (sweeps
/// repaired for it are kept under that id), so two engines sharing one network never read
/// each other's repaired times.
#[derive(Debug, Clone, Default)]
pub struct ProfileOverlay {
    id: u64,
    segments: HashMap<u32, Effect>,
}

impl ProfileOverlay {
    /// No change: the graph's own weights.
    pub fn none() -> ProfileOverlay {
        ProfileOverlay::default()
    }

    /// An overlay of `(segment, effect)` pairs; a segment named twice takes the stronger.
    pub fn new(changes: impl IntoIterator<Item = (u32, Effect)>) -> ProfileOverlay {
        let mut segments: HashMap<u32, Effect> = HashMap::new();
        for (s, e) in changes {
            if let Effect::Slow { permille } = e {
                if permille <= 1000 {
                    continue;
                }
            }
            segments
                .entry(s)
                .and_modify(|old| *old = old.max(e))
                .or_insert(e);
        }
        let id = if segments.is_empty() {
            0
        } else {
            NEXT_OVERLAY.fetch_add(1, Ordering::Relaxed)
        };
        ProfileOverlay { id, segments }
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Changed segments.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The effect on a segment, if any.
    pub fn effect(&self, segment: u32) -> Option<Effect> {
        self.segments.get(&segment).copied()
    }

    /// The time of a whole arc of `segment` whose own time is `ms` ([`NO_ARC`] if closed).
    pub(crate) fn through(&self, segment: u32, ms: u32) -> u32 {
        if ms == NO_ARC {
            return NO_ARC;
        }
        match self.segments.get(&segment) {
            None => ms,
            Some(Effect::Closed) => NO_ARC,
            Some(Effect::Slow { permille }) => scale(ms, *permille),
        }
    }

    /// The segment as the pieces at a trip's ends see it: slowed, but never closed (door
    /// access, see the module documentation).
    pub(crate) fn partial(&self, segment: u32, seg: &Segment) -> Segment {
        match self.segments.get(&segment) {
            Some(Effect::Closed) => *seg,
            _ => self.whole(segment, seg),
        }
    }

    /// The segment as a trip along it from one place on it to another sees it: slowed or
    /// closed like its arcs (moving along a closed stretch is moving through it).
    pub(crate) fn whole(&self, segment: u32, seg: &Segment) -> Segment {
        Segment {
            fwd_ms: self.through(segment, seg.fwd_ms),
            bwd_ms: self.through(segment, seg.bwd_ms),
            ..*seg
        }
    }
}

/// Both profiles' overlays: what the engine lays while closures hold.
#[derive(Debug, Clone, Default)]
pub struct RoadOverlay {
    pub car: ProfileOverlay,
    pub foot: ProfileOverlay,
}

impl RoadOverlay {
    pub fn profile(&self, p: super::Profile) -> &ProfileOverlay {
        match p {
            super::Profile::Car => &self.car,
            super::Profile::Foot => &self.foot,
        }
    }
}

fn scale(ms: u32, permille: u32) -> u32 {
    let t = (u64::from(ms) * u64::from(permille)).div_ceil(1000);
    t.min(u64::from(NO_ARC - 1)) as u32
}

/// Where a closure lies, as an operator or a feed names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClosureArea {
    /// Whole OSM ways by id.
    Ways { ids: Vec<i64> },
    /// A line drawn along the road: every segment lying along it (half of it, or 30 m of it,
    /// within `width_m / 2`) and in its direction (a stretch drawn over part of a long segment catches it; a street
    /// crossing the line is not caught).
    Line {
        points: Vec<LatLon>,
        #[serde(default = "default_line_width_m")]
        width_m: f64,
    },
    /// An area (a flood): every segment with an end or its middle inside. The ring closes
    /// itself (the first point need not be repeated).
    Polygon { points: Vec<LatLon> },
}

fn default_line_width_m() -> f64 {
    DEFAULT_LINE_WIDTH_M
}

/// A drawn line catches roads within 10 m of it unless told otherwise.
pub const DEFAULT_LINE_WIDTH_M: f64 = 20.0;
/// The widest a drawn line may be (a wider area is a polygon).
pub const MAX_LINE_WIDTH_M: f64 = 200.0;
/// The most points or way ids one closure may name.
pub const MAX_AREA_POINTS: usize = 1000;

impl ClosureArea {
    /// Whether the area is well formed (the error says why not). Says nothing about roads.
    pub fn check(&self) -> Result<(), String> {
        let points = |pts: &[LatLon], least: usize, what: &str| {
            if pts.len() < least {
                return Err(format!("a {what} needs at least {least} points"));
            }
            if pts.len() > MAX_AREA_POINTS {
                return Err(format!(
                    "a {what} may have at most {MAX_AREA_POINTS} points"
                ));
            }
            for p in pts {
                p.validate().map_err(|e| e.to_string())?;
            }
            Ok(())
        };
        match self {
            ClosureArea::Ways { ids } => {
                if ids.is_empty() {
                    return Err("name at least one OSM way".into());
                }
                if ids.len() > MAX_AREA_POINTS {
                    return Err(format!("at most {MAX_AREA_POINTS} ways"));
                }
                Ok(())
            }
            ClosureArea::Line {
                points: pts,
                width_m,
            } => {
                if !(width_m.is_finite() && *width_m > 0.0 && *width_m <= MAX_LINE_WIDTH_M) {
                    return Err(format!(
                        "width_m must be above 0 and at most {MAX_LINE_WIDTH_M} m"
                    ));
                }
                points(pts, 2, "line")
            }
            ClosureArea::Polygon { points: pts } => points(pts, 3, "polygon"),
        }
    }
}

impl ProfileGraph {
    /// The segments `area` covers on this graph, in increasing order.
    pub fn segments_in(&self, area: &ClosureArea, projection: &Projection) -> Vec<u32> {
        let segs = &self.base.segments;
        let xy = |v: u32| projection.to_xy(self.base.coords[v as usize]);
        let mid = |a: [f64; 2], b: [f64; 2]| [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
        let keep: Box<dyn Fn(&Segment) -> bool> = match area {
            ClosureArea::Ways { ids } => {
                let ids: std::collections::HashSet<i64> = ids.iter().copied().collect();
                Box::new(move |s: &Segment| ids.contains(&s.way))
            }
            ClosureArea::Line { points, width_m } => {
                let line: Vec<[f64; 2]> = points.iter().map(|p| projection.to_xy(*p)).collect();
                let half = width_m / 2.0;
                // Only the pieces of the line whose box, widened by `half`, meets a segment's
                // box can be near it: the others cost a box test, not a distance.
                let pieces: Vec<Bounds> = line
                    .windows(2)
                    .map(|w| Bounds::of(w).widened(half))
                    .collect();
                let bounds = Bounds::of(&line).widened(half);
                Box::new(move |s: &Segment| {
                    let (a, b) = (xy(s.a), xy(s.b));
                    let sb = Bounds::of(&[a, b]);
                    if !bounds.meets(&sb) {
                        return false;
                    }
                    let near: Vec<usize> = (0..pieces.len())
                        .filter(|&i| pieces[i].meets(&sb))
                        .collect();
                    !near.is_empty() && along(a, b, &line, &near, half)
                })
            }
            ClosureArea::Polygon { points } => {
                let ring: Vec<[f64; 2]> = points.iter().map(|p| projection.to_xy(*p)).collect();
                let bounds = Bounds::of(&ring);
                Box::new(move |s: &Segment| {
                    let (a, b) = (xy(s.a), xy(s.b));
                    bounds.meets(&Bounds::of(&[a, b]))
                        && [a, mid(a, b), b].iter().any(|p| inside(*p, &ring))
                })
            }
        };
        (0..segs.len() as u32)
            .filter(|&i| keep(&segs[i as usize]))
            .collect()
    }

    /// A segment's two ends (for drawing a closure on a map).
    pub fn segment_ends(&self, segment: u32) -> Option<[LatLon; 2]> {
        let s = self.base.segments.get(segment as usize)?;
        Some([
            self.base.coords[s.a as usize],
            self.base.coords[s.b as usize],
        ])
    }

    /// [`ProfileGraph::route`] on the weights as `overlay` changes them.
    pub fn route_with(
        &self,
        from: &Snapped,
        to: &Snapped,
        overlay: &ProfileOverlay,
    ) -> Option<super::Route> {
        if overlay.is_empty() {
            return self.route(from, to);
        }
        if !self.owns(from) || !self.owns(to) {
            return None;
        }
        let (fs, ts) = self.end_segments(from, to, overlay);
        let (sources, targets) = (
            snap::source_seeds(&fs, from.frac),
            snap::target_seeds(&ts, to.frac),
        );
        let fast = self
            .ch
            .shortest(
                &snap::source_seeds(self.segment(from), from.frac),
                &snap::target_seeds(self.segment(to), to.frac),
            )
            .filter(|f| self.cost_with(f, &sources, &targets, overlay) == Some(f.ms));
        let found = fast.or_else(|| self.dijkstra_with(&sources, &targets, overlay));
        self.assemble(
            from,
            to,
            &overlay.whole(from.segment, self.segment(from)),
            found,
        )
    }

    /// [`ProfileGraph::route_dijkstra`] on the changed weights: the oracle for
    /// [`Self::route_with`] and [`Self::times_to_with`].
    pub fn route_dijkstra_with(
        &self,
        from: &Snapped,
        to: &Snapped,
        overlay: &ProfileOverlay,
    ) -> Option<super::Route> {
        if !self.owns(from) || !self.owns(to) {
            return None;
        }
        let (fs, ts) = self.end_segments(from, to, overlay);
        let found = self.dijkstra_with(
            &snap::source_seeds(&fs, from.frac),
            &snap::target_seeds(&ts, to.frac),
            overlay,
        );
        self.assemble(
            from,
            to,
            &overlay.whole(from.segment, self.segment(from)),
            found,
        )
    }

    /// [`ProfileGraph::times_to`] on the weights as `overlay` changes them.
    pub fn times_to_with(
        &self,
        sources: &[Snapped],
        target: &Snapped,
        overlay: &ProfileOverlay,
    ) -> Vec<Option<u32>> {
        if sources.is_empty() || !self.owns(target) {
            return vec![None; sources.len()];
        }
        let dist = self.sweep_to_with(target, overlay);
        self.times_from_sweep(sources, target, &dist, overlay)
    }

    /// The segments the two ends of a trip stand on, as the trip sees them.
    fn end_segments(
        &self,
        from: &Snapped,
        to: &Snapped,
        overlay: &ProfileOverlay,
    ) -> (Segment, Segment) {
        (
            overlay.partial(from.segment, self.segment(from)),
            overlay.partial(to.segment, self.segment(to)),
        )
    }

    fn dijkstra_with(
        &self,
        sources: &Seeds,
        targets: &Seeds,
        overlay: &ProfileOverlay,
    ) -> Option<super::dijkstra::Found> {
        let g = &self.base;
        super::dijkstra::shortest(g, sources, targets, |a| {
            overlay.through(g.out_seg[a], g.out_ms[a])
        })
    }

    /// What a path found on the old weights costs on the new ones (`None`: it cannot be
    /// travelled any more).
    fn cost_with(
        &self,
        f: &super::dijkstra::Found,
        sources: &Seeds,
        targets: &Seeds,
        overlay: &ProfileOverlay,
    ) -> Option<u32> {
        let mut total = seed_ms(sources, f.start)?;
        let mut v = f.start;
        for &s in &f.segments {
            let seg = &self.base.segments[s as usize];
            let (ms, next) = if seg.a == v {
                (seg.fwd_ms, seg.b)
            } else {
                (seg.bwd_ms, seg.a)
            };
            let ms = overlay.through(s, ms);
            if ms == NO_ARC {
                return None;
            }
            total = total.saturating_add(ms);
            v = next;
        }
        Some(total.saturating_add(seed_ms(targets, v)?))
    }

    /// The target's sweep on the changed weights, kept like the plain one.
    pub(super) fn sweep_to_with(&self, target: &Snapped, overlay: &ProfileOverlay) -> super::Sweep {
        if overlay.is_empty() {
            return self.sweep_to(target);
        }
        let key = (target.segment, target.frac.to_bits(), overlay.id());
        if let Some(d) = self.targets.get(key) {
            return d;
        }
        let base = self.sweep_to(target);
        let d = std::sync::Arc::new(self.repair(&base, target, overlay));
        self.targets.put(key, d.clone());
        d
    }

    /// The sweep `d0` (times to `target` on the old weights, by rank) repaired for the
    /// overlay's increases: see the module documentation.
    fn repair(&self, d0: &[u32], target: &Snapped, overlay: &ProfileOverlay) -> Vec<u32> {
        const INF: u32 = u32::MAX;
        let g = &self.base;
        let arcs = self.arc_lists();
        let rank = |v: u32| self.ch.rank(v) as usize;
        let old = |v: u32| d0[rank(v)];
        let seg_t = self.segment(target);
        let old_seeds = snap::target_seeds(seg_t, target.frac);
        let new_seeds = snap::target_seeds(&overlay.partial(target.segment, seg_t), target.frac);

        // Which vertices lose every shortest way they had, in increasing old time.
        let n = g.vertex_count();
        let mut affected = vec![false; n];
        let mut decided = vec![false; n];
        let mut queue: BinaryHeap<Reverse<(u32, u32)>> = BinaryHeap::new();
        for &s in self.changed_segments(overlay) {
            let seg = &g.segments[s as usize];
            for (u, v, w) in [(seg.a, seg.b, seg.fwd_ms), (seg.b, seg.a, seg.bwd_ms)] {
                if w != NO_ARC && old(u) != INF && w.saturating_add(old(v)) == old(u) {
                    queue.push(Reverse((old(u), u)));
                }
            }
        }
        for s in old_seeds.iter().flatten() {
            if s.ms == old(s.node) && seed_ms(&new_seeds, s.node) != Some(s.ms) {
                queue.push(Reverse((old(s.node), s.node)));
            }
        }
        let mut lost = Vec::new();
        while let Some(Reverse((du, u))) = queue.pop() {
            if std::mem::replace(&mut decided[u as usize], true) {
                continue;
            }
            let kept = seed_ms(&new_seeds, u) == Some(du)
                || g.out_arcs(u).any(|a| {
                    let (v, w) = (g.out_head[a], g.out_ms[a]);
                    !affected[v as usize]
                        && w.saturating_add(old(v)) == du
                        && overlay.through(g.out_seg[a], w) == w
                });
            if kept {
                continue;
            }
            affected[u as usize] = true;
            lost.push(u);
            for &(x, w, _) in arcs.ins(u) {
                if !decided[x as usize] && old(x) != INF && w.saturating_add(du) == old(x) {
                    queue.push(Reverse((old(x), x)));
                }
            }
        }

        // Settle them again: from their unaffected neighbours, then among themselves.
        let mut d = d0.to_vec();
        for &u in &lost {
            let mut best = seed_ms(&new_seeds, u).unwrap_or(INF);
            for a in g.out_arcs(u) {
                let v = g.out_head[a];
                if !affected[v as usize] {
                    let w = overlay.through(g.out_seg[a], g.out_ms[a]);
                    best = best.min(w.saturating_add(old(v)));
                }
            }
            d[rank(u)] = best;
            if best != INF {
                queue.push(Reverse((best, u)));
            }
        }
        while let Some(Reverse((du, u))) = queue.pop() {
            if du > d[rank(u)] {
                continue;
            }
            for &(x, w, s) in arcs.ins(u) {
                if affected[x as usize] {
                    let nd = overlay.through(s, w).saturating_add(du);
                    if nd < d[rank(x)] {
                        d[rank(x)] = nd;
                        queue.push(Reverse((nd, x)));
                    }
                }
            }
        }
        d
    }

    /// The overlay's segments that exist on this graph, in a fixed order.
    fn changed_segments<'a>(&self, overlay: &'a ProfileOverlay) -> Vec<&'a u32> {
        let mut v: Vec<&u32> = overlay
            .segments
            .keys()
            .filter(|&&s| (s as usize) < self.base.segments.len())
            .collect();
        v.sort_unstable();
        v
    }
}

/// A drawn line catches a long segment it runs along for at least this much of it.
const MIN_ALONG_M: f64 = 30.0;

/// Whether the segment `a`–`b` lies along the drawn line: half of it, or at least
/// [`MIN_ALONG_M`] of it (of 21 points spread along it), within `half` of the line, running
/// within 35° of the line's direction there. A stretch drawn over part of a long segment
/// catches it; a street crossing the line does not.
/// `pieces`: the indices of the line's pieces that may be near the segment (the others are
/// further than `half` from all of it).
fn along(a: [f64; 2], b: [f64; 2], line: &[[f64; 2]], pieces: &[usize], half: f64) -> bool {
    let at = |t: f64| [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
    // 21 points spread along the segment: the share of it within `half` of the line.
    const SAMPLES: usize = 21;
    let near: Vec<f64> = (0..SAMPLES)
        .map(|i| i as f64 / (SAMPLES - 1) as f64)
        .filter(|&t| distance_to_line(at(t), line, pieces).0 <= half)
        .collect();
    let len = (b[0] - a[0]).hypot(b[1] - a[1]);
    let covered = near.len() as f64 / SAMPLES as f64;
    if covered < 0.5 && covered * len < MIN_ALONG_M {
        return false;
    }
    let mid = near[near.len() / 2];
    let (_, piece) = distance_to_line(at(mid), line, pieces);
    let (u, v) = (
        [b[0] - a[0], b[1] - a[1]],
        [
            line[piece + 1][0] - line[piece][0],
            line[piece + 1][1] - line[piece][1],
        ],
    );
    let (lu, lv) = (u[0].hypot(u[1]), v[0].hypot(v[1]));
    if lu == 0.0 || lv == 0.0 {
        return true;
    }
    let sin = (u[0] * v[1] - u[1] * v[0]).abs() / (lu * lv);
    sin <= 35f64.to_radians().sin()
}

/// An axis-aligned box in the projection's metres.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    min: [f64; 2],
    max: [f64; 2],
}

impl Bounds {
    fn of(points: &[[f64; 2]]) -> Bounds {
        let mut b = Bounds {
            min: [f64::INFINITY; 2],
            max: [f64::NEG_INFINITY; 2],
        };
        for p in points {
            for (k, &x) in p.iter().enumerate() {
                b.min[k] = b.min[k].min(x);
                b.max[k] = b.max[k].max(x);
            }
        }
        b
    }

    fn widened(self, by: f64) -> Bounds {
        Bounds {
            min: [self.min[0] - by, self.min[1] - by],
            max: [self.max[0] + by, self.max[1] + by],
        }
    }

    fn meets(&self, o: &Bounds) -> bool {
        (0..2).all(|k| self.min[k] <= o.max[k] && o.min[k] <= self.max[k])
    }
}

/// The time of the cheapest of `seeds` at vertex `v`, if any seed is there.
fn seed_ms(seeds: &Seeds, v: u32) -> Option<u32> {
    seeds
        .iter()
        .flatten()
        .filter(|s| s.node == v)
        .map(|s| s.ms)
        .min()
}

/// Distance from a point to the given pieces of a polyline (piece `i` runs from point `i` to
/// `i + 1`), in the projection's metres, and the index of the nearest piece.
fn distance_to_line(p: [f64; 2], line: &[[f64; 2]], pieces: &[usize]) -> (f64, usize) {
    pieces
        .iter()
        .map(|&i| {
            let (a, b) = (line[i], line[i + 1]);
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            let len2 = dx * dx + dy * dy;
            let t = if len2 == 0.0 {
                0.0
            } else {
                (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0)
            };
            let (x, y) = (a[0] + t * dx - p[0], a[1] + t * dy - p[1]);
            ((x * x + y * y).sqrt(), i)
        })
        .fold(
            (f64::INFINITY, 0),
            |best, d| if d.0 < best.0 { d } else { best },
        )
}

/// Whether a point is inside a ring (even-odd rule).
fn inside(p: [f64; 2], ring: &[[f64; 2]]) -> bool {
    let mut inside = false;
    let mut j = ring.len() - 1;
    for i in 0..ring.len() {
        let (a, b) = (ring[i], ring[j]);
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0]
        {
            inside = !inside;
        }
        j = i;
    }
    inside
}
