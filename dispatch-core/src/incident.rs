//! The incident state machine, its legal transitions, and the offers made for an incident.
//!
//! | from          | event                                        | to          |
//! |---------------|----------------------------------------------|-------------|
//! | (new)         | alert; service scheduled for later           | scheduled   |
//! | (new)         | alert                                        | dispatching |
//! | scheduled     | lead time reached                            | dispatching |
//! | dispatching   | an offer accepted, or an operator assigns    | assigned    |
//! | dispatching, assigned | a responder (community or ambulance) arrives | on_scene |
//! | assigned, on_scene | its only community responder is retired and nobody else is at the door | dispatching |
//! | any open      | the last assigned responder completes, or an operator resolves | resolved |
//! | any open      | the device cancels its (only) alert, or an operator cancels | cancelled |
//!
//! `resolved` and `cancelled` are final. The ambulance is a parallel track on the incident
//! (`ambulance`), not a state: it can be dispatched from `dispatching`, `assigned` or
//! `on_scene`.

use crate::event::EventRecord;
use crate::geo::LatLon;
use crate::ids::{AlertId, DeviceId, ElderId, IncidentId, OfferId, ResponderId};
use crate::model::{AlertKind, ServiceKind};
use crate::policy::Plan;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Where an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Scheduled,
    Dispatching,
    Assigned,
    OnScene,
    Resolved,
    Cancelled,
}

impl IncidentStatus {
    pub fn name(self) -> &'static str {
        match self {
            IncidentStatus::Scheduled => "scheduled",
            IncidentStatus::Dispatching => "dispatching",
            IncidentStatus::Assigned => "assigned",
            IncidentStatus::OnScene => "on_scene",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_open(self) -> bool {
        !matches!(self, IncidentStatus::Resolved | IncidentStatus::Cancelled)
    }

    /// Whether the table above allows `self → to`.
    pub fn can_become(self, to: IncidentStatus) -> bool {
        use IncidentStatus::*;
        match (self, to) {
            (Scheduled, Dispatching) => true,
            (Dispatching, Assigned) => true,
            (Dispatching | Assigned, OnScene) => true,
            (Assigned | OnScene, Dispatching) => true,
            (from, Resolved | Cancelled) => from.is_open(),
            _ => false,
        }
    }
}

/// One alert that is part of an incident. Its key is (`device_id`, `alert_id`): two
/// gateways may use the same alert id for different elders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRef {
    pub alert_id: AlertId,
    pub device_id: DeviceId,
    /// The device said "I'm OK" for this alert.
    pub cancelled: bool,
    /// What the alert asked for (a resend with the same key must ask for the same). `None`
    /// in snapshots written before it was kept: the incident's own kind and service then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<AlertKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceKind>,
    /// A resend of a key another incident holds, with other content: kept here for the
    /// operators, it never takes the key (resends and cancels go to the first incident).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub conflict: bool,
}

/// Why the engine could not dispatch an alert by itself: the alert is kept (journaled, an
/// incident the operators see) and waits for a person. The device is told `code` and
/// `message` as an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeedsOperator {
    pub code: Undispatchable,
    pub message: String,
}

/// Why an alert could not be dispatched by the engine (its wire code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Undispatchable {
    /// The alert names an elder not on the roster.
    UnknownElder,
    /// The alert's position (or the elder's home) is not on the road map.
    OffMap,
    /// The device resent an alert id it had used with other content.
    AlertConflict,
}

impl Undispatchable {
    /// The code the device is told (the same as the error codes of docs/protocol.md).
    pub fn code(self) -> &'static str {
        match self {
            Undispatchable::UnknownElder => "unknown_elder",
            Undispatchable::OffMap => "off_map",
            Undispatchable::AlertConflict => "alert_conflict",
        }
    }
}

/// An incident and everything decided about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub elder_id: ElderId,
    pub kind: AlertKind,
    pub service: Option<ServiceKind>,
    pub plan: Plan,
    pub priority: u8,
    pub care_level: u8,
    pub position: LatLon,
    pub xy: [f64; 2],
    pub opened_at: Timestamp,
    pub scheduled_for: Option<Timestamp>,
    pub status: IncidentStatus,
    pub alerts: Vec<AlertRef>,
    /// The last wave sent (0 before the first).
    pub wave: u32,
    pub open_offers: BTreeSet<OfferId>,
    /// Everybody asked and not yet due to be asked again (an emergency that has asked everyone
    /// eligible asks again: `Engine::ask_again`).
    pub asked: BTreeSet<ResponderId>,
    /// Community responders assigned (normally one).
    pub community: Vec<ResponderId>,
    pub ambulance: Option<ResponderId>,
    pub ambulance_at: Option<Timestamp>,
    /// Responders who arrived, and when (the time bank counts from here).
    pub arrived: BTreeMap<ResponderId, Timestamp>,
    /// Why an ambulance is wanted but none could be dispatched yet (retried).
    pub ambulance_wanted: Option<String>,
    pub first_accept_at: Option<Timestamp>,
    /// Responders who completed; the incident resolves when the last one does.
    pub completed: BTreeSet<ResponderId>,
    /// Every event about this incident, in order, with its reasons.
    pub timeline: Vec<EventRecord>,
    /// When it was resolved or cancelled (it is forgotten `closed_retention_ms` later).
    #[serde(default)]
    pub closed_at: Option<Timestamp>,
    /// Set when the engine could not dispatch the alert itself (unknown elder, position off
    /// the map, an alert key resent with different content): never offered to anyone, an
    /// operator handles it (and resolves or cancels it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_operator: Option<NeedsOperator>,
}

impl Incident {
    /// Responders still committed to this incident (assigned and not completed).
    pub fn committed(&self) -> impl Iterator<Item = &ResponderId> {
        self.community
            .iter()
            .chain(self.ambulance.iter())
            .filter(|r| !self.completed.contains(*r))
    }

    /// Whether a community responder has accepted or been assigned.
    pub fn has_community(&self) -> bool {
        !self.community.is_empty()
    }

    /// Whether the engine should be offering it: dispatching, nobody from the community yet,
    /// and not one the engine handed to the operators.
    pub fn wants_offers(&self) -> bool {
        self.status == IncidentStatus::Dispatching
            && !self.has_community()
            && self.needs_operator.is_none()
    }

    /// Whether an alert with this plan, service and schedule is a repeat of this open
    /// incident's need, and joins it instead of opening a new incident (docs/protocol.md,
    /// "Which alerts merge"):
    ///
    /// - an emergency joins an open emergency (a second press, a fall during a rescue call);
    /// - a missed check-in joins an open welfare visit or an open emergency (somebody is
    ///   already on the way to the door);
    /// - a service joins an open service of the same kind for the same time.
    ///
    /// Anything else is a different job: a meal still wanted after a fall, a fall during a
    /// meal request. An incident the engine could not dispatch (`needs_operator`) is never
    /// joined.
    pub fn same_need(
        &self,
        plan: Plan,
        service: Option<ServiceKind>,
        scheduled_for: Option<Timestamp>,
    ) -> bool {
        if self.needs_operator.is_some() || !self.status.is_open() {
            return false;
        }
        match (plan, self.plan) {
            (Plan::Emergency, Plan::Emergency) => true,
            (Plan::WelfareVisit, Plan::WelfareVisit | Plan::Emergency) => true,
            (Plan::Service, Plan::Service) => {
                service == self.service && scheduled_for == self.scheduled_for
            }
            _ => false,
        }
    }
}

/// The state of one offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferStatus {
    Open,
    Accepted,
    Declined,
    Expired,
    Withdrawn,
}

/// One offer of one incident to one responder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub id: OfferId,
    pub incident_id: IncidentId,
    pub responder_id: ResponderId,
    pub wave: u32,
    pub sent_at: Timestamp,
    pub expires_at: Timestamp,
    pub eta_ms: u64,
    pub status: OfferStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use IncidentStatus::*;

    #[test]
    fn transition_table_is_exactly_the_documented_one() {
        let all = [
            Scheduled,
            Dispatching,
            Assigned,
            OnScene,
            Resolved,
            Cancelled,
        ];
        let legal: Vec<(IncidentStatus, IncidentStatus)> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(legal.len(), 14, "{legal:?}");
        assert!(!Resolved.can_become(Cancelled));
        assert!(!Cancelled.can_become(Dispatching));
        assert!(!OnScene.can_become(Assigned));
        assert!(!Scheduled.can_become(Assigned));
    }
}
