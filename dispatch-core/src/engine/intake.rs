//! Alert intake: a new alert opens or joins an incident (plan, priority, timers), a device
//! cancels its alert.

use super::*;

impl Engine {
    pub(super) fn alert(&mut self, now: Timestamp, a: Alert) -> Result<Reply, CommandError> {
        if let Some(incident_id) = self.incidents.by_alert(&a.alert_id) {
            return Ok(Reply::AlertAccepted {
                incident_id,
                duplicate: true,
            });
        }
        self.check_device(&a.device_id)?;
        let elder = self
            .roster
            .elder(&a.elder_id)
            .ok_or_else(|| CommandError::UnknownElder(a.elder_id.clone()))?;
        let plan = Plan::of(a.kind, a.service)
            .ok_or_else(|| CommandError::Invalid("a help alert needs a service".into()))?;
        if a.scheduled_for.is_some() && plan != Plan::Service {
            return Err(CommandError::Invalid(
                "scheduled_for is only for service requests".into(),
            ));
        }
        let position = a.position.unwrap_or(elder.home);
        let off = |detail: String| CommandError::OffMap {
            lat: position.lat,
            lon: position.lon,
            detail,
        };
        let position = position.validate().map_err(|e| off(e.to_string()))?;
        self.roads.check_on_map(position).map_err(off)?;
        let care_level = elder.care_level;
        let alert_ref = AlertRef {
            alert_id: a.alert_id.clone(),
            device_id: a.device_id.clone(),
            cancelled: false,
        };

        if let Some(incident_id) = self.incidents.open_of(&a.elder_id) {
            self.incidents.join(incident_id, alert_ref);
            self.emit(
                now,
                Event::AlertJoined {
                    incident_id,
                    alert_id: a.alert_id.clone(),
                },
            );
            let inc = &self.incidents[&incident_id];
            if plan == Plan::Emergency && inc.plan != Plan::Emergency {
                self.upgrade_to_emergency(now, incident_id);
            }
            let inc = &self.incidents[&incident_id];
            if plan == Plan::Emergency
                && a.ambulance_requested
                && inc.ambulance.is_none()
                && inc.ambulance_wanted.is_none()
            {
                self.dispatch_ambulance(now, incident_id, "the alert asks for an ambulance".into());
            }
            return Ok(Reply::AlertAccepted {
                incident_id,
                duplicate: false,
            });
        }

        let incident_id = IncidentId(self.next_incident);
        self.next_incident += 1;
        let priority = plan.priority(care_level);
        let start = match (plan, a.scheduled_for) {
            (Plan::Service, Some(t)) => Some(Timestamp(
                t.0.saturating_sub(self.config.service_lead_ms as i64),
            )),
            _ => None,
        }
        .filter(|s| *s > now);
        let inc = Incident {
            id: incident_id,
            elder_id: a.elder_id.clone(),
            kind: a.kind,
            service: a.service,
            plan,
            priority,
            care_level,
            position,
            xy: self.projection.to_xy(position),
            opened_at: now,
            scheduled_for: a.scheduled_for,
            status: if start.is_some() {
                IncidentStatus::Scheduled
            } else {
                IncidentStatus::Dispatching
            },
            alerts: vec![alert_ref],
            wave: 0,
            open_offers: BTreeSet::new(),
            asked: BTreeSet::new(),
            community: Vec::new(),
            ambulance: None,
            ambulance_at: None,
            arrived: BTreeMap::new(),
            ambulance_wanted: None,
            first_accept_at: None,
            completed: BTreeSet::new(),
            timeline: Vec::new(),
            closed_at: None,
        };
        self.incidents.open(inc, a.alert_id.clone());
        let what = match (a.kind, a.service) {
            (AlertKind::Fall, _) => "fall".to_string(),
            (AlertKind::CheckInMissed, _) => "missed check-in".to_string(),
            (AlertKind::Help, Some(s)) => format!(
                "help ({})",
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            ),
            (AlertKind::Help, None) => "help".to_string(),
        };
        let plan_text = match plan {
            Plan::Emergency => "emergency",
            Plan::Service => "service request",
            Plan::WelfareVisit => "welfare visit, own grid worker first",
        };
        let mut reason = format!(
            "{what} from {} (care level {care_level}): {plan_text}, priority {priority}",
            a.elder_id
        );
        if let Some(s) = start {
            reason.push_str(&format!("; offers go out at {s}"));
        }
        self.emit(
            now,
            Event::IncidentOpened {
                incident_id,
                alert_id: a.alert_id.clone(),
                elder_id: a.elder_id.clone(),
                kind: a.kind,
                service: a.service,
                priority,
                position,
                reason,
            },
        );
        match start {
            Some(s) => self.set_timer(s, Timer::IncidentStart(incident_id)),
            None => {
                self.pending.insert(incident_id);
            }
        }
        if plan == Plan::Emergency {
            self.start_emergency_timers(now, incident_id);
            if care_level >= self.config.ambulance_min_care_level {
                self.dispatch_ambulance(now, incident_id, format!("care level {care_level}"));
            } else if a.ambulance_requested {
                self.dispatch_ambulance(now, incident_id, "the alert asks for an ambulance".into());
            }
        }
        Ok(Reply::AlertAccepted {
            incident_id,
            duplicate: false,
        })
    }

    pub(super) fn start_emergency_timers(&mut self, now: Timestamp, incident_id: IncidentId) {
        let c = &self.config;
        let timers = [
            (
                now.plus_ms(c.sla_first_accept_ms),
                Timer::SlaFirstAccept(incident_id),
            ),
            (
                now.plus_ms(c.sla_community_on_scene_ms),
                Timer::SlaCommunityOnScene(incident_id),
            ),
            (
                now.plus_ms(c.ambulance_after_no_accept_ms),
                Timer::AmbulanceIfNoAccept(incident_id),
            ),
        ];
        for (at, t) in timers {
            self.set_timer(at, t);
        }
    }

    /// An emergency alert joined a service or welfare incident: it becomes an emergency now.
    pub(super) fn upgrade_to_emergency(&mut self, now: Timestamp, incident_id: IncidentId) {
        let (care, had_community) = self
            .incidents
            .update(incident_id, |inc| {
                inc.plan = Plan::Emergency;
                inc.priority = Plan::Emergency.priority(inc.care_level);
                // The emergency's clocks start now (its SLAs are timed from the emergency alert).
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

    pub(super) fn cancel_alert(
        &mut self,
        now: Timestamp,
        alert_id: AlertId,
        device_id: crate::ids::DeviceId,
    ) -> Result<Reply, CommandError> {
        let incident_id = self
            .incidents
            .by_alert(&alert_id)
            .ok_or_else(|| CommandError::UnknownAlert(alert_id.clone()))?;
        let inc = self
            .incidents
            .get(&incident_id)
            .ok_or(CommandError::UnknownIncident(incident_id))?;
        let a = inc
            .alerts
            .iter()
            .find(|r| r.alert_id == alert_id)
            .expect("alerts map and incident agree");
        if a.device_id != device_id {
            return Err(CommandError::Invalid(format!(
                "alert {alert_id} was sent by another device"
            )));
        }
        if !inc.status.is_open() {
            return Err(CommandError::IncidentClosed(incident_id));
        }
        if a.cancelled {
            return Ok(Reply::Done);
        }
        let all_cancelled = self
            .incidents
            .update(incident_id, |inc| {
                for r in inc.alerts.iter_mut().filter(|r| r.alert_id == alert_id) {
                    r.cancelled = true;
                }
                inc.alerts.iter().all(|r| r.cancelled)
            })
            .expect("checked");
        if all_cancelled {
            self.close(
                now,
                incident_id,
                IncidentStatus::Cancelled,
                Actor::Device(device_id),
                format!("the device cancelled alert {alert_id} (\"I'm OK\")"),
            );
        }
        Ok(Reply::Done)
    }
}
