// The responder app's one store: its state is a fold of what the server said (welcome, offer,
// offer_withdrawn, assigned, incident_closed, time_bank_credited, kin_update, replies) and of what the
// volunteer did (local events named `ui.*`). Views only read it. The fold is pure and
// idempotent by offer_id / incident_id, so the frames a server re-sends after a reconnect
// fold into the same state instead of stacking up.

/** The state of a phone that has not talked to the server yet. */
export function initialState({ token = null, duty = false, arrived = [], responderId = null, timeBank = null } = {}) {
  return {
    token, // the access code, or null when signed out
    responderId, // from `welcome` (remembered, so an offline start still says hello by name)
    connection: token ? 'connecting' : 'logged_out', // connecting|online|reconnecting|offline|wrong_token|logged_out
    duty, // what the volunteer chose: on duty (true) or off duty (false)
    resting: false, // the server refused "available" because of the rest after an emergency
    restingUntil: null, // when the rest ends (ms), if the server said
    offer: null, // the open offer frame, or null
    job: null, // the assigned frame plus {arrived, ambulanceRequested}, or null
    arrived: arrived.slice(), // incident ids this phone reported arrived (survives a reload)
    position: null, // {lat, lon, accuracy_m} the last fix
    positionSentAt: null, // ms, local clock
    positionError: null, // 'denied' | 'unavailable' | 'unsupported' | null
    timeBank, // {balance_minutes, history} or null (the last one read, shown offline too)
    timeBankError: false,
    notice: null, // {key, params, tone: 'info'|'error', seq}
    noticeSeq: 0,
    pending: {}, // action name → true while its request waits for the reply
    family: [], // a family member's phone: the latest kin_update of each incident of their elder, newest first
  };
}

function notice(state, key, params = {}, tone = 'info') {
  const seq = state.noticeSeq + 1;
  return { ...state, notice: { key, params, tone, seq }, noticeSeq: seq };
}

const WITHDRAW_REASONS = new Set([
  'filled',
  'expired',
  'incident_closed',
  'responder_unavailable',
  'reassigned',
  'preempted',
]);

/** The error codes that have their own sentence in the catalogues. */
const ERROR_KEYS = {
  offer_closed: 'error.offer_closed',
  not_assigned: 'error.not_assigned',
  incident_closed: 'error.incident_closed',
  invalid_transition: 'error.invalid_transition',
  timeout: 'error.timeout',
  offline: 'error.offline',
  busy_job: 'duty.busy',
};

/** Notices about the link itself, gone once it is back. */
const LINK_NOTICES = new Set(['error.offline', 'error.timeout', 'error.queued']);

/** state × event → state. Never mutates its arguments. */
export function fold(state, ev) {
  switch (ev.type) {
    // ---- from the server ----
    case 'welcome':
      // A family member's cards start again from what the server re-sends (its elders' open
      // incidents): one that closed while the phone was away would otherwise stay stale.
      return { ...state, responderId: ev.id ?? null, connection: 'online', family: [] };
    case 'offer': {
      // A re-sent offer (same offer_id) replaces itself; an offer for the job we already hold
      // is stale and ignored.
      if (state.job && state.job.incident_id === ev.incident_id) return state;
      const same = state.offer && state.offer.offer_id === ev.offer_id;
      const offer = { ...ev, receivedAt: same ? state.offer.receivedAt : ev.receivedAt ?? null };
      // Being offered a job means the server has this volunteer on duty (whatever a fresh
      // phone remembered) and the rest after the last emergency is over.
      const next = { ...state, offer, duty: true, resting: false };
      return same ? next : { ...next, notice: null };
    }
    case 'offer_withdrawn': {
      if (!state.offer || state.offer.offer_id !== ev.offer_id) return state;
      const reason = WITHDRAW_REASONS.has(ev.reason) ? ev.reason : 'other';
      return notice({ ...state, offer: null }, `withdrawn.${reason}`);
    }
    case 'assigned': {
      const same = state.job && state.job.incident_id === ev.incident_id;
      const job = {
        incident_id: ev.incident_id,
        role: ev.role ?? 'community',
        kind: ev.kind ?? null,
        service: ev.service ?? null,
        priority: ev.priority ?? null,
        position: ev.position ?? null,
        eta_s: ev.eta_s ?? null,
        route: Array.isArray(ev.route) ? ev.route : [],
        elder_id: ev.elder_id ?? null,
        // What the job needs of the person at the door (name, address, keyholders…), if sent.
        elder: ev.elder && typeof ev.elder === 'object' && !Array.isArray(ev.elder) ? ev.elder : null,
        receivedAt: same ? state.job.receivedAt : ev.receivedAt ?? null,
        arrived: state.arrived.includes(ev.incident_id),
        ambulanceRequested: same ? state.job.ambulanceRequested : false,
      };
      const offer = state.offer && state.offer.incident_id === ev.incident_id ? null : state.offer;
      const next = { ...state, job, offer, duty: true, resting: false };
      return same ? next : { ...next, notice: null };
    }
    case 'incident_closed': {
      let next = state;
      if (state.offer && state.offer.incident_id === ev.incident_id) next = { ...next, offer: null };
      if (!state.job || state.job.incident_id !== ev.incident_id) return next;
      next = {
        ...next,
        job: null,
        arrived: state.arrived.filter((id) => id !== ev.incident_id),
      };
      return notice(next, ev.status === 'cancelled' ? 'closed.cancelled' : 'closed.resolved');
    }
    case 'time_bank_credited':
      return notice(state, 'bank.credited', { minutes: ev.minutes });
    case 'kin_update': {
      const family = foldKin(state.family, ev);
      return family === state.family ? state : { ...state, family };
    }
    case 'time_bank':
      return { ...state, timeBank: { balance_minutes: ev.balance_minutes, history: ev.history }, timeBankError: false };
    case 'time_bank_error':
      return { ...state, timeBankError: true };

    // ---- the connection ----
    case 'connection':
      return { ...state, connection: ev.status };

    // ---- what the volunteer did, and the replies ----
    case 'ui.login':
      return { ...initialState({ token: ev.token, duty: false }), noticeSeq: state.noticeSeq };
    case 'ui.logout':
      return { ...initialState(), noticeSeq: state.noticeSeq };
    case 'ui.duty':
      return { ...state, duty: ev.on, resting: ev.on ? state.resting : false };
    case 'ui.resting':
      // `until`: when the rest ends, if the server said (`resting_until`)
      return { ...state, resting: true, restingUntil: Number.isFinite(ev.until) ? ev.until : null };
    case 'ui.pending':
      return { ...state, pending: { ...state.pending, [ev.action]: ev.on } };
    case 'ui.declined':
      if (!state.offer || state.offer.offer_id !== ev.offer_id) return state;
      return notice({ ...state, offer: null }, 'declined');
    case 'ui.offer_closed':
      if (!state.offer || state.offer.offer_id !== ev.offer_id) return state;
      return notice({ ...state, offer: null }, 'error.offer_closed', {}, 'error');
    case 'ui.arrived': {
      if (!state.job || state.job.incident_id !== ev.incident_id) return state;
      const arrived = state.arrived.includes(ev.incident_id) ? state.arrived : [...state.arrived, ev.incident_id];
      return { ...state, arrived, job: { ...state.job, arrived: true } };
    }
    case 'ui.ambulance_requested':
      if (!state.job || state.job.incident_id !== ev.incident_id) return state;
      return notice({ ...state, job: { ...state.job, ambulanceRequested: true } }, 'assigned.ambulance_requested');
    case 'ui.completed': {
      if (!state.job || state.job.incident_id !== ev.incident_id) return state;
      const next = { ...state, job: null, arrived: state.arrived.filter((id) => id !== ev.incident_id) };
      return notice(next, 'completed');
    }
    case 'ui.position':
      return { ...state, position: ev.position, positionError: null };
    case 'ui.position_sent':
      return { ...state, positionSentAt: ev.at };
    case 'ui.position_error':
      return { ...state, positionError: ev.error };
    case 'ui.error': {
      const key = ERROR_KEYS[ev.code];
      return key
        ? notice(state, key, {}, 'error')
        : notice(state, 'error.generic', { message: ev.message ?? ev.code ?? '' }, 'error');
    }
    case 'ui.dismiss':
      return { ...state, notice: null };
    case 'ui.queued':
      // a job step tapped with no connection (`step`: its button's label key) goes out
      // after the next `welcome`
      return notice(state, 'error.queued', { step: ev.step }, 'error');
    case 'ui.link_back':
      // the link is back: a notice that said it was not is no longer true
      return state.notice && LINK_NOTICES.has(state.notice.key) ? { ...state, notice: null } : state;
    default:
      return state;
  }
}

/** The screen the state shows: exactly one at a time. */
export function screenOf(state) {
  if (!state.token || state.connection === 'wrong_token') return 'login';
  if (state.offer) return 'offer';
  if (state.job) return 'assigned';
  return 'home';
}

/** How often the position should go out: 'off' (never), 'en_route' (often) or 'idle' (rarely). */
export function trackingModeOf(state) {
  if (!state.token || state.connection === 'wrong_token') return 'off';
  if (state.job && !state.job.arrived) return 'en_route';
  if (state.duty || state.job) return 'idle';
  return 'off';
}

/** A tiny observable holding the fold. */
export function createStore(state) {
  const listeners = new Set();
  return {
    get state() {
      return state;
    },
    dispatch(ev) {
      const next = fold(state, ev);
      if (next === state) return;
      state = next;
      for (const l of listeners) l(state);
    },
    subscribe(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
}

/** The steps that end an incident: nothing after them changes its card. */
const KIN_FINAL = ['resolved', 'cancelled'];
const KIN_STAGES = ['opened', 'coming', 'unassigned', 'arrived', ...KIN_FINAL];
/** How many of an elder's incidents a family member's phone keeps on screen. */
const KIN_KEPT = 5;

/**
 * The newest step of each incident wins (by `at`): an incident may have several people coming
 * (a volunteer, then an ambulance), and a reconnect re-sends earlier steps, which are older;
 * a closed incident stays closed.
 */
function foldKin(family, ev) {
  if (!KIN_STAGES.includes(ev.stage) || ev.incident_id == null) return family;
  const old = family.find((f) => f.incident_id === ev.incident_id);
  if (old && (KIN_FINAL.includes(old.stage) || (ev.at ?? 0) < (old.at ?? 0))) return family;
  const entry = {
    incident_id: ev.incident_id,
    elder_id: ev.elder_id ?? null,
    stage: ev.stage,
    kind: ev.kind ?? null,
    service: ev.service ?? null,
    at: ev.at ?? null,
    // Who is coming is kept from the `coming` step through `arrived` (not past an
    // `unassigned`: that person is no longer coming).
    responder_kind: ev.stage === 'unassigned' ? null : (ev.responder_kind ?? old?.responder_kind ?? null),
    eta_s: ev.stage === 'unassigned' ? null : (ev.eta_s ?? old?.eta_s ?? null),
  };
  const rest = family.filter((f) => f.incident_id !== ev.incident_id);
  return [entry, ...rest].sort((a, b) => (b.at ?? 0) - (a.at ?? 0)).slice(0, KIN_KEPT);
}

/** Whether a kin_update is one a family member's phone should ring for: a new emergency or a missed check-in, not a planned visit or a meal. */
export function kinRings(ev) {
  return ev.stage === 'opened' && kinUrgent(ev);
}

/** An emergency (a fall, a rescue call) or a missed check-in, rather than a planned visit or a service. */
export function kinUrgent(f) {
  return f.kind === 'fall' || f.kind === 'check_in_missed' || (f.kind === 'help' && f.service === 'rescue');
}
