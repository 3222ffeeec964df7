//! What an operator's console reads beyond the summary of an incident: the live promise
//! clocks, the elder's familiar people, and the candidates for a manual assignment with their
//! road ETAs. Read-side only: nothing here changes the engine.

use super::Engine;
use crate::event::Event;
use crate::ids::{ElderId, GridId, IncidentId, ResponderId};
use crate::incident::Incident;
use crate::model::{AssignmentRole, ResponderKind, Sla, TravelMode};
use crate::policy::Plan;
use crate::responder::ResponderStatus;
use crate::roster::ElderDetails;
use crate::spatial::tree_of;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One promise of an emergency (DESIGN §4 timers) as a console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaClock {
    pub sla: Sla,
    pub deadline: Timestamp,
    /// When the promise was kept (first accept; first arrival of that role).
    pub met_at: Option<Timestamp>,
    /// The engine said `sla_breached` for it.
    pub breached: bool,
}

/// The promise durations, so a console computes a new incident's deadlines from its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaDurations {
    pub first_accept: u64,
    pub community_on_scene: u64,
    pub ambulance_on_scene: u64,
    /// A service's or welfare visit's (from its offers going out).
    pub job_accept: u64,
    pub job_on_scene: u64,
}

/// The elder of an incident as an operator sees it: who is familiar to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElderView {
    pub id: ElderId,
    pub care_level: u8,
    pub grid_id: GridId,
    pub paired_responders: Vec<ResponderId>,
    pub grid_workers: Vec<ResponderId>,
    /// Family members on the roster as `kin` responders bound to this elder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kin: Vec<ResponderId>,
    /// Name, address, phone, languages, medical notes and keyholders (operators see all).
    #[serde(default, skip_serializing_if = "ElderDetails::is_empty")]
    pub details: ElderDetails,
    /// Kin to inform (operators only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub family: Vec<String>,
}

/// A responder an operator may assign to an incident now, with the road ETA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub responder_id: ResponderId,
    pub kind: ResponderKind,
    pub travel_mode: TravelMode,
    pub eta_s: u32,
    pub distance_m: u32,
    /// Paired with the elder, or the elder's own grid worker.
    pub familiar: bool,
}

/// The most candidates one request returns.
pub const MAX_CANDIDATES: usize = 50;

impl Engine {
    pub(super) fn sla_durations(&self) -> SlaDurations {
        SlaDurations {
            first_accept: self.config.sla_first_accept_ms,
            community_on_scene: self.config.sla_community_on_scene_ms,
            ambulance_on_scene: self.config.sla_ambulance_on_scene_ms,
            job_accept: self.config.sla_job_accept_ms,
            job_on_scene: self.config.sla_job_on_scene_ms,
        }
    }

    /// The clocks of an incident, derived from its fields and timeline (the same instants
    /// the engine's SLA timers were set from): an emergency's three promises, or a service's
    /// or welfare visit's two.
    pub(super) fn clocks(&self, i: &Incident) -> Vec<SlaClock> {
        let breached: Vec<Sla> = i
            .timeline
            .iter()
            .filter_map(|r| match &r.event {
                Event::SlaBreached { sla, .. } => Some(*sla),
                _ => None,
            })
            .collect();
        let arrived_as = |role: AssignmentRole| {
            i.timeline.iter().find_map(|r| match &r.event {
                Event::ResponderArrived { role: got, .. } if *got == role => Some(r.at),
                _ => None,
            })
        };
        let c = &self.config;
        if i.plan != Plan::Emergency {
            if i.needs_operator.is_some() || i.kind == crate::model::AlertKind::CarePlan {
                // Never offered (an operator has it), or a care-plan job, whose promise is its
                // plan's window (`care_visit_done` / `care_visit_missed`).
                return Vec::new();
            }
            // Offers go out at the opening, or at a scheduled service's lead time.
            let start = i
                .scheduled_for
                .map(|t| Timestamp(t.0.saturating_sub(c.service_lead_ms as i64)))
                .filter(|s| *s > i.opened_at)
                .unwrap_or(i.opened_at);
            let (accept, on_scene) = self.job_deadlines(start, i.scheduled_for);
            return vec![
                SlaClock {
                    sla: Sla::JobAccept,
                    deadline: accept,
                    met_at: i.first_accept_at,
                    breached: breached.contains(&Sla::JobAccept),
                },
                SlaClock {
                    sla: Sla::JobOnScene,
                    deadline: on_scene,
                    met_at: arrived_as(AssignmentRole::Community),
                    breached: breached.contains(&Sla::JobOnScene),
                },
            ];
        }
        let mut v = vec![
            SlaClock {
                sla: Sla::FirstAccept,
                deadline: i
                    .opened_at
                    .plus_ms(c.sla_first_accept_for(i.care_level, self.rules)),
                met_at: i.first_accept_at,
                breached: breached.contains(&Sla::FirstAccept),
            },
            SlaClock {
                sla: Sla::CommunityOnScene,
                deadline: i
                    .opened_at
                    .plus_ms(c.sla_community_on_scene_for(i.care_level, self.rules)),
                met_at: arrived_as(AssignmentRole::Community),
                breached: breached.contains(&Sla::CommunityOnScene),
            },
        ];
        if let Some(at) = i.ambulance_at {
            v.push(SlaClock {
                sla: Sla::AmbulanceOnScene,
                deadline: at.plus_ms(c.sla_ambulance_on_scene_ms),
                met_at: arrived_as(AssignmentRole::Ambulance),
                breached: breached.contains(&Sla::AmbulanceOnScene),
            });
        }
        v
    }

    pub(super) fn elder_view(&self, id: &ElderId) -> Option<ElderView> {
        let e = self.roster.elder(id)?;
        Some(ElderView {
            id: e.id.clone(),
            care_level: e.care_level,
            grid_id: e.grid_id.clone(),
            paired_responders: e.paired_responders.clone(),
            grid_workers: self.roster.grid_workers(&e.grid_id).to_vec(),
            kin: self.roster.kin_of_elder(&e.id).to_vec(),
            details: (*e.details).clone(),
            family: e.family.clone(),
        })
    }

    /// Who an operator may assign to an open incident now (what `Command::Assign` would
    /// accept: available, or holding this incident's offer; an ambulance only while the
    /// incident has none), best road ETA first, at most `limit` (capped at
    /// [`MAX_CANDIDATES`]). `None` for an unknown or closed incident.
    ///
    /// The nearest by straight line are taken from each responder tree (three per place
    /// wanted), then ranked by road ETA: a far responder with a fast road can be missed, which
    /// is acceptable for a list an operator picks from, and keeps the cost bounded.
    pub fn candidates(&self, incident_id: IncidentId, limit: usize) -> Option<Vec<Candidate>> {
        let inc = self.incidents.get(&incident_id)?;
        if !inc.status.is_open() {
            return None;
        }
        let limit = limit.clamp(1, MAX_CANDIDATES);
        let mut kinds: Vec<ResponderKind> = inc.plan.offered_kinds().to_vec();
        if inc.plan == Plan::Emergency && inc.ambulance.is_none() {
            kinds.push(ResponderKind::Ambulance);
        }
        let mut slots: BTreeSet<u32> = BTreeSet::new();
        for &kind in &kinds {
            for mode in [TravelMode::Foot, TravelMode::Car] {
                slots.extend(
                    self.responders
                        .index()
                        .nearest(tree_of(kind, mode), inc.xy)
                        .map(|(s, _)| s)
                        .filter(|&s| self.responders[s].status == ResponderStatus::Available)
                        .take(limit * 3),
                );
            }
        }
        for o in &inc.open_offers {
            if let Some(slot) = self
                .offers
                .get(o)
                .and_then(|o| self.responders.slot_of(&o.responder_id))
            {
                slots.insert(slot);
            }
        }
        let elder = self.roster.elder(&inc.elder_id);
        let mut found: Vec<(u64, u32)> = slots
            .into_iter()
            .filter(|&s| !self.responders[s].retired)
            .filter_map(|s| Some((self.eta_of(s, incident_id)?, s)))
            .collect();
        found.sort_unstable();
        found.truncate(limit);
        Some(
            found
                .into_iter()
                .map(|(eta_ms, s)| {
                    let r = &self.responders[s].record;
                    let (_, distance_m) = self.route_for(s, incident_id);
                    Candidate {
                        responder_id: r.id.clone(),
                        kind: r.kind,
                        travel_mode: r.travel_mode,
                        eta_s: super::secs(eta_ms) as u32,
                        distance_m: distance_m.round() as u32,
                        familiar: elder.is_some_and(|e| {
                            self.roster.is_familiar(e, r).is_some() || self.roster.is_kin(&e.id, r)
                        }),
                    }
                })
                .collect(),
        )
    }
}
