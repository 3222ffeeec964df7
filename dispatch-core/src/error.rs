//! Why a command was refused. A refused command changes nothing.

use crate::ids::{AlertId, ElderId, GridId, IncidentId, OfferId, ResponderId};

/// A command the engine refused; the engine's state is exactly as before the call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown elder {0}")]
    UnknownElder(ElderId),
    #[error("unknown responder {0}")]
    UnknownResponder(ResponderId),
    #[error("unknown grid {0}")]
    UnknownGrid(GridId),
    #[error("unknown incident {0}")]
    UnknownIncident(IncidentId),
    #[error("unknown offer {0}")]
    UnknownOffer(OfferId),
    #[error("unknown alert {0}")]
    UnknownAlert(AlertId),
    #[error("offer {offer} is not addressed to responder {responder}")]
    NotYourOffer {
        offer: OfferId,
        responder: ResponderId,
    },
    #[error("offer {0} is no longer open (accepted, declined, expired or withdrawn)")]
    OfferClosed(OfferId),
    #[error("responder {responder} is not assigned to incident {incident}")]
    NotAssigned {
        responder: ResponderId,
        incident: IncidentId,
    },
    #[error("incident {0} is already closed")]
    IncidentClosed(IncidentId),
    #[error("responder {responder} cannot {action} while {state}")]
    InvalidTransition {
        responder: ResponderId,
        action: &'static str,
        state: &'static str,
    },
    /// `available` while resting after an emergency (the fairness rest): `invalid_transition`
    /// on the wire, as any other refused transition, and the rest's end beside it.
    #[error("responder {responder} cannot go available while resting, until {until}")]
    Resting {
        responder: ResponderId,
        until: crate::time::Timestamp,
    },
    #[error("position {lat},{lon} is off the map: {detail}")]
    OffMap { lat: f64, lon: f64, detail: String },
    #[error("invalid command: {0}")]
    Invalid(String),
    /// Retiring or restricting the last operator who may manage people.
    #[error("{0}")]
    LastPeopleOperator(String),
    #[error("unknown road closure {0:?}")]
    UnknownClosure(String),
    #[error("responder {responder}: {detail}")]
    InsufficientBalance {
        responder: ResponderId,
        detail: String,
    },
}

impl CommandError {
    /// The stable machine-readable code the wire protocol sends in `error` frames.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::UnknownElder(_) => "unknown_elder",
            CommandError::UnknownResponder(_) => "unknown_responder",
            CommandError::UnknownGrid(_) => "unknown_grid",
            CommandError::UnknownIncident(_) => "unknown_incident",
            CommandError::UnknownOffer(_) => "unknown_offer",
            CommandError::UnknownAlert(_) => "unknown_alert",
            CommandError::NotYourOffer { .. } => "not_your_offer",
            CommandError::OfferClosed(_) => "offer_closed",
            CommandError::NotAssigned { .. } => "not_assigned",
            CommandError::IncidentClosed(_) => "incident_closed",
            CommandError::InvalidTransition { .. } | CommandError::Resting { .. } => {
                "invalid_transition"
            }
            CommandError::OffMap { .. } => "off_map",
            CommandError::Invalid(_) => "invalid",
            CommandError::LastPeopleOperator(_) => "last_people_operator",
            CommandError::InsufficientBalance { .. } => "insufficient_balance",
            CommandError::UnknownClosure(_) => "unknown_closure",
        }
    }
}
