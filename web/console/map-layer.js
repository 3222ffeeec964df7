// What the console puts on the road map: responders (shape by kind, colour by status, moving
// as `responder_moved` arrives), open incidents (colour by priority, the elder's id beside
// them, a ring on the selected one and on unseen new emergencies), the selected incident's
// assigned routes, road closures (closures.js), and the legend that explains the shapes and colours.

import { isNew } from './state.js';

export const KIND_SHAPE = { volunteer: 'circle', grid_worker: 'square', ambulance: 'diamond', service_staff: 'triangle', kin: 'pentagon' };
export const STATUS_COLOR = {
  available: '#188038',
  offered: '#f29900',
  en_route: '#1a73e8',
  on_scene: '#9334e6',
  resting: '#8d6e63',
  off_duty: '#9aa0a6',
};
export const PRIORITY_COLOR = { 5: '#c5221f', 4: '#e8710a', 3: '#b06000', 2: '#137333', 1: '#3c4043' };
const ROUTE_LABEL_FONT = 'bold 14px system-ui, sans-serif';
const ROUTE_LABEL_PAD = 6; // CSS px of white on each side of a route's ETA
const ROUTE_LABEL_H = 21;
const ROUTE_LABEL_GAP = 5; // between stacked labels
const ROUTE_LABEL_LIFT = 16; // from the door to the nearest label's edge
const EDGE = 4; // CSS px a label keeps from the map's edge

/** Where the routes' ETA labels go (CSS px boxes `{ x, y, w, h, label, role }`): centred
 * over the door where each route ends, stacked upwards from it, or downwards when the stack
 * fits below and not above (else on the side with more room); the stack is then moved in
 * whole, and each label sideways, so that none is cut by the map's edge (a door near the edge
 * had its ETA cut off). Only a label wider than the map, or a stack taller than it, can still
 * be cut. A route whose door is outside the map gets no label. `measure(text)` is the text's
 * width in the label's font. */
export function routeLabelBoxes(routes, project, width, height, measure) {
  const items = [];
  let door = null;
  for (const r of routes) {
    if (!r.label || !r.points || !r.points.length) continue;
    const end = r.points[r.points.length - 1];
    const p = project(end.lat, end.lon);
    if (!(p.x >= 0 && p.y >= 0 && p.x <= width && p.y <= height)) continue;
    door ??= p; // the routes end at one door; the first places the stack
    items.push({ r, p, w: measure(r.label) + 2 * ROUTE_LABEL_PAD });
  }
  if (!items.length) return [];
  const stack = items.length * ROUTE_LABEL_H + (items.length - 1) * ROUTE_LABEL_GAP;
  const above = door.y - ROUTE_LABEL_LIFT - EDGE; // room for the stack above the door
  const below = height - EDGE - (door.y + ROUTE_LABEL_LIFT);
  const up = above >= stack || (below < stack && above >= below);
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(v, hi));
  const top = clamp(up ? door.y - ROUTE_LABEL_LIFT - stack : door.y + ROUTE_LABEL_LIFT, EDGE, Math.max(EDGE, height - EDGE - stack));
  return items.map(({ r, p, w }, i) => {
    // the first route's label nearest the door
    const slot = up ? items.length - 1 - i : i;
    return {
      x: clamp(p.x - w / 2, EDGE, Math.max(EDGE, width - EDGE - w)),
      y: top + slot * (ROUTE_LABEL_H + ROUTE_LABEL_GAP),
      w,
      h: ROUTE_LABEL_H,
      label: r.label,
      role: r.role,
    };
  });
}

export function createMapLayer(map, ctx) {
  const { t } = ctx;
  let routes = [];
  let lastVersion = -1;
  let lastMoved = -1;
  let lastSel = null;
  let lastState = null;
  const pool = new Map(); // responder id → its marker
  const markers = []; // reused: the responders' markers first, then incidents, then labelled
  let nResponders = 0;
  const labelled = []; // the selected incident's responders
  const labelledIds = new Set();
  let backdrop = null; // drawn first, under the routes (coverage.js)
  let roadsLayer = null; // drawn over the backdrop, under the routes (closures.js)
  let clickTool = null; // while set, a click on the map goes to it (drawing a closure)

  function place(m, r) {
    const shape = KIND_SHAPE[r.kind] || 'circle';
    const color = STATUS_COLOR[r.status.state] || '#5f6368';
    if (m.shape !== shape || m.color !== color) m._key = null;
    m.lat = r.position.lat;
    m.lon = r.position.lon;
    m.shape = shape;
    m.color = color;
    m.size = r.kind === 'ambulance' ? 8 : 6;
  }

  map.onClick((lat, lon, hit) => {
    if (clickTool) clickTool(lat, lon);
    else if (hit && hit.incidentId !== undefined) ctx.select(hit.incidentId);
  });

  map.setUnderlay((c, project) => {
    if (backdrop) backdrop(c, project);
    if (roadsLayer) roadsLayer(c, project);
    for (const r of routes) {
      if (!r.points || r.points.length < 2) continue;
      c.beginPath();
      r.points.forEach((pt, i) => {
        const p = project(pt.lat, pt.lon);
        if (i === 0) c.moveTo(p.x, p.y);
        else c.lineTo(p.x, p.y);
      });
      c.lineCap = 'round';
      c.lineJoin = 'round';
      c.strokeStyle = '#ffffff';
      c.lineWidth = 8;
      c.stroke();
      c.strokeStyle = r.role === 'ambulance' ? '#c5221f' : '#1a73e8';
      c.lineWidth = 5;
      c.stroke();
    }
  });
  map.setOverlay((c, project) => {
    // the ETA where each route ends (at the elder's door), stacked if several, kept inside the map
    c.font = ROUTE_LABEL_FONT;
    const boxes = routeLabelBoxes(routes, project, map.w, map.h, (text) => c.measureText(text).width);
    for (const b of boxes) {
      c.fillStyle = 'rgba(255,255,255,.92)';
      c.fillRect(b.x, b.y, b.w, b.h);
      c.strokeStyle = b.role === 'ambulance' ? '#c5221f' : '#1a73e8';
      c.lineWidth = 2;
      c.strokeRect(b.x, b.y, b.w, b.h);
      c.fillStyle = '#111';
      c.fillText(b.label, b.x + ROUTE_LABEL_PAD, b.y + 15);
    }
  });

  const layer = {
    /** Puts the state on the map (once per console frame; nothing to do if nothing changed
     * unless `incidents`: an incident's look changed without an event, e.g. a highlight ended).
     * Only the responders the fold touched since the last render are updated (ten thousand
     * markers are rebuilt only for a new state, a new selection or a responder that joins or
     * leaves the selected incident); the incidents' few hundred markers are made anew. */
    render(state, incidents = false) {
      const sel = ctx.selectedId;
      if (!incidents && state === lastState && state.version === lastVersion && state.moved === lastMoved && sel === lastSel) return;
      let full = state !== lastState || sel !== lastSel;
      if (!full) {
        for (const id of state.touched) {
          const r = state.responders.get(id);
          if (!r) {
            // a responder who left (retired): their marker goes with a rebuild
            if (pool.delete(id)) {
              full = true;
              break;
            }
            continue;
          }
          const m = pool.get(id);
          if (!m || !r.position || labelledIds.has(id) || (sel !== null && r.status.incident_id === sel)) {
            full = true;
            break;
          }
          place(m, r);
        }
      }
      state.touched.clear();
      if (state !== lastState) pool.clear();
      lastState = state;
      lastVersion = state.version;
      lastMoved = state.moved;
      lastSel = sel;
      if (full) {
        markers.length = 0;
        labelled.length = 0;
        labelledIds.clear();
        for (const r of state.responders.values()) {
          if (!r.position) continue;
          if (sel !== null && r.status.incident_id === sel) {
            // the selected incident's responders carry their id, on top of the crowd
            labelled.push({ id: `r:${r.id}`, lat: r.position.lat, lon: r.position.lon, shape: KIND_SHAPE[r.kind] || 'circle', color: STATUS_COLOR[r.status.state] || '#5f6368', size: 8, stroke: '#202124', label: r.id });
            labelledIds.add(r.id);
            continue;
          }
          // one marker object per responder, updated in place (no garbage per frame)
          let m = pool.get(r.id);
          if (!m) pool.set(r.id, (m = { id: `r:${r.id}`, stroke: '#202124' }));
          place(m, r);
          markers.push(m);
        }
        nResponders = markers.length;
      }
      markers.length = nResponders;
      const now = ctx.serverNow();
      for (const inc of state.incidents.values()) {
        if (!inc.position) continue;
        const fresh = isNew(state, inc, now, ctx.seen);
        markers.push({
          id: `i:${inc.id}`,
          incidentId: inc.id,
          lat: inc.position.lat,
          lon: inc.position.lon,
          shape: 'circle',
          color: PRIORITY_COLOR[inc.priority] || '#3c4043',
          size: 9,
          stroke: '#ffffff',
          ring: inc.id === sel ? '#202124' : fresh ? '#c5221f' : null,
          label: inc.elder_id,
        });
      }
      for (const m of labelled) markers.push(m);
      map.setMarkers(markers);
    },
    setRoutes(r) {
      routes = r || [];
      map.invalidate();
    },
    /** A drawing under everything else (the coverage hexagons). */
    setBackdrop(fn) {
      backdrop = fn;
      map.invalidate();
    },
    /** The road closures, over the backdrop and under the routes. */
    setRoads(fn) {
      roadsLayer = fn;
      map.invalidate();
    },
    /** Clicks on the map go to `fn(lat, lon)` instead of selecting (null: back to selecting). */
    setClickTool(fn) {
      clickTool = fn;
    },
    renderLegend(el) {
      legend(el, ctx);
    },
  };
  return layer;
}

/** The legend: kinds by shape, statuses by colour, incidents by priority colour. */
function legend(el, { t }) {
  const svg = (shape, color) => {
    const s = {
      circle: '<circle cx="8" cy="8" r="6"/>',
      square: '<rect x="2" y="2" width="12" height="12"/>',
      diamond: '<polygon points="8,1 15,8 8,15 1,8"/>',
      triangle: '<polygon points="8,1 15,14 1,14"/>',
      pentagon: '<polygon points="8.0,1.0 14.7,5.8 12.1,13.7 3.9,13.7 1.3,5.8"/>',
    }[shape];
    return `<svg width="16" height="16" viewBox="0 0 16 16" aria-hidden="true" fill="${color}" stroke="#202124">${s}</svg>`;
  };
  const items = [];
  for (const [kind, shape] of Object.entries(KIND_SHAPE)) items.push(`<li>${svg(shape, '#ffffff')} ${t(`rkind.${kind}`)}</li>`);
  for (const [st, color] of Object.entries(STATUS_COLOR)) items.push(`<li>${svg('circle', color)} ${t(`rstatus.${st}`)}</li>`);
  items.push(`<li>${svg('circle', PRIORITY_COLOR[5])} ${t('legend.incident')}</li>`);
  const line = (color, dash) =>
    `<svg width="22" height="16" viewBox="0 0 22 16" aria-hidden="true"><line x1="1" y1="8" x2="21" y2="8" stroke="${color}" stroke-width="5" stroke-linecap="round"${dash ? ' stroke-dasharray="6 4"' : ''}/></svg>`;
  items.push(`<li>${line('#c5221f', false)} ${t('legend.closed')}</li>`);
  items.push(`<li>${line('#6a1b9a', true)} ${t('legend.slowed')}</li>`);
  el.innerHTML = `<span class="legend-title">${t('legend.title')}</span><ul>${items.join('')}</ul>`;
}
createMapLayer.legend = legend;
