//! `cfnet diff` against a real kube-apiserver (crates/testenv): a cluster written the way the Go
//! routecontroller wrote it shows exactly the changes the controller then makes, and diff writes
//! nothing (every resourceVersion unchanged); once the controller has converged, diff shows no change;
//! the same binary works as the kubectl plugin `kubectl-cfnet`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cfnet_api::fixtures::{destination, route};
use cfnet_api::{FINALIZER, MANAGED_BY_LABEL, ROUTE_FQDN_ANNOTATION, ROUTE_GUID_LABEL, Route};
use cfnet_translate::{Settings, translate, virtual_service_name};
use common::mesh::GATEWAY;
use common::{CFNET, cfnet};
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use serde_json::{Value, json};

/// The field manager of the Go routecontroller's writes.
const GO_MANAGER: &str = "routecontroller";

/// The Routes: an internal one, four external ones (one with an upper-case host, as Cloud Controller
/// never writes but the Go controller accepted).
fn routes(ns: &str) -> Vec<Route> {
    let r = |name: &str, host: &str, domain: &str, internal: bool| {
        let mut r = route(name)
            .namespace(ns)
            .host(host)
            .domain(domain, internal)
            .space_and_org("space", "org")
            .destination(destination(&format!("d-{name}"), &format!("app-{name}")))
            .build();
        r.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
        r
    };
    vec![
        r("backend", "backend", "apps.internal", true),
        r("shop", "shop", "apps.example.com", false),
        r("web", "web", "apps.example.com", false),
        r("api", "api", "apps.example.com", false),
        r("admin", "Admin", "apps.example.com", false),
    ]
}

fn vs_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::erase::<cfnet_api::VirtualService>(&()),
    )
}

fn drop_key(map: &mut Value, key: &str) {
    if let Some(m) = map.as_object_mut() {
        m.remove(key);
    }
}

/// What the Go controller left for these Routes: today's translation without the managed-by label,
/// mesh destinations without a port (issue 12's F1), the upper-case FQDN as written; Service s-d-shop
/// missing; s-d-api without its route_guid label; s-d-web someone else's (no owner, no labels); and an
/// orphan s-d-old of shop that no Route needs any more.
async fn write_as_the_go_controller(client: &kube::Client, ns: &str, live: &[Route]) {
    let settings = Settings {
        gateway: GATEWAY.into(),
        ..Default::default()
    };
    let translation = translate(live, &settings);
    let apply = PatchParams::apply(GO_MANAGER).force();
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let mut objects: Vec<Value> = translation
        .services
        .iter()
        .map(|s| serde_json::to_value(s).unwrap())
        .collect();
    let mut orphan = objects
        .iter()
        .find(|s| s["metadata"]["name"] == "s-d-shop")
        .unwrap()
        .clone();
    orphan["metadata"]["name"] = "s-d-old".into();
    objects.push(orphan);
    for mut s in objects {
        let name = s["metadata"]["name"].as_str().unwrap().to_owned();
        drop_key(&mut s["metadata"]["labels"], MANAGED_BY_LABEL);
        match name.as_str() {
            "s-d-shop" => continue,
            "s-d-api" => drop_key(&mut s["metadata"]["labels"], ROUTE_GUID_LABEL),
            "s-d-web" => {
                let m = s["metadata"].as_object_mut().unwrap();
                for k in ["labels", "annotations", "ownerReferences"] {
                    m.remove(k);
                }
            }
            "s-d-admin" => {
                s["metadata"]["annotations"][ROUTE_FQDN_ANNOTATION] =
                    "Admin.apps.example.com".into();
            }
            _ => {}
        }
        services
            .patch(&name, &apply, &Patch::Apply(&s))
            .await
            .expect("Service written");
    }
    let vss = vs_api(client, ns);
    for vs in &translation.virtual_services {
        let mut v = serde_json::to_value(vs).unwrap();
        drop_key(&mut v["metadata"]["labels"], MANAGED_BY_LABEL);
        if v["spec"]["gateways"] == json!(["mesh"]) {
            for http in v["spec"]["http"].as_array_mut().unwrap() {
                for dest in http["route"].as_array_mut().unwrap() {
                    drop_key(&mut dest["destination"], "port");
                }
            }
        }
        if v["spec"]["hosts"] == json!(["admin.apps.example.com"]) {
            let old = "Admin.apps.example.com";
            v["metadata"]["name"] = virtual_service_name(old).into();
            v["metadata"]["annotations"][cfnet_api::FQDN_ANNOTATION] = old.into();
            v["spec"]["hosts"] = json!([old]);
        }
        let name = v["metadata"]["name"].as_str().unwrap().to_owned();
        vss.patch(&name, &apply, &Patch::Apply(&v))
            .await
            .expect("VirtualService written");
    }
}

/// kind/name → resourceVersion of every Route, Service and VirtualService in `ns`.
async fn versions(client: &kube::Client, ns: &str) -> BTreeMap<String, String> {
    let lp = ListParams::default();
    let mut all = BTreeMap::new();
    let rv = |m: &kube::api::ObjectMeta| m.resource_version.clone().unwrap();
    for r in Api::<Route>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .unwrap()
    {
        all.insert(
            format!("Route/{}", r.metadata.name.clone().unwrap()),
            rv(&r.metadata),
        );
    }
    for s in Api::<Service>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .unwrap()
    {
        all.insert(
            format!("Service/{}", s.metadata.name.clone().unwrap()),
            rv(&s.metadata),
        );
    }
    for v in vs_api(client, ns).list(&lp).await.unwrap() {
        all.insert(
            format!("VirtualService/{}", v.metadata.name.clone().unwrap()),
            rv(&v.metadata),
        );
    }
    all
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The output with the run's namespace and the Routes' uids replaced, so that it reads the same in
/// every run.
fn stable(text: &str, ns: &str, live: &[Route]) -> String {
    let mut text = text.replace(ns, "cf-workloads");
    for r in live {
        text = text.replace(
            r.metadata.uid.as_deref().unwrap(),
            &format!("<uid of {}>", r.metadata.name.as_deref().unwrap()),
        );
    }
    text
}

/// The namespace under test: the Routes and what the Go controller wrote for them.
struct Cluster {
    client: Client,
    ns: String,
    kubeconfig: String,
    live: Vec<Route>,
}

impl Cluster {
    /// `cfnet diff -n NS --kubeconfig K` plus `extra`.
    fn diff(&self, extra: &[&str]) -> Output {
        let mut args = vec!["diff", "-n", &self.ns, "--kubeconfig", &self.kubeconfig];
        args.extend_from_slice(extra);
        cfnet(&args)
    }
}

/// Creates the Routes in a fresh namespace and writes their children as the Go controller would.
async fn go_controller_cluster(cp: &cfnet_testenv::ControlPlane) -> Cluster {
    let client = cp.client();
    let ns = cp.create_namespace("diff").await.expect("namespace");
    let kubeconfig = cp.kubeconfig_path().display().to_string();
    let route_api: Api<Route> = Api::namespaced(client.clone(), &ns);
    for r in routes(&ns) {
        route_api.create(&PostParams::default(), &r).await.unwrap();
    }
    let live = route_api.list(&ListParams::default()).await.unwrap().items;
    write_as_the_go_controller(&client, &ns, &live).await;
    Cluster {
        client,
        ns,
        kubeconfig,
        live,
    }
}

/// Text: every change, field by field; JSON: the same changes, returned.
fn check_pending_changes(c: &Cluster) -> Value {
    let out = c.diff(&[]);
    assert_eq!(out.status.code(), Some(1), "changes pending: {out:?}");
    let text = stable(&stdout(&out), &c.ns, &c.live);
    insta::assert_snapshot!("diff__go_controller_cluster", text);
    docs_show(&text);

    let out = c.diff(&["-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary = &json["summary"];
    assert_eq!(
        summary,
        &json!({"create": 2, "update": 5, "adopt": 7, "delete": 2, "refuse": 1}),
        "{json:#}"
    );
    let actions: Vec<(String, String)> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] != "Route")
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_owned(),
                c["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [
        ("create", "s-d-shop".to_owned()),
        ("delete", "s-d-old".to_owned()),
        ("refuse", "s-d-web".to_owned()),
        ("adopt", "s-d-api".to_owned()),
        ("create", virtual_service_name("admin.apps.example.com")),
        ("delete", virtual_service_name("Admin.apps.example.com")),
    ] {
        assert!(
            actions.contains(&(want.0.to_owned(), want.1.clone())),
            "{want:?} in {actions:?}"
        );
    }
    json
}

/// Runs the controller until diff reports nothing to do (or 60 s pass); diff's last output.
async fn converge_with_the_controller(c: &Cluster) -> Output {
    let mut config = cfnet_controller::Config::new(GATEWAY);
    config.namespaces = vec![c.ns.clone()];
    let mut controller = cfnet_controller::InProcess::start(config, c.client.clone());
    controller
        .wait_ready(Duration::from_secs(30))
        .await
        .expect("controller ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    let converged = loop {
        let out = c.diff(&[]);
        if out.status.code() == Some(0) || Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    controller
        .stop(Duration::from_secs(10))
        .await
        .expect("controller stopped");
    converged
}

/// Afterwards diff finds nothing but the refused foreign Service, and the orphans are pruned.
async fn check_converged(c: &Cluster, converged: &Output) {
    let ns = &c.ns;
    assert_eq!(converged.status.code(), Some(0), "{}", stdout(converged));
    let text = stdout(converged);
    assert!(
        text.starts_with(&format!("refuse Service {ns}/s-d-web\n"))
            && text.ends_with("summary: 1 refuse\n"),
        "{text}"
    );
    assert!(
        Api::<Service>::namespaced(c.client.clone(), ns)
            .get_opt("s-d-old")
            .await
            .unwrap()
            .is_none(),
        "the controller pruned the orphan diff announced"
    );
    assert!(
        vs_api(&c.client, ns)
            .get_opt(&virtual_service_name("Admin.apps.example.com"))
            .await
            .unwrap()
            .is_none()
    );
}

/// `--routing-api gateway-api` on a cluster without the Gateway API CRDs: every HTTPRoute the controller
/// would write is refused naming what to install, and the VirtualService of that FQDN is not announced as
/// deleted (the controller keeps the old kind until the new one is written). Only the internal FQDN's
/// VirtualService goes: gateway-api mode programs no internal route.
fn check_gateway_api_mode_without_its_crds(c: &Cluster) {
    let out = c.diff(&["--routing-api", "gateway-api"]);
    let text = stdout(&out);
    let refused: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("refuse HTTPRoute {}/hr-", c.ns)))
        .collect();
    assert_eq!(refused.len(), 4, "{text}");
    assert!(
        text.contains("the API server does not serve HTTPRoutes"),
        "{text}"
    );
    let deleted: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("delete VirtualService {}/vs-", c.ns)))
        .collect();
    assert_eq!(
        deleted,
        [virtual_service_name("backend.apps.internal")
            .trim_start_matches("vs-")
            .to_owned()],
        "{text}"
    );
    assert!(!text.contains("create HTTPRoute"), "{text}");
}

/// `kind/name` of every object whose resourceVersion differs between `before` and `after`.
fn written(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}

/// `kind/name` of every change of diff's JSON that is a write (all but refusals).
fn announced(json: &Value) -> BTreeSet<String> {
    json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "refuse")
        .map(|c| {
            format!(
                "{}/{}",
                c["kind"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// -f: a changed port of one Route, compared with the live cluster, touches only its FQDN (no other FQDN
/// of the namespace is compared).
fn check_diff_of_a_file(c: &Cluster) {
    let ns = &c.ns;
    let dir = tempfile::tempdir().unwrap();
    let mut shop = c
        .live
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some("shop"))
        .unwrap()
        .clone();
    shop.spec.destinations[0].port = 9090;
    shop.metadata.managed_fields = None;
    // Without a namespace, as kubectl reads a file: in -n's.
    shop.metadata.namespace = None;
    let file = dir.path().join("shop.yaml");
    std::fs::write(&file, serde_yaml_ng::to_string(&shop).unwrap()).unwrap();
    let out = c.diff(&["-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "update Service {ns}/s-d-shop\n  spec.ports[0].port: 8080 → 9090\n"
        )),
        "{text}"
    );
    assert!(
        !text.contains("s-d-api") && !text.contains("s-d-web"),
        "other FQDNs are not compared: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_shows_what_the_controller_changes_on_a_go_controller_cluster_and_writes_nothing() {
    let cp = cfnet_testenv::ControlPlane::start()
        .await
        .expect("starting the local control plane");
    let c = go_controller_cluster(&cp).await;
    let before = versions(&c.client, &c.ns).await;
    let json = check_pending_changes(&c);
    // Diff wrote nothing.
    assert_eq!(
        versions(&c.client, &c.ns).await,
        before,
        "diff must not write"
    );

    // The controller makes exactly these changes; afterwards diff finds none (the foreign Service is
    // still refused, which is no write).
    let converged = converge_with_the_controller(&c).await;
    check_converged(&c, &converged).await;
    // The controller wrote exactly the objects diff announced: every other resourceVersion is unchanged.
    let converged_versions = versions(&c.client, &c.ns).await;
    assert_eq!(written(&before, &converged_versions), announced(&json));

    // Converged: no writes from diff either.
    let out = c.diff(&[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(versions(&c.client, &c.ns).await, converged_versions);

    check_diff_of_a_file(&c);
    assert_eq!(versions(&c.client, &c.ns).await, converged_versions);
    check_gateway_api_mode_without_its_crds(&c);
    assert_eq!(versions(&c.client, &c.ns).await, converged_versions);

    plugin(
        &c.ns,
        &c.kubeconfig,
        &text_of_converged(&c.ns, &c.kubeconfig),
    );
}

const BEGIN: &str = "<!-- cfnet-diff-output:begin -->\n```text\n";
const END: &str = "```\n<!-- cfnet-diff-output:end -->";

/// docs/install.md shows this very output (`CFNET_UPDATE_DOCS=1` rewrites its block).
fn docs_show(text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/install.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let start = doc
        .find(BEGIN)
        .expect("the begin marker in docs/install.md")
        + BEGIN.len();
    let end = start
        + doc[start..]
            .find(END)
            .expect("the end marker in docs/install.md");
    if std::env::var_os("CFNET_UPDATE_DOCS").is_some() {
        std::fs::write(&path, format!("{}{text}{}", &doc[..start], &doc[end..])).unwrap();
    } else {
        assert_eq!(
            &doc[start..end],
            text,
            "docs/install.md shows another output of cfnet diff: rerun with CFNET_UPDATE_DOCS=1"
        );
    }
}

fn text_of_converged(ns: &str, kubeconfig: &str) -> String {
    stdout(&cfnet(&["diff", "-n", ns, "--kubeconfig", kubeconfig]))
}

/// `kubectl cfnet diff` through a real kubectl when one is installed, else through the argv[0] path
/// (the binary copied as `kubectl-cfnet`): the same result, help in kubectl's terms, `--context`.
fn plugin(ns: &str, kubeconfig: &str, expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("kubectl-cfnet");
    std::fs::copy(CFNET, &plugin).unwrap();
    let context = current_context(Path::new(kubeconfig));
    let kubectl = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    let run = |args: &[&str]| -> Output {
        let mut cmd = if kubectl {
            let path = format!(
                "{}:{}",
                dir.path().display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let mut c = Command::new("kubectl");
            c.arg("cfnet").env("PATH", path);
            c
        } else {
            Command::new(&plugin)
        };
        cmd.args(args)
            .env_remove("ISTIO_GATEWAY_NAME")
            .output()
            .unwrap()
    };
    eprintln!(
        "kubectl plugin through {}",
        if kubectl { "kubectl" } else { "argv[0]" }
    );
    let out = run(&[
        "diff",
        "-n",
        ns,
        "--kubeconfig",
        kubeconfig,
        "--context",
        &context,
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), expected);

    let help = stdout(&run(&["diff", "--help"]));
    assert!(help.contains("Usage: kubectl cfnet diff"), "{help}");
    assert!(
        help.contains("Exit status: 0 no changes, 1 changes pending, 2 unusable input"),
        "{help}"
    );

    let out = run(&[
        "diff",
        "--kubeconfig",
        kubeconfig,
        "--context",
        "no-such-context",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-context") && err.lines().count() == 1,
        "{err}"
    );
}

fn current_context(kubeconfig: &Path) -> String {
    let kc: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(kubeconfig).unwrap()).unwrap();
    kc["current-context"].as_str().unwrap().to_owned()
}

/// Unusable input is exit 2 with one line: an unreadable file, an API server nobody listens on.
#[test]
fn unusable_input_is_exit_2() {
    let out = cfnet(&["diff", "-f", "/nonexistent/routes.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read /nonexistent/routes.yaml"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // Port 9 (discard) on loopback: nothing listens there.
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"http://127.0.0.1:9\"}\n\
         users:\n- name: u\n  user: {}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
    )
    .unwrap();
    let out = cfnet(&["diff", "--kubeconfig", kubeconfig.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("cfnet diff: cannot list Routes in all namespaces")
            && err.lines().count() == 1,
        "{err}"
    );
}
