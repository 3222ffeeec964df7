// The client side of the engine's shape: state = fold(snapshot, events in seq order). Only
// `reset` (a snapshot) and `apply` (one event) change the state; views read `store.state`
// and are told, at most once per animation frame, that it changed.
//
//   const store = createStore({
//     fromSnapshot: (snapshotState, frame, previous) => newState,   // a fresh state
//                                          // (`previous`: the state it replaces, or null)
//     fold: (state, event) => void,                         // mutate state for one event
//   });
//   store.reset(snapshotFrame.state, snapshotFrame.seq, snapshotFrame);
//   store.apply(eventFrame);   // ignored if its seq is not above store.lastSeq
//   store.subscribe((state) => render(state));
//   store.lastSeq
//
// A fold step that throws (an event type or field this version does not know) is logged once
// per event type and skipped: the rest of the stream still applies.

export function createStore({ fromSnapshot, fold, schedule } = {}) {
  const listeners = new Set();
  const failed = new Set();
  const sched =
    schedule ||
    ((fn) => (typeof requestAnimationFrame === 'function' ? requestAnimationFrame(fn) : setTimeout(fn, 16)));
  let queued = false;

  const store = {
    state: null,
    lastSeq: 0,
    applied: 0,
    ignored: 0,
    reset(snapshotState, seq, frame) {
      store.state = fromSnapshot(snapshotState || {}, frame, store.state);
      store.lastSeq = Number.isFinite(seq) ? seq : 0;
      changed();
    },
    apply(event) {
      if (!store.state || !event || typeof event !== 'object') return false;
      const seq = event.seq;
      if (Number.isFinite(seq)) {
        if (seq <= store.lastSeq) {
          store.ignored++;
          return false;
        }
        store.lastSeq = seq;
      }
      try {
        fold(store.state, event);
        store.applied++;
      } catch (e) {
        const key = String(event.type);
        if (!failed.has(key)) {
          failed.add(key);
          console.warn(`store: event "${key}" could not be applied and was skipped`, e);
        }
        store.ignored++;
      }
      changed();
      return true;
    },
    subscribe(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    /** Tell the views now (tests, or after a batch). */
    flush() {
      queued = false;
      for (const cb of listeners) {
        try {
          cb(store.state);
        } catch (e) {
          console.error('store listener', e);
        }
      }
    },
  };

  function changed() {
    if (queued) return;
    queued = true;
    sched(() => {
      if (queued) store.flush();
    });
  }

  return store;
}
