//! One reconcile of one (namespace, FQDN) key: finalizers, Services, the VirtualService, deletions of
//! owned children no longer desired, then the Ready condition of every Route of the key.
//!
//! Reads come from the index snapshot; writes are server-side applies (field manager
//! `cfnet-routecontroller`) sent only when the cached object differs in a field we own, so a steady
//! state costs no API write. Every write is gated on leadership.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use cfnet_api::{
    Condition, ConditionStatus, FINALIZER, MANAGED_BY_LABEL, MANAGED_BY_VALUE, READY, Route,
    VirtualService,
};
use cfnet_translate::{FqdnKey, Settings, virtual_service_name};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::core::ApiResource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::changes::{Change, ChildChanges};
use crate::children::{
    CachedService, CachedVirtualService, ChildMeta, owner_route_names, service_needs_apply,
    virtual_service_needs_apply,
};
use crate::config::FIELD_MANAGER;
use crate::error::Error;
use crate::index::{Index, ObjId};
use crate::metrics::{Metrics, Verb};

/// What the reconcile concluded about one Route.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Verdict {
    ready: bool,
    reason: String,
    message: String,
}

impl Verdict {
    fn not_ready(reason: &str, message: String) -> Self {
        Verdict {
            ready: false,
            reason: reason.to_string(),
            message,
        }
    }
}

pub(crate) struct Reconciler {
    pub client: Client,
    pub index: Arc<RwLock<Index>>,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    /// Who publishes Events. Each publish uses a fresh `Recorder`: a long-lived one keeps every Event
    /// it sent for six minutes (to turn repeats into series) and scans them all on every publish. With
    /// 10,000 routes programmed at once that was 2.3 KB per route of peak memory; cfnet sends one
    /// Event per Route and kind of change per reconcile, so repeats are rare anyway.
    pub reporter: Reporter,
    /// True while this replica may write (leader, or leader election off).
    pub gate: watch::Receiver<bool>,
    pub vs_resource: ApiResource,
}

/// Every key the index knows (resync).
pub(crate) fn read_keys(index: &RwLock<Index>) -> std::collections::BTreeSet<FqdnKey> {
    read(index).all_keys()
}

fn read(index: &RwLock<Index>) -> std::sync::RwLockReadGuard<'_, Index> {
    index.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn write(index: &RwLock<Index>) -> std::sync::RwLockWriteGuard<'_, Index> {
    index.write().unwrap_or_else(|p| p.into_inner())
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Reconciler {
    fn may_write(&self, kind: &'static str, namespace: &str, name: &str) -> Result<(), Error> {
        if *self.gate.borrow() {
            Ok(())
        } else {
            Err(Error::NotLeader {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
            })
        }
    }

    fn params() -> PatchParams {
        PatchParams::apply(FIELD_MANAGER).force()
    }

    pub async fn reconcile(&self, key: &FqdnKey) -> Result<(), Error> {
        let snap = read(&self.index).snapshot(key, &self.settings);
        let ns = &*key.namespace;
        let (live, deleting): (Vec<&Arc<Route>>, Vec<&Arc<Route>>) = snap
            .routes
            .iter()
            .partition(|r| r.metadata.deletion_timestamp.is_none());
        let mut errors: Vec<Error> = Vec::new();
        let mut verdicts: BTreeMap<String, Verdict> = BTreeMap::new();
        let mut changes = ChildChanges::default();
        for p in &snap.translation.problems {
            verdicts
                .entry(p.route.clone())
                .or_insert_with(|| Verdict::not_ready(p.reason.as_str(), p.message.clone()));
        }

        // 1. Finalizer on every live Route first, so that its children are always cleaned up.
        for route in &live {
            if !route.finalizers().iter().any(|f| f == FINALIZER)
                && let Err(e) = self.add_finalizer(route).await
            {
                errors.push(e);
            }
        }

        // 2. Services.
        let mut desired_services = BTreeSet::new();
        for desired in &snap.translation.services {
            let mut desired = desired.clone();
            desired
                .metadata
                .labels
                .get_or_insert_default()
                .insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
            let name = desired.name_any();
            desired_services.insert(name.clone());
            let owners: Vec<String> = owner_route_names(&desired.metadata)
                .map(str::to_string)
                .collect();
            let current = match snap.services.get(&name) {
                Some(s) => Some(Arc::clone(s)),
                // Only Services labelled cloudfoundry.org/route_guid are watched: ask before creating, so
                // that a foreign Service holding the name is never taken over.
                None => match self.get_service(ns, &name).await {
                    Ok(s) => s.map(|s| Arc::new(CachedService::new(s))),
                    Err(e) => {
                        fail(&mut verdicts, &owners, &e);
                        errors.push(e);
                        continue;
                    }
                },
            };
            match current {
                Some(c) if !c.meta.is_ours() => {
                    let message = format!(
                        "Service {ns}/{name} already exists and is not owned by a Route; cfnet leaves it alone: delete or rename it so that this route can be programmed"
                    );
                    for o in &owners {
                        verdicts
                            .entry(o.clone())
                            .or_insert_with(|| Verdict::not_ready("Conflict", message.clone()));
                    }
                }
                Some(c) if !service_needs_apply(&desired, &c) => {}
                current => {
                    if let Err(e) = self
                        .apply_service(&desired, current.is_none(), &mut changes)
                        .await
                    {
                        fail(&mut verdicts, &owners, &e);
                        errors.push(e);
                    }
                }
            }
        }

        // 3. The VirtualService of the FQDN.
        let vs_name = virtual_service_name(&key.fqdn);
        match (&snap.translation.virtual_service, &snap.virtual_service) {
            (Some(_), Some(current)) if !current.meta.is_ours() => {
                let message = format!(
                    "VirtualService {ns}/{vs_name} already exists and is not owned by a Route; cfnet leaves it alone: delete it so that this route can be programmed"
                );
                for r in &snap.translation.programmed {
                    verdicts
                        .entry(r.clone())
                        .or_insert_with(|| Verdict::not_ready("Conflict", message.clone()));
                }
            }
            (Some(desired), current) => {
                let mut desired = desired.clone();
                desired
                    .metadata
                    .labels
                    .get_or_insert_default()
                    .insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
                if current
                    .as_ref()
                    .is_none_or(|c| virtual_service_needs_apply(&desired, c))
                    && let Err(e) = self
                        .apply_virtual_service(&desired, current.is_none(), &mut changes)
                        .await
                {
                    fail(&mut verdicts, &snap.translation.programmed, &e);
                    errors.push(e);
                }
            }
            (None, Some(current)) if current.meta.is_ours() => {
                if let Err(e) = self.delete_virtual_service(current, &mut changes).await {
                    errors.push(e);
                }
            }
            (None, _) => {}
        }

        // 4. Owned Services of this FQDN that are no longer desired.
        for (name, svc) in &snap.services {
            let of_this_fqdn = svc.meta.fqdn() == Some(&*key.fqdn);
            if !desired_services.contains(name)
                && of_this_fqdn
                && svc.meta.is_ours()
                && let Err(e) = self.delete_service(svc, &mut changes).await
            {
                errors.push(e);
            }
        }

        // 5. Routes being deleted: their children are gone or rebuilt, so let them go. Also invalid ones:
        //    they never have children, so they are never stuck.
        if errors.is_empty() {
            for route in &deleting {
                if route.finalizers().iter().any(|f| f == FINALIZER)
                    && let Err(e) = self.remove_finalizer(route).await
                {
                    errors.push(e);
                }
            }
        }

        // 6. Ready condition of every live Route.
        let programmed: BTreeSet<&str> = snap
            .translation
            .programmed
            .iter()
            .map(String::as_str)
            .collect();
        for route in &live {
            let name = route.name_any();
            let verdict = match verdicts.get(&name) {
                Some(v) => v.clone(),
                None if programmed.contains(name.as_str()) => Verdict {
                    ready: true,
                    reason: "Programmed".into(),
                    // A route without destinations has no entry of its own (a lone one gets the
                    // placeholder that answers 503): say so instead of claiming it is routed.
                    message: if route.spec.destinations.is_empty() {
                        format!(
                            "no destinations: nothing is routed for {} until an app is mapped (VirtualService {ns}/{vs_name})",
                            route.spec.url
                        )
                    } else {
                        format!("programmed in VirtualService {ns}/{vs_name}")
                    },
                },
                // Neither programmed nor reported: the translation has nothing to say yet.
                None => continue,
            };
            if let Err(e) = self.write_status(route, &verdict).await {
                errors.push(e);
            }
        }

        // 7. One Normal event per Route and kind of change, naming every child it concerns.
        for route in &snap.routes {
            for (change, note) in changes.notes(&route.name_any()) {
                self.publish(route, EventType::Normal, change.reason(), note)
                    .await;
            }
        }

        match errors.into_iter().next() {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    async fn get_service(&self, ns: &str, name: &str) -> Result<Option<Service>, Error> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
        api.get_opt(name).await.map_err(|source| Error::Get {
            kind: "Service",
            namespace: ns.to_string(),
            name: name.to_string(),
            source: Box::new(source),
        })
    }

    async fn apply_service(
        &self,
        desired: &Service,
        create: bool,
        changes: &mut ChildChanges,
    ) -> Result<(), Error> {
        let ns = desired.namespace().unwrap_or_default();
        let name = desired.name_any();
        self.may_write("Service", &ns, &name)?;
        let api: Api<Service> = Api::namespaced(self.client.clone(), &ns);
        self.metrics.wrote(Verb::Apply, "Service");
        let applied = match api
            .patch(&name, &Self::params(), &Patch::Apply(desired))
            .await
        {
            Ok(applied) => Some(applied),
            // An edit by another manager can make our apply invalid (e.g. a second port named
            // `http`): repair by replacing the fields below instead.
            Err(kube::Error::Api(status)) if !create && status.is_invalid() => {
                warn!(kind = "Service", namespace = %ns, name = %name, reason = %status.message,
                      "apply refused because of fields another manager set; replacing them");
                None
            }
            Err(source) => {
                return Err(Error::Apply {
                    kind: "Service",
                    namespace: ns.clone(),
                    name: name.clone(),
                    source: Box::new(source),
                });
            }
        };
        let action = if create { "created" } else { "updated" };
        info!(kind = "Service", namespace = %ns, name = %name, action, "Service {ns}/{name} has been {action}");
        // An apply cannot remove list entries another manager added (e.g. `kubectl edit` of a port):
        // replace the fields we own outright when the applied object still differs.
        let applied = if let Some(applied) = applied
            .map(CachedService::new)
            .filter(|a| !service_needs_apply(desired, a))
        {
            applied
        } else {
            let spec = desired.spec.clone().unwrap_or_default();
            let patch = json!([
                {"op": "replace", "path": "/spec/ports", "value": spec.ports.unwrap_or_default()},
                {"op": "replace", "path": "/spec/selector", "value": spec.selector.unwrap_or_default()},
            ]);
            let repaired = self
                .json_patch(&api, &name, patch)
                .await
                .map_err(|source| Error::Apply {
                    kind: "Service",
                    namespace: ns.clone(),
                    name: name.clone(),
                    source: Box::new(source),
                })?;
            self.metrics.wrote(Verb::Patch, "Service");
            info!(kind = "Service", namespace = %ns, name = %name, action = "repaired",
                  "Service {ns}/{name} has been repaired (fields set by another manager replaced)");
            CachedService::new(repaired)
        };
        write(&self.index).apply_service(applied);
        if create {
            changes.record(
                owner_route_names(&desired.metadata),
                Change::Created,
                format!("Service {name}"),
            );
        }
        Ok(())
    }

    async fn apply_virtual_service(
        &self,
        desired: &VirtualService,
        create: bool,
        changes: &mut ChildChanges,
    ) -> Result<(), Error> {
        let ns = desired.namespace().unwrap_or_default();
        let name = desired.name_any();
        self.may_write("VirtualService", &ns, &name)?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &ns, &self.vs_resource);
        self.metrics.wrote(Verb::Apply, "VirtualService");
        let applied = match api
            .patch(&name, &Self::params(), &Patch::Apply(desired))
            .await
        {
            Ok(applied) => Some(applied),
            // An edit by another manager can make our apply invalid (e.g. a second port named
            // `http`): repair by replacing the fields below instead.
            Err(kube::Error::Api(status)) if !create && status.is_invalid() => {
                warn!(kind = "VirtualService", namespace = %ns, name = %name, reason = %status.message,
                      "apply refused because of fields another manager set; replacing them");
                None
            }
            Err(source) => {
                return Err(Error::Apply {
                    kind: "VirtualService",
                    namespace: ns.clone(),
                    name: name.clone(),
                    source: Box::new(source),
                });
            }
        };
        let action = if create { "created" } else { "updated" };
        info!(kind = "VirtualService", namespace = %ns, name = %name, action, "VirtualService {ns}/{name} has been {action}");
        // Spec fields another manager added survive an apply; the spec is ours as a whole, so replace it.
        let applied = if let Some(applied) = applied
            .map(CachedVirtualService::new)
            .filter(|a| !virtual_service_needs_apply(desired, a))
        {
            applied
        } else {
            let patch = json!([
                {"op": "replace", "path": "/spec", "value": desired.spec},
            ]);
            let repaired = self
                .json_patch(&api, &name, patch)
                .await
                .map_err(|source| Error::Apply {
                    kind: "VirtualService",
                    namespace: ns.clone(),
                    name: name.clone(),
                    source: Box::new(source),
                })?;
            self.metrics.wrote(Verb::Patch, "VirtualService");
            info!(kind = "VirtualService", namespace = %ns, name = %name, action = "repaired",
                  "VirtualService {ns}/{name} has been repaired (fields set by another manager replaced)");
            CachedVirtualService::new(repaired)
        };
        write(&self.index).apply_virtual_service(applied);
        if create {
            changes.record(
                owner_route_names(&desired.metadata),
                Change::Created,
                format!("VirtualService {name}"),
            );
        }
        Ok(())
    }

    /// A JSON patch under our field manager.
    async fn json_patch<K>(
        &self,
        api: &Api<K>,
        name: &str,
        patch: serde_json::Value,
    ) -> Result<K, kube::Error>
    where
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let patch: json_patch::Patch =
            serde_json::from_value(patch).map_err(kube::Error::SerdeError)?;
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        api.patch(name, &params, &Patch::Json::<()>(patch)).await
    }

    /// Deletes with the cached resourceVersion as precondition: if the object changed since we looked
    /// (another FQDN took it over, someone edited it), the API refuses and the key is retried.
    fn delete_params(meta: &ChildMeta) -> DeleteParams {
        DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: meta.resource_version.clone(),
                uid: meta.uid.clone(),
            }),
            ..DeleteParams::default()
        }
    }

    async fn delete_service(
        &self,
        svc: &CachedService,
        changes: &mut ChildChanges,
    ) -> Result<(), Error> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), &svc.meta.namespace);
        self.delete_child("Service", api, &svc.meta, changes, |index, id| {
            index.delete_service(id, None);
        })
        .await
    }

    async fn delete_virtual_service(
        &self,
        vs: &CachedVirtualService,
        changes: &mut ChildChanges,
    ) -> Result<(), Error> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &vs.meta.namespace, &self.vs_resource);
        self.delete_child("VirtualService", api, &vs.meta, changes, |index, id| {
            index.delete_virtual_service(id, None);
        })
        .await
    }

    /// Deletes one child of `kind` with `delete_params`, then `forget`s it in the index (the watch's
    /// deletion may come later) and records the change for the owning Routes' Event.
    async fn delete_child<K>(
        &self,
        kind: &'static str,
        api: Api<K>,
        meta: &ChildMeta,
        changes: &mut ChildChanges,
        forget: fn(&mut Index, &ObjId),
    ) -> Result<(), Error>
    where
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let (ns, name) = meta.id();
        self.may_write(kind, &ns, &name)?;
        self.metrics.wrote(Verb::Delete, kind);
        match api.delete(&name, &Self::delete_params(meta)).await {
            Ok(_) => {}
            Err(e) if Error::is_not_found(&e) => {}
            Err(source) => {
                return Err(Error::Delete {
                    kind,
                    namespace: ns.to_string(),
                    name: name.to_string(),
                    source: Box::new(source),
                });
            }
        }
        info!(kind, namespace = %ns, name = %name, action = "deleted", "{kind} {ns}/{name} has been deleted");
        forget(&mut write(&self.index), &(ns, name.clone()));
        changes.record(
            meta.owner_route_names(),
            Change::Deleted,
            format!("{kind} {name}"),
        );
        Ok(())
    }

    /// JSON patch, never an Update: Cloud Controller does GET + PUT on Routes, and a full Update here made
    /// upstream's controller and CC fight with 409s. The `test` op makes a concurrent change fail cleanly.
    async fn add_finalizer(&self, route: &Route) -> Result<(), Error> {
        let ns = route.namespace().unwrap_or_default();
        let name = route.name_any();
        self.may_write("Route", &ns, &name)?;
        let patch = match &route.metadata.finalizers {
            Some(list) => json!([
                {"op": "test", "path": "/metadata/finalizers", "value": list},
                {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
            ]),
            None => json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": route.metadata.resource_version},
                {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
            ]),
        };
        self.patch_finalizers(&ns, &name, patch, "added").await
    }

    async fn remove_finalizer(&self, route: &Route) -> Result<(), Error> {
        let ns = route.namespace().unwrap_or_default();
        let name = route.name_any();
        let Some(i) = route.finalizers().iter().position(|f| f == FINALIZER) else {
            return Ok(());
        };
        self.may_write("Route", &ns, &name)?;
        let patch = json!([
            {"op": "test", "path": format!("/metadata/finalizers/{i}"), "value": FINALIZER},
            {"op": "remove", "path": format!("/metadata/finalizers/{i}")},
        ]);
        self.patch_finalizers(&ns, &name, patch, "removed").await
    }

    async fn patch_finalizers(
        &self,
        ns: &str,
        name: &str,
        patch: serde_json::Value,
        action: &str,
    ) -> Result<(), Error> {
        let err = |source: kube::Error| Error::Finalizer {
            namespace: ns.to_string(),
            name: name.to_string(),
            source: Box::new(source),
        };
        let patch: json_patch::Patch =
            serde_json::from_value(patch).map_err(|e| err(kube::Error::SerdeError(e)))?;
        let api: Api<Route> = Api::namespaced(self.client.clone(), ns);
        self.metrics.wrote(Verb::Patch, "Route");
        match api
            .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => {
                info!(kind = "Route", namespace = %ns, name = %name, action, "finalizer {FINALIZER} {action} on Route {ns}/{name}");
                Ok(())
            }
            // Gone already: nothing to hold or release.
            Err(e) if Error::is_not_found(&e) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    /// Merge-patches the Ready condition to the status subresource, only when it changes.
    async fn write_status(&self, route: &Route, verdict: &Verdict) -> Result<(), Error> {
        let conditions = route
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default();
        let old = conditions.iter().find(|c| c.type_ == READY).cloned();
        let old = old.as_ref();
        let status = if verdict.ready {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        };
        let generation = route.metadata.generation;
        if let Some(old) = old
            && old.status == status
            && old.reason.as_deref() == Some(verdict.reason.as_str())
            && old.message.as_deref() == Some(verdict.message.as_str())
            && old.observed_generation == generation
        {
            return Ok(());
        }
        let transition = match old {
            Some(o) if o.status == status => o
                .last_transition_time
                .clone()
                .or_else(|| Some(now_rfc3339())),
            _ => Some(now_rfc3339()),
        };
        let ready = Condition {
            type_: READY.into(),
            status,
            reason: Some(verdict.reason.clone()),
            message: Some(verdict.message.clone()),
            last_transition_time: transition,
            observed_generation: generation,
        };
        let mut new_conditions: Vec<Condition> = conditions
            .into_iter()
            .filter(|c| c.type_ != READY)
            .collect();
        new_conditions.push(ready);
        let ns = route.namespace().unwrap_or_default();
        let name = route.name_any();
        self.may_write("Route", &ns, &name)?;
        let api: Api<Route> = Api::namespaced(self.client.clone(), &ns);
        self.metrics.wrote(Verb::Patch, "RouteStatus");
        let patch = json!({"status": {"conditions": new_conditions}});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if Error::is_not_found(&e) => return Ok(()),
            Err(source) => {
                return Err(Error::Status {
                    namespace: ns,
                    name,
                    source: Box::new(source),
                });
            }
        }
        let was_ready = old.map(|o| o.status == ConditionStatus::True);
        info!(kind = "Route", namespace = %ns, name = %name, action = "status", ready = verdict.ready,
              reason = %verdict.reason, "Route {ns}/{name} Ready={status:?} ({}): {}", verdict.reason, verdict.message);
        if !verdict.ready {
            self.publish(
                route,
                EventType::Warning,
                &verdict.reason,
                verdict.message.clone(),
            )
            .await;
        } else if was_ready == Some(false) {
            self.publish(
                route,
                EventType::Normal,
                "Programmed",
                verdict.message.clone(),
            )
            .await;
        }
        Ok(())
    }

    async fn publish(&self, route: &Route, type_: EventType, reason: &str, note: String) {
        if !*self.gate.borrow() {
            return;
        }
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        self.metrics.wrote(Verb::Create, "Event");
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(e) = recorder.publish(&ev, &route.object_ref(&())).await {
            // Events are best effort: a missing events permission must not block routing.
            warn!(route = %format!("{}/{}", route.namespace().unwrap_or_default(), route.name_any()), error = %e,
                  "could not publish an event on the Route; check the controller's RBAC (create on events.k8s.io events)");
        } else {
            debug!(reason, "event published");
        }
    }
}

fn fail(verdicts: &mut BTreeMap<String, Verdict>, routes: &[String], e: &Error) {
    for r in routes {
        verdicts
            .entry(r.clone())
            .or_insert_with(|| Verdict::not_ready("ApplyFailed", e.to_string()));
    }
}
