//! Engine tests: scenarios on virtual time, refused commands, roster validation, and property
//! tests over random command sequences. `world` builds the fixtures; each module is one theme.

mod acceptance;
mod bad_commands;
mod care_levels;
mod care_plans;
mod check_ins;
mod coverage;
mod job_promises;
mod kin;
mod mixed_requests;
mod properties;
mod retire_on_job;
mod roads;
mod roster_validation;
mod scenarios;
mod transcript;
mod world;
