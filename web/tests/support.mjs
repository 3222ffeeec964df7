// Shared helpers of the browser tests (console and responder app): a real `dispatch serve` on
// the real Porto Alegre map with a temp data dir and a roster of known tokens, a device that
// posts alerts over HTTP, a raw WebSocket client (for a responder's phone or an operator),
// and a headless Chromium (Debian's /usr/bin/chromium through playwright-core).
//
//   const roster = testRoster();                    // { roster, tokens: { OP1, GW1, V1, … } }
//   const srv = await startServer({ roster: roster.roster });   // srv.base, srv.port, srv.stop()
//   const again = await startServer({ roster: roster.roster, dataDir: srv.dataDir, port: srv.port });
//   await postAlert(srv.base, roster.tokens.GW1, { alert_id, kind: 'fall', elder_id: 'E1', … });
//   const phone = await WsClient.connect(srv.base, roster.tokens.V1);
//   await phone.request({ type: 'availability', status: 'available' });
//   const offer = await phone.next((f) => f.type === 'offer', 10000);
//   const { browser, page } = await openBrowser();  … await browser.close();
//
// Everything is bounded in time and only 127.0.0.1 is ever contacted.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = join(ROOT, 'target', 'web-artifacts');
export const DISPATCH_BIN = process.env.DISPATCH_BIN || join(ROOT, 'target', 'debug', 'dispatch');
export const MAP = process.env.DISPATCH_MAP || resolve(ROOT, '..', 'shared', 'data', 'porto_alegre.osm.pbf');

export const sha256hex = (s) => createHash('sha256').update(s).digest('hex');

/** Points on roads of Centro Histórico, Porto Alegre (the example roster's neighbourhood). */
export const CENTRE = { lat: -30.03, lon: -51.22 };

/**
 * A small deployment around CENTRE: grids G1, G2; volunteers V1..V5 (foot), grid worker W1,
 * service staff S1, ambulance A1 (car); elders E1..E5; operator OP1; device GW1. Tokens are
 * `tok-<id>`; the roster holds only their SHA-256.
 */
export function testRoster() {
  const tokens = {};
  const tok = (id) => {
    tokens[id] = `tok-${id}`;
    return sha256hex(tokens[id]);
  };
  const vol = (id, lat, lon, grid = 'G1') => ({
    id, kind: 'volunteer', travel_mode: 'foot', home: { lat, lon }, grid_id: grid, skills: ['first_aid'], token_sha256: tok(id),
  });
  const roster = {
    grids: [{ id: 'G1', name: 'Centro Histórico' }, { id: 'G2', name: 'Cidade Baixa' }],
    responders: [
      vol('V1', -30.027, -51.22),
      vol('V2', -30.032, -51.219),
      vol('V3', -30.03, -51.216),
      vol('V4', -30.028, -51.223),
      vol('V5', -30.031, -51.222, 'G2'),
      { id: 'W1', kind: 'grid_worker', travel_mode: 'foot', home: { lat: -30.029, lon: -51.218 }, grid_id: 'G1', skills: [], token_sha256: tok('W1') },
      { id: 'S1', kind: 'service_staff', travel_mode: 'car', home: { lat: -30.025, lon: -51.215 }, grid_id: 'G1', skills: [], token_sha256: tok('S1') },
      { id: 'A1', kind: 'ambulance', travel_mode: 'car', home: { lat: -30.012, lon: -51.22 }, skills: [], token_sha256: tok('A1') },
    ],
    elders: [
      {
        id: 'E1', home: { lat: -30.03, lon: -51.22 }, grid_id: 'G1', care_level: 4, paired_responders: ['V1'], family: ['daughter Maria'],
        details: { name: 'Dona Lúcia', address: 'Rua Fictícia 12', phone: '+55 51 0000-1111', keyholders: ['Seu Jorge, casa 14'], medical_notes: 'anticoagulants' },
      },
      { id: 'E2', home: { lat: -30.029, lon: -51.221 }, grid_id: 'G1', care_level: 3, paired_responders: ['V2'], family: [], details: { name: '王奶奶', address: '示例路 8 号 3 单元', languages: ['zh-CN'], keyholders: ['邻居 李先生'] } },
      { id: 'E3', home: { lat: -30.031, lon: -51.218 }, grid_id: 'G2', care_level: 5, paired_responders: [], family: [] },
      { id: 'E4', home: { lat: -30.0295, lon: -51.2195 }, grid_id: 'G1', care_level: 2, paired_responders: ['V3'], family: [] },
      { id: 'E5', home: { lat: -30.028, lon: -51.2205 }, grid_id: 'G2', care_level: 1, paired_responders: [], family: [] },
    ],
    operators: [{ id: 'OP1', token_sha256: tok('OP1') }],
    devices: [{ id: 'GW1', token_sha256: tok('GW1') }],
  };
  return { roster, tokens };
}

/**
 * Start `dispatch serve` on the real map. `dataDir` (default: a fresh temp dir) and `port`
 * (default: any free one) let a test restart the same service on the same origin; `args` are
 * more `dispatch serve` flags (for example `--config FILE`).
 * Resolves once the server prints its address; rejects after `timeoutMs` or if it exits.
 */
export async function startServer({ roster, rosterPath, dataDir, port = 0, timeoutMs = 60000, env = {}, args: extra = [] } = {}) {
  if (!existsSync(DISPATCH_BIN)) throw new Error(`${DISPATCH_BIN} is missing: cargo build -p dispatch-server --bin dispatch`);
  if (!existsSync(MAP)) throw new Error(`${MAP} is missing (the real map, ../shared/data)`);
  const ownDir = !dataDir;
  const dir = dataDir || mkdtempSync(join(tmpdir(), 'dispatch-web-'));
  if (!rosterPath) {
    rosterPath = join(dir, 'roster.json');
    writeFileSync(rosterPath, JSON.stringify(roster, null, 1));
  }
  const journal = join(dir, 'journal');
  mkdirSync(journal, { recursive: true });
  const args = ['serve', '--map', MAP, '--roster', rosterPath, '--data-dir', journal, '--listen', `127.0.0.1:${port}`, ...extra];
  const proc = spawn(DISPATCH_BIN, args, {
    env: { ...process.env, DISPATCH_WEB_DIR: join(ROOT, 'web'), RUST_LOG: process.env.RUST_LOG || 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let log = '';
  proc.stderr.on('data', (d) => {
    log += d;
    if (log.length > 200000) log = log.slice(-100000);
  });
  const addr = await new Promise((res, rej) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      rej(new Error(`dispatch serve did not report its address within ${timeoutMs} ms\n${log}`));
    }, timeoutMs);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on http:\/\/([0-9.]+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`dispatch serve exited (${code}) before listening\n${log}`));
    });
  });
  const exited = new Promise((res) => proc.on('exit', res));
  const srv = {
    proc,
    addr,
    port: Number(addr.split(':')[1]),
    base: `http://${addr}`,
    dataDir: dir,
    rosterPath,
    log: () => log,
    /** SIGTERM, wait (≤ 10 s, then SIGKILL); `keepData` keeps the data dir for a restart. */
    async stop({ keepData = false } = {}) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
        await exited;
        clearTimeout(t);
      }
      if (ownDir && !keepData) rmSync(dir, { recursive: true, force: true });
    },
  };
  return srv;
}

/** POST /v1/alerts as a device; resolves to { status, body }. */
export async function postAlert(base, token, alert) {
  const res = await fetch(`${base}/v1/alerts`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ detected_at: Date.now(), ...alert }),
    signal: AbortSignal.timeout(10000),
  });
  return { status: res.status, body: await res.json() };
}

/** GET an authenticated JSON route; resolves to { status, body }. */
export async function getJson(base, path, token) {
  const res = await fetch(`${base}${path}`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

/** Wait until `fn()` is truthy (polling every 50 ms), at most `timeoutMs`. */
export async function waitFor(fn, timeoutMs = 10000, what = 'condition') {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

/**
 * A raw WebSocket client (a responder's phone, or an operator without a browser). Every frame
 * received is kept in `frames`; `next(pred)` waits for the first not yet taken that matches.
 */
export class WsClient {
  static connect(base, token, timeoutMs = 10000) {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/ws?access_token=${encodeURIComponent(token)}`);
    const c = new WsClient(ws);
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('WebSocket: no welcome')), timeoutMs);
      ws.on('error', (e) => {
        clearTimeout(t);
        rej(e);
      });
      c.next((f) => f.type === 'welcome', timeoutMs).then((w) => {
        clearTimeout(t);
        c.welcome = w;
        res(c);
      }, rej);
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.taken = new Set();
    this.waiters = [];
    this.nextId = 1;
    ws.on('message', (data) => {
      let f;
      try {
        f = JSON.parse(String(data));
      } catch {
        return;
      }
      this.frames.push(f);
      for (const w of [...this.waiters]) w();
    });
  }

  send(frame) {
    this.ws.send(JSON.stringify(frame));
  }

  /** The first frame (not taken by an earlier `next`) matching `pred`, within `timeoutMs`. */
  next(pred, timeoutMs = 10000) {
    return new Promise((res, rej) => {
      const check = () => {
        for (let i = 0; i < this.frames.length; i++) {
          if (this.taken.has(i)) continue;
          if (pred(this.frames[i])) {
            this.taken.add(i);
            cleanup();
            res(this.frames[i]);
            return true;
          }
        }
        return false;
      };
      const t = setTimeout(() => {
        cleanup();
        rej(new Error(`WsClient: no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(t);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      if (!check()) this.waiters.push(check);
    });
  }

  /** Send with a fresh id; resolves with the reply (an `error` frame resolves too). */
  request(frame, timeoutMs = 10000) {
    const id = `t${this.nextId++}`;
    this.send({ ...frame, id });
    return this.next((f) => f.re === id, timeoutMs);
  }

  close() {
    this.ws.close();
  }
}

/** Headless Chromium (Debian's), never a downloaded one. */
export async function openBrowser({ locale = 'en-US', viewport = { width: 1440, height: 900 }, bypassCSP = false } = {}) {
  const args = ['--no-sandbox'];
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args });
  const context = await browser.newContext({ locale, viewport, bypassCSP });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  return { browser, context, page, errors };
}

export function artifactPath(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

/**
 * Copies a screenshot from target/web-artifacts/ to docs/images/ (same file name), only with
 * UPDATE_DOCS_IMAGES=1: the committed images change when asked, a plain run leaves the tree clean.
 */
export function updateDocsImage(name) {
  if (!process.env.UPDATE_DOCS_IMAGES) return;
  const dir = join(ROOT, 'docs', 'images');
  mkdirSync(dir, { recursive: true });
  copyFileSync(artifactPath(name), join(dir, name));
}
