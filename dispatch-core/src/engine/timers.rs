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
    /// A service's or welfare visit's promises (decision version 4 on).
    SlaJobAccept(IncidentId),
    SlaJobOnScene(IncidentId),
    /// The next thing to do for one care-plan item: open a window's job, or call an
    /// occurrence missed (`care.rs`).
    CarePlan(crate::care_plan::CareKey),
    /// An elder's daily check-in is due (`check_ins.rs`).
    CheckInDue(ElderId),
    /// A road closure's window opens or ends (`roads.rs`).
    RoadClosure(String),
}

impl Timer {
    /// The timers an incident owns (all but offer expiries and rests), for stopping them
    /// all when it closes.
    fn of_incident(i: IncidentId) -> [Timer; 9] {
        [
            Timer::IncidentStart(i),
            Timer::Retry(i),
            Timer::AmbulanceRetry(i),
            Timer::AmbulanceIfNoAccept(i),
            Timer::SlaFirstAccept(i),
            Timer::SlaCommunityOnScene(i),
            Timer::SlaAmbulanceOnScene(i),
            Timer::SlaJobAccept(i),
            Timer::SlaJobOnScene(i),
        ]
    }
}

/// The pending timers, at most one per [`Timer`] (a timer names its owner and its kind):
/// setting one again moves it, and stopping one needs only its name, never its deadline.
#[derive(Debug, Clone, Default)]
pub(super) struct TimerTable {
    /// Due order: earliest first, then the `Timer` order for the same instant.
    by_time: BTreeSet<(Timestamp, Timer)>,
    deadline: BTreeMap<Timer, Timestamp>,
}

impl TimerTable {
    /// Sets `t` to fire at `at`, replacing its earlier deadline if it had one.
    pub(super) fn set(&mut self, at: Timestamp, t: Timer) {
        if let Some(old) = self.deadline.insert(t.clone(), at) {
            self.by_time.remove(&(old, t.clone()));
        }
        self.by_time.insert((at, t));
    }

    /// Stops `t` if it is pending.
    pub(super) fn stop(&mut self, t: &Timer) {
        if let Some(at) = self.deadline.remove(t) {
            self.by_time.remove(&(at, t.clone()));
        }
    }

    /// Stops every timer of an incident.
    pub(super) fn stop_incident(&mut self, i: IncidentId) {
        for t in Timer::of_incident(i) {
            self.stop(&t);
        }
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<Timestamp> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Takes the earliest timer if it is due at or before `now`.
    pub(super) fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, Timer)> {
        if self.next()? > now {
            return None;
        }
        let (at, t) = self.by_time.pop_first()?;
        self.deadline.remove(&t);
        Some((at, t))
    }

    /// Every pending timer in due order (the saved form).
    pub(super) fn to_vec(&self) -> Vec<(Timestamp, Timer)> {
        self.by_time.iter().cloned().collect()
    }

    /// Rebuilds the table from its saved form.
    pub(super) fn from_saved(saved: Vec<(Timestamp, Timer)>) -> TimerTable {
        let mut t = TimerTable::default();
        for (at, timer) in saved {
            t.set(at, timer);
        }
        t
    }
}

impl Engine {
    pub(super) fn set_timer(&mut self, at: Timestamp, t: Timer) {
        self.timers.set(at, t);
    }

    pub(super) fn stop_timer(&mut self, t: Timer) {
        self.timers.stop(&t);
    }

    /// An accept promise (`first_accept`, `job_accept`) due at `at`: if the open incident
    /// has nobody who accepted, says `sla_breached` and returns its status.
    fn accept_breached(
        &mut self,
        now: Timestamp,
        at: Timestamp,
        i: IncidentId,
        sla: Sla,
    ) -> Option<IncidentStatus> {
        let inc = self.incidents.get(&i)?;
        let (status, accepted) = (inc.status, inc.first_accept_at.is_some());
        if !status.is_open() || accepted {
            return None;
        }
        self.emit(
            now,
            Event::SlaBreached {
                incident_id: i,
                sla,
                deadline: at,
            },
        );
        Some(status)
    }

    pub(super) fn fire(&mut self, now: Timestamp, at: Timestamp, timer: Timer) {
        match timer {
            Timer::RoadClosure(id) => self.road_closure_due(now, id),
            Timer::OfferExpiry(offer_id) => {
                let Some(o) = self.offers.settle(offer_id, OfferStatus::Expired) else {
                    return;
                };
                let (incident_id, responder_id) = (o.incident_id, o.responder_id.clone());
                if let Some(slot) = self.responders.slot_of(&responder_id) {
                    self.record_answer(slot, incident_id, false);
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
                let started = self.incidents.update(i, |inc| {
                    let due = inc.status == IncidentStatus::Scheduled;
                    if due {
                        inc.status = IncidentStatus::Dispatching;
                    }
                    due
                });
                if started == Some(true) {
                    self.pending.insert(i);
                    self.start_job_timers(now, i);
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
                    let s = secs(self.config.ambulance_after_for(inc.care_level, self.rules));
                    self.dispatch_ambulance(
                        now,
                        i,
                        format!("no community responder accepted within {s} s"),
                    );
                }
            }
            Timer::SlaFirstAccept(i) => {
                if let Some(status) = self.accept_breached(now, at, i, Sla::FirstAccept) {
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
                        let s = secs(
                            self.config
                                .sla_community_on_scene_for(inc.care_level, self.rules),
                        );
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
            Timer::SlaJobAccept(i) => {
                if let Some(status) = self.accept_breached(now, at, i, Sla::JobAccept) {
                    if status == IncidentStatus::Dispatching {
                        let ms = self.config.sla_job_accept_ms;
                        let within = if ms % 60_000 == 0 {
                            format!("{} min", ms / 60_000)
                        } else {
                            format!("{} s", ms / 1_000)
                        };
                        self.emit(now, Event::Escalated { incident_id: i, reason: format!("nobody accepted the job within {within}: widening to the next wave now") });
                        self.pending.insert(i);
                    }
                }
            }
            Timer::SlaJobOnScene(i) => {
                let Some(inc) = self.incidents.get(&i) else {
                    return;
                };
                if inc.status.is_open() && inc.arrived.is_empty() {
                    self.emit(
                        now,
                        Event::SlaBreached {
                            incident_id: i,
                            sla: Sla::JobOnScene,
                            deadline: at,
                        },
                    );
                    self.emit(
                        now,
                        Event::Escalated {
                            incident_id: i,
                            reason: "nobody at the door in time: operator attention (call the elder, or assign by hand)".into(),
                        },
                    );
                }
            }
            Timer::CarePlan(key) => self.care_reconcile(now, key),
            Timer::CheckInDue(elder_id) => self.check_in_due(now, at, elder_id),
            Timer::RestOver(id) => {
                let Some(slot) = self.responders.slot_of(&id) else {
                    return;
                };
                if matches!(self.responders[slot].status, ResponderStatus::Resting { until } if until <= now)
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

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn a_timer_is_stopped_by_name_and_setting_it_again_moves_it() {
        let mut t = TimerTable::default();
        let i = IncidentId(7);
        t.set(Timestamp(30), Timer::SlaFirstAccept(i));
        t.set(Timestamp(10), Timer::OfferExpiry(OfferId(1)));
        t.set(Timestamp(20), Timer::Retry(i));
        // Moving a timer leaves one entry, at its new deadline.
        t.set(Timestamp(40), Timer::Retry(i));
        assert_eq!(t.to_vec().len(), 3);
        t.stop(&Timer::OfferExpiry(OfferId(1)));
        assert_eq!(t.next(), Some(Timestamp(30)));
        assert_eq!(t.pop_due(Timestamp(29)), None);
        assert_eq!(
            t.pop_due(Timestamp(35)),
            Some((Timestamp(30), Timer::SlaFirstAccept(i)))
        );
        t.set(Timestamp(50), Timer::RestOver(ResponderId::from("V1")));
        t.stop_incident(i);
        assert_eq!(
            t.to_vec(),
            vec![(Timestamp(50), Timer::RestOver(ResponderId::from("V1")))]
        );
        // The saved form rebuilds the same table.
        let again = TimerTable::from_saved(t.to_vec());
        assert_eq!(again.to_vec(), t.to_vec());
    }
}
