//! The time bank: minutes volunteers gave, credited from arrival to completion.

use crate::ids::{IncidentId, ResponderId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeBankEntry {
    pub incident_id: IncidentId,
    pub arrived_at: Timestamp,
    pub completed_at: Timestamp,
    pub minutes: u32,
}

/// A volunteer's account as the care managers see it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeBankView {
    pub responder_id: Option<ResponderId>,
    pub balance_minutes: u64,
    pub history: Vec<TimeBankEntry>,
}

/// All accounts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeBank {
    accounts: BTreeMap<ResponderId, TimeBankView>,
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
        let acct = self.accounts.entry(responder.clone()).or_default();
        acct.responder_id = Some(responder.clone());
        acct.balance_minutes += u64::from(minutes);
        acct.history.push(TimeBankEntry {
            incident_id,
            arrived_at,
            completed_at,
            minutes,
        });
        minutes
    }

    /// A volunteer's account, if they ever earned a credit.
    pub fn account(&self, responder: &ResponderId) -> Option<&TimeBankView> {
        self.accounts.get(responder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
