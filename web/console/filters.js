// The filters of the protocol's `subscribe`: grids (a comma-separated list; the grids seen so
// far are offered as suggestions) and minimum priority. Applying subscribes again with the
// new filter (a fresh snapshot replaces the state); a refused filter (e.g. an unknown grid)
// shows the server's message, and the fields show the filter still in force again.

export function createFilters(form, ctx, resubscribe) {
  const { t } = ctx;
  const known = new Set();
  let current = {}; // the filter in force: the last one the server took
  let knownSig = '';
  let lastState = null;
  let lastScan = 0;

  form.innerHTML = `
    <label for="f-grids" class="f-grids-label"></label>
    <input id="f-grids" name="grids" list="f-grids-list" autocomplete="off" size="14">
    <datalist id="f-grids-list"></datalist>
    <label for="f-prio" class="f-prio-label"></label>
    <select id="f-prio" name="min_priority"></select>
    <button type="submit" class="f-apply"></button>
    <button type="button" class="f-clear"></button>`;
  const grids = form.querySelector('#f-grids');
  const prio = form.querySelector('#f-prio');

  function parse() {
    const list = grids.value
      .split(/[\s,，;；]+/)
      .map((g) => g.trim())
      .filter(Boolean);
    const f = {};
    if (list.length) f.grids = [...new Set(list)];
    const p = Number(prio.value);
    if (p > 1) f.min_priority = p;
    return f;
  }

  function show(f) {
    grids.value = (f.grids || []).join(', ');
    prio.value = String(f.min_priority || 1);
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    resubscribe(parse());
  });
  form.querySelector('.f-clear').addEventListener('click', () => {
    show({});
    resubscribe({});
  });

  return {
    /** The filter in force (what a reconnect subscribes with). */
    filter: () => ({ ...current }),
    /** The server took `f`: it is in force. */
    accepted(f) {
      current = { ...f };
    },
    /** The server refused the filter asked for: the fields show the one in force again. */
    refused() {
      show(current);
    },
    renderStatic() {
      form.setAttribute('aria-label', t('filters.label'));
      form.querySelector('.f-grids-label').textContent = t('filters.grids');
      grids.placeholder = t('filters.gridsPlaceholder');
      form.querySelector('.f-prio-label').textContent = t('filters.minPriority');
      const v = prio.value || '1';
      prio.innerHTML = [1, 2, 3, 4, 5].map((p) => `<option value="${p}">${p === 1 ? t('filters.anyPriority') : t('filters.priorityAtLeast', { p })}</option>`).join('');
      prio.value = v;
      form.querySelector('.f-apply').textContent = t('filters.apply');
      form.querySelector('.f-clear').textContent = t('filters.clear');
    },
    render(state) {
      // the grids seen so far, looked for at most every 2 s (ten thousand responders)
      const now = Date.now();
      if (state === lastState && now - lastScan < 2000) return;
      lastState = state;
      lastScan = now;
      for (const r of state.responders.values()) if (r.grid_id) known.add(r.grid_id);
      const sig = [...known].sort().join(',');
      if (sig !== knownSig) {
        knownSig = sig;
        form.querySelector('datalist').innerHTML = [...known].sort().map((g) => `<option value="${g.replace(/"/g, '&quot;')}"></option>`).join('');
      }
    },
  };
}
