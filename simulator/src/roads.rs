//! The road network as the engine's `TravelTimes`: a thin adapter over the road layer's
//! `snap` / `times_to` / `route`, plus the snapping the scenario generator needs.
//!
//! Stopgap: when the engine gains its own constructor over `RoadNetwork` (the BRIEF's
//! `Engine::new(Arc<RoadNetwork>, …)`), `simulator` should use that and this adapter goes.

use dispatch_core::geo::{LatLon, Projection};
use dispatch_core::matching::{RouteSummary, TravelTimes};
use dispatch_core::model::TravelMode;
use dispatch_core::road::{Profile, RoadConfig, RoadNetwork};
use std::sync::Arc;

/// Shares one immutable road network.
#[derive(Debug, Clone)]
pub struct RoadTimes {
    pub net: Arc<RoadNetwork>,
    foot_kmh: f64,
}

impl RoadTimes {
    pub fn new(net: Arc<RoadNetwork>, config: &RoadConfig) -> RoadTimes {
        RoadTimes {
            net,
            foot_kmh: config.foot_kmh,
        }
    }

    /// The point on the car network nearest `p` (homes and bases must be reachable by car,
    /// and every car road but motorways is walkable).
    pub fn snap_home(&self, p: LatLon) -> Option<LatLon> {
        self.net.profile(Profile::Car).snap(p).ok().map(|s| s.point)
    }
}

fn profile(mode: TravelMode) -> Profile {
    match mode {
        TravelMode::Car => Profile::Car,
        TravelMode::Foot => Profile::Foot,
    }
}

impl TravelTimes for RoadTimes {
    fn projection(&self) -> Projection {
        *self.net.projection()
    }

    fn check_on_map(&self, p: LatLon) -> Result<(), String> {
        self.net
            .profile(Profile::Car)
            .snap(p)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn max_speed_mps(&self, mode: TravelMode) -> f64 {
        self.net.profile(profile(mode)).max_speed_mps()
    }

    fn foot_kmh(&self) -> f64 {
        self.foot_kmh
    }

    fn times_to(&self, mode: TravelMode, sources: &[LatLon], target: LatLon) -> Vec<Option<u64>> {
        let g = self.net.profile(profile(mode));
        let Ok(target) = g.snap(target) else {
            return vec![None; sources.len()];
        };
        let snapped: Vec<Option<_>> = sources.iter().map(|s| g.snap(*s).ok()).collect();
        let ok: Vec<_> = snapped.iter().flatten().copied().collect();
        let mut times = g.times_to(&ok, &target).into_iter();
        snapped
            .iter()
            .map(|s| s.and_then(|_| times.next().flatten().map(u64::from)))
            .collect()
    }

    fn route(&self, mode: TravelMode, from: LatLon, to: LatLon) -> Option<RouteSummary> {
        let g = self.net.profile(profile(mode));
        let r = g.route(&g.snap(from).ok()?, &g.snap(to).ok()?)?;
        Some(RouteSummary {
            duration_ms: r.duration_ms,
            distance_m: r.distance_m,
            path: r.path,
        })
    }
}
