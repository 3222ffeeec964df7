//! The dispatch engine's pure logic: no I/O, no clock, no async runtime.
//!
//! Modules in reading order:
//! - [`time`], [`ids`]: integer-millisecond timestamps and newtype ids.
//! - [`geo`]: WGS84 at the edges, metres inside; GCJ-02/BD-09 conversion.
//! - [`road`]: the OSM road graph, snapping and exact fast routing.
//! - [`model`]: the shared vocabulary (alert, service, responder kinds).
//! - [`roster`]: who exists (the roster file and its run-time changes).
//! - [`command`], [`event`], [`error`]: the engine's inputs, outputs and refusals.
//! - [`journal`]: the journal record codec (versioned, checksummed) and replay.
//! - [`testdata`]: where tests, benchmarks and the demo find `../shared/data/`.

pub mod command;
pub mod error;
pub mod event;
pub mod geo;
pub mod ids;
pub mod journal;
pub mod model;
pub mod road;
pub mod roster;
pub mod testdata;
pub mod time;
