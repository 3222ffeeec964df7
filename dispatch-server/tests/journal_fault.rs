//! A disk that fails under a running server (EIO / ENOSPC on fsync): the alert whose record
//! could not be made durable is never acknowledged, later alerts are refused, and `/healthz`
//! says the journal failed. The real server and engine, the journal on a simulated disk.

mod common;

use common::{roster, token, TestServer};
use dispatch_core::command::Command;
use dispatch_core::journal::Entry;
use dispatch_server::journal::storage::{FaultOp, SimStorage};
use dispatch_server::journal::{Journal, JournalOptions};
use dispatch_server::Limits;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn alert(id: &str) -> serde_json::Value {
    json!({ "alert_id": id, "kind": "fall", "elder_id": "E1", "detected_at": 1_700_000_000_000i64 })
}

async fn fsync_failure_stops_acknowledgements_and_shows_in_healthz(kind: std::io::ErrorKind) {
    let disk = SimStorage::new();
    let (journal, _) = Journal::open_with(
        Arc::new(disk.clone()),
        Path::new("/data"),
        JournalOptions::default(),
    )
    .expect("open on the simulated disk");
    let server = TestServer::start_with(roster(), Limits::default(), Box::new(journal)).await;
    let device = token("GW1");

    let (status, body) = server
        .http("POST", "/v1/alerts", Some(&device), Some(&alert("before")))
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, _) = server.http("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);

    disk.fail(FaultOp::Sync, 0, kind);
    let (status, body) = server
        .http("POST", "/v1/alerts", Some(&device), Some(&alert("during")))
        .await;
    assert_ne!(
        status, 202,
        "an alert whose record never reached the disk was acknowledged: {body}"
    );
    let (status, body) = server
        .http("POST", "/v1/alerts", Some(&device), Some(&alert("after")))
        .await;
    assert_ne!(
        status, 202,
        "the journal failed, yet a later alert was acknowledged: {body}"
    );

    let (status, health) = server.http("GET", "/healthz", None, None).await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "failing", "{health}");
    let why = health["journal"]["failed"].as_str().unwrap_or_default();
    assert!(why.contains("fdatasync"), "{health}");

    // What was durable when the disk failed depends on scheduling: the first alert's dispatch
    // round (a timeout and its decisions, asked for at once in batched dispatch) may or may
    // not have been fsynced before the fault was injected. What holds whatever the order:
    // the durable LSN covers the acknowledged alert and none of the refused ones, and a power
    // loss keeps exactly the records up to it.
    let durable = health["journal"]["durable_lsn"]
        .as_u64()
        .unwrap_or_else(|| panic!("no durable_lsn: {health}"));
    let (_, recovered) = Journal::open_with(
        Arc::new(disk.power_loss_image(None)),
        Path::new("/data"),
        JournalOptions::default(),
    )
    .expect("recover");
    assert_eq!(
        recovered.last_lsn, durable,
        "the disk after a power loss holds exactly the records reported durable"
    );
    let alerts: Vec<(u64, String)> = recovered
        .records
        .iter()
        .filter_map(|(lsn, r)| match &r.entry {
            Entry::Command {
                command: Command::Alert(a),
                ..
            } => Some((*lsn, a.alert_id.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(
        alerts.iter().map(|(_, id)| id.as_str()).collect::<Vec<_>>(),
        ["before"],
        "only the acknowledged alert is on the disk: {alerts:?}"
    );
    // Its decisions (the record after it) were durable before its 202 was sent.
    assert!(durable > alerts[0].0, "{alerts:?}, durable {durable}");
}

#[tokio::test]
async fn eio_on_fsync() {
    fsync_failure_stops_acknowledgements_and_shows_in_healthz(std::io::ErrorKind::Other).await;
}

#[tokio::test]
async fn disk_full_on_fsync() {
    fsync_failure_stops_acknowledgements_and_shows_in_healthz(std::io::ErrorKind::StorageFull)
        .await;
}
