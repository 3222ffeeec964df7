//! Snapping: any position to the nearest point of a kept road segment (an R-tree over the
//! segments in projected metres, not only over the nodes), and the costs of getting from that
//! point onto the graph's vertices and back off them.

use super::graph::{BaseGraph, Segment, NO_ARC};
use super::profile::Profile;
use crate::geo::{haversine_m, GeoError, LatLon, Projection};
use rstar::primitives::{GeomWithData, Line};
use rstar::RTree;

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

/// The R-tree of one profile's kept segments.
#[derive(Debug, Clone)]
pub(crate) struct SnapIndex {
    tree: RTree<SegmentLine>,
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
            .collect();
        SnapIndex {
            tree: RTree::bulk_load(lines),
            projection,
            limit_m,
        }
    }

    pub(crate) fn snap(&self, graph: &BaseGraph, p: LatLon) -> Result<Snapped, SnapError> {
        let p = p.validate()?;
        let xy = self.projection.to_xy(p);
        let nearest = self
            .tree
            .nearest_neighbor(&xy)
            .ok_or(SnapError::NoRoads(graph.profile))?;
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
