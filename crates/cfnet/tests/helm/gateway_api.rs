//! The chart's Gateway API flavour (`routingApi: gateway-api`).

use serde_json::{Value, json};

use super::*;

/// `routingApi: gateway-api`: a Gateway API Gateway and the system routes as HTTPRoutes instead of the Istio
/// Gateway and VirtualServices, and the controller configured for HTTPRoutes; the mesh objects stay.
#[test]
fn the_gateway_api_flavour_replaces_the_istio_gateway_and_virtual_services() {
    let objs = rendered(&["routingApi=gateway-api"]);
    assert_gateway_api_gateway(&objs);
    assert_system_http_routes(&objs);
    let cm = find(&objs, "ConfigMap", "cf-system", "routecontroller-config");
    assert_eq!(cm["data"]["CFNET_ROUTING_API"], "gateway-api");
    assert_eq!(
        cm["data"]["CFNET_GATEWAY_API_PARENT"],
        "cf-system/cf-gateway"
    );
    // The mesh objects do not depend on the flavour.
    assert_eq!(count(&objs, "PeerAuthentication"), 2);
    assert_eq!(count(&objs, "Sidecar"), 1);

    // The default is the Istio flavour, with no trace of the other.
    let defaults = rendered(&[]);
    assert_eq!(defaults.iter().filter(is_gateway_api).count(), 0);
    let cm = find(
        &defaults,
        "ConfigMap",
        "cf-system",
        "routecontroller-config",
    );
    assert!(cm["data"].get("CFNET_ROUTING_API").is_none());
}

/// A system component's Service in another namespace gets a ReferenceGrant there; one not written as
/// `<service>.<namespace>…` is refused, naming the value.
#[test]
fn gateway_api_flavour_system_backends_in_other_namespaces() {
    let objs = rendered(&[
        "routingApi=gateway-api",
        "gatewayApi.name=edge",
        "systemVirtualServices.uaa.host=uaa.identity.svc.cluster.local",
    ]);
    let uaa = find(&objs, "HTTPRoute", "cf-system", "uaa-external");
    assert_eq!(
        uaa["spec"]["rules"][0]["backendRefs"][0],
        json!({"group": "", "kind": "Service", "name": "uaa", "namespace": "identity", "port": 8080})
    );
    assert_eq!(uaa["spec"]["parentRefs"][0]["name"], "edge");
    let grant = find(&objs, "ReferenceGrant", "identity", "uaa-external-backend");
    assert_eq!(
        grant["spec"],
        json!({"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "cf-system"}],
               "to": [{"group": "", "kind": "Service", "name": "uaa"}]})
    );
    assert_eq!(count(&objs, "ReferenceGrant"), 2);
    let err = try_template(
        &[
            "routingApi=gateway-api",
            "systemVirtualServices.uaa.host=uaa",
        ],
        &[],
    )
    .unwrap_err();
    assert!(
        err.contains(r#"host "uaa" must be <service>.<namespace>"#),
        "{err}"
    );
    let err = try_template(&["routingApi=nginx"], &[]).unwrap_err();
    assert!(err.contains("routingApi"), "{err}");
}

fn is_gateway_api(o: &&Value) -> bool {
    o["apiVersion"]
        .as_str()
        .unwrap_or("")
        .starts_with("gateway.networking.k8s.io/")
}

/// No Istio Gateway or VirtualService; the Gateway API Gateway with a listener pair per domain and the
/// grant for its certificates.
fn assert_gateway_api_gateway(objs: &[Value]) {
    assert_eq!(count(objs, "VirtualService"), 0);
    assert!(
        !objs.iter().any(|o| o["apiVersion"]
            .as_str()
            .unwrap_or("")
            .starts_with("networking.istio.io/")
            && o["kind"] == "Gateway"),
        "no Istio Gateway"
    );
    let gw = find(objs, "Gateway", "cf-system", "cf-gateway");
    assert_eq!(gw["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(gw["spec"]["gatewayClassName"], "istio");
    let listeners = gw["spec"]["listeners"].as_array().unwrap();
    let summary: Vec<String> = listeners
        .iter()
        .map(|l| {
            format!(
                "{} {} {} {} {}",
                l["name"].as_str().unwrap(),
                l["port"],
                l["hostname"].as_str().unwrap(),
                l["tls"]["certificateRefs"][0]["name"]
                    .as_str()
                    .unwrap_or("-"),
                l["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"][0]["values"]
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            r#"http-system 80 *.sys.example.com - ["cf-system"]"#,
            r#"https-system 443 *.sys.example.com cf-system-cert ["cf-system"]"#,
            r#"http-system-apex 80 sys.example.com - ["cf-system"]"#,
            r#"https-system-apex 443 sys.example.com cf-system-cert ["cf-system"]"#,
            r#"http-apps-0 80 *.apps.example.com - ["cf-workloads"]"#,
            r#"https-apps-0 443 *.apps.example.com cf-workloads-cert ["cf-workloads"]"#,
            r#"http-apps-0-apex 80 apps.example.com - ["cf-workloads"]"#,
            r#"https-apps-0-apex 443 apps.example.com cf-workloads-cert ["cf-workloads"]"#,
        ]
    );
    assert_eq!(
        listeners[1]["tls"]["certificateRefs"][0]["namespace"], "istio-system",
        "the certificates stay in istioNamespace"
    );
    let grant = find(
        objs,
        "ReferenceGrant",
        "istio-system",
        "cf-gateway-certificates",
    );
    assert_eq!(
        grant["spec"],
        json!({"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "cf-system"}],
               "to": [{"group": "", "kind": "Secret", "name": "cf-system-cert"},
                      {"group": "", "kind": "Secret", "name": "cf-workloads-cert"}]})
    );
}

/// The system routes as HTTPRoutes attached to the Gateway.
fn assert_system_http_routes(objs: &[Value]) {
    let parent =
        json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "cf-gateway"}]);
    let hr = |name: &str| find(objs, "HTTPRoute", "cf-system", name)["spec"].clone();
    assert_eq!(
        hr("cf-api-external"),
        json!({"parentRefs": parent, "hostnames": ["api.sys.example.com"],
               "rules": [{"backendRefs": [{"group": "", "kind": "Service", "name": "capi", "port": 80}]}]})
    );
    assert_eq!(
        hr("uaa-external"),
        json!({"parentRefs": parent,
               "hostnames": ["uaa.sys.example.com", "*.uaa.sys.example.com", "login.sys.example.com", "*.login.sys.example.com"],
               "rules": [{"backendRefs": [{"group": "", "kind": "Service", "name": "uaa", "port": 8080}]}]})
    );
    assert_eq!(
        hr("log-cache-external"),
        json!({"parentRefs": parent, "hostnames": ["log-cache.sys.example.com"],
               "rules": [{"backendRefs": [{"group": "", "kind": "Service", "name": "log-cache-api", "port": 8083}]}]})
    );
    assert_eq!(count(objs, "HTTPRoute"), 3);
    assert_eq!(objs.iter().filter(is_gateway_api).count(), 5);
}
