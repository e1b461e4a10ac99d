//! Tests of the Helm chart deploy/helm/cf-k8s-networking: `helm lint`, `helm template` with default and
//! non-default values, the golden output of the defaults, the chart's CRD against `cfnet crd`, and every rendered
//! object accepted by a real kube-apiserver (server-side apply, dry run, strict field validation).
//!
//! helm comes from scripts/install-helm.sh (built from the Go module proxy into the cfnet cache when missing);
//! the tests fail, never skip, when it cannot be had.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, ValidationDirective};
use kube::discovery::{self, Scope};
use serde::Deserialize;
use serde_json::{Value, json};

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

/// The controller container with the default values: image, arguments, probes, ports, resources, hardening.
fn default_container(c: &Value) {
    assert_eq!(
        c["image"], "ghcr.io/cloudfoundry/cfnet:0.1.0",
        "tag defaults to the appVersion"
    );
    assert_eq!(
        strings(&c["args"]),
        [
            "--enable-leader-election",
            "--metrics-addr=:8080",
            "--health-addr=:8081",
            "--log-format=json",
            "--workers=4",
            "--namespace=cf-workloads"
        ]
    );
    assert_eq!(
        c["envFrom"],
        json!([{"configMapRef": {"name": "routecontroller-config"}}])
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "health"})
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "health"})
    );
    assert_eq!(
        c["ports"],
        json!([
            {"name": "metrics", "containerPort": 8080, "protocol": "TCP"},
            {"name": "health", "containerPort": 8081, "protocol": "TCP"},
        ])
    );
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}})
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
}

#[test]
fn defaults_render_the_controller_with_its_configuration_probes_and_hardening() {
    let objs = rendered(&[]);

    let cm = find(&objs, "ConfigMap", "cf-system", "routecontroller-config");
    assert_eq!(
        cm["data"],
        json!({
            "ISTIO_GATEWAY_NAME": "cf-system/istio-ingressgateway",
            "LEADER_ELECTION_NAMESPACE": "cf-system",
            "RESYNC_INTERVAL": "900",
            "CFNET_EVENTS": "all",
        })
    );
    find(&objs, "ServiceAccount", "cf-system", "routecontroller");

    let deploy = find(&objs, "Deployment", "cf-system", "routecontroller");
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(
        deploy["spec"]["selector"]["matchLabels"],
        json!({"app": "routecontroller"}),
        "the Go controller's selector"
    );
    let pod = &deploy["spec"]["template"];
    assert_eq!(pod["spec"]["serviceAccountName"], "routecontroller");
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "8080");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["spec"]["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );

    default_container(controller_container(&objs, "cf-system"));

    let pdb = find(&objs, "PodDisruptionBudget", "cf-system", "routecontroller");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        json!({"app": "routecontroller"})
    );

    let np = find(&objs, "NetworkPolicy", "cf-system", "routecontroller");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        np["spec"]["egress"],
        json!([
            {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
            {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]},
        ]),
        "egress: DNS and the API server only"
    );
    assert_eq!(
        np["spec"]["ingress"],
        json!([{"ports": [{"port": 8080, "protocol": "TCP"}]}, {"ports": [{"port": 8081, "protocol": "TCP"}]}])
    );
}

#[test]
fn rbac_grants_only_the_verbs_the_controller_uses() {
    let objs = rendered(&[]);
    let role = find(&objs, "ClusterRole", "", "routecontroller");
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": ["networking.cloudfoundry.org"], "resources": ["routes"], "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": ["networking.cloudfoundry.org"], "resources": ["routes/status"], "verbs": ["get", "patch", "update"]},
            {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
            {"apiGroups": ["networking.istio.io"], "resources": ["virtualservices"], "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ])
    );
    let binding = find(&objs, "ClusterRoleBinding", "", "routecontroller");
    assert_eq!(binding["roleRef"]["name"], "routecontroller");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "routecontroller", "namespace": "cf-system"}])
    );

    let lease_role = find(
        &objs,
        "Role",
        "cf-system",
        "routecontroller-leader-election",
    );
    assert_eq!(
        lease_role["rules"],
        json!([
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": ["cf-k8s-networking-routecontroller"], "verbs": ["get", "update", "patch"]},
        ])
    );
    let lease_binding = find(
        &objs,
        "RoleBinding",
        "cf-system",
        "routecontroller-leader-election",
    );
    assert_eq!(
        lease_binding["roleRef"]["name"],
        "routecontroller-leader-election"
    );
    assert_eq!(lease_binding["subjects"][0]["name"], "routecontroller");
    // Nothing else in the chart grants the controller anything.
    assert_eq!(count(&objs, "ClusterRole"), 1);
    assert_eq!(count(&objs, "Role"), 1);
}

#[test]
fn defaults_render_the_ingress_path_mtls_sidecar_and_access_log() {
    let objs = rendered(&[]);

    let gw = find(&objs, "Gateway", "cf-system", "istio-ingressgateway");
    assert_eq!(gw["spec"]["selector"], json!({"istio": "ingressgateway"}));
    assert_eq!(
        gw["spec"]["servers"],
        json!([
            {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["cf-system/*", "cf-workloads/*"]},
            {"port": {"number": 443, "name": "https-system", "protocol": "HTTPS"},
             "hosts": ["cf-system/sys.example.com", "cf-system/*.sys.example.com"],
             "tls": {"mode": "SIMPLE", "credentialName": "cf-system-cert"}},
            {"port": {"number": 443, "name": "https-workloads", "protocol": "HTTPS"},
             "hosts": ["cf-workloads/apps.example.com", "cf-workloads/*.apps.example.com"],
             "tls": {"mode": "SIMPLE", "credentialName": "cf-workloads-cert"}},
        ])
    );

    let vs = |name: &str| find(&objs, "VirtualService", "cf-system", name)["spec"].clone();
    assert_eq!(
        vs("cf-api-external-virtual-service"),
        json!({"gateways": ["cf-system/istio-ingressgateway"], "hosts": ["api.sys.example.com"],
               "http": [{"route": [{"destination": {"host": "capi.cf-system.svc.cluster.local", "port": {"number": 80}}}]}]})
    );
    assert_eq!(
        vs("uaa-external-virtual-service"),
        json!({"gateways": ["cf-system/istio-ingressgateway"],
               "hosts": ["uaa.sys.example.com", "*.uaa.sys.example.com", "login.sys.example.com", "*.login.sys.example.com"],
               "http": [{"route": [{"destination": {"host": "uaa.cf-system.svc.cluster.local", "port": {"number": 8080}}}]}]})
    );
    assert_eq!(
        vs("log-cache-external-virtual-service"),
        json!({"gateways": ["cf-system/istio-ingressgateway"], "hosts": ["log-cache.sys.example.com"],
               "http": [{"route": [{"destination": {"host": "log-cache-api.cf-system.svc.cluster.local", "port": {"number": 8083}}}]}]})
    );
    assert_eq!(count(&objs, "VirtualService"), 3);

    for ns in ["cf-system", "cf-workloads"] {
        let pa = find(&objs, "PeerAuthentication", ns, "default");
        assert_eq!(pa["spec"], json!({"mtls": {"mode": "STRICT"}}));
    }
    assert_eq!(
        count(&objs, "PeerAuthentication"),
        2,
        "not mesh-wide by default"
    );

    let sidecar = find(&objs, "Sidecar", "cf-workloads", "default");
    assert_eq!(
        sidecar["spec"],
        json!({"egress": [{"hosts": ["./*", "cf-system/*", "istio-system/*"]}]})
    );

    let mesh = find(&objs, "ConfigMap", "istio-system", "cf-k8s-networking-mesh");
    let mesh: Value = serde_yaml_ng::from_str(mesh["data"]["mesh"].as_str().unwrap()).unwrap();
    assert_eq!(mesh["accessLogFile"], "/dev/stdout");
    assert_eq!(mesh["accessLogEncoding"], "JSON");
    // The local istiod of `cfnet dev up --istiod` and the tests runs with exactly these settings.
    let local: Value =
        serde_yaml_ng::from_str(&cfnet_testenv::mesh_config::mesh_config_yaml().unwrap()).unwrap();
    assert_eq!(local, mesh, "testenv's istiod mesh config is the chart's");
    let format: Value = serde_json::from_str(mesh["accessLogFormat"].as_str().unwrap())
        .expect("the format is JSON");
    assert_eq!(
        format["process_type"], "%REQ(CF-APP-PROCESS-TYPE)%",
        "the header the controller sets"
    );
    assert_eq!(format["app_id"], "%REQ(CF-APP-ID)%");
    assert_eq!(format["space_id"], "%REQ(CF-SPACE-ID)%");
    assert_eq!(format["organization_id"], "%REQ(CF-ORGANIZATION-ID)%");
    assert_eq!(format["path"], "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%");
    assert_eq!(
        format.as_object().unwrap().len(),
        32,
        "the upstream field set"
    );

    // The gateway workload is opt-in.
    assert_eq!(count(&objs, "DaemonSet"), 0);
    assert_eq!(count(&objs, "Service"), 0);
    assert_eq!(count(&objs, "Deployment"), 1);
}

const CUSTOM: &[&str] = &[
    "systemNamespace=cf-core",
    "workloadsNamespaces={apps-a,apps-b}",
    "istioNamespace=mesh-system",
    "systemDomain=sys.cf.test",
    "appDomains={apps.cf.test,sys.cf.test}",
    "tls.systemCertSecret=sys-tls",
    "tls.workloadsCertSecret=apps-tls",
    "image.repository=registry.test/cfnet",
    "image.tag=1.2.3",
    "image.pullPolicy=Always",
    "replicas=3",
    "resyncInterval=30",
    "logFormat=text",
    "resources.limits.memory=128Mi",
    "gateway.httpsRedirect=true",
    "systemVirtualServices.cloudController.host=cc.cf-core.svc.cluster.local",
    "systemVirtualServices.cloudController.port=9022",
    "systemVirtualServices.uaa.port=8443",
    "peerAuthentication.meshWide=true",
    "sidecar.egressHosts={./*,cf-core/*}",
    "controller.networkPolicy.apiServerCIDRs={10.0.0.1/32}",
    "controller.prometheusScrape=false",
    "controller.workers=8",
    "controller.events=problems",
];

/// CUSTOM's controller: its configuration, image, resources, arguments, RBAC and NetworkPolicy.
fn custom_controller(objs: &[Value]) {
    let cm = find(objs, "ConfigMap", "cf-core", "routecontroller-config");
    assert_eq!(
        cm["data"]["ISTIO_GATEWAY_NAME"],
        "cf-core/istio-ingressgateway"
    );
    assert_eq!(cm["data"]["LEADER_ELECTION_NAMESPACE"], "cf-core");
    assert_eq!(cm["data"]["RESYNC_INTERVAL"], "30");
    assert_eq!(cm["data"]["CFNET_EVENTS"], "problems");

    let deploy = find(objs, "Deployment", "cf-core", "routecontroller");
    assert_eq!(deploy["spec"]["replicas"], 3);
    assert!(
        deploy["spec"]["template"]["metadata"]["annotations"]
            .get("prometheus.io/scrape")
            .is_none()
    );
    let c = controller_container(objs, "cf-core");
    assert_eq!(c["image"], "registry.test/cfnet:1.2.3");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["resources"]["limits"]["memory"], "128Mi");
    let args = strings(&c["args"]);
    assert!(args.contains(&"--log-format=text".to_string()), "{args:?}");
    assert!(args.contains(&"--workers=8".to_string()), "{args:?}");
    assert!(
        args.ends_with(&[
            "--namespace=apps-a".to_string(),
            "--namespace=apps-b".to_string()
        ]),
        "{args:?}"
    );

    assert_eq!(
        find(objs, "ClusterRoleBinding", "", "routecontroller")["subjects"][0]["namespace"],
        "cf-core"
    );
    find(objs, "Role", "cf-core", "routecontroller-leader-election");
    assert_eq!(
        find(objs, "NetworkPolicy", "cf-core", "routecontroller")["spec"]["egress"][1]["to"],
        json!([{"ipBlock": {"cidr": "10.0.0.1/32"}}])
    );
}

/// CUSTOM's Istio objects: Gateway servers, system VirtualServices, mTLS and sidecars.
fn custom_istio(objs: &[Value]) {
    // The system domain is also an app domain: served with the system certificate to the workloads namespaces.
    let gw = find(objs, "Gateway", "cf-core", "istio-ingressgateway");
    assert_eq!(
        gw["spec"]["servers"],
        json!([
            {"port": {"number": 80, "name": "http", "protocol": "HTTP"},
             "hosts": ["cf-core/*", "apps-a/*", "apps-b/*"], "tls": {"httpsRedirect": true}},
            {"port": {"number": 443, "name": "https-system", "protocol": "HTTPS"},
             "hosts": ["cf-core/sys.cf.test", "cf-core/*.sys.cf.test",
                       "apps-a/sys.cf.test", "apps-a/*.sys.cf.test", "apps-b/sys.cf.test", "apps-b/*.sys.cf.test"],
             "tls": {"mode": "SIMPLE", "credentialName": "sys-tls"}},
            {"port": {"number": 443, "name": "https-workloads", "protocol": "HTTPS"},
             "hosts": ["apps-a/apps.cf.test", "apps-a/*.apps.cf.test", "apps-b/apps.cf.test", "apps-b/*.apps.cf.test"],
             "tls": {"mode": "SIMPLE", "credentialName": "apps-tls"}},
        ])
    );

    let api = find(
        objs,
        "VirtualService",
        "cf-core",
        "cf-api-external-virtual-service",
    );
    assert_eq!(
        api["spec"]["gateways"],
        json!(["cf-core/istio-ingressgateway"])
    );
    assert_eq!(api["spec"]["hosts"], json!(["api.sys.cf.test"]));
    assert_eq!(
        api["spec"]["http"][0]["route"][0]["destination"],
        json!({"host": "cc.cf-core.svc.cluster.local", "port": {"number": 9022}})
    );
    let uaa = find(
        objs,
        "VirtualService",
        "cf-core",
        "uaa-external-virtual-service",
    );
    assert_eq!(
        strings(&uaa["spec"]["hosts"]),
        [
            "uaa.sys.cf.test",
            "*.uaa.sys.cf.test",
            "login.sys.cf.test",
            "*.login.sys.cf.test"
        ]
    );
    assert_eq!(
        uaa["spec"]["http"][0]["route"][0]["destination"],
        json!({"host": "uaa.cf-core.svc.cluster.local", "port": {"number": 8443}}),
        "unset hosts follow systemNamespace"
    );

    // Mesh-wide STRICT mTLS: one policy in the Istio root namespace, none per namespace.
    assert_eq!(count(objs, "PeerAuthentication"), 1);
    find(objs, "PeerAuthentication", "mesh-system", "default");

    for ns in ["apps-a", "apps-b"] {
        assert_eq!(
            find(objs, "Sidecar", ns, "default")["spec"]["egress"][0]["hosts"],
            json!(["./*", "cf-core/*"])
        );
    }
    find(objs, "ConfigMap", "mesh-system", "cf-k8s-networking-mesh");
}

#[test]
fn custom_values_change_namespaces_domains_image_and_policies() {
    let objs = rendered(CUSTOM);
    custom_controller(&objs);
    custom_istio(&objs);
}

#[test]
fn without_extra_app_domains_there_is_no_workloads_https_server() {
    let objs = rendered(&["systemDomain=cf.test", "appDomains={cf.test}"]);
    let servers = &find(&objs, "Gateway", "cf-system", "istio-ingressgateway")["spec"]["servers"];
    let names: Vec<&str> = servers
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["port"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["http", "https-system"]);
    assert_eq!(
        servers[1]["hosts"],
        json!([
            "cf-system/cf.test",
            "cf-system/*.cf.test",
            "cf-workloads/cf.test",
            "cf-workloads/*.cf.test"
        ])
    );
}

#[test]
fn optional_components_can_be_switched_off() {
    let objs = rendered(&[
        "gateway.enabled=false",
        "systemVirtualServices.enabled=false",
        "peerAuthentication.enabled=false",
        "sidecar.enabled=false",
        "accessLog.enabled=false",
        "controller.networkPolicy.enabled=false",
        "controller.podDisruptionBudget.enabled=false",
    ]);
    for kind in [
        "Gateway",
        "VirtualService",
        "PeerAuthentication",
        "Sidecar",
        "NetworkPolicy",
        "PodDisruptionBudget",
    ] {
        assert_eq!(count(&objs, kind), 0, "{kind} still rendered");
    }
    assert_eq!(count(&objs, "ConfigMap"), 1, "only the controller's");
    // The controller itself is always there.
    find(&objs, "Deployment", "cf-system", "routecontroller");
}

#[test]
fn ingress_gateway_topologies_daemonset_with_host_ports_or_load_balancer() {
    let ds = rendered(&[
        "ingressGateway.enabled=true",
        "ingressGateway.topology=daemonSet",
    ]);
    let daemonset = find(&ds, "DaemonSet", "istio-system", "istio-ingressgateway");
    let pod = &daemonset["spec"]["template"];
    assert_eq!(
        pod["metadata"]["annotations"]["inject.istio.io/templates"],
        "gateway"
    );
    assert_eq!(
        pod["metadata"]["labels"]["istio"], "ingressgateway",
        "selected by the Gateway"
    );
    let ports = &pod["spec"]["containers"][0]["ports"];
    assert_eq!(
        ports[0],
        json!({"name": "http2", "containerPort": 8080, "protocol": "TCP", "hostPort": 80})
    );
    assert_eq!(
        ports[1],
        json!({"name": "https", "containerPort": 8443, "protocol": "TCP", "hostPort": 443})
    );
    let svc = find(&ds, "Service", "istio-system", "istio-ingressgateway");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(count(&ds, "Deployment"), 1, "only the controller");
    find(
        &ds,
        "RoleBinding",
        "istio-system",
        "istio-ingressgateway-sds",
    );

    let lb = rendered(&[
        "ingressGateway.enabled=true",
        "ingressGateway.replicas=3",
        "ingressGateway.service.loadBalancerIP=203.0.113.7",
    ]);
    let deploy = find(&lb, "Deployment", "istio-system", "istio-ingressgateway");
    assert_eq!(deploy["spec"]["replicas"], 3);
    let ports = &deploy["spec"]["template"]["spec"]["containers"][0]["ports"];
    assert!(
        ports
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.get("hostPort").is_none()),
        "{ports}"
    );
    let svc = find(&lb, "Service", "istio-system", "istio-ingressgateway");
    assert_eq!(svc["spec"]["type"], "LoadBalancer");
    assert_eq!(svc["spec"]["externalTrafficPolicy"], "Local");
    assert_eq!(svc["spec"]["loadBalancerIP"], "203.0.113.7");
    assert_eq!(
        svc["spec"]["ports"],
        json!([
            {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
            {"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
        ])
    );
    assert_eq!(count(&lb, "DaemonSet"), 0);
}

#[test]
fn bad_values_are_rejected_naming_the_value() {
    for (set, expect) in [
        ("logFormat=xml", "/logFormat"),
        ("systemDomain=Not_A_Domain", "/systemDomain"),
        ("workloadsNamespaces=null", "workloadsNamespaces"),
        ("replicas=0", "/replicas"),
        ("controller.workers=0", "/controller/workers"),
        ("resyncInterval=0", "/resyncInterval"),
        (
            "ingressGateway.topology=nodePort",
            "/ingressGateway/topology",
        ),
        ("sidecar.egressHosts={cf-system}", "/sidecar/egressHosts/0"),
    ] {
        let err = try_template(&[set], &[]).expect_err(set);
        assert!(
            err.contains(expect),
            "--set {set}: error does not name {expect}:\n{err}"
        );
    }
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
    let cp = cfnet_testenv::ControlPlane::start()
        .await
        .expect("starting the local control plane");
    let client = cp.client();

    let mut checked = 0;
    let mut failures = Vec::new();
    for (label, extra) in [
        ("defaults", &[][..]),
        ("custom", CUSTOM),
        (
            "gateway daemonSet",
            &[
                "ingressGateway.enabled=true",
                "ingressGateway.topology=daemonSet",
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
