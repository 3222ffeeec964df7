//! Roads that change: operators (or a feed) lay closures and slowdowns for a time window; the
//! engine resolves each to the road segments it covers, lays those that hold over its travel
//! times (`road::closure`: exact at once, nothing re-prepared), and lifts each when its
//! window ends (a [`Timer::RoadClosure`]) or an operator reopens it.
//!
//! The `Closures` room keeps the laid closures and the segments each covers (derived from the
//! map, never saved: a restart resolves them again on the map it runs on).

use super::*;
use crate::closures::{ClosureView, LaidClosure, RoadClosure, MAX_CLOSURES};
use crate::road::{Profile, ProfileOverlay, RoadOverlay};

/// Laid closures by id, with the segments each covers on the car and the foot graph.
#[derive(Debug, Clone, Default)]
pub(super) struct Closures {
    laid: BTreeMap<String, (LaidClosure, [Vec<u32>; 2])>,
    /// The overlay of those that hold, as last laid (shared with live coverage).
    overlay: Arc<RoadOverlay>,
}

fn index(p: Profile) -> usize {
    match p {
        Profile::Car => 0,
        Profile::Foot => 1,
    }
}

fn profile_of(m: TravelMode) -> Profile {
    match m {
        TravelMode::Car => Profile::Car,
        TravelMode::Foot => Profile::Foot,
    }
}

/// The segments `c` covers, per graph (only on the graphs of its modes).
fn resolve(net: &RoadNetwork, c: &RoadClosure) -> [Vec<u32>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    for p in Profile::ALL {
        if c.modes.iter().any(|&m| profile_of(m) == p) {
            out[index(p)] = net.profile(p).segments_in(&c.area, net.projection());
        }
    }
    out
}

impl Closures {
    pub(super) fn from_saved(saved: Vec<LaidClosure>, net: Option<&RoadNetwork>) -> Closures {
        let laid = saved
            .into_iter()
            .map(|l| {
                let segs = net.map(|n| resolve(n, &l.closure)).unwrap_or_default();
                (l.closure.closure_id.clone(), (l, segs))
            })
            .collect();
        Closures {
            laid,
            overlay: Arc::default(),
        }
    }

    pub(super) fn to_saved(&self) -> Vec<LaidClosure> {
        self.laid.values().map(|(l, _)| l.clone()).collect()
    }

    /// The overlay of the closures that hold.
    fn overlay(&self) -> RoadOverlay {
        let of = |p: Profile| {
            ProfileOverlay::new(self.laid.values().filter(|(l, _)| l.holding).flat_map(
                |(l, segs)| {
                    let e = l.closure.overlay_effect();
                    segs[index(p)].iter().map(move |&s| (s, e))
                },
            ))
        };
        RoadOverlay {
            car: of(Profile::Car),
            foot: of(Profile::Foot),
        }
    }
}

impl Engine {
    /// Lays the closures that hold over the travel times (after any change to them).
    pub(super) fn lay_closures(&mut self) {
        self.closures.overlay = Arc::new(self.closures.overlay());
        self.roads.set_overlay(self.closures.overlay.clone());
        self.forget_kept();
    }

    /// The road closures laid over the travel times now (live coverage honours them too).
    /// The same `Arc` until the closures that hold change.
    pub fn road_overlay(&self) -> Arc<RoadOverlay> {
        self.closures.overlay.clone()
    }

    /// `close_road`: lays (or replaces) a closure. Refused, changing nothing, when it is
    /// malformed, ends in the past, covers no road of its modes, or one too many.
    pub(super) fn close_road(
        &mut self,
        now: Timestamp,
        by: Actor,
        closure: RoadClosure,
    ) -> Result<Reply, CommandError> {
        self.check_actor(&by)?;
        closure.check(now).map_err(CommandError::Invalid)?;
        let Some(net) = self.roads.road_network() else {
            return Err(CommandError::Invalid(
                "road closures need a road network".into(),
            ));
        };
        let replaces = self.closures.laid.contains_key(&closure.closure_id);
        if !replaces && self.closures.laid.len() >= MAX_CLOSURES {
            return Err(CommandError::Invalid(format!(
                "{MAX_CLOSURES} closures are laid already: reopen one first"
            )));
        }
        let segs = resolve(&net, &closure);
        if segs.iter().all(Vec::is_empty) {
            let modes: Vec<&str> = closure.modes.iter().map(|&m| mode_name(m)).collect();
            return Err(CommandError::Invalid(format!(
                "closure {} covers no road of this map travelled {}: draw a line along a road, \
                 name its OSM ways, or give an area that holds roads",
                closure.closure_id,
                modes.join(" or ")
            )));
        }
        let holding = closure.is_active(now);
        let id = closure.closure_id.clone();
        let next = if holding {
            closure.ends_at
        } else {
            closure.starts_at.unwrap_or(now)
        };
        let (car_segments, foot_segments) = (segs[0].len() as u32, segs[1].len() as u32);
        let laid = LaidClosure {
            closure: closure.clone(),
            by: by.clone(),
            laid_at: now,
            holding,
        };
        self.closures.laid.insert(id.clone(), (laid, segs));
        self.set_timer(next, Timer::RoadClosure(id));
        self.lay_closures();
        self.emit(
            now,
            Event::RoadClosed {
                closure,
                by,
                car_segments,
                foot_segments,
            },
        );
        Ok(Reply::Done)
    }

    /// `reopen_road`: lifts a closure before its window ends.
    pub(super) fn reopen_road(
        &mut self,
        now: Timestamp,
        by: Actor,
        closure_id: String,
    ) -> Result<Reply, CommandError> {
        self.check_actor(&by)?;
        if !self.closures.laid.contains_key(&closure_id) {
            return Err(CommandError::UnknownClosure(closure_id));
        }
        self.lift(now, closure_id, by, false);
        Ok(Reply::Done)
    }

    fn lift(&mut self, now: Timestamp, closure_id: String, by: Actor, expired: bool) {
        self.closures.laid.remove(&closure_id);
        self.stop_timer(Timer::RoadClosure(closure_id.clone()));
        self.lay_closures();
        self.emit(
            now,
            Event::RoadReopened {
                closure_id,
                by,
                expired,
            },
        );
    }

    /// A closure's window opens (it starts to hold) or ends (it is lifted).
    pub(super) fn road_closure_due(&mut self, now: Timestamp, closure_id: String) {
        let Some((laid, _)) = self.closures.laid.get_mut(&closure_id) else {
            return;
        };
        if now >= laid.closure.ends_at {
            self.lift(now, closure_id, Actor::Engine, true);
        } else {
            laid.holding = true;
            let ends = laid.closure.ends_at;
            self.set_timer(ends, Timer::RoadClosure(closure_id));
            self.lay_closures();
        }
    }

    /// Every laid closure (holding or waiting for its window), with what it covers.
    pub fn road_closures(&self) -> Vec<ClosureView> {
        let net = self.roads.road_network();
        self.closures
            .laid
            .values()
            .map(|(l, segs)| {
                let mut lines: Vec<[LatLon; 2]> = Vec::new();
                if let Some(net) = &net {
                    for p in Profile::ALL {
                        let g = net.profile(p);
                        lines.extend(segs[index(p)].iter().filter_map(|&s| g.segment_ends(s)));
                    }
                }
                // A road both graphs keep is drawn once.
                lines.sort_by(|a, b| {
                    let key = |l: &[LatLon; 2]| [l[0].lat, l[0].lon, l[1].lat, l[1].lon];
                    key(a)
                        .partial_cmp(&key(b))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                lines.dedup();
                ClosureView {
                    laid: l.clone(),
                    car_segments: segs[0].len(),
                    foot_segments: segs[1].len(),
                    lines,
                }
            })
            .collect()
    }
}
