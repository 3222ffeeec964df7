//! Shared test harness: a real server on 127.0.0.1:0 with the real engine, a real roster with
//! real SHA-256 token digests, and tokio-tungstenite clients.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod process;

use dispatch_core::engine::Engine;
use dispatch_core::geo::LatLon;
use dispatch_core::matching::{RoadTimes, TravelTimes};
use dispatch_core::model::{ResponderKind, TravelMode};
use dispatch_core::road::{RoadConfig, RoadNetwork};
use dispatch_core::roster::{
    DeviceRecord, ElderRecord, GridRecord, OperatorRecord, ResponderRecord, RosterFile,
};
use dispatch_server::engine_task::{JournalSink, VolatileJournal};
use dispatch_server::{Config, Limits};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Failure guard for every wait: a test that would hang fails instead. Never a timing assertion.
pub const GUARD: Duration = Duration::from_secs(20);

/// Where the test world is: central Porto Alegre.
pub const CENTRE: LatLon = LatLon {
    lat: -30.0300,
    lon: -51.2200,
};

/// The real Porto Alegre road network (built once per test binary) as one server's travel
/// times: each call gives its own (a server's road closures are laid on its times only).
pub fn roads() -> Arc<dyn TravelTimes> {
    static NET: OnceLock<Arc<RoadNetwork>> = OnceLock::new();
    let net = NET
        .get_or_init(|| {
            let path = dispatch_core::testdata::porto_alegre_pbf();
            let file =
                std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let net = RoadNetwork::from_pbf(std::io::BufReader::new(file), &RoadConfig::default())
                .expect("the Porto Alegre map builds");
            Arc::new(net)
        })
        .clone();
    Arc::new(RoadTimes::new(net, RoadConfig::default().foot_kmh))
}

pub fn digest(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token of a roster id in the test roster.
pub fn token(id: &str) -> String {
    format!("secret-token-of-{id}")
}

pub fn at(dlat: f64, dlon: f64) -> LatLon {
    LatLon {
        lat: CENTRE.lat + dlat,
        lon: CENTRE.lon + dlon,
    }
}

pub fn responder(id: &str, kind: ResponderKind, mode: TravelMode, home: LatLon) -> ResponderRecord {
    ResponderRecord {
        kin_of: Vec::new(),
        id: id.into(),
        kind,
        travel_mode: mode,
        walk_kmh: None,
        home,
        grid_id: Some("G1".into()),
        skills: vec!["first_aid".into()],
        token_sha256: Some(digest(&token(id))),
    }
}

/// E1 (care level 4, paired with V1) lives at the centre; volunteers V1..V4 within ~600 m;
/// ambulance A1 about 2 km away; E2 (level 2) in grid G2 about 3 km north-east. OP1, OP2 operators;
/// GW1 a device gateway.
pub fn roster() -> RosterFile {
    RosterFile {
        regions: Vec::new(),
        grids: vec![
            GridRecord {
                id: "G1".into(),
                name: "Centro".into(),
            },
            GridRecord {
                id: "G2".into(),
                name: "Norte".into(),
            },
        ],
        responders: vec![
            responder(
                "V1",
                ResponderKind::Volunteer,
                TravelMode::Foot,
                at(0.003, 0.0),
            ),
            responder(
                "V2",
                ResponderKind::Volunteer,
                TravelMode::Foot,
                at(-0.002, 0.001),
            ),
            responder(
                "V3",
                ResponderKind::Volunteer,
                TravelMode::Foot,
                at(0.0, 0.004),
            ),
            responder(
                "V4",
                ResponderKind::Volunteer,
                TravelMode::Foot,
                at(0.005, -0.003),
            ),
            responder(
                "A1",
                ResponderKind::Ambulance,
                TravelMode::Car,
                at(0.018, 0.0),
            ),
        ],
        elders: vec![
            ElderRecord {
                id: "E1".into(),
                home: CENTRE,
                grid_id: "G1".into(),
                care_level: 4,
                paired_responders: vec!["V1".into()],
                details: Default::default(),
                care_plan: Vec::new(),
                check_in_by: None,
                family: vec!["Maria (daughter) +55 51 0000-0000".into()],
            },
            ElderRecord {
                id: "E2".into(),
                home: at(0.015, 0.025),
                grid_id: "G2".into(),
                care_level: 2,
                paired_responders: vec![],
                details: Default::default(),
                care_plan: Vec::new(),
                check_in_by: None,
                family: vec![],
            },
        ],
        operators: vec![
            OperatorRecord {
                id: "OP1".into(),
                token_sha256: digest(&token("OP1")),
                roles: None,
            },
            OperatorRecord {
                id: "OP2".into(),
                token_sha256: digest(&token("OP2")),
                roles: None,
            },
        ],
        devices: vec![DeviceRecord {
            id: "GW1".into(),
            token_sha256: digest(&token("GW1")),
        }],
    }
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(
            roster(),
            Limits::default(),
            Box::new(VolatileJournal::default()),
        )
        .await
    }

    pub async fn start_with(
        roster: RosterFile,
        limits: Limits,
        journal: Box<dyn JournalSink>,
    ) -> TestServer {
        let policy = dispatch_server::serve_cmd::server_policy(RoadConfig::default().foot_kmh);
        TestServer::start_policy(roster, limits, journal, policy).await
    }

    /// The server with its policy changed (shorter clocks, for example).
    pub async fn start_policy(
        roster: RosterFile,
        limits: Limits,
        journal: Box<dyn JournalSink>,
        policy: dispatch_core::policy::PolicyConfig,
    ) -> TestServer {
        let engine = Engine::with_travel_times(roads(), roster.clone(), policy)
            .expect("the test roster is valid");
        let config = Config {
            engine: Box::new(engine),
            roster,
            journal,
            limits,
            site: Default::default(),
        };
        TestServer::start_config(config).await
    }

    /// A server running elsewhere (a `dispatch serve` child process) at `addr`: the same
    /// helpers; `stop` does nothing (the test ends the process).
    pub fn external(addr: SocketAddr) -> TestServer {
        TestServer {
            addr,
            stop: None,
            join: None,
        }
    }

    /// Serves a ready configuration (for example `serve_cmd::open`'s) on 127.0.0.1:0.
    pub async fn start_config(config: Config) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let join = tokio::spawn(dispatch_server::run(config, listener, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            join: Some(join),
        }
    }

    /// Stops the server and checks it stopped cleanly.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(j) = self.join.take() {
            tokio::time::timeout(GUARD, j)
                .await
                .expect("server stops")
                .expect("server task")
                .expect("server ran cleanly");
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    /// Connects with `id`'s token in the Authorization header and reads the welcome.
    pub async fn connect(&self, id: &str) -> Client {
        self.connect_with(id, &token(id)).await
    }

    /// The HTTP status of a WebSocket upgrade with `token` (101 when it is accepted).
    pub async fn upgrade_status(&self, token: &str) -> u16 {
        let mut req = self.ws_url().into_client_request().expect("request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        match tokio::time::timeout(GUARD, tokio_tungstenite::connect_async(req))
            .await
            .expect("connect in time")
        {
            Ok((_, resp)) => resp.status().as_u16(),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("upgrade failed: {e}"),
        }
    }

    /// Connects as `id` with `token` and reads the welcome.
    pub async fn connect_with(&self, id: &str, token: &str) -> Client {
        let mut req = self.ws_url().into_client_request().expect("request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let (ws, resp) = tokio::time::timeout(GUARD, tokio_tungstenite::connect_async(req))
            .await
            .expect("connect in time")
            .expect("connect");
        assert_eq!(resp.status(), 101);
        let mut c = Client {
            ws,
            id: id.to_string(),
        };
        let w = c.recv().await;
        assert_eq!(w["type"], "welcome", "{w}");
        assert_eq!(w["id"], id);
        c
    }

    /// One HTTP request; returns the status and the body as JSON (or a string).
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let (status, text) = self.http_text(method, path, token, body).await;
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    /// `POST /v1/alerts` with `id`'s token.
    pub async fn post_alert(&self, id: &str, alert: &Value) -> (u16, Value) {
        self.http("POST", "/v1/alerts", Some(&token(id)), Some(alert))
            .await
    }

    pub async fn http_text(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).await.expect("tcp");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = Vec::new();
        tokio::time::timeout(GUARD, s.read_to_end(&mut out))
            .await
            .expect("response in time")
            .expect("read");
        let text = String::from_utf8_lossy(&out).into_owned();
        let status: u16 = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let (head, body) = text.split_once("\r\n\r\n").expect("head/body");
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        (status, body)
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// A WebSocket client.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub id: String,
}

impl Client {
    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// The next text frame as JSON (fails on close or timeout).
    pub async fn recv(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(GUARD, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no frame in time", self.id))
                .unwrap_or_else(|| panic!("{}: closed", self.id))
                .expect("frame");
            match m {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
                Message::Close(c) => panic!("{}: closed {c:?}", self.id),
                _ => continue,
            }
        }
    }

    /// Reads frames until one has `type` = `ty` and passes `pred`; returns it and what was
    /// skipped.
    pub async fn recv_until(
        &mut self,
        ty: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> (Value, Vec<Value>) {
        let mut skipped = Vec::new();
        loop {
            let v = self.recv().await;
            if v["type"] == ty && pred(&v) {
                return (v, skipped);
            }
            skipped.push(v);
        }
    }

    /// Sends a request with an id and returns the reply carrying `re` = that id (other frames
    /// read meanwhile are returned too).
    pub async fn request(&mut self, mut v: Value, id: &str) -> (Value, Vec<Value>) {
        v["id"] = json!(id);
        self.send(v).await;
        let mut other = Vec::new();
        loop {
            let r = self.recv().await;
            if r["re"] == id {
                return (r, other);
            }
            other.push(r);
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn closed_with(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(GUARD, self.ws.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(c))) => return c.map(|c| u16::from(c.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }
}

/// A fall alert from GW1 for `elder`.
pub fn fall(alert_id: &str, elder: &str) -> Value {
    json!({"type": "alert", "alert_id": alert_id, "kind": "fall", "elder_id": elder, "detected_at": 1_700_000_000_000i64})
}

/// Writes `roster` as `dir/roster.json`.
pub fn write_roster(
    dir: &std::path::Path,
    roster: &dispatch_core::roster::RosterFile,
) -> std::path::PathBuf {
    let path = dir.join("roster.json");
    std::fs::write(&path, serde_json::to_string(roster).unwrap()).unwrap();
    path
}

/// `dispatch serve`'s arguments for a data directory under `dir` on 127.0.0.1:0.
pub fn serve_args(
    dir: &std::path::Path,
    map: std::path::PathBuf,
    roster: std::path::PathBuf,
) -> dispatch_server::serve_cmd::ServeArgs {
    dispatch_server::serve_cmd::ServeArgs {
        map,
        roster,
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".into(),
        limits: dispatch_server::serve_cmd::LimitArgs {
            max_connections: 100,
            ..Default::default()
        },
        recover_to_corruption: false,
        snapshot_every: 100_000,
        snapshot_after_s: 600,
        config: None,
        cluster: Default::default(),
    }
}

/// Starts `dispatch serve`'s configuration (real map, real journal in `dir`) on 127.0.0.1:0.
pub async fn serve_from(args: &dispatch_server::serve_cmd::ServeArgs) -> TestServer {
    let config = dispatch_server::serve_cmd::open(args).expect("opens");
    TestServer::start_config(config).await
}

/// A real `dispatch serve` child process on 127.0.0.1:0 (its stderr log kept and echoed),
/// killed with SIGKILL when dropped: no clean stop, no final snapshot.
pub struct Served {
    child: std::process::Child,
    pub server: TestServer,
    /// Its log lines (stderr), as they come.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Served {
    /// Starts `dispatch serve` on the real map with `roster` and `data_dir`, plus `extra`
    /// arguments (for example `--config FILE`), and waits until it listens.
    pub fn start(
        data_dir: &std::path::Path,
        roster: &std::path::Path,
        extra: &[&std::ffi::OsStr],
    ) -> Served {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = process::serve_command(data_dir, roster, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dispatch serve");
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                eprintln!("{line}");
                kept.lock().unwrap().push(line);
            }
        });
        let addr = process::listening_address(&mut child);
        Served {
            child,
            server: TestServer::external(addr.parse().expect("a socket address")),
            log,
        }
    }

    /// Waits (up to 5 s) for a log line containing `text`.
    pub async fn logged(&self, text: &str) -> bool {
        for _ in 0..100 {
            if self.log.lock().unwrap().iter().any(|l| l.contains(text)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
