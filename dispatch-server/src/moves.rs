//! Responders' moves for consoles that subscribe with `"moves": "batched"`: the engine task's
//! fanout puts each move that passes the console's filter and throttle here (newest wins per
//! responder), and the console's session takes them every [`BATCH_INTERVAL`] as one
//! `responders_moved` frame.
//!
//! Why: with thousands of phones moving, one frame per move was thousands of WebSocket frames a
//! second per console (a write each on the server, a message task each in the browser). A
//! batch costs one frame, and the encoding happens on the session's task, not the engine's.
//! The buffer is bounded by the number of responders (one entry each), so a console that stops
//! reading cannot make it grow; its session ends on the write timeout.

use crate::wire::{MovedEntry, ServerMessage};
use dispatch_core::geo::LatLon;
use dispatch_core::ids::ResponderId;
use dispatch_core::time::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How often a session sends its console the moves gathered since the last batch. Short, so a
/// move is on the console's map well within its lag budget (at 100 ms the batch's wait was
/// about a quarter of the console's lag p99: benches/README.md, "Operator console"); at most
/// twenty frames a second.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(50);

/// The moves gathered for one console's subscription.
#[derive(Debug, Default)]
pub struct MoveBuffer {
    pending: Mutex<HashMap<ResponderId, (LatLon, Timestamp)>>,
}

impl MoveBuffer {
    /// A move, replacing any not yet sent for the same responder.
    pub fn push(&self, responder: &ResponderId, position: LatLon, at: Timestamp) {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(responder) {
            Some(slot) => *slot = (position, at),
            None => {
                map.insert(responder.clone(), (position, at));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes everything gathered as one `responders_moved` message (oldest move first, ties by
    /// responder id), or `None` when nothing moved.
    pub fn take(&self) -> Option<ServerMessage> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if taken.is_empty() {
            return None;
        }
        let mut moves: Vec<MovedEntry> = taken
            .into_iter()
            .map(|(responder_id, (position, at))| MovedEntry {
                responder_id,
                position,
                at,
            })
            .collect();
        moves.sort_by(|a, b| {
            a.at.cmp(&b.at)
                .then_with(|| a.responder_id.cmp(&b.responder_id))
        });
        let at = moves.last().map(|m| m.at).unwrap_or(Timestamp(0));
        Some(ServerMessage::RespondersMoved { at, moves })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn p(lat: f64) -> LatLon {
        LatLon { lat, lon: -51.2 }
    }

    #[test]
    fn newest_wins_per_responder_and_the_batch_is_oldest_first() {
        let b = MoveBuffer::default();
        assert!(b.take().is_none(), "nothing moved: no frame");
        b.push(&ResponderId::from("V2"), p(-30.0), Timestamp(100));
        b.push(&ResponderId::from("V1"), p(-30.1), Timestamp(150));
        b.push(&ResponderId::from("V2"), p(-30.2), Timestamp(200)); // replaces V2's first
        assert_eq!(b.len(), 2);
        let v: Value = serde_json::from_str(&b.take().unwrap().encode()).unwrap();
        assert_eq!(v["type"], "responders_moved");
        assert_eq!(v["at"], 200);
        let moves = v["moves"].as_array().unwrap();
        let got: Vec<(&str, f64, i64)> = moves
            .iter()
            .map(|m| {
                (
                    m["responder_id"].as_str().unwrap(),
                    m["position"]["lat"].as_f64().unwrap(),
                    m["at"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, vec![("V1", -30.1, 150), ("V2", -30.2, 200)]);
        assert!(b.is_empty(), "taking empties the buffer");
        assert!(b.take().is_none());
    }
}
