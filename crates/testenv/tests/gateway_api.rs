//! The HTTPRoutes of cfnet's gateway-api mode against the real Gateway API CRDs (sigs.k8s.io/gateway-api
//! v1.6.3) on the local kube-apiserver: the API server's schema and CEL rules accept every HTTPRoute
//! rendered from examples/ and from a generated set of routes (an FQDN with more than 16 routes, wildcard
//! hosts, weights, 0 weights, the root, a trailing `/`, every character a path may hold, empty CF
//! headers), and store each exactly as applied (no defaulting, so no drift); and they refuse a
//! deliberately wrong one, which shows that the rules run. These tests FAIL (never skip) when the binaries
//! are missing: install them with `cfnet dev install`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cfnet_api::gateway_api::{HTTPRoute, HTTPRouteStatus, RouteParentStatus};
use cfnet_api::{
    AppProcess, DestinationApp, DestinationSelector, Route, RouteDestination, RouteDomain,
    RouteSpec,
};
use cfnet_testenv::{ControlPlane, Options};
use cfnet_translate::gateway_api::{MAX_RULES, validate_http_route};
use cfnet_translate::{GatewayRef, Reason, RoutingApi, Settings, Translation, translate};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use serde::Deserialize;
use serde_json::{Value, json};

const FIELD_MANAGER: &str = "cfnet-gateway-api-test";

fn settings() -> Settings {
    Settings {
        gateway: "cf-system/istio-ingressgateway".to_owned(),
        routing_api: RoutingApi::GatewayApi,
        gateway_api_parent: GatewayRef::default(),
    }
}

async fn control_plane() -> ControlPlane {
    ControlPlane::start_with(Options {
        install_crds: false,
        gateway_api_crds: true,
        ..Options::default()
    })
    .await
    .expect("control plane starts with the Gateway API CRDs (binaries: `cfnet dev install`)")
}

/// Every Route in examples/ (a document may be a Route or a List of them), each with a uid: the API server
/// refuses an ownerReference without one.
fn example_routes() -> Vec<Route> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut routes: Vec<Route> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("example");
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = Value::deserialize(document).expect("YAML");
            let items = match value["kind"].as_str() {
                Some("List") => value["items"].as_array().cloned().unwrap_or_default(),
                Some("Route") => vec![value],
                _ => continue,
            };
            for item in items {
                routes.push(serde_json::from_value(item).expect("a Route"));
            }
        }
    }
    for (i, r) in routes.iter_mut().enumerate() {
        r.metadata.uid = Some(format!("00000000-0000-0000-0000-{i:012}"));
    }
    assert!(routes.len() >= 5, "{} example routes", routes.len());
    routes
}

fn destination(guid: &str, port: i64, weight: Option<i64>, app: &str) -> RouteDestination {
    RouteDestination {
        guid: guid.to_owned(),
        weight,
        port,
        app: DestinationApp {
            guid: app.to_owned(),
            process: AppProcess {
                type_: "web".to_owned(),
            },
        },
        selector: DestinationSelector {
            match_labels: BTreeMap::from([(
                "cloudfoundry.org/app_guid".to_owned(),
                app.to_owned(),
            )]),
        },
    }
}

fn route(
    name: &str,
    host: &str,
    domain: &str,
    path: &str,
    destinations: Vec<RouteDestination>,
) -> Route {
    let fqdn = if host.is_empty() {
        domain.to_owned()
    } else {
        format!("{host}.{domain}")
    };
    let mut r = Route::new(
        name,
        RouteSpec {
            host: host.to_owned(),
            path: (!path.is_empty()).then(|| path.to_owned()),
            url: format!("{fqdn}{path}"),
            domain: RouteDomain {
                name: domain.to_owned(),
                internal: domain.ends_with(".internal"),
            },
            destinations,
        },
    );
    r.metadata.namespace = Some("cf-workloads".to_owned());
    r.metadata.uid = Some(format!("uid-{name}"));
    r.metadata.labels = Some(BTreeMap::from([
        (
            "cloudfoundry.org/space_guid".to_owned(),
            "space-1".to_owned(),
        ),
        ("cloudfoundry.org/org_guid".to_owned(), "org-1".to_owned()),
    ]));
    r
}

const APPS: &str = "apps.example.com";

/// A Route with one destination (named like the Route) on port 8080 of `app`.
fn one_destination(name: &str, host: &str, domain: &str, path: &str, app: &str) -> Route {
    route(
        name,
        host,
        domain,
        path,
        vec![destination(name, 8080, None, app)],
    )
}

/// Weights: explicit with a 0, an even split with a remainder, a single destination at 100.
fn weighted_routes() -> [Route; 2] {
    [
        route(
            "weights",
            "weights",
            APPS,
            "",
            vec![
                destination("w-a", 8080, Some(70), "app-a"),
                destination("w-b", 9000, Some(30), "app-b"),
                destination("w-c", 65535, Some(0), "app-c"),
            ],
        ),
        route(
            "thirds",
            "weights",
            APPS,
            "/thirds/",
            vec![
                destination("t-a", 1, None, "app-a"),
                destination("t-b", 8080, None, "app-b"),
                destination("t-c", 8080, None, "app-c"),
            ],
        ),
    ]
}

/// Routes that exercise what the HTTPRoutes can hold.
fn generated_routes() -> Vec<Route> {
    // 40 context paths on one FQDN: three or more shards.
    let mut routes: Vec<Route> = (0..40)
        .map(|i| {
            let name = format!("many-{i}");
            one_destination(&name, "many", APPS, &format!("/p{i}"), &format!("app-{i}"))
        })
        .collect();
    routes.extend([
        one_destination("many-root", "many", APPS, "", "app-root"),
        // Wildcard hosts, and `*` alone (no hostnames).
        one_destination("wild", "*", APPS, "", "app-wild"),
        one_destination("wild-domain", "", "*.sys.example.com", "/x", "app-wd"),
        one_destination("star", "", "*", "", "app-star"),
    ]);
    routes.extend(weighted_routes());
    let chars = "/a-b_c.d~e!f$g&h'i(j)k*l+m,n;o=p:q@r/caf%C3%A9";
    routes.push(one_destination(
        "chars",
        "weights",
        APPS,
        chars,
        "app-chars",
    ));
    // Without space and org labels: empty CF headers are removed, not set.
    let mut unlabelled = one_destination("unlabelled", "unlabelled", APPS, "", "");
    unlabelled.metadata.labels = None;
    routes.push(unlabelled);
    // No destinations: no rule, and alone on its FQDN no HTTPRoute.
    routes.push(route("empty", "empty", APPS, "/e", vec![]));
    routes.push(route("many-empty", "many", APPS, "/empty", vec![]));
    // Internal: not programmable in this mode.
    routes.push(one_destination(
        "internal",
        "backend",
        "apps.internal",
        "",
        "app-backend",
    ));
    routes
}

/// Applies every HTTPRoute of `translation` into `namespace` (server-side apply, as the controller will)
/// and checks that the API server stored each spec exactly as applied.
async fn apply_all(cp: &ControlPlane, namespace: &str, translation: &Translation) {
    let api: Api<HTTPRoute> = Api::namespaced(cp.client(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for desired in &translation.http_routes {
        let mut desired = desired.clone();
        desired.metadata.namespace = Some(namespace.to_owned());
        let name = desired.metadata.name.clone().unwrap_or_default();
        assert_eq!(validate_http_route(&desired.spec), Ok(()), "{name}");
        let stored = api
            .patch(&name, &params, &Patch::Apply(&desired))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the API server refused HTTPRoute {name}: {e}\n{}",
                    serde_yaml_ng::to_string(&desired).unwrap_or_default()
                )
            });
        assert_eq!(stored.spec, desired.spec, "{name} is stored as applied");
        assert_eq!(stored.metadata.labels, desired.metadata.labels);
        assert_eq!(stored.metadata.annotations, desired.metadata.annotations);
        assert_eq!(
            stored.metadata.owner_references,
            desired.metadata.owner_references
        );
    }
    let names: Vec<String> = api
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|h| h.metadata.name)
        .collect();
    assert_eq!(names.len(), translation.http_routes.len(), "{names:?}");
}

#[tokio::test]
async fn the_api_server_accepts_every_http_route_cfnet_renders() {
    let cp = control_plane().await;

    let examples = translate(&example_routes(), &settings());
    assert!(!examples.http_routes.is_empty());
    assert!(examples.virtual_services.is_empty());
    let ns = cp
        .create_namespace("gwapi-examples")
        .await
        .expect("namespace");
    apply_all(&cp, &ns, &examples).await;

    let routes = generated_routes();
    let generated = translate(&routes, &settings());
    let problems: Vec<(&str, Reason)> = generated
        .problems
        .iter()
        .map(|p| (p.route.as_str(), p.reason))
        .collect();
    assert_eq!(problems, vec![("internal", Reason::Unsupported)]);
    let many: Vec<&HTTPRoute> = generated
        .http_routes
        .iter()
        .filter(|h| h.spec.hostnames == ["many.apps.example.com"])
        .collect();
    assert!(many.len() >= 3, "41 rules need at least 3 shards");
    assert_eq!(
        many.iter().map(|h| h.spec.rules.len()).sum::<usize>(),
        41,
        "every route with destinations has its rule"
    );
    assert!(many.iter().all(|h| h.spec.rules.len() <= MAX_RULES));
    assert!(
        generated
            .http_routes
            .iter()
            .any(|h| h.spec.hostnames.is_empty()),
        "FQDN * has no hostnames"
    );
    let ns = cp
        .create_namespace("gwapi-generated")
        .await
        .expect("namespace");
    apply_all(&cp, &ns, &generated).await;
}

/// A change to an HTTPRoute's JSON.
type Change = fn(&mut Value);

/// The first rendered HTTPRoute of the examples, changed by `change`, as JSON.
fn broken(change: impl Fn(&mut Value)) -> Value {
    let translation = translate(&example_routes(), &settings());
    let mut value = serde_json::to_value(&translation.http_routes[0]).expect("JSON");
    if let Some(metadata) = value["metadata"].as_object_mut() {
        metadata.remove("namespace");
    }
    change(&mut value);
    value
}

#[tokio::test]
async fn the_crd_rules_refuse_a_wrong_http_route() {
    let cp = control_plane().await;
    let ns = cp
        .create_namespace("gwapi-refused")
        .await
        .expect("namespace");
    let api: Api<HTTPRoute> = Api::namespaced(cp.client(), &ns);
    let params = PatchParams::apply(FIELD_MANAGER).force();

    // The unchanged object is accepted: the refusals below are the changes'.
    let fine = broken(|_| {});
    let name = fine["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    api.patch(&name, &params, &Patch::Apply(&fine))
        .await
        .expect("the unchanged HTTPRoute is accepted");

    let cases: [(&str, Change, &str); 4] = [
        (
            "PathPrefix without a leading /",
            |v| v["spec"]["rules"][0]["matches"][0]["path"]["value"] = json!("api"),
            "value must be an absolute path and start with '/'",
        ),
        (
            "a path with //",
            |v| v["spec"]["rules"][0]["matches"][0]["path"]["value"] = json!("/a//b"),
            "must not contain '//'",
        ),
        (
            "a Service backend without a port",
            |v| {
                v["spec"]["rules"][0]["backendRefs"][0]
                    .as_object_mut()
                    .map(|b| b.remove("port"));
            },
            "Must have port for Service reference",
        ),
        (
            "17 rules",
            |v| {
                let rule = v["spec"]["rules"][0].clone();
                v["spec"]["rules"] = Value::Array(vec![rule; 17]);
            },
            "must have at most 16 items",
        ),
    ];
    for (what, change, expected) in cases {
        let mut value = fine.clone();
        change(&mut value);
        let typed: HTTPRoute = serde_json::from_value(value.clone()).expect("still an HTTPRoute");
        assert!(
            validate_http_route(&typed.spec).is_err(),
            "{what}: the port of the CRD rules agrees"
        );
        match api.patch(&name, &params, &Patch::Apply(&value)).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{what}: {status:?}");
                assert!(
                    status.message.contains(expected),
                    "{what}: the message names the rule: {}",
                    status.message
                );
            }
            other => panic!("{what}: expected a 422 from the CRD rules, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_status_written_by_an_implementation_reads_back_typed() {
    let cp = control_plane().await;
    let ns = cp
        .create_namespace("gwapi-status")
        .await
        .expect("namespace");
    let api: Api<HTTPRoute> = Api::namespaced(cp.client(), &ns);
    let fine = broken(|_| {});
    let name = fine["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Apply(&fine),
    )
    .await
    .expect("applied");
    let parent = fine["spec"]["parentRefs"][0].clone();
    let condition = |type_: &str, status: &str, reason: &str| Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: format!("{type_} by the test"),
        last_transition_time: Time("2026-01-01T00:00:00Z".parse().expect("time")),
        observed_generation: Some(1),
    };
    let status = HTTPRouteStatus {
        parents: vec![RouteParentStatus {
            parent_ref: serde_json::from_value(parent).expect("parentRef"),
            controller_name: "example.com/gateway-controller".to_owned(),
            conditions: vec![
                condition("Accepted", "True", "Accepted"),
                condition("ResolvedRefs", "False", "BackendNotFound"),
            ],
        }],
    };
    let patch = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                       "status": status});
    api.patch_status(
        &name,
        &PatchParams::apply("example-implementation").force(),
        &Patch::Apply(&patch),
    )
    .await
    .expect("the status subresource takes the typed status");
    let read = api.get(&name).await.expect("read back");
    let parents = read.status.expect("status").parents;
    assert_eq!(parents.len(), 1);
    let refs = parents[0].condition("ResolvedRefs").expect("ResolvedRefs");
    assert_eq!(
        (refs.status.as_str(), refs.reason.as_str()),
        ("False", "BackendNotFound")
    );
    assert_eq!(
        parents[0].parent_ref.namespace.as_deref(),
        Some("cf-system")
    );
}
