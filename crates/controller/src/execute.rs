//! Carrying out a [`Plan`]: the only place a reconcile talks to the API. In order: finalizers on live
//! Routes, every desired child of every kind (one generic apply), the prunes (one generic delete), the
//! finalizers of deleting Routes when nothing failed, then the Ready conditions and Events. Each failed
//! call is logged where it happens and the reconcile goes on with the other children; every call first
//! checks that this replica still leads, and stops the reconcile when it does not ([`Handover`]).
//!
//! A child the cache proves absent is created with a plain POST (an object already holding the name is
//! then looked up: ours is applied, a foreign one left alone); every later write of a child is a
//! server-side apply (field manager `cfnet-routecontroller`) or a JSON patch, sent only when the plan
//! found the cached object different in a field we own, so a steady state costs no API write.

use std::sync::{Arc, RwLock};

use cfnet_api::{Condition, FIELD_MANAGER, FINALIZER, Route};
use cfnet_translate::RoutingApi;
use chrono::{DateTime, Utc};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::changes::{Change, ChildChanges};
use crate::child::{
    Cached, Child, ChildMeta, fold_updates_into_apply, managed_fields_patch, needs_apply,
    owner_route_names,
};
use crate::config::Events;
use crate::error::{Category, Failure, Operation, error_chain};
use crate::index::{ChildWrite, Index, write};
use crate::metrics::{Metrics, Verb};
use crate::plan::{Action, ChildPlan, Outcome, Plan, action};
use crate::status::{event_for, next_conditions};

/// This replica stopped leading during the reconcile: it sends nothing more; the new leader (or this
/// one, when it leads again) reconciles the key from the start.
#[derive(Debug)]
pub(crate) struct Handover;

/// What a plain create found.
enum Created {
    Yes,
    /// An object holds the name already (the cache did not know it): look it up and decide.
    NameTaken,
}

/// Why a call was not made or did not succeed.
enum NotWritten {
    Handover,
    Failed(Failure),
}

impl From<Failure> for NotWritten {
    fn from(f: Failure) -> Self {
        NotWritten::Failed(f)
    }
}

/// What the writes need: the client, the index for the write-back, the metrics, the leadership gate
/// and who publishes Events.
pub(crate) struct Writer {
    pub client: Client,
    pub index: Arc<RwLock<Index>>,
    pub metrics: Arc<Metrics>,
    /// Who publishes Events. Each publish uses a fresh `Recorder`: a long-lived one keeps every Event
    /// it sent for six minutes (to turn repeats into series) and scans them all on every publish. With
    /// 10,000 routes programmed at once that was 2.3 KB per route of peak memory; cfnet sends one
    /// Event per Route and kind of change per reconcile, so repeats are rare anyway.
    pub reporter: Reporter,
    /// True while this replica may write (leader, or leader election off).
    pub gate: watch::Receiver<bool>,
    /// Which Events are published (`--events`): Normal ones are skipped with `problems`.
    pub events: Events,
}

/// One reconcile's calls so far: the failures (each logged as it happened) and the children created or
/// deleted, for the Events.
pub(crate) struct Execution<'w> {
    writer: &'w Writer,
    pub failures: Vec<Failure>,
    changes: ChildChanges,
}

fn ns_name(meta: &kube::api::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

impl<'w> Execution<'w> {
    pub fn new(writer: &'w Writer) -> Self {
        Execution {
            writer,
            failures: Vec::new(),
            changes: ChildChanges::default(),
        }
    }

    /// `Some` result of a call that succeeded; a failure is logged and kept, a handover stops the run.
    fn settle<T>(&mut self, result: Result<T, NotWritten>) -> Result<Option<T>, Handover> {
        match result {
            Ok(t) => Ok(Some(t)),
            Err(NotWritten::Handover) => Err(Handover),
            Err(NotWritten::Failed(f)) => {
                warn!(kind = f.kind, namespace = %f.namespace, name = %f.name, reason = f.category().as_str(),
                      error = %error_chain(&f), "API call failed; the key is retried with back-off");
                self.failures.push(f);
                Ok(None)
            }
        }
    }

    /// Everything but the status: finalizers, children, prunes, releases.
    pub async fn writes(&mut self, plan: &mut Plan<'_>) -> Result<(), Handover> {
        for route in &plan.add_finalizers {
            let r = self.writer.add_finalizer(route).await;
            self.settle(r)?;
        }
        self.children(&mut plan.services).await?;
        self.children(&mut plan.virtual_services).await?;
        self.children(&mut plan.http_routes).await?;
        // What routes to the Services goes before them; the other routing mode's children only once
        // this mode's are all in place (a mode switch never leaves a route with neither).
        let other_mode = plan.prune_other_mode();
        match plan.routing_api {
            RoutingApi::Istio => {
                self.prune(&plan.virtual_services).await?;
                if other_mode {
                    self.prune(&plan.http_routes).await?;
                }
            }
            RoutingApi::GatewayApi => {
                self.prune(&plan.http_routes).await?;
                if other_mode {
                    self.prune(&plan.virtual_services).await?;
                }
            }
        }
        self.prune(&plan.services).await?;
        for route in plan.release(self.failures.len()) {
            let r = self.writer.remove_finalizer(route).await;
            self.settle(r)?;
        }
        Ok(())
    }

    async fn children<C: Child>(&mut self, plan: &mut ChildPlan<'_, C>) -> Result<(), Handover> {
        for step in &mut plan.steps {
            let next = match step.action {
                // Nothing holds the name as far as the cache knows: a plain create, which also tells
                // whether someone else's object holds it after all.
                Action::Lookup | Action::Apply { create: true } => {
                    let r = self.writer.create(step.desired).await;
                    match self.settle(r)? {
                        Some(Created::Yes) => {
                            self.record_created(step.desired);
                            continue;
                        }
                        Some(Created::NameTaken) => {
                            let r = self.writer.lookup(step.desired).await;
                            match self.settle(r)? {
                                Some(found) => action(step.desired, found.as_ref(), true),
                                None => {
                                    step.outcome = Outcome::Failed(self.last_failure());
                                    continue;
                                }
                            }
                        }
                        None => {
                            step.outcome = Outcome::Failed(self.last_failure());
                            continue;
                        }
                    }
                }
                planned => planned,
            };
            match next {
                Action::Unchanged | Action::Lookup | Action::Unserved => {}
                Action::Foreign => step.outcome = Outcome::Foreign,
                Action::Apply { create } => {
                    let r = self.writer.apply(step.desired, create).await;
                    if self.settle(r)?.is_none() {
                        step.outcome = Outcome::Failed(self.last_failure());
                    } else if create {
                        self.record_created(step.desired);
                    }
                }
            }
        }
        Ok(())
    }

    fn record_created<C: Child>(&mut self, desired: &C) {
        let (_, name) = ns_name(desired.meta());
        self.changes.record(
            owner_route_names(desired.meta()),
            Change::Created,
            format!("{} {name}", C::KIND),
        );
    }

    fn last_failure(&self) -> String {
        self.failures
            .last()
            .map(|f| error_chain(f))
            .unwrap_or_default()
    }

    async fn prune<C: Child>(&mut self, plan: &ChildPlan<'_, C>) -> Result<(), Handover> {
        for child in &plan.prune {
            let r = self.writer.delete(child).await;
            if self.settle(r)?.is_some() {
                self.changes.record(
                    child.meta.owner_route_names(),
                    Change::Deleted,
                    format!("{} {}", C::KIND, child.meta.name),
                );
            }
        }
        Ok(())
    }

    /// The Ready condition of every live Route with a verdict, where it changed, and its Event; then one
    /// Normal Event per Route and kind of change, naming every child it concerns.
    pub async fn statuses(&mut self, plan: &Plan<'_>, now: DateTime<Utc>) -> Result<(), Handover> {
        for (route, verdict) in plan.verdicts() {
            let current = route
                .status
                .as_ref()
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default();
            let Some(conditions) =
                next_conditions(current, &verdict, route.metadata.generation, now)
            else {
                continue;
            };
            let r = self.writer.write_status(route, conditions).await;
            if self.settle(r)? != Some(true) {
                continue;
            }
            let (ns, name) = ns_name(&route.metadata);
            info!(kind = "Route", namespace = %ns, name = %name, action = "status", ready = verdict.ready(),
                  reason = %verdict.reason, "Route {ns}/{name} Ready={} ({}): {}",
                  if verdict.ready() { "True" } else { "False" }, verdict.reason, verdict.message);
            let old = current.iter().find(|c| c.type_ == cfnet_api::READY);
            if let Some((type_, reason)) = event_for(old, &verdict) {
                self.writer
                    .publish(route, type_, reason.as_str(), verdict.message.clone())
                    .await;
            }
        }
        for route in plan.routes {
            for (change, note) in self.changes.notes(&route.name_any()) {
                self.writer
                    .publish(route, EventType::Normal, change.reason(), note)
                    .await;
            }
        }
        Ok(())
    }
}

/// Deletes with the cached resourceVersion as precondition: if the object changed since we looked
/// (another FQDN took it over, someone edited it), the API refuses and the key is retried.
fn delete_params(meta: &ChildMeta) -> DeleteParams {
    DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: meta.resource_version.as_deref().map(str::to_owned),
            uid: meta.uid.as_deref().map(str::to_owned),
        }),
        ..DeleteParams::default()
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}

impl Writer {
    fn leading(&self) -> Result<(), NotWritten> {
        if *self.gate.borrow() {
            Ok(())
        } else {
            Err(NotWritten::Handover)
        }
    }

    /// Counts a write and turns its error into a [`Failure`] of `operation` on `kind` `ns`/`name`.
    fn count<T>(
        &self,
        verb: Verb,
        kind: &'static str,
        result: Result<T, kube::Error>,
        failure: impl FnOnce(kube::Error) -> Failure,
    ) -> Result<T, NotWritten> {
        self.metrics.wrote(
            verb,
            kind,
            result.as_ref().map(|_| ()).map_err(Category::of),
        );
        result.map_err(|e| NotWritten::Failed(failure(e)))
    }

    /// Creates `desired` with a plain POST under our field manager: for the API server a create is less
    /// work than a server-side apply that finds no object. `NameTaken` when an object holds the name.
    /// The create records our fields under an `Update` entry; [`Writer::apply`] folds it into our
    /// `Apply` entry the first time it updates the object (child/ownership.rs).
    async fn create<C: Child>(&self, desired: &C) -> Result<Created, NotWritten> {
        let (ns, name) = ns_name(desired.meta());
        let failure = |e| Failure::new(Operation::Create, C::KIND, &ns, &name, e);
        self.leading()?;
        let object: C::Object = serde_json::to_value(desired)
            .and_then(serde_json::from_value)
            .map_err(|e| NotWritten::Failed(failure(kube::Error::SerdeError(e))))?;
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        let created = match C::api(self.client.clone(), Some(&ns))
            .create(&params, &object)
            .await
        {
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                self.metrics
                    .wrote(Verb::Create, C::KIND, Err(Category::Conflict));
                debug!(kind = C::KIND, namespace = %ns, name = %name,
                       "the name is taken by an object the cache did not hold; looking it up");
                return Ok(Created::NameTaken);
            }
            r => self.count(Verb::Create, C::KIND, r, failure)?,
        };
        info!(kind = C::KIND, namespace = %ns, name = %name, action = "created", "{} {ns}/{name} has been created", C::KIND);
        write(&self.index).record_write(ChildWrite::Applied(Cached::<C>::new(created)));
        Ok(Created::Yes)
    }

    /// Folds an `Update` entry of our field manager (a plain create, a repair patch) into our `Apply`
    /// entry, so that applies own every field we set and can remove one we stop setting. `applied` is
    /// the object as the API server last returned it; returns it as it is afterwards.
    async fn own_fields_by_apply<C: Child>(
        &self,
        api: &Api<C::Object>,
        applied: C::Object,
        failure: impl FnOnce(kube::Error) -> Failure,
    ) -> Result<C::Object, NotWritten> {
        let meta = applied.meta();
        let Some(entries) = meta
            .managed_fields
            .as_deref()
            .and_then(|m| fold_updates_into_apply(m, FIELD_MANAGER))
        else {
            return Ok(applied);
        };
        let name = meta.name.clone().unwrap_or_default();
        let patch = managed_fields_patch(meta.resource_version.as_deref(), &entries);
        let patched = json_patch(api, &name, patch).await;
        self.count(Verb::Patch, C::KIND, patched, failure)
    }

    /// The object holding `desired`'s name, asked of the API (not a write).
    async fn lookup<C: Child>(&self, desired: &C) -> Result<Option<Cached<C>>, NotWritten> {
        let (ns, name) = ns_name(desired.meta());
        let found = C::api(self.client.clone(), Some(&ns))
            .get_opt(&name)
            .await
            .map_err(|e| Failure::new(Operation::Lookup, C::KIND, &ns, &name, e))?;
        Ok(found.map(Cached::new))
    }

    /// Server-side apply of `desired`, repaired with the kind's JSON patch when the applied object still
    /// differs (fields another manager set), and written back into the index.
    async fn apply<C: Child>(&self, desired: &C, create: bool) -> Result<(), NotWritten> {
        let (ns, name) = ns_name(desired.meta());
        let failure = |e| Failure::new(Operation::Apply, C::KIND, &ns, &name, e);
        self.leading()?;
        let api = C::api(self.client.clone(), Some(&ns));
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = match api.patch(&name, &params, &Patch::Apply(desired)).await {
            // An edit by another manager can make our apply invalid (e.g. a second port named
            // `http`): repair by replacing the fields we own instead.
            Err(kube::Error::Api(status)) if !create && status.is_invalid() => {
                self.metrics
                    .wrote(Verb::Apply, C::KIND, Err(Category::Invalid));
                warn!(kind = C::KIND, namespace = %ns, name = %name, reason = %status.message,
                      "apply refused because of fields another manager set; replacing them");
                None
            }
            r => Some(self.count(Verb::Apply, C::KIND, r, failure)?),
        };
        let action = if create { "created" } else { "updated" };
        info!(kind = C::KIND, namespace = %ns, name = %name, action, "{} {ns}/{name} has been {action}", C::KIND);
        let applied = match applied {
            // Created by a plain POST (or repaired by a patch) earlier: our fields are shared with our
            // `Update` entry, so this apply could not remove one we stopped setting. Fold the entry in,
            // then apply again if the object still differs.
            Some(a) => {
                let folded = self
                    .own_fields_by_apply::<C>(&api, a.clone(), failure)
                    .await?;
                if folded.meta().resource_version == a.meta().resource_version
                    || !needs_apply(desired, &Cached::<C>::new(folded.clone()))
                {
                    Some(folded)
                } else {
                    let again = api.patch(&name, &params, &Patch::Apply(desired)).await;
                    Some(self.count(Verb::Apply, C::KIND, again, failure)?)
                }
            }
            None => None,
        };
        let applied = match applied
            .map(Cached::<C>::new)
            .filter(|a| !needs_apply(desired, a))
        {
            Some(applied) => applied,
            None => {
                let repaired = json_patch(&api, &name, desired.repair()).await;
                let repaired = self.count(Verb::Patch, C::KIND, repaired, failure)?;
                info!(kind = C::KIND, namespace = %ns, name = %name, action = "repaired",
                      "{} {ns}/{name} has been repaired (fields set by another manager replaced)", C::KIND);
                Cached::new(repaired)
            }
        };
        write(&self.index).record_write(ChildWrite::Applied(applied));
        Ok(())
    }

    /// Deletes an owned child (gone already counts as deleted) and takes it out of the index.
    async fn delete<C: Child>(&self, child: &Cached<C>) -> Result<(), NotWritten> {
        let (ns, name) = child.meta.id();
        self.leading()?;
        let deleted = C::api(self.client.clone(), Some(&ns))
            .delete(&name, &delete_params(&child.meta))
            .await
            .map(|_| ())
            .or_else(|e| if is_not_found(&e) { Ok(()) } else { Err(e) });
        self.count(Verb::Delete, C::KIND, deleted, |e| {
            Failure::new(Operation::Delete, C::KIND, &ns, &name, e)
        })?;
        info!(kind = C::KIND, namespace = %ns, name = %name, action = "deleted", "{} {ns}/{name} has been deleted", C::KIND);
        write(&self.index).record_write(ChildWrite::<C>::Deleted((ns, name)));
        Ok(())
    }

    /// JSON patch, never an Update: Cloud Controller does GET + PUT on Routes, and a full Update here made
    /// upstream's controller and CC fight with 409s. The `test` op makes a concurrent change fail cleanly.
    async fn add_finalizer(&self, route: &Route) -> Result<(), NotWritten> {
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
        self.patch_finalizers(route, patch, "added").await
    }

    async fn remove_finalizer(&self, route: &Route) -> Result<(), NotWritten> {
        let Some(i) = route.finalizers().iter().position(|f| f == FINALIZER) else {
            return Ok(());
        };
        let patch = json!([
            {"op": "test", "path": format!("/metadata/finalizers/{i}"), "value": FINALIZER},
            {"op": "remove", "path": format!("/metadata/finalizers/{i}")},
        ]);
        self.patch_finalizers(route, patch, "removed").await
    }

    async fn patch_finalizers(
        &self,
        route: &Route,
        patch: serde_json::Value,
        action: &str,
    ) -> Result<(), NotWritten> {
        let (ns, name) = ns_name(&route.metadata);
        self.leading()?;
        let api: Api<Route> = Api::namespaced(self.client.clone(), &ns);
        let patched = match serde_json::from_value::<json_patch::Patch>(patch) {
            Ok(patch) => {
                api.patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
                    .await
            }
            Err(e) => Err(kube::Error::SerdeError(e)),
        };
        // Gone already: nothing to hold or release.
        let patched = match patched {
            Err(e) if is_not_found(&e) => Ok(false),
            r => r.map(|_| true),
        };
        let done = self.count(Verb::Patch, "Route", patched, |e| {
            Failure::new(Operation::Finalizer, "Route", &ns, &name, e)
        })?;
        if done {
            info!(kind = "Route", namespace = %ns, name = %name, action, "finalizer {FINALIZER} {action} on Route {ns}/{name}");
        }
        Ok(())
    }

    /// Merge-patches `conditions` to the status subresource; `false` when the Route is gone.
    async fn write_status(
        &self,
        route: &Route,
        conditions: Vec<Condition>,
    ) -> Result<bool, NotWritten> {
        let (ns, name) = ns_name(&route.metadata);
        self.leading()?;
        let api: Api<Route> = Api::namespaced(self.client.clone(), &ns);
        let patch = json!({"status": {"conditions": conditions}});
        let written = match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Err(e) if is_not_found(&e) => Ok(false),
            r => r.map(|_| true),
        };
        self.count(Verb::Patch, "RouteStatus", written, |e| {
            Failure::new(Operation::Status, "Route", &ns, &name, e)
        })
    }

    /// Best effort: a missing events permission must not block routing.
    async fn publish(&self, route: &Route, type_: EventType, reason: &str, note: String) {
        if !*self.gate.borrow() || !self.events.publishes(type_ == EventType::Warning) {
            return;
        }
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        let published = recorder.publish(&ev, &route.object_ref(&())).await;
        self.metrics.wrote(
            Verb::Create,
            "Event",
            published.as_ref().map(|_| ()).map_err(Category::of),
        );
        if let Err(e) = published {
            let (ns, name) = ns_name(&route.metadata);
            warn!(route = %format!("{ns}/{name}"), error = %error_chain(&e),
                  "could not publish an event on the Route; check the controller's RBAC (create on events.k8s.io events)");
        } else {
            debug!(reason, "event published");
        }
    }
}

/// A JSON patch under our field manager.
async fn json_patch<K>(api: &Api<K>, name: &str, patch: serde_json::Value) -> Result<K, kube::Error>
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
