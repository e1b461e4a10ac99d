//! The `cfnet controller` process contract, against a real etcd + kube-apiserver:
//! - SIGTERM lets the in-flight reconciles finish and exits 0 within 10 s, also while the caches have
//!   never synced (API server unreachable);
//! - an unreachable API server — at start and mid-run — is retried with a growing, logged back-off while
//!   the process stays up, and once it answers again the controller becomes ready and programs Routes.
//!
//! The outage is a loopback TCP forwarder between the controller and the real kube-apiserver that the
//! test closes and reopens on the same port (the local API server picks new ports on every start, and a
//! restarted one would have a new CA and token).
//! Fails (never skips) when etcd/kube-apiserver cannot be installed or started.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cfnet_api::{ConditionStatus, READY, Route, fixtures};
use cfnet_testenv::ControlPlane;
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

mod common;

const CFNET: &str = env!("CARGO_BIN_EXE_cfnet");
const GATEWAY: &str = "cf-system/istio-ingressgateway";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `cfnet controller` child with JSON logs collected from its stderr; killed if the test fails.
struct ControllerProcess {
    child: Child,
    health_port: u16,
    logs: Arc<Mutex<Vec<String>>>,
}

impl ControllerProcess {
    fn start(kubeconfig: &Path) -> Self {
        let health_port = free_port();
        let mut child = Command::new(CFNET)
            .arg("controller")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--metrics-addr", "127.0.0.1:0", "--log-format", "json"])
            .arg("--health-addr")
            .arg(format!("127.0.0.1:{health_port}"))
            .env("ISTIO_GATEWAY_NAME", GATEWAY)
            .env_remove("RESYNC_INTERVAL")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        ControllerProcess {
            child,
            health_port,
            logs,
        }
    }

    fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The JSON log lines whose message contains `text`.
    fn events(&self, text: &str) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["message"].as_str().is_some_and(|m| m.contains(text)))
            .collect()
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "cfnet controller exited with {status}; log:\n{}",
                self.logs().join("\n")
            );
        }
    }

    /// HTTP status of `GET path` on the health port; `None` when nothing answers.
    async fn probe(&self, path: &str) -> Option<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.health_port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        response.split_whitespace().nth(1)?.parse().ok()
    }

    async fn wait_until_ready(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.probe("/readyz").await != Some(200) {
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "/readyz not 200 within {within:?}; log:\n{}",
                self.logs().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and returns the exit status and how long the exit took (at most `limit`).
    async fn terminate(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        common::signal(&self.child, libc::SIGTERM);
        let sent = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, sent.elapsed());
            }
            assert!(
                sent.elapsed() < limit,
                "cfnet controller still running {limit:?} after SIGTERM; log:\n{}",
                self.logs().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn route(namespace: &str, name: &str, host: &str, destination: &str) -> Route {
    fixtures::route(name)
        .namespace(namespace)
        .host(host)
        .destination(fixtures::destination(
            destination,
            &format!("app-{destination}"),
        ))
        .build()
}

async fn create_route(client: &Client, namespace: &str, name: &str, destination: &str) {
    Api::<Route>::namespaced(client.clone(), namespace)
        .create(
            &PostParams::default(),
            &route(namespace, name, name, destination),
        )
        .await
        .unwrap();
}

/// Waits until Route `name` is Ready=True and its Service `s-<destination>` exists.
async fn wait_programmed(
    client: &Client,
    namespace: &str,
    name: &str,
    destination: &str,
    controller: &mut ControllerProcess,
    within: Duration,
) {
    let routes = Api::<Route>::namespaced(client.clone(), namespace);
    let services = Api::<Service>::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + within;
    loop {
        let ready = routes.get(name).await.ok().is_some_and(|r| {
            r.status.is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == READY && c.status == ConditionStatus::True)
            })
        });
        let service = services
            .get_opt(&format!("s-{destination}"))
            .await
            .ok()
            .flatten()
            .is_some();
        if ready && service {
            return;
        }
        controller.assert_running();
        assert!(
            Instant::now() < deadline,
            "Route {namespace}/{name} not programmed within {within:?} (ready {ready}, service {service}); log:\n{}",
            controller.logs().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_reconciles_and_exits_0_within_10s() {
    let cp = ControlPlane::start().await.unwrap();
    let ns = cp.create_namespace("sigterm").await.unwrap();
    let client = cp.client();
    let mut controller = ControllerProcess::start(cp.kubeconfig_path());
    controller.wait_until_ready(Duration::from_secs(60)).await;
    create_route(&client, &ns, "warm-up", "dest-warm-up").await;
    wait_programmed(
        &client,
        &ns,
        "warm-up",
        "dest-warm-up",
        &mut controller,
        Duration::from_secs(30),
    )
    .await;

    // A burst, then SIGTERM while the controller is busy with it.
    for i in 0..40 {
        create_route(
            &client,
            &ns,
            &format!("burst-{i}"),
            &format!("dest-burst-{i}"),
        )
        .await;
    }
    let (status, took) = controller.terminate(Duration::from_secs(10)).await;
    eprintln!("SIGTERM during a burst of 40 Routes: {status} after {took:?}");
    let log = controller.logs().join("\n");
    assert!(
        status.success(),
        "exit 0 on SIGTERM, got {status} after {took:?}; log:\n{log}"
    );
    assert!(
        !controller.events("shutting down").is_empty(),
        "the shutdown is orderly; log:\n{log}"
    );
    assert!(
        controller.events("did not finish within").is_empty(),
        "in-flight reconciles finished rather than being cut off; log:\n{log}"
    );
    assert!(
        !controller.events("RouteController stopped").is_empty(),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_before_the_caches_ever_synced_exits_at_once() {
    // Nothing listens on this port: the caches never sync, the workers wait for them.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{}', insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n\
             contexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\n",
            free_port()
        ),
    )
    .unwrap();
    let mut controller = ControllerProcess::start(&kubeconfig);
    let deadline = Instant::now() + Duration::from_secs(20);
    while controller.probe("/healthz").await != Some(200) {
        controller.assert_running();
        assert!(Instant::now() < deadline, "/healthz never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(controller.probe("/readyz").await, Some(503));

    let (status, took) = controller.terminate(Duration::from_secs(10)).await;
    eprintln!("SIGTERM before the caches synced: {status} after {took:?}");
    let log = controller.logs().join("\n");
    assert!(status.success(), "exit 0, got {status}; log:\n{log}");
    // Idle workers hold nothing in flight: they must not be waited for until the 8 s grace runs out.
    assert!(
        controller.events("did not finish within").is_empty(),
        "idle workers are released at once (exit took {took:?}); log:\n{log}"
    );
}

/// A loopback TCP forwarder to `target` on a fixed port that can be closed (connection refused, open
/// connections cut) and reopened.
struct Outage {
    port: u16,
    target: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl Outage {
    /// Reserves a port; the forwarder starts closed.
    fn new(target: SocketAddr) -> Self {
        Outage {
            port: free_port(),
            target,
            accept: None,
        }
    }

    async fn open(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot reopen 127.0.0.1:{}: {e}",
                        self.port
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let target = self.target;
        self.accept = Some(tokio::spawn(async move {
            // Dropped with the accept task: aborting it cuts every forwarded connection.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    async fn close(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
    }
}

/// The admin kubeconfig, written into `dir` and pointed at the forwarder (the serving certificate is for
/// 127.0.0.1, any port).
fn through_forwarder(cp: &ControlPlane, outage: &Outage, dir: &Path) -> PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    let text = std::fs::read_to_string(cp.kubeconfig_path()).unwrap();
    assert!(text.contains(cp.server_url()));
    std::fs::write(
        &kubeconfig,
        text.replace(
            cp.server_url(),
            &format!("https://127.0.0.1:{}", outage.port),
        ),
    )
    .unwrap();
    kubeconfig
}

/// `500ms`, `1s`, `2.5s` (Rust's Debug of Duration) in milliseconds.
fn millis(debug: &str) -> u64 {
    if let Some(ms) = debug.strip_suffix("ms") {
        ms.parse::<f64>().unwrap() as u64
    } else {
        (debug.strip_suffix('s').unwrap().parse::<f64>().unwrap() * 1000.0) as u64
    }
}

/// (attempt, retry_in ms) of every back-off line since `skip` such lines.
fn back_off_lines(controller: &ControllerProcess, port: u16, skip: usize) -> Vec<(u64, u64)> {
    let lines = controller.events("Kubernetes API server unreachable");
    for l in &lines {
        assert_eq!(
            l["server"].as_str(),
            Some(format!("https://127.0.0.1:{port}/").as_str()),
            "names the server: {l}"
        );
        assert!(
            l["error"].as_str().is_some_and(|e| !e.is_empty()),
            "names the error: {l}"
        );
    }
    lines
        .iter()
        .skip(skip)
        .map(|l| {
            (
                l["attempt"].as_u64().unwrap(),
                millis(l["retry_in"].as_str().unwrap()),
            )
        })
        .collect()
}

fn assert_growing(attempts: &[(u64, u64)], log: &str) {
    assert!(
        attempts.len() >= 3,
        "at least three failed attempts logged: {attempts:?}\n{log}"
    );
    for pair in attempts.windows(2) {
        assert_eq!(
            pair[1].0,
            pair[0].0 + 1,
            "attempts counted one by one: {attempts:?}"
        );
        assert!(pair[1].1 > pair[0].1, "the wait grows: {attempts:?}\n{log}");
    }
    assert!(
        attempts.iter().all(|(_, ms)| *ms <= 30_000),
        "capped at 30 s"
    );
}

/// Started while the API server is unreachable: after 7 s the process is alive, not ready, and has
/// logged every failed attempt with a growing wait.
async fn stays_up_and_backs_off(controller: &mut ControllerProcess, port: u16) {
    tokio::time::sleep(Duration::from_secs(7)).await;
    controller.assert_running();
    assert_eq!(
        controller.probe("/healthz").await,
        Some(200),
        "alive for a liveness probe"
    );
    assert_eq!(
        controller.probe("/readyz").await,
        Some(503),
        "not ready without the API server"
    );
    let log = controller.logs().join("\n");
    let at_start = back_off_lines(controller, port, 0);
    assert_eq!(at_start[0].0, 1, "{log}");
    assert_eq!(at_start[0].1, 500, "the first wait is 500 ms: {log}");
    assert_growing(&at_start, &log);
    // 7 s of waits 0.5 + 1 + 2 + 4 → no more than five attempts: no ~1 s retry loop.
    assert!(at_start.len() <= 5, "backs off, not a tight loop: {log}");
    eprintln!("API server down at start, (attempt, wait ms): {at_start:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_is_retried_with_back_off_and_then_served() {
    let cp = ControlPlane::start().await.unwrap();
    let ns = cp.create_namespace("outage").await.unwrap();
    let client = cp.client();
    let mut outage = Outage::new(
        cp.server_url()
            .strip_prefix("https://")
            .unwrap()
            .parse()
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = through_forwarder(&cp, &outage, dir.path());

    // 1. Started while the API server is unreachable: stays up, backs off, logs every attempt.
    let mut controller = ControllerProcess::start(&kubeconfig);
    stays_up_and_backs_off(&mut controller, outage.port).await;

    // 2. The API server answers: ready, and Routes are programmed.
    outage.open().await;
    controller.wait_until_ready(Duration::from_secs(45)).await;
    assert!(
        !controller
            .events("Kubernetes API server reachable again")
            .is_empty(),
        "{}",
        controller.logs().join("\n")
    );
    create_route(&client, &ns, "before-outage", "dest-before").await;
    wait_programmed(
        &client,
        &ns,
        "before-outage",
        "dest-before",
        &mut controller,
        Duration::from_secs(30),
    )
    .await;

    // 3. Unreachable mid-run (watches cut, connections refused): still up, backing off again.
    let seen = controller.events("Kubernetes API server unreachable").len();
    outage.close().await;
    create_route(&client, &ns, "during-outage", "dest-during").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    controller.assert_running();
    let log = controller.logs().join("\n");
    let mid_run = back_off_lines(&controller, outage.port, seen);
    assert_eq!(
        mid_run.first().map(|a| a.0),
        Some(1),
        "a new outage starts from the first wait: {log}"
    );
    assert_growing(&mid_run, &log);
    eprintln!("API server down mid-run, (attempt, wait ms): {mid_run:?}");

    // 4. Back again: the Route created during the outage is programmed.
    outage.open().await;
    wait_programmed(
        &client,
        &ns,
        "during-outage",
        "dest-during",
        &mut controller,
        Duration::from_secs(45),
    )
    .await;

    let (status, _) = controller.terminate(Duration::from_secs(10)).await;
    assert!(
        status.success(),
        "exit 0, got {status}; log:\n{}",
        controller.logs().join("\n")
    );
    outage.close().await;
}

/// `--events` / `CFNET_EVENTS` other than `all` or `problems`: one line naming both and exit 1, before
/// any connection is attempted.
#[test]
fn an_unknown_events_setting_exits_1_naming_the_choices() {
    for (args, env) in [(vec!["--events", "none"], None), (vec![], Some("warnings"))] {
        let mut command = Command::new(CFNET);
        command
            .arg("controller")
            .args(&args)
            .env("ISTIO_GATEWAY_NAME", GATEWAY)
            .env_remove("CFNET_EVENTS");
        if let Some(value) = env {
            command.env("CFNET_EVENTS", value);
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.contains("--events (CFNET_EVENTS)") && stderr.contains("give all"),
            "{stderr}"
        );
    }
}
