//! Transcript tests: scenarios as data. Each file in `tests/engine/transcripts/` is a session
//! with the engine: lines starting with `> ` are the input (a roster line, a command, or a wait),
//! and every other line is what the engine answered, as the runner renders it. The test replays
//! the `> ` lines on a fresh engine in virtual time and compares the whole rendering with the
//! file, so a change in what the engine decides or says shows as a diff of the transcript.
//!
//! To write a new scenario, write only its `> ` lines and run
//! `UPDATE_TRANSCRIPTS=1 cargo test -p dispatch-core --test engine transcript` to fill in the
//! answers; then read them: blessing is a review, not a formality. The same flag re-blesses
//! every transcript after an intended change (for example a reworded reason).
//!
//! The world is the straight-line one (`world::straight`: 1.3 × the crow-flies distance, foot
//! 4.5 km/h, car 10 m/s), so a transcript pins the rules, not a city's roads; the scenarios in
//! `scenarios.rs` check the same rules on the real Porto Alegre roads with assertions that hold
//! on any map.
//!
//! Input lines (positions in metres east and north of the world's centre):
//!
//! | line | meaning |
//! | --- | --- |
//! | `config {json}` | fields of `PolicyConfig` over the defaults (before the roster is used) |
//! | `volunteer V1 X Y [SKILL,…]` / `ambulance A1 X Y` / `service_staff S1 X Y [SKILL,…]` | a responder at home |
//! | `grid_worker W1 foot\|bike\|car X Y G1` | a grid worker of grid G1 |
//! | `elder E1 X Y G1 LEVEL [P1,P2]` | an elder, care level, paired responders |
//! | `on_duty V1 V2 …` / `off_duty V1 …` | availability |
//! | `fall A1 E1` / `help A1 E1 SERVICE` / `check_in_missed A1 E1` | alerts from device GW1 |
//! | `accept V1 O3` / `decline V1 O3` | answers to offers |
//! | `arrived V1 I1` / `complete V1 I1` / `request_ambulance V1 I1` | on the job |
//! | `move V1 X Y` | a position update |
//! | `check_in E1` / `cancel_alert A1` | from device GW1 |
//! | `resolve I1 NOTE…` / `cancel I1 REASON…` / `assign I1 V1` | operator OP1 |
//! | `wait 25s` (or `500ms`) | advance the virtual clock, firing every timer due |
//! | `{json}` | any other `Command`, as the journal stores it |
//!
//! Output lines: `= reply {fields}` or `! error` for a command, then one line per event,
//! `  +S.mmm type {fields}`: the time since the session started, the event's type, and its other
//! JSON fields with routes shortened to their point count and coordinates to 6 decimals. A line starting with `#` is a
//! comment, kept as it is.

use crate::world::*;
use dispatch_core::command::{Alert, Command};
use dispatch_core::event::EventRecord;
use dispatch_core::geo::LatLon;
use dispatch_core::ids::{AlertId, ElderId, IncidentId, OfferId, OperatorId};
use dispatch_core::model::{AlertKind, Availability, ResponderKind, ServiceKind, TravelMode};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::roster::{ElderRecord, ResponderRecord};
use dispatch_core::time::Timestamp;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engine/transcripts")
}

/// One session being built: the roster lines collect until the first command starts the engine.
struct Session {
    config: PolicyConfig,
    responders: Vec<ResponderRecord>,
    elders: Vec<ElderRecord>,
    sim: Option<Sim>,
    start: Timestamp,
    out: String,
}

fn num(s: &str, line: &str) -> Result<f64, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not a number in `{line}`"))
}

fn id_num(s: &str, prefix: char, line: &str) -> Result<u64, String> {
    s.strip_prefix(prefix)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("`{s}` is not an id like {prefix}3 in `{line}`"))
}

fn enum_from<T: serde::de::DeserializeOwned>(s: &str, line: &str) -> Result<T, String> {
    serde_json::from_value(Value::String(s.to_string()))
        .map_err(|e| format!("`{s}` in `{line}`: {e}"))
}

/// Rounds coordinates and shortens routes so a transcript line stays readable.
fn tidy(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if k == "route" {
                    if let Value::Array(points) = x {
                        *x = Value::String(format!("{} points", points.len()));
                        continue;
                    }
                }
                tidy(x);
            }
        }
        Value::Array(xs) => xs.iter_mut().for_each(tidy),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            let r = (f * 1e6).round() / 1e6;
            if let Some(n) = serde_json::Number::from_f64(r) {
                *v = Value::Number(n);
            }
        }
        _ => {}
    }
}

/// `kind {fields}`: the serde tag (`type` of an event, `reply` of a reply) first, then the rest.
fn render<T: serde::Serialize>(x: &T) -> String {
    let mut v = serde_json::to_value(x).expect("engine types serialize");
    tidy(&mut v);
    let tag = v.as_object_mut().and_then(|m| {
        ["type", "reply"]
            .iter()
            .find_map(|k| m.remove(*k))
            .and_then(|t| t.as_str().map(String::from))
    });
    match tag {
        Some(t) if v.as_object().is_some_and(|m| m.is_empty()) => t,
        Some(t) => format!("{t} {v}"),
        None => v.to_string(),
    }
}

impl Session {
    fn new() -> Session {
        Session {
            config: PolicyConfig::default(),
            responders: Vec::new(),
            elders: Vec::new(),
            sim: None,
            start: Timestamp(0),
            out: String::new(),
        }
    }

    fn sim(&mut self) -> &mut Sim {
        if self.sim.is_none() {
            let roster = roster(
                std::mem::take(&mut self.responders),
                std::mem::take(&mut self.elders),
            );
            let sim = Sim::new(straight(), roster, self.config.clone());
            self.start = sim.now;
            self.sim = Some(sim);
        }
        self.sim.as_mut().expect("just built")
    }

    fn setup_allowed(&self, line: &str) -> Result<(), String> {
        match self.sim {
            None => Ok(()),
            Some(_) => Err(format!(
                "`{line}`: roster and config lines come before the first command"
            )),
        }
    }

    fn write_events(&mut self, events: Vec<EventRecord>) {
        for e in events {
            let since = e.at.0.saturating_sub(self.start.0);
            let _ = writeln!(
                self.out,
                "  +{}.{:03} {}",
                since / 1000,
                since % 1000,
                render(&e.event)
            );
        }
    }

    fn run(&mut self, c: Command) {
        let sim = self.sim();
        let before = sim.events.len();
        let reply = sim.cmd(c);
        let events = sim.events[before..].to_vec();
        match reply {
            Ok(r) => {
                let _ = writeln!(self.out, "= {}", render(&r));
            }
            Err(e) => {
                let _ = writeln!(self.out, "! {e}");
            }
        }
        self.write_events(events);
    }

    fn alert(&mut self, id: &str, elder: &str, kind: AlertKind, service: Option<ServiceKind>) {
        let now = self.sim().now;
        let a = Alert {
            detected_at: now,
            ..alert(id, elder, kind, service)
        };
        self.run(Command::Alert(a));
    }

    fn line(&mut self, line: &str) -> Result<(), String> {
        let line = line.trim();
        if line.starts_with('{') {
            let c: Command = serde_json::from_str(line)
                .map_err(|e| format!("`{line}` is not a command: {e}"))?;
            self.run(c);
            return Ok(());
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let arg = |i: usize| -> Result<&str, String> {
            words
                .get(i)
                .copied()
                .ok_or_else(|| format!("`{line}` needs more words"))
        };
        let pos = |i: usize| -> Result<LatLon, String> {
            Ok(at(num(arg(i)?, line)?, num(arg(i + 1)?, line)?))
        };
        let incident = |i: usize| -> Result<IncidentId, String> {
            Ok(IncidentId(id_num(arg(i)?, 'I', line)?))
        };
        match words.first().copied().unwrap_or_default() {
            "config" => {
                self.setup_allowed(line)?;
                let patch: Value = serde_json::from_str(line["config".len()..].trim())
                    .map_err(|e| format!("`{line}`: {e}"))?;
                let mut base = serde_json::to_value(&self.config).expect("config serializes");
                let (Value::Object(b), Value::Object(p)) = (&mut base, patch) else {
                    return Err(format!("`{line}`: config takes a JSON object"));
                };
                for (k, v) in p {
                    if !b.contains_key(&k) {
                        return Err(format!("`{line}`: PolicyConfig has no field `{k}`"));
                    }
                    b.insert(k, v);
                }
                self.config = serde_json::from_value(base).map_err(|e| format!("`{line}`: {e}"))?;
            }
            kind @ ("volunteer" | "ambulance" | "service_staff") => {
                self.setup_allowed(line)?;
                let (k, mode) = match kind {
                    "volunteer" => (ResponderKind::Volunteer, TravelMode::Foot),
                    "ambulance" => (ResponderKind::Ambulance, TravelMode::Car),
                    _ => (ResponderKind::ServiceStaff, TravelMode::Foot),
                };
                let mut r = responder(arg(1)?, k, mode, pos(2)?);
                if let Some(skills) = words.get(4) {
                    r.skills = skills.split(',').map(|s| s.into()).collect();
                }
                self.responders.push(r);
            }
            "grid_worker" => {
                self.setup_allowed(line)?;
                let mode: TravelMode = enum_from(arg(2)?, line)?;
                self.responders
                    .push(grid_worker(arg(1)?, mode, pos(3)?, arg(5)?));
            }
            "elder" => {
                self.setup_allowed(line)?;
                let level: u8 = arg(5)?
                    .parse()
                    .map_err(|_| format!("`{line}`: care level 1-5"))?;
                let paired: Vec<&str> = words
                    .get(6)
                    .map(|p| p.split(',').collect())
                    .unwrap_or_default();
                self.elders
                    .push(elder(arg(1)?, pos(2)?, arg(4)?, level, &paired));
            }
            verb @ ("on_duty" | "off_duty") => {
                let status = if verb == "on_duty" {
                    Availability::Available
                } else {
                    Availability::OffDuty
                };
                for id in &words[1..] {
                    self.run(Command::SetAvailability {
                        responder_id: rid(id),
                        status,
                    });
                }
            }
            "fall" => self.alert(arg(1)?, arg(2)?, AlertKind::Fall, None),
            "check_in_missed" => self.alert(arg(1)?, arg(2)?, AlertKind::CheckInMissed, None),
            "help" => {
                let service: ServiceKind = enum_from(arg(3)?, line)?;
                self.alert(arg(1)?, arg(2)?, AlertKind::Help, Some(service));
            }
            verb @ ("accept" | "decline") => {
                let responder_id = rid(arg(1)?);
                let offer_id = OfferId(id_num(arg(2)?, 'O', line)?);
                self.run(if verb == "accept" {
                    Command::Accept {
                        responder_id,
                        offer_id,
                    }
                } else {
                    Command::Decline {
                        responder_id,
                        offer_id,
                    }
                });
            }
            verb @ ("arrived" | "complete" | "request_ambulance") => {
                let responder_id = rid(arg(1)?);
                let incident_id = incident(2)?;
                self.run(match verb {
                    "arrived" => Command::Arrived {
                        responder_id,
                        incident_id,
                    },
                    "complete" => Command::Complete {
                        responder_id,
                        incident_id,
                    },
                    _ => Command::RequestAmbulance {
                        responder_id,
                        incident_id,
                    },
                });
            }
            "move" => self.run(Command::Location {
                responder_id: rid(arg(1)?),
                position: pos(2)?,
            }),
            "check_in" => self.run(Command::CheckIn {
                elder_id: ElderId::from(arg(1)?),
                device_id: gw(),
            }),
            "cancel_alert" => self.run(Command::CancelAlert {
                alert_id: AlertId::from(arg(1)?),
                device_id: gw(),
            }),
            verb @ ("resolve" | "cancel") => {
                let incident_id = incident(1)?;
                let text = words[2..].join(" ");
                self.run(if verb == "resolve" {
                    Command::Resolve {
                        operator_id: op(),
                        incident_id,
                        note: text,
                    }
                } else {
                    Command::Cancel {
                        operator_id: op(),
                        incident_id,
                        reason: text,
                    }
                });
            }
            "assign" => self.run(Command::Assign {
                operator_id: OperatorId::from("OP1"),
                incident_id: incident(1)?,
                responder_id: rid(arg(2)?),
            }),
            "wait" => {
                let w = arg(1)?;
                let ms = if let Some(ms) = w.strip_suffix("ms") {
                    num(ms, line)?
                } else if let Some(s) = w.strip_suffix('s') {
                    num(s, line)? * 1000.0
                } else {
                    return Err(format!("`{line}`: a wait is like 25s or 500ms"));
                };
                if ms.is_nan() || ms < 0.0 {
                    return Err(format!("`{line}`: a wait cannot go back in time"));
                }
                let events = self.sim().advance(ms as u64);
                self.write_events(events);
            }
            other => return Err(format!("`{line}`: unknown input `{other}`")),
        }
        Ok(())
    }
}

/// Replays the `> ` lines of `text` and renders the whole session.
fn replay(text: &str) -> Result<String, String> {
    let mut s = Session::new();
    for line in text.lines() {
        if let Some(input) = line.strip_prefix("> ") {
            s.out.push_str(line);
            s.out.push('\n');
            s.line(input)?;
        } else if line.starts_with('#') || line.trim().is_empty() {
            s.out.push_str(line);
            s.out.push('\n');
        }
    }
    Ok(s.out)
}

/// Checks one transcript, or writes it anew under `UPDATE_TRANSCRIPTS=1`.
pub fn check(name: &str) {
    let path = dir().join(format!("{name}.t"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let got = replay(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if std::env::var_os("UPDATE_TRANSCRIPTS").is_some() {
        std::fs::write(&path, &got).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    if got != text {
        let mut diff = String::new();
        let (a, b): (Vec<_>, Vec<_>) = (text.lines().collect(), got.lines().collect());
        for i in 0..a.len().max(b.len()) {
            let (x, y) = (a.get(i).copied(), b.get(i).copied());
            if x != y {
                let _ = writeln!(
                    diff,
                    "line {}:\n  expected: {}\n  got:      {}",
                    i + 1,
                    x.unwrap_or("(end)"),
                    y.unwrap_or("(end)")
                );
            }
        }
        panic!(
            "{} differs from what the engine answers now (re-bless with UPDATE_TRANSCRIPTS=1 \
             after reading the difference):\n{diff}",
            path.display()
        );
    }
}

macro_rules! transcripts {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*

        /// Every file in the folder is listed above, so none is silently skipped.
        #[test]
        fn every_transcript_file_is_run() {
            let listed = [$(stringify!($name)),*];
            let mut files: Vec<String> = std::fs::read_dir(dir())
                .expect("transcripts folder")
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".t").map(String::from))
                .collect();
            files.sort();
            for f in &files {
                assert!(listed.contains(&f.as_str()), "{f}.t is not listed in transcript.rs");
            }
        }
    };
}

transcripts!(
    a_fall_during_a_meal_request_opens_its_own_emergency,
    a_late_check_in_calls_off_the_welfare_visit_but_not_a_fall,
    a_missing_ambulance_is_said_once_and_retried,
    ambulance_after_sixty_seconds_without_acceptance,
    ambulance_when_nobody_is_on_scene_in_three_minutes,
    complete_credits_the_time_bank_then_the_volunteer_rests,
    decline_then_expiry_then_next_wave,
    familiar_volunteer_wins_within_the_margin,
    high_care_level_and_requests_send_an_ambulance_at_once,
    missed_check_in_goes_to_the_own_grid_worker_first,
    stranger_wins_outside_the_margin,
    two_falls_competing_for_one_volunteer_are_assigned_jointly,
);

#[test]
fn a_malformed_input_line_is_named() {
    let err = replay("> volunteer V1 12 north").unwrap_err();
    assert!(err.contains("`north` is not a number"), "{err}");
    let err = replay("> fall a1 E1\n> volunteer V1 0 0").unwrap_err();
    assert!(err.contains("come before the first command"), "{err}");
    let err = replay("> wait -5s").unwrap_err();
    assert!(err.contains("cannot go back in time"), "{err}");
    let err = replay("> config {\"wave_size\": [1]}").unwrap_err();
    assert!(err.contains("no field `wave_size`"), "{err}");
}
