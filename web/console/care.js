// The care plans' compliance report for a care manager: "who was not visited", then each
// grid's share of planned visits and calls done on time this week and this month
// (`GET /v1/care-plans/compliance`, operators with the `care` role). Shown in the console's
// dialog; a refusal (an operator without the role) shows the server's own words.

import { esc } from './queue.js';

export function createCareReport(dialog, ctx) {
  const { t, i18n } = ctx;

  // Dates in the deployment's local time (the report's `utc_offset_s`), not the browser's.
  function date(ms, off, withTime = false) {
    const opts = withTime ? { timeZone: 'UTC', dateStyle: 'medium', timeStyle: 'short' } : { timeZone: 'UTC', dateStyle: 'medium' };
    return new Intl.DateTimeFormat(i18n.lang, opts).format(new Date(ms + off * 1000));
  }

  function share(c) {
    if (!c || c.on_time_share === null || c.on_time_share === undefined) return '–';
    return `${Math.round(c.on_time_share * 100)} %`;
  }

  function counts(c) {
    if (!c) return '';
    return esc(t('care.counts', { on_time: c.on_time, late: c.late, missed: c.missed, pending: c.pending }));
  }

  function body(r) {
    const off = Number(r.utc_offset_s) || 0;
    const overdue = (r.not_visited || []).map((o) => `<tr>
        <td><b>${esc(o.elder_id)}</b></td>
        <td>${esc(o.grid_id)}</td>
        <td>${esc(t(`care.kind.${o.kind}`))} · ${esc(t(`care.period.${o.period}`))} <span class="muted">(${esc(o.item_id)})</span></td>
        <td>${esc(o.planned_responder || '–')}</td>
        <td>${o.last_done ? esc(date(o.last_done, off, true)) : esc(t('care.never'))}</td>
        <td>${esc(i18n.duration(Math.round((o.overdue_ms || 0) / 1000)))}</td>
        <td>${esc(String(o.missed))}</td>
      </tr>`).join('');
    const grids = Object.entries(r.grids || {}).map(([g, wm]) => `<tr>
        <td><b>${esc(g)}</b></td>
        <td>${esc(share(wm.week))}</td><td class="muted">${counts(wm.week)}</td>
        <td>${esc(share(wm.month))}</td><td class="muted">${counts(wm.month)}</td>
      </tr>`).join('');
    return `<p class="hint">${esc(t('care.span', { from: date(r.week.from, off), to: date(r.week.to - 1, off) }))}</p>
      <h3>${esc(t('care.notVisited'))}</h3>
      ${overdue
        ? `<table class="care-table" data-testid="care-not-visited"><thead><tr>
            <th>${esc(t('care.col.elder'))}</th><th>${esc(t('care.col.grid'))}</th><th>${esc(t('care.col.item'))}</th>
            <th>${esc(t('care.col.planned'))}</th><th>${esc(t('care.col.lastDone'))}</th><th>${esc(t('care.col.overdue'))}</th>
            <th>${esc(t('care.col.missed'))}</th></tr></thead><tbody>${overdue}</tbody></table>`
        : `<p data-testid="care-not-visited" class="ok-text">${esc(t('care.allVisited'))}</p>`}
      <h3>${esc(t('care.byGrid'))}</h3>
      ${grids
        ? `<table class="care-table" data-testid="care-grids"><thead><tr><th>${esc(t('care.col.grid'))}</th>
            <th>${esc(t('care.col.week'))}</th><th></th><th>${esc(t('care.col.month'))}</th><th></th></tr></thead><tbody>${grids}</tbody></table>`
        : `<p data-testid="care-grids" class="hint">${esc(t('care.noPlans'))}</p>`}`;
  }

  async function open() {
    dialog.innerHTML = `<form method="dialog" class="dialog-form care-report" data-testid="care-report">
      <h2>${esc(t('care.title'))}</h2>
      <div class="care-body"><p class="hint">${esc(t('care.loading'))}</p></div>
      <p class="error" role="alert" aria-live="assertive"></p>
      <div class="dialog-buttons"><button type="button" class="close">${esc(t('dialog.close'))}</button></div>
    </form>`;
    dialog.querySelector('.close').addEventListener('click', () => dialog.close());
    if (!dialog.open) dialog.showModal();
    const place = dialog.querySelector('.care-body');
    try {
      const res = await fetch('/v1/care-plans/compliance', {
        headers: { Authorization: `Bearer ${ctx.token}` },
        cache: 'no-store',
      });
      const r = await res.json().catch(() => null);
      if (!res.ok || !r || !r.week) {
        place.innerHTML = '';
        dialog.querySelector('.error').textContent = t('error.refused', { message: (r && r.message) || `HTTP ${res.status}` });
        return;
      }
      place.innerHTML = body(r);
    } catch (e) {
      place.innerHTML = '';
      dialog.querySelector('.error').textContent = t('error.refused', { message: e.message });
    }
  }

  return { open };
}
