//! Builders shared by the translate tests, mirroring upstream's `constructRoute` (upstream reference §3).
#![allow(dead_code)]

use std::collections::BTreeMap;

use cfnet_api::{
    AppProcess, DestinationApp, DestinationSelector, Route, RouteDestination, RouteDomain,
    RouteSpec,
};
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
    let mut r = Route::new(
        name,
        RouteSpec {
            host: host.to_owned(),
            path: (!path.is_empty()).then(|| path.to_owned()),
            url: if host.is_empty() {
                format!("{domain}{path}")
            } else {
                format!("{host}.{domain}{path}")
            },
            domain: RouteDomain {
                name: domain.to_owned(),
                internal,
            },
            destinations: dests
                .into_iter()
                .map(|d| RouteDestination {
                    guid: d.guid.to_owned(),
                    weight: d.weight,
                    port: d.port,
                    app: DestinationApp {
                        guid: d.app.to_owned(),
                        process: AppProcess {
                            type_: "process-type-1".to_owned(),
                        },
                    },
                    selector: DestinationSelector {
                        match_labels: BTreeMap::from([
                            ("cloudfoundry.org/app_guid".to_owned(), d.app.to_owned()),
                            (
                                "cloudfoundry.org/process_type".to_owned(),
                                "process-type-1".to_owned(),
                            ),
                        ]),
                    },
                })
                .collect(),
        },
    );
    r.metadata.namespace = Some(NS.to_owned());
    r.metadata.uid = Some(format!("{name}-k8s-uid"));
    r.metadata.labels = Some(BTreeMap::from([
        (
            "cloudfoundry.org/space_guid".to_owned(),
            "space-guid-0".to_owned(),
        ),
        (
            "cloudfoundry.org/org_guid".to_owned(),
            "org-guid-0".to_owned(),
        ),
    ]));
    r
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
