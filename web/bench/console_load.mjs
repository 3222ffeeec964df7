// Benchmark (not a test): the operator console in headless Chromium while `simulator load`
// drives the server (phones moving, alerts arriving, simulated responders accepting). Measures,
// with the browser's own performance API:
//   - event lag: the wall clock (Date.now(), as the server's `at` and the bare client) at the end
//     of the console frame that puts an event on screen, minus the event frame's `at` (the
//     engine's time when it happened);
//   - frame time: requestAnimationFrame deltas while the load runs.
// Prints a JSON summary and a Markdown line for benches/README.md.
//
//   node web/bench/console_load.mjs [--responders 10000] [--alerts 3000] [--alerts-per-s 100]
//        [--location-hz 1] [--max-duration-s 60] [--volunteers 10000] [--out target/bench-console]
//        [--accept-share 0.6 (the simulator's; lower keeps more incidents open)] [--profile]
//        [--no-map-draw (what the page costs without drawing the map)]
//        [--trace (8 s of the browser's trace, 20 s into the load: self time by thread and event)]
//
// Needs target/{release,debug}/{dispatch,simulator} (DISPATCH_BIN / SIMULATOR_BIN override)
// and ../shared/data. Run from the repository root; uses web/tests/node_modules.

import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import os from 'node:os';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(ROOT, 'web', 'tests', 'package.json'));
const { chromium } = require('playwright-core');
const WebSocket = require('ws');

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const opt = {
  responders: Number(arg('responders', 10000)),
  volunteers: Number(arg('volunteers', 10000)),
  alerts: Number(arg('alerts', 3000)),
  alertsPerS: Number(arg('alerts-per-s', 100)),
  locationHz: Number(arg('location-hz', 1)),
  acceptShare: arg('accept-share', null),
  maxDurationS: Number(arg('max-duration-s', 60)),
  out: resolve(arg('out', join(ROOT, 'target', 'bench-console'))),
};
const bin = (name, env) => {
  if (process.env[env]) return process.env[env];
  for (const p of ['release', 'debug']) if (existsSync(join(ROOT, 'target', p, name))) return join(ROOT, 'target', p, name);
  throw new Error(`target/{release,debug}/${name} missing: cargo build`);
};
const DISPATCH = bin('dispatch', 'DISPATCH_BIN');
const SIM = bin('simulator', 'SIMULATOR_BIN');
const DATA = process.env.DISPATCH_SHARED_DATA || resolve(ROOT, '..', 'shared', 'data');
const MAP = join(DATA, 'porto_alegre.osm.pbf');
const GRID = join(DATA, 'porto_alegre_hexgrid.csv');

/** Self time (ms) of complete ('X') trace events, by thread name and event name, largest
 * first: an event's duration minus that of the events nested in it on the same thread. */
function traceSelfTimes(events) {
  const names = new Map();
  for (const e of events) if (e.ph === 'M' && e.name === 'thread_name') names.set(`${e.pid}:${e.tid}`, e.args.name);
  const byThread = new Map();
  for (const e of events) {
    if (e.ph !== 'X' || !Number.isFinite(e.dur)) continue;
    const k = `${e.pid}:${e.tid}`;
    if (!byThread.has(k)) byThread.set(k, []);
    byThread.get(k).push(e);
  }
  const self = new Map();
  for (const [k, evs] of byThread) {
    evs.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
    const stack = [];
    const add = (e, us) => {
      const key = `${names.get(k) || k} ${e.name}`;
      self.set(key, (self.get(key) || 0) + us / 1000);
    };
    for (const e of evs) {
      while (stack.length && stack[stack.length - 1].end <= e.ts) {
        const top = stack.pop();
        add(top.e, top.self);
      }
      if (stack.length) stack[stack.length - 1].self -= Math.min(e.dur, stack[stack.length - 1].end - e.ts);
      stack.push({ e, end: e.ts + e.dur, self: e.dur });
    }
    while (stack.length) {
      const top = stack.pop();
      add(top.e, top.self);
    }
  }
  return [...self.entries()].sort((a, b) => b[1] - a[1]);
}

const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

mkdirSync(opt.out, { recursive: true });
const rosterPath = join(opt.out, 'roster.json');
const tokensPath = join(opt.out, 'tokens.json');
console.error(`bench: roster with ${opt.volunteers} volunteers`);
execFileSync(SIM, ['roster', '--map', MAP, '--population', GRID, '--seed', '1', '--volunteers', String(opt.volunteers), '--roster-out', rosterPath, '--tokens-out', tokensPath], { stdio: ['ignore', 'ignore', 'inherit'] });
const tokens = JSON.parse(readFileSync(tokensPath, 'utf8'));
const opToken = Object.values(tokens.operators)[0];

const dataDir = join(opt.out, `data-${Date.now()}`);
const server = spawn(DISPATCH, ['serve', '--map', MAP, '--roster', rosterPath, '--data-dir', dataDir, '--listen', '127.0.0.1:0'], {
  env: { ...process.env, DISPATCH_WEB_DIR: join(ROOT, 'web'), RUST_LOG: 'warn' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const addr = await new Promise((res, rej) => {
  let out = '';
  const t = setTimeout(() => rej(new Error('dispatch serve did not start within 120 s')), 120000);
  server.stdout.on('data', (d) => {
    out += d;
    const m = /listening on http:\/\/([0-9.]+:\d+)/.exec(out);
    if (m) {
      clearTimeout(t);
      res(m[1]);
    }
  });
  server.on('exit', (c) => rej(new Error(`dispatch serve exited ${c}`)));
});
const stopServer = () => {
  if (server.exitCode === null) server.kill('SIGTERM');
};
const serverExited = new Promise((r) => server.on('exit', r));
process.on('exit', stopServer);

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
let result;
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 }, locale: 'en-US' });
  await page.goto(`http://${addr}/console/?access_token=${encodeURIComponent(opToken)}${process.argv.includes('--no-map-draw') ? '#nomap' : ''}`);
  await page.waitForSelector('[data-testid=connection-status][data-state=open]', { timeout: 60000 });
  await page.waitForFunction(() => window.__console && window.__console.map && window.__console.store.state, null, { timeout: 60000 });
  // the frame-time probe, and a clean slate for the lag samples
  await page.evaluate(() => {
    const f = (window.__bench = { deltas: [], last: 0, on: true });
    f.open = [];
    const loop = (ts) => {
      if (f.last) f.deltas.push(ts - f.last);
      const st = window.__console.store.state;
      if (st) f.open.push(st.incidents.size);
      f.last = ts;
      if (f.on) requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
    window.__console.metrics.lags.length = 0;
    window.__console.metrics.eventLags.length = 0;
    window.__console.metrics.frames.length = 0;
    // where a frame's time goes: the views' render and the map's draw
    const map = window.__console.map;
    if (location.hash === '#nomap') map._draw = () => {};
    const draw = map._draw.bind(map);
    f.drawMs = [];
    map._draw = () => {
      const t0 = performance.now();
      draw();
      f.drawMs.push(performance.now() - t0);
    };
  });
  // the same stream received by a bare Node client: how much of the lag is before the browser
  const wire = { lags: [], eventLags: [] };
  const raw = new WebSocket(`ws://${addr}/v1/ws?access_token=${encodeURIComponent(opToken)}`);
  raw.on('message', (d) => {
    const f = JSON.parse(String(d));
    // subscribed as the console is (moves batched), each move timed by its own `at`
    if (f.type === 'welcome') raw.send(JSON.stringify({ type: 'subscribe', id: 1, moves: 'batched' }));
    else if (f.type === 'responders_moved' && Array.isArray(f.moves)) {
      const now = Date.now();
      for (const m of f.moves) wire.lags.push(now - m.at);
    } else if (Number.isFinite(f.seq) && Number.isFinite(f.at) && f.type !== 'snapshot') {
      wire.lags.push(Date.now() - f.at);
      wire.eventLags.push(Date.now() - f.at);
    }
  });
  await new Promise((r) => raw.on('open', r));
  let cdp = null;
  if (process.argv.includes('--profile')) {
    cdp = await page.context().newCDPSession(page);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 1000 });
    await cdp.send('Profiler.start');
  }
  console.error(`bench: simulator load against ws://${addr}/v1/ws`);
  const started = Date.now();
  const loadOut = join(opt.out, 'load');
  const loadDone = new Promise((res, rej) => {
    const p = spawn(SIM, ['load', '--url', `ws://${addr}/v1/ws`, '--roster', rosterPath, '--tokens', tokensPath, '--responders', String(opt.responders), '--alerts', String(opt.alerts), '--alerts-per-s', String(opt.alertsPerS), '--location-hz', String(opt.locationHz), '--max-duration-s', String(opt.maxDurationS), ...(opt.acceptShare === null ? [] : ['--accept-share', String(opt.acceptShare)]), '--out', loadOut], { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('exit', (c) => (c === 0 ? res() : rej(new Error(`simulator load exited ${c}`))));
  });
  if (process.argv.includes('--trace')) {
    // 8 s of the browser's own trace, from 20 s into the load: where the renderer's time goes
    // beyond JavaScript (style, layout, paint, raster, compositing, message delivery)
    await new Promise((r) => setTimeout(r, 20000));
    const categories = ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8.execute', 'blink', 'cc', 'viz', 'toplevel'];
    await browser.startTracing(page, { categories });
    await new Promise((r) => setTimeout(r, 8000));
    const trace = JSON.parse(String(await browser.stopTracing()));
    writeFileSync(join(opt.out, 'trace.json'), JSON.stringify(trace));
    console.error('bench: browser trace, 8 s: self time (ms) by thread and event (top 40)');
    for (const [k, v] of traceSelfTimes(trace.traceEvents || trace).slice(0, 40)) console.error(`  ${v.toFixed(0).padStart(7)}  ${k}`);
  }
  await loadDone;
  const wallS = (Date.now() - started) / 1000;
  if (cdp) {
    const { profile } = await cdp.send('Profiler.stop');
    const self = new Map();
    const dt = profile.timeDeltas || [];
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    (profile.samples || []).forEach((id, i) => {
      const n = byId.get(id);
      const cf = n.callFrame;
      const key = `${cf.functionName || '(anon)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}`;
      self.set(key, (self.get(key) || 0) + (dt[i] || 0) / 1000);
    });
    const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25);
    console.error('bench: self time (ms) in the console page during the load');
    for (const [k, v] of top) console.error(`  ${v.toFixed(0).padStart(7)}  ${k}`);
  }
  raw.close();
  await page.waitForTimeout(1000); // let the last frames land
  const m = await page.evaluate(() => {
    window.__bench.on = false;
    const s = window.__console.store;
    // the lag samples (one per event and per batched move) are summarised in the page
    const summary = (xs) => {
      const lags = Float64Array.from(xs).sort();
      const at = (p) => (lags.length ? lags[Math.min(lags.length - 1, Math.ceil((p / 100) * lags.length) - 1)] : null);
      return { samples: lags.length, p50: at(50), p95: at(95), p99: at(99), max: at(100) };
    };
    // the worst lag drawn in each 5 s of the run
    const fr = window.__console.metrics.frames;
    const windows = [];
    for (let i = 0; i < fr.length; i += 2) {
      const w = Math.floor((fr[i] - fr[0]) / 5000);
      windows[w] = Math.max(windows[w] || 0, Math.round(fr[i + 1]));
    }
    return {
      worstLagPer5s: Array.from(windows, (x) => x || 0),
      lag: summary(window.__console.metrics.lags),
      eventLag: summary(window.__console.metrics.eventLags),
      deltas: window.__bench.deltas,
      drawMs: window.__bench.drawMs,
      renderMs: window.__console.metrics.renderMs || [],
      applied: s.applied,
      snapshots: window.__console.metrics.snapshots,
      openDuring: window.__bench.open,
      // each frame's time with the open incidents at its start (the case: 200 on the map)
      deltasWith200Open: window.__bench.deltas.filter((d, i) => window.__bench.open[i] >= 200),
      lastSeq: s.lastSeq,
      open: s.state.incidents.size,
      responders: s.state.responders.size,
      onMap: [...s.state.responders.values()].filter((r) => r.position).length,
      markers: window.__console.map.markers.length,
    };
  });
  await page.screenshot({ path: join(opt.out, 'console-under-load.png') });
  // The server's own clocks over the whole run (its Prometheus histograms: a quantile is the
  // upper bound of the bucket it falls in).
  const metricsText = await (await fetch(`http://${addr}/metrics`)).text();
  const quantiles = (name) => {
    const buckets = [...metricsText.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, 'gm'))].map((x) => [Number(x[1]), Number(x[2])]);
    const n = buckets.length ? buckets[buckets.length - 1][1] : 0;
    const at = (p) => (n ? (buckets.find(([, c]) => c >= (p / 100) * n)?.[0] ?? null) : null);
    const ms = (s) => (s === null || !Number.isFinite(s) ? s : s * 1000);
    return { samples: n, p50_at_most_ms: ms(at(50)), p99_at_most_ms: ms(at(99)) };
  };
  result = {
    date: new Date().toISOString(),
    load_average_at_end: os.loadavg().map((x) => Math.round(x * 100) / 100),
    command: `node web/bench/console_load.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    dispatch: DISPATCH.replace(ROOT + '/', ''),
    load: { responders: opt.responders, alerts: opt.alerts, alerts_per_s: opt.alertsPerS, location_hz: opt.locationHz, accept_share: opt.acceptShare, wall_s: wallS },
    console: { snapshots_by_reason: m.snapshots, open_incidents_per_frame: { p50: pct(m.openDuring, 50), max: pct(m.openDuring, 100) }, events_applied: m.applied, responders: m.responders, responders_on_map: m.onMap, markers: m.markers, open_incidents_at_end: m.open },
    event_lag_ms: m.lag,
    worst_lag_ms_per_5s: m.worstLagPer5s,
    event_lag_ms_numbered_events_only: m.eventLag,
    wire_lag_ms_node_client: { samples: wire.lags.length, p50: pct(wire.lags, 50), p99: pct(wire.lags, 99) },
    wire_lag_ms_node_client_numbered_events_only: { samples: wire.eventLags.length, p50: pct(wire.eventLags, 50), p99: pct(wire.eventLags, 99) },
    map_draw_ms: { p50: pct(m.drawMs, 50), p95: pct(m.drawMs, 95) },
    views_render_ms: { p50: pct(m.renderMs, 50), p95: pct(m.renderMs, 95) },
    frame_ms: { frames: m.deltas.length, p50: pct(m.deltas, 50), p95: pct(m.deltas, 95), p99: pct(m.deltas, 99), max: pct(m.deltas, 100) },
    server_alert_to_offer: quantiles('dispatch_alert_to_offer_seconds'),
    server_release_wait: quantiles('dispatch_release_wait_seconds'),
    frame_ms_with_200_open_incidents: { frames: m.deltasWith200Open.length, p50: pct(m.deltasWith200Open, 50), p95: pct(m.deltasWith200Open, 95) },
  };
} finally {
  await browser.close();
  stopServer();
  await serverExited;
  rmSync(dataDir, { recursive: true, force: true });
}
const r = (x) => (x === null ? '–' : x.toFixed(1));
writeFileSync(join(opt.out, 'console-bench.json'), JSON.stringify(result, null, 2));
console.log(JSON.stringify(result, null, 2));
console.log(
  `| ${result.date.slice(0, 10)} | ${result.load.responders} phones, ${result.load.alerts} alerts at ${result.load.alerts_per_s}/s | ${result.console.responders_on_map} responders, ${result.console.open_incidents_at_end} open incidents at the end | ${result.event_lag_ms.samples} events: p50 ${r(result.event_lag_ms.p50)} / p99 ${r(result.event_lag_ms.p99)} ms | ${result.frame_ms.frames} frames: p50 ${r(result.frame_ms.p50)} / p95 ${r(result.frame_ms.p95)} ms |`,
);
