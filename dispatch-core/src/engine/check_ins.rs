//! Daily check-ins the engine expects (issue 12, gap 9; decision version 4 on). An elder whose
//! record has `check_in_by` ("HH:MM", the deployment's local time, `utc_offset_s`) and who has
//! not checked in since local midnight by then gets a welfare visit, opened as a device's
//! `check_in_missed` alert would open it (so it joins an open welfare visit or emergency
//! instead of opening a second one), with [`CHECK_IN_DEVICE`] as the sender. A late check-in
//! calls the visit off, as it does for a device's alert (`Command::CheckIn`). One timer per
//! elder (`Timer::CheckInDue`), re-armed for the next day each time it fires.

use super::*;
use crate::care_plan::{parse_hhmm, DAY_MS};

/// The device id of the engine's own `check_in_missed` alerts (no roster device has it: ids
/// there are checked to be plain).
pub const CHECK_IN_DEVICE: &str = "(check-in schedule)";

impl Engine {
    /// The first instant after `now` at `minutes` past local midnight.
    fn next_check_in_due(&self, now: Timestamp, minutes: i64) -> Timestamp {
        let off = i64::from(self.config.utc_offset_s) * 1000;
        let day = (now.0 + off).div_euclid(DAY_MS);
        let mut due = day * DAY_MS + minutes * 60_000 - off;
        if due <= now.0 {
            due += DAY_MS;
        }
        Timestamp(due)
    }

    /// Arms `elder_id`'s check-in timer from their record, or stops it (no schedule, or the
    /// elder left: then their last check-in is forgotten too).
    pub(super) fn check_in_sync_elder(&mut self, now: Timestamp, elder_id: &ElderId) {
        if self.roster.elder(elder_id).is_none() {
            self.check_ins.remove(elder_id);
        }
        let minutes = self
            .roster
            .elder(elder_id)
            .and_then(|e| e.check_in_by.as_deref())
            .and_then(|s| parse_hhmm(s, false));
        let timer = Timer::CheckInDue(elder_id.clone());
        match minutes {
            Some(m) if self.rules >= crate::journal::ROSTER_EVENTS_SINCE => {
                let at = self.next_check_in_due(now, m);
                self.set_timer(at, timer);
            }
            _ => self.stop_timer(timer),
        }
    }

    /// The check-in of `elder_id` was due at `at`: without one since that day's local
    /// midnight, the welfare visit opens. Then the timer is armed for the next day.
    pub(super) fn check_in_due(&mut self, now: Timestamp, at: Timestamp, elder_id: ElderId) {
        if self.rules < crate::journal::ROSTER_EVENTS_SINCE {
            return;
        }
        let Some(by) = self
            .roster
            .elder(&elder_id)
            .and_then(|e| e.check_in_by.clone())
        else {
            return;
        };
        let off = i64::from(self.config.utc_offset_s) * 1000;
        let midnight = Timestamp((at.0 + off).div_euclid(DAY_MS) * DAY_MS - off);
        let checked_in = self
            .check_ins
            .get(&elder_id)
            .is_some_and(|t| *t >= midnight);
        if !checked_in {
            let alert = Alert {
                alert_id: AlertId::from(format!("check-in-by-{by}:{}", at.0)),
                kind: AlertKind::CheckInMissed,
                service: None,
                elder_id: elder_id.clone(),
                position: None,
                detected_at: at,
                ambulance_requested: false,
                scheduled_for: None,
                device_id: crate::ids::DeviceId::from(CHECK_IN_DEVICE),
            };
            // Cannot be refused: its sender is the engine and its shape is fixed.
            let _ = self.alert_from_known(now, alert);
        }
        self.check_in_sync_elder(now, &elder_id);
    }
}
