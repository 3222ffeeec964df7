//! Everything the engine decides: the outputs drained with `Engine::poll_event`.
//!
//! Each event carries a sequence number (gap-free, minted by the engine, so replay mints the
//! same numbers and a reconnecting console can resume from the last one it saw) and the time
//! it happened. Decisions carry a human-readable `reason` for the operator and the audit trail.

use crate::geo::LatLon;
use crate::ids::{AlertId, ElderId, IncidentId, OfferId, ResponderId};
use crate::model::{Actor, AlertKind, AssignmentRole, Availability, ServiceKind, Sla};
use crate::time::Timestamp;
use crate::timebank::LedgerEntry;
use serde::{Deserialize, Serialize};

/// One numbered event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub seq: u64,
    pub at: Timestamp,
    pub event: Event,
}

/// Why an open offer was taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawReason {
    /// Somebody else accepted first.
    Filled,
    /// The incident was cancelled or resolved.
    IncidentClosed,
    /// The responder went off duty or was retired.
    ResponderUnavailable,
    /// Joint re-assignment during a surge moved the responder to a more urgent incident.
    Reassigned,
    /// An emergency nearby needs the responder: their service or welfare-visit offer goes to
    /// someone else.
    Preempted,
}

/// The engine's outputs. `<&'static str>::from(&event)` is its wire `type` (strum's names
/// follow the same snake_case rule as serde's; a test checks they agree).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames,
)]
#[serde(tag = "type", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Event {
    IncidentOpened {
        incident_id: IncidentId,
        alert_id: AlertId,
        elder_id: ElderId,
        kind: AlertKind,
        service: Option<ServiceKind>,
        /// 1 (lowest) to 5 (most urgent).
        priority: u8,
        position: LatLon,
        reason: String,
        /// Set when the engine could not dispatch the alert: the incident waits for an
        /// operator (docs/protocol.md, "Alerts the engine cannot dispatch").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        needs_operator: Option<crate::incident::NeedsOperator>,
    },
    /// A further alert from an elder with an open incident joined the incident of that need.
    AlertJoined {
        incident_id: IncidentId,
        alert_id: AlertId,
    },
    OfferSent {
        offer_id: OfferId,
        incident_id: IncidentId,
        responder_id: ResponderId,
        wave: u32,
        eta_s: u32,
        distance_m: u32,
        /// The road path from the responder to the elder (WGS84).
        route: Vec<LatLon>,
        expires_at: Timestamp,
        reason: String,
    },
    OfferDeclined {
        offer_id: OfferId,
        incident_id: IncidentId,
        responder_id: ResponderId,
    },
    OfferExpired {
        offer_id: OfferId,
        incident_id: IncidentId,
        responder_id: ResponderId,
    },
    OfferWithdrawn {
        offer_id: OfferId,
        incident_id: IncidentId,
        responder_id: ResponderId,
        reason: WithdrawReason,
    },
    Assigned {
        incident_id: IncidentId,
        responder_id: ResponderId,
        role: AssignmentRole,
        eta_s: u32,
        /// The road path from the responder to the elder (WGS84).
        route: Vec<LatLon>,
        reason: String,
    },
    /// Nobody suitable could be asked right now; the incident waits and is retried.
    NoResponderAvailable {
        incident_id: IncidentId,
        reason: String,
    },
    /// The engine widened the search, called an ambulance, or otherwise raised the stakes.
    Escalated {
        incident_id: IncidentId,
        reason: String,
    },
    SlaBreached {
        incident_id: IncidentId,
        sla: Sla,
        deadline: Timestamp,
    },
    ResponderArrived {
        incident_id: IncidentId,
        responder_id: ResponderId,
        role: AssignmentRole,
    },
    IncidentResolved {
        incident_id: IncidentId,
        by: Actor,
        reason: String,
    },
    IncidentCancelled {
        incident_id: IncidentId,
        by: Actor,
        reason: String,
    },
    /// A responder's position changed (the server throttles these per console).
    ResponderMoved {
        responder_id: ResponderId,
        position: LatLon,
    },
    ResponderAvailability {
        responder_id: ResponderId,
        status: Availability,
    },
    /// A completed volunteer assignment was credited to the time bank.
    TimeBankCredited {
        responder_id: ResponderId,
        incident_id: IncidentId,
        minutes: u32,
    },
    /// A daily check-in was recorded.
    CheckedIn { elder_id: ElderId },
    /// A grid, person or device was added, changed or retired at run time, or issued a new
    /// token (decision version 4 on). It names the entry and who changed it, never the record
    /// itself: a console that wants it asks `GET /v1/{entry}s/{id}`.
    RosterChanged {
        entry: RosterEntry,
        id: String,
        change: RosterChange,
        by: Actor,
    },
    /// A care manager recorded a time-bank redemption (decision version 4 on): the ledger
    /// entry, with the balance after it.
    TimeBankRedeemed {
        responder_id: ResponderId,
        entry: LedgerEntry,
    },
    /// An assigned responder was taken off the incident (retired while on it, decision
    /// version 4 on); the engine asks somebody else as it would have before any accept.
    Unassigned {
        incident_id: IncidentId,
        responder_id: ResponderId,
        reason: String,
    },
    /// A care-plan occurrence's window closed, and the grace after it passed, with nobody
    /// at the door: it is missed (its job is cancelled next). Like `sla_breached`, for the
    /// compliance report and the operators.
    CareVisitMissed {
        incident_id: IncidentId,
        elder_id: ElderId,
        item_id: String,
        /// The window's close.
        due_by: Timestamp,
        /// Who was asked first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        planned_responder: Option<ResponderId>,
    },
    /// A care-plan occurrence was done (its job completed, or resolved by an operator):
    /// `on_time` when by its window's close, else late.
    CareVisitDone {
        incident_id: IncidentId,
        elder_id: ElderId,
        item_id: String,
        due_by: Timestamp,
        on_time: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        done_by: Option<ResponderId>,
    },
    /// A road closure or slowdown was laid (or replaced): it holds from `starts_at` (or
    /// now) until `ends_at`. Counts of the road segments it covers on each graph.
    RoadClosed {
        closure: crate::closures::RoadClosure,
        by: Actor,
        car_segments: u32,
        foot_segments: u32,
    },
    /// A closure was lifted: by an operator, or by itself at the end of its window
    /// (`expired`).
    RoadReopened {
        closure_id: String,
        by: Actor,
        expired: bool,
    },
}

/// Which kind of roster entry a [`Event::RosterChanged`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RosterEntry {
    Grid,
    Responder,
    Elder,
    Operator,
    Device,
}

/// What happened to the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RosterChange {
    Added,
    Changed,
    /// Only its token changed: a new one was issued and the earlier one no longer works.
    TokenIssued,
    Retired,
}

impl Event {
    /// The step of an incident its elder's kin are told of (issue 12, gap 11): `opened`,
    /// `coming` (somebody accepted or an ambulance was sent), `unassigned` (somebody coming was
    /// taken off: someone else is found), `arrived`, `resolved`, `cancelled`; `None` for every
    /// other event.
    pub fn kin_stage(&self) -> Option<&'static str> {
        use Event::*;
        match self {
            IncidentOpened { .. } => Some("opened"),
            Assigned { .. } => Some("coming"),
            Unassigned { .. } => Some("unassigned"),
            ResponderArrived { .. } => Some("arrived"),
            IncidentResolved { .. } => Some("resolved"),
            IncidentCancelled { .. } => Some("cancelled"),
            _ => None,
        }
    }

    /// The incident this event is about, if any (for console filters and timelines).
    pub fn incident_id(&self) -> Option<IncidentId> {
        use Event::*;
        match self {
            IncidentOpened { incident_id, .. }
            | AlertJoined { incident_id, .. }
            | OfferSent { incident_id, .. }
            | OfferDeclined { incident_id, .. }
            | OfferExpired { incident_id, .. }
            | OfferWithdrawn { incident_id, .. }
            | Assigned { incident_id, .. }
            | NoResponderAvailable { incident_id, .. }
            | Escalated { incident_id, .. }
            | SlaBreached { incident_id, .. }
            | ResponderArrived { incident_id, .. }
            | IncidentResolved { incident_id, .. }
            | IncidentCancelled { incident_id, .. }
            | TimeBankCredited { incident_id, .. }
            | Unassigned { incident_id, .. }
            | CareVisitMissed { incident_id, .. }
            | CareVisitDone { incident_id, .. } => Some(*incident_id),
            ResponderMoved { .. }
            | ResponderAvailability { .. }
            | CheckedIn { .. }
            | RosterChanged { .. }
            | TimeBankRedeemed { .. }
            | RoadClosed { .. }
            | RoadReopened { .. } => None,
        }
    }

    /// The responder this event must reach directly, if any (offers, withdrawals, assignments).
    pub fn responder_id(&self) -> Option<&ResponderId> {
        use Event::*;
        match self {
            OfferSent { responder_id, .. }
            | OfferDeclined { responder_id, .. }
            | OfferExpired { responder_id, .. }
            | OfferWithdrawn { responder_id, .. }
            | Assigned { responder_id, .. }
            | ResponderArrived { responder_id, .. }
            | ResponderMoved { responder_id, .. }
            | ResponderAvailability { responder_id, .. }
            | TimeBankCredited { responder_id, .. } => Some(responder_id),
            _ => None,
        }
    }
}
