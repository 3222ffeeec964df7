//! Tests of matching: the Hungarian joint assignment against exhaustive search (the oracle),
//! a surge giving each incident its own responder, and `rank` against brute force.

use super::*;
use crate::model::ResponderKind;
use crate::spatial::{tree_of, ResponderIndex};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, rng_seed: proptest::test_runner::RngSeed::Fixed(11), ..ProptestConfig::default() })]
    /// Oracle: Hungarian equals exhaustive search (count, then total cost).
    #[test]
    fn joint_assignment_matches_exhaustive_search(
        rows in 1usize..5, cols in 1usize..6,
        cells in proptest::collection::vec(proptest::option::weighted(0.7, 0u64..1000), 30)
    ) {
        let costs: Vec<Vec<Option<u64>>> =
            (0..rows).map(|i| (0..cols).map(|j| cells[(i * cols + j) % cells.len()]).collect()).collect();
        let a = assign_jointly(&costs);
        // A valid assignment: each column at most once, only feasible cells.
        let mut used = std::collections::BTreeSet::new();
        for (i, c) in a.iter().enumerate() {
            if let Some(c) = c {
                prop_assert!(costs[i][*c].is_some());
                prop_assert!(used.insert(*c));
            }
        }
        prop_assert_eq!(assignment_value(&costs, &a), assign_exhaustive(&costs));
    }
}

#[test]
fn surge_gives_each_incident_its_own_responder() {
    // Incident 0 is near both responders; incident 1 only near responder 0.
    let costs = vec![vec![Some(100), Some(120)], vec![Some(110), Some(900)]];
    assert_eq!(assign_jointly(&costs), vec![Some(1), Some(0)]);
}

/// Oracle: `rank` equals brute force (every eligible responder's ETA, sorted).
#[test]
fn rank_matches_brute_force() {
    let origin = LatLon::new(-30.03, -51.2).unwrap();
    let roads = StraightLine::new(origin, 20_000.0);
    let proj = roads.projection();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for round in 0..20 {
        let n = 300;
        let mut pos = Vec::new();
        let mut info = Vec::new();
        let mut idx = ResponderIndex::default();
        for slot in 0..n {
            let p = proj.to_latlon([
                rng.random_range(-3000.0..3000.0),
                rng.random_range(-3000.0..3000.0),
            ]);
            let mode = if rng.random_bool(0.3) {
                TravelMode::Car
            } else {
                TravelMode::Foot
            };
            // Down to 1 km/h (time factor 4.5): the bound's rounding slack scales with it.
            let walk: f64 = rng.random_range(1.0..5.5);
            // Some familiar (60 s margin), fewer kin (a larger one).
            let (familiar, margin_ms) = match rng.random_range(0..100) {
                0 | 1 => (Some("paired volunteer"), 60_000),
                2 => (Some("kin"), 120_000),
                _ => (None, 0),
            };
            idx.insert(tree_of(ResponderKind::Volunteer, mode), slot, proj.to_xy(p));
            pos.push(p);
            info.push(CandidateInfo {
                position: roads.place(mode, p).unwrap(),
                mode,
                time_factor: if mode == TravelMode::Foot {
                    4.5 / walk
                } else {
                    1.0
                },
                familiar,
                margin_ms,
            });
        }
        // The most any margin is: the kin's.
        let forced_of = |s: u32| Forced {
            slot: s,
            xy: proj.to_xy(pos[s as usize]),
            top_mps: roads.max_speed_mps(info[s as usize].mode) / info[s as usize].time_factor,
            time_factor: info[s as usize].time_factor,
            max_margin_ms: 120_000,
        };
        let forced: Vec<Forced> = (0..n)
            .filter(|&s| info[s as usize].familiar.is_some())
            .map(forced_of)
            .collect();
        let eligible = |s: u32| {
            if s % 7 == round % 7 {
                None
            } else {
                Some(info[s as usize])
            }
        };
        let target = proj.to_latlon([
            rng.random_range(-2000.0..2000.0),
            rng.random_range(-2000.0..2000.0),
        ]);
        let trees = [
            (
                tree_of(ResponderKind::Volunteer, TravelMode::Foot),
                5.5 / 3.6,
            ),
            (tree_of(ResponderKind::Volunteer, TravelMode::Car), 10.0),
        ];
        let k = 1 + (round as usize % 8);
        let q = RankQuery {
            target_xy: proj.to_xy(target),
            targets: [
                roads.place(TravelMode::Foot, target),
                roads.place(TravelMode::Car, target),
            ],
            trees: &trees,
            forced: &forced,
            seed: &[],
            k,
        };
        let got = rank(&q, &idx, &roads, &eligible);
        // Ranked in two parts (as a kept surge ranking and the round's extras are): the top
        // k of one part, given as the seed of the other's ranking, gives the same top k.
        let part = |s: u32, first: bool| (s % 3 == round % 3) == first;
        let first_trees: &[(usize, f64)] = &trees;
        let first_forced: Vec<Forced> = forced
            .iter()
            .copied()
            .filter(|f| part(f.slot, true))
            .collect();
        let only_first = |s: u32| eligible(s).filter(|_| part(s, true));
        let seed = rank(
            &RankQuery {
                trees: first_trees,
                forced: &first_forced,
                ..q
            },
            &idx,
            &roads,
            &only_first,
        );
        let second: Vec<Forced> = (0..n).filter(|&s| part(s, false)).map(forced_of).collect();
        let only_second = |s: u32| eligible(s).filter(|_| part(s, false));
        let merged = rank(
            &RankQuery {
                trees: &[],
                forced: &second,
                seed: &seed,
                ..q
            },
            &idx,
            &roads,
            &only_second,
        );
        assert_eq!(merged, got, "round {round}: seeded ranking");
        let mut brute = Vec::new();
        let all: Vec<(u32, CandidateInfo)> =
            (0..n).filter_map(|s| eligible(s).map(|c| (s, c))).collect();
        let targets = [
            roads.place(TravelMode::Foot, target),
            roads.place(TravelMode::Car, target),
        ];
        evaluate(&roads, &targets, &all, &mut brute);
        sort_ranked(&mut brute);
        brute.truncate(k);
        assert_eq!(got, brute, "round {round}");
    }
}

/// A familiar responder across town is not even checked (`eligible`, which may snap them):
/// an elder's grid may have hundreds of workers, and only those whose straight-line bound,
/// less the most a margin can be, is within the k-th best score are looked at.
#[test]
fn familiar_responders_too_far_to_matter_are_never_checked() {
    let origin = LatLon::new(-30.03, -51.2).unwrap();
    let roads = StraightLine::new(origin, 20_000.0);
    let proj = roads.projection();
    let mode = TravelMode::Foot;
    let tree = tree_of(ResponderKind::Volunteer, mode);
    let mut idx = ResponderIndex::default();
    // Slot 0: a stranger 100 m away, in the tree. Slots 1..=400: familiar walkers, all but
    // slot 1 (200 m away) 5 km and more away, forced.
    let mut pos = vec![proj.to_latlon([100.0, 0.0])];
    idx.insert(tree, 0, [100.0, 0.0]);
    for s in 1..=400u32 {
        let d = if s == 1 {
            200.0
        } else {
            5_000.0 + f64::from(s)
        };
        pos.push(proj.to_latlon([0.0, d]));
    }
    let info = |s: u32| CandidateInfo {
        position: roads.place(mode, pos[s as usize]).unwrap(),
        mode,
        time_factor: 1.0,
        familiar: (s > 0).then_some("own grid worker"),
        margin_ms: if s > 0 { 60_000 } else { 0 },
    };
    let forced: Vec<Forced> = (1..=400u32)
        .map(|s| Forced {
            slot: s,
            xy: proj.to_xy(pos[s as usize]),
            top_mps: roads.max_speed_mps(mode),
            time_factor: 1.0,
            max_margin_ms: 60_000,
        })
        .collect();
    let checked = std::cell::RefCell::new(Vec::new());
    let eligible = |s: u32| {
        checked.borrow_mut().push(s);
        Some(info(s))
    };
    let target = proj.to_latlon([0.0, 0.0]);
    let q = RankQuery {
        target_xy: [0.0, 0.0],
        targets: [
            roads.place(TravelMode::Foot, target),
            roads.place(TravelMode::Car, target),
        ],
        trees: &[(tree, roads.max_speed_mps(mode))],
        forced: &forced,
        seed: &[],
        k: 2,
    };
    let got = rank(&q, &idx, &roads, &eligible);
    let slots: Vec<u32> = got.iter().map(|r| r.slot).collect();
    // The stranger 100 m away first (104 s), then the familiar one 200 m away (208 s less
    // the 60 s margin: 148 s).
    assert_eq!(slots, vec![0, 1]);
    let mut checked = checked.into_inner();
    checked.sort_unstable();
    // The first round takes the nearest few familiar ones by bound (as it takes the nearest
    // few of a tree); after it, none is within reach.
    assert!(
        checked.len() <= 1 + BATCH && checked.iter().all(|&s| s <= BATCH as u32),
        "checked {checked:?}"
    );
}

/// [`RoadTimes`] with or without its lower bound, counting the sources whose times are asked.
struct Asked<'a> {
    roads: &'a RoadTimes,
    bound: bool,
    asked: std::sync::atomic::AtomicUsize,
}

impl TravelTimes for Asked<'_> {
    fn projection(&self) -> Projection {
        self.roads.projection()
    }
    fn check_on_map(&self, p: LatLon) -> Result<(), String> {
        self.roads.check_on_map(p)
    }
    fn max_speed_mps(&self, mode: TravelMode) -> f64 {
        self.roads.max_speed_mps(mode)
    }
    fn foot_kmh(&self) -> f64 {
        self.roads.foot_kmh()
    }
    fn place(&self, mode: TravelMode, p: LatLon) -> Option<Placed> {
        self.roads.place(mode, p)
    }
    fn times_from(
        &self,
        mode: TravelMode,
        sources: &[Placed],
        target: &Placed,
    ) -> Vec<Option<u64>> {
        self.asked
            .fetch_add(sources.len(), std::sync::atomic::Ordering::Relaxed);
        self.roads.times_from(mode, sources, target)
    }
    fn time_lower_bound(&self, mode: TravelMode, source: &Placed, target: &Placed) -> u64 {
        if self.bound {
            self.roads.time_lower_bound(mode, source, target)
        } else {
            0
        }
    }
    fn route(&self, mode: TravelMode, from: LatLon, to: LatLon) -> Option<RouteSummary> {
        self.roads.route(mode, from, to)
    }
}

/// Oracle on the real roads: ranking that skips candidates by the landmarks' bound
/// (`TravelTimes::time_lower_bound`) gives exactly the ranking without it and brute force
/// (every eligible responder's time), walkers at their own pace, grid workers by car, some
/// familiar; and it asks fewer travel times.
#[test]
fn rank_on_the_roads_skips_by_the_landmark_bound_and_matches_brute_force() {
    let net = std::sync::Arc::new(crate::road::porto_alegre_tests::porto_alegre().clone());
    let roads = RoadTimes::new(net, crate::road::RoadConfig::default().foot_kmh);
    let proj = roads.projection();
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let n = 600;
    let mut pos = Vec::new();
    let mut info = Vec::new();
    let mut idx = ResponderIndex::default();
    while info.len() < n {
        let p = proj.to_latlon([
            rng.random_range(-4000.0..4000.0),
            rng.random_range(-4000.0..4000.0),
        ]);
        let mode = if rng.random_bool(0.4) {
            TravelMode::Car
        } else {
            TravelMode::Foot
        };
        let Some(position) = roads.place(mode, p) else {
            continue;
        };
        let walk: f64 = rng.random_range(2.0..5.5);
        let (familiar, margin_ms) = match rng.random_range(0..100) {
            0..=3 => (Some("own grid worker"), 60_000),
            4 => (Some("kin"), 120_000),
            _ => (None, 0),
        };
        let slot = info.len() as u32;
        idx.insert(
            tree_of(ResponderKind::GridWorker, mode),
            slot,
            proj.to_xy(p),
        );
        pos.push(p);
        info.push(CandidateInfo {
            position,
            mode,
            time_factor: if mode == TravelMode::Foot {
                roads.foot_kmh() / walk
            } else {
                1.0
            },
            familiar,
            margin_ms,
        });
    }
    let forced: Vec<Forced> = (0..n as u32)
        .filter(|&s| info[s as usize].familiar.is_some())
        .map(|s| Forced {
            slot: s,
            xy: proj.to_xy(pos[s as usize]),
            top_mps: roads.max_speed_mps(info[s as usize].mode) / info[s as usize].time_factor,
            time_factor: info[s as usize].time_factor,
            max_margin_ms: 120_000,
        })
        .collect();
    let trees = [
        (
            tree_of(ResponderKind::GridWorker, TravelMode::Foot),
            roads.max_speed_mps(TravelMode::Foot) * 5.5 / roads.foot_kmh(),
        ),
        (
            tree_of(ResponderKind::GridWorker, TravelMode::Car),
            roads.max_speed_mps(TravelMode::Car),
        ),
    ];
    let with = Asked {
        roads: &roads,
        bound: true,
        asked: Default::default(),
    };
    let without = Asked {
        roads: &roads,
        bound: false,
        asked: Default::default(),
    };
    for round in 0..40u32 {
        let eligible = |s: u32| (s % 7 != round % 7).then(|| info[s as usize]);
        let target = proj.to_latlon([
            rng.random_range(-3000.0..3000.0),
            rng.random_range(-3000.0..3000.0),
        ]);
        let targets = [
            roads.place(TravelMode::Foot, target),
            roads.place(TravelMode::Car, target),
        ];
        let k = 1 + (round as usize % 8);
        let q = RankQuery {
            target_xy: proj.to_xy(target),
            targets,
            trees: &trees,
            forced: &forced,
            seed: &[],
            k,
        };
        let got = rank(&q, &idx, &with, &eligible);
        assert_eq!(got, rank(&q, &idx, &without, &eligible), "round {round}");
        let all: Vec<(u32, CandidateInfo)> = (0..n as u32)
            .filter_map(|s| eligible(s).map(|c| (s, c)))
            .collect();
        let mut brute = Vec::new();
        evaluate(&roads, &targets, &all, &mut brute);
        sort_ranked(&mut brute);
        brute.truncate(k);
        assert_eq!(got, brute, "round {round}: brute force");
    }
    let (a, b) = (
        with.asked.load(std::sync::atomic::Ordering::Relaxed),
        without.asked.load(std::sync::atomic::Ordering::Relaxed),
    );
    eprintln!("times asked: {a} with the landmarks' bound, {b} without");
    assert!(a * 10 < b * 8, "{a} with the bound, {b} without");
}

/// Defect: a score was `eta as i64 - margin`, and an ETA past `i64::MAX` (a walking pace the
/// roster allows, a billionth of a km/h and less) wrapped to a negative score and ranked the
/// slowest walker first. Scores now saturate (`score_of`).
#[test]
fn a_walker_too_slow_to_arrive_never_ranks_first() {
    let origin = LatLon::new(-30.03, -51.2).unwrap();
    let roads = StraightLine::new(origin, 20_000.0);
    let proj = roads.projection();
    let tree = tree_of(ResponderKind::Volunteer, TravelMode::Foot);
    let mut idx = ResponderIndex::default();
    let mut info = Vec::new();
    // Slot 0 stands 100 m away at 4.5 km/h, slot 1 at 50 m at 4.5e-15 km/h.
    for (slot, (x, time_factor)) in [(100.0, 1.0), (50.0, 1e15)].into_iter().enumerate() {
        let p = proj.to_latlon([x, 0.0]);
        idx.insert(tree, slot as u32, proj.to_xy(p));
        info.push(CandidateInfo {
            position: roads.place(TravelMode::Foot, p).unwrap(),
            mode: TravelMode::Foot,
            time_factor,
            familiar: None,
            margin_ms: 0,
        });
    }
    let q = RankQuery {
        target_xy: [0.0, 0.0],
        targets: [
            roads.place(TravelMode::Foot, origin),
            roads.place(TravelMode::Car, origin),
        ],
        trees: &[(tree, 4.5 / 3.6)],
        forced: &[],
        seed: &[],
        k: 2,
    };
    let got = rank(&q, &idx, &roads, &|s| Some(info[s as usize]));
    assert_eq!(got.iter().map(|r| r.slot).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(got[1].score_ms, i64::MAX);
    assert_eq!(score_of(u64::MAX, 60_000), i64::MAX - 60_000);
    assert_eq!(score_of(90_000, 120_000), -30_000);
}
