//! Who may be offered an incident and how they rank: eligibility, familiarity, road ETAs,
//! the baseline radius rule, and the reason text each offer carries.

use super::*;

/// What being familiar to an incident's elder, or their kin, is worth in ETA.
#[derive(Debug, Clone, Copy)]
pub(super) struct Margins {
    pub familiar_ms: u64,
    pub kin_ms: u64,
}

/// An incident's elder as a ranking asks who is familiar to them ([`Engine::familiarity`]),
/// looked up once per ranking: the record, the margins the incident gives, and the elder's
/// paired responders and own grid's workers by slot, so that asking about a candidate
/// compares numbers, not the candidate's ids (whose text is a cache miss each among
/// 100,000 responders).
pub(super) struct ElderAsked<'a> {
    pub record: &'a crate::roster::ElderRecord,
    pub margins: Margins,
    /// The paired responders on the roster, by slot, sorted.
    pub(super) paired: Vec<u32>,
    /// The elder's grid's workers (`Responders::grid_workers`).
    pub(super) grid: &'a [GridWorker],
}

/// One ranking: who may be offered `incident_id` at `now`, the top `k`. `extra` responders
/// (holding offers of other incidents in a surge) are considered too; `reserved` ones are
/// excluded.
#[derive(Clone, Copy)]
pub(super) struct Ask<'a> {
    pub now: Timestamp,
    pub incident_id: IncidentId,
    pub k: usize,
    pub extra: &'a BTreeSet<u32>,
    pub reserved: &'a BTreeSet<u32>,
}

/// Which of an incident's candidates [`Engine::rank_part`] ranks.
pub(super) enum Part<'a> {
    /// Everyone.
    All,
    /// Everyone but the `extra` responders.
    Others,
    /// The `extra` responders, merged with the given top of the others.
    Extra(&'a [Ranked]),
}

/// At most this many responders holding service or welfare-visit offers are considered by an
/// emergency's ranking (the nearest): bounds its cost.
pub(super) const PREEMPT_CANDIDATES: usize = 8;

impl Engine {
    /// The foot tree's top speed uses the fastest walker on the roster.
    pub(super) fn tree_top_mps(&self, mode: TravelMode) -> f64 {
        let base = self.roads.max_speed_mps(mode);
        match mode {
            TravelMode::Car => base,
            TravelMode::Foot => {
                base * (self.roster.max_walk_kmh().max(self.roads.foot_kmh())
                    / self.roads.foot_kmh())
            }
        }
    }

    pub(super) fn time_factor(&self, slot: u32) -> f64 {
        let r = &self.responders[slot].record;
        self.time_factor_of(r.travel_mode, r.walk_kmh)
    }

    /// [`CandidateInfo::time_factor`] of a responder travelling by `mode` at `walk_kmh`.
    fn time_factor_of(&self, mode: TravelMode, walk_kmh: Option<f64>) -> f64 {
        match mode {
            TravelMode::Car => 1.0,
            TravelMode::Foot => self.roads.foot_kmh() / walk_kmh.unwrap_or(self.roads.foot_kmh()),
        }
    }

    /// Whether `slot` may be offered `incident` (state aside): fresh position, right kind,
    /// skill, daily cap, not already asked. Kin: only their own elder's emergencies and
    /// welfare visits (decision version 5 on; never offered before).
    pub(super) fn may_offer(&self, now: Timestamp, slot: u32, inc: &Incident) -> bool {
        let r = &self.responders[slot];
        if !self.ready(now, slot) || inc.asked.contains(&r.record.id) {
            return false;
        }
        if r.record.kind == ResponderKind::Kin {
            return self.rules >= 5
                && matches!(inc.plan, Plan::Emergency | Plan::WelfareVisit)
                && inc.kind != crate::model::AlertKind::CarePlan
                && r.record.kin_of.contains(&inc.elder_id);
        }
        if !inc.plan.offered_kinds().contains(&r.record.kind) {
            return false;
        }
        match self.care_may_offer(slot, inc) {
            Some(false) => return false,
            Some(true) => return self.under_daily_cap(now, slot),
            None => {}
        }
        if !self.under_daily_cap(now, slot) {
            return false;
        }
        // The fairness cap on emergency offers (decision version 6): larger waves must not
        // ask the same few people all day. Ours only: the simulator's baselines are published
        // rules, which have no such cap.
        if self.rules >= crate::journal::ANSWERS_SINCE
            && self.config.matching == MatchingMode::RoadEta
            && inc.plan == Plan::Emergency
            && r.record.kind == ResponderKind::Volunteer
            && r.answers.offers_on(now) >= self.config.volunteer_daily_offer_cap
        {
            return false;
        }
        if let (Plan::Service, Some(s)) = (inc.plan, inc.service) {
            if let Some(skill) = self.config.skill_for(s) {
                if !r.record.skills.iter().any(|k| k == skill) {
                    return false;
                }
            }
        }
        true
    }

    /// Whether `slot` could be offered anything now, whatever the incident: on the roster,
    /// on a fresh position, reachable (decision version 3 on). Ranking and live coverage
    /// both ask this.
    pub(super) fn ready(&self, now: Timestamp, slot: u32) -> bool {
        let r = &self.responders[slot];
        !r.retired
            && r.position_fresh(now, self.config.stale_position_ms)
            && (self.rules < 3 || r.reachable(now, self.config.presence_grace_ms))
    }

    /// Whether `slot` is under their kind's daily cap of assignments.
    pub(super) fn under_daily_cap(&self, now: Timestamp, slot: u32) -> bool {
        let r = &self.responders[slot];
        self.config
            .daily_cap(r.record.kind, self.rules)
            .is_none_or(|cap| r.assignments_on(now) < cap)
    }

    /// Whether `inc` may take a responder away from their open offer of `other`: an emergency
    /// over a service or welfare visit (decision version 3 on).
    pub(super) fn preempts(&self, inc: &Incident, other: IncidentId) -> bool {
        self.rules >= 3
            && inc.plan == Plan::Emergency
            && self
                .incidents
                .get(&other)
                .is_some_and(|o| o.plan != Plan::Emergency)
    }

    /// The `n` responders nearest `inc` (straight line) holding an offer `inc` may take over
    /// (`preempts`); none unless `inc` is an emergency. Reads only the open offers of open
    /// services and welfare visits (an index the incidents room keeps), few beside the
    /// responders.
    pub(super) fn preemptable_near(&self, inc: &Incident, n: usize) -> Vec<u32> {
        if self.rules < 3 || inc.plan != Plan::Emergency {
            return Vec::new();
        }
        #[cfg(debug_assertions)]
        {
            // The index must hold what a scan of every open incident finds (checked in every
            // debug build: the property tests run thousands of sequences).
            let indexed: Vec<IncidentId> = self
                .incidents
                .with_preemptable_offers()
                .map(|i| i.id)
                .collect();
            let mut scanned: Vec<IncidentId> = self
                .incidents
                .open_ids()
                .filter(|i| {
                    let o = &self.incidents[i];
                    o.plan != Plan::Emergency && !o.open_offers.is_empty()
                })
                .collect();
            scanned.sort_unstable();
            assert_eq!(indexed, scanned, "with_preemptable_offers out of step");
        }
        let mut near: Vec<(u64, u32)> = self
            .incidents
            .with_preemptable_offers()
            .flat_map(|o| o.open_offers.iter())
            .filter_map(|offer| self.responders.slot_of(&self.offers[offer].responder_id))
            .map(|slot| {
                let [x, y] = self.responders[slot].xy;
                let d = ((x - inc.xy[0]).powi(2) + (y - inc.xy[1]).powi(2)).sqrt();
                (d.round() as u64, slot)
            })
            .collect();
        near.sort_unstable();
        near.into_iter().take(n).map(|(_, s)| s).collect()
    }

    /// A responder placed on their mode's graph, snapped at most once per position.
    pub(super) fn placed(&self, slot: u32) -> Option<Placed> {
        self.responders.placed(slot, self.roads.as_ref())
    }

    /// `inc`'s elder as its rankings ask about them (`None`: not on the roster).
    pub(super) fn elder_asked(&self, inc: &Incident) -> Option<ElderAsked<'_>> {
        let record = self.roster.elder(&inc.elder_id)?;
        let mut paired: Vec<u32> = record
            .paired_responders
            .iter()
            .filter_map(|id| self.responders.slot_of(id))
            .collect();
        paired.sort_unstable();
        Some(ElderAsked {
            record,
            margins: self.margins(inc),
            paired,
            grid: self.responders.grid_workers(&record.grid_id),
        })
    }

    /// `elder` is looked up once per ranking by the caller (`None`: no familiarity).
    pub(super) fn candidate_info(
        &self,
        slot: u32,
        elder: Option<&ElderAsked>,
    ) -> Option<CandidateInfo> {
        let position = self.placed(slot)?;
        let r = &self.responders[slot];
        let (familiar, margin_ms) = self.familiarity(slot, elder);
        Some(CandidateInfo {
            position,
            mode: r.record.travel_mode,
            time_factor: self.time_factor(slot),
            familiar,
            margin_ms,
        })
    }

    /// Why `slot` is familiar to the elder (kin first, decision version 5 on), and what that
    /// is worth in ETA.
    pub(super) fn familiarity(
        &self,
        slot: u32,
        elder: Option<&ElderAsked>,
    ) -> (Option<&'static str>, u64) {
        let Some(e) = elder else {
            return (None, 0);
        };
        let state = &self.responders[slot];
        let r = &state.record;
        if self.rules >= 5 && self.roster.is_kin(&e.record.id, r) {
            return (Some("kin"), e.margins.kin_ms);
        }
        // `Roster::is_familiar`, by slot: paired, else a grid worker of the elder's grid (the
        // grid list leaves the retired out; the roster is asked about them).
        let why = if e.paired.binary_search(&slot).is_ok() {
            Some("paired volunteer")
        } else if r.kind != ResponderKind::GridWorker {
            None
        } else if state.retired {
            self.roster.is_familiar(e.record, r)
        } else {
            e.grid
                .binary_search_by_key(&slot, |w| w.slot)
                .is_ok()
                .then_some("own grid worker")
        };
        debug_assert_eq!(why, self.roster.is_familiar(e.record, r), "slot {slot}");
        match why {
            Some(why) => (Some(why), e.margins.familiar_ms),
            None => (None, 0),
        }
    }

    /// What familiarity and kinship are worth in ETA for `inc` (its care level's familiarity
    /// margin; the kin margin, decision version 5 on).
    pub(super) fn margins(&self, inc: &Incident) -> Margins {
        Margins {
            familiar_ms: self
                .config
                .familiarity_margin_for(inc.plan, inc.care_level, self.rules),
            kin_ms: self.config.kin_margin_ms,
        }
    }

    /// The paired responders and kin of an elder, by slot, without duplicates (their own
    /// grid's workers aside: see [`Self::familiar_slots`]).
    fn paired_and_kin(&self, e: &crate::roster::ElderRecord) -> Vec<u32> {
        let kin = match self.rules >= 5 {
            true => self.roster.kin_of_elder(&e.id),
            false => &[],
        };
        let mut v: Vec<u32> = e
            .paired_responders
            .iter()
            .chain(kin)
            .filter_map(|id| self.responders.slot_of(id))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The familiar responders of an incident's elder (kin, paired, own grid workers), by
    /// slot.
    pub(super) fn familiar_slots(&self, inc: &Incident) -> Vec<u32> {
        let Some(e) = self.roster.elder(&inc.elder_id) else {
            return Vec::new();
        };
        // The grid's workers by slot from the responders room (a grid may have hundreds; an
        // id lookup each was a tenth of a ranking), the few paired and kin by id.
        let mut v: Vec<u32> = self
            .responders
            .grid_workers(&e.grid_id)
            .iter()
            .map(|w| w.slot)
            .collect();
        v.extend(self.paired_and_kin(e));
        v.sort_unstable();
        v.dedup();
        #[cfg(debug_assertions)]
        {
            let kin = match self.rules >= 5 {
                true => self.roster.kin_of_elder(&e.id),
                false => &[],
            };
            // The room's grid lists must say what the roster's do (checked in every debug
            // build; moves, retirements and a restart: the scenario test
            // `a_grid_worker_moved_to_another_grid_is_that_grids_own`).
            let mut by_id: Vec<u32> = e
                .paired_responders
                .iter()
                .chain(self.roster.grid_workers(&e.grid_id))
                .chain(kin)
                .filter_map(|id| self.responders.slot_of(id))
                .collect();
            by_id.sort_unstable();
            by_id.dedup();
            assert_eq!(v, by_id, "grid lists out of step with the roster");
        }
        v
    }

    /// `slot` as a forced candidate of a ranking with `margins`: bounded by the most their
    /// kind can be given (kin: the larger of both margins; anyone else, kin never: the
    /// familiarity margin).
    pub(super) fn forced(&self, slot: u32, margins: Margins) -> Forced {
        let r = &self.responders[slot];
        let max_margin_ms = match r.record.kind {
            ResponderKind::Kin => margins.familiar_ms.max(margins.kin_ms),
            _ => margins.familiar_ms,
        };
        self.forced_worker(
            &GridWorker {
                slot,
                xy: r.xy,
                mode: r.record.travel_mode,
                walk_kmh: r.record.walk_kmh,
            },
            max_margin_ms,
        )
    }

    /// [`Self::forced`] from a grid list's entry, which holds what it reads.
    fn forced_worker(&self, w: &GridWorker, max_margin_ms: u64) -> Forced {
        let time_factor = self.time_factor_of(w.mode, w.walk_kmh);
        Forced {
            slot: w.slot,
            xy: w.xy,
            top_mps: self.roads.max_speed_mps(w.mode) / time_factor,
            time_factor,
            max_margin_ms,
        }
    }

    /// The forced candidates of a ranking with `margins`: the elder's own grid workers if
    /// `own_grid` (read from their grid's list), and `others` (sorted, without duplicates),
    /// each read from their record unless the list has them: by slot, as [`Self::forced`]
    /// gives them.
    pub(super) fn forced_of(
        &self,
        elder: Option<&ElderAsked>,
        own_grid: bool,
        others: &[u32],
        margins: Margins,
    ) -> Vec<Forced> {
        let grid: &[GridWorker] = match (own_grid, elder) {
            (true, Some(e)) => e.grid,
            _ => &[],
        };
        // The list holds grid workers only, never kin.
        let listed = |w: &GridWorker| self.forced_worker(w, margins.familiar_ms);
        let mut out = Vec::with_capacity(grid.len() + others.len());
        let (mut i, mut j) = (0, 0);
        while i < grid.len() || j < others.len() {
            match (grid.get(i), others.get(j)) {
                (Some(w), Some(&s)) if s == w.slot => {
                    out.push(listed(w));
                    i += 1;
                    j += 1;
                }
                (Some(w), Some(&s)) if s < w.slot => {
                    out.push(self.forced(s, margins));
                    j += 1;
                }
                (Some(w), _) => {
                    out.push(listed(w));
                    i += 1;
                }
                (None, Some(&s)) => {
                    out.push(self.forced(s, margins));
                    j += 1;
                }
                (None, None) => unreachable!("one list is left"),
            }
        }
        out
    }

    /// Ranks who may be offered the asked incident now.
    pub(super) fn rank_for(&self, ask: Ask) -> Vec<Ranked> {
        if let Some(care) = self.care_rank(ask) {
            return care;
        }
        let inc = &self.incidents[&ask.incident_id];
        if inc.plan == Plan::WelfareVisit && inc.wave == 0 {
            // A welfare visit's first wave is the elder's own grid worker(s) alone; nobody
            // there, and it goes to everyone eligible.
            let e = self.roster.elder(&inc.elder_id);
            let mut own = self.familiar_slots(inc);
            own.retain(|&s| {
                let r = &self.responders[s].record;
                r.kind == ResponderKind::GridWorker
                    && e.is_some_and(|e| r.grid_id.as_ref() == Some(&e.grid_id))
            });
            let own = self.rank_among(ask, Some(&own), Part::All);
            if !own.is_empty() {
                return own;
            }
        }
        self.rank_among(ask, None, Part::All)
    }

    /// [`Self::rank_part`] with the rules of [`Self::keep_allowed`] applied: who may be
    /// offered the asked incident, among `only` (or everyone).
    pub(super) fn rank_among(&self, ask: Ask, only: Option<&[u32]>, part: Part) -> Vec<Ranked> {
        let mut ranked = self.rank_part(ask, only, part);
        self.keep_allowed(ask.incident_id, ask.extra, &mut ranked);
        ranked
    }

    /// The exact top `k` of one part of an incident's candidates, before
    /// [`Self::keep_allowed`]. `Part::All` is everyone; `Part::Others` everyone but the
    /// `extra` responders (computed as if `extra` were empty); `Part::Extra(others)` the
    /// `extra` responders merged with `others` (the top `k` of `Part::Others`), which gives
    /// what `Part::All` gives: a ranking of the others can be kept between surge rounds
    /// while the extras change (`Engine::kept_top`).
    pub(super) fn rank_part(&self, ask: Ask, only: Option<&[u32]>, part: Part) -> Vec<Ranked> {
        let Ask {
            now,
            incident_id,
            k,
            extra,
            reserved,
        } = ask;
        let inc = &self.incidents[&incident_id];
        let none = BTreeSet::new();
        let (extra, seed) = match part {
            Part::All => (extra, &[][..]),
            Part::Others => (&none, &[][..]),
            Part::Extra(others) => (extra, others),
        };
        let extra_only = matches!(part, Part::Extra(_));
        // `only`: these responders and nobody else (wave 1 of a welfare visit: the elder's
        // own grid worker(s); of a care-plan job: its planned person). Otherwise the elder's
        // familiar responders: their own grid's workers (read from its list, below), the
        // paired and kin.
        let own_grid = only.is_none() && !extra_only;
        let elder = self.elder_asked(inc);
        let mut forced = match (only, extra_only) {
            (_, true) => Vec::new(),
            (Some(slots), false) => slots.to_vec(),
            (None, false) => elder
                .as_ref()
                .map_or_else(Vec::new, |e| self.paired_and_kin(e.record)),
        };
        let welfare_first = only.is_some();
        forced.extend(extra.iter().copied());
        if !welfare_first && !extra_only {
            // Not in the R-tree (it holds the available only): the nearest holding offers an
            // emergency may take over.
            forced.extend(self.preemptable_near(inc, PREEMPT_CANDIDATES));
        }
        forced.sort_unstable();
        forced.dedup();
        let margins = self.margins(inc);
        let others = forced;
        let forced = self.forced_of(elder.as_ref(), own_grid, &others, margins);
        #[cfg(debug_assertions)]
        {
            // The grid list's entries must bound as the records do (positions kept in step
            // on every move), and the merge must hold every forced one once: checked in
            // every debug build.
            let mut slots = others;
            if own_grid {
                slots.extend(self.familiar_slots(inc));
                slots.sort_unstable();
                slots.dedup();
            }
            let by_record: Vec<Forced> = slots.iter().map(|&s| self.forced(s, margins)).collect();
            assert_eq!(
                forced, by_record,
                "grid list out of step with the responders"
            );
        }
        let eligible = |slot: u32| -> Option<CandidateInfo> {
            self.is_candidate(now, slot, inc, extra, extra_only, reserved)
                .then(|| self.candidate_info(slot, elder.as_ref()))?
        };
        let mut trees: Vec<(usize, f64)> = Vec::new();
        if !welfare_first && !extra_only {
            for &kind in inc.plan.offered_kinds() {
                for mode in [TravelMode::Foot, TravelMode::Car] {
                    trees.push((tree_of(kind, mode), self.tree_top_mps(mode)));
                }
            }
        }
        let q = RankQuery {
            target_xy: inc.xy,
            targets: self.incidents.placed(inc, self.roads.as_ref()),
            trees: &trees,
            forced: &forced,
            seed,
            k,
        };
        matching::rank(&q, self.responders.index(), self.roads.as_ref(), &eligible)
    }

    /// Whether `slot` is among `inc`'s candidates now, where they stand aside: not
    /// `reserved`, may be offered it, and free, or holding an offer the ranking considers (an
    /// `extra`'s, or one an emergency takes over). `extra_only`: the `extra` responders alone.
    pub(super) fn is_candidate(
        &self,
        now: Timestamp,
        slot: u32,
        inc: &Incident,
        extra: &BTreeSet<u32>,
        extra_only: bool,
        reserved: &BTreeSet<u32>,
    ) -> bool {
        if reserved.contains(&slot) || !self.may_offer(now, slot, inc) {
            return false;
        }
        match self.responders[slot].status {
            ResponderStatus::Available => !extra_only,
            ResponderStatus::Offered { .. } if extra.contains(&slot) => true,
            // An emergency may ask someone holding a service or welfare-visit offer: the
            // emergency wins and that offer is withdrawn (`take_back`).
            ResponderStatus::Offered { incident_id, .. } => {
                !extra_only && self.preempts(inc, incident_id)
            }
            _ => false,
        }
    }

    /// The rules applied to a ranking's top `k` (in place): how wide the search goes by care
    /// level, and who may be taken from a service.
    pub(super) fn keep_allowed(
        &self,
        incident_id: IncidentId,
        extra: &BTreeSet<u32>,
        ranked: &mut Vec<Ranked>,
    ) {
        let inc = &self.incidents[&incident_id];
        // How wide the search goes, by care level (decision version 5 on): nobody farther by
        // road than the level's limit is asked; the ambulance track covers the rest.
        if let Some(max) = self
            .config
            .max_eta_for(inc.plan, inc.care_level, self.rules)
        {
            ranked.retain(|c| c.eta_ms <= max);
        }
        // Someone is taken from a service only for an emergency next door: within the
        // community's on-scene promise (3 min), else the service keeps them.
        let next_door = self.config.sla_community_on_scene_ms;
        ranked.retain(|c| match self.responders[c.slot].status {
            ResponderStatus::Offered { incident_id, .. } if !extra.contains(&c.slot) => {
                !self.preempts(inc, incident_id) || c.eta_ms <= next_door
            }
            _ => true,
        });
    }

    /// The baseline: nearest by straight line within the radius, no familiarity.
    pub(super) fn rank_baseline(
        &self,
        now: Timestamp,
        incident_id: IncidentId,
        k: usize,
        radius_m: f64,
    ) -> Vec<Ranked> {
        let inc = &self.incidents[&incident_id];
        let trees: Vec<usize> = inc
            .plan
            .offered_kinds()
            .iter()
            .flat_map(|&kind| {
                [
                    tree_of(kind, TravelMode::Foot),
                    tree_of(kind, TravelMode::Car),
                ]
            })
            .collect();
        let near = matching::nearest_within(
            inc.xy,
            &trees,
            radius_m,
            k,
            self.responders.index(),
            &|s| self.responders[s].xy,
            &|s| {
                self.may_offer(now, s, inc)
                    && self.responders[s].status == ResponderStatus::Available
            },
        );
        near.into_iter()
            .map(|(slot, _)| {
                let eta_ms = self.eta_of(slot, incident_id).unwrap_or(0);
                Ranked {
                    slot,
                    eta_ms,
                    score_ms: crate::matching::score_of(eta_ms, 0),
                    familiar: None,
                    mode: self.responders[slot].record.travel_mode,
                }
            })
            .collect()
    }

    pub(super) fn eta_of(&self, slot: u32, incident_id: IncidentId) -> Option<u64> {
        let r = &self.responders[slot];
        let inc = &self.incidents[&incident_id];
        let t = self
            .roads
            .times_to(r.record.travel_mode, &[r.position], inc.position)[0]?;
        Some((t as f64 * self.time_factor(slot)).round() as u64)
    }

    pub(super) fn route_for(&self, slot: u32, incident_id: IncidentId) -> (Vec<LatLon>, f64) {
        let r = &self.responders[slot];
        let inc = &self.incidents[&incident_id];
        match self
            .roads
            .route(r.record.travel_mode, r.position, inc.position)
        {
            Some(route) => (route.path, route.distance_m),
            None => (Vec::new(), 0.0),
        }
    }

    pub(super) fn reason_for(
        &self,
        inc_id: IncidentId,
        c: &Ranked,
        ranked: &[Ranked],
        position: usize,
    ) -> String {
        let r = &self.responders[c.slot].record;
        let mut s = format!("{}: ", r.id);
        match c.familiar {
            Some(f) => s.push_str(f),
            None => s.push_str(&format!("#{} by road ETA", position + 1)),
        }
        s.push_str(&format!(", ETA {} s {}", secs(c.eta_ms), mode_name(c.mode)));
        if let Some(w) = r.walk_kmh.filter(|_| c.mode == TravelMode::Foot) {
            s.push_str(&format!(" at {w} km/h"));
        }
        if c.familiar.is_some() {
            if let Some(n) = ranked
                .iter()
                .filter(|o| o.familiar.is_none() && o.eta_ms < c.eta_ms)
                .min_by_key(|o| o.eta_ms)
            {
                let nid = &self.responders[n.slot].record.id;
                let (what, margin) = match c.familiar {
                    Some("kin") => ("kin", self.config.kin_margin_ms),
                    _ => (
                        "familiar",
                        self.incidents
                            .get(&inc_id)
                            .map_or(self.config.familiarity_margin_ms, |inc| {
                                self.margins(inc).familiar_ms
                            }),
                    ),
                };
                s.push_str(&format!(
                    "; {nid} was nearer at {} s but not {what} (margin {} s)",
                    secs(n.eta_ms),
                    secs(margin)
                ));
            }
        }
        s
    }
}
