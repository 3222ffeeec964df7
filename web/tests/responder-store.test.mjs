// The responder app's pure parts without a browser: the store's fold (idempotent under the
// frames a server re-sends after a reconnect), which screen a state shows, the position
// rules (en route, idle, off duty) and the locale's wording of times and distances.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fold, initialState, kinRings, screenOf, trackingModeOf } from '../responder/store.js';
import { shouldSend, distanceM, EN_ROUTE_EVERY_MS, IDLE_EVERY_MS } from '../responder/tracker.js';
import { createLocale, CATALOGUES } from '../responder/locale.js';
import { renderPriority } from '../responder/offer.js';

const OFFER = {
  type: 'offer',
  offer_id: 12,
  incident_id: 7,
  kind: 'fall',
  service: null,
  priority: 5,
  position: { lat: -30.03, lon: -51.22 },
  eta_s: 142,
  distance_m: 178,
  route: [{ lat: -30.0284, lon: -51.2201 }, { lat: -30.03, lon: -51.22 }],
  expires_at: 1795636095000,
};
const ASSIGNED = {
  type: 'assigned',
  incident_id: 7,
  role: 'community',
  kind: 'fall',
  service: null,
  priority: 5,
  position: { lat: -30.03, lon: -51.22 },
  eta_s: 142,
  route: OFFER.route,
  elder_id: 'E1',
};

const run = (events, state = initialState({ token: 't', duty: true })) => events.reduce(fold, state);

test('a re-sent offer or assignment folds into the same state', () => {
  const once = run([{ type: 'welcome', id: 'V1' }, OFFER]);
  const twice = run([{ type: 'welcome', id: 'V1' }, OFFER, { type: 'welcome', id: 'V1' }, OFFER]);
  assert.deepEqual(twice, once);
  assert.equal(screenOf(once), 'offer');

  const job = run([OFFER, ASSIGNED, { type: 'ui.arrived', incident_id: 7 }]);
  assert.equal(job.offer, null, 'the accepted offer is gone');
  assert.equal(job.job.arrived, true);
  // After a reconnect the server sends `assigned` again: the arrival is kept.
  const again = fold(job, ASSIGNED);
  assert.deepEqual(again.job, job.job);
  assert.equal(screenOf(again), 'assigned');
  // A reloaded page remembers the arrival through `arrived`.
  const reloaded = run([ASSIGNED], initialState({ token: 't', duty: true, arrived: [7] }));
  assert.equal(reloaded.job.arrived, true);
  // An offer for the job already held is stale.
  assert.equal(fold(again, OFFER).offer, null);
  // A fresh phone (off duty as far as it knows) that is sent the job it holds is on duty:
  // after the job the server has it available, and the switch must say so.
  const fresh = run([{ type: 'welcome', id: 'V1' }, ASSIGNED], initialState({ token: 't', duty: false }));
  assert.equal(fresh.duty, true);
  assert.equal(screenOf(fresh), 'assigned');
});

test('a withdrawn offer goes away with its reason; one for another offer changes nothing', () => {
  const s = run([OFFER]);
  assert.equal(fold(s, { type: 'offer_withdrawn', offer_id: 99, incident_id: 7, reason: 'filled' }), s);
  for (const reason of ['filled', 'expired', 'incident_closed', 'responder_unavailable', 'reassigned', 'something_new']) {
    const w = fold(s, { type: 'offer_withdrawn', offer_id: 12, incident_id: 7, reason });
    assert.equal(w.offer, null);
    assert.equal(screenOf(w), 'home');
    const key = reason === 'something_new' ? 'withdrawn.other' : `withdrawn.${reason}`;
    assert.equal(w.notice.key, key);
    assert.ok(CATALOGUES.en[key] && CATALOGUES['zh-CN'][key], key);
  }
});

test('incident_closed stands the volunteer down only for their own job', () => {
  const s = run([ASSIGNED, { type: 'ui.arrived', incident_id: 7 }]);
  assert.equal(fold(s, { type: 'incident_closed', incident_id: 8, status: 'resolved' }), s);
  const closed = fold(s, { type: 'incident_closed', incident_id: 7, status: 'cancelled' });
  assert.equal(closed.job, null);
  assert.deepEqual(closed.arrived, []);
  assert.equal(closed.notice.key, 'closed.cancelled');
});

test('the position is tracked only on duty or on a job, often only while en route', () => {
  const off = initialState({ token: 't', duty: false });
  assert.equal(trackingModeOf(off), 'off');
  assert.equal(trackingModeOf(initialState()), 'off', 'signed out');
  const on = fold(off, { type: 'ui.duty', on: true });
  assert.equal(trackingModeOf(on), 'idle');
  const enRoute = fold(on, ASSIGNED);
  assert.equal(trackingModeOf(enRoute), 'en_route');
  assert.equal(trackingModeOf(fold(enRoute, { type: 'ui.arrived', incident_id: 7 })), 'idle');
  assert.equal(trackingModeOf(fold(on, { type: 'connection', status: 'wrong_token' })), 'off');
});

test('the sending rules: never off duty, every 5 s en route, 60 s or 50 m idle', () => {
  const here = { lat: -30.03, lon: -51.22 };
  const last = { ...here, at: 1_000_000 };
  assert.equal(shouldSend('off', here, null, 0), false);
  assert.equal(shouldSend('idle', here, null, 0), true, 'the first fix goes at once');
  assert.equal(shouldSend('en_route', here, last, last.at + EN_ROUTE_EVERY_MS - 1), false);
  assert.equal(shouldSend('en_route', here, last, last.at + EN_ROUTE_EVERY_MS), true);
  assert.equal(shouldSend('idle', here, last, last.at + EN_ROUTE_EVERY_MS), false);
  assert.equal(shouldSend('idle', here, last, last.at + IDLE_EVERY_MS), true);
  const near = { lat: here.lat + 0.0004, lon: here.lon }; // ~44 m
  const far = { lat: here.lat + 0.0005, lon: here.lon }; // ~55 m
  assert.ok(distanceM(here, near) < 50 && distanceM(here, far) > 50);
  assert.equal(shouldSend('idle', near, last, last.at + 1000), false);
  assert.equal(shouldSend('idle', far, last, last.at + 1000), true);
  // One degree of latitude is 111.2 km on the mean sphere.
  assert.ok(Math.abs(distanceM({ lat: 0, lon: 0 }, { lat: 1, lon: 0 }) - 111_195) < 1);
});

test('both catalogues have every key, and the locales word times and distances', () => {
  assert.deepEqual(Object.keys(CATALOGUES['zh-CN']).sort(), Object.keys(CATALOGUES.en).sort());
  const en = createLocale('en');
  const zh = createLocale('zh-CN');
  assert.equal(en.distance(178), '180 m');
  assert.equal(en.distance(1534), '1.5 km');
  assert.equal(zh.distance(1534), '1.5公里');
  assert.equal(en.duration(142), '2 minutes');
  assert.equal(en.duration(20), '1 minute', 'never "0 minutes" away');
  assert.equal(en.hoursMinutes(84), '1 hour 24 minutes');
  assert.equal(en.hoursMinutes(0), '0 minutes');
  assert.equal(zh.hoursMinutes(84), '1小时 24分钟');
  assert.equal(en.countdown(24.2), '0:25');
  assert.equal(en.countdown(-3), '0:00');
  assert.equal(en.t('home.hello', { id: 'V1' }), 'Hello, V1');
  assert.equal(zh.t('home.hello', { id: 'V1' }), '您好，V1');
});

test('the service worker keeps every file the app needs offline', async () => {
  const { readFileSync, readdirSync } = await import('node:fs');
  const { join, dirname } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'responder');
  const sw = readFileSync(join(dir, 'sw.js'), 'utf8');
  const shell = new Set([...sw.slice(sw.indexOf('const SHELL'), sw.indexOf('];')).matchAll(/'([^']+)'/g)].map((m) => m[1]));
  const own = readdirSync(dir).filter((f) => f !== 'sw.js' && f !== 'README.md');
  assert.deepEqual(own.filter((f) => !shell.has(f)), [], 'app files missing from the offline copy');
  const shared = new Set();
  for (const f of own.filter((f) => f.endsWith('.js'))) {
    for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/from '(\.\.\/common\/[^']+)'/g)) shared.add(m[1]);
  }
  assert.ok(shared.size > 0);
  assert.deepEqual([...shared].filter((p) => !shell.has(p)), [], 'shared modules missing from the offline copy');
});

test('the facts for the door come from the assigned frame, and a malformed one shows nothing', async () => {
  const { doorFacts } = await import('../responder/job.js');
  const elder = { name: 'Dona Lúcia', address: 'Rua A 1', phone: '+55 51 0000', languages: ['pt-BR', 42], keyholders: ['Seu Jorge', ''], surprise: true };
  const job = run([{ ...ASSIGNED, elder }]).job;
  assert.deepEqual(job.elder, elder);
  assert.deepEqual(doorFacts(job.elder), [
    ['assigned.door.address', 'Rua A 1'],
    ['assigned.door.phone', '+55 51 0000'],
    ['assigned.door.languages', 'pt-BR'],
    ['assigned.door.keyholder', 'Seu Jorge'],
  ]);
  for (const bad of ['a string', ['a', 'list'], 7, null]) {
    const j = run([{ ...ASSIGNED, elder: bad }]).job;
    assert.equal(j.elder, null, JSON.stringify(bad));
    assert.deepEqual(doorFacts(j.elder), []);
  }
  assert.equal(run([ASSIGNED]).job.elder, null, 'no details sent: none shown');
});

test('kin_update: a family member sees each incident of their elder at its newest step', () => {
  const up = (incident_id, stage, at, extra = {}) => ({ type: 'kin_update', incident_id, elder_id: 'E4', kind: 'fall', service: null, stage, at, ...extra });
  let s = initialState({ token: 't' });
  s = fold(s, up(7, 'opened', 1000));
  s = fold(s, up(7, 'coming', 2000, { responder_kind: 'volunteer', eta_s: 95 }));
  assert.deepEqual(
    s.family.map((f) => [f.incident_id, f.stage, f.responder_kind, f.eta_s]),
    [[7, 'coming', 'volunteer', 95]],
  );
  // A re-sent older step does not undo a newer one.
  s = fold(s, up(7, 'opened', 1000));
  assert.equal(s.family[0].stage, 'coming');
  // "arrived" keeps who came; then an ambulance is coming too (a newer step); a second
  // incident comes first; an unknown step changes nothing.
  s = fold(s, up(7, 'arrived', 3000, { responder_kind: 'volunteer' }));
  s = fold(s, up(7, 'coming', 3500, { responder_kind: 'ambulance', eta_s: 400 }));
  assert.deepEqual([s.family[0].stage, s.family[0].responder_kind], ['coming', 'ambulance']);
  s = fold(s, up(9, 'opened', 4000));
  const before = s;
  s = fold(s, up(9, 'teleported', 5000));
  assert.equal(s, before);
  assert.deepEqual(
    s.family.map((f) => [f.incident_id, f.stage, f.eta_s]),
    [[9, 'opened', null], [7, 'coming', 400]],
  );
  // Somebody coming taken off the job: who and when are forgotten.
  const off = fold(s, up(7, 'unassigned', 3600));
  assert.deepEqual(
    [off.family.find((f) => f.incident_id === 7).stage, off.family.find((f) => f.incident_id === 7).responder_kind],
    ['unassigned', null],
  );
  // Closed stays closed.
  s = fold(s, up(7, 'resolved', 6000));
  s = fold(s, up(7, 'arrived', 7000, { responder_kind: 'ambulance' }));
  assert.equal(s.family.find((f) => f.incident_id === 7).stage, 'resolved');
  // A reconnect starts the cards again from what the server re-sends.
  assert.deepEqual(fold(s, { type: 'welcome', id: 'K1' }).family, []);
  // At most five incidents are kept.
  for (let i = 10; i < 20; i++) s = fold(s, up(i, 'opened', 8000 + i));
  assert.equal(s.family.length, 5);
  assert.equal(s.family[0].incident_id, 19);
});

test('a family member\'s phone rings for emergencies and missed check-ins, not planned visits or meals', () => {
  const ev = (kind, service = null, stage = 'opened') => ({ type: 'kin_update', incident_id: 1, kind, service, stage });
  assert.equal(kinRings(ev('fall')), true);
  assert.equal(kinRings(ev('help', 'rescue')), true);
  assert.equal(kinRings(ev('check_in_missed')), true);
  assert.equal(kinRings(ev('help', 'meal')), false);
  assert.equal(kinRings(ev('care_plan', 'meal')), false);
  assert.equal(kinRings(ev('fall', null, 'coming')), false);
});

// Defect: an urgent rescue labelled "Not urgent". A rescue (or a fall) of a care-level 1 or 2
// elder has priority 3, and the tag said "Urgent" only from 4: "Urgent rescue · Not urgent".
test('an urgent rescue is never labelled not urgent: every emergency priority (3–5) is urgent', () => {
  const tag = () => {
    const attrs = {};
    return { hidden: true, textContent: '', title: '', dataset: {}, attrs, setAttribute: (k, v) => { attrs[k] = v; } };
  };
  for (const lang of ['en', 'zh-CN']) {
    const loc = createLocale(lang);
    for (const [priority, urgent] of [[1, false], [2, false], [3, true], [4, true], [5, true]]) {
      const el = tag();
      renderPriority(el, loc, priority);
      assert.equal(el.hidden, false);
      assert.equal(el.dataset.urgent, String(urgent), `${lang} priority ${priority}`);
      assert.equal(el.textContent, loc.t(urgent ? 'priority.urgent' : 'priority.normal'));
      assert.match(el.attrs['aria-label'], new RegExp(String(priority)));
    }
    const none = tag();
    none.hidden = false;
    renderPriority(none, loc, null);
    assert.equal(none.hidden, true, 'no priority: no tag');
  }
});

test('resting after an emergency: until when, if the server said; an offer ends it', () => {
  let s = fold(initialState({ token: 't', duty: true }), { type: 'ui.resting', until: 1795637865400 });
  assert.equal(s.resting, true);
  assert.equal(s.restingUntil, 1795637865400);
  s = fold(s, { type: 'ui.resting' }); // an older server: no `resting_until`
  assert.equal(s.resting, true);
  assert.equal(s.restingUntil, null);
  s = fold(s, { ...OFFER, receivedAt: 1 });
  assert.equal(s.resting, false);
});
