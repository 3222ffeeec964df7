// A WebSocket whose socket lives in a worker (socket-worker.js), for Connection's
// `WebSocketImpl`: the same surface the console uses (readyState, send, close, onopen,
// onmessage with text `data`, onerror, onclose with code), but the frames reach the page in
// batches, one task per batch instead of one per frame, each still handed to `onmessage` on
// its own and in order. Without Worker support it is the browser's WebSocket.

const WORKER_URL = new URL('./socket-worker.js', import.meta.url);

export class WorkerSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0; // CONNECTING, as WebSocket: 1 OPEN, 2 CLOSING, 3 CLOSED
    this.onopen = null;
    this.onmessage = null;
    this.onerror = null;
    this.onclose = null;
    this.worker = new Worker(WORKER_URL);
    this.worker.onmessage = (e) => this._fromWorker(e.data || {});
    // the worker script failed to load or threw: the socket is gone, as a dropped connection
    this.worker.onerror = (e) => {
      e.preventDefault?.();
      this._closed({ code: 1006, reason: 'socket worker failed', wasClean: false });
    };
    this.worker.postMessage({ t: 'open', url });
  }

  send(data) {
    if (this.readyState !== 1) throw new DOMException('WebSocket is not open', 'InvalidStateError');
    this.worker.postMessage({ t: 'send', data });
  }

  close(code, reason) {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.worker.postMessage({ t: 'close', code, reason });
  }

  _fromWorker(m) {
    if (this.readyState === 3) return;
    if (m.t === 'messages') {
      for (const data of m.data) {
        if (this.readyState === 3) return;
        this.onmessage?.({ data });
      }
    } else if (m.t === 'open') {
      if (this.readyState === 0) this.readyState = 1;
      this.onopen?.({});
    } else if (m.t === 'error') this.onerror?.({});
    else if (m.t === 'close') this._closed(m);
  }

  _closed({ code, reason, wasClean }) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.worker.terminate();
    this.onclose?.({ code, reason, wasClean });
  }
}

/** WorkerSocket where workers exist, else the browser's WebSocket. */
export const ConsoleSocket = typeof Worker === 'function' ? WorkerSocket : globalThis.WebSocket;
