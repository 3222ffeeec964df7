//! Figures for benches/README.md (issue 14): a well-behaved device's alert acknowledgement
//! latency (WebSocket, 25 alerts/s) with no flood, during a flood of 1,000 idle connections,
//! and during another device's over-rate `POST /v1/alerts` flood. Loopback only, bounded.
//!
//! `cargo run --release -p dispatch-server --example limits_figures`

use dispatch_server::serve_cmd::{LimitArgs, ServeArgs};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const ALERTS: usize = 200;
const PACE: Duration = Duration::from_millis(40);
const FLOOD: usize = 1_000;

fn digest(t: &str) -> String {
    hex::encode(Sha256::digest(t.as_bytes()))
}

fn roster() -> Value {
    json!({
        "grids": [{"id": "G1", "name": "Centro"}],
        "elders": [{"id": "E1", "home": {"lat": -30.03, "lon": -51.22}, "grid_id": "G1", "care_level": 3}],
        "operators": [{"id": "OP1", "token_sha256": digest("op1")}],
        "devices": [
            {"id": "GWA", "token_sha256": digest("gwa")},
            {"id": "GWB", "token_sha256": digest("gwb")}
        ]
    })
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Device A sends `ALERTS` alerts at `PACE` on one session; returns sorted ack latencies.
async fn device_a(addr: SocketAddr, phase: &str) -> Vec<Duration> {
    let mut req = format!("ws://{addr}/v1/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer gwa".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    let _welcome = ws.next().await;
    let mut out = Vec::with_capacity(ALERTS);
    let mut tick = tokio::time::interval(PACE);
    for i in 0..ALERTS {
        tick.tick().await;
        let alert = json!({"type": "alert", "id": i, "alert_id": format!("{phase}-{i}"), "kind": "fall",
            "elder_id": "E1", "detected_at": 1_700_000_000_000i64});
        let sent = Instant::now();
        ws.send(Message::text(alert.to_string()))
            .await
            .expect("send");
        loop {
            let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
                .await
                .expect("ack in time")
                .expect("open")
                .expect("frame");
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["re"] == json!(i) {
                    assert_eq!(v["type"], "alert_accepted", "{v}");
                    break;
                }
            }
        }
        out.push(sent.elapsed());
    }
    out.sort();
    out
}

async fn post(addr: SocketAddr, body: &str) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return 0;
    };
    let req = format!("POST /v1/alerts HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer gwb\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    if s.write_all(req.as_bytes()).await.is_err() {
        return 0;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn row(name: &str, l: &[Duration], extra: &str) {
    println!(
        "| {name} | {} | {:.1} | {:.1} | {:.1} | {extra} |",
        l.len(),
        pct(l, 0.50).as_secs_f64() * 1e3,
        pct(l, 0.99).as_secs_f64() * 1e3,
        l[l.len() - 1].as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let roster_path = dir.path().join("roster.json");
    std::fs::write(&roster_path, roster().to_string())?;
    let args = ServeArgs {
        map: dispatch_core::testdata::porto_alegre_pbf(),
        roster: roster_path,
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".into(),
        limits: LimitArgs {
            max_connections: 200,
            max_unauthenticated_per_ip: 50,
            ..LimitArgs::default()
        },
        recover_to_corruption: false,
        snapshot_every: 1_000,
        snapshot_after_s: 600,
        config: None,
        cluster: Default::default(),
    };
    let config = dispatch_server::serve_cmd::open(&args)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dispatch_server::run(config, listener, async move {
        let _ = stopped.await;
    }));

    println!("| phase | alerts | p50 ms | p99 ms | max ms | flood |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let base = device_a(addr, "base").await;
    row("no flood", &base, "-");

    // 1,000 idle connections held during the phase.
    let flood = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..FLOOD {
            if let Ok(s) = TcpStream::connect(addr).await {
                held.push(s);
            }
        }
        held
    });
    let idle = device_a(addr, "idle").await;
    let held = flood.await?;
    row(
        "idle-connection flood",
        &idle,
        &format!("{} idle connections opened", held.len()),
    );
    drop(held);

    // Device B floods POST /v1/alerts from 8 tasks, as fast as answers come.
    let going = Arc::new(AtomicBool::new(true));
    let (ok, limited) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (going, ok, limited) = (going.clone(), ok.clone(), limited.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while going.load(Ordering::Relaxed) && n < 100_000 {
                    n += 1;
                    let body = json!({"alert_id": format!("b-{t}-{n}"), "kind": "fall", "elder_id": "E1", "detected_at": 1_700_000_000_000i64}).to_string();
                    match post(addr, &body).await {
                        202 => ok.fetch_add(1, Ordering::Relaxed),
                        429 => limited.fetch_add(1, Ordering::Relaxed),
                        _ => 0,
                    };
                }
            })
        })
        .collect();
    let rate = device_a(addr, "rate").await;
    going.store(false, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    row(
        "another device's over-rate HTTP flood",
        &rate,
        &format!(
            "device B: {} accepted (202), {} refused (429)",
            ok.load(Ordering::Relaxed),
            limited.load(Ordering::Relaxed)
        ),
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}
