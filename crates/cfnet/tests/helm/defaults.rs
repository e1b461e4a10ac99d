//! What the chart renders with its default values: the controller, its RBAC, the ingress path, mTLS, the
//! workloads Sidecar and the access log.

use serde_json::{Value, json};

use super::*;

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
            {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"], "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
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

/// The Gateway: HTTP for both namespaces, HTTPS with the system and the workloads certificate.
fn assert_default_gateway(objs: &[Value]) {
    let gw = find(objs, "Gateway", "cf-system", "istio-ingressgateway");
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
}

/// The system components' external VirtualServices.
fn assert_default_system_virtual_services(objs: &[Value]) {
    let vs = |name: &str| find(objs, "VirtualService", "cf-system", name)["spec"].clone();
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
    assert_eq!(count(objs, "VirtualService"), 3);
}

/// Strict mTLS in both namespaces (not mesh-wide) and the workloads Sidecar.
fn assert_default_mtls_and_sidecar(objs: &[Value]) {
    for ns in ["cf-system", "cf-workloads"] {
        let pa = find(objs, "PeerAuthentication", ns, "default");
        assert_eq!(pa["spec"], json!({"mtls": {"mode": "STRICT"}}));
    }
    assert_eq!(
        count(objs, "PeerAuthentication"),
        2,
        "not mesh-wide by default"
    );

    let sidecar = find(objs, "Sidecar", "cf-workloads", "default");
    assert_eq!(
        sidecar["spec"],
        json!({"egress": [{"hosts": ["./*", "cf-system/*", "istio-system/*"]}]})
    );
}

/// The mesh config: JSON access logs with the CF headers, as testenv's istiod runs.
fn assert_default_access_log(objs: &[Value]) {
    let mesh = find(objs, "ConfigMap", "istio-system", "cf-k8s-networking-mesh");
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
}

#[test]
fn defaults_render_the_ingress_path_mtls_sidecar_and_access_log() {
    let objs = rendered(&[]);

    assert_default_gateway(&objs);
    assert_default_system_virtual_services(&objs);
    assert_default_mtls_and_sidecar(&objs);
    assert_default_access_log(&objs);

    // The gateway workload is opt-in.
    assert_eq!(count(&objs, "DaemonSet"), 0);
    assert_eq!(count(&objs, "Service"), 0);
    assert_eq!(count(&objs, "Deployment"), 1);
}
