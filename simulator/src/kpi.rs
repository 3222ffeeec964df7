//! Dispatch-quality KPIs computed from nothing but the engine's event stream and the roster:
//! response-time distributions against the 30 s / 3 min / 11 min promises, familiarity,
//! volunteer workload spread, SLA breaches and time-bank totals.
//!
//! The collector is fed `EventRecord`s in order (`observe`) and summarised once (`finish`),
//! so the same code scores a virtual-time run, a replay and a recorded server stream.

use dispatch_core::event::{Event, EventRecord};
use dispatch_core::ids::{ElderId, GridId, IncidentId, ResponderId};
use dispatch_core::model::{AlertKind, AssignmentRole, ResponderKind, ServiceKind, Sla};
use dispatch_core::roster::RosterFile;
use dispatch_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The promise of DESIGN §1: somebody accepts within 30 s.
pub const FIRST_ACCEPT_TARGET_S: f64 = 30.0;
/// A community responder at the door within 3 min.
pub const COMMUNITY_ON_SCENE_TARGET_S: f64 = 180.0;
/// An ambulance at the door within 11 min.
pub const AMBULANCE_ON_SCENE_TARGET_S: f64 = 660.0;

/// One response-time distribution.
///
/// Incidents that never reached the milestone count as infinitely late: they are in `count`,
/// not in `reached`, they are never within target, and a percentile that falls on them is
/// `null` ("not reached by that share of incidents") rather than a flattering number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Incidents this milestone applies to.
    pub count: usize,
    /// Incidents that reached it.
    pub reached: usize,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub target_s: f64,
    /// Share of `count` reached within `target_s` (`null` when `count` is 0).
    pub within_target: Option<f64>,
}

impl Distribution {
    /// Builds the distribution from per-incident times in seconds (`None` = never reached).
    pub fn new(samples: &[Option<f64>], target_s: f64) -> Distribution {
        let mut values: Vec<f64> = samples.iter().map(|s| s.unwrap_or(f64::INFINITY)).collect();
        values.sort_by(f64::total_cmp);
        let within = values.iter().filter(|v| **v <= target_s).count();
        Distribution {
            count: values.len(),
            reached: values.iter().filter(|v| v.is_finite()).count(),
            p50: percentile(&values, 0.50),
            p90: percentile(&values, 0.90),
            p99: percentile(&values, 0.99),
            target_s,
            within_target: (!values.is_empty()).then(|| within as f64 / values.len() as f64),
        }
    }
}

/// Nearest-rank percentile of ascending `sorted` values: the smallest value with at least a
/// share `q` of the values at or below it (rank `ceil(q * n)`, 1-based). Infinite (never
/// reached) and empty give `None`.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    let v = sorted[rank - 1];
    v.is_finite().then_some(v)
}

/// Gini coefficient of non-negative counts: 0 when everybody carries the same load, towards 1
/// when one person carries it all. 0 for an empty or all-zero list.
pub fn gini(counts: &[u32]) -> f64 {
    let n = counts.len();
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    if n == 0 || total == 0 {
        return 0.0;
    }
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let weighted: f64 = sorted
        .iter()
        .enumerate()
        .map(|(i, &c)| (i as f64 + 1.0) * f64::from(c))
        .sum();
    2.0 * weighted / (n as f64 * total as f64) - (n as f64 + 1.0) / n as f64
}

/// Incident counts by kind and outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentCounts {
    pub opened: usize,
    /// Falls and `help` with service `rescue`.
    pub emergencies: usize,
    /// `help` with a non-rescue service.
    pub services: usize,
    pub check_ins_missed: usize,
    pub resolved: usize,
    pub cancelled: usize,
    /// Emergencies no community responder ever accepted.
    pub emergencies_never_accepted: usize,
    /// Incidents an ambulance was assigned to.
    pub with_ambulance: usize,
}

/// Offer outcomes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferCounts {
    pub sent: usize,
    pub declined: usize,
    pub expired: usize,
    pub withdrawn: usize,
}

/// How many community assignments went to somebody the elder knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Familiarity {
    pub community_assignments: usize,
    /// A paired volunteer of the elder, or the grid worker of the elder's grid.
    pub familiar: usize,
    pub share: Option<f64>,
}

/// Volunteer workload spread over every volunteer on the roster (idle ones count as 0).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub volunteers: usize,
    pub volunteers_assigned: usize,
    pub assignments: u32,
    pub max: u32,
    pub mean: f64,
    /// `max / mean`; `null` with no assignments.
    pub max_over_mean: Option<f64>,
    pub gini: f64,
}

/// SLA breaches the engine reported, by promise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlaBreaches {
    pub first_accept: usize,
    pub community_on_scene: usize,
    pub ambulance_on_scene: usize,
    /// Services and welfare visits (not accepted, nobody at the door in time).
    #[serde(default)]
    pub job_accept: usize,
    #[serde(default)]
    pub job_on_scene: usize,
}

/// Time-bank credits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeBankTotals {
    pub credits: usize,
    pub minutes: u64,
    pub volunteers_credited: usize,
}

/// Everything one policy scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyKpis {
    pub incidents: IncidentCounts,
    /// From incident opened to the first community accept (emergencies).
    pub first_accept_s: Distribution,
    /// From incident opened to the first community responder on scene (emergencies).
    pub community_on_scene_s: Distribution,
    /// From incident opened to the first ambulance on scene (incidents an ambulance went to).
    pub ambulance_on_scene_s: Distribution,
    pub offers: OfferCounts,
    pub familiar_assignments: Familiarity,
    pub volunteer_workload: Workload,
    pub sla_breaches: SlaBreaches,
    pub time_bank: TimeBankTotals,
}

/// The milestones of one incident.
#[derive(Debug, Clone)]
struct Track {
    opened_at: Timestamp,
    elder_id: ElderId,
    emergency: bool,
    first_accept: Option<Timestamp>,
    community_on_scene: Option<Timestamp>,
    ambulance_assigned: bool,
    ambulance_on_scene: Option<Timestamp>,
}

/// Streams events in, KPIs out.
#[derive(Debug)]
pub struct KpiCollector {
    elders: HashMap<ElderId, (GridId, HashSet<ResponderId>)>,
    responders: HashMap<ResponderId, (ResponderKind, Option<GridId>)>,
    volunteers: Vec<ResponderId>,
    /// Ordered by id so that `finish` is deterministic.
    tracks: BTreeMap<IncidentId, Track>,
    counts: IncidentCounts,
    offers: OfferCounts,
    familiarity: Familiarity,
    per_volunteer: HashMap<ResponderId, u32>,
    breaches: SlaBreaches,
    time_bank: TimeBankTotals,
    credited: HashSet<ResponderId>,
}

impl KpiCollector {
    /// A collector that knows who is paired with whom and who is a volunteer.
    pub fn new(roster: &RosterFile) -> KpiCollector {
        KpiCollector {
            elders: roster
                .elders
                .iter()
                .map(|e| {
                    (
                        e.id.clone(),
                        (
                            e.grid_id.clone(),
                            e.paired_responders.iter().cloned().collect(),
                        ),
                    )
                })
                .collect(),
            responders: roster
                .responders
                .iter()
                .map(|r| (r.id.clone(), (r.kind, r.grid_id.clone())))
                .collect(),
            volunteers: roster
                .responders
                .iter()
                .filter(|r| r.kind == ResponderKind::Volunteer)
                .map(|r| r.id.clone())
                .collect(),
            tracks: BTreeMap::new(),
            counts: IncidentCounts::default(),
            offers: OfferCounts::default(),
            familiarity: Familiarity::default(),
            per_volunteer: HashMap::new(),
            breaches: SlaBreaches::default(),
            time_bank: TimeBankTotals::default(),
            credited: HashSet::new(),
        }
    }

    /// Takes one event, in engine order.
    pub fn observe(&mut self, record: &EventRecord) {
        let at = record.at;
        match &record.event {
            Event::IncidentOpened {
                incident_id,
                elder_id,
                kind,
                service,
                ..
            } => {
                let emergency = match kind {
                    AlertKind::Fall => true,
                    AlertKind::Help => matches!(service, None | Some(ServiceKind::Rescue)),
                    AlertKind::CheckInMissed | AlertKind::CarePlan => false,
                };
                self.counts.opened += 1;
                match (kind, emergency) {
                    (_, true) => self.counts.emergencies += 1,
                    (AlertKind::CheckInMissed, _) => self.counts.check_ins_missed += 1,
                    _ => self.counts.services += 1,
                }
                self.tracks.insert(
                    *incident_id,
                    Track {
                        opened_at: at,
                        elder_id: elder_id.clone(),
                        emergency,
                        first_accept: None,
                        community_on_scene: None,
                        ambulance_assigned: false,
                        ambulance_on_scene: None,
                    },
                );
            }
            Event::OfferSent { .. } => self.offers.sent += 1,
            Event::OfferDeclined { .. } => self.offers.declined += 1,
            Event::OfferExpired { .. } => self.offers.expired += 1,
            Event::OfferWithdrawn { .. } => self.offers.withdrawn += 1,
            Event::Assigned {
                incident_id,
                responder_id,
                role,
                ..
            } => {
                let Some(track) = self.tracks.get_mut(incident_id) else {
                    return;
                };
                match role {
                    AssignmentRole::Ambulance => {
                        if !track.ambulance_assigned {
                            self.counts.with_ambulance += 1;
                        }
                        track.ambulance_assigned = true;
                    }
                    AssignmentRole::Community => {
                        track.first_accept.get_or_insert(at);
                        self.familiarity.community_assignments += 1;
                        let responder = self.responders.get(responder_id);
                        let familiar =
                            self.elders
                                .get(&track.elder_id)
                                .is_some_and(|(grid, paired)| {
                                    paired.contains(responder_id)
                                        || responder.is_some_and(|(kind, rgrid)| {
                                            *kind == ResponderKind::GridWorker
                                                && rgrid.as_ref() == Some(grid)
                                        })
                                });
                        if familiar {
                            self.familiarity.familiar += 1;
                        }
                        if responder.is_some_and(|(kind, _)| *kind == ResponderKind::Volunteer) {
                            *self.per_volunteer.entry(responder_id.clone()).or_default() += 1;
                        }
                    }
                }
            }
            Event::ResponderArrived {
                incident_id, role, ..
            } => {
                let Some(track) = self.tracks.get_mut(incident_id) else {
                    return;
                };
                match role {
                    AssignmentRole::Community => track.community_on_scene.get_or_insert(at),
                    AssignmentRole::Ambulance => track.ambulance_on_scene.get_or_insert(at),
                };
            }
            Event::IncidentResolved { .. } => self.counts.resolved += 1,
            Event::IncidentCancelled { .. } => self.counts.cancelled += 1,
            Event::SlaBreached { sla, .. } => match sla {
                Sla::FirstAccept => self.breaches.first_accept += 1,
                Sla::CommunityOnScene => self.breaches.community_on_scene += 1,
                Sla::AmbulanceOnScene => self.breaches.ambulance_on_scene += 1,
                Sla::JobAccept => self.breaches.job_accept += 1,
                Sla::JobOnScene => self.breaches.job_on_scene += 1,
            },
            Event::TimeBankCredited {
                responder_id,
                minutes,
                ..
            } => {
                self.time_bank.credits += 1;
                self.time_bank.minutes += u64::from(*minutes);
                self.credited.insert(responder_id.clone());
            }
            Event::AlertJoined { .. }
            | Event::NoResponderAvailable { .. }
            | Event::Escalated { .. }
            | Event::ResponderMoved { .. }
            | Event::ResponderAvailability { .. }
            | Event::CheckedIn { .. }
            // The simulator changes no roster and redeems nothing at run time.
            | Event::RosterChanged { .. }
            | Event::TimeBankRedeemed { .. }
            | Event::RoadClosed { .. }
            | Event::RoadReopened { .. }
            | Event::Unassigned { .. }
            | Event::CareVisitMissed { .. }
            | Event::CareVisitDone { .. } => {}
        }
    }

    /// The KPIs of everything observed.
    pub fn finish(mut self) -> PolicyKpis {
        let secs =
            |from: Timestamp, to: Option<Timestamp>| to.map(|t| t.ms_since(from) as f64 / 1000.0);
        let emergencies: Vec<&Track> = self.tracks.values().filter(|t| t.emergency).collect();
        let first_accept: Vec<Option<f64>> = emergencies
            .iter()
            .map(|t| secs(t.opened_at, t.first_accept))
            .collect();
        let community: Vec<Option<f64>> = emergencies
            .iter()
            .map(|t| secs(t.opened_at, t.community_on_scene))
            .collect();
        let ambulance: Vec<Option<f64>> = self
            .tracks
            .values()
            .filter(|t| t.ambulance_assigned)
            .map(|t| secs(t.opened_at, t.ambulance_on_scene))
            .collect();
        self.counts.emergencies_never_accepted = emergencies
            .iter()
            .filter(|t| t.first_accept.is_none())
            .count();

        let loads: Vec<u32> = self
            .volunteers
            .iter()
            .map(|v| self.per_volunteer.get(v).copied().unwrap_or(0))
            .collect();
        let assignments: u32 = loads.iter().sum();
        let max = loads.iter().copied().max().unwrap_or(0);
        let mean = if loads.is_empty() {
            0.0
        } else {
            f64::from(assignments) / loads.len() as f64
        };
        self.familiarity.share = (self.familiarity.community_assignments > 0).then(|| {
            self.familiarity.familiar as f64 / self.familiarity.community_assignments as f64
        });
        self.time_bank.volunteers_credited = self.credited.len();

        PolicyKpis {
            incidents: self.counts,
            first_accept_s: Distribution::new(&first_accept, FIRST_ACCEPT_TARGET_S),
            community_on_scene_s: Distribution::new(&community, COMMUNITY_ON_SCENE_TARGET_S),
            ambulance_on_scene_s: Distribution::new(&ambulance, AMBULANCE_ON_SCENE_TARGET_S),
            offers: self.offers,
            familiar_assignments: self.familiarity,
            volunteer_workload: Workload {
                volunteers: loads.len(),
                volunteers_assigned: loads.iter().filter(|&&c| c > 0).count(),
                assignments,
                max,
                mean,
                max_over_mean: (assignments > 0).then(|| f64::from(max) / mean),
                gini: gini(&loads),
            },
            sla_breaches: self.breaches,
            time_bank: self.time_bank,
        }
    }

    /// Per-incident response times in seconds for the charts: (community on scene, ambulance
    /// on scene), each only where reached.
    pub fn response_times(&self) -> (Vec<f64>, Vec<f64>) {
        let secs = |from: Timestamp, to: Timestamp| to.ms_since(from) as f64 / 1000.0;
        let community = self
            .tracks
            .values()
            .filter(|t| t.emergency)
            .filter_map(|t| t.community_on_scene.map(|a| secs(t.opened_at, a)))
            .collect();
        let ambulance = self
            .tracks
            .values()
            .filter_map(|t| t.ambulance_on_scene.map(|a| secs(t.opened_at, a)))
            .collect();
        (community, ambulance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 0.5), Some(5.0));
        assert_eq!(percentile(&v, 0.9), Some(9.0));
        assert_eq!(percentile(&v, 0.99), Some(10.0));
        assert_eq!(percentile(&[7.0], 0.5), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[1.0, f64::INFINITY], 0.9), None);
    }

    #[test]
    fn unreached_incidents_are_late_not_missing() {
        let d = Distribution::new(&[Some(20.0), None, Some(40.0), Some(10.0)], 30.0);
        assert_eq!((d.count, d.reached), (4, 3));
        assert_eq!(d.p50, Some(20.0));
        assert_eq!(d.p90, None);
        assert_eq!(d.within_target, Some(0.5));
        assert_eq!(Distribution::new(&[], 30.0).within_target, None);
    }

    #[test]
    fn gini_of_equal_and_concentrated_loads() {
        assert_eq!(gini(&[2, 2, 2, 2]), 0.0);
        assert!((gini(&[0, 0, 0, 4]) - 0.75).abs() < 1e-12);
        // 1,2,3: 2*(1+4+9)/(3*6) - 4/3 = 28/18 - 24/18 = 2/9.
        assert!((gini(&[3, 1, 2]) - 2.0 / 9.0).abs() < 1e-12);
        assert_eq!(gini(&[]), 0.0);
        assert_eq!(gini(&[0, 0]), 0.0);
    }
}
