//! Live coverage: for every elder on the roster, the best road ETA from an available community
//! responder (volunteers and grid workers, each on their own travel mode and speed) and from
//! the nearest available ambulance; from those, the share of elders inside the two promises,
//! a community responder at the door within 3 minutes and any help within the 15-minute
//! service circle, overall, per care level, per grid and per hexagon.
//!
//! The ETAs are the dispatch ranking's own (DESIGN §4): the same snapping, the same road
//! times on the responder's profile, the same off-road allowance, the same speed factor. They
//! are kept by one [`SourceField`] per group of responders who move alike (kind, profile,
//! speed): a responder who moves, comes on duty or goes off it changes only their own cell
//! of their group's field, and only the elders at the vertices that changed are read again,
//! from that group only (each group keeps its best ETA per elder).
//! An elder further than 15 minutes from everyone has no ETA (`None`: outside both circles).

use crate::geo::LatLon;
use crate::ids::{ElderId, FastMap, GridId, ResponderId};
use crate::model::TravelMode;
use crate::road::{FieldTarget, Profile, Reach, RoadNetwork, RoadOverlay, Snapped, SourceField};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

/// The community promise: a rescuer at the door within 3 minutes.
pub const DOOR_MS: u64 = 180_000;
/// The service circle: help within 15 minutes. ETAs beyond it are not kept.
pub const CIRCLE_MS: u64 = 900_000;

/// Which promise a responder counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CoverKind {
    /// Volunteers and grid workers: the 3-minute promise (and the 15-minute circle).
    Community,
    /// Ambulances: the 15-minute circle.
    Ambulance,
}

/// An available responder as coverage needs them (the engine's
/// [`crate::engine::Engine::coverage_sources`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CoverSource {
    pub id: ResponderId,
    pub kind: CoverKind,
    pub mode: TravelMode,
    /// The ranking's factor on the profile's time (foot: `foot_kmh / walk_kmh`; car: 1).
    pub time_factor: f64,
    pub position: LatLon,
}

/// An elder as coverage needs them.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverElder {
    pub id: ElderId,
    pub grid_id: GridId,
    pub care_level: u8,
    pub home: LatLon,
}

impl From<&crate::roster::ElderRecord> for CoverElder {
    fn from(e: &crate::roster::ElderRecord) -> CoverElder {
        CoverElder {
            id: e.id.clone(),
            grid_id: e.grid_id.clone(),
            care_level: e.care_level,
            home: e.home,
        }
    }
}

/// One elder's coverage.
#[derive(Debug, Clone)]
pub struct ElderCover {
    pub elder: CoverElder,
    /// Best ETA from an available community responder, if within 15 minutes.
    pub community_ms: Option<u64>,
    /// Best ETA from an available ambulance, if within 15 minutes.
    pub ambulance_ms: Option<u64>,
}

impl ElderCover {
    /// Inside the 3-minute promise.
    pub fn at_door(&self) -> bool {
        self.community_ms.is_some_and(|t| t <= DOOR_MS)
    }
    /// Inside the 15-minute circle (any responder able to serve).
    pub fn in_circle(&self) -> bool {
        self.community_ms.is_some() || self.ambulance_ms.is_some()
    }
}

/// Counts and shares of one set of elders (shares are 0 for an empty set).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    pub elders: u64,
    pub within_180_s: u64,
    pub within_900_s: u64,
    pub share_180_s: f64,
    pub share_900_s: f64,
    /// The same shares with each elder weighted by their care level (1–5): the level-5
    /// elders count five times a level-1 elder.
    pub weighted_share_180_s: f64,
    pub weighted_share_900_s: f64,
    #[serde(skip)]
    weight: u64,
    #[serde(skip)]
    weight_180: u64,
    #[serde(skip)]
    weight_900: u64,
}

impl Tally {
    fn add(&mut self, e: &ElderCover) {
        let w = u64::from(e.elder.care_level.max(1));
        self.elders += 1;
        self.weight += w;
        if e.at_door() {
            self.within_180_s += 1;
            self.weight_180 += w;
        }
        if e.in_circle() {
            self.within_900_s += 1;
            self.weight_900 += w;
        }
    }

    fn finish(mut self) -> Tally {
        let share = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        self.share_180_s = share(self.within_180_s, self.elders);
        self.share_900_s = share(self.within_900_s, self.elders);
        self.weighted_share_180_s = share(self.weight_180, self.weight);
        self.weighted_share_900_s = share(self.weight_900, self.weight);
        self
    }
}

/// The whole picture: overall, per care level and per grid, and who is counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub overall: Tally,
    pub by_care_level: BTreeMap<u8, Tally>,
    pub by_grid: BTreeMap<GridId, Tally>,
    /// Available responders counted, by kind.
    pub community_responders: u64,
    pub ambulances: u64,
}

/// One hexagon of the map with the elders whose homes fall in it.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// Axial coordinates of the hexagon.
    pub q: i64,
    pub r: i64,
    pub center: LatLon,
    /// The six corners, closed (the first repeated last), as GeoJSON wants a ring.
    pub ring: Vec<LatLon>,
    pub tally: Tally,
}

/// What one [`Coverage::sync`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncStats {
    pub added: usize,
    pub moved: usize,
    pub removed: usize,
    /// Vertices whose label may have changed (a moved or removed source's cleared cell
    /// included), counted once per field.
    pub vertices: usize,
    /// Elders whose ETAs were read again.
    pub elders: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GroupKey {
    kind: CoverKind,
    mode: TravelMode,
    factor_bits: u64,
}

#[derive(Debug, Clone)]
struct Group {
    key: GroupKey,
    factor: f64,
    field: SourceField,
    /// Each elder's best ETA (ms) from this group by place (see [`Coverage::at_place`]),
    /// `NO_ETA` beyond the circle: a change in one group reads the elders from that group
    /// only, then brings their minimum over groups up to date ([`Coverage::read_group`]).
    best: Vec<u32>,
    /// The numbers of its sources in its field.
    numbers: Numbers,
}

/// A group's source numbers: they index the field's table of sources, so they are kept
/// dense. A new source takes the lowest free one.
#[derive(Debug, Clone, Default)]
struct Numbers {
    /// Given out so far: `0..next`.
    next: u32,
    /// Given back (by sources that left), lowest first.
    free: BinaryHeap<Reverse<u32>>,
}

impl Numbers {
    fn take(&mut self) -> u32 {
        match self.free.pop() {
            Some(Reverse(n)) => n,
            None => {
                self.next += 1;
                self.next - 1
            }
        }
    }

    /// Gives back `n`, which the field no longer holds.
    fn give(&mut self, n: u32) {
        debug_assert!(n < self.next);
        self.free.push(Reverse(n));
    }
}

const NO_ETA: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Held {
    /// `(group, source number, segment)`; `None`: the position is off this mode's roads.
    placed: Option<(usize, u32, u32)>,
    source: CoverSource,
    /// The last [`Coverage::sync`] that gave it.
    seen: u32,
}

fn profile_of(mode: TravelMode) -> Profile {
    match mode {
        TravelMode::Car => Profile::Car,
        TravelMode::Foot => Profile::Foot,
    }
}

fn lane(p: Profile) -> usize {
    usize::from(p == Profile::Car)
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Coverage {
    net: Arc<RoadNetwork>,
    foot_kmh: f64,
    elders: Vec<ElderCover>,
    /// The elders in the order of their homes along a Z-order curve, so that the elders one
    /// responder's move reads again lie close together in memory (a walker's move reads a
    /// few hundred of 100,000; in roster order each read was a cache miss). An elder's
    /// place is their index in this order: `at_place[place]` is their index in `elders`.
    at_place: Vec<u32>,
    /// By place: where the elder's home meets each profile's roads.
    snapped: Vec<[Option<Snapped>; 2]>,
    /// Per profile lane, by place: the same, placed for the fields under the current
    /// overlay (what every read of the elder starts from; [`Self::place_targets`]). One
    /// array per lane, so that a read touches one lane's only.
    targets: [Vec<Option<FieldTarget>>; 2],
    /// By place: the best ETA from the community and from an ambulance (`NO_ETA`: none
    /// within the circle); the minimum over the groups of each kind.
    now: Vec<[u32; 2]>,
    /// Per profile lane: elders (by place) by the vertices they are reached from, and by
    /// the segment they stand on.
    by_vertex: [Buckets; 2],
    by_segment: [Buckets; 2],
    groups: Vec<Group>,
    group_of: HashMap<GroupKey, usize>,
    held: FastMap<ResponderId, Held>,
    /// How many [`Self::sync`]s ran (what `Held::seen` is compared with).
    syncs: u32,
    /// Scratch for [`Self::read_group`].
    reach: Vec<Reach>,
    /// Scratch for [`Self::update`]: the elders near a change, and what it has seen.
    here: Vec<u32>,
    marks: Marks,
    /// The road closures the ETAs honour ([`Self::set_overlay`]).
    overlay: Arc<RoadOverlay>,
}

impl Coverage {
    /// Coverage of nobody by nobody on `net`.
    /// `foot_kmh`: the walking speed the network's foot profile was built at
    /// (`RoadConfig::foot_kmh`), against which walking speeds are factors.
    pub fn new(net: Arc<RoadNetwork>, foot_kmh: f64) -> Coverage {
        Coverage {
            net,
            foot_kmh,
            elders: Vec::new(),
            at_place: Vec::new(),
            snapped: Vec::new(),
            targets: Default::default(),
            now: Vec::new(),
            by_vertex: Default::default(),
            by_segment: Default::default(),
            groups: Vec::new(),
            group_of: HashMap::new(),
            held: FastMap::default(),
            syncs: 0,
            reach: Vec::new(),
            here: Vec::new(),
            marks: Marks::default(),
            overlay: Arc::default(),
        }
    }

    /// Lays road closures (the engine's, [`crate::engine::Engine::road_overlay`]) under the
    /// ETAs, as the ranking does. The same overlay again changes nothing; another rebuilds
    /// every group's field from the responders held (a closure is rare; each field is one
    /// Dijkstra per responder within the circle).
    pub fn set_overlay(&mut self, overlay: Arc<RoadOverlay>) -> SyncStats {
        if Arc::ptr_eq(&self.overlay, &overlay) {
            return SyncStats::default();
        }
        self.overlay = overlay;
        self.place_targets();
        let mut sources: Vec<CoverSource> = self.held.drain().map(|(_, h)| h.source).collect();
        sources.sort_by(|a, b| a.id.cmp(&b.id));
        self.groups.clear();
        self.group_of.clear();
        for e in &mut self.elders {
            e.community_ms = None;
            e.ambulance_ms = None;
        }
        self.now.fill([NO_ETA; 2]);
        self.update(&sources, &[])
    }

    /// Every elder with their ETAs, in the order last given to [`Self::set_elders`].
    pub fn elders(&self) -> &[ElderCover] {
        &self.elders
    }

    /// Replaces the elders (a roster change): snaps each home on both profiles (reusing the
    /// snaps of elders whose home did not move) and reads their ETAs. Costs a snap per new
    /// home and a read per elder: meant for roster changes, not for every period.
    pub fn set_elders(&mut self, elders: Vec<CoverElder>) {
        let old: HashMap<ElderId, (LatLon, [Option<Snapped>; 2])> = self
            .at_place
            .iter()
            .zip(&self.snapped)
            .map(|(&i, s)| {
                let e = &self.elders[i as usize].elder;
                (e.id.clone(), (e.home, *s))
            })
            .collect();
        self.elders.clear();
        let mut snapped = Vec::with_capacity(elders.len());
        for elder in elders {
            snapped.push(match old.get(&elder.id) {
                Some((home, s)) if *home == elder.home => *s,
                _ => {
                    [Profile::Foot, Profile::Car].map(|p| self.net.profile(p).snap(elder.home).ok())
                }
            });
            self.elders.push(ElderCover {
                elder,
                community_ms: None,
                ambulance_ms: None,
            });
        }
        let n = self.elders.len();
        let mut order: Vec<(u64, u32)> = (0..n)
            .map(|i| (z_order(self.elders[i].elder.home), i as u32))
            .collect();
        order.sort_unstable();
        self.at_place = order.into_iter().map(|(_, i)| i).collect();
        self.snapped = self.at_place.iter().map(|&i| snapped[i as usize]).collect();
        self.place_targets();
        self.now = vec![[NO_ETA; 2]; n];
        let mut at_vertex: [Vec<(u32, u32)>; 2] = Default::default();
        let mut at_segment: [Vec<(u32, u32)>; 2] = Default::default();
        for (place, snapped) in self.snapped.iter().enumerate() {
            for (l, s) in snapped.iter().enumerate() {
                if let Some(s) = s {
                    let g = self.net.profile(s.profile());
                    for v in g.target_vertices(s) {
                        at_vertex[l].push((v, place as u32));
                    }
                    at_segment[l].push((g.segment_of(s), place as u32));
                }
            }
        }
        self.by_vertex = at_vertex.map(|p| Buckets::of(&p));
        self.by_segment = at_segment.map(|p| Buckets::of(&p));
        // Every group's ETAs are reset before any is read: reading keeps each elder's best
        // over the groups, so it must not see another group's ETAs of the old roster.
        for grp in &mut self.groups {
            grp.best = vec![NO_ETA; n];
        }
        for gi in 0..self.groups.len() {
            for place in 0..n {
                self.read_group(gi, place);
            }
        }
    }

    /// Places every elder's snapped homes for the fields under the current overlay.
    fn place_targets(&mut self) {
        for (l, p) in [Profile::Foot, Profile::Car].into_iter().enumerate() {
            debug_assert_eq!(lane(p), l);
            let (g, overlay) = (self.net.profile(p), self.overlay.profile(p));
            self.targets[l] = self
                .snapped
                .iter()
                .map(|s| s[l].and_then(|s| FieldTarget::new(g, overlay, &s)))
                .collect();
        }
    }

    /// Brings the responders to `sources` (the available ones now): adds the new, moves
    /// those whose place or speed changed, removes those no longer given, and reads again
    /// the elders whose ETAs may have changed.
    pub fn sync(&mut self, sources: &[CoverSource]) -> SyncStats {
        // One lookup per source: each held one given is marked with this sync's number, and
        // those left unmarked are gone. A responder named twice (the engine names each once)
        // is taken once, by the first entry.
        self.syncs = self.syncs.wrapping_add(1);
        let mut changed: Vec<CoverSource> = Vec::new();
        let mut new: FastMap<&ResponderId, ()> = FastMap::default();
        let mut seen = 0;
        for s in sources {
            match self.held.get_mut(&s.id) {
                Some(h) if h.seen == self.syncs => {}
                Some(h) => {
                    h.seen = self.syncs;
                    seen += 1;
                    if h.source != *s {
                        changed.push(s.clone());
                    }
                }
                None => {
                    if new.insert(&s.id, ()).is_none() {
                        changed.push(s.clone());
                    }
                }
            }
        }
        let gone: Vec<ResponderId> = if seen == self.held.len() {
            Vec::new()
        } else {
            let syncs = self.syncs;
            self.held
                .iter()
                .filter(|(_, h)| h.seen != syncs)
                .map(|(id, _)| id.clone())
                .collect()
        };
        self.update(&changed, &gone)
    }

    /// Applies what changed since the last call: `upsert` came on duty, moved or changed
    /// speed; `gone` are no longer available. Reads again only the elders whose ETAs may
    /// have changed.
    pub fn update(&mut self, upsert: &[CoverSource], gone: &[ResponderId]) -> SyncStats {
        let mut stats = SyncStats::default();
        // Per group: the vertices whose labels changed and the segments sources left or
        // joined.
        let mut touched: Vec<Vec<u32>> = Vec::new();
        let mut segments: Vec<Vec<u32>> = Vec::new();
        for id in gone {
            if self.held.contains_key(id) {
                self.drop_source(id, &mut touched, &mut segments);
                stats.removed += 1;
            }
        }
        for s in upsert {
            match self.held.get(&s.id) {
                Some(h) if h.source == *s => continue,
                Some(_) => {
                    stats.moved += 1;
                    if self.move_source(s, &mut touched, &mut segments) {
                        continue;
                    }
                    self.drop_source(&s.id, &mut touched, &mut segments);
                }
                None => stats.added += 1,
            }
            self.add_source(s.clone(), &mut touched, &mut segments);
        }
        // Each vertex and each elder once per group, marked with this pass's number rather
        // than sorted (a walker's move lists its cell twice, and each elder sits at both
        // ends of their segment).
        let mut again = 0;
        let update = self.marks.next_update();
        for gi in 0..touched.len().max(segments.len()) {
            let l = lane(profile_of(self.groups[gi].key.mode));
            let vs = touched.get_mut(gi).map(std::mem::take).unwrap_or_default();
            let ss = segments.get_mut(gi).map(std::mem::take).unwrap_or_default();
            let pass = self.marks.next_pass();
            let mut here = std::mem::take(&mut self.here);
            here.clear();
            for &v in &vs {
                if Marks::first(&mut self.marks.vertex[l], v, pass) {
                    stats.vertices += 1;
                    here.extend_from_slice(self.by_vertex[l].get(v));
                }
            }
            for &sg in &ss {
                here.extend_from_slice(self.by_segment[l].get(sg));
            }
            // Read in the order of places (homes along the curve): neighbours in memory.
            here.retain(|&e| Marks::first(&mut self.marks.elder, e, pass));
            here.sort_unstable();
            for &e in &here {
                again += usize::from(Marks::first(&mut self.marks.counted, e, update));
                self.read_group(gi, e as usize);
            }
            self.here = here;
        }
        stats.elders = again;
        stats
    }

    fn add_source(
        &mut self,
        s: CoverSource,
        touched: &mut Vec<Vec<u32>>,
        segs: &mut Vec<Vec<u32>>,
    ) {
        let profile = profile_of(s.mode);
        let g = self.net.profile(profile);
        let Ok(at) = g.snap(s.position) else {
            self.held.insert(
                s.id.clone(),
                Held {
                    placed: None,
                    source: s,
                    seen: self.syncs,
                },
            );
            return;
        };
        let key = self.key_of(&s);
        let factor = f64::from_bits(key.factor_bits);
        let group = match self.group_of.get(&key) {
            Some(&i) => i,
            None => {
                // Graph time up to the circle at this speed, a ms over for the rounding.
                let horizon = CIRCLE_MS as f64 / factor.max(1e-9) + 1.0;
                self.groups.push(Group {
                    key,
                    factor,
                    field: SourceField::with_overlay(
                        g,
                        horizon,
                        self.overlay.profile(profile).clone(),
                    ),
                    best: vec![NO_ETA; self.elders.len()],
                    numbers: Numbers::default(),
                });
                self.group_of.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let number = self.groups[group].numbers.take();
        self.put(s, group, number, at, touched, segs);
    }

    /// Places source `s` as `number` of `group` at `at` (its field adds it, or moves it if
    /// the number is already there) and holds it.
    fn put(
        &mut self,
        s: CoverSource,
        group: usize,
        number: u32,
        at: Snapped,
        touched: &mut Vec<Vec<u32>>,
        segs: &mut Vec<Vec<u32>>,
    ) {
        let g = self.net.profile(profile_of(s.mode));
        let offset_ms = at.moved_m / g.max_speed_mps() * 1000.0;
        let grp = &mut self.groups[group];
        grp.field
            .insert(g, number, at, offset_ms, of_group(touched, group));
        let segment = g.segment_of(&at);
        of_group(segs, group).push(segment);
        self.held.insert(
            s.id.clone(),
            Held {
                placed: Some((group, number, segment)),
                source: s,
                seen: self.syncs,
            },
        );
    }

    /// The group `s` belongs to: kind, mode and speed factor.
    fn key_of(&self, s: &CoverSource) -> GroupKey {
        GroupKey {
            kind: s.kind,
            mode: s.mode,
            factor_bits: self.group_factor(s).to_bits(),
        }
    }

    /// The speed factor of `s`'s group: walking speeds to the nearest 0.1 km/h (what the
    /// roster example and the simulator give), so that a roster of many slightly different
    /// speeds still makes a few groups (each group keeps a field over the whole graph, and
    /// every elder is read from every group). For a speed given to 0.1 km/h the factor is
    /// the ranking's exactly; for another, within 0.05 km/h of it (about 1.4 % of the ETA
    /// at 3.5 km/h). Cars: 1.
    fn group_factor(&self, s: &CoverSource) -> f64 {
        match s.mode {
            TravelMode::Car => s.time_factor,
            TravelMode::Foot => {
                let walk = self.foot_kmh / s.time_factor.max(1e-9);
                let step = ((walk * 10.0).round() / 10.0).max(0.1);
                self.foot_kmh / step
            }
        }
    }

    /// Moves a held source within its group (same kind, mode and speed, still on the roads):
    /// its field moves it in one pass over its old and new cells. False if it cannot (the
    /// caller then removes and adds it).
    fn move_source(
        &mut self,
        s: &CoverSource,
        touched: &mut Vec<Vec<u32>>,
        segs: &mut Vec<Vec<u32>>,
    ) -> bool {
        let Some(Held {
            placed: Some((group, number, segment)),
            ..
        }) = self.held.get(&s.id)
        else {
            return false;
        };
        let (group, number, old_segment) = (*group, *number, *segment);
        if self.groups[group].key != self.key_of(s) {
            return false;
        }
        let Ok(at) = self.net.profile(profile_of(s.mode)).snap(s.position) else {
            return false;
        };
        // The elders on the segment it leaves may have been reached along it.
        of_group(segs, group).push(old_segment);
        self.put(s.clone(), group, number, at, touched, segs);
        true
    }

    fn drop_source(
        &mut self,
        id: &ResponderId,
        touched: &mut Vec<Vec<u32>>,
        segs: &mut Vec<Vec<u32>>,
    ) {
        let Some(Held {
            placed: Some((group, number, segment)),
            ..
        }) = self.held.remove(id)
        else {
            return;
        };
        let grp = &mut self.groups[group];
        let profile = profile_of(grp.key.mode);
        let g = self.net.profile(profile);
        of_group(segs, group).push(segment);
        grp.field.remove(g, number, of_group(touched, group));
        grp.numbers.give(number);
    }

    /// Reads the best ETA of the elder at `place` from group `gi` (kept in the group) and
    /// brings the elder's ETA of that kind up to date: the minimum over the kind's groups,
    /// read from them all only when this group held the minimum and its ETA grew.
    fn read_group(&mut self, gi: usize, place: usize) {
        let grp = &self.groups[gi];
        let profile = profile_of(grp.key.mode);
        let mut best = NO_ETA;
        if let Some(target) = &self.targets[lane(profile)][place] {
            let g = self.net.profile(profile);
            self.reach.clear();
            grp.field.reach_placed(g, target, &mut self.reach);
            for r in &self.reach {
                let eta = ranking_eta(g, target.moved_m, r, grp.factor);
                if eta <= CIRCLE_MS {
                    best = best.min(eta as u32);
                }
            }
        }
        let kind = grp.key.kind;
        let k = usize::from(kind == CoverKind::Ambulance);
        let old = std::mem::replace(&mut self.groups[gi].best[place], best);
        let now = self.now[place][k];
        if best < now || (old == now && best > old) {
            let min = if best < now {
                best
            } else {
                self.groups
                    .iter()
                    .filter(|g| g.key.kind == kind)
                    .map(|g| g.best[place])
                    .min()
                    .unwrap_or(NO_ETA)
            };
            self.now[place][k] = min;
            let e = &mut self.elders[self.at_place[place] as usize];
            let slot = match kind {
                CoverKind::Community => &mut e.community_ms,
                CoverKind::Ambulance => &mut e.ambulance_ms,
            };
            *slot = (min != NO_ETA).then_some(u64::from(min));
        }
    }

    /// The elders `s` would reach within `within_ms` (at most the 15-minute circle) if they
    /// were available, with their ETAs, by index into [`Self::elders`]: what recruiting
    /// someone there would add (`simulator plan`). Changes nothing.
    pub fn reach_of(&self, s: &CoverSource, within_ms: u64) -> Vec<(usize, u64)> {
        let within_ms = within_ms.min(CIRCLE_MS);
        let profile = profile_of(s.mode);
        let g = self.net.profile(profile);
        let Ok(at) = g.snap(s.position) else {
            return Vec::new();
        };
        let horizon = within_ms as f64 / s.time_factor.max(1e-9) + 1.0;
        let mut field =
            SourceField::with_overlay(g, horizon, self.overlay.profile(profile).clone());
        let mut vertices = Vec::new();
        field.insert(
            g,
            0,
            at,
            at.moved_m / g.max_speed_mps() * 1000.0,
            &mut vertices,
        );
        let l = lane(profile);
        let mut near: Vec<u32> = vertices
            .iter()
            .map(|&v| self.by_vertex[l].get(v))
            .chain([self.by_segment[l].get(g.segment_of(&at))])
            .flatten()
            .copied()
            .collect();
        near.sort_unstable();
        near.dedup();
        let mut reach = Vec::new();
        near.into_iter()
            .filter_map(|place| {
                let target = self.targets[l][place as usize].as_ref()?;
                reach.clear();
                field.reach_placed(g, target, &mut reach);
                let eta = reach
                    .iter()
                    .map(|r| ranking_eta(g, target.moved_m, r, s.time_factor))
                    .min()?;
                (eta <= within_ms).then_some((self.at_place[place as usize] as usize, eta))
            })
            .collect()
    }

    /// Overall, per care level and per grid.
    pub fn summary(&self) -> Summary {
        let mut overall = Tally::default();
        let mut by_level: BTreeMap<u8, Tally> = BTreeMap::new();
        let mut by_grid: BTreeMap<GridId, Tally> = BTreeMap::new();
        for e in &self.elders {
            overall.add(e);
            by_level.entry(e.elder.care_level).or_default().add(e);
            by_grid.entry(e.elder.grid_id.clone()).or_default().add(e);
        }
        let count = |k: CoverKind| {
            self.held
                .values()
                .filter(|h| h.source.kind == k && h.placed.is_some())
                .count() as u64
        };
        Summary {
            overall: overall.finish(),
            by_care_level: by_level.into_iter().map(|(k, t)| (k, t.finish())).collect(),
            by_grid: by_grid.into_iter().map(|(k, t)| (k, t.finish())).collect(),
            community_responders: count(CoverKind::Community),
            ambulances: count(CoverKind::Ambulance),
        }
    }

    /// The elders in pointy-top hexagons of circumradius `size_m` (metres, on the map's
    /// projection), only the hexagons holding someone, in axial order.
    pub fn cells(&self, size_m: f64) -> Vec<Cell> {
        let proj = self.net.projection();
        let s3 = 3f64.sqrt();
        let mut tallies: BTreeMap<(i64, i64), Tally> = BTreeMap::new();
        for e in &self.elders {
            let [x, y] = proj.to_xy(e.elder.home);
            let q = (s3 / 3.0 * x - y / 3.0) / size_m;
            let r = (2.0 / 3.0 * y) / size_m;
            tallies.entry(hex_round(q, r)).or_default().add(e);
        }
        tallies
            .into_iter()
            .map(|((q, r), t)| {
                let cx = size_m * s3 * (q as f64 + r as f64 / 2.0);
                let cy = size_m * 1.5 * r as f64;
                let mut ring: Vec<LatLon> = (0..6)
                    .map(|k| {
                        let a = (60.0 * k as f64 - 30.0).to_radians();
                        proj.to_latlon([cx + size_m * a.cos(), cy + size_m * a.sin()])
                    })
                    .collect();
                ring.push(ring[0]);
                Cell {
                    q,
                    r,
                    center: proj.to_latlon([cx, cy]),
                    ring,
                    tally: t.finish(),
                }
            })
            .collect()
    }
}

/// Group `g`'s list in a per-group table, grown as groups are added.
fn of_group(table: &mut Vec<Vec<u32>>, g: usize) -> &mut Vec<u32> {
    if table.len() <= g {
        table.resize_with(g + 1, Vec::new);
    }
    &mut table[g]
}

/// The ranking's ETA (`matching::RoadTimes::times_from`, then the speed factor) for a source
/// reaching a target `target_moved_m` off the road by `r`.
fn ranking_eta(g: &crate::road::ProfileGraph, target_moved_m: f64, r: &Reach, factor: f64) -> u64 {
    let off = ceil_u64((r.moved_m + target_moved_m) / g.max_speed_mps() * 1000.0);
    round_u64((u64::from(r.ms) + off) as f64 * factor)
}

/// `x.ceil() as u64` for `x >= 0` (saturating, as the cast does) without the C library's
/// `ceil` (a call on the baseline x86-64 target, and the ETA formula runs for every elder
/// a change reads again): the truncation is exact, and so is the comparison.
fn ceil_u64(x: f64) -> u64 {
    let t = x as u64;
    t.saturating_add(u64::from((t as f64) < x))
}

/// `x.round() as u64` (halves away from zero) for `x >= 0`, likewise: below 2^52 the
/// fraction `x - trunc(x)` is exact, and above it `x` is whole.
fn round_u64(x: f64) -> u64 {
    let t = x as u64;
    t.saturating_add(u64::from(x - t as f64 >= 0.5))
}

/// A point's place along a Z-order (Morton) curve: latitude and longitude on a 2^24 grid
/// (a cell about 1.2 m north–south and 2.4 m east–west at the equator, less east–west
/// further from it), their bits interleaved. Nearby homes get nearby codes, mostly.
fn z_order(p: LatLon) -> u64 {
    let cell =
        |x: f64, lo: f64, span: f64| (((x - lo) / span).clamp(0.0, 1.0) * 16_777_215.0) as u64;
    spread_bits(cell(p.lat, -90.0, 180.0)) | (spread_bits(cell(p.lon, -180.0, 360.0)) << 1)
}

/// The low 24 bits of `v` moved to the even bit positions (bit i to bit 2i).
fn spread_bits(mut v: u64) -> u64 {
    v &= 0xff_ffff;
    v = (v | (v << 16)) & 0x0000_ffff_0000_ffff;
    v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff;
    v = (v | (v << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    v = (v | (v << 2)) & 0x3333_3333_3333_3333;
    (v | (v << 1)) & 0x5555_5555_5555_5555
}

/// Which vertices and elders one pass over a change has seen: each holds the number of the
/// pass that last saw it, so a new pass starts without clearing anything.
#[derive(Debug, Clone, Default)]
struct Marks {
    pass: u32,
    update: u32,
    /// By profile lane, by vertex: seen in this group's pass.
    vertex: [Vec<u32>; 2],
    /// By place: read in this group's pass.
    elder: Vec<u32>,
    /// By place: counted in this update (the stats; an update makes a pass per group).
    counted: Vec<u32>,
}

impl Marks {
    /// A pass number no vertex or elder mark holds (after 2^32 − 1 passes they are cleared).
    fn next_pass(&mut self) -> u32 {
        let [foot, car] = &mut self.vertex;
        Marks::advance(&mut self.pass, [&mut self.elder, foot, car])
    }

    /// An update number no `counted` mark holds, likewise.
    fn next_update(&mut self) -> u32 {
        Marks::advance(&mut self.update, [&mut self.counted])
    }

    fn advance<const N: usize>(n: &mut u32, marks: [&mut Vec<u32>; N]) -> u32 {
        *n = n.wrapping_add(1);
        if *n == 0 {
            for m in marks {
                m.fill(0);
            }
            *n = 1;
        }
        *n
    }

    /// Marks `i` in `marks` as seen by `pass`; true if it was not yet. (It takes one array,
    /// not `self`, so that callers may hold other parts of the coverage meanwhile.)
    fn first(marks: &mut Vec<u32>, i: u32, pass: u32) -> bool {
        let i = i as usize;
        if marks.len() <= i {
            marks.resize(i + 1, 0);
        }
        std::mem::replace(&mut marks[i], pass) != pass
    }
}

/// Elders by a number (a vertex or a segment) in two flat arrays: those at `k` are
/// `items[first[k]..first[k + 1]]`. Read on every change, so one lookup is two reads of
/// nearby memory rather than a hash probe and a pointer to follow.
#[derive(Debug, Clone, Default)]
struct Buckets {
    first: Vec<u32>,
    items: Vec<u32>,
}

impl Buckets {
    /// From `(number, elder)` pairs, in any order.
    fn of(pairs: &[(u32, u32)]) -> Buckets {
        let n = pairs
            .iter()
            .map(|&(k, _)| k as usize + 1)
            .max()
            .unwrap_or(0);
        let mut first = vec![0u32; n + 1];
        for &(k, _) in pairs {
            first[k as usize + 1] += 1;
        }
        for k in 0..n {
            first[k + 1] += first[k];
        }
        let mut next = first.clone();
        let mut items = vec![0u32; pairs.len()];
        for &(k, e) in pairs {
            items[next[k as usize] as usize] = e;
            next[k as usize] += 1;
        }
        Buckets { first, items }
    }

    fn get(&self, k: u32) -> &[u32] {
        let k = k as usize;
        if k + 1 >= self.first.len() {
            return &[];
        }
        &self.items[self.first[k] as usize..self.first[k + 1] as usize]
    }
}

/// The hexagon holding fractional axial coordinates `(q, r)` (cube rounding).
fn hex_round(q: f64, r: f64) -> (i64, i64) {
    let s = -q - r;
    let (mut rq, mut rr, rs) = (q.round(), r.round(), s.round());
    let (dq, dr, ds) = ((rq - q).abs(), (rr - r).abs(), (rs - s).abs());
    if dq > dr && dq > ds {
        rq = -rr - rs;
    } else if dr > ds {
        rr = -rq - rs;
    }
    (rq as i64, rr as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit i of a cell number lands on bit 2i, so latitude and longitude interleave.
    #[test]
    fn spread_bits_moves_bit_i_to_bit_2i() {
        for i in 0..24 {
            assert_eq!(spread_bits(1 << i), 1 << (2 * i), "bit {i}");
        }
        assert_eq!(spread_bits(0xff_ffff), 0x5555_5555_5555);
        assert_eq!(spread_bits(1 << 24), 0, "only the low 24 bits");
    }

    /// Homes a few metres apart are closer along the curve than homes across town, and the
    /// order keeps latitude and longitude apart (neither dominates).
    #[test]
    fn z_order_keeps_neighbours_near() {
        let at = |lat, lon| z_order(LatLon { lat, lon });
        let here = at(-30.03, -51.23);
        let next_door = at(-30.03001, -51.23001);
        let across_town = at(-30.10, -51.15);
        assert!(here.abs_diff(next_door) < here.abs_diff(across_town));
        assert_ne!(at(-30.03, -51.23), at(-30.03, -51.2299));
        assert_ne!(at(-30.03, -51.23), at(-30.0299, -51.23));
    }

    /// The ETA formula's own ceil and round agree with the C library's on the edges (just
    /// under a half, halves, whole numbers, the largest fractions) and on random values.
    #[test]
    fn ceil_and_round_without_libm_agree_with_std() {
        use rand::{Rng, SeedableRng};
        let mut xs = vec![
            0.0,
            0.5,
            1.0,
            1.5,
            2.5,
            0.49999999999999994,
            1.0 - f64::EPSILON / 2.0,
            4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9_007_199_254_740_993.0,
            1e18,
            1.8446744073709552e19,
            2e19,
            f64::MAX,
            f64::INFINITY,
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        for _ in 0..100_000 {
            let whole = rng.random_range(0..2_000_000u64) as f64;
            xs.push(rng.random_range(0.0..2_000_000.0));
            xs.push(whole + [0.5, 0.0, 1e-9, 0.499_999_999][rng.random_range(0..4)]);
            xs.push(f64::from_bits(
                rng.random_range(0..0x4330_0000_0000_0000u64),
            ));
        }
        for x in xs {
            assert_eq!(ceil_u64(x), x.ceil() as u64, "ceil of {x:e}");
            assert_eq!(round_u64(x), x.round() as u64, "round of {x:e}");
        }
    }
}
