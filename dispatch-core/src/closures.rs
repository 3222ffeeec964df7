//! Road closures and slowdowns as operators (or a feed) lay them: road works, a flooded lane.
//! Plain serde data, journaled in `close_road` commands; the engine resolves each to the road
//! segments it covers and lays them over the graph (`road::closure`) while its window is open.

use crate::geo::LatLon;
use crate::model::{Actor, TravelMode};
use crate::road::ClosureArea;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Closures laid at once, at most (a feed gone wrong is refused, not obeyed without limit).
pub const MAX_CLOSURES: usize = 500;
/// The longest window one closure may have (90 days); a longer one is a map edit.
pub const MAX_WINDOW_MS: u64 = 90 * 24 * 3600 * 1000;
/// The strongest slowdown (× 20); beyond that, close the road.
pub const MAX_SLOW_FACTOR: f64 = 20.0;
/// The longest reason text, in bytes.
pub const MAX_REASON_BYTES: usize = 500;

/// What a closure does to the roads it covers.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClosureEffect {
    /// Nobody passes through; a door on it is still reached from either end.
    #[default]
    Closed,
    /// Travel takes `factor` times as long (above 1, at most 20).
    Slow { factor: f64 },
}

fn every_mode() -> Vec<TravelMode> {
    vec![TravelMode::Car, TravelMode::Foot]
}

/// One closure as laid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoadClosure {
    /// The layer's own name for it (1–64 letters, digits, `-`, `_`, `.`, `:`); laying one
    /// again under the same id replaces it.
    pub closure_id: String,
    pub area: ClosureArea,
    #[serde(default)]
    pub effect: ClosureEffect,
    /// Who it holds for: cars, people on foot, or both (the default).
    #[serde(default = "every_mode")]
    pub modes: Vec<TravelMode>,
    /// When it begins (now if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    /// When it is lifted by itself.
    pub ends_at: Timestamp,
    #[serde(default)]
    pub reason: String,
}

impl RoadClosure {
    /// Whether it is well formed at `now` (the error says what is wrong). Says nothing
    /// about roads: whether it covers any is the engine's question.
    pub fn check(&self, now: Timestamp) -> Result<(), String> {
        let id_ok = !self.closure_id.is_empty()
            && self.closure_id.len() <= 64
            && self
                .closure_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        if !id_ok {
            return Err(format!(
                "closure_id {:?} must be 1-64 letters, digits, '-', '_', '.' or ':'",
                self.closure_id
            ));
        }
        self.area.check()?;
        if let ClosureEffect::Slow { factor } = self.effect {
            if !(factor.is_finite() && factor > 1.0 && factor <= MAX_SLOW_FACTOR) {
                return Err(format!(
                    "a slowdown's factor must be above 1 and at most {MAX_SLOW_FACTOR} (got {factor})"
                ));
            }
        }
        if self.modes.is_empty() {
            return Err("modes must name car, foot or both".into());
        }
        let start = self.starts_at.unwrap_or(now);
        if self.ends_at <= now {
            return Err(format!("ends_at {} is not after now ({now})", self.ends_at));
        }
        if self.ends_at <= start {
            return Err("ends_at must be after starts_at".into());
        }
        if self.ends_at.ms_since(start.max(now)) > MAX_WINDOW_MS {
            return Err("a closure may last at most 90 days".into());
        }
        if start.ms_since(now) > MAX_WINDOW_MS {
            return Err("a closure may start at most 90 days from now".into());
        }
        if self.reason.len() > MAX_REASON_BYTES {
            return Err(format!("reason is longer than {MAX_REASON_BYTES} bytes"));
        }
        Ok(())
    }

    /// Whether it holds at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.starts_at.is_none_or(|s| s <= now) && now < self.ends_at
    }

    /// The effect as the overlay takes it (‰ of the travel time).
    pub fn overlay_effect(&self) -> crate::road::Effect {
        match self.effect {
            ClosureEffect::Closed => crate::road::Effect::Closed,
            ClosureEffect::Slow { factor } => crate::road::Effect::Slow {
                permille: (factor * 1000.0).round() as u32,
            },
        }
    }
}

/// A laid closure: who laid it, when, and what it covers (for the map and the list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaidClosure {
    pub closure: RoadClosure,
    pub by: Actor,
    pub laid_at: Timestamp,
    /// Whether its window has opened (it is laid over the travel times now).
    pub holding: bool,
}

/// A laid closure as operators see it: the road segments it covers, counted per travel
/// mode's graph and drawn as lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClosureView {
    #[serde(flatten)]
    pub laid: LaidClosure,
    pub car_segments: usize,
    pub foot_segments: usize,
    /// The covered segments of both graphs, each once.
    pub lines: Vec<[LatLon; 2]>,
}
