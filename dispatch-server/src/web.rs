//! The web apps and the map they draw, on the API's own port: `/console/`, `/responder/`
//! and their shared modules under `/common/` (the files of `web/`, embedded at build time by
//! `build.rs`), and `GET /v1/map`, the roads the server loaded as compact polylines.
//!
//! Nothing is fetched from elsewhere at run time: no CDN, no tile service. With the
//! environment variable `DISPATCH_WEB_DIR` set, files are read from that folder instead of the
//! embedded copy, so a developer edits JavaScript without rebuilding.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use dispatch_core::road::{LineClass, RoadNetwork};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// The top-level folders of `web/` that are served, each at `/<folder>/`.
const APPS: &[&str] = &["console", "responder", "common"];

/// Map coordinates are integers: degrees × this (about 1.1 m of latitude).
pub const MAP_SCALE: f64 = 100_000.0;

/// What the web side serves: the files and the encoded map.
#[derive(Clone, Default)]
pub struct Site {
    /// Read files from here instead of the embedded copy (`DISPATCH_WEB_DIR`).
    pub dir: Option<PathBuf>,
    /// `GET /v1/map`'s body, plain and gzip'd; `None` answers 503 (no map loaded).
    pub map: Option<Arc<MapBody>>,
}

/// The encoded map, built once at start.
pub struct MapBody {
    pub json: Vec<u8>,
    pub gzip: Vec<u8>,
}

impl Site {
    /// The embedded files (or `DISPATCH_WEB_DIR`'s) and `roads` encoded for drawing.
    pub fn new(roads: &RoadNetwork) -> Site {
        let dir = std::env::var_os("DISPATCH_WEB_DIR").map(PathBuf::from);
        if let Some(d) = &dir {
            tracing::info!(dir = %d.display(), "serving web files from disk (DISPATCH_WEB_DIR)");
        }
        let json = encode_map(roads);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing into a Vec cannot fail.
        let gzip = gz
            .write_all(&json)
            .and_then(|()| gz.finish())
            .unwrap_or_default();
        tracing::info!(
            bytes = json.len(),
            gzip_bytes = gzip.len(),
            "map encoded for /v1/map"
        );
        Site {
            dir,
            map: Some(Arc::new(MapBody { json, gzip })),
        }
    }
}

/// `{"attribution", "bbox":[min_lat,min_lon,max_lat,max_lon], "scale", "lines":[[class, lat0,
/// lon0, dlat1, dlon1, …], …]}`: integer degrees × [`MAP_SCALE`], each point after the first a
/// delta from the one before (docs/protocol.md).
pub fn encode_map(roads: &RoadNetwork) -> Vec<u8> {
    let lines = roads.outline();
    let (mut min_lat, mut min_lon, mut max_lat, mut max_lon) =
        (90.0f64, 180.0f64, -90.0f64, -180.0f64);
    let mut out = String::with_capacity(lines.len() * 64);
    out.push('[');
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let class = match line.class {
            LineClass::MainRoad => 0,
            LineClass::Road => 1,
            LineClass::FootOnly => 2,
        };
        out.push_str(&format!("[{class}"));
        let (mut plat, mut plon) = (0i64, 0i64);
        for p in &line.points {
            min_lat = min_lat.min(p.lat);
            max_lat = max_lat.max(p.lat);
            min_lon = min_lon.min(p.lon);
            max_lon = max_lon.max(p.lon);
            let lat = (p.lat * MAP_SCALE).round() as i64;
            let lon = (p.lon * MAP_SCALE).round() as i64;
            out.push_str(&format!(",{},{}", lat - plat, lon - plon));
            (plat, plon) = (lat, lon);
        }
        out.push(']');
    }
    out.push(']');
    let bbox = if lines.is_empty() {
        serde_json::json!(null)
    } else {
        serde_json::json!([min_lat, min_lon, max_lat, max_lon])
    };
    let head = serde_json::json!({
        "attribution": "© OpenStreetMap contributors",
        "bbox": bbox,
        "scale": MAP_SCALE,
    });
    // `lines` is spliced in as written above (valid JSON by construction) rather than built as
    // a `serde_json::Value`, which would hold ~1 M small values at once.
    let mut text = head.to_string();
    text.pop();
    text.push_str(",\"lines\":");
    text.push_str(&out);
    text.push('}');
    text.into_bytes()
}

/// The web routes (merged into the API router).
pub fn routes<S: Clone + Send + Sync + 'static>(site: Site) -> Router<S> {
    let site = Arc::new(site);
    let mut r = Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/v1/map", get(map));
    for app in APPS {
        let slash = format!("/{app}/");
        r = r
            .route(
                &format!("/{app}"),
                get(move || async move { Redirect::permanent(&slash) }),
            )
            .route(
                &format!("/{app}/"),
                get(move |s: State<Arc<Site>>| file(s, format!("{app}/index.html"))),
            )
            .route(
                &format!("/{app}/{{*path}}"),
                get(move |s: State<Arc<Site>>, Path(p): Path<String>| {
                    file(s, format!("{app}/{p}"))
                }),
            );
    }
    r.with_state(site)
}

async fn map(State(site): State<Arc<Site>>, headers: HeaderMap) -> Response {
    let Some(body) = &site.map else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no map loaded").into_response();
    };
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut resp = if gzip_ok && !body.gzip.is_empty() {
        let mut r = Body::from(body.gzip.clone()).into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        Body::from(body.json.clone()).into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    // The roads change only with a new map file, which means a restart: a day is safe.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    resp
}

/// One file of `web/` by its path under `web/`.
async fn file(State(site): State<Arc<Site>>, rel: String) -> Response {
    if rel
        .split('/')
        .any(|c| c.is_empty() || c == ".." || c.starts_with('.'))
    {
        return not_found(&rel);
    }
    let bytes: Option<Vec<u8>> = match &site.dir {
        Some(dir) => tokio::fs::read(dir.join(&rel)).await.ok(),
        None => embedded::FILES
            .binary_search_by(|(p, _)| (*p).cmp(rel.as_str()))
            .ok()
            .map(|i| embedded::FILES[i].1.to_vec()),
    };
    let Some(bytes) = bytes else {
        return not_found(&rel);
    };
    let mut resp = Body::from(bytes).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&rel)),
    );
    // Always revalidate: a new release's files must reach a browser that has the old ones
    // (the responder app's service worker keeps its own offline copy).
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Tokens may sit in a page's query string: never send the address to anyone else.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data: blob:; \
             style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    resp
}

fn not_found(rel: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("no such file: /{rel}")).into_response()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "wav" => "audio/wav",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
