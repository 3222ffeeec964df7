//! The segment graph of one profile: every OSM node on a usable way is a vertex, every pair of
//! consecutive nodes a segment with a length and a travel time per allowed direction. Only the
//! largest strongly connected component is kept. Arcs are stored in compressed sparse rows.

use super::osm::OsmWay;
use super::profile::{Profile, RoadConfig};
use crate::geo::{haversine_m, LatLon};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::HashMap;

/// "This direction of the segment may not be travelled."
pub(crate) const NO_ARC: u32 = u32::MAX;

/// One piece of road between two consecutive OSM nodes of a way, from `a` to `b` in the way's
/// node order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Segment {
    pub a: u32,
    pub b: u32,
    pub len_m: f64,
    /// The OSM way it belongs to (road closures may name ways).
    pub way: i64,
    /// Travel time a → b in whole ms, or [`NO_ARC`].
    pub fwd_ms: u32,
    /// Travel time b → a in whole ms, or [`NO_ARC`].
    pub bwd_ms: u32,
}

/// Counts of one profile's graph before and after keeping the largest strongly connected
/// component, and what the import had to skip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphStats {
    /// Ways this profile may use.
    pub ways: usize,
    /// Vertices, segments and directed arcs of the whole segment graph.
    pub vertices_all: usize,
    pub segments_all: usize,
    pub arcs_all: usize,
    /// The same counts inside the largest strongly connected component (what is routed on).
    pub vertices: usize,
    pub segments: usize,
    pub arcs: usize,
    /// Segments skipped because one of their nodes is not in the input (a clipped extract).
    pub segments_missing_node: usize,
    /// Segments skipped because a way repeats a node id back to back (zero length, no road).
    pub segments_repeated_node: usize,
}

/// One profile's graph before contraction.
#[derive(Debug, Clone)]
pub(crate) struct BaseGraph {
    pub profile: Profile,
    pub coords: Vec<LatLon>,
    pub osm_ids: Vec<i64>,
    pub segments: Vec<Segment>,
    /// Outgoing arcs of vertex `v` are `out_first[v]..out_first[v + 1]`.
    pub out_first: Vec<u32>,
    pub out_head: Vec<u32>,
    pub out_ms: Vec<u32>,
    pub out_seg: Vec<u32>,
    /// The highest length / time ratio of any arc (m/s), so that straight-line distance divided
    /// by it never exceeds a routed time.
    pub max_speed_mps: f64,
    pub stats: GraphStats,
}

/// Travel time in whole ms, rounded per segment, never 0 for a real segment: a zero weight
/// would let two distinct places be "the same place" to the router.
fn weight_ms(len_m: f64, speed_kmh: f64) -> u32 {
    let ms = (len_m / (speed_kmh / 3.6) * 1000.0).round();
    (ms.max(1.0)).min(f64::from(NO_ARC - 1)) as u32
}

impl BaseGraph {
    pub(crate) fn build(
        profile: Profile,
        nodes: &HashMap<i64, LatLon>,
        ways: &[OsmWay],
        config: &RoadConfig,
    ) -> BaseGraph {
        let mut stats = GraphStats::default();
        let mut index: HashMap<i64, u32> = HashMap::new();
        let mut osm_ids = Vec::new();
        let mut coords = Vec::new();
        let mut segments = Vec::new();
        for way in ways {
            let Some(rule) = config.rule(profile, &way.tags) else {
                continue;
            };
            stats.ways += 1;
            for pair in way.nodes.windows(2) {
                let (x, y) = (pair[0], pair[1]);
                let (Some(&px), Some(&py)) = (nodes.get(&x), nodes.get(&y)) else {
                    stats.segments_missing_node += 1;
                    continue;
                };
                if x == y {
                    stats.segments_repeated_node += 1;
                    continue;
                }
                let mut vertex = |id: i64, p: LatLon| {
                    *index.entry(id).or_insert_with(|| {
                        osm_ids.push(id);
                        coords.push(p);
                        (osm_ids.len() - 1) as u32
                    })
                };
                let (a, b) = (vertex(x, px), vertex(y, py));
                let len_m = haversine_m(px, py);
                let ms = weight_ms(len_m, rule.speed_kmh);
                segments.push(Segment {
                    a,
                    b,
                    len_m,
                    way: way.id,
                    fwd_ms: if rule.forward { ms } else { NO_ARC },
                    bwd_ms: if rule.backward { ms } else { NO_ARC },
                });
            }
        }
        stats.vertices_all = coords.len();
        stats.segments_all = segments.len();
        stats.arcs_all = count_arcs(&segments);

        let keep = largest_scc(coords.len(), &segments);
        let mut new_id = vec![NO_ARC; coords.len()];
        let mut kept_coords = Vec::new();
        let mut kept_ids = Vec::new();
        for (v, &k) in keep.iter().enumerate() {
            if k {
                new_id[v] = kept_coords.len() as u32;
                kept_coords.push(coords[v]);
                kept_ids.push(osm_ids[v]);
            }
        }
        let kept_segments: Vec<Segment> = segments
            .iter()
            .filter(|s| keep[s.a as usize] && keep[s.b as usize])
            .map(|s| Segment {
                a: new_id[s.a as usize],
                b: new_id[s.b as usize],
                ..*s
            })
            .collect();
        stats.vertices = kept_coords.len();
        stats.segments = kept_segments.len();
        stats.arcs = count_arcs(&kept_segments);

        let mut graph = BaseGraph {
            profile,
            coords: kept_coords,
            osm_ids: kept_ids,
            segments: kept_segments,
            out_first: Vec::new(),
            out_head: Vec::new(),
            out_ms: Vec::new(),
            out_seg: Vec::new(),
            max_speed_mps: 0.0,
            stats,
        };
        graph.fill_arcs();
        graph
    }

    /// Builds the compressed sparse rows of arcs from the segments.
    fn fill_arcs(&mut self) {
        let n = self.coords.len();
        let mut arcs: Vec<(u32, u32, u32, u32)> = Vec::new();
        let mut max_speed_mps: f64 = 0.0;
        for (i, s) in self.segments.iter().enumerate() {
            for (from, to, ms) in [(s.a, s.b, s.fwd_ms), (s.b, s.a, s.bwd_ms)] {
                if ms != NO_ARC {
                    arcs.push((from, to, ms, i as u32));
                    max_speed_mps = max_speed_mps.max(s.len_m * 1000.0 / f64::from(ms));
                }
            }
        }
        arcs.sort_unstable();
        let mut first = vec![0u32; n + 1];
        for &(from, ..) in &arcs {
            first[from as usize + 1] += 1;
        }
        for v in 0..n {
            first[v + 1] += first[v];
        }
        self.out_first = first;
        self.out_head = arcs.iter().map(|a| a.1).collect();
        self.out_ms = arcs.iter().map(|a| a.2).collect();
        self.out_seg = arcs.iter().map(|a| a.3).collect();
        self.max_speed_mps = max_speed_mps;
    }

    pub(crate) fn vertex_count(&self) -> usize {
        self.coords.len()
    }

    pub(crate) fn out_arcs(&self, v: u32) -> std::ops::Range<usize> {
        self.out_first[v as usize] as usize..self.out_first[v as usize + 1] as usize
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.coords.len() * size_of::<LatLon>()
            + self.osm_ids.len() * size_of::<i64>()
            + self.segments.len() * size_of::<Segment>()
            + (self.out_first.len() + self.out_head.len() + self.out_ms.len() + self.out_seg.len())
                * size_of::<u32>()
    }
}

fn count_arcs(segments: &[Segment]) -> usize {
    segments
        .iter()
        .map(|s| usize::from(s.fwd_ms != NO_ARC) + usize::from(s.bwd_ms != NO_ARC))
        .sum()
}

/// Which vertices belong to the largest strongly connected component (ties: the component
/// holding the lowest vertex id, so the choice is deterministic).
fn largest_scc(n: usize, segments: &[Segment]) -> Vec<bool> {
    let mut g: DiGraph<(), ()> = DiGraph::with_capacity(n, segments.len() * 2);
    for _ in 0..n {
        g.add_node(());
    }
    for s in segments {
        let (a, b) = (NodeIndex::new(s.a as usize), NodeIndex::new(s.b as usize));
        if s.fwd_ms != NO_ARC {
            g.add_edge(a, b, ());
        }
        if s.bwd_ms != NO_ARC {
            g.add_edge(b, a, ());
        }
    }
    let best = petgraph::algo::kosaraju_scc(&g).into_iter().max_by(|x, y| {
        let min_x = x.iter().map(|v| v.index()).min();
        let min_y = y.iter().map(|v| v.index()).min();
        x.len().cmp(&y.len()).then(min_y.cmp(&min_x))
    });
    let mut keep = vec![false; n];
    for v in best.unwrap_or_default() {
        keep[v.index()] = true;
    }
    keep
}
