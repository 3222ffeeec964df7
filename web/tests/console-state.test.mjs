// The console's fold (web/console/state.js) without a browser: snapshot → events, the promise
// clocks computed from events as the server computes them (breached only by `sla_breached`),
// responder statuses, closing, the queue's order, and events it does not know.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromSnapshot, fold, queueOrder, planOf, isNew, isWaiting } from '../console/state.js';
import { createStore } from '../common/store.js';
import { placeLabels } from '../common/map.js';
import { routeLabelBoxes } from '../console/map-layer.js';

const T0 = 1_800_000_000_000;
const snapshot = {
  last_seq: 10,
  sla_ms: { first_accept: 30000, community_on_scene: 180000, ambulance_on_scene: 660000 },
  incidents: [
    { id: 1, elder_id: 'E1', kind: 'help', service: 'meal', plan: 'service', priority: 2, status: 'dispatching', position: { lat: -30.03, lon: -51.22 }, opened_at: T0 - 60000, wave: 1, open_offers: [], community: [], ambulance: null, care_level: 3, clocks: [] },
  ],
  responders: [
    { id: 'V1', kind: 'volunteer', travel_mode: 'foot', status: { state: 'available' }, position: { lat: -30.027, lon: -51.22 }, grid_id: 'G1' },
    { id: 'A1', kind: 'ambulance', travel_mode: 'car', status: { state: 'available' }, position: { lat: -30.012, lon: -51.22 }, grid_id: null },
  ],
};

function store() {
  const s = createStore({ fromSnapshot, fold, schedule: () => {} });
  s.reset(snapshot, 10, { reason: 'subscribe' });
  return s;
}

test('plans as the server defines them', () => {
  assert.equal(planOf('fall', null), 'emergency');
  assert.equal(planOf('help', 'rescue'), 'emergency');
  assert.equal(planOf('check_in_missed', null), 'welfare');
  assert.equal(planOf('help', 'meal'), 'service');
});

test('an emergency opened after the snapshot gets its clocks from events', () => {
  const s = store();
  s.apply({ seq: 11, at: T0, type: 'incident_opened', incident_id: 2, alert_id: 'a', elder_id: 'E2', kind: 'fall', service: null, priority: 5, position: { lat: -30.03, lon: -51.22 }, reason: 'fall from E2 (care level 4): emergency, priority 5' });
  const inc = s.state.incidents.get(2);
  assert.equal(inc.care_level, 4);
  assert.deepEqual(inc.clocks.map((c) => [c.sla, c.deadline - T0, c.met_at, c.breached]), [
    ['first_accept', 30000, null, false],
    ['community_on_scene', 180000, null, false],
  ]);
  s.apply({ seq: 12, at: T0 + 100, type: 'offer_sent', offer_id: 5, incident_id: 2, responder_id: 'V1', wave: 1, eta_s: 60, distance_m: 80, route: [], expires_at: T0 + 30100, reason: 'r' });
  assert.equal(s.state.responders.get('V1').status.state, 'offered');
  s.apply({ seq: 13, at: T0 + 5000, type: 'assigned', incident_id: 2, responder_id: 'V1', role: 'community', eta_s: 60, route: [], reason: 'accepted' });
  assert.equal(inc.clocks[0].met_at, T0 + 5000);
  assert.equal(s.state.responders.get('V1').status.state, 'en_route');
  s.apply({ seq: 14, at: T0 + 6000, type: 'assigned', incident_id: 2, responder_id: 'A1', role: 'ambulance', eta_s: 400, route: [], reason: 'care level 4' });
  const amb = inc.clocks.find((c) => c.sla === 'ambulance_on_scene');
  assert.equal(amb.deadline, T0 + 6000 + 660000);
  // a deadline passing on the local clock breaches nothing: only the server's event does
  assert.equal(inc.clocks[1].breached, false);
  s.apply({ seq: 15, at: T0 + 180000, type: 'sla_breached', incident_id: 2, sla: 'community_on_scene', deadline: T0 + 180000 });
  assert.equal(inc.clocks[1].breached, true);
  s.apply({ seq: 16, at: T0 + 200000, type: 'responder_arrived', incident_id: 2, responder_id: 'V1', role: 'community' });
  assert.equal(inc.status, 'on_scene');
  assert.equal(inc.clocks[1].met_at, T0 + 200000);
  s.apply({ seq: 17, at: T0 + 300000, type: 'incident_resolved', incident_id: 2, by: { role: 'operator', id: 'OP1' }, reason: 'done' });
  assert.ok(!s.state.incidents.has(2));
  assert.equal(s.state.closed.get(2).status, 'resolved');
  assert.equal(s.state.responders.get('V1').status.state, 'resting', 'a volunteer back from an emergency rests');
  assert.equal(s.state.responders.get('A1').status.state, 'available');
});

test('an alert kept for an operator is flagged, with no position to draw', () => {
  const s = store();
  s.apply({ seq: 11, at: T0, type: 'incident_opened', incident_id: 3, alert_id: 'z', elder_id: 'E404', kind: 'fall', service: null, priority: 5, position: { lat: 0, lon: 0 }, reason: 'fall from device GW1 (no position) NEEDS AN OPERATOR: unknown elder E404', needs_operator: { code: 'unknown_elder', message: 'unknown elder E404' } });
  const inc = s.state.incidents.get(3);
  assert.deepEqual(inc.needs_operator, { code: 'unknown_elder', message: 'unknown elder E404' });
  assert.equal(inc.position, null, 'never drawn at (0, 0)');
  s.apply({ seq: 12, at: T0, type: 'incident_opened', incident_id: 4, alert_id: 'y', elder_id: 'E1', kind: 'fall', service: null, priority: 4, position: { lat: -30.03, lon: -51.22 }, reason: 'fall', needs_operator: 'garbage' });
  assert.equal(s.state.incidents.get(4).needs_operator, null, 'an odd field is ignored');
  assert.deepEqual(s.state.incidents.get(4).position, { lat: -30.03, lon: -51.22 });
});

test('nobody to ask and escalation are kept on the incident until someone is asked', () => {
  const s = store();
  s.apply({ seq: 11, at: T0, type: 'no_responder_available', incident_id: 1, reason: 'no volunteer within reach' });
  s.apply({ seq: 12, at: T0, type: 'escalated', incident_id: 1, reason: 'ambulance needed but none is available' });
  const inc = s.state.incidents.get(1);
  assert.equal(inc.nobody, 'no volunteer within reach');
  assert.equal(inc.escalated, 'ambulance needed but none is available');
  s.apply({ seq: 13, at: T0, type: 'offer_sent', offer_id: 9, incident_id: 1, responder_id: 'V1', wave: 2 });
  assert.equal(inc.nobody, null);
});

test('offers that end put the responder back; repeated or old seqs are ignored', () => {
  const s = store();
  s.apply({ seq: 11, at: T0, type: 'offer_sent', offer_id: 7, incident_id: 1, responder_id: 'V1', wave: 2 });
  assert.equal(s.state.incidents.get(1).wave, 2);
  s.apply({ seq: 12, at: T0, type: 'offer_expired', offer_id: 7, incident_id: 1, responder_id: 'V1' });
  assert.equal(s.state.responders.get('V1').status.state, 'available');
  assert.equal(s.apply({ seq: 12, at: T0, type: 'offer_sent', offer_id: 8, incident_id: 1, responder_id: 'V1' }), false);
  assert.equal(s.state.responders.get('V1').status.state, 'available');
});

test('batched moves (responders_moved) move responders, touch them for the map, and leave the views alone', () => {
  const s = store();
  s.state.touched.clear();
  const version = s.state.version;
  const seq = s.lastSeq;
  assert.equal(
    s.apply({ type: 'responders_moved', at: T0 + 200, moves: [
      { responder_id: 'V1', position: { lat: -30.0275, lon: -51.2201 }, at: T0 + 100 },
      { responder_id: 'A1', position: { lat: -30.013, lon: -51.221 }, at: T0 + 200 },
      { responder_id: 'nobody', position: { lat: 1, lon: 2 }, at: T0 + 200 },
      { responder_id: 'V1', position: 'nowhere', at: T0 + 200 },
      null,
    ] }),
    true,
  );
  assert.deepEqual(s.state.responders.get('V1').position, { lat: -30.0275, lon: -51.2201 });
  assert.deepEqual(s.state.responders.get('A1').position, { lat: -30.013, lon: -51.221 });
  assert.deepEqual([...s.state.touched].sort(), ['A1', 'V1']);
  assert.equal(s.lastSeq, seq, 'a batch is not numbered: the resume point stays');
  assert.equal(s.state.version, version, 'moves do not re-render the queue and the detail');
  assert.ok(s.state.moved > 0);
  // a single responder_moved (an older server) still applies
  s.apply({ seq: seq + 1, at: T0 + 300, type: 'responder_moved', responder_id: 'V1', position: { lat: -30.028, lon: -51.22 } });
  assert.deepEqual(s.state.responders.get('V1').position, { lat: -30.028, lon: -51.22 });
  // odd batches break nothing
  s.apply({ type: 'responders_moved', at: T0, moves: 'all of them' });
  s.apply({ type: 'responders_moved' });
  assert.deepEqual(s.state.responders.get('V1').position, { lat: -30.028, lon: -51.22 });
});

test('closing an incident frees the responders on it (offered too) and nobody else', () => {
  const s = store();
  s.apply({ seq: 11, at: T0, type: 'incident_opened', incident_id: 2, alert_id: 'a', elder_id: 'E2', kind: 'fall', service: null, priority: 5, position: null, reason: '' });
  s.apply({ seq: 12, at: T0, type: 'incident_opened', incident_id: 3, alert_id: 'b', elder_id: 'E3', kind: 'fall', service: null, priority: 5, position: null, reason: '' });
  s.apply({ seq: 13, at: T0, type: 'offer_sent', offer_id: 5, incident_id: 2, responder_id: 'V1', wave: 1, eta_s: 60, distance_m: 80, route: [], expires_at: T0 + 30000, reason: 'r' });
  s.apply({ seq: 14, at: T0, type: 'offer_sent', offer_id: 6, incident_id: 3, responder_id: 'A1', wave: 1, eta_s: 60, distance_m: 80, route: [], expires_at: T0 + 30000, reason: 'r' });
  s.state.touched.clear();
  s.apply({ seq: 15, at: T0 + 1000, type: 'incident_cancelled', incident_id: 2, by: { role: 'engine' }, reason: 'x' });
  assert.equal(s.state.responders.get('V1').status.state, 'available', 'the offered one is free');
  assert.equal(s.state.responders.get('A1').status.state, 'offered', 'the other incident’s offer stands');
  assert.ok(s.state.touched.has('V1') && !s.state.touched.has('A1'));
  assert.ok(!s.state.offers.has(5) && s.state.offers.has(6));
});

test('unknown events and odd fields are skipped without breaking the stream', () => {
  const s = store();
  const warn = console.warn;
  console.warn = () => {};
  try {
    s.apply({ seq: 11, at: T0, type: 'teleported', responder_id: 'V1' });
    s.apply({ seq: 12, at: T0, type: 'responder_moved', responder_id: 'nobody', position: { lat: 1, lon: 2 } });
    s.apply({ seq: 13, at: T0, type: 'sla_breached', incident_id: 99, sla: 'x' });
    s.apply({ seq: 14, at: T0, type: 'offer_sent', offer_id: 1, incident_id: 1, responder_id: 'V1', wave: 'x', extra: [1] });
    s.apply({ seq: 15, at: T0, type: 'incident_opened', incident_id: 3, elder_id: 'E3', kind: 'fall', priority: 5, position: null, reason: null, surprise: { nested: true } });
  } finally {
    console.warn = warn;
  }
  assert.equal(s.lastSeq, 15);
  assert.ok(s.state.incidents.has(3));
});

test('the queue: new emergencies first until seen or a minute old, then priority, then the oldest', () => {
  const s = store();
  s.apply({ seq: 11, at: T0, type: 'incident_opened', incident_id: 2, elder_id: 'E2', kind: 'help', service: 'meal', priority: 3, position: null, reason: '' });
  s.apply({ seq: 12, at: T0 + 1000, type: 'incident_opened', incident_id: 3, elder_id: 'E3', kind: 'fall', priority: 4, position: null, reason: '' });
  s.apply({ seq: 13, at: T0 + 2000, type: 'incident_opened', incident_id: 4, elder_id: 'E4', kind: 'fall', priority: 5, position: null, reason: '' });
  s.apply({ seq: 14, at: T0 + 3000, type: 'incident_opened', incident_id: 5, elder_id: 'E5', kind: 'help', service: 'cleaning', priority: 3, position: null, reason: '' });
  const seen = new Set();
  assert.deepEqual(queueOrder(s.state, T0 + 5000, seen).map((i) => i.id), [4, 3, 2, 5, 1]);
  seen.add(4);
  assert.deepEqual(queueOrder(s.state, T0 + 5000, seen).map((i) => i.id), [3, 4, 2, 5, 1]);
  assert.equal(isNew(s.state, s.state.incidents.get(3), T0 + 62000, seen), false);
  assert.deepEqual(queueOrder(s.state, T0 + 62000, seen).map((i) => i.id), [4, 3, 2, 5, 1]);
});

// Found in a person's walk through the live demo: once its NEW mark ended, a P4 fall nobody
// had accepted sorted below ten P5s whose volunteers were already at the door.
test('the queue: what still waits for someone comes before what is in hand, whatever the priority', () => {
  const s = store();
  s.apply({ seq: 11, at: T0, type: 'incident_opened', incident_id: 2, elder_id: 'E2', kind: 'fall', priority: 5, position: null, reason: '' });
  s.apply({ seq: 12, at: T0 + 1000, type: 'incident_opened', incident_id: 3, elder_id: 'E3', kind: 'fall', priority: 4, position: null, reason: '' });
  s.apply({ seq: 13, at: T0 + 2000, type: 'assigned', incident_id: 2, responder_id: 'V1', role: 'community', eta_s: 60 });
  const seen = new Set([2, 3]);
  assert.equal(s.state.incidents.get(2).status, 'assigned');
  assert.equal(isWaiting(s.state.incidents.get(2)), false);
  assert.equal(isWaiting(s.state.incidents.get(3)), true);
  // 3 (P4, nobody yet) and 1 (P2 service, nobody yet) before 2 (P5, in hand)
  assert.deepEqual(queueOrder(s.state, T0 + 5000, seen).map((i) => i.id), [3, 1, 2]);
});

// Found in a person's walk through the live demo: an ambulance at an elder's door printed
// its label over the elder's ("A01141"), and the phone's "You" over "The person".
test('map labels: two markers at one door get labels that do not overlap; the topmost keeps its place', () => {
  const sp = (w) => ({ w });
  const overlap = (a, b) => {
    const [ax, ay, aw] = [a[4], a[5], a[3].w];
    const [bx, by, bw] = [b[4], b[5], b[3].w];
    return ax + aw - 6 > bx && bx + bw - 6 > ax && ay + 18 > by && by + 18 > ay;
  };
  const lone = [{ size: 6, label: 'E1' }, 100, 100, sp(30)];
  placeLabels([lone]);
  assert.deepEqual([lone[4], lone[5]], [100 + 6 + 3 - 3, 100 + 4 - 13 - 3], 'right of its marker');
  const elder = [{ size: 6, label: 'E1' }, 200, 200, sp(30)];
  const amb = [{ size: 7, label: 'A011' }, 201, 201, sp(40)];
  placeLabels([elder, amb]);
  assert.ok(!overlap(elder, amb), JSON.stringify([elder.slice(4), amb.slice(4)]));
  assert.deepEqual([amb[4], amb[5]], [201 + 7 + 3 - 3, 201 + 4 - 13 - 3], 'the topmost (last) keeps the right');
  // four at one place: every label finds its own side
  const four = [0, 1, 2, 3].map((i) => [{ size: 6, label: `V${i}` }, 300, 300, sp(24)]);
  placeLabels(four);
  for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++) assert.ok(!overlap(four[i], four[j]), `${i} and ${j}`);
  // a marker without a label gets no place
  const plain = [{ size: 6 }, 10, 10, null];
  placeLabels([plain]);
  assert.equal(plain[4], undefined);
});

// Found in a person's walk through the live demo: with the elder's door near the map's edge,
// the assigned responder's ETA ("12 min") was cut off by the edge.
test('route labels: an ETA whose door is near the map edge stays whole inside the map', () => {
  const W = 800;
  const H = 600;
  const project = (lat, lon) => ({ x: lon, y: lat }); // the test's points are pixels
  const measure = (text) => 8 * text.length;
  const route = (x, y, label, role = 'volunteer') => ({ label, role, points: [{ lat: 300, lon: 400 }, { lat: y, lon: x }] });
  const inside = (b) => b.x >= 0 && b.y >= 0 && b.x + b.w <= W && b.y + b.h <= H;
  const apart = (a, b) => a.y + a.h <= b.y || b.y + b.h <= a.y || a.x + a.w <= b.x || b.x + b.w <= a.x;
  // in the middle: centred over the door, above it
  const [mid] = routeLabelBoxes([route(400, 300, '4 min')], project, W, H, measure);
  assert.equal(mid.x + mid.w / 2, 400);
  assert.ok(mid.y + mid.h < 300, JSON.stringify(mid));
  // at each edge and corner, two routes to one door: both whole, not over each other
  for (const [x, y] of [[2, 300], [798, 300], [400, 3], [400, 598], [1, 1], [799, 599], [799, 2]]) {
    const boxes = routeLabelBoxes([route(x, y, '12 min'), route(x, y, 'Ambulance 9 min', 'ambulance')], project, W, H, measure);
    assert.equal(boxes.length, 2, `door at ${x},${y}`);
    for (const b of boxes) assert.ok(inside(b), `door at ${x},${y}: ${JSON.stringify(b)}`);
    assert.ok(apart(boxes[0], boxes[1]), `door at ${x},${y}: ${JSON.stringify(boxes)}`);
    assert.deepEqual(boxes.map((b) => b.role), ['volunteer', 'ambulance']);
  }
  // in the middle, the first route's label is nearest the door
  const two = routeLabelBoxes([route(400, 300, '4 min'), route(400, 300, 'Ambulance 9 min', 'ambulance')], project, W, H, measure);
  assert.ok(two[0].y > two[1].y && two[0].y + two[0].h < 300, JSON.stringify(two));
  // a map too short for the stack on either side of the door: the stack moves in whole,
  // the labels still apart and inside
  for (const y of [20, 35, 50]) {
    const short = routeLabelBoxes([route(400, y, '12 min'), route(400, y, 'Ambulance 9 min', 'ambulance')], project, W, 70, measure);
    for (const b of short) assert.ok(b.y >= 0 && b.y + b.h <= 70, `door at y ${y}: ${JSON.stringify(b)}`);
    assert.ok(apart(short[0], short[1]), `door at y ${y}: ${JSON.stringify(short)}`);
  }
  // a door outside the map, or a route without a label or points, gets none
  assert.deepEqual(routeLabelBoxes([route(-20, 300, '3 min'), route(400, 300, ''), { label: 'x', points: [] }], project, W, H, measure), []);
});

test('every console and common module parses (a syntax error would blank the page)', async () => {
  const { readdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
  const { spawnSync } = await import('node:child_process');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'console-check-'));
  try {
    for (const app of ['console', 'common']) {
      const base = new URL(`../${app}/`, import.meta.url);
      for (const f of readdirSync(base).filter((n) => n.endsWith('.js'))) {
        // as an ES module, which `node --check` only assumes for .mjs
        const copy = join(dir, `${app}-${f.replace(/\.js$/, '.mjs')}`);
        writeFileSync(copy, readFileSync(new URL(f, base)));
        const r = spawnSync(process.execPath, ['--check', copy], { encoding: 'utf8' });
        assert.equal(r.status, 0, `${app}/${f}: ${r.stderr}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the two catalogues have the same keys', async () => {
  const en = (await import('../console/messages.en.js')).default;
  const zh = (await import('../console/messages.zh-CN.js')).default;
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
  for (const [k, v] of Object.entries(zh)) assert.ok(v.length > 0, k);
  // every literal key the code asks for is in them (dynamic ones like `kind.${k}` are listed)
  const { readdirSync, readFileSync } = await import('node:fs');
  const base = new URL('../console/', import.meta.url);
  const used = new Set();
  for (const f of readdirSync(base).filter((n) => n.endsWith('.js') && !n.startsWith('messages'))) {
    const src = readFileSync(new URL(f, base), 'utf8');
    for (const m of src.matchAll(/\bt\('([\w.]+)'/g)) used.add(m[1]);
    for (const m of src.matchAll(/data-i18n="([\w.]+)"/g)) used.add(m[1]);
  }
  for (const m of readFileSync(new URL('index.html', base), 'utf8').matchAll(/data-i18n="([\w.]+)"/g)) used.add(m[1]);
  const dynamic = { kind: ['fall', 'help', 'check_in_missed'], service: ['rescue', 'meal', 'medical', 'shopping', 'cleaning', 'mobility'], status: ['scheduled', 'dispatching', 'assigned', 'on_scene', 'resolved', 'cancelled'], sla: ['first_accept', 'community_on_scene', 'ambulance_on_scene'], rkind: ['volunteer', 'grid_worker', 'ambulance', 'service_staff'], rstatus: ['available', 'offered', 'en_route', 'on_scene', 'resting', 'off_duty'], role: ['community', 'ambulance'], mode: ['foot', 'car'], outcome: ['asked', 'declined', 'expired', 'withdrawn', 'filled', 'accepted'], withdrawn: ['filled', 'incident_closed', 'responder_unavailable', 'reassigned', 'expired'], snapshot: ['resume_unavailable', 'lagged'], event: ['incident_opened', 'alert_joined', 'offer_sent', 'offer_declined', 'offer_expired', 'offer_withdrawn', 'assigned', 'no_responder_available', 'escalated', 'sla_breached', 'responder_arrived', 'incident_resolved', 'incident_cancelled', 'time_bank_credited'] };
  for (const [p, ks] of Object.entries(dynamic)) for (const k of ks) used.add(`${p}.${k}`);
  for (const k of used) assert.ok(k in en, `en lacks ${k}`);
});

test('a responder retired while on an incident is taken off it, and leaves the map', () => {
  const s = store();
  s.apply({ seq: 11, at: T0, type: 'assigned', incident_id: 1, responder_id: 'V1', role: 'community', eta_s: 60, route: [], reason: 'accepted' });
  const inc = s.state.incidents.get(1);
  assert.equal(inc.status, 'assigned');
  s.apply({ seq: 12, at: T0 + 1000, type: 'unassigned', incident_id: 1, responder_id: 'V1', reason: 'V1 was retired: somebody else is asked' });
  assert.deepEqual(inc.community, []);
  assert.equal(inc.status, 'dispatching');
  assert.equal(s.state.responders.get('V1').status.state, 'off_duty');
  s.apply({ seq: 13, at: T0 + 1000, type: 'roster_changed', entry: 'responder', id: 'V1', change: 'retired', by: { role: 'operator', id: 'OP1' } });
  assert.ok(!s.state.responders.has('V1'));
  // other roster changes and a redemption change nothing the console draws
  const before = [...s.state.responders.keys()];
  s.apply({ seq: 14, at: T0 + 2000, type: 'roster_changed', entry: 'elder', id: 'E1', change: 'changed', by: { role: 'operator', id: 'OP1' } });
  s.apply({ seq: 15, at: T0 + 2000, type: 'time_bank_redeemed', responder_id: 'A1', entry: { kind: 'redemption', minutes: 30, balance_minutes: 0 } });
  assert.deepEqual([...s.state.responders.keys()], before);
  assert.equal(s.lastSeq, 15, "every event was taken in order");
});

test('a service offered now gets its own two promises, met by the accept and the arrival', () => {
  const s = store();
  s.state.slaMs.job_accept = 600000;
  s.apply({ seq: 11, at: T0, type: 'incident_opened', incident_id: 5, alert_id: 'm', elder_id: 'E1', kind: 'help', service: 'meal', priority: 2, position: { lat: -30.03, lon: -51.22 }, reason: 'meal request from E1 (care level 2): service request, priority 2' });
  const inc = s.state.incidents.get(5);
  assert.deepEqual(inc.clocks.map((c) => [c.sla, c.deadline - T0]), [['job_accept', 600000], ['job_on_scene', 3600000]]);
  assert.ok(!s.state.newIds.has(5), 'only emergencies are highlighted as new');
  s.apply({ seq: 12, at: T0 + 1000, type: 'assigned', incident_id: 5, responder_id: 'V1', role: 'community', eta_s: 60, route: [], reason: 'accepted' });
  assert.equal(inc.clocks[0].met_at, T0 + 1000);
  s.apply({ seq: 13, at: T0 + 2000, type: 'responder_arrived', incident_id: 5, responder_id: 'V1', role: 'community' });
  assert.equal(inc.clocks[1].met_at, T0 + 2000);
  // a scheduled one waits for the snapshot's clocks
  s.apply({ seq: 14, at: T0, type: 'incident_opened', incident_id: 6, alert_id: 'n', elder_id: 'E1', kind: 'help', service: 'shopping', priority: 2, position: { lat: -30.03, lon: -51.22 }, reason: 'shopping request from E1 (care level 2): service request, priority 2; offers go out at 1800003600000' });
  assert.deepEqual(s.state.incidents.get(6).clocks, []);
});
