//! Dispatch rounds: sending a wave of offers to the best ranked, and the ambulance track.

use super::*;
use ranking::Ask;

impl Engine {
    /// Sends one offer.
    pub(super) fn send_offer(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        c: &Ranked,
        reason: String,
    ) {
        self.take_back(now, c.slot, incident_id);
        let id = self.responders[c.slot].record.id.clone();
        let inc = &self.incidents[&incident_id];
        let (plan, wave, care) = (inc.plan, inc.wave, inc.care_level);
        if plan == Plan::Emergency && self.rules >= crate::journal::ANSWERS_SINCE {
            self.responders.count_offer(c.slot, now);
        }
        let expires_at = now.plus_ms(self.config.expiry_for(plan, care, self.rules));
        let offer_id = self
            .offers
            .open(incident_id, id.clone(), wave, now, expires_at, c.eta_ms);
        self.incidents
            .update(incident_id, |inc| {
                inc.open_offers.insert(offer_id);
                inc.asked.insert(id.clone());
            })
            .expect("caller checked");
        self.unwait(incident_id);
        self.set_status(
            c.slot,
            ResponderStatus::Offered {
                offer_id,
                incident_id,
            },
        );
        self.set_timer(expires_at, Timer::OfferExpiry(offer_id));
        let (route, distance_m) = self.route_for(c.slot, incident_id);
        self.emit(
            now,
            Event::OfferSent {
                offer_id,
                incident_id,
                responder_id: id,
                wave,
                eta_s: secs(c.eta_ms) as u32,
                distance_m: distance_m.round() as u32,
                route,
                expires_at,
                reason,
            },
        );
    }

    /// Sends the next wave of one incident, skipping `reserved` responders.
    pub(super) fn send_wave(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        reserved: &BTreeSet<u32>,
        already: usize,
    ) {
        if let MatchingMode::NearestRadius {
            radius_m,
            replace: true,
        } = self.config.matching
        {
            if self.top_up(now, incident_id, radius_m) {
                return;
            }
        }
        let inc = &self.incidents[&incident_id];
        // `already` offers of this wave went out in the joint round, which started the wave
        // (its number is `inc.wave` now): the wave is completed to its own size, not the
        // next one's (defect: a surge's wave 1 asked 3 + 2 = 5 people).
        let wave = if already > 0 && self.rules >= 3 {
            inc.wave
        } else {
            inc.wave + 1
        };
        // The baseline asks fixed-size waves ("3 nearest, then the next 3").
        let size = match self.config.matching {
            MatchingMode::RoadEta => {
                self.config
                    .wave_size_for(wave, inc.plan, inc.care_level, self.rules)
            }
            MatchingMode::NearestRadius { .. } => self.config.wave_size(1),
        };
        let k = size.saturating_sub(already);
        let by_acceptance = self.sized_by_acceptance(inc);
        // Sized from acceptance, a wave may ask more than `k`: rank enough to choose from.
        let fetch = if by_acceptance {
            self.acceptance_fetch(k)
        } else {
            k
        };
        let ranked = match self.config.matching {
            MatchingMode::RoadEta => {
                let none = BTreeSet::new();
                let ask = Ask {
                    now,
                    incident_id,
                    k: fetch + 1,
                    extra: &none,
                    reserved,
                };
                // Completing a wave the joint round started: its kept ranking, when it
                // still holds, gives the same (`kept_wave`); checked in every debug build.
                match (already > 0).then(|| self.kept_wave(ask)).flatten() {
                    Some(mut ranked) => {
                        self.keep_allowed(incident_id, &none, &mut ranked);
                        debug_assert_eq!(ranked, self.rank_for(ask), "kept wave out of step");
                        #[cfg(test)]
                        self.kept_wave_used.push(incident_id);
                        ranked
                    }
                    None => self.rank_for(ask),
                }
            }
            MatchingMode::NearestRadius { radius_m, .. } => {
                self.rank_baseline(now, incident_id, k, radius_m)
            }
        };
        let pick = |engine: &Engine, ranked: &[Ranked]| -> (Vec<Ranked>, Option<f64>) {
            if by_acceptance {
                engine.choose_by_acceptance(incident_id, wave, ranked, k)
            } else {
                (ranked.iter().take(k).cloned().collect(), None)
            }
        };
        let (mut chosen, mut chance) = pick(self, &ranked);
        let mut ranked = ranked;
        if chosen.is_empty()
            && already == 0
            && self.config.matching == MatchingMode::RoadEta
            && self.ask_again(now, incident_id)
        {
            ranked = self.rank_for(Ask {
                now,
                incident_id,
                k: fetch + 1,
                extra: &BTreeSet::new(),
                reserved,
            });
            (chosen, chance) = pick(self, &ranked);
        }
        if chosen.is_empty() && already == 0 {
            let inc = &self.incidents[&incident_id];
            if inc.open_offers.is_empty() && !self.waiting.contains_key(&incident_id) {
                let why = match self.config.matching {
                    MatchingMode::NearestRadius { radius_m, .. } => {
                        format!("nobody eligible within {radius_m:.0} m")
                    }
                    MatchingMode::RoadEta => match self.config.max_eta_for(
                        inc.plan,
                        inc.care_level,
                        self.rules,
                    ) {
                        Some(max) => format!(
                            "nobody eligible and reachable within {} min by road (the care level {} search) is available",
                            max / 60_000,
                            inc.care_level
                        ),
                        None => "nobody eligible and reachable is available".to_string(),
                    },
                };
                // Already said since this incident's last offer or assignment?
                let repeated = matches!(
                    inc.timeline.iter().rev().find(|e| matches!(
                        e.event,
                        Event::NoResponderAvailable { .. }
                            | Event::OfferSent { .. }
                            | Event::Assigned { .. }
                    )),
                    Some(EventRecord {
                        event: Event::NoResponderAvailable { .. },
                        ..
                    })
                );
                let retry = now.plus_ms(self.config.retry_ms);
                self.waiting.insert(incident_id, retry);
                self.set_timer(retry, Timer::Retry(incident_id));
                // Said once per stretch (until an offer or assignment): a fruitless retry
                // re-arms quietly, so a console watching thirty incidents is not told the same
                // thing every 15 s, and the timeline of a long wait stays short.
                if !repeated {
                    let every = self.config.retry_ms / 1000;
                    self.emit(
                        now,
                        Event::NoResponderAvailable {
                            incident_id,
                            reason: format!(
                                "{why}; trying again every {every} s and whenever a responder becomes available"
                            ),
                        },
                    );
                }
            }
            return;
        }
        if already == 0 {
            let wave = self
                .incidents
                .update(incident_id, |inc| {
                    inc.wave += 1;
                    inc.wave
                })
                .expect("checked");
            if wave > 1 {
                self.emit(
                    now,
                    Event::Escalated {
                        incident_id,
                        reason: format!(
                            "wave {wave}: asking {} more (the previous wave declined or expired){}",
                            chosen.len(),
                            widened(chance, chosen.len(), k, self.config.acceptance_target)
                        ),
                    },
                );
            }
        }
        let why_size = widened(chance, chosen.len(), k, self.config.acceptance_target);
        for (n, c) in chosen.iter().enumerate() {
            let mut reason = self.reason_for(incident_id, c, &ranked, n + already);
            reason.push_str(&why_size);
            self.send_offer(now, incident_id, c, reason);
        }
    }

    /// Whether this incident's waves are sized from predicted acceptance: emergencies under
    /// our rules, decision version 6 on, with a target set.
    fn sized_by_acceptance(&self, inc: &Incident) -> bool {
        self.rules >= crate::journal::ANSWERS_SINCE
            && self.config.matching == MatchingMode::RoadEta
            && inc.plan == Plan::Emergency
            && self.config.acceptance_target > 0.0
    }

    /// The chance that `slot` accepts an emergency offer before it expires: their own answers
    /// shrunk towards the engine-wide rate.
    pub(super) fn predicted_acceptance(&self, slot: u32) -> f64 {
        self.responders[slot].answers.predicted(
            self.engine_acceptance(),
            self.config.acceptance_prior_weight,
        )
    }

    /// The engine-wide acceptance a newcomer is predicted by: everyone's answers, starting
    /// from `acceptance_prior` while there are few.
    fn engine_acceptance(&self) -> f64 {
        self.responders.acceptance_rate(
            self.config.acceptance_prior,
            self.config.acceptance_prior_weight,
        )
    }

    /// How many to rank for a wave sized from acceptance: as many as people of the
    /// engine-wide rate it would take to reach the target, and two more (some predict
    /// lower), at least `k`, at most `max_wave_size`.
    fn acceptance_fetch(&self, k: usize) -> usize {
        let m = self.engine_acceptance().clamp(0.01, 0.99);
        let target = self.config.acceptance_target;
        let n = ((1.0 - target).ln() / (1.0 - m).ln()).ceil().max(1.0) as usize;
        (n + 2).min(self.config.max_wave_size as usize).max(k)
    }

    /// Chooses a wave from `ranked` (nearest first): at least `k`, then more while the
    /// predicted chance that someone accepts (offers already open on the incident included)
    /// is under `acceptance_target`, as long as the incident holds fewer than
    /// `max_wave_size` open offers. Returns the chosen and the chance they give.
    fn choose_by_acceptance(
        &self,
        incident_id: IncidentId,
        wave: u32,
        ranked: &[Ranked],
        k: usize,
    ) -> (Vec<Ranked>, Option<f64>) {
        let inc = &self.incidents[&incident_id];
        let open = inc.open_offers.len();
        let mut miss: f64 = inc
            .open_offers
            .iter()
            .filter_map(|o| self.responders.slot_of(&self.offers[o].responder_id))
            .map(|s| 1.0 - self.predicted_acceptance(s))
            .product();
        let target = self.config.acceptance_target;
        let max = self.config.max_wave_size as usize;
        // Beyond its configured size a wave takes only those who could still keep the
        // on-scene promise: whoever accepts first goes, so a farther extra would often
        // replace a nearer acceptor rather than add one.
        let reach = self
            .config
            .sla_community_on_scene_for(inc.care_level, self.rules);
        let mut chosen = Vec::new();
        for c in ranked {
            if chosen.len() >= k && (1.0 - miss >= target || open + chosen.len() >= max) {
                break;
            }
            if chosen.len() >= k && wave == 1 && c.eta_ms > reach {
                continue;
            }
            miss *= 1.0 - self.predicted_acceptance(c.slot);
            chosen.push(c.clone());
        }
        (chosen, Some(1.0 - miss))
    }

    /// The replacing baseline: a wave with offers still open is topped up to its size with
    /// the next nearest (one for each who declined or let the offer expire). Returns false
    /// when no offer is open (then a new wave goes out as for any policy).
    fn top_up(&mut self, now: Timestamp, incident_id: IncidentId, radius_m: f64) -> bool {
        let open = self.incidents[&incident_id].open_offers.len();
        if open == 0 {
            return false;
        }
        let k = self.config.wave_size(1).saturating_sub(open);
        let ranked = self.rank_baseline(now, incident_id, k, radius_m);
        for (n, c) in ranked.iter().take(k).enumerate() {
            let reason = self.reason_for(incident_id, c, &ranked, n + open);
            self.send_offer(now, incident_id, c, reason);
        }
        true
    }

    /// An emergency with nobody new to ask asks again: first those who let its offer expire
    /// (`reask_after_expiry_ms` after), else those who declined (`reask_after_decline_ms`
    /// after their answer), and says so on the timeline. Returns whether anyone may be asked
    /// again. Decision version 3 on; emergencies only (a service's long offers are not
    /// pressed on people who said no).
    pub(super) fn ask_again(&mut self, now: Timestamp, incident_id: IncidentId) -> bool {
        let inc = &self.incidents[&incident_id];
        if self.rules < 3 || inc.plan != Plan::Emergency || !inc.open_offers.is_empty() {
            return false;
        }
        // Each asked responder's last answer to this incident, from its timeline.
        let mut last: BTreeMap<&ResponderId, (bool, Timestamp)> = BTreeMap::new();
        for e in &inc.timeline {
            match &e.event {
                Event::OfferExpired { responder_id, .. } => {
                    last.insert(responder_id, (true, e.at));
                }
                Event::OfferDeclined { responder_id, .. } => {
                    last.insert(responder_id, (false, e.at));
                }
                Event::OfferSent { responder_id, .. } => {
                    last.remove(responder_id);
                }
                _ => {}
            }
        }
        let ready = |expired: bool, pause: u64| -> Vec<ResponderId> {
            last.iter()
                .filter(|(id, (e, at))| {
                    *e == expired && now.ms_since(*at) >= pause && inc.asked.contains(**id)
                })
                .map(|(id, _)| (*id).clone())
                .collect()
        };
        let (again, who) = match ready(true, self.config.reask_after_expiry_ms) {
            v if !v.is_empty() => (v, "let the offer expire"),
            _ => (ready(false, self.config.reask_after_decline_ms), "declined"),
        };
        if again.is_empty() {
            return false;
        }
        let names = again
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        self.incidents
            .update(incident_id, |i| {
                for r in &again {
                    i.asked.remove(r);
                }
            })
            .expect("checked");
        self.emit(
            now,
            Event::Escalated {
                incident_id,
                reason: format!("nobody new is available: asking again those who {who} ({names})"),
            },
        );
        true
    }

    pub(super) fn dispatch_ambulance(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        why: String,
    ) {
        let inc = &self.incidents[&incident_id];
        let trees = [
            (
                tree_of(ResponderKind::Ambulance, TravelMode::Car),
                self.tree_top_mps(TravelMode::Car),
            ),
            (
                tree_of(ResponderKind::Ambulance, TravelMode::Foot),
                self.tree_top_mps(TravelMode::Foot),
            ),
        ];
        let stale = self.config.stale_position_ms;
        let eligible = |slot: u32| -> Option<CandidateInfo> {
            let r = &self.responders[slot];
            (r.status == ResponderStatus::Available
                && !r.retired
                && r.position_fresh(now, stale)
                && (self.rules < 3 || r.reachable(now, self.config.presence_grace_ms)))
            .then(|| self.candidate_info(slot, None))
            .flatten()
        };
        let q = RankQuery {
            target_xy: inc.xy,
            targets: self.incidents.placed(inc, self.roads.as_ref()),
            trees: &trees,
            forced: &[],
            seed: &[],
            k: 1,
        };
        let best = matching::rank(&q, self.responders.index(), self.roads.as_ref(), &eligible);
        match best.first() {
            Some(c) => {
                let id = &self.responders[c.slot].record.id;
                let reason = format!(
                    "{why}: {id} is the nearest available ambulance, ETA {} s by car",
                    secs(c.eta_ms)
                );
                self.emit(
                    now,
                    Event::Escalated {
                        incident_id,
                        reason: format!("ambulance dispatched: {why}"),
                    },
                );
                self.assign_ambulance(now, incident_id, c.slot, c.eta_ms, reason);
            }
            None => {
                let already_said = self
                    .incidents
                    .update(incident_id, |inc| {
                        inc.ambulance_wanted.replace(why.clone()).is_some()
                    })
                    .expect("checked");
                let retry = now.plus_ms(self.config.retry_ms);
                self.set_timer(retry, Timer::AmbulanceRetry(incident_id));
                if !already_said {
                    let every = self.config.retry_ms / 1000;
                    self.emit(
                        now,
                        Event::Escalated {
                            incident_id,
                            reason: format!(
                                "ambulance needed ({why}) but none is available; trying again every {every} s"
                            ),
                        },
                    );
                }
            }
        }
    }

    pub(super) fn assign_ambulance(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        slot: u32,
        eta_ms: u64,
        reason: String,
    ) {
        let id = self.responders[slot].record.id.clone();
        self.set_status(slot, ResponderStatus::EnRoute { incident_id });
        self.incidents
            .update(incident_id, |inc| {
                inc.ambulance = Some(id.clone());
                inc.ambulance_at = Some(now);
                inc.ambulance_wanted = None;
            })
            .expect("caller checked");
        self.set_timer(
            now.plus_ms(self.config.sla_ambulance_on_scene_ms),
            Timer::SlaAmbulanceOnScene(incident_id),
        );
        let (route, _) = self.route_for(slot, incident_id);
        self.emit(
            now,
            Event::Assigned {
                incident_id,
                responder_id: id,
                role: AssignmentRole::Ambulance,
                eta_s: secs(eta_ms) as u32,
                route,
                reason,
            },
        );
    }

    /// Sends the waves decided during this call: jointly for emergencies in a surge, then one
    /// by one (most urgent first).
    pub(super) fn run_dispatch(&mut self, now: Timestamp) {
        // Sending waves can free responders (surge re-assignment), which wakes waiting
        // incidents; a few rounds settle it. Waiting incidents also have retry timers, so
        // stopping after the cap loses nothing, and `pending` is empty between calls.
        for _ in 0..4 {
            if self.pending.is_empty() {
                break;
            }
            self.dispatch_round(now);
        }
        self.pending.clear();
    }

    pub(super) fn dispatch_round(&mut self, now: Timestamp) {
        let pending: Vec<IncidentId> = std::mem::take(&mut self.pending)
            .into_iter()
            .filter(|i| self.incidents.get(i).is_some_and(Incident::wants_offers))
            .collect();
        let mut reserved = BTreeSet::new();
        let mut done = BTreeSet::new();
        if self.config.matching == MatchingMode::RoadEta {
            let surge = self.surge_set(&pending);
            let pending_emergencies = pending.iter().filter(|i| surge.contains(i)).count();
            if surge.len() >= 2 && pending_emergencies >= 1 {
                let (res, offered) = self.joint_round(now, &surge, &pending);
                reserved = res;
                done = offered;
            }
        }
        let mut order: Vec<IncidentId> = pending;
        order.sort_by_key(|i| (std::cmp::Reverse(self.incidents[i].priority), *i));
        for i in order {
            let already = usize::from(done.contains(&i));
            let inc = &self.incidents[&i];
            if inc.wants_offers() {
                self.send_wave(now, i, &reserved, already);
            }
        }
    }
}

/// What a wave's offers and escalation say when acceptance made the wave larger than its
/// configured size (empty otherwise).
fn widened(chance: Option<f64>, asked: usize, k: usize, target: f64) -> String {
    match chance {
        Some(p) if asked > k => format!(
            "; asking {asked} (not {k}): predicted chance that someone accepts {:.0} % (target {:.0} %)",
            p * 100.0,
            target * 100.0
        ),
        _ => String::new(),
    }
}
