//! Alert intake: a new alert opens an incident (plan, priority, timers), joins an open one of
//! the same need, or, when the engine cannot dispatch it (unknown elder, off the map, an
//! alert key resent with other content), is kept as an incident for the operators; a device
//! cancels its alert. An alert's key is (device, alert id); a resend is a duplicate only with
//! the same elder, kind and service (a new position or ambulance flag does not make it new).

use super::*;
use crate::incident::Undispatchable;

impl Engine {
    pub(super) fn alert(&mut self, now: Timestamp, a: Alert) -> Result<Reply, CommandError> {
        // Checks that refuse outright (nothing kept): the sender and the alert's own shape.
        self.check_device(&a.device_id)?;
        self.alert_from_known(now, a)
    }

    /// An alert whose sender is known: a roster device, or the engine's own check-in
    /// schedule (`check_ins.rs`).
    pub(super) fn alert_from_known(
        &mut self,
        now: Timestamp,
        a: Alert,
    ) -> Result<Reply, CommandError> {
        let plan = Plan::of(a.kind, a.service).ok_or_else(|| {
            CommandError::Invalid(if a.kind == AlertKind::CarePlan {
                "care_plan jobs are opened by the engine from care plans, not sent".into()
            } else {
                "a help alert needs a service".into()
            })
        })?;
        if a.scheduled_for.is_some() && plan != Plan::Service {
            return Err(CommandError::Invalid(
                "scheduled_for is only for service requests".into(),
            ));
        }
        if self.rules < 3 {
            return self.alert_v2(now, a, plan);
        }
        let key = (a.device_id.clone(), a.alert_id.clone());
        if let Some(incident_id) = self.incidents.by_alert(&key) {
            let inc = &self.incidents[&incident_id];
            let first = inc
                .alerts
                .iter()
                .find(|r| r.device_id == a.device_id && r.alert_id == a.alert_id)
                .expect("alert keys and incidents agree");
            let (kind, service) = match first.kind {
                Some(k) => (k, first.service),
                None => (inc.kind, inc.service),
            };
            if inc.elder_id == a.elder_id && kind == a.kind && service == a.service {
                return Ok(Reply::AlertAccepted {
                    incident_id,
                    duplicate: true,
                    merged: false,
                    problem: inc.needs_operator.clone(),
                });
            }
            // The same key with different content: a gateway bug, or a real second alert
            // under a reused id. Neither is dropped: an operator sees it (once: a resend of
            // the conflicting alert is a duplicate of its own incident).
            let same_conflict = self.incidents.all().values().find(|i| {
                i.elder_id == a.elder_id
                    && i.alerts.iter().any(|r| {
                        r.conflict
                            && r.device_id == a.device_id
                            && r.alert_id == a.alert_id
                            && r.kind == Some(a.kind)
                            && r.service == a.service
                    })
            });
            if let Some(i) = same_conflict {
                return Ok(Reply::AlertAccepted {
                    incident_id: i.id,
                    duplicate: true,
                    merged: false,
                    problem: i.needs_operator.clone(),
                });
            }
            let was = format!("{} for {}", what_of(kind, service), inc.elder_id);
            let now_is = format!("{} for {}", what_of(a.kind, a.service), a.elder_id);
            let problem = NeedsOperator {
                code: Undispatchable::AlertConflict,
                message: format!(
                    "alert {} from {} was already received as {was} (incident {incident_id}); \
                     this resend asks for {now_is}",
                    a.alert_id, a.device_id
                ),
            };
            return Ok(self.open_for_operator(now, a, plan, problem));
        }
        let Some(elder) = self.roster.elder(&a.elder_id) else {
            let problem = NeedsOperator {
                code: Undispatchable::UnknownElder,
                message: format!("unknown elder {}", a.elder_id),
            };
            return Ok(self.open_for_operator(now, a, plan, problem));
        };
        let position = a.position.unwrap_or(elder.home);
        let checked = position
            .validate()
            .map_err(|e| e.to_string())
            .and_then(|p| self.roads.check_on_map(p).map(|()| p));
        let position = match checked {
            Ok(p) => p,
            Err(detail) => {
                let problem = NeedsOperator {
                    code: Undispatchable::OffMap,
                    message: format!(
                        "position {},{} is off the map: {detail}",
                        position.lat, position.lon
                    ),
                };
                return Ok(self.open_for_operator(now, a, plan, problem));
            }
        };
        let care_level = elder.care_level;
        let alert_ref = AlertRef {
            alert_id: a.alert_id.clone(),
            device_id: a.device_id.clone(),
            cancelled: false,
            kind: Some(a.kind),
            service: a.service,
            conflict: false,
        };

        // A repeat of a need already open joins it; a different need is a different job.
        let joined = self.incidents.open_of(&a.elder_id).find(|i| {
            !self.care.holds(*i) && self.incidents[i].same_need(plan, a.service, a.scheduled_for)
        });
        if let Some(incident_id) = joined {
            self.incidents.join(incident_id, alert_ref);
            self.emit(
                now,
                Event::AlertJoined {
                    incident_id,
                    alert_id: a.alert_id.clone(),
                },
            );
            self.ambulance_if_asked(now, incident_id, &a, plan);
            return Ok(Reply::AlertAccepted {
                incident_id,
                duplicate: false,
                merged: true,
                problem: None,
            });
        }

        let incident_id = self.open_new(now, &a, plan, care_level, position);
        if plan == Plan::Emergency {
            self.call_off_welfare_visits(now, &a.elder_id, incident_id);
        }
        Ok(Reply::AlertAccepted {
            incident_id,
            duplicate: false,
            merged: false,
            problem: None,
        })
    }

    /// Opens a new incident for a checked alert: its plan, priority, timers, first wave (or
    /// its start time) and, for emergencies, the ambulance rules.
    pub(super) fn open_new(
        &mut self,
        now: Timestamp,
        a: &Alert,
        plan: Plan,
        care_level: u8,
        position: LatLon,
    ) -> IncidentId {
        let priority = plan.priority(care_level);
        let start = match (plan, a.scheduled_for) {
            (Plan::Service, Some(t)) => Some(Timestamp(
                t.0.saturating_sub(self.config.service_lead_ms as i64),
            )),
            _ => None,
        }
        .filter(|s| *s > now);
        let plan_text = match plan {
            Plan::Emergency => "emergency",
            Plan::Service => "service request",
            Plan::WelfareVisit => "welfare visit, own grid worker first",
        };
        let mut reason = format!(
            "{} from {} (care level {care_level}): {plan_text}, priority {priority}",
            what_of(a.kind, a.service),
            a.elder_id
        );
        if let Some(s) = start {
            reason.push_str(&format!("; offers go out at {s}"));
        }
        let incident_id = self.mint_incident(
            now,
            a,
            (plan, priority, care_level),
            position,
            start.is_some(),
            reason,
            None,
        );
        match start {
            Some(s) => self.set_timer(s, Timer::IncidentStart(incident_id)),
            None => {
                self.pending.insert(incident_id);
                self.start_job_timers(now, incident_id);
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
        incident_id
    }

    /// An emergency alert that joined an incident and asks for an ambulance gets one, unless
    /// one is there or already wanted.
    pub(super) fn ambulance_if_asked(
        &mut self,
        now: Timestamp,
        incident_id: IncidentId,
        a: &Alert,
        plan: Plan,
    ) {
        let inc = &self.incidents[&incident_id];
        if plan == Plan::Emergency
            && a.ambulance_requested
            && inc.ambulance.is_none()
            && inc.ambulance_wanted.is_none()
        {
            self.dispatch_ambulance(now, incident_id, "the alert asks for an ambulance".into());
        }
    }

    /// Mints an incident for an alert (its plan, priority and the elder's care level), puts
    /// it in the room and says so (`incident_opened` with `reason`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn mint_incident(
        &mut self,
        now: Timestamp,
        a: &Alert,
        (plan, priority, care_level): (Plan, u8, u8),
        position: LatLon,
        scheduled: bool,
        reason: String,
        needs_operator: Option<NeedsOperator>,
    ) -> IncidentId {
        let incident_id = IncidentId(self.next_incident);
        self.next_incident += 1;
        let inc = Incident {
            id: incident_id,
            elder_id: a.elder_id.clone(),
            kind: a.kind,
            service: a.service,
            plan,
            priority,
            care_level,
            position,
            xy: if needs_operator.is_some() {
                [0.0, 0.0]
            } else {
                self.projection.to_xy(position)
            },
            opened_at: now,
            scheduled_for: a.scheduled_for,
            status: if scheduled {
                IncidentStatus::Scheduled
            } else {
                IncidentStatus::Dispatching
            },
            alerts: vec![AlertRef {
                alert_id: a.alert_id.clone(),
                device_id: a.device_id.clone(),
                cancelled: false,
                kind: Some(a.kind),
                service: a.service,
                conflict: needs_operator
                    .as_ref()
                    .is_some_and(|p| p.code == Undispatchable::AlertConflict),
            }],
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
            needs_operator: needs_operator.clone(),
        };
        self.incidents.open(inc);
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
                needs_operator,
            },
        );
        incident_id
    }

    /// An alert the engine cannot dispatch by itself (unknown elder, position off the map,
    /// a conflicting resend) is still kept: an incident nobody is offered, for the
    /// operators, with the device, the raw position and the reason. Its priority is the
    /// highest its plan can have (the elder's care level is unknown or in doubt).
    fn open_for_operator(
        &mut self,
        now: Timestamp,
        a: Alert,
        plan: Plan,
        problem: NeedsOperator,
    ) -> Reply {
        let position = a
            .position
            .or_else(|| self.roster.elder(&a.elder_id).map(|e| e.home))
            .unwrap_or(LatLon { lat: 0.0, lon: 0.0 });
        let priority = plan.priority(5);
        let raw = match a.position {
            Some(p) => format!("position {},{}", p.lat, p.lon),
            None => "no position".to_string(),
        };
        let reason = format!(
            "{} from device {} ({raw}) NEEDS AN OPERATOR: {}; nobody is offered it \
             automatically",
            what_of(a.kind, a.service),
            a.device_id,
            problem.message
        );
        let incident_id = self.mint_incident(
            now,
            &a,
            (plan, priority, 0),
            position,
            false,
            reason,
            Some(problem.clone()),
        );
        Reply::AlertAccepted {
            incident_id,
            duplicate: false,
            merged: false,
            problem: Some(problem),
        }
    }

    /// An emergency brings someone to the door: an open welfare visit of the same elder that
    /// nobody has reached yet is called off (its offers withdrawn, its visitor released),
    /// as a late check-in calls it off.
    fn call_off_welfare_visits(&mut self, now: Timestamp, elder_id: &ElderId, by: IncidentId) {
        let visits: Vec<IncidentId> = self
            .incidents
            .open_of(elder_id)
            .filter(|i| {
                let inc = &self.incidents[i];
                inc.plan == Plan::WelfareVisit
                    && inc.arrived.is_empty()
                    && inc.needs_operator.is_none()
            })
            .collect();
        for v in visits {
            self.close(
                now,
                v,
                IncidentStatus::Cancelled,
                Actor::Engine,
                format!("emergency incident {by} of {elder_id} brings someone to the door: the welfare visit is not needed"),
            );
        }
    }

    /// A service's or welfare visit's promises, from when its offers go out (`now`): accepted
    /// within `sla_job_accept_ms`, at the door within `sla_job_on_scene_ms` or, for a
    /// scheduled service, by its requested time (decision version 4 on; emergencies have
    /// their own).
    pub(super) fn start_job_timers(&mut self, now: Timestamp, incident_id: IncidentId) {
        let inc = &self.incidents[&incident_id];
        if self.rules < crate::journal::ROSTER_EVENTS_SINCE || inc.plan == Plan::Emergency {
            return;
        }
        let (accept, on_scene) = self.job_deadlines(now, inc.scheduled_for);
        self.set_timer(accept, Timer::SlaJobAccept(incident_id));
        self.set_timer(on_scene, Timer::SlaJobOnScene(incident_id));
    }

    /// The deadlines of a job whose offers go out at `start`.
    pub(super) fn job_deadlines(
        &self,
        start: Timestamp,
        scheduled_for: Option<Timestamp>,
    ) -> (Timestamp, Timestamp) {
        let c = &self.config;
        (
            start.plus_ms(c.sla_job_accept_ms),
            scheduled_for
                .filter(|t| *t > start)
                .unwrap_or(start.plus_ms(c.sla_job_on_scene_ms)),
        )
    }

    pub(super) fn start_emergency_timers(&mut self, now: Timestamp, incident_id: IncidentId) {
        let (c, rules) = (&self.config, self.rules);
        let level = self.incidents[&incident_id].care_level;
        let timers = [
            (
                now.plus_ms(c.sla_first_accept_for(level, rules)),
                Timer::SlaFirstAccept(incident_id),
            ),
            (
                now.plus_ms(c.sla_community_on_scene_for(level, rules)),
                Timer::SlaCommunityOnScene(incident_id),
            ),
            (
                now.plus_ms(c.ambulance_after_for(level, rules)),
                Timer::AmbulanceIfNoAccept(incident_id),
            ),
        ];
        for (at, t) in timers {
            self.set_timer(at, t);
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
            .by_alert(&(device_id.clone(), alert_id.clone()))
            .ok_or_else(|| CommandError::UnknownAlert(alert_id.clone()))?;
        let inc = self
            .incidents
            .get(&incident_id)
            .ok_or(CommandError::UnknownIncident(incident_id))?;
        let a = inc
            .alerts
            .iter()
            .find(|r| r.alert_id == alert_id && r.device_id == device_id)
            .expect("alert keys and incidents agree");
        if !inc.status.is_open() {
            return Err(CommandError::IncidentClosed(incident_id));
        }
        if a.cancelled {
            return Ok(Reply::Done);
        }
        let all_cancelled = self
            .incidents
            .update(incident_id, |inc| {
                for r in inc
                    .alerts
                    .iter_mut()
                    .filter(|r| r.alert_id == alert_id && r.device_id == device_id)
                {
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

/// "fall", "missed check-in", "help (meal)": an alert's need in words.
pub(super) fn what_of(kind: AlertKind, service: Option<ServiceKind>) -> String {
    match (kind, service) {
        (AlertKind::Fall, _) => "fall".to_string(),
        (AlertKind::CheckInMissed, _) => "missed check-in".to_string(),
        (AlertKind::CarePlan, _) => "care plan".to_string(),
        (AlertKind::Help, Some(s)) => format!(
            "help ({})",
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ),
        (AlertKind::Help, None) => "help".to_string(),
    }
}
