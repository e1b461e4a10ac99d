//! Invalid input (issue 2 §5): the invalid route is reported with a message saying what to fix, left out
//! of its VirtualService, and its siblings are translated as usual.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use cfnet_translate::{ClaimIndex, Claims, FqdnKey, Reason, translate, translate_fqdn};
use common::*;

fn ok_route(name: &str, path: &str, guid: &'static str) -> cfnet_api::Route {
    app_route(name, path, guid, "app-guid")
}

/// Translates `bad` next to a valid sibling of the same FQDN and returns the problem message of `bad`.
fn problem_of(bad: cfnet_api::Route) -> String {
    let sibling = ok_route("sibling", "/sibling", "sibling-dest");
    let alone = translate(std::slice::from_ref(&sibling), &settings());
    let t = translate(&[bad, sibling], &settings());
    assert_eq!(t.problems.len(), 1, "{:?}", t.problems);
    // The sibling's output is what it is alone, except that the invalid route is listed as an owner
    // (when it shares the FQDN).
    let http = |t: &cfnet_translate::Translation| {
        t.virtual_services
            .iter()
            .find(|v| v.spec.hosts == ["app.apps.example.com"])
            .map(|v| v.spec.clone())
    };
    assert_eq!(http(&t), http(&alone));
    assert_eq!(t.services, alone.services);
    t.problems[0].message.clone()
}

#[test]
fn negative_weight() {
    let mut r = ok_route("bad", "/bad", "bad-dest");
    r.spec.destinations[0].weight = Some(-5);
    r.spec.destinations.push(r.spec.destinations[0].clone());
    r.spec.destinations[1].guid = "bad-dest-2".to_owned();
    r.spec.destinations[1].weight = Some(105);
    assert_eq!(
        problem_of(r),
        "weight of destination bad-dest must be >= 0, got -5"
    );
}

#[test]
fn weights_not_summing_to_100() {
    let mut r = ok_route("bad", "/bad", "bad-dest");
    r.spec.destinations[0].weight = Some(90);
    assert_eq!(problem_of(r), "weights must sum to 100, got 90");
}

#[test]
fn port_out_of_range() {
    for port in [0, 65536, -1] {
        let mut r = ok_route("bad", "/bad", "bad-dest");
        r.spec.destinations[0].port = port;
        assert_eq!(
            problem_of(r),
            format!("port of destination bad-dest must be between 1 and 65535, got {port}")
        );
    }
}

#[test]
fn empty_or_unusable_destination_guid() {
    let mut r = ok_route("bad", "/bad", "");
    assert_eq!(problem_of(r.clone()), "destination guid must not be empty");
    r.spec.destinations[0].guid = "Upper_Case".to_owned();
    assert!(problem_of(r).contains("cannot name a Service"));
}

#[test]
fn duplicate_destination_in_one_route() {
    let mut r = ok_route("bad", "/bad", "bad-dest");
    r.spec.destinations.push(r.spec.destinations[0].clone());
    assert_eq!(
        problem_of(r),
        "destination bad-dest appears more than once; list each destination once"
    );
}

#[test]
fn path_without_leading_slash() {
    let mut r = ok_route("bad", "/bad", "bad-dest");
    r.spec.path = Some("bad".to_owned());
    r.spec.url = "app.apps.example.combad".to_owned();
    assert!(problem_of(r).starts_with("path \"bad\" must start with \"/\""));
}

#[test]
fn url_not_fqdn_plus_path() {
    let mut r = ok_route("bad", "/bad", "bad-dest");
    r.spec.url = "app.apps.example.com/other".to_owned();
    assert_eq!(
        problem_of(r),
        "url \"app.apps.example.com/other\" must be host.domain + path, i.e. \"app.apps.example.com/bad\""
    );
}

#[test]
fn host_or_domain_not_a_dns_name() {
    let cases = [
        ("under_score", "apps.example.com", "contains '_'"),
        (
            "-dash",
            "apps.example.com",
            "must not start or end with '-'",
        ),
        ("a..b", "apps.example.com", "empty label"),
        ("🙂", "apps.example.com", "punycode"),
        ("a.*", "apps.example.com", "only the first label"),
        ("app", "apps.*.com", "only the first label"),
        ("app", "", "domain name must not be empty"),
    ];
    for (host, domain, expected) in cases {
        let mut r = route(
            "bad",
            host,
            "",
            domain,
            false,
            vec![dest("bad-dest", 8080, None, "a")],
        );
        r.spec.url = r.spec.fqdn();
        let message = problem_of(r);
        assert!(message.contains(expected), "{host}.{domain}: {message}");
    }
    let long = "a".repeat(63);
    let mut r = route(
        "bad",
        &format!("{long}.{long}.{long}.{long}"),
        "",
        "example.com",
        false,
        vec![],
    );
    r.spec.url = r.spec.fqdn();
    assert!(problem_of(r).contains("at most 253"));
}

#[test]
fn wildcard_and_mixed_case_hosts_are_valid() {
    for (host, domain) in [
        ("*", "apps.example.com"),
        ("", "*.apps.example.com"),
        ("MyApp", "Apps.Example.com"),
        ("xn--bcher-kva", "example.com"),
    ] {
        let mut r = route(
            "r",
            host,
            "",
            domain,
            false,
            vec![dest("d", 8080, None, "a")],
        );
        r.spec.url = r.spec.fqdn();
        let t = translate(&[r], &settings());
        assert!(t.problems.is_empty(), "{host}.{domain}: {:?}", t.problems);
    }
}

#[test]
fn same_destination_in_two_routes_conflicts_on_the_newer() {
    let older = created(
        ok_route("zzz-older", "/a", "shared"),
        "2024-01-01T00:00:00Z",
    );
    let newer = created(
        route(
            "aaa-newer",
            "other",
            "",
            "apps.example.com",
            false,
            vec![dest("shared", 8080, None, "x")],
        ),
        "2024-01-02T00:00:00Z",
    );
    let t = translate(&[newer, older], &settings());
    assert_eq!(t.problems.len(), 1);
    assert_eq!(t.problems[0].route, "aaa-newer");
    assert_eq!(t.problems[0].reason, Reason::Conflict);
    assert_eq!(
        t.problems[0].message,
        "destination shared is already used by route workload-namespace/zzz-older (one Service s-shared \
         cannot belong to two routes); give this destination a new guid"
    );
    assert_eq!(t.services.len(), 1);
    // The newer route's FQDN has no other route: no VirtualService at all.
    assert_eq!(t.virtual_services.len(), 1);
    assert_eq!(t.virtual_services[0].spec.hosts, ["app.apps.example.com"]);

    // The same guid in two namespaces is two Services: no conflict.
    let a = ok_route("a", "/a", "shared");
    let b = in_namespace(ok_route("b", "/b", "shared"), "other-ns");
    let b = route_with_host(b, "b");
    assert!(translate(&[a, b], &settings()).problems.is_empty());
}

fn route_with_host(mut r: cfnet_api::Route, host: &str) -> cfnet_api::Route {
    r.spec.host = host.to_owned();
    r.spec.url = format!("{}{}", r.spec.fqdn(), r.spec.path());
    r
}

#[test]
fn invalid_route_claims_nothing() {
    // An older but invalid route does not take the destination from a valid newer one.
    let mut older = created(ok_route("older", "/a", "shared"), "2024-01-01T00:00:00Z");
    older.spec.destinations[0].port = 0;
    let newer = created(ok_route("newer", "/b", "shared"), "2024-01-02T00:00:00Z");
    let t = translate(&[older, newer], &settings());
    assert_eq!(t.problems.len(), 1);
    assert_eq!(t.problems[0].route, "older");
    assert_eq!(t.services.len(), 1);
}

#[test]
fn same_url_twice_conflicts_on_the_newer() {
    let older = created(ok_route("older", "/a", "d1"), "2024-01-01T00:00:00Z");
    let newer = created(ok_route("newer", "/a", "d2"), "2024-01-02T00:00:00Z");
    let t = translate(&[newer, older], &settings());
    assert_eq!(t.problems.len(), 1);
    assert_eq!(t.problems[0].route, "newer");
    assert_eq!(t.problems[0].reason, Reason::Conflict);
    assert_eq!(t.virtual_services[0].spec.http.len(), 1);
}

#[test]
fn every_route_of_an_fqdn_invalid_means_no_virtual_service() {
    let mut a = ok_route("a", "/a", "d1");
    a.spec.destinations[0].weight = Some(1);
    let mut b = ok_route("b", "/b", "d2");
    b.spec.destinations[0].port = 0;
    let key = FqdnKey {
        namespace: NS.into(),
        fqdn: "app.apps.example.com".into(),
    };
    let claims = ClaimIndex::from_routes([&a, &b]);
    let t = translate_fqdn(&key, &[&a, &b], &claims, &settings());
    assert!(t.virtual_service.is_none());
    assert!(t.services.is_empty());
    assert!(t.programmed.is_empty());
    assert_eq!(t.problems.len(), 2);
}

#[test]
fn several_destinationless_routes_alone_on_an_fqdn_get_placeholders() {
    // Upstream wrote a VirtualService without http here, which Istio rejects.
    let a = route("a", "app", "/a", "apps.example.com", false, vec![]);
    let b = route("b", "app", "/b", "apps.example.com", false, vec![]);
    let t = translate(&[a, b], &settings());
    let http = &t.virtual_services[0].spec.http;
    assert_eq!(http.len(), 2);
    assert!(
        http.iter()
            .all(|h| h.route[0].destination.host == "no-destinations")
    );
}

#[test]
fn claim_index_is_incremental() {
    let older = created(ok_route("older", "/a", "shared"), "2024-01-01T00:00:00Z");
    let newer = created(
        route_with_host(ok_route("newer", "/b", "shared"), "other"),
        "2024-01-02T00:00:00Z",
    );
    let mut index = ClaimIndex::new();
    index.insert(&newer);
    assert_eq!(index.destination_holder(NS, "shared"), Some("newer"));
    let affected = index.insert(&older);
    assert_eq!(index.destination_holder(NS, "shared"), Some("older"));
    let fqdns: Vec<&str> = affected.iter().map(|k| &*k.fqdn).collect();
    assert_eq!(fqdns, ["app.apps.example.com", "other.apps.example.com"]);
    assert_eq!(index.external_fqdn_holder("app.apps.example.com"), Some(NS));

    // The older route loses the destination: the newer one gets it, and both FQDNs are affected.
    let mut changed = older.clone();
    changed.spec.destinations[0].guid = "fresh".to_owned();
    let affected = index.insert(&changed);
    assert_eq!(affected.len(), 2);
    assert_eq!(index.destination_holder(NS, "shared"), Some("newer"));
    assert_eq!(index.destination_holder(NS, "fresh"), Some("older"));

    let affected = index.remove(NS, "newer");
    assert_eq!(affected.len(), 1);
    assert_eq!(index.destination_holder(NS, "shared"), None);
    assert_eq!(index.remove(NS, "newer"), vec![]);
    index.remove(NS, "older");
    assert!(index.is_empty());
    assert_eq!(index.external_fqdn_holder("app.apps.example.com"), None);
}
