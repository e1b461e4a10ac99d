//! What the chart renders with non-default values: namespaces, domains, image, policies, optional components,
//! gateway topologies, and the values it refuses.

use serde_json::{Value, json};

use super::*;

pub const CUSTOM: &[&str] = &[
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
