// The care manager's report in the console, in a real Chromium against a real `dispatch serve`
// on the real map: a daily visit nobody makes is missed at the close of its window, and the
// console's "Care plans" report names the elder who was not visited, in English and Chinese;
// an operator without the `care` role is told why, in the server's words.
//
// The server runs on the wall clock, so its local time is set (`utc_offset_s`) to a minute
// before noon and the visit's window closes at noon, with no grace.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testRoster, startServer, getJson, openBrowser, artifactPath, waitFor, sha256hex, updateDocsImage } from './support.mjs';

const { roster, tokens } = testRoster();
roster.operators.push({ id: 'OP2', token_sha256: sha256hex('tok-OP2'), roles: ['dispatch'] });
tokens.OP2 = 'tok-OP2';
let srv;
let browser;
let page;
let errors;
let dir;

/** The UTC offset (s, within ±12 h) at which local time is `lead_s` before noon now. */
function offsetForNoonIn(leadS) {
  const day = 86400;
  const utc = Math.floor(Date.now() / 1000) % day;
  let off = (((12 * 3600 - leadS - utc) % day) + day) % day;
  if (off > day / 2) off -= day;
  return off;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dispatch-care-'));
  const config = join(dir, 'rules.toml');
  writeFileSync(config, `utc_offset_s = ${offsetForNoonIn(60)}\ncare_missed_grace_ms = 0\n`);
  srv = await startServer({ roster, args: ['--config', config] });
  ({ browser, page, errors } = await openBrowser({ locale: 'en-US' }));
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a missed daily visit: the care manager sees who was not visited, in both languages', async () => {
  // A daily morning visit for E4 by V3 (nobody is on duty: nobody will make it).
  const res = await fetch(`${srv.base}/v1/elders/E4`, {
    method: 'PATCH',
    headers: { Authorization: `Bearer ${tokens.OP1}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ care_plan: [{ id: 'morning-visit', kind: 'visit', period: 'day', planned_responder: 'V3', window: { from: '00:00', to: '12:00' } }] }),
  });
  assert.equal(res.status, 200, await res.text());
  // Noon local passes: the visit is missed (the server says so in its report).
  await waitFor(async () => {
    const { body } = await getJson(srv.base, '/v1/care-plans/compliance', tokens.OP1);
    return body && Array.isArray(body.not_visited) && body.not_visited.length > 0;
  }, 90000, 'the missed visit in the report');

  await page.goto(`${srv.base}/console/?access_token=${encodeURIComponent(tokens.OP1)}`);
  // Connected first: the toolbar settles (a click while it still moves can land elsewhere).
  await page.waitForSelector('[data-testid=connection-status][data-state=open]', { timeout: 15000 });
  await page.getByTestId('care-report-open').click();
  const missed = page.getByTestId('care-not-visited');
  await missed.waitFor({ timeout: 10000 });
  const text = await missed.innerText();
  assert.match(text, /\bE4\b/);
  assert.match(text, /V3/);
  assert.match(text, /never/, 'never done: the first missed visit');
  const grids = await page.getByTestId('care-grids').innerText();
  assert.match(grids, /G1/);
  assert.match(grids, /0 %/, 'G1: nothing done on time this week');
  await page.screenshot({ path: artifactPath('console-care-report-en.png') });
  updateDocsImage('console-care-report-en.png');
  await page.locator('.care-report .close').click();

  await page.selectOption('#lang', 'zh-CN');
  await page.getByTestId('care-report-open').click();
  await page.getByText('未按计划探访').waitFor({ timeout: 10000 });
  assert.match(await page.getByTestId('care-not-visited').innerText(), /E4/);
  assert.match(await page.getByTestId('care-not-visited').innerText(), /从未/);
  await page.screenshot({ path: artifactPath('console-care-report-zh.png') });
  await page.locator('.care-report .close').click();
  await page.selectOption('#lang', 'en');
  assert.deepEqual(errors, []);
});

test('an operator without the care role is told why, in the server’s words', async () => {
  const ctx = await browser.newContext({ locale: 'en-US' });
  const p = await ctx.newPage();
  const pageErrors = [];
  p.on('pageerror', (e) => pageErrors.push(String(e)));
  await p.goto(`${srv.base}/console/?access_token=${encodeURIComponent(tokens.OP2)}`);
  // Connected first (regression: a click before the toolbar settled opened no report, and
  // the refusal was never shown; CI of 6eaa880).
  await p.waitForSelector('[data-testid=connection-status][data-state=open]', { timeout: 15000 });
  await p.getByTestId('care-report-open').click();
  const error = p.locator('.care-report .error');
  await waitFor(async () => (await error.innerText({ timeout: 1000 })).length > 0, 10000, 'the refusal');
  assert.match(await error.innerText(), /`care`/);
  assert.equal(await p.getByTestId('care-not-visited').count(), 0);
  assert.deepEqual(pageErrors, []);
  await ctx.close();
});
