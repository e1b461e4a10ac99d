//! What istiod and its validating webhook make of cfnet's output (issue 12, F1–F5): mesh destinations name
//! their port, an FQDN belongs to one namespace, no two entries of an FQDN have one Envoy match, FQDNs are
//! case-insensitive, and no route's values can make Istio refuse the shared VirtualService.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use cfnet_api::Route;
use cfnet_translate::istio::validate_virtual_service;
use cfnet_translate::{
    ClaimIndex, Claims, FqdnKey, Reason, Translation, translate, translate_fqdn,
    virtual_service_name,
};
use common::*;
use serde_json::{Value, json};

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("serializable")
}

fn destinations(t: &Translation, vs: usize, entry: usize) -> Value {
    to_json(&t.virtual_services[vs].spec.http[entry].route)
        .as_array()
        .expect("route")
        .iter()
        .map(|d| d["destination"].clone())
        .collect()
}

fn problem(t: &Translation, route: &str) -> (Reason, String) {
    let p = t
        .problems
        .iter()
        .find(|p| p.route == route)
        .unwrap_or_else(|| panic!("no problem for {route}: {:?}", t.problems));
    (p.reason, p.message.clone())
}

// ---- F1: mesh destinations carry their Service port ------------------------------------------------

#[test]
fn internal_destinations_name_their_service_port() {
    let r = route(
        "backend",
        "backend",
        "",
        "apps.internal",
        true,
        vec![
            dest("d-8080", 8080, Some(70), "app-a"),
            dest("d-9000", 9000, Some(30), "app-b"),
        ],
    );
    let t = translate(&[r], &settings());
    assert_eq!(t.virtual_services[0].spec.gateways, ["mesh"]);
    assert_eq!(
        destinations(&t, 0, 0),
        json!([
            {"host": "s-d-8080", "port": {"number": 8080}},
            {"host": "s-d-9000", "port": {"number": 9000}},
        ])
    );
}

#[test]
fn external_destinations_stay_exactly_upstream() {
    let r = route(
        "front",
        "front",
        "",
        "apps.example.com",
        false,
        vec![dest("d-8080", 8080, None, "app-a")],
    );
    let t = translate(&[r], &settings());
    assert_eq!(destinations(&t, 0, 0), json!([{"host": "s-d-8080"}]));
}

#[test]
fn the_internal_placeholder_names_no_port() {
    let r = route("lone", "lone", "", "apps.internal", true, vec![]);
    let t = translate(&[r], &settings());
    assert_eq!(destinations(&t, 0, 0), json!([{"host": "no-destinations"}]));
}

// ---- F2: an internal FQDN belongs to one namespace ---------------------------------------------------

fn internal(name: &str, ns: &str, guid: &'static str, created_at: &str) -> Route {
    created(
        in_namespace(
            route(
                name,
                "backend",
                "",
                "apps.internal",
                true,
                vec![dest(guid, 8080, None, "app")],
            ),
            ns,
        ),
        created_at,
    )
}

#[test]
fn an_internal_fqdn_in_a_second_namespace_conflicts_on_the_younger() {
    let older = internal("older", "ns-b", "d1", "2024-01-01T00:00:00Z");
    let younger = internal("younger", "ns-a", "d2", "2024-01-02T00:00:00Z");
    let t = translate(&[younger, older], &settings());
    assert_eq!(
        problem(&t, "younger"),
        (
            Reason::Conflict,
            "FQDN backend.apps.internal is already served by routes in namespace ns-b (created \
             earlier); delete those routes or use another host"
                .to_owned()
        )
    );
    assert_eq!(t.problems[0].namespace, "ns-a");
    assert_eq!(t.virtual_services.len(), 1);
    assert_eq!(
        t.virtual_services[0].metadata.namespace.as_deref(),
        Some("ns-b")
    );
    assert_eq!(t.services.len(), 1);
}

#[test]
fn the_claim_index_requeues_the_other_namespace_of_an_internal_fqdn() {
    let older = internal("older", "ns-b", "d1", "2024-01-01T00:00:00Z");
    let younger = internal("younger", "ns-a", "d2", "2024-01-02T00:00:00Z");
    let key = |ns: &str| FqdnKey {
        namespace: ns.into(),
        fqdn: "backend.apps.internal".into(),
    };
    let mut index = ClaimIndex::new();
    assert_eq!(index.insert(&younger), [key("ns-a")]);
    assert_eq!(
        index.external_fqdn_holder("backend.apps.internal"),
        Some("ns-a")
    );
    // The older route takes the FQDN: both namespaces' keys must be rebuilt.
    assert_eq!(index.insert(&older), [key("ns-a"), key("ns-b")]);
    assert_eq!(
        index.external_fqdn_holder("backend.apps.internal"),
        Some("ns-b")
    );
    let t = translate_fqdn(&key("ns-a"), &[&younger], &index, &settings());
    assert!(t.virtual_service.is_none());
    assert_eq!(t.problems[0].reason, Reason::Conflict);
    // It lets go: the younger one's namespace gets it back and is requeued.
    assert_eq!(index.remove("ns-b", "older"), [key("ns-a"), key("ns-b")]);
    assert_eq!(
        index.external_fqdn_holder("backend.apps.internal"),
        Some("ns-a")
    );
    let t = translate_fqdn(&key("ns-a"), &[&younger], &index, &settings());
    assert!(t.problems.is_empty());
    assert!(t.virtual_service.is_some());
}

// ---- F3: no two entries of one FQDN with one Envoy match ---------------------------------------------

fn on_app(name: &str, path: &str, guid: &'static str, created_at: &str) -> Route {
    created(app_route(name, path, guid, "app"), created_at)
}

#[test]
fn path_slash_and_no_path_are_one_route() {
    for (older_path, younger_path) in [("", "/"), ("/", "")] {
        let older = on_app("older", older_path, "d1", "2024-01-01T00:00:00Z");
        let younger = on_app("younger", younger_path, "d2", "2024-01-02T00:00:00Z");
        let t = translate(&[younger, older], &settings());
        assert_eq!(
            problem(&t, "younger"),
            (
                Reason::Conflict,
                format!(
                    "url app.apps.example.com{younger_path} is already served by route \
                     workload-namespace/older (created earlier, url app.apps.example.com{older_path}: \
                     path \"/\" and no path are the same Envoy route); delete one of them"
                )
            )
        );
        assert_eq!(t.problems.len(), 1);
        let http = &t.virtual_services[0].spec.http;
        assert_eq!(http.len(), 1);
        assert_eq!(http[0].route[0].destination.host, "s-d1");
    }
}

#[test]
fn a_lone_slash_route_is_upstream_output() {
    let t = translate(
        &[on_app("slash", "/", "d1", "2024-01-01T00:00:00Z")],
        &settings(),
    );
    assert!(t.problems.is_empty());
    assert_eq!(
        to_json(&t.virtual_services[0].spec.http[0].match_),
        json!([{"uri": {"prefix": "/"}}])
    );
}

#[test]
fn destinationless_routes_with_one_match_get_one_placeholder() {
    let a = route("a", "app", "/", "apps.example.com", false, vec![]);
    let b = route("b", "app", "", "apps.example.com", false, vec![]);
    let t = translate(&[a, b], &settings());
    assert!(t.problems.is_empty());
    let http = &t.virtual_services[0].spec.http;
    assert_eq!(http.len(), 1, "{http:?}");
    assert_eq!(http[0].route[0].destination.host, "no-destinations");
}

#[test]
fn a_destinationless_route_takes_no_match_from_a_younger_route() {
    let older = created(
        route("older", "app", "", "apps.example.com", false, vec![]),
        "2024-01-01T00:00:00Z",
    );
    let younger = on_app("younger", "/", "d1", "2024-01-02T00:00:00Z");
    let t = translate(&[older, younger], &settings());
    assert!(t.problems.is_empty(), "{:?}", t.problems);
    assert_eq!(t.virtual_services[0].spec.http.len(), 1);
}

#[test]
fn paths_stay_case_sensitive() {
    let a = on_app("a", "/Api", "d1", "2024-01-01T00:00:00Z");
    let b = on_app("b", "/api", "d2", "2024-01-02T00:00:00Z");
    let t = translate(&[a, b], &settings());
    assert!(t.problems.is_empty());
    assert_eq!(t.virtual_services[0].spec.http.len(), 2);
}

// ---- F4: FQDNs are case-insensitive ------------------------------------------------------------------

fn mixed_case(name: &str, path: &str, guid: &'static str) -> Route {
    route(
        name,
        "shop",
        path,
        "Apps.Example.COM",
        false,
        vec![dest(guid, 8080, None, "app")],
    )
}

#[test]
fn a_mixed_case_fqdn_renders_like_the_lower_case_one() {
    let mut mixed = mixed_case("r", "/cart", "d1");
    mixed.spec.host = "Shop".to_owned();
    mixed.spec.url = "Shop.Apps.Example.COM/cart".to_owned();
    let lower = route(
        "r",
        "shop",
        "/cart",
        "apps.example.com",
        false,
        vec![dest("d1", 8080, None, "app")],
    );
    let (t_mixed, t_lower) = (
        translate(&[mixed], &settings()),
        translate(&[lower], &settings()),
    );
    assert!(t_mixed.problems.is_empty(), "{:?}", t_mixed.problems);
    assert_eq!(t_mixed, t_lower);
    let vs = to_json(&t_mixed.virtual_services[0]);
    assert_eq!(vs["spec"]["hosts"], json!(["shop.apps.example.com"]));
    assert_eq!(
        vs["metadata"]["name"],
        json!(virtual_service_name("shop.apps.example.com"))
    );
    assert_eq!(
        vs["metadata"]["annotations"],
        json!({"cloudfoundry.org/fqdn": "shop.apps.example.com"})
    );
    assert_eq!(
        to_json(&t_mixed.services[0])["metadata"]["annotations"],
        json!({"cloudfoundry.org/route-fqdn": "shop.apps.example.com"})
    );
}

#[test]
fn hosts_differing_only_in_case_are_one_fqdn() {
    let a = created(mixed_case("a", "/a", "d1"), "2024-01-01T00:00:00Z");
    let mut b = created(
        route(
            "b",
            "SHOP",
            "/b",
            "apps.example.com",
            false,
            vec![dest("d2", 8080, None, "app")],
        ),
        "2024-01-02T00:00:00Z",
    );
    b.spec.url = "SHOP.apps.example.com/b".to_owned();
    let t = translate(&[a.clone(), b], &settings());
    assert!(t.problems.is_empty(), "{:?}", t.problems);
    assert_eq!(t.virtual_services.len(), 1);
    assert_eq!(t.virtual_services[0].spec.http.len(), 2);

    // The same path: one url, the younger conflicts.
    let mut c = created(
        route(
            "c",
            "shop",
            "/a",
            "apps.example.com",
            false,
            vec![dest("d3", 8080, None, "app")],
        ),
        "2024-01-03T00:00:00Z",
    );
    c.spec.url = "shop.apps.example.com/a".to_owned();
    let t = translate(&[a, c], &settings());
    assert_eq!(
        problem(&t, "c"),
        (
            Reason::Conflict,
            "url shop.apps.example.com/a is already served by route workload-namespace/a (created \
             earlier, url shop.Apps.Example.COM/a: host names are case-insensitive); delete one of them"
                .to_owned()
        )
    );
}

#[test]
fn the_url_host_is_compared_case_insensitively_and_the_path_exactly() {
    let mut r = mixed_case("r", "/cart", "d1");
    r.spec.url = "SHOP.apps.example.com/cart".to_owned();
    assert!(translate(&[r.clone()], &settings()).problems.is_empty());
    r.spec.url = "shop.apps.example.com/Cart".to_owned();
    let t = translate(&[r], &settings());
    assert_eq!(
        problem(&t, "r"),
        (
            Reason::Invalid,
            "url \"shop.apps.example.com/Cart\" must be host.domain + path, i.e. \
             \"shop.Apps.Example.COM/cart\""
                .to_owned()
        )
    );
}

#[test]
fn an_external_fqdn_in_another_case_in_another_namespace_conflicts() {
    let older = created(mixed_case("older", "", "d1"), "2024-01-01T00:00:00Z");
    let younger = created(
        in_namespace(
            route(
                "younger",
                "shop",
                "",
                "apps.example.com",
                false,
                vec![dest("d2", 8080, None, "app")],
            ),
            "other",
        ),
        "2024-01-02T00:00:00Z",
    );
    let t = translate(&[younger, older], &settings());
    assert_eq!(problem(&t, "younger").0, Reason::Conflict);
}

// ---- F5: no route's values can make Istio refuse the shared VirtualService ----------------------------

/// Translates `bad` next to a valid sibling of its FQDN; checks that the sibling's output is what it is
/// alone and that the VirtualService passes Istio's validation; returns the problem of `bad`.
fn invalid_next_to_a_sibling(bad: Route) -> String {
    let sibling = route(
        "sibling",
        bad.spec.host.as_str(),
        "/sibling",
        bad.spec.domain.name.as_str(),
        bad.spec.domain.internal,
        vec![dest("sibling-dest", 8080, None, "sibling-app")],
    );
    let alone = translate(std::slice::from_ref(&sibling), &settings());
    let t = translate(&[bad, sibling], &settings());
    assert_eq!(t.problems.len(), 1, "{:?}", t.problems);
    assert_eq!(t.problems[0].route, "bad");
    assert_eq!(t.problems[0].reason, Reason::Invalid);
    assert_eq!(t.services, alone.services);
    let specs = |t: &Translation| {
        t.virtual_services
            .iter()
            .map(|v| v.spec.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(specs(&t), specs(&alone));
    for vs in &t.virtual_services {
        assert_eq!(validate_virtual_service(&vs.spec), Ok(()));
    }
    t.problems[0].message.clone()
}

fn bad_route() -> Route {
    route(
        "bad",
        "app",
        "/bad",
        "apps.example.com",
        false,
        vec![dest("bad-dest", 8080, None, "app-guid")],
    )
}

#[test]
fn header_values_istio_refuses_make_the_route_invalid() {
    let cases = [
        (
            "app%zz",
            "destination bad-dest: app.guid \"app%zz\" cannot be the value of header CF-App-Id: Istio \
             refuses it (header value configuration: invalid header configuration. Un-terminated \
             variable expression), and the VirtualService is shared by every route of the FQDN; set it \
             to the app's guid",
        ),
        (
            "50%",
            "destination bad-dest: app.guid \"50%\" cannot be the value of header CF-App-Id: Istio \
             refuses it (header value configuration: invalid header configuration. Un-escaped %), and \
             the VirtualService is shared by every route of the FQDN; set it to the app's guid",
        ),
        (
            "app\r\nX-Injected: 1",
            "destination bad-dest: app.guid \"app\\r\\nX-Injected: 1\" cannot be the value of header \
             CF-App-Id: Istio refuses it (header value configuration is invalid: control character \
             '\\r'), and the VirtualService is shared by every route of the FQDN; set it to the app's \
             guid",
        ),
    ];
    for (app_guid, expected) in cases {
        let mut r = bad_route();
        r.spec.destinations[0].app.guid = app_guid.to_owned();
        assert_eq!(invalid_next_to_a_sibling(r), expected, "{app_guid:?}");
    }
    let mut r = bad_route();
    r.spec.destinations[0].app.process.type_ = "web\n".to_owned();
    assert_eq!(
        invalid_next_to_a_sibling(r),
        "destination bad-dest: app.process.type \"web\\n\" cannot be the value of header \
         CF-App-Process-Type: Istio refuses it (header value configuration is invalid: control \
         character '\\n'), and the VirtualService is shared by every route of the FQDN; set it to the \
         app's process type, e.g. web"
    );
}

#[test]
fn percent_sequences_istio_accepts_are_refused_too() {
    // Istio accepts these, but Envoy would send the client's address, or "100%", instead of the value.
    for app_guid in ["%DOWNSTREAM_REMOTE_ADDRESS%", "100%%"] {
        let mut r = bad_route();
        r.spec.destinations[0].app.guid = app_guid.to_owned();
        assert_eq!(
            invalid_next_to_a_sibling(r),
            format!(
                "destination bad-dest: app.guid {app_guid:?} cannot be the value of header CF-App-Id: \
                 Envoy would read its '%' as a %VARIABLE% or a %% escape and send something else; set \
                 it to the app's guid"
            )
        );
    }
}

#[test]
fn route_labels_that_become_headers_are_checked() {
    let mut r = bad_route();
    r.metadata.labels.get_or_insert_default().insert(
        "cloudfoundry.org/space_guid".to_owned(),
        "space%".to_owned(),
    );
    assert_eq!(
        invalid_next_to_a_sibling(r),
        "label cloudfoundry.org/space_guid \"space%\" cannot be the value of header CF-Space-Id: Istio \
         refuses it (header value configuration: invalid header configuration. Un-escaped %), and the \
         VirtualService is shared by every route of the FQDN; set the label to the guid"
    );
}

#[test]
fn values_the_api_server_refuses_in_service_labels_make_the_route_invalid() {
    let mut r = bad_route();
    r.spec.destinations[0].app.process.type_ = "web worker".to_owned();
    assert_eq!(
        invalid_next_to_a_sibling(r),
        "destination bad-dest: app.process.type \"web worker\" cannot be the value of label \
         cloudfoundry.org/process_type on Service s-bad-dest: a label value must be empty or consist of \
         letters, digits, '-', '_' or '.', and start and end with a letter or digit; set it to the \
         app's process type, e.g. web"
    );

    let mut r = bad_route();
    r.spec.destinations[0].app.guid = "a".repeat(64);
    assert!(
        invalid_next_to_a_sibling(r)
            .contains("it is 64 characters long, a label value has at most 63")
    );

    let mut r = bad_route();
    r.spec.destinations[0]
        .selector
        .match_labels
        .insert("bad key".to_owned(), "x".to_owned());
    assert!(invalid_next_to_a_sibling(r).starts_with(
        "destination bad-dest: selector.matchLabels key \"bad key\" cannot be a label key in the \
             selector of Service s-bad-dest"
    ));

    let mut r = bad_route();
    r.spec.destinations[0]
        .selector
        .match_labels
        .insert("cloudfoundry.org/app_guid".to_owned(), "x_".to_owned());
    assert!(invalid_next_to_a_sibling(r).starts_with(
        "destination bad-dest: selector.matchLabels value \"x_\" of cloudfoundry.org/app_guid cannot be \
         a label value in the selector of Service s-bad-dest"
    ));
}

#[test]
fn a_route_name_longer_than_a_label_value_is_invalid_only_with_destinations() {
    let long = "r".repeat(64);
    let mut r = bad_route();
    r.metadata.name = Some(long.clone());
    let t = translate(&[r.clone()], &settings());
    assert_eq!(
        problem(&t, &long),
        (
            Reason::Invalid,
            format!(
                "route name {long:?} cannot be the value of label cloudfoundry.org/route_guid on its \
                 Services: it is 64 characters long, a label value has at most 63; name the Route by \
                 its guid, as Cloud Controller does"
            )
        )
    );
    r.spec.destinations.clear();
    assert!(translate(&[r], &settings()).problems.is_empty());
}

#[test]
fn what_cloud_controller_writes_passes() {
    let mut r = route(
        "0d7b1c6e-3a4f-4e55-9a8b-2f1e6c7d8a90",
        "my-app",
        "/v1",
        "apps.example.com",
        false,
        vec![dest(
            "5b0e2b7c-9c1d-4a57-8d1e-6f3a2b1c0d9e",
            8080,
            None,
            "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        )],
    );
    r.metadata.labels = Some(
        [
            (
                "cloudfoundry.org/space_guid",
                "8e1f0a2b-3c4d-4e5f-9a0b-1c2d3e4f5a6b",
            ),
            (
                "cloudfoundry.org/org_guid",
                "7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    );
    for process in ["web", "worker", "rake", "my_worker-2"] {
        r.spec.destinations[0].app.process.type_ = process.to_owned();
        let t = translate(std::slice::from_ref(&r), &settings());
        assert!(t.problems.is_empty(), "{process}: {:?}", t.problems);
        assert_eq!(
            validate_virtual_service(&t.virtual_services[0].spec),
            Ok(())
        );
    }
}

#[test]
fn hosts_istio_refuses_make_the_route_invalid() {
    // `*` alone is fine on the ingress gateway and refused on mesh.
    let star = |internal: bool| {
        let mut r = route(
            "bad",
            "",
            "",
            "*",
            internal,
            vec![dest("bad-dest", 8080, None, "app")],
        );
        r.spec.url = "*".to_owned();
        r
    };
    assert!(translate(&[star(false)], &settings()).problems.is_empty());
    let t = translate(&[star(true)], &settings());
    assert_eq!(
        problem(&t, "bad"),
        (
            Reason::Invalid,
            "FQDN * cannot be the host of an internal (mesh) VirtualService: Istio refuses it (wildcard \
             host * is not allowed for virtual services bound to the mesh gateway); change the host or \
             domain"
                .to_owned()
        )
    );

    let mut r = route(
        "bad",
        "app",
        "",
        "example.123",
        false,
        vec![dest("bad-dest", 8080, None, "app")],
    );
    r.spec.url = "app.example.123".to_owned();
    let t = translate(&[r], &settings());
    assert_eq!(
        problem(&t, "bad"),
        (
            Reason::Invalid,
            "FQDN app.example.123 cannot be the host of a VirtualService: Istio refuses it (domain name \
             \"example.123\" invalid (top level domain \"123\" cannot be all-numeric)); change the host \
             or domain"
                .to_owned()
        )
    );
}
