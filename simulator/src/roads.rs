//! The map: the road network loaded once, shared by every policy's `Engine::new`, and the
//! snapping the scenario generator needs.

use dispatch_core::geo::LatLon;
use dispatch_core::road::{Profile, RoadConfig, RoadError, RoadNetwork};
use std::sync::Arc;

/// One immutable road network.
#[derive(Debug, Clone)]
pub struct Map {
    pub net: Arc<RoadNetwork>,
}

impl Map {
    /// Builds both profiles from an `.osm.pbf` stream with the default road rules.
    pub fn from_pbf<R: std::io::Read + Send>(reader: R) -> Result<Map, RoadError> {
        Ok(Map {
            net: Arc::new(RoadNetwork::from_pbf(reader, &RoadConfig::default())?),
        })
    }

    /// The point on the car network nearest `p` (homes and bases must be reachable by car,
    /// and every car road but motorways is walkable).
    pub fn snap_home(&self, p: LatLon) -> Option<LatLon> {
        self.net.profile(Profile::Car).snap(p).ok().map(|s| s.point)
    }
}
