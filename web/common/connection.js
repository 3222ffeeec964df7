// The WebSocket link both apps use: `/v1/ws?access_token=…` on the page's own origin, with
// reconnects (exponential backoff with jitter, bounded in delay and in attempts), status
// callbacks and request/reply by id with timeouts.
//
//   const conn = new Connection({
//     token,
//     probeUrl: '/v1/whoami',            // who the token is: 401/403 = wrong token
//     probeAccept: (me) => me.role === 'operator', // optional: false = this token cannot use
//                                        // the app (as a 403)
//     onStatus: (status, info) => …,     // 'connecting' | 'open' | 'closed' | 'unauthorized'
//     onFrame: (frame) => …,             // every frame, replies included (after they resolve)
//     onOpen: (welcome) => …,            // after each `welcome` (subscribe again here)
//   });
//   conn.start();  conn.stop();
//   const reply = await conn.request({ type: 'assign', incident_id: 7, responder_id: 'V3' });
//     // rejects with an Error whose .code is the server's error code ('timeout',
//     // 'disconnected' locally) and whose .message is the server's message
//   conn.send(frame)  // fire and forget; false when not open
//
// A link that is gone before TCP says so is dropped at once, and the retries take over: when
// the browser goes offline (its `offline` event; `online` retries at once), and when a request
// gets no reply within its timeout.
//
// A wrong token: the server refuses the upgrade with HTTP 401, which a browser only sees as a
// close. So before every connection attempt the client fetches `probeUrl` with the bearer
// header: 401 or 403 stops everything with status 'unauthorized' (info.httpStatus), and so
// does a 200 whose JSON body `probeAccept` refuses (info.httpStatus 403, info.me that body);
// a network failure, or a 200 whose body is not JSON, counts as a failed attempt and is
// retried. `info` for 'closed' has { attempt, retryInMs, gaveUp }.

export class Connection {
  constructor(opts) {
    this.token = opts.token;
    this.probeUrl = opts.probeUrl || null;
    this.probeAccept = opts.probeAccept || null;
    this.onStatus = opts.onStatus || (() => {});
    this.onFrame = opts.onFrame || (() => {});
    this.onOpen = opts.onOpen || (() => {});
    this.wsPath = opts.wsPath || '/v1/ws';
    this.minDelayMs = opts.minDelayMs ?? 500;
    this.maxDelayMs = opts.maxDelayMs ?? 10000;
    this.maxAttempts = opts.maxAttempts ?? 2000; // ~5 h at the maximum delay, then gives up
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10000;
    this.WebSocketImpl = opts.WebSocketImpl || globalThis.WebSocket;
    this.fetchImpl = opts.fetchImpl || ((u, o) => fetch(u, o));
    this.origin = opts.origin || (typeof location !== 'undefined' ? location.origin : '');
    this.ws = null;
    this.pending = new Map();
    this.nextId = 1;
    this.attempt = 0;
    this.timer = 0;
    this.running = false;
    this.status = 'closed';
    this.welcome = null;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this._listenToNetwork(true);
    this._connect();
  }

  stop() {
    this.running = false;
    this._listenToNetwork(false);
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try {
        ws.close(1000);
      } catch {
        /* already closed */
      }
    }
    this._failPending('disconnected', 'connection stopped');
    if (this.status === 'unauthorized') return; // keep saying why it stopped
    this._setStatus('closed', { attempt: this.attempt, retryInMs: null, gaveUp: false, stopped: true });
  }

  /** Reconnect now (e.g. a "retry" button after giving up). */
  retryNow() {
    clearTimeout(this.timer);
    this.running = true;
    this.attempt = 0;
    if (!this.ws) this._connect();
  }

  /** The browser's own word on the network: offline drops the link now (a socket can stay
   * "open" for minutes with nothing getting through), online retries now. */
  _listenToNetwork(on) {
    const w = typeof window !== 'undefined' && typeof window.addEventListener === 'function' ? window : null;
    if (!w) return;
    if (on && !this._net) {
      this._net = {
        offline: () => this._drop('the browser is offline'),
        online: () => {
          if (this.running && !this.ws) this.retryNow();
        },
      };
      w.addEventListener('offline', this._net.offline);
      w.addEventListener('online', this._net.online);
    } else if (!on && this._net) {
      w.removeEventListener('offline', this._net.offline);
      w.removeEventListener('online', this._net.online);
      this._net = null;
    }
  }

  /** Drops the link now; pending requests fail as `disconnected` and the retries begin. */
  _drop(why) {
    const ws = this.ws;
    if (!this.running || !ws) return;
    this.ws = null; // its own close event, when it comes, is then ignored
    this.welcome = null;
    try {
      ws.close(1000);
    } catch {
      /* already closed */
    }
    this._failPending('disconnected', why);
    this._scheduleRetry();
  }

  _setStatus(status, info = {}) {
    this.status = status;
    try {
      this.onStatus(status, info);
    } catch (e) {
      console.error('connection status handler', e);
    }
  }

  async _connect() {
    if (!this.running) return;
    this.attempt++;
    this._setStatus('connecting', { attempt: this.attempt });
    if (this.probeUrl) {
      let res;
      try {
        res = await this.fetchImpl(this.origin + this.probeUrl, {
          headers: { Authorization: `Bearer ${this.token}` },
          cache: 'no-store',
        });
      } catch {
        res = null; // server unreachable: retry later
      }
      if (!this.running) return;
      if (res && (res.status === 401 || res.status === 403)) {
        let message = '';
        try {
          message = (await res.json()).message || '';
        } catch {
          /* no body */
        }
        this.running = false;
        this._setStatus('unauthorized', { httpStatus: res.status, message });
        return;
      }
      if (!res) {
        this._scheduleRetry();
        return;
      }
      if (this.probeAccept && res.ok) {
        let me = null;
        try {
          me = await res.json();
        } catch {
          /* not JSON: retried below */
        }
        if (!this.running) return;
        if (!me || typeof me !== 'object') {
          // a body cut short or not the server's (a proxy's page): not a refusal, try again
          this._scheduleRetry();
          return;
        }
        if (!this.probeAccept(me)) {
          this.running = false;
          this._setStatus('unauthorized', { httpStatus: 403, message: '', me });
          return;
        }
      }
    }
    const wsOrigin = this.origin.replace(/^http/, 'ws');
    let ws;
    try {
      ws = new this.WebSocketImpl(`${wsOrigin}${this.wsPath}?access_token=${encodeURIComponent(this.token)}`);
    } catch (e) {
      console.error('WebSocket', e);
      this._scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => this._message(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.welcome = null;
      this._failPending('disconnected', `connection closed (${ev.code})`);
      if (this.running) this._scheduleRetry(ev.code);
    };
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  _scheduleRetry(closeCode) {
    if (this.attempt >= this.maxAttempts) {
      this.running = false;
      this._setStatus('closed', { attempt: this.attempt, retryInMs: null, gaveUp: true, closeCode });
      return;
    }
    const base = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** Math.min(20, this.attempt - 1));
    const delay = Math.round(base * (0.7 + 0.6 * Math.random()));
    this._setStatus('closed', { attempt: this.attempt, retryInMs: delay, gaveUp: false, closeCode });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._connect(), delay);
  }

  _message(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      console.warn('connection: a frame that is not JSON was ignored');
      return;
    }
    if (!frame || typeof frame !== 'object') return;
    if (frame.type === 'welcome') {
      this.attempt = 0;
      this.welcome = frame;
      this._setStatus('open', { welcome: frame });
      try {
        this.onOpen(frame);
      } catch (e) {
        console.error('connection open handler', e);
      }
    }
    if (frame.re !== undefined && this.pending.has(frame.re)) {
      const p = this.pending.get(frame.re);
      this.pending.delete(frame.re);
      clearTimeout(p.timer);
      if (frame.type === 'error') p.reject(requestError(frame.code, frame.message, frame));
      else p.resolve(frame);
    }
    try {
      this.onFrame(frame);
    } catch (e) {
      console.error('connection frame handler', e);
    }
  }

  /** Send a frame now; false if the connection is not open. */
  send(frame) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Send `frame` with a fresh id and wait for its reply (rejects on `error`, timeout, close). */
  request(frame, { timeoutMs = this.requestTimeoutMs } = {}) {
    const id = `r${this.nextId++}`;
    return new Promise((resolve, reject) => {
      if (!this.send({ ...frame, id })) {
        reject(requestError('disconnected', 'not connected'));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(requestError('timeout', `no reply within ${Math.round(timeoutMs / 1000)} s`));
        // no reply at all: the link is most likely dead, so find out by connecting again
        this._drop('no reply');
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  _failPending(code, message) {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(requestError(code, message));
    }
    this.pending.clear();
  }
}

function requestError(code, message, frame) {
  const e = new Error(message || code);
  e.code = code;
  e.frame = frame;
  return e;
}
