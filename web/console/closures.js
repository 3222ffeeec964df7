// Road closures on the console: every closure laid (GET /v1/closures) drawn on the map —
// closed roads red, slowed ones purple and dashed (amber is a main road), a closure whose window has not opened yet
// grey and dashed — and a panel to lay one (draw a line along the road by clicking the map,
// choose closed or slowed, who it holds for and for how long) or to lift one. Laying and
// lifting are dispatchers' (the server answers anyone else with its own words, shown here).
// The list is fetched again when a `road_closed` or `road_reopened` event arrives, and every
// minute (a window opening changes nothing on the wire).

import { esc } from './queue.js';

export const REFRESH_MS = 60000;
const HOUR_MS = 3600000;

export function createClosures(button, panel, ctx, invalidate, setClickTool) {
  const { t, i18n } = ctx;
  let features = [];
  let error = null; // the list could not be fetched
  let refused = null; // laying or lifting was refused (kept until the next try)
  let open = false;
  let drawing = null; // { points: [{lat, lon}] } while a closure is being drawn
  let timer = null;
  let drawn = 0;
  let busy = false;

  const headers = () => ({ Authorization: `Bearer ${ctx.token}`, 'Content-Type': 'application/json' });

  function style(p) {
    if (!p.holding) return { color: '#5f6368', dash: [6, 5] };
    if (p.effect && p.effect.type === 'slow') return { color: '#6a1b9a', dash: [8, 4] };
    return { color: '#c5221f', dash: [] };
  }

  /** Draws the closures (and a closure being drawn) over the coverage, under the routes. */
  function draw(c, project) {
    drawn = 0;
    for (const f of features) {
      const lines = f.geometry && Array.isArray(f.geometry.coordinates) ? f.geometry.coordinates : [];
      const s = style(f.properties || {});
      c.setLineDash(s.dash);
      c.lineCap = 'round';
      for (const line of lines) {
        if (!Array.isArray(line) || line.length < 2 || !line.every((pt) => Array.isArray(pt) && pt.length === 2)) continue;
        c.beginPath();
        line.forEach(([lon, lat], i) => {
          const p = project(lat, lon);
          if (i === 0) c.moveTo(p.x, p.y);
          else c.lineTo(p.x, p.y);
        });
        c.strokeStyle = '#ffffff';
        c.lineWidth = 9;
        c.stroke();
        c.strokeStyle = s.color;
        c.lineWidth = 6;
        c.stroke();
        drawn += 1;
      }
      c.setLineDash([]);
    }
    if (drawing && drawing.points.length) {
      c.setLineDash([4, 4]);
      c.beginPath();
      drawing.points.forEach((pt, i) => {
        const p = project(pt.lat, pt.lon);
        if (i === 0) c.moveTo(p.x, p.y);
        else c.lineTo(p.x, p.y);
      });
      c.strokeStyle = '#202124';
      c.lineWidth = 3;
      c.stroke();
      c.setLineDash([]);
      for (const pt of drawing.points) {
        const p = project(pt.lat, pt.lon);
        c.beginPath();
        c.arc(p.x, p.y, 5, 0, Math.PI * 2);
        c.fillStyle = '#202124';
        c.fill();
      }
    }
  }

  async function refresh() {
    try {
      const res = await fetch('/v1/closures', { headers: headers(), cache: 'no-store' });
      const body = await res.json().catch(() => null);
      if (res.ok && body && Array.isArray(body.features)) {
        features = body.features.filter((f) => f && f.properties && typeof f.id === 'string' && Number.isFinite(f.properties.ends_at));
        error = null;
      } else {
        error = t('error.refused', { message: (body && body.message) || `HTTP ${res.status}` });
      }
    } catch (e) {
      error = t('error.refused', { message: e.message });
    }
    render();
    invalidate();
  }

  function effectText(p) {
    if (p.effect && p.effect.type === 'slow') return t('closures.slow', { factor: p.effect.factor });
    return t('closures.closed');
  }

  function modesText(p) {
    return (p.modes || []).map((m) => t(`closures.mode.${m}`)).join(' · ');
  }

  function itemHtml(f) {
    const p = f.properties;
    const when = p.holding
      ? t('closures.until', { time: i18n.time(p.ends_at) })
      : t('closures.from', { from: i18n.time(p.starts_at), to: i18n.time(p.ends_at) });
    return `<li class="closure-item" data-testid="closure-item" data-closure-id="${esc(f.id)}" data-holding="${p.holding ? 'true' : 'false'}">
      <p class="closure-title"><span class="swatch" style="background:${style(p).color}"></span>
        <strong>${esc(effectText(p))}</strong> · ${esc(modesText(p))}</p>
      <p>${esc(when)}</p>
      ${p.reason ? `<p class="hint">${esc(p.reason)}</p>` : ''}
      <p class="hint">${esc(t('closures.roads', { n: Math.max(p.car_segments || 0, p.foot_segments || 0) }))} · ${esc(f.id)}</p>
      <button type="button" class="tool" data-testid="closure-lift" data-lift="${esc(f.id)}">${esc(t('closures.lift'))}</button>
    </li>`;
  }

  function formHtml() {
    const d = drawing;
    const n = d.points.length;
    const sel = (v) => (d.effect === v ? 'selected' : '');
    return `<form class="closure-form" data-testid="closure-form">
      <p class="hint" data-testid="closure-points" data-points="${n}">${esc(t('closures.drawHint', { n }))}</p>
      <label>${esc(t('closures.effect'))}
        <select name="effect" data-testid="closure-effect">
          <option value="closed" ${sel('closed')}>${esc(t('closures.closed'))}</option>
          <option value="slow" ${sel('slow')}>${esc(t('closures.slowOption'))}</option>
        </select></label>
      <label>${esc(t('closures.factor'))}
        <input name="factor" type="number" min="1.1" max="20" step="0.1" value="${esc(String(d.factor))}" data-testid="closure-factor"></label>
      <fieldset><legend>${esc(t('closures.modes'))}</legend>
        <label><input type="checkbox" name="car" ${d.car ? 'checked' : ''} data-testid="closure-mode-car"> ${esc(t('closures.mode.car'))}</label>
        <label><input type="checkbox" name="foot" ${d.foot ? 'checked' : ''} data-testid="closure-mode-foot"> ${esc(t('closures.mode.foot'))}</label>
      </fieldset>
      <label>${esc(t('closures.hours'))}
        <input name="hours" type="number" min="0.25" max="2160" step="0.25" value="${esc(String(d.hours))}" data-testid="closure-hours"></label>
      <label>${esc(t('closures.reason'))}
        <input name="reason" type="text" maxlength="200" value="${esc(d.reason)}" data-testid="closure-reason"></label>
      <div class="closure-buttons">
        <button type="submit" class="primary" data-testid="closure-save" ${n < 2 || busy ? 'disabled' : ''}>${esc(t('closures.save'))}</button>
        <button type="button" class="tool" data-testid="closure-cancel" data-cancel="1">${esc(t('closures.cancel'))}</button>
      </div>
    </form>`;
  }

  /** Keeps what the dispatcher chose while the panel is drawn again (a point added, an error). */
  function remember(form) {
    if (!drawing || !form) return;
    const fd = new FormData(form);
    drawing.effect = fd.get('effect') === 'slow' ? 'slow' : 'closed';
    drawing.factor = String(fd.get('factor') ?? drawing.factor);
    drawing.car = !!fd.get('car');
    drawing.foot = !!fd.get('foot');
    drawing.hours = String(fd.get('hours') ?? drawing.hours);
    drawing.reason = String(fd.get('reason') ?? '');
  }

  function render() {
    button.setAttribute('aria-pressed', String(open));
    button.textContent = features.length ? t('closures.openN', { n: features.length }) : t('closures.open');
    panel.hidden = !open;
    if (!open) return;
    const list = features.length
      ? `<ul class="closure-list">${features.map(itemHtml).join('')}</ul>`
      : `<p class="hint">${esc(t('closures.none'))}</p>`;
    panel.innerHTML = `<h2>${esc(t('closures.title'))}</h2>
      ${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
      ${refused ? `<p class="error" role="alert" data-testid="closure-error">${esc(refused)}</p>` : ''}
      ${drawing ? formHtml() : `<button type="button" class="primary" data-testid="closure-draw" data-draw="1">${esc(t('closures.draw'))}</button>`}
      ${list}`;
  }

  function stopDrawing() {
    drawing = null;
    setClickTool(null);
    invalidate();
  }

  function startDrawing() {
    drawing = { points: [], effect: 'closed', factor: '2', car: true, foot: false, hours: '4', reason: '' };
    refused = null;
    setClickTool((lat, lon) => {
      if (!drawing || drawing.points.length >= 200) return;
      drawing.points.push({ lat, lon });
      render();
      invalidate();
    });
    render();
  }

  async function save(form) {
    if (!drawing || drawing.points.length < 2 || busy) return;
    remember(form);
    const d = drawing;
    const hours = Number(d.hours);
    const body = {
      closure_id: `console-${Date.now().toString(36)}`,
      area: { type: 'line', points: d.points, width_m: 20 },
      effect: d.effect === 'slow' ? { type: 'slow', factor: Number(d.factor) } : { type: 'closed' },
      modes: ['car', 'foot'].filter((m) => d[m]),
      ends_at: Date.now() + Math.round((Number.isFinite(hours) ? hours : 0) * HOUR_MS),
      reason: d.reason,
    };
    busy = true;
    try {
      const res = await fetch('/v1/closures', { method: 'POST', headers: headers(), body: JSON.stringify(body) });
      const reply = await res.json().catch(() => null);
      if (res.status === 201) {
        refused = null;
        stopDrawing();
        ctx.toast(t('closures.laid'), 'info');
      } else {
        refused = t('error.refused', { message: (reply && reply.message) || `HTTP ${res.status}` });
      }
    } catch (e) {
      refused = t('error.refused', { message: e.message });
    }
    busy = false;
    await refresh();
  }

  async function lift(id) {
    try {
      const res = await fetch(`/v1/closures/${encodeURIComponent(id)}`, { method: 'DELETE', headers: headers() });
      if (res.status === 204) {
        refused = null;
        ctx.toast(t('closures.lifted'), 'info');
      } else {
        const reply = await res.json().catch(() => null);
        refused = t('error.refused', { message: (reply && reply.message) || `HTTP ${res.status}` });
      }
    } catch (e) {
      refused = t('error.refused', { message: e.message });
    }
    await refresh();
  }

  panel.addEventListener('click', (e) => {
    const el = e.target.closest('button');
    if (!el) return;
    if (el.dataset.draw) startDrawing();
    else if (el.dataset.cancel) {
      stopDrawing();
      render();
    } else if (el.dataset.lift) lift(el.dataset.lift);
  });
  panel.addEventListener('input', (e) => remember(e.target.form));
  panel.addEventListener('change', (e) => remember(e.target.form));
  panel.addEventListener('submit', (e) => {
    e.preventDefault();
    save(e.target);
  });
  button.addEventListener('click', () => {
    open = !open;
    if (!open && drawing) stopDrawing();
    render();
  });

  return {
    draw,
    render,
    refresh,
    /** Starts showing closures (log-in). */
    start() {
      clearInterval(timer);
      timer = setInterval(refresh, REFRESH_MS);
      refresh();
    },
    /** Stops (log-out). */
    stop() {
      clearInterval(timer);
      timer = null;
      if (drawing) stopDrawing();
      open = false;
      features = [];
      render();
    },
    /** A console event: closures changed. */
    onEvent(type) {
      if (type === 'road_closed' || type === 'road_reopened') refresh();
    },
    /** For the browser tests: what the map last drew. */
    get drawn() {
      return drawn;
    },
    get features() {
      return features;
    },
  };
}
