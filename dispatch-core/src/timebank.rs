//! The time bank: a ledger per volunteer. Credits are the minutes they gave, from arrival to
//! completion of a job; redemptions are minutes they spend (a service for themselves or a
//! relative), recorded by a care manager. Each entry carries the balance after it.
//!
//! The balance is never negative unless a redemption was recorded with an explicit override,
//! which the entry keeps (`override_negative: true`) and the server logs.

use crate::ids::{IncidentId, OperatorId, ResponderId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most minutes one redemption may spend (about 69 days).
pub const MAX_REDEMPTION_MINUTES: u32 = 100_000;
/// The longest note of a redemption, in bytes of UTF-8.
pub const MAX_NOTE_BYTES: usize = 200;

/// One credit (a completed job), as the statement's `history` has always shown it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeBankEntry {
    pub incident_id: IncidentId,
    pub arrived_at: Timestamp,
    pub completed_at: Timestamp,
    pub minutes: u32,
}

/// One line of a volunteer's statement, with the balance after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedgerEntry {
    Credit {
        incident_id: IncidentId,
        arrived_at: Timestamp,
        completed_at: Timestamp,
        minutes: u32,
        balance_minutes: i64,
    },
    Redemption {
        at: Timestamp,
        minutes: u32,
        note: String,
        /// The care manager who recorded it.
        by: OperatorId,
        /// The redemption took the balance below zero, which only an explicit override allows.
        override_negative: bool,
        balance_minutes: i64,
    },
}

impl LedgerEntry {
    pub fn balance_minutes(&self) -> i64 {
        match self {
            LedgerEntry::Credit {
                balance_minutes, ..
            }
            | LedgerEntry::Redemption {
                balance_minutes, ..
            } => *balance_minutes,
        }
    }
}

/// A volunteer's statement as the care managers (and the volunteer) see it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeBankView {
    pub responder_id: Option<ResponderId>,
    pub balance_minutes: i64,
    /// The credits alone, oldest first (the responder app lists these as jobs).
    pub history: Vec<TimeBankEntry>,
    /// Every entry, credits and redemptions, in the order they were recorded, each with the
    /// running balance.
    pub entries: Vec<LedgerEntry>,
}

/// One volunteer's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "AccountRepr")]
struct Account {
    balance_minutes: i64,
    entries: Vec<LedgerEntry>,
}

/// An account as snapshots hold it: `entries` from this release on; before it, the credits
/// alone as `history` (converted, so that an older snapshot restores).
#[derive(Deserialize)]
struct AccountRepr {
    #[serde(default)]
    balance_minutes: i64,
    #[serde(default)]
    entries: Vec<LedgerEntry>,
    #[serde(default)]
    history: Vec<TimeBankEntry>,
}

impl From<AccountRepr> for Account {
    fn from(r: AccountRepr) -> Account {
        if !r.entries.is_empty() || r.history.is_empty() {
            return Account {
                balance_minutes: r.balance_minutes,
                entries: r.entries,
            };
        }
        let mut acct = Account::default();
        for c in r.history {
            acct.push_credit(c);
        }
        acct
    }
}

impl Account {
    fn push_credit(&mut self, c: TimeBankEntry) {
        self.balance_minutes += i64::from(c.minutes);
        self.entries.push(LedgerEntry::Credit {
            incident_id: c.incident_id,
            arrived_at: c.arrived_at,
            completed_at: c.completed_at,
            minutes: c.minutes,
            balance_minutes: self.balance_minutes,
        });
    }

    fn view(&self, responder: &ResponderId) -> TimeBankView {
        TimeBankView {
            responder_id: Some(responder.clone()),
            balance_minutes: self.balance_minutes,
            history: self
                .entries
                .iter()
                .filter_map(|e| match e {
                    LedgerEntry::Credit {
                        incident_id,
                        arrived_at,
                        completed_at,
                        minutes,
                        ..
                    } => Some(TimeBankEntry {
                        incident_id: *incident_id,
                        arrived_at: *arrived_at,
                        completed_at: *completed_at,
                        minutes: *minutes,
                    }),
                    LedgerEntry::Redemption { .. } => None,
                })
                .collect(),
            entries: self.entries.clone(),
        }
    }
}

/// All accounts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeBank {
    accounts: BTreeMap<ResponderId, Account>,
}

/// What a care manager asks to spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedemptionRequest {
    pub minutes: u32,
    pub note: String,
    pub by: OperatorId,
    /// Allow the balance to go below zero.
    pub override_negative: bool,
}

/// Why a redemption was refused (nothing was recorded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedeemError {
    /// A field out of bounds; the message names it.
    #[error("{0}")]
    BadField(String),
    #[error(
        "the balance is {balance_minutes} minutes: redeeming {minutes} would make it negative \
         (set override_negative to allow it)"
    )]
    Insufficient { balance_minutes: i64, minutes: u32 },
}

/// Checks a redemption's fields: `minutes` in `1..=MAX_REDEMPTION_MINUTES`, `note` at most
/// [`MAX_NOTE_BYTES`]. The message names the field (the server answers it before asking the
/// engine, which checks again).
pub fn check_redemption(minutes: u32, note: &str) -> Result<(), String> {
    if !(1..=MAX_REDEMPTION_MINUTES).contains(&minutes) {
        return Err(format!(
            "minutes: {minutes} is not in 1..={MAX_REDEMPTION_MINUTES}"
        ));
    }
    if note.len() > MAX_NOTE_BYTES {
        return Err(format!(
            "note: {} bytes, at most {MAX_NOTE_BYTES}",
            note.len()
        ));
    }
    Ok(())
}

/// Minutes credited for a stay from `arrived` to `completed`: rounded up, so that any service
/// counts for at least a minute.
pub fn credited_minutes(arrived: Timestamp, completed: Timestamp) -> u32 {
    let ms = completed.ms_since(arrived);
    u32::try_from(ms.div_ceil(60_000)).unwrap_or(u32::MAX)
}

impl TimeBank {
    /// Credits a completed assignment and returns the minutes credited.
    pub fn credit(
        &mut self,
        responder: &ResponderId,
        incident_id: IncidentId,
        arrived_at: Timestamp,
        completed_at: Timestamp,
    ) -> u32 {
        let minutes = credited_minutes(arrived_at, completed_at);
        self.accounts
            .entry(responder.clone())
            .or_default()
            .push_credit(TimeBankEntry {
                incident_id,
                arrived_at,
                completed_at,
                minutes,
            });
        minutes
    }

    /// Records a redemption at `at` and returns its entry; refused (nothing changes) for a
    /// field out of bounds, or when the balance would go below zero without the override.
    pub fn redeem(
        &mut self,
        responder: &ResponderId,
        at: Timestamp,
        req: RedemptionRequest,
    ) -> Result<LedgerEntry, RedeemError> {
        check_redemption(req.minutes, &req.note).map_err(RedeemError::BadField)?;
        let balance = self.balance_minutes(responder);
        let after = balance - i64::from(req.minutes);
        if after < 0 && !req.override_negative {
            return Err(RedeemError::Insufficient {
                balance_minutes: balance,
                minutes: req.minutes,
            });
        }
        let entry = LedgerEntry::Redemption {
            at,
            minutes: req.minutes,
            note: req.note,
            by: req.by,
            override_negative: after < 0,
            balance_minutes: after,
        };
        let acct = self.accounts.entry(responder.clone()).or_default();
        acct.balance_minutes = after;
        acct.entries.push(entry.clone());
        Ok(entry)
    }

    /// The balance now (0 for a volunteer with no entry yet).
    pub fn balance_minutes(&self, responder: &ResponderId) -> i64 {
        self.accounts
            .get(responder)
            .map_or(0, |a| a.balance_minutes)
    }

    /// A volunteer's statement, if they have any entry.
    pub fn account(&self, responder: &ResponderId) -> Option<TimeBankView> {
        self.accounts.get(responder).map(|a| a.view(responder))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spend(minutes: u32, override_negative: bool) -> RedemptionRequest {
        RedemptionRequest {
            minutes,
            note: "cleaning for her mother".into(),
            by: OperatorId::from("CM1"),
            override_negative,
        }
    }

    #[test]
    fn credits_accumulate_with_history() {
        let mut tb = TimeBank::default();
        let v = ResponderId::from("V1");
        assert_eq!(
            tb.credit(&v, IncidentId(1), Timestamp(0), Timestamp(90_000)),
            2
        );
        assert_eq!(tb.credit(&v, IncidentId(2), Timestamp(0), Timestamp(1)), 1);
        assert_eq!(tb.credit(&v, IncidentId(3), Timestamp(0), Timestamp(0)), 0);
        let a = tb.account(&v).unwrap();
        assert_eq!(a.balance_minutes, 3);
        assert_eq!(a.history.len(), 3);
        assert!(tb.account(&ResponderId::from("V2")).is_none());
    }

    #[test]
    fn a_redemption_lowers_the_balance_and_the_ledger_runs_in_order() {
        let mut tb = TimeBank::default();
        let v = ResponderId::from("V1");
        tb.credit(&v, IncidentId(1), Timestamp(0), Timestamp(60 * 60_000));
        let e = tb.redeem(&v, Timestamp(5), spend(45, false)).unwrap();
        assert_eq!(e.balance_minutes(), 15);
        tb.credit(&v, IncidentId(2), Timestamp(0), Timestamp(10 * 60_000));
        let a = tb.account(&v).unwrap();
        assert_eq!(a.balance_minutes, 25);
        let running: Vec<i64> = a.entries.iter().map(LedgerEntry::balance_minutes).collect();
        assert_eq!(running, [60, 15, 25]);
        // `history` keeps only the credits (the responder app lists them as jobs).
        assert_eq!(a.history.len(), 2);
        let json = serde_json::to_value(&a.entries[1]).unwrap();
        assert_eq!(json["kind"], "redemption");
        assert_eq!(json["by"], "CM1");
        assert_eq!(json["override_negative"], false);
        assert_eq!(
            serde_json::to_value(&a.entries[0]).unwrap()["kind"],
            "credit"
        );
    }

    #[test]
    fn the_balance_goes_negative_only_with_the_override_which_is_recorded() {
        let mut tb = TimeBank::default();
        let v = ResponderId::from("V1");
        tb.credit(&v, IncidentId(1), Timestamp(0), Timestamp(30 * 60_000));
        let before = tb.clone();
        assert_eq!(
            tb.redeem(&v, Timestamp(1), spend(31, false)),
            Err(RedeemError::Insufficient {
                balance_minutes: 30,
                minutes: 31
            })
        );
        assert_eq!(tb, before, "a refused redemption changes nothing");
        // Spending exactly the balance needs no override.
        let mut exact = tb.clone();
        let e = exact.redeem(&v, Timestamp(1), spend(30, false)).unwrap();
        assert_eq!(e.balance_minutes(), 0);
        let e = tb.redeem(&v, Timestamp(1), spend(31, true)).unwrap();
        assert!(matches!(
            e,
            LedgerEntry::Redemption {
                override_negative: true,
                balance_minutes: -1,
                ..
            }
        ));
        // Asked for but not needed: not recorded as an override.
        tb.credit(&v, IncidentId(2), Timestamp(0), Timestamp(10 * 60_000));
        let e = tb.redeem(&v, Timestamp(2), spend(5, true)).unwrap();
        assert!(matches!(
            e,
            LedgerEntry::Redemption {
                override_negative: false,
                balance_minutes: 4,
                ..
            }
        ));
        // A volunteer with no entry at all has a balance of 0.
        let w = ResponderId::from("V2");
        assert!(tb.redeem(&w, Timestamp(3), spend(1, false)).is_err());
        assert!(tb.account(&w).is_none());
    }

    #[test]
    fn bounds_are_checked_naming_the_field_and_change_nothing() {
        let mut tb = TimeBank::default();
        let v = ResponderId::from("V1");
        tb.credit(&v, IncidentId(1), Timestamp(0), Timestamp(10 * 60_000));
        let before = tb.clone();
        let long = "x".repeat(MAX_NOTE_BYTES + 1);
        for (minutes, note, field) in [
            (0, "", "minutes"),
            (MAX_REDEMPTION_MINUTES + 1, "", "minutes"),
            (1, long.as_str(), "note"),
        ] {
            let req = RedemptionRequest {
                note: note.into(),
                ..spend(minutes, true)
            };
            match tb.redeem(&v, Timestamp(1), req) {
                Err(RedeemError::BadField(m)) => assert!(m.starts_with(field), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(tb, before);
        // The bounds themselves are allowed.
        let edge = RedemptionRequest {
            note: "é".repeat(MAX_NOTE_BYTES / 2),
            ..spend(MAX_REDEMPTION_MINUTES, true)
        };
        assert!(tb.redeem(&v, Timestamp(1), edge).is_ok());
    }

    #[test]
    fn a_snapshot_from_before_the_ledger_restores_its_credits() {
        // The account as the previous release saved it: credits alone, as `history`.
        let old = serde_json::json!({"accounts": {"V1": {
            "responder_id": "V1", "balance_minutes": 7,
            "history": [
                {"incident_id": 1, "arrived_at": 0, "completed_at": 240000, "minutes": 4},
                {"incident_id": 2, "arrived_at": 0, "completed_at": 180000, "minutes": 3}
            ]
        }}});
        let tb: TimeBank = serde_json::from_value(old).unwrap();
        let v = ResponderId::from("V1");
        let a = tb.account(&v).unwrap();
        assert_eq!(a.balance_minutes, 7);
        let running: Vec<i64> = a.entries.iter().map(LedgerEntry::balance_minutes).collect();
        assert_eq!(running, [4, 7]);
        // And this release's form round-trips.
        let again: TimeBank = serde_json::from_value(serde_json::to_value(&tb).unwrap()).unwrap();
        assert_eq!(again, tb);
    }
}
