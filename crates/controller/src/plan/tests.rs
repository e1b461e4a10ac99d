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
}

impl Key {
    fn plan(&self, snapshot: &Snapshot) -> Plan<'_> {
        plan(&self.key, &self.routes, &self.translation, snapshot)
    }
}

fn key_of(routes: Vec<Route>) -> Key {
    let live: Vec<&Route> = routes
        .iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .collect();
    let claims = ClaimIndex::from_routes(live.iter().copied());
    let routes: Vec<Arc<Route>> = routes.into_iter().map(Arc::new).collect();
    let settings = Settings {
        gateway: "gw".into(),
        ..Default::default()
    };
    let translation = translate(&key(), &routes, &claims, &settings);
    Key {
        key: key(),
        routes,
        translation,
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
    Snapshot {
        services,
        virtual_services,
    }
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
