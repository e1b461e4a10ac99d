//! The rules of a reconcile, without an API server: each test builds the index's view of one key (its
//! Routes and cached children), plans, and checks the steps, prunes, releases and verdicts.

use std::collections::BTreeMap;

use cfnet_api::fixtures::{destination, route};
use cfnet_api::{FINALIZER, ROUTE_API_VERSION};
use cfnet_translate::ClaimIndex;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::DynamicObject;
use serde_json::json;

use super::*;

const NS: &str = "ns";
const FQDN: &str = "a.apps.example.com";

fn key() -> FqdnKey {
    FqdnKey {
        namespace: NS.into(),
        fqdn: FQDN.into(),
    }
}

/// Route `name` on host `a` with one destination `d-<name>`, holding our finalizer.
fn programmed(name: &str) -> Route {
    let mut r = route(name)
        .namespace(NS)
        .host("a")
        .path(&format!("/{name}"))
        .uid(&format!("{name}-uid"))
        .destination(destination(&format!("d-{name}"), "app").weight(100))
        .build();
    r.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
    r
}

fn invalid(name: &str) -> Route {
    let mut r = programmed(name);
    r.spec.destinations[0].weight = Some(90);
    r
}

fn deleting(mut r: Route) -> Route {
    r.metadata.deletion_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
    r
}

fn without_finalizer(mut r: Route) -> Route {
    r.metadata.finalizers = None;
    r
}

/// The key's Routes and their translation, as reconcile.rs computes them.
struct Key {
    key: FqdnKey,
    routes: Vec<Arc<Route>>,
    translation: FqdnTranslation,
    routing_api: RoutingApi,
}

impl Key {
    fn plan(&self, snapshot: &Snapshot) -> Plan<'_> {
        plan(
            &self.key,
            &self.routes,
            &self.translation,
            snapshot,
            self.routing_api,
        )
    }
}

fn key_of(routes: Vec<Route>) -> Key {
    key_in(RoutingApi::Istio, routes)
}

fn key_in(routing_api: RoutingApi, routes: Vec<Route>) -> Key {
    let live: Vec<&Route> = routes
        .iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .collect();
    let claims = ClaimIndex::from_routes(live.iter().copied());
    let routes: Vec<Arc<Route>> = routes.into_iter().map(Arc::new).collect();
    let settings = Settings {
        gateway: "gw".into(),
        routing_api,
        ..Default::default()
    };
    let translation = translate(&key(), &routes, &claims, &settings);
    Key {
        key: key(),
        routes,
        translation,
        routing_api,
    }
}

fn owner(name: &str) -> serde_json::Value {
    serde_json::to_value(OwnerReference {
        api_version: ROUTE_API_VERSION.into(),
        kind: "Route".into(),
        name: name.into(),
        uid: format!("{name}-uid"),
        ..Default::default()
    })
    .unwrap()
}

fn cached_service(name: &str, fqdn: &str, owners: &[&str]) -> Arc<Cached<Service>> {
    let owners: Vec<_> = owners.iter().map(|o| owner(o)).collect();
    Arc::new(Cached::new(
        serde_json::from_value(json!({
            "metadata": {"namespace": NS, "name": name, "resourceVersion": "1",
                         "annotations": {"cloudfoundry.org/route-fqdn": fqdn},
                         "ownerReferences": owners},
            "spec": {"ports": [{"name": "http", "port": 1, "protocol": "TCP"}]}
        }))
        .unwrap(),
    ))
}

fn cached_vs(name: &str, fqdn: Option<&str>, owners: &[&str]) -> Arc<Cached<VirtualService>> {
    let owners: Vec<_> = owners.iter().map(|o| owner(o)).collect();
    let annotations = fqdn.map_or(json!({}), |f| json!({"cloudfoundry.org/fqdn": f}));
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
        "metadata": {"namespace": NS, "name": name, "resourceVersion": "2",
                     "annotations": annotations, "ownerReferences": owners},
        "spec": {"hosts": ["elsewhere"]}
    }))
    .unwrap();
    Arc::new(Cached::new(object))
}

/// The cached form of exactly what the translation desires.
fn cached_as_desired(k: &Key) -> Snapshot {
    let services = k
        .translation
        .services
        .iter()
        .map(|s| (s.name_any().into(), Arc::new(Cached::new(s.clone()))))
        .collect();
    let virtual_services = k
        .translation
        .virtual_service
        .iter()
        .map(|vs| {
            let served: DynamicObject =
                serde_json::from_value(serde_json::to_value(vs).unwrap()).unwrap();
            (vs.name_any().into(), Arc::new(Cached::new(served)))
        })
        .collect();
    let http_routes = k
        .translation
        .http_routes
        .iter()
        .map(|hr| (hr.name_any().into(), Arc::new(Cached::new(served(hr)))))
        .collect();
    Snapshot {
        services,
        virtual_services,
        http_routes,
        http_routes_served: true,
    }
}

fn served<T: serde::Serialize>(object: &T) -> DynamicObject {
    serde_json::from_value(serde_json::to_value(object).unwrap()).unwrap()
}

fn actions<C>(plan: &ChildPlan<'_, C>) -> Vec<Action> {
    plan.steps.iter().map(|s| s.action).collect()
}

/// The step of the child named `name`.
fn step<'p, 'a, C: Child>(plan: &'p mut ChildPlan<'a, C>, name: &str) -> &'p mut Step<'a, C> {
    plan.steps
        .iter_mut()
        .find(|s| s.desired.meta().name.as_deref() == Some(name))
        .unwrap()
}

fn verdicts(plan: &Plan<'_>) -> BTreeMap<String, (Reason, String)> {
    plan.verdicts()
        .into_iter()
        .map(|(r, v)| (r.name_any(), (v.reason, v.message)))
        .collect()
}

fn vs_name() -> String {
    virtual_service_name(FQDN)
}

#[test]
fn a_new_route_gets_its_finalizer_a_lookup_for_its_service_and_a_new_virtual_service() {
    let k = key_of(vec![without_finalizer(programmed("r1"))]);
    let p = k.plan(&Snapshot::default());
    assert_eq!(p.add_finalizers.len(), 1);
    // Only labelled Services are watched: a missing one may be someone else's.
    assert_eq!(actions(&p.services), [Action::Lookup]);
    assert_eq!(
        actions(&p.virtual_services),
        [Action::Apply { create: true }]
    );
    assert!(p.services.prune.is_empty() && p.virtual_services.prune.is_empty());
    assert_eq!(
        verdicts(&p)["r1"],
        (
            Reason::Programmed,
            format!("programmed in VirtualService {NS}/{}", vs_name())
        )
    );
}

#[test]
fn children_as_desired_are_left_alone_and_changed_ones_applied() {
    let k = key_of(vec![programmed("r1")]);
    let mut snapshot = cached_as_desired(&k);
    let p = k.plan(&snapshot);
    assert!(p.add_finalizers.is_empty());
    assert_eq!(actions(&p.services), [Action::Unchanged]);
    assert_eq!(actions(&p.virtual_services), [Action::Unchanged]);

    snapshot
        .services
        .insert("s-d-r1".into(), cached_service("s-d-r1", FQDN, &["r1"]));
    snapshot
        .virtual_services
        .insert(vs_name().into(), cached_vs(&vs_name(), Some(FQDN), &["r1"]));
    let p = k.plan(&snapshot);
    assert_eq!(actions(&p.services), [Action::Apply { create: false }]);
    assert_eq!(
        actions(&p.virtual_services),
        [Action::Apply { create: false }]
    );
}

#[test]
fn foreign_objects_holding_our_names_are_conflicts_for_their_routes() {
    let k = key_of(vec![programmed("r1"), programmed("r2")]);
    let mut snapshot = cached_as_desired(&k);
    snapshot
        .services
        .insert("s-d-r1".into(), cached_service("s-d-r1", FQDN, &[]));
    let mut p = k.plan(&snapshot);
    assert_eq!(step(&mut p.services, "s-d-r1").action, Action::Foreign);
    assert_eq!(step(&mut p.services, "s-d-r2").action, Action::Unchanged);
    let v = verdicts(&p);
    assert_eq!(
        v["r1"],
        (
            Reason::Conflict,
            format!(
                "Service {NS}/s-d-r1 already exists and is not owned by a Route; cfnet leaves it alone: \
                 delete or rename it so that this route can be programmed"
            )
        )
    );
    assert_eq!(v["r2"].0, Reason::Programmed, "the sibling is programmed");
    assert!(p.services.prune.is_empty(), "never deleted");

    // A foreign VirtualService concerns every route of the FQDN.
    let mut snapshot = cached_as_desired(&k);
    snapshot
        .virtual_services
        .insert(vs_name().into(), cached_vs(&vs_name(), None, &[]));
    let p = k.plan(&snapshot);
    assert_eq!(actions(&p.virtual_services), [Action::Foreign]);
    let v = verdicts(&p);
    for r in ["r1", "r2"] {
        assert_eq!(v[r].0, Reason::Conflict, "{r}");
        assert!(
            v[r].1
                .ends_with("delete it so that this route can be programmed")
        );
    }
}

#[test]
fn a_virtual_service_no_longer_desired_is_pruned_with_the_services_of_the_fqdn() {
    let k = key_of(vec![invalid("r1")]);
    assert!(k.translation.virtual_service.is_none());
    let mut snapshot = Snapshot::default();
    snapshot
        .virtual_services
        .insert(vs_name().into(), cached_vs(&vs_name(), Some(FQDN), &["r1"]));
    snapshot
        .services
        .insert("s-old".into(), cached_service("s-old", FQDN, &["r1"]));
    let p = k.plan(&snapshot);
    let pruned = |names: Vec<&str>| names.into_iter().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        p.virtual_services
            .prune
            .iter()
            .map(|c| c.meta.name.to_string())
            .collect::<Vec<_>>(),
        pruned(vec![&vs_name()])
    );
    assert_eq!(
        p.services
            .prune
            .iter()
            .map(|c| c.meta.name.to_string())
            .collect::<Vec<_>>(),
        pruned(vec!["s-old"])
    );
    assert_eq!(verdicts(&p)["r1"].0, Reason::Invalid);
}

#[test]
fn foreign_children_and_children_of_other_fqdns_are_never_pruned() {
    let k = key_of(vec![]);
    let mut snapshot = Snapshot::default();
    snapshot
        .virtual_services
        .insert(vs_name().into(), cached_vs(&vs_name(), Some(FQDN), &[]));
    snapshot.services.insert(
        "s-moved".into(),
        cached_service("s-moved", "b.apps.example.com", &["r1"]),
    );
    let p = k.plan(&snapshot);
    assert!(p.virtual_services.prune.is_empty());
    assert!(p.services.prune.is_empty());
}

#[test]
fn deleting_routes_are_released_only_when_nothing_failed() {
    let k = key_of(vec![
        deleting(programmed("gone")),
        deleting(without_finalizer(programmed("released"))),
        programmed("stays"),
    ]);
    let p = k.plan(&cached_as_desired(&k));
    let names = |routes: &[&Route]| routes.iter().map(|r| r.name_any()).collect::<Vec<_>>();
    assert_eq!(names(p.release(0)), ["gone"]);
    assert!(
        p.release(1).is_empty(),
        "a failed write holds the finalizer"
    );
    assert!(p.add_finalizers.is_empty(), "deleting routes get none");
    assert_eq!(
        verdicts(&p).into_keys().collect::<Vec<_>>(),
        ["stays"],
        "only live routes get a condition"
    );
}

#[test]
fn a_failed_write_is_reported_to_the_owners_and_the_first_verdict_wins() {
    let k = key_of(vec![programmed("r1"), programmed("r2"), invalid("r3")]);
    let mut p = k.plan(&Snapshot::default());
    step(&mut p.services, "s-d-r1").outcome = Outcome::Failed("apply of s-d-r1 failed".into());
    p.virtual_services.steps[0].outcome = Outcome::Failed("apply of the VS failed".into());
    let v = verdicts(&p);
    assert_eq!(
        v["r1"],
        (Reason::ApplyFailed, "apply of s-d-r1 failed".into()),
        "its Service failed first"
    );
    assert_eq!(
        v["r2"],
        (Reason::ApplyFailed, "apply of the VS failed".into())
    );
    assert_eq!(
        v["r3"].0,
        Reason::Invalid,
        "the translation's problem comes first"
    );
}

#[test]
fn a_route_without_destinations_is_programmed_but_says_nothing_is_routed() {
    let mut r = programmed("r1");
    r.spec.destinations.clear();
    let k = key_of(vec![r]);
    let p = k.plan(&Snapshot::default());
    assert!(p.services.steps.is_empty());
    assert_eq!(
        verdicts(&p)["r1"],
        (
            Reason::Programmed,
            format!(
                "no destinations: nothing is routed for a.apps.example.com/r1 until an app is mapped \
                 (VirtualService {NS}/{})",
                vs_name()
            )
        )
    );
}

/// (what holds the desired Service's name, does the watch see every Service) → action.
#[test]
fn the_action_follows_what_holds_the_name() {
    let k = key_of(vec![programmed("r1")]);
    let desired = &k.translation.services[0];
    let same = Cached::new(desired.clone());
    let changed = cached_service("s-d-r1", FQDN, &["r1"]);
    let foreign = cached_service("s-d-r1", FQDN, &[]);
    let cases: [(&str, Option<&Cached<Service>>, bool, Action); 6] = [
        (
            "nothing, complete watch",
            None,
            true,
            Action::Apply { create: true },
        ),
        ("nothing, partial watch", None, false, Action::Lookup),
        ("ours, as desired", Some(&same), false, Action::Unchanged),
        (
            "ours, changed",
            Some(&*changed),
            false,
            Action::Apply { create: false },
        ),
        ("foreign", Some(&*foreign), false, Action::Foreign),
        (
            "foreign, complete watch",
            Some(&*foreign),
            true,
            Action::Foreign,
        ),
    ];
    for (case, current, complete, expected) in cases {
        assert_eq!(action(desired, current, complete), expected, "{case}");
    }
}

// ---- gateway-api mode ------------------------------------------------------------------------------

fn hr_name() -> String {
    cfnet_translate::http_route_name(FQDN)
}

#[test]
fn gateway_api_mode_writes_http_routes_and_no_virtual_service() {
    let k = key_in(RoutingApi::GatewayApi, vec![programmed("r1")]);
    let snapshot = Snapshot {
        http_routes_served: true,
        ..Default::default()
    };
    let p = k.plan(&snapshot);
    assert!(p.virtual_services.steps.is_empty());
    assert_eq!(actions(&p.http_routes), [Action::Apply { create: true }]);
    assert_eq!(
        verdicts(&p)["r1"],
        (
            Reason::Programmed,
            format!("programmed in HTTPRoute {NS}/{}", hr_name())
        )
    );
}

#[test]
fn unserved_http_routes_are_not_written_and_the_route_says_what_to_install() {
    let k = key_in(RoutingApi::GatewayApi, vec![programmed("r1")]);
    let p = k.plan(&Snapshot::default()); // http_routes_served: false
    assert_eq!(actions(&p.http_routes), [Action::Unserved]);
    let (reason, message) = verdicts(&p)["r1"].clone();
    assert_eq!(reason, Reason::ApplyFailed);
    assert!(
        message.contains("does not serve gateway.networking.k8s.io/v1 HTTPRoutes")
            && message.contains("install the Gateway API standard CRDs"),
        "{message}"
    );
    assert!(
        !p.prune_other_mode(),
        "the VirtualService stays while no HTTPRoute can be written"
    );
}

/// A mode switch: the other mode's child goes only once this mode's children are all in place.
#[test]
fn the_other_modes_children_are_pruned_only_after_this_modes_are_in_place() {
    let k = key_in(RoutingApi::GatewayApi, vec![programmed("r1")]);
    let mut snapshot = cached_as_desired(&k);
    snapshot
        .virtual_services
        .insert(vs_name().into(), cached_vs(&vs_name(), Some(FQDN), &["r1"]));
    let mut p = k.plan(&snapshot);
    assert_eq!(p.virtual_services.prune.len(), 1, "left by the Istio mode");
    assert_eq!(actions(&p.http_routes), [Action::Unchanged]);
    assert!(p.prune_other_mode());
    // A failed (or foreign-held) HTTPRoute keeps the VirtualService.
    step(&mut p.http_routes, &hr_name()).outcome = Outcome::Failed("boom".into());
    assert!(!p.prune_other_mode());
    step(&mut p.http_routes, &hr_name()).outcome = Outcome::Foreign;
    assert!(!p.prune_other_mode());

    // And back: in Istio mode a failed VirtualService keeps the HTTPRoutes.
    let k = key_of(vec![programmed("r1")]);
    let mut snapshot = cached_as_desired(&k);
    let gw = key_in(RoutingApi::GatewayApi, vec![programmed("r1")]);
    snapshot.http_routes = cached_as_desired(&gw).http_routes;
    let mut p = k.plan(&snapshot);
    assert_eq!(p.http_routes.prune.len(), 1);
    assert!(p.prune_other_mode());
    step(&mut p.virtual_services, &vs_name()).outcome = Outcome::Failed("boom".into());
    assert!(!p.prune_other_mode());
}

fn report(accepted: Option<&str>, resolved: Option<&str>) -> ParentReport {
    let c = |status: &str, type_: &str| crate::child::ConditionReport {
        status: status.into(),
        reason: if status == "True" {
            type_.into()
        } else {
            "NotAllowedByListeners".into()
        },
        message: format!("{type_} {status}"),
    };
    ParentReport {
        parent: ParentId {
            group: "gateway.networking.k8s.io".into(),
            kind: "Gateway".into(),
            namespace: "cf-system".into(),
            name: "cf-gateway".into(),
        },
        controller: "istio.io/gateway-controller".into(),
        accepted: accepted.map(|s| c(s, "Accepted")),
        resolved_refs: resolved.map(|s| c(s, "ResolvedRefs")),
    }
}

#[test]
fn the_implementations_report_decides_ready() {
    let parent = report(None, None).parent;
    let cases: [(&[ParentReport], Reason, &str); 5] = [
        (&[], Reason::Programmed, "programmed in HTTPRoute ns/hr"),
        (
            &[report(Some("True"), Some("True"))],
            Reason::Programmed,
            "programmed in HTTPRoute ns/hr, accepted for Gateway cf-system/cf-gateway by istio.io/gateway-controller",
        ),
        (
            &[report(Some("False"), Some("True"))],
            Reason::Rejected,
            "HTTPRoute ns/hr is written, but istio.io/gateway-controller reports Accepted=False for Gateway cf-system/cf-gateway (NotAllowedByListeners): Accepted False",
        ),
        (
            &[report(Some("True"), Some("False"))],
            Reason::Rejected,
            "HTTPRoute ns/hr is written, but istio.io/gateway-controller reports ResolvedRefs=False for Gateway cf-system/cf-gateway (NotAllowedByListeners): ResolvedRefs False",
        ),
        (
            &[report(None, Some("Unknown"))],
            Reason::Rejected,
            "HTTPRoute ns/hr is written, but istio.io/gateway-controller reports ResolvedRefs=Unknown for Gateway cf-system/cf-gateway (NotAllowedByListeners): ResolvedRefs Unknown",
        ),
    ];
    for (reports, reason, message) in cases {
        let reports: Vec<&ParentReport> = reports.iter().collect();
        let v = http_route_verdict("ns", "hr", Some(&parent), &reports);
        assert_eq!((v.reason, v.message.as_str()), (reason, message));
    }
}

/// Reports are read from the cached HTTPRoute, for our parent only, and only while its spec is the
/// desired one.
#[test]
fn a_rejection_of_our_parent_makes_the_route_not_ready() {
    let k = key_in(RoutingApi::GatewayApi, vec![programmed("r1")]);
    let hr = &k.translation.http_routes[0];
    let with_status = |parent: &str| {
        let mut object = served(hr);
        object.data["status"] = json!({"parents": [{
            "parentRef": {"namespace": "cf-system", "name": parent},
            "controllerName": "istio.io/gateway-controller",
            "conditions": [{"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners",
                            "message": "no listener admits the namespace", "observedGeneration": 1,
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]});
        object.metadata.generation = Some(1);
        let mut snapshot = cached_as_desired(&k);
        snapshot
            .http_routes
            .insert(hr_name().into(), Arc::new(Cached::new(object)));
        snapshot
    };
    let p = k.plan(&with_status("cf-gateway"));
    let (reason, message) = verdicts(&p)["r1"].clone();
    assert_eq!(reason, Reason::Rejected);
    assert!(
        message.ends_with("(NotAllowedByListeners): no listener admits the namespace"),
        "{message}"
    );
    let p = k.plan(&with_status("another-gateway"));
    assert_eq!(
        verdicts(&p)["r1"].0,
        Reason::Programmed,
        "another parent's report is not ours"
    );
}
