//! `cfnet demo`, the README's main command, run as the built binary from the repository root against a
//! real etcd + kube-apiserver: every example Route is applied and reported with its Ready condition, the
//! Services and VirtualServices (with `--routing-api gateway-api`: HTTPRoutes) listed are exactly those
//! `cfnet render` derives from the same files, and nothing is left running afterwards — with
//! `--exit-when-ready` and on Ctrl-C (SIGINT).
//! Fails (never skips) when etcd/kube-apiserver cannot be installed or started.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{CFNET, KillOnDrop, exit_within, processes_naming, repo_root, signal};
use serde_json::Value;

mod common;

fn example_files() -> Vec<PathBuf> {
    let files = common::example_files();
    assert!(files.len() >= 5, "examples: {files:?}");
    files
}

/// (namespace, name) of every Route in the example files (Lists unpacked, namespace default `default`).
fn example_routes() -> BTreeSet<(String, String)> {
    example_files();
    common::example_route_documents()
        .iter()
        .map(|doc| {
            let ns = doc["metadata"]["namespace"].as_str().unwrap_or("default");
            let name = doc["metadata"]["name"].as_str().unwrap();
            (ns.to_string(), name.to_string())
        })
        .collect()
}

/// What `cfnet render` derives from the examples: Service names, VirtualService (or HTTPRoute) names, and
/// the problem message of every route that is not programmed (`namespace/name` → message).
struct Rendered {
    services: BTreeSet<(String, String)>,
    virtual_services: BTreeSet<(String, String)>,
    problems: BTreeMap<String, String>,
}

const ISTIO: &str = "istio";
const GATEWAY_API: &str = "gateway-api";

fn render_examples(routing_api: &str) -> Rendered {
    let mut rendered = Rendered {
        services: BTreeSet::new(),
        virtual_services: BTreeSet::new(),
        problems: BTreeMap::new(),
    };
    for file in example_files() {
        let out = Command::new(CFNET)
            .args(["render", "-o", "json", "--routing-api", routing_api, "-f"])
            .arg(&file)
            .env("ISTIO_GATEWAY_NAME", "cf-system/istio-ingressgateway")
            .output()
            .unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "render {}: {:?}",
            file.display(),
            out
        );
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        for item in list["items"].as_array().unwrap() {
            let id = (
                item["metadata"]["namespace"].as_str().unwrap().to_string(),
                item["metadata"]["name"].as_str().unwrap().to_string(),
            );
            match item["kind"].as_str().unwrap() {
                "Service" => rendered.services.insert(id),
                "VirtualService" | "HTTPRoute" => rendered.virtual_services.insert(id),
                other => panic!("unexpected kind {other}"),
            };
        }
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            if let Some((route, message)) =
                line.strip_prefix("route ").and_then(|l| l.split_once(": "))
            {
                rendered
                    .problems
                    .insert(route.to_string(), message.to_string());
            }
        }
    }
    assert!(
        !rendered.problems.is_empty(),
        "examples/invalid-weights.yaml is invalid on purpose"
    );
    rendered
}

/// The data rows of the table under the `<title> (<n>)` line, up to the next blank line.
fn table_rows<'a>(output: &'a str, title: &str) -> Vec<&'a str> {
    let mut lines = output.lines();
    let heading = format!("{title} (");
    lines
        .by_ref()
        .find(|l| l.starts_with(&heading))
        .unwrap_or_else(|| panic!("no {title} table in:\n{output}"));
    lines.next().expect("the header row");
    lines.take_while(|l| !l.trim().is_empty()).collect()
}

/// (namespace, name) of the rows that start an object (continuation rows start with blanks).
fn names(rows: &[&str]) -> BTreeSet<(String, String)> {
    rows.iter()
        .filter(|r| !r.starts_with(' '))
        .map(|r| {
            let mut cells = r.split_whitespace();
            (
                cells.next().unwrap().to_string(),
                cells.next().unwrap().to_string(),
            )
        })
        .collect()
}

fn check_tables(output: &str, routing_api: &str) {
    let expected_routes = example_routes();
    let rendered = render_examples(routing_api);

    let route_rows = table_rows(output, "Routes");
    assert_eq!(
        names(&route_rows),
        expected_routes,
        "every example Route is listed:\n{output}"
    );
    for row in &route_rows {
        let cells: Vec<&str> = row.split_whitespace().collect();
        let id = format!("{}/{}", cells[0], cells[1]);
        let (ready, reason) = (cells[3], cells[4]);
        match rendered.problems.get(&id) {
            Some(message) => {
                // Internal routes cannot be expressed in gateway-api mode.
                let expected =
                    if routing_api == GATEWAY_API && message.starts_with("internal routes") {
                        "Unsupported"
                    } else {
                        "Invalid"
                    };
                assert_eq!(
                    (ready, reason),
                    ("False", expected),
                    "{id} is not programmed:\n{output}"
                );
                assert!(
                    row.contains(message.as_str()),
                    "{id} shows why ({message}):\n{output}"
                );
            }
            None => assert_eq!(
                (ready, reason),
                ("True", "Programmed"),
                "{id} is programmed:\n{output}"
            ),
        }
    }
    assert_eq!(
        names(&table_rows(output, "Services")),
        rendered.services,
        "the Services are those `cfnet render` derives:\n{output}"
    );
    let table = if routing_api == GATEWAY_API {
        "HTTPRoutes"
    } else {
        "VirtualServices"
    };
    assert!(!rendered.virtual_services.is_empty());
    assert_eq!(
        names(&table_rows(output, table)),
        rendered.virtual_services,
        "the {table} are those `cfnet render` derives:\n{output}"
    );
}

fn state_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("cfnet-demo-test-")
        .tempdir()
        .unwrap();
    let path = dir.path().canonicalize().unwrap();
    (dir, path)
}

/// `cfnet demo ARGS --state-dir STATE` from the repository root (as the README runs it) to a successful end:
/// its stdout and stderr.
fn run_demo(args: &[&str], state: &Path, what: &str) -> (String, String) {
    let out = Command::new(CFNET)
        .arg("demo")
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .current_dir(repo_root())
        .env_remove("ISTIO_GATEWAY_NAME")
        .env_remove("CFNET_ROUTING_API")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

#[test]
fn demo_exit_when_ready_reports_every_example_and_stops_everything() {
    let (_dir, state) = state_dir();
    // From the repository root without --examples: exactly the README's command.
    let (stdout, stderr) = run_demo(&["--exit-when-ready"], &state, "cfnet demo");
    check_tables(&stdout, ISTIO);
    assert!(
        stderr.contains("controller, kube-apiserver and etcd stopped"),
        "{stderr}"
    );
    assert_eq!(
        processes_naming(&state, 0),
        Vec::<String>::new(),
        "no etcd/kube-apiserver survives the demo"
    );
}

/// `--routing-api gateway-api`: the Gateway API CRDs are installed and the HTTPRoutes listed.
#[test]
fn demo_in_gateway_api_mode_lists_http_routes() {
    let (_dir, state) = state_dir();
    let (stdout, stderr) = run_demo(
        &["--exit-when-ready", "--routing-api", GATEWAY_API],
        &state,
        "cfnet demo --routing-api gateway-api",
    );
    check_tables(&stdout, GATEWAY_API);
    assert!(
        stderr.contains("controller, kube-apiserver and etcd stopped"),
        "{stderr}"
    );
    assert_eq!(processes_naming(&state, 0), Vec::<String>::new());
}

/// The demo's stdout up to and including its `cfnet demo: ready.` line.
fn read_until_ready(rx: &mpsc::Receiver<String>, demo: &mut Child, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut output = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                output.push_str(&line);
                output.push('\n');
                if line.starts_with("cfnet demo: ready.") {
                    return output;
                }
            }
            Err(e) => {
                let status = demo.try_wait().unwrap();
                panic!("no ready line ({e}; demo status {status:?}); stdout so far:\n{output}");
            }
        }
    }
}

#[test]
fn demo_runs_until_sigint_then_stops_everything() {
    let (_dir, state) = state_dir();
    let mut demo = KillOnDrop(
        Command::new(CFNET)
            .args(["demo", "--state-dir"])
            .arg(&state)
            .current_dir(repo_root())
            .env_remove("ISTIO_GATEWAY_NAME")
            .env_remove("CFNET_ROUTING_API")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = demo.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let stderr = demo.0.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        text
    });

    // Start-up may include installing the binaries on a fresh machine.
    let output = read_until_ready(&rx, &mut demo.0, Duration::from_secs(300));
    check_tables(&output, ISTIO);
    let kubectl = format!(
        "KUBECONFIG={} kubectl get routes -A",
        state.join("kubeconfig").display()
    );
    assert!(output.contains(&kubectl), "prints `{kubectl}`:\n{output}");
    assert!(
        state.join("kubeconfig").exists(),
        "the kubeconfig is there while the demo runs"
    );
    assert_eq!(
        processes_naming(&state, demo.0.id()).len(),
        2,
        "etcd and kube-apiserver run while the demo does"
    );

    signal(&demo.0, libc::SIGINT);
    let status = exit_within(
        &mut demo.0,
        Duration::from_secs(15),
        "cfnet demo after SIGINT",
    );
    let stderr = stderr_reader.join().unwrap();
    assert!(
        status.success(),
        "cfnet demo exits 0 on SIGINT: {status}\n{stderr}"
    );
    assert!(
        stderr.contains("SIGINT received; controller, kube-apiserver and etcd stopped"),
        "{stderr}"
    );
    assert_eq!(
        processes_naming(&state, demo.0.id()),
        Vec::<String>::new(),
        "no etcd/kube-apiserver survives Ctrl-C"
    );
    assert!(
        !state.join("kubeconfig").exists(),
        "the kubeconfig naming closed ports is removed"
    );
}

/// (FQDN, path prefix) of every example Route the ingress gateway must route: external, with destinations, and
/// not among `cfnet render`'s invalid ones.
fn gateway_routes_of_examples(invalid: &BTreeMap<String, String>) -> BTreeSet<(String, String)> {
    fn collect(
        doc: &Value,
        invalid: &BTreeMap<String, String>,
        out: &mut BTreeSet<(String, String)>,
    ) {
        match doc["kind"].as_str() {
            Some("List") => doc["items"]
                .as_array()
                .into_iter()
                .flatten()
                .for_each(|i| collect(i, invalid, out)),
            Some("Route") => {
                let spec = &doc["spec"];
                let id = format!(
                    "{}/{}",
                    doc["metadata"]["namespace"].as_str().unwrap_or("default"),
                    doc["metadata"]["name"].as_str().unwrap()
                );
                let has_destinations = spec["destinations"]
                    .as_array()
                    .is_some_and(|d| !d.is_empty());
                if spec["domain"]["internal"] == true
                    || !has_destinations
                    || invalid.contains_key(&id)
                {
                    return;
                }
                let host = spec["host"].as_str().unwrap_or("");
                let domain = spec["domain"]["name"].as_str().unwrap();
                let fqdn = if host.is_empty() {
                    domain.to_owned()
                } else {
                    format!("{host}.{domain}")
                };
                let path = spec["path"]
                    .as_str()
                    .filter(|p| !p.is_empty())
                    .unwrap_or("/");
                out.insert((fqdn.to_lowercase(), path.to_owned()));
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for doc in common::example_route_documents() {
        collect(&doc, invalid, &mut out);
    }
    out
}

/// The gateway's Envoy routes table `cfnet demo --istiod` prints: a row for every programmed external example.
fn assert_gateway_envoy_routes(stdout: &str) {
    // Then the gateway's Envoy routes: a row `http.8080 <vhost> <domains> prefix <path> <clusters> <vs>` for
    // every programmed external example.
    let mut lines = stdout.lines();
    lines
        .by_ref()
        .find(|l| l.starts_with("Envoy routes of the ingress gateway ("))
        .unwrap_or_else(|| panic!("no Envoy routes table in:\n{stdout}"));
    assert!(
        lines.next().unwrap().starts_with("ROUTE CONFIG"),
        "{stdout}"
    );
    let rows: Vec<Vec<&str>> = lines
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    let expected = gateway_routes_of_examples(&render_examples(ISTIO).problems);
    assert!(expected.len() >= 5, "{expected:?}");
    for (fqdn, path) in &expected {
        assert!(
            rows.iter().any(|cells| cells[0] == "http.8080"
                && cells.contains(&fqdn.as_str())
                && cells
                    .windows(2)
                    .any(|w| w[0] == "prefix" && w[1] == path.as_str())
                && cells.iter().any(|c| c.starts_with("outbound|"))),
            "the gateway routes {fqdn}{path} to a cluster:\n{stdout}"
        );
    }
}

/// The `cfnet explain` reports that end `cfnet demo --istiod`.
fn assert_explain_of_the_examples(stdout: &str) {
    // It ends with `cfnet explain` of a healthy URL (weighted, with the demo's EndpointSlices, through the
    // gateway's Envoy) and a broken one (an Invalid route whose path its sibling serves).
    let healthy = stdout
        .split("$ cfnet explain https://store.apps.example.com/    # exit 0\n")
        .nth(1)
        .unwrap_or_else(|| panic!("explain of the healthy URL, exit 0:\n{stdout}"));
    assert!(healthy.contains("Problems: none"), "{stdout}");
    assert!(
        healthy.contains(
            "outbound|8080||s-0b1e5c1a-green.cf-workloads.svc.cluster.local   20       yes      1"
        ),
        "the gateway's cluster with its weight and the demo's endpoint:\n{stdout}"
    );
    let broken = stdout
        .split("$ cfnet explain https://news.apps.example.com/beta/today    # exit 1\n")
        .nth(1)
        .unwrap_or_else(|| panic!("explain of the broken URL, exit 1:\n{stdout}"));
    assert!(
        broken.contains("route_not_ready: route cf-workloads/route-news-beta"),
        "{stdout}"
    );
}

#[test]
fn demo_istiod_prints_the_gateway_envoy_routes_and_stops_everything() {
    let (_dir, state) = state_dir();
    let (stdout, stderr) = run_demo(
        &["--istiod", "--exit-when-ready"],
        &state,
        "cfnet demo --istiod",
    );
    // The demo's own tables are unchanged by --istiod.
    check_tables(&stdout, ISTIO);

    assert_gateway_envoy_routes(&stdout);
    assert_explain_of_the_examples(&stdout);
    assert!(
        stderr.contains("controller, istiod, kube-apiserver and etcd stopped"),
        "{stderr}"
    );
    assert_eq!(
        processes_naming(&state, 0),
        Vec::<String>::new(),
        "no istiod/etcd/kube-apiserver survives the demo"
    );
    assert!(
        !state.join("istiod").exists(),
        "DIR/istiod naming a closed port is removed"
    );
}
