//! The dispatch service: WebSocket and HTTP on one port, the engine task, the journal file.

pub mod export_cmd;
pub mod journal_file;
pub mod journal_recover;
pub mod journal_storage;
#[cfg(test)]
mod journal_tests;
