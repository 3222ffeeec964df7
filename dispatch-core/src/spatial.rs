//! The responder R-tree: where the *available* responders are, in projected metres, one tree
//! per (kind, travel mode) so that each tree's lower bound uses its own mode's top speed.
//!
//! Each responder is indexed at an *anchor* point that trails their live position: a location
//! update moves the anchor only when the responder has drifted more than
//! [`ResponderIndex::SLACK_M`] (50 m) from it, so most updates never touch the tree (the ≥ 1,000,000
//! updates/s target). Queries stay exact because every distance from the tree is lowered by the
//! slack before it is used as a bound.

use crate::model::{ResponderKind, TravelMode};
use rstar::primitives::GeomWithData;
use rstar::RTree;

/// A responder's slot (dense index into the engine's responder table) at its anchor.
pub type Entry = GeomWithData<[f64; 2], u32>;

const TREES: usize = 10;

/// Which tree a responder lives in.
pub fn tree_of(kind: ResponderKind, mode: TravelMode) -> usize {
    let k = match kind {
        ResponderKind::Volunteer => 0,
        ResponderKind::GridWorker => 1,
        ResponderKind::Ambulance => 2,
        ResponderKind::ServiceStaff => 3,
        ResponderKind::Kin => 4,
    };
    k * 2 + usize::from(mode == TravelMode::Car)
}

/// Available responders by (kind, mode).
#[derive(Debug, Default)]
pub struct ResponderIndex {
    trees: [RTree<Entry>; TREES],
}

impl ResponderIndex {
    /// How far a responder may drift from their anchor before the tree is updated.
    pub const SLACK_M: f64 = 50.0;

    /// Builds the trees in one go (restore, start-up) from `(tree, slot, anchor)`.
    pub fn bulk_load(entries: impl IntoIterator<Item = (usize, u32, [f64; 2])>) -> ResponderIndex {
        let mut per_tree: [Vec<Entry>; TREES] = Default::default();
        for (t, slot, xy) in entries {
            per_tree[t].push(Entry::new(xy, slot));
        }
        ResponderIndex {
            trees: per_tree.map(RTree::bulk_load),
        }
    }

    pub fn insert(&mut self, tree: usize, slot: u32, anchor: [f64; 2]) {
        self.trees[tree].insert(Entry::new(anchor, slot));
    }

    /// Removes a responder indexed at `anchor`; false if they were not there.
    pub fn remove(&mut self, tree: usize, slot: u32, anchor: [f64; 2]) -> bool {
        self.trees[tree].remove(&Entry::new(anchor, slot)).is_some()
    }

    /// Number of responders indexed in one tree.
    pub fn len(&self, tree: usize) -> usize {
        self.trees[tree].size()
    }

    pub fn is_empty(&self) -> bool {
        self.trees.iter().all(|t| t.size() == 0)
    }

    /// Responders of one tree by increasing anchor distance from `xy`, as `(slot, lower bound
    /// on the true distance in metres)`. The bound subtracts the slack, so it never exceeds
    /// the distance from `xy` to the live position.
    pub fn nearest(&self, tree: usize, xy: [f64; 2]) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.trees[tree]
            .nearest_neighbor_iter_with_distance_2(&xy)
            .map(|(e, d2)| (e.data, (d2.sqrt() - Self::SLACK_M).max(0.0)))
    }
}

/// Whether a responder at `live` indexed at `anchor` has drifted far enough to re-index.
pub fn needs_reindex(anchor: [f64; 2], live: [f64; 2]) -> bool {
    let (dx, dy) = (anchor[0] - live[0], anchor[1] - live[1]);
    dx * dx + dy * dy > ResponderIndex::SLACK_M * ResponderIndex::SLACK_M
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Oracle: the tree's candidates within a radius equal a brute-force scan, and the bound
    /// never exceeds the true distance to the live position.
    #[test]
    fn nearest_matches_brute_force_with_drifting_positions() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut idx = ResponderIndex::default();
        let mut live = Vec::new();
        let mut anchors = Vec::new();
        for slot in 0..2000u32 {
            let p = [
                rng.random_range(-5000.0..5000.0),
                rng.random_range(-5000.0..5000.0),
            ];
            idx.insert(0, slot, p);
            live.push(p);
            anchors.push(p);
        }
        // Drift everybody a little; re-index only those past the slack.
        for slot in 0..2000usize {
            let np = [
                live[slot][0] + rng.random_range(-40.0..40.0),
                live[slot][1] + rng.random_range(-40.0..40.0),
            ];
            live[slot] = np;
            if needs_reindex(anchors[slot], np) {
                assert!(idx.remove(0, slot as u32, anchors[slot]));
                idx.insert(0, slot as u32, np);
                anchors[slot] = np;
            }
        }
        for _ in 0..50 {
            let q = [
                rng.random_range(-5000.0..5000.0),
                rng.random_range(-5000.0..5000.0),
            ];
            let radius = rng.random_range(100.0..1500.0);
            let dist = |p: [f64; 2]| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt();
            let mut from_tree = Vec::new();
            for (slot, lb) in idx.nearest(0, q) {
                assert!(lb <= dist(live[slot as usize]) + 1e-9);
                if lb > radius {
                    break;
                }
                if dist(live[slot as usize]) <= radius {
                    from_tree.push(slot);
                }
            }
            from_tree.sort();
            let brute: Vec<u32> = (0..2000u32)
                .filter(|&s| dist(live[s as usize]) <= radius)
                .collect();
            assert_eq!(from_tree, brute);
        }
        assert_eq!(idx.len(0), 2000);
        assert_eq!(idx.len(1), 0);
    }

    #[test]
    fn bulk_load_equals_inserts() {
        let entries = vec![(0, 1, [0.0, 0.0]), (3, 2, [5.0, 5.0]), (0, 3, [10.0, 0.0])];
        let idx = ResponderIndex::bulk_load(entries);
        let got: Vec<u32> = idx.nearest(0, [9.0, 0.0]).map(|(s, _)| s).collect();
        assert_eq!(got, vec![3, 1]);
        assert_eq!(idx.len(3), 1);
        assert_eq!(tree_of(ResponderKind::GridWorker, TravelMode::Car), 3);
    }
}
