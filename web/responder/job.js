// The assigned screen: the way to the door, the time it takes, who the person is and what the
// job needs at the door (name, address, phone, languages, keyholders; an ambulance crew also
// the medical notes: what the server sends, DESIGN §5), and the buttons arrived, need an
// ambulance, and complete.
import { jobWhat, renderPriority } from './offer.js';
import { renderNotice } from './notice.js';

/** The length of a route in metres (the assigned frame carries the route but not its length). */
export function routeLengthM(route, distanceM) {
  let m = 0;
  for (let i = 1; i < route.length; i++) m += distanceM(route[i - 1], route[i]);
  return m;
}

export function bindJob(root, { onArrived, onComplete, onAmbulance, onDismiss }) {
  root.querySelector('#job-arrived').addEventListener('click', onArrived);
  root.querySelector('#job-complete').addEventListener('click', onComplete);
  root.querySelector('#job-ambulance').addEventListener('click', onAmbulance);
  root.querySelector('#job-notice .notice-ok').addEventListener('click', onDismiss);
}

export function renderJob(root, state, loc, { distanceM }) {
  const j = state.job;
  if (!j) return;
  root.querySelector('#job-title').textContent = loc.t(j.arrived ? 'assigned.title.arrived' : 'assigned.title');
  renderNotice(root.querySelector('#job-notice'), state, loc);
  root.querySelector('#job-what').textContent = jobWhat(loc, j.kind, j.service);
  renderPriority(root.querySelector('#job-priority'), loc, j.priority);
  const name = typeof j.elder?.name === 'string' ? j.elder.name : null;
  root.querySelector('#job-person').textContent = !j.elder_id
    ? ''
    : name
      ? loc.t('assigned.person.named', { name, id: j.elder_id })
      : loc.t('assigned.person', { id: j.elder_id });
  renderDoor(root.querySelector('#job-door'), j.elder, loc);
  let eta = '';
  if (j.arrived) eta = loc.t('assigned.eta.arrived');
  else if (j.eta_s != null) {
    const len = routeLengthM(j.route, distanceM);
    eta = loc.t('assigned.eta', { duration: loc.duration(j.eta_s), distance: loc.distance(len) });
  }
  root.querySelector('#job-eta').textContent = eta;

  const arrived = root.querySelector('#job-arrived');
  arrived.textContent = loc.t('assigned.arrived');
  arrived.hidden = j.arrived;
  arrived.disabled = !!state.pending.arrived;

  const complete = root.querySelector('#job-complete');
  complete.textContent = loc.t('assigned.complete');
  complete.disabled = !j.arrived || !!state.pending.complete;
  root.querySelector('#job-complete-hint').textContent = j.arrived ? '' : loc.t('assigned.complete.hint');

  const amb = root.querySelector('#job-ambulance');
  amb.textContent = loc.t(j.ambulanceRequested ? 'assigned.ambulance_requested' : 'assigned.need_ambulance');
  // An ambulance crew does not call for an ambulance; a volunteer asks once.
  amb.hidden = j.role === 'ambulance';
  amb.disabled = j.ambulanceRequested || !!state.pending.ambulance;
}

/** The facts for the door as a list of label and value; unknown or malformed fields are skipped. */
export function doorFacts(elder) {
  if (!elder || typeof elder !== 'object') return [];
  const text = (v) => (typeof v === 'string' && v.trim() ? v : null);
  const list = (v) => (Array.isArray(v) ? v.filter((x) => typeof x === 'string' && x.trim()) : []);
  const facts = [];
  if (text(elder.address)) facts.push(['assigned.door.address', elder.address]);
  if (text(elder.phone)) facts.push(['assigned.door.phone', elder.phone]);
  if (list(elder.languages).length) facts.push(['assigned.door.languages', list(elder.languages).join(', ')]);
  for (const k of list(elder.keyholders)) facts.push(['assigned.door.keyholder', k]);
  if (text(elder.medical_notes)) facts.push(['assigned.door.medical', elder.medical_notes]);
  return facts;
}

function renderDoor(dl, elder, loc) {
  if (!dl) return;
  dl.replaceChildren();
  for (const [label, value] of doorFacts(elder)) {
    const dt = document.createElement('dt');
    dt.textContent = loc.t(label);
    const dd = document.createElement('dd');
    if (label === 'assigned.door.phone') {
      // A phone number is a tap to call (a large target, like every button).
      const a = document.createElement('a');
      a.href = `tel:${value.replace(/[^0-9+]/g, '')}`;
      a.textContent = value;
      a.className = 'call';
      dd.append(a);
    } else {
      dd.textContent = value;
    }
    dl.append(dt, dd);
  }
  dl.hidden = dl.childElementCount === 0;
}
