// The queue: open incidents by urgency (unseen new emergencies first, then priority, then the
// oldest), each row with kind, elder id and care level, age, status and the live promise
// clocks (first accept, community at the door, ambulance) counting down as m:ss, ✓ when met,
// a breach mark only once the server's `sla_breached` arrived. Rows are reused between
// renders; the clocks tick twice a second from the estimated server time.

import { queueOrder, isNew } from './state.js';

/** Rows kept on screen; the rest are counted below them. */
export const MAX_ROWS = 100;

export const SLA_ORDER = ['first_accept', 'community_on_scene', 'ambulance_on_scene'];

export function kindLabel(t, inc) {
  if (inc.kind === 'help' && inc.service) return t(`service.${inc.service}`);
  return t(`kind.${inc.kind}`);
}

/** The clock's text and state class for the given server time. */
export function clockView(t, i18n, c, now) {
  if (c.breached) return { text: `✗ ${t('clock.breached')}`, cls: 'breached' };
  if (c.met_at !== null && c.met_at !== undefined) return { text: `✓ ${t('clock.met')}`, cls: 'met' };
  const left = c.deadline - now;
  return { text: i18n.clock(left), cls: left <= 10000 ? 'urgent' : 'running' };
}

export function createQueue(el, ctx) {
  const { t, i18n } = ctx;
  const rows = new Map(); // id → { li, sig }
  let empty = null;
  let more = null;
  let lastFresh = 0;

  function rowSig(inc, selected, isNew) {
    return JSON.stringify([inc.priority, inc.kind, inc.service, inc.elder_id, inc.care_level, inc.status, inc.clocks, inc.nobody, inc.escalated, selected, isNew, i18n.lang]);
  }

  function build(li, inc, selected, isNew) {
    li.className = `row prio-${inc.priority}${selected ? ' selected' : ''}${isNew ? ' new' : ''}`;
    li.dataset.id = inc.id;
    const care = inc.care_level ? t('queue.care', { n: inc.care_level }) : '';
    const clocks = SLA_ORDER.map((sla) => inc.clocks.find((c) => c.sla === sla))
      .filter(Boolean)
      .map((c) => `<span class="clock" data-sla="${c.sla}"><span class="clock-name">${esc(t(`sla.${c.sla}`))}</span> <b class="clock-value"></b></span>`)
      .join('');
    li.innerHTML = `<button type="button" class="row-main" aria-current="${selected ? 'true' : 'false'}">
      <span class="row-head">
        <span class="prio" title="${esc(t('queue.priority'))}">P${esc(inc.priority)}</span>
        <span class="kind">${esc(kindLabel(t, inc))}</span>
        ${isNew ? `<span class="badge-new">${esc(t('queue.new'))}</span>` : ''}
        <span class="age" title="${esc(t('queue.age'))}"></span>
      </span>
      <span class="row-sub">
        <span class="elder">${esc(t('queue.elder'))} <b>${esc(inc.elder_id)}</b></span>
        ${care ? `<span class="care">${esc(care)}</span>` : ''}
        <span class="status status-${esc(inc.status)}">${esc(t(`status.${inc.status}`))}</span>
        <span class="inc-id">#${esc(inc.id)}</span>
      </span>
      ${clocks ? `<span class="clocks">${clocks}</span>` : ''}
      ${inc.nobody ? `<span class="warn" title="${esc(inc.nobody)}">⚠ ${esc(t('queue.nobody'))}</span>` : ''}
      ${inc.escalated ? `<span class="escalated" title="${esc(inc.escalated)}">▲ ${esc(t('queue.escalated'))}</span>` : ''}
    </button>`;
    li.querySelector('button').addEventListener('click', () => ctx.select(inc.id));
    tickRow(li, inc);
  }

  function tickRow(li, inc) {
    const now = ctx.serverNow();
    const age = li.querySelector('.age');
    if (age && inc.opened_at) age.textContent = i18n.clock(now - inc.opened_at);
    for (const span of li.querySelectorAll('.clock')) {
      const c = inc.clocks.find((x) => x.sla === span.dataset.sla);
      if (!c) continue;
      const v = clockView(t, i18n, c, now);
      span.className = `clock ${v.cls}`;
      span.querySelector('.clock-value').textContent = v.text;
    }
  }

  return {
    render(state) {
      const now = ctx.serverNow();
      const all = queueOrder(state, now, ctx.seen);
      // the most urgent MAX_ROWS are on screen (the filters narrow the rest down): a bounded
      // DOM keeps the page responsive with hundreds of open incidents
      const order = all.length > MAX_ROWS ? all.slice(0, MAX_ROWS) : all;
      const seen = new Set();
      let prev = null;
      for (const inc of order) {
        seen.add(inc.id);
        const selected = ctx.selectedId === inc.id;
        const fresh = isNew(state, inc, now, ctx.seen);
        let r = rows.get(inc.id);
        if (!r) {
          const li = document.createElement('li');
          li.dataset.testid = 'incident-row';
          li.setAttribute('data-testid', 'incident-row');
          r = { li, sig: '' };
          rows.set(inc.id, r);
        }
        const sig = rowSig(inc, selected, fresh);
        if (sig !== r.sig) {
          build(r.li, inc, selected, fresh);
          r.sig = sig;
        }
        r.inc = inc;
        const want = prev ? prev.nextSibling : el.firstChild;
        if (want !== r.li) el.insertBefore(r.li, want);
        prev = r.li;
      }
      for (const [id, r] of rows) {
        if (!seen.has(id)) {
          r.li.remove();
          rows.delete(id);
        }
      }
      if (all.length > order.length) {
        if (!more) {
          more = document.createElement('li');
          more.className = 'more';
        }
        more.textContent = t('queue.more', { n: i18n.number(all.length - order.length) });
        if (more !== el.lastChild) el.appendChild(more);
      } else if (more && more.isConnected) more.remove();
      if (!order.length) {
        if (!empty) {
          empty = document.createElement('li');
          empty.className = 'empty';
        }
        empty.textContent = t('queue.empty');
        if (!empty.isConnected) el.appendChild(empty);
      } else if (empty && empty.isConnected) empty.remove();
      const title = document.getElementById('queue-title');
      if (title) title.textContent = t('queue.titleN', { n: i18n.number(all.length) });
    },
    tick(state) {
      for (const r of rows.values()) if (r.inc) tickRow(r.li, r.inc);
      // a new emergency's highlight ends after a minute even if nobody looked: say when the
      // number of highlighted ones changed, so the views render again
      const now = ctx.serverNow();
      let fresh = 0;
      for (const id of state.newIds) {
        const inc = state.incidents.get(id);
        if (inc && isNew(state, inc, now, ctx.seen)) fresh++;
      }
      const changed = fresh !== lastFresh;
      lastFresh = fresh;
      return changed;
    },
    invalidate() {
      for (const r of rows.values()) r.sig = '';
    },
  };
}

export function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}
