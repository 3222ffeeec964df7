//! The engine alone at a given alert rate, on the real map and a generated roster: the CPU
//! an alert costs the one writer, offers, accepts, declines and timers included. This is
//! the in-process half of the DESIGN §7 "1,000 alerts/s with 10,000 responders" figure: if
//! the engine needs more than 1 ms of CPU per alert, no server around it can keep up.
//!
//! ```sh
//! simulator roster --map ../shared/data/porto_alegre.osm.pbf \
//!   --population ../shared/data/porto_alegre_hexgrid.csv --seed 1 --elders 10000 \
//!   --volunteers 10000 --gateways 50 --roster-out big-roster.json --tokens-out big-tokens.json
//! cargo run --release -p dispatch-benches --example alert_rate -- big-roster.json 2000 1000 4
//! ```
//!
//! Arguments: roster, alerts, alerts per second (virtual time), commands per engine batch
//! (1 = every alert dispatched on its own, as a lightly loaded server does; more = what a
//! loaded server's engine task takes from its queue at once), and `cold` to leave the road
//! graphs' vertex search spaces to be searched when first asked (by default they are all
//! searched before the run, as the server's `road-warm` thread has them a moment after
//! start). Every responder reports its
//! home position and goes on duty; three in five offers are accepted 5 s later, the others
//! declined after 8 s; assigned responders arrive and complete. Prints the CPU per alert,
//! and what a journal snapshot of the state after the run costs: the copy the engine's
//! thread makes (`save_state`) and the JSON encoding the journal's snapshot thread does.

use dispatch_core::command::{Alert, Command};
use dispatch_core::engine::Engine;
use dispatch_core::event::Event;
use dispatch_core::ids::{AlertId, DeviceId};
use dispatch_core::matching::RoadTimes;
use dispatch_core::model::{AlertKind, Availability};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::road::{RoadConfig, RoadNetwork};
use dispatch_core::roster::RosterFile;
use dispatch_core::time::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let roster_path = args.first().ok_or_else(|| {
        anyhow::anyhow!("usage: alert_rate ROSTER [alerts] [per_s] [batch] [cold]")
    })?;
    let num = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (alerts, per_s, batch) = (num(1, 2000) as usize, num(2, 1000), num(3, 1) as usize);

    let roster: RosterFile = serde_json::from_str(&std::fs::read_to_string(roster_path)?)?;
    let config = RoadConfig::default();
    let file = std::fs::File::open(dispatch_core::testdata::porto_alegre_pbf())?;
    let net = RoadNetwork::from_pbf(std::io::BufReader::new(file), &config)?;
    // As the server has them a moment after start (its `road-warm` thread); `cold` leaves
    // every space to be searched when first asked.
    if args.get(4).is_some_and(|a| a == "cold") {
        println!("vertex spaces: searched when first asked (cold)");
    } else {
        let t = std::time::Instant::now();
        let kept = net.warm_vertex_spaces();
        println!(
            "vertex spaces: searched up front in {} ms (kept: {kept})",
            t.elapsed().as_millis()
        );
    }
    let times = Arc::new(RoadTimes::new(Arc::new(net), config.foot_kmh));
    let policy = PolicyConfig {
        dispatch_batched: batch > 1,
        ..PolicyConfig::default()
    };
    let mut e = Engine::with_travel_times(times, roster.clone(), policy)?;
    let mut now = Timestamp(1_000);
    for r in &roster.responders {
        e.handle_command(
            now,
            Command::Location {
                responder_id: r.id.clone(),
                position: r.home,
            },
        )?;
        e.handle_command(
            now,
            Command::SetAvailability {
                responder_id: r.id.clone(),
                status: Availability::Available,
            },
        )?;
    }
    while e.poll_event().is_some() {}
    let device = roster
        .devices
        .first()
        .map(|d| d.id.clone())
        .unwrap_or_else(|| DeviceId::from("gw"));

    // Commands due at a virtual time: alerts, and the answers of the responders.
    let mut due: BTreeMap<(i64, u64), Command> = BTreeMap::new();
    let mut n = 0u64;
    for i in 0..alerts {
        let at = 2_000 + (i as u64 * 1000 / per_s.max(1)) as i64;
        let elder = &roster.elders[i % roster.elders.len()];
        due.insert(
            (at, n),
            Command::Alert(Alert {
                alert_id: AlertId::from(format!("a{i}")),
                kind: AlertKind::Fall,
                service: None,
                elder_id: elder.id.clone(),
                position: None,
                detected_at: Timestamp(at),
                ambulance_requested: false,
                scheduled_for: None,
                device_id: device.clone(),
            }),
        );
        n += 1;
    }
    // A single-server queue in virtual time: the engine is busy for the CPU time each call
    // really took, and everything that arrived meanwhile waits (up to `batch` commands are
    // taken at once, as the engine task drains its queue). Alert → first offer is measured
    // from the alert's arrival to the end of the call that sent its first offer.
    let (mut cpu, mut calls, mut offers, mut assigned) = (Duration::ZERO, 0u64, 0u64, 0u64);
    let mut free_at_us: f64 = 0.0;
    let mut worst = Duration::ZERO;
    let end = 2_000 + (alerts as u64 * 1000 / per_s.max(1)) as i64 + 120_000;
    let mut arrived_us: BTreeMap<u64, f64> = BTreeMap::new(); // incident -> alert arrival
    let mut latency_ms: Vec<f64> = Vec::new();
    loop {
        let next_cmd = due.keys().next().map(|k| k.0);
        let next_timer = e.poll_timeout().map(|t| t.0);
        let Some(t) = [next_cmd, next_timer].into_iter().flatten().min() else {
            break;
        };
        let start_us = free_at_us.max(t as f64 * 1e3);
        now = Timestamp((start_us / 1e3) as i64).max(now);
        let started = Instant::now();
        let mut taken = Vec::new();
        // Commands first (a timer due now fires right after, in the same turn).
        for _ in 0..batch {
            let Some((&k, _)) = due.iter().next() else {
                break;
            };
            if k.0 > now.0 {
                break;
            }
            let cmd = due.remove(&k).expect("peeked");
            let is_alert = matches!(cmd, Command::Alert(_));
            if let Ok(dispatch_core::command::Reply::AlertAccepted { incident_id, .. }) =
                e.handle_command(now, cmd)
            {
                if is_alert {
                    arrived_us.insert(incident_id.0, k.0 as f64 * 1e3);
                }
            }
            taken.push(k);
        }
        if e.poll_timeout().is_some_and(|x| x <= now) {
            e.handle_timeout(now);
        }
        let took = started.elapsed();
        cpu += took;
        worst = worst.max(took);
        calls += 1;
        free_at_us = start_us + took.as_secs_f64() * 1e6;
        while let Some(rec) = e.poll_event() {
            match rec.event {
                Event::OfferSent {
                    offer_id,
                    responder_id,
                    incident_id,
                    ..
                } => {
                    offers += 1;
                    if let Some(a) = arrived_us.remove(&incident_id.0) {
                        latency_ms.push((free_at_us - a) / 1e3);
                    }
                    n += 1;
                    let accept = offer_id.0 % 5 < 3;
                    let delay = if accept { 5_000 } else { 8_000 };
                    due.insert(
                        (now.0 + delay, n),
                        Command::answer_offer(responder_id, offer_id, accept),
                    );
                }
                Event::Assigned {
                    incident_id,
                    responder_id,
                    ..
                } => {
                    assigned += 1;
                    n += 1;
                    due.insert(
                        (now.0 + 60_000, n),
                        Command::Arrived {
                            responder_id: responder_id.clone(),
                            incident_id,
                        },
                    );
                    n += 1;
                    due.insert(
                        (now.0 + 90_000, n),
                        Command::Complete {
                            responder_id,
                            incident_id,
                        },
                    );
                }
                _ => {}
            }
        }
        if now.0 > end {
            break;
        }
    }
    latency_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latency_ms
            .get(((latency_ms.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{alerts} alerts at {per_s}/s, {} responders, batch {batch}: {:.0} µs engine CPU per alert; \
         {calls} engine calls, worst {:.1} ms; {offers} offers, {assigned} assignments; \
         alert -> first offer (engine queue only, n={}): p50 {:.1} ms, p99 {:.1} ms",
        roster.responders.len(),
        cpu.as_secs_f64() * 1e6 / alerts as f64,
        worst.as_secs_f64() * 1e3,
        latency_ms.len(),
        pct(0.5),
        pct(0.99),
    );
    // What a journal snapshot of the state after the run costs the engine's thread: the
    // owned copy (`save_state`) and its JSON encoding, each the median of five.
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (mut copy, mut encode, mut bytes) = (Vec::new(), Vec::new(), 0);
    for _ in 0..5 {
        let t = Instant::now();
        let state = e.save_state();
        copy.push(t.elapsed());
        let t = Instant::now();
        bytes = serde_json::to_vec(&state)?.len();
        encode.push(t.elapsed());
    }
    println!(
        "snapshot after the run: save_state {:.1} ms, JSON encoding {:.1} ms ({:.1} MB)",
        median(copy).as_secs_f64() * 1e3,
        median(encode).as_secs_f64() * 1e3,
        bytes as f64 / 1e6,
    );
    Ok(())
}
