//! An incident after assignment: arrivals, completion (time bank, rest), closing, and
//! forgetting closed incidents after their retention.

use super::*;

impl Engine {
    /// Forgets incidents closed more than `closed_retention_ms` before `now`: the incident
    /// with its timeline, its alerts' duplicate keys and its offers. Runs at the start of
    /// every call, so a replay forgets at the same points.
    pub(super) fn forget_closed(&mut self, now: Timestamp) {
        let offers = &mut self.offers;
        self.incidents
            .forget_closed(now, self.config.closed_retention_ms, |inc| {
                for rec in &inc.timeline {
                    if let Event::OfferSent { offer_id, .. } = rec.event {
                        offers.forget(&offer_id);
                    }
                }
            });
    }

    /// The incident no longer waits for a retry: drop its retry timer too.
    pub(super) fn unwait(&mut self, incident_id: IncidentId) {
        if self.waiting.remove(&incident_id).is_some() {
            self.stop_timer(Timer::Retry(incident_id));
        }
    }

    /// The slot of a responder committed to `incident_id` in the state `action` needs
    /// (`ready` names the incident of that state). Committed to it in the other state is an
    /// invalid transition; anything else means they are not on this incident.
    pub(super) fn committed_slot(
        &self,
        id: &ResponderId,
        incident_id: IncidentId,
        action: &'static str,
        ready: fn(ResponderStatus) -> Option<IncidentId>,
    ) -> Result<u32, CommandError> {
        let slot = self.slot(id)?;
        self.open_incident(incident_id)?;
        let st = self.responders[slot].status;
        if ready(st) == Some(incident_id) {
            return Ok(slot);
        }
        match st {
            ResponderStatus::EnRoute { incident_id: i }
            | ResponderStatus::OnScene { incident_id: i }
                if i == incident_id =>
            {
                Err(CommandError::InvalidTransition {
                    responder: id.clone(),
                    action,
                    state: st.name(),
                })
            }
            _ => Err(CommandError::NotAssigned {
                responder: id.clone(),
                incident: incident_id,
            }),
        }
    }

    pub(super) fn arrived(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
        incident_id: IncidentId,
    ) -> Result<Reply, CommandError> {
        let slot = self.committed_slot(id, incident_id, "arrive", |st| match st {
            ResponderStatus::EnRoute { incident_id } => Some(incident_id),
            _ => None,
        })?;
        self.set_status(slot, ResponderStatus::OnScene { incident_id });
        let role = self
            .incidents
            .update(incident_id, |inc| {
                inc.arrived.insert(id.clone(), now);
                if inc.status.can_become(IncidentStatus::OnScene) {
                    inc.status = IncidentStatus::OnScene;
                }
                if inc.ambulance.as_ref() == Some(id) {
                    AssignmentRole::Ambulance
                } else {
                    AssignmentRole::Community
                }
            })
            .expect("checked");
        let inc = &self.incidents[&incident_id];
        let open: Vec<OfferId> = inc.open_offers.iter().copied().collect();
        self.unwait(incident_id);
        self.pending.remove(&incident_id);
        match role {
            AssignmentRole::Community => {
                self.stop_timer(Timer::SlaCommunityOnScene(incident_id));
                self.stop_timer(Timer::SlaJobOnScene(incident_id));
            }
            AssignmentRole::Ambulance => self.stop_timer(Timer::SlaAmbulanceOnScene(incident_id)),
        }
        // Somebody is at the door: nobody else needs to be asked.
        for o in open {
            self.withdraw(now, o, WithdrawReason::Filled, ResponderStatus::Available);
        }
        self.emit(
            now,
            Event::ResponderArrived {
                incident_id,
                responder_id: id.clone(),
                role,
            },
        );
        Ok(Reply::Done)
    }

    pub(super) fn complete(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
        incident_id: IncidentId,
    ) -> Result<Reply, CommandError> {
        let slot = self.committed_slot(id, incident_id, "complete", |st| match st {
            ResponderStatus::OnScene { incident_id } => Some(incident_id),
            _ => None,
        })?;
        self.release(now, slot, incident_id);
        let nobody_left = self
            .incidents
            .update(incident_id, |inc| {
                inc.completed.insert(id.clone());
                inc.committed().next().is_none()
            })
            .expect("checked");
        if nobody_left {
            self.close(
                now,
                incident_id,
                IncidentStatus::Resolved,
                Actor::Responder(id.clone()),
                format!("completed by {id}"),
            );
        }
        Ok(Reply::Done)
    }

    /// A responder leaves an incident: credit the time bank (volunteers who arrived), then
    /// rest (`PolicyConfig::rest_after`: volunteers and grid workers after an emergency,
    /// service staff after a job) or become available again.
    pub(super) fn release(&mut self, now: Timestamp, slot: u32, incident_id: IncidentId) {
        let r = &self.responders[slot];
        let id = r.record.id.clone();
        let kind = r.record.kind;
        let inc = &self.incidents[&incident_id];
        let (plan, arrived) = (inc.plan, inc.arrived.get(&id).copied());
        if kind == ResponderKind::Volunteer {
            if let Some(at) = arrived {
                let minutes = self.time_bank.credit(&id, incident_id, at, now);
                self.emit(
                    now,
                    Event::TimeBankCredited {
                        responder_id: id.clone(),
                        incident_id,
                        minutes,
                    },
                );
            }
        }
        let rest = arrived.and(self.config.rest_after(kind, plan, self.rules));
        if let Some(ms) = rest {
            let until = now.plus_ms(ms);
            self.set_status(slot, ResponderStatus::Resting { until });
            self.set_timer(until, Timer::RestOver(id));
        } else {
            self.set_status(slot, ResponderStatus::Available);
        }
    }

    /// Ends an incident: open offers withdrawn, committed responders released, timers dropped.
    pub(super) fn close(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        to: IncidentStatus,
        by: Actor,
        reason: String,
    ) {
        let inc = self.incidents.close(incident_id, to, now);
        let open: Vec<OfferId> = inc.open_offers.iter().copied().collect();
        let committed: Vec<ResponderId> = inc.committed().cloned().collect();
        self.unwait(incident_id);
        self.pending.remove(&incident_id);
        for o in open {
            self.withdraw(
                now,
                o,
                WithdrawReason::IncidentClosed,
                ResponderStatus::Available,
            );
        }
        for r in committed {
            if let Some(slot) = self.responders.slot_of(&r) {
                if self.responders[slot].status.incident() == Some(incident_id) {
                    self.release(now, slot, incident_id);
                }
            }
        }
        self.timers.stop_incident(incident_id);
        let care_by = self.care.holds(incident_id).then(|| by.clone());
        let event = match to {
            IncidentStatus::Cancelled => Event::IncidentCancelled {
                incident_id,
                by,
                reason,
            },
            _ => Event::IncidentResolved {
                incident_id,
                by,
                reason,
            },
        };
        self.emit(now, event);
        if let Some(by) = care_by {
            self.care_closed(now, incident_id, to, &by);
        }
    }
}
