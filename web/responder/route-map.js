// The one road map of the app (the shared canvas RoadMap over GET /v1/map), moved into the
// screen that needs it: the way to the person on an offer, the way to the door on a job.
import { RoadMap } from '../common/map.js';

const YOU = '#0b57d0';
const PERSON = '#a4161a';

export function createRouteMap(loc) {
  const el = document.createElement('div');
  el.className = 'map-canvas';
  el.style.cssText = 'position:absolute;inset:0';
  const message = document.createElement('p');
  message.className = 'map-message';
  let map = null;
  let loading = null;
  let failed = false;
  let fittedFor = null;
  // Until the volunteer pans or zooms, the map keeps the whole way in view (new position,
  // new slot size); after that it is theirs until the next job.
  let userMoved = false;
  el.addEventListener('pointerdown', () => (userMoved = true));
  el.addEventListener('wheel', () => (userMoved = true), { passive: true });
  let last = null;
  let fitPts = null; // what the view must hold: the route and both ends

  function load() {
    if (map || loading || failed) return;
    message.textContent = loc().t('map.loading');
    el.append(message);
    loading = RoadMap.create(el, { labels: labels() })
      .then((m) => {
        map = m;
        message.remove();
        // Created after the map's own observer, so it runs after it: the map already knows
        // its new size when this refits a route just shown in a slot of another size.
        new ResizeObserver(() => refit()).observe(el);
        if (last) draw(last);
      })
      .catch(() => {
        failed = true;
        message.textContent = loc().t('map.unavailable');
      })
      .finally(() => {
        loading = null;
      });
  }

  function labels() {
    const t = loc().t;
    return { zoomIn: t('map.zoom_in'), zoomOut: t('map.zoom_out') };
  }

  function refit() {
    // A hidden slot has no size: fitting into it would zoom out to the whole city.
    if (!map || userMoved || !fitPts || !el.clientWidth || !el.clientHeight) return;
    // At least ~270 m across: close enough to read the streets of the last turns on foot.
    map.fitPoints(fitPts, 56, 0.0012);
  }

  function draw({ key, route, you, person }) {
    const t = loc().t;
    map.setRoute(route && route.length > 1 ? route : null, { color: YOU, width: 6 });
    const markers = [];
    if (person) markers.push({ id: 'person', ...person, shape: 'diamond', color: PERSON, stroke: '#fff', size: 11, label: t('map.person') });
    if (you) markers.push({ id: 'you', ...you, shape: 'circle', color: YOU, stroke: '#fff', size: 10, ring: YOU, label: t('map.you') });
    map.setMarkers(markers);
    if (fittedFor !== key) {
      fittedFor = key;
      userMoved = false;
    }
    fitPts = [...(route || [])];
    if (you) fitPts.push(you);
    if (person) fitPts.push(person);
    refit();
  }

  return {
    /** Shows the map in `slot` with the route and the two ends; `key` names the job. */
    show(slot, view) {
      if (el.parentElement !== slot) slot.append(el);
      slot.setAttribute('aria-label', view.label);
      last = view;
      if (map) draw(view);
      else load();
    },
    relabel() {
      if (map) map.setLabels(labels());
      if (map && last) draw(last);
      if (failed) message.textContent = loc().t('map.unavailable');
    },
  };
}
