//! The dispatch engine's pure logic: no I/O, no clock, no async runtime.
//!
//! Modules in reading order:
//! - [`time`], [`ids`]: integer-millisecond timestamps and newtype ids.
//! - [`geo`]: WGS84 at the edges, metres inside; GCJ-02/BD-09 conversion.
//! - [`road`]: the OSM road graph, snapping and exact fast routing.
//! - [`model`]: the shared vocabulary (alert, service, responder kinds).
//! - [`roster`]: who exists (the roster file and its run-time changes).
//! - [`command`], [`event`], [`error`]: the engine's inputs, outputs and refusals.
//! - [`policy`]: every dispatch number (DESIGN §4) and the plan per kind of alert.
//! - [`spatial`]: the responder R-trees. [`responder`], [`incident`]: the two state machines.
//! - [`matching`]: candidates → road ETA → ranking; joint assignment for surges.
//! - [`coverage`]: live coverage of the elders by the available responders (3 and 15 minutes).
//! - [`timebank`]: volunteers' credited minutes.
//! - [`care_plan`]: care plans (routines per elder), their local calendar, the compliance report.
//! - [`engine`]: the sans-IO façade (`handle_*` in, `poll_*` out).
//! - [`sans_io`]: those calls as one trait, shared by the server, the simulator and replay.
//! - [`journal`]: the journal record codec (versioned, checksummed) and replay.
//! - [`testdata`]: where tests, benchmarks and the demo find `../shared/data/`.

pub mod care_plan;
pub mod closures;
pub mod command;
pub mod coverage;
pub mod engine;
pub mod error;
pub mod event;
pub mod geo;
pub mod ids;
pub mod incident;
pub mod journal;
pub mod matching;
pub mod model;
pub mod policy;
pub mod responder;
pub mod road;
pub mod roster;
pub mod sans_io;
pub mod serde_names;
pub mod spatial;
pub mod testdata;
pub mod time;
pub mod timebank;
