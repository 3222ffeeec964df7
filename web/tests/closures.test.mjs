// Road closures in the console, in a real Chromium against a real `dispatch serve` on the real
// map: a dispatcher draws a line along a road by clicking the map, lays the closure, sees it
// listed and drawn (English and Chinese), a second console learns of it from the event
// stream, and the dispatcher reopens the road. A refusal shows the server's words; a
// malformed list breaks nothing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { testRoster, startServer, getJson, postAlert, openBrowser, artifactPath, waitFor, WsClient } from './support.mjs';

const { roster, tokens } = testRoster();
let srv;
let browser;
let context;
let page;
let errors;
let phone;

before(async () => {
  srv = await startServer({ roster });
  ({ browser, context, page, errors } = await openBrowser({ locale: 'en-US' }));
});

after(async () => {
  if (phone) phone.close();
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

/** The longest straight piece of an offer's road route: two consecutive vertices (the route
 * runs responder, snapped start, vertices…, snapped end, elder). */
async function aRoadPiece() {
  phone = await WsClient.connect(srv.base, tokens.V3);
  await phone.request({ type: 'availability', status: 'available' });
  const { status } = await postAlert(srv.base, tokens.GW1, { alert_id: 'c-1', kind: 'fall', elder_id: 'E3' });
  assert.equal(status, 202);
  const offer = await phone.next((f) => f.type === 'offer', 10000);
  const r = offer.route;
  assert.ok(r.length >= 6, JSON.stringify(r));
  let best = null;
  for (let i = 2; i + 3 < r.length; i++) {
    const d = Math.hypot(r[i + 1].lat - r[i].lat, (r[i + 1].lon - r[i].lon) * Math.cos((r[i].lat * Math.PI) / 180));
    if (!best || d > best.d) best = { d, a: r[i], b: r[i + 1] };
  }
  return [best.a, best.b];
}

/** Clicks the map at a position (after fitting the view to `around`). */
async function clickAt(p, pt) {
  const box = await p.getByTestId('map').boundingBox();
  const xy = await p.evaluate(({ lat, lon }) => window.__console.map.project(lat, lon), pt);
  const panel = await p.getByTestId('closures-panel').boundingBox();
  const [x, y] = [box.x + xy.x, box.y + xy.y];
  assert.ok(!(x >= panel.x && x <= panel.x + panel.width && y >= panel.y && y <= panel.y + panel.height), 'the point is under the panel');
  await p.mouse.click(x, y);
}

test('a dispatcher draws a closure along a road, lays it, sees it, and reopens the road', async () => {
  const [a, b] = await aRoadPiece();
  await page.goto(`${srv.base}/console/?access_token=${encodeURIComponent(tokens.OP1)}`);
  // A second console, open before the closure is laid, learns of it from the event stream.
  const other = await context.newPage();
  await other.goto(`${srv.base}/console/?access_token=${encodeURIComponent(tokens.OP1)}`);
  await other.getByTestId('closures-toggle').waitFor({ state: 'visible', timeout: 15000 });

  const toggle = page.getByTestId('closures-toggle');
  await toggle.click();
  assert.equal(await toggle.getAttribute('aria-pressed'), 'true');
  await page.getByTestId('closures-panel').getByText('No road is closed or slowed.').waitFor({ timeout: 10000 });
  await page.getByTestId('closure-draw').click();
  // Centred and not too close: the points stay clear of the panel in the map's top-left
  // corner (1 CSS px is about a metre, well inside the 10 m a drawn line catches).
  await page.evaluate((pts) => window.__console.map.fitPoints(pts, 120, 0.004), [a, b]);
  await page.evaluate(() => window.__console.map.drawNow());
  await clickAt(page, a);
  await clickAt(page, b);
  assert.equal(await page.getByTestId('closure-points').getAttribute('data-points'), '2');
  await page.getByTestId('closure-mode-foot').check();
  await page.getByTestId('closure-hours').fill('2');
  await page.getByTestId('closure-reason').fill('burst water main');
  const before = Date.now();
  await page.getByTestId('closure-save').click();

  const item = page.getByTestId('closure-item');
  await item.waitFor({ timeout: 10000 });
  const { body } = await getJson(srv.base, '/v1/closures', tokens.OP1);
  assert.equal(body.features.length, 1);
  const f = body.features[0];
  assert.equal(await item.getAttribute('data-closure-id'), f.id);
  assert.equal(f.properties.reason, 'burst water main');
  assert.deepEqual(f.properties.modes, ['car', 'foot']);
  assert.ok(f.properties.foot_segments >= 1, JSON.stringify(f.properties));
  const hours = (f.properties.ends_at - before) / 3600000;
  assert.ok(hours > 1.99 && hours < 2.01, `${hours} h`);
  assert.match(await item.innerText(), /Closed · cars · on foot/);
  assert.match(await item.innerText(), /burst water main/);
  assert.equal(await toggle.innerText(), 'Road closures (1)');
  // Every covered road piece is drawn.
  const lines = f.geometry.coordinates.length;
  await waitFor(() => page.evaluate((n) => window.__console.closures.drawn === n, lines), 5000, 'closure drawn');
  await page.screenshot({ path: artifactPath('console-closures-en.png') });
  await waitFor(() => other.evaluate(() => window.__console.closures.features.length === 1), 5000, 'the other console told');

  await page.selectOption('#lang', 'zh-CN');
  await item.getByText('封闭 · 车辆 · 步行').waitFor({ timeout: 5000 });
  assert.equal(await page.getByTestId('closure-lift').innerText(), '重新开放');
  await page.screenshot({ path: artifactPath('console-closures-zh.png') });
  await page.selectOption('#lang', 'en');

  await page.getByTestId('closure-lift').click();
  await page.getByTestId('closures-panel').getByText('No road is closed or slowed.').waitFor({ timeout: 10000 });
  const after = await getJson(srv.base, '/v1/closures', tokens.OP1);
  assert.deepEqual(after.body.features, []);
  await waitFor(() => page.evaluate(() => window.__console.closures.drawn === 0), 5000, 'closure cleared');
  await waitFor(() => other.evaluate(() => window.__console.closures.features.length === 0), 5000, 'the other console told of the reopening');
  await other.close();
  assert.deepEqual(errors, []);
});

test('a refusal shows the server’s words, and a malformed list breaks nothing', async () => {
  const p = await context.newPage();
  const errs = [];
  p.on('pageerror', (e) => errs.push(String(e)));
  const message = 'closure console-x covers no road on this map for by car';
  await p.route('**/v1/closures', (route) => {
    if (route.request().method() === 'POST') {
      return route.fulfill({ status: 422, contentType: 'application/json', body: JSON.stringify({ type: 'error', code: 'invalid', message }) });
    }
    return route.fulfill({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({
        type: 'FeatureCollection',
        features: [
          null,
          { type: 'Feature', id: 7, properties: {} },
          { type: 'Feature', id: 'no-end', properties: { holding: true } },
          {
            type: 'Feature',
            id: 'odd',
            geometry: { type: 'MultiLineString', coordinates: [[[1]], 'x', [[1, 2], 'y']] },
            properties: { holding: true, ends_at: Date.now() + 3600000, effect: { type: 'closed' }, modes: ['car'] },
          },
        ],
      }),
    });
  });
  await p.goto(`${srv.base}/console/?access_token=${encodeURIComponent(tokens.OP1)}`);
  await p.getByTestId('closures-toggle').click();
  await p.getByTestId('closure-item').waitFor({ timeout: 10000 });
  assert.equal(await p.getByTestId('closure-item').count(), 1, 'only the well-formed entry is listed');
  assert.equal(await p.evaluate(() => window.__console.closures.drawn), 0);
  await p.getByTestId('closure-draw').click();
  const box = await p.getByTestId('map').boundingBox();
  await p.mouse.click(box.x + 500, box.y + 200);
  await p.mouse.click(box.x + 560, box.y + 240);
  await p.getByTestId('closure-mode-foot').check();
  await p.getByTestId('closure-reason').fill('flooded underpass');
  await p.getByTestId('closure-save').click();
  const error = p.getByTestId('closure-error');
  await error.waitFor({ timeout: 10000 });
  assert.match(await error.innerText(), /covers no road/);
  // What the dispatcher chose is still there, to correct and try again.
  assert.equal(await p.getByTestId('closure-mode-foot').isChecked(), true);
  assert.equal(await p.getByTestId('closure-reason').inputValue(), 'flooded underpass');
  assert.equal(await p.getByTestId('closure-points').getAttribute('data-points'), '2');
  assert.deepEqual(errs, []);
  await p.close();
});
