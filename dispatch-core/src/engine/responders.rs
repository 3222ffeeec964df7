//! Responders' own state: location updates, availability, roster edits, and the one
//! place a status changes (`set_status`, which keeps the R-tree of available responders true).

use super::*;

impl Engine {
    /// Puts an available responder into the R-tree at their live position.
    pub(super) fn index_insert(&mut self, slot: u32) {
        let r = &mut self.responders[slot as usize];
        if r.anchor.is_none() {
            r.anchor = Some(r.xy);
            let t = tree_of(r.record.kind, r.record.travel_mode);
            self.index.insert(t, slot, r.xy);
        }
    }

    pub(super) fn index_remove(&mut self, slot: u32) {
        let r = &mut self.responders[slot as usize];
        if let Some(a) = r.anchor.take() {
            let t = tree_of(r.record.kind, r.record.travel_mode);
            self.index.remove(t, slot, a);
        }
    }

    /// Moves a responder between states, keeping the R-tree in step (only `available`
    /// responders are indexed). Illegal transitions are bugs: callers check first.
    pub(super) fn set_status(&mut self, slot: u32, to: ResponderStatus) {
        let from = self.responders[slot as usize].status;
        debug_assert!(from.can_become(&to), "{} -> {}", from.name(), to.name());
        self.responders[slot as usize].status = to;
        match to {
            ResponderStatus::Available => {
                self.index_insert(slot);
                // Somebody can be asked again: the most urgent incidents waiting for a retry
                // try now (a bounded number, so a surge stays linear; the others' retry
                // timers still fire).
                let woken = self.most_urgent(
                    self.waiting.keys().copied(),
                    self.config.surge_max_incidents,
                );
                self.pending.extend(woken);
            }
            _ => self.index_remove(slot),
        }
    }

    pub(super) fn location(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
        p: LatLon,
    ) -> Result<Reply, CommandError> {
        let slot = self.slot(id)?;
        let off = |detail: String| CommandError::OffMap {
            lat: p.lat,
            lon: p.lon,
            detail,
        };
        let p = p.validate().map_err(|e| off(e.to_string()))?;
        let xy = self.projection.to_xy(p);
        let d2 = xy[0] * xy[0] + xy[1] * xy[1];
        if d2 > self.config.map_radius_m * self.config.map_radius_m {
            return Err(off(format!(
                "{:.0} m from the map centre (limit {:.0} m)",
                d2.sqrt(),
                self.config.map_radius_m
            )));
        }
        let r = &mut self.responders[slot as usize];
        r.position = p;
        r.xy = xy;
        r.position_at = Some(now);
        if let Some(a) = r.anchor {
            if needs_reindex(a, xy) {
                let t = tree_of(r.record.kind, r.record.travel_mode);
                r.anchor = Some(xy);
                self.index.remove(t, slot, a);
                self.index.insert(t, slot, xy);
            }
        }
        self.emit(
            now,
            Event::ResponderMoved {
                responder_id: id.clone(),
                position: p,
            },
        );
        Ok(Reply::Done)
    }

    pub(super) fn set_availability(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
        to: Availability,
    ) -> Result<Reply, CommandError> {
        let slot = self.slot(id)?;
        let st = self.responders[slot as usize].status;
        let refuse = |action| CommandError::InvalidTransition {
            responder: id.clone(),
            action,
            state: st.name(),
        };
        match (to, st) {
            (Availability::Available, ResponderStatus::Available)
            | (Availability::OffDuty, ResponderStatus::OffDuty) => return Ok(Reply::Done),
            (Availability::Available, ResponderStatus::OffDuty) => {
                self.responders[slot as usize].position_at = Some(now);
                self.set_status(slot, ResponderStatus::Available);
            }
            (Availability::Available, _) => return Err(refuse("go available")),
            (Availability::OffDuty, ResponderStatus::Available) => {
                self.set_status(slot, ResponderStatus::OffDuty)
            }
            (Availability::OffDuty, ResponderStatus::Offered { offer_id, .. }) => {
                self.withdraw(
                    now,
                    offer_id,
                    WithdrawReason::ResponderUnavailable,
                    ResponderStatus::OffDuty,
                );
            }
            (Availability::OffDuty, ResponderStatus::Resting { .. }) => {
                self.stop_timer(Timer::RestOver(id.clone()));
                self.set_status(slot, ResponderStatus::OffDuty);
            }
            (Availability::OffDuty, _) => return Err(refuse("go off duty")),
        }
        self.emit(
            now,
            Event::ResponderAvailability {
                responder_id: id.clone(),
                status: to,
            },
        );
        Ok(Reply::Done)
    }

    pub(super) fn upsert_responder(
        &mut self,
        rec: crate::roster::ResponderRecord,
    ) -> Result<Reply, CommandError> {
        let roads = self.roads.clone();
        let on_map = |p: LatLon| roads.check_on_map(p);
        self.roster
            .upsert_responder(rec.clone(), &on_map)
            .map_err(roster_to_command_error)?;
        match self.slots.get(&rec.id).copied() {
            Some(slot) => {
                // Re-index under the (possibly new) kind and mode.
                let was_indexed = self.responders[slot as usize].anchor.is_some();
                self.index_remove(slot);
                let r = &mut self.responders[slot as usize];
                r.record = rec;
                if r.retired {
                    r.retired = false;
                    r.status = ResponderStatus::OffDuty;
                }
                if was_indexed {
                    self.index_insert(slot);
                }
            }
            None => {
                let slot = self.responders.len() as u32;
                let xy = self.projection.to_xy(rec.home);
                self.slots.insert(rec.id.clone(), slot);
                self.responders.push(ResponderState::new(rec, xy));
            }
        }
        Ok(Reply::Done)
    }

    pub(super) fn retire_responder(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
    ) -> Result<Reply, CommandError> {
        let slot = self.slot(id)?;
        let st = self.responders[slot as usize].status;
        if st.incident().is_some() {
            return Err(CommandError::InvalidTransition {
                responder: id.clone(),
                action: "retire",
                state: st.name(),
            });
        }
        self.roster
            .retire_responder(id)
            .map_err(roster_to_command_error)?;
        match st {
            ResponderStatus::Offered { offer_id, .. } => self.withdraw(
                now,
                offer_id,
                WithdrawReason::ResponderUnavailable,
                ResponderStatus::OffDuty,
            ),
            ResponderStatus::Resting { .. } => {
                self.stop_timer(Timer::RestOver(id.clone()));
                self.set_status(slot, ResponderStatus::OffDuty);
            }
            ResponderStatus::Available => self.set_status(slot, ResponderStatus::OffDuty),
            _ => {}
        }
        self.responders[slot as usize].retired = true;
        Ok(Reply::Done)
    }
}
