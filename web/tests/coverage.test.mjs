// Live coverage in the console, in a real Chromium against a real `dispatch serve` on the real
// map: three volunteers on duty, the operator shows coverage and sees the hexagons drawn and
// the shares the server computed, in English and Chinese; hiding it clears the map; an
// operator without the dispatch or care role is told why, in the server's words.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { testRoster, startServer, getJson, openBrowser, artifactPath, waitFor, sha256hex, WsClient } from './support.mjs';

const { roster, tokens } = testRoster();
roster.operators.push({ id: 'OP3', token_sha256: sha256hex('tok-OP3'), roles: ['people'] });
tokens.OP3 = 'tok-OP3';
let srv;
let browser;
let context;
let page;
let errors;
const phones = [];

before(async () => {
  srv = await startServer({ roster, args: ['--coverage-period-ms', '200'] });
  ({ browser, context, page, errors } = await openBrowser({ locale: 'en-US' }));
});

after(async () => {
  for (const p of phones) p.close();
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

test('the operator sees live coverage on the map and in numbers, in both languages', async () => {
  for (const id of ['V1', 'V2', 'V3']) {
    const phone = await WsClient.connect(srv.base, tokens[id]);
    phones.push(phone);
    await phone.request({ type: 'availability', status: 'available' });
  }
  let api;
  await waitFor(async () => {
    const { status, body } = await getJson(srv.base, '/v1/coverage', tokens.OP1);
    api = body;
    return status === 200 && body.summary.community_responders === 3;
  }, 20000, 'coverage counting the three volunteers');
  assert.equal(api.summary.overall.elders, 5);
  assert.ok(api.features.length >= 1);

  await page.goto(`${srv.base}/console/?access_token=${encodeURIComponent(tokens.OP1)}`);
  const toggle = page.getByTestId('coverage-toggle');
  await toggle.click();
  assert.equal(await toggle.getAttribute('aria-pressed'), 'true');
  const door = page.getByTestId('coverage-door');
  await door.waitFor({ timeout: 15000 });
  assert.equal(Number(await door.getAttribute('data-share')), api.summary.overall.share_180_s);
  assert.equal(Number(await page.getByTestId('coverage-circle').getAttribute('data-share')), api.summary.overall.share_900_s);
  assert.match(await door.innerText(), new RegExp(`${api.summary.overall.within_180_s} of 5 elders`));
  assert.match(await page.getByTestId('coverage-counted').innerText(), /3 volunteers and grid workers/);
  const levels = await page.getByTestId('coverage-levels').locator('tbody tr').count();
  assert.equal(levels, 5, 'one row per care level present');
  // Every hexagon the server sent is drawn on the map.
  await waitFor(() => page.evaluate((n) => window.__console.coverage.drawn === n, api.features.length), 5000, 'hexagons drawn');
  await page.screenshot({ path: artifactPath('console-coverage-en.png') });

  await page.selectOption('#lang', 'zh-CN');
  await page.getByTestId('coverage-door').getByText('3 分钟内可到达').waitFor({ timeout: 5000 });
  assert.equal(await toggle.innerText(), '隐藏覆盖范围');
  await page.screenshot({ path: artifactPath('console-coverage-zh.png') });

  // Hidden: the panel goes and nothing is drawn.
  await toggle.click();
  assert.equal(await page.getByTestId('coverage-panel').isHidden(), true);
  await waitFor(() => page.evaluate(() => window.__console.coverage.drawn === 0), 5000, 'hexagons cleared');
  assert.deepEqual(errors, []);
});

test('a refusal shows the server’s words, and a malformed answer breaks nothing', async () => {
  const p = await context.newPage();
  const errs = [];
  p.on('pageerror', (e) => errs.push(String(e)));
  const message = 'coverage is for operators with the dispatch or care role; OP1 holds neither';
  await p.route('**/v1/coverage*', (route) => route.fulfill({
    status: 403,
    contentType: 'application/json',
    body: JSON.stringify({ type: 'error', code: 'missing_role', message }),
  }));
  await p.goto(`${srv.base}/console/?access_token=${encodeURIComponent(tokens.OP1)}`);
  await p.getByTestId('coverage-toggle').click();
  const error = p.getByTestId('coverage-panel').locator('.error');
  await error.waitFor({ timeout: 10000 });
  assert.match(await error.innerText(), /dispatch or care role/);
  assert.equal(await p.getByTestId('coverage-door').count(), 0);
  assert.equal(await p.evaluate(() => window.__console.coverage.drawn), 0);
  await p.getByTestId('coverage-toggle').click();

  // Hexagons without coordinates, a share that is not a number: skipped or drawn, no error.
  const { body } = await getJson(srv.base, '/v1/coverage', tokens.OP1);
  body.features = [
    { type: 'Feature', geometry: null, properties: {} },
    { type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[1, 2]]] }, properties: { share_180_s: 'x' } },
    ...body.features,
  ];
  await p.unroute('**/v1/coverage*');
  await p.route('**/v1/coverage*', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) }));
  await p.getByTestId('coverage-toggle').click();
  await p.getByTestId('coverage-door').waitFor({ timeout: 10000 });
  await waitFor(() => p.evaluate((n) => window.__console.coverage.drawn === n, body.features.length - 2), 5000, 'the valid hexagons drawn');
  assert.deepEqual(errs, []);
  await p.close();
});
