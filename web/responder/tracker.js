// The phone's position, sent at the rate the protocol needs: every ~5 s while en route to a
// job, at most every ~60 s (or after moving more than 50 m) while waiting on duty, and never
// while off duty (the Geolocation watch is cleared, not just ignored).

export const EN_ROUTE_EVERY_MS = 5_000;
export const IDLE_EVERY_MS = 60_000;
export const IDLE_MOVE_M = 50;

/** Great-circle distance in metres (haversine, mean Earth radius). */
export function distanceM(a, b) {
  const r = 6_371_008.8;
  const rad = Math.PI / 180;
  const dlat = (b.lat - a.lat) * rad;
  const dlon = (b.lon - a.lon) * rad;
  const h =
    Math.sin(dlat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dlon / 2) ** 2;
  return 2 * r * Math.asin(Math.min(1, Math.sqrt(h)));
}

/**
 * Whether to send `fix` now. `last` is the last sent {lat, lon, at} or null.
 * Pure, so the rules are testable without a phone.
 */
export function shouldSend(mode, fix, last, now) {
  if (mode === 'off' || !fix) return false;
  if (!last) return true;
  const age = now - last.at;
  if (mode === 'en_route') return age >= EN_ROUTE_EVERY_MS;
  return age >= IDLE_EVERY_MS || distanceM(last, fix) > IDLE_MOVE_M;
}

/**
 * Watches the Geolocation API while the mode is not 'off' and calls `send(position)` by the
 * rules above. `report(event)` tells the store about fixes and errors.
 */
export function createTracker({ geolocation, send, report, now = () => Date.now() }) {
  let mode = 'off';
  let watchId = null;
  let timer = null;
  let fix = null; // the newest {lat, lon, accuracy_m}
  let last = null; // the last sent {lat, lon, at}

  function consider() {
    const t = now();
    if (!shouldSend(mode, fix, last, t)) return;
    if (send({ lat: fix.lat, lon: fix.lon })) {
      last = { lat: fix.lat, lon: fix.lon, at: t };
      report({ type: 'ui.position_sent', at: t });
    }
  }

  function start() {
    if (!geolocation) {
      report({ type: 'ui.position_error', error: 'unsupported' });
      return;
    }
    watchId = geolocation.watchPosition(
      (p) => {
        fix = { lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: p.coords.accuracy };
        report({ type: 'ui.position', position: fix });
        consider();
      },
      (err) => report({ type: 'ui.position_error', error: err && err.code === 1 ? 'denied' : 'unavailable' }),
      { enableHighAccuracy: true, maximumAge: 10_000, timeout: 60_000 },
    );
    // The watch only fires on movement; the timer keeps the en-route rate (and the idle
    // heartbeat) for a phone that stands still.
    timer = setInterval(consider, 1_000);
  }

  function stop() {
    if (watchId !== null && geolocation) geolocation.clearWatch(watchId);
    if (timer !== null) clearInterval(timer);
    watchId = null;
    timer = null;
    fix = null;
    last = null;
  }

  return {
    setMode(next) {
      if (next === mode) return;
      const was = mode;
      mode = next;
      if (next === 'off') stop();
      else if (was === 'off') start();
      else consider(); // idle ↔ en route: the new rate applies at once
    },
    /** Forget what was sent, so the next fix goes out at once (after a reconnect). */
    resend() {
      last = null;
      consider();
    },
    get mode() {
      return mode;
    },
  };
}
