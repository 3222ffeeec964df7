// A short message on the current screen: an offer that went away, a job that closed, a refusal.

export function renderNotice(el, state, loc) {
  const n = state.notice;
  if (!n) {
    el.hidden = true;
    return;
  }
  const params = { ...n.params };
  if (n.key === 'bank.credited') params.minutes = loc.minutes(n.params.minutes);
  if (n.key === 'error.queued') params.step = loc.t(n.params.step); // the button's own words
  el.querySelector('.notice-text').textContent = loc.t(n.key, params);
  el.dataset.tone = n.tone;
  el.setAttribute('role', n.tone === 'error' ? 'alert' : 'status');
  el.hidden = false;
}
