//! The dispatch service: WebSocket and HTTP on one port, the engine task, the journal file.
