//! Snapping: any position to the nearest point of a kept road segment (an R-tree over the
//! segments in projected metres, not only over the nodes, with a uniform grid in front of it
//! that answers most positions with a few dozen distances), and the costs of getting from
//! that point onto the graph's vertices and back off them.

use super::graph::{BaseGraph, Segment, NO_ARC};
use super::profile::Profile;
use crate::geo::{haversine_m, GeoError, LatLon, Projection};
use rstar::primitives::{GeomWithData, Line};
use rstar::{PointDistance, RTree};

/// A position placed on the road graph of one profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapped {
    /// The point on the road.
    pub point: LatLon,
    /// How far the position was moved to reach the road (haversine, metres).
    pub moved_m: f64,
    pub(crate) profile: Profile,
    pub(crate) segment: u32,
    /// Where on the segment, from its `a` end (0.0) to its `b` end (1.0).
    pub(crate) frac: f64,
}

impl Snapped {
    /// The profile whose graph this point lies on; routing it on the other profile's graph
    /// finds no route.
    pub fn profile(&self) -> Profile {
        self.profile
    }
}

/// Why a position could not be placed on the roads.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SnapError {
    #[error("position {point} is {distance_m:.0} m from the nearest {profile} road, more than the {limit_m:.0} m limit")]
    TooFar {
        point: LatLon,
        profile: Profile,
        distance_m: f64,
        limit_m: f64,
    },
    #[error("the map has no {0} roads to snap to")]
    NoRoads(Profile),
    #[error("not a position: {0}")]
    BadPosition(#[from] GeoError),
}

type SegmentLine = GeomWithData<Line<[f64; 2]>, u32>;

/// The R-tree of one profile's kept segments, and the grid that answers first.
#[derive(Debug, Clone)]
pub(crate) struct SnapIndex {
    tree: RTree<SegmentLine>,
    grid: Option<SnapGrid>,
    projection: Projection,
    limit_m: f64,
}

impl SnapIndex {
    pub(crate) fn new(graph: &BaseGraph, projection: Projection, limit_m: f64) -> SnapIndex {
        let lines = graph
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let a = projection.to_xy(graph.coords[s.a as usize]);
                let b = projection.to_xy(graph.coords[s.b as usize]);
                GeomWithData::new(Line::new(a, b), i as u32)
            })
            .collect::<Vec<_>>();
        SnapIndex {
            grid: SnapGrid::new(&lines),
            tree: RTree::bulk_load(lines),
            projection,
            limit_m,
        }
    }

    /// The segment nearest to `xy`: the grid's answer where it has one, else the R-tree's
    /// (the same segment: the grid answers only when one segment alone is the nearest).
    fn nearest(&self, xy: [f64; 2]) -> Option<&SegmentLine> {
        match self.grid.as_ref().and_then(|g| g.nearest(xy)) {
            Some(found) => Some(found),
            None => self.tree.nearest_neighbor(&xy),
        }
    }

    pub(crate) fn snap(&self, graph: &BaseGraph, p: LatLon) -> Result<Snapped, SnapError> {
        let p = p.validate()?;
        let xy = self.projection.to_xy(p);
        let nearest = self.nearest(xy).ok_or(SnapError::NoRoads(graph.profile))?;
        let seg = &graph.segments[nearest.data as usize];
        let [ax, ay] = nearest.geom().from;
        let [bx, by] = nearest.geom().to;
        let (dx, dy) = (bx - ax, by - ay);
        let len2 = dx * dx + dy * dy;
        let mut frac = if len2 > 0.0 {
            (((xy[0] - ax) * dx + (xy[1] - ay) * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        // Within a millimetre of a vertex is on the vertex: from there every road out of it is
        // open, whatever this segment's direction (and rounding must not make 1.0 0.9999…).
        let len = len2.sqrt();
        if frac * len < 1e-3 {
            frac = 0.0;
        } else if (1.0 - frac) * len < 1e-3 {
            frac = 1.0;
        }
        let point = if frac == 0.0 {
            graph.coords[seg.a as usize]
        } else if frac == 1.0 {
            graph.coords[seg.b as usize]
        } else {
            self.projection.to_latlon([ax + frac * dx, ay + frac * dy])
        };
        let moved_m = haversine_m(p, point);
        if moved_m > self.limit_m {
            return Err(SnapError::TooFar {
                point: p,
                profile: graph.profile,
                distance_m: moved_m,
                limit_m: self.limit_m,
            });
        }
        Ok(Snapped {
            point,
            moved_m,
            profile: graph.profile,
            segment: nearest.data,
            frac,
        })
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        // The leaves dominate; inner nodes add roughly a sixth (default node size 6).
        self.tree.size() * std::mem::size_of::<SegmentLine>() * 7 / 6
            + self.grid.as_ref().map_or(0, SnapGrid::memory_bytes)
    }
}

/// Cells at most this many (the cell grows until the map fits; 4 bytes each, and the lines
/// listed in them).
const GRID_MAX_CELLS: usize = 1 << 22;
/// A cell's side, in metres, before the map's size is taken into account: about a typical
/// segment's length, so a position's own cell and the ring around it hold its nearest road.
const GRID_CELL_MIN_M: f64 = 25.0;
const GRID_CELL_MAX_M: f64 = 200.0;
/// Rings of cells searched around a position before the grid leaves it to the R-tree (a
/// position far from every road).
const GRID_MAX_RINGS: usize = 8;

/// The segments' lines listed by the square cells they pass through, copied into each (one
/// run of memory per cell). An R-tree's nearest-neighbour query visits a heap of nodes; a
/// position near a road here reads its own cell and the eight around it.
#[derive(Debug, Clone)]
struct SnapGrid {
    origin: [f64; 2],
    cell_m: f64,
    nx: usize,
    ny: usize,
    /// Cell `c`'s lines are `lines[starts[c]..starts[c + 1]]`; cells row by row.
    starts: Vec<u32>,
    lines: Vec<SegmentLine>,
}

impl SnapGrid {
    fn new(lines: &[SegmentLine]) -> Option<SnapGrid> {
        let (mut min, mut max) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for l in lines {
            for p in [l.geom().from, l.geom().to] {
                for i in 0..2 {
                    min[i] = min[i].min(p[i]);
                    max[i] = max[i].max(p[i]);
                }
            }
        }
        if lines.is_empty() || !(min[0].is_finite() && max[0].is_finite()) {
            return None;
        }
        let mut lens: Vec<f64> = lines.iter().map(|l| l.geom().length_2().sqrt()).collect();
        let mid = lens.len() / 2;
        let (_, median, _) = lens.select_nth_unstable_by(mid, f64::total_cmp);
        let mut cell_m = median.clamp(GRID_CELL_MIN_M, GRID_CELL_MAX_M);
        let (nx, ny) = loop {
            let nx = ((max[0] - min[0]) / cell_m) as usize + 1;
            let ny = ((max[1] - min[1]) / cell_m) as usize + 1;
            if nx.saturating_mul(ny) <= GRID_MAX_CELLS {
                break (nx, ny);
            }
            cell_m *= 2.0;
        };
        // A line is listed in every cell whose circumscribed circle (a little widened) it
        // comes within: every cell it crosses, and perhaps a neighbour (harmless).
        let reach2 = (cell_m * 0.75).powi(2);
        let cells_of = |l: &SegmentLine, visit: &mut dyn FnMut(usize)| {
            let (a, b) = (l.geom().from, l.geom().to);
            let cell = |v: f64, o: f64, n: usize| (((v - o) / cell_m) as usize).min(n - 1);
            let (x0, x1) = (
                cell(a[0].min(b[0]), min[0], nx),
                cell(a[0].max(b[0]), min[0], nx),
            );
            let (y0, y1) = (
                cell(a[1].min(b[1]), min[1], ny),
                cell(a[1].max(b[1]), min[1], ny),
            );
            for y in y0..=y1 {
                for x in x0..=x1 {
                    let centre = [
                        min[0] + (x as f64 + 0.5) * cell_m,
                        min[1] + (y as f64 + 0.5) * cell_m,
                    ];
                    if l.geom().distance_2(&centre) <= reach2 {
                        visit(y * nx + x);
                    }
                }
            }
        };
        let mut counts = vec![0u32; nx * ny + 1];
        for l in lines {
            cells_of(l, &mut |c| counts[c + 1] += 1);
        }
        for c in 1..counts.len() {
            counts[c] += counts[c - 1];
        }
        let starts = counts;
        let mut next: Vec<u32> = starts[..nx * ny].to_vec();
        let mut listed: Vec<Option<SegmentLine>> = vec![None; starts[nx * ny] as usize];
        for l in lines {
            cells_of(l, &mut |c| {
                listed[next[c] as usize] = Some(*l);
                next[c] += 1;
            });
        }
        Some(SnapGrid {
            origin: min,
            cell_m,
            nx,
            ny,
            starts,
            lines: listed
                .into_iter()
                .map(|l| l.expect("every slot filled"))
                .collect(),
        })
    }

    /// The one segment nearest to `xy`, or `None` to leave it to the R-tree: `xy` off the
    /// grid, no road within its rings, or two segments at exactly the least distance (a
    /// corner where roads meet), which the tree breaks as it always has.
    fn nearest(&self, xy: [f64; 2]) -> Option<&SegmentLine> {
        let fx = (xy[0] - self.origin[0]) / self.cell_m;
        let fy = (xy[1] - self.origin[1]) / self.cell_m;
        if !(fx >= 0.0 && fy >= 0.0 && fx < self.nx as f64 && fy < self.ny as f64) {
            return None;
        }
        let (cx, cy) = (fx as usize, fy as usize);
        // Anything outside the rings searched up to `r` is at least `r` cells and the way to
        // the position's own cell's nearest wall away (less a millimetre for rounding).
        let wall_m = (fx - cx as f64)
            .min(cx as f64 + 1.0 - fx)
            .min(fy - cy as f64)
            .min(cy as f64 + 1.0 - fy)
            * self.cell_m;
        let last_ring = cx.max(self.nx - 1 - cx).max(cy).max(self.ny - 1 - cy);
        // The nearest so far, and whether another segment is exactly as near.
        let mut best: Option<(&SegmentLine, f64)> = None;
        let mut tied = false;
        for r in 0..=GRID_MAX_RINGS.min(last_ring) {
            let (x0, x1) = (cx.saturating_sub(r), (cx + r).min(self.nx - 1));
            let (y0, y1) = (cy.saturating_sub(r), (cy + r).min(self.ny - 1));
            for y in y0..=y1 {
                let row = y * self.nx;
                if y + r == cy || y == cy + r {
                    (x0..=x1).for_each(|x| self.read_cell(row + x, xy, &mut best, &mut tied));
                } else {
                    // The ring's sides only: its inside was read by the rings before.
                    if cx >= r {
                        self.read_cell(row + cx - r, xy, &mut best, &mut tied);
                    }
                    if cx + r < self.nx {
                        self.read_cell(row + cx + r, xy, &mut best, &mut tied);
                    }
                }
            }
            let outside_m = r as f64 * self.cell_m + wall_m - 1e-3;
            let done = r == last_ring
                || best.is_some_and(|(_, bd2)| outside_m > 0.0 && bd2 < outside_m * outside_m);
            if done {
                return match (best, tied) {
                    (Some((l, _)), false) => Some(l),
                    _ => None,
                };
            }
        }
        None
    }

    /// Cell `c`'s lines measured from `xy` into the nearest so far (`best`), noting a second
    /// segment exactly as near (`tied`; the same segment listed in another cell is not one).
    fn read_cell<'a>(
        &'a self,
        c: usize,
        xy: [f64; 2],
        best: &mut Option<(&'a SegmentLine, f64)>,
        tied: &mut bool,
    ) {
        let run = self.starts[c] as usize..self.starts[c + 1] as usize;
        for l in &self.lines[run] {
            let d2 = l.geom().distance_2(&xy);
            match *best {
                Some((b, bd2)) if d2 > bd2 || (d2 == bd2 && b.data == l.data) => {}
                Some((_, bd2)) if d2 == bd2 => *tied = true,
                _ => {
                    *best = Some((l, d2));
                    *tied = false;
                }
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        self.starts.len() * 4 + self.lines.len() * std::mem::size_of::<SegmentLine>()
    }
}

/// A way onto (for a source) or off (for a target) the graph at a vertex, with its cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Seed {
    pub node: u32,
    pub ms: u32,
    pub len_m: f64,
}

/// The time of a fraction of a segment: rounded to whole ms, as the whole segment is.
fn part_ms(ms: u32, frac: f64) -> u32 {
    (f64::from(ms) * frac).round() as u32
}

/// At most two seeds: via the segment's `a` end and via its `b` end.
pub(crate) type Seeds = [Option<Seed>; 2];

/// The vertices a source on this segment reaches first. Standing exactly on a vertex reaches
/// it at no cost whatever the segment's direction.
pub(crate) fn source_seeds(seg: &Segment, frac: f64) -> Seeds {
    let to_a = if frac == 0.0 {
        Some(0)
    } else {
        (seg.bwd_ms != NO_ARC).then(|| part_ms(seg.bwd_ms, frac))
    };
    let to_b = if frac == 1.0 {
        Some(0)
    } else {
        (seg.fwd_ms != NO_ARC).then(|| part_ms(seg.fwd_ms, 1.0 - frac))
    };
    seeds(seg, frac, to_a, to_b)
}

/// The vertices from which a target on this segment is reached last.
pub(crate) fn target_seeds(seg: &Segment, frac: f64) -> Seeds {
    let from_a = if frac == 0.0 {
        Some(0)
    } else {
        (seg.fwd_ms != NO_ARC).then(|| part_ms(seg.fwd_ms, frac))
    };
    let from_b = if frac == 1.0 {
        Some(0)
    } else {
        (seg.bwd_ms != NO_ARC).then(|| part_ms(seg.bwd_ms, 1.0 - frac))
    };
    seeds(seg, frac, from_a, from_b)
}

fn seeds(seg: &Segment, frac: f64, via_a: Option<u32>, via_b: Option<u32>) -> Seeds {
    // On a vertex, the other end is reached through the graph's own arc (the same time):
    // a seed along the whole segment would let a trip cross a closed one (`closure.rs`).
    let (via_a, via_b) = match frac {
        0.0 => (via_a, None),
        1.0 => (None, via_b),
        _ => (via_a, via_b),
    };
    [
        via_a.map(|ms| Seed {
            node: seg.a,
            ms,
            len_m: seg.len_m * frac,
        }),
        via_b.map(|ms| Seed {
            node: seg.b,
            ms,
            len_m: seg.len_m * (1.0 - frac),
        }),
    ]
}

/// Source and target on the same segment: the time along it without touching a vertex, if
/// the segment's direction allows.
pub(crate) fn same_segment_ms(seg: &Segment, from: f64, to: f64) -> Option<u32> {
    if from == to {
        Some(0)
    } else if to > from {
        (seg.fwd_ms != NO_ARC).then(|| part_ms(seg.fwd_ms, to - from))
    } else {
        (seg.bwd_ms != NO_ARC).then(|| part_ms(seg.bwd_ms, from - to))
    }
}

#[cfg(test)]
impl SnapIndex {
    /// The segment the grid names for `p` (`None`: it leaves `p` to the R-tree), and the one
    /// the R-tree alone finds, for the tests that hold the one to the other.
    pub(crate) fn grid_and_tree(&self, p: LatLon) -> (Option<u32>, Option<u32>) {
        let xy = self.projection.to_xy(p);
        (
            self.grid
                .as_ref()
                .and_then(|g| g.nearest(xy))
                .map(|l| l.data),
            self.tree.nearest_neighbor(&xy).map(|l| l.data),
        )
    }
}
