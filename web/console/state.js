// The console's state and its fold: a `snapshot` gives the whole state, each numbered event
// changes it (docs/protocol.md, "The event stream"). Only this file knows event shapes; the
// views read `state` and never write it. Incidents opened after the snapshot get their clocks
// computed from events exactly as the server does (context: SLA clocks); a clock is breached
// only when `sla_breached` says so.

export const DEFAULT_SLA_MS = {
  first_accept: 30000,
  community_on_scene: 180000,
  ambulance_on_scene: 660000,
  // a service's or welfare visit's, from when its offers go out
  job_accept: 600000,
  job_on_scene: 3600000,
};
export const CLOSED_KEEP = 50; // closed incidents kept for the detail view

/** emergency = a fall, or help with service rescue; welfare = check_in_missed; else service. */
export function planOf(kind, service) {
  if (kind === 'fall' || (kind === 'help' && service === 'rescue')) return 'emergency';
  if (kind === 'check_in_missed') return 'welfare';
  return 'service';
}

/**
 * A fresh state from a snapshot. `previous` (the state it replaces: a new filter, a resume
 * the server could not serve) hands over what the screen knew and the snapshot cannot say:
 * which emergencies are still new to the operator.
 */
export function fromSnapshot(s, frame = {}, previous = null) {
  const state = {
    slaMs: { ...DEFAULT_SLA_MS, ...(s.sla_ms || {}) },
    incidents: new Map(),
    closed: new Map(),
    responders: new Map(),
    offers: new Map(), // offer_id → { incident_id, responder_id }
    snapshotAt: Date.now(),
    snapshotReason: frame.reason || 'subscribe',
    newIds: new Set(), // emergencies opened live (the views highlight those not yet looked at)
    emergenciesOpened: 0, // live-opened emergencies since this state was built (the sound)
    version: 0, // bumped by every event but moves (the views render on it)
    moved: 0, // bumped by moves (only the map cares)
    touched: new Set(), // responders whose position or status changed (the map takes and clears it)
  };
  for (const i of s.incidents || []) {
    if (!i || i.id === undefined) continue;
    state.incidents.set(i.id, {
      id: i.id,
      elder_id: i.elder_id,
      kind: i.kind,
      service: i.service ?? null,
      plan: i.plan || planOf(i.kind, i.service),
      priority: Number(i.priority) || 0,
      status: i.status || 'dispatching',
      position: i.position || null,
      opened_at: i.opened_at,
      wave: i.wave || 0,
      open_offers: new Set(i.open_offers || []),
      community: [...(i.community || [])],
      ambulance: i.ambulance ?? null,
      care_level: i.care_level ?? null,
      clocks: Array.isArray(i.clocks) ? i.clocks.map((c) => ({ ...c })) : [],
      needs_operator: operatorNeed(i.needs_operator),
    });
    // an alert kept for an operator has no position to trust (unknown elder, off the map)
    if (state.incidents.get(i.id).needs_operator) state.incidents.get(i.id).position = null;
  }
  for (const r of s.responders || []) {
    if (!r || r.id === undefined) continue;
    state.responders.set(r.id, {
      id: r.id,
      kind: r.kind,
      travel_mode: r.travel_mode,
      status: r.status && typeof r.status === 'object' ? { ...r.status } : { state: String(r.status || 'off_duty') },
      position: r.position || null,
      grid_id: r.grid_id ?? null,
    });
    if (r.status && r.status.state === 'offered') state.offers.set(r.status.offer_id, { incident_id: r.status.incident_id, responder_id: r.id });
  }
  // Defect: a filter wiped the NEW mark of emergencies nobody had looked at.
  if (previous && previous.newIds) for (const id of previous.newIds) if (state.incidents.has(id)) state.newIds.add(id);
  return state;
}

function clock(inc, sla) {
  return inc.clocks.find((c) => c.sla === sla);
}

function setStatus(state, responderId, status) {
  const r = state.responders.get(responderId);
  if (r) r.status = status;
}

function close(state, e, status) {
  const inc = state.incidents.get(e.incident_id);
  if (!inc) return;
  state.incidents.delete(e.incident_id);
  state.newIds.delete(e.incident_id);
  inc.status = status;
  inc.closed_at = e.at;
  inc.close_reason = e.reason;
  state.closed.set(inc.id, inc);
  if (state.closed.size > CLOSED_KEEP) state.closed.delete(state.closed.keys().next().value);
  // the responders on it: assigned, or holding one of its offers (not a scan of all ten
  // thousand responders per closed incident)
  const onIt = new Set(inc.community);
  if (inc.ambulance !== null && inc.ambulance !== undefined) onIt.add(inc.ambulance);
  for (const o of state.offers.values()) if (o.incident_id === e.incident_id) onIt.add(o.responder_id);
  for (const id of onIt) {
    const r = state.responders.get(id);
    if (!r || r.status.incident_id !== e.incident_id) continue;
    state.touched.add(id);
    // as the engine does: a volunteer back from an emergency rests, everyone else is free
    if (r.kind === 'volunteer' && inc.plan === 'emergency' && r.status.state === 'on_scene') r.status = { state: 'resting' };
    else r.status = { state: 'available' };
  }
  for (const o of inc.open_offers) state.offers.delete(o);
}

/** An alert the engine could not dispatch (`{code, message}`), or null. */
function operatorNeed(v) {
  if (!v || typeof v !== 'object') return null;
  return { code: String(v.code || ''), message: String(v.message || '') };
}

function endOffer(state, e) {
  const inc = state.incidents.get(e.incident_id);
  if (inc) inc.open_offers.delete(e.offer_id);
  state.offers.delete(e.offer_id);
  const r = state.responders.get(e.responder_id);
  if (r && r.status.state === 'offered' && r.status.offer_id === e.offer_id) r.status = { state: 'available' };
}

const FOLD = {
  incident_opened(state, e) {
    const plan = planOf(e.kind, e.service);
    const m = /care level (\d)/.exec(e.reason || '');
    const inc = {
      id: e.incident_id,
      elder_id: e.elder_id,
      kind: e.kind,
      service: e.service ?? null,
      plan,
      priority: Number(e.priority) || 0,
      status: 'dispatching',
      position: e.position || null,
      opened_at: e.at,
      wave: 0,
      open_offers: new Set(),
      community: [],
      ambulance: null,
      care_level: m ? Number(m[1]) : null,
      clocks: [],
      needs_operator: operatorNeed(e.needs_operator),
    };
    if (inc.needs_operator) inc.position = null;
    if (plan === 'emergency') {
      inc.clocks.push({ sla: 'first_accept', deadline: e.at + state.slaMs.first_accept, met_at: null, breached: false });
      inc.clocks.push({ sla: 'community_on_scene', deadline: e.at + state.slaMs.community_on_scene, met_at: null, breached: false });
      state.newIds.add(inc.id);
      state.emergenciesOpened++;
    } else if (!inc.needs_operator && e.kind !== 'care_plan' && !/offers go out at/.test(e.reason || '')) {
      // a service or welfare visit offered now (a scheduled one gets its clocks from the next
      // snapshot, which knows its requested time; a care-plan job's promise is its window)
      inc.clocks.push({ sla: 'job_accept', deadline: e.at + state.slaMs.job_accept, met_at: null, breached: false });
      inc.clocks.push({ sla: 'job_on_scene', deadline: e.at + state.slaMs.job_on_scene, met_at: null, breached: false });
    }
    state.incidents.set(inc.id, inc);
  },
  offer_sent(state, e) {
    const inc = state.incidents.get(e.incident_id);
    if (inc) {
      inc.nobody = null; // somebody is being asked again
      inc.open_offers.add(e.offer_id);
      if (Number.isFinite(e.wave)) inc.wave = Math.max(inc.wave, e.wave);
    }
    state.offers.set(e.offer_id, { incident_id: e.incident_id, responder_id: e.responder_id });
    setStatus(state, e.responder_id, { state: 'offered', offer_id: e.offer_id, incident_id: e.incident_id });
  },
  offer_declined: endOffer,
  offer_expired: endOffer,
  offer_withdrawn: endOffer,
  assigned(state, e) {
    const inc = state.incidents.get(e.incident_id);
    if (inc) {
      inc.nobody = null;
      if (e.role === 'ambulance') {
        inc.ambulance = e.responder_id;
        if (!clock(inc, 'ambulance_on_scene') && inc.plan === 'emergency') {
          inc.clocks.push({ sla: 'ambulance_on_scene', deadline: e.at + state.slaMs.ambulance_on_scene, met_at: null, breached: false });
        }
      } else {
        if (!inc.community.includes(e.responder_id)) inc.community.push(e.responder_id);
        const c = clock(inc, inc.plan === 'emergency' ? 'first_accept' : 'job_accept');
        if (c && c.met_at === null) c.met_at = e.at;
      }
      if (inc.status === 'dispatching' || inc.status === 'scheduled') inc.status = 'assigned';
    }
    setStatus(state, e.responder_id, { state: 'en_route', incident_id: e.incident_id });
  },
  responder_arrived(state, e) {
    const inc = state.incidents.get(e.incident_id);
    if (inc) {
      const door = inc.plan === 'emergency' ? 'community_on_scene' : 'job_on_scene';
      const c = clock(inc, e.role === 'ambulance' ? 'ambulance_on_scene' : door);
      if (c && c.met_at === null) c.met_at = e.at;
      inc.status = 'on_scene';
    }
    setStatus(state, e.responder_id, { state: 'on_scene', incident_id: e.incident_id });
  },
  sla_breached(state, e) {
    const inc = state.incidents.get(e.incident_id);
    if (!inc) return;
    let c = clock(inc, e.sla);
    if (!c) {
      c = { sla: e.sla, deadline: e.deadline, met_at: null, breached: false };
      inc.clocks.push(c);
    }
    c.breached = true;
  },
  incident_resolved(state, e) {
    close(state, e, 'resolved');
  },
  incident_cancelled(state, e) {
    close(state, e, 'cancelled');
  },
  responder_moved(state, e) {
    const r = state.responders.get(e.responder_id);
    if (r && validPosition(e.position)) r.position = e.position;
  },
  // a batch (subscribe with moves: 'batched'): the newest position of each responder that moved
  responders_moved(state, f) {
    if (!Array.isArray(f.moves)) return;
    for (const m of f.moves) {
      if (!m) continue;
      const r = state.responders.get(m.responder_id);
      if (r && validPosition(m.position)) {
        r.position = m.position;
        state.touched.add(m.responder_id);
      }
    }
  },
  responder_availability(state, e) {
    const r = state.responders.get(e.responder_id);
    if (r) r.status = { state: e.status };
  },
  escalated(state, e) {
    const inc = state.incidents.get(e.incident_id);
    if (inc) inc.escalated = e.reason;
  },
  no_responder_available(state, e) {
    const inc = state.incidents.get(e.incident_id);
    if (inc) inc.nobody = e.reason;
  },
  // a responder taken off an incident (retired while on it): the incident goes on without them
  unassigned(state, e) {
    const inc = state.incidents.get(e.incident_id);
    if (inc) {
      if (inc.ambulance === e.responder_id) inc.ambulance = null;
      inc.community = inc.community.filter((r) => r !== e.responder_id);
      if (inc.community.length === 0 && (inc.status === 'assigned' || inc.status === 'on_scene')) {
        inc.status = 'dispatching';
      }
    }
    const r = state.responders.get(e.responder_id);
    if (r && r.status.incident_id === e.incident_id) r.status = { state: 'off_duty' };
  },
  // people management: a retired responder leaves the map (an added one appears with the
  // next snapshot, once it has a position)
  roster_changed(state, e) {
    if (e.entry === 'responder' && e.change === 'retired' && state.responders.has(e.id)) {
      state.responders.delete(e.id);
      state.touched.add(e.id);
    }
  },
  alert_joined() {},
  // road closures: the map's closure layer fetches them again (closures.js)
  road_closed() {},
  road_reopened() {},
  time_bank_credited() {},
  time_bank_redeemed() {},
  checked_in() {},
  // On the incident's timeline (fetched); the queue needs nothing of them.
  care_visit_missed() {},
  care_visit_done() {},
};

function validPosition(p) {
  return !!p && Number.isFinite(p.lat) && Number.isFinite(p.lon);
}

const MOVES = new Set(['responder_moved', 'responders_moved']);

/** One event into the state (unknown types are ignored). */
export function fold(state, e) {
  const f = FOLD[e.type];
  if (f) f(state, e);
  // every event naming a responder may have changed its position or status
  if (e.responder_id !== undefined && state.responders.has(e.responder_id)) state.touched.add(e.responder_id);
  if (MOVES.has(e.type)) {
    state.moved++;
    return;
  }
  if (e.incident_id !== undefined) {
    const inc = state.incidents.get(e.incident_id);
    if (inc) {
      inc.last_at = e.at;
      inc.rev = (inc.rev || 0) + 1; // the views redraw an incident only when this moved
    }
  }
  state.version++;
}

/** How long a new emergency stays highlighted (and pinned on top) unless looked at. */
export const NEW_FOR_MS = 60000;

/** A live-opened emergency nobody has selected yet, opened less than NEW_FOR_MS ago. */
export function isNew(state, inc, now, seen) {
  return state.newIds.has(inc.id) && !(seen && seen.has(inc.id)) && !(now - inc.opened_at > NEW_FOR_MS);
}

/** Still waiting for someone: nobody has accepted it yet, or it needs an operator. */
export function isWaiting(inc) {
  return inc.status === 'dispatching' || !!inc.needs_operator;
}

/**
 * Open incidents by urgency: new emergencies first, then those still waiting for someone
 * before those already in hand (a P4 nobody has accepted before a P5 whose volunteer is at the
 * door), then priority desc, then oldest.
 */
export function queueOrder(state, now = Date.now(), seen = null) {
  return [...state.incidents.values()].sort((a, b) => {
    const na = isNew(state, a, now, seen) ? 1 : 0;
    const nb = isNew(state, b, now, seen) ? 1 : 0;
    if (na !== nb) return nb - na;
    const wa = isWaiting(a) ? 1 : 0;
    const wb = isWaiting(b) ? 1 : 0;
    if (wa !== wb) return wb - wa;
    if (a.priority !== b.priority) return b.priority - a.priority;
    return (a.opened_at || 0) - (b.opened_at || 0) || a.id - b.id;
  });
}
