//! The server's metrics, through the `metrics` facade, rendered as Prometheus text by
//! `metrics-exporter-prometheus` at `GET /metrics`.
//!
//! Names are `dispatch_<noun>_<unit>[_total]`; labels come from small closed sets (roles,
//! command kinds, SLA names, queue names), never from ids.

use crate::engine_task::event_label;
use crate::wire::Role;
use dispatch_core::event::Event;
use dispatch_core::model::Sla;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// The process's Prometheus recorder, installed on first use. A process has one global
/// recorder, so every server in it (tests start several) shares these counters.
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 1.0,
                ])
                .ok()?;
            // The end-to-end clocks reach hundreds of ms under load: finer there.
            const END_TO_END: [f64; 17] = [
                0.001, 0.002_5, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75,
                1.0, 2.0, 5.0,
            ];
            let mut builder = builder;
            for name in [
                "dispatch_alert_to_offer_seconds",
                "dispatch_release_wait_seconds",
            ] {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full(name.into()), &END_TO_END)
                    .ok()?;
            }
            match builder.install_recorder() {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

pub fn alert_received(via: &'static str) {
    counter!("dispatch_alerts_received_total", "via" => via).increment(1);
}

pub fn alert_accepted(duplicate: bool) {
    let dup = if duplicate { "true" } else { "false" };
    counter!("dispatch_alerts_accepted_total", "duplicate" => dup).increment(1);
}

/// An accepted command, counted when it was released (durable).
pub fn command_accepted(kind: &'static str) {
    counter!("dispatch_commands_accepted_total", "kind" => kind).increment(1);
}

/// A fire-and-forget command (a location ping) the engine refused.
pub fn refused(kind: &'static str) {
    counter!("dispatch_commands_refused_total", "kind" => kind).increment(1);
}

/// A location ping taken at the edge (parsed, checked, converted, queued for the engine,
/// which coalesces pings per responder: newest wins). The "through the server" rate.
pub fn location_frame() {
    counter!("dispatch_location_frames_total").increment(1);
}

/// A frame refused at the edge, by error code.
pub fn frame_rejected(code: &'static str) {
    counter!("dispatch_frames_rejected_total", "code" => code).increment(1);
}

pub fn decision_latency(kind: &'static str, elapsed: Duration) {
    histogram!("dispatch_decision_latency_seconds", "kind" => kind).record(elapsed.as_secs_f64());
}

/// From a new incident's alert handed to the engine task (by its session or HTTP handler) to
/// its first offer queued to the responder's socket: the server's share of "alert → first
/// offer" (the load client's share of the machine does not count). Incidents that found
/// nobody to ask at first are left out: they wait for a person, not for the server.
pub fn alert_to_offer(elapsed: Duration) {
    histogram!("dispatch_alert_to_offer_seconds").record(elapsed.as_secs_f64());
}

/// From an engine step decided (its record appended) to its events released to consoles and
/// phones: the wait for the journal's group commit to make it durable, and for earlier steps.
pub fn release_wait(elapsed: Duration) {
    histogram!("dispatch_release_wait_seconds").record(elapsed.as_secs_f64());
}

/// Released events, by type; offers, declines, expiries and SLA breaches also get their own
/// names because dashboards ask for them by name.
pub fn event(e: &Event) {
    counter!("dispatch_events_total", "type" => event_label(e)).increment(1);
    match e {
        Event::OfferSent { .. } => counter!("dispatch_offers_total").increment(1),
        Event::OfferDeclined { .. } => counter!("dispatch_offer_declines_total").increment(1),
        Event::OfferExpired { .. } => counter!("dispatch_offer_expiries_total").increment(1),
        Event::Assigned { .. } => counter!("dispatch_assignments_total").increment(1),
        Event::SlaBreached { sla, .. } => {
            let sla = match sla {
                Sla::FirstAccept => "first_accept",
                Sla::CommunityOnScene => "community_on_scene",
                Sla::AmbulanceOnScene => "ambulance_on_scene",
                Sla::JobAccept => "job_accept",
                Sla::JobOnScene => "job_on_scene",
            };
            counter!("dispatch_sla_breaches_total", "sla" => sla).increment(1);
        }
        _ => {}
    }
}

pub fn queue_depth(queue: &'static str, depth: usize) {
    gauge!("dispatch_queue_depth_items", "queue" => queue).set(depth as f64);
}

pub fn consoles(n: usize) {
    gauge!("dispatch_consoles_subscribed_count").set(n as f64);
}

pub fn lagged(consoles: u64, responders: u64) {
    if consoles > 0 {
        counter!("dispatch_consoles_lagged_total").increment(consoles);
    }
    if responders > 0 {
        counter!("dispatch_responder_queue_overflows_total").increment(responders);
    }
}

pub fn session_opened(role: Role) {
    gauge!("dispatch_sessions_count", "role" => role.as_str()).increment(1.0);
    counter!("dispatch_sessions_opened_total", "role" => role.as_str()).increment(1);
}

pub fn session_closed(role: Role) {
    gauge!("dispatch_sessions_count", "role" => role.as_str()).decrement(1.0);
}

pub fn journal_failed() {
    counter!("dispatch_journal_failures_total").increment(1);
}

pub fn http_unauthorized() {
    counter!("dispatch_auth_refused_total").increment(1);
}

/// Live coverage after an update: the shares of elders inside the 3-minute promise and the
/// 15-minute circle (overall and per care level, plain and weighted by care level), the
/// elders and responders counted, and how long the update took.
pub fn coverage(s: &dispatch_core::coverage::Summary, elapsed: Duration) {
    let set = |level: String, t: &dispatch_core::coverage::Tally| {
        for (circle, share, weighted) in [
            ("door_180s", t.share_180_s, "false"),
            ("circle_900s", t.share_900_s, "false"),
            ("door_180s", t.weighted_share_180_s, "true"),
            ("circle_900s", t.weighted_share_900_s, "true"),
        ] {
            gauge!("dispatch_coverage_share_ratio", "circle" => circle, "care_level" => level.clone(), "weighted" => weighted)
                .set(share);
        }
        gauge!("dispatch_coverage_elders_count", "care_level" => level).set(t.elders as f64);
    };
    set("all".into(), &s.overall);
    for (level, t) in &s.by_care_level {
        set(level.to_string(), t);
    }
    gauge!("dispatch_coverage_responders_count", "kind" => "community")
        .set(s.community_responders as f64);
    gauge!("dispatch_coverage_responders_count", "kind" => "ambulance").set(s.ambulances as f64);
    histogram!("dispatch_coverage_update_seconds").record(elapsed.as_secs_f64());
}

/// Cluster mode: this node's role for a region (one gauge per role, 1 for the current one)
/// and the last stream sequence it applied or wrote.
pub fn cluster_role(region: dispatch_core::journal::RegionId, role: &'static str, applied: u64) {
    let r = region.0.to_string();
    for each in ["catching_up", "standby", "taking_over", "active"] {
        gauge!("dispatch_cluster_role", "region" => r.clone(), "role" => each)
            .set(if each == role { 1.0 } else { 0.0 });
    }
    gauge!("dispatch_cluster_applied_seq", "region" => r).set(applied as f64);
}

/// Cluster mode: a standby applied stream message `seq`.
pub fn cluster_applied(region: dispatch_core::journal::RegionId, seq: u64) {
    gauge!("dispatch_cluster_applied_seq", "region" => region.0.to_string()).set(seq as f64);
}

/// Cluster mode: messages in the region's stream a standby has not applied yet.
pub fn cluster_lag(region: dispatch_core::journal::RegionId, records: u64) {
    gauge!("dispatch_cluster_lag_messages", "region" => region.0.to_string()).set(records as f64);
}

/// Cluster mode: the active engine's append acknowledged at stream sequence `seq`.
pub fn cluster_appended(region: dispatch_core::journal::RegionId, seq: u64) {
    counter!("dispatch_cluster_appends_total", "region" => region.0.to_string()).increment(1);
    gauge!("dispatch_cluster_applied_seq", "region" => region.0.to_string()).set(seq as f64);
}

/// Cluster mode: this node took a region over, in `took` from holding the lease to serving.
pub fn cluster_takeover(region: dispatch_core::journal::RegionId, took: Duration) {
    counter!("dispatch_cluster_takeovers_total", "region" => region.0.to_string()).increment(1);
    histogram!("dispatch_cluster_takeover_seconds").record(took.as_secs_f64());
}

/// Cluster mode: this node stepped down (lost the lease, or fenced).
pub fn cluster_step_down(region: dispatch_core::journal::RegionId) {
    counter!("dispatch_cluster_step_downs_total", "region" => region.0.to_string()).increment(1);
}

/// Cluster mode: a request this node forwarded to the active engine was answered.
pub fn cluster_forwarded() {
    counter!("dispatch_cluster_forwarded_total").increment(1);
}

/// Cluster mode: the active engine kept a snapshot in the cluster at stream sequence `seq`.
pub fn cluster_snapshot(region: dispatch_core::journal::RegionId, seq: u64) {
    gauge!("dispatch_cluster_snapshot_seq", "region" => region.0.to_string()).set(seq as f64);
}

/// Cluster mode: a renewal of the region's lease by the active engine, and whether it held.
pub fn cluster_lease_renewed(region: dispatch_core::journal::RegionId, ok: bool) {
    let outcome = if ok { "renewed" } else { "failed" };
    counter!("dispatch_cluster_lease_renewals_total", "region" => region.0.to_string(), "outcome" => outcome)
        .increment(1);
}

/// Cluster mode: a WebSocket session this node proxied to the active engine.
pub fn cluster_proxied_session() {
    counter!("dispatch_cluster_proxied_sessions_total").increment(1);
}
