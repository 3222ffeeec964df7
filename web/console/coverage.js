// Live coverage on the console's map, for dispatchers and care managers: the elders'
// neighbourhoods (hexagons of GET /v1/coverage?by=hex) coloured by the share of their elders
// a volunteer or grid worker could reach within 3 minutes (red none, amber half, green all),
// outlined in dashes where someone is beyond the 15-minute circle; and a panel with the
// shares overall and per care level. Fetched again every 10 s while shown; a refusal (an
// operator without the role) shows the server's own words.

import { esc } from './queue.js';

export const REFRESH_MS = 10000;

const STOPS = [
  [0, [197, 34, 31]],
  [0.5, [242, 153, 0]],
  [1, [24, 128, 56]],
];

/** The colour of a share in [0, 1]: red → amber → green. */
export function shareColor(share) {
  const s = Math.min(1, Math.max(0, Number(share) || 0));
  for (let i = 1; i < STOPS.length; i++) {
    const [s1, c1] = STOPS[i];
    const [s0, c0] = STOPS[i - 1];
    if (s <= s1) {
      const k = (s - s0) / (s1 - s0);
      return c0.map((v, j) => Math.round(v + (c1[j] - v) * k));
    }
  }
  return STOPS[STOPS.length - 1][1];
}

export function createCoverage(button, panel, ctx, invalidate) {
  const { t, i18n } = ctx;
  let on = false;
  let timer = null;
  let data = null;
  let error = null;
  let drawn = 0;

  const pct = (x) => `${Math.round((Number(x) || 0) * 100)} %`;

  /** Draws the hexagons under everything else on the map (map-layer's backdrop). */
  function draw(c, project) {
    drawn = 0;
    if (!on || !data) return;
    for (const f of data.features) {
      const ring = f.geometry && f.geometry.coordinates && f.geometry.coordinates[0];
      if (!Array.isArray(ring) || ring.length < 4) continue;
      c.beginPath();
      ring.forEach(([lon, lat], i) => {
        const p = project(lat, lon);
        if (i === 0) c.moveTo(p.x, p.y);
        else c.lineTo(p.x, p.y);
      });
      c.closePath();
      const [r, g, b] = shareColor(f.properties.share_180_s);
      c.fillStyle = `rgba(${r},${g},${b},0.38)`;
      c.fill();
      if (f.properties.share_900_s < 1) {
        c.setLineDash([5, 4]);
        c.strokeStyle = '#c5221f';
        c.lineWidth = 2;
        c.stroke();
        c.setLineDash([]);
      }
      drawn += 1;
    }
  }

  async function refresh() {
    try {
      const res = await fetch('/v1/coverage?by=hex', {
        headers: { Authorization: `Bearer ${ctx.token}` },
        cache: 'no-store',
      });
      const body = await res.json().catch(() => null);
      if (res.ok && body && body.type === 'FeatureCollection' && Array.isArray(body.features) && body.summary) {
        data = body;
        error = null;
      } else if (res.status === 503) {
        error = t('coverage.computing');
      } else {
        data = null;
        error = t('error.refused', { message: (body && body.message) || `HTTP ${res.status}` });
      }
    } catch (e) {
      error = t('error.refused', { message: e.message });
    }
    if (on) {
      render();
      invalidate();
    }
  }

  function tallyRow(label, x) {
    return `<tr><th scope="row">${esc(label)}</th><td>${esc(String(x.elders))}</td>
      <td>${esc(pct(x.share_180_s))}</td><td>${esc(pct(x.share_900_s))}</td></tr>`;
  }

  function render() {
    button.setAttribute('aria-pressed', String(on));
    button.textContent = t(on ? 'coverage.hide' : 'coverage.open');
    panel.hidden = !on;
    if (!on) return;
    if (error && !data) {
      panel.innerHTML = `<h2>${esc(t('coverage.title'))}</h2><p class="error" role="alert">${esc(error)}</p>`;
      return;
    }
    if (!data) {
      panel.innerHTML = `<h2>${esc(t('coverage.title'))}</h2><p class="hint">${esc(t('coverage.loading'))}</p>`;
      return;
    }
    const s = data.summary;
    const o = s.overall;
    const levels = Object.entries(s.by_care_level || {})
      .sort((a, b) => Number(b[0]) - Number(a[0]))
      .map(([level, x]) => tallyRow(t('coverage.level', { level }), x))
      .join('');
    const [r0, g0, b0] = shareColor(0);
    const [r1, g1, b1] = shareColor(0.5);
    const [r2, g2, b2] = shareColor(1);
    panel.innerHTML = `<h2>${esc(t('coverage.title'))}</h2>
      <p class="coverage-big" data-testid="coverage-door" data-share="${Number(o.share_180_s)}">
        ${esc(t('coverage.door', { pct: pct(o.share_180_s), n: o.within_180_s, of: o.elders }))}</p>
      <p class="coverage-big" data-testid="coverage-circle" data-share="${Number(o.share_900_s)}">
        ${esc(t('coverage.circle', { pct: pct(o.share_900_s), n: o.within_900_s, of: o.elders }))}</p>
      <p class="hint">${esc(t('coverage.weighted', { door: pct(o.weighted_share_180_s), circle: pct(o.weighted_share_900_s) }))}</p>
      <table class="coverage-table" data-testid="coverage-levels"><thead><tr><th></th>
        <th>${esc(t('coverage.col.elders'))}</th><th>${esc(t('coverage.col.door'))}</th><th>${esc(t('coverage.col.circle'))}</th>
        </tr></thead><tbody>${levels}</tbody></table>
      <p class="coverage-scale"><span class="swatch" style="background: linear-gradient(90deg, rgb(${r0},${g0},${b0}), rgb(${r1},${g1},${b1}), rgb(${r2},${g2},${b2}))"></span>
        ${esc(t('coverage.scale'))}</p>
      <p class="hint">${esc(t('coverage.dashed'))}</p>
      <p class="hint" data-testid="coverage-counted">${esc(t('coverage.counted', { community: s.community_responders, ambulances: s.ambulances, time: i18n.time(s.updated_at) }))}</p>
      ${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}`;
  }

  function toggle() {
    on = !on;
    clearInterval(timer);
    timer = null;
    if (on) {
      refresh();
      timer = setInterval(refresh, REFRESH_MS);
    } else {
      data = null;
      error = null;
    }
    render();
    invalidate();
  }

  button.addEventListener('click', toggle);

  return {
    draw,
    render,
    /** Stops fetching (log-out). */
    stop() {
      if (on) toggle();
    },
    /** For the browser tests: what the map last drew and what the panel shows. */
    get drawn() {
      return drawn;
    },
    get data() {
      return data;
    },
  };
}
