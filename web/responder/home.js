// The home screen: hello, the one big on-duty / off-duty switch, where the phone's position
// stands, a family member's news of their elder, and the time bank.
import { renderNotice } from './notice.js';
import { renderTimeBank } from './timebank.js';
import { kinUrgent } from './store.js';

export function bindHome(root, { onDuty, onLogout, onDismiss }) {
  root.querySelector('#duty').addEventListener('click', onDuty);
  root.querySelector('#logout').addEventListener('click', onLogout);
  root.querySelector('#home-notice .notice-ok').addEventListener('click', onDismiss);
}

export function renderHome(root, state, loc) {
  root.querySelector('#hello').textContent = state.responderId
    ? loc.t('home.hello', { id: state.responderId })
    : loc.t('home.hello_unknown');
  renderNotice(root.querySelector('#home-notice'), state, loc);

  const duty = root.querySelector('#duty');
  const on = state.duty;
  duty.setAttribute('aria-checked', on ? 'true' : 'false');
  duty.querySelector('.duty-label').textContent = loc.t(on ? 'duty.on' : 'duty.off');
  duty.querySelector('.duty-hint').textContent = loc.t(on ? 'duty.on.hint' : 'duty.off.hint');
  duty.setAttribute('aria-busy', state.pending.duty ? 'true' : 'false');

  const resting = state.resting && !(state.restingUntil && Date.now() >= state.restingUntil);
  const restKey = state.restingUntil ? 'duty.restingUntil' : 'duty.resting';
  const explain = on
    ? loc.t(resting ? restKey : 'duty.on.explain', { time: state.restingUntil ? loc.clock(state.restingUntil) : '' })
    : loc.t('duty.off.explain');
  root.querySelector('#duty-explain').textContent = explain;

  let pos = '';
  if (on) {
    if (state.positionError) pos = loc.t(`position.${state.positionError}`);
    else if (state.positionSentAt) pos = loc.t('position.sent', { time: loc.clock(state.positionSentAt) });
    else pos = loc.t('position.waiting');
  }
  root.querySelector('#position-line').textContent = pos;
  const offline = root.querySelector('#offline-line');
  let line = '';
  if (state.connection === 'offline' || state.connection === 'reconnecting') line = loc.t(on ? 'home.offline.on' : 'home.offline');
  if (state.connection === 'replaced') line = loc.t('home.replaced');
  offline.hidden = !line;
  offline.textContent = line;

  renderFamily(root, state, loc);
  renderTimeBank(root, state, loc);
}

/** A family member's card: each recent incident of their elder, at its latest step. */
function renderFamily(root, state, loc) {
  const card = root.querySelector('#family');
  card.hidden = state.family.length === 0;
  const list = root.querySelector('#family-list');
  list.replaceChildren(
    ...state.family.map((f) => {
      const li = document.createElement('li');
      li.dataset.testid = 'kin-update';
      li.dataset.stage = f.stage;
      li.dataset.incident = String(f.incident_id);
      li.className = `kin kin-${f.stage}`;
      const what = document.createElement('strong');
      what.textContent = loc.t(`kin.kind.${f.kind}`, { id: f.elder_id ?? '' });
      const step = document.createElement('span');
      const who = f.responder_kind ? loc.t(`kin.who.${f.responder_kind}`) : '';
      step.textContent =
        f.stage === 'coming' && f.eta_s != null
          ? loc.t('kin.coming.eta', { who, duration: loc.duration(f.eta_s) })
          : loc.t(f.stage === 'opened' && !kinUrgent(f) ? 'kin.opened.planned' : `kin.${f.stage}`, { who });
      const when = document.createElement('small');
      when.textContent = f.at != null ? loc.clock(f.at) : '';
      li.append(what, step, when);
      return li;
    }),
  );
}
