//! Delivery of released events: numbered streams to operators' consoles (filters, throttled
//! `responder_moved` — one frame each, or gathered for `responders_moved` batches, see
//! moves.rs —, resume from a ring of recent events) and job frames to one responder
//! through the session registry.
//!
//! Owned by the engine task, so publishing is single-threaded and a console's registration is
//! atomic with the snapshot it starts from. The fanout keeps no copy of engine state: what
//! delivering an event needs beyond the event (the incident's position, grid and priority for
//! filters, the job facts a phone is told, who hears that an incident closed) is read from the
//! engine when the event is decided ([`Delivery::of`]) and travels with the event until it is
//! durable and released. Nothing here ever waits on a slow client: every
//! send is `try_send` into a bounded queue, and a full queue is a decision (see ARCHITECTURE.md
//! "Queues"): a console that falls behind is dropped and told so (it re-subscribes from its
//! last seq, getting the missed events or a fresh snapshot); a responder's phone whose queue is
//! full is disconnected (it reconnects).

use crate::moves::MoveBuffer;
use crate::wire::{self, Filter, JobFacts, KinNews, ServerMessage};
use dashmap::DashMap;
use dispatch_core::engine::Engine;
use dispatch_core::event::{Event, EventRecord};
use dispatch_core::geo::LatLon;
use dispatch_core::ids::{GridId, IncidentId, ResponderId};
use dispatch_core::incident::Incident;
use dispatch_core::time::Timestamp;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// One encoded text frame, shared by every recipient (encoded once per event).
pub type Frame = Arc<str>;

/// A frame on a console's queue, with the sequence number the console is at once it has it
/// (so a console that lagged can resume from exactly where it was).
#[derive(Debug, Clone)]
pub struct ConsoleFrame {
    pub seq: u64,
    pub text: Frame,
}

/// A responder's connected phone: where its frames go.
#[derive(Debug, Clone)]
pub struct ResponderOutbox {
    pub tx: mpsc::Sender<Frame>,
    /// Tells a newer connection of the same responder from an older one, so the older one's
    /// exit does not unregister the newer.
    pub session_no: u64,
}

/// The session registry: responder id → its phone's outbox. Sessions insert and remove
/// themselves; the engine task delivers through it.
pub type ResponderRegistry = DashMap<ResponderId, ResponderOutbox>;

/// A console's request to join the stream.
#[derive(Debug)]
pub struct SubscribeReq {
    pub filter: Filter,
    pub last_seq: Option<u64>,
    pub re: Option<Value>,
    pub tx: mpsc::Sender<ConsoleFrame>,
    /// Set by the fanout when it drops this console for falling behind.
    pub lagged: Arc<AtomicBool>,
    /// Why the console (re)subscribes, for the snapshot's `reason`.
    pub after_lag: bool,
    /// `Some` for a console subscribed with `"moves": "batched"`: its moves go here (the
    /// session sends them as `responders_moved` frames) instead of onto `tx`.
    pub moves: Option<Arc<MoveBuffer>>,
}

struct Console {
    tx: mpsc::Sender<ConsoleFrame>,
    filter: Filter,
    lagged: Arc<AtomicBool>,
    /// When this console last got a `responder_moved` for each responder (the throttle).
    last_moved: HashMap<ResponderId, Timestamp>,
    moves: Option<Arc<MoveBuffer>>,
}

/// What filters look at, worked out once per event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    position: Option<LatLon>,
    grid: Option<GridId>,
    priority: Option<u8>,
}

struct RingEntry {
    seq: u64,
    frame: Frame,
    meta: Meta,
}

/// What delivering one event needs beyond the event itself, read from the engine when the
/// event is decided (the engine then holds exactly the state the event came from; by the time
/// the event is durable it may have moved on, and closed incidents are forgotten).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    meta: Meta,
    /// What the responder it concerns may be told of the incident (offers, assignments).
    job: Option<JobFacts>,
    /// Who is told that the incident closed: everybody assigned to it.
    closed_to: Vec<ResponderId>,
    /// What the elder's kin are told of this step, and who they are.
    kin: Option<(KinNews, Vec<ResponderId>)>,
}

impl Delivery {
    /// Reads what delivering `event` needs from the engine that just decided it.
    pub fn of(engine: &Engine, event: &Event) -> Delivery {
        if let Some(id) = event.incident_id() {
            let Some(inc) = engine.incident_record(id) else {
                return Delivery::default();
            };
            let job = JobFacts {
                elder_id: inc.elder_id.clone(),
                // Only an assignment tells the elder's details: other events (most of them:
                // offers, moves of the incident) do not copy them.
                elder: match event {
                    Event::Assigned { .. } => engine
                        .roster()
                        .elder(&inc.elder_id)
                        .map(|e| (*e.details).clone())
                        .unwrap_or_default(),
                    _ => Default::default(),
                },
                kind: inc.kind,
                service: inc.service,
                priority: inc.priority,
                position: inc.position,
            };
            let closes = matches!(
                event,
                Event::IncidentResolved { .. } | Event::IncidentCancelled { .. }
            );
            let kin = event.kin_stage().and_then(|stage| {
                let to = engine.roster().kin_of_elder(&inc.elder_id);
                if to.is_empty() {
                    return None;
                }
                let (responder_kind, eta_s) = match event {
                    Event::Assigned {
                        responder_id,
                        eta_s,
                        ..
                    } => (
                        engine.roster().responder(responder_id).map(|r| r.kind),
                        Some(*eta_s),
                    ),
                    Event::ResponderArrived { responder_id, .. } => (
                        engine.roster().responder(responder_id).map(|r| r.kind),
                        None,
                    ),
                    _ => (None, None),
                };
                let news = KinNews {
                    incident_id: id,
                    elder_id: inc.elder_id.clone(),
                    stage,
                    kind: inc.kind,
                    service: inc.service,
                    at: Timestamp(0),
                    responder_kind,
                    eta_s,
                };
                Some((news, to.to_vec()))
            });
            return Delivery {
                meta: meta_of(engine, inc),
                closed_to: if closes {
                    inc.community
                        .iter()
                        .chain(&inc.ambulance)
                        .cloned()
                        .collect()
                } else {
                    Vec::new()
                },
                job: event.responder_id().is_some().then_some(job),
                kin,
            };
        }
        Delivery {
            meta: Meta {
                position: match event {
                    Event::ResponderMoved { position, .. } => Some(*position),
                    _ => None,
                },
                grid: event
                    .responder_id()
                    .and_then(|r| engine.roster().responder(r)?.grid_id.clone()),
                priority: None,
            },
            ..Delivery::default()
        }
    }

    /// What a console filter sees of an incident (for filtering a snapshot).
    pub fn incident_meta(engine: &Engine, id: IncidentId) -> Option<Meta> {
        engine.incident_record(id).map(|inc| meta_of(engine, inc))
    }
}

fn meta_of(engine: &Engine, inc: &Incident) -> Meta {
    Meta {
        position: Some(inc.position),
        grid: engine
            .roster()
            .elder(&inc.elder_id)
            .map(|e| e.grid_id.clone()),
        priority: Some(inc.priority),
    }
}

/// The delivery side of the engine task.
pub struct Fanout {
    consoles: Vec<Console>,
    ring: VecDeque<RingEntry>,
    ring_cap: usize,
    /// The ring holds every replayable event after this seq (the last one evicted).
    ring_floor: u64,
    responders: Arc<ResponderRegistry>,
    moved_interval_ms: u64,
    /// The last sequence number released (everything up to it is durable and delivered).
    head_seq: u64,
}

/// Counts of what a publish did, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub consoles_lagged: u64,
    pub responders_dropped: u64,
}

impl Fanout {
    pub fn new(
        responders: Arc<ResponderRegistry>,
        ring_cap: usize,
        moved_interval_ms: u64,
        head_seq: u64,
    ) -> Fanout {
        Fanout {
            consoles: Vec::new(),
            ring: VecDeque::with_capacity(ring_cap.min(1 << 16)),
            ring_cap: ring_cap.max(1),
            ring_floor: head_seq,
            responders,
            moved_interval_ms,
            head_seq,
        }
    }

    pub fn head_seq(&self) -> u64 {
        self.head_seq
    }

    pub fn console_count(&self) -> usize {
        self.consoles.len()
    }

    /// Delivers one released event to every console whose filter it passes and to the
    /// responder it concerns, as `delivery` (read when the event was decided) says.
    pub fn publish(&mut self, record: &EventRecord, delivery: &Delivery) -> Published {
        let mut out = Published::default();
        self.head_seq = self.head_seq.max(record.seq);
        let meta = &delivery.meta;
        let moved = match &record.event {
            Event::ResponderMoved {
                responder_id,
                position,
            } => Some((responder_id.clone(), *position)),
            _ => None,
        };
        // Encoded once, and for a move only if some console takes it (moves are most events
        // and are neither kept in the ring nor sent to phones).
        let encode = || -> Frame { Arc::from(wire::encode_event(record)) };
        let mut frame: Option<Frame> = moved.is_none().then(encode);

        let interval = self.moved_interval_ms;
        self.consoles.retain_mut(|c| {
            if !c
                .filter
                .passes(meta.position, meta.grid.as_ref(), meta.priority)
            {
                return true;
            }
            if let Some((r, position)) = &moved {
                // Throttle: a console sees at most one move per responder per interval.
                if let Some(last) = c.last_moved.get(r) {
                    if record.at.ms_since(*last) < interval {
                        return true;
                    }
                }
                c.last_moved.insert(r.clone(), record.at);
                if let Some(buffer) = &c.moves {
                    // Nothing goes onto its queue, so a console whose session is gone is
                    // noticed here, not by a failed send.
                    if c.tx.is_closed() {
                        return false;
                    }
                    buffer.push(r, *position, record.at);
                    return true;
                }
            }
            match c.tx.try_send(ConsoleFrame {
                seq: record.seq,
                text: frame.get_or_insert_with(encode).clone(),
            }) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    c.lagged.store(true, Ordering::SeqCst);
                    out.consoles_lagged += 1;
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });

        // Moves are throttled per console and not replayed: a resumed console gets positions
        // from later moves. Everything else is kept for resume.
        if let (None, Some(frame)) = (&moved, frame) {
            if self.ring.len() == self.ring_cap {
                if let Some(evicted) = self.ring.pop_front() {
                    self.ring_floor = evicted.seq;
                }
            }
            self.ring.push_back(RingEntry {
                seq: record.seq,
                frame,
                meta: meta.clone(),
            });
        }

        // The responder it concerns.
        if let Some(r) = record.event.responder_id() {
            if let Some(msg) = wire::responder_message(&record.event, |_| delivery.job.clone()) {
                if !self.send_to_responder(r, msg) {
                    out.responders_dropped += 1;
                }
            }
        }
        // The elder's kin (a kin who is the responder it concerns has just been told).
        if let Some((news, to)) = &delivery.kin {
            let news = KinNews {
                at: record.at,
                ..news.clone()
            };
            for k in to
                .iter()
                .filter(|k| Some(*k) != record.event.responder_id())
            {
                if !self.send_to_responder(k, ServerMessage::KinUpdate(news.clone())) {
                    out.responders_dropped += 1;
                }
            }
        }
        if let Event::IncidentResolved { incident_id, .. }
        | Event::IncidentCancelled { incident_id, .. } = &record.event
        {
            let status = if matches!(record.event, Event::IncidentResolved { .. }) {
                "resolved"
            } else {
                "cancelled"
            };
            for r in &delivery.closed_to {
                let msg = ServerMessage::IncidentClosed {
                    incident_id: *incident_id,
                    status,
                };
                if !self.send_to_responder(r, msg) {
                    out.responders_dropped += 1;
                }
            }
        }
        out
    }

    /// Sends a reconnected phone (connection `session_no`) its open job again: the
    /// `offer` or `assigned` frames of `records` that concern it, and (a kin's phone) the
    /// `kin_update` frames of its elders' open incidents; each record with its delivery (read
    /// from the engine now). Returns how many frames could not be queued.
    pub fn resend(
        &mut self,
        r: &ResponderId,
        session_no: u64,
        records: &[(EventRecord, Delivery)],
    ) -> u64 {
        if self
            .responders
            .get(r)
            .is_none_or(|o| o.session_no != session_no)
        {
            return 0; // gone again, or a newer connection asked for itself
        }
        let mut dropped = 0;
        for (record, delivery) in records {
            if record.event.responder_id() != Some(r) {
                if let Some((news, _)) = &delivery.kin {
                    let news = KinNews {
                        at: record.at,
                        ..news.clone()
                    };
                    if !self.send_to_responder(r, ServerMessage::KinUpdate(news)) {
                        dropped += 1;
                    }
                }
                continue;
            }
            if let Some(msg) = wire::responder_message(&record.event, |_| delivery.job.clone()) {
                if !self.send_to_responder(r, msg) {
                    dropped += 1;
                }
            }
        }
        dropped
    }

    /// `false` when the phone was connected but could not take the frame (it is dropped from
    /// the registry; the session notices its queue closed and ends, the phone reconnects).
    fn send_to_responder(&self, r: &ResponderId, msg: ServerMessage) -> bool {
        let Some(outbox) = self.responders.get(r).map(|o| o.clone()) else {
            return true;
        };
        match outbox.tx.try_send(Arc::from(msg.encode())) {
            Ok(()) => true,
            Err(_) => {
                self.responders
                    .remove_if(r, |_, o| o.session_no == outbox.session_no);
                false
            }
        }
    }

    /// Registers a console: resumes it from `last_seq` out of the ring if the ring still holds
    /// everything after it, else starts it from `snapshot()` at the current head.
    /// Returns whether it resumed.
    /// `incident_meta` tells the filter what it needs of a snapshot's incidents.
    pub fn subscribe(
        &mut self,
        req: SubscribeReq,
        snapshot: impl FnOnce() -> Value,
        incident_meta: impl Fn(IncidentId) -> Option<Meta>,
    ) -> bool {
        let head = self.head_seq;
        let mut frames: Vec<ConsoleFrame> = Vec::new();
        let mut resumed = false;
        if let Some(s) = req.last_seq {
            let covered = s >= self.ring_floor && s <= head;
            if covered {
                frames.push(ConsoleFrame {
                    seq: s,
                    text: Arc::from(
                        ServerMessage::Resumed {
                            re: req.re.clone(),
                            from_seq: s,
                        }
                        .encode(),
                    ),
                });
                frames.extend(
                    self.ring
                        .iter()
                        .filter(|e| e.seq > s)
                        .filter(|e| {
                            req.filter.passes(
                                e.meta.position,
                                e.meta.grid.as_ref(),
                                e.meta.priority,
                            )
                        })
                        .map(|e| ConsoleFrame {
                            seq: e.seq,
                            text: e.frame.clone(),
                        }),
                );
                // A replay that would not fit the console's queue is a snapshot instead.
                resumed = frames.len() <= req.tx.capacity();
            }
        }
        if !resumed {
            let reason = match (req.after_lag, req.last_seq) {
                (true, _) => "lagged",
                (false, Some(_)) => "resume_unavailable",
                (false, None) => "subscribe",
            };
            let state = filter_snapshot(snapshot(), &req.filter, incident_meta);
            frames = vec![ConsoleFrame {
                seq: head,
                text: Arc::from(
                    ServerMessage::Snapshot {
                        re: req.re.clone(),
                        seq: head,
                        reason,
                        state,
                    }
                    .encode(),
                ),
            }];
        }
        for f in frames {
            if req.tx.try_send(f).is_err() {
                // The console cannot even take its start: treat as lagged; it will retry.
                req.lagged.store(true, Ordering::SeqCst);
                return resumed;
            }
        }
        self.consoles.push(Console {
            tx: req.tx,
            filter: req.filter,
            lagged: req.lagged,
            last_moved: HashMap::new(),
            moves: req.moves,
        });
        resumed
    }
}

/// Drops the incidents of a snapshot that the filter excludes (an incident is recognised by
/// its `incident_id` or `id`; anything the engine does not know is kept).
fn filter_snapshot(
    mut state: Value,
    filter: &Filter,
    incident_meta: impl Fn(IncidentId) -> Option<Meta>,
) -> Value {
    if *filter == Filter::default() {
        return state;
    }
    if let Some(list) = state.get_mut("incidents").and_then(Value::as_array_mut) {
        list.retain(|inc| {
            let id = inc
                .get("incident_id")
                .or_else(|| inc.get("id"))
                .and_then(Value::as_u64);
            match id.and_then(|id| incident_meta(IncidentId(id))) {
                Some(m) => filter.passes(m.position, m.grid.as_ref(), m.priority),
                None => true,
            }
        });
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatch_core::ids::ElderId;

    fn checked_in(seq: u64) -> EventRecord {
        EventRecord {
            seq,
            at: Timestamp(seq as i64),
            event: Event::CheckedIn {
                elder_id: ElderId::from("E1"),
            },
        }
    }

    fn fanout(ring: usize) -> Fanout {
        Fanout::new(Arc::new(ResponderRegistry::default()), ring, 1000, 0)
    }

    fn sub(
        tx: mpsc::Sender<ConsoleFrame>,
        last_seq: Option<u64>,
    ) -> (SubscribeReq, Arc<AtomicBool>) {
        let lagged = Arc::new(AtomicBool::new(false));
        let req = SubscribeReq {
            filter: Filter::default(),
            last_seq,
            re: None,
            tx,
            lagged: lagged.clone(),
            after_lag: false,
            moves: None,
        };
        (req, lagged)
    }

    fn no_meta(_: IncidentId) -> Option<Meta> {
        None
    }

    fn kind(f: &ConsoleFrame) -> String {
        let v: Value = serde_json::from_str(&f.text).unwrap();
        v["type"].as_str().unwrap().to_string()
    }

    #[test]
    fn a_full_console_is_dropped_and_told_never_skipped() {
        let mut f = fanout(100);
        let (slow_tx, mut slow_rx) = mpsc::channel(3);
        let (fast_tx, mut fast_rx) = mpsc::channel(100);
        let (req, slow_lagged) = sub(slow_tx, None);
        f.subscribe(req, || Value::Null, no_meta);
        let (req, fast_lagged) = sub(fast_tx, None);
        f.subscribe(req, || Value::Null, no_meta);
        for seq in 1..=5 {
            f.publish(&checked_in(seq), &Delivery::default());
        }
        // The slow one had room for its snapshot and two events, then it was dropped.
        assert!(slow_lagged.load(Ordering::SeqCst));
        assert!(!fast_lagged.load(Ordering::SeqCst));
        assert_eq!(f.console_count(), 1);
        let mut slow = Vec::new();
        while let Ok(fr) = slow_rx.try_recv() {
            slow.push(fr.seq);
        }
        assert_eq!(slow, vec![0, 1, 2]);
        assert!(
            slow_rx.try_recv().is_err(),
            "queue closed: the session notices"
        );
        let mut fast = Vec::new();
        while let Ok(fr) = fast_rx.try_recv() {
            fast.push(fr.seq);
        }
        assert_eq!(fast, vec![0, 1, 2, 3, 4, 5]);

        // The slow console comes back from its last seq: the ring has the rest.
        let (tx, mut rx) = mpsc::channel(100);
        let (mut req, _) = sub(tx, Some(2));
        req.after_lag = true;
        assert!(f.subscribe(req, || Value::Null, no_meta));
        let got: Vec<(u64, String)> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|fr| (fr.seq, kind(&fr)))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "resumed".into()),
                (3, "checked_in".into()),
                (4, "checked_in".into()),
                (5, "checked_in".into())
            ]
        );
    }

    #[test]
    fn resume_falls_back_to_a_snapshot_when_the_ring_has_moved_on() {
        let mut f = fanout(2);
        for seq in 1..=5 {
            f.publish(&checked_in(seq), &Delivery::default());
        }
        // Ring holds 4 and 5: resuming after 3 works, after 2 does not.
        let (tx, mut rx) = mpsc::channel(100);
        assert!(f.subscribe(sub(tx, Some(3)).0, || Value::Null, no_meta));
        assert_eq!(
            rx.try_recv().map(|fr| kind(&fr)).ok().as_deref(),
            Some("resumed")
        );
        let (tx, mut rx) = mpsc::channel(100);
        assert!(!f.subscribe(
            sub(tx, Some(2)).0,
            || serde_json::json!({"incidents": []}),
            no_meta
        ));
        let fr = rx.try_recv().unwrap();
        assert_eq!((fr.seq, kind(&fr)), (5, "snapshot".to_string()));
        // A replay bigger than the console's queue is a snapshot too.
        let (tx, mut rx) = mpsc::channel(2);
        assert!(!f.subscribe(sub(tx, Some(3)).0, || Value::Null, no_meta));
        assert_eq!(kind(&rx.try_recv().unwrap()), "snapshot");
    }

    #[test]
    fn moves_are_throttled_per_console_and_responder() {
        let mut f = fanout(10);
        let (tx, mut rx) = mpsc::channel(100);
        f.subscribe(sub(tx, None).0, || Value::Null, no_meta);
        let moved = |seq: u64, at: i64, r: &str| EventRecord {
            seq,
            at: Timestamp(at),
            event: Event::ResponderMoved {
                responder_id: ResponderId::from(r),
                position: LatLon {
                    lat: -30.0,
                    lon: -51.2,
                },
            },
        };
        f.publish(&moved(1, 0, "V1"), &Delivery::default());
        f.publish(&moved(2, 500, "V1"), &Delivery::default()); // within 1 s of the last: held back
        f.publish(&moved(3, 600, "V2"), &Delivery::default()); // another responder: sent
        f.publish(&moved(4, 1000, "V1"), &Delivery::default()); // 1 s later: sent
        let seqs: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|fr| fr.seq)
            .collect();
        assert_eq!(seqs, vec![0, 1, 3, 4]);
    }

    #[test]
    fn a_batching_console_gets_its_moves_in_its_buffer_and_everything_else_on_its_queue() {
        let mut f = fanout(10);
        let (tx, mut rx) = mpsc::channel(100);
        let (mut req, _) = sub(tx, None);
        let buffer = Arc::new(MoveBuffer::default());
        req.moves = Some(buffer.clone());
        f.subscribe(req, || Value::Null, no_meta);
        let (each_tx, mut each_rx) = mpsc::channel(100);
        f.subscribe(sub(each_tx, None).0, || Value::Null, no_meta);
        let moved = |seq: u64, at: i64, r: &str, lat: f64| EventRecord {
            seq,
            at: Timestamp(at),
            event: Event::ResponderMoved {
                responder_id: ResponderId::from(r),
                position: LatLon { lat, lon: -51.2 },
            },
        };
        f.publish(&moved(1, 0, "V1", -30.0), &Delivery::default());
        f.publish(&checked_in(2), &Delivery::default());
        f.publish(&moved(3, 500, "V1", -30.5), &Delivery::default()); // throttled, as for every console
        f.publish(&moved(4, 600, "V2", -30.1), &Delivery::default());
        // The batching console's queue has its snapshot and the one numbered non-move event.
        let got: Vec<(u64, String)> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|fr| (fr.seq, kind(&fr)))
            .collect();
        assert_eq!(got, vec![(0, "snapshot".into()), (2, "checked_in".into())]);
        // Its moves wait in the buffer, one per responder.
        let batch: Value = serde_json::from_str(&buffer.take().unwrap().encode()).unwrap();
        assert_eq!(batch["type"], "responders_moved");
        let ids: Vec<(&str, f64)> = batch["moves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["responder_id"].as_str().unwrap(),
                    m["position"]["lat"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(ids, vec![("V1", -30.0), ("V2", -30.1)]);
        // The other console still gets one numbered frame per move.
        let each: Vec<(u64, String)> = std::iter::from_fn(|| each_rx.try_recv().ok())
            .map(|fr| (fr.seq, kind(&fr)))
            .collect();
        assert_eq!(
            each,
            vec![
                (0, "snapshot".into()),
                (1, "responder_moved".into()),
                (2, "checked_in".into()),
                (4, "responder_moved".into())
            ]
        );
        // Moves are not kept for resume; the non-move event is.
        let (tx, mut rx) = mpsc::channel(100);
        assert!(f.subscribe(sub(tx, Some(0)).0, || Value::Null, no_meta));
        let replay: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|fr| fr.seq)
            .collect();
        assert_eq!(replay, vec![0, 2]);
    }
}
