//! Tests of the Helm chart deploy/helm/cf-k8s-networking: `helm lint`, `helm template` with default and
//! non-default values, the golden output of the defaults, the chart's CRD against `cfnet crd`, and every rendered
//! object accepted by a real kube-apiserver (server-side apply, dry run, strict field validation).
//!
//! helm comes from scripts/install-helm.sh (built from the Go module proxy into the cfnet cache when missing);
//! the tests fail, never skip, when it cannot be had.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod custom;
mod defaults;
mod gateway_api;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, ValidationDirective};
use kube::discovery::{self, Scope};
use serde::Deserialize;
use serde_json::Value;

const RELEASE: &str = "cfnet";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chart_dir() -> PathBuf {
    workspace_root().join("deploy/helm/cf-k8s-networking")
}

/// The helm binary, installed by scripts/install-helm.sh on first use (once per test process).
fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let script = workspace_root().join("scripts/install-helm.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}); helm is required for the chart tests:\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let path = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
        assert!(
            path.is_file(),
            "{} printed {stdout:?}, which is not a file",
            script.display()
        );
        path
    })
}

/// Runs helm; Ok(stdout) on success, Err(stderr) on failure.
fn run_helm(args: &[&str]) -> Result<String, String> {
    let out = Command::new(helm())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running helm {args:?}: {e}"));
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("helm prints UTF-8"))
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `helm template` of the chart with `--set` values (and extra flags such as `--include-crds`).
fn try_template(sets: &[&str], flags: &[&str]) -> Result<String, String> {
    let chart = chart_dir();
    let mut args = vec!["template", RELEASE, chart.to_str().expect("UTF-8 path")];
    args.extend_from_slice(flags);
    for set in sets {
        args.push("--set");
        args.push(set);
    }
    run_helm(&args)
}

fn template(sets: &[&str]) -> String {
    try_template(sets, &[]).unwrap_or_else(|e| panic!("helm template with {sets:?} failed:\n{e}"))
}

/// The objects of a multi-document YAML stream, as JSON.
fn objects(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("helm renders valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn rendered(sets: &[&str]) -> Vec<Value> {
    objects(&template(sets))
}

/// The one object of `kind` named `name` in namespace `ns` ("" for cluster-scoped).
fn find<'a>(objs: &'a [Value], kind: &str, ns: &str, name: &str) -> &'a Value {
    let hits: Vec<&Value> = objs
        .iter()
        .filter(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && o["metadata"]["namespace"].as_str().unwrap_or("") == ns
        })
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected exactly one {kind} {ns}/{name}, found {}; rendered: {:#?}",
        hits.len(),
        ids(objs)
    );
    hits[0]
}

fn ids(objs: &[Value]) -> Vec<String> {
    objs.iter()
        .map(|o| {
            format!(
                "{} {}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn count(objs: &[Value], kind: &str) -> usize {
    objs.iter().filter(|o| o["kind"] == kind).count()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("expected a string, got {s}"))
                .to_string()
        })
        .collect()
}

fn controller_container<'a>(objs: &'a [Value], ns: &str) -> &'a Value {
    &find(objs, "Deployment", ns, "routecontroller")["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn chart_passes_helm_lint_with_default_and_custom_values() {
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    run_helm(&["lint", "--strict", chart]).unwrap_or_else(|e| panic!("helm lint (defaults):\n{e}"));
    run_helm(&[
        "lint",
        "--strict",
        chart,
        "--set",
        "systemDomain=sys.cf.test,appDomains={apps.cf.test},ingressGateway.enabled=true,ingressGateway.topology=daemonSet",
    ])
    .unwrap_or_else(|e| panic!("helm lint (custom values):\n{e}"));
}

#[test]
fn golden_default_render() {
    insta::assert_snapshot!("defaults", template(&[]));
}

/// The chart ships the Route CRD exactly as `cfnet crd` prints it (and as deploy/crds holds it).
#[test]
fn chart_crd_is_what_cfnet_crd_prints() {
    let out = Command::new(env!("CARGO_BIN_EXE_cfnet"))
        .arg("crd")
        .output()
        .expect("running cfnet crd");
    assert!(
        out.status.success(),
        "cfnet crd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("UTF-8");
    for file in [
        chart_dir().join("crds/networking.cloudfoundry.org_routes.yaml"),
        workspace_root().join("deploy/crds/networking.cloudfoundry.org_routes.yaml"),
    ] {
        let shipped = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        assert!(
            shipped == printed,
            "{} differs from `cfnet crd`; regenerate it: cargo run -p cfnet -- crd > {}",
            file.display(),
            file.display()
        );
    }
}

/// Server-side applies every object (dry run, strict field validation: unknown fields are errors).
async fn dry_run_apply(client: &Client, objs: &[Value]) -> Vec<String> {
    let params = PatchParams {
        dry_run: true,
        force: true,
        field_manager: Some("cfnet-helm-test".into()),
        field_validation: Some(ValidationDirective::Strict),
    };
    let mut failures = Vec::new();
    for obj in objs {
        let id = ids(std::slice::from_ref(obj)).remove(0);
        let dynamic: DynamicObject =
            serde_json::from_value(obj.clone()).expect("object with apiVersion and kind");
        let types = dynamic.types.clone().expect("apiVersion and kind");
        let gvk = match kube::core::GroupVersionKind::try_from(&types) {
            Ok(gvk) => gvk,
            Err(e) => {
                failures.push(format!("{id}: {e}"));
                continue;
            }
        };
        let (resource, caps) = match discovery::pinned_kind(client, &gvk).await {
            Ok(found) => found,
            Err(e) => {
                failures.push(format!("{id}: kind not served: {e}"));
                continue;
            }
        };
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(client.clone(), &resource),
            Scope::Namespaced => {
                let Some(ns) = dynamic.metadata.namespace.as_deref() else {
                    failures.push(format!("{id}: namespaced kind without metadata.namespace"));
                    continue;
                };
                Api::namespaced_with(client.clone(), ns, &resource)
            }
        };
        let name = dynamic.metadata.name.clone().unwrap_or_default();
        if let Err(e) = api.patch(&name, &params, &Patch::Apply(&dynamic)).await {
            failures.push(format!("{id}: {e}"));
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rendered_object_is_accepted_by_the_api_server() {
    // With the Gateway API CRDs: their schemas and CEL rules check the gateway-api flavour.
    let cp = cfnet_testenv::ControlPlane::start_with(cfnet_testenv::Options {
        gateway_api_crds: true,
        ..cfnet_testenv::Options::default()
    })
    .await
    .expect("starting the local control plane");
    let client = cp.client();

    let mut checked = 0;
    let mut failures = Vec::new();
    for (label, extra) in [
        ("defaults", &[][..]),
        ("custom", custom::CUSTOM),
        (
            "gateway daemonSet",
            &[
                "ingressGateway.enabled=true",
                "ingressGateway.topology=daemonSet",
            ][..],
        ),
        ("gateway-api", &["routingApi=gateway-api"][..]),
        (
            "gateway-api, custom",
            &[
                "routingApi=gateway-api",
                "gatewayApi.name=edge",
                "gatewayApi.gatewayClassName=eg",
                "systemDomain=sys.cf.test",
                "appDomains={apps.cf.test,sys.cf.test,more.cf.test}",
                "systemVirtualServices.uaa.host=uaa.default.svc.cluster.local",
            ][..],
        ),
        (
            "gateway loadBalancer",
            &[
                "ingressGateway.enabled=true",
                "ingressGateway.service.loadBalancerIP=203.0.113.7",
            ][..],
        ),
    ] {
        // Fresh namespaces per render (a deleted namespace never goes away without a controller-manager).
        let system = cp.create_namespace("cf-system").await.unwrap();
        let apps_a = cp.create_namespace("apps-a").await.unwrap();
        let apps_b = cp.create_namespace("apps-b").await.unwrap();
        let istio = cp.create_namespace("istio-system").await.unwrap();
        let namespaces = [
            format!("systemNamespace={system}"),
            format!("workloadsNamespaces={{{apps_a},{apps_b}}}"),
            format!("istioNamespace={istio}"),
        ];
        let mut sets: Vec<&str> = extra.to_vec();
        sets.extend(namespaces.iter().map(String::as_str));
        let yaml = try_template(&sets, &["--include-crds"])
            .unwrap_or_else(|e| panic!("helm template ({label}):\n{e}"));
        let objs = objects(&yaml);
        assert!(
            objs.iter().any(|o| o["kind"] == "CustomResourceDefinition"),
            "--include-crds renders the Route CRD"
        );
        checked += objs.len();
        failures.extend(
            dry_run_apply(&client, &objs)
                .await
                .into_iter()
                .map(|f| format!("[{label}] {f}")),
        );
    }
    assert!(
        failures.is_empty(),
        "the API server rejected {} object(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 40, "only {checked} objects checked");
}
