//! What live coverage (`crate::coverage`) reads of the engine: the responders the ranking
//! could offer an emergency to right now, and the elders.

use super::*;
use crate::coverage::{CoverElder, CoverKind, CoverSource};

impl Engine {
    /// Every responder an emergency's ranking could consider now, as coverage needs them:
    /// available (not offered, not on a job, not resting), on a fresh position, reachable,
    /// under their daily cap; volunteers and grid workers as community, ambulances as
    /// ambulances (kin serve only their own elder and service staff no emergency: neither
    /// counts).
    pub fn coverage_sources(&self, now: Timestamp) -> Vec<CoverSource> {
        (0..self.responders.len() as u32)
            .filter_map(|slot| {
                let r = &self.responders[slot];
                let kind = match r.record.kind {
                    ResponderKind::Volunteer | ResponderKind::GridWorker => CoverKind::Community,
                    ResponderKind::Ambulance => CoverKind::Ambulance,
                    ResponderKind::ServiceStaff | ResponderKind::Kin => return None,
                };
                let ready = r.status == ResponderStatus::Available
                    && self.ready(now, slot)
                    && self.under_daily_cap(now, slot);
                ready.then(|| CoverSource {
                    id: r.record.id.clone(),
                    kind,
                    mode: r.record.travel_mode,
                    time_factor: self.time_factor(slot),
                    position: r.position,
                })
            })
            .collect()
    }

    /// The road network the engine routes on (`None` over a test stand-in): coverage needs
    /// it to compute the same ETAs.
    pub fn road_network(&self) -> Option<Arc<RoadNetwork>> {
        self.roads.road_network()
    }

    /// The walking speed the foot profile's times are at (a walker's factor is this over
    /// their own speed).
    pub fn foot_kmh(&self) -> f64 {
        self.roads.foot_kmh()
    }

    /// A number that changes whenever an elder is added, changed or retired (not saved:
    /// compare it only within one run).
    pub fn elders_version(&self) -> u64 {
        self.elders_version
    }

    /// Every elder on the roster, as coverage needs them.
    pub fn coverage_elders(&self) -> Vec<CoverElder> {
        self.roster.elders().map(CoverElder::from).collect()
    }
}
