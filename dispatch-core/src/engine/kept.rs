//! Kept rankings. In a surge, every joint round ranks up to `surge_max_incidents` waiting
//! emergencies, most of them the same as in the round before (they wait for someone to
//! accept), and those rankings were most of the engine's time per alert (benches/README.md,
//! "The engine alone at an alert rate"). A waiting emergency's ranking of everyone but the
//! round's `extra` responders (those holding the surge's offers, who change every round) is
//! kept, and used again while nothing it read can have changed; the extras are ranked on
//! their own and merged (`Part::Extra`), which gives exactly the full ranking.
//!
//! A kept ranking is dropped when:
//! - the incident changed in anything a ranking reads (position, plan, priority, care
//!   level, kind, elder, who was asked);
//! - a responder changed (status, position, session, counters, record: every change goes
//!   through the `Responders` room, which notes it) who is in the kept top, or familiar to
//!   the elder (their margin lets them in from anywhere), or who stood, before or after,
//!   within the distance past which nobody can beat the kept k-th score (straight line at
//!   the mode's top speed is a lower bound of every ETA, as the ranking itself relies on);
//! - after any responder change, the few nearest holders of offers an emergency may take
//!   someone from (`preemptable_near`) are no longer the same set (they are of any kind and
//!   at any distance, so no bound on the change that moved them would do);
//! - time alone could change it: a kept responder's position going stale or their phone's
//!   grace running out, or a new UTC day (the daily caps start again);
//! - anything changed that every ranking reads: the roster, the road closures, the decision
//!   version, the sessions reset at start (`Engine::forget_kept`, called for every command
//!   that is not one of the everyday ones in `leaves_kept` and whenever the closures are
//!   laid again).
//!
//! Who may be taken from a service follows the service's plan, which no responder change
//! shows; but a plan changes only under decision versions 1 and 2 (`legacy.rs`), which never
//! take anyone from a service.
//!
//! Time only moves forward for the engine (the server's engine task never steps it back):
//! a kept ranking's `through` is an upper bound, not checked against an earlier `now`.
//!
//! The wave that completes an incident's offers right after its joint round reads the same
//! kept ranking, minus the round's primaries and whoever else is no longer a candidate
//! (`Engine::kept_wave`), instead of ranking the incident a second time in the same call.
//!
//! It is a cache: it never changes a decision. Every debug build checks each kept ranking it
//! uses against a fresh one (`kept_top`, `send_wave`), so every engine test that reaches a
//! surge checks it.

use super::*;
use crate::responder::DAY_MS;
use ranking::{Ask, Part};

/// Kept rankings held at most; past it, those of incidents no longer waiting go.
const KEPT_MAX: usize = 1024;

/// Responder changes read at most to decide whether a kept ranking holds (about 5 ns each,
/// against tens of microseconds for a ranking); past it, the incident is ranked again.
const SCAN_MAX: usize = 2048;
const _: () = assert!(responders::CHANGES_KEPT >= 2 * SCAN_MAX);

/// One waiting emergency's ranking of its candidates but the round's extras.
pub(super) struct Kept {
    /// What of the incident the ranking read.
    read: Read,
    /// The responders' change count it holds as of.
    mark: u64,
    /// It holds through this time at most.
    through: Timestamp,
    k: usize,
    pub(super) top: Vec<Ranked>,
    /// Nobody farther than this (straight line; foot, car) can enter `top`.
    reach_m: [f64; 2],
    /// The elder's familiar responders (kin, paired, own grid workers), sorted.
    familiar: Vec<u32>,
    /// The nearest holders of offers it may take over (`preemptable_near`), sorted: of any
    /// kind, so a change of someone never offered can still push a candidate out of them.
    preemptable: Vec<u32>,
}

/// The parts of an incident a ranking reads.
#[derive(PartialEq)]
struct Read {
    elder_id: ElderId,
    kind: crate::model::AlertKind,
    service: Option<crate::model::ServiceKind>,
    plan: Plan,
    priority: u8,
    care_level: u8,
    position: LatLon,
    xy: [f64; 2],
    wave: u32,
    asked: BTreeSet<ResponderId>,
}

impl Read {
    fn of(inc: &Incident) -> Read {
        Read {
            elder_id: inc.elder_id.clone(),
            kind: inc.kind,
            service: inc.service,
            plan: inc.plan,
            priority: inc.priority,
            care_level: inc.care_level,
            position: inc.position,
            xy: inc.xy,
            wave: inc.wave,
            asked: inc.asked.clone(),
        }
    }

    /// [`Self::same_as`], but for what a joint round changes in an incident it offers: its
    /// wave number, and whom it asked (only ever more).
    fn same_but_asked_and_wave(&self, inc: &Incident) -> bool {
        self.same_but_offers(inc) && self.asked.is_subset(&inc.asked)
    }

    fn same_as(&self, inc: &Incident) -> bool {
        self.same_but_offers(inc) && self.wave == inc.wave && self.asked == inc.asked
    }

    /// Everything read but the wave number and whom it asked.
    fn same_but_offers(&self, inc: &Incident) -> bool {
        self.elder_id == inc.elder_id
            && self.kind == inc.kind
            && self.service == inc.service
            && self.plan == inc.plan
            && self.priority == inc.priority
            && self.care_level == inc.care_level
            && self.position == inc.position
            && self.xy == inc.xy
    }
}

/// Commands that change only what the kept rankings watch (responders through their room,
/// incidents they compare); any other command drops them all.
fn leaves_kept(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Alert(_)
            | Command::CancelAlert { .. }
            | Command::CheckIn { .. }
            | Command::Location { .. }
            | Command::SetAvailability { .. }
            | Command::Presence { .. }
            | Command::Accept { .. }
            | Command::Decline { .. }
            | Command::Arrived { .. }
            | Command::Complete { .. }
            | Command::RequestAmbulance { .. }
            | Command::Assign { .. }
            | Command::Cancel { .. }
            | Command::Resolve { .. }
            | Command::RedeemTimeBank { .. }
    )
}

impl Engine {
    /// Before `cmd`: drops every kept ranking unless `cmd` is one whose changes they watch.
    pub(super) fn forget_kept_before(&mut self, cmd: &Command) {
        if !leaves_kept(cmd) {
            self.forget_kept();
        }
    }

    /// Drops every kept ranking (something every ranking reads changed).
    pub(super) fn forget_kept(&mut self) {
        self.kept.clear();
    }

    /// Whether `incident_id`'s ranking may be kept: emergencies outside care plans (whose
    /// rankings have rules of their own).
    pub(super) fn keeps_ranking(&self, incident_id: IncidentId) -> bool {
        self.incidents[&incident_id].plan == Plan::Emergency
            && self.care.of_incident(incident_id).is_none()
    }

    /// The top `k` of `incident_id`'s candidates but the round's extras
    /// ([`Part::Others`]), kept from an earlier round when nothing it read has changed,
    /// else ranked now (after the target's sweep: it will be asked again) and kept.
    pub(super) fn kept_top(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        k: usize,
    ) -> Vec<Ranked> {
        let none = BTreeSet::new();
        let everyone = Ask {
            now,
            incident_id,
            k,
            extra: &none,
            reserved: &none,
        };
        if let Some(kept) = self.kept.get(&incident_id) {
            if self.kept_holds(now, incident_id, k, kept) {
                let top = kept.top.clone();
                #[cfg(debug_assertions)]
                assert_eq!(
                    top,
                    self.rank_part(everyone, None, Part::Others),
                    "kept ranking of incident {incident_id} out of step"
                );
                #[cfg(test)]
                self.kept_used.push(incident_id);
                let mark = self.responders.change_count();
                if let Some(kept) = self.kept.get_mut(&incident_id) {
                    kept.mark = mark;
                }
                self.hint_sweep(incident_id, true);
                return top;
            }
        }
        self.hint_sweep(incident_id, false);
        let top = self.rank_part(everyone, None, Part::Others);
        let kept = self.keep(now, incident_id, k, top.clone());
        if self.kept.len() >= KEPT_MAX {
            let incidents = &self.incidents;
            self.kept
                .retain(|i, _| incidents.get(i).is_some_and(is_waiting_emergency));
            if self.kept.len() >= KEPT_MAX {
                self.kept.clear();
            }
        }
        self.kept.insert(incident_id, kept);
        top
    }

    /// An incident ranked in every surge round wants its walking sweep kept (a travel-time
    /// source that sweeps does: `RoadTimes` only while a closure holds): done now
    /// (`prepare_target`), or, when its ranking was kept and no sweep is needed this round,
    /// marked still wanted (`keep_target`).
    pub(super) fn hint_sweep(&self, incident_id: IncidentId, kept: bool) {
        let inc = &self.incidents[&incident_id];
        if let [Some(t), _] = self.incidents.placed(inc, self.roads.as_ref()) {
            match kept {
                true => self.roads.keep_target(TravelMode::Foot, &t),
                false => self.roads.prepare_target(TravelMode::Foot, &t),
            }
        }
    }

    fn keep(&self, now: Timestamp, incident_id: IncidentId, k: usize, top: Vec<Ranked>) -> Kept {
        let inc = &self.incidents[&incident_id];
        let reach_m = match top.get(k.max(1) - 1) {
            // A ranking stops where the lower bound passes the k-th score; 3 ms over it
            // covers the bound's rounding, 1 m the arithmetic.
            Some(kth) if top.len() >= k => {
                let s = (kth.score_ms + 3).max(0) as f64 / 1000.0;
                [TravelMode::Foot, TravelMode::Car]
                    .map(|m| s * self.tree_top_mps(m) / Projection::LOWER_BOUND_FACTOR + 1.0)
            }
            _ => [f64::INFINITY; 2],
        };
        // Valid through the end of the UTC day (the daily caps) and while every kept
        // responder stays offerable by time alone.
        let mut through = (now.0.div_euclid(DAY_MS) + 1) * DAY_MS - 1;
        for r in &top {
            let s = &self.responders[r.slot];
            if let Some(t) = s.position_at {
                through = through.min(t.0 + self.config.stale_position_ms as i64);
            }
            if let (true, Some(t)) = (self.rules >= 3, s.offline_since) {
                through = through.min(t.0 + self.config.presence_grace_ms as i64 - 1);
            }
        }
        Kept {
            read: Read::of(inc),
            mark: self.responders.change_count(),
            through: Timestamp(through),
            k,
            top,
            reach_m,
            familiar: self.familiar_slots(inc),
            preemptable: self.preemptable_set(inc),
        }
    }

    /// [`Engine::preemptable_near`] as the ranking asks it, sorted.
    fn preemptable_set(&self, inc: &Incident) -> Vec<u32> {
        let mut v = self.preemptable_near(inc, ranking::PREEMPT_CANDIDATES);
        v.sort_unstable();
        v
    }

    /// The wave that completes an incident's offers after a joint round started it
    /// (`send_wave` with offers already out) asks for the top `ask.k` of everyone but the
    /// round's primaries (`ask.reserved`, no extras): read from the ranking the round kept
    /// for it, when that still gives what a fresh ranking would; `None` to rank afresh.
    /// Before [`Engine::keep_allowed`], as [`Engine::rank_part`] gives it.
    ///
    /// Exact by the argument of [`Engine::kept_holds`], with what a round changes: the
    /// incident has asked its primary since (asking more only removes candidates) and its
    /// wave number moved (which an emergency's ranking does not read); the responders the
    /// round changed are its primaries and those its other waves asked, who are no longer
    /// candidates (`gone` below: removing candidates leaves the order of the rest), or else
    /// are checked as any change is. The kept top is read in order past those gone; it
    /// gives the asked top `k` when at least `k` remain or it held every candidate there was.
    pub(super) fn kept_wave(&self, ask: Ask) -> Option<Vec<Ranked>> {
        let incident_id = ask.incident_id;
        let inc = self.incidents.get(&incident_id)?;
        if !ask.extra.is_empty() || !self.keeps_ranking(incident_id) {
            return None;
        }
        let kept = self.kept.get(&incident_id)?;
        if ask.now > kept.through || !kept.read.same_but_asked_and_wave(inc) {
            return None;
        }
        let none = BTreeSet::new();
        let gone = |slot: u32| !self.is_candidate(ask.now, slot, inc, &none, false, ask.reserved);
        if !self.changes_hold(inc, kept, gone) {
            return None;
        }
        let left: Vec<Ranked> = kept.top.iter().filter(|r| !gone(r.slot)).cloned().collect();
        if left.len() < ask.k && kept.top.len() >= kept.k {
            return None;
        }
        Some(left.into_iter().take(ask.k).collect())
    }

    /// Whether `kept` still gives what a fresh ranking would (see the module docs).
    fn kept_holds(&self, now: Timestamp, incident_id: IncidentId, k: usize, kept: &Kept) -> bool {
        if kept.k != k || now > kept.through {
            return false;
        }
        let Some(inc) = self.incidents.get(&incident_id) else {
            return false;
        };
        if !kept.read.same_as(inc) {
            return false;
        }
        self.changes_hold(inc, kept, |_| false)
    }

    /// Whether no responder change since `kept` was made can alter it, but for those `gone`
    /// (no longer candidates at all, whose removal leaves the order of the rest).
    fn changes_hold(&self, inc: &Incident, kept: &Kept, gone: impl Fn(u32) -> bool) -> bool {
        let Some(changes) = self.responders.changes_since(kept.mark) else {
            return false;
        };
        // A long list is not read: ranking again costs less than reading it.
        if changes.len() > SCAN_MAX {
            return false;
        }
        let kinds = inc.plan.offered_kinds();
        let near = |xy: [f64; 2], reach: f64| {
            let (dx, dy) = (xy[0] - inc.xy[0], xy[1] - inc.xy[1]);
            dx * dx + dy * dy <= reach * reach
        };
        let each_holds = changes.iter().all(|c| {
            if gone(c.slot) {
                return true;
            }
            if kept.top.iter().any(|r| r.slot == c.slot)
                || kept.familiar.binary_search(&c.slot).is_ok()
            {
                return false;
            }
            // A responder of another kind is never a candidate (a kind changes only by a
            // roster edit, which drops every kept ranking); it may still hold an offer that
            // counts among the nearest preemptable ones (compared below).
            if !kinds.contains(&c.kind) {
                return true;
            }
            // Where it went: it may now beat the kept k-th; where it was, checked too (a
            // bound, cheaper to keep than to argue it away).
            let reach = kept.reach_m[usize::from(c.mode == TravelMode::Car)];
            !near(c.before, reach) && !near(c.after, reach)
        });
        // Who is among the few nearest holding an offer it may take over depends on everyone
        // holding one, of any kind and at any distance: compared as a whole (it changes only
        // with a change above, so only then).
        each_holds && (changes.is_empty() || self.preemptable_set(inc) == kept.preemptable)
    }
}
