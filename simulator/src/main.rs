//! The `simulator` binary: flags → scenario → runs → reports. All logic lives in the library.

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use simulator::behaviour::BehaviourParams;
use simulator::hexgrid::Hexgrid;
use simulator::live::LiveParams;
use simulator::replay::{Paced, ReplayWorld};
use simulator::report::{PolicyReport, Report, ScenarioSummary};
use simulator::roads::Map;
use simulator::runner::{policies, run_all, write_outputs, BASELINE_RADIUS_M};
use simulator::scenario::{generate, Scenario, ScenarioParams, VIRTUAL_EPOCH};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "simulator",
    about = "Scenarios, virtual-time runs and load for the dispatch engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate a scenario and run it in virtual time under each policy; write the report.
    Run {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[command(flatten)]
        behaviour: BehaviourArgs,
        /// The baseline policy's straight-line radius (metres).
        #[arg(long, default_value_t = BASELINE_RADIUS_M)]
        radius_m: f64,
        /// Also run the published baselines beside the radius rule (`everyone_800m`,
        /// `alert7_replace_1km`; docs/simulator.md).
        #[arg(long)]
        more_baselines: bool,
        /// The engine column's rules from a policy file (TOML, the keys of `dispatch serve
        /// --config`, docs/deploy.md); the baselines keep theirs.
        #[arg(long, value_name = "rules.toml")]
        engine_config: Option<PathBuf>,
        /// Add a plan's recruits (`simulator plan`'s plan.json) to the scenario as volunteers.
        #[arg(long, value_name = "plan.json")]
        recruits: Option<PathBuf>,
        /// Which of the plan's recruits: `plan` (its choice) or `random` (as many where
        /// people live, the naive plan).
        #[arg(long, default_value = "plan", requires = "recruits")]
        recruit_set: RecruitSet,
        /// Where report.json, summary.md and the SVG charts go.
        #[arg(long)]
        out: PathBuf,
    },
    /// Where to recruit `--add` more volunteers so that the share of elders within 3 minutes
    /// of a community responder rises most; writes plan.json, summary.md and plan.svg.
    Plan {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Plan for this roster (its elders and responders) instead of the generated one.
        #[arg(long)]
        roster: Option<PathBuf>,
        /// How many volunteers to recruit.
        #[arg(long)]
        add: usize,
        /// The recruits' walking speed (the generated volunteers walk 3.5–5 km/h).
        #[arg(long, default_value_t = 4.2)]
        walk_kmh: f64,
        /// Count each elder by their care level (1–5) instead of once.
        #[arg(long)]
        weighted: bool,
        /// The chance one responder within 3 minutes is not there for an alert (busy, off
        /// duty, declining); 0 counts only elders nobody reaches (plain maximum coverage).
        #[arg(long, default_value_t = 0.5)]
        miss_share: f64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a generated scenario's roster (token digests) and its tokens, for `dispatch serve`.
    Roster {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[arg(long)]
        roster_out: PathBuf,
        #[arg(long)]
        tokens_out: PathBuf,
    },
    /// Load over the wire against a running `dispatch serve` (loopback only; bounded).
    Load {
        /// The server's WebSocket URL, e.g. ws://127.0.0.1:8080/v1/ws.
        #[arg(long)]
        url: String,
        /// The roster the server runs (from `simulator roster`).
        #[arg(long)]
        roster: PathBuf,
        /// Its tokens file.
        #[arg(long)]
        tokens: PathBuf,
        #[arg(long, default_value_t = 1000)]
        responders: usize,
        #[arg(long, default_value_t = 1000)]
        alerts: usize,
        #[arg(long, default_value_t = 100.0)]
        alerts_per_s: f64,
        /// Location updates per second per responder phone.
        #[arg(long, default_value_t = 1.0)]
        location_hz: f64,
        #[arg(long, default_value_t = 0.6)]
        accept_share: f64,
        /// Hard bound on the run's wall time (seconds).
        #[arg(long, default_value_t = 60.0)]
        max_duration_s: f64,
        #[arg(long, default_value_t = 2.0)]
        grace_s: f64,
        #[arg(long)]
        out: PathBuf,
    },
    /// A simulated day in wall-clock time against a running `dispatch serve`, until Ctrl-C or
    /// --max-duration-s (loopback only; docs/simulator.md).
    Live {
        /// The server's WebSocket URL, e.g. ws://127.0.0.1:8080/v1/ws.
        #[arg(long)]
        url: String,
        /// The roster the server runs (from `simulator roster`).
        #[arg(long)]
        roster: PathBuf,
        /// Its tokens file.
        #[arg(long)]
        tokens: PathBuf,
        /// Seeds the alert streams and every responder's decisions.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Alerts per minute over all kinds (the generator's mix of falls, help, check-ins).
        #[arg(long, default_value_t = LiveParams::new("").alerts_per_min)]
        alerts_per_min: f64,
        /// Travel and on-scene time this many times faster than life.
        #[arg(long, default_value_t = 1.0)]
        speedup: f64,
        /// Hard bound on the run's wall time (seconds).
        #[arg(long, default_value_t = 86_400.0)]
        max_duration_s: f64,
        /// Most responder phones to simulate (the roster's first, in order).
        #[arg(long, default_value_t = LiveParams::new("").max_phones)]
        max_phones: usize,
        /// Device gateway connections the alerts are spread over.
        #[arg(long, default_value_t = LiveParams::new("").gateways)]
        gateways: usize,
        /// Responders left to a person (not simulated), comma-separated, e.g. V00001.
        #[arg(long, value_delimiter = ',')]
        leave_free: Vec<String>,
        #[command(flatten)]
        behaviour: BehaviourArgs,
        /// Phones connect spread over this many seconds; alerts start after.
        #[arg(long, default_value_t = LiveParams::new("").connect_over_s)]
        connect_over_s: f64,
        /// A summary line on stderr this often (seconds).
        #[arg(long, default_value_t = 30.0)]
        summary_every_s: f64,
    },
    /// Replay a JSON-lines file of timed commands through the engine (docs/simulator.md).
    Replay {
        #[arg(long)]
        map: PathBuf,
        #[arg(long)]
        roster: PathBuf,
        #[arg(long)]
        input: PathBuf,
        /// Wall-clock pacing: 1 is real time, 10 ten times faster; 0 is pure virtual time.
        #[arg(long, default_value_t = 0.0)]
        speed: f64,
        /// Let timers run this long after the last line (seconds).
        #[arg(long, default_value_t = 3600.0)]
        drain_s: f64,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum RecruitSet {
    Plan,
    Random,
}

#[derive(Args)]
struct ScenarioArgs {
    /// The OSM extract (.osm.pbf).
    #[arg(long)]
    map: PathBuf,
    /// The population hexgrid CSV.
    #[arg(long)]
    population: PathBuf,
    #[arg(long, default_value_t = ScenarioParams::default().hours)]
    hours: f64,
    #[arg(long, default_value_t = ScenarioParams::default().seed)]
    seed: u64,
    #[arg(long, default_value_t = ScenarioParams::default().elders)]
    elders: usize,
    #[arg(long, default_value_t = ScenarioParams::default().volunteers)]
    volunteers: usize,
    #[arg(long, default_value_t = ScenarioParams::default().ambulances)]
    ambulances: usize,
    #[arg(long, default_value_t = ScenarioParams::default().grid_side_m)]
    grid_side_m: f64,
    #[arg(long, default_value_t = ScenarioParams::default().pairing_radius_m)]
    pairing_radius_m: f64,
    #[arg(long, default_value_t = ScenarioParams::default().falls_per_hour)]
    falls_per_hour: f64,
    #[arg(long, default_value_t = ScenarioParams::default().rescue_calls_per_hour)]
    rescue_calls_per_hour: f64,
    #[arg(long, default_value_t = ScenarioParams::default().service_calls_per_hour)]
    service_calls_per_hour: f64,
    #[arg(long, default_value_t = ScenarioParams::default().missed_check_ins_per_hour)]
    missed_check_ins_per_hour: f64,
    /// Device gateways on the roster (a load run spreads its alerts over them).
    #[arg(long, default_value_t = ScenarioParams::default().gateways)]
    gateways: usize,
}

#[derive(Args)]
struct BehaviourArgs {
    /// How simulated people answer offers: `optimistic` (60 % accept within 5–25 s, all on
    /// duty), `scquizzato2020` (as published programmes report) or `mottlau2022` (the same
    /// day as people going on and off duty; docs/simulator.md).
    #[arg(long, default_value = "optimistic", value_parser = clap::builder::PossibleValuesParser::new(simulator::behaviour::PRESETS))]
    behaviour: String,
    /// Chance a responder accepts an offer (default: the preset's).
    #[arg(long)]
    accept_share: Option<f64>,
    /// Chance a responder declines; the rest stay silent and let the offer expire (default:
    /// the preset's).
    #[arg(long)]
    decline_share: Option<f64>,
    /// `same`: every volunteer accepts with the preset's chance; `varied` (`simulator run`
    /// only): each volunteer has their own, drawn once per seed (J-shaped around the preset's
    /// mean, 10 % dormant; docs/simulator.md, "Volunteers who differ").
    #[arg(long, default_value = "same", value_parser = ["same", "varied"])]
    propensity: String,
}

impl BehaviourArgs {
    fn params(&self) -> anyhow::Result<BehaviourParams> {
        let p = BehaviourParams::preset(&self.behaviour)
            .with_context(|| format!("unknown behaviour preset {}", self.behaviour))?;
        let p = BehaviourParams {
            accept_share: self.accept_share.unwrap_or(p.accept_share),
            decline_share: self.decline_share.unwrap_or(p.decline_share),
            propensity: (self.propensity == "varied")
                .then_some(simulator::behaviour::Propensity::RESEARCH),
            ..p
        };
        for (name, v) in [
            ("accept-share", p.accept_share),
            ("decline-share", p.decline_share),
        ] {
            anyhow::ensure!(
                (0.0..=1.0).contains(&v),
                "--{name} must be in [0, 1], got {v}"
            );
        }
        anyhow::ensure!(
            p.accept_share + p.decline_share <= 1.0 + 1e-9,
            "--accept-share + --decline-share must be at most 1"
        );
        Ok(p)
    }
}

impl ScenarioArgs {
    fn params(&self) -> ScenarioParams {
        ScenarioParams {
            seed: self.seed,
            hours: self.hours,
            elders: self.elders,
            volunteers: self.volunteers,
            ambulances: self.ambulances,
            grid_side_m: self.grid_side_m,
            pairing_radius_m: self.pairing_radius_m,
            falls_per_hour: self.falls_per_hour,
            rescue_calls_per_hour: self.rescue_calls_per_hour,
            service_calls_per_hour: self.service_calls_per_hour,
            missed_check_ins_per_hour: self.missed_check_ins_per_hour,
            gateways: self.gateways,
            ..ScenarioParams::default()
        }
    }
}

fn load_roads(map: &Path) -> anyhow::Result<Map> {
    let t = Instant::now();
    let file =
        std::fs::File::open(map).with_context(|| format!("opening map {}", map.display()))?;
    let net = Map::from_pbf(std::io::BufReader::new(file))
        .with_context(|| format!("reading map {}", map.display()))?;
    eprintln!(
        "simulator: road network from {} in {:.1} s",
        map.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(net)
}

fn scenario(args: &ScenarioArgs, roads: &Map) -> anyhow::Result<Scenario> {
    let text = std::fs::read_to_string(&args.population)
        .with_context(|| format!("reading population grid {}", args.population.display()))?;
    let grid =
        Hexgrid::parse(&text).with_context(|| format!("in {}", args.population.display()))?;
    let s = generate(&grid, &args.params(), &|p| roads.snap_home(p))
        .context("generating the scenario")?;
    Ok(s)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run {
            scenario: args,
            behaviour,
            radius_m,
            more_baselines,
            engine_config,
            recruits,
            recruit_set,
            out,
        } => {
            let engine_policy = match &engine_config {
                Some(path) => Some(dispatch_server::serve_cmd::read_policy_file(path)?),
                None => None,
            };
            let roads = load_roads(&args.map)?;
            let mut s = scenario(&args, &roads)?;
            if let Some(path) = recruits {
                let plan: simulator::plan::Plan = read_json(&path, "plan")?;
                let people = match recruit_set {
                    RecruitSet::Plan => &plan.recruits,
                    RecruitSet::Random => &plan.random_recruits,
                };
                let n = simulator::plan::add_recruits(&mut s.roster, people, plan.params.walk_kmh);
                eprintln!(
                    "simulator: {n} recruits ({recruit_set:?}) from {} added",
                    path.display()
                );
            }
            let behaviour = behaviour.params()?;
            let t = Instant::now();
            let (report, runs) = run_all(
                &s,
                &behaviour,
                roads.net.clone(),
                &{
                    let mut p = policies(radius_m);
                    if let Some(rules) = engine_policy {
                        // The engine column is the first; how it is run stays the simulator's.
                        let ours = &mut p[0].1;
                        *ours = dispatch_core::policy::PolicyConfig {
                            dispatch_batched: ours.dispatch_batched,
                            foot_profile_kmh: ours.foot_profile_kmh,
                            ..rules
                        };
                    }
                    if more_baselines {
                        p.extend(simulator::runner::more_baselines(s.roster.responders.len()));
                    }
                    p
                },
                &file_name(&args.map),
                &file_name(&args.population),
            )?;
            eprintln!(
                "simulator: {} alerts, {} policies, {:.1} s of wall time",
                s.alerts.len(),
                runs.len(),
                t.elapsed().as_secs_f64()
            );
            write_outputs(&out, &report, &runs)?;
            print!("{}", report.to_markdown());
            eprintln!(
                "simulator: wrote {}/report.json, summary.md and charts",
                out.display()
            );
        }
        Cmd::Plan {
            scenario: args,
            roster,
            add,
            walk_kmh,
            weighted,
            miss_share,
            out,
        } => {
            let roads = load_roads(&args.map)?;
            let text = std::fs::read_to_string(&args.population).with_context(|| {
                format!("reading population grid {}", args.population.display())
            })?;
            let grid = Hexgrid::parse(&text)
                .with_context(|| format!("in {}", args.population.display()))?;
            let roster_file: dispatch_core::roster::RosterFile = match &roster {
                Some(path) => read_json(path, "roster")?,
                None => scenario(&args, &roads)?.roster,
            };
            let params = simulator::plan::PlanParams {
                add,
                walk_kmh,
                seed: args.seed,
                weighted,
                miss_share,
            };
            let foot_kmh = dispatch_core::road::RoadConfig::default().foot_kmh;
            let t = Instant::now();
            let plan = simulator::plan::make_plan(
                roads.net.clone(),
                foot_kmh,
                &roster_file,
                &grid,
                &params,
                &|p| roads.snap_home(p),
            )
            .context("planning")?;
            eprintln!(
                "simulator: planned {add} recruits over {} places in {:.1} s",
                plan.candidates,
                t.elapsed().as_secs_f64()
            );
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            write_json(&out.join("plan.json"), &plan)?;
            std::fs::write(out.join("summary.md"), plan.to_markdown())?;
            let points = plan.after_points(roads.net.clone(), foot_kmh, &roster_file);
            std::fs::write(out.join("plan.svg"), plan.to_svg(&points))?;
            print!("{}", plan.to_markdown());
            eprintln!(
                "simulator: wrote {}/plan.json, summary.md and plan.svg",
                out.display()
            );
        }
        Cmd::Roster {
            scenario: args,
            roster_out,
            tokens_out,
        } => {
            let roads = load_roads(&args.map)?;
            let mut s = scenario(&args, &roads)?;
            let tokens = simulator::credentials::issue(&mut s.roster, args.seed);
            write_json(&roster_out, &s.roster)?;
            write_json(&tokens_out, &tokens)?;
            eprintln!(
                "simulator: roster with {} responders and {} elders in {}, tokens in {}",
                s.roster.responders.len(),
                s.roster.elders.len(),
                roster_out.display(),
                tokens_out.display()
            );
        }
        Cmd::Load {
            url,
            roster,
            tokens,
            responders,
            alerts,
            alerts_per_s,
            location_hz,
            accept_share,
            max_duration_s,
            grace_s,
            out,
        } => {
            simulator::load::check_loopback(&url)?;
            let roster_file: dispatch_core::roster::RosterFile = read_json(&roster, "roster")?;
            let tokens_file: simulator::credentials::Tokens = read_json(&tokens, "tokens")?;
            let params = simulator::load::LoadParams {
                url,
                responders,
                alerts,
                alerts_per_s,
                location_hz,
                accept_share,
                max_duration_s,
                grace_s,
            };
            let rt = tokio::runtime::Runtime::new().context("starting tokio")?;
            let report = rt.block_on(simulator::load::run_load(
                params,
                &roster_file,
                &tokens_file,
            ))?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            write_json(&out.join("load_report.json"), &report)?;
            std::fs::write(out.join("load_summary.md"), report.to_markdown())?;
            print!("{}", report.to_markdown());
            if report.total_errors() > 0 || report.alerts_lost > 0 {
                anyhow::bail!(
                    "{} errors, {} alerts lost",
                    report.total_errors(),
                    report.alerts_lost
                );
            }
        }
        Cmd::Live {
            url,
            roster,
            tokens,
            seed,
            alerts_per_min,
            speedup,
            max_duration_s,
            max_phones,
            gateways,
            leave_free,
            behaviour,
            connect_over_s,
            summary_every_s,
        } => {
            simulator::load::check_loopback(&url)?;
            let roster_file: dispatch_core::roster::RosterFile = read_json(&roster, "roster")?;
            let tokens_file: simulator::credentials::Tokens = read_json(&tokens, "tokens")?;
            let params = LiveParams {
                seed,
                alerts_per_min,
                speedup,
                max_duration_s,
                max_phones,
                gateways,
                leave_free,
                behaviour: {
                    anyhow::ensure!(
                        behaviour.propensity == "same",
                        "--propensity varied applies to `simulator run`; live phones answer \
                         with the preset's shares"
                    );
                    behaviour.params()?
                },
                connect_over_s,
                summary_every_s,
                ..LiveParams::new(url)
            };
            let rt = tokio::runtime::Runtime::new().context("starting tokio")?;
            let summary = rt.block_on(async {
                eprintln!(
                    "simulator live: {} alerts/min, speedup {}, until Ctrl-C or {} s",
                    params.alerts_per_min, params.speedup, params.max_duration_s
                );
                simulator::live::run_live(params, &roster_file, &tokens_file, interrupted()).await
            })?;
            eprintln!("simulator live: stopped: {}", summary.line());
        }
        Cmd::Replay {
            map,
            roster,
            input,
            speed,
            drain_s,
            out,
        } => {
            let roads = load_roads(&map)?;
            let roster_file: dispatch_core::roster::RosterFile = read_json(&roster, "roster")?;
            let lines = simulator::replay::parse(
                &std::fs::read_to_string(&input)
                    .with_context(|| format!("reading {}", input.display()))?,
            )
            .with_context(|| format!("in {}", input.display()))?;
            let last_ms = lines.last().map_or(0, |l| l.t_ms);
            let engine = dispatch_core::engine::Engine::new(
                roads.net.clone(),
                roster_file.clone(),
                dispatch_core::policy::PolicyConfig::default(),
            )
            .context("the engine refused the roster")?;
            let start = VIRTUAL_EPOCH;
            let mut world = ReplayWorld::new(lines, start);
            let mut kpis = simulator::kpi::KpiCollector::new(&roster_file);
            let mut events = Vec::new();
            let quiet = start.plus_ms(last_ms);
            let until = quiet.plus_ms((drain_s * 1000.0) as u64);
            let stats = if speed > 0.0 {
                let mut paced = Paced::new(engine, start, speed);
                simulator::virtual_clock::drive(&mut paced, &mut world, start, until, until, |r| {
                    kpis.observe(r);
                    events.push(r.clone());
                })?
            } else {
                let mut engine = engine;
                simulator::virtual_clock::drive(
                    &mut engine,
                    &mut world,
                    start,
                    until,
                    until,
                    |r| {
                        kpis.observe(r);
                        events.push(r.clone());
                    },
                )?
            };
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let mut jsonl = String::new();
            for e in &events {
                jsonl.push_str(&serde_json::to_string(e)?);
                jsonl.push('\n');
            }
            std::fs::write(out.join("events.jsonl"), jsonl)?;
            let policy = PolicyReport {
                kpis: kpis.finish(),
                commands: stats.commands,
                refusals: world.refusals.clone(),
                events: stats.events,
                virtual_duration_s: stats.stopped_at.ms_since(start) as f64 / 1000.0,
            };
            let report = Report {
                scenario: ScenarioSummary::from_roster(
                    &roster_file,
                    &file_name(&map),
                    &file_name(&input),
                ),
                behaviour: BehaviourParams::default(),
                policies: [("replay".to_string(), policy)].into_iter().collect(),
            };
            std::fs::write(out.join("report.json"), report.to_json())?;
            std::fs::write(out.join("summary.md"), report.to_markdown())?;
            print!("{}", report.to_markdown());
        }
    }
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}

/// Reads and parses a JSON input file; errors name the file and what it was meant to be.
fn read_json<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    what: &str,
) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {what} {}", path.display()))
}
