//! Matching: candidates from the R-tree → road ETA on each responder's own profile and speed →
//! a ranked list (familiarity margin applied); the straight-line baseline; and joint
//! assignment for surges (Hungarian, checked against exhaustive search, in `joint.rs`).
//!
//! Ranking is exact, not heuristic: responders are pulled from the trees in order of
//! straight-line distance and evaluated in batches until the admissible lower bound on the
//! next one's ETA (distance × `LOWER_BOUND_FACTOR` / the tree's top speed) exceeds the k-th
//! best score found; a candidate taken whose travel times' own lower bound (landmarks on the
//! road network, [`TravelTimes::time_lower_bound`]) is already past that score is not asked
//! their time. Familiar responders are not in that order: their score may be up to the
//! margin below their ETA, so each waits for its own bound less that margin ([`Forced`]).

use crate::geo::{LatLon, Projection};
use crate::model::TravelMode;
use crate::road::{Profile, ProfileGraph, ProfileOverlay, RoadNetwork, RoadOverlay, Snapped};
use crate::spatial::ResponderIndex;
use std::sync::Arc;

mod joint;
#[cfg(test)]
mod tests;

pub use joint::{assign_exhaustive, assign_jointly, assignment_value};

/// Travel times as the engine needs them. Implemented by the road network (and by
/// [`StraightLine`], a stand-in with a fixed detour factor used by fast unit tests).
pub trait TravelTimes: Send + Sync {
    /// The projection the R-trees use.
    fn projection(&self) -> Projection;
    /// Whether a position can be used (snaps to the road graph); the error says why not.
    fn check_on_map(&self, p: LatLon) -> Result<(), String>;
    /// The profile's top speed in m/s (foot at the profile's walking speed).
    fn max_speed_mps(&self, mode: TravelMode) -> f64;
    /// The walking speed the foot profile is built at.
    fn foot_kmh(&self) -> f64;
    /// A position placed on the mode's graph (snapped), or `None` if it cannot be. The engine
    /// caches these per responder, so a responder who has not moved is not snapped again.
    fn place(&self, mode: TravelMode, p: LatLon) -> Option<Placed>;
    /// Travel time in ms from each placed source to the placed target (foot at `foot_kmh`);
    /// `None` where no route exists.
    fn times_from(&self, mode: TravelMode, sources: &[Placed], target: &Placed)
        -> Vec<Option<u64>>;
    /// A lower bound on [`TravelTimes::times_from`]'s time from `source` to `target` (ms),
    /// found without searching: ranking skips a candidate whose bound is already past the
    /// k-th best score. 0 where nothing better is known (the default); `u64::MAX` where
    /// `times_from` is certain to find no route.
    fn time_lower_bound(&self, _mode: TravelMode, _source: &Placed, _target: &Placed) -> u64 {
        0
    }
    /// One route, for the offer's map and distance.
    fn route(&self, mode: TravelMode, from: LatLon, to: LatLon) -> Option<RouteSummary>;
    /// A hint that `target` will be asked about many sources (a ranking that went past its
    /// first round, or an incident ranked again in every surge round): a source that keeps
    /// one many-to-one sweep per target does it now. Changes no result.
    fn prepare_target(&self, _mode: TravelMode, _target: &Placed) {}
    /// A hint that `target`'s sweep, if one is kept, is still wanted (a waiting emergency
    /// whose ranking was kept this round: the next change near it ranks it again). Keeps it
    /// from being dropped first; never does a sweep. Changes no result.
    fn keep_target(&self, _mode: TravelMode, _target: &Placed) {}
    /// The road network behind these times, if there is one (live coverage routes on it).
    fn road_network(&self) -> Option<Arc<RoadNetwork>> {
        None
    }
    /// Lays road closures over the network: every later time and route honours them (the
    /// engine calls it whenever the closures holding change). Nothing without a network.
    fn set_overlay(&self, _overlay: Arc<RoadOverlay>) {}
    /// Travel times from positions: places them, then [`TravelTimes::times_from`].
    fn times_to(&self, mode: TravelMode, sources: &[LatLon], target: LatLon) -> Vec<Option<u64>> {
        let Some(t) = self.place(mode, target) else {
            return vec![None; sources.len()];
        };
        let placed: Vec<Option<Placed>> = sources.iter().map(|s| self.place(mode, *s)).collect();
        let ok: Vec<Placed> = placed.iter().flatten().copied().collect();
        let mut times = self.times_from(mode, &ok, &t).into_iter();
        placed
            .iter()
            .map(|p| p.as_ref().and_then(|_| times.next().flatten()))
            .collect()
    }
}

/// A position placed on one profile's graph (`snapped` is `None` for the straight-line
/// stand-in).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    pub point: LatLon,
    snapped: Option<Snapped>,
}

/// What an offer shows about the way there.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSummary {
    pub duration_ms: u64,
    pub distance_m: f64,
    pub path: Vec<LatLon>,
}

/// Straight lines at a constant speed per mode times a detour factor. Not a road model: it
/// lets state-machine tests run thousands of sequences without building a graph.
#[derive(Debug, Clone)]
pub struct StraightLine {
    pub projection: Projection,
    pub car_mps: f64,
    pub foot_kmh: f64,
    pub detour: f64,
    /// Positions farther than this from the projection's origin are off the map.
    pub radius_m: f64,
}

impl StraightLine {
    pub fn new(origin: LatLon, radius_m: f64) -> StraightLine {
        StraightLine {
            projection: Projection::new(origin),
            car_mps: 10.0,
            foot_kmh: 4.5,
            detour: 1.3,
            radius_m,
        }
    }

    fn speed(&self, mode: TravelMode) -> f64 {
        match mode {
            TravelMode::Car => self.car_mps,
            TravelMode::Foot => self.foot_kmh / 3.6,
        }
    }

    fn dist(&self, a: LatLon, b: LatLon) -> f64 {
        let (p, q) = (self.projection.to_xy(a), self.projection.to_xy(b));
        ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt()
    }
}

impl TravelTimes for StraightLine {
    fn projection(&self) -> Projection {
        self.projection
    }
    fn check_on_map(&self, p: LatLon) -> Result<(), String> {
        let d = self.dist(self.projection.origin, p);
        if d <= self.radius_m {
            Ok(())
        } else {
            Err(format!(
                "{d:.0} m from the map centre (limit {:.0} m)",
                self.radius_m
            ))
        }
    }
    fn max_speed_mps(&self, mode: TravelMode) -> f64 {
        self.speed(mode)
    }
    fn foot_kmh(&self) -> f64 {
        self.foot_kmh
    }
    fn place(&self, _mode: TravelMode, p: LatLon) -> Option<Placed> {
        self.check_on_map(p).ok()?;
        Some(Placed {
            point: p,
            snapped: None,
        })
    }
    fn times_from(
        &self,
        mode: TravelMode,
        sources: &[Placed],
        target: &Placed,
    ) -> Vec<Option<u64>> {
        sources
            .iter()
            .map(|s| {
                let d = self.dist(s.point, target.point);
                Some((d * self.detour / self.speed(mode) * 1000.0).round() as u64)
            })
            .collect()
    }
    fn route(&self, mode: TravelMode, from: LatLon, to: LatLon) -> Option<RouteSummary> {
        let t = self.times_to(mode, &[from], to)[0]?;
        Some(RouteSummary {
            duration_ms: t,
            distance_m: self.dist(from, to) * self.detour,
            path: vec![from, to],
        })
    }
}

/// The road network as the engine's travel-time source.
///
/// A position's ETA includes its off-road legs (the distance it was moved to snap, at the
/// profile's top speed), so that straight-line distance / top speed stays an admissible lower
/// bound even for positions away from the roads.
#[derive(Debug)]
pub struct RoadTimes {
    pub net: Arc<RoadNetwork>,
    /// The walking speed the network's foot profile was built at (`RoadConfig::foot_kmh`).
    pub foot_kmh: f64,
    /// The closures laid now (the engine's, through [`TravelTimes::set_overlay`]).
    overlay: std::sync::RwLock<Arc<RoadOverlay>>,
}

impl Clone for RoadTimes {
    /// A clone starts with the closures laid at the time.
    fn clone(&self) -> Self {
        RoadTimes {
            net: self.net.clone(),
            foot_kmh: self.foot_kmh,
            overlay: std::sync::RwLock::new(self.overlay()),
        }
    }
}

fn profile_of(mode: TravelMode) -> Profile {
    match mode {
        TravelMode::Car => Profile::Car,
        TravelMode::Foot => Profile::Foot,
    }
}

/// Up to this many sources, `times_from` reads kept search spaces; past it, one many-to-one
/// sweep. On Porto Alegre a source whose segment's vertices' spaces are kept costs about
/// 0.4–0.7 µs (two merges inside a segment), one whose vertices are new 8–17 µs (two
/// searches), a sweep 120–180 µs whatever the number (`road_times_to_*` in
/// benches/README.md). So a call whose sources were all ranked before breaks even with a
/// sweep near 250–400 sources and one whose sources are all new near 10: the spaces are an
/// investment (a vertex searched once serves every later incident, and every responder
/// leaving by it), and this bound caps what one call can spend on new ones
/// (64 × 17 µs ≈ 1 ms). In `alert_rate` the bound made no difference measurable against
/// no bound at all (three pairs); it is there for the worst case, not tuned.
const SPACES_UP_TO: usize = 64;

impl RoadTimes {
    /// Travel times on `net` with no closure laid.
    pub fn new(net: Arc<RoadNetwork>, foot_kmh: f64) -> RoadTimes {
        RoadTimes {
            net,
            foot_kmh,
            overlay: Default::default(),
        }
    }

    /// The closures laid now.
    pub fn overlay(&self) -> Arc<RoadOverlay> {
        self.overlay
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs `f` on the graph of `mode`, the placed target and the closures laid now: what
    /// a hint about `target`'s many-to-one sweep needs (nothing for a target off the graph).
    fn on_sweep(
        &self,
        mode: TravelMode,
        target: &Placed,
        f: impl FnOnce(&ProfileGraph, &Snapped, &ProfileOverlay),
    ) {
        if let Some(t) = &target.snapped {
            let overlay = self.overlay();
            f(
                self.net.profile(profile_of(mode)),
                t,
                overlay.profile(profile_of(mode)),
            );
        }
    }

    fn off_road_ms(&self, mode: TravelMode, moved_m: f64) -> u64 {
        (moved_m / self.max_speed_mps(mode) * 1000.0).ceil() as u64
    }
}

impl TravelTimes for RoadTimes {
    fn projection(&self) -> Projection {
        *self.net.projection()
    }
    fn check_on_map(&self, p: LatLon) -> Result<(), String> {
        match self.net.profile(Profile::Foot).snap(p) {
            Ok(_) => Ok(()),
            Err(foot) => match self.net.profile(Profile::Car).snap(p) {
                Ok(_) => Ok(()),
                Err(_) => Err(foot.to_string()),
            },
        }
    }
    fn max_speed_mps(&self, mode: TravelMode) -> f64 {
        self.net.profile(profile_of(mode)).max_speed_mps()
    }
    fn foot_kmh(&self) -> f64 {
        self.foot_kmh
    }
    fn place(&self, mode: TravelMode, p: LatLon) -> Option<Placed> {
        let snapped = self.net.profile(profile_of(mode)).snap(p).ok()?;
        Some(Placed {
            point: p,
            snapped: Some(snapped),
        })
    }
    fn times_from(
        &self,
        mode: TravelMode,
        sources: &[Placed],
        target: &Placed,
    ) -> Vec<Option<u64>> {
        let g = self.net.profile(profile_of(mode));
        let Some(t) = target.snapped else {
            return vec![None; sources.len()];
        };
        let overlay = self.overlay();
        let ov = overlay.profile(profile_of(mode));
        let off = |s: &Snapped| self.off_road_ms(mode, s.moved_m + t.moved_m);
        // With no closure laid, each time merges the upward search spaces of the source's
        // segment's vertices with the target's, each searched once and kept
        // (`ProfileGraph::times`): about 0.4–0.7 µs kept, 8–17 µs the first time, against
        // 100–200 µs for the target's many-to-one sweep; and the spaces of a responder's
        // segment's vertices serve every incident they are ranked for, however their
        // position wanders along it. A call with more sources than `SPACES_UP_TO` (so at
        // most that many searches), or whose target's sweep is already kept (a lookup per
        // source), reads the sweep instead.
        // With a closure laid a route through it falls back to Dijkstra: one repaired sweep
        // then costs less than a few of those.
        let ok: Vec<Snapped> = sources.iter().filter_map(|s| s.snapped).collect();
        let mut times = if ov.is_empty() && sources.len() <= SPACES_UP_TO && !g.has_sweep_to(&t) {
            g.times(&ok, &t)
        } else {
            g.times_to_with(&ok, &t, ov)
        }
        .into_iter();
        sources
            .iter()
            .map(|s| {
                let s = s.snapped?;
                Some(u64::from(times.next().flatten()?) + off(&s))
            })
            .collect()
    }
    fn time_lower_bound(&self, mode: TravelMode, source: &Placed, target: &Placed) -> u64 {
        let (Some(s), Some(t)) = (&source.snapped, &target.snapped) else {
            return 0;
        };
        // With a closure laid the times come from repaired sweeps (a lookup per source once
        // swept), so the straight line's bound alone; the landmarks' would still hold.
        let open = self
            .overlay
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .profile(profile_of(mode))
            .is_empty();
        if !open {
            return 0;
        }
        let g = self.net.profile(profile_of(mode));
        g.time_lower_bound(s, t)
            .saturating_add(self.off_road_ms(mode, s.moved_m + t.moved_m))
    }
    fn road_network(&self) -> Option<Arc<RoadNetwork>> {
        Some(self.net.clone())
    }
    fn set_overlay(&self, overlay: Arc<RoadOverlay>) {
        *self.overlay.write().unwrap_or_else(|e| e.into_inner()) = overlay;
    }
    fn prepare_target(&self, mode: TravelMode, target: &Placed) {
        // Only the times a closure changes come from sweeps (see `times_from`).
        self.on_sweep(mode, target, |g, t, ov| {
            if !ov.is_empty() {
                g.prepare_sweep_to_with(t, ov);
            }
        });
    }
    fn keep_target(&self, mode: TravelMode, target: &Placed) {
        // A lookup marks the sweep most recently used.
        self.on_sweep(mode, target, |g, t, ov| {
            if !ov.is_empty() {
                g.has_sweep_to_with(t, ov);
            }
        });
    }
    fn route(&self, mode: TravelMode, from: LatLon, to: LatLon) -> Option<RouteSummary> {
        let g = self.net.profile(profile_of(mode));
        let (f, t) = (g.snap(from).ok()?, g.snap(to).ok()?);
        let overlay = self.overlay();
        let r = g.route_with(&f, &t, overlay.profile(profile_of(mode)))?;
        let mut path = Vec::with_capacity(r.path.len() + 2);
        path.push(from);
        path.extend(r.path);
        path.push(to);
        Some(RouteSummary {
            duration_ms: r.duration_ms + self.off_road_ms(mode, f.moved_m + t.moved_m),
            distance_m: r.distance_m + f.moved_m + t.moved_m,
            path,
        })
    }
}

/// What the ranking needs to know about one candidate responder.
#[derive(Debug, Clone, Copy)]
pub struct CandidateInfo {
    /// Where the responder is, placed on their mode's graph.
    pub position: Placed,
    pub mode: TravelMode,
    /// Multiply the profile's time by this (foot: `foot_kmh / walk_kmh`; car: 1).
    pub time_factor: f64,
    /// Why the responder is familiar to the elder, if they are ("kin", "paired volunteer",
    /// "own grid worker").
    pub familiar: Option<&'static str>,
    /// How much ETA their familiarity is worth: their score is the ETA less this (0 for a
    /// stranger; the familiarity margin, or the kin margin for kin).
    pub margin_ms: u64,
}

/// A responder a ranking must consider whatever their distance (familiar, kin, holding an
/// offer the incident may take over), with what bounds their score before they are checked:
/// where they stand, their own top speed, and the most their margin can be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forced {
    pub slot: u32,
    /// Their live position, projected (the R-trees' bound is to the same point).
    pub xy: [f64; 2],
    /// Their mode's top speed at their own pace (m/s): the mode's `max_speed_mps` divided by
    /// their time factor.
    pub top_mps: f64,
    /// Their time factor ([`CandidateInfo::time_factor`]): the bound's rounding slack
    /// scales with it.
    pub time_factor: f64,
    /// At least the margin their [`CandidateInfo`] will carry.
    pub max_margin_ms: u64,
}

/// One ranked candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub slot: u32,
    pub eta_ms: u64,
    /// What ranking sorts by: the ETA, less the candidate's margin (familiar, kin).
    pub score_ms: i64,
    pub familiar: Option<&'static str>,
    pub mode: TravelMode,
}

/// A ranking question.
pub struct RankQuery<'a> {
    /// The target (the incident) projected, for the R-trees' nearest-first walk and bounds.
    pub target_xy: [f64; 2],
    /// The target placed on the foot and car graphs ([`TravelTimes::place`]), for its travel
    /// times.
    pub targets: [Option<Placed>; 2],
    /// Which trees to search, with the top speed (m/s) of their responders (mode speed times
    /// the fastest speed factor among them), for the lower bound.
    pub trees: &'a [(usize, f64)],
    /// Responders considered whatever the trees hold (the familiar and kin, the surge's
    /// extras, the nearest holding offers the incident may take over, or the only ones a
    /// wave may ask), sorted by slot. Each is checked (`eligible`) only once their own bound
    /// is within the k-th best score.
    pub forced: &'a [Forced],
    /// Candidates already ranked (a kept ranking of the others, `Engine::kept_top`): the
    /// result is the top `k` of these and the candidates found here. Their slots must not be
    /// among those found here.
    pub seed: &'a [Ranked],
    pub k: usize,
}

const BATCH: usize = 4;
/// Responders taken per tree in each later round of [`rank`].
const CHUNK: usize = 16;
/// After this many sources of one mode, [`rank`] asks for the target's sweep.
const SWEEP_AFTER: usize = 24;

fn evaluate(
    roads: &dyn TravelTimes,
    targets: &[Option<Placed>; 2],
    batch: &[(u32, CandidateInfo)],
    out: &mut Vec<Ranked>,
) {
    for mode in [TravelMode::Foot, TravelMode::Car] {
        let group: Vec<&(u32, CandidateInfo)> =
            batch.iter().filter(|(_, c)| c.mode == mode).collect();
        if group.is_empty() {
            continue;
        }
        let Some(target) = &targets[usize::from(mode == TravelMode::Car)] else {
            continue;
        };
        let sources: Vec<Placed> = group.iter().map(|(_, c)| c.position).collect();
        let times = roads.times_from(mode, &sources, target);
        for ((slot, c), t) in group.iter().zip(times) {
            if let Some(t) = t {
                let eta_ms = (t as f64 * c.time_factor).round() as u64;
                out.push(Ranked {
                    slot: *slot,
                    eta_ms,
                    score_ms: score_of(eta_ms, c.margin_ms),
                    familiar: c.familiar,
                    mode,
                });
            }
        }
    }
}

/// A score from an ETA and a margin (ms): the ETA less the margin, saturating, so that an
/// ETA too long for an `i64` (a walking pace of a billionth of a km/h) scores as the worst,
/// not (wrapped) as the best.
pub fn score_of(eta_ms: u64, margin_ms: u64) -> i64 {
    i64::try_from(eta_ms)
        .unwrap_or(i64::MAX)
        .saturating_sub(i64::try_from(margin_ms).unwrap_or(i64::MAX))
}

fn sort_ranked(v: &mut [Ranked]) {
    v.sort_by_key(|a| (a.score_ms, a.eta_ms, a.slot));
}

/// The exact top `k` eligible responders by score (ties: ETA, then slot). `eligible` returns
/// `None` for responders that may not be offered (stale, capped, already asked, lacking the
/// skill, …).
pub fn rank(
    q: &RankQuery,
    index: &ResponderIndex,
    roads: &dyn TravelTimes,
    eligible: &dyn Fn(u32) -> Option<CandidateInfo>,
) -> Vec<Ranked> {
    let mut found: Vec<Ranked> = q.seed.to_vec();
    let targets = q.targets;
    let mut batch: Vec<(u32, CandidateInfo)> = Vec::new();
    let mut iters: Vec<_> = q
        .trees
        .iter()
        .map(|&(t, top_mps)| (index.nearest(t, q.target_xy).peekable(), top_mps))
        .collect();
    // The least score a candidate at `lb_m` (straight line) could have, moving at most at
    // `top_mps`: a travel time is at least that line's time less 2 ms (each partial
    // segment at the ends is rounded to whole ms), and an ETA is that time scaled by the
    // candidate's time factor `tf`, rounded: so less `2 * tf + 0.5` ms. A tree's candidates
    // are bounded at the tree's top speed, the fastest walker's (`tf` ≤ 1 against it: the
    // 2.5 ms of `tf` = 1 cover them); a familiar one at their own (their own `tf`).
    let lb_ms = |lb_m: f64, top_mps: f64, tf: f64| -> i64 {
        (lb_m * Projection::LOWER_BOUND_FACTOR / top_mps * 1000.0 - 2.0 * tf.max(1.0) - 0.5).floor()
            as i64
    };
    // Round 1 takes up to BATCH per tree and BATCH of the familiar ones; once k are known,
    // a round takes *every* responder whose bound is within the k-th best score. A
    // travel-time call costs about the same whatever the number of sources, so few rounds
    // is what matters.
    // Familiar (forced) responders wait until their own bound, less the most their margin
    // can be, is within the k-th best score, and only then are they checked (`eligible`:
    // placing them may snap): a paired volunteer or a grid worker across town costs a
    // subtraction, however many the elder has.
    debug_assert!(q.forced.windows(2).all(|w| w[0].slot < w[1].slot));
    let mut forced: Vec<(i64, u32)> = q
        .forced
        .iter()
        .map(|f| {
            let d =
                ((f.xy[0] - q.target_xy[0]).powi(2) + (f.xy[1] - q.target_xy[1]).powi(2)).sqrt();
            let lb = lb_ms(d, f.top_mps, f.time_factor) - f.max_margin_ms as i64;
            (lb, f.slot)
        })
        .collect();
    // Sorted, least bound last (a binary heap, which sorts none of those never taken, was
    // tried and measured no better: benches/README.md, 2026-12-07).
    forced.sort_unstable_by_key(|&(lb, s)| std::cmp::Reverse((lb, s)));
    let within = |forced: &[(i64, u32)], t: i64| forced.last().is_some_and(|&(lb, _)| lb <= t);
    let mut per_tree = BATCH;
    // Sources evaluated so far, foot and car.
    let mut evaluated = [0usize; 2];
    loop {
        sort_ranked(&mut found);
        let threshold = if found.len() >= q.k {
            found[q.k - 1].score_ms
        } else {
            i64::MAX
        };
        // Until k are known, the forced take a round's share like a tree (the nearest by
        // bound first); from then on, all within the threshold.
        let forced_share = if threshold == i64::MAX {
            per_tree
        } else {
            usize::MAX
        };
        let mut taken = 0;
        while taken < forced_share && within(&forced, threshold) {
            let (_, s) = forced.pop().expect("checked");
            if let Some(c) = eligible(s) {
                // The bound is exact only if no margin exceeds the one it assumed.
                debug_assert!(
                    q.forced
                        .binary_search_by_key(&s, |f| f.slot)
                        .is_ok_and(|i| c.margin_ms <= q.forced[i].max_margin_ms),
                    "slot {s}: margin {} over its bound",
                    c.margin_ms
                );
                batch.push((s, c));
                taken += 1;
            }
        }
        let mut any_left = within(&forced, threshold);
        for (it, top_mps) in iters.iter_mut() {
            let mut taken = 0;
            while taken < per_tree {
                match it.peek() {
                    Some(&(_, lb_m)) if lb_ms(lb_m, *top_mps, 1.0) <= threshold => {
                        let (slot, _) = it.next().expect("peeked");
                        if q.forced.binary_search_by_key(&slot, |f| f.slot).is_ok() {
                            continue;
                        }
                        if let Some(c) = eligible(slot) {
                            batch.push((slot, c));
                            taken += 1;
                        }
                    }
                    _ => break,
                }
            }
            if matches!(it.peek(), Some(&(_, lb_m)) if lb_ms(lb_m, *top_mps, 1.0) <= threshold) {
                any_left = true;
            }
        }
        if batch.is_empty() && !any_left {
            break;
        }
        // Once k are known, a candidate whose travel time cannot bring their score within
        // the k-th best is not asked it: the threshold only falls, so they can never enter.
        // The R-trees' bound is the straight line at the top speed (for cars, often a third
        // of the real time in a city); the travel times' own bound (landmarks on the road
        // network) is much closer, and costs no search. Exact: the bound is never above the
        // time, and an ETA and a score are monotone in the time.
        if threshold != i64::MAX {
            batch.retain(|(_, c)| {
                let Some(target) = &targets[usize::from(c.mode == TravelMode::Car)] else {
                    return true;
                };
                let lb = roads.time_lower_bound(c.mode, &c.position, target);
                let eta_lb = (lb as f64 * c.time_factor).round() as u64;
                score_of(eta_lb, c.margin_ms) <= threshold
            });
        }
        // A mode whose candidates keep coming hints that its target will be asked about
        // many sources: with a closure holding, `RoadTimes` then does the target's repaired
        // sweep (kept for later rankings of the same incident); with none it has nothing to
        // do (its times come from kept search spaces, see `times_from`).
        for (i, mode) in [TravelMode::Foot, TravelMode::Car].into_iter().enumerate() {
            let before = evaluated[i];
            evaluated[i] += batch.iter().filter(|(_, c)| c.mode == mode).count();
            if before <= SWEEP_AFTER && evaluated[i] > SWEEP_AFTER {
                if let Some(t) = &targets[i] {
                    roads.prepare_target(mode, t);
                }
            }
        }
        evaluate(roads, &targets, &batch, &mut found);
        batch.clear();
        // Only the best k matter from here on.
        sort_ranked(&mut found);
        found.truncate(q.k.max(1) * 4);
        // Further rounds take a chunk per tree in lower-bound order and tighten the
        // threshold between chunks, so a crowded neighbourhood (a surge: the near ones all
        // busy) is not evaluated wholesale.
        per_tree = if found.len() >= q.k {
            CHUNK
        } else {
            per_tree.saturating_mul(4)
        };
    }
    sort_ranked(&mut found);
    found.truncate(q.k);
    found
}

/// The baseline: the `k` nearest eligible responders by straight line within `radius_m`
/// (ties: slot). Returns `(slot, distance_m)`.
pub fn nearest_within(
    target_xy: [f64; 2],
    trees: &[usize],
    radius_m: f64,
    k: usize,
    index: &ResponderIndex,
    live_xy: &dyn Fn(u32) -> [f64; 2],
    eligible: &dyn Fn(u32) -> bool,
) -> Vec<(u32, f64)> {
    let mut found: Vec<(u32, f64)> = Vec::new();
    for &t in trees {
        for (slot, lb) in index.nearest(t, target_xy) {
            if lb > radius_m {
                break;
            }
            let p = live_xy(slot);
            let d = ((p[0] - target_xy[0]).powi(2) + (p[1] - target_xy[1]).powi(2)).sqrt();
            if d <= radius_m && eligible(slot) {
                found.push((slot, d));
            }
        }
    }
    found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    found.truncate(k);
    found
}
