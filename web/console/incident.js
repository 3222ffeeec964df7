// An incident's detail: GET /v1/incidents/{id} (the operator's bearer token) read again
// whenever one of its events arrives. Shows the clocks, the actions (assign, cancel,
// resolve), who is assigned with their ETA (and their routes on the map), the elder's care
// level, paired responders and grid worker, the offer waves (asked, declined, expired,
// withdrawn, accepted) and the timeline with every reason as the engine wrote it.

import { esc, kindLabel, clockView, SLA_ORDER } from './queue.js';

const isClosed = (inc) => inc.status === 'resolved' || inc.status === 'cancelled';

export function createDetail(el, ctx, setRoutes) {
  const { t, i18n } = ctx;
  let id = null;
  let data = null; // the server's answer
  let error = null;
  let fetchedFor = null; // the incident's last_at the data reflects
  let inFlight = false;
  let again = false;
  let actionCb = () => {};
  let sig = '';
  let answers = new Map(); // responder → 'declined' | 'expired' on this incident (the assign dialog says so)

  async function load() {
    if (id === null) return;
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    const want = id;
    const inc = ctx.store.state && (ctx.store.state.incidents.get(want) || ctx.store.state.closed.get(want));
    const lastAt = inc ? inc.last_at : null;
    try {
      const res = await fetch(`/v1/incidents/${encodeURIComponent(want)}`, {
        headers: { Authorization: `Bearer ${ctx.token}` },
        cache: 'no-store',
      });
      const body = await res.json().catch(() => null);
      if (want === id) {
        if (res.ok && body) {
          data = body;
          error = null;
        } else {
          data = null;
          error = (body && body.message) || `HTTP ${res.status}`;
        }
        fetchedFor = lastAt;
      }
    } catch (e) {
      if (want === id) error = t('detail.loadFailed', { message: e.message });
    } finally {
      inFlight = false;
    }
    sig = '';
    draw();
    if (again) {
      again = false;
      load();
    }
  }

  function live() {
    const s = ctx.store.state;
    if (!s || id === null) return null;
    return s.incidents.get(id) || s.closed.get(id) || null;
  }

  function routesOf(d, inc) {
    if (!d || !inc || isClosed(inc)) return [];
    const latest = new Map();
    for (const e of d.timeline || []) {
      const ev = e.event || {};
      if (ev.type === 'assigned' && Array.isArray(ev.route)) {
        const arrived = d.arrived && d.arrived[ev.responder_id];
        const eta = e.at + (ev.eta_s || 0) * 1000;
        const label = arrived ? null : t('map.routeEta', { responder: ev.responder_id, time: i18n.timeShort(eta) });
        latest.set(ev.responder_id, { role: ev.role, points: ev.route, label });
      }
    }
    const on = new Set([...(inc.community || []), inc.ambulance].filter(Boolean));
    return [...latest.entries()].filter(([r]) => on.has(r)).map(([, v]) => v);
  }

  function waves(d) {
    const offers = new Map();
    for (const e of d.timeline || []) {
      const ev = e.event || {};
      if (ev.type === 'offer_sent') offers.set(ev.offer_id, { ...ev, at: e.at, outcome: 'asked' });
      const o = offers.get(ev.offer_id);
      if (!o) continue;
      if (ev.type === 'offer_declined') o.outcome = 'declined';
      else if (ev.type === 'offer_expired') o.outcome = 'expired';
      else if (ev.type === 'offer_withdrawn') o.outcome = ev.reason === 'filled' ? 'filled' : 'withdrawn';
    }
    for (const e of d.timeline || []) {
      const ev = e.event || {};
      if (ev.type !== 'assigned') continue;
      for (const o of offers.values()) if (o.responder_id === ev.responder_id && o.outcome === 'asked') o.outcome = 'accepted';
    }
    const byWave = new Map();
    for (const o of offers.values()) {
      const w = o.wave ?? 0;
      if (!byWave.has(w)) byWave.set(w, []);
      byWave.get(w).push(o);
    }
    return [...byWave.entries()].sort((a, b) => a[0] - b[0]);
  }

  function assignedRows(d, inc) {
    const rows = [];
    for (const e of d.timeline || []) {
      const ev = e.event || {};
      if (ev.type !== 'assigned') continue;
      const arrivedAt = d.arrived && d.arrived[ev.responder_id];
      rows.push({ responder: ev.responder_id, role: ev.role, eta: e.at + (ev.eta_s || 0) * 1000, eta_s: ev.eta_s, arrived: arrivedAt, onIt: (inc.community || []).includes(ev.responder_id) || inc.ambulance === ev.responder_id });
    }
    return rows;
  }

  function eventText(ev) {
    const p = { ...ev };
    if (ev.by && typeof ev.by === 'object') p.by = ev.by.id ? `${ev.by.role} ${ev.by.id}` : ev.by.role;
    if (ev.sla) p.sla = t(`sla.${ev.sla}`);
    if (ev.role) p.role = t(`role.${ev.role}`);
    if (ev.type === 'offer_withdrawn' && ev.reason) p.reason = t(`withdrawn.${ev.reason}`);
    if (ev.type === 'care_visit_done') p.when = t(ev.on_time ? 'care.on_time' : 'care.late');
    if (ev.eta_s !== undefined) p.eta = i18n.duration(ev.eta_s);
    if (ev.distance_m !== undefined) p.distance = i18n.distance(ev.distance_m);
    const key = `event.${ev.type}`;
    const label = t(key, p);
    return label === key ? ev.type : label;
  }

  function draw() {
    const inc = live();
    if (id === null) {
      // written once, not every frame (a new DOM every frame is style and layout every frame)
      const none = `none|${i18n.lang}`;
      if (sig === none) return;
      sig = none;
      el.innerHTML = `<p class="hint">${esc(t('detail.none'))}</p>`;
      setRoutes([]);
      return;
    }
    const s = JSON.stringify([id, data && data.timeline && data.timeline.length, error, inc && inc.status, inc && inc.clocks, i18n.lang, inc && inc.community, inc && inc.ambulance]);
    if (s === sig) return;
    sig = s;
    const d = data;
    const summary = inc || (d && d.summary) || null;
    if (!summary) {
      el.innerHTML = `<h2>${esc(t('detail.title', { id }))}</h2><p class="${error ? 'error' : 'hint'}">${esc(error || t('detail.loading'))}</p>`;
      return;
    }
    const closed = isClosed(summary);
    const clocks = SLA_ORDER.map((sla) => (summary.clocks || []).find((c) => c.sla === sla)).filter(Boolean);
    const elder = d && d.elder;
    const responders = ctx.store.state ? ctx.store.state.responders : new Map();
    const who = (rid) => {
      const r = responders.get(rid);
      return `<b>${esc(rid)}</b>${r ? ` <span class="muted">${esc(t(`rkind.${r.kind}`))} · ${esc(t(`rstatus.${r.status.state}`))}</span>` : ''}`;
    };
    // The role only where the kind does not already say it (an ambulance goes as the
    // ambulance, everyone else as community).
    const roleOf = (a) => {
      const r = responders.get(a.responder);
      const usual = r && (r.kind === 'ambulance' ? 'ambulance' : 'community');
      return a.role === usual ? '' : ` · ${esc(t(`role.${a.role}`))}`;
    };
    // Where a responder is: arrived, on the way (ETA), or neither once the incident closed.
    const whereOf = (a) => {
      if (a.arrived) return esc(t('detail.arrivedAt', { time: i18n.time(a.arrived) }));
      if (closed) return esc(t('detail.notArrived'));
      return esc(t('detail.eta', { time: i18n.timeShort(a.eta), in: i18n.duration(a.eta_s) }));
    };
    let html = `<h2>${esc(t('detail.title', { id }))} · ${esc(kindLabel(t, summary))} <span class="prio prio-${esc(summary.priority)}">P${esc(summary.priority)}</span></h2>
      <p class="detail-sub"><span class="status status-${esc(summary.status)}">${esc(t(`status.${summary.status}`))}</span>
        · ${esc(t('queue.elder'))} <b>${esc(summary.elder_id)}</b>
        ${summary.care_level ?? (elder && elder.care_level) ? ` · ${esc(t('queue.care', { n: summary.care_level ?? elder.care_level }))}` : ''}
        · ${esc(t('detail.opened', { time: summary.opened_at ? i18n.time(summary.opened_at) : '–' }))}</p>`;
    if (clocks.length) {
      html += `<ul class="detail-clocks">${clocks.map((c) => `<li class="clock" data-sla="${esc(c.sla)}"><span class="clock-name">${esc(t(`sla.${c.sla}`))}</span> <b class="clock-value"></b></li>`).join('')}</ul>`;
    }
    html += `<div class="actions">
        <button type="button" class="primary" data-testid="action-assign" data-action="assign" ${closed ? 'disabled' : ''}>${esc(t('action.assign'))}</button>
        <button type="button" data-testid="action-resolve" data-action="resolve" ${closed ? 'disabled' : ''}>${esc(t('action.resolve'))}</button>
        <button type="button" class="danger" data-testid="action-cancel" data-action="cancel" ${closed ? 'disabled' : ''}>${esc(t('action.cancel'))}</button>
      </div>`;
    if (error) html += `<p class="error" role="alert">${esc(error)}</p>`;
    if (d) {
      const assigned = assignedRows(d, summary);
      html += `<h3>${esc(t('detail.assigned'))}</h3>`;
      html += assigned.length
        ? `<ul class="plain">${assigned
            .map((a) => `<li data-responder="${esc(a.responder)}">${who(a.responder)}${roleOf(a)} · ${whereOf(a)}${a.onIt || closed ? '' : ` <span class="muted">(${esc(t('detail.released'))})</span>`}</li>`)
            .join('')}</ul>`
        : `<p class="muted">${esc(t('detail.nobodyAssigned'))}</p>`;
      if (elder) {
        // The people behind the id (operators see all of it; unknown shapes are skipped).
        const det = elder.details && typeof elder.details === 'object' ? elder.details : {};
        const text = (v) => (typeof v === 'string' && v.trim() ? v : null);
        const list = (v) => (Array.isArray(v) ? v.filter((x) => typeof x === 'string' && x.trim()) : []);
        const person = [
          ['detail.name', text(det.name)],
          ['detail.address', text(det.address)],
          ['detail.phone', text(det.phone)],
          ['detail.languages', list(det.languages).join(', ') || null],
          ['detail.medical', text(det.medical_notes)],
          ['detail.keyholders', list(det.keyholders).join('; ') || null],
          ['detail.family', list(elder.family).join('; ') || null],
        ].filter(([, v]) => v);
        html += `<h3>${esc(t('detail.elder', { id: elder.id }))}</h3><dl class="facts" data-testid="elder-facts">
          ${person.map(([k, v]) => `<dt>${esc(t(k))}</dt><dd>${esc(v)}</dd>`).join('')}
          <dt>${esc(t('detail.careLevel'))}</dt><dd>${esc(elder.care_level)}</dd>
          <dt>${esc(t('detail.grid'))}</dt><dd>${esc(elder.grid_id)}</dd>
          <dt>${esc(t('detail.paired'))}</dt><dd>${(elder.paired_responders || []).map(who).join(', ') || esc(t('detail.none.short'))}</dd>
          <dt>${esc(t('detail.gridWorkers'))}</dt><dd>${(elder.grid_workers || []).map(who).join(', ') || esc(t('detail.none.short'))}</dd>
          ${(elder.kin || []).length ? `<dt>${esc(t('detail.kin'))}</dt><dd data-testid="elder-kin">${elder.kin.map(who).join(', ')}</dd>` : ''}
        </dl>`;
      }
      const ws = waves(d);
      answers = new Map();
      for (const [, offers] of ws) for (const o of offers) if (o.outcome === 'declined' || o.outcome === 'expired') answers.set(o.responder_id, o.outcome);
      html += `<h3>${esc(t('detail.waves'))}</h3>`;
      html += ws.length
        ? ws
            .map(
              ([w, offers]) => `<h4>${esc(t('detail.wave', { n: w }))}</h4><table class="waves"><thead><tr><th scope="col">${esc(t('detail.responder'))}</th><th scope="col">${esc(t('detail.etaCol'))}</th><th scope="col">${esc(t('detail.outcome'))}</th></tr></thead><tbody>${offers
                .map((o) => `<tr class="outcome-${esc(o.outcome)}"><td>${esc(o.responder_id)}</td><td>${esc(i18n.duration(o.eta_s))} · ${esc(i18n.distance(o.distance_m))}</td><td>${esc(t(`outcome.${o.outcome}`))}</td></tr>`)
                .join('')}</tbody></table>`,
            )
            .join('')
        : `<p class="muted">${esc(t('detail.noOffers'))}</p>`;
      const note = t('detail.reasonsNote');
      html += `<h3>${esc(t('detail.timeline'))}</h3>${note ? `<p class="hint reasons-note">${esc(note)}</p>` : ''}<ol class="timeline">${(d.timeline || [])
        .map((e) => {
          const ev = e.event || {};
          return `<li data-type="${esc(ev.type)}"><time>${esc(i18n.time(e.at))}</time> <span class="ev">${esc(eventText(ev))}</span>${ev.reason && ev.type !== 'offer_withdrawn' ? `<div class="reason">${esc(ev.reason)}</div>` : ''}</li>`;
        })
        .join('')}</ol>`;
    } else if (!error) html += `<p class="hint">${esc(t('detail.loading'))}</p>`;
    el.innerHTML = html;
    for (const b of el.querySelectorAll('button[data-action]')) b.addEventListener('click', () => actionCb(b.dataset.action, live() || summary, answers));
    setRoutes(routesOf(d, summary));
    tick();
  }

  function tick() {
    const inc = live();
    if (!inc) return;
    const now = ctx.serverNow();
    const closed = isClosed(inc);
    for (const li of el.querySelectorAll('.detail-clocks .clock')) {
      const c = (inc.clocks || []).find((x) => x.sla === li.dataset.sla);
      if (!c) continue;
      const v = clockView(t, i18n, c, now, closed);
      li.className = `clock ${v.cls}`;
      li.querySelector('.clock-value').textContent = v.text;
    }
  }

  return {
    show(newId) {
      if (newId !== id) {
        data = null;
        error = null;
        sig = '';
        answers = new Map();
      }
      id = newId;
      draw();
      load();
    },
    render() {
      const inc = live();
      if (id !== null && inc && inc.last_at !== fetchedFor && !inFlight) {
        fetchedFor = inc.last_at;
        clearTimeout(this._t);
        this._t = setTimeout(load, 150);
      }
      draw();
    },
    tick,
    invalidate() {
      sig = '';
    },
    onAction(cb) {
      actionCb = cb;
    },
    reload: load,
  };
}
