// The phone's one WebSocket to the dispatch service: connects with the access code, reconnects
// with backoff after a drop, matches replies to requests by id, and tells a wrong code (HTTP
// 401 before the upgrade, which a browser's WebSocket cannot see) from a missing network by
// asking an authenticated HTTP route.

const BACKOFF_MS = [500, 1_000, 2_000, 4_000, 8_000];
const REPLY_TIMEOUT_MS = 10_000;

/**
 * `onFrame(frame)` gets every server frame; `onStatus(status)` gets 'connecting' | 'online' |
 * 'reconnecting' | 'offline' | 'wrong_token' | 'replaced'.
 */
export function createLink({ base = location.origin, token, onFrame, onStatus }) {
  let ws = null;
  let stopped = false;
  let attempt = 0;
  let timer = null;
  let nextId = 1;
  const waiting = new Map(); // id → {resolve, timer}
  const wsUrl = `${base.replace(/^http/, 'ws')}/v1/ws?access_token=${encodeURIComponent(token)}`;

  function status(s) {
    onStatus(s);
  }

  function failWaiting(code) {
    for (const [id, w] of waiting) {
      clearTimeout(w.timer);
      w.resolve({ type: 'error', re: id, code, message: code });
    }
    waiting.clear();
  }

  /** 401 = the code is wrong; anything else that answers = the code is fine; a throw = no network. */
  async function probe() {
    try {
      const r = await fetch(`${base}/v1/responders/-/time-bank`, {
        headers: { Authorization: `Bearer ${token}` },
        cache: 'no-store',
      });
      return r.status === 401 ? 'wrong_token' : 'reachable';
    } catch {
      return 'unreachable';
    }
  }

  function open() {
    if (stopped) return;
    clearTimeout(timer);
    timer = null;
    let opened = false;
    let sock;
    try {
      sock = new WebSocket(wsUrl);
    } catch {
      schedule('offline');
      return;
    }
    ws = sock;
    status(attempt === 0 ? 'connecting' : 'reconnecting');
    sock.onopen = () => {
      opened = true;
    };
    sock.onmessage = (m) => {
      let frame;
      try {
        frame = JSON.parse(m.data);
      } catch {
        return;
      }
      if (frame.type === 'welcome') {
        attempt = 0;
        status('online');
      }
      if (frame.re !== undefined && waiting.has(frame.re)) {
        const w = waiting.get(frame.re);
        waiting.delete(frame.re);
        clearTimeout(w.timer);
        w.resolve(frame);
      }
      onFrame(frame);
    };
    sock.onclose = async (e) => {
      if (ws !== sock) return;
      ws = null;
      failWaiting('offline');
      if (stopped) return;
      if (e.code === 4000) {
        // Another phone signed in with this code: the newer one wins; do not fight it.
        stopped = true;
        status('replaced');
        return;
      }
      if (!opened) {
        const p = await probe();
        if (stopped) return;
        if (p === 'wrong_token') {
          stopped = true;
          status('wrong_token');
          return;
        }
        schedule(p === 'unreachable' ? 'offline' : 'reconnecting');
        return;
      }
      schedule(navigator.onLine === false ? 'offline' : 'reconnecting');
    };
  }

  function schedule(s) {
    status(s);
    const wait = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    attempt += 1;
    clearTimeout(timer);
    timer = setTimeout(open, wait);
  }

  function online() {
    // The network is back: try at once instead of waiting out the backoff.
    if (!stopped && !ws) {
      attempt = Math.min(attempt, 1);
      open();
    }
  }
  function offline() {
    if (!stopped && !ws) status('offline');
  }
  addEventListener('online', online);
  addEventListener('offline', offline);

  open();

  return {
    /** Fire and forget; false when there is no open connection. */
    send(frame) {
      if (!ws || ws.readyState !== WebSocket.OPEN) return false;
      ws.send(JSON.stringify(frame));
      return true;
    },
    /** Sends with a fresh id and resolves with the reply frame (`ack` or `error`, never rejects). */
    request(frame) {
      const id = `r${nextId++}`;
      return new Promise((resolve) => {
        if (!ws || ws.readyState !== WebSocket.OPEN) {
          resolve({ type: 'error', re: id, code: 'offline', message: 'offline' });
          return;
        }
        const t = setTimeout(() => {
          waiting.delete(id);
          resolve({ type: 'error', re: id, code: 'timeout', message: 'timeout' });
        }, REPLY_TIMEOUT_MS);
        waiting.set(id, { resolve, timer: t });
        ws.send(JSON.stringify({ ...frame, id }));
      });
    },
    close() {
      stopped = true;
      clearTimeout(timer);
      removeEventListener('online', online);
      removeEventListener('offline', offline);
      failWaiting('offline');
      if (ws) {
        const s = ws;
        ws = null;
        s.close(1000, 'logged out');
      }
    },
  };
}
