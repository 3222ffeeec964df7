//! `dispatch route`: one route, or one per line of a pairs file, as JSON lines on stdout, with
//! timing figures on stderr (DESIGN §5.2).

use anyhow::{anyhow, bail, Context};
use dispatch_core::geo::LatLon;
use dispatch_core::road::{ImportedRoads, Profile, ProfileGraph, RoadConfig, Route, Snapped};
use serde::Serialize;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Route between two points, or between each pair of a CSV file.
#[derive(Debug, clap::Args)]
pub struct RouteArgs {
    /// The OpenStreetMap extract (`.osm.pbf`).
    #[arg(long, value_name = "FILE")]
    map: PathBuf,
    /// The travel profile: `car` or `foot`.
    #[arg(long)]
    profile: Profile,
    /// Start, as `LAT,LON` in WGS84 degrees.
    #[arg(
        long,
        value_name = "LAT,LON",
        required_unless_present = "pairs",
        conflicts_with = "pairs",
        allow_hyphen_values = true
    )]
    from: Option<String>,
    /// Destination, as `LAT,LON` in WGS84 degrees.
    #[arg(
        long,
        value_name = "LAT,LON",
        required_unless_present = "pairs",
        conflicts_with = "pairs",
        allow_hyphen_values = true
    )]
    to: Option<String>,
    /// A CSV file of `from_lat,from_lon,to_lat,to_lon` lines (an optional header line and
    /// blank lines are allowed): one JSON line per pair, in order, then timings on stderr.
    #[arg(long, value_name = "FILE.csv")]
    pairs: Option<PathBuf>,
}

/// The JSON line printed per route; all `null` where no route exists.
#[derive(Debug, Serialize)]
struct RouteLine {
    duration_ms: Option<u64>,
    distance_m: Option<f64>,
    path: Option<Vec<[f64; 2]>>,
}

impl From<Option<Route>> for RouteLine {
    fn from(r: Option<Route>) -> RouteLine {
        match r {
            Some(r) => RouteLine {
                duration_ms: Some(r.duration_ms),
                // Decimetres: the map is not more precise than that.
                distance_m: Some((r.distance_m * 10.0).round() / 10.0),
                path: Some(r.path.iter().map(|p| [p.lat, p.lon]).collect()),
            },
            None => RouteLine {
                duration_ms: None,
                distance_m: None,
                path: None,
            },
        }
    }
}

/// One pair of positions and where it came from (for error messages).
struct Pair {
    line: usize,
    from: LatLon,
    to: LatLon,
}

pub fn run(args: RouteArgs) -> anyhow::Result<()> {
    // Everything that can be checked without the map is checked first, so a typo fails fast.
    let pairs = match &args.pairs {
        Some(path) => read_pairs(path)?,
        None => {
            let (from, to) = (args.from.as_deref(), args.to.as_deref());
            let (Some(from), Some(to)) = (from, to) else {
                bail!("give --from and --to, or --pairs");
            };
            vec![Pair {
                line: 0,
                from: parse_latlon(from).with_context(|| format!("--from {from:?}"))?,
                to: parse_latlon(to).with_context(|| format!("--to {to:?}"))?,
            }]
        }
    };

    let started = Instant::now();
    let file = std::fs::File::open(&args.map)
        .with_context(|| format!("cannot open map {}", args.map.display()))?;
    let imported = ImportedRoads::from_pbf(BufReader::new(file), &RoadConfig::default())
        .with_context(|| format!("cannot build roads from {}", args.map.display()))?;
    let built = started.elapsed();
    let started = Instant::now();
    let graph = imported.prepare_profile(args.profile);
    let prepared = started.elapsed();

    // Snap every pair before printing anything, so that a position off the map fails the
    // whole run cleanly instead of after half the output.
    let mut timings = Vec::with_capacity(pairs.len());
    let mut snapped = Vec::with_capacity(pairs.len());
    for pair in &pairs {
        let started = Instant::now();
        snapped.push(snap_pair(&graph, pair, args.pairs.as_deref())?);
        timings.push(started.elapsed());
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for ((from, to), took) in snapped.iter().zip(&mut timings) {
        let started = Instant::now();
        let route = graph.route(from, to);
        *took += started.elapsed();
        serde_json::to_writer(&mut out, &RouteLine::from(route))?;
        out.write_all(b"\n")?;
    }
    out.flush().context("cannot write to stdout")?;

    if args.pairs.is_some() {
        eprintln!(
            "dispatch route: {} {} pairs; build {:.0} ms, prepare {:.0} ms; per route (snap + route + path) {}",
            pairs.len(),
            args.profile,
            built.as_secs_f64() * 1e3,
            prepared.as_secs_f64() * 1e3,
            percentiles(&mut timings),
        );
    }
    Ok(())
}

fn snap_pair(
    graph: &ProfileGraph,
    pair: &Pair,
    file: Option<&Path>,
) -> anyhow::Result<(Snapped, Snapped)> {
    let place = |what: &str| match file {
        Some(f) => format!("{} line {}: {what}", f.display(), pair.line),
        None => format!("--{what}"),
    };
    let from = graph.snap(pair.from).with_context(|| place("from"))?;
    let to = graph.snap(pair.to).with_context(|| place("to"))?;
    Ok((from, to))
}

fn percentiles(timings: &mut [Duration]) -> String {
    if timings.is_empty() {
        return "n/a (no pairs)".to_string();
    }
    timings.sort_unstable();
    let at = |q: f64| {
        let i = ((timings.len() - 1) as f64 * q).round() as usize;
        timings[i].as_secs_f64() * 1e6
    };
    format!(
        "p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

/// `LAT,LON` in degrees, checked.
fn parse_latlon(s: &str) -> anyhow::Result<LatLon> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [lat, lon] = parts[..] else {
        bail!("expected LAT,LON (two numbers separated by a comma)");
    };
    let number = |x: &str| {
        x.parse::<f64>()
            .map_err(|_| anyhow!("{x:?} is not a number"))
    };
    Ok(LatLon::new(number(lat)?, number(lon)?)?)
}

fn read_pairs(path: &Path) -> anyhow::Result<Vec<Pair>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read pairs file {}", path.display()))?;
    let mut pairs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        // A header is a first line none of whose fields is a number.
        if i == 0 && fields.iter().all(|f| f.parse::<f64>().is_err()) {
            continue;
        }
        let parsed = (|| {
            let [a, b, c, d] = fields[..] else {
                bail!("expected 4 comma-separated numbers from_lat,from_lon,to_lat,to_lon, found {} fields", fields.len());
            };
            Ok(Pair {
                line: i + 1,
                from: parse_latlon(&format!("{a},{b}"))?,
                to: parse_latlon(&format!("{c},{d}"))?,
            })
        })();
        pairs.push(parsed.with_context(|| format!("{} line {}: {raw:?}", path.display(), i + 1))?);
    }
    Ok(pairs)
}
