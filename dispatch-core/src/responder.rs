//! The responder state machine and a responder's live state (position, fairness counters).
//!
//! | from        | event                                  | to          |
//! |-------------|----------------------------------------|-------------|
//! | off_duty    | availability = available               | available   |
//! | available   | availability = off_duty                | off_duty    |
//! | available   | offer sent                             | offered     |
//! | offered     | decline / expiry / withdrawal          | available   |
//! | offered     | availability = off_duty (offer withdrawn) | off_duty |
//! | offered     | accept                                 | en_route    |
//! | available   | direct assignment (ambulance, operator)| en_route    |
//! | en_route    | arrived                                | on_scene    |
//! | en_route, on_scene | complete, or incident closed    | resting (volunteer after an emergency) or available |
//! | resting     | rest over                              | available   |
//! | resting     | availability = off_duty                | off_duty    |
//!
//! Anything else is refused. Only `available` responders are in the R-tree, so a responder
//! with an open offer or an incident is never offered another: never two incidents at once.

use crate::geo::LatLon;
use crate::ids::{IncidentId, OfferId};
use crate::roster::ResponderRecord;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Where a responder is in their day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ResponderStatus {
    OffDuty,
    Available,
    /// Holding one open offer.
    Offered {
        offer_id: OfferId,
        incident_id: IncidentId,
    },
    /// Assigned and travelling.
    EnRoute {
        incident_id: IncidentId,
    },
    OnScene {
        incident_id: IncidentId,
    },
    /// Resting after an emergency until `until`.
    Resting {
        until: Timestamp,
    },
}

impl ResponderStatus {
    /// The state's name, for errors and views.
    pub fn name(&self) -> &'static str {
        match self {
            ResponderStatus::OffDuty => "off_duty",
            ResponderStatus::Available => "available",
            ResponderStatus::Offered { .. } => "offered",
            ResponderStatus::EnRoute { .. } => "en_route",
            ResponderStatus::OnScene { .. } => "on_scene",
            ResponderStatus::Resting { .. } => "resting",
        }
    }

    /// The incident this responder is committed to (assigned or on scene).
    pub fn incident(&self) -> Option<IncidentId> {
        match self {
            ResponderStatus::EnRoute { incident_id } | ResponderStatus::OnScene { incident_id } => {
                Some(*incident_id)
            }
            _ => None,
        }
    }

    /// Whether the state machine allows `self → to` (the table above).
    pub fn can_become(&self, to: &ResponderStatus) -> bool {
        use ResponderStatus::*;
        matches!(
            (self, to),
            (OffDuty, Available)
                | (Available, OffDuty)
                | (Available, Offered { .. })
                | (Offered { .. }, Available)
                | (Offered { .. }, OffDuty)
                | (Offered { .. }, EnRoute { .. })
                | (Available, EnRoute { .. })
                | (EnRoute { .. }, OnScene { .. })
                | (EnRoute { .. }, Available)
                | (EnRoute { .. }, Resting { .. })
                | (OnScene { .. }, Available)
                | (OnScene { .. }, Resting { .. })
                | (Resting { .. }, Available)
                | (Resting { .. }, OffDuty)
        )
    }
}

/// One responder's live state. Serialized whole in `EngineState`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponderState {
    pub record: ResponderRecord,
    pub status: ResponderStatus,
    /// Last known position (home until the phone reports one).
    pub position: LatLon,
    /// The same position in projected metres.
    pub xy: [f64; 2],
    /// When `position` was last confirmed (a location update or going available).
    pub position_at: Option<Timestamp>,
    /// Where the R-tree holds this responder (only while available).
    pub anchor: Option<[f64; 2]>,
    /// (UTC day number, assignments that day), for the volunteer daily cap.
    pub day_assignments: (i64, u32),
    /// Retired responders keep their slot (ids stay stable) but can do nothing.
    pub retired: bool,
    /// The live phone session the server reported (`Command::Presence`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
    /// Since when the responder's phone has been gone. `None` while a session is live, and
    /// for a responder the server never reported on (the simulator, old journals): reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_since: Option<Timestamp>,
    /// How this responder has answered emergency offers, and how many they were sent today
    /// (absent in snapshots before decision version 6: no history yet).
    #[serde(default, skip_serializing_if = "Answers::is_empty")]
    pub answers: Answers,
}

/// A responder's answers to emergency offers: the history waves are sized from (decision
/// version 6, issue 17), and the offers sent today, for the fairness cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Answers {
    /// Offers answered or left to expire (withdrawn ones are not counted: nobody was asked
    /// to the end), the recent past weighing more: both counts halve at [`Answers::MEMORY`].
    pub settled: u32,
    /// … of which accepted.
    pub accepted: u32,
    /// (UTC day number, emergency offers sent that day).
    pub day_offers: (i64, u32),
}

impl Answers {
    /// Past this many settled offers both counts halve, so a volunteer's estimate follows a
    /// change in their habits instead of averaging over years.
    pub const MEMORY: u32 = 40;

    pub fn is_empty(&self) -> bool {
        *self == Answers::default()
    }

    /// Records one settled offer. Returns the change to the engine-wide totals (settled,
    /// accepted), which a halving makes negative.
    pub fn record(&mut self, accepted: bool) -> (i64, i64) {
        let before = (i64::from(self.settled), i64::from(self.accepted));
        self.settled += 1;
        self.accepted += u32::from(accepted);
        if self.settled >= Self::MEMORY {
            self.settled /= 2;
            self.accepted /= 2;
        }
        (
            i64::from(self.settled) - before.0,
            i64::from(self.accepted) - before.1,
        )
    }

    /// The chance this responder accepts an emergency offer before it expires: their own
    /// record shrunk towards `prior` (the engine-wide rate) with the weight of `weight`
    /// offers, so that a newcomer is predicted as the average responder and a long record
    /// speaks for itself.
    pub fn predicted(&self, prior: f64, weight: f64) -> f64 {
        (f64::from(self.accepted) + weight * prior) / (f64::from(self.settled) + weight)
    }

    /// Emergency offers sent on the day of `now`.
    pub fn offers_on(&self, now: Timestamp) -> u32 {
        on_day(self.day_offers, now)
    }

    /// Counts one more emergency offer on the day of `now`.
    pub fn count_offer(&mut self, now: Timestamp) {
        count_on_day(&mut self.day_offers, now);
    }
}

/// A (UTC day number, count) pair's count on the day of `now` (0 on another day).
fn on_day((day, n): (i64, u32), now: Timestamp) -> u32 {
    if day == now.0.div_euclid(DAY_MS) {
        n
    } else {
        0
    }
}

/// Counts one more on the day of `now`, starting again on a new day.
fn count_on_day(c: &mut (i64, u32), now: Timestamp) {
    let day = now.0.div_euclid(DAY_MS);
    if c.0 == day {
        c.1 += 1;
    } else {
        *c = (day, 1);
    }
}

/// Milliseconds in a day, for the daily cap's day number.
pub const DAY_MS: i64 = 86_400_000;

impl ResponderState {
    /// Whether a job offered now would reach the phone: a live session, or gone less than
    /// `grace_ms` (a reconnect in progress).
    pub fn reachable(&self, now: Timestamp, grace_ms: u64) -> bool {
        self.offline_since
            .is_none_or(|t| now.ms_since(t) < grace_ms)
    }

    pub fn new(record: ResponderRecord, xy: [f64; 2]) -> ResponderState {
        ResponderState {
            position: record.home,
            record,
            status: ResponderStatus::OffDuty,
            xy,
            position_at: None,
            anchor: None,
            day_assignments: (i64::MIN, 0),
            retired: false,
            session: None,
            offline_since: None,
            answers: Answers::default(),
        }
    }

    /// Assignments already taken on the day of `now`.
    pub fn assignments_on(&self, now: Timestamp) -> u32 {
        on_day(self.day_assignments, now)
    }

    /// Counts one more assignment on the day of `now`.
    pub fn count_assignment(&mut self, now: Timestamp) {
        count_on_day(&mut self.day_assignments, now);
    }

    /// Whether the position is fresh enough to offer on.
    pub fn position_fresh(&self, now: Timestamp, stale_ms: u64) -> bool {
        self.position_at
            .is_some_and(|t| now.ms_since(t) <= stale_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResponderStatus::*;

    proptest::proptest! {
        /// Whatever the answers, the totals the engine keeps from `record`'s deltas equal
        /// the counts held, the counts stay under `MEMORY`, and the prediction lies between
        /// the prior and the responder's own rate.
        #[test]
        fn answers_keep_their_totals_and_shrink_towards_the_prior(
            accepts in proptest::collection::vec(proptest::bool::ANY, 0..200),
            prior in 0.05f64..0.95,
            weight in 0.5f64..100.0,
        ) {
            let mut a = Answers::default();
            let (mut settled, mut accepted) = (0i64, 0i64);
            for yes in accepts {
                let (ds, da) = a.record(yes);
                settled += ds;
                accepted += da;
                proptest::prop_assert!(a.settled < Answers::MEMORY && a.accepted <= a.settled);
            }
            proptest::prop_assert_eq!((settled, accepted), (i64::from(a.settled), i64::from(a.accepted)));
            let p = a.predicted(prior, weight);
            let own = if a.settled == 0 { prior } else { f64::from(a.accepted) / f64::from(a.settled) };
            proptest::prop_assert!(p >= own.min(prior) - 1e-12 && p <= own.max(prior) + 1e-12, "{p} {own} {prior}");
        }
    }

    #[test]
    fn offers_are_counted_per_utc_day() {
        let mut a = Answers::default();
        let noon = Timestamp(DAY_MS * 100 + DAY_MS / 2);
        a.count_offer(noon);
        a.count_offer(noon.plus_ms(1));
        assert_eq!(a.offers_on(noon), 2);
        assert_eq!(a.offers_on(Timestamp(DAY_MS * 101)), 0, "a new day");
        a.count_offer(Timestamp(DAY_MS * 101));
        assert_eq!(a.offers_on(Timestamp(DAY_MS * 101)), 1);
    }

    #[test]
    fn transition_table_is_exactly_the_documented_one() {
        let i = IncidentId(1);
        let all = [
            OffDuty,
            Available,
            Offered {
                offer_id: OfferId(1),
                incident_id: i,
            },
            EnRoute { incident_id: i },
            OnScene { incident_id: i },
            Resting {
                until: Timestamp(0),
            },
        ];
        let legal: usize = all
            .iter()
            .map(|a| all.iter().filter(|b| a.can_become(b)).count())
            .sum();
        assert_eq!(legal, 14);
        assert!(!OffDuty.can_become(&Offered {
            offer_id: OfferId(1),
            incident_id: i
        }));
        assert!(!EnRoute { incident_id: i }.can_become(&OffDuty));
        assert!(!OnScene { incident_id: i }.can_become(&EnRoute { incident_id: i }));
        assert!(!Resting {
            until: Timestamp(0)
        }
        .can_become(&EnRoute { incident_id: i }));
    }

    #[test]
    fn daily_cap_counts_per_utc_day() {
        let rec: ResponderRecord = serde_json::from_str(
            r#"{"id":"V1","kind":"volunteer","travel_mode":"foot","home":{"lat":0,"lon":0}}"#,
        )
        .unwrap();
        let mut s = ResponderState::new(rec, [0.0, 0.0]);
        s.count_assignment(Timestamp(DAY_MS - 1));
        s.count_assignment(Timestamp(DAY_MS - 2));
        assert_eq!(s.assignments_on(Timestamp(DAY_MS - 1)), 2);
        assert_eq!(s.assignments_on(Timestamp(DAY_MS)), 0);
        s.count_assignment(Timestamp(DAY_MS));
        assert_eq!(s.assignments_on(Timestamp(DAY_MS + 5)), 1);
    }
}
