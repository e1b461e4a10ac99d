//! `cfnet diff`: what the controller would change on the live cluster, without writing anything. It
//! lists what the controller watches (Routes, the Services labelled with a route guid, every
//! VirtualService), fills an [`Index`] exactly as the watches do, and runs the controller's own
//! translation and [`plan`] for every key — the same ownership, adoption and prune rules, the same
//! comparison of only the fields cfnet sets (`child::projection`, whose digest decides whether the
//! controller applies). Where the plan would look a Service up before creating it, diff makes the same
//! GET. It then reports each object the plan would write: create, update (the fields that change),
//! adopt (an update of an object owned by a Route that cfnet's field manager never wrote, e.g. the Go
//! routecontroller's), delete (a prune), and refuse (a foreign object holding a name: the controller
//! leaves it and marks its Routes Conflict); and each Route whose finalizers or Ready condition would
//! change.

mod fields;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;

use cfnet_api::gateway_api::HTTPRoute;
use cfnet_api::{Condition, FIELD_MANAGER, FINALIZER, READY, Route, VirtualService};
use cfnet_translate::{FqdnKey, RoutingApi, Settings};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use self::fields::{FieldChange, render as render_value};
use crate::child::{Cached, Child, owner_route_names, projection};
use crate::index::{Index, ObjId, cached_route, obj_id};
use crate::packed::PackedRoute;
use crate::plan::{Action, ChildPlan, Outcome, Plan, action, plan, translate};
use crate::status::next_conditions;

/// Objects per list request, as the watches ask.
const LIST_PAGE_SIZE: u32 = 100;

/// What to compare the cluster with.
#[derive(Clone, Debug, Default)]
pub struct DiffOptions {
    /// The translation's settings as the controller is configured: `ISTIO_GATEWAY_NAME`, the routing API
    /// and the Gateway API parent.
    pub settings: Settings,
    /// Only this namespace (the controller's `--namespace`); `None`: all namespaces.
    pub namespace: Option<String>,
    /// Routes to compare instead of the live ones (`-f`): each replaces the live Route of its
    /// namespace/name (keeping its uid, finalizers and status) or is added; only the FQDNs they touch are
    /// compared. `None`: the live Routes, every FQDN.
    pub routes: Option<Vec<Route>>,
}

/// What the controller would do to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    Create,
    Update,
    /// An update of an object owned by a Route that cfnet's field manager has not written yet.
    Adopt,
    Delete,
    /// A foreign object holds a name cfnet needs: nothing is written to it, its Routes go Conflict.
    Refuse,
}

impl ChangeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Create => "create",
            ChangeAction::Update => "update",
            ChangeAction::Adopt => "adopt",
            ChangeAction::Delete => "delete",
            ChangeAction::Refuse => "refuse",
        }
    }

    /// Is it a write? (`refuse` is not.)
    pub fn writes(self) -> bool {
        self != ChangeAction::Refuse
    }
}

/// One object the controller would write (or refuse to).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObjectChange {
    pub action: ChangeAction,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// For update and adopt: the fields cfnet sets that would change, in path order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
    /// Why, where it is not obvious (adopt: who wrote it; delete: the FQDN; refuse: the conflict).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Every change, ordered by kind, namespace and name.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Diff {
    pub changes: Vec<ObjectChange>,
}

impl Diff {
    /// Would the controller write anything?
    pub fn pending(&self) -> bool {
        self.changes.iter().any(|c| c.action.writes())
    }

    /// How many changes of each action, in [`ChangeAction`] order.
    pub fn counts(&self) -> BTreeMap<ChangeAction, usize> {
        let mut counts = BTreeMap::new();
        for c in &self.changes {
            *counts.entry(c.action).or_default() += 1;
        }
        counts
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error(
        "cannot list {kind}s {scope} (check that the API server is reachable, that the {kind} resource is installed and that you may list it)"
    )]
    List {
        kind: &'static str,
        scope: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "cannot read {kind} {namespace}/{name} (check that you may get {kind}s in {namespace})"
    )]
    Get {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "Route {namespace}/{name} from the files is outside --namespace {scope}: drop --namespace or move the Route"
    )]
    OutsideNamespace {
        namespace: String,
        name: String,
        scope: String,
    },
}

/// The served objects, by id, for the field-level comparison (the index keeps only digests).
struct Served {
    routes: HashMap<ObjId, Route>,
    services: HashMap<ObjId, Service>,
    virtual_services: HashMap<ObjId, <VirtualService as Child>::Object>,
    http_routes: HashMap<ObjId, <HTTPRoute as Child>::Object>,
}

/// What the controller would change, given `client`'s view of the cluster. Reads only: lists, and the
/// GETs the controller's plan makes before creating a Service.
pub async fn diff(client: &Client, options: &DiffOptions) -> Result<Diff, DiffError> {
    let scope = options.namespace.as_deref();
    let route_api: Api<Route> = match scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let routes = list(route_api, None, "Route", scope).await?;
    let services = list(
        Service::api(client.clone(), scope),
        Service::WATCH_LABEL,
        Service::KIND,
        scope,
    )
    .await?;
    let virtual_services = list_if_served::<VirtualService>(client, scope).await?;
    let http_routes = list_if_served::<HTTPRoute>(client, scope).await?;

    let mut index = Index::default();
    index.replace_routes(
        scope,
        routes
            .iter()
            .map(|r| PackedRoute::new(cached_route(r.clone())))
            .collect(),
    );
    index.replace_children::<Service>(scope, services.iter().cloned().map(Cached::new).collect());
    if let Some(listed) = &virtual_services {
        index.replace_children::<VirtualService>(
            scope,
            listed.iter().cloned().map(Cached::new).collect(),
        );
    }
    if let Some(listed) = &http_routes {
        index.replace_children::<HTTPRoute>(
            scope,
            listed.iter().cloned().map(Cached::new).collect(),
        );
    }
    index.http_routes_served = http_routes.is_some();
    let served = Served {
        routes: by_id(routes),
        services: by_id(services),
        virtual_services: by_id(virtual_services.unwrap_or_default()),
        http_routes: by_id(http_routes.unwrap_or_default()),
    };
    let keys = match &options.routes {
        None => index.all_keys(),
        Some(files) => apply_files(&mut index, files, &served.routes, scope)?,
    };
    let settings = &options.settings;
    let now = Utc::now();
    let mut changes = BTreeMap::new();
    for key in &keys {
        diff_key(client, &index, settings, key, &served, now, &mut changes).await?;
    }
    Ok(Diff {
        changes: changes.into_values().collect(),
    })
}

fn scope_text(scope: Option<&str>) -> String {
    scope.map_or_else(
        || "in all namespaces".into(),
        |ns| format!("in namespace {ns}"),
    )
}

/// The children of kind `C` in scope, or `None` when the API server does not serve the kind (its CRDs are
/// not installed): then the controller would not watch it either.
async fn list_if_served<C: Child>(
    client: &Client,
    scope: Option<&str>,
) -> Result<Option<Vec<C::Object>>, DiffError> {
    let served = crate::discovery::serves::<C>(client)
        .await
        .map_err(|source| DiffError::List {
            kind: C::KIND,
            scope: scope_text(scope),
            source: Box::new(source),
        })?;
    if !served {
        return Ok(None);
    }
    list(
        C::api(client.clone(), scope),
        C::WATCH_LABEL,
        C::KIND,
        scope,
    )
    .await
    .map(Some)
}

fn by_id<K: ResourceExt>(objects: Vec<K>) -> HashMap<ObjId, K> {
    objects.into_iter().map(|o| (obj_id(&o), o)).collect()
}

/// Every object of `api` (with `label` set, if given), page by page.
async fn list<K>(
    api: Api<K>,
    label: Option<&str>,
    kind: &'static str,
    scope: Option<&str>,
) -> Result<Vec<K>, DiffError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut params = ListParams::default().limit(LIST_PAGE_SIZE);
    if let Some(label) = label {
        params = params.labels(label);
    }
    let mut all = Vec::new();
    loop {
        let page = api.list(&params).await.map_err(|source| DiffError::List {
            kind,
            scope: scope_text(scope),
            source: Box::new(source),
        })?;
        all.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(all),
        }
    }
}

/// Puts the Routes of the files into the index in place of the live ones; returns the keys to compare:
/// those of the file Routes, and those their change touches (the old FQDN, claims).
fn apply_files(
    index: &mut Index,
    files: &[Route],
    live: &HashMap<ObjId, Route>,
    scope: Option<&str>,
) -> Result<BTreeSet<FqdnKey>, DiffError> {
    let mut keys = BTreeSet::new();
    for file in files {
        let mut route = file.clone();
        let (namespace, name) = obj_id(&route);
        if let Some(scope) = scope
            && &*namespace != scope
        {
            return Err(DiffError::OutsideNamespace {
                namespace: namespace.to_string(),
                name: name.to_string(),
                scope: scope.to_owned(),
            });
        }
        // What the API server keeps of the live Route: an apply of the file changes only the spec.
        if let Some(current) = live.get(&(namespace.clone(), name)) {
            let meta = &mut route.metadata;
            meta.uid.clone_from(&current.metadata.uid);
            meta.finalizers.clone_from(&current.metadata.finalizers);
            meta.deletion_timestamp
                .clone_from(&current.metadata.deletion_timestamp);
            let bump = i64::from(current.spec != route.spec);
            meta.generation = current.metadata.generation.map(|g| g + bump);
            route.status.clone_from(&current.status);
        }
        keys.insert(FqdnKey {
            namespace,
            fqdn: route.spec.fqdn().into(),
        });
        keys.extend(index.apply_packed_route(PackedRoute::new(cached_route(route))));
    }
    Ok(keys)
}

/// The changes one reconcile of `key` would make, added to `out` (the first entry for an object wins).
async fn diff_key(
    client: &Client,
    index: &Index,
    settings: &Settings,
    key: &FqdnKey,
    served: &Served,
    now: DateTime<Utc>,
    out: &mut BTreeMap<(&'static str, String, String), ObjectChange>,
) -> Result<(), DiffError> {
    let routes = index.routes(key);
    let translation = translate(key, &routes, index, settings);
    let snapshot = index.snapshot(key, &translation);
    let mut plan = plan(key, &routes, &translation, &snapshot, settings.routing_api);
    let mut found = Vec::new();
    child_changes(client, &mut plan.services, &served.services, &mut found).await?;
    child_changes(
        client,
        &mut plan.virtual_services,
        &served.virtual_services,
        &mut found,
    )
    .await?;
    child_changes(
        client,
        &mut plan.http_routes,
        &served.http_routes,
        &mut found,
    )
    .await?;
    // The prunes execute.rs makes: this mode's, the other mode's only once this mode's children are all
    // in place (unserved, foreign or failed ones keep the old kind), then the Services.
    let other_mode = plan.prune_other_mode();
    let (vs, hr) = match settings.routing_api {
        RoutingApi::Istio => (true, other_mode),
        RoutingApi::GatewayApi => (other_mode, true),
    };
    if vs {
        prune_changes(&plan.virtual_services, &mut found);
    }
    if hr {
        prune_changes(&plan.http_routes, &mut found);
    }
    prune_changes(&plan.services, &mut found);
    route_changes(&plan, &served.routes, now, &mut found);
    for change in found {
        record(out, change);
    }
    Ok(())
}

/// Adds `change` unless the object has one already. A write that keeps the object wins over a prune:
/// an object whose FQDN annotation names one key while another key desires it exists after the
/// controller's reconciles either way (rewritten, or deleted and re-created, depending on which key is
/// reconciled first); the diff shows the write.
fn record(out: &mut BTreeMap<(&'static str, String, String), ObjectChange>, change: ObjectChange) {
    let id = (change.kind, change.namespace.clone(), change.name.clone());
    match out.get(&id) {
        None => {
            out.insert(id, change);
        }
        Some(old)
            if old.action == ChangeAction::Delete && change.action != ChangeAction::Delete =>
        {
            out.insert(id, change);
        }
        Some(_) => {}
    }
}

fn change(action: ChangeAction, kind: &'static str, meta: &ObjectMeta) -> ObjectChange {
    ObjectChange {
        action,
        kind,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        fields: Vec::new(),
        message: None,
    }
}

/// The changes the steps and prunes of one kind would make. Resolves a `Lookup` with the same GET the
/// controller makes, and records a foreign object in the step's outcome, for the verdicts.
async fn child_changes<C: Child>(
    client: &Client,
    plan: &mut ChildPlan<'_, C>,
    served: &HashMap<ObjId, C::Object>,
    out: &mut Vec<ObjectChange>,
) -> Result<(), DiffError> {
    for step in &mut plan.steps {
        let desired: &C = step.desired;
        let meta = desired.meta();
        let id = obj_id(desired);
        let mut current = served.get(&id).cloned();
        let next = match step.action {
            Action::Lookup => {
                current = C::api(client.clone(), Some(&*id.0))
                    .get_opt(&id.1)
                    .await
                    .map_err(|source| DiffError::Get {
                        kind: C::KIND,
                        namespace: id.0.to_string(),
                        name: id.1.to_string(),
                        source: Box::new(source),
                    })?;
                action(desired, current.clone().map(Cached::new).as_ref(), true)
            }
            planned => planned,
        };
        match (next, current) {
            (Action::Unchanged | Action::Lookup, _) => {}
            (Action::Unserved, _) => {
                let mut c = change(ChangeAction::Refuse, C::KIND, meta);
                c.message = Some(format!(
                    "the API server does not serve {}s: the controller cannot write it until their CRDs are installed",
                    C::KIND
                ));
                out.push(c);
            }
            (Action::Foreign, _) => {
                step.outcome = Outcome::Foreign;
                let owners: Vec<&str> = owner_route_names(meta).collect();
                let mut c = change(ChangeAction::Refuse, C::KIND, meta);
                c.message = Some(format!(
                    "already exists and is not owned by a Route: the controller leaves it alone and marks Route {} Conflict ({} so that the route can be programmed)",
                    owners.join(", "),
                    C::FOREIGN_FIX
                ));
                out.push(c);
            }
            (Action::Apply { create: false }, Some(object)) => {
                out.push(update(desired, &object));
            }
            (Action::Apply { .. }, _) => out.push(change(ChangeAction::Create, C::KIND, meta)),
        }
    }
    Ok(())
}

/// The owned children the plan deletes.
fn prune_changes<C: Child>(plan: &ChildPlan<'_, C>, out: &mut Vec<ObjectChange>) {
    for child in &plan.prune {
        out.push(ObjectChange {
            action: ChangeAction::Delete,
            kind: C::KIND,
            namespace: child.meta.namespace.to_string(),
            name: child.meta.name.to_string(),
            fields: Vec::new(),
            message: Some(format!(
                "owned by Route {} for FQDN {}; not among the objects its live Routes need",
                child
                    .meta
                    .owner_route_names()
                    .collect::<Vec<_>>()
                    .join(", "),
                child.meta.fqdn().unwrap_or_default()
            )),
        });
    }
}

/// An update (or adoption) of `object` to `desired`: the fields the controller's apply would change.
fn update<C: Child>(desired: &C, object: &C::Object) -> ObjectChange {
    let to = display(projection::<C>(desired.meta(), desired.desired_spec()));
    let from = display(projection::<C>(object.meta(), C::served_spec(object)));
    let mut c = change(ChangeAction::Update, C::KIND, desired.meta());
    fields::diff("", Some(&from), Some(&to), &mut c.fields);
    let managers: BTreeSet<&str> = object
        .meta()
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.as_deref())
        .collect();
    if !managers.contains(FIELD_MANAGER) {
        c.action = ChangeAction::Adopt;
        let by = if managers.is_empty() {
            "no recorded field manager".to_owned()
        } else {
            managers.into_iter().collect::<Vec<_>>().join(", ")
        };
        c.message = Some(format!(
            "owned by a Route but written by {by}: the controller's apply takes over the fields it sets"
        ));
    }
    c
}

/// A [`projection`] with the object's own field names: `metadata.labels`, `metadata.annotations`,
/// `metadata.ownerReferences` (as `Route NAME (uid UID)`), `spec`.
fn display(projection: Value) -> Value {
    let owners: Vec<Value> = projection["owners"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            format!(
                "Route {} (uid {})",
                o[1].as_str().unwrap_or_default(),
                o[2].as_str().unwrap_or_default()
            )
            .into()
        })
        .collect();
    json!({
        "metadata": {
            "labels": projection["labels"],
            "annotations": projection["annotations"],
            "ownerReferences": owners,
        },
        "spec": projection["spec"],
    })
}

/// The Routes whose finalizers or Ready condition the reconcile would write (those on the cluster:
/// a Route only in the files is not the controller's to create).
fn route_changes(
    plan: &Plan<'_>,
    live: &HashMap<ObjId, Route>,
    now: DateTime<Utc>,
    out: &mut Vec<ObjectChange>,
) {
    let mut found: BTreeMap<ObjId, ObjectChange> = BTreeMap::new();
    let finalizers = |route: &Route| -> Value { json!(route.finalizers()) };
    for route in &plan.add_finalizers {
        if let Some(c) = route_entry(&mut found, live, route) {
            let mut next = route.finalizers().to_vec();
            next.push(FINALIZER.to_owned());
            c.fields.push(FieldChange {
                path: "metadata.finalizers".into(),
                from: non_empty(finalizers(route)),
                to: Some(json!(next)),
            });
        }
    }
    for route in plan.release(0) {
        if let Some(c) = route_entry(&mut found, live, route) {
            let next: Vec<&String> = route
                .finalizers()
                .iter()
                .filter(|f| *f != FINALIZER)
                .collect();
            c.fields.push(FieldChange {
                path: "metadata.finalizers".into(),
                from: Some(finalizers(route)),
                to: non_empty(json!(next)),
            });
        }
    }
    for (route, verdict) in plan.verdicts() {
        let current = route
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        let Some(next) = next_conditions(current, &verdict, route.metadata.generation, now) else {
            continue;
        };
        if let Some(c) = route_entry(&mut found, live, route) {
            let old = current.iter().find(|c| c.type_ == READY).map(ready_fields);
            let new = next.iter().find(|c| c.type_ == READY).map(ready_fields);
            fields::diff(
                "status.conditions[Ready]",
                old.as_ref(),
                new.as_ref(),
                &mut c.fields,
            );
        }
    }
    out.extend(found.into_values());
}

/// The change of `route` in `found`, added if missing; `None` for a Route not on the cluster.
fn route_entry<'m>(
    found: &'m mut BTreeMap<ObjId, ObjectChange>,
    live: &HashMap<ObjId, Route>,
    route: &Route,
) -> Option<&'m mut ObjectChange> {
    let id = obj_id(route);
    if !live.contains_key(&id) {
        return None;
    }
    Some(
        found
            .entry(id)
            .or_insert_with(|| change(ChangeAction::Update, "Route", &route.metadata)),
    )
}

fn non_empty(v: Value) -> Option<Value> {
    v.as_array().is_some_and(|a| !a.is_empty()).then_some(v)
}

/// The Ready condition's fields that say something (its transition time is the clock's, left out).
fn ready_fields(c: &Condition) -> Value {
    let mut v = json!({"status": c.status, "reason": c.reason, "message": c.message,
                       "observedGeneration": c.observed_generation});
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    v
}

#[cfg(test)]
mod tests;
