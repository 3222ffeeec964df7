//! The incidents room: [`Incidents`] owns every incident (open and recently closed), the
//! alert key → incident and elder → open incidents lookups, the closed-by-time queue and the
//! urgency index of waiting emergencies, and keeps them in step by construction. An incident
//! changes only through [`Incidents::update`] (or `open`, `join`, `close`, which use it), so
//! the urgency index is recomputed around every change instead of by hand at call sites.

use super::*;
use std::sync::Arc;

/// Urgency order: highest priority, then oldest, then lowest id.
pub(super) type UrgencyKey = (std::cmp::Reverse<u8>, Timestamp, IncidentId);

pub(super) fn urgency_key(inc: &Incident) -> UrgencyKey {
    (std::cmp::Reverse(inc.priority), inc.opened_at, inc.id)
}

/// An emergency still waiting for its community responder.
pub(super) fn is_waiting_emergency(inc: &Incident) -> bool {
    inc.plan == Plan::Emergency && inc.wants_offers()
}

/// Whether an incident's open offers may be taken over by an emergency next door: an open
/// service or welfare visit holding offers (`Engine::preemptable_near` reads only these).
fn holds_preemptable_offers(inc: &Incident) -> bool {
    inc.status.is_open() && inc.plan != Plan::Emergency && !inc.open_offers.is_empty()
}

/// The key an incident has in the urgency index, if it belongs there.
fn waiting_key(inc: &Incident) -> Option<UrgencyKey> {
    is_waiting_emergency(inc).then(|| urgency_key(inc))
}

/// An alert's duplicate key: the device that sent it and its id on that device.
pub(super) type AlertKey = (crate::ids::DeviceId, AlertId);

pub(super) struct Incidents {
    /// Shared with the snapshot being taken, if any (`Engine::save_state` copies the map,
    /// not the incidents): an incident changed meanwhile is copied then (`update`).
    by_id: BTreeMap<IncidentId, Arc<Incident>>,
    /// (device, alert id) → its incident (a resend answers with it), until the incident is
    /// forgotten. Derived from the incidents' alerts (rebuilt on restore).
    alerts: BTreeMap<AlertKey, IncidentId>,
    /// Each elder's open incidents (one per need: see `Incident::same_need`). Derived.
    open_by_elder: BTreeSet<(ElderId, IncidentId)>,
    /// Closed incidents by closing time, oldest first (derived, not saved): they are
    /// forgotten `closed_retention_ms` after closing.
    closed: BTreeSet<(Timestamp, IncidentId)>,
    /// Waiting emergencies (dispatching, no community responder yet), most urgent first:
    /// joint rounds take the most urgent from the front instead of scanning every open
    /// incident. Derived (rebuilt on restore), kept by `update`.
    waiting_emergencies: BTreeSet<UrgencyKey>,
    /// Open services and welfare visits holding offers (derived, kept by `update`): an
    /// emergency's ranking looks only at these, not at every open incident (a surge of falls
    /// has thousands of open incidents and few services).
    with_preemptable_offers: BTreeSet<IncidentId>,
    /// The most recently ranked incidents placed on the foot and car graphs (derived, not
    /// saved): a surge's joint rounds rank the same waiting incidents again and again, and
    /// each ranking snapped its target twice.
    placed: std::sync::Mutex<Vec<PlacedIncident>>,
}

/// An incident, the position it was placed at, and its placement (foot, car).
type PlacedIncident = (IncidentId, LatLon, [Option<Placed>; 2]);

/// Incidents whose placement is kept: a joint round ranks at most `surge_max_incidents` (16
/// by default); a larger setting only makes the cache miss, never answer wrong.
const PLACED_INCIDENTS: usize = 64;

impl std::ops::Index<&IncidentId> for Incidents {
    type Output = Incident;
    fn index(&self, id: &IncidentId) -> &Incident {
        &self.by_id[id]
    }
}

impl Incidents {
    /// Rebuilds the derived indexes (alert keys, open incidents by elder, closed queue,
    /// urgency index) from the saved incidents. Snapshots before decision version 3 also
    /// saved alert and elder maps; they are derivable and ignored.
    pub(super) fn from_saved(by_id: BTreeMap<IncidentId, Arc<Incident>>) -> Incidents {
        // Snapshots from before `closed_at` existed: a closed incident closed at its last event.
        let closed = by_id
            .values()
            .filter(|i| !i.status.is_open())
            .map(|i| {
                let at = i
                    .closed_at
                    .or_else(|| i.timeline.last().map(|e| e.at))
                    .unwrap_or(i.opened_at);
                (at, i.id)
            })
            .collect();
        let mut alerts = BTreeMap::new();
        for i in by_id.values() {
            // A conflicting resend is kept on its own incident without taking the key.
            for a in i.alerts.iter().filter(|a| !a.conflict) {
                alerts.insert((a.device_id.clone(), a.alert_id.clone()), i.id);
            }
        }
        let open_by_elder = by_id
            .values()
            .filter(|i| i.status.is_open())
            .map(|i| (i.elder_id.clone(), i.id))
            .collect();
        let waiting_emergencies = by_id.values().filter_map(|i| waiting_key(i)).collect();
        let with_preemptable_offers = by_id
            .values()
            .filter(|i| holds_preemptable_offers(i))
            .map(|i| i.id)
            .collect();
        Incidents {
            by_id,
            alerts,
            open_by_elder,
            closed,
            waiting_emergencies,
            with_preemptable_offers,
            placed: Default::default(),
        }
    }

    /// `inc` placed on the foot and car graphs (as a ranking's target), snapped once per
    /// position while it is among the most recently asked.
    pub(super) fn placed(&self, inc: &Incident, roads: &dyn TravelTimes) -> [Option<Placed>; 2] {
        let mut kept = self.placed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = kept.iter().position(|(id, _, _)| *id == inc.id) {
            let hit = kept.remove(i);
            if hit.1 == inc.position {
                let places = hit.2;
                kept.push(hit);
                return places;
            }
        }
        let places = [
            roads.place(TravelMode::Foot, inc.position),
            roads.place(TravelMode::Car, inc.position),
        ];
        if kept.len() >= PLACED_INCIDENTS {
            kept.remove(0);
        }
        kept.push((inc.id, inc.position, places));
        places
    }

    /// Every incident kept (open and closed), for saving: cloning it shares the incidents.
    pub(super) fn all(&self) -> &BTreeMap<IncidentId, Arc<Incident>> {
        &self.by_id
    }

    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(super) fn get(&self, id: &IncidentId) -> Option<&Incident> {
        self.by_id.get(id).map(Arc::as_ref)
    }

    /// The incident an alert (by its device and id) opened or joined.
    pub(super) fn by_alert(&self, key: &AlertKey) -> Option<IncidentId> {
        self.alerts.get(key).copied()
    }

    /// Open services and welfare visits holding offers, in id order.
    pub(super) fn with_preemptable_offers(&self) -> impl Iterator<Item = &Incident> + '_ {
        self.with_preemptable_offers.iter().map(|i| &*self.by_id[i])
    }

    /// The elder's open incidents, oldest first.
    pub(super) fn open_of<'a>(
        &'a self,
        elder_id: &'a ElderId,
    ) -> impl Iterator<Item = IncidentId> + 'a {
        self.open_by_elder
            .range((elder_id.clone(), IncidentId(0))..)
            .take_while(move |(e, _)| e == elder_id)
            .map(|&(_, i)| i)
    }

    /// Open incidents, in elder order.
    pub(super) fn open_ids(&self) -> impl Iterator<Item = IncidentId> + '_ {
        self.open_by_elder.iter().map(|&(_, i)| i)
    }

    /// Waiting emergencies, most urgent first.
    pub(super) fn waiting_emergencies(&self) -> impl Iterator<Item = IncidentId> + '_ {
        self.waiting_emergencies.iter().map(|&(_, _, i)| i)
    }

    /// Changes one incident; its place in the urgency index follows the change.
    /// `None` (and `f` not called) if there is no such incident.
    pub(super) fn update<R>(
        &mut self,
        id: IncidentId,
        f: impl FnOnce(&mut Incident) -> R,
    ) -> Option<R> {
        // Copied here if a snapshot still holds it.
        let inc = Arc::make_mut(self.by_id.get_mut(&id)?);
        let before = waiting_key(inc);
        let out = f(inc);
        let after = waiting_key(inc);
        if holds_preemptable_offers(inc) {
            self.with_preemptable_offers.insert(id);
        } else {
            self.with_preemptable_offers.remove(&id);
        }
        if before != after {
            if let Some(k) = before {
                self.waiting_emergencies.remove(&k);
            }
            if let Some(k) = after {
                self.waiting_emergencies.insert(k);
            }
        }
        Some(out)
    }

    /// A new incident, opened by its first alert, which takes its key unless it is a
    /// conflicting resend (kept on an incident of its own, the key stays with the first).
    pub(super) fn open(&mut self, inc: Incident) {
        let id = inc.id;
        for a in inc.alerts.iter().filter(|a| !a.conflict) {
            let first = self
                .alerts
                .insert((a.device_id.clone(), a.alert_id.clone()), id);
            debug_assert!(first.is_none(), "an alert key is taken once");
        }
        self.open_by_elder.insert((inc.elder_id.clone(), id));
        if let Some(k) = waiting_key(&inc) {
            self.waiting_emergencies.insert(k);
        }
        self.by_id.insert(id, Arc::new(inc));
    }

    /// Another alert joins an open incident.
    pub(super) fn join(&mut self, id: IncidentId, alert: AlertRef) {
        self.alerts
            .insert((alert.device_id.clone(), alert.alert_id.clone()), id);
        self.update(id, |inc| inc.alerts.push(alert))
            .expect("joined incidents exist");
    }

    /// Closes an open incident at `now` (the elder may open a new one); it is forgotten
    /// after the retention. Returns it as closed.
    pub(super) fn close(
        &mut self,
        id: IncidentId,
        to: IncidentStatus,
        now: Timestamp,
    ) -> &Incident {
        let elder = self
            .update(id, |inc| {
                debug_assert!(inc.status.can_become(to));
                inc.status = to;
                inc.closed_at = Some(now);
                inc.elder_id.clone()
            })
            .expect("caller checked");
        self.closed.insert((now, id));
        self.open_by_elder.remove(&(elder, id));
        &self.by_id[&id]
    }

    /// Forgets incidents closed at least `keep_ms` before `now` with their alerts' duplicate
    /// keys; `forgotten` sees each as it goes.
    pub(super) fn forget_closed(
        &mut self,
        now: Timestamp,
        keep_ms: u64,
        mut forgotten: impl FnMut(&Incident),
    ) {
        while let Some(&(at, id)) = self.closed.first() {
            if now.ms_since(at) < keep_ms {
                break;
            }
            self.closed.pop_first();
            let Some(inc) = self.by_id.remove(&id) else {
                continue;
            };
            for a in &inc.alerts {
                let key = (a.device_id.clone(), a.alert_id.clone());
                if self.alerts.get(&key) == Some(&id) {
                    self.alerts.remove(&key);
                }
            }
            forgotten(&inc);
        }
    }
}
