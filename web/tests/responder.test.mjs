// The responder app in a real Chromium with a phone's viewport, touch and a real position on
// the Porto Alegre map, against a real `dispatch serve` on loopback: the volunteer's journeys
// from sign-in to the time bank, decline, expiry, a server restart, a wrong code, going off
// duty, and opening with no connection; an axe-core audit of every screen; screenshots of
// each screen in target/web-artifacts/ and, with UPDATE_DOCS_IMAGES=1, of the main ones in
// docs/images/.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { testRoster, startServer, postAlert, getJson, waitFor, WsClient, artifactPath, sha256hex, updateDocsImage } from './support.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** The roster's volunteers' homes (testRoster): where their phones are. */
const HOME = {
  V1: { latitude: -30.027, longitude: -51.22 },
  V2: { latitude: -30.032, longitude: -51.219 },
  V3: { latitude: -30.03, longitude: -51.216 },
  V4: { latitude: -30.028, longitude: -51.223 },
};

const { roster, tokens } = testRoster();
let browser = null;

async function getBrowser() {
  if (!browser) {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox'],
    });
  }
  return browser;
}

after(async () => {
  if (browser) await browser.close();
});

/** A phone: 390×844, touch, the given language, location allowed and set to `at`. */
async function phone(base, { locale = 'en-GB', at = HOME.V1, countFrames = false } = {}) {
  const b = await getBrowser();
  const context = await b.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 1,
    isMobile: true,
    hasTouch: true,
    locale,
    geolocation: { ...at, accuracy: 10 },
    permissions: ['geolocation'],
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  if (countFrames) {
    // Counts what the page sends and which geolocation watches are live, as a network tap
    // and the phone's location indicator would.
    await page.addInitScript(() => {
      window.__sent = [];
      const send = WebSocket.prototype.send;
      WebSocket.prototype.send = function (data) {
        try {
          window.__sent.push({ ...JSON.parse(data), sentAt: Date.now() });
        } catch {
          window.__sent.push({ type: '?', sentAt: Date.now() });
        }
        return send.call(this, data);
      };
      window.__watches = new Set();
      const geo = navigator.geolocation;
      const watch = geo.watchPosition.bind(geo);
      const clear = geo.clearWatch.bind(geo);
      geo.watchPosition = (...a) => {
        const id = watch(...a);
        window.__watches.add(id);
        return id;
      };
      geo.clearWatch = (id) => {
        window.__watches.delete(id);
        return clear(id);
      };
    });
  }
  return { context, page, errors };
}

const sel = (id) => `[data-testid="${id}"]`;
const visible = (page, id, timeout = 15000) => page.locator(sel(id)).waitFor({ state: 'visible', timeout });
const status = (page) => page.locator(sel('connection-status')).getAttribute('data-state');

async function shot(page, name, { docs = false } = {}) {
  await page.screenshot({ path: artifactPath(`responder-${name}.png`) });
  if (docs) updateDocsImage(`responder-${name}.png`);
}

/** axe-core on the page as it is: no serious or critical violations. */
async function audit(page, what) {
  // Evaluated over the DevTools protocol: the page's own CSP (script-src 'self') stays on.
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `axe on the ${what} screen: ${JSON.stringify(bad, null, 1)}`);
}

/** Every visible button and field is at least 48 × 48 CSS px (older fingers, shaky hands). */
async function assertTapTargets(page, what) {
  const small = await page.evaluate(() =>
    [...document.querySelectorAll('button, input, a[href]')]
      .filter((el) => el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden')
      .map((el) => ({ el: el.id || el.dataset.testid || el.textContent.trim().slice(0, 20), r: el.getBoundingClientRect() }))
      .filter(({ r }) => r.width < 48 || r.height < 48)
      .map(({ el, r }) => `${el}: ${Math.round(r.width)}×${Math.round(r.height)}`),
  );
  assert.deepEqual(small, [], `tap targets under 48 px on the ${what} screen`);
}

/** How many pixels of the map (its canvases composited) have the route's blue (#0b57d0). */
function routePixels(page, mapId) {
  return page.evaluate((id) => {
    // what the map shows: its canvases (roads, then the overlays) composited in DOM order
    const layers = [...document.querySelectorAll(`#${id} canvas`)];
    if (!layers.length || !layers[0].width) return 0;
    const c = document.createElement('canvas');
    c.width = layers[0].width;
    c.height = layers[0].height;
    for (const l of layers) c.getContext('2d').drawImage(l, 0, 0);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (Math.abs(d[i] - 11) < 20 && Math.abs(d[i + 1] - 87) < 20 && Math.abs(d[i + 2] - 208) < 20) n++;
    }
    return n;
  }, mapId);
}

/** Signs in through the printed card's link and goes on duty with one tap. */
async function signInOnDuty(page, base, id) {
  await page.goto(`${base}/responder/?access_token=${encodeURIComponent(tokens[id])}`);
  await waitFor(async () => (await status(page)) === 'online', 15000, `${id} online`);
  await page.locator(sel('duty-toggle')).click();
  await waitFor(async () => (await page.locator(sel('duty-toggle')).getAttribute('aria-checked')) === 'true', 5000, 'duty on');
}

/** An operator's view: the responders of a fresh snapshot, by id. */
async function snapshotResponders(base) {
  const op = await WsClient.connect(base, tokens.OP1);
  try {
    const snap = await op.request({ type: 'subscribe' });
    assert.equal(snap.type, 'snapshot');
    return Object.fromEntries(snap.state.responders.map((r) => [r.id, r]));
  } finally {
    op.close();
  }
}

let alertNo = 0;
const fall = (base, elder) =>
  postAlert(base, tokens.GW1, { alert_id: `resp-test-${process.pid}-${++alertNo}`, kind: 'fall', elder_id: elder });

test('a volunteer signs in, goes on duty, accepts a fall nearby, arrives, completes and sees the time bank grow', async () => {
  const srv = await startServer({ roster });
  const { context, page, errors } = await phone(srv.base, { at: HOME.V1, countFrames: true });
  const locations = () => page.evaluate(() => window.__sent.filter((f) => f.type === 'location'));
  try {
    const op = await WsClient.connect(srv.base, tokens.OP1);
    await op.request({ type: 'subscribe' });

    await page.goto(`${srv.base}/responder/?access_token=${tokens.V1}`);
    await waitFor(async () => (await status(page)) === 'online', 15000, 'online');
    assert.ok(!page.url().includes('access_token'), `the code left the address bar: ${page.url()}`);
    await page.locator('#hello', { hasText: 'V1' }).waitFor();
    assert.equal(await page.locator(sel('duty-toggle')).getAttribute('aria-checked'), 'false');
    await page.locator(sel('time-bank')).getByText('0 minutes').waitFor();
    await shot(page, 'home-off-en');
    await audit(page, 'home (off duty)');

    // One tap: on duty, and the server sees where the phone is.
    await page.locator(sel('duty-toggle')).click();
    const moved = await op.next((f) => f.type === 'responder_moved' && f.responder_id === 'V1', 15000);
    assert.ok(Math.abs(moved.position.lat - HOME.V1.latitude) < 1e-5 && Math.abs(moved.position.lon - HOME.V1.longitude) < 1e-5, JSON.stringify(moved));
    await op.next((f) => f.type === 'responder_availability' && f.responder_id === 'V1' && f.status === 'available', 10000);
    const seen = await snapshotResponders(srv.base);
    assert.equal(seen.V1.status.state ?? seen.V1.status, 'available', JSON.stringify(seen.V1));
    await page.getByText('Position shared at').waitFor();
    await shot(page, 'home-on-en');
    await audit(page, 'home (on duty)');
    await assertTapTargets(page, 'home');

    // A fall next door: the offer fills the screen, with its countdown and the way on the map.
    const alert = await fall(srv.base, 'E1');
    assert.equal(alert.status, 202, JSON.stringify(alert.body));
    await visible(page, 'offer');
    const incidentId = alert.body.incident_id;
    await page.locator(sel('offer')).getByText('Someone has fallen').waitFor();
    const countdown = await page.locator(sel('offer-countdown')).textContent();
    assert.match(countdown, /Answer within 0:[0-3]\d/);
    const left = Number(await page.locator(sel('offer-countdown')).getAttribute('data-seconds-left'));
    assert.ok(left > 15 && left <= 30, `seconds left ${left}`);
    assert.match(await page.locator('#offer-distance').textContent(), /\d+ m away · about \d+ minutes?/);
    await waitFor(async () => (await routePixels(page, 'offer-map')) > 200, 15000, 'the route drawn on the offer map');
    await page.waitForTimeout(300); // the countdown's next tick, so the screenshot is settled
    await shot(page, 'offer-en', { docs: true });
    await audit(page, 'offer');
    await assertTapTargets(page, 'offer');
    // The countdown counts down.
    await waitFor(
      async () => Number(await page.locator(sel('offer-countdown')).getAttribute('data-seconds-left')) < left,
      5000,
      'the countdown moving',
    );

    // Waiting on duty with a phone that stands still: one position, not a stream.
    assert.equal((await locations()).length, 1, 'idle: one position until 60 s pass or the phone moves 50 m');

    await page.locator(sel('offer-accept')).click();
    await visible(page, 'assigned');
    // En route: the position goes out every ~5 s, even from a phone whose fix has not changed.
    const enRouteFrom = (await locations()).length;
    await waitFor(async () => (await locations()).length >= enRouteFrom + 2, 15000, 'en-route positions');
    const times = (await locations()).slice(enRouteFrom - 1).map((f) => f.sentAt);
    for (let i = 1; i < times.length; i++) assert.ok(times[i] - times[i - 1] >= 4900, `en route every 5 s, not faster: ${times}`);
    await op.next((f) => f.type === 'assigned' && f.incident_id === incidentId && f.responder_id === 'V1', 10000);
    const job = page.locator(sel('assigned'));
    await job.getByText('Person: Dona Lúcia (E1)').waitFor();
    // What the door needs, and nothing a volunteer is not to see (medical notes, the family).
    const door = await page.locator(sel('door')).textContent();
    assert.match(door, /Rua Fictícia 12/);
    assert.match(door, /Seu Jorge, casa 14/);
    assert.equal(await page.locator(sel('door')).getByRole('link', { name: '+55 51 0000-1111' }).getAttribute('href'), 'tel:+555100001111');
    assert.doesNotMatch(await page.locator('body').textContent(), /anticoagulants|Maria/);
    await job.getByText('Someone has fallen').waitFor();
    assert.match(await page.locator('#job-eta').textContent(), /About \d+ minutes? \(\d+ m\)/);
    await waitFor(async () => (await routePixels(page, 'job-map')) > 200, 15000, 'the route drawn on the job map');
    assert.equal(await page.locator(sel('complete')).isDisabled(), true, 'complete waits for arrived');
    await shot(page, 'assigned-en', { docs: true });
    await audit(page, 'assigned');
    await assertTapTargets(page, 'assigned');

    await page.locator(sel('arrived')).click();
    await op.next((f) => f.type === 'responder_arrived' && f.incident_id === incidentId, 10000);
    await page.locator('#job-title', { hasText: 'You are with the person' }).waitFor();
    await shot(page, 'arrived-en');
    await page.locator(sel('complete')).click();
    await op.next((f) => f.type === 'time_bank_credited' && f.responder_id === 'V1', 10000);

    // Back home; the time bank shows what the server credited.
    await page.locator(sel('duty-toggle')).waitFor({ state: 'visible' });
    // Resting after an emergency, and until when (the server's `resting_until`): not a failure.
    await page.locator('#duty-explain', { hasText: /resting after your last emergency, until \d{1,2}:\d{2}/ }).waitFor({ timeout: 10000 });
    const bank = await getJson(srv.base, '/v1/responders/V1/time-bank', tokens.V1);
    assert.equal(bank.status, 200);
    assert.ok(bank.body.balance_minutes >= 1, JSON.stringify(bank.body));
    const minutes = bank.body.balance_minutes;
    const want = `${minutes} minute${minutes === 1 ? '' : 's'}`;
    await page.locator('#bank-balance', { hasText: want }).waitFor({ timeout: 10000 });
    await page.locator('#bank-history').getByText(`Job ${incidentId}`).waitFor();
    assert.equal(await page.locator(sel('offer')).isVisible(), false);
    assert.equal(await page.locator(sel('assigned')).isVisible(), false);
    await shot(page, 'time-bank-en');
    op.close();
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await srv.stop();
  }
});

test('a phone that goes offline on a job says so at once, and sends "I have arrived" once it is back', async () => {
  const srv = await startServer({ roster });
  const { context, page, errors } = await phone(srv.base, { at: HOME.V1 });
  try {
    const op = await WsClient.connect(srv.base, tokens.OP1);
    await op.request({ type: 'subscribe' });
    await signInOnDuty(page, srv.base, 'V1');
    const alert = await fall(srv.base, 'E1');
    assert.equal(alert.status, 202, JSON.stringify(alert.body));
    const id = alert.body.incident_id;
    await visible(page, 'offer');
    await page.locator(sel('offer-accept')).click();
    await visible(page, 'assigned');
    await op.next((f) => f.type === 'assigned' && f.incident_id === id && f.responder_id === 'V1', 10000);
    // Defect: the header said "Connected" for 12 s and more while nothing got through.
    await context.setOffline(true);
    await waitFor(async () => (await status(page)) === 'offline', 3000, 'offline at once');
    await page.locator(sel('arrived')).click();
    await page.getByText('No connection. “I have arrived” will be sent as soon as the connection is back.').waitFor({ timeout: 5000 });
    await page.waitForTimeout(1500);
    await shot(page, 'offline-queued-en');
    // Defect: back online, the arrival was not sent again and the note stayed beside "Connected".
    await context.setOffline(false);
    await op.next((f) => f.type === 'responder_arrived' && f.incident_id === id && f.responder_id === 'V1', 20000);
    await waitFor(async () => (await status(page)) === 'online', 15000, 'online again');
    await page.locator('#job-title', { hasText: 'You are with the person' }).waitFor({ timeout: 10000 });
    await page.getByText('will be sent as soon as').first().waitFor({ state: 'hidden', timeout: 5000 }); // the note is gone
    op.close();
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await srv.stop();
  }
});

test('a decline moves the offer to the next volunteer', async () => {
  const srv = await startServer({ roster });
  const { context, page, errors } = await phone(srv.base, { at: HOME.V1 });
  let v2 = null;
  try {
    await signInOnDuty(page, srv.base, 'V1');
    await page.getByText('Position shared at').waitFor();
    const alert = await fall(srv.base, 'E1');
    await visible(page, 'offer');

    // A second volunteer comes on duty nearby while the first one is still being asked.
    v2 = await WsClient.connect(srv.base, tokens.V2);
    v2.send({ type: 'location', position: { lat: HOME.V2.latitude, lon: HOME.V2.longitude } });
    assert.equal((await v2.request({ type: 'availability', status: 'available' })).type, 'ack');
    const offersBefore = v2.frames.filter((f) => f.type === 'offer').length;

    await page.locator(sel('offer-decline')).click();
    await page.getByText('You declined. We will ask someone else.').waitFor();
    await page.locator(sel('offer')).waitFor({ state: 'hidden' });
    await shot(page, 'declined-en');
    const offer = await v2.next((f) => f.type === 'offer', 20000);
    assert.equal(offersBefore, 0, 'the second volunteer was asked only after the decline');
    assert.equal(offer.incident_id, alert.body.incident_id);
    assert.deepEqual(errors, []);
  } finally {
    v2?.close();
    await context.close();
    await srv.stop();
  }
});

test('an offer survives a server restart, then expires on screen and says so', async () => {
  let srv = await startServer({ roster });
  const { context, page, errors } = await phone(srv.base, { at: HOME.V1 });
  try {
    await signInOnDuty(page, srv.base, 'V1');
    await page.getByText('Position shared at').waitFor();
    await fall(srv.base, 'E1');
    await visible(page, 'offer');
    const left = Number(await page.locator(sel('offer-countdown')).getAttribute('data-seconds-left'));
    assert.ok(left > 15, `the offer came with its full time (${left} s)`);
    const offerId = await page.locator(sel('offer')).getAttribute('data-offer-id');

    // The service restarts while the volunteer is being asked: the server re-sends the same
    // offer after `welcome`, and the app folds it into the one already on screen. On the close
    // the app asks who its code is (`/v1/whoami`, the route the console asks too), and no
    // request fails on the way.
    const failed = [];
    page.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${new URL(r.url()).pathname}`); });
    let probed = 0;
    page.on('request', (r) => { if (new URL(r.url()).pathname === '/v1/whoami') probed++; });
    await srv.stop({ keepData: true });
    await waitFor(async () => (await status(page)) !== 'online', 10000, 'the app noticing');
    srv = await startServer({ roster, dataDir: srv.dataDir, port: srv.port });
    await waitFor(async () => (await status(page)) === 'online', 20000, 'online again');
    assert.equal(await page.locator(sel('offer')).getAttribute('data-offer-id'), offerId);
    assert.equal(await page.locator(sel('offer')).isVisible(), true);
    assert.ok(probed > 0, 'the app asked who its code is');
    assert.deepEqual(failed, []);
    // Offers expire after 30 s (DESIGN §4): the countdown runs out, then the server withdraws
    // the offer with reason `expired` and the app says so in words.
    await page.getByText('The time to answer ran out.').waitFor({ timeout: 45000 });
    assert.equal(await page.locator(sel('offer')).isVisible(), false);
    await shot(page, 'expired-en');
    assert.equal(await page.locator('.notice[data-tone="error"]:visible').count(), 0);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await srv.stop();
  }
});

test('in Chinese: the app recovers its assignment after the server restarts, and calls an ambulance', async () => {
  let srv = await startServer({ roster });
  const { context, page, errors } = await phone(srv.base, { locale: 'zh-CN', at: HOME.V2 });
  let ambulance = null;
  try {
    await signInOnDuty(page, srv.base, 'V2');
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
    await page.getByText('值班中').first().waitFor();
    await page.getByText(/位置已于/).waitFor();
    await shot(page, 'home-on-zh-CN', { docs: true });
    const alert = await fall(srv.base, 'E2');
    await visible(page, 'offer');
    await page.locator(sel('offer')).getByText('有老人摔倒了').waitFor();
    assert.match(await page.locator(sel('offer-countdown')).textContent(), /请在 0:[0-3]\d 内回复/);
    await waitFor(async () => (await routePixels(page, 'offer-map')) > 200, 15000, 'route on the offer map');
    await shot(page, 'offer-zh-CN', { docs: true });
    await audit(page, 'offer (zh-CN)');
    await page.locator(sel('offer-accept')).click();
    await visible(page, 'assigned');
    await page.getByText('老人：王奶奶（编号 E2）').waitFor();
    assert.match(await page.locator(sel('door')).textContent(), /地址\s*示例路 8 号 3 单元[\s\S]*钥匙在\s*邻居 李先生/);
    await waitFor(async () => (await routePixels(page, 'job-map')) > 200, 15000, 'route on the job map');
    await shot(page, 'assigned-zh-CN', { docs: true });
    await audit(page, 'assigned (zh-CN)');

    // The service stops: the app says so and keeps the job on screen.
    await srv.stop({ keepData: true });
    await waitFor(async () => ['reconnecting', 'offline'].includes(await status(page)), 15000, 'the app noticing');
    assert.equal(await page.locator(sel('assigned')).isVisible(), true);
    await shot(page, 'reconnecting-zh-CN');

    // Same port, same data: the server re-sends the assignment and the app folds it in.
    srv = await startServer({ roster, dataDir: srv.dataDir, port: srv.port });
    await waitFor(async () => (await status(page)) === 'online', 30000, 'online again');
    await page.getByText('老人：王奶奶（编号 E2）').waitFor();
    assert.match(await page.locator(sel('door')).textContent(), /地址\s*示例路 8 号 3 单元[\s\S]*钥匙在\s*邻居 李先生/);
    assert.equal(await page.locator(sel('offer')).isVisible(), false);
    // The server agrees it is this volunteer's job: arrived and complete are accepted.
    await page.locator(sel('arrived')).click();
    await page.locator('#job-title', { hasText: '您已在老人身边' }).waitFor();

    // On scene the volunteer asks for an ambulance: the nearest crew on duty is sent.
    ambulance = await WsClient.connect(srv.base, tokens.A1);
    ambulance.send({ type: 'location', position: { lat: -30.012, lon: -51.22 } });
    assert.equal((await ambulance.request({ type: 'availability', status: 'available' })).type, 'ack');
    await page.locator(sel('need-ambulance')).click();
    const sent = await ambulance.next((f) => f.type === 'assigned', 10000);
    assert.equal(sent.incident_id, alert.body.incident_id);
    assert.equal(sent.role, 'ambulance');
    await page.locator(sel('need-ambulance'), { hasText: '已请求救护车' }).waitFor();
    assert.equal(await page.locator(sel('need-ambulance')).isDisabled(), true, 'asked once');
    await shot(page, 'ambulance-zh-CN');
    await page.locator(sel('complete')).click();
    await page.locator(sel('duty-toggle')).waitFor({ state: 'visible' });
    await page.locator('#bank-history').getByText(`任务 ${alert.body.incident_id}`).waitFor({ timeout: 10000 });
    // Nothing on screen calls the quiet re-sync a failure.
    assert.equal(await page.locator('.notice[data-tone="error"]:visible').count(), 0);
    await shot(page, 'time-bank-zh-CN');
    assert.deepEqual(errors, []);
  } finally {
    ambulance?.close();
    await context.close();
    await srv.stop();
  }
});

test('a wrong code gets a clear message on the sign-in screen, and the right one then works', async () => {
  const srv = await startServer({ roster });
  const { context, page, errors } = await phone(srv.base);
  try {
    await page.goto(`${srv.base}/responder/?access_token=not-a-real-code`);
    await page.getByText('This code was not accepted.').waitFor({ timeout: 15000 });
    assert.equal(await status(page), 'wrong_token');
    assert.ok(!page.url().includes('access_token'));
    assert.equal(await page.locator('#token').getAttribute('aria-invalid'), 'true');
    await shot(page, 'login-wrong-en');
    await audit(page, 'login');
    await assertTapTargets(page, 'login');

    // Large type that follows the phone's text size: 18 px at the default 16 px, and 1.5×
    // when the phone's default grows to 24 px (Chromium's default font size setting).
    const px = (q) => page.evaluate((q) => parseFloat(getComputedStyle(document.querySelector(q)).fontSize), q);
    assert.equal(await px('body'), 18);
    const submitHeight = (await page.locator('#login-form button').boundingBox()).height;
    const cdp = await context.newCDPSession(page);
    await cdp.send('Page.setFontSizes', { fontSizes: { standard: 24, fixed: 20 } });
    await waitFor(async () => (await px('body')) === 27, 5000, 'the text growing with the phone setting');
    assert.ok((await page.locator('#login-form button').boundingBox()).height > submitHeight * 1.3, 'the button grows with its text');
    await shot(page, 'login-large-text-en');
    await cdp.send('Page.setFontSizes', { fontSizes: { standard: 16, fixed: 13 } });

    // The language switch: Chinese at a tap, and back.
    await page.getByRole('button', { name: /Switch to Chinese|切换到中文/ }).click();
    await page.locator('#login-title', { hasText: '登录' }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
    await page.getByText('这个登录码无效。').waitFor();
    await shot(page, 'login-wrong-zh-CN');
    await page.getByRole('button', { name: /Switch to English/ }).click();
    await page.locator('#login-title', { hasText: 'Sign in' }).waitFor();

    // A real code, but not a responder's (an operator's, a gateway's): the socket opens, and
    // its `welcome` says whose it is; this app refuses it the same way, before any duty.
    // (A fresh load each, so the page starts from 'connecting', not from the last refusal.)
    for (const [who, other] of [['an operator', tokens.OP1], ['a gateway', tokens.GW1]]) {
      await page.goto(`${srv.base}/responder/?access_token=${encodeURIComponent(other)}`);
      await waitFor(async () => (await status(page)) === 'wrong_token', 15000, `${who}'s code refused`);
      await page.getByText('This code was not accepted.').waitFor();
      assert.equal(await page.evaluate(() => localStorage.getItem('responder.token')), null, `${who}'s code not kept`);
    }

    await page.locator('#token').fill(tokens.V3);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitFor(async () => (await status(page)) === 'online', 15000, 'online');
    await page.locator('#hello', { hasText: 'V3' }).waitFor();
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await srv.stop();
  }
});

test('going off duty stops the position updates and the location watch; the code moving to another phone is said', async () => {
  const srv = await startServer({ roster });
  const { context, page, errors } = await phone(srv.base, { at: HOME.V3, countFrames: true });
  const locations = () => page.evaluate(() => window.__sent.filter((f) => f.type === 'location').length);
  const watches = () => page.evaluate(() => window.__watches.size);
  try {
    await page.goto(`${srv.base}/responder/?access_token=${tokens.V3}`);
    await waitFor(async () => (await status(page)) === 'online', 15000, 'online');
    assert.equal(await locations(), 0, 'nothing is sent before going on duty');
    assert.equal(await watches(), 0, 'no location watch before going on duty');

    await page.locator(sel('duty-toggle')).click();
    await waitFor(async () => (await locations()) >= 1, 10000, 'a first position');
    assert.equal(await watches(), 1);
    // Moving 150 m while on duty sends the new position (the tap sees it).
    const before = await locations();
    await context.setGeolocation({ latitude: HOME.V3.latitude + 0.00135, longitude: HOME.V3.longitude, accuracy: 10 });
    await waitFor(async () => (await locations()) > before, 10000, 'the moved position');
    const last = await page.evaluate(() => window.__sent.filter((f) => f.type === 'location').at(-1));
    assert.ok(Math.abs(last.position.lat - (HOME.V3.latitude + 0.00135)) < 1e-6, JSON.stringify(last));

    await page.locator(sel('duty-toggle')).click();
    await waitFor(async () => (await page.evaluate(() => window.__sent.some((f) => f.type === 'availability' && f.status === 'off_duty'))), 5000, 'off duty sent');
    assert.equal(await watches(), 0, 'the location watch is cleared off duty');
    const offCount = await locations();
    for (let i = 1; i <= 3; i++) {
      await context.setGeolocation({ latitude: HOME.V3.latitude + 0.002 * i, longitude: HOME.V3.longitude, accuracy: 10 });
      await page.waitForTimeout(700);
    }
    assert.equal(await locations(), offCount, 'no position is sent while off duty');
    const seen = await snapshotResponders(srv.base);
    assert.equal(seen.V3.status.state ?? seen.V3.status, 'off_duty', JSON.stringify(seen.V3));
    await shot(page, 'home-off-after-en');

    // The same code signs in on another phone: the newer one wins, and this one says why it
    // stopped instead of fighting for the connection.
    const other = await WsClient.connect(srv.base, tokens.V3);
    await waitFor(async () => (await status(page)) === 'replaced', 10000, 'replaced');
    await page.getByText('Your code is now in use on another phone').waitFor();
    await page.waitForTimeout(1500);
    assert.equal(await status(page), 'replaced', 'the app does not reconnect by itself');
    assert.equal(other.ws.readyState, 1, 'the other phone keeps its connection');
    other.close();
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await srv.stop();
  }
});

test('the installed app opens with no connection and says it is offline', async () => {
  const srv = await startServer({ roster });
  const { context, page } = await phone(srv.base, { at: HOME.V4 });
  try {
    await page.goto(`${srv.base}/responder/?access_token=${tokens.V4}`);
    await waitFor(async () => (await status(page)) === 'online', 15000, 'online');
    await page.locator('#bank-balance', { hasText: '0 minutes' }).waitFor();
    await page.evaluate(() => navigator.serviceWorker.ready);
    // The shell and the map are in the service worker's caches.
    await waitFor(
      () =>
        page.evaluate(async () => {
          const keys = [];
          for (const name of await caches.keys()) for (const r of await (await caches.open(name)).keys()) keys.push(new URL(r.url).pathname);
          return ['/responder/', '/responder/main.js', '/common/map.js', '/v1/map'].every((p) => keys.includes(p));
        }),
      15000,
      'the offline copy',
    );
    const manifest = await getJson(srv.base, '/responder/manifest.webmanifest');
    assert.equal(manifest.status, 200);
    assert.ok(manifest.body.icons.some((i) => i.sizes === '512x512'));
    // Chromium's own verdict on "Add to home screen", but for the test's browser context
    // being incognito (every Playwright context is), which is no property of the app.
    const cdp = await context.newCDPSession(page);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    assert.deepEqual(installabilityErrors.filter((e) => e.errorId !== 'in-incognito'), [], 'installable');

    await srv.stop();
    await page.reload();
    // The name and the time bank as last seen, and the truth about the connection.
    await page.locator('#hello', { hasText: 'Hello, V4' }).waitFor({ timeout: 15000 });
    await page.locator('#bank-balance', { hasText: '0 minutes' }).waitFor();
    assert.ok(await page.evaluate(() => !!navigator.serviceWorker.controller), 'served by the service worker');
    await waitFor(async () => (await status(page)) === 'offline', 15000, 'says offline');
    assert.match(await page.locator(sel('connection-status')).textContent(), /Offline/);
    await page.getByText('No connection right now.').waitFor();
    await shot(page, 'offline-en');
  } finally {
    await context.close();
    await srv.stop();
  }
});

test('a family member is told, in Chinese, that her mother fell and who is coming, and is never asked to go', async () => {
  // K1, E4's daughter, 2 km away: a `kin` responder bound to E4. She signs in and stays off
  // duty: she is told, not asked.
  const family = structuredClone(roster);
  family.responders.push({
    id: 'K1', kind: 'kin', kin_of: ['E4'], travel_mode: 'foot', home: { lat: -30.012, lon: -51.2195 }, skills: [], token_sha256: sha256hex('tok-K1'),
  });
  const srv = await startServer({ roster: family });
  const { context, page, errors } = await phone(srv.base, { locale: 'zh-CN', at: { latitude: -30.012, longitude: -51.2195 } });
  let v3 = null;
  try {
    await page.goto(`${srv.base}/responder/?access_token=tok-K1`);
    await waitFor(async () => (await status(page)) === 'online', 15000, 'K1 online');
    assert.equal(await page.locator(sel('kin-updates')).isVisible(), false, 'no news, no card');

    // V3 (paired with E4) is on duty nearby.
    v3 = await WsClient.connect(srv.base, tokens.V3);
    v3.send({ type: 'location', position: { lat: HOME.V3.latitude, lon: HOME.V3.longitude } });
    assert.equal((await v3.request({ type: 'availability', status: 'available' })).type, 'ack');

    // Somebody else's mother falls first: nothing reaches K1.
    await fall(srv.base, 'E5');
    const alert = await fall(srv.base, 'E4');
    const item = page.locator(`${sel('kin-update')}[data-incident="${alert.body.incident_id}"]`);
    await item.waitFor({ state: 'visible', timeout: 15000 });
    assert.equal(await page.locator(sel('kin-update')).count(), 1, 'only her mother');
    assert.match(await item.innerText(), /E4 摔倒了/);
    assert.match(await item.innerText(), /正在安排人/);

    const offer = await v3.next((f) => f.type === 'offer' && f.incident_id === alert.body.incident_id, 20000);
    assert.equal((await v3.request({ type: 'accept', offer_id: offer.offer_id })).type, 'ack');
    await waitFor(async () => (await item.getAttribute('data-stage')) === 'coming', 10000, 'coming');
    const text = await item.innerText();
    assert.match(text, /一位志愿者正在赶来，大约 \d+\s?分钟/);
    assert.ok(!text.includes('V3'), `a volunteer's id reached the family: ${text}`);
    // Never an offer on her phone.
    assert.equal(await page.locator(sel('offer')).isVisible(), false);
    await audit(page, 'family');
    await assertTapTargets(page, 'family');
    await shot(page, 'kin-zh', { docs: true });

    assert.equal((await v3.request({ type: 'arrived', incident_id: alert.body.incident_id })).type, 'ack');
    await waitFor(async () => (await item.getAttribute('data-stage')) === 'arrived', 10000, 'arrived');
    assert.match(await item.innerText(), /一位志愿者已经到了/);
    assert.deepEqual(errors, []);
  } finally {
    v3?.close();
    await context.close();
    await srv.stop();
  }
});
