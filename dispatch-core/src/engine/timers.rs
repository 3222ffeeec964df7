//! The timers: setting and stopping them, and what each one does when it fires.

use super::*;

/// Something the engine must do at a given time. Ordered, so timers due at the same moment
/// fire in a fixed order (offer expiries before SLA checks).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "timer", content = "id", rename_all = "snake_case")]
pub enum Timer {
    OfferExpiry(OfferId),
    /// A scheduled service reaches its lead time.
    IncidentStart(IncidentId),
    /// Try again after nobody could be asked.
    Retry(IncidentId),
    /// Try again to find an ambulance.
    AmbulanceRetry(IncidentId),
    /// No community responder accepted within 60 s: ambulance.
    AmbulanceIfNoAccept(IncidentId),
    SlaFirstAccept(IncidentId),
    SlaCommunityOnScene(IncidentId),
    SlaAmbulanceOnScene(IncidentId),
    RestOver(ResponderId),
}

impl Engine {
    pub(super) fn set_timer(&mut self, at: Timestamp, t: Timer) {
        self.timers.insert((at, t));
    }

    pub(super) fn cancel_timer(&mut self, at: Timestamp, t: Timer) {
        self.timers.remove(&(at, t));
    }

    pub(super) fn fire(&mut self, now: Timestamp, at: Timestamp, timer: Timer) {
        match timer {
            Timer::OfferExpiry(offer_id) => {
                let Some(o) = self.offers.get_mut(&offer_id) else {
                    return;
                };
                if o.status != OfferStatus::Open {
                    return;
                }
                o.status = OfferStatus::Expired;
                let (incident_id, responder_id) = (o.incident_id, o.responder_id.clone());
                if let Some(&slot) = self.slots.get(&responder_id) {
                    self.set_status(slot, ResponderStatus::Available);
                }
                self.offer_closed(incident_id, offer_id);
                self.emit(
                    now,
                    Event::OfferExpired {
                        offer_id,
                        incident_id,
                        responder_id,
                    },
                );
            }
            Timer::IncidentStart(i) => {
                if let Some(inc) = self.incidents.get_mut(&i) {
                    if inc.status == IncidentStatus::Scheduled {
                        let key = urgency_key(inc);
                        inc.status = IncidentStatus::Dispatching;
                        self.pending.insert(i);
                        self.reindex_waiting(i, Some(key));
                    }
                }
            }
            Timer::Retry(i) => {
                // Leaving `waiting` makes a fruitless retry report (and re-arm) again.
                if self.waiting.remove(&i).is_some() {
                    self.pending.insert(i);
                }
            }
            Timer::AmbulanceRetry(i) => {
                // Dead once an ambulance is assigned (that never reverts), so it needs no
                // cancelling.
                let wanted = self.incidents.get(&i).and_then(|inc| {
                    (inc.status.is_open() && inc.ambulance.is_none())
                        .then(|| inc.ambulance_wanted.clone())
                        .flatten()
                });
                if let Some(why) = wanted {
                    // `ambulance_wanted` stays set: a retry that finds none again re-arms
                    // quietly (the wait was already said).
                    self.dispatch_ambulance(now, i, why);
                }
            }
            Timer::AmbulanceIfNoAccept(i) => {
                let Some(inc) = self.incidents.get(&i) else {
                    return;
                };
                if inc.status.is_open()
                    && !inc.has_community()
                    && inc.ambulance.is_none()
                    && inc.ambulance_wanted.is_none()
                {
                    let s = secs(self.config.ambulance_after_no_accept_ms);
                    self.dispatch_ambulance(
                        now,
                        i,
                        format!("no community responder accepted within {s} s"),
                    );
                }
            }
            Timer::SlaFirstAccept(i) => {
                let Some(inc) = self.incidents.get(&i) else {
                    return;
                };
                let (status, accepted) = (inc.status, inc.first_accept_at.is_some());
                if status.is_open() && !accepted {
                    self.emit(
                        now,
                        Event::SlaBreached {
                            incident_id: i,
                            sla: Sla::FirstAccept,
                            deadline: at,
                        },
                    );
                    if status == IncidentStatus::Dispatching && !self.pending.contains(&i) {
                        self.emit(now, Event::Escalated { incident_id: i, reason: "nobody accepted within the first-accept SLA: widening to the next wave now".into() });
                        self.pending.insert(i);
                    }
                }
            }
            Timer::SlaCommunityOnScene(i) => {
                let Some(inc) = self.incidents.get(&i) else {
                    return;
                };
                let community_here = inc.community.iter().any(|r| inc.arrived.contains_key(r));
                if inc.status.is_open() && !community_here {
                    self.emit(
                        now,
                        Event::SlaBreached {
                            incident_id: i,
                            sla: Sla::CommunityOnScene,
                            deadline: at,
                        },
                    );
                    let inc = &self.incidents[&i];
                    if inc.ambulance.is_none() && inc.ambulance_wanted.is_none() {
                        let s = secs(self.config.sla_community_on_scene_ms);
                        self.dispatch_ambulance(
                            now,
                            i,
                            format!("no community responder on scene within {s} s"),
                        );
                    }
                }
            }
            Timer::SlaAmbulanceOnScene(i) => {
                let Some(inc) = self.incidents.get(&i) else {
                    return;
                };
                let here = inc
                    .ambulance
                    .as_ref()
                    .is_some_and(|a| inc.arrived.contains_key(a));
                if inc.status.is_open() && !here {
                    self.emit(
                        now,
                        Event::SlaBreached {
                            incident_id: i,
                            sla: Sla::AmbulanceOnScene,
                            deadline: at,
                        },
                    );
                    self.emit(
                        now,
                        Event::Escalated {
                            incident_id: i,
                            reason: "ambulance not on scene in time: operator attention".into(),
                        },
                    );
                }
            }
            Timer::RestOver(id) => {
                let Some(&slot) = self.slots.get(&id) else {
                    return;
                };
                if matches!(self.responders[slot as usize].status, ResponderStatus::Resting { until } if until <= now)
                {
                    self.set_status(slot, ResponderStatus::Available);
                    self.emit(
                        now,
                        Event::ResponderAvailability {
                            responder_id: id,
                            status: Availability::Available,
                        },
                    );
                }
            }
        }
    }
}
