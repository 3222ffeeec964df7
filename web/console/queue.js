// The queue: open incidents by urgency (unseen new emergencies first, then what still waits
// for someone before what is in hand, then priority, then the oldest: `queueOrder`), each
// row with kind, elder id and care level, age, status and the live promise clocks (first accept, community at the door, ambulance) counting down as m:ss, ✓ when met,
// a breach mark only once the server's `sla_breached` arrived. Rows are reused between
// renders and rebuilt only when their incident changed, and only when in view; the clocks of
// the rows in view tick twice a second from the estimated server time (text only).

import { queueOrder, isNew } from './state.js';

/** Rows kept on screen; the rest are counted below them. */
export const MAX_ROWS = 100;

export const SLA_ORDER = ['first_accept', 'community_on_scene', 'ambulance_on_scene', 'job_accept', 'job_on_scene'];

export function kindLabel(t, inc) {
  if (inc.kind === 'help' && inc.service) return t(`service.${inc.service}`);
  return t(`kind.${inc.kind}`);
}

/**
 * The clock's text and state class for the given server time. On a closed incident (`closed`)
 * a clock neither met nor breached has stopped: it no longer counts down.
 */
export function clockView(t, i18n, c, now, closed = false) {
  if (c.breached) return { text: `✗ ${t('clock.breached')}`, cls: 'breached' };
  if (c.met_at !== null && c.met_at !== undefined) return { text: `✓ ${t('clock.met')}`, cls: 'met' };
  if (closed) return { text: `– ${t('clock.stopped')}`, cls: 'stopped' };
  const left = c.deadline - now;
  return { text: i18n.clock(left), cls: left <= 10000 ? 'urgent' : 'running' };
}

export function createQueue(el, ctx) {
  const { t, i18n } = ctx;
  // id → { li, inc, sig, visible, stale, age, ageText, clocks: [{ span, value, sla, text, cls }] }
  const rows = new Map();
  let empty = null;
  let more = null;
  let lastFresh = 0;
  let title = '';

  // Which rows are in view (or within one queue height of it): only those are rebuilt when
  // their incident changes and ticked by the clocks; the others are marked stale and rebuilt
  // when they come near the view (the observer) or as soon as the queue scrolls (before that
  // frame is painted). With a hundred rows and a few in view, a busy frame touches a handful.
  const io =
    typeof IntersectionObserver === 'function'
      ? new IntersectionObserver(
          (entries) => {
            for (const en of entries) {
              const r = en.target._row;
              if (!r) continue;
              r.visible = en.isIntersecting;
              if (r.visible && r.stale) build(r);
              else if (r.visible) tickRow(r, ctx.serverNow());
            }
          },
          { root: el, rootMargin: '100% 0px' },
        )
      : null;
  // one click handler for every row (rows are rebuilt; no listener per build)
  el.addEventListener('click', (e) => {
    const b = e.target.closest && e.target.closest('button.row-main');
    const r = b && b.parentElement && b.parentElement._row;
    if (r) ctx.select(r.inc.id);
  });
  el.addEventListener(
    'scroll',
    () => {
      for (const r of rows.values()) if (r.stale) build(r);
    },
    { passive: true },
  );

  // what a row shows, but the clocks' time (ticked separately): rebuilt only when this changes
  function rowSig(inc, selected, isNew) {
    return `${inc.rev || 0}|${selected ? 1 : 0}|${isNew ? 1 : 0}|${i18n.lang}`;
  }

  function build(r) {
    const { li, inc, selected, fresh: isNew } = r;
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
      ${inc.needs_operator ? `<span class="warn needs-operator" data-testid="needs-operator" title="${esc(inc.needs_operator.message)}">☎ ${esc(t('queue.needsOperator'))}: ${esc(inc.needs_operator.message)}</span>` : ''}
      ${inc.nobody ? `<span class="warn" title="${esc(inc.nobody)}">⚠ ${esc(t('queue.nobody'))}</span>` : ''}
      ${inc.escalated ? `<span class="escalated" title="${esc(inc.escalated)}">▲ ${esc(t('queue.escalated'))}</span>` : ''}
    </button>`;
    // the elements the clocks tick, found once per build (not per tick)
    r.age = li.querySelector('.age');
    r.ageText = '';
    r.clocks = [...li.querySelectorAll('.clock')].map((span) => ({ span, value: span.querySelector('.clock-value'), sla: span.dataset.sla, text: '', cls: '' }));
    r.stale = false;
    tickRow(r, ctx.serverNow());
  }

  /** The clocks' and the age's text for `now`, written only where it changed. */
  function tickRow(r, now) {
    const inc = r.inc;
    if (r.age && inc.opened_at) {
      const a = i18n.clock(now - inc.opened_at);
      if (a !== r.ageText) r.age.textContent = r.ageText = a;
    }
    for (const k of r.clocks) {
      const c = inc.clocks.find((x) => x.sla === k.sla);
      if (!c) continue;
      const v = clockView(t, i18n, c, now);
      if (v.cls !== k.cls) k.span.className = `clock ${(k.cls = v.cls)}`;
      if (v.text !== k.text) k.value.textContent = k.text = v.text;
    }
  }

  return {
    /** The rows in queue order. A row is (re)built in this frame when it is new (a new
     * emergency is on top, highlighted, in the frame its event arrives) or its incident
     * changed while it is in view; out of view it is only marked stale. */
    render(state) {
      const now = ctx.serverNow();
      const all = queueOrder(state, now, ctx.seen);
      // the most urgent MAX_ROWS are on screen (the filters narrow the rest down): a bounded
      // DOM keeps the page responsive with hundreds of open incidents
      const order = all.length > MAX_ROWS ? all.slice(0, MAX_ROWS) : all;
      const keep = new Set();
      for (const inc of order) keep.add(inc.id);
      // rows that leave go first, so the rows after them keep their places (a moved row is
      // laid out and painted again, and its highlight animation restarts)
      for (const [id, r] of rows) {
        if (keep.has(id)) continue;
        r.li.remove();
        if (io) io.unobserve(r.li);
        rows.delete(id);
      }
      let prev = null;
      for (const inc of order) {
        let r = rows.get(inc.id);
        if (!r) {
          const li = document.createElement('li');
          li.setAttribute('data-testid', 'incident-row');
          r = { li, inc, sig: '', visible: true, stale: false, age: null, ageText: '', clocks: [] };
          li._row = r;
          rows.set(inc.id, r);
          if (io) io.observe(li);
        }
        r.inc = inc;
        r.selected = ctx.selectedId === inc.id;
        r.fresh = isNew(state, inc, now, ctx.seen);
        const sig = rowSig(inc, r.selected, r.fresh);
        if (sig !== r.sig || r.state !== state) {
          r.sig = sig;
          r.state = state;
          if (r.visible) build(r);
          else r.stale = true;
        }
        const want = prev ? prev.nextSibling : el.firstChild;
        if (want !== r.li) el.insertBefore(r.li, want);
        prev = r.li;
      }
      if (all.length > order.length) {
        if (!more) {
          more = document.createElement('li');
          more.className = 'more';
        }
        const text = t('queue.more', { n: i18n.number(all.length - order.length) });
        if (more.textContent !== text) more.textContent = text;
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
      const text = t('queue.titleN', { n: i18n.number(all.length) });
      if (text !== title) {
        const h = document.getElementById('queue-title');
        if (h) h.textContent = title = text;
      }
    },
    /** The clocks and ages of the rows in view, from the estimated server time; says whether
     * the number of highlighted new emergencies changed (a highlight ends after a minute even
     * if nobody looked), so the views render again. */
    tick(state) {
      const now = ctx.serverNow();
      for (const r of rows.values()) if (r.visible && !r.stale) tickRow(r, now);
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
