// The responder app's entry: reads the access code (the field, or `?access_token=` from a
// printed card's QR code), keeps the one WebSocket, folds what the server says into the store,
// turns the volunteer's taps into protocol requests, and renders the one screen the state asks
// for. Registers the service worker that lets the app open without a connection.
import { Connection } from '../common/connection.js';
import { createStore, initialState, kinRings, screenOf, trackingModeOf } from './store.js';
import { createTracker, distanceM } from './tracker.js';
import { createAppLocale } from './locale.js';
import { createRouteMap } from './route-map.js';
import { bindLogin, renderLogin } from './login.js';
import { bindHome, renderHome } from './home.js';
import { bindOffer, renderOffer, renderCountdown } from './offer.js';
import { bindJob, renderJob } from './job.js';
import { loadTimeBank } from './timebank.js';
import { createAlerter } from './alerter.js';

const KEYS = {
  token: 'responder.token',
  duty: 'responder.duty',
  arrived: 'responder.arrived',
  id: 'responder.id',
  bank: 'responder.bank',
  crs: 'responder.crs',
};
/** Datums a phone may report in (docs/protocol.md): browsers give WGS84 by the Geolocation
 * spec, but some browsers built on Chinese map SDKs give GCJ-02 or BD-09; a deployment's card
 * link can say so with `?crs=gcj02`, and the server converts. */
const CRS = new Set(['wgs84', 'gcj02', 'bd09']);
/** After `welcome` the server re-sends an open offer or job at once; wait this long for it. */
const RESEND_SETTLE_MS = 400;

const storage = safeStorage();
const lang = createAppLocale();
const loc = () => lang.locale();
const root = document;

// ---- the access code: a QR code's link logs in directly, then leaves the address bar ----
const url = new URL(location.href);
const fromUrl = url.searchParams.get('access_token');
const crsFromUrl = url.searchParams.get('crs');
if (crsFromUrl !== null && CRS.has(crsFromUrl)) storage.set(KEYS.crs, crsFromUrl);
if (fromUrl !== null) {
  url.searchParams.delete('access_token');
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  if (fromUrl.trim() && fromUrl.trim() !== storage.get(KEYS.token)) {
    storage.set(KEYS.token, fromUrl.trim());
    for (const k of [KEYS.duty, KEYS.arrived, KEYS.id, KEYS.bank]) storage.remove(k);
  }
}

const store = createStore(
  initialState({
    token: storage.get(KEYS.token),
    duty: storage.get(KEYS.duty) === 'on',
    arrived: parseList(storage.get(KEYS.arrived)),
    responderId: storage.get(KEYS.id),
    timeBank: parseBank(storage.get(KEYS.bank)),
  }),
);
const routeMap = createRouteMap(loc);
const alerter = createAlerter();

let conn = null;
let everWelcomed = false;
let welcomes = 0; // on this connection object: more than one means a reconnect
let loginTried = false;

// ---- the connection ----

function connect(token) {
  disconnect();
  everWelcomed = false;
  welcomes = 0;
  const c = new Connection({
    token,
    onStatus: (status, info) => onStatus(c, status, info),
    onFrame: (frame) => onFrame(c, frame),
    onOpen: (welcome) => onWelcome(c, welcome),
  });
  conn = c;
  c.start();
}

function disconnect() {
  if (conn) {
    const c = conn;
    conn = null;
    c.stop();
  }
}

async function onStatus(c, status, info = {}) {
  if (c !== conn) return;
  if (status === 'open') return; // `welcome` (onWelcome) says online
  if (status === 'connecting') {
    // Once the service is known to be unreachable, say "offline" until it answers again.
    if (store.state.connection === 'offline') return;
    store.dispatch({ type: 'connection', status: everWelcomed ? 'reconnecting' : 'connecting' });
    return;
  }
  if (status === 'unauthorized') {
    wrongToken();
    return;
  }
  if (status !== 'closed' || info.stopped) return;
  if (info.closeCode === 4000) {
    // The same code signed in on another phone: the newer one wins; do not fight it.
    c.stop();
    store.dispatch({ type: 'connection', status: 'replaced' });
    return;
  }
  // A refused upgrade (wrong code) is just a close to a browser: ask who the code belongs to
  // (`GET /v1/whoami`: 401 for an unknown or revoked code).
  const probe = await probeToken(c.token);
  if (c !== conn) return;
  if (probe === 'wrong_token') {
    wrongToken();
    return;
  }
  store.dispatch({ type: 'connection', status: probe === 'unreachable' ? 'offline' : 'reconnecting' });
}

function wrongToken() {
  const input = root.getElementById('token');
  if (conn && !input.value) input.value = conn.token;
  disconnect();
  storage.remove(KEYS.token);
  store.dispatch({ type: 'connection', status: 'wrong_token' });
}

async function probeToken(token) {
  try {
    const r = await fetch('/v1/whoami', {
      headers: { Authorization: `Bearer ${token}` },
      cache: 'no-store',
    });
    return r.status === 401 ? 'wrong_token' : 'reachable';
  } catch {
    return 'unreachable';
  }
}

function onWelcome(c, welcome) {
  if (c !== conn) return;
  // A real code that is not a responder's (an operator's, a gateway's) opens the socket too:
  // this app is for responders only, so it is refused like a wrong code, before any duty.
  if (welcome && welcome.role !== 'responder') {
    wrongToken();
    return;
  }
  everWelcomed = true;
  welcomes += 1;
  setTimeout(() => {
    if (c === conn) syncAfterWelcome(c);
  }, RESEND_SETTLE_MS);
}

/** After a (re)connect: tell the server "available" again only when it may have forgotten. */
async function syncAfterWelcome(c) {
  store.dispatch({ type: 'ui.link_back' });
  const o = owed;
  owed = null;
  if (o && store.state.job && store.state.job.incident_id === o.frame.incident_id) jobAct(o.action, o.frame, o.onAck);
  refreshBank();
  // After a reconnect the server may hold an older position (the phone moved meanwhile): send
  // the current one now rather than at the next rule's turn.
  if (welcomes > 1) tracker.resend();
  const s = store.state;
  if (!s.duty || s.offer || s.job) return; // an offer or a job means the server knows
  const reply = await request(c, { type: 'availability', status: 'available' });
  // A volunteer resting after an emergency, or already on a job, is refused "available":
  // the server's state is the right one, nothing failed.
  noteResting(reply);
}

/** A refused `available` (`invalid_transition`) means resting after an emergency, or already on
 * a job: the server's state, not a failure. Its `resting_until` says when the rest ends. */
function noteResting(reply) {
  if (reply.type === 'error' && reply.code === 'invalid_transition') store.dispatch({ type: 'ui.resting', until: reply.resting_until });
}

const SERVER_FRAMES = new Set(['welcome', 'offer', 'offer_withdrawn', 'assigned', 'incident_closed', 'time_bank_credited', 'kin_update']);

/** Incidents a family member's phone already rang for. */
const rangFor = new Set();

function onFrame(c, frame) {
  if (c !== conn || !SERVER_FRAMES.has(frame.type)) return;
  const before = store.state;
  store.dispatch({ ...frame, receivedAt: Date.now() });
  if (frame.type === 'offer' && store.state.offer && (!before.offer || before.offer.offer_id !== frame.offer_id)) {
    alerter.ring();
  }
  if (frame.type === 'time_bank_credited') refreshBank();
  // A family member's phone rings when their elder needs help (once per incident).
  if (frame.type === 'kin_update' && kinRings(frame) && !rangFor.has(frame.incident_id)) {
    rangFor.add(frame.incident_id); // once per incident, not again when a reconnect re-sends it
    alerter.ring();
  }
}

/** Sends a request and resolves with its reply frame: `ack`, or an `error` (never throws). */
async function request(c, frame) {
  if (!c) return { type: 'error', code: 'offline', message: 'offline' };
  try {
    return await c.request(frame);
  } catch (e) {
    const code = e.code === 'disconnected' ? 'offline' : e.code || 'offline';
    return { type: 'error', code, message: e.message, resting_until: e.frame ? e.frame.resting_until : undefined };
  }
}

async function refreshBank() {
  const s = store.state;
  if (!s.token || !s.responderId) return;
  store.dispatch(await loadTimeBank({ token: s.token, responderId: s.responderId }));
}

// ---- what the volunteer does ----

async function act(action, frame, onAck, onError) {
  store.dispatch({ type: 'ui.pending', action, on: true });
  const reply = await request(conn, frame);
  store.dispatch({ type: 'ui.pending', action, on: false });
  if (reply.type === 'error') (onError || showError)(reply);
  else onAck(reply);
}

/** A job step (arrived, complete, ambulance) tapped while the link was down, sent again after
 * the next `welcome` if the job is still the same: the volunteer taps once. */
let owed = null;
const STEP_LABELS = { arrived: 'assigned.arrived', complete: 'assigned.complete', ambulance: 'assigned.need_ambulance' };

function jobAct(action, frame, onAck) {
  act(action, frame, onAck, (e) => {
    if (e.code !== 'offline' && e.code !== 'timeout') {
      showError(e);
      return;
    }
    owed = { action, frame, onAck };
    store.dispatch({ type: 'ui.queued', step: STEP_LABELS[action] });
  });
}

function showError(reply) {
  store.dispatch({ type: 'ui.error', code: reply.code, message: reply.message });
}

function login(token) {
  alerter.unlock();
  if (!token) {
    loginTried = true;
    render();
    return;
  }
  loginTried = false;
  storage.set(KEYS.token, token);
  for (const k of [KEYS.duty, KEYS.arrived, KEYS.id, KEYS.bank]) storage.remove(k);
  store.dispatch({ type: 'ui.login', token });
  connect(token);
}

async function logout() {
  const c = conn;
  if (c && store.state.duty && !store.state.job) {
    // Nobody should be offered jobs on a phone that signed out.
    await Promise.race([request(c, { type: 'availability', status: 'off_duty' }), sleep(2_000)]);
  }
  disconnect();
  // The datum stays: it is the phone's, not the volunteer's.
  for (const k of [KEYS.token, KEYS.duty, KEYS.arrived, KEYS.id, KEYS.bank]) storage.remove(k);
  store.dispatch({ type: 'ui.logout' });
}

function toggleDuty() {
  alerter.unlock();
  const s = store.state;
  if (!s.duty) {
    store.dispatch({ type: 'ui.duty', on: true });
    act('duty', { type: 'availability', status: 'available' }, () => {}, (e) => {
      if (e.code === 'invalid_transition') noteResting(e);
      else if (e.code !== 'offline') showError(e);
      // Offline: the wish stays, and is sent again after the next `welcome`.
    });
    return;
  }
  if (s.job) {
    store.dispatch({ type: 'ui.error', code: 'busy_job', message: loc().t('duty.busy') });
    return;
  }
  store.dispatch({ type: 'ui.duty', on: false });
  act('duty', { type: 'availability', status: 'off_duty' }, () => {}, (e) => {
    if (e.code !== 'offline' && e.code !== 'invalid_transition') showError(e);
  });
}

function accept() {
  const o = store.state.offer;
  if (!o) return;
  act('accept', { type: 'accept', offer_id: o.offer_id }, () => {}, (e) => {
    if (e.code === 'offer_closed' || e.code === 'unknown_offer' || e.code === 'not_your_offer') {
      store.dispatch({ type: 'ui.offer_closed', offer_id: o.offer_id });
    } else showError(e);
  });
}

function decline() {
  const o = store.state.offer;
  if (!o) return;
  act('decline', { type: 'decline', offer_id: o.offer_id }, () => store.dispatch({ type: 'ui.declined', offer_id: o.offer_id }), (e) => {
    if (e.code === 'offer_closed' || e.code === 'unknown_offer') store.dispatch({ type: 'ui.offer_closed', offer_id: o.offer_id });
    else showError(e);
  });
}

function arrived() {
  const j = store.state.job;
  if (!j) return;
  jobAct('arrived', { type: 'arrived', incident_id: j.incident_id }, () => store.dispatch({ type: 'ui.arrived', incident_id: j.incident_id }));
}

function complete() {
  const j = store.state.job;
  if (!j) return;
  jobAct('complete', { type: 'complete', incident_id: j.incident_id }, async () => {
    store.dispatch({ type: 'ui.completed', incident_id: j.incident_id });
    refreshBank();
    if (!store.state.duty) return;
    // After an emergency the server rests a volunteer (DESIGN §4 fairness) and refuses
    // "available": that refusal is how the app learns to say so, not a failure.
    const reply = await request(conn, { type: 'availability', status: 'available' });
    noteResting(reply);
  });
}

function needAmbulance() {
  const j = store.state.job;
  if (!j) return;
  jobAct('ambulance', { type: 'request_ambulance', incident_id: j.incident_id }, () =>
    store.dispatch({ type: 'ui.ambulance_requested', incident_id: j.incident_id }),
  );
}

// ---- the position ----

const tracker = createTracker({
  geolocation: navigator.geolocation,
  send: (p) =>
    !!conn && conn.send({ type: 'location', position: { lat: p.lat, lon: p.lon, crs: CRS.has(storage.get(KEYS.crs)) ? storage.get(KEYS.crs) : 'wgs84' } }),
  report: (ev) => store.dispatch(ev),
});

// ---- rendering ----

const screens = ['login', 'home', 'offer', 'assigned'];
let shown = null;
let ticker = null;

function applyStatic() {
  const t = loc().t;
  document.documentElement.lang = loc().lang;
  document.title = t('app.title');
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  const btn = root.querySelector('#lang');
  btn.textContent = t('app.language');
  btn.setAttribute('lang', loc().lang === 'zh-CN' ? 'en' : 'zh-CN');
  btn.setAttribute('aria-label', t('app.language.label'));
}

function renderStatus(s) {
  const el = root.querySelector('[data-testid="connection-status"]');
  el.dataset.state = s.connection;
  el.querySelector('.status-text').textContent = loc().t(`status.${s.connection}`);
}

function render() {
  const s = store.state;
  const l = loc();
  renderStatus(s);
  const screen = screenOf(s);
  for (const id of screens) root.getElementById(id).hidden = id !== screen;
  if (screen === 'login') renderLogin(root, s, l, { emptyTried: loginTried });
  if (screen === 'home') renderHome(root, s, l);
  if (screen === 'offer') {
    renderOffer(root, s, l, Date.now());
    routeMap.show(root.getElementById('offer-map'), {
      key: `offer-${s.offer.offer_id}`,
      route: s.offer.route,
      you: s.position || (s.offer.route && s.offer.route[0]) || null,
      person: s.offer.position,
      label: l.t('offer.map'),
    });
  }
  if (screen === 'assigned') {
    renderJob(root, s, l, { distanceM });
    routeMap.show(root.getElementById('job-map'), {
      key: `job-${s.job.incident_id}`,
      route: s.job.route,
      you: s.position || (s.job.route && s.job.route[0]) || null,
      person: s.job.position,
      label: l.t('assigned.map'),
    });
  }
  if (screen !== shown) {
    const first = shown === null;
    shown = screen;
    // A new screen: start reading (and tabbing) from its heading.
    if (!first || screen !== 'login') focusHeading(screen);
  }
  if (screen === 'offer' && !ticker) {
    ticker = setInterval(() => renderCountdown(root, store.state, loc(), Date.now()), 250);
  } else if (screen !== 'offer' && ticker) {
    clearInterval(ticker);
    ticker = null;
  }
}

function focusHeading(screen) {
  const h = root.getElementById(screen).querySelector('h1');
  if (!h) return;
  h.tabIndex = -1;
  h.focus({ preventScroll: false });
}

store.subscribe((s) => {
  tracker.setMode(trackingModeOf(s));
  storage.set(KEYS.duty, s.duty ? 'on' : 'off');
  storage.set(KEYS.arrived, JSON.stringify(s.arrived));
  if (s.responderId) storage.set(KEYS.id, s.responderId);
  if (s.timeBank) storage.set(KEYS.bank, JSON.stringify(s.timeBank));
  render();
});

lang.onChange(() => {
  applyStatic();
  routeMap.relabel();
  render();
});

bindLogin(root, { onLogin: login });
bindHome(root, { onDuty: toggleDuty, onLogout: logout, onDismiss: () => store.dispatch({ type: 'ui.dismiss' }) });
bindOffer(root, { onAccept: accept, onDecline: decline, onDismiss: () => store.dispatch({ type: 'ui.dismiss' }) });
bindJob(root, {
  onArrived: arrived,
  onComplete: complete,
  onAmbulance: needAmbulance,
  onDismiss: () => store.dispatch({ type: 'ui.dismiss' }),
});
// Sound needs a tap first: any tap on the page allows the offer's chime from then on.
addEventListener('pointerdown', () => alerter.unlock(), { once: true, capture: true });
root.querySelector('#lang').addEventListener('click', () => lang.setLang(loc().lang === 'zh-CN' ? 'en' : 'zh-CN'));

applyStatic();
if (fromUrl !== null && !store.state.token) root.getElementById('token').value = fromUrl;
tracker.setMode(trackingModeOf(store.state));
render();
if (store.state.token) connect(store.state.token);

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('sw.js', { scope: './' }).catch(() => {
    /* no offline copy on this browser; the app still works online */
  });
}

// ---- small things ----

function safeStorage() {
  let ls = null;
  try {
    ls = localStorage;
  } catch {
    ls = null;
  }
  return {
    get: (k) => (ls ? ls.getItem(k) : null),
    set: (k, v) => {
      try {
        ls && ls.setItem(k, v);
      } catch {
        /* full or private mode */
      }
    },
    remove: (k) => ls && ls.removeItem(k),
  };
}

function parseList(text) {
  try {
    const v = JSON.parse(text || '[]');
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

function parseBank(text) {
  try {
    const v = JSON.parse(text || 'null');
    return v && Number.isFinite(v.balance_minutes) && Array.isArray(v.history) ? v : null;
  } catch {
    return null;
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
