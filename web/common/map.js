// The road map both apps draw on: the server's own roads (GET /v1/map) on a 2-D canvas, with
// pan (mouse or touch drag), zoom (wheel, pinch, the +/− buttons) and overlays (markers, one
// route, circles, or any drawing function). No tiles, nothing fetched from elsewhere.
//
//   const map = await RoadMap.create(containerEl, { fetchImpl, labels: { zoomIn, zoomOut } });
//   map.setMarkers([{ id, lat, lon, shape: 'circle'|'square'|'triangle'|'diamond'|'pentagon',
//                     color, size, ring, label }]);      // drawn in order: last on top, but
//                                                        // plain ones (no ring, no label) under
//                                                        // everything else on the map
//   map.setRoute([{ lat, lon }, …], { color });          // or null
//   map.setCircles([{ lat, lon, radiusM, color }]);
//   map.setOverlay((ctx, project) => { … });             // extra drawing on top, CSS pixels
//   map.setUnderlay((ctx, project) => { … });            // the same, under the markers with a
//                                                        // ring or a label
//   map.project(lat, lon) → { x, y }  (CSS pixels in the container)
//   map.fitPoints([{ lat, lon }, …]);  map.fitBounds([minLat, minLon, maxLat, maxLon]);
//   map.onClick((lat, lon, hitMarker) => { … });          // hitMarker: a marker within 12 px or null
//   map.setLabels({ zoomIn, zoomOut });  map.destroy();
//   map.drawNow();   // draw now if anything changed (an app that paces its own frames)
//
// How it draws: /v1/map's delta-encoded integer lines are decoded once into one Float32Array of
// projected x/y (metres east/south of the map's centre). Stacked in the container, bottom up:
// the roads' canvas (opaque), drawn only when the view (centre, scale, size) changes; the
// crowd's canvas (the plain markers), drawn by every frame with new markers; the under canvas
// (circles, the route, the underlay), drawn only when they or the view change; tiles of 256 CSS
// px (the markers with a ring or a label, then the overlay), each drawn only when what lies on
// it changed; and on top a transparent surface that takes pointer input. Each canvas that
// changed is handed to the compositor whole, so a frame that moves markers touches neither the
// roads' million pixels nor the incidents' tiles, and a new incident redraws the tiles it lies
// on (and, past 120 labels in view, the tile whose label it pushes out). Frames: a dirty
// flag, one requestAnimationFrame at a time; at most 10 times a second, and less when a draw is
// slow, if a draw costs > 4 ms or there are more than 3,000 markers.
// What the map shows is these composited: `map.composite()` returns them as one canvas (tests
// read its pixels).
// Plain markers (no ring, no label) are stamped into one ImageData from sprites rasterised once
// per look (no path of ten thousand shapes for Skia to fill each frame); more than 1,500 of them
// in view are drawn as small squares (a crowd). Marker labels are rasterised once per text and
// copied after that; at most 120 (the topmost) are drawn. devicePixelRatio-aware. The attribution
// "© OpenStreetMap contributors" is a text element always shown over the map.

const M_PER_DEG_LAT = 110574;
const M_PER_DEG_LON_EQ = 111320;
const BACKGROUND = '#dde1e6';
// class 0 main car road, 1 other car road, 2 foot only: [colour, width in CSS px at zoom 1]
const ROAD_STYLE = [
  ['#e3a33b', 2.6],
  ['#ffffff', 1.6],
  ['#a9b0ba', 1.0],
];
// marker labels: the font, and the sprite's geometry in CSS px (baseline LABEL_ASCENT below
// the text's top, LABEL_PAD of halo room on every side)
const LABEL_FONT = 'bold 13px system-ui, sans-serif';
const LABEL_ASCENT = 13;
const LABEL_PAD = 3;
const LABEL_H = 13 + 5 + 2 * LABEL_PAD;
const MAX_LABELS = 120; // labels drawn at most per frame (the topmost)
const MIN_SCALE = 0.005; // CSS px per metre (whole city in a small box)
const MAX_SCALE = 8;
const TILE = 256; // CSS px of a tile of the markers with a ring or a label

/**
 * Where each label goes (its sprite's top-left, CSS px, into s[4] and s[5] of each
 * [marker, x, y, sprite] with a sprite): right of its marker, or else left, above or below,
 * whichever first clears the labels already placed; the topmost markers (last in the list)
 * are placed first and keep their place. Two markers at one door (an ambulance at the
 * elder's) no longer print one label over the other. A label that fits nowhere stays right.
 */
export function placeLabels(special) {
  const boxes = [];
  for (let i = special.length - 1; i >= 0; i--) {
    const s = special[i];
    const sp = s[3];
    if (!sp) continue;
    const [m, x, y] = s;
    const r = m.size || 6;
    const right = [x + r + 3 - LABEL_PAD, y + 4 - LABEL_ASCENT - LABEL_PAD];
    const spots = [
      right,
      [x - r - 3 - sp.w + LABEL_PAD, right[1]],
      [x - sp.w / 2, y - r - 2 - LABEL_H + LABEL_PAD],
      [x - sp.w / 2, y + r + 2 - LABEL_PAD],
    ];
    const clear = ([lx, ly]) => boxes.every(([bx, by, bw]) => lx + sp.w - LABEL_PAD <= bx + LABEL_PAD || bx + bw - LABEL_PAD <= lx + LABEL_PAD || ly + LABEL_H - LABEL_PAD <= by + LABEL_PAD || by + LABEL_H - LABEL_PAD <= ly + LABEL_PAD);
    const [lx, ly] = spots.find(clear) || right;
    s[4] = lx;
    s[5] = ly;
    boxes.push([lx, ly, sp.w]);
  }
}

/** Adds one marker's outline at (x, y) to the current path. */
function shapePath(ctx, shape, x, y, r) {
  switch (shape) {
    case 'square':
      ctx.rect(x - r, y - r, 2 * r, 2 * r);
      break;
    case 'triangle':
      ctx.moveTo(x, y - r * 1.2);
      ctx.lineTo(x + r * 1.1, y + r * 0.9);
      ctx.lineTo(x - r * 1.1, y + r * 0.9);
      ctx.closePath();
      break;
    case 'diamond':
      ctx.moveTo(x, y - r * 1.3);
      ctx.lineTo(x + r * 1.3, y);
      ctx.lineTo(x, y + r * 1.3);
      ctx.lineTo(x - r * 1.3, y);
      ctx.closePath();
      break;
    case 'pentagon':
      for (let k = 0; k < 5; k++) {
        const a = (2 * Math.PI * k) / 5;
        const px = x + r * 1.2 * Math.sin(a);
        const py = y - r * 1.2 * Math.cos(a);
        if (k === 0) ctx.moveTo(px, py);
        else ctx.lineTo(px, py);
      }
      ctx.closePath();
      break;
    default:
      ctx.moveTo(x + r, y);
      ctx.arc(x, y, r, 0, 2 * Math.PI);
  }
}

/** A CSS colour as one opaque ImageData pixel (little-endian RGBA: 0xAABBGGRR), as the canvas
 * parses it. */
function cssColorWord(color) {
  const c = (cssColorWord.ctx ||= document.createElement('canvas').getContext('2d', { willReadFrequently: true }));
  c.clearRect(0, 0, 1, 1);
  c.fillStyle = '#000';
  c.fillStyle = color;
  c.fillRect(0, 0, 1, 1);
  const [r, g, b] = c.getImageData(0, 0, 1, 1).data;
  return ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

/** Source-over of two unpremultiplied ImageData pixels (0xAABBGGRR). */
function over(s, d) {
  const sa = (s >>> 24) / 255;
  const da = (d >>> 24) / 255;
  const oa = sa + da * (1 - sa);
  if (oa <= 0) return 0;
  const k = (da * (1 - sa)) / oa;
  const j = sa / oa;
  const r = (s & 0xff) * j + (d & 0xff) * k;
  const g = ((s >>> 8) & 0xff) * j + ((d >>> 8) & 0xff) * k;
  const b = ((s >>> 16) & 0xff) * j + ((d >>> 16) & 0xff) * k;
  return ((Math.round(oa * 255) << 24) | (Math.round(b) << 16) | (Math.round(g) << 8) | Math.round(r)) >>> 0;
}

export class RoadMap {
  /** Fetches /v1/map and builds the map in `container` (which must have a size). */
  static async create(container, opts = {}) {
    const fetchImpl = opts.fetchImpl || ((u, o) => fetch(u, o));
    const res = await fetchImpl(opts.url || '/v1/map');
    if (!res.ok) throw new Error(`GET /v1/map: HTTP ${res.status}`);
    const data = await res.json();
    return new RoadMap(container, data, opts);
  }

  constructor(container, data, opts = {}) {
    this.container = container;
    this.opts = opts;
    this._decode(data);
    this.markers = [];
    this.route = null;
    this.circles = [];
    this.overlay = null;
    this.underlay = null;
    this.clickCbs = [];
    this.cx = 0;
    this.cy = 0;
    this.scale = 0.05;
    this.w = 0;
    this.h = 0;
    this.dpr = 1;
    this.roadsValid = false;
    this.dirty = true;
    this.allDirty = true;
    this.raf = 0;
    this.waiting = 0;
    this.lastDrawAt = 0;
    this.lastDrawMs = 0;
    this.destroyed = false;
    this._build();
    this._resize();
    this.fitBounds(this.bbox);
  }

  // ---- data -----------------------------------------------------------------------------

  _decode(data) {
    const scale = data.scale || 100000;
    const [minLat, minLon, maxLat, maxLon] = data.bbox;
    this.bbox = data.bbox;
    this.attribution = data.attribution || '© OpenStreetMap contributors';
    this.lat0 = (minLat + maxLat) / 2;
    this.lon0 = (minLon + maxLon) / 2;
    this.kx = M_PER_DEG_LON_EQ * Math.cos((this.lat0 * Math.PI) / 180);
    const lines = data.lines || [];
    let nPoints = 0;
    for (const l of lines) nPoints += (l.length - 1) >> 1;
    const xy = new Float32Array(nPoints * 2);
    const start = new Uint32Array(lines.length + 1);
    const cls = new Uint8Array(lines.length);
    const box = new Float32Array(lines.length * 4); // minx, miny, maxx, maxy per line
    let p = 0;
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i];
      cls[i] = Math.min(2, Math.max(0, l[0] | 0));
      start[i] = p;
      let lat = 0;
      let lon = 0;
      let bx0 = Infinity, by0 = Infinity, bx1 = -Infinity, by1 = -Infinity;
      for (let j = 1; j + 1 < l.length; j += 2) {
        lat += l[j];
        lon += l[j + 1];
        const x = (lon / scale - this.lon0) * this.kx;
        const y = (this.lat0 - lat / scale) * M_PER_DEG_LAT;
        xy[2 * p] = x;
        xy[2 * p + 1] = y;
        p++;
        if (x < bx0) bx0 = x;
        if (x > bx1) bx1 = x;
        if (y < by0) by0 = y;
        if (y > by1) by1 = y;
      }
      box.set([bx0, by0, bx1, by1], i * 4);
    }
    start[lines.length] = p;
    this.xy = xy;
    this.start = start;
    this.cls = cls;
    this.box = box;
    this.nLines = lines.length;
  }

  /** World metres (east, south of the map centre) for a WGS84 position. */
  toWorld(lat, lon) {
    return [(lon - this.lon0) * this.kx, (this.lat0 - lat) * M_PER_DEG_LAT];
  }

  /** CSS pixels in the container for a WGS84 position. */
  project(lat, lon) {
    const [x, y] = this.toWorld(lat, lon);
    return { x: (x - this.cx) * this.scale + this.w / 2, y: (y - this.cy) * this.scale + this.h / 2 };
  }

  /** The WGS84 position under a CSS pixel of the container. */
  unproject(px, py) {
    const x = (px - this.w / 2) / this.scale + this.cx;
    const y = (py - this.h / 2) / this.scale + this.cy;
    return { lat: this.lat0 - y / M_PER_DEG_LAT, lon: x / this.kx + this.lon0 };
  }

  // ---- DOM ------------------------------------------------------------------------------

  _build() {
    const c = this.container;
    if (getComputedStyle(c).position === 'static') c.style.position = 'relative';
    c.style.overflow = 'hidden';
    // the layers, bottom up, each filling the container
    const FILL = 'position:absolute;inset:0;width:100%;height:100%;display:block;pointer-events:none';
    const layer = (tag, className, css) => {
      const el = document.createElement(tag);
      el.className = className;
      el.style.cssText = css;
      c.appendChild(el);
      return el;
    };
    // the roads (redrawn only when the view changes)
    this.roads = layer('canvas', 'roadmap-roads', FILL);
    this.rctx = this.roads.getContext('2d', { alpha: false });
    // the plain markers (the crowd), alone on their canvas: at half resolution when they are
    // a crowd (small squares, the same upscaled), since they change with every move
    this.crowd = layer('canvas', 'roadmap-crowd', `${FILL};image-rendering:pixelated`);
    this.cctx = this.crowd.getContext('2d');
    // circles, the route and the underlay: drawn again only when they or the view change
    this.under = layer('canvas', 'roadmap-under', FILL);
    this.uctx = this.under.getContext('2d');
    // the markers with a ring or a label and the overlay, in tiles: a tile is drawn again only
    // when what lies on it changed (see _drawTiles)
    this.tileBox = layer('div', 'roadmap-tiles', FILL);
    this.tiles = [];
    this.tilesDrawn = 0; // tiles drawn since the map was made (tests: only changed tiles are)
    // the surface that takes pointer input, on top of the drawing
    const surface = layer('div', 'roadmap-overlay', 'position:absolute;inset:0;touch-action:none;cursor:grab');
    this.surface = surface;

    const controls = document.createElement('div');
    controls.className = 'roadmap-zoom';
    controls.style.cssText = 'position:absolute;top:8px;right:8px;display:flex;flex-direction:column;gap:4px;z-index:2';
    const mk = (text, delta) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = text;
      b.style.cssText = 'min-width:44px;min-height:44px;font-size:24px;line-height:1;border:1px solid #555;border-radius:6px;background:#fff;color:#111;cursor:pointer';
      b.addEventListener('click', () => this.zoomBy(delta));
      controls.appendChild(b);
      return b;
    };
    this.zoomInBtn = mk('+', 2);
    this.zoomOutBtn = mk('−', 0.5);
    c.appendChild(controls);
    this.setLabels(this.opts.labels || {});

    const attr = document.createElement('div');
    attr.className = 'roadmap-attribution';
    attr.textContent = this.attribution;
    attr.style.cssText = 'position:absolute;right:0;bottom:0;padding:2px 6px;font-size:12px;background:rgba(255,255,255,.85);color:#222;z-index:2;pointer-events:none';
    c.appendChild(attr);
    this.attrEl = attr;

    this._pointers = new Map();
    this._onDown = (e) => this._pointerDown(e);
    this._onMove = (e) => this._pointerMove(e);
    this._onUp = (e) => this._pointerUp(e);
    this._onWheel = (e) => this._wheel(e);
    surface.addEventListener('pointerdown', this._onDown);
    surface.addEventListener('pointermove', this._onMove);
    surface.addEventListener('pointerup', this._onUp);
    surface.addEventListener('pointercancel', this._onUp);
    surface.addEventListener('wheel', this._onWheel, { passive: false });
    this._ro = new ResizeObserver(() => this._resize());
    this._ro.observe(c);
  }

  setLabels({ zoomIn = 'Zoom in', zoomOut = 'Zoom out' } = {}) {
    this.zoomInBtn.setAttribute('aria-label', zoomIn);
    this.zoomInBtn.title = zoomIn;
    this.zoomOutBtn.setAttribute('aria-label', zoomOut);
    this.zoomOutBtn.title = zoomOut;
  }

  _resize() {
    const r = this.container.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width));
    const h = Math.max(1, Math.round(r.height));
    if (w === this.w && h === this.h && dpr === this.dpr) return;
    this.w = w;
    this.h = h;
    this.dpr = dpr;
    for (const cv of [this.under, this.roads]) {
      cv.width = Math.round(w * dpr);
      cv.height = Math.round(h * dpr);
    }
    this._layTiles();
    this._viewChanged();
  }

  destroy() {
    this.destroyed = true;
    cancelAnimationFrame(this.raf);
    clearTimeout(this.waiting);
    this._ro.disconnect();
    this.container.replaceChildren();
  }

  // ---- view -----------------------------------------------------------------------------

  _viewChanged() {
    this.roadsValid = false;
    this.invalidate();
  }

  /** Draws now, in the caller's frame, if anything changed since the last draw (an app that
   * paces its own frames calls this once per frame after updating the overlays). */
  drawNow() {
    if (!this.dirty || this.destroyed) return false;
    const t0 = performance.now();
    this._draw();
    this.lastDrawAt = t0;
    this.lastDrawMs = performance.now() - t0;
    return true;
  }

  /** Ask for a redraw on the next animation frame (overlays changed; `all` false: only the
   * markers, so the circles, route and underlay are not drawn again). */
  invalidate(all = true) {
    this.dirty = true;
    if (all) this.allDirty = true;
    if (this.raf || this.waiting || this.destroyed) return;
    // a costly overlay (thousands of markers) is redrawn at most ten times a second, and
    // less often when a draw takes longer (at most ~10 % of the time goes to the map; never
    // less than twice a second), leaving the other frames to the rest of the page; a cheap
    // overlay is redrawn every frame
    const gap = this.lastDrawMs > 4 || this.markers.length > 3000 ? Math.min(500, Math.max(100, this.lastDrawMs * 10)) : 0;
    const wait = gap - (performance.now() - this.lastDrawAt);
    const go = () => {
      this.waiting = 0;
      this.raf = requestAnimationFrame(() => {
        this.raf = 0;
        const t0 = performance.now();
        this._draw();
        this.lastDrawAt = t0;
        this.lastDrawMs = performance.now() - t0;
      });
    };
    if (wait > 0) this.waiting = setTimeout(go, wait);
    else go();
  }

  _clampScale(s) {
    return Math.min(MAX_SCALE, Math.max(MIN_SCALE, s));
  }

  /** Zoom by `factor` keeping the CSS pixel (px, py) (default the centre) in place. */
  zoomBy(factor, px = this.w / 2, py = this.h / 2) {
    const before = this.unproject(px, py);
    this.scale = this._clampScale(this.scale * factor);
    const [wx, wy] = this.toWorld(before.lat, before.lon);
    this.cx = wx - (px - this.w / 2) / this.scale;
    this.cy = wy - (py - this.h / 2) / this.scale;
    this._viewChanged();
  }

  panBy(dx, dy) {
    this.cx -= dx / this.scale;
    this.cy -= dy / this.scale;
    this._viewChanged();
  }

  fitBounds([minLat, minLon, maxLat, maxLon], padPx = 24) {
    const [x0, y1] = this.toWorld(minLat, minLon);
    const [x1, y0] = this.toWorld(maxLat, maxLon);
    this.cx = (x0 + x1) / 2;
    this.cy = (y0 + y1) / 2;
    const sw = Math.max(1, this.w - 2 * padPx) / Math.max(50, x1 - x0);
    const sh = Math.max(1, this.h - 2 * padPx) / Math.max(50, y1 - y0);
    this.scale = this._clampScale(Math.min(sw, sh));
    this._viewChanged();
  }

  fitPoints(points, padPx = 48, minHalfDeg = 0.0035) {
    const ps = (points || []).filter((p) => p && Number.isFinite(p.lat) && Number.isFinite(p.lon));
    if (!ps.length) return;
    let a = Infinity, b = Infinity, c = -Infinity, d = -Infinity;
    for (const p of ps) {
      a = Math.min(a, p.lat);
      b = Math.min(b, p.lon);
      c = Math.max(c, p.lat);
      d = Math.max(d, p.lon);
    }
    // at least ~800 m across so one point does not zoom to the maximum
    const padLat = Math.max(0, minHalfDeg - (c - a) / 2);
    const padLon = Math.max(0, minHalfDeg - (d - b) / 2);
    this.fitBounds([a - padLat, b - padLon, c + padLat, d + padLon], padPx);
  }

  // ---- overlays -------------------------------------------------------------------------

  setMarkers(markers) {
    this.markers = markers || [];
    this.invalidate(false);
  }

  setRoute(points, style = {}) {
    this.route = points && points.length ? { points, color: style.color || '#0b57d0', width: style.width || 4 } : null;
    this.invalidate();
  }

  setCircles(circles) {
    this.circles = circles || [];
    this.invalidate();
  }

  /** `fn(ctx, project)` draws on top of everything, in CSS px. It is called once for every
   * tile drawn (the tile's context, clipped to it), so it must draw the same for the same
   * state; a change of what it draws needs `invalidate()`. */
  setOverlay(fn) {
    this.overlay = fn;
    this.invalidate();
  }

  /** Like setOverlay, but drawn under the markers (e.g. routes). */
  setUnderlay(fn) {
    this.underlay = fn;
    this.invalidate();
  }

  onClick(cb) {
    this.clickCbs.push(cb);
  }

  // ---- drawing --------------------------------------------------------------------------

  _renderRoads() {
    const ctx = this.rctx;
    const { dpr, w, h, scale, cx, cy, xy, start, cls, box } = this;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, this.roads.width, this.roads.height);
    // world → device pixels
    const k = scale * dpr;
    const ox = (w / 2) * dpr - cx * k;
    const oy = (h / 2) * dpr - cy * k;
    const vx0 = cx - w / 2 / scale, vx1 = cx + w / 2 / scale;
    const vy0 = cy - h / 2 / scale, vy1 = cy + h / 2 / scale;
    const widthZoom = Math.min(2.5, Math.max(0.6, Math.sqrt(scale / 0.1)));
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    for (const c of [2, 1, 0]) {
      if (c === 2 && scale < 0.04) continue; // footpaths only once zoomed in
      const [color, width] = ROAD_STYLE[c];
      ctx.strokeStyle = color;
      ctx.lineWidth = width * widthZoom * dpr;
      ctx.beginPath();
      for (let i = 0; i < this.nLines; i++) {
        if (cls[i] !== c) continue;
        const b = i * 4;
        if (box[b] > vx1 || box[b + 2] < vx0 || box[b + 1] > vy1 || box[b + 3] < vy0) continue;
        let p = start[i];
        const end = start[i + 1];
        ctx.moveTo(xy[2 * p] * k + ox, xy[2 * p + 1] * k + oy);
        for (p++; p < end; p++) ctx.lineTo(xy[2 * p] * k + ox, xy[2 * p + 1] * k + oy);
      }
      ctx.stroke();
    }
    this.roadsValid = true;
  }

  /** What the map shows (the roads with the overlays on top) as one new canvas in device
   * pixels, drawn now if anything changed: for tests and screenshots, not for every frame. */
  composite() {
    this.drawNow();
    const out = document.createElement('canvas');
    out.width = this.roads.width;
    out.height = this.roads.height;
    const c = out.getContext('2d');
    c.drawImage(this.roads, 0, 0);
    // the crowd as the page shows it: upscaled without smoothing (image-rendering: pixelated)
    c.imageSmoothingEnabled = false;
    c.drawImage(this.crowd, 0, 0, out.width, out.height);
    c.imageSmoothingEnabled = true;
    c.drawImage(this.under, 0, 0);
    for (const t of this.tiles) c.drawImage(t.canvas, Math.round(t.x * this.dpr), Math.round(t.y * this.dpr));
    return out;
  }

  _draw() {
    if (!this.dirty || this.destroyed) return;
    this.dirty = false;
    const all = this.allDirty || !this.roadsValid;
    this.allDirty = false;
    if (!this.roadsValid) this._renderRoads();
    const project = (lat, lon) => this.project(lat, lon);
    try {
      const special = this._drawPlainMarkers();
      if (all) this._drawUnder(project);
      this._drawTiles(special, all, project);
    } catch (e) {
      // a drawing callback that throws leaves layers half drawn: all of them again next time
      this.allDirty = true;
      for (const t of this.tiles) t.sig = null;
      console.error('map overlay', e);
    }
  }

  /** The circles, the route and the underlay, on their own canvas (under the markers with a
   * ring or a label). */
  _drawUnder(project) {
    const ctx = this.uctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.under.width, this.under.height);
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    for (const c of this.circles) {
      const p = this.project(c.lat, c.lon);
      ctx.beginPath();
      ctx.arc(p.x, p.y, Math.max(2, c.radiusM * this.scale), 0, 2 * Math.PI);
      ctx.fillStyle = c.fill || 'rgba(11,87,208,.12)';
      ctx.fill();
      ctx.strokeStyle = c.color || '#0b57d0';
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
    if (this.route) {
      ctx.beginPath();
      this.route.points.forEach((pt, i) => {
        const p = this.project(pt.lat, pt.lon);
        if (i === 0) ctx.moveTo(p.x, p.y);
        else ctx.lineTo(p.x, p.y);
      });
      ctx.strokeStyle = '#ffffff';
      ctx.lineWidth = this.route.width + 3;
      ctx.lineCap = 'round';
      ctx.lineJoin = 'round';
      ctx.stroke();
      ctx.strokeStyle = this.route.color;
      ctx.lineWidth = this.route.width;
      ctx.stroke();
    }
    if (this.underlay) this.underlay(ctx, project);
  }

  /** Cuts the view into tiles of TILE CSS px, each a canvas of its own. */
  _layTiles() {
    const { w, h, dpr } = this;
    this.tileBox.replaceChildren();
    this.tiles = [];
    for (let y = 0; y < h; y += TILE) {
      for (let x = 0; x < w; x += TILE) {
        const tw = Math.min(TILE, w - x);
        const th = Math.min(TILE, h - y);
        const canvas = document.createElement('canvas');
        canvas.width = Math.round(tw * dpr);
        canvas.height = Math.round(th * dpr);
        canvas.style.cssText = `position:absolute;left:${x}px;top:${y}px;width:${tw}px;height:${th}px;display:block`;
        this.tileBox.appendChild(canvas);
        this.tiles.push({ x, y, canvas, ctx: canvas.getContext('2d'), sig: null, next: '', items: [] });
      }
    }
  }

  /** The markers with a ring or a label, and the overlay, tile by tile: a tile is drawn again
   * only when the list of what lies on it (each marker's place, look, ring and label) changed,
   * or when `all` (the view, the overlay or the underlay changed). A page whose incidents
   * change a few at a time hands the compositor a few tiles, not the whole map. */
  _drawTiles(special, all, project) {
    // the topmost MAX_LABELS labels are drawn (hundreds overlapping are past reading anyway)
    let skip = -MAX_LABELS;
    for (const s of special) if (s[0].label) skip++;
    for (const s of special) s[3] = s[0].label && skip-- <= 0 ? this._labelSprite(String(s[0].label)) : null;
    placeLabels(special);
    const cols = Math.max(1, Math.ceil(this.w / TILE));
    for (const t of this.tiles) {
      t.items.length = 0;
      t.next = '';
    }
    for (const s of special) {
      const [m, x, y, sp] = s;
      const r = m.size || 6;
      const e = r * 1.4 + 8; // the shape, its outline and a ring
      let x0 = x - e, y0 = y - e, x1 = x + e, y1 = y + e;
      let label = '';
      if (sp) {
        label = `${m.label}@${s[4].toFixed(1)},${s[5].toFixed(1)}`;
        x0 = Math.min(x0, s[4]);
        y0 = Math.min(y0, s[5]);
        x1 = Math.max(x1, s[4] + sp.w);
        y1 = Math.max(y1, s[5] + LABEL_H);
      }
      // the look from the marker's fields (not its cached _key: a copy may carry a stale one)
      const sig = `${x.toFixed(1)},${y.toFixed(1)},${m.shape}|${r}|${m.color}|${m.stroke},${m.ring || ''},${label}|`;
      const c0 = Math.max(0, Math.floor(x0 / TILE));
      const c1 = Math.min(cols - 1, Math.floor(x1 / TILE));
      const r0 = Math.max(0, Math.floor(y0 / TILE));
      const r1 = Math.floor(y1 / TILE);
      for (let row = r0; row <= r1; row++) {
        for (let col = c0; col <= c1; col++) {
          const t = this.tiles[row * cols + col];
          if (!t) continue;
          t.items.push(s);
          t.next += sig;
        }
      }
    }
    for (const t of this.tiles) {
      if (!all && t.next === t.sig) continue;
      t.sig = t.next;
      this.tilesDrawn++;
      const ctx = t.ctx;
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, t.canvas.width, t.canvas.height);
      ctx.setTransform(this.dpr, 0, 0, this.dpr, -t.x * this.dpr, -t.y * this.dpr);
      this._drawSpecialMarkers(ctx, t.items);
      if (this.overlay) this.overlay(ctx, project);
    }
  }

  /** The plain markers (no ring, no label: the crowd of responders), stamped pixel by pixel
   * into one ImageData that replaces the crowd canvas's pixels: Skia filling a path of ten
   * thousand shapes costs 15–75 ms of raster per frame, stamping them costs 1–2 ms. A crowd
   * (more than 1,500 in view, drawn as small squares) is stamped at half the device
   * resolution: the squares look the same upscaled, and the canvas the compositor takes after
   * every move has a quarter of the pixels (benches/README.md, "Operator console"). Returns
   * the markers with a ring or a label in view, as [marker, x, y] (CSS px), for the tiles. */
  _drawPlainMarkers() {
    const pad = 20;
    const special = [];
    const { w, h, scale, cx, cy, lat0, lon0, kx } = this;
    // where the plain markers are, in CSS px, and their sprites: first counted, so that a
    // crowd (more than 1,500 in view) is drawn as small squares without outlines (the same
    // information, zoom in for the shapes), at half resolution
    const xs = this._xs && this._xs.length >= this.markers.length ? this._xs : (this._xs = new Float32Array(this.markers.length + 1024));
    const ys = this._ys && this._ys.length >= this.markers.length ? this._ys : (this._ys = new Float32Array(this.markers.length + 1024));
    const idx = this._idx && this._idx.length >= this.markers.length ? this._idx : (this._idx = new Uint32Array(this.markers.length + 1024));
    let n = 0;
    for (let i = 0; i < this.markers.length; i++) {
      const m = this.markers[i];
      if (!Number.isFinite(m.lat) || !Number.isFinite(m.lon)) continue;
      const x = ((m.lon - lon0) * kx - cx) * scale + w / 2;
      const y = ((lat0 - m.lat) * M_PER_DEG_LAT - cy) * scale + h / 2;
      if (x < -pad || y < -pad || x > w + pad || y > h + pad) continue;
      if (m.ring || m.label) {
        special.push([m, x, y]);
        continue;
      }
      xs[n] = x;
      ys[n] = y;
      idx[n++] = i;
    }
    const crowd = n > 1500;
    const res = crowd ? this.dpr / 2 : this.dpr; // device px of the crowd canvas per CSS px
    const W = Math.max(1, Math.round(w * res));
    const H = Math.max(1, Math.round(h * res));
    const ctx = this.cctx;
    if (this.crowd.width !== W || this.crowd.height !== H) {
      this.crowd.width = W;
      this.crowd.height = H;
    }
    if (!this._img || this._img.width !== W || this._img.height !== H) {
      this._img = ctx.createImageData(W, H);
      this._px = new Uint32Array(this._img.data.buffer);
    }
    const px = this._px;
    px.fill(0);
    // the sprite is kept on the marker too (a marker layer that changes a marker's look clears
    // its _key), so most markers cost no lookup
    const tag = this._spriteTag(crowd);
    for (let k = 0; k < n; k++) {
      const m = this.markers[idx[k]];
      const sp = m._key && m._spTag === tag ? m._sp : this._sprite(m, crowd, tag);
      const x0 = Math.round(xs[k] * res) - sp.half;
      const y0 = Math.round(ys[k] * res) - sp.half;
      const sw = sp.size;
      const ax = Math.max(0, -x0);
      const ay = Math.max(0, -y0);
      const bx = Math.min(sw, W - x0);
      const by = Math.min(sw, H - y0);
      if (sp.solid !== undefined) {
        const c = sp.solid;
        for (let yy = ay; yy < by; yy++) {
          const row = (y0 + yy) * W + x0;
          for (let xx = ax; xx < bx; xx++) px[row + xx] = c;
        }
        continue;
      }
      const src = sp.px;
      for (let yy = ay; yy < by; yy++) {
        const row = (y0 + yy) * W + x0;
        for (let xx = ax; xx < bx; xx++) {
          const s = src[yy * sw + xx];
          const sa = s >>> 24;
          if (sa === 0) continue;
          if (sa === 255) {
            px[row + xx] = s;
            continue;
          }
          px[row + xx] = over(s, px[row + xx]);
        }
      }
    }
    ctx.putImageData(this._img, 0, 0);
    return special;
  }

  /** A plain marker's pixels in the crowd canvas's px (`tag.res` per CSS px: the device's,
   * half of it in a crowd), kept per look: a solid square in a crowd, else its shape with the
   * outline, rasterised once by the canvas. */
  _sprite(m, crowd, tag) {
    const cache = tag.cache;
    // the marker keeps its look's key (a marker layer that changes a marker's look clears it)
    const key = m._key || (m._key = `${m.shape}|${m.size || 6}|${m.color}|${m.stroke}`);
    let sp = cache.get(key);
    m._spTag = tag;
    if (sp) return (m._sp = sp);
    const r = m.size || 6;
    const res = tag.res;
    if (crowd) {
      const side = Math.max(1, Math.round(2 * Math.min(3, r) * res));
      sp = { size: side, half: side >> 1, solid: cssColorWord(m.color || '#333') };
    } else {
      const size = Math.ceil((2 * r * 1.3 + 4) * res);
      const c = document.createElement('canvas');
      c.width = size;
      c.height = size;
      const g = c.getContext('2d', { willReadFrequently: true });
      g.setTransform(res, 0, 0, res, 0, 0);
      g.beginPath();
      shapePath(g, m.shape, size / 2 / res, size / 2 / res, r);
      g.fillStyle = m.color || '#333';
      g.fill();
      g.strokeStyle = m.stroke || '#111';
      g.lineWidth = 1.5;
      g.stroke();
      const data = g.getImageData(0, 0, size, size).data;
      sp = { size, half: size >> 1, px: new Uint32Array(data.buffer.slice(0)) };
    }
    cache.set(key, sp);
    return (m._sp = sp);
  }

  /** The sprites of one device pixel ratio and mode (shapes at the ratio, a crowd at half of
   * it: `res` device px per CSS px): a new one when the ratio changes, so sprites kept on
   * markers are never of another ratio. */
  _spriteTag(crowd) {
    if (!this._tags || this._tags.dpr !== this.dpr) this._tags = { dpr: this.dpr, modes: [{ cache: new Map(), res: this.dpr }, { cache: new Map(), res: this.dpr / 2 }] };
    return this._tags.modes[crowd ? 1 : 0];
  }

  _drawSpecialMarkers(ctx, special) {
    // the markers with a ring or a label (a few hundred incidents at most) that lie on one
    // tile, batched: their shapes by style (one path each), their rings by colour,
    // then their labels, each copied from a sprite rasterised once per text (no text shaping
    // per marker per frame)
    const sgroups = this._sgroups || (this._sgroups = new Map());
    const rings = this._rings || (this._rings = new Map());
    for (const g of sgroups.values()) g.length = 0;
    for (const g of rings.values()) g.length = 0;
    for (const s of special) {
      const m = s[0];
      const key = m._key || (m._key = `${m.shape}|${m.size || 6}|${m.color}|${m.stroke}`);
      let g = sgroups.get(key);
      if (!g) sgroups.set(key, (g = []));
      g.push(s);
      if (m.ring) {
        let rg = rings.get(m.ring);
        if (!rg) rings.set(m.ring, (rg = []));
        rg.push(s);
      }
    }
    ctx.lineWidth = 1.5;
    for (const g of sgroups.values()) {
      if (!g.length) continue;
      const m = g[0][0];
      ctx.beginPath();
      for (const [mm, x, y] of g) shapePath(ctx, mm.shape, x, y, mm.size || 6);
      ctx.fillStyle = m.color || '#333';
      ctx.fill();
      ctx.strokeStyle = m.stroke || '#111';
      ctx.stroke();
    }
    ctx.lineWidth = 3;
    for (const [color, g] of rings) {
      if (!g.length) continue;
      ctx.beginPath();
      for (const [m, x, y] of g) {
        const r = (m.size || 6) + 5;
        ctx.moveTo(x + r, y);
        ctx.arc(x, y, r, 0, 2 * Math.PI);
      }
      ctx.strokeStyle = color;
      ctx.stroke();
    }
    // the labels chosen and placed by _drawTiles (their sprites in s[3], places in s[4], s[5])
    for (const [, , , sp, lx, ly] of special) {
      if (!sp) continue;
      ctx.drawImage(sp.canvas, lx, ly, sp.w, LABEL_H);
    }
  }

  /** A label as drawn on the map (bold 13 px, dark on a white halo), rasterised once per text
   * and device pixel ratio and kept (the cache is emptied when it holds 2,000 texts). */
  _labelSprite(text) {
    const cache = this._labels || (this._labels = new Map());
    if (this._labelsDpr !== this.dpr) {
      cache.clear();
      this._labelsDpr = this.dpr;
    }
    let sp = cache.get(text);
    if (sp) return sp;
    if (cache.size >= 2000) cache.clear();
    const measure = (this._measure ||= document.createElement('canvas').getContext('2d'));
    measure.font = LABEL_FONT;
    const w = Math.ceil(measure.measureText(text).width) + 2 * LABEL_PAD;
    const cw = Math.max(1, Math.round(w * this.dpr));
    const ch = Math.round(LABEL_H * this.dpr);
    // an OffscreenCanvas where there is one: no DOM element per label
    const canvas = typeof OffscreenCanvas === 'function' ? new OffscreenCanvas(cw, ch) : Object.assign(document.createElement('canvas'), { width: cw, height: ch });
    const c = canvas.getContext('2d');
    c.scale(this.dpr, this.dpr);
    c.font = LABEL_FONT;
    c.lineJoin = 'round';
    c.lineWidth = 3;
    c.strokeStyle = '#fff';
    c.strokeText(text, LABEL_PAD, LABEL_PAD + LABEL_ASCENT);
    c.fillStyle = '#111';
    c.fillText(text, LABEL_PAD, LABEL_PAD + LABEL_ASCENT);
    sp = { canvas, w };
    cache.set(text, sp);
    return sp;
  }

  // ---- input ----------------------------------------------------------------------------

  _local(e) {
    const r = this.surface.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  _pointerDown(e) {
    this.surface.setPointerCapture?.(e.pointerId);
    const p = this._local(e);
    this._pointers.set(e.pointerId, p);
    if (this._pointers.size === 1) this._downAt = { ...p, moved: false };
    else this._downAt = null; // a pinch is never a click
    this.surface.style.cursor = 'grabbing';
  }

  _pointerMove(e) {
    const prev = this._pointers.get(e.pointerId);
    if (!prev) return;
    const p = this._local(e);
    if (this._pointers.size === 1) {
      this.panBy(p.x - prev.x, p.y - prev.y);
      if (this._downAt && Math.hypot(p.x - this._downAt.x, p.y - this._downAt.y) > 5) this._downAt.moved = true;
    } else if (this._pointers.size === 2) {
      const other = [...this._pointers.entries()].find(([id]) => id !== e.pointerId)[1];
      const d0 = Math.hypot(prev.x - other.x, prev.y - other.y);
      const d1 = Math.hypot(p.x - other.x, p.y - other.y);
      const mid0 = { x: (prev.x + other.x) / 2, y: (prev.y + other.y) / 2 };
      const mid1 = { x: (p.x + other.x) / 2, y: (p.y + other.y) / 2 };
      this.panBy(mid1.x - mid0.x, mid1.y - mid0.y);
      if (d0 > 0 && d1 > 0) this.zoomBy(d1 / d0, mid1.x, mid1.y);
    }
    this._pointers.set(e.pointerId, p);
  }

  _pointerUp(e) {
    const had = this._pointers.delete(e.pointerId);
    if (this._pointers.size === 0) this.surface.style.cursor = 'grab';
    const down = this._downAt;
    if (!had || !down || down.moved || this._pointers.size) return;
    this._downAt = null;
    const p = this._local(e);
    const hit = this.markerAt(p.x, p.y);
    const ll = this.unproject(p.x, p.y);
    for (const cb of this.clickCbs) {
      try {
        cb(ll.lat, ll.lon, hit);
      } catch (err) {
        console.error('map click handler', err);
      }
    }
  }

  /** The topmost marker within 12 CSS px of (x, y), or null. */
  markerAt(x, y) {
    let best = null;
    let bestD = 12;
    for (let i = this.markers.length - 1; i >= 0; i--) {
      const m = this.markers[i];
      if (!Number.isFinite(m.lat)) continue;
      const p = this.project(m.lat, m.lon);
      const d = Math.hypot(p.x - x, p.y - y) - (m.size || 6) / 2;
      if (d < bestD) {
        bestD = d;
        best = m;
      }
    }
    return best;
  }

  _wheel(e) {
    e.preventDefault();
    const p = this._local(e);
    const dy = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
    this.zoomBy(Math.exp(-dy * 0.0015), p.x, p.y);
  }
}
