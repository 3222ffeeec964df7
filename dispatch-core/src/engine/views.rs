//! The read side: what consoles, phones and HTTP readers see of the engine (views built
//! from its state; nothing here changes it).

use super::*;

/// A responder as the console sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponderView {
    pub id: ResponderId,
    pub kind: ResponderKind,
    pub travel_mode: TravelMode,
    pub status: ResponderStatus,
    pub position: LatLon,
    pub position_at: Option<Timestamp>,
    pub grid_id: Option<crate::ids::GridId>,
}

/// An open incident as the console sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentSummary {
    pub id: IncidentId,
    pub elder_id: ElderId,
    pub kind: AlertKind,
    pub service: Option<ServiceKind>,
    pub plan: Plan,
    pub priority: u8,
    pub status: IncidentStatus,
    pub position: LatLon,
    pub opened_at: Timestamp,
    pub wave: u32,
    pub open_offers: Vec<OfferId>,
    pub community: Vec<ResponderId>,
    pub ambulance: Option<ResponderId>,
    /// Assigned responders who have not completed yet.
    pub committed: Vec<ResponderId>,
    /// The elder's care level (1..5) when the incident opened.
    #[serde(default)]
    pub care_level: u8,
    /// The promise clocks of an emergency (empty for services and welfare visits).
    #[serde(default)]
    pub clocks: Vec<SlaClock>,
    /// Set when the engine could not dispatch the alert (unknown elder, off the map, an
    /// alert key resent with other content): an operator must handle it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_operator: Option<NeedsOperator>,
}

/// The console's snapshot: open incidents and every responder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotView {
    pub last_seq: u64,
    pub incidents: Vec<IncidentSummary>,
    pub responders: Vec<ResponderView>,
    /// The promise durations, for clocks of incidents opened after the snapshot.
    pub sla_ms: SlaDurations,
}

/// One incident with its full timeline and decision reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentView {
    pub summary: IncidentSummary,
    pub alerts: Vec<AlertRef>,
    pub arrived: BTreeMap<ResponderId, Timestamp>,
    pub timeline: Vec<EventRecord>,
    /// The elder and their familiar people (`None` if the elder left the roster).
    pub elder: Option<ElderView>,
}

impl Engine {
    /// A responder's time bank; an empty one for a responder with no credit yet, `None`
    /// only for an id that is not (or no longer) on the roster.
    pub fn time_bank(&self, id: &ResponderId) -> Option<TimeBankView> {
        if let Some(a) = self.time_bank.account(id) {
            return Some(a);
        }
        self.responder(id).map(|_| TimeBankView {
            responder_id: Some(id.clone()),
            ..TimeBankView::default()
        })
    }

    /// A responder's live state.
    pub fn responder(&self, id: &ResponderId) -> Option<&ResponderState> {
        self.responders
            .slot_of(id)
            .map(|s| &self.responders[s])
            .filter(|r| !r.retired)
    }

    pub(super) fn summary(&self, i: &Incident) -> IncidentSummary {
        IncidentSummary {
            id: i.id,
            elder_id: i.elder_id.clone(),
            kind: i.kind,
            service: i.service,
            plan: i.plan,
            priority: i.priority,
            status: i.status,
            position: i.position,
            opened_at: i.opened_at,
            wave: i.wave,
            open_offers: i.open_offers.iter().copied().collect(),
            community: i.community.clone(),
            ambulance: i.ambulance.clone(),
            committed: i.committed().cloned().collect(),
            care_level: i.care_level,
            clocks: self.clocks(i),
            needs_operator: i.needs_operator.clone(),
        }
    }

    /// An incident as the engine holds it (open, or closed and not yet forgotten), borrowed:
    /// for callers that need a few facts per event without copying the timeline (the
    /// server's delivery of events).
    pub fn incident_record(&self, id: IncidentId) -> Option<&Incident> {
        self.incidents.get(&id)
    }

    pub fn incident(&self, id: IncidentId) -> Option<IncidentView> {
        let i = self.incidents.get(&id)?;
        Some(IncidentView {
            summary: self.summary(i),
            alerts: i.alerts.clone(),
            arrived: i.arrived.clone(),
            timeline: i.timeline.clone(),
            elder: self.elder_view(&i.elder_id),
        })
    }

    /// What a responder's phone must be told again when it reconnects: the open offer it
    /// holds (its `offer_sent` event), or the assignment it is working on (its latest
    /// `assigned` event), from the incident's timeline. Empty when it has no open job.
    pub fn open_job_events(&self, id: &ResponderId) -> Vec<EventRecord> {
        let Some(r) = self.responder(id) else {
            return Vec::new();
        };
        let (incident_id, offer) = match r.status {
            ResponderStatus::Offered {
                offer_id,
                incident_id,
            } => (incident_id, Some(offer_id)),
            ResponderStatus::EnRoute { incident_id } | ResponderStatus::OnScene { incident_id } => {
                (incident_id, None)
            }
            _ => return Vec::new(),
        };
        let Some(inc) = self.incidents.get(&incident_id) else {
            return Vec::new();
        };
        inc.timeline
            .iter()
            .rev()
            .find(|rec| match (&rec.event, offer) {
                (Event::OfferSent { offer_id, .. }, Some(o)) => *offer_id == o,
                (Event::Assigned { responder_id, .. }, None) => responder_id == id,
                _ => false,
            })
            .cloned()
            .into_iter()
            .collect()
    }

    /// For a `kin` responder: what they were told so far of their elders' open incidents
    /// (`Event::kin_stage`), oldest first, for a reconnecting phone. Empty for anyone else.
    pub fn kin_news_events(&self, id: &ResponderId) -> Vec<EventRecord> {
        let Some(r) = self.roster.responder(id) else {
            return Vec::new();
        };
        if r.kind != crate::model::ResponderKind::Kin {
            return Vec::new();
        }
        let mut v: Vec<EventRecord> = self
            .incidents
            .open_ids()
            .map(|i| &self.incidents[&i])
            .filter(|inc| r.kin_of.contains(&inc.elder_id))
            .flat_map(|inc| inc.timeline.iter())
            // Their own offer or job is resent as such (`open_job_events`), not as news.
            .filter(|rec| rec.event.kin_stage().is_some() && rec.event.responder_id() != Some(id))
            .cloned()
            .collect();
        v.sort_by_key(|rec| rec.seq);
        v
    }

    /// Open incidents and every responder on the roster.
    pub fn snapshot_view(&self) -> SnapshotView {
        SnapshotView {
            last_seq: self.seq,
            incidents: self
                .incidents
                .open_ids()
                .filter_map(|id| self.incidents.get(&id))
                .map(|i| (i.id, self.summary(i)))
                .collect::<BTreeMap<_, _>>()
                .into_values()
                .collect(),
            responders: self
                .responders
                .iter()
                .filter(|r| !r.retired)
                .map(|r| ResponderView {
                    id: r.record.id.clone(),
                    kind: r.record.kind,
                    travel_mode: r.record.travel_mode,
                    status: r.status,
                    position: r.position,
                    position_at: r.position_at,
                    grid_id: r.record.grid_id.clone(),
                })
                .collect(),
            sla_ms: self.sla_durations(),
        }
    }
}
