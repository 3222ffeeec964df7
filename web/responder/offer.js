// The offer screen: what happened, how far and how long, the way on the map, a countdown to
// expiry and two large buttons, accept and decline.
import { renderNotice } from './notice.js';

/** "Someone has fallen" / "Someone asks for help · Meal". */
export function jobWhat(loc, kind, service) {
  const k = kind ? loc.t(`kind.${kind}`) : '';
  const s = service ? loc.t(`service.${service}`) : '';
  return s ? `${k} · ${s}` : k;
}

/**
 * The lowest priority of an emergency (a fall, or a help request for a rescue): the engine
 * gives emergencies 3–5 by care level, welfare visits 2 and services 1 (`Plan::priority` in
 * dispatch-core/src/policy.rs).
 */
export const EMERGENCY_PRIORITY = 3;

/**
 * The priority tag: "Urgent" for an emergency (priority 3–5), else "Not urgent", with
 * "priority n of 5" for screen readers.
 */
export function renderPriority(el, loc, priority) {
  if (priority == null) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  const urgent = priority >= EMERGENCY_PRIORITY;
  el.textContent = loc.t(urgent ? 'priority.urgent' : 'priority.normal');
  el.dataset.urgent = urgent ? 'true' : 'false';
  el.title = loc.t('priority.label', { n: priority });
  el.setAttribute('aria-label', `${el.textContent}, ${el.title}`);
}

/** "about 3 minutes on foot" when the travel mode is known, else "about 3 minutes". */
export function travelTime(loc, etaS, mode) {
  const duration = loc.duration(etaS);
  if (mode === 'foot') return loc.t('offer.time.foot', { duration });
  if (mode === 'car') return loc.t('offer.time.car', { duration });
  return loc.t('offer.time', { duration });
}

export function bindOffer(root, { onAccept, onDecline, onDismiss }) {
  root.querySelector('#offer-accept').addEventListener('click', onAccept);
  root.querySelector('#offer-decline').addEventListener('click', onDecline);
  root.querySelector('#offer-notice .notice-ok').addEventListener('click', onDismiss);
}

export function renderOffer(root, state, loc, now) {
  const o = state.offer;
  if (!o) return;
  root.querySelector('#offer').dataset.offerId = String(o.offer_id);
  root.querySelector('#offer-title').textContent = loc.t('offer.title');
  root.querySelector('#offer-what').textContent = jobWhat(loc, o.kind, o.service);
  renderPriority(root.querySelector('#offer-priority'), loc, o.priority);
  const parts = [];
  if (o.distance_m != null) parts.push(loc.t('offer.away', { distance: loc.distance(o.distance_m) }));
  if (o.eta_s != null) parts.push(travelTime(loc, o.eta_s, o.travel_mode));
  root.querySelector('#offer-distance').textContent = parts.join(' · ');
  root.querySelector('#offer-accept').textContent = loc.t('offer.accept');
  root.querySelector('#offer-decline').textContent = loc.t('offer.decline');
  root.querySelector('#offer-accept').disabled = !!state.pending.accept;
  root.querySelector('#offer-decline').disabled = !!state.pending.decline;
  renderNotice(root.querySelector('#offer-notice'), state, loc);
  renderCountdown(root, state, loc, now);
}

/** Just the countdown, on every tick. */
export function renderCountdown(root, state, loc, now) {
  const o = state.offer;
  if (!o) return;
  const left = Math.max(0, (o.expires_at - now) / 1000);
  const el = root.querySelector('#offer-countdown');
  el.textContent = left > 0 ? loc.t('offer.countdown', { time: loc.countdown(left) }) : loc.t('offer.countdown.over');
  el.dataset.secondsLeft = String(Math.ceil(left));
  const total = o.receivedAt ? Math.max(1, (o.expires_at - o.receivedAt) / 1000) : 30;
  const meter = root.querySelector('#offer-meter');
  meter.style.transform = `scaleX(${Math.min(1, left / total)})`;
}
