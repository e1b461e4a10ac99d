//! Objects as the API server serves them once the controller has programmed them, for the unit tests
//! that measure or pack what the index keeps.

use cfnet_api::{
    Condition, ConditionStatus, FINALIZER, READY, Reason, Route, RouteStatus, fixtures,
};

/// A Cloud Controller guid: `what` and `i` make it unique.
pub fn guid(what: &str, i: usize) -> String {
    format!("{what:0>8}-{i:04x}-4a1b-9c2d-0123456789ab")
}

/// Route `i` as Cloud Controller writes it (guids for names) and as the controller leaves it: finalizer,
/// Ready condition, server-set uid, generation and resourceVersion.
pub fn cloud_controller_route(i: usize) -> Route {
    let mut route = fixtures::route(&guid("route", i))
        .namespace("cf-workloads")
        .host(&format!("app-{i}"))
        .uid(&guid("uid", i))
        .created("2026-11-26T01:14:29Z")
        .space_and_org(&guid("space", 1), &guid("org", 1))
        .label(cfnet_api::ROUTE_GUID_LABEL, &guid("route", i))
        .label("app.kubernetes.io/managed-by", "cloudfoundry")
        .destination(fixtures::destination(&guid("dest", i), &guid("app", i)).weight(100))
        .build();
    let meta = &mut route.metadata;
    meta.generation = Some(1);
    meta.resource_version = Some(format!("{}", 48_211 + i));
    meta.finalizers = Some(vec![FINALIZER.to_owned()]);
    route.status = Some(RouteStatus {
        conditions: vec![Condition {
            type_: READY.to_owned(),
            status: ConditionStatus::True,
            reason: Some(Reason::Programmed.as_str().to_owned()),
            message: Some(
                "programmed in VirtualService cf-workloads/vs-23eae7945b37ad54e25ac076a742c82495d1d228f3a784a6992f98c90b432d93"
                    .to_owned(),
            ),
            last_transition_time: Some("2026-11-26T01:14:55Z".to_owned()),
            observed_generation: Some(1),
        }],
    });
    route
}
