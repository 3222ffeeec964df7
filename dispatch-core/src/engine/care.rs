//! Care plans at run time: each item of an elder's plan (`care_plan`) has one timer,
//! `Timer::CarePlan`, that wakes at the next thing to do for it: open the job of a window
//! that starts, or call an occurrence missed when its window closed and the grace passed.
//! A job is an ordinary incident (plan `service`, kind `care_plan`), dispatched by the same
//! waves: its first wave asks only the planned person (or the elder's grid worker); later
//! waves ask whoever ranks (for a call: only people the elder knows, since a call needs no
//! travel but a familiar voice). Closing the job settles the occurrence: done on time,
//! late, or cancelled.
//!
//! The `Care` room keeps the book of occurrences (saved in snapshots) and the index from a
//! job's incident to its occurrence (rebuilt on restore).

use super::ranking::{Ask, Part};
use super::*;
use crate::care_plan::{
    next_period, period_of, window_in, CareBook, CareKey, CareKind, CarePlanItem, ComplianceReport,
    ItemHistory, Occurrence, Outcome, Span, HISTORY_MS, MAX_OCCURRENCES,
};

/// The device id a care-plan job's alert key carries (no roster device has it: ids there
/// are checked to be plain).
pub const CARE_PLAN_DEVICE: &str = "(care plan)";

/// The book of occurrences and the job → occurrence index.
#[derive(Debug, Clone, Default)]
pub(super) struct Care {
    book: CareBook,
    /// Open jobs' incidents → their item (pending occurrences only).
    by_incident: BTreeMap<IncidentId, CareKey>,
}

impl Care {
    pub(super) fn from_saved(book: CareBook) -> Care {
        let mut by_incident = BTreeMap::new();
        for (elder_id, items) in &book.items {
            for (item_id, occ) in items {
                for o in occ.iter().filter(|o| o.outcome == Outcome::Pending) {
                    if let Some(i) = o.incident_id {
                        by_incident.insert(
                            i,
                            CareKey {
                                elder_id: elder_id.clone(),
                                item_id: item_id.clone(),
                            },
                        );
                    }
                }
            }
        }
        Care { book, by_incident }
    }

    pub(super) fn to_saved(&self) -> CareBook {
        self.book.clone()
    }

    pub(super) fn needs_sync(&self) -> bool {
        self.book.unsynced
    }

    /// Whether `i` is an open care-plan job.
    pub(super) fn holds(&self, i: IncidentId) -> bool {
        !self.by_incident.is_empty() && self.by_incident.contains_key(&i)
    }

    /// The pending occurrence whose job is `i`.
    pub(super) fn of_incident(&self, i: IncidentId) -> Option<&Occurrence> {
        if self.by_incident.is_empty() {
            return None;
        }
        let key = self.by_incident.get(&i)?;
        self.occurrences(key)
            .iter()
            .rev()
            .find(|o| o.incident_id == Some(i))
    }

    fn occurrences(&self, key: &CareKey) -> &[Occurrence] {
        self.book
            .items
            .get(&key.elder_id)
            .and_then(|m| m.get(&key.item_id))
            .map_or(&[], Vec::as_slice)
    }

    /// Adds an occurrence (forgetting the oldest beyond the history's bounds).
    fn push(&mut self, key: &CareKey, o: Occurrence) {
        if let Some(i) = o.incident_id {
            self.by_incident.insert(i, key.clone());
        }
        let v = self
            .book
            .items
            .entry(key.elder_id.clone())
            .or_default()
            .entry(key.item_id.clone())
            .or_default();
        let horizon = o.opened_at.0.saturating_sub(HISTORY_MS);
        v.push(o);
        let old = v
            .iter()
            .take_while(|o| o.outcome != Outcome::Pending && o.due_by.0 < horizon)
            .count()
            .max(v.len().saturating_sub(MAX_OCCURRENCES));
        for gone in v.drain(..old) {
            // Only past the count bound can a pending one go (its job then counts nowhere).
            if let Some(i) = gone
                .incident_id
                .filter(|_| gone.outcome == Outcome::Pending)
            {
                self.by_incident.remove(&i);
            }
        }
    }

    /// Settles the pending occurrence of job `i`; returns its item and the occurrence.
    fn settle(
        &mut self,
        i: IncidentId,
        outcome: Outcome,
        at: Timestamp,
        done_by: Option<ResponderId>,
    ) -> Option<(CareKey, Occurrence)> {
        let key = self.by_incident.remove(&i)?;
        let o = self
            .book
            .items
            .get_mut(&key.elder_id)?
            .get_mut(&key.item_id)?
            .iter_mut()
            .rev()
            .find(|o| o.incident_id == Some(i) && o.outcome == Outcome::Pending)?;
        o.outcome = outcome;
        o.settled_at = Some(at);
        o.done_by = done_by;
        Some((key, o.clone()))
    }
}

impl Engine {
    /// A new engine's roster plans (and check-in schedules) are scheduled on its first call
    /// (a constructor has no `now`); `poll_timeout` asks for that call at once.
    pub(super) fn care_sync_all(&mut self, now: Timestamp) {
        if !self.care.needs_sync() {
            return;
        }
        self.care.book.unsynced = false;
        let elders: Vec<ElderId> = self
            .roster
            .elders()
            .filter(|e| !e.care_plan.is_empty() || e.check_in_by.is_some())
            .map(|e| e.id.clone())
            .collect();
        for e in elders {
            self.care_sync_elder(now, &e);
            self.check_in_sync_elder(now, &e);
        }
    }

    /// After an elder's record changed (or the elder left): items gone from the plan have
    /// their pending jobs cancelled and their timers stopped; every item of the plan is
    /// (re)scheduled.
    pub(super) fn care_sync_elder(&mut self, now: Timestamp, elder_id: &ElderId) {
        let current: Vec<String> = self
            .roster
            .elder(elder_id)
            .map(|e| e.care_plan.iter().map(|i| i.id.clone()).collect())
            .unwrap_or_default();
        let gone: Vec<String> = self
            .care
            .book
            .items
            .get(elder_id)
            .map(|m| m.keys().filter(|k| !current.contains(k)).cloned().collect())
            .unwrap_or_default();
        for item_id in gone {
            let key = CareKey {
                elder_id: elder_id.clone(),
                item_id,
            };
            self.stop_timer(Timer::CarePlan(key.clone()));
            let open: Vec<IncidentId> = self
                .care
                .occurrences(&key)
                .iter()
                .filter(|o| o.outcome == Outcome::Pending)
                .filter_map(|o| o.incident_id)
                .collect();
            for i in open {
                let why = format!(
                    "care plan of {elder_id}: item {} was taken out of the plan",
                    key.item_id
                );
                self.cancel_care_job(now, i, why);
            }
        }
        for item_id in current {
            self.care_reconcile(
                now,
                CareKey {
                    elder_id: elder_id.clone(),
                    item_id,
                },
            );
        }
    }

    /// Does what is due for one item at `now` and sets its timer for the next thing: pending
    /// occurrences nobody reached by their close plus the grace are missed (their jobs
    /// cancelled); the current period's window, if open and not yet served, gets its job.
    pub(super) fn care_reconcile(&mut self, now: Timestamp, key: CareKey) {
        let grace = self.config.care_missed_grace_ms;
        let overdue: Vec<Occurrence> = self
            .care
            .occurrences(&key)
            .iter()
            .filter(|o| {
                o.outcome == Outcome::Pending
                    && o.due_by.plus_ms(grace) <= now
                    && !self.someone_there(o.incident_id)
            })
            .cloned()
            .collect();
        for o in overdue {
            let Some(i) = o.incident_id else { continue };
            self.care.settle(i, Outcome::Missed, now, None);
            self.emit(
                now,
                Event::CareVisitMissed {
                    incident_id: i,
                    elder_id: key.elder_id.clone(),
                    item_id: key.item_id.clone(),
                    due_by: o.due_by,
                    planned_responder: o.planned.clone(),
                },
            );
            let why = format!(
                "care plan of {}: {} missed: nobody reached {} by {} and {} s of grace",
                key.elder_id,
                key.item_id,
                key.elder_id,
                o.due_by,
                secs(grace)
            );
            self.cancel_care_job(now, i, why);
        }
        let item = self
            .roster
            .elder(&key.elder_id)
            .and_then(|e| e.care_plan.iter().find(|i| i.id == key.item_id))
            .cloned();
        let Some(item) = item else {
            self.stop_timer(Timer::CarePlan(key));
            return;
        };
        let off = self.config.utc_offset_s;
        let period = period_of(item.period, now, off);
        let window = window_in(&item, period);
        let served = self
            .care
            .occurrences(&key)
            .iter()
            .any(|o| o.period_from == period.from);
        if !served && window.from <= now && now < window.to {
            self.care_open(now, &key, &item, period, window);
        }
        let mut wake = if !served && now < window.from {
            window.from
        } else {
            window_in(&item, next_period(item.period, period, off)).from
        };
        for o in self.care.occurrences(&key) {
            if o.outcome == Outcome::Pending && !self.someone_there(o.incident_id) {
                wake = wake.min(o.due_by.plus_ms(grace));
            }
        }
        self.set_timer(wake, Timer::CarePlan(key));
    }

    /// Whether somebody is at the door of job `i` (then it is not missed: it finishes late).
    fn someone_there(&self, i: Option<IncidentId>) -> bool {
        i.and_then(|i| self.incidents.get(&i))
            .is_some_and(|inc| inc.status.is_open() && !inc.arrived.is_empty())
    }

    /// Opens the job of one window: an incident offered first to the planned person.
    fn care_open(
        &mut self,
        now: Timestamp,
        key: &CareKey,
        item: &CarePlanItem,
        period: Span,
        window: Span,
    ) {
        let Some(elder) = self.roster.elder(&key.elder_id) else {
            return;
        };
        let planned = item
            .planned_responder
            .clone()
            .or_else(|| self.roster.grid_workers(&elder.grid_id).first().cloned());
        let (home, level, grid_id) = (elder.home, elder.care_level, elder.grid_id.clone());
        let alert = Alert {
            alert_id: AlertId::from(format!("care:{}:{}", item.id, period.from.0)),
            kind: AlertKind::CarePlan,
            service: item.service,
            elder_id: key.elder_id.clone(),
            position: None,
            detected_at: now,
            ambulance_requested: false,
            scheduled_for: None,
            device_id: crate::ids::DeviceId::from(CARE_PLAN_DEVICE),
        };
        let what = match (item.kind, item.service) {
            (CareKind::Visit, _) => "a visit".to_string(),
            (CareKind::Call, _) => "a call".to_string(),
            (CareKind::Service, s) => {
                format!("a service ({})", intake::what_of(AlertKind::Help, s))
            }
        };
        let first = match &planned {
            Some(p) => format!("asked first: {p}"),
            None => "nobody planned: whoever is suitable".to_string(),
        };
        let reason = format!(
            "care plan of {}: {what} a {} (item {}), due by {}; {first}",
            key.elder_id,
            item.period.name(),
            item.id,
            window.to
        );
        let plan = Plan::Service;
        let incident_id = self.mint_incident(
            now,
            &alert,
            (plan, plan.priority(level), level),
            home,
            false,
            reason,
            None,
        );
        self.pending.insert(incident_id);
        self.care.push(
            key,
            Occurrence {
                period_from: period.from,
                opened_at: now,
                due_by: window.to,
                kind: item.kind,
                grid_id,
                planned,
                incident_id: Some(incident_id),
                outcome: Outcome::Pending,
                settled_at: None,
                done_by: None,
            },
        );
    }

    /// A job closed (`close`): its occurrence is done (on time or late) when it resolved,
    /// cancelled when it was cancelled. Nothing for other incidents.
    pub(super) fn care_closed(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        to: IncidentStatus,
        by: &Actor,
    ) {
        let Some(o) = self.care.of_incident(incident_id) else {
            return;
        };
        let on_time = now <= o.due_by;
        let (outcome, done_by) = match (to, by) {
            (IncidentStatus::Resolved, Actor::Responder(r)) => (on_time, Some(r.clone())),
            (IncidentStatus::Resolved, _) => (on_time, None),
            _ => {
                self.care.settle(incident_id, Outcome::Cancelled, now, None);
                return;
            }
        };
        let outcome = if outcome {
            Outcome::OnTime
        } else {
            Outcome::Late
        };
        let Some((key, o)) = self.care.settle(incident_id, outcome, now, done_by.clone()) else {
            return;
        };
        self.emit(
            now,
            Event::CareVisitDone {
                incident_id,
                elder_id: key.elder_id.clone(),
                item_id: key.item_id.clone(),
                due_by: o.due_by,
                on_time,
                done_by,
            },
        );
        // The item's timer need not wait for this occurrence's grace any more.
        self.care_reconcile(now, key);
    }

    /// Cancels care-plan job `i` with `why`, if it is still open.
    fn cancel_care_job(&mut self, now: Timestamp, i: IncidentId, why: String) {
        let open = self
            .incidents
            .get(&i)
            .is_some_and(|inc| inc.status.is_open());
        if open {
            self.close(now, i, IncidentStatus::Cancelled, Actor::Engine, why);
        }
    }

    /// The first wave of a care-plan job asks only its planned person (or the elder's grid
    /// workers); a call's later waves ask only people the elder knows. `None`: not a
    /// care-plan job, or rank as any job.
    pub(super) fn care_rank(&self, ask: Ask) -> Option<Vec<Ranked>> {
        let o = self.care.of_incident(ask.incident_id)?;
        let inc = &self.incidents[&ask.incident_id];
        if inc.wave == 0 {
            let first: Vec<u32> = match &o.planned {
                Some(p) => self.responders.slot_of(p).into_iter().collect(),
                None => Vec::new(),
            };
            let ranked = self.rank_among(ask, Some(&first), Part::All);
            if !ranked.is_empty() {
                return Some(ranked);
            }
        }
        if o.kind == CareKind::Call {
            let known = self.familiar_slots(inc);
            return Some(self.rank_among(ask, Some(&known), Part::All));
        }
        None
    }

    /// What `may_offer` adds for a care-plan job: service staff do services only, and the
    /// planned person needs no skill (their plan says they do it). `None`: no opinion.
    pub(super) fn care_may_offer(&self, slot: u32, inc: &Incident) -> Option<bool> {
        let o = self.care.of_incident(inc.id)?;
        let r = &self.responders[slot].record;
        if o.kind != CareKind::Service && r.kind == ResponderKind::ServiceStaff {
            return Some(false);
        }
        (o.planned.as_ref() == Some(&r.id)).then_some(true)
    }

    /// The compliance report as things stood at `at` (`care_plan::compliance`).
    pub fn care_compliance(&self, at: Timestamp) -> ComplianceReport {
        let histories = self.care.book.items.iter().flat_map(|(elder_id, items)| {
            let elder = self.roster.elder(elder_id);
            items.iter().filter_map(move |(item_id, occ)| {
                let grid_id = match elder {
                    Some(e) => &e.grid_id,
                    None => &occ.last()?.grid_id,
                };
                Some(ItemHistory {
                    elder_id,
                    grid_id,
                    item_id,
                    item: elder.and_then(|e| e.care_plan.iter().find(|i| &i.id == item_id)),
                    occurrences: occ,
                })
            })
        });
        crate::care_plan::compliance(histories, at, self.config.utc_offset_s)
    }

    /// An elder's care-plan occurrences, by item, oldest first.
    pub fn care_occurrences(&self, elder_id: &ElderId) -> BTreeMap<String, Vec<Occurrence>> {
        self.care
            .book
            .items
            .get(elder_id)
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::care_plan::CareKind;

    fn occ(day: i64, outcome: Outcome, incident: u64) -> Occurrence {
        let d = 86_400_000;
        Occurrence {
            period_from: Timestamp(day * d),
            opened_at: Timestamp(day * d),
            due_by: Timestamp((day + 1) * d),
            kind: CareKind::Call,
            grid_id: "G1".into(),
            planned: None,
            incident_id: Some(IncidentId(incident)),
            outcome,
            settled_at: None,
            done_by: None,
        }
    }

    #[test]
    fn the_history_is_bounded_by_age_and_count_and_the_index_follows() {
        let key = CareKey {
            elder_id: "E1".into(),
            item_id: "call".into(),
        };
        let mut care = Care::default();
        // A pending one first (a job somebody is still on), then a year and a half of days.
        care.push(&key, occ(0, Outcome::Pending, 1));
        for day in 1..550 {
            care.push(&key, occ(day, Outcome::Missed, 1 + day as u64));
        }
        let kept = care.occurrences(&key);
        assert_eq!(kept.len(), MAX_OCCURRENCES);
        assert_eq!(
            kept.last().unwrap().period_from,
            Timestamp(549 * 86_400_000)
        );
        // The pending one went only by the count bound, and its index entry with it.
        assert!(!care.holds(IncidentId(1)));
        // By age alone: settled ones older than the horizon go, a pending one stays.
        let mut care = Care::default();
        care.push(&key, occ(0, Outcome::Pending, 1));
        care.push(&key, occ(1, Outcome::Missed, 2));
        care.push(&key, occ(500, Outcome::Missed, 3));
        assert_eq!(
            care.occurrences(&key).len(),
            3,
            "the pending one holds the rest"
        );
        let mut care = Care::default();
        care.push(&key, occ(1, Outcome::Missed, 2));
        care.push(&key, occ(500, Outcome::Pending, 3));
        assert_eq!(care.occurrences(&key).len(), 1);
        assert!(care.holds(IncidentId(3)));
        // The saved book rebuilds the same index.
        let again = Care::from_saved(care.to_saved());
        assert!(again.holds(IncidentId(3)));
        assert_eq!(again.to_saved(), care.to_saved());
    }
}
