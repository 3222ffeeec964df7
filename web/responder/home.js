// The home screen: hello, the one big on-duty / off-duty switch, where the phone's position
// stands, and the time bank.
import { renderNotice } from './notice.js';
import { renderTimeBank } from './timebank.js';

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

  const explain = loc.t(on ? (state.resting ? 'duty.resting' : 'duty.on.explain') : 'duty.off.explain');
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

  renderTimeBank(root, state, loc);
}
