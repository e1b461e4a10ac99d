//! Every upstream unit case (upstream reference §3.1 S1–S3, §3.2 V1–V17) as a named test. Where upstream
//! expected an error for the whole Build, we expect the invalid route to be reported and left out while
//! its siblings are translated; the adaptations are noted per test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use cfnet_translate::{
    ClaimIndex, FqdnKey, Reason, Translation, translate, translate_fqdn, virtual_service_name,
};
use common::*;
use serde_json::{Value, json};

fn headers(app: &str) -> Value {
    json!({"request": {"set": {
        "CF-App-Id": app, "CF-App-Process-Type": "process-type-1",
        "CF-Space-Id": "space-guid-0", "CF-Organization-Id": "org-guid-0"}}})
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("serializable")
}

/// upstream `constructVirtualService`, plus our managed-by label; one gateway (ours is a single setting).
fn expected_vs(fqdn: &str, internal: bool, owners: &[&str], http: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": child_metadata(&virtual_service_name(fqdn), fqdn, owners),
        "spec": {
            "hosts": [fqdn],
            "gateways": [if internal { "mesh" } else { "some-gateway0" }],
            "http": http,
        }
    })
}

fn expected_service(name: &str, route: &str, fqdn: &str, app: &str, port: i64) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {
                "cloudfoundry.org/route_guid": route,
                "cloudfoundry.org/app_guid": app,
                "cloudfoundry.org/process_type": "process-type-1",
                "app.kubernetes.io/managed-by": "cfnet-routecontroller",
            },
            "annotations": {"cloudfoundry.org/route-fqdn": fqdn},
            "ownerReferences": [owner(route)],
        },
        "spec": {
            "selector": {"cloudfoundry.org/app_guid": app, "cloudfoundry.org/process_type": "process-type-1"},
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        }
    })
}

fn vs_json(t: &Translation) -> Vec<Value> {
    t.virtual_services.iter().map(to_json).collect()
}

fn weights(t: &Translation, vs: usize) -> Vec<i64> {
    let v = to_json(&t.virtual_services[vs]);
    v["spec"]["http"][0]["route"]
        .as_array()
        .expect("route")
        .iter()
        .map(|d| d["weight"].as_i64().unwrap_or(0))
        .collect()
}

fn base_unweighted() -> cfnet_api::Route {
    route_0(vec![
        dest("route-0-destination-guid-0", 9000, None, "app-guid-0"),
        dest("route-0-destination-guid-1", 8080, None, "app-guid-1"),
        dest("route-0-destination-guid-2", 8080, None, "app-guid-2"),
    ])
}

#[test]
fn s1_returns_a_service_for_each_route_destination() {
    let r = weighted_route_0();
    let services: Vec<Value> = cfnet_translate::route_services(&r)
        .iter()
        .map(to_json)
        .collect();
    assert_eq!(
        services,
        vec![
            expected_service(
                "s-route-0-destination-guid-0",
                "route-guid-0",
                "test0.domain0.example.com",
                "app-guid-0",
                9000
            ),
            expected_service(
                "s-route-0-destination-guid-1",
                "route-guid-0",
                "test0.domain0.example.com",
                "app-guid-1",
                9001
            ),
        ]
    );
    // The same through the whole translation.
    let t = translate(&[r], &settings());
    assert_eq!(t.services.iter().map(to_json).collect::<Vec<_>>(), services);
}

#[test]
fn s2_route_without_destinations_creates_no_service() {
    let r = route(
        "route-guid-1",
        "test0",
        "/path0/deeper",
        "domain0.example.com",
        true,
        vec![],
    );
    assert!(cfnet_translate::route_services(&r).is_empty());
    let t = translate(&[r], &settings());
    assert!(t.services.is_empty());
    assert!(t.problems.is_empty());
}

/// Upstream tested its mutate function; we apply the desired object whole (server-side apply), so the
/// desired Service must carry exactly the fields upstream's mutate copied, and nothing the server owns.
#[test]
fn s3_desired_service_carries_exactly_the_copied_fields() {
    let mut r = route(
        "routey-boi",
        "test0",
        "",
        "domain0.example.com",
        false,
        vec![dest("route-0-destination-guid-1", 9001, None, "app-guid-1")],
    );
    r.metadata.uid = Some("asdfa-adfsdf-fdsfdsf".to_owned());
    let svc = to_json(&cfnet_translate::route_services(&r)[0]);
    let meta = svc["metadata"].as_object().expect("metadata");
    let mut keys: Vec<&str> = meta.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "annotations",
            "labels",
            "name",
            "namespace",
            "ownerReferences"
        ]
    );
    assert_eq!(
        svc["metadata"]["ownerReferences"][0]["uid"],
        "asdfa-adfsdf-fdsfdsf"
    );
    assert_eq!(
        svc["spec"],
        json!({"selector": {"cloudfoundry.org/app_guid": "app-guid-1", "cloudfoundry.org/process_type": "process-type-1"},
               "ports": [{"name": "http", "port": 9001, "protocol": "TCP"}]})
    );
    assert!(svc.get("status").is_none());
}

#[test]
fn v1_returns_a_virtual_service_per_fqdn() {
    let routes = [
        weighted_route_0(),
        route(
            "route-guid-1",
            "test1",
            "",
            "domain1.example.com",
            false,
            vec![dest(
                "route-1-destination-guid-0",
                8080,
                Some(100),
                "app-guid-1",
            )],
        ),
    ];
    let t = translate(&routes, &settings());
    assert_eq!(
        t.virtual_services[0].metadata.name.as_deref(),
        Some("vs-243dc593714da8353764fd6f7a616860b6309304ddf499f9c8af13908998b35a")
    );
    assert_eq!(
        vs_json(&t),
        vec![
            expected_vs(
                "test0.domain0.example.com",
                false,
                &["route-guid-0"],
                json!([{"match": [{"uri": {"prefix": "/path0"}}], "route": [
                    {"destination": {"host": "s-route-0-destination-guid-0"}, "weight": 91, "headers": headers("app-guid-0")},
                    {"destination": {"host": "s-route-0-destination-guid-1"}, "weight": 9, "headers": headers("app-guid-1")},
                ]}])
            ),
            expected_vs(
                "test1.domain1.example.com",
                false,
                &["route-guid-1"],
                json!([{"route": [
                    {"destination": {"host": "s-route-1-destination-guid-0"}, "weight": 100, "headers": headers("app-guid-1")},
                ]}])
            ),
        ]
    );
    assert_eq!(
        t.virtual_services[1].metadata.name.as_deref(),
        Some("vs-66be3e2fa6f686df30b7907010f02e8823fb6aab58d62263b8ac38fc32bf3918")
    );
    assert!(t.problems.is_empty());
}

#[test]
fn v2_weights_absent_three_destinations_split_34_33_33() {
    let t = translate(&[base_unweighted()], &settings());
    assert_eq!(weights(&t, 0), [34, 33, 33]);
}

#[test]
fn v3_weights_absent_evenly_divisible_split_50_50() {
    let mut r = base_unweighted();
    r.spec.destinations.truncate(2);
    for d in &mut r.spec.destinations {
        d.selector.match_labels.clear();
    }
    let t = translate(&[r], &settings());
    assert_eq!(weights(&t, 0), [50, 50]);
}

#[test]
fn v4_weights_present_and_summing_to_100_are_kept() {
    let mut r = base_unweighted();
    for (d, w) in r.spec.destinations.iter_mut().zip([70, 20, 10]) {
        d.weight = Some(w);
    }
    let t = translate(&[r], &settings());
    assert_eq!(weights(&t, 0), [70, 20, 10]);
}

/// Upstream: the whole Build fails with `... weights must sum up to 100`. Ours: the invalid route is
/// reported and left out, the other FQDN is translated. (Renamed from upstream's duplicate name
/// `route-guid-0`, because one namespace cannot hold two routes of one name.)
#[test]
fn v5_weights_not_summing_to_100_are_reported_and_siblings_survive() {
    let invalid = route(
        "route-guid-invalid",
        "invalid-route",
        "/path0",
        "domain0.example.com",
        false,
        vec![
            dest("invalid-destination-guid-0", 9000, Some(80), "app-guid-0"),
            dest("invalid-destination-guid-1", 8080, Some(80), "app-guid-1"),
        ],
    );
    let t = translate(&[base_unweighted(), invalid], &settings());
    assert_eq!(t.problems.len(), 1);
    assert_eq!(t.problems[0].route, "route-guid-invalid");
    assert_eq!(t.problems[0].reason, Reason::Invalid);
    assert_eq!(t.problems[0].message, "weights must sum to 100, got 160");
    assert_eq!(t.virtual_services.len(), 1);
    assert_eq!(
        t.virtual_services[0].spec.hosts,
        ["test0.domain0.example.com"]
    );
    assert_eq!(weights(&t, 0), [34, 33, 33]);
    assert_eq!(t.services.len(), 3, "no Service for the invalid route");
}

/// Upstream: Build fails with `... weights must be set on all or none`. Ours: reported, siblings survive.
#[test]
fn v6_weights_on_some_destinations_only_are_reported() {
    let invalid = route(
        "route-guid-invalid",
        "invalid-route",
        "/path0",
        "invalid-route.domain0.example.com",
        false,
        vec![
            dest("invalid-destination-guid-0", 9000, Some(80), "app-guid-0"),
            dest("invalid-destination-guid-1", 8080, None, "app-guid-1"),
        ],
    );
    let t = translate(&[base_unweighted(), invalid], &settings());
    assert_eq!(t.problems.len(), 1);
    assert_eq!(
        t.problems[0].message,
        "weights must be set on all destinations or on none (destination invalid-destination-guid-1 has none)"
    );
    assert_eq!(t.virtual_services.len(), 1);
    assert_eq!(weights(&t, 0), [34, 33, 33]);
}

/// Upstream used an empty destination guid here; we reject that (it makes a Service named `s-`), so the
/// gateway check uses a real guid and the empty guid is checked on its own.
#[test]
fn v7_internal_domain_uses_the_mesh_gateway() {
    let r = route(
        "route-guid-0",
        "test0",
        "",
        "domain0.apps.internal",
        true,
        vec![dest(
            "route-0-destination-guid-0",
            8080,
            Some(100),
            "app-guid-0",
        )],
    );
    let t = translate(std::slice::from_ref(&r), &settings());
    assert_eq!(t.virtual_services[0].spec.gateways, ["mesh"]);
    assert_eq!(
        t.virtual_services[0].metadata.name.as_deref(),
        Some("vs-e8bd59da31a6802952f58e084d3ad201187f96f2888a75a9339dafdf86abf5db")
    );

    let mut empty_guid = r;
    empty_guid.spec.destinations[0].guid.clear();
    let t = translate(&[empty_guid], &settings());
    assert!(t.virtual_services.is_empty());
    assert_eq!(t.problems[0].message, "destination guid must not be empty");
}

/// Upstream's case is internal: since F1 of issue 12 its mesh destinations carry their Service port
/// (upstream wrote none, so istiod routed port 80 to a cluster that does not exist).
#[test]
fn v8_two_routes_of_one_fqdn_are_ordered_by_longest_prefix() {
    let routes = [
        route(
            "route-guid-0",
            "test0",
            "/path0",
            "domain0.example.com",
            true,
            vec![dest(
                "route-0-destination-guid-0",
                9000,
                Some(100),
                "app-guid-0",
            )],
        ),
        route(
            "route-guid-1",
            "test0",
            "/path0/deeper",
            "domain0.example.com",
            true,
            vec![dest(
                "route-1-destination-guid-0",
                8080,
                Some(100),
                "app-guid-1",
            )],
        ),
    ];
    let t = translate(&routes, &settings());
    assert_eq!(
        vs_json(&t),
        vec![expected_vs(
            "test0.domain0.example.com",
            true,
            &["route-guid-1", "route-guid-0"],
            json!([
                {"match": [{"uri": {"prefix": "/path0/deeper"}}], "route": [
                    {"destination": {"host": "s-route-1-destination-guid-0", "port": {"number": 8080}}, "weight": 100, "headers": headers("app-guid-1")}]},
                {"match": [{"uri": {"prefix": "/path0"}}], "route": [
                    {"destination": {"host": "s-route-0-destination-guid-0", "port": {"number": 9000}}, "weight": 100, "headers": headers("app-guid-0")}]},
            ])
        )]
    );
}

#[test]
fn v9_destinationless_route_sharing_an_fqdn_is_skipped() {
    let routes = [
        route(
            "route-guid-0",
            "test0",
            "/path0",
            "domain0.example.com",
            true,
            vec![dest(
                "route-0-destination-guid-0",
                9000,
                Some(100),
                "app-guid-0",
            )],
        ),
        route(
            "route-guid-1",
            "test0",
            "/path0/deeper",
            "domain0.example.com",
            true,
            vec![],
        ),
    ];
    let t = translate(&routes, &settings());
    assert_eq!(t.virtual_services.len(), 1);
    let vs = &t.virtual_services[0];
    assert_eq!(vs.spec.hosts[0], "test0.domain0.example.com");
    assert_eq!(vs.spec.http.len(), 1);
    assert_eq!(
        vs.spec.http[0].match_[0]
            .uri
            .as_ref()
            .and_then(|u| u.prefix.as_deref()),
        Some("/path0")
    );
    // Both routes own the VirtualService.
    let owners = owner_names(&vs.metadata);
    assert_eq!(owners, ["route-guid-1", "route-guid-0"]);
    assert!(t.problems.is_empty());
}

/// Upstream: Build fails with `route guid route-guid-0 and route guid route-guid-1 disagree on whether
/// or not the domain is internal`. Ours: the oldest route (here by name: no timestamps) decides; the
/// disagreeing route is reported; everything else is translated.
#[test]
fn v10_internal_and_external_routes_on_one_fqdn() {
    let routes = [
        route_0(vec![dest(
            "route-0-destination-guid-0",
            9000,
            Some(100),
            "app-guid-0",
        )]),
        route(
            "route-guid-1",
            "test0",
            "/path1",
            "domain0.example.com",
            true,
            vec![dest(
                "route-1-destination-guid-0",
                9000,
                Some(100),
                "app-guid-0",
            )],
        ),
        route(
            "route-guid-2",
            "test1",
            "",
            "domain1.example.com",
            false,
            vec![dest(
                "route-2-destination-guid-0",
                9000,
                Some(100),
                "app-guid-1",
            )],
        ),
    ];
    let t = translate(&routes, &settings());
    assert_eq!(t.problems.len(), 1);
    assert_eq!(t.problems[0].route, "route-guid-1");
    assert_eq!(t.problems[0].reason, Reason::Invalid);
    assert!(
        t.problems[0]
            .message
            .contains("workload-namespace/route-guid-0, makes it external"),
        "{}",
        t.problems[0].message
    );
    assert_eq!(t.virtual_services.len(), 2);
    assert_eq!(t.virtual_services[0].spec.gateways, ["some-gateway0"]);
    assert_eq!(t.virtual_services[0].spec.http.len(), 1);
    // The invalid route still owns the VirtualService of its FQDN.
    assert_eq!(
        t.virtual_services[0]
            .metadata
            .owner_references
            .as_ref()
            .map(Vec::len),
        Some(2)
    );

    // With timestamps the oldest route decides, whatever the names.
    let routes = [
        created(routes[0].clone(), "2024-01-02T00:00:00Z"),
        created(routes[1].clone(), "2024-01-01T00:00:00Z"),
    ];
    let t = translate(&routes, &settings());
    assert_eq!(t.problems[0].route, "route-guid-0");
    assert_eq!(t.virtual_services[0].spec.gateways, ["mesh"]);
}

/// Upstream: Build fails with `... share the same FQDN but have different namespaces` (which never fired
/// in the controller: both namespaces got their own VirtualService for one host). Ours: the namespace of
/// the oldest route holds the external FQDN, the newer namespace's routes are reported as Conflict.
#[test]
fn v11_one_external_fqdn_in_two_namespaces() {
    let r0 = created(
        route_0(vec![dest(
            "route-0-destination-guid-0",
            9000,
            Some(100),
            "app-guid-0",
        )]),
        "2024-01-01T00:00:00Z",
    );
    let r1 = created(
        in_namespace(
            route(
                "route-guid-1",
                "test0",
                "/path1",
                "domain0.example.com",
                false,
                vec![dest(
                    "route-1-destination-guid-0",
                    9000,
                    Some(100),
                    "app-guid-0",
                )],
            ),
            "some-different-namespace",
        ),
        "2024-01-02T00:00:00Z",
    );
    let r2 = route(
        "route-guid-2",
        "test1",
        "",
        "domain1.example.com",
        false,
        vec![dest(
            "route-2-destination-guid-0",
            9000,
            Some(100),
            "app-guid-1",
        )],
    );
    let t = translate(&[r0, r1, r2], &settings());
    assert_eq!(t.problems.len(), 1);
    assert_eq!(t.problems[0].namespace, "some-different-namespace");
    assert_eq!(t.problems[0].route, "route-guid-1");
    assert_eq!(t.problems[0].reason, Reason::Conflict);
    assert_eq!(
        t.problems[0].message,
        "FQDN test0.domain0.example.com is already served by routes in namespace workload-namespace \
         (created earlier); delete those routes or use another host"
    );
    let namespaces: Vec<&str> = t
        .virtual_services
        .iter()
        .filter_map(|v| v.metadata.namespace.as_deref())
        .collect();
    assert_eq!(namespaces, ["workload-namespace", "workload-namespace"]);

    an_internal_fqdn_belongs_to_one_namespace();
}

/// The second half of v11: an internal FQDN, which upstream did not check at all.
fn an_internal_fqdn_belongs_to_one_namespace() {
    // Upstream (and cfnet before F2 of issue 12) wrote one mesh VirtualService per namespace for an
    // internal FQDN: two mesh VirtualServices with one host, undefined behaviour in Istio (IST0109). An
    // internal FQDN now belongs to one namespace too.
    let a = created(
        route(
            "a",
            "test0",
            "",
            "apps.internal",
            true,
            vec![dest("a-dest", 8080, None, "app")],
        ),
        "2024-01-01T00:00:00Z",
    );
    let b = created(in_namespace(a.clone(), "other"), "2024-01-02T00:00:00Z");
    let t = translate(&[b, a], &settings());
    assert_eq!(t.problems.len(), 1);
    assert_eq!(
        (t.problems[0].namespace.as_str(), t.problems[0].reason),
        ("other", Reason::Conflict)
    );
    assert_eq!(
        t.problems[0].message,
        "FQDN test0.apps.internal is already served by routes in namespace workload-namespace \
         (created earlier); delete those routes or use another host"
    );
    assert_eq!(t.virtual_services.len(), 1);
    assert_eq!(
        t.virtual_services[0].metadata.namespace.as_deref(),
        Some(NS)
    );
}

#[test]
fn v12_single_route_without_destinations_gets_the_placeholder() {
    let r = route_0(vec![]);
    let t = translate(&[r], &settings());
    assert_eq!(
        vs_json(&t),
        vec![expected_vs(
            "test0.domain0.example.com",
            false,
            &["route-guid-0"],
            json!([{"match": [{"uri": {"prefix": "/path0"}}], "route": [{"destination": {"host": "no-destinations"}}]}])
        )]
    );
}

#[test]
fn v13_single_destination_without_weight_gets_100() {
    let r = route_0(vec![dest(
        "route-0-destination-guid-0",
        9000,
        None,
        "app-guid-1",
    )]);
    let t = translate(&[r], &settings());
    assert_eq!(weights(&t, 0), [100]);
}

/// Upstream tested the VS mutate function; we apply the desired object whole, so it must carry exactly
/// the fields upstream's mutate copied (labels, annotations, ownerReferences, spec) and nothing else.
#[test]
fn v14_desired_virtual_service_carries_exactly_the_copied_fields() {
    let mut r = route(
        "banana",
        "test0",
        "/path0",
        "domain0.example.com",
        false,
        vec![dest(
            "route-0-destination-guid-0",
            9000,
            Some(100),
            "app-guid-0",
        )],
    );
    r.metadata.uid = Some("ham-ding-er".to_owned());
    let key = FqdnKey {
        namespace: NS.into(),
        fqdn: "test0.domain0.example.com".into(),
    };
    let claims = ClaimIndex::from_routes([&r]);
    let t = translate_fqdn(&key, &[&r], &claims, &settings());
    let vs = to_json(&t.virtual_service.expect("a VirtualService"));
    let meta = vs["metadata"].as_object().expect("metadata");
    let mut keys: Vec<&str> = meta.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "annotations",
            "labels",
            "name",
            "namespace",
            "ownerReferences"
        ]
    );
    let mut expected = expected_vs(
        "test0.domain0.example.com",
        false,
        &["banana"],
        json!([{"match": [{"uri": {"prefix": "/path0"}}], "route": [
            {"destination": {"host": "s-route-0-destination-guid-0"}, "weight": 100, "headers": headers("app-guid-0")}]}]),
    );
    expected["metadata"]["ownerReferences"][0]["uid"] = json!("ham-ding-er");
    assert_eq!(vs, expected);
    assert_eq!(t.programmed, ["banana"]);
}

#[test]
fn v15_virtual_service_names_are_consistent_and_distinct() {
    assert_eq!(
        virtual_service_name("domain0.example.com"),
        "vs-674da971dcc8ee9403167e2a3e77e7a95f609d2825b838fc29a50e48c8dfeaea"
    );
    assert_eq!(
        virtual_service_name("domain0.example.com"),
        virtual_service_name("domain0.example.com")
    );
    assert_eq!(
        virtual_service_name("domain1.example.com"),
        "vs-68ff4f202372d7fde0b8ef285fa884cf8d88a0b2af81bd0ac0a11d785e06be21"
    );
}

#[test]
fn v16_virtual_service_names_handle_special_characters() {
    assert_eq!(
        virtual_service_name("*.wildcard-host.example.com"),
        "vs-216d6f90aff241b01b456c94351f77221d9c238057fd4e4394ca5deadc1aae24"
    );
    assert_eq!(
        virtual_service_name("🙂.unicode-host.example.com"),
        "vs-3b0a745e60e76cc7f14e5e22d37fc7af2c2b529c5be43e99551d9fa892ca3573"
    );
}

#[test]
fn v17_virtual_service_name_of_a_long_fqdn() {
    let label = "a".repeat(63);
    let fqdn = format!("{label}.{label}.{label}.{label}.example.com");
    assert_eq!(fqdn.len(), 267);
    assert_eq!(
        virtual_service_name(&fqdn),
        "vs-b2b7f04662a35e5d54b33c988c8ee4ddfdbcd33c5fbd0eb11e5c011009641015"
    );
}
