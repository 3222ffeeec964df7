//! The vocabulary shared by the roster, the engine, the journal and the wire: kinds of alerts,
//! services, responders and travel modes. Wire names are the serde names here.

use serde::{Deserialize, Serialize};

/// What a device reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A wearable detected a fall: always an emergency.
    Fall,
    /// The one-key button: an emergency when the service is `rescue`, else a service request.
    Help,
    /// The daily check-in did not happen: a welfare visit.
    CheckInMissed,
    /// An occurrence of the elder's care plan (`care_plan`): opened by the engine, never
    /// sent by a device.
    CarePlan,
}

/// The "six helps".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    Rescue,
    Meal,
    Medical,
    Shopping,
    Cleaning,
    Mobility,
}

/// Who a responder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponderKind {
    Volunteer,
    GridWorker,
    Ambulance,
    ServiceStaff,
    /// A family member bound to their elder(s) (`kin_of`): offered only their elder's
    /// emergencies and welfare visits, first within the kin margin, and told of every
    /// incident of their elder (decision version 5 on).
    Kin,
}

/// How a responder moves, which decides the road profile their ETA is computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TravelMode {
    Foot,
    Car,
}

/// What a responder says about themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    Available,
    OffDuty,
}

/// The three promises each emergency is timed against (DESIGN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sla {
    /// Somebody accepted within 30 s.
    FirstAccept,
    /// A community responder at the door within 3 min.
    CommunityOnScene,
    /// An ambulance at the door within 11 min.
    AmbulanceOnScene,
    /// A service or welfare visit: somebody accepted within 10 min of its offers going out
    /// (decision version 4 on).
    JobAccept,
    /// A service or welfare visit: somebody at the door within 60 min of its offers going
    /// out, or by the requested time of a scheduled service (decision version 4 on).
    JobOnScene,
}

/// The role of an assignment on an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentRole {
    /// A volunteer, grid worker or service staff member who accepted an offer.
    Community,
    /// An ambulance, assigned directly.
    Ambulance,
}

/// Who acted, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", content = "id", rename_all = "snake_case")]
pub enum Actor {
    Device(crate::ids::DeviceId),
    Responder(crate::ids::ResponderId),
    Operator(crate::ids::OperatorId),
    /// The engine itself (timers, escalation).
    Engine,
}
