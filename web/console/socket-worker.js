// The console's WebSocket, held in a dedicated worker (see socket.js): under load the server
// sends a frame per engine event, well over a thousand a second, and each one delivered to the
// page costs its main thread an IPC message, a task and a callback before any JavaScript runs.
// Here they arrive off the main thread and go to the page in batches (as the text frames they
// were, in order): at most one post per BATCH_MS while frames keep coming, the first frame
// after a quiet spell at once.

const BATCH_MS = 8;
let ws = null;
let batch = [];
let timer = 0;
let lastPost = -Infinity;

function flush() {
  clearTimeout(timer);
  timer = 0;
  if (!batch.length) return;
  self.postMessage({ t: 'messages', data: batch });
  batch = [];
  lastPost = performance.now();
}

self.onmessage = (e) => {
  const m = e.data || {};
  if (m.t === 'open' && !ws) {
    ws = new WebSocket(m.url);
    ws.onopen = () => self.postMessage({ t: 'open' });
    ws.onmessage = (ev) => {
      batch.push(ev.data);
      if (!timer) timer = setTimeout(flush, Math.max(0, lastPost + BATCH_MS - performance.now()));
    };
    ws.onerror = () => {
      flush();
      self.postMessage({ t: 'error' });
    };
    ws.onclose = (ev) => {
      flush();
      self.postMessage({ t: 'close', code: ev.code, reason: ev.reason, wasClean: ev.wasClean });
      self.close();
    };
  } else if (m.t === 'send' && ws && ws.readyState === 1) ws.send(m.data);
  else if (m.t === 'close' && ws) ws.close(m.code, m.reason);
};
