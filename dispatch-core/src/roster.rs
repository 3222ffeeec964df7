//! Who exists: grids, responders, elders, operators and devices, as loaded from the roster
//! file (DESIGN §5.1) and changed at run time.

use crate::geo::LatLon;
use crate::ids::{DeviceId, ElderId, GridId, OperatorId, ResponderId};
use crate::model::{ResponderKind, TravelMode};
use serde::{Deserialize, Serialize};

/// The roster file, exactly as a deployment writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterFile {
    #[serde(default)]
    pub grids: Vec<GridRecord>,
    #[serde(default)]
    pub responders: Vec<ResponderRecord>,
    #[serde(default)]
    pub elders: Vec<ElderRecord>,
    #[serde(default)]
    pub operators: Vec<OperatorRecord>,
    #[serde(default)]
    pub devices: Vec<DeviceRecord>,
}

/// A grid: the small area one grid worker knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridRecord {
    pub id: GridId,
    #[serde(default)]
    pub name: String,
}

/// A responder as the roster describes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponderRecord {
    pub id: ResponderId,
    pub kind: ResponderKind,
    pub travel_mode: TravelMode,
    /// Walking speed for `foot` responders; the foot profile's default (4.5 km/h) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walk_kmh: Option<f64>,
    /// Where they start the day (and where an ambulance's base is).
    pub home: LatLon,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid_id: Option<GridId>,
    #[serde(default)]
    pub skills: Vec<String>,
    /// SHA-256 (hex) of the bearer token of this responder's phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
}

/// An older person living at home.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElderRecord {
    pub id: ElderId,
    pub home: LatLon,
    pub grid_id: GridId,
    /// Five-star needs level, 1 (light) to 5 (most urgent, widest help).
    pub care_level: u8,
    /// Volunteers paired with this person ("60 helps 90"); familiar, so preferred.
    #[serde(default)]
    pub paired_responders: Vec<ResponderId>,
    /// Kin to inform (names or contacts; never sent to responders).
    #[serde(default)]
    pub family: Vec<String>,
}

/// An operator who may connect a console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorRecord {
    pub id: OperatorId,
    pub token_sha256: String,
}

/// A device gateway that may send alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    pub id: DeviceId,
    pub token_sha256: String,
}
