//! Offers and assignments: the [`Offers`] room (every offer, ids minted in order, an offer
//! settled once), answering an offer (accept, decline), withdrawing offers, and an operator
//! assigning by hand.

use super::*;

/// Every offer still remembered (forgotten with its incident), and the next offer id.
pub(super) struct Offers {
    by_id: BTreeMap<OfferId, Offer>,
    next: u64,
}

impl std::ops::Index<&OfferId> for Offers {
    type Output = Offer;
    fn index(&self, id: &OfferId) -> &Offer {
        &self.by_id[id]
    }
}

impl Offers {
    pub(super) fn from_saved(by_id: BTreeMap<OfferId, Offer>, next: u64) -> Offers {
        Offers { by_id, next }
    }

    /// The offers, for saving.
    pub(super) fn all(&self) -> &BTreeMap<OfferId, Offer> {
        &self.by_id
    }

    /// The next id to mint, for saving.
    pub(super) fn next_id(&self) -> u64 {
        self.next
    }

    pub(super) fn get(&self, id: &OfferId) -> Option<&Offer> {
        self.by_id.get(id)
    }

    /// A new open offer under the next id (ids are minted in order, never reused).
    pub(super) fn open(
        &mut self,
        incident_id: IncidentId,
        responder_id: ResponderId,
        wave: u32,
        sent_at: Timestamp,
        expires_at: Timestamp,
        eta_ms: u64,
    ) -> OfferId {
        let id = OfferId(self.next);
        self.next += 1;
        self.by_id.insert(
            id,
            Offer {
                id,
                incident_id,
                responder_id,
                wave,
                sent_at,
                expires_at,
                eta_ms,
                status: OfferStatus::Open,
            },
        );
        id
    }

    /// Settles an open offer (accepted, declined, expired or withdrawn); an offer is settled
    /// once. `None` if there is no such offer or it is no longer open.
    pub(super) fn settle(&mut self, id: OfferId, to: OfferStatus) -> Option<&Offer> {
        debug_assert!(to != OfferStatus::Open);
        let o = self.by_id.get_mut(&id)?;
        if o.status != OfferStatus::Open {
            return None;
        }
        o.status = to;
        Some(o)
    }

    /// Forgets an offer (its incident is forgotten).
    pub(super) fn forget(&mut self, id: &OfferId) {
        self.by_id.remove(id);
    }
}

impl Engine {
    /// Checks an offer can be answered by `id` now.
    pub(super) fn answerable(
        &self,
        now: Timestamp,
        id: &ResponderId,
        offer_id: OfferId,
    ) -> Result<u32, CommandError> {
        let slot = self.slot(id)?;
        let o = self
            .offers
            .get(&offer_id)
            .ok_or(CommandError::UnknownOffer(offer_id))?;
        if &o.responder_id != id {
            return Err(CommandError::NotYourOffer {
                offer: offer_id,
                responder: id.clone(),
            });
        }
        if o.status != OfferStatus::Open || now >= o.expires_at {
            return Err(CommandError::OfferClosed(offer_id));
        }
        Ok(slot)
    }

    pub(super) fn accept(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
        offer_id: OfferId,
    ) -> Result<Reply, CommandError> {
        let slot = self.answerable(now, id, offer_id)?;
        let o = self
            .offers
            .settle(offer_id, OfferStatus::Accepted)
            .expect("checked");
        let (incident_id, eta_ms) = (o.incident_id, o.eta_ms);
        self.record_answer(slot, incident_id, true);
        self.stop_timer(Timer::OfferExpiry(offer_id));
        let wave = self
            .incidents
            .update(incident_id, |inc| {
                inc.open_offers.remove(&offer_id);
                inc.wave
            })
            .expect("open offers belong to open incidents");
        let reason = format!(
            "{id} accepted offer {offer_id} (wave {}) and is on the way, ETA {} s",
            wave,
            secs(eta_ms)
        );
        self.assign_community(now, incident_id, slot, eta_ms, reason);
        Ok(Reply::Done)
    }

    /// Commits a community responder (from `available` or `offered`) to an incident.
    pub(super) fn assign_community(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        slot: u32,
        eta_ms: u64,
        reason: String,
    ) {
        let id = self.responders[slot].record.id.clone();
        self.set_status(slot, ResponderStatus::EnRoute { incident_id });
        self.responders.count_assignment(slot, now);
        let first = self
            .incidents
            .update(incident_id, |inc| {
                let first = inc.community.is_empty();
                inc.community.push(id.clone());
                if inc.first_accept_at.is_none() {
                    inc.first_accept_at = Some(now);
                }
                if inc.status == IncidentStatus::Dispatching {
                    inc.status = IncidentStatus::Assigned;
                }
                first
            })
            .expect("caller checked");
        let inc = &self.incidents[&incident_id];
        let others: Vec<OfferId> = inc.open_offers.iter().copied().collect();
        self.unwait(incident_id);
        self.pending.remove(&incident_id);
        if first {
            self.stop_timer(Timer::SlaFirstAccept(incident_id));
            self.stop_timer(Timer::SlaJobAccept(incident_id));
            self.stop_timer(Timer::AmbulanceIfNoAccept(incident_id));
        }
        for o in others {
            self.withdraw(now, o, WithdrawReason::Filled, ResponderStatus::Available);
        }
        let (route, _) = self.route_for(slot, incident_id);
        self.emit(
            now,
            Event::Assigned {
                incident_id,
                responder_id: id,
                role: AssignmentRole::Community,
                eta_s: secs(eta_ms) as u32,
                route,
                reason,
            },
        );
    }

    /// Takes an open offer back; the responder becomes `then` (available or off duty).
    pub(super) fn withdraw(
        &mut self,
        now: Timestamp,
        offer_id: OfferId,
        why: WithdrawReason,
        then: ResponderStatus,
    ) {
        let Some(o) = self.offers.settle(offer_id, OfferStatus::Withdrawn) else {
            return;
        };
        let (incident_id, responder_id) = (o.incident_id, o.responder_id.clone());
        self.stop_timer(Timer::OfferExpiry(offer_id));
        self.incidents
            .update(incident_id, |i| i.open_offers.remove(&offer_id));
        if let Some(slot) = self.responders.slot_of(&responder_id) {
            self.set_status(slot, then);
        }
        if matches!(
            why,
            WithdrawReason::ResponderUnavailable | WithdrawReason::Preempted
        ) {
            self.offer_closed(incident_id, offer_id);
        }
        self.emit(
            now,
            Event::OfferWithdrawn {
                offer_id,
                incident_id,
                responder_id,
                reason: why,
            },
        );
    }

    /// Frees `slot` from an open offer of another incident than `for_incident` before it is
    /// offered `for_incident`: a surge's joint round moves it (`reassigned`), an emergency
    /// takes it from a service or welfare visit (`preempted`, and that job asks someone else).
    pub(super) fn take_back(&mut self, now: Timestamp, slot: u32, for_incident: IncidentId) {
        if let ResponderStatus::Offered {
            offer_id,
            incident_id,
        } = self.responders[slot].status
        {
            if incident_id != for_incident {
                let why = if self.incidents[&incident_id].plan == Plan::Emergency {
                    WithdrawReason::Reassigned
                } else {
                    WithdrawReason::Preempted
                };
                self.withdraw(now, offer_id, why, ResponderStatus::Available);
            }
        }
    }

    pub(super) fn decline(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
        offer_id: OfferId,
    ) -> Result<Reply, CommandError> {
        let slot = self.answerable(now, id, offer_id)?;
        let incident_id = self
            .offers
            .settle(offer_id, OfferStatus::Declined)
            .expect("checked")
            .incident_id;
        self.record_answer(slot, incident_id, false);
        self.stop_timer(Timer::OfferExpiry(offer_id));
        self.set_status(slot, ResponderStatus::Available);
        self.offer_closed(incident_id, offer_id);
        self.emit(
            now,
            Event::OfferDeclined {
                offer_id,
                incident_id,
                responder_id: id.clone(),
            },
        );
        Ok(Reply::Done)
    }

    /// Remembers how `slot` answered an offer of `incident_id` (emergencies only: a service's
    /// long offer says little about answering a fall): the history waves are sized from.
    /// An answer replayed from a record an earlier version decided teaches nothing, as that
    /// engine kept no answers ([`crate::journal::ANSWERS_SINCE`]).
    pub(super) fn record_answer(&mut self, slot: u32, incident_id: IncidentId, accepted: bool) {
        if self.rules >= crate::journal::ANSWERS_SINCE
            && self
                .incidents
                .get(&incident_id)
                .is_some_and(|i| i.plan == Plan::Emergency)
        {
            self.responders.record_answer(slot, accepted);
        }
    }

    /// After a decline or expiry: a wave with no open offer left moves on to the next wave
    /// (the replacing baseline replaces each one at once: `waves.rs` `top_up`).
    pub(super) fn offer_closed(&mut self, incident_id: IncidentId, offer_id: OfferId) {
        let replace = matches!(
            self.config.matching,
            MatchingMode::NearestRadius { replace: true, .. }
        );
        let drained = self.incidents.update(incident_id, |i| {
            i.open_offers.remove(&offer_id);
            (i.open_offers.is_empty() || replace) && i.status == IncidentStatus::Dispatching
        });
        if drained == Some(true) {
            self.pending.insert(incident_id);
        }
    }

    pub(super) fn operator_assign(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        id: &ResponderId,
        operator: &crate::ids::OperatorId,
    ) -> Result<Reply, CommandError> {
        let slot = self.slot(id)?;
        let inc = self.open_incident(incident_id)?;
        if inc.status == IncidentStatus::Scheduled {
            return Err(CommandError::Invalid(format!(
                "incident {incident_id} is scheduled for later"
            )));
        }
        if let Some(p) = &inc.needs_operator {
            // Its elder or position is unknown or in doubt: no route or ETA to give anyone.
            return Err(CommandError::Invalid(format!(
                "incident {incident_id} cannot be dispatched ({}): handle it by phone, then \
                 resolve or cancel it",
                p.message
            )));
        }
        let st = self.responders[slot].status;
        let kind = self.responders[slot].record.kind;
        // Kin help only their own elder, in emergencies and welfare visits (decision version
        // 5): an operator cannot send them elsewhere either.
        if kind == ResponderKind::Kin
            && !(self.responders[slot].record.kin_of.contains(&inc.elder_id)
                && matches!(inc.plan, Plan::Emergency | Plan::WelfareVisit)
                && inc.kind != crate::model::AlertKind::CarePlan)
        {
            return Err(CommandError::Invalid(format!(
                "{id} is family of {}: they are only sent to that elder's emergencies and                  welfare visits",
                self.responders[slot]
                    .record
                    .kin_of
                    .iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if kind == ResponderKind::Ambulance && inc.ambulance.is_some() {
            return Err(CommandError::Invalid(format!(
                "incident {incident_id} already has an ambulance"
            )));
        }
        match st {
            ResponderStatus::Available => {}
            ResponderStatus::Offered { incident_id: i, .. } if i == incident_id => {}
            _ => {
                return Err(CommandError::InvalidTransition {
                    responder: id.clone(),
                    action: "be assigned",
                    state: st.name(),
                })
            }
        }
        if let ResponderStatus::Offered { offer_id, .. } = st {
            self.offers
                .settle(offer_id, OfferStatus::Accepted)
                .expect("offered state names an open offer");
            self.stop_timer(Timer::OfferExpiry(offer_id));
            self.incidents
                .update(incident_id, |i| i.open_offers.remove(&offer_id));
        }
        let eta_ms = self.eta_of(slot, incident_id).unwrap_or(0);
        if kind == ResponderKind::Ambulance {
            self.assign_ambulance(
                now,
                incident_id,
                slot,
                eta_ms,
                format!("assigned by operator {operator}"),
            );
        } else {
            self.assign_community(
                now,
                incident_id,
                slot,
                eta_ms,
                format!("assigned by operator {operator}, ETA {} s", secs(eta_ms)),
            );
        }
        Ok(Reply::Done)
    }
}
