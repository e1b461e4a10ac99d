//! Builders shared by the translate tests, mirroring upstream's `constructRoute` (upstream reference §3).
#![allow(dead_code)]

pub mod generate;

use cfnet_api::{Route, fixtures};
use cfnet_translate::Settings;

pub const NS: &str = "workload-namespace";

pub fn settings() -> Settings {
    Settings {
        gateway: "some-gateway0".to_owned(),
        ..Default::default()
    }
}

/// [`settings`] in gateway-api mode, attached to the default Gateway `cf-system/cf-gateway`.
pub fn gateway_api_settings() -> Settings {
    Settings {
        routing_api: cfnet_translate::RoutingApi::GatewayApi,
        ..settings()
    }
}

pub struct Dest {
    pub guid: &'static str,
    pub port: i64,
    pub weight: Option<i64>,
    pub app: &'static str,
}

pub fn dest(guid: &'static str, port: i64, weight: Option<i64>, app: &'static str) -> Dest {
    Dest {
        guid,
        port,
        weight,
        app,
    }
}

/// upstream `constructRoute`: uid `<name>-k8s-uid`, space/org labels `space-guid-0` / `org-guid-0`,
/// url = host.domain + path, process type `process-type-1`.
pub fn route(
    name: &str,
    host: &str,
    path: &str,
    domain: &str,
    internal: bool,
    dests: Vec<Dest>,
) -> Route {
    dests
        .into_iter()
        .fold(
            fixtures::route(name)
                .namespace(NS)
                .host(host)
                .path(path)
                .domain(domain, internal)
                .uid(&format!("{name}-k8s-uid"))
                .space_and_org("space-guid-0", "org-guid-0"),
            |r, d| {
                r.destination(
                    fixtures::destination(d.guid, d.app)
                        .port(d.port)
                        .weight_opt(d.weight)
                        .process("process-type-1"),
                )
            },
        )
        .build()
}

/// The metadata of a child `name` of FQDN `fqdn` in the workloads namespace, owned by fixture Routes `owners`.
pub fn child_metadata(name: &str, fqdn: &str, owners: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "namespace": NS,
        "labels": {"app.kubernetes.io/managed-by": "cfnet-routecontroller"},
        "annotations": {"cloudfoundry.org/fqdn": fqdn},
        "ownerReferences": owners.iter().map(|o| owner(o)).collect::<Vec<_>>(),
    })
}

/// The names of the owners of `meta`, in order.
pub fn owner_names(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Vec<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .map(|o| o.name.as_str())
        .collect()
}

/// The ownerReference of fixture Route `name` (its uid is `<name>-k8s-uid`).
pub fn owner(name: &str) -> serde_json::Value {
    serde_json::json!({"apiVersion": "networking.cloudfoundry.org/v1alpha1", "kind": "Route",
           "name": name, "uid": format!("{name}-k8s-uid")})
}

/// Route route-guid-0 on test0.domain0.example.com/path0 with two destinations weighted 91 and 9 (ports 9000
/// and 9001 of app-guid-0 and app-guid-1), as in the Go controller's tests.
pub fn weighted_route_0() -> Route {
    route_0(vec![
        dest("route-0-destination-guid-0", 9000, Some(91), "app-guid-0"),
        dest("route-0-destination-guid-1", 9001, Some(9), "app-guid-1"),
    ])
}

/// Route route-guid-0 on test0.domain0.example.com/path0 (external) with `dests`.
pub fn route_0(dests: Vec<Dest>) -> Route {
    route(
        "route-guid-0",
        "test0",
        "/path0",
        "domain0.example.com",
        false,
        dests,
    )
}

/// Route `name` on app.apps.example.com at `path`, one destination `guid` (port 8080, no weight) of
/// app `app`.
pub fn app_route(name: &str, path: &str, guid: &'static str, app: &'static str) -> Route {
    route(
        name,
        "app",
        path,
        "apps.example.com",
        false,
        vec![dest(guid, 8080, None, app)],
    )
}

pub fn in_namespace(mut r: Route, ns: &str) -> Route {
    r.metadata.namespace = Some(ns.to_owned());
    r
}

pub fn created(mut r: Route, rfc3339: &str) -> Route {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    r.metadata.creation_timestamp = Some(Time(rfc3339.parse().expect("timestamp")));
    r
}
