//! Everything that can happen *to* the engine: the inputs of `Engine::handle_command`.
//!
//! Commands are also what the journal stores, so they are plain serde data with no derived
//! state: replaying the same commands at the same times reproduces the same engine.

use crate::closures::RoadClosure;
use crate::geo::LatLon;
use crate::ids::{
    AlertId, DeviceId, ElderId, GridId, IncidentId, OfferId, OperatorId, ResponderId,
};
use crate::model::{Actor, AlertKind, Availability, ServiceKind};
use crate::roster::{DeviceRecord, ElderRecord, GridRecord, OperatorRecord, ResponderRecord};
use crate::time::Timestamp;
use crate::timebank::LedgerEntry;
use serde::{Deserialize, Serialize};

/// An alert from a wearable or a help button, already converted to WGS84 at the edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The sender's unique key; a resend with the same key is a no-op (a duplicate).
    pub alert_id: AlertId,
    pub kind: AlertKind,
    /// Required for `help`; ignored otherwise.
    pub service: Option<ServiceKind>,
    pub elder_id: ElderId,
    /// Where the elder is; the elder's home when absent.
    pub position: Option<LatLon>,
    /// When the device detected it (the device's clock).
    pub detected_at: Timestamp,
    /// The alert itself asks for an ambulance (for example a hard fall with no movement after).
    #[serde(default)]
    pub ambulance_requested: bool,
    /// A service request for a later time (`help` with a non-rescue service only).
    #[serde(default)]
    pub scheduled_for: Option<Timestamp>,
    /// The gateway that sent it.
    pub device_id: DeviceId,
}

/// The engine's inputs. `<&'static str>::from(&command)` is its journal `cmd` name (strum's
/// names follow serde's snake_case rule; a test checks they agree).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames,
)]
#[serde(tag = "cmd", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Command {
    // --- devices ---
    Alert(Alert),
    /// "I'm OK": the device cancels its alert (and the incident, if nobody else's alert joined).
    CancelAlert {
        alert_id: AlertId,
        device_id: DeviceId,
    },
    /// The elder's daily check-in happened.
    CheckIn {
        elder_id: ElderId,
        device_id: DeviceId,
    },

    // --- responders (each acts only for itself: the server binds `responder_id`) ---
    Location {
        responder_id: ResponderId,
        position: LatLon,
    },
    SetAvailability {
        responder_id: ResponderId,
        status: Availability,
    },
    /// The server's word on a responder's phone: its session `session` opened (`online`) or
    /// closed. A responder whose phone has been gone longer than `presence_grace_ms` is not
    /// offered jobs (nobody would see them) until it is back. A close of an older session
    /// than the live one is ignored (a reconnect raced it).
    Presence {
        responder_id: ResponderId,
        session: u64,
        online: bool,
    },
    /// The server (re)started: no phone session is live; each must reconnect.
    SessionsReset,
    Accept {
        responder_id: ResponderId,
        offer_id: OfferId,
    },
    Decline {
        responder_id: ResponderId,
        offer_id: OfferId,
    },
    Arrived {
        responder_id: ResponderId,
        incident_id: IncidentId,
    },
    Complete {
        responder_id: ResponderId,
        incident_id: IncidentId,
    },
    /// The responder on scene asks for an ambulance.
    RequestAmbulance {
        responder_id: ResponderId,
        incident_id: IncidentId,
    },

    // --- operators ---
    /// Assign a responder by hand (overrides ranking; still never two incidents at once).
    Assign {
        operator_id: OperatorId,
        incident_id: IncidentId,
        responder_id: ResponderId,
    },
    Cancel {
        operator_id: OperatorId,
        incident_id: IncidentId,
        reason: String,
    },
    Resolve {
        operator_id: OperatorId,
        incident_id: IncidentId,
        note: String,
    },

    // --- roster changes at run time (operators) ---
    UpsertGrid {
        by: Actor,
        grid: GridRecord,
    },
    UpsertResponder {
        by: Actor,
        responder: ResponderRecord,
    },
    RetireResponder {
        by: Actor,
        responder_id: ResponderId,
    },
    UpsertElder {
        by: Actor,
        elder: ElderRecord,
    },
    RetireElder {
        by: Actor,
        elder_id: ElderId,
    },
    RetireGrid {
        by: Actor,
        grid_id: GridId,
    },
    UpsertOperator {
        by: Actor,
        operator: OperatorRecord,
    },
    RetireOperator {
        by: Actor,
        operator_id: OperatorId,
    },
    UpsertDevice {
        by: Actor,
        device: DeviceRecord,
    },
    RetireDevice {
        by: Actor,
        device_id: DeviceId,
    },

    // --- roads that change (operators, or a feed acting as one) ---
    /// Lays a road closure or slowdown for its window (replacing one of the same id).
    CloseRoad {
        by: Actor,
        closure: RoadClosure,
    },
    /// Lifts a closure before its window ends.
    ReopenRoad {
        by: Actor,
        closure_id: String,
    },

    // --- the time bank (care managers) ---
    /// A volunteer spends banked minutes (a service for themselves or a relative).
    RedeemTimeBank {
        by: Actor,
        responder_id: ResponderId,
        minutes: u32,
        note: String,
        /// Allow the balance to go below zero (recorded in the entry).
        #[serde(default)]
        override_negative: bool,
    },
}

/// What a successful command returns to its sender (events go to everybody else).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// An alert was taken: a new incident, one it joined (`merged`: a repeat of a need
    /// already open), or a resend of a known alert (`duplicate`). `problem`: the engine could
    /// not dispatch it and an operator has it (the device is told this as an error).
    AlertAccepted {
        incident_id: IncidentId,
        duplicate: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        merged: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        problem: Option<crate::incident::NeedsOperator>,
    },
    /// A redemption was recorded: its ledger entry, with the balance after it.
    TimeBankRedeemed { entry: LedgerEntry },
    /// Anything else that succeeded.
    Done,
}

impl Command {
    /// A change to who exists (`Upsert*`, `Retire*`) or to the time bank's ledger by a care
    /// manager: the commands that emit `roster_changed` / `time_bank_redeemed` from decision
    /// version 4 on.
    pub fn is_roster_change(&self) -> bool {
        use Command::*;
        matches!(
            self,
            UpsertGrid { .. }
                | UpsertResponder { .. }
                | RetireResponder { .. }
                | UpsertElder { .. }
                | RetireElder { .. }
                | RetireGrid { .. }
                | UpsertOperator { .. }
                | RetireOperator { .. }
                | UpsertDevice { .. }
                | RetireDevice { .. }
                | RedeemTimeBank { .. }
        )
    }

    /// A responder's answer to an offer: `Accept` when `accept`, else `Decline`.
    pub fn answer_offer(responder_id: ResponderId, offer_id: OfferId, accept: bool) -> Command {
        if accept {
            Command::Accept {
                responder_id,
                offer_id,
            }
        } else {
            Command::Decline {
                responder_id,
                offer_id,
            }
        }
    }
}
