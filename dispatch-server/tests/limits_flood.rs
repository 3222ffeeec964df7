//! A flood of idle TCP connections (issue 14's first attack, in a short form for CI): the
//! server's limits are set low to match (200 connections, 50 unauthenticated per address),
//! 1,000 idle connections from 127.0.0.1 arrive while a device keeps sending alerts on its
//! open session, an operator stays subscribed and the journal snapshots every 10 records
//! (so snapshots fall inside the flood). Every alert is acknowledged, `/healthz` answers,
//! the journal does not fail, and after the flood new clients are accepted.

mod common;

use common::{fall, TestServer, GUARD};
use dispatch_server::journal::{Journal, JournalOptions};
use dispatch_server::Limits;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

const FLOOD: usize = 1_000;
const ALERTS: usize = 60;

fn snapshots(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .expect("data dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".snap"))
        .count()
}

#[tokio::test]
async fn an_idle_connection_flood_does_not_stop_alerts_healthz_or_new_clients() {
    // The flood's sockets are this process's too.
    let _ = dispatch_server::fd_limits::raise_and_size(usize::MAX, 0);
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(
        dir.path(),
        JournalOptions {
            snapshot_every: 10,
            ..JournalOptions::default()
        },
    )
    .expect("journal");
    let limits = Limits {
        max_connections: 200,
        max_unauthenticated_per_ip: 50,
        // Longer than the test's guard: only shedding (not the timeout) can make room, so
        // this test fails if shedding does not work.
        handshake_timeout: Duration::from_secs(120),
        ..Limits::default()
    };
    let server = TestServer::start_with(common::roster(), limits, Box::new(journal)).await;
    let mut op = server.connect("OP1").await;
    op.request(json!({"type": "subscribe"}), "s").await;
    let mut gw = server.connect("GW1").await;
    let snapshots_before = snapshots(dir.path());

    // The flood: 1,000 connections that say nothing, held until the end.
    let addr = server.addr;
    let flood = tokio::spawn(async move {
        let mut held = Vec::with_capacity(FLOOD);
        for _ in 0..FLOOD {
            match tokio::time::timeout(GUARD, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => held.push(s),
                Ok(Err(e)) => panic!("connect: {e}"),
                Err(_) => panic!("connect timed out"),
            }
            tokio::task::yield_now().await;
        }
        held
    });

    let mut worst = Duration::ZERO;
    for i in 0..ALERTS {
        let sent = Instant::now();
        let elder = if i % 2 == 0 { "E1" } else { "E2" };
        let (r, _) = gw
            .request(fall(&format!("flood-{i}"), elder), &format!("a{i}"))
            .await;
        worst = worst.max(sent.elapsed());
        assert_eq!(
            r["type"], "alert_accepted",
            "alert {i} during the flood: {r}"
        );
        if i % 10 == 0 {
            let (s, h) = server.http("GET", "/healthz", None, None).await;
            assert_eq!((s, h["status"].as_str()), (200, Some("ok")), "{h}");
        }
    }
    let held = tokio::time::timeout(GUARD, flood)
        .await
        .expect("the flood ends")
        .expect("flood task");
    assert_eq!(held.len(), FLOOD);
    // Still during the flood (the sockets are held): health, and the operator's stream.
    let (s, h) = server.http("GET", "/healthz", None, None).await;
    assert_eq!((s, h["status"].as_str()), (200, Some("ok")), "{h}");
    assert!(h["journal"]["failed"].is_null(), "{h}");
    let (opened, _) = op.recv_until("incident_opened", |_| true).await;
    assert_eq!(opened["type"], "incident_opened");
    let (pong, _) = op.request(json!({"type": "ping"}), "p").await;
    assert_eq!(pong["type"], "pong");
    assert!(
        snapshots(dir.path()) >= 1 && snapshots_before == 0,
        "a snapshot was written during the flood"
    );
    eprintln!("worst alert acknowledgement during the flood: {worst:?}");
    drop(held);
    // After the flood: new clients are accepted.
    let mut gw2 = server.connect("GW1").await;
    let (r, _) = gw2.request(fall("after-flood", "E1"), "after").await;
    assert_eq!(r["type"], "alert_accepted", "{r}");
    let (s, _) = server.http("GET", "/healthz", None, None).await;
    assert_eq!(s, 200);
    server.stop().await;
}
