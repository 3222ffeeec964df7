//! The responders room: [`Responders`] owns every responder's live state, the id → slot
//! lookup, the R-tree of available responders, the grid workers by grid and the
//! snapped-position cache, and keeps them in step by construction: only `available` responders are in the R-tree, and a status
//! changes only through [`Responders::set_status`] (so a responder is never on two
//! incidents). The `Engine` methods below are the use cases: location updates, availability,
//! roster edits, and `Engine::set_status` (a status change plus waking waiting incidents).

use super::*;

/// Responders by dense slot; slots are never reused, so R-tree entries stay small.
pub(super) struct Responders {
    list: Vec<ResponderState>,
    /// Id → slot. Looked up only, never iterated (so a `HashMap` cannot affect decisions).
    slots: crate::ids::FastMap<ResponderId, u32>,
    /// Available responders by (kind, mode).
    index: ResponderIndex,
    /// Derived, not saved: the grid workers of each grid (not retired), by slot in order,
    /// with where they stand. An elder's own grid workers are familiar to every ranking of
    /// their incidents, and a ranking bounds each before it checks any: reading them here
    /// saves it an id lookup and a responder's record each (a grid may have thousands).
    /// The map is looked up only, never iterated (a ranking reads one grid's list).
    grid_slots: crate::ids::FastMap<crate::ids::GridId, Vec<GridWorker>>,
    /// Derived, not saved: each responder's position snapped to their mode's graph, keyed by
    /// the projected position it was snapped from (location updates do not snap; ranking
    /// snaps lazily, once per position). A pure function of the state, so it cannot change a
    /// decision.
    /// Behind a `Mutex` (never contended: one owner) so that `Engine` stays `Sync` for
    /// callers that share it behind a lock.
    placed_cache: Mutex<Vec<Option<PlacedEntry>>>,
    /// Derived, not saved: the sums of every responder's [`Answers`] (settled, accepted), the
    /// engine-wide acceptance a newcomer is predicted by.
    answer_totals: (u64, u64),
    /// Derived, not saved: the responders changed lately, in order (`kept.rs` drops a kept
    /// ranking that a change could alter). The oldest half is dropped past `CHANGES_KEPT`;
    /// `changes_dropped` counts what went.
    changes: Vec<Change>,
    changes_dropped: u64,
}

/// One change of a responder, with what deciding whether it matters needs (so that reading
/// the log touches nothing else).
#[derive(Debug, Clone, Copy)]
pub(super) struct Change {
    pub slot: u32,
    pub kind: ResponderKind,
    pub mode: TravelMode,
    /// Where the responder stood before and after the change.
    pub before: [f64; 2],
    pub after: [f64; 2],
}

/// A grid worker in their grid's list ([`Responders::grid_workers`]): what a ranking needs
/// to bound them as a familiar candidate (`Engine::forced_worker`), kept in step with their
/// state: the position on every move, the rest on every roster edit (which re-lists them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct GridWorker {
    pub slot: u32,
    /// Their live position, projected (`ResponderState::xy`).
    pub xy: [f64; 2],
    pub mode: TravelMode,
    pub walk_kmh: Option<f64>,
}

type GridLists = crate::ids::FastMap<crate::ids::GridId, Vec<GridWorker>>;

/// The grid list `r` belongs on, if any: a grid worker's with a grid, not retired.
fn grid_of(r: &ResponderState) -> Option<&crate::ids::GridId> {
    match (r.record.kind, &r.record.grid_id, r.retired) {
        (ResponderKind::GridWorker, Some(g), false) => Some(g),
        _ => None,
    }
}

/// Lists `slot` among its grid's workers, if it is a grid worker on the roster.
fn list_in_grid(grid_slots: &mut GridLists, slot: u32, r: &ResponderState) {
    if let Some(g) = grid_of(r) {
        let v = grid_slots.entry(g.clone()).or_default();
        if let Err(i) = v.binary_search_by_key(&slot, |w| w.slot) {
            let w = GridWorker {
                slot,
                xy: r.xy,
                mode: r.record.travel_mode,
                walk_kmh: r.record.walk_kmh,
            };
            v.insert(i, w);
        }
    }
}

/// Takes `slot` off its grid's list (before its record changes or it retires).
fn unlist_from_grid(grid_slots: &mut GridLists, slot: u32, r: &ResponderState) {
    if let Some(v) = r
        .record
        .grid_id
        .as_ref()
        .and_then(|g| grid_slots.get_mut(g))
    {
        if let Ok(i) = v.binary_search_by_key(&slot, |w| w.slot) {
            v.remove(i);
        }
    }
}

/// Changes kept in [`Responders::changes`] before the oldest half is dropped.
/// Twice the longest list `kept.rs` reads (`SCAN_MAX`): the log always holds the last
/// 2,048 changes, and is about 200 KB.
pub(super) const CHANGES_KEPT: usize = 4096;

impl std::ops::Index<u32> for Responders {
    type Output = ResponderState;
    fn index(&self, slot: u32) -> &ResponderState {
        &self.list[slot as usize]
    }
}

impl Responders {
    /// Rebuilds the derived lookups (id → slot, R-tree, grid lists) from saved states.
    pub(super) fn from_saved(list: Vec<ResponderState>) -> Responders {
        let slots = list
            .iter()
            .enumerate()
            .map(|(i, r)| (r.record.id.clone(), i as u32))
            .collect();
        let index = ResponderIndex::bulk_load(list.iter().enumerate().filter_map(|(i, r)| {
            r.anchor
                .map(|a| (tree_of(r.record.kind, r.record.travel_mode), i as u32, a))
        }));
        let mut grid_slots = crate::ids::FastMap::default();
        for (slot, r) in list.iter().enumerate() {
            list_in_grid(&mut grid_slots, slot as u32, r);
        }
        let answer_totals = list.iter().fold((0, 0), |(s, a), r| {
            (
                s + u64::from(r.answers.settled),
                a + u64::from(r.answers.accepted),
            )
        });
        Responders {
            list,
            slots,
            index,
            grid_slots,
            placed_cache: Mutex::new(Vec::new()),
            answer_totals,
            changes: Vec::new(),
            changes_dropped: 0,
        }
    }

    /// Notes that `slot` is about to change (called before the change, or right after a new
    /// responder is added; a move then notes where it went).
    fn changed(&mut self, slot: u32) {
        if self.changes.len() >= CHANGES_KEPT {
            let half = CHANGES_KEPT / 2;
            self.changes.drain(..half);
            self.changes_dropped += half as u64;
        }
        let r = &self.list[slot as usize];
        self.changes.push(Change {
            slot,
            kind: r.record.kind,
            mode: r.record.travel_mode,
            before: r.xy,
            after: r.xy,
        });
    }

    /// How many changes there have been (a mark for [`Self::changes_since`]).
    pub(super) fn change_count(&self) -> u64 {
        self.changes_dropped + self.changes.len() as u64
    }

    /// The changes after `mark`, or `None` if some of them are no longer kept.
    pub(super) fn changes_since(&self, mark: u64) -> Option<&[Change]> {
        let i = mark.checked_sub(self.changes_dropped)?;
        self.changes.get(i as usize..)
    }

    /// The saved form (every slot, retired ones included).
    pub(super) fn to_saved(&self) -> Vec<ResponderState> {
        self.list.clone()
    }

    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    /// Every responder in slot order (retired ones included).
    pub(super) fn iter(&self) -> std::slice::Iter<'_, ResponderState> {
        self.list.iter()
    }

    /// The slot of `id`, retired or not.
    pub(super) fn slot_of(&self, id: &ResponderId) -> Option<u32> {
        self.slots.get(id).copied()
    }

    /// The R-tree of available responders (read only: it changes with their status).
    pub(super) fn index(&self) -> &ResponderIndex {
        &self.index
    }

    /// `grid`'s grid workers (retired ones aside), by slot in order.
    pub(super) fn grid_workers(&self, grid: &crate::ids::GridId) -> &[GridWorker] {
        self.grid_slots.get(grid).map(Vec::as_slice).unwrap_or(&[])
    }

    fn index_insert(&mut self, slot: u32) {
        let r = &mut self.list[slot as usize];
        if r.anchor.is_none() {
            r.anchor = Some(r.xy);
            let t = tree_of(r.record.kind, r.record.travel_mode);
            self.index.insert(t, slot, r.xy);
        }
    }

    fn index_remove(&mut self, slot: u32) {
        let r = &mut self.list[slot as usize];
        if let Some(a) = r.anchor.take() {
            let t = tree_of(r.record.kind, r.record.travel_mode);
            self.index.remove(t, slot, a);
        }
    }

    /// The one place a status changes, keeping the R-tree in step (only `available`
    /// responders are indexed). Illegal transitions are bugs: callers check first.
    pub(super) fn set_status(&mut self, slot: u32, to: ResponderStatus) {
        self.changed(slot);
        let from = self.list[slot as usize].status;
        debug_assert!(from.can_become(&to), "{} -> {}", from.name(), to.name());
        self.list[slot as usize].status = to;
        match to {
            ResponderStatus::Available => self.index_insert(slot),
            _ => self.index_remove(slot),
        }
    }

    /// A location update: the live position, and the R-tree entry if it drifted too far.
    pub(super) fn move_to(&mut self, slot: u32, p: LatLon, xy: [f64; 2], now: Timestamp) {
        self.changed(slot);
        if let Some(c) = self.changes.last_mut() {
            c.after = xy;
        }
        let r = &mut self.list[slot as usize];
        r.position = p;
        r.xy = xy;
        r.position_at = Some(now);
        if let Some(v) = grid_of(r).and_then(|g| self.grid_slots.get_mut(g)) {
            if let Ok(i) = v.binary_search_by_key(&slot, |w| w.slot) {
                v[i].xy = xy;
            }
        }
        if let Some(a) = r.anchor {
            if needs_reindex(a, xy) {
                let t = tree_of(r.record.kind, r.record.travel_mode);
                r.anchor = Some(xy);
                self.index.remove(t, slot, a);
                self.index.insert(t, slot, xy);
            }
        }
    }

    /// The phone's session: live (`session`) or gone since `offline_since`.
    pub(super) fn set_presence(
        &mut self,
        slot: u32,
        session: Option<u64>,
        offline_since: Option<Timestamp>,
    ) {
        self.changed(slot);
        let r = &mut self.list[slot as usize];
        r.session = session;
        r.offline_since = offline_since;
    }

    /// A restart: every live session is gone as of `now`.
    pub(super) fn reset_sessions(&mut self, now: Timestamp) {
        for slot in 0..self.list.len() as u32 {
            if self.list[slot as usize].session.is_some() {
                self.changed(slot);
                let r = &mut self.list[slot as usize];
                r.session = None;
                r.offline_since = Some(now);
            }
        }
    }

    /// Whether any responder has a live session (a restart must reset them).
    pub(super) fn any_session(&self) -> bool {
        self.list.iter().any(|r| r.session.is_some())
    }

    /// The responder's position is confirmed as of `now` (going available).
    pub(super) fn confirm_position(&mut self, slot: u32, now: Timestamp) {
        self.changed(slot);
        self.list[slot as usize].position_at = Some(now);
    }

    /// Records how `slot` answered an emergency offer (accepted, or declined / let expire).
    pub(super) fn record_answer(&mut self, slot: u32, accepted: bool) {
        self.changed(slot);
        let (ds, da) = self.list[slot as usize].answers.record(accepted);
        self.answer_totals.0 = self.answer_totals.0.saturating_add_signed(ds);
        self.answer_totals.1 = self.answer_totals.1.saturating_add_signed(da);
    }

    /// Counts an emergency offer sent to `slot` on the day of `now` (the fairness cap).
    pub(super) fn count_offer(&mut self, slot: u32, now: Timestamp) {
        self.changed(slot);
        self.list[slot as usize].answers.count_offer(now);
    }

    /// The engine-wide share of emergency offers accepted, over every responder's record,
    /// shrunk towards `prior` with the weight of `weight` offers, so that an engine with no
    /// history yet predicts `prior`.
    pub(super) fn acceptance_rate(&self, prior: f64, weight: f64) -> f64 {
        let (s, a) = self.answer_totals;
        (a as f64 + weight * prior) / (s as f64 + weight)
    }

    /// Counts an assignment against the volunteer daily cap.
    pub(super) fn count_assignment(&mut self, slot: u32, now: Timestamp) {
        self.changed(slot);
        self.list[slot as usize].count_assignment(now);
    }

    /// A roster edit: an existing responder is re-indexed under the (possibly new) kind and
    /// mode (a retired one comes back off duty); a new one gets the next slot, off duty at
    /// `home_xy`.
    pub(super) fn upsert(&mut self, rec: crate::roster::ResponderRecord, home_xy: [f64; 2]) {
        match self.slots.get(&rec.id).copied() {
            Some(slot) => {
                self.changed(slot);
                let was_indexed = self.list[slot as usize].anchor.is_some();
                self.index_remove(slot);
                unlist_from_grid(&mut self.grid_slots, slot, &self.list[slot as usize]);
                let r = &mut self.list[slot as usize];
                r.record = rec;
                if r.retired {
                    r.retired = false;
                    r.status = ResponderStatus::OffDuty;
                }
                list_in_grid(&mut self.grid_slots, slot, r);
                if was_indexed {
                    self.index_insert(slot);
                }
            }
            None => {
                let slot = self.list.len() as u32;
                self.slots.insert(rec.id.clone(), slot);
                self.list.push(ResponderState::new(rec, home_xy));
                list_in_grid(&mut self.grid_slots, slot, &self.list[slot as usize]);
                self.changed(slot);
            }
        }
    }

    /// Retires a responder (already off duty, so out of the R-tree); the slot is kept.
    /// A responder retired while on a job leaves it: off duty, whatever the job's state (the
    /// one move the status table has no row for, because nobody but a retirement makes it).
    pub(super) fn leave_job(&mut self, slot: u32) {
        self.changed(slot);
        debug_assert!(self.list[slot as usize].status.incident().is_some());
        self.list[slot as usize].status = ResponderStatus::OffDuty;
        self.index_remove(slot);
    }

    pub(super) fn retire(&mut self, slot: u32) {
        self.changed(slot);
        debug_assert!(self.list[slot as usize].anchor.is_none());
        unlist_from_grid(&mut self.grid_slots, slot, &self.list[slot as usize]);
        self.list[slot as usize].retired = true;
    }

    /// A responder placed on their mode's graph, snapped at most once per position.
    pub(super) fn placed(&self, slot: u32, roads: &dyn TravelTimes) -> Option<Placed> {
        let r = &self.list[slot as usize];
        let mode = r.record.travel_mode;
        let mut cache = self.placed_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() <= slot as usize {
            cache.resize(self.list.len(), None);
        }
        match &cache[slot as usize] {
            Some((xy, m, p)) if *xy == r.xy && *m == mode => *p,
            _ => {
                let p = roads.place(mode, r.position);
                cache[slot as usize] = Some((r.xy, mode, p));
                p
            }
        }
    }
}

impl Engine {
    /// Moves a responder between states ([`Responders::set_status`] keeps the R-tree in
    /// step); going available wakes the most urgent incidents waiting for a retry.
    pub(super) fn set_status(&mut self, slot: u32, to: ResponderStatus) {
        self.responders.set_status(slot, to);
        if to == ResponderStatus::Available {
            self.wake_waiting();
        }
    }

    /// Somebody can be asked again: the most urgent incidents waiting for a retry try now (a
    /// bounded number, so a surge stays linear; the others' retry timers still fire).
    pub(super) fn wake_waiting(&mut self) {
        let woken = self.most_urgent(
            self.waiting.keys().copied(),
            self.config.surge_max_incidents,
        );
        self.pending.extend(woken);
    }

    /// `Command::Presence`: a phone session opened or closed (no event: it changes who may
    /// be offered, which the next offers show).
    pub(super) fn presence(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
        session: u64,
        online: bool,
    ) -> Result<Reply, CommandError> {
        let slot = self.slot(id)?;
        let r = &self.responders[slot];
        if online {
            let was_gone = !r.reachable(now, self.config.presence_grace_ms);
            self.responders.set_presence(slot, Some(session), None);
            if was_gone && self.responders[slot].status == ResponderStatus::Available {
                self.wake_waiting();
            }
        } else if r.session == Some(session) {
            self.responders.set_presence(slot, None, Some(now));
        }
        Ok(Reply::Done)
    }

    /// `Command::SessionsReset`: the server restarted, no session is live.
    pub(super) fn sessions_reset(&mut self, now: Timestamp) {
        self.responders.reset_sessions(now);
    }

    /// Whether the restored state believes some phone session is live (the server then
    /// resets them at start).
    pub fn has_live_sessions(&self) -> bool {
        self.responders.any_session()
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
        self.responders.move_to(slot, p, xy, now);
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
        let st = self.responders[slot].status;
        let refuse = |action| CommandError::InvalidTransition {
            responder: id.clone(),
            action,
            state: st.name(),
        };
        match (to, st) {
            (Availability::Available, ResponderStatus::Available)
            | (Availability::OffDuty, ResponderStatus::OffDuty) => return Ok(Reply::Done),
            (Availability::Available, ResponderStatus::OffDuty) => {
                self.responders.confirm_position(slot, now);
                self.set_status(slot, ResponderStatus::Available);
            }
            // A reconnecting phone says `available` while it holds an offer or a job: already
            // on duty, nothing changes (its open job is sent again on reconnect).
            (
                Availability::Available,
                ResponderStatus::Offered { .. }
                | ResponderStatus::EnRoute { .. }
                | ResponderStatus::OnScene { .. },
            ) if self.rules >= 3 => return Ok(Reply::Done),
            (Availability::Available, ResponderStatus::Resting { until }) => {
                return Err(CommandError::Resting {
                    responder: id.clone(),
                    until,
                })
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
        // A family member's ties decide which jobs they may hold (decision version 5): they
        // change only while the person holds no offer and no job, so nobody keeps a job the
        // new record would not allow.
        if let Some(slot) = self.responders.slot_of(&rec.id) {
            let (old, st) = (&self.responders[slot].record, self.responders[slot].status);
            let kin = old.kind == ResponderKind::Kin || rec.kind == ResponderKind::Kin;
            let ties_change = old.kind != rec.kind || old.kin_of != rec.kin_of;
            let busy = st.incident().is_some() || matches!(st, ResponderStatus::Offered { .. });
            if self.rules >= 5 && kin && ties_change && busy {
                return Err(CommandError::InvalidTransition {
                    responder: rec.id.clone(),
                    action: "change kind or kin_of",
                    state: st.name(),
                });
            }
        }
        let roads = self.roads.clone();
        let on_map = |p: LatLon| roads.check_on_map(p);
        self.roster
            .upsert_responder(rec.clone(), &on_map)
            .map_err(roster_to_command_error)?;
        let home_xy = self.projection.to_xy(rec.home);
        self.responders.upsert(rec, home_xy);
        Ok(Reply::Done)
    }

    pub(super) fn retire_responder(
        &mut self,
        now: Timestamp,
        id: &ResponderId,
    ) -> Result<Reply, CommandError> {
        let slot = self.slot(id)?;
        let st = self.responders[slot].status;
        // Decision versions before 4 refused to retire somebody on a job.
        if st.incident().is_some() && self.rules < crate::journal::ROSTER_EVENTS_SINCE {
            return Err(CommandError::InvalidTransition {
                responder: id.clone(),
                action: "retire",
                state: st.name(),
            });
        }
        self.roster
            .retire_responder(id)
            .map_err(roster_to_command_error)?;
        if let Some(incident_id) = st.incident() {
            self.take_off_incident(now, slot, incident_id, format!("{id} was retired"));
        }
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
        self.responders.retire(slot);
        Ok(Reply::Done)
    }

    /// Takes a committed responder off an open incident (they were retired while on it) and
    /// lets the incident go on as if they had never accepted: with nobody else from the
    /// community assigned and nobody at the door, it is offered again, wave after wave; an
    /// ambulance crew is replaced by another ambulance. The promises keep their clocks.
    fn take_off_incident(
        &mut self,
        now: Timestamp,
        slot: u32,
        incident_id: IncidentId,
        why: String,
    ) {
        let id = self.responders[slot].record.id.clone();
        self.responders.leave_job(slot);
        let was_ambulance = self
            .incidents
            .update(incident_id, |inc| {
                inc.arrived.remove(&id);
                if inc.ambulance.as_ref() == Some(&id) {
                    inc.ambulance = None;
                    inc.ambulance_at = None;
                    return true;
                }
                inc.community.retain(|r| r != &id);
                // Whoever was told "somebody else took it" never declined: ask them again.
                let filled: Vec<ResponderId> = inc
                    .timeline
                    .iter()
                    .filter_map(|e| match &e.event {
                        Event::OfferWithdrawn {
                            responder_id,
                            reason: WithdrawReason::Filled,
                            ..
                        } => Some(responder_id.clone()),
                        _ => None,
                    })
                    .collect();
                for r in &filled {
                    inc.asked.remove(r);
                }
                if !inc.has_community()
                    && inc.arrived.is_empty()
                    && matches!(
                        inc.status,
                        IncidentStatus::Assigned | IncidentStatus::OnScene
                    )
                {
                    inc.status = IncidentStatus::Dispatching;
                }
                false
            })
            .unwrap_or(false);
        let reason = if was_ambulance {
            format!("{why}: another ambulance is sent")
        } else {
            format!("{why}: somebody else is asked")
        };
        self.emit(
            now,
            Event::Unassigned {
                incident_id,
                responder_id: id,
                reason: reason.clone(),
            },
        );
        if was_ambulance {
            self.dispatch_ambulance(now, incident_id, reason);
        } else if self.incidents[&incident_id].wants_offers() {
            self.pending.insert(incident_id);
        }
    }
}
