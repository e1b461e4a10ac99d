//! `cfnet explain` against a real API server, real istiod (with Istio's validating webhook) and the controller
//! in-process, with the chart's Istio objects (Gateway, gateway Service, workloads Sidecar). There is no
//! kube-controller-manager, so the test writes the EndpointSlices. One installation serves every case: one
//! situation per problem code, a healthy weighted URL, an internal URL through a sidecar, and the exit status 2
//! cases; each runs the real binary. The same outputs are the examples of docs/debugging.md and the README:
//! the test fails when those drift (`UPDATE_DOCS=1 cargo test -p cfnet --test explain` rewrites them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod rig;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::rig::{NS, Rig, build, start};

/// What the documentation shows instead of the test's kubeconfig and istiod address.
const DOC_FLAGS: &str = "--state-dir /tmp/cfnet-dev";

/// URL, the problems it reports (code, blocking), the exit status.
type Case<'a> = (&'a str, &'a [(&'a str, bool)], i32);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_through_the_controller_and_istiod() {
    let mut rig = start().await;
    build(&mut rig).await;
    let mut doc = BTreeMap::new();

    healthy_weighted(&rig, &mut doc).await;
    internal_through_a_sidecar(&rig, &mut doc).await;
    one_situation_per_problem_code(&rig, &mut doc).await;
    wrong_case(&rig, &mut doc).await;
    istiod_unreachable(&rig).await;
    state_dir(&rig, &doc).await;
    unusable_input(&rig).await;
    check_docs(&doc);
    if let Some(controller) = rig.controller.take() {
        controller.stop(Duration::from_secs(10)).await.unwrap();
    }
}

/// Healthy, weighted, with endpoints: the README's example.
async fn healthy_weighted(rig: &Rig, doc: &mut BTreeMap<&'static str, (i32, String, String)>) {
    let (code, report) = rig.json_once("https://store.apps.example.com/", &[]).await;
    assert_eq!(code, 0);
    assert_eq!(report["fqdn"], "store.apps.example.com");
    assert_eq!(
        report["matched"]["name"],
        "5f0e1d9c-3a51-4c9e-9f0c-0d6b1f1c2a10"
    );
    let dests: Vec<(String, i64, i64, i64)> = report["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["service"].as_str().unwrap().to_owned(),
                d["weight"].as_i64().unwrap(),
                d["port"].as_i64().unwrap(),
                d["endpoints"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        dests,
        [
            ("s-0b1e5c1a-blue".to_owned(), 80, 8080, 2),
            ("s-0b1e5c1a-green".to_owned(), 20, 8080, 1)
        ]
    );
    let envoy = &report["envoy"];
    assert_eq!(
        envoy["route_config"],
        "https.443.https-workloads.istio-ingressgateway.cf-system"
    );
    assert!(
        envoy["domains"]
            .as_array()
            .unwrap()
            .contains(&json!("store.apps.example.com"))
    );
    assert_eq!(
        envoy["clusters"],
        json!([
            {"name": "outbound|8080||s-0b1e5c1a-blue.cf-workloads.svc.cluster.local", "weight": 80, "exists": true, "endpoints": 2},
            {"name": "outbound|8080||s-0b1e5c1a-green.cf-workloads.svc.cluster.local", "weight": 20, "exists": true, "endpoints": 1},
        ])
    );
    let vs = format!(
        "{NS}/{}",
        cfnet_translate::virtual_service_name("store.apps.example.com")
    );
    assert_eq!(report["virtual_service"], json!(vs));
    assert_eq!(report["routes"][0]["ready"], true);
    assert_eq!(report["routes"][0]["reason"], "Programmed");
    doc.insert(
        "https://store.apps.example.com/",
        rig.explain(&["https://store.apps.example.com/"]).await,
    );
}

/// Internal, through a sidecar of the route's namespace.
async fn internal_through_a_sidecar(
    rig: &Rig,
    doc: &mut BTreeMap<&'static str, (i32, String, String)>,
) {
    let (code, report) = rig.json_once("http://backend.apps.internal/", &[]).await;
    assert_eq!(code, 0);
    assert_eq!(report["envoy"]["proxy"], "sidecar:cf-workloads");
    assert_eq!(report["envoy"]["route_config"], "80");
    assert_eq!(
        report["envoy"]["clusters"],
        json!([
            {"name": "outbound|8080||s-dest-backend.cf-workloads.svc.cluster.local", "weight": 100, "exists": true, "endpoints": 1},
        ])
    );
    doc.insert(
        "http://backend.apps.internal/",
        rig.explain(&["http://backend.apps.internal/"]).await,
    );
}

/// One situation per problem code.
async fn one_situation_per_problem_code(
    rig: &Rig,
    doc: &mut BTreeMap<&'static str, (i32, String, String)>,
) {
    let cases: &[Case] = &[
        (
            "https://typo.apps.example.com/",
            &[("unknown_route", true)],
            1,
        ),
        (
            "https://news.apps.example.com/beta/latest",
            &[("route_not_ready", true)],
            1,
        ),
        (
            "https://soon.apps.example.com/",
            &[("no_destinations", true)],
            1,
        ),
        (
            "https://cart.apps.example.com/",
            &[("no_endpoints", true)],
            1,
        ),
        (
            "https://legacy.apps.example.com/api/orders",
            &[("route_not_ready", true), ("shadowed", true)],
            1,
        ),
        (
            "http://space-b.apps.example.com/",
            &[("not_in_envoy", true), ("https_not_bound", false)],
            1,
        ),
        (
            "http://old-backend.apps.internal/",
            &[("route_not_ready", false), ("cluster_missing", true)],
            1,
        ),
        (
            "https://shop.other.example.org/",
            &[("https_not_bound", true)],
            1,
        ),
        (
            "http://shop.other.example.org/",
            &[("https_not_bound", false)],
            0,
        ),
    ];
    for (url, want, exit) in cases {
        let (code, report) = rig.json_once(url, want).await;
        assert_eq!(code, *exit, "{url}: {report}");
        doc.insert(url, rig.explain(&[url]).await);
    }
    // The ready route news itself works; the matched route of the not-ready case is it.
    let (_, report) = rig
        .json_once(
            "https://news.apps.example.com/beta/latest",
            &[("route_not_ready", true)],
        )
        .await;
    assert_eq!(report["matched"]["name"], "route-news");
    // Longest url first, as the VirtualService orders them.
    assert_eq!(report["routes"][0]["name"], "route-news-beta");
    assert_eq!(report["routes"][0]["reason"], "Invalid");
    assert_eq!(report["routes"][1]["reason"], "Programmed");
}

/// `/API/orders` does not take the `/api` entry: no problem (the catch-all's app answers), but a note.
async fn wrong_case(rig: &Rig, doc: &mut BTreeMap<&'static str, (i32, String, String)>) {
    let url = "https://shop.apps.example.com/API/orders";
    let (code, report) = rig.json_once(url, &[]).await;
    assert_eq!(code, 0);
    assert_eq!(report["matched"]["name"], "route-shop-root");
    let note = report["notes"][0].as_str().unwrap();
    assert!(
        note.starts_with(
            "route cf-workloads/route-shop-api has path /api: Istio compares paths case-sensitively"
        ),
        "{note}"
    );
    doc.insert(url, rig.explain(&[url]).await);
}

/// istiod not reachable: the Envoy part is skipped, not failed.
async fn istiod_unreachable(rig: &Rig) {
    let (code, stdout, _) = rig
        .explain(&[
            "--xds",
            "127.0.0.1:1",
            "-o",
            "json",
            "https://store.apps.example.com/",
        ])
        .await;
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["problems"][0]["code"], "xds_unavailable");
    assert_eq!(report["envoy"], Value::Null);
}

/// `--state-dir DIR` of `cfnet dev up --istiod`: DIR/kubeconfig and DIR/istiod.
async fn state_dir(rig: &Rig, doc: &BTreeMap<&'static str, (i32, String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(rig.cp.kubeconfig_path(), dir.path().join("kubeconfig")).unwrap();
    std::fs::write(dir.path().join("istiod"), format!("{}\n", rig.xds)).unwrap();
    let (code, stdout, stderr) = rig
        .explain(&[
            "--state-dir",
            dir.path().to_str().unwrap(),
            "https://store.apps.example.com/",
        ])
        .await;
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(stdout, doc["https://store.apps.example.com/"].1);
}

/// Unusable input: exit 2, one line.
async fn unusable_input(rig: &Rig) {
    let (code, stdout, stderr) = rig.explain(&["ftp://store.apps.example.com/"]).await;
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("cfnet explain: invalid URL \"ftp://store.apps.example.com/\""),
        "{stderr}"
    );
    let dead = dead_kubeconfig(rig.cp.kubeconfig_path());
    let (code, _, stderr) = rig
        .explain(&[
            "--kubeconfig",
            dead.to_str().unwrap(),
            "https://store.apps.example.com/",
        ])
        .await;
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot list Routes") && stderr.contains("API server is reachable"),
        "{stderr}"
    );
}

/// A copy of `kubeconfig` whose server is a closed port.
fn dead_kubeconfig(kubeconfig: &Path) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let mut value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    value["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1".into();
    let path = kubeconfig.with_file_name("dead-kubeconfig");
    std::fs::write(&path, serde_yaml_ng::to_string(&value).unwrap()).unwrap();
    path
}

/// Each `<!-- cfnet explain URL -->` marker in docs/debugging.md and README.md is followed by a console block
/// with that command's real output; fails when one differs, rewrites them with UPDATE_DOCS=1.
fn check_docs(outputs: &BTreeMap<&str, (i32, String, String)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let mut drift = Vec::new();
    for file in ["docs/debugging.md", "README.md"] {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let (fresh, markers) = regenerate(&text, outputs);
        assert!(
            markers > 0,
            "{file} has no `<!-- cfnet explain URL -->` marker"
        );
        if fresh != text {
            if update {
                std::fs::write(&path, &fresh).unwrap();
            } else {
                drift.push(file);
            }
        }
    }
    assert!(
        drift.is_empty(),
        "{drift:?} show outputs that differ from `cfnet explain`'s: run `UPDATE_DOCS=1 cargo test -p cfnet --test explain` and review the diff"
    );
}

fn regenerate(text: &str, outputs: &BTreeMap<&str, (i32, String, String)>) -> (String, usize) {
    let mut out = String::new();
    let mut lines = text.split_inclusive('\n').peekable();
    let mut markers = 0;
    while let Some(line) = lines.next() {
        out.push_str(line);
        let Some(url) = line
            .trim()
            .strip_prefix("<!-- cfnet explain ")
            .and_then(|rest| rest.strip_suffix("-->"))
            .map(str::trim)
        else {
            continue;
        };
        markers += 1;
        let (code, stdout, stderr) = outputs
            .get(url)
            .unwrap_or_else(|| panic!("no output of `cfnet explain {url}` in this test"));
        assert!(stderr.is_empty(), "{url}: {stderr}");
        // Drop the old block, if any.
        if lines.peek().is_some_and(|l| l.starts_with("```")) {
            lines.next();
            for l in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
            }
        }
        out.push_str(&format!(
            "```console\n$ cfnet explain {DOC_FLAGS} {url}\n{stdout}$ echo $?\n{code}\n```\n"
        ));
    }
    (out, markers)
}
