//! The simulator: seeded scenarios from the real map and population, virtual-time runs of the
//! same `Engine` the server runs, dispatch-quality KPIs, and load over the wire.
//!
//! Modules in reading order:
//! - [`hexgrid`]: the population grid CSV.
//! - [`scenario`]: seeded generation of people, grids, pairings and alert streams.
//! - [`virtual_clock`]: the `SansIo` calls and the clock that jumps to the next wake-up.
//! - [`behaviour`]: simulated devices and responders (keyed draws, so policies meet the same
//!   people).
//! - [`kpi`]: response-time distributions and the other KPIs from the event stream.
//! - [`report`], [`chart`]: `report.json`, `summary.md` and SVG charts.
//! - [`credentials`]: tokens for a generated roster (digests in the roster).
//! - [`replay`]: JSON-lines command files through the same calls.
//! - [`ws_client`]: the WebSocket client pieces `load` and `live` share (loopback check,
//!   connecting with bounded retries).
//! - [`load`]: load over the wire against a running server (loopback only).
//! - [`live`]: a simulated day in wall-clock time against a running server (the demo).

pub mod behaviour;
pub mod chart;
pub mod credentials;
pub mod hexgrid;
pub mod kpi;
pub mod live;
pub mod load;
pub mod plan;
pub mod replay;
pub mod report;
pub mod roads;
pub mod runner;
pub mod scenario;
pub mod virtual_clock;
pub mod ws_client;
