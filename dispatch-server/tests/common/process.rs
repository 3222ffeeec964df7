//! Process-level harness for the crash and cluster drills: `dispatch serve` as a real child
//! process (killed with SIGKILL when dropped), a roster on the real road network, and a
//! minimal HTTP/1.1 client of its own (the drills must not depend on the server's code).
//! Included by path (`#[path = "common/process.rs"] mod process;`).

#![allow(dead_code)] // each drill uses a different part

use sha2::{Digest, Sha256};
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const DEVICE_TOKEN: &str = "drill-device-token";
pub const OPERATOR_TOKEN: &str = "drill-operator-token";

/// Volunteer `v{i}`'s phone token.
pub fn responder_token(i: usize) -> String {
    format!("drill-responder-{i}")
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// `elders` elders on a grid around central Porto Alegre (on the road network), ten
/// volunteers, one device, one operator.
pub fn write_roster(path: &Path, elders: usize) {
    let elders: Vec<serde_json::Value> = (0..elders)
        .map(|i| {
            let lat = -30.035 + (i % 8) as f64 * 0.002;
            let lon = -51.215 + (i / 8) as f64 * 0.002;
            serde_json::json!({ "id": format!("e{i}"), "home": { "lat": lat, "lon": lon }, "grid_id": "g1", "care_level": 1 + (i % 5) })
        })
        .collect();
    let responders: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            serde_json::json!({
                "id": format!("v{i}"), "kind": "volunteer", "travel_mode": if i % 2 == 0 { "foot" } else { "car" },
                "home": { "lat": -30.033 + i as f64 * 0.001, "lon": -51.212 },
                "token_sha256": sha256_hex(&responder_token(i)),
            })
        })
        .collect();
    let roster = serde_json::json!({
        "grids": [{ "id": "g1", "name": "centro" }],
        "responders": responders,
        "elders": elders,
        "operators": [{ "id": "op1", "token_sha256": sha256_hex(OPERATOR_TOKEN) }],
        "devices": [{ "id": "gw1", "token_sha256": sha256_hex(DEVICE_TOKEN) }],
    });
    std::fs::write(
        path,
        serde_json::to_vec_pretty(&roster).expect("roster json"),
    )
    .expect("write roster");
}

/// Flags for a durability or cluster drill, not a rate test: its load exceeds a device's
/// `POST /v1/alerts` rate (50/s) on purpose.
pub const NO_ALERT_RATE_LIMIT: [&str; 4] = [
    "--http-rate-per-s",
    "1000000",
    "--http-rate-burst",
    "1000000",
];

/// The `dispatch serve` command on 127.0.0.1:0 with the Porto Alegre map, `roster`,
/// `data_dir` and `extra` flags (stdio left to the caller).
pub fn serve_command(data_dir: &Path, roster: &Path, extra: &[impl AsRef<OsStr>]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dispatch"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--map"])
        .arg(dispatch_core::testdata::porto_alegre_pbf())
        .arg("--roster")
        .arg(roster)
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "warn");
    command
}

/// The address a `dispatch serve` started with piped stdout says it listens on. Read on a
/// thread, so a server that never says it fails the test after a bound instead of hanging it;
/// the thread then keeps draining stdout so the server never blocks on a full pipe.
pub fn listening_address(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("http://").nth(1) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(rest.split_whitespace().next().map(str::to_string));
                }
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Some(addr)) => addr,
        _ => {
            let _ = child.kill();
            let status = child.wait().expect("wait");
            panic!("dispatch serve did not say where it listens within 120 s: {status}");
        }
    }
}

/// A running `dispatch serve`.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    /// `dispatch serve` on 127.0.0.1:0 with the Porto Alegre map, `roster`, `data_dir` and
    /// `extra` flags; returns once it prints the address it listens on.
    pub fn start(data_dir: &Path, roster: &Path, extra: &[OsString]) -> Server {
        let mut child = serve_command(data_dir, roster, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn dispatch serve");
        let addr = listening_address(&mut child);
        Server { child, addr }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGKILL (std's `kill` on Unix); harmless if already dead.
        self.kill();
    }
}

/// A minimal HTTP/1.1 keep-alive client.
pub struct Http {
    stream: TcpStream,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The status line and headers, as received.
    pub head: String,
    pub body: serde_json::Value,
}

impl Response {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        let name = format!("{}:", name.to_ascii_lowercase());
        self.head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with(&name)
                .then(|| l[name.len()..].trim().to_string())
        })
    }
}

impl Http {
    pub fn connect(addr: &str) -> std::io::Result<Http> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(Http { stream })
    }

    /// A fall alert from the roster's device for elder `e{elder}`.
    pub fn post_alert(&mut self, alert_id: &str, elder: usize) -> std::io::Result<Response> {
        let body = serde_json::json!({
            "alert_id": alert_id, "kind": "fall", "elder_id": format!("e{elder}"), "detected_at": 1_700_000_000_000i64,
        })
        .to_string();
        let req = format!(
            "POST /v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {DEVICE_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.write_all(req.as_bytes())?;
        self.read_response()
    }

    /// `POST path` with a JSON body, with the operator's token.
    pub fn post(&mut self, path: &str, body: &str) -> std::io::Result<Response> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.write_all(req.as_bytes())?;
        self.read_response()
    }

    /// `GET path`, with the operator's token.
    pub fn get(&mut self, path: &str) -> std::io::Result<Response> {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR_TOKEN}\r\n\r\n"
        );
        self.stream.write_all(req.as_bytes())?;
        self.read_response()
    }

    fn read_response(&mut self) -> std::io::Result<Response> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if self.stream.read(&mut byte)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let len = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>())
            })
            .and_then(Result::ok)
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body)?;
        let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        Ok(Response { status, head, body })
    }
}

/// Sends every acknowledged alert `(alert id, elder, incident)` again to the server at `addr`:
/// each must come back `202`, `duplicate: true`, of the same incident (`what` says where the
/// acknowledgement came from, for the failure message).
pub fn assert_resends_are_duplicates<'a>(
    addr: &str,
    acks: impl IntoIterator<Item = (&'a String, usize, u64)>,
    what: &str,
) {
    let mut http = Http::connect(addr).expect("connect for the resends");
    for (alert_id, elder, incident) in acks {
        let r = http.post_alert(alert_id, elder).expect("resend");
        assert_eq!(
            r.status, 202,
            "{what}: resend of acknowledged {alert_id}: {r:?}"
        );
        assert_eq!(
            r.body["duplicate"], true,
            "{what}: acknowledged alert {alert_id} was lost: {r:?}"
        );
        assert_eq!(
            r.body["incident_id"].as_u64(),
            Some(incident),
            "{what}: {alert_id} changed incident: {r:?}"
        );
    }
}
