//! Cluster mode's fault drills (issue 16, docs/cluster.md), on loopback: three real
//! `nats-server` processes clustered with JetStream (`sync_interval: always`), real
//! `dispatch serve --nats` processes, real HTTP clients posting alerts with unique ids and
//! recording every acknowledgement, and real signals (SIGKILL, SIGSTOP/SIGCONT).
//!
//! After every drill each acknowledged alert is sent again to the engine now active: it must
//! answer `duplicate: true` with the same incident. An acknowledgement the new engine does not
//! know is a lost alert; one the old engine gave after losing the region would be one too.
//!
//! The NATS server: `NATS_SERVER_BIN`, else `scripts/nats-server.sh` (installs the pinned
//! release when missing).

#[path = "common/process.rs"]
mod process;

use process::{
    assert_resends_are_duplicates, responder_token, write_roster, Http, Server, NO_ALERT_RATE_LIMIT,
};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ELDERS: usize = 40;
/// Every wait is bounded by this: a drill that would hang fails instead.
const GUARD: Duration = Duration::from_secs(60);
/// The lease in the drills (`--lease-ms`); `DISPATCH_DRILL_LEASE_MS` sets another (the
/// takeover figures in benches/README.md use the default, 3,000).
fn lease_ms() -> u64 {
    std::env::var("DISPATCH_DRILL_LEASE_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000)
}

fn nats_server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/nats-server.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/nats-server.sh");
    assert!(
        out.status.success(),
        "scripts/nats-server.sh could not provide nats-server"
    );
    PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim())
}

/// The name of the NATS server leading the region's stream, asked of any live server.
fn stream_leader(nats: &Nats) -> Option<String> {
    let urls: Vec<async_nats::ServerAddr> = nats
        .live_urls()
        .iter()
        .map(|u| u.parse().expect("a NATS url"))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        tokio::time::timeout(GUARD, async {
            let client = async_nats::connect(urls).await.ok()?;
            let js = async_nats::jetstream::new(client);
            loop {
                if let Ok(mut stream) = js.get_stream("DISPATCH_R0").await {
                    if let Ok(info) = stream.info().await {
                        if let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone()) {
                            return Some(leader);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .ok()
        .flatten()
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Three clustered NATS servers with JetStream on loopback.
struct Nats {
    bin: PathBuf,
    dir: PathBuf,
    clients: Vec<u16>,
    routes: Vec<u16>,
    children: Vec<Option<Child>>,
}

impl Nats {
    fn start(dir: &Path) -> Nats {
        let mut n = Nats {
            bin: nats_server_bin(),
            dir: dir.to_path_buf(),
            clients: (0..3).map(|_| free_port()).collect(),
            routes: (0..3).map(|_| free_port()).collect(),
            children: vec![None, None, None],
        };
        for i in 0..3 {
            n.start_one(i);
        }
        n
    }

    fn start_one(&mut self, i: usize) {
        let routes: Vec<String> = (0..3)
            .filter(|&j| j != i)
            .map(|j| format!("nats-route://127.0.0.1:{}", self.routes[j]))
            .collect();
        let store = self.dir.join(format!("n{i}"));
        let conf = format!(
            "server_name: n{i}\nlisten: 127.0.0.1:{}\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\ncluster {{\n  name: drill\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
            self.clients[i],
            store.display(),
            self.routes[i],
            routes.join(", ")
        );
        let path = self.dir.join(format!("n{i}.conf"));
        std::fs::write(&path, conf).expect("write nats config");
        let log = std::fs::File::create(self.dir.join(format!("n{i}.log"))).expect("nats log");
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nats-server");
        self.children[i] = Some(child);
        let deadline = Instant::now() + GUARD;
        while TcpStream::connect(("127.0.0.1", self.clients[i])).is_err() {
            assert!(Instant::now() < deadline, "nats-server n{i} never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The client URLs of the servers still running.
    fn live_urls(&self) -> Vec<String> {
        (0..3)
            .filter(|&i| self.children[i].is_some())
            .map(|i| format!("nats://127.0.0.1:{}", self.clients[i]))
            .collect()
    }

    fn urls(&self) -> String {
        self.clients
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill(i);
        }
    }
}

fn start_node(name: &str, nats: &Nats, dir: &Path, roster: &Path) -> Server {
    start_node_with(name, nats, dir, roster, &[])
}

fn start_node_with(name: &str, nats: &Nats, dir: &Path, roster: &Path, more: &[&str]) -> Server {
    let mut extra: Vec<OsString> = [
        "--nats",
        &nats.urls(),
        "--node",
        name,
        "--lease-ms",
        &lease_ms().to_string(),
    ]
    .into_iter()
    .chain(NO_ALERT_RATE_LIMIT)
    .map(OsString::from)
    .collect();
    extra.extend(more.iter().map(OsString::from));
    Server::start(&dir.join(name), roster, &extra)
}

/// The node's role for region 0 as `/healthz` says it (`None`: no answer).
fn role(addr: &str) -> Option<String> {
    let mut http = Http::connect(addr).ok()?;
    let r = http.get("/healthz").ok()?;
    r.body["cluster"]["regions"][0]["role"]
        .as_str()
        .map(str::to_string)
}

/// Whether the process is still running (not exited, not a zombie waiting to be reaped).
fn alive(server: &Server) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", server.child.id()))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|rest| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

fn wait_role(server: &Server, want: &str) {
    let deadline = Instant::now() + GUARD;
    loop {
        if role(&server.addr).as_deref() == Some(want) {
            return;
        }
        // A node that exited (75: it stepped down) while the drill expected it to serve: say
        // so, rather than time out — a spurious step-down is a finding, not a slow node.
        assert!(
            alive(server),
            "node at {} exited while it should become {want} (a spurious step-down?)",
            server.addr
        );
        assert!(
            Instant::now() < deadline,
            "node at {} never became {want} (last: {:?})",
            server.addr,
            role(&server.addr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// alert id → (elder, incident) for every acknowledgement a client received, and which node
/// gave it.
type Acks = Arc<Mutex<BTreeMap<String, (usize, u64, String)>>>;

/// Posts alerts with unique ids, one at a time, to whichever node answers: on a refused
/// connection or a 503 it tries the next node with the same alert (a resend after a lost
/// answer may come back `duplicate: true`, of the incident the first attempt made).
fn load(client: u64, nodes: Arc<Mutex<Vec<String>>>, acks: Acks, stop: Arc<AtomicBool>) {
    let mut sent = 0u64;
    let mut at = 0usize;
    let mut http: Option<Http> = None;
    while !stop.load(Ordering::Relaxed) {
        sent += 1;
        let alert_id = format!("c{client}-{sent}");
        let elder = ((client * 7 + sent) % ELDERS as u64) as usize;
        let deadline = Instant::now() + GUARD;
        loop {
            assert!(
                Instant::now() < deadline,
                "alert {alert_id} was never acknowledged by any node"
            );
            let addr = {
                let n = nodes.lock().expect("nodes");
                n[at % n.len()].clone()
            };
            if http.is_none() {
                http = Http::connect(&addr).ok();
            }
            let answer = http.as_mut().map(|h| h.post_alert(&alert_id, elder));
            match answer {
                Some(Ok(r)) if r.status == 202 => {
                    let incident = r.body["incident_id"].as_u64().expect("incident_id");
                    acks.lock()
                        .expect("acks")
                        .insert(alert_id.clone(), (elder, incident, addr));
                    break;
                }
                Some(Ok(r)) if r.status == 503 => {}
                Some(Ok(r)) => panic!("alert {alert_id} refused by {addr}: {r:?}"),
                Some(Err(_)) | None => {}
            }
            // Not acknowledged here: the next node, after a moment.
            http = None;
            at += 1;
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

struct Load {
    acks: Acks,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(nodes: &[&Server], clients: u64) -> Load {
        let addrs = Arc::new(Mutex::new(
            nodes.iter().map(|s| s.addr.clone()).collect::<Vec<_>>(),
        ));
        Load::start_on(addrs, clients)
    }

    /// Load on a list of addresses the drill may change (a restarted node listens elsewhere).
    fn start_on(addrs: Arc<Mutex<Vec<String>>>, clients: u64) -> Load {
        let acks: Acks = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|c| {
                let (addrs, acks, stop) = (addrs.clone(), acks.clone(), stop.clone());
                std::thread::spawn(move || load(c, addrs, acks, stop))
            })
            .collect();
        Load {
            acks,
            stop,
            threads,
        }
    }

    fn count(&self) -> usize {
        self.acks.lock().expect("acks").len()
    }

    fn count_from(&self, addr: &str) -> usize {
        self.acks
            .lock()
            .expect("acks")
            .values()
            .filter(|(_, _, a)| a == addr)
            .count()
    }

    /// Waits until `f` holds (bounded by GUARD).
    fn until(&self, what: &str, f: impl Fn(&Load) -> bool) {
        let deadline = Instant::now() + GUARD;
        while !f(self) {
            assert!(Instant::now() < deadline, "load: never {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(self) -> BTreeMap<String, (usize, u64, String)> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("load client");
        }
        let acks = self.acks.lock().expect("acks").clone();
        acks
    }
}

/// Every acknowledged alert, sent again to `active`: `duplicate: true` of the same incident.
fn assert_all_known(active: &Server, acks: &BTreeMap<String, (usize, u64, String)>) {
    assert_resends_are_duplicates(
        &active.addr,
        acks.iter()
            .map(|(id, (elder, incident, _))| (id, *elder, *incident)),
        "after the takeover (the engine now active)",
    );
}

/// (responder, incident) for every `assigned` frame a phone received.
type Assignments = Arc<Mutex<Vec<(usize, u64)>>>;

/// Volunteer `v{i}`'s phone: a WebSocket to whichever node takes it (a standby answers with an
/// `unavailable` frame and closes: the phone tries the next node), on duty until first
/// assigned, accepting every offer, never finishing a job. So a volunteer may rightly be
/// assigned to one incident only, whatever engine assigns them.
fn phone(
    i: usize,
    nodes: Arc<Mutex<Vec<String>>>,
    assignments: Assignments,
    stop: Arc<AtomicBool>,
) {
    use tokio_tungstenite::tungstenite::{connect, Message};
    let mut at = i;
    let mut assigned_once = false;
    while !stop.load(Ordering::Relaxed) {
        let addr = {
            let n = nodes.lock().expect("nodes");
            n[at % n.len()].clone()
        };
        at += 1;
        let url = format!("ws://{addr}/v1/ws?access_token={}", responder_token(i));
        let Ok((mut ws, _)) = connect(url.as_str()) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if let tokio_tungstenite::tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        }
        if !assigned_once {
            let on = r#"{"type":"availability","id":"on","status":"available"}"#;
            if ws.send(Message::text(on)).is_err() {
                continue;
            }
        }
        while !stop.load(Ordering::Relaxed) {
            let frame = match ws.read() {
                Ok(Message::Text(t)) => t,
                Ok(Message::Close(_)) => break,
                Ok(_) => continue,
                Err(tokio_tungstenite::tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(_) => break,
            };
            let v: serde_json::Value = serde_json::from_str(frame.as_str()).expect("a JSON frame");
            match v["type"].as_str() {
                Some("offer") => {
                    let accept =
                        serde_json::json!({"type": "accept", "id": "a", "offer_id": v["offer_id"]});
                    if ws.send(Message::text(accept.to_string())).is_err() {
                        break;
                    }
                }
                Some("assigned") => {
                    assigned_once = true;
                    let incident = v["incident_id"].as_u64().expect("incident_id");
                    assignments.lock().expect("assignments").push((i, incident));
                }
                Some("error") if v["code"] == "unavailable" => break,
                _ => {}
            }
        }
    }
}

/// Every volunteer was assigned to one incident at most (phones re-told their assignment after
/// a reconnect say the same incident again), and assignments happened at all.
fn assert_no_one_on_two_incidents(assignments: &Assignments, at_least: usize) {
    let a = assignments.lock().expect("assignments");
    let mut by: BTreeMap<usize, std::collections::BTreeSet<u64>> = BTreeMap::new();
    for (responder, incident) in a.iter() {
        by.entry(*responder).or_default().insert(*incident);
    }
    for (responder, incidents) in &by {
        assert_eq!(
            incidents.len(),
            1,
            "volunteer v{responder} was assigned to several incidents: {incidents:?}"
        );
    }
    assert!(
        by.len() >= at_least,
        "only {} volunteers were assigned: the drill proves too little",
        by.len()
    );
}

/// One drill at a time: each runs three NATS servers and two engines on a two-core machine,
/// and a starved engine that misses its lease would turn one drill into another.
static SERIAL: Mutex<()> = Mutex::new(());

type Serial = std::sync::MutexGuard<'static, ()>;

/// Bind the guard first (`let (_serial, …)`): it is then dropped last, after the engines.
fn setup() -> (Serial, tempfile::TempDir, PathBuf, Nats) {
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let roster = dir.path().join("roster.json");
    write_roster(&roster, ELDERS);
    let nats = Nats::start(dir.path());
    (serial, dir, roster, nats)
}

/// Drill 1: kill -9 the active engine while devices stream alerts. Short in CI (one
/// takeover); `DISPATCH_DRILL_TAKEOVERS=10` repeats it (the killed node restarted as a standby
/// each time) and prints the takeover times: from the kill to the first alert acknowledged by
/// the new active engine.
#[test]
fn drill_1_kill_9_the_active_engine_a_standby_takes_over_and_loses_nothing() {
    let takeovers: usize = std::env::var("DISPATCH_DRILL_TAKEOVERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let (_serial, dir, roster, nats) = setup();
    let mut nodes = vec![start_node("a", &nats, dir.path(), &roster)];
    wait_role(&nodes[0], "active");
    nodes.push(start_node("b", &nats, dir.path(), &roster));
    wait_role(&nodes[1], "standby");
    let addrs = Arc::new(Mutex::new(vec![
        nodes[0].addr.clone(),
        nodes[1].addr.clone(),
    ]));
    let load = Load::start_on(addrs.clone(), 4);
    let assignments: Assignments = Arc::default();
    let phones: Vec<_> = (0..10)
        .map(|i| {
            let (addrs, assignments, stop) =
                (addrs.clone(), assignments.clone(), load.stop.clone());
            std::thread::spawn(move || phone(i, addrs, assignments, stop))
        })
        .collect();
    // Some volunteers are on a job before the first kill: the new engine must know it.
    let deadline = Instant::now() + GUARD;
    while assignments.lock().expect("assignments").len() < 3 {
        assert!(
            Instant::now() < deadline,
            "no volunteer was assigned before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut times = Vec::new();
    let (mut active, mut standby) = (0, 1);
    for round in 0..takeovers {
        let before = load.count();
        load.until("acknowledged 100 alerts before the kill", |l| {
            l.count() >= before + 100
        });
        let standby_addr = nodes[standby].addr.clone();
        let from_standby = load.count_from(&standby_addr);
        let killed_at = Instant::now();
        nodes[active].kill();
        // Nothing can be acknowledged by the standby's address until it is active: there is
        // no engine to forward to.
        load.until("an alert acknowledged by the new active engine", |l| {
            l.count_from(&standby_addr) > from_standby
        });
        times.push(killed_at.elapsed());
        assert_eq!(role(&standby_addr).as_deref(), Some("active"));
        if round + 1 < takeovers {
            let name = if active == 0 { "a" } else { "b" };
            nodes[active] = start_node(name, &nats, dir.path(), &roster);
            wait_role(&nodes[active], "standby");
            addrs.lock().expect("addrs")[active] = nodes[active].addr.clone();
        }
        std::mem::swap(&mut active, &mut standby);
    }
    let before = load.count();
    load.until(
        "acknowledged 100 more alerts after the last takeover",
        |l| l.count() >= before + 100,
    );
    let acks = load.finish();
    for p in phones {
        p.join().expect("phone");
    }
    times.sort();
    eprintln!(
        "drill 1: {} takeovers, kill -9 → first acknowledgement by the new active engine: p50 {:?}, max {:?} (all: {times:?}); {} alerts acknowledged",
        times.len(),
        times[times.len() / 2],
        times[times.len() - 1],
        acks.len()
    );
    eprintln!(
        "drill 1: assigned frames (volunteer, incident), including those re-sent after a reconnect: {:?}",
        assignments.lock().expect("assignments")
    );
    assert_all_known(&nodes[active], &acks);
    assert_no_one_on_two_incidents(&assignments, 3);
}

/// Drill 2: kill -9 one of the three NATS servers under load: the service goes on.
#[test]
fn drill_2_kill_9_one_nats_server_the_service_goes_on() {
    let (_serial, dir, roster, mut nats) = setup();
    let a = start_node("a", &nats, dir.path(), &roster);
    wait_role(&a, "active");
    let b = start_node("b", &nats, dir.path(), &roster);
    wait_role(&b, "standby");

    let load = Load::start(&[&a, &b], 4);
    load.until("acknowledged 100 alerts", |l| l.count() >= 100);
    // The server that leads the region's stream: killing it forces an election.
    let leader = stream_leader(&nats).expect("the region's stream has a leader");
    let index: usize = leader
        .strip_prefix('n')
        .and_then(|i| i.parse().ok())
        .expect("servers are named n0..n2");
    nats.kill(index);
    let before = load.count();
    load.until(
        "acknowledged 200 more alerts with a NATS server dead",
        |l| l.count() >= before + 200,
    );
    let acks = load.finish();
    let active = [&a, &b]
        .into_iter()
        .find(|s| role(&s.addr).as_deref() == Some("active"))
        .expect("a node is active with one NATS server dead");
    let new_leader = stream_leader(&nats).expect("a new leader");
    eprintln!(
        "drill 2: {} alerts acknowledged, {before} before the stream's leader {leader} was killed; new leader {new_leader}",
        acks.len()
    );
    assert_ne!(new_leader, leader, "the killed server cannot lead");
    assert_all_known(active, &acks);
}

/// Drill 3: SIGSTOP the active engine longer than its lease, then SIGCONT: a standby has
/// taken over; the old engine cannot append, steps down (exit 75), and nothing it
/// acknowledged is lost.
#[test]
fn drill_3_a_paused_engine_is_fenced_and_steps_down() {
    let (_serial, dir, roster, nats) = setup();
    let mut a = start_node("a", &nats, dir.path(), &roster);
    wait_role(&a, "active");
    let b = start_node("b", &nats, dir.path(), &roster);
    wait_role(&b, "standby");

    let load = Load::start(&[&a, &b], 4);
    load.until("acknowledged 100 alerts on a", |l| {
        l.count_from(&a.addr) >= 100
    });
    let pid = a.child.id().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    let from_a_before = load.count_from(&a.addr);
    wait_role(&b, "active");
    load.until("acknowledged alerts on b", |l| l.count_from(&b.addr) >= 50);
    signal("-CONT");
    // The old engine wakes holding sockets and a stale lease: it must exit, not serve.
    let deadline = Instant::now() + GUARD;
    let status = loop {
        if let Some(s) = a.child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the paused engine never stepped down"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let after = AtomicU64::new(load.count() as u64);
    load.until(
        "acknowledged 50 more alerts after the old engine left",
        |l| l.count() as u64 >= after.load(Ordering::Relaxed) + 50,
    );
    let acks = load.finish();
    eprintln!(
        "drill 3: {} alerts acknowledged; a acknowledged {from_a_before} before SIGSTOP and {} in all; a exited {status}",
        acks.len(),
        acks.values().filter(|(_, _, by)| *by == a.addr).count()
    );
    assert_eq!(
        status.code(),
        Some(75),
        "a deposed engine exits 75 (stepped down)"
    );
    assert_all_known(&b, &acks);
}

/// Drill 4: a rolling restart of every engine node, one at a time (SIGTERM, start again),
/// under load: each stop hands the region over (the lease released at once), nothing lost.
#[test]
fn drill_4_a_rolling_restart_under_load_loses_nothing() {
    let (_serial, dir, roster, nats) = setup();
    let mut a = start_node("a", &nats, dir.path(), &roster);
    wait_role(&a, "active");
    let mut b = start_node("b", &nats, dir.path(), &roster);
    wait_role(&b, "standby");
    let addrs = Arc::new(Mutex::new(vec![a.addr.clone(), b.addr.clone()]));
    let load = Load::start_on(addrs.clone(), 4);
    load.until("acknowledged 100 alerts", |l| l.count() >= 100);
    let sigterm = |s: &mut Server| {
        let ok = Command::new("kill")
            .args(["-TERM", &s.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -TERM");
        let deadline = Instant::now() + GUARD;
        let status = loop {
            if let Some(st) = s.child.try_wait().expect("try_wait") {
                break st;
            }
            assert!(Instant::now() < deadline, "a node did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "a clean stop exits 0: {status}");
    };
    // a (active) stops: b takes over; a comes back as a standby; then the same for b.
    for round in 0..2 {
        let (stopping, other) = if round == 0 {
            (&mut a, &b)
        } else {
            (&mut b, &a)
        };
        sigterm(stopping);
        // A clean stop releases the lease: the other node takes over well within a lease
        // (it would wait out the whole lease were the key only left to expire).
        let stopped_at = Instant::now();
        wait_role(other, "active");
        let handover = stopped_at.elapsed();
        assert!(
            handover < Duration::from_millis(lease_ms()),
            "after a clean stop the region was taken over only after {handover:?} (lease {} ms)",
            lease_ms()
        );
        let name = if round == 0 { "a" } else { "b" };
        let restarted = start_node(name, &nats, dir.path(), &roster);
        wait_role(&restarted, "standby");
        addrs.lock().expect("addrs")[round] = restarted.addr.clone();
        *stopping = restarted;
        let before = load.count();
        load.until("acknowledged 100 more alerts after a restart", |l| {
            l.count() >= before + 100
        });
    }
    let acks = load.finish();
    eprintln!(
        "drill 4: {} alerts acknowledged across two restarts",
        acks.len()
    );
    assert_eq!(role(&a.addr).as_deref(), Some("active"));
    assert_all_known(&a, &acks);
}

/// Any node answers: an alert posted to a standby is forwarded to the active engine and
/// acknowledged once durable there, and a phone's WebSocket opened on it is proxied there;
/// while no engine holds the region (its engine just killed, the lease not yet expired) the
/// answer is 503 with `Retry-After`, never an acknowledgement.
#[test]
fn a_standby_forwards_alerts_and_answers_503_while_no_engine_holds_the_region() {
    let (_serial, dir, roster, nats) = setup();
    let mut a = start_node("a", &nats, dir.path(), &roster);
    wait_role(&a, "active");
    let b = start_node("b", &nats, dir.path(), &roster);
    wait_role(&b, "standby");

    let mut to_b = Http::connect(&b.addr).expect("connect b");
    let health = to_b.get("/healthz").expect("healthz");
    assert_eq!(
        health.status, 503,
        "a standby is not where to send traffic: {health:?}"
    );
    assert_eq!(health.body["status"], "standby");

    let first = to_b.post_alert("fwd-1", 3).expect("post to the standby");
    assert_eq!(
        first.status, 202,
        "forwarded to the active engine: {first:?}"
    );
    assert_eq!(first.body["duplicate"], false);
    let incident = first.body["incident_id"].as_u64().expect("incident_id");
    let again = Http::connect(&a.addr)
        .expect("connect a")
        .post_alert("fwd-1", 3)
        .expect("post to the active");
    assert_eq!(
        again.body["duplicate"], true,
        "the active engine holds it: {again:?}"
    );
    assert_eq!(again.body["incident_id"].as_u64(), Some(incident));

    // A phone's WebSocket opened on the standby is proxied to the active engine: its request
    // is answered once durable there; a wrong token is the active node's own 401.
    {
        use tokio_tungstenite::tungstenite::{connect, Error, Message};
        let url = format!("ws://{}/v1/ws?access_token={}", b.addr, responder_token(0));
        let (mut ws, _) = connect(url.as_str()).expect("a session through the standby");
        ws.send(Message::text(
            r#"{"type":"availability","id":"p1","status":"available"}"#,
        ))
        .expect("send");
        let deadline = Instant::now() + GUARD;
        loop {
            assert!(Instant::now() < deadline, "no answer through the standby");
            if let Message::Text(t) = ws.read().expect("read through the standby") {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
                assert_ne!(v["type"], "error", "{v}");
                if v["type"] == "ack" && v["re"] == "p1" {
                    break;
                }
            }
        }
        let bad = format!("ws://{}/v1/ws?access_token=not-a-token", b.addr);
        match connect(bad.as_str()) {
            Err(Error::Http(resp)) => assert_eq!(resp.status(), 401),
            other => panic!("a wrong token through the standby: {:?}", other.map(|_| ())),
        }
    }

    // What each node says of itself in /metrics.
    let deadline = Instant::now() + GUARD;
    while !metrics_text(&a.addr).lines().any(|l| {
        l.starts_with("dispatch_cluster_lease_renewals_total") && l.contains("outcome=\"renewed\"")
    }) {
        assert!(
            Instant::now() < deadline,
            "the active node never renewed its lease"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let standby_metrics = metrics_text(&b.addr);
    assert!(
        standby_metrics
            .lines()
            .any(|l| l.starts_with("dispatch_cluster_role")
                && l.contains("role=\"standby\"")
                && l.ends_with(" 1")),
        "{standby_metrics}"
    );
    assert!(standby_metrics.contains("dispatch_cluster_lag_messages"));
    assert!(standby_metrics.contains("dispatch_cluster_forwarded_total"));
    assert!(standby_metrics.contains("dispatch_cluster_proxied_sessions_total"));

    a.kill();
    let refused = Http::connect(&b.addr)
        .expect("connect b")
        .post_alert("fwd-2", 4)
        .expect("post while no engine holds the region");
    assert_eq!(refused.status, 503, "no false acknowledgement: {refused:?}");
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));

    wait_role(&b, "active");
    let mut to_b = Http::connect(&b.addr).expect("connect b");
    let second = to_b.post_alert("fwd-2", 4).expect("post to the new active");
    assert_eq!(second.status, 202, "{second:?}");
    assert_eq!(
        second.body["duplicate"], false,
        "fwd-2 was refused, so it is new: {second:?}"
    );
    assert!(
        metrics_text(&b.addr).contains("dispatch_cluster_takeovers_total{region=\"0\"} 1"),
        "the new active node counts its takeover"
    );
    let first_again = to_b.post_alert("fwd-1", 3).expect("resend");
    assert_eq!(first_again.body["duplicate"], true, "{first_again:?}");
    assert_eq!(first_again.body["incident_id"].as_u64(), Some(incident));
}

/// The test roster split in two regions: grid g1 (region 1) holds the even elders and
/// volunteers v0–v4, grid g2 (region 2) the odd elders and v5–v9.
fn write_two_region_roster(path: &Path) {
    write_roster(path, ELDERS);
    let mut roster: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("roster")).expect("roster json");
    roster["grids"] =
        serde_json::json!([{ "id": "g1", "name": "norte" }, { "id": "g2", "name": "sul" }]);
    for e in roster["elders"].as_array_mut().expect("elders") {
        let i: usize = e["id"].as_str().expect("id")[1..].parse().expect("e<i>");
        e["grid_id"] = if i % 2 == 0 { "g1" } else { "g2" }.into();
    }
    for r in roster["responders"].as_array_mut().expect("responders") {
        let i: usize = r["id"].as_str().expect("id")[1..].parse().expect("v<i>");
        r["grid_id"] = if i < 5 { "g1" } else { "g2" }.into();
    }
    roster["regions"] = serde_json::json!([
        { "id": 1, "name": "norte", "grids": ["g1"] },
        { "id": 2, "name": "sul", "grids": ["g2"] },
    ]);
    std::fs::write(path, serde_json::to_vec_pretty(&roster).expect("json")).expect("write");
}

/// Reads text frames until one satisfies `want` (panics on an `error` frame or after GUARD).
fn read_until(
    ws: &mut tokio_tungstenite::tungstenite::WebSocket<
        tokio_tungstenite::tungstenite::stream::MaybeTlsStream<TcpStream>,
    >,
    what: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    use tokio_tungstenite::tungstenite::Message;
    let deadline = Instant::now() + GUARD;
    loop {
        assert!(Instant::now() < deadline, "never received {what}");
        if let Message::Text(t) = ws.read().expect("read") {
            let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
            assert_ne!(v["type"], "error", "waiting for {what}: {v}");
            if want(&v) {
                return v;
            }
        }
    }
}

/// Drill 5: two regions on two nodes. An alert for an elder of region 2 posted to the node
/// active for region 1 is dispatched by region 2's engine (offered to a region-2 volunteer
/// whose phone, too, is connected to the region-1 node); with region 2's engine killed, region
/// 1 goes on, region 2's alerts are refused 503 (never acknowledged) until region 2's standby
/// has taken over, and then they are dispatched by it, the first one still known.
#[test]
fn drill_5_an_alert_for_region_2_posted_to_region_1s_node_is_dispatched_by_region_2() {
    use tokio_tungstenite::tungstenite::{connect, Message};
    let (_serial, dir, roster, nats) = setup();
    write_two_region_roster(&roster);
    let a = start_node_with("a", &nats, dir.path(), &roster, &["--region", "1"]);
    let mut b = start_node_with("b", &nats, dir.path(), &roster, &["--region", "2"]);
    wait_role(&a, "active");
    wait_role(&b, "active");
    // Region 2's hot standby, on node a's machine (one process per region).
    let a2 = start_node_with("a2", &nats, dir.path(), &roster, &["--region", "2"]);
    wait_role(&a2, "standby");
    let health = Http::connect(&a.addr)
        .expect("a")
        .get("/healthz")
        .expect("healthz");
    assert_eq!(
        health.body["cluster"]["regions"][0]["region"], 1,
        "{health:?}"
    );

    // Volunteer v5 (region 2) connects to node a: the session is proxied to region 2's engine.
    let url = format!("ws://{}/v1/ws?access_token={}", a.addr, responder_token(5));
    let (mut phone, _) = connect(url.as_str()).expect("v5's session through node a");
    phone
        .send(Message::text(
            r#"{"type":"availability","id":"on","status":"available"}"#,
        ))
        .expect("send");
    read_until(&mut phone, "the availability ack", |v| {
        v["type"] == "ack" && v["re"] == "on"
    });

    // Elder e1 lives in g2 (region 2); the alert goes to node a.
    let posted = Http::connect(&a.addr)
        .expect("a")
        .post_alert("r2-alert", 1)
        .expect("post to node a");
    assert_eq!(posted.status, 202, "{posted:?}");
    assert_eq!(posted.body["duplicate"], false);
    let incident = posted.body["incident_id"].as_u64().expect("incident_id");
    let offer = read_until(&mut phone, "an offer for the alert", |v| {
        v["type"] == "offer"
    });
    assert_eq!(offer["incident_id"].as_u64(), Some(incident), "{offer}");
    // Region 2's engine holds the incident, of elder e1; region 1's holds no such alert (the
    // same alert sent to b is a duplicate of b's incident).
    let view = Http::connect(&b.addr)
        .expect("b")
        .get(&format!("/v1/incidents/{incident}"))
        .expect("incident on b");
    assert_eq!(view.status, 200, "{view:?}");
    assert_eq!(view.body["summary"]["elder_id"], "e1", "{view:?}");
    let again = Http::connect(&b.addr)
        .expect("b")
        .post_alert("r2-alert", 1)
        .expect("resend to b");
    assert_eq!(again.body["duplicate"], true, "{again:?}");
    assert_eq!(again.body["incident_id"].as_u64(), Some(incident));

    // Importing the roster file through node a changes region 1 only: its part of the file
    // is what region 1's engine holds, so there is nothing to change (region 2's people are
    // not added to region 1).
    let file = std::fs::read_to_string(&roster).expect("roster");
    let preview = Http::connect(&a.addr)
        .expect("a")
        .post("/v1/roster/import?dry_run=true", &file)
        .expect("import preview");
    assert_eq!(preview.status, 200, "{preview:?}");
    assert_eq!(
        preview.body["changes"],
        serde_json::json!([]),
        "{preview:?}"
    );

    // A device's WebSocket on node a: its alert for e5 (region 2) is answered by region 2.
    {
        let url = format!(
            "ws://{}/v1/ws?access_token={}",
            a.addr,
            process::DEVICE_TOKEN
        );
        let (mut gw, _) = connect(url.as_str()).expect("the gateway's session on node a");
        gw.send(Message::text(
            serde_json::json!({"type": "alert", "id": "w1", "alert_id": "r2-ws", "kind": "fall", "elder_id": "e5", "detected_at": 1_700_000_000_000i64})
                .to_string(),
        ))
        .expect("send");
        let accepted = read_until(&mut gw, "the alert's answer", |v| v["re"] == "w1");
        assert_eq!(accepted["type"], "alert_accepted", "{accepted}");
        let ws_incident = accepted["incident_id"].as_u64().expect("incident_id");
        let view = Http::connect(&b.addr)
            .expect("b")
            .get(&format!("/v1/incidents/{ws_incident}"))
            .expect("incident on b");
        assert_eq!(view.body["summary"]["elder_id"], "e5", "{view:?}");
    }

    // Region 1's own alert is region 1's: b forwards e0's alert to a.
    let own = Http::connect(&b.addr)
        .expect("b")
        .post_alert("r1-alert", 0)
        .expect("post e0's alert to b");
    assert_eq!(own.status, 202, "{own:?}");
    let own_incident = own.body["incident_id"].as_u64().expect("incident_id");
    let on_a = Http::connect(&a.addr)
        .expect("a")
        .get(&format!("/v1/incidents/{own_incident}"))
        .expect("incident on a");
    assert_eq!(on_a.body["summary"]["elder_id"], "e0", "{on_a:?}");

    // Region 2's engine gone: its alerts are refused with Retry-After (nobody holds it);
    // region 1 is not affected.
    drop(phone);
    b.kill();
    // The dead engine's lease names it for up to a lease more, but nothing answers on its
    // subject: the forward fails at once, and the alert is refused, not acknowledged.
    let refused = Http::connect(&a.addr)
        .expect("a")
        .post_alert("r2-late", 3)
        .expect("post to a");
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    let fine = Http::connect(&a.addr)
        .expect("a")
        .post_alert("r1-late", 2)
        .expect("post to a");
    assert_eq!(fine.status, 202, "region 1 goes on: {fine:?}");

    wait_role(&a2, "active");
    let mut to_a = Http::connect(&a.addr).expect("a");
    let late = to_a.post_alert("r2-late", 3).expect("post to a");
    assert_eq!(late.status, 202, "region 2's new engine answers: {late:?}");
    assert_eq!(
        late.body["duplicate"], false,
        "it was refused before: {late:?}"
    );
    let first = to_a.post_alert("r2-alert", 1).expect("resend to a");
    assert_eq!(first.body["duplicate"], true, "{first:?}");
    assert_eq!(first.body["incident_id"].as_u64(), Some(incident));
}

/// A standby started after the region has history begins from the cluster's newest snapshot
/// (kept by the active engine at each of its snapshots), not from the seed, and takes over
/// with every acknowledged alert.
#[test]
fn a_new_standby_starts_from_the_clusters_snapshot() {
    let (_serial, dir, roster, nats) = setup();
    let mut a = start_node_with("a", &nats, dir.path(), &roster, &["--snapshot-every", "50"]);
    wait_role(&a, "active");
    let load = Load::start(&[&a], 2);
    load.until("acknowledged 150 alerts", |l| l.count() >= 150);
    let acks = load.finish();
    // The snapshot upload follows the local snapshot; wait for the active node to report it.
    let deadline = Instant::now() + GUARD;
    let kept = loop {
        let text = metrics_text(&a.addr);
        if let Some(seq) = text
            .lines()
            .find(|l| l.starts_with("dispatch_cluster_snapshot_seq"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
        {
            break seq as u64;
        }
        assert!(
            Instant::now() < deadline,
            "the active engine never kept a snapshot in the cluster"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let b = start_node("b", &nats, dir.path(), &roster);
    wait_role(&b, "standby");
    let started = {
        let mut http = Http::connect(&b.addr).expect("connect b");
        http.get("/healthz").expect("healthz").body["cluster"]["started_from_seq"]
            .as_u64()
            .expect("started_from_seq")
    };
    // Timers keep journaling after the load, so a later snapshot may have replaced the one
    // seen: at least that one, and not the seed (sequence 1).
    assert!(
        kept > 1 && started >= kept,
        "the standby started at {started}, not from the snapshot the active engine kept ({kept})"
    );
    a.kill();
    wait_role(&b, "active");
    eprintln!(
        "snapshot: b started from stream sequence {started}; {} alerts acknowledged",
        acks.len()
    );
    assert_all_known(&b, &acks);
}

/// `/metrics` as text (the test client reads JSON bodies only).
fn metrics_text(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

/// Killed on drop, also when an assertion fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One NATS server with JetStream on a free loopback port, for a test that talks to it
/// directly: the serial guard (bind it first, so that it drops last), the server's folder, the
/// server, its port, and a runtime to talk to it from.
fn single_nats() -> (
    Serial,
    tempfile::TempDir,
    Killed,
    u16,
    tokio::runtime::Runtime,
) {
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let port = free_port();
    let conf = dir.join("one.conf");
    std::fs::write(
        &conf,
        format!(
            "listen: 127.0.0.1:{port}\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n",
            dir.join("js").display()
        ),
    )
    .expect("config");
    let server = Killed(
        Command::new(nats_server_bin())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server"),
    );
    let deadline = Instant::now() + GUARD;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    (serial, tmp, server, port, rt)
}

/// The region's stream itself, against a real (single) NATS server: a group bigger than one
/// message goes as several, sent together and stored in order, each but the last marked
/// `Dispatch-More`, and read back whole; an append that expects another last sequence (a
/// fenced engine) stores nothing; a retried group (same ids) is stored once.
#[test]
fn a_group_is_stored_in_order_a_retry_is_recognised_as_ours_and_a_fenced_append_stores_nothing() {
    use dispatch_core::journal::RegionId;
    use dispatch_server::cluster::log;
    let (_serial, _dir, _server, port, rt) = single_nats();
    rt.block_on(async {
        let client = async_nats::connect(format!("nats://127.0.0.1:{port}"))
            .await
            .expect("connect");
        let js = async_nats::jetstream::new(client);
        let region = RegionId(7);
        let wait = Duration::from_secs(10);
        let stream = log::ensure_stream(&js, region, 1, wait)
            .await
            .expect("stream");
        // 2.5 chunks of bytes that tell their position.
        let payload: Vec<u8> = (0..log::CHUNK * 5 / 2).map(|i| (i % 251) as u8).collect();
        let last = log::append(&js, region, "n", "records", &payload, 0, wait)
            .await
            .expect("append")
            .expect("not fenced");
        assert_eq!(last, 3, "three messages for 2.5 chunks");
        let mut joined = Vec::new();
        for seq in 1..=3u64 {
            let m = stream.get_raw_message(seq).await.expect("message");
            let more = m.headers.get(log::MORE).is_some();
            assert_eq!(
                more,
                seq < 3,
                "message {seq}: Dispatch-More on all but the last"
            );
            joined.extend_from_slice(&m.payload);
        }
        assert_eq!(joined, payload, "the group reads back whole, in order");

        // The same group again at the same position (a retry after lost acknowledgements):
        // the ids are the same, so nothing is stored twice.
        let again = log::append(&js, region, "n", "records", &payload, 0, wait)
            .await
            .expect("retry");
        assert_eq!(again, Some(3));
        // Another writer that still believes the stream ends at 1: fenced, nothing stored.
        let fenced = log::append(&js, region, "m", "records", b"late", 1, wait)
            .await
            .expect("an answer");
        assert_eq!(fenced, None);
        let mut s = stream.clone();
        assert_eq!(s.info().await.expect("info").state.last_sequence, 3);
    });
}

/// Regression (CI on fb1e649, fixed in f2f772a): a standby forwarding a request to the active
/// node named in the lease, when that node is dead but its NATS subscription not yet gone, must
/// answer `503` with `Retry-After` as soon as it stops forwarding (it takes the region over),
/// not leave the request waiting out the forward's timeout (`forward::WAIT`) until the server's
/// shutdown grace drops it with its connection. Here a subscriber on the named node's subject
/// receives the request and never answers: the stale subscription, made certain.
#[test]
fn a_request_in_flight_to_a_dead_active_node_is_answered_503_when_the_standby_takes_over() {
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use dispatch_core::journal::RegionId;
    use dispatch_server::cluster::forward::{self, Holder, Standby};
    use futures_util::StreamExt;
    use tower::ServiceExt;
    let (_serial, _dir, _server, port, rt) = single_nats();
    rt.block_on(async {
        let url = format!("nats://127.0.0.1:{port}");
        let client = async_nats::connect(&url).await.expect("connect");
        let ghost = async_nats::connect(&url).await.expect("connect");
        let mut stale = ghost
            .subscribe("dispatch.r3.http.ghost")
            .await
            .expect("subscribe");
        ghost.flush().await.expect("flush");
        let standby = Standby {
            client,
            region: RegionId(3),
            active: Arc::new(Mutex::new(Some(Holder {
                node: "ghost".into(),
                addr: "127.0.0.1:1".into(),
            }))),
            stop: tokio_util::sync::CancellationToken::new(),
        };
        let stop = standby.stop.clone();
        let app = axum::Router::new()
            .fallback(forward::forward)
            .with_state(standby);
        let post = || {
            Request::post("/v1/alerts")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"alert_id":"a-1"}"#))
                .expect("request")
        };
        // The request must reach the dead node's subject (be in flight). Once, on a loaded CI
        // machine, it never did within GUARD: the forward was answered first (with the stale
        // subscription not yet seen by the server, NATS says "no responders" and the standby
        // answers 503 at once, which is not the case under test). So a forward answered before
        // it arrived is sent again, a bounded number of times, and what it answered is said.
        let mut answered_first = Vec::new();
        let (got, answer) = loop {
            assert!(
                answered_first.len() < 5,
                "the forward never reached the stale subscription; answered first: {answered_first:?}"
            );
            let mut answer = tokio::spawn(app.clone().oneshot(post()));
            tokio::select! {
                m = tokio::time::timeout(GUARD, stale.next()) => {
                    let m = m.expect("the forward reached the stale subscription").expect("a message");
                    break (m, answer);
                }
                r = &mut answer => {
                    let status = r.expect("the handler ran").expect("infallible").status();
                    answered_first.push(status);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        assert_eq!(got.payload.as_ref(), br#"{"alert_id":"a-1"}"#);
        stop.cancel();
        let response = tokio::time::timeout(forward::WAIT / 2, answer)
            .await
            .expect("answered once the standby stops forwarding, not after the forward's timeout")
            .expect("the handler ran")
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error");
        assert_eq!(body["code"], "unavailable", "{body}");
        assert_eq!(body["type"], "error", "{body}");
    });
}

/// Bad cluster flags are refused, naming the flag, before the map loads or NATS is asked.
#[test]
fn bad_cluster_flags_are_refused_by_name_before_anything_starts() {
    for (flags, says) in [
        (
            vec!["--nats", "nats://127.0.0.1:1"],
            "--node NAME is required",
        ),
        (
            vec!["--nats", "nats://127.0.0.1:1", "--node", "bad/name"],
            "--node must be",
        ),
        (
            vec!["--nats", "not a url::", "--node", "n1"],
            "--nats: `not a url::`",
        ),
        (
            vec![
                "--nats",
                "nats://127.0.0.1:1",
                "--node",
                "n1",
                "--advertise",
                "nowhere",
            ],
            "--advertise `nowhere` is not HOST:PORT",
        ),
        (
            vec![
                "--nats",
                "nats://127.0.0.1:1",
                "--node",
                "n1",
                "--lease-ms",
                "10",
            ],
            "--lease-ms",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_dispatch"))
            .args([
                "serve",
                "--map",
                "/nonexistent.osm.pbf",
                "--roster",
                "/nonexistent.json",
            ])
            .args(&flags)
            .output()
            .expect("run dispatch");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} was accepted");
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
    }
}

/// `--region` names a region of the roster, checked before the node joins the cluster: a
/// region the roster does not have is refused naming those it has.
#[test]
fn a_region_the_roster_does_not_have_is_refused_before_joining() {
    let dir = tempfile::tempdir().expect("tempdir");
    let roster = dir.path().join("roster.json");
    write_two_region_roster(&roster);
    let out = process::serve_command(
        &dir.path().join("data"),
        &roster,
        &[
            "--nats",
            "nats://127.0.0.1:1",
            "--node",
            "n1",
            "--region",
            "7",
        ],
    )
    .output()
    .expect("run dispatch");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "--region 7 was accepted");
    assert!(
        stderr.contains("--region 7: the roster has no such region (it has 1, 2)"),
        "{stderr}"
    );
}

/// Regression (review): a region's stream seeded before the roster named regions holds every
/// grid; a node started for that region after regions were added would offer other regions'
/// people. It is refused, naming the grid, before it serves.
#[test]
fn a_stream_seeded_before_regions_is_refused_when_its_grids_moved_to_another_region() {
    let (_serial, dir, roster, nats) = setup();
    write_two_region_roster(&roster);
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&roster).expect("roster")).expect("json");
    v.as_object_mut().expect("object").remove("regions");
    std::fs::write(&roster, serde_json::to_vec(&v).expect("json")).expect("write");
    let mut a = start_node("a", &nats, dir.path(), &roster);
    wait_role(&a, "active");
    a.kill();
    // Now g2 is region 1's; g1, named by no region, stays region 0's.
    v["regions"] = serde_json::json!([{ "id": 1, "grids": ["g2"] }]);
    std::fs::write(&roster, serde_json::to_vec(&v).expect("json")).expect("write");
    let mut child = process::serve_command(
        &dir.path().join("a2"),
        &roster,
        &[
            "--nats",
            &nats.urls(),
            "--node",
            "a2",
            "--lease-ms",
            &lease_ms().to_string(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    let deadline = Instant::now() + GUARD;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the node started for region 0 did not refuse the stream");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("region 0's stream holds grid g2, which the roster puts in region 1"),
        "{stderr}"
    );
}
