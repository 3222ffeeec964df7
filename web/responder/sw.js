// The responder app's service worker: keeps a copy of the app shell (the page, its styles,
// scripts and catalogues, the shared modules) and of the road map, so the app opens with no
// connection and says it is offline instead of showing the browser's error page.
//
// The shell is network-first (a new release reaches the phone as soon as it is online; the
// server sends `Cache-Control: no-cache`), the map is cache-first and refreshed in the
// background (it changes only with a new map file). Nothing with a token is ever cached: the
// WebSocket and the authenticated API routes pass straight through.

const CACHE = 'responder-shell-v1';
const MAP_CACHE = 'responder-map-v1';
const SHELL = [
  './',
  'index.html',
  'app.css',
  'main.js',
  'store.js',
  'tracker.js',
  'locale.js',
  'messages.en.js',
  'messages.zh-CN.js',
  'route-map.js',
  'login.js',
  'home.js',
  'notice.js',
  'offer.js',
  'job.js',
  'timebank.js',
  'alerter.js',
  'manifest.webmanifest',
  'icon.svg',
  'icon-192.png',
  'icon-512.png',
  '../common/connection.js',
  '../common/i18n.js',
  '../common/map.js',
];
const MAP_URL = new URL('../v1/map', self.registration.scope).href;

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // One by one, so one missing file does not leave the phone with no offline copy at all.
      await Promise.all(
        SHELL.map((p) => cache.add(new Request(new URL(p, self.registration.scope), { cache: 'no-cache' })).catch(() => {})),
      );
      const maps = await caches.open(MAP_CACHE);
      if (!(await maps.match(MAP_URL))) await maps.add(MAP_URL).catch(() => {});
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name !== CACHE && name !== MAP_CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (url.href === MAP_URL) {
    event.respondWith(mapFirst(event));
    return;
  }
  if (url.pathname.startsWith('/responder/') || url.pathname.startsWith('/common/')) {
    event.respondWith(networkFirst(req));
  }
});

async function networkFirst(req) {
  const cache = await caches.open(CACHE);
  // The page may be opened as /responder/?access_token=…: never store that address.
  const key = new URL(req.url);
  key.search = '';
  try {
    const res = await fetch(req);
    if (res.ok) await cache.put(key.href, res.clone());
    return res;
  } catch (err) {
    const hit = (await cache.match(key.href)) || (req.mode === 'navigate' ? await cache.match(new URL('./', self.registration.scope).href) : undefined);
    if (hit) return hit;
    throw err;
  }
}

async function mapFirst(event) {
  const cache = await caches.open(MAP_CACHE);
  const hit = await cache.match(MAP_URL);
  const fresh = fetch(MAP_URL)
    .then(async (res) => {
      if (res.ok) await cache.put(MAP_URL, res.clone());
      return res;
    })
    .catch(() => undefined);
  if (hit) {
    event.waitUntil(fresh);
    return hit;
  }
  const res = await fresh;
  return res || new Response('{"error":"offline"}', { status: 503, headers: { 'Content-Type': 'application/json' } });
}
