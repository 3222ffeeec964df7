// The console's entry point: log-in (token field, or ?access_token= once, then only in this
// tab's sessionStorage), the WebSocket link (its socket in a worker), the subscribe → snapshot
// → events fold, and the wiring of the views (map layer, queue, incident detail, actions,
// filters, alert sound).
// State changes only through the store (web/common/store.js); views read it once per frame.

import { createI18n } from '../common/i18n.js';
import { Connection } from '../common/connection.js';
import { createStore } from '../common/store.js';
import { RoadMap } from '../common/map.js';
import en from './messages.en.js';
import zh from './messages.zh-CN.js';
import { fromSnapshot, fold } from './state.js';
import { createQueue } from './queue.js';
import { createMapLayer } from './map-layer.js';
import { createDetail } from './incident.js';
import { createActions } from './actions.js';
import { createCareReport } from './care.js';
import { createCoverage } from './coverage.js';
import { createClosures } from './closures.js';
import { createFilters } from './filters.js';
import { createAlertSound } from './alert-sound.js';
import { ConsoleSocket } from './socket.js';

const TOKEN_KEY = 'console.token';
const $ = (id) => document.getElementById(id);

const i18n = createI18n({ catalogues: { en, 'zh-CN': zh }, storageKey: 'console.lang' });
const t = i18n.t;

// ---- server time: the engine stamps every event with `at`; the browser's clock may differ --
// estimate: the least delayed of the last 64 frames (recomputed every 16 frames, and at once
// when a frame is less delayed than the estimate: a clock never shows more than its SLA)
const offsets = new Float64Array(64).fill(-Infinity);
let nOffsets = 0;
let offset = 0;
function sawServerTime(at) {
  if (!Number.isFinite(at)) return;
  const o = at - Date.now();
  offsets[nOffsets++ & 63] = o;
  if (o > offset || nOffsets === 1) offset = o;
  else if ((nOffsets & 15) === 1) {
    let m = -Infinity;
    for (const x of offsets) if (x > m) m = x;
    offset = m;
  }
}
const serverNow = () => Date.now() + offset;

// ---- event lag, measured at the frame that puts an event on screen (benchmarks read it) --
// (`lags`: every event and every batched move; `eventLags`: numbered events only)
const metrics = { lags: [], eventLags: [], pendingAt: [], pendingMoveAt: [], renderMs: [], frames: [], snapshots: {}, moveBatches: 0, maxSamples: 2000000 };
function recordDrawn() {
  if (!metrics.pendingAt.length && !metrics.pendingMoveAt.length) return;
  // the wall clock, as the server's `at` (same machine): timeOrigin + performance.now() runs on
  // the monotonic clock, which drifted ~5 ms a second from the wall clock on the benchmark VM
  const now = Date.now();
  for (const at of metrics.pendingAt) {
    if (metrics.lags.length < metrics.maxSamples) metrics.lags.push(now - at);
    if (metrics.eventLags.length < metrics.maxSamples) metrics.eventLags.push(now - at);
  }
  for (const at of metrics.pendingMoveAt) if (metrics.lags.length < metrics.maxSamples) metrics.lags.push(now - at);
  // per frame that drew something: when, and its worst lag (the benchmark's time line)
  if (metrics.frames.length < metrics.maxSamples) {
    let worst = 0;
    for (const at of metrics.pendingAt) worst = Math.max(worst, now - at);
    for (const at of metrics.pendingMoveAt) worst = Math.max(worst, now - at);
    metrics.frames.push(now, worst);
  }
  metrics.pendingAt.length = 0;
  metrics.pendingMoveAt.length = 0;
}

const store = createStore({ fromSnapshot, fold });

const ctx = {
  i18n,
  t,
  store,
  serverNow,
  conn: null,
  token: null,
  selectedId: null,
  seen: new Set(), // new emergencies the operator has looked at (UI state, not the fold's)
  select(id) {
    ctx.selectedId = id;
    const s = store.state;
    ctx.seen.add(id);
    if (ctx.seen.size > 5000) ctx.seen.delete(ctx.seen.values().next().value);
    const inc = s && (s.incidents.get(id) || s.closed.get(id));
    if (map && inc && inc.position) {
      const around = [inc.position];
      for (const r of s.responders.values()) if (r.status.incident_id === id && r.position) around.push(r.position);
      map.fitPoints(around);
    }
    detail.show(id);
    render();
  },
  toast(text, kind = 'info') {
    const el = $('toast');
    // the server's messages quote names in backticks (`NOPE`): quotation marks read better
    el.textContent = String(text).replace(/`([^`]+)`/g, '“$1”');
    el.className = `toast ${kind}`;
    el.hidden = false;
    clearTimeout(ctx._toastTimer);
    ctx._toastTimer = setTimeout(() => (el.hidden = true), kind === 'error' ? 10000 : 4000);
  },
};

let map = null;
let mapLayer = null;
const queue = createQueue($('queue'), ctx);
const detail = createDetail($('detail'), ctx, (routes) => mapLayer && mapLayer.setRoutes(routes));
const actions = createActions($('dialog'), ctx);
const care = createCareReport($('dialog'), ctx);
const coverage = createCoverage($('coverage'), $('coverage-panel'), ctx, () => map && map.invalidate());
const closures = createClosures(
  $('closures'),
  $('closures-panel'),
  ctx,
  () => map && map.invalidate(),
  (fn) => mapLayer && mapLayer.setClickTool(fn),
);
detail.onAction((action, incident, answers) => actions.open(action, incident, answers));
const sound = createAlertSound($('mute'), ctx);
const filters = createFilters($('filters'), ctx, (next) => subscribe(false, next));

const soundSeen = { state: null, n: 0 };
const viewsAt = { state: null, version: -1 };
/** One console frame: the views (when an event other than a move changed the state, or
 * `views`), the map's markers and the map itself drawn in this same frame, then the lag of
 * every event now on screen. */
function render(views = true) {
  const s = store.state;
  if (!s) return;
  const t0 = performance.now();
  if (views || s !== viewsAt.state || s.version !== viewsAt.version) {
    viewsAt.state = s;
    viewsAt.version = s.version;
    queue.render(s);
    detail.render(s);
    filters.render(s);
    if (s !== soundSeen.state) soundSeen.state = s;
    else if (s.emergenciesOpened > soundSeen.n) sound.newEmergencies(s.emergenciesOpened - soundSeen.n);
    soundSeen.n = s.emergenciesOpened;
  }
  if (mapLayer) {
    mapLayer.render(s);
    map.drawNow();
  }
  recordDrawn();
  if (metrics.renderMs.length < metrics.maxSamples) metrics.renderMs.push(performance.now() - t0);
}
// events are folded as they arrive (cheap); the store says "changed" at most once per
// animation frame, and the console renders then. A costly frame (hundreds of open incidents,
// ten thousand markers) is followed by a pause twice its length, so rendering takes at most
// about a third of the page's time and a burst of events cannot starve it.
let lastRenderAt = 0;
let lastRenderMs = 0;
let renderTimer = 0;
store.subscribe(() => {
  const gap = lastRenderMs > 8 ? Math.min(100, 2 * lastRenderMs) : 0;
  const wait = gap - (performance.now() - lastRenderAt);
  if (wait <= 0) timedRender();
  else if (!renderTimer) renderTimer = setTimeout(() => requestAnimationFrame(timedRender), wait);
});
function timedRender() {
  renderTimer = 0;
  const t0 = performance.now();
  render(false);
  lastRenderAt = t0;
  lastRenderMs = performance.now() - t0;
}

// ---- the link -----------------------------------------------------------------------------

/** Subscribes with the filter in force, or with `next` (the operator applied a new one: in
 * force once the server takes it; refused, the old one stays, fields and all). */
function subscribe(resume, next = null) {
  if (!ctx.conn) return;
  // moves batched: a few `responders_moved` frames a second instead of one frame per move
  // (a server that does not know the field ignores it and sends `responder_moved` frames)
  const msg = { type: 'subscribe', filter: next || filters.filter(), moves: 'batched' };
  if (resume && store.state && store.lastSeq > 0) msg.last_seq = store.lastSeq;
  ctx.conn
    .request(msg)
    .then(() => {
      if (!next) return;
      filters.accepted(next);
      // the snapshot (already applied) leaves out what the filter hides: an incident shown
      // in the detail that is no longer in the stream would not be kept up to date there
      const s = store.state;
      if (ctx.selectedId !== null && s && !s.incidents.has(ctx.selectedId)) {
        ctx.selectedId = null;
        detail.show(null);
        render();
      }
    })
    .catch((e) => {
      if (next) filters.refused();
      if (e.code === 'disconnected') return; // the reconnect subscribes again
      ctx.toast(t('error.server', { message: e.message }), 'error');
    });
}

function onFrame(f) {
  if (!f || typeof f.type !== 'string') return;
  if (f.type === 'snapshot') {
    // first subscribe, a resume the server could not serve, a lag, or a restarted server:
    // the snapshot is the whole truth, rebuild from it
    store.reset(f.state, Number(f.seq ?? f.state?.last_seq ?? 0), f);
    metrics.snapshots[f.reason] = (metrics.snapshots[f.reason] || 0) + 1;
    ctx.rebuilding = false;
    if (f.reason && f.reason !== 'subscribe') ctx.toast(t(`snapshot.${f.reason}`), 'info');
    if (ctx.selectedId !== null) detail.show(ctx.selectedId);
    return;
  }
  if (f.type === 'resumed') {
    if (Number.isFinite(f.from_seq) && f.from_seq !== store.lastSeq) subscribe(false);
    ctx.toast(t('conn.resumed'), 'info');
    return;
  }
  if (f.type === 'responders_moved') {
    // not numbered (moves are never replayed): applied as they come, each entry's `at` timed.
    // Not used for the server's time: a batch leaves up to 50 ms after its newest `at`.
    metrics.moveBatches++;
    if (store.apply(f) && Array.isArray(f.moves)) for (const m of f.moves) if (m && Number.isFinite(m.at)) metrics.pendingMoveAt.push(m.at);
    return;
  }
  if (f.type === 'error' && f.re === undefined) {
    ctx.toast(t('error.server', { message: f.message || f.code }), 'error');
    return;
  }
  if (Number.isFinite(f.seq)) {
    if (store.state && f.seq <= store.lastSeq) {
      // the stream never repeats a seq: the server's history went backwards (a restart that
      // lost it, or a resume it could not honour). Rebuild from a fresh snapshot, once per link.
      if (!ctx.rebuilding) {
        ctx.rebuilding = true;
        subscribe(false);
      }
      return;
    }
    sawServerTime(f.at);
    if (store.apply(f) && Number.isFinite(f.at)) metrics.pendingAt.push(f.at);
    closures.onEvent(f.type);
  }
}

function setStatus(status, info = {}) {
  const el = $('conn');
  el.dataset.state = status;
  ctx.connStatus = status;
  if (status === 'open') el.textContent = t('conn.open');
  else if (status === 'connecting') el.textContent = info.attempt > 1 ? t('conn.reconnecting', { n: info.attempt }) : t('conn.connecting');
  else if (status === 'unauthorized') {
    el.textContent = t('conn.unauthorized');
    if (info.me && info.me.role === 'operator') logout(t('login.noDispatch', { id: String(info.me.id ?? '') }));
    else logout(info.httpStatus === 403 ? t('login.forbidden') : t('login.refused', { message: info.message || '' }));
  } else if (info.gaveUp) el.textContent = t('conn.gaveUp');
  else if (info.retryInMs != null) el.textContent = t('conn.closedRetry', { s: Math.max(1, Math.round(info.retryInMs / 1000)) });
  else el.textContent = t('conn.closed');
  document.body.classList.toggle('offline', status !== 'open');
}

async function login(token) {
  ctx.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  $('care').hidden = false;
  $('coverage').hidden = false;
  $('closures').hidden = false;
  if (!map) {
    try {
      map = await RoadMap.create($('map'), { labels: { zoomIn: t('map.zoomIn'), zoomOut: t('map.zoomOut') } });
      mapLayer = createMapLayer(map, ctx);
      mapLayer.setBackdrop(coverage.draw);
      mapLayer.setRoads(closures.draw);
      render();
    } catch (e) {
      $('map').textContent = t('map.failed', { message: e.message });
    }
  }
  ctx.conn = new Connection({
    token,
    // the socket in a worker: frames reach this page in batches (web/console/socket.js)
    WebSocketImpl: ConsoleSocket,
    probeUrl: '/v1/whoami',
    // the console's stream and actions need the `dispatch` role
    probeAccept: (me) => me.role === 'operator' && Array.isArray(me.roles) && me.roles.includes('dispatch'),
    onStatus: setStatus,
    onFrame,
    onOpen: (welcome) => {
      if (welcome.role && welcome.role !== 'operator') {
        ctx.conn.stop();
        logout(t('login.forbidden'));
        return;
      }
      subscribe(true);
    },
  });
  ctx.conn.start();
  closures.start();
}

function logout(message) {
  if (ctx.conn) ctx.conn.stop();
  ctx.conn = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $('app').hidden = true;
  $('logout').hidden = true;
  $('care').hidden = true;
  coverage.stop();
  $('coverage').hidden = true;
  closures.stop();
  $('closures').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('token').focus();
}

// ---- static text, language --------------------------------------------------------------

function applyTexts() {
  $('toast').hidden = true;
  document.title = t('app.title');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('queue-title').textContent = t('queue.title');
  $('map').setAttribute('aria-label', t('map.label'));
  $('lang').value = i18n.lang;
  if (map) map.setLabels({ zoomIn: t('map.zoomIn'), zoomOut: t('map.zoomOut') });
  if (ctx.connStatus) $('conn').textContent = t(`conn.${ctx.connStatus === 'unauthorized' ? 'unauthorized' : ctx.connStatus}`);
  else $('conn').textContent = t('conn.closed');
  sound.renderButton();
  coverage.render();
  closures.render();
  filters.renderStatic();
  if (mapLayer) mapLayer.renderLegend($('legend'));
  else createMapLayer.legend($('legend'), ctx);
  queue.invalidate();
  detail.invalidate();
  render();
}
i18n.onChange(applyTexts);
$('lang').addEventListener('change', (e) => i18n.setLang(e.target.value));
$('logout').addEventListener('click', () => logout(''));
$('care').addEventListener('click', () => care.open());
$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $('token').value.trim();
  if (token) login(token);
});

// clocks and ages tick every second without waiting for events
setInterval(() => {
  if (store.state && queue.tick(store.state)) {
    if (mapLayer) mapLayer.render(store.state, true);
    render();
  }
  detail.tick();
}, 500);

applyTexts();

// ?access_token= logs in directly; the token then lives only in this tab
const params = new URLSearchParams(location.search);
const fromUrl = params.get('access_token');
if (fromUrl) {
  params.delete('access_token');
  const rest = params.toString();
  history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
}
const token = fromUrl || sessionStorage.getItem(TOKEN_KEY);
if (token) login(token);
else logout('');

// for the browser tests and the benchmark: read-only views of the store, and a way to feed a
// frame through the same path as the server's (an unexpected event must not break the page)
window.__console = {
  store,
  metrics,
  sound,
  coverage,
  closures,
  inject: (frame) => onFrame(frame),
  filter: () => filters.filter(),
  get map() {
    return map;
  },
};
