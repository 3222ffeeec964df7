//! The road layer: OSM import, travel profiles, the graph, snapping and routing.
//!
//! Reading order: [`profile`] (what a car or a walker may use), `osm` (elements from a PBF
//! reader), `graph` (the segment graph, largest SCC), `snap` (R-tree over segments),
//! `dijkstra` (the oracle), `ch` (contraction hierarchies: the bidirectional search, the
//! upward search spaces that [`ProfileGraph::time`] keeps and merges, and the many-to-one
//! sweep).
//!
//! Architecture invariant: routing is exact. Every time [`ProfileGraph::route`],
//! [`ProfileGraph::time`] and [`ProfileGraph::times_to`] return equals plain Dijkstra on the
//! same weights ([`ProfileGraph::route_dijkstra`]).

mod ch;
mod closure;
mod dijkstra;
mod field;
mod graph;
mod landmarks;
mod osm;
mod outline;
pub mod profile;
mod snap;

pub use closure::{
    ClosureArea, Effect, ProfileOverlay, RoadOverlay, DEFAULT_LINE_WIDTH_M, MAX_AREA_POINTS,
    MAX_LINE_WIDTH_M,
};
pub use field::{FieldTarget, Reach, SourceField, MAX_SOURCE_ID};
pub use graph::GraphStats;
pub use osm::{OsmNode, OsmWay};
pub use outline::{LineClass, RoadLine, MAIN_ROAD_KMH};
pub use profile::{Profile, RoadConfig, UnknownProfile};
pub use snap::{SnapError, Snapped};

use crate::geo::{LatLon, Projection};
use graph::BaseGraph;
use snap::SnapIndex;
use std::collections::HashMap;
use std::io::Read;

/// Why a road network could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoadError {
    #[error("not a readable OSM PBF file: {0}")]
    Pbf(String),
    #[error("the map has no roads usable by car or on foot ({nodes} nodes and {highway_ways} highway ways read)")]
    NoRoads { nodes: usize, highway_ways: usize },
    #[error("invalid road configuration: {0}")]
    BadConfig(String),
}

/// A route between two snapped points.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub duration_ms: u64,
    pub distance_m: f64,
    /// From the snapped source to the snapped target, through every vertex on the way.
    pub path: Vec<LatLon>,
}

/// What the import read and kept, per profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Nodes in the input with a valid position.
    pub nodes: usize,
    /// Nodes in the input whose position is not a valid WGS84 position (treated as missing).
    pub nodes_invalid: usize,
    /// Ways in the input with a `highway` tag.
    pub highway_ways: usize,
    pub car: GraphStats,
    pub foot: GraphStats,
}

/// The road graph of one profile, immutable once built: snapping and exact routing.
#[derive(Debug, Clone)]
pub struct ProfileGraph {
    base: BaseGraph,
    snap: SnapIndex,
    ch: ch::Ch,
    /// Times from and to a few far-apart vertices, for lower bounds ([`Self::time_lower_bound`]).
    landmarks: landmarks::Landmarks,
    targets: TargetCache,
    spaces: SpaceCache,
    /// Every vertex's arcs both ways as triples, built the first time a [`SourceField`] or
    /// a closure repair needs them (about 24 bytes per arc).
    arc_lists: std::sync::OnceLock<field::ArcLists>,
    /// Every vertex's forward and backward space, once [`Self::warm_vertex_spaces`] has
    /// searched them all; until then (or on a map too large for it) they are searched on
    /// demand and kept in `spaces`.
    vertex_spaces: std::sync::OnceLock<VertexSpaces>,
}

/// Every vertex's upward spaces ([`ch::Ch::space`] from the vertex at no offset), forward
/// (a trip leaving it) and backward (a trip reaching it).
#[derive(Debug, Clone)]
struct VertexSpaces {
    forward: SpaceTable,
    backward: SpaceTable,
}

/// One space per vertex, flat: vertex `v`'s is `pairs[first[v]..first[v + 1]]`.
#[derive(Debug, Clone, Default)]
struct SpaceTable {
    first: Vec<u32>,
    pairs: Vec<(u32, u32)>,
}

impl SpaceTable {
    fn of(&self, v: u32) -> &[(u32, u32)] {
        &self.pairs[self.first[v as usize] as usize..self.first[v as usize + 1] as usize]
    }

    fn memory_bytes(&self) -> usize {
        self.first.len() * std::mem::size_of::<u32>()
            + self.pairs.len() * std::mem::size_of::<(u32, u32)>()
    }
}

/// [`ProfileGraph::warm_vertex_spaces`] gives up past this many `(rank, ms)` pairs, per
/// profile, both directions together (8 bytes each: 256 MB). Porto Alegre's foot graph
/// holds 2.35 M each way (37,327 vertices, about 260 ms to search one way), its car graph
/// 1.2 M.
const VERTEX_SPACES_MAX_PAIRS: usize = 32 << 20;

/// The many-to-one sweeps of the most recently asked targets (incident positions), so that
/// ranking the same incident again (every joint-assignment round of a surge re-ranks the
/// waiting ones) reads its travel times instead of sweeping again. Ranking sweeps only while
/// a closure holds or for a call with more sources than search spaces are used for (see
/// `RoadTimes::times_from`). Exact times, keyed by the exact snapped target: a hit returns
/// what a fresh sweep would, so it changes no decision.
#[derive(Default)]
struct TargetCache {
    /// `(segment, frac bits, overlay id)` → per-rank times, most recently used last.
    entries: std::sync::Mutex<Vec<(TargetKey, Sweep)>>,
}

/// A target as `(segment, frac bits)`: the exact snapped position; and the id of the overlay
/// its times were repaired for (0: none).
type TargetKey = (u32, u64, u64);
/// One many-to-one sweep: the time from every vertex (by rank) to the target.
type Sweep = std::sync::Arc<Vec<u32>>;

/// Targets kept per profile (one `u32` per vertex each: about 0.1–0.3 MB on Porto Alegre).
const TARGET_CACHE_ENTRIES: usize = 48;

impl TargetCache {
    fn get(&self, key: TargetKey) -> Option<Sweep> {
        let mut v = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let i = v.iter().position(|(k, _)| *k == key)?;
        let hit = v.remove(i);
        let dist = hit.1.clone();
        v.push(hit);
        Some(dist)
    }

    fn put(&self, key: TargetKey, dist: Sweep) {
        let mut v = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        v.retain(|(k, _)| *k != key);
        if v.len() >= TARGET_CACHE_ENTRIES {
            v.remove(0);
        }
        v.push((key, dist));
    }
}

impl Clone for TargetCache {
    /// A clone starts empty (the cache is derived, never state).
    fn clone(&self) -> Self {
        TargetCache::default()
    }
}

impl std::fmt::Debug for TargetCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.entries.lock().map(|v| v.len()).unwrap_or(0);
        f.debug_struct("TargetCache").field("entries", &n).finish()
    }
}

/// Upward search spaces already searched ([`ProfileGraph::time`]): a vertex's forward
/// space answers for every responder whose segment it ends and every incident they are
/// ranked for, and an incident's backward space for every responder ranked for it. Exact,
/// keyed by the vertex or the incident's exact snapped point on a graph that never changes
/// (closures go through other paths), so a hit is what the search would find.
///
/// Two generations, so that filling up never drops everything at once: new spaces go into
/// the current one; when it holds [`SPACE_GENERATION_PAIRS`] pairs it becomes the previous
/// one (the previous is dropped) and a new one starts; a space found only in the previous
/// one moves to the current. Spaces in use keep being found; those not asked for a whole
/// generation go.
#[derive(Default)]
struct SpaceCache {
    entries: std::sync::Mutex<SpaceMaps>,
}

#[derive(Default)]
struct SpaceMaps {
    current: crate::ids::FastMap<SpaceKey, Space>,
    previous: crate::ids::FastMap<SpaceKey, Space>,
    /// `(rank, ms)` pairs held in the current generation.
    pairs: usize,
}

/// Which space: a target's backward space by its exact snapped point, or a vertex's
/// forward space (a source's are its seeds' vertices').
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SpaceKey {
    /// `(segment, frac bits)`.
    Target(u32, u64),
    Vertex(u32),
}
type Space = std::sync::Arc<[(u32, u32)]>;

/// `(rank, ms)` pairs per generation (8 bytes each, plus about 60 bytes of key, map slot
/// and `Arc` per space: about 10 MB per generation on Porto Alegre, where a foot space holds
/// 64 pairs at the median and a car space 41; so at most about 20 MB per profile, some
/// 16,000 foot or 25,000 car spaces per generation).
const SPACE_GENERATION_PAIRS: usize = 1 << 20;

impl SpaceCache {
    fn get_or(&self, key: SpaceKey, search: impl FnOnce() -> Vec<(u32, u32)>) -> Space {
        {
            let mut m = self.lock();
            if let Some(s) = m.current.get(&key) {
                return s.clone();
            }
            if let Some(s) = m.previous.remove(&key) {
                m.insert(key, s.clone());
                return s;
            }
        }
        let space: Space = search().into();
        self.lock().insert(key, space.clone());
        space
    }

    /// Whether `key`'s space is kept, without moving it between generations.
    #[cfg(test)]
    fn holds(&self, key: SpaceKey) -> bool {
        let m = self.lock();
        m.current.contains_key(&key) || m.previous.contains_key(&key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SpaceMaps> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SpaceMaps {
    fn insert(&mut self, key: SpaceKey, space: Space) {
        if self.pairs + space.len() > SPACE_GENERATION_PAIRS {
            self.previous = std::mem::take(&mut self.current);
            self.pairs = 0;
        }
        self.pairs += space.len();
        if let Some(old) = self.current.insert(key, space) {
            self.pairs -= old.len();
        }
    }
}

impl Clone for SpaceCache {
    /// A clone starts empty (the cache is derived, never state).
    fn clone(&self) -> Self {
        SpaceCache::default()
    }
}

impl std::fmt::Debug for SpaceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.lock();
        f.debug_struct("SpaceCache")
            .field("current", &m.current.len())
            .field("previous", &m.previous.len())
            .field("pairs", &m.pairs)
            .finish()
    }
}

/// Both profiles' graphs of one map, immutable once built; share it behind an `Arc`.
#[derive(Debug, Clone)]
pub struct RoadNetwork {
    car: ProfileGraph,
    foot: ProfileGraph,
    projection: Projection,
    stats: ImportStats,
}

/// Both profiles' segment graphs, imported but not yet prepared for fast routing. Split from
/// [`RoadNetwork`] so that callers can time the two phases separately.
#[derive(Debug, Clone)]
pub struct ImportedRoads {
    car: BaseGraph,
    foot: BaseGraph,
    projection: Projection,
    stats: ImportStats,
    snap_limit_m: f64,
}

impl ImportedRoads {
    /// Reads a `.osm.pbf` stream and builds both profiles' segment graphs.
    pub fn from_pbf<R: Read + Send>(
        reader: R,
        config: &RoadConfig,
    ) -> Result<ImportedRoads, RoadError> {
        check_config(config)?;
        let (nodes, ways) = osm::read_pbf(reader)?;
        ImportedRoads::from_elements(&nodes, &ways, config)
    }

    /// Builds both profiles' segment graphs from elements already in memory. A way that refers
    /// to a node missing from `nodes` loses the segments touching that node and keeps the rest
    /// (counted in [`GraphStats::segments_missing_node`]).
    pub fn from_elements(
        nodes: &[OsmNode],
        ways: &[OsmWay],
        config: &RoadConfig,
    ) -> Result<ImportedRoads, RoadError> {
        check_config(config)?;
        let mut positions = HashMap::with_capacity(nodes.len());
        let mut nodes_invalid = 0;
        for n in nodes {
            match LatLon::new(n.lat, n.lon) {
                Ok(p) => {
                    positions.insert(n.id, p);
                }
                Err(_) => nodes_invalid += 1,
            }
        }
        let highway_ways = ways
            .iter()
            .filter(|w| w.tags.iter().any(|(k, _)| k == "highway"))
            .count();
        let no_roads = RoadError::NoRoads {
            nodes: positions.len(),
            highway_ways,
        };
        let car = BaseGraph::build(Profile::Car, &positions, ways, config);
        let foot = BaseGraph::build(Profile::Foot, &positions, ways, config);
        if car.segments.is_empty() && foot.segments.is_empty() {
            return Err(no_roads);
        }
        // The projection is centred on the roads, where its error is smallest.
        let (mut lat0, mut lat1, mut lon0, mut lon1) = (90.0f64, -90.0f64, 180.0f64, -180.0f64);
        for p in car.coords.iter().chain(&foot.coords) {
            lat0 = lat0.min(p.lat);
            lat1 = lat1.max(p.lat);
            lon0 = lon0.min(p.lon);
            lon1 = lon1.max(p.lon);
        }
        let projection = Projection::new(LatLon {
            lat: (lat0 + lat1) / 2.0,
            lon: (lon0 + lon1) / 2.0,
        });
        let stats = ImportStats {
            nodes: positions.len(),
            nodes_invalid,
            highway_ways,
            car: car.stats,
            foot: foot.stats,
        };
        Ok(ImportedRoads {
            car,
            foot,
            projection,
            stats,
            snap_limit_m: config.snap_limit_m,
        })
    }

    pub fn stats(&self) -> &ImportStats {
        &self.stats
    }

    /// Builds the snapping indexes and the fast-routing structures of both profiles.
    /// The two profiles are prepared at once, one on another thread: they share nothing, and
    /// a restart waits for the slower alone.
    pub fn prepare(self) -> RoadNetwork {
        let ImportedRoads {
            car,
            foot,
            projection,
            snap_limit_m,
            stats,
        } = self;
        let (car, foot) = std::thread::scope(|s| {
            let car = s.spawn(move || ProfileGraph::prepare(car, projection, snap_limit_m));
            let foot = ProfileGraph::prepare(foot, projection, snap_limit_m);
            let car = car.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            (car, foot)
        });
        RoadNetwork {
            car,
            foot,
            projection,
            stats,
        }
    }

    /// Prepares one profile only (a tool that needs one profile need not wait for both).
    pub fn prepare_profile(self, p: Profile) -> ProfileGraph {
        let base = match p {
            Profile::Car => self.car,
            Profile::Foot => self.foot,
        };
        ProfileGraph::prepare(base, self.projection, self.snap_limit_m)
    }
}

fn check_config(config: &RoadConfig) -> Result<(), RoadError> {
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if let Some((class, kmh)) = config.car_class_kmh.iter().find(|(_, &k)| !positive(k)) {
        return Err(RoadError::BadConfig(format!(
            "car speed for {class} is {kmh} km/h; it must be positive"
        )));
    }
    if !positive(config.foot_kmh) || !positive(config.steps_factor) {
        return Err(RoadError::BadConfig(format!(
            "foot_kmh ({}) and steps_factor ({}) must be positive",
            config.foot_kmh, config.steps_factor
        )));
    }
    if config.snap_limit_m.is_nan() || config.snap_limit_m < 0.0 {
        return Err(RoadError::BadConfig(format!(
            "snap_limit_m ({}) must be a non-negative number",
            config.snap_limit_m
        )));
    }
    Ok(())
}

impl RoadNetwork {
    /// Reads a `.osm.pbf` stream and builds both profiles, ready to route.
    pub fn from_pbf<R: Read + Send>(
        reader: R,
        config: &RoadConfig,
    ) -> Result<RoadNetwork, RoadError> {
        Ok(ImportedRoads::from_pbf(reader, config)?.prepare())
    }

    /// Builds both profiles from elements in memory (small fixtures, tests).
    pub fn from_elements(
        nodes: &[OsmNode],
        ways: &[OsmWay],
        config: &RoadConfig,
    ) -> Result<RoadNetwork, RoadError> {
        Ok(ImportedRoads::from_elements(nodes, ways, config)?.prepare())
    }

    /// [`ProfileGraph::warm_vertex_spaces`] for both profiles, foot first (the larger, and
    /// the one ranking asks most); whether both are kept.
    pub fn warm_vertex_spaces(&self) -> bool {
        let foot = self.foot.warm_vertex_spaces();
        self.car.warm_vertex_spaces() && foot
    }

    pub fn profile(&self, p: Profile) -> &ProfileGraph {
        match p {
            Profile::Car => &self.car,
            Profile::Foot => &self.foot,
        }
    }

    /// The projection the R-trees use (centred on the map's roads).
    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    pub fn stats(&self) -> &ImportStats {
        &self.stats
    }

    /// The kept roads of both profiles as drawable polylines (for a map on a screen).
    pub fn outline(&self) -> Vec<RoadLine> {
        outline::outline(&self.car.base, &self.foot.base)
    }
}

impl ProfileGraph {
    fn prepare(base: BaseGraph, projection: Projection, snap_limit_m: f64) -> ProfileGraph {
        ProfileGraph {
            snap: SnapIndex::new(&base, projection, snap_limit_m),
            ch: ch::Ch::build(&base),
            landmarks: landmarks::Landmarks::build(&base),
            base,
            targets: TargetCache::default(),
            spaces: SpaceCache::default(),
            arc_lists: std::sync::OnceLock::new(),
            vertex_spaces: std::sync::OnceLock::new(),
        }
    }

    /// Searches every vertex's forward and backward space once and keeps them all, so that
    /// no travel time asked afterwards searches one: a responder's seed vertex never asked
    /// before, and every new incident, each cost a search on the engine's thread. Takes
    /// about 7 µs a vertex each way; the server runs it on a thread of its own right after
    /// the map is read, and times asked meanwhile search on demand, as before. The same
    /// times either way. Returns whether they are kept: not past
    /// [`VERTEX_SPACES_MAX_PAIRS`] (a very large map), where on-demand searches serve alone.
    pub fn warm_vertex_spaces(&self) -> bool {
        if self.vertex_spaces.get().is_some() {
            return true;
        }
        let n = self.base.vertex_count() as u32;
        let mut tables = [SpaceTable::default(), SpaceTable::default()];
        let mut held = 0;
        for (t, forward) in tables.iter_mut().zip([true, false]) {
            t.first.reserve(n as usize + 1);
            t.first.push(0);
            for v in 0..n {
                t.pairs.extend(self.search_vertex_space(v, forward));
                if held + t.pairs.len() > VERTEX_SPACES_MAX_PAIRS {
                    return false;
                }
                t.first.push(t.pairs.len() as u32);
            }
            t.pairs.shrink_to_fit();
            held += t.pairs.len();
        }
        let [forward, backward] = tables;
        let _ = self.vertex_spaces.set(VertexSpaces { forward, backward });
        true
    }

    /// Which profile this graph is for.
    pub fn kind(&self) -> Profile {
        self.base.profile
    }

    /// Every arc of the routed graph as `(tail vertex, head vertex, ms)`, for building an
    /// independent oracle (the tests and benchmarks use petgraph's Dijkstra on it).
    pub fn arcs(&self) -> Vec<(usize, usize, u32)> {
        (0..self.base.vertex_count() as u32)
            .flat_map(|v| {
                self.base.out_arcs(v).map(move |a| {
                    (
                        v as usize,
                        self.base.out_head[a] as usize,
                        self.base.out_ms[a],
                    )
                })
            })
            .collect()
    }

    /// The nearest point on a kept road segment, or an error if it is further than the snap
    /// limit.
    pub fn snap(&self, p: LatLon) -> Result<Snapped, SnapError> {
        self.snap.snap(&self.base, p)
    }

    /// The fastest route, or `None` if the target cannot be reached.
    pub fn route(&self, from: &Snapped, to: &Snapped) -> Option<Route> {
        if !self.owns(from) || !self.owns(to) {
            return None;
        }
        let (fs, ts) = (self.segment(from), self.segment(to));
        let found = self.ch.shortest(
            &snap::source_seeds(fs, from.frac),
            &snap::target_seeds(ts, to.frac),
        );
        self.assemble(from, to, fs, found)
    }

    /// The duration of [`Self::route`] alone, in ms, with no path built: what ranking asks
    /// of a point-to-point query. Answered from the two ends' upward search spaces, each
    /// kept once searched ([`ch::Ch::space`], [`SpaceCache`]): the spaces of the vertices a
    /// responder leaves by serve every incident they are ranked for, wherever along that
    /// segment their phone next reports them, and an incident's every responder ranked for
    /// it, so a time is mostly a merge or two of lists of a few dozen entries (no search, no
    /// sweep).
    /// Equal to the route's time and to Dijkstra (the oracle tests).
    pub fn time(&self, from: &Snapped, to: &Snapped) -> Option<u64> {
        self.times(std::slice::from_ref(from), to)[0].map(u64::from)
    }

    /// [`Self::time`] from each of `from` to `to`, the target's space looked up once, not
    /// once per source (a lookup is a lock, a hash and a reference count).
    pub fn times(&self, from: &[Snapped], to: &Snapped) -> Vec<Option<u32>> {
        if !self.owns(to) {
            return vec![None; from.len()];
        }
        let down = self.target_space(to);
        from.iter()
            .map(|from| self.time_in(from, to, &down))
            .collect()
    }

    fn time_in(&self, from: &Snapped, to: &Snapped, down: &[(u32, u32)]) -> Option<u32> {
        if !self.owns(from) {
            return None;
        }
        // The source's seeds one by one, each vertex's own space: a phone's position moves
        // a little with every ping (and GPS noise), which would make a space keyed by the
        // exact point new each time; its segment's vertices stay the same. Exact: from
        // several seeds the time is the least of each seed's offset plus its own time.
        let table = self.vertex_spaces.get().map(|t| &t.forward);
        let found = snap::source_seeds(self.segment(from), from.frac)
            .iter()
            .flatten()
            .filter_map(|seed| {
                let ms = match table {
                    Some(t) => ch::space_ms(t.of(seed.node), down),
                    None => ch::space_ms(&self.vertex_space(seed.node), down),
                };
                // No time at all past `u32::MAX` ms, as the many-seed search saturated to
                // "unreachable".
                ms.and_then(|ms| ms.checked_add(seed.ms))
                    .filter(|&ms| ms != u32::MAX)
            })
            .min();
        match (Self::direct_ms(from, to, self.segment(from)), found) {
            (Some(ms), found) if found.is_none_or(|f| ms <= f) => Some(ms),
            (_, found) => found,
        }
    }

    /// A lower bound on [`Self::time`] in ms, from the landmarks' times (`landmarks.rs`): a
    /// few subtractions per pair of the two ends' seeds, no search. `u64::MAX` where `time`
    /// finds no route for want of a way on or off the graph; 0 for two points on one
    /// segment. On the graph's own weights, so still a bound with closures laid (they only
    /// slow travel); the engine asks it only with none, as it reads the kept spaces only then.
    pub fn time_lower_bound(&self, from: &Snapped, to: &Snapped) -> u64 {
        if !self.owns(from) || !self.owns(to) {
            return u64::MAX;
        }
        if from.segment == to.segment {
            return 0;
        }
        let sources = snap::source_seeds(self.segment(from), from.frac);
        let targets = snap::target_seeds(self.segment(to), to.frac);
        let mut best = u64::MAX;
        for s in sources.iter().flatten() {
            for t in targets.iter().flatten() {
                let lb =
                    u64::from(s.ms) + self.landmarks.lower_bound(s.node, t.node) + u64::from(t.ms);
                best = best.min(lb);
            }
        }
        best
    }

    /// A target's backward space, keyed by the exact snapped point (incidents do not move).
    /// With every vertex's spaces kept, the least over the target's seeds of the seed's
    /// offset plus its vertex's backward space, merged by rank with no search: exact as the
    /// search from all seeds at once is (the highest vertex of a shortest path is in the
    /// space of the seed that path ends at, with its exact time, and every entry is the
    /// length of a real path).
    fn target_space(&self, s: &Snapped) -> Space {
        let seeds = || snap::target_seeds(self.segment(s), s.frac);
        if let Some(t) = self.vertex_spaces.get() {
            let mut merged: Vec<(u32, u32)> = seeds()
                .iter()
                .flatten()
                .flat_map(|seed| {
                    t.backward
                        .of(seed.node)
                        .iter()
                        .map(|&(r, ms)| (r, ms.saturating_add(seed.ms)))
                })
                .collect();
            // By rank, then time: the first of each rank is its least.
            merged.sort_unstable();
            merged.dedup_by_key(|e| e.0);
            return merged.into();
        }
        self.spaces
            .get_or(SpaceKey::Target(s.segment, s.frac.to_bits()), || {
                self.ch.space(&seeds(), false)
            })
    }

    /// Whether `node`'s forward space is kept (tests: which spaces `time` keeps).
    #[cfg(test)]
    pub(crate) fn keeps_vertex_space(&self, node: u32) -> bool {
        self.vertex_spaces.get().is_some() || self.spaces.holds(SpaceKey::Vertex(node))
    }

    /// The forward space of one vertex (at no offset), keyed by the vertex.
    fn vertex_space(&self, node: u32) -> Space {
        self.spaces.get_or(SpaceKey::Vertex(node), || {
            self.search_vertex_space(node, true)
        })
    }

    /// The upward space of one vertex at no offset, forward or backward.
    fn search_vertex_space(&self, node: u32, forward: bool) -> Vec<(u32, u32)> {
        let seeds = [
            Some(snap::Seed {
                node,
                ms: 0,
                len_m: 0.0,
            }),
            None,
        ];
        self.ch.space(&seeds, forward)
    }

    /// Many-to-one travel times in ms (responders → incident), in the order of `sources`;
    /// `None` where there is no route. One backward search and one linear sweep over the
    /// hierarchy, whatever the number of sources.
    pub fn times_to(&self, sources: &[Snapped], target: &Snapped) -> Vec<Option<u32>> {
        if sources.is_empty() || !self.owns(target) {
            return vec![None; sources.len()];
        }
        let dist = self.sweep_to(target);
        self.times_from_sweep(sources, target, &dist, &ProfileOverlay::none())
    }

    /// Makes sure `target`'s many-to-one sweep is kept (see [`Self::times_to`]).
    pub fn prepare_sweep_to(&self, target: &Snapped) {
        if self.owns(target) {
            self.sweep_to(target);
        }
    }

    fn sweep_to(&self, target: &Snapped) -> Sweep {
        let key = (target.segment, target.frac.to_bits(), 0);
        if let Some(d) = self.targets.get(key) {
            return d;
        }
        let target_seeds = snap::target_seeds(self.segment(target), target.frac);
        let mut d = Vec::new();
        self.ch.distances_to(&target_seeds, &mut d);
        let d = std::sync::Arc::new(d);
        self.targets.put(key, d.clone());
        d
    }

    /// Whether [`Self::times_to`] would find `target`'s sweep already done (then it costs
    /// a lookup per source, cheaper than any point-to-point query).
    pub fn has_sweep_to(&self, target: &Snapped) -> bool {
        self.has_sweep_to_with(target, &ProfileOverlay::none())
    }

    /// [`Self::has_sweep_to`] for the times as `overlay` changes them.
    pub fn has_sweep_to_with(&self, target: &Snapped, overlay: &ProfileOverlay) -> bool {
        self.owns(target)
            && self
                .targets
                .get((target.segment, target.frac.to_bits(), overlay.id()))
                .is_some()
    }

    /// [`Self::prepare_sweep_to`] for the times as `overlay` changes them.
    pub fn prepare_sweep_to_with(&self, target: &Snapped, overlay: &ProfileOverlay) {
        if self.owns(target) {
            self.sweep_to_with(target, overlay);
        }
    }

    fn times_from_sweep(
        &self,
        sources: &[Snapped],
        target: &Snapped,
        dist: &[u32],
        overlay: &ProfileOverlay,
    ) -> Vec<Option<u32>> {
        sources
            .iter()
            .map(|s| {
                if !self.owns(s) {
                    return None;
                }
                let seg = &overlay.partial(s.segment, self.segment(s));
                let via_graph = snap::source_seeds(seg, s.frac)
                    .iter()
                    .flatten()
                    .map(|seed| {
                        seed.ms
                            .saturating_add(dist[self.ch.rank(seed.node) as usize])
                    })
                    .min()
                    .filter(|&ms| ms != u32::MAX);
                let along = overlay.whole(s.segment, self.segment(s));
                let direct = (s.segment == target.segment)
                    .then(|| snap::same_segment_ms(&along, s.frac, target.frac))
                    .flatten();
                match (via_graph, direct) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            })
            .collect()
    }

    /// Many-to-one by one plain Dijkstra per source: the oracle for [`Self::times_to`].
    pub fn times_to_dijkstra(&self, sources: &[Snapped], target: &Snapped) -> Vec<Option<u32>> {
        sources
            .iter()
            .map(|s| {
                self.route_dijkstra(s, target)
                    .map(|r| u32::try_from(r.duration_ms).unwrap_or(u32::MAX))
            })
            .collect()
    }

    /// The same route by plain Dijkstra: the oracle (tests, benchmarks).
    pub fn route_dijkstra(&self, from: &Snapped, to: &Snapped) -> Option<Route> {
        if !self.owns(from) || !self.owns(to) {
            return None;
        }
        let (fs, ts) = (self.segment(from), self.segment(to));
        let g = &self.base;
        let found = dijkstra::shortest(
            g,
            &snap::source_seeds(fs, from.frac),
            &snap::target_seeds(ts, to.frac),
            |a| g.out_ms[a],
        );
        self.assemble(from, to, fs, found)
    }

    /// The upper bound of speed on this graph (m/s): a straight-line distance divided by it
    /// never exceeds a routed time (up to the 1 ms rounding of the two partial segments).
    pub fn max_speed_mps(&self) -> f64 {
        self.base.max_speed_mps
    }

    pub fn stats(&self) -> &GraphStats {
        &self.base.stats
    }

    /// Bytes held by this graph's arrays (vertices, segments, arcs, R-tree leaves, hierarchy,
    /// and the arc lists of coverage fields and closure repairs once built).
    pub fn memory_bytes(&self) -> usize {
        self.base.memory_bytes()
            + self.snap.memory_bytes()
            + self.ch.memory_bytes()
            + self.landmarks.memory_bytes()
            + self
                .arc_lists
                .get()
                .map_or(0, field::ArcLists::memory_bytes)
            + self
                .vertex_spaces
                .get()
                .map_or(0, |t| t.forward.memory_bytes() + t.backward.memory_bytes())
    }

    /// Arcs of the contraction hierarchy (original arcs plus shortcuts, up and down).
    pub fn hierarchy_arc_count(&self) -> usize {
        self.ch.arc_count()
    }

    /// Vertices of the routed graph (the largest strongly connected component).
    pub fn vertex_count(&self) -> usize {
        self.base.vertex_count()
    }

    /// The position of a vertex of the routed graph (for sampling test and benchmark points).
    pub fn vertex(&self, v: usize) -> Option<LatLon> {
        self.base.coords.get(v).copied()
    }

    /// The vertices a target at `s` may be reached from (its segment's ends).
    pub fn target_vertices(&self, s: &Snapped) -> impl Iterator<Item = u32> {
        let ends = if self.owns(s) {
            let seg = self.segment(s);
            [seg.a, seg.b]
        } else {
            [u32::MAX; 2]
        };
        ends.into_iter().filter(|&v| v != u32::MAX)
    }

    /// The segment `s` stands on (an opaque number: equal for two points on the same one).
    pub fn segment_of(&self, s: &Snapped) -> u32 {
        s.segment
    }

    /// Every vertex's arcs both ways, one slice each (built on first use: fields and
    /// closure repairs read them).
    fn arc_lists(&self) -> &field::ArcLists {
        self.arc_lists
            .get_or_init(|| field::ArcLists::build(&self.base))
    }

    fn owns(&self, s: &Snapped) -> bool {
        debug_assert_eq!(
            s.profile, self.base.profile,
            "a point snapped on one profile's graph routed on another's"
        );
        s.profile == self.base.profile && (s.segment as usize) < self.base.segments.len()
    }

    fn segment(&self, s: &Snapped) -> &graph::Segment {
        &self.base.segments[s.segment as usize]
    }

    /// The time straight along the one segment `from` and `to` share (`from_seg`, as the trip
    /// sees it), if they share one and it may be driven that way.
    fn direct_ms(from: &Snapped, to: &Snapped, from_seg: &graph::Segment) -> Option<u32> {
        (from.segment == to.segment)
            .then(|| snap::same_segment_ms(from_seg, from.frac, to.frac))
            .flatten()
    }

    /// A route from a search result, or the direct way along one shared segment if shorter
    /// (`from_seg`: the segment `from` stands on, as the trip sees it).
    fn assemble(
        &self,
        from: &Snapped,
        to: &Snapped,
        from_seg: &graph::Segment,
        found: Option<dijkstra::Found>,
    ) -> Option<Route> {
        match (Self::direct_ms(from, to, from_seg), found) {
            (Some(ms), found) if found.as_ref().is_none_or(|f| ms <= f.ms) => Some(Route {
                duration_ms: u64::from(ms),
                distance_m: self.segment(from).len_m * (to.frac - from.frac).abs(),
                path: dedup(vec![from.point, to.point]),
            }),
            (_, Some(f)) => {
                let mut path = Vec::with_capacity(f.segments.len() + 3);
                path.push(from.point);
                let mut v = f.start;
                path.push(self.base.coords[v as usize]);
                let mut distance_m = f.source.len_m + f.target.len_m;
                for &s in &f.segments {
                    let seg = &self.base.segments[s as usize];
                    v = if seg.a == v { seg.b } else { seg.a };
                    path.push(self.base.coords[v as usize]);
                    distance_m += seg.len_m;
                }
                path.push(to.point);
                Some(Route {
                    duration_ms: u64::from(f.ms),
                    distance_m,
                    path: dedup(path),
                })
            }
            (_, None) => None,
        }
    }
}

fn dedup(mut path: Vec<LatLon>) -> Vec<LatLon> {
    path.dedup();
    path
}

#[cfg(test)]
mod closure_tests;
#[cfg(test)]
mod field_tests;
#[cfg(test)]
pub(crate) mod porto_alegre_tests;
#[cfg(test)]
mod tests;
