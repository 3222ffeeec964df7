//! Live coverage in the service (`dispatch_core::coverage`): a task that every period asks
//! the engine for the responders an emergency could be offered to now (and the elders, when
//! they changed), brings the coverage up to date off the engine's thread, and publishes the
//! shares as Prometheus gauges; and the operators' `GET /v1/coverage`.
//!
//! | method and path | who | answer |
//! | --- | --- | --- |
//! | `GET /v1/coverage[?by=hex\|grid\|elder][&hex_m=400]` | operators (`dispatch` or `care`) | 200, a GeoJSON FeatureCollection with a `summary` (docs/protocol.md, "Coverage") |
//!
//! Recomputed on a period (`--coverage-period-ms`, default 5 s), incrementally: the engine
//! hands over a list (a copy of the available responders, about a millisecond for 10,000),
//! and only the responders that came, went or moved since the last period change anything
//! (their cell of the road Voronoi diagram; the elders at its vertices are read again).

use crate::engine_task::EngineHandle;
use crate::http::{error, operator_with_any, AppState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dispatch_core::coverage::{CoverElder, CoverSource, Coverage, Tally, CIRCLE_MS, DOOR_MS};
use dispatch_core::geo::LatLon;
use dispatch_core::road::RoadNetwork;
use dispatch_core::roster::OperatorRole;
use dispatch_core::time::Timestamp;
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What the engine hands the coverage task each period.
#[derive(Debug, Clone)]
pub struct CoverageInput {
    pub net: Arc<RoadNetwork>,
    /// The walking speed the foot profile was built at (speeds are factors of it).
    pub foot_kmh: f64,
    pub now: Timestamp,
    pub sources: Vec<CoverSource>,
    /// The elders and their version, when the version differs from the one the task knows.
    pub elders: Option<(u64, Vec<CoverElder>)>,
    /// The road closures laid now (the same `Arc` until they change).
    pub overlay: Arc<dispatch_core::road::RoadOverlay>,
}

/// The latest coverage, shared by the task (writer) and the HTTP handler (reader).
#[derive(Debug, Default)]
pub struct CoverageCell {
    inner: Mutex<Option<Latest>>,
}

#[derive(Debug)]
struct Latest {
    coverage: Coverage,
    at: Timestamp,
}

impl CoverageCell {
    fn read<T>(&self, f: impl FnOnce(&Latest) -> T) -> Option<T> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.as_ref().map(f)
    }
}

/// Starts the coverage task: one update right away, then one per `period`, until `stop`.
pub fn spawn(
    engine: EngineHandle,
    cell: Arc<CoverageCell>,
    period: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut known = 0u64;
        loop {
            match engine.coverage_input(known).await {
                Ok(Some(input)) => {
                    if let Some((v, _)) = &input.elders {
                        known = *v;
                    }
                    let cell = cell.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || update(&cell, input)).await
                    {
                        tracing::error!(error = %e, "coverage update panicked");
                        return;
                    }
                }
                // An engine without a road network has no coverage.
                Ok(None) => return,
                Err(e) => tracing::debug!(error = %e, "coverage: the engine did not answer"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    })
}

fn update(cell: &CoverageCell, input: CoverageInput) {
    let started = Instant::now();
    let mut g = cell.inner.lock().unwrap_or_else(|e| e.into_inner());
    let latest = g.get_or_insert_with(|| Latest {
        coverage: Coverage::new(input.net.clone(), input.foot_kmh),
        at: input.now,
    });
    if let Some((_, elders)) = input.elders {
        latest.coverage.set_elders(elders);
    }
    // Closures first: a new overlay rebuilds the fields from the responders held, and the
    // sync then applies who came, went or moved.
    latest.coverage.set_overlay(input.overlay);
    let stats = latest.coverage.sync(&input.sources);
    latest.at = input.now;
    let summary = latest.coverage.summary();
    crate::metrics::coverage(&summary, started.elapsed());
    tracing::debug!(?stats, "coverage updated");
}

/// The coverage route (merged into the router in http.rs).
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/coverage", get(get_coverage))
}

/// Default hexagon size (circumradius, m): about the distance walked in 6 minutes, so a
/// hexagon is a neighbourhood a care manager can recruit in.
const HEX_M: f64 = 400.0;

#[derive(Debug, Clone, Copy, PartialEq)]
enum By {
    Hex(f64),
    Grid,
    Elder,
}

fn parse_query(uri: &Uri) -> Result<By, String> {
    let (mut by, mut hex_m) = ("hex".to_string(), None::<f64>);
    for (k, v) in crate::http::query_pairs(uri) {
        match k {
            "by" => by = v.to_string(),
            "hex_m" => match v.parse::<f64>() {
                Ok(m) if (50.0..=10_000.0).contains(&m) => hex_m = Some(m),
                _ => {
                    return Err(format!(
                        "hex_m: {v:?} is not a number of metres in [50, 10000]"
                    ))
                }
            },
            "access_token" => {}
            other => return Err(format!("unknown query parameter `{other}`")),
        }
    }
    match by.as_str() {
        "hex" => Ok(By::Hex(hex_m.unwrap_or(HEX_M))),
        "grid" | "elder" if hex_m.is_some() => Err("hex_m goes only with by=hex".into()),
        "grid" => Ok(By::Grid),
        "elder" => Ok(By::Elder),
        other => Err(format!("by: {other:?} is not one of hex, grid, elder")),
    }
}

async fn get_coverage(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(r) = operator_with_any(
        &state,
        &headers,
        &uri,
        &[OperatorRole::Dispatch, OperatorRole::Care],
        "coverage is for operators",
    ) {
        return *r;
    }
    let by = match parse_query(&uri) {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, "bad_field", m),
    };
    let body = state.coverage.read(|l| collection(l, by));
    match body {
        Some(v) => Json(v).into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "coverage is being computed; try again in a few seconds",
        ),
    }
}

fn lon_lat(p: LatLon) -> Value {
    json!([p.lon, p.lat])
}

fn tally_props(t: &Tally) -> Map<String, Value> {
    match serde_json::to_value(t) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn feature(geometry: Value, props: Map<String, Value>) -> Value {
    json!({"type": "Feature", "geometry": geometry, "properties": props})
}

fn collection(l: &Latest, by: By) -> Value {
    let cov = &l.coverage;
    let features: Vec<Value> = match by {
        By::Hex(size) => cov
            .cells(size)
            .into_iter()
            .map(|c| {
                let mut p = tally_props(&c.tally);
                p.insert("cell".into(), json!(format!("{},{}", c.q, c.r)));
                let ring: Vec<Value> = c.ring.iter().map(|x| lon_lat(*x)).collect();
                feature(json!({"type": "Polygon", "coordinates": [ring]}), p)
            })
            .collect(),
        By::Grid => {
            let summary = cov.summary();
            let mut sums: std::collections::BTreeMap<_, (f64, f64, u64)> = Default::default();
            for e in cov.elders() {
                let s = sums.entry(e.elder.grid_id.clone()).or_insert((0.0, 0.0, 0));
                s.0 += e.elder.home.lat;
                s.1 += e.elder.home.lon;
                s.2 += 1;
            }
            summary
                .by_grid
                .iter()
                .map(|(grid, t)| {
                    let mut p = tally_props(t);
                    p.insert("grid_id".into(), json!(grid));
                    let (la, lo, n) = sums.get(grid).copied().unwrap_or((0.0, 0.0, 1));
                    let n = n.max(1) as f64;
                    feature(json!({"type": "Point", "coordinates": [lo / n, la / n]}), p)
                })
                .collect()
        }
        By::Elder => cov
            .elders()
            .iter()
            .map(|e| {
                let mut p = Map::new();
                p.insert("elder_id".into(), json!(e.elder.id));
                p.insert("grid_id".into(), json!(e.elder.grid_id));
                p.insert("care_level".into(), json!(e.elder.care_level));
                p.insert("community_eta_s".into(), json!(e.community_ms.map(secs)));
                p.insert("ambulance_eta_s".into(), json!(e.ambulance_ms.map(secs)));
                p.insert("within_180_s".into(), json!(e.at_door()));
                p.insert("within_900_s".into(), json!(e.in_circle()));
                feature(
                    json!({"type": "Point", "coordinates": lon_lat(e.elder.home)}),
                    p,
                )
            })
            .collect(),
    };
    let mut summary = serde_json::to_value(cov.summary()).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut summary {
        m.insert("updated_at".into(), json!(l.at.0));
        m.insert("door_s".into(), json!(DOOR_MS / 1000));
        m.insert("circle_s".into(), json!(CIRCLE_MS / 1000));
    }
    let by_name = match by {
        By::Hex(_) => "hex",
        By::Grid => "grid",
        By::Elder => "elder",
    };
    let mut out = json!({
        "type": "FeatureCollection",
        "by": by_name,
        "features": features,
        "summary": summary,
    });
    if let By::Hex(size) = by {
        out["hex_m"] = json!(size);
    }
    out
}

/// Whole seconds, rounded up (an ETA of 180.2 s is not within 180 s).
fn secs(ms: u64) -> u64 {
    ms.div_ceil(1000)
}
