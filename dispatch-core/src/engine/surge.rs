//! Surges: several emergencies waiting at once are assigned jointly (minimum total weighted
//! ETA), so one incident does not take the only nearby responder of another.

use super::*;
use ranking::{Ask, Part};

impl Engine {
    /// The most urgent of `ids` (highest priority, then oldest, then lowest id), at most
    /// `max` of them (at least one), in id order. Deterministic: a pure function of the state.
    pub(super) fn most_urgent(
        &self,
        ids: impl Iterator<Item = IncidentId>,
        max: usize,
    ) -> Vec<IncidentId> {
        let mut keyed: Vec<_> = ids
            .filter_map(|i| self.incidents.get(&i))
            .map(|inc| (std::cmp::Reverse(inc.priority), inc.opened_at, inc.id))
            .collect();
        let max = max.max(1);
        if keyed.len() > max {
            keyed.select_nth_unstable(max - 1);
            keyed.truncate(max);
        }
        let mut out: Vec<IncidentId> = keyed.into_iter().map(|(_, _, id)| id).collect();
        out.sort_unstable();
        out
    }

    /// The emergencies of one joint round: waiting emergencies (dispatching, no community
    /// responder yet), at most `surge_max_incidents` of them: the pending ones first, then the
    /// most urgent others from the front of `waiting_emergencies` (closed history and
    /// assigned incidents are never visited). In id order.
    pub(super) fn surge_set(&self, pending: &[IncidentId]) -> Vec<IncidentId> {
        let waiting_emergency = |i: &IncidentId| {
            #[cfg(test)]
            self.surge_scanned
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.incidents.get(i).is_some_and(is_waiting_emergency)
        };
        let max = self.config.surge_max_incidents.max(1);
        let mut surge = self.most_urgent(
            pending.iter().copied().filter(|i| waiting_emergency(i)),
            max,
        );
        if surge.len() < max {
            let taken: BTreeSet<IncidentId> = surge.iter().copied().collect();
            // The most urgent others, straight from the front of the ordered index.
            let others: Vec<IncidentId> = self
                .incidents
                .waiting_emergencies()
                .filter(|i| !taken.contains(i) && waiting_emergency(i))
                .take(max - surge.len())
                .collect();
            #[cfg(debug_assertions)]
            {
                // The index must give what a scan of every open incident gives (checked in
                // every debug build: the property tests run thousands of sequences).
                let scanned = self.most_urgent(
                    self.incidents.open_ids().filter(|i| {
                        !taken.contains(i)
                            && self.incidents.get(i).is_some_and(is_waiting_emergency)
                    }),
                    max - surge.len(),
                );
                let mut got = others.clone();
                got.sort_unstable();
                assert_eq!(got, scanned, "waiting_emergencies out of step");
            }
            surge.extend(others);
            surge.sort_unstable();
        }
        surge
    }

    /// Joint assignment over (a bounded set of) waiting emergencies: each gets its best *primary* responder
    /// so that the total priority-weighted score is least, taking back open offers of other
    /// waiting emergencies where that serves better (`Reassigned`). Returns the primaries
    /// (reserved: other waves must not take them) and the pending incidents whose wave was
    /// started with their primary.
    pub(super) fn joint_round(
        &mut self,
        now: Timestamp,
        surge: &[IncidentId],
        pending: &[IncidentId],
    ) -> (BTreeSet<u32>, BTreeSet<IncidentId>) {
        let offered: BTreeSet<u32> = surge
            .iter()
            .flat_map(|i| self.incidents[i].open_offers.iter())
            .filter_map(|o| self.responders.slot_of(&self.offers[o].responder_id))
            .collect();
        let k = self.config.surge_candidates.max(1);
        // A surge incident is ranked again in every round until someone accepts: its ranking
        // of everyone but this round's extras is kept while nothing it read changes
        // (`kept.rs`), with its walking sweep while a closure holds (`hint_sweep`), and the
        // extras are ranked on their own.
        let none = BTreeSet::new();
        let ranked: Vec<Vec<Ranked>> = surge
            .iter()
            .map(|&i| {
                // Responders holding an offer of *this* incident were already asked by it.
                let ask = Ask {
                    now,
                    incident_id: i,
                    k,
                    extra: &offered,
                    reserved: &none,
                };
                let mut r = match self.keeps_ranking(i) {
                    true => {
                        let others = self.kept_top(now, i, k);
                        let r = self.rank_among(ask, None, Part::Extra(&others));
                        debug_assert_eq!(r, self.rank_for(ask));
                        r
                    }
                    false => {
                        self.hint_sweep(i, false);
                        self.rank_for(ask)
                    }
                };
                r.extend(self.own_offers(i));
                r
            })
            .collect();
        let mut cols: Vec<u32> = ranked.iter().flatten().map(|r| r.slot).collect();
        cols.sort_unstable();
        cols.dedup();
        let costs: Vec<Vec<Option<u64>>> = surge
            .iter()
            .zip(&ranked)
            .map(|(i, rs)| {
                let inc = &self.incidents[i];
                let w = u64::from(inc.priority);
                // Costs are kept non-negative: a familiar responder's score is down to the
                // margin below their ETA (kin, whose margin may be larger, floor at 0).
                let margin = self.margins(inc).familiar_ms as i64;
                cols.iter()
                    .map(|s| {
                        rs.iter()
                            .find(|r| r.slot == *s)
                            .map(|r| w * (r.score_ms + margin).max(0) as u64)
                    })
                    .collect()
            })
            .collect();
        let assignment = matching::assign_jointly(&costs);
        let (n_assigned, total) = matching::assignment_value(&costs, &assignment);
        let mut primaries = BTreeSet::new();
        let mut plan: Vec<(IncidentId, Ranked)> = Vec::new();
        for ((i, rs), a) in surge.iter().zip(&ranked).zip(&assignment) {
            if let Some(c) = a {
                let slot = cols[*c];
                primaries.insert(slot);
                let r = rs
                    .iter()
                    .find(|r| r.slot == slot)
                    .expect("cost came from this list")
                    .clone();
                plan.push((*i, r));
            }
        }
        // Phase 1: take back offers that the joint solution gives to another incident.
        for (i, r) in &plan {
            self.take_back(now, r.slot, *i);
        }
        // Phase 2: offer each primary to its incident (unless it already holds that offer).
        let mut started = BTreeSet::new();
        for (i, r) in &plan {
            if matches!(self.responders[r.slot].status, ResponderStatus::Offered { incident_id, .. } if incident_id == *i)
            {
                continue;
            }
            let is_pending = pending.contains(i);
            if is_pending {
                self.incidents
                    .update(*i, |inc| inc.wave += 1)
                    .expect("surge incidents exist");
                started.insert(*i);
            }
            let id = self.responders[r.slot].record.id.clone();
            let mut reason = self.reason_for(
                *i,
                r,
                &ranked[surge.iter().position(|x| x == i).expect("in surge")],
                0,
            );
            reason.push_str(&format!(
                "; surge of {} waiting emergencies: joint assignment gives {id} here (total weighted score {} s over {n_assigned} incidents)",
                surge.len(),
                secs(total)
            ));
            self.send_offer(now, *i, r, reason);
        }
        // Incidents that lost their only open offer and got no primary wait for the next try.
        for i in surge {
            let inc = &self.incidents[i];
            if inc.open_offers.is_empty() && !pending.contains(i) {
                self.pending.insert(*i);
            }
        }
        let again: Vec<IncidentId> = std::mem::take(&mut self.pending).into_iter().collect();
        for i in again {
            self.send_wave(now, i, &primaries, 0);
        }
        (primaries, started)
    }

    /// The responders holding open offers of `incident`, as ranked entries (their ETAs).
    pub(super) fn own_offers(&self, incident_id: IncidentId) -> Vec<Ranked> {
        let inc = &self.incidents[&incident_id];
        let elder = self.elder_asked(inc);
        inc.open_offers
            .iter()
            .filter_map(|o| {
                let offer = &self.offers[o];
                let slot = self.responders.slot_of(&offer.responder_id)?;
                let (familiar, margin_ms) = self.familiarity(slot, elder.as_ref());
                Some(Ranked {
                    slot,
                    eta_ms: offer.eta_ms,
                    score_ms: crate::matching::score_of(offer.eta_ms, margin_ms),
                    familiar,
                    mode: self.responders[slot].record.travel_mode,
                })
            })
            .collect()
    }
}
