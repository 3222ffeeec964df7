//! The rules of earlier decision versions, kept so that a journal tail written by the
//! previous release (a crash, no snapshot at stop) replays exactly as it was decided, and
//! only for that: `Engine::rules` is below the current version only while journal replay
//! feeds such records (`Replayer::apply_before`). Never reached by a live engine.
//!
//! | version | what differs from today |
//! | --- | --- |
//! | 1, 2 | alert duplicates keyed on the alert id alone; one open incident per elder, which every alert joins (an emergency joining a service or welfare visit turns it into an emergency); a wave completed after a surge's joint round takes the next wave's size; an emergency never asks again who declined or let its offer expire, and never takes a responder from a service or welfare-visit offer |

use super::*;

impl Engine {
    /// Replay only: the rules the next input is decided by (see the module docs).
    pub fn set_decision_version(&mut self, version: u32) {
        if version != self.rules {
            self.forget_kept();
        }
        self.rules = version;
    }

    /// An alert by the rules of decision versions 1 and 2.
    pub(super) fn alert_v2(
        &mut self,
        now: Timestamp,
        a: Alert,
        plan: Plan,
    ) -> Result<Reply, CommandError> {
        let known = self
            .incidents
            .all()
            .values()
            .find(|i| i.alerts.iter().any(|r| r.alert_id == a.alert_id));
        if let Some(inc) = known {
            return Ok(Reply::AlertAccepted {
                incident_id: inc.id,
                duplicate: true,
                merged: false,
                problem: None,
            });
        }
        let elder = self
            .roster
            .elder(&a.elder_id)
            .ok_or_else(|| CommandError::UnknownElder(a.elder_id.clone()))?;
        let position = a.position.unwrap_or(elder.home);
        let off = |detail: String| CommandError::OffMap {
            lat: position.lat,
            lon: position.lon,
            detail,
        };
        let position = position.validate().map_err(|e| off(e.to_string()))?;
        self.roads.check_on_map(position).map_err(off)?;
        let care_level = elder.care_level;
        let Some(incident_id) = self.incidents.open_of(&a.elder_id).next() else {
            let incident_id = self.open_new(now, &a, plan, care_level, position);
            return Ok(Reply::AlertAccepted {
                incident_id,
                duplicate: false,
                merged: false,
                problem: None,
            });
        };
        self.incidents.join(
            incident_id,
            AlertRef {
                alert_id: a.alert_id.clone(),
                device_id: a.device_id.clone(),
                cancelled: false,
                kind: Some(a.kind),
                service: a.service,
                conflict: false,
            },
        );
        self.emit(
            now,
            Event::AlertJoined {
                incident_id,
                alert_id: a.alert_id.clone(),
            },
        );
        if plan == Plan::Emergency && self.incidents[&incident_id].plan != Plan::Emergency {
            self.upgrade_to_emergency_v2(now, incident_id);
        }
        self.ambulance_if_asked(now, incident_id, &a, plan);
        Ok(Reply::AlertAccepted {
            incident_id,
            duplicate: false,
            merged: true,
            problem: None,
        })
    }

    /// Versions 1 and 2: an emergency alert joined a service or welfare incident, which
    /// became an emergency.
    fn upgrade_to_emergency_v2(&mut self, now: Timestamp, incident_id: IncidentId) {
        let (care, had_community) = self
            .incidents
            .update(incident_id, |inc| {
                inc.plan = Plan::Emergency;
                inc.priority = Plan::Emergency.priority(inc.care_level);
                inc.opened_at = now;
                if inc.status == IncidentStatus::Scheduled {
                    inc.status = IncidentStatus::Dispatching;
                }
                (inc.care_level, inc.has_community())
            })
            .expect("caller checked");
        self.emit(
            now,
            Event::Escalated {
                incident_id,
                reason: "an emergency alert joined: now handled as an emergency".into(),
            },
        );
        if !had_community {
            self.start_emergency_timers(now, incident_id);
            self.pending.insert(incident_id);
        }
        if care >= self.config.ambulance_min_care_level {
            self.dispatch_ambulance(now, incident_id, format!("care level {care}"));
        }
    }
}
